"""Zeek logs (Zeek documentation, "Logs": conn.log, dns.log, http.log, ssl.log, notice.log), in the default
TSV form with its header, and as JSON (LogAscii::use_json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.conftest import Keep, parse_text

T = "\t"


def header(path: str, fields: list[str], types: list[str]) -> str:
    return (f"#separator \\x09\n#set_separator{T},\n#empty_field{T}(empty)\n#unset_field{T}-\n#path{T}{path}\n"
            f"#open{T}2026-11-20-08-00-00\n#fields{T}{T.join(fields)}\n#types{T}{T.join(types)}\n")


ID = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
ID_T = ["time", "string", "addr", "port", "addr", "port"]
CONN_F = ID + ["proto", "service", "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
               "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents"]
CONN_T = ID_T + ["enum", "string", "interval", "count", "count", "string", "bool", "bool", "count", "string", "count",
                 "count", "count", "count", "set[string]"]
CONN = ["1331901000.123456", "CHhAvVGS1DHFjwGM9", "192.168.202.79", "50465", "192.168.229.251", "80", "tcp", "http",
        "0.001", "166", "214", "SF", "T", "F", "0", "ShADadFf", "6", "486", "4", "382", "(empty)"]
DNS_F = ID + ["proto", "trans_id", "rtt", "query", "qclass", "qclass_name", "qtype", "qtype_name", "rcode",
              "rcode_name", "AA", "TC", "RD", "RA", "Z", "answers", "TTLs", "rejected"]
DNS_T = ID_T + ["enum", "count", "interval", "string", "count", "string", "count", "string", "count", "string",
                "bool", "bool", "bool", "bool", "count", "vector[string]", "vector[interval]", "bool"]
DNS = ["1763600405.5", "C2m7Fs2Bq4bDc1Qk7", "10.0.0.5", "53001", "10.0.0.53", "53", "udp", "45444", "0.012",
       "portal.gov.vn", "1", "C_INTERNET", "1", "A", "0", "NOERROR", "F", "F", "T", "T", "0",
       "203.0.113.80,203.0.113.81", "300.000000,300.000000", "F"]
HTTP_F = ID + ["trans_depth", "method", "host", "uri", "referrer", "version", "user_agent", "request_body_len",
               "response_body_len", "status_code", "status_msg", "username"]
HTTP_T = ID_T + ["count", "string", "string", "string", "string", "string", "string", "count", "count", "count",
                 "string", "string"]
HTTP = ["1763600406.000001", "CpjMvX2lB5xXzB2v8", "198.51.100.23", "41000", "10.0.0.80", "80", "1", "POST",
        "portal.gov.vn", "/login.php?u=admin", "-", "1.1", "sqlmap/1.7 (https://sqlmap.org)", "42", "512", "403",
        "Forbidden", "-"]
SSL_F = ID + ["version", "cipher", "curve", "server_name", "resumed", "last_alert", "next_protocol", "established",
              "subject", "issuer", "validation_status"]
SSL_T = ID_T + ["string"] * 4 + ["bool", "string", "string", "bool", "string", "string", "string"]
SSL = ["1763600407.25", "CsslX1", "10.0.0.5", "50523", "203.0.113.9", "443", "TLSv12",
       "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "secp256r1", "mail.example.org", "F", "-", "h2", "T",
       "CN=mail.example.org", "CN=R3,O=Let's Encrypt,C=US", "ok"]
NOTICE_F = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "note", "msg", "sub", "src",
            "dst", "p", "actions"]
NOTICE_T = ID_T + ["enum", "enum", "string", "string", "addr", "addr", "port", "set[enum]"]
NOTICE = ["1763600408.0", "-", "-", "-", "-", "-", "-", "SSH::Password_Guessing",
          "203.0.113.45 appears to be guessing SSH passwords (seen in 30 connections).", "Sampled servers: 10.0.0.22",
          "203.0.113.45", "-", "-", "Notice::ACTION_LOG"]


def block(path: str, fields, types, *rows) -> str:
    return header(path, fields, types) + "".join(T.join(r) + "\n" for r in rows) + f"#close{T}2026-11-20-09-00-00\n"


ALL_TSV = (block("conn", CONN_F, CONN_T, CONN) + block("dns", DNS_F, DNS_T, DNS) + block("http", HTTP_F, HTTP_T, HTTP)
           + block("ssl", SSL_F, SSL_T, SSL) + block("notice", NOTICE_F, NOTICE_T, NOTICE))


def check_all(res, tsv: bool) -> None:
    assert res.dead.height == 0
    assert {k: f.height for k, f in res.frames.items()} == {
        ("network", "zeek.conn"): 1, ("dns", "zeek.dns"): 1, ("web", "zeek.http"): 1, ("security", "zeek.ssl"): 1,
        ("security", "zeek.notice"): 1}
    conn = res.frames[("network", "zeek.conn")].row(0, named=True)
    assert conn["@timestamp"] == datetime(2012, 3, 16, 12, 30, 0, 123456, tzinfo=UTC)
    assert (conn["source.ip"], conn["source.port"]) == ("192.168.202.79", 50465)
    assert (conn["destination.ip"], conn["destination.port"]) == ("192.168.229.251", 80)
    assert conn["network.transport"] == "tcp" and conn["network.protocol"] == "http"
    assert (conn["source.bytes"], conn["destination.bytes"]) == (166, 214)
    assert (conn["source.packets"], conn["destination.packets"]) == (6, 4)
    assert conn["zeek.connection.state"] == "SF" and conn["zeek.connection.history"] == "ShADadFf"
    assert conn["zeek.connection.duration"] == 0.001 and conn["zeek.session_id"] == "CHhAvVGS1DHFjwGM9"
    assert conn["zeek.connection.local_orig"] == "true" and conn["zeek.connection.local_resp"] == "false"
    assert conn["event.dataset"] == "zeek.conn" and conn["event.category"] == "network"

    dns = res.frames[("dns", "zeek.dns")].row(0, named=True)
    assert dns["@timestamp"] == datetime(2025, 11, 20, 1, 0, 5, 500000, tzinfo=UTC)
    assert dns["dns.question.name"] == "portal.gov.vn" and dns["dns.question.type"] == "A"
    assert dns["dns.question.class"] == "C_INTERNET" and dns["dns.response_code"] == "NOERROR"
    assert dns["dns.id"] == "45444" and dns["zeek.dns.answers"] == "203.0.113.80,203.0.113.81"
    assert dns["destination.port"] == 53 and dns["network.transport"] == "udp" and dns["zeek.dns.rtt"] == 0.012
    assert dns["zeek.dns.rejected"] == "false"  # Zeek's T/F in TSV, true/false in JSON: one spelling

    web = res.frames[("web", "zeek.http")].row(0, named=True)
    assert web["@timestamp"] == datetime(2025, 11, 20, 1, 0, 6, 1, tzinfo=UTC)
    assert web["http.request.method"] == "POST" and web["url.domain"] == "portal.gov.vn"
    assert web["url.original"] == "/login.php?u=admin" and web["http.request.referrer"] is None
    assert web["user_agent.original"] == "sqlmap/1.7 (https://sqlmap.org)" and web["http.version"] == "1.1"
    assert web["http.response.status_code"] == 403 and web["http.response.body.bytes"] == 512
    assert web["http.request.body.bytes"] == 42 and web["zeek.http.status_msg"] == "Forbidden"
    assert web["user.name"] is None and web["source.ip"] == "198.51.100.23"

    ssl, notice = (res.frames[("security", f"zeek.{p}")].row(0, named=True) for p in ("ssl", "notice"))
    assert ssl["tls.server.sni"] == "mail.example.org" and ssl["url.domain"] == "mail.example.org"
    assert ssl["tls.version"] == "TLSv12" and ssl["tls.cipher"] == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert ssl["tls.server.subject"] == "CN=mail.example.org" and ssl["zeek.ssl.validation_status"] == "ok"
    assert ssl["tls.established"] == "true" and ssl["tls.resumed"] == "false" and ssl["destination.port"] == 443
    assert notice["rule.name"] == "SSH::Password_Guessing" and notice["event.kind"] == "alert"
    assert notice["message"].startswith("203.0.113.45 appears to be guessing SSH passwords")
    assert notice["source.ip"] == "203.0.113.45" and notice["destination.ip"] is None
    assert notice["zeek.notice.sub"] == "Sampled servers: 10.0.0.22"


def test_tsv_header_blocks_route_each_stream_to_its_family():
    res = parse_text("zeek", ALL_TSV)
    check_all(res, tsv=True)
    assert res.lines == res.parsed == 5  # header lines (#fields, #close, ...) are not records: not read
    assert res.frames[("network", "zeek.conn")]["log.line"].to_list() == [9]


@pytest.mark.parametrize("chunk_size", [300, 1000, 4096])
def test_tsv_header_state_carries_across_chunks(chunk_size):
    text = header("conn", CONN_F, CONN_T) + (T.join(CONN) + "\n") * 100
    res = parse_text("zeek", text, chunk_size=chunk_size)
    frame = res.frames[("network", "zeek.conn")]
    assert res.dead.height == 0 and frame.height == 100
    assert frame["log.line"].to_list() == list(range(9, 109))


def test_tsv_bad_lines_are_dead_lettered():
    short = T.join(CONN[:-1])
    bad_ts = T.join(["yesterday", *CONN[1:]])
    text = T.join(CONN) + "\n" + header("conn", CONN_F, CONN_T) + short + "\n" + bad_ts + "\n" + T.join(CONN) + "\n"
    res = parse_text("zeek", text)
    assert res.lines == 4 and res.parsed + res.dead.height == res.lines and res.dead.height == 3  # 8 headers
    dead = dict(zip(res.dead["log.line"], res.dead["error.message"], strict=True))
    assert dead == {1: "no #fields header before this line", 10: "20 fields where #fields names 21",
                    11: "@timestamp: yesterday is not a valid epoch_float"}
    assert res.dead.filter(res.dead["log.line"] == 10)["event.original"].to_list() == [short.encode()]
    assert res.frames[("network", "zeek.conn")]["log.line"].to_list() == [12]


def as_json(fields, row, path: str | None) -> str:
    rec = {"_path": path} if path else {}
    for name, value, kind in zip(fields, row, TYPES[tuple(fields)], strict=True):
        if value in ("-", "(empty)"):
            continue
        if kind in ("count", "port", "int"):
            rec[name] = int(value)
        elif kind in ("interval", "time", "double"):
            rec[name] = float(value)
        elif kind == "bool":
            rec[name] = value == "T"
        elif kind.startswith(("set", "vector")):
            rec[name] = value.split(",")
        else:
            rec[name] = value
    return json.dumps(rec)


TYPES = {tuple(CONN_F): CONN_T, tuple(DNS_F): DNS_T, tuple(HTTP_F): HTTP_T, tuple(SSL_F): SSL_T,
         tuple(NOTICE_F): NOTICE_T}
STREAMS = [("conn", CONN_F, CONN), ("dns", DNS_F, DNS), ("http", HTTP_F, HTTP), ("ssl", SSL_F, SSL),
           ("notice", NOTICE_F, NOTICE)]


@pytest.mark.parametrize("with_path", [True, False])
def test_json_records_route_by_path_or_by_their_fields(with_path):
    text = "".join(as_json(f, r, p if with_path else None) + "\n" for p, f, r in STREAMS)
    res = parse_text("zeek_json", text)
    check_all(res, tsv=False)


def test_json_iso_timestamps_and_bad_lines():
    rec = json.loads(as_json(CONN_F, CONN, "conn"))
    rec["ts"] = "2012-03-16T12:30:00.123456Z"
    text = json.dumps(rec) + "\n" + '{"ts": 1331901000.5, "uid": "x", "conn_state": "S0"\n' + json.dumps(rec) + "\n"
    res = parse_text("zeek_json", text)
    frame = res.frames[("network", "zeek.conn")]
    assert frame["@timestamp"].to_list() == [datetime(2012, 3, 16, 12, 30, 0, 123456, tzinfo=UTC)] * 2
    assert res.dead["error.message"].to_list() == ["truncated JSON object at byte 51"]
    assert res.lines == 3 and res.parsed == 2


def test_sniffed_and_not_stealing_others():
    from soc.parse.spec import load_specs
    from soc.sources.sniff import sniff

    sigs = [s.signature for s in load_specs().values()]
    assert sniff(ALL_TSV.encode(), sigs) == "zeek"
    assert sniff(b"".join((as_json(f, r, None) + "\n").encode() for _, f, r in STREAMS), sigs) == "zeek_json"
    assert sniff(b"#Software: Microsoft Internet Information Services 10.0\n#Fields: date time c-ip\n", sigs) \
        == "iis_w3c"


def test_benchmark_json_and_tsv_of_the_same_connections_parse_alike(tmp_path):
    """The flat-NDJSON benchmark's records (``bench.gen_zeek_json``) are the TSV benchmark's connections:
    both parse without a dead letter, sniffed, into the same conn frame."""
    from bench.gen_zeek import generate as tsv
    from bench.gen_zeek_json import generate as ndjson
    from soc import pipeline
    from soc.sources import discover

    frames = {}
    for name, make, lines in (("conn.log", tsv, 5_009), ("conn.json", ndjson, 5_000)):  # TSV: 9 header lines
        path = tmp_path / name
        make(str(path), lines)
        sink = Keep()
        (st,) = pipeline.run(discover([str(path)]), sink=sink)
        assert st.error is None and st.dead == 0, st.as_dict()
        (frame,) = sink.frames[("network", "zeek.conn")]
        frames[name] = frame.drop("log.file.path", "log.line", "log.offset", "event.original", strict=False)
    assert st.format == "zeek_json" and frames["conn.json"].height == 5_000
    assert frames["conn.json"].equals(frames["conn.log"].select(frames["conn.json"].columns))


def _float_rule_us(text: str) -> int | None:
    """What the ``epoch_float`` rule makes of ``text`` by float64: Unix seconds times 1e6, rounded."""
    import polars as pl

    from soc.schema.time import epoch_float

    return pl.select(epoch_float(pl.lit(text).cast(pl.Float64, strict=False)).dt.epoch("us")).item()


def test_decimal_epoch_kernel_gives_the_float_rules_microseconds():
    import random

    import numpy as np

    from soc.parse.fasttime import MAX_EXACT_EPOCH, _epoch

    rng = random.Random(7)
    texts = ["0", "0.5", "1331901000", "1331901000.", "1331901000.1234567", "-1.5", "1e9", "+12", "",
             str(MAX_EXACT_EPOCH - 1) + ".999999", str(MAX_EXACT_EPOCH), "12345678901", "1.2.3"]
    for _ in range(3000):
        digits = rng.randint(0, 6)
        whole = rng.randrange(MAX_EXACT_EPOCH)
        texts.append(f"{whole}.{rng.randrange(10 ** digits):0{digits}d}" if digits else str(whole))
    taken = 0
    for text in texts:
        buf = np.frombuffer(bytearray(text.encode()), np.uint8)  # writable as a chunk is: no second compile
        us, ok, _ = _epoch(buf, 0, buf.size)
        if ok:  # what the kernel takes, it reads as the float64 rule does, to the microsecond
            taken += 1
            assert us == _float_rule_us(text), text
    assert taken == 3000 + 4  # the random ones, 0, 0.5, 1331901000 and MAX - 1 .999999; no other


def _parse_seeing_typed(text: str, prefix: str):
    """``parse_text`` of Zeek JSON, and for each batch of a route the engine's typed columns (``prefix`` + raw)
    its rules were given."""
    from soc.parse.engines.json import Columns

    made = []
    real = Columns.typed

    def typed(self, fields, rows):
        out = real(self, fields, rows)
        made.append(sorted(c for c in out if c.startswith(prefix)))
        return out

    Columns.typed = typed
    try:
        return parse_text("zeek_json", text), made
    finally:
        Columns.typed = real


def test_json_ts_as_decimal_seconds_is_read_by_the_kernel_as_by_the_rule():
    rec = json.loads(as_json(CONN_F, CONN, "conn"))
    stamps = ["1331901000", "1331901000.5", "1331901000.123456", "1331901000.1234567", "2012-03-16T12:30:00Z"]
    for group in (stamps[:3], stamps):  # all decimal seconds: the kernel's column; a mix: the rules alone
        text = "".join(json.dumps({**rec, "ts": float(s) if s[0] != "2" and "." in s and len(s) < 19 else s})
                       + "\n" for s in group)
        res, made = _parse_seeing_typed(text, "$")
        frame = res.frames[("network", "zeek.conn")]
        want = [_float_rule_us(s) if s[0] != "2" else 1331901000 * 1_000_000 for s in group]
        assert frame["@timestamp"].dt.epoch("us").to_list() == want
        assert made == ([["$~ts"]] if len(group) == 3 else [[]])


def test_decimal_numbers_kernel_gives_the_correctly_rounded_float():
    import random

    import numpy as np

    from soc.parse.json_kernel import _decimal

    rng = random.Random(11)
    texts = ["0", "-0", "0.0", "1.5", "-2.25", "123456789012345", "0.000000000000000000001", "9007199254740993",
             "1234567890123456", "1.", ".5", "1e5", "+1", "", "-", "1.2.3", "0x10", "00.5"]
    for _ in range(5000):
        sig = rng.randint(1, 15)
        digits = str(rng.randrange(10 ** (sig - 1), 10 ** sig))
        cut = rng.randint(0, len(digits))
        texts.append(("-" if rng.random() < 0.3 else "") + (digits[:cut] or "0") + ("." + digits[cut:] if
                                                                                      cut < len(digits) else ""))
    taken = 0
    for text in texts:
        buf = np.frombuffer(bytearray(text.encode()), np.uint8)
        value, ok = _decimal(buf, 0, buf.size)
        if ok:  # what the kernel takes, it reads as Python's (correctly rounded) float() does, sign of 0 too
            taken += 1
            assert value == float(text) and str(value) == str(float(text)), text
    assert taken == 5000 + 8  # the random ones, the first seven and 00.5: no 16 digits, exponent, +, lone dot


def test_json_duration_is_read_by_the_kernel_as_by_the_float64_rule():
    rec = json.loads(as_json(CONN_F, CONN, "conn"))
    for values in ([0.1, 2.5, 1234.000001, 0.0], [0.1, 1e300]):  # 1e300: the rule's way, for the batch
        text = "".join(json.dumps({**rec, "duration": v}) + "\n" for v in values)
        res, made = _parse_seeing_typed(text, "^")
        assert res.frames[("network", "zeek.conn")]["zeek.connection.duration"].to_list() == values
        assert made == ([["^~duration"]] if len(values) == 4 else [[]])


def test_tsv_ts_as_decimal_seconds_is_read_by_the_kernel_as_by_the_rule(monkeypatch):
    from soc.parse import columns

    found = []
    real = columns.parse_epochs

    def parse_epochs(text):
        out = real(text)
        found.append(out is not None)
        return out

    monkeypatch.setattr(columns, "parse_epochs", parse_epochs)
    # all decimal seconds: the kernel's column; one with 7 decimals: the float64 rule reads the chunk's all
    for stamps in (["1331901000", "1331901000.5", "1331901000.123456"], ["1331901000.5", "1331901000.1234567"]):
        found.clear()
        res = parse_text("zeek", block("conn", CONN_F, CONN_T, *([s, *CONN[1:]] for s in stamps)))
        frame = res.frames[("network", "zeek.conn")]
        assert frame["@timestamp"].dt.epoch("us").to_list() == [_float_rule_us(s) for s in stamps]
        assert found == [len(stamps) == 3]


# Issue 16, item 11: every stream named by its own log, every field kept, escapes decoded, headers not records.
KRB_F = ID + ["request_type", "client", "service", "success", "error_msg", "from", "till", "cipher", "forwardable",
              "renewable", "client_cert_subject", "client_cert_fuid", "server_cert_subject", "server_cert_fuid"]
KRB_T = ID_T + ["string", "string", "string", "bool", "string", "time", "time", "string", "bool", "bool", "string",
                "string", "string", "string"]
KRB = ["1763600410.5", "CkrbA1", "10.0.0.31", "49822", "10.0.0.10", "88", "TGS", "alice/CORP.EXAMPLE.VN",
       "cifs/fs01.corp.example.vn", "T", "-", "-", "2136422885.000000", "rc4-hmac", "T", "F", "-", "-", "-", "-"]
SSH_F = ID + ["version", "auth_success", "auth_attempts", "direction", "client", "server", "cipher_alg", "kex_alg",
              "host_key", "remote_location.latitude"]
SSH_T = ID_T + ["count", "bool", "count", "enum", "string", "string", "string", "string", "string", "double"]
SSH = ["1763600411.25", "CsshB2", "203.0.113.45", "51000", "10.0.0.22", "22", "2", "F", "6", "INBOUND",
       "SSH-2.0-libssh_0.9.6", "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3", "aes128-ctr", "curve25519-sha256", "-", "21.03"]
ESC_F = ID + ["path", "name", "action", "size", "times.modified"]
ESC_T = ID_T + ["string", "string", "enum", "count", "time"]
ESC = ["1763600412.0", "CsmbC3", "10.0.0.31", "49900", "10.0.0.12", "445", r"\\\\fs01\\ADMIN$",  # as Zeek writes
       r"tab\x09in,comma\x2cand\\x41", "SMB::FILE_OPEN", "1024", "1763500000.5"]  # \\fs01\ADMIN$, ...
TYPES.update({tuple(KRB_F): KRB_T, tuple(SSH_F): SSH_T, tuple(ESC_F): ESC_T})


def test_tsv_kerberos_is_not_ssl_and_keeps_every_field():
    """kerberos.log has ``cipher``, a field the ssl route also looks at: its ``#path`` decides."""
    res = parse_text("zeek", block("kerberos", KRB_F, KRB_T, KRB), path="kerberos.log")
    assert list(res.frames) == [("authentication", "zeek.kerberos")]
    row = res.frames[("authentication", "zeek.kerberos")].row(0, named=True)
    assert row["event.dataset"] == "zeek.kerberos" and row["zeek.session_id"] == "CkrbA1"
    assert row["zeek.kerberos.request_type"] == "TGS" and row["zeek.kerberos.cipher"] == "rc4-hmac"
    assert row["zeek.kerberos.client"] == "alice/CORP.EXAMPLE.VN" and row["zeek.kerberos.success"] is True
    assert row["zeek.kerberos.renewable"] is False and row["zeek.kerberos.error_msg"] is None
    assert row["zeek.kerberos.till"] == datetime(2037, 9, 13, 2, 48, 5, tzinfo=UTC)
    for name in KRB_F[6:]:  # every field but the ECS ones has its column
        assert f"zeek.kerberos.{name}" in row


