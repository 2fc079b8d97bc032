"""Numba kernel splitting lines on a one-byte separator (Zeek's tab), where every byte but the separator
belongs to a value: spaces, quotes and brackets are data (Zeek escapes the separator inside values)."""

from __future__ import annotations

import numpy as np

from soc.jit import njit, prange


@njit(cache=True, nogil=True, parallel=True)
def split_on(buf, starts, ends, k, sep):
    """Spans of the first ``k`` ``sep``-separated fields of every line and each line's number of fields
    (which may exceed ``k``). The spans are returned field-major, ``(k, n)`` with -1 where absent, as
    transposed views of line-major arrays: each line's spans are written side by side (one cache line
    instead of one per field) and read back the same way by ``arrow.views``."""
    n = starts.size
    fs = np.empty((n, k), np.int64)
    fe = np.empty((n, k), np.int64)
    count = np.zeros(n, np.int32)
    for r in prange(n):
        s = starts[r]
        e = ends[r]
        f = 0
        for i in range(s, e):
            if buf[i] == sep:
                if f < k:
                    fs[r, f] = s
                    fe[r, f] = i
                f += 1
                s = i + 1
        if f < k:
            fs[r, f] = s
            fe[r, f] = e
        count[r] = f + 1
        for g in range(f + 1, k):
            fs[r, g] = -1
            fe[r, g] = -1
    return fs.T, fe.T, count


@njit(cache=True, nogil=True)
def has_byte(buf, s, e, byte):
    """Whether ``buf[s:e]`` holds ``byte`` (stops at the first; no temporary array, unlike a NumPy compare)."""
    for i in range(s, e):
        if buf[i] == byte:
            return True
    return False
