"""The one-way pipeline: sources -> sniff -> parse -> (normalised frames) -> sinks, with per-input counts.

The library entry point; the CLI only calls ``run`` and prints what it returns.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

from soc.options import Options
from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import Context
from soc.parse.engines import RECORD_ENGINES, engine_class
from soc.parse.engines.records import RecordEngine
from soc.parse.spec import ParserSpec, load_specs
from soc.parse.threads import kernels_thread_safe
from soc.schema import DEAD_LETTERS
from soc.schema import time as T
from soc.sources import Chunk, Source, read_chunks
from soc.sources.discover import truncation
from soc.sources.prefetch import prefetch
from soc.sources.sniff import UnknownFormat, sniff, sniff_magic


@dataclass
class SourceStats:
    """What happened to one input. ``read == parsed + dead`` always holds. ``skipped`` is why an input was
    not read at all: its format is not one soc knows (a README, a PDF beside the logs); not an error here,
    the caller decides (the CLI warns, or fails with ``--strict``). ``error`` is an input that could not be
    read or parsed."""

    path: str
    format: str | None = None
    read: int = 0
    parsed: int = 0
    dead: int = 0
    bytes: int = 0
    seconds: float = 0.0
    first: datetime | None = None
    last: datetime | None = None
    events: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None
    days: dict[str, dict[str, int]] = field(default_factory=dict)  # records per event.dataset per day (DAY_ZONE)

    def add(self, res: ParseResult, nbytes: int) -> None:
        self.read += res.lines
        self.parsed += res.parsed
        self.dead += res.dead.height
        self.bytes += nbytes
        for (family, dataset), frame in res.frames.items():
            self.events[family] = self.events.get(family, 0) + frame.height
            if frame.height:
                ts = frame.get_column("@timestamp")
                lo, hi = ts.min(), ts.max()
                if lo is not None:
                    self.first = lo if self.first is None else min(self.first, lo)
                    self.last = hi if self.last is None else max(self.last, hi)
                count_days(self.days.setdefault(dataset, {}), ts, lo, hi)

    def as_dict(self) -> dict:
        return {
            "path": self.path, "format": self.format, "read": self.read, "parsed": self.parsed,
            "dead_lettered": self.dead, "bytes": self.bytes, "seconds": round(self.seconds, 3),
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "events": self.events, "error": self.error, "skipped": self.skipped,
        }


DAY_ZONE = "Asia/Ho_Chi_Minh"  # the SOC's calendar day (soc.report.period.ZONE)
# DAY_ZONE has been UTC+7 without daylight saving since 1975-06-13 00:00 local (UTC+8 before)
_FIXED_SINCE = datetime(1975, 6, 12, 16, tzinfo=timezone.utc)
_FIXED_OFFSET_US = 7 * 3_600_000_000
_EPOCH_DAY = date(1970, 1, 1)


def count_days(days: dict[str, int], ts: pl.Series, lo: datetime | None, hi: datetime | None) -> None:
    """Add the records of ``ts`` (``@timestamp``, min ``lo``, max ``hi``) to ``days`` per ISO day in DAY_ZONE,
    "" for records without a time. Cheap on the hot path: a frame within one day (nearly all) costs two
    conversions of Python datetimes; only a frame across midnight is grouped."""
    nulls = ts.null_count()
    if nulls:
        days[""] = days.get("", 0) + nulls
    if lo is None:
        return
    first, last = _day(lo), _day(hi)
    if first == last:
        days[first] = days.get(first, 0) + len(ts) - nulls
        return
    if lo >= _FIXED_SINCE and ts.dtype == pl.Datetime("us", "UTC"):
        # a fixed offset: days by integer division, no query (an EVTX batch's groups span days: ~0.04 ms a frame
        # against ~0.13 ms for the conversion and group_by, ~7% of a batch's typing)
        us = (ts.drop_nulls() if nulls else ts).to_numpy().view(np.int64)
        numbers, counts = np.unique((us + _FIXED_OFFSET_US) // 86_400_000_000, return_counts=True)
        for number, n in zip(numbers.tolist(), counts.tolist(), strict=True):
            key = (_EPOCH_DAY + timedelta(days=number)).isoformat()
            days[key] = days.get(key, 0) + n
        return
    local = ts.drop_nulls().dt.convert_time_zone(DAY_ZONE).dt.date()
    for day, n in local.value_counts().iter_rows():
        key = day.isoformat()
        days[key] = days.get(key, 0) + n


def _day(stamp: datetime) -> str:
    from zoneinfo import ZoneInfo

    return stamp.astimezone(ZoneInfo(DAY_ZONE)).date().isoformat()


class Sink:
    """Where results go. The default keeps nothing (counting only).

    ``write`` gets the frames of one input, named by ``source_path``, except for small files that a record
    engine reads together (``RecordEngine.read_many``: folders of small ``.evtx`` files): a frame then holds
    records of several inputs, its ``log.file.path`` column says which, and ``source_path`` is the first
    input of that batch. Dead letters are always written per input. ``close_source`` is called once for
    every input, after everything of it (and, for a batch, of the whole batch) was written."""

    def write(self, source_path: str, family: str, dataset: str, frame) -> None: ...
    def write_dead(self, source_path: str, dead) -> None: ...
    def close_source(self, source_path: str) -> None: ...
    def close(self) -> None: ...


class FeedSink(Sink):
    """A sink that hands every frame to ``feed`` (a Sigma hunter, the detectors) as it passes, then passes
    everything on to ``inner``: detection sees the stream without holding it."""

    def __init__(self, feed: Callable, inner: Sink | None = None):
        self.feed = feed
        self.inner = inner or Sink()

    def write(self, source_path: str, family: str, dataset: str, frame) -> None:
        self.feed((family, dataset), frame)
        self.inner.write(source_path, family, dataset, frame)

    def write_dead(self, source_path: str, dead) -> None:
        self.inner.write_dead(source_path, dead)

    def close_source(self, source_path: str) -> None:
        self.inner.close_source(source_path)

    def close(self) -> None:
        self.inner.close()


def own_values(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its own copy of its values only, for a frame kept past its chunk: a column gathered or
    sliced from a larger one shares that one's buffers (Polars' string views), so a few held rows would keep
    every chunk they came from alive; the round trip through Arrow's plain layout copies just the rows'.
    Categorical columns are left as they are: their strings live in the process-wide categories, not in the
    chunk, and their codes are the frame's own (a parsed group's) or at worst a slice of 4 bytes a row of the
    chunk; their round trip was the costliest (~0.2 ms a column of 13 k rows, ~40 % of a detector batch's)."""
    names = [n for n, t in frame.schema.items() if not isinstance(t, (pl.Categorical, pl.Enum))]
    if len(names) == frame.width:
        return pl.from_arrow(frame.to_arrow())
    if not names:
        return frame
    copied = pl.from_arrow(pl.DataFrame([frame.get_column(n) for n in names]).to_arrow())
    kept = set(names)
    return pl.DataFrame([(copied if n in kept else frame).get_column(n) for n in frame.columns])


