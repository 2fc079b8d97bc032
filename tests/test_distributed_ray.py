"""The hunt on real Ray clusters (``soc hunt --ray``) gives exactly what the local hunt gives: the same Sigma matches,
detector hits, dead letters, counts per input and alerts (ids, counts, windows); on a local cluster of 2 workers,
on a 2-node cluster on this machine, and when a worker is killed in the middle of a task (Ray runs it again).

Ray starts take ~10-15 s of wall time on the 2-core machine: one local cluster for the module, one 2-node cluster
for the last test. Without Ray installed these tests skip (``pip install -e '.[test]'`` has it); under CI=true
they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from soc.hunt import HuntRequest, run_hunt
from tests.conftest import CORPORA, IN_CI, ROOT, need
from tests.evtx_corpus import evtx_files
from tests.test_distributed_local import SAMPLES, _inputs, _same, nxlog_with_broken_lines, outcome

try:
    import ray
except ImportError:  # the [ray] / [test] extra is not installed
    ray = None


def _need_ray() -> None:
    if ray is None:
        if IN_CI:
            pytest.fail("Ray is not installed (CI=true: pip install -e '.[test]' must install it)")
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")


def _start_local() -> None:
    """A local cluster of 2 worker CPUs for this process (again if the 2-node test ended it)."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)


@pytest.fixture(scope="module")
def local_ray():
    _need_ray()
    _start_local()
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _no_config(monkeypatch):
    monkeypatch.setenv("SOC_CONFIG", "")


def _hunt(inputs, data: Path, rules=(), options=None, **how) -> dict:
    """A hunt (``how``: ``ray=``, ``executor=`` or nothing: this process alone) and what it gave."""
    report = run_hunt(HuntRequest([str(p) for p in inputs], str(data), rules=[str(r) for r in rules],
                                  options=options, to_es=False, workers=1, **how))
    return outcome(report, data)


def _recording(seen: Path, kill_at: int | None = None, marker: Path | None = None, hold: float = 0.0):
    """A task body that runs ``run_task`` and appends (process id, node id, task number) to ``seen``; the task
    numbered ``kill_at`` kills its own worker process once (``marker`` records that it did) before its result.
    ``hold``: seconds each task keeps its CPU first (on nodes of one CPU, tasks in flight together must then run
    on different nodes, whatever the scheduler's timing)."""

    def task(plan, part, cwd):
        import signal
        import time

        import ray as in_ray

        from soc.distributed.ray_executor import _task

        time.sleep(hold)
        result = _task(plan, part, cwd)
        if part.number == kill_at and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)  # mid-task: its work done, its result never sent
        with open(seen, "a") as fh:
            fh.write(f"{os.getpid()} {in_ray.get_runtime_context().get_node_id()} {part.number}\n")
        return result

    return task


def _seen(path: Path) -> list[tuple[int, str, int]]:
    return [(int(p), n, int(t)) for p, n, t in (line.split() for line in path.read_text().splitlines())]


def test_sample_logs_on_ray_as_local(tmp_path, local_ray):
    one = _hunt(_inputs(tmp_path), tmp_path / "one")
    two = _hunt(_inputs(tmp_path), tmp_path / "two", ray="auto")
    assert ray.is_initialized()  # the caller's connection is left as it was
    assert sum(st["read"] for st in one["stats"]) > 1000 and one["hits"].height > 3 and one["matches"].height
    assert sum(len(d) for d in one["dead"].values()) > 0 and len(one["alerts"]) >= 40
    _same(one, two)


def test_relative_paths_name_the_driver_s_files(tmp_path, local_ray, monkeypatch):
    """Inputs named relative to the driver's working directory (changed after the cluster started) are read from
    there and recorded as given, as in a local hunt; standard input is refused (no node can read it)."""
    from soc.hunt import HuntError

    _inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    one = _hunt(["broken_access.log"], tmp_path / "one")
    two = _hunt(["broken_access.log"], tmp_path / "two", ray="auto")
    assert one["stats"][0]["path"] == "broken_access.log" and one["stats"][0]["read"] > 100
    _same(one, two)
    with pytest.raises(HuntError, match="standard input"):
        _hunt(["-"], tmp_path / "three", ray="auto")


