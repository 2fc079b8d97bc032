"""What a report says, computed from the alert store (never from the logs), the jobs' run records and the
dead letters: plain rows (dicts and lists) that ``soc.report.render`` lays out. Nothing here is translated or
formatted: labels are message ids (``N_``) and numbers stay numbers.

Sudden rises and drops (the reviews ask the SOC to watch them): a count is a *rise* when it is at least twice
the previous period's and at least ``MIN_CHANGE`` more, a *drop* when the previous count was at least
``MIN_CHANGE`` and it fell to half or less. A time-series bucket is a *spike* when it passes the median of the
period's buckets by more than 3 median absolute deviations (at least 1) and holds at least ``MIN_CHANGE``
alerts, a *drop* when the median is at least ``MIN_CHANGE`` and the bucket falls that far below it (robust
statistics: one burst does not hide the next).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from soc.i18n import N_
from soc.report.period import ZONE, Period

MIN_CHANGE = 5
TOP = 10
PER_AGENCY = 30  # alerts listed per agency for its own staff (layer 1)
SEVERITIES = ((5, "critical"), (4, "high"), (3, "medium"), (2, "low"), (1, "informational"))
SEVERITY_NAMES = {"critical": N_("critical"), "high": N_("high"), "medium": N_("medium"), "low": N_("low"),
                  "informational": N_("informational")}
LAYER_NAMES = {"1": N_("Layer 1: on-site staff"), "2": N_("Layer 2: professional monitoring and protection"),
               "3": N_("Layer 3: independent periodic assessment"),
               "4": N_("Layer 4: information sharing with the national monitoring system")}


@dataclass
class ReportData:
    period: Period
    previous: Period
    agency: str | None
    layer: str | None
    total: int
    total_before: int
    severity: list[dict]
    layers: list[dict]
    agencies: list[dict]
    series: list[dict]
    top_rules: list[dict]
    top_techniques: list[dict]
    top_sources: list[dict]
    top_targets: list[dict]
    layer1: list[dict]
    health: dict
    coverage: dict
    layer4: dict
    generated: datetime = field(default_factory=lambda: datetime.now(ZONE))


def flag(now: int, before: int) -> str | None:
    """"rise", "drop" or None (see the module's docstring)."""
    if now >= max(2 * before, before + MIN_CHANGE):
        return "rise"
    if before >= MIN_CHANGE and 2 * now <= before:
        return "drop"
    return None


def _utc(stamp: datetime) -> datetime:
    return stamp.astimezone(UTC)


def _in(lf: pl.LazyFrame, period: Period) -> pl.LazyFrame:
    return lf.filter((pl.col("@timestamp") >= _utc(period.start)) & (pl.col("@timestamp") < _utc(period.end)))


def _counts(frame: pl.DataFrame, keys: list[str]) -> dict[tuple, int]:
    if frame.height == 0:
        return {}
    grouped = frame.group_by(keys).len()
    return {tuple(row[:-1]): row[-1] for row in grouped.iter_rows()}


def _compare(now: pl.DataFrame, before: pl.DataFrame, keys: list[str]) -> list[dict]:
    """Counts per ``keys`` now and before, with their flag; most alerts first."""
    a, b = _counts(now, keys), _counts(before, keys)
    rows = [{"key": k, "now": a.get(k, 0), "before": b.get(k, 0), "flag": flag(a.get(k, 0), b.get(k, 0))}
            for k in set(a) | set(b)]
    return sorted(rows, key=lambda r: (-r["now"], -r["before"], [str(x) for x in r["key"]]))


def severity_rows(now: pl.DataFrame, before: pl.DataFrame) -> list[dict]:
    a, b = _counts(now, ["event.severity"]), _counts(before, ["event.severity"])
    return [{"severity": n, "name": name, "now": a.get((n,), 0), "before": b.get((n,), 0),
             "flag": flag(a.get((n,), 0), b.get((n,), 0))} for n, name in SEVERITIES]


def series(frame: pl.DataFrame, period: Period) -> list[dict]:
    """Alerts per hour (short periods) or per day, Vietnam time, every bucket of the period (zeros too)."""
    step = timedelta(hours=1) if period.hourly else timedelta(days=1)
    starts, t = [], period.start
    while t < period.end:
        starts.append(t)
        t = (t + step) if period.hourly else datetime(*(t + timedelta(days=1)).timetuple()[:3], tzinfo=ZONE)
    counts = dict.fromkeys(starts, 0)
    if frame.height:
        local = frame.get_column("@timestamp").dt.convert_time_zone(str(ZONE))
        local = local.dt.truncate("1h" if period.hourly else "1d")
        for stamp, n in pl.DataFrame({"t": local}).group_by("t").len().iter_rows():
            key = stamp.astimezone(ZONE)
            if key in counts:
                counts[key] += n
    values = list(counts.values())
    median, mad = _median(values), 0.0
    if values:
        mad = _median([abs(v - median) for v in values])
    spread = 3 * max(mad, 1.0)
    rows = []
    for start, n in counts.items():
        mark = None
        if n >= MIN_CHANGE and n > median + spread:
            mark = "spike"
        elif median >= MIN_CHANGE and n < median - spread:
            mark = "drop"
        rows.append({"start": start, "count": n, "flag": mark})
    return rows


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _top(frame: pl.DataFrame, expr: pl.Expr, before: pl.DataFrame) -> list[dict]:
    def count(f: pl.DataFrame) -> pl.DataFrame:
        if f.height == 0:
            return pl.DataFrame({"value": [], "len": []}, schema={"value": pl.String, "len": pl.UInt32})
        return f.select(expr.alias("value")).explode("value").drop_nulls().group_by("value").len()

    now, prev = count(frame), dict(count(before).iter_rows())
    now = now.sort(["len", "value"], descending=[True, False]).head(TOP)
    return [{"value": v, "now": n, "before": prev.get(v, 0), "flag": flag(n, prev.get(v, 0))}
            for v, n in now.iter_rows()]


def tops(now: pl.DataFrame, before: pl.DataFrame) -> dict[str, list[dict]]:
    rule = pl.concat_str([pl.col("rule.name"), pl.lit(" ("), pl.col("rule.id"), pl.lit(")")])
    target = pl.coalesce("destination.address", "destination.ip", "host.hostname")
    return {
        "rules": _top(now, pl.concat_list(rule), before),
        "techniques": _top(now, pl.col("threat.technique.id"), before),
        "sources": _top(now, pl.concat_list(pl.coalesce("source.address", "source.ip")), before),
        "targets": _top(now, pl.concat_list(target), before),
    }


def layer1(frame: pl.DataFrame) -> list[dict]:
    """Per agency (most severe first): the alerts its own staff must check, with where the evidence is."""
    if frame.height == 0:
        return []
    frame = frame.sort(["event.severity", "@timestamp"], descending=[True, False], nulls_last=True)
    out = []
    for (agency,), part in frame.group_by(["organization.name"], maintain_order=True):
        rows = [{
            "time": r["@timestamp"], "severity": r["labels.severity"], "rule": r["rule.name"],
            "rule_id": r["rule.id"], "source": r["source.address"] or r["source.ip"],
            "target": r["destination.address"] or r["destination.ip"] or r["host.hostname"],
            "user": r["user.name"], "system": r["labels.system"], "level": r["labels.security_level"],
            "count": r["event.count"], "file": r["log.file.path"], "line": r["log.line"],
            "values": ", ".join(r["evidence.values"] or []), "id": r["event.id"],
        } for r in part.head(PER_AGENCY).iter_rows(named=True)]
        out.append({"agency": agency, "total": part.height,
                    "max_severity": part.get_column("event.severity").max(), "alerts": rows})
    return sorted(out, key=lambda a: (-(a["max_severity"] or 0), -a["total"], a["agency"] or ""))


def _runs(data_dir: Path, period: Period) -> list[dict]:
    """Per job, its runs that started in the period: records read, dead-lettered, newest event, last status."""
    jobs = []
    for folder in sorted((data_dir / "jobs").glob("*/")) if (data_dir / "jobs").is_dir() else []:
        runs = []
        for name in ("runs.ndjson.1", "runs.ndjson"):
            path = folder / name
            if path.exists():
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    try:
                        rec = json.loads(line)
                        start = datetime.fromisoformat(rec["start"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    if period.start <= start < period.end:
                        runs.append(rec)
        if not runs:
            jobs.append({"job": folder.name, "runs": 0, "records": 0, "dead": 0, "rate": None, "newest": None,
                         "status": None, "silent": True})
            continue
        records = sum(int(r.get("records") or 0) for r in runs)
        dead = sum(int(r.get("dead") or 0) for r in runs)
        newest = max((r["newest_event"] for r in runs if r.get("newest_event")), default=None)
        jobs.append({"job": folder.name, "runs": len(runs), "records": records, "dead": dead,
                     "rate": dead / records if records else None,
                     "newest": datetime.fromisoformat(newest) if newest else None,
                     "status": runs[-1].get("status"), "silent": records == 0})
    return jobs


def _dead_letters(data_dir: Path) -> list[dict]:
    """Dead letters kept in the data folder (the hunts' and the jobs'), per input file."""
    files = sorted(data_dir.glob("dead_letters/*.parquet"))
    files += sorted(data_dir.glob("jobs/*/out/*/dead_letters/*.parquet"))
    if not files:
        return []
    frame = pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore").select(
        "log.file.path", "error.message").collect()
    grouped = frame.group_by("log.file.path").agg(pl.len().alias("dead"), pl.col("error.message").first())
    return [{"file": f, "dead": n, "reason": why}
            for f, n, why in grouped.sort(["dead", "log.file.path"], descending=[True, False]).iter_rows()]


def source_days(data_dir: Path, period: Period) -> list[dict]:
    """Records per log source (input path and event.dataset) per day of the period, from the hunts' records
    (``soc.source_days``). A data folder's one-shot hunts each read whole files: a file hunted again is
    counted once (the largest count of the day). A job's runs each read only what was appended: summed.
    A day is "silent" when it has no record though an earlier day (of this period or the previous one) had
    some, a "drop" when it falls to half of the median of the earlier days or less (``flag``); days after
    today are left out. Most silent first."""
    from soc.source_days import RECORDS, files, read_file

    counts: dict[tuple[str, str], dict[str, int]] = {}
    for path in files(data_dir):
        whole = path == data_dir / RECORDS
        for rec in read_file(path):
            for src in rec["sources"]:
                for dataset, days in (src.get("days") or {}).items():
                    mine = counts.setdefault((str(src.get("path")), str(dataset)), {})
                    for day, n in days.items():
                        mine[day] = max(mine.get(day, 0), n) if whole else mine.get(day, 0) + n
    first, last = period.previous().start.date(), min(period.end - timedelta(microseconds=1), datetime.now(ZONE))
    shown = [period.start.date() + timedelta(days=i) for i in range((last.date() - period.start.date()).days + 1)]
    earlier = [first + timedelta(days=i) for i in range((period.start.date() - first).days)]
    rows = []
    for (path, dataset), days in counts.items():
        seen = [days.get(d.isoformat(), 0) for d in earlier]
        cells = []
        for day in shown:
            n = days.get(day.isoformat(), 0)
            mark = None
            if any(seen):
                mark = "silent" if n == 0 else "drop" if flag(n, int(_median(seen))) == "drop" else None
            cells.append({"day": datetime(day.year, day.month, day.day, tzinfo=ZONE), "count": n, "flag": mark})
            seen.append(n)
        total = sum(c["count"] for c in cells)
        if total == 0 and not any(seen):
            continue
        marks = {c["flag"] for c in cells}
        rows.append({"path": path, "dataset": dataset, "total": total, "days": cells,
                     "last": max((c["day"] for c in cells if c["count"]), default=None),
                     "flag": "silent" if "silent" in marks else "drop" if "drop" in marks else None})
    return sorted(rows, key=lambda r: (r["flag"] != "silent", r["flag"] is None, r["path"], r["dataset"]))


def health(data_dir: Path, now: pl.DataFrame, before: pl.DataFrame, period: Period) -> dict:
    """Log-source health: alerts per source (event.dataset) against before (a source whose alerts stopped is
    flagged "silent"), the jobs' records and dead-letter rate, the dead letters per file."""
    datasets = []
    for row in _compare(now, before, ["event.dataset"]):
        last = None
        if row["now"]:
            last = now.filter(pl.col("event.dataset").eq_missing(row["key"][0])).get_column("@timestamp").max()
        datasets.append({"dataset": row["key"][0], "now": row["now"], "before": row["before"], "last": last,
                         "flag": "silent" if row["now"] == 0 else row["flag"]})
    return {"datasets": datasets, "jobs": _runs(data_dir, period), "dead_letters": _dead_letters(data_dir),
            "sources": source_days(data_dir, period)}


def coverage(fired_rules: set[str], rule_paths: list[str] | None = None) -> dict:
    """Layer 3: per ATT&CK tactic and per log source, soc's loaded Sigma rules and how many fired in the period
    (a log source none of whose rules fired first: a data gap or a quiet source); the rules and detectors that
    never fired; rules that did not load."""
    from soc.detect.specs import default_specs
    from soc.sigma.loader import default_rule_paths, load

    ruleset = load(list(rule_paths) if rule_paths else default_rule_paths())
    tactics: dict[str, dict] = {}
    sources: dict[str, dict] = {}
    never = []
    for rule in ruleset.rules:
        fired = rule.id in fired_rules
        logsource = "/".join(x for x in rule.logsource if x)
        row = sources.setdefault(logsource, {"logsource": logsource, "rules": 0, "fired": 0})
        row["rules"] += 1
        row["fired"] += fired
        for tactic in rule.tactics or ["(none)"]:
            row = tactics.setdefault(tactic, {"tactic": tactic, "rules": 0, "fired": 0})
            row["rules"] += 1
            row["fired"] += fired
        if not fired:
            never.append({"id": rule.id, "name": rule.title, "level": rule.level, "logsource": logsource})
    detectors = [{"id": s.id, "name": s.name, "techniques": ", ".join(s.techniques), "fired": s.id in fired_rules}
                 for s in default_specs()]
    return {"tactics": sorted(tactics.values(), key=lambda r: (-r["rules"], r["tactic"])),
            "sources": sorted(sources.values(), key=lambda r: (r["fired"] > 0, -r["rules"], r["logsource"])),
            "never": sorted(never, key=lambda r: (r["logsource"], r["name"])),
            "detectors": detectors, "rules": len(ruleset.rules), "errors": len(ruleset.errors)}


def layer4(data_dir: Path, period: Period, agency: str | None, layer: str | None, sharing: str | None = None) -> dict:
    """What the sharing policy sends to the national centre (``soc export stix``) from this period."""
    from soc.export.policy import load_sharing
    from soc.export.select import Filters, shared_alerts

    policy = load_sharing(sharing)
    filters = Filters(since=_utc(period.start), until=_utc(period.end), layer=layer, agency=agency)
    frame = shared_alerts(data_dir, policy, filters)
    frame = _in(frame.lazy(), period).collect()
    rows = [{"time": r["@timestamp"], "severity": r["labels.severity"], "rule": r["rule.name"],
             "agency": r["organization.name"], "source": r["source.address"] or r["source.ip"],
             "target": r["destination.address"] or r["destination.ip"] or r["host.hostname"],
             "tlp": policy.tlp(r["rule.id"], r["labels.security_level"]).upper(), "id": r["event.id"]}
            for r in frame.iter_rows(named=True)]
    return {"total": frame.height, "alerts": rows, "layers": sorted(policy.layers),
            "min_severity": policy.min_severity}


def build(data_dir: str | Path, period: Period, agency: str | None = None, layer: str | None = None,
          rule_paths: list[str] | None = None, sharing: str | None = None) -> ReportData:
    """The report of ``period`` (and its comparison with the previous one) from ``data_dir``."""
    from soc.sinks.alert_store import AlertStore

    data_dir = Path(data_dir)
    lf = AlertStore(data_dir).scan()
    if agency:
        lf = lf.filter(pl.col("organization.name").str.to_lowercase().str.contains(agency.lower(), literal=True))
    if layer:
        lf = lf.filter(pl.col("labels.layer") == str(layer))
    previous = period.previous()
    both = lf.filter((pl.col("@timestamp") >= _utc(previous.start)) & (pl.col("@timestamp") < _utc(period.end)))
    both = both.collect()
    now = _in(both.lazy(), period).collect()
    before = _in(both.lazy(), previous).collect()
    top = tops(now, before)
    layers = [{"layer": r["key"][0], "name": LAYER_NAMES.get(r["key"][0] or ""), **r}
              for r in _compare(now, before, ["labels.layer"])]
    agencies = [{"agency": r["key"][0], "system": r["key"][1], "level": r["key"][2], **r}
                for r in _compare(now, before, ["organization.name", "labels.system", "labels.security_level"])]
    fired = set(now.get_column("rule.id").drop_nulls().to_list())
    return ReportData(
        period=period, previous=previous, agency=agency, layer=layer, total=now.height, total_before=before.height,
        severity=severity_rows(now, before), layers=layers, agencies=agencies, series=series(now, period),
        top_rules=top["rules"], top_techniques=top["techniques"], top_sources=top["sources"],
        top_targets=top["targets"], layer1=layer1(now), health=health(data_dir, now, before, period),
        coverage=coverage(fired, rule_paths), layer4=layer4(data_dir, period, agency, layer, sharing))
