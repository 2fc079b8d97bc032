"""Typed ECS columns from raw string fields, as a spec's ``columns:`` section declares them.

A rule reads ``from`` a raw field, treats the spec's null markers (``-``) as absent, converts to its
``type`` and says what a failure means: by default a present value that does not convert sends the line
to the dead letters with the reason; ``on_error: null`` keeps the line with a null instead;
``required: true`` also dead-letters a line where the value is absent. ``zone`` fixes the zone of a
timestamp field whose format defines it (W3C logs are UTC), overriding the source's configured zone;
``replace: [old, new]`` substitutes literally (IIS writes ``+`` for spaces). ``fallback`` (a field name, or
a rule of its own) is read where the first value is absent or does not convert (FortiGate: ``eventtime``,
else ``date`` + ``time``). ``type: datetime`` passes on a timestamp the engine has already converted;
``default`` is the value where the field is absent (``event.count`` of a line that is not a repeat: 1).
``type: epoch_float`` is Unix seconds with a decimal fraction (Zeek's ``ts``), kept to the microsecond.
``replace_regex: [pattern, replacement]`` substitutes every match of a Rust regex (linear time; ``$1`` or
``${name}`` in the replacement are groups), and ``strip: chars`` then removes those characters at both
ends: the Windows DNS debug log writes names as ``(7)example(3)com(0)``, which
``replace_regex: ['[(][0-9]+[)]', '.']`` and ``strip: '.'`` make ``example.com``. Order: ``replace``,
``replace_regex``, ``extract``, ``strip``, ``lower``, ``map``. ``extract: REGEX`` keeps the first group of
the regex's match and is null where it does not match (a ``DOMAIN\\user`` name's domain:
``extract: '^([^\\\\]+)\\\\'``; with a ``fallback`` rule, the first extract that matches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import polars as pl

from soc.options import DEFAULT_ZONE
from soc.parse.eager import constant, nulls
from soc.parse.fasttime import parse_epochs, parse_formats
from soc.schema import time as T

INTEGER_TYPES = {
    "int64": pl.Int64, "int32": pl.Int32, "int16": pl.Int16, "uint16": pl.UInt16, "uint32": pl.UInt32,
}
RULE_KEYS = {"from", "type", "format", "null", "required", "on_error", "lower", "map", "zone", "replace",
             "fallback", "default", "replace_regex", "strip", "extract"}
FAST = "#"  # prefix of columns computed before the lazy query (Numba timestamps)
FAST_INT = "%"  # prefix of Int64 columns an engine parsed already (JSON integers), for integer rules
FAST_EPOCH = "$"  # prefix of Datetime(us) columns of decimal Unix seconds (an engine's, or apply's), for epoch_float
FAST_FLOAT = "^"  # prefix of Float64 columns an engine made of numbers, for float64 rules
MADE = {"epoch_float": FAST_EPOCH, "float64": FAST_FLOAT}  # rule type -> prefix of an engine's typed column
RAW = "~"  # prefix of raw field columns: engines name them ``~`` + field name
TYPES = {"string", "category", "float64", "timestamp", "iso8601", "epoch", "epoch_float", "yearless", "datetime",
         *INTEGER_TYPES}
UNCHECKED = ("string", "category", "datetime")  # types whose conversion cannot fail


class SpecError(ValueError):
    """A parser spec is malformed."""


@dataclass(frozen=True)
class Context:
    """What a parser needs to know of its input beyond the bytes: the zone and the year-less reference."""

    path: str
    zone: str = DEFAULT_ZONE
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
    fallback: Rule | None = None
    default: str | int | float | None = None
    replace_regex: tuple[str, str] | None = None
    strip: str | None = None
    extract: str | None = None

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
        fallback = spec.get("fallback")
        if isinstance(fallback, list):  # [a, b, c]: a, else b, else c
            chain = None
            for item in reversed(fallback):
                item = {"from": item, "type": kind} if isinstance(item, str) else {"type": kind, **item}
                chain = {**item, "fallback": chain} if chain else item
            fallback = chain
        elif isinstance(fallback, str):
            fallback = {"from": fallback, "type": kind}
        elif isinstance(fallback, dict):  # a rule of its own, of this rule's type unless it says
            fallback = {"type": kind, **fallback}
        return Rule(
            target=target,
            source=str(spec.get("from", target)),
            type=kind,
            formats=(formats,) if isinstance(formats, str) else tuple(formats),
            nulls=() if kind == "datetime" else tuple(spec.get("null", default_nulls)),
            required=bool(spec.get("required", False)),
            on_error=spec.get("on_error", "dead"),
            lower=bool(spec.get("lower", False)),
            map=tuple((str(k), str(v)) for k, v in (spec.get("map") or {}).items()),
            zone=spec.get("zone"),
            replace=tuple(spec["replace"]) if spec.get("replace") else None,
            fallback=Rule.from_spec(target, fallback, default_nulls) if fallback else None,
            default=spec.get("default"),
            replace_regex=_regex_pair(target, spec["replace_regex"]) if spec.get("replace_regex") else None,
            strip=str(spec["strip"]) if spec.get("strip") else None,
            extract=_regex(target, "extract", spec["extract"]) if spec.get("extract") else None,
        )

    @property
    def raw(self) -> str:
        """Name of the raw column in the engine's frame (prefixed so it never collides with a target)."""
        return RAW + self.source

    @property
    def dtype(self) -> pl.DataType:
        """The Polars type of the column this rule makes (known before any data is seen)."""
        if self.type in INTEGER_TYPES:
            return INTEGER_TYPES[self.type]
        return {"string": pl.String, "category": pl.Categorical, "float64": pl.Float64}.get(self.type, T.UTC)

    @property
    def chain(self) -> list[Rule]:
        """This rule and its fallbacks, in the order they are tried."""
        return [self, *(self.fallback.chain if self.fallback else [])]

    @property
    def checked(self) -> bool:
        """Whether the rule can reject a line (required, or a conversion that can fail)."""
        return self.required or any(r.type not in UNCHECKED for r in self.chain)

    @property
    def plain(self) -> bool:
        """Whether the rule converts its raw value as it is (no text transformation first)."""
        return not (self.lower or self.map or self.replace or self.replace_regex or self.strip or self.extract)

    @property
    def fast(self) -> bool:
        """Whether the Numba timestamp parser may do this rule's conversion (see ``apply``)."""
        return self.type == "timestamp" and self.plain

    def present(self) -> pl.Expr:
        """Whether the raw value is there: not null, not a null marker. The markers are compared one by one:
        ``is_in`` hashed every value (2.3% of an EVE run's CPU samples), a comparison of string views
        mostly reads their lengths."""
        raw = pl.col(self.raw)
        out = raw.is_not_null()
        for marker in self.nulls:
            out = out & (raw != marker)
        return out

    def value(self, ctx: Context, ready: frozenset[str] = frozenset(), ints: frozenset[str] = frozenset(),
              made: frozenset[str] = frozenset()) -> pl.Expr:
        """The typed column; ``ready`` names the raw fields of timestamps already parsed (``FAST`` + raw),
        ``ints`` those of integers an engine parsed (``FAST_INT`` + raw), ``made`` the columns an engine
        typed for ``epoch_float`` (``FAST_EPOCH`` + raw) and ``float64`` rules (``FAST_FLOAT`` + raw)."""
        out = self.convert(ctx, ready, ints, made)
        if self.fallback is not None:
            out = pl.coalesce([r.convert(ctx, ready, ints, made) for r in self.chain])
        if self.default is not None:
            absent = ~pl.any_horizontal([r.present() for r in self.chain])
            out = pl.when(absent).then(pl.lit(self.default)).otherwise(out)
        return out.alias(self.target)

    def convert(self, ctx: Context, ready: frozenset[str] = frozenset(), ints: frozenset[str] = frozenset(),
                made: frozenset[str] = frozenset()) -> pl.Expr:
        """This rule's own typed value, fallbacks aside."""
        if self.raw in ready and self.fast:
            return pl.when(self.present()).then(pl.col(FAST + self.raw))
        prefix = MADE.get(self.type)
        if prefix is not None and prefix + self.raw in made and self.plain:
            return pl.when(self.present()).then(pl.col(prefix + self.raw))
        if self.raw in ints and self.type in INTEGER_TYPES and self.plain:
            return pl.when(self.present()).then(pl.col(FAST_INT + self.raw)).cast(INTEGER_TYPES[self.type],
                                                                                 strict=False)
        raw = pl.when(self.present()).then(pl.col(self.raw))
        if self.replace:
            raw = raw.str.replace_all(self.replace[0], self.replace[1], literal=True)
        if self.replace_regex:
            raw = raw.str.replace_all(self.replace_regex[0], self.replace_regex[1])
        if self.extract:
            raw = raw.str.extract(self.extract, 1)
        if self.strip:
            raw = raw.str.strip_chars(self.strip)
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
        elif kind == "datetime":
            out = raw.cast(T.UTC)
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
        elif kind == "epoch_float":
            out = T.epoch_float(raw.cast(pl.Float64, strict=False))
        else:  # yearless
            out = T.yearless(raw, ctx.reference, zone, *(self.formats[:1]))
        return out

    def problem(self) -> pl.Expr:
        """The reason this rule rejects the line, or null."""
        if self.fallback is not None:
            return self._chain_problem()
        failed = pl.col(self.target).is_null()
        bad = pl.lit(None, pl.String)
        if self.type not in UNCHECKED and self.on_error == "dead":
            quoted = pl.col(self.raw).str.slice(0, 60)
            bad = pl.when(self.present() & failed).then(
                pl.format("{}: {} is not a valid {}", pl.lit(self.target), quoted, pl.lit(self.type))
            )
        if self.required:
            return pl.when(~self.present()).then(pl.lit(f"{self.target}: missing")).otherwise(bad)
        return bad

    def failed(self) -> pl.Expr:
        """Whether this rule rejects the line: ``problem`` as a boolean, cheap to compute on every line."""
        present = pl.any_horizontal([r.present() for r in self.chain])
        bad = pl.lit(False)
        if self.checked and self.on_error == "dead":
            bad = present & pl.col(self.target).is_null()
        return (~present | bad) if self.required else bad

    def _chain_problem(self) -> pl.Expr:
        """Like ``problem`` over the chain: the value quoted is the first present one."""
        chain = self.chain
        present = pl.any_horizontal([r.present() for r in chain])
        bad = pl.lit(None, pl.String)
        if self.checked and self.on_error == "dead":
            tried = pl.coalesce([pl.when(r.present()).then(pl.col(r.raw)) for r in chain]).str.slice(0, 60)
            kind = pl.coalesce([pl.when(r.present()).then(pl.lit(r.type)) for r in chain])
            bad = pl.when(present & pl.col(self.target).is_null()).then(
                pl.format("{}: {} is not a valid {}", pl.lit(self.target), tried, kind)
            )
        if self.required:
            return pl.when(~present).then(pl.lit(f"{self.target}: missing")).otherwise(bad)
        return bad


