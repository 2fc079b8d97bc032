"""The per-group cost of Windows typing (issue 18): what a chunk or batch pays once per (channel, event id) group.

    python -m bench.bench_windows_groups [--lines N] [--reps R]
    cd /other/tree && python -m bench.bench_windows_groups   # A/B: with -m the current folder comes first on
                                                             # sys.path, before PYTHONPATH (a tree needs bench/)

A chunk of ``gen_nxlog_windows`` (16 MB, ~14 k lines, ~220 groups: the generator mixes the corpus's keys evenly,
so a chunk of any size has about as many groups) walked once; then, CPU ms (``time.process_time``, all threads),
minimum of ``--reps``: the groups' frames (``group_columns`` + ``WindowsMapping.groups``), the chunk's whole parse
(walk excluded), the walk (``prepare``). Also an EVTX batch (``bench_evtx``'s 5-copy file, first 50 k records):
``EvtxEngine._batch`` and ``SourceStats.add`` of its result. The machine is shared: run the two trees alternately.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def best(fn, reps: int) -> float:
    """Minimum CPU ms of ``reps`` calls of ``fn`` (after one untimed call)."""
    fn()
    times = []
    for _ in range(reps):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times) * 1e3


def nxlog(lines: int, reps: int) -> None:
    import polars as pl
    import pyarrow as pa

    from bench.harness import generated
    from soc.parse.batch import LineBatch
    from soc.parse.columns import Context
    from soc.parse.engines import engine_class
    from soc.parse.engines import windows_json as wj
    from soc.parse.engines.evtx import _strings
    from soc.parse.spec import load_specs
    from soc.parse.windows import group_columns
    from soc.sources import read_chunks

    path = str(generated("gen_nxlog_windows", lines, ".json"))
    spec = load_specs()["nxlog_windows"]
    engine = engine_class(spec.engine)(spec, Context(path, "Asia/Ho_Chi_Minh", None))
    with open(path, "rb") as fh:
        batch = LineBatch(next(read_chunks(fh, 16 << 20)), path)
    engine.prepare(batch)
    _, good, w = batch.windows_json
    lines_ = batch.take(good)
    system = wj.LAYOUTS["nxlog"][0]
    m = w.order.size
    data, extra = lines_._arrow, pa.py_buffer(w.extra)
    cols = _strings(w.system, data, extra)
    raw = pl.DataFrame([cols.slice(i * m, m).alias(name) for i, name in enumerate(system)])
    origin = {k: v.gather(pl.Series(w.order, dtype=pl.UInt32)) for k, v in lines_.origin().items()}
    base, reason = engine.mapping.base(raw, engine.ctx, origin, engine._times(w.times))
    cells = _strings(w.cells, data, extra)
    heads = pl.Series(w.starts[:-1], dtype=pl.UInt32)
    channels = raw.get_column("System.Channel").gather(heads).to_list()
    ids = raw.get_column("System.EventID").gather(heads).to_list()
    bad = np.zeros(m, np.bool_)
    n_groups = w.starts.size - 1

    def groups() -> None:
        items = []
        for g in range(n_groups):
            at, size = int(w.starts[g]), int(w.starts[g + 1] - w.starts[g])
            fields, names = group_columns(cells, w.names, w.columns[w.col_starts[g]: w.col_starts[g + 1]],
                                          int(w.cell_starts[g]), size, system)
            items.append((at, size, fields, names, channels[g], ids[g], None))
        if hasattr(engine.mapping, "groups"):  # the batch's groups at once, as the engines hand them since 0da567e
            engine.mapping.groups(base, reason, bad, items, engine.ctx)
            return
        for item in items:  # a tree before: group by group
            engine.mapping.group(base, reason, bad, *item[:6], engine.ctx, item[6])

    print(f"NXLog chunk: {batch.n:,} lines, {n_groups} groups: groups {best(groups, reps):.1f} ms, "
          f"parse (walk excluded) {best(lambda: engine.parse(batch), reps):.1f} ms, "
          f"walk {best(lambda: engine.prepare(batch), reps):.1f} ms (CPU, min of {reps})")


def evtx(reps: int) -> None:
    from bench import bench_evtx
    from soc import pipeline
    from soc.parse.columns import Context
    from soc.parse.engines import engine_class
    from soc.parse.engines import evtx as ev
    from soc.parse.spec import load_specs

    path = str(bench_evtx.build(5, 5)[0])
    spec = load_specs()["windows_evtx"]
    engine = engine_class(spec.engine)(spec, Context(path, "Asia/Ho_Chi_Minh", None))
    first = next(iter(ev.Reading(path, engine.batch_size)))
    result = engine._batch(*first)

    def add() -> None:
        pipeline.SourceStats(path).add(result, 0)

    print(f"EVTX batch: {len(first[1]):,} records, {len(result.frames)} groups: _batch "
          f"{best(lambda: engine._batch(*first), max(3, reps // 3)):.1f} ms, SourceStats.add {best(add, reps):.1f} ms "
          f"(CPU, min)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000, help="lines of the generated NXLog file (one chunk is used)")
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    nxlog(args.lines, args.reps)
    evtx(args.reps)


if __name__ == "__main__":
    main()
