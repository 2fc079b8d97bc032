"""Windows DNS Server debug log (dns.log): lines written from the layout the file's own legend documents
(date, time, thread, context, packet id, UDP/TCP, Snd/Rcv, remote IP, Xid, R, opcode, [flags hex, flag
letters, response code], question type, question name in length-prefixed wire form)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from soc.parse.columns import Context, Rule, SpecError, apply, rules_from_spec
from soc.parse.spec import load_specs
from soc.sources.sniff import sniff
from tests.conftest import ROOT, parse_text

HEADER = ["DNS Server log file creation at 11/23/2026 10:15:03 AM", "",
          "Message logging key (for packets - other items use a subset of these fields):",
          "\tField #  Information         Values", "\t-------  -----------         ------",
          "\t   1     Date", "\t   2     Time", "\t   3     Thread ID", "\t   4     Context",
          "\t   5     Internal packet identifier", "\t   6     UDP/TCP indicator", "\t   7     Send/Receive indicator",
          "\t   8     Remote IP", "\t   9     Xid (hex)", "\t  10     Query/Response      R = Response",
          "\t                             blank = Query", "\t  11     Opcode              Q = Standard Query",
          "\t                             N = Notify", "\t                             U = Update",
          "\t                             ? = Unknown", "\t  12     [ Flags (hex)",
          "\t  13     Flags (char codes)  A = Authoritative Answer",
          "\t                             T = Truncated Response",
          "\t                             D = Recursion Desired",
          "\t                             R = Recursion Available",
          "\t  14     ResponseCode ]", "\t  15     Question Type", "\t  16     Question Name", ""]
P = "11/23/2026 10:15:03 AM 0B4C PACKET  000000A1B2C3D4E5 "
QUERY = P + "UDP Rcv 192.168.1.20    8f1a   Q [0001   D   NOERROR] A      (7)example(3)com(0)"
ANSWER = P + "UDP Snd 192.168.1.20    8f1a R Q [8081   DR  NOERROR] A      (7)example(3)com(0)"
TCP6 = ("11/23/2026 1:15:04 PM 0B4C PACKET  000000A1B2C3D500 TCP Rcv fe80::1c2b:3a4d:5e6f:7a8b 0002   Q "
        "[0001   D   NOERROR] AAAA   (3)www(7)example(3)com(0)")
NXDOMAIN = P + "UDP Snd ::1             3c8a R Q [8385 A DR NXDOMAIN] A      (4)nope(7)example(3)com(0)"
SERVFAIL = P + "UDP Snd 192.168.2.9     7822 R U [02a8      SERVFAIL] SOA    (4)home(7)example(3)org(0)"
FORWARD = P + "UDP Snd 8.8.8.8         4d21   Q [0001   D   NOERROR] MX     (7)example(3)net(0)"
EVENT = "11/23/2026 10:15:03 AM 0B4C EVENT   The DNS server has finished the background loading of zones."
PACKETS = [QUERY, ANSWER, TCP6, NXDOMAIN, SERVFAIL, FORWARD]


def dns(lines: list[str]) -> pl.DataFrame:
    res = parse_text("windows_dns_debug", "\n".join(lines) + "\n")
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    return res.frames[("dns", "microsoft.dns_server")]


def test_query_received_and_answer_sent():
    q, a = dns([QUERY, ANSWER]).to_dicts()
    assert q["@timestamp"] == datetime(2026, 11, 23, 3, 15, 3, tzinfo=UTC)  # Asia/Ho_Chi_Minh local time
    want = {"source.ip": "192.168.1.20", "destination.ip": None, "network.transport": "udp",
            "network.direction": "ingress", "dns.id": "8f1a", "dns.type": "query", "event.action": "query",
            "dns.op_code": "QUERY", "dns.header_flags": "RD", "dns.response_code": "NOERROR",
            "dns.question.type": "A", "dns.question.name": "example.com", "windows_dns.thread_id": "0B4C",
            "windows_dns.packet_id": "000000A1B2C3D4E5", "windows_dns.flags": "0001",
            "event.dataset": "microsoft.dns_server", "event.category": "network", "log.line": 1}
    assert {k: q[k] for k in want} == want
    assert {k: a[k] for k in ("source.ip", "destination.ip", "network.direction", "dns.type", "event.action",
                              "dns.header_flags", "windows_dns.flags", "log.line")} == {
        "source.ip": None, "destination.ip": "192.168.1.20", "network.direction": "egress", "dns.type": "answer",
        "event.action": "response", "dns.header_flags": "RD RA", "windows_dns.flags": "8081", "log.line": 2}


def test_tcp_ipv6_and_afternoon_time():
    (row,) = dns([TCP6]).to_dicts()
    assert (row["network.transport"], row["source.ip"], row["dns.question.type"], row["dns.question.name"]) == (
        "tcp", "fe80::1c2b:3a4d:5e6f:7a8b", "AAAA", "www.example.com")
    assert row["@timestamp"] == datetime(2026, 11, 23, 6, 15, 4, tzinfo=UTC)  # 1:15:04 PM +07:00


def test_error_codes_opcodes_and_flag_letters():
    nx, sf, fwd = dns([NXDOMAIN, SERVFAIL, FORWARD]).to_dicts()
    assert (nx["dns.response_code"], nx["dns.header_flags"], nx["destination.ip"], nx["dns.question.name"]) == (
        "NXDOMAIN", "AA RD RA", "::1", "nope.example.com")
    assert (sf["dns.response_code"], sf["dns.op_code"], sf["dns.header_flags"], sf["dns.question.type"]) == (
        "SERVFAIL", "UPDATE", None, "SOA")  # no flag letter: null, not an empty string
    # a query the server sends on (recursion, forwarding): the remote is the destination
    assert (fwd["dns.type"], fwd["destination.ip"], fwd["source.ip"], fwd["network.direction"]) == (
        "query", "8.8.8.8", None, "egress")


def test_long_and_root_names():
    label = "a" * 63
    long_name = ".".join([label, label, label, "b" * 61])  # 253 characters, the DNS maximum
    wire = "".join(f"({len(x)}){x}" for x in long_name.split(".")) + "(0)"
    tunnel = QUERY.replace("A      (7)example(3)com(0)", f"TXT    {wire}")
    root = QUERY.replace("(7)example(3)com(0)", "(0)").replace("] A   ", "] NS  ")
    t, r = dns([tunnel, root]).to_dicts()
    assert t["dns.question.name"] == long_name and len(t["dns.question.name"]) == 253
    assert t["dns.question.type"] == "TXT"
    assert (r["dns.question.name"], r["dns.question.type"]) == (".", "NS")


@pytest.mark.parametrize("stamp, want", [
    ("11/23/2026 10:15:03 AM", datetime(2026, 11, 23, 3, 15, 3, tzinfo=UTC)),
    ("11/23/2026 12:05:00 AM", datetime(2026, 11, 22, 17, 5, 0, tzinfo=UTC)),  # midnight in 12-hour form
    ("3/1/2026 22:15:03", datetime(2026, 3, 1, 15, 15, 3, tzinfo=UTC)),  # M/D/YYYY, 24-hour
    ("2026/11/23 9:30:50", datetime(2026, 11, 23, 2, 30, 50, tzinfo=UTC)),  # ja-JP
    ("2026-11-23 09:30:50", datetime(2026, 11, 23, 2, 30, 50, tzinfo=UTC)),
    ("23.11.2026 9:26:24", datetime(2026, 11, 23, 2, 26, 24, tzinfo=UTC)),  # de-DE, ru-RU
])
def test_locale_dates_and_times(stamp, want):
    (row,) = dns([QUERY.replace("11/23/2026 10:15:03 AM", stamp)]).to_dicts()
    assert row["@timestamp"] == want


def test_whole_file_header_legend_events_and_crlf():
    text = "\r\n".join([*HEADER, EVENT, *PACKETS]) + "\r\n"
    res = parse_text("windows_dns_debug", text)
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    assert res.lines == len(HEADER) + 1 + len(PACKETS) and res.parsed == res.lines
    assert res.frames[("dns", "microsoft.dns_server")].height == len(PACKETS)
    syslog = res.frames[("syslog", "microsoft.dns_server")]
    # the header stamp and the EVENT line are events; the legend and blank lines are layout (no event)
    assert syslog.select("log.line", "windows_dns.context", "message", "@timestamp").rows() == [
        (1, "header", "DNS Server log file creation at 11/23/2026 10:15:03 AM",
         datetime(2026, 11, 23, 3, 15, 3, tzinfo=UTC)),
        (len(HEADER) + 1, "EVENT", "The DNS server has finished the background loading of zones.",
         datetime(2026, 11, 23, 3, 15, 3, tzinfo=UTC)),
    ]
    assert syslog["windows_dns.thread_id"].to_list() == [None, "0B4C"]
    assert sum(f.height for f in res.frames.values()) == 2 + len(PACKETS)


def test_vietnamese_locale_stamps_are_read_day_first():
    """A vi-VN server writes "23/11/2026 2:15:03 CH": day first, SA (sáng) for AM, CH (chiều) for PM. The
    designators name the locale, so "05/11/2026" on such a line is 5 November, never 11 May."""
    stamps = ["23/11/2026 10:15:03 SA", "05/11/2026 2:15:03 CH", "05/11/2026 12:15:03 SA", "05/11/2026 12:15:03 CH",
              "11/23/2026 10:15:03 AM"]  # and an en-US line in the same file: month first
    lines = [QUERY.replace("11/23/2026 10:15:03 AM", s) for s in stamps]
    lines.append("DNS Server log file creation at 05/11/2026 9:00:00 CH")
    res = parse_text("windows_dns_debug", "\n".join(lines) + "\n")
    assert res.dead.height == 0
    local = [datetime(2026, 11, 23, 10, 15, 3), datetime(2026, 11, 5, 14, 15, 3), datetime(2026, 11, 5, 0, 15, 3),
             datetime(2026, 11, 5, 12, 15, 3), datetime(2026, 11, 23, 10, 15, 3)]
    want = [(t - timedelta(hours=7)).replace(tzinfo=UTC) for t in local]  # the default zone, Asia/Ho_Chi_Minh
    assert res.frames[("dns", "microsoft.dns_server")]["@timestamp"].to_list() == want
    header = res.frames[("syslog", "microsoft.dns_server")]["@timestamp"].to_list()
    assert header == [datetime(2026, 11, 5, 14, tzinfo=UTC)]


def test_malformed_truncated_and_detail_lines_are_dead_lettered_with_a_reason():
    cut = [QUERY[:n] for n in (30, 60, 90, 115, len(QUERY) - 6)]  # the last one ends "(7)example(3)": no (0)
    bad_ip = QUERY.replace("192.168.1.20", "192.168.1.zz")
    bad_date = QUERY.replace("11/23/2026", "13/45/2026")
    unknown = QUERY.replace("11/23/2026 10:15:03 AM", "23/11/2026 10:15:03 XY")  # a designator of no locale read
    detail = ["UDP question info at 000000A1B2C3D4E5", "  Socket = 508", "  Remote addr 192.168.1.20, port 52417",
              "    XID       0x8f1a"]
    lines = [QUERY, *cut, bad_ip, bad_date, unknown, *detail, ANSWER]
    res = parse_text("windows_dns_debug", "\n".join(lines) + "\n")
    assert res.lines == len(lines) and res.parsed + res.dead.height == res.lines
    assert res.frames[("dns", "microsoft.dns_server")]["log.line"].to_list() == [1, len(lines)]
    layout = "PACKET line without the layout of the DNS debug log (cut or corrupted)"
    other = ("not a line of the DNS debug log layout (PACKET, EVENT or header line); full-packet detail lines "
             "are not read")
    reasons = dict(zip(res.dead["log.line"].to_list(), res.dead["error.message"].to_list(), strict=True))
    assert reasons == {
        2: other,  # cut inside the time: no context word left
        3: layout, 4: layout, 5: layout, 6: layout, 7: layout,
        8: "@timestamp: 13/45/2026 10:15:03 AM is not a valid timestamp",
        9: "@timestamp: 23/11/2026 10:15:03 XY is not a valid timestamp",
        10: other, 11: other, 12: other, 13: other,
    }
    assert res.dead.filter(pl.col("log.line") == 3)["event.original"].to_list() == [QUERY[:60].encode()]


def test_sniffed_from_the_head_of_a_file_that_is_all_header():
    sigs = [s.signature for s in load_specs().values()]
    assert sniff("\r\n".join(HEADER).encode(), sigs) == "windows_dns_debug"
    assert sniff("\n".join([*HEADER, EVENT, *PACKETS]).encode(), sigs) == "windows_dns_debug"
    assert sniff("\n".join(PACKETS).encode(), sigs) == "windows_dns_debug"  # a file cut from the middle


def test_sample_log_holds_the_planted_dns_tunnel():
    res = parse_text("windows_dns_debug", (ROOT / "sample_logs/dns/dns.log").read_bytes())
    assert res.dead.height == 0
    frame = res.frames[("dns", "microsoft.dns_server")]
    tunnel = frame.filter(pl.col("dns.question.name").str.ends_with(".t.exfil.example"))
    queries = tunnel.filter(pl.col("dns.type") == "query")
    assert queries.height == 40 and set(queries["source.ip"]) == {"10.20.3.77"}
    assert set(queries["dns.question.type"].cast(pl.String)) == {"TXT"}
    assert tunnel.filter(pl.col("dns.response_code") == "NXDOMAIN").height == 26
    assert queries["dns.question.name"].str.len_chars().min() > 55


# the column options this format needed, generic for any spec


def typed(rule: dict, values: list[str | None]) -> list:
    (r,) = rules_from_spec({"out": rule})
    frame, why = apply(pl.DataFrame({r.raw: pl.Series(values, dtype=pl.String)}), [r], Context("t"))
    assert why.null_count() == len(values)
    return frame["out"].to_list()


def test_replace_regex_strip_and_extract_options():
    name = {"from": "x", "replace_regex": [r"\(\d+\)", "."], "strip": ".", "map": {"": "."}}
    assert typed(name, ["(7)example(3)com(0)", "(0)", None, "-"]) == ["example.com", ".", None, None]
    assert typed({"from": "x", "replace_regex": [r"^(\w+)-(\w+)$", "$2-$1"]}, ["ab-cd", "x"]) == ["cd-ab", "x"]
    assert typed({"from": "x", "strip": " ()"}, ["  (a b) ", "c"]) == ["a b", "c"]
    domain = {"from": "x", "extract": r"^([^\\]+)\\", "fallback": {"from": "x", "extract": "@(.+)$"}}
    assert typed(domain, [r"LOCAL\admin", "bob@corp.example", "alice", None]) == ["LOCAL", "corp.example", None,
                                                                                 None]


@pytest.mark.parametrize("rule, message", [
    ({"from": "x", "replace_regex": ["(", "."]}, "is not a valid regex"),
    ({"from": "x", "replace_regex": ["a"]}, r"replace_regex is \[pattern, replacement\]"),
    ({"from": "x", "extract": "[a-"}, "is not a valid regex"),
    ({"from": "x", "extract": 3}, "needs a regex string"),
])
def test_bad_column_regexes_are_spec_errors(rule, message):
    with pytest.raises(SpecError, match=message):
        Rule.from_spec("out", rule, ("-", ""))


def test_regex_engine_spec_errors(tmp_path):
    from soc.parse.engines.regex import load

    with pytest.raises(SpecError, match="unknown keys"):
        load({"events": [], "bogus": 1}, ("-", ""), "t")
    with pytest.raises(SpecError, match="not a valid regex"):
        load({"events": [{"family": "dns", "dataset": "d", "patterns": [{"match": "(?P<a>"}]}]}, ("-", ""), "t")
    with pytest.raises(SpecError, match="fields no pattern gives"):
        load({"events": [{"family": "dns", "dataset": "d", "columns": {"dns.id": "nope"},
                          "patterns": [{"match": "(?P<a>x)"}]}]}, ("-", ""), "t")
    with pytest.raises(SpecError, match="known family"):
        load({"events": [{"family": "nope", "dataset": "d", "patterns": []}]}, ("-", ""), "t")
