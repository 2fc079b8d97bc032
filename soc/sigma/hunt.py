"""Running loaded rules over frames as the pipeline streams them; only the matches are kept.

Each frame key ``(family, dataset)`` gets the rules whose targets cover it (logsource and event-id
routing), once. For a frame schema, every rule becomes a program over its leaf tests, each a Polars
expression (``soc.sigma.backend.Builder.program``): the leaves of the rules of one ``select`` run once each
(rules share many), and each rule's program combines them with NumPy. The
literal prefilter (``soc.sigma.prefilter``) gives each rule its candidate rows: a rule with few is evaluated on
those rows only, one with none is skipped, the others run together in one ``select`` over the frame plus the
lower-cased copies of the columns they read (made once, shared). A rule's result never depends on the other
rules loaded, nor on the prefilter.
A match becomes an alert row: rule metadata (``rule.author`` is kept, as the rules' licence, DRL 1.1,
requires), ATT&CK ids, the record's way back (``event.dataset``, ``log.file.path``, ``log.line``,
``log.offset``) and the entity columns the frame has.
A hunter given ``out`` keeps no match: every ``hold_rows`` rows it hands them over (``soc hunt`` writes them
to a Parquet file), so its memory does not grow with the matches; it keeps only the matches of the rules a
correlation references (the correlations need them at the end).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from soc.pipeline import FeedSink, Sink, own_values
from soc.sigma.backend import LOWER, Builder, Lowered, Program, affix_tests, run, text_columns
from soc.sigma.loader import LEVELS, RISK, Rule, RuleSet
from soc.sigma.mapping import Target
from soc.sigma.prefilter import NEEDS, Distinct, Literals, candidates, needs, used_groups

ENTITY = ["host.hostname", "user.name", "user.domain", "source.ip", "source.port", "destination.ip",
          "destination.port", "process.executable", "process.command_line", "process.parent.executable",
          "file.path", "registry.path", "url.original", "dns.question.name", "winlog.event_id",
          "winlog.record_id"]
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "@timestamp": pl.Datetime("us", "UTC"),
    "event.kind": pl.String,
    "rule.id": pl.String,
    "rule.name": pl.String,
    "rule.author": pl.String,
    "rule.level": pl.String,
    "event.severity": pl.Int16,
    "event.risk_score": pl.Int16,
    "threat.technique.id": pl.List(pl.String),
    "threat.tactic.name": pl.List(pl.String),
    "tags": pl.List(pl.String),
    "event.dataset": pl.String,
    "log.file.path": pl.String,
    "log.line": pl.Int64,
    "log.offset": pl.Int64,
    **{name: pl.String for name in ENTITY if name not in ("winlog.event_id", "winlog.record_id")},
    "winlog.event_id": pl.Int64,
    "winlog.record_id": pl.Int64,
}


BATCH_SHARE = 0.5  # a rule with more candidate rows than this share of the frame runs in the one batch select
BATCH_ROWS = 50_000  # frames smaller than this wait for more of their key and schema (``Hunter.feed``)
SELECT_COST = 2000  # the fixed cost of one ``select`` in rule-rows (about 1 us each: ~2 ms), for ``buckets``
HOLD_ROWS = 20_000  # matches held before they are handed to ``Hunter.out`` (one row group of the matches file)
# (held as found, ~1-2 KB of RSS a row: 100 k held took ~+100-150 MB at the peak of 400 k NXLog lines with
# all SigmaHQ rules, 848 -> 762 MB with 5,000)
ALONE_ROWS = 2000  # frames of this many rows are evaluated alone (their rules' costs are per row by then)
KEY_ROWS = 20_000  # waiting frames of one key with this many rows in all are evaluated stacked, alone
UNION_CELLS = 1_000_000  # rows x columns of a frame that waiting frames of several keys make at most (``together``)
# (a column a frame lacks is nulls in the frame they make together: memory follows rows x all their columns;
# the corpus's 8,152 small-frame rows x 547 columns, 10 % of them filled, took +112 MB at once, and the
# search and selects over them more: peak RSS of the all-rules corpus hunt 575 -> ~480 MB at 1 M, same CPU)


@dataclass
class RuleFailure:
    """A rule whose expression failed on a frame at run time (reported; the other rules go on)."""

    rule_id: str
    key: tuple[str, str]
    reason: str


@dataclass
class _Compiled:
    program: Program  # over its leaves (``Builder.program``)
    leaves: list[tuple[tuple, Callable]]  # (key, a function giving (test, its derived columns)): equal keys, equal
    # tests, built only where run (``Builder.lazy``)
    contains: dict[int, tuple]  # leaf number -> (column, texts) of its case-insensitive contains (``Builder``)
    affixes: dict[int, tuple]  # leaf number -> (column, kind, texts) of its case-insensitive exact/prefix/suffix
    columns: list[str]  # the frame columns it reads


@dataclass
class _Part:
    """The rows ``start:stop`` of the frame being evaluated that came with one key (and schema)."""

    key: tuple[str, str]
    schema: pl.Schema
    start: int
    stop: int


@dataclass
class _Unit:
    """A rule on the parts of a frame where its fields resolve to the same columns: one expression, one
    literal condition, one set of candidate rows."""

    rule: int  # its number in the rule set
    fields: tuple  # per field the rule reads (``_Rule.fields``), its (column, dtype) or None
    kept: tuple  # the (alert column, frame column) pairs of the ``keep`` fields
    words: tuple  # with keywords: the (column, dtype) of its part's text columns they search (else empty)
    parts: list[int]
    rows: np.ndarray | None = None  # its candidate rows, sorted (None: every row of the frame)


@dataclass
class _Rule:
    """What a rule needs, worked out once: the Sigma fields it reads, whether it has keywords, its literal
    condition (``soc.sigma.prefilter.necessary``)."""

    fields: tuple[str, ...]
    keywords: bool
    cond: list | None


@dataclass
class Hunter:
    """Evaluates a rule set over frames; ``matches()`` is every alert row so far (or, with ``out``, each
    batch of at least ``hold_rows`` of them goes to ``out`` as found, in one schema, and ``finish()`` hands
    over the rest).

    Small frames of one family wait (``feed``) and are evaluated together, whatever their keys: one frame,
    each rule restricted to the rows of the keys it routes to. With ``prefilter`` (the default) the literals
    the rules require are searched first, and a rule's expression is built and run only on the rows holding
    them (``soc.sigma.prefilter``); rules that require none run on every row of their keys. A rule whose
    rows are a large share of the frame runs with the others like it in one ``select`` over the whole frame.
    The alerts are the same either way.
    """

    ruleset: RuleSet
    prefilter: bool = True
    failures: list[RuleFailure] = field(default_factory=list)
    events: int = 0
    keep: set[str] = field(default_factory=set)  # Sigma fields the alert rows carry too (for correlations)
    _routes: dict = field(default_factory=dict)
    _routes_full: dict = field(default_factory=dict)  # key -> ``_routed_rules``
    _found: list = field(default_factory=list)
    batch_rows: int = BATCH_ROWS
    _waiting: dict = field(default_factory=dict)  # family -> [(key, frame)] not evaluated yet
    _family_rows: dict = field(default_factory=dict)  # family -> rows waiting
    _key_rows: dict = field(default_factory=dict)  # key -> rows waiting
    _waiting_rows: int = 0
    _by_target: dict | None = None
    _globs: list = field(default_factory=list)  # the (family, dataset) of ``_by_target`` with wildcards
    out: Callable[[pl.DataFrame], None] | None = None
    hold_rows: int = HOLD_ROWS
    matched: int = 0  # match rows so far
    _held: int = 0  # match rows of ``_found``
    _correlated: list = field(default_factory=list)  # with ``out``: the matches the correlations need
    _rules: dict = field(default_factory=dict)  # rule number -> _Rule
    _exprs: dict = field(default_factory=dict)  # (rule number, fields' columns, keyword columns) -> _Compiled
    _bound: dict = field(default_factory=dict)  # (rule number, fields' columns) -> bound literal condition
    _leaf_memo: dict = field(default_factory=dict)  # leaf key -> (test, derived columns) (``Builder.memo``)
    _literals: Literals = field(default_factory=Literals)
    _meta: list = field(default_factory=list)  # [the alert metadata of the rules matched so far, a row each]
    _meta_row: dict = field(default_factory=dict)  # rule number -> its row in ``_meta`` (``_alerts``)

    def routes(self, key: tuple[str, str]) -> list[tuple[Rule, Target]]:
        """The rules that run on frames with this key (and the target that routes each: a rule's first that
        covers the key)."""
        rules = self.ruleset.rules
        return [(rules[i], target) for i, target in self._routed(key)]

    def _routed(self, key: tuple[str, str]) -> list[tuple[int, Target]]:
        got = self._routes.get(key)
        if got is None:
            if self._by_target is None:  # (family, dataset glob) -> [(rule number, target number)], made once
                self._by_target = {}
                for i, rule in enumerate(self.ruleset.rules):
                    for j, t in enumerate(rule.targets):
                        self._by_target.setdefault((t.family, t.dataset), []).append((i, j))
                self._globs = [(f, d) for f, d in self._by_target if any(c in d for c in "*?[")]
            first: dict[int, int] = {}
            covering = [(f, d) for f, d in self._globs if Target(f, d).covers(key)]
            for how in ([key] if key in self._by_target else []) + covering:  # a plain dataset names one key
                for i, j in self._by_target[how]:
                    if j < first.get(i, j + 1):
                        first[i] = j
            rules = self.ruleset.rules
            got = self._routes[key] = [(i, rules[i].targets[first[i]]) for i in sorted(first)]
        return got

    def _routed_rules(self, key: tuple[str, str]) -> list[tuple[int, Target, tuple, _Rule]]:
        """``_routed`` with, per rule, how its target resolves fields and what the rule needs."""
        got = self._routes_full.get(key)
        if got is None:
            got = self._routes_full[key] = [(i, t, (id(t.fields), t.family), self._rule(i))
                                            for i, t in self._routed(key)]
            _kept_for_good()
        return got

    def _rule(self, i: int) -> _Rule:
        got = self._rules.get(i)
        if got is None:
            rule = self.ruleset.rules[i]
            kept = rule.needs()  # from the load cache, without decoding the tree
            _, fields, keywords, cond = kept if kept is not None and kept[0] == NEEDS else needs(rule.tree)
            got = self._rules[i] = _Rule(tuple(fields), keywords, cond if self.prefilter else None)
        return got

    def _units(self, parts: list[_Part]) -> list[_Unit]:
        """The rules routed to the parts' keys, one unit per rule and resolution of its fields."""
        units: dict[tuple, _Unit] = {}
        for p, part in enumerate(parts):
            schema = part.schema
            resolved: dict[tuple, dict] = {}  # (target's fields, family) -> field -> (column, dtype) | None
            kept: dict[tuple, tuple] = {}
            words = None
            for i, target, how, rule in self._routed_rules(part.key):
                columns = resolved.get(how)
                if columns is None:
                    columns = resolved[how] = {}
                    kept[how] = tuple(sorted(self._kept(target, schema).items())) if self.keep else ()
                try:
                    sig = tuple([columns[name] for name in rule.fields])
                except KeyError:
                    for name in rule.fields:
                        if name not in columns:
                            column = target.resolve(name, schema)
                            columns[name] = None if column is None else (column, schema[column])
                    sig = tuple([columns[name] for name in rule.fields])
                if rule.keywords and words is None:
                    words = tuple((c, schema[c]) for c in text_columns(schema))
                unit_key = (i, sig, kept[how], words if rule.keywords else ())
                unit = units.get(unit_key)
                if unit is None:
                    units[unit_key] = _Unit(i, *unit_key[1:], [p])
                else:
                    unit.parts.append(p)
        return list(units.values())

    def _cond(self, unit: _Unit):
        """The unit's literal condition bound to its columns (``Literals.bind``), made once."""
        memo = (unit.rule, unit.fields)
        got = self._bound.get(memo, False)
        if got is False:
            rule = self._rule(unit.rule)
            columns = dict(zip(rule.fields, unit.fields, strict=True))
            got = self._bound[memo] = self._literals.bind(rule.cond, columns.get)
            if len(self._bound) > 100_000:  # schemas of a long run: keep the cache bounded
                self._bound.pop(next(iter(self._bound)))
            _kept_for_good()
        return got

    def _compiled(self, unit: _Unit, schema: pl.Schema) -> _Compiled:
        """The unit's expression, built once per rule and (column, dtype) of its fields (and, with keywords,
        of its part's text columns)."""
        rule = self._rule(unit.rule)
        memo = (unit.rule, unit.fields, unit.words)
        got = self._exprs.get(memo)
        if got is None:
            columns = {name: c[0] for name, c in zip(rule.fields, unit.fields, strict=True) if c is not None}
            words = [c for c, _ in unit.words] if rule.keywords else None
            builder = Builder(schema, columns.get, Lowered(), words)
            builder.memo = self._leaf_memo
            builder.lazy = True
            program, leaves = builder.program(self.ruleset.rules[unit.rule].tree)
            read = sorted(c for c in builder.read if c in schema)  # (a derived column's is among them)
            got = self._exprs[memo] = _Compiled(program, leaves, builder.contains, builder.affixes, read)
            if len(self._exprs) > 100_000:
                self._exprs.pop(next(iter(self._exprs)))
            if len(self._leaf_memo) > 100_000:
                self._leaf_memo.clear()
            _kept_for_good()
        return got

    def evaluate(self, key: tuple[str, str], frame: pl.DataFrame) -> pl.DataFrame:
        """The alert rows of one frame."""
        return self._evaluate(frame, [_Part(key, frame.schema, 0, frame.height)])

    def _evaluate(self, frame: pl.DataFrame, parts: list[_Part]) -> pl.DataFrame:
        """The alert rows of a frame made of ``parts`` (each rule runs on the rows of the parts it routes to)."""
        self.events += frame.height
        if not frame.height:
            return empty_alerts()
        units = self._units(parts)
        if not units:
            return empty_alerts()
        searched = None
        groups: dict[int, np.ndarray] = {}
        conds = [self._cond(u) for u in units] if self.prefilter else [None] * len(units)
        active: set[int] = set()
        for c in conds:
            used_groups(c, active)
        if active:  # keywords: searched for in frames made of small ones (in a large one, running the keyword
            # rules costs less than lower-casing and searching all of its text)
            keywords = len(parts) > 1 or frame.height < ALONE_ROWS
            searched, groups = self._literals.search(frame, sorted(active), keywords)
        for unit, cond in zip(units, conds, strict=True):
            unit.rows = _within(candidates(cond, groups), [parts[p] for p in unit.parts], frame.height)
        live = [u for u in units if u.rows is None or len(u.rows)]
        if not live:
            return empty_alerts()
        schema = frame.schema
        compiled = {id(u): self._compiled(u, schema) for u in live}
        limit = BATCH_SHARE * frame.height
        batch = [u for u in live if u.rows is None or len(u.rows) > limit]
        few = [u for u in live if u.rows is not None and len(u.rows) <= limit]
        found = self._select(frame, parts, batch, compiled, None, searched, groups)
        for group, rows in buckets(few, [u.rows for u in few]):  # rules with few candidates: on the union of theirs
            found += self._select(frame, parts, group, compiled, rows, searched, groups)
        return self._alerts(frame, found)

    def _select(self, frame: pl.DataFrame, parts: list[_Part], units: list[_Unit], compiled: dict,
                rows: np.ndarray | None, searched: Distinct | None, groups: dict[int, np.ndarray]
                ) -> list[tuple[_Unit, np.ndarray]]:
        """(unit, matching row numbers) of ``units`` evaluated in one ``select`` over ``rows`` (None: every row)
        of the frame. A unit's hits outside its candidate rows are dropped: they may belong to keys it does not
        run on (and cannot match it in its own). ``searched``: the distinct values the literal search worked out,
        which the per-value tests of their columns read (``affix_tests``) instead of a lower-cased copy."""
        if not units:
            return []
        rules = [compiled[id(u)] for u in units]
        number: dict[tuple, int] = {}  # the leaves of all the rules, each evaluated once (``Builder.program``)
        tests: list = []  # a test (first: the function that builds it), or the rows the literal search found
        affixes: dict[str, list[tuple[int, str, tuple]]] = {}  # column -> its exact/prefix/suffix/contains tests'
        # (number, kind, texts): run together over its distinct values (``affix_tests``)
        places = []
        for c in rules:
            place = []
            for j, (key, test) in enumerate(c.leaves):
                k = number.get(key)
                if k is None:
                    k = number[key] = len(tests)
                    known = self._known(c.contains.get(j), groups)
                    tests.append(test if known is None else known)
                    if known is None and j in c.affixes:
                        column, kind, texts = c.affixes[j]
                        affixes.setdefault(column, []).append((k, kind, texts))
                    elif known is None and j in c.contains:
                        column, texts = c.contains[j]
                        affixes.setdefault(column, []).append((k, "contains", texts))
                place.append(k)
            places.append(place)
        distinct = {} if searched is None else {c: got for c in affixes if (got := searched.column(c)) is not None}
        names = {(LOWER, c) for c in affixes if c not in distinct}  # the derived columns read: the affix columns'
        # (but those whose values the search has), the tests' run
        later = {k for specs in affixes.values() for k, _, _ in specs}
        for k, t in enumerate(tests):
            if callable(t) and k not in later:
                tests[k], derived = t()
                names |= derived
        work = frame.select(sorted(set().union(*(c.columns for c in rules))) or frame.columns[:1])  # the rows
        work = work.rechunk() if rows is None else work[rows]
        need = Lowered()
        need.names = names
        if need.names:
            work = work.with_columns(need.columns(frame.schema))
        at = np.arange(work.height) if rows is None else rows  # the frame's row of each row of ``work``
        if affixes:
            got = affix_tests(work, {LOWER + c: [(kind, texts) for _, kind, texts in specs]
                                     for c, specs in affixes.items()},
                              {LOWER + c: (values, codes if rows is None else codes[rows])
                               for c, (values, codes) in distinct.items()})
            for c, specs in affixes.items():
                for (k, _, _), value in zip(specs, got.get(LOWER + c, []), strict=False):
                    if value is not None:
                        tests[k] = value
            late = Lowered()
            for k in later:
                if callable(tests[k]):  # its column has too many distinct values: its expression (reads LOWER + c)
                    tests[k], derived = tests[k]()
                    late.names |= derived - names
            if late.names:
                work = work.with_columns(late.columns(frame.schema))
        run_these = [k for k, t in enumerate(tests) if isinstance(t, pl.Expr)]
        got, bad = self._leaves(work, [tests[k] for k in run_these])
        values: list = [None if isinstance(t, pl.Expr) else t if t.dtype == bool else _member(at, t) if len(t)
                        else np.zeros(len(at), bool) for t in tests]
        for k, value in zip(run_these, got, strict=True):
            values[k] = value
        failed = {run_these[k]: reason for k, reason in bad.items()}
        out = []
        for u, c, place in zip(units, rules, places, strict=True):
            bad = [failed[k] for k in place if k in failed]
            if bad:  # one bad expression must not cost the others
                rule_id = self.ruleset.rules[u.rule].id
                for key in dict.fromkeys(parts[p].key for p in u.parts):
                    self.failures.append(RuleFailure(rule_id, key, bad[0]))
                continue
            mask = run(c.program, [values[k] for k in place])
            if mask is False or (mask is not True and not mask.any()):
                continue
            hit = np.arange(work.height) if mask is True else np.flatnonzero(mask)
            if rows is not None:
                hit = rows[hit]
            if u.rows is not None and len(u.rows) < (work.height if rows is None else len(rows)):
                hit = hit[_member(hit, u.rows)]
            if len(hit):
                out.append((u, hit))
        return out

    def _known(self, contains: tuple | None, groups: dict[int, np.ndarray]) -> np.ndarray | None:
        """The frame rows where a case-insensitive ``contains`` leaf is true, when the literal search found
        them: its (column, texts) are a group searched in full (not a weak one), and that search is exact
        (the lower-cased column's values holding one of the texts), so the leaf's test need not run."""
        number = None if contains is None else self._literals.number(contains)
        return None if number is None else groups.get(number)

    @staticmethod
    def _leaves(work: pl.DataFrame, tests: list[pl.Expr]) -> tuple[list, dict[int, str]]:
        """Each test's outcome over ``work`` (a boolean array), in one ``select``; a test that fails (then each
        is run alone) has its error instead."""
        if not tests:
            return [], {}
        try:
            got = work.select([t.alias(str(k)) for k, t in enumerate(tests)]).to_numpy(order="fortran")
            if len(got) != work.height:  # only constants (broadcast to the rows)
                got = np.repeat(got, work.height, axis=0)
            return [got[:, k] for k in range(len(tests))], {}
        except Exception:
            values: list = []
            failed: dict[int, str] = {}
            for k, t in enumerate(tests):
                try:
                    value = work.select(t.alias("hit")).to_series().to_numpy()
                    values.append(value if len(value) == work.height else np.repeat(value, work.height))
                except Exception as exc:
                    values.append(None)
                    failed[k] = f"{type(exc).__name__}: {exc}"
            return values, failed

    def _alerts(self, frame: pl.DataFrame, found: list[tuple[_Unit, np.ndarray]]) -> pl.DataFrame:
        """The alert rows of (unit, row numbers) pairs: one gather of the frame's rows per set of kept
        columns."""
        if not found:
            return empty_alerts()
        # the metadata of the rules that matched, a row each, made once a rule (a frame of them: ~3.6 ms an
        # evaluation of 100 k NXLog lines, 20 evaluations)
        new = sorted({u.rule for u, _ in found} - self._meta_row.keys())
        if new:
            more = rule_metadata([self.ruleset.rules[i] for i in new])
            self._meta[:] = [pl.concat([*self._meta, more], rechunk=True)]
            self._meta_row.update((i, k) for k, i in enumerate(new, start=len(self._meta_row)))
        meta, position = self._meta[0], self._meta_row
        present = [name for name in ALERT_SCHEMA if name in frame.columns]
        by_kept: dict[tuple, list[tuple[int, np.ndarray]]] = {}
        for u, rows in found:
            by_kept.setdefault(u.kept, []).append((position[u.rule], rows))
        parts = []
        for kept, pairs in by_kept.items():
            rule_numbers = np.concatenate([np.full(len(rows), i, dtype=np.int64) for i, rows in pairs])
            columns = list(dict.fromkeys([*present, *(column for _, column in kept)])) or frame.columns[:1]
            rows = frame.select(columns)[np.concatenate([rows for _, rows in pairs])]
            parts.append(alert_frame(rows, meta[rule_numbers], dict(kept)))
        return pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]

    def _kept(self, target: Target, columns) -> dict[str, str]:
        """Alert column -> frame column of the ``keep`` fields this frame has."""
        out = {}
        for name in self.keep:
            column = target.resolve(name, columns)
            if column is not None and name not in ALERT_SCHEMA:
                out[name] = column
        return out

    def feed(self, key: tuple[str, str], frame: pl.DataFrame) -> None:
        """Hunt in a frame. Frames of fewer than ``ALONE_ROWS`` rows wait: those of one key until it has
        ``KEY_ROWS`` rows (then they are evaluated stacked, alone: a narrow frame), the others until their family
        has ``batch_rows`` rows (``4 * batch_rows`` in all: then every family), evaluated together (``together``).
        Most of the cost of a rule on a small frame is per rule and per ``select``, not per row.
        ``matches()`` evaluates whatever still waits."""
        if frame.height >= min(ALONE_ROWS, self.batch_rows):
            self._keep(self.evaluate(key, frame))
            return
        family = key[0]
        # (its strings stay views into its chunk's buffers: ~4 chunks alive at 50 k rows waiting; copying each
        # frame's strings cost 0.36-0.47 CPU s per 100 k NXLog lines for ~40 MB of peak RSS of 400 k lines)
        self._waiting.setdefault(family, []).append((key, frame))
        self._waiting_rows += frame.height
        rows = self._family_rows[family] = self._family_rows.get(family, 0) + frame.height
        mine = self._key_rows[key] = self._key_rows.get(key, 0) + frame.height
        if mine >= min(KEY_ROWS, self.batch_rows):
            self._flush(family, key)
        elif rows >= self.batch_rows:
            self._flush(family)
        if self._waiting_rows >= 4 * self.batch_rows:
            for pending in list(self._waiting):
                self._flush(pending)

    def _flush(self, family: str, key: tuple[str, str] | None = None) -> None:
        """Evaluate the waiting frames of ``family`` (only those of ``key`` if given)."""
        items = self._waiting.pop(family)
        if key is not None:
            rest = [item for item in items if item[0] != key]
            items = [item for item in items if item[0] == key]
            if rest:
                self._waiting[family] = rest
        rows = sum(frame.height for _, frame in items)
        self._waiting_rows -= rows
        self._family_rows[family] -= rows
        if not self._family_rows[family]:
            del self._family_rows[family]
        for k in {k for k, _ in items}:
            self._key_rows.pop(k, None)
        for frame, parts in together(items):
            self._keep(self._evaluate(frame, parts))
            del frame, parts  # before the next one is made

    def _keep(self, found: pl.DataFrame) -> None:
        """Hold a match frame, as one of its own strings (``own_values``): its text columns are gathered from the
        frame evaluated, and a gathered Polars string column keeps the whole buffers of the one it came from,
        so the held matches kept every chunk's texts alive until handed over (peak RSS grew with the input:
        200 k NXLog lines, rules/windows, no detectors 888 -> 705 MB; ~0.4 ms a frame)."""
        if found.height:
            self._found.append(own_values(found))
            self._held += found.height
            self.matched += found.height
            if self.out is not None and self._held >= self.hold_rows:
                self._hand_over()

    def _hand_over(self) -> None:
        """The held matches to ``out`` in one schema (the alert columns, then every ``keep`` field), the
        correlations' share kept."""
        if not self._found:
            return
        frame = pl.concat(self._found, how="diagonal_relaxed")
        self._found, self._held = [], 0
        extra = sorted(name for name in self.keep if name not in ALERT_SCHEMA)
        frame = frame.select([*ALERT_SCHEMA, *[pl.col(n) if n in frame.columns else pl.lit(None, pl.String).alias(n)
                                               for n in extra]])
        ids = correlated_rule_ids(self.ruleset)
        if ids:
            self._correlated.append(own_values(frame.filter(pl.col("rule.id").is_in(ids))))
        self.out(frame)

    def held_rows(self) -> int:
        """Rows held in memory: frames waiting to be evaluated and matches not handed over."""
        return self._waiting_rows + self._held

    def finish(self) -> None:
        """Evaluate whatever still waits; with ``out``, hand over the matches still held."""
        for sig in list(self._waiting):
            self._flush(sig)
        if self.out is not None:
            self._hand_over()

    def matches(self) -> pl.DataFrame:
        """Every match (without ``out``; with it, only those of the rules the correlations reference)."""
        self.finish()
        found = self._correlated if self.out is not None else self._found
        return pl.concat(found, how="diagonal_relaxed") if found else empty_alerts()

    def take(self) -> tuple[pl.DataFrame, int, list[RuleFailure]]:
        """Whatever waits evaluated, then the matches (of a hunter without ``out``), events and rule failures so
        far, and the hunter emptied of them but not of its routes and compiled rules: a task of a hunt in several
        processes (``soc.distributed``), whose worker hunts its next task with them."""
        found = self.matches()
        got = (found, self.events, self.failures)
        self._found, self._held, self.matched, self.events, self.failures = [], 0, 0, 0, []
        return got

    def absorb(self, matches: pl.DataFrame, events: int, failures: list[RuleFailure]) -> None:
        """A task's results (``take`` of a hunter of the same rules over other frames) as if evaluated here."""
        self.events += events
        self.failures += failures
        self._keep(matches)

    def correlate(self) -> pl.DataFrame:
        """Alerts of the correlation rules over the matches so far (``soc.sigma.correlation``)."""
        return correlate(self.ruleset, self.matches())


