"""Engine for Windows event log files (``.evtx``), read with the Rust ``evtx`` package.

Records come as JSON text, ``batch`` at a time (spec ``evtx: {batch: N}``, default 50,000), taken from
the package's iterator in bulk (``islice``: no Python statement per record). The batch's JSON is joined
in one Arrow buffer and walked by Numba (``soc.parse.evtx_kernel``): the System leaves and the
EventData/UserData fields of every record as byte spans, records grouped by (channel, event id). The
System fields are typed once for the batch (records ordered by group); each group's frame is a slice
of that, plus its own columns of string views into the buffer (``soc.parse.windows``). A record the
walker cannot take (malformed JSON, an escaped field name) goes the slower way: Polars decodes it, and
a record that does not decode is dead-lettered with the reason.

Counts: the chunk headers of the file say which record numbers it holds; a record the ``evtx`` package
does not return (a corrupt or truncated chunk: it warns and skips it) is dead-lettered with the reason
and its raw bytes as far as the file has them, so records read = parsed + dead-lettered.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import struct
import tempfile
import threading
import warnings
from collections.abc import Iterator
from itertools import islice
from operator import itemgetter
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from soc.parse import evtx_kernel as kernel
from soc.parse.batch import ParseResult, empty_dead
from soc.parse.engines.records import RecordEngine
from soc.parse.windows import mapping_of
from soc.schema import DEAD_LETTERS

MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
HEADER_SIZE = 4096
CHUNK_SIZE = 65536
MAX_RECORDS_PER_CHUNK = CHUNK_SIZE // 24  # the smallest record is 24 bytes with nothing in it
CHANNEL = r'"Channel":"((?:[^"\\]|\\.)*)"'
EVENT_ID = r'"EventID":(?:\{"#attributes":\{[^{}]*\},"#text":)?"?(\d+)'
RANGE = re.compile(r"record IDs (\d+)\.\.(\d+)")
_FIELDS = itemgetter("data", "event_record_id", "timestamp")
# System fields: raw name -> path in the record's JSON (``#attributes`` are XML attributes)
SYSTEM = {
    "System.Provider": ("Provider", "#attributes", "Name"),
    "System.ProviderGuid": ("Provider", "#attributes", "Guid"),
    "System.EventSourceName": ("Provider", "#attributes", "EventSourceName"),
    "System.EventID": ("EventID",),
    "System.Qualifiers": ("EventID", "#attributes", "Qualifiers"),
    "System.Version": ("Version",),
    "System.Level": ("Level",),
    "System.Task": ("Task",),
    "System.Opcode": ("Opcode",),
    "System.Keywords": ("Keywords",),
    "System.TimeCreated": ("TimeCreated", "#attributes", "SystemTime"),
    "System.EventRecordID": ("EventRecordID",),
    "System.ActivityID": ("Correlation", "#attributes", "ActivityID"),
    "System.RelatedActivityID": ("Correlation", "#attributes", "RelatedActivityID"),
    "System.ProcessID": ("Execution", "#attributes", "ProcessID"),
    "System.ThreadID": ("Execution", "#attributes", "ThreadID"),
    "System.Channel": ("Channel",),
    "System.Computer": ("Computer",),
    "System.UserID": ("Security", "#attributes", "UserID"),
}


class EvtxEngine(RecordEngine):
    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        self.mapping = mapping_of(spec)
        self.batch_size = int(spec.options.get("batch", 50_000))

    def read(self, stream: BinaryIO, path: str | None) -> Iterator[ParseResult]:
        """Parse the EVTX file at ``path`` (a plain file) or in ``stream`` (spooled to disk first)."""
        import evtx

        spool = None
        if path is None:  # compressed or stdin: the evtx parser needs to seek
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
            shutil.copyfileobj(stream, spool, 1 << 20)
            spool.seek(0)
        target = path if path is not None else spool
        try:
            chunks = chunk_ranges(target)
            seen: list[np.ndarray] = []
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    records = evtx.PyEvtxParser(target, skip_errors=True).records_json()
                except (OSError, RuntimeError, ValueError) as exc:
                    yield self._unreadable(target, f"not a readable EVTX file: {exc}")
                    return
                announced = sum(last - first + 1 for _, first, last in chunks)
                # one batch (most files): nothing to overlap, so no reader thread (its start costs ~1 ms)
                batches = read_ahead(records, self.batch_size) if announced > self.batch_size \
                    else _batches(records, self.batch_size)
                for data, ids, stamps in batches:
                    seen.append(np.array(ids, np.int64))
                    yield self._batch(data, ids, stamps)
                    del data, ids, stamps
            problems = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
            missing = self._missing(target, chunks, seen, problems)
            if missing.height:
                yield ParseResult({}, missing, missing.height)
        finally:
            if spool is not None:
                spool.close()

    def _batch(self, data: list[str], ids: list[int], stamps: list[str]) -> ParseResult:
        """Typed frames of one batch of records, one per (channel, event id): the Numba walker finds
        every value (``soc.parse.evtx_kernel``); the records it cannot take go the slower way."""
        n = len(data)
        text = pa.array(data, pa.large_string())
        data.clear()  # the Python strings (a batch's size again) are not needed past this point
        data_buf = text.buffers()[2] or pa.py_buffer(b"")
        offs = np.frombuffer(text.buffers()[1], np.int64, n + 1, text.offset * 8)
        buf = np.frombuffer(data_buf, np.uint8)
        walked = kernel.walk_batch(buf, offs)
        record_ids = np.asarray(ids, np.int64)
        parts = []
        odd = np.flatnonzero(walked.err)
        if odd.size:
            parts.append(self._slow(pl.Series("data", text.take(pa.array(odd))),
                                    pl.Series("id", record_ids[odd]), pl.Series("stamp", stamps).gather(odd)
                                    .str.strip_suffix(" UTC")))
        if walked.order.size:
            parts += self._walked(walked, buf, data_buf, text, record_ids, stamps)
        return merge_relaxed(n, parts)

    def _walked(self, w: kernel.Walked, buf: np.ndarray, data_buf: pa.Buffer, text: pa.Array,
                record_ids: np.ndarray, stamps: list[str]) -> list[ParseResult]:
        """System fields typed once for the batch (records ordered by group); each group adds its event
        columns and its fields, slices of one column block."""
        order = w.order
        m = order.size
        extra = pa.py_buffer(w.extra)
        sys_cols = _strings(kernel.views(buf, w.extra, w.ss[:, order].ravel(), w.se[:, order].ravel()),
                            data_buf, extra)
        system = pl.DataFrame([sys_cols.slice(i * m, m).alias(name) for i, name in enumerate(kernel.SYSTEM_NAMES)])
        stamp = pl.Series("Record.Timestamp", stamps, pl.String).gather(order).str.strip_suffix(" UTC")
        line = pl.Series("log.line", record_ids[order])
        origin = {
            "log.file.path": pl.Series("log.file.path", [self.ctx.path], pl.Categorical).new_from_index(0, m),
            "log.offset": pl.Series("log.offset", [None], pl.Int64).new_from_index(0, m),
            "log.line": line,
        }
        base, base_reason = self.mapping.base(system.hstack([stamp]), self.ctx, origin)
        cells = _strings(kernel.views(buf, w.extra, w.cs, w.ce), data_buf, extra)
        names = [bytes(buf[w.fields[f, 1]: w.fields[f, 2]]).decode() for f in w.name_rows]
        base_bad = base_reason.is_not_null().to_numpy()  # per group below: a numpy slice, not a query
        no_dead = empty_dead()
        parts = []
        for g in range(w.starts.size - 1):
            a, size = int(w.starts[g]), int(w.starts[g + 1] - w.starts[g])
            first = int(order[a])
            channel, event_id = w.text(buf, kernel.CHANNEL, first), w.text(buf, kernel.EVENT_ID, first)
            cols, data_names = [], []
            at = int(w.cell_starts[g])
            for j, k in enumerate(w.columns[w.col_starts[g]: w.col_starts[g + 1]].tolist()):
                name = names[k]
                if name not in SYSTEM:
                    cols.append(cells.slice(at + j * size, size).alias(name))
                    data_names.append(name)
            raw = pl.DataFrame(cols) if cols else pl.DataFrame(height=size)
            group_reason = base_reason.slice(a, size)
            frame, reason = self.mapping.event(base.slice(a, size), group_reason, raw, data_names,
                                               channel, event_id, self.ctx)
            key = self.mapping.key(channel, event_id)
            if reason is group_reason and not base_bad[a: a + size].any():
                parts.append(ParseResult({key: frame}, no_dead, size))
                continue
            bad = reason.is_not_null()
            if not bad.any():
                parts.append(ParseResult({key: frame}, no_dead, size))
                continue
            rows = order[a: a + size][bad.to_numpy()]
            parts.append(ParseResult({key: frame.filter(~bad)},
                                     self._dead(pl.Series(text.take(pa.array(rows))), pl.Series(record_ids[rows]),
                                                reason.filter(bad)), size))
        return parts

    def _slow(self, text: pl.Series, ids: pl.Series, stamps: pl.Series) -> ParseResult:
        """Records the walker did not take: Polars decodes them, group by group."""
        keys = pl.DataFrame({
            "channel": text.str.extract(CHANNEL), "event_id": text.str.extract(EVENT_ID),
        }).with_row_index("row")
        groups = keys.group_by(["channel", "event_id"], maintain_order=True).agg("row")
        parts = []
        for channel, event_id, rows in groups.iter_rows():
            take = pl.Series(rows, dtype=pl.UInt32)
            parts.append(self._group(text.gather(take), ids.gather(take), stamps.gather(take), channel, event_id))
        return merge_relaxed(text.len(), parts)

    def _group(self, text: pl.Series, ids: pl.Series, stamps: pl.Series, channel: str | None,
               event_id: str | None) -> ParseResult:
        try:
            raw, names = flatten(text.str.json_decode(infer_schema_length=None))
        except Exception:  # noqa: BLE001 - one record the decoder refuses must not sink its group
            return self._one_by_one(text, ids, stamps, channel, event_id)
        return self._typed(raw, names, text, ids, stamps, channel, event_id)

    def _one_by_one(self, text: pl.Series, ids: pl.Series, stamps: pl.Series, channel: str | None,
                    event_id: str | None) -> ParseResult:
        """The slow way for a group that does not decode as a whole: each record alone."""
        parts = []
        for i in range(text.len()):
            one = text.slice(i, 1)
            try:
                raw, names = flatten(one.str.json_decode(infer_schema_length=None))
            except Exception as exc:  # noqa: BLE001
                why = f"record JSON does not decode: {str(exc).splitlines()[0][:200]}"
                parts.append(ParseResult({}, self._dead(one, ids.slice(i, 1), why), 1))
                continue
            parts.append(self._typed(raw, names, one, ids.slice(i, 1), stamps.slice(i, 1), channel, event_id))
        frames: dict = {}
        for part in parts:
            for key, frame in part.frames.items():
                frames.setdefault(key, []).append(frame)
        dead = [p.dead for p in parts if p.dead.height]
        return ParseResult({k: pl.concat(v, how="diagonal_relaxed") for k, v in frames.items()},
                           pl.concat(dead) if dead else empty_dead(), text.len())

    def _typed(self, raw: pl.DataFrame, names: list[str], text: pl.Series, ids: pl.Series,
               stamps: pl.Series, channel: str | None, event_id: str | None) -> ParseResult:
        raw = raw.with_columns(stamps.alias("Record.Timestamp"))
        n = text.len()
        origin = {
            "log.file.path": pl.Series("log.file.path", [self.ctx.path], pl.Categorical).new_from_index(0, n),
            "log.offset": pl.Series("log.offset", [None], pl.Int64).new_from_index(0, n),
            "log.line": ids.alias("log.line"),
        }
        frame, reason = self.mapping.typed(raw, names, channel, event_id, self.ctx, origin)
        key = self.mapping.key(channel, event_id)
        bad = reason.is_not_null()
        if not bad.any():
            return ParseResult({key: frame}, empty_dead(), n)
        return ParseResult({key: frame.filter(~bad)}, self._dead(text.filter(bad), ids.filter(bad),
                                                                 reason.filter(bad)), n)

    def _dead(self, text: pl.Series, ids: pl.Series, reasons: pl.Series | str) -> pl.DataFrame:
        n = text.len()
        why = reasons if isinstance(reasons, pl.Series) else pl.Series([reasons]).new_from_index(0, n)
        return pl.DataFrame({
            "log.file.path": pl.Series([self.ctx.path], dtype=pl.String).new_from_index(0, n),
            "log.line": ids, "log.offset": pl.Series([None], dtype=pl.Int64).new_from_index(0, n),
            "error.message": why.alias("error.message"), "event.original": text.cast(pl.Binary),
        }, schema=DEAD_LETTERS)

    def _unreadable(self, target, why: str) -> ParseResult:
        head = _read_at(target, 0, 4096)
        dead = pl.DataFrame({"log.file.path": [self.ctx.path], "log.line": [None], "log.offset": [0],
                             "error.message": [why], "event.original": [head]}, schema=DEAD_LETTERS)
        return ParseResult({}, dead, 1)

    def _missing(self, target, chunks: list[tuple[int, int, int]], seen: list[np.ndarray],
                 problems: list[str]) -> pl.DataFrame:
        """Dead letters of the records the chunk headers announce but the parser did not return."""
        if not chunks:
            return empty_dead()
        got = np.unique(np.concatenate(seen)) if seen else np.zeros(0, np.int64)
        spans = np.array(chunks, np.int64).reshape(-1, 3)
        have = np.searchsorted(got, spans[:, 2], "right") - np.searchsorted(got, spans[:, 1], "left")
        short = np.flatnonzero(have < spans[:, 2] - spans[:, 1] + 1)  # chunks with records not returned
        rows = []
        size = _size(target)
        for offset, first, last in spans[short].tolist():
            want = np.arange(first, last + 1, dtype=np.int64)
            lo, hi = np.searchsorted(got, first, "left"), np.searchsorted(got, last, "right")
            missing = np.setdiff1d(want, got[lo:hi])
            if not missing.size:
                continue
            why = _reason(first, last, offset, size, problems)
            located = _locate(_read_at(target, offset, CHUNK_SIZE), offset)
            for rid in missing.tolist():
                at, raw = located.get(rid, (offset, b""))
                rows.append((self.ctx.path, rid, at, why, raw))
        if not rows:
            return empty_dead()
        cols = list(zip(*rows, strict=True))
        return pl.DataFrame(dict(zip(DEAD_LETTERS, cols, strict=True)), schema=DEAD_LETTERS)


_DONE = object()
READ_STEP = 256  # records taken from the parser per call by the read-ahead thread


def _batches(records, size: int) -> Iterator[tuple[list[str], list[int], list[str]]]:
    """The records ``size`` at a time, read on the caller's thread (see ``read_ahead``)."""
    while rows := list(map(_FIELDS, islice(records, size))):
        yield tuple(list(c) for c in zip(*rows, strict=True))
        del rows


