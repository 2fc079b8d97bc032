"""Generator of Windows DNS Server debug log lines (dns.log, en-US layout, CRLF) for benchmarks, and the
pure-Python ``re`` baseline."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import numpy as np

HEADER = ["DNS Server log file creation at 11/20/2026 12:00:00 AM", "",
          "Message logging key (for packets - other items use a subset of these fields):",
          "\tField #  Information         Values", "\t-------  -----------         ------",
          "\t   1     Date", "\t   2     Time", "\t   3     Thread ID", "\t   4     Context", ""]
NAMES = ["(10)dichvucong(7)example(3)gov(2)vn(0)", "(4)mail(7)example(3)gov(2)vn(0)",
         "(6)update(9)microsoft(3)com(0)", "(3)www(6)google(3)com(0)", "(12)xk3jq9zzpa0b(4)evil(3)top(0)"]
TYPES = ["A", "AAAA", "MX", "TXT", "PTR"]
CODES = ["NOERROR", "NOERROR", "NOERROR", "NXDOMAIN", "SERVFAIL"]


def generate(path: str, n_lines: int, seed: int = 0) -> None:
    """Write ``n_lines`` lines: the header and legend, then received queries and sent answers (CRLF)."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 11, 20)
    block = 100_000
    with open(path, "w", encoding="ascii", newline="") as out:
        out.write("\r\n".join(HEADER) + "\r\n")
        for first in range(0, max(n_lines - len(HEADER), 0), block):
            m = min(block, n_lines - len(HEADER) - first)
            a, b = rng.integers(1, 255, (2, m))
            xid = rng.integers(0, 65536, m)
            lines = []
            for i in range(m):
                k = first + i
                t = start + timedelta(milliseconds=k * 7)
                stamp = f"{t.month}/{t.day}/{t.year} {(t.hour % 12) or 12}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"
                name, kind, code = NAMES[k % 5], TYPES[k % 5], CODES[(k // 2) % 5]
                answer = k % 2 == 1
                lines.append(
                    f"{stamp} 0B4C PACKET  {k:016X} UDP {'Snd' if answer else 'Rcv'} 10.{a[i]}.{b[i]}.20"
                    f"{' ' * 4}{xid[i]:04x} {'R' if answer else ' '} Q [{'8081   DR ' if answer else '0001   D  '}"
                    f" {code}] {kind:<6} {name}\r\n")
            out.writelines(lines)


LINE = re.compile(r"^(\S+ \S+(?: [AP]M)?) ([0-9A-F]+) PACKET +([0-9A-F]+) (UDP|TCP) (Snd|Rcv) (\S+) +([0-9a-f]{4}) "
                  r"([ R]) ([QNU?]) \[([0-9a-f]{4}) ([A ][T ][D ][R ]) +([A-Z]+)\] (\S+) +(\S+)\s*$")


def baseline_parse(line: str) -> dict | None:
    """The naive way: one Python regex per line, then per-field conversions in Python."""
    if not line.strip() or line.startswith(("\t", "Message logging", "DNS Server log")):
        return {}
    m = LINE.match(line)
    if m is None:
        return None
    g = m.groups()
    rcv = g[4] == "Rcv"
    return {
        "@timestamp": datetime.strptime(g[0], "%m/%d/%Y %I:%M:%S %p"), "network.transport": g[3].lower(),
        "source.ip": g[5] if rcv else None, "destination.ip": None if rcv else g[5], "dns.id": g[6],
        "dns.type": "answer" if g[7] == "R" else "query", "dns.response_code": g[11], "dns.question.type": g[12],
        "dns.question.name": re.sub(r"\(\d+\)", ".", g[13]).strip(".") or ".",
    }
