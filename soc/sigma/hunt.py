"""Running loaded rules over frames as the pipeline streams them; only the matches are kept.

Each frame key ``(family, dataset)`` gets the rules whose targets cover it (logsource and event-id
routing), once. For a frame schema, every rule becomes one Polars expression (``soc.sigma.backend``). The
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

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from soc.pipeline import FeedSink, Sink
from soc.sigma.backend import Builder, Lowered
from soc.sigma.loader import LEVELS, RISK, Rule, RuleSet
from soc.sigma.mapping import Target
from soc.sigma.prefilter import FrameLiterals, necessary

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
HOLD_ROWS = 100_000  # matches held before they are handed to ``Hunter.out``


@dataclass
class RuleFailure:
    """A rule whose expression failed on a frame at run time (reported; the other rules go on)."""

    rule_id: str
    key: tuple[str, str]
    reason: str


@dataclass
class _Compiled:
    rule: Rule
    expr: pl.Expr
    lowered: set[tuple[str, str]]  # the derived columns (``Lowered``) it reads
    columns: list[str]  # the frame columns it reads
    target: Target


@dataclass
class _Plan:
    rules: list[_Compiled]
    literals: FrameLiterals | None  # the prefilter's conditions (None: no prefilter)
    meta: pl.DataFrame  # per rule, its alert metadata columns (one row each)


@dataclass
class Hunter:
    """Evaluates a rule set over frames; ``matches()`` is every alert row so far (or, with ``out``, each
    batch of at least ``hold_rows`` of them goes to ``out`` as found, in one schema, and ``finish()`` hands
    over the rest).

    With ``prefilter`` (the default) a rule's expression runs only on the rows holding the literals it
    requires (``soc.sigma.prefilter``); rules that require none, or whose candidates are a large share of
    the frame, run together in one ``select`` over the whole frame. The alerts are the same either way.
    """

    ruleset: RuleSet
    prefilter: bool = True
    failures: list[RuleFailure] = field(default_factory=list)
    events: int = 0
    keep: set[str] = field(default_factory=set)  # Sigma fields the alert rows carry too (for correlations)
    _routes: dict = field(default_factory=dict)
    _plans: dict = field(default_factory=dict)
    _found: list = field(default_factory=list)
    batch_rows: int = BATCH_ROWS
    _conds: dict = field(default_factory=dict)  # rule id -> its literal condition
    _waiting: dict = field(default_factory=dict)  # (key, schema) -> frames not evaluated yet
    _waiting_rows: int = 0
    _by_target: dict | None = None
    out: Callable[[pl.DataFrame], None] | None = None
    hold_rows: int = HOLD_ROWS
    matched: int = 0  # match rows so far
    _held: int = 0  # match rows of ``_found``
    _correlated: list = field(default_factory=list)  # with ``out``: the matches the correlations need

    def routes(self, key: tuple[str, str]) -> list[tuple[Rule, Target]]:
        """The rules that run on frames with this key (and the target that routes each: a rule's first that
        covers the key)."""
        got = self._routes.get(key)
        if got is None:
            if self._by_target is None:  # (family, dataset glob) -> [(rule number, target number)], made once
                self._by_target = {}
                for i, rule in enumerate(self.ruleset.rules):
                    for j, t in enumerate(rule.targets):
                        self._by_target.setdefault((t.family, t.dataset), []).append((i, j))
            first: dict[int, int] = {}
            for (family, dataset), uses in self._by_target.items():
                if Target(family, dataset).covers(key):
                    for i, j in uses:
                        if j < first.get(i, j + 1):
                            first[i] = j
            rules = self.ruleset.rules
            got = self._routes[key] = [(rules[i], rules[i].targets[first[i]]) for i in sorted(first)]
        return got

    def _plan(self, key: tuple[str, str], schema: pl.Schema) -> _Plan:
        sig = (key, tuple(schema.items()))
        plan = self._plans.get(sig)
        if plan is None:
            compiled = []
            for rule, target in self.routes(key):
                lowered = Lowered()
                builder = Builder(schema, lambda name, t=target: t.resolve(name, schema), lowered)
                expr = builder.build(rule.tree)
                roots = set(expr.meta.root_names())
                columns = sorted(c for c in roots if c in schema) + sorted(
                    {name for _, name in lowered.names if name not in roots})
                compiled.append(_Compiled(rule, expr, lowered.names, columns, target))
            literals = None
            if self.prefilter and compiled:
                conds = [self._cond(c.rule) for c in compiled]
                resolvers = [lambda name, t=c.target: t.resolve(name, schema) for c in compiled]
                literals = FrameLiterals.build(conds, resolvers, schema)
            meta = pl.concat([_constants(c.rule) for c in compiled]) if compiled else empty_alerts()
            plan = self._plans[sig] = _Plan(compiled, literals, meta)
            if len(self._plans) > 4096:  # schemas of a long run: keep the cache bounded
                self._plans.pop(next(iter(self._plans)))
        return plan

    def _cond(self, rule: Rule):
        if rule.id not in self._conds:
            self._conds[rule.id] = necessary(rule.tree)
        return self._conds[rule.id]

    def evaluate(self, key: tuple[str, str], frame: pl.DataFrame) -> pl.DataFrame:
        """The alert rows of one frame."""
        self.events += frame.height
        if not frame.height:
            return empty_alerts()
        plan = self._plan(key, frame.schema)
        if not plan.rules:
            return empty_alerts()
        frame = frame.rechunk()  # expressions run per chunk: a regex or automaton is built once, not per chunk
        every = list(range(len(plan.rules)))
        found: list[tuple[int, np.ndarray]] = []
        if plan.literals is None:
            found = self._select(key, frame, plan, every, None, None)
        else:
            searched = plan.literals.lowered(frame)
            limit = BATCH_SHARE * frame.height
            batch, few, union = [], [], []
            for i, rows in enumerate(plan.literals.candidates(searched)):
                if rows is None or len(rows) > limit:
                    batch.append(i)
                elif len(rows):
                    few.append(i)
                    union.append(rows)
            found = self._select(key, frame, plan, batch, None, searched)
            for group, rows in buckets(few, union):  # rules with few candidates: on the union of theirs
                found += self._select(key, frame, plan, group, rows, searched)
        return self._alerts(frame, plan, found)

    def _select(self, key, frame: pl.DataFrame, plan: _Plan, which: list[int], rows: np.ndarray | None,
                searched: pl.DataFrame | None) -> list[tuple[int, np.ndarray]]:
        """(rule number, matching row numbers) of rules ``which`` evaluated in one ``select`` over ``rows`` (None:
        every row) of the frame. Rows outside a rule's candidates cannot match it: evaluating them is harmless."""
        if not which:
            return []
        rules = [plan.rules[i] for i in which]
        names = set().union(*(c.lowered for c in rules))
        have = set(searched.columns) if searched is not None else set()
        work = frame.select(sorted(set().union(*(c.columns for c in rules))))
        reuse = [p + n for p, n in sorted(names) if p + n in have]
        if reuse:
            work = work.hstack(searched.select(reuse))
        if rows is not None:
            work = work[rows]
        need = Lowered()
        need.names = {(p, n) for p, n in names if p + n not in have}
        if need.names:
            work = work.with_columns(need.columns(frame.schema))
        try:
            hits = work.select([c.expr.alias(str(k)) for k, c in enumerate(rules)])
            masks = [(i, hits.get_column(str(k))) for k, i in enumerate(which)]
        except Exception:  # one bad expression must not cost the others: find it rule by rule
            masks = []
            for i in which:
                try:
                    masks.append((i, work.select(plan.rules[i].expr.alias("hit")).get_column("hit")))
                except Exception as exc:
                    self.failures.append(RuleFailure(plan.rules[i].rule.id, key, f"{type(exc).__name__}: {exc}"))
        out = []
        for i, mask in masks:
            if not mask.any():
                continue
            hit = np.flatnonzero(mask.to_numpy()) if len(mask) == work.height else np.arange(work.height)
            out.append((i, hit if rows is None else rows[hit]))
        return out

    def _alerts(self, frame: pl.DataFrame, plan: _Plan, found: list[tuple[int, np.ndarray]]) -> pl.DataFrame:
        """The alert rows of (rule number, row numbers) pairs: one gather of the frame's rows for all rules."""
        if not found:
            return empty_alerts()
        by_kept: dict[tuple, list[tuple[int, np.ndarray]]] = {}
        for i, rows in found:
            kept = self._kept(plan.rules[i].target, frame.columns)
            by_kept.setdefault(tuple(sorted(kept.items())), []).append((i, rows))
        parts = []
        for kept, pairs in by_kept.items():
            rule_numbers = np.concatenate([np.full(len(rows), i, dtype=np.int64) for i, rows in pairs])
            rows = frame[np.concatenate([rows for _, rows in pairs])]
            meta = plan.meta[rule_numbers]
            parts.append(alert_frame(rows, meta, dict(kept)))
        return pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]

    def _kept(self, target: Target, columns: list[str]) -> dict[str, str]:
        """Alert column -> frame column of the ``keep`` fields this frame has."""
        out = {}
        for name in self.keep:
            column = target.resolve(name, columns)
            if column is not None and name not in ALERT_SCHEMA:
                out[name] = column
        return out

    def feed(self, key: tuple[str, str], frame: pl.DataFrame) -> None:
        """Hunt in a frame. Small frames of one key and schema wait for more (up to ``batch_rows`` rows, and
        ``4 * batch_rows`` in all) and are evaluated together: most of the cost of a rule on a small frame is
        per ``select``, not per row. ``matches()`` evaluates whatever still waits."""
        if frame.height >= self.batch_rows:
            self._keep(self.evaluate(key, frame))
            return
        sig = (key, tuple(frame.schema.items()))
        self._waiting.setdefault(sig, []).append(frame)
        self._waiting_rows += frame.height
        if sum(f.height for f in self._waiting[sig]) >= self.batch_rows:
            self._flush(sig)
        if self._waiting_rows >= 4 * self.batch_rows:
            for pending in list(self._waiting):
                self._flush(pending)

    def _flush(self, sig) -> None:
        frames = self._waiting.pop(sig)
        self._waiting_rows -= sum(f.height for f in frames)
        self._keep(self.evaluate(sig[0], pl.concat(frames) if len(frames) > 1 else frames[0]))

    def _keep(self, found: pl.DataFrame) -> None:
        if found.height:
            self._found.append(found)
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
            self._correlated.append(frame.filter(pl.col("rule.id").is_in(ids)))
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

    def correlate(self) -> pl.DataFrame:
        """Alerts of the correlation rules over the matches so far (``soc.sigma.correlation``)."""
        return correlate(self.ruleset, self.matches())


