"""Alerts: aggregation, deterministic ids, grading with the security-level floor, enrichment, routing, store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from soc.alerts import build_alerts, load_inventory, load_policy
from soc.alerts.build import log2_bonus
from soc.alerts.inventory import InventoryError, build_inventory
from soc.alerts.policy import PolicyError
from soc.alerts.schema import ALERT_SCHEMA
from soc.config import ConfigError, load_config
from soc.sinks.alert_store import AlertStore

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def hits(rows: list[dict]) -> pl.DataFrame:
    base = {"rule.id": "r-brute", "rule.name": "SSH brute force", "rule.author": "soc", "rule.level": "medium",
            "threat.technique.id": ["T1110"], "source.ip": "203.0.113.45", "host.hostname": "portal01",
            "event.dataset": "system.auth", "log.file.path": "/var/log/auth.log", "log.line": 1, "log.offset": 0}
    data = [{**base, **r} for r in rows]
    return pl.DataFrame(data, schema_overrides={"@timestamp": pl.Datetime("us", "UTC"),
                                                "threat.technique.id": pl.List(pl.String)})


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_repeated_hits_of_one_rule_on_one_entity_in_a_window_make_one_alert():
    frame = hits([{"@timestamp": at(m), "log.line": i + 1, "log.offset": i * 100}
                  for i, m in enumerate([5, 1, 30, 59])]
                 + [{"@timestamp": at(61), "log.line": 9}]                        # next hour: a new alert
                 + [{"@timestamp": at(2), "source.ip": "198.51.100.7"}]          # another entity
                 + [{"@timestamp": at(3), "rule.id": "r-other", "rule.name": "Other"}])  # another rule
    alerts = build_alerts(frame)
    assert alerts.height == 4
    assert list(alerts.columns) == list(ALERT_SCHEMA)
    main = alerts.filter((pl.col("rule.id") == "r-brute") & (pl.col("source.ip") == "203.0.113.45")
                         & (pl.col("event.start") < at(60))).row(0, named=True)
    assert main["event.count"] == 4
    assert main["event.start"] == at(1) and main["event.end"] == at(59) and main["@timestamp"] == at(1)
    assert main["log.line"] == 2  # the first hit's record (the one at minute 1)
    assert main["event.kind"] == "alert" and main["threat.technique.id"] == ["T1110"]
    assert main["threat.framework"] == "MITRE ATT&CK"
    later = alerts.filter(pl.col("event.start") >= at(60)).row(0, named=True)
    assert later["event.count"] == 1 and later["log.line"] == 9


def test_event_count_and_detector_windows_are_carried():
    frame = hits([{"@timestamp": at(10), "event.count": 50, "window.start": at(0), "window.end": at(10)},
                  {"@timestamp": at(20), "event.count": 7}])
    alert = build_alerts(frame).row(0, named=True)
    assert alert["event.count"] == 57
    assert alert["event.start"] == at(0) and alert["event.end"] == at(20)


def test_window_is_configurable():
    frame = hits([{"@timestamp": at(m)} for m in (0, 20, 40)])
    assert build_alerts(frame, window="15m").height == 3
    assert build_alerts(frame, window="1d").height == 1


def test_ids_are_deterministic_and_independent_of_order_and_other_hits():
    frame = hits([{"@timestamp": at(m), "source.ip": ip} for m, ip in [(1, "10.0.0.1"), (2, "10.0.0.2"),
                                                                        (3, "10.0.0.1")]])
    a = build_alerts(frame)
    b = build_alerts(frame.reverse())
    assert a.equals(b)
    alone = build_alerts(frame.filter(pl.col("source.ip") == "10.0.0.2"))
    assert alone.get_column("event.id").item() in a.get_column("event.id").to_list()
    ids = a.get_column("event.id").to_list()
    assert len(set(ids)) == len(ids) == 2 and all(len(i) == 32 for i in ids)
    # the id depends on the rule, the entity and the window, not on the count
    other_rule = build_alerts(frame.with_columns(pl.lit("r-x").alias("rule.id")))
    assert not set(other_rule.get_column("event.id")) & set(ids)


def test_a_non_ip_source_is_kept_as_address_not_lost():
    frame = hits([{"@timestamp": at(1), "source.ip": "fw01.example.vn"},
                  {"@timestamp": at(1), "source.ip": "2001:db8::5"}])
    alerts = build_alerts(frame).sort("source.address")
    assert alerts.get_column("source.address").to_list() == ["2001:db8::5", "fw01.example.vn"]
    assert alerts.get_column("source.ip").to_list() == ["2001:db8::5", None]


def test_severity_and_risk_follow_the_policy():
    policy = load_policy()
    frame = hits([{"@timestamp": at(1), "rule.level": lvl, "rule.id": lvl} for lvl in
                  ("informational", "low", "medium", "high", "critical")])
    alerts = build_alerts(frame, policy).sort("event.severity")
    assert alerts.get_column("event.severity").to_list() == [1, 2, 3, 4, 5]
    assert alerts.get_column("event.risk_score").to_list() == [10, 21, 47, 73, 99]
    assert alerts.get_column("labels.severity").to_list() == ["informational", "low", "medium", "high", "critical"]
    many = build_alerts(hits([{"@timestamp": at(1), "event.count": 16}]), policy).row(0, named=True)
    assert many["event.risk_score"] == pytest.approx(47 + log2_bonus(16, 2, 10)) == 55


INVENTORY_CSV = """match,agency,agency_id,system,security_level,owner
10.20.0.0/16,Sở Tài chính,STC,Mạng nội bộ,2,it@stc.gov.vn
10.20.1.0/24;portal01,Sở TT&TT,STTTT,Cổng dịch vụ công,4,soc@stttt.gov.vn
2001:db8:10::/48,UBND tỉnh,UBND,Hệ thống một cửa,3,mc@ubnd.gov.vn
*.tinh.gov.vn,Văn phòng UBND,VP,Thư điện tử,1,
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "assets.csv"
    path.write_text(INVENTORY_CSV, encoding="utf-8")
    return load_inventory(path)


