"""iptables / netfilter LOG lines (nf_log_syslog.c field order), with UFW and --log-prefix prefixes."""

from __future__ import annotations

from soc.parse.spec import load_specs
from soc.sources.sniff import sniff
from tests.conftest import parse_text

MAC = "MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00"
UFW = ("Nov 23 09:15:13 gw kernel: [12345.678901] [UFW BLOCK] IN=eth0 OUT= " + MAC + " SRC=198.51.100.7 "
       "DST=10.0.0.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=4242 DF PROTO=TCP SPT=51000 DPT=22 WINDOW=64240 "
       "RES=0x00 SYN URGP=0")
UDP = ("Nov 23 09:15:14 gw kernel: [12346.000001] DROP-IN: IN=eth0 OUT= " + MAC + " SRC=198.51.100.8 DST=10.0.0.10 "
       "LEN=68 TOS=0x00 PREC=0x00 TTL=60 ID=0 PROTO=UDP SPT=5353 DPT=53 LEN=48")
ICMP = ("Nov 23 09:15:15 gw kernel: [  346.5] IN=eth0 OUT= " + MAC + " SRC=198.51.100.9 DST=10.0.0.10 LEN=84 "
        "TOS=0x00 PREC=0x00 TTL=60 ID=1 DF PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=1")
OUT = ("Nov 23 09:15:16 gw kernel: IPTables-Dropped IN= OUT=eth1 SRC=10.0.0.10 DST=203.0.113.99 LEN=40 TOS=0x00 "
       "PREC=0x00 TTL=64 ID=9 PROTO=TCP SPT=44000 DPT=4444 WINDOW=0 RES=0x00 RST URGP=0")
NO_UPTIME = ("Nov 23 09:15:17 gw kernel: [UFW AUDIT] IN=eth0 OUT= " + MAC + " SRC=198.51.100.7 DST=10.0.0.10 LEN=60 "
             "TOS=0x00 PREC=0x00 TTL=52 ID=1 DF PROTO=TCP SPT=51001 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0")
OTHER = "Nov 23 09:15:18 gw kernel: [12348.0] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex"
ALL = [UFW, UDP, ICMP, OUT, NO_UPTIME, OTHER]
COLS = ["event.action", "source.ip", "source.port", "destination.ip", "destination.port", "network.transport",
        "observer.ingress.interface.name", "observer.egress.interface.name", "iptables.length"]


def rows(*lines: str) -> list[dict]:
    res = parse_text("iptables", "\n".join(lines) + "\n")
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    return res.frames[("network", "iptables")].sort("log.line").select(COLS).to_dicts()


def test_fields_of_tcp_udp_icmp_and_the_prefix_forms():
    assert rows(UFW, UDP, ICMP, OUT, NO_UPTIME) == [
        dict(zip(COLS, v, strict=True)) for v in [
            ("UFW BLOCK", "198.51.100.7", 51000, "10.0.0.10", 22, "tcp", "eth0", None, 60),
            ("DROP-IN", "198.51.100.8", 5353, "10.0.0.10", 53, "udp", "eth0", None, 68),
            (None, "198.51.100.9", None, "10.0.0.10", None, "icmp", "eth0", None, 84),
            ("IPTables-Dropped", "10.0.0.10", 44000, "203.0.113.99", 4444, "tcp", None, "eth1", 40),
            ("UFW AUDIT", "198.51.100.7", 51001, "10.0.0.10", 443, "tcp", "eth0", None, 60),
        ]]


def test_header_and_other_kernel_lines():
    res = parse_text("iptables", "\n".join(ALL) + "\n")
    net = res.frames[("network", "iptables")].row(0, named=True)
    assert net["observer.name"] == "gw" and net["event.category"] == "network"
    assert str(net["@timestamp"]) == "2026-11-23 02:15:13+00:00"
    (other,) = res.frames[("syslog", "system.syslog")].to_dicts()
    assert other["process.name"] == "kernel" and other["message"].startswith("[12348.0] e1000e")


def test_malformed_lines_are_dead_lettered_and_counts_add_up():
    bad_port = UFW.replace("SPT=51000", "SPT=99999")
    bad_len = UDP.replace("LEN=68", "LEN=6x8")
    res = parse_text("iptables", "\n".join([*ALL, bad_port, bad_len, UFW[:14], ""]) + "\n")
    assert res.lines == len(ALL) + 4 and res.parsed + res.dead.height == res.lines
    assert sum(f.height for f in res.frames.values()) == res.parsed == len(ALL)
    assert res.dead["error.message"].to_list() == [
        "source.port: 99999 is not a valid uint16", "iptables.length: 6x8 is not a valid int64",
        "no syslog timestamp (Mmm dd hh:mm:ss, RFC 5424 or ISO 8601)", "empty line"]


def test_sniffed_as_iptables_only_when_every_line_is_a_kernel_line():
    sigs = [s.signature for s in load_specs().values()]
    assert sniff("\n".join(ALL).encode(), sigs) == "iptables"
    mixed = [*ALL, "Nov 23 09:15:19 gw sshd[1]: Accepted password for bob from 10.0.0.1 port 2 ssh2"]
    assert sniff("\n".join(mixed).encode(), sigs) == "syslog"


# issue 16: router and appliance shapes (a --log-prefix glued to IN=, no kernel tag, no host)
GLUED = ("<4>Nov 23 09:15:20 edge-rtr kernel: [lan-wan-default-D]IN=eth1 OUT= " + MAC + " SRC=198.51.100.20 "
         "DST=10.0.0.30 LEN=52 TOS=0x00 PREC=0x00 TTL=63 ID=0 DF PROTO=TCP SPT=40001 DPT=443 WINDOW=2853 RES=0x00 "
         "ACK URGP=0")
