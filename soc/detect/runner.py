"""Running detector specs over a whole hunt: accumulate the few columns each detector needs as the pipeline
streams frames, then run its kernel once at the end and turn what it finds into hit rows.

Memory stays bounded by those columns (filtered rows only; volume detectors keep counts per key and time
bucket, not rows). A hit row is what ``soc.alerts.build_alerts`` takes: ``@timestamp`` (when the threshold
was crossed), ``rule.*``, ``threat.technique.id``, the entity columns of the detector's key, ``event.count``,
``window.start``/``window.end`` and evidence: ``detector.value`` (the statistic that crossed the threshold),
``detector.excess`` (how many times its threshold the statistic reached: the alert's risk score grows with it,
``[risk.excess]`` of the policy), ``evidence.distinct`` (distinct values of the spec's evidence field),
``evidence.field`` and ``evidence.values`` (the field and up to ``EVIDENCE_VALUES`` of its distinct values among
the hit's rows, most frequent first, each cut to ``VALUE_CHARS``: the accounts tried, the ports scanned, the
domains; the spec's ``evidence``, else its ``value``; rise/drop: the hit's buckets with their counts and
baselines, furthest from the baseline first; first_seen: the new value), ``evidence.samples`` (up to five
``path:line`` references) and the trigger record's ``event.dataset``/``log.file.path``/``log.line``/``log.offset``.

Kernel knobs (``params``) and what ``threshold`` means:
- count: rows in the window >= threshold. distinct: distinct ``value`` in the window >= threshold.
  sum: sum of ``value`` in the window >= threshold.
- entropy: rows whose ``value`` string has entropy >= ``min_entropy`` and length >= ``min_length`` (on
  ``part``: whole, longest_label, first_label, sld); then, per key and window, those rows (or their distinct
  values with ``distinct: true``) >= threshold. With ``score: ngram`` DNS names are judged by
  ``soc.detect.domains`` instead (registrable domain, trigram model, allowlist, learned resolvers: ``part``,
  ``min_length``, ``min_label``, ``max_bits``, ``min_switches``, ``allowlist``, ``min_per_domain``, ``server``,
  ``answered``, ``resolver_clients``, ``resolvers``, ``resolver_threshold``; see detectors/README.md).
- any kernel: ``levels: {high: 100, critical: 500}`` raises a hit's level when ``detector.value`` reaches them.
- beacon: connections per key >= threshold, robust irregularity (MAD / median of gaps) <= ``max_mad_ratio``,
  CV <= ``max_cv``, mean gap >= ``min_interval``. Records of a key less than ``same_within`` (default 1s)
  after the one before are the same call-back: a connection that several logs record (Zeek's conn.log and
  rdp.log, two weird.log lines) would otherwise give gaps of ~0 between the real ones, and a CV near 1.
  ``max_sources``: a destination (the key's other fields) that more than this many sources beacon to is a
  shared service (a scoring engine, monitoring, updates: every host of a network calls it), not reported.
  ``evidence_first`` (any kernel of rows): a field whose values a hit lists when it has any (a beacon's TLS
  server names), else those of ``evidence``.
- rise / drop: counts per ``bucket`` (default the window), EWMA baseline (``alpha``, ``warmup`` buckets) and a
  robust z-score: rise when z >= threshold and count >= ``min_count``; drop when z <= -threshold, count <=
  ``max_ratio`` x baseline and baseline >= ``min_baseline`` (a source gone silent). Consecutive buckets merge.
- first_seen: a (key, value) pair first seen after the ``baseline`` period (from the first event), for a key
  seen during it.
beacon and first_seen look at the whole hunt per key (their ``window`` is not used); rise/drop buckets default
to the window. "Now" for a drop is the latest event of the frames the detector covers: a source whose file
simply ends earlier than the others looks silent (only sources above ``min_baseline`` per bucket qualify).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl

from soc.detect.specs import LEVELS, DetectorSpec, duration_us
from soc.pipeline import FeedSink, own_values

# soc.detect.kernels and .windows (Numba, ~13 ms to import) are imported where a kernel runs: a small hunt
# whose detectors cannot fire never loads them

TS = pl.Datetime("us", "UTC")
REFS = ("event.dataset", "log.file.path", "log.line", "log.offset")
_T = "@timestamp"
_SEQ = "_seq"  # the number of the frame a row came from (feed order)
CARRIED = "_carried"  # true on the rows a job's earlier run carried over (``DetectorRunner.seed``), null on new ones
HISTORY = "1d"  # how far back a job carries the rows of beacon, rise/drop and learned-DNS detectors (``carried_rows``)
BATCH_ROWS = 50_000  # frames smaller than this wait for more rows of the same columns (``DetectorRunner.feed``)
ROUTES = 4096  # (key, columns) whose detectors and columns a runner remembers (``DetectorRunner._route``)
COMPACT_AGE = 256  # frames fed after which a waiting batch's parts are copied to their own buffers (``_Batch``)
EVIDENCE_VALUES = 5  # distinct values a hit lists (``evidence.values``), most frequent first
VALUE_CHARS = 80  # each cut to this many characters


@dataclass
class DetectorFailure:
    detector: str
    reason: str


def _resolve(spec: DetectorSpec, name: str, columns: list[str]) -> str | None:
    if name in columns:
        return name
    return next((a for a in spec.aliases.get(name, ()) if a in columns), None)


def _entity(column: str, columns: list[str]) -> pl.Expr:
    """A key column; an ``*.ip`` key falls back to ``*.address``: an attacker logged by host name (sshd with
    ``UseDNS``, a web server with ``HostnameLookups``) has no IP in ``*.ip`` but is the same entity to count."""
    if column.endswith(".ip") and (address := column[: -len("ip")] + "address") in columns:
        return pl.coalesce(pl.col(column), pl.col(address))
    return pl.col(column)


def _operator(col: pl.Expr, op: str, v) -> pl.Expr:
    text = col.cast(pl.String)
    if op in ("eq", "ne"):
        return text == str(v) if op == "eq" else text != str(v)
    if op in ("in", "not_in"):
        inside = text.is_in([str(x) for x in v])
        return inside if op == "in" else ~inside
    if op in ("gt", "gte", "lt", "lte"):
        number = col.cast(pl.Float64, strict=False)
        return {"gt": number > v, "gte": number >= v, "lt": number < v, "lte": number <= v}[op]
    if op == "contains_any":
        return text.str.contains_any([str(x) for x in v], ascii_case_insensitive=True)
    if op in ("matches", "not_matches"):  # Rust regex: linear time, no catastrophic backtracking
        found = text.str.contains(str(v))
        return found if op == "matches" else ~found
    return col.is_not_null() if v else col.is_null()  # present


def _condition(col: pl.Expr, cond) -> pl.Expr:
    """A filter condition of a spec as a Polars expression; a null never matches (except for the negations)."""
    if isinstance(cond, list):
        return col.cast(pl.String).is_in([str(v) for v in cond]).fill_null(False)
    if not isinstance(cond, dict):
        return (col.cast(pl.String) == str(cond)).fill_null(False)
    out = pl.lit(True)
    for op, v in cond.items():
        out = out & _operator(col, op, v).fill_null(op in ("not_in", "not_matches", "ne"))
    return out


def _groups(cond) -> list[dict]:
    """A ``not:`` filter's groups: one mapping, or a list of them."""
    return cond if isinstance(cond, list) else [cond]


