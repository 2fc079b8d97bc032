"""IIS W3C extended logs (Microsoft's W3C Extended Log File Format documentation)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import parse_text

HEADER = (
    "#Software: Microsoft Internet Information Services 10.0\n"
    "#Version: 1.0\n"
    "#Date: 2026-11-20 00:00:01\n"
    "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
    "cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n"
)
LINE = (
    "2026-11-20 00:00:01 10.10.1.5 GET /owa/auth/logon.aspx replaceCurrent=1 443 - 113.160.1.2 "
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) - 200 0 0 31\n"
)


def frame_of(res):
    (frame,) = res.frames.values()
    return frame


def test_fields_follow_the_header_and_time_is_utc():
    res = parse_text("iis_w3c", HEADER + LINE, zone="Asia/Ho_Chi_Minh")
    assert res.lines == 5 and res.parsed == 5 and res.dead.height == 0
    row = frame_of(res).row(0, named=True)
    assert row["@timestamp"] == datetime(2026, 11, 20, 0, 0, 1, tzinfo=UTC)
    assert row["destination.ip"] == "10.10.1.5" and row["destination.port"] == 443
    assert row["url.path"] == "/owa/auth/logon.aspx" and row["url.query"] == "replaceCurrent=1"
    assert row["user.name"] is None and row["source.ip"] == "113.160.1.2"
    assert row["user_agent.original"] == "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
    assert row["http.response.status_code"] == 200 and row["iis.time_taken_ms"] == 31
    assert row["event.dataset"] == "iis.access" and row["log.line"] == 5


def test_several_header_blocks_change_the_fields():
    text = HEADER + LINE + "#Fields: time c-ip cs-method cs-uri-stem sc-status date\n" + \
        "01:02:03 2001:db8::5 POST /EWS/Exchange.asmx 401 2026-11-21\n"
    frame = frame_of(parse_text("iis_w3c", text))
    assert frame.height == 2
    last = frame.row(1, named=True)
    assert last["source.ip"] == "2001:db8::5" and last["http.request.method"] == "POST"
    assert last["@timestamp"] == datetime(2026, 11, 21, 1, 2, 3, tzinfo=UTC)
    assert last["destination.port"] is None and last["log.line"] == 7


def test_header_state_carries_across_chunks():
    text = HEADER + LINE * 200
    res = parse_text("iis_w3c", text, chunk_size=1000)
    assert res.dead.height == 0 and frame_of(res).height == 200
    assert sorted(frame_of(res)["log.line"].to_list()) == list(range(5, 205))


def test_wrong_field_counts_and_bad_values_are_dead_lettered():
    text = HEADER + LINE + LINE.replace(" 31\n", "\n") + LINE.replace(" 31\n", " 31 extra\n") + \
        LINE.replace("2026-11-20", "2026-13-45") + LINE.replace(" 200 ", " OK ")
    res = parse_text("iis_w3c", text)
    assert res.lines == 9 and res.parsed == 5
    reasons = dict(zip(res.dead["log.line"].to_list(), res.dead["error.message"].to_list(), strict=True))
    assert reasons[6] == "14 fields where #Fields: names 15"
    assert reasons[7] == "more fields than the 15 that #Fields: names"
    assert "not a valid timestamp" in reasons[8]
    assert reasons[9].startswith("http.response.status_code: OK")


def test_lines_before_any_header_use_the_iis_default_fields():
    res = parse_text("iis_w3c", LINE)
    assert res.dead.height == 0 and frame_of(res)["url.path"].to_list() == ["/owa/auth/logon.aspx"]
