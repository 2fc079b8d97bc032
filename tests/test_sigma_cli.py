"""`soc hunt --rules`, `soc rules list` and `soc rules check`, run as a user runs them, on the sample logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl

from tests.conftest import ROOT

SSH_RULE = """title: SSH Password Guessing (test)
id: 0a0a0a0a-0000-4000-8000-000000000001
author: soc tests
level: medium
tags: [attack.credential-access, attack.t1110.001]
logsource: {product: linux, service: sshd}
detection:
  keywords: ['Failed password for']
  condition: keywords
"""
WEB_RULE = """title: Nikto Scanner (test)
id: 0a0a0a0a-0000-4000-8000-000000000002
author: soc tests
level: high
logsource: {category: webserver}
detection:
  selection: {cs-user-agent|contains: 'nikto'}
  condition: selection
"""
BROKEN_RULE = """title: Broken
id: 0a0a0a0a-0000-4000-8000-000000000003
logsource: {product: windows}
detection:
  selection: {CommandLine|re: 'a(?=b)'}
  condition: selection
"""


def soc(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "SOC_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "soc", *args], capture_output=True, env=env, timeout=600,
                          check=False)


def rules_dir(tmp_path, *texts: str):
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    for i, text in enumerate(texts):
        (folder / f"rule{i}.yml").write_text(text)
    return folder


def test_hunt_with_rules_writes_matches_with_the_rule_author(tmp_path):
    rules = rules_dir(tmp_path, SSH_RULE, WEB_RULE)
    data = tmp_path / "data"
    logs = [str(ROOT / "sample_logs" / "linux" / "auth.log"), str(ROOT / "sample_logs" / "web" / "nginx")]
    res = soc("hunt", *logs, "--rules", str(rules), "--data-dir", str(data), tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    assert "SSH Password Guessing (test)" in out and "Nikto Scanner (test)" in out
    matches = pl.read_parquet(data / "sigma_matches")
    counts = dict(matches.group_by("rule.name").len().iter_rows())
    raw_ssh = (ROOT / "sample_logs" / "linux" / "auth.log").read_text().count("Failed password for")
    raw_web = (ROOT / "sample_logs" / "web" / "nginx" / "access.log").read_text().lower().count("nikto")
    assert counts == {"SSH Password Guessing (test)": raw_ssh, "Nikto Scanner (test)": raw_web}
    ssh = matches.filter(pl.col("rule.name") == "SSH Password Guessing (test)").row(0, named=True)
    assert ssh["rule.author"] == "soc tests" and ssh["threat.technique.id"] == ["T1110.001"]
    assert ssh["threat.tactic.name"] == ["credential-access"] and ssh["rule.level"] == "medium"
    assert ssh["log.file.path"].endswith("auth.log") and ssh["log.line"] > 0


def test_hunt_runs_correlation_rules_over_the_matches(tmp_path):
    correlation = SSH_RULE.replace("author:", "name: ssh_failed\nauthor:") + """---
title: SSH Brute Force (test)
id: 0a0a0a0a-0000-4000-8000-000000000004
author: soc tests
level: high
correlation:
  type: event_count
  rules: [ssh_failed]
  group-by: [source.ip]
  timespan: 10m
  condition: {gte: 10}
