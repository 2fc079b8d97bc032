"""The asset inventory the SOC maintains: CIDRs and host names -> agency, system, security level, owner.

A CSV (header ``match,agency,agency_id,system,security_level,owner``; several matches in one cell separated by
spaces or ``;``) or a TOML file (``[[asset]]`` tables with the same keys, ``match`` a string or a list).
A match is an IPv4/IPv6 address or CIDR, a host name (case-insensitive), or ``*.domain`` for every host under
``domain``. The most specific entry wins: the longest prefix for addresses, an exact name before a wildcard.
"""

from __future__ import annotations

import csv
import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

_HOST = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
FIELDS = ("agency", "agency_id", "system", "security_level", "owner")


class InventoryError(ValueError):
    """An inventory entry soc cannot use (the message names the file and the entry)."""


@dataclass(frozen=True)
class Asset:
    agency: str
    agency_id: str | None
    system: str | None
    security_level: int | None
    owner: str | None


@dataclass
class Inventory:
    assets: list[Asset]
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]]  # most specific first
    hosts: dict[str, int]        # exact lower-case host name -> asset index
    suffixes: list[tuple[str, int]]  # ".domain" -> asset index, longest first

    def match_ip(self, value: str | None) -> int | None:
        """The index of the asset whose CIDR holds ``value`` (longest prefix), or None."""
        if not value:
            return None
        try:
            ip = ipaddress.ip_address(value.strip().split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        for net, idx in self.networks:
            if ip.version == net.version and ip in net:
                return idx
        return None

    def match_host(self, value: str | None) -> int | None:
        """The index of the asset named ``value`` (exact, then ``*.domain``), or None."""
        if not value:
            return None
        name = value.strip().lower().rstrip(".")
        if name in self.hosts:
            return self.hosts[name]
        for suffix, idx in self.suffixes:
            if name.endswith(suffix):
                return idx
        return None


def load_inventory(path: str | Path) -> Inventory:
    """Read a CSV or TOML inventory; any bad entry is an ``InventoryError`` naming file and entry."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InventoryError(f"cannot read asset inventory {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".toml":
        try:
            rows = tomllib.loads(text).get("asset", [])
        except tomllib.TOMLDecodeError as exc:
            raise InventoryError(f"asset inventory {path}: {exc}") from None
        entries = [(f"{path}: asset #{i + 1}", row) for i, row in enumerate(rows)]
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "match" not in reader.fieldnames or "agency" not in reader.fieldnames:
            raise InventoryError(f"asset inventory {path}: the header must name at least 'match' and 'agency'")
        entries = [(f"{path}: line {i + 2}", row) for i, row in enumerate(reader)]
    return build_inventory(entries)


def build_inventory(entries: list[tuple[str, dict]]) -> Inventory:
    """An inventory from ``(where, row)`` pairs (``where`` names the entry in error messages)."""
    assets: list[Asset] = []
    networks, hosts, suffixes = [], {}, []
    for where, row in entries:
        matches = row.get("match")
        if isinstance(matches, str):
            matches = re.split(r"[\s;]+", matches.strip())
        matches = [m for m in (matches or []) if m]
        if not matches:
            raise InventoryError(f"{where}: no 'match' (CIDR, address or host name)")
        agency = str(row.get("agency") or "").strip()
        if not agency:
            raise InventoryError(f"{where}: no 'agency'")
        level = row.get("security_level")
        if level in (None, ""):
            level = None
        else:
            try:
                level = int(level)
            except (TypeError, ValueError):
                level = 0
            if not 1 <= level <= 5:
                raise InventoryError(f"{where}: security_level must be 1-5, not {row.get('security_level')!r}")
        idx = len(assets)
        assets.append(Asset(agency, _text(row.get("agency_id")), _text(row.get("system")), level,
                            _text(row.get("owner"))))
        for match in matches:
            match = str(match).strip()
            try:
                networks.append((ipaddress.ip_network(match, strict=False), idx))
                continue
            except ValueError:
                pass
            name = match.lower().rstrip(".")
            if not _HOST.match(name):
                raise InventoryError(f"{where}: {match!r} is neither an address, a CIDR nor a host name")
            if name.startswith("*."):
                suffixes.append((name[1:], idx))
            else:
                hosts.setdefault(name, idx)
    networks.sort(key=lambda item: -item[0].prefixlen)
    suffixes.sort(key=lambda item: -len(item[0]))
    return Inventory(assets, networks, hosts, suffixes)


def _text(value) -> str | None:
    value = "" if value is None else str(value).strip()
    return value or None
