"""The EVTX walker's work in plain Python, for batches too small to repay Numba's fixed cost.

``evtx_kernel.walk_batch`` walks the bytes of a batch's record JSON; loading it costs a process ~0.3 s of
CPU and ~100 MB (``soc.jit``) whatever the batch, and a folder of small ``.evtx`` files holds ~10 k records
(~22 us of CPU a record here before orjson, ~16-18 us since, ~13 us with its series; ~3.7 us walked by
Numba: the fixed cost is repaid from ~18 k records; ``US_PER_RECORD`` still charges 22, so which batches run
plain is as before). ``walk`` gives what the kernel's walk gives the engine (``engines.evtx.walked_strings``):
each record decoded by orjson (integers written back as text; a record with a float or a "-0", whose text as
written Python's numbers do not keep, or one orjson refuses, by the standard library's JSON reader, numbers
kept as written), the same values by the same rules as the kernel's (``_value``/``_render``, see
``evtx_kernel``) as String series rather than spans, the same error codes for the records the kernel leaves
to the slower decoder, the same name ids, groups and cells (layout by NumPy, ``_cells``). It relies on what
the ``evtx`` package writes (serde_json): keys unique in an object, a key escaped only if it holds a quote, a
backslash or a control character, and no value nested more than 62 deep in the parts the kernel skips without
reading (its limit there; deeper values in what it reads are errors both ways).
``tests/test_evtx_plain.py`` compares both walkers on every record of the corpus and on odd records.
"""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pyarrow as pa

from soc.parse import evtx_kernel as K

US_PER_RECORD = 22  # CPU a record costs here, with its views and times (the Numba walk: ~3.7 us)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# numbers as written; NaN and Infinity are not JSON (the kernel refuses them too)
_DECODE = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=_no_constant).decode
_ESCAPED = re.compile(r'["\\\x00-\x1f]')  # what serde_json escapes in a key
_STR = {str}


try:  # ~3 us a corpus record against ~6.5 us by the standard reader (the walk: 164-170 -> 136 ms)
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - a dependency; without it the standard reader reads every record
    _orjson_loads = None
_MINUS_ZERO = re.compile(r"-0\s*[,}\]]")  # "-0" as a number (orjson makes it 0; in text it only costs a re-read)
_SLOW = object()  # a record for the standard reader


def _fast(text: str):
    """The record decoded by orjson, or ``_SLOW``: it refused it (the standard reader says why, or reads
    what it reads differently, such as lone surrogates) or the text holds a "-0"."""
    if _orjson_loads is None or _MINUS_ZERO.search(text):
        return _SLOW
    try:
        return _orjson_loads(text)
    except Exception:  # noqa: BLE001 - whatever orjson refuses goes to the standard reader, which decides
        return _SLOW


class _Redo(Exception):
    """A float decoded by orjson: its text as written needs the standard reader."""


class _Bad(Exception):
    def __init__(self, code: int):
        self.code = code


def _render(x, depth: int) -> str | None:
    """``evtx_kernel._render`` (``depth`` 2), ``_flat`` (1), ``_scalar`` (0): the text of a value, None for
    null; a list or object where none may be is too deep (``_Bad``, its code given by the caller)."""
    kind = type(x)
    if kind is str:
        return x
    if kind is dict:
        if not depth:
            raise _Bad(K.E_DEEP)
        if "#text" in x:
            return _render(x["#text"], depth - 1)
        parts = []
        for k, v in x.items():
            t = _render(v, depth - 1)
            if t is not None:
                parts.append(t if k == "#attributes" else k + "=" + t)
        return "\n".join(parts)
    if kind is list:
        if not depth:
            raise _Bad(K.E_DEEP)
        return "\n".join(t for t in (_render(v, depth - 1) for v in x) if t is not None)
    if x is None:
        return None
    if kind is float:
        raise _Redo
    return "true" if x is True else "false" if x is False else str(x)  # an int of orjson's: as written


# the System leaves: elements with a text of their own (element, index) and elements with attributes (element,
# ((attribute, index), ...)); keys are unique (serde_json), so each is looked up rather than found by walking the
# members as the kernel does. Which leaf fails first does not matter: any failure makes the record malformed.
_TEXTS = [(path, i) for i, path in enumerate(K.SYSTEM_PATHS.values()) if "/" not in path]
_ATTRIBUTES: dict[str, tuple[tuple[str, int], ...]] = {}
for _i, _path in enumerate(K.SYSTEM_PATHS.values()):
    if "/" in _path:
        _key, _attr = _path.split("/")
        _ATTRIBUTES[_key] = (*_ATTRIBUTES.get(_key, ()), (_attr, _i))
