"""Generator of RFC 3164 auth.log/syslog lines for benchmarks, and the pure-Python baseline.

Lines are built a block at a time with Polars string expressions (one ``format`` per template over the
rows that use it), so 2 M lines take a few seconds.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

HOSTS = ["web01", "web02", "db01", "mail", "vpn-gw", "hcm-app-03", "hn-portal", "bastion"]
USERS = ["root", "bob", "alice", "deploy", "ubuntu", "nguyenvana", "tranthib", "backup", "git", "oracle"]
INVALID = ["admin", "test", "user", "guest", "ftpuser", "postgres", "pi", "support", "123456", "hadoop"]
COMMANDS = ["/bin/bash", "/usr/bin/systemctl restart nginx", "/usr/bin/apt-get update",
            "/usr/bin/tail -f /var/log/syslog", "/bin/cat /etc/shadow", "/usr/bin/docker ps -a"]
KEY = "RSA SHA256:uZb8pG2vDqk0YwqyO1R9c3hM5l7Xn4e0fJt6aQ2sLkE"

# (weight, program, message template over the columns user, bad, ip, port, pid, n, cmd, ppid)
TEMPLATES = [
    (6, "sshd", "Accepted password for {} from {} port {} ssh2", ["user", "ip", "port"]),
    (6, "sshd", "Accepted publickey for {} from {} port {} ssh2: " + KEY, ["user", "ip", "port"]),
    (14, "sshd", "Failed password for {} from {} port {} ssh2", ["user", "ip", "port"]),
    (12, "sshd", "Failed password for invalid user {} from {} port {} ssh2", ["bad", "ip", "port"]),
    (10, "sshd", "Invalid user {} from {} port {}", ["bad", "ip", "port"]),
    (5, "sshd", "Connection closed by authenticating user {} {} port {} [preauth]", ["user", "ip", "port"]),
    (3, "sshd", "Disconnected from authenticating user {} {} port {} [preauth]", ["user", "ip", "port"]),
    (2, "sshd", "error: maximum authentication attempts exceeded for {} from {} port {} ssh2 [preauth]",
     ["user", "ip", "port"]),
    (2, "sshd", "PAM {} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={}  user={}",
     ["n", "ip", "user"]),
    (2, "sshd", "Did not receive identification string from {} port {}", ["ip", "port"]),
    (5, "sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={}  "
     "user={}", ["ip", "user"]),
    (4, "sshd", "pam_unix(sshd:session): session opened for user {}(uid=1000) by (uid=0)", ["user"]),
    (4, "sshd", "pam_unix(sshd:session): session closed for user {}", ["user"]),
    (5, "sshd", "Received disconnect from {} port {}:11: Bye Bye [preauth]", ["ip", "port"]),
    (3, "sshd", "Connection closed by {} port {} [preauth]", ["ip", "port"]),
    (2, "sshd", "message repeated {} times: [ Failed password for {} from {} port {} ssh2]",
     ["n", "user", "ip", "port"]),
    (4, "sudo", "   {} : TTY=pts/0 ; PWD=/home/{} ; USER=root ; COMMAND={}", ["user", "user", "cmd"]),
    (1, "sudo", "   {} : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND={}",
     ["user", "cmd"]),
    (3, "sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by {}(uid=1000)", ["user"]),
    (2, "su", "(to root) {} on pts/0", ["user"]),
    (2, "su", "pam_unix(su:session): session opened for user root by {}(uid=1000)", ["user"]),
    (1, "su", "FAILED su for root by {}", ["user"]),
    (6, "CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", []),
    (6, "CRON", "({}) CMD (/usr/lib/sa/sa1 1 1)", ["user"]),
    (3, "systemd", "Started Session {} of User {}.", ["ppid", "user"]),
    (3, "systemd-logind", "New session {} of user {}.", ["ppid", "user"]),
    (2, "kernel", "[UFW BLOCK] IN=eth0 OUT= SRC={} DST=10.0.0.10 PROTO=TCP SPT={} DPT=22", ["ip", "port"]),
    (2, "postfix/smtpd", "connect from unknown[{}]", ["ip"]),
]


def generate(path: str, n_lines: int, seed: int = 0) -> None:
    """Write ``n_lines`` varied auth.log lines (sshd, sudo, su, PAM, cron, ...; 5% IPv6 sources)."""
    rng = np.random.default_rng(seed)
    weights = np.array([t[0] for t in TEMPLATES], float)
    block = 250_000
    second = 0
    with open(path, "wb") as out:
        for start in range(0, n_lines, block):
            m = min(block, n_lines - start)
            secs = second + np.cumsum(rng.integers(0, 3, m))
            second = int(secs[-1])
            a, b, c = rng.integers(1, 255, (3, m))
            ip = pl.format("{}.{}.{}.{}", pl.lit(113) + pl.col("a") % 3, "a", "b", "c")
            frame = pl.DataFrame({
                "t": (np.datetime64("2026-03-01T00:00:00") + secs.astype("timedelta64[s]")).astype("datetime64[us]"),
                "host": pl.Series(HOSTS).gather(rng.integers(0, len(HOSTS), m)),
                "kind": rng.choice(len(TEMPLATES), m, p=weights / weights.sum()),
                "user": pl.Series(USERS).gather(rng.integers(0, len(USERS), m)),
                "bad": pl.Series(INVALID).gather(rng.integers(0, len(INVALID), m)),
                "cmd": pl.Series(COMMANDS).gather(rng.integers(0, len(COMMANDS), m)),
                "a": a, "b": b, "c": c,
                "v6": rng.random(m) < 0.05,
                "port": rng.integers(1024, 65536, m),
                "pid": rng.integers(300, 99_999, m),
                "ppid": rng.integers(1, 9_999, m),
                "n": rng.integers(2, 6, m),
            }).with_row_index("i").with_columns(
                ip=pl.when("v6").then(pl.format("2001:ee0:{}::{}", "b", "c")).otherwise(ip),
                head=pl.format("{} {} ", pl.col("t").dt.strftime("%b %e %H:%M:%S"), "host"),
            )
            parts = []
            for k, (_, program, template, cols) in enumerate(TEMPLATES):
                rows = frame.filter(pl.col("kind") == k)
                tag = pl.format(program + "[{}]: ", "pid") if program != "kernel" else pl.lit("kernel: ")
                parts.append(rows.select("i", line=pl.concat_str(["head", tag, pl.format(template, *cols)])))
            lines = pl.concat(parts).sort("i")["line"]
            out.write(lines.str.join("\n").item().encode() + b"\n")


YEAR = 2026  # the year the benchmark injects (bench._child), and the baseline's reference
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
LIMIT = datetime(YEAR, 12, 31, 23, 59, 59, tzinfo=timezone.utc) + timedelta(days=1)
MONTH = {m: i + 1 for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                         "Nov", "Dec"])}
HEADER_RE = re.compile(
    r"^(?:<(\d{1,3})>)?([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?:? *(.*)$"
)
REPEAT_RE = re.compile(r"^message repeated (\d+) times: \[\s*(.*?)\s*\]$")
EVENTS = [  # (programs, regex, action, outcome)
    ({"sshd"}, r"Accepted (\S+) for (?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+) ssh2", "ssh_login", "success"),
    ({"sshd"}, r"Failed (\S+) for invalid user (?P<user>\S*) from (?P<ip>\S+) port (?P<port>\d+) ssh2", "ssh_login",
     "failure"),
    ({"sshd"}, r"Failed (\S+) for (?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+) ssh2", "ssh_login", "failure"),
    ({"sshd"}, r"Invalid user (?P<user>\S*) from (?P<ip>\S+) port (?P<port>\d+)$", "invalid_user", "failure"),
    ({"sshd"}, r"(?:Connection closed by|Disconnected from) (?:authenticating|invalid) user (?P<user>\S*) "
     r"(?P<ip>\S+) port (?P<port>\d+) \[preauth\]$", "ssh_preauth_disconnect", "failure"),
    ({"sshd"}, r"error: maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S*) from "
     r"(?P<ip>\S+) port (?P<port>\d+)", "ssh_max_auth_exceeded", "failure"),
    ({"sshd"}, r"PAM (?P<n>\d+) more authentication failures?; .* rhost=(?P<ip>\S*)(?:  user=(?P<user>\S+))?$",
     "pam_auth_failure", "failure"),
    ({"sshd"}, r"Did not receive identification string from (?P<ip>\S+)(?: port (?P<port>\d+))?$",
     "ssh_no_identification", "failure"),
    ({"sshd", "sudo"}, r"pam_unix\(\S+:auth\): authentication failure; .* rhost=(?P<ip>\S*)(?:  user=(?P<user>\S+))?$",
     "pam_auth_failure", "failure"),
    ({"sshd"}, r"pam_unix\(\S+:session\): session opened for user (?P<user>[^\s(]+)", "pam_session_opened", "success"),
    ({"sshd"}, r"pam_unix\(\S+:session\): session closed for user (?P<user>\S+)$", "pam_session_closed", "success"),
    ({"su", "sudo"}, r"pam_unix\(\S+:session\): session opened for user (?P<target>[^\s(]+)(?:\(uid=\d+\))? by "
     r"(?P<user>[^\s(]*)\(uid=\d+\)$", "pam_session_opened", "success"),
    ({"sudo"}, r"\s*(?P<user>\S+) : (?:(?P<reason>[^;]+) ; )?TTY=\S+ ; PWD=.* ; USER=(?P<target>\S+) ; .*?COMMAND="
     r"(?P<cmd>.*)$", "sudo", None),
    ({"su"}, r"\(to (?P<target>\S+)\) (?P<user>\S+) on \S+$", "su", "success"),
    ({"su"}, r"FAILED su for (?P<target>\S+) by (?P<user>\S+)$", "su", "failure"),
]
EVENTS_RE = [(progs, re.compile(rx), action, outcome) for progs, rx, action, outcome in EVENTS]


def baseline_parse(line: str) -> dict | None:
    """The naive way: a header regex, then each event regex of the program in turn, all in Python."""
    m = HEADER_RE.match(line)
    if m is None:
        return None
    pri, mon, day, hh, mm, ss, host, program, pid, message = m.groups()
    if mon not in MONTH:
        return None
    stamp = datetime(YEAR, MONTH[mon], int(day), int(hh), int(mm), int(ss), tzinfo=ZONE)
    if stamp > LIMIT:
        stamp = stamp.replace(year=YEAR - 1)
    out = {"@timestamp": stamp.astimezone(timezone.utc), "host.hostname": host, "process.name": program,
           "process.pid": int(pid) if pid else None, "log.syslog.priority": int(pri) if pri else None,
           "event.count": 1, "message": message}
    rep = REPEAT_RE.match(message)
    if rep:
        out["event.count"], out["message"] = int(rep.group(1)), rep.group(2)
    for programs, rx, action, outcome in EVENTS_RE:
        if program in programs:
            ev = rx.match(out["message"])
            if ev:
                got = ev.groupdict()
                out.update({
                    "event.dataset": "system.auth", "event.action": action,
                    "event.outcome": outcome or ("failure" if got.get("reason") else "success"),
                    "user.name": got.get("user"), "user.effective.name": got.get("target"),
                    "source.ip": got.get("ip"), "source.port": int(got["port"]) if got.get("port") else None,
                    "process.command_line": got.get("cmd"),
                })
                if got.get("n"):  # "PAM N more authentication failures": N failures
                    out["event.count"] = int(got["n"])
                return out
    out["event.dataset"] = "system.syslog"
    return out
