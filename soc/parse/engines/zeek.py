r"""Engines for Zeek logs: TSV (``ZeekEngine``) and JSON (``ZeekJsonEngine``, the ``json`` engine's reader).

TSV values are separated by the ``#separator`` byte, named by ``#fields``, typed by ``#types``, the log
stream told by ``#path``. The header lines are state carried across lines and chunks
(``soc.parse.directives``, as for W3C logs); a file may hold several header blocks (concatenated or rotated
logs, different streams). Every line of a block is split by one Numba pass (``tsv_kernel.split_on``), its
fields become string views into the chunk, unescaped where they hold Zeek's ``\\`` and ``\xHH`` escapes (so a
TSV value equals the JSON form's), and routed. Header lines are not records: they are neither parsed nor
read (``lines`` counts records, so read = parsed + dead-lettered counts events and dead letters only).
Lines before any ``#fields`` and lines with another number of fields are dead-lettered.

Both engines route a record by its stream: ``_path`` (TSV: ``#path``), else the file's name when it names a
stream of ``parsers/zeek/logs.yml`` (``conn.log``, ``x509.log.gz``, ``json_streaming_ssh.log``), else the
fields only one stream has (its ``sign``, or the spec's route ``when``); a known stream never falls back on
fields (a kerberos record has ``cipher``, as ssl's do). The dataset is ``zeek.<stream>`` always (``zeek``
only for a JSON record that names none). Every field a route does not map to an ECS column is kept as
``zeek.<stream>.<field>``, typed by its Zeek type (see logs.yml); each (family, dataset) frame has its own
columns. A record of a stream without ``ts`` (``loaded_scripts``; a TSV block whose ``#fields`` has none)
takes the file's time: the TSV ``#open`` header (read in the configured zone), else the file's modification
time, and ``soc.timestamp_source`` names which (``ts``, ``#open``, ``input_time``: the names CEF's engine
uses); a record of another stream without ``ts`` is dead-lettered.
"""

from __future__ import annotations

import codecs
import dataclasses
from datetime import datetime
from functools import cache
from pathlib import PurePath
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from soc import safe_yaml
from soc.content import content_dir
from soc.parse import json_kernel as K
from soc.parse import tsv_kernel
from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import FAST_EPOCH, RAW, apply, rules_from_spec
from soc.parse.directives import by_directives
from soc.parse.eager import nulls
from soc.parse.engines.base import merge
from soc.parse.engines.json import Columns, JsonEngine
from soc.parse.engines.routed import Records, RoutedEngine
from soc.parse.routes import Route, spec_nulls
from soc.schema import columns as family_columns
from soc.schema import conform
from soc.schema import time as T

COMMON = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "_path")  # the ECS columns' fields
INTS = ("count", "int", "port")
FLOATS = ("interval", "double")
# Zeek's TSV escapes (its ASCII writer): a backslash doubled, other bytes as \xHH. Only ASCII ones are
# decoded: a byte >= 0x80 escaped is not valid UTF-8 text, and Zeek's JSON writer keeps it as "\xHH" too.
_ESCAPES = ["\\\\", *dict.fromkeys(f"\\x{b:02{c}}" for b in range(0x80) for c in "xX")]
_PLAIN = ["\\", *(chr(int(e[2:], 16)) for e in _ESCAPES[1:])]
BACKSLASH = ord("\\")
TIME_FROM = T.TIMESTAMP_SOURCE  # where @timestamp came from: ts, #open or input_time (as for CEF)
# JSON: the streams of most records, whose fields the extractor reads with the rest of every record of a file
# that no stream names; the other streams' (kerberos, ntlm, ssh: few records) are read by a second pass over
# their own records (reading them for every record cost ~6 % of the CPU of 1 M conn records)
FIRST_PASS = ("conn", "dns", "http", "ssl", "notice")


@dataclasses.dataclass(frozen=True)
class Stream:
    fields: dict[str, str]  # field -> Zeek type
    sign: tuple[tuple[str, ...], ...]  # any of (all of these fields present)
    untimed: bool = False  # a stream without ts (its records take the file's time)