def _filter_fields(flt: dict) -> list[str]:
    """The fields a filter reads (those of its ``not:`` groups too)."""
    return [f for name, cond in flt.items()
            for f in ([g for group in _groups(cond) for g in _filter_fields(group)] if name == "not" else [name])]


def _mask(spec: DetectorSpec, flt: dict, cols: list[str]) -> pl.Expr:
    """All the filter's conditions; ``not: {field: condition, ...}`` (or a list of such groups) drops the rows
    where all of a group's hold (e.g. outbound connections: source internal and destination public)."""
    mask = pl.lit(True)
    for name, cond in flt.items():
        if name == "not":
            for group in _groups(cond):
                mask = mask & ~_mask(spec, group, cols)
            continue
        column = _resolve(spec, name, cols)  # a missing field is null: only negations hold on it
        mask = mask & _condition(pl.lit(None, pl.String) if column is None else pl.col(column), cond)
    return mask


def _extra(spec: DetectorSpec) -> list[str]:
    """Fields a kernel's params name: the DNS detectors' queried server and its answer (``soc.detect.domains``)."""
    return [f for f in (spec.param("server", None), spec.param("answered", None)) if f]


def _needed(spec: DetectorSpec, cols: list[str]) -> list[str] | None:
    """The columns of a frame that ``DetectorRunner._prepare`` reads for ``spec`` (each field as it resolves,
    the ``*.address`` of an ``*.ip`` key, the record references, ``@timestamp``): on those columns alone it
    resolves every field to the same column. None without ``@timestamp``."""
    if _T not in cols:
        return None
    out = [_T]
    for name in (*_filter_fields(spec.filter), *spec.key, spec.value, spec.evidence, spec.param("evidence_first", None),
                 *_extra(spec)):
        column = None if name is None else _resolve(spec, name, cols)
        if column is not None and column not in out:
            out.append(column)
            address = column[: -len("ip")] + "address" if column.endswith(".ip") else None
            if address in cols and address not in out:
                out.append(address)
    out.extend(r for r in REFS if r in cols and r not in out)
    return out


@dataclass
class _Batch:
    """Narrowed small frames of one detector and one set of columns, waiting to be prepared together."""

    spec: DetectorSpec
    key: tuple[str, str]  # of the first frame (named in a failure)
    columns: list = field(default_factory=list)  # per column, its Series of each frame
    seqs: list = field(default_factory=list)
    heights: list = field(default_factory=list)
    rows: int = 0
    since: int = 0  # the feed number of its oldest part not compacted
    owned: bool = False  # the first part of each column is its own values (``compact``): not copied again

    def add(self, series: list[pl.Series], seq: int) -> None:
        if not self.columns:
            self.columns = [[] for _ in series]
            self.since = seq
        elif seq - self.since >= COMPACT_AGE:
            self.compact()
            self.since = seq
        for parts, s in zip(self.columns, series, strict=True):
            parts.append(s)
        self.seqs.append(seq)
        self.heights.append(len(series[0]))
        self.rows += len(series[0])

    def compact(self) -> None:
        """Each column's parts as one Series of its own values. A small frame's column can be a slice of its
        chunk's (NXLog lines: each (channel, event id) frame's strings point into the whole chunk's buffers), so
        a batch of a rare key, waiting for ``BATCH_ROWS`` rows, kept every chunk of the input alive: 400 k NXLog
        lines held 1080 rows of 4625 events in 29 frames, and peak RSS grew ~1.7 MB per 1,000 lines.
        Only the parts fed since the last compaction are copied, all columns in one ``own_values``: copying the
        whole batch again each time cost in proportion to its rows times its compactions (100 k NXLog lines:
        32 compactions, 0.45 s under cProfile); joined to the part already owned, whose buffers are its own."""
        skip = 1 if self.owned else 0
        fresh = [parts[skip:] for parts in self.columns]
        if not fresh[0]:
            return
        copied = own_values(pl.DataFrame([pl.concat(p) if len(p) > 1 else p[0] for p in fresh])).get_columns()
        self.columns = [[pl.concat([parts[0], new]) if skip else new]
                        for parts, new in zip(self.columns, copied, strict=True)]
        self.owned = True


