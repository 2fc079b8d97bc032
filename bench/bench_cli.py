"""CLI start-up: ``soc --help`` must answer fast (heavy libraries are imported lazily).

    python -m bench.bench_cli [--runs 20]

Baseline in the same run: ``python -c pass`` (the interpreter's own start-up).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    soc = median_seconds([sys.executable, "-m", "soc", "--help"], args.runs)
    base = median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"soc --help: median {soc * 1000:.0f} ms over {args.runs} runs; python -c pass: {base * 1000:.0f} ms "
          f"(soc adds {(soc - base) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
