"""Attacks written into real background traffic, for the detector evaluation (bench/eval_detectors.py).

``inject(folder, zeek_dir, apache_log, seed)`` links the real logs into ``folder`` (a temp folder, never the
repository) and writes, next to them, files of the same formats holding only the attacks: Zeek TSV with the
real dns.log's header (and Zeek's own conn.log header, since the corpus has no conn.log), sshd syslog lines,
Apache combined lines. Stamps fall inside the real capture's window (the Apache attacks inside the access
log's), addresses come from the capture's ranges (10.47.<team>.<host> inside, 10.128.0.x for the attackers as
the competition's red team had) and are unused in the real data. Each attack is returned with the entity a
detector must report and the detectors and own Sigma rules meant to find it.

Shapes, from the tools themselves: DGA clients resolving random 12-18-letter second-level names over many
TLDs, most NXDOMAIN (Cryptolocker/Necurs-like), one asking the upstream server itself and one behind its
team's DNS server (the capture shows only the forwarded leg of such clients); an iodine-like tunnel (NULL
queries whose first label is a type letter + base32 data, labels up to 57 characters, under one domain); a
dnscat2-like tunnel behind a team's DNS server (hex of its 9-byte header + data, idle polls of the header
alone, under one domain, TXT/CNAME/MX queries); an HTTPS beacon every 30 s with 10 % jitter (Cobalt
Strike's sleep/jitter); a SYN port scan (REJ answers from closed ports, S0 from filtered ones, nmap's top
ports first); an SMB sweep of 120 hosts; an SSH brute force and an SSH password spray (OpenSSH's own
message forms); a WordPress login brute force and a forced-browsing scan with traversal probes; in Zeek's
kerberos.log and ssh.log, a Kerberos password spray (Kerbrute passwordspray: each AS-REQ first answered
KDC_ERR_PREAUTH_REQUIRED, then KDC_ERR_PREAUTH_FAILED), a Kerbrute user enumeration (AS-REQs without
pre-authentication: KDC_ERR_C_PRINCIPAL_UNKNOWN for unknown names, PREAUTH_REQUIRED for real ones), an SSH
brute force (sessions Zeek judged failed, auth_success F, several attempts each) and SMB password guessing in
ntlm.log (logons not accepted: success unset, as Zeek leaves an SMB refusal).
"""

from __future__ import annotations

import base64
import gzip
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

CONN_FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
               "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history",
               "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents"]  # Zeek's conn.log
CONN_TYPES = ["time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count", "count",
              "string", "bool", "bool", "count", "string", "count", "count", "count", "count", "set[string]"]
TLDS = ["com", "net", "org", "info", "biz", "ru", "cn", "top", "xyz", "cc"]
ICT = timezone(timedelta(hours=7))  # the zone soc reads zone-less syslog stamps in by default


@dataclass
class Attack:
    """One injected attack: ``entity`` is what the hit must report (a detector's key values joined by ","),
    ``detectors`` and ``sigma`` the rule ids meant to find it."""

    name: str
    entity: str
    detectors: list[str]
    sigma: list[str] = field(default_factory=list)
    events: int = 0


def _uid(rng: random.Random) -> str:
    return "C" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
                         for _ in range(17))


def _header(zeek_log: Path) -> list[str]:
    """The header lines (#...) of a real Zeek TSV log, up to its first record."""
    out = []
    with gzip.open(zeek_log, "rt") if zeek_log.suffix == ".gz" else zeek_log.open() as f:
        for line in f:
            if not line.startswith("#"):
                break
            out.append(line.rstrip("\n"))
    return out


def _span(zeek_log: Path) -> tuple[float, float]:
    """First and last ``ts`` of a Zeek TSV log."""
    lo, hi = float("inf"), 0.0
    with gzip.open(zeek_log, "rt") if zeek_log.suffix == ".gz" else zeek_log.open() as f:
        for line in f:
            if line[:1] != "#":
                ts = float(line.split("\t", 1)[0])
                lo, hi = min(lo, ts), max(hi, ts)
    return lo, hi


def _dns(rng, ts, client, resolver, query, qtype, rcode, answers="-"):
    qtypes = {"A": 1, "NULL": 10, "TXT": 16, "CNAME": 5, "MX": 15}
    rcodes = {"NOERROR": 0, "NXDOMAIN": 3}
    return "\t".join(map(str, [f"{ts:.6f}", _uid(rng), client, rng.randint(1025, 65535), resolver, 53, "udp",
                               rng.randint(1, 65535), f"{rng.uniform(0.001, 0.08):.6f}", query, 1, "C_INTERNET",
                               qtypes[qtype], qtype, rcodes[rcode], rcode, "F", "F", "T", "T", 0, answers,
                               "-" if answers == "-" else "60.000000", "F"]))


