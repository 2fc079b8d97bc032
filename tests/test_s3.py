"""Inputs in an S3-compatible object store (``soc hunt s3://bucket/prefix/``), against a real server: s3s-fs
(``cargo install s3s-fs@0.14.1 --features binary --locked``; .ci/run builds it), started here on a free loopback
port. The hunt of the objects gives the same matches, dead letters, counts and alerts (ids, counts, windows) as the
hunt of the same files on disk, in this process and on Ray (byte ranges of the objects read by the tasks); a
missing bucket or refused credentials are a clear error (exit 2), not a traceback.

Without the s3s-fs binary these tests skip; under CI=true they fail."""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from soc.hunt import HuntRequest, run_hunt
from soc.pipeline import Options
from soc.sinks.alert_store import AlertStore
from tests.conftest import CORPORA, IN_CI, ROOT, need
from tests.evtx_corpus import evtx_files
from tests.test_distributed_local import MATCH_KEYS, SAMPLES, _tasks_seen

BUCKET = "soc-test"
PREFIX = f"s3://{BUCKET}/logs/"
KEY, SECRET = "AKSOCTEST", "SKSOCTESTSECRET"
OPTIONS = Options(chunk_size=1 << 20)  # 1 MB chunks: the larger objects are cut in byte ranges on Ray


def _binary() -> str:
    found = os.environ.get("SOC_S3S_FS") or shutil.which("s3s-fs")
    cargo = Path.home() / ".cargo" / "bin" / "s3s-fs"
    if found is None and cargo.exists():
        found = str(cargo)
    if found is None:
        message = "s3s-fs not found (cargo install s3s-fs@0.14.1 --features binary --locked)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: .ci/run builds it")
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real s3s-fs server on a free loopback port, its data in a temporary folder; its endpoint URL."""
    binary = _binary()
    root = tmp_path_factory.mktemp("s3root")
    port = _free_port()
    log = open(root.parent / "s3s-fs.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([binary, "--access-key", KEY, "--secret-key", SECRET, "--host", "127.0.0.1",
                             "--port", str(port), str(root)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"s3s-fs did not start: {(root.parent / 's3s-fs.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def store(server, monkeypatch):
    """The environment pointing soc at the server (endpoint and credentials from the environment only)."""
    monkeypatch.setenv("SOC_S3_ENDPOINT", server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("SOC_CONFIG", "")
    return server


@pytest.fixture(scope="module")
def tree(server, tmp_path_factory):
    """Files on disk and the same files as objects under ``PREFIX``: sample_logs/, an access log with broken
    lines, and from the corpora a real Apache access log, a few .evtx, a Zeek log gzipped and one plain."""
    need(CORPORA / "evtx" / "evtx-to-mitre-attack", "EVTX corpus (../shared/corpora/evtx)")
    top = tmp_path_factory.mktemp("tree")
    shutil.copytree(SAMPLES, top / "samples", copy_function=shutil.copy)  # mtimes of now, as the objects'
    lines = (SAMPLES / "web" / "nginx" / "access.log").read_bytes().splitlines(keepends=True)
    (top / "broken_access.log").write_bytes(
        b"".join(line if i % 7 else b"not an access log line\n" for i, line in enumerate(lines)))
    (top / "apache").mkdir()
    shutil.copy(CORPORA / "logs" / "apache_combined_elastic_examples.log", top / "apache" / "access.log")
    (top / "evtx").mkdir()
    for path in evtx_files()[:12]:
        shutil.copy(path, top / "evtx" / path.name)
    (top / "zeek").mkdir()
    shutil.copy(CORPORA / "zeek" / "ssh.log.gz", top / "zeek" / "ssh.log.gz")
    (top / "zeek" / "dns.log").write_bytes(gzip.decompress((CORPORA / "zeek" / "dns.log.gz").read_bytes()))
    fs = _fs(server)
    fs.create_dir(BUCKET)
    for path in sorted(top.rglob("*")):
        if path.is_file():
            with fs.open_output_stream(f"{BUCKET}/logs/{path.relative_to(top)}") as out:
                out.write(path.read_bytes())
    return top


def _fs(endpoint: str):
    from pyarrow import fs

    return fs.S3FileSystem(access_key=KEY, secret_key=SECRET, endpoint_override=endpoint.split("://")[1],
                           scheme="http", region="us-east-1", allow_bucket_creation=True)


def _rules() -> list[str]:
    from soc.sigma.loader import default_rule_paths

    return [*map(str, default_rule_paths()), str(CORPORA / "sigma" / "rules" / "windows")]


def _hunt(inputs: list[str], data: Path, prefix: str, **how) -> dict:
    """A hunt and what it gave, the inputs' paths written relative to ``prefix`` (a folder or ``PREFIX``)."""
    how.setdefault("workers", 1)
    report = run_hunt(HuntRequest(inputs, str(data), rules=_rules(), options=OPTIONS, to_es=False, **how))
    assert report.exit_code == 0, report.errors

    def rel(frame: pl.DataFrame) -> pl.DataFrame:
        if "log.file.path" in frame.columns:
            frame = frame.with_columns(pl.col("log.file.path").cast(pl.String).str.replace(prefix, "", literal=True))
        if "evidence" in frame.columns:  # a correlation's records
            frame = frame.with_columns(pl.col("evidence").list.eval(pl.element().struct.with_fields(
                pl.field("log.file.path").str.replace(prefix, "", literal=True))))
        if "evidence.samples" in frame.columns:  # a detector's sample records, "path:line"
            frame = frame.with_columns(pl.col("evidence.samples").list.eval(
                pl.element().str.replace(prefix, "", literal=True)))
        return frame

    dead = [pl.read_parquet(f) for f in sorted((data / "dead_letters").glob("*.parquet"))]
    alerts = AlertStore(str(data)).query()
    stats = []
    for st in report.stats:
        row = {k: v for k, v in st.as_dict().items() if k != "seconds"}
        row["path"] = row["path"].replace(prefix, "")
        stats.append(row)
    return {
        "stats": stats,
        "matches": rel(report.sigma.frame()).sort(MATCH_KEYS, nulls_last=True),
        "events": report.sigma.events,
        "hits": rel(report.detectors.hits),
        "dead": rel(pl.concat(dead)).sort("log.file.path", "log.line", "log.offset") if dead else None,
        "alerts": sorted(zip(alerts.get_column("event.id"), alerts.get_column("event.count"),
                             alerts.get_column("event.start"), alerts.get_column("event.end"), strict=True)),
        "errors": report.errors,
    }


