"""soc export: the STIX 2.1 bundle (valid for stix2-validator, deterministic, TLP from policy), the NDJSON
export, the filters, attacker text kept as data, and a TAXII 2.1 round trip against a real medallion server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from soc.alerts.schema import conform
from soc.cli import main
from soc.config import Config
from soc.export import Filters, SharingError, load_sharing, shared_alerts
from soc.export.policy import default_sharing_path
from soc.export.stix import TLP2_IDS, bundle_json
from soc.hunt import HuntRequest, run_hunt
from soc.sinks.alert_store import AlertStore
from tests.conftest import IN_CI, ROOT

ALL = """
[identity]
name = "SOC tỉnh thử nghiệm"
[share]
layers = [1, 2, 3, 4]
min_severity = "informational"
[tlp]
version = 2
default = "{default}"
[tlp.rules]
{rules}
[indicators]
internal_networks = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The alerts of a hunt of sample_logs/ in a data folder of its own."""
    folder = tmp_path_factory.mktemp("export") / "data"
    run_hunt(HuntRequest([str(ROOT / "sample_logs")], data_dir=str(folder), config=Config(), to_es=False))
    assert AlertStore(folder).scan().collect().height > 20
    return folder


def _policy(tmp_path: Path, default: str = "amber", rules: str = "") -> Path:
    path = tmp_path / "sharing.toml"
    path.write_text(ALL.format(default=default, rules=rules), encoding="utf-8")
    return path


def _export(data: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["export", *args, "--config", "/dev/null", "--data-dir", str(data)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _valid(text: str) -> dict:
    from stix2validator import ValidationOptions, validate_string

    result = validate_string(text, ValidationOptions(strict=False))
    assert result.is_valid, [str(e) for e in result.errors]
    assert not result.errors
    return json.loads(text)


def test_bundle_is_valid_and_holds_an_object_per_alert_and_entity(data, tmp_path):
    policy = load_sharing(_policy(tmp_path))
    alerts = shared_alerts(data, policy)
    assert alerts.height == AlertStore(data).scan().collect().height  # this policy shares everything
    doc = _valid(_export(data, "stix", "--policy", str(_policy(tmp_path))))
    kinds = Counter(o["type"] for o in doc["objects"])
    assert kinds["sighting"] == alerts.height
    assert kinds["identity"] == 1  # the SOC (the sample hunt has no inventory: no agency)
    assert kinds["marking-definition"] == 1  # TLP:AMBER only
    external = alerts.filter(pl.col("source.ip").is_not_null()
                             & ~pl.col("source.ip").str.starts_with("10.")
                             & ~pl.col("source.ip").str.starts_with("192.168."))
    assert 0 < kinds["indicator"] == external.height
    techniques = set(alerts.get_column("threat.technique.id").explode().drop_nulls())
    # a sighting is of the indicator, else of the first technique, else of an attack-pattern of the rule's own
    external_ids = external.get_column("event.id")
    bare = alerts.filter((pl.col("threat.technique.id").list.len().fill_null(0) == 0)
                         & ~pl.col("event.id").is_in(external_ids.implode()))
    assert kinds["attack-pattern"] == len(techniques) + bare.get_column("rule.id").n_unique()
    assert kinds["relationship"] == external.get_column("threat.technique.id").list.len().fill_null(0).sum()
    ips = set(alerts.get_column("source.ip").drop_nulls()) | set(alerts.get_column("related.ip").explode().drop_nulls())
    assert kinds["ipv4-addr"] + kinds["ipv6-addr"] == len(ips)
    users = set(alerts.get_column("user.name").drop_nulls()) | set(
        alerts.get_column("related.user").explode().drop_nulls())
    assert kinds["user-account"] == len(users)
    by_id = {o["id"]: o for o in doc["objects"]}
    soc = next(o for o in doc["objects"] if o["type"] == "identity")
    assert soc["name"] == "SOC tỉnh thử nghiệm"
    for sighting in (o for o in doc["objects"] if o["type"] == "sighting"):
        assert sighting["created_by_ref"] == soc["id"]
        assert by_id[sighting["sighting_of_ref"]]["type"] in ("indicator", "attack-pattern")
        for ref in sighting.get("observed_data_refs", []):
            assert all(r in by_id for r in by_id[ref]["object_refs"])
    brute = next(o for o in doc["objects"] if o["type"] == "attack-pattern" and o["name"] == "T1110.001")
    assert brute["external_references"] == [{"source_name": "mitre-attack", "external_id": "T1110.001",
                                              "url": "https://attack.mitre.org/techniques/T1110/001/"}]
    stored = {a["event.id"]: a for a in alerts.iter_rows(named=True)}
    sighted = {next(r["external_id"] for r in o["external_references"] if r["source_name"] == "soc-alert"): o
               for o in doc["objects"] if o["type"] == "sighting"}
    assert set(sighted) == set(stored)
    for aid, sighting in sighted.items():
        assert sighting["count"] == stored[aid]["event.count"]


def test_two_exports_are_byte_identical(data, tmp_path):
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    _export(data, "stix", "-o", str(out1))
    _export(data, "stix", "-o", str(out2))
    assert out1.read_bytes() == out2.read_bytes()
    assert out1.stat().st_mode & 0o777 == 0o600
    ids = [o["id"] for o in json.loads(out1.read_text())["objects"]]
    assert len(ids) == len(set(ids)) > 10
    assert str(uuid.UUID(ids[-1].split("--")[1]).version) == "5"


def test_default_policy_shares_layer_4_and_high_alerts_marked_amber(data):
    policy = load_sharing(default_sharing_path())
    assert policy.tlp_default == "amber" and policy.tlp_version == 2
    alerts = AlertStore(data).scan().collect()
    expected = alerts.filter((pl.col("labels.layer") == "4") | (pl.col("event.severity") >= 4))
    doc = _valid(_export(data, "stix"))
    sightings = [o for o in doc["objects"] if o["type"] == "sighting"]
    assert 0 < len(sightings) == expected.height < alerts.height
    amber = TLP2_IDS["amber"]
    marking = next(o for o in doc["objects"] if o["type"] == "marking-definition")
    assert marking["id"] == amber and marking["name"] == "TLP:AMBER"
    assert marking["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]["tlp_2_0"] == "amber"
    assert all(o["object_marking_refs"] == [amber] for o in doc["objects"] if o["type"] != "marking-definition")


def test_tlp_per_rule_and_version_1_from_policy(data, tmp_path):
    alerts = AlertStore(data).scan().collect()
    rule = alerts.get_column("rule.id")[0]
    doc = _valid(_export(data, "stix", "--policy", str(_policy(tmp_path, "red", f'"{rule}" = "green"'))))
    n_rule = alerts.filter(pl.col("rule.id") == rule).height
    marks = Counter(o["object_marking_refs"][0] for o in doc["objects"] if o["type"] == "sighting")
    assert marks == {TLP2_IDS["green"]: n_rule, TLP2_IDS["red"]: alerts.height - n_rule}
    assert {o["id"] for o in doc["objects"] if o["type"] == "marking-definition"} == {TLP2_IDS["green"],
                                                                                      TLP2_IDS["red"]}
    # an object shared by alerts of both markings carries the strictest
    for o in doc["objects"]:
        if o["type"] in ("ipv4-addr", "user-account", "attack-pattern"):
            assert o["object_marking_refs"][0] in (TLP2_IDS["green"], TLP2_IDS["red"])
    v1 = _policy(tmp_path).read_text().replace("version = 2", "version = 1")
    (tmp_path / "v1.toml").write_text(v1, encoding="utf-8")
    doc = _valid(_export(data, "stix", "--policy", str(tmp_path / "v1.toml")))
    import stix2

    assert {o["object_marking_refs"][0] for o in doc["objects"] if "object_marking_refs" in o} == {stix2.TLP_AMBER.id}


def test_a_bad_policy_is_a_usage_error(data, tmp_path):
    bad = _policy(tmp_path, "amber+strict").read_text().replace("version = 2", "version = 1")
    (tmp_path / "bad.toml").write_text(bad, encoding="utf-8")
    with pytest.raises(SharingError, match="amber\\+strict"):
        load_sharing(tmp_path / "bad.toml")
    result = CliRunner().invoke(main, ["export", "stix", "--config", "/dev/null", "--data-dir", str(data),
                                       "--policy", str(tmp_path / "bad.toml")])
    assert result.exit_code == 2 and "amber+strict" in result.output


def test_filters_like_soc_alerts(data, tmp_path):
    policy = _policy(tmp_path)
    store = AlertStore(data)
    alerts = store.scan().collect()
    middle = alerts.get_column("@timestamp").sort()[alerts.height // 2].replace(tzinfo=None)
    cases = {("--min-severity", "medium"): store.query(min_severity=3),
             ("--since", middle.isoformat(timespec="seconds")): store.query(since=middle.replace(tzinfo=UTC)),
             ("--until", middle.isoformat(timespec="seconds")): store.query(until=middle.replace(tzinfo=UTC)),
             ("--layer", "2"): store.query(layer="2"), ("--layer", "4"): store.query(layer="4"),
             ("--agency", "nobody"): store.query(agency="nobody")}
    for args, expected in cases.items():
        lines = _export(data, "ndjson", "--policy", str(policy), *args).splitlines()
        assert sorted(json.loads(x)["event.id"] for x in lines) == sorted(expected.get_column("event.id")), args
        doc = _valid(_export(data, "stix", "--policy", str(policy), *args))
        assert sum(o["type"] == "sighting" for o in doc["objects"]) == expected.height, args
    assert 0 < store.query(min_severity=3).height < alerts.height
    assert 0 < store.query(since=middle.replace(tzinfo=UTC)).height < alerts.height


def test_ndjson_lines_are_the_stored_alerts(data, tmp_path):
    lines = _export(data, "ndjson", "--policy", str(_policy(tmp_path))).splitlines()
    stored = AlertStore(data).scan().collect().sort(["@timestamp", "event.id"])
    assert len(lines) == stored.height
    for line, alert in zip(lines, stored.iter_rows(named=True), strict=True):
        doc = json.loads(line)
        assert set(doc) == set(alert)
        for key, value in alert.items():
            if isinstance(value, datetime):
                assert datetime.fromisoformat(doc[key]) == value, key
            else:
                assert doc[key] == value, key


NASTY = 'Brute "force"\n\x1b[31mRED\x1b[0m \'; DROP --\u202e'


def test_attacker_text_stays_data(tmp_path):
    folder = tmp_path / "data"
    stamp = datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC)
    AlertStore(folder).append(conform(pl.DataFrame({
        "@timestamp": [stamp], "event.id": ["nasty-1"], "event.kind": ["alert"], "event.severity": [5],
        "event.risk_score": [99.0], "event.count": [3], "event.start": [stamp], "event.end": [stamp],
        "rule.id": ['r"1\n'], "rule.name": [NASTY], "threat.technique.id": [["T1110", "T9\n' OR 1=1"]],
        "source.ip": ["198.51.100.7"], "user.name": [NASTY], "organization.name": ['Sở "A"\n\x1b[2J'],
        "labels.layer": ["4"], "labels.severity": ["critical"], "labels.security_level": ["3"],
        "related.ip": [["198.51.100.7", "not an ip'\n"]], "related.user": [[NASTY, "admin"]],
        "related.hosts": [["evil.example.com", "bad.example.com\n\x1b[1m", "x'.com"]],
        "evidence.field": ["url.original"],
        "evidence.values": [["http://evil.example.com/a?b=\"c\"", "/plain/path", "http://x\n\x1b[0m/"]],
    })))
    result = CliRunner().invoke(main, ["export", "stix", "--config", "/dev/null", "--data-dir", str(folder)])
    assert result.exit_code == 0, result.output
    doc = _valid(result.stdout)
    kinds = Counter(o["type"] for o in doc["objects"])
    assert kinds["ipv4-addr"] == 1 and kinds["domain-name"] == 1 and kinds["url"] == 1
    assert kinds["attack-pattern"] == 1  # the malformed technique id is left out
    assert {o["account_login"] for o in doc["objects"] if o["type"] == "user-account"} == {NASTY, "admin"}
    indicator = next(o for o in doc["objects"] if o["type"] == "indicator")
    assert indicator["pattern"] == "[ipv4-addr:value = '198.51.100.7']"
    assert indicator["name"] == f"{NASTY}: 198.51.100.7"
    agency = next(o for o in doc["objects"] if o["type"] == "identity" and o["name"].startswith("Sở"))
    assert agency["name"] == 'Sở "A"\n\x1b[2J'
    ndjson = CliRunner().invoke(main, ["export", "ndjson", "--config", "/dev/null", "--data-dir", str(folder)])
    (line,) = ndjson.stdout.splitlines()
    assert json.loads(line)["rule.name"] == NASTY and "\x1b" not in line


def test_library_order_is_oldest_first(data):
    policy = load_sharing(default_sharing_path())
    frame = shared_alerts(data, policy, Filters())
    stamps = frame.get_column("@timestamp").to_list()
    assert stamps == sorted(stamps)
    assert bundle_json(frame, policy) == bundle_json(shared_alerts(data, policy), policy)


# --- TAXII 2.1 round trip against a real server (OASIS medallion, memory backend) ---------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def medallion(tmp_path):
    """A medallion TAXII 2.1 server on 127.0.0.1 with one writable collection: (api root, collection id)."""
    try:
        import medallion  # noqa: F401
    except ImportError as exc:
        message = f"medallion (TAXII 2.1 server, the test extra) is not installed: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    import requests

    port, collection = _free_port(), "365fed99-08fa-fdcd-a1b3-fb247eb41d01"
    root = f"http://127.0.0.1:{port}/api1/"
    store = {
        "/discovery": {"title": "test", "default": root, "api_roots": [root]},
        "api1": {"information": {"title": "national centre", "versions": ["application/taxii+json;version=2.1"],
                                 "max_content_length": 104857600},
                 "status": [],
                 "collections": [{"id": collection, "title": "soc alerts", "can_read": True, "can_write": True,
                                  "media_types": ["application/stix+json;version=2.1"], "objects": [],
                                  "manifest": []}]}}
    (tmp_path / "data.json").write_text(json.dumps(store))
    config = {"backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                          "filename": str(tmp_path / "data.json")},
              "users": {"soc": "s3cret"}, "taxii": {"max_page_size": 100}}
    (tmp_path / "medallion.json").write_text(json.dumps(config))
    log = open(tmp_path / "medallion.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-m", "medallion.scripts.run", "--host", "127.0.0.1", "--port",
                               str(port), str(tmp_path / "medallion.json")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/taxii2/", auth=("soc", "s3cret"), timeout=2,
                                headers={"Accept": "application/taxii+json;version=2.1"}).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"medallion did not start: {(tmp_path / 'medallion.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield root, collection
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_taxii_round_trip(data, tmp_path, medallion, monkeypatch):
    from taxii2client.v21 import Collection, as_pages

    root, collection = medallion
    monkeypatch.setenv("SOC_TAXII_USER", "soc")
    monkeypatch.setenv("SOC_TAXII_PASSWORD", "s3cret")
    policy = str(_policy(tmp_path))
    out = tmp_path / "bundle.json"
    result = CliRunner().invoke(main, ["export", "stix", "--config", "/dev/null", "--data-dir", str(data),
                                       "--policy", policy, "-o", str(out), "--taxii", root,
                                       "--collection", collection, "--json"])
    assert result.exit_code == 0, result.output
    sent = [o["id"] for o in json.loads(out.read_text())["objects"]]
    summary = json.loads(result.stdout)
    assert summary["taxii"] == {"status": "complete", "success": len(sent), "failure": 0, "pending": 0}
    reader = Collection(f"{root}collections/{collection}/", user="soc", password="s3cret")
    got = [o["id"] for page in as_pages(reader.get_objects, per_request=100) for o in page.get("objects", [])]
    assert sorted(got) == sorted(sent) and len(sent) > 100
    # the same bundle again: nothing new for the server (same ids, same versions)
    again = CliRunner().invoke(main, ["export", "stix", "--config", "/dev/null", "--data-dir", str(data),
                                      "--policy", policy, "-o", str(tmp_path / "again.json"), "--taxii", root,
                                      "--collection", collection, "--json"])
    assert json.loads(again.stdout)["taxii"]["success"] == 0
    # wrong credentials: exit 3, the password is not printed
    monkeypatch.setenv("SOC_TAXII_PASSWORD", "wrong-pass")
    bad = CliRunner().invoke(main, ["export", "stix", "--config", "/dev/null", "--data-dir", str(data),
                                    "--policy", policy, "-o", str(tmp_path / "x.json"), "--taxii", root,
                                    "--collection", collection])
    assert bad.exit_code == 3 and "wrong-pass" not in bad.output
