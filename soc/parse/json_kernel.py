"""Numba kernels for JSON records: a strict syntax check per record that also finds the values of the
spec's fields (``extract``), and the records of a JSON array.

Every record is checked here (one pass over the bytes, no Python objects), and the values of the fields
wanted are found in the same pass, so most records never meet a JSON reader; ``extract_typed`` also
types the timestamps and integers among them there, while the record's bytes are in the cache. The
check is stricter than the readers (control characters in strings, lone surrogates, depth), so a record
it passes and that goes to a reader (``engines.json``: a value of an unexpected type) never fails the
decode; ``engines.json`` still isolates a disagreement by bisection.
"""

from __future__ import annotations

import sys

import numpy as np

from soc.jit import intrinsic, njit, prange
from soc.parse.arrow import _put32  # the Arrow string-view writer, shared
from soc.parse.fasttime import _MONTHS, DECIMAL, _parse_one  # the timestamp parser (decimal epochs too)

# Helpers called per member that allocate nothing are compiled without reference counting: each call of
# a function taking arrays otherwise increfs and decrefs every array argument with atomic instructions,
# which took ~40% of the walk's time (perf: NRT_incref/NRT_decref) and made the two halves of a batch
# contend on the shared arrays' counters.
_leaf = njit(cache=True, _nrt=False)

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


LITTLE_ENDIAN = sys.byteorder == "little"  # the 8-byte string scan reads words as little-endian


def _bytes8(v: int):  # an llvmlite ir.Constant
    from llvmlite import ir

    return ir.Constant(ir.IntType(64), v * 0x0101010101010101)


@intrinsic
def _special8(typingctx, arr, idx):
    """Offset (0..7) of the first quote, backslash or control byte among the 8 bytes at ``arr[idx]``, 8 if
    none: one unaligned load and word arithmetic (x86 is little-endian) in place of 8 byte tests. The
    caller makes sure the 8 bytes are in the array."""
    from llvmlite import ir
    from numba import types

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        i64 = ir.IntType(64)
        w = builder.load(builder.bitcast(builder.gep(ary.data, [args[1]]), i64.as_pointer()), align=1)
        high = _bytes8(0x80)

        def below(x, n):  # high bit set in the bytes of x below n (exact up to the lowest one)
            return builder.and_(builder.and_(builder.sub(x, _bytes8(n)), builder.not_(x)), high)

        quote, bslash = below(builder.xor(w, _bytes8(QUOTE)), 1), below(builder.xor(w, _bytes8(BSLASH)), 1)
        m = builder.or_(builder.or_(quote, bslash), below(w, 32))
        return builder.lshr(builder.cttz(m, ir.Constant(ir.IntType(1), 0)), ir.Constant(i64, 3))
    return types.int64(arr, idx), codegen


@njit(cache=True, inline="always")
def _plain_end(buf, i, e):
    """The first quote, backslash or control byte in ``buf[i:e]`` (``e`` if none), 8 bytes a step."""
    while LITTLE_ENDIAN and i + 8 <= e:
        k = _special8(buf, i)
        if k < 8:
            return i + k
        i += 8
    while i < e:
        c = buf[i]
        if c == QUOTE or c == BSLASH or c < 32:
            return i
        i += 1
    return e


@njit(cache=True)
def _string_end(buf, i, e):
    """Index after the string whose opening quote is at ``i``; or (-code, position) on an error."""
    i += 1
    while i < e:
        i = _plain_end(buf, i, e)  # 8 bytes a step up to the next quote, backslash or control byte
        if i >= e:
            break
        c = buf[i]
        if c == QUOTE:
            return i + 1, 0
        if c < 0x20:
            return i, E_CONTROL
        # a backslash: _plain_end stops at nothing else
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
    return e, E_TRUNCATED


@njit(cache=True, inline="always")
def _at(buf, i, e):
    """``buf[i]``, or 0 outside ``[0, e)``: scanners read ahead without a bounds check of their own."""
    return buf[i] if 0 <= i < e else 0