GLUED_UPTIME = ("Nov 23 09:15:21 edge-rtr kernel: [ 8123.004] [WAN_IN-3000-D]IN=eth0 OUT=eth1 SRC=198.51.100.21 "
                "DST=10.0.0.31 LEN=40 TOS=0x00 PREC=0x00 TTL=50 ID=7 PROTO=UDP SPT=123 DPT=123 LEN=20")
NO_TAG = ("Nov 23 09:15:22 appliance-7 [BLOCK-100-A] IN=port1 OUT=port2 " + MAC + " SRC=10.9.8.7 DST=10.9.8.1 "
          "LEN=32 TOS=00 PREC=0x00 TTL=63 ID=3 PROTO=UDP SPT=9000 DPT=9001 LEN=12 MARK=0")
NO_HOST = ("Nov 23 09:15:23 REJECT: IN=eth0 OUT= " + MAC + " SRC=198.51.100.22 DST=10.0.0.32 LEN=88 TOS=0x00 "
           "PREC=0x00 TTL=118 ID=5 PROTO=ICMP TYPE=3 CODE=3 [SRC=10.0.0.32 DST=198.51.100.22 LEN=60 PROTO=UDP "
           "SPT=5 DPT=6 LEN=40 ]")
ISO_GLUED = ("2026-11-23T02:15:24Z edge-rtr kernel: [lan-local-default-A]IN=eth1.20 OUT= SRC=10.0.20.5 "
             "DST=10.0.20.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=51000 DPT=53 WINDOW=1 RES=0x00 "
             "SYN URGP=0")
LEVEL = ("Nov 23 09:15:25 edge-rtr user.warning kernel: [WAN_LOCAL-default-D]IN=eth0 OUT= SRC=203.0.113.3 "
         "DST=192.0.2.1 LEN=40 TOS=0x00 PREC=0x00 TTL=240 ID=2 PROTO=TCP SPT=1 DPT=8443 WINDOW=1 RES=0x00 SYN URGP=0")
SHOREWALL = ("Nov 23 09:15:26 fw2 kernel: [ 77.1] Shorewall:net-fw:DROP:IN=eth0 OUT= SRC=203.0.113.4 DST=192.0.2.2 "
             "LEN=40 TOS=0x00 PREC=0x00 TTL=240 ID=2 PROTO=TCP SPT=2 DPT=25 WINDOW=1 RES=0x00 SYN URGP=0")
ROUTER = [GLUED, GLUED_UPTIME, NO_TAG, NO_HOST, ISO_GLUED, LEVEL, SHOREWALL]


def test_router_and_appliance_shapes_are_netfilter_events():
    assert rows(*ROUTER) == [dict(zip(COLS, v, strict=True)) for v in [
        ("lan-wan-default-D", "198.51.100.20", 40001, "10.0.0.30", 443, "tcp", "eth1", None, 52),
        ("WAN_IN-3000-D", "198.51.100.21", 123, "10.0.0.31", 123, "udp", "eth0", "eth1", 40),
        ("BLOCK-100-A", "10.9.8.7", 9000, "10.9.8.1", 9001, "udp", "port1", "port2", 32),
        ("REJECT", "198.51.100.22", None, "10.0.0.32", None, "icmp", "eth0", None, 88),
        ("lan-local-default-A", "10.0.20.5", 51000, "10.0.20.1", 53, "tcp", "eth1.20", None, 60),
        ("WAN_LOCAL-default-D", "203.0.113.3", 1, "192.0.2.1", 8443, "tcp", "eth0", None, 40),
        ("Shorewall:net-fw:DROP", "203.0.113.4", 2, "192.0.2.2", 25, "tcp", "eth0", None, 40),
    ]]
    res = parse_text("iptables", "\n".join(ROUTER) + "\n")
    hosts = res.frames[("network", "iptables")].sort("log.line")["observer.name"].cast(str).to_list()
    assert hosts == ["edge-rtr", "edge-rtr", "appliance-7", None, "edge-rtr", "edge-rtr", "fw2"]


def test_router_shapes_sniff_as_iptables():
    sigs = [s.signature for s in load_specs().values()]
    for line in ROUTER:
        assert sniff((line + "\n").encode(), sigs) == "iptables", line
    assert sniff(("\n".join(ROUTER) + "\n" + OTHER + "\n").encode(), sigs) == "iptables"


def test_a_mixed_messages_file_gives_both_kinds_of_events_whichever_spec_reads_it():
    """RHEL's /var/log/messages holds netfilter and sshd(pam_unix) lines; the sniffer may pick either spec."""
    sshd = ("Nov 23 09:15:30 gw sshd(pam_unix)[5]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh "
            "ruser= rhost=203.0.113.50  user=root")
    useradd = "Nov 23 09:15:31 gw useradd[6]: new user: name=x, UID=1005, GID=1005, home=/home/x, shell=/bin/sh"
    for spec in ("syslog", "iptables"):
        res = parse_text(spec, "\n".join([UFW, sshd, NO_TAG, useradd, OTHER]) + "\n")
        heights = {k: f.height for k, f in res.frames.items() if f.height}
        assert heights == {("network", "iptables"): 2, ("authentication", "system.auth"): 2,
                           ("syslog", "system.syslog"): 1}, spec


def test_edgeos_prefixes_name_the_rule():
    res = parse_text("iptables", "\n".join([GLUED, GLUED_UPTIME, NO_TAG, UFW]) + "\n")
    got = res.frames[("network", "iptables")].sort("log.line").select("rule.name", "rule.id").rows()
    assert got == [("lan-wan", "default"), ("WAN_IN", "3000"), ("BLOCK", "100"), (None, None)]
