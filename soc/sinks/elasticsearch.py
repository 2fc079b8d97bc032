"""Alerts to Elasticsearch, with no loss and no duplicates whatever fails.

- ``setup``: a component template with the ECS core types of the alert schema and an index template for
  ``<prefix>-*`` (nothing else: no ingest pipelines, ILM or data streams, so a minimal server works).
- ``index_alerts``: bulk requests with ``op_type=create`` and the alert's deterministic id as ``_id``, into
  ``<prefix>-YYYY.MM`` from the alert's own ``@timestamp``, built as bytes by Polars (nested ECS JSON) and sent
  on ``workers`` connections while the next ones are built. 201 = indexed, 409 = already indexed (a re-run);
  429 and 5xx are retried with exponential back-off; anything else (a mapping rejection, the server going away)
  goes to an append-only NDJSON dead-letter file with its reason. Every alert ends up in exactly one of
  indexed / already indexed / dead-lettered.
- ``replay``: re-sends the dead-letter file(s); what fails again is dead-lettered again.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from soc.alerts.schema import ALERT_SCHEMA
from soc.config import ESConfig, redact
from soc.private import make_dir, opener, writing

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
        raise ESError(redact(f"invalid Elasticsearch URL {cfg.url!r}: {exc}", cfg.url)) from None


def explain(exc: Exception, url: str | None) -> str:
    """One line for an exception of the client, naming the likely cause, with no password in it (the URL and
    the client's own text may hold one: ``redact``)."""
    return redact(_explain(exc, url), url)


def _explain(exc: Exception, url: str | None) -> str:
    from elastic_transport import ConnectionError as TransportConnectionError
    from elastic_transport import ConnectionTimeout, SerializationError, TlsError
    from elasticsearch import ApiError, AuthenticationException, AuthorizationException, UnsupportedProductError

    if isinstance(exc, TlsError):
        text = str(exc.message).lower()
        if "doesn't match" in text or "hostname mismatch" in text:  # urllib3's words, then OpenSSL's
            return (f"the certificate of {url} is not valid for its host name ({_short(exc)}): put in the URL a "
                    "name the certificate was issued for")
        if "certificate verify failed" in text:
            return (f"TLS verification of {url} failed ({_short(exc)}): give its CA with SOC_ES_CA_CERTS or "
                    "[elasticsearch] ca_certs")
        if url and _speaks_plain_http(url):
            return f"the server at {url} speaks plain HTTP, not TLS: use http:// (or turn TLS on in Elasticsearch)"
        return f"TLS handshake with {url} failed ({_short(exc)}): is it the HTTPS port of Elasticsearch?"
    if isinstance(exc, ApiError) and not _from_elasticsearch(exc):
        kind = exc.meta.headers.get("content-type", "").split(";")[0].strip()
        return (f"the server at {url} is not Elasticsearch (it answered HTTP {exc.meta.status}"
                f"{', ' + kind if kind else ''}, without Elasticsearch's header or error body): is the URL right?")
    if isinstance(exc, SerializationError) and "unknown mimetype" in str(exc).lower():  # an answer not in JSON
        kind = _short(exc).rpartition(": ")[2][:80]
        return f"the server at {url} is not Elasticsearch (it answered {kind}, not JSON): is the URL right?"
    if isinstance(exc, ConnectionTimeout):
        return f"Elasticsearch at {url} did not answer in time ({_short(exc)})"
    if isinstance(exc, TransportConnectionError):
        if url and url.lower().startswith("http://") and "refused" not in str(exc.message).lower() \
                and _speaks_tls(url):  # it hung up on a plain request (refused: nothing listens there)
            return f"the server at {url} speaks TLS, not plain HTTP: use https://"
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
    text = " ".join(str(getattr(exc, "message", "") or exc).split())  # one line
    return text if len(text) <= 300 else text[:300] + "..."


def _from_elasticsearch(exc) -> bool:
    """Whether an HTTP error answer came from Elasticsearch: its product header (absent from its 401s) or its
    JSON error body (``{"error": ...}``); a web server's or a proxy's HTML page has neither."""
    if exc.meta.headers.get("x-elastic-product") == "Elasticsearch":
        return True
    return isinstance(exc.body, dict) and "error" in exc.body


def _speaks_tls(url: str, timeout: float = 3.0) -> bool:
    """Whether the server of ``url`` completes a TLS handshake (nothing is verified: only the protocol is
    asked, and nothing is sent)."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock, \
                ctx.wrap_socket(sock, server_hostname=parts.hostname):
            return True
    except (OSError, ValueError):
        return False


def _speaks_plain_http(url: str, timeout: float = 3.0) -> bool:
    """Whether the server of ``url`` answers a plain HTTP request (its TLS handshake failed: OpenSSL's words for
    that differ between versions, the server's answer does not)."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as sock:
            sock.sendall(f"HEAD / HTTP/1.0\r\nHost: {parts.hostname}\r\n\r\n".encode("ascii", "replace"))
            return sock.recv(5) == b"HTTP/"
    except (OSError, ValueError):
        return False


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
                                   "refresh_interval": REFRESH}},
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