@cache
def streams() -> dict[str, Stream]:
    """The Zeek log streams of ``parsers/zeek/logs.yml``."""
    doc = safe_yaml.load((content_dir("parsers") / "zeek" / "logs.yml").read_text(encoding="utf-8"))
    return {str(k): Stream({str(f): str(t) for f, t in (v.get("fields") or {}).items()},
                           tuple(tuple(str(f) for f in alt) for alt in v.get("sign") or ()), v.get("time") == "file")
            for k, v in doc["logs"].items()}


def stream_of_file(path: str) -> str | None:
    """The stream a file's name names (``conn.log``, ``dns.2026-11-20-08-00-00.log.gz``,
    ``json_streaming_x509.1.log``), if it is a known one."""
    name = PurePath(path).name.lower().removeprefix("json_streaming_")
    stem = name.split(".", 1)[0]
    return stem if stem in streams() else None


def unescape(s: pl.Series) -> pl.Series:
    """A TSV column with Zeek's escapes decoded (only where a value holds a backslash)."""
    if s.dtype not in (pl.String, pl.Utf8) or not s.str.contains("\\", literal=True).any():
        return s
    return s.str.replace_many(_ESCAPES, _PLAIN, leftmost=True)


def extra_column(name: str, kind: str, alias: bool = False) -> dict:
    """The column rule of a field kept under its Zeek name: numbers typed by the rule (a value that is not
    one is null, the record is kept), the rest as text (``typed_extra`` types times and bools). ``alias``:
    a dotted name is also read as written with ``Log::default_scope_sep = "_"`` (JSON)."""
    rule = {"from": name}
    if kind in INTS:
        rule.update(type="int64", on_error="null")
    elif kind in FLOATS:
        rule.update(type="float64", on_error="null")
    if alias and "." in name:
        rule["fallback"] = name.replace(".", "_")
    return rule


@cache
def undotted() -> dict[str, str]:
    """Known dotted field names (``id.orig_h``, ``certificate.serial``) by their spelling with Zeek's
    ``Log::default_scope_sep = "_"`` (``id_orig_h``), for the names that are not fields of their own."""
    names = {f for s in streams().values() for f in s.fields} | {"id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"}
    return {f.replace(".", "_"): f for f in names if "." in f and f.replace(".", "_") not in names}


def extra_dtype(kind: str) -> pl.DataType:
    if kind in INTS:
        return pl.Int64
    if kind in FLOATS:
        return pl.Float64
    return {"time": T.UTC, "bool": pl.Boolean}.get(kind, pl.String)


def typed_extra(column: str, kind: str, zone: str) -> pl.Expr:
    """The typed value of a text column of Zeek type ``kind`` (``T``/``F`` or JSON's ``true``/``false``;
    times as Unix seconds or ISO 8601)."""
    col = pl.col(column)
    if kind == "bool":
        return pl.when(col.is_in(["T", "true"])).then(True).when(col.is_in(["F", "false"])).then(False) \
            .otherwise(None).cast(pl.Boolean).alias(column)
    if kind == "time":
        return pl.coalesce(T.epoch_float(col.cast(pl.Float64, strict=False)), T.iso8601(col, zone)).alias(column)
    return col


