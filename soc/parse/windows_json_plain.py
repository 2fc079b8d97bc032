"""The Windows JSON engine's check and walk in plain Python, for chunks too small to repay Numba's fixed cost.

``engines.windows_json`` checks each line (``json_kernel.validate``), walks the records
(``windows_json_kernel.walk``) and lays them out (``evtx_kernel``'s ``name_ids``, ``group_ids``,
``layout``, ``views`` and times): for a one-line input that loaded Numba and ~50 cached kernels, ~0.3 s
of CPU and ~100 MB (``soc.jit``). ``walk`` gives the same line codes and ``Walk`` from the standard
library's JSON reader (numbers kept as written) and ``evtx_plain``'s layout, values read by the walker's
rules: a string, an integer that fits an int64 (as written), null, and for System leaves a list of strings
and nulls (its strings one per line); anything else it is asked to read (a float, a boolean, an object, a
list among the fields) means the slower way for the chunk, as the walker's error code does.

Where the reader and the kernels could differ, ``walk`` does not guess: it raises ``Defer`` and the
kernels decide. That is a line that is not one clean JSON object (its dead letter's reason is the check's
to give), a key escaped though it need not be (``\\u0041``: the walker refuses an escaped key only in the
objects it walks; one that must be, with a quote, backslash or control character, is found there), an
escaped surrogate not in a pair, a key twice in an object, nesting as deep as the check's limit, or a name
twice in one record.
``tests/test_windows_json_plain.py`` compares both ways.
"""

from __future__ import annotations

import json
import re

import numpy as np

from soc.parse import evtx_plain
from soc.parse import json_kernel as K
from soc.parse.fasttime import _days_from_civil

# CPU a record costs here, its layout, views and times included: 5,000 generated lines 0.17-0.19 s (NXLog,
# ~1.3 KB) and 0.19-0.21 s (Winlogbeat); the kernels' way 0.07 s once Numba's ~0.43 s is paid
US_PER_RECORD = 40
INT64 = (-(1 << 63), (1 << 63) - 1)


class Defer(Exception):
    """The kernels decide this chunk."""


class _Refused(Exception):
    """A value the walker does not read (its error code): the slower way."""


class _Int(str):
    """An integer as written."""


class _Float(str):
    """A number with a fraction or an exponent, as written."""


def _object(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):  # a key twice: the walker reads both, the reader keeps the last
        raise Defer
    return d


def _no_constant(name: str) -> None:
    raise Defer  # NaN, Infinity: not JSON, the check gives the reason


_DECODE = json.JSONDecoder(object_pairs_hook=_object, parse_int=_Int, parse_float=_Float,
                           parse_constant=_no_constant).decode
# every string of a line in turn (so none is matched from inside another), and whether a colon follows (a key)
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"[ \t\n\r]*(:?)')
_MUST_ESCAPE = re.compile(r'["\\\x00-\x1f]')  # what a JSON key holds only escaped
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)")  # every escape in turn (``\\\\`` is one)


def _lone_surrogate(text: str) -> bool:
    """Whether an escaped surrogate in ``text`` is not half of a pair (the check refuses it; the reader
    takes it)."""
    low_at = -1  # where the low half of a pair must be
    for m in _ESCAPE.finditer(text):
        u = m[1] or "0000"
        low, high = u[0] in "dD" and u[1] in "cdefCDEF", u[0] in "dD" and u[1] in "89abAB"
        if low_at >= 0:
            if not (low and m.start() == low_at):
                return True
            low_at = -1
        elif low:
            return True
        elif high:
            low_at = m.end()
    return low_at >= 0
_WALL = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)", re.ASCII)
DATA = "data"  # a tree node: an object whose members are fields


def tree(system: dict[str, tuple[str, ...]], data: list[tuple[str, ...]], skip: set[str]) -> dict:
    """The layout's paths (``windows_json_kernel.table``) as nested dicts: a System leaf's index, ``DATA``,
    None for a name to pass over, a dict for an object on the way to them."""
    root: dict = {}
    for i, path in enumerate(system.values()):
        node = root
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = i
    for path in data:
        node = root
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = DATA
    for key in skip:
        root[key] = None
    return root


def _text(v, lists: bool) -> str | None:
    """``windows_json_kernel._take``: the text of a value the walker reads, None for null."""
    kind = type(v)
    if kind is str:
        return v
    if v is None:
        return None
    if kind is _Int and v != "-0" and INT64[0] <= int(v) <= INT64[1]:
        return str(v)
    if kind is list and lists and all(type(x) is str or x is None for x in v):
        return "\n".join(x for x in v if x is not None)
    raise _Refused


