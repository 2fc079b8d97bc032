"""The Parquet sink keeps small tables of a file waiting and writes them as one row group (a row group costs
~3 ms of pyarrow whatever its rows): the same rows, in the same order, in the same files."""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq
import pytest

from soc.sinks.parquet import ParquetSink


def _frames(n: int, rows: int = 3, start: int = 0) -> list[pl.DataFrame]:
    return [pl.DataFrame({"log.offset": list(range(start + i * rows, start + (i + 1) * rows)),
                          "message": [f"m{start + i * rows + j}" for j in range(rows)]}) for i in range(n)]


def _read(files) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in sorted(files)], how="diagonal_relaxed")


@pytest.mark.parametrize("buffer_bytes", [1, 1 << 30])
def test_small_frames_of_a_file_are_written_together_in_order(tmp_path, monkeypatch, buffer_bytes):
    monkeypatch.setattr("soc.sinks.parquet.BUFFER_BYTES", buffer_bytes)
    sink = ParquetSink(tmp_path)
    for a, b in zip(_frames(50), _frames(50, start=10_000), strict=True):
        sink.write("in.log", "fam", "a", a)
        sink.write("in.log", "fam", "b", b)
    big = _frames(1, rows=5000, start=150)[0]
    sink.write("in.log", "fam", "a", big)  # a large table after small ones: written after them
    sink.write("in.log", "fam", "a", _frames(1, start=5150)[0])
    assert not list(tmp_path.glob("fam/*/*.parquet"))  # under a temporary name until finished
    sink.close_source("in.log")
    (a,) = tmp_path.glob("fam/a/*.parquet")
    (b,) = tmp_path.glob("fam/b/*.parquet")
    assert pl.read_parquet(a)["log.offset"].to_list() == list(range(5153))
    assert pl.read_parquet(b)["log.offset"].to_list() == list(range(10_000, 10_150))
    groups = pq.ParquetFile(a).num_row_groups
    assert groups == 3 if buffer_bytes > 1 else groups == 52  # small ones, the large one, the last small one


def test_a_new_column_starts_a_part_file_and_fewer_columns_are_nulls(tmp_path):
    sink = ParquetSink(tmp_path)
    frames = _frames(4)
    sink.write("in.log", "fam", "a", frames[0])
    sink.write("in.log", "fam", "a", frames[1].with_columns(pl.lit("x").alias("extra")))
    sink.write("in.log", "fam", "a", frames[2].drop("message"))
    sink.write("in.log", "fam", "a", frames[3])
    sink.close()
    files = list(tmp_path.glob("fam/a/*.parquet"))
    assert len(files) == 2
    rows = _read(files).sort("log.offset")
    assert rows["log.offset"].to_list() == list(range(12))
    assert rows["extra"].to_list() == [None] * 3 + ["x"] * 3 + [None] * 6
    assert rows["message"].null_count() == 3
