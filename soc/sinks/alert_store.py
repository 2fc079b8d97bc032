"""The embedded default for alerts: an append-only Parquet store under ``DATA_DIR/alerts/``.

Each write adds one file (``alerts-<UTC time>-<random>.parquet``, written to a temporary name and renamed, so
a crash never leaves half a file) holding only the alerts whose ``event.id`` is not stored yet: running the
same hunt twice stores nothing new. Files are never rewritten. An append holds an exclusive lock on
``DATA_DIR/.alerts.lock`` from reading the known ids to renaming its file into place, so two processes appending the
same alerts at once store them once. Folder 0700, files 0600 (``soc.private``).

A scheduled job's alert may grow after it was stored (an attack still going on, more matches in its hour):
``upsert`` writes the fuller version in a later file and a reader takes the last version of an id (files sort
by their UTC time); an alert whose hits are gone is retracted by a row of its id with ``event.kind``
"retracted" (a tombstone, never shown). See ``soc.jobs.state``.
"""

from __future__ import annotations

import contextlib
import fcntl
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from soc.alerts.schema import conform, empty_alerts
from soc.private import make_dir, opener, writing

RETRACTED = "retracted"  # the event.kind of a tombstone (``AlertStore.upsert``)
# what a fuller version of an alert changes (``AlertStore.upsert`` compares these)
_CHANGING = ("@timestamp", "event.kind", "event.count", "event.start", "event.end", "event.severity",
             "event.risk_score", "evidence.values", "log.file.path", "log.offset", "log.line")


def _fingerprint() -> pl.Expr:
    return pl.struct([pl.col(c) for c in _CHANGING]).hash(seed=3)


def _scan(files: list[Path]) -> pl.LazyFrame:
    """The stored files as one frame of the alert schema: a file written before a column was added to the
    schema reads it as null (soc 0.x stores without ``evidence.*`` and ``related.*``)."""
    return pl.scan_parquet(files, schema=empty_alerts().schema, missing_columns="insert", extra_columns="ignore")


