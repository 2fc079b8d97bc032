"""A job run N times over a log that grows in N steps gives exactly the alerts (ids, counts, windows) of one hunt
over the whole log (soc.jobs.state): every detector of detectors/ and every Sigma correlation type, with step
boundaries inside the windows of what is found and gaps longer than a window; the state saved and loaded
between runs, the alerts stored through ``AlertStore.upsert``.

The steps cut the parsed events by time (a log grows in time order; events of one timestamp stay together),
and each run feeds its events to the stages as a job does (``JobState.make_runner``, ``JobState.correlate``,
``JobState.alerts``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from soc import pipeline
from soc.alerts.build import HIT_COLUMNS, build_alerts
from soc.detect.runner import DetectorRunner
from soc.detect.specs import apply_settings, default_specs
from soc.jobs.state import JobState
from soc.sigma.correlation import compile_correlations, evaluate
from soc.sinks.alert_store import AlertStore
from tests.test_detectors_planted import HOURS, SETTINGS, START, benign, plants

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = pipeline.Options(year=2026)
COMPARED = ["event.id", "rule.id", "event.count", "event.start", "event.end", "@timestamp", "source.address",
            "user.name", "host.hostname", "event.risk_score", "labels.severity", "log.file.path", "log.line",
            "evidence.values"]
TS = pl.Datetime("us", "UTC")


class Collect(pipeline.Sink):
    def __init__(self):
        self.frames: list[tuple[tuple[str, str], pl.DataFrame]] = []

    def write(self, source_path, family, dataset, frame):
        self.frames.append(((family, dataset), frame))


def _hits(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    return None if frame is None else frame.select([c for c in HIT_COLUMNS if c in frame.columns])


def _between(frame: pl.DataFrame, lo, hi) -> pl.DataFrame:
    t = pl.col("@timestamp")
    inside = (t <= hi) if lo is None else (t > lo) & (t <= hi) if hi is not None else (t > lo)
    first = t.is_null() if lo is None else pl.lit(False)  # events without a time go with the first step
    return frame.filter(inside.fill_null(False) | first)


def steps(feed, matches, bounds):
    """The events and matches of each step: times in (bound i-1, bound i]."""
    edges = [None, *sorted(bounds), None]
    out = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        frames = [(key, part) for key, frame in feed if (part := _between(frame, lo, hi)).height]
        out.append((frames, None if matches is None else _between(matches, lo, hi)))
    return out


def one_hunt(feed, specs, matches=None, correlations=()) -> pl.DataFrame:
    runner = DetectorRunner(specs)
    for key, frame in feed:
        runner.feed(key, frame)
    hits = [runner.hits()]
    assert not runner.failures, runner.failures
    if matches is not None:
        hits.append(_hits(matches))
        if correlations:
            hits.append(_hits(evaluate(list(correlations), matches)))
    return build_alerts([h for h in hits if h is not None and h.height])


def job_runs(tmp: Path, parts, specs, correlations=(), keep: str | None = None) -> tuple[pl.DataFrame, JobState]:
    """One job run per step, the state saved and loaded in between; the stored alerts and the last state.
    ``keep``: how long the partial alerts are kept (``JobState.keep``)."""
    store = AlertStore(tmp / "data")
    for i, (frames, matches) in enumerate(parts):
        state = JobState.load(tmp / "state")
        state.keep = keep or state.keep
        state.final = i == len(parts) - 1
        runner = state.make_runner(specs)
        for key, frame in frames:
            runner.feed(key, frame)
        hits = [runner.hits()]
        assert not runner.failures, runner.failures
        if matches is not None:
            hits.append(_hits(matches))
            if correlations:
                state.correlate(list(correlations), matches)
        changes = state.alerts(hits)
        assert state.size()["late_rows"] == 0  # cut by time: no event older than what was carried
        store.upsert(changes.alerts, changes.retracted, changes.late)
        state.save(tmp / "state")
    return store.scan().collect(), JobState.load(tmp / "state")


def same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """The same alerts: ids, counts, windows, grades, first records and evidence values."""
    flat = [pl.col(c).list.join("\x1f") if c == "evidence.values" else pl.col(c) for c in COMPARED]
    got, want = got.select(flat).sort("event.id"), want.select(flat).sort("event.id")
    missing = want.join(got, on=COMPARED, how="anti", nulls_equal=True)
    extra = got.join(want, on=COMPARED, how="anti", nulls_equal=True)
    assert not missing.height and not extra.height, (
        f"{missing.height} missing, e.g. {missing.head(3).to_dicts()}\n"
        f"{extra.height} extra, e.g. {extra.head(3).to_dicts()}")
    assert got.get_column("event.id").n_unique() == got.height


def inside_windows(alerts: pl.DataFrame, every: int = 1) -> list[datetime]:
    """Boundaries in the middle of what is found (an episode, a beacon, a volume run)."""
    wide = alerts.filter(pl.col("event.end") > pl.col("event.start"))
    mids = wide.select(pl.col("event.start") + (pl.col("event.end") - pl.col("event.start")) / 2).to_series()
    return sorted(set(mids.to_list()))[::every]


# -- a generated multi-hour log with every detector's attack planted -----------------------------------------------


def generated() -> list[tuple[tuple[str, str], pl.DataFrame]]:
    """Six hours of benign traffic of every family, every detector's attack planted (at 3 h), a second brute
    force at 1 h 50 m, and nothing at all from 4 h 30 m to 5 h 10 m (a gap longer than any window)."""
    rng = np.random.default_rng(21)
    frames = benign(rng)
    for key, planted, _, _ in plants(rng).values():
        frames.setdefault(key, []).append(planted)
    again = plants(np.random.default_rng(5))["soc-ssh-brute-force"][1]
    frames[("authentication", "system.auth")].append(again.with_columns(
        pl.col("@timestamp") - timedelta(minutes=70), pl.col("log.line") + 10_000))
    slow = pl.concat([again.head(1)] * 400)  # 400 guesses over 45 minutes: one long
    slow = slow.with_columns(  # episode, many windows long
        (pl.lit(START + timedelta(minutes=20)) + pl.duration(seconds=pl.int_range(0, 400) * 6.75)).cast(TS)
        .alias("@timestamp"), (pl.int_range(0, 400) + 20_000).alias("log.line"),
        pl.lit("203.0.113.46").alias("source.ip"))
    frames[("authentication", "system.auth")].append(slow)
    lo, hi = START + timedelta(hours=4, minutes=30), START + timedelta(hours=5, minutes=10)
    feed = []
    for key, parts in frames.items():
        whole = pl.concat(parts, how="diagonal_relaxed").sort("@timestamp", maintain_order=True)
        feed.append((key, whole.filter((pl.col("@timestamp") < lo) | (pl.col("@timestamp") >= hi))))
    return feed


@pytest.fixture(scope="module")
def planted():
    feed = generated()
    specs = apply_settings(default_specs(), SETTINGS)
    return feed, specs, one_hunt(feed, specs)


def test_the_generated_log_finds_every_detector(planted):
    _, specs, alerts = planted
    assert set(alerts.get_column("rule.id")) == {s.id for s in specs}  # none vacuous


@pytest.mark.parametrize("how", ["inside windows", "every 25 minutes", "in the gap and around it",
                                 "every 25 minutes, partial alerts kept 1 minute"])
def test_runs_over_the_generated_log_equal_one_hunt(planted, tmp_path, how):
    feed, specs, want = planted
    if how == "inside windows":
        bounds = inside_windows(want)
    elif how.startswith("every 25 minutes"):
        bounds = [START + timedelta(minutes=25 * i) for i in range(1, HOURS * 60 // 25 + 1)]
    else:
        bounds = [START + timedelta(hours=3, minutes=1), START + timedelta(hours=4, minutes=29),
                  START + timedelta(hours=4, minutes=50), START + timedelta(hours=5, minutes=11)]
    assert len(bounds) >= 4
    got, state = job_runs(tmp_path, steps(feed, None, bounds), specs, keep="1m" if "kept" in how else None)
    same(got, want)
    windowed = {s.id for s in specs if s.kernel in ("count", "distinct", "sum") or (
        s.kernel == "entropy" and s.param("score", "entropy") != "ngram")}
    carried = sum(f.height for k, f in state.detectors.items() if k in windowed)
    assert 0 < carried < sum(f.height for _, f in feed) // 20  # the last window's rows only, not the log


def test_a_run_reports_at_once_what_crossed_its_threshold(planted, tmp_path):
    """A brute force cut in the middle is an alert after the first run already, with the count so far; the
    next run's fuller version replaces it (one alert in the store, the larger count)."""
    feed, specs, want = planted
    ssh = want.filter(pl.col("rule.id") == "soc-ssh-brute-force").sort("event.start")[-1]
    middle = ssh.get_column("event.start")[0] + (ssh.get_column("event.end")[0] - ssh.get_column("event.start")[0]) / 2
    parts = steps(feed, None, [middle])
    first, _ = job_runs(tmp_path / "a", parts[:1], specs)
    early = first.filter(pl.col("event.id") == ssh.get_column("event.id")[0])
    assert early.height == 1 and 10 <= early.get_column("event.count")[0] < ssh.get_column("event.count")[0]
    store = AlertStore(tmp_path / "b" / "data")
    for i, (frames, _) in enumerate(parts):
        state = JobState.load(tmp_path / "b" / "state")
        state.final = i == 1
        runner = state.make_runner(specs)
        for key, frame in frames:
            runner.feed(key, frame)
        changes = state.alerts([runner.hits()])
        store.upsert(changes.alerts, changes.retracted, changes.late)
        state.save(tmp_path / "b" / "state")
    final = store.scan().filter(pl.col("event.id") == ssh.get_column("event.id")[0]).collect()
    assert final.get_column("event.count").to_list() == ssh.get_column("event.count").to_list()


