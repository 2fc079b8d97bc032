"""Scheduled jobs (issue 20): the [[jobs]] configuration, schedules and missed runs, locks, the scheduler, the
``soc jobs`` commands, and exactly-once runs under kill -9 (store and real Elasticsearch)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from soc.config import ConfigError, load_config
from soc.jobs.lock import Lock, LockHeld
from soc.jobs.run import EXIT_BUSY, append_record, job_dir, last_start, read_records
from soc.jobs.schedule import Schedule, ScheduleError, parse_every
from soc.jobs.scheduler import Scheduler
from tests.conftest import ROOT
from tests.test_es import server  # noqa: F401  (the real Elasticsearch of the test suite, one per session)

HCM = "Asia/Ho_Chi_Minh"


def write_config(tmp_path: Path, body: str, data: Path | None = None, name: str = "soc.toml") -> Path:
    path = tmp_path / name
    head = f'data_dir = "{data or tmp_path / "data"}"\n'
    path.write_text(head + textwrap.dedent(body), encoding="utf-8")
    return path


# -- configuration --------------------------------------------------------------------------------------------------


def test_jobs_config_parsed(tmp_path):
    path = write_config(tmp_path, """
        [[jobs]]
        name = "auth"
        inputs = "/var/log/remote/*/auth.log*"
        schedule = "*/5  * * * *"
        [[jobs]]
        name = "web.portal"
        inputs = ["/srv/a.log", "/srv/logs/"]
        every = "1h30m"
        tz = "UTC"
        format = "nginx_access"
        year = 2026
        rules = "rules/web"
        detectors = false
        settings = ["soc-web-scan.threshold=5"]
        elasticsearch = false
        """)
    cfg = load_config(path, env={})
    auth, web = cfg.jobs
    assert (auth.name, auth.inputs, auth.tz) == ("auth", ["/var/log/remote/*/auth.log*"], HCM)
    assert auth.schedule == Schedule(cron="*/5 * * * *", tz=HCM)
    assert auth.detectors == [] and auth.rules == [] and auth.elasticsearch is None
    assert web.schedule.every == timedelta(hours=1, minutes=30) and web.schedule.tz == "UTC"
    assert (web.format, web.year, web.rules, web.detectors, web.settings, web.elasticsearch) == (
        "nginx_access", 2026, ["rules/web"], None, ["soc-web-scan.threshold=5"], False)
    assert cfg.job("web.portal") is web
    with pytest.raises(ConfigError, match=r"no job named 'nope'.*jobs: auth, web.portal"):
        cfg.job("nope")


@pytest.mark.parametrize(("body", "message"), [
    ('name = "a"\ninputs = "x"\nschedule = "0 25 * * *"', r"#1 \(a\): schedule = '0 25 \* \* \*': Bad hour"),
    ('name = "a"\ninputs = "x"\nschedule = "* * * *"', "Wrong number of fields"),
    ('name = "a"\ninputs = "x"\nevery = "5 minutes"', "not an interval"),
    ('name = "a"\ninputs = "x"\nevery = "0s"', "at least 1s"),
    ('name = "a"\ninputs = "x"', "exactly one of schedule"),
    ('name = "a"\ninputs = "x"\nevery = "1m"\nschedule = "* * * * *"', "exactly one of schedule"),
    ('name = "a"\ninputs = "x"\nevery = "1m"\nshedule = "* * * * *"', r"unknown setting 'shedule'"),
    ('name = "../etc"\ninputs = "x"\nevery = "1m"', "name must be"),
    ('inputs = "x"\nevery = "1m"', "name must be"),
    ('name = "a"\nevery = "1m"', "inputs must name at least one"),
    ('name = "a"\ninputs = [1]\nevery = "1m"', "inputs must be a string or an array"),
    ('name = "a"\ninputs = "x"\nevery = "1m"\ntz = "Mars/Olympus"', "unknown time zone 'Mars/Olympus'"),
    ('name = "a"\ninputs = "x"\nevery = "1m"\nyear = "2026"', "year = '2026' must be an int"),
    ('name = "a"\ninputs = "x"\nevery = "1m"\nelasticsearch = "yes"', "elasticsearch = 'yes' must be a bool"),
])
def test_jobs_config_errors(tmp_path, body, message):
    path = write_config(tmp_path, "[[jobs]]\n" + body + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_jobs_config_duplicate_and_shape(tmp_path):
    one = '[[jobs]]\nname = "a"\ninputs = "x"\nevery = "1m"\n'
    with pytest.raises(ConfigError, match=r"#2 \(a\): a job named 'a' is defined twice"):
        load_config(write_config(tmp_path, one + one), env={})
    with pytest.raises(ConfigError, match=r"jobs must be an array of tables"):
        load_config(write_config(tmp_path, '[jobs]\nname = "a"\n'), env={})


# -- schedules ------------------------------------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_every_and_cron_next_runs():
    assert parse_every("90s") == timedelta(seconds=90) and parse_every("1d") == timedelta(days=1)
    every = Schedule.parse(every="5m")
    t = at("2026-03-01T10:00:00+00:00")
    assert every.next_run(None, t) == t  # never ran: due at once
    assert every.next_run(t, t) == t + timedelta(minutes=5)
    assert every.describe() == "every 5m"
    # 02:00 in Ho Chi Minh City is 19:00 UTC the day before; UTC is asked for explicitly
    cron = Schedule.parse(cron="0 2 * * *")
    assert cron.after(at("2026-03-01T12:00:00+00:00")) == at("2026-03-01T19:00:00+00:00")
    assert cron.after(at("2026-03-01T19:00:00+00:00")) == at("2026-03-02T19:00:00+00:00")  # strictly after
    assert cron.next_run(None, at("2026-03-01T12:00:00+00:00")) == at("2026-03-01T19:00:00+00:00")  # never ran
    utc = Schedule.parse(cron="0 2 * * *", tz="UTC")
    assert utc.after(at("2026-03-01T12:00:00+00:00")) == at("2026-03-02T02:00:00+00:00")
    with pytest.raises(ScheduleError):
        Schedule.parse(cron="0 0 30 2 *")  # a day that never comes


def test_missed_slots_make_one_run():
    """Down from 00:05 to 05:30 over five hourly slots: one run at 05:30, then the next slot (06:00)."""
    cron = Schedule.parse(cron="0 * * * *", tz="UTC")
    last = at("2026-03-01T00:00:00+00:00")
    clock = at("2026-03-01T05:30:00+00:00")
    runs = []
    while clock < at("2026-03-01T07:30:00+00:00"):
        if cron.due(last, clock):
            runs.append(clock)
            last = clock
        clock += timedelta(minutes=1)
    assert runs == [at("2026-03-01T05:30:00+00:00"), at("2026-03-01T06:00:00+00:00"),
                    at("2026-03-01T07:00:00+00:00")]


# -- locks ----------------------------------------------------------------------------------------------------------


def test_lock_refuses_and_names_holder(tmp_path):
    held = rf"job a is held by process {os.getpid()} \(lock file {tmp_path / 'x.lock'}\)"
    with Lock(tmp_path / "x.lock", "job a"), pytest.raises(LockHeld, match=held), Lock(tmp_path / "x.lock", "job a"):
        pass
    with Lock(tmp_path / "x.lock", "job a"):  # released
        pass


def test_lock_released_by_kill_9(tmp_path):
    path = tmp_path / "x.lock"
    code = f"from soc.jobs.lock import Lock; Lock({str(path)!r}, 'x').acquire(); print('held', flush=True); " \
           "import time; time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=f"process {child.pid}"):
            Lock(path, "x").acquire()
    finally:
        child.kill()
        child.wait()
    Lock(path, "x").acquire().release()


# -- the scheduler, with children that stand in for runs -----------------------------------------------------------


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def jobs_of(tmp_path, body) -> list:
    return load_config(write_config(tmp_path, body), env={}).jobs


def settle(scheduler: Scheduler) -> None:
    for child in list(scheduler.running.values()):
        child.process.wait(30)
    scheduler.reap()


def test_scheduler_runs_missed_job_once(tmp_path):
    jobs = jobs_of(tmp_path, '[[jobs]]\nname = "hourly"\ninputs = "x"\nschedule = "0 * * * *"\ntz = "UTC"\n')
    data = tmp_path / "data"
    append_record(job_dir(data, "hourly"), {"job": "hourly", "start": "2026-03-01T00:00:00+00:00"})
    clock = Clock(at("2026-03-01T05:30:00+00:00"))  # five slots missed
    started = []
    scheduler = Scheduler(jobs, data, lambda name: started.append(name) or [sys.executable, "-c", "pass"],
                          clock=clock, say=lambda _: None)
    for _ in range(3):
        scheduler.tick()
        settle(scheduler)
    assert started == ["hourly"]
    clock.now = at("2026-03-01T05:59:59+00:00")
    scheduler.tick()
    assert started == ["hourly"]
    clock.now = at("2026-03-01T06:00:00+00:00")
    scheduler.tick()
    settle(scheduler)
    assert started == ["hourly", "hourly"]
    assert scheduler.wait_time(clock.now) <= 0.5


def test_scheduler_cron_job_that_never_ran_waits_for_its_slot(tmp_path):
    jobs = jobs_of(tmp_path, '[[jobs]]\nname = "q"\ninputs = "x"\nschedule = "*/15 * * * *"\ntz = "UTC"\n'
                             '[[jobs]]\nname = "i"\ninputs = "x"\nevery = "1h"\n')
    clock = Clock(at("2026-03-01T00:05:00+00:00"))
    started = []
    scheduler = Scheduler(jobs, tmp_path / "data", lambda name: started.append(name) or [sys.executable, "-c", "pass"],
                          clock=clock, parallel=2, say=lambda _: None)
    scheduler.tick()
    settle(scheduler)
    assert started == ["i"]  # the interval job at once, the cron job not before 00:15
    clock.now = at("2026-03-01T00:15:00+00:00")
    scheduler.tick()
    settle(scheduler)
    assert started == ["i", "q"]


def test_scheduler_failing_job_does_not_stop_others(tmp_path):
    """A job whose run crashes (killed) or fails (exit 5) is recorded and retried; the other job keeps running,
    and a job always due does not starve the other (parallel 1)."""
    jobs = jobs_of(tmp_path, '[[jobs]]\nname = "bad"\ninputs = "x"\nevery = "1s"\n'
                             '[[jobs]]\nname = "good"\ninputs = "x"\nevery = "1s"\n')
    data = tmp_path / "data"
    clock = Clock(at("2026-03-01T00:00:00+00:00"))
    crash = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"

    def command(name):
        return [sys.executable, "-c", crash if name == "bad" else "pass"]

    scheduler = Scheduler(jobs, data, command, clock=clock, say=lambda _: None)
    started = []
    for _ in range(6):
        scheduler.tick()
        started += list(scheduler.running)
        settle(scheduler)
        clock.now += timedelta(seconds=1)
    assert started.count("bad") == 3 and started.count("good") == 3
    lost = read_records(job_dir(data, "bad"))
    assert len(lost) == 3 and all(r["status"] == "lost" and "SIGKILL" in r["errors"][0] for r in lost)
    assert read_records(job_dir(data, "good")) == []  # a child that exits by itself writes its own record
    assert last_start(job_dir(data, "bad")) is not None


def test_second_scheduler_refused(tmp_path):
    from soc.cli_jobs import jobs_group
    from soc.jobs.scheduler import scheduler_lock

    path = write_config(tmp_path, '[[jobs]]\nname = "a"\ninputs = "x"\nevery = "1m"\n')
    with scheduler_lock(tmp_path / "data"):
        res = CliRunner().invoke(jobs_group, ["run", "--config", str(path)])
    assert res.exit_code == EXIT_BUSY
    assert f"the scheduler of data folder {tmp_path / 'data'} is held by process {os.getpid()}" in res.output
    assert "one scheduler per data folder" in res.output


def test_jobs_cli_usage_errors(tmp_path):
    from soc.cli_jobs import jobs_group

    path = write_config(tmp_path, '[[jobs]]\nname = "a"\ninputs = "x"\nevery = "1m"\n')
    res = CliRunner().invoke(jobs_group, ["run-once", "nope", "--config", str(path)])
    assert res.exit_code == 2 and "no job named 'nope'" in res.output
    bad = write_config(tmp_path, '[[jobs]]\nname = "a"\ninputs = "x"\nevery = "soon"\n')
    res = CliRunner().invoke(jobs_group, ["list", "--config", str(bad)])
    assert res.exit_code == 2 and "every = 'soon'" in res.output


# -- real runs (subprocesses) ---------------------------------------------------------------------------------------

AUTH = ROOT / "sample_logs" / "linux" / "auth.log"
NGINX = ROOT / "sample_logs" / "web" / "nginx" / "access.log"


def soc(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soc", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "SOC_CONFIG": "", **(env or {})})


def job_config(tmp_path: Path, logs: Path, extra: str = "", es: str = "", name: str = "soc.toml") -> Path:
    """One job over the folder ``logs`` every second, year-less stamps in 2026."""
    return write_config(tmp_path, f"""
        {es}
        [[jobs]]
        name = "logs"
        inputs = ["{logs}"]
        every = "1s"
        year = 2026
        {extra}
        """, name=name)


def grow(logs: Path, step: int, steps: int) -> None:
    """Append the ``step``-th of ``steps`` parts of the sample auth and nginx logs (a part ends mid-line when
    it can: the rest of that line comes with the next step)."""
    logs.mkdir(exist_ok=True)
    for src in (AUTH, NGINX):
        data = src.read_bytes()
        lo, hi = len(data) * step // steps, len(data) * (step + 1) // steps
        with open(logs / src.name, "ab") as fh:
            fh.write(data[lo:hi])


def stored_ids(data: Path) -> list[str]:
    """The ids of every row of the store (all versions)."""
    return all_versions(data).get_column("event.id").to_list()


def all_versions(data: Path):
    """Every row stored: id and what a fuller version changes (``AlertStore.upsert``)."""
    import polars as pl

    from soc.sinks.alert_store import AlertStore

    files = AlertStore(data).files()
    cols = ["event.id", "event.kind", "event.count", "event.start", "event.end"]
    return pl.read_parquet(files, columns=cols) if files else pl.DataFrame(schema=dict.fromkeys(cols, pl.String))


def current_alerts(data: Path):
    """The store's alerts as a reader sees them (the last version of each id), sorted by id."""
    from soc.sinks.alert_store import AlertStore

    return (AlertStore(data).scan().select("event.id", "rule.id", "event.count", "event.start", "event.end")
            .sort("event.id").collect())


