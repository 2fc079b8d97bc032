"""Sliding-window count with a threshold (the kernel under brute-force detectors and Sigma event_count).

    python -m bench.bench_windows [--events N] [--keys K] [--window-s S] [--threshold T] [--polars-events M]
                                  [--only soc soc-shuffled numpy polars]

Data: ``--events`` events (default 100 M) over one day, time-sorted like a log (int64 microseconds, random
gaps), each from one of ``--keys`` group keys (int32, uniform); the condition is ">= threshold events of a
key within the window". Each measurement runs in its own process (its own peak RSS, ``VmHWM``), with data
generation and the JIT outside the timed part:

- ``soc``: ``windows.order`` (a counting sort by key; time is already sorted) + gather, then the per-event
  ``window_count`` + threshold, and the fused ``count_episodes`` (count, threshold, alerts in one pass).
  Figures are given without the ordering (arrays already ordered by key and time) and with it. Also
  ``threshold_episodes``: the same alerts straight from the time-ordered input (a per-key ring, no sort).
- ``soc-shuffled``: the same events in random time order (the ordering adds a stable argsort by time).
- ``numpy``: the simple baseline: one composite int64 (key << 40 | time), ``np.argsort`` (stable), then
  ``np.searchsorted`` for every window start; without / with its sort, as for soc.
- ``polars``: ``DataFrame.rolling(period, group_by=key).agg(len)`` on the first ``--polars-events`` events.

Every run prints a checksum (sum of window counts, events over the threshold): they must agree.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.harness import ROOT, Timer, events, machine

KINDS = ["soc", "soc-shuffled", "numpy", "polars"]


def measure(kind: str, n: int, keys: int, span: int, threshold: int) -> dict:
    """One measurement in this process (the child)."""
    import numpy as np

    from bench._child import peak_rss_mb

    _, key, times = events(n, keys)
    if kind == "soc-shuffled":
        shuffle = np.random.default_rng(2).permutation(n)
        key, times = key[shuffle], times[shuffle]
        del shuffle
    out: dict = {"events": n}
    if kind.startswith("soc"):
        from soc.detect import windows

        _, small_k, small_t = events(10_000, 100)  # compile (or load the Numba cache) outside the timed part
        _, sk, st = windows.order(small_k, small_t)
        windows.order(small_k[::-1].copy(), small_t[::-1].copy())
        windows.window_count(sk, st, span)
        windows.count_episodes(sk, st, span, windows.GTE, float(threshold))

        windows.threshold_episodes(small_k, small_t, span, threshold, 100)
        if kind == "soc":  # logs come in time order: the ring kernel needs no sort at all
            with Timer() as ring:
                ring_episodes = windows.threshold_episodes(key, times, span, threshold, keys)
            out.update(ring=vars(ring), ring_episodes=int(ring_episodes[0].size))
        with Timer() as order:
            perm, k, t = windows.order(key, times, keys)
        del perm, key, times
        with Timer() as count:
            counts = windows.window_count(k, t, span)
            over = int(np.count_nonzero(counts >= threshold))
        with Timer() as fused:
            trig, first, last, value = windows.count_episodes(k, t, span, windows.GTE, float(threshold))
        out.update(order=vars(order), count=vars(count), fused=vars(fused), checksum=int(counts.sum()),
                   over=over, episodes=int(trig.size))
    elif kind == "numpy":
        with Timer() as order:
            composite = (key.astype(np.int64) << 40) | (times - times.min())
            perm = np.argsort(composite, kind="stable")
            composite = composite[perm]
        del perm, key, times
        with Timer() as count:
            starts = np.searchsorted(composite, composite - span, side="left")
            counts = np.arange(n) - starts + 1
            over = int(np.count_nonzero(counts >= threshold))
        out.update(order=vars(order), count=vars(count), checksum=int(counts.sum()), over=over)
    else:
        import polars as pl

        frame = pl.DataFrame({"key": key, "t": times}).with_columns(pl.col("t").cast(pl.Datetime("us")))
        with Timer() as count:  # rolling sorts by key itself: its time includes the ordering
            res = frame.rolling("t", period=f"{span // 1_000_000}s", closed="both", group_by="key").agg(
                pl.len().alias("n"))
            over = int((res["n"] >= threshold).sum())
        out.update(order={"wall": 0.0, "cpu": 0.0}, count=vars(count), checksum=int(res["n"].sum()), over=over)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def child(kind: str, n: int, args) -> dict:
    cmd = [sys.executable, "-m", "bench.bench_windows", "--child", kind, "--events", str(n), "--keys",
           str(args.keys), "--window-s", str(args.window_s), "--threshold", str(args.threshold)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def rate(n: int, seconds: float) -> str:
    return f"{n / max(seconds, 1e-9) / 1e6:,.1f} M"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--window-s", type=int, default=3600)
    ap.add_argument("--threshold", type=int, default=60)
    ap.add_argument("--polars-events", type=int, default=20_000_000)
    ap.add_argument("--only", nargs="*", default=KINDS, choices=KINDS, help="measurements to run")
    ap.add_argument("--child", default=None)
    args = ap.parse_args()
    span = args.window_s * 1_000_000
    if args.child:
        print(json.dumps(measure(args.child, args.events, args.keys, span, args.threshold)))
        return

    print(f"machine: {machine()}; {args.events:,} events, {args.keys:,} keys, window {args.window_s} s, "
          f"threshold >= {args.threshold}\n")
    print("| run | events | ordering s | window s | events/s, ordered input | events/s, with ordering | "
          "same, per CPU-second | peak RSS MB | checksum: sum of counts / events over threshold |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---|")
    results = {}
    for kind in args.only:
        n = min(args.polars_events, args.events) if kind == "polars" else args.events
        r = child(kind, n, args)
        results[kind] = r
        steps = [("window count + threshold", r["count"])]
        if "fused" in r:
            steps.append((f"fused count_episodes ({r['episodes']:,} episodes)", r["fused"]))
        for name, step in steps:
            o = r["order"]
            print(f"| {kind}: {name} | {n:,} | {o['wall']:.2f} | {step['wall']:.2f} | {rate(n, step['wall'])} | "
                  f"{rate(n, o['wall'] + step['wall'])} | {rate(n, step['cpu'])} / {rate(n, o['cpu'] + step['cpu'])}"
                  f" | {r['peak_rss_mb']:,.0f} | {r['checksum']:,} / {r['over']:,} |")
    if "soc" not in results:
        return
    soc = results["soc"]
    ring = soc["ring"]
    print(f"| soc: threshold_episodes, time-ordered input, no ordering ({soc['ring_episodes']:,} episodes) | "
          f"{args.events:,} | - | {ring['wall']:.2f} | {rate(args.events, ring['wall'])} | "
          f"{rate(args.events, ring['wall'])} | {rate(args.events, ring['cpu'])} | {soc['peak_rss_mb']:,.0f} | "
          f"episodes equal to count_episodes: {soc['ring_episodes'] == soc['episodes']} |")
    if not {"numpy", "soc-shuffled", "polars"} <= set(results):
        return
    base, shuffled = results["numpy"], results["soc-shuffled"]
    agree = (soc["checksum"], soc["over"]) == (base["checksum"], base["over"]) == (shuffled["checksum"],
                                                                                   shuffled["over"])

    def total(r: dict) -> float:
        return r["order"]["wall"] + r["count"]["wall"]

    print(f"\nspeed-up over the NumPy baseline: x{base['count']['wall'] / soc['count']['wall']:.1f} on ordered "
          f"input, x{total(base) / total(soc):.1f} with ordering; checksums of soc, soc-shuffled and NumPy agree: "
          f"{agree}")
    n_pol = min(args.polars_events, args.events)
    print(f"speed-up over Polars rolling (per event; Polars on {n_pol:,} events): "
          f"x{(total(results['polars']) / n_pol) / (total(soc) / args.events):.1f} with ordering")


if __name__ == "__main__":
    main()