def documents(alerts: pl.DataFrame, prefix: str) -> pl.DataFrame:
    """``index``, ``id`` and ``source`` (JSON text) of each alert, serialised by Polars, not per row in Python.

    The source is nested ECS (``{"event":{"id":...}}``, not ``{"event.id":...}``): the server then has no dotted
    names to expand (a fifth of its CPU per document in bench_es). Null fields and empty objects are left out."""
    _check(alerts)
    strings = [n for n, t in alerts.schema.items() if t == pl.String]
    plain = alerts.select(pl.col(n).str.contains(r'["\\\x00-\x1f]').not_().all() for n in strings).row(0)
    quote = {n for n, ok in zip(strings, plain, strict=True) if ok is not False}  # no character to escape
    pieces = [pl.lit("{")]
    _members(_tree(alerts.schema), quote, pieces)
    pieces.append(pl.lit("}"))
    return alerts.lazy().select(
        pl.col("@timestamp").dt.convert_time_zone("UTC").dt.strftime(f"{prefix}-%Y.%m").alias("index"),
        pl.col("event.id").cast(pl.String).alias("id"),
        pl.concat_str(pieces, ignore_nulls=True).alias("source"),
    ).collect()


def _check(alerts: pl.DataFrame) -> None:
    for col in ("@timestamp", "event.id"):
        if col not in alerts.columns:
            raise ValueError(f"alerts lack the column {col}")
    if alerts.get_column("event.id").null_count():
        raise ValueError("alerts with a null event.id cannot be indexed (the id is what prevents duplicates)")


def _tree(schema: pl.Schema) -> dict:
    """Column names as a tree of ECS objects: ``{"event": {"id": (name, dtype), ...}, ...}``."""
    tree: dict = {}
    for name, dtype in schema.items():
        node, path = tree, name.split(".")
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"alert column {name!r} is inside {part!r}, which is also a column")
        if path[-1] in node:
            raise ValueError(f"alert column {name!r} is also an object of other columns")
        node[path[-1]] = (name, dtype)
    return tree


def _members(tree: dict, quote: set[str], pieces: list[pl.Expr]) -> pl.Expr:
    """Append the pieces of the members of one object (one flat ``concat_str``: no text is copied twice);
    return whether any member is present. A member is preceded by a comma when one before it is present."""
    before: pl.Expr | None = None
    for key, sub in tree.items():
        comma = len(pieces)
        pieces.append(pl.lit(","))  # replaced below once ``before`` is known
        if isinstance(sub, dict):
            opened = len(pieces)
            pieces.append(pl.lit(""))
            present = _members(sub, quote, pieces)
            pieces[opened] = pl.when(present).then(pl.lit(_json_key(key) + "{"))
            pieces.append(pl.when(present).then(pl.lit("}")))
        else:
            name, dtype = sub
            present = pl.col(name).is_not_null()
            pieces.append(pl.when(present).then(pl.concat_str(pl.lit(_json_key(key)), _value(name, dtype, quote))))
        pieces[comma] = pl.lit(None, pl.String) if before is None else pl.when(before & present).then(pl.lit(","))
        before = present if before is None else before | present
    return before if before is not None else pl.lit(False)


