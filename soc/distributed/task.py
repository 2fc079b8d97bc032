"""One task of a hunt in several processes: a partition of the inputs parsed, hunted with the Sigma rules, and the
rows the detectors need gathered. ``run_task`` is a pure function of plain data (a plan and a partition in, a
result out), so a local worker process (``soc.distributed.local``) or a Ray task can run it as is.

A task returns what the one-process hunt would have done with its inputs, for the driver to merge in the tasks'
order: the Sigma matches before correlation (the driver correlates all of them at the end), each detector's
prepared rows with their frame numbers (``DetectorRunner.take_rows``), the dead letters and the end of each
input in the order the pipeline gave them, and each input's ``SourceStats``. Partitions are cut only where the
one-process hunt cuts its work anyway (whole inputs; the batches in which a record engine reads small files,
``RecordEngine.batches``), so a task's frames are those the one-process hunt makes, in its order: the detectors
see their rows in the same order, and the result is the same whatever the number of processes.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import polars as pl

from soc import pipeline
from soc.sources import Source


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


@dataclass
class Partition:
    """Some inputs of a hunt, read as the one-process hunt reads them (``number``: its place in the hunt)."""

    number: int
    sources: list[Source]


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
_PARSERS: list = []  # the parser specs, read once


def prime(plan: HuntPlan, ruleset) -> None:
    """This process has loaded the plan's rules already (the driver): its tasks use them."""
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
    if not _PARSERS:
        from soc.parse.spec import load_specs

        _PARSERS.append(load_specs())
    sink = _Collect(hunter, runner)
    try:
        with setup_kept():
            stats = pipeline.run(part.sources, sink, plan.options, specs=_PARSERS[0])
            matches, events, failures = hunter.take()
    except BaseException:
        _HUNTERS.pop(plan.rules_key, None)  # left half fed: not for the next task
        raise
    return TaskResult(part.number, matches, events, failures, None if runner is None else runner.take_rows(),
                      sink.log, stats)


def partitions(sources: list[Source], options: pipeline.Options, specs=None) -> list[Partition]:
    """The hunt's inputs cut in partitions, in order: each input alone, except small files that a record engine
    reads together (a folder of small ``.evtx`` files), one partition per batch it reads them in."""
    from soc.parse.engines import engine_class
    from soc.parse.spec import load_specs

    specs = specs or load_specs()
    out: list[Partition] = []
    for item in pipeline._plan(sources, specs, options):
        if isinstance(item, Source):
            out.append(Partition(len(out), [item]))
            continue
        spec, group = item
        by_path = {s.path: s for s, _ in group}
        for paths in engine_class(spec.engine).batches(spec, [(s.path, n) for s, n in group]):
            out.append(Partition(len(out), [by_path[p] for p in paths]))
    return out
