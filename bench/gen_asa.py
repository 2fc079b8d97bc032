"""Generator of Cisco ASA syslog lines for benchmarks (the message mix of a busy edge firewall), and the
pure-Python baseline.

Lines are built a block at a time with Polars string expressions, as ``gen_syslog`` does.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

FIREWALLS = ["asa-hq-01", "asa-hq-02", "asa-dc-01", "10.10.0.1"]
USERS = ["admin", "netops", "bob", "nguyenvana", "root", "cisco"]
ACLS = ["outside_access_in", "inside_access_out", "dmz_in"]

# (weight, message id, template over the columns src, sp, dst, dp, nat, id, bytes, dur, user, acl, n)
TEMPLATES = [
    (22, "6-302013", "Built inbound TCP connection {} for outside:{}/{} ({}/{}) to inside:{}/{} ({}/{})",
     ["id", "src", "sp", "src", "sp", "dst", "dp", "nat", "dp"]),
    (14, "6-302013", "Built outbound TCP connection {} for outside:{}/{} ({}/{}) to inside:{}/{} ({}/{})",
     ["id", "src", "dp", "src", "dp", "dst", "sp", "nat", "sp"]),
    (30, "6-302014", "Teardown TCP connection {} for outside:{}/{} to inside:{}/{} duration {} bytes {} TCP FINs",
     ["id", "src", "sp", "dst", "dp", "dur", "bytes"]),
    (10, "6-302015", "Built outbound UDP connection {} for outside:{}/53 ({}/53) to inside:{}/{} ({}/{})",
     ["id", "src", "src", "dst", "sp", "nat", "sp"]),
    (10, "6-302016", "Teardown UDP connection {} for outside:{}/53 to inside:{}/{} duration {} bytes {}",
     ["id", "src", "dst", "sp", "dur", "bytes"]),
    (8, "4-106023", 'Deny tcp src outside:{}/{} dst inside:{}/{} by access-group "{}" [0x0, 0x0]',
     ["src", "sp", "dst", "dp", "acl"]),
    (1, "6-113004", "AAA user authentication Successful : server = 10.10.0.5 : user = {}", ["user"]),
    (1, "6-113005", "AAA user authentication Rejected : reason = AAA failure : server = 10.10.0.5 : user = {} : "
     "user IP = {}", ["user", "src"]),
    (1, "6-605004", 'Login denied from {}/{} to outside:203.0.113.1/ssh for user "{}"', ["src", "sp", "user"]),
    (1, "6-605005", 'Login permitted from {}/{} to inside:10.10.0.1/https for user "{}"', ["dst", "sp", "user"]),
    (1, "4-733100", "[ Scanning] drop rate-1 exceeded. Current burst rate is {} per second, max configured rate is "
     "10; Current average rate is 5 per second, max configured rate is 5; Cumulative total count is {}",
     ["n", "bytes"]),
    (1, "5-111008", "User '{}' executed the 'write memory' command.", ["user"]),
]


def generate(path: str, n_lines: int, seed: int = 0) -> None:
    """Write ``n_lines`` ASA lines: connections (most), ACL denies, AAA and management logins, threats."""
    rng = np.random.default_rng(seed)
    weights = np.array([t[0] for t in TEMPLATES], float)
    block = 250_000
    second = 0
    with open(path, "wb") as out:
        for start in range(0, n_lines, block):
            m = min(block, n_lines - start)
            secs = second + np.cumsum(rng.integers(0, 2, m))
            second = int(secs[-1])
            a, b, c = rng.integers(1, 255, (3, m))
            frame = pl.DataFrame({
                "t": (np.datetime64("2026-03-01T00:00:00") + secs.astype("timedelta64[s]")).astype("datetime64[us]"),
                "host": pl.Series(FIREWALLS).gather(rng.integers(0, len(FIREWALLS), m)),
                "kind": rng.choice(len(TEMPLATES), m, p=weights / weights.sum()),
                "user": pl.Series(USERS).gather(rng.integers(0, len(USERS), m)),
                "acl": pl.Series(ACLS).gather(rng.integers(0, len(ACLS), m)),
                "a": a, "b": b, "c": c,
                "sp": rng.integers(1024, 65536, m),
                "dp": pl.Series([22, 25, 53, 80, 443, 3389, 8443]).gather(rng.integers(0, 7, m)),
                "id": rng.integers(1, 4_000_000_000, m),
                "bytes": rng.integers(0, 10_000_000, m),
                "n": rng.integers(11, 500, m),
                "dur": pl.Series([f"{h}:{mi:02d}:{s:02d}" for h, mi, s in rng.integers(0, 60, (m, 3)) % [3, 60, 60]]),
            }).with_row_index("i").with_columns(
                src=pl.format("{}.{}.{}.{}", pl.lit(100) + pl.col("a") % 100, "b", "c", "a"),
                dst=pl.format("10.10.{}.{}", pl.col("b") % 8, "c"),
                nat=pl.format("203.0.113.{}", "c"),
                head=pl.format("{} {} ", pl.col("t").dt.strftime("%b %e %H:%M:%S"), "host"),
            )
            parts = []
            for k, (_, mid, template, cols) in enumerate(TEMPLATES):
                rows = frame.filter(pl.col("kind") == k)
                parts.append(rows.select("i", line=pl.concat_str(["head", pl.lit(f"%ASA-{mid}: "),
                                                                  pl.format(template, *cols)])))
            lines = pl.concat(parts).sort("i")["line"]
            out.write(lines.str.join("\n").item().encode() + b"\n")


YEAR = 2026  # the year the benchmark injects (bench._child), and the baseline's reference
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
LIMIT = datetime(YEAR, 12, 31, 23, 59, 59, tzinfo=timezone.utc) + timedelta(days=1)
MONTH = {m: i + 1 for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                         "Nov", "Dec"])}
HEADER_RE = re.compile(r"^(?:<(\d{1,3})>)?([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\S+) "
                       r"%ASA-(\d)-(\d{6}): (.*)$")
ENDPOINT = r"(?P<{0}if>[^:\s]+):(?P<{0}>[^/\s]+)/(?P<{0}port>\d+)"
EVENTS = {  # message id -> (family, regex, action)
    "106023": ("network", r"Deny (?P<proto>\S+) src " + ENDPOINT.format("a") + " dst " + ENDPOINT.format("b") +
               r' by access-group "(?P<acl>[^"]*)"', "deny"),
    "302013": ("network", r"Built (?P<dir>inbound|outbound) TCP connection (?P<id>\d+) for " + ENDPOINT.format("a") +
               r" \(\S+\) to " + ENDPOINT.format("b") + r" \(\S+\)", "connection-built"),
    "302015": ("network", r"Built (?P<dir>inbound|outbound) UDP connection (?P<id>\d+) for " + ENDPOINT.format("a") +
               r" \(\S+\) to " + ENDPOINT.format("b") + r" \(\S+\)", "connection-built"),
    "302014": ("network", r"Teardown TCP connection (?P<id>\d+) for " + ENDPOINT.format("a") + " to " +
               ENDPOINT.format("b") + r" duration (?P<dur>\S+) bytes (?P<bytes>\d+)(?: (?P<reason>.*))?$",
               "connection-teardown"),
    "302016": ("network", r"Teardown UDP connection (?P<id>\d+) for " + ENDPOINT.format("a") + " to " +
               ENDPOINT.format("b") + r" duration (?P<dur>\S+) bytes (?P<bytes>\d+)", "connection-teardown"),
    "113004": ("authentication", r"AAA user \S+ Successful : server = (?P<server>\S+) : user = (?P<user>.*)$", "aaa"),
    "113005": ("authentication", r"AAA user \S+ Rejected : reason = (?P<reason>.*?) : server = (?P<server>\S+) : "
               r"user = (?P<user>.*?)(?: : user IP = (?P<ip>\S+))?$", "aaa"),
    "605004": ("authentication", r'Login denied from (?P<ip>[^/\s]+)/(?P<port>\d+) to \S+ for user "(?P<user>.*)"$',
               "management-login"),
    "605005": ("authentication", r'Login permitted from (?P<ip>[^/\s]+)/(?P<port>\d+) to \S+ for user "(?P<user>.*)"$',
               "management-login"),
    "733100": ("security", r"\[ ?(?P<object>[^\]]*)\] drop (?P<rate>\S+) exceeded\. Current burst rate is "
               r"(?P<burst>\d+) per second.*Cumulative total count is (?P<total>\d+)$", "threat-rate-exceeded"),
}
EVENTS_RE = {mid: (family, re.compile(rx), action) for mid, (family, rx, action) in EVENTS.items()}


def baseline_parse(line: str) -> dict | None:
    """The naive way: a header regex, then the regex of the message id, all in Python."""
    m = HEADER_RE.match(line)
    if m is None:
        return None
    pri, mon, day, hh, mm, ss, host, severity, mid, message = m.groups()
    if mon not in MONTH:
        return None
    stamp = datetime(YEAR, MONTH[mon], int(day), int(hh), int(mm), int(ss), tzinfo=ZONE)
    if stamp > LIMIT:
        stamp = stamp.replace(year=YEAR - 1)
    out = {"@timestamp": stamp.astimezone(timezone.utc), "observer.name": host, "event.code": mid,
           "log.syslog.priority": int(pri) if pri else None, "message": message, "family": "syslog"}
    if mid in EVENTS_RE:
        family, rx, action = EVENTS_RE[mid]
        ev = rx.match(message)
        if ev:
            got = ev.groupdict()
            out.update({k: v for k, v in got.items() if v is not None}, family=family, action=action)
            for key in ("aport", "bport", "port", "bytes", "burst", "total"):
                if got.get(key):
                    out[key] = int(got[key])
            if got.get("dir") == "outbound":  # the ASA names the responder first: swap to initiator = source
                out["aif"], out["a"], out["aport"], out["bif"], out["b"], out["bport"] = (
                    out["bif"], out["b"], out["bport"], out["aif"], out["a"], out["aport"])
    return out
