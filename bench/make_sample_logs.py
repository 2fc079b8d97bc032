"""Write ``sample_logs/``: small logs of every supported format with planted attacks, for the README demo.

Deterministic (fixed seed), so the committed files can be re-created exactly:
``python bench/make_sample_logs.py``. Addresses are from documentation ranges (RFC 5737, RFC 3849) and
private ranges; host and agency names are made up.

Planted attacks:
- SSH brute force on the public portal's server from 203.0.113.45 (``linux/auth.log``),
- a web scan of the public-service portal from 198.51.100.23 (``web/nginx/access.log``),
- FortiGate admin login failures from 192.0.2.77 (``firewall/fortigate.log``),
- a port scan denied by the Cisco ASA, then SSH login attempts on it, from 198.51.100.66
  (``firewall/cisco_asa.log``),
- SMTP AUTH password guessing on the mail server from 203.0.113.99 (``mail/mail.log``, Postfix),
- DNS tunnelling from workstation 10.20.3.77: TXT queries with long encoded labels under one domain, many
  answered NXDOMAIN (``dns/dns.log``, the Windows DNS Server debug log, CRLF line ends as Windows writes).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sample_logs"
ICT = timezone(timedelta(hours=7))
START = datetime(2026, 11, 20, 8, 0, 0, tzinfo=ICT)
USERS = ["nguyenvana", "tranthib", "lehoangc", "phamthid", "vuvane", "ops", "backup"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Zalo/24.10 (Android 14; SM-A546E)",
]
PORTAL_PATHS = ["/", "/dichvucong/tra-cuu-ho-so", "/dichvucong/nop-ho-so", "/thu-tuc-hanh-chinh?linhvuc=dat-dai",
                "/static/css/main.css", "/static/js/app.js", "/tin-tuc/thong-bao-lich-tiep-dan", "/api/v1/ho-so/status"]
SCAN_PATHS = ["/.env", "/.git/config", "/wp-login.php", "/wp-admin/", "/phpmyadmin/", "/admin/", "/backup.zip",
              "/server-status", "/cgi-bin/test.cgi", "/index.php?id=1%27%20OR%20%271%27=%271",
              "/../../../../etc/passwd", "/solr/admin/info/system", "/actuator/env", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
              "/owa/auth/x.js", "/.aws/credentials", "/config.php.bak", "/api/v1/users?debug=true"]


def syslog_ts(t: datetime) -> str:
    return f"{t:%b} {t.day:2d} {t:%H:%M:%S}"


def auth_log(rng: random.Random) -> list[str]:
    host = "portal-web01"
    events: list[tuple[datetime, str]] = []
    t = START
    for _ in range(120):  # ordinary administration
        t += timedelta(seconds=rng.randint(20, 240))
        pid = rng.randint(2000, 60000)
        user = rng.choice(USERS[:5])
        kind = rng.random()
        if kind < 0.35:
            events.append((t, f"sshd[{pid}]: Accepted publickey for {user} from 10.20.1.{rng.randint(10, 60)} "
                              f"port {rng.randint(40000, 65000)} ssh2: RSA SHA256:k3Xr{rng.randint(1000, 9999)}Qp"))
            events.append((t, f"sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1001) by (uid=0)"))
        elif kind < 0.5:
            events.append((t, f"sudo: {user} : TTY=pts/{rng.randint(0, 4)} ; PWD=/home/{user} ; USER=root ; "
                              "COMMAND=/usr/bin/systemctl restart nginx"))
        elif kind < 0.6:
            events.append((t, f"sshd[{pid}]: Failed password for {user} from 10.20.1.{rng.randint(10, 60)} "
                              f"port {rng.randint(40000, 65000)} ssh2"))
        else:
            events.append((t, f"CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"))
    # planted: SSH brute force from 203.0.113.45, 80 attempts in about 4 minutes
    t = START + timedelta(hours=2, minutes=13)
    names = ["root", "admin", "oracle", "test", "ubuntu", "postgres", "git", "user"]
    for i in range(80):
        t += timedelta(seconds=rng.randint(1, 5))
        pid = 30000 + i
        port = rng.randint(30000, 60000)
        name = names[i % len(names)]
        if name == "root":
            events.append((t, f"sshd[{pid}]: Failed password for root from 203.0.113.45 port {port} ssh2"))
        else:
            events.append((t, f"sshd[{pid}]: Invalid user {name} from 203.0.113.45 port {port}"))
            events.append((t, f"sshd[{pid}]: Failed password for invalid user {name} from 203.0.113.45 port {port} ssh2"))
        if i % 20 == 19:
            events.append((t, f"sshd[{pid}]: message repeated 4 times: [ Failed password for root from 203.0.113.45 "
                              f"port {port} ssh2]"))
    events.sort(key=lambda e: e[0])
    return [f"{syslog_ts(ts)} {host} {msg}" for ts, msg in events]


def access_log(rng: random.Random) -> list[str]:
    rows: list[tuple[datetime, str]] = []
    t = START
    for _ in range(600):
        t += timedelta(seconds=rng.randint(1, 25))
        ip = f"113.{rng.randint(160, 191)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        path = rng.choice(PORTAL_PATHS)
        status = rng.choices([200, 304, 302, 404], [80, 10, 5, 5])[0]
        size = 0 if status == 304 else rng.randint(200, 90000)
        ref = "https://dichvucong.example.gov.vn/" if rng.random() < 0.6 else "-"
        rows.append((t, f'{ip} - - [{t:%d/%b/%Y:%H:%M:%S %z}] "GET {path} HTTP/1.1" {status} {size} '
                        f'"{ref}" "{rng.choice(AGENTS)}"'))
    # planted: a scan of the portal from 198.51.100.23, 180 requests in about 2 minutes, mostly 404
    t = START + timedelta(hours=3, minutes=5)
    scanners = ["Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)", "sqlmap/1.8.4#stable (https://sqlmap.org)"]
    for i in range(180):
        t += timedelta(milliseconds=rng.randint(200, 900))
        path = SCAN_PATHS[i % len(SCAN_PATHS)]
        status = 404 if i % 9 else 403
        rows.append((t, f'198.51.100.23 - - [{t:%d/%b/%Y:%H:%M:%S %z}] "GET {path} HTTP/1.1" {status} 162 "-" '
                        f'"{scanners[i % 2]}"'))
    rows.append((t, '198.51.100.23 - - [' + f'{t:%d/%b/%Y:%H:%M:%S %z}' +
                    '] "GET /search?q=\\"><script>alert(1)</script> HTTP/1.1" 400 0 "-" "curl/8.5.0"'))
    rows.sort(key=lambda e: e[0])
    return [r for _, r in rows]


def iis_log(rng: random.Random) -> list[str]:
    header = [
        "#Software: Microsoft Internet Information Services 10.0",
        "#Version: 1.0",
        f"#Date: {START.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
        "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
        "cs(Referer) sc-status sc-substatus sc-win32-status time-taken",
    ]
    lines = list(header)
    t = START.astimezone(UTC)
    for i in range(300):
        t += timedelta(seconds=rng.randint(1, 40))
        user = rng.choice(USERS[:5]) + "@example.gov.vn" if rng.random() < 0.5 else "-"
        method, stem, query = rng.choice([("GET", "/owa/", "-"), ("POST", "/owa/auth.owa", "-"),
                                          ("GET", "/eoffice/VanBanDen.aspx", "page=2"),
                                          ("POST", "/EWS/Exchange.asmx", "-"), ("GET", "/ecp/", "-")])
        status = 401 if user == "-" and stem == "/EWS/Exchange.asmx" else rng.choice([200, 200, 200, 302])
        lines.append(f"{t:%Y-%m-%d %H:%M:%S} 10.10.1.5 {method} {stem} {query} 443 {user} "
                     f"10.30.{rng.randint(1, 20)}.{rng.randint(2, 250)} {rng.choice(AGENTS).replace(' ', '+')} - "
                     f"{status} 0 0 {rng.randint(5, 900)}")
        if i == 150:  # the server restarted: IIS writes a new header block
            lines += header[:3] + [header[3]]
    return lines


def fortigate_log(rng: random.Random) -> list[str]:
    rows: list[tuple[datetime, str]] = []
    t = START

    def head(ts: datetime) -> str:
        ns = int(ts.timestamp()) * 1_000_000_000 + rng.randint(0, 999_999_999)
        return (f'<189>date={ts:%Y-%m-%d} time={ts:%H:%M:%S} devname="FGT-SOC-HQ" devid="FG200FT921900001" '
                f'eventtime={ns} tz="+0700"')

    for i in range(400):
        t += timedelta(seconds=rng.randint(1, 20))
        src = f"10.30.{rng.randint(1, 20)}.{rng.randint(2, 250)}"
        if i % 10 == 3:
            rows.append((t, f'{head(t)} logid="0316013056" type="utm" subtype="webfilter" eventtype="ftgd_blk" '
                            f'level="warning" vd="root" policyid=12 sessionid={rng.randint(10**6, 10**7)} '
                            f'srcip={src} srcport={rng.randint(40000, 65000)} srcintf="port2" dstip=104.21.4.{rng.randint(1, 200)} '
                            'dstport=443 dstintf="wan1" proto=6 service="HTTPS" hostname="bet-online.example" '
                            'action="blocked" reqtype="direct" url="https://bet-online.example/" sentbyte=517 rcvdbyte=0 '
                            'direction="outgoing" msg="URL belongs to a denied category in policy" cat=11 catdesc="Gambling"'))
            continue
        dst = rng.choice(["8.8.8.8", "203.162.4.191", "14.225.0.10", "10.10.1.5"])
        port = rng.choice([53, 443, 443, 80, 25])
        rows.append((t, f'{head(t)} logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" '
                        f'srcip={src} srcport={rng.randint(40000, 65000)} srcintf="port2" srcintfrole="lan" '
                        f'dstip={dst} dstport={port} dstintf="wan1" dstintfrole="wan" srccountry="Reserved" '
                        f'dstcountry="Vietnam" sessionid={rng.randint(10**6, 10**7)} proto={17 if port == 53 else 6} '
                        f'action="accept" policyid=5 policytype="policy" service="{ {53: "DNS", 80: "HTTP", 25: "SMTP"}.get(port, "HTTPS")}" '
                        f'trandisp="snat" duration={rng.randint(1, 300)} sentbyte={rng.randint(60, 90000)} '
                        f'rcvdbyte={rng.randint(60, 900000)} sentpkt={rng.randint(1, 90)} rcvdpkt={rng.randint(1, 900)} '
                        f'appcat="unscanned"'))
    # a legitimate admin login, then planted failures from 192.0.2.77: 25 in about 3 minutes
    t0 = START + timedelta(minutes=45)
    rows.append((t0, f'{head(t0)} logid="0100032001" type="event" subtype="system" level="information" vd="root" '
                     'logdesc="Admin login successful" sn="1700000001" user="soc-admin" ui="https(10.0.0.10)" '
                     'method="https" srcip=10.0.0.10 dstip=10.0.0.1 action="login" status="success" '
                     'reason="none" profile="super_admin" msg="Administrator soc-admin logged in successfully from https(10.0.0.10)"'))
    t = START + timedelta(hours=4, minutes=20)
    for i in range(25):
        t += timedelta(seconds=rng.randint(3, 9))
        user = ["admin", "admin", "fortinet", "administrator", "root"][i % 5]
        rows.append((t, f'{head(t)} logid="0100032002" type="event" subtype="system" level="alert" vd="root" '
                        f'logdesc="Admin login failed" sn="0" user="{user}" ui="https(192.0.2.77)" method="https" '
                        f'srcip=192.0.2.77 dstip=10.0.0.1 action="login" status="failed" reason="name_invalid" '
                        f'msg="Administrator {user} login failed from https(192.0.2.77) because of invalid user name"'))
    rows.sort(key=lambda e: e[0])
    return [r for _, r in rows]


def asa_log(rng: random.Random) -> list[str]:
    """Cisco ASA: web and DNS traffic through the edge firewall, a denied port scan and SSH login attempts."""
    fw = "asa-edge01"
    rows: list[tuple[datetime, str]] = []
    t = START
    for conn in range(180):
        t += timedelta(seconds=rng.randint(1, 20))
        client = f"10.20.1.{rng.randint(10, 60)}"
        port = rng.randint(40000, 65000)
        if rng.random() < 0.6:  # a user browses out, the connection closes a few seconds later
            server = f"203.0.113.{rng.randint(1, 40)}"
            rows.append((t, f"%ASA-6-302013: Built outbound TCP connection {conn} for outside:{server}/443 "
                            f"({server}/443) to inside:{client}/{port} (198.51.100.2/{port})"))
            rows.append((t + timedelta(seconds=rng.randint(1, 30)),
                         f"%ASA-6-302014: Teardown TCP connection {conn} for outside:{server}/443 to inside:"
                         f"{client}/{port} duration 0:00:{rng.randint(1, 30):02d} bytes {rng.randint(800, 90000)} "
                         "TCP FINs"))
        else:
            rows.append((t, f"%ASA-6-302015: Built outbound UDP connection {conn} for outside:192.0.2.53/53 "
                            f"(192.0.2.53/53) to inside:{client}/{port} (198.51.100.2/{port})"))
            rows.append((t + timedelta(seconds=1), f"%ASA-6-302016: Teardown UDP connection {conn} for outside:"
                                                   f"192.0.2.53/53 to inside:{client}/{port} duration 0:00:01 "
                                                   f"bytes {rng.randint(60, 400)}"))
    scan = START + timedelta(hours=2)
    for i, port in enumerate(sorted(rng.sample(range(1, 1024), 60))):
        rows.append((scan + timedelta(seconds=i // 4), f"%ASA-4-106023: Deny tcp src outside:198.51.100.66/"
                                                      f"{rng.randint(40000, 65000)} dst inside:10.20.0.10/{port} "
                                                      'by access-group "outside_access_in" [0x0, 0x0]'))
    rows.append((scan + timedelta(seconds=16), "%ASA-4-733100: [ Scanning] drop rate-1 exceeded. Current burst "
                                               "rate is 12 per second, max configured rate is 10; Current average "
                                               "rate is 3 per second, max configured rate is 5; Cumulative total "
                                               "count is 1890"))
    for i in range(12):
        user = rng.choice(["admin", "cisco", "root", "enable_15"])
        rows.append((scan + timedelta(minutes=5, seconds=7 * i),
                     f'%ASA-6-605004: Login denied from 198.51.100.66/{rng.randint(40000, 65000)} to '
                     f'outside:198.51.100.2/ssh for user "{user}"'))
    rows.append((START + timedelta(hours=3), '%ASA-6-605005: Login permitted from 10.20.1.5/51022 to '
                                             'inside:10.20.0.1/https for user "netadmin"'))
    rows.append((START + timedelta(hours=3, seconds=1), "%ASA-6-113004: AAA user authentication Successful : "
                                                        "server = 10.20.0.5 : user = netadmin"))
    rows.sort(key=lambda e: e[0])
    return [f"{syslog_ts(t)} {fw} {msg}" for t, msg in rows]


def mail_log(rng: random.Random) -> list[str]:
    """Postfix on the agency's mail server: ordinary mail in and out, relay rejects, SASL password guessing."""
    host = "mail01"
    rows: list[tuple[datetime, str]] = []
    t = START
    for n in range(40):
        t += timedelta(seconds=rng.randint(30, 400))
        qid = f"4Q{n:02d}{rng.randint(10 ** 9, 10 ** 10 - 1):X}"
        peer = f"mx{rng.randint(1, 9)}.example.net"
        ip = f"192.0.2.{rng.randint(100, 200)}"
        pid = rng.randint(2000, 9000)
        rcpt = f"{rng.choice(USERS[:5])}@tinh.gov.example"
        rows += [
            (t, f"postfix/smtpd[{pid}]: connect from {peer}[{ip}]"),
            (t, f"postfix/smtpd[{pid}]: {qid}: client={peer}[{ip}]"),
            (t, f"postfix/cleanup[{pid + 1}]: {qid}: message-id=<{qid.lower()}@example.net>"),
            (t, f"postfix/qmgr[812]: {qid}: from=<news@example.net>, size={rng.randint(2000, 90000)}, nrcpt=1 "
                "(queue active)"),
            (t + timedelta(seconds=1), f"postfix/local[{pid + 2}]: {qid}: to=<{rcpt}>, relay=local, delay=0.4, "
                                       "delays=0.2/0/0/0.2, dsn=2.0.0, status=sent (delivered to mailbox)"),
            (t + timedelta(seconds=1), f"postfix/qmgr[812]: {qid}: removed"),
            (t + timedelta(seconds=1), f"postfix/smtpd[{pid}]: disconnect from {peer}[{ip}] ehlo=1 mail=1 rcpt=1 "
                                       "data=1 quit=1 commands=5"),
        ]
    for i in range(6):
        rows.append((START + timedelta(minutes=20 * i), f"postfix/smtpd[{rng.randint(2000, 9000)}]: NOQUEUE: reject: "
                                                        "RCPT from unknown[198.51.100.140]: 554 5.7.1 "
                                                        "<x@example.org>: Relay access denied; "
                                                        "from=<spam@example.org> to=<x@example.org> proto=ESMTP "
                                                        "helo=<win-3k2>"))
    guess = START + timedelta(hours=1, minutes=30)
    for i in range(40):
        pid = 7000 + i // 10
        at = guess + timedelta(seconds=3 * i)
        if i % 10 == 0:
            rows.append((at, f"postfix/submission/smtpd[{pid}]: connect from unknown[203.0.113.99]"))
        rows.append((at, f"postfix/submission/smtpd[{pid}]: warning: unknown[203.0.113.99]: SASL LOGIN "
                         "authentication failed: UGFzc3dvcmQ6"))
    rows.sort(key=lambda e: e[0])
    return [f"{syslog_ts(t)} {host} {msg}" for t, msg in rows]


