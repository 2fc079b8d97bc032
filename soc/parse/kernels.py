"""Numba kernels that find lines and fields in a chunk of bytes.

Every kernel works on the chunk as a ``uint8`` array and returns spans (start, end byte offsets; -1 for
absent) laid out field-major, so a field's spans are contiguous and can become an Arrow string-view column
that points into the chunk without copying (see ``arrow.py``). No Python objects, no regexes: the cost is
one pass over the bytes, and a malformed line can only produce an error code, never a crash.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

NL, CR, SP, TAB, QUOTE, BSLASH, EQ = 10, 13, 32, 9, 34, 92, 61

# error codes of the tokenizers (see ``ERRORS`` for their wording)
OK, E_QUOTE, E_BRACKET, E_TOO_MANY = 0, 1, 2, 3
ERRORS = {
    E_QUOTE: "unterminated quoted field",
    E_BRACKET: "unterminated [bracketed] field",
    E_TOO_MANY: "more fields than the format has",
}


BLOCK = 1 << 20  # bytes per parallel block when looking for line ends


HIGH_BITS = np.uint64(0x8080808080808080)


def find_lines(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every line; the end excludes ``\\n`` and a ``\\r`` before it.

    NumPy's vectorised compare finds the newlines at memory speed (faster than a byte loop here).
    """
    newlines = np.flatnonzero(buf == NL)
    ends = newlines if buf.size == 0 or buf[-1] == NL else np.append(newlines, buf.size)
    starts = np.empty_like(ends)
    if ends.size:
        starts[0] = 0
        starts[1:] = newlines[: ends.size - 1] + 1
        has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == CR)
        ends = ends - has_cr
    return starts, ends


@njit(cache=True)
def _utf8_bad_at(buf, i, e):
    """Length of the valid UTF-8 sequence at ``i``, or 0 if it is invalid."""
    c = buf[i]
    if c < 0x80:
        return 1
    if 0xC2 <= c <= 0xDF:
        n = 2
        lo, hi = 0x80, 0xBF
    elif 0xE0 <= c <= 0xEF:
        n = 3
        lo = 0xA0 if c == 0xE0 else 0x80
        hi = 0x9F if c == 0xED else 0xBF
    elif 0xF0 <= c <= 0xF4:
        n = 4
        lo = 0x90 if c == 0xF0 else 0x80
        hi = 0x8F if c == 0xF4 else 0xBF
    else:
        return 0
    if i + n > e:
        return 0
    if not (lo <= buf[i + 1] <= hi):
        return 0
    for k in range(2, n):
        if not (0x80 <= buf[i + k] <= 0xBF):
            return 0
    return n


@njit(cache=True)
def repair_utf8(buf, starts, ends):
    """Replace every byte of an invalid UTF-8 sequence with ``?`` in place; return per-line repair counts.

    Offsets stay valid (one byte for one byte), so a repaired line still parses; the caller keeps the
    original bytes for dead letters.
    """
    n = starts.size
    bad = np.zeros(n, np.int32)
    for r in range(n):
        i = starts[r]
        e = ends[r]
        while i < e:
            if buf[i] < 0x80:
                i += 1
                continue
            k = _utf8_bad_at(buf, i, e)
            if k == 0:
                buf[i] = 63
                bad[r] += 1
                i += 1
            else:
                i += k
    return bad


def has_invalid_utf8(buf: np.ndarray) -> bool:
    """Whether ``buf`` holds any invalid UTF-8 (ASCII is skipped eight bytes at a time)."""
    whole = buf.size // 8 * 8
    return _invalid_utf8(buf, buf[:whole].view(np.uint64))


@njit(cache=True)
def _invalid_utf8(buf, words):
    size = buf.size
    i = 0
    while i < size:
        if i % 8 == 0 and i // 8 < words.size and (words[i // 8] & HIGH_BITS) == 0:
            i += 8
            continue
        if buf[i] < 0x80:
            i += 1
            continue
        k = _utf8_bad_at(buf, i, size)
        if k == 0:
            return True
        i += k
    return False


@njit(cache=True)
def same_bytes(buf, i, text, at, n):
    """Whether ``buf[i:i + n]`` equals ``text[at:at + n]`` (the caller checks that both are long enough)."""
    k = 0
    while k < n and buf[i + k] == text[at + k]:
        k += 1
    return k == n


