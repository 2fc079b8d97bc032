"""Suricata EVE JSON (Suricata user guide, "Eve JSON Format" and "Eve JSON Output"): one object per line,
routed by ``event_type``; JSON arrays of records as exported; bad records dead-lettered with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import polars as pl
import pytest

from tests.conftest import Keep, parse_text

ALERT = (
    '{"timestamp":"2018-03-24T14:37:19.037299-0600","flow_id":928532049924531,"in_iface":"eth0",'
    '"event_type":"alert","src_ip":"10.128.0.210","src_port":43407,"dest_ip":"10.47.3.218","dest_port":445,'
    '"proto":"TCP","community_id":"1:LQU9qZlK+B5F3KDmev6m5PMibrg=","app_proto":"smb","host":"sensor-1",'
    '"alert":{"action":"blocked","gid":1,"signature_id":2001569,"rev":15,'
    '"signature":"ET SCAN Behavioral Unusual Port 445 traffic","category":"Misc activity","severity":3}}'
)
FLOW = (
    '{"timestamp":"2025-11-20T08:00:05.123456+00:00","flow_id":1717171,"event_type":"flow","src_ip":"10.0.0.5",'
    '"src_port":50522,"dest_ip":"203.0.113.9","dest_port":443,"proto":"TCP","app_proto":"tls",'
    '"flow":{"pkts_toserver":12,"pkts_toclient":10,"bytes_toserver":1834,"bytes_toclient":9321,'
    '"start":"2025-11-20T07:59:58.000001+00:00","end":"2025-11-20T08:00:04.999999+00:00","age":7,'
    '"state":"closed","reason":"timeout","alerted":false}}'
)
DNS = (
    '{"timestamp":"2025-11-20T08:00:06.000000+0700","flow_id":42,"event_type":"dns","src_ip":"10.0.0.5",'
    '"src_port":53001,"dest_ip":"10.0.0.53","dest_port":53,"proto":"UDP",'
    '"dns":{"version":2,"type":"answer","id":45444,"flags":"8180","qr":true,"rd":true,"ra":true,'
    '"rrname":"portal.gov.vn","rrtype":"A","rcode":"NOERROR",'
    '"answers":[{"rrname":"portal.gov.vn","rrtype":"A","ttl":300,"rdata":"203.0.113.80"}]}}'
)
HTTP = (
    '{"timestamp":"2025-11-20T08:00:07.5Z","event_type":"http","src_ip":"198.51.100.23","src_port":41000,'
    '"dest_ip":"10.0.0.80","dest_port":80,"proto":"TCP","tx_id":0,'
    '"http":{"hostname":"portal.gov.vn","url":"/login.php?u=admin","http_user_agent":"sqlmap/1.7",'
    '"http_content_type":"text/html","http_refer":"http://x/","http_method":"POST","protocol":"HTTP/1.1",'
    '"status":403,"length":512}}'
)
TLS = (
    '{"timestamp":"2025-11-20T08:00:08.000000+0000","event_type":"tls","src_ip":"10.0.0.5","src_port":50523,'
    '"dest_ip":"203.0.113.9","dest_port":443,"proto":"TCP",'
    '"tls":{"subject":"CN=mail.example.org","issuerdn":"CN=R3, O=Let\'s Encrypt, C=US","serial":"04:A1",'
    '"fingerprint":"6f:0a:4e","sni":"mail.example.org","version":"TLS 1.2","notbefore":"2025-01-01T00:00:00",'
    '"notafter":"2025-04-01T00:00:00","ja3":{"hash":"e7d705a3286e19ea42f587b344ee6865"},'
    '"ja3s":{"hash":"f4febc55ea12b31ae17cfb7e614afda8"}}}'
)
STATS = '{"timestamp":"2025-11-20T08:00:09.000000+0000","event_type":"stats","stats":{"uptime":8}}'
ANOMALY = ('{"timestamp":"2025-11-20T08:00:10.000000+0000","event_type":"anomaly","src_ip":"10.0.0.9",'
           '"src_port":1,"dest_ip":"10.0.0.10","dest_port":2,"proto":"UDP","anomaly":{"type":"decode"}}')
ALL = [ALERT, FLOW, DNS, HTTP, TLS, STATS, ANOMALY]


def one(res, family: str) -> dict:
    frame = res.frames[(family, "suricata.eve")]
    assert frame.height == 1
    return frame.row(0, named=True)


def test_every_event_type_goes_to_its_family_with_its_fields():
    res = parse_text("suricata_eve", "\n".join(ALL) + "\n")
    assert res.lines == 7 and res.parsed == 7 and res.dead.height == 0
    assert {k: f.height for k, f in res.frames.items()} == {
        ("security", "suricata.eve"): 2, ("network", "suricata.eve"): 3, ("dns", "suricata.eve"): 1,
        ("web", "suricata.eve"): 1}
    alert, tls = res.frames[("security", "suricata.eve")].rows(named=True)
    assert alert["@timestamp"] == datetime(2018, 3, 24, 20, 37, 19, 37299, tzinfo=UTC)
    assert alert["rule.id"] == "2001569" and alert["rule.name"] == "ET SCAN Behavioral Unusual Port 445 traffic"
    assert alert["rule.category"] == "Misc activity" and alert["event.severity"] == 3
    assert alert["event.action"] == "blocked" and alert["event.kind"] == "alert"
    assert alert["event.category"] == "intrusion_detection"
    assert (alert["source.ip"], alert["source.port"]) == ("10.128.0.210", 43407)
    assert (alert["destination.ip"], alert["destination.port"]) == ("10.47.3.218", 445)
    assert alert["network.transport"] == "tcp" and alert["host.hostname"] == "sensor-1"
    assert alert["suricata.eve.flow_id"] == 928532049924531 and alert["suricata.eve.in_iface"] == "eth0"
    assert alert["suricata.eve.community_id"] == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert alert["suricata.eve.app_proto"] == "smb" and alert["suricata.eve.alert.gid"] == 1
    assert alert["suricata.eve.alert.rev"] == 15 and alert["event.dataset"] == "suricata.eve"
    assert alert["log.line"] == 1 and alert["log.offset"] == 0

    assert tls["tls.server.sni"] == "mail.example.org" and tls["url.domain"] == "mail.example.org"
    assert tls["tls.version"] == "TLS 1.2" and tls["tls.server.subject"] == "CN=mail.example.org"
    assert tls["tls.server.issuer"] == "CN=R3, O=Let's Encrypt, C=US" and tls["tls.server.hash.sha1"] == "6f:0a:4e"
    assert tls["tls.client.ja3"] == "e7d705a3286e19ea42f587b344ee6865"
    assert tls["tls.server.ja3s"] == "f4febc55ea12b31ae17cfb7e614afda8"
    assert tls["@timestamp"] == datetime(2025, 11, 20, 8, 0, 8, tzinfo=UTC) and tls["rule.name"] is None

    flow, stats, anomaly = res.frames[("network", "suricata.eve")].rows(named=True)
    assert flow["@timestamp"] == datetime(2025, 11, 20, 8, 0, 5, 123456, tzinfo=UTC)
    assert (flow["source.bytes"], flow["destination.bytes"]) == (1834, 9321)
    assert (flow["source.packets"], flow["destination.packets"]) == (12, 10)
    assert flow["network.protocol"] == "tls" and flow["event.action"] == "flow"
    assert flow["suricata.eve.flow.start"] == datetime(2025, 11, 20, 7, 59, 58, 1, tzinfo=UTC)
    assert flow["suricata.eve.flow.end"] == datetime(2025, 11, 20, 8, 0, 4, 999999, tzinfo=UTC)
    assert flow["suricata.eve.flow.state"] == "closed" and flow["suricata.eve.flow.reason"] == "timeout"
    assert flow["suricata.eve.flow.alerted"] == "false" and flow["log.line"] == 2
    assert stats["event.action"] == "stats" and stats["source.ip"] is None
    assert anomaly["event.action"] == "anomaly" and anomaly["network.transport"] == "udp"

    dns = one(res, "dns")
    assert dns["@timestamp"] == datetime(2025, 11, 20, 1, 0, 6, tzinfo=UTC)
    assert dns["dns.question.name"] == "portal.gov.vn" and dns["dns.question.type"] == "A"
    assert dns["dns.response_code"] == "NOERROR" and dns["dns.id"] == "45444" and dns["dns.type"] == "answer"
    assert dns["destination.port"] == 53 and dns["network.transport"] == "udp"
    assert dns["suricata.eve.dns.answers"] == "203.0.113.80"

    web = one(res, "web")
    assert web["@timestamp"] == datetime(2025, 11, 20, 8, 0, 7, 500000, tzinfo=UTC)
    assert web["url.original"] == "/login.php?u=admin" and web["url.domain"] == "portal.gov.vn"
    assert web["http.request.method"] == "POST" and web["http.response.status_code"] == 403
    assert web["http.response.body.bytes"] == 512 and web["user_agent.original"] == "sqlmap/1.7"
    assert web["http.request.referrer"] == "http://x/" and web["http.version"] == "1.1"
    assert web["suricata.eve.tx_id"] == 0 and web["source.ip"] == "198.51.100.23"


# the app-layer objects an EVE record carries beside its own event_type (lines of our own making)
FILEINFO = (
    '{"timestamp":"2025-11-20T08:01:00.000001+0000","flow_id":77,"in_iface":"eth0","event_type":"fileinfo",'
    '"src_ip":"203.0.113.80","src_port":80,"dest_ip":"10.0.0.5","dest_port":50600,"proto":"TCP",'
    '"http":{"hostname":"cdn.example.net","url":"/dl/setup.exe?v=2","http_user_agent":"curl/8.4.0",'
    '"http_content_type":"application/octet-stream","http_method":"GET","protocol":"HTTP/1.1","status":200,'
    '"length":40960},"app_proto":"http","fileinfo":{"filename":"/dl/setup.exe","magic":"PE32 executable",'
    '"gaps":false,"state":"CLOSED","md5":"0a1b","sha1":"2c3d","sha256":"4e5f","stored":true,"size":40960,'
    '"tx_id":0}}'
)
ALERT_APP = (
    '{"timestamp":"2025-11-20T08:02:00.000000+0000","event_type":"alert","src_ip":"10.0.0.5","src_port":50700,'
    '"dest_ip":"198.51.100.7","dest_port":443,"proto":"TCP","app_proto":"tls",'
    '"alert":{"action":"allowed","gid":1,"signature_id":2200001,"rev":1,"signature":"TLS SNI of a known C2",'
    '"category":"A Network Trojan was detected","severity":1},'
    '"tls":{"sni":"c2.example.org","version":"TLS 1.3","subject":"CN=c2.example.org","issuerdn":"CN=Fake CA",'
    '"ja3":{"hash":"aa11"},"ja3s":{"hash":"bb22"}}}'
)
ALERT_HTTP = (
    '{"timestamp":"2025-11-20T08:03:00.000000+0000","event_type":"alert","src_ip":"198.51.100.23",'
    '"src_port":41001,"dest_ip":"10.0.0.80","dest_port":80,"proto":"TCP","app_proto":"http",'
    '"alert":{"action":"blocked","gid":1,"signature_id":2200002,"rev":2,"signature":"SQL injection attempt",'
    '"category":"Web Application Attack","severity":1},'
    '"http":{"hostname":"portal.gov.vn","url":"/q?id=1%27%20or%201=1","http_user_agent":"sqlmap/1.7",'
    '"http_method":"GET","protocol":"HTTP/1.1","status":500,"length":12,"http_refer":"http://portal.gov.vn/"}}'
)
ALERT_DNS = (
    '{"timestamp":"2025-11-20T08:04:00.000000+0000","event_type":"alert","src_ip":"10.0.0.5","src_port":53100,'
    '"dest_ip":"10.0.0.53","dest_port":53,"proto":"UDP","app_proto":"dns",'
    '"alert":{"action":"allowed","gid":1,"signature_id":2200003,"rev":1,"signature":"DNS query for a DGA name",'
    '"category":"Potentially Bad Traffic","severity":2},'
    '"dns":{"query":[{"type":"query","id":4242,"rrname":"xk2j9q.example.top","rrtype":"TXT","tx_id":0}]}}'
)
ALERT_SMTP = (
    '{"timestamp":"2025-11-20T08:05:00.000000+0000","event_type":"alert","src_ip":"203.0.113.99",'
    '"src_port":40000,"dest_ip":"10.0.0.25","dest_port":25,"proto":"TCP","app_proto":"smtp",'
    '"alert":{"action":"allowed","gid":1,"signature_id":2200004,"rev":1,"signature":"Executable attachment",'
    '"category":"Misc activity","severity":2},'
    '"smtp":{"helo":"mx.bad.example","mail_from":"<a@bad.example>","rcpt_to":["<b@gov.vn>","<c@gov.vn>"]},'
    '"email":{"status":"PARSER_DONE","from":"a@bad.example","to":["b@gov.vn","c@gov.vn"],'
    '"subject":"Invoice","attachment":["invoice.exe"]}}'
)
SSH = (
    '{"timestamp":"2025-11-20T08:06:00.000000+0000","flow_id":88,"event_type":"ssh","src_ip":"203.0.113.45",'
    '"src_port":42222,"dest_ip":"10.0.0.22","dest_port":22,"proto":"TCP","app_proto":"ssh",'
    '"ssh":{"client":{"proto_version":"2.0","software_version":"libssh2_1.10.0"},'
    '"server":{"proto_version":"2.0","software_version":"OpenSSH_8.9p1"}}}'
)
SMTP = (
    '{"timestamp":"2025-11-20T08:07:00.000000+0000","event_type":"smtp","src_ip":"203.0.113.99",'
    '"src_port":40001,"dest_ip":"10.0.0.25","dest_port":25,"proto":"TCP","tx_id":1,'
    '"smtp":{"helo":"mx.bad.example","mail_from":"<a@bad.example>","rcpt_to":["<b@gov.vn>"]},'
    '"email":{"status":"PARSER_DONE","from":"\\"A\\" <a@bad.example>","to":["b@gov.vn"],"subject":"Hello"}}'
)
ANOMALY_APP = (
    '{"timestamp":"2025-11-20T08:08:00.000000+0000","event_type":"anomaly","src_ip":"10.0.0.9","src_port":3,'
    '"dest_ip":"10.0.0.10","dest_port":443,"proto":"TCP","app_proto":"tls",'
    '"anomaly":{"app_proto":"tls","type":"applayer","event":"INVALID_RECORD_TYPE","layer":"proto_parser"}}'
)


def test_fileinfo_keeps_its_http_object_and_file_fields():
    row = one(parse_text("suricata_eve", FILEINFO + "\n"), "network")
    assert (row["url.original"], row["url.domain"]) == ("/dl/setup.exe?v=2", "cdn.example.net")
    assert (row["http.request.method"], row["http.response.status_code"]) == ("GET", 200)
    assert (row["user_agent.original"], row["http.version"]) == ("curl/8.4.0", "1.1")
    assert (row["file.path"], row["file.name"], row["file.size"]) == ("/dl/setup.exe", "setup.exe", 40960)
    assert (row["file.hash.md5"], row["file.hash.sha1"], row["file.hash.sha256"]) == ("0a1b", "2c3d", "4e5f")
    assert row["suricata.eve.fileinfo.state"] == "CLOSED" and row["suricata.eve.fileinfo.stored"] == "true"
    assert row["network.protocol"] == "http" and row["event.category"] == "file"


def test_alerts_keep_the_app_layer_objects_they_carry():
    res = parse_text("suricata_eve", "\n".join([ALERT_APP, ALERT_HTTP, ALERT_DNS, ALERT_SMTP]) + "\n")
    tls, http, dns, smtp = res.frames[("security", "suricata.eve")].rows(named=True)
    assert (tls["tls.server.sni"], tls["url.domain"], tls["tls.version"]) == ("c2.example.org",) * 2 + ("TLS 1.3",)
    assert (tls["tls.client.ja3"], tls["tls.server.ja3s"], tls["network.protocol"]) == ("aa11", "bb22", "tls")
    assert (tls["tls.server.subject"], tls["tls.server.issuer"]) == ("CN=c2.example.org", "CN=Fake CA")
    assert (http["url.original"], http["http.request.method"]) == ("/q?id=1%27%20or%201=1", "GET")
    assert (http["http.response.status_code"], http["user_agent.original"]) == (500, "sqlmap/1.7")
    assert http["http.request.referrer"] == "http://portal.gov.vn/" and http["event.action"] == "blocked"
    assert (dns["dns.question.name"], dns["network.protocol"]) == ("xk2j9q.example.top", "dns")
    assert smtp["suricata.eve.smtp.rcpt_to"] == "<b@gov.vn>,<c@gov.vn>"
    assert (smtp["email.from.address"], smtp["email.to.address"]) == ("a@bad.example", "b@gov.vn,c@gov.vn")
    assert (smtp["email.subject"], smtp["email.attachments.file.name"]) == ("Invoice", "invoice.exe")


def test_ssh_smtp_and_anomaly_records_keep_their_objects():
    res = parse_text("suricata_eve", "\n".join([SSH, SMTP, ANOMALY_APP]) + "\n")
    ssh, smtp, anomaly = res.frames[("network", "suricata.eve")].rows(named=True)
    assert ssh["suricata.eve.ssh.client.software_version"] == "libssh2_1.10.0"
    assert ssh["suricata.eve.ssh.server.software_version"] == "OpenSSH_8.9p1"
    assert ssh["suricata.eve.ssh.client.proto_version"] == "2.0" and ssh["network.protocol"] == "ssh"
    assert (smtp["suricata.eve.smtp.helo"], smtp["suricata.eve.smtp.mail_from"]) == ("mx.bad.example",
                                                                                     "<a@bad.example>")
    assert (smtp["email.from.address"], smtp["email.subject"]) == ("a@bad.example", "Hello")  # "A" <a@...>
    assert smtp["network.protocol"] == "smtp"  # no app_proto in an smtp record: its event_type says it
    assert (anomaly["suricata.eve.anomaly.type"], anomaly["suricata.eve.anomaly.event"]) == (
        "applayer", "INVALID_RECORD_TYPE")
    assert anomaly["suricata.eve.anomaly.layer"] == "proto_parser" and anomaly["network.protocol"] == "tls"


def test_timestamp_without_offset_is_read_in_the_configured_zone():
    line = ALERT.replace("2018-03-24T14:37:19.037299-0600", "2019-01-02T03:50:11.315110")
    row = one(parse_text("suricata_eve", line, zone="Asia/Ho_Chi_Minh"), "security")
    assert row["@timestamp"] == datetime(2019, 1, 1, 20, 50, 11, 315110, tzinfo=UTC)


BAD = {
    2: ('{"timestamp":"2025-11-20T08:00:05Z","event_type":"flow"', "truncated JSON object at byte 55"),
    3: ("this is not json", "not a JSON object at byte 0"),
    4: ('[{"event_type":"alert"}]', "not a JSON object at byte 0"),
    5: ('{"event_type":"alert",}', "invalid JSON at byte 22"),
    6: ('{"event_type":"alert"} {"x":1}', "text after the JSON object at byte 23"),
    7: ('{"event_type":"a\tb"}', "control character inside a JSON string at byte 16"),
    8: ('{"event_type":"\\q"}', "invalid escape in a JSON string at byte 15"),
    9: ('{"event_type":"dns","src_port":53}', "@timestamp: missing"),
    10: ('{"timestamp":"yesterday","event_type":"dns"}', "@timestamp: yesterday is not a valid timestamp"),
}


def test_malformed_records_are_dead_lettered_with_reason_and_raw_bytes():
    lines = [ALERT] + [BAD[k][0] for k in sorted(BAD)] + ["", "   ", FLOW]
    res = parse_text("suricata_eve", "\n".join(lines) + "\n")
    assert res.lines == len(lines) and res.lines == res.parsed + res.dead.height
    assert res.dead.height == len(BAD) and sum(f.height for f in res.frames.values()) == 2
    dead = {r["log.line"]: r for r in res.dead.rows(named=True)}
    for line, (raw, reason) in BAD.items():
        assert dead[line]["error.message"] == reason
        assert dead[line]["event.original"] == raw.encode()
    assert res.frames[("network", "suricata.eve")]["log.line"].to_list() == [13]


def test_an_unexpected_type_is_text_or_null_never_a_failed_chunk():
    line = ALERT.replace('"in_iface":"eth0"', '"in_iface":[1,2]').replace('"alert":{', '"flow":"oops","alert":{')
    res = parse_text("suricata_eve", line + "\n" + line.replace('"src_port":43407', '"src_port":{"x":1}'))
    assert res.dead.height == 0
    first, second = res.frames[("security", "suricata.eve")].rows(named=True)
    assert first["suricata.eve.in_iface"] == "[1, 2]" and first["suricata.eve.flow.bytes_toserver"] is None
    assert first["rule.id"] == second["rule.id"] == "2001569"
    assert first["source.port"] == 43407 and second["source.port"] is None


def test_invalid_utf8_and_unicode_escapes():
    line = ALERT.replace("Misc activity", "Misc \\u00e9\\ud83d\\ude00").encode().replace(b"sensor-1", b"sens\xffor")
    row = one(parse_text("suricata_eve", line), "security")
    assert row["rule.category"] == "Misc é😀" and row["host.hostname"] == "sens?or"


@pytest.mark.parametrize("chunk_size", [700, 1500, 4096])
def test_chunk_boundaries(chunk_size):
    text = ("\n".join(ALL + [BAD[3][0]]) + "\n") * 30
    res = parse_text("suricata_eve", text, chunk_size=chunk_size)
    assert res.lines == 240 and res.dead.height == 30 and res.parsed == 210
    assert sum(f.height for f in res.frames.values()) == 210
    assert sorted(res.dead["log.line"].to_list()) == list(range(8, 241, 8))


@pytest.mark.parametrize("chunk_size", [200, 1000, 1 << 20])
def test_json_arrays_pretty_printed_or_on_one_line(chunk_size):
    objs = [json.loads(x) for x in ALL]
    pretty = json.dumps(objs, indent=2)
    res = parse_text("suricata_eve", pretty, chunk_size=chunk_size)
    assert res.dead.height == 0 and sum(f.height for f in res.frames.values()) == 7
    assert res.lines == pretty.count("\n") + 1
    alert = res.frames[("security", "suricata.eve")].row(0, named=True)
    assert alert["log.line"] == 2 and alert["log.offset"] == 4 and alert["rule.id"] == "2001569"
    flow = res.frames[("network", "suricata.eve")].row(0, named=True)
    assert pretty.splitlines()[flow["log.line"] - 1].strip() == "{"
    assert pretty[flow["log.offset"]] == "{" and flow["source.bytes"] == 1834
    one_line = json.dumps(objs)
    res = parse_text("suricata_eve", one_line + "\n", chunk_size=max(chunk_size, 8192))
    assert res.lines == 1 and res.dead.height == 0 and sum(f.height for f in res.frames.values()) == 7


def test_bad_elements_of_an_array_are_dead_lettered():
    text = "[\n" + ALERT + ",\n42,\n" + BAD[5][0] + ",\n" + FLOW + "\n]\ntrailing\n"
    res = parse_text("suricata_eve", text, chunk_size=700)
    assert sum(f.height for f in res.frames.values()) == 2 and res.lines == 7
    assert dict(zip(res.dead["log.line"], res.dead["error.message"], strict=True)) == {
        3: "not a JSON object in the array", 4: "invalid JSON at byte 22", 7: "text after the end of the JSON array"}


def test_acceptance_every_corpus_file_parses_completely(corpora):
    files = sorted((corpora / "logs" / "suricata").glob("*.json"))
    assert files
    for path in files:
        expected = json.loads(path.read_text())
        for chunk_size in (4096, 1 << 24):
            res = parse_text("suricata_eve", path.read_bytes(), path=str(path), chunk_size=chunk_size)
            assert res.dead.height == 0, res.dead.head(3)
            assert res.lines == res.parsed == path.read_bytes().count(b"\n")
            frame = res.frames[("security", "suricata.eve")]
            assert frame.height == len(expected) and len(res.frames) == 1
            assert frame["rule.id"].to_list() == [str(r["alert"]["signature_id"]) for r in expected]
            assert frame["source.port"].to_list() == [r.get("src_port") for r in expected]
            assert frame["@timestamp"].null_count() == 0


def test_sniffed_from_first_lines_and_not_stealing_others():
    from soc.parse.spec import load_specs
    from soc.sources.sniff import sniff

    sigs = [s.signature for s in load_specs().values()]
    assert sniff(("\n".join(ALL) + "\n").encode(), sigs) == "suricata_eve"
    assert sniff(json.dumps([json.loads(x) for x in ALL], indent=2).encode(), sigs) == "suricata_eve"
    web = b'10.0.0.1 - - [10/Oct/2025:13:55:36 +0700] "GET /?{\\"src_ip\\": 1} HTTP/1.1" 404 5 "-" "x"\n'
    assert sniff(web, sigs) == "web_access"


@pytest.mark.parametrize("chunk_size", [700, 1 << 20])
def test_an_array_cut_inside_its_last_element_dead_letters_that_element(chunk_size):
    cut = FLOW[:90]
    text = "[\n" + ALERT + ",\n" + cut
    res = parse_text("suricata_eve", text, chunk_size=chunk_size)
    assert res.lines == 3 and res.parsed + res.dead.height == res.lines
    assert sum(f.height for f in res.frames.values()) == 1
    assert res.dead.rows() == [("test.log", 3, len("[\n" + ALERT + ",\n"),
                                "truncated: input ends inside a JSON array element", cut.encode())]


def test_an_array_cut_inside_an_element_through_the_pipeline(tmp_path):
    from soc import pipeline
    from soc.sources import discover

    class Keep(pipeline.Sink):
        def __init__(self):
            self.dead = []

        def write_dead(self, source_path, dead):
            self.dead.extend(dead.rows(named=True))

    path = tmp_path / "eve.json"
    path.write_text(json.dumps([json.loads(ALERT), json.loads(FLOW)], indent=1)[:-40])
    sink = Keep()
    (st,) = pipeline.run(discover([str(path)]), sink=sink, options=pipeline.Options(format="suricata_eve"))
    assert st.error is None and st.dead == 1 and st.read == st.parsed + st.dead == path.read_text().count("\n") + 1
    assert st.events == {"security": 1}
    (dead,) = sink.dead
    assert dead["error.message"] == "truncated: input ends inside a JSON array element"
    assert dead["event.original"].startswith(b"{") and dead["log.line"] == path.read_text()[:dead["log.offset"]].count(
        "\n") + 1


@pytest.mark.parametrize("chunk_size", [1000, 1 << 20])
def test_every_bad_element_of_an_array_line_is_its_own_dead_letter(chunk_size):
    bad1, bad2 = BAD[5][0], '{"event_type":"flow" "x":1}'
    text = "[" + bad1 + ", " + bad2 + ", " + ALERT + ",\n" + bad2 + ",\n" + FLOW + "]\n"
    res = parse_text("suricata_eve", text, chunk_size=chunk_size)
    assert sum(f.height for f in res.frames.values()) == 2
    assert res.dead.rows() == [
        ("test.log", 1, 1, "invalid JSON at byte 22", bad1.encode()),
        ("test.log", 1, 3 + len(bad1), "invalid JSON at byte 21", bad2.encode()),
        ("test.log", 2, text.index("\n") + 1, "invalid JSON at byte 21", bad2.encode())]
    # three physical lines; line 1 holds two dead letters, so it counts twice: read = parsed + dead-lettered
    assert res.lines == 4 and res.parsed + res.dead.height == res.lines


def _fields_both_ways(line: str) -> tuple[bool, dict, dict]:
    """The raw fields of one record as the Numba extractor finds them and as a JSON reader decodes them."""
    import numpy as np

    from soc.parse import json_kernel as K
    from soc.parse.columns import Context
    from soc.parse.engines.json import Columns, JsonEngine
    from soc.parse.engines.routed import Records
    from soc.parse.spec import load_specs

    engine = JsonEngine(load_specs()["suricata_eve"], Context("t"))
    buf = np.frombuffer(bytearray(line.encode()), np.uint8)  # writable as a chunk is: no second compile
    one = np.zeros(1, np.int64)
    rec = Records(buf, buf, one, np.array([buf.size]), one, one)
    code, _, slow, in_aux, fs, fe, aux = K.extract(buf, rec.starts, rec.ends, *engine.table.arrays())
    assert code[0] == K.OK
    columns = Columns(buf, aux if in_aux.any() else None, fs, fe, engine.index)
    fast = {} if slow[0] else {k: s[0] for k, s in columns.get(engine.names, one).items()}
    table, _, _ = engine._read(rec, one)
    return bool(slow[0]), fast, table.row(0, named=True)


@pytest.mark.parametrize(("edit", "slow"), [
    ((), False),
    (('"url":"/login.php?u=admin"', r'"url":"/a\"b\\c\/d\u00e9\ud83d\ude00\r\n"'), False),  # escapes decoded
    (('"src_ip":"198.51.100.23"', '"src_ip":"1.1.1.1","src_ip":"2.2.2.2"'), False),  # the first key wins
    (('"http":{', '"http":{"url":"/first"},"http":{'), False),  # for objects too
    (('"src_port":41000', '"src_port":null'), False),
    (('"src_port":41000', '"src_port":-7'), False),
    (('"tx_id":0', '"host":12,"in_iface":true,"tx_id":0'), False),  # numbers and booleans where text is read
    (('"http":{', '"alert":"oops","flow":[1],"dns":5,"tls":null,"http":{'), False),  # not objects: no fields
    (('"tx_id":0', '"tx_id":0,"dns":{"answers":[{"rdata":"a\\u0041"},{"x":1},{"rdata":null},{"rdata":"b"}]}'),
     False),
    (('"tx_id":0', '"tx_id":0,"dns":{"answers":[]}'), False),
    (('"tx_id":0', '"tx_id":0,"dns":{"answers":null}'), False),
    (('"tx_id":0', '"tx_id":0,"zz":{"a":[{"b":"\\""}],"src_ip":"x"}'), False),  # keys of unread objects
    (('"src_port":41000', '"src_port":1.5'), True),  # another JSON type than the field's: a reader decides
    (('"src_port":41000', '"src_port":1e3'), True),
    (('"src_port":41000', '"src_port":12345678901234567890'), True),
    (('"src_port":41000', '"src_port":"41000"'), True),
    (('"url":"/login.php?u=admin"', '"url":["/x"]'), True),
    (('"src_ip"', '"src\\u005fip"'), True),
    (('"tx_id":0', '"tx_id":0,"dns":{"answers":["x"]}'), True),
])
def test_the_extractor_reads_fields_as_a_json_reader_does(edit, slow):
    line = HTTP.replace(*edit) if edit else HTTP
    assert line != HTTP or not edit
    found_slow, fast, decoded = _fields_both_ways(line)
    assert found_slow == slow
    if not slow:
        assert fast == decoded


def test_records_for_the_reader_and_for_the_extractor_keep_their_order():
    odd = ALERT.replace('"src_port":43407', '"src_port":"43407"').replace('"rev":15', '"rev":1.5')
    res = parse_text("suricata_eve", "\n".join([ALERT, odd, FLOW, odd, ALERT]) + "\n")
    assert res.dead.height == 0 and res.lines == res.parsed == 5
    alerts = res.frames[("security", "suricata.eve")]
    assert alerts["log.line"].to_list() == [1, 2, 4, 5]
    assert alerts["source.port"].to_list() == [43407, None, None, 43407]  # a string where a number is read: null
    assert alerts["suricata.eve.alert.rev"].to_list() == [15, None, None, 15]
    assert alerts["rule.id"].to_list() == ["2001569"] * 4
    assert res.frames[("network", "suricata.eve")]["log.line"].to_list() == [3]


def test_routes_stay_on_one_thread_where_numba_cannot_run_kernels_from_two(tmp_path):
    """Numba's own "workqueue" layer (what a machine without TBB or OpenMP gets) aborts the process when two
    threads launch parallel kernels at once; the engine then types its routes on one thread, same result."""
    from bench.gen_suricata import generate

    path = tmp_path / "eve.json"
    generate(str(path), 20_000)
    script = ("import json, numba; from soc import pipeline; from soc.sources import discover; "
              f"(st,) = pipeline.run(discover([{str(path)!r}]), options=pipeline.Options(format='suricata_eve')); "
              "print(json.dumps([numba.threading_layer(), st.read, st.parsed, st.dead, st.events]))")
    runs = {}
    for layer in ("workqueue", "default"):
        env = {**os.environ, "NUMBA_THREADING_LAYER": layer}
        res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600,
                             check=False)
        assert res.returncode == 0, res.stderr[-2000:]
        runs[layer] = json.loads(res.stdout.strip().splitlines()[-1])
    assert runs["workqueue"][0] == "workqueue"
    assert runs["workqueue"][1:] == runs["default"][1:]
    assert runs["workqueue"][1:4] == [20_000, 20_000, 0] and len(runs["workqueue"][4]) == 4


def test_records_extracted_a_chunk_ahead_give_what_the_chunk_alone_gives(tmp_path, monkeypatch):
    """The pipeline extracts the next chunk's records in a thread while this one is typed
    (``JsonEngine.prepare``); frames and dead letters are the same as when each chunk is extracted in turn."""
    from bench.gen_suricata import generate
    from soc import pipeline
    from soc.parse.engines.json import JsonEngine
    from soc.sources import discover

    path = tmp_path / "eve.json"
    generate(str(path), 20_000)
    lines = path.read_bytes().splitlines(keepends=True)
    for at in (5, 7_000, 19_990):  # malformed records among the good ones
        lines[at] = lines[at][: len(lines[at]) // 2] + b"\n"
    path.write_bytes(b"".join(lines))

    def run() -> tuple[dict, pl.DataFrame, object]:
        sink = Keep()
        (st,) = pipeline.run(discover([str(path)]), sink=sink,
                             options=pipeline.Options(format="suricata_eve", chunk_size=1 << 16))
        return {k: pl.concat(v) for k, v in sink.frames.items()}, pl.concat(sink.dead), st

    ahead = []
    prepare = JsonEngine.prepare

    def counted(self, batch):
        prepare(self, batch)
        ahead.append(getattr(batch, "extracted", None) is not None)

    monkeypatch.setattr(JsonEngine, "prepare", counted)
    frames, dead, st = run()
    assert st.read == 20_000 and st.dead == 3 and dead.height == 3
    assert all(ahead) and len(ahead) > 100
    monkeypatch.setattr(JsonEngine, "prepare", lambda self, batch: None)
    frames_inline, dead_inline, _ = run()
    assert frames.keys() == frames_inline.keys()
    for key, frame in frames.items():
        assert frame.equals(frames_inline[key]), key
    assert dead.equals(dead_inline)