class AlertStore:
    def __init__(self, data_dir: str | Path):
        self.root = Path(data_dir) / "alerts"

    def files(self) -> list[Path]:
        return sorted(self.root.glob("alerts-*.parquet")) if self.root.is_dir() else []

    def ids(self) -> set[str]:
        files = self.files()
        if not files:
            return set()
        return set(_scan(files).select("event.id").collect().get_column("event.id").to_list())

    def known(self, ids: pl.Series) -> pl.Series:
        """Those of ``ids`` stored already: the stored ids are streamed past ``ids``, never all held (a set of
        every stored id cost ~100 bytes each)."""
        files = self.files()
        if not files:
            return ids.clear()
        return (_scan(files).select("event.id").filter(pl.col("event.id").is_in(ids.implode()))
                .collect(engine="streaming").get_column("event.id"))

    def append(self, alerts: pl.DataFrame) -> int:
        """Store the alerts not stored yet; return how many were new."""
        alerts = conform(alerts)
        if alerts.get_column("event.id").n_unique() < alerts.height:  # built alerts are unique: no copy of them
            alerts = alerts.unique("event.id", keep="first", maintain_order=True)
        if alerts.height == 0:
            return 0
        with self._locked():
            known = self.known(alerts.get_column("event.id"))
            if known.len():
                alerts = alerts.filter(~pl.col("event.id").is_in(known.implode()))
            if alerts.height == 0:
                return 0
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            with writing(self.root / f"alerts-{stamp}-{uuid.uuid4().hex[:8]}.parquet", self.root.parent) as tmp:
                alerts.write_parquet(tmp, compression="zstd")
        return alerts.height

    def upsert(self, alerts: pl.DataFrame, retracted: Iterable[str] = (), late: pl.DataFrame | None = None) -> int:
        """A job run's alert changes (``soc.jobs.state.AlertChanges``), in one file under the lock: ``alerts``
        stored where their id is new or its last version differs (a fuller alert), ``retracted`` ids marked gone
        (tombstones), ``late`` alerts stored only where their id is new. Replayed, it writes nothing: the same
        alerts are then the stored ones. Returns the alerts written (tombstones not counted)."""
        parts = []
        with self._locked():
            if alerts.height:
                alerts = conform(alerts)
                stored = self._latest(alerts.get_column("event.id"))
                if stored.height:
                    mine = stored.select("event.id", _fingerprint().alias("_old"))
                    alerts = alerts.with_columns(_fingerprint().alias("_new")).join(
                        mine, on="event.id", how="left", maintain_order="left")
                    alerts = alerts.filter(pl.col("_old").is_null() | (pl.col("_old") != pl.col("_new")))
                    alerts = alerts.drop("_old", "_new")
                parts.append(alerts)
            if late is not None and late.height:
                late = conform(late)
                known = self.known(late.get_column("event.id"))
                parts.append(late.filter(~pl.col("event.id").is_in(known.implode())))
            gone = sorted(set(retracted))
            if gone:
                stored = self._latest(pl.Series(gone, dtype=pl.String))
                gone = stored.filter(pl.col("event.kind") != RETRACTED).get_column("event.id").to_list()
                if gone:
                    parts.append(conform(pl.DataFrame({"event.id": gone, "event.kind": [RETRACTED] * len(gone)})))
            written = pl.concat(parts) if parts else empty_alerts()
            if written.height:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                with writing(self.root / f"alerts-{stamp}-{uuid.uuid4().hex[:8]}.parquet", self.root.parent) as tmp:
                    written.write_parquet(tmp, compression="zstd")
        return written.filter(pl.col("event.kind") != RETRACTED).height

    def _latest(self, ids: pl.Series) -> pl.DataFrame:
        """The last stored version (tombstones too) of each of ``ids`` that is stored."""
        files = self.files()
        if not files:
            return empty_alerts()
        return (_scan(files).filter(pl.col("event.id").is_in(ids.implode()))
                .unique("event.id", keep="last", maintain_order=True).collect())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across processes (released by the kernel if the process dies)."""
        make_dir(self.root)
        with open(self.root.parent / ".alerts.lock", "a", opener=opener) as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def scan(self) -> pl.LazyFrame:
        """Every stored alert: the last version of an id (``upsert``), retracted ones left out."""
        files = self.files()
        if not files:
            return empty_alerts().lazy()
        return (_scan(files).unique("event.id", keep="last", maintain_order=True)
                .filter(pl.col("event.kind").fill_null("alert") != RETRACTED))

    def query(self, since: datetime | None = None, until: datetime | None = None, rule: str | None = None,
              min_severity: int | None = None, entity: str | None = None, layer: str | None = None,
              agency: str | None = None, limit: int | None = None) -> pl.DataFrame:
        """Stored alerts filtered (``rule`` and ``agency`` are case-insensitive substrings; ``entity`` matches
        any entity column or ``related.*`` value exactly), newest first."""
        lf = self.scan()
        if since:
            lf = lf.filter(pl.col("event.end") >= since)
        if until:
            lf = lf.filter(pl.col("@timestamp") < until)
        if rule:
            needle = rule.lower()
            lf = lf.filter(pl.col("rule.id").str.to_lowercase().str.contains(needle, literal=True)
                           | pl.col("rule.name").str.to_lowercase().str.contains(needle, literal=True))
        if min_severity:
            lf = lf.filter(pl.col("event.severity") >= min_severity)
        if entity:
            cols = ("source.address", "destination.address", "user.name", "host.hostname")
            related = ("related.ip", "related.user", "related.hosts")  # e.g. an account a brute force tried
            lf = lf.filter(pl.any_horizontal([*[pl.col(c) == entity for c in cols],
                                              *[pl.col(c).list.contains(entity) for c in related]]).fill_null(False))
        if layer:
            lf = lf.filter(pl.col("labels.layer") == str(layer))
        if agency:
            lf = lf.filter(pl.col("organization.name").str.to_lowercase().str.contains(agency.lower(), literal=True))
        lf = lf.sort(["@timestamp", "event.id"], descending=[True, False])
        if limit:
            lf = lf.head(limit)
        return lf.collect()
