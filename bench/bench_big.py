"""Bounded memory: ``soc hunt`` over one 5 GB file, peak RSS of the whole process.

    python -m bench.bench_big [--gb 5] [--format web_access] [--match-all]

The input is the 2 M-line generated file of the format repeated up to the size, cut at a line end (made
once, in SOC_BENCH_DIR, default /tmp/soc-bench). The baseline in the same run is ``wc -l`` on the same file:
the speed of merely reading it. ``--match-all`` hunts with one Sigma rule that matches every line of a web
log (every request is a GET) instead of soc's own rules: the matches grow with the input, memory must not.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

from bench.bench_parsers import FORMATS
from bench.harness import DATA, generated, machine

MATCH_ALL = """title: Every Web Request (benchmark)
id: 5b0c6a52-6a43-4c0e-9d38-000000000017
status: test
logsource:
    category: webserver
detection:
    selection:
        cs-method: GET
    condition: selection
level: low
"""


def big_file(fmt: str, gb: float) -> tuple[str, int]:
    src = generated(FORMATS[fmt], 2_000_000)
    target = int(gb * 1e9)
    path = DATA / f"{fmt}-{gb:g}GB.log"
    if not path.exists() or path.stat().st_size < target:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            while out.tell() < target:
                with open(src, "rb") as fh:
                    while out.tell() < target and (block := fh.read(16 << 20)):
                        out.write(block)
                    out.write(fh.readline())  # end on a line end
        tmp.rename(path)
    return str(path), path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=5.0)
    ap.add_argument("--format", default="web_access", choices=sorted(FORMATS))
    ap.add_argument("--match-all", action="store_true", help="One Sigma rule matching every web request.")
    args = ap.parse_args()
    path, size = big_file(args.format, args.gb)
    print(f"machine: {machine()}\ninput: {path} ({size / 1e9:.2f} GB)")
    start = time.perf_counter()
    subprocess.run(["wc", "-l", path], check=True, capture_output=True)
    wc = time.perf_counter() - start
    with tempfile.TemporaryDirectory(dir=DATA) as data_dir:
        rules = []
        if args.match_all:
            with open(f"{data_dir}/every_request.yml", "w", encoding="utf-8") as fh:
                fh.write(MATCH_ALL)
            rules = ["--rules", fh.name]
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "soc", "hunt", path, "--format", args.format, "--json",
                              "--data-dir", f"{data_dir}/data", *rules], capture_output=True, text=True, check=False)
        secs = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    report = json.loads(res.stdout)
    (st,) = report["files"]
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"soc hunt: {st['read']:,} lines ({st['parsed']:,} parsed, {st['dead_lettered']:,} dead-lettered) "
          f"in {secs:.1f} s = {st['read'] / secs / 1e6:.2f} M lines/s, {size / secs / 1e6:.0f} MB/s, "
          f"peak RSS {rss:,.0f} MB")
    print(f"sigma matches: {report['sigma']['matches']:,}; alerts: {report['alerts']['alerts']:,}")
    print(f"baseline wc -l: {wc:.1f} s = {size / wc / 1e6:.0f} MB/s; soc takes x{secs / wc:.1f} its time")


if __name__ == "__main__":
    main()