def _conn(rng, ts, src, dst, port, state, service="-", sent=0, received=0, duration=None):
    history = {"REJ": "Sr", "S0": "S", "SF": "ShADadFf"}[state]
    pkts = {"REJ": (1, 1), "S0": (1, 0), "SF": (8, 7)}[state]
    dur = "-" if duration is None else f"{duration:.6f}"
    return "\t".join(map(str, [f"{ts:.6f}", _uid(rng), src, rng.randint(32768, 60999), dst, port, "tcp", service,
                               dur, sent, received, state, "-", "-", 0, history, pkts[0], sent + 40 * pkts[0],
                               pkts[1], received + 40 * pkts[1], "(empty)"]))


def _write_zeek(path: Path, header: list[str], lines: list[str]) -> None:
    lines = sorted(lines, key=lambda line: float(line.split("\t", 1)[0]))
    path.write_text("\n".join([*header, *lines, "#close\t2018-03-24-17-40-00"]) + "\n")


def zeek_attacks(rng: random.Random, out: Path, zeek_dir: Path) -> tuple[list[Attack], tuple[float, float]]:
    start, end = _span(zeek_dir / "dns.log.gz")
    t0 = start + 120  # inside the capture, away from its edges
    dns, conn, attacks = [], [], []

    # The capture's DNS topology: workstations (10.47.2.100, 10.47.3.154...) ask the upstream server 10.0.0.100
    # themselves; the teams' DNS servers 10.47.<team>.10 forward their own clients' queries to it, and the
    # sensor sees only that forwarded leg. An attack behind a team's DNS server can only be seen on it.
    upstream = "10.0.0.100"

    def dga(client: str, n: int, at: float) -> None:
        for i in range(n):
            name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(12, 18)))
            dns.append(_dns(rng, at + i * rng.uniform(4, 8), client, upstream, f"{name}.{rng.choice(TLDS)}", "A",
                            "NXDOMAIN" if rng.random() < 0.9 else "NOERROR"))

    dga("10.47.4.177", 60, t0 + 300)
    attacks.append(Attack("DGA workstation (60 random 12-18-letter names, 10 TLDs, 90 % NXDOMAIN)", "10.47.4.177",
                          ["soc-dga-domains"], events=60))
    dga("10.47.4.10", 60, t0 + 500)
    attacks.append(Attack("DGA client behind team 4's DNS server (only its 60 forwarded queries are seen)",
                          "10.47.4.10", ["soc-dga-domains"], events=60))

    client, domain = "10.47.6.201", "t.cdn-sync.info"  # iodine: NULL queries, type letter + base32 data
    n = 150
    for i in range(n):
        data = base64.b32encode(rng.randbytes(70)).decode().lower().rstrip("=")
        labels = [data[j: j + 57] for j in range(0, len(data), 57)]
        ts = t0 + 420 + i * rng.uniform(0.5, 2.5)
        dns.append(_dns(rng, ts, client, upstream, f"p{labels[0]}.{'.'.join(labels[1:])}.{domain}", "NULL",
                        "NOERROR"))
    attacks.append(Attack("iodine-like tunnel (150 NULL queries, base32 labels of 57)", client, ["soc-dns-tunnel"],
                          ["acd01c57-35da-4c23-8b1e-8d33e776c999"], events=n))

    # dnscat2 (doc/protocol.md): hex of packet_id(2) type(1) session(2) seq(2) ack(2) [data], "." anywhere,
    # under the tunnel's domain, TXT/MX/CNAME; an idle session polls with the 9-byte header alone
    resolver, domain, session = "10.47.8.10", "updates-cdn.org", rng.randbytes(2)
    n, seq = 120, rng.randrange(65536)
    for i in range(n):
        body = rng.randbytes(rng.randint(20, 90)) if rng.random() < 0.4 else b""
        packet = rng.randbytes(2) + b"\x01" + session + seq.to_bytes(2, "big") + rng.randbytes(2) + body
        seq = (seq + len(body)) % 65536
        data = packet.hex()
        labels = [data[j: j + 62] for j in range(0, len(data), 62)]
        dns.append(_dns(rng, t0 + 600 + i * rng.uniform(1, 3), resolver, upstream, ".".join([*labels, domain]),
                        rng.choice(["TXT", "CNAME", "MX"]), "NOERROR"))
    attacks.append(Attack("dnscat2-like tunnel behind team 8's DNS server (120 forwarded TXT/MX/CNAME queries, "
                          "hex, 60 % idle polls of 18 characters)", resolver, ["soc-dns-tunnel"],
                          ["acd01c57-35da-4c23-8b1e-8d33e776c999"], events=n))

    src, dst = "10.47.5.158", "185.141.63.120"  # HTTPS beacon, 30 s sleep, 10 % jitter
    ts, n = start + 30, 0
    while ts < end - 30:
        conn.append(_conn(rng, ts, src, dst, 443, "SF", "ssl", rng.randint(310, 420), rng.randint(180, 260),
                          rng.uniform(0.2, 0.6)))
        ts += 30 * rng.uniform(0.9, 1.1)
        n += 1
    attacks.append(Attack(f"HTTPS beacon every 30 s +-10 % ({n} connections over the capture)", f"{src},{dst}",
                          ["soc-c2-beaconing"], events=n))

    src, dst = "10.128.0.77", "10.47.7.25"  # SYN scan of 300 ports in 40 s
    ports = [21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1723, 3306, 3389, 5900, 8080,
             *rng.sample(range(1, 10000), 280)]
    for i, port in enumerate(ports):
        conn.append(_conn(rng, t0 + 200 + i * 40 / len(ports), src, dst, port,
                          "REJ" if rng.random() < 0.8 else "S0"))
    attacks.append(Attack("SYN port scan (300 ports of one host in 40 s)", f"{src},{dst}", ["soc-port-scan"],
                          events=len(ports)))

    src = "10.128.0.78"  # SMB sweep of 120 hosts in 90 s
    hosts = [f"10.47.{team}.{host}" for team in range(1, 9) for host in (20, 25, 30, 35, 40, 45, 50, 55, 60, 65,
                                                                        70, 75, 80, 85, 90)]
    for i, host in enumerate(hosts):
        conn.append(_conn(rng, t0 + 500 + i * 90 / len(hosts), src, host, 445, rng.choice(["REJ", "S0", "S0"])))
    attacks.append(Attack(f"SMB host sweep ({len(hosts)} hosts, port 445, 90 s)", src, ["soc-host-sweep"],
                          events=len(hosts)))

    _write_zeek(out / "dns.injected.log", _header(zeek_dir / "dns.log.gz"), dns)
    conn_header = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
                   "#path\tconn", "#open\t2018-03-24-17-15-00", "#fields\t" + "\t".join(CONN_FIELDS),
                   "#types\t" + "\t".join(CONN_TYPES)]
    _write_zeek(out / "conn.log", conn_header, conn)
    return attacks, (start, end)


