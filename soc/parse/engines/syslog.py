"""Engine for syslog: RFC 3164, RFC 5424 and rsyslog ISO 8601 headers, messages matched to events.

A Numba kernel reads every header in one pass (optional ``<PRI>``; ``Mmm dd hh:mm:ss HOST TAG[PID]: MSG``
with or without the host, pid and colon; ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG``; rsyslog's ISO
8601 stamp in place of ``Mmm dd hh:mm:ss``) and converts the timestamp there too, year-less ones by the rule
of ``time.yearless``. rsyslog's ``message repeated N times: [ MSG]`` is unwrapped: MSG is the message and
N its ``repeat`` field.

Options (spec ``syslog:``): ``events``, a list of routes, each with ``family``, ``dataset``, ``columns``,
``constants`` and ``patterns``. A pattern is literal text around ``%{field}`` slots (Elastic's dissect:
``%{}`` or ``%{?name}`` skips), tried only on the lines of its ``programs`` (all lines if none are given),
with ``constants`` of its own (``event.action``, ``event.outcome``, ...) that are raw fields like the slots.
A second kernel tries the patterns in spec order; the first that matches the whole message wins. A slot
ends at the first occurrence of the literal after it (greedy-left), so order matters: put
``Failed %{m} for invalid user %{u} ...`` before ``Failed %{m} for %{u} ...``; a final slot takes the
rest. Matched lines go to their route's frame, the others to the spec's own family, dataset and columns.

Raw fields every route can read: ``priority``, ``time``, ``timestamp`` (converted, for ``type: datetime``),
``host``, ``program``, ``pid``, ``msgid``, ``structured_data``, ``message`` and ``repeat``; a route also
reads its patterns' slots and constants, which need no column rule when their family column is a string
or category (or not a family column at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
from numba import njit, prange

from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import Context, Rule, SpecError, rules_from_spec
from soc.parse.engines.base import Engine, raw_frame, typed_frame
from soc.parse.spec import ParserSpec
from soc.schema import FAMILIES, columns
from soc.schema import time as T

SP, TAB, LT, GT, LB, RB, COLON, QUOTE, BSLASH, DASH, PLUS, DOT, COMMA = (
    32, 9, 60, 62, 91, 93, 58, 34, 92, 45, 43, 46, 44)
DAY = 86_400_000_000

# rows of the header span arrays, and the raw fields they become
PRI, TIME, HOST, APP, PID, MSGID, SD, MSG, REPEAT = range(9)
HEADER = ("priority", "time", "host", "program", "pid", "msgid", "structured_data", "message", "repeat")
TIMESTAMP = "timestamp"

# kinds of timestamp: none, wall-clock time of the source's zone, UTC
T_NONE, T_WALL, T_UTC = 0, 1, 2

OK, E_EMPTY, E_PRI, E_TIME, E_DATE, E_NIL_TIME, E_HOST, E_5424, E_SD = range(9)
ERRORS = {
    E_EMPTY: "empty line",
    E_PRI: "malformed <PRI>",
    E_TIME: "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)",
    E_DATE: "timestamp out of range",
    E_NIL_TIME: "RFC 5424 timestamp is nil",
    E_HOST: "no host or tag after the timestamp",
    E_5424: "truncated RFC 5424 header",
    E_SD: "malformed RFC 5424 structured data",
}

_MONTHS = np.frombuffer(b"janfebmaraprmayjunjulaugsepoctnovdec", np.uint8)
_REPEATED = np.frombuffer(b"message repeated ", np.uint8)
_TIMES = np.frombuffer(b" times: [", np.uint8)


@njit(cache=True)
def _digit(c):
    return 48 <= c <= 57


@njit(cache=True)
def _num(buf, i, k, e):
    """Value of the ``k`` digits at ``i``, or -1 if they are not all there."""
    if i + k > e:
        return -1
    v = 0
    for j in range(i, i + k):
        if not _digit(buf[j]):
            return -1
        v = v * 10 + (buf[j] - 48)
    return v


@njit(cache=True)
def _same(buf, i, text, at, n):
    k = 0
    while k < n and buf[i + k] == text[at + k]:
        k += 1
    return k == n


@njit(cache=True)
def _find(buf, i, e, text, at, n):
    """First occurrence of ``text[at:at + n]`` in ``buf[i:e]``, or -1."""
    first = text[at]
    last = e - n
    while i <= last:
        if buf[i] == first and _same(buf, i, text, at, n):
            return i
        i += 1
    return -1


@njit(cache=True)
def _days(y, m, d):
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's ``days_from_civil``)."""
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


