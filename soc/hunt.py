"""The whole hunt as one call: sources -> parse -> Sigma | detectors -> alerts -> sinks, a report back.

``run_hunt(HuntRequest(...))`` is what ``soc hunt`` does, without printing: it writes the dead letters, the
Sigma matches (DATA_DIR/sigma_matches/), the detector hits (DATA_DIR/detector_hits/) and the alerts
(DATA_DIR/alerts/, and Elasticsearch when asked) before it returns, so a scheduled job may move its checkpoint
as soon as it has the report. The CLI only turns options into a request and prints the report; jobs/ and
distributed/ call this and never wire the stages themselves. What a caller wants to see while it runs (progress,
warnings, each stage's end) goes through an ``Observer``; what it wants to run its own way plugs in through
``make_hunter``/``make_runner`` (state kept across runs) or ``executor`` (the reading side, e.g. on many
processes). A usage error (an unknown input or format, a bad rule path, detector spec or setting, a bad
configuration, inventory or policy) is a ``HuntError``.

This module imports nothing heavy at its top: ``soc --help`` and a one-line hunt pay for what they use only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from soc.config import Config
    from soc.detect.runner import DetectorFailure, DetectorRunner
    from soc.detect.specs import DetectorSpec
    from soc.distributed.local import Pool
    from soc.pipeline import Options, Sink, SourceStats
    from soc.sigma.hunt import Hunter, RuleFailure
    from soc.sigma.loader import RuleSet
    from soc.sinks.matches import MatchFile
    from soc.sources import Source

USAGE = 2  # exit code: inputs that could not be read (or none soc knows); the CLI's usage errors too
ES_FAILED = 3  # exit code: Elasticsearch could not take the alerts (they are in the embedded store)

Progress = Callable[[int], None]  # called with the bytes read as they are read


class HuntError(ValueError):
    """A hunt that cannot run as asked: an unknown input or format, a rules path that names nothing, a bad
    detector spec or setting, a configuration, inventory or policy soc cannot use (the CLI: exit code 2)."""


class Observer:
    """What a caller sees of a hunt while it runs; the defaults see nothing (everything is in the report too).

    ``message`` gets each warning or error as it arises, in order (``level`` is "warning" or "error"; the text
    has its control characters escaped). ``stage`` is called at the end of each stage ("read", "sigma",
    "detectors", "alerts") with the report as filled so far: the CLI prints each table as soon as it can.
    ``progress`` gets the inputs before they are read and gives a context in which reading happens, whose value
    (if not None) is called with the bytes read."""

    def message(self, level: str, text: str) -> None:
        pass

    def stage(self, name: str, report: HuntReport) -> None:
        pass

    def progress(self, sources: list[Source]) -> AbstractContextManager[Progress | None]:
        return nullcontext()


@dataclass
class Stages:
    """The stages of one hunt, wired: what an ``executor`` gets to read the inputs its own way. ``sink`` feeds
    every frame to the detectors (``runner``, if any) and the Sigma ``hunter`` and writes the dead letters; the
    hunter hands its matches to ``matches`` as found."""

    options: Options
    sink: Sink
    hunter: Hunter
    runner: DetectorRunner | None
    matches: MatchFile
    data_dir: str


# reads ``sources`` into ``stages.sink`` (the default: ``soc.pipeline.run``); the counts per input, in order
Executor = Callable[[list["Source"], Stages, "Progress | None"], list["SourceStats"]]


@dataclass
class HuntRequest:
    """One hunt. ``inputs`` are paths, folders, globs, ``-`` (``soc.sources.discover``) or ready ``Source``
    objects (a job's, starting at its checkpoint). Empty ``rules``/``detectors``: soc's own. ``settings`` are
    ``DETECTOR.PARAM=VALUE`` overrides. ``config`` is a ``Config`` or the path of its TOML file (None:
    ``SOC_CONFIG``, else ./soc.toml if present); ``data_dir`` (None: the configuration's) is where everything
    is written. ``to_es``: index the alerts (None: when a URL is configured). ``strict``: an input in a format
    soc does not know is an error, not skipped.

    Seams: ``make_hunter(ruleset, out)`` and ``make_runner(specs)`` build the Sigma hunter (its matches go to
    ``out``) and the detector runner (e.g. with state from an earlier run); ``executor`` reads the inputs
    into the wired stages (``Stages``)."""

    inputs: Sequence[str | os.PathLike | Source] | str | os.PathLike
    data_dir: str | None = None
    rules: Sequence[str] = ()
    placeholders: str | None = None
    detectors: Sequence[str] = ()
    settings: Sequence[str] = ()
    no_detectors: bool = False
    options: Options | None = None
    config: Config | str | None = None
    to_es: bool | None = None
    strict: bool = False
    observer: Observer | None = None
    make_hunter: Callable[[RuleSet, Callable[[pl.DataFrame], None]], Hunter] | None = None
    make_runner: Callable[[list[DetectorSpec]], DetectorRunner] | None = None
    executor: Executor | None = None
    workers: int | None = 1  # processes to hunt in, this one included (None: per free CPU; ``soc.distributed.local``)
    ray: str | None = None  # hunt on this Ray cluster ("auto", "ray://host:10001"; ``soc.distributed.ray_executor``)
    keep_frozen: bool = False  # the process ends with the hunt (the CLI): see ``run_hunt``
    deliver: bool = True  # store (and index) the hunt's alerts; a job builds its own from its state: False

    def __post_init__(self):
        # one path or setting given alone (a string, a Path, a Source) is a list of one, not of its characters
        from soc.sources import Source

        for name in ("inputs", "rules", "detectors", "settings"):
            value = getattr(self, name)
            setattr(self, name, [value] if isinstance(value, str | os.PathLike | Source) else list(value))


@dataclass
class SigmaSummary:
    """The Sigma side of a hunt: rules and correlation rules loaded, events hunted, the matches (a file read
    back on demand: ``counts``, ``frame``, ``batches``) and the rules that failed on a frame."""

    rules: int
    correlations: int
    events: int
    matches: MatchFile
    failures: list[RuleFailure]

    @property
    def count(self) -> int:
        return self.matches.height

    def counts(self, *keys: str) -> pl.DataFrame:
        """Matches per value of ``keys`` (default: rule id, name, level), with a ``len`` column."""
        return self.matches.counts(*(keys or ("rule.id", "rule.name", "rule.level")))

    def by_rule(self) -> list[dict]:
        """Matches per rule, most first (``soc hunt --json``'s ``sigma.by_rule``)."""
        if not self.matches.height:
            return []
        counts = self.counts().sort(["len", "rule.id"], descending=[True, False])
        return [{"id": r["rule.id"], "name": r["rule.name"], "level": r["rule.level"], "matches": r["len"]}
                for r in counts.iter_rows(named=True)]

    def frame(self) -> pl.DataFrame:
        """Every match in one frame (read back from the file: for hunts whose matches fit in memory)."""
        import polars as pl

        from soc.sigma.hunt import empty_alerts

        parts = list(self.matches.batches())
        return pl.concat(parts, how="diagonal_relaxed") if parts else empty_alerts()

    def as_dict(self) -> dict:
        return {"rules": self.rules, "correlations": self.correlations, "events": self.events,
                "matches": self.matches.height, "by_rule": self.by_rule()}


@dataclass
class DetectorSummary:
    """The detectors' side: specs run, events fed, every hit (one frame) and the detectors that failed."""

    specs: int
    events: int
    hits: pl.DataFrame
    failures: list[DetectorFailure]

    def as_dict(self) -> dict:
        keep = [c for c in self.hits.columns if not c.startswith("_")]
        return {"detectors": self.specs, "events": self.events, "hits": self.hits.height,
                "failures": [f.reason for f in self.failures], "found": self.hits.select(keep).to_dicts()}


@dataclass
class DeliverySummary:
    """What became of the alerts: built, new in the store, the Elasticsearch report (``IndexReport``, when
    indexed) and why Elasticsearch could not take them (they are in the store all the same)."""

    alerts: int
    stored_new: int
    data_dir: str
    elasticsearch: Any = None
    error: str | None = None

    def as_dict(self) -> dict:
        out: dict = {"alerts": self.alerts, "stored_new": self.stored_new, "data_dir": self.data_dir}
        if self.elasticsearch is not None:
            out["elasticsearch"] = self.elasticsearch.as_dict()
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class HuntReport:
    """What a hunt did. ``stats``: per input (``read == parsed + dead``). ``delivery`` is None when there was
    nothing to deliver. ``warnings``/``errors``: every message, in order (also given to the observer as they
    arose). ``exit_code``: 0, 2 (an input could not be read, or none was in a known format) or 3
    (Elasticsearch refused the alerts). ``hunter`` and ``runner`` are the objects that ran (their state, e.g.
    to keep for the next run); ``seconds``: per stage."""

    data_dir: str
    config: Config
    stats: list[SourceStats] = field(default_factory=list)
    sigma: SigmaSummary | None = None
    detectors: DetectorSummary | None = None
    delivery: DeliverySummary | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    exit_code: int = 0
    hunter: Hunter | None = None
    runner: DetectorRunner | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """``soc hunt --json``: the inputs, the Sigma matches per rule, every detector hit with its evidence,
        and what became of the alerts."""
        return {
            "files": [st.as_dict() for st in self.stats],
            "sigma": self.sigma.as_dict() if self.sigma else None,
            "detectors": self.detectors.as_dict() if self.detectors else None,
            "alerts": self.delivery.as_dict() if self.delivery else {"alerts": 0, "stored_new": 0},
        }


class _Messages:
    """The report's warnings and errors, each also handed to the observer as it arises."""

    def __init__(self, report: HuntReport, observer: Observer):
        self.report, self.observer = report, observer

    def __call__(self, level: str, text: str) -> None:
        (self.report.errors if level == "error" else self.report.warnings).append(text)
        self.observer.message(level, text)


def run_hunt(request: HuntRequest) -> HuntReport:
    """Run one hunt end to end (see the module's docstring); raises ``HuntError`` for a usage error.

    The hunt keeps its rules and state out of the cycle collector's full passes (``gc.freeze``, see
    ``soc.sigma.hunt.hunter_for``); they are handed back to it on return, unless the caller had frozen objects
    of its own: a process that hunts again and again (a test, a scheduler) does not keep every run's frozen.
    A process that ends with the hunt sets ``keep_frozen``: the full collection at the interpreter's exit would
    walk them all (~70 ms CPU of a one-line hunt with the SigmaHQ windows rules)."""
    import gc

    frozen = request.keep_frozen or gc.get_freeze_count()
    try:
        return _hunt(request)
    finally:
        if not frozen:
            gc.unfreeze()


def _hunt(request: HuntRequest) -> HuntReport:
    from soc.private import prepare

    observer = request.observer or Observer()
    pool, found = _workers(request)  # first: the workers start up while this process loads its rules
    cfg = _config(request)
    data_dir = str(cfg.data_dir)
    report = HuntReport(data_dir, cfg)
    say = _Messages(report, observer)
    warning = prepare(data_dir)
    if warning:
        say("warning", _printable(warning))
    clock = time.perf_counter()
    stages = _wire(request, data_dir, say)
    report.hunter, report.runner = stages.hunter, stages.runner
    sources = found if found is not None else discover_inputs(request.inputs)
    executor = request.executor or (_run_pipeline if pool is None else
                                    pool.executor(request.rules, request.placeholders, _run_pipeline))
    if request.ray and request.executor is None:  # the tasks on a Ray cluster (imports Ray only here)
        from soc.distributed import ray_executor

        executor = ray_executor.executor(request.ray, request.rules, request.placeholders)
    reading = read_inputs(sources, stages.sink, stages.options, request.strict, observer,
                          lambda s, _sink, _opts, on_bytes: executor(s, stages, on_bytes))
    report.stats = reading.stats
    report.seconds["read"] = time.perf_counter() - clock
    from soc.source_days import record  # records per source per day, for the report's source health

    record(data_dir, reading.stats, report.seconds["read"])
    observer.stage("read", report)
    for level, text in reading.messages:
        say(level, text)

    clock = time.perf_counter()
    report.sigma = _finish_sigma(stages, say)
    report.seconds["sigma"] = time.perf_counter() - clock
    observer.stage("sigma", report)
    if stages.runner is not None:
        clock = time.perf_counter()
        report.detectors = _finish_detectors(stages.runner, data_dir, say)
        report.seconds["detectors"] = time.perf_counter() - clock
        observer.stage("detectors", report)

    clock = time.perf_counter()
    report.delivery = _deliver(report, cfg, request.to_es) if request.deliver else None
    report.seconds["alerts"] = time.perf_counter() - clock
    observer.stage("alerts", report)
    delivered = 0
    if report.delivery is not None and report.delivery.error:
        delivered = ES_FAILED
        from soc.i18n import _

        say("error", _("{error} (the alerts are kept in {path})").format(
            error=_printable(report.delivery.error), path=f"{data_dir}/alerts/"))
    report.exit_code = reading.exit_code or delivered
    return report


def _config(request: HuntRequest) -> Config:
    """The request's configuration (loaded if a path), with its ``data_dir``; the caller's ``Config`` is not
    changed."""
    import dataclasses

    from soc.config import Config, ConfigError, load_config

    cfg = request.config
    if not isinstance(cfg, Config):
        try:
            cfg = load_config(cfg)
        except ConfigError as exc:
            raise HuntError(str(exc)) from None
    if request.data_dir:
        cfg = dataclasses.replace(cfg, data_dir=str(request.data_dir))
    return cfg


def _wire(request: HuntRequest, data_dir: str, say: Callable[[str, str], None]) -> Stages:
    """The detectors, the rules, the hunter and the sink they are fed by, as ``soc hunt`` wires them."""
    from soc import pipeline
    from soc.sigma.hunt import HuntSink, hunter_for
    from soc.sinks.matches import MatchFile
    from soc.sinks.parquet import ParquetSink

    runner = None if request.no_detectors else load_detectors(request.detectors, request.settings,
                                                              request.make_runner)
    matches = MatchFile(data_dir)  # the matches go to DATA_DIR/sigma_matches/ as they are found
    ruleset = load_rules(request.rules, request.placeholders, say=say)
    hunter = (request.make_hunter or (lambda rules, out: hunter_for(rules, out=out)))(ruleset, matches.write)
    sink = HuntSink(hunter, ParquetSink(data_dir, frames=False))
    if runner is not None:
        from soc.detect.runner import DetectSink

        sink = DetectSink(runner, sink)
    return Stages(request.options or pipeline.Options(), sink, hunter, runner, matches, data_dir)


def _workers(request: HuntRequest) -> tuple[Pool | None, list[Source] | None]:
    """Worker processes for the hunt (``soc.distributed.local.start``: none for ``workers`` 1, small inputs, or
    an executor of the caller's), started before anything heavy is imported here (None: this process alone), and
    the inputs found to decide it (None: not looked for, or an error the hunt reports when it looks again)."""
    if request.workers == 1 or request.executor is not None or request.ray:
        return None, None
    from soc.distributed import local

    try:
        sources = discover_inputs(request.inputs)
    except HuntError:
        return None, None
    return local.start(sources, request.rules, request.placeholders, request.workers, request.options), sources


def _run_pipeline(sources: list[Source], stages: Stages, on_bytes: Progress | None) -> list[SourceStats]:
    from soc import pipeline

    return pipeline.run(sources, stages.sink, stages.options, on_bytes)


def load_detectors(paths: Sequence[str] = (), settings: Sequence[str] = (),
                   make_runner: Callable[[list[DetectorSpec]], DetectorRunner] | None = None) -> DetectorRunner:
    """The detector runner for these specs (default: soc's detectors/) and ``DETECTOR.PARAM=VALUE`` settings."""
    from soc.detect.runner import DetectorRunner
    from soc.detect.specs import SpecError, apply_settings, default_specs, load_specs

    try:
        specs = apply_settings(load_specs(list(paths)) if paths else default_specs(), list(settings))
    except SpecError as exc:
        raise HuntError(str(exc)) from None
    return (make_runner or DetectorRunner)(specs)


def load_rules(paths: Sequence[str] = (), placeholders: str | None = None, use_cache: bool = True,
               say: Callable[[str, str], None] | None = None) -> RuleSet:
    """The rule set of these paths (default: soc's rules/ without its pipeline/); the rules that did not load
    are one warning (``say``)."""
    from soc.sigma.loader import RuleSourceError, default_rule_paths, load, read_placeholders

    try:
        values = read_placeholders(placeholders)
        ruleset = load(list(paths) or default_rule_paths(), values, use_cache=use_cache)
    except RuleSourceError as exc:
        raise HuntError(str(exc)) from None
    if ruleset.errors and say is not None:
        from soc.i18n import _, number

        say("warning", _("{n} Sigma rules did not load (see `soc rules check`)").format(
            n=number(len(ruleset.errors))))
    return ruleset


def discover_inputs(inputs: Sequence[str | Source]) -> list[Source]:
    """The sources of ``inputs``: ready ``Source`` objects as they are, the rest found (in order)."""
    from soc.sources import InputError, Source, discover

    out: list[Source] = []
    names: list[str] = []
    try:
        for item in inputs:
            if isinstance(item, Source):
                out += discover(names) if names else []
                names = []
                out.append(item)
            else:
                names.append(str(item))
        out += discover(names) if names else []
    except InputError as exc:
        raise HuntError(str(exc)) from None
    return out


@dataclass
class Reading:
    """The counts per input, what to say about the inputs ((level, text), in order) and the exit code."""

    stats: list[SourceStats]
    messages: list[tuple[str, str]]
    exit_code: int


def read_inputs(sources: list[Source], sink: Sink, options: Options | None = None, strict: bool = False,
                observer: Observer | None = None, run: Callable | None = None) -> Reading:
    """Parse ``sources`` into ``sink`` (``soc parse``, the reading side of a hunt).

    An input whose format is not recognised is skipped with a warning (a README beside the logs is no reason
    to fail a hunt whose logs were all read); with ``strict`` it is an error, exit code 2. When every input
    was skipped nothing was hunted at all: exit code 2 too, so a script never takes that for a clean run."""
    from soc import pipeline
    from soc.i18n import _
    from soc.runtime import setup_kept
    from soc.sources.sniff import reason_text

    observer = observer or Observer()
    run = run or pipeline.run
    options = options or pipeline.Options()
    try:
        with setup_kept(), observer.progress(sources) as on_bytes:
            stats = run(sources, sink, options, on_bytes)
    except ValueError as exc:
        raise HuntError(str(exc)) from None
    messages: list[tuple[str, str]] = []
    failed = 0
    for st in stats:
        if st.error or (strict and st.skipped):
            failed += 1
            messages.append(("error", f"{_printable(st.path)}: {_printable(st.error or reason_text(st.skipped))}"))
        elif st.skipped:
            messages.append(("warning", _("{path}: skipped: {reason}").format(
                path=_printable(st.path), reason=_printable(reason_text(st.skipped)))))
    if stats and all(st.skipped for st in stats):
        messages.append(("error", _("no input is in a format soc knows: nothing was read (name one with --format)")))
        failed += 1
    return Reading(stats, messages, USAGE if failed else 0)


def _finish_sigma(stages: Stages, say: Callable[[str, str], None]) -> SigmaSummary:
    """Evaluate what still waits, finish the matches file with the correlation alerts."""
    hunter = stages.hunter
    hunter.finish()
    matches = stages.matches.close(hunter.correlate() if hunter.ruleset.correlations else None)
    for failure in hunter.failures:
        from soc.i18n import _

        say("error", _("rule {rule} failed on {frame}: {reason}").format(
            rule=_printable(failure.rule_id), frame=failure.key[1], reason=_printable(failure.reason)))
    return SigmaSummary(len(hunter.ruleset.rules), len(hunter.ruleset.correlations), hunter.events, matches,
                        hunter.failures)


def _finish_detectors(runner: DetectorRunner, data_dir: str, say: Callable[[str, str], None]) -> DetectorSummary:
    """Run the detectors once over the whole hunt; their hits go to DATA_DIR/detector_hits/."""
    hits = runner.hits()
    for failure in runner.failures:
        from soc.i18n import _

        say("error", _("detector {detector} failed: {reason}").format(
            detector=_printable(failure.detector), reason=_printable(failure.reason)))
    keep(data_dir, "detector_hits", "detectors", hits)
    return DetectorSummary(len(runner.specs), runner.events, hits, runner.failures)


def _deliver(report: HuntReport, cfg: Config, to_es: bool | None) -> DeliverySummary | None:
    """The hunt's Sigma matches and detector hits as alerts in the store (and Elasticsearch), built a share
    of them at a time from the matches file read back in batches; None when there is nothing to deliver."""
    hits = [h for h in (report.sigma.matches if report.sigma else None,
                        report.detectors.hits if report.detectors else None) if h is not None and h.height]
    if not hits:
        return None
    from soc.alerts import InventoryError, PolicyError
    from soc.alerts.build import HIT_COLUMNS
    from soc.sinks.delivery import deliver

    def batches():  # read once per share of the alerts (``soc.sinks.delivery.deliver``)
        return (b for h in hits for b in (h.batches(columns=HIT_COLUMNS) if hasattr(h, "batches") else [h]))

    try:
        result = deliver(batches, cfg, to_es, sum(h.height for h in hits))
    except (InventoryError, PolicyError) as exc:
        raise HuntError(str(exc)) from None
    return DeliverySummary(result.count, result.stored, cfg.data_dir, result.index, result.error)


def keep(data_dir: str, family: str, dataset: str, frame: pl.DataFrame) -> None:
    """A hunt's matches or hits as one Parquet file of DATA_DIR/<family>/<dataset>/ (nothing when empty), named
    uniquely per run (time to the microsecond, process id, random): two hunts never overwrite each other."""
    from soc.sinks.matches import run_name
    from soc.sinks.parquet import ParquetSink

    if frame.height:
        sink = ParquetSink(data_dir)
        sink.write(run_name(), family, dataset, frame)
        sink.close()


def _printable(text: str) -> str:
    from soc.sinks.terminal import printable

    return printable(text)
