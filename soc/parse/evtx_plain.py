"""The EVTX walker's work in plain Python, for batches too small to repay Numba's fixed cost.

``evtx_kernel.walk_batch`` walks the bytes of a batch's record JSON; loading it costs a process ~0.3 s of
CPU and ~100 MB (``soc.jit``) whatever the batch, and a folder of small ``.evtx`` files holds ~10 k records
(~15 us a record here, against ~3 us walked). ``walk`` gives the same ``Walked``: each record decoded by
the standard library's JSON reader (numbers kept as written), the same values by the same rules as the
kernel's (``_value``/``_render``, see ``evtx_kernel``), every value written UTF-8 to the batch's second
buffer (spans past ``len(buf)``), the same error codes for the records the kernel leaves to the slower
decoder, the same name ids, groups and cells (layout by NumPy). It relies on what the ``evtx`` package
writes (serde_json): keys unique in an object, and a key escaped only if it holds a quote, a backslash or a
control character. ``tests/test_evtx_plain.py`` compares both walkers on every record of the corpus and
on odd records.
"""

from __future__ import annotations

import json
import re

import numpy as np

from soc.parse import evtx_kernel as K

US_PER_RECORD = 15  # what a record costs here (``soc.jit.plain``'s unit)



def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# numbers as written; NaN and Infinity are not JSON (the kernel refuses them too)
_DECODE = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=_no_constant).decode
_ESCAPED = re.compile(r'["\\\x00-\x1f]')  # what serde_json escapes in a key
_PATHS = {path: i for i, path in enumerate(K.SYSTEM_PATHS.values())}
_UTC = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z")


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
    return "true" if x is True else "false" if x is False else str(x)


def _system(block: dict, leaves: list) -> None:
    """``evtx_kernel._system``: the System leaves of one record into ``leaves`` (None where null)."""
    try:
        for key, v in block.items():
            kidx = _PATHS.get(key)
            if type(v) is dict:
                text = False
                for a, av in v.items():
                    if a == "#attributes" and type(av) is dict:
                        for t, tv in av.items():
                            idx = _PATHS.get(key + "/" + t)
                            if idx is not None:
                                leaves[idx] = _render(tv, 2)
                    elif kidx is not None and a == "#text":
                        leaves[kidx] = _render(av, 2)
                        text = True
                if kidx is not None and not text:
                    leaves[kidx] = _render(v, 2)
            elif kidx is not None:
                leaves[kidx] = _render(v, 2)
    except _Bad:
        raise _Bad(K.E_JSON) from None  # the kernel's System walk calls a too deep leaf malformed


def _data(block: dict, eventdata: bool, names: dict, out: list) -> None:
    """``evtx_kernel._data``: (name id, text) of the fields of one data part appended to ``out``."""
    if not eventdata:  # UserData and the like: {"Element": {fields}}
        inner = [v for k, v in block.items() if k != "#attributes"]
        if len(inner) == 1 and type(inner[0]) is dict:
            block = inner[0]
    for k, v in block.items():
        if k == "#attributes":
            continue
        nid = names.get(k)
        if nid is None:
            if _ESCAPED.search(k):
                raise _Bad(K.E_NAME)
            nid = names[k] = len(names)
        t = v if type(v) is str else _render(v, 2)
        out.append((nid, "" if t is None else t))


def walk(texts: list[str], la: int) -> Walked:
    """The ``Walked`` of records ``texts`` (the batch's JSON, ``la`` bytes as the kernel sees it), every
    value in ``extra`` (at ``la`` + its offset there)."""
    n = len(texts)
    nsys = len(K.SYSTEM_NAMES)
    spans = []  # per record: its System leaves' texts
    err = np.zeros(n, np.int8)
    names: dict[str, int] = {}
    groups = np.full(n, -1, np.int64)
    group_ids: dict[tuple, int] = {}
    rec, nid, vals = [], [], []  # the fields of the records walked
    for r, text in enumerate(texts):
        leaves = [None] * nsys
        fields: list = []
        try:
            try:
                d = _DECODE(text)
            except (ValueError, RecursionError):
                raise _Bad(K.E_JSON) from None
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
                    _data(block, part == "EventData", names, fields)
            encoded = [None if t is None else t.encode() for t in leaves]
            fields = [(i, t.encode()) for i, t in fields]
        except (_Bad, UnicodeEncodeError) as exc:  # a lone surrogate is no text: the kernel says malformed
            err[r] = exc.code if isinstance(exc, _Bad) else K.E_JSON
            spans.append(None)
            continue
        eid = encoded[K.EVENT_ID]
        if eid is not None and not (eid.isdigit() and eid.isascii()):
            encoded[K.EVENT_ID] = None
        key = (encoded[K.CHANNEL], encoded[K.EVENT_ID])
        groups[r] = group_ids.setdefault(key, len(group_ids))
        spans.append(encoded)
        rec += [r] * len(fields)
        for i, t in fields:
            nid.append(i)
            vals.append(t)
    return _layout(la, n, spans, err, groups, len(group_ids), names, rec, nid, vals)