def test_inventory_matches_longest_prefix_v4_v6_and_host_names(inventory):
    def agency(i):
        return None if i is None else inventory.assets[i].agency

    assert agency(inventory.match_ip("10.20.1.9")) == "Sở TT&TT"       # /24 beats /16
    assert agency(inventory.match_ip("10.20.7.9")) == "Sở Tài chính"
    assert agency(inventory.match_ip("::ffff:10.20.1.9")) == "Sở TT&TT"  # IPv4-mapped IPv6
    assert agency(inventory.match_ip("2001:db8:10:5::1")) == "UBND tỉnh"
    assert inventory.match_ip("2001:db8:11::1") is None
    assert inventory.match_ip("192.0.2.1") is None and inventory.match_ip("not-an-ip") is None
    assert agency(inventory.match_host("PORTAL01")) == "Sở TT&TT"
    assert agency(inventory.match_host("mail.tinh.gov.vn.")) == "Văn phòng UBND"
    assert inventory.match_host("tinh.gov.vn") is None
    assert inventory.assets[1].security_level == 4 and inventory.assets[3].owner is None


def test_inventory_in_toml(tmp_path):
    path = tmp_path / "assets.toml"
    path.write_text('[[asset]]\nmatch = ["192.0.2.0/24", "dc01"]\nagency = "Sở Y tế"\nsecurity_level = 3\n',
                    encoding="utf-8")
    inv = load_inventory(path)
    assert inv.match_ip("192.0.2.200") == 0 and inv.match_host("dc01") == 0


@pytest.mark.parametrize("row, message", [
    ({"match": "10.0.0.0/33", "agency": "x"}, "neither an address"),
    ({"match": "10.0.0.0/8", "agency": "x", "security_level": "6"}, "security_level must be 1-5"),
    ({"match": "10.0.0.0/8", "agency": ""}, "no 'agency'"),
    ({"match": "", "agency": "x"}, "no 'match'"),
])
def test_bad_inventory_entries_are_clear_errors(row, message):
    with pytest.raises(InventoryError, match=message):
        build_inventory([("assets.csv: line 2", row)])