def _value(name: str, dtype: pl.DataType, quote: set[str]) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):  # digits and separators: nothing to escape
        return pl.concat_str(pl.lit('"'), col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
                             pl.lit('"'))
    if dtype.is_integer():
        return col.cast(pl.String)
    if name in quote:
        return pl.concat_str(pl.lit('"'), col, pl.lit('"'))
    # strings with quotes, backslashes or control characters, floats (NaN becomes null), lists: Polars escapes
    return pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)


def _json_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False) + ":"


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
        make_dir(self.dir)  # private: the alerts and their log content (issue 17)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lines = []
        for index, doc_id, status, reason, source in rows:
            head = json.dumps({"failed_at": now, "index": index, "id": doc_id, "status": status, "reason": reason},
                              ensure_ascii=False)
            lines.append(f'{head[:-1]}, "source": {source}}}\n')
        with open(self.path, "a", encoding="utf-8", opener=opener) as fh:
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

SLICE_ROWS = 20_000          # alerts serialised at a time, while the ones before are being sent
MAX_CHUNK_BYTES = 8 << 20    # a bulk request is also cut by size (the server refuses more than 100 MB)
ANSWER = "errors,items.*.status,items.*.error"  # filter_path: only what is read of the server's answer
REFRESH = "5s"               # the template's refresh interval
REFRESH_OFF_FROM = 10_000    # runs of at least this many alerts turn their indices' refresh off meanwhile
REFRESH_STATE = "es_refresh_off.json"  # DATA_DIR: the indices a run turned the refresh of off, until put back


@dataclass
class _Chunk:
    docs: pl.DataFrame  # index, id, source, line (the action and source lines of one document)
    body: bytes         # the lines of all of them: one bulk request


def _chunks(docs: pl.DataFrame, cfg: ESConfig, op: str = "create") -> Iterator[_Chunk]:
    """Bulk requests of at most ``cfg.chunk_size`` documents and about ``MAX_CHUNK_BYTES``, built by Polars."""
    if docs.height == 0:
        return
    action = pl.struct(pl.col("index").alias("_index"), pl.col("id").alias("_id")).struct.json_encode()
    docs = docs.with_columns(pl.concat_str(pl.lit(f'{{"{op}":'), action, pl.lit("}\n"), pl.col("source"),
                                           pl.lit("\n")).alias("line"))
    size = docs.get_column("line").str.len_bytes().cast(pl.Int64).to_numpy()
    by_bytes = (np.cumsum(size) - size) // MAX_CHUNK_BYTES
    starts = np.flatnonzero(np.diff(by_bytes, prepend=-1))  # first row of each byte group
    bounds = []
    for lo, hi in zip(starts, [*starts[1:], docs.height], strict=True):
        bounds.extend((a, min(a + max(cfg.chunk_size, 1), hi)) for a in range(lo, hi, max(cfg.chunk_size, 1)))
    for lo, hi in bounds:
        part = docs.slice(lo, hi - lo)
        yield _Chunk(part, part.select(pl.col("line").str.join("").cast(pl.Binary)).item())


