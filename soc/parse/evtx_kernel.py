"""Numba walker of the ``evtx`` package's record JSON: spans of the System leaves and of the event's fields.

The package writes every record as compact JSON of one shape, ``{"Event":{"#attributes":..,"System":{..},
"EventData":{..}}}`` (or ``"UserData":{"<Element>":{..}}``), so one pass over the bytes of a whole batch
(the records joined in one Arrow buffer) finds, per record, the value of each ``System`` leaf and the name
and value of each EventData/UserData field, as byte spans: no JSON decoder, no Python per record. A value
is the text the log holds, as ``engines.evtx.text_of`` defines it: a string unescaped, a number or boolean
as written, an element with attributes by its ``#text``, a list (unnamed ``<Data>``) its values one per
line, another object its members one per line as ``name=text`` (``_render``): never JSON, so no escape
sequence reaches a Sigma matcher. An element present without content is an empty string, not absent.

Strings with a backslash are unescaped into a second buffer; a span at or past ``len(buf)`` points there
(``at - len(buf)``), which the string views below turn into Arrow's buffer index 1. Field names get ids by
FNV-1a hashes checked byte by byte, records get (channel, event id) group ids, and each group's fields
become cells of one column-major block, so the engine makes every column of a batch with one views call.
A record the walker cannot take (malformed JSON, an invalid escape, an escaped field name) gets an error
code and goes to the engine's slower decoder: never dropped, never guessed.

Speed: the helpers called per member are compiled without reference counting (``_leaf``) and strings are
scanned 8 bytes a step (``_special8``); ~2-4 us of CPU a record of ~1.3 KB (bench/RESULTS.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from soc.jit import njit, prange
from soc.parse.fasttime import _days_from_civil
from soc.parse.json_kernel import _at, _leaf, _literal_end, _number_end, _plain_end, _put_utf8  # JSON primitives
from soc.parse.kv_kernel import FNV_OFFSET, FNV_PRIME, MASK32, fnv1a

QUOTE, BSLASH, SLASH, COLON, COMMA, EQUALS = 34, 92, 47, 58, 44, 61
SEP = 10  # between the values of a list or object: a real newline (``_render``)
LBRACE, RBRACE, LBRACKET, RBRACKET = 123, 125, 91, 93

OK, E_JSON, E_SHAPE, E_NAME, E_FULL, E_DEEP = 0, 1, 2, 3, 4, 5
REASONS = {E_JSON: "record JSON is malformed or has an invalid escape",
           E_SHAPE: "record JSON is not an Event object",
           E_NAME: "a field name has an escape",
           E_DEEP: "a field's value nests deeper than the walker renders"}
# E_FULL: the field table is full (walk again, internal)

PLAIN, ESCAPED, NULL = 0, 1, 2  # value kinds
MAX_DEPTH = 62  # nesting the walker takes (a bit stack in one int64); deeper goes to the slower decoder


# the System leaves: name -> path in the record's JSON ("#attributes" are XML attributes)
SYSTEM_PATHS = {
    "System.Provider": "Provider/Name",
    "System.ProviderGuid": "Provider/Guid",
    "System.EventSourceName": "Provider/EventSourceName",
    "System.EventID": "EventID",
    "System.Qualifiers": "EventID/Qualifiers",
    "System.Version": "Version",
    "System.Level": "Level",
    "System.Task": "Task",
    "System.Opcode": "Opcode",
    "System.Keywords": "Keywords",
    "System.TimeCreated": "TimeCreated/SystemTime",
    "System.EventRecordID": "EventRecordID",
    "System.ActivityID": "Correlation/ActivityID",
    "System.RelatedActivityID": "Correlation/RelatedActivityID",
    "System.ProcessID": "Execution/ProcessID",
    "System.ThreadID": "Execution/ThreadID",
    "System.Channel": "Channel",
    "System.Computer": "Computer",
    "System.UserID": "Security/UserID",
}
SYSTEM_NAMES = list(SYSTEM_PATHS)
CHANNEL, EVENT_ID = SYSTEM_NAMES.index("System.Channel"), SYSTEM_NAMES.index("System.EventID")
TIME_CREATED = SYSTEM_NAMES.index("System.TimeCreated")

_W_EVENT = np.frombuffer(b"Event", np.uint8).copy()
_W_SYSTEM = np.frombuffer(b"System", np.uint8).copy()
_W_ATTRS = np.frombuffer(b"#attributes", np.uint8).copy()
_W_TEXT = np.frombuffer(b"#text", np.uint8).copy()
_W_EVENTDATA = np.frombuffer(b"EventData", np.uint8).copy()


class PathTable:
    """The System paths as plain arrays: bytes and an open-addressing table of their FNV-1a hashes."""

    def __init__(self, paths: list[str]):
        raw = [p.encode() for p in paths]
        size = 64
        while size < 4 * len(raw):
            size *= 2
        self.mask = size - 1
        self.slots = np.full(size, -1, np.int32)
        self.hashes = np.zeros(size, np.int64)
        for i, k in enumerate(raw):
            h = fnv1a(k)
            s = h & self.mask
            while self.slots[s] >= 0:
                s = (s + 1) & self.mask
            self.slots[s], self.hashes[s] = i, h
        self.bytes = np.frombuffer(b"".join(raw), np.uint8).copy()
        self.offsets = np.zeros(len(raw) + 1, np.int64)
        self.offsets[1:] = np.cumsum([len(k) for k in raw])


SYSTEM_TABLE = PathTable(list(SYSTEM_PATHS.values()))


# --- JSON primitives: each returns the index after what it read, or -1 if the text is not JSON ---

@njit(cache=True, inline="always")
def _ws(buf, i, e):
    if i < 0:
        return i
    while i < e and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
        i += 1
    return i


@njit(cache=True, inline="always")
def _hex(c):
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@njit(cache=True, inline="always")
def _string_end(buf, i, e):
    """``i`` just past an opening quote: (index of the closing quote or -1, whether it has escapes)."""
    esc = False
    while True:
        i = _plain_end(buf, i, e)
        if i >= e:
            return -1, esc
        c = buf[i]
        if c == QUOTE:
            return i, esc
        if c == BSLASH:
            esc = True
            if i + 1 >= e:
                return -1, esc
            d = buf[i + 1]
            if d == 117:  # \uXXXX
                if i + 5 >= e:
                    return -1, esc
                for k in range(2, 6):
                    if _hex(buf[i + k]) < 0:
                        return -1, esc
                i += 6
            elif d == QUOTE or d == BSLASH or d == SLASH or d == 98 or d == 102 or d == 110 or d == 114 \
                    or d == 116:
                i += 2
            else:
                return -1, esc
        else:  # a control byte
            return -1, esc


@_leaf
def _scalar_end(buf, i, e):
    c = _at(buf, i, e)
    if c == QUOTE:
        j, _ = _string_end(buf, i + 1, e)
        return j + 1 if j >= 0 else -1
    if c == 116 or c == 102 or c == 110:
        return _literal_end(buf, i, e)
    return _number_end(buf, i, e)


@_leaf
def _skip(buf, i, e):
    """End of the JSON value at ``i`` (checked: -1 if it is not valid JSON). Iterative, any depth."""
    i = _ws(buf, i, e)
    c = _at(buf, i, e)
    if c != LBRACE and c != LBRACKET:
        return _scalar_end(buf, i, e)
    stack = 0  # bit d set: the container at depth d is an object (no array: no allocation, no refcount)
    depth = 0
    while True:  # at a value
        i = _ws(buf, i, e)
        c = _at(buf, i, e)
        if c == LBRACE or c == LBRACKET:
            if depth == MAX_DEPTH:  # deeper than the evtx package writes: left to the slower decoder
                return -1
            if c == LBRACE:
                stack |= 1 << depth
            else:
                stack &= ~(1 << depth)
            depth += 1
            i = _ws(buf, i + 1, e)
            d = _at(buf, i, e)
            if c == LBRACE and d == RBRACE or c == LBRACKET and d == RBRACKET:
                depth -= 1
                i += 1
            elif c == LBRACE:
                if d != QUOTE:
                    return -1
                j, _ = _string_end(buf, i + 1, e)
                if j < 0:
                    return -1
                i = _ws(buf, j + 1, e)
                if _at(buf, i, e) != COLON:
                    return -1
                i += 1
                continue
            else:
                continue
        else:
            i = _scalar_end(buf, i, e)
            if i < 0:
                return -1
        while True:  # after a value: close containers, or go to the next member
            if depth == 0:
                return i
            i = _ws(buf, i, e)
            c = _at(buf, i, e)
            top = LBRACE if (stack >> (depth - 1)) & 1 else LBRACKET
            if c == COMMA:
                i = _ws(buf, i + 1, e)
                if top == LBRACE:
                    if _at(buf, i, e) != QUOTE:
                        return -1
                    j, _ = _string_end(buf, i + 1, e)
                    if j < 0:
                        return -1
                    i = _ws(buf, j + 1, e)
                    if _at(buf, i, e) != COLON:
                        return -1
                    i += 1
                break
            if c == RBRACE and top == LBRACE or c == RBRACKET and top == LBRACKET:
                depth -= 1
                i += 1
                continue
            return -1


@njit(cache=True, inline="always")
def _is(buf, a, b, word):
    if b - a != word.size:
        return False
    for k in range(word.size):
        if buf[a + k] != word[k]:
            return False
    return True


@njit(cache=True, inline="always")
def _member(buf, i, e):
    """At a member's key (``i`` on its quote): (key start, key end, has escapes, value start) or -1s."""
    if _at(buf, i, e) != QUOTE:
        return -1, -1, False, -1
    j, esc = _string_end(buf, i + 1, e)
    if j < 0:
        return -1, -1, False, -1
    k = _ws(buf, j + 1, e)
    if _at(buf, k, e) != COLON:
        return -1, -1, False, -1
    return i + 1, j, esc, _ws(buf, k + 1, e)