def buckets(rules: list[int], rows: list[np.ndarray]) -> list[tuple[list[int], np.ndarray]]:
    """Rules grouped so that each group runs in one ``select`` over the union of its members' candidate rows:
    a rule joins the group (smallest candidate sets first) while that costs less than a ``select`` of its own
    (cost: a fixed ``SELECT_COST`` plus rules x rows)."""
    out: list[tuple[list[int], np.ndarray]] = []
    group: list[int] = []
    union = np.empty(0, dtype=np.int64)
    for i, r in sorted(zip(rules, rows, strict=True), key=lambda pair: len(pair[1])):
        merged = np.union1d(union, r)
        if group and (len(group) + 1) * len(merged) > len(group) * len(union) + SELECT_COST + len(r):
            out.append((group, union))
            group, merged = [], r
        group.append(i)
        union = merged
    if group:
        out.append((group, union))
    return out


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


def hunter_for(ruleset: RuleSet, prefilter: bool = True, out: Callable[[pl.DataFrame], None] | None = None
               ) -> Hunter:
    """A hunter whose alert rows carry what the rule set's correlations need (``out``: see ``Hunter``)."""
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
    meta = _constants(rule)
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


_CONSTANTS: dict[str, tuple[Rule, pl.DataFrame]] = {}


def _constants(rule: Rule) -> pl.DataFrame:
    """The one-row frame of a rule's metadata columns (made once per rule)."""
    got = _CONSTANTS.get(rule.id)
    if got is not None and got[0] is rule:
        return got[1]
    meta = {
        "event.kind": "alert", "rule.id": rule.id, "rule.name": rule.title, "rule.author": rule.author,
        "rule.level": rule.level, "event.severity": LEVELS.get(rule.level, 3),
        "event.risk_score": RISK.get(rule.level, 47),
    }
    lists = {"threat.technique.id": rule.techniques, "threat.tactic.name": rule.tactics, "tags": rule.tags}
    frame = pl.DataFrame({name: pl.Series(name, [value], dtype=ALERT_SCHEMA[name])
                          for name, value in {**meta, **lists}.items()})
    if len(_CONSTANTS) > 100_000:
        _CONSTANTS.clear()
    _CONSTANTS[rule.id] = (rule, frame)
    return frame


class HuntSink(FeedSink):
    """A pipeline sink that hunts in every frame as it passes, then hands it on to ``inner``."""

    def __init__(self, hunter: Hunter, inner: Sink | None = None):
        super().__init__(hunter.feed, inner)
        self.hunter = hunter