class _Run:
    """One bulk run: ``cfg.workers`` threads send chunks from a queue (a bulk request on one shard is indexed
    by one server thread, so one stream leaves a core idle) while the caller serialises the next ones."""

    def __init__(self, client, dead: DeadLetters, cfg: ESConfig, report: IndexReport):
        self.client, self.dead, self.cfg, self.report = client, dead, cfg, report
        self.lock = threading.Lock()
        self.stop = threading.Event()  # the server went away (or the run was interrupted): send nothing more

    def worker(self, chunks: queue.Queue) -> None:
        while (chunk := chunks.get()) is not None:
            if self.stop.is_set():
                self.unconfirmed(chunk.docs)
            else:
                self.send(chunk)

    def send(self, chunk: _Chunk) -> None:
        """Send one chunk; 429/5xx items are sent again with back-off, then dead-lettered with the rest."""
        cfg, docs, body = self.cfg, chunk.docs, chunk.body
        pending = np.arange(docs.height)
        indexed = duplicates = attempt = 0
        failed: list[tuple[int, int | None, str]] = []
        try:
            while pending.size:
                answer = self.client.bulk(operations=body, filter_path=ANSWER)
                items = answer.get("items") or []
                if len(items) != pending.size:
                    raise RuntimeError(f"the bulk answer has {len(items)} items for {pending.size} documents")
                if not answer.get("errors"):
                    indexed += pending.size
                    break
                retry = []
                for pos, item in zip(pending.tolist(), items, strict=True):
                    op = next(iter(item.values()))
                    status = op.get("status")
                    if isinstance(status, int) and 200 <= status < 300:
                        indexed += 1
                    elif status == 409:
                        duplicates += 1
                    elif status in RETRY_STATUS and attempt < cfg.max_retries:
                        retry.append(pos)
                    else:
                        failed.append((pos, status, _reason(op)))
                pending = np.array(retry, dtype=np.int64)
                if pending.size:
                    time.sleep(min(cfg.max_backoff, cfg.initial_backoff * 2 ** attempt))
                    attempt += 1
                    body = docs.select(pl.col("line").gather(pending).str.join("").cast(pl.Binary)).item()
            pending = pending[:0]
        except BaseException as exc:  # the server went away (or worse): reported, nothing dropped
            with self.lock:
                self.report.error = self.report.error or (explain(exc, cfg.url) if isinstance(exc, Exception)
                                                          else "indexing interrupted")
            self.stop.set()
            if not isinstance(exc, Exception):
                raise
        finally:
            rows = [(docs[p, "index"], docs[p, "id"], status, reason, docs[p, "source"]) for p, status, reason
                    in failed]
            with self.lock:
                self.report.indexed += indexed
                self.report.duplicates += duplicates
            self.dead_letter(rows)
            if pending.size:
                self.unconfirmed(docs[pending])

    def unconfirmed(self, docs: pl.DataFrame) -> None:
        """Documents the server did not confirm (it went away, or the run was interrupted): dead-lettered."""
        why = f"not confirmed: {self.report.error or 'indexing interrupted'}"
        self.dead_letter([(i, d, None, why, s) for i, d, s in docs.select("index", "id", "source").iter_rows()])

    def dead_letter(self, rows: list[tuple[str, str, int | str | None, str, str]]) -> None:
        if not rows:
            return
        with self.lock:
            for _, _, _, reason, _ in rows:
                key = reason.split(":", 1)[0]
                self.report.reasons[key] = self.report.reasons.get(key, 0) + 1
            self.dead.append(rows)


