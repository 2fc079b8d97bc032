"""Records per day (``soc.pipeline.count_days``): the integer-division path for timestamps since 1975, when the SOC's
zone has a fixed offset, counts the same days as the zone conversion."""

from datetime import datetime, timezone

import numpy as np
import polars as pl

from soc import pipeline as P


def _by_conversion(ts: pl.Series) -> dict[str, int]:
    got: dict[str, int] = {}
    for day, n in ts.drop_nulls().dt.convert_time_zone(P.DAY_ZONE).dt.date().value_counts().iter_rows():
        got[day.isoformat()] = n
    if ts.null_count():
        got[""] = ts.null_count()
    return got


def test_days_across_midnight_as_the_zone_says():
    # 16:59:59 and 17:00:00 UTC are either side of midnight in Hanoi (UTC+7)
    stamps = [datetime(2026, 12, 6, 16, 59, 59, tzinfo=timezone.utc), datetime(2026, 12, 6, 17, tzinfo=timezone.utc),
              datetime(2026, 12, 7, 3, tzinfo=timezone.utc), None]
    ts = pl.Series("@timestamp", stamps, pl.Datetime("us", "UTC"))
    days: dict[str, int] = {}
    P.count_days(days, ts, ts.min(), ts.max())
    assert days == {"2026-12-06": 1, "2026-12-07": 2, "": 1}


def test_random_frames_count_as_the_conversion():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 100))
        start = int(rng.integers(170_000_000, 2_000_000_000)) * 1_000_000  # 1975-05 .. 2033
        values = [int(x) for x in start + rng.integers(0, 86_400_000_000 * int(rng.integers(1, 900)), n)]
        if rng.random() < 0.3:
            values[int(rng.integers(0, n))] = None
        ts = pl.Series("@timestamp", values, pl.Int64).cast(pl.Datetime("us", "UTC"))
        days: dict[str, int] = {}
        P.count_days(days, ts, ts.min(), ts.max())
        assert days == _by_conversion(ts)


def test_before_the_fixed_offset_the_zone_converts():
    # in 1975 before June 13 Saigon was UTC+8: 16:30 UTC is the next day there
    ts = pl.Series("@timestamp", [datetime(1975, 1, 1, 16, 30, tzinfo=timezone.utc),
                                  datetime(1975, 1, 3, tzinfo=timezone.utc)], pl.Datetime("us", "UTC"))
    days: dict[str, int] = {}
    P.count_days(days, ts, ts.min(), ts.max())
    assert days == {"1975-01-02": 1, "1975-01-03": 1}