_ATTRIBUTES_OF = list(_ATTRIBUTES.items())


def _system(block: dict, leaves: list) -> None:
    """``evtx_kernel._system``: the System leaves of one record into ``leaves`` (None where null; ``leaves``
    holds None when called). Strings and integers, nearly every leaf, are taken without ``_render``, each
    element looked up once (~4 -> ~1.5 us a record)."""
    get = block.get
    try:
        for key, idx in _TEXTS:  # an element: its #text, else its members' text
            v = get(key)
            kind = type(v)
            if kind is str:
                leaves[idx] = v
            elif kind is int:
                leaves[idx] = str(v)
            elif v is not None:
                leaves[idx] = _render(v["#text"] if kind is dict and "#text" in v else v, 2)
        for key, attrs in _ATTRIBUTES_OF:
            v = get(key)
            if type(v) is dict and type(at := v.get("#attributes")) is dict:
                for attr, idx in attrs:
                    x = at.get(attr)  # null: None either way
                    if x is not None:
                        leaves[idx] = x if type(x) is str else str(x) if type(x) is int else _render(x, 2)
    except _Bad:
        raise _Bad(K.E_JSON) from None  # the kernel's System walk calls a too deep leaf malformed


def _data(block: dict, eventdata: bool, names: dict, known: dict, nids: list, vals: list) -> None:
    """``evtx_kernel._data``: the name ids and texts of the fields of one data part appended (``known``: the name
    ids of the field lists seen so far in the batch)."""
    if not eventdata:  # UserData and the like: {"Element": {fields}}
        inner = [v for k, v in block.items() if k != "#attributes"]
        if len(inner) == 1 and type(inner[0]) is dict:
            block = inner[0]
    if "#attributes" in block:
        block = {k: v for k, v in block.items() if k != "#attributes"}
    keys = tuple(block)  # records of a group mostly have the same fields: their ids found once
    ids = known.get(keys)
    if ids is None:
        if not block.keys() <= names.keys():  # names not seen before in the batch
            for k in [k for k in block if k not in names]:
                if _ESCAPED.search(k):
                    raise _Bad(K.E_NAME)
                names[k] = len(names)
        ids = known[keys] = tuple(map(names.__getitem__, keys))
    nids += ids
    if set(map(type, block.values())) <= _STR:
        vals += block.values()
    else:
        vals += [v if type(v) is str else _text(v) for v in block.values()]


def _text(v) -> str:
    """A field's value as text: null is empty (an element without content)."""
    t = _render(v, 2)
    return "" if t is None else t


def _record(d, leaves: list, names: dict, known: dict, nids: list, vals: list) -> None:
    """One decoded record's System leaves and data fields (``_system``, ``_data``)."""
    if type(d) is not dict:
        raise _Bad(K.E_JSON)
    ev = d.get("Event")
    if type(ev) is not dict:
        raise _Bad(K.E_SHAPE)
    for part, block in ev.items():
        if type(block) is not dict or part == "#attributes":
            continue
        if part == "System":
            _system(block, leaves)
        else:
            _data(block, part == "EventData", names, known, nids, vals)


