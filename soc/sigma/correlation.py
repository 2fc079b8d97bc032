"""Sigma correlation rules (specification 2.0) over the frames of events their base rules matched.

``correlate(rule, matches)`` runs one pySigma ``SigmaCorrelationRule`` on the sliding-window kernels of
``soc.detect.windows`` and returns one row per alert. The semantics, where the specification leaves a choice:

- **Window.** ``timespan`` is a sliding window, not a bucket: the window of an event holds the events of its
  group at most ``timespan`` older, both ends inclusive (``t_last - t_first <= timespan``: two events exactly
  ``5m`` apart are "within 5m", one microsecond more is not). The condition is tested on the window that ends
  at each event, so it is known as soon as the event that completes it arrives.
- **Condition.** ``gt/gte/lt/lte/eq/neq`` compare the window's value: ``event_count`` the events,
  ``value_count`` the distinct non-null values of ``field`` (several fields: distinct combinations),
  ``value_sum``/``value_avg`` the sum/mean of the non-null numeric values (text that is not a number counts
  as null), ``temporal`` the distinct referenced rules (default: all of them). ``temporal_ordered`` needs
  every rule, in the listed order (events of the same microsecond count as in order), inside one window.
- **"Fewer than" (lt/lte).** Also tested on the window ending at each event: "this event came with fewer
  than N events of its group in the preceding timespan, itself included". A group's first event therefore
  satisfies ``lt 5``; activity that thins out fires again. A group with no event at all never fires (the
  absence of events is not observable from matches).
- **Alerts.** One per episode: the condition holds at an event (the trigger, ``@timestamp``), and every
  later event of the group where it holds again within ``timespan`` of the last one extends the same alert
  (``window.end``). Only after the window has slid past (no holding event for more than ``timespan``) can
  the group fire again: no storm of one alert per event. ``window.start`` is the oldest event in the
  trigger's window, ``event.count`` the events from ``window.start`` to ``window.end``,
  ``correlation.value`` the value the condition held on at the trigger, ``evidence`` the first
  ``MAX_EVIDENCE`` of those events as (log.file.path, log.line, log.offset, base rule id).
- **Input.** Frames may be in any order (rows are sorted by group and time first). An event matched by
  several referenced rules counts once for ``event_count``/``value_*`` (same ``log.file.path`` and
  ``log.offset``), and once per rule for ``temporal*``. Events with a null ``@timestamp`` cannot be placed
  in a window and are skipped; events with a null group-by value are skipped by default, as SIEM backends
  do (``null_groups="group"`` makes "absent" a group of its own). Skipped rows are logged with counts.
- **Fields.** Aliases map each base rule's own field to the alias name; ``column_of(rule_key, field)``
  names the frame column of a Sigma field (default: the field itself); a field missing from a frame is null.
- **generate.** ``keep_base_alerts(rule)`` tells the runner whether the base rules' own matches are alerts too.

The loader and the hunter call ``compile_correlations(paths, rules)`` and ``evaluate(correlations, matches)``
(the match rows of every base rule in one frame), both at the end of this module. A job passes ``carries``
(a ``Carry`` by ``carry_key``) to go on where its last run stopped.

Not supported (a ``CorrelationError`` says so): ``value_percentile``, ``value_median``, extended (boolean)
conditions, and conditions other than "all rules" for ``temporal_ordered``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from sigma.correlations import SigmaCorrelationRule

log = logging.getLogger(__name__)

MAX_EVIDENCE = 100  # event references kept per alert (``event.count`` has the total)
REFERENCE_COLUMNS = ("log.file.path", "log.line", "log.offset")
TYPES = ("event_count", "value_count", "value_sum", "value_avg", "temporal", "temporal_ordered")
US = 1_000_000

_T, _STAGE, _BASE, _VALUE = "__t", "__stage", "__base", "__value"
_HELD, _HELD_VALUE = "__held", "__held_value"  # a carried event's condition and value, as judged when it was new
FRESH = "_fresh"  # on the alerts of a ``Carry``-ing run: the trigger is an event of this run (not carried)


@dataclass
class Carry:
    """A correlation's events carried between the runs of a job (``soc.jobs.state``). ``rows`` (the engine's
    own columns; None at first) are prepended to the next run's events; ``correlate`` replaces them with what
    the run after needs: the events of the last ``timespan`` (a later event's window reaches no further back),
    and for a group whose episode is still open (its last holding event within ``timespan`` of the newest
    event) its events from that episode's first one on, so that the episode is reported again whole. Each
    carried event keeps its condition and value as judged when it was new, with its whole window: a carried
    event's own window may be cut short, which would change "fewer than" (lt/lte), eq, neq and averages.
    So a job's runs over events that come in time order give the episodes of one run over all of them."""

    rows: pl.DataFrame | None = None


class CorrelationError(ValueError):
    """A correlation rule this engine cannot run, or input it cannot use."""


def required_rules(rule: SigmaCorrelationRule) -> list[str]:
    """The references (id or name, as written) of the rules whose matches ``correlate`` needs, in order."""
    refs = rule.referenced_rules or rule.rules or []
    return list(dict.fromkeys(ref.reference for ref in refs))


def keep_base_alerts(rule: SigmaCorrelationRule) -> bool:
    """Sigma's ``generate``: whether the referenced rules' own matches are alerts as well (default: no)."""
    return bool(rule.generate)


def _pysigma():
    """pySigma's correlation module, imported when a correlation rule is parsed or run: a warm hunt whose base
    rules matched nothing never needs it (its import took 60-100 ms of every hunt with our own rules)."""
    from sigma import correlations

    return correlations


def _type_name(rule: SigmaCorrelationRule) -> str:
    kind = _pysigma().SigmaCorrelationType
    name = str(rule.type.name).lower() if isinstance(rule.type, kind) else str(rule.type)
    if name not in TYPES:
        raise CorrelationError(f"correlation type {name!r} is not supported (supported: {', '.join(TYPES)})")
    return name


def _condition(rule: SigmaCorrelationRule, kind: str, n_rules: int) -> tuple[str, float, list[str]]:
    cond = rule.condition
    if not isinstance(cond, _pysigma().SigmaCorrelationCondition):
        raise CorrelationError("extended (boolean) correlation conditions are not supported")
    op = cond.op.name.lower()
    fields = [cond.fieldref] if isinstance(cond.fieldref, str) else list(cond.fieldref or [])
    if kind in ("value_count", "value_sum", "value_avg") and not fields:
        raise CorrelationError(f"{kind} needs a condition field")
    if kind in ("value_sum", "value_avg") and len(fields) != 1:
        raise CorrelationError(f"{kind} takes exactly one condition field, not {fields}")
    if kind == "temporal_ordered" and not (op in ("gte", "eq") and cond.count == n_rules):
        raise CorrelationError(f"temporal_ordered supports only its default condition (all {n_rules} rules in "
                               f"order), not {op} {cond.count}")
    return op, float(cond.count), fields


def _frame_of(matches: Mapping[str, pl.DataFrame], ref) -> tuple[str, pl.DataFrame]:
    keys = [ref.reference]
    rule = getattr(ref, "rule", None)
    if rule is not None:
        keys += [str(rule.id) if rule.id else None, rule.name]
    for key in keys:
        if key is not None and key in matches:
            return key, matches[key]
    raise CorrelationError(f"no matches given for referenced rule {ref.reference!r} (pass an empty frame if it "
                           "matched nothing)")


def _names(ref) -> set[str]:
    rule = getattr(ref, "rule", None)
    names = {ref.reference}
    if rule is not None:
        names |= {str(rule.id) if rule.id else "", rule.name or ""}
    return names - {""}


def _field_for(rule: SigmaCorrelationRule, name: str, ref) -> str:
    """The field that ``name`` (a field or an alias) stands for in the events of rule ``ref``."""
    alias = rule.aliases.aliases.get(name) if rule.aliases else None
    if alias is None:
        return name
    mine = _names(ref)
    for alias_ref, source_field in alias.mapping.items():
        if _names(alias_ref) & mine:
            return source_field
    return name


def _column(frame: pl.DataFrame, key: str, field: str, column_of) -> pl.Expr:
    col = column_of(key, field) if column_of else field
    if col is None or col not in frame.columns:
        return pl.lit(None)
    dtype = frame.schema[col]
    return pl.col(col).cast(pl.String) if isinstance(dtype, pl.Categorical | pl.Enum) else pl.col(col)


def _base_id(ref) -> str:
    rule = getattr(ref, "rule", None)
    return str(rule.id) if rule is not None and rule.id else ref.reference


def _parts(rule, matches, column_of, group_by: list[str], fields: list[str]) -> list[pl.DataFrame]:
    refs = rule.referenced_rules or rule.rules or []
    parts = []
    for stage, ref in enumerate(refs):
        key, frame = _frame_of(matches, ref)
        if "@timestamp" not in frame.columns:
            raise CorrelationError(f"matches of {ref.reference!r} have no @timestamp column")
        if not isinstance(frame.schema["@timestamp"], pl.Datetime):
            raise CorrelationError(f"@timestamp of {ref.reference!r} is {frame.schema['@timestamp']}, not a Datetime")
        exprs = [pl.col("@timestamp").dt.epoch("us").alias(_T), pl.lit(stage, pl.Int64).alias(_STAGE),
                 pl.lit(_base_id(ref), pl.String).alias(_BASE)]
        exprs += [_column(frame, key, _field_for(rule, g, ref), column_of).alias(g) for g in group_by]
        exprs += [_column(frame, key, _field_for(rule, f, ref), column_of).alias(f"{_VALUE}{i}")
                  for i, f in enumerate(fields)]
        exprs += [(pl.col(c) if c in frame.columns else pl.lit(None)).alias(c) for c in REFERENCE_COLUMNS]
        parts.append(frame.select(exprs))
    return parts


def _concat(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """One frame; a column whose type differs between rules (e.g. an alias over int and text) becomes text."""
    columns = parts[0].columns
    for col in columns:
        types = {p.schema[col] for p in parts} - {pl.Null}
        if len(types) > 1:
            parts = [p.with_columns(pl.col(col).cast(pl.String)) for p in parts]
        elif len(types) == 1:
            (dtype,) = types
            parts = [p.with_columns(pl.col(col).cast(dtype)) for p in parts]
    return pl.concat(parts, how="vertical")


def _dense(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """Dense ids 0.. of the rows' values in ``columns`` (-1 where null)."""
    if not columns:
        return np.zeros(frame.height, np.int64)
    expr = pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)
    null = pl.any_horizontal([pl.col(c).is_null() for c in columns])
    ids = frame.select(pl.when(null).then(None).otherwise(expr.rank("dense")).cast(pl.Int64) - 1)
    return ids.to_series().fill_null(-1).to_numpy()


def _empty(group_by: list[str], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema={**_head_schema(), **{g: schema.get(g, pl.String) for g in group_by},
                                **_tail_schema()})


def _head_schema() -> dict:
    return {"@timestamp": pl.Datetime("us", "UTC"), "rule.id": pl.String, "rule.name": pl.String,
            "rule.level": pl.String, "correlation.type": pl.String}


def _tail_schema() -> dict:
    evidence = pl.Struct({"log.file.path": pl.String, "log.line": pl.Int64, "log.offset": pl.Int64,
                          "rule.id": pl.String})
    return {"window.start": pl.Datetime("us", "UTC"), "window.end": pl.Datetime("us", "UTC"),
            "event.count": pl.Int64, "correlation.value": pl.Float64, "evidence": pl.List(evidence)}


def correlate(rule: SigmaCorrelationRule, matches: Mapping[str, pl.DataFrame],
              column_of: Callable[[str, str], str | None] | None = None, *,
              null_groups: str = "skip", carry: Carry | None = None) -> pl.DataFrame:
    """Alerts of one correlation rule (one row per episode; see the module docstring for the semantics).

    ``matches`` maps each referenced rule's id and name to the frame of events it matched. Columns of the
    result: ``@timestamp`` (the event that completed the condition), ``rule.id``, ``rule.name`` (title),
    ``rule.level``, ``correlation.type``, one column per group-by field (named as in the rule),
    ``window.start``, ``window.end``, ``event.count``, ``correlation.value``, ``evidence``.
    """
    if null_groups not in ("skip", "group"):
        raise CorrelationError(f"null_groups must be 'skip' or 'group', not {null_groups!r}")
    kind = _type_name(rule)
    refs = rule.referenced_rules or rule.rules or []
    if not refs:
        raise CorrelationError("correlation rule references no rules")
    op, threshold, fields = _condition(rule, kind, len(refs))
    group_by = list(rule.group_by or [])
    span = int(rule.timespan.seconds) * US

    data = _concat(_parts(rule, matches, column_of, group_by, fields))
    data = _drop_unusable(data, group_by, kind, null_groups, rule)
    if carry is not None and carry.rows is not None and carry.rows.height:
        data = pl.concat([carry.rows, data], how="diagonal_relaxed")  # carried first: ties of time keep it
    if data.height == 0:
        if carry is not None:
            carry.rows = None
        return _empty(group_by, data.schema)

    from soc.detect import windows  # Numba kernels, compiled when a correlation runs

    data = data.sort([_T, _STAGE], maintain_order=True)
    # with "group", a null group-by value is a value like any other (the struct rank keeps it)
    keys = _dense_with_nulls(data, group_by) if null_groups == "group" else _dense(data, group_by)
    perm, keys, times = windows.order(keys, data[_T].to_numpy())
    data = data[perm]

    counts = windows.window_count(keys, times, span)
    value = _window_value(kind, data, keys, times, counts, span, len(fields), len(refs))
    if kind == "temporal_ordered":
        hold = (value != windows.NO_TIME) & (times - value <= span)
        value = np.where(hold, float(len(refs)), np.nan)
    else:
        hold = windows.holds(value, op, threshold)
    if carry is not None and _HELD in data.columns:  # as judged when new, with its whole window
        held = data.get_column(_HELD)
        known = held.is_not_null().to_numpy()
        hold = np.where(known, held.fill_null(False).to_numpy(), hold)
        value = np.where(known, data.get_column(_HELD_VALUE).fill_null(np.nan).to_numpy(), value)
    trig, first, last = windows.episodes(keys, times, counts, hold, span)
    out = _alerts(rule, kind, data, group_by, times, value, trig, first, last)
    if carry is not None:
        out = out.with_columns(pl.Series(FRESH, data.get_column(_HELD).is_null().to_numpy()[trig]
                                         if _HELD in data.columns else np.ones(trig.size, bool)))
        carry.rows = _carried(data, keys, times, hold, value, first, last, span)
    return out


def _carried(data, keys, times, hold, value, first, last, span) -> pl.DataFrame:
    """The events a later run needs again (``Carry``), with their condition and value as judged now."""
    cut = times.max() - span
    start = np.full(int(keys.max()) + 1, np.iinfo(np.int64).max, np.int64)
    still = times[last] >= cut  # open episodes: a later event may extend them
    start[keys[last[still]]] = times[first[still]]
    keep = (times >= cut) | (times >= start[keys])
    return data.with_columns(pl.Series(_HELD, np.asarray(hold, bool)),
                             pl.Series(_HELD_VALUE, np.asarray(value, np.float64))).filter(pl.Series(keep))


def _drop_unusable(data: pl.DataFrame, group_by: list[str], kind: str, null_groups: str, rule) -> pl.DataFrame:
    n = data.height
    data = data.filter(pl.col(_T).is_not_null())
    no_time = n - data.height
    no_group = 0
    if null_groups == "skip" and group_by:
        before = data.height
        data = data.filter(pl.all_horizontal([pl.col(g).is_not_null() for g in group_by]))
        no_group = before - data.height
    if kind not in ("temporal", "temporal_ordered"):  # one event matched by several rules counts once
        known = pl.col("log.file.path").is_not_null() & pl.col("log.offset").is_not_null()
        first_seen = pl.struct("log.file.path", "log.offset").is_first_distinct()
        data = data.filter(~known | first_seen)
    if no_time or no_group:
        log.info("correlation %s: skipped %d events without @timestamp and %d with a null group-by value",
                 rule.title, no_time, no_group)
    return data


def _dense_with_nulls(data: pl.DataFrame, group_by: list[str]) -> np.ndarray:
    if not group_by:
        return np.zeros(data.height, np.int64)
    # a struct, even of one column, is never null itself: its null fields rank like any value
    return data.select(pl.struct(group_by).rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()


def _window_value(kind, data, keys, times, counts, span, n_fields, n_rules) -> np.ndarray:
    from soc.detect import windows

    if kind == "event_count":
        return counts
    if kind == "value_count":
        ids = _dense(data, [f"{_VALUE}{i}" for i in range(n_fields)])
        return windows.window_distinct(keys, times, ids, int(ids.max()) + 1 if ids.size else 0, span)
    if kind in ("value_sum", "value_avg"):
        col = data[f"{_VALUE}0"]
        numbers = col.cast(pl.Float64, strict=False) if col.dtype != pl.Null else pl.Series([None] * len(col),
                                                                                             dtype=pl.Float64)
        sums, valid = windows.window_sum(keys, times, numbers.fill_null(np.nan).to_numpy(), span)
        if kind == "value_sum":
            return np.where(valid > 0, sums, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / valid
    stages = data[_STAGE].to_numpy()
    if kind == "temporal":
        return windows.window_distinct(keys, times, stages, n_rules, span)
    return windows.ordered_chain(keys, times, stages, n_rules, span)


def _alerts(rule, kind, data, group_by, times, value, trig, first, last) -> pl.DataFrame:
    if trig.size == 0:
        return _empty(group_by, data.schema)
    to_time = pl.Datetime("us", "UTC")
    level = rule.level.name.lower() if getattr(rule, "level", None) else None
    head = pl.DataFrame({
        "@timestamp": pl.Series(times[trig]).cast(to_time),
        "rule.id": [str(rule.id) if rule.id else None] * trig.size,
        "rule.name": [rule.title] * trig.size,
        "rule.level": [level] * trig.size,
        "correlation.type": [kind] * trig.size,
    }, schema=_head_schema())
    groups = data[trig].select(group_by)
    tail = pl.DataFrame({
        "window.start": pl.Series(times[first]).cast(to_time),
        "window.end": pl.Series(times[last]).cast(to_time),
        "event.count": last - first + 1,
        "correlation.value": value[trig].astype(np.float64),
        "evidence": _evidence(data, first, last),
    }, schema=_tail_schema())
    return pl.concat([head, groups, tail], how="horizontal")


def _evidence(data: pl.DataFrame, first: np.ndarray, last: np.ndarray) -> pl.Series:
    """The first ``MAX_EVIDENCE`` events of each episode as a list of references."""
    kept = np.minimum(last - first + 1, MAX_EVIDENCE)
    episode = np.repeat(np.arange(first.size), kept)
    offsets = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
    rows = np.repeat(first, kept) + offsets
    refs = data[rows].select(
        pl.Series("__episode", episode),
        pl.struct(pl.col("log.file.path").cast(pl.String), pl.col("log.line").cast(pl.Int64),
                  pl.col("log.offset").cast(pl.Int64), pl.col(_BASE).alias("rule.id")).alias("evidence"))
    grouped = refs.group_by("__episode", maintain_order=True).agg(pl.col("evidence"))
    return grouped["evidence"]


# The hooks of the rule loader and the hunter (soc.sigma.loader / soc.sigma.hunt) --------------------------

@dataclass
class Condition:
    fieldref: list[str]


@dataclass
class Alias:
    mapping: dict[str, str]  # reference -> the base rule's field


@dataclass
class Summary:
    """What a hunt reads of a correlation rule before running it (``soc.sigma.hunt.correlation_fields``: the
    fields its alert rows must carry), as plain data kept in the load cache: a warm load gives a summary in
    place of the pySigma rule, and ``evaluate`` parses the rule only when its base rules matched."""

    id: str | None
    title: str
    group_by: list[str]
    condition: Condition
    aliases: list[Alias]

    @classmethod
    def of(cls, rule: SigmaCorrelationRule | Summary) -> Summary:
        ref = getattr(rule.condition, "fieldref", None)
        return cls(str(rule.id) if rule.id else None, rule.title or "", [str(g) for g in rule.group_by or []],
                   Condition([ref] if isinstance(ref, str) else [str(f) for f in ref or []]),
                   [Alias({getattr(k, "reference", k): str(v) for k, v in a.mapping.items()})
                    for a in rule.aliases or []])


@dataclass
class Correlation:
    """A loaded correlation rule, with the compiled base rules it references (None: another correlation)."""

    rule: SigmaCorrelationRule | Summary  # a Summary until it runs, when the load came from the cache
    path: str
    bases: dict[str, object] = field(default_factory=dict)  # reference -> soc.sigma.loader.Rule | None

    def rule_id(self, reference: str) -> str:
        """The ``rule.id`` of the matches a reference reads (its compiled rule's id, else the reference)."""
        base = self.bases.get(reference)
        return base.id if base is not None else reference

    def record(self) -> dict:
        """Plain data for the load cache (``cached`` makes the correlation again from it)."""
        bases = {ref: None if b is None else b.id for ref, b in self.bases.items()}
        return {"path": self.path, "bases": bases, "rule": asdict(Summary.of(self.rule))}

    @classmethod
    def cached(cls, record: dict, rules: dict[str, object]) -> Correlation:
        """The correlation of a ``record`` (``rules``: the loaded rules by id), with a ``Summary`` for its rule."""
        rule = record["rule"]
        summary = Summary(rule["id"], rule["title"], rule["group_by"], Condition(**rule["condition"]),
                          [Alias(**a) for a in rule["aliases"]])
        bases = {ref: None if rid is None else rules.get(rid) for ref, rid in record["bases"].items()}
        return cls(summary, record["path"], bases)


def compile_correlations(paths: list, rules: list) -> tuple[list[Correlation], list]:
    """The correlation rules of ``paths`` and a ``LoadError`` for each one that cannot run, with the reason.

    A reference is resolved by name or id among the rules of these files, else by id among ``rules`` (the
    compiled base rules of every loaded file).
    """
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule

    from soc import safe_yaml  # here: a hunt from the rule cache need not import PyYAML (~15 ms)
    from soc.sigma.loader import LoadError

    errors: list = []
    parsed: list[tuple[str, object]] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
            collection = SigmaCollection.from_dicts(safe_yaml.load_all(text), collect_errors=True,
                                                    resolve_references=False)
        except Exception as exc:  # reported, never raised: one bad file must not stop the others
            errors.append(LoadError(str(path), f"cannot parse: {type(exc).__name__}: {exc}"))
            continue
        parsed += [(str(path), r) for r in collection.rules]
    by_name = {r.name: r for _, r in parsed if getattr(r, "name", None)}
    by_name |= {str(r.id): r for _, r in parsed if getattr(r, "id", None)}
    paths_of = {id(r): p for p, r in parsed}
    compiled = {r.id: r for r in rules}
    out = []
    for path, corr in parsed:
        if not isinstance(corr, SigmaCorrelationRule):
            continue
        rid = str(corr.id) if corr.id else None
        try:
            if corr.errors:
                raise CorrelationError("; ".join(f"{type(e).__name__}: {e}" for e in corr.errors))
            bases = _resolve(corr, by_name, compiled, paths_of)
            kind = _type_name(corr)
            _condition(corr, kind, len(corr.referenced_rules))
        except CorrelationError as exc:
            errors.append(LoadError(path, f"correlation: {exc}", rid, corr.title))
            continue
        out.append(Correlation(corr, path, bases))
    return out, errors


def _resolve(corr: SigmaCorrelationRule, by_name: dict, compiled: dict, paths_of: dict) -> dict:
    from sigma.correlations import SigmaCorrelationRule

    refs = list(corr.rules or [])
    if not refs:
        raise CorrelationError("no rules referenced (extended conditions are not supported)")
    bases: dict[str, object] = {}
    for ref in refs + [r for alias in corr.aliases for r in alias.mapping]:
        target = by_name.get(ref.reference)
        if target is not None:
            ref.rule = target
            if isinstance(target, SigmaCorrelationRule):
                bases[ref.reference] = None
            else:  # the loader names a rule without an id "<file>#<title>"
                key = str(target.id) if target.id else f"{paths_of[id(target)]}#{target.title}"
                bases[ref.reference] = compiled.get(key)
        elif ref.reference in compiled:
            bases[ref.reference] = compiled[ref.reference]
        else:
            raise CorrelationError(f"references rule {ref.reference!r}, which is not loaded")
    corr.referenced_rules = refs
    return bases


def carry_key(c: Correlation) -> str:
    """What a job's state names a correlation's ``Carry`` by: its id, else its file and title."""
    rule = c.rule
    return str(rule.id) if rule.id else f"{c.path}#{rule.title}"


def evaluate(correlations: list[Correlation], matches: pl.DataFrame,
             carries: dict[str, Carry] | None = None) -> pl.DataFrame:
    """Alerts of every correlation over the hunt's match rows (one frame; ``rule.id`` names the base rule).

    Group-by and value fields are looked up through each base rule's field mapping (its targets), so a
    Sigma field such as ``TargetUserName`` finds ``user.name``. A correlation of correlations gets the
    alerts of the inner one. The result has the columns of ``correlate`` (group-by columns vary by rule,
    null elsewhere) and ``event.kind: alert``.
    """
    ids = list({c.rule_id(ref) for c in correlations for ref in c.bases})
    carried = carries is not None and any(c.rows is not None and c.rows.height for c in carries.values())
    if not carried and (not matches.height or not matches.select(pl.col("rule.id").is_in(ids).any()).item()):
        return _as_alerts(_empty([], {}), None)  # what each correlation gives without events of its rules
    correlations = parsed(correlations)
    done: dict[int, pl.DataFrame] = {}
    pending = list(correlations)
    while pending:
        ready = [c for c in pending if all(id(r) in done for r in _inner(c))]
        if not ready:
            raise CorrelationError("correlation rules reference each other in a cycle: "
                                   + ", ".join(c.rule.title for c in pending))
        for c in ready:
            carry = None if carries is None else carries.setdefault(carry_key(c), Carry())
            done[id(c.rule)] = correlate(c.rule, _frames(c, matches, done, carries is not None),
                                         _column_of(c, matches.columns), carry=carry)
            pending.remove(c)
    frames = [_as_alerts(f, c.rule) for c in correlations if (f := done[id(c.rule)]).height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else _as_alerts(_empty([], {}), None)


def _as_alerts(frame: pl.DataFrame, rule) -> pl.DataFrame:
    """The hunt's alert fields that a correlation alert has too (kind, severity, risk score, tags)."""
    from soc.sigma.loader import LEVELS, RISK

    level = rule.level.name.lower() if rule is not None and rule.level else "medium"
    tags = [f"{t.namespace}.{t.name}" for t in rule.tags] if rule is not None else []
    return frame.with_columns(pl.lit("alert").alias("event.kind"),
                              pl.lit(LEVELS.get(level, 3), pl.Int16).alias("event.severity"),
                              pl.lit(RISK.get(level, 47), pl.Int16).alias("event.risk_score"),
                              pl.lit(tags, pl.List(pl.String)).alias("tags"))


def parsed(correlations: list[Correlation]) -> list[Correlation]:
    """The correlations with their pySigma rules: those of a cached load (a ``Summary`` each) parsed again
    from their files, their references resolved among the same base rules."""
    if not any(isinstance(c.rule, Summary) for c in correlations):
        return correlations
    bases = {id(b): b for c in correlations for b in c.bases.values() if b is not None}
    fresh, _ = compile_correlations(list(dict.fromkeys(c.path for c in correlations)), list(bases.values()))
    return fresh


def _inner(c: Correlation) -> list:
    from sigma.correlations import SigmaCorrelationRule

    return [ref.rule for ref in c.rule.referenced_rules if isinstance(getattr(ref, "rule", None),
                                                                       SigmaCorrelationRule)]


def _frames(c: Correlation, matches: pl.DataFrame, done: dict, fresh: bool = False) -> dict[str, pl.DataFrame]:
    """The events of each rule ``c`` references; ``fresh`` (a job's run): of an inner correlation, the alerts
    whose trigger is new (the others were events of this one in an earlier run, and are carried)."""
    from sigma.correlations import SigmaCorrelationRule

    frames = {}
    for ref in c.rule.referenced_rules:
        rule = getattr(ref, "rule", None)
        if isinstance(rule, SigmaCorrelationRule):
            inner = done[id(rule)]
            frames[ref.reference] = (inner.filter(pl.col(FRESH)).drop(FRESH) if fresh and FRESH in inner.columns
                                     else inner)
        else:
            frames[ref.reference] = matches.filter(pl.col("rule.id") == c.rule_id(ref.reference))
    return frames


def _column_of(c: Correlation, columns: list[str]) -> Callable[[str, str], str | None]:
    def column_of(key: str, field_name: str) -> str | None:
        base = c.bases.get(key)
        for target in getattr(base, "targets", None) or []:
            col = target.resolve(field_name, columns)
            if col is not None:
                return col
        return field_name if field_name in columns else None

    return column_of
