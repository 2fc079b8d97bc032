"""Alerts/s indexed into a local Elasticsearch: soc's ``index_alerts`` vs ``helpers.bulk`` with its defaults.

    scripts/es start && python -m bench.bench_es --alerts 200000 --repeat 3

Both index the same alert frame (built by ``build_alerts`` from generated hits, one alert per hit) into fresh
indices with the same templates; each run is a fresh process (its own peak RSS) and ends with a refresh and a
count that must equal the number of alerts (no loss, and no duplicate: the ids are the alerts' own). soc's time
includes its explicit refresh at the end (its alerts are searchable when ``index_alerts`` returns); the
baseline's does not. The baseline is what one writes first: ``frame.to_dicts()`` and
``helpers.bulk(client, actions)`` (op_type index, chunks of 500, the client's JSON serializer). Server CPU
seconds come from the server's own node stats, client CPU seconds from ``time.process_time``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
URL = os.environ.get("SOC_ES_URL", "http://127.0.0.1:9200")


def make_hits(n: int):
    """``n`` hits of 20 rules on distinct (source, host) pairs over a month: ``n`` alerts."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(7)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    seconds = np.sort(rng.integers(0, 30 * 86400, n))
    levels = np.array(["informational", "low", "medium", "high", "critical"])
    idx = np.arange(n)
    return pl.DataFrame({
        "@timestamp": [start + timedelta(seconds=int(s)) for s in seconds],
        "rule.id": [f"rule-{i % 20:02d}" for i in idx],
        "rule.name": [f"Rule number {i % 20}" for i in idx],
        "rule.author": "soc bench",
        "rule.level": levels[idx % 5],
        "threat.technique.id": [["T1110", "T1078"] if i % 2 else [] for i in idx],
        "source.ip": [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in idx],
        "host.hostname": [f"srv{i % 97:03d}.tinh.gov.vn" for i in idx],
        "event.dataset": "system.auth",
        "log.file.path": "/var/log/remote/auth.log",
        "log.line": idx + 1,
        "log.offset": idx * 120,
    }, schema_overrides={"@timestamp": pl.Datetime("us", "UTC")})


def peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(kind: str, n: int, prefix: str, workers: int, chunk: int) -> dict:
    from elasticsearch import helpers

    from soc.alerts import build_alerts
    from soc.config import ESConfig
    from soc.sinks import elasticsearch as es

    alerts = build_alerts(make_hits(n))
    assert alerts.height == n
    cfg = ESConfig(url=URL, index_prefix=prefix, replicas=0, workers=workers, chunk_size=chunk)
    client = es.connect(cfg)
    client.indices.delete(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="all")
    es.setup(client, cfg)
    dead_dir = Path(f"/tmp/soc-bench-es-{prefix}")
    server_cpu = server_cpu_ms(client)
    cpu = time.process_time()
    start = time.perf_counter()
    if kind == "soc":
        report = es.index_alerts(client, alerts, dead_dir, cfg)
        ok, errors = report.indexed, report.dead
    else:
        rows = alerts.to_dicts()
        indices = alerts.select(pl_month(prefix)).to_series().to_list()
        actions = ({"_index": i, "_id": r["event.id"], "_source": r} for i, r in zip(indices, rows, strict=True))
        ok, errors = helpers.bulk(client, actions)
        errors = len(errors) if isinstance(errors, list) else errors
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    server_cpu = (server_cpu_ms(client) - server_cpu) / 1000
    counted = es.count(client, prefix)
    client.indices.delete(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="all")
    return {"kind": kind, "alerts": n, "ok": ok, "errors": errors, "counted": counted, "seconds": seconds,
            "client_cpu_s": cpu, "server_cpu_s": server_cpu, "peak_rss_mb": peak_rss_mb()}


def server_cpu_ms(client) -> int:
    """CPU time the Elasticsearch process has used so far (its own nodes stats)."""
    nodes = client.nodes.stats(metric="process")["nodes"]
    return sum(n["process"]["cpu"]["total_in_millis"] for n in nodes.values())


def server_info() -> str:
    from soc.config import ESConfig
    from soc.sinks import elasticsearch as es

    client = es.connect(ESConfig(url=URL))
    nodes = client.nodes.info(metric="jvm,os")["nodes"].values()
    return "; ".join(f"{n['version']}, heap {n['jvm']['mem']['heap_max_in_bytes'] >> 20} MB, "
                     f"{n['os']['available_processors']} processors" for n in nodes)


def pl_month(prefix: str):
    import polars as pl

    return pl.col("@timestamp").dt.strftime(f"{prefix}-%Y.%m")


def run_child(kind: str, args) -> dict:
    res = subprocess.run([sys.executable, "-m", "bench.bench_es", "--child", kind, "--alerts", str(args.alerts),
                          "--workers", str(args.workers), "--chunk", str(args.chunk)], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{kind} run failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the median is shown")
    ap.add_argument("--workers", type=int, default=2, help="soc's bulk streams side by side")
    ap.add_argument("--chunk", type=int, default=2000, help="soc's alerts per bulk request")
    ap.add_argument("--warmup", type=int, default=100_000,
                    help="alerts indexed once by each side before the timed runs, not counted: a server just "
                         "started spends its first few 100,000 documents compiling (JIT): several CPU-s more per run")
    ap.add_argument("--child", choices=["soc", "baseline"])
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.alerts, f"soc-bench-{args.child}", args.workers, args.chunk)))
        return
    load = os.getloadavg()
    print(f"Elasticsearch at {URL} ({server_info()}); {args.alerts:,} alerts per run; {args.repeat} runs each, "
          f"alternating; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    runs: dict[str, list[dict]] = {"soc": [], "baseline": []}
    if args.warmup:
        for kind in ("soc", "baseline"):
            run_child(kind, argparse.Namespace(**{**vars(args), "alerts": args.warmup}))
    for _ in range(args.repeat):
        for kind in ("soc", "baseline"):
            r = run_child(kind, args)
            if r["counted"] != args.alerts or r["errors"]:
                raise SystemExit(f"{kind}: {r['counted']:,} documents counted, {r['errors']} errors: {r}")
            runs[kind].append(r)
    print("| run | alerts | seconds | alerts/s | client CPU s | server CPU s | alerts per CPU-s | peak RSS MB |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    medians = {}
    ours = (f"soc index_alerts ({args.workers} connections, create, nested JSON bytes by Polars, chunks of "
            f"{args.chunk} / 8 MB, refresh off meanwhile + 1 refresh)")
    for kind, label in (("soc", ours),
                        ("baseline", "helpers.bulk defaults (to_dicts, index, chunks of 500)")):
        rs = sorted(runs[kind], key=lambda r: r["seconds"])
        med = rs[len(rs) // 2]
        medians[kind] = med["alerts"] / med["seconds"]
        spread = ", ".join(f"{r['alerts'] / r['seconds']:,.0f}" for r in rs)
        print(f"| {label} (median; all: {spread}) | {med['alerts']:,} | {med['seconds']:.2f} | "
              f"{medians[kind]:,.0f} | {med['client_cpu_s']:.1f} | {med['server_cpu_s']:.1f} | "
              f"{med['alerts'] / (med['client_cpu_s'] + med['server_cpu_s']):,.0f} | {med['peak_rss_mb']:,.0f} |")
    print(f"| speed-up | | | x{medians['soc'] / medians['baseline']:.2f} | | | | |")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
