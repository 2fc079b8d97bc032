"""ArcSight CEF: header escapes, extension values with spaces and escaped '=', syslog header or not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from soc.parse.cef_kernel import MAGIC, tokenize_cef
from soc.parse.kernels import find_lines
from soc.parse.kv_kernel import KeyTable
from soc.parse.spec import load_specs
from soc.sources.sniff import sniff
from tests.conftest import parse_text

SCAN = ("Nov 23 09:15:13 ids01 CEF:0|Trend Micro|Deep Security Agent|20.0|4000030|Possible Port Scan|6|"
        "src=198.51.100.7 dst=10.0.0.10 spt=51000 dpt=22 proto=TCP act=blocked msg=port scan from 198.51.100.7 "
        "suser=bob")
# the format guide's own example, with escapes added
WORM = (r"CEF:0|Security|threat\|manager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 "
        r"rt=1795400113000 msg=a\=b c\\d  request=http://x/?q=1&r=2 cs1Label=x")
WAF = ("<134>Nov 23 09:15:15 waf CEF:1|Imperva|WAF|14|sql|SQL Injection|High|src=203.0.113.9 "
       "requestClientApplication=Mozilla/5.0 (X11) act=deny")


def extension(line: str, keys: list[str]) -> dict[str, str | None]:
    """Values of ``keys`` as the kernel spans them."""
    buf = np.frombuffer(bytearray(line.encode()), np.uint8)  # writable as a chunk is: no second compile
    s, e = find_lines(buf)
    t = KeyTable(keys)
    fs, fe, _, err = tokenize_cef(buf, s, e, MAGIC, t.slots, t.hashes, t.mask, t.bytes, t.offsets)
    assert err[0] == 0
    return {k: None if fs[7 + i, 0] < 0 else line.encode()[fs[7 + i, 0]:fe[7 + i, 0]].decode()
            for i, k in enumerate(keys)}


@pytest.mark.parametrize("ext, want", [
    ("msg=a b c act=blocked", {"msg": "a b c", "act": "blocked"}),
    ("act=blocked msg=a b c", {"msg": "a b c", "act": "blocked"}),
    (r"msg=x\=y z act=1", {"msg": r"x\=y z", "act": "1"}),  # an escaped '=' is no key boundary
    ("msg=q?a=b c act=1", {"msg": "q?a=b c", "act": "1"}),  # nor is '=' after a non-space
    ("msg=two  spaces   act=1  ", {"msg": "two  spaces", "act": "1"}),
    ("msg= act=1", {"msg": "", "act": "1"}),
    ("act=1 act=2", {"msg": None, "act": "1"}),
])
def test_values_run_to_the_last_space_before_the_next_key(ext, want):
    assert extension("CEF:0|v|p|1|id|n|5|" + ext, ["msg", "act"]) == want


def test_fields_with_and_without_syslog_header():
    res = parse_text("cef", "\n".join([SCAN, WORM, WAF]) + "\n")
    assert res.dead.height == 0
    rows = res.frames[("security", "cef")].to_dicts()
    scan, worm, waf = rows
    assert {k: scan[k] for k in ("@timestamp", "observer.name", "observer.vendor", "observer.product",
                                 "observer.version", "cef.version", "event.code", "rule.name", "event.severity",
                                 "source.ip", "source.port", "destination.ip", "destination.port",
                                 "network.transport", "event.action", "message", "user.name")} == {
        "@timestamp": datetime(2026, 11, 23, 2, 15, 13, tzinfo=UTC), "observer.name": "ids01",
        "observer.vendor": "Trend Micro", "observer.product": "Deep Security Agent", "observer.version": "20.0",
        "cef.version": "0", "event.code": "4000030", "rule.name": "Possible Port Scan", "event.severity": 6,
        "source.ip": "198.51.100.7", "source.port": 51000, "destination.ip": "10.0.0.10", "destination.port": 22,
        "network.transport": "tcp", "event.action": "blocked", "message": "port scan from 198.51.100.7",
        "user.name": "bob"}
    assert worm["observer.product"] == "threat|manager"  # \| in the header
    assert worm["message"] == "a=b c\\d"  # \= and \\ in a value
    assert worm["url.original"] == "http://x/?q=1&r=2"
    assert worm["@timestamp"] == datetime(2026, 11, 23, 2, 15, 13, tzinfo=UTC)  # rt, no syslog header
    assert worm["observer.name"] is None
    assert (waf["event.severity"], waf["cef.version"], waf["event.action"]) == (8, "1", "deny")  # CEF 1: High


def test_malformed_lines_and_counts():
    lines = [SCAN, SCAN[:80], "CEF:0|V|P|1|2|N|5|junk here", "CEF:0|V|P|1|2|N|5|spt=99999 rt=1795400113000",
             "CEF:0|V|P|1|2|N|5|src=10.0.0.1 rt=yesterday", "no record here", WORM]
    res = parse_text("cef", "\n".join(lines) + "\n")
    assert (res.lines, res.parsed) == (7, 2)
    assert res.dead["error.message"].to_list() == [
        "truncated CEF header (fewer than 7 fields)", "CEF extension does not start with key=value",
        "source.port: 99999 is not a valid uint16", "@timestamp: yesterday is not a valid timestamp",
        "no CEF: record"]


READ = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)  # parse_text's reference: the input's own time
AT = datetime(2026, 11, 23, 2, 15, 13, tzinfo=UTC)  # 09:15:13 in Asia/Ho_Chi_Minh


@pytest.mark.parametrize("ext, when, source", [
    ("rt=1795400113000", AT, "rt"),  # epoch milliseconds (ArcSight's own form)
    ("rt=Nov 23 2026 09:15:13", AT, "rt"),  # no zone: the configured zone
    ("rt=Nov 23 2026 09:15:13.250", AT.replace(microsecond=250000), "rt"),
    ("rt=Nov  3 2026 09:15:13", AT.replace(day=3), "rt"),
    ("rt=Nov 23 2026 02:15:13 UTC", AT, "rt"),
    ("rt=Nov 23 2026 02:15:13.500 GMT", AT.replace(microsecond=500000), "rt"),
    ("rt=Nov 23 2026 04:15:13 +0200", AT, "rt"),
    ("rt=Nov 23 2026 09:15:13 GMT+07:00", AT, "rt"),
    ("rt=Nov 23 09:15:13", AT, "rt"),  # year-less: the year of the input's time
    ("rt=Nov 23 02:15:13.000 UTC", AT, "rt"),
    ("deviceReceiptTime=2026-11-23T02:15:13.000Z", AT, "deviceReceiptTime"),
    ("end=1795400113000 start=1795400000000", AT, "end"),
    ("start=Nov 23 2026 09:15:13 act=x", AT, "start"),
    ("src=10.0.0.1", READ, "input_time"),  # no time of its own: still an event, at the input's time
    ("rt= src=10.0.0.1", READ, "input_time"),  # an empty rt is no time either
])
def test_the_record_time_and_where_it_came_from(ext, when, source):
    res = parse_text("cef", "CEF:0|Vendor|Product|1.0|100|Name|5|" + ext + "\n")
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    row = res.frames[("security", "cef")].row(0, named=True)
    assert (row["@timestamp"], row["soc.timestamp_source"]) == (when, source)


def test_the_record_time_wins_over_the_syslog_header_and_the_header_over_the_input_time():
    rt = "Nov 23 10:00:00 relay01 CEF:0|V|P|1|2|N|5|rt=1795400113000 end=1795400000000 start=1795399000000"
    header = "Nov 23 10:00:00 relay01 CEF:0|V|P|1|2|N|5|src=10.0.0.1"
    rows = parse_text("cef", rt + "\n" + header + "\n").frames[("security", "cef")].rows(named=True)
    assert (rows[0]["@timestamp"], rows[0]["soc.timestamp_source"]) == (AT, "rt")
    assert rows[0]["event.end"] == datetime(2026, 11, 23, 2, 13, 20, tzinfo=UTC)
    assert rows[0]["event.start"] == datetime(2026, 11, 23, 1, 56, 40, tzinfo=UTC)
    assert (rows[1]["@timestamp"], rows[1]["soc.timestamp_source"]) == (datetime(2026, 11, 23, 3, tzinfo=UTC),
                                                                          "syslog")


def test_start_and_end_read_with_their_zone_words():
    line = "CEF:0|V|P|1|2|N|5|start=Nov 23 2026 01:56:40 UTC end=Nov 23 2026 09:15:13 GMT+07:00\n"
    row = parse_text("cef", line).frames[("security", "cef")].row(0, named=True)
    assert (row["@timestamp"], row["soc.timestamp_source"]) == (AT, "end")
    assert (row["event.start"], row["event.end"]) == (datetime(2026, 11, 23, 1, 56, 40, tzinfo=UTC), AT)


def test_without_any_time_the_input_time_is_the_files_mtime(tmp_path):
    """Through the pipeline: the reference of a file is its modification time (the latest moment its lines can
    have been written, and the same on every re-run of the same file)."""
    import os

    from soc import pipeline
    from soc.sources import discover
    from tests.conftest import Keep

    log = tmp_path / "export.cef"
    log.write_text("CEF:0|Vendor|Product|1.0|100|Name|5|src=10.0.0.1 suser=alice\n")
    os.utime(log, (1795400113, 1795400113))
    sink = Keep()
    (st,) = pipeline.run(discover([str(log)]), sink)
    assert (st.read, st.parsed, st.dead) == (1, 1, 0)
    (frame,) = sink.frames[("security", "cef")]
    assert frame.row(0, named=True)["@timestamp"] == AT
    assert frame.row(0, named=True)["soc.timestamp_source"] == "input_time"


def test_severity_words_in_any_case():
    res = parse_text("cef", "CEF:0|Elastic|Vaporware|1.0|18|Web request|low|rt=1795400113000\n"
                            "CEF:1|V|P|1|2|N|very-high|rt=1795400113000\n")
    assert res.frames[("security", "cef")]["event.severity"].to_list() == [3, 10]


def test_sniffed_as_cef_with_or_without_syslog_header():
    sigs = [s.signature for s in load_specs().values()]
    assert sniff("\n".join([SCAN, WAF]).encode(), sigs) == "cef"
    assert sniff((WORM + "\n").encode(), sigs) == "cef"
