"""Generator of Zeek TSV conn.log lines (with the header) for benchmarks, and the pure-Python baseline."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
          "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history",
          "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents"]
TYPES = ["time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count", "count", "string",
         "bool", "bool", "count", "string", "count", "count", "count", "count", "set[string]"]
HEADER = ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
          "#open\t2026-11-20-00-00-00\n#fields\t" + "\t".join(FIELDS) + "\n#types\t" + "\t".join(TYPES) + "\n")
SERVICES = ["dns", "http", "ssl", "-", "ssh", "smtp"]
STATES = ["SF", "S0", "REJ", "RSTO", "SH", "OTH"]


def rows(n: int, seed: int = 0):
    """Blocks of connections, each a list of rows of ``FIELDS`` values as the TSV writes them."""
    rng = np.random.default_rng(seed)
    block = 100_000
    for first in range(0, max(n, 0), block):
        m = min(block, n - first)
        a, b, c = rng.integers(0, 256, (3, m))
        ports = rng.integers(1024, 65536, m)
        svc = rng.integers(0, len(SERVICES), m)
        st = rng.integers(0, len(STATES), m)
        size = rng.integers(0, 2_000_000, (2, m))
        yield [[f"{1_763_596_800 + k * 0.043:.6f}", f"C{k:017x}", f"10.{a[i]}.{b[i]}.{c[i]}", str(ports[i]),
                f"203.0.113.{c[i]}", "443" if svc[i] == 2 else "53" if svc[i] == 0 else "80",
                "udp" if svc[i] == 0 else "tcp", SERVICES[svc[i]], f"{(k % 9000) / 1000:.6f}", str(size[0, i]),
                str(size[1, i]), STATES[st[i]], "T", "F", "0", "ShADadFf", str(k % 90), str(size[0, i] + 400),
                str(k % 70), str(size[1, i] + 300), "(empty)"]
               for i, k in ((i, first + i) for i in range(m))]


def generate(path: str, n_lines: int, seed: int = 0) -> None:
    """Write ``n_lines`` lines: the conn.log header, connections and the ``#close`` line."""
    with open(path, "w", encoding="utf-8") as out:
        out.write(HEADER)
        for block in rows(n_lines - 9, seed):
            out.writelines("\t".join(row) + "\n" for row in block)
        out.write(f"#close\t{datetime.fromtimestamp(1_763_683_200, UTC):%Y-%m-%d-%H-%M-%S}\n")


def baseline_parse(line: str) -> dict | None:
    """The naive way: split on tabs, then per-field conversions in Python (header lines are skipped)."""
    if line.startswith("#"):
        return {}
    v = line.split("\t")
    if len(v) != len(FIELDS):
        return None

    def num(x: str) -> int | None:
        return None if x == "-" else int(x)

    return {
        "@timestamp": datetime.fromtimestamp(float(v[0]), UTC), "source.ip": v[2], "source.port": int(v[3]),
        "destination.ip": v[4], "destination.port": int(v[5]), "network.transport": v[6],
        "network.protocol": None if v[7] == "-" else v[7], "source.bytes": num(v[9]), "destination.bytes": num(v[10]),
        "source.packets": num(v[16]), "destination.packets": num(v[18]),
    }
