"""Routes: which lines of a source go to which event family, with which columns (shared by engines).

A spec's engine section may hold ``routes``, a list tried in order, the first that matches takes the line::

    - name: traffic
      when: {type: [traffic]}          # every field listed has one of its values
      family: network
      columns: {...}                   # added to (or replacing) the spec's own columns
      constants: {...}                 # idem for constants; a constant replaces a column

``when`` may also be a list of such mappings, any of which matches. A route without ``when`` takes every
line (it must be the last); a default route to the spec's own family is added when there is none.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import polars as pl

from soc.parse.columns import Rule, SpecError, rules_from_spec
from soc.schema import FAMILIES
from soc.schema import columns as family_columns

CONSTANT_TYPES = {bool: pl.Boolean, int: pl.Int64, float: pl.Float64, str: pl.String}


@dataclass(frozen=True)
class Route:
    """Which lines (``when``), to which family, with which columns and constants."""

    name: str
    family: str
    when: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]  # any of (all of (field in values))
    rules: tuple[Rule, ...]
    constants: dict

    def fields(self) -> list[str]:
        """Raw fields ``when`` reads."""
        return list(dict.fromkeys(f for alt in self.when for f, _ in alt))

    def sources(self) -> list[str]:
        """Raw fields the route's rules read."""
        return list(dict.fromkeys(r.source for rule in self.rules for r in rule.chain))


def load_routes(spec) -> list[Route]:
    """The spec's routes, each with the spec's columns and constants merged in; a default route last."""
    nulls = spec_nulls(spec)
    routes: list[Route] = []
    for i, raw in enumerate(spec.options.get("routes") or []):
        name = raw.get("name", f"route {i + 1}")
        where = f"{spec.path}: route {name}"
        unknown = set(raw) - {"name", "when", "family", "columns", "constants", "keep"}  # keep: the zeek engines
        if unknown:
            raise SpecError(f"{where}: unknown keys {sorted(unknown)}")
        family = raw.get("family", spec.family)
        if family not in FAMILIES:
            raise SpecError(f"{where}: unknown family {family!r}")
        if routes and not routes[-1].when:
            raise SpecError(f"{where}: comes after the catch-all route {routes[-1].name}")
        when = raw.get("when") or []
        when = tuple(tuple((str(f), tuple(str(v) for v in (vs if isinstance(vs, list) else [vs])))
                           for f, vs in alt.items())
                     for alt in (when if isinstance(when, list) else [when]))
        try:
            own = rules_from_spec(raw.get("columns") or {}, nulls)
        except SpecError as exc:
            raise SpecError(f"{where}: {exc}") from None
        routes.append(_route(name, family, when, spec, own, raw.get("constants") or {}))
    if not routes or routes[-1].when:
        routes.append(_route("default", spec.family, (), spec, [], {}))
    return routes


def spec_nulls(spec) -> tuple[str, ...]:
    """The spec's null markers (its ``null:``), as its own columns got them; route columns get the same."""
    counts = Counter(r.nulls for r in spec.columns)
    return counts.most_common(1)[0][0] if counts else ("-", "")


def _route(name: str, family: str, when: tuple, spec, own: list[Rule], constants: dict) -> Route:
    consts = {**spec.constants, **constants}
    rules = {r.target: r for r in spec.columns}
    rules.update({r.target: r for r in own})
    return Route(name, family, when, tuple(r for t, r in rules.items() if t not in consts), consts)


def family_extras(routes: list[Route]) -> dict[str, dict[str, pl.DataType]]:
    """Per family, the non-core columns of all its routes in one fixed order (one schema per family)."""
    out: dict[str, dict[str, pl.DataType]] = {}
    for route in routes:
        core = family_columns(route.family)
        extra = out.setdefault(route.family, {})
        for rule in route.rules:
            if rule.target not in core:
                extra.setdefault(rule.target, rule.dtype)
        for target, value in route.constants.items():
            if target not in core:
                extra.setdefault(target, CONSTANT_TYPES.get(type(value), pl.String))
    return out
