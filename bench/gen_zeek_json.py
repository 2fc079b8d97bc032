"""Generator of Zeek conn.log records written as JSON (``LogAscii::use_json = T``: flat keys with dots, numbers
and booleans as JSON values, unset fields left out) for the flat-NDJSON benchmark, and the pure-Python
baseline. The connections are those of ``gen_zeek`` (the TSV benchmark), one object per line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bench.gen_zeek import FIELDS, TYPES, rows

_NUMBER = {"time": float, "interval": float, "port": int, "count": int}


def _value(kind: str, text: str):
    if kind in _NUMBER:
        return _NUMBER[kind](text)
    if kind == "bool":
        return text == "T"
    return text


def generate(path: str, n_lines: int, seed: int = 0) -> None:
    """Write ``n_lines`` JSON records."""
    typed = list(zip(FIELDS, TYPES, strict=True))
    with open(path, "w", encoding="utf-8") as out:
        for block in rows(n_lines, seed):
            out.writelines(json.dumps({f: _value(kind, v) for (f, kind), v in zip(typed, row, strict=True)
                                       if v not in ("-", "(empty)")}, separators=(",", ":")) + "\n"
                           for row in block)


def baseline_parse(line: str) -> dict | None:
    """The naive way: ``json.loads`` per line, then per-field conversions in Python."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict) or "ts" not in rec:
        return None
    return {
        "@timestamp": datetime.fromtimestamp(rec["ts"], UTC), "source.ip": rec.get("id.orig_h"),
        "source.port": rec.get("id.orig_p"), "destination.ip": rec.get("id.resp_h"),
        "destination.port": rec.get("id.resp_p"), "network.transport": rec.get("proto"),
        "network.protocol": rec.get("service"), "source.bytes": rec.get("orig_bytes"),
        "destination.bytes": rec.get("resp_bytes"), "source.packets": rec.get("orig_pkts"),
        "destination.packets": rec.get("resp_pkts"),
    }