def _same_in_json(path: str, fields, types, values) -> tuple[dict, dict]:
    tsv = parse_text("zeek", block(path, fields, types, values))
    ndjson = parse_text("zeek_json", as_json(fields, values, path) + "\n")
    assert tsv.dead.height == ndjson.dead.height == 0
    (key,) = tsv.frames
    assert list(ndjson.frames) == [key]
    assert tsv.frames[key].columns == ndjson.frames[key].columns
    drop = ["log.file.path", "log.offset", "log.line"]
    return tsv.frames[key].drop(drop).row(0, named=True), ndjson.frames[key].drop(drop).row(0, named=True)


def test_ssh_fields_typed_alike_in_tsv_and_json():
    tsv, ndjson = _same_in_json("ssh", SSH_F, SSH_T, SSH)
    assert tsv == ndjson
    assert tsv["event.dataset"] == "zeek.ssh" and tsv["source.ip"] == "203.0.113.45"
    assert (tsv["zeek.ssh.version"], tsv["zeek.ssh.auth_success"], tsv["zeek.ssh.auth_attempts"]) == (2, False, 6)
    assert tsv["zeek.ssh.client"] == "SSH-2.0-libssh_0.9.6" and tsv["zeek.ssh.direction"] == "INBOUND"
    assert tsv["zeek.ssh.remote_location.latitude"] == 21.03 and tsv["zeek.ssh.host_key"] is None


