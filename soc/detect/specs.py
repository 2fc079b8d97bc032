"""Detector specs (``detectors/*.yml``): data that binds a kernel to frames, keys, a filter, a window and a
threshold, with the rule metadata an alert carries. An analyst edits these, not Python.

```yaml
id: soc-ssh-brute-force          # stable: alert ids hash it
name: SSH brute force
level: high                      # informational | low | medium | high | critical
techniques: [T1110.001]
layer: 2                         # optional 4-layer routing override (default: the policy's routing)
kernel: count                    # count | distinct | sum | entropy | beacon | rise | drop | first_seen
frames: [{family: authentication, dataset: system.auth}]   # dataset optional
filter: {event.outcome: failure}  # field: value | [values] | {gte: 400, lt: 500, contains_any: [...], present: true}
                                 # all must hold; not: {field: condition, ...} (or a list of such groups)
                                 # drops the rows where all of one group's hold
key: [source.ip]                 # entity columns (ECS names); aliases map frame-specific names onto them
value: user.name                 # the field counted (distinct), summed (sum) or scored (entropy)
evidence: user.name              # a hit lists its most frequent distinct values of this field (default: value)
window: 5m
threshold: 10
params: {}                       # kernel-specific knobs (see soc.detect.runner)
misses: >-                       # what it will not see, in one short paragraph (an analyst must know)
  Guessing slower than 10 failures in 5 minutes per address; a brute force spread over many sources.
```

``misses`` says honestly what the detector cannot catch (slow attacks, distributed ones, what its records
do not show). It is optional in a spec of one's own, required in soc's own ``detectors/``
(``default_specs``): an alert that stays silent should not be read as "nothing happened".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from soc.content import read_yaml

KERNELS = ("count", "distinct", "sum", "entropy", "beacon", "rise", "drop", "first_seen")
LEVELS = ("informational", "low", "medium", "high", "critical")
FILTER_OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains_any", "matches", "not_matches",
              "present")
_UNITS = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_DURATION = re.compile(r"^\s*(\d+)\s*(us|ms|s|m|h|d)\s*$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SpecError(ValueError):
    """A detector spec that cannot be used, with the file and the reason."""


def _yaml_error() -> type[Exception]:
    """PyYAML's error class, imported only when an exception is being matched: a hunt reads the detectors from
    their JSON copies (``read_yaml``) and need not import PyYAML (~13-18 ms of CPU a process)."""
    from soc import safe_yaml

    return safe_yaml.YAMLError


def duration_us(text: str | int) -> int:
    """``"5m"`` -> microseconds (units us, ms, s, m, h, d); an integer is seconds."""
    if isinstance(text, bool):
        raise SpecError(f"bad duration {text!r}")
    if isinstance(text, int):
        return text * 1_000_000
    found = _DURATION.match(str(text))
    if not found:
        raise SpecError(f"bad duration {text!r} (expected e.g. 30s, 5m, 1h, 1d)")
    return int(found.group(1)) * _UNITS[found.group(2)]


@dataclass(frozen=True)
class FrameRef:
    family: str  # "*" for every family
    dataset: str | None = None

    def covers(self, key: tuple[str, str]) -> bool:
        return self.family in ("*", key[0]) and self.dataset in (None, key[1])


@dataclass(frozen=True)
class DetectorSpec:
    id: str
    name: str
    level: str
    kernel: str
    frames: tuple[FrameRef, ...]
    key: tuple[str, ...]
    window: str
    threshold: float
    techniques: tuple[str, ...] = ()
    description: str = ""
    layer: int | None = None
    filter: dict = field(default_factory=dict)
    value: str | None = None
    evidence: str | None = None
    aliases: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    misses: str = ""
    path: str = ""

    @property
    def span(self) -> int:
        return duration_us(self.window)

    def param(self, name: str, default):
        return self.params.get(name, default)

    def covers(self, key: tuple[str, str]) -> bool:
        return any(f.covers(key) for f in self.frames)


def _check_filter(flt: dict, where: str) -> None:
    for name, cond in flt.items():
        if name == "not":  # groups of conditions: a row for which all of one group's hold is dropped
            groups = cond if isinstance(cond, list) and cond else [cond]
            if not all(isinstance(g, dict) and g for g in groups):
                raise SpecError(f"{where}: filter not: must be a mapping of field -> condition, or a list of them")
            for group in groups:
                _check_filter(group, where)
        elif isinstance(cond, dict) and (bad := sorted(map(str, set(cond) - set(FILTER_OPS)))):
            raise SpecError(f"{where}: filter on {name}: unknown operator(s) {', '.join(bad)}")


def _check(doc: dict, where: str) -> DetectorSpec:
    if not isinstance(doc, dict):
        raise SpecError(f"{where}: a detector spec is a mapping")
    missing = [k for k in ("id", "name", "level", "kernel", "frames", "key", "window", "threshold") if k not in doc]
    if missing:
        raise SpecError(f"{where}: missing {', '.join(missing)}")
    known = {"id", "name", "level", "kernel", "frames", "key", "window", "threshold", "techniques", "description",
             "layer", "filter", "value", "evidence", "aliases", "params", "misses"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if not _ID.match(str(doc["id"])):
        raise SpecError(f"{where}: bad id {doc['id']!r}")
    if doc["kernel"] not in KERNELS:
        raise SpecError(f"{where}: unknown kernel {doc['kernel']!r} (expected one of {', '.join(KERNELS)})")
    if str(doc["level"]).lower() not in LEVELS:
        raise SpecError(f"{where}: unknown level {doc['level']!r}")
    frames = tuple(FrameRef(str(f["family"]), None if f.get("dataset") is None else str(f["dataset"]))
                   for f in doc["frames"]) if isinstance(doc["frames"], list) and all(
        isinstance(f, dict) and "family" in f for f in doc["frames"]) else None
    if not frames:
        raise SpecError(f"{where}: frames must be a list of {{family, dataset}}")
    key = doc["key"] if isinstance(doc["key"], list) else [doc["key"]]
    if not key or not all(isinstance(k, str) for k in key):
        raise SpecError(f"{where}: key must be a field or a list of fields")
    flt = doc.get("filter") or {}
    if not isinstance(flt, dict):
        raise SpecError(f"{where}: filter must be a mapping of field -> condition")
    _check_filter(flt, where)
    if doc["kernel"] in ("distinct", "sum", "entropy") and not doc.get("value"):
        raise SpecError(f"{where}: kernel {doc['kernel']} needs a value field")
    misses = doc.get("misses")
    if misses is not None and (not isinstance(misses, str) or not misses.strip()):
        raise SpecError(f"{where}: misses must be a short paragraph of text")
    layer = doc.get("layer")
    if layer is not None and layer not in (1, 2, 3, 4):
        raise SpecError(f"{where}: layer must be 1-4")
    try:
        threshold = float(doc["threshold"])
        duration_us(doc["window"])
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: {exc}") from None
    aliases = {str(k): [v] if isinstance(v, str) else list(v) for k, v in (doc.get("aliases") or {}).items()}
    return DetectorSpec(
        id=str(doc["id"]), name=str(doc["name"]), level=str(doc["level"]).lower(), kernel=doc["kernel"],
        frames=frames, key=tuple(key), window=str(doc["window"]), threshold=threshold,
        techniques=tuple(str(t) for t in doc.get("techniques") or ()), description=str(doc.get("description", "")),
        layer=layer, filter=dict(flt), value=doc.get("value"), evidence=doc.get("evidence"), aliases=aliases,
        params=dict(doc.get("params") or {}), misses=" ".join(str(misses or "").split()), path=where)


def load_specs(paths: list[str | Path]) -> list[DetectorSpec]:
    """Every ``*.yml``/``*.yaml`` detector under ``paths`` (files or folders), sorted by id; ids are unique."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix in (".yml", ".yaml"))
        elif p.exists():
            files.append(p)
        else:
            raise SpecError(f"{p}: no such detector file or folder")
    specs: dict[str, DetectorSpec] = {}
    for f in files:
        try:
            doc = read_yaml(f)
        except (OSError, UnicodeDecodeError, _yaml_error()) as exc:  # evaluated only when one is raised
            raise SpecError(f"{f}: {exc}") from None
        spec = _check(doc, str(f))
        if spec.id in specs:
            raise SpecError(f"{f}: duplicate detector id {spec.id} (also in {specs[spec.id].path})")
        specs[spec.id] = spec
    return [specs[k] for k in sorted(specs)]


