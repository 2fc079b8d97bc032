"""One task of a hunt in several processes: a partition of the inputs parsed, hunted with the Sigma rules, and the
rows the detectors need gathered. ``run_task`` is a pure function of plain data (a plan and a partition in, a
result out), so a local worker process (``soc.distributed.local``) or a Ray task can run it as is.

A task returns what the one-process hunt would have done with its inputs, for the driver to merge in the tasks'
order: the Sigma matches before correlation (the driver correlates all of them at the end), each detector's
prepared rows with their frame numbers (``DetectorRunner.take_rows``), the dead letters and the end of each
input in the order the pipeline gave them, and each input's ``SourceStats``. Partitions are cut only where the
one-process hunt cuts its work anyway (whole inputs; the batches in which a record engine reads small files,
``RecordEngine.batches``; ranges of whole read chunks of a large line-oriented file, ``spans``), so a task's frames
are those the one-process hunt makes, in its order: the detectors see their rows in the same order, and the result
is the same whatever the number of processes.

A byte range of a file is read as the one-process hunt reads it from there (``Source.start``/``end``, its format
given: the one sniffed on the file's first chunk), its line numbers counted from its ``first_line`` (1, or a job's
window's): the driver adds the lines of the ranges before it (``TaskResult.lines``) to ``log.line`` of its matches,
detector rows and dead letters. Which formats are cut (``spans``): those read line by line whose parse keeps no
state from one chunk to the next (``RAY_SPLIT_ENGINES``): web access logs and Squid (``words``), FortiGate
(``kv``), CEF, the ``regex`` formats, syslog (a year-less stamp takes the year of the file's mtime, or an earlier
one: every range has the file's ``Source.mtime``, so the same year), JSON lines (Suricata, Zeek JSON: never a
range that starts with ``[``, which the engine would take for an array; a JSON array is read whole), Windows JSON
lines; and formats whose header lines set the state of the lines after them (Zeek TSV ``#fields``, W3C
``#Fields:``): a range replays the header lines before it (``Source.prelude``, as a job does after its
checkpoint). A compressed file is one task. A test compares every one of them cut and whole
(tests/test_distributed_parts.py).

On Ray that is what spreads a large file over the nodes. The local hunt (``--workers``) cuts only Windows JSON lines
(``SPLIT_ENGINES``): web access logs and FortiGate lines gave the same result cut but gained nothing there: 1 M
generated access lines, soc's own rules, 3.96-4.42 s wall in one process against 4.11-4.33 s in two, +1.0-1.2 s of
CPU (their parsing is fast and already overlapped by a thread; each range's detector rows and matches are large
beside the work), so they are read whole.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import polars as pl

from soc import pipeline
from soc.sources import Source, remote


@dataclass(frozen=True)
class HuntPlan:
    """What every task of one hunt does: its Sigma rules (paths as ``--rules`` gives them, empty: soc's own; the
    placeholders' file), its detectors (specs with the settings applied; None: no detectors) and how to read."""

    rules: tuple[str, ...] = ()
    placeholders: str | None = None
    detectors: tuple | None = ()
    options: pipeline.Options = field(default_factory=pipeline.Options)

    @property
    def rules_key(self) -> tuple:
        return tuple(self.rules), self.placeholders


SPLIT_ENGINES = {"windows_json"}  # engines whose inputs may be cut in byte ranges (see the module docstring)
# on Ray, every line format whose parse keeps no state from line to line (see the module docstring): cutting a
# large file is what spreads it over the nodes
RAY_SPLIT_ENGINES = frozenset({"windows_json", "words", "kv", "cef", "regex", "syslog", "json", "zeek_json", "zeek",
                               "w3c"})
JSON_ENGINES = frozenset({"json", "zeek_json"})  # a JSON array is read whole (``_json_bounds``)
HEADER_ENGINES = frozenset({"zeek", "w3c"})  # a range replays the header lines before it (``_headers``)
NEWLINE = 10
HEADER_LINES = 32  # header lines replayed, the last ones before a range (a job keeps as many: DIRECTIVES)
SPAN_CHUNKS = 4  # read chunks per range (64 MB at the default 16 MB: ~50 k NXLog lines, what the Hunter lets wait)


@dataclass
class Partition:
    """Some inputs of a hunt, read as the one-process hunt reads them (``number``: its place in the hunt). A byte
    range of a file (``span``) follows the ranges before it; ``last``: the file's last one."""

    number: int
    sources: list[Source]
    span: bool = False
    last: bool = True

    @property
    def size(self) -> int:
        return sum((s.end if s.end is not None else s.size or 0) - s.start for s in self.sources)


@dataclass
class TaskResult:
    """What a task found: see the module docstring. ``log`` holds ``("dead", path, frame)`` and
    ``("close", path)`` in the order the pipeline gave them to its sink."""

    number: int
    matches: pl.DataFrame
    events: int
    failures: list
    detectors: dict | None
    log: list[tuple]
    stats: list[pipeline.SourceStats]
    lines: int = 0  # a byte range's lines (``\n``), for the line numbers of the ranges after it


class _Collect(pipeline.Sink):
    """The task's sink: frames to the hunter and the detectors, dead letters and inputs' ends kept in order."""

    def __init__(self, hunter, runner):
        self.hunter, self.runner = hunter, runner
        self.log: list[tuple] = []

    def write(self, source_path: str, family: str, dataset: str, frame) -> None:
        if self.runner is not None:
            self.runner.feed((family, dataset), frame)
        self.hunter.feed((family, dataset), frame)

    def write_dead(self, source_path: str, dead) -> None:
        if dead.height:
            self.log.append(("dead", source_path, dead))

    def close_source(self, source_path: str) -> None:
        self.log.append(("close", source_path))


_RULES: dict = {}  # rules_key -> RuleSet (this process's)
_HUNTERS: dict = {}  # rules_key -> a Hunter kept from task to task: its routes and compiled rules
_PARSERS: list = []  # the parser specs, read once (``parsers``)


def parsers() -> dict:
    """soc's parser specs, loaded once a process: the driver plans its tasks with them and runs its own (they
    were loaded twice there, ~10-15 ms of CPU each)."""
    if not _PARSERS:
        from soc.parse.spec import load_specs

        _PARSERS.append(load_specs())
    return _PARSERS[0]


def prime(plan: HuntPlan, ruleset) -> None:
    """This process has loaded the plan's rules already (the driver): its tasks use them (a hunter kept for other
    rules of the same paths, loaded before the files changed, goes)."""
    if _RULES.get(plan.rules_key) is not ruleset:
        _HUNTERS.pop(plan.rules_key, None)
    _RULES[plan.rules_key] = ruleset


def load_rules(key: tuple):
    """The rule set of ``key`` (``HuntPlan.rules_key``: rule paths, placeholders' file), loaded once a process
    (from the rule cache: ~0.04 s warm)."""
    got = _RULES.get(key)
    if got is None:
        from soc.sigma.loader import default_rule_paths, load, read_placeholders

        rules, placeholders = key
        got = load(list(rules) or default_rule_paths(), read_placeholders(placeholders))
        _RULES[key] = got
        gc.freeze()  # they live as long as the process (``hunter_for``)
    return got


def _hunter(plan: HuntPlan):
    from soc.sigma.hunt import Hunter, correlation_fields

    hunter = _HUNTERS.get(plan.rules_key)
    if hunter is None:
        ruleset = load_rules(plan.rules_key)
        hunter = _HUNTERS[plan.rules_key] = Hunter(ruleset, keep=correlation_fields(ruleset))
    return hunter


def run_task(plan: HuntPlan, part: Partition) -> TaskResult:
    """Parse and hunt one partition (see the module docstring)."""
    from soc.runtime import setup_kept

    hunter = _hunter(plan)
    runner = None
    if plan.detectors is not None:
        from soc.detect.runner import DetectorRunner

        runner = DetectorRunner(list(plan.detectors))
    specs = parsers()
    sink = _Collect(hunter, runner)
    try:  # objects of a store (s3://) are read from local copies of their ranges (soc.sources.remote)
        with setup_kept(), remote.copies(part.sources) as got:
            stats = got.stats(pipeline.run(got.sources, got.sink(sink), plan.options, specs=specs))
            matches, events, failures = hunter.take()
            lines = sum(_range_lines(s, st, specs) for s, st in zip(got.sources, stats, strict=True)) \
                if part.span else 0
    except BaseException:
        _HUNTERS.pop(plan.rules_key, None)  # left half fed: not for the next task
        raise
    return TaskResult(part.number, matches, events, failures, None if runner is None else runner.take_rows(),
                      sink.log, stats, lines)


COUNTED_ENGINES = frozenset({"windows_json"})  # a range's lines read are its ``\\n`` bytes (``_range_lines``)


def _range_lines(source: Source, st: pipeline.SourceStats, specs: dict) -> int:
    """The ``\\n`` bytes of a byte range: its lines read (``st.read``) for a format of ``COUNTED_ENGINES`` read
    without error (each of its lines, blank ones too, ends with ``\\n``: a range is cut after one, and a file with a
    line longer than a chunk is not cut), else counted again (``_newlines``: ~40 ms of CPU a 64 MB range, 1.5 % of
    a Windows JSON task)."""
    spec = specs.get(st.format) if st.format else None
    if spec is not None and spec.engine in COUNTED_ENGINES and st.error is None and not st.skipped:
        return st.read
    return _newlines(source.path, source.start, source.end)


def _newlines(path: str, start: int, end: int | None) -> int:
    """The ``\\n`` bytes of ``path`` from ``start`` to ``end`` (read again: the page cache has them; ~10 ms a 16 MB)."""
    n = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        left = -1 if end is None else end - start
        while left:
            block = fh.read(1 << 22 if left < 0 else min(left, 1 << 22))
            if not block:
                break
            n += block.count(b"\n")
            left -= len(block) if left > 0 else 0
    return n


def partitions(sources: list[Source], options: pipeline.Options, specs=None, tasks: int = 8,
               engines: frozenset | set | None = None) -> list[Partition]:
    """The hunt's inputs cut in partitions, in order: small files that a record engine reads together (a folder
    of small ``.evtx`` files), one partition per batch it reads them in (``RecordEngine.batches``); a large
    file of a format read line by line, its byte ranges (``spans``); other inputs whole, consecutive ones
    together up to about a ``tasks``-th of all the inputs' bytes (a task per small file would evaluate the rules
    once per file, where one process evaluates the small frames of many files together: the same matches, not
    the same cost). ``engines``: the formats whose large files are cut (``spans``; default ``SPLIT_ENGINES``, the
    local hunt's; ``RAY_SPLIT_ENGINES`` on Ray)."""
    from soc.parse.engines import engine_class

    specs = specs or parsers()
    out: list[Partition] = []
    whole = max(sum(s.size or 0 for s in sources) // max(tasks, 1), 1)
    grouping = False  # the last partition holds whole inputs and may take more
    for item in pipeline._plan(sources, specs, options):
        if isinstance(item, Source):
            cut = spans(item, specs, options, engines=engines)
            if len(cut) == 1 and grouping and out[-1].size + (item.size or 0) <= whole:
                out[-1].sources.append(item)
                continue
            for i, span in enumerate(cut):
                out.append(Partition(len(out), [span], span=len(cut) > 1, last=i == len(cut) - 1))
            grouping = len(cut) == 1
            continue
        spec, group = item
        by_path = {s.path: s for s, _ in group}
        for paths in engine_class(spec.engine).batches(spec, [(s.path, n) for s, n in group]):
            out.append(Partition(len(out), [by_path[p] for p in paths]))
        grouping = False
    return out


def spans(source: Source, specs: dict, options: pipeline.Options, per_task: int | None = None,
          engines: frozenset | set | None = None) -> list[Source]:
    """A plain file of a format of ``engines`` (default ``SPLIT_ENGINES``) cut in byte ranges of ``per_task``
    chunks each, cut where the one-process hunt cuts its chunks (``soc.sources.read_chunks``: ``chunk_size`` bytes
    back to the last ``\\n``) and with the format it sniffs on the first chunk; ``[source]`` for any other input,
    one not worth cutting or one with a line longer than a chunk. A job's window of a file (``start`` to ``end``)
    is cut the same way from its ``start``: every range keeps its ``first_line`` (the driver adds the lines of the
    ranges before it). A range of a format with header lines (``HEADER_ENGINES``) replays those before it
    (``Source.prelude``); a JSON-lines range never starts with ``[`` (``_json_bounds``)."""
    chunk, per_task = options.chunk_size, per_task or SPAN_CHUNKS
    engines = SPLIT_ENGINES if engines is None else engines
    begin = source.start
    stop = source.end if source.end is not None else (source.size if not begin else None)
    if source.compression is not None or source.path == "-" or source.records is not None or stop is None or \
            stop - begin < 2 * chunk:
        return [source]
    try:
        starts = _chunk_starts(source.path, begin, stop, chunk)
        if starts is None or len(starts) <= per_task:
            return [source]
        name = options.format or source.format
        if name not in specs:
            from soc.sources.sniff import UnknownFormat, sniff, sniff_magic

            signatures = [s.signature for s in specs.values()]
            with remote.open_file(source.path) as fh:
                head = remote.pread(fh, starts[1] - begin, begin)
            if sniff_magic(head[:16], signatures) is not None:
                return [source]
            try:
                name = sniff(head, signatures)
            except UnknownFormat:
                return [source]
        engine = specs[name].engine
        if engine not in engines:
            return [source]
        bounds = [*starts[::per_task], stop]
        preludes = [source.prelude] * len(bounds)
        if engine in JSON_ENGINES:
            bounds = _json_bounds(source.path, bounds)
        elif engine in HEADER_ENGINES:
            preludes = _headers(source.path, bounds, source.prelude)
    except OSError:
        return [source]
    if len(bounds) <= 2:
        return [source]
    import dataclasses

    return [dataclasses.replace(source, start=a, end=b, format=name, prelude=pre)
            for a, b, pre in zip(bounds, bounds[1:], preludes, strict=False)]


def _json_bounds(path: str, bounds: list[int]) -> list[int]:
    """``bounds`` less the cuts where a range would start with ``[`` (or blank: not known), which the JSON engine
    would take for a JSON array (``json._array``: it asks the first non-blank byte of its input); no cut at all if
    the file itself is an array (its elements span lines: read whole)."""
    with remote.open_file(path) as fh:

        def head(at: int) -> bytes:
            return remote.pread(fh, 1 << 16, at).lstrip(b" \t\r\n")[:1]

        if head(bounds[0]) in (b"[", b""):
            return [bounds[0], bounds[-1]]
        return [bounds[0], *(at for at in bounds[1:-1] if head(at) not in (b"[", b"")), bounds[-1]]


def _headers(path: str, bounds: list[int], before: bytes) -> list[bytes]:
    """For each range from ``bounds``, the header lines (``#...``: Zeek ``#fields``, W3C ``#Fields:``) before it,
    after ``before`` (a job's prelude), the last ``HEADER_LINES`` of them, as a job replays them after its
    checkpoint (``soc.jobs.checkpoints``). The bounds are line starts; the file is mapped, not read into this
    process, and searched for ``#`` (0.04-0.06 s of CPU for 272 MB of Zeek TSV from the page cache)."""
    import mmap

    found = before.splitlines(keepends=True)[-HEADER_LINES:]
    out = [before]
    if remote.is_remote(path):  # an object: each range read in turn (a range at a time in memory, not the object)
        with remote.open_file(path) as fh:
            for a, b in zip(bounds[:-2], bounds[1:-1], strict=True):
                data = remote.pread(fh, b - a, a)
                found += _header_lines(data, 0, len(data))
                del found[:-HEADER_LINES]
                out.append(b"".join(found))
        return out
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for a, b in zip(bounds[:-2], bounds[1:-1], strict=True):
            found += _header_lines(mm, a, b)
            del found[:-HEADER_LINES]
            out.append(b"".join(found))
    return out


def _header_lines(buf, a: int, b: int) -> list[bytes]:
    """The lines starting with ``#`` in bytes ``a`` to ``b`` (a line start) of ``buf`` (a map or bytes)."""
    found = []
    at = buf.find(b"#", a, b)  # one byte: memchr (b"\\n#" took 5x as long: \\n is everywhere)
    while at >= 0:
        if at > a and buf[at - 1] != NEWLINE:  # not at a line start
            at = buf.find(b"#", at + 1, b)
            continue
        end = buf.find(b"\n", at, b) + 1
        if not end:
            break
        found.append(buf[at:end])
        at = buf.find(b"#", end, b)
    return found


def _chunk_starts(path: str, begin: int, size: int, chunk: int) -> list[int] | None:
    """Where ``read_chunks`` starts each chunk of bytes ``begin`` to ``size`` of the plain file at ``path`` (None:
    a line longer than a chunk)."""
    starts, pos = [begin], begin
    with remote.open_file(path) as fh:  # an object (s3://): a ranged read at each cut
        while size - pos >= chunk:
            end = pos + chunk
            at = -1
            while at < 0 and end > pos:  # the last newline before ``end``, looked for 64 KB at a time
                begin = max(pos, end - (1 << 16))
                at = remote.pread(fh, end - begin, begin).rfind(b"\n")
                at, end = (begin + at, end) if at >= 0 else (-1, begin)
            if at < 0:
                return None
            pos = at + 1
            if pos < size:
                starts.append(pos)
    return starts
