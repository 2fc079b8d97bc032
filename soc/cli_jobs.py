"""``soc jobs``: the scheduled, incremental hunts of the configuration's ``[[jobs]]`` (``soc.jobs``).

Exit codes of ``soc jobs run-once NAME`` (for cron and systemd timers): 0 the run is committed; 1 new alerts
(only with ``--fail-on-alert``); 2 usage or configuration error; 3 Elasticsearch did not take the alerts (kept
in the store; the next run sends them again); 4 the job is running already; 5 the run failed (nothing
committed; see ``soc jobs status``); 6 committed, with errors (an unreadable input is read again next run; a
rule or detector failed). ``soc jobs run`` exits 0 when stopped by SIGTERM or SIGINT, 2 on a
configuration error, 4 when another scheduler works on the same data folder.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from soc.i18n import N_, _, number


def _options(f):
    f = click.option("--data-dir", default=None, type=click.Path(file_okay=False),
                     help="Data folder (default: from the configuration, SOC_DATA_DIR, else ./soc-data).")(f)
    return click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                        help="TOML configuration with [[jobs]] (default: SOC_CONFIG, else ./soc.toml).")(f)


def _config(config_path, data_dir, names=()):
    """(configuration, its jobs named by ``names`` or all of them); usage errors exit 2."""
    from soc.config import ConfigError, load_config

    try:
        cfg = load_config(config_path)
        jobs = [cfg.job(n) for n in dict.fromkeys(names)] if names else cfg.jobs
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if data_dir:
        cfg.data_dir = data_dir
    if not jobs:
        raise click.UsageError(_("no [[jobs]] in %(source)s")
                               % {"source": cfg.source or _("the configuration (no soc.toml found)")})
    from soc.private import prepare

    warning = prepare(cfg.data_dir)
    if warning:
        click.echo(f"{_('warning')}: {warning}", err=True)
    return cfg, jobs


@click.group("jobs")
def jobs_group():
    """Scheduled, incremental hunts ([[jobs]] in the configuration): each run reads only what was appended."""


@jobs_group.command("list")
@_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job.")
def jobs_list(config_path, data_dir, as_json):
    """Each job, its inputs, its schedule and its next run."""
    from soc.jobs.run import job_dir, last_start

    cfg, jobs = _config(config_path, data_dir)
    now = datetime.now(UTC)
    rows = []
    for job in jobs:
        last = last_start(job_dir(cfg.data_dir, job.name))
        nxt = job.schedule.next_run(last, now)
        rows.append({"name": job.name, "schedule": job.schedule.describe(), "inputs": job.inputs,
                     "last_start": last.isoformat() if last else None,
                     "next_run": max(nxt, now).isoformat(), "due": nxt <= now})
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    from soc.sinks.terminal import printable, render_table

    table = [(printable(r["name"]), printable(r["schedule"]), _when(r["last_start"]),
              _("now (due)") if r["due"] else _when(r["next_run"]), printable(", ".join(r["inputs"]))[:120])
             for r in rows]
    title = _("%(n)s jobs (%(source)s)") % {"n": number(len(rows)), "source": cfg.source or _("no configuration file")}
    click.echo(render_table(title, [(_("job"), "left"), (_("schedule"), "left"), (_("last run (UTC)"), "left"),
                                    (_("next run (UTC)"), "left"), (_("inputs"), "left")], table))


@jobs_group.command("run")
@click.argument("names", nargs=-1, metavar="[NAME...]")
@_options
@click.option("--parallel", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Jobs run at the same time at most (each job never twice at once).")
def jobs_run(names, config_path, data_dir, parallel):
    """Run the due jobs (NAMEs, default all) until SIGTERM or SIGINT: each run is a `soc jobs run-once` child
    that appends one JSON record to DATA_DIR/jobs/<name>/runs.ndjson. A job missed while the scheduler was down
    runs once. A second scheduler on the same data folder is refused (exit 4)."""
    from soc.jobs.lock import LockHeld
    from soc.jobs.run import EXIT_BUSY
    from soc.jobs.scheduler import Scheduler, run_once_command, scheduler_lock

    cfg, jobs = _config(config_path, data_dir, names)
    try:
        lock = scheduler_lock(cfg.data_dir).acquire()
    except LockHeld as exc:
        click.echo(f"{_('error')}: {exc}: " + _("one scheduler per data folder (stop it first, or use another "
                                                "data folder)"), err=True)
        sys.exit(EXIT_BUSY)

    def say(text: str) -> None:
        click.echo(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {text}")

    scheduler = Scheduler(jobs, cfg.data_dir, run_once_command(cfg.source, cfg.data_dir), parallel=parallel,
                          say=say)
    scheduler.handle_signals()
    say(_("scheduler started: %(n)s jobs (%(names)s), data folder %(path)s")
        % {"n": number(len(jobs)), "names": ", ".join(j.name for j in jobs), "path": cfg.data_dir})
    try:
        scheduler.loop()
    finally:
        lock.release()
    say(_("scheduler stopped after %(n)s runs") % {"n": number(scheduler.launched)})


@jobs_group.command("run-once")
@click.argument("name")
@_options
@click.option("--fail-on-alert", is_flag=True, help="Exit 1 when the run found new alerts.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's record as JSON.")
def jobs_run_once(name, config_path, data_dir, fail_on_alert, as_json):
    """Run job NAME now, once (for cron and systemd timers). Exit codes: 0 committed, 1 new alerts (with
    --fail-on-alert), 2 usage or configuration error, 3 Elasticsearch did not take the alerts (kept in the
    store, sent again next run), 4 the job is running already, 5 the run failed (nothing committed), 6 committed
    with errors (an input that could not be read is read again next run; a rule or detector failed)."""
    from soc.jobs.run import run_job
    from soc.runtime import collect_less_often, one_blas_thread, reuse_freed_memory

    cfg, jobs = _config(config_path, data_dir, [name])
    one_blas_thread()
    reuse_freed_memory()
    collect_less_often()
    code, record = run_job(cfg, jobs[0], fail_on_alert=fail_on_alert)
    if as_json:
        click.echo(json.dumps(record, default=str))
    else:
        click.echo(_line(record))
    for error in record.get("errors") or []:
        from soc.sinks.terminal import printable

        click.echo(f"{_('error')}: " + _("job %(name)s: %(error)s") % {"name": name, "error": printable(str(error))},
                   err=True)
    sys.exit(code)


@jobs_group.command("status")
@click.argument("names", nargs=-1, metavar="[NAME...]")
@_options
@click.option("-n", "--last", "last", type=click.IntRange(1), default=5, show_default=True,
              help="Runs shown per job.")
@click.option("--json", "as_json", is_flag=True, help="The records as NDJSON, with the lag at this moment.")
def jobs_status(names, config_path, data_dir, last, as_json):
    """The last runs of each job: start, duration, files, bytes and records read, dead letters, matches, new
    alerts, errors, and the lag between the newest event read and now."""
    from soc.jobs.run import job_dir, read_records

    cfg, jobs = _config(config_path, data_dir, names)
    now = datetime.now(UTC)
    rows = []
    for job in jobs:
        records = read_records(job_dir(cfg.data_dir, job.name))
        newest = _newest_event(records)
        for record in records[-last:]:
            record = {**record, "lag_seconds": round((now - newest).total_seconds(), 1) if newest else None}
            rows.append(record)
        if not records:
            rows.append({"job": job.name, "status": "never ran"})
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    from soc.sinks.terminal import printable, render_table

    table = []
    for r in rows:
        errors = r.get("errors") or []
        table.append((printable(r["job"]), _when(r.get("start")), _num(r.get("seconds"), ".1f"),
                      printable(_status(r.get("status", "-"))), _num(r.get("files")), _bytes(r.get("bytes")),
                      _num(r.get("records")), _num(r.get("dead")), _num(r.get("matches")),
                      _num(r.get("new_alerts")), _lag(r.get("lag_seconds")),
                      printable(f"{len(errors)}: {errors[0]}"[:80]) if errors else "0"))
    columns = [(N_("job"), "left"), (N_("start (UTC)"), "left"), ("s", "right"), (N_("status"), "left"),
               (N_("files"), "right"), (N_("bytes"), "right"), (N_("records"), "right"), (N_("dead"), "right"),
               (N_("matches"), "right"), (N_("new alerts"), "right"), (N_("lag"), "right"), (N_("errors"), "left")]
    click.echo(render_table(_("last runs in %(path)s (lag: newest event read to now)")
                            % {"path": f"{cfg.data_dir}/jobs/"}, [(_(n), j) for n, j in columns], table))


def _status(status: str) -> str:
    """A run's status for the eye ("never ran" translated; the statuses of records are values, kept)."""
    return _("never ran") if status == "never ran" else status