def _same(one: dict, two: dict) -> None:
    assert one["stats"] == two["stats"]
    assert one["matches"].equals(two["matches"]), (one["matches"], two["matches"])
    assert one["events"] == two["events"]
    assert one["hits"].equals(two["hits"])
    assert (one["dead"] is None and two["dead"] is None) or one["dead"].equals(two["dead"])
    assert one["alerts"] == two["alerts"]
    assert one["errors"] == two["errors"]


def test_objects_hunt_as_the_files_on_disk(tree, store, tmp_path):
    disk = _hunt([str(tree)], tmp_path / "disk", f"{tree}/")
    s3 = _hunt([PREFIX], tmp_path / "s3", PREFIX)
    assert len(disk["stats"]) == len(s3["stats"]) > 20
    assert sum(st["read"] for st in disk["stats"]) > 60_000  # the 10,000 Apache lines, 53 k DNS queries, ...
    assert disk["dead"].height > 100 and disk["matches"].height > 50 and len(disk["alerts"]) > 40
    assert {"evtx", "zeek", "apache", "samples"} <= {st["path"].split("/")[0] for st in s3["stats"]}
    _same(disk, s3)
    one = _hunt([str(tree / "apache" / "access.log")], tmp_path / "one", f"{tree}/")  # a single object
    two = _hunt([PREFIX + "apache/access.log"], tmp_path / "two", PREFIX)
    assert one["stats"][0]["read"] == 10_000 and one["stats"][0]["path"] == "apache/access.log"
    _same(one, two)


