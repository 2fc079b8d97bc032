"""Numba tokenizer of ArcSight CEF records (``CEF:Version|Vendor|Product|Version|ID|Name|Severity|Ext``).

The record starts at ``CEF:`` anywhere in the line (after a syslog header or not). The seven header fields
end at the next unescaped ``|`` (``\\|`` and ``\\\\`` are escapes there). The extension is ``key=value``
pairs whose values may hold spaces: a value runs up to the last space before the next ``key=`` (a run of
key bytes right before an unescaped ``=``), so ``msg=a b c act=blocked`` gives ``msg`` = ``a b c``, and
``\\=`` inside a value is never a key boundary. That is the CEF rule, and why the quote-aware FortiGate
tokenizer (a value ends at the first space) cannot read CEF. Wanted keys are found through the same FNV-1a
table as ``kv_kernel`` (``KeyTable``); unescaping is left to the caller (spans point into the chunk).
"""

from __future__ import annotations

import numpy as np

from soc.jit import njit, prange
from soc.parse.kernels import BSLASH, EQ, OK, SP, TAB, find_bytes
from soc.parse.kv_kernel import FNV_OFFSET, FNV_PRIME, MASK32, _find, _is_key_byte

PIPE = 124
HEADER = ("cef.version", "cef.device_vendor", "cef.device_product", "cef.device_version",
          "cef.signature_id", "cef.name", "cef.severity")
E_NO_CEF, E_HEADER, E_EXTENSION = 1, 2, 3
CEF_ERRORS = {OK: None, E_NO_CEF: "no CEF: record", E_HEADER: "truncated CEF header (fewer than 7 fields)",
              E_EXTENSION: "CEF extension does not start with key=value"}
MAGIC = np.frombuffer(b"CEF:", np.uint8).copy()


@njit(cache=True, inline="always")
def _key_at(buf, i, e):
    """End of the key that starts at ``i`` if ``buf[i:]`` is ``key=``, else -1."""
    j = i
    while j < e and _is_key_byte(buf[j]):
        j += 1
    if j > i and j < e and buf[j] == EQ:
        return j
    return -1


@njit(cache=True, nogil=True, parallel=True)
def tokenize_cef(buf, starts, ends, magic, slots, hashes, mask, kbytes, koffs):
    """Spans of the header fields (rows 0-6) and of the wanted extension keys (rows 7+), field-major,
    -1 where absent; per line, where ``CEF:`` starts (-1: none) and an error code (``CEF_ERRORS``).
    The first occurrence of a duplicated key wins; blanks around a value are not part of it."""
    n = starts.size
    nh = 7
    k = koffs.size - 1
    fs = np.full((nh + k, n), -1, np.int64)
    fe = np.full((nh + k, n), -1, np.int64)
    at = np.full(n, -1, np.int64)
    err = np.zeros(n, np.int8)
    for r in prange(n):
        s = starts[r]
        e = ends[r]
        while e > s and (buf[e - 1] == SP or buf[e - 1] == TAB):
            e -= 1
        a = find_bytes(buf, s, e, magic, 0, magic.size)
        if a < 0:
            err[r] = E_NO_CEF
            continue
        at[r] = a
        i = a + magic.size
        for f in range(nh):
            start = i
            while i < e and buf[i] != PIPE:
                i += 2 if buf[i] == BSLASH else 1
            if i >= e:
                err[r] = E_HEADER
                break
            fs[f, r] = start
            fe[f, r] = i
            i += 1
        if err[r] != OK:
            continue
        while i < e and buf[i] == SP:
            i += 1
        if i < e and _key_at(buf, i, e) < 0:
            err[r] = E_EXTENSION
            continue
        while i < e:
            ka = i
            kb = _key_at(buf, i, e)
            if kb < 0:  # cannot happen: every value ends before a key
                break
            h = FNV_OFFSET
            for j in range(ka, kb):
                h = ((h ^ buf[j]) * FNV_PRIME) & MASK32
            vs = kb + 1
            p = vs
            nxt = e
            while p < e:
                c = buf[p]
                if c == BSLASH:
                    p += 2
                    continue
                if c == SP and _key_at(buf, p + 1, e) > 0:
                    nxt = p + 1
                    break
                p += 1
            ve = min(p, e)
            while ve > vs and buf[ve - 1] == SP:
                ve -= 1
            f = _find(buf, ka, kb, h, slots, hashes, mask, kbytes, koffs)
            if f >= 0 and fs[nh + f, r] < 0:
                fs[nh + f, r] = vs
                fe[nh + f, r] = ve
            i = nxt
            while i < e and buf[i] == SP:
                i += 1
    return fs, fe, at, err
