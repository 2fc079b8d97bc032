"""Sigma hunt throughput: every SigmaHQ rule over the EVTX corpora, with and without the literal prefilter.

The EVTX files of ../shared/corpora (evtx-to-mitre-attack and the Sigma regression data) are parsed once by
our pipeline (parsing is measured in bench_evtx.py); the frames are then replicated in memory to at least
``--events`` and fed to ``Hunter`` frame by frame. Each measurement runs in a fresh child process (its own
peak RSS): the prefilter (the default hunt) and the baseline that evaluates every rule on every row, in the
same run. The clock includes building the rules' expressions: the hunter builds a rule's only when the literals it
requires are in the frame (and once per rule and columns), so that is part of the work.
A third run feeds the frames as the pipeline made them (one per file and event id, mostly tens of rows), copy
after copy, as a stream would: ``Hunter.feed`` batches small frames of one key and schema.

    python -m bench.bench_sigma [--events 1000000] [--baseline-events 200000] [--stream-events 200000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
RULE_DIRS = ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-placeholder")


class _KeepFrames:
    def __init__(self):
        self.frames: dict = {}

    def write(self, source_path, family, dataset, frame):
        self.frames.setdefault((family, dataset), []).append(frame)

    def write_dead(self, source_path, dead): ...
    def close_source(self, source_path): ...
    def close(self): ...


def measure(events: int, prefilter: bool, stream: bool = False) -> dict:
    import polars as pl

    from bench._child import peak_rss_mb
    from soc import pipeline
    from soc.sigma.hunt import Hunter
    from soc.sigma.loader import load
    from soc.sources import discover

    files = sorted(str(p) for p in (CORPORA / "evtx").rglob("*.evtx"))
    files += sorted(str(p) for p in (CORPORA / "sigma" / "regression_data").rglob("*.evtx"))
    sink = _KeepFrames()
    stats = pipeline.run(discover(files), sink)
    parsed = sum(s.parsed for s in stats)
    copies = -(-events // parsed)
    if stream:  # the frames as the pipeline made them (one per file and event id, mostly tens of rows), copies times
        feeds = [(key, frame) for _ in range(copies) for key, parts in sink.frames.items() for frame in parts]
    else:
        feeds = [(key, pl.concat(parts * copies, how="diagonal_relaxed").rechunk())
                 for key, parts in sink.frames.items()]
    ruleset = load([CORPORA / "sigma" / d for d in RULE_DIRS])
    hunter = Hunter(ruleset, prefilter)
    start = time.perf_counter()
    for key, frame in feeds:
        hunter.feed(key, frame)
    matches = hunter.matches()  # evaluates the frames still waiting for more rows (Hunter.batch_rows)
    seconds = time.perf_counter() - start
    return {"files": len(files), "parsed": parsed, "copies": copies, "events": hunter.events, "frames": len(feeds),
            "rules": len(ruleset.rules), "seconds": seconds,
            "matches": matches.height, "rules_fired": matches.get_column("rule.id").n_unique(),
            "failures": len(hunter.failures), "peak_rss_mb": peak_rss_mb()}


def child(events: int, prefilter: bool, stream: bool = False) -> dict:
    res = subprocess.run([sys.executable, "-m", "bench.bench_sigma", "--child", str(events), str(int(prefilter)),
                          str(int(stream))],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--baseline-events", type=int, default=200_000,
                    help="events for the run without the prefilter (it is slow; its rate is per event)")
    ap.add_argument("--stream-events", type=int, default=200_000,
                    help="events for the run that feeds the frames as parsed (small), copy after copy (0: skip)")
    ap.add_argument("--child", nargs=3, metavar=("EVENTS", "PREFILTER", "STREAM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), bool(int(args.child[1])), bool(int(args.child[2])))))
        return
    from bench.harness import machine

    print(f"# Sigma hunt, {machine()}")
    rows = [("prefilter (default)", child(args.events, True)), ("every rule on every row", child(args.baseline_events,
                                                                                                  False))]
    if args.stream_events:
        rows.append(("prefilter, frames as parsed (small, batched by Hunter.feed)", child(args.stream_events, True,
                                                                                           True)))
    print("| run | events | rules | frames fed | matches | rules fired | hunt s | events/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['events']:,} | {r['rules']:,} | {r['frames']} | {r['matches']:,} | {r['rules_fired']} | "
              f"{r['seconds']:.2f} | {r['events'] / r['seconds']:,.0f} | "
              f"{r['peak_rss_mb']:,.0f} |")
    fast, slow = (r["events"] / r["seconds"] for _, r in rows[:2])
    print(f"\nprefilter speed-up: {fast / slow:.1f}x events/s; failures: {rows[0][1]['failures']}, "
          f"{rows[1][1]['failures']}; matches per copy: {rows[0][1]['matches'] / rows[0][1]['copies']:,.0f} vs "
          f"{rows[1][1]['matches'] / rows[1][1]['copies']:,.0f}")


if __name__ == "__main__":
    main()