def walk(texts: list[str]) -> Walked:
    """The ``Walked`` of records ``texts`` (the batch's JSON): the kernel's records by group and columns, the
    values as String series."""
    n = len(texts)
    nsys = len(K.SYSTEM_NAMES)
    err = np.zeros(n, np.int8)
    names: dict[str, int] = {}
    known: dict[tuple, tuple] = {}  # ``_data``'s
    groups = np.full(n, -1, np.int64)
    group_ids: dict[tuple, int] = {}
    leaves_all: list = []  # the System leaves of the records walked, record after record
    walked: list[int] = []  # those records
    counts: list[int] = []  # their fields
    nids: list[int] = []
    vals: list[str] = []
    for r, text in enumerate(texts):
        leaves = [None] * nsys
        before = len(vals)
        try:
            d = _fast(text)
            if d is not _SLOW:
                try:
                    _record(d, leaves, names, known, nids, vals)
                except _Redo:
                    leaves = [None] * nsys
                    del nids[before:], vals[before:]
                    d = _SLOW
            if d is _SLOW:
                try:
                    d = _DECODE(text)
                except (ValueError, RecursionError):
                    raise _Bad(K.E_JSON) from None
                _record(d, leaves, names, known, nids, vals)
                if "\\u" in text:  # an escaped lone surrogate (orjson refuses them) is no text: malformed, as
                    "".join(filter(None, leaves)).encode()  # the kernel has it
                    "".join(vals[before:]).encode()
        except (_Bad, UnicodeEncodeError) as exc:
            err[r] = exc.code if isinstance(exc, _Bad) else K.E_JSON
            del nids[before:], vals[before:]
            continue
        eid = leaves[K.EVENT_ID]
        if eid is not None and not (eid.isdigit() and eid.isascii()):
            leaves[K.EVENT_ID] = eid = None
        groups[r] = group_ids.setdefault((leaves[K.CHANNEL], eid), len(group_ids))
        leaves_all += leaves
        walked.append(r)
        counts.append(len(vals) - before)
    order, starts, columns, col_starts, cell_starts, cell = _cells(n, groups, len(group_ids), len(names), walked,
                                                                   counts, nids)
    return Walked(err, order, starts, columns, col_starts, cell_starts, list(names), leaves_all, walked, vals, cell)


def _put(texts: list, at: int, nulls: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``texts`` (None: null, if ``nulls``) as UTF-8 in one buffer starting at ``at``: (its bytes, starts, ends;
    -1 for null). pyarrow's converter writes them all (~35 ns a text; each text encoded by Python and joined
    was ~4x that)."""
    arr = pa.array(texts, pa.large_string())
    if arr.null_count and not nulls:
        raise TypeError("a null where none may be")
    offsets = np.frombuffer(arr.buffers()[1], np.int64, len(texts) + 1)
    data = arr.buffers()[2]
    starts, ends = offsets[:-1] + at, offsets[1:] + at
    if arr.null_count:  # by the validity bitmap: ``is_null`` would import pyarrow.compute (~30 ms)
        null = np.unpackbits(np.frombuffer(arr.buffers()[0], np.uint8), count=len(texts), bitorder="little") == 0
        starts[null], ends[null] = -1, -1
    return (np.frombuffer(data, np.uint8, int(offsets[-1])) if data is not None else _EMPTY), starts, ends


_EMPTY = np.zeros(0, np.uint8)


def _layout(la: int, n: int, err: np.ndarray, groups: np.ndarray, ngroups: int, names: dict, leaves: list,
            walked: list, counts: list, nids: list, vals: list, nsys: int = len(K.SYSTEM_NAMES),
            null_values: bool = False) -> Spans:
    """``evtx_kernel.layout`` by NumPy: the values in one buffer, records by group, each group's columns.
    ``nsys`` leaves a record; ``null_values``: fields may be None (null cells; Windows JSON)."""
    sys_data, a, b = _put(leaves, la)
    ss = np.full((nsys, n), -1, np.int64)
    se = np.full((nsys, n), -1, np.int64)
    rows = np.asarray(walked, np.int64)
    ss[:, rows], se[:, rows] = a.reshape(-1, nsys).T, b.reshape(-1, nsys).T
    val_data, begins, ends = _put(vals, la + sys_data.size, nulls=null_values)
    order, starts, pair_k, col_starts, cell_starts, cell = _cells(n, groups, ngroups, len(names), walked, counts, nids)
    cs = np.full(int(cell_starts[-1]), -1, np.int64)
    ce = np.full(int(cell_starts[-1]), -1, np.int64)
    cs[cell], ce[cell] = begins, ends
    extra = np.concatenate([sys_data, val_data]) if sys_data.size + val_data.size else np.zeros(1, np.uint8)
    w = Spans(ss, se, np.zeros((0, 7), np.int64), extra, err, np.zeros(0, np.int64), order, starts, pair_k,
              col_starts, cell_starts, cs, ce)
    w.name_list = list(names)
    return w


def _cells(n: int, groups: np.ndarray, ngroups: int, width: int, walked: list, counts: list,
           nids: list) -> tuple[np.ndarray, ...]:
    """Records by group and each group's columns (``evtx_kernel.layout`` by NumPy): the records in group order,
    each group's first row in it, the name ids of each group's columns in order of first appearance and where
    each group's start, where each group's cells start (column-major), and the cell of every value."""
    ok = np.flatnonzero(groups >= 0)
    order = ok[np.argsort(groups[ok], kind="stable")]
    size = np.bincount(groups[ok], minlength=ngroups)
    starts = np.zeros(ngroups + 1, np.int64)
    np.cumsum(size, out=starts[1:])
    pos = np.zeros(n, np.int64)
    pos[order] = np.arange(order.size) - starts[groups[order]]
    rec_a = np.repeat(np.asarray(walked, np.int64), np.asarray(counts, np.int64))
    nid_a = np.asarray(nids, np.int64)
    g = groups[rec_a]
    # each group's columns in order of first appearance: (group, name) pairs by their first field
    width = max(width, 1)
    pair = g * width + nid_a
    keys, first = np.unique(pair, return_index=True)
    by_first = np.lexsort((first, keys // width))
    pair_g, pair_k = keys[by_first] // width, keys[by_first] % width
    count = np.bincount(pair_g, minlength=ngroups)
    col_starts = np.zeros(ngroups + 1, np.int64)
    np.cumsum(count, out=col_starts[1:])
    col_of_pair = np.empty(keys.size, np.int64)
    col_of_pair[by_first] = np.arange(keys.size) - col_starts[pair_g]
    col = col_of_pair[np.searchsorted(keys, pair)]
    cell_starts = np.zeros(ngroups + 1, np.int64)
    np.cumsum(count * size, out=cell_starts[1:])
    return order, starts, pair_k, col_starts, cell_starts, cell_starts[g] + col * size[g] + pos[rec_a]


def views(buf: np.ndarray, extra: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``evtx_kernel.views`` by NumPy: Arrow string views of the spans (past ``len(buf)``: in ``extra``)."""
    n = starts.size
    out = np.zeros((n, 16), np.uint8)
    valid = starts >= 0
    la = buf.size
    ln = np.where(valid, ends - starts, 0)
    words = out.view("<i4")  # (n, 4): length, then 12 bytes inline, or a prefix, buffer index and offset
    words[:, 0] = ln
    for index, src, rows in ((0, buf, np.flatnonzero(valid & (starts < la))), (1, extra, np.flatnonzero(starts >= la))):
        if not rows.size:
            continue
        at = starts[rows] - la * index
        size = ln[rows]
        long = size > 12
        take = np.where(long, 4, size)
        for j in range(12):
            sel = np.flatnonzero(take > j)
            if not sel.size:
                break
            out[rows[sel], 4 + j] = src[at[sel] + j]
        words[rows[long], 2] = index
        words[rows[long], 3] = at[long]
    return out, valid


