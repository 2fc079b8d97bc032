"""Engine for syslog: RFC 3164, RFC 5424 and rsyslog ISO 8601 headers, messages matched to events.

A Numba kernel reads every header in one pass (optional ``<PRI>``; ``Mmm dd hh:mm:ss HOST TAG[PID]: MSG``
with or without the host, pid and colon; ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG``; rsyslog's ISO
8601 stamp in place of ``Mmm dd hh:mm:ss``) and converts the timestamp there too, year-less ones by the rule
of ``time.yearless``. rsyslog's ``message repeated N times: [ MSG]`` is unwrapped: MSG is the message and
N its ``repeat`` field.

Options (spec ``syslog:``): ``events``, a list of routes, each with ``family``, ``dataset``, ``columns``,
``constants`` and ``patterns``; ``events_from``, packaged spec files whose own ``events`` follow (a mixed
``/var/log/messages`` gives its netfilter and its sshd events whether it sniffs as syslog or iptables).
A pattern is literal text around ``%{field}`` slots (Elastic's dissect:
``%{}`` or ``%{?name}`` skips), tried only on the lines of its ``programs`` (all lines if none are given),
with ``constants`` of its own (``event.action``, ``event.outcome``, ...) that are raw fields like the slots.
A second kernel tries the patterns in spec order; the first that matches the whole message wins. A slot
ends at the first occurrence of the literal after it (greedy-left), so order matters: put
``Failed %{m} for invalid user %{u} ...`` before ``Failed %{m} for %{u} ...``; a final slot takes the
rest. Matched lines go to their route's frame, the others to the spec's own family, dataset and columns.

Option ``header: false`` reads lines that have no syslog header (an application's own log file, e.g.
BIND's ``23-Nov-2026 09:15:13.123 queries: ...``): the whole line is the message, and the time comes
from a slot through a column rule (a line no pattern matches then has none: the spec's own columns
decide whether that is a reason to dead-letter it).

Option ``inner_tag: [prefix, ...]`` finds a device's own tag (Cisco's ``%ASA-6-302013:``) wherever a relay
put it and makes it the ``msgid`` field, the text after it the message (``syslog_tag``).

Raw fields every route can read: ``priority``, ``time``, ``timestamp`` (converted, for ``type: datetime``),
``host``, ``program``, ``pid``, ``msgid`` (with ``inner_tag``: ``msgid_code``, ``msgid_level``),
``structured_data``, ``message``, ``repeat`` and ``time_source`` (``syslog``, or ``input_time`` for a line
without a time of its own); a route also reads its patterns' slots and constants, which need no column
rule when their family column is a string or category (or not a family column at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl
import pyarrow as pa

from soc.parse import syslog_tag
from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import Context, Rule, SpecError, rules_from_spec
from soc.parse.dissect import Matcher, Pattern
from soc.parse.engines.base import Engine, raw_frame, typed_frame
from soc.parse.spec import ParserSpec
from soc.parse.syslog_header import (
    APP,
    E_EMPTY,
    ERRORS,
    HEADER,
    MSG,
    OK,
    T_NONE,
    T_WALL,
    TIME,
    TIMESTAMP,
    parse_headers,
)
from soc.schema import FAMILIES, columns
from soc.schema import time as T

TIME_SOURCE = "time_source"  # a raw field: "syslog" (the line's own time) or "input_time" (the input's)


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


def load_routes(options: dict, nulls: tuple[str, ...] = ("-", "")) -> tuple[list[dict], list[Pattern]]:
    """The ``events`` routes of a spec (unchecked parts), then those of the specs ``events_from`` names,
    and all their patterns, in that order."""
    routes, patterns = [], []
    names = options.get("events_from") or []
    borrowed = [ev for name in ([names] if isinstance(names, str) else names) for ev in _events_of(str(name))]
    for i, ev in enumerate([*(options.get("events") or []), *borrowed]):
        unknown = set(ev) - {"family", "dataset", "columns", "constants", "patterns"}
        if unknown:
            raise SpecError(f"syslog events: unknown keys {sorted(unknown)}")
        if ev.get("family") not in FAMILIES or not ev.get("dataset"):
            raise SpecError(f"syslog events: route {i} needs a known family and a dataset")
        routes.append({"family": ev["family"], "dataset": ev["dataset"], "constants": ev.get("constants") or {},
                       "rules": rules_from_spec(ev.get("columns") or {}, nulls)})
        patterns += [Pattern.from_spec(p, i) for p in ev.get("patterns") or []]
    return routes, patterns


@lru_cache(maxsize=16)
def _events_of(name: str) -> tuple[dict, ...]:
    """Another packaged spec's own ``syslog.events`` (not those it borrows: two specs may borrow each
    other's), so one file reads the same whichever of them the sniffer picked."""
    from soc.content import content_dir
    from soc.parse.spec import load_spec

    return tuple(load_spec(content_dir("parsers") / name).options.get("events") or ())


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
        known = {*HEADER, TIMESTAMP, TIME_SOURCE, *self.matcher.slot_names, *self.matcher.const_names}
        self.routes: list[Route] = []
        for i, rt in enumerate(found):
            mine = [p for p in patterns if p.route == i]
            names = [s for p in mine for s in p.slots if s] + [k for p in mine for k, _ in p.constants]
            names = list(dict.fromkeys(names))
            rules = tuple(rt["rules"] + _implicit(rt["family"], names, rt["rules"]))
            self.routes.append(Route(rt["family"], rt["dataset"], rules, rt["constants"], _sources(rules, known)))
        self.routes.append(Route(spec.family, self.dataset, tuple(spec.columns), spec.constants,
                                 _sources(spec.columns, {*HEADER, TIMESTAMP, TIME_SOURCE})))
        self.year, self.limit = T.yearless_reference(ctx.reference, ctx.zone)
        self.header = bool(spec.options.get("header", True))
        # the empty frame of each route (its schema is the route's, not the chunk's): typing one cost ~4 ms
        # a route and chunk, most of an iptables chunk's time with the borrowed authentication routes
        self._empty: dict[int, pl.DataFrame] = {}
        tags = spec.options.get("inner_tag")  # a device's own tag wherever a relay put it (syslog_tag)
        self.tags = syslog_tag.prefixes(tags) if tags else None

    def parse(self, batch: LineBatch) -> ParseResult:
        if self.header:
            fs, fe, ts, kind, err = parse_headers(batch.buf, batch.starts, batch.ends, self.year, self.limit)
            if self.tags is not None:
                syslog_tag.retag(batch.buf, batch.starts, batch.ends, fs, fe, ts, kind, err, *self.tags,
                                 self.year, self.limit, syslog_tag.micros(self.ctx.reference))
        else:
            fs, fe, ts, kind, err = _whole_lines(batch)
        pat, ss, se = self.matcher.match(batch.buf, (fs[APP], fe[APP]), (fs[MSG], fe[MSG]))
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
            if not rows.size and g in self._empty:  # a route no line of the chunk took: its frame, typed once
                key = (rt.family, rt.dataset)
                frames[key] = pl.concat([frames[key], self._empty[g]], how="diagonal") if key in frames \
                    else self._empty[g]
                continue
            # header fields present on some line of the route (else null: a file without <PRI>, repeats, ...)
            header = [n for n in rt.sources if n in HEADER and rows.size
                      and fs[HEADER.index(n)][rows].max() >= 0]
            fields = batch.columns(header, fs, fe, np.array([HEADER.index(n) for n in header], np.int64), rows)
            for name in rt.sources:
                if name in HEADER:
                    continue
                if name == TIMESTAMP:
                    ok = valid[rows]
                    arr = pa.array(utc[rows], pa.timestamp("us", "UTC"), mask=None if ok.all() else ~ok)
                    fields[name] = pl.Series(name, arr)
                elif name == TIME_SOURCE:
                    fields[name] = _time_source(fs[TIME][rows] >= 0)
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
            if not rows.size:
                self._empty[g] = frame
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


