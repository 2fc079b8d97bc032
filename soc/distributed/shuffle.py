"""Detector rows shuffled by entity key to detector partitions (issue 22): each hunt task cuts the rows it prepared
(``DetectorRunner.take_rows``) by a hash of each detector's key into ``n`` pieces (``cut``); partition ``i`` takes
piece ``i`` of every task, puts the rows back in the hunt's feed order (the driver numbered each task's frames and
lines as it merged it: ``marks``), and runs the same kernels (``run_detector``) on them (``run_partition``); the
driver takes the partitions' hits in partition order, per detector in the local hunt's order (``combine``). Every
key's rows are in one partition, in the order one process sees them, so its hits are the local hunt's.

What spans keys is given to every partition by the driver, or the detector stays in the driver (``routes``):
- drop: "now" is the hunt's latest event of the detector's frames (the driver's ``_last``, from every task);
- first_seen: its baseline starts at the hunt's first row with a value (each task sends its own: ``first``);
- learned DNS resolvers (``soc.detect.domains``): a server many clients query; the (server, client) pairs of every
  task reach the driver, which gives them all to every partition (the rest of ``NameScorer.finish`` is per client);
- beacon with ``max_sources``: a destination (the key's other fields) that many sources beacon to is a service:
  partitioned by the destination alone, so all its sources meet in one partition;
- rise: the walk runs every key up to the hunt's last bucket, past a key's own last bucket only zeros, which can
  rise only when ``min_count`` is 0 or less: such a spec stays in the driver;
- a job's runner (``DetectorRunner.carry``, ``soc.jobs.state``): rows carried from the last run and the rows to
  carry to the next are cut by the hunt's newest row, over every key: the whole runner stays in the driver.

A partition's failure of a detector is the detector's failure (the first partition's, in order), as in one process.

The Sigma correlations are cut the same way by their group-by values, in the driver, which holds every match
(``correlation_pieces``): a correlation partition runs ``soc.sigma.correlation.correlate`` on its groups' matches
(``run_correlations``) and the driver puts the alerts in one process's order (``combine_correlations``). A
correlation of correlations (its events are another's alerts, grouped by other fields), one without group-by and
a job's (its ``Carry`` spans groups by time) stay in the driver.
The hash is Polars' ``hash_rows`` with a fixed seed over the key as strings: the same on every node with the same
Polars (soc's nodes must have the driver's versions anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

SEED = 22  # of the key hash
MARK = "_shuffle"  # the runner's parts name for each task's mark row (``cut``, ``marks``)
_T = "@timestamp"


def routes(runner) -> dict[str, tuple[str, ...]]:
    """Detector id -> the columns whose hash picks its partition, for the detectors of ``runner`` that run on
    partitions (the others stay in the driver: the module docstring)."""
    if runner is None or runner.carry is not None:
        return {}
    out = {}
    for spec in runner.specs:
        if spec.kernel == "rise" and float(spec.param("min_count", 10)) <= 0:
            continue
        if spec.kernel == "beacon" and spec.param("max_sources", None) is not None and len(spec.key) > 1:
            out[spec.id] = tuple(spec.key[1:])
        else:
            out[spec.id] = tuple(spec.key)
    return out


def partition_of(frame: pl.DataFrame, columns: tuple[str, ...], n: int) -> pl.Series:
    """Each row's partition (0..n-1): the hash of its ``columns`` as strings (Categorical codes differ between
    processes; a string is the same everywhere)."""
    keys = frame.select(pl.col(c).cast(pl.String) for c in columns)
    return (keys.hash_rows(seed=SEED) % n).cast(pl.Int64)


def cut(rows: dict, specs, route: dict[str, tuple[str, ...]], n: int) -> list[dict]:
    """In a task: the routed detectors' parts taken out of ``rows`` (``take_rows``) and cut into ``n`` pieces
    (``{detector id: [part, ...]}``, every part in each piece, empty or not, so a partition concatenates what one
    process does); ``rows`` keeps the others, a mark row (``MARK``) that the driver's merge numbers and shifts like
    any detector row, and ``rows["first"]``: each first_seen detector's first row with a value (us)."""
    pieces: list[dict] = [{} for _ in range(n)]
    first: dict[str, int] = {}
    kernels = {s.id: s for s in specs}
    for spec_id, columns in route.items():
        parts = rows["parts"].pop(spec_id, None)
        if not parts:
            continue
        spec = kernels[spec_id]
        value = spec.value or spec.evidence
        for part in parts:
            if spec.kernel == "first_seen" and value in part.columns:
                low = part.filter(pl.col(value).is_not_null()).get_column(_T).dt.epoch("us").min()
                if low is not None:
                    first[spec_id] = min(first.get(spec_id, low), low)
            where = partition_of(part, columns, n) if part.height else pl.Series([], dtype=pl.Int64)
            for i in range(n):
                pieces[i].setdefault(spec_id, []).append(part.filter(where == i) if part.height else part)
    rows["parts"][MARK] = [pl.DataFrame({"log.line": [0], "_seq": [0]}, schema={"log.line": pl.Int64,
                                                                               "_seq": pl.Int64})]
    rows["first"] = first
    return pieces


