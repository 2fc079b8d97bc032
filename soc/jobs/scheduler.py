"""``soc jobs run``: the long-running scheduler. It holds the data folder's scheduler lock (a second scheduler on
the same folder is refused), starts each due job as a child process (``soc jobs run-once NAME``) and waits.

A child per run keeps the scheduler small and steady: a job that fails, raises or runs out of memory ends its
own process, not the others; the memory a run took goes back to the system when it ends. On SIGTERM or SIGINT
the scheduler starts nothing more, gives running children ``grace`` seconds, then kills them: a run killed at
any point is redone by its next run (``soc.jobs.run``: the checkpoint moves only after the alerts are stored and
indexed), so stopping fast costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from soc.jobs.lock import Lock
from soc.jobs.run import EXIT_CODES, append_record, job_dir, last_start

GRACE_SECONDS = 3.0
IDLE_WAIT = 0.5  # the loop looks at least this often at children and at the stop flag


def now_utc() -> datetime:
    return datetime.now(UTC)


def scheduler_lock(data_dir: str | Path) -> Lock:
    return Lock(Path(data_dir) / "jobs" / ".scheduler.lock", f"the scheduler of data folder {data_dir}")


@dataclass
class Child:
    job: str
    process: subprocess.Popen
    start: datetime


class Scheduler:
    """Runs the due ``jobs`` (``soc.config.JobConfig``) until ``stop`` is set; ``clock`` is injectable."""

    def __init__(self, jobs: list, data_dir: str | Path, command: Callable[[str], list[str]],
                 clock: Callable[[], datetime] = now_utc, parallel: int = 1, grace: float = GRACE_SECONDS,
                 say: Callable[[str], None] = print):
        self.jobs = jobs
        self.data_dir = Path(data_dir)
        self.command = command
        self.clock = clock
        self.parallel = max(1, parallel)
        self.grace = grace
        self.say = say
        self.stop = threading.Event()
        self.running: dict[str, Child] = {}
        started = clock()  # a cron job that never ran counts its slots from here (an interval job runs at once)
        self.last: dict[str, datetime | None] = {
            j.name: last_start(job_dir(data_dir, j.name)) or (started if j.schedule.cron else None) for j in jobs}
        self.launched = 0
        self.signal: str | None = None  # the name of the signal that stopped the loop

    def handle_signals(self) -> None:
        """SIGTERM and SIGINT set the stop flag (the loop notices within ``IDLE_WAIT``; the handler only sets
        it: printing from a handler may land inside another write to the same stream)."""
        def stop(signum, _frame):
            self.signal = signal.Signals(signum).name
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def loop(self) -> None:
        while not self.stop.is_set():
            self.tick()
            self.stop.wait(self.wait_time(self.clock()))
        if self.signal:
            self.say(f"{self.signal}: stopping")
        self.shutdown()

    def tick(self) -> None:
        """One look: collect the children that ended, start the jobs that are due (the longest waiting first,
        so that a job always due cannot starve the others; ``parallel`` at most)."""
        self.reap()
        now = self.clock()
        never = datetime.min.replace(tzinfo=UTC)  # a job that never ran has waited longest
        waiting = [(j.schedule.next_run(self.last[j.name], now) if self.last[j.name] else never, i, j)
                   for i, j in enumerate(self.jobs) if j.name not in self.running]
        for when, _, job in sorted(waiting, key=lambda w: (w[0], w[1])):
            if self.stop.is_set() or len(self.running) >= self.parallel or when > now:
                break
            self.launch(job, now)

    def wait_time(self, now: datetime) -> float:
        """Until the next idle job is due, at most ``IDLE_WAIT`` (children and the stop flag are polled)."""
        nexts = [j.schedule.next_run(self.last[j.name], now) for j in self.jobs if j.name not in self.running]
        if not nexts:
            return IDLE_WAIT
        return min(IDLE_WAIT, max(0.01, (min(nexts) - now).total_seconds()))

    def launch(self, job, now: datetime) -> None:
        self.last[job.name] = now
        self.launched += 1
        try:
            # a session of its own: Ctrl-C in a terminal reaches the scheduler, which stops its children itself
            process = subprocess.Popen(self.command(job.name), stdin=subprocess.DEVNULL,  # noqa: S603
                                       start_new_session=True)
        except OSError as exc:
            self.say(f"job {job.name}: cannot start: {exc}")
            append_record(job_dir(self.data_dir, job.name), _lost(job.name, now, f"cannot start: {exc}"))
            return
        self.running[job.name] = Child(job.name, process, now)

    def reap(self) -> None:
        for name, child in list(self.running.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.running[name]
            if code not in EXIT_CODES:  # killed or crashed: it could not write its own record
                why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                self.say(f"job {name}: the run ended without a record ({why})")
                append_record(job_dir(self.data_dir, name), _lost(name, child.start, why))

    def shutdown(self) -> None:
        """Stop the children: SIGTERM, ``grace`` seconds, then SIGKILL; their runs are redone next time."""
        for child in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
        deadline = time.monotonic() + self.grace
        for child in self.running.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(max(0.0, deadline - time.monotonic()))
            if child.process.poll() is None:
                child.process.kill()
                child.process.wait()
        for name, child in self.running.items():
            if child.process.returncode not in EXIT_CODES:  # one that finished in time wrote its own record
                append_record(job_dir(self.data_dir, name),
                              _lost(name, child.start, "stopped with the scheduler (redone by the next run)"))
        self.running.clear()


def _lost(name: str, start: datetime, why: str) -> dict:
    end = now_utc()
    return {"job": name, "start": start.isoformat(), "end": end.isoformat(),
            "seconds": round((end - start).total_seconds(), 3), "status": "lost", "errors": [why]}


def run_once_command(config_path: str | None, data_dir: str) -> Callable[[str], list[str]]:
    """The child's command line: this Python, ``soc jobs run-once NAME`` with the same configuration."""
    def command(name: str) -> list[str]:
        args = [sys.executable, "-m", "soc", "jobs", "run-once", name, "--data-dir", os.fspath(data_dir)]
        if config_path:
            args += ["--config", os.fspath(config_path)]
        return args

    return command
