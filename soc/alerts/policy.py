"""The grading and routing policy (``policy/vietnam.toml``): severity tables, security-level floors, layers.

Kept as data because the legal mapping changes; this module only reads and checks it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("informational", "low", "medium", "high", "critical")


class PolicyError(ValueError):
    """The policy file is missing a table or holds a value soc cannot use."""


@dataclass(frozen=True)
class Route:
    layer: int
    min_severity: int = 1
    max_severity: int = 5
    min_security_level: int = 0
    known_asset: bool | None = None


@dataclass(frozen=True)
class Policy:
    severity: dict[str, int]            # Sigma level -> event.severity 1-5
    risk: dict[str, int]                # Sigma level -> base risk score
    floor: dict[int, int]               # security level -> lowest event.severity
    risk_bonus: dict[int, int]          # security level -> risk added
    count_per_doubling: float
    count_max: float
    layers: dict[int, str]              # layer -> its name
    routes: tuple[Route, ...]
    default_layer: int
    source: str
    excess_per_doubling: float = 0.0    # a detector's statistic past its threshold (``[risk.excess]``)
    excess_max: float = 0.0

    def level_name(self, severity: int) -> str:
        return next(name for name, sev in self.severity.items() if sev == severity)


def default_policy_path() -> Path:
    from soc.content import content_dir

    return content_dir("policy") / "vietnam.toml"


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and check a policy file (default: the one shipped with soc)."""
    path = Path(path) if path else default_policy_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read policy {path}: {exc}") from None
    try:
        return _check(data, str(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"policy {path}: {exc!r}") from None


def _severity_of(name: str, table: dict[str, int], where: str) -> int:
    if name not in table:
        raise PolicyError(f"{where}: unknown severity {name!r} (one of {', '.join(table)})")
    return table[name]


def _check(data: dict, source: str) -> Policy:
    sev = {name: int(data["severity"][name]["severity"]) for name in LEVELS}
    risk = {name: int(data["severity"][name]["risk"]) for name in LEVELS}
    if sorted(sev.values()) != [1, 2, 3, 4, 5] or any(not 0 <= r <= 100 for r in risk.values()):
        raise PolicyError(f"{source}: severities must be 1-5 once each and risks 0-100")
    floor, bonus = {}, {}
    for key, row in data["security_levels"].items():
        level = int(key)
        if not 1 <= level <= 5:
            raise PolicyError(f"{source}: security level {key} is not 1-5")
        floor[level] = _severity_of(row["floor"], sev, f"{source}: security_levels.{key}.floor")
        bonus[level] = int(row.get("risk_bonus", 0))
    layers = {int(k): str(v["name"]) for k, v in data["layers"].items()}
    routing = data["routing"]
    routes = []
    for i, rule in enumerate(routing.get("rules", [])):
        where = f"{source}: routing.rules[{i}]"
        if int(rule["layer"]) not in layers:
            raise PolicyError(f"{where}: layer {rule['layer']} is not defined in [layers]")
        routes.append(Route(
            layer=int(rule["layer"]),
            min_severity=_severity_of(rule.get("min_severity", "informational"), sev, where),
            max_severity=_severity_of(rule.get("max_severity", "critical"), sev, where),
            min_security_level=int(rule.get("min_security_level", 0)),
            known_asset=rule.get("known_asset")))
    default = int(routing["default_layer"])
    if default not in layers:
        raise PolicyError(f"{source}: default_layer {default} is not defined in [layers]")
    count = data.get("risk", {}).get("count", {})
    excess = data.get("risk", {}).get("excess", {})
    return Policy(sev, risk, floor, bonus, float(count.get("per_doubling", 0)), float(count.get("max", 0)),
                  layers, tuple(routes), default, source, float(excess.get("per_doubling", 0)),
                  float(excess.get("max", 0)))
