"""Which stored alerts an export takes: the ``soc alerts`` filters, then the sharing policy's selection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from soc.export.policy import SharingPolicy


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None       # last seen at or after
    until: datetime | None = None       # first seen before
    layer: str | None = None
    agency: str | None = None           # organization.name contains (case-insensitive)
    min_severity: int | None = None     # event.severity at least


def _utc(stamp: datetime | None) -> datetime | None:
    return stamp.replace(tzinfo=UTC) if stamp and stamp.tzinfo is None else stamp


def shared_alerts(data_dir: str | Path, policy: SharingPolicy, filters: Filters = Filters()) -> pl.DataFrame:
    """The stored alerts that the filters keep and the policy shares (routed to one of its layers, or at least
    its severity), oldest first (``@timestamp``, then ``event.id``: an export's order is stable)."""
    from soc.sinks.alert_store import AlertStore

    frame = AlertStore(data_dir).query(since=_utc(filters.since), until=_utc(filters.until), layer=filters.layer,
                                       agency=filters.agency, min_severity=filters.min_severity)
    shared = pl.col("labels.layer").is_in(sorted(policy.layers))
    if policy.min_severity is not None:
        shared = shared | (pl.col("event.severity") >= policy.min_severity)
    return frame.filter(shared.fill_null(False)).sort(["@timestamp", "event.id"])
