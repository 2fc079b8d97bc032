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
OTHER = H + "%ASA-7-609001: Built local-host inside:10.1.1.5"
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
    assert row["message"] == "Built local-host inside:10.1.1.5"
    # the message id is not a process (issue 16): it is event.code, log.level and the syslog msgid
    assert pick(row, "process.name event.code log.level log.syslog.msgid") == {
        "process.name": None, "event.code": "609001", "log.level": "debug", "log.syslog.msgid": "%ASA-7-609001"}


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
    assert heights == {"network": 7, "authentication": 4, "security": 1, "device": 0, "syslog": 2}


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
    # the device's stamp with its zone and no host: UTC is the zone, not a host
    (f"<166>Nov 23 2026 02:15:13 UTC: %ASA-6-302013: {BUILT}", None, (11, 23, 9, 15, 13)),
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


# the message ids a firewall team sees most (Cisco "ASA Series Syslog Messages"), one line each of our own
IDS = [
    # NAT: the mapped address is the source's own after translation (source.nat.*), not a destination
    ("%ASA-6-305011: Built dynamic TCP translation from inside:10.1.1.20/50123 to outside:203.0.113.5/61001",
     "network", {"event.code": "305011", "event.action": "translation-built", "network.transport": "tcp",
                 "source.ip": "10.1.1.20", "source.port": 50123, "source.nat.ip": "203.0.113.5",
                 "source.nat.port": 61001, "destination.ip": None, "cisco.asa.nat_type": "dynamic"}),
    ("%ASA-6-305012: Teardown static UDP translation from inside:10.1.1.21/53000 to outside:203.0.113.6/53000 "
     "duration 0:02:10", "network", {"event.code": "305012", "event.action": "translation-teardown",
                                     "network.transport": "udp", "source.nat.ip": "203.0.113.6",
                                     "cisco.asa.duration": "0:02:10"}),
    ("%ASA-6-305011: Built dynamic TCP translation from inside:10.1.1.22/50200(CORP\\alice) to "
     "outside:203.0.113.5/61002", "network", {"event.code": "305011", "source.port": 50200,
                                              "source.user.name": "CORP\\alice", "source.nat.port": 61002}),
    ("%ASA-3-305013: Asymmetric NAT rules matched for forward and reverse flows; Connection tcp src "
     "outside:198.51.100.7/40000 dst inside:10.1.1.5/3389 denied due to NAT reverse path failure",
     "network", {"event.code": "305013", "event.action": "deny", "event.outcome": "failure",
                 "destination.port": 3389, "event.reason": "NAT reverse path failure"}),
    ("%ASA-7-710005: UDP request discarded from 10.1.1.40/68 to inside:255.255.255.255/67", "network",
     {"event.code": "710005", "event.action": "discard", "network.transport": "udp", "source.port": 68,
      "destination.ip": "255.255.255.255", "cisco.asa.service": "67"}),
    # ICMP: inbound was started by faddr, outbound by laddr
    ("%ASA-6-302020: Built inbound ICMP connection for faddr 198.51.100.7/1 gaddr 203.0.113.5/0 laddr 10.1.1.5/0 "
     "type 8 code 0", "network", {"event.code": "302020", "network.transport": "icmp", "network.direction": "inbound",
                                  "source.ip": "198.51.100.7", "destination.ip": "10.1.1.5",
                                  "destination.nat.ip": "203.0.113.5", "cisco.asa.icmp_type": "8"}),
    ("%ASA-6-302020: Built outbound ICMP connection for faddr 192.0.2.10/0 gaddr 203.0.113.5/7 laddr 10.1.1.20/7",
     "network", {"event.code": "302020", "network.direction": "outbound", "source.ip": "10.1.1.20",
                 "source.nat.ip": "203.0.113.5", "destination.ip": "192.0.2.10", "cisco.asa.icmp_type": None}),
    ("%ASA-6-302021: Teardown ICMP connection for faddr 198.51.100.7/1 gaddr 203.0.113.5/0 laddr 10.1.1.5/0 "
     "type 8 code 0", "network", {"event.code": "302021", "event.action": "connection-teardown",
                                  "network.transport": "icmp", "source.ip": "198.51.100.7",
                                  "destination.ip": "10.1.1.5", "cisco.asa.icmp_code": "0"}),
    ("%ASA-6-302304: Teardown TCP state-bypass connection 4411 from inside:10.1.1.5/445 to dmz:10.2.2.8/50001 "
     "duration 0:10:00 bytes 9000 Connection timeout", "network",
     {"event.code": "302304", "network.bytes": 9000, "source.port": 445, "event.reason": "Connection timeout"}),
    # ACL denies and permits
    ("%ASA-2-106001: Inbound TCP connection denied from 198.51.100.7/40001 to 10.1.1.5/23 flags SYN  on interface "
     "outside", "network", {"event.code": "106001", "event.action": "deny", "event.outcome": "failure",
                            "network.direction": "inbound", "network.transport": "tcp", "destination.port": 23,
                            "cisco.asa.tcp_flags": "SYN", "observer.ingress.interface.name": "outside"}),
    ("%ASA-2-106006: Deny inbound UDP from 198.51.100.7/5060 to 10.1.1.5/5060 on interface outside.", "network",
     {"event.code": "106006", "event.action": "deny", "network.transport": "udp", "source.port": 5060,
      "observer.ingress.interface.name": "outside"}),
    ("%ASA-2-106007: Deny inbound UDP from 198.51.100.7/53 to 10.1.1.5/33000 due to DNS Response.", "network",
     {"event.code": "106007", "event.reason": "DNS Response", "destination.port": 33000}),
    ("%ASA-3-106014: Deny inbound icmp src outside:198.51.100.7 dst inside:10.1.1.5 (type 8, code 0)", "network",
     {"event.code": "106014", "network.transport": "icmp", "destination.ip": "10.1.1.5",
      "cisco.asa.icmp_type": "8"}),
    ("%ASA-6-106015: Deny TCP (no connection) from 10.1.1.5/443 to 198.51.100.7/40001 flags RST  on interface "
     "inside", "network", {"event.code": "106015", "event.reason": "no connection", "source.port": 443,
                           "cisco.asa.tcp_flags": "RST", "network.transport": "tcp"}),
    ("%ASA-1-106021: Deny TCP reverse path check from 10.9.9.9 to 10.1.1.5 on interface outside", "network",
     {"event.code": "106021", "event.reason": "reverse path check", "source.ip": "10.9.9.9"}),
    ("%ASA-4-106023: Deny udp src outside:198.51.100.7/500 dst inside:10.1.1.5/500 by access-group \"outside_in\"",
     "network", {"event.code": "106023", "rule.name": "outside_in", "network.transport": "udp"}),
    ("%ASA-4-106023: Deny protocol 47 src outside:198.51.100.7 dst inside:10.1.1.5 by access-group \"outside_in\" "
     "[0x5a2b3c4d, 0x0]", "network", {"event.code": "106023", "network.iana_number": "47",
                                       "destination.ip": "10.1.1.5", "rule.name": "outside_in"}),
    ("%ASA-6-106100: access-list inside_out permitted tcp inside/10.1.1.20(50123) -> outside/192.0.2.10(443) "
     "hit-cnt 1 first hit [0x1a2b3c4d, 0x0]", "network",
     {"event.code": "106100", "event.action": "allow", "event.outcome": "success", "rule.name": "inside_out",
      "source.port": 50123, "destination.ip": "192.0.2.10", "destination.port": 443,
      "observer.egress.interface.name": "outside", "cisco.asa.hit_count": "1"}),
    ("%ASA-4-106100: access-list outside_in denied udp outside/198.51.100.7(137)(LOCAL\\guest) -> inside/10.1.1.5(137) "
     "hit-cnt 3 300-second interval [0x0, 0x0]", "network",
     {"event.action": "deny", "event.outcome": "failure", "source.port": 137, "destination.port": 137}),
    ("%ASA-3-710003: TCP access denied by ACL from 198.51.100.7/40002 to outside:203.0.113.5/22", "network",
     {"event.code": "710003", "event.action": "deny", "destination.ip": "203.0.113.5", "cisco.asa.service": "22"}),
    # AAA, management and cut-through proxy logins
    ("%ASA-6-113008: AAA transaction status ACCEPT : user = alice", "authentication",
     {"event.code": "113008", "event.outcome": "success", "user.name": "alice"}),
    ("%ASA-6-611102: User authentication failed: IP address: 198.51.100.9, Uname: admin", "authentication",
     {"event.code": "611102", "event.action": "management-login", "event.outcome": "failure",
      "source.ip": "198.51.100.9", "user.name": "admin"}),
    ("%ASA-6-611101: User authentication succeeded: IP address: 10.1.1.30, Uname: netadmin", "authentication",
     {"event.code": "611101", "event.outcome": "success", "user.name": "netadmin"}),
    ("%ASA-5-611103: User logged out: Uname: netadmin", "authentication",
     {"event.code": "611103", "event.action": "management-logout", "user.name": "netadmin"}),
    ("%ASA-3-113021: Attempted console login failed. User mallory did NOT have appropriate Admin Rights.",
     "authentication", {"event.code": "113021", "event.outcome": "failure", "user.name": "mallory"}),
    ("%ASA-6-109006: Authentication failed for user 'bob' from 10.1.1.40/51000 to 192.0.2.80/80 on interface inside",
     "authentication", {"event.code": "109006", "event.action": "proxy-authentication", "event.outcome": "failure",
                        "user.name": "bob", "source.port": 51000, "destination.port": 80}),
    # VPN sessions
    ("%ASA-6-716039: Group <DfltGrpPolicy> User <eve> IP <198.51.100.20> Authentication: rejected, Session Type: "
     "WebVPN.", "authentication", {"event.code": "716039", "event.action": "vpn-login", "event.outcome": "failure",
                                   "user.name": "eve", "source.ip": "198.51.100.20",
                                   "cisco.asa.session_type": "WebVPN", "cisco.asa.group": "DfltGrpPolicy"}),
    ("%ASA-6-113039: Group <Staff_VPN> User <CORP\\an.nguyen> IP <198.51.100.21> AnyConnect parent session started.",
     "authentication", {"event.code": "113039", "event.action": "vpn-login", "event.outcome": "success",
                        "user.name": "CORP\\an.nguyen", "user.domain": "CORP", "source.ip": "198.51.100.21"}),
    ("%ASA-6-722022: Group <Staff_VPN> User <an.nguyen> IP <198.51.100.21> UDP SVC connection established without "
     "compression", "authentication", {"event.code": "722022", "event.action": "vpn-tunnel-up",
                                       "network.transport": "udp"}),
    ("%ASA-5-722023: Group Staff_VPN User an.nguyen IP 198.51.100.21 TCP SVC connection terminated without "
     "compression", "authentication", {"event.code": "722023", "event.action": "vpn-tunnel-down",
                                       "user.name": "an.nguyen", "network.transport": "tcp"}),
    ("%ASA-4-722051: Group <Staff_VPN> User <an.nguyen> IP <198.51.100.21> IPv4 Address <172.16.10.5> IPv6 address "
     "<::> assigned to session", "authentication", {"event.code": "722051", "cisco.asa.assigned_ip": "172.16.10.5"}),
    ("%ASA-6-716002: Group Staff_VPN User bao IP 198.51.100.22 WebVPN session terminated: Idle timeout.",
     "authentication", {"event.code": "716002", "event.action": "vpn-logout", "event.reason": "Idle timeout"}),
    ("%ASA-4-113019: Group = Site_B, Username = 192.0.2.1, IP = 192.0.2.1, Session disconnected. Session Type: "
     "LAN-to-LAN, Duration: 1h:02m:03s, Bytes xmt: 1200, Bytes rcv: 3400, Reason: User Requested",
     "authentication", {"event.code": "113019", "event.action": "vpn-logout", "source.ip": "192.0.2.1",
                        "source.bytes": 3400, "destination.bytes": 1200, "event.reason": "User Requested"}),
    ("%ASA-6-113005: AAA user authentication Rejected: reason = Invalid password: server = 10.1.1.2 : user = carol: "
     "user IP = 198.51.100.9", "authentication", {"event.code": "113005", "event.outcome": "failure",
                                                  "event.reason": "Invalid password", "server.ip": "10.1.1.2",
                                                  "user.name": "carol", "source.ip": "198.51.100.9"}),
    ("%ASA-6-113004: AAA user authorization Successful: server = 10.1.1.2 , User = carol", "authentication",
     {"event.code": "113004", "event.outcome": "success", "server.ip": "10.1.1.2", "user.name": "carol"}),
    ("%ASA-6-113015: AAA user authentication Rejected: reason = User was not found: local database: user = dave: "
     "user IP = 198.51.100.10", "authentication", {"event.code": "113015", "event.reason": "User was not found",
                                                   "user.name": "dave", "source.ip": "198.51.100.10"}),
    ("%ASA-3-313001: Denied ICMP type=8, code=0 from 198.51.100.7 on interface outside", "network",
     {"event.code": "313001", "event.action": "deny", "network.transport": "icmp", "source.ip": "198.51.100.7",
      "cisco.asa.icmp_type": "8"}),
    ("%ASA-4-313004: Denied ICMP type=0, from laddr 198.51.100.7 on interface outside to 203.0.113.5: no matching "
     "session", "network", {"event.code": "313004", "destination.ip": "203.0.113.5",
                            "event.reason": "no matching session"}),
    # configuration changes by administrators
    ("%ASA-5-111008: User 'enable_15' executed the 'write memory' command.", "device",
     {"event.code": "111008", "event.action": "command-executed", "event.category": "configuration",
      "user.name": "enable_15", "cisco.asa.command_line": "write memory"}),
    ("%ASA-5-111010: User 'netadmin', running 'CLI' from IP 10.1.1.30, executed 'no access-list outside_in'",
     "device", {"event.code": "111010", "source.ip": "10.1.1.30", "user.name": "netadmin",
                "cisco.asa.command_line": "no access-list outside_in"}),
    ("%ASA-7-111009: User 'netadmin' executed cmd: show running-config", "device",
     {"event.code": "111009", "cisco.asa.command_line": "show running-config", "log.level": "debug"}),
    ("%ASA-5-502103: User priv level changed: Uname: netadmin From: 1 To: 15", "device",
     {"event.code": "502103", "event.action": "privilege-level-changed", "cisco.asa.privilege.new": "15"}),
    ("%ASA-5-502101: New user added to local dbase: Uname: backdoor Priv: 15 Encpass: ***", "device",
     {"event.code": "502101", "event.action": "user-added", "user.name": "backdoor"}),
    # threat detection and IPS
    ("%ASA-4-733101: Host 198.51.100.66 is attacking. Current burst rate is 40 per second, max configured rate is "
     "20; Current average rate is 12 per second, max configured rate is 10; Cumulative total count is 7310.",
     "security", {"event.code": "733101", "event.action": "host-attacking", "source.ip": "198.51.100.66",
                  "cisco.asa.total_count": 7310, "event.kind": "alert"}),
    ("%ASA-4-733101: Subnet 10.1.1.0 is targeted. Current burst rate is 40 per second, max configured rate is 20; "
     "Current average rate is 12 per second, max configured rate is 10; Cumulative total count is 7310.",
     "security", {"event.action": "host-targeted", "destination.ip": "10.1.1.0", "cisco.asa.object_type": "Subnet"}),
    ("%ASA-4-733102: Threat-detection adds host 198.51.100.66 to shun list", "security",
     {"event.code": "733102", "event.action": "shun-added", "source.ip": "198.51.100.66"}),
    ("%ASA-4-400025: IPS:2154 ICMP ping of death from 198.51.100.7 to 10.1.1.5 on interface outside", "security",
     {"event.code": "400025", "event.action": "ips-signature", "rule.id": "2154", "rule.name": "ICMP ping of death",
      "source.ip": "198.51.100.7", "destination.ip": "10.1.1.5"}),
    ("%ASA-4-419002: Received duplicate TCP SYN from outside:198.51.100.7/40003 to inside:10.1.1.5/443 with "
     "different initial sequence number.", "network",
     {"event.code": "419002", "event.action": "duplicate-tcp-syn", "destination.port": 443}),
]


