"""Windows event values as the log holds them (issue 16, items 1-4), and honest EVTX counts.

1. Unnamed or repeated ``<Data>`` (a JSON list) and every nested value are one text of real values, one
   per line: no JSON escaping reaches a Sigma matcher (EVTX walker, its slower decoder, Winlogbeat, NXLog).
2. Chunk headers are read by record *identifiers* (not record numbers): no phantom dead letters.
3. Chunk slots that the file header announces but that are not chunks are dead letters naming the offset.
4. Empty vs absent: a present element without content is ``''``; ``null`` is an absent field.

Every record and line here is of our own making; corpus files are only read (copies go to tmp dirs).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from soc import pipeline
from soc.parse.columns import Context
from soc.parse.spec import load_spec
from soc.sources import discover
from tests.conftest import ROOT, Keep, parse_text
from tests.test_sigma_modifiers import rule
from tests.test_windows import _record, _walk

evtx = pytest.importorskip("evtx")

SPEC = load_spec(ROOT / "parsers" / "windows_evtx.yml")
SIGMA = "sigma/rules/windows/"
MSI_RULE = SIGMA + "builtin/application/msiinstaller/win_msi_install_from_susp_locations.yml"
RENAMED_PS_RULE = SIGMA + "powershell/powershell_classic/posh_pc_renamed_powershell.yml"
WSMAN_RULE = SIGMA + "powershell/powershell_classic/posh_pc_wsman_com_provider_no_powershell.yml"
ATTACK = "evtx/evtx-to-mitre-attack/"


def _system(channel: str, provider: str, event_id: int, record_id: int) -> str:
    return (f'"Provider":{{"#attributes":{{"Name":"{provider}"}}}},'
            f'"EventID":{{"#attributes":{{"Qualifiers":0}},"#text":{event_id}}},'
            f'"TimeCreated":{{"#attributes":{{"SystemTime":"2026-11-02T08:15:00.000000Z"}}}},'
            f'"EventRecordID":{record_id},"Channel":"{channel}","Computer":"WS-KT-014"')


def evtx_frames(records: list[str]) -> tuple[dict, pl.DataFrame]:
    """Frames (and dead letters) of records in the evtx package's JSON form, through the EVTX engine."""
    from soc.parse.engines.evtx import EvtxEngine

    engine = EvtxEngine(SPEC, Context("own.evtx"))
    res = engine._batch(pa.array(records, pa.large_string()), np.arange(1, len(records) + 1),
                        pa.array(["2026-11-02 08:15:00.000000 UTC"] * len(records)))
    assert res.lines == len(records)
    return res.frames, res.dead


def sigma_hits(rule_file: Path, frames: dict) -> pl.DataFrame:
    """The matches of one SigmaHQ rule (read from the corpus) over ``frames``."""
    from soc.sigma.hunt import Hunter
    from soc.sigma.loader import load

    ruleset = load([rule_file], use_cache=False)
    assert len(ruleset.rules) == 1, ruleset.errors
    hunter = Hunter(ruleset)
    for key, frame in frames.items():
        hunter.feed(key, frame)
    assert not hunter.failures
    return hunter.matches()


def no_escapes(value: str) -> bool:
    """No JSON escape sequence and no JSON list text left in a value."""
    return not any(s in value for s in ("\\\\", "\\t", "\\n", "\\r", '\\"', '["', '"]', '","'))


# --- 1. unnamed or repeated Data: real values, one per line ------------------------------------------------

MSI_PATH = "C:\\Program Files\\Contoso\\Update\\1.3.36.0\\ContosoUpdateHelper.msi"
PS_BENIGN = ("\tNewEngineState=Available\r\n\tPreviousEngineState=None\r\n\r\n\tSequenceNumber=15\r\n\r\n"
             "\tHostName=ConsoleHost\r\n\tHostVersion=5.1.19041.1\r\n\tHostId=0f3c2b1a-9e8d-4c7b-a6f5-e4d3c2b1a0f9\r\n"
             "\tHostApplication=C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NoProfile\r\n"
             "\tEngineVersion=5.1.19041.1\r\n\tRunspaceId=1a2b3c4d-0000-4000-8000-000000000001\r\n\tPipelineId=\r\n")


