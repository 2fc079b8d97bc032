"""A job's incremental read: planning over many files already read, then reading only what was appended.

    python -m bench.bench_jobs_read [--gb 5] [--files 500] [--new-mb 10] [--grown 50] [--rounds 2]

Issue 20's goal: a job over 5 GB already read plus 10 MB new takes at most twice the time of hunting the
10 MB alone. Here, the reading part of it, each side in a fresh process (start-up and imports included):

- ``alone``: the pipeline (sniff + parse, counting sink) over one file of the 10 MB of new lines;
- ``pieces``: the same over the same lines as ``--grown`` files, the pieces appended to each file (the
  pipeline's fixed cost per input, a few ms, is paid per file: this is what the job must be compared with
  when the new lines are spread over many files);
- ``job``: ``Checkpoints.load`` -> ``plan`` over ``--files`` files of ``--gb`` GB in all, ``--grown`` of them
  with the 10 MB appended since their checkpoint -> the pipeline over the plan's sources -> ``advance`` +
  ``save``. The same lines, so the same parsing work; the difference is what planning and resuming cost.

The files already read are sparse (SOC_BENCH_DIR, default /tmp/soc-bench/jobs-read): real access-log lines
at their head and tail, a hole between, and their checkpoints seeded at their end (what a full run leaves),
so the 5 GB take no disk and no time to make; a run never reads below a checkpoint, so what the hole holds
does not matter (the test suite checks that what a resumed run reads is right). The appended lines come
from the generated web access log. Between rounds the files are put back (truncated to their seeded size).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import DATA, ROOT, generated, machine

EDGE = 8 << 10  # real bytes at the head and at the tail of every sparse file


def prepare(gb: float, files: int, new_mb: float, grown: int) -> dict:
    """Make (once) the sparse files and their seeded registry, the 10 MB of new lines, and the alone file."""
    folder = DATA / f"jobs-read-{gb:g}GB-{files}"
    lines_src = generated("gen_web", 1_000_000)
    with open(lines_src, "rb") as fh:
        head = fh.read(EDGE)
        head = head[: head.rfind(b"\n") + 1]
        new = fh.read(int(new_mb * 1e6))
    new = new[new.find(b"\n") + 1: new.rfind(b"\n") + 1]
    size = int(gb * 1e9) // files
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"host{i:04d}" / "access.log" for i in range(files)]
    registry = folder / "registry.json"
    if not registry.exists():
        from soc.jobs.checkpoints import Checkpoints, Entry

        entries = []
        for i, path in enumerate(paths):
            path.parent.mkdir(exist_ok=True)
            line = head[: head.find(b"\n") + 1]
            first = line.replace(b" /", b" /host%d/" % i, 1) + head  # each file its own first bytes (fingerprint)
            with open(path, "wb") as out:
                out.write(first)
                out.seek(size - len(head))
                out.write(head)
            st = path.stat()
            fp = first[:1024]
            entries.append(Entry(str(path), st.st_dev, st.st_ino, hashlib.sha256(fp).hexdigest(), len(fp),
                                 offset=size, line=size // 180, size=size, mtime=st.st_mtime, format="web_access"))
        Checkpoints(registry, entries).save()
    alone = folder / "new.log"
    if not alone.exists() or alone.stat().st_size != len(new):
        alone.write_bytes(new)
    pieces = folder / "new"  # the same lines as the files they are appended to: one file each
    pieces.mkdir(exist_ok=True)
    for old in pieces.glob("*.log"):
        old.unlink()
    for k, part in enumerate(_split(new, grown)):
        (pieces / f"part{k:04d}.log").write_bytes(part)
    return {"folder": str(folder), "paths": [str(p) for p in paths], "size": size, "grown": grown,
            "registry": str(registry), "alone": str(alone), "pieces": str(pieces)}


def _split(new: bytes, parts: int) -> list[bytes]:
    lines = new.splitlines(keepends=True)
    per = -(-len(lines) // parts)
    return [b"".join(lines[k * per: (k + 1) * per]) for k in range(parts)]


def reset(setup: dict, new: bytes) -> None:
    """Files back to their seeded size, then the new lines appended to ``grown`` of them (line-aligned)."""
    for path in setup["paths"]:
        os.truncate(path, setup["size"])
    for path, part in zip(setup["paths"], _split(new, setup["grown"]), strict=False):
        with open(path, "ab") as out:
            out.write(part)
    saved = Path(setup["registry"]).with_suffix(".seed")
    if saved.exists():
        Path(setup["registry"]).write_bytes(saved.read_bytes())
    else:
        saved.write_bytes(Path(setup["registry"]).read_bytes())


def measure(kind: str, setup: dict) -> dict:
    """One side, in this (fresh) process."""
    t0, c0 = time.perf_counter(), time.process_time()
    from soc import pipeline
    from soc.jobs.checkpoints import Checkpoints

    out: dict = {"kind": kind}
    if kind == "alone":  # the new lines as one file
        path = setup["alone"]
        stats = pipeline.run([pipeline.Source(path, os.path.getsize(path), None)])
    elif kind == "pieces":  # the new lines as the files they were appended to, each alone
        stats = pipeline.run([pipeline.Source(str(p), p.stat().st_size, None)
                              for p in sorted(Path(setup["pieces"]).glob("*.log"))])
    else:
        cp = Checkpoints.load(setup["registry"])
        p0 = time.perf_counter()
        plan = cp.plan([setup["folder"] + "/host*/access.log"])
        out["plan_seconds"] = time.perf_counter() - p0
        out["sources"] = len(plan.sources)
        stats = pipeline.run(plan.sources)
        a0 = time.perf_counter()
        cp.advance(plan, stats)
        cp.save()
        out["advance_save_seconds"] = time.perf_counter() - a0
        out["registry_bytes"] = os.path.getsize(setup["registry"])
    out.update(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0,
               lines=sum(s.read for s in stats), bytes=sum(s.bytes for s in stats),
               dead=sum(s.dead for s in stats),
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def child(kind: str, setup: dict) -> dict:
    spec = Path(setup["folder"]) / "setup.json"  # many files' paths: too long for a command line
    spec.write_text(json.dumps(setup))
    res = subprocess.run([sys.executable, "-m", "bench.bench_jobs_read", "--child", kind, str(spec)],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=5.0)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--new-mb", type=float, default=10.0)
    ap.add_argument("--grown", type=int, default=50, help="How many of the files the new lines go to.")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], json.loads(Path(args.child[1]).read_text()))))
        return
    setup = prepare(args.gb, args.files, args.new_mb, min(args.grown, args.files))
    new = Path(setup["alone"]).read_bytes()
    print(f"machine: {machine()}\nalready read: {args.files} files, {args.gb:g} GB (sparse); new: "
          f"{len(new) / 1e6:.1f} MB appended to {setup['grown']} of them")
    print("| run | wall s | CPU s | lines | MB/s (wall) | peak RSS MB | plan s | advance+save s |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    results: dict[str, list[dict]] = {"alone": [], "pieces": [], "job": []}
    for _ in range(args.rounds):
        for kind in results:
            reset(setup, new)
            r = child(kind, setup)
            results[kind].append(r)
            print(f"| {kind} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['lines']:,} | "
                  f"{r['bytes'] / 1e6 / r['seconds']:.0f} | {r['peak_rss_mb']:.0f} | "
                  f"{r.get('plan_seconds', 0):.3f} | {r.get('advance_save_seconds', 0):.3f} |")
    job = results["job"]
    assert all(r["lines"] == job[0]["lines"] and r["dead"] == job[0]["dead"] for v in results.values() for r in v), \
        "the job did not read exactly the new lines"
    best = {k: min(r["seconds"] for r in v) for k, v in results.items()}
    cpu = {k: min(r["cpu"] for r in v) for k, v in results.items()}
    print(f"\nbest of {args.rounds} (goal: job at most 2x alone): job / alone {best['job'] / best['alone']:.2f}x wall, "
          f"{cpu['job'] / cpu['alone']:.2f}x CPU; job / pieces {best['job'] / best['pieces']:.2f}x wall, "
          f"{cpu['job'] / cpu['pieces']:.2f}x CPU; registry kept between runs: "
          f"{job[-1]['registry_bytes'] / 1e3:.0f} kB for {args.files} files")


if __name__ == "__main__":
    main()
