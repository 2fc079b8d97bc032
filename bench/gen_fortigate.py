"""Generator of FortiGate key=value lines for benchmarks, and the pure-Python baseline.

The mix follows a busy government edge firewall: ~80% traffic (forward and local; close, timeout, deny,
resets), ~10% UTM (webfilter, IPS, app-ctrl, DNS, antivirus) and ~10% events (admin logins, many of them
failed, user and SSL-VPN authentication, configuration changes, performance statistics). FortiOS 7.x
syslog layout: ``<PRI>`` glued to ``date=``, ``devname``/``devid``, ``eventtime`` in ns, ``tz="+0700"``;
quoted values with spaces, and now and then ``k=v`` text and ``\\"`` inside a quoted message. Lines are
built column-wise with Polars, block by block, so millions take seconds.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

BLOCK = 200_000
START = 1_795_000_000  # 2026-11-18, in seconds
DEVICES = [("FGT-HN-CORE01", "FG600F3922900101"), ("FGT-HCM-EDGE02", "FG200FT922900217"),
           ("FGT-DN-BR03", "FG100FTK22004433")]
COUNTRIES = ["Vietnam", "United States", "Singapore", "Japan", "China", "Reserved", "Germany", "Netherlands",
             "Korea, Republic of", "Russian Federation"]
APPS = [("HTTPS.BROWSER", "Web.Client", 40568), ("DNS", "Network.Service", 16195),
        ("Microsoft.Outlook", "Email", 16145), ("Zalo", "Collaboration", 41817),
        ("YouTube", "Video/Audio", 31077), ("SSL", "Network.Service", 15895),
        ("Microsoft.Portal", "Collaboration", 41469), ("QUIC", "Network.Service", 40169)]
SERVICES = [("HTTPS", 6, 443), ("HTTP", 6, 80), ("DNS", 17, 53), ("NTP", 17, 123), ("SSH", 6, 22),
            ("RDP", 6, 3389), ("SMB", 6, 445), ("PING", 1, 0), ("tcp/8443", 6, 8443)]
ACTIONS = ["close", "close", "close", "close", "close", "timeout", "timeout", "deny", "deny", "deny",
           "accept", "server-rst", "client-rst"]
HOSTS = ["dichvucong.gov.vn", "thuvienphapluat.vn", "update.microsoft.com", "login.microsoftonline.com",
         "malware-c2.example.net", "zalo.me", "vnexpress.net", "paste.example.org"]
CATS = [("Malicious Websites", 26), ("Phishing", 61), ("Information Technology", 52), ("News and Media", 36),
        ("Newly Observed Domain", 90), ("Proxy Avoidance", 59)]
ATTACKS = [("Apache.Log4j.Error.Log.Remote.Code.Execution", 51006, "critical"),
           ("MS.SMB.Server.SMBv1.Srv2.Remote.Code.Execution", 43796, "critical"),
           ("SSH.Login.Brute.Force", 19331, "medium"), ("Fortinet.FortiOS.SSL.VPN.Heap.Buffer.Overflow", 54213, "high"),
           ("HTTP.URI.SQL.Injection", 15621, "high")]
VIRUSES = [("EICAR_TEST_FILE", "eicar.com"), ("W32/Agent.ABCD!tr", "hoadon_thang11.exe"),
           ("MSOffice/Agent.XYZ!tr", "cong_van_khan.docm")]
USERS = ["admin", "nguyenvana", "tranthib", "le.van.c", "svc_backup", "root", "administrator", "guest"]


def _ip(rng: np.random.Generator, m: int, first: list[int]) -> pl.Series:
    a = rng.choice(first, m)
    b, c, d = rng.integers(0, 256, (3, m))
    return pl.select(pl.format("{}.{}.{}.{}", pl.lit(a), pl.lit(b), pl.lit(c), pl.lit(d))).to_series()


def _take(items: list, idx: np.ndarray) -> pl.Series:
    """``items[idx]`` as a Polars series (a gather: no Python loop, ``None`` becomes null)."""
    return pl.Series(items)[idx]


def _pick(rng: np.random.Generator, items: list, m: int) -> pl.Series:
    return _take(items, rng.integers(0, len(items), m))


def _line(cols: list[tuple[str, object, bool]]) -> pl.Expr:
    """``k=v`` pairs (``k="v"`` when quoted) joined by spaces; a null value drops its pair."""
    parts = []
    for i, (key, value, quoted) in enumerate(cols):
        v = value if isinstance(value, pl.Expr) else pl.lit(value)
        v = v.cast(pl.String)
        pair = pl.concat_str([pl.lit(("" if i == 0 else " ") + key + ('="' if quoted else "=")), v,
                              pl.lit('"' if quoted else "")])
        parts.append(pair)
    return pl.concat_str(parts, ignore_nulls=True)


def _header(frame: pl.DataFrame) -> list[tuple[str, object, bool]]:
    return [
        ("date", pl.col("date"), False), ("time", pl.col("time"), False),
        ("devname", pl.col("devname"), True), ("devid", pl.col("devid"), True),
        ("eventtime", pl.col("eventtime"), False), ("tz", "+0700", True),
        ("logid", pl.col("logid"), True), ("type", pl.col("type"), True), ("subtype", pl.col("subtype"), True),
        ("level", pl.col("level"), True), ("vd", "root", True),
    ]


def _base(rng: np.random.Generator, sec: np.ndarray) -> dict:
    m = sec.size
    dev = rng.integers(0, len(DEVICES), m)
    local = pl.from_epoch(pl.Series(sec + 7 * 3600), "s")
    return {
        "date": local.dt.strftime("%Y-%m-%d"), "time": local.dt.strftime("%H:%M:%S"),
        "devname": _take([d[0] for d in DEVICES], dev),
        "devid": _take([d[1] for d in DEVICES], dev),
        "eventtime": sec.astype(np.int64) * 1_000_000_000 + rng.integers(0, 1_000_000_000, m),
    }


def _traffic(rng: np.random.Generator, sec: np.ndarray) -> pl.Series:
    m = sec.size
    svc = rng.integers(0, len(SERVICES), m)
    app = rng.integers(0, len(APPS), m)
    action = _pick(rng, ACTIONS, m)
    local = rng.random(m) < 0.1
    sent = rng.lognormal(7, 2, m).astype(np.int64)
    rcvd = rng.lognormal(8, 2.5, m).astype(np.int64)
    f = pl.DataFrame({
        **_base(rng, sec),
        "logid": np.where(local, "0001000014", "0000000013"), "type": "traffic",
        "subtype": np.where(local, "local", "forward"),
        "level": pl.Series(np.where((action == "deny").to_numpy(), "warning", "notice")),
        "srcip": _ip(rng, m, [10, 172, 192]), "srcport": rng.integers(1024, 65536, m),
        "srcintf": _pick(rng, ["port1", "port2", "lan", "internal1", "VLAN_110"], m),
        "dstip": _ip(rng, m, [14, 42, 103, 113, 142, 171, 203]),
        "dstport": np.array([s[2] for s in SERVICES])[svc], "dstintf": _pick(rng, ["wan1", "wan2", "port9"], m),
        "srccountry": "Reserved", "dstcountry": _pick(rng, COUNTRIES, m),
        "sessionid": rng.integers(1, 4_000_000_000, m), "proto": np.array([s[1] for s in SERVICES])[svc],
        "action": action, "policyid": rng.integers(0, 250, m),
        "policyname": _pick(rng, ["LAN to WAN", "DMZ-Web-In", "VPN_Users", "Deny All"], m),
        "service": _take([s[0] for s in SERVICES], svc),
        "transip": _ip(rng, m, [203]), "transport": rng.integers(1024, 65536, m),
        "appid": np.array([a[2] for a in APPS])[app], "app": _take([a[0] for a in APPS], app),
        "appcat": _take([a[1] for a in APPS], app),
        "duration": rng.integers(0, 3600, m), "sentbyte": sent, "rcvdbyte": rcvd,
        "sentpkt": sent // 700 + 1, "rcvdpkt": rcvd // 900 + 1,
        "osname": _pick(rng, ["Windows", "Linux", "Android", "iOS", None], m),
    })
    deny = pl.col("action") == "deny"
    cols = _header(f) + [
        ("srcip", pl.col("srcip"), False), ("srcport", pl.col("srcport"), False),
        ("srcintf", pl.col("srcintf"), True), ("srcintfrole", "lan", True),
        ("dstip", pl.col("dstip"), False), ("dstport", pl.col("dstport"), False),
        ("dstintf", pl.col("dstintf"), True), ("dstintfrole", "wan", True),
        ("srccountry", pl.col("srccountry"), True), ("dstcountry", pl.col("dstcountry"), True),
        ("sessionid", pl.col("sessionid"), False), ("proto", pl.col("proto"), False),
        ("action", pl.col("action"), True), ("policyid", pl.col("policyid"), False),
        ("policytype", "policy", True), ("poluuid", "9d8c2a4e-1b7f-51ef-3c2d-6a1f0e9b7c55", True),
        ("policyname", pl.col("policyname"), True), ("service", pl.col("service"), True),
        ("trandisp", pl.when(~deny).then(pl.lit("snat")), True),
        ("transip", pl.when(~deny).then(pl.col("transip")), False),
        ("transport", pl.when(~deny).then(pl.col("transport")), False),
        ("appid", pl.col("appid"), False), ("app", pl.col("app"), True), ("appcat", pl.col("appcat"), True),
        ("apprisk", "elevated", True), ("applist", "default", True),
        ("duration", pl.when(~deny).then(pl.col("duration")), False),
        ("sentbyte", pl.when(~deny).then(pl.col("sentbyte")), False),
        ("rcvdbyte", pl.when(~deny).then(pl.col("rcvdbyte")), False),
        ("sentpkt", pl.when(~deny).then(pl.col("sentpkt")), False),
        ("rcvdpkt", pl.when(~deny).then(pl.col("rcvdpkt")), False),
        ("utmaction", pl.when(~deny).then(pl.lit("allow")), True),
        ("crscore", pl.when(deny).then(pl.lit(30)), False), ("craction", pl.when(deny).then(pl.lit(131072)), False),
        ("osname", pl.col("osname"), True),
    ]
    pri = pl.when(deny).then(pl.lit("<188>")).otherwise(pl.lit("<189>"))
    return f.select(pl.concat_str([pri, _line(cols)])).to_series()


def _utm(rng: np.random.Generator, sec: np.ndarray) -> pl.Series:
    m = sec.size
    kind = _pick(rng, ["webfilter", "webfilter", "ips", "app-ctrl", "dns", "dns", "virus"], m)
    logid = pl.Series(kind).replace_strict({"webfilter": "0316013056", "ips": "0419016384", "app-ctrl": "1059028704",
                                            "dns": "1501054802", "virus": "0211008192"})
    cat = rng.integers(0, len(CATS), m)
    atk = rng.integers(0, len(ATTACKS), m)
    vir = rng.integers(0, len(VIRUSES), m)
    f = pl.DataFrame({
        **_base(rng, sec), "logid": logid, "type": "utm", "subtype": kind,
        "level": pl.Series(np.where((kind == "ips").to_numpy(), "alert", "warning")),
        "srcip": _ip(rng, m, [10, 172]), "srcport": rng.integers(1024, 65536, m),
        "dstip": _ip(rng, m, [14, 103, 113, 185]), "sessionid": rng.integers(1, 4_000_000_000, m),
        "policyid": rng.integers(1, 250, m), "user": _pick(rng, USERS + [None] * 4, m),
        "hostname": _pick(rng, HOSTS, m), "catdesc": _take([c[0] for c in CATS], cat),
        "cat": np.array([c[1] for c in CATS])[cat],
        "attack": _take([a[0] for a in ATTACKS], atk), "attackid": np.array([a[1] for a in ATTACKS])[atk],
        "severity": _take([a[2] for a in ATTACKS], atk),
        "virus": _take([v[0] for v in VIRUSES], vir),
        "filename": _take([v[1] for v in VIRUSES], vir),
        "path": _pick(rng, ["/", "/login.php?user=admin&pass=x", "/api/v1/ho-so?id=12&x=y", "/wp-admin/"], m),
    })
    k = pl.col("subtype")
    web, ips, app, dns, vir_ = (k == "webfilter"), (k == "ips"), (k == "app-ctrl"), (k == "dns"), (k == "virus")
    cols = _header(f) + [
        ("eventtype", pl.when(web).then(pl.lit("ftgd_blk")).when(ips).then(pl.lit("signature"))
         .when(app).then(pl.lit("app-ctrl-all")).when(dns).then(pl.lit("dns-response"))
         .otherwise(pl.lit("infected")), True),
        ("severity", pl.when(ips).then(pl.col("severity")), True),
        ("policyid", pl.col("policyid"), False), ("sessionid", pl.col("sessionid"), False),
        ("user", pl.col("user"), True),
        ("srcip", pl.col("srcip"), False), ("srcport", pl.col("srcport"), False), ("srcintf", "port1", True),
        ("dstip", pl.col("dstip"), False), ("dstport", pl.when(dns).then(pl.lit(53)).otherwise(pl.lit(443)), False),
        ("dstintf", "wan1", True), ("proto", pl.when(dns).then(pl.lit(17)).otherwise(pl.lit(6)), False),
        ("service", pl.when(dns).then(pl.lit("DNS")).otherwise(pl.lit("HTTPS")), True),
        ("hostname", pl.when(~dns).then(pl.col("hostname")), True),
        ("qname", pl.when(dns).then(pl.col("hostname")), True),
        ("qtype", pl.when(dns).then(pl.lit("A")), True),
        ("ipaddr", pl.when(dns).then(pl.lit("104.80.89.26, 104.80.89.24")), True),
        ("action", pl.when(web | vir_).then(pl.lit("blocked")).when(ips).then(pl.lit("dropped"))
         .otherwise(pl.lit("pass")), True),
        ("url", pl.when(web | ips | vir_).then(pl.col("path")), True),
        ("attack", pl.when(ips).then(pl.col("attack")), True),
        ("attackid", pl.when(ips).then(pl.col("attackid")), False),
        ("ref", pl.when(ips).then(pl.format("http://www.fortinet.com/ids/VID{}", pl.col("attackid"))), True),
        ("app", pl.when(app).then(pl.lit("Zalo")), True),
        ("appcat", pl.when(app).then(pl.lit("Collaboration")), True),
        ("virus", pl.when(vir_).then(pl.col("virus")), True),
        ("filename", pl.when(vir_).then(pl.col("filename")), True),
        ("msg", pl.when(web).then(pl.lit("URL belongs to a denied category in policy"))
         .when(ips).then(pl.format('web_server: {}, url=\\"{}\\"', pl.col("attack"), pl.col("path")))
         .when(dns).then(pl.lit("Domain is monitored")).when(vir_).then(pl.lit("File is infected."))
         .otherwise(pl.lit("Collaboration: Zalo,")), True),
        ("cat", pl.when(web | dns).then(pl.col("cat")), False),
        ("catdesc", pl.when(web | dns).then(pl.col("catdesc")), True),
        ("crscore", pl.when(web | ips).then(pl.lit(50)), False),
    ]
    return f.select(pl.concat_str([pl.lit("<188>"), _line(cols)])).to_series()


def _event(rng: np.random.Generator, sec: np.ndarray) -> pl.Series:
    m = sec.size
    kind = _pick(rng, ["admin_fail"] * 4 + ["admin_ok", "user_fail", "vpn_fail", "vpn_up", "config", "perf"], m)
    logid = pl.Series(kind).replace_strict({
        "admin_fail": "0100032002", "admin_ok": "0100032001", "user_fail": "0102043009", "vpn_fail": "0101039426",
        "vpn_up": "0101039424", "config": "0100044547", "perf": "0100040704"})
    subtype = pl.Series(kind).replace_strict({
        "admin_fail": "system", "admin_ok": "system", "user_fail": "user", "vpn_fail": "vpn", "vpn_up": "vpn",
        "config": "system", "perf": "system"})
    f = pl.DataFrame({
        **_base(rng, sec), "logid": logid, "type": "event", "subtype": subtype, "kind": kind,
        "level": pl.Series(np.where(kind.is_in(["admin_fail", "vpn_fail"]).to_numpy(), "alert", "information")),
        "user": _pick(rng, USERS, m), "srcip": _ip(rng, m, [45, 91, 103, 185, 10]),
        "method": _pick(rng, ["https", "ssh"], m),
    })
    k = pl.col("kind")
    admin = k.is_in(["admin_fail", "admin_ok"])
    vpn = k.is_in(["vpn_fail", "vpn_up"])
    ui = pl.format("{}({})", pl.col("method"), pl.col("srcip"))
    cols = _header(f) + [
        ("logdesc", pl.col("kind").replace_strict({
            "admin_fail": "Admin login failed", "admin_ok": "Admin login successful",
            "user_fail": "Authentication failed", "vpn_fail": "SSL VPN login fail", "vpn_up": "SSL VPN tunnel up",
            "config": "Object attribute configured", "perf": "System performance statistics"}), True),
        ("sn", pl.when(admin).then(pl.lit("0")), True),
        ("user", pl.when(k != "perf").then(pl.col("user")), True),
        ("ui", pl.when(admin | (k == "config")).then(ui), True),
        ("method", pl.when(admin).then(pl.col("method")), True),
        ("srcip", pl.when(admin | (k == "user_fail")).then(pl.col("srcip")), False),
        ("dstip", pl.when(admin).then(pl.lit("10.0.0.1")), False),
        ("action", pl.when(admin).then(pl.lit("login")).when(k == "user_fail").then(pl.lit("authentication"))
         .when(k == "vpn_fail").then(pl.lit("ssl-login-fail")).when(k == "vpn_up").then(pl.lit("tunnel-up"))
         .when(k == "config").then(pl.lit("Edit")).otherwise(pl.lit("perf-stats")), True),
        ("tunneltype", pl.when(vpn).then(pl.lit("ssl-web")), True),
        ("remip", pl.when(vpn).then(pl.col("srcip")), False),
        ("status", pl.when(k == "admin_fail").then(pl.lit("failed")).when(k == "user_fail").then(pl.lit("failure"))
         .when(admin | (k == "config")).then(pl.lit("success")), True),
        ("reason", pl.when(k == "admin_fail").then(pl.lit("passwd_invalid"))
         .when(k == "vpn_fail").then(pl.lit("sslvpn_login_permission_denied")), True),
        ("cfgpath", pl.when(k == "config").then(pl.lit("firewall.policy")), True),
        ("cfgattr", pl.when(k == "config").then(pl.lit("srcaddr[all->LAN_Servers]")), True),
        ("cpu", pl.when(k == "perf").then(pl.lit(7)), False), ("mem", pl.when(k == "perf").then(pl.lit(41)), False),
        ("msg", pl.when(k == "admin_fail").then(pl.format("Administrator {} login failed from {} because of invalid "
                                                          "password", pl.col("user"), ui))
         .when(k == "admin_ok").then(pl.format("Administrator {} logged in successfully from {}", pl.col("user"), ui))
         .when(k == "user_fail").then(pl.format("User {} failed in authentication", pl.col("user")))
         .when(k == "vpn_fail").then(pl.lit("SSL user failed to logged in"))
         .when(k == "vpn_up").then(pl.lit("SSL tunnel established"))
         .when(k == "config").then(pl.lit("Edit firewall.policy 12"))
         .otherwise(pl.lit("Performance statistics: average CPU: 7, memory:  41, concurrent sessions:  91245")),
         True),
    ]
    return f.select(pl.concat_str([pl.lit("<185>"), _line(cols)])).to_series()


def generate(path: str, n_lines: int, seed: int = 0) -> None:
    """Write ``n_lines`` FortiGate lines (about 80% traffic, 10% UTM, 10% events), in time order."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as out:
        for start in range(0, n_lines, BLOCK):
            m = min(BLOCK, n_lines - start)
            sec = START + start // 20 + np.sort(rng.integers(0, max(m // 20, 1), m))
            kind = rng.choice(3, m, p=[0.8, 0.1, 0.1])
            lines = np.empty(m, dtype=object)
            for k, make in enumerate((_traffic, _utm, _event)):
                idx = np.flatnonzero(kind == k)
                if idx.size:
                    lines[idx] = make(rng, sec[idx]).to_numpy()
            out.write(("\n".join(lines.tolist()) + "\n").encode())


BASELINE_RE = re.compile(r'([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^ \t]*)')


def baseline_parse(line: str) -> dict | None:
    """The naive way: one ``re`` scan of the line in Python, first occurrence of a key wins."""
    out: dict[str, str] = {}
    for key, value in BASELINE_RE.findall(line):
        if key not in out:
            out[key] = value[1:-1] if value.startswith('"') else value
    return out or None