@_leaf
def _number_end(buf, i, e):
    """Index after the JSON number at ``i`` (-1 if it is not one); reads nothing at or past ``e``."""
    j = i
    if _at(buf, j, e) == 45:
        j += 1
    c = _at(buf, j, e)
    if c == 48:
        j += 1
    elif 49 <= c <= 57:
        while 48 <= _at(buf, j, e) <= 57:
            j += 1
    else:
        return -1
    if _at(buf, j, e) == 46:
        j += 1
        d = j
        while 48 <= _at(buf, j, e) <= 57:
            j += 1
        if j == d:
            return -1
    c = _at(buf, j, e)
    if c == 101 or c == 69:
        j += 1
        c = _at(buf, j, e)
        if c == 43 or c == 45:
            j += 1
        d = j
        while 48 <= _at(buf, j, e) <= 57:
            j += 1
        if j == d:
            return -1
    return j


@_leaf
def _literal_end(buf, i, e):
    """Index after ``true``, ``false`` or ``null`` at ``i`` (-1 if none is there)."""
    c = _at(buf, i, e)
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


@njit(cache=True, nogil=True, parallel=True)
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


# ---------------------------------------------------------------------------------------------------------
# The extractor: the same check as ``check_object``, which also finds the values of the spec's fields.

# the JSON type a field is read as (``engines.json.leaf_type``)
T_STRING, T_INT, T_FLOAT, T_BOOL, T_LIST, T_LIST_KEY = range(6)
LIST_SPAN = -3  # ``fe`` of a list not joined yet
MAX_INT_DIGITS = 18  # longer integers may not fit an int64: the slow reader decides (it makes them null)
BLOCK_RECORDS = 512  # records per parallel task (each task allocates its stacks once)
FNV_OFFSET, FNV_PRIME, MASK32 = 2166136261, 16777619, 0xFFFFFFFF


def fnv1a(key: bytes, seed: int = FNV_OFFSET) -> int:
    h = seed
    for c in key:
        h = ((h ^ c) * FNV_PRIME) & MASK32
    return h


def node_hash(parent: int, key: bytes) -> int:
    """Hash of a key under the object node ``parent``, as ``_node_of`` computes it."""
    return ((fnv1a(key) ^ parent) * FNV_PRIME) & MASK32


class PathTable:
    """The spec's field paths as a tree of object keys (node 0 is the record), in plain arrays for the kernel.

    A node is found by the hash of (parent node, key bytes) in an open-addressing table and verified byte by
    byte. ``paths`` are lists of keys (``["alert", "signature"]``; flat specs have one key per path).
    ``kinds`` is the ``T_*`` type of each field, ``subkeys`` the KEY of ``list:KEY`` fields (else "").
    """

    def __init__(self, paths: list[list[str]], kinds: list[int], subkeys: list[str]):
        parent, field, keys = [-1], [-1], [b""]
        index: dict[tuple[int, bytes], int] = {}
        for f, path in enumerate(paths):
            node = 0
            for depth, part in enumerate(path):
                key = (node, part.encode())
                if key not in index:
                    index[key] = len(parent)
                    parent.append(node)
                    field.append(-1)
                    keys.append(key[1])
                node = index[key]
                if depth == len(path) - 1:
                    field[node] = f
        size = 16
        while size < 4 * len(parent):
            size *= 2
        self.mask = size - 1
        self.slots = np.full(size, -1, np.int32)
        self.hashes = np.zeros(size, np.int64)
        for (p, key), node in index.items():
            h = node_hash(p, key)
            s = h & self.mask
            while self.slots[s] >= 0:
                s = (s + 1) & self.mask
            self.slots[s] = node
            self.hashes[s] = h
        self.parent = np.array(parent, np.int32)
        self.field = np.array(field, np.int32)
        self.kind = np.array([kinds[f] if f >= 0 else -1 for f in field], np.int8)
        self.bytes, self.offsets = _packed(keys)
        self.sub_bytes, self.sub_offsets = _packed([k.encode() for k in subkeys])
        self.lists = np.array([f for f, k in enumerate(kinds) if k in (T_LIST, T_LIST_KEY)], np.int64)
        self.n_fields = len(paths)

    def arrays(self) -> tuple:
        return (self.slots, self.hashes, self.mask, self.parent, self.field, self.kind, self.bytes, self.offsets,
                self.sub_bytes, self.sub_offsets, self.lists, self.n_fields)


