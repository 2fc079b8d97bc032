"""Detector and correlation state across the runs of a job, so that N runs over a log that grows in N steps
give the alerts (ids, counts, windows) of one hunt over the whole log.

A run calls, in order::

    state = JobState.load(folder)                  # empty the first time
    hunt with make_runner=state.make_runner, make_hunter=state.make_hunter   (soc.hunt.HuntRequest)
    changes = state.alerts(hits, policy, inventory, window)   # the run's detector hits and Sigma matches
    AlertStore(data_dir).upsert(changes.alerts, changes.retracted, changes.late)   # and Elasticsearch
    state.save(folder)                             # only after the alerts are stored: temp + rename

**What is carried** (never pickle: Parquet frames and one JSON file; see ``save``). Each detector and each
correlation rule keeps the narrow rows it prepared that can still change a later hit, pruned by time:

- windowed detectors (count, distinct, sum, entropy) and every correlation type: the rows of the last window,
  and for a key whose episode is still open, its rows from that episode's first row on
  (``soc.detect.runner.carried_rows``, ``soc.sigma.correlation.Carry``). A later row's window reaches no further
  back, and an open episode is reported again whole. Detector statistics only grow with rows, so a carried row
  whose own window was cut short holds exactly where one hunt says; correlations (lt, eq, averages) are not
  monotone, so each carried event keeps its condition and value as judged when it was new.
- first_seen: the first row of each (key, value) pair: all the kernel remembers (the very first row, which
  starts the baseline, is among them).
- beacon, rise/drop and the learned-DNS detectors (dga, dns_tunnel): every row of the last ``history`` (a day
  unless a spec says ``params.history``), as their statistics span the whole hunt; rise/drop rows are already
  counts per key and bucket, DNS rows only the suspicious names, plus the (server, client) pairs the resolvers
  are learned from. A drop's "now" (the latest event) is kept too.

The next run prepends these rows to its own (they come first in feed order, as older events did in one
hunt), runs the same kernels and so finds the same episodes, assuming events arrive in time order. Beyond
``history`` (beacon, rise/drop, DNS) and for events older than what was carried (a source that lags by more
than a window), a job differs from one hunt: that is the bound on its state. A run counts such events
(``late``, per detector; ``size()["late_rows"]``) so that its record can say so.

**Alerts still open.** One hunt reports an episode still going on at the end of a run with a larger count and
a wider window, and an alert groups all hits of a rule and entity in one ``window`` (1 h): the next run's
Sigma matches add to it too. Holding such alerts until they close would delay an alert the SOC wants as soon
as a threshold is crossed, so they are emitted at once and *replaced* as they grow: an alert's id hashes its
rule, entity and window start (``soc.alerts.build``), never its open end, so the fuller version has the same
id, and the store keeps the last version of an id (``AlertStore.upsert``; Elasticsearch indexes over it).

To rebuild an alert exactly, the state keeps, per alert key (rule, entity, window), the *partial aggregate* of
the hits that can no longer change (``soc.alerts.build.aggregate``/``merge``: merging partials gives the
alert of all their hits, the same code a hunt's batches go through), and the *live* hits that a detector or
correlation may still report again. Each run: a detector's or correlation's new hits replace its live hits
of the same episode (same rule, key and trigger time; for beacon, rise/drop and the DNS detectors, which
recompute everything they carry, all its live hits); Sigma matches and first-seen hits are final at once and
go straight into the partials; the alerts of every key that changed are rebuilt from partial + live, and a key
left with no hit at all is *retracted* (a beacon whose rhythm broke). Live hits older than what their source
still carries become partials; partials older than ``keep`` behind the newest hit are dropped (bounded) unless
their key still has live hits (an episode still open), and an alert of a key dropped so that changes later
(an event later than ``keep``) is stored only if new (``late``: it never overwrites a fuller one, nor is
retracted).

Certain at once and so reported at once: window thresholds, first-seen, rises (a bucket's count only grows).
A drop in the bucket still open is not reported until that bucket has closed (more events may fill it): a
run with ``final = True`` (the last one, or a hunt) reports it as one hunt would. So N runs, the last final,
equal one hunt; the runs before report everything one hunt over their prefix reports, except those drops.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from soc.private import make_dir

VERSION = 1
POINTER = "STATE"  # names the folder of the committed state (``save``)
KEEP = "1d"  # partial aggregates kept behind the newest hit (``JobState.keep``)
_SRC, _HK = "_src", "_hk"
_NEVER = 2**62  # a floor that folds every live hit (a source that carries nothing)
_REPLACE_ALL = ("beacon", "rise", "drop")  # recompute every hit of what they carry


def _us(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000) if value.tzinfo else int(
            value.replace(tzinfo=UTC).timestamp() * 1_000_000)
    return int(value)


def _time(us: int | None) -> datetime | None:
    return None if us is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@dataclass
class AlertChanges:
    """What a run changes in the alert store: ``alerts`` to write over their ids (new or fuller versions),
    ``retracted`` ids (their hits are gone), ``late`` alerts to store only if their id is new."""

    alerts: pl.DataFrame
    retracted: list[str]
    late: pl.DataFrame


@dataclass
class JobState:
    """The state of one job between its runs (see the module docstring)."""

    detectors: dict[str, pl.DataFrame] = field(default_factory=dict)  # carried rows per detector id
    last: dict[str, int] = field(default_factory=dict)  # a drop detector's latest event (us)
    pairs: dict[str, pl.DataFrame] = field(default_factory=dict)  # learned-DNS (server, client) pairs
    correlations: dict = field(default_factory=dict)  # carry_key -> soc.sigma.correlation.Carry
    partials: pl.DataFrame | None = None  # aggregated hits per alert key that can no longer change
    live: pl.DataFrame | None = None  # hits their source may report again (with _src, _hk)
    floors: dict[str, int] = field(default_factory=dict)  # source -> earliest hit time (us) it may report again
    made: dict[str, str] = field(default_factory=dict)  # source -> what its carried rows were made by (a digest)
    window: str | None = None  # the alert window the partials were aggregated with
    newest: int | None = None  # the newest hit time seen (us)
    kept_from: int | None = None  # partials older than this were dropped (us, a window start)
    final: bool = False  # this run is the last (reports drops whose bucket is still open)
    keep: str = KEEP
    late: dict[str, int] = field(default_factory=dict)  # this run: per detector, rows older than it carried
    _runner: object = None
    _specs: dict = field(default_factory=dict)
    _correlated: dict = field(default_factory=dict)  # rule id -> (carry_key, group-by columns)
    _corr_hits: list = field(default_factory=list)

    # -- the detectors ----------------------------------------------------------------------------------------------

    def make_runner(self, specs: list):
        """A ``DetectorRunner`` for ``specs`` seeded with what the last run carried (``HuntRequest.make_runner``)."""
        from soc.detect.runner import DetectorRunner

        runner = DetectorRunner(specs, carry={}, final=self.final)
        for spec in specs:
            if self.made.get(spec.id) != _spec_made(spec):  # new, or its spec changed: what it carried is not its
                for kept in (self.detectors, self.last, self.pairs):
                    kept.pop(spec.id, None)
                self.made[spec.id] = _spec_made(spec)
            runner.seed(spec.id, self.detectors.get(spec.id), _time(self.last.get(spec.id)), self.pairs.get(spec.id))
        self._runner, self._specs = runner, {s.id: s for s in specs}
        return runner

    def _take_runner(self) -> set[str]:
        """What the runner carries to the next run (after its ``hits``); the ids of the detectors that ran."""
        runner, self._runner = self._runner, None
        if runner is None:
            return set()
        from soc.detect.specs import duration_us

        ran = set(runner.carry)
        for spec in runner.specs:
            if spec.id not in ran:  # it had no rows at all (or failed): what it carried stays
                continue
            rows = runner.carry[spec.id]
            self.detectors.pop(spec.id, None)
            self.floors[spec.id] = _NEVER
            if rows.height:
                self.detectors[spec.id] = rows
                low = _us(rows.get_column("@timestamp").min())
                if spec.kernel in ("rise", "drop"):  # its hits start at a bucket's start
                    bucket = duration_us(spec.param("bucket", spec.window))
                    low = low // bucket * bucket
                self.floors[spec.id] = low
        for spec_id, hi in runner._last.items():
            self.last[spec_id] = _us(hi)
        self.late = {k: n for k, n in runner.late.items() if n}
        for spec_id, scorer in runner._scorers.items():
            if scorer._pairs:
                self.pairs[spec_id] = pl.concat(scorer._pairs).unique()
        return ran

    # -- the correlations -------------------------------------------------------------------------------------------

    def make_hunter(self, ruleset, out):
        """The Sigma hunter of ``soc.sigma.hunt.hunter_for`` whose correlations go on from the last run
        (``HuntRequest.make_hunter``)."""
        from soc.sigma.hunt import hunter_for

        hunter = hunter_for(ruleset, out=out)
        hunter.correlate = lambda: self.correlate(ruleset.correlations, hunter.matches())
        return hunter

    def correlate(self, correlations: list, matches: pl.DataFrame) -> pl.DataFrame:
        """The correlation alerts of this run: its matches after the events the last run carried."""
        from soc.sigma import correlation

        if not correlations:
            from soc.sigma.hunt import empty_alerts

            return empty_alerts()
        correlations = correlation.parsed(correlations)
        for c in correlations:  # new, or its rule changed: what it carried is not its
            key = correlation.carry_key(c)
            if self.made.get(key) != _rule_made(c.rule):
                self.correlations.pop(key, None)
                self.made[key] = _rule_made(c.rule)
        out = correlation.evaluate(correlations, matches, self.correlations)
        for c in correlations:
            key = correlation.carry_key(c)
            if c.rule.id:
                self._correlated[str(c.rule.id)] = (key, [str(g) for g in c.rule.group_by or []])
            rows = self.correlations[key].rows if key in self.correlations else None
            self.floors[key] = _NEVER if rows is None or not rows.height else int(rows.get_column("__t").min())
        self._corr_hits.append(out)
        return out.drop(correlation.FRESH, strict=False)

    # -- the alerts -------------------------------------------------------------------------------------------------

    def _source(self, rule_id: str) -> tuple[str, str, list[str]] | None:
        """(source, mode, key columns) of a rule's hits: mode "key" (replace the live hit of the same episode),
        "all" (replace every live hit of the source); None: final at once (Sigma matches, first-seen)."""
        spec = self._specs.get(rule_id)
        if spec is not None:
            if spec.kernel == "first_seen":
                return None
            from soc.detect.runner import _learns

            return spec.id, "all" if spec.kernel in _REPLACE_ALL or _learns(spec) else "key", list(spec.key)
        if rule_id in self._correlated:
            key, group_by = self._correlated[rule_id]
            return key, "key", ["window.start", *group_by]
        return None

    def alerts(self, hits: Iterable[pl.DataFrame], policy=None, inventory=None, window: str | None = None
               ) -> AlertChanges:
        """The alert changes of a run from its hits (detector hits and Sigma matches; the correlation alerts
        are taken from ``correlate``): see the module docstring."""
        from soc.alerts.build import DEFAULT_WINDOW, HIT_COLUMNS, aggregate, alerts_of_groups, group_keys, merge
        from soc.alerts.schema import empty_alerts

        window = window or DEFAULT_WINDOW
        if self.window not in (None, window):  # aggregated with another window: they no longer fit
            self.partials, self.kept_from = None, None
        self.window = window
        ran = self._take_runner()
        corr = [f for f in self._corr_hits if f.height]
        self._corr_hits = []
        given = [h for h in hits if h is not None and h.height]
        if corr:  # taken from ``correlate`` (whole columns: the group-by ones too), not from the matches file
            ids = list(self._correlated)
            given = [h.filter(~pl.col("rule.id").cast(pl.String).is_in(ids)) for h in given]
        frames = [h for h in [*given, *corr] if h.height]

        final_hits, live_new, removed = [], [], []
        live = self.live
        by_source: dict[str, list[pl.DataFrame]] = {}
        for frame in frames:
            for (rule_id,), part in frame.partition_by("rule.id", as_dict=True).items():
                src = self._source(str(rule_id))
                if src is None:
                    final_hits.append(part)
                    continue
                name, _, keys = src
                by_source.setdefault(name, []).append(_keyed(part, name, keys))
        modes = {s[0]: s[1] for s in map(self._source, [*self._specs, *self._correlated]) if s is not None}
        for name, mode in modes.items():
            new = pl.concat(by_source[name], how="diagonal_relaxed") if name in by_source else None
            if live is None or not live.height:
                pass
            elif mode == "all" and (name in ran or new is not None):
                removed.append(live.filter(pl.col(_SRC) == name))
                live = live.filter(pl.col(_SRC) != name)
            elif new is not None:
                gone = (pl.col(_SRC) == name) & pl.col(_HK).is_in(new.get_column(_HK).implode())
                removed.append(live.filter(gone))
                live = live.filter(~gone)
            if new is not None:
                live_new.append(new)
        if live is not None:  # a source no longer configured reports nothing again
            for name in set(live.get_column(_SRC).unique().to_list()) - set(modes):
                self.floors[name] = _NEVER
        cols = list(dict.fromkeys([*HIT_COLUMNS, _SRC, _HK]))
        live = _stack([live, *[f.select([c for c in cols if c in f.columns]) for f in live_new]])

        def agg(frames: list[pl.DataFrame | None]) -> pl.DataFrame | None:
            frames = [f for f in frames if f is not None and f.height]
            if not frames:
                return None
            groups = aggregate([f.drop(_SRC, _HK, strict=False) for f in frames], window)
            return merge(pl.concat(groups, how="diagonal_relaxed")) if groups else None

        old = pl.col("_bucket") < _time(self.kept_from) if self.kept_from is not None else pl.lit(False)
        # keys of before ``kept_from`` whose partial the state no longer holds: their stored alert may hold more
        # than the state knows, so it is never rebuilt over (stored only if new)
        pruned: set[str] = set()
        held = self._keys(agg) if self.kept_from is not None else set()

        def ids(groups: pl.DataFrame | None) -> set[str]:
            if groups is None:
                return set()
            keys = group_keys(groups)
            pruned.update(set(keys.filter(old).get_column("event.id").to_list()) - held)
            return set(keys.get_column("event.id").to_list())

        final_groups = agg(final_hits)
        changed = ids(final_groups) | ids(agg(live_new)) | ids(agg(removed))
        partials = _stack([self.partials, final_groups])
        if partials is not None and final_groups is not None:
            partials = merge(partials)
        # the alerts of every key that changed: its partial and its live hits
        built = None
        if changed:
            mine = [p.filter(_ids_in(p, changed)) for p in (partials,) if p is not None]
            live_groups = agg([live]) if live is not None else None
            if live_groups is not None:
                mine.append(live_groups.filter(_ids_in(live_groups, changed)))
            mine = [m for m in mine if m.height]
            built = merge(pl.concat(mine, how="diagonal_relaxed")) if mine else None
        retracted = sorted(changed - ids(built) - pruned)  # a pruned key's stored alert holds more than we know
        alerts, late = empty_alerts(), empty_alerts()
        if built is not None:
            everything = alerts_of_groups([built], policy, inventory)
            is_late = pl.col("event.id").is_in(sorted(pruned))
            alerts, late = everything.filter(~is_late), everything.filter(is_late)

        # fold the live hits no source can report again into the partials; drop partials past ``keep``
        if live is not None and live.height:
            floor = pl.col(_SRC).replace_strict(self.floors, default=_NEVER, return_dtype=pl.Int64)
            done = live.filter(pl.col("@timestamp").dt.epoch("us") < floor)
            live = live.filter(pl.col("@timestamp").dt.epoch("us") >= floor)
            folded = agg([done])
            if folded is not None:
                partials = merge(_stack([partials, folded]))
        newest = [self.newest, *[_us(f.get_column("@timestamp").max()) for f in frames]]
        self.newest = max((n for n in newest if n is not None), default=None)
        self.partials, self.live = partials, live
        self._prune(agg)
        return AlertChanges(alerts, retracted, late)

    def _keys(self, agg) -> set[str]:
        """The alert keys the state holds something of (a partial or a live hit)."""
        from soc.alerts.build import group_keys

        out = set()
        for groups in (self.partials, agg([self.live])):
            if groups is not None and groups.height:
                out.update(group_keys(groups).get_column("event.id").to_list())
        return out

    def _prune(self, agg) -> None:
        """Partials older than ``keep`` behind the newest hit are dropped, unless their key has live hits (a
        detector's episode still open): a later hit of a dropped key is late."""
        if self.partials is None or self.newest is None or not self.partials.height:
            return
        from soc.alerts.build import group_keys
        from soc.detect.specs import duration_us

        start = pl.Series([_time(self.newest - duration_us(self.keep))]).dt.truncate(self.window).item()
        live = agg([self.live])
        busy = [] if live is None else group_keys(live).get_column("event.id").to_list()
        keys = group_keys(self.partials).get_column("event.id")
        self.partials = self.partials.filter((pl.col("_bucket") >= start) | keys.is_in(busy))
        self.kept_from = max(self.kept_from or 0, _us(start))

    # -- saving and loading -----------------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the state under ``folder`` atomically: a new ``state-<id>/`` (Parquet frames and
        ``state.json``), flushed, then ``STATE`` (temp + rename) names it and the previous one is removed.
        Killed at any point, ``load`` finds the previous state or this one, whole."""
        folder = make_dir(Path(folder))
        name = f"state-{uuid.uuid4().hex[:12]}"
        tmp = make_dir(folder / f".{name}.tmp")
        files: dict[str, dict[str, str]] = {"detectors": {}, "pairs": {}, "correlations": {}}
        for kind, frames in (("detectors", self.detectors), ("pairs", self.pairs),
                             ("correlations", {k: c.rows for k, c in self.correlations.items()})):
            for i, (key, frame) in enumerate(sorted(frames.items())):
                if frame is not None and frame.height:
                    file = f"{kind}-{i}.parquet"
                    frame.write_parquet(tmp / file)
                    files[kind][key] = file
        for name_, frame in (("partials", self.partials), ("live", self.live)):
            if frame is not None and frame.height:
                frame.write_parquet(tmp / f"{name_}.parquet")
        meta = {"version": VERSION, "files": files, "last": self.last, "floors": self.floors, "window": self.window,
                "newest": self.newest, "kept_from": self.kept_from, "keep": self.keep,
                "correlated": self._correlated, "made": self.made}
        (tmp / "state.json").write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
        _fsync_tree(tmp)
        os.rename(tmp, folder / name)
        pointer = folder / f".{POINTER}.tmp"
        with open(pointer, "w", encoding="ascii") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pointer, folder / POINTER)
        _fsync_tree(folder, files=False)
        for old in folder.glob("state-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        for old in folder.glob(".state-*.tmp"):
            shutil.rmtree(old, ignore_errors=True)
        return folder / name

    @classmethod
    def load(cls, folder: str | Path) -> JobState:
        """The state ``save`` last committed under ``folder`` (an empty one if none)."""
        from soc.sigma.correlation import Carry

        folder = Path(folder)
        try:
            name = (folder / POINTER).read_text(encoding="ascii").strip()
        except OSError:
            return cls()
        root = folder / name
        meta = json.loads((root / "state.json").read_text(encoding="utf-8"))
        if meta.get("version") != VERSION:
            raise ValueError(f"{root}: job state version {meta.get('version')!r}, this soc reads {VERSION}")
        files = meta["files"]

        def read(file: str | None) -> pl.DataFrame | None:
            return pl.read_parquet(root / file) if file and (root / file).exists() else None

        return cls(detectors={k: read(f) for k, f in files["detectors"].items()},
                   last={k: int(v) for k, v in meta["last"].items()},
                   pairs={k: read(f) for k, f in files["pairs"].items()},
                   correlations={k: Carry(read(f)) for k, f in files["correlations"].items()},
                   partials=read("partials.parquet"), live=read("live.parquet"),
                   floors={k: int(v) for k, v in meta["floors"].items()}, window=meta["window"],
                   newest=meta["newest"], kept_from=meta["kept_from"], keep=meta.get("keep", KEEP),
                   made=dict(meta.get("made", {})),
                   _correlated={k: (v[0], list(v[1])) for k, v in meta.get("correlated", {}).items()})

    def size(self) -> dict[str, int]:
        """Rows kept, per kind (for a run's record and the benchmark)."""
        return {"detector_rows": sum(f.height for f in self.detectors.values()),
                "correlation_rows": sum(c.rows.height for c in self.correlations.values() if c.rows is not None),
                "partial_alerts": 0 if self.partials is None else self.partials.height,
                "live_hits": 0 if self.live is None else self.live.height,
                "late_rows": sum(self.late.values())}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _spec_made(spec) -> str:
    """What a detector's carried rows depend on: all of its spec but its words (name, level, ATT&CK ...)."""
    return _digest([spec.kernel, [(f.family, f.dataset) for f in spec.frames], spec.key, spec.window, spec.threshold,
                    spec.filter, spec.value, spec.evidence, spec.aliases, spec.params])


def _rule_made(rule) -> str:
    """What a correlation's carried events depend on: its type, rules, grouping, timespan and condition."""
    from dataclasses import asdict

    from soc.sigma.correlation import Summary

    cond = rule.condition
    return _digest([str(rule.type), [r.reference for r in rule.rules or []], rule.timespan.seconds,
                    str(getattr(cond, "op", "")), getattr(cond, "count", None), asdict(Summary.of(rule))])


def _keyed(hits: pl.DataFrame, source: str, keys: list[str]) -> pl.DataFrame:
    """Hits with their source and the key of their episode (rule, trigger time, the source's key columns)."""
    parts = [pl.col("rule.id").cast(pl.String), pl.col("@timestamp").dt.epoch("us").cast(pl.String)]
    parts += [pl.col(k).cast(pl.String).fill_null("") if k in hits.columns else pl.lit("") for k in keys]
    return hits.with_columns(pl.lit(source).alias(_SRC),
                             pl.concat_str(parts, separator="\x1f").alias(_HK))


def _ids_in(groups: pl.DataFrame, ids: set[str]) -> pl.Series:
    from soc.alerts.build import group_keys

    return group_keys(groups).get_column("event.id").is_in(sorted(ids))


def _stack(frames: list[pl.DataFrame | None]) -> pl.DataFrame | None:
    frames = [f for f in frames if f is not None and f.height]
    if not frames:
        return None
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def _fsync_tree(root: Path, files: bool = True) -> None:
    for path in [root, *(root.iterdir() if files else [])]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