def _regex(target: str, key: str, pattern: object) -> str:
    """A rule's regex, checked now: a bad one is a spec error when the spec loads, not a crash mid-file. A pattern
    this Polars version accepted before is not checked again (``soc.content.known``): each check is a Polars query,
    ~0.3 ms, and a process loads ~40 of them (the parser specs, the Windows event columns): 12-20 ms of CPU."""
    if not isinstance(pattern, str):
        raise SpecError(f"column {target}: {key} needs a regex string, got {pattern!r}")
    from soc.content import known, remember

    kept = f"regexes-{pl.__version__}"
    if pattern in known(kept):
        return pattern
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.ComputeError as exc:
        raise SpecError(f"column {target}: {key} {pattern!r} is not a valid regex: {exc}") from None
    remember(kept, pattern)
    return pattern


def _regex_pair(target: str, pair: object) -> tuple[str, str]:
    """``[pattern, replacement]`` of ``replace_regex``, the pattern checked like ``_regex``."""
    if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
        raise SpecError(f"column {target}: replace_regex is [pattern, replacement], got {pair!r}")
    return _regex(target, "replace_regex", pair[0]), pair[1]


def rules_from_spec(section: dict, default_nulls: tuple[str, ...] = ("-", "")) -> list[Rule]:
    return [Rule.from_spec(target, spec, default_nulls) for target, spec in (section or {}).items()]


