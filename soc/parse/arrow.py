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
from numba import njit, prange


@njit(cache=True)
def _put32(out, r, at, v):
    out[r, at] = v & 0xFF
    out[r, at + 1] = (v >> 8) & 0xFF
    out[r, at + 2] = (v >> 16) & 0xFF
    out[r, at + 3] = (v >> 24) & 0xFF


@njit(cache=True, parallel=True)
def _views(buf, s, e, valid):
    n = s.size
    out = np.zeros((n, 16), np.uint8)
    for r in prange(n):
        a = s[r]
        if a < 0:
            valid[r] = False
            continue
        ln = e[r] - a
        _put32(out, r, 0, ln)
        if ln <= 12:
            for j in range(ln):
                out[r, 4 + j] = buf[a + j]
        else:
            for j in range(4):
                out[r, 4 + j] = buf[a + j]
            _put32(out, r, 8, 0)
            _put32(out, r, 12, a)
    return out


def string_series(name: str, chunk: pa.Buffer, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  ) -> pl.Series:
    """A String series of ``buf[starts[i]:ends[i]]`` (null where ``starts[i] < 0``)."""
    return _series(name, pa.string_view(), chunk, buf, starts, ends)


def binary_series(name: str, chunk: pa.Buffer, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                  ) -> pl.Series:
    """Like ``string_series`` for bytes that need not be UTF-8 (dead letters keep the raw line)."""
    return _series(name, pa.binary_view(), chunk, buf, starts, ends)


def _series(name: str, kind: pa.DataType, chunk: pa.Buffer, buf: np.ndarray, starts: np.ndarray,
            ends: np.ndarray) -> pl.Series:
    n = starts.size
    valid = np.ones(n, np.bool_)
    views = _views(buf, np.ascontiguousarray(starts), np.ascontiguousarray(ends), valid)
    mask = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    arr = pa.Array.from_buffers(kind, n, [mask, pa.py_buffer(views), chunk])
    return pl.Series(name, arr)