def _newest_event(records: list[dict]) -> datetime | None:
    for record in reversed(records):
        if record.get("newest_event"):
            try:
                return datetime.fromisoformat(record["newest_event"])
            except (TypeError, ValueError):
                continue
    return None


def _line(record: dict) -> str:
    parts = [_("job %(name)s: %(status)s") % {"name": record["job"], "status": record.get("status")},
             f"{number(record.get('seconds', 0), 1, group=False)} s"]
    for key, what in (("files", N_("files")), ("records", N_("records")), ("dead", N_("dead")),
                      ("matches", N_("matches")), ("alerts", N_("alerts")), ("new_alerts", N_("new"))):
        if record.get(key) is not None:
            parts.append(f"{number(record[key])} {_(what)}")
    return ", ".join(parts)


def _when(text: str | None) -> str:
    if not text:
        return "-"
    with_zone = datetime.fromisoformat(text).astimezone(UTC)
    return f"{with_zone:%Y-%m-%d %H:%M:%S}"


def _num(value, fmt: str = ",") -> str:
    if value is None:
        return "-"
    return number(value) if fmt == "," else number(value, 1, group=False) if fmt == ".1f" else format(value, fmt)


def _bytes(value) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{number(value, 0)} {unit}" if unit == "B" else f"{number(value, 1)} {unit}"
        value /= 1024
    return str(value)


def _lag(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{number(seconds / 3600, 1, group=False)} h"
    return f"{number(seconds / 86400, 1, group=False)} d"