@njit(cache=True)
def find_bytes(buf, i, e, text, at, n):
    """First occurrence of ``text[at:at + n]`` in ``buf[i:e]``, or -1."""
    first = text[at]
    last = e - n
    while i <= last:
        if buf[i] == first and same_bytes(buf, i, text, at, n):
            return i
        i += 1
    return -1


@njit(cache=True, inline="always")
def quoted_end(buf, i, e):
    """Index of the ``"`` closing a value that starts at ``i`` (a backslash escapes the next byte); -1 if
    the line ends first."""
    while i < e:
        c = buf[i]
        if c == BSLASH:
            i += 2
            continue
        if c == QUOTE:
            return i
        i += 1
    return -1


@njit(cache=True, inline="always")
def word_end(buf, i, e):
    """Index of the space or tab ending the bare value that starts at ``i`` (``e`` if none)."""
    while i < e and buf[i] != SP and buf[i] != TAB:
        i += 1
    return i


@njit(cache=True, parallel=True)
def tokenize_words(buf, starts, ends, k, brackets, quotes=True):
    """Split lines into at most ``k`` whitespace-separated fields.

    ``"..."`` is one field (backslash escapes the next byte, so ``\\"`` stays inside) and, when
    ``brackets`` is set, so is ``[...]``; the quotes and brackets are not part of the field. With
    ``quotes`` false a ``"`` is an ordinary byte (IIS writes ``+`` for spaces and never quotes).
    """
    n = starts.size
    fs = np.full((k, n), -1, np.int64)
    fe = np.full((k, n), -1, np.int64)
    count = np.zeros(n, np.int32)
    err = np.zeros(n, np.int8)
    for r in prange(n):
        i = starts[r]
        e = ends[r]
        f = 0
        while i < e:
            c = buf[i]
            if c == SP or c == TAB:
                i += 1
                continue
            if f == k:
                err[r] = E_TOO_MANY
                break
            if c == QUOTE and quotes:
                s = i + 1
                i = quoted_end(buf, s, e)
                if i < 0:
                    err[r] = E_QUOTE
                    break
                fs[f, r] = s
                fe[f, r] = i
                f += 1
                i += 1
            elif c == 91 and brackets:
                i += 1
                s = i
                while i < e and buf[i] != 93:
                    i += 1
                if i >= e:
                    err[r] = E_BRACKET
                    break
                fs[f, r] = s
                fe[f, r] = i
                f += 1
                i += 1
            else:
                s = i
                i = word_end(buf, i, e)
                fs[f, r] = s
                fe[f, r] = i
                f += 1
        count[r] = f
    return fs, fe, count, err


@njit(cache=True, parallel=True)
def split_request(buf, s, e):
    """Split an HTTP request line ``METHOD target HTTP/x`` at its first and last space.

    The target may itself contain spaces (attack traffic often does), so it is everything in between.
    Returns spans of method, target, protocol, and the target's path and query (split at the first
    ``?``, which is not part of either); -1 where absent.
    """
    n = s.size
    out_s = np.full((5, n), -1, np.int64)
    out_e = np.full((5, n), -1, np.int64)
    for r in prange(n):
        a = s[r]
        b = e[r]
        if a < 0 or a >= b:
            continue
        first = -1
        for i in range(a, b):
            if buf[i] == SP:
                first = i
                break
        if first < 0:  # a bare target (e.g. garbage sent to the port)
            ts, te = a, b
        else:
            last = first
            for i in range(b - 1, first, -1):
                if buf[i] == SP:
                    last = i
                    break
            out_s[0, r] = a
            out_e[0, r] = first
            ts, te = first + 1, b
            if last > first:
                te = last
                out_s[2, r] = last + 1
                out_e[2, r] = b
        out_s[1, r] = ts
        out_e[1, r] = te
        q = -1
        for i in range(ts, te):
            if buf[i] == 63:
                q = i
                break
        out_s[3, r] = ts
        out_e[3, r] = te if q < 0 else q
        if q >= 0:
            out_s[4, r] = q + 1
            out_e[4, r] = te
    return out_s, out_e