Progress = Callable[[int], None]


def parse_source(source: Source, specs: dict[str, ParserSpec], options: Options, stats: SourceStats,
                 on_bytes: Progress | None = None) -> Iterator[ParseResult]:
    """Parse one input chunk by chunk, counting into ``stats``; yields each chunk's result.

    Raises ``UnknownFormat`` before yielding anything if the format cannot be told.
    """
    stream, raw = source.open()
    try:
        known = source.format if source.format in specs else None  # as a checkpointed file was read before
        name = options.format or known or sniff_magic(_peek(stream), [s.signature for s in specs.values()])
        if name is not None and issubclass(engine_class(specs[name].engine), RecordEngine):
            yield from _parse_records(source, specs[name], options, stats, stream, raw, on_bytes)
            return
        chunks = prefetch(read_chunks(stream, options.chunk_size, source.start, source.first_line, source.prelude))
        first = next(chunks, None)
        if first is None:
            return
        if first.cut_at is not None and name is None:  # cut before its first whole line: nothing to sniff
            result = _cut_line(first, source, stats)
            stats.add(result, len(first.data))
            yield result
            return
        name = name or sniff(first.data, [s.signature for s in specs.values()])
        spec = specs[name]
        stats.format = name
        ctx = Context(source.path, options.zone, T.reference_time(source.mtime, options.year))
        engine = engine_class(spec.engine)(spec, ctx)
        last_pos = 0
        for chunk, batch in _batches(engine, _chain(first, chunks), source.path):
            if chunk.replay:  # header lines before a checkpoint (Source.prelude): they set the engine's state
                engine.parse(batch)
                continue
            if chunk.cut_at is not None:
                result = _cut_line(chunk, source, stats)
            else:
                result = batch.oversize() if chunk.oversize else engine.parse(batch)
            stats.add(result, len(chunk.data) + chunk.dropped)
            yield result
            if on_bytes is not None:
                pos = _position(raw)
                on_bytes(max(pos - last_pos, 0))
                last_pos = pos
        tail = engine.finish()
        if tail is not None:
            stats.add(tail, 0)
            yield tail
    finally:
        if raw is not stream:
            stream.close()
        if source.path != "-":
            raw.close()