SMALL_QUERY = 2048  # rows: below, a typing query runs without the optimiser's passes
_NO_OPT = pl.QueryOptFlags.none() if hasattr(pl, "QueryOptFlags") else None


@lru_cache(maxsize=256)
def _expressions(rules: tuple[Rule, ...], ctx: Context, ready: frozenset[str], ints: frozenset[str] = frozenset(),
                 made: frozenset[str] = frozenset()) -> tuple[list[pl.Expr], pl.Expr, pl.Expr]:
    """The typed columns of ``rules``, whether a line is rejected, and why, as expressions built once
    (building them costs more than running them on a small chunk or a small route)."""
    checked = [r for r in rules if r.checked]
    failed = pl.any_horizontal([r.failed() for r in checked]) if checked else pl.lit(False)
    reason = pl.coalesce([r.problem() for r in checked]) if checked else pl.lit(None, pl.String)
    return [r.value(ctx, ready, ints, made) for r in rules], failed.alias("_failed"), reason.alias("_reason")


def apply(raw: pl.DataFrame, rules: list[Rule], ctx: Context, constants: dict | None = None,
          derived: dict[str, pl.Expr] | None = None) -> tuple[pl.DataFrame, pl.Series]:
    """Typed columns of ``rules`` (plus constants) and, per line, the first reason to reject it (or null).

    Reasons are strings made per line, so they are made only for the lines that fail (usually none).
    An engine may pass values it has typed already: ``FAST`` + raw, the ``Datetime(us, UTC)`` of a
    timestamp field (as ``fasttime.parse_formats`` makes it from the formats of every fast rule reading
    the field), ``FAST_INT`` + raw, the Int64 of an integer field, ``FAST_EPOCH`` + raw, the
    ``Datetime(us, UTC)`` of a field of decimal Unix seconds (for its ``epoch_float`` rules), and
    ``FAST_FLOAT`` + raw, the Float64 of a number field (for its ``float64`` rules).

    ``derived``: raw columns (prefixed names) made from others by expressions, made first in the same query
    (a query of their own cost ~0.3 ms, most of a small Windows group's typing).
    """
    derived = derived or {}
    if derived and any(c.raw in derived for r in rules for c in r.chain if c.fast or c.type == "epoch_float"):
        raw, derived = raw.with_columns(**derived), {}  # a field read before the query: made first
    missing = {c.raw for r in rules for c in r.chain} - set(raw.columns) - set(derived)
    if missing:  # a field this input does not have (e.g. a W3C log without cs(Referer)): null
        raw = raw.hstack([nulls(m, pl.String, raw.height) for m in sorted(missing)])
    fast = {}
    given = {name for name in raw.columns if name.startswith(FAST)}
    for r in (c for rule in rules for c in rule.chain
              if c.fast and FAST + c.raw not in fast and FAST + c.raw not in given):
        parsed = parse_formats(raw.get_column(r.raw), list(r.formats), r.zone or ctx.zone)
        if parsed is not None:
            fast[FAST + r.raw] = parsed
    epochs = {}  # FAST_EPOCH columns the engine did not make
    for r in (c for rule in rules for c in rule.chain if c.type == "epoch_float" and c.plain):
        name = FAST_EPOCH + r.raw
        if name in raw.columns or name in epochs:
            continue
        if (parsed := parse_epochs(raw.get_column(r.raw))) is not None:
            epochs[name] = parsed
    if fast or epochs:
        raw = raw.with_columns(**fast, **epochs)
    ready = frozenset(name[len(FAST):] for name in (*fast, *given))
    ints = frozenset(name[len(FAST_INT):] for name in raw.columns if name.startswith(FAST_INT))
    made = frozenset(name for name in raw.columns if name.startswith((FAST_EPOCH, FAST_FLOAT)))
    values, failed, reason = _expressions(tuple(rules), ctx, ready, ints, made)
    # the in-memory engine: Polars 2 runs a lazy query on its streaming engine unless told, whose set-up costs
    # more than a chunk's typing gains from it (Zeek JSON 178 -> 188 MB/s, 281 small EVTX files 2.4 -> 2.0 s)
    # a small frame (a Windows event group: tens of rows) costs its planning more than its running: the
    # optimiser's passes were ~15% of such a query (they change no value), and its expressions run one after
    # the other (``with_columns_seq``): handing each to Polars' thread pool cost more than running it
    small = raw.height <= SMALL_QUERY and _NO_OPT is not None
    lazy = raw.lazy()
    for step in ([derived] if derived else []) + [values, [failed]]:
        add = lazy.with_columns_seq if small else lazy.with_columns
        lazy = add(**step) if isinstance(step, dict) else add(step)
    typed = lazy.collect(engine="in-memory", optimizations=_NO_OPT) if small else lazy.collect(engine="in-memory")
    keep = list(dict.fromkeys(r.target for r in rules))
    frame = pl.DataFrame([typed.get_column(k) for k in keep]
                         + [constant(k, v, typed.height) for k, v in (constants or {}).items() if k not in keep])
    bad = typed.get_column("_failed")
    why = nulls("_reason", pl.String, typed.height)
    if bad.any():
        where = bad.arg_true()
        # rechunk: Polars 2.1 panics formatting a multi-chunk string column with a broadcast literal
        why = why.scatter(where, typed.filter(bad).rechunk().select(reason).to_series())
    return frame, why
