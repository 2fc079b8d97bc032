"""``soc hunt`` runs the detectors over the whole hunt: the sample logs' planted attacks are reported, hits
are kept as Parquet, thresholds can be set from the command line, and --no-detectors turns them off."""

from __future__ import annotations

import polars as pl

from tests.conftest import ROOT
from tests.test_cli import soc

PLANTED = {  # detector -> the attacker address bench/make_sample_logs.py planted
    ("soc-ssh-brute-force", "203.0.113.45"), ("soc-web-scan", "198.51.100.23"),
    ("soc-firewall-admin-brute-force", "192.0.2.77"), ("soc-firewall-admin-brute-force", "198.51.100.66"),
    ("soc-port-scan", "198.51.100.66"), ("soc-smtp-auth-brute-force", "203.0.113.99"),
    ("soc-dns-tunnel", "10.20.3.77"),
}


def _hits(data_dir) -> pl.DataFrame:
    files = sorted((data_dir / "detector_hits").rglob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed") if files else pl.DataFrame()


def test_hunt_reports_exactly_the_planted_attacks_of_the_sample_logs(tmp_path):
    res = soc("hunt", str(ROOT / "sample_logs"), "--data-dir", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    for ip in ("203.0.113.45", "198.51.100.23", "192.0.2.77"):
        assert ip in out
    assert "SSH brute force" in out and "Web scanning" in out and "Firewall admin login failures" in out
    hits = _hits(tmp_path)
    assert set(zip(hits["rule.id"], hits["source.ip"], strict=True)) == PLANTED
    ssh = hits.filter(pl.col("rule.id") == "soc-ssh-brute-force").row(0, named=True)
    assert ssh["event.count"] >= 10 and ssh["window.start"] < ssh["window.end"]
    assert ssh["log.file.path"].endswith("auth.log") and ssh["log.line"] > 0 and ssh["evidence.samples"]
    # issue 19: the accounts it tried (most tried first: an invalid user is logged twice per try), the ports
    assert ssh["evidence.field"] == "user.name" and ssh["evidence.distinct"] == 8
    assert ssh["evidence.values"] == ["admin", "oracle", "test", "ubuntu", "postgres"]
    assert "admin, oracle, test (+5)" in out
    scan = hits.filter(pl.col("rule.id") == "soc-port-scan").row(0, named=True)
    assert scan["evidence.field"] == "destination.port" and scan["evidence.distinct"] == 60
    assert len(scan["evidence.values"]) == 5 and all(v.isdigit() for v in scan["evidence.values"])


def test_thresholds_from_the_cli_and_no_detectors(tmp_path):
    res = soc("hunt", str(ROOT / "sample_logs" / "linux"), "--data-dir", str(tmp_path / "a"),
              "--set", "soc-ssh-brute-force.threshold=1000", cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    assert "no hits" in res.stdout.decode()
    res = soc("hunt", str(ROOT / "sample_logs" / "linux"), "--data-dir", str(tmp_path / "b"), "--no-detectors",
              cwd=tmp_path)
    assert res.returncode == 0 and "Detectors" not in res.stdout.decode()
    res = soc("hunt", str(ROOT / "sample_logs" / "linux"), "--data-dir", str(tmp_path / "c"),
              "--set", "soc-nope.threshold=1", cwd=tmp_path)
    assert res.returncode == 2 and "no detector" in res.stderr.decode()


def test_hunt_stores_its_alerts_once_whatever_the_reruns(tmp_path):
    """Sigma matches and detector hits become alerts in DATA_DIR/alerts/; a second hunt adds none."""
    args = ("hunt", str(ROOT / "sample_logs" / "linux"), "--data-dir", str(tmp_path))
    first = soc(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr.decode()
    files = sorted((tmp_path / "alerts").rglob("*.parquet"))
    alerts = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    ssh = alerts.filter((pl.col("rule.id") == "soc-ssh-brute-force") & (pl.col("source.ip") == "203.0.113.45"))
    assert ssh.height == 1 and ssh["event.kind"][0] == "alert" and ssh["event.id"][0]
    assert alerts["event.id"].is_unique().all()
    second = soc(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr.decode()
    assert f"{alerts.height:,} alerts (0 new)" in second.stdout.decode()
    again = pl.concat([pl.read_parquet(f) for f in sorted((tmp_path / "alerts").rglob("*.parquet"))],
                      how="diagonal_relaxed")
    assert sorted(again["event.id"]) == sorted(alerts["event.id"])


def test_a_brute_force_logged_by_host_name_is_counted(tmp_path):
    """sshd with UseDNS logs the client's name; the name is in source.address (source.ip holds IPs only),
    and the detector counts it as the entity."""
    log = tmp_path / "secure"
    log.write_text("".join(
        f"Nov 23 09:15:{i:02d} portal sshd[{900 + i}]: Failed password for root from scanner.attacker.example "
        f"port {40000 + i} ssh2\n" for i in range(12)))
    res = soc("hunt", str(log), "--data-dir", str(tmp_path / "d"), "--year", "2026", cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    hits = _hits(tmp_path / "d").filter(pl.col("rule.id") == "soc-ssh-brute-force")
    assert hits.height == 1 and hits.row(0, named=True)["source.ip"] == "scanner.attacker.example"


def test_evidence_from_logs_reaches_the_terminal_escaped(tmp_path):
    """The accounts an attacker tries are text the attacker writes: the hunt's table and ``soc alerts`` show
    them escaped, ``--json`` carries them as they were (JSON-escaped)."""
    import json

    log = tmp_path / "auth.log"
    log.write_text("".join(
        f"Nov 23 09:15:{i:02d} portal sshd[{900 + i}]: Failed password for invalid user x\x1b[2Jroot{i % 2} "
        f"from 203.0.113.9 port {40000 + i} ssh2\n" for i in range(12)))
    res = soc("hunt", str(log), "--data-dir", str(tmp_path / "d"), "--year", "2026", "--no-es", cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    assert "\x1b" not in out and "x\\x1b[2Jroot0, x\\x1b[2Jroot1" in out
    listed = soc("alerts", "--data-dir", str(tmp_path / "d"), "--json", cwd=tmp_path)
    (alert,) = [a for a in map(json.loads, listed.stdout.decode().splitlines())
                if a["rule.id"] == "soc-ssh-brute-force"]
    assert alert["evidence.values"] == ["x\x1b[2Jroot0", "x\x1b[2Jroot1"]
    assert alert["related.user"] == alert["evidence.values"] and alert["related.ip"] == ["203.0.113.9"]
    table = soc("alerts", "--data-dir", str(tmp_path / "d"), cwd=tmp_path).stdout.decode()
    assert "\x1b" not in table and "\\x1b" in table
