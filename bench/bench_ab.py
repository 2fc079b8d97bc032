"""A/B: the same parse in this tree and in another checkout (e.g. the commit before a change), alternated.

    git worktree add /tmp/before <commit>
    python -m bench.bench_ab /tmp/before web_access:gen_web syslog:gen_syslog zeek:gen_zeek:.log [--lines N]
                             [--pairs P]

Each run is ``bench._child soc FILE FORMAT WARMUP`` in a fresh interpreter (its own peak RSS), started in
the tree it measures, so each side imports its own ``soc`` and specs; the pairs alternate A, B, A, B, ... so
that both sides see the same phases of a shared, noisy machine. The input is generated once by this tree's
generator and read by both. Prints per format the median lines/s and MB/s of each side, the median peak RSS,
the ratio this/other and how many pairs this tree won.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.harness import ROOT, generated, machine


def run(tree: Path, path: Path, fmt: str, warmup: Path) -> dict:
    res = subprocess.run([sys.executable, "-m", "bench._child", "soc", str(path), fmt, str(warmup)], cwd=tree,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{tree}: benchmark child failed: {res.stderr[-2000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out.get("error"):
        raise RuntimeError(f"{tree}: {out['error']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("other", type=Path, help="the other checkout (B)")
    ap.add_argument("formats", nargs="+", help="FORMAT:GENERATOR[:SUFFIX], e.g. web_access:gen_web")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}\nA = {ROOT} (this tree), B = {args.other}\n")
    print("| format | lines | A lines/s | B lines/s | A MB/s | B MB/s | A/B | A ahead | A peak MB | B peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for item in args.formats:
        fmt, module, *rest = item.split(":")
        suffix = rest[0] if rest else ".log"
        path, warmup = generated(module, args.lines, suffix), generated(module, 2_000, suffix)
        a, b = [], []
        for _ in range(args.pairs):
            a.append(run(ROOT, path, fmt, warmup))
            b.append(run(args.other, path, fmt, warmup))
        for side in (a, b):
            if any(r["dead"] for r in side):
                print(f"  note: {fmt}: dead letters in a run: {[r['dead'] for r in side]}")
        rate = [[r["lines"] / r["seconds"] for r in side] for side in (a, b)]
        mbs = [[r["bytes"] / r["seconds"] / 1e6 for r in side] for side in (a, b)]
        ahead = sum(x > y for x, y in zip(rate[0], rate[1], strict=True))
        ra, rb = statistics.median(rate[0]), statistics.median(rate[1])
        print(f"| {fmt} | {a[0]['lines']:,} | {ra:,.0f} | {rb:,.0f} | {statistics.median(mbs[0]):.0f} | "
              f"{statistics.median(mbs[1]):.0f} | {ra / rb:.2f} | {ahead} of {args.pairs} | "
              f"{statistics.median(r['peak_rss_mb'] for r in a):.0f} | "
              f"{statistics.median(r['peak_rss_mb'] for r in b):.0f} |", flush=True)


if __name__ == "__main__":
    main()
