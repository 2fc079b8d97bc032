"""The ECS columns every frame of an event family has, with their Polars types.

A parser spec fills what its source knows and may add columns of its own (namespaced, e.g.
``fortinet.firewall.*``); missing core columns are null. Keeping one schema per family lets frames from
different sources and chunks be concatenated and written to one Parquet dataset per family.
"""

from __future__ import annotations

import polars as pl

TIMESTAMP = pl.Datetime("us", "UTC")
CAT = pl.Categorical

# columns of every frame: where the event came from, and the way back to the raw record
COMMON: dict[str, pl.DataType] = {
    "@timestamp": TIMESTAMP,
    "event.dataset": CAT,
    "event.kind": CAT,
    "event.category": CAT,
    "event.action": CAT,
    "event.outcome": CAT,
    "event.count": pl.UInt32,
    "host.hostname": CAT,
    "log.file.path": CAT,
    "log.offset": pl.Int64,
    "log.line": pl.Int64,
}

FAMILIES: dict[str, dict[str, pl.DataType]] = {
    "authentication": {  # logins, privilege changes, and (event.category iam) account and group changes
        "user.name": pl.String,
        "user.effective.name": pl.String,
        "source.ip": pl.String,
        "source.port": pl.UInt16,
        "process.name": CAT,
        "process.pid": pl.Int64,
        "process.command_line": pl.String,
        "event.reason": pl.String,
        "event.type": pl.List(pl.String),  # ECS: a list (["user", "creation"]); a spec gives "user,creation"
        "user.target.name": pl.String,
        "user.target.id": pl.String,
        "group.name": pl.String,
        "group.id": pl.String,
        "message": pl.String,
    },
    "syslog": {
        "process.name": CAT,
        "process.pid": pl.Int64,
        "log.syslog.priority": pl.Int16,
        "log.syslog.msgid": pl.String,
        "message": pl.String,
    },
    "web": {
        "source.ip": pl.String,
        "source.port": pl.UInt16,
        "destination.ip": pl.String,
        "destination.port": pl.UInt16,
        "user.name": pl.String,
        "http.request.method": CAT,
        "url.original": pl.String,
        "url.path": pl.String,
        "url.query": pl.String,
        "url.domain": pl.String,
        "http.version": CAT,
        "http.response.status_code": pl.UInt16,
        "http.response.body.bytes": pl.Int64,
        "http.request.body.bytes": pl.Int64,
        "http.request.referrer": pl.String,
        "user_agent.original": pl.String,
        "event.duration": pl.Int64,
    },
    "network": {
        "source.ip": pl.String,
        "source.port": pl.UInt16,
        "destination.ip": pl.String,
        "destination.port": pl.UInt16,
        "network.transport": CAT,
        "network.protocol": CAT,
        "source.bytes": pl.Int64,
        "destination.bytes": pl.Int64,
        "source.packets": pl.Int64,
        "destination.packets": pl.Int64,
        "event.duration": pl.Int64,
        "observer.name": CAT,
        "observer.ingress.interface.name": CAT,
        "observer.egress.interface.name": CAT,
        "rule.id": pl.String,
        "rule.name": pl.String,
        "message": pl.String,
    },
    "security": {
        "source.ip": pl.String,
        "source.port": pl.UInt16,
        "destination.ip": pl.String,
        "destination.port": pl.UInt16,
        "network.transport": CAT,
        "user.name": pl.String,
        "url.original": pl.String,
        "url.domain": pl.String,
        "dns.question.name": pl.String,
        "file.name": pl.String,
        "rule.name": pl.String,
        "rule.category": CAT,
        "vulnerability.id": pl.String,
        "event.severity": pl.Int16,
        "observer.name": CAT,
        "message": pl.String,
    },
    "email": {  # mail transfer agents (Postfix): one row per connection, rejection, queue or delivery event
        "email.local_id": pl.String,
        "email.from.address": pl.String,
        "email.to.address": pl.String,
        "source.ip": pl.String,
        "source.domain": pl.String,
        "destination.ip": pl.String,
        "destination.domain": pl.String,
        "user.name": pl.String,
        "process.name": CAT,
        "process.pid": pl.Int64,
        "event.reason": pl.String,
        "message": pl.String,
    },
    "dns": {  # one row per query (or response) that a resolver or server logged
        "dns.question.name": pl.String,
        "dns.question.type": CAT,
        "dns.question.class": CAT,
        "dns.response_code": CAT,
        "dns.id": pl.String,
        "dns.type": CAT,
        "source.ip": pl.String,
        "source.port": pl.UInt16,
        "destination.ip": pl.String,
        "network.transport": CAT,
        "message": pl.String,
    },
    "windows": {  # Windows event logs (EVTX, Winlogbeat, NXLog); EventData fields follow under their own names
        "winlog.channel": CAT,
        "winlog.event_id": pl.UInt32,
        "winlog.provider_name": CAT,
        "winlog.record_id": pl.Int64,
        "winlog.computer_name": CAT,
        "event.code": CAT,
        "user.name": pl.String,
        "user.domain": pl.String,
        "source.ip": pl.String,
        "source.port": pl.UInt16,
        "destination.ip": pl.String,
        "destination.port": pl.UInt16,
        "process.executable": pl.String,
        "process.command_line": pl.String,
        "process.pid": pl.Int64,
        "process.parent.executable": pl.String,
        "file.path": pl.String,
        "registry.path": pl.String,
        "dns.question.name": pl.String,
    },
    "device": {
        "source.ip": pl.String,
        "user.name": pl.String,
        "observer.name": CAT,
        "event.reason": pl.String,
        "message": pl.String,
    },
}

