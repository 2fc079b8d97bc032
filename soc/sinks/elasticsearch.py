"""Alerts to Elasticsearch, with no loss and no duplicates whatever fails.

- ``setup``: a component template with the ECS core types of the alert schema and an index template for
  ``<prefix>-*`` (nothing else: no ingest pipelines, ILM or data streams, so a minimal server works).
- ``index_alerts``: ``streaming_bulk`` with ``op_type=create`` and the alert's deterministic id as ``_id``,
  into ``<prefix>-YYYY.MM`` from the alert's own ``@timestamp``. 201 = indexed, 409 = already indexed (a re-run);
  429 and 5xx are retried with exponential back-off; anything else (a mapping rejection, the server going away)
  goes to an append-only NDJSON dead-letter file with its reason. Every alert ends up in exactly one of
  indexed / already indexed / dead-lettered.
- ``replay``: re-sends the dead-letter file(s); what fails again is dead-lettered again.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from soc.alerts.schema import ALERT_SCHEMA
from soc.config import ESConfig

RETRY_STATUS = (429, 500, 502, 503, 504)
DEAD_LETTER = "es_dead_letters.ndjson"


class ESError(RuntimeError):
    """Elasticsearch cannot be used (unreachable, credentials refused, ...): one clear sentence."""


@dataclass
class IndexReport:
    sent: int = 0
    indexed: int = 0
    duplicates: int = 0      # 409: already indexed (a re-run of the same hunt)
    dead: int = 0            # written to the dead-letter file
    seconds: float = 0.0
    error: str | None = None  # set when the run stopped early (e.g. the server went away)
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("sent", "indexed", "duplicates", "dead", "seconds", "error",
                                              "reasons")}


# -- connection ---------------------------------------------------------------------------------------------

def make_client(cfg: ESConfig):
    """The official client for ``cfg`` (TLS verification on unless the configuration turns it off)."""
    from elasticsearch import Elasticsearch

    if not cfg.url:
        raise ESError("no Elasticsearch URL configured (set SOC_ES_URL or [elasticsearch] url in soc.toml)")
    kwargs: dict = {"request_timeout": cfg.timeout, "max_retries": 2, "retry_on_timeout": True,
                    "retry_on_status": RETRY_STATUS}
    if cfg.url.startswith("https"):
        kwargs["verify_certs"] = cfg.verify_certs
        if cfg.ca_certs:
            kwargs["ca_certs"] = cfg.ca_certs
        if not cfg.verify_certs:
            kwargs["ssl_show_warn"] = False
    if cfg.api_key:
        kwargs["api_key"] = cfg.api_key
    elif cfg.username or cfg.password:
        kwargs["basic_auth"] = (cfg.username or "elastic", cfg.password or "")
    try:
        return Elasticsearch(cfg.url, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ESError(f"invalid Elasticsearch URL {cfg.url!r}: {exc}") from None


def explain(exc: Exception, url: str | None) -> str:
    """One sentence for an exception of the client."""
    from elastic_transport import ConnectionError as TransportConnectionError
    from elastic_transport import ConnectionTimeout, TlsError
    from elasticsearch import ApiError, AuthenticationException, AuthorizationException, UnsupportedProductError

    if isinstance(exc, TlsError):
        return (f"TLS verification of {url} failed ({_short(exc)}): give its CA with SOC_ES_CA_CERTS or "
                "[elasticsearch] ca_certs")
    if isinstance(exc, ConnectionTimeout):
        return f"Elasticsearch at {url} did not answer in time ({_short(exc)})"
    if isinstance(exc, TransportConnectionError):
        return f"cannot connect to Elasticsearch at {url} ({_short(exc)}): is it running and is the URL right?"
    if isinstance(exc, AuthenticationException):
        return (f"Elasticsearch at {url} rejected the credentials (401): check the API key or user name and "
                "password (SOC_ES_API_KEY, SOC_ES_USERNAME, SOC_ES_PASSWORD)")
    if isinstance(exc, AuthorizationException):
        return f"Elasticsearch at {url} refused the request (403): the user lacks a privilege ({_short(exc)})"
    if isinstance(exc, UnsupportedProductError):
        return f"the server at {url} is not Elasticsearch (or not a supported version): {_short(exc)}"
    if isinstance(exc, ApiError):
        return f"Elasticsearch at {url} answered {exc.status_code} ({_short(exc)}): is the URL right?"
    return f"Elasticsearch at {url}: {type(exc).__name__}: {_short(exc)}"


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "message", "") or exc)
    return text if len(text) <= 300 else text[:300] + "..."


def connect(cfg: ESConfig):
    """A client that has answered ``GET /_cluster/health`` (the minimal server has no ``GET /``)."""
    client = make_client(cfg)
    try:
        client.cluster.health()
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear ESError
        raise ESError(explain(exc, cfg.url)) from None
    return client


# -- templates ------------------------------------------------------------------------------------------------

def mappings() -> dict:
    """The ECS core types of the alert schema as nested ``properties``; other strings become keywords."""
    props: dict = {}
    for name, (_, es_type) in ALERT_SCHEMA.items():
        node = props
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[leaf] = {"type": es_type, **({"ignore_above": 1024} if es_type == "keyword" else {})}
    return {"dynamic": True, "date_detection": False,
            "dynamic_templates": [{"strings_as_keyword": {"match_mapping_type": "string",
                                                          "mapping": {"type": "keyword", "ignore_above": 1024}}}],
            "properties": props}


def setup(client, cfg: ESConfig) -> list[str]:
    """Create or update the component and index templates; return their names."""
    component, template = f"{cfg.index_prefix}-ecs", cfg.index_prefix
    try:
        client.cluster.put_component_template(name=component, template={"mappings": mappings()},
                                              meta={"description": "soc alerts: ECS core types"})
        client.indices.put_index_template(
            name=template, index_patterns=[f"{cfg.index_prefix}-*"], composed_of=[component], priority=200,
            template={"settings": {"number_of_shards": 1, "number_of_replicas": cfg.replicas,
                                   "refresh_interval": "5s"}},
            meta={"description": "soc alerts, one index per month (<prefix>-YYYY.MM)"})
    except Exception as exc:  # noqa: BLE001
        raise ESError(explain(exc, cfg.url)) from None
    return [component, template]


def ensure_setup(client, cfg: ESConfig) -> None:
    try:
        exists = client.indices.exists_index_template(name=cfg.index_prefix)
    except Exception as exc:  # noqa: BLE001
        raise ESError(explain(exc, cfg.url)) from None
    if not exists:
        setup(client, cfg)


# -- documents ------------------------------------------------------------------------------------------------

def documents(alerts: pl.DataFrame, prefix: str) -> tuple[list[str], list[str], list[str]]:
    """Index names, ids and JSON sources of ``alerts`` (serialised by Polars, not per row in Python)."""
    if alerts.height == 0:
        return [], [], []
    for col in ("@timestamp", "event.id"):
        if col not in alerts.columns:
            raise ValueError(f"alerts lack the column {col}")
    indices = alerts.select(pl.col("@timestamp").dt.convert_time_zone("UTC").dt.strftime(f"{prefix}-%Y.%m"))
    # one `"name":value` per non-null field (Polars encodes and escapes), nulls left out: less to parse and store
    fields = []
    for name, dtype in alerts.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            col = col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        pair = pl.struct(col.alias(name)).struct.json_encode().str.slice(1, None).str.head(-1)
        fields.append(pl.when(pl.col(name).is_not_null()).then(pair))
    body = pl.concat_str(fields, separator=",", ignore_nulls=True)
    sources = alerts.select(pl.concat_str(pl.lit("{"), body, pl.lit("}"))).to_series().to_list()
    return indices.to_series().to_list(), alerts.get_column("event.id").cast(pl.String).to_list(), sources


# -- dead letters ----------------------------------------------------------------------------------------------

class DeadLetters:
    """The append-only NDJSON file of alerts Elasticsearch did not take: index, id, status, reason, source."""

    def __init__(self, data_dir: str | Path):
        self.dir = Path(data_dir)
        self.path = self.dir / DEAD_LETTER

    def append(self, rows: list[tuple[str, str, int | str | None, str, str]]) -> None:
        """``rows`` of (index, id, status, reason, source JSON text); flushed and synced before returning."""
        if not rows:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lines = []
        for index, doc_id, status, reason, source in rows:
            head = json.dumps({"failed_at": now, "index": index, "id": doc_id, "status": status, "reason": reason},
                              ensure_ascii=False)
            lines.append(f'{head[:-1]}, "source": {source}}}\n')
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())

    def pending(self) -> list[Path]:
        """The dead-letter file and any replay left unfinished by a crash."""
        return sorted(self.dir.glob("es_dead_letters*.ndjson")) if self.dir.is_dir() else []

    def count(self) -> int:
        total = 0
        for path in self.pending():
            with open(path, "rb") as fh:
                total += sum(1 for line in fh if line.strip())
        return total


def _reason(info: dict) -> str:
    err = info.get("error")
    if isinstance(err, dict):
        text = f"{err.get('type', 'error')}: {err.get('reason', '')}"
        cause = err.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason"):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text
    return str(err or f"status {info.get('status')}")


# -- indexing ---------------------------------------------------------------------------------------------------

def _expand(item: tuple[str, str, str]):
    index, doc_id, source = item
    return {"create": {"_index": index, "_id": doc_id}}, source.encode("utf-8", "surrogatepass")


def send(client, indices: list[str], ids: list[str], sources: list[str], dead: DeadLetters, cfg: ESConfig,
         ) -> IndexReport:
    """Bulk-create the documents; every one is counted as indexed, duplicate or dead-lettered.

    ``cfg.workers`` streams run side by side on consecutive slices (one bulk request is indexed by one thread
    of the server, so one stream leaves a core idle); each is a ``streaming_bulk`` with its own retries.
    """
    report = IndexReport(sent=len(ids))
    start = time.perf_counter()
    lock = threading.Lock()
    workers = max(1, min(cfg.workers, -(-len(ids) // max(cfg.chunk_size, 1))))
    bounds = [(len(ids) * w // workers, len(ids) * (w + 1) // workers) for w in range(workers)]
    if workers == 1:
        _stream(client, indices, ids, sources, bounds[0], dead, cfg, report, lock)
    else:
        threads = [threading.Thread(target=_stream, args=(client, indices, ids, sources, b, dead, cfg, report, lock))
                   for b in bounds]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    report.dead = sum(report.reasons.values())
    report.seconds = time.perf_counter() - start
    return report


def _stream(client, indices, ids, sources, bounds: tuple[int, int], dead: DeadLetters, cfg: ESConfig,
            report: IndexReport, lock: threading.Lock) -> None:
    from elasticsearch.helpers import streaming_bulk

    lo, hi = bounds
    unresolved = {ids[i]: i for i in range(lo, hi)}
    failed: list[tuple[str, str, int | str | None, str, str]] = []
    indexed = duplicates = 0
    error = None

    def flush() -> None:
        with lock:
            for _, _, _, reason, _ in failed:
                key = reason.split(":", 1)[0]
                report.reasons[key] = report.reasons.get(key, 0) + 1
            dead.append(failed)
        failed.clear()

    try:
        for ok, info in streaming_bulk(
                client, zip(indices[lo:hi], ids[lo:hi], sources[lo:hi], strict=True), chunk_size=cfg.chunk_size,
                max_chunk_bytes=50 << 20, expand_action_callback=_expand, raise_on_error=False,
                raise_on_exception=False, max_retries=cfg.max_retries, initial_backoff=cfg.initial_backoff,
                max_backoff=cfg.max_backoff, retry_on_status=RETRY_STATUS, yield_ok=True):
            op = info.get("create", info)
            pos = unresolved.pop(op.get("_id"), None)
            if pos is None:
                continue
            status = op.get("status")
            if ok:
                indexed += 1
            elif status == 409:
                duplicates += 1
            else:
                failed.append((indices[pos], ids[pos], status, _reason(op), sources[pos]))
                if len(failed) >= 10_000:
                    flush()
    except Exception as exc:  # noqa: BLE001 - the server went away (or worse): reported, nothing dropped
        error = explain(exc, cfg.url)
    finally:
        # what the server did not confirm (it went away, or the run was interrupted) is kept, never dropped
        why = f"not confirmed: {error or 'indexing interrupted'}"
        failed.extend((indices[p], ids[p], None, why, sources[p]) for p in sorted(unresolved.values()))
        flush()
        with lock:
            report.indexed += indexed
            report.duplicates += duplicates
            report.error = report.error or error


def index_alerts(client, alerts: pl.DataFrame, data_dir: str | Path, cfg: ESConfig) -> IndexReport:
    """Index ``alerts`` (an alert frame); failures go to ``data_dir``'s dead-letter file."""
    indices, ids, sources = documents(alerts, cfg.index_prefix)
    return send(client, indices, ids, sources, DeadLetters(data_dir), cfg)


