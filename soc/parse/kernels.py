"""Numba kernels that find lines and fields in a chunk of bytes.

Every kernel works on the chunk as a ``uint8`` array and returns spans (start, end byte offsets; -1 for
absent) laid out field-major, so a field's spans are contiguous and can become an Arrow string-view column
that points into the chunk without copying (see ``arrow.py``). No Python objects, no regexes: the cost is
one pass over the bytes, and a malformed line can only produce an error code, never a crash.
"""

from __future__ import annotations

import numpy as np

from soc import jit
from soc.jit import njit, prange

NL, CR, SP, TAB, QUOTE, BSLASH, EQ = 10, 13, 32, 9, 34, 92, 61

# error codes of the tokenizers (see ``ERRORS`` for their wording)
OK, E_QUOTE, E_BRACKET, E_TOO_MANY = 0, 1, 2, 3
ERRORS = {
    E_QUOTE: "unterminated quoted field",
    E_BRACKET: "unterminated [bracketed] field",
    E_TOO_MANY: "more fields than the format has",
}


BLOCK = 1 << 20  # bytes per parallel block when looking for line ends
NUMPY_BYTES_PER_US = 500  # what the NumPy and decoder ways of small chunks read in a microsecond here


HIGH_BITS = np.uint64(0x8080808080808080)


def find_lines(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every line; the end excludes ``\\n`` and a ``\\r`` before it.

    Blocks of ``BLOCK`` bytes in parallel, eight bytes at a time: each block counts its newlines, then
    writes their places after the counts of the blocks before it. A small chunk by NumPy while Numba is not
    loaded (its fixed cost, ``soc.jit``, is more than such a chunk's whole parse)."""
    size = buf.size
    if jit.plain(1 + size // NUMPY_BYTES_PER_US):
        ends = np.flatnonzero(buf == NL)
        if size and buf[size - 1] != NL:
            ends = np.append(ends, size)
        starts = np.zeros(ends.size, np.int64)
        starts[1:] = ends[:-1] + 1
        ends[(ends > starts) & (buf[np.maximum(ends - 1, 0)] == CR)] -= 1
        return starts, ends.astype(np.int64, copy=False)
    return _find_lines(buf, buf[: size // 8 * 8].view(np.uint64), BLOCK)


LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
NL8 = np.uint64(0x0A0A0A0A0A0A0A0A)
ONES = np.uint64(0x0101010101010101)


@njit(cache=True, inline="always")
def _newline_bits(w):
    """The high bit of each byte of ``w`` that is a newline (exactly: no borrow between bytes)."""
    x = w ^ NL8
    return ~(((x & LOW7) + LOW7) | x | LOW7)


@njit(cache=True, nogil=True)
def _count_newlines(buf, words, i, e):
    c = 0
    while i < e and (i % 8 or i + 8 > e):
        c += buf[i] == NL
        i += 1
    while i + 8 <= e:
        c += ((_newline_bits(words[i // 8]) >> np.uint64(7)) * ONES) >> np.uint64(56)
        i += 8
    while i < e:
        c += buf[i] == NL
        i += 1
    return c


@njit(cache=True, nogil=True)
def _put_newlines(buf, words, i, e, ends, at):
    while i < e and (i % 8 or i + 8 > e):
        if buf[i] == NL:
            ends[at] = i
            at += 1
        i += 1
    while i + 8 <= e:
        if _newline_bits(words[i // 8]):
            for j in range(i, i + 8):
                if buf[j] == NL:
                    ends[at] = j
                    at += 1
        i += 8
    while i < e:
        if buf[i] == NL:
            ends[at] = i
            at += 1
        i += 1


@njit(cache=True, nogil=True, parallel=True)
def _find_lines(buf, words, block):
    size = buf.size
    n_blocks = max(1, (size + block - 1) // block)
    counts = np.zeros(n_blocks + 1, np.int64)
    for k in prange(n_blocks):
        counts[k + 1] = _count_newlines(buf, words, k * block, min(size, (k + 1) * block))
    for k in range(n_blocks):
        counts[k + 1] += counts[k]
    newlines = counts[n_blocks]
    tail = 1 if size and buf[size - 1] != NL else 0
    ends = np.empty(newlines + tail, np.int64)
    starts = np.empty(newlines + tail, np.int64)
    for k in prange(n_blocks):
        _put_newlines(buf, words, k * block, min(size, (k + 1) * block), ends, counts[k])
    if tail:
        ends[newlines] = size
    for r in prange(ends.size):
        starts[r] = ends[r - 1] + 1 if r else 0
    for r in prange(ends.size):  # after every start is set: ends change here
        e = ends[r]
        if e > starts[r] and buf[e - 1] == CR:
            ends[r] = e - 1
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


@njit(cache=True, nogil=True)
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
    """Whether ``buf`` holds any invalid UTF-8: blocks in parallel, ASCII skipped eight bytes at a time (a
    small chunk by Python's strict decoder, which refuses the same sequences, while Numba is not loaded)."""
    if jit.plain(1 + buf.size // NUMPY_BYTES_PER_US):
        try:
            buf.tobytes().decode()
        except UnicodeDecodeError:
            return True
        return False
    whole = buf.size // 8 * 8
    return _invalid_utf8(buf, buf[:whole].view(np.uint64), BLOCK)


@njit(cache=True, nogil=True, parallel=True)
def _invalid_utf8(buf, words, block):
    """A block starts at its first byte that is not a continuation byte (0x80-0xBF), so no sequence is cut:
    the block before checks the sequence through to its end (and finds a run of more than 3 invalid)."""
    size = buf.size
    n_blocks = max(1, (size + block - 1) // block)
    bad = np.zeros(n_blocks, np.bool_)
    for k in prange(n_blocks):
        i = _block_start(buf, k * block) if k else 0
        e = _block_start(buf, (k + 1) * block) if k + 1 < n_blocks else size
        while i < e:
            if i % 8 == 0 and i + 8 <= e and (words[i // 8] & HIGH_BITS) == 0:
                i += 8
                continue
            if buf[i] < 0x80:
                i += 1
                continue
            n = _utf8_bad_at(buf, i, size)
            if n == 0:
                bad[k] = True
                break
            i += n
    return bad.any()


@njit(cache=True, inline="always")
def _block_start(buf, i):
    """``i``, moved past at most 3 continuation bytes (a longer run is invalid anyway: the block before
    runs into it)."""
    for _ in range(3):
        if i < buf.size and 0x80 <= buf[i] <= 0xBF:
            i += 1
    return min(i, buf.size)


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


@njit(cache=True, nogil=True, parallel=True)
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


@njit(cache=True, nogil=True, parallel=True)
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
