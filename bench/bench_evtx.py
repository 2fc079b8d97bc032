"""EVTX throughput: records/s of the whole path to typed frames (``pipeline.run``, dead letters counted)
against the ``evtx`` package alone (iterating its JSON records), measured in the same run.

    python -m bench.bench_evtx [--copies N] [--per-file N] [--repeat N]

CPU s is the CPU time over the same span of the process (all its threads) and of its worker processes (a
file of 25,000 records or more is read in pieces with ``SOC_EVTX_PROCESSES - 1`` worker processes:
``soc.parse.engines.evtx``); the machine is shared, so records per CPU-second say more than records per
second when other work competes for the cores. The soc rows set ``SOC_EVTX_PROCESSES`` (2: one worker; 1:
none) rather than leave it to the default, which depends on the load average at the time.

Input: the 434 chunks of the 281 files of ``../shared/corpora/evtx/evtx-to-mitre-attack`` (10,015 records)
written ``--copies`` times behind EVTX file headers, ``--per-file`` copies per file (an EVTX file is a
4 KiB header and self-contained 64 KiB chunks, so this makes real, larger files; 5 copies = 50,075
records, 142 MB, a busy server's Security.evtx). Also the 281 files as they are: most hold a handful of
records, so that run measures the cost per file. Each measurement runs in its own process (peak RSS is its
own, from VmHWM); the median of ``--repeat`` runs is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

from bench.harness import DATA, ROOT, machine

CORPUS = ROOT.parent / "shared" / "corpora" / "evtx" / "evtx-to-mitre-attack"
HEADER, CHUNK = 4096, 65536


def build(copies: int, per_file: int) -> list[Path]:
    """EVTX files made of the corpus's chunks, ``per_file`` copies of them each (made once, reused)."""
    files = sorted(CORPUS.rglob("*.evtx"))
    out = [DATA / f"evtx-{per_file}x-{i}.evtx" for i in range((copies + per_file - 1) // per_file)]
    if all(p.exists() for p in out):
        return out
    chunks = []
    for f in files:
        data = f.read_bytes()
        chunks += [data[o: o + CHUNK] for o in range(HEADER, len(data) - CHUNK + 1, CHUNK)
                   if data[o: o + 8] == b"ElfChnk\x00"]
    DATA.mkdir(parents=True, exist_ok=True)
    head = bytearray(files[0].read_bytes()[:HEADER])
    n = len(chunks) * per_file
    struct.pack_into("<QQ", head, 8, 0, n - 1)  # first and last chunk numbers
    struct.pack_into("<H", head, 42, n)  # chunk count
    struct.pack_into("<I", head, 120, struct.unpack_from("<I", head, 120)[0] & ~1)  # not dirty
    struct.pack_into("<I", head, 124, zlib.crc32(bytes(head[:120])))
    for path in out:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(head)
            for _ in range(per_file):
                for c in chunks:
                    fh.write(c)
        tmp.rename(path)
    return out


def _children() -> list[str]:
    """Pids of this process's live children (the EVTX worker processes), from /proc."""
    kids = []
    for task in os.listdir("/proc/self/task"):
        try:
            kids += Path(f"/proc/self/task/{task}/children").read_text().split()
        except OSError:
            continue
    return kids


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:  # the child has just exited
        return None


def cpu_seconds() -> float:
    """CPU time of this process and of its live children."""
    tick = os.sysconf("SC_CLK_TCK")
    total = time.process_time()
    for kid in _children():
        if (stat := _read(f"/proc/{kid}/stat")) is not None:
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def children_rss_mb() -> float:
    """Peak RSS (VmHWM) of the live children, summed."""
    total = 0.0
    for kid in _children():
        for line in (_read(f"/proc/{kid}/status") or "").splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def measure(kind: str, paths: list[str]) -> dict:
    """One measurement in this process (the child)."""
    from bench._child import peak_rss_mb

    if kind in ("soc", "soc1"):
        os.environ["SOC_EVTX_PROCESSES"] = "2" if kind == "soc" else "1"
        from soc import pipeline
        from soc.parse.spec import load_specs
        from soc.runtime import collect_less_often, reuse_freed_memory, setup_kept
        from soc.sources import discover

        reuse_freed_memory()  # as the CLI does
        collect_less_often()
        specs = load_specs()  # the specs (YAML), imports and the first query plans, outside the timed run
        pipeline.run(discover([paths[0]]), specs=specs)  # also starts the worker processes (~1 s, once)
        start, cpu = time.perf_counter(), cpu_seconds()
        with setup_kept():  # as the CLI does
            stats = pipeline.run(discover(paths), specs=specs)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        out = {"records": sum(s.read for s in stats), "parsed": sum(s.parsed for s in stats),
               "dead": sum(s.dead for s in stats), "errors": [s.error for s in stats if s.error]}
    else:
        import evtx

        start, cpu = time.perf_counter(), time.process_time()
        n = 0
        for p in paths:
            for _ in evtx.PyEvtxParser(p).records_json():
                n += 1
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        out = {"records": n, "parsed": n, "dead": 0, "errors": []}
    out.update(seconds=seconds, cpu_seconds=cpu, bytes=sum(Path(p).stat().st_size for p in paths),
               peak_rss_mb=peak_rss_mb(), workers_rss_mb=children_rss_mb())
    return out


def child(kind: str, paths: list[Path]) -> dict:
    res = subprocess.run([sys.executable, "-m", "bench.bench_evtx", "--child", kind, *map(str, paths)], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def row(name: str, r: dict) -> str:
    return (f"| {name} | {r['records']:,} | {r['bytes'] / 1e6:,.0f} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
            f"{r['records'] / r['seconds'] / 1e3:,.0f} k | {r['records'] / r['cpu_seconds'] / 1e3:,.0f} k | "
            f"{r['peak_rss_mb']:,.0f} + {r['workers_rss_mb']:,.0f} | {r['dead']:,} |")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2], sys.argv[3:])))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=20, help="copies of the corpus's records (10,015 each)")
    ap.add_argument("--per-file", type=int, default=5, help="copies per EVTX file")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    big = build(args.copies, args.per_file)
    small = sorted(CORPUS.rglob("*.evtx"))
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at the start\n")
    print("| run | records | MB | s | CPU s | records/s | records/CPU-s | peak RSS MB (+ workers) | dead |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, paths in ((f"{len(big)} files of {args.per_file * 10_015:,} records", big),
                         (f"{len(small)} corpus files as they are", small)):
        for kind in ("soc", "soc1", "evtx"):
            runs = sorted((child(kind, paths) for _ in range(args.repeat)), key=lambda r: r["seconds"])
            mid = runs[len(runs) // 2]
            spread = ", ".join(f"{r['records'] / r['seconds'] / 1e3:.0f}" for r in runs)
            name = {"soc": "soc, to typed frames, 1 worker (SOC_EVTX_PROCESSES=2)",
                    "soc1": "soc, one process (SOC_EVTX_PROCESSES=1)",
                    "evtx": "evtx package alone (records_json)"}[kind]
            print(row(f"{label}: {name} (median; k records/s: {spread})", mid), flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
