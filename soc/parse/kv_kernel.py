"""Numba tokenizer of ``key=value`` lines (FortiGate, and other devices that log the same way).

One quote-aware pass per line: a key is ``[A-Za-z0-9_.-]+`` right before ``=``; its value is ``"..."``
(quotes not part of it, a backslash escapes the next byte so ``\\"`` stays inside and is kept as written)
or a bare run up to the next space or tab. ``k=v`` text inside a quoted value is never a field, which is
why per-key regexes are wrong for this format. Tokens that are not ``k=v`` (a syslog header) are skipped,
and a ``<PRI>`` glued to the first key is stepped over. Only the keys a spec uses are kept: they are found
through a small open-addressing table of FNV-1a hashes built in Python (``KeyTable``), verified byte by
byte, so no Python object enters the kernel. The first occurrence of a duplicated key wins.
"""

from __future__ import annotations

import numpy as np

from soc.jit import njit, prange
from soc.parse.kernels import E_QUOTE, EQ, ERRORS, OK, QUOTE, SP, TAB, quoted_end, same_bytes, word_end

LT, GT = 60, 62
E_NO_PAIRS = 4
KV_ERRORS = {OK: None, E_QUOTE: ERRORS[E_QUOTE], E_NO_PAIRS: "no key=value pairs"}

FNV_OFFSET, FNV_PRIME, MASK32 = 2166136261, 16777619, 0xFFFFFFFF


def fnv1a(key: bytes) -> int:
    """32-bit FNV-1a, as the kernel computes it while it scans a key."""
    h = FNV_OFFSET
    for c in key:
        h = ((h ^ c) * FNV_PRIME) & MASK32
    return h


class KeyTable:
    """The wanted keys as plain arrays: their bytes, and an open-addressing table of their hashes."""

    def __init__(self, keys: list[str]):
        self.keys = list(dict.fromkeys(keys))
        raw = [k.encode() for k in self.keys]
        size = 16
        while size < 4 * max(len(raw), 1):
            size *= 2
        self.mask = size - 1
        self.slots = np.full(size, -1, np.int32)  # index of the key in ``self.keys``, -1 empty
        self.hashes = np.zeros(size, np.int64)
        for i, k in enumerate(raw):
            h = fnv1a(k)
            s = h & self.mask
            while self.slots[s] >= 0:
                s = (s + 1) & self.mask
            self.slots[s] = i
            self.hashes[s] = h
        self.bytes = np.frombuffer(b"".join(raw), np.uint8).copy() if raw else np.zeros(0, np.uint8)
        self.offsets = np.zeros(len(raw) + 1, np.int64)
        self.offsets[1:] = np.cumsum([len(k) for k in raw])
        self._index = {k: i for i, k in enumerate(self.keys)}

    def index(self, key: str) -> int:
        """Row of ``key`` in the kernel's span arrays."""
        return self._index[key]


@njit(cache=True, inline="always")
def _is_key_byte(c):
    return (97 <= c <= 122) or (65 <= c <= 90) or (48 <= c <= 57) or c == 95 or c == 46 or c == 45


@njit(cache=True, inline="always")
def _find(buf, a, b, h, slots, hashes, mask, kbytes, koffs):
    s = h & mask
    while slots[s] >= 0:
        if hashes[s] == h:
            k = slots[s]
            if koffs[k + 1] - koffs[k] == b - a and same_bytes(buf, a, kbytes, koffs[k], b - a):
                return k
        s = (s + 1) & mask
    return -1


