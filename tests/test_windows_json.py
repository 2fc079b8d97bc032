"""Windows JSON lines (NXLog, Winlogbeat): the walker's way (``windows_json_kernel``, one typing query per
chunk) makes the frames and dead letters the per-group decoder makes, and gives a chunk back to it when a
record holds a value it does not read as the decoder does."""

from __future__ import annotations

import json

import pytest
from polars.testing import assert_frame_equal

from soc import jit
from soc.parse.engines.windows_json import WindowsJsonEngine
from tests.conftest import parse_text

NX = {"EventTime": "2024-03-01 10:00:00", "Hostname": "DC01", "EventType": "AUDIT_SUCCESS", "SeverityValue": 2,
      "Severity": "INFO", "SourceName": "Microsoft-Windows-Security-Auditing", "Keywords": -9214364837600034816,
      "EventReceivedTime": "2024-03-01 10:00:01", "SourceModuleName": "eventlog", "Message": "x"}


def _nxlog() -> str:
    rows = [
        {**NX, "EventID": 4624, "Channel": "Security", "RecordNumber": 1, "TargetUserName": "bob",
         "IpAddress": "10.0.0.5", "IpPort": "50123", "ProcessId": "0x1f4", "LogonType": "3"},
        {**NX, "EventID": 4624, "Channel": "Security", "RecordNumber": 2, "TargetUserName": "al\"ice\\ \u00e9",
         "IpAddress": "-", "WorkstationName": None, "LogonType": "10", "Extra": ""},
        {**NX, "EventID": 4688, "Channel": "Security", "NewProcessName": "C:\\Windows\\cmd.exe",
         "CommandLine": "cmd /c \"whoami\"", "NewProcessId": "0x1a2b", "ProcessId": 16, "Empty": None},
        {**NX, "EventID": "1", "Channel": "Microsoft-Windows-Sysmon/Operational", "Image": "C:\\x.exe",
         "User": "CORP\\alice", "ProcessId": "42", "Keywords": 9223372036854775807},
        {**NX, "EventID": 4624, "Channel": "Security", "RecordNumber": 3, "TargetUserName": "carol",
         "IpAddress": "fe80::1", "ExecutionProcessID": 640},
        {**NX, "EventID": 4625, "Channel": "Security", "EventTime": "not a time", "TargetUserName": "x"},
        {**NX, "EventID": 7, "Channel": "Custom/Channel", "A": "1"},
        {"EventID": 8, "EventTime": "2024-03-01 10:00:00"},
    ]
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "\n[1]\n"


def _winlogbeat() -> str:
    def line(channel, event_id, data=None, user_data=None, **winlog):
        w = {"channel": channel, "event_id": event_id, "provider_name": "P", "record_id": 5,
             "computer_name": "WS1", "keywords": ["Audit Success", None], "process": {"pid": 4, "thread": {"id": 8}},
             **winlog}
        if data is not None:
            w["event_data"] = data
        if user_data is not None:
            w["user_data"] = user_data
        return json.dumps({"@timestamp": "2024-03-01T03:00:00.123Z", "agent": {"type": "winlogbeat", "x": 1.5},
                           "log": {"level": "information"}, "winlog": w, "event": {"code": str(event_id)}}) + "\n"

    return "".join([
        line("Security", "4624", {"TargetUserName": "bob", "IpAddress": "10.0.0.5", "LogonType": "3"}),
        line("Security", "4624", {"TargetUserName": "a\tb", "IpAddress": None}, time_created="2024-03-01T03:00:01Z"),
        line("Microsoft-Windows-Sysmon/Operational", 1, {"Image": "C:\\x.exe", "User": "CORP\\alice"}),
        line("System", "7045", {"param1": "svc", "param3": "c:\\x", "param2": None}),
        line("System", "7045", {"param1": "svc2"}, keywords=[]),
        line("Microsoft-Windows-AppLocker/EXE and DLL", "8004", user_data={"PolicyName": "EXE", "FilePath": "x"}),
        line("Security", "4625", {"TargetUserName": "x"}, user={"identifier": "S-1-5-18"}),
        '{"@timestamp":"bad","winlog":{"channel":"Security","event_id":"4625"}}\n',
        '{"winlog":"not an object"}\n',
    ])


@pytest.fixture(autouse=True)
def _numba():
    """The walker's way, not the plain one of small chunks (``test_windows_json_plain`` compares those)."""
    with jit.forced("numba"):
        yield


def _both(spec: str, text: str, monkeypatch, zone: str = "Asia/Ho_Chi_Minh"):
    walked = []
    real = WindowsJsonEngine._kernels

    def spy(self, lines):
        got = real(self, lines)
        walked.append(got is not None)
        return got

    monkeypatch.setattr(WindowsJsonEngine, "_kernels", spy)
    new = parse_text(spec, text, zone=zone)
    monkeypatch.setattr(WindowsJsonEngine, "_kernels", lambda self, lines: None)
    old = parse_text(spec, text, zone=zone)
    return new, old, walked


