"""Hits -> alerts -> the embedded store, then Elasticsearch when configured: the last stage of a hunt.

The store comes first, so a failing Elasticsearch never costs an alert: it is reported (``Delivery.error``)
and the alerts can be sent later with ``soc es index`` (or ``soc es replay`` for the dead-lettered ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from soc.alerts import build_alerts, load_inventory, load_policy
from soc.config import Config
from soc.sinks.alert_store import AlertStore


@dataclass
class Delivery:
    alerts: pl.DataFrame
    stored: int              # new in the embedded store
    index: object = None     # elasticsearch.IndexReport when indexed
    error: str | None = None  # why Elasticsearch could not be used


def deliver(hits: pl.DataFrame | Iterable[pl.DataFrame], cfg: Config, to_es: bool | None = None) -> Delivery:
    """Build the alerts of ``hits`` (a frame, or batches: ``build_alerts``), store them, and index them if
    ``to_es`` (default: when a URL is set)."""
    policy = load_policy(cfg.alerts.policy)
    inventory = load_inventory(cfg.alerts.inventory) if cfg.alerts.inventory else None
    alerts = build_alerts(hits, policy, inventory, cfg.alerts.window)
    result = Delivery(alerts, AlertStore(cfg.data_dir).append(alerts))
    if to_es is None:
        to_es = bool(cfg.elasticsearch.url)
    if to_es and alerts.height:
        result.index, result.error = index_stored(alerts, cfg)
    return result


def index_stored(alerts: pl.DataFrame, cfg: Config):
    """Index ``alerts`` into Elasticsearch; ``(IndexReport | None, error | None)``, never raising for the server."""
    from soc.sinks import elasticsearch as es

    try:
        client = es.connect(cfg.elasticsearch)
        es.ensure_setup(client, cfg.elasticsearch)
    except es.ESError as exc:
        return None, str(exc)
    report = es.index_alerts(client, alerts, cfg.data_dir, cfg.elasticsearch)
    return report, report.error