def zeek_auth_attacks(rng: random.Random, out: Path, zeek_dir: Path) -> list[Attack]:
    """Password guessing as the sensor's own kerberos.log, ssh.log and ntlm.log write it (the real logs'
    headers, Zeek 2.x fields): a Kerberos spray and a Kerbrute user enumeration against a team's domain
    controller, an SSH brute force and an SMB one against a team's servers. Their own random stream
    (``rng``): the other attacks stay the same."""
    start, _ = _span(zeek_dir / "dns.log.gz")
    t0, krb, ssh, attacks = start + 360, [], [], []
    dc, realm = "10.47.4.15", "KRAMERICA.LOCAL"

    def as_req(ts, src, user, error, success="F"):
        # ts uid id.* request_type client service success error_msg from till cipher forwardable renewable
        # client_cert_subject client_cert_fuid server_cert_subject server_cert_fuid
        krb.append("\t".join(map(str, [f"{ts:.6f}", _uid(rng), src, rng.randint(32768, 60999), dc, 88, "AS",
                                       f"{user}/{realm}", f"krbtgt/{realm}", success, error, "-",
                                       "2136422885.000000", "-", "T", "T", "-", "-", "-", "-"])))

    users = ["administrator", "nguyenvana", "tranthib", "lethic", "phamvand", "hoangthie", "vuvanf", "dangthig",
             "buivanh", "dothii", "hovank", "ngothil", "duongvanm", "lythin", "ketoan", "vanthu", "hanhchinh",
             "backup", "sqlsvc", "websvc", "helpdesk", "scanner", "itadmin", "giamdoc", "phogiamdoc"]
    src = "10.128.0.81"  # spray: one password (Kerbrute passwordspray) for 25 accounts in 2 minutes
    for i, user in enumerate(users):  # the KDC asks for pre-authentication, then refuses the wrong password
        ts = t0 + i * rng.uniform(3, 6)
        as_req(ts, src, user, "KDC_ERR_PREAUTH_REQUIRED")
        as_req(ts + 0.004, src, user, "KDC_ERR_PREAUTH_FAILED")
    attacks.append(Attack(f"Kerberos password spray ({len(users)} accounts x 1 password, AS-REQ pre-authentication "
                          "refused, kerberos.log)", src, ["soc-kerberos-brute-force", "soc-password-spraying"],
                          events=len(users)))

    src = "10.128.0.82"  # Kerbrute userenum: AS-REQ without pre-authentication for a name list, in 10 s
    names = [f"{first}{last}" for first in ("nguyen", "tran", "le", "pham", "hoang", "vu", "dang", "bui")
             for last in ("an", "binh", "cuong", "dung", "hanh", "lan")]
    real = {"nguyenan", "tranbinh", "lecuong"}  # those the KDC knows answer "pre-authentication required"
    for i, name in enumerate(names):
        as_req(t0 + 400 + i * 10 / len(names), src, name,
               "KDC_ERR_PREAUTH_REQUIRED" if name in real else "KDC_ERR_C_PRINCIPAL_UNKNOWN")
    attacks.append(Attack(f"Kerbrute user enumeration ({len(names)} names, {len(names) - len(real)} unknown to the "
                          "KDC, 10 s, kerberos.log)", src, ["soc-kerberos-user-enumeration"], events=len(names)))

    src, server = "10.128.0.83", "10.47.3.22"  # Hydra-like SSH brute force: 36 sessions of 3-6 passwords each
    n = 36
    for i in range(n):
        ssh.append("\t".join(map(str, [
            f"{t0 + 200 + i * rng.uniform(4, 7):.6f}", _uid(rng), src, rng.randint(32768, 60999), server, 22, 2, "F",
            rng.randint(3, 6), "-", "SSH-2.0-libssh_0.7.0", "SSH-2.0-OpenSSH_6.6.1p1 Ubuntu-2ubuntu2.8",
            "aes128-ctr", "hmac-sha1", "none", "diffie-hellman-group14-sha1", "ssh-rsa",
            "5b:3e:2a:0f:9c:41:7d:e8:13:aa:60:c2:4f:91:d7:22", "-", "-", "-", "-", "-"])))
    attacks.append(Attack(f"SSH brute force seen by Zeek ({n} sessions judged failed, 3-6 attempts each, ssh.log)",
                          src, ["soc-ssh-brute-force"], events=n))
    src, server, ntlm, n = "10.128.0.84", "10.47.5.25", [], 30  # Hydra-like SMB guessing at administrator
    for i in range(n):  # ts uid id.* username hostname domainname server_nb/dns_computer_name server_tree_name
        ntlm.append("\t".join(map(str, [  # success: unset, the server's refusal is an SMB status, not GSSAPI
            f"{t0 + 600 + i * rng.uniform(2, 4):.6f}", _uid(rng), src, rng.randint(32768, 60999), server, 445,
            "administrator", "WORKSTATION", "KRAMERICA", "KRAMER", "Kramer.kramerica.local", "kramerica.local",
            "-"])))
    attacks.append(Attack(f"SMB password guessing at administrator seen by Zeek ({n} NTLM logons not accepted, "
                          "ntlm.log)", src, ["soc-zeek-ntlm-brute-force"], events=n))
    _write_zeek(out / "kerberos.injected.log", _header(zeek_dir / "kerberos.log.gz"), krb)
    _write_zeek(out / "ssh.injected.log", _header(zeek_dir / "ssh.log.gz"), ssh)
    _write_zeek(out / "ntlm.injected.log", _header(zeek_dir / "ntlm.log.gz"), ntlm)
    return attacks


