"""Typed ECS columns from raw string fields, as a spec's ``columns:`` section declares them.

A rule reads ``from`` a raw field, treats the spec's null markers (``-``) as absent, converts to its
``type`` and says what a failure means: by default a present value that does not convert sends the line
to the dead letters with the reason; ``on_error: null`` keeps the line with a null instead;
``required: true`` also dead-letters a line where the value is absent. ``zone`` fixes the zone of a
timestamp field whose format defines it (W3C logs are UTC), overriding the source's configured zone;
``replace: [old, new]`` substitutes literally (IIS writes ``+`` for spaces).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from soc.schema import time as T

INTEGER_INTEGER_TYPES = {
    "int64": pl.Int64, "int32": pl.Int32, "int16": pl.Int16, "uint16": pl.UInt16, "uint32": pl.UInt32,
}
RULE_KEYS = {"from", "type", "format", "null", "required", "on_error", "lower", "map", "zone", "replace"}
RAW = "~"  # prefix of raw field columns: engines name them ``~`` + field name
TYPES = {
    "int64": pl.Int64, "int32": pl.Int32, "int16": pl.Int16, "uint16": pl.UInt16, "uint32": pl.UInt32,
}
INTEGER_TYPES = {
    "int64": pl.Int64, "int32": pl.Int32, "int16": pl.Int16, "uint16": pl.UInt16, "uint32": pl.UInt32,
}
RULE_KEYS = {"from", "type", "format", "null", "required", "on_error", "lower", "map", "zone", "replace"}
RAW = "~"  # prefix of raw field columns: engines name them ``~`` + field name
TYPES = {"string", "category", "float64", "timestamp", "iso8601", "epoch", "yearless", *INTEGER_TYPES}


class SpecError(ValueError):
    """A parser spec is malformed."""


@dataclass(frozen=True)
class Context:
    """What a parser needs to know of its input beyond the bytes: the zone and the year-less reference."""

    path: str
    zone: str = T.DEFAULT_ZONE
    reference: datetime = field(default_factory=lambda: T.reference_time(None))


@dataclass(frozen=True)
class Rule:
    target: str
    source: str
    type: str = "string"
    formats: tuple[str, ...] = ()
    nulls: tuple[str, ...] = ("-", "")
    required: bool = False
    on_error: str = "dead"
    lower: bool = False
    map: tuple[tuple[str, str], ...] = ()
    zone: str | None = None
    replace: tuple[str, str] | None = None

    @staticmethod
    def from_spec(target: str, spec: dict | str, default_nulls: tuple[str, ...]) -> Rule:
        if isinstance(spec, str):
            spec = {"from": spec}
        unknown = set(spec) - RULE_KEYS
        if unknown:
            raise SpecError(f"column {target}: unknown keys {sorted(unknown)}")
        kind = spec.get("type", "string")
        if kind not in TYPES:
            raise SpecError(f"column {target}: unknown type {kind!r} (known: {sorted(TYPES)})")
        formats = spec.get("format", ())
        return Rule(
            target=target,
            source=str(spec.get("from", target)),
            type=kind,
            formats=(formats,) if isinstance(formats, str) else tuple(formats),
            nulls=tuple(spec.get("null", default_nulls)),
            required=bool(spec.get("required", False)),
            on_error=spec.get("on_error", "dead"),
            lower=bool(spec.get("lower", False)),
            map=tuple((str(k), str(v)) for k, v in (spec.get("map") or {}).items()),
            zone=spec.get("zone"),
            replace=tuple(spec["replace"]) if spec.get("replace") else None,
        )

    @property
    def raw(self) -> str:
        """Name of the raw column in the engine's frame (prefixed so it never collides with a target)."""
        return RAW + self.source

    def present(self) -> pl.Expr:
        raw = pl.col(self.raw)
        return raw.is_not_null() & ~raw.is_in(list(self.nulls)) if self.nulls else raw.is_not_null()

    def value(self, ctx: Context) -> pl.Expr:
        raw = pl.when(self.present()).then(pl.col(self.raw))
        if self.replace:
            raw = raw.str.replace_all(self.replace[0], self.replace[1], literal=True)
        if self.lower:
            raw = raw.str.to_lowercase()
        if self.map:
            raw = raw.replace(dict(self.map))
        kind = self.type
        zone = self.zone or ctx.zone
        if kind == "string":
            out = raw
        elif kind == "category":
            out = raw.cast(pl.Categorical)
        elif kind in INTEGER_TYPES:
            out = raw.str.strip_chars().cast(INTEGER_TYPES[kind], strict=False)
        elif kind == "float64":
            out = raw.cast(pl.Float64, strict=False)
        elif kind == "timestamp":
            out = T.parse(raw, list(self.formats), zone)
        elif kind == "iso8601":
            out = T.iso8601(raw, zone)
        elif kind == "epoch":
            out = T.epoch(raw.cast(pl.Int64, strict=False))
        else:  # yearless
            out = T.yearless(raw, ctx.reference, zone, *(self.formats[:1]))
        return out.alias(self.target)

    def problem(self) -> pl.Expr:
        """The reason this rule rejects the line, or null."""
        failed = pl.col(self.target).is_null()
        bad = pl.lit(None, pl.String)
        if self.type not in ("string", "category") and self.on_error == "dead":
            quoted = pl.col(self.raw).str.slice(0, 60)
            bad = pl.when(self.present() & failed).then(
                pl.format("{}: {} is not a valid {}", pl.lit(self.target), quoted, pl.lit(self.type))
            )
        if self.required:
            return pl.when(~self.present()).then(pl.lit(f"{self.target}: missing")).otherwise(bad)
        return bad


def rules_from_spec(section: dict, default_nulls: tuple[str, ...] = ("-", "")) -> list[Rule]:
    return [Rule.from_spec(target, spec, default_nulls) for target, spec in (section or {}).items()]


def apply(raw: pl.DataFrame, rules: list[Rule], ctx: Context, constants: dict | None = None,
          ) -> tuple[pl.DataFrame, pl.Series]:
    """Typed columns of ``rules`` (plus constants) and, per line, the first reason to reject it (or null)."""
    missing = {r.raw for r in rules} - set(raw.columns)
    if missing:  # a field this input does not have (e.g. a W3C log without cs(Referer)): null
        raw = raw.with_columns([pl.lit(None, pl.String).alias(m) for m in sorted(missing)])
    typed = raw.lazy().with_columns([r.value(ctx) for r in rules])
    checks = [r.problem() for r in rules if r.required or (r.type not in ("string", "category"))]
    reason = pl.coalesce(checks) if checks else pl.lit(None, pl.String)
    out = typed.with_columns(reason.alias("_reason"))
    keep = [r.target for r in rules]
    consts = [pl.lit(v).alias(k) for k, v in (constants or {}).items() if k not in keep]
    frame = out.select([pl.col(k) for k in dict.fromkeys(keep)] + consts + [pl.col("_reason")]).collect()
    return frame.drop("_reason"), frame.get_column("_reason")