def test_a_replayed_run_changes_nothing(planted, tmp_path):
    """Killed after the alerts were stored and before the state was saved, the run is made again from the
    same state: the same alert changes, nothing new written."""
    feed, specs, _ = planted
    parts = steps(feed, None, [START + timedelta(hours=3, minutes=1)])
    store = AlertStore(tmp_path / "data")
    frames = parts[0][0]
    for _ in range(2):
        state = JobState.load(tmp_path / "state")
        runner = state.make_runner(specs)
        for key, frame in frames:
            runner.feed(key, frame)
        changes = state.alerts([runner.hits()])
        written = store.upsert(changes.alerts, changes.retracted, changes.late)
    assert written == 0 and changes.alerts.height


# -- Sigma correlations of every type over generated matches --------------------------------------------------------

CORRELATIONS = """
title: Failed logon
name: failed_logon
logsource: {product: windows, service: security}
detection: {selection: {EventID: 4625}, condition: selection}
---
title: Successful logon
name: successful_logon
logsource: {product: windows, service: security}
detection: {selection: {EventID: 4624}, condition: selection}
---
title: Outbound connection
name: outbound
logsource: {category: firewall}
detection: {selection: {action: allow}, condition: selection}
"""
KINDS = {  # id suffix -> (type, rules, group-by, timespan, condition, extra)
    "1": ("event_count", "[failed_logon]", "[source.ip]", "5m", "{gte: 10}", ""),
    "2": ("event_count", "[successful_logon]", "[user.name]", "10m", "{lt: 2}", ""),
    "3": ("event_count", "[failed_logon]", "[user.name]", "2m", "{eq: 3}", ""),
    "4": ("value_count", "[failed_logon]", "[source.ip]", "10m", "{gte: 5, field: user.name}", ""),
    "5": ("value_sum", "[outbound]", "[source.ip]", "10m", "{gte: 20000, field: network.bytes}", ""),
    "6": ("value_avg", "[outbound]", "[source.ip]", "10m", "{gt: 3000, field: network.bytes}", ""),
    "7": ("temporal", "[failed_logon, successful_logon]", "[source.ip]", "5m", "{gte: 2}", ""),
    "8": ("temporal_ordered", "[failed_logon, successful_logon]", "[source.ip]", "5m", "{gte: 2}", ""),
    "9": ("event_count", "[failed_logon]", "[TargetUserName]", "5m", "{gte: 4}", ""),  # not an entity column
}


