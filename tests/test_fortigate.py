"""FortiGate key=value logs, from the examples of Fortinet's FortiOS Log Message Reference (traffic forward
and local, UTM webfilter/IPS/app-ctrl/DNS/antivirus, system admin login success and failure, user and
SSL-VPN events) and FortiGate community articles (FortiOS 7.x syslog lines with devname, tz and eventtime
in ns)."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from soc.parse.columns import Context, SpecError
from soc.parse.engines.kv import KvEngine
from soc.parse.spec import load_specs
from soc.sources.sniff import sniff
from tests.conftest import parse_text

UTC = timezone.utc
DATASET = "fortinet.firewall"

# Log Reference 6.2, "Sample logs by log type": forward traffic (eventtime in ns)
FORWARD = (
    'date=2019-05-10 time=11:37:47 logid="0000000013" type="traffic" subtype="forward" level="notice" '
    'vd="vdom1" eventtime=1557513467369913239 srcip=10.1.100.11 srcport=58012 srcintf="port12" '
    'srcintfrole="undefined" dstip=23.59.154.35 dstport=80 dstintf="port11" dstintfrole="undefined" '
    'srcuuid="ae28f494-5735-51e9-f247-d1d2ce663f4b" dstuuid="ae28f494-5735-51e9-f247-d1d2ce663f4b" '
    'poluuid="ccb269e0-5735-51e9-a218-a397dd08b7eb" sessionid=105048 proto=6 action="close" policyid=1 '
    'policytype="policy" service="HTTP" dstcountry="Canada" srccountry="Reserved" trandisp="snat" '
    'transip=172.16.200.2 transport=58012 appid=34050 app="HTTP.BROWSER_Firefox" appcat="Web.Client" '
    'apprisk="elevated" applist="g-default" duration=116 sentbyte=1188 rcvdbyte=1224 sentpkt=17 rcvdpkt=16 '
    'utmaction="allow" countapp=1 osname="Ubuntu" mastersrcmac="a2:e9:00:ec:40:01" srcmac="a2:e9:00:ec:40:01" '
    'srcserver=0'
)
FORWARD_AT = datetime(2019, 5, 10, 18, 37, 47, 369913, tzinfo=UTC)
# local-in traffic to the firewall itself, FortiOS 7.x syslog layout (devname, devid, tz)
LOCAL = (
    'date=2023-04-05 time=11:38:06 devname="BORDER-FGT" devid="FGT60FTK19009408" eventtime=1680709086239594580 '
    'tz="-0400" logid="0001000014" type="traffic" subtype="local" level="notice" vd="root" '
    'srcip=198.51.100.23 srcport=51914 srcintf="wan1" srcintfrole="wan" dstip=203.0.113.10 dstport=443 '
    'dstintf="root" dstintfrole="undefined" srccountry="Netherlands" dstcountry="United States" '
    'sessionid=23891012 proto=6 action="deny" policyid=0 policytype="local-in-policy" service="HTTPS" '
    'trandisp="noop" app="HTTPS" duration=0 sentbyte=0 rcvdbyte=0 sentpkt=0 rcvdpkt=0 appcat="unscanned" '
    'crscore=5 craction=262144 crlevel="low"'
)
# Log Reference 7.0, "Webfilter log support for CEF"
WEBFILTER = (
    'date=2018-12-27 time=11:23:50 logid="0316013056" type="utm" subtype="webfilter" eventtype="ftgd_blk" '
    'level="warning" vd="vdom1" eventtime=1545938629 policyid=1 sessionid=764 user="bob" srcip=10.1.100.11 '
    'srcport=59194 srcintf="port12" srcintfrole="undefined" dstip=185.230.61.185 dstport=80 dstintf="port11" '
    'dstintfrole="undefined" proto=6 service="HTTP" hostname="ambrishsriv.wixsite.com" profile="g-default" '
    'action="blocked" reqtype="direct" url="/bizsquads" sentbyte=96 rcvdbyte=0 direction="outgoing" '
    'msg="URL belongs to a denied category in policy" method="domain" cat=26 catdesc="Malicious Websites" '
    'crscore=60 crlevel="high"'
)
# Log Reference 7.0, "IPS log support for CEF"
IPS = (
    'date=2018-12-27 time=11:28:07 logid="0419016384" type="utm" subtype="ips" eventtype="signature" '
    'level="alert" vd="vdom1" eventtime=1545938887 severity="info" srcip=172.16.200.55 srccountry="Reserved" '
    'dstip=10.1.100.11 srcintf="port11" srcintfrole="undefined" dstintf="port12" dstintfrole="undefined" '
    'sessionid=901 action="reset" proto=6 service="HTTP" policyid=1 attack="Eicar.Virus.Test.File" '
    'srcport=80 dstport=44362 hostname="172.16.200.55" url="/virus/eicar.com" direction="incoming" '
    'attackid=29844 profile="test-ips" ref="http://www.fortinet.com/ids/VID29844" user="bob" '
    'incidentserialno=877326946 msg="file_transfer: Eicar.Virus.Test.File,"'
)
# Log Reference 7.4, "Application log support for CEF"
APP_CTRL = (
    'date=2018-12-27 time=14:28:08 logid="1059028704" type="utm" subtype="app-ctrl" eventtype="app-ctrl-all" '
    'level="information" vd="vdom1" eventtime=1545949688 appid=34050 srcip=10.1.100.11 dstip=104.80.89.24 '
    'srcport=56826 dstport=80 srcintf="port12" srcintfrole="undefined" dstintf="port11" '
    'dstintfrole="undefined" proto=6 service="HTTP" direction="outgoing" policyid=1 sessionid=12567 '
    'applist="g-default" appcat="Web.Client" app="HTTP.BROWSER_Firefox" action="pass" '
    'hostname="detectportal.firefox.com" incidentserialno=1702350499 url="/success.txt" '
    'msg="Web.Client: HTTP.BROWSER_Firefox," apprisk="elevated"'
)
# Log Reference 6.0, "DNS log support for CEF" (FortiOS 6.0 wrote type="dns"; 6.2+ type="utm" subtype="dns")
DNS_60 = (
    'date=2018-12-27 time=14:45:26 logid="1501054802" type="dns" subtype="dns-response" level="notice" '
    'vd="vdom1" eventtime=1545950726 policyid=1 sessionid=13355 user="bob" srcip=10.1.100.11 srcport=54621 '
    'srcintf="port12" srcintfrole="lan" dstip=172.16.200.55 dstport=53 dstintf="port11" dstintfrole="wan" '
    'proto=17 profile="default" srcmac="a2:e9:00:ec:40:01" xid=5137 qname="detectportal.firefox.com" '
    'qtype="A" qtypeval=1 qclass="IN" ipaddr="104.80.89.26, 104.80.89.24" msg="Domain is monitored" '
    'action="pass" cat=52 catdesc="Information Technology"'
)
DNS_UTM = DNS_60.replace('type="dns" subtype="dns-response"', 'type="utm" subtype="dns" eventtype="dns-response"')
# Log Reference 7.0, "Antivirus log support for CEF"
VIRUS = (
    'date=2018-12-27 time=11:20:49 logid="0211008192" type="utm" subtype="virus" eventtype="infected" '
    'level="warning" vd="vdom1" eventtime=1545938448 msg="File is infected." action="blocked" '
    'service="HTTP" sessionid=695 srcip=10.1.100.11 dstip=172.16.200.55 srcport=44356 dstport=80 '
    'srcintf="port12" srcintfrole="undefined" dstintf="port11" dstintfrole="undefined" policyid=1 proto=6 '
    'direction="incoming" filename="eicar.com" quarskip="File-was-not-quarantined." virus="EICAR_TEST_FILE" '
    'dtype="Virus" ref="http://www.fortinet.com/ve?vn=EICAR_TEST_FILE" virusid=2172 '
    'url="http://172.16.200.55/virus/eicar.com" profile="g-default" user="bob" agent="curl/7.47.0" '
    'crscore=50 crlevel="critical"'
)
# Log Reference 6.0.3, "Event log system subtype": no eventtime, no tz: read in the configured zone
ADMIN_OK = (
    'date=2016-02-12 time=10:48:12 logid=0100032001 type=event subtype=system level=information vd="vdom1" '
    'logdesc="Admin login successful" sn=1455302892 user="admin" ui=console action=login status=success '
    'reason=none profile="super_admin" msg="Administrator admin logged in successfully from console"'
)
# Log Reference 6.2, "Event log support for CEF"
ADMIN_FAIL = (
    'date=2018-12-27 time=11:15:40 logid="0100032002" type="event" subtype="system" level="alert" '
    'vd="vdom1" eventtime=1545938140 logdesc="Admin login failed" sn="0" user="admin1" '
    'ui="https(172.16.200.254)" method="https" srcip=172.16.200.254 dstip=172.16.200.1 action="login" '
    'status="failed" reason="name_invalid" msg="Administrator admin1 login failed from '
    'https(172.16.200.254) because of invalid user name"'
)
# FortiGate community, "firewall-authentication-failure-logs": firewall user authentication failure
USER_FAIL = (
    'date=2023-04-05 time=11:30:29 devname=BORDER-FGT devid=FGT60FTK19009408 eventtime=1680708629542320970 '
    'tz="-0400" logid="0102043009" type="event" subtype="user" level="notice" vd="root" '
    'logdesc="Authentication failed" srcip=192.168.10.14 dstip=172.31.0.1 policyid=37 interface="internal2" '
    'user="test" group="N/A" authproto="HTTP(192.168.10.14)" action="authentication" status="failure" '
    'reason="N/A" msg="User test failed in authentication"'
)
# SSL-VPN events 39426 (LOG_ID_EVENT_SSL_VPN_USER_SSL_LOGIN_FAIL) and 39424 (tunnel up)
VPN_FAIL = (
    'date=2019-05-13 time=11:20:54 logid="0101039426" type="event" subtype="vpn" level="alert" vd="root" '
    'eventtime=1557771654587081441 logdesc="SSL VPN login fail" action="ssl-login-fail" tunneltype="ssl-web" '
    'tunnelid=0 remip=172.16.200.254 user="u1" group="N/A" dst_host="N/A" '
    'reason="sslvpn_login_permission_denied" msg="SSL user failed to logged in"'
)
VPN_UP = (
    'date=2019-05-13 time=11:21:03 logid="0101039424" type="event" subtype="vpn" level="information" '
    'vd="root" eventtime=1557771663411282103 logdesc="SSL VPN tunnel up" action="tunnel-up" '
    'tunneltype="ssl-tunnel" tunnelid=1191182337 remip=172.16.200.254 tunnelip=10.212.134.200 user="u1" '
    'group="sslvpn-group" dst_host="N/A" reason="N/A" msg="SSL tunnel established"'
)
# a system event that is no login: configuration change (44547 LOG_ID_CFG_OBJ_ATTR)
CONFIG = (
    'date=2019-05-13 time=14:10:31 logid="0100044547" type="event" subtype="system" level="information" '
    'vd="root" eventtime=1557781831813946151 logdesc="Object attribute configured" user="admin" '
    'ui="GUI(10.6.30.254)" action="Edit" cfgtid=2162722 cfgpath="firewall.policy" cfgobj="1" '
    'cfgattr="srcaddr[all->LAN_Servers]" msg="Edit firewall.policy 1"'
)


def result(text: str, **kw):
    res = parse_text("fortigate", text if text.endswith("\n") else text + "\n", **kw)
    assert res.lines == res.parsed + res.dead.height
    return res


def only(text: str, family: str, **kw) -> dict:
    """The single event of ``text``, which must land in ``family``."""
    res = result(text, **kw)
    assert res.dead.height == 0, res.dead["error.message"].to_list()
    assert list(res.frames) == [(family, DATASET)]
    frame = res.frames[(family, DATASET)]
    assert frame.height == 1
    return frame.row(0, named=True)


def test_forward_traffic_to_network():
    row = only(FORWARD, "network")
    assert row["@timestamp"] == FORWARD_AT
    assert row["event.dataset"] == DATASET and row["event.kind"] == "event" and row["event.category"] == "network"
    assert (row["source.ip"], row["source.port"]) == ("10.1.100.11", 58012)
    assert (row["destination.ip"], row["destination.port"]) == ("23.59.154.35", 80)
    assert row["network.transport"] == "tcp"
    assert row["event.action"] == "close"
    assert (row["source.bytes"], row["destination.bytes"]) == (1188, 1224)
    assert (row["source.packets"], row["destination.packets"]) == (17, 16)
    assert row["observer.ingress.interface.name"] == "port12"
    assert row["observer.egress.interface.name"] == "port11"
    assert row["rule.id"] == "1"
    assert row["event.severity"] == 5  # notice
    assert row["fortinet.firewall.logid"] == "0000000013"
    assert (row["fortinet.firewall.type"], row["fortinet.firewall.subtype"]) == ("traffic", "forward")
    assert row["fortinet.firewall.level"] == "notice" and row["fortinet.firewall.vd"] == "vdom1"
    assert (row["fortinet.firewall.srccountry"], row["fortinet.firewall.dstcountry"]) == ("Reserved", "Canada")
    assert row["fortinet.firewall.service"] == "HTTP"
    assert (row["fortinet.firewall.app"], row["fortinet.firewall.appcat"]) == ("HTTP.BROWSER_Firefox", "Web.Client")
    assert row["fortinet.firewall.sessionid"] == 105048 and row["fortinet.firewall.duration"] == 116
    assert row["log.line"] == 1 and row["log.offset"] == 0


def test_local_traffic_deny_with_devname_and_tz():
    row = only(LOCAL, "network")
    assert row["@timestamp"] == datetime(2023, 4, 5, 15, 38, 6, 239594, tzinfo=UTC)  # eventtime, UTC
    assert row["observer.name"] == "BORDER-FGT" and row["fortinet.firewall.devid"] == "FGT60FTK19009408"
    assert row["fortinet.firewall.subtype"] == "local" and row["event.action"] == "deny"
    assert row["rule.id"] == "0" and row["source.bytes"] == 0
    assert row["fortinet.firewall.srccountry"] == "Netherlands"


def test_protocol_numbers_become_transport_names():
    udp = only(FORWARD.replace("proto=6", "proto=17"), "network")
    icmp = only(FORWARD.replace("proto=6", "proto=1"), "network")
    other = only(FORWARD.replace("proto=6", "proto=89"), "network")  # OSPF: no name in the map, kept
    assert (udp["network.transport"], icmp["network.transport"], other["network.transport"]) == ("udp", "icmp", "89")


def test_webfilter_to_security():
    row = only(WEBFILTER, "security")
    assert row["@timestamp"] == datetime(2018, 12, 27, 19, 23, 49, tzinfo=UTC)
    assert row["event.category"] == "web" and row["event.action"] == "blocked"
    assert row["url.domain"] == "ambrishsriv.wixsite.com" and row["url.original"] == "/bizsquads"
    assert row["rule.name"] == "Malicious Websites" and row["rule.category"] == "Malicious Websites"
    assert row["user.name"] == "bob" and row["source.ip"] == "10.1.100.11" and row["destination.port"] == 80
    assert row["message"] == "URL belongs to a denied category in policy"
    assert row["event.severity"] == 4  # warning
    assert (row["source.bytes"], row["destination.bytes"]) == (96, 0)
    assert row["fortinet.firewall.eventtype"] == "ftgd_blk" and row["rule.id"] == "1"


def test_ips_to_security():
    row = only(IPS, "security")
    assert row["event.category"] == "intrusion_detection" and row["event.action"] == "reset"
    assert row["rule.name"] == "Eicar.Virus.Test.File" and row["vulnerability.id"] == "29844"
    assert row["fortinet.firewall.severity"] == "info" and row["event.severity"] == 1  # level alert
    assert (row["source.ip"], row["source.port"], row["destination.port"]) == ("172.16.200.55", 80, 44362)
    assert row["url.original"] == "/virus/eicar.com" and row["network.transport"] == "tcp"
    assert row["message"] == "file_transfer: Eicar.Virus.Test.File,"


def test_app_ctrl_to_security():
    row = only(APP_CTRL, "security")
    assert row["event.category"] == "network" and row["event.action"] == "pass"
    assert row["rule.name"] == "HTTP.BROWSER_Firefox" and row["rule.category"] == "Web.Client"
    assert row["url.domain"] == "detectportal.firefox.com" and row["url.original"] == "/success.txt"
    assert row["fortinet.firewall.appcat"] == "Web.Client"


@pytest.mark.parametrize("line", [DNS_60, DNS_UTM], ids=["fortios-6.0", "fortios-6.2+"])
def test_dns_to_security(line):
    row = only(line, "security")
    assert row["dns.question.name"] == "detectportal.firefox.com"
    assert row["event.category"] == "network" and row["network.transport"] == "udp"
    assert row["rule.name"] == "Information Technology" and row["message"] == "Domain is monitored"
    assert row["@timestamp"] == datetime(2018, 12, 27, 22, 45, 26, tzinfo=UTC)


def test_virus_to_security():
    row = only(VIRUS, "security")
    assert row["event.category"] == "malware" and row["event.action"] == "blocked"
    assert row["file.name"] == "eicar.com" and row["rule.name"] == "EICAR_TEST_FILE"
    assert row["url.original"] == "http://172.16.200.55/virus/eicar.com"
    assert row["message"] == "File is infected."


def test_admin_login_success_in_the_configured_zone():
    row = only(ADMIN_OK, "authentication")
    assert row["@timestamp"] == datetime(2016, 2, 12, 3, 48, 12, tzinfo=UTC)  # 10:48:12 +07:00
    assert (row["event.action"], row["event.outcome"]) == ("admin_login", "success")
    assert row["event.category"] == "authentication" and row["user.name"] == "admin"
    assert row["fortinet.firewall.ui"] == "console" and row["fortinet.firewall.status"] == "success"
    assert row["message"] == "Administrator admin logged in successfully from console"
    assert row["event.severity"] == 6  # information


def test_admin_login_failure():
    row = only(ADMIN_FAIL, "authentication")
    assert row["@timestamp"] == datetime(2018, 12, 27, 19, 15, 40, tzinfo=UTC)
    assert (row["event.action"], row["event.outcome"]) == ("admin_login", "failure")
    assert (row["user.name"], row["source.ip"]) == ("admin1", "172.16.200.254")
    assert row["event.reason"] == "name_invalid" and row["fortinet.firewall.ui"] == "https(172.16.200.254)"
    assert row["fortinet.firewall.logid"] == "0100032002" and row["event.severity"] == 1


def test_user_authentication_failure():
    row = only(USER_FAIL, "authentication")
    assert (row["event.action"], row["event.outcome"]) == ("user_auth", "failure")
    assert (row["user.name"], row["source.ip"]) == ("test", "192.168.10.14")
    assert row["observer.name"] == "BORDER-FGT"
    assert row["@timestamp"] == datetime(2023, 4, 5, 15, 30, 29, 542320, tzinfo=UTC)


def test_ssl_vpn_login_failure_and_tunnel_up():
    res = result(VPN_FAIL + "\n" + VPN_UP)
    assert res.dead.height == 0
    frame = res.frames[("authentication", DATASET)]
    fail, up = frame.rows(named=True)
    assert (fail["event.action"], fail["event.outcome"]) == ("vpn_login", "failure")
    assert (up["event.action"], up["event.outcome"]) == ("vpn_login", "success")
    assert fail["source.ip"] == up["source.ip"] == "172.16.200.254"  # remip: VPN events have no srcip
    assert fail["user.name"] == up["user.name"] == "u1"
    assert fail["event.reason"] == "sslvpn_login_permission_denied"
    assert up["event.reason"] is None  # reason="N/A": FortiOS's way of saying none
    assert (fail["fortinet.firewall.tunneltype"], up["fortinet.firewall.tunneltype"]) == ("ssl-web", "ssl-tunnel")
    assert fail["log.line"] == 1 and up["log.line"] == 2


def test_other_events_to_device():
    row = only(CONFIG, "device")
    assert row["user.name"] == "admin" and row["event.action"] == "Edit"
    assert row["message"] == "Edit firewall.policy 1"
    assert row["fortinet.firewall.ui"] == "GUI(10.6.30.254)" and row["fortinet.firewall.subtype"] == "system"
    # an event without msg: the description is the message
    row = only(CONFIG.replace(' msg="Edit firewall.policy 1"', ""), "device")
    assert row["message"] == "Object attribute configured"
    # an unknown type still parses (no line is dropped for its type)
    row = only('date=2024-01-02 time=03:04:05 logid="9999999999" type="newtype" subtype="x" srcip=10.0.0.1',
               "device")
    assert row["source.ip"] == "10.0.0.1" and row["fortinet.firewall.type"] == "newtype"


def test_every_family_in_one_input_in_line_order():
    lines = [FORWARD, WEBFILTER, ADMIN_FAIL, CONFIG, LOCAL, IPS, VPN_FAIL, USER_FAIL, APP_CTRL, DNS_UTM, VIRUS,
             VPN_UP, ADMIN_OK]
    res = result("\n".join(lines))
    assert res.lines == 13 and res.parsed == 13 and res.dead.height == 0
    heights = {family: frame.height for (family, _), frame in res.frames.items()}
    assert heights == {"network": 2, "security": 5, "authentication": 5, "device": 1}
    assert res.frames[("authentication", DATASET)]["log.line"].to_list() == [3, 7, 8, 12, 13]
    assert res.frames[("security", DATASET)]["log.line"].to_list() == [2, 6, 9, 10, 11]


@pytest.mark.parametrize("line,family", [(FORWARD, "network"), (ADMIN_OK, "authentication")])
def test_pri_and_syslog_header_give_the_same_event(line, family):
    plain = only(line, family)
    for prefix in ("<189>", "<189> ", "May 10 11:37:47 fw01 ", "<189>May 10 11:37:47 fw01.example.vn ",
                   "2019-05-10T11:37:47-07:00 10.0.0.1 "):
        row = only(prefix + line, family)
        assert {k: v for k, v in row.items() if k != "log.offset"} == {
            k: v for k, v in plain.items() if k != "log.offset"}, prefix
    # ADMIN_OK has no eventtime: its time comes from the date= glued to the <PRI>
    assert only("<190>" + ADMIN_OK, "authentication")["@timestamp"] == datetime(2016, 2, 12, 3, 48, 12, tzinfo=UTC)


def test_quoted_values_keep_spaces_and_key_value_text():
    line = FORWARD.replace('osname="Ubuntu"', 'msg="policy srcip=6.6.6.6 dstport=1 user=eve matched" osname="Ubuntu"')
    row = only(line, "network")
    assert row["message"] == "policy srcip=6.6.6.6 dstport=1 user=eve matched"
    assert row["source.ip"] == "10.1.100.11" and row["destination.port"] == 80 and row["user.name"] is None
    row = only(DNS_UTM, "security")  # a quoted list with a comma and a space is one value
    assert row["dns.question.name"] == "detectportal.firefox.com" and row["rule.name"] == "Information Technology"


def test_escaped_quotes_stay_inside_and_are_kept():
    line = IPS.replace('msg="file_transfer: Eicar.Virus.Test.File,"',
                       'msg="web_server: SQL injection, url=\\"/a?id=1\\" srcip=9.9.9.9 \\\\"')
    row = only(line, "security")
    assert row["message"] == 'web_server: SQL injection, url=\\"/a?id=1\\" srcip=9.9.9.9 \\\\'
    assert row["source.ip"] == "172.16.200.55" and row["url.original"] == "/virus/eicar.com"


def test_first_occurrence_of_a_key_wins():
    row = only(FORWARD + ' srcip=6.6.6.6 action="accept" dstport=9999', "network")
    assert row["source.ip"] == "10.1.100.11" and row["event.action"] == "close" and row["destination.port"] == 80
    row = only('logid="0000000013" type="traffic" eventtime=1557513467 eventtime=1 srcip=1.1.1.1', "network")
    assert row["@timestamp"] == datetime(2019, 5, 10, 18, 37, 47, tzinfo=UTC)


def test_bare_values_end_at_whitespace_and_empty_values_are_null():
    row = only(WEBFILTER.replace('user="bob"', 'user=""').replace('url="/bizsquads"', "url=/a?b=c&d=e=f\tx=1"),
               "security")
    assert row["user.name"] is None and row["url.original"] == "/a?b=c&d=e=f"
    row = only(FORWARD.replace("policyid=1", "policyid="), "network")
    assert row["rule.id"] is None


@pytest.mark.parametrize("stamp", ["1557513467", "1557513467000", "1557513467000000", "1557513467000000000"],
                         ids=["s", "ms", "us", "ns"])
def test_eventtime_unit_from_its_magnitude(stamp):
    row = only(f'date=2019-05-10 time=11:37:47 logid="0000000013" type="traffic" eventtime={stamp} tz="-0700"',
               "network")
    assert row["@timestamp"] == datetime(2019, 5, 10, 18, 37, 47, tzinfo=UTC)


def test_eventtime_keeps_its_precision():
    base = 'logid="0000000013" type="traffic" eventtime='
    got = [only(base + s, "network")["@timestamp"] for s in
           ("1557513467369", "1557513467369913", "1557513467369913239")]
    assert got == [datetime(2019, 5, 10, 18, 37, 47, 369000, tzinfo=UTC),
                   datetime(2019, 5, 10, 18, 37, 47, 369913, tzinfo=UTC),
                   datetime(2019, 5, 10, 18, 37, 47, 369913, tzinfo=UTC)]


def test_date_and_time_in_the_logged_tz_else_the_configured_zone():
    line = 'date=2023-04-05 time=11:30:29 devname="FGT" logid="0000000013" type="traffic" srcip=10.0.0.1'
    assert only(line + ' tz="-0400"', "network")["@timestamp"] == datetime(2023, 4, 5, 15, 30, 29, tzinfo=UTC)
    assert only(line + ' tz="+0700"', "network")["@timestamp"] == datetime(2023, 4, 5, 4, 30, 29, tzinfo=UTC)
    assert only(line, "network")["@timestamp"] == datetime(2023, 4, 5, 4, 30, 29, tzinfo=UTC)  # Ho Chi Minh
    paris = only(line, "network", zone="Europe/Paris")["@timestamp"]  # summer time, +02:00
    assert paris == datetime(2023, 4, 5, 9, 30, 29, tzinfo=UTC)
    # the tz field wins over the configured zone, and eventtime over both
    assert only(line + ' tz="-0400"', "network", zone="Europe/Paris")["@timestamp"] == datetime(
        2023, 4, 5, 15, 30, 29, tzinfo=UTC)
    assert only(line + ' tz="-0400" eventtime=1680000000', "network")["@timestamp"] == datetime(
        2023, 3, 28, 10, 40, tzinfo=UTC)


def test_bad_lines_are_dead_lettered_with_reason_and_raw_bytes():
    lines = [
        FORWARD,                                                                          # 1 ok
        'date=2019-05-10 time=11:37:47 logid="0000000013" type="traffic" msg="never closed',  # 2
        "this line has no pairs at all",                                                  # 3
        "",                                                                               # 4
        'logid="0000000013" type="traffic" srcip=10.0.0.1',                               # 5 no time at all
        'logid="0000000013" type="traffic" eventtime=soon',                               # 6
        'date=2019-13-45 time=25:61:00 logid="0100032002" type="event" subtype="system"',  # 7
        FORWARD.replace("srcport=58012", "srcport=http"),                                 # 8
        "\x00\x01\x02 \xff==",                                                            # 9
        ADMIN_FAIL,                                                                       # 10 ok
    ]
    res = result("\n".join(lines))
    assert res.lines == 10 and res.parsed == 2 and res.dead.height == 8
    reasons = dict(zip(res.dead["log.line"].to_list(), res.dead["error.message"].to_list(), strict=True))
    assert reasons[2] == "unterminated quoted field"
    assert reasons[3] == "no key=value pairs" and reasons[4] == "no key=value pairs"
    assert reasons[5] == "@timestamp: missing"
    assert reasons[6] == "@timestamp: soon is not a valid epoch"
    assert reasons[7] == "@timestamp: 2019-13-45 25:61:00 is not a valid timestamp"
    assert reasons[8] == "source.port: http is not a valid uint16"
    assert reasons[9] == "no key=value pairs"
    raw = dict(zip(res.dead["log.line"].to_list(), res.dead["event.original"].to_list(), strict=True))
    assert raw[2] == lines[1].encode() and raw[3] == b"this line has no pairs at all" and raw[4] == b""
    assert raw[9] == "\x00\x01\x02 \xff==".encode()
    assert res.dead["log.line"].to_list() == sorted(reasons)  # dead letters in line order
    assert res.frames[("network", DATASET)]["log.line"].to_list() == [1]
    assert res.frames[("authentication", DATASET)]["log.line"].to_list() == [10]


def test_unknown_level_is_no_reason_to_lose_the_line():
    row = only(FORWARD.replace('level="notice"', 'level="verbose"'), "network")
    assert row["event.severity"] is None and row["fortinet.firewall.level"] == "verbose"


def test_lines_split_across_chunks_parse_as_in_one_chunk():
    lines = [FORWARD, WEBFILTER, ADMIN_FAIL, "garbage", CONFIG, LOCAL, VPN_FAIL, IPS, USER_FAIL, VPN_UP] * 3
    text = "\n".join(lines) + "\n"
    whole = result(text)
    small = result(text, chunk_size=1200)  # about one line a chunk: every line crosses a read boundary
    assert whole.lines == small.lines == 30
    assert whole.parsed == small.parsed == 27 and small.dead["log.line"].to_list() == [4, 14, 24]
    assert set(whole.frames) == set(small.frames)
    for key, frame in whole.frames.items():
        other = small.frames[key]
        assert frame.schema == other.schema
        assert frame.equals(other), key
    net = small.frames[("network", DATASET)]
    starts = [i for i in range(len(text)) if text.startswith((FORWARD, LOCAL), i) and (i == 0 or text[i - 1] == "\n")]
    assert net["log.offset"].to_list() == starts  # offsets point back to the raw lines across chunks
    assert net["log.line"].to_list() == [1, 6, 11, 16, 21, 26]
    assert net["source.port"].to_list() == [58012, 51914] * 3


def test_family_schema_is_the_same_whatever_routes_a_chunk_has():
    auth_a = result(ADMIN_FAIL).frames[("authentication", DATASET)]
    auth_b = result(VPN_UP).frames[("authentication", DATASET)]
    assert auth_a.schema == auth_b.schema
    assert auth_a.schema["@timestamp"] == pl.Datetime("us", "UTC")
    assert auth_a.schema["fortinet.firewall.tunneltype"] == pl.Categorical
    assert pl.concat([auth_a, auth_b]).height == 2


def test_sniffed_among_all_formats():
    specs = [s.signature for s in load_specs().values()]
    for prefix in ("", "<189>", "May 10 11:37:47 fw01 "):
        data = "\n".join(prefix + line for line in (FORWARD, ADMIN_FAIL, LOCAL)).encode()
        assert sniff(data, specs) == "fortigate", prefix


def test_routes_are_checked_when_the_engine_is_made():
    spec = load_specs()["fortigate"]
    routes = [{"name": "all", "family": "device"}, {"name": "late", "when": {"type": ["x"]}}]
    bad = type(spec)(**{**spec.__dict__, "options": {**spec.options, "routes": routes}})
    with pytest.raises(SpecError, match="after the catch-all"):
        KvEngine(bad, Context("x.log"))
    bad = type(spec)(**{**spec.__dict__, "options": {"routes": [{"name": "r", "family": "nope"}]}})
    with pytest.raises(SpecError, match="unknown family"):
        KvEngine(bad, Context("x.log"))