class ZeekRoutes:
    """What both Zeek engines share: routes chosen by the record's stream (the spec's routes, TSV also one
    per stream of logs.yml, then a catch-all), and frames with the stream's own columns."""

    routes: list[Route]
    ctx: object
    dataset: str

    def _setup(self, spec, static: bool):
        """TSV: ``spec`` with a route per known stream (the engine adds a block's own fields to each). JSON
        (``static``): the spec's routes keep the fields logs.yml lists for their stream, read with the rest of
        the record; the other streams are the catch-all's, whose records are grouped by stream and read
        again for their own fields (``ZeekJsonEngine.typed``): a table of every stream's fields would make
        the extractor's per-record work and memory grow with their number."""
        self.file_stream = stream_of_file(self.ctx.path)
        self.extra_types: dict[str, dict[str, str]] = {}  # route name -> column -> Zeek type
        raw = list(spec.options.get("routes") or [])
        # ``keep``: fields a route maps to ECS columns that stay as zeek.<stream>.<field> too (Sigma's Zeek
        # field names read those: kerberos.log's client is also user.name and user.domain)
        self.keep = {r["name"]: frozenset(r.get("keep") or ()) for r in raw if "name" in r}
        catch = raw.pop() if raw and not raw[-1].get("when") else {"name": "other", "family": spec.family}
        known = streams()
        nulls_ = spec_nulls(spec)
        routes = []
        for r in raw:  # JSON: a file named by its stream reads only that stream's fields in the first pass
            first = static and (self.file_stream == r["name"] or self.file_stream is None and r["name"] in FIRST_PASS)
            routes.append(self._with_extras(spec, dict(r), known.get(r["name"]), first, nulls_))
        named = {r["name"] for r in raw}
        for name, stream in known.items():
            if name in named or static:
                continue
            when = [{"_path": [name]}, *({f: ["*"] for f in alt} for alt in stream.sign)]
            r = {"name": name, "when": when, "family": "network",
                 "constants": {"event.category": "network", "event.dataset": f"zeek.{name}"}}
            routes.append(self._with_extras(spec, r, stream, static, nulls_))
        catch = dict(catch)
        if static:  # JSON: the catch-all's records are grouped by their _path
            catch["columns"] = {**(catch.get("columns") or {}), "~path": "_path"}
        routes.append(catch)
        return dataclasses.replace(spec, options={**spec.options, "routes": routes})

    def _with_extras(self, spec, r: dict, stream: Stream | None, static: bool, nulls_) -> dict:
        if not static or stream is None:
            return r
        mapped = self._mapped(spec, r, nulls_)
        prefix = f"zeek.{r['name']}."
        extra = {prefix + f: extra_column(f, k, alias=True) for f, k in stream.fields.items() if f not in mapped}
        self.extra_types[r["name"]] = {prefix + f: k for f, k in stream.fields.items() if f not in mapped}
        return {**r, "columns": {**(r.get("columns") or {}), **extra}}

    def _mapped(self, spec, r: dict, nulls_) -> set[str]:
        """Fields a route maps to columns of its own (or the spec's), those it keeps aside."""
        rules = [*spec.columns, *rules_from_spec(r.get("columns") or {}, nulls_)]
        return ({c.source for rule in rules for c in rule.chain} | set(COMMON)) - self.keep.get(r["name"], set())

    def _route_expr(self) -> pl.Expr:
        """The index of each record's route: by its stream (``_path``, else the file's name), and only when
        neither names one, by the fields of the routes' ``when``."""
        path = pl.col(RAW + "_path")
        if self.file_stream:
            path = path.fill_null(pl.lit(self.file_stream))
        unnamed = path.is_null()
        out = None
        for i, route in enumerate(self.routes):
            alts = []
            for alt in route.when:
                conds = [path.is_in(list(vs)).fill_null(False) if f == "_path" else pl.col(RAW + f).is_not_null()
                         if "*" in vs else pl.col(RAW + f).is_in(list(vs)).fill_null(False) for f, vs in alt]
                cond = pl.all_horizontal(conds)
                alts.append(cond if any(f == "_path" for f, _ in alt) else unnamed & cond)
            cond = pl.any_horizontal(alts) if alts else pl.lit(True)
            out = pl.when(cond).then(pl.lit(i)) if out is None else out.when(cond).then(pl.lit(i))
        return out.otherwise(pl.lit(len(self.routes) - 1)).alias("_route")

    def file_time(self) -> tuple[datetime, str]:
        """The time of a record without ``ts``, and what it is."""
        return self.ctx.reference, "input_time"

    def untimed(self, route: Route) -> bool:
        """Whether the route's records have no ``ts`` of their own (a record of another stream without one
        is dead-lettered: it is not the record it claims to be, e.g. a Splunk export's wrapper)."""
        stream = streams().get(route.name)
        return stream is not None and stream.untimed

    def typed(self, rec: Records, idx: np.ndarray, raw: pl.DataFrame, route: Route, dataset: str | None = None,
              ) -> ParseResult:
        return self._typed(rec, idx, raw, route, dataset)

    def _typed(self, rec: Records, idx: np.ndarray, raw: pl.DataFrame, route: Route, dataset: str | None,
               ) -> ParseResult:
        """One route's frame, with the columns of its own stream; rejected records to dead letters."""
        dataset = str(route.constants.get("event.dataset", dataset or self.dataset))
        kinds = getattr(route, "extra_types", None) or self.extra_types.get(route.name, {})
        missing = None
        ts = raw.get_column(RAW + "ts") if RAW + "ts" in raw.columns else None
        if (ts is None or ts.null_count()) and self.untimed(route):  # no time of their own: the file's, said so
            when, what = self.file_time()
            missing = ts.is_null() if ts is not None else pl.Series([True] * raw.height)
            text = f"{when.timestamp():.6f}"
            fill = {RAW + "ts": pl.when(missing).then(pl.lit(text)).otherwise(pl.col(RAW + "ts")) if ts is not None
                    else pl.lit(text)}
            if FAST_EPOCH + RAW + "ts" in raw.columns:
                fill[FAST_EPOCH + RAW + "ts"] = pl.when(missing).then(pl.lit(when).cast(T.UTC)) \
                    .otherwise(pl.col(FAST_EPOCH + RAW + "ts"))
            raw = raw.with_columns(**fill)
            source = pl.when(missing).then(pl.lit(what)).otherwise(pl.lit("ts")).alias(TIME_FROM)
            missing = pl.select(source).to_series()
        typed, reason = apply(raw, list(route.rules), self.ctx, {**route.constants, "event.dataset": dataset})
        zone = self.ctx.zone
        typed = typed.with_columns([typed_extra(c, k, zone) for c, k in kinds.items()
                                    if k in ("bool", "time") and c in typed.columns])
        typed = typed.with_columns(missing if missing is not None else pl.lit("ts").alias(TIME_FROM))
        origin = {
            "log.file.path": pl.Series("log.file.path", [self.ctx.path], pl.Categorical).new_from_index(0, idx.size),
            "log.offset": pl.Series("log.offset", rec.offsets[idx]),
            "log.line": pl.Series("log.line", rec.lines[idx]),
        }
        core = family_columns(route.family)
        extra = {r.target: r.dtype for r in route.rules if r.target not in core and r.target not in kinds
                 and not r.target.startswith(RAW)}
        extra.update({t: typed.schema[t] for t in route.constants if t not in core and t in typed.columns})
        extra.update({c: extra_dtype(k) for c, k in kinds.items()})
        extra[TIME_FROM] = pl.Categorical
        frame = conform(typed.with_columns(**origin), route.family, extra)
        key = (route.family, dataset)
        bad = reason.is_not_null()
        if not bad.any():
            return ParseResult({key: frame}, empty_dead(), 0)
        dead = rec.dead(self.ctx.path, idx[bad.to_numpy()], reason.filter(bad).alias("error.message"))
        return ParseResult({key: frame.filter(~bad)}, dead, 0)


