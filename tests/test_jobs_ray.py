"""A job on Ray (``ray = "auto"`` in its ``[[jobs]]`` entry): `soc jobs run-once` over a log folder growing in two
steps stores exactly the alerts of the same job without Ray, with the same run records; the checkpoints and the
detector state carry from run to run, and a large appended window is cut in byte ranges from its checkpoint. And
real Zeek TSV logs cut in byte ranges that are Ray tasks (each with the header lines before it) give the local hunt's
result.

One local Ray cluster of 2 CPUs for the module (~10-15 s to start here). Without Ray installed the Ray test skips
(under CI=true it fails)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from soc.config import ConfigError, load_config
from tests.conftest import IN_CI, ROOT

try:
    import ray
except ImportError:  # the [ray] / [test] extra is not installed
    ray = None

SAMPLES = ROOT / "sample_logs"


@pytest.fixture(scope="module")
def local_ray():
    if ray is None:
        if IN_CI:
            pytest.fail("Ray is not installed (CI=true: pip install -e '.[test]' must install it)")
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _no_config(monkeypatch):
    monkeypatch.setenv("SOC_CONFIG", "")


def _config(tmp_path: Path, name: str, logs: Path, extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'data_dir = "{tmp_path / name}"\n' + textwrap.dedent(f"""
        [[jobs]]
        name = "logs"
        inputs = ["{logs}"]
        every = "1m"
        year = 2026
        chunk_mb = 1
        {extra}
        """), encoding="utf-8")
    return path


def test_ray_in_a_job_s_configuration(tmp_path):
    logs = tmp_path / "logs"
    assert load_config(_config(tmp_path, "a", logs, 'ray = "auto"')).job("logs").ray == "auto"
    assert load_config(_config(tmp_path, "b", logs, 'ray = "ray://head:10001"')).job("logs").ray == "ray://head:10001"
    assert load_config(_config(tmp_path, "c", logs)).job("logs").ray is None
    with pytest.raises(ConfigError, match="no Ray address"):
        load_config(_config(tmp_path, "d", logs, 'ray = "head"'))
    with pytest.raises(ConfigError, match="must be a str"):
        load_config(_config(tmp_path, "e", logs, "ray = true"))


def _run_once(cfg: Path) -> dict:
    from soc.cli import main

    done = CliRunner().invoke(main, ["jobs", "run-once", "logs", "--config", str(cfg), "--json"])
    assert done.exit_code == 0, done.output[-3000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def _alerts(data: Path):
    from soc.sinks.alert_store import AlertStore

    return (AlertStore(data).scan().select("event.id", "rule.id", "event.count", "event.start", "event.end")
            .sort("event.id").collect())


def test_a_job_on_ray_stores_the_alerts_of_the_job_without_it(tmp_path, local_ray, monkeypatch):
    """sample_logs' text logs and a generated access log of ~3 MB (some lines not parsed) grow in two steps (cut
    mid-line); after each,
    the same job runs once without Ray and once on Ray, each with its own data folder (checkpoints, state,
    store). Ray's run cuts the access log's appended window in byte ranges (1 MB chunks, one a range)."""
    from bench.gen_web import generate
    from soc.distributed import task

    monkeypatch.setattr(task, "SPAN_CHUNKS", 1)
    cut = []
    partitions = task.partitions

    def seen(sources, options, *args, **kw):
        got = partitions(sources, options, *args, **kw)
        cut.append([p for p in got if p.span])
        return got

    monkeypatch.setattr(task, "partitions", seen)
    big = tmp_path / "made.log"
    generate(str(big), 24_000)
    lines = big.read_bytes().splitlines(keepends=True)
    big.write_bytes(b"".join(b"not an access log line\n" if i % 997 == 3 else x for i, x in enumerate(lines)))
    files = [(p, p.relative_to(SAMPLES)) for p in sorted(SAMPLES.rglob("*")) if p.is_file()]
    files.append((big, Path("web") / "big_access.log"))
    logs = tmp_path / "logs"
    local, on_ray = _config(tmp_path, "local", logs), _config(tmp_path, "ray", logs, 'ray = "auto"')
    records = []
    for step in range(2):
        for src, rel in files:
            data = src.read_bytes()
            target = logs / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "ab") as fh:
                fh.write(data[len(data) * step // 2: len(data) * (step + 1) // 2])
        cut.clear()
        one = _run_once(local)
        assert not cut  # the local job: no Ray, its inputs not cut
        two = _run_once(on_ray)
        assert len(cut) == 1 and len(cut[0]) >= 2 and {p.sources[0].path for p in cut[0]} == {str(logs / "web" /
                                                                                                   "big_access.log")}
        assert all(p.sources[0].start >= (0 if step == 0 else 1 << 20) for p in cut[0])  # from the checkpoint
        records.append((one, two))
    for one, two in records:
        for key in ("status", "files", "bytes", "records", "parsed", "dead", "matches", "hits", "alerts",
                    "new_alerts", "retracted", "state"):
            assert one.get(key) == two.get(key), (key, one.get(key), two.get(key))
    assert records[1][0]["records"] > 10_000 and records[1][0]["dead"] > 0
    assert ray.is_initialized()  # the caller's connection is left as it was
    job, on = _alerts(tmp_path / "local"), _alerts(tmp_path / "ray")
    assert job.height >= 40 and job.get_column("rule.id").n_unique() >= 15
    assert job.equals(on), job.join(on, on="event.id", how="full", suffix="_ray")


def test_real_zeek_logs_cut_in_ranges_on_ray_as_local(tmp_path, local_ray, monkeypatch):
    """Two real Zeek TSV logs in one file (rdp then weird: two header blocks), some lines of a wrong field count,
    cut in byte ranges that are Ray tasks, each with the header lines before it: the local hunt's result."""
    import gzip

    import polars as pl

    from soc.distributed import task
    from soc.hunt import HuntRequest, run_hunt
    from soc.pipeline import Options
    from tests.conftest import CORPORA, need
    from tests.test_distributed_local import MATCH_KEYS, _same

    need(CORPORA / "zeek" / "weird.log.gz", "Zeek logs (../shared/corpora/zeek)")
    monkeypatch.setattr(task, "SPAN_CHUNKS", 2)
    cut = []
    partitions = task.partitions

    def seen(sources, options, *args, **kw):
        got = partitions(sources, options, *args, **kw)
        cut.append(got)
        return got

    monkeypatch.setattr(task, "partitions", seen)
    blocks = [gzip.decompress((CORPORA / "zeek" / f"{name}.log.gz").read_bytes()).splitlines(keepends=True)
              for name in ("rdp", "weird")]
    path = tmp_path / "zeek.log"
    path.write_bytes(b"".join(b"".join(line if i % 1000 != 500 else b"only\ttwo fields\n" for i, line in enumerate(b))
                              for b in blocks))
    got = []
    for name, how in (("one", {}), ("two", {"ray": "auto"})):
        data = tmp_path / name
        report = run_hunt(HuntRequest([str(path)], str(data), options=Options(chunk_size=128 << 10), to_es=False,
                                      workers=1, **how))
        assert report.exit_code == 0, report.errors
        from soc.sinks.alert_store import AlertStore

        alerts = AlertStore(str(data)).query()
        got.append({
            "stats": [{k: v for k, v in st.as_dict().items() if k != "seconds"} for st in report.stats],
            "matches": report.sigma.frame().sort(MATCH_KEYS, nulls_last=True),
            "events": report.sigma.events, "hits": report.detectors.hits,
            "detector_events": report.detectors.events,
            "failures": ([f.rule_id for f in report.sigma.failures], [f.reason for f in report.detectors.failures]),
            "dead": {f.name: pl.read_parquet(f) for f in sorted((data / "dead_letters").glob("*.parquet"))},
            "alerts": sorted(zip(alerts.get_column("event.id"), alerts.get_column("event.count"), strict=True)),
            "errors": report.errors,
        })
    assert len(cut) == 1 and len(cut[0]) >= 10 and all(p.span for p in cut[0])
    assert all(b"#fields" in p.sources[0].prelude for p in cut[0][1:])
    one, two = got
    assert one["stats"][0]["format"] == "zeek" and sum(len(d) for d in one["dead"].values()) > 20
    _same(one, two)