def test_walker_joins_unnamed_data_with_real_newlines():
    values = [MSI_PATH, "a\tb", "line one\nline two", "", "(NULL)"]
    rec = _record('"EventData":{"Data":{"#text":' + json.dumps(values) + "}}")
    w, _, fields = _walk([rec])
    assert w.err.tolist() == [0]
    assert fields[0]["Data"] == "\n".join(values)
    assert no_escapes(fields[0]["Data"])


def test_walker_renders_nested_values_as_plain_text():
    rec = _record('"UserData":{"Info":{"#attributes":{"xmlns":"http://x"},"Path":"C:\\\\a\\\\b",'
                  '"Flags":{"#attributes":{"value":"10","Allow":"true"}},"Cert":{"#attributes":{"file":"x.cer"}},'
                  '"Both":{"#attributes":{"k":"v"},"#text":["p\\\\q","r"]},"Nums":[1,null,2.5,true],'
                  '"Deep":{"A":{"B":"c\\td"}},"Gone":null}}')
    w, _, fields = _walk([rec])
    assert w.err.tolist() == [0]
    assert fields[0] == {"Path": "C:\\a\\b", "Flags": "value=10\nAllow=true", "Cert": "file=x.cer",
                         "Both": "p\\q\nr", "Nums": "1\n2.5\ntrue", "Deep": "A=B=c\td", "Gone": ""}


def test_slower_decoder_renders_as_the_walker():
    """A record the walker leaves to Polars (an escaped field name) gets the same values."""
    data = ('"EventData":{"Data":{"#text":["C:\\\\Users\\\\Public\\\\x.msi","a\\tb","c\\nd"]},'
            '"Binary":{"#attributes":{"Length":"2"}},"Empty":"","Gone":null,"List":[{"x":"y"},{"x":"z","n":null}]}')
    system = _system("Application", "MsiInstaller", 1040, 7)
    walked = _record(data, system)
    slow = walked.replace('"Empty":', '"\\u0045mpty":')
    frames, dead = evtx_frames([walked, slow])
    assert dead.height == 0
    frame = frames[("windows", "windows.application.1040")].sort("log.line")
    for row in frame.iter_rows(named=True):
        assert (row["Data"], row["Binary"], row["Empty"], row["Gone"], row["List"]) == \
            ("C:\\Users\\Public\\x.msi\na\tb\nc\nd", "Length=2", "", "", "x=y\nx=z"), row["log.line"]


def _msi_record(path: str, rid: int) -> str:
    values = [path, "(NULL)", "(NULL)", "(NULL)", "(NULL)", "(NULL)", ""]
    return _record('"EventData":{"Data":{"#text":' + json.dumps(values) + '},"Binary":null}',
                   _system("Application", "MsiInstaller", 1040, rid))


def test_msi_rule_sees_real_paths(corpora):
    """SigmaHQ c7c8aa1c: its UNC pattern (two backslashes) must not match a plain path's JSON escaping."""
    frames, _ = evtx_frames([_msi_record(MSI_PATH, 1), _msi_record("C:\\Windows\\Installer\\4a7f2.msi", 2),
                             _msi_record("\\\\fs01.corp.local\\share$\\tools\\agent.msi", 3),
                             _msi_record("C:\\Users\\Public\\Downloads\\x.msi", 4)])
    assert frames[("windows", "windows.application.1040")].filter(pl.col("log.line") == 1)["Data"][0] == \
        MSI_PATH + "\n(NULL)\n(NULL)\n(NULL)\n(NULL)\n(NULL)\n"
    hits = sigma_hits(corpora / MSI_RULE, frames)
    assert sorted(hits["log.line"].to_list()) == [3, 4]


def _ps_record(event_id: int, values: list[str], rid: int) -> str:
    return _record('"EventData":{"Data":{"#text":' + json.dumps(values) + '},"Binary":null}',
                   _system("Windows PowerShell", "PowerShell", event_id, rid))