@dataclasses.dataclass(frozen=True)
class BlockRoute(Route):
    """A route with the fields of its stream kept under their Zeek names (TSV: of one header block; JSON: a
    stream read by the second pass), ``extra_types`` column -> Zeek type."""

    extra_types: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "extra_types", dict(self.extra_types))


class ZeekEngine(ZeekRoutes, RoutedEngine):
    def __init__(self, spec, ctx):
        self.ctx = ctx
        spec = self._setup(spec, static=False)
        super().__init__(spec, ctx)
        self.sep = b"\t"
        self.fields: list[str] | None = None
        self.types: list[str] = []
        self.path = ""
        self.opened: datetime | None = None
        self.set_sep = ","
        self.headers = 0
        self.block_routes: dict[tuple, BlockRoute] = {}
        self.when = list(dict.fromkeys(f for r in self.routes for f in r.fields()))

    def parse(self, batch: LineBatch) -> ParseResult:
        self.headers = 0
        res = by_directives(batch, self._directive, self._segment)
        res.lines -= self.headers  # header lines are not records
        return res

    def untimed(self, route: Route) -> bool:
        return "ts" not in (self.fields or ()) or super().untimed(route)

    def file_time(self) -> tuple[datetime, str]:
        if self.opened is not None:
            return self.opened, "#open"
        return super().file_time()

    def _directive(self, line: bytes) -> None:
        self.headers += 1
        if line.startswith(b"#separator "):
            value = codecs.decode(line[len(b"#separator "):].strip().decode("ascii", "replace"), "unicode_escape")
            self.sep = value.encode("latin-1", "replace")[:1] or b"\t"
            return
        name, _, value = line[1:].partition(self.sep)
        text = value.decode("utf-8", "replace")
        if name == b"fields":  # a scope written "id_orig_h" (Log::default_scope_sep = "_") read as "id.orig_h"
            self.fields = [undotted().get(f, f) for f in text.split(self.sep.decode("latin-1"))]
            self.types = []
        elif name == b"set_separator":  # elements of sets and vectors: joined by "," here whatever it is
            self.set_sep = codecs.decode(text, "unicode_escape") or ","
        elif name == b"types":
            self.types = text.split(self.sep.decode("latin-1"))
        elif name == b"path":
            self.path = text.strip()
        elif name == b"open":
            try:  # the sensor's local time (Zeek's default): read in the configured zone
                self.opened = datetime.strptime(text.strip(), "%Y-%m-%d-%H-%M-%S").replace(
                    tzinfo=ZoneInfo(self.ctx.zone))
            except ValueError:
                self.opened = None

    def _block_route(self, route: Route, stream: str) -> Route:
        """``route`` with every field of the block (and of the stream in logs.yml) it does not map kept as
        ``zeek.<stream>.<field>``, typed by the block's ``#types`` (else logs.yml's, else text)."""
        key = (route.name, stream, tuple(self.fields or ()), tuple(self.types))
        if key not in self.block_routes:
            mapped = ({c.source for rule in route.rules for c in rule.chain} | set(COMMON)) - self.keep.get(route.name,
                                                                                                        set())
            known = streams().get(stream, Stream({}, ())).fields
            fields = self.fields or []
            types = dict(zip(fields, self.types, strict=True)) if len(self.types) == len(fields) else {}
            kinds = {f: types.get(f) or known.get(f, "string") for f in [*known, *(self.fields or ())]
                     if f not in mapped}  # logs.yml's fields too (null): the stream's columns as in JSON
            cols = {f"zeek.{stream}.{f}": extra_column(f, k) for f, k in kinds.items() if f in fields}
            rules = tuple(rules_from_spec(cols, spec_nulls(self.spec)))  # logs.yml's others: null columns
            self.block_routes[key] = BlockRoute(route.name, route.family, route.when, route.rules + rules,
                                                route.constants,
                                                tuple((f"zeek.{stream}.{f}", k) for f, k in kinds.items()))
        return self.block_routes[key]

    def _segment(self, batch: LineBatch) -> ParseResult:
        if not self.fields:
            return ParseResult({}, batch.dead(np.ones(batch.n, bool), "no #fields header before this line"), batch.n)
        names = self.fields
        k = len(names)
        fs, fe, count = tsv_kernel.split_on(batch.buf, batch.starts, batch.ends, k, self.sep[0])
        bad = count != k
        parts = []
        if bad.any():
            why = pl.select(pl.format("{} fields where #fields names {}", pl.Series(count[bad]), pl.lit(k))).to_series()
            reasons = pl.Series("reason", [None] * batch.n, pl.String).scatter(np.flatnonzero(bad), why)
            parts.append(ParseResult({}, batch.dead(bad, reasons), 0))
        idx = np.flatnonzero(~bad)
        if idx.size:
            index = {name: i for i, name in enumerate(names)}
            rec = Records(batch.buf, batch.raw, batch.starts, batch.ends, batch.starts + batch.chunk.offset,
                          batch.index + batch.chunk.first_line)
            which = None
            named = self.path or self.file_stream
            if named:  # the block's stream names its route: no field to look at
                which = np.full(idx.size, next((i for i, r in enumerate(self.routes[:-1]) if r.name == named),
                                               len(self.routes) - 1))
            elif len(self.routes) > 1:
                when = self._fields(batch, fs, fe, index, self.when, idx)
                which = pl.DataFrame(when).select(self.which).to_series().to_numpy()
            for i, route in enumerate(self.routes):
                sel = idx if which is None else idx[which == i]
                if sel.size:  # only the columns the route reads, only at its lines
                    stream = self.path or self.file_stream or str(route.constants.get("event.dataset", "zeek."))[5:]
                    dataset = f"zeek.{stream}" if stream else self.dataset
                    block = self._block_route(route, stream or "zeek")
                    raw = pl.DataFrame(self._fields(batch, fs, fe, index, block.sources(), sel), height=sel.size)
                    parts.append(self.typed(rec, sel, raw, block, dataset))
        res = merge(batch.n, parts, how="diagonal_relaxed")
        if len(parts) > 1:
            res.frames = {key: f.sort("log.offset") for key, f in res.frames.items()}
            res.dead = res.dead.sort("log.offset")
        return res

    def _fields(self, batch: LineBatch, fs: np.ndarray, fe: np.ndarray, index: dict[str, int], fields: list[str],
                lines: np.ndarray) -> dict[str, pl.Series]:
        """Raw columns of ``fields`` at ``lines`` (views into the chunk, Zeek's escapes decoded; ``_path`` the
        block's, absent ones null)."""
        have = [f for f in fields if f in index]
        cols = batch.columns([RAW + f for f in have], fs, fe, np.array([index[f] for f in have], np.int64), lines)
        if self.set_sep != "," and len(self.types) == len(self.fields or ()):
            sets = {RAW + f for f, k in zip(self.fields or (), self.types, strict=True)
                    if k.startswith(("set", "vector"))}
            cols = {n: c.str.replace_all(self.set_sep, ",", literal=True) if n in sets else c for n, c in cols.items()}
        if lines.size and tsv_kernel.has_byte(batch.buf, batch.starts[lines[0]], batch.ends[lines[-1]], BACKSLASH):
            cols = {name: unescape(s) for name, s in cols.items()}  # only a block with a backslash somewhere
        for f in fields:
            if f == "_path":
                cols[RAW + f] = pl.Series(RAW + f, [self.path or None], pl.String).new_from_index(0, lines.size)
            elif f not in index:
                cols[RAW + f] = nulls(RAW + f, pl.String, lines.size)
        return cols