@njit(cache=True, inline="always")
def _next(buf, i, e):
    """After a member's value: (next key's index, False), (index past the closing brace, True), or -1."""
    i = _ws(buf, i, e)
    c = _at(buf, i, e)
    if c == COMMA:
        return _ws(buf, i + 1, e), False
    if c == RBRACE:
        return i + 1, True
    return -1, False


@njit(cache=True, inline="always")
def _first(buf, i, e):
    """Just past an opening brace: (first key's index, empty object?)."""
    i = _ws(buf, i, e)
    if _at(buf, i, e) == RBRACE:
        return i + 1, True
    return i, False


@_leaf
def _text_of(buf, i, e):
    """The text of the value at ``i``: (start, end, kind, end of the value); end of the value -1 if bad.

    Strings without their quotes (kind ``ESCAPED`` if they need unescaping), numbers and booleans as
    written, null as ``NULL``, an object with ``#text`` by that value, other objects and lists as JSON
    (``_value`` renders those with ``_render`` instead: this span is only taken for scalars).
    """
    c = _at(buf, i, e)
    if c == QUOTE:
        j, esc = _string_end(buf, i + 1, e)
        if j < 0:
            return 0, 0, NULL, -1
        return i + 1, j, ESCAPED if esc else PLAIN, j + 1
    if c == LBRACKET:
        end = _skip(buf, i, e)
        return i, end, PLAIN, end
    if c == LBRACE:
        end = _skip(buf, i, e)
        if end < 0:
            return 0, 0, NULL, -1
        k, empty = _first(buf, i + 1, e)
        while not empty:
            ka, kb, kesc, v = _member(buf, k, e)
            if ka < 0:
                return 0, 0, NULL, -1
            if not kesc and _is(buf, ka, kb, _W_TEXT):
                d = _at(buf, v, e)
                if d == QUOTE:
                    j, esc = _string_end(buf, v + 1, e)
                    return v + 1, j, ESCAPED if esc else PLAIN, end
                if d == LBRACE or d == LBRACKET:
                    return v, _skip(buf, v, e), PLAIN, end
                if d == 110:
                    return 0, 0, NULL, end
                return v, _scalar_end(buf, v, e), PLAIN, end
            k, empty = _next(buf, _skip(buf, v, e), e)
            if k < 0:
                return 0, 0, NULL, -1
        return i, end, PLAIN, end
    if c == 110:
        end = _literal_end(buf, i, e)
        return 0, 0, NULL, end
    end = _scalar_end(buf, i, e)
    return i, end, PLAIN, end


