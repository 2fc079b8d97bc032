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
from soc.sinks.alert_store import AlertStore
from tests.conftest import CORPORA, IN_CI, ROOT, need
from tests.evtx_corpus import evtx_files
from tests.test_distributed_local import MATCH_KEYS, SAMPLES, _inputs, _same

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
    assert report.exit_code == 0, report.errors
    alerts = AlertStore(str(data)).query()
    return {
        "stats": [{k: v for k, v in st.as_dict().items() if k != "seconds"} for st in report.stats],
        "matches": report.sigma.frame().sort(MATCH_KEYS, nulls_last=True),
        "events": report.sigma.events,
        "hits": report.detectors.hits,
        "detector_events": report.detectors.events,
        "failures": ([f.rule_id for f in report.sigma.failures], [f.reason for f in report.detectors.failures]),
        "dead": {f.name: pl.read_parquet(f) for f in sorted((data / "dead_letters").glob("*.parquet"))},
        "alerts": sorted(zip(alerts.get_column("event.id"), alerts.get_column("event.count"),
                             alerts.get_column("event.start"), alerts.get_column("event.end"), strict=True)),
        "errors": report.errors,
    }


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
    from bench.gen_nxlog_windows import generate
    from soc.distributed import task
    from soc.pipeline import Options

    monkeypatch.setattr(task, "SPAN_CHUNKS", 2)  # the driver cuts the partitions
    made = tmp_path / "made.json"
    generate(str(made), 6000)
    lines = made.read_bytes().splitlines(keepends=True)
    path = tmp_path / "nxlog.json"
    path.write_bytes(b"".join(b"{broken json\n" if i % 997 == 5 else line for i, line in enumerate(lines)))
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