def default_specs() -> list[DetectorSpec]:
    """soc's own detectors (``detectors/``); each must say what it misses."""
    from soc.content import content_dir

    specs = load_specs([content_dir("detectors")])
    if silent := [s.path for s in specs if not s.misses]:
        raise SpecError(f"{', '.join(silent)}: soc's own detectors say what they miss (misses:)")
    return specs


def apply_settings(specs: list[DetectorSpec], settings: list[str]) -> list[DetectorSpec]:
    """``detector.param=value`` overrides (from the CLI): ``threshold``, ``window``, ``level``, ``layer`` or a
    kernel param. The value is read as YAML (``0.2``, ``10``, ``5m``). Unknown detectors are an error."""
    from soc.i18n import _

    by_id = {s.id: s for s in specs}
    for item in settings:
        name, eq, raw = item.partition("=")
        det, dot, param = name.rpartition(".")
        if not eq or not dot or not det or not param:
            raise SpecError(_("bad setting {item} (expected detector.param=value)").format(item=repr(item)))
        if det not in by_id:
            raise SpecError(_("setting {item}: no detector {detector} (known: {known})").format(
                item=repr(item), detector=repr(det), known=", ".join(sorted(by_id))))
        from soc import safe_yaml  # here: a hunt without settings need not import PyYAML

        value = safe_yaml.load(raw)
        spec = by_id[det]
        doc = {"id": spec.id, "name": spec.name, "level": spec.level, "kernel": spec.kernel,
               "frames": [{"family": f.family, "dataset": f.dataset} for f in spec.frames], "key": list(spec.key),
               "window": spec.window, "threshold": spec.threshold, "techniques": list(spec.techniques),
               "description": spec.description, "layer": spec.layer, "filter": spec.filter, "value": spec.value,
               "evidence": spec.evidence, "aliases": spec.aliases, "params": dict(spec.params),
               "misses": spec.misses or None}
        if param in ("threshold", "window", "level", "layer"):
            doc[param] = value
        else:
            doc["params"][param] = value
        by_id[det] = replace(_check(doc, f"{spec.path} (with {item})"), path=spec.path)
    return [by_id[s.id] for s in specs]