@njit(cache=True, inline="always")
def _u4(buf, i):
    return (_hex(buf[i]) << 12) | (_hex(buf[i + 1]) << 8) | (_hex(buf[i + 2]) << 4) | _hex(buf[i + 3])


@_leaf
def unescape(buf, a, b, out, o):
    """Write the JSON string body ``buf[a:b]`` (escapes already checked) unescaped to ``out`` at ``o``;
    the new end in ``out``, or -1 for a lone UTF-16 surrogate (not text). Never longer than the input."""
    i = a
    while i < b:
        j = _plain_end(buf, i, b)  # a run without a backslash (the body is checked: no quote, no control)
        for k in range(j - i):
            out[o + k] = buf[i + k]
        o += j - i
        i = j
        if i >= b:
            break
        d = buf[i + 1]
        if d == 117:
            cp = _u4(buf, i + 2)
            i += 6
            if 0xD800 <= cp <= 0xDBFF:
                if i + 6 > b or buf[i] != BSLASH or buf[i + 1] != 117:
                    return -1
                lo = _u4(buf, i + 2)
                if not 0xDC00 <= lo <= 0xDFFF:
                    return -1
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                i += 6
            elif 0xDC00 <= cp <= 0xDFFF:
                return -1
            o = _put_utf8(out, o, cp)
            continue
        if d == 110:
            out[o] = 10
        elif d == 116:
            out[o] = 9
        elif d == 114:
            out[o] = 13
        elif d == 98:
            out[o] = 8
        elif d == 102:
            out[o] = 12
        else:  # " \ /
            out[o] = d
        o += 1
        i += 2
    return o


@njit(cache=True, inline="always")
def _find_path(buf, ka, kb, aa, ab, h, slots, hashes, mask, pbytes, poffs):
    """Index of the path ``key`` (``aa < 0``) or ``key/attribute`` in the path table, -1 if absent."""
    n = kb - ka + (ab - aa + 1 if aa >= 0 else 0)
    s = h & mask
    while slots[s] >= 0:
        if hashes[s] == h:
            p = slots[s]
            if poffs[p + 1] - poffs[p] == n:
                at = poffs[p]
                same = True
                for k in range(kb - ka):
                    if buf[ka + k] != pbytes[at + k]:
                        same = False
                        break
                if same and aa >= 0:
                    at += kb - ka
                    if pbytes[at] != SLASH:
                        same = False
                    else:
                        for k in range(ab - aa):
                            if buf[aa + k] != pbytes[at + 1 + k]:
                                same = False
                                break
                if same:
                    return p
        s = (s + 1) & mask
    return -1


@njit(cache=True, inline="always")
def _fnv(buf, a, b, h):
    for k in range(a, b):
        h = ((h ^ buf[k]) * FNV_PRIME) & MASK32
    return h


@njit(cache=True, inline="always")
def _quick(buf, e, v):
    """The common values without a call: an unescaped string or a plain integer: (start, end, value
    end); value end -2 for anything else (``_value`` then takes it)."""
    c = _at(buf, v, e)
    if c == QUOTE:
        j = _plain_end(buf, v + 1, e)
        if j < e and buf[j] == QUOTE:
            return v + 1, j, j + 1
        return 0, 0, -2
    if 48 <= c <= 57:
        j = v + 1
        while c != 48 and j < e and 48 <= buf[j] <= 57:  # no leading zero
            j += 1
        d = _at(buf, j, e)
        if d == COMMA or d == RBRACE or d == RBRACKET:
            return v, j, j
    return 0, 0, -2


@_leaf
def _scalar(buf, i, e, out, o):
    """Write the text of the JSON scalar at ``i`` to ``out`` at ``o`` (a string unescaped, a number or
    boolean as written, null nothing): (end of the value, new o, kind ``NULL`` or ``PLAIN``); end -1 if
    it is not JSON, -2 if it is a list or object."""
    c = _at(buf, i, e)
    if c == QUOTE:
        j, esc = _string_end(buf, i + 1, e)
        if j < 0:
            return -1, o, NULL
        if esc:
            o2 = unescape(buf, i + 1, j, out, o)
            return (j + 1 if o2 >= 0 else -1), max(o2, o), PLAIN
        for k in range(j - i - 1):
            out[o + k] = buf[i + 1 + k]
        return j + 1, o + j - i - 1, PLAIN
    if c == LBRACE or c == LBRACKET:
        return -2, o, NULL
    if c == 110:
        return _literal_end(buf, i, e), o, NULL
    end = _scalar_end(buf, i, e)
    if end < 0:
        return -1, o, NULL
    for k in range(end - i):
        out[o + k] = buf[i + k]
    return end, o + end - i, PLAIN


@_leaf
def _text_member(buf, i, e):
    """The value of the ``#text`` member of the object at ``i`` (its brace), -1 if it has none."""
    k, empty = _first(buf, i + 1, e)
    while not empty:
        ka, kb, kesc, v = _member(buf, k, e)
        if ka < 0:
            return -1
        if not kesc and _is(buf, ka, kb, _W_TEXT):
            return v
        k, empty = _next(buf, _skip(buf, v, e), e)
        if k < 0:
            return -1
    return -1


@_leaf
def _item_start(buf, c, k, e, out, o, wrote):
    """Before an item of a list (``c`` its bracket) or object at ``k``: the separator if an item was
    written, and an object member's ``name=`` (none for ``#attributes``). (value index, new o)."""
    if wrote:
        out[o] = SEP
        o += 1
    if c == LBRACKET:
        return k, o
    ka, kb, kesc, v = _member(buf, k, e)
    if ka < 0:
        return -1, o
    if kesc or not _is(buf, ka, kb, _W_ATTRS):
        if kesc:
            o = unescape(buf, ka, kb, out, o)
            if o < 0:
                return -1, 0
        else:
            for p in range(kb - ka):
                out[o + p] = buf[ka + p]
            o += kb - ka
        out[o] = EQUALS
        o += 1
    return v, o


