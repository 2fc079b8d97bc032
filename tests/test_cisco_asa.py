"""Cisco ASA syslog: message formats of Cisco's "ASA Series Syslog Messages", one test per message id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from soc.parse.spec import load_specs
from soc.sources.sniff import sniff
from tests.conftest import parse_text

H = "Nov 23 09:15:13 fw01 "
DENY = H + ('%ASA-4-106023: Deny tcp src outside:198.51.100.7/51000 dst inside:10.1.1.5/22 '
            'by access-group "outside_in" [0x0, 0x0]')
DENY_ICMP = H + ('%ASA-4-106023: Deny icmp src outside:198.51.100.7 dst inside:10.1.1.5 (type 8, code 0) '
                 'by access-group "outside_in" [0x0, 0x0]')
BUILT_IN = H + ("%ASA-6-302013: Built inbound TCP connection 77 for outside:198.51.100.7/51000 "
                "(198.51.100.7/51000) to inside:10.1.1.5/443 (203.0.113.5/443)")
BUILT_OUT = H + ("%ASA-6-302013: Built outbound TCP connection 78 for outside:93.184.216.34/443 "
                 "(93.184.216.34/443) to inside:10.1.1.20/50123 (203.0.113.5/50123)")
TEARDOWN = H + ("%ASA-6-302014: Teardown TCP connection 77 for outside:198.51.100.7/51000 to inside:10.1.1.5/443 "
                "duration 0:00:05 bytes 5123 TCP FINs")
UDP_BUILT = H + ("%ASA-6-302015: Built outbound UDP connection 79 for outside:8.8.8.8/53 (8.8.8.8/53) "
                 "to inside:10.1.1.20/53000 (203.0.113.5/53000)")
UDP_TEARDOWN = H + ("%ASA-6-302016: Teardown UDP connection 79 for outside:8.8.8.8/53 to inside:10.1.1.20/53000 "
                    "duration 0:00:00 bytes 120")
AAA_OK = H + "%ASA-6-113004: AAA user authentication Successful : server = 10.1.1.2 : user = admin"
AAA_FAIL = H + ("%ASA-6-113005: AAA user authentication Rejected : reason = AAA failure : server = 10.1.1.2 : "
                "user = bob : user IP = 198.51.100.9")
LOGIN_DENIED = H + '%ASA-6-605004: Login denied from 198.51.100.9/40022 to outside:203.0.113.5/ssh for user "root"'
LOGIN_OK = H + '%ASA-6-605005: Login permitted from 10.1.1.30/50500 to inside:10.1.1.1/https for user "admin"'
THREAT = H + ("%ASA-4-733100: [ Scanning] drop rate-1 exceeded. Current burst rate is 10 per second, max "
              "configured rate is 10; Current average rate is 5 per second, max configured rate is 5; "
              "Cumulative total count is 3041")
OTHER = H + "%ASA-5-111008: User 'enable_15' executed the 'write memory' command."
ALL = [DENY, DENY_ICMP, BUILT_IN, BUILT_OUT, TEARDOWN, UDP_BUILT, UDP_TEARDOWN, AAA_OK, AAA_FAIL, LOGIN_DENIED,
       LOGIN_OK, THREAT, OTHER]


def one(line: str, family: str) -> dict:
    res = parse_text("cisco_asa", line + "\n")
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    (row,) = res.frames[(family, "cisco.asa")].to_dicts()
    return row


def pick(row: dict, keys: str) -> dict:
    return {k: row[k] for k in keys.split()}


def test_106023_deny_by_access_group():
    row = one(DENY, "network")
    assert row["@timestamp"] == datetime(2026, 11, 23, 2, 15, 13, tzinfo=UTC)  # Asia/Ho_Chi_Minh, +07:00
    assert pick(row, "event.code event.action event.outcome source.ip source.port destination.ip destination.port "
                     "network.transport observer.ingress.interface.name observer.egress.interface.name rule.name "
                     "observer.name") == {
        "event.code": "106023", "event.action": "deny", "event.outcome": "failure", "source.ip": "198.51.100.7",
        "source.port": 51000, "destination.ip": "10.1.1.5", "destination.port": 22, "network.transport": "tcp",
        "observer.ingress.interface.name": "outside", "observer.egress.interface.name": "inside",
        "rule.name": "outside_in", "observer.name": "fw01"}
    icmp = one(DENY_ICMP, "network")
    assert pick(icmp, "network.transport source.port cisco.asa.icmp_type cisco.asa.icmp_code") == {
        "network.transport": "icmp", "source.port": None, "cisco.asa.icmp_type": "8", "cisco.asa.icmp_code": "0"}


def test_302013_built_outbound_names_the_initiator_as_source():
    inbound = one(BUILT_IN, "network")
    assert pick(inbound, "event.code network.direction source.ip source.port destination.ip destination.port "
                         "destination.nat.ip cisco.asa.connection_id") == {
        "event.code": "302013", "network.direction": "inbound", "source.ip": "198.51.100.7", "source.port": 51000,
        "destination.ip": "10.1.1.5", "destination.port": 443, "destination.nat.ip": "203.0.113.5",
        "cisco.asa.connection_id": "77"}
    outbound = one(BUILT_OUT, "network")
    assert pick(outbound, "network.direction source.ip source.port source.nat.ip destination.ip destination.port "
                          "observer.ingress.interface.name") == {
        "network.direction": "outbound", "source.ip": "10.1.1.20", "source.port": 50123,
        "source.nat.ip": "203.0.113.5", "destination.ip": "93.184.216.34", "destination.port": 443,
        "observer.ingress.interface.name": "inside"}


def test_302014_302016_teardown_bytes_and_reason():
    tcp = one(TEARDOWN, "network")
    assert pick(tcp, "event.code event.action network.bytes event.reason cisco.asa.duration network.transport") == {
        "event.code": "302014", "event.action": "connection-teardown", "network.bytes": 5123,
        "event.reason": "TCP FINs", "cisco.asa.duration": "0:00:05", "network.transport": "tcp"}
    udp = one(UDP_TEARDOWN, "network")
    assert pick(udp, "event.code network.bytes network.transport source.ip destination.port") == {
        "event.code": "302016", "network.bytes": 120, "network.transport": "udp", "source.ip": "8.8.8.8",
        "destination.port": 53000}
    assert one(UDP_BUILT, "network")["event.code"] == "302015"


@pytest.mark.parametrize("line, want", [
    (AAA_OK, {"event.code": "113004", "event.outcome": "success", "user.name": "admin", "source.ip": None,
              "server.ip": "10.1.1.2", "event.reason": None}),
    (AAA_FAIL, {"event.code": "113005", "event.outcome": "failure", "user.name": "bob", "source.ip": "198.51.100.9",
                "server.ip": "10.1.1.2", "event.reason": "AAA failure"}),
])
def test_113004_113005_aaa(line, want):
    row = one(line, "authentication")
    assert pick(row, " ".join(want)) == want
    assert row["event.action"] == "aaa-user" and row["event.category"] == "authentication"


def test_605004_605005_management_logins():
    denied = one(LOGIN_DENIED, "authentication")
    assert pick(denied, "event.code event.outcome user.name source.ip source.port destination.ip network.protocol") \
        == {"event.code": "605004", "event.outcome": "failure", "user.name": "root", "source.ip": "198.51.100.9",
            "source.port": 40022, "destination.ip": "203.0.113.5", "network.protocol": "ssh"}
    permitted = one(LOGIN_OK, "authentication")
    assert pick(permitted, "event.code event.outcome user.name") == {
        "event.code": "605005", "event.outcome": "success", "user.name": "admin"}


def test_733100_threat_detection_rate():
    row = one(THREAT, "security")
    assert pick(row, "event.code event.kind rule.name cisco.asa.rate_id cisco.asa.burst_rate cisco.asa.average_rate "
                     "cisco.asa.total_count event.severity") == {
        "event.code": "733100", "event.kind": "alert", "rule.name": "Scanning", "cisco.asa.rate_id": "rate-1",
        "cisco.asa.burst_rate": 10, "cisco.asa.average_rate": 5, "cisco.asa.total_count": 3041,
        "event.severity": 4}


def test_unknown_message_ids_are_kept_in_the_syslog_frame():
    row = one(OTHER, "syslog")
    assert row["message"].startswith("User 'enable_15'")
    # the message id is not a process (issue 16): it is event.code, log.level and the syslog msgid
    assert pick(row, "process.name event.code log.level log.syslog.msgid") == {
        "process.name": None, "event.code": "111008", "log.level": "notification", "log.syslog.msgid": "%ASA-5-111008"}


def test_malformed_lines_are_dead_lettered_and_counts_add_up():
    bad_bytes = TEARDOWN.replace("bytes 5123", "bytes 5x23")
    bad_port = DENY.replace("/51000", "/99999")
    cut_header, cut_message = DENY[:12], DENY[:40]  # a cut message still has its header: kept as syslog
    res = parse_text("cisco_asa", "\n".join([*ALL, bad_bytes, bad_port, cut_header, cut_message]) + "\n")
    assert res.lines == len(ALL) + 4 and res.parsed + res.dead.height == res.lines
    assert sum(f.height for f in res.frames.values()) == res.parsed
    assert res.dead["error.message"].to_list() == [
        "network.bytes: 5x23 is not a valid int64", "source.port: 99999 is not a valid uint16",
        "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"]
    heights = {k[0]: f.height for k, f in res.frames.items()}
    assert heights == {"network": 7, "authentication": 4, "security": 1, "syslog": 2}


def test_sniffed_as_asa_with_or_without_pri():
    sigs = [s.signature for s in load_specs().values()]
    assert sniff("\n".join(ALL).encode(), sigs) == "cisco_asa"
    assert sniff("\n".join("<166>" + line for line in ALL).encode(), sigs) == "cisco_asa"


def test_sample_log_holds_the_planted_scan_and_login_attempts():
    from tests.conftest import ROOT

    res = parse_text("cisco_asa", (ROOT / "sample_logs/firewall/cisco_asa.log").read_bytes())
    assert res.dead.height == 0
    net = res.frames[("network", "cisco.asa")]
    denies = net.filter((net["source.ip"] == "198.51.100.66") & (net["event.action"] == "deny"))
    assert denies.height == 60 and denies["destination.port"].n_unique() == 60
    auth = res.frames[("authentication", "cisco.asa")]
    failed = auth.filter(auth["event.outcome"] == "failure")
    assert failed.height == 12 and set(failed["source.ip"]) == {"198.51.100.66"}


def test_the_asa_own_timestamp_and_device_id_forms():
    """``logging timestamp`` gives ``Mmm dd yyyy hh:mm:ss:`` (the year as written, no guess); ``logging
    device-id hostname`` gives ``HOST : %ASA-...``."""
    msg = '%ASA-6-605005: Login permitted from 10.1.1.30/50500 to inside:10.1.1.1/https for user "admin"'
    lines = [f"<166>Nov 23 2026 09:15:13: {msg}", f"<166>Nov 23 2025 09:15:14 fw01 : {msg}",
             f"Feb 29 2025 09:15:15 fw01 {msg}"]
    res = parse_text("cisco_asa", "\n".join(lines) + "\n")
    auth = res.frames[("authentication", "cisco.asa")]
    assert auth.select("@timestamp", "observer.name", "event.code", "user.name").rows() == [
        (datetime(2026, 11, 23, 2, 15, 13, tzinfo=UTC), None, "605005", "admin"),
        (datetime(2025, 11, 23, 2, 15, 14, tzinfo=UTC), "fw01", "605005", "admin"),
    ]
    assert res.dead["error.message"].to_list() == ["timestamp out of range"]  # 2025 has no Feb 29


@pytest.mark.parametrize("message, want", [
    # the ASA prints two spaces after "server =" (Cisco's own examples, and real devices)
    ("%ASA-6-113004: AAA user authentication Successful : server =  10.1.1.2 : user = LOCAL\\admin",
     ("113004", "success", "LOCAL\\admin", "LOCAL", "10.1.1.2", None)),
    ("%ASA-6-113004: AAA user authentication Successful : server = 10.1.1.2, User = (LOCAL\\admin)",
     ("113004", "success", "LOCAL\\admin", "LOCAL", "10.1.1.2", None)),
    ("%ASA-6-113004: AAA user authentication Successful : server =  10.1.1.2 : user = bob@corp.example",
     ("113004", "success", "bob@corp.example", "corp.example", "10.1.1.2", None)),
    ("%ASA-6-113005: AAA user authentication Rejected : reason = AAA failure : server =  10.1.1.2 : "
     "user = DOMAIN\\bob : user IP = 198.51.100.9",
     ("113005", "failure", "DOMAIN\\bob", "DOMAIN", "10.1.1.2", "198.51.100.9")),
    ("%ASA-6-113005: AAA user authentication Rejected : reason = AAA failure : server = 10.1.1.2 : user = ***** : "
     "user IP = 198.51.100.9",  # the ASA masks names it considers mistyped passwords
     ("113005", "failure", "*****", None, "10.1.1.2", "198.51.100.9")),
    ('%ASA-6-605004: Login denied from 198.51.100.9/40022 to outside:203.0.113.5/ssh for user "LOCAL\\admin"',
     ("605004", "failure", "LOCAL\\admin", "LOCAL", None, "198.51.100.9")),
    ('%ASA-6-605005: Login permitted from 10.1.1.30/50500 to inside:10.1.1.1/https for user "CORP\\netadmin"',
     ("605005", "success", "CORP\\netadmin", "CORP", None, "10.1.1.30")),
    ("%ASA-6-113012: AAA user authentication Successful : local database : user = admin",
     ("113012", "success", "admin", None, None, None)),
    ("%ASA-6-113015: AAA user authentication Rejected : reason = Invalid password : local database : "
     "user = admin : user IP = 203.0.113.12", ("113015", "failure", "admin", None, None, "203.0.113.12")),
])
def test_user_names_with_a_realm_keep_it_and_give_user_domain(message, want):
    row = one(H + message, "authentication")
    assert (row["event.code"], row["event.outcome"], row["user.name"], row["user.domain"], row["server.ip"],
            row["source.ip"]) == want


BUILT = ("Built inbound TCP connection 77 for outside:198.51.100.7/51000 (198.51.100.7/51000) to inside:10.1.1.5/443 "
         "(203.0.113.5/443)")


@pytest.mark.parametrize("line, host, stamp", [
    # a relay's program tag before the message id (issue 16, item 5)
    (f"Nov 23 09:15:13 fw01 CiscoASA[999]: %ASA-6-302013: {BUILT}", "fw01", (11, 23, 9, 15, 13)),
    (f"Nov 23 2026 09:15:13 localhost CiscoASA[999]: %ASA-6-302013: {BUILT}", "localhost", (11, 23, 9, 15, 13)),
    # a host glued to its colon is the host, not the program
    (f"Nov 23 09:15:13 localhost: %ASA-6-302013: {BUILT}", "localhost", (11, 23, 9, 15, 13)),
    (f"<166>Nov  3 09:15:13 dev-01: %FTD-6-302013: {BUILT}", "dev-01", (11, 3, 9, 15, 13)),
    # logging device-id: "HOST : %ASA-..."; the message id is not a program
    (f"Nov 23 09:15:13 MYHOST : %ASA-6-302013: {BUILT}", "MYHOST", (11, 23, 9, 15, 13)),
    (f"Nov 23 09:15:13 fw01 %ASA-6-302013: {BUILT}", "fw01", (11, 23, 9, 15, 13)),
    # a relay's header, then the device's own stamp with a zone, and a message class in the tag
    (f"Nov 23 09:15:14 relay.example : Nov 23 02:15:13 UTC: %ASA-session-6-302013: {BUILT}", "relay.example",
     (11, 23, 9, 15, 14)),
    # RFC 5424 (FTD 6.3+ and relays), ISO 8601 with and without the ASA's colon
    (f"<166>1 2026-11-23T09:15:13+07:00 fw01 - - - - %FTD-6-302013: {BUILT}", "fw01", (11, 23, 9, 15, 13)),
    (f"2026-11-23T02:15:13Z fw01 %ASA-6-302013: {BUILT}", "fw01", (11, 23, 9, 15, 13)),
    (f"<166>2026-11-23T02:15:13Z: %ASA-6-302013: {BUILT}", None, (11, 23, 9, 15, 13)),
    (f"<166>2026-11-23T02:15:13Z fw01: %ASA-6-302013: {BUILT}", "fw01", (11, 23, 9, 15, 13)),
])
def test_the_message_id_is_found_wherever_the_relay_put_it(line, host, stamp):
    res = parse_text("cisco_asa", line + "\n")
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    assert set(res.frames) >= {("network", "cisco.asa")}
    (row,) = res.frames[("network", "cisco.asa")].to_dicts()
    month, day, hh, mm, ss = stamp
    assert row["@timestamp"] == datetime(2026, month, day, hh - 7, mm, ss, tzinfo=UTC)
    assert pick(row, "observer.name event.code log.level source.ip destination.port message") == {
        "observer.name": host, "event.code": "302013", "log.level": "informational", "source.ip": "198.51.100.7",
        "destination.port": 443, "message": BUILT}


def test_unknown_ids_behind_a_relay_tag_keep_their_id_and_host():
    lines = ["Nov 23 09:15:13 localhost: %ASA-5-199999: Something new happened",
             "Nov 23 09:15:13 fw01 CiscoASA[999]: %ASA-3-199998: Something else"]
    res = parse_text("cisco_asa", "\n".join(lines) + "\n")
    rows = res.frames[("syslog", "cisco.asa")].to_dicts()
    keys = "host.hostname process.name process.pid event.code log.level log.syslog.msgid message"
    assert [pick(r, keys) for r in rows] == [
        {"host.hostname": "localhost", "process.name": None, "process.pid": None, "event.code": "199999",
         "log.level": "notification", "log.syslog.msgid": "%ASA-5-199999", "message": "Something new happened"},
        {"host.hostname": "fw01", "process.name": "CiscoASA", "process.pid": 999, "event.code": "199998",
         "log.level": "error", "log.syslog.msgid": "%ASA-3-199998", "message": "Something else"}]