@njit(cache=True)
def _month_days(y, m):
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    if m == 4 or m == 6 or m == 9 or m == 11:
        return 30
    return 31


@njit(cache=True)
def _clock(buf, i, e):
    """``hh:mm:ss[.f]`` at ``i``: (end, microseconds of the day); end -1 if malformed, -2 if out of range."""
    hh = _num(buf, i, 2, e)
    mm = _num(buf, i + 3, 2, e)
    ss = _num(buf, i + 6, 2, e)
    if hh < 0 or mm < 0 or ss < 0 or buf[i + 2] != COLON or buf[i + 5] != COLON:
        return -1, 0
    if hh > 23 or mm > 59 or ss > 60:
        return -2, 0
    us = ((hh * 60 + mm) * 60 + ss) * 1_000_000
    j = i + 8
    if j < e and (buf[j] == DOT or buf[j] == COMMA):
        j += 1
        k = 0
        frac = 0
        while j < e and _digit(buf[j]):
            if k < 6:
                frac = frac * 10 + (buf[j] - 48)
                k += 1
            j += 1
        if k == 0:
            return -1, 0
        for _ in range(k, 6):
            frac *= 10
        us += frac
    return j, us


@njit(cache=True)
def _iso(buf, i, e):
    """``YYYY-MM-DDThh:mm:ss[.f][Z|+hh:mm|+hhmm]`` at ``i``: (end, microseconds, kind), end < 0 as ``_clock``.

    With an offset the time is UTC; without one it is wall-clock time of the source's zone.
    """
    if i + 19 > e:
        return -1, 0, T_NONE
    y = _num(buf, i, 4, e)
    mo = _num(buf, i + 5, 2, e)
    d = _num(buf, i + 8, 2, e)
    if y < 0 or mo < 0 or d < 0 or buf[i + 4] != DASH or buf[i + 7] != DASH or (buf[i + 10] | 32) != 116:
        return -1, 0, T_NONE
    j, us = _clock(buf, i + 11, e)
    if j < 0:
        return j, 0, T_NONE
    if mo < 1 or mo > 12 or d < 1 or d > _month_days(y, mo):
        return -2, 0, T_NONE
    t = _days(y, mo, d) * DAY + us
    if j < e and (buf[j] | 32) == 122:  # Z
        return j + 1, t, T_UTC
    if j < e and (buf[j] == PLUS or buf[j] == DASH):
        sign = 1 if buf[j] == PLUS else -1
        oh = _num(buf, j + 1, 2, e)
        k = j + 3
        om = 0
        if k < e and buf[k] == COLON:
            om = _num(buf, k + 1, 2, e)
            k += 3
        elif k < e and _digit(buf[k]):
            om = _num(buf, k, 2, e)
            k += 2
        if oh < 0 or om < 0:
            return -1, 0, T_NONE
        if oh > 23 or om > 59:
            return -2, 0, T_NONE
        return k, t - sign * (oh * 60 + om) * 60_000_000, T_UTC
    return j, t, T_WALL


@njit(cache=True)
def _month(buf, i):
    """1-12 for a three-letter English month name at ``i`` (any case), else 0."""
    a = buf[i] | 32
    b = buf[i + 1] | 32
    c = buf[i + 2] | 32
    for m in range(12):
        if _MONTHS[3 * m] == a and _MONTHS[3 * m + 1] == b and _MONTHS[3 * m + 2] == c:
            return m + 1
    return 0