@_leaf
def _item_end(buf, c, end, e):
    """After an item of a list or object: (next item's index, False), (index past the close, True), -1."""
    k = _ws(buf, end, e)
    d = _at(buf, k, e)
    if d == COMMA:
        return _ws(buf, k + 1, e), False
    if d == (RBRACE if c == LBRACE else RBRACKET):
        return k + 1, True
    return -1, False


@_leaf
def _flat(buf, i, e, out, o):
    """``_render`` of a value whose lists and objects hold only scalars (one level): end -2 if deeper."""
    c = _at(buf, i, e)
    if c != LBRACE and c != LBRACKET:
        return _scalar(buf, i, e, out, o)
    if c == LBRACE:
        t = _text_member(buf, i, e)
        if t >= 0:
            end = _skip(buf, i, e)
            tend, o2, kind = _scalar(buf, t, e, out, o)
            return (end if tend >= 0 else tend), o2, kind
    k = _ws(buf, i + 1, e)
    if _at(buf, k, e) == (RBRACE if c == LBRACE else RBRACKET):
        return k + 1, o, PLAIN
    wrote = False
    while True:
        start = o
        v, o = _item_start(buf, c, k, e, out, o, wrote)
        if v < 0:
            return -1, start, NULL
        end, o, kind = _scalar(buf, v, e, out, o)
        if end < 0:
            return end, start, NULL
        if kind == NULL:
            o = start
        else:
            wrote = True
        k, done = _item_end(buf, c, end, e)
        if k < 0:
            return -1, o, NULL
        if done:
            return k, o, PLAIN


@_leaf
def _render(buf, i, e, out, o):
    """Write the text of the JSON value at ``i`` to ``out`` at ``o``: (end of the value, new o, kind);
    end -1 if the value is not JSON, -2 if it nests deeper than two lists or objects (the slower
    decoder takes the record: numba caches no recursive function, so the depth is fixed).

    The text a log's reader means, never JSON: a string unescaped, a number or boolean as written, null
    nothing (kind ``NULL``), an element with ``#text`` that text, a list its values one per line (nulls
    left out), another object its members one per line as ``name=text`` (``#attributes`` without its
    name). Never longer than the JSON it comes from (a separator or ``=`` takes a comma's or colon's
    place), so it fits in ``out``. ``engines.evtx.text_of`` does the same with Polars.
    """
    c = _at(buf, i, e)
    if c != LBRACE and c != LBRACKET:
        return _scalar(buf, i, e, out, o)
    if c == LBRACE:
        t = _text_member(buf, i, e)
        if t >= 0:
            end = _skip(buf, i, e)
            tend, o2, kind = _flat(buf, t, e, out, o)
            return (end if tend >= 0 else tend), o2, kind
    k = _ws(buf, i + 1, e)
    if _at(buf, k, e) == (RBRACE if c == LBRACE else RBRACKET):
        return k + 1, o, PLAIN
    wrote = False
    while True:
        start = o
        v, o = _item_start(buf, c, k, e, out, o, wrote)
        if v < 0:
            return -1, start, NULL
        end, o, kind = _flat(buf, v, e, out, o)
        if end < 0:
            return end, start, NULL
        if kind == NULL:
            o = start
        else:
            wrote = True
        k, done = _item_end(buf, c, end, e)
        if k < 0:
            return -1, o, NULL
        if done:
            return k, o, PLAIN


@_leaf
def _value(buf, e, v, out, o, la):
    """``_text_of`` with the string unescaped into ``out`` and lists and objects rendered there
    (``_render``): (start, end, null?, value end, new o)."""
    c = _at(buf, v, e)
    if c == QUOTE:
        vs = v + 1
        ve, esc = _string_end(buf, vs, e)
        kind = ESCAPED if esc else PLAIN
        end = ve + 1 if ve >= 0 else -1
    elif c == LBRACE or c == LBRACKET:
        start = o
        end, o, kind = _render(buf, v, e, out, o)
        if end == -2:
            return -1, -1, True, -2, start
        if end < 0:
            return -1, -1, True, -1, start
        if kind == NULL:
            return -1, -1, True, end, start
        return la + start, la + o, False, end, o
    else:
        vs, ve, kind, end = _text_of(buf, v, e)
    if end < 0 or ve < 0:
        return -1, -1, True, -1, o
    if kind == NULL:
        return -1, -1, True, end, o
    if kind == ESCAPED:
        start = o
        o = unescape(buf, vs, ve, out, o)
        if o < 0:
            return -1, -1, True, -1, start
        return la + start, la + o, False, end, o
    return vs, ve, False, end, o


@_leaf
def _system(buf, i, e, r, ss, se, out, o, la, slots, hashes, mask, pbytes, poffs):
    """Walk the System object at ``i`` (its brace): leaves to ``ss``/``se`` column ``r``. (end, o)."""
    k, empty = _first(buf, i + 1, e)
    while not empty:
        ka, kb, kesc, v = _member(buf, k, e)
        if ka < 0:
            return -1, o
        h = _fnv(buf, ka, kb, FNV_OFFSET)
        kidx = -1 if kesc else _find_path(buf, ka, kb, -1, -1, h, slots, hashes, mask, pbytes, poffs)
        if _at(buf, v, e) == LBRACE:
            text = False
            a, aempty = _first(buf, v + 1, e)
            while not aempty:
                aa, ab, aesc, av = _member(buf, a, e)
                if aa < 0:
                    return -1, o
                if not aesc and _is(buf, aa, ab, _W_ATTRS) and _at(buf, av, e) == LBRACE:
                    t, tempty = _first(buf, av + 1, e)
                    while not tempty:
                        ta, tb, tesc, tv = _member(buf, t, e)
                        if ta < 0:
                            return -1, o
                        idx = -1
                        if not kesc and not tesc:
                            h2 = _fnv(buf, ta, tb, ((h ^ SLASH) * FNV_PRIME) & MASK32)
                            idx = _find_path(buf, ka, kb, ta, tb, h2, slots, hashes, mask, pbytes, poffs)
                        if idx >= 0:
                            vs, ve, tend = _quick(buf, e, tv)
                            if tend == -2:
                                vs, ve, null, tend, o = _value(buf, e, tv, out, o, la)
                            if tend < 0:
                                return -1, o
                            ss[idx, r], se[idx, r] = vs, ve
                        else:
                            tend = _skip(buf, tv, e)
                        t, tempty = _next(buf, tend, e)
                        if t < 0:
                            return -1, o
                    aend = t
                elif kidx >= 0 and not aesc and _is(buf, aa, ab, _W_TEXT):
                    vs, ve, null, aend, o = _value(buf, e, av, out, o, la)
                    ss[kidx, r], se[kidx, r] = vs, ve
                    text = True
                else:
                    aend = _skip(buf, av, e)
                if aend < 0:
                    return -1, o
                a, aempty = _next(buf, aend, e)
                if a < 0:
                    return -1, o
            end = a
            if kidx >= 0 and not text:  # an element without #text: its members' text (``_render``)
                start = o
                rend, o, kind = _render(buf, v, e, out, o)
                if rend < 0:
                    return -1, start
                ss[kidx, r], se[kidx, r] = (la + start, la + o) if kind != NULL else (-1, -1)
        elif kidx >= 0:
            vs, ve, end = _quick(buf, e, v)
            if end == -2:
                vs, ve, null, end, o = _value(buf, e, v, out, o, la)
            ss[kidx, r], se[kidx, r] = vs, ve
        else:
            end = _skip(buf, v, e)
        if end < 0:
            return -1, o
        k, empty = _next(buf, end, e)
        if k < 0:
            return -1, o
    return k, o


