"""Engine for JSON records (Suricata EVE, Zeek JSON): NDJSON lines, or the elements of a JSON array.

Every record is checked by a Numba kernel (``json_kernel.validate``); invalid ones are dead-lettered
with the reason and the byte where the check stopped, so no line's syntax can fail the chunk. The valid
ones are decoded at once with an explicit schema of only the fields the spec reads: Arrow's reader
when every record has the schema's JSON types, else Polars' (slower, it makes a value of another type
null and keeps the record). Every field then becomes a string column (numbers and booleans as their
text, lists joined by ``,``) that the column rules type, as in the other engines.

The input is NDJSON unless its first non-blank byte is ``[``: then it is a JSON array (as exported by
tools, pretty-printed or on one line) and its elements are the records, found by bracket matching that
carries an element cut by a chunk end over to the next chunk. ``log.line`` and ``log.offset`` of an
array element point at its ``{``; lines read still count physical lines, and a bad element is one dead
letter however many lines it spans. Options (spec ``json:``):

``flat``
    field names are keys as written (Zeek's ``id.orig_h``); by default a dot goes one object deeper
    (Suricata's ``alert.signature`` is ``{"alert": {"signature": ...}}``).
``types``
    the JSON type of a field (``string``, ``int64``, ``float64``, ``bool``, ``list`` of strings, or
    ``list:KEY`` for a list of objects, KEY read of each) where its column's type does not tell it
    (``rule.id`` is text, Suricata writes ``alert.signature_id`` as a number). Fields read by integer or
    float columns are numbers by default. A value of another JSON type than its field's is null (a
    port written as ``"443"`` where numbers are expected), and its chunk takes the slower reader.
``routes``
    as for the ``kv`` engine (``soc.parse.routes``); in ``when``, the value ``"*"`` matches any value
    that is present (a route for the records that have a field). A route's constant ``event.dataset``
    names its dataset (``zeek.conn``).
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.json as pj

from soc.parse import json_kernel as K
from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import INTEGER_TYPES, RAW, SpecError
from soc.parse.engines.base import merge
from soc.parse.engines.routed import Records, RoutedEngine

MAX_RECORD = 64 << 20  # an array element still open after this many bytes is dead-lettered
BLOCK = 1 << 20  # bytes per block of Arrow's JSON reader (blocks are decoded in parallel)


LEAF_TYPES = {"string": pl.String, "int64": pl.Int64, "float64": pl.Float64, "bool": pl.Boolean,
              "list": pl.List(pl.String)}


def leaf_type(name: str, hint: str | None, rules) -> pl.DataType:
    """The JSON type a field is read as: the spec's ``types`` hint, else what its rules convert it to
    (integers and floats as numbers), else a string. ``list:KEY`` is a list of objects, KEY read of each."""
    if hint is None:
        kinds = {r.type for rule in rules for r in rule.chain if r.source == name}
        hint = "int64" if kinds and all(k in INTEGER_TYPES for k in kinds) else \
            "float64" if kinds and kinds <= {"float64", "epoch_float"} else "string"
    if hint.startswith("list:"):
        return pl.List(pl.Struct({hint[5:]: pl.String}))
    if hint not in LEAF_TYPES:
        raise SpecError(f"field {name!r}: unknown JSON type {hint!r} (known: {', '.join(LEAF_TYPES)}, list:KEY)")
    return LEAF_TYPES[hint]


def json_schema(leaves: dict[str, pl.DataType], flat: bool) -> dict[str, pl.DataType]:
    """The readers' schema of the fields ``leaves``, nested by dots unless ``flat``."""
    if flat:
        return dict(leaves)
    tree: dict = {}
    for name, kind in leaves.items():
        node = tree
        *parents, leaf = name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise SpecError(f"field {name!r}: {p!r} is read both as a value and as an object")
        if isinstance(node.get(leaf), dict):
            raise SpecError(f"field {name!r} is read both as a value and as an object")
        node[leaf] = kind

    def dtype(node):
        return node if not isinstance(node, dict) else pl.Struct({k: dtype(v) for k, v in node.items()})

    return {k: dtype(v) for k, v in tree.items()}


