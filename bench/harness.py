"""Shared benchmark plumbing: generated inputs cached on disk, measurements in child processes."""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SOC_BENCH_DIR", "/tmp/soc-bench"))
DAY_US = 86_400 * 1_000_000


class Timer:
    """Wall-clock and CPU seconds of a block (the CPU time shows what a shared, loaded machine hides)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def events(n: int, keys: int, seed: int = 1):
    """``n`` events over about a day in time order (int64 microseconds) with keys uniform over ``keys`` dense
    ids (int32): the detection benchmarks' input; the generator too, for more columns of the same events."""
    import numpy as np

    rng = np.random.default_rng(seed)
    times = 1_795_420_800_000_000 + np.cumsum(rng.integers(0, 2 * DAY_US // n + 1, n, dtype=np.int64))
    return rng, rng.integers(0, keys, n, dtype=np.int32), times


def generated(module: str, n_lines: int, suffix: str = ".log") -> Path:
    """A file of ``n_lines`` from ``bench.<module>.generate``, made once and reused."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"{module}-{n_lines}{suffix}"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        importlib.import_module(f"bench.{module}").generate(str(tmp), n_lines)
        tmp.rename(path)
    return path


def child(*args: str) -> dict:
    """Run ``bench._child`` with ``args`` in a fresh interpreter; its JSON result."""
    res = subprocess.run([sys.executable, "-m", "bench._child", *args], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def row(name: str, r: dict) -> str:
    secs = max(r["seconds"], 1e-9)
    return (f"| {name} | {r['lines']:,} | {r['bytes'] / 1e6:,.0f} | {r['lines'] / secs / 1e6:.2f} M | "
            f"{r['bytes'] / secs / 1e6:,.0f} | {r['peak_rss_mb']:,.0f} |")


HEADER = "| run | lines | MB | lines/s | MB/s | peak RSS MB |\n|---|---:|---:|---:|---:|---:|"


def arguments(formats: list[str]):
    """The options every parser benchmark takes (formats to run default to ``formats``)."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("formats", nargs="*", default=formats)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--baseline-lines", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of soc per format; the median is shown")
    return ap.parse_args()


def compare(fmt: str, module: str, args, baseline: str = "python re", suffix: str = ".log",
            spread_in_mb: bool = False) -> None:
    """Run soc ``--repeat`` times on ``module``'s generated file and its baseline once; print the rows."""
    path = generated(module, args.lines, suffix)
    warm = generated(module, 20_000, suffix)
    runs = sorted((child("soc", str(path), fmt, str(warm)) for _ in range(args.repeat)),
                  key=lambda r: r["seconds"])
    ours = runs[len(runs) // 2]
    base = child("baseline", str(path), f"bench.{module}", str(args.baseline_lines))
    if spread_in_mb:
        spread = "MB/s: " + ", ".join(f"{r['bytes'] / r['seconds'] / 1e6:.0f}" for r in runs)
    else:
        spread = "M lines/s: " + ", ".join(f"{r['lines'] / r['seconds'] / 1e6:.2f}" for r in runs)
    print(row(f"{fmt}: soc (median; all runs, {spread})", ours))
    print(row(f"{fmt}: {baseline} baseline", base))
    speedup = (ours["lines"] / ours["seconds"]) / (base["lines"] / base["seconds"])
    print(f"| {fmt}: speed-up | | | x{speedup:.1f} | | | dead-lettered {ours['dead']:,} / {ours['lines']:,}")
