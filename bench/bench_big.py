"""Bounded memory: ``soc hunt`` over one 5 GB file, peak RSS of the whole process.

    python -m bench.bench_big [--gb 5] [--format web_access]

The input is the 2 M-line generated file of the format repeated up to the size (made once, in
SOC_BENCH_DIR, default /tmp/soc-bench). The baseline in the same run is ``wc -l`` on the same file:
the speed of merely reading it.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from bench.bench_parsers import FORMATS
from bench.harness import DATA, generated, machine


def big_file(fmt: str, gb: float) -> tuple[str, int]:
    src = generated(FORMATS[fmt], 2_000_000)
    target = int(gb * 1e9)
    path = DATA / f"{fmt}-{gb:g}GB.log"
    if not path.exists() or path.stat().st_size < target:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            while out.tell() < target:
                with open(src, "rb") as fh:
                    shutil.copyfileobj(fh, out, 16 << 20)
        tmp.rename(path)
    return str(path), path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=5.0)
    ap.add_argument("--format", default="web_access", choices=sorted(FORMATS))
    args = ap.parse_args()
    path, size = big_file(args.format, args.gb)
    print(f"machine: {machine()}\ninput: {path} ({size / 1e9:.2f} GB)")
    start = time.perf_counter()
    subprocess.run(["wc", "-l", path], check=True, capture_output=True)
    wc = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as data_dir:
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "soc", "hunt", path, "--format", args.format, "--json",
                              "--data-dir", data_dir], capture_output=True, text=True, check=False)
        secs = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    (st,) = json.loads(res.stdout)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"soc hunt: {st['read']:,} lines ({st['parsed']:,} parsed, {st['dead_lettered']:,} dead-lettered) "
          f"in {secs:.1f} s = {st['read'] / secs / 1e6:.2f} M lines/s, {size / secs / 1e6:.0f} MB/s, "
          f"peak RSS {rss:,.0f} MB")
    print(f"baseline wc -l: {wc:.1f} s = {size / wc / 1e6:.0f} MB/s; soc takes x{secs / wc:.1f} its time")


if __name__ == "__main__":
    main()
