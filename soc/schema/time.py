"""Timestamp rules: everything becomes ``Datetime("us", "UTC")``.

Values without a zone are read in the source's zone (default ``Asia/Ho_Chi_Minh``). Year-less syslog
stamps take the year of a reference time (the file's mtime, or one a test injects); a stamp that would
then lie more than a day after the reference belongs to the previous year (December lines read in
January).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
UTC = pl.Datetime("us", "UTC")


def localize(naive: pl.Expr, zone: str) -> pl.Expr:
    """Read naive datetimes as wall-clock time in ``zone``; gaps of DST changes become null."""
    return (
        naive.dt.cast_time_unit("us")
        .dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )


def parse(text: pl.Expr, formats: list[str], zone: str) -> pl.Expr:
    """The first of ``formats`` (strftime syntax) that parses; formats without ``%z`` are in ``zone``."""
    tries = []
    for fmt in formats:
        if "%z" in fmt or "%:z" in fmt:
            tries.append(text.str.strptime(UTC, fmt, strict=False))
        else:
            tries.append(localize(text.str.strptime(pl.Datetime("us"), fmt, strict=False), zone))
    return tries[0] if len(tries) == 1 else pl.coalesce(tries)


def iso8601(text: pl.Expr, zone: str) -> pl.Expr:
    """ISO 8601 / RFC 3339 with optional fraction and zone (``Z``, ``+07:00``, ``-0600``)."""
    t = text.str.replace(r"Z$", "+00:00")
    return pl.coalesce(
        t.str.strptime(UTC, "%Y-%m-%dT%H:%M:%S%.f%z", strict=False),
        t.str.strptime(UTC, "%Y-%m-%d %H:%M:%S%.f%z", strict=False),
        localize(t.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False), zone),
        localize(t.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False), zone),
    )


def epoch(number: pl.Expr) -> pl.Expr:
    """Unix time in s, ms, us or ns, the unit told by the magnitude (valid for 1973-5138)."""
    n = number.cast(pl.Int64)
    us = (
        pl.when(n < 100_000_000_000).then(n * 1_000_000)
        .when(n < 100_000_000_000_000).then(n * 1_000)
        .when(n < 100_000_000_000_000_000).then(n)
        .otherwise(n // 1_000)
    )
    return us.cast(UTC)


def yearless(text: pl.Expr, reference: datetime, zone: str, fmt: str = "%b %d %H:%M:%S") -> pl.Expr:
    """Syslog ``Mmm dd hh:mm:ss`` stamps: year from ``reference``, rolled back one year if in the future.

    Feb 29 of a stamp whose reference year is not a leap year is tried in the years before.
    """
    ref = reference if reference.tzinfo else reference.replace(tzinfo=timezone.utc)
    limit = ref + timedelta(days=1)
    clean = text.str.replace_all(r"\s+", " ")

    def in_year(year: int) -> pl.Expr:
        naive = pl.concat_str([pl.lit(str(year)), pl.lit(" "), clean]).str.strptime(
            pl.Datetime("us"), f"%Y {fmt}", strict=False
        )
        return localize(naive, zone)

    this = in_year(ref.year)
    last = in_year(ref.year - 1)
    first = pl.when(this > pl.lit(limit).cast(UTC)).then(last).otherwise(this)
    leap = [in_year(ref.year - k) for k in range(1, 5)]
    return pl.coalesce([first, *leap])


def reference_time(mtime: float | None, year: int | None = None) -> datetime:
    """The moment year-less stamps are read against: a given year's end, the file's mtime, or now."""
    if year is not None:
        return datetime(year, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    if mtime is not None:
        return datetime.fromtimestamp(mtime, tz=timezone.utc)
    return datetime.now(tz=timezone.utc)
