"""Every detection kernel on N events (default 50 M), against the best plain-Polars formulation, same run.

    python -m bench.bench_detect [--events N] [--keys K] [--polars-events M] [--only KERNEL ...] [--path P]

Data: ``--events`` events over one day in time order (int64 microseconds), keys uniform over ``--keys``
dense ids (int32), values uniform over 1,000 ids (distinct) or bytes (sum). Each measurement runs in its own
process (own peak RSS, VmHWM); the JIT (cached) and data generation are outside the timed part; the
process first touches as much memory as the run needs (on this VM the first touch of fresh memory costs
~200 MB/s, which would otherwise dominate both sides). Timed: soc = ordering (``windows.order``) + kernel;
for count, distinct and sum the default soc path is the streaming kernels the detectors run (``windows.stream_*``:
time-ordered input, no ordering, contiguous parts in threads, one per Numba thread, so ``NUMBA_NUM_THREADS=1`` gives the
single-thread figure), ``--path order`` times ``order`` + ``window_*`` instead; the table says which ran.
Polars = its whole formulation (which sorts for itself). Polars runs on ``--polars-events`` events when N is
too much for it (a fifth of that for entropy, whose Polars formulation explodes every string into its
characters); the ratio is per event. Checksums show both computed the same thing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.harness import DAY_US, ROOT, Timer, events, machine

SPAN = 300 * 1_000_000
KERNELS = ["count", "distinct", "sum", "periodicity", "entropy", "rise_drop", "first_seen"]


def _strings(rng, n: int):
    """n DNS-like names as an Arrow large_string array: 1 in 100 a 40-char random label, else a word."""
    import numpy as np
    import pyarrow as pa

    words = [b"www.google.com", b"dichvucong.gov.vn", b"mail.example.gov.vn", b"update.microsoft.com"]
    lengths = np.array([len(w) for w in words] + [52], np.int64)
    pick = np.where(rng.random(n) < 0.01, 4, rng.integers(0, 4, n))
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths[pick], out=offsets[1:])
    data = np.empty(offsets[-1], np.uint8)
    for w, word in enumerate(words):
        rows = np.flatnonzero(pick == w)
        buf = np.frombuffer(word, np.uint8)
        data[(offsets[rows][:, None] + np.arange(buf.size)).ravel()] = np.tile(buf, rows.size)
    rows = np.flatnonzero(pick == 4)
    tail = np.frombuffer(b".t.example", np.uint8)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", np.uint8)
    data[(offsets[rows][:, None] + np.arange(42)).ravel()] = alphabet[rng.integers(0, 32, rows.size * 42)]
    data[(offsets[rows][:, None] + 42 + np.arange(tail.size)).ravel()] = np.tile(tail, rows.size)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def warm_memory(nbytes: int) -> None:
    import numpy as np

    buf = np.ones(nbytes // 8, np.int64)
    del buf


def soc_run(kernel: str, n: int, keys: int, path: str = "stream") -> dict:
    import numpy as np

    from soc.detect import kernels as K
    from soc.detect import windows as W

    rng, key, times = events(n, keys)
    values = rng.integers(0, 1000, n, dtype=np.int64)
    small = slice(0, 5000)
    _, sk, st = W.order(key[small], times[small], keys)  # JIT (or cache load) outside the timed part
    out: dict = {}
    if kernel in ("count", "distinct", "sum") and path == "stream":
        fv = values.astype(np.float64)
        run = {"count": lambda: W.stream_count(key, times, SPAN, keys),
               "distinct": lambda: W.stream_distinct(key, times, values, SPAN, keys),
               "sum": lambda: W.stream_sum(key, times, fv, SPAN, keys)[0]}[kernel]
        {"count": lambda: W.stream_count(key[small], times[small], SPAN, keys),  # JIT / cache load
         "distinct": lambda: W.stream_distinct(key[small], times[small], values[small], SPAN, keys),
         "sum": lambda: W.stream_sum(key[small], times[small], fv[small], SPAN, keys)}[kernel]()
        with Timer() as t:
            c = run()
        out["checksum"] = float(c.sum()) if kernel == "sum" else int(c.sum())
        out["path"] = f"stream, {len(W._parts(times, SPAN, None))} part(s)"
        plan = W._bucket_plan(times, SPAN, int(values.max()) + 1) if kernel == "distinct" else None
        if plan is not None:
            out["path"] = f"stream, key buckets of {1 << plan[1]}"
    elif kernel == "count":
        W.count_episodes(sk, st, SPAN, W.GTE, 1000.0)
        with Timer() as t:
            _, k, ts = W.order(key, times, keys)
            c = W.window_count(k, ts, SPAN)
        out["checksum"] = int(c.sum())
    elif kernel == "distinct":
        W.window_distinct(sk, st, values[small], 1000, SPAN)
        with Timer() as t:
            perm, k, ts = W.order(key, times, keys)
            c = W.window_distinct(k, ts, values[perm], 1000, SPAN)
        out["checksum"] = int(c.sum())
    elif kernel == "sum":
        fv = values.astype(np.float64)
        W.window_sum(sk, st, fv[small], SPAN)
        with Timer() as t:
            perm, k, ts = W.order(key, times, keys)
            s, _ = W.window_sum(k, ts, fv[perm], SPAN)
        out["checksum"] = float(s.sum())
    elif kernel == "periodicity":
        K.periodicity(sk, st)
        with Timer() as t:
            _, k, ts = W.order(key, times, keys)
            res = K.periodicity(k, ts)
        out["checksum"] = round(float(np.nansum(res[5])), 3)
    elif kernel == "entropy":
        arr = _strings(rng, n)
        _, offs, data = arr.buffers()
        offs, data = np.frombuffer(offs, np.int64), np.frombuffer(data, np.uint8)
        valid = np.ones(n, np.bool_)
        K.string_stats(offs[:101], data, valid[:100], K.LONGEST_LABEL)
        with Timer() as t:
            length, ent = K.string_stats(offs, data, valid, K.LONGEST_LABEL)
            hits = int(np.count_nonzero((ent >= 3.5) & (length >= 24)))
        out["checksum"] = hits
    elif kernel == "rise_drop":
        bucket = 300 * 1_000_000
        K.rise_drop(np.zeros(3, np.int64), np.arange(3, dtype=np.int64), np.ones(3), 5, 0.3, 1, 1.0)
        with Timer() as t:  # events -> counts per (key, bucket), then the per-key series kernel
            b = (times - times[0]) // bucket
            combo = key.astype(np.int64) * (int(b[-1]) + 1) + b
            ids, counts = np.unique(combo, return_counts=True)
            kk, bb = ids // (int(b[-1]) + 1), ids % (int(b[-1]) + 1)
            res = K.rise_drop(kk, bb, counts.astype(np.float64), int(b[-1]), 0.3, 6, 1.0)
        out["checksum"] = round(float(res[3].sum()), 1)
    else:  # first_seen
        pairs = key.astype(np.int64) * 1000 + values
        K.first_seen(pairs[small], key[small].astype(np.int64), times[small], 1000 * keys, keys, times[0])
        with Timer() as t:
            rows = K.first_seen(pairs, key.astype(np.int64), times, 1000 * keys, keys, times[0] + DAY_US // 4)
        out["checksum"] = int(rows.size)
    out.setdefault("path", {"entropy": "kernel", "first_seen": "kernel", "rise_drop": "np.unique + kernel"}
                   .get(kernel, "order + kernel"))
    out["wall"], out["cpu"] = t.wall, t.cpu
    return out


def polars_run(kernel: str, n: int, keys: int) -> dict:
    import numpy as np
    import polars as pl

    rng, key, times = events(n, keys)
    values = rng.integers(0, 1000, n, dtype=np.int64)
    df = pl.DataFrame({"k": key, "t": pl.Series(times).cast(pl.Datetime("us")), "v": values})
    period = f"{SPAN // 1_000_000}s"
    out: dict = {}
    with Timer() as t:
        if kernel in ("count", "distinct", "sum"):
            agg = {"count": pl.len(), "distinct": pl.col("v").n_unique(), "sum": pl.col("v").sum()}[kernel]
            res = df.rolling("t", period=period, closed="both", group_by="k").agg(agg.alias("x"))
            out["checksum"] = float(res["x"].sum()) if kernel == "sum" else int(res["x"].sum())
        elif kernel == "periodicity":
            gaps = df.sort("k", "t").with_columns(pl.col("t").diff().over("k").dt.total_microseconds().alias("g"))
            res = gaps.group_by("k").agg((pl.col("g").std(ddof=0) / pl.col("g").mean()).alias("cv"),
                                         ((pl.col("g") - pl.col("g").median()).abs().median() / pl.col("g").median())
                                         .alias("mad"))
            out["checksum"] = round(float(res["cv"].fill_nan(None).sum()), 3)
        elif kernel == "entropy":
            s = pl.Series("s", _strings(rng, n))
            lab = pl.DataFrame({"s": s}).with_row_index("r").with_columns(pl.col("s").str.split(".")).explode("s")
            lab = lab.with_columns(pl.col("s").str.len_bytes().alias("n")).sort("r", "n", descending=[False, True])
            best = lab.group_by("r", maintain_order=True).first()
            chars = best.with_columns(pl.col("s").str.split("")).explode("s").group_by("r", "s").len()
            ent = chars.with_columns((pl.col("len") / pl.col("len").sum().over("r")).alias("p")).group_by("r").agg(
                (-(pl.col("p") * pl.col("p").log(2)).sum()).alias("e"))
            res = best.join(ent, on="r")
            out["checksum"] = int(((res["e"] >= 3.5) & (res["n"] >= 24)).sum())
        elif kernel == "rise_drop":
            b = df.with_columns(((pl.col("t").dt.epoch("us") - times[0]) // 300_000_000).alias("b"))
            counts = b.group_by("k", "b").len().sort("k", "b")
            last = int(counts["b"].max())
            full = counts.group_by("k").agg(pl.int_range(pl.col("b").min(), last + 1).alias("b")).explode("b")
            series = full.join(counts, on=["k", "b"], how="left").with_columns(pl.col("len").fill_null(0))
            series = series.sort("k", "b").with_columns(
                pl.col("len").cast(pl.Float64).ewm_mean(alpha=0.3, adjust=False).shift(1).over("k").alias("base"),
                pl.int_range(pl.len()).over("k").alias("i"))
            out["checksum"] = round(float(series.filter(pl.col("i") >= 6)["base"].sum()), 1)
        else:
            cut = times[0] + DAY_US // 4
            known = df.filter(pl.col("t").dt.epoch("us") <= cut).select("k").unique()
            first = df.filter(pl.struct("k", "v").is_first_distinct())
            res = first.filter(pl.col("t").dt.epoch("us") > cut).join(known, on="k", how="semi")
            out["checksum"] = int(res.height)
    out["wall"], out["cpu"] = t.wall, t.cpu
    return out


def child(kind: str, kernel: str, n: int, keys: int, path: str = "stream") -> dict:
    cmd = [sys.executable, "-m", "bench.bench_detect", "--child", kind, "--only", kernel, "--events", str(n),
           "--keys", str(keys), "--path", path]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--polars-events", type=int, default=10_000_000)
    ap.add_argument("--only", nargs="*", default=KERNELS, choices=KERNELS)
    ap.add_argument("--path", choices=["stream", "order"], default="stream",
                    help="soc path for count, distinct, sum: streaming kernels or order + window kernel")
    ap.add_argument("--child", choices=["soc", "polars"])
    args = ap.parse_args()
    if args.child:
        from bench._child import peak_rss_mb

        warm_memory(args.events * 48)
        if args.child == "soc":
            out = soc_run(args.only[0], args.events, args.keys, args.path)
        else:
            out = polars_run(args.only[0], args.events, args.keys)
        out["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(out))
        return
    print(f"machine: {machine()}; {args.events:,} events, {args.keys:,} keys, window {SPAN // 1_000_000} s\n")
    print("| kernel | soc path | soc events | soc s (wall / CPU) | soc events/s (wall / per CPU-s) | soc peak RSS MB | "
          "Polars events | Polars s (wall / CPU) | Polars events/s | Polars peak RSS MB | ratio (per event, wall) "
          "| checksums equal |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for kernel in args.only:
        s = child("soc", kernel, args.events, args.keys, args.path)
        n_pol = min(args.polars_events // (5 if kernel == "entropy" else 1), args.events)
        p = child("polars", kernel, n_pol, args.keys)
        if "error" in s or "error" in p:
            print(f"| {kernel} | error: {s.get('error') or p.get('error')} |")
            continue
        same = "n/a (different N)"
        if n_pol == args.events:
            same = str(s["checksum"] == p["checksum"])
        ratio = (p["wall"] / n_pol) / (s["wall"] / args.events)
        print(f"| {kernel} | {s['path']} | {args.events:,} | {s['wall']:.2f} / {s['cpu']:.2f} | "
              f"{args.events / s['wall'] / 1e6:.1f} M"
              f" / {args.events / s['cpu'] / 1e6:.1f} M | {s['peak_rss_mb']:,.0f} | {n_pol:,} | {p['wall']:.2f} / "
              f"{p['cpu']:.2f} | {n_pol / p['wall'] / 1e6:.2f} M | {p['peak_rss_mb']:,.0f} | x{ratio:.1f} | {same} |",
              flush=True)


if __name__ == "__main__":
    main()
