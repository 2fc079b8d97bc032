"""The embedded default sink: Parquet datasets, one folder per event family, plus the dead letters.

Layout: ``OUT/<family>/<dataset>/<input-name>-<hash>.parquet`` and ``OUT/dead_letters/<input-name>-<hash>.parquet``.
One file per input and family, written row group by row group as chunks arrive, so memory stays bounded.
Each file is written under a temporary name in ``OUT/.tmp/`` and renamed into place when complete
(``soc.private``): a run killed midway leaves no file without its footer in a dataset folder. Folders 0700,
files 0600.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from soc.private import new_temp, publish

if TYPE_CHECKING:
    import pyarrow.parquet as pq

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SMALL_ROWS = 4096  # tables of fewer rows wait (as Arrow's copies) to be written with the next of their file
GROUP_ROWS = 65_536  # rows of one file waiting at most (then one row group)
BUFFER_BYTES = 32 << 20  # bytes of all files' waiting tables at most (then each file's are written)


def file_stem(source_path: str) -> str:
    """A safe, unique file name for an input path (its name plus a hash of the full path)."""
    name = _UNSAFE.sub("_", Path(source_path).name or "stdin")[:80] or "input"
    digest = hashlib.sha1(source_path.encode("utf-8", "surrogateescape")).hexdigest()[:8]  # noqa: S324
    return f"{name}-{digest}"


class ParquetSink:
    """Writes family frames and dead letters of many inputs under ``root``."""

    def __init__(self, root: str | Path, frames: bool = True):
        self.root = Path(root)
        self.frames = frames  # False: keep only the dead letters (``soc hunt`` before detection)
        self._writers: dict[Path, pq.ParquetWriter] = {}  # final name -> its writer (writing a temporary file)
        self._temps: dict[Path, Path] = {}  # final name -> the temporary file being written
        self._parts: dict[Path, Path] = {}  # a file -> the part its rows now go to (see ``_write``)
        self._waiting: dict[Path, list[pa.Table]] = {}  # a file -> its small tables not written yet
        self._waiting_rows: dict[Path, int] = {}
        self._waiting_size: dict[Path, int] = {}  # their bytes (``Table.nbytes`` walks every buffer)
        self._waiting_bytes = 0
        self.files: list[Path] = []

    def write(self, source_path: str, family: str, dataset: str, frame: pl.DataFrame) -> None:
        if self.frames and frame.height:
            self._append(self.root / family / dataset / f"{file_stem(source_path)}.parquet", frame)

    def write_dead(self, source_path: str, dead: pl.DataFrame) -> None:
        if dead.height:
            self._append(self.root / "dead_letters" / f"{file_stem(source_path)}.parquet", dead)

    def close_source(self, source_path: str) -> None:
        """Finish the files of one input (so a long run does not keep every writer open)."""
        if not self._writers and not self._parts and not self._waiting:  # nothing open (a hunt of inputs
            return  # without dead letters)
        stem = f"{file_stem(source_path)}.parquet"
        for path in [p for p in self._waiting if p.name == stem]:
            self._flush(path, last=True)
        for path in [p for p in self._writers if p.name == stem or p.name.startswith(stem[:-8] + ".part")]:
            self._finish(path)
        for path in [p for p in self._parts if p.name == stem]:
            del self._parts[path]

    def close(self) -> None:
        for path in list(self._waiting):
            self._flush(path, last=True)
        for path in list(self._writers):
            self._finish(path)

    def _finish(self, path: Path) -> None:
        """Write the footer, then give the file its name."""
        self._writers.pop(path).close()
        publish(self._temps.pop(path), path)

    def _append(self, path: Path, frame: pl.DataFrame) -> None:
        """Small tables wait for more of their file: a row group costs ~3 ms of pyarrow whatever its rows
        (a compressor and statistics per column), and the (channel, event id) frames of NXLog lines are tens
        of rows each: ``soc parse`` of 200 k lines wrote 3,215 row groups, 8.6 of its 15 s CPU."""
        table = _plain(frame.to_arrow())  # its own copy of the strings (a frame's may share its chunk's)
        waiting = self._waiting.get(path)
        if waiting and waiting[0].schema != table.schema:
            self._flush(path)
        if table.num_rows >= SMALL_ROWS:
            if path in self._waiting:
                self._flush(path)
            self._write(path, table)
            return
        self._waiting.setdefault(path, []).append(table)
        rows = self._waiting_rows[path] = self._waiting_rows.get(path, 0) + table.num_rows
        size = table.nbytes
        self._waiting_size[path] = self._waiting_size.get(path, 0) + size
        self._waiting_bytes += size
        if rows >= GROUP_ROWS:
            self._flush(path)
        elif self._waiting_bytes >= BUFFER_BYTES:  # the largest first, to half: the rare ones wait on
            for waiting_path in sorted(self._waiting_size, key=self._waiting_size.get, reverse=True):
                self._flush(waiting_path)
                if self._waiting_bytes < BUFFER_BYTES // 2:
                    break

    def _flush(self, path: Path, last: bool = False) -> None:
        tables = self._waiting.pop(path)
        del self._waiting_rows[path]
        self._waiting_bytes -= self._waiting_size.pop(path)
        self._write(path, pa.concat_tables(tables) if len(tables) > 1 else tables[0], last)

    def _write(self, path: Path, table: pa.Table, last: bool = False) -> None:
        """``table`` appended to the file at ``path`` (a row group); ``last``: the file is then closed."""
        target = self._parts.get(path, path)
        writer = self._writers.get(target)
        if writer is not None and table.schema.names != writer.schema.names:
            # the columns of a source may change between chunks (Windows events of another version of
            # their template): fewer columns are filled with nulls, new ones start a part file of their own
            names = set(table.schema.names)
            if names <= set(writer.schema.names):
                table = pa.table([table[f.name] if f.name in names else pa.nulls(table.num_rows, f.type)
                                  for f in writer.schema], schema=writer.schema)
            else:
                target = path.with_name(f"{path.name.removesuffix('.parquet')}.part{len(self.files)}.parquet")
                self._parts[path] = target
                writer = None
        if writer is None and last:  # the file's only table (a hunt's matches, mostly): Polars writes it, as
            # pyarrow.parquet would (its import, pyarrow.compute with it, ~40 ms of CPU)
            tmp = new_temp(target, self.root)
            pl.DataFrame(_Stream(table)).write_parquet(tmp, compression="zstd")
            publish(tmp, target)
            self.files.append(target)
            return
        if writer is None:
            import pyarrow.parquet as pq  # only once something is written (10 ms of a run's start-up)

            self._temps[target] = tmp = new_temp(target, self.root)
            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            self._writers[target] = writer
            self.files.append(target)
        writer.write_table(table.cast(writer.schema))


class _Stream:
    """A table handed to Polars through the Arrow PyCapsule interface (``pl.DataFrame(pa.Table)`` goes through
    ``coerce_arrow``, which imports pyarrow.compute)."""

    __slots__ = ("table",)

    def __init__(self, table: pa.Table):
        self.table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)


def _plain(table: pa.Table) -> pa.Table:
    """Views and dictionaries as plain large strings: one stable schema across chunks."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_dictionary(t) or pa.types.is_string_view(t):
            t = pa.large_string()
        elif pa.types.is_binary_view(t):
            t = pa.large_binary()
        fields.append(pa.field(f.name, t))
    schema = pa.schema(fields)
    # already plain (Polars exports large strings): a cast per column cost ~4 us each, 0.9 s of a 200 k-line parse
    return table if schema.equals(table.schema, check_metadata=True) else table.cast(schema)


def read_family(root: str | Path, family: str) -> pl.LazyFrame:
    """All datasets of one family under ``root`` as one frame: the family's core columns are shared, and
    each source's own columns (``fortinet.firewall.*``, ``system.auth.*``) are null where it has none.
    Files being written (under ``root/.tmp/``) are not there yet."""
    files = sorted((Path(root) / family).rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no {family} dataset under {root}")
    return pl.concat([pl.scan_parquet(f) for f in files], how="diagonal_relaxed")