def _arrow_type(dtype: pl.DataType) -> pa.DataType:
    if isinstance(dtype, pl.Struct):
        return pa.struct([(f.name, _arrow_type(f.dtype)) for f in dtype.fields])
    if isinstance(dtype, pl.List):
        return pa.list_(_arrow_type(dtype.inner))
    return {pl.String: pa.string(), pl.Int64: pa.int64(), pl.Float64: pa.float64(), pl.Boolean: pa.bool_()}[dtype]


def _field(name: str, kind: pl.DataType, flat: bool) -> pl.Expr:
    """The raw string column of field ``name`` read as ``kind`` (numbers as their text, lists joined by ",")."""
    if flat:
        expr = pl.col(name)
    else:
        first, *rest = name.split(".")
        expr = pl.col(first)
        for part in rest:
            expr = expr.struct.field(part)
    if isinstance(kind, pl.List):
        inner = kind.inner
        if isinstance(inner, pl.Struct):
            expr = expr.list.eval(pl.element().struct.field(inner.fields[0].name))
        expr = expr.list.join(",")
    elif kind != pl.String:
        expr = expr.cast(pl.String)
    return expr.alias(RAW + name)


class JsonEngine(RoutedEngine):
    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        self.flat = bool(spec.options.get("flat", False))
        hints = spec.options.get("types") or {}
        rules = [rule for route in self.routes for rule in route.rules]
        try:
            leaves = {f: leaf_type(f, hints.get(f), rules) for f in self.route_fields()}
            self.schema = json_schema(leaves, self.flat)
        except SpecError as exc:
            raise SpecError(f"{spec.path}: {exc}") from None
        self.arrow = pj.ParseOptions(explicit_schema=pa.schema([(k, _arrow_type(v)) for k, v in self.schema.items()]),
                                     unexpected_field_behavior="ignore")
        self.leaves = [_field(f, kind, self.flat) for f, kind in leaves.items()]
        self.array: bool | None = None  # known at the first non-blank byte
        self.phase = 0
        self.carry: tuple[np.ndarray, np.ndarray, int, int] | None = None  # buf, raw, offset, line

    def parse(self, batch: LineBatch) -> ParseResult:
        if self.array is None:
            text = batch.buf[np.isin(batch.buf, (K.SP, K.TAB, K.NL, K.CR), invert=True)][:1]
            if text.size == 0:
                return ParseResult({}, empty_dead(), batch.n)
            self.array = bool(text[0] == K.LBRACKET)
        records, parts = self._array_records(batch) if self.array else (self._line_records(batch), [])
        return merge(batch.n, [*parts, self._decode(records)])

    def _line_records(self, batch: LineBatch) -> Records:
        rec = Records(batch.buf, batch.raw, batch.starts, batch.ends, batch.starts + batch.chunk.offset,
                      batch.index + batch.chunk.first_line)
        rec.lines_of_batch = True  # the spans are all the lines of the buffer: it is NDJSON as it is
        return rec

    def _array_records(self, batch: LineBatch) -> tuple[Records, list[ParseResult]]:
        buf, raw, offset, line = batch.buf, batch.raw, batch.chunk.offset, batch.chunk.first_line
        if self.carry is not None:
            cbuf, craw, offset, line = self.carry
            buf, raw = np.concatenate([cbuf, buf]), np.concatenate([craw, raw])
        capacity = int(np.count_nonzero(buf == K.LBRACE) + np.count_nonzero(buf == K.NL) + 1)
        s, e, kinds, self.phase, resume = K.scan_array(buf, 0, self.phase, capacity)
        newlines = np.flatnonzero(buf == K.NL)
        records = Records(buf, raw, s, e, s + offset, np.searchsorted(newlines, s) + line)
        parts = []
        self.carry = None
        if resume >= 0:
            at = (resume + offset, int(np.searchsorted(newlines, resume)) + line)
            if buf.size - resume > MAX_RECORD:
                cut = Records(buf, raw, np.array([resume]), np.array([resume + (1 << 20)]), np.array([at[0]]),
                              np.array([at[1]]))
                why = pl.Series([f"JSON array element longer than {MAX_RECORD} bytes (first 1 MB kept)"])
                parts.append(ParseResult({}, cut.dead(self.ctx.path, np.zeros(1, np.int64), why), 0))
                self.array = False  # what follows is read as lines
            else:
                self.carry = (buf[resume:].copy(), raw[resume:].copy(), *at)
        junk = kinds != K.RECORD
        if junk.any():
            idx = np.flatnonzero(junk)
            why = pl.Series(np.where(kinds[idx] == K.AFTER, "text after the end of the JSON array",
                                     "not a JSON object in the array"))
            parts.append(ParseResult({}, records.dead(self.ctx.path, idx, why), 0))
            keep = np.flatnonzero(~junk)
            records = Records(buf, raw, s[keep], e[keep], records.offsets[keep], records.lines[keep])
        return records, parts

    def _decode(self, rec: Records) -> ParseResult:
        code, pos = K.validate(rec.buf, rec.starts, rec.ends)
        parts: list[ParseResult] = []
        bad = code > K.BLANK
        if bad.any():
            idx = np.flatnonzero(bad)
            msg = pl.Series(code[idx]).replace_strict(K.ERRORS, return_dtype=pl.String)
            why = pl.select(pl.format("{} at byte {}", msg, pl.Series(pos[idx]))).to_series()
            parts.append(ParseResult({}, rec.dead(self.ctx.path, idx, why), 0))
        good = np.flatnonzero(code == K.OK)
        if good.size:
            table, good, dead = self._read(rec, good)
            parts.extend(dead)
            if good.size:
                parts.extend(self.route(rec, good, table))
        res = merge(0, parts)
        if len(parts) > 1:
            res.frames = {k: f.sort("log.offset") for k, f in res.frames.items()}
            res.dead = _one_per_line(res.dead.sort("log.offset"))
        return res

    def _read(self, rec: Records, idx: np.ndarray) -> tuple[pl.DataFrame, np.ndarray, list[ParseResult]]:
        """The records at ``idx`` decoded; a record the reader rejects after all is isolated by bisection."""
        try:
            return self._decode_spans(rec, idx), idx, []
        except pl.exceptions.PolarsError as exc:
            if idx.size == 1:
                why = pl.Series([f"invalid JSON ({str(exc).splitlines()[0][:200]})"])
                return pl.DataFrame(), idx[:0], [ParseResult({}, rec.dead(self.ctx.path, idx, why), 0)]
        half = idx.size // 2
        a, ia, da = self._read(rec, idx[:half])
        b, ib, db = self._read(rec, idx[half:])
        tables = [t for t, i in ((a, ia), (b, ib)) if i.size]
        return (pl.concat(tables) if tables else pl.DataFrame()), np.concatenate([ia, ib]), da + db

    def _decode_spans(self, rec: Records, idx: np.ndarray) -> pl.DataFrame:
        """Arrow's reader (multi-threaded, ~10x Polars' here) when every record has the schema's JSON types;
        else Polars' reader, which makes a value of another type null (the record is kept)."""
        whole = rec.lines_of_batch and idx.size == rec.starts.size
        data = rec.buf if whole else K.compact(rec.buf, rec.starts[idx], rec.ends[idx])
        table = None
        if data.size < 1 << 30:
            try:
                table = pl.from_arrow(pj.read_json(pa.BufferReader(pa.py_buffer(data)), parse_options=self.arrow,
                                                   read_options=pj.ReadOptions(block_size=BLOCK)))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                table = None
        if table is None or table.height != idx.size:
            table = pl.read_ndjson(io.BytesIO(data.tobytes()), schema=self.schema, ignore_errors=True)
        if table.height != idx.size:
            raise pl.exceptions.ComputeError(f"{table.height} records decoded from {idx.size}")
        return table.select(self.leaves)


def _one_per_line(dead: pl.DataFrame) -> pl.DataFrame:
    """One dead letter per line: bad array elements sharing a line are reported as the first of them."""
    if dead.height < 2 or dead["log.line"].is_unique().all():
        return dead
    return dead.unique("log.line", keep="first", maintain_order=True)