DNS_LEGEND = [
    "Message logging key (for packets - other items use a subset of these fields):",
    "\tField #  Information         Values", "\t-------  -----------         ------",
    "\t   1     Date", "\t   2     Time", "\t   3     Thread ID", "\t   4     Context",
    "\t   5     Internal packet identifier", "\t   6     UDP/TCP indicator", "\t   7     Send/Receive indicator",
    "\t   8     Remote IP", "\t   9     Xid (hex)", "\t  10     Query/Response      R = Response",
    "\t                             blank = Query", "\t  11     Opcode              Q = Standard Query",
    "\t                             N = Notify", "\t                             U = Update",
    "\t                             ? = Unknown", "\t  12     [ Flags (hex)",
    "\t  13     Flags (char codes)  A = Authoritative Answer", "\t                             T = Truncated Response",
    "\t                             D = Recursion Desired", "\t                             R = Recursion Available",
    "\t  14     ResponseCode ]", "\t  15     Question Type", "\t  16     Question Name",
]
DNS_NAMES = ["dichvucong.tinh.gov.example", "mail.tinh.gov.example", "www.example.com", "update.example.net",
             "portal.tinh.gov.example", "time.example.org", "cdn.example.net"]


def wire_name(name: str) -> str:
    return "".join(f"({len(label)}){label}" for label in name.split(".")) + "(0)"