def marks(runner) -> list[tuple[int, int]]:
    """Each task's (first frame number, lines before it) as the driver's merge gave them (its mark rows, in the
    tasks' order), taken out of ``runner``."""
    rows = runner._parts.pop(MARK, [])
    return [(int(m.get_column("_seq")[0]), int(m.get_column("log.line")[0])) for m in rows]


@dataclass
class PartitionJob:
    """What a partition does with its pieces (one per task, in order): the detectors, and what spans keys."""

    index: int
    specs: list
    tasks: list[tuple[int, int]]  # per task: first frame number, lines before it (``marks``)
    last: dict = field(default_factory=dict)  # drop: the hunt's latest event
    first: dict = field(default_factory=dict)  # first_seen: the hunt's first row (us)
    pairs: dict = field(default_factory=dict)  # learned DNS: every (server, client) pair (None: no pairs)
    final: bool = True
    trace: bool = False  # send back each detector's keys (a test: one key, one partition)


@dataclass
class PartitionResult:
    index: int
    found: dict  # detector id -> hits, or a DetectorFailure
    rows: dict  # detector id -> rows it ran on
    keys: dict | None = None  # detector id -> its distinct keys (``PartitionJob.trace``)


def _numbered(part: pl.DataFrame, seq: int, lines: int) -> pl.DataFrame:
    """A task's part as the driver's merge numbers it: frames after ``seq`` others, lines after ``lines``."""
    more = [pl.col("_seq") + seq]
    if lines and part.schema.get("log.line") in (pl.Int64, pl.UInt32, pl.UInt64, pl.Int32):
        more.append(pl.col("log.line") + lines)
    return part.with_columns(more)


def run_partition(job: PartitionJob, *pieces: dict) -> PartitionResult:
    """One detector partition: its piece of every task's rows, in the hunt's feed order, through the kernels."""
    from soc.detect.runner import DetectorFailure, _in_feed_order, run_detector

    found, counts, keys = {}, {}, {} if job.trace else None
    for spec in job.specs:
        parts = [_numbered(p, seq, lines) for (seq, lines), piece in zip(job.tasks, pieces, strict=True)
                 for p in piece.get(spec.id, ())]
        if not parts:
            continue
        try:
            rows = _in_feed_order(parts)
            counts[spec.id] = rows.height
            if keys is not None:
                keys[spec.id] = rows.select(pl.col(c).cast(pl.String) for c in spec.key).unique()
            if not rows.height:
                continue
            if spec.id in job.pairs:  # DNS names: leave out the resolvers' forwarded queries
                from soc.detect.domains import NameScorer

                scorer = NameScorer.of(spec)
                scorer._pairs = [] if job.pairs[spec.id] is None else [job.pairs[spec.id]]
                rows = scorer.finish(rows)
            found[spec.id] = run_detector(spec, rows, job.last.get(spec.id), job.final, job.first.get(spec.id))
        except Exception as exc:  # a detector must not stop the hunt: reported as one process reports it
            found[spec.id] = DetectorFailure(spec.id, f"{type(exc).__name__}: {exc}")
    return PartitionResult(job.index, found, counts, keys)


def jobs(runner, route: dict, firsts: list[dict], n: int, trace: bool = False) -> list[PartitionJob]:
    """The ``n`` partitions' jobs, after the driver merged every task (``firsts``: each task's ``rows["first"]``)."""
    specs = [s for s in runner.specs if s.id in route]
    first: dict[str, int] = {}
    for got in firsts:
        for spec_id, low in got.items():
            first[spec_id] = min(first.get(spec_id, low), low)
    pairs = {}
    for spec in specs:
        scorer = runner._scorers.get(spec.id)
        if scorer is not None:
            pairs[spec.id] = pl.concat(scorer._pairs).unique() if scorer._pairs else None
    last = {s.id: runner._last[s.id] for s in specs if s.id in runner._last}
    tasks = marks(runner)
    return [PartitionJob(i, specs, tasks, last, first, pairs, runner.final, trace) for i in range(n)]


