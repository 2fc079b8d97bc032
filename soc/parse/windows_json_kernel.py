"""Numba walker of Windows events as JSON lines (NXLog's flat objects, Winlogbeat's ``winlog.*``): the spans of
the System leaves and the name and value of each EventData field, for a whole chunk in one pass.

The per-group JSON decoder (``engines.windows_json``'s slower way) infers a schema per (channel, event id)
group and types each group in queries of its own: ~5 ms a group, so a chunk of ~200 groups of tens of lines
cost ~1 s. Here the records of a chunk are walked once, then ``evtx_kernel``'s ``name_ids``, ``group_ids``,
``layout`` and ``views`` make every group's columns from one block of cells, as for EVTX records.

The walker takes only what the decoder would read as the same text: strings (unescaped), integers that fit
an int64 (as written), nulls, and for System leaves lists of strings (their values one per line). Anything
else it is asked to read (a float, a boolean, an object, a deeper list, an escaped key) gives the record an
error code, and the engine reads the chunk the slower way: never guessed.
"""

from __future__ import annotations

import numpy as np

from soc.parse.evtx_kernel import (
    LBRACE,
    LBRACKET,
    NULL,
    PLAIN,
    QUOTE,
    RBRACKET,
    _dd,
    _first,
    _member,
    _next,
    _quick,
    _skip,
    _value,
    _ws,
)
from soc.parse.fasttime import _days_from_civil
from soc.parse.json_kernel import (
    FNV_OFFSET,
    MAX_INT_DIGITS,
    PathTable,
    _at,
    _leaf,
    _literal_end,
    _node_of,
    _number_end,
    njit,
)

OK, E_JSON, E_TYPE, E_NAME, E_FULL = 0, 1, 2, 3, 4
LEAF, DATA, SKIP = 0, 1, 2  # roles of a path: a System leaf, an object of EventData fields, a name to pass over
MAX_NEST = 8  # objects the walker descends into (Winlogbeat's deepest System leaf is at depth 4)


def table(system: dict[str, tuple[str, ...]], data: list[tuple[str, ...]], skip: set[str]) -> PathTable:
    """The path table of a layout: System leaves (field index = their order in ``system``), data objects and
    top-level names that are not data (NXLog's own fields)."""
    paths = [list(p) for p in system.values()] + [list(p) for p in data] + [[s] for s in sorted(skip)]
    kinds = [LEAF] * len(system) + [DATA] * len(data) + [SKIP] * len(skip)
    return PathTable(paths, kinds, [""] * len(paths))


_INT64_MAX = np.frombuffer(b"9223372036854775807", np.uint8).copy()


@njit(cache=True, inline="always")
def _integer(buf, v, end):
    """Whether ``buf[v:end]`` is an integer whose text Polars writes back the same (it fits an int64)."""
    a = v + 1 if buf[v] == 45 else v
    n = end - a
    if n < 1 or n > MAX_INT_DIGITS + 1:
        return False
    if buf[a] == 48 and (n > 1 or a > v):  # a leading zero, or -0
        return False
    for p in range(a, end):
        if not 48 <= buf[p] <= 57:
            return False
    if n == MAX_INT_DIGITS + 1:  # 19 digits: compared with the int64 bounds
        for p in range(n):
            d, m = buf[a + p], _INT64_MAX[p] + (1 if a > v and p == n - 1 else 0)
            if d != m:
                return d < m
    return True


@_leaf
def _strings_only(buf, i, e):
    """Whether the list at ``i`` holds strings and nulls only."""
    k = _ws(buf, i + 1, e)
    if _at(buf, k, e) == RBRACKET:
        return True
    while True:
        c = _at(buf, k, e)
        if c != QUOTE and c != 110:
            return False
        end = _skip(buf, k, e)
        if end < 0:
            return False
        k = _ws(buf, end, e)
        c = _at(buf, k, e)
        if c == RBRACKET:
            return True
        if c != 44:
            return False
        k = _ws(buf, k + 1, e)