def test_tsv_escapes_are_decoded_as_the_json_form_has_them():
    rec = json.loads(as_json(ESC_F, ESC, "smb_files"))
    rec.update(path="\\\\fs01\\ADMIN$", name="tab\tin,comma,and\\x41")  # what Zeek's JSON writer holds
    tsv = parse_text("zeek", block("smb_files", ESC_F, ESC_T, ESC)).frames[("network", "zeek.smb_files")]
    ndjson = parse_text("zeek_json", json.dumps(rec) + "\n")
    ndjson = ndjson.frames[("network", "zeek.smb_files")]
    for frame in (tsv, ndjson):
        row = frame.row(0, named=True)
        assert row["zeek.smb_files.path"] == "\\\\fs01\\ADMIN$"
        assert row["zeek.smb_files.name"] == "tab\tin,comma,and\\x41"
        assert row["zeek.smb_files.size"] == 1024
        assert row["zeek.smb_files.times.modified"] == datetime(2025, 11, 18, 21, 6, 40, 500000, tzinfo=UTC)


def test_json_dataset_from_path_file_name_or_fields():
    ssh = json.loads(as_json(SSH_F, SSH, "ssh"))
    krb = json.loads(as_json(KRB_F, KRB, None))
    weird = {"ts": 1763600413.0, "uid": "Cw1", "id.orig_h": "10.0.0.5", "id.orig_p": 1, "id.resp_h": "10.0.0.6",
             "id.resp_p": 2, "name": "bad_TCP_checksum", "notice": False, "peer": "zeek", "_path": "weird"}
    custom = {"ts": 1763600414.0, "_path": "my_stream", "id.orig_h": "10.0.0.7", "mine": 1}
    text = "".join(json.dumps(r) + "\n" for r in (ssh, krb, weird, custom))
    res = parse_text("zeek_json", text)
    assert {k: f.height for k, f in res.frames.items()} == {
        ("authentication", "zeek.ssh"): 1, ("authentication", "zeek.kerberos"): 1, ("network", "zeek.weird"): 1,
        ("network", "zeek.my_stream"): 1}
    assert res.frames[("network", "zeek.weird")]["zeek.weird.notice"].to_list() == [False]
    bare = json.dumps({"ts": 1763600415.0, "fingerprint": "ab" * 32, "certificate.version": 3})
    for name, dataset in (("x509.log", "zeek.x509"), ("json_streaming_x509.1.log.gz", "zeek.x509"),
                          ("certs.json", "zeek.x509")):  # the file names it, else its fields do
        res = parse_text("zeek_json", bare + "\n", path=name)
        assert list(res.frames) == [("network", dataset)], name
        assert res.frames[("network", dataset)]["zeek.x509.certificate.version"].to_list() == [3]