def test_the_evtx_corpus_on_ray_as_local(tmp_path, local_ray):
    need(CORPORA / "evtx" / "evtx-to-mitre-attack", "EVTX corpus (../shared/corpora/evtx)")
    from soc.distributed import ray_executor

    files = evtx_files()
    rules = [CORPORA / "sigma" / "rules" / "windows"]
    one = _hunt(files, tmp_path / "one", rules)
    seen = tmp_path / "seen"
    two = _hunt(files, tmp_path / "two", rules,
                executor=ray_executor.executor("auto", tuple(map(str, rules)), None, _recording(seen)))
    ran = _seen(seen)
    assert len({t for _, _, t in ran}) == len(ran) >= 2  # every task once
    assert os.getpid() not in {p for p, _, _ in ran}  # in Ray's workers
    assert one["matches"].height >= 2015 and one["hits"].height > 0 and len(one["stats"]) == 483
    _same(one, two)


def test_a_large_windows_json_file_in_byte_ranges_on_ray(tmp_path, local_ray, monkeypatch):
    """NXLog lines (some that do not parse) in 1 MB chunks cut in ranges of 2 chunks, each range a Ray task: line
    numbers of the whole file, the same result as local."""
    need(CORPORA / "evtx" / "evtx-to-mitre-attack", "EVTX corpus (../shared/corpora/evtx)")
    from soc.distributed import task
    from soc.pipeline import Options

    monkeypatch.setattr(task, "SPAN_CHUNKS", 2)  # the driver cuts the partitions
    path = nxlog_with_broken_lines(tmp_path)
    options = Options(chunk_size=1 << 20)
    rules = [CORPORA / "sigma" / "rules" / "windows"]
    one = _hunt([path], tmp_path / "one", rules, options)
    two = _hunt([path], tmp_path / "two", rules, options, ray="auto")
    dead = pl.concat(one["dead"].values())
    assert dead.get_column("log.line").to_list() == [i + 1 for i in range(6000) if i % 997 == 5]
    assert one["matches"].get_column("log.line").max() > 5000 and one["stats"][0]["read"] == 6000
    _same(one, two)


def test_a_killed_worker_is_retried_with_the_same_result(tmp_path, local_ray):
    """A task's worker process kills itself (SIGKILL) once, at the end of its work: Ray runs the task again
    (``max_retries``); no match, dead letter or alert is lost or counted twice."""
    from soc.distributed import ray_executor

    one = _hunt(_inputs(tmp_path), tmp_path / "one")
    seen, marker = tmp_path / "seen", tmp_path / "killed"
    two = _hunt(_inputs(tmp_path), tmp_path / "two",
                executor=ray_executor.executor("auto", (), None, _recording(seen, 1, marker), max_retries=2))
    assert marker.exists()  # a worker was killed
    ran = _seen(seen)
    assert sorted(t for _, _, t in ran) == list(range(len(ran)))  # each task's result once, task 1's from its retry
    assert int(marker.read_text()) not in {p for p, _, t in ran if t == 1}
    _same(one, two)


def _killing(real, marker: Path, index_of):
    """``real`` (a partition's Ray task) whose worker kills itself (SIGKILL) once, when it has done partition 1's
    work and before its result is sent; ``marker`` records the killed process."""

    def run(*args):
        import signal

        result = real(*args)
        if index_of(args) == 1 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return run


