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
    assert res.lines == 1 and res.parsed == 1 and res.dead.height == 0  # the 4 directives are not records
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
    assert res.lines == 5 and res.parsed == 1
    reasons = dict(zip(res.dead["log.line"].to_list(), res.dead["error.message"].to_list(), strict=True))
    assert reasons[6] == "14 fields where #Fields: names 15"
    assert reasons[7] == "more fields than the 15 that #Fields: names"
    assert "not a valid timestamp" in reasons[8]
    assert reasons[9].startswith("http.response.status_code: OK")


def test_lines_before_any_header_use_the_iis_default_fields():
    res = parse_text("iis_w3c", LINE)
    assert res.dead.height == 0 and frame_of(res)["url.path"].to_list() == ["/owa/auth/logon.aspx"]


# --- issue 16 item 10 -----------------------------------------------------------------------------------------

def test_ipv6_client_with_a_zone_index():
    text = HEADER + LINE.replace(" 113.160.1.2 ", " fe80::9c1d:42ff:fe3a:1b07%12 ")
    row = frame_of(parse_text("iis_w3c", text)).row(0, named=True)
    assert row["source.ip"] == "fe80::9c1d:42ff:fe3a:1b07"  # an IP field cannot hold the zone
    assert row["source.address"] == "fe80::9c1d:42ff:fe3a:1b07%12"


def test_domain_user_is_split():
    text = HEADER + LINE.replace(" 443 - ", " 443 SOKHDT\\nguyen.van.a ")
    row = frame_of(parse_text("iis_w3c", text)).row(0, named=True)
    assert row["user.name"] == "nguyen.van.a" and row["user.domain"] == "SOKHDT"
    upn = HEADER + LINE.replace(" 443 - ", " 443 alice@example.gov.vn ")
    row = frame_of(parse_text("iis_w3c", upn)).row(0, named=True)
    assert row["user.name"] == "alice@example.gov.vn" and row["user.domain"] is None


def test_url_original_is_stem_and_query():
    frame = frame_of(parse_text("iis_w3c", HEADER + LINE + LINE.replace(" replaceCurrent=1 ", " - ")))
    assert frame["url.original"].to_list() == ["/owa/auth/logon.aspx?replaceCurrent=1", "/owa/auth/logon.aspx"]


def test_event_outcome_and_duration():
    frame = frame_of(parse_text("iis_w3c", HEADER + LINE + LINE.replace(" 200 0 0 31", " 401 1 2148074254 15")))
    assert frame["event.outcome"].to_list() == ["success", "failure"]
    assert frame["event.duration"].to_list() == [31_000_000, 15_000_000]  # time-taken is milliseconds


def test_headerless_logs_of_other_known_layouts():
    """A log cut from the middle of a file (no #Fields:) in the layouts IIS administrators pick most often,
    told apart by their field count."""
    all_fields = ("2026-11-20 03:04:05 W3SVC2 WEB-01 10.10.1.5 POST /api/login - 443 - 198.51.100.4 HTTP/1.1 "
                  "Mozilla/5.0+(Windows+NT+10.0) - - portal.example.gov.vn 401 1 2148074254 1453 812 46\n")
    with_xff = LINE.replace(" 31\n", " 31 203.0.113.8,10.0.0.1\n")
    res = parse_text("iis_w3c", LINE + all_fields + with_xff)
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    rows = frame_of(res).rows(named=True)
    assert rows[1]["url.domain"] == "portal.example.gov.vn" and rows[1]["host.hostname"] == "WEB-01"
    assert rows[1]["http.response.status_code"] == 401 and rows[1]["http.response.body.bytes"] == 1453
    assert rows[1]["http.version"] == "1.1" and rows[1]["iis.site_name"] == "W3SVC2"
    assert rows[2]["http.request.x_forwarded_for"] == "203.0.113.8,10.0.0.1"
    assert rows[2]["network.forwarded_ip"] == "203.0.113.8" and rows[2]["source.ip"] == "113.160.1.2"


def test_headerless_line_of_no_known_layout_is_dead_lettered_with_its_count():
    res = parse_text("iis_w3c", "2026-11-20 00:00:01 10.10.1.5 GET / - 443\n")
    assert res.dead["error.message"].to_list() == [
        "7 fields and no #Fields: directive before this line (no default IIS layout has 7 fields)"]


def test_headerless_layouts_are_sniffed():
    from soc.parse.spec import load_specs
    from soc.sources.sniff import sniff

    sigs = [s.signature for s in load_specs().values()]
    line = ("2026-11-20 03:04:05 W3SVC2 WEB-01 10.10.1.5 POST /api/login - 443 - 198.51.100.4 HTTP/1.1 "
            "Mozilla/5.0 - - portal.example.gov.vn 401 1 2148074254 1453 812 46\n")
    assert sniff(line.encode(), sigs) == "iis_w3c"
    assert sniff(LINE.encode(), sigs) == "iis_w3c"


def test_a_header_without_date_leaves_its_lines_dead_not_timeless():
    res = parse_text("iis_w3c", "#Fields: time c-ip cs-method cs-uri-stem sc-status\n01:02:03 10.0.0.1 GET / 200\n")
    assert res.dead["error.message"].to_list() == ["@timestamp: missing"]