def _same(new, old):
    assert (new.lines, new.parsed) == (old.lines, old.parsed)
    assert list(new.frames) == list(old.frames)
    for key, frame in old.frames.items():  # the decoder's column order follows a hash set: not compared
        assert_frame_equal(new.frames[key], frame, check_column_order=False)
    assert_frame_equal(new.dead, old.dead)


@pytest.mark.parametrize("spec, make", [("nxlog_windows", _nxlog), ("winlogbeat", _winlogbeat)])
def test_the_walker_makes_the_decoders_frames(spec, make, monkeypatch):
    new, old, walked = _both(spec, make(), monkeypatch)
    assert walked == [True]
    assert old.dead.height >= 1 and len(old.frames) >= 5
    _same(new, old)


@pytest.mark.parametrize("value", ["1.5", "true", "{\"a\":\"b\"}", "[\"a\"]", "99999999999999999999"])
def test_a_value_the_walker_does_not_take_sends_the_chunk_to_the_decoder(value, monkeypatch):
    text = _nxlog() + json.dumps({**NX, "EventID": 4624, "Channel": "Security"})[:-1] + f', "Odd": {value}}}\n'
    new, old, walked = _both("nxlog_windows", text, monkeypatch)
    assert walked == [False]
    _same(new, old)


def test_data_fields_keep_the_order_they_come_in(monkeypatch):
    text = "".join(json.dumps({**NX, "EventID": 1, "Channel": "C", **fields}) + "\n"
                   for fields in ({"B": "1", "A": "2"}, {"C": "3", "A": "4"}, {"D": None, "B": "5"}))
    res = parse_text("nxlog_windows", text)
    frame = res.frames[("windows", "windows.c.1")]
    assert frame.columns[-4:] == ["B", "A", "C", "D"]
    assert frame.select("B", "A", "C", "D").rows() == [("1", "2", None, None), (None, "4", "3", None),
                                                       ("5", None, None, None)]


@pytest.mark.parametrize("times", [["2024-03-01 10:00:00", "2024-10-27 02:30:00"], ["2024-03-31 02:30:00"],
                                   ["2024-02-29 23:59:59", "2024-03-01T10:00:00"], ["2024-02-30 10:00:00"]])
def test_event_times_read_by_the_kernel_are_the_rules(times, monkeypatch):
    """NXLog's zone-less EventTime in a zone with DST (a time in its spring gap is null: dead-lettered)."""
    text = "".join(json.dumps({**NX, "EventID": 4624, "Channel": "Security", "EventTime": t}) + "\n" for t in times)
    new, old, walked = _both("nxlog_windows", text, monkeypatch, zone="Europe/Paris")
    assert walked == [True]
    _same(new, old)


def test_winlogbeat_time_created_read_by_the_kernel_is_the_rules(monkeypatch):
    text = "".join(line for line in _winlogbeat().replace('"time_created": "2024-03-01T03:00:01Z", ', "")
                   .replace('"event_id"', '"time_created": "2024-03-01T03:00:01.1234567Z", "event_id"')
                   .splitlines(keepends=True) if "time_created" in line)  # every record has one
    new, old, walked = _both("winlogbeat", text, monkeypatch)
    assert walked == [True]
    _same(new, old)


VALUES = ["x", "", "-", "a\"b", "c:\\windows\\x.exe", "line\nnext", "\u00e9\u4e2d\U0001f600", "0x1f4", "CORP\\bob",
          "10.0.0.1", "::1", "2024-03-01 10:00:00", 0, 7, -5, 9223372036854775807, -9223372036854775808, None]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spec", ["nxlog_windows", "winlogbeat"])
def test_random_records_make_the_decoders_frames(spec, seed, monkeypatch):
    import random

    rnd = random.Random(seed)
    keys = [("Security", 4624), ("Security", 4688), ("Microsoft-Windows-Sysmon/Operational", 1),
            ("Microsoft-Windows-Sysmon/Operational", 3), ("Application", 1000), ("System", 7045)]
    names = ["TargetUserName", "IpAddress", "ProcessId", "User", "Image", "CommandLine", "A", "B", "param1",
             "param2", "NewProcessId", "SourceIp"]
    lines = []
    for i in range(300):
        channel, event_id = rnd.choice(keys)
        data = {n: rnd.choice(VALUES) for n in rnd.sample(names, rnd.randint(0, len(names)))}
        if spec == "nxlog_windows":
            rec = {**NX, "EventID": event_id if rnd.random() < .5 else str(event_id), "Channel": channel,
                   "RecordNumber": i, **data}
        else:
            rec = {"@timestamp": "2024-03-01T03:00:00.5Z", "winlog": {
                "channel": channel, "event_id": str(event_id), "record_id": i, "keywords": ["Audit Success"],
                "user_data" if event_id == 1000 else "event_data": data}}  # an event has one or the other
        lines.append(json.dumps(rec, ensure_ascii=rnd.random() < .5))
    new, old, walked = _both(spec, "\n".join(lines) + "\n", monkeypatch)
    assert walked == [True]
    _same(new, old)