def test_a_killed_partition_worker_is_retried_with_the_same_result(tmp_path, local_ray, monkeypatch):
    """The worker of a detector partition and that of a correlation partition each die once mid-task: Ray runs
    them again (``max_retries``), the partitions' results come from their retries (not from the driver's own
    evaluation), and the hits, matches and alerts are the local hunt's: none lost, none twice."""
    from soc.distributed import ray_executor, shuffle

    one = _hunt(_inputs(tmp_path), tmp_path / "one")
    detectors, correlations = tmp_path / "killed-detectors", tmp_path / "killed-correlations"
    monkeypatch.setattr(shuffle, "run_partition", _killing(shuffle.run_partition, detectors, lambda a: a[0].index))
    monkeypatch.setattr(ray_executor, "_correlations", _killing(ray_executor._correlations, correlations,
                                                                lambda a: a[0]))
    trace: list = []
    two = _hunt(_inputs(tmp_path), tmp_path / "two",
                executor=ray_executor.executor("auto", (), None, trace=trace, max_retries=2))
    assert detectors.exists() and correlations.exists()  # both workers were killed
    assert sorted(r.index for r in trace if isinstance(r, shuffle.PartitionResult)) == [0, 1]
    assert sorted(r.index for r in trace if isinstance(r, shuffle.CorrelationResult)) == [0, 1]
    _same(one, two)


def test_without_ray_nothing_imports_it(tmp_path):
    """``import soc.hunt`` and a ``soc hunt`` without ``--ray`` never load Ray (a fresh interpreter)."""
    code = ("import sys, soc.hunt\nassert 'ray' not in sys.modules\nfrom soc.cli import main\n"
            "try:\n    main(['hunt', sys.argv[1], '--data-dir', sys.argv[2], '--no-es'])\nexcept SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')]\n")
    env = {**os.environ, "SOC_CONFIG": ""}
    done = subprocess.run([sys.executable, "-c", code, str(SAMPLES / "linux" / "auth.log"), str(tmp_path / "d")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_cli_hunts_on_ray(tmp_path, local_ray):
    """``soc hunt INPUTS --ray`` (a flag after the inputs: auto) prints the local hunt's summary."""
    import json

    from click.testing import CliRunner

    from soc.cli import main

    got = []
    for name, more in (("one", []), ("two", ["--ray"])):
        done = CliRunner().invoke(main, ["hunt", str(SAMPLES), "--data-dir", str(tmp_path / name), "--no-es",
                                         "--json", *more])
        assert done.exit_code == 0, done.output
        report = json.loads(done.stdout[done.stdout.index("{"):])
        for st in report["files"]:
            st.pop("seconds")
        report["alerts"].pop("data_dir")
        got.append(report)
    assert got[0]["alerts"]["alerts"] >= 40 and got[0]["sigma"]["matches"] > 100
    assert got[0] == got[1]


def test_an_input_after_ray_is_not_taken_for_its_address(tmp_path):
    from click.testing import CliRunner

    from soc.cli import main

    got = CliRunner().invoke(main, ["hunt", "--ray", str(SAMPLES), "--data-dir", str(tmp_path)])
    assert got.exit_code == 2 and "is no Ray address" in got.output


def test_two_nodes_on_this_machine_through_ray_client(tmp_path):
    """A head and a worker node of 1 CPU each (``ray.cluster_utils.Cluster``), reached at a ``ray://`` address
    (Ray Client) that the hunt connects to itself and leaves: tasks on both nodes, the local result. Last: it ends
    the module's local cluster."""
    _need_ray()
    import socket

    from ray.cluster_utils import Cluster

    from soc.distributed import ray_executor

    ray.shutdown()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False, "ray_client_server_port": port})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        one = _hunt(_inputs(tmp_path), tmp_path / "one")
        seen = tmp_path / "seen"
        two = _hunt(_inputs(tmp_path), tmp_path / "two",
                    executor=ray_executor.executor(f"ray://127.0.0.1:{port}", (), None, _recording(seen, hold=1.0)))
        assert not ray.is_initialized()  # connected by the hunt, left by it
        ran = _seen(seen)
        assert len({n for _, n, _ in ran}) == 2, ran  # both nodes ran tasks
        _same(one, two)
    finally:
        ray.shutdown()
        cluster.shutdown()


# -- the shuffle: detector rows by entity key to detector partitions ------------------------------------------------