def combine(runner, results: list[PartitionResult]) -> None:
    """The partitions' hits into ``runner.done``, per detector as one process gives them: the partitions' frames
    in partition order, sorted by time and key (ties: one key's, in its partition's order); a failure in any
    partition is the detector's."""
    from soc.detect.runner import DetectorFailure, empty_hits

    results = sorted(results, key=lambda r: r.index)
    for spec in runner.specs:
        got = [r.found[spec.id] for r in results if spec.id in r.found]
        if not got:
            continue
        failed = next((f for f in got if isinstance(f, DetectorFailure)), None)
        if failed is not None:
            runner.done[spec.id] = failed
            continue
        frames = [f for f in got if f.height]
        runner.done[spec.id] = (pl.concat(frames, how="diagonal_relaxed").sort([_T, *spec.key], maintain_order=True)
                                if frames else empty_hits())


# -- Sigma correlations by their group-by keys ---------------------------------------------------------------------


@dataclass
class CorrelationResult:
    """One correlation partition's alerts: correlation number (in the rule set's order) -> its frame."""

    index: int
    found: dict


def correlation_pieces(correlations: list, matches: pl.DataFrame, n: int) -> list[dict] | None:
    """In the driver: the match frames of each correlation's rules cut by a hash of its group-by values (as each
    rule's events name them: ``soc.sigma.correlation._parts``) into ``n`` pieces, ``{correlation number:
    {reference: frame}}`` each. None: they stay in the driver (no correlation, no match of their rules, a
    correlation of correlations or one without group-by, or matches they cannot read: the driver reports that as
    one process does)."""
    from soc.sigma import correlation as sc

    if not correlations or not matches.height:
        return None
    ids = list({c.rule_id(ref) for c in correlations for ref in c.bases})
    if not matches.select(pl.col("rule.id").is_in(ids).any()).item():
        return None
    try:
        parsed = sc.parsed(correlations)
        if any(sc._inner(c) or not c.rule.group_by for c in parsed):
            return None
        pieces: list[dict] = [{} for _ in range(n)]
        for number, c in enumerate(parsed):
            frames = sc._frames(c, matches, {})
            group_by = [str(g) for g in c.rule.group_by]
            refs = c.rule.referenced_rules or c.rule.rules or []
            keyed = sc._parts(c.rule, frames, sc._column_of(c, matches.columns), group_by, [])
            for ref, part in zip(refs, keyed, strict=True):
                where = partition_of(part, tuple(group_by), n)
                for i in range(n):
                    pieces[i].setdefault(number, {})[ref.reference] = frames[ref.reference].filter(where == i)
    except Exception:  # noqa: BLE001 - the driver's own evaluation reports it
        return None
    return pieces


def run_correlations(index: int, rules_key: tuple, columns: list[str], piece: dict) -> CorrelationResult:
    """One correlation partition: each correlation over its piece of the matches (the rule set loaded here, as a
    hunt task loads it: the same correlations in the same order as the driver's)."""
    from soc.distributed.task import load_rules
    from soc.sigma import correlation as sc

    parsed = sc.parsed(load_rules(rules_key).correlations)
    return CorrelationResult(index, {number: sc.correlate(parsed[number].rule, frames, sc._column_of(parsed[number],
                                                                                                     columns))
                                     for number, frames in piece.items()})


def combine_correlations(correlations: list, results: list[CorrelationResult]) -> pl.DataFrame:
    """The partitions' correlation alerts as ``soc.sigma.correlation.evaluate`` gives them in one process: per
    correlation in order, its groups in the order of their values (the engine's dense ids), each one's episodes in
    time order."""
    import numpy as np

    from soc.sigma import correlation as sc

    results = sorted(results, key=lambda r: r.index)
    frames = []
    for number, c in enumerate(sc.parsed(correlations)):
        got = [r.found[number] for r in results if number in r.found and r.found[number].height]
        if not got:
            continue
        out = pl.concat(got, how="diagonal_relaxed")
        keys = sc._dense(out, [str(g) for g in c.rule.group_by])
        out = out[np.lexsort((out.get_column("@timestamp").dt.epoch("us").to_numpy(), keys))]
        frames.append(sc._as_alerts(out, c.rule))
    return pl.concat(frames, how="diagonal_relaxed") if frames else sc._as_alerts(sc._empty([], {}), None)