def dns_debug_log(rng: random.Random) -> list[str]:
    """Windows DNS Server debug log of the agency's resolver: ordinary lookups and a DNS tunnel."""
    def stamp(t: datetime) -> str:  # en-US locale: M/D/YYYY h:mm:ss AM
        return f"{t.month}/{t.day}/{t.year} {(t.hour % 12) or 12}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"

    def packet(t: datetime, way: str, ip: str, xid: int, resp: bool, flags: str, codes: str, rcode: str,
               qtype: str, name: str) -> str:
        return (f"{stamp(t)} 0B4C PACKET  {rng.getrandbits(40):016X} UDP {way} {ip:<15} {xid:04x} "
                f"{'R' if resp else ' '} Q [{flags} {codes} {rcode:>8}] {qtype:<6} {wire_name(name)}")

    lines = [f"DNS Server log file creation at {stamp(START)}", "", *DNS_LEGEND, "",
             f"{stamp(START)} 0B4C EVENT   The DNS server has finished the background loading of zones."]
    rows: list[tuple[datetime, str]] = []
    t = START
    for _ in range(60):
        t += timedelta(seconds=rng.randint(5, 90))
        client, xid = f"10.20.1.{rng.randint(10, 60)}", rng.getrandbits(16)
        name, qtype = rng.choice(DNS_NAMES), rng.choice(["A", "A", "AAAA", "MX"])
        rows.append((t, packet(t, "Rcv", client, xid, False, "0001", "  D ", "NOERROR", qtype, name)))
        rows.append((t, packet(t, "Snd", client, xid, True, "8180", "  DR", "NOERROR", qtype, name)))
    tunnel = START + timedelta(hours=2, minutes=10)
    for i in range(40):
        at = tunnel + timedelta(seconds=2 * i)
        label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(48))
        name, xid = f"{label}.{i:04d}.t.exfil.example", rng.getrandbits(16)
        rows.append((at, packet(at, "Rcv", "10.20.3.77", xid, False, "0001", "  D ", "NOERROR", "TXT", name)))
        nx = i % 3 != 0
        rows.append((at, packet(at, "Snd", "10.20.3.77", xid, True, "8183" if nx else "8180", "  DR",
                                "NXDOMAIN" if nx else "NOERROR", "TXT", name)))
    rows.sort(key=lambda e: e[0])
    return [line + "\r" for line in lines + [r for _, r in rows]]


def main() -> None:
    rng = random.Random(2026)
    files = {
        "linux/auth.log": auth_log(rng),
        "web/nginx/access.log": access_log(rng),
        "web/iis/u_ex261120.log": iis_log(rng),
        "firewall/fortigate.log": fortigate_log(rng),
        "firewall/cisco_asa.log": asa_log(rng),  # after the others: their files stay byte for byte the same
        "mail/mail.log": mail_log(rng),
        "dns/dns.log": dns_debug_log(rng),  # last: the files before it stay byte for byte the same
    }
    for name, lines in files.items():
        path = ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{path.relative_to(ROOT.parent)}: {len(lines)} lines")


if __name__ == "__main__":
    main()
