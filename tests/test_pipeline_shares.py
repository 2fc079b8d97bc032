"""Each input's counts of a batch of several inputs (``soc.pipeline._shares``, ``RecordEngine.read_many``) are
what ``SourceStats.add`` counts on that input's rows alone: records, events per family, first and last time,
records per dataset per day (across midnight in the SOC's zone, before 1975 too), dead letters."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl

from soc import pipeline as P
from soc.parse.batch import ParseResult
from soc.schema import DEAD_LETTERS

UTC = pl.Datetime("us", "UTC")
PATHS = ["a.evtx", "b.evtx", "c.evtx"]


def frame(rng: np.random.Generator, n: int, start: datetime) -> pl.DataFrame:
    base = int(start.timestamp() * 1e6)
    stamps = [None if rng.random() < 0.1 else base + int(x) for x in rng.integers(0, 3 * 86_400_000_000, n)]
    return pl.DataFrame({
        "@timestamp": pl.Series(stamps, dtype=pl.Int64).cast(UTC),
        "log.file.path": pl.Series([PATHS[k] for k in rng.integers(0, 2, n)], dtype=pl.Categorical),
    })


def alone(result: ParseResult, path: str) -> P.SourceStats:
    st = P.SourceStats(path)
    frames = {k: f.filter(pl.col("log.file.path").cast(pl.String) == path) for k, f in result.frames.items()}
    dead = result.dead.filter(pl.col("log.file.path") == path)
    st.add(ParseResult(frames, dead, sum(f.height for f in frames.values()) + dead.height), 0)
    return st


def test_shares_count_as_each_input_alone():
    rng = np.random.default_rng(7)
    for start in (datetime(2026, 12, 6, 15, tzinfo=timezone.utc), datetime(1975, 6, 11, tzinfo=timezone.utc)):
        frames = {("windows", "windows.security.4624"): frame(rng, 300, start),
                  ("windows", "windows.sysmon.1"): frame(rng, 200, start),
                  ("network", "zeek.conn"): frame(rng, 50, start),
                  ("windows", "windows.system.7045"): frame(rng, 0, start)}
        dead = pl.DataFrame({c: [None] * 3 for c in DEAD_LETTERS}, schema=DEAD_LETTERS).with_columns(
            pl.Series("log.file.path", ["a.evtx", "c.evtx", "c.evtx"]))
        result = ParseResult(frames, dead, 553)
        stats = {p: P.SourceStats(p) for p in PATHS}
        P._shares(result, stats)
        assert sum(st.read for st in stats.values()) == 553 and stats["c.evtx"].dead == 2
        for path in PATHS:
            want, got = alone(result, path), stats[path]
            events = {k: v for k, v in want.events.items() if v}  # add() names a family with no rows too
            assert (got.read, got.parsed, got.dead, got.events, got.first, got.last) == \
                (want.read, want.parsed, want.dead, events, want.first, want.last)
            assert got.days == {k: v for k, v in want.days.items() if v}
        assert len(stats["a.evtx"].days["windows.security.4624"]) >= 3  # across midnight, and "" for no time
