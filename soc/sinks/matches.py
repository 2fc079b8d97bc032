"""A hunt's Sigma matches streamed to one Parquet file as they are found, and read back in batches.

``soc hunt`` used to keep every match in memory until the end (5.6 GB for 890 k matches of a 1.45 GB web
log): the hunter now hands them over every ``Hunter.hold_rows`` rows to ``MatchFile.write``, which appends
them as row groups to ``DATA_DIR/sigma_matches/sigma/hunt-<time>-<pid>-<random>-<hash>.parquet`` (through
``ParquetSink``: a temporary name until closed). Alerts are then built from ``batches()``, a bounded number
of rows at a time, and the summary counts come from the file's rule columns only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from soc.sinks.parquet import ParquetSink

BATCH_ROWS = 100_000  # rows read back at a time (``batches``)


def run_name() -> str:
    """A file name unique to this run (time to the microsecond, process id, random)."""
    return f"hunt-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class MatchFile:
    """One hunt's matches: ``write`` as found, ``close`` (with the correlation alerts), then ``batches`` and
    ``counts``. ``height`` is the rows written; ``path`` the file once closed (None: no match)."""

    def __init__(self, root: str | Path, family: str = "sigma_matches", dataset: str = "sigma"):
        self.root, self.family, self.dataset = Path(root), family, dataset
        self.name = run_name()
        self.height = 0
        self.path: Path | None = None
        self._sink = ParquetSink(self.root)

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height:
            self._sink.write(self.name, self.family, self.dataset, frame)
            self.height += frame.height

    def close(self, extra: pl.DataFrame | None = None) -> MatchFile:
        """Finish the file; ``extra`` rows (correlation alerts, with columns of their own) join it: the file
        is then rewritten batch by batch with the columns of both, so one hunt stays one file."""
        written = self.height
        if extra is not None and extra.height and not written:
            self.write(extra)
        self._sink.close()
        self.path = self._sink.files[0] if self._sink.files else None
        if extra is None or not extra.height or not written:
            return self
        first = self.path
        union = pl.concat([next(read_batches(first, 1)).clear(), extra.clear()], how="diagonal_relaxed")
        self.name, self.height = f"{self.name}-all", 0
        self._sink = ParquetSink(self.root)
        for batch in read_batches(first):
            self.write(pl.concat([union, batch], how="diagonal_relaxed"))
        self.write(pl.concat([union, extra], how="diagonal_relaxed"))
        self._sink.close()
        self.path = self._sink.files[0]
        first.unlink()
        return self

    def batches(self, rows: int = BATCH_ROWS, columns: Iterable[str] | None = None) -> Iterator[pl.DataFrame]:
        """The matches, ``rows`` at a time (the file must be closed); ``columns``: only those of them it has."""
        if self.path is not None:
            yield from read_batches(self.path, rows, columns)

    def counts(self, *keys: str) -> pl.DataFrame:
        """Rows per value of ``keys`` (e.g. rule id, name and level), with a ``len`` column; only those columns
        are read."""
        if self.path is None:
            return pl.DataFrame(schema={**{k: pl.String for k in keys}, "len": pl.UInt32})
        return pl.scan_parquet(self.path).group_by(list(keys)).len().collect()


def parquet_rows(path: str | Path) -> int:
    """The rows of a Parquet file (Polars counts them from its footer; pyarrow.parquet, with the
    pyarrow.compute it imports, ~40 ms of CPU to import)."""
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def read_batches(path: str | Path, rows: int = BATCH_ROWS, columns: Iterable[str] | None = None
                 ) -> Iterator[pl.DataFrame]:
    """A Parquet file ``rows`` at a time (Polars reads only the row groups of each slice; pyarrow's batch
    reader kept ~200 MB more of 2.8 M matches in its memory pool); ``columns``: only those the file has."""
    total = parquet_rows(path)
    keep = None if columns is None else [c for c in pl.scan_parquet(path).collect_schema() if c in set(columns)]
    for start in range(0, total, rows):
        lf = pl.scan_parquet(path)
        yield (lf if keep is None else lf.select(keep)).slice(start, rows).collect()
