"""Numba kernels for JSON records: a strict syntax check per record, and the records of a JSON array.

Polars' NDJSON reader decodes a whole buffer at once and fails it all on one syntax error, so every
record is checked here first (one pass over the bytes, no Python objects) and only valid ones reach it.
The check is stricter than the reader (control characters in strings, lone surrogates, depth), so a
record it passes never fails the decode; ``engines.json`` still isolates a disagreement by bisection.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

NL, CR, SP, TAB, QUOTE, BSLASH = 10, 13, 32, 9, 34, 92
LBRACE, RBRACE, LBRACKET, RBRACKET, COMMA, COLON = 123, 125, 91, 93, 44, 58
MAX_DEPTH = 64

# codes of ``validate``: OK and BLANK are not errors (a blank line is skipped, not dead-lettered)
OK, BLANK, E_NOT_OBJECT, E_TRUNCATED, E_UNEXPECTED, E_TRAILING, E_CONTROL, E_ESCAPE, E_DEPTH = range(9)
ERRORS = {
    E_NOT_OBJECT: "not a JSON object",
    E_TRUNCATED: "truncated JSON object",
    E_UNEXPECTED: "invalid JSON",
    E_TRAILING: "text after the JSON object",
    E_CONTROL: "control character inside a JSON string",
    E_ESCAPE: "invalid escape in a JSON string",
    E_DEPTH: f"JSON nested deeper than {MAX_DEPTH} levels",
}
# kinds of the spans ``scan_array`` finds
RECORD, JUNK, AFTER = 0, 1, 2

_VALUE, _VALUE_OR_END, _KEY_OR_END, _KEY, _COLON, _AFTER, _DONE = range(7)


@njit(cache=True, inline="always")
def _ws(c):
    return c == SP or c == TAB or c == NL or c == CR


@njit(cache=True, inline="always")
def _hex(c):
    return (48 <= c <= 57) or (65 <= c <= 70) or (97 <= c <= 102)


@njit(cache=True)
def _hex4(buf, i):
    v = 0
    for k in range(4):
        c = buf[i + k]
        v = v * 16 + (c - 48 if c <= 57 else (c | 32) - 87)
    return v


@njit(cache=True)
def _string_end(buf, i, e):
    """Index after the string whose opening quote is at ``i``; or (-code, position) on an error."""
    i += 1
    while i < e:
        c = buf[i]
        if c == QUOTE:
            return i + 1, 0
        if c < 0x20:
            return i, E_CONTROL
        if c == BSLASH:
            if i + 1 >= e:
                return e, E_TRUNCATED
            n = buf[i + 1]
            if n == 117:  # \uXXXX, surrogates in pairs
                if i + 6 > e:
                    return e, E_TRUNCATED
                for k in range(2, 6):
                    if not _hex(buf[i + k]):
                        return i, E_ESCAPE
                v = _hex4(buf, i + 2)
                if 0xDC00 <= v <= 0xDFFF:
                    return i, E_ESCAPE
                if 0xD800 <= v <= 0xDBFF:
                    if i + 12 > e or buf[i + 6] != BSLASH or buf[i + 7] != 117:
                        return i, E_ESCAPE
                    for k in range(8, 12):
                        if not _hex(buf[i + k]):
                            return i, E_ESCAPE
                    w = _hex4(buf, i + 8)
                    if not (0xDC00 <= w <= 0xDFFF):
                        return i, E_ESCAPE
                    i += 12
                else:
                    i += 6
                continue
            if n != QUOTE and n != BSLASH and n != 47 and n != 98 and n != 102 and n != 110 and n != 114 \
                    and n != 116:
                return i, E_ESCAPE
            i += 2
            continue
        i += 1
    return e, E_TRUNCATED


@njit(cache=True)
def _number_end(buf, i, e):
    """Index after the JSON number at ``i`` (-1 if it is not one)."""
    if buf[i] == 45:
        i += 1
    if i >= e or not (48 <= buf[i] <= 57):
        return -1
    if buf[i] == 48:
        i += 1
    else:
        while i < e and 48 <= buf[i] <= 57:
            i += 1
    if i < e and buf[i] == 46:
        i += 1
        if i >= e or not (48 <= buf[i] <= 57):
            return -1
        while i < e and 48 <= buf[i] <= 57:
            i += 1
    if i < e and (buf[i] == 101 or buf[i] == 69):
        i += 1
        if i < e and (buf[i] == 43 or buf[i] == 45):
            i += 1
        if i >= e or not (48 <= buf[i] <= 57):
            return -1
        while i < e and 48 <= buf[i] <= 57:
            i += 1
    return i


@njit(cache=True)
def _literal_end(buf, i, e):
    """Index after ``true``, ``false`` or ``null`` at ``i`` (-1 if none is there)."""
    c = buf[i]
    if c == 116 and i + 4 <= e and buf[i + 1] == 114 and buf[i + 2] == 117 and buf[i + 3] == 101:
        return i + 4
    if c == 110 and i + 4 <= e and buf[i + 1] == 117 and buf[i + 2] == 108 and buf[i + 3] == 108:
        return i + 4
    if c == 102 and i + 5 <= e and buf[i + 1] == 97 and buf[i + 2] == 108 and buf[i + 3] == 115 \
            and buf[i + 4] == 101:
        return i + 5
    return -1


@njit(cache=True)
def check_object(buf, i, e, stack):
    """(code, byte position) of the text ``buf[i:e]`` as one JSON object with whitespace around it."""
    while i < e and _ws(buf[i]):
        i += 1
    if i >= e:
        return BLANK, i
    if buf[i] != LBRACE:
        return E_NOT_OBJECT, i
    depth = 0
    state = _VALUE
    while True:
        while i < e and _ws(buf[i]):
            i += 1
        if i >= e:
            return (OK, i) if state == _DONE else (E_TRUNCATED, i)
        c = buf[i]
        if state == _DONE:
            return E_TRAILING, i
        if state == _VALUE or state == _VALUE_OR_END:
            if c == RBRACKET and state == _VALUE_OR_END:
                depth -= 1
                i += 1
                state = _AFTER if depth > 0 else _DONE
            elif c == LBRACE or c == LBRACKET:
                if depth == MAX_DEPTH:
                    return E_DEPTH, i
                stack[depth] = c
                depth += 1
                i += 1
                state = _KEY_OR_END if c == LBRACE else _VALUE_OR_END
            elif c == QUOTE:
                i, code = _string_end(buf, i, e)
                if code:
                    return code, i
                state = _AFTER
            else:
                j = _literal_end(buf, i, e) if c >= 97 else _number_end(buf, i, e)
                if j < 0:
                    return E_UNEXPECTED, i
                i = j
                state = _AFTER
        elif state == _KEY_OR_END or state == _KEY:
            if c == RBRACE and state == _KEY_OR_END:
                depth -= 1
                i += 1
                state = _AFTER if depth > 0 else _DONE
            elif c == QUOTE:
                i, code = _string_end(buf, i, e)
                if code:
                    return code, i
                state = _COLON
            else:
                return E_UNEXPECTED, i
        elif state == _COLON:
            if c != COLON:
                return E_UNEXPECTED, i
            i += 1
            state = _VALUE
        else:  # _AFTER a value: a comma or the close of the container it is in
            top = stack[depth - 1]
            if c == COMMA:
                i += 1
                state = _KEY if top == LBRACE else _VALUE
            elif (c == RBRACE and top == LBRACE) or (c == RBRACKET and top == LBRACKET):
                depth -= 1
                i += 1
                state = _AFTER if depth > 0 else _DONE
            else:
                return E_UNEXPECTED, i


@njit(cache=True, parallel=True)
def validate(buf, starts, ends):
    """Per span, the code of ``check_object`` and the byte (relative to the span) where it stopped."""
    n = starts.size
    code = np.zeros(n, np.int8)
    pos = np.zeros(n, np.int64)
    for r in prange(n):
        stack = np.empty(MAX_DEPTH, np.uint8)
        c, p = check_object(buf, starts[r], ends[r], stack)
        code[r] = c
        pos[r] = p - starts[r]
    return code, pos


@njit(cache=True)
def _line_end(buf, i):
    while i < buf.size and buf[i] != NL:
        i += 1
    return i


@njit(cache=True)
def scan_array(buf, i, phase, capacity):
    """The spans of a JSON array's elements in ``buf[i:]``: each ``{...}`` (brackets matched, strings
    skipped) is a RECORD; anything else is JUNK up to its line end (AFTER the array's ``]``, until a
    new ``[``). ``phase`` is 0 before the ``[``, 1 inside, 2 after. Returns the spans, the phase at the
    end and where an element cut by the end of ``buf`` starts (-1 if none)."""
    starts = np.empty(capacity, np.int64)
    ends = np.empty(capacity, np.int64)
    kinds = np.empty(capacity, np.int8)
    n = 0
    size = buf.size
    while i < size:
        c = buf[i]
        if _ws(c) or (phase == 1 and c == COMMA):
            i += 1
            continue
        if phase != 1 and c == LBRACKET:
            phase = 1
            i += 1
            continue
        if phase == 1 and c == RBRACKET:
            phase = 2
            i += 1
            continue
        if phase == 1 and c == LBRACE:
            depth = 0
            j = i
            while j < size:
                b = buf[j]
                if b == QUOTE:
                    j += 1
                    while j < size and buf[j] != QUOTE and buf[j] != NL:
                        j += 2 if buf[j] == BSLASH else 1
                    if j >= size:
                        break
                    if buf[j] == NL:  # a string never spans lines: the element ends here, broken
                        depth = 0
                        break
                elif b == LBRACE or b == LBRACKET:
                    depth += 1
                elif b == RBRACE or b == RBRACKET:
                    depth -= 1
                    if depth == 0:
                        j += 1
                        break
                j += 1
            if j >= size and depth != 0:
                return starts[:n], ends[:n], kinds[:n], phase, i
            starts[n] = i
            ends[n] = min(j, size)
            kinds[n] = RECORD
            n += 1
            i = j
            continue
        e = _line_end(buf, i)
        starts[n] = i
        ends[n] = e
        kinds[n] = AFTER if phase == 2 else JUNK
        n += 1
        i = e
    return starts[:n], ends[:n], kinds[:n], phase, -1


@njit(cache=True)
def compact(buf, starts, ends):
    """The spans joined into one NDJSON buffer, one per line (line ends inside a span become spaces)."""
    total = 0
    for r in range(starts.size):
        total += ends[r] - starts[r] + 1
    out = np.empty(total, np.uint8)
    k = 0
    for r in range(starts.size):
        for i in range(starts[r], ends[r]):
            c = buf[i]
            out[k] = SP if c == NL or c == CR else c
            k += 1
        out[k] = NL
        k += 1
    return out
