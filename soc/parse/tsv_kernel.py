"""Numba kernel splitting lines on a one-byte separator (Zeek's tab), where every byte but the separator
belongs to a value: spaces, quotes and brackets are data (Zeek escapes the separator inside values)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def split_on(buf, starts, ends, k, sep):
    """Spans of the first ``k`` ``sep``-separated fields of every line (field-major, -1 where absent) and
    each line's number of fields (which may exceed ``k``)."""
    n = starts.size
    fs = np.full((k, n), -1, np.int64)
    fe = np.full((k, n), -1, np.int64)
    count = np.zeros(n, np.int32)
    for r in prange(n):
        s = starts[r]
        e = ends[r]
        f = 0
        for i in range(s, e):
            if buf[i] == sep:
                if f < k:
                    fs[f, r] = s
                    fe[f, r] = i
                f += 1
                s = i + 1
        if f < k:
            fs[f, r] = s
            fe[f, r] = e
        count[r] = f + 1
    return fs, fe, count