def _batches(engine, chunks: Iterator[Chunk], path: str) -> Iterator[tuple[Chunk, LineBatch]]:
    """The chunks as line batches that the engine has prepared (``Engine.prepare``): a thread does the next
    chunk while the caller parses this one, where Numba's kernels may run in two threads at once."""

    def prepared(chunks: Iterator[Chunk]) -> Iterator[tuple[Chunk, LineBatch]]:
        for chunk in chunks:
            batch = LineBatch(chunk, path)
            if not chunk.oversize and chunk.cut_at is None:
                engine.prepare(batch)
            yield chunk, batch

    # one chunk has nothing to overlap: the thread-safety probe (it loads Numba) is not asked
    ahead = list(itertools.islice(chunks, 2))
    rest = itertools.chain(ahead, chunks)
    return prefetch(prepared(rest), depth=1, name="soc-prepare") if len(ahead) > 1 and kernels_thread_safe() \
        else prepared(rest)


def _parse_records(source: Source, spec: ParserSpec, options: Options, stats: SourceStats, stream, raw,
                   on_bytes: Progress | None) -> Iterator[ParseResult]:
    """A binary input (EVTX): the engine reads it as records, a batch of records per result."""
    stats.format = spec.name
    ctx = Context(source.path, options.zone, T.reference_time(source.mtime, options.year))
    engine = engine_class(spec.engine)(spec, ctx)
    plain = source.compression is None and source.path != "-"
    for result in engine.read(stream, source.path if plain else None, source.records if plain else None):
        stats.add(result, 0)
        yield result
    cut_at = truncation(stream)
    if cut_at is not None:
        stats.error = (f"truncated input: {source.compression} data ends unfinished at compressed byte {cut_at} "
                       f"(end of file), decompressed byte {stream.raw.produced}; the records up to there read, "
                       "broken ones dead-lettered")
    nbytes = source.size if plain and source.size is not None else _position(raw)
    stats.bytes += nbytes
    if on_bytes is not None:
        on_bytes(nbytes)


def _cut_line(chunk: Chunk, source: Source, stats: SourceStats) -> ParseResult:
    """The last chunk of a compressed input cut short (``Chunk.cut_at``): what was left of its last line, a
    dead letter "truncated input" (none if the cut fell on a line end); the input's error says where."""
    stats.error = (f"truncated input: {source.compression} data ends unfinished at compressed byte {chunk.cut_at} "
                   f"(end of file); lines before decompressed byte {chunk.offset} kept"
                   + (f", cut line {chunk.first_line} dead-lettered" if len(chunk.data) else ""))
    if not len(chunk.data):
        return ParseResult({}, empty_dead(), 0)
    dead = pl.DataFrame({
        "log.file.path": [source.path], "log.line": [chunk.first_line], "log.offset": [chunk.offset],
        "error.message": ["truncated input"], "event.original": [bytes(chunk.data)],
    }, schema=DEAD_LETTERS)
    return ParseResult({}, dead, 1)


def _peek(stream, size: int = 16) -> bytes:
    """The first bytes of ``stream`` without consuming them (b"" if it cannot tell)."""
    try:
        return bytes(stream.peek(size)[:size])
    except (AttributeError, OSError, ValueError):
        return b""


def run(sources: list[Source], sink: Sink | None = None, options: Options | None = None,
        on_bytes: Progress | None = None, specs: dict[str, ParserSpec] | None = None) -> list[SourceStats]:
    """Run every source through the pipeline into ``sink``; return the counts per source."""
    options = options or Options()
    specs = specs or load_specs()
    if options.format and options.format not in specs:
        from soc.i18n import _

        raise ValueError(_("unknown format {format} (known: {known})").format(
            format=repr(options.format), known=", ".join(sorted(specs))))
    sink = sink or Sink()
    from soc.sources import remote

    if any(remote.is_remote(s.path) for s in sources):  # objects: read from local copies
        return remote.run(sources, sink, options, on_bytes, specs, run)
    stats = []
    plan = _plan(sources, specs, options)
    with _reading_ahead([s for s in plan if isinstance(s, Source)], specs, options):
        for item in plan:
            if isinstance(item, Source):
                stats.append(_run_source(item, specs, options, sink, on_bytes))
            else:
                stats += _run_many(*item, specs, options, sink, on_bytes)
    sink.close()
    return stats