def test_enrichment_floor_and_layers(inventory):
    frame = hits([
        {"@timestamp": at(1), "rule.level": "low", "source.ip": "198.51.100.1", "host.hostname": "portal01"},
        {"@timestamp": at(1), "rule.level": "low", "source.ip": "10.20.9.9", "host.hostname": None, "rule.id": "b"},
        {"@timestamp": at(1), "rule.level": "medium", "source.ip": "2001:db8:10::7", "host.hostname": None,
         "rule.id": "c"},
        {"@timestamp": at(1), "rule.level": "low", "source.ip": "192.0.2.1", "host.hostname": "unknown",
         "rule.id": "d"},
        {"@timestamp": at(1), "rule.level": "critical", "source.ip": "192.0.2.1", "host.hostname": "x",
         "rule.id": "e"},
    ])
    alerts = {r["rule.id"]: r for r in build_alerts(frame, inventory=inventory).iter_rows(named=True)}
    portal = alerts["r-brute"]
    assert portal["organization.name"] == "Sở TT&TT" and portal["organization.id"] == "STTTT"
    assert portal["labels.system"] == "Cổng dịch vụ công" and portal["labels.owner"] == "soc@stttt.gov.vn"
    assert portal["labels.security_level"] == "4" and portal["labels.asset_match"] == "host.hostname"
    # a low rule on a level-4 system is raised to the floor "high" and routed to layer 4
    assert portal["labels.rule_level"] == "low" and portal["labels.severity"] == "high"
    assert portal["event.severity"] == 4 and portal["event.risk_score"] == 73 + 15
    assert portal["labels.layer"] == "4" and portal["labels.layer_name"].startswith("Kết nối")
    # level 2: no floor; a low alert on a known asset goes to the agency's own staff (layer 1)
    assert alerts["b"]["labels.severity"] == "low" and alerts["b"]["labels.layer"] == "1"
    assert alerts["b"]["organization.name"] == "Sở Tài chính" and alerts["b"]["labels.asset_match"] == "source.ip"
    # level 3 (IPv6): floor medium, medium stays medium, risk bonus 10, SOC layer
    assert alerts["c"]["event.severity"] == 3 and alerts["c"]["event.risk_score"] == 57
    assert alerts["c"]["labels.layer"] == "2"
    # unknown asset: no organisation, the SOC triages (layer 2); critical goes to the national centre
    assert alerts["d"]["organization.name"] is None and alerts["d"]["labels.layer"] == "2"
    assert alerts["e"]["labels.layer"] == "4"


def test_a_detector_layer_override_wins_over_the_policy_routing():
    # a critical hit goes to layer 4 by the policy; a detector whose spec says ``layer: 2`` keeps it at the SOC
    frame = hits([{"@timestamp": at(1), "rule.level": "critical", "rule.id": "policy"},
                  {"@timestamp": at(1), "rule.level": "critical", "rule.id": "spec", "labels.layer": "2"}])
    alerts = {r["rule.id"]: r for r in build_alerts(frame).iter_rows(named=True)}
    assert alerts["policy"]["labels.layer"] == "4"
    assert alerts["spec"]["labels.layer"] == "2" and alerts["spec"]["labels.layer_name"] == load_policy().layers[2]


