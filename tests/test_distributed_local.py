"""A hunt in two processes (``soc.distributed.local``) gives exactly what the one-process hunt gives: the same Sigma
matches per (rule id, file, record), the same detector hits (every column, in order), the same dead letters, the
same counts per input and the same alerts; also when a worker process is killed in the middle of a task."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pytest

from soc.distributed import local
from soc.hunt import HuntRequest, run_hunt
from soc.sinks.alert_store import AlertStore
from tests.conftest import CORPORA, ROOT, need
from tests.evtx_corpus import evtx_files

SAMPLES = ROOT / "sample_logs"
MATCH_KEYS = ["rule.id", "log.file.path", "log.line", "log.offset", "winlog.record_id", "@timestamp"]


def _hunt(inputs, data: Path, workers: int, rules=(), options=None) -> dict:
    report = run_hunt(HuntRequest([str(p) for p in inputs], str(data), rules=[str(r) for r in rules],
                                  options=options, to_es=False, workers=workers))
    return outcome(report, data)


def outcome(report, data: Path) -> dict:
    """What a hunt into the data folder ``data`` gave, in a form ``_same`` compares: counts, matches, detector
    hits, failures, dead letters, the stored alerts' ids, counts and windows, errors."""
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


def _same(one: dict, two: dict) -> None:
    assert one["stats"] == two["stats"]
    assert one["matches"].height == two["matches"].height
    assert one["matches"].equals(two["matches"])
    assert one["events"] == two["events"]
    assert one["hits"].equals(two["hits"]), (one["hits"], two["hits"])
    assert one["detector_events"] == two["detector_events"]
    assert one["failures"] == two["failures"]
    assert one["dead"].keys() == two["dead"].keys()
    for name, frame in one["dead"].items():
        assert frame.equals(two["dead"][name]), name
    assert one["alerts"] == two["alerts"]
    assert one["errors"] == two["errors"]


def nxlog_with_broken_lines(tmp_path: Path) -> Path:
    """6,000 generated NXLog lines, one in 997 replaced by a line that does not parse (dead letters)."""
    from bench.gen_nxlog_windows import generate

    made = tmp_path / "made.json"
    generate(str(made), 6000)
    lines = made.read_bytes().splitlines(keepends=True)
    path = tmp_path / "nxlog.json"
    path.write_bytes(b"".join(b"{broken json\n" if i % 997 == 5 else line for i, line in enumerate(lines)))
    return path


def _inputs(tmp_path: Path) -> list[Path]:
    """sample_logs/ and an access log with lines that do not parse among good ones (dead letters)."""
    lines = (SAMPLES / "web" / "nginx" / "access.log").read_bytes().splitlines(keepends=True)
    broken = tmp_path / "broken_access.log"
    broken.write_bytes(b"".join(line if i % 7 else b"not an access log line\n" for i, line in enumerate(lines)))
    return [SAMPLES, broken]


@pytest.fixture
def small_inputs_too(monkeypatch):
    """Workers for inputs of any size (by default small inputs are hunted in one process)."""
    monkeypatch.setattr(local, "MIN_BYTES", 0)
    monkeypatch.setenv("SOC_CONFIG", "")


def _tasks_seen(monkeypatch) -> list:
    """The tasks the workers run, as ("worker", task number); the driver takes none before a worker has one (a
    small hunt could be over before a worker is up)."""
    seen: list = []
    taken = threading.Event()
    real_call = local.Worker.call

    def call(self, task):
        if task[0] == "run":
            seen.append(("worker", task[2].number))
            taken.set()
        return real_call(self, task)

    monkeypatch.setattr(local.Worker, "call", call)
    _driver_waits(monkeypatch, taken)
    return seen


def _driver_waits(monkeypatch, taken: threading.Event, ran_here: list | None = None) -> None:
    """The driver runs tasks only once a worker has taken one (``taken``); ``ran_here`` gets their numbers."""
    real_run = local._run_here

    def run_here(plan, part):
        taken.wait(120)
        if ran_here is not None:
            ran_here.append(part.number)
        return real_run(plan, part)

    monkeypatch.setattr(local, "_run_here", run_here)


def test_sample_logs_in_two_processes_as_in_one(tmp_path, small_inputs_too, monkeypatch):
    one = _hunt(_inputs(tmp_path), tmp_path / "one", 1)
    seen = _tasks_seen(monkeypatch)
    two = _hunt(_inputs(tmp_path), tmp_path / "two", 2)
    assert seen, "no task ran in a worker process"
    assert sum(st["read"] for st in one["stats"]) > 1000 and one["hits"].height > 3 and one["matches"].height
    assert sum(len(d) for d in one["dead"].values()) > 0  # the samples have records that do not parse
    _same(one, two)


def test_the_evtx_corpus_in_two_processes_as_in_one(tmp_path, monkeypatch):
    need(CORPORA / "evtx" / "evtx-to-mitre-attack", "EVTX corpus (../shared/corpora/evtx)")
    monkeypatch.setenv("SOC_CONFIG", "")
    files = evtx_files()
    rules = [CORPORA / "sigma" / "rules" / "windows"]
    one = _hunt(files, tmp_path / "one", 1, rules)
    seen = _tasks_seen(monkeypatch)
    two = _hunt(files, tmp_path / "two", 2, rules)
    assert seen
    assert one["matches"].height >= 2015 and one["hits"].height > 0 and len(one["stats"]) == 483
    _same(one, two)


