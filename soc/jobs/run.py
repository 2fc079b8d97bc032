"""One run of a job, exactly once whatever kills it: lock -> plan from the checkpoints -> hunt with the job's
state -> alerts stored and indexed -> checkpoints and state saved together -> one JSON record in the run log.

Layout under ``DATA_DIR/jobs/<name>/``: ``.lock`` (held by the run: a job never runs twice at once),
``runs.ndjson`` (one record a run; ``runs.ndjson.1`` the previous part once it passes ``LOG_BYTES``),
``CURRENT`` (the name of the committed generation), ``gen-<n>/`` (generation n: ``checkpoints.json``, the
registry of ``soc.jobs.checkpoints``, and ``state/``, the detector and correlation state of
``soc.jobs.state``) and ``out/<n>/`` (run n's Sigma matches, detector hits and dead letters).

A run works in generation n+1, a copy of n: the hunt (``soc.hunt.run_hunt``, seeded with n's state) reads
what n's checkpoints have not, the state turns its hits into alert changes (new alerts, fuller versions of
open ones, retractions), the store takes them (``AlertStore.upsert``: a version it holds already is not
written again) and Elasticsearch too (each alert written over its id); only then are the checkpoints and the
state saved in n+1, and ``CURRENT`` replaced (one atomic rename) to name it. Killed before that rename, the
next run starts again from n, in a fresh n+1: same inputs, same state, so the same changes, which the store
and Elasticsearch absorb. The checkpoints, the state and the outputs of a run move together.

Exit codes of ``soc jobs run-once`` (``EXIT_CODES``): 0 the run is committed; 1 committed, and new alerts were
found (only with ``--fail-on-alert``); 2 usage or configuration error; 3 Elasticsearch did not take the
alerts (they are in the store; nothing committed, the next run sends them again); 4 the job is running
already (lock held; nothing done); 5 the run failed (nothing committed; the errors are in its record); 6 the
run is committed but had errors (an input that could not be read keeps its checkpoint and is read again next
run; a rule or detector that failed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from soc.jobs.lock import Lock, LockHeld
from soc.private import TEMP_DIR, make_dir, opener, remove_stale, writing

EXIT_OK, EXIT_ALERTS, EXIT_USAGE, EXIT_ES, EXIT_BUSY, EXIT_FAILED, EXIT_ERRORS = 0, 1, 2, 3, 4, 5, 6
EXIT_CODES = (EXIT_OK, EXIT_ALERTS, EXIT_USAGE, EXIT_ES, EXIT_BUSY, EXIT_FAILED, EXIT_ERRORS)
LOG = "runs.ndjson"
LOG_BYTES = 8 << 20  # then the log starts a new part (one previous part kept)
CURRENT = "CURRENT"


def job_dir(data_dir: str | Path, name: str) -> Path:
    return Path(data_dir) / "jobs" / name


# -- the run log ----------------------------------------------------------------------------------------------------


def append_record(folder: Path, record: dict) -> None:
    """One JSON line, appended with one write (O_APPEND: lines of two writers never interleave)."""
    make_dir(folder)
    log = folder / LOG
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_BYTES:
            os.replace(log, folder / f"{LOG}.1")
    line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    fd = opener(str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_records(folder: Path, last: int | None = None) -> list[dict]:
    """The records of the run log, oldest first (the last ``last`` of them); a torn line is skipped."""
    records = []
    for part in (folder / f"{LOG}.1", folder / LOG):
        with contextlib.suppress(OSError), open(part, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
    return records[-last:] if last else records


def last_start(folder: Path) -> datetime | None:
    """When the job's last run started (any outcome), for the schedule; None if it never ran."""
    for record in reversed(read_records(folder, 50)):
        with contextlib.suppress(KeyError, ValueError, TypeError):
            return datetime.fromisoformat(record["start"])
    return None


# -- generations: the checkpoints and the state of one committed run ----------------------------------------------


