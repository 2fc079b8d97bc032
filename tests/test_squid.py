"""Squid native access.log (logformat squid): fields, the code/status and hierarchy/peer pairs, time."""

from __future__ import annotations

from datetime import UTC, datetime

from soc.parse.spec import load_specs
from soc.sources.sniff import sniff
from tests.conftest import parse_text

MISS = ("1795400113.123    150 10.0.0.5 TCP_MISS/200 1234 GET http://example.com/index.html - "
        "HIER_DIRECT/93.184.216.34 text/html")
DENIED = "1795400114.007      3 10.0.0.6 TCP_DENIED/403 3900 CONNECT evil.example:443 bob HIER_NONE/- text/html"
HIT = "1795400115.500     12 10.0.0.5 TCP_MEM_HIT/200 512 GET http://example.com/a.css - HIER_NONE/- text/css"
COLS = ["@timestamp", "source.ip", "squid.elapsed_ms", "squid.result_code", "http.response.status_code",
        "http.response.body.bytes", "http.request.method", "url.original", "user.name", "squid.hierarchy_code",
        "destination.ip", "http.response.mime_type"]


def test_fields():
    res = parse_text("squid", "\n".join([MISS, DENIED, HIT]) + "\n")
    assert res.dead.height == 0
    web = res.frames[("web", "squid.access")]
    assert web.select(COLS).rows() == [
        (datetime(2026, 11, 23, 2, 15, 13, 123000, tzinfo=UTC), "10.0.0.5", 150, "TCP_MISS", 200, 1234, "GET",
         "http://example.com/index.html", None, "HIER_DIRECT", "93.184.216.34", "text/html"),
        (datetime(2026, 11, 23, 2, 15, 14, 7000, tzinfo=UTC), "10.0.0.6", 3, "TCP_DENIED", 403, 3900, "CONNECT",
         "evil.example:443", "bob", "HIER_NONE", None, "text/html"),
        (datetime(2026, 11, 23, 2, 15, 15, 500000, tzinfo=UTC), "10.0.0.5", 12, "TCP_MEM_HIT", 200, 512, "GET",
         "http://example.com/a.css", None, "HIER_NONE", None, "text/css"),
    ]
    assert set(web["event.category"]) == {"web"}


def test_malformed_lines_and_counts():
    lines = [MISS, MISS.replace("/200", "/2x0"), MISS[:40], MISS.replace("1795400113.123", "yesterday"),
             MISS + " extra", DENIED]
    res = parse_text("squid", "\n".join(lines) + "\n")
    assert (res.lines, res.parsed, res.dead.height) == (6, 2, 4)
    assert res.dead["error.message"].to_list() == [
        "http.response.status_code: 2x0 is not a valid uint16", "fewer than 10 fields",
        "@timestamp: yesterday is not a valid epoch_float", "more than 10 fields"]


def test_sniffed_as_squid():
    sigs = [s.signature for s in load_specs().values()]
    assert sniff("\n".join([MISS, DENIED, HIT]).encode(), sigs) == "squid"


def test_event_outcome_from_the_status():
    aborted = "1795400116.001      0 10.0.0.7 NONE/000 0 NONE error:transaction-end-before-headers - HIER_NONE/- -"
    res = parse_text("squid", "\n".join([MISS, DENIED, aborted]) + "\n")
    assert res.frames[("web", "squid.access")]["event.outcome"].to_list() == ["success", "failure", None]