"""
    rules = rules_dir(tmp_path, correlation)
    data = tmp_path / "data"
    res = soc("hunt", str(ROOT / "sample_logs" / "linux" / "auth.log"), "--rules", str(rules), "--data-dir",
              str(data), tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    matches = pl.read_parquet(data / "sigma_matches")
    brute = matches.filter(pl.col("rule.name") == "SSH Brute Force (test)")
    assert brute.height >= 1 and "203.0.113.45" in brute["source.ip"].to_list()  # the planted brute force


def test_rules_check_reports_each_failure_with_its_reason(tmp_path):
    rules = rules_dir(tmp_path, SSH_RULE, BROKEN_RULE, "title: [unclosed\n")
    res = soc("rules", "check", "--rules", str(rules), tmp_path=tmp_path)
    assert res.returncode == 1
    out = res.stdout.decode()
    assert "rule1.yml: rule 0a0a0a0a-0000-4000-8000-000000000003 (Broken) regex not supported" in out
    assert "look-around" in out and "rule2.yml:" in out
    assert "1 rules loaded from 3 files; 2 did not load (0 for known reasons)" in out


def test_rules_check_passes_when_only_known_reasons_fail(tmp_path):
    placeholder = SSH_RULE.replace("keywords: ['Failed password for']",
                                   "selection: {User|expand: '%admins%'}").replace("condition: keywords",
                                                                                   "condition: selection")
    rules = rules_dir(tmp_path, SSH_RULE, placeholder.replace("000000000001", "000000000009"))
    res = soc("rules", "check", "--rules", str(rules), tmp_path=tmp_path)
    assert res.returncode == 0, res.stdout.decode()
    assert "placeholder %admins% has no value" in res.stdout.decode()
    values = tmp_path / "placeholders.yml"
    values.write_text("admins: [root, admin]\n")
    res = soc("rules", "list", "--rules", str(rules), "--placeholders", str(values), "--json", tmp_path=tmp_path)
    listed = json.loads(res.stdout)
    assert listed["loaded"] == 2 and listed["not_loaded"] == 0
    assert listed["logsources"]["linux/-/sshd"]["frames"] == ["authentication:system.*", "syslog:system.*"]


def test_help_does_not_import_pysigma():
    code = "import sys; from soc.cli import main\ntry:\n    main(['hunt', '--help'])\nexcept SystemExit:\n    pass\n" \
           "print('sigma' in sys.modules, 'polars' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=True)
    assert res.stdout.decode().split()[-2:] == ["False", "False"]


def test_rule_titles_in_the_table_are_shown_escaped_and_markup_is_not_read(tmp_path):
    """A rule title is text from whoever wrote the rule: its control characters come out escaped, and
    brackets are printed as they are (no markup is interpreted)."""
    evil = SSH_RULE.replace("title: SSH Password Guessing (test)", 'title: "SSH \\e[31mred [bold]x[/bold]"')
    rules = rules_dir(tmp_path, evil)
    log = str(ROOT / "sample_logs" / "linux" / "auth.log")
    res = soc("hunt", log, "--rules", str(rules), "--data-dir", str(tmp_path / "data"), "--no-detectors",
              tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    assert b"\x1b" not in res.stdout and "SSH \\x1b[31mred [bold]x[/bold]" in res.stdout.decode()


def test_a_hunt_with_its_rules_cached_imports_neither_pysigma_nor_what_it_does_not_write(tmp_path):
    """The fixed cost of a hunt: once the rules are cached, a hunt that finds nothing loads them without
    pySigma, and writes no Parquet file, so it does not import pyarrow.parquet either."""
    rules = rules_dir(tmp_path, SSH_RULE, WEB_RULE)
    line = tmp_path / "one.json"
    line.write_text('{"@timestamp":"2024-01-01T00:00:00Z","winlog":{"channel":"Security","event_id":4624,'
                    '"event_data":{"TargetUserName":"bob"}},"host":{"name":"pc1"}}\n')
    code = ("import atexit, sys; atexit.register(lambda: print(sorted(m for m in ('sigma', 'pyarrow.parquet') "
            "if m in sys.modules))); from soc.cli import main; main()")
    env = {**os.environ, "SOC_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-c", code, "hunt", str(line), "--rules", str(rules), "--data-dir",
            str(tmp_path / "data"), "--no-es", "--no-detectors"]
    first = subprocess.run(args, capture_output=True, env=env, timeout=600, check=False)
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout.decode().splitlines()[-1] == "['sigma']"  # the rules compiled: pySigma
    again = subprocess.run(args, capture_output=True, env=env, timeout=600, check=False)
    assert again.returncode == 0, again.stderr.decode()
    assert again.stdout.decode().splitlines()[-1] == "[]"
    assert "no matches in 1 events" in again.stdout.decode()