Many = tuple[ParserSpec, list[tuple[Source, int]]]  # small inputs of one record engine, and their records


def _plan(sources: list[Source], specs: dict[str, ParserSpec], options: Options) -> list[Source | Many]:
    """The run's inputs in order, runs of consecutive small plain files that one record engine reads
    together (``RecordEngine.small``: a folder of small ``.evtx`` files) as one item each."""
    signatures = [s.signature for s in specs.values()]
    plan: list[Source | Many] = []
    for source in sources:
        small = _small(source, specs, signatures, options)
        if small is None:
            plan.append(source)
        elif plan and not isinstance(plan[-1], Source) and plan[-1][0] is small[0]:
            plan[-1][1].append((source, small[1]))
        else:
            plan.append((small[0], [(source, small[1])]))
    return plan


def _small(source: Source, specs: dict[str, ParserSpec], signatures: list,
           options: Options) -> tuple[ParserSpec, int] | None:
    """(spec, records) of a plain file that a record engine reads with its neighbours, told by its magic
    bytes (a forced format must be the same); None for any other input."""
    import os

    if source.compression is not None or source.path == "-":
        return None
    try:  # the magic bytes without a file object (~2 us a file less: a folder holds hundreds)
        fd = os.open(source.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            name = sniff_magic(os.read(fd, 16), signatures)
        finally:
            os.close(fd)
    except OSError:
        return None
    if name is None or (options.format and options.format != name):
        return None
    spec = specs[name]
    cls = engine_class(spec.engine)
    records = cls.small(spec, source.path) if issubclass(cls, RecordEngine) else None
    return None if records is None else (spec, records)


def _run_many(spec: ParserSpec, group: list[tuple[Source, int]], specs: dict[str, ParserSpec], options: Options,
              sink: Sink, on_bytes: Progress | None) -> list[SourceStats]:
    """Small inputs read together (``RecordEngine.read_many``) into ``sink`` (see ``Sink``); each input's
    counts are its own, told by the ``log.file.path`` of the rows (``_shares``), its seconds its share of
    its batch's by records. An input the engine could not read with the others is read alone
    (``_run_source``), so its error is its own."""
    sources = {s.path: s for s, _ in group}
    stats = {path: SourceStats(path, spec.name) for path in sources}
    engine = engine_class(spec.engine)(spec, Context("", options.zone, T.reference_time(None, options.year)))
    batches = engine.read_many([(s.path, n) for s, n in group], {s.path: s.records for s, _ in group if s.records})
    finished: set[str] = set()
    while True:
        started = time.perf_counter()
        try:
            got = next(batches, None)
        except Exception:  # noqa: BLE001 - the engine failed past its own checks: the inputs left are read alone
            got = ([], None, [p for p in sources if p not in finished])
        if got is None:
            break
        paths, result, left = got
        done = [p for p in paths if p not in left]
        try:
            if result is not None:
                _shares(result, stats)
                for (family, dataset), frame in result.frames.items():
                    sink.write(paths[0], family, dataset, frame)
                _dead_per_input(result.dead, sink)
        except Exception as exc:  # a sink's or a bug's failure: reported for every input of the batch
            for p in done:
                stats[p].error = f"parser failure ({type(exc).__name__}: {exc}) after {stats[p].read} lines"
        seconds = time.perf_counter() - started
        records = sum(stats[p].read for p in done)
        for p in done:
            st = stats[p]
            st.seconds = seconds * (st.read / records if records else 1 / len(done))
            st.bytes += sources[p].size or 0
            sink.close_source(p)
            finished.add(p)
            if on_bytes is not None:
                on_bytes(sources[p].size or 0)
        for p in left:
            stats[p] = _run_source(sources[p], specs, options, sink, on_bytes)
            finished.add(p)
        if not paths:
            break
    return [stats[s.path] for s, _ in group]


def _shares(result: ParseResult, stats: dict[str, SourceStats]) -> None:
    """Add each input's counts of ``result`` (records of several inputs) to its ``stats``, told by the rows'
    ``log.file.path``: its rows in the frames (parsed, and events of their family, first and last
    ``@timestamp``, records per dataset per day) and its dead letters, read = parsed + dead. One query for all
    the frames, not one an input: rows per (input, frame, day) with their first and last time (a query for the
    days and one per family before, the days by a zone conversion: ~5 -> ~2.5 ms a corpus task's batch)."""
    named = [(family, dataset, frame) for (family, dataset), frame in result.frames.items() if frame.height]
    if named:
        stamps = pl.concat([f.get_column("@timestamp") for *_, f in named])
        rows = pl.DataFrame([
            pl.concat([f.get_column("log.file.path") for *_, f in named]).cast(pl.String).alias("path"),
            pl.Series("i", np.repeat(np.arange(len(named), dtype=np.uint32), [f.height for *_, f in named])),
            stamps.alias("t"),
        ])
        first = stamps.min()
        fixed = stamps.dtype == pl.Datetime("us", "UTC") and (first is None or first >= _FIXED_SINCE)
        # DAY_ZONE's days by integer division where its offset is fixed (count_days), else by conversion
        day = ((pl.col("t").cast(pl.Int64) + _FIXED_OFFSET_US) // 86_400_000_000 if fixed
               else pl.col("t").dt.convert_time_zone(DAY_ZONE).dt.date())
        counts = rows.group_by("path", "i", day.alias("d"), maintain_order=True).agg(
            pl.len(), pl.col("t").min().alias("lo"), pl.col("t").max().alias("hi"))
        keys: dict[object, str] = {None: ""}
        for path, i, d, n, lo, hi in counts.iter_rows():
            family, dataset, _ = named[i]
            key = keys.get(d)
            if key is None:
                key = keys[d] = (_EPOCH_DAY + timedelta(days=d) if fixed else d).isoformat()
            per = stats[path].days.setdefault(dataset, {})
            per[key] = per.get(key, 0) + n
            st = stats[path]
            st.read += n
            st.events[family] = st.events.get(family, 0) + n
            if lo is not None:
                st.first = lo if st.first is None else min(st.first, lo)
                st.last = hi if st.last is None else max(st.last, hi)
    if result.dead.height:
        for path, n in result.dead.group_by("log.file.path").len().iter_rows():
            stats[path].read += n
            stats[path].dead += n
    for st in stats.values():
        st.parsed = st.read - st.dead


def _dead_per_input(dead: pl.DataFrame, sink: Sink) -> None:
    if dead.height:
        for (path,), part in dead.partition_by("log.file.path", as_dict=True, maintain_order=True).items():
            sink.write_dead(path, part)


def _reading_ahead(sources: list[Source], specs: dict[str, ParserSpec], options: Options) -> contextlib.ExitStack:
    """Each record engine's read-ahead over the run's plain files (``RecordEngine.reading_ahead``), for the
    engines whose format's magic bytes one of those files starts with (a spec without magic: always). Only
    those engines are imported: importing every engine took 40-90 ms of each run, the EVTX engine alone
    ~40 ms of a run over text logs."""
    # a job's read of the records after an id (``Source.records``) reads only its new chunks, without workers
    plain = [s.path for s in sources if s.compression is None and s.path != "-" and not (s.records and s.records[0])]
    names = [options.format] if options.format else list(specs)
    record = [specs[n] for n in names if specs[n].engine in RECORD_ENGINES]
    heads = [_head(path) for path in plain] if record else []
    stack = contextlib.ExitStack()
    for engine in dict.fromkeys(spec.engine for spec in record
                                if not spec.signature.magic or any(h.startswith(spec.signature.magic) for h in heads)):
        stack.enter_context(engine_class(engine).reading_ahead(plain))
    return stack


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(16)
    except OSError:
        return b""


def _run_source(source: Source, specs: dict[str, ParserSpec], options: Options, sink: Sink,
                on_bytes: Progress | None) -> SourceStats:
    """One source through the pipeline into ``sink``; its counts (an error is counted, not raised)."""
    st = SourceStats(source.path)
    started = time.perf_counter()
    try:
        for result in parse_source(source, specs, options, st, on_bytes):
            for (family, dataset), frame in result.frames.items():
                sink.write(source.path, family, dataset, frame)
            sink.write_dead(source.path, result.dead)
    except UnknownFormat as exc:  # not a log soc knows (sniffing only: a forced format gives dead letters)
        st.skipped = str(exc)
    except OSError as exc:
        st.error = f"cannot read: {exc}"
    except Exception as exc:  # a parser bug must not stop the other inputs; it is reported loudly
        st.error = f"parser failure ({type(exc).__name__}: {exc}) after {st.read} lines"
    finally:
        sink.close_source(source.path)
    st.seconds = time.perf_counter() - started
    return st


def _position(raw) -> int:
    try:
        return raw.tell()
    except (OSError, ValueError):
        return 0


def _chain(first: Chunk, rest: Iterator[Chunk]) -> Iterator[Chunk]:
    yield first
    yield from rest