@_leaf
def _data(buf, i, e, eventdata, r, fields, nf, out, o, la):
    """Fields of the data part at ``i`` (its brace) appended to ``fields``: (end, nf, o, error)."""
    obj = i
    end = -1
    if not eventdata:  # UserData and the like: {"Element": {fields}} holds the fields one level down
        count = 0
        inner = -1
        k, empty = _first(buf, i + 1, e)
        while not empty:
            ka, kb, kesc, v = _member(buf, k, e)
            if ka < 0:
                return -1, nf, o, E_JSON
            if kesc or not _is(buf, ka, kb, _W_ATTRS):
                count += 1
                inner = v if _at(buf, v, e) == LBRACE else -1
            k, empty = _next(buf, _skip(buf, v, e), e)
        if count == 1 and inner >= 0:
            obj = inner
            end = k
    k, empty = _first(buf, obj + 1, e)
    while not empty:
        ka, kb, kesc, v = _member(buf, k, e)
        if ka < 0:
            return -1, nf, o, E_JSON
        if kesc:
            return -1, nf, o, E_NAME
        if _is(buf, ka, kb, _W_ATTRS):
            vend = _skip(buf, v, e)
        else:
            vs, ve, vend = _quick(buf, e, v)
            null = False
            if vend == -2:
                vs, ve, null, vend, o = _value(buf, e, v, out, o, la)
                if vend == -2:
                    return -1, nf, o, E_DEEP
            if vend < 0:
                return -1, nf, o, E_JSON
            if nf == fields.shape[0]:
                return -1, nf, o, E_FULL
            fields[nf, 0] = r
            fields[nf, 1] = ka
            fields[nf, 2] = kb
            fields[nf, 3] = _fnv(buf, ka, kb, FNV_OFFSET)
            if null:  # an element without content (the package writes null or "" by its BinXML type): empty
                vs, ve = v, v
            fields[nf, 4] = vs
            fields[nf, 5] = ve
            fields[nf, 6] = PLAIN
            nf += 1
        k, empty = _next(buf, vend, e)
        if k < 0:
            return -1, nf, o, E_JSON
    if obj == i:
        end = k
    return end, nf, o, OK


@njit(cache=True, inline="always")
def _digits(buf, out, la, a, b):
    if a < 0 or b <= a:
        return False
    for p in range(a, b):
        c = buf[p] if p < la else out[p - la]
        if not 48 <= c <= 57:
            return False
    return True


@njit(cache=True, nogil=True)
def walk(buf, offs, r0, r1, out, o, cap, ss, se, err, slots, hashes, mask, pbytes, poffs):
    """Records ``r0:r1``: spans of their System leaves into ``ss``/``se`` (field-major, -1 where absent
    or null), their error codes into ``err`` (a record in error keeps no leaf and no field); returns
    their fields, one row each ``(record, name start, name end, name hash, value start, value end,
    kind)``, the end of what they wrote to ``out`` from ``o`` on, and the record it stopped before:
    ``r1``, or earlier when the ``cap`` rows of fields are full (``walk_range`` then goes on).

    ``buf`` holds the records, record ``r`` at ``offs[r]:offs[r + 1]``; ``out`` (as long as ``buf``)
    receives the unescaped strings. The event id is kept only when it is digits (as the old regex).
    Releases the GIL: two threads walk the two halves of a batch.
    """
    fields = np.empty((cap, 7), np.int64)
    nf, o, stop = _records(buf, offs, r0, r1, out, o, fields, ss, se, err, slots, hashes, mask, pbytes, poffs)
    return fields[:nf].copy(), o, stop