def test_powershell_classic_rules_see_real_tabs_and_newlines(corpora):
    """SigmaHQ 30a8cb77 (renamed PowerShell) and the WSMan provider rule: their filters (a path with single
    backslashes, ``HostId=...\\s+EngineVersion=``) must see the real text."""
    no_app = PS_BENIGN.replace("\tHostApplication=C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe "
                               "-NoProfile\r\n", "")
    renamed = PS_BENIGN.replace("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                                "C:\\Users\\Public\\svc-update.exe")
    records = [_ps_record(400, ["Available", "None", PS_BENIGN], 1), _ps_record(400, ["Available", "None", no_app], 2),
               _ps_record(400, ["Available", "None", renamed], 3)]
    wsman = [PS_BENIGN, no_app, renamed]
    started = "\tProviderName=WSMan\r\n\tNewProviderState=Started\r\n"
    records += [_ps_record(600, ["WSMan", "Started", started + t], 4 + i) for i, t in enumerate(wsman)]
    frames, _ = evtx_frames(records)
    data = frames[("windows", "windows.powershell_classic.400")].sort("log.line")["Data"].to_list()
    assert data[0] == "Available\nNone\n" + PS_BENIGN
    assert sorted(sigma_hits(corpora / RENAMED_PS_RULE, frames)["log.line"].to_list()) == [3]
    assert sorted(sigma_hits(corpora / WSMAN_RULE, frames)["log.line"].to_list()) == [6]


def test_corpus_unnamed_data_is_the_values_one_per_line(corpora):
    """PowerShell classic 400/403/600/800 and MSSQL records of the ATT&CK corpus: ``Data`` is the list of
    the record's values, each as the evtx package reads it, joined by newlines."""
    files = [f for f in sorted((corpora / ATTACK).rglob("*.evtx"))
             if any(k in f.name for k in ("ID400-800", "ID800 - SPN", "ID18456", "ID15457", "ID325-327"))]
    assert len(files) >= 5
    checked = 0
    for path in files:
        keep = Keep()
        (st,) = pipeline.run(discover([str(path)]), keep, specs={SPEC.name: SPEC})
        assert st.dead == 0
        rows = {}
        for parts in keep.frames.values():
            for row in pl.concat(parts, how="diagonal_relaxed").iter_rows(named=True):
                rows[row["log.line"]] = row  # the record number in the file
        for rec in evtx.PyEvtxParser(str(path)).records_json():
            data = (json.loads(rec["data"])["Event"].get("EventData") or {}).get("Data")
            if isinstance(data, dict) and isinstance(data.get("#text"), list):
                got = rows[rec["event_record_id"]]["Data"]
                assert got == "\n".join("" if v is None else str(v) for v in data["#text"] if v is not None)
                checked += 1
    assert checked >= 30


WINLOGBEAT_DATA = json.dumps({
    "@timestamp": "2026-11-02T01:15:00.000Z",
    "winlog": {"channel": "Application", "event_id": 1040, "provider_name": "MsiInstaller", "record_id": 41,
               "computer_name": "WS-KT-014",
               "event_data": {"Data": ["C:\\Program Files\\Contoso\\agent.msi", "col\tumn", "first\nsecond"],
                              "Extra": {"Inner": "C:\\x\\y", "List": ["a\\b", 2]}}},
}) + "\n"
NXLOG_DATA = json.dumps({
    "EventTime": "2026-11-02 08:15:00", "Hostname": "WS-KT-014", "EventID": 1040, "SourceName": "MsiInstaller",
    "Channel": "Application", "RecordNumber": 42, "Message": "Beginning a Windows Installer transaction",
    "Data": ["C:\\Program Files\\Contoso\\agent.msi", "col\tumn", "first\nsecond"],
    "SourceModuleType": "im_msvistalog",
}) + "\n"
REAL = "C:\\Program Files\\Contoso\\agent.msi\ncol\tumn\nfirst\nsecond"


@pytest.mark.parametrize("spec_name, text", [("winlogbeat", WINLOGBEAT_DATA), ("nxlog_windows", NXLOG_DATA)])
def test_json_lines_keep_real_values_of_arrays(spec_name, text):
    res = parse_text(spec_name, text)
    assert res.dead.height == 0
    row = res.frames[("windows", "windows.application.1040")].row(0, named=True)
    assert row["Data"] == REAL
    if spec_name == "winlogbeat":
        assert row["Extra"] == "Inner=C:\\x\\y\nList=a\\b\n2"


def test_winlogbeat_params_are_also_the_data_text():
    """Winlogbeat names unnamed Data ``param1``..``paramN``; SigmaHQ rules read them as ``Data``."""
    line = json.dumps({
        "@timestamp": "2026-11-02T01:15:00.000Z",
        "winlog": {"channel": "Windows PowerShell", "event_id": "400", "provider_name": "PowerShell",
                   "record_id": 77, "event_data": {"param1": "Available", "param2": "None", "param3": PS_BENIGN}},
    }) + "\n"
    row = parse_text("winlogbeat", line).frames[("windows", "windows.powershell_classic.400")].row(0, named=True)
    assert (row["param1"], row["Data"]) == ("Available", "Available\nNone\n" + PS_BENIGN)


# --- 2. chunk headers: record identifiers, not record numbers ------------------------------------------------

SMALL = ATTACK + ("TA0002-Execution/T1569.002-Service execution/"
                  "ID7000,7009,7045-Payload deployed via service - Tchopper.evtx")


def _shift_ids(data: bytearray, shift: int) -> int:
    """Add ``shift`` to every record identifier (chunk headers and record headers; checksums made again):
    the chunks keep numbering their records from 1, as a log cut from a larger one or saved from a filtered
    view has them (numbers 1..16 for ids 74..89). Returns the number of chunks."""
    chunks = 0
    for off in range(4096, len(data) - 65535, 65536):
        chunk = data[off: off + 65536]
        if chunk[:8] != b"ElfChnk\x00":
            continue
        first, last = struct.unpack_from("<QQ", chunk, 24)
        struct.pack_into("<QQ", chunk, 24, first + shift, last + shift)
        free, at = struct.unpack_from("<I", chunk, 48)[0], 512
        while at + 24 <= free:
            size, rid = struct.unpack_from("<IQ", chunk, at + 4)
            struct.pack_into("<Q", chunk, at + 8, rid + shift)
            at += size
        struct.pack_into("<I", chunk, 52, zlib.crc32(bytes(chunk[512:free])))
        struct.pack_into("<I", chunk, 124, zlib.crc32(bytes(chunk[:120]) + bytes(chunk[128:512])))
        data[off: off + 65536] = chunk
        chunks += 1
    return chunks


def test_chunk_record_numbers_that_differ_from_ids_are_no_dead_letters(corpora, tmp_path):
    data = bytearray((corpora / SMALL).read_bytes())
    assert _shift_ids(data, 73) >= 2
    shifted = tmp_path / "shifted.evtx"
    shifted.write_bytes(bytes(data))
    ids = [r["event_record_id"] for r in evtx.PyEvtxParser(str(shifted)).records_json()]
    assert ids[0] == 74 and len(ids) > 700
    keep = Keep()
    (st,) = pipeline.run(discover([str(shifted)]), keep, specs={SPEC.name: SPEC})
    assert st.error is None
    assert (st.read, st.parsed, st.dead) == (len(ids), len(ids), 0), keep.dead[:1]
    lines = pl.concat([f.select("log.line") for parts in keep.frames.values() for f in parts])["log.line"]
    assert sorted(lines.to_list()) == ids


# --- 3. garbage where the file header announces chunks ---------------------------------------------------------

def test_garbage_chunks_are_dead_letters_naming_the_offset(corpora, tmp_path):
    data = bytearray((corpora / SMALL).read_bytes())
    count = (len(data) - 4096) // 65536  # every slot: garbage, announced by the file header or not
    rng = np.random.default_rng(16)
    data[4096:] = rng.integers(0, 256, len(data) - 4096, dtype=np.uint8).tobytes()
    bad = tmp_path / "garbage.evtx"
    bad.write_bytes(bytes(data))
    keep = Keep()
    (st,) = pipeline.run(discover([str(bad)]), keep, specs={SPEC.name: SPEC})
    dead = pl.concat(keep.dead)
    assert st.error is None and st.parsed == 0 and st.read == st.dead == count
    assert sorted(dead["log.offset"].to_list()) == [4096 + k * 65536 for k in range(count)]
    assert dead["error.message"].str.contains("not an EVTX chunk").all()
    assert dead["error.message"].str.contains("byte 4096").any()


@pytest.mark.parametrize("fill, what", [(b"\xa5", "not an EVTX chunk"), (b"\x00", "is empty although")])
def test_one_garbage_chunk_among_good_ones(corpora, tmp_path, fill, what):
    src = corpora / SMALL
    data = bytearray(src.read_bytes())
    whole = sum(1 for _ in evtx.PyEvtxParser(str(src)).records_json())
    data[4096 + 65536: 4096 + 2 * 65536] = fill * 65536  # the second chunk
    bad = tmp_path / "one_bad.evtx"
    bad.write_bytes(bytes(data))
    keep = Keep()
    (st,) = pipeline.run(discover([str(bad)]), keep, specs={SPEC.name: SPEC})
    dead = pl.concat(keep.dead)
    assert (st.read, st.parsed + st.dead) == (whole, whole)  # the ids around it say which records it held
    assert dead["log.line"].to_list() == list(range(98, 194))
    assert set(dead["log.offset"]) == {4096 + 65536}
    assert f"byte {4096 + 65536}" in dead["error.message"][0] and "records 98..193" in dead["error.message"][0]
    assert what in dead["error.message"][0]
    assert dead["event.original"][0] == fill * 65536


# --- 4. empty vs absent ----------------------------------------------------------------------------------------

def _hits(detection: str, frame: pl.DataFrame) -> list[int]:
    from soc.sigma.backend import Builder, Lowered

    compiled = rule(detection)
    lowered = Lowered()
    expr = Builder(frame.schema, lambda f: f if f in frame.columns else None, lowered).build(compiled.tree)
    work = frame.with_columns(lowered.columns(frame.schema))
    return sorted(work.filter(expr)["log.line"].to_list())


NULL_EMPTY_EXISTS = {
    "sel: {StartModule: null}\ncondition: sel": [3],
    "sel: {StartModule: ''}\ncondition: sel": [1, 2],
    "sel: {StartModule|exists: true}\ncondition: sel": [1, 2, 4],
    "sel: {StartModule|exists: false}\ncondition: sel": [3],
    "sel: {StartModule: '-'}\ncondition: sel": [4],
}


def test_evtx_empty_element_is_empty_not_absent():
    """``<Data Name="StartModule"></Data>``: the evtx package writes "" or null (by the value's BinXML
    type); both are a present, empty field. A record without the element has no field."""
    system = '"EventID":8,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"PC1"'
    records = [_record('"EventData":{"SourceImage":"a.exe","StartModule":""}', system),
               _record('"EventData":{"SourceImage":"b.exe","StartModule":null}', system),
               _record('"EventData":{"SourceImage":"c.exe"}', system),
               _record('"EventData":{"SourceImage":"d.exe","StartModule":"-"}', system)]
    frames, _ = evtx_frames(records)
    frame = frames[("windows", "windows.sysmon.8")]
    assert frame.sort("log.line")["StartModule"].to_list() == ["", "", None, "-"]
    for detection, want in NULL_EMPTY_EXISTS.items():
        assert _hits(detection, frame) == want, detection


def test_winlogbeat_empty_is_empty_and_absent_is_null():
    def line(n: int, data: dict) -> str:
        return json.dumps({"@timestamp": "2026-11-02T01:15:00.000Z",
                           "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 8,
                                      "record_id": n, "event_data": {"SourceImage": "x.exe", **data}}})

    text = "\n".join([line(1, {"StartModule": ""}), line(2, {"StartModule": ""}), line(3, {}),
                      line(4, {"StartModule": "-"})]) + "\n"
    frame = parse_text("winlogbeat", text).frames[("windows", "windows.sysmon.8")].with_columns(
        pl.col("winlog.record_id").alias("log.line"))
    assert frame.sort("log.line")["StartModule"].to_list() == ["", "", None, "-"]
    for detection, want in NULL_EMPTY_EXISTS.items():
        assert _hits(detection, frame) == want, detection


