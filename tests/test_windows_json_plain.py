"""The Windows JSON engine's plain-Python way (``soc.parse.windows_json_plain``, small chunks) against the Numba
kernels' way: the same frames (columns, types, values, order) and dead letters on real-shaped NXLog and
Winlogbeat lines, odd values included; the lines it cannot tell about go to the kernels; the small-chunk
NumPy ways of ``find_lines`` and ``has_invalid_utf8``; and a one-line Windows JSON hunt never imports Numba."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from polars.testing import assert_frame_equal

from soc import jit
from soc.parse import kernels
from soc.parse import windows_json_plain as P
from tests import test_windows_json as T
from tests.conftest import hunt_both_ways, parse_text


@pytest.fixture
def ways(monkeypatch):
    """``P.walk``'s outcome per call ("plain", "refused": the slower way, "defer": the kernels)."""
    seen: list[str] = []
    real = P.walk

    def spy(*args, **kwargs):
        try:
            got = real(*args, **kwargs)
        except P.Defer:
            seen.append("defer")
            raise
        seen.append("plain" if got[2] is not None else "refused")
        return got

    monkeypatch.setattr(P, "walk", spy)
    return seen


def _same(spec: str, text: str, ways: list, zone: str = "Asia/Ho_Chi_Minh") -> list[str]:
    ways.clear()
    with jit.forced("plain"):
        plain = parse_text(spec, text, zone=zone)
    taken = list(ways)
    with jit.forced("numba"):
        numba = parse_text(spec, text, zone=zone)
    assert (plain.lines, plain.parsed) == (numba.lines, numba.parsed)
    assert list(plain.frames) == list(numba.frames)
    for key, frame in numba.frames.items():
        assert_frame_equal(plain.frames[key], frame)  # column order too
    assert_frame_equal(plain.dead, numba.dead)
    return taken


NXLOG_ODD = [
    {**T.NX, "EventID": 4624, "Channel": "Security", "TargetUserName": "al\"ice\\ \u00e9\t\r\n", "IpAddress": None,
     "Keywords": -9223372036854775808, "Empty": "", "Zero": 0, "Ctl": "\u0001\u001f\u007f"},
    {**T.NX, "EventID": "4688", "Channel": "Security", "CommandLine": "x" * 200_000 + "\u4e2d\U0001f600",
     "NewProcessName": "C:\\Windows\\System32\\cmd.exe", "ProcessId": 9223372036854775807},
    {**T.NX, "EventID": 4625, "Channel": "Security", "EventTime": "2024-02-30 10:00:00", "Hostname": None},
    {**T.NX, "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Keywords": ["a", None, "b\u00e9"],
     "Hostname": [], "Image": "C:\\x.exe"},
    {**T.NX, "EventID": 7, "Channel": None, "EventTime": "2024-03-01T10:00:00"},
    {"EventID": None, "Channel": "", "A": None},
    {"EventID": "x1", "Channel": "Security", "B": "1"},  # not digits: the slower way, both ways
]


def _nxlog_odd(ensure_ascii: bool) -> str:
    return "".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in NXLOG_ODD[:-1]) + "\n  \n"


def _winlogbeat_one() -> str:
    return T._winlogbeat().splitlines(keepends=True)[0]


def test_real_shaped_lines_both_ways(ways):
    assert _same("nxlog_windows", T._nxlog().replace("\n[1]\n", "\n"), ways) == ["plain"]
    assert _same("winlogbeat", T._winlogbeat(), ways) == ["plain"]
    assert _same("nxlog_windows", T._nxlog().splitlines(keepends=True)[0], ways) == ["plain"]
    assert _same("winlogbeat", _winlogbeat_one(), ways) == ["plain"]


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_odd_values_both_ways(ensure_ascii, ways):
    """Escapes, non-ASCII, control characters, nulls, int64 bounds, lists of strings in System leaves, a
    200 kB value, a null and an empty channel, an impossible date, a blank line."""
    assert _same("nxlog_windows", _nxlog_odd(ensure_ascii), ways) == ["plain"]
    assert _same("nxlog_windows", json.dumps(NXLOG_ODD[-1]) + "\n", ways) == ["plain"]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("spec", ["nxlog_windows", "winlogbeat"])
def test_random_records_both_ways(spec, seed, ways, monkeypatch):
    captured = {}
    monkeypatch.setattr(T, "_both", lambda spec, text, mp: captured.setdefault("text", text) and (0, 0, [True]))
    monkeypatch.setattr(T, "_same", lambda new, old: None)
    T.test_random_records_make_the_decoders_frames(spec, seed, monkeypatch)  # its records, not its check
    assert _same(spec, captured["text"], ways) == ["plain"]


@pytest.mark.parametrize("times", [["2024-03-01 10:00:00", "2024-10-27 02:30:00"], ["2024-03-31 02:30:00"],
                                   ["2024-02-29 23:59:59", "2024-03-01T10:00:00"], ["2023-02-29 10:00:00"]])
def test_nxlog_times_both_ways(times, ways):
    text = "".join(json.dumps({**T.NX, "EventID": 4624, "Channel": "Security", "EventTime": t}) + "\n" for t in times)
    assert _same("nxlog_windows", text, ways, zone="Europe/Paris") == ["plain"]


@pytest.mark.parametrize("value", ["1.5", "true", "{\"a\":\"b\"}", "[\"a\"]", "99999999999999999999", "-0", "1e3"])
def test_a_value_the_walker_refuses_goes_the_slower_way_both_ways(value, ways):
    text = json.dumps({**T.NX, "EventID": 4624, "Channel": "Security"})[:-1] + f', "Odd": {value}}}\n'
    assert _same("nxlog_windows", text, ways) == ["refused"]
    skipped = json.dumps({**T.NX, "EventID": 4624, "Channel": "Security"})[:-1] + f', "Category": {value}}}\n'
    assert _same("nxlog_windows", skipped, ways) == ["plain"]  # NXLog's own field: passed over unread