def test_records_without_ts_take_the_file_time_and_say_so():
    text = header("loaded_scripts", ["name"], ["string"]).replace("#open\t2026-11-20-08-00-00",
                                                                   "#open\t2026-11-20-15-00-00")
    text += "/opt/zeek/share/zeek/base/init-bare.zeek\n  /opt/zeek/share/zeek/base/bif/const.bif.zeek\n"
    res = parse_text("zeek", text, path="loaded_scripts.log")
    frame = res.frames[("network", "zeek.loaded_scripts")]
    assert res.dead.height == 0 and res.lines == res.parsed == 2
    assert frame["@timestamp"].to_list() == [datetime(2026, 11, 20, 8, 0, tzinfo=UTC)] * 2  # +07:00 local time
    assert frame["soc.timestamp_source"].to_list() == ["#open"] * 2
    assert frame["zeek.loaded_scripts.name"][1] == "  /opt/zeek/share/zeek/base/bif/const.bif.zeek"
    res = parse_text("zeek_json", '{"_path":"loaded_scripts","name":"/opt/zeek/x.zeek"}\n',
                     reference=datetime(2026, 11, 21, tzinfo=UTC))
    row = res.frames[("network", "zeek.loaded_scripts")].row(0, named=True)
    assert row["@timestamp"] == datetime(2026, 11, 21, tzinfo=UTC) and row["soc.timestamp_source"] == "input_time"
    conn = parse_text("zeek", block("conn", CONN_F, CONN_T, CONN)).frames[("network", "zeek.conn")]
    assert conn["soc.timestamp_source"].to_list() == ["ts"]  # a record with its own ts


