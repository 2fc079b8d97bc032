"""Hits -> alerts -> the embedded store, then Elasticsearch when configured: the last stage of a hunt.

The store comes first, so a failing Elasticsearch never costs an alert: it is reported (``Delivery.error``)
and the alerts can be sent later with ``soc es index`` (or ``soc es replay`` for the dead-lettered ones).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import polars as pl

from soc.alerts import build_alerts, load_inventory, load_policy
from soc.alerts.build import alert_shares, shares_for
from soc.alerts.schema import empty_alerts
from soc.config import Config
from soc.sinks.alert_store import AlertStore


@dataclass
class Delivery:
    alerts: pl.DataFrame | None  # the alerts, when built in one share (None: built and let go share by share)
    stored: int              # new in the embedded store
    index: object = None     # elasticsearch.IndexReport when indexed
    error: str | None = None  # why Elasticsearch could not be used
    count: int = 0           # alerts built


def deliver(hits: pl.DataFrame | Iterable[pl.DataFrame] | Callable[[], Iterable[pl.DataFrame]], cfg: Config,
            to_es: bool | None = None, rows: int | None = None) -> Delivery:
    """Build the alerts of ``hits``, store them, and index them if ``to_es`` (default: when a URL is set).

    ``hits`` is a frame or batches (``build_alerts``), or a function giving the batches afresh with ``rows``
    the number of hits: the alerts are then built, stored and sent one share of their keys at a time
    (``alert_shares``, ``shares_for(rows)`` of them), so a hunt's memory follows one share's alerts."""
    policy = load_policy(cfg.alerts.policy)
    inventory = load_inventory(cfg.alerts.inventory) if cfg.alerts.inventory else None
    if callable(hits):
        shares = shares_for(rows or 0)
        parts = alert_shares(hits, shares, policy, inventory, cfg.alerts.window)
    else:
        shares = 1
        parts = iter([build_alerts(hits, policy, inventory, cfg.alerts.window)])
    if to_es is None:
        to_es = bool(cfg.elasticsearch.url)
    store = AlertStore(cfg.data_dir)
    result = Delivery(None, 0)
    client = None
    for alerts in parts:
        result.count += alerts.height
        result.stored += store.append(alerts)
        if shares == 1:
            result.alerts = alerts
        if to_es and alerts.height and result.error is None:  # after an error the rest waits in the store
            if client is None:
                client, result.error = _es_client(cfg)
            if client is not None:
                report, result.error = _es_index(client, alerts, cfg)
                result.index = _add(result.index, report)
        del alerts
    if result.alerts is None and shares == 1:
        result.alerts = empty_alerts()
    return result


def index_stored(alerts: pl.DataFrame, cfg: Config):
    """Index ``alerts`` into Elasticsearch; ``(IndexReport | None, error | None)``, never raising for the server."""
    client, error = _es_client(cfg)
    return (None, error) if client is None else _es_index(client, alerts, cfg)


def _es_client(cfg: Config):
    """``(client, None)`` ready to index (set up), or ``(None, error)``."""
    from soc.sinks import elasticsearch as es

    try:
        client = es.connect(cfg.elasticsearch)
        es.ensure_setup(client, cfg.elasticsearch)
    except es.ESError as exc:
        return None, str(exc)
    return client, None


def _es_index(client, alerts: pl.DataFrame, cfg: Config):
    from soc.sinks import elasticsearch as es

    report = es.index_alerts(client, alerts, cfg.data_dir, cfg.elasticsearch)
    return report, report.error


def _add(total, report):
    """Two shares' IndexReports as one."""
    if total is None:
        return report
    for name in ("sent", "indexed", "duplicates", "dead", "seconds"):
        setattr(total, name, getattr(total, name) + getattr(report, name))
    for reason, n in report.reasons.items():
        total.reasons[reason] = total.reasons.get(reason, 0) + n
    total.error = total.error or report.error
    return total
