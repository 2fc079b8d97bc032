"""Turn byte spans of a chunk into Polars string columns without copying the bytes.

Arrow's string-view layout (Polars' own) stores 16 bytes per value: the length and either the value
inline (up to 12 bytes) or a 4-byte prefix plus an offset into a data buffer. The data buffer here is the
chunk itself, so a column costs 16 bytes a row whatever the field length. The chunk must be valid UTF-8
(``kernels.repair_utf8`` sees to it).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from soc.jit import njit, prange


@njit(cache=True, inline="always")
def _put32(out, f, r, at, v):
    out[f, r, at] = v & 0xFF
    out[f, r, at + 1] = (v >> 8) & 0xFF
    out[f, r, at + 2] = (v >> 16) & 0xFF
    out[f, r, at + 3] = (v >> 24) & 0xFF


@njit(cache=True, nogil=True, parallel=True)
def views(buf, fs, fe, fields, lines):
    """String views of the spans in rows ``fields`` of ``fs``/``fe``, at columns ``lines``, in one pass.

    Many columns at once, each line's bytes read while they are in cache; lines in parallel (median of 3
    runs here: web access 1.60 M lines/s against 1.42 M serial, syslog 1.36 M against 1.25 M).
    Returns ``(len(fields), len(lines), 16)`` views and their validity (a start of -1 is null).
    """
    out = np.zeros((fields.size, lines.size, 16), np.uint8)
    valid = np.ones((fields.size, lines.size), np.bool_)
    for r in prange(lines.size):
        line = lines[r]
        for f in range(fields.size):
            a = fs[fields[f], line]
            if a < 0:
                valid[f, r] = False
                continue
            ln = fe[fields[f], line] - a
            _put32(out, f, r, 0, ln)
            if ln <= 12:
                for j in range(ln):
                    out[f, r, 4 + j] = buf[a + j]
            else:
                for j in range(4):
                    out[f, r, 4 + j] = buf[a + j]
                _put32(out, f, r, 12, a)
    return out, valid


def string_columns(names: list[str], chunk: pa.Buffer, buf: np.ndarray, fs: np.ndarray, fe: np.ndarray,
                   fields: np.ndarray, lines: np.ndarray, kind: pa.DataType | None = None) -> dict[str, pl.Series]:
    """Columns ``names`` of the spans in rows ``fields`` of ``fs``/``fe`` at ``lines`` (zero-copy views)."""
    kind = kind or pa.string_view()
    out, valid = views(buf, fs, fe, fields, lines)
    cols = {}
    for j, name in enumerate(names):
        mask = None if valid[j].all() else pa.py_buffer(np.packbits(valid[j], bitorder="little"))
        cols[name] = pl.Series(name, pa.Array.from_buffers(kind, lines.size, [mask, pa.py_buffer(out[j]), chunk]))
    return cols


def string_series(name: str, chunk: pa.Buffer, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  ) -> pl.Series:
    """A String series of ``buf[starts[i]:ends[i]]`` (null where ``starts[i] < 0``)."""
    return _one(name, pa.string_view(), chunk, buf, starts, ends)


def binary_series(name: str, chunk: pa.Buffer, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  ) -> pl.Series:
    """Like ``string_series`` for bytes that need not be UTF-8 (dead letters keep the raw line)."""
    return _one(name, pa.binary_view(), chunk, buf, starts, ends)


def _one(name: str, kind: pa.DataType, chunk: pa.Buffer, buf: np.ndarray, starts: np.ndarray,
         ends: np.ndarray) -> pl.Series:
    span_s, span_e = np.ascontiguousarray(starts)[None, :], np.ascontiguousarray(ends)[None, :]
    lines = np.arange(starts.size, dtype=np.int64)
    return string_columns([name], chunk, buf, span_s, span_e, np.zeros(1, np.int64), lines, kind)[name]