def auth_attacks(rng: random.Random, out: Path, start: float) -> list[Attack]:
    """sshd lines of a team's web server (year-less syslog stamps in ICT, soc's default zone: hunt with
    --year 2018)."""
    lines: list[tuple[float, str]] = []
    host, t0 = "ccdc-web01", start + 240

    def sshd(ts: float, msg: str) -> None:
        stamp = datetime.fromtimestamp(ts, UTC).astimezone(ICT)
        lines.append((ts, f"{stamp:%b} {stamp.day:2d} {stamp:%H:%M:%S} {host} sshd[{rng.randint(2000, 40000)}]: "
                          f"{msg}"))

    src, n = "10.128.0.79", 40  # brute force on root, then a few other names
    for i in range(n):
        user = "root" if i < 30 else rng.choice(["admin", "oracle", "test"])
        ts = t0 + i * rng.uniform(3, 5)
        port = rng.randint(30000, 60000)
        if user == "root":
            sshd(ts, f"Failed password for root from {src} port {port} ssh2")
        else:
            sshd(ts, f"Invalid user {user} from {src} port {port}")
            sshd(ts + 1, f"Failed password for invalid user {user} from {src} port {port} ssh2")
    attacks = [Attack("SSH brute force (30 x root, 10 x invalid users, 3 min)", src,
                      ["soc-ssh-brute-force"], ["48ea2b5e-51b1-4618-ba03-3ea84dace659"], events=n)]

    src = "10.128.0.80"  # spray: one password per account, 25 accounts over 20 min
    users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar",
             "peggy", "rupert", "sybil", "trent", "victor", "walter", "admin", "backup", "deploy", "www-data",
             "postgres", "git", "jenkins"]
    for i, user in enumerate(users):
        sshd(t0 + 60 + i * 48 + rng.uniform(0, 10), f"Failed password for {user} from {src} port "
                                                   f"{rng.randint(30000, 60000)} ssh2")
    attacks.append(Attack("SSH password spray (25 accounts, 1 try each, 20 min)", src, ["soc-password-spraying"],
                          events=len(users)))
    for _ in range(12):  # the admins' own logins around it
        sshd(start + rng.uniform(0, 1200), f"Accepted publickey for blueteam from 10.47.1.{rng.randint(20, 90)} "
                                           f"port {rng.randint(30000, 60000)} ssh2: RSA SHA256:q8Zr{rng.randint(1, 9)}")
    (out / "auth.log").write_text("".join(line + "\n" for _, line in sorted(lines)))
    return attacks


