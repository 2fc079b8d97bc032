"""A hunt in several local processes: the tasks of ``soc.distributed.task`` run in worker processes and in this
one (the driver), which merges their results in the tasks' order.

Workers are plain processes (``python -m soc.distributed.local``), as the EVTX engine's are
(``soc.worker_process``: length-prefixed pickle-5 messages over pipes; not
``multiprocessing``, which imports the caller's ``__main__`` again in every worker). ``start`` launches them at
the very beginning of a hunt, so their imports and rule loading overlap the driver's; ``hunt`` then hands out the
tasks in order: each worker takes the next free one, and so does the driver whenever the result it must merge
next is not there yet. A worker that dies (or fails) leaves its task to the driver, which runs it with the same
code: the same result. The driver merges each result as soon as every one before it is merged: the matches into
its Hunter (correlations at the end, as before), the detector rows into its runner (frame numbers following),
dead letters and inputs' ends into its sink, the inputs' counts into the stats.

A message to a worker is ``("load", (rule paths, placeholders' file))`` (import and load the rules now; no
reply), ``("ready",)`` or ``("run", plan, partition)``; a reply ``("ok", value)`` or ``("error", text)``. Pickles
come only from this process's own workers (pipes), never from data.

Cost: a worker's start (interpreter, imports, rules: ~0.35-0.45 s of CPU) and its own compiled rules, and the
rules evaluated once more per task: on the 483-file EVTX corpus ~0.7 s of CPU more in all, for two processes'
wall time. On a machine whose CPUs are all busy already that CPU is a loss (``--workers 1``).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import TYPE_CHECKING

from soc.worker_process import WorkerProcess

if TYPE_CHECKING:
    from collections.abc import Callable

    from soc.distributed.task import HuntPlan, Partition, TaskResult

MIN_BYTES = 4 << 20  # inputs smaller than this in all are hunted in one process (a worker's start costs ~0.4 s CPU)


def cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def running() -> int:
    """Threads of other processes running or waiting for a CPU right now (``/proc/loadavg``'s fourth field, less
    this process's one); 0 where it cannot be told."""
    try:
        with open("/proc/loadavg") as fh:
            return max(int(fh.read().split()[3].split("/")[0]) - 1, 0)
    except (OSError, ValueError, IndexError):
        return 0


def spare() -> int:
    """The CPUs other work leaves to a hunt now (at least 1): on a machine whose CPUs are all busy, a worker's CPU
    (its start, its own compiled rules) only slows the hunt down. Measured at a load of ~9-12 on the 2-core
    machine: the EVTX corpus 3.5-6.1 s wall in one process, 6.0-7.8 s in two; 100 k NXLog lines 7.5-8.7 against
    12.9-13.9 s. The instantaneous count, not the 1-minute average (which lags: a benchmark's own runs would
    count)."""
    return max(cpus() - running(), 1)


def wanted(sources, workers: int | None, chunk_size: int = 16 << 20) -> int:
    """Worker processes worth starting for ``sources`` (besides this one): none for ``workers`` 1, for small
    inputs (``MIN_BYTES``: the one-line hunt's fixed cost stays as it is), for one input of less than two chunks
    (it is one task), or for inputs of unknown size (standard input); else ``workers`` (default: one per CPU that
    other work leaves free, ``spare``) less one."""
    total = workers if workers is not None else spare()
    sizes = [s.size for s in sources]
    if total <= 1 or any(n is None for n in sizes) or sum(sizes) < MIN_BYTES or \
            (len(sources) < 2 and sizes[0] < 2 * chunk_size):
        return 0
    return total - 1


class Worker(WorkerProcess):
    """One worker process of the hunt, one task at a time; told to load ``rules`` at once (no reply)."""

    def __init__(self, rules: tuple | None = None):
        # a large EVTX file is one task here: no processes of its own
        super().__init__("soc.distributed.local", {"SOC_EVTX_PROCESSES": "1"})
        if rules is not None:
            self.tell(("load", rules))

    def call(self, task, failed=None):
        """The reply's value, or None if the worker failed (it is then stopped and its task runs here)."""
        return super().call(task, failed or _warn)


def _warn(text: str) -> None:
    print(f"warning: a hunt worker failed, its task runs here: {text}", file=sys.stderr)


class Pool:
    """The worker processes of one hunt (``start``); stopped by ``close``."""

    def __init__(self, workers: list[Worker]):
        self.workers = workers

    def executor(self, rules, placeholders: str | None, alone):
        """A ``soc.hunt`` executor that hunts on these workers and this process (``hunt``), or as ``alone`` does
        when the inputs make fewer than two tasks."""

        def run(sources, stages, on_bytes):
            from soc.distributed.task import HuntPlan

            specs = None if stages.runner is None else tuple(stages.runner.specs)
            plan = HuntPlan(tuple(map(str, rules)), placeholders, specs, stages.options)
            stats = hunt(self, plan, sources, stages.sink, stages.hunter, stages.runner, on_bytes)
            return stats if stats is not None else alone(sources, stages, on_bytes)

        return run

    def close(self) -> None:
        for w in self.workers:
            w.stop()

    def release(self) -> None:
        """The hunt is done with the workers: they exit on their own (their exit, ~tens of ms, is not waited for
        here) and are waited for when this process exits (``close``), so that their CPU counts as its children's."""
        for w in self.workers:
            w.release()
        atexit.register(self.close)

    def kill(self) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start(sources, rules=(), placeholders: str | None = None, workers: int | None = None, options=None
          ) -> Pool | None:
    """Worker processes for a hunt of ``sources`` (``wanted``), started now and told to load the rules (``--rules``
    paths, empty: soc's own; the placeholders' file) at once; None when the hunt is to run in this process alone.
    Imports nothing heavy: called first, the workers' start-up overlaps the caller's. ``options``: the hunt's
    ``pipeline.Options`` (its chunk size)."""
    n = wanted(sources, workers, *([options.chunk_size] if options is not None else []))
    if not n:
        return None
    try:
        return Pool([Worker((tuple(map(str, rules)), placeholders)) for _ in range(n)])
    except OSError:
        return None


class _Schedule:
    """Who runs which task: each in order, by the first worker or the driver that is free; results wait here
    until merged. A task whose worker failed goes back, to the driver."""

    def __init__(self, parts: list[Partition]):
        self.parts = parts
        self.cond = threading.Condition()
        self.next = 0  # the first task nobody has taken
        self.back: list[int] = []  # tasks whose worker failed
        self.results: dict[int, TaskResult] = {}
        self.closed = False

    def take(self, driver: bool) -> int | None:
        with self.cond:
            if driver and self.back:
                return self.back.pop(0)
            if self.closed or self.next >= len(self.parts):
                return None
            self.next += 1
            return self.next - 1

    def put(self, i: int, result: TaskResult | None) -> None:
        with self.cond:
            if result is None:
                self.back.append(i)
                self.back.sort()
            else:
                self.results[i] = result
            self.cond.notify_all()


def _feed(worker: Worker, plan: HuntPlan, schedule: _Schedule) -> None:
    """A worker's thread: tasks in order while there are some; a failed worker hands its task back and stops."""
    if worker.call(("ready",)) is None:
        return
    while (i := schedule.take(driver=False)) is not None:
        result = None
        try:
            result = worker.call(("run", plan, schedule.parts[i]))
        finally:
            schedule.put(i, result)
        if result is None:
            return


def hunt(pool: Pool, plan: HuntPlan, sources, sink, hunter, runner, on_bytes=None, specs=None) -> list | None:
    """Hunt ``sources`` with the pool's workers and this process: into ``hunter`` (its rules the plan's), ``runner``
    (None: no detectors) and ``sink`` (dead letters, inputs' ends; closed at the end), as ``pipeline.run`` into a
    sink feeding them would; returns the inputs' stats. None, with nothing done and the pool closed, when the
    inputs make fewer than two tasks (the caller runs the one-process hunt). ``on_bytes`` is told the bytes of each
    task's inputs as it is merged."""
    from soc.distributed.task import partitions, prime

    prime(plan, hunter.ruleset)
    parts = partitions(sources, plan.options, specs)
    if len(parts) < 2:
        pool.close()
        return None
    schedule = _Schedule(parts)
    feeds = [threading.Thread(target=_feed, args=(w, plan, schedule), daemon=True, name="soc-hunt-feed")
             for w in pool.workers]
    for feed in feeds:
        feed.start()
    done = False
    try:
        stats = merge_all(parts, lambda i: _result(i, plan, schedule), sink, hunter, runner, on_bytes)
        done = True
    finally:
        with schedule.cond:
            schedule.closed = True
        pool.release() if done else pool.kill()  # a failure here: the workers' tasks are of no use
        for feed in feeds:
            feed.join()
    sink.close()
    return stats


def _result(i: int, plan: HuntPlan, schedule: _Schedule) -> TaskResult:
    """Task ``i``'s result: a worker's when it has it, else the driver runs tasks (those handed back first, then
    the next free ones) until it is there. Task ``i`` itself was taken: by a worker still at it, or here."""
    while True:
        with schedule.cond:
            if i in schedule.results:
                return schedule.results.pop(i)
        j = schedule.take(driver=True)
        if j is not None:
            schedule.put(j, _run_here(plan, schedule.parts[j]))
            continue
        with schedule.cond:  # every task taken: wait for task i's worker (or its hand-back)
            while i not in schedule.results and not schedule.back:
                schedule.cond.wait()


def _run_here(plan: HuntPlan, part: Partition) -> TaskResult:
    from soc.distributed.task import run_task

    return run_task(plan, part)


def merge_all(parts: list[Partition], result: Callable[[int], TaskResult], sink, hunter, runner,
              on_bytes=None) -> list:
    """The tasks' results (``result(i)``: task ``i``'s, asked for in order) merged into the driver's ``hunter``,
    ``runner`` and ``sink`` as the one-process hunt would have fed them; returns the inputs' stats. Shared by every
    executor (local processes, Ray): one merge, one result."""
    stats: list = []
    lines = 0  # of the ranges merged so far of the file being cut in ranges
    for i, part in enumerate(parts):
        got = result(i)
        if lines:
            _later_lines(got, lines)
        _merge(got, part, i > 0 and parts[i - 1].span and not parts[i - 1].last, sink, hunter, runner, stats)
        lines = lines + got.lines if part.span and not part.last else 0
        if on_bytes is not None:
            on_bytes(part.size)
        del got
    return stats


def _merge(result: TaskResult, part: Partition, more: bool, sink, hunter, runner, stats: list) -> None:
    """A task's result into the driver's hunter, runner, sink and stats; ``more``: it is a later byte range of the
    file of the stats before (its counts are added to them; the file ends with its last range)."""
    hunter.absorb(result.matches, result.events, result.failures)
    if runner is not None and result.detectors is not None:
        runner.absorb(result.detectors)
    for entry in result.log:
        if entry[0] == "dead":
            sink.write_dead(entry[1], entry[2])
        elif not part.span or part.last:
            sink.close_source(entry[1])
    if more:
        _add(stats[-1], result.stats[0])
    else:
        stats += result.stats


def _later_lines(result: TaskResult, lines: int) -> None:
    """A byte range's line numbers (counted from 1 in it) made the file's: ``lines`` of the ranges before."""
    import polars as pl

    def shift(frame: pl.DataFrame) -> pl.DataFrame:
        if frame.schema.get("log.line") in (pl.Int64, pl.UInt32, pl.UInt64, pl.Int32):
            return frame.with_columns(pl.col("log.line") + lines)
        return frame

    result.matches = shift(result.matches)
    result.log = [(e[0], e[1], shift(e[2])) if e[0] == "dead" else e for e in result.log]
    if result.detectors is not None:
        result.detectors["parts"] = {k: [shift(p) for p in parts] for k, parts in result.detectors["parts"].items()}


def _add(st, more) -> None:
    """The counts of a later byte range of a file added to the file's."""
    st.read += more.read
    st.parsed += more.parsed
    st.dead += more.dead
    st.bytes += more.bytes
    st.seconds += more.seconds
    for family, n in more.events.items():
        st.events[family] = st.events.get(family, 0) + n
    for dataset, days in more.days.items():
        mine = st.days.setdefault(dataset, {})
        for day, n in days.items():
            mine[day] = mine.get(day, 0) + n
    if more.first is not None:
        st.first = more.first if st.first is None else min(st.first, more.first)
        st.last = more.last if st.last is None else max(st.last, more.last)
    st.format = st.format or more.format
    st.error = st.error or more.error
    st.skipped = st.skipped or more.skipped


def main() -> None:
    """A worker: messages from standard input, replies to standard output, until the end of standard input."""
    from soc.runtime import collect_less_often, exit_now, reuse_freed_memory
    from soc.worker_process import serve

    reuse_freed_memory()
    collect_less_often()

    def handle(message: tuple):
        if message[0] == "load":
            from soc.distributed.task import load_rules

            return load_rules(message[1])
        if message[0] == "run":
            from soc.distributed.task import run_task

            return run_task(message[1], message[2])
        raise ValueError(f"unknown message {message[0]!r}")

    serve(handle, quiet=lambda message: message[0] == "load")
    exit_now(0)  # the parent closed the pipe: nothing is left to write


if __name__ == "__main__":
    main()
