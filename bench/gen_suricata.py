"""Generator of Suricata EVE NDJSON lines (alert, flow, dns, http, tls) for benchmarks, and the pure-Python
``json.loads`` baseline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np

SIGNATURES = [
    (2001219, "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2),
    (2010935, "ET SCAN Suspicious inbound to MSSQL port 1433", "Potentially Bad Traffic", 2),
    (2024897, "ET USER_AGENTS Go HTTP Client User-Agent", "Misc activity", 3),
    (2100498, "GPL ATTACK_RESPONSE id check returned root", "Potentially Bad Traffic", 2),
    (2019401, "ET POLICY Vulnerable Java Version 1.8.x Detected", "Potential Corporate Privacy Violation", 1),
]
HOSTS = ["dichvucong.example.gov.vn", "mail.example.gov.vn", "portal.example.gov.vn", "update.microsoft.com"]
AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0",
          "curl/8.5.0", "sqlmap/1.7.2#stable (https://sqlmap.org)", "Zalo/24.10 (Android 14; SM-A546E)"]


def _record(kind: int, i: int, t: datetime, a: int, b: int, port: int) -> dict:
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0700"
    rec = {"timestamp": stamp, "flow_id": 1_000_000_000_000 + i * 7919, "in_iface": "eth1",
           "event_type": "", "src_ip": f"10.{a}.{b}.{i % 250 + 1}", "src_port": port,
           "dest_ip": f"203.0.113.{a}", "dest_port": 443, "proto": "TCP",
           "community_id": f"1:{i:020d}XYZ="}
    if kind == 0:
        sid, sig, cat, sev = SIGNATURES[i % len(SIGNATURES)]
        rec.update(event_type="alert", alert={"action": "allowed", "gid": 1, "signature_id": sid, "rev": 5,
                                              "signature": sig, "category": cat, "severity": sev},
                   app_proto="http", flow={"pkts_toserver": 3, "pkts_toclient": 2, "bytes_toserver": 330,
                                           "bytes_toclient": 1200, "start": stamp})
    elif kind == 1:
        rec.update(event_type="flow", app_proto="tls", flow={
            "pkts_toserver": i % 90, "pkts_toclient": i % 70, "bytes_toserver": i % 90_000,
            "bytes_toclient": i % 700_000,
            "start": stamp, "end": stamp, "age": 3, "state": "closed", "reason": "timeout", "alerted": False})
    elif kind == 2:
        rec.update(event_type="dns", proto="UDP", dest_port=53, dns={
            "version": 2, "type": "answer", "id": i % 65536, "flags": "8180", "qr": True, "rd": True, "ra": True,
            "rrname": HOSTS[i % len(HOSTS)], "rrtype": "A", "rcode": "NOERROR",
            "answers": [{"rrname": HOSTS[i % len(HOSTS)], "rrtype": "A", "ttl": 300, "rdata": f"203.0.113.{a}"}]})
    elif kind == 3:
        rec.update(event_type="http", dest_port=80, tx_id=0, http={
            "hostname": HOSTS[i % len(HOSTS)], "url": f"/dichvucong/nop-ho-so?ma=HS{i}",
            "http_user_agent": AGENTS[i % len(AGENTS)], "http_content_type": "text/html", "http_method": "GET",
            "protocol": "HTTP/1.1", "status": 200, "length": i % 50_000})
    else:
        rec.update(event_type="tls", tls={
            "subject": "CN=" + HOSTS[i % len(HOSTS)], "issuerdn": "CN=R3, O=Let's Encrypt, C=US",
            "serial": "04:A1:5C", "fingerprint": "6f:0a:4e:33", "sni": HOSTS[i % len(HOSTS)], "version": "TLS 1.2",
            "notbefore": "2025-01-01T00:00:00", "notafter": "2026-04-01T00:00:00",
            "ja3": {"hash": "e7d705a3286e19ea42f587b344ee6865"}, "ja3s": {"hash": "f4febc55ea12b31ae17cfb7e614afda8"}})
    return rec


def generate(path: str, n_lines: int, seed: int = 0) -> None:
    """Write ``n_lines`` EVE records: 40 % flow, 20 % dns, 20 % http, 10 % alert, 10 % tls."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 11, 20, tzinfo=UTC)
    kinds = [1, 1, 1, 1, 2, 2, 3, 3, 0, 4]
    block = 100_000
    with open(path, "w", encoding="utf-8") as out:
        for first in range(0, n_lines, block):
            m = min(block, n_lines - first)
            a, b = rng.integers(0, 256, (2, m))
            ports = rng.integers(1024, 65536, m)
            for i in range(m):
                k = first + i
                rec = _record(kinds[k % 10], k, start + timedelta(microseconds=k * 40_000), int(a[i]), int(b[i]),
                              int(ports[i]))
                out.write(json.dumps(rec, separators=(",", ":")) + "\n")


def baseline_parse(line: str) -> dict | None:
    """The naive way: ``json.loads`` per line, then per-field conversions in Python."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    alert = rec.get("alert") or {}
    flow = rec.get("flow") or {}
    return {
        "@timestamp": datetime.strptime(rec["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z"),
        "event.action": rec.get("event_type"), "source.ip": rec.get("src_ip"), "source.port": rec.get("src_port"),
        "destination.ip": rec.get("dest_ip"), "destination.port": rec.get("dest_port"),
        "network.transport": (rec.get("proto") or "").lower() or None,
        "rule.id": str(alert["signature_id"]) if "signature_id" in alert else None,
        "rule.name": alert.get("signature"), "source.bytes": flow.get("bytes_toserver"),
        "destination.bytes": flow.get("bytes_toclient"),
    }