def web_attacks(rng: random.Random, out: Path) -> list[Attack]:
    """Apache combined lines inside the real access log's window (May 2015, +0000)."""
    lines: list[tuple[datetime, str]] = []
    t0 = datetime(2015, 5, 19, 3, 10, tzinfo=UTC)

    def hit(t, ip, method, path, status, size, agent):
        lines.append((t, f'{ip} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "{method} {path} HTTP/1.1" {status} {size} "-" '
                         f'"{agent}"'))

    src, n = "91.200.12.14", 60  # WordPress login brute force
    for i in range(n):
        hit(t0 + timedelta(seconds=i * rng.uniform(2, 3.5)), src, "POST", "/wp-login.php", 200,
            rng.randint(3500, 3700), "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:36.0) Gecko/20100101 Firefox/36.0")
    attacks = [Attack("WordPress login brute force (60 POST /wp-login.php, 3 min)", src,
                      ["soc-web-login-brute-force"], events=n)]

    src = "45.55.20.10"  # forced browsing with traversal and secret-file probes
    paths = ["/.env", "/.git/config", "/backup.sql", "/config.php.bak", "/wp-config.php~", "/.aws/credentials",
             "/admin/", "/phpmyadmin/", "/manager/html", "/server-status", "/cgi-bin/test-cgi", "/.svn/entries",
             "/index.php?page=../../../../etc/passwd", "/download.php?file=..%2f..%2f..%2fetc%2fpasswd",
             "/static/..%5c..%5cwindows%5cwin.ini", "/?file=php://filter/convert.base64-encode/resource=index"]
    paths += [f"/{w}{e}" for w in ("old", "test", "backup", "db", "site", "www", "dump") for e in (".zip", ".tar.gz",
                                                                                                   ".sql")]
    agent = "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"
    for i, path in enumerate(paths * 2):
        hit(t0 + timedelta(minutes=20, seconds=i * 1.5), src, "GET", path, 404, rng.randint(280, 320), agent)
    attacks.append(Attack(f"forced browsing with traversal probes ({2 * len(paths)} requests, 404)", src,
                          ["soc-web-scan"], ["6b291431-3982-4ab6-8613-8bfcc7b9d334",
                                             "43c4b2da-2b33-4ac1-ace7-7602c3937d44"], events=2 * len(paths)))
    (out / "access.injected.log").write_text("".join(line + "\n" for _, line in sorted(lines)))
    return attacks


def inject(folder: Path, zeek_dir: Path, apache_log: Path, seed: int = 19) -> list[Attack]:
    """Link the real logs into ``folder`` and write the attacks beside them; the attacks, in order."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for real in sorted(zeek_dir.glob("*.log.gz")):
        (folder / real.name).symlink_to(real.resolve())
    (folder / apache_log.name).symlink_to(apache_log.resolve())
    attacks, (start, _) = zeek_attacks(rng, folder, zeek_dir)
    return [*attacks, *auth_attacks(rng, folder, start), *web_attacks(rng, folder),
            *zeek_auth_attacks(random.Random(seed + 1), folder, zeek_dir)]