def _walk(obj: dict, node: dict | None, is_data: bool, leaves: list, names: list, vals: list) -> None:
    """``windows_json_kernel._records`` over one object: leaves set, fields appended."""
    if _MUST_ESCAPE.search("".join(obj)):  # a key that was escaped: the walker refuses it
        raise _Refused
    for k, v in obj.items():
        sub = node.get(k, False) if node is not None else False
        if type(sub) is int:
            leaves[sub] = _text(v, True)
        elif sub is False:  # not in the table
            if is_data:
                names.append(k)
                vals.append(_text(v, False))
        elif sub is not None and type(v) is dict:  # a path's object: in
            _walk(v, sub if sub is not DATA else None, sub is DATA, leaves, names, vals)


def _lines(batch) -> list[str]:
    raw = batch.buf.tobytes()
    try:
        return [raw[a:b].decode() for a, b in zip(batch.starts.tolist(), batch.ends.tolist(), strict=True)]
    except UnicodeDecodeError:
        raise Defer from None


def walk(batch, system: dict, paths: dict, root_data: bool, channel: int, event_id: int, wall: bool):
    """The engine's ``_walk`` of ``batch`` (codes, good lines, ``Walk`` or None for the slower way), by
    ``paths`` (``tree``); raises ``Defer`` where it cannot tell. ``wall``: times are NXLog's wall clock."""
    from soc.parse.engines.windows_json import Walk

    texts = _lines(batch)
    n = len(texts)
    nsys = len(system)
    code = np.full(n, K.OK, np.int8)
    good: list[int] = []
    refused = False
    groups: dict[tuple, int] = {}
    record_groups: list[int] = []
    all_leaves: list = []
    ids: dict[str, int] = {}
    counts: list[int] = []
    nids: list[int] = []
    vals: list = []
    for r, text in enumerate(texts):
        if not text.strip(" \t\n\r"):
            code[r] = K.BLANK
            continue
        if ("\\u" in text or "\\/" in text) and (_SURROGATE.search(text) and _lone_surrogate(text) or any(
                m[2] and "\\" in m[1] for m in _STRING.finditer(text))):  # a key escaped though it need not be
            raise Defer
        if text.count("{") + text.count("[") >= K.MAX_DEPTH:
            raise Defer
        try:
            d = _DECODE(text)
        except (ValueError, RecursionError):
            raise Defer from None
        if type(d) is not dict:
            raise Defer
        good.append(r)
        if refused:
            continue
        leaves = [None] * nsys
        names: list[str] = []
        try:
            _walk(d, paths, root_data, leaves, names, vals)
        except _Refused:
            refused = True
            continue
        if len(set(names)) != len(names):
            raise Defer
        for k in names:
            nids.append(ids.setdefault(k, len(ids)))
        counts.append(len(names))
        all_leaves += leaves
        record_groups.append(groups.setdefault((leaves[channel], leaves[event_id]), len(groups)))
    good_rows = np.asarray(good, np.int64)
    if refused or not good:
        return code, good_rows, None
    m = len(good)
    buf = batch.buf
    w = evtx_plain._layout(buf.size, m, np.zeros(m, np.int8), np.asarray(record_groups, np.int64), len(groups), ids,
                           all_leaves, list(range(m)), counts, nids, vals, nsys=nsys, null_values=True)
    order = w.order
    time = list(system).index("System.TimeCreated")
    if not wall and (w.ss[time] < 0).all():  # Winlogbeat 7: @timestamp (the engine's rule)
        time = list(system).index("Record.Timestamp")
    if wall:
        us, ok = wall_times([all_leaves[int(r) * nsys + time] for r in order])
    else:
        us, ok = evtx_plain.utc_times(buf, w.ss[time, order], w.se[time, order], w.extra)
    return code, good_rows, Walk(
        w.extra, list(ids), order, w.starts, w.columns, w.col_starts, w.cell_starts,
        evtx_plain.views(buf, w.extra, np.take(w.ss, order, axis=1).ravel(), np.take(w.se, order, axis=1).ravel()),
        evtx_plain.views(buf, w.extra, w.cs, w.ce), us if ok.all() else None)


def wall_times(texts: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """``windows_json_kernel.wall_times`` of texts: ``YYYY-MM-DD HH:MM:SS`` with a real date."""
    us = np.zeros(len(texts), np.int64)
    ok = np.zeros(len(texts), np.bool_)
    for r, t in enumerate(texts):
        m = _WALL.fullmatch(t) if t is not None else None
        if m is None:
            continue
        year, month, day, hh, mm, ss = map(int, m.groups())
        if not (1 <= month <= 12 and day >= 1 and hh <= 23 and mm <= 59 and ss <= 59):
            continue
        dim = 31
        if month == 2:
            dim = 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
        elif month in (4, 6, 9, 11):
            dim = 30
        if day > dim:
            continue
        us[r] = (_days_from_civil.py_func(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss) * 1_000_000
        ok[r] = True
    return us, ok