@_leaf
def _records(buf, offs, r0, r1, out, o, fields, ss, se, err, slots, hashes, mask, pbytes, poffs):
    """The loop of ``walk`` (no allocation, so no reference counting): (rows of ``fields`` used, o, stop)."""
    la = buf.size
    npaths = poffs.size - 1
    nf = 0
    for r in range(r0, r1):
        e = offs[r + 1]
        nf0, o0 = nf, o
        code = OK
        i = _ws(buf, offs[r], e)
        k = i
        seen = False
        if _at(buf, i, e) != LBRACE:
            code = E_JSON
        else:
            k, empty = _first(buf, i + 1, e)
            while not empty:
                ka, kb, kesc, v = _member(buf, k, e)
                if ka < 0:
                    code = E_JSON
                    break
                if not seen and not kesc and _is(buf, ka, kb, _W_EVENT) and _at(buf, v, e) == LBRACE:
                    seen = True
                    p, pempty = _first(buf, v + 1, e)
                    while not pempty:
                        pa, pb, pesc, pv = _member(buf, p, e)
                        if pa < 0:
                            code = E_JSON
                            break
                        c = _at(buf, pv, e)
                        if c == LBRACE and not pesc and _is(buf, pa, pb, _W_SYSTEM):
                            pend, o = _system(buf, pv, e, r, ss, se, out, o, la, slots, hashes, mask, pbytes, poffs)
                        elif c == LBRACE and (pesc or not _is(buf, pa, pb, _W_ATTRS)):
                            pend, nf, o, code = _data(buf, pv, e, not pesc and _is(buf, pa, pb, _W_EVENTDATA),
                                                      r, fields, nf, out, o, la)
                            if code != OK:
                                break
                        else:
                            pend = _skip(buf, pv, e)
                        if pend < 0:
                            code = E_JSON
                            break
                        p, pempty = _next(buf, pend, e)
                        if p < 0:
                            code = E_JSON
                            break
                    vend = p
                else:
                    vend = _skip(buf, v, e)
                if code != OK:
                    break
                if vend < 0:
                    code = E_JSON
                    break
                k, empty = _next(buf, vend, e)
                if k < 0:
                    code = E_JSON
                    break
            if code == OK and _ws(buf, k, e) != e:
                code = E_JSON
            if code == OK and not seen:
                code = E_SHAPE
        if code == E_FULL:
            return nf0, o0, r
        if code != OK:
            err[r] = code
            nf, o = nf0, o0
            for p in range(npaths):
                ss[p, r] = -1
                se[p, r] = -1
            continue
        if not _digits(buf, out, la, ss[EVENT_ID, r], se[EVENT_ID, r]):
            ss[EVENT_ID, r] = -1
            se[EVENT_ID, r] = -1
    return nf, o, r1


# --- names and groups ---

@njit(cache=True, inline="always")
def _byte(buf, out, la, p):
    return buf[p] if p < la else out[p - la]


@njit(cache=True, inline="always")
def _same(buf, out, la, a, b, c, d):
    if b - a != d - c:
        return False
    for k in range(b - a):
        if _byte(buf, out, la, a + k) != _byte(buf, out, la, c + k):
            return False
    return True