def _rule(suffix: str, kind, rules, group_by, span, condition) -> str:
    return f"""---
title: Correlation {suffix} {kind}
id: 00000000-0000-4000-8000-00000000000{suffix}
level: high
correlation:
  type: {kind}
  rules: {rules}
  group-by: {group_by}
  timespan: {span}
  condition: {condition}
"""


CHAIN = """---
title: Repeated brute force
id: 00000000-0000-4000-8000-000000000010
name: repeated
level: critical
correlation:
  type: event_count
  rules: [brute]
  group-by: [source.ip]
  timespan: 1h
  condition: {gte: 2}
"""


def correlations(tmp: Path):
    text = CORRELATIONS + "".join(_rule(k, *v[:5]) for k, v in KINDS.items())
    text = text.replace("title: Correlation 1 event_count\n", "title: Correlation 1 event_count\nname: brute\n")
    path = tmp / "correlations.yml"
    path.write_text(text + CHAIN, encoding="utf-8")
    loaded, errors = compile_correlations([path], [])
    assert not errors, errors
    assert len(loaded) == len(KINDS) + 1
    return loaded


T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def matches(seed: int = 3) -> pl.DataFrame:
    """Four hours of base-rule matches: failures and successes of a few addresses and users (bursts among
    them), outbound flows, and nothing from 2 h 10 m to 2 h 50 m."""
    rng = np.random.default_rng(seed)
    rows = []
    ips = [f"10.0.0.{i}" for i in range(1, 9)]
    users = [f"u{i}" for i in range(12)]

    def add(t, rule, ip, user=None, nbytes=None):
        rows.append({"t": t, "rule.id": rule, "source.ip": ip, "user.name": user, "TargetUserName": user,
                     "network.bytes": nbytes})

    for t in rng.uniform(0, 4 * 3600, 900):
        add(t, "failed_logon", ips[rng.integers(8)], users[rng.integers(12)])
    for t in rng.uniform(0, 4 * 3600, 300):
        add(t, "successful_logon", ips[rng.integers(8)], users[rng.integers(12)])
    for t in rng.uniform(0, 4 * 3600, 600):
        add(t, "outbound", ips[rng.integers(8)], nbytes=int(rng.lognormal(7.5, 1.0)))
    for at in (1800.0, 3 * 3600.0, 3 * 3600.0 + 1500):  # bursts, each then a success (temporal)
        ip = "203.0.113.9"
        for t in at + np.sort(rng.uniform(0, 200, 25)):
            add(t, "failed_logon", ip, users[rng.integers(12)])
        add(at + 230, "successful_logon", ip, "u1")
    for t in 5400 + np.sort(rng.uniform(0, 400, 12)):  # a large transfer
        add(t, "outbound", "10.0.0.77", nbytes=9000)
    frame = pl.DataFrame(rows, infer_schema_length=None).filter((pl.col("t") < 7800) | (pl.col("t") >= 10200)).sort("t")
    names = {"failed_logon": "Failed logon", "successful_logon": "Successful logon", "outbound": "Outbound"}
    return frame.with_columns(
        (pl.lit(T0) + pl.duration(microseconds=(pl.col("t") * 1e6).cast(pl.Int64))).cast(TS).alias("@timestamp"),
        pl.col("rule.id").replace_strict(names).alias("rule.name"), pl.lit("medium").alias("rule.level"),
        pl.lit("/logs/sec.log").alias("log.file.path"), pl.int_range(1, pl.len() + 1).alias("log.line"),
        (pl.int_range(0, pl.len()) * 100).alias("log.offset"), pl.lit("test").alias("event.dataset"),
    ).drop("t")