def current_generation(folder: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int((folder / CURRENT).read_text().strip().removeprefix("gen-"))
    return 0


def generation_dir(folder: Path, n: int) -> Path:
    return folder / f"gen-{n:08d}"


def begin_generation(folder: Path) -> tuple[Path, int]:
    """A fresh generation n+1, a copy of n's files (not its outputs): what a killed run left there is thrown
    away, and so are older generations no longer named by ``CURRENT``."""
    n = current_generation(folder)
    for old in folder.glob("gen-*"):
        if old.name != generation_dir(folder, n).name:
            shutil.rmtree(old, ignore_errors=True)
    base = generation_dir(folder, n)
    if n and not base.is_dir():  # never a silent read of everything again
        raise JobError(f"{folder / CURRENT} names {base.name}, which is missing: restore it, or remove "
                       f"{CURRENT} to read every input again from its start")
    remove_stale(folder)  # temporary files of killed runs
    new = make_dir(generation_dir(folder, n + 1))
    if n:
        shutil.copytree(base, new, dirs_exist_ok=True, ignore=shutil.ignore_patterns(TEMP_DIR, ".*.tmp"))
    return new, n + 1


def commit_generation(folder: Path, n: int) -> None:
    """Name generation ``n`` in ``CURRENT`` (temporary file, fsync, rename: all of it or none)."""
    gen = generation_dir(folder, n)
    _fsync_tree(gen)
    with writing(folder / CURRENT, folder) as tmp, open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{gen.name}\n")
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(folder)
    with contextlib.suppress(OSError):
        shutil.rmtree(generation_dir(folder, n - 1), ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    """``path`` (a folder or a file) flushed to disk; where the system refuses, nothing."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- one run --------------------------------------------------------------------------------------------------------


def run_job(cfg, job, fail_on_alert: bool = False) -> tuple[int, dict]:
    """Run ``job`` (``soc.config.JobConfig``) once under its lock; (exit code, the record appended)."""
    folder = job_dir(cfg.data_dir, job.name)
    start = datetime.now(UTC)
    record: dict = {"job": job.name, "start": start.isoformat(), "pid": os.getpid()}
    try:
        lock = Lock(folder / ".lock", f"job {job.name}").acquire()
    except LockHeld as exc:
        record.update(status="busy", seconds=0.0, errors=[str(exc)])
        append_record(folder, record)
        return EXIT_BUSY, record
    t0 = time.perf_counter()
    try:
        code = _run(cfg, job, folder, record)
    except Exception as exc:  # the run failed: nothing committed, the next run starts from the same place
        record["status"] = "failed"
        record.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
        record["traceback"] = traceback.format_exc(limit=8)[-4000:]
        code = EXIT_FAILED
    finally:
        record["end"] = datetime.now(UTC).isoformat()
        record["seconds"] = round(time.perf_counter() - t0, 3)
        lock.release()
    if code == EXIT_OK and fail_on_alert and record.get("new_alerts"):
        code = EXIT_ALERTS
    append_record(folder, record)
    return code, record


def _run(cfg, job, folder: Path, record: dict) -> int:
    from soc.jobs.checkpoints import Checkpoints

    gen, n = begin_generation(folder)
    record["generation"] = n
    out = outputs_dir(folder, n)
    checkpoints = Checkpoints.load(gen / CHECKPOINTS)
    plan = checkpoints.plan(job.inputs)
    _kill_point("planned")
    record["reading"] = dict(list(plan.reasons.items())[:50])
    if plan.forgotten:
        record["forgotten"] = plan.forgotten[:50]
    if plan.missing:
        record["warnings"] = [f"no file matches {', '.join(plan.missing)}"]
    if not plan.sources:  # nothing appended: no hunt (its state and alerts could not change), a new registry
        record.update(files=0, bytes=0, records=0, parsed=0, dead=0, matches=0, hits=0, alerts=0, new_alerts=0)
        checkpoints.advance(plan, [])
        checkpoints.save()
    else:
        from soc.jobs.state import JobState

        state = JobState.load(gen / STATE)
        report = _hunt(cfg, job, plan, state, out)
        _kill_point("hunted")
        counts = _counts(report)
        counts["warnings"] = record.get("warnings", []) + counts.get("warnings", [])
        record.update((k, v) for k, v in counts.items() if v or k != "warnings")
        changes = _changes(cfg, state, report)
        if not _store_and_index(cfg, job, changes, record):
            record["status"] = "es_failed"
            return EXIT_ES
        checkpoints.advance(plan, report.stats)  # a file whose read failed keeps its checkpoint: read again
        checkpoints.save()
        state.save(gen / STATE)
        record["state"] = state.size()
    _kill_point("saved")
    commit_generation(folder, n)
    _kill_point("committed")
    shutil.rmtree(out / "alerts", ignore_errors=True)  # the hunt's own, built without the state: not the job's
    with contextlib.suppress(OSError):
        out.rmdir()  # a run that read nothing new keeps no empty folder
    if record.get("errors"):
        record["status"] = "ok_with_errors"
        return EXIT_ERRORS
    record["status"] = "ok"
    return EXIT_OK


CHECKPOINTS = "checkpoints.json"  # soc.jobs.checkpoints, in each generation
STATE = "state"  # soc.jobs.state, in each generation
OUT = "out"


def _kill_point(name: str) -> None:
    """Tests of exactly-once runs: ``SOC_JOBS_KILL_AT=<name>`` makes the run die here as kill -9 would."""
    if os.environ.get("SOC_JOBS_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def outputs_dir(folder: Path, n: int) -> Path:
    """Where run ``n`` keeps its matches, detector hits and dead letters (emptied first: a killed run's)."""
    out = folder / OUT / f"{n:08d}"
    shutil.rmtree(out, ignore_errors=True)
    return make_dir(out)


def _hunt(cfg, job, plan, state, out: Path):
    """The hunt of what the plan reads, with the job's state; it writes under ``out`` (its matches, hits and
    dead letters; it delivers no alerts: ``_changes`` builds the job's with the state)."""
    from soc import pipeline
    from soc.hunt import HuntError, HuntRequest, run_hunt

    options = pipeline.Options(format=job.format, zone=job.tz, year=job.year, chunk_size=job.chunk_mb << 20)
    request = HuntRequest(
        inputs=list(plan.sources), data_dir=str(out), config=cfg, rules=job.rules, placeholders=job.placeholders,
        detectors=job.detectors or (), no_detectors=job.detectors is None, settings=job.settings, options=options,
        to_es=False, deliver=False, make_hunter=state.make_hunter, make_runner=state.make_runner, ray=job.ray)
    try:
        return run_hunt(request)
    except HuntError as exc:
        raise JobError(str(exc)) from None


class JobError(RuntimeError):
    """A run that cannot go on as configured (bad rules path, detector setting ...): exit 5, nothing committed."""


def _changes(cfg, state, report):
    """The run's alert changes (``soc.jobs.state.AlertChanges``) from its Sigma matches and detector hits."""
    from soc.alerts import load_inventory, load_policy
    from soc.alerts.build import HIT_COLUMNS

    hits = []
    if report.sigma is not None and report.sigma.count:
        hits += list(report.sigma.matches.batches(columns=HIT_COLUMNS))
    if report.detectors is not None and report.detectors.hits.height:
        hits.append(report.detectors.hits)
    policy = load_policy(cfg.alerts.policy)
    inventory = load_inventory(cfg.alerts.inventory) if cfg.alerts.inventory else None
    return state.alerts(hits, policy, inventory, cfg.alerts.window)


def _store_and_index(cfg, job, changes, record: dict) -> bool:
    """The run's alert changes into the data folder's store, then Elasticsearch; False when Elasticsearch could
    not take them (nothing is committed then: the next run, from the same state, makes the same changes and
    sends them again). Both absorb what a killed run already wrote: the store writes only versions it does not
    hold (``AlertStore.upsert``), Elasticsearch writes each alert over its id (``op_type=index``), creates late
    ones (``create``: 409 if there) and deletes retracted ones."""
    from soc.sinks.alert_store import AlertStore

    store = AlertStore(cfg.data_dir)
    written = store.upsert(changes.alerts, changes.retracted, changes.late)
    _kill_point("stored")
    record.update(alerts=changes.alerts.height + changes.late.height, new_alerts=written,
                  retracted=len(changes.retracted))
    to_es = job.elasticsearch if job.elasticsearch is not None else bool(cfg.elasticsearch.url)
    if not to_es:
        return True
    error, totals = _index(cfg, changes)
    record["elasticsearch"] = totals
    if error:
        record.setdefault("errors", []).append(f"elasticsearch: {error}")
        return False
    _kill_point("indexed")
    return True


def _index(cfg, changes) -> tuple[str | None, dict]:
    """(why Elasticsearch could not take the changes or None, what it did)."""
    from soc.sinks import elasticsearch as es

    totals = {"indexed": 0, "duplicates": 0, "dead": 0, "deleted": 0}
    try:
        client = es.connect(cfg.elasticsearch)
        es.ensure_setup(client, cfg.elasticsearch)
    except es.ESError as exc:
        return str(exc), totals
    for frame, op in ((changes.alerts, "index"), (changes.late, "create")):
        if frame.height:
            report = es.index_alerts(client, frame, cfg.data_dir, cfg.elasticsearch, op=op)
            for key in ("indexed", "duplicates", "dead"):
                totals[key] += getattr(report, key)
            if report.error:
                return report.error, totals
    if changes.retracted:
        try:
            totals["deleted"] = _retract(client, changes.retracted, cfg.elasticsearch.index_prefix)
        except Exception as exc:  # noqa: BLE001 - any failure: not committed, the next run retracts again
            return es.explain(exc, cfg.elasticsearch.url), totals
    return None, totals


def _retract(client, ids: list[str], prefix: str) -> int:
    """Delete the documents of ``ids`` (their hits are gone) from ``<prefix>-*``, wherever their month put them."""
    deleted = 0
    for lo in range(0, len(ids), 1000):
        part = ids[lo:lo + 1000]
        found = client.search(index=f"{prefix}-*", query={"ids": {"values": part}}, size=len(part) * 4,
                              source=False, allow_no_indices=True, ignore_unavailable=True)
        ops = [{"delete": {"_index": h["_index"], "_id": h["_id"]}} for h in found["hits"]["hits"]]
        if ops:
            client.bulk(operations=ops, refresh="wait_for")
            deleted += len(ops)
    return deleted


def _counts(report) -> dict:
    """What the run record says of the hunt (``soc jobs status``)."""
    stats = report.stats
    newest = max((st.last for st in stats if st.last is not None), default=None)
    counts = {
        "sources": len(stats),
        "files": sum(1 for st in stats if st.bytes or st.read),
        "bytes": sum(st.bytes for st in stats),
        "records": sum(st.read for st in stats),
        "parsed": sum(st.parsed for st in stats),
        "dead": sum(st.dead for st in stats),
        "matches": (report.sigma.count if report.sigma else 0),
        "hits": (report.detectors.hits.height if report.detectors else 0),
        "stages": {k: round(v, 3) for k, v in report.seconds.items()},  # the hunt's seconds per stage
        "newest_event": newest.isoformat() if newest else None,
        "lag_seconds": round((datetime.now(UTC) - newest).total_seconds(), 1) if newest else None,
    }
    errors = list(report.errors)
    if errors:
        counts["errors"] = errors
    if report.warnings:
        counts["warnings"] = report.warnings[:20]
    return counts