def _packed(items: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    data = np.frombuffer(b"".join(items), np.uint8).copy() if any(items) else np.zeros(0, np.uint8)
    offsets = np.zeros(len(items) + 1, np.int64)
    offsets[1:] = np.cumsum([len(k) for k in items])
    return data, offsets


@njit(cache=True, inline="always")
def _string(buf, i, e):
    """Like ``_string_end``, also telling whether the string holds an escape."""
    j = _plain_end(buf, i + 1, e)
    if j >= e:
        return e, E_TRUNCATED, False
    if buf[j] == QUOTE:
        return j + 1, 0, False
    j, code = _string_end(buf, i, e)  # a backslash or a control byte
    return j, code, True


@njit(cache=True, inline="always")
def _node_of(buf, a, b, h, parent, slots, hashes, mask, kparent, kbytes, koffs):
    """The node of key ``buf[a:b]`` (FNV-1a hash ``h``) under ``parent``, or -1."""
    h = ((h ^ parent) * FNV_PRIME) & MASK32
    s = h & mask
    while slots[s] >= 0:
        if hashes[s] == h:
            k = slots[s]
            n = koffs[k + 1] - koffs[k]
            if kparent[k] == parent and n == b - a:
                at = koffs[k]
                m = 0
                while m < n and buf[a + m] == kbytes[at + m]:
                    m += 1
                if m == n:
                    return k
        s = (s + 1) & mask
    return -1


@njit(cache=True, inline="always")
def _put_utf8(out, k, v):
    if v < 0x80:
        out[k] = v
        return k + 1
    if v < 0x800:
        out[k] = 0xC0 | (v >> 6)
        out[k + 1] = 0x80 | (v & 0x3F)
        return k + 2
    if v < 0x10000:
        out[k] = 0xE0 | (v >> 12)
        out[k + 1] = 0x80 | ((v >> 6) & 0x3F)
        out[k + 2] = 0x80 | (v & 0x3F)
        return k + 3
    out[k] = 0xF0 | (v >> 18)
    out[k + 1] = 0x80 | ((v >> 12) & 0x3F)
    out[k + 2] = 0x80 | ((v >> 6) & 0x3F)
    out[k + 3] = 0x80 | (v & 0x3F)
    return k + 4


@njit(cache=True)
def unescape(buf, a, b, out, k):
    """The checked JSON string text ``buf[a:b]`` decoded into ``out`` from ``k``; returns the end in ``out``.
    Never longer than the text, so a value decoded at its own offset stays inside its record."""
    i = a
    while i < b:
        c = buf[i]
        if c != BSLASH:
            out[k] = c
            k += 1
            i += 1
            continue
        n = buf[i + 1]
        if n == 117:
            v = _hex4(buf, i + 2)
            i += 6
            if 0xD800 <= v <= 0xDBFF:
                v = 0x10000 + ((v - 0xD800) << 10) + (_hex4(buf, i + 2) - 0xDC00)
                i += 6
            k = _put_utf8(out, k, v)
            continue
        out[k] = 8 if n == 98 else 12 if n == 102 else NL if n == 110 else CR if n == 114 else TAB if n == 116 \
            else n
        k += 1
        i += 2
    return k


@njit(cache=True)
def _skip_value(buf, i):
    """Index after the (checked) JSON value at ``i``."""
    c = buf[i]
    if c == QUOTE:
        j, _ = _string_end(buf, i, buf.size)
        return j
    if c == LBRACE or c == LBRACKET:
        depth = 0
        while True:
            c = buf[i]
            if c == QUOTE:
                i, _ = _string_end(buf, i, buf.size)
                continue
            if c == LBRACE or c == LBRACKET:
                depth += 1
            elif c == RBRACE or c == RBRACKET:
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    while i < buf.size and not (_ws(buf[i]) or buf[i] == COMMA or buf[i] == RBRACE or buf[i] == RBRACKET):
        i += 1
    return i


@njit(cache=True)
def _skip_ws(buf, i):
    while _ws(buf[i]):
        i += 1
    return i


@njit(cache=True)
def _join_list(buf, i, out, key_at, key_len, sub_bytes):
    """The strings of the (checked) JSON array at ``i`` joined by ``,`` into ``out`` at ``i``: its elements,
    or with ``key_len >= 0`` each object element's value of that key (null or absent values are left out,
    as Polars' ``list.join`` does). Returns the end in ``out``, or -1 for an element of another type."""
    k = i
    first = True
    i = _skip_ws(buf, i + 1)
    if buf[i] == RBRACKET:
        return k
    while True:
        c = buf[i]
        a = -1
        b = -1
        found = False
        if key_len < 0:
            if c == QUOTE:
                a = i + 1
                i = _skip_value(buf, i)
                b = i - 1
            elif c == 110:
                i += 4
            else:
                return -1
        else:
            if c != LBRACE:
                return -1
            i = _skip_ws(buf, i + 1)
            while buf[i] != RBRACE:
                ks = i + 1
                i = _skip_value(buf, i)
                ke = i - 1
                i = _skip_ws(buf, i)
                i = _skip_ws(buf, i + 1)  # the colon
                if not _plain(buf, ks, ke):
                    return -1
                match = not found and ke - ks == key_len
                m = 0
                while match and m < key_len:
                    match = buf[ks + m] == sub_bytes[key_at + m]
                    m += 1
                found = found or match
                if match and buf[i] == QUOTE:
                    a = i + 1
                    i = _skip_value(buf, i)
                    b = i - 1
                elif match and buf[i] != 110:
                    return -1
                else:
                    i = _skip_value(buf, i)
                i = _skip_ws(buf, i)
                if buf[i] == COMMA:
                    i = _skip_ws(buf, i + 1)
            i += 1
        if a >= 0:
            if not first:
                out[k] = COMMA
                k += 1
            first = False
            if a < b and not _plain(buf, a, b):
                k = unescape(buf, a, b, out, k)
            else:
                for m in range(a, b):
                    out[k + m - a] = buf[m]
                k += b - a
        i = _skip_ws(buf, i)
        if buf[i] == RBRACKET:
            return k
        i = _skip_ws(buf, i + 1)  # the comma


@njit(cache=True)
def _plain(buf, a, b):
    for m in range(a, b):
        if buf[m] == BSLASH:
            return False
    return True


@njit(cache=True, inline="always")
def _int_ok(buf, i, j):
    """Whether the JSON number ``buf[i:j]`` is an integer that surely fits an int64 (and is not ``-0``)."""
    a = i + 1 if buf[i] == 45 else i
    if j - a > MAX_INT_DIGITS or (buf[i] == 45 and j - a == 1 and buf[a] == 48):
        return False
    for m in range(a, j):
        if not (48 <= buf[m] <= 57):
            return False
    return True


@njit(cache=True)
def extract_object(buf, i, e, r, stack, nodes, seen, fs, fe, aux, size, slots, hashes, mask, kparent, kfield,
                   kkind, kbytes, koffs):
    """``check_object`` that also records, in row ``r`` of ``fs``/``fe``, the value span of each field
    of the table: string contents (decoded into ``aux`` at the same offset when escaped, the span then
    shifted by ``size``), numbers and ``true``/``false`` as written (null stays absent), and the ``[`` of
    a list (``fe`` = ``LIST_SPAN``, joined later). The first occurrence of a key wins. Returns the code,
    the byte where the check stopped, whether the record needs the slow reader (a value of another
    JSON type than its field's, a wanted key written with escapes, a number that may not fit) and whether a
    value was decoded into ``aux``."""
    while i < e and _ws(buf[i]):
        i += 1
    if i >= e:
        return BLANK, i, False, False
    if buf[i] != LBRACE:
        return E_NOT_OBJECT, i, False, False
    for k in range(seen.size):
        seen[k] = False
    slow = False
    decoded = False  # a value was decoded into ``aux``
    depth = 0
    state = _VALUE
    pending = 0  # node of the value to read: the record itself first, -1 for a value nobody wants
    while True:
        while i < e and _ws(buf[i]):
            i += 1
        if i >= e:
            return (OK, i, slow, decoded) if state == _DONE else (E_TRUNCATED, i, slow, decoded)
        c = buf[i]
        if state == _DONE:
            return E_TRAILING, i, slow, decoded
        if state == _VALUE or state == _VALUE_OR_END:
            node = pending
            pending = -1
            f = kfield[node] if node > 0 else -1
            if c == RBRACKET and state == _VALUE_OR_END:
                depth -= 1
                i += 1
                state = _AFTER if depth > 0 else _DONE
            elif c == LBRACE or c == LBRACKET:
                if depth == MAX_DEPTH:
                    return E_DEPTH, i, slow, decoded
                stack[depth] = c
                nodes[depth] = node if (c == LBRACE and node >= 0 and f < 0) else -1
                if f >= 0:
                    if c == LBRACKET and kkind[node] >= T_LIST:
                        fs[r, f] = i
                        fe[r, f] = LIST_SPAN
                    else:
                        slow = True
                depth += 1
                i += 1
                state = _KEY_OR_END if c == LBRACE else _VALUE_OR_END
            elif c == QUOTE:
                j, code, esc = _string(buf, i, e)
                if code:
                    return code, j, slow, decoded
                if f >= 0:
                    if kkind[node] != T_STRING and kkind[node] != T_LIST:  # a string for a list: one element
                        slow = True
                    elif esc:
                        fs[r, f] = i + 1 + size
                        fe[r, f] = unescape(buf, i + 1, j - 1, aux, i + 1) + size
                        decoded = True
                    else:
                        fs[r, f] = i + 1
                        fe[r, f] = j - 1
                i = j
                state = _AFTER
            else:
                j = _literal_end(buf, i, e) if c >= 97 else _number_end(buf, i, e)
                if j < 0:
                    return E_UNEXPECTED, i, slow, decoded
                if f >= 0:
                    kind = kkind[node]
                    if c == 110:
                        pass  # null: absent (a later duplicate key does not count, the first one wins)
                    elif (c >= 97 and kind != T_STRING and kind != T_BOOL) or (c < 97 and kind >= T_BOOL) or \
                            (kind == T_INT and not _int_ok(buf, i, j)):
                        slow = True
                    else:
                        fs[r, f] = i
                        fe[r, f] = j
                i = j
                state = _AFTER
        elif state == _KEY_OR_END or state == _KEY:
            if c == RBRACE and state == _KEY_OR_END:
                depth -= 1
                i += 1
                state = _AFTER if depth > 0 else _DONE
            elif c == QUOTE:
                parent = nodes[depth - 1]
                if parent < 0:
                    j, code = _string_end(buf, i, e)
                    if code:
                        return code, j, slow, decoded
                else:  # a key of a wanted object: hashed as it is scanned
                    j = i + 1
                    h = FNV_OFFSET
                    while j < e and buf[j] != QUOTE and buf[j] != BSLASH and buf[j] >= 0x20:
                        h = ((h ^ buf[j]) * FNV_PRIME) & MASK32
                        j += 1
                    if j < e and buf[j] == QUOTE:
                        k = _node_of(buf, i + 1, j, h, parent, slots, hashes, mask, kparent, kbytes, koffs)
                        j += 1
                        if k > 0 and not seen[k]:
                            seen[k] = True
                            pending = k
                    else:
                        j, code = _string_end(buf, i, e)
                        if code:
                            return code, j, slow, decoded
                        slow = True  # a wanted object's key written with escapes: the reader decodes it
                i = j
                state = _COLON
            else:
                return E_UNEXPECTED, i, slow, decoded
        elif state == _COLON:
            if c != COLON:
                return E_UNEXPECTED, i, slow, decoded
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
                return E_UNEXPECTED, i, slow, decoded


NO_FIELDS = np.zeros(0, np.int64)
STAMP_ABSENT, STAMP_PARSED, STAMP_FAILED = 0, 1, 2  # ``ok`` of ``extract_typed``
NO_OPS = np.zeros(0, np.int32)


def extract(buf, starts, ends, slots, hashes, mask, kparent, kfield, kkind, kbytes, koffs, sub_bytes, sub_offs,
            lists, n_fields):
    """Per span: the code and stop byte of the check (as ``validate``), whether it needs the slow reader,
    whether a value of it is in ``aux``, and the value spans of the table's fields, record-major
    ``(n, n_fields)`` (start -1: absent or null). Spans at or past ``buf.size`` are in the returned
    ``aux`` buffer (decoded strings, joined lists), at their offset plus ``buf.size``."""
    return _extract(buf, starts, ends, slots, hashes, mask, kparent, kfield, kkind, kbytes, koffs, sub_bytes,
                    sub_offs, lists, n_fields, NO_FIELDS, NO_OPS, np.zeros(1, np.int64), _MONTHS, NO_FIELDS)[:7]


def extract_typed(buf, starts, ends, table_arrays, stamp_fields, ops, ops_at, int_fields):
    """``extract``, which also types some fields of each good record while its bytes are in the cache: the
    microseconds of the timestamp fields ``stamp_fields`` (field ``k`` by the ``fasttime`` layout
    ``ops[ops_at[k]:ops_at[k + 1]]``) and whether each present one parsed, and the int64 of the integer
    fields ``int_fields`` (JSON integers the check found to fit) and whether each is present, field-major
    ``(k, n)``; ``ok`` is ``STAMP_ABSENT``, ``_PARSED`` or ``_FAILED``. Records that are not OK or need the
    slow reader are left absent. Returns ``extract``'s values, then these four."""
    return _extract(buf, starts, ends, *table_arrays, stamp_fields, ops, ops_at, _MONTHS, int_fields)


@njit(cache=True, parallel=True, nogil=True)
def _extract(buf, starts, ends, slots, hashes, mask, kparent, kfield, kkind, kbytes, koffs, sub_bytes, sub_offs,
             lists, n_fields, stamp_fields, ops, ops_at, months, int_fields):
    n = starts.size
    size = buf.size
    code = np.zeros(n, np.int8)
    pos = np.zeros(n, np.int64)
    slow = np.zeros(n, np.bool_)
    in_aux = np.zeros(n, np.bool_)
    fs = np.empty((n, n_fields), np.int64)
    fe = np.empty((n, n_fields), np.int64)
    aux = np.empty(size, np.uint8)
    us = np.zeros((stamp_fields.size, n), np.int64)
    usf = us.view(np.float64)  # a DECIMAL layout's field: its float64, in the same place
    ok = np.zeros((stamp_fields.size, n), np.int8)
    ints = np.zeros((int_fields.size, n), np.int64)
    has = np.zeros((int_fields.size, n), np.bool_)
    for block in prange((n + BLOCK_RECORDS - 1) // BLOCK_RECORDS):
        stack = np.empty(MAX_DEPTH, np.uint8)
        nodes = np.empty(MAX_DEPTH, np.int32)
        seen = np.zeros(kparent.size, np.bool_)
        for r in range(block * BLOCK_RECORDS, min(n, (block + 1) * BLOCK_RECORDS)):
            for f in range(n_fields):
                fs[r, f] = -1
                fe[r, f] = -1
            c, p, s, decoded = extract_object(buf, starts[r], ends[r], r, stack, nodes, seen, fs, fe, aux, size,
                                              slots, hashes, mask, kparent, kfield, kkind, kbytes, koffs)
            in_aux[r] = decoded
            code[r] = c
            pos[r] = p - starts[r]
            if c == OK and not s:
                for f in lists:
                    if fe[r, f] == LIST_SPAN:
                        key_len = sub_offs[f + 1] - sub_offs[f]
                        end = _join_list(buf, fs[r, f], aux, sub_offs[f], key_len if key_len > 0 else -1,
                                         sub_bytes)
                        if end < 0:
                            s = True
                            fs[r, f] = -1
                        else:
                            fs[r, f] += size
                            fe[r, f] = end + size
                            in_aux[r] = True
            slow[r] = s
            if c == OK and not s:
                _type_row(buf, aux, fs, fe, r, stamp_fields, ops, ops_at, months, int_fields, us, usf, ok, ints,
                          has)
    return code, pos, slow, in_aux, fs, fe, aux, us, ok, ints, has


_POW10 = np.array([10.0 ** k for k in range(23)])  # exact in float64


@njit(cache=True)
def _decimal(buf, a, b):
    """The float64 of the JSON number ``buf[a:b]`` when Clinger's fast path gives it exactly: at most 15
    significant digits, at most 22 decimals, no exponent; then ``m / 10**k`` is one correctly rounded
    division, the value every correct parser (Polars' ``fast_float`` too) gives. (value, ok)."""
    i = a
    neg = i < b and buf[i] == 45
    if neg:
        i += 1
    m = 0
    digits = 0
    decimals = 0
    seen = False
    dot = False
    while i < b:
        c = buf[i]
        if 48 <= c <= 57:
            seen = True
            if m or c != 48:
                digits += 1
            m = m * 10 + (c - 48)
            if dot:
                decimals += 1
        elif c == 46 and not dot and seen:
            dot = True
        else:
            return 0.0, False
        i += 1
    if not seen or digits > 15 or decimals > 22 or (dot and buf[b - 1] == 46):
        return 0.0, False
    v = m / _POW10[decimals]
    return (-v if neg else v), True


@njit(cache=True, inline="always")
def _type_row(buf, aux, fs, fe, r, stamp_fields, ops, ops_at, months, int_fields, us, usf, ok, ints, has):
    size = buf.size
    for k in range(stamp_fields.size):
        a = fs[r, stamp_fields[k]]
        if a < 0:
            continue
        b = fe[r, stamp_fields[k]]
        layout = ops[ops_at[k]:ops_at[k + 1]]
        if layout.size == 1 and layout[0] == DECIMAL:
            good = a < size  # a number's text is never unescaped into aux
            if good:
                usf[k, r], good = _decimal(buf, a, b)
            ok[k, r] = STAMP_PARSED if good else STAMP_FAILED
            continue
        if a >= size:
            v, good, _ = _parse_one(aux, a - size, b - size, layout, months)
        else:
            v, good, _ = _parse_one(buf, a, b, layout, months)
        us[k, r] = v
        ok[k, r] = STAMP_PARSED if good else STAMP_FAILED
    for k in range(int_fields.size):
        a = fs[r, int_fields[k]]
        if a < 0 or a >= size:
            continue
        b = fe[r, int_fields[k]]
        neg = buf[a] == 45
        v = 0
        for i in range(a + 1 if neg else a, b):
            v = v * 10 + (buf[i] - 48)
        ints[k, r] = -v if neg else v
        has[k, r] = True


@njit(cache=True, parallel=True, nogil=True)
def views(buf, aux, fs, fe, fields, rows):
    """Arrow string views into ``buf`` of the spans of ``extract`` (record-major) in columns ``fields`` at
    ``rows``, as ``soc.parse.arrow.views`` makes them; a column with a value in ``aux`` is made by ``packed``
    instead (Polars and ``fasttime`` read views of one data buffer best). Returns ``(len(fields), len(rows),
    16)`` views, their validity, and which columns have a value in ``aux`` (their views are left unset)."""
    size = buf.size
    out = np.zeros((fields.size, rows.size, 16), np.uint8)
    valid = np.ones((fields.size, rows.size), np.bool_)
    in_aux = np.zeros((fields.size, rows.size), np.bool_)
    for r in prange(rows.size):
        row = rows[r]
        for f in range(fields.size):
            a = fs[row, fields[f]]
            if a < 0:
                valid[f, r] = False
                continue
            if a >= size:
                in_aux[f, r] = True
                continue
            ln = fe[row, fields[f]] - a
            data = buf
            _put32(out, f, r, 0, ln)
            if ln <= 12:
                for j in range(ln):
                    out[f, r, 4 + j] = data[a + j]
            else:
                for j in range(4):
                    out[f, r, 4 + j] = data[a + j]
                _put32(out, f, r, 12, a)
    return out, valid, in_aux


@njit(cache=True, nogil=True)
def packed(buf, aux, fs, fe, field, rows):
    """The values of one column (spans of ``extract``, in ``buf`` or ``aux``) copied into one buffer: Arrow
    ``large_string`` offsets and data, for the rare column with decoded values (others are views)."""
    size = buf.size
    offsets = np.zeros(rows.size + 1, np.int64)
    for r in range(rows.size):
        a = fs[rows[r], field]
        offsets[r + 1] = offsets[r] + (fe[rows[r], field] - a if a >= 0 else 0)
    data = np.empty(offsets[-1], np.uint8)
    for r in range(rows.size):
        a = fs[rows[r], field]
        if a < 0:
            continue
        src = buf
        if a >= size:
            a -= size
            src = aux
        k = offsets[r]
        for j in range(offsets[r + 1] - k):
            data[k + j] = src[a + j]
    return offsets, data