def test_json_lines_with_spaces_after_colons_are_sniffed():
    from soc.parse.spec import load_specs
    from soc.sources.sniff import sniff

    signatures = [s.signature for s in load_specs().values()]
    assert sniff(WINLOGBEAT_DATA.encode(), signatures) == "winlogbeat"
    assert sniff(NXLOG_DATA.encode(), signatures) == "nxlog_windows"


def _rules(tmp_path: Path, logsource: str, field: str) -> Path:
    """Four rules of our own on one field: ``null``, ``''``, ``|exists: true``, ``|exists: false``."""
    folder = tmp_path / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    tests = {"null": f"{field}: null", "empty": f"{field}: ''", "exists": f"{field}|exists: true",
             "absent": f"{field}|exists: false"}
    for i, (name, test) in enumerate(tests.items()):
        (folder / f"{name}.yml").write_text(
            f"title: is-{name}\nid: 0c0ffee0-0000-4000-8000-00000000000{i}\nlogsource: {{{logsource}}}\n"
            f"detection:\n  sel:\n    {test}\n  condition: sel\n")
    return folder


def _by_rule(folder: Path, frames: dict, line: str = "log.line") -> dict[str, list[int]]:
    from soc.sigma.hunt import Hunter
    from soc.sigma.loader import load

    ruleset = load([folder], use_cache=False)
    assert len(ruleset.rules) == 4, ruleset.errors
    hunter = Hunter(ruleset)
    for key, frame in frames.items():
        hunter.feed(key, frame)
    found = hunter.matches()
    return {name: sorted(found.filter(pl.col("rule.name") == "is-" + name)[line].to_list())
            for name in ("null", "empty", "exists", "absent")}


