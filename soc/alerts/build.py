"""Hits -> alerts: aggregate repeated hits, give each alert a deterministic id, grade, enrich and route it.

A hit frame (from Sigma rules or detectors) has ``@timestamp``, ``rule.id``, ``rule.name``, ``rule.level`` and
optionally ``rule.author``, ``threat.technique.id``, the entity columns (``source.ip``, ``destination.ip``,
``user.name``, ``host.hostname``), ``event.count``, ``window.start``/``window.end`` and the record reference
(``event.dataset``, ``log.file.path``, ``log.line``, ``log.offset``). Everything is vectorised; Python only
runs once per distinct address or host name (enrichment) and once per alert (the id hash).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Callable, Iterable, Iterator

import polars as pl

from soc.alerts.inventory import Inventory
from soc.alerts.policy import Policy, load_policy
from soc.alerts.schema import ENTITY, EVIDENCE_VALUES, HIT_REQUIRED, TS, conform, empty_alerts

DEFAULT_WINDOW = "1h"
MERGE_ROWS = 1_000_000  # partial aggregates held before they are merged (``aggregate``)
SHARES = 8  # the keys' shares, aggregated and turned into alerts one at a time (``aggregate``)
ID_SLICE = 100_000  # alerts hashed at a time (``_alert_ids``)
ALERT_SLICE = 250_000  # alerts enriched and graded at a time (``build_alerts``)
SHARE_HITS = 500_000  # hits per share of a hunt's alerts, built, stored and delivered one at a time (``shares_for``)
_SEP = "\x1f"
HIT_COLUMNS = ("@timestamp", "rule.id", "rule.name", "rule.author", "rule.level", "threat.technique.id", *ENTITY,
               "event.count", "window.start", "window.end", "event.dataset", "log.file.path", "log.line",
               "log.offset", "labels.layer", "evidence.field", "evidence.values", "detector.excess")
# all that alerts are built from (``_normalise``): a reader's projection
_VALUES = pl.List(pl.String)


def build_alerts(hits: pl.DataFrame | Iterable[pl.DataFrame], policy: Policy | None = None,
                 inventory: Inventory | None = None, window: str = DEFAULT_WINDOW,
                 share: tuple[int, int] | None = None) -> pl.DataFrame:
    """One alert per rule, entity and ``window`` (a Polars duration such as ``1h``, aligned on the epoch).

    Call it once with all the hits of a hunt: an alert's count covers the hits it was given. ``hits`` may be
    one frame or batches of it (e.g. read back from a hunt's matches file): the batches are aggregated one by
    one, so memory follows the alerts, not the hits, and the alerts are the same as from one frame.
    ``share=(k, n)``: only the alerts of share ``k`` of ``n`` (a hash of the alert's keys), see ``alert_shares``.
    """
    policy = policy or load_policy()
    return alerts_of_groups(aggregate([hits] if isinstance(hits, pl.DataFrame) else hits, window, share), policy,
                            inventory)


def alerts_of_groups(groups: list[pl.DataFrame], policy: Policy | None = None,
                     inventory: Inventory | None = None) -> pl.DataFrame:
    """The alerts of aggregated hits (``aggregate``, or partial aggregates of the same keys ``merge``d: a job
    keeps them between its runs, ``soc.jobs.state``); ``groups`` is emptied."""
    policy = policy or load_policy()
    if not groups:
        return empty_alerts()
    # the ids and the order come from the compact aggregates; the alerts are then made in order, a slice at
    # a time, so no step holds the alerts twice (a sort of the finished alerts did)
    state = pl.concat([g.with_columns(_alert_ids(g).alias("event.id")) for g in groups], rechunk=False)
    groups.clear()
    order = state.select(pl.arg_sort_by(["@timestamp", "event.id"])).to_series()  # unique: one order
    done = []
    for start in range(0, len(order), ALERT_SLICE):
        part = state[order.slice(start, ALERT_SLICE)].with_columns(pl.col(c).cast(pl.String) for c in _CATEGORICAL)
        graded = _grade(_related(_enrich(part, inventory)), policy)
        alerts = conform(graded.with_columns(pl.lit("alert").alias("event.kind")))
        done.append(alerts.with_columns(_shared(alerts.get_column(c)) for c in _SHARED))
    del state
    return pl.concat(done, rechunk=False)  # one chunk would cost the alerts twice over, at the peak


def shares_for(hits: int) -> int:
    """How many shares a hunt of ``hits`` hits builds its alerts in: one per ``SHARE_HITS`` (one for a small
    hunt: no extra pass over its hits)."""
    return max(1, -(-hits // SHARE_HITS))


def alert_shares(hits: Callable[[], Iterable[pl.DataFrame]], shares: int, policy: Policy | None = None,
                 inventory: Inventory | None = None, window: str = DEFAULT_WINDOW) -> Iterator[pl.DataFrame]:
    """The alerts of ``build_alerts(hits())``, one share of the keys at a time (``hits()`` is read once per
    share, each pass keeping only that share's hits): the caller stores and sends a share and lets it go
    before the next is built, so memory follows the alerts of one share, not all. Each alert is exactly the
    one ``build_alerts`` makes (an alert's hits are all in its share); the order is per share."""
    policy = policy or load_policy()
    for k in range(shares):
        alerts = build_alerts(hits(), policy, inventory, window, None if shares == 1 else (k, shares))
        if alerts.height:
            yield alerts
        del alerts


def _shared(column: pl.Series) -> pl.Series:
    """The same strings, each distinct one stored once and its rows pointing at it: a column of few values
    (rule, file, layer name) then costs 16 bytes a row, not its text (a cast from Categorical writes every
    row's own copy: ~45 MB more per such column and 2 M alerts)."""
    codes = column.cast(pl.Categorical)
    values = codes.unique().drop_nulls()
    if values.is_empty():
        return column
    at = codes.to_physical().replace_strict(values.to_physical(), pl.Series(range(len(values)), dtype=pl.UInt32),
                                            default=None, return_dtype=pl.UInt32)
    return values.cast(pl.String).gather(at).alias(column.name)


def _col(hits: pl.DataFrame, name: str, dtype: pl.DataType, default=None) -> pl.Expr:
    if name in hits.columns:
        expr = pl.col(name).cast(dtype)
        return (expr if default is None else expr.fill_null(default)).alias(name)
    return pl.lit(default, dtype).alias(name)


def _normalise(hits: pl.DataFrame) -> pl.DataFrame:
    ts = pl.col("@timestamp").cast(TS)
    technique = (pl.col("threat.technique.id").cast(pl.List(pl.String)).fill_null([])
                 if "threat.technique.id" in hits.columns else pl.lit([], pl.List(pl.String)))
    frame = hits.select(
        ts.alias("@timestamp"),
        pl.col("rule.id").cast(pl.String),
        pl.col("rule.name").cast(pl.String),
        _col(hits, "rule.author", pl.String),
        pl.col("rule.level").cast(pl.String).str.to_lowercase().alias("rule.level"),
        technique.alias("threat.technique.id"),
        *[_col(hits, c, pl.String).alias(c) for c in ENTITY],
        _col(hits, "event.count", pl.Int64, 1).alias("event.count"),
        _col(hits, "window.start", TS).alias("window.start"),
        _col(hits, "window.end", TS).alias("window.end"),
        _col(hits, "event.dataset", pl.String).alias("event.dataset"),
        _col(hits, "log.file.path", pl.String).alias("log.file.path"),
        _col(hits, "log.line", pl.Int64).alias("log.line"),
        _col(hits, "log.offset", pl.Int64).alias("log.offset"),
        _col(hits, "labels.layer", pl.Int64).alias("_layer"),  # a detector's own routing (spec ``layer:``)
        _col(hits, "evidence.field", pl.String).alias("evidence.field"),
        _col(hits, "detector.excess", pl.Float64).alias("_excess"),
        (pl.col("evidence.values").cast(_VALUES).fill_null(pl.lit([], _VALUES)) if "evidence.values" in hits.columns
         else pl.lit([], _VALUES)).alias("evidence.values"),
    )
    # empty entity strings are no entity; a hit without a timestamp cannot be placed in a window
    frame = frame.with_columns([pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c)).alias(c)
                                for c in ENTITY])
    bad = frame.filter(pl.col("@timestamp").is_null() | pl.col("rule.id").is_null())
    if bad.height:
        raise ValueError(f"{bad.height} hit(s) have no @timestamp or no rule.id")
    return frame.with_columns(pl.col("event.count").clip(lower_bound=1))


def aggregate(batches: Iterable[pl.DataFrame], window: str, only: tuple[int, int] | None = None) -> list[pl.DataFrame]:
    """The hits of ``batches`` aggregated per rule, entity and window, in up to ``SHARES`` frames (a hash of
    the keys picks a group's share; none: no hit). Each batch is aggregated alone; a share's partial
    aggregates are merged whenever they hold more than ``MERGE_ROWS / SHARES`` rows and twice its last
    merge: at most about twice the number of alerts is held, however many the hits, and a merge copies one
    share, not all. Repeated strings (rule, dataset, file) are held as Categorical. ``only=(k, n)``: the hits
    of the keys' share ``k`` of ``n`` only (another hash than the shares above, so that they stay spread)."""
    parts: list[list[pl.DataFrame]] = [[] for _ in range(SHARES)]
    rows, merged = [0] * SHARES, [0] * SHARES
    for batch in batches:
        missing = [c for c in HIT_REQUIRED if c not in batch.columns]
        if missing:
            raise ValueError(f"hit frame lacks the column(s) {', '.join(missing)}")
        if batch.height == 0:
            continue
        frame = _normalise(batch)
        if only is not None:
            keys = pl.struct(*_KEYS[:-1], pl.col("@timestamp").dt.truncate(window).alias("_bucket"))
            frame = frame.filter(keys.hash(seed=29) % only[1] == only[0])
            if frame.height == 0:
                continue
        grouped = _aggregate(frame, window)
        share = (pl.struct(_KEYS).hash(seed=17) % SHARES).alias("_share")
        for (i,), piece in grouped.with_columns(share).partition_by("_share", as_dict=True,
                                                                     include_key=False).items():
            parts[i].append(piece)
            rows[i] += piece.height
            if len(parts[i]) > 1 and rows[i] > max(MERGE_ROWS // SHARES, 2 * merged[i]):
                parts[i] = [_merge(pl.concat(parts[i]))]
                rows[i] = merged[i] = parts[i][0].height
    out = []
    for i in range(SHARES):  # one share at a time, its partials let go as it is merged
        ps, parts[i] = parts[i], []
        if ps:
            out.append(ps[0] if len(ps) == 1 else _merge(pl.concat(ps)))
        del ps
    return out


_KEYS = ["rule.id", *ENTITY, "_bucket"]
_FIRST = ("rule.name", "rule.author", "rule.level", "threat.technique.id", "event.dataset", "log.file.path",
          "log.line", "log.offset", "_layer", "evidence.field")  # the first hit's (by time, then its record)
# the hits' evidence values, those of the first hits first, each once, at most EVIDENCE_VALUES
_EVIDENCE = (pl.col("evidence.values").explode().drop_nulls().unique(maintain_order=True).head(EVIDENCE_VALUES)
             .alias("evidence.values"))
_ORDER = ["log.file.path", "log.offset", "log.line"]  # ties of time: the record decides (then the input order)
_CATEGORICAL = ("rule.id", "rule.name", "rule.author", "rule.level", "event.dataset", "log.file.path")
_SHARED = ("rule.id", "rule.name", "rule.author", "event.dataset", "log.file.path", "labels.layer_name",
           "organization.name", "labels.system", "labels.owner")  # alert columns of few, long values


def _aggregate(frame: pl.DataFrame, window: str) -> pl.DataFrame:
    frame = frame.with_columns(pl.col("@timestamp").dt.truncate(window).alias("_bucket")).sort(
        ["@timestamp", *_ORDER], nulls_last=True, maintain_order=True)
    return frame.group_by(_KEYS, maintain_order=True).agg(
        pl.col("@timestamp").min().alias("_first_hit"),
        pl.coalesce("window.start", "@timestamp").min().alias("event.start"),
        pl.coalesce("window.end", "@timestamp").max().alias("event.end"),
        pl.col("event.count").sum().alias("event.count"),
        *[pl.col(c).first() for c in _FIRST], _EVIDENCE, pl.col("_excess").max(),
    ).with_columns(pl.col("event.start").alias("@timestamp"), *[pl.col(c).cast(pl.Categorical) for c in _CATEGORICAL])


def group_keys(groups: pl.DataFrame) -> pl.DataFrame:
    """The keys of aggregated hits (rule, entity, window) and the alert id each has."""
    return groups.select(*_KEYS).with_columns(_alert_ids(groups).alias("event.id"))


KEYS = tuple(_KEYS)


def merge(parts: pl.DataFrame) -> pl.DataFrame:
    """Partial aggregates (``aggregate``) of the same keys as one per key: the same as aggregating all their
    hits at once (see ``_merge``)."""
    return _merge(parts)


def _merge(parts: pl.DataFrame) -> pl.DataFrame:
    """Partial aggregates of the same keys as one: a partial's first hit is its row's (``_first_hit`` and its
    record), so sorting the partials the way ``_aggregate`` sorts hits picks the same first hit."""
    order = [pl.col(c).cast(pl.String) if c in _CATEGORICAL else pl.col(c) for c in ["_first_hit", *_ORDER]]
    parts = parts.sort(order, nulls_last=True, maintain_order=True)  # by text, as ``_aggregate``
    return parts.group_by(_KEYS, maintain_order=True).agg(
        pl.col("_first_hit").min(),
        pl.col("event.start").min(),
        pl.col("event.end").max(),
        pl.col("event.count").sum(),
        *[pl.col(c).first() for c in _FIRST], _EVIDENCE, pl.col("_excess").max(),
    ).with_columns(pl.col("event.start").alias("@timestamp"))


def _valid_ips(values: pl.Series) -> set[str]:
    valid = set()
    for value in values.drop_nulls().unique().to_list():
        try:
            ipaddress.ip_address(value)
            valid.add(value)
        except ValueError:
            pass
    return valid


def _enrich(frame: pl.DataFrame, inventory: Inventory | None) -> pl.DataFrame:
    """Addresses checked (a non-IP goes to ``*.address`` only), then the asset of host, destination or source."""
    out = frame
    for side in ("source", "destination"):
        col = f"{side}.ip"
        valid = list(_valid_ips(frame.get_column(col)))
        out = out.with_columns(pl.col(col).alias(f"{side}.address"),
                               pl.when(pl.col(col).is_in(valid)).then(pl.col(col)).otherwise(None).alias(col))
    if inventory is None or not inventory.assets:
        return out.with_columns(pl.lit(None, pl.Int64).alias("_asset"),
                                pl.lit(None, pl.String).alias("labels.asset_match"))
    lookups = []
    for col, match in (("host.hostname", inventory.match_host), ("destination.ip", inventory.match_ip),
                       ("source.ip", inventory.match_ip)):
        uniq = out.get_column(col).drop_nulls().unique().to_list()
        table = {v: i for v in uniq if (i := match(v)) is not None}
        lookups.append((col, pl.col(col).replace_strict(table, default=None, return_dtype=pl.Int64) if table
                        else pl.lit(None, pl.Int64)))
    asset = pl.coalesce([expr for _, expr in lookups])
    matched = pl.coalesce([pl.when(expr.is_not_null()).then(pl.lit(col)) for col, expr in lookups])
    out = out.with_columns(asset.alias("_asset"), matched.alias("labels.asset_match"))
    table = pl.DataFrame({
        "_asset": list(range(len(inventory.assets))),
        "organization.name": [a.agency for a in inventory.assets],
        "organization.id": [a.agency_id for a in inventory.assets],
        "labels.system": [a.system for a in inventory.assets],
        "_level": [a.security_level for a in inventory.assets],
        "labels.owner": [a.owner for a in inventory.assets],
    }, schema_overrides={"_asset": pl.Int64, "_level": pl.Int64, "organization.id": pl.String,
                         "labels.system": pl.String, "labels.owner": pl.String})
    return out.join(table, on="_asset", how="left", maintain_order="left")


def evidence_kind(field: str | None) -> str | None:
    """What the values of an evidence field are for ECS ``related.*``: ``ip``, ``user``, ``hosts`` or None."""
    if not field:
        return None
    if field.endswith(".ip") or field in ("ip", "IpAddress"):
        return "ip"
    if field.endswith(("user.name", "user.id")) or field in ("TargetUserName", "SubjectUserName"):
        return "user"
    if field.endswith((".domain", "hostname", "registered_domain")) or field == "dns.question.name":
        return "hosts"
    return None


def _related(frame: pl.DataFrame) -> pl.DataFrame:
    """ECS ``related.ip``/``related.user``/``related.hosts``: the alert's entity (addresses already checked by
    ``_enrich``) and its evidence values of that kind (addresses checked here: the ES field is of type ip).

    Most alerts (every Sigma one) have no evidence of a kind and at most one address: their lists are their
    entity columns' values, made without Polars' list operations (``list.unique`` and a ``concat_list`` of two
    columns cost ~0.4-1 us a row: 0.8 of the 1.8 CPU s of delivering the 131 k alerts of 1 M NXLog lines). Only
    the other rows take the general way (``_related_of``), then are put back in place."""
    kinds = {f: evidence_kind(f) for f in frame.get_column("evidence.field").drop_nulls().unique().to_list()}
    fields = [f for f, k in kinds.items() if k is not None]
    ip, dst = pl.col("source.ip"), pl.col("destination.ip")
    general = pl.col("evidence.field").is_in(fields).fill_null(False) | (ip != dst).fill_null(False)
    mask = frame.select(general).to_series()
    values = pl.col("evidence.values")
    evidence = pl.when(values.list.len() > 0).then(values).otherwise(None).alias("evidence.values")
    one = {"related.ip": pl.coalesce(ip, dst), "related.user": pl.col("user.name"),
           "related.hosts": pl.col("host.hostname")}
    simple = [pl.when(e.is_not_null()).then(pl.concat_list(e)).otherwise(None).alias(n) for n, e in one.items()]
    if not mask.any():
        return frame.with_columns(*simple, evidence)
    if mask.all():
        return _related_of(frame, kinds)
    rest = frame.select(*simple).filter(~mask)
    some = _related_of(frame.filter(mask), kinds).select(rest.columns)
    stacked = pl.concat([rest, some], rechunk=True)  # gathered from one chunk: ~10x faster than from two
    at = pl.select(pl.when(mask).then(rest.height + mask.cum_sum() - 1).otherwise((~mask).cum_sum() - 1)
                   .cast(pl.UInt32)).to_series()  # row i of the frame is row at[i] of ``stacked``
    return frame.with_columns(*[stacked.get_column(n).gather(at) for n in rest.columns], evidence)


def _related_of(frame: pl.DataFrame, kinds: dict[str, str | None]) -> pl.DataFrame:
    """``_related`` of alerts with evidence of a kind: entity and evidence values joined, each once, in order."""
    values = pl.col("evidence.values").fill_null(pl.lit([], _VALUES))

    def of(kind: str) -> pl.Expr:
        fields = [f for f, k in kinds.items() if k == kind]
        whole = values.list.eval(pl.element().filter(~pl.element().str.ends_with("\u2026")))  # not cut ones
        return pl.when(pl.col("evidence.field").is_in(fields)).then(whole).otherwise(pl.lit([], _VALUES))

    ips = frame.select(of("ip").explode().drop_nulls().unique()).to_series()
    valid = list(_valid_ips(ips))
    parts = {"ip": [pl.col("source.ip"), pl.col("destination.ip"),
                    of("ip").list.eval(pl.element().filter(pl.element().is_in(valid)))],
             "user": [pl.col("user.name"), of("user")],
             "hosts": [pl.col("host.hostname"), of("hosts")]}
    out = []
    for kind, exprs in parts.items():
        joined = pl.concat_list(exprs).list.drop_nulls().list.unique(maintain_order=True)
        out.append(pl.when(joined.list.len() > 0).then(joined).otherwise(None).alias(f"related.{kind}"))
    return frame.with_columns(*out, pl.when(values.list.len() > 0).then(values).otherwise(None)
                              .alias("evidence.values"))


def _grade(frame: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """Severity (with the security-level floor), risk score and the 4-layer routing tag (the policy's, unless
    the hit names its own layer)."""
    if "_level" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.Int64).alias("_level"))
    base = pl.col("rule.level").replace_strict(policy.severity, default=policy.severity["medium"],
                                               return_dtype=pl.Int64)
    floor = pl.col("_level").replace_strict(policy.floor, default=1, return_dtype=pl.Int64)
    frame = frame.with_columns(pl.max_horizontal(base, floor).alias("event.severity"))
    by_severity = {sev: policy.risk[name] for name, sev in policy.severity.items()}
    names = {sev: name for name, sev in policy.severity.items()}
    bonus = pl.col("_level").replace_strict(policy.risk_bonus, default=0, return_dtype=pl.Int64)
    count_bonus = (pl.col("event.count").cast(pl.Float64).log(2) * policy.count_per_doubling).clip(
        upper_bound=policy.count_max)
    # how far a detector's statistic went past its threshold (the most of the alert's hits; none for Sigma)
    excess_bonus = (pl.col("_excess").clip(lower_bound=1.0).log(2) * policy.excess_per_doubling).clip(
        upper_bound=policy.excess_max).fill_null(0.0) if "_excess" in frame.columns else pl.lit(0.0)
    risk = (pl.col("event.severity").replace_strict(by_severity, return_dtype=pl.Float64) + bonus + count_bonus
            + excess_bonus)
    layer = pl.lit(policy.default_layer)
    for route in reversed(policy.routes):
        cond = ((pl.col("event.severity") >= route.min_severity) & (pl.col("event.severity") <= route.max_severity)
                & (pl.col("_level").fill_null(0) >= route.min_security_level))
        if route.known_asset is not None:
            cond = cond & (pl.col("_asset").is_not_null() == route.known_asset)
        layer = pl.when(cond).then(pl.lit(route.layer)).otherwise(layer)
    if "_layer" in frame.columns:  # a detector's spec names its layer: it wins over the policy's routing
        layer = pl.coalesce(pl.col("_layer"), layer)
    return frame.with_columns(
        risk.clip(0, 100).round(1).alias("event.risk_score"),
        pl.col("event.severity").replace_strict(names, return_dtype=pl.String).alias("labels.severity"),
        pl.col("rule.level").alias("labels.rule_level"),
        layer.cast(pl.String).alias("labels.layer"),
        layer.replace_strict({k: v for k, v in policy.layers.items()}, return_dtype=pl.String)
        .alias("labels.layer_name"),
        pl.col("_level").cast(pl.String).alias("labels.security_level"),
        pl.when(pl.col("threat.technique.id").list.len() > 0).then(pl.lit("MITRE ATT&CK")).otherwise(None)
        .alias("threat.framework"),
    )


def _alert_ids(frame: pl.DataFrame) -> pl.Series:
    """sha256 of rule id, the entity (as given, before IP checks: the aggregates' own values) and the window
    start: stable across runs."""
    key = pl.concat_str([pl.col("rule.id").cast(pl.String), *[pl.col(c).fill_null("") for c in ENTITY],
                         pl.col("_bucket").dt.epoch("us").cast(pl.String)], separator=_SEP)
    out = []
    for start in range(0, frame.height, ID_SLICE):  # a slice at a time: never every key as a Python string
        keys = frame.slice(start, ID_SLICE).select(key.alias("k")).get_column("k").to_list()
        out.append(pl.Series([hashlib.sha256(k.encode("utf-8", "surrogatepass")).hexdigest()[:32] for k in keys],
                             dtype=pl.String))
    return pl.concat(out) if out else pl.Series(dtype=pl.String)


def log2_bonus(count: int, per_doubling: float, most: float) -> float:
    """The count part of the risk score (the same formula as ``_grade``, for tests and documentation)."""
    return min(most, math.log2(max(count, 1)) * per_doubling)
