"""Timestamp rules: everything becomes ``Datetime("us", "UTC")``.

Values without a zone are read in the source's zone (default ``Asia/Ho_Chi_Minh``). Year-less syslog
stamps take the year of a reference time (the file's mtime, or one a test injects); a stamp that would
then lie more than a day after the reference belongs to the previous year (December lines read in
January).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

# the column that says where @timestamp came from when a record may carry no time of its own (CEF, Zeek,
# Cisco ASA): the record's own field, the syslog header, or "input_time" (the input's reference time)
TIMESTAMP_SOURCE = "soc.timestamp_source"
UTC = pl.Datetime("us", "UTC")
DAY_US = 86_400_000_000


def localize(naive: pl.Expr, zone: str) -> pl.Expr:
    """Read naive datetimes as wall-clock time in ``zone``; gaps of DST changes become null."""
    return naive.dt.cast_time_unit("us").map_batches(lambda s: localize_series(s, zone), return_dtype=UTC)


def localize_series(naive: pl.Series, zone: str) -> pl.Series:
    """``localize`` for a Series: a constant offset when the zone has one over the data's range (the
    common case, e.g. Asia/Ho_Chi_Minh since 1975: ~10x faster), else Polars' zone database."""
    naive = naive.cast(pl.Datetime("us"))
    if naive.null_count() == naive.len():
        return naive.cast(UTC)
    ints = naive.cast(pl.Int64)
    offset = fixed_offset(zone, ints.min(), ints.max())
    if offset is not None:
        return (ints - offset * 1_000_000).cast(UTC)
    return naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def fixed_offset(zone: str, lo_us: int, hi_us: int) -> int | None:
    """The UTC offset (s) of ``zone`` if it is the same over [lo, hi] (checked every 6 h), else None."""
    if zone in ("UTC", "Etc/UTC"):
        return 0
    tz = ZoneInfo(zone)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    try:
        lo = epoch + timedelta(microseconds=lo_us) - timedelta(days=1)
        hi = epoch + timedelta(microseconds=hi_us) + timedelta(days=1)
    except OverflowError:
        return None
    if (hi - lo).days > 400:
        return None
    offsets = set()
    t = lo
    while t <= hi:
        offsets.add(t.astimezone(tz).utcoffset())
        if len(offsets) > 1:
            return None
        t += timedelta(hours=6)
    return int(offsets.pop().total_seconds())


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


def epoch_float(seconds: pl.Expr) -> pl.Expr:
    """Unix seconds with a fraction (Zeek ``ts``); rounded to the microsecond, which a float64 of a
    present-day time holds exactly. Values outside 1970-2300 (not a time a sensor writes) are null."""
    us = (seconds * 1_000_000).round(0)
    ok = seconds.is_finite() & (seconds >= 0) & (seconds < 10_413_792_000)
    return pl.when(ok).then(us).cast(pl.Int64).cast(UTC)


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


def yearless_reference(reference: datetime, zone: str) -> tuple[int, int]:
    """The year and the latest wall-clock time (microseconds in ``zone``) of ``yearless``'s rule.

    For engines that read ``Mmm dd hh:mm:ss`` in a kernel: a stamp takes ``year``, or an earlier one if
    it would lie after the limit (one day past the reference) or does not exist (Feb 29).
    """
    ref = reference if reference.tzinfo else reference.replace(tzinfo=timezone.utc)
    return ref.year, wall_micros(ref + timedelta(days=1), zone)


def wall_micros(moment: datetime, zone: str) -> int:
    """Wall-clock time of ``moment`` in ``zone`` as microseconds since 1970-01-01 (no zone)."""
    s = pl.Series([moment]).dt.cast_time_unit("us").dt.convert_time_zone(zone).dt.replace_time_zone(None)
    return int(s.cast(pl.Int64)[0])


def localize_micros(naive: np.ndarray, zone: str, max_days: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """``localize`` for wall-clock microseconds: UTC microseconds, and False where the time does not exist.

    Asks the zone once per day of the range instead of once per value; the few days with a DST change
    (offset at 00:00 differs from 23:59:59) go through ``localize`` itself, so the result is the same.
    """
    naive = np.asarray(naive, np.int64)
    if naive.size == 0:
        return naive.copy(), np.ones(0, np.bool_)
    days = naive // DAY_US
    lo, hi = int(days.min()), int(days.max())
    if hi - lo > max_days:
        return _localize_slow(naive, zone)
    first = (np.arange(lo, hi + 1, dtype=np.int64)) * DAY_US
    edges = _localize_slow(np.concatenate([first, first + DAY_US - 1]), zone)
    r = first.size
    off_a, off_b = first - edges[0][:r], first + DAY_US - 1 - edges[0][r:]
    steady = edges[1][:r] & edges[1][r:] & (off_a == off_b)
    k = days - lo
    utc = naive - off_a[k]
    ok = steady[k]
    if ok.all():
        return utc, ok
    odd = np.flatnonzero(~ok)
    utc[odd], ok[odd] = _localize_slow(naive[odd], zone)
    return utc, ok


def _localize_slow(naive: np.ndarray, zone: str) -> tuple[np.ndarray, np.ndarray]:
    out = pl.select(localize(pl.lit(pl.Series(naive)).cast(pl.Datetime("us")), zone)).to_series()
    return out.cast(pl.Int64).fill_null(0).to_numpy(), out.is_not_null().to_numpy()


def reference_time(mtime: float | None, year: int | None = None) -> datetime:
    """The moment year-less stamps are read against: a given year's end, the file's mtime, or now."""
    if year is not None:
        return datetime(year, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    if mtime is not None:
        return datetime.fromtimestamp(mtime, tz=timezone.utc)
    return datetime.now(tz=timezone.utc)
