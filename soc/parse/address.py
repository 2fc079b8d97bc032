"""A network address field as logs write it, told apart into ECS's ``*.address``, ``*.ip``, ``*.port``, ``*.domain``.

A client or server field may hold an IPv4 address, ``ipv4:port``, an IPv6 address (bare, with a zone
``fe80::1%3``, or ``[v6]:port``), or a host name (Apache with ``HostnameLookups On``, a virtual host
``www.example.gov.vn:443``). ECS keeps the address as written (minus the port) in ``*.address`` and copies
it to ``*.ip`` only when it is an IP (without the zone, which an IP field cannot hold), else to
``*.domain``. A plain IPv4 address (the usual case) is recognised with one cheap character-class scan;
only the other values go through the full regex.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.parse.eager import nulls

PARTS = ("address", "ip", "port", "domain")
_ADDRESS = (
    r"^(?:\[(?P<ip6b>[0-9A-Fa-f:.]+)(?P<zb>%[^\]]*)?\]"  # [v6] or [v6%zone], then an optional :port
    r"|(?P<ip4>(?:[0-9]{1,3}\.){3}[0-9]{1,3})"
    r"|(?P<ip6>[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)(?P<z6>%[^\s\[\]]*)?"  # bare v6: never a port
    r"|(?P<name>[^\s:\[\]]*[A-Za-z_][^\s:\[\]]*))"
    r"(?::(?P<port>[0-9]{1,5}))?$"
)


def address_fields(values: pl.Series, name: str) -> dict[str, pl.Series]:
    """Raw fields ``name:address``, ``name:ip``, ``name:port``, ``name:domain`` of ``values`` (strings).

    A value of no known shape (``unix:``, garbage) is kept as written in ``name:address`` only.
    """
    n = values.len()
    plain = (~values.str.contains(r"[^0-9.]")).fill_null(True).to_numpy()
    # clones: Series.scatter writes in place, and the caller's column must stay as it is
    out = {"address": values.clone(), "ip": values.clone(), "port": nulls("", pl.String, n),
           "domain": nulls("", pl.String, n)}
    rows = np.flatnonzero(~plain)
    if rows.size:
        g = values.gather(rows).str.extract_groups(_ADDRESS).struct.unnest()
        ip = pl.select(pl.coalesce(g["ip6b"], g["ip4"], g["ip6"])).to_series()
        host = pl.select(pl.coalesce(g["ip6b"] + g["zb"].fill_null(""), g["ip4"], g["ip6"] + g["z6"].fill_null(""),
                                     g["name"], values.gather(rows))).to_series()
        for part, got in (("address", host), ("ip", ip), ("port", g["port"]), ("domain", g["name"])):
            out[part] = out[part].scatter(rows, got)
    return {f"{name}:{part}": out[part].alias(f"{name}:{part}") for part in PARTS}