@njit(cache=True)
def _bsd(buf, i, e, year, limit):
    """``Mmm dd hh:mm:ss[.f]`` at ``i`` (day space-padded or not): (end, wall-clock microseconds).

    The year is ``year`` unless that puts the stamp after ``limit``, or the date does not exist in it
    (Feb 29): then the latest earlier year where it exists, as ``time.yearless`` rules.
    """
    if i + 14 > e:
        return -1, 0
    mo = _month(buf, i)
    if mo == 0 or buf[i + 3] != SP:
        return -1, 0
    j = i + 4
    if buf[j] == SP:
        j += 1
    if not _digit(buf[j]):
        return -1, 0
    d = buf[j] - 48
    j += 1
    if j < e and _digit(buf[j]):
        d = d * 10 + (buf[j] - 48)
        j += 1
    if j >= e or buf[j] != SP:
        return -1, 0
    j, us = _clock(buf, j + 1, e)
    if j < 0:
        return j, 0
    for k in range(5):
        y = year - k
        if 1 <= d <= _month_days(y, mo):
            t = _days(y, mo, d) * DAY + us
            if k > 0 or t <= limit:
                return j, t
    return -2, 0


@njit(cache=True)
def _message(buf, i, e, r, fs, fe):
    """The message span, blanks trimmed; ``message repeated N times: [ MSG]`` becomes MSG and repeat N."""
    while i < e and (buf[i] == SP or buf[i] == TAB):
        i += 1
    if i >= e:
        return
    n = _REPEATED.size
    if e - i > n + 10 and _same(buf, i, _REPEATED, 0, n):
        j = i + n
        k = j
        while k < e and _digit(buf[k]):
            k += 1
        if k > j and k + _TIMES.size <= e and _same(buf, k, _TIMES, 0, _TIMES.size):
            fs[REPEAT, r] = j
            fe[REPEAT, r] = k
            i = k + _TIMES.size
            if buf[e - 1] == RB:
                e -= 1
            while i < e and buf[i] == SP:
                i += 1
            while e > i and buf[e - 1] == SP:
                e -= 1
            if i >= e:
                return
    fs[MSG, r] = i
    fe[MSG, r] = e


@njit(cache=True)
def _bsd_tail(buf, i, e, r, fs, fe):
    """``HOST TAG[PID]: MSG`` after the timestamp; the host, pid and colon may each be missing."""
    while i < e and buf[i] == SP:
        i += 1
    if i >= e:
        return E_HOST
    a = i
    bracket = False
    while i < e and buf[i] != SP:
        bracket = bracket or buf[i] == LB
        i += 1
    if not (buf[i - 1] == COLON or (buf[i - 1] == RB and bracket)):  # not a tag: the host
        fs[HOST, r] = a
        fe[HOST, r] = i
        while i < e and buf[i] == SP:
            i += 1
        if i >= e:
            return E_HOST
        a = i
    i = a
    while i < e and buf[i] != SP and buf[i] != LB and buf[i] != COLON:
        i += 1
    if i > a:
        fs[APP, r] = a
        fe[APP, r] = i
    if i < e and buf[i] == LB:
        j = i + 1
        while j < e and buf[j] != RB and buf[j] != SP:
            j += 1
        if j < e and buf[j] == RB:
            if j > i + 1:
                fs[PID, r] = i + 1
                fe[PID, r] = j
            i = j + 1
    if i < e and buf[i] == COLON:
        i += 1
    _message(buf, i, e, r, fs, fe)
    return OK


@njit(cache=True)
def _rfc5424(buf, i, e, r, fs, fe, ts, kind):
    """``TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`` after ``<PRI>VERSION``."""
    if i >= e:
        return E_5424
    if buf[i] == DASH and (i + 1 == e or buf[i + 1] == SP):
        return E_NIL_TIME
    j, t, k = _iso(buf, i, e)
    if j == -2:
        return E_DATE
    if j < 0 or (j < e and buf[j] != SP):
        return E_TIME
    fs[TIME, r] = i
    fe[TIME, r] = j
    ts[r] = t
    kind[r] = k
    i = j
    for f in range(HOST, MSGID + 1):
        if i >= e or buf[i] != SP:
            return E_5424
        i += 1
        a = i
        while i < e and buf[i] != SP:
            i += 1
        if i == a:
            return E_5424
        fs[f, r] = a
        fe[f, r] = i
    if i + 1 >= e:
        return E_5424
    i += 1
    a = i
    if buf[i] == DASH:
        i += 1
    elif buf[i] == LB:
        while i < e and buf[i] == LB:
            i += 1
            quoted = False
            while i < e:
                c = buf[i]
                if quoted:
                    if c == BSLASH:
                        i += 2
                        continue
                    if c == QUOTE:
                        quoted = False
                elif c == QUOTE:
                    quoted = True
                elif c == RB:
                    break
                i += 1
            if i >= e:
                return E_SD
            i += 1
        fs[SD, r] = a
        fe[SD, r] = i
    else:
        return E_SD
    if i < e:
        if buf[i] != SP:
            return E_SD
        i += 1
        if i + 3 <= e and buf[i] == 0xEF and buf[i + 1] == 0xBB and buf[i + 2] == 0xBF:
            i += 3  # the BOM that marks a UTF-8 MSG
        _message(buf, i, e, r, fs, fe)
    return OK


