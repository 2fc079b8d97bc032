"""Generator of Apache/nginx combined access-log lines for benchmarks, and the pure-Python baseline."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np

PATHS = ["/", "/dichvucong/tra-cuu-ho-so", "/dichvucong/nop-ho-so?ma=HS{}", "/static/js/app.{}.js",
         "/api/v1/ho-so/{}/status", "/tin-tuc/{}", "/wp-login.php", "/.env", "/search?q={}"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Zalo/24.10 (Android 14; SM-A546E)", "curl/8.5.0", 'Mozilla/5.0 (compatible; \\"quoted\\" bot)', "-",
]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def generate(path: str, n_lines: int, seed: int = 0) -> None:
    """Write ``n_lines`` varied combined-format lines (IPv4 and IPv6 clients, escaped quotes, ``-`` values)."""
    rng = np.random.default_rng(seed)
    block = 100_000
    with open(path, "w", encoding="utf-8") as out:
        for start in range(0, n_lines, block):
            m = min(block, n_lines - start)
            a, b, c = rng.integers(0, 256, (3, m))
            sec = 1_795_000_000 + np.sort(rng.integers(0, 86_400, m)) + start
            status = rng.choice([200, 200, 200, 304, 302, 404, 403, 500], m)
            size = rng.integers(0, 200_000, m)
            pick = rng.integers(0, len(PATHS), m)
            agent = rng.integers(0, len(AGENTS), m)
            lines = []
            for i in range(m):
                t = datetime.utcfromtimestamp(int(sec[i]))
                ip = f"113.{a[i]}.{b[i]}.{c[i]}" if i % 20 else f"2001:ee0:{a[i]:x}::{c[i]:x}"
                target = PATHS[pick[i]].format(i)
                lines.append(
                    f'{ip} - - [{t.day:02d}/{MONTHS[t.month - 1]}/{t.year}:{t.hour:02d}:{t.minute:02d}:{t.second:02d}'
                    f' +0700] "GET {target} HTTP/1.1" {status[i]} {size[i] if status[i] != 304 else "-"} '
                    f'"https://dichvucong.example.gov.vn/" "{AGENTS[agent[i]]}"\n'
                )
            out.writelines(lines)


BASELINE_RE = re.compile(
    r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?$'
)


def baseline_parse(line: str) -> dict | None:
    """The naive way: one ``re`` match per line, then per-field conversions in Python."""
    m = BASELINE_RE.match(line)
    if m is None:
        return None
    client, _, user, ts, request, status, size, referrer, agent = m.groups()
    method, _, rest = request.partition(" ")
    target, _, protocol = rest.rpartition(" ")
    return {
        "@timestamp": datetime.strptime(ts, "%d/%b/%Y:%H:%M:%S %z"),
        "source.ip": client, "user.name": None if user == "-" else user,
        "http.request.method": method, "url.original": target, "http.version": protocol.removeprefix("HTTP/"),
        "http.response.status_code": int(status), "http.response.body.bytes": None if size == "-" else int(size),
        "http.request.referrer": referrer, "user_agent.original": agent,
    }
