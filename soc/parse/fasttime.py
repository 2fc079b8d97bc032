"""Fixed-layout timestamps parsed by a Numba kernel, ~15x faster than ``str.strptime``.

Timestamps are the costliest column of most logs. Layouts built only of ``%Y %m %d %e %b %H %M %S %z %.f``
and literal characters (the common log formats' layouts) are parsed here straight from the Arrow
string-view buffers; anything else falls back to Polars ``strptime`` (``schema.time.parse``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.jit import njit, prange
from soc.schema import time as T

Y, MO, D, E, B, H, MI, S, Z, F = range(1, 11)
EPOCH = 11  # a layout of this op alone: Unix seconds with up to 6 decimals (``epoch_layout``)
DECIMAL = 12  # a layout of this op alone: a float64 field's number (``json_kernel._decimal``), not a time
LIT = 100
MAX_EXACT_EPOCH = 4_000_000_000  # below, the microseconds of d.dddddd are those of the float64 rule's
_CODES = {"Y": Y, "m": MO, "d": D, "e": E, "b": B, "H": H, "M": MI, "S": S, "z": Z, ":z": Z}
_MONTHS = np.array([ord(c) for c in "janfebmaraprmayjunjulaugsepoctnovdec"], np.uint8)
_DAYS_BEFORE = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], np.int64)


def compile_layout(fmt: str) -> np.ndarray | None:
    """The kernel's program for ``fmt``, or None if ``fmt`` uses a directive the kernel does not know."""
    ops: list[int] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            if ord(c) > 127:
                return None
            ops.append(LIT + ord(c))
            i += 1
            continue
        if fmt.startswith("%.f", i):
            ops.append(F)
            i += 3
            continue
        if fmt.startswith("%:z", i):
            ops.append(Z)
            i += 3
            continue
        code = _CODES.get(fmt[i + 1: i + 2])
        if code is None:
            return None
        ops.append(code)
        i += 2
    return np.array(ops, np.int32)


@njit(cache=True)
def _digits(buf, i, n):
    v = 0
    for k in range(n):
        c = buf[i + k]
        if c < 48 or c > 57:
            return -1
        v = v * 10 + (c - 48)
    return v


@njit(cache=True)
def _days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def epoch_layout() -> np.ndarray:
    """The layout of decimal Unix seconds (Zeek's ``ts``), the ``epoch_float`` rule's input."""
    return np.array([EPOCH], np.int32)


@njit(cache=True)
def _epoch(buf, a, b):
    """Microseconds of decimal Unix seconds ``ddd[.dddddd]`` in ``buf[a:b]``, read as integers; (value,
    ok, True). Not ok (the rule's float64 way then reads them) past ``MAX_EXACT_EPOCH`` seconds, or with
    a sign, an exponent, more than 6 decimals: there the float64 product, rounded, can differ by a
    microsecond (below, its error stays under 0.25 us, so rounding gives these exact values)."""
    i = a
    v = 0
    while i < b and 48 <= buf[i] <= 57 and i - a < 10:
        v = v * 10 + (buf[i] - 48)
        i += 1
    if i == a or v >= MAX_EXACT_EPOCH:
        return 0, False, True
    us = v * 1_000_000
    if i < b and buf[i] == 46:
        i += 1
        scale = 100_000
        start = i
        while i < b and 48 <= buf[i] <= 57 and scale > 0:
            us += (buf[i] - 48) * scale
            scale //= 10
            i += 1
        if i == start:
            return 0, False, True
    return us, i == b, True


@njit(cache=True)
def _parse_one(buf, a, b, ops, months):
    """Microseconds since the epoch of ``buf[a:b]`` per ``ops``; (value, ok, has_zone)."""
    if ops.size == 1 and ops[0] == EPOCH:
        return _epoch(buf, a, b)
    i = a
    year = 1970
    month = 1
    day = 1
    hh = 0
    mm = 0
    ss = 0
    us = 0
    off = 0
    zone = False
    for op in ops:
        if op >= LIT:
            if i >= b or buf[i] != op - LIT:
                return 0, False, False
            i += 1
        elif op == Y:
            if i + 4 > b:
                return 0, False, False
            year = _digits(buf, i, 4)
            i += 4
        elif op == MO or op == D or op == H or op == MI or op == S:
            if i + 2 > b:
                return 0, False, False
            v = _digits(buf, i, 2)
            i += 2
            if op == MO:
                month = v
            elif op == D:
                day = v
            elif op == H:
                hh = v
            elif op == MI:
                mm = v
            else:
                ss = v
            if v < 0:
                return 0, False, False
        elif op == E:  # day, space-padded or one digit
            if i < b and buf[i] == 32:
                i += 1
            if i < b and 48 <= buf[i] <= 57:
                day = buf[i] - 48
                i += 1
                if i < b and 48 <= buf[i] <= 57:
                    day = day * 10 + buf[i] - 48
                    i += 1
            else:
                return 0, False, False
        elif op == B:
            if i + 3 > b:
                return 0, False, False
            month = 0
            for k in range(12):
                if ((buf[i] | 32) == months[3 * k] and (buf[i + 1] | 32) == months[3 * k + 1]
                        and (buf[i + 2] | 32) == months[3 * k + 2]):
                    month = k + 1
                    break
            if month == 0:
                return 0, False, False
            i += 3
        elif op == F:  # optional '.ddd' (1-9 digits)
            if i < b and buf[i] == 46:
                i += 1
                k = 0
                scale = 100000
                while i < b and 48 <= buf[i] <= 57:
                    if k < 6:
                        us += (buf[i] - 48) * scale
                        scale //= 10
                    k += 1
                    i += 1
                if k == 0:
                    return 0, False, False
        elif op == Z:
            if i < b and buf[i] == 90:  # Z
                i += 1
                zone = True
                continue
            if i + 5 > b or (buf[i] != 43 and buf[i] != 45):
                return 0, False, False
            sign = 1 if buf[i] == 43 else -1
            oh = _digits(buf, i + 1, 2)
            j = i + 3
            if buf[j] == 58:
                j += 1
            if j + 2 > b:
                return 0, False, False
            om = _digits(buf, j, 2)
            if oh < 0 or om < 0 or oh > 23 or om > 59:
                return 0, False, False
            off = sign * (oh * 3600 + om * 60)
            i = j + 2
            zone = True
    if i != b or year < 0 or month < 1 or month > 12 or day < 1 or hh > 23 or mm > 59 or ss > 60:
        return 0, False, False
    leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
    dim = 31
    if month == 2:
        dim = 29 if leap else 28
    elif month == 4 or month == 6 or month == 9 or month == 11:
        dim = 30
    if day > dim:
        return 0, False, False
    secs = _days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss - off
    return secs * 1_000_000 + us, True, zone