def send(client, batches: Iterable[pl.DataFrame], total: int, dead: DeadLetters, cfg: ESConfig,
         op: str = "create") -> IndexReport:
    """Bulk-create the documents of ``batches`` (frames of index, id, source); every one of them is counted
    as indexed, duplicate (409) or dead-lettered, even when the server goes away or the run is interrupted."""
    report = IndexReport(sent=total)
    start = time.perf_counter()
    run = _Run(client, dead, cfg, report)
    workers = max(1, min(cfg.workers, -(-total // max(cfg.chunk_size, 1))))
    chunks: queue.Queue = queue.Queue(maxsize=2 * workers)
    threads = [threading.Thread(target=run.worker, args=(chunks,), daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    todo = (chunk for batch in batches for chunk in _chunks(batch, cfg, op))
    finished, current = False, None
    try:
        for current in todo:
            if run.stop.is_set():
                run.unconfirmed(current.docs)
            else:
                chunks.put(current)
            current = None
        finished = True
    finally:
        if not finished:  # interrupted here: what is left is dead-lettered, not dropped (a replay sends it once)
            run.stop.set()
            if current is not None:
                run.unconfirmed(current.docs)
            with contextlib.suppress(Exception):  # unless it cannot be built: that error goes up to the caller
                for chunk in todo:
                    run.unconfirmed(chunk.docs)
        for _ in threads:
            chunks.put(None)
        for t in threads:
            t.join()
    report.dead = sum(report.reasons.values())
    report.seconds = time.perf_counter() - start
    return report


def index_alerts(client, alerts: pl.DataFrame, data_dir: str | Path, cfg: ESConfig, op: str = "create"
                 ) -> IndexReport:
    """Index ``alerts`` (an alert frame); failures go to ``data_dir``'s dead-letter file. ``op="index"`` writes
    over a document of the same id (a scheduled job's fuller version of an alert, ``soc.jobs.state``).

    A run of ``REFRESH_OFF_FROM`` alerts or more turns the refresh of its indices off while it runs (fewer,
    larger segments) and puts it back in a ``finally``, then refreshes them once: the alerts are searchable
    when it returns. Any run puts back a refresh left off by a run that died (``refresh_off``)."""
    if alerts.height == 0:
        report = IndexReport()
        with refresh_off(client, [], off=False, data_dir=data_dir) as outcome:
            pass
        report.error = outcome.get("error")
        return report
    _check(alerts)  # before anything is sent
    names = alerts.select(pl.col("@timestamp").dt.convert_time_zone("UTC").dt.strftime(f"{cfg.index_prefix}-%Y.%m")
                          .unique(maintain_order=True)).to_series().to_list()
    # the first slice is one request, so that the server starts while the next ones are serialised
    cuts = [0, *range(min(cfg.chunk_size, SLICE_ROWS), alerts.height, SLICE_ROWS), alerts.height]
    batches = (documents(alerts.slice(lo, hi - lo), cfg.index_prefix) for lo, hi in itertools.pairwise(cuts))
    with refresh_off(client, names, off=alerts.height >= REFRESH_OFF_FROM, data_dir=data_dir) as report_error:
        report = send(client, batches, alerts.height, DeadLetters(data_dir), cfg, op)
    report.error = report.error or report_error.get("error")
    return report


def refresh_left_off(data_dir: str | Path) -> dict[str, str | None]:
    """The indices whose refresh a run turned off and did not put back (killed, or its server went away),
    with the interval each had: ``DATA_DIR/es_refresh_off.json``, written before the refresh is turned off and
    emptied once it is put back."""
    try:
        state = json.loads((Path(data_dir) / REFRESH_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict):
        return {}
    return {str(k): v if isinstance(v, str) else None for k, v in state.items()}


def _save_refresh_state(data_dir: str | Path, add: dict[str, str | None], drop: Iterable[str] = ()) -> None:
    """Record ``add`` (an index recorded already keeps its first interval) and forget ``drop``, re-reading the
    file first so that another run's entries stay; written whole under a temporary name, then renamed."""
    path = Path(data_dir) / REFRESH_STATE
    state = refresh_left_off(data_dir)
    for ix, value in add.items():
        state.setdefault(ix, value)
    for ix in drop:
        state.pop(ix, None)
    if not state:
        path.unlink(missing_ok=True)
        return
    with writing(path, path.parent) as tmp, open(tmp, "w", encoding="utf-8") as fh:  # private, whole or not at all
        json.dump(state, fh)
        fh.flush()
        os.fsync(fh.fileno())


@contextlib.contextmanager
def refresh_off(client, names: list[str], off: bool = True, data_dir: str | Path | None = None) -> Iterator[dict]:
    """Turn the refresh of the indices ``names`` off (``off``) and put it back afterwards, whatever happens.

    Put back means the interval it had, or the template's ``REFRESH`` when it was already off (left so by a
    run that died before its ``finally``, or one running at the same time); then one explicit refresh. With
    ``data_dir`` the indices are recorded in its ``REFRESH_STATE`` file before their refresh is turned off, and
    every index recorded there (by this run or one that died, whatever its alerts) is put back too. Without
    ``off`` only a refresh left off is put back. A server that refuses (no ``manage`` privilege) only loses
    the speed-up. The dict yielded gets ``error`` when the refresh could not be put back."""
    names = [n for n in names if n]
    left = refresh_left_off(data_dir) if data_dir is not None else {}
    outcome: dict = {}
    target: dict[str, str | None] = {}  # index -> the interval to put back
    mine: list[str] = []                # the indices this run turned off
    known = False                       # the server told which of the recorded indices still exist
    try:
        if off:
            for name in names:  # created now (from the template) so that their refresh can be turned off
                client.options(ignore_status=400).indices.create(index=name)
        check = list(dict.fromkeys([*names, *left]))
        if check:
            got = client.indices.get_settings(index=",".join(check), name="index.refresh_interval",
                                              flat_settings=True, ignore_unavailable=True, allow_no_indices=True)
            for ix, v in got.items():
                value = v.get("settings", {}).get("index.refresh_interval")
                if ix in left:
                    target[ix] = left[ix]
                elif value == "-1":
                    target[ix] = REFRESH
                elif off and ix in names:
                    target[ix] = value
        known = True
        if off:
            mine = [ix for ix in names if ix in target]
        if mine:
            if data_dir is not None:
                _save_refresh_state(data_dir, {ix: target[ix] for ix in mine})
            client.indices.put_settings(index=",".join(mine), settings={"index.refresh_interval": "-1"})
    except Exception:  # noqa: BLE001, S110 - only the speed-up is lost; the bulk run reports a server gone
        pass
    try:
        yield outcome
    finally:
        back: dict[str | None, list[str]] = {}
        for ix, value in target.items():
            back.setdefault(value, []).append(ix)
        try:
            for value, indices in back.items():
                client.indices.put_settings(index=",".join(indices), settings={"index.refresh_interval": value})
            if mine:
                client.indices.refresh(index=",".join(mine), ignore_unavailable=True)
            if data_dir is not None and known and (left or mine):  # put back, or deleted since
                _save_refresh_state(data_dir, {}, drop=[*left, *mine])
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = (f"the refresh interval of {', '.join(sorted(target))} was not put back "
                                f"({explain(exc, None)}): the next run puts it back")


def replay(client, data_dir: str | Path, cfg: ESConfig) -> IndexReport:
    """Re-send the dead-lettered alerts. The file is moved aside first and removed only once every line in it
    is indexed, a duplicate, or dead-lettered again; a crash in between leaves it to the next replay. Every
    index whose refresh a run left off is put back, with dead letters for it or not."""
    dead = DeadLetters(data_dir)
    report = IndexReport()
    if not dead.pending():
        with refresh_off(client, [], off=False, data_dir=data_dir) as outcome:
            pass
        report.error = outcome.get("error")
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
        docs = pl.DataFrame({"index": indices, "id": ids, "source": sources}, schema=dict.fromkeys(
            ("index", "id", "source"), pl.String))
        with refresh_off(client, list(dict.fromkeys(indices)), off=len(ids) >= REFRESH_OFF_FROM,
                         data_dir=data_dir) as outcome:
            part = send(client, [docs], len(ids), dead, cfg)
        part.error = part.error or outcome.get("error")
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
