"""Alerts into a real Elasticsearch (the integ-test distribution started by scripts/es, one per session).

The server runs with security on (user ``elastic``) so that wrong credentials are really refused. Without
Java/Maven, or when it cannot start, these tests skip with the reason; under CI=true they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from soc.alerts import build_alerts
from soc.config import ESConfig, load_config
from soc.sinks import elasticsearch as es
from soc.sinks.alert_store import AlertStore
from tests.conftest import IN_CI, ROOT

PORT = int(os.environ.get("SOC_TEST_ES_PORT", "9250"))
URL = f"http://127.0.0.1:{PORT}"
PASSWORD = "soc-test-password"
HOME = Path(os.environ.get("SOC_TEST_ES_HOME", f"/tmp/soc-es-test-{PORT}"))
SCRIPT = ROOT / "scripts" / "es"
ENV = {**os.environ, "SOC_ES_PORT": str(PORT), "SOC_ES_HOME": str(HOME), "SOC_ES_PASSWORD": PASSWORD}
pytestmark = pytest.mark.slow


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"Elasticsearch test server: {reason} (CI=true: it must run)")
    pytest.skip(f"Elasticsearch test server: {reason}")


def _script(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([str(SCRIPT), *args], env=ENV, capture_output=True, text=True, timeout=400, check=False)
    if check and res.returncode != 0:
        _unavailable(f"scripts/es {' '.join(args)} failed ({res.returncode}): {res.stderr[-1500:]}")
    return res


@pytest.fixture(scope="session")
def server():
    """The test server's URL: started (fetched first if needed) for the session and stopped at its end."""
    for tool in ("java", "curl"):
        if not shutil.which(tool):
            _unavailable(f"{tool} not found (Java 17+ and curl are needed)")
    started = _script("status", check=False).returncode != 0
    if started:
        _script("start")
    yield URL
    if started:
        _script("stop", check=False)


def config(**overrides) -> ESConfig:
    values = {"url": URL, "username": "elastic", "password": PASSWORD, "replicas": 0, "index_prefix": "t-alerts",
              "initial_backoff": 0.05, "max_backoff": 0.2, "timeout": 60.0, **overrides}
    return ESConfig(**values)