ZEEK_CORPUS = ["dce_rpc", "dns", "ftp", "kerberos", "notice", "ntlm", "rdp", "smb_files", "smb_mapping", "smtp",
               "software", "ssh", "ssl", "weird", "x509"]


@pytest.mark.parametrize("stream", ZEEK_CORPUS)
def test_real_zeek_logs_every_field_kept_counts_and_dataset(corpora, stream):
    """Real TSV logs (a competition network, CC BY-SA): records = lines but the headers, each in its stream's
    dataset, and every field of ``#fields`` has a column (an ECS one the spec maps it to, or its own)."""
    import gzip

    from soc.parse.engines.zeek import COMMON

    path = corpora / "zeek" / f"{stream}.log.gz"
    text = gzip.decompress(path.read_bytes())
    lines = text.decode().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    res = parse_text("zeek", text, path=str(path))
    records = sum(1 for line in lines if line and not line.startswith("#"))
    assert res.lines == records == res.parsed + res.dead.height and res.dead.height == 0
    (key,) = res.frames
    assert key[1] == f"zeek.{stream}"
    frame = res.frames[key]
    assert frame.height == records and set(frame["event.dataset"].unique()) == {f"zeek.{stream}"}
    from soc.parse.routes import load_routes
    from tests.conftest import _specs

    route = next(r for r in load_routes(_specs()["zeek"]) if r.name in (stream, "other"))
    mapped = {c.source for rule in route.rules for c in rule.chain} | set(COMMON)
    own = [f for f in fields if f not in mapped]
    missing = [f for f in own if f"zeek.{stream}.{f}" not in frame.columns]
    assert not missing
    assert any(frame[f"zeek.{stream}.{f}"].null_count() < frame.height for f in own) or not own