@pytest.mark.parametrize("message, family, want", IDS, ids=[m.split(":")[0] for m, _, _ in IDS])
def test_frequent_message_ids_land_in_their_family_with_ecs_fields(message, family, want):
    row = one(H + message, family)
    assert {k: row.get(k, "<absent>") for k in want} == want
    assert row["observer.name"] == "fw01" and row["message"] == message.split(": ", 1)[1]


def test_lines_without_a_syslog_header_are_kept_with_the_input_time_and_say_so():
    """A file of bare ``%ASA-...`` lines (a device's buffer copied out, a collector that strips headers) or
    ``<PRI>::`` stamps: parsed, timed by the input's time (file mtime), ``soc.timestamp_source`` says so (as CEF)."""
    ref = datetime(2026, 11, 23, 3, 0, 0, tzinfo=UTC)
    lines = [f"%ASA-6-302013: {BUILT}", "<166>:: %ASA-auth-6-605004: Login denied from 198.51.100.9/40022 to "
             'outside:203.0.113.5/ssh for user "root"', "%FTD-7-609001: Built local-host inside:10.1.1.5",
             f"<166>Nov 23 2026 09:15:13: %ASA-6-302013: {BUILT}"]
    res = parse_text("cisco_asa", "\n".join(lines) + "\n", reference=ref)
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    net = res.frames[("network", "cisco.asa")]
    assert net.select("@timestamp", "soc.timestamp_source", "event.code", "observer.name").rows() == [
        (ref, "input_time", "302013", None),
        (datetime(2026, 11, 23, 2, 15, 13, tzinfo=UTC), "syslog", "302013", None)]
    auth = res.frames[("authentication", "cisco.asa")]
    (row,) = auth.to_dicts()
    assert pick(row, "@timestamp soc.timestamp_source event.code user.name event.outcome") == {
        "@timestamp": ref, "soc.timestamp_source": "input_time", "event.code": "605004", "user.name": "root",
        "event.outcome": "failure"}
    (other,) = res.frames[("syslog", "cisco.asa")].to_dicts()
    assert pick(other, "@timestamp soc.timestamp_source event.code log.level message") == {
        "@timestamp": ref, "soc.timestamp_source": "input_time", "event.code": "609001", "log.level": "debug",
        "message": "Built local-host inside:10.1.1.5"}