@pytest.fixture
def es_cfg(server, request):
    """A config with an index prefix of this test's own (its indices are deleted before and after)."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    cfg = config(index_prefix=name)
    client = es.connect(cfg)
    client.indices.delete(index=f"{name}-*", allow_no_indices=True, expand_wildcards="all")
    es.setup(client, cfg)
    yield cfg
    with contextlib.suppress(es.ESError):
        es.connect(cfg).indices.delete(index=f"{name}-*", allow_no_indices=True, expand_wildcards="all")


def hunt_hits(tmp_path: Path) -> pl.DataFrame:
    """A small real hunt: the sample auth log through the pipeline, failed logins as the hits of one rule."""
    from soc import pipeline
    from soc.sinks.parquet import ParquetSink, read_family
    from soc.sources import discover

    pipeline.run(discover([str(ROOT / "sample_logs" / "linux" / "auth.log")]), ParquetSink(tmp_path / "parsed"),
                 pipeline.Options(year=2026))
    auth = read_family(tmp_path / "parsed", "authentication").collect()
    failed = auth.filter(pl.col("event.outcome") == "failure")
    assert failed.height > 20
    return failed.with_columns(pl.lit("soc-ssh-failed-login").alias("rule.id"),
                               pl.lit("SSH login failure").alias("rule.name"), pl.lit("soc").alias("rule.author"),
                               pl.lit("low").alias("rule.level"), pl.lit(["T1110"]).alias("threat.technique.id"))


def many_alerts(n: int, month: int = 10) -> pl.DataFrame:
    start = datetime(2026, month, 1, tzinfo=UTC)
    return build_alerts(pl.DataFrame({
        "@timestamp": [start + timedelta(seconds=37 * i) for i in range(n)],
        "rule.id": "bulk", "rule.name": "Bulk rule", "rule.level": "medium",
        "source.ip": [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(n)],
    }, schema_overrides={"@timestamp": pl.Datetime("us", "UTC")}))


def all_docs(client, prefix: str) -> list[tuple[str, str, dict]]:
    client.indices.refresh(index=f"{prefix}-*")
    res = client.search(index=f"{prefix}-*", size=10_000, sort=[{"event.id": "asc"}], query={"match_all": {}})
    return [(h["_index"], h["_id"], h["_source"]) for h in res["hits"]["hits"]]


def test_sharded_delivery_indexes_every_share_once(es_cfg, tmp_path, monkeypatch):
    """Issue 17 item 10: a large hunt's alerts are built, stored and indexed one share at a time; the
    documents are those of one delivery and the reports of the shares add up."""
    from soc.config import Config
    from soc.sinks.delivery import deliver

    cfg = Config(data_dir=str(tmp_path / "data"), elasticsearch=es_cfg)
    hits = hunt_hits(tmp_path)
    want = build_alerts(hits)
    monkeypatch.setattr("soc.alerts.build.SHARE_HITS", max(1, hits.height // 3))
    out = deliver(lambda: [hits], cfg, rows=hits.height)
    assert out.error is None and out.alerts is None and out.count == out.stored == want.height > 3
    assert (out.index.indexed, out.index.duplicates, out.index.dead) == (want.height, 0, 0)
    docs = all_docs(es.connect(es_cfg), es_cfg.index_prefix)
    assert [d[1] for d in docs] == sorted(want["event.id"])


def test_same_hunt_twice_gives_exactly_the_same_documents(es_cfg, tmp_path):
    from soc.config import Config
    from soc.sinks.delivery import deliver

    cfg = Config(data_dir=str(tmp_path / "data"), elasticsearch=es_cfg)
    hits = hunt_hits(tmp_path)
    first = deliver(hits, cfg)
    assert first.error is None and first.alerts.height > 0
    n = first.alerts.height
    assert (first.index.indexed, first.index.duplicates, first.index.dead) == (n, 0, 0)
    client = es.connect(es_cfg)
    docs = all_docs(client, es_cfg.index_prefix)
    second = deliver(hunt_hits(tmp_path), cfg)
    assert (second.index.indexed, second.index.duplicates, second.index.dead) == (0, n, 0)
    assert second.stored == 0 and AlertStore(cfg.data_dir).query().height == n
    again = all_docs(client, es_cfg.index_prefix)
    assert again == docs and len(docs) == n
    assert {d[1] for d in docs} == set(first.alerts.get_column("event.id"))
    assert all(idx == f"{es_cfg.index_prefix}-{src['@timestamp'][:4]}.{src['@timestamp'][5:7]}"
               for idx, _, src in docs)
    mapping = client.indices.get_mapping(index=f"{es_cfg.index_prefix}-*")
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["source"]["properties"]["ip"]["type"] == "ip"
    assert props["@timestamp"]["type"] == "date" and props["event"]["properties"]["risk_score"]["type"] == "float"
    assert not (tmp_path / "data" / es.DEAD_LETTER).exists()


def test_server_killed_mid_run_then_replay_gives_the_exact_count(es_cfg, tmp_path):
    """The server is killed mid-run. The password is in the URL (issue 17 item 1: it is in no dead letter, report
    or error line), and the run covers two months, the first indexed in full before the kill (item 7: replay
    has no dead letter for that index, yet puts its refresh back)."""
    n_sep, n = 2_000, 20_000
    alerts = pl.concat([many_alerts(n_sep, month=9), many_alerts(n - n_sep)])
    es_cfg.url, es_cfg.username, es_cfg.password = URL.replace("//", f"//elastic:{PASSWORD}@"), None, None
    es_cfg.chunk_size, es_cfg.workers = 250, 1  # many small requests: the kill lands mid-run even on a fast machine
    client = es.connect(es_cfg)
    pid = int((HOME / "es.pid").read_text())
    killed = threading.Event()

    def kill_when_started():
        watcher = es.connect(es_cfg)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                stats = watcher.indices.stats(index=f"{es_cfg.index_prefix}-*", metric="indexing")
                if stats["_all"]["primaries"].get("indexing", {}).get("index_total", 0) >= 3_000:
                    break
            except Exception:  # noqa: BLE001, S110 - the index may not exist yet
                pass
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    report = es.index_alerts(client, alerts, tmp_path, es_cfg)
    killer.join()
    assert killed.is_set()
    cli = __import__("soc.cli", fromlist=["main"]).main
    try:
        assert report.error and "cannot connect" in report.error
        assert 0 < report.indexed < n and report.duplicates == 0
        assert report.indexed + report.dead == n                  # each alert is indexed or dead-lettered
        assert es.DeadLetters(tmp_path).count() == report.dead
        letters = (tmp_path / es.DEAD_LETTER).read_text(encoding="utf-8")
        assert PASSWORD not in letters and PASSWORD not in report.error and "elastic:***@" in report.error
        assert f'"index": "{es_cfg.index_prefix}-2026.09"' not in letters  # September was indexed in full
        # the server is down: replay fails cleanly and keeps everything
        down = CliRunner().invoke(cli, ["es", "replay", "--data-dir", str(tmp_path)], env=_cli_env(es_cfg))
        assert down.exit_code == 3 and "cannot connect" in down.stderr and PASSWORD not in down.stderr
        assert es.DeadLetters(tmp_path).count() == report.dead
    finally:
        for _ in range(100):  # the pid file of a killed server stays; wait for the process to be gone
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        _script("start")
    result = CliRunner().invoke(cli, ["es", "replay", "--data-dir", str(tmp_path), "--json"], env=_cli_env(es_cfg))
    assert result.exit_code == 0, result.output + result.stderr
    assert PASSWORD not in result.output + result.stderr
    client = es.connect(es_cfg)
    assert es.count(client, es_cfg.index_prefix) == n
    assert es.DeadLetters(tmp_path).count() == 0
    from elasticsearch.helpers import scan

    ids = {h["_id"] for h in scan(client, index=f"{es_cfg.index_prefix}-*", _source=False)}
    assert ids == set(alerts.get_column("event.id"))
    for month in ("09", "10"):  # both, although only October had dead letters
        assert _refresh_interval(client, f"{es_cfg.index_prefix}-2026.{month}") == es.REFRESH, month
    assert not (tmp_path / es.REFRESH_STATE).exists()


def _cli_env(cfg: ESConfig, **extra) -> dict:
    return {"SOC_ES_URL": cfg.url, "SOC_ES_USERNAME": cfg.username or "", "SOC_ES_PASSWORD": cfg.password or "",
            "SOC_ES_INDEX_PREFIX": cfg.index_prefix, "SOC_ES_REPLICAS": "0", "SOC_CONFIG": "", **extra}


def test_mapping_rejection_is_dead_lettered_with_its_reason_and_the_rest_indexes(es_cfg, tmp_path):
    import json

    alerts = many_alerts(50)
    bad_id = alerts.get_column("event.id")[7]
    broken = alerts.with_columns(pl.when(pl.col("event.id") == bad_id).then(pl.lit("very high"))
                                 .otherwise(pl.col("event.risk_score").cast(pl.String)).alias("event.risk_score"))
    client = es.connect(es_cfg)
    report = es.index_alerts(client, broken, tmp_path, es_cfg)
    assert (report.indexed, report.dead, report.error) == (49, 1, None)
    (line,) = (tmp_path / es.DEAD_LETTER).read_text(encoding="utf-8").splitlines()
    rec = json.loads(line)
    assert rec["id"] == bad_id and rec["status"] == 400 and rec["index"] == f"{es_cfg.index_prefix}-2026.10"
    assert "event.risk_score" in rec["reason"] and "very high" in rec["reason"]
    assert rec["source"]["event"]["risk_score"] == "very high" and rec["source"]["event"]["id"] == bad_id
    assert es.count(client, es_cfg.index_prefix) == 49
    # replaying a document the template refuses fails again and stays dead-lettered (never dropped)
    again = es.replay(client, tmp_path, es_cfg)
    assert (again.indexed, again.dead) == (0, 1) and es.DeadLetters(tmp_path).count() == 1


def test_non_ip_addresses_are_indexed_not_rejected(es_cfg, tmp_path):
    hits = pl.DataFrame({"@timestamp": [datetime(2026, 11, 2, tzinfo=UTC)] * 3, "rule.id": "r", "rule.name": "r",
                         "rule.level": "high", "source.ip": ["fw-core-01", "2001:db8::1", "198.51.100.4"]},
                        schema_overrides={"@timestamp": pl.Datetime("us", "UTC")})
    client = es.connect(es_cfg)
    report = es.index_alerts(client, build_alerts(hits), tmp_path, es_cfg)
    assert (report.indexed, report.dead) == (3, 0)
    client.indices.refresh(index=f"{es_cfg.index_prefix}-*")
    found = client.search(index=f"{es_cfg.index_prefix}-*", query={"term": {"source.address": "fw-core-01"}})
    assert found["hits"]["total"]["value"] == 1
    v6 = client.search(index=f"{es_cfg.index_prefix}-*", query={"term": {"source.ip": "2001:db8::/32"}})
    assert v6["hits"]["total"]["value"] == 1


def test_detector_evidence_and_related_fields_are_indexed_and_searchable(es_cfg, tmp_path):
    """Issue 19: the values that made a detector's hits, and ECS related.*, in the template and searchable:
    related.ip as an ip (a CIDR query finds it), the accounts and the evidence values as keywords."""
    hits = pl.DataFrame({
        "@timestamp": [datetime(2026, 11, 3, tzinfo=UTC)] * 2, "rule.id": ["sweep", "brute"],
        "rule.name": ["Host sweep", "SSH brute force"], "rule.level": "medium",
        "source.ip": ["10.0.3.33", "203.0.113.45"], "evidence.field": ["destination.ip", "user.name"],
        "evidence.values": [["10.9.0.1", "10.9.0.2", "fd00::7"], ["admin", "oracle"]]},
        schema_overrides={"@timestamp": pl.Datetime("us", "UTC")})
    client = es.connect(es_cfg)
    report = es.index_alerts(client, build_alerts(hits), tmp_path, es_cfg)
    assert (report.indexed, report.dead) == (2, 0)
    client.indices.refresh(index=f"{es_cfg.index_prefix}-*")
    props = next(iter(client.indices.get_mapping(index=f"{es_cfg.index_prefix}-*").values()))["mappings"]["properties"]
    assert props["related"]["properties"]["ip"]["type"] == "ip"
    assert props["related"]["properties"]["user"]["type"] == "keyword"
    assert props["evidence"]["properties"]["values"]["type"] == "keyword"

    def ids(query):
        res = client.search(index=f"{es_cfg.index_prefix}-*", query=query)
        return sorted(h["_source"]["rule"]["id"] for h in res["hits"]["hits"])

    assert ids({"term": {"related.ip": "10.9.0.0/24"}}) == ["sweep"]
    assert ids({"term": {"related.ip": "fd00::/8"}}) == ["sweep"]
    assert ids({"term": {"related.user": "oracle"}}) == ["brute"]
    assert ids({"term": {"evidence.values": "admin"}}) == ["brute"]


@pytest.mark.parametrize("case, env, message", [
    ("wrong URL", {"SOC_ES_URL": f"{URL}/not-here"}, "answered 400"),
    ("server down", {"SOC_ES_URL": "http://127.0.0.1:9"}, "cannot connect to Elasticsearch at http://127.0.0.1:9"),
    ("wrong credentials", {"SOC_ES_PASSWORD": "wrong"}, "rejected the credentials (401)"),
    ("not a URL", {"SOC_ES_URL": "es.local"}, "invalid Elasticsearch URL"),
])
def test_bad_configuration_is_one_clear_error_and_alerts_stay_in_the_store(server, tmp_path, capsys, case, env,
                                                                            message, monkeypatch):
    from soc.cli import deliver_alerts

    for key, value in _cli_env(config(index_prefix="t-bad"), **env).items():
        monkeypatch.setenv(key, value)
    hits = hunt_hits(tmp_path)
    capsys.readouterr()
    code = deliver_alerts(hits, data_dir=str(tmp_path / "data"), to_es=True)
    err = capsys.readouterr().err
    assert code == 3, case
    assert err.count("error:") == 1 and message in err and "Traceback" not in err
    assert AlertStore(tmp_path / "data").query().height == build_alerts(hits).height > 0
    # the commands that need the server say the same, with the same exit code
    from soc.cli import main

    res = CliRunner().invoke(main, ["es", "setup"], env=dict(os.environ))
    assert res.exit_code == 3 and message in res.stderr and res.stderr.count("error:") == 1


def test_cli_setup_index_and_list(es_cfg, tmp_path):
    from soc.cli import main
    from soc.config import Config
    from soc.sinks.delivery import deliver

    data = tmp_path / "data"
    delivered = deliver(hunt_hits(tmp_path), Config(data_dir=str(data)), to_es=False)
    n = delivered.alerts.height
    env = _cli_env(es_cfg, SOC_DATA_DIR=str(data))
    runner = CliRunner()
    res = runner.invoke(main, ["es", "setup"], env=env)
    assert res.exit_code == 0 and "ready" in res.output
    res = runner.invoke(main, ["es", "index", "--json"], env=env)
    assert res.exit_code == 0, res.output + res.stderr
    assert f'"indexed": {n}' in res.output
    res = runner.invoke(main, ["es", "index"], env=env)
    assert res.exit_code == 0 and f"0 indexed, {n} already there" in res.output
    assert es.count(es.connect(es_cfg), es_cfg.index_prefix) == n
    listed = runner.invoke(main, ["alerts", "--json"], env=env)
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == n
    table = runner.invoke(main, ["alerts", "--limit", "3"], env={**env, "COLUMNS": "200"})
    assert table.exit_code == 0 and "SSH login failure" in table.output


def test_config_reads_the_environment_for_the_server(server):
    cfg = load_config(env={"SOC_ES_URL": URL, "SOC_ES_USERNAME": "elastic", "SOC_ES_PASSWORD": PASSWORD})
    assert es.connect(cfg.elasticsearch).cluster.health()["status"] in ("green", "yellow")


def test_tls_is_verified_by_default_and_auth_comes_from_the_config():
    client = es.make_client(ESConfig(url="https://es.soc.example:9200", api_key="a2V5"))
    node = client.transport.node_pool.all()[0].config
    assert node.verify_certs is True and node.scheme == "https"
    assert client._headers["authorization"] == "ApiKey a2V5"
    off = es.make_client(ESConfig(url="https://es.soc.example:9200", verify_certs=False, username="soc",
                                  password="pw"))
    assert off.transport.node_pool.all()[0].config.verify_certs is False
    assert off._headers["authorization"].startswith("Basic ")
    with pytest.raises(es.ESError, match="no Elasticsearch URL configured"):
        es.make_client(ESConfig())


def _nested(row: dict) -> dict:
    out: dict = {}
    for name, value in row.items():
        if value is None:
            continue
        node = out
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def test_documents_are_nested_ecs_json_without_nulls_and_with_escapes():
    import json

    alerts = many_alerts(5).with_columns(
        pl.Series("rule.name", ['quote " back \\ tab \t nul \x00', "Tấn công dò mật khẩu", None, "x", "y"]),
        pl.Series("event.risk_score", [float("nan"), 1.5, None, 2.0, 3.0]))
    docs = es.documents(alerts, "p")
    assert docs.columns == ["index", "id", "source"] and docs.height == 5
    expected = alerts.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).to_dicts()
    for source, row in zip(docs.get_column("source"), expected, strict=True):
        got = json.loads(source)
        want = _nested(row)
        risk = want["event"].get("risk_score", 0.0)
        if risk != risk:  # NaN is not JSON: it becomes null
            want["event"]["risk_score"] = None
        assert got == want
        assert "null" not in source.replace('"risk_score":null', "")  # null fields are left out, not sent
    assert json.loads(docs[0, "source"])["rule"]["name"] == 'quote " back \\ tab \t nul \x00'
    assert "user" not in json.loads(docs[0, "source"])  # an object whose fields are all null is left out
    assert docs.get_column("index").to_list() == ["p-2026.10"] * 5
    with pytest.raises(ValueError, match="null event.id"):
        es.documents(alerts.with_columns(pl.lit(None, pl.String).alias("event.id")), "p")


def test_bulk_requests_are_cut_by_count_and_by_bytes(monkeypatch):
    import json

    docs = es.documents(many_alerts(1000), "p")
    cfg = ESConfig(chunk_size=300)
    chunks = list(es._chunks(docs, cfg))
    assert [c.docs.height for c in chunks] == [300, 300, 300, 100]
    monkeypatch.setattr(es, "MAX_CHUNK_BYTES", 50_000)
    chunks = list(es._chunks(docs, cfg))
    assert all(len(c.body) <= 50_000 + 2_000 for c in chunks) and len(chunks) > 4
    lines = b"".join(c.body for c in chunks).decode().splitlines()
    assert len(lines) == 2000  # an action and a source per document, each exactly once, in order
    actions = [json.loads(line)["create"] for line in lines[::2]]
    assert [a["_id"] for a in actions] == docs.get_column("id").to_list()
    assert [json.loads(line) for line in lines[1::2]] == [json.loads(s) for s in docs.get_column("source")]


def _refresh_interval(client, index: str):
    got = client.indices.get_settings(index=index, name="index.refresh_interval", flat_settings=True)
    return got[index]["settings"].get("index.refresh_interval")


def test_refresh_is_off_during_a_large_run_and_put_back_even_when_the_run_fails(es_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(es, "REFRESH_OFF_FROM", 100)
    monkeypatch.setattr(es, "SLICE_ROWS", 100)
    client = es.connect(es_cfg)
    index = f"{es_cfg.index_prefix}-2026.10"
    seen, calls = [], []
    real = es.documents

    def failing_second_batch(alerts, prefix):
        calls.append(alerts.height)
        if len(calls) == 2:
            seen.append(_refresh_interval(client, index))
            raise RuntimeError("serialisation broke")
        return real(alerts, prefix)

    monkeypatch.setattr(es, "documents", failing_second_batch)
    with pytest.raises(RuntimeError, match="serialisation broke"):
        es.index_alerts(client, many_alerts(300), tmp_path, es_cfg)
    assert seen == ["-1"]                                    # off while the run was going on
    assert _refresh_interval(client, index) == es.REFRESH    # and put back although it failed
    # the first batch was sent, and is searchable without waiting for a refresh: nothing half-done is hidden
    assert client.count(index=index)["count"] + es.DeadLetters(tmp_path).count() == 100
    monkeypatch.setattr(es, "documents", real)
    report = es.index_alerts(client, many_alerts(300), tmp_path, es_cfg)
    assert (report.indexed + report.duplicates, report.dead, report.error) == (300, 0, None)
    assert client.count(index=index)["count"] == 300 and _refresh_interval(client, index) == es.REFRESH


def test_a_refresh_left_off_by_a_run_that_died_is_put_back_by_the_next(es_cfg, tmp_path):
    client = es.connect(es_cfg)
    index = f"{es_cfg.index_prefix}-2026.10"
    first = es.index_alerts(client, many_alerts(20), tmp_path, es_cfg)
    assert first.indexed == 20 and _refresh_interval(client, index) == es.REFRESH
    client.indices.put_settings(index=index, settings={"index.refresh_interval": "-1"})  # as a killed run leaves it
    small = es.index_alerts(client, many_alerts(30), tmp_path, es_cfg)  # below REFRESH_OFF_FROM
    assert (small.indexed, small.duplicates) == (10, 20)
    assert _refresh_interval(client, index) == es.REFRESH


class _Answers:
    """A client whose bulk answers are scripted per document id: a server under pressure (429), a mapping
    rejection (400), a conflict (409). It records what was sent, to check what is sent again."""

    def __init__(self, script: dict[str, list[int]]):
        self.script, self.sent = script, []

    def bulk(self, operations: bytes, filter_path: str):
        import json

        lines = operations.decode().splitlines()
        ids = [json.loads(line)["create"]["_id"] for line in lines[::2]]
        self.sent.append(ids)
        items = []
        for doc_id in ids:
            status = self.script.get(doc_id, [201]).pop(0) if self.script.get(doc_id) else 201
            op = {"status": status}
            if status >= 300:
                op["error"] = {"type": f"status_{status}", "reason": f"scripted {status}"}
            items.append({"create": op})
        return {"errors": any(i["create"]["status"] >= 300 for i in items), "items": items}


def test_items_refused_with_429_are_sent_again_alone_then_dead_lettered_when_they_keep_failing(tmp_path):
    alerts = many_alerts(10)
    ids = alerts.get_column("event.id").to_list()
    client = _Answers({ids[1]: [429, 201], ids[2]: [429, 429, 429], ids[3]: [400], ids[4]: [409]})
    cfg = ESConfig(url="http://unused", chunk_size=10, workers=1, max_retries=2, initial_backoff=0.001)
    report = es.send(client, [es.documents(alerts, "p")], 10, es.DeadLetters(tmp_path), cfg)
    assert (report.indexed, report.duplicates, report.dead, report.error) == (7, 1, 2, None)
    assert client.sent == [ids, [ids[1], ids[2]], [ids[2]]]  # only the refused ones again, max_retries times
    dead = {d["id"]: d for d in map(__import__("json").loads, (tmp_path / es.DEAD_LETTER).read_text().splitlines())}
    assert dead.keys() == {ids[2], ids[3]} and dead[ids[2]]["status"] == 429 and dead[ids[3]]["status"] == 400
    assert dead[ids[3]]["reason"] == "status_400: scripted 400" and dead[ids[3]]["source"]["event"]["id"] == ids[3]


# -- issue 17: secrets in the URL, refresh left off, error wording ------------------------------------------------

SECRET = "s3cret-Pw_4711"


def test_a_password_in_the_url_is_never_printed(server, tmp_path, monkeypatch, capsys):
    from soc.cli import deliver_alerts, main
    from soc.config import Config
    from soc.sinks.delivery import deliver

    data = tmp_path / "data"
    hits = hunt_hits(tmp_path)
    deliver(hits, Config(data_dir=str(data)), to_es=False)
    plain = config(index_prefix="t-secret", username=None, password=None)
    wrong_port = _cli_env(plain, SOC_ES_URL=f"http://elastic:{SECRET}@127.0.0.1:9", SOC_DATA_DIR=str(data))
    runner = CliRunner()
    res = runner.invoke(main, ["es", "index"], env=wrong_port)
    assert res.exit_code == 3 and res.stderr.count("error:") == 1 and "cannot connect" in res.stderr
    assert SECRET not in res.output + res.stderr and "http://elastic:***@127.0.0.1:9" in res.stderr
    # a hunt's summary (--json) and its error line
    for key, value in wrong_port.items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    assert deliver_alerts(hits, to_es=True, as_json=True) == 3
    out, err = capsys.readouterr()
    assert SECRET not in out + err and "elastic:***@" in out
    # an invalid URL, and the configuration's own text
    for url in (f"http://elastic:{SECRET}@127.0.0.1:port", f"elastic:{SECRET}@127.0.0.1:9",
                f"http://elastic:{SECRET}/x@127.0.0.1:9", f"http://elastic:{SECRET}#x@127.0.0.1:9",
                f"http://elastic:{SECRET} x@127.0.0.1:9"):  # the last three: characters a URL must escape
        res = runner.invoke(main, ["es", "setup"], env={**wrong_port, "SOC_ES_URL": url})
        assert res.exit_code == 3 and "error:" in res.stderr and SECRET not in res.output + res.stderr, url
    assert SECRET not in repr(ESConfig(url=f"http://u:{SECRET}@h:9", password=SECRET, api_key=SECRET))
    # the right server with the password in the URL: it works, and "ready at" names it without the password
    right = {**wrong_port, "SOC_ES_URL": URL.replace("//", f"//elastic:{PASSWORD}@")}
    res = runner.invoke(main, ["es", "setup"], env=right)
    assert res.exit_code == 0, res.stderr
    assert PASSWORD not in res.output and f"ready at http://elastic:***@127.0.0.1:{PORT}" in res.output


@pytest.mark.parametrize("text, redacted", [
    ("http://elastic:pw@127.0.0.1:9", "http://elastic:***@127.0.0.1:9"),
    ("at https://u:p@ss:w@es.example:9200/x (refused)", "at https://u:***@es.example:9200/x (refused)"),
    ("http://token@h/", "http://***@h/"),
    ("http://h:9200/a@b and ftp://x:y@z", "http://h:9200/a@b and ftp://x:***@z"),
    ("no URL here: user:pw@host", "no URL here: user:pw@host"),
])
def test_redact_hides_the_user_info_of_every_url(text, redacted):
    from soc.config import redact

    assert redact(text) == redacted


def test_redact_hides_the_configured_url_whatever_its_password_holds():
    from soc.config import redact

    url = "http://elastic:pa ss/w#rd@es.example:9200"
    text = f"cannot connect to {url} (password pa ss/w#rd refused)"
    assert redact(text, url) == "cannot connect to http://elastic:***@es.example:9200 (password *** refused)"
    assert redact("http://h:9 refused", "http://h:9") == "http://h:9 refused"


def _refresh_off_indices(client, prefix: str) -> set[str]:
    got = client.indices.get_settings(index=f"{prefix}-*", name="index.refresh_interval", flat_settings=True)
    return {ix for ix, v in got.items() if v["settings"].get("index.refresh_interval") == "-1"}


@pytest.mark.parametrize("then", ["replay", "next run"])
def test_refresh_left_off_by_a_killed_run_is_put_back_by_replay_and_by_the_next_run(es_cfg, tmp_path, then):
    """kill -9 of `soc es index` while its indices' refresh is off: no dead letter at all, and the next run
    indexes another month. Both must put the refresh of the killed run's indices back."""
    import sys

    from soc.cli import main

    data = tmp_path / "data"
    AlertStore(data).append(pl.concat([many_alerts(15_000, month=8), many_alerts(15_000, month=9)]))
    env = {**os.environ, **_cli_env(es_cfg, SOC_DATA_DIR=str(data))}
    client = es.connect(es_cfg)
    proc = subprocess.Popen([sys.executable, "-m", "soc", "es", "index"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if len(_refresh_off_indices(client, es_cfg.index_prefix)) == 2:
                proc.kill()
                break
        time.sleep(0.01)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it was killed: {err.decode()[-2000:]}"
    off = {f"{es_cfg.index_prefix}-2026.08", f"{es_cfg.index_prefix}-2026.09"}
    assert _refresh_off_indices(client, es_cfg.index_prefix) == off and es.DeadLetters(data).count() == 0
    if then == "replay":
        res = CliRunner().invoke(main, ["es", "replay"], env=_cli_env(es_cfg, SOC_DATA_DIR=str(data)))
        assert res.exit_code == 0, res.output + res.stderr
    else:
        report = es.index_alerts(client, many_alerts(20, month=11), data, es_cfg)
        assert (report.indexed, report.error) == (20, None)
    assert _refresh_off_indices(client, es_cfg.index_prefix) == set()
    for index in off:
        assert _refresh_interval(client, index) == es.REFRESH
    assert not (data / es.REFRESH_STATE).exists()


def test_https_to_a_plain_http_port_says_to_use_http(server):
    with pytest.raises(es.ESError) as err:
        es.connect(config(url=URL.replace("http://", "https://")))
    text = str(err.value)
    assert "plain HTTP" in text and "use http://" in text and "CA" not in text and "\n" not in text


@pytest.fixture
def not_elasticsearch(tmp_path):
    """A plain web server (python's http.server) on 127.0.0.1: 404 pages in HTML, and a file at
    /<kind>/_cluster/health served with 200, as application/octet-stream (``bytes``) or JSON (``json``)."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    for kind in ("bytes", "json"):
        (tmp_path / kind / "_cluster").mkdir(parents=True)
        (tmp_path / kind / "_cluster" / "health").write_text('{"status": "green"}')

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def guess_type(self, path):
            return "application/json" if "/json/" in str(path) else super().guess_type(path)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_server_that_is_not_elasticsearch_is_one_short_line(not_elasticsearch):
    from soc.cli import main

    with pytest.raises(es.ESError) as err:
        es.connect(config(url=not_elasticsearch))
    text = str(err.value)
    assert "not Elasticsearch" in text and "HTTP 404" in text and not_elasticsearch in text
    assert "<" not in text and "Error response" not in text and len(text) < 250
    for kind in ("bytes", "json"):  # a 200, in a type the client cannot read, or JSON without the header
        with pytest.raises(es.ESError) as err:
            es.connect(config(url=f"{not_elasticsearch}/{kind}"))
        assert "not Elasticsearch" in str(err.value) and len(str(err.value)) < 250, kind
    res = CliRunner().invoke(main, ["es", "setup"], env=_cli_env(config(url=not_elasticsearch)))
    assert res.exit_code == 3 and len(res.stderr.splitlines()) == 1 and "<" not in res.stderr


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 whose self-signed certificate names es.test only: (URL, certificate)."""
    import functools
    import ssl
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    if not shutil.which("openssl"):
        if IN_CI:
            pytest.fail("openssl not found (CI=true: it must run)")
        pytest.skip("openssl not found")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=es.test",
                    "-addext", "subjectAltName=DNS:es.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", str(cert)
    httpd.shutdown()
    httpd.server_close()


def test_tls_errors_name_their_own_fix(tls_server):
    url, cert = tls_server
    with pytest.raises(es.ESError) as err:  # an unknown CA: giving the CA is the fix
        es.connect(config(url=url, timeout=10))
    assert "TLS verification" in str(err.value) and "SOC_ES_CA_CERTS" in str(err.value)
    with pytest.raises(es.ESError) as err:  # the CA is known, the name is not the certificate's: no CA to give
        es.connect(config(url=url, ca_certs=cert, timeout=10))
    text = str(err.value)
    assert "not valid for" in text and "127.0.0.1" in text and "CA_CERTS" not in text and "\n" not in text


def test_http_to_a_tls_port_says_to_use_https(tls_server):
    url, _ = tls_server
    with pytest.raises(es.ESError) as err:
        es.connect(config(url=url.replace("https://", "http://"), timeout=10))
    text = str(err.value)
    assert "speaks TLS" in text and "use https://" in text and "\n" not in text
