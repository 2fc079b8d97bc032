"""What soc writes on disk (issue 17): private whatever the umask, readable after kill -9, no two runs or
processes overwriting or doubling each other's files."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from soc.sinks.alert_store import AlertStore
from tests.conftest import ROOT

LINE = '10.0.0.{i} - - [10/Oct/2025:13:55:{s:02d} +0700] "GET /x{i} HTTP/1.1" 404 5 "-" "x"\n'


def soc(*args: str, stdin: bytes | None = None, umask: int = 0o022) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "soc", *args], input=stdin, capture_output=True, env=env,
                          timeout=300, check=False, preexec_fn=lambda: os.umask(umask))  # noqa: PLW1509


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def lines(n: int, bad_every: int = 0) -> bytes:
    rows = [("not a log line\n" if bad_every and i % bad_every == 0 else LINE.format(i=i % 250, s=i % 60))
            for i in range(n)]
    return "".join(rows).encode()


# -- item 2: private data folder and parse output ----------------------------------------------------------------

def test_data_dir_and_parse_output_are_private_whatever_the_umask(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(lines(50, bad_every=10) + b'10.0.0.9 - - [10/Oct/2025:13:55:36 +0700] "GET /.env HTTP/1.1" 404 5 '
                    b'"-" "x"\n' * 30)
    for umask, deep in ((0o022, "deep"), (0o000, "open")):
        res = soc("parse", str(log), "-o", str(tmp_path / deep / "out"), umask=umask)
        assert res.returncode == 0, res.stderr.decode()
        got = modes(tmp_path / deep)
        assert any(k.endswith(".parquet") for k in got) and any("dead_letters" in k for k in got)
        assert {k: m for k, m in got.items() if m != (0o700 if (tmp_path / k).is_dir() else 0o600)} == {}
    data = tmp_path / "data"
    res = soc("hunt", str(log), str(ROOT / "sample_logs" / "linux" / "auth.log"), "--data-dir", str(data),
              "--no-es")
    assert res.returncode == 0, res.stderr.decode()
    got = modes(data)
    assert any("alerts/alerts-" in k for k in got) and any("sigma_matches" in k for k in got)
    assert {k: m for k, m in got.items() if m != (0o700 if (tmp_path / k).is_dir() else 0o600)} == {}
    assert b"warning:" not in res.stderr


def test_es_dead_letters_are_private(tmp_path):
    from soc.sinks.elasticsearch import DeadLetters

    old = os.umask(0o022)
    try:
        DeadLetters(tmp_path / "data").append([("i", "id", 500, "boom", "{}")])
    finally:
        os.umask(old)
    assert modes(tmp_path / "data") == {"data": 0o700, "data/es_dead_letters.ndjson": 0o600}


def test_an_open_data_folder_is_warned_about(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    log = tmp_path / "access.log"
    log.write_bytes(lines(5))
    res = soc("hunt", str(log), "--data-dir", str(data), "--no-es", "--no-detectors")
    assert res.returncode == 0, res.stderr.decode()
    warnings = [x for x in res.stderr.decode().splitlines() if x.startswith("warning:")]
    assert len(warnings) == 1 and str(data) in warnings[0] and "readable by others" in warnings[0]
    assert stat.S_IMODE(data.stat().st_mode) == 0o755  # the user's own folder: told, not changed
    res = soc("parse", str(log), "-o", str(data / "out"))
    assert [x for x in res.stderr.decode().splitlines() if x.startswith("warning:")] == []  # out/ is new: private


# -- item 4: kill -9 mid-run leaves readable Parquet -------------------------------------------------------------

@pytest.mark.parametrize("command", ["parse", "hunt"])
def test_killed_mid_run_leaves_readable_parquet(tmp_path, command):
    from soc.sinks.parquet import read_family

    out = tmp_path / "out"
    where = ["-o", str(out)] if command == "parse" else ["--data-dir", str(out), "--no-detectors", "--no-es"]
    first = tmp_path / "first.log"
    first.write_bytes(lines(700, bad_every=7))  # read whole before the kill: 600 rows, 100 dead letters
    proc = subprocess.Popen([sys.executable, "-m", "soc", command, str(first), "-", "--format", "web_access",
                             "--chunk-mb", "1", *where], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        block = lines(40_000, bad_every=7)  # ~3 MB a block on standard input: 1 MB chunks, rows and dead letters
        deadline = time.monotonic() + 240
        written = False
        while time.monotonic() < deadline and not written:
            proc.stdin.write(block)
            proc.stdin.flush()
            time.sleep(0.5)
            files = [p for p in out.rglob("*") if p.is_file() and p.stat().st_size > 0 and "first.log" not in p.name]
            written = len(files) >= (2 if command == "parse" else 1)  # its rows (parse only) and dead letters
        assert written, f"soc {command} wrote nothing of standard input"
        proc.stdin.write(block)  # mid-run: more rows arriving, the files still open
        proc.stdin.flush()
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    # the files of the finished input are whole; those of the input cut short are not where readers look
    assert read_family(out, "dead_letters").collect().height == 100
    folders = [out / "dead_letters"]
    if command == "parse":
        assert read_family(out, "web").collect().height == 600
        folders += list((out / "web").iterdir())
    for path in out.rglob("*.parquet"):
        pl.read_parquet(path)
    for folder in folders:
        pl.read_parquet(folder)  # a dataset folder read whole (every file under it) holds no partial file
    # a later run into the same folder finishes its own files and removes what the dead run left behind
    res = soc(command, "-", "--format", "web_access", *where, stdin=lines(100, bad_every=7))
    assert res.returncode == 0, res.stderr.decode()
    assert list((out / ".tmp").iterdir()) == []
    assert read_family(out, "dead_letters").collect().height == 100 + 15


def test_only_temporary_files_of_dead_processes_of_this_host_are_removed(tmp_path):
    from soc.private import TEMP_DIR, _host, new_temp, prepare

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    mine = new_temp(tmp_path / "web" / "a.parquet", tmp_path)  # this process: still writing
    dead = mine.with_name(mine.name.replace(f".{os.getpid()}-", f".{gone.stdout.strip()}-"))
    other = mine.with_name(mine.name.replace(f".{_host()}.", ".another-host."))
    dead.touch()
    other.touch()
    assert prepare(tmp_path) is None
    assert sorted((tmp_path / TEMP_DIR).iterdir()) == sorted([mine, other])


def test_readers_ignore_files_being_written(tmp_path):
    from soc.sinks.parquet import ParquetSink, read_family

    sink = ParquetSink(tmp_path)
    frame = pl.DataFrame({"@timestamp": [1], "a": ["x"]})
    sink.write("/logs/a.log", "web", "nginx.access", frame)
    with pytest.raises(FileNotFoundError):  # open, not complete: not there yet
        read_family(tmp_path, "web")
    sink.close()
    assert read_family(tmp_path, "web").collect().height == 1


# -- item 5: two hunts into one data folder -----------------------------------------------------------------------

def _keep_at(data_dir: str, start: float, tag: str) -> None:
    from soc.cli import _keep
    from soc.sinks.matches import MatchFile

    frame = pl.DataFrame({"rule.id": [tag] * 1000, "n": list(range(1000))})
    matches = MatchFile(data_dir)
    time.sleep(max(0.0, start - time.time()))
    matches.write(frame)
    matches.close()
    _keep(data_dir, "detector_hits", "detectors", frame)


def test_two_hunts_keep_both_their_matches_and_hits(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    start = int(time.time()) + 3.2  # both in the same second, as two hunts finishing together
    procs = [ctx.Process(target=_keep_at, args=(str(tmp_path), start, tag)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    for folder in ("sigma_matches/sigma", "detector_hits/detectors"):
        files = sorted((tmp_path / folder).glob("*.parquet"))
        assert len(files) == 2, folder
        kept = pl.concat([pl.read_parquet(f) for f in files])
        assert kept.group_by("rule.id").len().sort("rule.id").rows() == [("a", 1000), ("b", 1000)]


# -- item 6: two processes appending to the alert store at once ---------------------------------------------------

def _append(data_dir: str, alerts_path: str, barrier, results) -> None:
    alerts = pl.read_parquet(alerts_path)
    store = AlertStore(data_dir)
    barrier.wait()
    results.put(store.append(alerts))


def test_alert_store_append_is_atomic_across_processes(tmp_path):
    from soc.alerts import build_alerts
    from tests.test_alerts import at, hits

    alerts = build_alerts(hits([{"@timestamp": at(i % 600), "source.ip": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"}
                                for i in range(20_000)]))
    total = alerts.get_column("event.id").n_unique()
    path = tmp_path / "alerts.parquet"
    alerts.write_parquet(path)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_append, args=(str(tmp_path / "data"), str(path), barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    new = sorted(results.get(timeout=5) for _ in procs)
    stored = pl.read_parquet(AlertStore(tmp_path / "data").files())
    assert stored.height == stored.get_column("event.id").n_unique() == total
    assert sum(new) == total and new[:2] == [0, 0]
