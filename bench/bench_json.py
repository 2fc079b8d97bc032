"""JSON and Zeek throughput: Suricata EVE NDJSON (and Zeek TSV conn.log), 2 M generated lines each
through the real pipeline, against a pure-Python baseline (``json.loads``; ``str.split``) in the same run.

    python -m bench.bench_json [suricata_eve zeek] [--lines N] [--baseline-lines N] [--repeat R]

Same conventions as ``bench_parsers``: each measurement in its own process (its own peak RSS), the JIT
warmed on a small file first, the median of ``--repeat`` runs shown with all runs listed.
"""

from __future__ import annotations

import argparse

from bench.harness import HEADER, child, generated, machine, row

FORMATS = {"suricata_eve": ("gen_suricata", ".json"), "zeek": ("gen_zeek", ".log")}  # format -> generator, suffix
BASELINE = {"suricata_eve": "python json.loads", "zeek": "python str.split"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("formats", nargs="*", default=["suricata_eve"])
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--baseline-lines", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of soc per format; the median is shown")
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{HEADER}")
    for fmt in args.formats:
        module, suffix = FORMATS[fmt]
        path = generated(module, args.lines, suffix)
        warm = generated(module, 20_000, suffix)
        runs = sorted((child("soc", str(path), fmt, str(warm)) for _ in range(args.repeat)),
                      key=lambda r: r["seconds"])
        ours = runs[len(runs) // 2]
        base = child("baseline", str(path), f"bench.{module}", str(args.baseline_lines))
        spread = ", ".join(f"{r['bytes'] / r['seconds'] / 1e6:.0f}" for r in runs)
        print(row(f"{fmt}: soc (median; all runs, MB/s: {spread})", ours))
        print(row(f"{fmt}: {BASELINE[fmt]} baseline", base))
        speedup = (ours["lines"] / ours["seconds"]) / (base["lines"] / base["seconds"])
        print(f"| {fmt}: speed-up | | | x{speedup:.1f} | | | dead-lettered {ours['dead']:,} / {ours['lines']:,}")


if __name__ == "__main__":
    main()