@njit(cache=True)
def _header(buf, s, e, r, fs, fe, ts, kind, year, limit):
    while e > s and (buf[e - 1] == SP or buf[e - 1] == TAB):
        e -= 1
    i = s
    if i >= e:
        return E_EMPTY
    if buf[i] == LT:
        j = i + 1
        while j < e and j - i <= 3 and _digit(buf[j]):
            j += 1
        if j == i + 1 or j >= e or buf[j] != GT or _num(buf, i + 1, j - i - 1, e) > 191:
            return E_PRI
        fs[PRI, r] = i + 1
        fe[PRI, r] = j
        i = j + 1
        if i >= e:
            return E_TIME
    if _digit(buf[i]):
        j = i
        while j < e and _digit(buf[j]):
            j += 1
        if j - i <= 2 and j < e and buf[j] == SP and buf[i] != 48:  # RFC 5424 VERSION
            return _rfc5424(buf, j + 1, e, r, fs, fe, ts, kind)
        if j - i != 4 or j >= e or buf[j] != DASH:
            return E_TIME
        j, t, k = _iso(buf, i, e)  # rsyslog's high-precision stamp, then as RFC 3164
    else:
        j, t = _bsd(buf, i, e, year, limit)
        k = T_WALL
    if j == -2:
        return E_DATE
    if j < 0 or (j < e and buf[j] != SP):
        return E_TIME
    fs[TIME, r] = i
    fe[TIME, r] = j
    ts[r] = t
    kind[r] = k
    return _bsd_tail(buf, j, e, r, fs, fe)


@njit(cache=True, parallel=True)
def parse_headers(buf, starts, ends, year, limit):
    """Header field spans (field-major, -1 absent), timestamps (microseconds, see ``kind``), error codes.

    ``year`` and ``limit`` (wall-clock microseconds) place year-less stamps (``time.yearless_reference``).
    """
    n = starts.size
    fs = np.full((len(HEADER), n), -1, np.int64)
    fe = np.full((len(HEADER), n), -1, np.int64)
    ts = np.zeros(n, np.int64)
    kind = np.zeros(n, np.int8)
    err = np.zeros(n, np.int8)
    for r in prange(n):
        code = _header(buf, starts[r], ends[r], r, fs, fe, ts, kind, year, limit)
        if code != OK:
            err[r] = code
            kind[r] = T_NONE
            fs[MSG, r] = -1
            fe[MSG, r] = -1
    return fs, fe, ts, kind, err


@njit(cache=True)
def _try(buf, a, b, p, lits, lit_at, pat_lit, slots, ss, se, r):
    """Whether pattern ``p`` matches all of ``buf[a:b]``; on a match its slot spans are set."""
    l0 = pat_lit[p]
    nf = pat_lit[p + 1] - l0 - 1
    f0 = l0 - p
    x = lit_at[l0]
    n = lit_at[l0 + 1] - x
    if n > b - a or not _same(buf, a, lits, x, n):
        return False
    pos = a + n
    ok = True
    for j in range(nf):
        x = lit_at[l0 + j + 1]
        n = lit_at[l0 + j + 2] - x
        start = pos
        if n == 0:  # a final slot: the rest of the message
            end = b
            pos = b
        else:
            end = _find(buf, pos, b, lits, x, n)
            if end < 0:
                ok = False
                break
            pos = end + n
        k = slots[f0 + j]
        if k >= 0:
            ss[k, r] = start
            se[k, r] = end
    if ok and pos == b:
        return True
    for j in range(nf):
        k = slots[f0 + j]
        if k >= 0:
            ss[k, r] = -1
            se[k, r] = -1
    return False


