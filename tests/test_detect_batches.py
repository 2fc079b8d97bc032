"""What waiting detector batches and held frames keep: their own values, copied once (issue 18, per-chunk costs)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from soc.detect import runner as R
from soc.detect.specs import default_specs
from soc.pipeline import own_values


def _held(frame: pl.DataFrame) -> int:
    """Bytes of every buffer a frame's columns refer to (string views count their whole data buffers)."""
    total = 0
    for column in frame.columns:
        array = frame.get_column(column).to_arrow(compat_level=pl.CompatLevel.newest())
        chunks = array.chunks if hasattr(array, "chunks") else [array]
        total += sum(b.size for c in chunks for b in c.buffers() if b is not None)
    return total


def _chunk(n: int, start: int = 0) -> pl.DataFrame:
    """A parsed chunk's stand-in: long strings (one buffer for the whole column), numbers, times, a Categorical."""
    return pl.DataFrame({
        "@timestamp": pl.datetime_range(datetime(2026, 12, 7, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC),
                                        interval="1s", eager=True, time_unit="us")[start: start + n],
        "user.name": [f"{'u' * 200}{i}" for i in range(start, start + n)],
        "log.offset": list(range(start, start + n)),
        "tags": [[f"{'t' * 100}{i}"] for i in range(start, start + n)],
        "event.outcome": pl.Series(["failure", "success"] * (n // 2), dtype=pl.Categorical),
    })


def test_own_values_copies_the_rows_alone_and_keeps_every_value_and_type():
    big = _chunk(20_000)
    piece = big.slice(1234, 7)
    assert _held(piece) > 1_000_000  # the slice refers to the whole chunk's strings
    own = own_values(piece)
    assert own.equals(piece) and own.schema == piece.schema and own.columns == piece.columns
    held = _held(own.drop("tags"))  # a list's child stays whole in Arrow's export (as before): not counted
    assert held < 10_000, held
    assert own_values(piece.select("event.outcome")).equals(piece.select("event.outcome"))
    assert own_values(piece.head(0)).schema == piece.schema


def test_a_waiting_batch_copies_each_row_once_and_holds_only_its_rows(monkeypatch):
    """Compaction copies the parts fed since the last one (not the whole batch again), and afterwards the batch
    holds its rows' values only, not the chunks they were cut from."""
    copied = []
    real = R.own_values

    def counting(frame: pl.DataFrame) -> pl.DataFrame:
        copied.append(frame.height)
        return real(frame)

    monkeypatch.setattr(R, "own_values", counting)
    spec = next(s for s in default_specs())
    batch = R._Batch(spec, ("windows", "x"))
    names = ["@timestamp", "user.name", "log.offset", "event.outcome"]
    expected = []
    for k in range(3):
        chunk = _chunk(10_000, k * 10_000)
        for i in range(4):
            piece = chunk.slice(i * 100, 10).select(names)
            expected.append(piece)
            batch.add(piece.get_columns(), k * 4 + i)
        batch.compact()
    assert copied == [40, 40, 40]  # 10 rows x 4 frames each time: the rows owned already are not copied again
    assert all(len(parts) == 1 for parts in batch.columns)
    together = pl.DataFrame([parts[0] for parts in batch.columns])
    assert together.equals(pl.concat(expected))
    assert _held(together) < 50_000  # 120 rows; each chunk's user.name alone is ~2 MB