@njit(cache=True, nogil=True, parallel=True)
def tokenize_kv(buf, starts, ends, slots, hashes, mask, kbytes, koffs):
    """Value spans of the wanted keys, field-major ``(n_keys, n_lines)``, -1 where absent.

    Also returns, per line, the number of ``k=v`` pairs seen (wanted or not) and an error code
    (``E_QUOTE``: a quoted value never closes; ``E_NO_PAIRS``: nothing that looks like ``k=v``).
    """
    n = starts.size
    k = koffs.size - 1
    fs = np.full((k, n), -1, np.int64)
    fe = np.full((k, n), -1, np.int64)
    pairs = np.zeros(n, np.int32)
    err = np.zeros(n, np.int8)
    for r in prange(n):
        i = starts[r]
        e = ends[r]
        found = 0
        while i < e:
            c = buf[i]
            if c == SP or c == TAB:
                i += 1
                continue
            if c == LT:  # <PRI>, possibly glued to the first key
                j = i + 1
                while j < e and 48 <= buf[j] <= 57:
                    j += 1
                if j < e and buf[j] == GT and j > i + 1:
                    i = j + 1
                    continue
            a = i
            h = FNV_OFFSET
            while i < e and _is_key_byte(buf[i]):
                h = ((h ^ buf[i]) * FNV_PRIME) & MASK32
                i += 1
            if i == a or i >= e or buf[i] != EQ:  # not a k=v token: skip it
                i = word_end(buf, i, e)
                continue
            b = i
            i += 1
            if i < e and buf[i] == QUOTE:
                vs = i + 1
                ve = quoted_end(buf, vs, e)
                if ve < 0:
                    err[r] = E_QUOTE
                    break
                i = ve + 1
            else:
                vs = i
                ve = i = word_end(buf, i, e)
            found += 1
            f = _find(buf, a, b, h, slots, hashes, mask, kbytes, koffs)
            if f >= 0 and fs[f, r] < 0:
                fs[f, r] = vs
                fe[f, r] = ve
        pairs[r] = found
        if err[r] == OK and found == 0:
            err[r] = E_NO_PAIRS
    return fs, fe, pairs, err


class RouteTable:
    """Routes' ``when`` as plain arrays for ``route_lines``: route -> alternatives -> conditions -> values.

    ``routes`` is a list (one per route) of alternatives, each a list of ``(key row, [values])``; a route
    without alternatives takes every line.
    """

    def __init__(self, routes: list[list[list[tuple[int, list[str]]]]]):
        alt_off, cond_off, val_off = [0], [0], [0]
        cond_key: list[int] = []
        values: list[bytes] = []
        for alts in routes:
            for conds in alts:
                for key, vals in conds:
                    cond_key.append(key)
                    values.extend(v.encode() for v in vals)
                    val_off.append(len(values))
                cond_off.append(len(cond_key))
            alt_off.append(len(cond_off) - 1)
        self.catch_all = np.array([not alts for alts in routes], np.bool_)
        self.alt_off = np.array(alt_off, np.int64)
        self.cond_off = np.array(cond_off, np.int64)
        self.cond_key = np.array(cond_key, np.int64)
        self.val_off = np.array(val_off, np.int64)
        self.bytes = np.frombuffer(b"".join(values), np.uint8).copy() if values else np.zeros(0, np.uint8)
        self.byte_off = np.zeros(len(values) + 1, np.int64)
        self.byte_off[1:] = np.cumsum([len(v) for v in values])

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.catch_all, self.alt_off, self.cond_off, self.cond_key, self.val_off, self.bytes,
                self.byte_off)


@njit(cache=True, inline="always")
def _is_one_of(buf, a, b, vbytes, voff, v0, v1):
    for v in range(v0, v1):
        if voff[v + 1] - voff[v] == b - a and same_bytes(buf, a, vbytes, voff[v], b - a):
            return True
    return False


@njit(cache=True)
def route_lines(buf, fs, fe, err, catch_all, alt_off, cond_off, cond_key, val_off, vbytes, voff):
    """Index of the first route whose ``when`` each line matches (-1: a line the tokenizer rejected).

    A condition holds when the key is present with one of its values; an alternative when all its
    conditions hold; a route when any alternative does. A line no route takes gets the last route.
    Serial: well under a millisecond a chunk, less than a parallel region's start on a busy host.
    """
    n = err.size
    nroutes = catch_all.size
    which = np.full(n, -1, np.int32)
    for r in range(n):
        if err[r] != OK:
            continue
        which[r] = nroutes - 1
        for route in range(nroutes):
            if catch_all[route]:
                which[r] = route
                break
            hit = False
            for alt in range(alt_off[route], alt_off[route + 1]):
                ok = True
                for c in range(cond_off[alt], cond_off[alt + 1]):
                    k = cond_key[c]
                    a = fs[k, r]
                    if a < 0 or not _is_one_of(buf, a, fe[k, r], vbytes, voff, val_off[c], val_off[c + 1]):
                        ok = False
                        break
                if ok:
                    hit = True
                    break
            if hit:
                which[r] = route
                break
    return which