def _layout(la: int, n: int, spans: list, err: np.ndarray, groups: np.ndarray, ngroups: int, names: dict,
            rec: list, nid: list, vals: list) -> Walked:
    """``evtx_kernel.layout`` by NumPy: the values in one buffer, records by group, each group's columns."""
    nsys = len(K.SYSTEM_NAMES)
    out = bytearray()
    ss = np.full((nsys, n), -1, np.int64)
    se = np.full((nsys, n), -1, np.int64)
    for r, leaves in enumerate(spans):
        if leaves is None:
            continue
        for p, b in enumerate(leaves):
            if b is not None:
                ss[p, r] = la + len(out)
                out += b
                se[p, r] = la + len(out)
    lens = np.fromiter(map(len, vals), np.int64, len(vals))
    ends = la + len(out) + np.cumsum(lens)
    begins = ends - lens
    out += b"".join(vals)
    ok = np.flatnonzero(groups >= 0)
    order = ok[np.argsort(groups[ok], kind="stable")]
    size = np.bincount(groups[ok], minlength=ngroups)
    starts = np.zeros(ngroups + 1, np.int64)
    np.cumsum(size, out=starts[1:])
    pos = np.zeros(n, np.int64)
    pos[order] = np.arange(order.size) - starts[groups[order]]
    rec_a, nid_a = np.asarray(rec, np.int64), np.asarray(nid, np.int64)
    g = groups[rec_a]
    # each group's columns in order of first appearance: (group, name) pairs by their first field
    pair = g * max(len(names), 1) + nid_a
    keys, first = np.unique(pair, return_index=True)
    by_first = np.lexsort((first, keys // max(len(names), 1)))
    pair_g, pair_k = keys[by_first] // max(len(names), 1), keys[by_first] % max(len(names), 1)
    count = np.bincount(pair_g, minlength=ngroups)
    col_starts = np.zeros(ngroups + 1, np.int64)
    np.cumsum(count, out=col_starts[1:])
    col_of_pair = np.empty(keys.size, np.int64)
    col_of_pair[by_first] = np.arange(keys.size) - col_starts[pair_g]
    col = col_of_pair[np.searchsorted(keys, pair)]
    cell_starts = np.zeros(ngroups + 1, np.int64)
    np.cumsum(count * size, out=cell_starts[1:])
    cs = np.full(int(cell_starts[-1]), -1, np.int64)
    ce = np.full(int(cell_starts[-1]), -1, np.int64)
    cell = cell_starts[g] + col * size[g] + pos[rec_a]
    cs[cell], ce[cell] = begins, ends
    extra = np.frombuffer(bytes(out) or b"\0", np.uint8)
    w = Walked(ss, se, np.zeros((0, 7), np.int64), extra, err, np.zeros(0, np.int64), order, starts, pair_k,
               col_starts, cell_starts, cs, ce)
    w.name_list = list(names)
    return w


def views(buf: np.ndarray, extra: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``evtx_kernel.views`` by NumPy: Arrow string views of the spans (past ``len(buf)``: in ``extra``)."""
    n = starts.size
    out = np.zeros((n, 16), np.uint8)
    valid = starts >= 0
    la = buf.size
    ln = np.where(valid, ends - starts, 0)
    words = out.view("<i4")  # (n, 4): length, then inline bytes or prefix, buffer index, offset
    words[:, 0] = ln
    inx = starts >= la
    at = np.where(inx, starts - la, np.maximum(starts, 0))
    take = np.where(ln <= 12, ln, 4)
    j = np.arange(12)
    pos = at[:, None] + j[None, :]
    src = np.where(inx[:, None], np.concatenate([extra, np.zeros(12, np.uint8)])[np.minimum(pos, extra.size + 11)],
                   np.concatenate([buf, np.zeros(12, np.uint8)])[np.minimum(pos, la + 11)])
    out[:, 4:] = np.where(j[None, :] < take[:, None], src, 0)
    long = ln > 12
    words[long, 2] = inx[long]
    words[long, 3] = at[long]
    return out, valid


def utc_times(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
              extra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``evtx_kernel.utc_times`` of texts in ``extra`` (the kernel's own span check aside: every value here
    is there, and a TimeCreated that was escaped in the JSON holds a character the format has not)."""
    n = starts.size
    us = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    la = buf.size
    days = K._days_from_civil.py_func
    for r in range(n):
        a = int(starts[r])
        if a < 0:
            continue
        m = _UTC.fullmatch(bytes(extra[a - la: int(ends[r]) - la]).decode())
        if m is None:
            continue
        year, month, day, hh, mm, sec = (int(x) for x in m.groups()[:6])
        leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
        dim = 29 if month == 2 and leap else 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31
        if not (1 <= month <= 12 and 1 <= day <= dim and hh <= 23 and mm <= 59 and sec <= 59):
            continue
        frac = (m.group(7) or "")[:6].ljust(6, "0")
        us[r] = (days(year, month, day) * 86400 + hh * 3600 + mm * 60 + sec) * 1_000_000 + int(frac)
        ok[r] = True
    return us, ok


class Walked(K.Walked):
    """A plain walk's ``Walked``: names kept as text, string views and times by NumPy and Python."""

    name_list: list[str]

    def names(self, buf: np.ndarray) -> list[str]:
        return self.name_list

    def views(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return views(buf, self.extra, starts, ends)

    def utc_times(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return utc_times(buf, starts, ends, self.extra)
