"""Engine for Windows event log files (``.evtx``), read with the Rust ``evtx`` package.

Records come as JSON text, ``batch`` at a time (spec ``windows: {batch: N}``, default 50,000). The
channel and event id of each record are read with two regexes over the whole batch, the records are
grouped by them, and each group is decoded by Polars in one call (its records share their fields, so the
inferred schema is small and dense) and typed by ``soc.parse.windows``. No per-record Python besides
the iteration the ``evtx`` package itself needs.

Counts: the chunk headers of the file say which record numbers it holds; a record the ``evtx`` package
does not return (a corrupt or truncated chunk: it warns and skips it) is dead-lettered with the reason
and its raw bytes as far as the file has them, so records read = parsed + dead-lettered.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import tempfile
import warnings
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import polars as pl

from soc.parse.batch import ParseResult, empty_dead
from soc.parse.engines.base import merge
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


_ATTRS = "#attributes"
# the System element of every record, decoded for a whole batch at once (EventID, whose shape varies,
# comes from the EVENT_ID regex); a batch where it does not fit is decoded group by group
SYSTEM_DTYPE = pl.Struct({"Event": pl.Struct({"System": pl.Struct({
    "Provider": pl.Struct({_ATTRS: pl.Struct({"Name": pl.String, "Guid": pl.String, "EventSourceName": pl.String})}),
    "Version": pl.String, "Level": pl.String, "Task": pl.String, "Opcode": pl.String, "Keywords": pl.String,
    "TimeCreated": pl.Struct({_ATTRS: pl.Struct({"SystemTime": pl.String})}),
    "EventRecordID": pl.String,
    "Correlation": pl.Struct({_ATTRS: pl.Struct({"ActivityID": pl.String, "RelatedActivityID": pl.String})}),
    "Execution": pl.Struct({_ATTRS: pl.Struct({"ProcessID": pl.String, "ThreadID": pl.String})}),
    "Channel": pl.String, "Computer": pl.String,
    "Security": pl.Struct({_ATTRS: pl.Struct({"UserID": pl.String})}),
})})})


def system_fields(text: pl.Series, event_ids: pl.Series) -> pl.DataFrame:
    """The ``System.*`` raw fields of a batch, in one decode with a fixed schema."""
    system = pl.col("d").struct.field("Event").struct.field("System")
    exprs = []
    for name, path in SYSTEM.items():
        if path[0] == "EventID":
            continue
        expr = system
        for step in path:
            expr = expr.struct.field(step)
        exprs.append(expr.alias(name))
    decoded = text.str.json_decode(SYSTEM_DTYPE).to_frame("d")
    return decoded.select(exprs).with_columns(event_ids.alias("System.EventID"))


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
                data: list[str] = []
                ids: list[int] = []
                stamps: list[str] = []
                for rec in records:
                    data.append(rec["data"])
                    ids.append(rec["event_record_id"])
                    stamps.append(rec["timestamp"])
                    if len(data) == self.batch_size:
                        seen.append(np.array(ids, np.int64))
                        yield self._batch(data, ids, stamps)
                        data, ids, stamps = [], [], []
                if data:
                    seen.append(np.array(ids, np.int64))
                    yield self._batch(data, ids, stamps)
            problems = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
            missing = self._missing(target, chunks, seen, problems)
            if missing.height:
                yield ParseResult({}, missing, missing.height)
        finally:
            if spool is not None:
                spool.close()

    def _batch(self, data: list[str], ids: list[int], stamps: list[str]) -> ParseResult:
        """Typed frames of one batch of records, one per (channel, event id)."""
        text = pl.Series("data", data, pl.String)
        keys = pl.DataFrame({
            "channel": text.str.extract(CHANNEL), "event_id": text.str.extract(EVENT_ID),
        }).with_row_index("row")
        groups = keys.group_by(["channel", "event_id"], maintain_order=True).agg("row")
        record_ids = pl.Series("id", ids, pl.Int64)
        stamp = pl.Series("stamp", stamps, pl.String).str.strip_suffix(" UTC")
        try:
            system = system_fields(text, keys.get_column("event_id"))
        except Exception:  # noqa: BLE001 - an odd System element: the slower way, group by group
            system = None
        if system is not None:
            return self._fast(text, keys, groups, system, record_ids, stamp)
        parts = []
        for channel, event_id, rows in groups.iter_rows():
            take = pl.Series(rows, dtype=pl.UInt32)
            parts.append(self._group(text.gather(take), record_ids.gather(take), stamp.gather(take),
                                     channel, event_id))
        return merge(len(data), parts)

    def _fast(self, text: pl.Series, keys: pl.DataFrame, groups: pl.DataFrame, system: pl.DataFrame,
              ids: pl.Series, stamps: pl.Series) -> ParseResult:
        """System fields typed once for the batch; each group adds its event columns and EventData."""
        n = text.len()
        origin = {
            "log.file.path": pl.Series("log.file.path", [self.ctx.path], pl.Categorical).new_from_index(0, n),
            "log.offset": pl.Series("log.offset", [None], pl.Int64).new_from_index(0, n),
            "log.line": ids.alias("log.line"),
        }
        base, base_reason = self.mapping.base(system.with_columns(stamps.alias("Record.Timestamp")), self.ctx,
                                              origin)
        parts = []
        for channel, event_id, rows in groups.iter_rows():
            take = pl.Series(rows, dtype=pl.UInt32)
            group = text.gather(take)
            try:
                raw, names = flatten(group.str.json_decode(infer_schema_length=None), system=False)
            except Exception:  # noqa: BLE001
                parts.append(self._one_by_one(group, ids.gather(take), stamps.gather(take), channel, event_id))
                continue
            frame, reason = self.mapping.event(base.gather(take), base_reason.gather(take), raw, names, channel,
                                               event_id, self.ctx)
            key = self.mapping.key(channel, event_id)
            bad = reason.is_not_null()
            if not bad.any():
                parts.append(ParseResult({key: frame}, empty_dead(), len(rows)))
            else:
                parts.append(ParseResult({key: frame.filter(~bad)},
                                         self._dead(group.filter(bad), ids.gather(take).filter(bad),
                                                    reason.filter(bad)), len(rows)))
        return merge(n, parts)

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
        got = np.sort(np.concatenate(seen)) if seen else np.zeros(0, np.int64)
        rows = []
        size = _size(target)
        for offset, first, last in chunks:
            want = np.arange(first, last + 1, dtype=np.int64)
            lo, hi = np.searchsorted(got, first, "left"), np.searchsorted(got, last, "right")
            have = np.unique(got[lo:hi])
            missing = np.setdiff1d(want, have) if have.size < want.size else np.zeros(0, np.int64)
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