SMB_RULE = """title: Remote task service pipe over SMB (test)
id: 0a0a0a0a-0000-4000-8000-00000000ae01
author: t
logsource: {product: zeek, service: smb_files}
detection:
  selection: {path: '\\\\\\\\*\\\\IPC$', name: 'atsvc'}
  condition: selection
"""
KRB_RULE = """title: Kerberos RC4 service ticket (test)
id: 0a0a0a0a-0000-4000-8000-00000000ae02
author: t
logsource: {product: zeek, service: kerberos}
detection:
  selection: {request_type: 'TGS', cipher: 'rc4-hmac'}
  condition: selection
"""


def test_sigma_zeek_rules_see_the_kept_fields_by_their_zeek_names():
    """SigmaHQ's Zeek rules name Zeek's fields (smb_files path/name, kerberos cipher): the pipeline maps them to
    the kept columns, and the TSV value is unescaped (``\\\\\\\\fs01\\\\IPC$`` in the file is ``\\\\fs01\\IPC$``)."""
    from sigma.rule import SigmaRule

    from soc.sigma.hunt import Hunter
    from soc.sigma.loader import RuleSet, compile_rule, route
    from soc.sigma.mapping import default_pipeline
    from soc.sigma.modifiers import register

    register()
    rules = [compile_rule(SigmaRule.from_yaml(text), "test.yml") for text in (SMB_RULE, KRB_RULE)]
    route(rules, default_pipeline())
    hunter = Hunter(RuleSet(rules, []))
    pipe = [*ESC[:6], r"\\\\fs01\\IPC$", "atsvc", "SMB::FILE_OPEN", "0", "-"]
    smb = parse_text("zeek", block("smb_files", ESC_F, ESC_T, pipe, ESC)).frames[("network", "zeek.smb_files")]
    assert hunter.evaluate(("network", "zeek.smb_files"), smb)["log.offset"].to_list() == [smb["log.offset"][0]]
    krb = parse_text("zeek", block("kerberos", KRB_F, KRB_T, KRB)).frames[("authentication", "zeek.kerberos")]
    assert hunter.evaluate(("authentication", "zeek.kerberos"), krb).height == 1
    conn = compile_rule(SigmaRule.from_yaml(KRB_RULE.replace("kerberos}", "conn}").replace("ae02", "ae03")), "c.yml")
    route([conn], default_pipeline())  # a conn rule runs on conn only, not on every Zeek stream's network frame
    assert [(t.family, t.dataset) for t in conn.targets] == [("network", "zeek.conn")]