def test_detector_rows_of_one_key_go_to_one_partition(tmp_path, local_ray):
    """sample_logs/ on Ray: the detectors run on 2 partitions (one per CPU), each key's rows all in one of them,
    and so do the Sigma correlations (soc's own rules: brute forces by source), each group in one partition; the
    hunt's hits, matches, correlation alerts and alerts are the local hunt's."""
    from soc.distributed import ray_executor

    one = _hunt(_inputs(tmp_path), tmp_path / "one")
    trace: list = []
    two = _hunt(_inputs(tmp_path), tmp_path / "two",
                executor=ray_executor.executor("auto", (), None, trace=trace))
    _same(one, two)
    from soc.distributed.shuffle import CorrelationResult, PartitionResult

    correlated = [r for r in trace if isinstance(r, CorrelationResult)]
    trace = [r for r in trace if isinstance(r, PartitionResult)]
    assert sorted(r.index for r in trace) == [0, 1] and sorted(r.index for r in correlated) == [0, 1]
    assert all(r.rows for r in trace)  # both partitions ran detectors on rows
    fired = [f for r in correlated for f in r.found.values() if f.height]
    assert sum(f.height for f in fired) >= 2  # the correlation alerts came from the partitions
    for number in {n for r in correlated for n in r.found}:  # a correlation's group in one partition only
        groups = [r.found[number].drop("@timestamp", "rule.id", "rule.name", "rule.level", "correlation.type",
                                       "window.start", "window.end", "event.count", "correlation.value",
                                       "evidence").unique() for r in correlated]
        assert not groups[0].join(groups[1], on=groups[0].columns, how="inner").height
    ran = 0
    for spec_id in {s for r in trace for s in r.keys}:
        keys = [r.keys[spec_id] for r in trace if spec_id in r.keys]
        if len(keys) < 2:
            continue
        ran += 1
        both = keys[0].join(keys[1], on=keys[0].columns, how="inner", nulls_equal=True)
        assert both.height == 0, (spec_id, both)  # no key in both partitions
    assert ran >= 3  # detectors whose keys were shared out over both partitions
    assert sum(sum(r.rows.values()) for r in trace) > 100



def test_the_zeek_corpus_on_detector_partitions_as_local(tmp_path, local_ray):
    """21 minutes of real Zeek logs (53 k DNS queries, TLS and RDP sessions that beacon, NTLM guessing): the
    detectors on 2 partitions find what the local hunt finds, row for row."""
    need(CORPORA / "zeek" / "dns.log.gz", "Zeek logs (../shared/corpora/zeek)")
    from soc.distributed import ray_executor
    from soc.distributed.shuffle import PartitionResult

    files = sorted((CORPORA / "zeek").glob("*.log.gz"))
    one = _hunt(files, tmp_path / "one")
    trace: list = []
    two = _hunt(files, tmp_path / "two", executor=ray_executor.executor("auto", (), None, trace=trace))
    _same(one, two)
    assert set(one["hits"].get_column("rule.id")) >= {"soc-c2-beaconing", "soc-zeek-ntlm-brute-force"}
    ran = [r for r in trace if isinstance(r, PartitionResult) and r.rows]
    assert len(ran) == 2 and all(r.rows.get("soc-dga-domains") for r in ran)  # DNS rows on both partitions