def read_ahead(records, size: int) -> Iterator[tuple[list[str], list[int], list[str]]]:
    """The records ``size`` at a time as (JSON texts, record ids, timestamps), taken in bulk (``islice``:
    no Python statement per record) by a thread that reads the next batch while the caller parses this
    one (the walker and Polars release the GIL). At most one batch waits, so memory stays two batches."""
    box: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            while not stop.is_set():
                # a few hundred records per call: a call into the parser holds the GIL throughout, so one
                # call per batch would stop the caller's thread for the whole batch (no overlap at all)
                rows: list = []
                while len(rows) < size:
                    got = list(map(_FIELDS, islice(records, min(READ_STEP, size - len(rows)))))
                    if not got:
                        break
                    rows += got
                if not rows:
                    break
                put(tuple(list(c) for c in zip(*rows, strict=True)))
                del rows
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            put(exc)
        put(_DONE)

    thread = threading.Thread(target=produce, name="evtx-read", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def merge_relaxed(lines: int, parts: list[ParseResult]) -> ParseResult:
    """One result of parts that may hold the same key (the walker's and the slower way's frames of a
    group can differ in their columns)."""
    frames: dict[tuple[str, str], list[pl.DataFrame]] = {}
    for part in parts:
        for key, frame in part.frames.items():
            if frame.height:
                frames.setdefault(key, []).append(frame)
    dead = [p.dead for p in parts if p.dead.height]
    return ParseResult({k: v[0] if len(v) == 1 else pl.concat(v, how="diagonal_relaxed") for k, v in frames.items()},
                       pl.concat(dead) if dead else empty_dead(), lines)


def _strings(views: tuple[np.ndarray, np.ndarray], data: pa.Buffer, extra: pa.Buffer) -> pl.Series:
    """One String series of string views into the batch's JSON text and the unescaped strings."""
    out, valid = views
    mask = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pl.Series(pa.Array.from_buffers(pa.string_view(), valid.size, [mask, pa.py_buffer(out), data, extra]))


def flatten(decoded: pl.Series, system: bool = True) -> tuple[pl.DataFrame, list[str]]:
    """String fields of decoded records: ``System.*`` and the EventData (or UserData, ...) fields, made by
    one query whose expressions follow the decoded schema. Returns them and the data fields' names."""
    schema = decoded.dtype
    event = _sub(schema, "Event")
    if event is None:
        raise ValueError("no Event element")
    root = pl.col("d").struct.field("Event")
    exprs: dict[str, pl.Expr] = {}
    for name, path in SYSTEM.items() if system else ():
        expr, dtype = root.struct.field("System"), _sub(event, "System")
        for step in path:
            sub = _sub(dtype, step)
            if sub is None:
                break
            expr, dtype = expr.struct.field(step), sub
        else:
            exprs[name] = text_of(expr, dtype).alias(name)
    names: list[str] = []
    for part, block in event.to_schema().items():
        if part in ("System", "#attributes") or not isinstance(block, pl.Struct):
            continue
        expr = root.struct.field(part)
        inner = [f for f in block.to_schema() if f != "#attributes"]
        if part != "EventData" and len(inner) == 1 and isinstance(_sub(block, inner[0]), pl.Struct):
            expr, block = expr.struct.field(inner[0]), _sub(block, inner[0])  # UserData/<Element>/fields
        for field, dtype in block.to_schema().items():
            if field == "#attributes" or field in exprs or field in SYSTEM:
                continue
            exprs[field] = text_of(expr.struct.field(field), dtype).alias(field)
            names.append(field)
    if not exprs:  # nothing to read: still one row per record
        exprs["System.Channel"] = pl.repeat(None, decoded.len(), dtype=pl.String).alias("System.Channel")
    return decoded.to_frame("d").select(list(exprs.values())), names


def text_of(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A decoded JSON value as the text the log holds: numbers and booleans as written, an element with
    attributes by its text, lists and other objects as JSON."""
    if dtype == pl.String:
        return value
    if isinstance(dtype, pl.Struct):
        text = _sub(dtype, "#text")
        return value.struct.json_encode() if text is None else text_of(value.struct.field("#text"), text)
    if isinstance(dtype, pl.List | pl.Array):
        encoded = pl.struct(value.alias("v")).struct.json_encode()
        return encoded.str.slice(5, encoded.str.len_chars() - 6)
    if dtype == pl.Boolean:
        return pl.when(value).then(pl.lit("true")).when(~value).then(pl.lit("false"))
    return value.cast(pl.String)


def _sub(dtype: pl.DataType | None, name: str) -> pl.DataType | None:
    """The type of field ``name`` of a struct type (None if it has none)."""
    if not isinstance(dtype, pl.Struct):
        return None
    for f in dtype.fields:
        if f.name == name:
            return f.dtype
    return None


def chunk_ranges(target) -> list[tuple[int, int, int]]:
    """(file offset, first record number, last record number) of every chunk the file's headers announce."""
    if isinstance(target, str):
        with open(target, "rb") as fh:
            return chunk_ranges(fh)
    out = []
    size = _size(target)
    offset = HEADER_SIZE
    while offset + 32 <= size:
        head = _read_at(target, offset, 32)
        if head[:8] == CHUNK_MAGIC:
            first, last = struct.unpack_from("<QQ", head, 8)
            if first <= last and last - first < MAX_RECORDS_PER_CHUNK:
                out.append((offset, first, last))
        offset += CHUNK_SIZE
    return out


def _reason(first: int, last: int, offset: int, size: int, problems: list[str]) -> str:
    for text in problems:
        m = RANGE.search(text)
        if m and int(m.group(1)) <= last and int(m.group(2)) >= first:
            return text[:500]
    if offset + CHUNK_SIZE > size:
        return f"chunk at byte {offset} (records {first}..{last}) is truncated: the file ends at byte {size}"
    if problems:
        return f"record not returned by the evtx parser (chunk at byte {offset}); it reported: {problems[0][:300]}"
    return f"record not returned by the evtx parser (chunk at byte {offset}, records {first}..{last})"


def _locate(chunk: bytes, offset: int) -> dict[int, tuple[int, bytes]]:
    """Record number -> (file offset, raw bytes) of the records found in a chunk (cut where it ends)."""
    found = {}
    at = chunk.find(RECORD_MAGIC, 512)
    while at >= 0 and at + 16 <= len(chunk):
        size, rid = struct.unpack_from("<IQ", chunk, at + 4)
        if 24 <= size <= CHUNK_SIZE:
            found.setdefault(rid, (offset + at, bytes(chunk[at: at + size])))
        at = chunk.find(RECORD_MAGIC, at + 4)
    return found


def _size(target) -> int:
    if isinstance(target, str):
        return os.path.getsize(target)
    return os.fstat(target.fileno()).st_size


def _read_at(target, offset: int, size: int) -> bytes:
    if isinstance(target, str):
        with open(target, "rb") as fh:
            fh.seek(offset)
            return fh.read(size)
    here = target.tell()
    try:
        target.seek(offset)
        return target.read(size)
    finally:
        target.seek(here)