@_leaf
def _take(buf, e, v, out, o, la, lists):
    """The text of the value at ``v``: (start, end, kind, value end, new o, code)."""
    vs, ve, end = _quick(buf, e, v)
    if end != -2 and (buf[v] == QUOTE or ve - vs <= MAX_INT_DIGITS):
        return vs, ve, PLAIN, end, o, OK
    c = _at(buf, v, e)
    if c == 110:
        end = _literal_end(buf, v, e)
        return -1, -1, NULL, end, o, OK if end >= 0 else E_JSON
    if c == 45 or 48 <= c <= 57:
        end = _number_end(buf, v, e)
        if end < 0:
            return -1, -1, NULL, -1, o, E_JSON
        return v, end, PLAIN, end, o, OK if _integer(buf, v, end) else E_TYPE
    if c == QUOTE or (c == LBRACKET and lists and _strings_only(buf, v, e)):
        vs, ve, null, end, o = _value(buf, e, v, out, o, la)
        if end < 0:
            return -1, -1, NULL, -1, o, E_JSON
        return vs, ve, NULL if null else PLAIN, end, o, OK
    return -1, -1, NULL, -1, o, E_TYPE


@njit(cache=True, nogil=True)
def walk(buf, starts, ends, r0, r1, out, o, cap, ss, se, err, root_data, slots, hashes, mask, kparent, kfield,
         kkind, kbytes, koffs):
    """Records ``r0:r1`` (``buf[starts[r]:ends[r]]``, each a JSON object already checked): spans of their System
    leaves into ``ss``/``se`` (-1 where absent or null), their error codes into ``err`` (a record in error
    keeps no leaf and no field); returns their fields, one row each ``(record, name start, name end, name
    hash, value start, value end, kind)`` as ``evtx_kernel.walk`` does, the end of what they wrote to
    ``out`` (unescaped strings, at ``len(buf)`` + offset in the spans) and the record it stopped before
    (``r1``, or earlier when the ``cap`` rows of fields are full). ``root_data``: the record's own members
    that are not in the table are fields (NXLog). Releases the GIL."""
    fields = np.empty((cap, 7), np.int64)
    nodes = np.zeros(MAX_NEST, np.int64)
    data = np.zeros(MAX_NEST, np.bool_)
    nf, o, stop = _records(buf, starts, ends, r0, r1, out, o, fields, ss, se, err, root_data, nodes, data, slots,
                           hashes, mask, kparent, kfield, kkind, kbytes, koffs)
    return fields[:nf], o, stop  # a view: the pages past nf were never touched