def test_run_once_exit_codes_and_status(tmp_path):
    logs = tmp_path / "logs"
    grow(logs, 0, 2)
    cfg = job_config(tmp_path, logs)
    first = soc("jobs", "run-once", "logs", "--config", str(cfg), "--json", "--fail-on-alert")
    assert first.returncode == 1, first.stderr[-3000:]  # new alerts, and asked to say so
    record = json.loads(first.stdout)
    assert record["status"] == "ok" and record["new_alerts"] > 0 and record["records"] > 0
    assert record["records"] == record["parsed"] + record["dead"]
    again = soc("jobs", "run-once", "logs", "--config", str(cfg), "--fail-on-alert")
    assert again.returncode == 0, again.stderr[-3000:]  # nothing appended: nothing new
    assert "job logs: ok" in again.stdout and "0 records" in again.stdout

    data = tmp_path / "data"
    with Lock(job_dir(data, "logs") / ".lock", "job logs"):
        busy = soc("jobs", "run-once", "logs", "--config", str(cfg))
    assert busy.returncode == EXIT_BUSY and "job logs is held by process" in busy.stderr

    grow(logs, 1, 2)
    bad_rules = job_config(tmp_path, logs, 'rules = ["/nonexistent"]', name="bad.toml")
    bad = soc("jobs", "run-once", "logs", "--config", str(bad_rules))
    assert bad.returncode == 5 and "nonexistent" in bad.stderr  # failed: nothing committed
    down = soc("jobs", "run-once", "logs", "--config", str(job_config(
        tmp_path, logs, "elasticsearch = true",
        es='[elasticsearch]\nurl = "http://127.0.0.1:9"\nmax_retries = 0\ntimeout = 2\n', name="down.toml")))
    assert down.returncode == 3 and "elasticsearch" in down.stderr, down.stderr[-2000:]
    done = soc("jobs", "run-once", "logs", "--config", str(cfg), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    last = json.loads(done.stdout)
    # the failed runs committed nothing: this run reads the second half, whose alerts the ES-less run stored
    assert last["records"] > 0 and last["alerts"] > 0 and last["new_alerts"] == 0
    assert all_versions(data).is_unique().all()
    (logs / "old.log.gz").write_bytes(b"\x1f\x8b\x08\x00not gzip data after the magic")
    for _ in range(2):  # an input that cannot be read: committed with errors, and read again by the next run
        broken = soc("jobs", "run-once", "logs", "--config", str(cfg))
        assert broken.returncode == 6 and "old.log.gz: cannot read: corrupt gzip data" in broken.stderr

    usage = soc("jobs", "run-once", "nope", "--config", str(cfg))
    assert usage.returncode == 2 and "no job named 'nope'" in usage.stderr
    status = soc("jobs", "status", "--config", str(cfg), "-n", "10", "--json")
    records = [json.loads(line) for line in status.stdout.splitlines()]
    assert [r["status"] for r in records] == ["ok", "ok", "busy", "failed", "es_failed", "ok", "ok_with_errors",
                                              "ok_with_errors"]
    assert all(r["lag_seconds"] > 0 for r in records)  # the sample logs are from November 2026
    table = soc("jobs", "status", "--config", str(cfg), "-n", "10", env={"COLUMNS": "200"})
    assert table.returncode == 0
    rows = [line for line in table.stdout.splitlines() if line.startswith("│ logs")]
    assert len(rows) == 8 and f"{record['records']:,}" in rows[0] and "es_failed" in rows[4]
    assert "1: " in rows[6] and "old.log.gz" in records[6]["errors"][0]  # errors: how many, the first
    listing = soc("jobs", "list", "--config", str(cfg), "--json")
    assert json.loads(listing.stdout)["schedule"] == "every 1s"


def test_scheduler_three_runs_then_sigterm(tmp_path):
    """`soc jobs run` with a job every 1s: three runs, then SIGTERM: exit 0 within 5 s. A second job that fails
    at every run (its rules path names nothing) runs beside it and stops nothing."""
    logs = tmp_path / "logs"
    grow(logs, 0, 1)
    cfg = job_config(tmp_path, logs, f'[[jobs]]\nname = "broken"\ninputs = ["{logs}"]\nevery = "1s"\n'
                                     'rules = ["/nonexistent"]')
    folder = job_dir(tmp_path / "data", "logs")
    proc = subprocess.Popen([sys.executable, "-m", "soc", "jobs", "run", "--config", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SOC_CONFIG": ""})
    try:
        deadline = time.monotonic() + 120
        while len([r for r in read_records(folder) if r.get("status") == "ok"]) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "three runs did not happen in 120 s"
            time.sleep(0.1)
        # a second scheduler on the same data folder is refused
        second = soc("jobs", "run", "--config", str(cfg), timeout=30)
        assert second.returncode == EXIT_BUSY and "one scheduler per data folder" in second.stderr
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert took < 5, took
    assert "SIGTERM: stopping" in out and "scheduler stopped after" in out
    runs = read_records(folder)
    starts = [datetime.fromisoformat(r["start"]) for r in runs]
    assert starts == sorted(starts) and len(runs) >= 3
    assert runs[0]["records"] > 0 and all(r.get("records", 0) == 0 for r in runs[1:] if r["status"] == "ok")
    broken = read_records(job_dir(tmp_path / "data", "broken"))
    assert len(broken) >= 2 and {r["status"] for r in broken} <= {"failed", "lost"}
    assert "nonexistent" in broken[0]["errors"][0]


KILL_POINTS = ("planned", "hunted", "stored", "indexed", "saved", "committed")


def es_block(prefix: str) -> str:
    from tests.test_es import PASSWORD, URL

    return (f'[elasticsearch]\nurl = "{URL}"\nusername = "elastic"\npassword = "{PASSWORD}"\n'
            f'index_prefix = "{prefix}"\nreplicas = 0\n')


def es_alerts(prefix: str) -> list[tuple[str, int]]:
    """(id, event.count) of every document under ``prefix`` (a copy of an id in two indices counts twice)."""
    from soc.config import ESConfig
    from soc.sinks import elasticsearch as es
    from tests.test_es import PASSWORD, URL, all_docs

    client = es.connect(ESConfig(url=URL, username="elastic", password=PASSWORD))
    if not client.indices.exists(index=f"{prefix}-*", allow_no_indices=False):
        return []
    return [(doc_id, src["event"]["count"]) for _, doc_id, src in all_docs(client, prefix)]


def drop_indices(prefix: str) -> None:
    from soc.config import ESConfig
    from soc.sinks import elasticsearch as es
    from tests.test_es import PASSWORD, URL

    client = es.connect(ESConfig(url=URL, username="elastic", password=PASSWORD))
    client.indices.delete(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="all")


@pytest.mark.slow
@pytest.mark.usefixtures("server")
def test_kill_9_at_random_points_is_exactly_once(tmp_path):
    """Issue 20 acceptance: a log grows in 20 steps; after each step `soc jobs run-once` is killed with SIGKILL,
    at a named point of the run (after planning, the hunt, the store, Elasticsearch, the saved checkpoints, the
    commit) or after a random delay (seeded), then the log grows again. A last run catches up. The alerts in the
    store and in the real Elasticsearch are those of the same job run at every step without a kill: the same
    ids, none twice."""
    import random

    steps, rng = 20, random.Random(20)
    runs = {}
    for kind in ("whole", "killed"):
        drop_indices(f"t-jobs-{kind}")
        root = tmp_path / kind
        root.mkdir()
        runs[kind] = (root / "logs", job_config(root, root / "logs", "elasticsearch = true",
                                                es=es_block(f"t-jobs-{kind}")), root / "data")
    logs, cfg, data = runs["whole"]
    took = []
    for step in range(steps):
        grow(logs, step, steps)
        t0 = time.monotonic()
        done = soc("jobs", "run-once", "logs", "--config", str(cfg))
        took.append(time.monotonic() - t0)
        assert done.returncode == 0, done.stderr[-3000:]

    logs, cfg, data = runs["killed"]
    args = [sys.executable, "-m", "soc", "jobs", "run-once", "logs", "--config", str(cfg)]
    outcomes = []
    for step in range(steps):
        grow(logs, step, steps)
        env = {**os.environ, "SOC_CONFIG": ""}
        if step % 2 == 0:  # at a named point of the run
            env["SOC_JOBS_KILL_AT"] = KILL_POINTS[(step // 2) % len(KILL_POINTS)]
            code = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, timeout=120).returncode
        else:  # at a random moment of it
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with contextlib.suppress(subprocess.TimeoutExpired):  # a run done before its moment is not waited for
                proc.wait(timeout=rng.uniform(0.05, 1.2 * max(took)))
            proc.kill()
            code = proc.wait()
        outcomes.append(code)
    assert outcomes.count(-signal.SIGKILL) >= 10, outcomes  # every named point killed its run
    final = soc("jobs", "run-once", "logs", "--config", str(cfg), "--json")
    assert final.returncode == 0, final.stderr[-3000:]

    whole, killed = (current_alerts(runs[kind][2]) for kind in ("whole", "killed"))
    assert whole.height > 10
    assert killed.equals(whole), "the alerts differ from the uninterrupted job's"
    for kind in runs:  # a version of an alert is stored once (a fuller one may follow it, never a copy)
        versions = all_versions(runs[kind][2])
        assert versions.is_unique().all(), f"{kind}: an alert version stored twice"
    in_es = {kind: es_alerts(f"t-jobs-{kind}") for kind in runs}
    assert len(set(in_es["killed"])) == len(in_es["killed"]), "an alert indexed twice"
    expected = sorted(zip(whole.get_column("event.id"), whole.get_column("event.count"), strict=True))
    assert sorted(in_es["killed"]) == sorted(in_es["whole"]) == expected
    for kind in runs:
        drop_indices(f"t-jobs-{kind}")


def test_missing_generation_is_an_error_not_a_reread(tmp_path):
    """CURRENT naming a generation that is gone stops the job (exit 5) rather than read every input again."""
    logs = tmp_path / "logs"
    grow(logs, 0, 4)
    cfg = job_config(tmp_path, logs)
    assert soc("jobs", "run-once", "logs", "--config", str(cfg)).returncode == 0
    folder = job_dir(tmp_path / "data", "logs")
    assert (folder / "CURRENT").read_text().strip() == "gen-00000001"
    import shutil

    shutil.rmtree(folder / "gen-00000001")
    gone = soc("jobs", "run-once", "logs", "--config", str(cfg))
    assert gone.returncode == 5 and "gen-00000001, which is missing" in gone.stderr
    assert read_records(folder)[-1]["status"] == "failed"


def test_job_runs_over_growing_logs_equal_one_hunt(tmp_path):
    """Issue 20's property end to end: every text log of sample_logs/ grows in 5 steps (cut mid-line where it
    can), `soc jobs run-once` after each step (checkpoints, detector and correlation state, the store); the
    alerts stored at the end are those of one `soc hunt` over the whole logs: the same ids, counts and windows."""
    samples = ROOT / "sample_logs"
    logs, steps = tmp_path / "logs", 5
    files = sorted(p for p in samples.rglob("*") if p.is_file())
    assert len(files) >= 7
    cfg = job_config(tmp_path, logs)
    for step in range(steps):
        for src in files:
            data = src.read_bytes()
            lo, hi = len(data) * step // steps, len(data) * (step + 1) // steps
            target = logs / src.relative_to(samples)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "ab") as fh:
                fh.write(data[lo:hi])
        done = soc("jobs", "run-once", "logs", "--config", str(cfg))
        assert done.returncode == 0, done.stderr[-3000:]
    one = tmp_path / "one"
    hunt = soc("hunt", str(logs), "--year", "2026", "--data-dir", str(one), "--no-es", "--config", os.devnull)
    assert hunt.returncode == 0, hunt.stderr[-3000:]
    job, whole = current_alerts(tmp_path / "data"), current_alerts(one)
    assert whole.height >= 40 and whole.get_column("rule.id").n_unique() >= 15  # Sigma rules and detectors
    assert job.equals(whole), job.join(whole, on="event.id", how="full", suffix="_hunt")