def replay(client, data_dir: str | Path, cfg: ESConfig) -> IndexReport:
    """Re-send the dead-lettered alerts. The file is moved aside first and removed only once every line in it
    is indexed, a duplicate, or dead-lettered again; a crash in between leaves it to the next replay."""
    dead = DeadLetters(data_dir)
    report = IndexReport()
    for path in dead.pending():
        work = path if ".replay-" in path.name else path.with_name(
            f"es_dead_letters.replay-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.ndjson")
        if work != path:
            os.replace(path, work)
        indices, ids, sources, bad, seen = [], [], [], [], set()
        with open(work, encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if rec["id"] in seen:  # dead-lettered twice (an earlier replay was interrupted): send once
                        continue
                    seen.add(rec["id"])
                    indices.append(str(rec["index"]))
                    ids.append(str(rec["id"]))
                    sources.append(json.dumps(rec["source"], ensure_ascii=False))
                except (ValueError, KeyError, TypeError) as exc:
                    bad.append(("", "", None, f"unreadable dead-letter line: {exc}", json.dumps(line)))
        dead.append(bad)
        part = send(client, indices, ids, sources, dead, cfg)
        report.sent += part.sent
        report.indexed += part.indexed
        report.duplicates += part.duplicates
        report.dead += part.dead + len(bad)
        report.seconds += part.seconds
        for key, n in part.reasons.items():
            report.reasons[key] = report.reasons.get(key, 0) + n
        work.unlink()
        if part.error:
            report.error = part.error
            break
    return report


def count(client, prefix: str) -> int:
    client.indices.refresh(index=f"{prefix}-*", allow_no_indices=True)
    return int(client.count(index=f"{prefix}-*", allow_no_indices=True)["count"])
