"""Parser throughput: each format on 2 M generated lines through the real pipeline, against a pure-Python
``re`` baseline measured in the same run.

    python -m bench.bench_parsers [web_access fortigate syslog cisco_asa] [--lines N] [--baseline-lines N]

Each measurement runs in its own process (peak RSS is its own); the JIT is warmed on a small file first.
soc runs ``--repeat`` times per format (the median run is shown: the machine is shared and noisy).
"""

from __future__ import annotations

import argparse

from bench.harness import HEADER, child, generated, machine, row

FORMATS = {  # format -> (generator module, file suffix)
    "web_access": "gen_web",
    "fortigate": "gen_fortigate",
    "syslog": "gen_syslog",
    "cisco_asa": "gen_asa",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("formats", nargs="*", default=list(FORMATS))
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--baseline-lines", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of soc per format; the median is shown")
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{HEADER}")
    for fmt in args.formats:
        module = FORMATS[fmt]
        path = generated(module, args.lines)
        warm = generated(module, 20_000)
        runs = sorted((child("soc", str(path), fmt, str(warm)) for _ in range(args.repeat)),
                      key=lambda r: r["seconds"])
        ours = runs[len(runs) // 2]
        base = child("baseline", str(path), f"bench.{module}", str(args.baseline_lines))
        spread = ", ".join(f"{r['lines'] / r['seconds'] / 1e6:.2f}" for r in runs)
        print(row(f"{fmt}: soc (median; all runs, M lines/s: {spread})", ours))
        print(row(f"{fmt}: python re baseline", base))
        speedup = (ours["lines"] / ours["seconds"]) / (base["lines"] / base["seconds"])
        print(f"| {fmt}: speed-up | | | x{speedup:.1f} | | | dead-lettered {ours['dead']:,} / {ours['lines']:,}")


if __name__ == "__main__":
    main()