def test_null_empty_and_exists_through_the_hunt_in_every_family(tmp_path):
    """The same rules mean the same in an EVTX, a JSON and a text family: ``null`` = no value (absent, or
    the format's no-value marker), ``''`` = a present empty value, ``exists`` = has a value ('' too)."""
    system = '"EventID":8,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"PC1"'
    evtx_records = [_record('"EventData":{"SourceImage":"a.exe","StartModule":""}', system),
                    _record('"EventData":{"SourceImage":"b.exe","StartModule":null}', system),
                    _record('"EventData":{"SourceImage":"c.exe"}', system),
                    _record('"EventData":{"SourceImage":"d.exe","StartModule":"C:\\\\x.dll"}', system)]
    frames, _ = evtx_frames(evtx_records)
    windows = _rules(tmp_path / "w", "product: windows, category: create_remote_thread", "StartModule")
    assert _by_rule(windows, frames) == {"null": [3], "empty": [1, 2], "exists": [1, 2, 4], "absent": [3]}

    lines = [json.dumps({"@timestamp": "2026-11-02T01:15:00.000Z",
                         "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 8,
                                    "record_id": n, "event_data": {"SourceImage": "x.exe", **data}}})
             for n, data in enumerate([{"StartModule": ""}, {}, {"StartModule": "C:\\x.dll"}], 1)]
    res = parse_text("winlogbeat", "\n".join(lines) + "\n")
    assert _by_rule(windows, res.frames) == {"null": [2], "empty": [1], "exists": [1, 3], "absent": [2]}

    web = ('203.0.113.7 - - [02/Nov/2026:08:15:00 +0700] "GET / HTTP/1.1" 200 512 "-" "curl/8.5.0"\n'
           '203.0.113.8 - - [02/Nov/2026:08:15:01 +0700] "GET /a HTTP/1.1" 200 512 "https://portal.example.gov.vn/" '
           '"curl/8.5.0"\n'
           '203.0.113.9 - - [02/Nov/2026:08:15:02 +0700] "GET /b HTTP/1.1" 200 512 "" ""\n')  # sent empty: ''
    res = parse_text("web_access", web)
    assert res.dead.height == 0
    referer = _rules(tmp_path / "t", "category: webserver", "cs-referer")
    assert _by_rule(referer, res.frames) == {"null": [1], "empty": [3], "exists": [2, 3], "absent": [1]}


def test_system_element_without_text_is_rendered_not_json():
    """A System leaf written as an element with attributes only (no ``#text``) is no JSON either."""
    system = '"EventID":4688,"Channel":"Security","Computer":"PC1","Keywords":{"#attributes":{"Mask":"0x8020"}}'
    w, sys_, _ = _walk([_record('"EventData":{"A":"1"}', system)])
    assert w.err.tolist() == [0]
    assert sys_[0]["System.Keywords"] == "Mask=0x8020"


def test_values_nested_deeper_than_the_walker_renders_go_to_the_decoder():
    from soc.parse import evtx_kernel as K

    deep = _record('"UserData":{"Info":{"A":"1","F":{"G":{"#attributes":{"a":"C:\\\\x"}},"H":["p","q"]}}}',
                   _system("System", "Contoso-Agent", 3, 9))
    w, _, _ = _walk([deep])
    assert w.err.tolist() == [K.E_DEEP]
    frames, dead = evtx_frames([deep])
    assert dead.height == 0
    row = frames[("windows", "windows.system.3")].row(0, named=True)
    assert (row["A"], row["F"]) == ("1", "G=a=C:\\x\nH=p\nq")