@njit(cache=True, parallel=True)
def match_messages(buf, ps, pe, ms, me, names, name_at, cands, cand_at, lits, lit_at, pat_lit, slots, n_slots):
    """Index of the first pattern matching each message (-1: none) and the slot spans it sets.

    Program ``k`` (``names[name_at[k]:name_at[k + 1]]``; the last is every other program) with a message
    starting with byte ``c`` tries ``cands[cand_at[256 * k + c]:cand_at[256 * k + c + 1]]``. Pattern ``p`` is
    literals ``pat_lit[p]`` to ``pat_lit[p + 1]`` (spans of ``lits`` by ``lit_at``) around the slots
    ``slots[pat_lit[p] - p:]`` (-1: skipped).
    """
    n = ms.size
    pat = np.full(n, -1, np.int32)
    ss = np.full((n_slots, n), -1, np.int64)
    se = np.full((n_slots, n), -1, np.int64)
    other = name_at.size - 1
    for r in prange(n):
        a = ms[r]
        if a < 0:
            continue
        prog = other
        p0 = ps[r]
        if p0 >= 0:
            ln = pe[r] - p0
            for k in range(other):
                if name_at[k + 1] - name_at[k] == ln and _same(buf, p0, names, name_at[k], ln):
                    prog = k
                    break
        q = 256 * prog + buf[a]
        for c in range(cand_at[q], cand_at[q + 1]):
            p = cands[c]
            if _try(buf, a, me[r], p, lits, lit_at, pat_lit, slots, ss, se, r):
                pat[r] = p
                break
    return pat, ss, se


FIELD = re.compile(r"%\{([^}]*)\}")


@dataclass(frozen=True)
class Pattern:
    """A message pattern: literals around slots (None: skipped), where it applies and what it sets."""

    text: str
    literals: tuple[bytes, ...]
    slots: tuple[str | None, ...]
    programs: tuple[str, ...]
    constants: tuple[tuple[str, str], ...]
    route: int

    @staticmethod
    def from_spec(spec: dict, route: int) -> Pattern:
        unknown = set(spec) - {"match", "programs", "constants"}
        if unknown or "match" not in spec:
            raise SpecError(f"pattern {spec!r}: needs 'match'; may have 'programs', 'constants'")
        text = str(spec["match"])
        parts = FIELD.split(text)
        literals = tuple(p.encode() for p in parts[0::2])
        if any(not lit for lit in literals[1:-1]):
            raise SpecError(f"pattern {text!r}: two slots with no literal between them")
        slots = tuple(None if not s or s.startswith("?") else s for s in parts[1::2])
        return Pattern(text, literals, slots, tuple(map(str, spec.get("programs") or ())),
                       tuple((str(k), str(v)) for k, v in (spec.get("constants") or {}).items()), route)


@dataclass(frozen=True)
class Route:
    """Where lines go: a family frame of a dataset, typed by its rules, with constant columns."""

    family: str
    dataset: str
    rules: tuple[Rule, ...]
    constants: dict
    sources: tuple[str, ...]

    @property
    def categorical(self) -> frozenset[str]:
        """Raw fields that only become category columns (pattern constants can stay categorical)."""
        kinds: dict[str, set[str]] = {}
        for c in (c for r in self.rules for c in r.chain):
            kinds.setdefault(c.source, set()).add(c.type)
        return frozenset(name for name, types in kinds.items() if types == {"category"})