# ECS: "always store the raw address in the .address field, then duplicate it to .ip or .domain, depending
# on which one it is". Specs fill ``*.ip`` with whatever the source wrote there (sshd's rhost, a web server
# with HostnameLookups, a firewall's host object); ``conform`` splits it (``split_addresses``), so every
# family with an ``*.ip`` column has ``*.address`` and ``*.domain`` too.
for _cols in FAMILIES.values():
    for _side in ("source", "destination"):
        if f"{_side}.ip" in _cols:
            _cols.setdefault(f"{_side}.address", pl.String)
            _cols.setdefault(f"{_side}.domain", pl.String)

# an IPv4 dotted quad, or IPv6 text (hex groups and colons, an embedded IPv4, a %zone); loose on purpose: it
# tells addresses from host names, it does not validate them
IP_TEXT = r"^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:]*(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?:%.+)?)$"

DEAD_LETTERS: dict[str, pl.DataType] = {
    "log.file.path": pl.String,
    "log.line": pl.Int64,
    "log.offset": pl.Int64,
    "error.message": pl.String,
    "event.original": pl.Binary,
}


def columns(family: str) -> dict[str, pl.DataType]:
    """Core columns of ``family`` in their fixed order."""
    if family not in FAMILIES:
        raise KeyError(f"unknown event family {family!r} (known: {', '.join(FAMILIES)})")
    return {**COMMON, **FAMILIES[family]}


def conform(frame: pl.DataFrame, family: str, extra: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """Give ``frame`` exactly the family's columns (then ``extra``), typed, nulls where it had none.

    A list column (``event.type``) given as a string is split at commas; ``*.ip`` values that are not IP
    addresses move to ``*.domain`` (``split_addresses``)."""
    lists = [n for n, t in FAMILIES.get(family, {}).items() if isinstance(t, pl.List) and n in frame.columns
             and frame.schema[n] in (pl.String, pl.Categorical)]
    if lists:
        frame = frame.with_columns(pl.col(n).cast(pl.String).str.split(",") for n in lists)
    key = (family, tuple((extra or {}).items()), tuple(frame.columns))
    try:
        exprs = _CONFORM.get(key)
    except TypeError:  # a type that does not hash: built each time
        key, exprs = None, None
    if exprs is None:
        want = {**columns(family), **(extra or {})}
        exprs = [(pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
                 for name, dtype in want.items()]
        if key is not None:
            if len(_CONFORM) >= _CONFORM_KEPT:
                _CONFORM.clear()
            _CONFORM[key] = exprs
    return split_addresses(frame.select(exprs))


def split_addresses(frame: pl.DataFrame) -> pl.DataFrame:
    """``*.address`` the raw value of ``*.ip`` (or what a spec gave), ``*.domain`` it where it is not an IP
    address (or what a spec gave), ``*.ip`` only IP addresses. One regex pass per column; the common chunk,
    all addresses, keeps its ``*.ip`` column as it is."""
    out = {}
    for side in ("source", "destination"):
        ip, address, domain = f"{side}.ip", f"{side}.address", f"{side}.domain"
        if ip not in frame.columns or address not in frame.columns:
            continue
        values = frame.get_column(ip)
        if values.null_count() == frame.height:  # nothing to split or copy (most Windows event frames)
            continue
        raw = values if frame.get_column(address).null_count() == frame.height else \
            pl.select(pl.coalesce(frame.get_column(address), values)).to_series()
        out[address] = raw.alias(address)
        bad = ~values.str.contains(IP_TEXT) & (values.str.len_bytes() > 0)
        if not bad.any():
            continue
        out[ip] = pl.select(pl.when(~bad).then(values)).to_series().alias(ip)
        named = pl.select(pl.when(bad).then(values)).to_series()
        out[domain] = pl.select(pl.coalesce(frame.get_column(domain), named)).to_series().alias(domain)
    return frame.with_columns(**out) if out else frame


# conform's expressions by (family, extra, the frame's columns): building them took ~1.3 ms of a small
# EVTX file's ~8 ms (a hundred expressions, each cast parsed anew); a run sees few distinct keys
_CONFORM: dict[tuple, list[pl.Expr]] = {}
_CONFORM_KEPT = 1024