def _on_partitions(feed, specs, tasks: int, n: int, trace: list | None = None):
    """The detectors' hits over ``feed`` as a Ray hunt gets them: ``tasks`` Ray tasks each feed consecutive frames to
    a runner of their own and cut its rows into ``n`` pieces (``shuffle.cut``); the driver's runner absorbs the
    tasks' results in order, then ``n`` detector partitions run on Ray (``ray_executor._detect``)."""
    from soc.detect.runner import DetectorRunner
    from soc.distributed import ray_executor, shuffle

    driver = DetectorRunner(specs)
    route = shuffle.routes(driver)

    @ray.remote(num_returns=1 + n)
    def task(frames):
        runner = DetectorRunner(specs)
        for key, frame in frames:
            runner.feed(key, frame)
        rows = runner.take_rows()
        return (rows, *shuffle.cut(rows, specs, route, n))

    size = -(-len(feed) // tasks)
    refs = [task.remote(feed[i: i + size]) for i in range(0, len(feed), size)]
    firsts, pieces = [], []
    for head, *more in refs:
        rows = ray.get(head)
        firsts.append(rows.pop("first"))
        driver.absorb(rows)
        pieces.append(more)
    ray_executor._detect(ray, driver, route, firsts, pieces, n, 0, trace)
    return driver


def test_every_detector_planted_on_partitions_as_one_process(local_ray):
    """The generated six hours with every detector's attack planted (``tests.test_job_state.generated``: windows,
    distinct counts, sums, DNS names with learned resolvers, beacons with max_sources, a drop with the hunt's "now",
    a rise, first-seen after the hunt's baseline), fed by 3 tasks and detected on 3 partitions: the same hits, row
    for row, and the same alerts as one runner fed everything."""
    from soc.alerts.build import build_alerts
    from soc.detect.runner import DetectorRunner
    from soc.detect.specs import apply_settings, default_specs
    from tests.test_detectors_planted import SETTINGS
    from tests.test_job_state import generated, same

    specs = apply_settings(default_specs(), SETTINGS)
    feed = []
    for key, frame in generated():  # each source's frame in 3: tasks get pieces of a source, as byte ranges do
        third = -(-frame.height // 3)
        feed += [(key, frame.slice(i, third)) for i in range(0, frame.height, third)]
    local = DetectorRunner(specs)
    for key, frame in feed:
        local.feed(key, frame)
    want = local.hits()
    trace: list = []
    driver = _on_partitions(feed, specs, 3, 3, trace)
    got = driver.hits()
    assert not local.failures and not driver.failures, (local.failures, driver.failures)
    assert set(want.get_column("rule.id")) == {s.id for s in specs}  # none vacuous
    assert set(driver.done) == {s.id for s in specs}  # every detector ran on the partitions
    assert len([r for r in trace if r.rows]) == 3
    assert got.equals(want), (got, want)
    same(build_alerts([got]), build_alerts([want]))


def test_what_stays_in_the_driver():
    """A job's runner (state carried across runs) is not shuffled; a rise whose zeros can rise (min_count 0) stays
    in the driver; a beacon with max_sources goes by destination; the others by their whole key."""
    from soc.detect.runner import DetectorRunner
    from soc.detect.specs import apply_settings, default_specs
    from soc.distributed import shuffle

    specs = default_specs()
    route = shuffle.routes(DetectorRunner(specs))
    beacon = next(s for s in specs if s.kernel == "beacon")
    rise = next(s for s in specs if s.kernel == "rise")
    assert route[beacon.id] == tuple(beacon.key[1:]) and route[rise.id] == tuple(rise.key)
    assert all(route[s.id] == tuple(s.key) for s in specs if s.kernel != "beacon")
    assert shuffle.routes(DetectorRunner(specs, carry={})) == {}
    zero = apply_settings(specs, [f"{rise.id}.min_count=0"])
    assert rise.id not in shuffle.routes(DetectorRunner(zero)) and beacon.id in shuffle.routes(DetectorRunner(zero))


def _on(side: int, key: dict, name: str, make) -> list[str]:
    """Values ``make(i)`` of the field ``name`` whose key (``key`` with that field, in the key's column order) is on
    partition ``side`` of 2."""
    from soc.distributed import shuffle

    out = []
    for i in range(500):
        frame = pl.DataFrame({k: [make(i) if k == name else v] for k, v in key.items()})
        if int(shuffle.partition_of(frame, tuple(frame.columns), 2)[0]) == side:
            out.append(make(i))
    return out


def test_what_spans_keys_is_given_to_every_partition(local_ray):
    """The traps of state across keys, each key of a pair on another partition: a host silent for the last hour
    beside one logging to the end (a drop needs the hunt's "now"), a user first seen an hour after another (the
    first-seen baseline starts at the hunt's first login), a DNS server that three clients query sending random
    names (a learned resolver, left out), six hosts beaconing to one destination (max_sources 5: a service). The
    partitions' hits are one runner's, and each trap is in them as one process has it."""
    import numpy as np

    from soc.detect.runner import DetectorRunner
    from soc.detect.specs import apply_settings, default_specs
    from tests.test_detectors_planted import SETTINGS, _frame, _random_label

    wanted = {"soc-volume-drop", "soc-first-seen-login-source", "soc-dga-domains", "soc-c2-beaconing"}
    specs = [s for s in apply_settings(default_specs(), SETTINGS) if s.id in wanted]
    assert len(specs) == 4
    rng = np.random.default_rng(7)
    host = {"event.dataset": "app.log", "host.hostname": None}  # the drop's key
    quiet, busy = _on(0, host, "host.hostname", "host{}".format)[0], _on(1, host, "host.hostname", "host{}".format)[0]
    frames = [(("process", "app.log"), _frame(np.arange(0, 3 * 3600, 5.0), "app.log", quiet)),
              (("process", "app.log"), _frame(np.arange(0, 4 * 3600, 5.0), "app.log", busy))]
    login = {"user.name": None, "event.dataset": "system.auth"}  # first-seen's key
    early, late = _on(0, login, "user.name", "user{}".format)[0], _on(1, login, "user.name", "user{}".format)[0]
    frames.append((("authentication", "system.auth"), _frame(
        [0.0, 3600.0, 9000.0], "system.auth", "srv1", **{"user.name": [early, late, late],
                                                         "source.ip": ["10.1.0.1", "10.1.0.2", "10.1.0.3"],
                                                         "event.outcome": ["success"] * 3})))
    resolver, clients = "10.0.0.53", ["10.0.1.1", "10.0.1.2", "10.0.1.3"]
    names = [f"{_random_label(rng, 16, 'abcdefghijklmnopqrstuvwxyz0123456789')}.com" for _ in range(15)]
    asked = [*clients, *[resolver] * 15]
    frames.append((("dns", "zeek.dns"), _frame(
        [100.0, 110.0, 120.0, *(200.0 + 10 * i for i in range(15))], "zeek.dns", "sensor", **{
            "source.ip": asked, "destination.ip": [resolver] * 3 + ["8.8.8.8"] * 15,
            "dns.question.name": ["www.google.com"] * 3 + names, "dns.response_code": ["NOERROR"] * 18})))
    pair = {"source.ip": None, "destination.ip": "198.51.100.7"}  # the beacon's whole key
    sources = [*_on(0, pair, "source.ip", "10.2.0.{}".format)[:3], *_on(1, pair, "source.ip", "10.2.0.{}".format)[:3]]
    beats = [(src, "198.51.100.7", 60.0 * i + 0.01 * k) for k, src in enumerate(sources) for i in range(40)]
    beats += [("10.3.0.1", "198.51.100.8", 60.0 * i) for i in range(40)]  # one source: a beacon
    frames.append((("network", "zeek.conn"), _frame(
        [t for _, _, t in beats], "zeek.conn", "sensor",
        **{"source.ip": [s for s, _, _ in beats], "destination.ip": [d for _, d, _ in beats]})))
    local = DetectorRunner(specs)
    for key, frame in frames:
        local.feed(key, frame)
    want = local.hits()
    got = _on_partitions(frames, specs, 2, 2).hits()
    assert got.equals(want), (got, want)
    found = {r: want.filter(pl.col("rule.id") == r) for r in wanted}
    assert found["soc-volume-drop"].get_column("host.hostname").to_list() == [quiet]
    assert found["soc-first-seen-login-source"].get_column("user.name").to_list() == [late]
    assert not found["soc-dga-domains"].height  # the resolver's forwarded queries
    assert found["soc-c2-beaconing"].get_column("destination.ip").to_list() == ["198.51.100.8"]
