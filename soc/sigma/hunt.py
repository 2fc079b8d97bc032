"""Running loaded rules over frames as the pipeline streams them; only the matches are kept.

Each frame key ``(family, dataset)`` gets the rules whose targets cover it (logsource and event-id
routing), once. For a frame schema, every rule becomes one Polars expression (``soc.sigma.backend``); all
of them are evaluated in one ``select`` over the frame plus the lower-cased copies of the columns they
read (made once, shared by every rule). A rule's result never depends on the other rules loaded.
A match becomes an alert row: rule metadata (``rule.author`` is kept, as the rules' licence, DRL 1.1,
requires), ATT&CK ids, the record's way back (``event.dataset``, ``log.file.path``, ``log.line``,
``log.offset``) and the entity columns the frame has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from soc.pipeline import Sink
from soc.sigma.backend import Builder, Lowered
from soc.sigma.loader import LEVELS, RISK, Rule, RuleSet
from soc.sigma.mapping import Target

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


Prefilter = Callable[[tuple[str, str], pl.DataFrame, list[Rule]], list[pl.Series | None]]
"""``prefilter(key, frame, rules)``: per rule, a boolean mask of the rows that can match (rows lacking a literal
the rule requires cannot), or None for every row. A rule whose mask is all false is not evaluated."""


@dataclass
class RuleFailure:
    """A rule whose expression failed on a frame at run time (reported; the other rules go on)."""

    rule_id: str
    key: tuple[str, str]
    reason: str


@dataclass
class _Plan:
    rules: list[tuple[Rule, pl.Expr]]
    lowered: list[pl.Expr]
    targets: dict[str, Target] = field(default_factory=dict)  # rule id -> the target routing it here


@dataclass
class Hunter:
    """Evaluates a rule set over frames; ``matches()`` is every alert row so far."""

    ruleset: RuleSet
    prefilter: Prefilter | None = None  # candidate rows per rule (the Aho-Corasick literal prefilter)
    failures: list[RuleFailure] = field(default_factory=list)
    events: int = 0
    keep: set[str] = field(default_factory=set)  # Sigma fields the alert rows carry too (for correlations)
    _routes: dict = field(default_factory=dict)
    _plans: dict = field(default_factory=dict)
    _found: list = field(default_factory=list)

    def routes(self, key: tuple[str, str]) -> list[tuple[Rule, Target]]:
        """The rules that run on frames with this key (and the target that routes each)."""
        got = self._routes.get(key)
        if got is None:
            got = []
            for rule in self.ruleset.rules:
                target = next((t for t in rule.targets if t.covers(key)), None)
                if target is not None:
                    got.append((rule, target))
            self._routes[key] = got
        return got

    def _plan(self, key: tuple[str, str], schema: pl.Schema) -> _Plan:
        sig = (key, tuple(schema.items()))
        plan = self._plans.get(sig)
        if plan is None:
            lowered = Lowered()
            exprs = []
            for rule, target in self.routes(key):
                builder = Builder(schema, lambda name, t=target: t.resolve(name, schema), lowered)
                exprs.append((rule, builder.build(rule.tree)))
            plan = self._plans[sig] = _Plan(exprs, lowered.columns(schema),
                                            {rule.id: target for rule, target in self.routes(key)})
            if len(self._plans) > 4096:  # schemas of a long run: keep the cache bounded
                self._plans.pop(next(iter(self._plans)))
        return plan

    def evaluate(self, key: tuple[str, str], frame: pl.DataFrame) -> pl.DataFrame:
        """The alert rows of one frame."""
        self.events += frame.height
        if not frame.height:
            return empty_alerts()
        plan = self._plan(key, frame.schema)
        if not plan.rules:
            return empty_alerts()
        frame = frame.rechunk()  # expressions run per chunk: a regex or automaton is built once, not per chunk
        work = frame.with_columns(plan.lowered) if plan.lowered else frame
        selected = plan.rules
        if self.prefilter is not None:
            masks = self.prefilter(key, frame, [rule for rule, _ in plan.rules])
            selected = [(rule, expr if mask is None else expr & pl.lit(mask))
                        for (rule, expr), mask in zip(plan.rules, masks, strict=True)
                        if mask is None or mask.any()]
            if not selected:
                return empty_alerts()
        try:
            hits = work.select([e.alias(str(i)) for i, (_, e) in enumerate(selected)])
            results = [(rule, hits.get_column(str(i))) for i, (rule, _) in enumerate(selected)]
        except Exception:  # one bad expression must not cost the others: find it rule by rule
            results = []
            for rule, expr in selected:
                try:
                    results.append((rule, work.select(expr.alias("hit")).get_column("hit")))
                except Exception as exc:
                    self.failures.append(RuleFailure(rule.id, key, f"{type(exc).__name__}: {exc}"))
        parts = [alerts(rule, frame, mask, self._kept(plan.targets[rule.id], frame.columns))
                 for rule, mask in results if mask.any()]
        return pl.concat(parts, how="diagonal_relaxed") if parts else empty_alerts()

    def _kept(self, target: Target, columns: list[str]) -> dict[str, str]:
        """Alert column -> frame column of the ``keep`` fields this frame has."""
        out = {}
        for name in self.keep:
            column = target.resolve(name, columns)
            if column is not None and name not in ALERT_SCHEMA:
                out[name] = column
        return out

    def feed(self, key: tuple[str, str], frame: pl.DataFrame) -> None:
        found = self.evaluate(key, frame)
        if found.height:
            self._found.append(found)

    def matches(self) -> pl.DataFrame:
        return pl.concat(self._found, how="diagonal_relaxed") if self._found else empty_alerts()

    def correlate(self) -> pl.DataFrame:
        """Alerts of the correlation rules over the matches so far (``soc.sigma.correlation``)."""
        return correlate(self.ruleset, self.matches())


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


def hunter_for(ruleset: RuleSet, prefilter: Prefilter | None = None) -> Hunter:
    """A hunter whose alert rows carry what the rule set's correlations need."""
    return Hunter(ruleset, prefilter, keep=correlation_fields(ruleset))


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
    rows = frame.filter(mask)
    n = rows.height
    columns = {}
    for name, dtype in ALERT_SCHEMA.items():
        if name in rows.columns:
            columns[name] = rows.get_column(name).cast(dtype, strict=False)
    meta = {
        "event.kind": "alert", "rule.id": rule.id, "rule.name": rule.title, "rule.author": rule.author,
        "rule.level": rule.level, "event.severity": LEVELS.get(rule.level, 3),
        "event.risk_score": RISK.get(rule.level, 47),
    }
    lists = {"threat.technique.id": rule.techniques, "threat.tactic.name": rule.tactics, "tags": rule.tags}
    out = pl.DataFrame({name: pl.Series(name, [value] * n, dtype=ALERT_SCHEMA[name])
                        for name, value in {**meta, **lists}.items()})
    return pl.DataFrame([
        columns[name] if name in columns else out.get_column(name) if name in out.columns
        else pl.Series(name, [None] * n, dtype=dtype)
        for name, dtype in ALERT_SCHEMA.items()
    ] + [rows.get_column(column).cast(pl.String).alias(name) for name, column in (kept or {}).items()])


class HuntSink(Sink):
    """A pipeline sink that hunts in every frame as it passes, then hands it on to ``inner``."""

    def __init__(self, hunter: Hunter, inner: Sink | None = None):
        self.hunter = hunter
        self.inner = inner or Sink()

    def write(self, source_path: str, family: str, dataset: str, frame) -> None:
        self.hunter.feed((family, dataset), frame)
        self.inner.write(source_path, family, dataset, frame)

    def write_dead(self, source_path: str, dead) -> None:
        self.inner.write_dead(source_path, dead)

    def close_source(self, source_path: str) -> None:
        self.inner.close_source(source_path)

    def close(self) -> None:
        self.inner.close()
