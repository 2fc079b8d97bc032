"""The lines of one chunk, ready for a parser engine, and the dead letters it produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from soc.parse import kernels
from soc.parse.arrow import binary_series, string_columns, string_series
from soc.schema import DEAD_LETTERS
from soc.sources import Chunk


@dataclass
class ParseResult:
    """What a chunk became: frames per (family, dataset), dead letters, and how many lines were read."""

    frames: dict[tuple[str, str], pl.DataFrame]
    dead: pl.DataFrame
    lines: int

    @property
    def parsed(self) -> int:
        return self.lines - self.dead.height


class LineBatch:
    """A chunk split into lines. ``buf`` is valid UTF-8 (bad bytes became ``?``); ``raw`` is untouched."""

    def __init__(self, chunk: Chunk, path: str):
        self.chunk = chunk
        self.path = path
        self.raw = np.frombuffer(chunk.data, np.uint8)
        self.buf = self.raw
        if kernels.has_invalid_utf8(self.raw):
            self.buf = self.raw.copy()
        self.starts, self.ends = kernels.find_lines(self.buf)
        if self.buf is not self.raw:
            kernels.repair_utf8(self.buf, self.starts, self.ends)
        self.n = int(self.starts.size)
        self.index = np.arange(self.n, dtype=np.int64)  # line index within the chunk
        self._arrow = pa.py_buffer(self.buf)
        self._raw_arrow = pa.py_buffer(self.raw)

    def take(self, index: np.ndarray) -> LineBatch:
        """The same chunk restricted to the lines at ``index`` (buffers shared, line numbers kept)."""
        sub = object.__new__(LineBatch)
        sub.__dict__.update(self.__dict__)
        sub.starts, sub.ends, sub.index = self.starts[index], self.ends[index], self.index[index]
        sub.n = int(index.size)
        return sub

    def strings(self, name: str, starts: np.ndarray, ends: np.ndarray) -> pl.Series:
        """String column of spans into this batch (null where a start is -1)."""
        return string_series(name, self._arrow, self.buf, starts, ends)

    def columns(self, names: list[str], fs: np.ndarray, fe: np.ndarray, fields: np.ndarray | None = None,
                lines: np.ndarray | None = None) -> dict[str, pl.Series]:
        """String columns ``names`` of field-major spans ``fs``/``fe`` (rows ``fields``, default the first
        ``len(names)``; at ``lines``, default all) from one pass over the chunk."""
        fields = np.arange(len(names), dtype=np.int64) if fields is None else fields
        lines = np.arange(fs.shape[1], dtype=np.int64) if lines is None else lines
        return string_columns(names, self._arrow, self.buf, fs, fe, fields, lines)

    def lines(self, name: str = "line") -> pl.Series:
        return self.strings(name, self.starts, self.ends)

    def origin(self) -> dict[str, pl.Series]:
        """``log.file.path``, ``log.offset`` and ``log.line`` of every line."""
        return {
            "log.file.path": pl.Series("log.file.path", [self.path], pl.Categorical).new_from_index(0, self.n),
            "log.offset": pl.Series("log.offset", self.starts + self.chunk.offset),
            "log.line": pl.Series("log.line", self.index + self.chunk.first_line),
        }

    def dead(self, mask: np.ndarray | pl.Series, reasons: pl.Series | str) -> pl.DataFrame:
        """Dead-letter frame of the lines where ``mask`` is true, with their reason and original bytes."""
        m = mask.to_numpy() if isinstance(mask, pl.Series) else mask
        idx = np.flatnonzero(m)
        if isinstance(reasons, str):
            why = pl.Series("error.message", [reasons], pl.String).new_from_index(0, idx.size)
        else:
            why = reasons.filter(pl.Series(m)).alias("error.message")
        s, e = self.starts[idx], self.ends[idx]
        return pl.DataFrame({
            "log.file.path": pl.Series([self.path], dtype=pl.String).new_from_index(0, idx.size),
            "log.line": self.index[idx] + self.chunk.first_line,
            "log.offset": s + self.chunk.offset,
            "error.message": why,
            "event.original": binary_series("event.original", self._raw_arrow, self.raw, s, e),
        }, schema=DEAD_LETTERS)

    def oversize(self) -> ParseResult:
        """The whole chunk is the head of one over-long line: dead-letter it as one line."""
        size = len(self.chunk.data) + self.chunk.dropped
        dead = pl.DataFrame({
            "log.file.path": [self.path],
            "log.line": [self.chunk.first_line],
            "log.offset": [self.chunk.offset],
            "error.message": [f"line of {size} bytes exceeds the chunk size; kept its first {len(self.chunk.data)}"],
            "event.original": [bytes(self.chunk.data)],
        }, schema=DEAD_LETTERS)
        return ParseResult({}, dead, 1)


def empty_dead() -> pl.DataFrame:
    """No dead letters (a frame of their schema): made once, ~0.2 ms each time (a small EVTX file took
    three). Polars frames are not changed in place by soc, so one can be shared."""
    return _EMPTY_DEAD


_EMPTY_DEAD = pl.DataFrame(schema=DEAD_LETTERS)