@pytest.mark.parametrize("line", [
    '{"EventID": 1, "Channel": "C", "\\u0041": "x"}',  # a key escaped though it need not be
    '{"EventID": 1, "Channel": "C", "A\\/": "x"}',
    '{"EventID": 1, "Channel": "C", "A": "\\ud800"}',  # a lone surrogate
    '{"EventID": 1, "Channel": "C", "A": "1", "A": "2"}',  # a key twice
    '{"EventID": 1, "Channel": "C", "A": NaN}',
    '{"EventID": 1, "Channel": "C"} x',
    '[1]',
    '{"EventID": 1, "Channel": "C", "A": "\x01"}',
    '{"EventID": 1, "Channel": "C", "A": ' + "[" * 70 + "]" * 70 + "}",
])
def test_lines_it_cannot_tell_about_go_to_the_kernels(line, ways):
    assert _same("nxlog_windows", T._nxlog().splitlines(keepends=True)[0] + line + "\n", ways) == ["defer"]


def test_winlogbeat_odd_shapes_both_ways(ways):
    lines = [
        {"@timestamp": "2024-03-01T03:00:00Z", "winlog": {"channel": "Security", "event_id": 4624, "event_data": {
            "A": "\u00e9", "B": None}, "user_data": {"C": "1"}, "process": {"pid": 4, "thread": "x"}, "extra": [1.5]}},
        {"@timestamp": "2024-03-01T03:00:00Z", "winlog": {"channel": "Security", "event_id": "4624",
                                                          "event_data": "not an object", "user": {"identifier": None}}},
        {"winlog": {"channel": "System", "event_id": "7045", "event_data": {"param1": "a", "param2": "b"},
                    "time_created": "2024-13-01T00:00:00Z"}, "host": {"name": 1.5}},
    ]
    text = "".join(json.dumps(r) + "\n" for r in lines)
    assert _same("winlogbeat", text, ways) == ["plain"]
    quoted = json.dumps({"winlog": {"channel": "S", "event_id": 1}, "host": {"a\"b\\c\n": "x"}})
    assert _same("winlogbeat", quoted + "\n", ways) == ["plain"]  # a key escaped where the walker does not look
    quoted = json.dumps({"winlog": {"channel": "S", "event_id": 1, "event_data": {"a\"b": "x"}}})
    assert _same("winlogbeat", quoted + "\n", ways) == ["refused"]  # and where it does: the slower way
    twice = json.dumps({"winlog": {"channel": "S", "event_id": 1, "event_data": {"A": "1"}, "user_data": {"A": "2"}}})
    assert _same("winlogbeat", twice + "\n", ways) == ["defer"]


@pytest.mark.parametrize("data", [b"", b"\n", b"a", b"a\r\nb\n\r\n\rc\r", b"x\ny", b"\r", b"\n\n\n"])
def test_find_lines_the_same_both_ways(data):
    plain, numba = _both_ways(lambda buf: [(a.dtype, a.tolist()) for a in kernels.find_lines(buf)], data)
    assert plain == numba


def _both_ways(fn, data: bytes) -> tuple:
    buf = np.frombuffer(bytearray(data), np.uint8)  # writable as a chunk is: no second compile
    with jit.forced("plain"):
        plain = fn(buf)
    with jit.forced("numba"):
        return plain, fn(buf)


@pytest.mark.parametrize("data", [b"", b"plain ascii", "\u00e9\u4e2d\U0001f600".encode(), b"\xc0\x80", b"\xed\xa0\x80",
                                  b"\xf4\x90\x80\x80", b"\xe2\x82", b"ok \xff", b"\xf0\x9f\x98\x80" * 3])
def test_invalid_utf8_the_same_both_ways(data):
    plain, numba = _both_ways(kernels.has_invalid_utf8, data)
    assert plain == numba == (data in (b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"ok \xff"))


def test_random_bytes_utf8_and_lines_the_same_both_ways():
    rnd = random.Random(7)
    for _ in range(200):
        data = bytes(rnd.choice(b"\n\r a\xc3\xa9\x80\xe2\xf0\xff") for _ in range(rnd.randint(0, 40)))
        plain, numba = _both_ways(lambda buf: (kernels.has_invalid_utf8(buf),
                                               [a.tolist() for a in kernels.find_lines(buf)]), data)
        assert plain == numba, data


def test_a_one_line_windows_json_hunt_never_imports_numba(tmp_path, corpora):
    """NXLog and Winlogbeat, one line each, with SigmaHQ's windows rules: Numba never imported; with
    SOC_JIT=numba the same report."""
    rules = str(corpora / "sigma" / "rules" / "windows")
    nx = tmp_path / "nx.json"
    nx.write_text(json.dumps({**T.NX, "EventID": 4688, "Channel": "Security", "CommandLine": "whoami /all",
                              "NewProcessName": "C:\\Windows\\System32\\whoami.exe"}) + "\n")
    wlb = tmp_path / "wlb.json"
    wlb.write_text(json.dumps({"@timestamp": "2024-01-01T00:00:00Z", "winlog": {
        "channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1, "event_data": {
            "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all"}}}) + "\n")
    for path in (nx, wlb):
        out = hunt_both_ways([str(path)], rules, tmp_path / path.stem)
        assert out[""][0] is False and out["numba"][0] is True, path
        assert out[""][1]["sigma"]["matches"] > 0, path
        assert out[""][1] == out["numba"][1], path