def test_a_large_windows_json_file_in_byte_ranges_as_whole(tmp_path, monkeypatch):
    """NXLog lines (and some that do not parse) read in 1 MB chunks, cut in ranges of 2 chunks hunted by two
    processes: the same matches (line numbers of the whole file), detector hits, dead letters and counts."""
    need(CORPORA / "evtx" / "evtx-to-mitre-attack", "EVTX corpus (../shared/corpora/evtx)")
    from soc.distributed import task
    from soc.pipeline import Options

    monkeypatch.setenv("SOC_CONFIG", "")
    monkeypatch.setattr(task, "SPAN_CHUNKS", 2)
    path = nxlog_with_broken_lines(tmp_path)
    options = Options(chunk_size=1 << 20)
    from soc.sources import discover

    cut = task.partitions(discover([str(path)]), options)
    assert len(cut) >= 3 and all(p.span for p in cut) and [p.last for p in cut][-2:] == [False, True]
    rules = [CORPORA / "sigma" / "rules" / "windows"]
    one = _hunt([path], tmp_path / "one", 1, rules, options)
    seen = _tasks_seen(monkeypatch)
    two = _hunt([path], tmp_path / "two", 2, rules, options)
    assert seen
    dead = pl.concat(one["dead"].values())
    assert dead.height == 7 and dead.get_column("log.line").to_list() == [i + 1 for i in range(6000) if i % 997 == 5]
    assert one["matches"].height > 100 and one["matches"].get_column("log.line").max() > 5000
    assert one["stats"][0]["read"] == 6000
    _same(one, two)


@pytest.mark.parametrize("name", ["web/nginx/access.log", "firewall/fortigate.log"])
def test_web_and_firewall_logs_in_byte_ranges_as_whole(tmp_path, small_inputs_too, monkeypatch, name):
    """An access log (words) and FortiGate key=value lines, with lines that do not parse, read in 16 kB chunks cut
    in ranges of 2 chunks: the same result in two processes as in one (text lines with offsets; these engines'
    inputs are not cut by default)."""
    from soc.distributed import task
    from soc.pipeline import Options
    from soc.sources import discover

    monkeypatch.setattr(task, "SPAN_CHUNKS", 2)
    monkeypatch.setattr(task, "SPLIT_ENGINES", {"words", "kv"})  # not cut by default: no faster (task.py)
    lines = (SAMPLES / name).read_bytes().splitlines(keepends=True)
    path = tmp_path / Path(name).name
    path.write_bytes(b"".join(b"this line is no log\n" if i % 13 == 4 else line for i, line in enumerate(lines)))
    options = Options(chunk_size=16 << 10)
    cut = task.partitions(discover([str(path)]), options)
    assert len(cut) >= 3 and all(p.span for p in cut)
    one = _hunt([path], tmp_path / "one", 1, (), options)
    seen = _tasks_seen(monkeypatch)
    two = _hunt([path], tmp_path / "two", 2, (), options)
    assert seen and sum(len(d) for d in one["dead"].values()) > 0
    assert one["stats"][0]["read"] == len(lines) and one["matches"].height and one["hits"].height
    _same(one, two)


def test_a_killed_worker_leaves_its_task_to_the_driver(tmp_path, small_inputs_too, monkeypatch):
    """The worker is killed while it runs its first task: the driver runs that task again; the result is the
    same as in one process."""
    one = _hunt(_inputs(tmp_path), tmp_path / "one", 1)
    killed: list = []
    taken = threading.Event()
    real_call = local.Worker.call

    def call(self, task):
        if task[0] == "run" and not killed:
            killed.append((self.proc, task[2].number))
            threading.Timer(0.05, self.proc.kill).start()  # while the worker is at the task
            taken.set()
        return real_call(self, task)

    monkeypatch.setattr(local.Worker, "call", call)
    ran_here: list = []
    _driver_waits(monkeypatch, taken, ran_here)
    two = _hunt(_inputs(tmp_path), tmp_path / "two", 2)
    proc, number = killed[0]
    assert proc.returncode is not None and proc.returncode < 0  # killed, not finished
    assert number in ran_here  # its task ran here
    _same(one, two)


def test_small_inputs_start_no_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("SOC_CONFIG", "")
    started: list = []
    monkeypatch.setattr(local, "Worker", lambda *a: started.append(a))
    _hunt([SAMPLES / "linux" / "auth.log", SAMPLES / "dns" / "dns.log"], tmp_path / "d", None)
    assert not started
    from soc.sources import discover

    assert local.wanted(discover([str(SAMPLES)]), None) == 0  # a few MB at most: one process
    assert local.wanted(discover([str(SAMPLES)]), 1) == 0


def test_auto_counts_the_cpus_other_work_leaves_free(monkeypatch):
    from soc.sources import Source

    big = [Source("a", 40 << 20, None), Source("b", 40 << 20, None)]
    monkeypatch.setattr(local, "cpus", lambda: 2)
    monkeypatch.setattr(local, "running", lambda: 0)
    assert local.wanted(big, None) == 1 and local.wanted(big, 1) == 0 and local.wanted(big, 3) == 2
    monkeypatch.setattr(local, "running", lambda: 1)  # one CPU busy with other work: this process takes the other
    assert local.wanted(big, None) == 0 and local.wanted(big, 2) == 1
    assert local.wanted([Source("a", 40 << 20, None)], 2) == 1  # one input of 2+ chunks: byte ranges
    assert local.wanted([Source("a", 20 << 20, None)], 2) == 0 and local.wanted([Source("-", None, None)], 2) == 0
    assert local.running() >= 0 and local.spare() >= 1
