"""Engine for Windows event log files (``.evtx``), read with the Rust ``evtx`` package.

Records come as JSON text, ``batch`` at a time (spec ``evtx: {batch: N}``, default 50,000), taken from
the package's iterator in bulk (``islice``: no Python statement per record) and copied into one buffer
(``_Texts``: the JSON texts as one large_string array). The batch's JSON is walked by Numba
(``soc.parse.evtx_kernel``): the System leaves and the
EventData/UserData fields of every record as byte spans, records grouped by (channel, event id). The
System fields are typed once for the batch (records ordered by group); each group's frame is a slice
of that, plus its own columns of string views into the buffer (``soc.parse.windows``). A record the
walker cannot take (malformed JSON, an escaped field name) goes the slower way: Polars decodes it, and
a record that does not decode is dead-lettered with the reason. ``TimeCreated`` in the package's own
form is parsed by Numba too (``evtx_kernel.utc_times``); anything else goes to the spec's ISO 8601 rule.

Small files (fewer than ``2 * MIN_PIECE`` records: most of a folder collected from hosts) are read together
by a run (``read_many``): each file's records by the package, then those of hundreds of files walked and
typed as one batch, their frames holding ``log.file.path`` per row; a frame and a query cost ~1 ms each,
which per file and per group was nearly all the time of such a folder (483 files, 10 k records: 1.7-2.3 s
-> ~0.2 s of CPU). No worker process is started for them (its start costs more than such files).

Large files: the package's iteration holds the GIL (~8 us a record), so a file of more than
``2 * MIN_PIECE`` records is cut in pieces of whole 64 KiB chunks (each chunk is self-contained) that
worker processes read (``evtx_worker``: the package over the file's header and the piece's chunks) and
hand over as Arrow buffers through a pipe, while this process walks and types the pieces before, in file
order. ``SOC_EVTX_PROCESSES`` (this process included; 1: no workers) sets how many; by default one per
CPU when the machine has a CPU to spare, else none (``processes``).
Each piece's records are counted against its own chunks' headers, so the counts and dead letters are
those of the whole file read in one process; a worker that fails leaves its pieces to this process.

A job's read of a grown file (``Source.records``: ids in (after, upto], ``soc.jobs.checkpoints``) keeps only
those records, dropped as the package returns them, before typing and counting (``_bound``); with ``after`` >
0 only the chunks holding newer ids are read, in this process (``_read_after``). No bound: nothing done.

Counts: the chunk headers of the file say which records (by id) it holds; a record the ``evtx`` package
does not return (a corrupt or truncated chunk: it warns and skips it) is dead-lettered with the reason
and its raw bytes as far as the file has them, so records read = parsed + dead-lettered.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import copy
import io
import json
import operator
import os
import re
import shutil
import struct
import tempfile
import threading
import warnings
from collections.abc import Iterator
from itertools import islice
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa

from soc import jit
from soc.parse import evtx_kernel as kernel
from soc.parse import evtx_plain
from soc.parse.batch import ParseResult, empty_dead
from soc.parse.eager import nulls, set_rows
from soc.parse.engines.base import merge
from soc.parse.engines.records import RecordEngine
from soc.parse.windows import group_columns, mapping_of
from soc.schema import DEAD_LETTERS
from soc.schema.time import UTC
from soc.sources.prefetch import prefetch
from soc.worker_process import WorkerProcess

MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
HEADER_SIZE = 4096
CHUNK_SIZE = 65536
ZEROS = bytes(CHUNK_SIZE)
MAX_RECORDS_PER_CHUNK = CHUNK_SIZE // 24  # the smallest record is 24 bytes with nothing in it
CHANNEL = r'"Channel":"((?:[^"\\]|\\.)*)"'
EVENT_ID = r'"EventID":(?:\{"#attributes":\{[^{}]*\},"#text":)?"?(\d+)'
RANGE = re.compile(r"record IDs (\d+)\.\.(\d+)")
SEP = "\n"  # between the values of a list (unnamed <Data>) or the members of an object, in their text
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
        self.unreadable = False  # the evtx package refused the file (one dead letter says why)
        self.name = ctx.path  # the file being read (``read_many`` reads several)
        self.paths = [ctx.path]  # the files of the batch being typed; ``where`` arrays index them
        self.records: tuple[int, int] | None = None  # a job's bound on the file's record ids (``Source.records``)
        self.bounds: dict[str, tuple[int, int]] = {}  # ``read_many``'s, per file

    @classmethod
    def reading_ahead(cls, paths: list[str]) -> contextlib.AbstractContextManager:
        """For a run over ``paths`` (plain files, in its order): worker processes read the pieces of its
        EVTX files ahead, the next file's while this process types this one (``_Ahead``)."""
        return _run_ahead(paths)

    def read(self, stream: BinaryIO, path: str | None,
             records: tuple[int, int] | None = None) -> Iterator[ParseResult]:
        """Parse the EVTX file at ``path`` (a plain file) or in ``stream`` (spooled to disk first). In a run
        that reads ahead (``reading_ahead``), the file's pieces come from its schedule; otherwise a plain
        file of at least ``2 * MIN_PIECE`` records is cut in pieces of whole chunks that worker processes
        help read (``pieces``). Results come in file order either way.

        ``records`` (a job's bound, plain files only): only the records with ids in (after, upto] are typed
        and counted, the others dropped as the package returns them (``_bound``); with ``after`` > 0 only the
        chunks that hold such records are read (``_read_after``), in this process."""
        self.records = records if path is not None else None
        if self.records is not None and self.records[0] > 0:
            yield from self._read_after(path)
            return
        ahead = _scheduled_ahead(self.batch_size) if path is not None else None
        tasks = ahead.open_file(path) if ahead is not None else None
        if tasks is not None:
            yield from self._parallel(ahead, tasks)
            yield from self._bad_slots(path)
            return
        spool = None
        if path is None:  # compressed or stdin: the evtx parser needs to seek
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
            shutil.copyfileobj(stream, spool, 1 << 20)
            spool.seek(0)
        target = path if path is not None else spool
        try:
            chunks = chunk_ranges(target)
            cut = pieces(_size(target), chunks, self.batch_size, processes()) if path is not None else []
            if len(cut) > 1 and _opens(path):
                with _Ahead.of_file(path, cut, self.batch_size) as ahead:
                    yield from self._parallel(ahead, range(len(cut)))
            else:
                yield from self._records(target, target, chunks)
            yield from self._bad_slots(target, chunks)
        finally:
            if spool is not None:
                spool.close()

    def _read_after(self, path: str) -> Iterator[ParseResult]:
        """The records after ``self.records[0]`` of the plain file at ``path``: each run of consecutive chunk
        slots that may hold some (a chunk whose ids reach past it, or a chunk whose header does not say) read
        as a piece (``PieceFile``: the file's header and those slots), the chunks before skipped unread."""
        with open(path, "rb") as fh:
            chunks = chunk_ranges(fh)
            lo, hi = self.records
            valid = {offset: (first, last) for offset, first, last in chunks}
            runs: list[Piece] = []
            size = _size(fh)
            for offset in range(HEADER_SIZE, size, CHUNK_SIZE):
                span = valid.get(offset)
                if span is None and _read_at(fh, offset, 8) != CHUNK_MAGIC or span and (span[1] <= lo or span[0] > hi):
                    continue
                mine = [(offset, *span)] if span else []
                end = min(offset + CHUNK_SIZE, size)
                if runs and runs[-1][1] == offset:
                    runs[-1] = (runs[-1][0], end, runs[-1][2] + mine)
                else:
                    runs.append((offset, end, mine))
            for piece in runs:
                yield from self._piece(path, piece)
                if self.unreadable:
                    return
            yield from self._bad_slots(fh, chunks)

    def _bound(self, batch: Batch) -> Batch:
        """The records of ``batch`` (as the package returns them) in the job's bound ``self.records``: all
        without one (nothing done)."""
        if self.records is None:
            return batch
        text, ids, stamps = batch
        keep = (ids > self.records[0]) & (ids <= self.records[1])
        if keep.all():
            return batch
        rows = np.flatnonzero(keep)
        if rows.size and rows[-1] - rows[0] + 1 == rows.size:  # one run (records in id order): a slice, no
            return text.slice(rows[0], rows.size), ids[keep], stamps.slice(rows[0], rows.size)  # pyarrow.compute
        rows = pa.array(rows)
        return text.take(rows), ids[keep], stamps.take(rows)

    def _clip(self, chunks: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        """The chunk headers' ranges of the records in the job's bound (those counted), ``chunks`` without one."""
        if self.records is None:
            return chunks
        lo, hi = self.records
        return [(offset, max(first, lo + 1), min(last, hi)) for offset, first, last in chunks
                if last > lo and first <= hi]

    @classmethod
    def small(cls, spec, path: str) -> int | None:
        """The records announced by the chunk headers of the plain file at ``path`` if it is read with
        its neighbours (``read_many``): fewer than ``2 * MIN_PIECE`` and fewer than a batch (a file that
        would be cut in pieces keeps that way); else None, told from the first chunk headers of a large file."""
        limit = min(2 * MIN_PIECE, int(spec.options.get("batch", 50_000)))
        total = 0
        try:
            with open(path, "rb") as fh:
                for _, first, last in _chunks(fh):
                    total += last - first + 1
                    if total >= limit:
                        return None
        except OSError:
            return None
        return total

    @classmethod
    def batches(cls, spec, files: list[tuple[str, int]]) -> list[list[str]]:
        return many_batches(files, min(int(spec.options.get("batch", 50_000)), MANY_RECORDS))

    def read_many(self, files: list[tuple[str, int]],
                  records: dict[str, tuple[int, int]] | None = None,
                  ) -> Iterator[tuple[list[str], ParseResult | None, list[str]]]:
        """Small plain EVTX files (``files``: path and records, as ``small`` gave them) read as few batches:
        each file's records by the package, then the records of the batch's files walked and typed once,
        so a batch of hundreds of files costs about what one file of as many records costs (per file and
        per group, a Polars frame and query cost ~1 ms). Yields per batch (whole files, at most ``MANY_RECORDS``
        records but for a larger file: ``batches``): its paths, its result, whose frames and dead letters hold
        records of several files
        (``log.file.path`` says which; each file's own dead letters as ``read`` gives them), and the paths
        left to the caller to read alone (``read``): a file whose reading failed here (an exception), or
        every file of the batch if typing it failed (result None), so a failure is reported for its file.
        With more than one batch, a thread reads the next batch's files while this one is typed (the
        walker and Polars release the GIL). ``records``: a job's bounds on some files' record ids (``read``)."""
        self.bounds = records or {}
        cut = self.batches(self.spec, files)
        reader = copy.copy(self)  # its own ``name``: the file it reads, while this engine types
        reads = (reader._read_files(paths) for paths in cut)
        for paths, read in zip(cut, prefetch(reads, depth=1, name="evtx-read") if len(cut) > 1 else reads,
                               strict=True):
            yield self._many(paths, *read)

    def _read_files(self, paths: list[str]) -> tuple[list[Batch], list[np.ndarray], list[ParseResult], list[str]]:
        """The records of a batch's files (``_file``), each record's file (an index into ``paths``), their
        dead letters, and the files whose reading failed (left to the caller)."""
        texts = _Texts(MANY_RECORDS)  # the records of the files in one buffer
        batches: list[Batch] = []
        where: list[np.ndarray] = []
        extra: list[ParseResult] = []
        left: list[str] = []
        for i, path in enumerate(paths):
            try:
                got, dead = self._file(path)
            except Exception:  # noqa: BLE001 - read again alone by the caller, which reports why
                left.append(path)
                continue
            where.append(np.full(len(got), i, np.int64))
            if got:  # the dicts of one file alive at once
                texts.add(got)
            extra += dead
        if texts.n:
            batches.append(texts.batch())
        return batches, where, extra, left

    def _many(self, paths: list[str], batches: list[Batch], where: list[np.ndarray], extra: list[ParseResult],
              left: list[str]) -> tuple[list[str], ParseResult | None, list[str]]:
        """One batch of small files typed (see ``read_many``)."""
        self.paths, self.name = paths, None
        try:
            parts = list(extra)
            if batches:
                text = pa.concat_arrays([b[0] for b in batches]) if len(batches) > 1 else batches[0][0]
                ids = np.concatenate([b[1] for b in batches])
                stamps = pa.concat_arrays([b[2] for b in batches]) if len(batches) > 1 else batches[0][2]
                parts.append(self._batch(text, ids, stamps, np.concatenate(where)))
            return paths, merge(sum(p.lines for p in parts), parts, how="diagonal_relaxed"), left
        except Exception:  # noqa: BLE001 - every file read again alone, so the failure is its file's
            return paths, None, paths
        finally:
            self.paths, self.name = [self.ctx.path], self.ctx.path

    def _file(self, path: str) -> tuple[list[dict], list[ParseResult]]:
        """One small file of ``read_many``: its records as the package's dicts (not converted yet) and its
        dead letters (the file refused by the package, records its chunk headers announce but the package
        did not return, slots that are no chunk), as ``read`` gives them."""
        self.name = path
        self.records = self.bounds.get(path)
        with open(path, "rb") as fh:
            chunks = chunk_ranges(fh)
            reading = Reading(path, self.batch_size)
            got = reading.rows()
            if reading.error is not None:
                return [], [self._unreadable(fh, reading.error)]
            if self.records is not None:
                lo, hi = self.records
                got = [r for r in got if lo < r["event_record_id"] <= hi]
            ids = np.fromiter(map(_RECORD_ID, got), np.int64, len(got))
            dead = [*self._tail(fh, chunks, [ids], reading.problems), *self._bad_slots(fh, chunks)]
        return got, dead

    def _records(self, source, target, chunks: list[tuple[int, int, int]]) -> Iterator[ParseResult]:
        """The records the evtx package reads from ``source`` (the file, or a piece of it: its header and
        some of its chunks), then dead letters of those that ``chunks`` (of ``target``, the file)
        announce but the package did not return."""
        announced = sum(last - first + 1 for _, first, last in chunks)
        # one batch (most files): nothing to overlap, so no reader thread (its start costs ~1 ms)
        reading = Reading(source, self.batch_size, ahead=announced > self.batch_size)
        seen: list[np.ndarray] = []
        for batch in reading:
            text, ids, stamps = self._bound(batch)
            del batch
            seen.append(ids)
            if len(ids):
                yield self._batch(text, ids, stamps)
            del text, stamps
        if reading.error is not None:
            self.unreadable = True
            yield self._unreadable(target, reading.error)
            return
        yield from self._tail(target, chunks, seen, reading.problems)

    def _tail(self, target, chunks: list[tuple[int, int, int]], seen: list[np.ndarray],
              problems: list[str]) -> Iterator[ParseResult]:
        missing = self._missing(target, self._clip(chunks), seen, problems)
        if missing.height:
            yield ParseResult({}, missing, missing.height)

    def _parallel(self, ahead: _Ahead, tasks: range) -> Iterator[ParseResult]:
        """The pieces ``tasks`` of ``ahead`` (one file's), in order, each read by whoever was free first: a
        worker process, or this process when no worker has taken the piece it needs next. While it waits
        for a worker's piece, this process reads the next free one itself (``steal``), so neither process
        waits on the other while there is reading to do. A piece whose worker failed (a crash, an error)
        is read here, by the same code, so what a file gives does not depend on the workers."""
        for i in tasks:
            path, piece = ahead.tasks[i]
            if ahead.take_here(i):
                yield from self._piece(path, piece)
                continue
            while not ahead.has(i) and (j := ahead.steal()) is not None:
                ahead.put(j, _read_here(*ahead.tasks[j], ahead.batch))
            reply = ahead.reply(i)
            if reply is None:  # its worker (or the read here, ahead) failed: read it here, now
                yield from self._piece(path, piece)
                continue
            batches, problems = reply
            seen: list[np.ndarray] = []
            for batch in batches:
                text, ids, stamps = self._bound(from_wire(batch))
                seen.append(ids)
                if len(ids):
                    yield self._batch(text, ids, stamps)
                del text, stamps
            del batches, reply
            yield from self._tail(path, piece[2], seen, problems)

    def _piece(self, path: str, piece: Piece) -> Iterator[ParseResult]:
        """One piece read in this process (as a worker reads it), then parsed."""
        with PieceFile(path, piece) as source:
            yield from self._records(source, path, piece[2])

    def _batch(self, text: pa.LargeStringArray, record_ids: np.ndarray, stamps: pa.StringArray,
               where: np.ndarray | None = None) -> ParseResult:
        """Typed frames of one batch of records, one per (channel, event id): the Numba walker finds
        every value (``soc.parse.evtx_kernel``); the records it cannot take go the slower way. ``where``:
        each record's file, an index into ``self.paths`` (default: all of the one file)."""
        n = len(text)
        where = np.zeros(n, np.int64) if where is None else where
        data_buf = text.buffers()[2] or pa.py_buffer(b"")
        offs = np.frombuffer(text.buffers()[1], np.int64, n + 1, text.offset * 8)
        buf = np.frombuffer(data_buf, np.uint8)
        if jit.plain(guess := n * evtx_plain.US_PER_RECORD):  # too few records to repay Numba's fixed cost
            began = jit.cpu_us()
            walked = evtx_plain.walk(text.to_pylist())
            jit.charge(jit.cpu_us() - began - guess)
        else:
            walked = kernel.walk_batch(buf, offs)
        stamps = _without_utc(stamps)
        parts = []
        odd = np.flatnonzero(walked.err)
        if odd.size:
            parts.append(self._slow(pl.Series("data", text.take(pa.array(odd))),
                                    pl.Series("id", record_ids[odd]), stamps.gather(odd), pl.Series(where[odd])))
        if walked.order.size:
            parts += self._walked(walked, buf, data_buf, text, record_ids, stamps, where)
        # the walker's and the slower way's frames of a group can differ in their columns
        return merge(n, parts, how="diagonal_relaxed")

    def _walked(self, w: kernel.Walked | evtx_plain.Walked, buf: np.ndarray, data_buf: pa.Buffer, text: pa.Array,
                record_ids: np.ndarray, stamps: pl.Series, where: np.ndarray) -> list[ParseResult]:
        """System fields typed once for the batch (records ordered by group); each group adds its event
        columns and its fields, slices of one column block."""
        order = w.order
        m = order.size
        sys_cols, cells, (us, ok) = walked_strings(w, buf, data_buf)
        system = pl.DataFrame([sys_cols.slice(i * m, m).alias(name) for i, name in enumerate(kernel.SYSTEM_NAMES)])
        stamp = stamps.gather(order)
        line = pl.Series("log.line", record_ids[order])
        origin = {
            "log.file.path": self._file_paths(where[order], pl.Categorical),
            "log.offset": nulls("log.offset", pl.Int64, m),
            "log.line": line,
        }
        base, base_reason = self.mapping.base(system.hstack([stamp]), self.ctx, origin, _times(us, ok))
        names = w.names(buf)
        base_bad = set_rows(base_reason)  # per group below: a numpy slice, not a query
        base_bad = np.zeros(m, np.bool_) if base_bad is None else base_bad
        parts = []
        for g in range(w.starts.size - 1):
            a, size = int(w.starts[g]), int(w.starts[g + 1] - w.starts[g])
            first = int(order[a])
            channel, event_id = w.text(buf, kernel.CHANNEL, first), w.text(buf, kernel.EVENT_ID, first)
            raw, data_names = group_columns(cells, names, w.columns[w.col_starts[g]: w.col_starts[g + 1]],
                                            int(w.cell_starts[g]), size, SYSTEM)

            def dead_of(rows: np.ndarray, reasons: pl.Series, a: int = a, size: int = size) -> pl.DataFrame:
                taken = order[a: a + size][rows]
                return self._dead(pl.Series(text.take(pa.array(taken))), pl.Series(record_ids[taken]), reasons,
                                  pl.Series(where[taken]))

            parts.append((a, size, raw, data_names, channel, event_id, dead_of))
        return self.mapping.groups(base, base_reason, base_bad, parts, self.ctx)

    def _slow(self, text: pl.Series, ids: pl.Series, stamps: pl.Series, where: pl.Series) -> ParseResult:
        """Records the walker did not take: Polars decodes them, group by group."""
        keys = pl.DataFrame({
            "channel": text.str.extract(CHANNEL), "event_id": text.str.extract(EVENT_ID),
        }).with_row_index("row")
        groups = keys.group_by(["channel", "event_id"], maintain_order=True).agg("row")
        parts = []
        for channel, event_id, rows in groups.iter_rows():
            take = pl.Series(rows, dtype=pl.UInt32)
            parts.append(self._group(text.gather(take), ids.gather(take), stamps.gather(take), where.gather(take),
                                     channel, event_id))
        return merge(text.len(), parts, how="diagonal_relaxed")

    def _group(self, text: pl.Series, ids: pl.Series, stamps: pl.Series, where: pl.Series, channel: str | None,
               event_id: str | None) -> ParseResult:
        try:
            raw, names = flatten(text.str.json_decode(infer_schema_length=None), text=text)
        except Exception:  # noqa: BLE001 - one record the decoder refuses must not sink its group
            return self._one_by_one(text, ids, stamps, where, channel, event_id)
        return self._typed(raw, names, text, ids, stamps, where, channel, event_id)

    def _one_by_one(self, text: pl.Series, ids: pl.Series, stamps: pl.Series, where: pl.Series,
                    channel: str | None, event_id: str | None) -> ParseResult:
        """The slow way for a group that does not decode as a whole: each record alone."""
        parts = []
        for i in range(text.len()):
            one = text.slice(i, 1)
            try:
                raw, names = flatten(one.str.json_decode(infer_schema_length=None), text=one)
            except Exception as exc:  # noqa: BLE001
                why = f"record JSON does not decode: {str(exc).splitlines()[0][:200]}"
                parts.append(ParseResult({}, self._dead(one, ids.slice(i, 1), why, where.slice(i, 1)), 1))
                continue
            parts.append(self._typed(raw, names, one, ids.slice(i, 1), stamps.slice(i, 1), where.slice(i, 1),
                                     channel, event_id))
        frames: dict = {}
        for part in parts:
            for key, frame in part.frames.items():
                frames.setdefault(key, []).append(frame)
        dead = [p.dead for p in parts if p.dead.height]
        return ParseResult({k: pl.concat(v, how="diagonal_relaxed") for k, v in frames.items()},
                           pl.concat(dead) if dead else empty_dead(), text.len())

    def _typed(self, raw: pl.DataFrame, names: list[str], text: pl.Series, ids: pl.Series,
               stamps: pl.Series, where: pl.Series, channel: str | None, event_id: str | None) -> ParseResult:
        raw = raw.with_columns(stamps.alias("Record.Timestamp"))
        n = text.len()
        origin = {
            "log.file.path": self._file_paths(where.to_numpy(), pl.Categorical),
            "log.offset": nulls("log.offset", pl.Int64, n),
            "log.line": ids.alias("log.line"),
        }
        frame, reason = self.mapping.typed(raw, names, channel, event_id, self.ctx, origin)
        key = self.mapping.key(channel, event_id)
        bad = reason.is_not_null()
        if not bad.any():
            return ParseResult({key: frame}, empty_dead(), n)
        return ParseResult({key: frame.filter(~bad)}, self._dead(text.filter(bad), ids.filter(bad),
                                                                 reason.filter(bad), where.filter(bad)), n)

    def _file_paths(self, where: np.ndarray, dtype: pl.DataType) -> pl.Series:
        """``log.file.path`` of records of the files ``where`` (indices into ``self.paths``)."""
        paths = pl.Series("log.file.path", self.paths, dtype)
        return paths.new_from_index(0, where.size) if len(self.paths) == 1 else paths.gather(where)

    def _dead(self, text: pl.Series, ids: pl.Series, reasons: pl.Series | str, where: pl.Series) -> pl.DataFrame:
        n = text.len()
        why = reasons if isinstance(reasons, pl.Series) else pl.Series([reasons]).new_from_index(0, n)
        return pl.DataFrame({
            "log.file.path": self._file_paths(where.to_numpy(), pl.String),
            "log.line": ids, "log.offset": nulls("log.offset", pl.Int64, n),
            "error.message": why.alias("error.message"), "event.original": text.cast(pl.Binary),
        }, schema=DEAD_LETTERS)

    def _bad_slots(self, target, chunks: list[tuple[int, int, int]] | None = None) -> Iterator[ParseResult]:
        """Dead letters of the chunk slots the evtx package cannot read and no chunk header announces
        (``bad_slots``), with the offset and the slot's bytes: one a record when the ids missing around
        the slot are known (the bytes with the first), else one a slot."""
        if self.unreadable:
            return
        rows = []
        for offset, why, raw, ids in bad_slots(target, chunks):
            if self.records is not None:  # a job's bound: the slot's records in it (none known: none)
                lo, hi = self.records
                ids = range(max(ids.start, lo + 1), min(ids.stop, hi + 1)) if ids else ids
                if not ids:
                    continue
            rows += [(self.name, rid, offset, why, raw if i == 0 else b"") for i, rid in enumerate(ids)] or \
                [(self.name, None, offset, why, raw)]
        if rows:
            cols = list(zip(*rows, strict=True))
            yield ParseResult({}, pl.DataFrame(dict(zip(DEAD_LETTERS, cols, strict=True)), schema=DEAD_LETTERS),
                              len(rows))

    def _unreadable(self, target, why: str) -> ParseResult:
        head = _read_at(target, 0, 4096)
        dead = pl.DataFrame({"log.file.path": [self.name], "log.line": [None], "log.offset": [0],
                             "error.message": [why], "event.original": [head]}, schema=DEAD_LETTERS)
        return ParseResult({}, dead, 1)

    def _missing(self, target, chunks: list[tuple[int, int, int]], seen: list[np.ndarray],
                 problems: list[str]) -> pl.DataFrame:
        """Dead letters of the records the chunk headers announce but the parser did not return."""
        if not chunks or _complete(chunks, seen):
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
                rows.append((self.name, rid, at, why, raw))
        if not rows:
            return empty_dead()
        cols = list(zip(*rows, strict=True))
        return pl.DataFrame(dict(zip(DEAD_LETTERS, cols, strict=True)), schema=DEAD_LETTERS)


READ_STEP = 512  # records taken from the parser per call (and copied into the batch's buffer)
Batch = tuple[pa.LargeStringArray, np.ndarray, pa.StringArray]  # JSON texts, record ids, timestamps


MANY_RECORDS = 6144  # records of a batch of small files at most (``many_batches``; a larger file alone)
# what a small file costs of its own (its reading, chunk headers, paths), in records: the corpus's two tasks, 5,535
# records of 140 files and 4,718 of 343, took 0.62 and 0.66 s (~0.1 ms a record, ~0.6 ms a file)
FILE_RECORDS = 6


def many_batches(files: list[tuple[str, int]], most: int) -> list[list[str]]:
    """The paths of small files (path and records, in order) cut in batches of whole files that ``read_many``
    types one at a time: as few as hold at most ``most`` records each (a larger file alone), filled to about
    equal shares. Smaller than a batch so that the next is read while one is typed, and so that a folder of small
    files makes several tasks that worker processes hunt in (``soc.distributed``): the tasks are these batches
    (cutting one again gives it whole), so a hunt gives the same frames in the same order whatever the number of
    processes. A batch costs ~0.05-0.1 s of CPU more than none (the frames of its groups): the 483-file corpus
    (10,253 records) in one batch or two, 1.29-1.40 -> 1.37-1.52 user s (load ~12); in two processes its two
    batches share the work best (with three, the driver, which also starts up and finishes, ran two). The shares
    are equal in cost, a file counting ``FILE_RECORDS`` records more than it holds."""
    total = sum(n for _, n in files)
    batches = max(1, -(-total // max(most, 1)))
    share = max(1, -(-(total + FILE_RECORDS * len(files)) // batches))
    cut: list[list[str]] = []
    count = cost = 0
    for path, records in files:
        if not cut or (records and ((cost >= share and len(cut) < batches) or count + records > most)):
            cut.append([])
            count = cost = 0
        cut[-1].append(path)
        count += records
        cost += records + FILE_RECORDS
    return cut
_RECORD_ID = operator.itemgetter("event_record_id")
_DATA = operator.itemgetter("data")
_STAMP = operator.itemgetter("timestamp")


class _Texts:
    """The JSON texts of a batch's records (the package's dicts, added a step or a file at a time) copied into one
    buffer that grows as needed, made a large_string array at the end; with their record ids and timestamps.
    pyarrow's converter of the dicts, a step at a time, then joined, wrote every text twice into fresh memory
    (~1.7 us a record over the package's own iteration, most of it page faults); here ``READ_STEP`` texts or
    more at a time are encoded into memory that the next ones reuse, then copied once into the batch's buffer
    (a copy also has fixed costs, ~30 us: the small files of ``read_many`` share them)."""

    def __init__(self, size: int):
        self.size = size  # the records the batch may hold (how large the buffer is made from the first copy)
        self.data = np.zeros(0, np.uint8)
        self.used = 0
        self.lengths: list[np.ndarray] = []
        self.pending: list[str] = []  # texts not copied yet
        self.ids: list[int] = []
        self.stamps: list[str] = []
        self.n = 0

    def add(self, rows: list[dict]) -> None:
        self.pending += map(_DATA, rows)
        self.ids += map(_RECORD_ID, rows)
        self.stamps += map(_STAMP, rows)
        self.n += len(rows)
        if len(self.pending) >= READ_STEP:
            self._copy()

    def _copy(self) -> None:
        texts, self.pending = self.pending, []
        if all(map(str.isascii, texts)):  # a flag of each str: no scan
            raw = "".join(texts).encode()
            lengths = np.fromiter(map(len, texts), np.int64, len(texts))
        else:
            encoded = [t.encode() for t in texts]
            raw = b"".join(encoded)
            lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        end = self.used + len(raw)
        if end > self.data.size:  # room for the records left at these texts' bytes a record, and a tenth more
            left = max(self.size - self.n, 0)
            grown = np.empty(max(end + int(len(raw) / max(len(texts), 1) * left * 1.1), 2 * self.data.size),
                             np.uint8)
            grown[: self.used] = self.data[: self.used]
            self.data = grown
        self.data[self.used: end] = np.frombuffer(raw, np.uint8)
        self.used = end
        self.lengths.append(lengths)

    def batch(self) -> Batch:
        if self.pending:
            self._copy()
        offsets = np.zeros(self.n + 1, np.int64)
        if self.n:
            np.cumsum(np.concatenate(self.lengths), out=offsets[1:])
        text = pa.Array.from_buffers(pa.large_string(), self.n,
                                     [None, pa.py_buffer(offsets), pa.py_buffer(self.data[: self.used])])
        return text, np.array(self.ids, np.int64), pa.array(self.stamps, pa.string())


def take(records, size: int) -> Batch | None:
    """Up to ``size`` records as (JSON texts, record ids, timestamps), None at the end: ``READ_STEP`` at a
    time (``islice``: no Python statement per record), copied into one buffer (``_Texts``). Few dicts are
    alive at once."""
    texts = _Texts(size)
    while texts.n < size:
        rows = list(islice(records, min(READ_STEP, size - texts.n)))
        if not rows:
            break
        texts.add(rows)
        del rows
    return texts.batch() if texts.n else None


def _batches(records, size: int) -> Iterator[Batch]:
    """The records ``size`` at a time, read on the caller's thread (see ``read_ahead``)."""
    while (batch := take(records, size)) is not None:
        yield batch


def read_ahead(records, size: int) -> Iterator[Batch]:
    """The records ``size`` at a time (see ``take``), read by a thread that reads the next batch while the
    caller parses this one (the walker and Polars release the GIL). At most one batch waits, so memory
    stays two batches. A call into the parser holds the GIL throughout, so the thread takes ``READ_STEP``
    records a call: one call per batch would stop the caller's thread for the whole batch."""
    return prefetch(_batches(records, size), depth=1, name="evtx-read")


class Reading:
    """The evtx package's records of ``source`` in batches (iterate once); then ``problems`` holds the
    package's warnings (chunks it skipped) and ``error`` why the source could not be opened (or None)."""

    def __init__(self, source, size: int, ahead: bool = False):
        self.source, self.size, self.ahead = source, size, ahead
        self.problems: list[str] = []
        self.error: str | None = None

    def __iter__(self) -> Iterator[Batch]:
        return self._read(self._batches)

    def _batches(self, records) -> Iterator[Batch]:
        return read_ahead(records, self.size) if self.ahead else _batches(records, self.size)

    def rows(self) -> list[dict]:
        """Every record as the package's dict (a small file's: converted to Arrow with others, ``read_many``)."""
        return list(self._read(list))

    def _read(self, consume) -> Iterator:
        import evtx

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                try:
                    # one thread: the package's own threads only parse chunks ahead of an iteration that holds
                    # the GIL; our processes are the parallelism (alone: 134 k records/s against 115 k)
                    records = evtx.PyEvtxParser(self.source, number_of_threads=1, skip_errors=True).records_json()
                except (OSError, RuntimeError, ValueError) as exc:
                    self.error = f"not a readable EVTX file: {exc}"
                    return
                yield from consume(records)
            finally:
                self.problems = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


Piece = tuple[int, int, list[tuple[int, int, int]]]  # file offsets [start, end) and its chunks' ranges
MIN_PIECE = 12_500  # records: a file of fewer is read in this process (a piece has fixed costs)
PROCESSES_ENV = "SOC_EVTX_PROCESSES"  # processes for a large EVTX file, this one included (1: no workers)
_POOL: list = []  # the worker processes (_Worker)


def processes() -> int:
    """Processes for a large file, this one (the parsing) included: ``SOC_EVTX_PROCESSES``, else one per
    usable CPU when the machine has a CPU to spare (1-minute load average below the CPUs less a half),
    else 1: a worker costs ~10% more CPU in all (the pieces, the pipe), which only pays when it runs
    beside this process, not instead of it (bench/RESULTS.md)."""
    env = os.environ.get(PROCESSES_ENV, "").strip()
    if env.isdigit():
        return int(env)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return cpus if busy < cpus - 0.5 else 1


def pieces(size: int, chunks: list[tuple[int, int, int]], batch: int, workers: int) -> list[Piece]:
    """The file cut in pieces of whole 64 KiB chunk slots, every slot in one piece (the evtx package reads
    a piece as it reads the file: every slot to the end, announced or not), each with about half a
    batch of the announced records (at least ``MIN_PIECE``, at most a batch): small enough that the
    parsing here starts early, large enough for the fixed costs of a batch; [] if the file is not worth
    cutting (fewer than two pieces, or no worker)."""
    total = sum(last - first + 1 for _, first, last in chunks)
    if workers < 2 or total < 2 * MIN_PIECE or size <= HEADER_SIZE:
        return []
    want = min(batch, max(MIN_PIECE, batch // 2))
    out: list[Piece] = []
    start, count, mine = HEADER_SIZE, 0, []
    for offset, first, last in chunks:
        if count >= want:
            out.append((start, offset, mine))
            start, count, mine = offset, 0, []
        mine.append((offset, first, last))
        count += last - first + 1
    if out and count < want // 4:  # a small rest joins the piece before (a piece has fixed costs)
        start, _, before = out.pop()
        mine = before + mine
    out.append((start, size, mine))
    return out if len(out) > 1 else []


def _opens(path: str) -> bool:
    """Whether the evtx package takes the file (else the one-process path reports why, as a dead letter)."""
    import evtx

    try:
        evtx.PyEvtxParser(path, skip_errors=True)
    except (OSError, RuntimeError, ValueError):
        return False
    return True


class PieceFile(io.RawIOBase):
    """A piece as the evtx package reads it: the file's header, then the piece's chunk slots, read from
    the file where they are (no copy of the piece in memory: that cost ~0.1 s of page faults a piece)."""

    def __init__(self, path: str, piece: Piece):
        super().__init__()
        self.start, end, _ = piece
        self.fh = open(path, "rb")  # noqa: SIM115 - closed with this object
        self.head = self.fh.read(HEADER_SIZE)
        self.size = len(self.head) + max(end - self.start, 0)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(base + offset, 0)
        return self.pos

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.pos + size, self.size)
        out = b""
        if self.pos < len(self.head):
            out = self.head[self.pos: min(end, len(self.head))]
            self.pos += len(out)
        if self.pos < end:
            more = os.pread(self.fh.fileno(), end - self.pos, self.start + self.pos - len(self.head))
            self.pos += len(more)
            out += more
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.fh.close()
        super().close()


def read_piece(path: str, piece: Piece, batch: int) -> tuple[list[tuple], list[str]] | None:
    """In a worker process: the records of one piece as ``to_wire`` batches, and the package's warnings;
    None if the piece does not open (the parent then reads it itself, and says why)."""
    with PieceFile(path, piece) as source:
        reading = Reading(source, batch)
        batches = [to_wire(b) for b in reading]
    return None if reading.error is not None else (batches, reading.problems)


def to_wire(batch: Batch) -> tuple:
    """A batch as NumPy arrays (pickled out of band, no copy): count, offsets and bytes of the JSON
    texts, record ids, offsets and bytes of the timestamps."""
    text, ids, stamps = batch
    n = len(text)
    tb, sb = text.buffers(), stamps.buffers()
    return (n, np.frombuffer(tb[1], np.int64, n + 1, text.offset * 8), _bytes_of(tb[2]), ids,
            np.frombuffer(sb[1], np.int32, n + 1, stamps.offset * 4), _bytes_of(sb[2]))


def from_wire(wire: tuple) -> Batch:
    n, offs, data, ids, stamp_offs, stamp_data = wire
    text = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offs), pa.py_buffer(data)])
    stamps = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(stamp_offs), pa.py_buffer(stamp_data)])
    return text, ids, stamps


def _bytes_of(buf: pa.Buffer | None) -> np.ndarray:
    return np.frombuffer(buf, np.uint8) if buf is not None and buf.size else np.zeros(1, np.uint8)


class _Worker(WorkerProcess):
    """One worker process (``evtx_worker``), given one task at a time."""

    def __init__(self):
        super().__init__("soc.parse.engines.evtx_worker")


def _read_here(path: str, piece: Piece, batch: int) -> tuple[list[tuple], list[str]] | None:
    """A piece read ahead in this process, as a worker reads it; None if that failed (the piece is then
    read again when its turn comes, and the error is that file's)."""
    try:
        return read_piece(path, piece, batch)
    except Exception:  # noqa: BLE001 - raised again, for the right file, when the piece is read in turn
        return None


class _Ahead:
    """Who reads which piece: the pieces of a run's EVTX files (``paths``, in the run's order, each cut by
    ``pieces`` or whole; a path that is not an EVTX file the package opens is left out when its turn to
    be planned comes) are taken in order, by a worker (``worker_take``) or by this process (``take_here``:
    the piece it needs next, when no worker has taken it; ``steal``: the next free one, while it waits
    for a worker's). Nobody takes a piece more than ``ahead`` past the one parsed here, so at most that
    many pieces' records wait in memory. Replies wait here until their piece's turn."""

    def __init__(self, paths: list[str], batch: int, workers: list[_Worker], cut: list[Piece] | None = None):
        self.cond = threading.Condition()
        self.paths, self.batch = list(paths), batch
        self.planned = 0  # paths planned so far
        self.tasks: list[tuple[str, Piece]] = []
        self.files: dict[str, range] = {}
        if cut is not None:  # one file, cut already
            self.planned = len(self.paths)
            self.files[paths[0]] = range(len(cut))
            self.tasks = [(paths[0], piece) for piece in cut]
        self.next = 0  # the next piece nobody has taken
        self.current = 0  # the piece parsed here
        self.ahead = len(workers) + 2
        self.replies: dict[int, object] = {}
        self.closed = False
        self.feeds = [threading.Thread(target=_feed, args=(w, self), daemon=True, name="evtx-feed") for w in workers]
        for feed in self.feeds:
            feed.start()

    @classmethod
    def of_file(cls, path: str, cut: list[Piece], batch: int) -> _Ahead:
        """One file's pieces (a run that does not read ahead)."""
        return cls([path], batch, _helpers(), cut)

    def __enter__(self) -> _Ahead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _plan_next(self) -> None:
        """The next path's pieces (under the lock: a file's chunk headers, read in a few ms)."""
        path = self.paths[self.planned]
        self.planned += 1
        try:
            with open(path, "rb") as fh:
                if fh.read(len(MAGIC)) != MAGIC:
                    return
            if not _opens(path):
                return  # read the one-process way, which says why
            size, chunks = _size(path), chunk_ranges(path)
        except OSError:
            return
        cut = pieces(size, chunks, self.batch, 2) or [(HEADER_SIZE, size, chunks)]
        self.files[path] = range(len(self.tasks), len(self.tasks) + len(cut))
        self.tasks += [(path, piece) for piece in cut]

    def _free(self, reach: int) -> int | None:
        """Take the next free piece if it is within ``reach`` of the one parsed here (planning the next
        files as needed), else None."""
        while self.next >= len(self.tasks) and self.planned < len(self.paths) and self.next < self.current + reach:
            self._plan_next()
        if self.next < len(self.tasks) and self.next < self.current + reach:
            self.next += 1
            return self.next - 1
        return None

    def worker_take(self) -> int | None:
        with self.cond:
            while not self.closed:
                got = self._free(self.ahead)
                if got is not None:
                    return got
                if self.next >= len(self.tasks) and self.planned >= len(self.paths):
                    return None
                self.cond.wait(0.1)
            return None

    def open_file(self, path: str) -> range | None:
        """The pieces of ``path``, now parsed here; None if it is not in the schedule (or was parsed
        already). Pieces of files before it that were not parsed (they went another way) are dropped."""
        with self.cond:
            while path not in self.files and self.planned < len(self.paths):
                self._plan_next()
            tasks = self.files.pop(path, None)
            if tasks is None or tasks.start < self.current:
                return None
            for i in [i for i in self.replies if i < tasks.start]:
                del self.replies[i]
            self.current = tasks.start
            self.next = max(self.next, tasks.start)
            self.cond.notify_all()
            return tasks

    def take_here(self, i: int) -> bool:
        with self.cond:
            self.current = i
            self.cond.notify_all()
            if self.next <= i:
                self.next = i + 1
                return True
            return False

    def steal(self) -> int | None:
        """The next free piece, for this process to read while it waits for a worker's."""
        with self.cond:
            return self._free(self.ahead)

    def has(self, i: int) -> bool:
        with self.cond:
            return i in self.replies

    def put(self, i: int, reply) -> None:
        with self.cond:
            if i >= self.current:  # else its file went another way
                self.replies[i] = reply
            self.cond.notify_all()

    def reply(self, i: int):
        with self.cond:
            while i not in self.replies:
                self.cond.wait()
            return self.replies.pop(i)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.replies.clear()
            self.cond.notify_all()
        for feed in self.feeds:
            feed.join()


def _feed(worker: _Worker, ahead: _Ahead) -> None:
    """A worker's thread: once the worker answers (it may still be starting), it takes pieces and hands
    in their records; a failed worker hands in None for its piece (read by the caller) and stops."""
    if worker.call(("ready",)) is None:
        return
    while (i := ahead.worker_take()) is not None:
        path, piece = ahead.tasks[i]
        reply = None
        try:
            reply = worker.call(("read_piece", path, piece, ahead.batch))
        finally:  # whatever happens, the piece's turn comes: None has it read by the caller
            ahead.put(i, reply)
        if reply is None:
            return


_RUN = threading.local()  # the read-ahead of the run on this thread (``_run_ahead``)


@contextlib.contextmanager
def _run_ahead(paths: list[str]) -> Iterator[None]:
    """A run's read-ahead on this thread: made at its first EVTX file (``_scheduled_ahead``), closed at
    the end of the run."""
    _RUN.paths, _RUN.ahead = list(paths), None
    try:
        yield
    finally:
        ahead, _RUN.paths, _RUN.ahead = _RUN.ahead, None, None
        if ahead is not None:
            ahead.close()


def _scheduled_ahead(batch: int) -> _Ahead | None:
    """This thread's run read-ahead (made now if need be); None outside one, with nothing to read ahead (no
    worker process is started for nothing), or with no worker to help."""
    if not getattr(_RUN, "paths", None):
        return None
    if _RUN.ahead is None:
        workers = _helpers()
        if not workers:
            _RUN.paths = None  # this run reads every file here, the one-process way
            return None
        _RUN.ahead = _Ahead(_RUN.paths, batch, workers)
    return _RUN.ahead if _RUN.ahead.batch == batch else None


def _helpers() -> list[_Worker]:
    """The worker processes to help read (none when ``processes`` says 1, or no process can be started)."""
    try:
        return _workers() if processes() > 1 else []
    except OSError:
        return []


def _workers() -> list[_Worker]:
    """The worker processes (``processes() - 1``: this one parses), started once and kept for the next
    files; those that failed are replaced."""
    if not _POOL:
        atexit.register(_stop_workers)
    _POOL[:] = [w for w in _POOL if w.proc.poll() is None]
    while len(_POOL) < processes() - 1:
        _POOL.append(_Worker())
    return list(_POOL)


def _stop_workers() -> None:
    for w in _POOL:
        w.stop()
    _POOL.clear()


def _without_utc(stamps: pa.StringArray) -> pl.Series:
    """The record timestamps without the " UTC" the package writes after them (a Polars query, ~0.3 ms a
    batch; ``pyarrow.compute``, which cut them before, costs ~30 ms of CPU to import)."""
    return _polars(stamps).alias("Record.Timestamp").str.strip_suffix(" UTC")


class _Capsule:
    """An Arrow array handed to Polars through the Arrow PyCapsule interface: ``pl.Series(pa.Array)`` goes
    through Polars' ``coerce_arrow``, which imports pyarrow.compute (~30 ms of CPU)."""

    __slots__ = ("array",)

    def __init__(self, array: pa.Array):
        self.array = array

    def __arrow_c_array__(self, requested_schema=None):
        return self.array.__arrow_c_array__(requested_schema)


def _polars(array: pa.Array) -> pl.Series:
    """``array`` as a Polars Series (unnamed), without importing pyarrow.compute (``_Capsule``)."""
    return pl.Series(_Capsule(array))


def walked_strings(w: kernel.Walked | evtx_plain.Walked, buf: np.ndarray, data_buf: pa.Buffer,
                   ) -> tuple[pl.Series, pl.Series, tuple[np.ndarray, np.ndarray]]:
    """What a batch's frames are made of, from either walk: the System leaves as one String series (leaf after
    leaf, the records in ``w.order``), the groups' cells as another, and ``TimeCreated`` as UTC microseconds
    with whether each is in the package's own form (``evtx_kernel.utc_times``). The Numba walk gives spans of
    the batch's JSON ``buf`` (``data_buf``: its Arrow buffer) and of its ``extra``, made string views here; the
    plain walk gives the series."""
    if isinstance(w, evtx_plain.Walked):
        return w.system, w.cells, w.times()
    order = w.order
    extra = pa.py_buffer(w.extra)
    # np.take: ``ss[:, order]`` is not C-contiguous, so its ravel copied it again (10x slower)
    starts, ends = np.take(w.ss, order, axis=1).ravel(), np.take(w.se, order, axis=1).ravel()
    return (_strings(w.views(buf, starts, ends), data_buf, extra), _strings(w.views(buf, w.cs, w.ce), data_buf, extra),
            w.utc_times(buf, w.ss[kernel.TIME_CREATED, order], w.se[kernel.TIME_CREATED, order]))


def _times(us: np.ndarray, ok: np.ndarray) -> dict[str, pl.Series]:
    """``System.TimeCreated`` as UTC times if every record has it in the package's own form (``walked_strings``);
    else nothing, and the spec's rule reads the text."""
    if not ok.all():
        return {}
    return {"System.TimeCreated": pl.Series("System.TimeCreated", us).cast(UTC)}


def _strings(views: tuple[np.ndarray, np.ndarray], data: pa.Buffer, extra: pa.Buffer) -> pl.Series:
    """One String series of string views into the batch's JSON text and the unescaped strings."""
    out, valid = views
    mask = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return _polars(pa.Array.from_buffers(pa.string_view(), valid.size, [mask, pa.py_buffer(out), data, extra]))


def flatten(decoded: pl.Series, system: bool = True, text: pl.Series | None = None) -> tuple[pl.DataFrame, list[str]]:
    """String fields of decoded records: ``System.*`` and the EventData (or UserData, ...) fields, made by
    one query whose expressions follow the decoded schema. Returns them and the data fields' names.

    A data field whose element is in a record without content (null in the package's JSON) is ``""``,
    as the walker has it; the decoded schema cannot tell it from an absent one, so the record's JSON
    ``text`` (if given) is asked whether it has the key."""
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
            value = text_of(expr.struct.field(field), dtype)
            if text is not None:  # present without content: empty, not absent
                key = pl.col("t").str.contains(json.dumps(field, ensure_ascii=False) + ":", literal=True)
                value = pl.when(value.is_null() & key).then(pl.lit("")).otherwise(value)
            exprs[field] = value.alias(field)
            names.append(field)
    if not exprs:  # nothing to read: still one row per record
        exprs["System.Channel"] = pl.repeat(None, decoded.len(), dtype=pl.String).alias("System.Channel")
    frame = decoded.to_frame("d") if text is None else pl.DataFrame([decoded.alias("d"), text.alias("t")])
    return frame.select(list(exprs.values())), names


def text_of(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A decoded JSON value as the text the log holds, never JSON (matchers must not see escapes): numbers
    and booleans as written, an element with attributes by its text, a list its values one per line
    (nulls left out: unnamed ``<Data>``), another object its members one per line as ``name=text``
    (``#attributes`` without its name). The same text as the Numba walker's (``evtx_kernel._render``)."""
    if dtype == pl.String:
        return value
    if isinstance(dtype, pl.Struct):
        text = _sub(dtype, "#text")
        if text is not None:
            return text_of(value.struct.field("#text"), text)
        parts = []
        for f in dtype.fields:
            inner = text_of(value.struct.field(f.name), f.dtype)
            parts.append(inner if f.name == "#attributes" else pl.lit(f.name + "=") + inner)
        joined = pl.concat_str(parts, separator=SEP, ignore_nulls=True) if parts else pl.lit("")
        return pl.when(value.is_not_null()).then(joined)
    if isinstance(dtype, pl.Array):
        return text_of(value.arr.to_list(), pl.List(dtype.inner))
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        values = value if inner == pl.String else value.list.eval(text_of(pl.element(), inner))
        return values.list.join(SEP, ignore_nulls=True)
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
    """(file offset, first record id, last record id) of every chunk in the file. A chunk header holds
    its records' numbers (bytes 8-24) and identifiers (24-40); the evtx package returns (and ``_locate``
    reads) identifiers, which differ from the numbers in a log cut from a larger one or saved from a
    filtered view (numbers 1..16, ids 74..89): comparing numbers made phantom dead letters."""
    if isinstance(target, str):
        with open(target, "rb") as fh:
            return chunk_ranges(fh)
    return list(_chunks(target))


def _chunks(target) -> Iterator[tuple[int, int, int]]:
    """``chunk_ranges`` one chunk at a time (of an open file)."""
    size = _size(target)
    offset = HEADER_SIZE
    while offset + 40 <= size:
        head = _read_at(target, offset, 40)
        if head[:8] == CHUNK_MAGIC:
            first, last = struct.unpack_from("<QQ", head, 24)
            if first <= last and last - first < MAX_RECORDS_PER_CHUNK:
                yield offset, first, last
        offset += CHUNK_SIZE


def bad_slots(target, chunks: list[tuple[int, int, int]] | None = None) -> list[tuple[int, str, bytes, range]]:
    """(offset, reason, bytes, record ids) of every 64 KiB slot after the file header that is not a
    chunk: bytes without a chunk header (garbage: the evtx package skips it and says nothing), or a slot
    of zeros among the chunks the file header announces. Zeros past them are unused space, not records.
    The ids are those missing between the chunks just before and after it, when both are chunks and the
    gap fits in one chunk (else none: how many records it held cannot be known). ``chunks``: the file's
    ``chunk_ranges`` if known."""
    if isinstance(target, str):  # opened once (many small files: an open a slot was most of the cost)
        with open(target, "rb") as fh:
            return bad_slots(fh, chunks)
    head = _read_at(target, 0, HEADER_SIZE)
    if head[:8] != MAGIC or len(head) < 44:
        return []
    announced = struct.unpack_from("<H", head, 42)[0]
    chunks = chunk_ranges(target) if chunks is None else chunks  # in file order
    offsets = [offset for offset, _, _ in chunks]
    valid = set(offsets)
    out = []
    for k, offset in enumerate(range(HEADER_SIZE, _size(target), CHUNK_SIZE)):
        if offset in valid or _read_at(target, offset, 8) == CHUNK_MAGIC:
            continue  # a chunk (one with a broken header is the package's to report, as it reads it)
        raw = _read_at(target, offset, CHUNK_SIZE)
        if raw == ZEROS[: len(raw)]:  # zeros (a memcmp: strip scanned them one at a time, count is 20x slower)
            if k >= announced:
                continue
            what = f"is empty although the file header announces {announced} chunks"
        else:
            what = "is not an EVTX chunk (no ElfChnk header)"
        at = bisect.bisect(offsets, offset)  # the chunks before it: chunks[:at]
        ids = range(0)
        if 0 < at < len(chunks) and offsets[at - 1] == offset - CHUNK_SIZE and offsets[at] == offset + CHUNK_SIZE:
            ids = range(chunks[at - 1][2] + 1, chunks[at][1])
            ids = ids if len(ids) <= MAX_RECORDS_PER_CHUNK else range(0)
        gap = f"; records {ids[0]}..{ids[-1]} are missing between the chunks around it" if ids else ""
        out.append((offset, f"chunk at byte {offset} {what}{gap}: its records cannot be read", raw, ids))
    return out


def _complete(chunks: list[tuple[int, int, int]], seen: list[np.ndarray]) -> bool:
    """Whether the package returned exactly the records the chunk headers announce, in their order (most
    files: two NumPy calls rather than the ten of the search for missing ones, ~30 us a small file)."""
    if len(seen) != 1 or seen[0].size != sum(last - first + 1 for _, first, last in chunks):
        return False
    want = np.concatenate([np.arange(first, last + 1) for _, first, last in chunks]) if len(chunks) > 1 else \
        np.arange(chunks[0][1], chunks[0][2] + 1)
    return bool(np.array_equal(seen[0], want))


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
    """``size`` bytes at ``offset``, the position of an open file left as it is: one ``pread`` where the
    file has a descriptor (a seek and a buffered read filled 8 KiB for a 40-byte chunk header: ~15 us a
    chunk, ~40 ms of a 50 k-record file's three passes over its chunk headers)."""
    if isinstance(target, str):
        with open(target, "rb") as fh:
            return os.pread(fh.fileno(), size, offset)
    try:
        fd = target.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        fd = None
    if fd is not None:
        if hasattr(target, "flush") and target.writable():
            target.flush()  # a spool still being written: its bytes on the descriptor first
        return os.pread(fd, size, offset)
    here = target.tell()
    try:
        target.seek(offset)
        return target.read(size)
    finally:
        target.seek(here)