class ZeekJsonEngine(ZeekRoutes, JsonEngine):
    """Zeek JSON through the ``json`` engine's reader, with the routes and columns of ``ZeekRoutes``. The
    records of the catch-all route are grouped by stream (``_path``, else the file's name, else logs.yml's
    ``sign`` fields) and each group's own fields read by a second pass of the extractor over its records,
    with a table of that stream's fields only (sets and vectors as lists, the rest as text: numbers and
    booleans as written). A value the extractor leaves to the slower reader (of another JSON type than
    logs.yml says, a key written with escapes) is null there."""

    def __init__(self, spec, ctx):
        self.ctx = ctx
        spec = self._setup(spec, static=True)
        lists = {f for name in FIRST_PASS for f, k in streams()[name].fields.items()
                 if k.startswith(("set[", "vector["))}
        types = {**{f: "list" for f in lists}, **(spec.options.get("types") or {})}
        spec = dataclasses.replace(spec, options={**spec.options, "types": types})
        super().__init__(spec, ctx)
        self.stream_routes: dict[str, BlockRoute] = {}
        self.tables: dict[tuple, K.PathTable] = {}

    def typed(self, rec: Records, idx: np.ndarray, raw: pl.DataFrame, route: Route, dataset: str | None = None,
              ) -> ParseResult:
        if route is not self.routes[-1]:
            if route.name in self.extra_types or route.name not in streams():
                return self._typed(rec, idx, raw, route, dataset)
            return self._second_pass(rec, idx, raw, route, route.name)  # a stream the file is not named by
        paths = raw.get_column(RAW + "_path")
        if self.file_stream:
            paths = paths.fill_null(self.file_stream)
        if paths.null_count():
            paths = self._signed(rec, idx, paths)
        parts = []
        for value in paths.unique(maintain_order=True).to_list():
            keep = (paths == value).fill_null(False) if value is not None else paths.is_null()
            sel, sub = idx[keep.to_numpy()], raw.filter(keep)
            if value in streams():
                parts.append(self._second_pass(rec, sel, sub, route, value))
            else:
                parts.append(self._typed(rec, sel, sub, route, f"zeek.{value}" if value else self.dataset))
        return merge(0, parts, how="diagonal_relaxed")

    def _second_pass(self, rec: Records, idx: np.ndarray, raw: pl.DataFrame, route: Route, name: str,
                     ) -> ParseResult:
        """The records at ``idx`` of stream ``name`` with their own fields read by a second pass."""
        block = self._stream_route(route, name)
        found = self._spans(rec, idx, {f: k for f, k in streams()[name].fields.items()
                                       if f"zeek.{name}.{f}" in block.extra_types
                                       and RAW + f not in raw.columns})  # a route's kept fields: read already
        return self._typed(rec, idx, raw.hstack(list(found.values())), block, None)

    def _stream_route(self, route: Route, name: str) -> BlockRoute:
        """The catch-all ``route`` for the records of stream ``name``: its fields kept, its dataset."""
        if name not in self.stream_routes:
            mapped = ({c.source for rule in route.rules for c in rule.chain} | set(COMMON)) - self.keep.get(route.name,
                                                                                                        set())
            kinds = {f: k for f, k in streams()[name].fields.items() if f not in mapped}
            cols = {f"zeek.{name}.{f}": extra_column(f, k) for f, k in kinds.items()}
            rules = tuple(rules_from_spec(cols, spec_nulls(self.spec)))
            constants = {**route.constants, "event.dataset": f"zeek.{name}"}
            self.stream_routes[name] = BlockRoute(name, route.family, (), route.rules + rules, constants,
                                                  tuple((f"zeek.{name}.{f}", k) for f, k in kinds.items()))
        return self.stream_routes[name]

    def _spans(self, rec: Records, sel: np.ndarray, fields: dict[str, str]) -> dict[str, pl.Series]:
        """Raw text columns of ``fields`` (name -> Zeek type) of the records at ``sel``, by a pass of the
        extractor with a table of these fields only."""
        if not fields:
            return {}
        aliases = {f.replace(".", "_"): f for f in fields if "." in f}  # Log::default_scope_sep = "_"
        read = {**fields, **{a: fields[f] for a, f in aliases.items() if a not in fields}}
        key = tuple(read.items())
        if key not in self.tables:
            kinds = [K.T_LIST if k.startswith(("set[", "vector[")) else K.T_STRING for k in read.values()]
            self.tables[key] = K.PathTable([[f] for f in read], kinds, [""] * len(read))
        found = K.extract_typed(rec.buf, rec.starts[sel], rec.ends[sel], self.tables[key].arrays(), K.NO_FIELDS,
                                K.NO_OPS, np.zeros(1, np.int64), K.NO_FIELDS)
        _, _, _, in_aux, fs, fe, aux = found[:7]
        columns = Columns(rec.buf, aux if in_aux.any() else None, fs, fe, {f: i for i, f in enumerate(read)})
        cols = columns.get([RAW + f for f in read], np.arange(sel.size))
        for alias, f in aliases.items():
            if alias not in fields:
                cols[RAW + f] = cols[RAW + f].fill_null(cols.pop(RAW + alias)).alias(RAW + f)
        return cols

    def _signed(self, rec: Records, idx: np.ndarray, paths: pl.Series) -> pl.Series:
        """``paths`` with the stream of each record that names none told by logs.yml's ``sign`` fields."""
        none = paths.is_null().to_numpy()
        known = {n: s for n, s in streams().items() if s.sign}
        lists = {f for s in streams().values() for f, k in s.fields.items() if k.startswith(("set[", "vector["))}
        fields = {f: ("vector[string]" if f in lists else "string")
                  for s in known.values() for alt in s.sign for f in alt}
        cols = self._spans(rec, idx[none], fields)
        out = None
        for name, stream in known.items():
            cond = pl.any_horizontal([pl.all_horizontal([pl.col(RAW + f).is_not_null() for f in alt])
                                      for alt in stream.sign])
            out = pl.when(cond).then(pl.lit(name)) if out is None else out.when(cond).then(pl.lit(name))
        named = pl.DataFrame(cols, height=int(none.sum())).select(out.otherwise(None).alias("s")).to_series()
        return paths.scatter(np.flatnonzero(none), named)