@njit(cache=True, nogil=True, parallel=True)
def _parse_views(views, data, valid, ops, months):
    n = views.shape[0]
    out = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    inline = np.empty((n, 12), np.uint8)
    for r in prange(n):
        if not valid[r]:
            continue
        ln = views[r, 0] | (views[r, 1] << 8) | (views[r, 2] << 16) | (np.int64(views[r, 3]) << 24)
        if ln <= 12:
            for k in range(12):
                inline[r, k] = views[r, 4 + k]
            v, good, _ = _parse_one(inline[r], 0, ln, ops, months)
        else:
            start = (views[r, 12] | (views[r, 13] << 8) | (views[r, 14] << 16) | (np.int64(views[r, 15]) << 24))
            v, good, _ = _parse_one(data, start, start + ln, ops, months)
        out[r] = v
        ok[r] = good
    return out, ok


def _views_of(text: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The string views of ``text``, their data buffer and validity; None if it is not one such array."""
    arr = text.to_arrow(compat_level=pl.CompatLevel.newest())
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    bufs = arr.buffers()
    if str(arr.type) != "string_view" or len(bufs) > 3 or arr.offset:
        return None
    n = len(arr)
    views = np.frombuffer(bufs[1], np.uint8, count=n * 16).reshape(n, 16) if n else np.zeros((0, 16), np.uint8)
    data = np.frombuffer(bufs[2], np.uint8) if len(bufs) == 3 and bufs[2] is not None else np.zeros(1, np.uint8)
    return views, data, arr.is_valid().to_numpy(zero_copy_only=False)


def parse_series(text: pl.Series, fmt: str) -> pl.Series | None:
    """Microseconds (UTC if ``fmt`` has ``%z``, else naive wall-clock) of ``text``; None if not handled here."""
    ops = compile_layout(fmt)
    got = _views_of(text) if ops is not None else None
    if got is None:
        return None
    out, ok = _parse_views(*got, ops, _MONTHS)
    result = pl.Series(text.name, out)
    return result if ok.all() else result.scatter(np.flatnonzero(~ok), None)


def parse_epochs(text: pl.Series) -> pl.Series | None:
    """``Datetime(us, UTC)`` of decimal Unix seconds (``_epoch``: the ``epoch_float`` rule's values, exactly)
    if every value of ``text`` parses so; else None, and the rule reads them its own way."""
    got = _views_of(text)
    if got is None:
        return None
    out, ok = _parse_views(*got, epoch_layout(), _MONTHS)
    valid = got[2]
    if not (ok | ~valid).all():
        return None
    result = pl.Series(text.name, out)
    return (result if valid.all() else result.scatter(np.flatnonzero(~valid), None)).cast(T.UTC)


def parse_formats(text: pl.Series, formats: list[str], zone: str) -> pl.Series | None:
    """``Datetime(us, UTC)`` of the first format that parses each value, or None if a format is not handled.
    A format is not tried when the ones before it parsed every value (the common case: ~half the time)."""
    if any(compile_layout(fmt) is None for fmt in formats):
        return None
    tries = []
    for fmt in formats:
        us = parse_series(text, fmt)
        if us is None:
            return None
        if "z" in fmt:
            tries.append(us.cast(T.UTC))
        else:
            tries.append(T.localize_series(us.cast(pl.Datetime("us")), zone))
        if len(tries) == 1 and tries[0].null_count() == text.null_count():
            break
    return tries[0] if len(tries) == 1 else pl.select(pl.coalesce(tries)).to_series().alias(text.name)
