"""The period a report covers and the one before it: calendar days, ISO weeks (Monday first) and months in
Asia/Ho_Chi_Minh (the province's clock), or any ``since``..``until``; always half-open ``[start, end)``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Period:
    start: datetime  # aware, in ZONE
    end: datetime    # aware, exclusive
    kind: str        # day, week, month or custom

    @property
    def hourly(self) -> bool:
        """Time series per hour (a period of up to two days), else per day."""
        return self.end - self.start <= timedelta(days=2)

    def previous(self) -> Period:
        """The period just before: the calendar one for a month, else the same length."""
        if self.kind == "month":
            last = (self.start - timedelta(days=1)).date()
            return calendar_period("month", last)
        return Period(self.start - (self.end - self.start), self.start, self.kind)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZONE)


def calendar_period(kind: str, day: date) -> Period:
    """The calendar ``kind`` (day, week, month) holding ``day``, in Vietnam time."""
    if kind == "day":
        first, after = day, day + timedelta(days=1)
    elif kind == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif kind == "month":
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown period {kind!r} (use one of: {', '.join(PERIODS)})")
    return Period(_midnight(first), _midnight(after), kind)


def custom_period(since: datetime, until: datetime) -> Period:
    """``since``..``until`` (naive values are Vietnam time)."""
    since, until = (t if t.tzinfo else t.replace(tzinfo=ZONE) for t in (since, until))
    if until <= since:
        raise ValueError("--until must be after --since")
    return Period(since.astimezone(ZONE), until.astimezone(ZONE), "custom")