@pytest.fixture(scope="module")
def correlated(tmp_path_factory):
    loaded = correlations(tmp_path_factory.mktemp("rules"))
    found = matches()
    return loaded, found, one_hunt([], [], found, loaded)


def test_every_correlation_type_fires(correlated):
    loaded, _, alerts = correlated
    ids = set(alerts.get_column("rule.id"))
    assert {str(c.rule.id) for c in loaded} <= ids


@pytest.mark.parametrize("how", ["inside windows", "every 7 minutes", "in the gap",
                                 "every 7 minutes, partial alerts kept 1 minute"])
def test_runs_over_growing_matches_equal_one_hunt(correlated, tmp_path, how):
    """Partial alerts kept a minute only: those of a key whose episode is still open are kept longer."""
    loaded, found, want = correlated
    if how == "inside windows":
        bounds = inside_windows(want.filter(pl.col("rule.id").str.starts_with("00000000")))
    elif how.startswith("every 7 minutes"):
        bounds = [T0 + timedelta(minutes=7 * i) for i in range(1, 4 * 60 // 7)]
    else:
        bounds = [T0 + timedelta(hours=2, minutes=5), T0 + timedelta(hours=2, minutes=30),
                  T0 + timedelta(hours=2, minutes=51)]
    got, state = job_runs(tmp_path, steps([], found, bounds), [], loaded, keep="1m" if "kept" in how else None)
    same(got, want)
    if "kept" in how:  # bounded: the last hour's keys and those of the episodes still open, not all
        assert state.partials.height < want.height // 3


# -- sample_logs/ with soc's own rules, correlations and detectors -------------------------------------------------


SAMPLE_SETTINGS = ["soc-first-seen-login-source.baseline=10m"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """sample_logs/ parsed, its Sigma matches (soc's rules/), and the alerts of one hunt over all of it by the
    library (``soc.hunt.run_hunt``), which the stages driven here give too."""
    from soc.config import Config
    from soc.hunt import HuntRequest, discover_inputs, load_rules, run_hunt
    from soc.sigma.hunt import hunter_for

    sink = Collect()
    pipeline.run(discover_inputs([str(ROOT / "sample_logs")]), sink, OPTIONS)
    ruleset = load_rules([str(ROOT / "rules")])
    hunter = hunter_for(ruleset)
    for key, frame in sink.frames:
        hunter.feed(key, frame)
    hunter.finish()
    found = hunter.matches()
    specs = apply_settings(default_specs(), SAMPLE_SETTINGS)
    mine = one_hunt(sink.frames, specs, found, ruleset.correlations)
    data = tmp_path_factory.mktemp("hunt")
    report = run_hunt(HuntRequest([str(ROOT / "sample_logs")], data_dir=str(data), rules=[str(ROOT / "rules")],
                                  settings=SAMPLE_SETTINGS, options=OPTIONS, config=Config(), to_es=False))
    assert report.exit_code == 0 and not report.errors, report.errors
    library = AlertStore(data).scan().collect()
    same(mine, library)
    return sink.frames, found, ruleset.correlations, specs, library


def test_sample_logs_find_something_of_each_kind(sample):
    _, found, correlations_, _, alerts = sample
    assert correlations_ and found.height
    rules = set(alerts.get_column("rule.id"))
    assert any(r.startswith("soc-") for r in rules)  # detectors
    assert {str(c.rule.id) for c in correlations_} & rules  # correlations


@pytest.mark.parametrize("how", ["inside windows", "hourly", "halves"])
def test_runs_over_the_sample_logs_equal_one_hunt(sample, tmp_path, how):
    feed, found, correlations_, specs, want = sample
    times = pl.concat([f.select("@timestamp") for _, f in feed]).drop_nulls().to_series()
    lo, hi = times.min(), times.max()
    if how == "inside windows":
        bounds = inside_windows(want)
    elif how == "hourly":
        bounds = pl.datetime_range(lo, hi, "1h", eager=True).to_list()[1:]
    else:
        bounds = [lo + (hi - lo) / 2]
    got, _ = job_runs(tmp_path, steps(feed, found, bounds), specs, correlations_)
    same(got, want)


# -- alerts that change after they were stored ----------------------------------------------------------------------


def _flows(seconds, start=START) -> pl.DataFrame:
    n = len(seconds)
    return pl.DataFrame({
        "@timestamp": pl.Series([start + timedelta(seconds=float(s)) for s in seconds]).cast(TS),
        "event.dataset": ["fortinet.firewall"] * n, "source.ip": ["10.0.1.99"] * n,
        "destination.ip": ["203.0.113.200"] * n, "destination.port": [443] * n, "network.direction": ["outbound"] * n,
        "log.file.path": ["/logs/fw.log"] * n, "log.line": list(range(1, n + 1))})


def test_a_beacon_whose_rhythm_breaks_is_retracted(tmp_path):
    """A beacon found by the first run is no beacon over the whole log once its calls turn irregular: the
    second run retracts its alert, as one hunt over everything never reports it."""
    specs = [s for s in default_specs() if s.id == "soc-c2-beaconing"]
    rng = np.random.default_rng(4)
    regular = 60.0 * np.arange(30) + rng.uniform(-1, 1, 30)
    irregular = 1800 + np.cumsum(rng.uniform(5, 900, 60))
    whole = _flows(np.concatenate([regular, irregular]))
    assert one_hunt([(("network", "fortinet.firewall"), whole)], specs).height == 0
    store = AlertStore(tmp_path / "data")
    for i, part in enumerate([whole.head(30), whole.slice(30)]):
        state = JobState.load(tmp_path / "state")
        state.final = i == 1
        runner = state.make_runner(specs)
        runner.feed(("network", "fortinet.firewall"), part)
        changes = state.alerts([runner.hits()])
        store.upsert(changes.alerts, changes.retracted, changes.late)
        state.save(tmp_path / "state")
        if i == 0:
            assert changes.alerts.height == 1 and store.scan().collect().height == 1  # reported at once
            beacon = changes.alerts.get_column("event.id")[0]
    assert changes.retracted == [beacon]
    assert store.scan().collect().height == 0 and beacon in store.ids()  # a tombstone, not shown


def test_the_store_keeps_the_last_version_and_late_alerts_never_overwrite(tmp_path):
    alerts = build_alerts(_flows([0, 10, 20]).with_columns(
        pl.lit("r1").alias("rule.id"), pl.lit("rule").alias("rule.name"), pl.lit("high").alias("rule.level")))
    store = AlertStore(tmp_path)
    assert store.upsert(alerts) == 1 and store.upsert(alerts) == 0  # a replay writes nothing
    fuller = alerts.with_columns(pl.col("event.count") + 5)
    assert store.upsert(fuller) == 1
    assert store.scan().collect().get_column("event.count").to_list() == [8]
    assert store.upsert(empty := alerts.clear(), late=alerts) == 0  # stored already: the fuller one stays
    assert store.scan().collect().get_column("event.count").to_list() == [8]
    store.upsert(empty, retracted=alerts.get_column("event.id").to_list())
    assert store.scan().collect().height == 0 and len(store.files()) == 3
    assert store.upsert(empty, retracted=alerts.get_column("event.id").to_list()) == 0 and len(store.files()) == 3
    assert store.upsert(fuller) == 1 and store.scan().collect().get_column("event.count").to_list() == [8]


def test_a_detector_whose_spec_changed_starts_afresh(planted, tmp_path):
    """Rows carried for a spec are not fed to another one (a changed key, window or threshold): that detector
    starts again from nothing, the others go on."""
    feed, specs, _ = planted
    frames = steps(feed, None, [START + timedelta(hours=3, minutes=1)])[0][0]
    state = JobState.load(tmp_path)
    runner = state.make_runner(specs)
    for key, frame in frames:
        runner.feed(key, frame)
    state.alerts([runner.hits()])
    state.save(tmp_path)
    assert {"soc-ssh-brute-force", "soc-port-scan"} <= set(state.detectors)
    state = JobState.load(tmp_path)
    state.make_runner(apply_settings(specs, ["soc-ssh-brute-force.threshold=5"]))
    assert "soc-ssh-brute-force" not in state.detectors and "soc-port-scan" in state.detectors


def test_a_drop_waits_for_its_bucket_to_close(tmp_path):
    """A steady source cut a minute into a 10-minute bucket looks silent in that bucket: a job's run does not
    report it (more events may come), the final run over the same events does, as one hunt does."""
    specs = [s for s in default_specs() if s.id == "soc-volume-drop"]
    seconds = np.arange(0, 3 * 3600 + 60, 6.0)  # 100 events per 10 minutes for 3 hours and a minute
    n = seconds.size
    frame = pl.DataFrame({"@timestamp": pl.Series([START + timedelta(seconds=float(s)) for s in seconds]).cast(TS),
                          "event.dataset": ["system.syslog"] * n, "host.hostname": ["app7"] * n,
                          "log.file.path": ["/logs/app7.log"] * n, "log.line": list(range(1, n + 1))})
    key = ("syslog", "system.syslog")
    assert one_hunt([(key, frame)], specs).height == 1  # the last, open bucket: 10 events against 100
    for final in (False, True):
        state = JobState.load(tmp_path / str(final))
        state.final = final
        runner = state.make_runner(specs)
        runner.feed(key, frame)
        assert state.alerts([runner.hits()]).alerts.height == int(final)


def test_events_older_than_what_was_carried_are_counted(planted, tmp_path):
    """A source lagging by more than a window: its rows reach back past what the last run kept; the run says
    how many (the job's hits around them may differ from one hunt's)."""
    feed, specs, _ = planted
    cut = START + timedelta(hours=3, minutes=1)
    ssh = [(k, f) for k, f in feed if k == ("authentication", "system.auth")]
    for i, rows in enumerate([f.filter(pl.col("@timestamp") > cut) for _, f in ssh] +
                             [f.filter(pl.col("@timestamp") <= cut) for _, f in ssh]):
        state = JobState.load(tmp_path)
        runner = state.make_runner(specs)
        runner.feed(("authentication", "system.auth"), rows)
        state.alerts([runner.hits()])
        state.save(tmp_path)
        assert (state.late.get("soc-ssh-brute-force", 0) > 0) == (i == 1)