def buckets(items: list, rows: list[np.ndarray]) -> list[tuple[list, np.ndarray]]:
    """Items (rules) grouped so that each group runs in one ``select`` over the union of its members' candidate
    rows: an item joins the group (smallest candidate sets first) while that costs less than a ``select`` of its
    own (cost: a fixed ``SELECT_COST`` plus rules x rows)."""
    out: list[tuple[list, np.ndarray]] = []
    group: list = []
    union = np.empty(0, dtype=np.int64)
    for i, r in sorted(zip(items, rows, strict=True), key=lambda pair: len(pair[1])):
        merged = np.union1d(union, r)
        if group and (len(group) + 1) * len(merged) > len(group) * len(union) + SELECT_COST + len(r):
            out.append((group, union))
            group, merged = [], r
        group.append(i)
        union = merged
    if group:
        out.append((group, union))
    return out


def together(items: list[tuple[tuple[str, str], pl.DataFrame]]) -> Iterator[tuple[pl.DataFrame, list[_Part]]]:
    """Waiting frames as few frames, each with its parts: the frames of one key and columns stacked, then
    those whose common columns have the same types side by side (a diagonal concat: a column a part lacks is
    null in its rows; its rules never read it: their fields resolve in the part's own columns, their keywords
    search its own text columns). ``items`` is emptied: each frame goes once evaluated (the caller's next)."""
    groups: dict[tuple, list[pl.DataFrame]] = {}
    for key, frame in items:
        groups.setdefault((key, tuple(frame.columns)), []).append(frame)
    items.clear()
    stacks: list[tuple[tuple[str, str], pl.DataFrame]] = []
    for (key, _), frames in groups.items():
        try:
            stacks.append((key, pl.concat(frames, rechunk=False) if len(frames) > 1 else frames[0]))
        except pl.exceptions.PolarsError:  # same names, other types: parts of their own
            stacks += [(key, frame) for frame in frames]
    groups.clear()
    batches: list[tuple[dict, list[tuple[tuple[str, str], pl.DataFrame, pl.Schema]], list[int]]] = []
    for key, frame in stacks:
        schema = frame.schema
        # a column's type as its text (equal texts, equal types): the checks below are set operations in C, not
        # one Python-level dtype comparison per column and batch tried
        kinds = dict(zip(schema, map(str, schema.values()), strict=True))
        for types, members, rows in batches:
            common = len(types.keys() & kinds.keys())
            if len(types.items() & kinds.items()) == common and \
                    (rows[0] + frame.height) * (len(types) + len(kinds) - common) <= UNION_CELLS:
                types.update(kinds)
                members.append((key, frame, schema))
                rows[0] += frame.height
                break
        else:
            batches.append((kinds, [(key, frame, schema)], [frame.height]))
    stacks.clear()
    while batches:  # made one at a time: all at once took +100 MB at the peak (50 k NXLog rows)
        _, members, _ = batches.pop(0)
        parts, start = [], 0
        for key, frame, schema in members:
            parts.append(_Part(key, schema, start, start + frame.height))
            start += frame.height
        frames = [frame for _, frame, _ in members]
        members.clear()
        # one chunk per column: a select over columns of hundreds of chunks aligns them at each call
        frame = (pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]).rechunk()
        frames.clear()
        yield frame, parts
        del frame


