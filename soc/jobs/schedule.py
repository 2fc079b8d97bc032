"""When a job runs: a cron expression (read in the job's zone, default Asia/Ho_Chi_Minh) or ``every = "5m"``.

Cron expressions are evaluated by ``cronsim`` (the evaluator of healthchecks.io: no dependencies, DST-aware,
strict about bad fields) rather than a parser of our own. The rule for missed runs, like systemd's
``Persistent=true``: a job is due when the first slot after its last run's start has come; a scheduler that
was down over many slots runs the job once (the run reads everything appended since its checkpoint anyway),
then waits for the next slot after that run's start. A job that never ran: an ``every`` job is due at once, a
cron job at its first slot (the scheduler counts from its own start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from soc.options import DEFAULT_ZONE

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"(?:\d{1,6}[smhd])+")
_PART = re.compile(r"(\d{1,6})([smhd])")


class ScheduleError(ValueError):
    """A schedule soc cannot read (bad cron field, bad interval, unknown zone)."""


def parse_every(text: str) -> timedelta:
    """``"5m"``, ``"90s"``, ``"1h30m"``, ``"1d"`` as a duration (at least one second)."""
    compact = str(text).strip().replace(" ", "")
    if not _EVERY.fullmatch(compact):
        raise ScheduleError(f"every = {text!r}: not an interval like \"30s\", \"5m\", \"1h30m\" or \"1d\"")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(compact))
    if seconds < 1:
        raise ScheduleError(f"every = {text!r}: the interval must be at least 1s")
    return timedelta(seconds=seconds)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r} (an IANA name such as Asia/Ho_Chi_Minh)") from None


@dataclass(frozen=True)
class Schedule:
    """``cron`` (five fields, in ``tz``) or ``every`` (an interval from the last run's start)."""

    cron: str | None = None
    every: timedelta | None = None
    tz: str = DEFAULT_ZONE

    @classmethod
    def parse(cls, cron: str | None = None, every: str | None = None, tz: str = DEFAULT_ZONE) -> Schedule:
        """Checked now, so that a bad expression is a configuration error, not a scheduler that dies later."""
        if (cron is None) == (every is None):
            raise ScheduleError("give exactly one of schedule = \"<cron expression>\" or every = \"<interval>\"")
        where = zone(tz)
        if every is not None:
            return cls(every=parse_every(every), tz=tz)
        expr = " ".join(str(cron).split())
        try:
            next(CronSim(expr, datetime(2026, 1, 1, tzinfo=where)))
        except (CronSimError, StopIteration) as exc:
            raise ScheduleError(f"schedule = {cron!r}: {exc or 'no time ever matches'}") from None
        return cls(cron=expr, tz=tz)

    def describe(self) -> str:
        if self.every is not None:
            return f"every {_short(self.every)}"
        return f"cron {self.cron} ({self.tz})"

    def after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment`` (aware), in UTC."""
        if self.every is not None:
            return (moment + self.every).astimezone(UTC)
        local = moment.astimezone(zone(self.tz))
        return next(CronSim(self.cron, local)).astimezone(UTC)

    def next_run(self, last_start: datetime | None, now: datetime) -> datetime:
        """When the job runs next: the first slot after its last start (in the past when slots were missed: the
        job is due, once); if it never ran, ``now`` for an interval, the next slot for a cron expression."""
        if last_start is None:
            return now if self.every is not None else self.after(now)
        return self.after(last_start)

    def due(self, last_start: datetime | None, now: datetime) -> bool:
        return self.next_run(last_start, now) <= now


def _short(delta: timedelta) -> str:
    seconds, out = int(delta.total_seconds()), ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"