def test_ftd_connection_events_stay_in_the_syslog_frame_with_their_id():
    """FTD's 430001-430005 are ``Key: value, ...`` lists in any order: not a dissect pattern; kept whole."""
    line = ("<113>Nov 23 09:15:13 ftd-01 : %FTD-1-430003: AccessControlRuleAction: Block, SrcIP: 198.51.100.7, "
            "DstIP: 10.1.1.5, SrcPort: 40000, DstPort: 445, Protocol: tcp")
    (row,) = parse_text("cisco_asa", line + "\n").frames[("syslog", "cisco.asa")].to_dicts()
    assert pick(row, "host.hostname event.code log.level log.syslog.priority") == {
        "host.hostname": "ftd-01", "event.code": "430003", "log.level": "alert", "log.syslog.priority": 113}
    assert row["message"].startswith("AccessControlRuleAction: Block")


def test_a_line_without_the_tag_or_a_time_is_still_dead_lettered():
    res = parse_text("cisco_asa", "Built inbound TCP connection 77 with no header\n")
    assert res.dead["error.message"].to_list() == ["no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)"]


def test_inner_tag_prefixes_are_checked():
    from soc.parse.columns import SpecError
    from soc.parse.syslog_tag import prefixes

    lits, at = prefixes("%ASA-")
    assert bytes(lits) == b"%ASA-" and at.tolist() == [0, 5]
    assert prefixes(["%ASA-", "%FTD-"])[1].tolist() == [0, 5, 10]
    for bad in ([], [""], [5]):
        with pytest.raises(SpecError):
            prefixes(bad)