class Matcher:
    """The patterns of all routes compiled into the flat arrays ``match_messages`` reads."""

    def __init__(self, patterns: list[Pattern]):
        self.patterns = patterns
        self.slot_names = list(dict.fromkeys(s for p in patterns for s in p.slots if s))
        self.const_names = list(dict.fromkeys(k for p in patterns for k, _ in p.constants))
        slot = {s: k for k, s in enumerate(self.slot_names)}
        programs = list(dict.fromkeys(g for p in patterns for g in p.programs))
        cands = [  # by program, then by the first byte of the message: what could match it
            [i for i, p in enumerate(patterns) if (not p.programs or g in p.programs) and _starts(p, c)]
            for g in [*programs, None] for c in range(256)
        ]
        lits = [lit for p in patterns for lit in p.literals]
        self.tables = (
            *_flat([g.encode() for g in programs]),
            np.array([i for c in cands for i in c], np.int32), _offsets([len(c) for c in cands]),
            *_flat(lits), _offsets([len(p.literals) for p in patterns]),
            np.array([slot[s] if s else -1 for p in patterns for s in p.slots], np.int32),
            len(self.slot_names),
        )
        self.route = np.array([p.route for p in patterns] + [-1], np.int64)
        self.uses = np.zeros((len(patterns), len(self.slot_names)), np.bool_)
        for i, p in enumerate(patterns):
            for s in p.slots:
                if s:
                    self.uses[i, slot[s]] = True
        self.consts = {
            name: pl.Series(name, [dict(p.constants).get(name) for p in patterns], pl.Categorical)
            for name in self.const_names
        }

    def match(self, batch: LineBatch, fs: np.ndarray, fe: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return match_messages(batch.buf, fs[APP], fe[APP], fs[MSG], fe[MSG], *self.tables)


def _flat(items: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    data = np.frombuffer(b"".join(items) or b"\0", np.uint8).copy()
    return data, _offsets([len(x) for x in items])


def _starts(p: Pattern, byte: int) -> bool:
    return not p.literals[0] or p.literals[0][0] == byte


def _offsets(sizes: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)


def load_routes(options: dict, nulls: tuple[str, ...] = ("-", "")) -> tuple[list[dict], list[Pattern]]:
    """The ``events`` routes of a spec (unchecked parts) and all their patterns, in spec order."""
    routes, patterns = [], []
    for i, ev in enumerate(options.get("events") or []):
        unknown = set(ev) - {"family", "dataset", "columns", "constants", "patterns"}
        if unknown:
            raise SpecError(f"syslog events: unknown keys {sorted(unknown)}")
        if ev.get("family") not in FAMILIES or not ev.get("dataset"):
            raise SpecError(f"syslog events: route {i} needs a known family and a dataset")
        routes.append({"family": ev["family"], "dataset": ev["dataset"], "constants": ev.get("constants") or {},
                       "rules": rules_from_spec(ev.get("columns") or {}, nulls)})
        patterns += [Pattern.from_spec(p, i) for p in ev.get("patterns") or []]
    return routes, patterns


def _implicit(family: str, names: list[str], rules: list[Rule]) -> list[Rule]:
    """Rules for slots and constants no rule reads or makes: string or category, as the family types it."""
    have = {r.target for r in rules} | {c.source for r in rules for c in r.chain}
    out = []
    for name in names:
        if name in have:
            continue
        dtype = columns(family).get(name, pl.String)
        if dtype not in (pl.String, pl.Categorical):
            raise SpecError(f"syslog events: {name} is {dtype} in {family}: give it a column rule with a type")
        out.append(Rule(name, name, "category" if dtype == pl.Categorical else "string"))
    return out


class SyslogEngine(Engine):
    """Syslog lines to the frames of their routes (matched patterns) or of the spec (the rest)."""

    def __init__(self, spec: ParserSpec, ctx: Context):
        super().__init__(spec, ctx)
        found, patterns = load_routes(spec.options)
        self.matcher = Matcher(patterns)
        known = {*HEADER, TIMESTAMP, *self.matcher.slot_names, *self.matcher.const_names}
        self.routes: list[Route] = []
        for i, rt in enumerate(found):
            mine = [p for p in patterns if p.route == i]
            names = [s for p in mine for s in p.slots if s] + [k for p in mine for k, _ in p.constants]
            names = list(dict.fromkeys(names))
            rules = tuple(rt["rules"] + _implicit(rt["family"], names, rt["rules"]))
            self.routes.append(Route(rt["family"], rt["dataset"], rules, rt["constants"], _sources(rules, known)))
        self.routes.append(Route(spec.family, self.dataset, tuple(spec.columns), spec.constants,
                                 _sources(spec.columns, {*HEADER, TIMESTAMP})))
        self.year, self.limit = T.yearless_reference(ctx.reference, ctx.zone)

    def parse(self, batch: LineBatch) -> ParseResult:
        fs, fe, ts, kind, err = parse_headers(batch.buf, batch.starts, batch.ends, self.year, self.limit)
        pat, ss, se = self.matcher.match(batch, fs, fe)
        utc, valid = self._times(ts, kind)
        fallback = len(self.routes) - 1
        categorical = [rt.categorical for rt in self.routes]
        route = np.where(pat >= 0, self.matcher.route[pat], fallback)
        route[err != 0] = -1
        hits = np.bincount(pat[pat >= 0], minlength=len(self.matcher.patterns)) > 0
        used = hits @ self.matcher.uses if self.matcher.uses.size else np.zeros(0, np.bool_)
        frames: dict[tuple[str, str], pl.DataFrame] = {}
        rejected: list[tuple[np.ndarray, pl.Series]] = []
        for g, rt in enumerate(self.routes):
            rows = np.flatnonzero(route == g)
            fields = {}
            for name in rt.sources:
                if name in HEADER:
                    k = HEADER.index(name)
                    starts = fs[k][rows]
                    if starts.size and starts.max() >= 0:  # else null (a file without <PRI>, repeats, ...)
                        fields[name] = batch.strings(name, starts, fe[k][rows])
                elif name == TIMESTAMP:
                    ok = valid[rows]
                    arr = pa.array(utc[rows], pa.timestamp("us", "UTC"), mask=None if ok.all() else ~ok)
                    fields[name] = pl.Series(name, arr)
                elif g != fallback:
                    slot = self._slot(batch, name, rows, pat, ss, se, used, name in categorical[g])
                    if slot is not None:  # else null (``apply`` fills fields a chunk lacks)
                        fields[name] = slot
            if not fields:  # nothing to read, but the frame still has a row per line
                fields["_"] = pl.Series(np.zeros(rows.size, np.int8))
            frame, why = typed_frame(batch, raw_frame(fields), rt.rules, self.ctx, rt.constants, rt.dataset,
                                     rt.family, rows=rows)
            bad = why.is_not_null()
            if bad.any():
                rejected.append((rows[bad.to_numpy()], why.filter(bad)))
                frame = frame.filter(~bad)
            key = (rt.family, rt.dataset)
            frames[key] = pl.concat([frames[key], frame], how="diagonal") if key in frames else frame
        return ParseResult(frames, self._dead(batch, err, rejected), batch.n)

    def _slot(self, batch: LineBatch, name: str, rows: np.ndarray, pat: np.ndarray, ss: np.ndarray,
              se: np.ndarray, used: np.ndarray, categorical: bool) -> pl.Series | None:
        """A slot's strings (built only if a matched pattern has it), else its patterns' constant.

        Constants are categorical; they stay so only for a category column, so a column's type never
        depends on which patterns matched in a chunk.
        """
        m = self.matcher
        strings = None
        if name in m.slot_names and used[m.slot_names.index(name)]:
            k = m.slot_names.index(name)
            strings = batch.strings(name, ss[k][rows], se[k][rows])
        if name not in m.consts:
            return strings
        const = m.consts[name].gather(pl.Series(pat[rows]))
        if strings is not None:
            return pl.select(pl.coalesce(strings, const.cast(pl.String))).to_series().alias(name)
        return const if categorical else const.cast(pl.String)

    def _times(self, ts: np.ndarray, kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """UTC microseconds of every line, and whether there is one (wall-clock times read in the zone)."""
        utc = ts.copy()
        valid = kind != T_NONE
        wall = np.flatnonzero(kind == T_WALL)
        if wall.size:
            utc[wall], valid[wall] = T.localize_micros(ts[wall], self.ctx.zone)
        return utc, valid

    @staticmethod
    def _dead(batch: LineBatch, err: np.ndarray, rejected: list[tuple[np.ndarray, pl.Series]]) -> pl.DataFrame:
        """Dead letters: lines whose header does not parse, and lines a route's rules reject."""
        if not rejected and not err.any():
            return empty_dead()
        labels: dict[int, str | None] = {OK: None, **ERRORS}
        reasons = pl.Series("reason", err.astype(np.int32)).replace_strict(labels, return_dtype=pl.String)
        for rows, why in rejected:
            reasons = reasons.scatter(rows, why)
        return batch.dead(reasons.is_not_null(), reasons)


def _sources(rules: tuple[Rule, ...] | list[Rule], known: set[str]) -> tuple[str, ...]:
    """The raw fields ``rules`` read; a field no header, slot or constant gives is a spec error."""
    names = list(dict.fromkeys(c.source for r in rules for c in r.chain))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SpecError(f"syslog: columns read unknown fields {unknown} (known: {sorted(known)})")
    return tuple(names)