def _time_source(own: np.ndarray) -> pl.Series:
    """``syslog`` where a line has a time of its own, else ``input_time`` (``syslog_tag`` gave it the
    input's): the ``time_source`` field, for ``soc.timestamp_source`` (no regex over the time text)."""
    own = pl.Series(own)
    return pl.select(pl.when(own).then(pl.lit("syslog")).otherwise(pl.lit("input_time"))
                     .cast(pl.Categorical).alias(TIME_SOURCE)).to_series()


def _whole_lines(batch: LineBatch) -> tuple[np.ndarray, ...]:
    """``parse_headers``' arrays for lines without a header: all of a non-blank line is the message."""
    n = batch.n
    fs = np.full((len(HEADER), n), -1, np.int64)
    fe = np.full((len(HEADER), n), -1, np.int64)
    blank = batch.ends <= batch.starts
    fs[MSG] = np.where(blank, -1, batch.starts)
    fe[MSG] = np.where(blank, -1, batch.ends)
    return fs, fe, np.zeros(n, np.int64), np.full(n, T_NONE, np.int8), np.where(blank, E_EMPTY, OK).astype(np.int8)


def _sources(rules: tuple[Rule, ...] | list[Rule], known: set[str]) -> tuple[str, ...]:
    """The raw fields ``rules`` read; a field no header, slot or constant gives is a spec error."""
    names = list(dict.fromkeys(c.source for r in rules for c in r.chain))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SpecError(f"syslog: columns read unknown fields {unknown} (known: {sorted(known)})")
    return tuple(names)
