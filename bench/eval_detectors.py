"""Detector evaluation (issue 19): precision and recall of every detector (detectors/) and of our own Sigma
rules (rules/), measured on real inputs.

    python -m bench.eval_detectors [--json] [--extra ssh=/tmp/OpenSSH_2k.log --extra-year 2017]

Five hunts (``soc hunt --json --no-es``, each in a data folder of its own):

- benign: the shared corpora's real Zeek capture (one sensor: false alerts per sensor-hour from the capture's
  own time span), real Apache access log and real Suricata alerts. Every alert is looked up in
  ``bench/eval/verdicts.toml`` (rule id + entity, judged by reading the raw records); an alert without a
  verdict is reported as unjudged, a failure.
- mix: the same real logs plus attacks written beside them by ``bench/eval/inject.py`` (seeded); recall =
  injected attacks found by the rule meant for them (hit entity = injected entity, and the hit not already in
  the benign run with as many events) / injected.
- planted: ``sample_logs/`` (the attacks ``bench/make_sample_logs.py`` plants, expected in verdicts.toml).
- evtx: the shared corpora's real Windows attack recordings (``evtx/evtx-to-mitre-attack``, 281 files, every
  tactic): the brute forces of its T1110 folder are expected (``set = "evtx"``), any other alert must be judged
  (a brute-force alert on a file that records something else is false).
- extra real inputs given with ``--extra NAME=PATH`` (e.g. a real sshd log): alerts on the attacking addresses
  listed for NAME in verdicts.toml are true, their listed (rule, address) pairs the recall; never committed.

Recall "real" counts the brute forces of the EVTX recordings and of the extra inputs, and the real attacks
verdicts.toml expects in the benign inputs (``set = "benign"``: the capture's red team is part of its traffic).

An alert is a detector hit, or an own-Sigma-rule alert (matches grouped by rule, entity and hour, as soc's
alert store does). Each is printed with rule, entity, window, count and a few values that made it.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("SOC_CORPORA", ROOT.parent / "shared" / "corpora"))
VERDICTS = Path(__file__).resolve().parent / "eval" / "verdicts.toml"
EVTX = CORPORA / "evtx" / "evtx-to-mitre-attack"  # real attack recordings (Windows event logs), set "evtx"
SIGMA_VALUES = ["dns.question.name", "url.original", "user.name", "destination.port"]
ZEEK_NAMES = {"dns.question.name": "query", "destination.ip": "id.resp_h", "destination.port": "id.resp_p",
              "source.ip": "id.orig_h", "user.name": "username"}  # ECS field -> Zeek TSV field, for evidence
MAX_FALSE_PER_SENSOR_HOUR = 1.0  # the target, all detectors together on the Zeek capture


@dataclass
class Alert:
    run: str  # benign, mix, planted or the name of an extra input
    group: str  # zeek (the sensor) or logs (other real files)
    rule: str
    name: str
    kind: str  # detector or sigma
    entity: str  # a detector's key values joined by ","; a Sigma alert's source.ip, host or user
    start: str
    end: str
    count: int
    values: list[str]
    verdict: bool | None = None
    reason: str = ""


@dataclass
class Verdicts:
    """bench/eval/verdicts.toml: ``[[verdict]]`` rule + entity (fnmatch pattern) (+ optional ``value``, a
    substring of one of the alert's values; ``window``, [start, end] ISO stamps the alert must overlap) ->
    ``verdict`` "true"/"false" and ``reason``; ``[[expect]]`` set (planted, benign or an --extra name) + rule +
    entity: what must be found there."""

    verdicts: list[dict]
    expect: list[dict]

    @classmethod
    def load(cls, path: Path = VERDICTS) -> Verdicts:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        for v in doc.get("verdict", []):
            if v.get("verdict") not in ("true", "false") or not v.get("reason"):
                raise ValueError(f"{path}: a verdict needs verdict = \"true\"/\"false\" and a reason: {v}")
        return cls(doc.get("verdict", []), doc.get("expect", []))

    def judge(self, alert: Alert) -> dict | None:
        """The first verdict that fits ``alert``."""
        for v in self.verdicts:
            if v["rule"] != alert.rule or not fnmatch.fnmatchcase(alert.entity, v["entity"]):
                continue
            if "value" in v and not any(v["value"] in value for value in alert.values):
                continue
            if "window" in v and not (v["window"][0] <= alert.end and alert.start <= v["window"][1]):
                continue
            return v
        return None

    def expected(self, name: str) -> list[dict]:
        return [e for e in self.expect if e["set"] == name]


def own_rules() -> tuple[dict[str, str], list[str]]:
    """id -> title of our own Sigma rules (and correlations), and the rule files that do not load (their
    alerts could not be scored: a failure)."""
    out, errors = {}, []
    for f in sorted((ROOT / "rules").glob("*.yml")):
        try:
            docs = list(yaml.safe_load_all(f.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            errors.append(f"{f.name}: {str(exc).splitlines()[0]}")
            continue
        out.update((d["id"], d.get("title", d["id"])) for d in docs if isinstance(d, dict) and "id" in d)
    return out, errors


def detector_keys() -> dict[str, tuple[str, list[str], str | None]]:
    """id -> (name, key fields, evidence field) of every shipped detector."""
    from soc.detect.specs import default_specs

    return {s.id: (s.name, list(s.key), s.evidence or s.value) for s in default_specs()}


def hunt(inputs: list[Path], data_dir: Path, year: int | None = None) -> dict:
    """``soc hunt --json --no-es`` over ``inputs``; its JSON report."""
    args = [sys.executable, "-m", "soc", "hunt", *map(str, inputs), "--json", "--no-es", "--data-dir", str(data_dir)]
    res = subprocess.run(args + (["--year", str(year)] if year else []), capture_output=True, text=True,
                         timeout=600, check=False, cwd=ROOT)  # cwd: this tree's soc, not another installed one
    if res.returncode not in (0, 1):
        raise RuntimeError(f"soc hunt failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stdout)


def _read(data_dir: Path, folder: str) -> pl.DataFrame:
    files = sorted((data_dir / folder).rglob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed") if files else pl.DataFrame()


class Lines:
    """Raw records behind ``path:line`` references, decoded by field for Zeek TSV (for the evidence print)."""

    def __init__(self):
        self.files: dict[str, list[str]] = {}

    def value(self, ref: str, ecs: str | None) -> str:
        path, _, line = ref.rpartition(":")
        if path not in self.files:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8", errors="replace") as f:
                self.files[path] = f.read().splitlines()
        lines = self.files[path]
        raw = lines[int(line) - 1] if 0 < int(line) <= len(lines) else ""
        if lines and lines[0].startswith("#separator"):
            names = next((h.split("\t")[1:] for h in reversed(lines[: int(line)]) if h.startswith("#fields")), [])
            cells = dict(zip(names, raw.split("\t"), strict=False))
            return cells.get(ZEEK_NAMES.get(ecs or "", ""), raw[:160])
        return raw[:160]


def _stamp(value) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)


def _group(dataset: str | None) -> str:
    return "zeek" if (dataset or "").startswith("zeek.") else "logs"


def alerts_of(data_dir: Path, run: str, detectors: dict, sigma: dict[str, str], lines: Lines) -> list[Alert]:
    """The alerts of one hunt: detector hits, and our own Sigma rules' alerts with their matches' values."""
    out = []
    hits = _read(data_dir, "detector_hits")
    for h in hits.iter_rows(named=True):
        name, keys, evidence = detectors.get(h["rule.id"], (h["rule.name"], ["source.ip"], None))
        values = list(h.get("evidence.values") or [])
        if not values:
            values = list(dict.fromkeys(lines.value(ref, evidence) for ref in h["evidence.samples"] or []))
        out.append(Alert(run, _group(h["event.dataset"]), h["rule.id"], name, "detector",
                         ",".join(str(h.get(k)) for k in keys), _stamp(h["window.start"]), _stamp(h["window.end"]),
                         int(h["event.count"]), [str(v) for v in values]))
    alerts, matches = _read(data_dir, "alerts"), _read(data_dir, "sigma_matches")
    if alerts.height:
        for a in alerts.filter(pl.col("rule.id").is_in(list(sigma))).iter_rows(named=True):
            entity = a["source.ip"] or a["host.hostname"] or a["user.name"] or "-"
            values: list[str] = []
            if matches.height:
                mine = matches.filter((pl.col("rule.id") == a["rule.id"])
                                      & pl.col("@timestamp").is_between(a["event.start"], a["event.end"]))
                if a["source.ip"] and "source.ip" in mine.columns:
                    mine = mine.filter(pl.col("source.ip").cast(pl.String) == a["source.ip"])
                column = next((c for c in SIGMA_VALUES if c in mine.columns and mine[c].null_count() < mine.height),
                              None)
                values = [] if column is None else [str(v) for v in mine[column].drop_nulls().unique(
                    maintain_order=True).head(5)]
            out.append(Alert(run, _group(a["event.dataset"]), a["rule.id"], sigma[a["rule.id"]], "sigma", entity,
                             _stamp(a["event.start"]), _stamp(a["event.end"]), int(a["event.count"] or 0), values))
    return out


def sensor_hours(report: dict) -> float:
    """Hours between the first and the last record of the Zeek files (one sensor)."""
    spans = [(f["first"], f["last"]) for f in report["files"] if f["format"] == "zeek" and f["first"]]
    if not spans:
        return 0.0
    first = min(datetime.fromisoformat(a) for a, _ in spans)
    last = max(datetime.fromisoformat(b) for _, b in spans)
    return (last - first).total_seconds() / 3600


def _on(alert: Alert, entity: str) -> bool:
    """Is ``alert`` about ``entity`` (a Sigma alert names the source only, a port scan source and target)?"""
    return alert.entity == entity or alert.entity.split(",")[0] == entity.split(",")[0]


def _caused(alert: Alert, benign: list[Alert]) -> bool:
    """Did the injection cause this mix alert? Not if the benign run has the same rule and entity with as many
    events (an attack behind a team's DNS server shares its entity with that server's own traffic)."""
    same = [b.count for b in benign if b.rule == alert.rule and b.entity == alert.entity]
    return not same or alert.count > max(same)


def _recall(found: list[tuple], sets: set[str], rule: str) -> list[int]:
    """[found, expected] of ``rule`` over the expectations of ``sets``."""
    mine = [f[4] for f in found if f[0] in sets and f[1] == rule]
    return [sum(mine), len(mine)]


def score(rule: str, name: str, kind: str, judged: list[Alert], found: list[tuple], hours: float,
          real_sets: set[str]) -> dict:
    """One line of the table: ``rule``'s judged alerts (real inputs) and its share of ``found``
    ((set, rule, entity, what, found) per expected detection)."""
    mine = [a for a in judged if a.rule == rule]
    true = sum(a.verdict is True for a in mine)
    false = [a for a in mine if a.verdict is False]
    rec = {"injected": _recall(found, {"injected"}, rule), "planted": _recall(found, {"planted"}, rule),
           "real": _recall(found, real_sets, rule)}
    n = sum(v[1] for v in rec.values())
    return {"rule": rule, "name": name, "kind": kind, "alerts": len(mine), "true": true, "false": len(false),
            "unjudged": sum(a.verdict is None for a in mine),
            "false_matches": sum(a.count for a in false if a.kind == "sigma"),
            "false_per_sensor_hour": (sum(a.group == "zeek" and a.run == "benign" for a in false) / hours
                                      if hours else None),
            "precision": true / (true + len(false)) if true + len(false) else None, **rec,
            "recall": sum(v[0] for v in rec.values()) / n if n else None}


def evaluate(work: Path, extra: dict[str, Path] | None = None, extra_year: int | None = None, seed: int = 19,
             verdicts: Verdicts | None = None) -> dict:
    """Run the four hunts in ``work`` and score them; the whole result as one dict (see ``table``)."""
    from bench.eval.inject import inject

    verdicts = verdicts or Verdicts.load()
    (sigma, rule_errors), detectors, lines = own_rules(), detector_keys(), Lines()
    zeek, logs = CORPORA / "zeek", CORPORA / "logs"
    benign_report = hunt([zeek, logs], work / "benign")
    benign = alerts_of(work / "benign", "benign", detectors, sigma, lines)
    attacks = inject(work / "mix-input", zeek, logs / "apache_combined_elastic_examples.log", seed)
    hunt([work / "mix-input"], work / "mix", year=2018)
    mix = alerts_of(work / "mix", "mix", detectors, sigma, lines)
    hunt([ROOT / "sample_logs"], work / "planted")
    planted = alerts_of(work / "planted", "planted", detectors, sigma, lines)
    real: list[Alert] = []
    inputs = {**({"evtx": EVTX} if EVTX.is_dir() else {}), **(extra or {})}  # real inputs with real attacks
    for name, path in inputs.items():
        hunt([path], work / f"extra-{name}", year=None if name == "evtx" else extra_year)
        real += alerts_of(work / f"extra-{name}", name, detectors, sigma, lines)

    for a in benign + mix + real:  # judge
        attackers = {e["entity"] for e in verdicts.expected(a.run)} if a.run in inputs else set()
        attack = next((x for x in attacks if _on(a, x.entity) and _caused(a, benign)), None) if a.run == "mix" \
            else None
        v = verdicts.judge(a)
        if attack is not None:
            a.verdict, a.reason = True, f"injected: {attack.name}"
        elif any(_on(a, e) for e in attackers):
            a.verdict, a.reason = True, f"a real attacking address of {a.run} (verdicts.toml)"
        elif v is not None:
            a.verdict, a.reason = v["verdict"] == "true", v["reason"]

    found = []  # (set, rule, entity, what, found)
    for x in attacks:
        for rule in x.detectors + x.sigma:
            found.append(("injected", rule, x.entity, x.name,
                          any(a.rule == rule and _on(a, x.entity) and _caused(a, benign) for a in mix)))
    sets = [("planted", planted), ("benign", benign), *((n, [a for a in real if a.run == n]) for n in inputs)]
    for name, alerts in sets:  # benign: the real attacks of the real inputs (the capture's red team)
        for e in verdicts.expected(name):
            found.append((name, e["rule"], e["entity"], e.get("what", ""),
                          any(a.rule == e["rule"] and _on(a, e["entity"]) for a in alerts)))

    hours = sensor_hours(benign_report)
    rows = [score(rule, detectors[rule][0] if rule in detectors else sigma[rule],
                  "detector" if rule in detectors else "sigma", benign + real, found, hours, {"benign", *inputs})
            for rule in [*sorted(detectors), *sigma]]

    unjudged = [a for a in benign + mix + real if a.verdict is None]
    zeek_false = sum(a.verdict is False for a in benign if a.group == "zeek" and a.kind == "detector")
    targets = {
        "zeek_false_alerts": zeek_false, "sensor_hours": hours,
        "zeek_false_per_sensor_hour": zeek_false / hours if hours else None,
        "sigma_false_matches": sum(a.count for a in benign if a.kind == "sigma" and a.verdict is False),
        "missed": [f"{f[0]}: {f[1]} on {f[2]} ({f[3]})" for f in found if not f[4]],
        "unjudged": [f"{a.run}: {a.rule} on {a.entity}" for a in unjudged],
        "rule_errors": rule_errors,
        "unused_verdicts": [f"{v['rule']} on {v['entity']}" for v in verdicts.verdicts
                            if not any(verdicts.judge(a) is v for a in benign + mix + real)],
    }
    return {"rows": rows, "alerts": [asdict(a) for a in benign + real + mix], "found": found,
            "attacks": [asdict(x) for x in attacks], "targets": targets,
            "inputs": {"benign": [str(zeek), str(logs)], "real": {k: str(v) for k, v in inputs.items()}}}


def failures(result: dict) -> list[str]:
    """The issue's targets that ``result`` misses, in words (empty: all met)."""
    t, out = result["targets"], []
    if t["zeek_false_per_sensor_hour"] is None or t["zeek_false_per_sensor_hour"] > MAX_FALSE_PER_SENSOR_HOUR:
        out.append(f"{t['zeek_false_alerts']} false detector alerts on the Zeek capture in {t['sensor_hours']:.3f} "
                   f"sensor-hours = {t['zeek_false_per_sensor_hour'] or 0:.1f}/sensor-hour "
                   f"(target <= {MAX_FALSE_PER_SENSOR_HOUR:g})")
    if t["sigma_false_matches"]:
        out.append(f"{t['sigma_false_matches']} false matches of our own Sigma rules on the benign corpora (target 0)")
    out += [f"missed {m}" for m in t["missed"]]
    out += [f"unjudged alert {u}" for u in t["unjudged"]]
    out += [f"own rule file not loaded (its alerts go unscored): {e}" for e in t.get("rule_errors", [])]
    return out


def _fmt(value, ratio=False) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return f"{value[0]}/{value[1]}" if value[1] else "-"
    return f"{value:.2f}" if ratio else str(value)


def table(result: dict) -> str:
    """The alerts with their verdicts, then one line per rule, then the targets."""
    out = ["alerts on the real inputs (and unjudged ones of the mix):"]
    for a in result["alerts"]:
        if a["run"] == "mix" and a["verdict"] is not None:
            continue
        verdict = {True: "TRUE ", False: "FALSE", None: "UNJUDGED"}[a["verdict"]]
        out.append(f"  {verdict} {a['run']}/{a['group']} {a['name']} [{a['rule']}] entity={a['entity']} "
                   f"{a['start']}..{a['end']} count={a['count']}")
        out.append(f"        values: {', '.join(a['values'][:5])[:300]}")
        out.append(f"        reason: {a['reason'] or '(no verdict in bench/eval/verdicts.toml)'}")
    head = f"{'rule':<46} {'kind':<8} {'alerts':>6} {'true':>4} {'false':>5} {'unj':>3} {'false/sh':>8} " \
           f"{'prec':>5} {'injected':>8} {'planted':>7} {'real':>5} {'recall':>6}"
    out += ["", head, "-" * len(head)]
    for r in result["rows"]:
        out.append(f"{r['name'][:46]:<46} {r['kind']:<8} {r['alerts']:>6} {r['true']:>4} {r['false']:>5} "
                   f"{r['unjudged']:>3} {_fmt(r['false_per_sensor_hour'], True):>8} {_fmt(r['precision'], True):>5} "
                   f"{_fmt(r['injected']):>8} {_fmt(r['planted']):>7} {_fmt(r['real']):>5} "
                   f"{_fmt(r['recall'], True):>6}")
    t = result["targets"]
    out += ["", f"Zeek capture: {t['sensor_hours']:.3f} sensor-hours, {t['zeek_false_alerts']} false detector alerts "
                f"= {t['zeek_false_per_sensor_hour'] or 0:.2f} per sensor-hour (target <= "
                f"{MAX_FALSE_PER_SENSOR_HOUR:g}); own Sigma rules: {t['sigma_false_matches']} false matches (target 0)"]
    fails = failures(result)
    out += ["targets met" if not fails else "targets missed:", *(f"  - {f}" for f in fails)]
    if t["unused_verdicts"]:  # the detector no longer fires there: fine, the verdict may go
        out += ["verdicts no alert used:", *(f"  - {v}" for v in t["unused_verdicts"])]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.add_argument("--extra", action="append", default=[], metavar="NAME=PATH",
                   help="a real input whose attackers verdicts.toml lists under [[expect]] set = NAME")
    p.add_argument("--extra-year", type=int, help="year of the extra inputs' year-less syslog stamps")
    p.add_argument("--seed", type=int, default=19, help="seed of the injected attacks")
    p.add_argument("--keep", type=Path, help="work in this folder (kept) instead of a temp one")
    args = p.parse_args(argv)
    if not CORPORA.is_dir():
        p.error(f"{CORPORA} not found (the shared corpora beside the repository)")
    extra = {}
    for item in args.extra:
        name, _, path = item.partition("=")
        if not path or not Path(path).exists():
            p.error(f"--extra {item!r}: want NAME=PATH of an existing file")
        extra[name] = Path(path)
    with tempfile.TemporaryDirectory(prefix="soc-eval-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = evaluate(work, extra, args.extra_year, args.seed)
    print(json.dumps(result, indent=1, default=str) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
