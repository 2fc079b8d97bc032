"""A whole scheduled run against a hunt of the new lines alone: issue 20's goal, end to end.

    python -m bench.bench_jobs [--gb 5] [--files 500] [--new-mb 10] [--grown 50] [--rounds 2]

Issue 20's goal: a job over 5 GB already read plus 10 MB new takes at most twice the time of hunting the 10 MB
alone; and what the job keeps between runs, and the peak RSS of a run. Each side is a fresh ``soc`` process
(start-up, imports and rule loading included), run alternately:

- ``hunt``: ``soc hunt NEW --no-es`` over the 10 MB of new lines as one file, with soc's rules and detectors;
- ``job``: ``soc jobs run-once`` of a job over ``--files`` files of ``--gb`` GB in all (sparse, their
  checkpoints seeded at their end by ``bench.bench_jobs_read``), ``--grown`` of which had the same 10 MB
  appended: plan, hunt with the job's state, alerts to the store, checkpoints and state committed.

Both read the same lines with the same rules and detectors. The job starts from an empty detector state (its
first run after the seeded read); what it keeps afterwards (checkpoint registry, state) is reported in bytes
and rows. CPU and peak RSS are the child's own (``os.wait4``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_jobs_read import prepare, reset
from bench.harness import DATA, ROOT, machine


def _run(args: list[str]) -> dict:
    """A fresh ``soc`` process: wall, CPU (user + sys) and peak RSS of that process, its output."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "soc", *args], cwd=ROOT, stdout=out, stderr=err,
                                env={**os.environ, "SOC_CONFIG": ""})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"soc {' '.join(args)}: exit {proc.returncode}: {errors[-2000:]}")
    return {"seconds": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "stdout": text}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def job_side(setup: dict, new: bytes, root: Path) -> dict:
    """The job's folder seeded with the registry of the files read, the files grown, one run-once."""
    reset(setup, new)
    data = root / "data"
    shutil.rmtree(data, ignore_errors=True)
    gen = data / "jobs" / "web" / "gen-00000001"
    gen.mkdir(parents=True)
    shutil.copy(Path(setup["registry"]).with_suffix(".seed"), gen / "checkpoints.json")
    (data / "jobs" / "web" / "CURRENT").write_text("gen-00000001\n")
    config = root / "soc.toml"
    config.write_text(f'data_dir = "{data}"\n[[jobs]]\nname = "web"\ninputs = ["{setup["folder"]}/host*/access.log"]\n'
                      'every = "5m"\nelasticsearch = false\n', encoding="utf-8")
    r = _run(["jobs", "run-once", "web", "--config", str(config), "--json"])
    record = json.loads(r.pop("stdout"))
    folder = data / "jobs" / "web" / (data / "jobs" / "web" / "CURRENT").read_text().strip()
    r.update(lines=record["records"], alerts=record["alerts"], matches=record["matches"], hits=record["hits"],
             state_rows=record.get("state", {}), registry_bytes=(folder / "checkpoints.json").stat().st_size,
             state_bytes=_size(folder / "state"), run_seconds=record["seconds"])
    return r


def hunt_side(setup: dict, root: Path) -> dict:
    data = root / "hunt"
    shutil.rmtree(data, ignore_errors=True)
    r = _run(["hunt", setup["alone"], "--data-dir", str(data), "--no-es", "--json"])
    report = json.loads(r.pop("stdout"))
    r.update(lines=sum(f["read"] for f in report["files"]), alerts=report["alerts"]["alerts"],
             matches=report["sigma"]["matches"], hits=report["detectors"]["hits"])
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=5.0)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--new-mb", type=float, default=10.0)
    ap.add_argument("--grown", type=int, default=50, help="How many of the files the new lines go to.")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    setup = prepare(args.gb, args.files, args.new_mb, min(args.grown, args.files))
    new = Path(setup["alone"]).read_bytes()
    reset(setup, new)  # keeps the seeded registry aside (.seed) the first time
    root = DATA / "jobs-bench"
    root.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}\nalready read: {args.files} files, {args.gb:g} GB (sparse); new: "
          f"{len(new) / 1e6:.1f} MB appended to {setup['grown']} of them")
    print("| run | wall s | CPU s | peak RSS MB | lines | matches | detector hits | alerts |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    results: dict[str, list[dict]] = {"hunt": [], "job": []}
    for _ in range(args.rounds):
        for kind in results:
            r = hunt_side(setup, root) if kind == "hunt" else job_side(setup, new, root)
            results[kind].append(r)
            print(f"| {kind} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['peak_rss_mb']:.0f} | {r['lines']:,} | "
                  f"{r['matches']:,} | {r['hits']:,} | {r['alerts']:,} |")
    job = results["job"][-1]
    same = {(r["lines"], r["matches"], r["hits"], r["alerts"]) for v in results.values() for r in v}
    best = {k: min(r["seconds"] for r in v) for k, v in results.items()}
    cpu = {k: min(r["cpu"] for r in v) for k, v in results.items()}
    print(f"\nbest of {args.rounds} (goal: job at most 2x hunt): job / hunt {best['job'] / best['hunt']:.2f}x wall, "
          f"{cpu['job'] / cpu['hunt']:.2f}x CPU; same lines, matches, hits, alerts: {len(same) == 1}")
    print(f"kept between runs: registry {job['registry_bytes'] / 1e3:.0f} kB ({args.files} files), state "
          f"{job['state_bytes'] / 1e3:.0f} kB ({json.dumps(job['state_rows'])}); peak RSS of a run "
          f"{max(r['peak_rss_mb'] for r in results['job']):.0f} MB")


if __name__ == "__main__":
    main()