@njit(cache=True)
def name_ids(buf, fields, size):
    """An id per distinct field name (by its bytes), in order of first appearance: (ids, first row of
    each); ``None``-like empty ids if more than ``size // 2`` names (call again with a bigger table)."""
    n = fields.shape[0]
    mask = size - 1
    slots = np.full(size, -1, np.int64)  # field row of the name's first occurrence
    sid = np.zeros(size, np.int64)
    ids = np.empty(n, np.int64)
    first = np.empty(size // 2, np.int64)
    count = 0
    for f in range(n):
        h = fields[f, 3]
        a, b = fields[f, 1], fields[f, 2]
        s = h & mask
        while True:
            g = slots[s]
            if g < 0:
                if 2 * count >= size:
                    return ids[:0], first[:0]
                slots[s] = f
                sid[s] = count
                first[count] = f
                ids[f] = count
                count += 1
                break
            if fields[g, 3] == h and fields[g, 2] - fields[g, 1] == b - a:
                c = fields[g, 1]
                same = True
                for k in range(b - a):
                    if buf[a + k] != buf[c + k]:
                        same = False
                        break
                if same:
                    ids[f] = sid[s]
                    break
            s = (s + 1) & mask
    return ids, first[:count]


@njit(cache=True)
def group_ids(buf, out, ss, se, err, channel, event_id, size):
    """A group id per record by its (channel, event id) bytes (null and empty differ), -1 for a record
    in error; and the first record of each group (both empty if more than ``size // 2`` groups)."""
    n = err.size
    slots = np.full(size, -1, np.int64)  # first record of the group
    hs = np.zeros(size, np.int64)
    gid = np.zeros(size, np.int64)
    groups = np.full(n, -1, np.int64)
    first = np.empty(size // 2, np.int64)
    count = _group_loop(buf, out, ss, se, err, channel, event_id, slots, hs, gid, groups, first)
    if count < 0:
        return groups[:0], first[:0]
    return groups, first[:count]


@_leaf
def _group_loop(buf, out, ss, se, err, channel, event_id, slots, hs, gid, groups, first):
    """The loop of ``group_ids`` (no allocation, so no reference counting): the number of groups, or -1
    if the table is full."""
    la = buf.size
    n = err.size
    size = slots.size
    mask = size - 1
    count = 0
    for r in range(n):
        if err[r] != OK:
            continue
        ca, cb = ss[channel, r], se[channel, r]
        ea, eb = ss[event_id, r], se[event_id, r]
        h = FNV_OFFSET
        if ca >= la:
            for p in range(ca - la, cb - la):
                h = ((h ^ out[p]) * FNV_PRIME) & MASK32
        else:
            for p in range(ca, cb):
                h = ((h ^ buf[p]) * FNV_PRIME) & MASK32
        h = ((h ^ (1 if ca < 0 else 2)) * FNV_PRIME) & MASK32
        if ea >= la:
            for p in range(ea - la, eb - la):
                h = ((h ^ out[p]) * FNV_PRIME) & MASK32
        else:
            for p in range(ea, eb):
                h = ((h ^ buf[p]) * FNV_PRIME) & MASK32
        h = ((h ^ (1 if ea < 0 else 2)) * FNV_PRIME) & MASK32
        s = h & mask
        while True:
            q = slots[s]
            if q < 0:
                if 2 * count >= size:
                    return -1
                slots[s] = r
                hs[s] = h
                gid[s] = count
                first[count] = r
                groups[r] = count
                count += 1
                break
            if hs[s] == h and (ss[channel, q] < 0) == (ca < 0) and (ss[event_id, q] < 0) == (ea < 0) \
                    and _same(buf, out, la, ss[channel, q], se[channel, q], ca, cb) \
                    and _same(buf, out, la, ss[event_id, q], se[event_id, q], ea, eb):
                groups[r] = gid[s]
                break
            s = (s + 1) & mask
    return count


@njit(cache=True)
def layout(groups, ngroups, fields, ids, nnames, tsize):
    """Records ordered by group (stable), each group's fields in order of first appearance, and the
    cells of every (group, field) column, column-major in one block.

    Returns: ``order`` (record indices by group), ``starts`` (per group, its first row in ``order``;
    ``ngroups + 1`` entries), ``columns`` (per group, its field name ids, flattened; ``col_starts``
    ``ngroups + 1`` entries), ``cell_starts`` (per group, its first cell), and the cells' value spans;
    ``order`` is empty if there are more than ``tsize // 2`` (group, field) pairs (call again, bigger).
    """
    n = groups.size
    size = np.zeros(ngroups, np.int64)
    for r in range(n):
        if groups[r] >= 0:
            size[groups[r]] += 1
    starts = np.zeros(ngroups + 1, np.int64)
    for g in range(ngroups):
        starts[g + 1] = starts[g] + size[g]
    order = np.empty(starts[ngroups], np.int64)
    pos = np.full(n, -1, np.int64)
    fill = starts[:ngroups].copy()
    for r in range(n):
        g = groups[r]
        if g >= 0:
            order[fill[g]] = r
            pos[r] = fill[g] - starts[g]
            fill[g] += 1
    # each group's fields: a (group, name) -> column table, kept sparse by hashing
    nf = fields.shape[0]
    keys = np.full(tsize, -1, np.int64)
    vals = np.zeros(tsize, np.int64)
    col_of = np.empty(nf, np.int64)
    count = np.zeros(ngroups, np.int64)
    pair_g = np.empty(tsize // 2, np.int64)
    pair_k = np.empty(tsize // 2, np.int64)
    npairs = 0
    for f in range(nf):
        g = groups[fields[f, 0]]
        if g < 0:
            col_of[f] = -1
            continue
        key = g * nnames + ids[f]
        s = (key * 0x9E3779B1) & (tsize - 1)
        while keys[s] >= 0 and keys[s] != key:
            s = (s + 1) & (tsize - 1)
        if keys[s] < 0:
            if 2 * npairs >= tsize:
                return order[:0], starts, order[:0], starts, starts, order[:0], order[:0]
            keys[s] = key
            vals[s] = count[g]
            count[g] += 1
            pair_g[npairs], pair_k[npairs] = g, ids[f]
            npairs += 1
        col_of[f] = vals[s]
    col_starts = np.zeros(ngroups + 1, np.int64)
    for g in range(ngroups):
        col_starts[g + 1] = col_starts[g] + count[g]
    columns = np.empty(col_starts[ngroups], np.int64)
    seen = np.zeros(ngroups, np.int64)
    for p in range(npairs):  # pairs come in order of first appearance within each group
        g = pair_g[p]
        columns[col_starts[g] + seen[g]] = pair_k[p]
        seen[g] += 1
    cell_starts = np.zeros(ngroups + 1, np.int64)
    for g in range(ngroups):
        cell_starts[g + 1] = cell_starts[g] + count[g] * size[g]
    cs = np.full(cell_starts[ngroups], -1, np.int64)
    ce = np.full(cell_starts[ngroups], -1, np.int64)
    taken = np.zeros(cell_starts[ngroups], np.bool_)
    for f in range(nf):
        j = col_of[f]
        if j < 0:
            continue
        r = fields[f, 0]
        g = groups[r]
        cell = cell_starts[g] + j * size[g] + pos[r]
        if not taken[cell]:  # the first of a duplicated name wins
            taken[cell] = True
            if fields[f, 6] != NULL:
                cs[cell], ce[cell] = fields[f, 4], fields[f, 5]
    return order, starts, columns, col_starts, cell_starts, cs, ce


# --- Arrow string views over the two buffers ---

@njit(cache=True, inline="always")
def _put32(out, r, at, v):
    out[r, at] = v & 0xFF
    out[r, at + 1] = (v >> 8) & 0xFF
    out[r, at + 2] = (v >> 16) & 0xFF
    out[r, at + 3] = (v >> 24) & 0xFF


@njit(cache=True, inline="always")
def _put_view(out, r, src, a, ln, index):
    _put32(out, r, 0, ln)
    if ln <= 12:
        for j in range(ln):
            out[r, 4 + j] = src[a + j]
    else:
        for j in range(4):
            out[r, 4 + j] = src[a + j]
        _put32(out, r, 8, index)
        _put32(out, r, 12, a)


def views(buf, extra, starts, ends):
    """Arrow string views of the spans (a start past ``len(buf)`` is in ``extra``, buffer 1; -1 is null):
    in parallel for many spans, else on this thread (starting the parallel workers costs ~0.3 ms)."""
    out = np.zeros((starts.size, 16), np.uint8)
    valid = np.ones(starts.size, np.bool_)
    (_views_parallel if starts.size >= PARALLEL_FROM * 4 else _views_serial)(buf, extra, starts, ends, out, valid)
    return out, valid


@njit(cache=True, nogil=True, parallel=True)
def _views_parallel(buf, extra, starts, ends, out, valid):
    la = buf.size
    for r in prange(starts.size):
        a = starts[r]
        if a < 0:
            valid[r] = False
            continue
        ln = ends[r] - a
        if a >= la:
            _put_view(out, r, extra, a - la, ln, 1)
        else:
            _put_view(out, r, buf, a, ln, 0)


@_leaf
def _views_serial(buf, extra, starts, ends, out, valid):
    la = buf.size
    n = starts.size
    for r in range(n):
        a = starts[r]
        if a < 0:
            valid[r] = False
            continue
        ln = ends[r] - a
        if a >= la:
            _put_view(out, r, extra, a - la, ln, 1)
        else:
            _put_view(out, r, buf, a, ln, 0)


class Walked:
    """What the kernels found in one batch (see ``walk_batch``)."""

    def __init__(self, ss, se, fields, extra, err, name_rows, order, starts, columns, col_starts, cell_starts,
                 cs, ce):
        self.ss, self.se, self.fields, self.extra, self.err = ss, se, fields, extra, err
        self.name_rows = name_rows  # per name id, a field row holding the name
        self.order, self.starts = order, starts  # records by group; each group's first row in ``order``
        self.columns, self.col_starts = columns, col_starts  # each group's field name ids
        self.cell_starts, self.cs, self.ce = cell_starts, cs, ce  # each group's cells, column-major

    def names(self, buf: np.ndarray) -> list[str]:
        """The field names, by name id."""
        return [bytes(buf[self.fields[f, 1]: self.fields[f, 2]]).decode() for f in self.name_rows]

    def views(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``views`` of spans of this batch."""
        return views(buf, self.extra, starts, ends)

    def utc_times(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``utc_times`` of spans of this batch."""
        return utc_times(buf, starts, ends)

    def text(self, buf: np.ndarray, path: int, record: int) -> str | None:
        """The value of System leaf ``path`` of ``record`` as a Python string (None if absent)."""
        a, b = int(self.ss[path, record]), int(self.se[path, record])
        if a < 0:
            return None
        la = buf.size
        raw = bytes(buf[a:b]) if a < la else bytes(self.extra[a - la: b - la])
        return raw.decode()


PARALLEL_FROM = 4096  # records: below, one thread walks the batch
_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(2, thread_name_prefix="evtx-walk"))
    return _POOL[0]


def walk_range(buf, offs, a: int, b: int, out, o: int, ss, se, err, tables) -> np.ndarray:
    """``walk`` over records ``a:b``, again from where it stopped while its field table fills up."""
    parts = []
    cap = (b - a) * 16 + 1024
    while a < b:
        fields, o, stop = walk(buf, offs, a, b, out, o, cap, ss, se, err, *tables)
        parts.append(fields)
        cap = cap * 2 if stop == a else (b - stop) * 16 + 1024
        a = stop
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _table_size(n: int) -> int:
    size = 1024
    while size < 2 * n:
        size *= 2
    return size


def walk_batch(buf: np.ndarray, offs: np.ndarray) -> Walked:
    """Walk the records ``buf[offs[r]:offs[r + 1]]``: System leaves, fields, name ids, groups, cells."""
    t = SYSTEM_TABLE
    n = offs.size - 1
    ss = np.full((len(SYSTEM_NAMES), n), -1, np.int64)
    se = np.full((len(SYSTEM_NAMES), n), -1, np.int64)
    err = np.zeros(n, np.int8)
    # the unescaped strings: never longer than the text; pages never written take no memory
    extra = np.empty(max(buf.size, 1), np.uint8)
    tables = (t.slots, t.hashes, t.mask, t.bytes, t.offsets)
    if n < PARALLEL_FROM:
        fields = walk_range(buf, offs, 0, n, extra, 0, ss, se, err, tables)
    else:
        mid = n // 2
        halves = [_pool().submit(walk_range, buf, offs, a, b, extra, int(offs[a] - offs[0]), ss, se, err, tables)
                  for a, b in ((0, mid), (mid, n))]
        fields = np.concatenate([h.result() for h in halves])
    size = 1024
    while True:
        ids, name_rows = name_ids(buf, fields, size)
        if ids.size == fields.shape[0]:
            break
        size = _table_size(size)
    size = 4096
    while True:
        groups, first = group_ids(buf, extra, ss, se, err, CHANNEL, EVENT_ID, size)
        if groups.size == err.size:
            break
        size = _table_size(size)
    size = _table_size(min(fields.shape[0], 16 * (name_rows.size + first.size)))
    while True:
        order, starts, columns, col_starts, cell_starts, cs, ce = layout(groups, first.size, fields, ids,
                                                                         name_rows.size, size)
        if order.size or not fields.shape[0] or not first.size:
            break
        size = _table_size(size)
    return Walked(ss, se, fields, extra, err, name_rows, order, starts, columns, col_starts, cell_starts, cs, ce)


# --- TimeCreated: the package writes it as ``YYYY-MM-DDTHH:MM:SS[.fraction]Z`` ---

@njit(cache=True, inline="always")
def _dd(buf, i):
    """Two decimal digits at ``buf[i]``, -1 if they are not."""
    a, b = buf[i] - 48, buf[i + 1] - 48
    if a < 0 or a > 9 or b < 0 or b > 9:
        return -1
    return a * 10 + b


@njit(cache=True, inline="always")
def _utc_us(buf, a, b):
    """Microseconds since the epoch of ``buf[a:b]`` if it is exactly ``YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z``
    (a fraction past the microsecond is cut, as Polars does), with a real date and a time without leap
    second; (0, False) for anything else, which the caller gives to the general ISO 8601 parser."""
    if b - a < 20 or buf[a + 4] != 45 or buf[a + 7] != 45 or buf[a + 10] != 84 or buf[a + 13] != 58 \
            or buf[a + 16] != 58 or buf[b - 1] != 90:
        return 0, False
    hi, lo = _dd(buf, a), _dd(buf, a + 2)
    month, day = _dd(buf, a + 5), _dd(buf, a + 8)
    hh, mm, ss = _dd(buf, a + 11), _dd(buf, a + 14), _dd(buf, a + 17)
    if hi < 0 or lo < 0 or month < 1 or month > 12 or day < 1 or hh < 0 or hh > 23 or mm < 0 or mm > 59 \
            or ss < 0 or ss > 59:
        return 0, False
    year = hi * 100 + lo
    dim = 31
    if month == 2:
        dim = 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
    elif month == 4 or month == 6 or month == 9 or month == 11:
        dim = 30
    if day > dim:
        return 0, False
    us = 0
    i = a + 19
    if i < b - 1:  # a fraction: '.' and 1 to 9 digits
        if buf[i] != 46 or b - 1 - (i + 1) < 1 or b - 1 - (i + 1) > 9:
            return 0, False
        scale = 100000
        for k in range(i + 1, b - 1):
            c = buf[k] - 48
            if c < 0 or c > 9:
                return 0, False
            if scale:
                us += c * scale
                scale //= 10
    secs = _days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss
    return secs * 1_000_000 + us, True


@njit(cache=True)
def utc_times(buf, starts, ends):
    """``_utc_us`` of the spans ``buf[starts[r]:ends[r]]``; a span past ``buf`` (an escaped string) or
    absent (-1) is not taken."""
    n = starts.size
    out = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    la = buf.size
    for r in range(n):
        a = starts[r]
        if a < 0 or a >= la:
            continue
        out[r], ok[r] = _utc_us(buf, a, ends[r])
    return out, ok
