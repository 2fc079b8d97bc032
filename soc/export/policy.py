"""The sharing policy (``policy/sharing.toml``): the SOC's identity, which alerts go to the national centre,
their TLP marking, and when an alert gives an indicator. Read with ``tomllib`` (data only, like the grading
policy ``policy/vietnam.toml``) and checked here, so a bad file fails before anything is shared."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from soc.alerts.policy import LEVELS

TLP1 = ("white", "green", "amber", "red")  # the STIX 2.1 built-in TLP 1.0 markings (stix2.TLP_*)
TLP2 = ("clear", "green", "amber", "amber+strict", "red")  # FIRST TLP 2.0, strictest last
_ORDER = {"white": 0, "clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}


class SharingError(ValueError):
    """The sharing policy is missing or holds a value soc cannot use."""


@dataclass(frozen=True)
class SharingPolicy:
    name: str                               # the SOC's STIX identity
    identity_class: str
    sectors: tuple[str, ...]
    contact: str
    layers: frozenset[str]                  # labels.layer values shared
    min_severity: int | None                # event.severity shared whatever the layer (None: by layer only)
    tlp_version: int                        # 1 or 2
    tlp_default: str
    tlp_by_level: dict[str, str]            # labels.security_level -> TLP
    tlp_by_rule: dict[str, str]             # rule.id -> TLP
    internal: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    no_indicator_rules: frozenset[str]
    source: str

    def tlp(self, rule_id: str | None, security_level: str | None) -> str:
        """The TLP of an alert: its rule's, else its system's security level's, else the default."""
        return self.tlp_by_rule.get(rule_id or "") or self.tlp_by_level.get(security_level or "") or self.tlp_default

    def external(self, address: str) -> bool:
        """``address`` is a valid IP outside the internal networks."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return not any(ip.version == net.version and ip in net for net in self.internal)


def strictest(levels) -> str:
    return max(levels, key=_ORDER.__getitem__)


def default_sharing_path() -> Path:
    from soc.content import content_dir

    return content_dir("policy") / "sharing.toml"


def load_sharing(path: str | Path | None = None, severity: dict[str, int] | None = None) -> SharingPolicy:
    """Read and check a sharing policy (``path``, else ``SOC_SHARING_POLICY``, else the shipped one).
    ``severity`` maps level names to ``event.severity`` (the grading policy's; default 1-5 in order)."""
    path = Path(path or os.environ.get("SOC_SHARING_POLICY") or default_sharing_path())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SharingError(f"cannot read sharing policy {path}: {exc}") from None
    try:
        return _check(data, str(path), severity or {name: i + 1 for i, name in enumerate(LEVELS)})
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, SharingError):
            raise
        raise SharingError(f"sharing policy {path}: {exc!r}") from None


def _tlp(value, version: int, where: str) -> str:
    names = TLP2 if version == 2 else TLP1
    if value not in names:
        raise SharingError(f"{where}: TLP {value!r} is not one of {', '.join(names)} (TLP version {version})")
    return value


def _check(data: dict, source: str, severity: dict[str, int]) -> SharingPolicy:
    ident, share, tlp, ind = data["identity"], data["share"], data.get("tlp", {}), data.get("indicators", {})
    version = int(tlp.get("version", 2))
    if version not in (1, 2):
        raise SharingError(f"{source}: tlp.version must be 1 or 2")
    floor = share.get("min_severity", "")
    if floor and floor not in severity:
        raise SharingError(f"{source}: share.min_severity {floor!r} is not one of {', '.join(severity)}")
    name = str(ident["name"]).strip()
    if not name:
        raise SharingError(f"{source}: identity.name is empty")
    return SharingPolicy(
        name=name, identity_class=str(ident.get("identity_class", "organization")),
        sectors=tuple(str(s) for s in ident.get("sectors", [])), contact=str(ident.get("contact", "")),
        layers=frozenset(str(int(x)) for x in share.get("layers", [])),
        min_severity=severity[floor] if floor else None, tlp_version=version,
        tlp_default=_tlp(tlp.get("default", "amber"), version, f"{source}: tlp.default"),
        tlp_by_level={str(k): _tlp(v, version, f"{source}: tlp.security_level.{k}")
                      for k, v in tlp.get("security_level", {}).items()},
        tlp_by_rule={str(k): _tlp(v, version, f"{source}: tlp.rules.{k}") for k, v in tlp.get("rules", {}).items()},
        internal=tuple(ipaddress.ip_network(n) for n in ind.get("internal_networks", [])),
        no_indicator_rules=frozenset(str(r) for r in ind.get("except_rules", [])), source=source)