def utc_times(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
              extra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``evtx_kernel.utc_times`` (``_utc_us``) by NumPy, of texts in ``extra`` (the kernel's span check aside:
    every value here is there, and a TimeCreated that was escaped in the JSON holds a character the format
    has not): ``YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z`` with a real date, the fraction cut at the microsecond."""
    n = starts.size
    us = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    ln = ends - starts
    rows = np.flatnonzero((starts >= buf.size) & (ln >= 20) & (ln <= 30) & (ln != 21))
    if not rows.size:
        return us, ok
    ln = ln[rows]
    at = starts[rows] - buf.size
    m = np.concatenate([extra, np.zeros(30, np.uint8)])[at[:, None] + np.arange(30)].astype(np.int64)
    d = m - 48
    digit = (d >= 0) & (d <= 9)
    k = np.arange(30)[None, :]
    fraction = (k >= 20) & (k < ln[:, None] - 1)  # the fraction's digits (none if ln is 20)
    fixed = np.zeros(30, np.bool_)
    fixed[[0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]] = True
    good = (m[:, 4] == 45) & (m[:, 7] == 45) & (m[:, 10] == 84) & (m[:, 13] == 58) & (m[:, 16] == 58) \
        & (m[np.arange(rows.size), ln - 1] == 90) & ((ln == 20) | (m[:, 19] == 46)) \
        & (digit | ~(fixed[None, :] | fraction)).all(axis=1)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month, day = d[:, 5] * 10 + d[:, 6], d[:, 8] * 10 + d[:, 9]
    hh, mm, sec = d[:, 11] * 10 + d[:, 12], d[:, 14] * 10 + d[:, 15], d[:, 17] * 10 + d[:, 18]
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    dim = np.where(month == 2, np.where(leap, 29, 28), np.where(np.isin(month, (4, 6, 9, 11)), 30, 31))
    good &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= dim) & (hh <= 23) & (mm <= 59) & (sec <= 59)
    micro = (np.where(fraction[:, 20:26], d[:, 20:26], 0) * 10 ** np.arange(5, -1, -1)).sum(axis=1)
    rows, year, month, day = rows[good], year[good], month[good], day[good]
    dates, back = np.unique(year * 10_000 + month * 100 + day, return_inverse=True)
    days = np.array([K._days_from_civil.py_func(int(x) // 10_000, int(x) // 100 % 100, int(x) % 100) for x in dates],
                    np.int64)  # few distinct dates: the kernel's own function, as Python
    us[rows] = (days[back] * 86400 + hh[good] * 3600 + mm[good] * 60 + sec[good]) * 1_000_000 + micro[good]
    ok[rows] = True
    return us, ok


class Spans(K.Walked):
    """``_layout``'s walk (Windows JSON lines): names kept as text, string views and times by NumPy and Python."""

    name_list: list[str]

    def names(self, buf: np.ndarray) -> list[str]:
        return self.name_list

    def views(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return views(buf, self.extra, starts, ends)

    def utc_times(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return utc_times(buf, starts, ends, self.extra)


NSYS = len(K.SYSTEM_NAMES)


class Walked:
    """A plain walk of EVTX records: the records by group and each group's columns and cells as
    ``evtx_kernel.Walked`` has them (``err``, ``order``, ``starts``, ``columns``, ``col_starts``,
    ``cell_starts``), the values as Python strings made String series at once (``system``, ``cells``), not
    spans of a byte buffer: putting them in one buffer and making string views of it cost ~2.5 us a record,
    the series and a gather ~1."""

    def __init__(self, err: np.ndarray, order: np.ndarray, starts: np.ndarray, columns: np.ndarray,
                 col_starts: np.ndarray, cell_starts: np.ndarray, names: list[str], leaves: list, walked: list,
                 vals: list, cell: np.ndarray):
        self.err, self.order, self.starts = err, order, starts
        self.columns, self.col_starts, self.cell_starts = columns, col_starts, cell_starts
        self.name_list, self.leaves = names, leaves  # the System leaves of the walked records, NSYS a record
        self.row = np.full(err.size, -1, np.int64)  # each record's place among the walked ones
        self.row[np.asarray(walked, np.int64)] = np.arange(len(walked))
        self._vals, self._cell = vals, cell

    def names(self, buf: np.ndarray | None = None) -> list[str]:
        """The field names, by name id."""
        return self.name_list

    def text(self, buf: np.ndarray | None, path: int, record: int) -> str | None:
        """The value of System leaf ``path`` of ``record`` (None if absent)."""
        return self.leaves[int(self.row[record]) * NSYS + path]

    def _ordered(self, path: int) -> list:
        """System leaf ``path`` of the walked records, in ``order``."""
        return [self.leaves[p * NSYS + path] for p in self.row[self.order].tolist()]

    @property
    def system(self) -> pl.Series:
        """The System leaves as one String series: leaf after leaf, the records in ``order``."""
        at = self.row[self.order] * NSYS
        return pl.Series(self.leaves, dtype=pl.String).gather((at[None, :] + np.arange(NSYS)[:, None]).ravel())

    @property
    def cells(self) -> pl.Series:
        """Every group's cells (column after column), null where a record lacks the column."""
        vals = self._vals
        src = np.full(int(self.cell_starts[-1]), len(vals), np.int64)  # the null after the values
        src[self._cell] = np.arange(len(vals))
        return pl.Series([*vals, None], dtype=pl.String).gather(src)

    def times(self) -> tuple[np.ndarray, np.ndarray]:
        """``TimeCreated`` of the records in ``order`` as UTC microseconds, and whether it is in the package's own
        form (``utc_times``)."""
        data, starts, ends = _put(self._ordered(K.TIME_CREATED), 0)
        return utc_times(_EMPTY, starts, ends, data)
