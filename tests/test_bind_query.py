"""BIND 9 query log lines through syslog (category queries), to the dns family."""

from __future__ import annotations

from datetime import UTC, datetime

from soc.parse.spec import load_specs
from soc.sources.sniff import sniff
from tests.conftest import parse_text

H = "Nov 23 09:15:13 ns1 named[812]: "
MODERN = H + "client @0x7f3a2c0a1b40 10.0.0.5#53211 (www.example.com): query: www.example.com IN A +E(0)K (10.0.0.1)"
VIEW = H + ("queries: info: client @0x7f3a2c0a1b40 10.0.0.6#40000 (example.org): view internal: query: example.org "
            "IN MX -E(0)DC (10.0.0.1)")
OLD = H + "client 10.0.0.7#1024 (x.example): query: x.example IN TXT + (10.0.0.1)"
V6 = H + "queries: client @0x7f00 2001:db8::5#5353 (a.example): query: a.example IN AAAA +ET (2001:db8::1)"
OTHER = H + "zone example.com/IN: loaded serial 2026112301"
COLS = ["dns.question.name", "dns.question.class", "dns.question.type", "source.ip", "source.port", "destination.ip",
        "bind.flags", "bind.view"]


def test_query_fields():
    res = parse_text("bind_query", "\n".join([MODERN, VIEW, OLD, V6, OTHER]) + "\n")
    assert res.dead.height == 0
    dns = res.frames[("dns", "bind.query")]
    assert dns.select(COLS).rows() == [
        ("www.example.com", "IN", "A", "10.0.0.5", 53211, "10.0.0.1", "+E(0)K", None),
        ("example.org", "IN", "MX", "10.0.0.6", 40000, "10.0.0.1", "-E(0)DC", "internal"),
        ("x.example", "IN", "TXT", "10.0.0.7", 1024, "10.0.0.1", "+", None),
        ("a.example", "IN", "AAAA", "2001:db8::5", 5353, "2001:db8::1", "+ET", None),
    ]
    assert set(dns["event.action"]) == {"query"} and set(dns["dns.type"]) == {"query"}
    assert str(dns["@timestamp"][0]) == "2026-11-23 02:15:13+00:00" and dns["host.hostname"][0] == "ns1"
    (other,) = res.frames[("syslog", "system.syslog")].to_dicts()
    assert other["message"] == "zone example.com/IN: loaded serial 2026112301"


def test_malformed_lines_and_counts():
    bad = MODERN.replace("#53211", "#70000")
    res = parse_text("bind_query", "\n".join([MODERN, OTHER, bad, MODERN[:9]]) + "\n")
    assert (res.lines, res.parsed) == (4, 2)
    assert res.dead["error.message"].to_list() == [
        "source.port: 70000 is not a valid uint16", "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"]


def test_sniffed_as_bind_query():
    sigs = [s.signature for s in load_specs().values()]
    assert sniff("\n".join([MODERN, VIEW, OLD, OTHER]).encode(), sigs) == "bind_query"


def test_file_channel_lines_without_syslog_header():
    query = "23-Nov-2026 09:15:13.123 " + MODERN.split(": ", 1)[1]
    view = "23-Nov-2026 09:15:14.000 " + VIEW.split(": ", 1)[1]
    other = "23-Nov-2026 09:15:15.000 general: info: zone example.com/IN: loaded serial 1"
    res = parse_text("bind_query_file", "\n".join([query, view, other, "", query.replace("#53211", "#x")]) + "\n")
    assert (res.lines, res.parsed) == (5, 2)
    dns = res.frames[("dns", "bind.query")]
    assert dns.select("@timestamp", *COLS).rows() == [
        (datetime(2026, 11, 23, 2, 15, 13, 123000, tzinfo=UTC), "www.example.com", "IN", "A", "10.0.0.5", 53211,
         "10.0.0.1", "+E(0)K", None),
        (datetime(2026, 11, 23, 2, 15, 14, tzinfo=UTC), "example.org", "IN", "MX", "10.0.0.6", 40000, "10.0.0.1",
         "-E(0)DC", "internal"),
    ]
    assert res.dead["error.message"].to_list() == ["@timestamp: missing", "empty line",
                                                   "source.port: x is not a valid uint16"]
    sigs = [s.signature for s in load_specs().values()]
    assert sniff("\n".join([query, view]).encode(), sigs) == "bind_query_file"