@_leaf
def _records(buf, starts, ends, r0, r1, out, o, fields, ss, se, err, root_data, nodes, data, slots, hashes, mask,
             kparent, kfield, kkind, kbytes, koffs):
    la = buf.size
    nleaves = ss.shape[0]
    nf = 0
    for r in range(r0, r1):
        e = ends[r]
        nf0, o0 = nf, o
        code = OK
        i = _ws(buf, starts[r], e)
        if _at(buf, i, e) != LBRACE:
            code = E_JSON
        else:
            depth = 0
            nodes[0] = 0
            data[0] = root_data
            k, empty = _first(buf, i + 1, e)
            while True:
                if empty:  # the object at ``depth`` is closed, ``k`` past its brace
                    if depth == 0:
                        break
                    depth -= 1
                    k, empty = _next(buf, k, e)
                    if k < 0:
                        code = E_JSON
                        break
                    continue
                ka, kb, kesc, v = _member(buf, k, e)
                if ka < 0:
                    code = E_JSON
                    break
                if kesc:
                    code = E_NAME
                    break
                h = FNV_OFFSET
                for p in range(ka, kb):
                    h = ((h ^ buf[p]) * 16777619) & 0xFFFFFFFF
                nd = _node_of(buf, ka, kb, h, nodes[depth], slots, hashes, mask, kparent, kbytes, koffs)
                role = kkind[nd] if nd >= 0 else -1
                c = _at(buf, v, e)
                if nd >= 0 and role != LEAF and role != SKIP and c == LBRACE:  # a path's object: in
                    if depth + 1 == MAX_NEST:
                        code = E_TYPE
                        break
                    depth += 1
                    nodes[depth] = nd
                    data[depth] = role == DATA
                    k, empty = _first(buf, v + 1, e)
                    continue
                if role == LEAF:
                    vs, ve, kind, end, o, code = _take(buf, e, v, out, o, la, True)
                    if code != OK:
                        break
                    f = kfield[nd]
                    ss[f, r], se[f, r] = (vs, ve) if kind != NULL else (-1, -1)
                elif nd < 0 and data[depth]:
                    vs, ve, kind, end, o, code = _take(buf, e, v, out, o, la, False)
                    if code != OK:
                        break
                    if nf == fields.shape[0]:
                        code = E_FULL
                        break
                    fields[nf, 0] = r
                    fields[nf, 1] = ka
                    fields[nf, 2] = kb
                    fields[nf, 3] = h
                    fields[nf, 4] = vs
                    fields[nf, 5] = ve
                    fields[nf, 6] = kind
                    nf += 1
                else:
                    end = _skip(buf, v, e)
                if end < 0:
                    code = E_JSON
                    break
                k, empty = _next(buf, end, e)
                if k < 0:
                    code = E_JSON
                    break
        if code == E_FULL:
            return nf0, o0, r
        if code != OK:
            err[r] = code
            nf, o = nf0, o0
            for p in range(nleaves):
                ss[p, r] = -1
                se[p, r] = -1
    return nf, o, r1


def walk_all(buf, starts, ends, out, ss, se, err, root_data: bool, t: PathTable) -> np.ndarray:
    """``walk`` over every record, again from where it stopped while its field table fills up."""
    n = starts.size
    parts = []
    a, o = 0, 0
    cap = n * 24 + 1024
    args = (t.slots, t.hashes, t.mask, t.parent, t.field, t.kind, t.bytes, t.offsets)
    while a < n:
        fields, o, stop = walk(buf, starts, ends, a, n, out, o, cap, ss, se, err, root_data, *args)
        parts.append(fields)
        cap = cap * 2 if stop == a else (n - stop) * 24 + 1024
        a = stop
    return np.concatenate(parts) if len(parts) != 1 else (parts[0] if parts else np.zeros((0, 7), np.int64))


@njit(cache=True)
def wall_times(buf, starts, ends):
    """Microseconds since the epoch of the spans ``buf[starts[r]:ends[r]]`` read as ``YYYY-MM-DD HH:MM:SS``
    wall-clock times (NXLog's ``EventTime``, zone-less), and whether each is exactly that, with a real date
    and a time without leap second; anything else (absent, escaped, another form) is not taken, and the
    spec's ISO 8601 rule reads the text."""
    n = starts.size
    out = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    la = buf.size
    for r in range(n):
        a, b = starts[r], ends[r]
        if a < 0 or a >= la or b - a != 19 or buf[a + 4] != 45 or buf[a + 7] != 45 or buf[a + 10] != 32 \
                or buf[a + 13] != 58 or buf[a + 16] != 58:
            continue
        hi, lo = _dd(buf, a), _dd(buf, a + 2)
        month, day = _dd(buf, a + 5), _dd(buf, a + 8)
        hh, mm, ss = _dd(buf, a + 11), _dd(buf, a + 14), _dd(buf, a + 17)
        if hi < 0 or lo < 0 or month < 1 or month > 12 or day < 1 or hh < 0 or hh > 23 or mm < 0 or mm > 59 \
                or ss < 0 or ss > 59:
            continue
        year = hi * 100 + lo
        dim = 31
        if month == 2:
            dim = 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
        elif month == 4 or month == 6 or month == 9 or month == 11:
            dim = 30
        if day > dim:
            continue
        out[r] = (_days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss) * 1_000_000
        ok[r] = True
    return out, ok