def _in_feed_order(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """A detector's prepared parts as one frame in the order their rows were fed (ties in time keep it)."""
    same = all(p.columns == parts[0].columns for p in parts)  # rows carried from a job's earlier run: _carried
    rows = pl.concat(parts, how="vertical_relaxed" if same else "diagonal_relaxed")
    if len(parts) > 1:
        rows = rows.sort(_SEQ, maintain_order=True)
    return rows.drop(_SEQ)


@dataclass
class DetectorRunner:
    """Feeds frames to every detector whose spec covers them; ``hits()`` runs the kernels once."""

    specs: list[DetectorSpec]
    failures: list[DetectorFailure] = field(default_factory=list)
    events: int = 0
    _parts: dict = field(default_factory=dict)
    _scorers: dict = field(default_factory=dict)  # detector id -> domains.NameScorer (score: ngram)
    _last: dict = field(default_factory=dict)  # detector id -> latest timestamp of its frames (drop detection)
    batch_rows: int = BATCH_ROWS
    _waiting: dict = field(default_factory=dict)  # (detector id, narrowed columns) -> _Batch not prepared yet
    _waiting_rows: int = 0
    _seq: int = 0  # frames fed so far
    carry: dict | None = None  # a dict: ``hits`` puts there each detector's rows for a job's next run (``seed``)
    final: bool = True  # False (a job's run): a drop in the bucket still open is not reported yet (``_rise_drop``)
    late: dict = field(default_factory=dict)  # detector id -> new rows older than what was carried (``late_rows``)
    done: dict = field(default_factory=dict)  # detector id -> its hits (or failure) found elsewhere (by key: shuffle)
    _routes: dict = field(default_factory=dict)  # (key, columns) -> [(spec, columns it reads)] (``_route``)

    def feed(self, key: tuple[str, str], frame: pl.DataFrame) -> None:
        """Take a frame's rows for every detector that covers its key. Small frames wait, narrowed to the columns
        the detector reads, for more of the same columns (up to ``batch_rows`` rows, ``4 * batch_rows`` in all)
        and are prepared together: most of the cost of preparing a small frame is per Polars query, not per
        row (a folder of small EVTX files: 844 frames, 1.2 s one by one). ``_seq`` keeps the feed order."""
        self.events += frame.height
        if not frame.height:
            return
        seq = self._seq
        self._seq += 1
        cols = frame.columns
        for spec, needed in self._route(key, cols):
            if frame.height >= self.batch_rows:
                needed = None
            if needed is None:  # a large frame, or one without @timestamp (that failure is reported as it was)
                self._take(spec, key, frame, np.full(frame.height, seq, np.int64))
                continue
            series = [frame.get_column(c) for c in needed]
            sig = (spec.id, tuple((s.name, s.dtype) for s in series))
            batch = self._waiting.get(sig)
            if batch is None:
                batch = self._waiting[sig] = _Batch(spec, key)
            batch.add(series, seq)
            self._waiting_rows += frame.height
            if batch.rows >= self.batch_rows:
                self._flush(sig)
        if self._waiting_rows >= 4 * self.batch_rows:
            for sig in list(self._waiting):
                self._flush(sig)

    def _route(self, key: tuple[str, str], cols: list[str]) -> list:
        """(spec, the columns it reads) of each detector covering ``key``, for a frame of columns ``cols``: found
        once per key and columns, not per frame (a chunk of Windows events has ~220 small frames, the same
        keys and columns chunk after chunk)."""
        sig = (key, tuple(cols))
        route = self._routes.get(sig)
        if route is None:
            if len(self._routes) >= ROUTES:
                self._routes.clear()
            route = self._routes[sig] = [(spec, _needed(spec, cols)) for spec in self.specs if spec.covers(key)]
        return route

    def _flush(self, sig) -> None:
        batch = self._waiting.pop(sig)
        self._waiting_rows -= batch.rows
        frame = pl.DataFrame([pl.concat(parts) if len(parts) > 1 else parts[0] for parts in batch.columns])
        self._take(batch.spec, batch.key, frame, np.repeat(batch.seqs, batch.heights))

    def _take(self, spec: DetectorSpec, key: tuple[str, str], frame: pl.DataFrame, seqs: np.ndarray) -> None:
        try:
            part = self._prepare(spec, frame.with_columns(pl.Series(_SEQ, seqs)))
        except Exception as exc:  # a detector must not stop the hunt: report it
            self.failures.append(DetectorFailure(spec.id, f"{key[1]}: {type(exc).__name__}: {exc}"))
            return
        if part is not None and part.height:
            self._parts.setdefault(spec.id, []).append(part)

    def seed(self, spec_id: str, rows: pl.DataFrame | None, last=None, pairs: pl.DataFrame | None = None) -> None:
        """What a job's earlier run carried over for detector ``spec_id`` (``carry``, ``soc.jobs.state``), taken
        before anything is fed: its rows come first in feed order (frame -1), marked ``CARRIED``; ``last`` is
        its latest event then (a drop's "now"); ``pairs`` the (server, client) pairs it learned resolvers from.
        A detector no longer configured is left out."""
        spec = next((s for s in self.specs if s.id == spec_id), None)
        if spec is None:
            return
        if last is not None:
            self._last[spec_id] = max(self._last.get(spec_id, last), last)
        if pairs is not None and pairs.height and _learns(spec):
            self._names(spec)._pairs.append(pairs)
        if rows is not None and rows.height:
            rows = rows.with_columns(pl.lit(-1, pl.Int64).alias(_SEQ), pl.lit(True).alias(CARRIED))
            self._parts.setdefault(spec_id, []).insert(0, rows)

    def _names(self, spec: DetectorSpec):
        if spec.id not in self._scorers:
            from soc.detect.domains import NameScorer

            self._scorers[spec.id] = NameScorer.of(spec)
        return self._scorers[spec.id]

    def _prepare(self, spec: DetectorSpec, frame: pl.DataFrame) -> pl.DataFrame | None:
        cols = frame.columns
        if spec.kernel == "drop":
            hi = frame.get_column(_T).max()
            if hi is not None:
                self._last[spec.id] = max(self._last.get(spec.id, hi), hi)
        mask = _mask(spec, spec.filter, cols)
        wanted = {}
        shown = [f for f in (spec.evidence, spec.param("evidence_first", None)) if f]
        for name in (*spec.key, spec.value, *shown, *_extra(spec)):
            if name is None or name in wanted:
                continue
            column = _resolve(spec, name, cols)
            if column is None:
                if name in spec.key or name == spec.value:
                    return None
                if name in shown:  # null where a frame lacks it: every part of a detector has its columns
                    wanted[name] = None
                continue
            wanted[name] = column
        refs = [pl.col(r).cast(pl.Int64 if r in ("log.line", "log.offset") else pl.String).alias(r)
                if r in cols else pl.lit(None, pl.Int64 if r in ("log.line", "log.offset") else pl.String).alias(r)
                for r in REFS if r not in wanted]
        exprs = {n: _entity(c, cols) if n in spec.key else pl.lit(None, pl.String) if c is None else pl.col(c)
                 for n, c in wanted.items()}
        keys_ok = pl.all_horizontal([exprs[k].is_not_null() for k in spec.key]) & pl.col(_T).is_not_null()
        value_dtype = pl.Float64 if spec.kernel == "sum" else pl.String
        rows = frame.filter(mask & keys_ok).select(
            pl.col(_T).cast(TS),
            *[e.cast(value_dtype if n == spec.value else pl.String).alias(n) for n, e in exprs.items()],
            *refs, pl.col(_SEQ))
        if spec.kernel == "entropy":
            rows = (self._names(spec).take(rows) if spec.param("score", "entropy") == "ngram"
                    else _suspicious_strings(spec, rows))
        # strings kept across the hunt become Categorical: a view of a parsed chunk's strings would keep the
        # whole chunk's buffers alive (measured: peak RSS 1.9 -> 4.6 GB on 1 M FortiGate lines without this)
        rows = rows.with_columns(pl.col(pl.String).cast(pl.Categorical))
        if spec.kernel in ("rise", "drop"):
            bucket = duration_us(spec.param("bucket", spec.window))
            rows = rows.group_by([*spec.key, (pl.col(_T).dt.epoch("us") // bucket).alias("_bucket")]).agg(
                pl.len().alias("_n"), pl.col(_T).min(), *[pl.col(r).first() for r in REFS if r not in spec.key],
                pl.col(_SEQ).first())  # the first row's frame: the order of the parts below
        return rows

    def take_rows(self) -> dict:
        """What this runner gathered, as plain data, and the runner emptied: a task's share of a hunt in several
        processes (``soc.distributed``), which the driver's runner ``absorb``s. Every waiting batch is prepared first;
        the rows keep the number of the frame they came from (``_SEQ``, counted from 0 in this runner)."""
        for sig in list(self._waiting):
            self._flush(sig)
        rows = {"parts": self._parts, "frames": self._seq, "events": self.events, "failures": self.failures,
                "last": self._last, "pairs": {k: scorer._pairs for k, scorer in self._scorers.items()}}
        self._parts, self._seq, self.events, self.failures, self._last, self._scorers = {}, 0, 0, [], {}, {}
        return rows

    def absorb(self, rows: dict) -> None:
        """A task's rows (``take_rows`` of a runner fed the frames that come next in the hunt) as if those frames
        were fed here: its frame numbers follow this runner's, so ``hits`` orders every row as one process fed
        them. A runner's prepared rows do not depend on how its small frames waited together (row by row
        filters; rise/drop's per-bucket counts are summed again in ``_rise_drop``, their first row by frame)."""
        base = self._seq
        for spec_id, parts in rows["parts"].items():
            self._parts.setdefault(spec_id, []).extend(p.with_columns(pl.col(_SEQ) + base) for p in parts)
        self._seq += rows["frames"]
        self.events += rows["events"]
        self.failures += rows["failures"]
        for spec_id, hi in rows["last"].items():
            self._last[spec_id] = max(self._last.get(spec_id, hi), hi)
        for spec_id, pairs in rows["pairs"].items():
            self._names(next(s for s in self.specs if s.id == spec_id))._pairs.extend(pairs)

    def hits(self) -> pl.DataFrame:
        """Every detector's hits over everything fed so far (one frame, possibly empty)."""
        for sig in list(self._waiting):
            self._flush(sig)
        out = []
        for spec in self.specs:
            if spec.id in self.done:  # run by key on detector partitions (``soc.distributed.shuffle``)
                found = self.done[spec.id]
                if isinstance(found, DetectorFailure):
                    self.failures.append(found)
                elif found.height:
                    out.append(found)
                continue
            parts = self._parts.get(spec.id)
            if not parts:
                continue
            try:
                rows = fed = _in_feed_order(parts)
                if spec.id in self._scorers:  # DNS names: leave out the resolvers' forwarded queries
                    rows = self._scorers[spec.id].finish(rows)
                found = run_detector(spec, rows, self._last.get(spec.id), self.final)
                if self.carry is not None:
                    self.carry[spec.id] = carried_rows(spec, fed, found)
                    self.late[spec.id] = late_rows(spec, fed)
            except Exception as exc:
                self.failures.append(DetectorFailure(spec.id, f"{type(exc).__name__}: {exc}"))
                continue
            if found.height:
                out.append(found)
        return pl.concat(out, how="diagonal_relaxed") if out else empty_hits()


def empty_hits() -> pl.DataFrame:
    return pl.DataFrame(schema={_T: TS, "rule.id": pl.String, "rule.name": pl.String, "rule.author": pl.String,
                                "rule.level": pl.String, "threat.technique.id": pl.List(pl.String),
                                "event.count": pl.Int64, "window.start": TS, "window.end": TS,
                                "detector.value": pl.Float64, "detector.excess": pl.Float64,
                                "evidence.distinct": pl.Int64,
                                "evidence.field": pl.String, "evidence.values": pl.List(pl.String),
                                "evidence.samples": pl.List(pl.String)})


def _suspicious_strings(spec: DetectorSpec, rows: pl.DataFrame) -> pl.DataFrame:
    """Rows whose ``value`` string scores high (entropy and length on Arrow buffers, ``kernels.string_stats``)."""
    from soc.detect import kernels

    if not rows.height:
        return rows
    arr = rows.get_column(spec.value).to_arrow()
    arr = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
    import pyarrow as pa

    arr = arr.cast(pa.large_string())
    validity, offsets, data = arr.buffers()
    n = len(arr)
    offs = np.frombuffer(offsets, np.int64)[arr.offset: arr.offset + n + 1]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    part = kernels.PARTS[spec.param("part", "longest_label")]
    length, entropy = kernels.string_stats(offs, raw, valid, part)
    keep = (entropy >= float(spec.param("min_entropy", 3.5))) & (length >= int(spec.param("min_length", 20)))
    return rows.filter(pl.Series(keep))


def _codes(series: pl.Series) -> np.ndarray:
    """Dense ids 0..m-1 of a column's values (-1 for null): Categorical physical codes (no string sort),
    compacted through a lookup table; other types by a dense rank."""
    from soc.detect import windows

    if series.dtype == pl.Categorical:
        codes = series.to_physical()
        codes = codes.to_numpy() if not codes.null_count() else codes.cast(pl.Int64).fill_null(-1).to_numpy()
        return windows.compact(codes)
    return series.rank("dense").cast(pl.Int64).fill_null(0).to_numpy() - 1


def _dense(frame: pl.DataFrame, names: list[str] | tuple[str, ...]) -> np.ndarray:
    """Dense ids of the (multi-column) key of each row; a null in any column gives -1."""
    ids = _codes(frame.get_column(names[0]))
    for name in names[1:]:
        more = _codes(frame.get_column(name))
        width = int(more.max()) + 1 if more.size else 1
        combined = np.where((ids < 0) | (more < 0), -1, ids * width + more)
        valid = combined >= 0
        _, inverse = np.unique(combined[valid], return_inverse=True)
        ids = np.full(combined.size, -1, np.int64)
        ids[valid] = inverse
    return np.ascontiguousarray(ids, dtype=np.int64)


def _times(frame: pl.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(frame.get_column(_T).dt.epoch("us").to_numpy(), dtype=np.int64)


def run_detector(spec: DetectorSpec, rows: pl.DataFrame, last_time=None, final: bool = True,
                 first_time: int | None = None) -> pl.DataFrame:
    """The hits of one detector on its accumulated rows (``final``: see ``_rise_drop``). ``first_time``: the
    hunt's first row (us) where ``rows`` are only some keys' (a first_seen baseline starts there)."""
    if spec.kernel in ("count", "distinct", "entropy", "beacon") and rows.height < spec.threshold:
        return empty_hits()  # what these count per key (rows, distinct values) cannot reach the threshold
    if spec.kernel in ("count", "distinct", "sum", "entropy"):
        return _windowed(spec, rows)
    if spec.kernel == "beacon":
        return _beacon(spec, rows)
    if spec.kernel in ("rise", "drop"):
        return _rise_drop(spec, rows, last_time, final)
    return _first_seen(spec, rows, first_time)


def _learns(spec: DetectorSpec) -> bool:
    """A DNS detector scored by ``soc.detect.domains``: its gates look at the whole hunt, not at a window."""
    return spec.kernel == "entropy" and spec.param("score", "entropy") == "ngram"


def carried_rows(spec: DetectorSpec, rows: pl.DataFrame, hits: pl.DataFrame, history: str = HISTORY
                 ) -> pl.DataFrame:
    """The rows of a detector (prepared, in feed order) that a job's next run must see again to give the hits
    of one hunt over everything (``soc.jobs.state`` has the reasoning), assuming events come in time order:

    - count, distinct, sum, entropy: the rows of the last ``window`` (a later row's window reaches no further
      back), and for a key whose last episode is still open (its last holding row within ``window`` of the
      newest row: a later row may extend it) its rows from that episode's first row on, so that the episode
      is reported again whole. Their statistics only grow with rows (counts, distinct values, sums of sizes):
      a carried row whose own window was cut short cannot hold where one hunt says it does not, nor the
      reverse where it matters (before an open trigger nothing held; after it the windows are whole).
    - first_seen: the first row of each (key, value) pair (the very first row, which starts the baseline,
      among them): that is all the kernel remembers.
    - beacon, rise/drop, learned-DNS entropy: every row of the last ``params.history`` (default ``HISTORY``):
      their statistics span the whole hunt. Within it, one hunt's hits exactly; beyond it, they are forgotten.
    """
    rows = rows.drop(CARRIED, strict=False)
    if not rows.height:
        return rows
    newest = rows.get_column(_T).max()
    if spec.kernel == "first_seen":
        value = spec.value or spec.evidence
        if value not in rows.columns:
            return rows.head(0)
        return (rows.filter(pl.col(value).is_not_null()).sort(_T, maintain_order=True)
                .unique([*spec.key, value], keep="first", maintain_order=True))
    if spec.kernel in ("beacon", "rise", "drop") or _learns(spec):
        since = newest - timedelta(microseconds=duration_us(spec.param("history", history)))
        return rows.filter(pl.col(_T) >= since)
    cut = newest - timedelta(microseconds=spec.span)
    still = hits.filter(pl.col("window.end") >= cut) if hits.height else hits
    if not still.height:
        return rows.filter(pl.col(_T) >= cut)
    keys = list(spec.key)
    names = [f"_k{i}" for i in range(len(keys))]
    opened = still.select(*[pl.col(k).cast(pl.String).alias(n) for k, n in zip(keys, names, strict=True)],
                          pl.col("window.start").alias("_from"))
    rows = rows.with_columns(pl.col(k).cast(pl.String).alias(n) for k, n in zip(keys, names, strict=True))
    rows = rows.join(opened, on=names, how="left", maintain_order="left")
    keep = (pl.col(_T) >= cut) | (pl.col(_T) >= pl.col("_from")).fill_null(False)
    return rows.filter(keep).drop(*names, "_from")


def late_rows(spec: DetectorSpec, rows: pl.DataFrame, history: str = HISTORY) -> int:
    """New rows (not ``CARRIED``) too old for what the last run carried: their window (or history; for
    first_seen, the pairs' first rows) reaches rows that were not kept, so around them a job's hits may differ
    from one hunt's. A source lagging behind the others by more than a window does this."""
    if CARRIED not in rows.columns:
        return 0
    carried = rows.filter(pl.col(CARRIED).is_not_null()).get_column(_T).max()
    if carried is None:
        return 0
    reach = 0 if spec.kernel == "first_seen" else duration_us(spec.param("history", history)) if (
        spec.kernel in ("beacon", "rise", "drop") or _learns(spec)) else spec.span
    limit = carried - timedelta(microseconds=reach)
    return rows.filter(pl.col(CARRIED).is_null() & (pl.col(_T) < limit)).height


def _windowed(spec: DetectorSpec, rows: pl.DataFrame) -> pl.DataFrame:
    """Window count, distinct count or sum per key, straight from rows in time order (the streaming kernels:
    no ordering by key), then the episodes where the statistic reaches the threshold."""
    from soc.detect import windows

    span = spec.span
    times = _times(rows)
    if times.size and not windows.is_sorted(times):  # files fed one after another: sort, ties in feed order
        rows = rows.sort(_T, maintain_order=True)
        times = _times(rows)
    keys = _dense(rows, spec.key)
    distinct = spec.kernel == "distinct" or (spec.kernel == "entropy" and spec.param("distinct", False))
    if spec.kernel == "count" or (spec.kernel == "entropy" and not distinct):
        stat = None
        holds = windows.stream_count(keys, times, span) >= int(np.ceil(spec.threshold))
    else:
        if distinct:
            stat = windows.stream_distinct(keys, times, _dense(rows, [spec.value]), span)  # null: -1, not counted
        else:
            stat, _ = windows.stream_sum(keys, times, rows.get_column(spec.value).fill_null(np.nan).to_numpy()
                                         .astype(np.float64), span)
        holds = stat >= spec.threshold
    trig, _, _, ep = windows.stream_episodes(keys, times, holds, span)
    if not trig.size:
        return empty_hits()
    value = (pl.len() if stat is None else pl.col("_stat").max()).cast(pl.Float64).alias("detector.value")
    seg = rows.with_columns(pl.Series("_ep", ep), pl.Series("_stat", stat if stat is not None else ep))
    seg = seg.filter(pl.col("_ep") >= 0)
    agg = seg.group_by("_ep").agg(
        pl.len().cast(pl.Int64).alias("event.count"), pl.col(_T).min().alias("window.start"),
        pl.col(_T).max().alias("window.end"), value, *_evidence(spec, rows.columns)
    ).join(_hit_values(spec, seg), on="_ep")
    return _finish(spec, rows[trig].with_columns(pl.Series("_ep", np.arange(trig.size))).join(agg, on="_ep"))


def _reference() -> pl.Expr:
    """A row's record as ``path:line`` (its offset where it has no line; ``?`` for what is missing)."""
    return pl.concat_str([pl.col("log.file.path").cast(pl.String).fill_null("?"), pl.lit(":"),
                          pl.coalesce(pl.col("log.line"), pl.col("log.offset")).cast(pl.String).fill_null("?")])


def _evidence(spec: DetectorSpec, columns: list[str]) -> list[pl.Expr]:
    ref = _reference()
    out = [ref.head(5).alias("evidence.samples")]
    if spec.evidence:
        out.append(pl.col(spec.evidence).drop_nulls().n_unique().cast(pl.Int64).alias("evidence.distinct")
                   if spec.evidence in columns else pl.lit(None, pl.Int64).alias("evidence.distinct"))
    return out


def evidence_field(spec: DetectorSpec) -> str | None:
    """The field whose values a hit lists: the spec's ``evidence``, else its ``value``; rise/drop list their
    buckets (``bucket``)."""
    if spec.kernel in ("rise", "drop"):
        return "bucket"
    return spec.evidence or spec.value


def _short(text: pl.Expr) -> pl.Expr:
    """A value cut to ``VALUE_CHARS`` characters (an ellipsis says it was cut): a 2 KB URL is not triage."""
    return (pl.when(text.str.len_chars() > VALUE_CHARS)
            .then(pl.concat_str(text.str.slice(0, VALUE_CHARS - 1), pl.lit("\u2026"))).otherwise(text))


def _hit_values(spec: DetectorSpec, seg: pl.DataFrame) -> pl.DataFrame:
    """``_ep`` -> ``evidence.values`` and ``evidence.field`` of each hit: those of ``params.evidence_first`` when
    the hit has any (a beacon's TLS server names), else those of the evidence field (its port)."""
    field = evidence_field(spec)
    out = _top_values(seg, field, "_ep").with_columns(pl.lit(field, pl.String).alias("evidence.field"))
    first = spec.param("evidence_first", None)
    if not first or first not in seg.columns:
        return out
    some = pl.col("_first").list.len() > 0
    return out.join(_top_values(seg, first, "_ep").rename({"evidence.values": "_first"}), on="_ep").select(
        "_ep", pl.when(some).then(pl.col("_first")).otherwise(pl.col("evidence.values")).alias("evidence.values"),
        pl.when(some).then(pl.lit(first)).otherwise(pl.col("evidence.field")).alias("evidence.field"))


def _top_values(rows: pl.DataFrame, field: str | None, group: str) -> pl.DataFrame:
    """``group`` -> ``evidence.values``: the ``EVIDENCE_VALUES`` most frequent distinct non-null values of
    ``field`` among each group's rows, most frequent first (ties: the first seen first, so a scan's ports
    come in the order they were probed; rows are in time order, ties of time in feed order)."""
    if field is None or field not in rows.columns:
        return rows.select(pl.col(group).unique(), pl.lit([], pl.List(pl.String)).alias("evidence.values"))
    # counted by the column as it is (Categorical: no string per row), the few values kept made strings after
    counted = (rows.select(group, pl.col(field).alias("_v")).with_row_index("_i").drop_nulls("_v")
               .group_by(group, "_v").agg(pl.len().alias("_n"), pl.col("_i").min()))
    top = counted.group_by(group).agg(_short(pl.col("_v").sort_by(["_n", "_i"], descending=[True, False])
                                             .head(EVIDENCE_VALUES).cast(pl.String)).alias("evidence.values"))
    return rows.select(pl.col(group).unique()).join(top, on=group, how="left").with_columns(
        pl.col("evidence.values").fill_null(pl.lit([], pl.List(pl.String))))


def _beacon(spec: DetectorSpec, rows: pl.DataFrame) -> pl.DataFrame:
    from soc.detect import kernels, windows

    keys = _dense(rows, spec.key)
    perm, okeys, otimes = windows.order(keys, _times(rows))
    records, record_keys = perm, okeys  # every record, for the values a hit lists (ssl.log's beside conn.log's)
    same = duration_us(spec.param("same_within", "1s"))
    if same > 0 and okeys.size > 1:  # one call-back logged by several records (conn + rdp, two weird lines)
        keep = np.ones(okeys.size, bool)
        keep[1:] = (okeys[1:] != okeys[:-1]) | (np.diff(otimes) >= same)
        perm, okeys, otimes = perm[keep], okeys[keep], otimes[keep]
    ordered = rows[perm]
    _, first, last, count, mean, cv, mad = kernels.periodicity(okeys, otimes)
    ok = ((count >= spec.threshold) & (mad <= float(spec.param("max_mad_ratio", 0.1)))
          & (cv <= float(spec.param("max_cv", 1.0))) & (mean >= duration_us(spec.param("min_interval", "10s"))))
    sel = np.flatnonzero(ok)
    most = spec.param("max_sources", None)
    if most is not None and len(spec.key) > 1 and sel.size:  # a destination many beacon to is a service
        heads = ordered[first[sel]].select(spec.key)
        sources = heads.select(pl.col(spec.key[0]).n_unique().over(spec.key[1:])).to_series().to_numpy()
        sel = sel[sources <= int(most)]
    if not sel.size:
        return empty_hits()
    ep = np.full(ordered.height, -1, np.int64)
    for i, g in enumerate(sel):
        ep[first[g]: last[g] + 1] = i
    seg = ordered.with_columns(pl.Series("_ep", ep)).filter(pl.col("_ep") >= 0)
    agg = seg.group_by("_ep").agg(
        pl.len().cast(pl.Int64).alias("event.count"), pl.col(_T).min().alias("window.start"),
        pl.col(_T).max().alias("window.end"), *_evidence(spec, rows.columns)
    )
    ep_of_key = np.full(int(keys.max()) + 1, -1, np.int64)
    ep_of_key[okeys[first[sel]]] = np.arange(sel.size)
    every = rows[records].with_columns(pl.Series("_ep", ep_of_key[record_keys])).filter(pl.col("_ep") >= 0)
    agg = agg.join(_hit_values(spec, every), on="_ep")
    head = ordered[first[sel]].with_columns(
        pl.Series("_ep", np.arange(sel.size)), pl.Series("detector.value", mad[sel]),
        pl.Series("beacon.interval_s", mean[sel] / 1e6), pl.Series("beacon.cv", cv[sel]))
    return _finish(spec, head.join(agg, on="_ep"))


def _rise_drop(spec: DetectorSpec, rows: pl.DataFrame, last_time, final: bool = True) -> pl.DataFrame:
    """Rises or drops per key (see the module docstring). Not ``final`` (a job's run, more events to come): a
    drop in the last bucket, still open, is left for a later run (more events may fill it); a rise is certain
    as soon as it is seen (its count can only grow) and is reported at once."""
    from soc.detect import kernels

    bucket = duration_us(spec.param("bucket", spec.window))
    refs = [r for r in REFS if r not in spec.key]
    # a key can only rise to min_count (drop from min_baseline) if one of its buckets reaches it: the EWMA
    # stays below the largest count. Skipping the others keeps the walk over empty buckets short.
    floor = float(spec.param("min_count", 10) if spec.kernel == "rise" else spec.param("min_baseline", 10))
    rows = rows.group_by([*spec.key, "_bucket"]).agg(pl.col("_n").sum(), pl.col(_T).min(),
                                                    *[pl.col(r).first() for r in refs])
    busy = rows.group_by(spec.key).agg(pl.col("_n").max().alias("_max")).filter(pl.col("_max") >= floor)
    rows = rows.join(busy.select(spec.key), on=list(spec.key), how="semi")
    if not rows.height:
        return empty_hits()
    keys = _dense(rows, spec.key)
    rows = rows.with_columns(pl.Series("_key", keys)).sort(["_key", "_bucket"])
    last_bucket = int(rows.get_column("_bucket").max())
    if last_time is not None:
        last_bucket = max(last_bucket, int(pl.Series([last_time]).cast(TS).dt.epoch("us")[0]) // bucket)
    mode = kernels.RISE if spec.kernel == "rise" else kernels.DROP
    k, b, x, base, z = kernels.rise_drop(
        rows.get_column("_key").to_numpy().astype(np.int64), rows.get_column("_bucket").to_numpy().astype(np.int64),
        rows.get_column("_n").to_numpy().astype(np.float64), last_bucket, float(spec.param("alpha", 0.3)),
        int(spec.param("warmup", 6)), float(spec.param("min_scale", 1.0)), mode, float(spec.threshold),
        float(spec.param("min_count", 10)), float(spec.param("max_ratio", 0.2)),
        float(spec.param("min_baseline", 10)))
    if not k.size:
        return empty_hits()
    pts = pl.DataFrame({"_key": k, "_bucket": b, "_x": x, "_base": base, "_z": z})
    if not final and spec.kernel == "drop":
        pts = pts.filter(pl.col("_bucket") < last_bucket)
        if not pts.height:
            return empty_hits()
    pts = pts.with_columns((pl.col("_bucket") - pl.col("_bucket").rank("ordinal").over("_key")).alias("_run"))
    # the evidence of a run: its buckets, furthest from the baseline first ("2026-12-07 10:00: 523 (baseline 12)")
    text = pl.concat_str([(pl.col("_bucket") * bucket).cast(TS).dt.strftime("%Y-%m-%d %H:%M"), pl.lit(": "),
                          pl.col("_x").round(0).cast(pl.Int64).cast(pl.String), pl.lit(" (baseline "),
                          pl.col("_base").round(0).cast(pl.Int64).cast(pl.String), pl.lit(")")])
    runs = pts.group_by("_key", "_run").agg(
        pl.col("_bucket").min().alias("_b0"), pl.col("_bucket").max().alias("_b1"),
        pl.col("_x").sum().cast(pl.Int64).alias("event.count"), pl.col("_base").mean().alias("volume.baseline"),
        (pl.col("_z").max() if spec.kernel == "rise" else pl.col("_z").min()).alias("detector.value"),
        text.sort_by([pl.col("_z").abs(), pl.col("_bucket")], descending=[True, False]).head(EVIDENCE_VALUES)
        .alias("evidence.values"))
    names = rows.group_by("_key").agg(*[pl.col(c).first() for c in spec.key])
    # the record: the first of the run's first bucket, or for a silent bucket the last one seen before it
    out = runs.join(names, on="_key").sort("_b0").join_asof(
        rows.select("_key", "_bucket", *refs).sort("_bucket"), left_on="_b0", right_on="_bucket", by="_key",
        strategy="backward", check_sortedness=False)
    out = out.with_columns((pl.col("_b0") * bucket).cast(TS).alias("window.start"),
                           ((pl.col("_b1") + 1) * bucket - 1).cast(TS).alias("window.end"))
    return _finish(spec, out.with_columns(pl.col("window.start").alias(_T),
                                          pl.lit([], pl.List(pl.String)).alias("evidence.samples")))


def _first_seen(spec: DetectorSpec, rows: pl.DataFrame, first_time: int | None = None) -> pl.DataFrame:
    from soc.detect import kernels, windows

    value = spec.value or spec.evidence
    if value is None or value not in rows.columns:
        raise ValueError("first_seen needs a value field")
    rows = rows.filter(pl.col(value).is_not_null())
    times = _times(rows)
    if times.size and not windows.is_sorted(times):
        by_time = np.argsort(times, kind="stable")
        rows, times = rows[by_time], times[by_time]
    if not times.size:
        return empty_hits()
    pairs = _dense(rows, [*spec.key, value])
    keys = _dense(rows, spec.key)
    baseline_end = int(times[0] if first_time is None else first_time) + duration_us(spec.param("baseline", "1d"))
    found = kernels.first_seen(pairs, keys, times, int(pairs.max()) + 1, int(keys.max()) + 1, baseline_end)
    if not found.size:
        return empty_hits()
    out = rows[found]
    if CARRIED in out.columns:  # carried from a job's earlier run: reported then
        out = out.filter(pl.col(CARRIED).is_null())
        if not out.height:
            return empty_hits()
    out = out.with_columns(pl.lit(1, pl.Int64).alias("event.count"), pl.col(_T).alias("window.start"),
                           pl.col(_T).alias("window.end"), pl.lit(1.0).alias("detector.value"))
    ref = _reference()
    field = evidence_field(spec)
    shown = _short(pl.col(field).cast(pl.String)) if field in out.columns else pl.lit(None, pl.String)
    return _finish(spec, out.with_columns(pl.concat_list(ref).alias("evidence.samples"),
                                          pl.concat_list(shown).list.drop_nulls().alias("evidence.values")))


def _excess(spec: DetectorSpec) -> pl.Expr:
    """How many times the threshold the hit's statistic reached (>= 1; the alert's risk grows with it): the
    window statistic, a beacon's connections, a rise's or drop's z-score; 1 for a first-seen value."""
    if spec.kernel == "first_seen" or spec.threshold <= 0:
        return pl.lit(1.0)
    stat = {"beacon": pl.col("event.count"), "drop": -pl.col("detector.value")}.get(spec.kernel,
                                                                                   pl.col("detector.value"))
    return (stat.cast(pl.Float64) / spec.threshold).clip(lower_bound=1.0).fill_nan(1.0).fill_null(1.0)


def _finish(spec: DetectorSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """Rule metadata and the hit columns, in a stable order (sorted by time, then entity)."""
    meta = [pl.lit(spec.id).alias("rule.id"), pl.lit(spec.name).alias("rule.name"), pl.lit("soc").alias("rule.author"),
            pl.lit(spec.level).alias("rule.level"),
            pl.lit(list(spec.techniques), pl.List(pl.String)).alias("threat.technique.id"),
            pl.lit(spec.threshold).alias("detector.threshold")]
    if spec.layer is not None:
        meta.append(pl.lit(str(spec.layer)).alias("labels.layer"))
    if "evidence.distinct" not in frame.columns:
        meta.append(pl.lit(None, pl.Int64).alias("evidence.distinct"))
    if "evidence.values" not in frame.columns:
        meta.append(pl.lit([], pl.List(pl.String)).alias("evidence.values"))
    if "evidence.field" not in frame.columns:
        meta.append(pl.lit(evidence_field(spec), pl.String).alias("evidence.field"))
    meta.append(_excess(spec).alias("detector.excess"))
    frame = frame.with_columns(meta)
    if levels := spec.param("levels", None):  # confidence: {high: 100}: a statistic of 100 or more is high
        level = pl.lit(spec.level)
        if not isinstance(levels, dict) or set(map(str, levels)) - set(LEVELS):
            raise ValueError(f"params.levels {levels!r}: want {{level: value}}, levels among {', '.join(LEVELS)}")
        for name, at in sorted(levels.items(), key=lambda kv: float(kv[1])):
            level = pl.when(pl.col("detector.value") >= float(at)).then(pl.lit(str(name))).otherwise(level)
        frame = frame.with_columns(level.alias("rule.level"))
    extra = [c for c in frame.columns if c.startswith(("beacon.", "volume.")) or c in spec.key]
    front = [_T, "rule.id", "rule.name", "rule.author", "rule.level", "threat.technique.id", *spec.key,
             "event.count", "window.start", "window.end", "detector.value", "detector.threshold",
             "detector.excess", "evidence.distinct", "evidence.field", "evidence.values", "evidence.samples", *REFS]
    if spec.layer is not None:
        front.append("labels.layer")
    cols = list(dict.fromkeys([*front, *extra]))
    frame = frame.with_columns(pl.col(pl.Categorical).cast(pl.String))
    return frame.select([pl.col(c) for c in cols]).with_columns(
        pl.col("event.count").cast(pl.Int64), pl.col("detector.value").cast(pl.Float64)).sort([_T, *spec.key])


class DetectSink(FeedSink):
    """A pipeline sink that feeds every frame to the detectors as it passes, then hands it on to ``inner``."""

    def __init__(self, runner: DetectorRunner, inner):
        super().__init__(runner.feed, inner)
        self.runner = runner
