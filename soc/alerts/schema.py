"""The alert schema: ECS column names, their Polars types and their Elasticsearch (ECS core) types.

One alert = one rule on one entity in one aggregation window. ``@timestamp`` is the first hit (so a re-run
gives the same document and the same monthly index), ``event.start``/``event.end`` first and last seen,
``event.count`` the number of hits, ``log.*`` the first hit's raw record. ``evidence.values`` are the values
that made a detector's hits (the accounts tried, the ports, the hosts; up to ``EVIDENCE_VALUES``, those of the
first hits first) and ``evidence.field`` the field they are of; ECS ``related.ip``/``related.user``/
``related.hosts`` gather the alert's addresses, accounts and host or domain names, its entity's and its
evidence's, for pivoting (not ECS core: soc's own ``evidence`` object).
"""

from __future__ import annotations

import polars as pl

TS = pl.Datetime("us", "UTC")

# column -> (Polars type, Elasticsearch type)
ALERT_SCHEMA: dict[str, tuple[pl.DataType, str]] = {
    "@timestamp": (TS, "date"),
    "event.id": (pl.String, "keyword"),
    "event.kind": (pl.String, "keyword"),
    "event.severity": (pl.Int64, "long"),
    "event.risk_score": (pl.Float64, "float"),
    "event.count": (pl.Int64, "long"),
    "event.start": (TS, "date"),
    "event.end": (TS, "date"),
    "event.dataset": (pl.String, "keyword"),
    "rule.id": (pl.String, "keyword"),
    "rule.name": (pl.String, "keyword"),
    "rule.author": (pl.String, "keyword"),
    "threat.framework": (pl.String, "keyword"),
    "threat.technique.id": (pl.List(pl.String), "keyword"),
    "source.ip": (pl.String, "ip"),
    "source.address": (pl.String, "keyword"),
    "destination.ip": (pl.String, "ip"),
    "destination.address": (pl.String, "keyword"),
    "user.name": (pl.String, "keyword"),
    "host.hostname": (pl.String, "keyword"),
    "organization.id": (pl.String, "keyword"),
    "organization.name": (pl.String, "keyword"),
    "labels.severity": (pl.String, "keyword"),
    "labels.rule_level": (pl.String, "keyword"),
    "labels.layer": (pl.String, "keyword"),
    "labels.layer_name": (pl.String, "keyword"),
    "labels.security_level": (pl.String, "keyword"),
    "labels.system": (pl.String, "keyword"),
    "labels.owner": (pl.String, "keyword"),
    "labels.asset_match": (pl.String, "keyword"),
    "log.file.path": (pl.String, "keyword"),
    "log.line": (pl.Int64, "long"),
    "log.offset": (pl.Int64, "long"),
    "related.ip": (pl.List(pl.String), "ip"),
    "related.user": (pl.List(pl.String), "keyword"),
    "related.hosts": (pl.List(pl.String), "keyword"),
    "evidence.field": (pl.String, "keyword"),
    "evidence.values": (pl.List(pl.String), "keyword"),
}

ENTITY = ("source.ip", "destination.ip", "user.name", "host.hostname")
EVIDENCE_VALUES = 5  # evidence values an alert keeps
HIT_REQUIRED = ("@timestamp", "rule.id", "rule.name", "rule.level")


def empty_alerts() -> pl.DataFrame:
    return pl.DataFrame(schema={name: dtype for name, (dtype, _) in ALERT_SCHEMA.items()})


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with exactly the alert columns, in order and typed (missing ones null)."""
    return frame.select([
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, (dtype, _) in ALERT_SCHEMA.items()
    ])