def _within(rows: np.ndarray | None, parts: list[_Part], height: int) -> np.ndarray | None:
    """Candidate rows (None: every row) restricted to the rows of ``parts``, sorted (None: every row of the
    frame)."""
    if rows is None:
        if sum(p.stop - p.start for p in parts) == height:
            return None
        spans = [np.arange(p.start, p.stop, dtype=np.int64) for p in parts]
    elif not len(rows):  # (most units: their literals are not in the frame)
        return rows
    else:
        spans = [rows[np.searchsorted(rows, p.start):np.searchsorted(rows, p.stop)] for p in parts]
    return spans[0] if len(spans) == 1 else np.concatenate(spans)


def _member(values: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in the sorted, non-empty ``within``."""
    pos = np.minimum(np.searchsorted(within, values), len(within) - 1)
    return within[pos] == values


def correlation_fields(ruleset: RuleSet) -> set[str]:
    """The Sigma fields the correlation rules group by, count or alias: the alert rows must carry them."""
    fields: set[str] = set()
    for c in ruleset.correlations:
        rule = getattr(c, "rule", c)
        fields.update(str(f) for f in (getattr(rule, "group_by", None) or []))
        ref = getattr(getattr(rule, "condition", None), "fieldref", None)
        fields.update([ref] if isinstance(ref, str) else ref or [])
        for alias in getattr(rule, "aliases", None) or []:
            fields.update(str(v) for v in alias.mapping.values())
    return fields


def correlated_rule_ids(ruleset: RuleSet) -> list[str]:
    """The ids of the rules whose matches the correlations read (``soc.sigma.correlation._frames``)."""
    return sorted({c.rule_id(ref) for c in ruleset.correlations for ref in c.bases})


def _kept_for_good() -> None:
    """What a hunter has just worked out and keeps (routes, what its rules need, bound literal conditions, rule
    programs: tens of thousands of lists at its first evaluations) moved out of the cycle collector's way, as
    ``hunter_for`` does with the rules (``gc.freeze``: O(1)). Left to it, they were promoted generation by
    generation until a full pass walked them with everything else young (25-30 ms of a corpus task's 45 ms of
    collections in a worker's first task; 18-20 ms with this). A caller that unfreezes after a run
    (``soc.hunt.run_hunt``, ``soc.runtime.setup_kept``) hands them back with the rest."""
    gc.freeze()


def hunter_for(ruleset: RuleSet, prefilter: bool = True, out: Callable[[pl.DataFrame], None] | None = None
               ) -> Hunter:
    """A hunter whose alert rows carry what the rule set's correlations need (``out``: see ``Hunter``).

    The objects made so far (the rule trees above all: hundreds of thousands of lists) live as long as the
    hunt, so they are moved out of the cycle collector's way (``gc.freeze``): its full passes walked them again
    and again, 3/4 of the time of the hunt's per-rule Python work (``necessary`` of 1,416 rules: 60 -> 14 ms)."""
    gc.freeze()
    return Hunter(ruleset, prefilter, keep=correlation_fields(ruleset), out=out)


def correlate(ruleset: RuleSet, matches: pl.DataFrame) -> pl.DataFrame:
    """The correlation hook: ``soc.sigma.correlation.evaluate(correlations, matches)`` when present."""
    if not ruleset.correlations:
        return empty_alerts()
    from soc.sigma import correlation  # provided by the correlation work

    return correlation.evaluate(ruleset.correlations, matches)


def empty_alerts() -> pl.DataFrame:
    return pl.DataFrame(schema=ALERT_SCHEMA)


def alerts(rule: Rule, frame: pl.DataFrame, mask: pl.Series, kept: dict[str, str] | None = None) -> pl.DataFrame:
    """Alert rows of ``rule`` for the rows of ``frame`` where ``mask`` is true (plus ``kept``: alert column
    -> frame column, as strings)."""
    return alerts_of(rule, frame.filter(mask), kept)


def alerts_of(rule: Rule, rows: pl.DataFrame, kept: dict[str, str] | None = None) -> pl.DataFrame:
    """Alert rows of ``rule`` for the matching ``rows``."""
    meta = rule_metadata([rule])
    return alert_frame(rows, meta.select(pl.all().gather(pl.zeros(rows.height, dtype=pl.UInt32))), kept)


def alert_frame(rows: pl.DataFrame, meta: pl.DataFrame, kept: dict[str, str] | None = None) -> pl.DataFrame:
    """Alert rows from the matching ``rows`` and, row by row, their rule's ``meta`` columns."""
    n = rows.height
    columns = {name: rows.get_column(name).cast(dtype, strict=False) for name, dtype in ALERT_SCHEMA.items()
               if name in rows.columns}
    return pl.DataFrame([  # the rule's metadata wins over a frame's own columns (a firewall's rule.name ...)
        meta.get_column(name) if name in meta.columns else columns[name] if name in columns
        else pl.Series(name, dtype=dtype).extend_constant(None, n)
        for name, dtype in ALERT_SCHEMA.items()
    ] + [rows.get_column(column).cast(pl.String).alias(name) for name, column in (kept or {}).items()])


def rule_metadata(rules: list[Rule]) -> pl.DataFrame:
    """The alert metadata columns of rules, one row per rule, in order (gathered by rule for the matches)."""
    levels = [r.level for r in rules]
    columns = {
        "event.kind": ["alert"] * len(rules), "rule.id": [r.id for r in rules], "rule.name": [r.title for r in rules],
        "rule.author": [r.author for r in rules], "rule.level": levels,
        "event.severity": [LEVELS.get(v, 3) for v in levels], "event.risk_score": [RISK.get(v, 47) for v in levels],
        "threat.technique.id": [r.techniques for r in rules], "threat.tactic.name": [r.tactics for r in rules],
        "tags": [r.tags for r in rules],
    }
    return pl.DataFrame([pl.Series(name, values, dtype=ALERT_SCHEMA[name]) for name, values in columns.items()])


class HuntSink(FeedSink):
    """A pipeline sink that hunts in every frame as it passes, then hands it on to ``inner``."""

    def __init__(self, hunter: Hunter, inner: Sink | None = None):
        super().__init__(hunter.feed, inner)
        self.hunter = hunter
