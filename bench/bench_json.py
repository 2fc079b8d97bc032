"""JSON, Zeek and DNS-log throughput: Suricata EVE NDJSON (nested, routed to five frames), Zeek conn.log as
flat NDJSON (``zeek_json``) and as TSV, and the Windows DNS Server debug log, 2 M generated lines each through
the real pipeline, against baselines measured in the same run: a pure-Python one (``json.loads``;
``str.split``; ``re``) and, for the JSON formats, Polars' own NDJSON reader with an explicit schema
(``pl.read_ndjson(path, schema=...)`` of the fields the spec reads, typed as the spec wants them in JSON: the
"explicit schema" figure; it decodes only, no timestamps, routes or dead letters, the whole file at once).

    python -m bench.bench_json [suricata_eve zeek_json zeek windows_dns_debug] [--lines N] [--baseline-lines N]
                               [--repeat R]

Each measurement runs in its own process (its own peak RSS); the JIT is warmed and the specs are loaded on
a small file first (outside the timed run). Rows give wall-clock MB/s and MB per CPU-second (all threads:
``time.process_time``), and the load average at the end of the run: the machine is shared, wall-clock
figures are floors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench.harness import DATA, ROOT, arguments, child, generated, machine

FORMATS = {  # format -> generator module, file suffix, pure-Python baseline
    "suricata_eve": ("gen_suricata", ".json", "python json.loads"),
    "zeek_json": ("gen_zeek_json", ".json", "python json.loads"),
    "zeek": ("gen_zeek", ".log", "python str.split"),
    "windows_dns_debug": ("gen_windows_dns", ".log", "python re"),
}
HEADER = ("| run | lines | MB | lines/s | MB/s (wall) | MB per CPU-s | peak RSS MB | load |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")


def run_soc(path: str, fmt: str, warm: str) -> dict:
    from soc import pipeline
    from soc.parse.spec import load_specs
    from soc.runtime import collect_less_often, reuse_freed_memory, setup_kept
    from soc.sources import discover

    reuse_freed_memory()  # as the CLI does
    collect_less_often()

    options = pipeline.Options(format=fmt, year=2026)
    specs = load_specs()
    pipeline.run(discover([warm]), options=options, specs=specs)
    wall, cpu = time.perf_counter(), time.process_time()
    with setup_kept():  # as the CLI does
        (st,) = pipeline.run(discover([path]), options=options, specs=specs)
    return {"lines": st.read, "parsed": st.parsed, "dead": st.dead, "bytes": st.bytes, "error": st.error,
            "seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def run_ndjson(path: str, fmt: str, warm: str) -> dict:
    """Polars' NDJSON reader on the same bytes, with the schema of the fields the spec reads."""
    import polars as pl

    from soc.parse.columns import Context
    from soc.parse.engines.json import JsonEngine
    from soc.parse.spec import load_specs

    schema = JsonEngine(load_specs()[fmt], Context(path)).schema
    pl.read_ndjson(warm, schema=schema)
    wall, cpu = time.perf_counter(), time.process_time()
    frame = pl.read_ndjson(path, schema=schema)
    return {"lines": frame.height, "parsed": frame.height, "dead": 0, "bytes": os.path.getsize(path),
            "seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def measure(*args: str) -> dict:
    """One measurement of this module's child mode in a fresh interpreter."""
    res = subprocess.run([sys.executable, "-m", "bench.bench_json", "--child", *args], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def row(name: str, r: dict) -> str:
    secs = max(r["seconds"], 1e-9)
    cpu = f"{r['bytes'] / r['cpu'] / 1e6:,.0f}" if r.get("cpu") else ""
    load = f"{r['load']:.1f}" if "load" in r else ""
    return (f"| {name} | {r['lines']:,} | {r['bytes'] / 1e6:,.0f} | {r['lines'] / secs / 1e6:.2f} M | "
            f"{r['bytes'] / secs / 1e6:,.0f} | {cpu} | {r['peak_rss_mb']:,.0f} | {load} |")


def compare(fmt: str, args) -> None:
    module, suffix, baseline = FORMATS[fmt]
    path, warm = generated(module, args.lines, suffix), generated(module, 20_000, suffix)
    runs = sorted((measure("soc", str(path), fmt, str(warm)) for _ in range(args.repeat)), key=lambda r: r["seconds"])
    ours = runs[len(runs) // 2]
    spread = ", ".join(f"{r['bytes'] / r['seconds'] / 1e6:.0f}" for r in runs)
    print(row(f"{fmt}: soc (median; all runs MB/s: {spread})", ours))
    rate = ours["lines"] / ours["seconds"]
    if suffix == ".json":
        nd = measure("ndjson", str(path), fmt, str(warm))
        print(row(f"{fmt}: polars read_ndjson, explicit schema (decode only)", nd))
        print(f"| {fmt}: soc / read_ndjson | | | x{rate / (nd['lines'] / nd['seconds']):.2f} | | | | |")
    base = child("baseline", str(path), f"bench.{module}", str(args.baseline_lines))
    base["load"] = os.getloadavg()[0]
    print(row(f"{fmt}: {baseline} baseline", base))
    print(f"| {fmt}: soc / {baseline} | | | x{rate / (base['lines'] / base['seconds']):.1f} | | | | |"
          f" dead-lettered {ours['dead']:,} / {ours['lines']:,}")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        from bench._child import peak_rss_mb

        kind, rest = sys.argv[2], sys.argv[3:]
        out = run_soc(*rest) if kind == "soc" else run_ndjson(*rest)
        out["peak_rss_mb"] = peak_rss_mb()
        out["load"] = os.getloadavg()[0]
        print(json.dumps(out))
        return
    args = arguments(["suricata_eve"])
    print(f"machine: {machine()}; data in {DATA}\n\n{HEADER}")
    for fmt in args.formats:
        compare(fmt, args)


if __name__ == "__main__":
    main()