def test_objects_on_local_workers_as_the_files_on_disk(tree, store, tmp_path, monkeypatch):
    """``--workers``: worker processes read the objects (their local copies) as the tasks on Ray do."""
    from soc.distributed import local

    monkeypatch.setattr(local, "MIN_BYTES", 0)  # workers for inputs of any size
    disk = _hunt([str(tree)], tmp_path / "disk", f"{tree}/")
    seen = _tasks_seen(monkeypatch)
    s3 = _hunt([PREFIX], tmp_path / "s3", PREFIX, workers=2)
    assert seen  # a worker process read objects
    _same(disk, s3)


def test_objects_are_cut_in_byte_ranges_as_files(tree, store, monkeypatch):
    """On Ray the driver cuts a large object where it cuts the same file (ranged reads: the newlines at the cuts,
    the format, the Zeek header lines before each range), a compressed object or an .evtx whole."""
    from soc.distributed import task
    from soc.hunt import discover_inputs

    monkeypatch.setattr(task, "SPAN_CHUNKS", 2)
    on_disk = task.partitions(discover_inputs([str(tree)]), OPTIONS, engines=task.RAY_SPLIT_ENGINES)
    in_s3 = task.partitions(discover_inputs([PREFIX]), OPTIONS, engines=task.RAY_SPLIT_ENGINES)

    def cuts(parts, prefix):
        return [(s.path.replace(prefix, ""), s.start, s.end, s.format, s.prelude) for p in parts if p.span
                for s in p.sources]

    got = cuts(in_s3, PREFIX)
    assert got == cuts(on_disk, f"{tree}/")
    assert {path for path, *_ in got} == {"apache/access.log", "zeek/dns.log"}
    dns = [(start, pre) for path, start, _, _, pre in got if path == "zeek/dns.log"]
    assert len(dns) > 2 and dns[0] == (0, b"") and all(pre.startswith(b"#separator") for _, pre in dns[1:])
    assert len(got) > 4


def test_on_ray_as_on_disk(tree, store, tmp_path, monkeypatch):
    """One Ray test (a cluster takes 10-15 s to start): the objects hunted on Ray, their large ones in byte ranges
    that the tasks fetch, give what the one-process hunt of the files on disk gives."""
    try:
        import ray
    except ImportError:
        if IN_CI:
            pytest.fail("Ray is not installed (CI=true: pip install -e '.[test]' must install it)")
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    from soc.distributed import task

    monkeypatch.setattr(task, "SPAN_CHUNKS", 2)  # the driver cuts the partitions
    if ray.is_initialized():  # a cluster of another module's: its workers lack the store's environment
        ray.shutdown()
    # a new local cluster (not one another process started on the machine): its workers inherit this process's
    # environment, the endpoint and credentials
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        disk = _hunt([str(tree)], tmp_path / "disk", f"{tree}/")
        s3 = _hunt([PREFIX], tmp_path / "s3", PREFIX, ray="auto")
    finally:
        ray.shutdown()
    _same(disk, s3)


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soc", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=120)


def test_missing_bucket_and_bad_credentials_are_clear_errors(tree, store, tmp_path):
    env = {"SOC_DATA_DIR": str(tmp_path / "data")}
    missing = _cli("hunt", "s3://no-such-bucket/logs/", "--no-detectors", env=env)
    assert missing.returncode == 2, missing.stderr
    assert "s3://no-such-bucket/logs/" in missing.stderr and "Traceback" not in missing.stderr
    refused = _cli("hunt", PREFIX, "--no-detectors", env={**env, "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert refused.returncode == 2, refused.stderr
    assert "cannot list" in refused.stderr and "Traceback" not in refused.stderr
    key = _cli("hunt", PREFIX + "no/such/key.log", "--no-detectors", env=env)
    assert key.returncode == 2 and "no such file" in key.stderr and "Traceback" not in key.stderr