def test_policy_is_data_and_checked(tmp_path):
    policy = load_policy()
    assert set(policy.layers) == {1, 2, 3, 4} and policy.floor[4] == 4
    bad = tmp_path / "p.toml"
    text = load_policy.__globals__["default_policy_path"]().read_text(encoding="utf-8")
    bad.write_text(text.replace('floor = "high"', 'floor = "severe"', 1), encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown severity 'severe'"):
        load_policy(bad)
    # an edited policy changes the grading without code: level 2 gets a "critical" floor
    edited = tmp_path / "edited.toml"
    edited.write_text(text.replace('[security_levels.2]\nname = "Cấp độ 2"\nfloor = "informational"',
                                   '[security_levels.2]\nname = "Cấp độ 2"\nfloor = "critical"'), encoding="utf-8")
    inv = build_inventory([("t", {"match": "10.0.0.0/8", "agency": "A", "security_level": 2})])
    alert = build_alerts(hits([{"@timestamp": at(1), "source.ip": "10.1.1.1", "host.hostname": None}]),
                         load_policy(edited), inv).row(0, named=True)
    assert alert["labels.severity"] == "critical"


def test_hits_without_required_columns_are_a_clear_error():
    with pytest.raises(ValueError, match="rule.level"):
        build_alerts(pl.DataFrame({"@timestamp": [T0], "rule.id": ["x"], "rule.name": ["x"]}))
    assert build_alerts(hits([{"@timestamp": at(1)}]).clear()).height == 0


def test_store_appends_without_duplicates_and_filters(tmp_path):
    store = AlertStore(tmp_path)
    frame = hits([{"@timestamp": at(m), "source.ip": f"10.0.0.{m}", "rule.level": lvl}
                  for m, lvl in [(1, "low"), (2, "high"), (3, "critical")]])
    alerts = build_alerts(frame)
    assert store.append(alerts) == 3
    assert store.append(alerts) == 0                      # the same hunt again: nothing new
    assert store.append(build_alerts(hits([{"@timestamp": at(90)}]))) == 1
    assert len(store.files()) == 2
    everything = store.query()
    assert everything.height == 4 and everything.get_column("@timestamp").is_sorted(descending=True)
    assert store.query(min_severity=4).height == 2
    assert store.query(entity="10.0.0.2").get_column("labels.severity").to_list() == ["high"]
    assert store.query(since=at(60)).height == 1 and store.query(limit=1).height == 1
    assert store.query(rule="BRUTE").height == 4


def test_config_file_and_environment(tmp_path):
    path = tmp_path / "soc.toml"
    path.write_text('data_dir = "/srv/soc"\n[alerts]\nwindow = "30m"\n[elasticsearch]\n'
                    'url = "https://es:9200"\nverify_certs = true\n', encoding="utf-8")
    cfg = load_config(path, env={"SOC_ES_API_KEY": "k", "SOC_ES_VERIFY_CERTS": "false"})
    assert cfg.data_dir == "/srv/soc" and cfg.alerts.window == "30m"
    assert cfg.elasticsearch.url == "https://es:9200" and cfg.elasticsearch.api_key == "k"
    assert cfg.elasticsearch.verify_certs is False
    assert load_config(env={}).elasticsearch.verify_certs is True  # TLS verification on by default
    path.write_text('[elasticsearch]\nurll = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'urll'"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match="not a valid bool"):
        load_config(env={"SOC_ES_VERIFY_CERTS": "maybe"})


def test_minimal_hits_take_defaults():
    frame = pl.DataFrame({"@timestamp": [T0, T0], "rule.id": ["x", "x"], "rule.name": ["X", "X"],
                          "rule.level": ["HIGH", "high"]},
                         schema_overrides={"@timestamp": pl.Datetime("us", "UTC")})
    alert = build_alerts(frame).row(0, named=True)
    assert alert["event.count"] == 2 and alert["rule.author"] is None and alert["threat.technique.id"] == []
    assert alert["labels.severity"] == "high" and alert["threat.framework"] is None


def test_cli_deliver_and_list(tmp_path):
    import json

    from click.testing import CliRunner

    from soc.cli import main

    path = tmp_path / "hits.parquet"
    hits([{"@timestamp": at(m), "source.ip": ip, "rule.level": "high"}
          for m, ip in [(1, "10.0.0.1"), (2, "10.0.0.1"), (3, "10.0.0.2")]]).write_parquet(path)
    env = {"SOC_DATA_DIR": str(tmp_path / "data"), "SOC_ES_URL": "", "SOC_CONFIG": ""}
    runner = CliRunner()
    res = runner.invoke(main, ["deliver", str(path), "--json"], env=env)
    assert res.exit_code == 0 and json.loads(res.output) == {"alerts": 2, "stored_new": 2,
                                                             "data_dir": str(tmp_path / "data")}
    assert json.loads(runner.invoke(main, ["deliver", str(path), "--json"], env=env).output)["stored_new"] == 0
    listed = runner.invoke(main, ["alerts", "--json", "--entity", "10.0.0.1"], env=env)
    (row,) = [json.loads(line) for line in listed.output.splitlines()]
    assert row["event.count"] == 2 and row["@timestamp"] == "2026-11-01T10:01:00.000000Z"
    csv = runner.invoke(main, ["alerts", "--csv", "--min-severity", "critical"], env=env)
    assert csv.exit_code == 0 and csv.output.startswith("@timestamp,event.id,") and len(csv.output.splitlines()) == 1
    assert runner.invoke(main, ["deliver"], env=env).exit_code == 2  # no hunt yet: a usage error


def test_evidence_values_of_the_hits_are_carried_and_related_fields_filled(monkeypatch):
    """Issue 19: an alert lists the values its hits found (the first hits' first, each once, at most 5) and
    ECS related.* gathers its addresses, accounts and host names for pivoting; an evidence value that is no
    address stays out of related.ip (an ES ip field would refuse the document), a cut one out of related.*."""
    frame = hits([
        {"@timestamp": at(5), "evidence.field": "user.name", "evidence.values": ["oracle", "root"]},
        {"@timestamp": at(1), "evidence.field": "user.name", "evidence.values": ["admin", "root"]},
        {"@timestamp": at(9), "evidence.field": "user.name", "evidence.values": ["a", "b", "c", "d"]},
        {"@timestamp": at(2), "rule.id": "r-sweep", "evidence.field": "destination.ip",
         "evidence.values": ["10.0.0.7", "not-an-ip", "fd00::9"]},
        {"@timestamp": at(2), "rule.id": "r-dns", "evidence.field": "dns.question.name", "user.name": "bob",
         "evidence.values": ["evil.example", "x" * 79 + "\u2026"]},
        {"@timestamp": at(3), "rule.id": "r-sigma", "evidence.field": None, "evidence.values": None},
    ])
    by_rule = {r["rule.id"]: r for r in build_alerts(frame).iter_rows(named=True)}
    brute = by_rule["r-brute"]
    assert brute["evidence.values"] == ["admin", "root", "oracle", "a", "b"] and brute["evidence.field"] == "user.name"
    assert brute["related.user"] == ["admin", "root", "oracle", "a", "b"]
    assert brute["related.ip"] == ["203.0.113.45"] and brute["related.hosts"] == ["portal01"]
    sweep = by_rule["r-sweep"]
    assert sweep["related.ip"] == ["203.0.113.45", "10.0.0.7", "fd00::9"] and sweep["related.user"] is None
    assert sweep["evidence.values"] == ["10.0.0.7", "not-an-ip", "fd00::9"]
    dns = by_rule["r-dns"]
    assert dns["related.hosts"] == ["portal01", "evil.example"] and dns["related.user"] == ["bob"]
    sigma = by_rule["r-sigma"]
    assert sigma["evidence.values"] is None and sigma["evidence.field"] is None
    assert sigma["related.ip"] == ["203.0.113.45"]
    monkeypatch.setattr("soc.alerts.build.SHARES", 1)  # the same when partial aggregates are merged
    monkeypatch.setattr("soc.alerts.build.MERGE_ROWS", 1)
    merged = build_alerts([frame[i: i + 1] for i in range(frame.height)])
    assert merged.sort("event.id").equals(build_alerts(frame).sort("event.id"))


def test_related_fields_of_alerts_without_evidence_are_those_of_the_general_way():
    """``related.*`` of alerts without evidence of a kind and with at most one address (every Sigma alert) are
    made without list operations, the other rows the general way and put back in place: the same lists, nulls
    and order as the general way (``_related_of``) gives for every row, in frames of each mix."""
    from soc.alerts.build import _related, _related_of, evidence_kind

    rows = [  # source.ip, destination.ip, user.name, host.hostname, evidence.field, evidence.values
        ("10.0.0.1", None, "bob", "h1", None, None),
        (None, "10.0.0.2", None, None, None, []),
        ("10.0.0.1", "10.0.0.1", "bob", "h1", None, None),  # one address twice: listed once
        ("10.0.0.1", "10.0.0.2", None, "h2", None, None),  # two addresses: the general way
        (None, None, None, None, None, None),
        ("10.0.0.3", None, "eve", "h3", "user.name", ["root", "eve", "x\u2026"]),
        (None, None, "eve", "h3", "destination.ip", ["10.0.0.9", "not-an-ip"]),
        ("10.0.0.4", None, None, "h4", "other.field", ["10.0.0.8"]),  # no kind: its values stay out
    ]
    names = ["source.ip", "destination.ip", "user.name", "host.hostname", "evidence.field"]
    schema = {**dict.fromkeys(names, pl.String), "evidence.values": pl.List(pl.String)}
    every = pl.DataFrame(rows, schema=schema, orient="row")
    for picked in ([0, 1, 2, 4], [3], [5, 6], list(range(8)), [7, 0, 6, 1, 3], []):
        frame = every[picked]
        kinds = {f: evidence_kind(f) for f in frame.get_column("evidence.field").drop_nulls().unique().to_list()}
        assert _related(frame).equals(_related_of(frame, kinds)), picked
    got = _related(every)
    assert got["related.ip"].to_list() == [["10.0.0.1"], ["10.0.0.2"], ["10.0.0.1"], ["10.0.0.1", "10.0.0.2"], None,
                                           ["10.0.0.3"], ["10.0.0.9"], ["10.0.0.4"]]
    assert got["related.user"].to_list() == [["bob"], None, ["bob"], None, None, ["eve", "root"], ["eve"], None]
    assert got["evidence.values"].to_list()[:2] == [None, None]

def test_the_store_reads_alerts_stored_before_the_evidence_columns(tmp_path):
    old = build_alerts(hits([{"@timestamp": at(1)}])).drop("related.ip", "related.user", "related.hosts",
                                                           "evidence.field", "evidence.values")
    (tmp_path / "alerts").mkdir()
    old.write_parquet(tmp_path / "alerts" / "alerts-20261101T000000000000Z-old.parquet")
    store = AlertStore(tmp_path)
    new = build_alerts(hits([{"@timestamp": at(1), "rule.id": "r-new", "evidence.field": "user.name",
                              "evidence.values": ["root"]}]))
    assert store.append(pl.concat([build_alerts(hits([{"@timestamp": at(1)}])), new])) == 1  # the old one is known
    got = store.query().sort("rule.id")
    assert got["rule.id"].to_list() == ["r-brute", "r-new"]
    assert got["evidence.values"].to_list() == [None, ["root"]] and got["related.user"].to_list() == [None, ["root"]]
    assert store.query(entity="root")["rule.id"].to_list() == ["r-new"]  # an account it tried: soc alerts --entity
    assert sorted(store.query(entity="203.0.113.45")["rule.id"]) == ["r-brute", "r-new"]


def test_a_detector_far_past_its_threshold_raises_the_risk_within_its_level():
    """Issue 19, severity that reflects confidence: +3 per doubling of how far a detector's statistic went past
    its threshold (policy [risk.excess]), at most 9: a medium alert stays under a high one's base (73)."""
    policy = load_policy()
    assert (policy.excess_per_doubling, policy.excess_max) == (3, 9)
    frame = hits([{"@timestamp": at(1), "rule.id": f"r{x}", "detector.excess": x} for x in (1.0, 2.0, 4.0, 1000.0)]
                 + [{"@timestamp": at(1), "rule.id": "sigma", "detector.excess": None},
                    {"@timestamp": at(2), "rule.id": "r2.0", "detector.excess": 1.5}])  # the most of an alert's
    risk = {r["rule.id"]: r["event.risk_score"] for r in build_alerts(frame, policy).iter_rows(named=True)}
    two = 47 + log2_bonus(2, 2, 10)  # r2.0 has two hits
    assert risk == {"r1.0": 47, "r2.0": pytest.approx(two + 3), "r4.0": 53, "r1000.0": 56, "sigma": 47}
    assert max(risk.values()) < 73
