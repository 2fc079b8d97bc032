"""The JSON engine's fast typing (timestamps and integers typed by the Numba extractor, routes typed in two
threads) gives exactly what the column rules' Polars conversions give, dead letters and their reasons too."""

from __future__ import annotations

import polars as pl
import pytest

from soc.parse.engines import json as J
from tests.conftest import parse_text
from tests.test_suricata import ALL, DNS, FLOW, HTTP

VARIANTS = [
    *ALL,
    FLOW.replace("+00:00", "+07:00"), FLOW.replace("+00:00", "-0600"), FLOW.replace("+00:00", "Z"),
    FLOW.replace("+00:00", ""),  # no offset: the second format, read in the configured zone
    FLOW.replace('"start":"2025-11-20T07:59:58.000001+00:00"', '"start":"2025-11-20T07:59:58+00:00"'),
    FLOW.replace('"start":"2025-11-20T07:59:58.000001+00:00"', '"start":"yesterday"'),  # on_error null
    FLOW.replace("2025-11-20T08:00:05.123456", "2025-02-30T08:00:05.123456"),  # no such day: dead
    FLOW.replace('"timestamp":"2025-11-20T08:00:05.123456+00:00",', ""),  # required: dead
    FLOW.replace('"timestamp":"2025', r'"timestamp":"\u0032025'),  # an escaped timestamp (decoded aside)
    FLOW.replace('"src_port":50522', '"src_port":-1'),  # uint16: dead
    FLOW.replace('"src_port":50522', '"src_port":70000'),
    FLOW.replace('"src_port":50522', '"src_port":0'),
    FLOW.replace('"src_port":50522', '"src_port":null'),
    FLOW.replace('"bytes_toserver":1834', '"bytes_toserver":-922337203685477580'),
    FLOW.replace('"bytes_toserver":1834', '"bytes_toserver":123456789012345678901'),  # the slow reader
    FLOW.replace('"bytes_toserver":1834', '"bytes_toserver":"1834"'),  # text where a number is expected
    FLOW.replace('"flow_id":1717171', '"flow_id":-0'),
    HTTP.replace('"status":403', '"status":99999'), HTTP.replace('"status":403', '"status":1e3'),
    DNS.replace('"id":45444', '"id":-45444'),
]


def _both(monkeypatch, text: str):
    fast = parse_text("suricata_eve", text)
    with monkeypatch.context() as m:
        m.setattr(J, "PARALLEL_RECORDS", 0)  # the two threads, even for a few records
        threaded = parse_text("suricata_eve", text)
    with monkeypatch.context() as m:
        m.setattr(J, "_typed_ahead", lambda rules, leaves: ({}, []))  # every value typed by the column rules
        plain = parse_text("suricata_eve", text)
    return fast, threaded, plain


def _same(a, b) -> None:
    assert a.lines == b.lines and set(a.frames) == set(b.frames)
    for key in a.frames:
        assert a.frames[key].equals(b.frames[key]), key
    assert a.dead.equals(b.dead)


@pytest.mark.parametrize("repeat", [1, 50])
def test_fast_typing_equals_the_column_rules(monkeypatch, repeat):
    text = "\n".join(VARIANTS * repeat) + "\n"
    fast, threaded, plain = _both(monkeypatch, text)
    _same(fast, plain)
    _same(threaded, plain)
    assert plain.dead.height == 4 * repeat, plain.dead["error.message"].to_list()
    assert plain.lines == fast.parsed + fast.dead.height == len(VARIANTS) * repeat


def test_the_extractor_types_timestamps_with_offsets_and_integers():
    res = parse_text("suricata_eve", "\n".join([
        FLOW.replace("+00:00", "+07:00"), FLOW.replace("+00:00", "-0600"),
        FLOW.replace('"src_port":50522', '"src_port":-1')]) + "\n")
    flow = res.frames[("network", "suricata.eve")]
    stamps = flow["@timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_list()
    assert stamps == ["2025-11-20T01:00:05.123456", "2025-11-20T14:00:05.123456"]
    assert flow["source.port"].to_list() == [50522, 50522] and flow["source.port"].dtype == pl.UInt16
    assert res.dead["error.message"].to_list() == ["source.port: -1 is not a valid uint16"]


def test_many_records_of_the_slow_reader_keep_their_utc_designator():
    """Records the JSON reader decodes (a number written as text) with a "Z" timestamp: the reader's columns
    used to span several buffers, which sent the timestamps to Polars' strptime, whose %z refuses "Z"."""
    slow = HTTP.replace('"status":403', '"status":"403"')
    res = parse_text("suricata_eve", "\n".join([slow] * 3000 + [HTTP] * 10) + "\n")
    assert res.dead.height == 0, res.dead["error.message"].unique().to_list()
    web = res.frames[("web", "suricata.eve")]
    assert web.height == 3010 and web["@timestamp"].dt.strftime("%H:%M:%S%.3f").unique().to_list() == ["08:00:07.500"]
    assert web["http.response.status_code"].null_count() == 3000  # text where a number is expected: null
