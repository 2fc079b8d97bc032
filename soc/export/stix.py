"""Stored alerts -> one STIX 2.1 bundle (built and checked by the OASIS ``stix2`` library).

What an alert becomes:
- a **sighting** (``where_sighted_refs``: the agency's identity, else the SOC's; ``count``/``first_seen``/
  ``last_seen`` from the alert; ``confidence`` its risk score; the alert id in ``external_references``;
  severity, layer and security level as ``labels``);
- an **observed-data** with the alert's entities as STIX cyber-observables: IPv4/IPv6 addresses (source,
  destination, ``related.ip``), domain names (``related.hosts`` and DNS evidence that are fully qualified
  names), URLs (URL evidence with a scheme and host; a bare path is not a URL), file hashes (``*.hash.*``
  evidence), user accounts (``user.name``, ``related.user``). A value that is not a valid address, name or hash
  is left out of the observables (it stays in the NDJSON export): attacker-controlled text never becomes a
  pattern or an identifier, only JSON string data;
- an **indicator** when the rule gives one: the alert's source address is outside the sharing policy's
  internal networks (the actor came from outside) and the rule is not in ``[indicators] except_rules``. Its
  pattern is ``[ipv4-addr:value = '…']`` (or ``ipv6-addr``) on the address as ``ipaddress`` prints it, so no
  quoting is needed. An internal source (a victim, a scanner of ours), a detector keyed on an account or a
  host only, or a rule without a source address gives none;
- ATT&CK **attack-patterns**, one per technique id (``external_references`` ``mitre-attack`` with the id and
  its URL), which the sighting is of when there is no indicator (the indicator ``indicates`` them). A rule with
  neither gets an attack-pattern of its own (``external_references`` ``soc-rule``), since a sighting must be
  of something.

Markings: the policy's TLP per alert (rule, then security level, then default). TLP 2.0 uses the OASIS TLP 2.0
marking definitions (fixed ids, extension ``extension-definition--60a3c5c5-…``; stix2 3.0 ships only TLP 1.0
objects, so they are built here); TLP 1.0 uses stix2's ``TLP_WHITE``/``GREEN``/``AMBER``/``RED``. An object
several alerts share (an address, a technique, an agency) carries the strictest of their markings; the SOC's
identity the default.

Ids are deterministic: observables by the STIX 2.1 rule (uuid5 of their value, done by stix2), the rest uuid5
of soc's namespace with the object type and the alert id (plus the pattern or the two ends of a relationship),
and every timestamp comes from the alert: two exports of the same store are byte-identical. A fuller version of
an alert (a job's upsert) keeps its ids with a later ``modified``, as STIX versions an object.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import polars as pl
import stix2.v21 as stix

from soc.export.policy import SharingPolicy, strictest

NAMESPACE = uuid.UUID("8a3c1f5e-4b2d-5e6f-9a7b-1c2d3e4f5a6b")  # soc's STIX ids (never change it: ids follow)
EPOCH = datetime(2019, 1, 1, tzinfo=UTC)  # created of the timeless objects (identities, techniques)
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
MAX_COUNT = 999_999_999  # STIX's limit of count / number_observed
_TECHNIQUE = re.compile(r"T\d{4}(?:\.\d{3})?")
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
_HASH = re.compile(r"[0-9A-Fa-f]+")
_HASHES = {"md5": ("MD5", 32), "sha1": ("SHA-1", 40), "sha256": ("SHA-256", 64), "sha512": ("SHA-512", 128)}
_URI_SAFE = "-._~:/?#[]@!$&'()*+,;=%"
_URI = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
_DOMAIN_FIELDS = ("dns.question.name", "dns.question.registered_domain", "url.domain", "destination.domain")


def sid(kind: str, *parts: str) -> str:
    """A deterministic STIX id of ``kind`` from ``parts``."""
    return f"{kind}--{uuid.uuid5(NAMESPACE, chr(31).join((kind, *parts)))}"


def markings(version: int) -> dict[str, stix.MarkingDefinition]:
    """TLP name -> its STIX marking definition (TLP 2.0 or stix2's TLP 1.0)."""
    if version == 1:
        return {"white": stix.TLP_WHITE, "green": stix.TLP_GREEN, "amber": stix.TLP_AMBER, "red": stix.TLP_RED}
    return {name: stix.MarkingDefinition(
        id=mid, created="2022-10-01T00:00:00.000Z", name=f"TLP:{name.upper()}",
        extensions={TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": name}})
        for name, mid in TLP2_IDS.items()}


def _domain(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    return len(value) <= 253 and len(labels) >= 2 and all(_LABEL.fullmatch(x) for x in labels) \
        and labels[-1][:1].isalpha()


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _uri(value: str) -> str | None:
    """``value`` as an RFC 3986 URI with a scheme and a host (what STIX's url requires), characters a URI cannot
    hold percent-encoded (a quote, a control character); None if it is no such URL (a bare path)."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if parts.scheme.lower() not in ("http", "https", "ftp") or not parts.netloc:
        return None
    uri = quote(value, safe=_URI_SAFE)
    return uri if _URI.fullmatch(uri) else None


def _technique_url(tid: str) -> str:
    return "https://attack.mitre.org/techniques/" + tid.replace(".", "/") + "/"


class _Shared:
    """Objects several alerts may point at, built once at the end with the strictest TLP of those alerts."""

    def __init__(self):
        self.kinds: dict[str, tuple[type, dict]] = {}
        self.tlps: dict[str, set[str]] = {}
        self.ids: dict[tuple[type, str], str] = {}

    def add(self, oid: str, cls: type, kwargs: dict, tlp: str) -> str:
        self.kinds.setdefault(oid, (cls, kwargs))
        self.tlps.setdefault(oid, set()).add(tlp)
        return oid

    def observable(self, cls: type, tlp: str, **kwargs) -> str:
        key = (cls, json.dumps(kwargs, sort_keys=True))  # an address seen in many alerts is built once here
        oid = self.ids.get(key)
        if oid is None:
            oid = self.ids[key] = cls(**kwargs).id  # STIX's deterministic id: it does not depend on the marking
        return self.add(oid, cls, kwargs, tlp)

    def build(self, marks: dict[str, stix.MarkingDefinition]) -> list:
        return [cls(**kwargs, object_marking_refs=[marks[strictest(self.tlps[oid])].id])
                for oid, (cls, kwargs) in sorted(self.kinds.items())]


def _observables(row: dict, shared: _Shared, tlp: str) -> list[str]:
    refs: list[str] = []
    ips = [row["source.ip"], row["destination.ip"], *(row["related.ip"] or ())]
    for value in dict.fromkeys(v for v in ips if v):
        ip = _address(value)
        if ip is not None:
            cls = stix.IPv4Address if ip.version == 4 else stix.IPv6Address
            refs.append(shared.observable(cls, tlp, value=str(ip)))
    field, evidence = row["evidence.field"] or "", row["evidence.values"] or []
    names = [*(row["related.hosts"] or ()), *(evidence if field in _DOMAIN_FIELDS else ())]
    for value in dict.fromkeys(v.lower().rstrip(".") for v in names if v and _domain(v)):
        refs.append(shared.observable(stix.DomainName, tlp, value=value))
    if field in ("url.original", "url.full"):
        for value in dict.fromkeys(_uri(v) for v in evidence if v):
            if value:
                refs.append(shared.observable(stix.URL, tlp, value=value))
    algo = field.rsplit(".", 1)[-1] if ".hash." in field else ""
    if algo in _HASHES:
        name, length = _HASHES[algo]
        for value in dict.fromkeys(v.lower() for v in evidence if v and len(v) == length and _HASH.fullmatch(v)):
            refs.append(shared.observable(stix.File, tlp, hashes={name: value}))
    users = [row["user.name"], *(row["related.user"] or ())]
    for value in dict.fromkeys(v for v in users if v):
        refs.append(shared.observable(stix.UserAccount, tlp, account_login=value))
    return list(dict.fromkeys(refs))


def _alert_objects(row: dict, policy: SharingPolicy, soc_id: str, shared: _Shared,
                   marks: dict[str, stix.MarkingDefinition]) -> list:
    aid, rule_id, rule_name = row["event.id"], row["rule.id"] or "", row["rule.name"] or row["rule.id"] or "alert"
    tlp = policy.tlp(rule_id, row["labels.security_level"])
    common = {"created_by_ref": soc_id, "object_marking_refs": [marks[tlp].id]}
    first = row["event.start"] or row["@timestamp"]
    last = max(row["event.end"] or first, first)
    created = min(row["@timestamp"] or first, first)
    times = {"created": created, "modified": max(last, created)}
    count = max(1, min(int(row["event.count"] or 1), MAX_COUNT))
    objects = []

    techniques = [t for t in dict.fromkeys(row["threat.technique.id"] or ()) if t and _TECHNIQUE.fullmatch(t)]
    patterns = [shared.add(sid("attack-pattern", "mitre-attack", t), stix.AttackPattern, {
        "id": sid("attack-pattern", "mitre-attack", t), "created": EPOCH, "modified": EPOCH, "name": t,
        "description": f"MITRE ATT&CK technique {t}.",
        "created_by_ref": soc_id, "external_references": [
            {"source_name": "mitre-attack", "external_id": t, "url": _technique_url(t)}]}, tlp)
        for t in techniques]

    target = None
    ip = _address(row["source.ip"] or "")
    if ip is not None and rule_id not in policy.no_indicator_rules and policy.external(str(ip)):
        pattern = f"[{'ipv4' if ip.version == 4 else 'ipv6'}-addr:value = '{ip}']"
        target = sid("indicator", aid, pattern)
        objects.append(stix.Indicator(
            id=target, **times, **common, name=f"{rule_name}: {ip}", pattern=pattern, pattern_type="stix",
            description=f"Source address of {count} hits of {rule_name}, from outside the agencies' networks.",
            valid_from=first, indicator_types=["malicious-activity"],
            confidence=int(row["event.risk_score"] or 0)))
        objects.extend(stix.Relationship(id=sid("relationship", aid, target, ap), **times, **common,
                                         relationship_type="indicates", source_ref=target, target_ref=ap)
                       for ap in patterns)
    if target is None and patterns:
        target = patterns[0]
    if target is None:
        rid = sid("attack-pattern", "soc-rule", rule_id or rule_name)
        target = shared.add(rid, stix.AttackPattern, {
            "id": rid, "created": EPOCH, "modified": EPOCH, "name": rule_name, "created_by_ref": soc_id,
            "description": f"What the soc rule {rule_id or rule_name} detects.",
            "external_references": [{"source_name": "soc-rule", "external_id": rule_id or rule_name}]}, tlp)

    where = soc_id
    if row["organization.name"]:
        org_key = row["organization.id"] or row["organization.name"]
        where = shared.add(sid("identity", "agency", org_key), stix.Identity, {
            "id": sid("identity", "agency", org_key), "created": EPOCH, "modified": EPOCH,
            "name": row["organization.name"], "identity_class": "organization", "created_by_ref": soc_id}, tlp)

    observed = _observables(row, shared, tlp)
    od_refs = []
    if observed:
        od = stix.ObservedData(id=sid("observed-data", aid), **times, **common, first_observed=first,
                               last_observed=last, number_observed=count, object_refs=observed)
        objects.append(od)
        od_refs = [od.id]
    labels = [f"severity:{row['labels.severity'] or 'unknown'}", f"layer:{row['labels.layer'] or 'unknown'}"]
    if row["labels.security_level"]:
        labels.append(f"security-level:{row['labels.security_level']}")
    evidence = ""
    if row["evidence.values"]:
        evidence = f" Evidence {row['evidence.field'] or ''}: {', '.join(row['evidence.values'])}."
    objects.append(stix.Sighting(
        id=sid("sighting", aid), **times, **common, sighting_of_ref=target, observed_data_refs=od_refs or None,
        where_sighted_refs=[where], first_seen=first, last_seen=last, count=count,
        description=f"{rule_name} ({row['event.dataset'] or 'unknown source'}), {count} hits.{evidence}",
        confidence=int(row["event.risk_score"] or 0), labels=labels,
        external_references=[{"source_name": "soc-alert", "external_id": aid},
                             {"source_name": "soc-rule", "external_id": rule_id or rule_name}]))
    return objects


def build_bundle(alerts: pl.DataFrame | Iterable[dict], policy: SharingPolicy) -> stix.Bundle:
    """The STIX 2.1 bundle of ``alerts`` (rows of the alert schema, in the order given) under ``policy``."""
    rows = alerts.iter_rows(named=True) if isinstance(alerts, pl.DataFrame) else alerts
    marks = markings(policy.tlp_version)
    soc = stix.Identity(id=sid("identity", "soc", policy.name), created=EPOCH, modified=EPOCH, name=policy.name,
                        identity_class=policy.identity_class, sectors=list(policy.sectors) or None,
                        contact_information=policy.contact or None,
                        object_marking_refs=[marks[policy.tlp_default].id])
    shared = _Shared()
    per_alert = [obj for row in rows for obj in _alert_objects(row, policy, soc.id, shared, marks)]
    built = shared.build(marks)
    used = {ref for obj in [soc, *built, *per_alert] for ref in obj.get("object_marking_refs", ())}
    objects = [m for m in marks.values() if m.id in used] + [soc, *built, *per_alert]
    bundle_id = sid("bundle", *(f"{o.id}@{o.get('modified', '')}" for o in objects))
    return stix.Bundle(id=bundle_id, objects=objects)


def bundle_json(alerts: pl.DataFrame, policy: SharingPolicy) -> str:
    """``build_bundle`` as JSON text (stable: the same alerts give the same bytes)."""
    return build_bundle(alerts, policy).serialize(pretty=False)