@pytest.mark.parametrize("name", ["conn.log", "dns.json", "zeek.json", "ssh.log"])
def test_json_frames_do_not_depend_on_the_file_name(name):
    """A file named by a stream reads that stream's fields with the rest of the record and the others' in a
    second pass: the frames of every stream are the same whatever the file is called."""
    text = "".join(as_json(f, r, p) + "\n" for p, f, r in [*STREAMS, ("ssh", SSH_F, SSH), ("kerberos", KRB_F, KRB)])
    want = parse_text("zeek_json", text, path="all.json")
    got = parse_text("zeek_json", text, path=name)
    assert list(got.frames) == list(want.frames) and len(want.frames) == 7
    for key, frame in want.frames.items():
        assert got.frames[key].drop("log.file.path").equals(frame.drop("log.file.path")), key


def test_scope_separator_underscore_reads_as_dots():
    """``redef Log::default_scope_sep = "_"`` (for Elasticsearch 2, which forbade dots in names) writes
    ``id_orig_h``, ``remote_location_latitude``: the same record as with dots, in TSV and JSON."""
    def undot(text: str) -> str:
        for f in ("id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "remote_location.latitude"):
            text = text.replace(f, f.replace(".", "_"))
        return text

    drop = ["log.file.path", "log.offset", "log.line"]
    for spec, text in (("zeek", block("ssh", SSH_F, SSH_T, SSH)), ("zeek_json", as_json(SSH_F, SSH, "ssh") + "\n"),
                       ("zeek_json", as_json(SSH_F, SSH, None) + "\n"),
                       ("zeek_json", as_json(CONN_F, CONN, "conn") + "\n")):
        want, got = parse_text(spec, text), parse_text(spec, undot(text))
        (key,) = want.frames
        assert list(got.frames) == [key] and got.dead.height == 0
        assert got.frames[key].drop(drop).equals(want.frames[key].drop(drop)), (spec, key)
        assert got.frames[key]["source.ip"].null_count() == 0
    from soc.parse.spec import load_specs
    from soc.sources.sniff import sniff

    sigs = [s.signature for s in load_specs().values()]
    assert sniff(undot(as_json(SSH_F, SSH, None)).encode(), sigs) == "zeek_json"
