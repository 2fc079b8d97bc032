"""The pieces of ``bench.bench_hunt`` and its input generator ``bench.gen_nxlog_windows`` (Zircolite is not run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

from bench import bench_hunt as B
from bench import gen_nxlog_windows as G
from tests.conftest import parse_text

SYSMON = {"Event": {"System": {
    "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},
    "EventID": 1, "Version": 5, "Level": 4, "Task": 1, "Opcode": 0, "Keywords": "0x8000000000000000",
    "TimeCreated": {"#attributes": {"SystemTime": "2021-12-04T21:19:16.741995Z"}}, "EventRecordID": 48593,
    "Execution": {"#attributes": {"ProcessID": 1048, "ThreadID": 1684}},
    "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "fs03vuln.offsec.lan",
    "Security": {"#attributes": {"UserID": "S-1-5-18"}}},
    "EventData": {"UtcTime": "2021-12-04 21:19:16.741", "ProcessGuid": "{A57649D1-DB54-61AB-775C-DC0100000000}",
                  "ProcessId": 2124, "ParentProcessId": 4, "Image": "C:\\TOOLS\\PsExec64.exe",
                  "CommandLine": "PsExec64.exe  -i -s cmd", "LogonId": "0x3e7", "TargetLogonId": "0x83ef56"}}}
POWERSHELL = {"Event": {"System": {"Provider": {"#attributes": {"Name": "PowerShell"}},
                                   "EventID": {"#attributes": {"Qualifiers": 0}, "#text": 800}, "Level": 4,
                                   "EventRecordID": 7, "Channel": "Windows PowerShell", "Computer": "ws1"},
                        "EventData": {"Data": {"#text": ["Get-Process", None, "HostName=ConsoleHost"]},
                                      "Binary": None}}}


def test_an_evtx_record_becomes_a_flat_nxlog_object():
    rec = G.nxlog_record(SYSMON)
    assert rec["EventID"] == 1 and rec["Channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert rec["SourceName"] == "Microsoft-Windows-Sysmon"
    assert rec["ProviderGuid"] == "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"
    assert rec["Hostname"] == "fs03vuln.offsec.lan" and rec["RecordNumber"] == 48593
    assert rec["Keywords"] == -(2**63)  # NXLog writes the keywords as a signed 64-bit integer
    assert rec["ExecutionProcessID"] == 1048 and rec["UserID"] == "S-1-5-18"
    assert rec["CommandLine"] == "PsExec64.exe  -i -s cmd" and rec["ProcessId"] == "2124"  # EventData: text
    ps = G.nxlog_record(POWERSHELL)
    assert ps["EventID"] == 800 and ps["Data"] == "Get-Process\nHostName=ConsoleHost" and "Binary" not in ps
    assert G.nxlog_record({"Event": {"System": {"Channel": "Security"}}}) is None  # no event id


def test_lines_vary_the_values_and_a_shorter_file_is_a_prefix(monkeypatch):
    monkeypatch.setattr(G, "BLOCK", 4)  # several blocks
    monkeypatch.setattr(G, "STEP_MS", 1500)
    records = [G.nxlog_record(SYSMON), G.nxlog_record(POWERSHELL)]
    long = [line for block in G.lines(records, 11) for line in block]
    short = [line for block in G.lines(records, 6) for line in block]
    assert len(long) == 11 and long[:6] == short
    objs = [json.loads(line) for line in long]
    assert [o["RecordNumber"] for o in objs] == list(range(1, 12))
    assert [o["EventTime"] for o in objs[:3]] == ["2026-11-20 00:00:00", "2026-11-20 00:00:01", "2026-11-20 00:00:03"]
    sysmon = [o for o in objs if o["EventID"] == 1]
    assert len(sysmon) >= 2
    assert len({o["ProcessGuid"] for o in sysmon}) == len(sysmon)  # fresh GUIDs, same shape
    assert all(G.GUID.fullmatch(o["ProcessGuid"]) and o["ProcessGuid"].startswith("{") for o in sysmon)
    assert all(o["LogonId"] == "0x3e7" and o["ParentProcessId"] == "4" for o in sysmon)  # well-known values kept
    assert all(o["CommandLine"] == "PsExec64.exe  -i -s cmd" for o in sysmon)
    assert all(o["Hostname"].startswith("fs03vuln-") and o["Hostname"].endswith(".offsec.lan") for o in sysmon)
    assert all(o["UtcTime"] in (o["EventTime"] + ".000", o["EventTime"] + ".500") for o in sysmon)


def test_soc_reads_the_generated_lines_as_nxlog_without_dead_letters():
    records = [G.nxlog_record(SYSMON), G.nxlog_record(POWERSHELL)]
    text = "".join(line for block in G.lines(records, 20) for line in block)
    res = parse_text("nxlog_windows", text)
    assert res.lines == 20 and res.dead.height == 0
    assert sum(f.height for f in res.frames.values()) == 20


def test_timed_measures_a_child_from_outside(tmp_path):
    code = "import sys; b = bytearray(80 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('hi'); sys.exit(3)"
    run = B.timed([sys.executable, "-c", code], tmp_path)
    assert run.code == 3 and run.out.strip() == "hi"
    assert run.rss_mb >= 80 and run.wall > 0 and run.cpu > 0


def test_soc_command_and_hits(tmp_path):
    cmd = B.soc_command(["DIR"], B.ALL_RULES, "TMP")
    assert cmd[cmd.index("hunt") + 1] == "DIR" and cmd[-3:] == ["--data-dir", "TMP", "--no-es"]
    assert cmd.count("--rules") == 3
    assert B.soc_hits(tmp_path) == (0, set())
    out = tmp_path / "sigma_matches" / "sigma"
    out.mkdir(parents=True)
    pl.DataFrame({"rule.id": ["r1", "r1", "r2"], "log.file.path": ["/x/001_a.evtx"] * 3,
                  "winlog.record_id": [5, 5, 6], "other": [1, 2, 3]}).write_parquet(out / "hunt-1.parquet")
    assert B.soc_hits(tmp_path) == (3, {("r1", "001_a.evtx", "5"), ("r2", "001_a.evtx", "6")})


def test_zircolite_hits_and_events():
    detections = [{"id": "r1", "count": 2, "matches": [{"OriginalLogfile": "001_a.evtx", "EventRecordID": "5"},
                                                       {"OriginalLogfile": "001_a.evtx", "EventRecordID": "5"}]},
                  {"id": "r2", "count": 1, "matches": [{"OriginalLogfile": "/x/big.json", "RecordNumber": 9}]}]
    assert B.zircolite_hits(detections) == (3, {("r1", "001_a.evtx", "5"), ("r2", "big.json", "9")})
    out = "[+] Total events processed: 10,253\n...\n[+] Total events processed: 7\n"
    assert B.zircolite_events(out) == 10_260 and B.zircolite_events("nothing") is None


def test_corpus_links_number_every_file(tmp_path, monkeypatch):
    files = [tmp_path / "a" / "x.evtx", tmp_path / "b" / "x.evtx"]
    for f in files:
        f.parent.mkdir()
        f.write_bytes(b"ElfFile\x00")
    monkeypatch.setattr(B, "evtx_files", lambda: files)
    assert B.corpus_links(tmp_path / "links") == 2
    links = sorted((tmp_path / "links").iterdir())
    assert [p.name for p in links] == ["001_x.evtx", "002_x.evtx"]
    assert [Path(p.readlink()) for p in links] == files


def test_targets_pass_and_fail():
    verdicts: list = []
    B.target(verdicts, "fast", 5.2, 5, True, "x")
    B.target(verdicts, "small", 420, 400, False, " MB")
    assert [(v[0], v[3]) for v in verdicts] == [("fast", True), ("small", False)]
