"""Engine for JSON records (Suricata EVE, Zeek JSON): NDJSON lines, or the elements of a JSON array.

One Numba pass per record (``json_kernel.extract``) checks its syntax strictly and finds the values of the
fields the spec reads (a table of their key paths, as ``kv_kernel`` finds keys); invalid records are
dead-lettered with the reason and the byte where the check stopped. The fields become string columns,
views into the chunk (numbers and booleans as written, lists joined by ``,``, escaped strings decoded
aside), routed and typed by the column rules as in the other engines. Timestamps (the layout of the
first format, when it has a zone) and integers are typed by the extractor itself while the record's bytes
are in the cache, once for all routes; the rules take those values (``columns.FAST``/``FAST_INT``) and fall
back to their own conversion for a route where a timestamp did not parse, so the results are the same.
The routes of a chunk are typed in two threads (the kernels and Polars release the GIL), and the pipeline
extracts the next chunk of NDJSON meanwhile (``prepare``: +15-20% here, bench/RESULTS.md). A record the
kernel cannot read as the spec's types (a value of another JSON type than its field's, a number too long
for an int64, a wanted key written with escapes) is decoded by a JSON reader with an explicit schema
instead (Arrow's, else Polars', which makes a value of another type null and keeps the record), and
routed apart from the others (then sorted in by offset), as all records were before; the
two agree on everything else (tests/test_suricata.py compares them). Of a key written twice in an object,
the first occurrence wins, as in Polars' reader (Arrow's rejects such a record). A number read where the
spec wants text keeps its text as written (the readers rewrote it: ``1.50`` became ``1.5``).

The input is NDJSON unless its first non-blank byte is ``[``: then it is a JSON array (as exported by
tools, pretty-printed or on one line) and its elements are the records, found by bracket matching that
carries an element cut by a chunk end over to the next chunk; an element still open at the end of the
input is dead-lettered (``finish``). ``log.line`` and ``log.offset`` of an array element point at its
``{``. Lines read count physical lines, and a bad element is one dead letter however many lines it spans;
every bad element is its own dead letter, and a line holding several counts once per dead letter, so that
read = parsed + dead-lettered holds. Options (spec ``json:``):

``flat``
    field names are keys as written (Zeek's ``id.orig_h``); by default a dot goes one object deeper
    (Suricata's ``alert.signature`` is ``{"alert": {"signature": ...}}``).
``types``
    the JSON type of a field (``string``, ``int64``, ``float64``, ``bool``, ``list`` of strings, or
    ``list:KEY`` for a list of objects, KEY read of each) where its column's type does not tell it
    (``rule.id`` is text, Suricata writes ``alert.signature_id`` as a number). Fields read by integer or
    float columns are numbers by default. A value of another JSON type than its field's is null (a
    port written as ``"443"`` where numbers are expected), and its record takes the slower reader.
``routes``
    as for the ``kv`` engine (``soc.parse.routes``); in ``when``, the value ``"*"`` matches any value
    that is present (a route for the records that have a field). A route's constant ``event.dataset``
    names its dataset (``zeek.conn``).
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.json as pj

from soc.parse import json_kernel as K
from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import FAST, FAST_EPOCH, FAST_FLOAT, FAST_INT, INTEGER_TYPES, RAW, SpecError
from soc.parse.engines.base import merge
from soc.parse.engines.routed import Records, RoutedEngine
from soc.parse.fasttime import DECIMAL, EPOCH, compile_layout, epoch_layout
from soc.parse.threads import kernels_thread_safe

PARALLEL_RECORDS = 4096  # records of a chunk from which its routes are typed in two threads
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
        self.names = [RAW + f for f in leaves]
        self.index = {f: i for i, f in enumerate(leaves)}
        self.table = K.PathTable([[f] if self.flat else f.split(".") for f in leaves],
                                 [_kernel_type(kind) for kind in leaves.values()],
                                 [_list_key(kind) for kind in leaves.values()])
        self.when = list(dict.fromkeys(f for r in self.routes for f in r.fields()))
        stamps, self.ints = _typed_ahead(rules, leaves)
        self.stamps = list(stamps)
        self.epochs = frozenset(f for f, ops in stamps.items() if ops[0] == EPOCH)
        self.decimals = frozenset(f for f, ops in stamps.items() if ops[0] == DECIMAL)
        layouts = list(stamps.values())
        self.typing = (np.array([self.index[f] for f in stamps], np.int64),
                       np.concatenate(layouts) if layouts else np.zeros(0, np.int32),
                       np.cumsum([0, *(len(x) for x in layouts)]).astype(np.int64),
                       np.array([self.index[f] for f in self.ints], np.int64))
        self.array: bool | None = None  # known at the first non-blank byte
        self.phase = 0
        self.carry: tuple[np.ndarray, np.ndarray, int, int] | None = None  # buf, raw, offset, line
        self.last_dead_line = -1  # of the previous chunk's last dead letter (array elements sharing a line)

    def prepare(self, batch: LineBatch) -> None:
        """NDJSON: its records are its lines, so they are extracted ahead. Whether the input is NDJSON is
        settled here by its first non-blank chunk, before ``parse`` sees that chunk (``parse`` settles it
        itself only where nothing prepares, and never on a chunk that prepare has settled)."""
        if self.array is None:
            self.array = _array(batch)
        if self.array is False:
            batch.extracted = K.extract_typed(batch.buf, batch.starts, batch.ends, self.table.arrays(), *self.typing)

    def parse(self, batch: LineBatch) -> ParseResult:
        if self.array is None:
            self.array = _array(batch)
            if self.array is None:
                return ParseResult({}, empty_dead(), batch.n)
        if not self.array:
            return merge(batch.n, [self._decode(self._line_records(batch))])
        records, parts = self._array_records(batch)
        res = merge(batch.n, [*parts, self._decode(records)])
        if len(parts) and res.dead.height > 1:
            res.dead = res.dead.sort("log.offset")
        return self._count_shared_lines(res)

    def _count_shared_lines(self, res: ParseResult) -> ParseResult:
        """Every bad array element is its own dead letter; a line holding several counts once per dead letter
        (so read = parsed + dead-lettered still holds in lines)."""
        if res.dead.height:
            lines = res.dead["log.line"]
            res.lines += res.dead.height - lines.n_unique() + int(lines[0] == self.last_dead_line)
            self.last_dead_line = int(lines[-1])
        return res

    def finish(self) -> ParseResult | None:
        """At the end of the input: an array element still open is dead-lettered (its lines were counted;
        its first MB is kept)."""
        if self.carry is None:
            return None
        buf, raw, offset, line = self.carry
        self.carry = None
        rec = Records(buf, raw, np.zeros(1, np.int64), np.array([min(buf.size, 1 << 20)]), np.array([offset]),
                      np.array([line]))
        why = pl.Series(["truncated: input ends inside a JSON array element"])
        return self._count_shared_lines(ParseResult({}, rec.dead(self.ctx.path, np.zeros(1, np.int64), why), 0))

    def _line_records(self, batch: LineBatch) -> Records:
        rec = Records(batch.buf, batch.raw, batch.starts, batch.ends, batch.starts + batch.chunk.offset,
                      batch.index + batch.chunk.first_line)
        rec.lines_of_batch = True  # the spans are all the lines of the buffer: it is NDJSON as it is
        rec.extracted = getattr(batch, "extracted", None)
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
        found = rec.extracted
        if found is None:
            found = K.extract_typed(rec.buf, rec.starts, rec.ends, self.table.arrays(), *self.typing)
        code, pos, slow, in_aux, fs, fe, aux, us, ok, ints, has = found
        parts: list[ParseResult] = []
        bad = code > K.BLANK
        if bad.any():
            idx = np.flatnonzero(bad)
            msg = pl.Series(code[idx]).replace_strict(K.ERRORS, return_dtype=pl.String)
            why = pl.select(pl.format("{} at byte {}", msg, pl.Series(pos[idx]))).to_series()
            parts.append(ParseResult({}, rec.dead(self.ctx.path, idx, why), 0))
        good = code == K.OK
        fast = np.flatnonzero(good & ~slow)
        columns = Columns(rec.buf, aux if in_aux.any() else None, fs, fe, self.index)
        columns.stamps, columns.ints = ({f: (us[k], ok[k]) for k, f in enumerate(self.stamps)},
                                        {f: (ints[k], has[k]) for k, f in enumerate(self.ints)})
        columns.epochs, columns.decimals = self.epochs, self.decimals
        if fast.size:
            parts.extend(self._route_fast(rec, fast, columns))
        if slow.any() and good.any():  # decoded by a JSON reader, routed on their own (then sorted in)
            table, idx, dead = self._read(rec, np.flatnonzero(good & slow))
            parts.extend(dead)
            if idx.size:
                parts.extend(self.route(rec, idx, table))
        res = merge(0, parts)
        if len(parts) > 1:
            if res.dead.height > 1:
                res.dead = res.dead.sort("log.offset")
            families = [key for p in parts for key in p.frames]
            res.frames = {k: f.sort("log.offset") if families.count(k) > 1 else f for k, f in res.frames.items()}
        return res

    def _route_fast(self, rec: Records, idx: np.ndarray, columns: Columns) -> list[ParseResult]:
        """Records whose fields the kernel found: each route's raw columns built for its own records only,
        with the timestamps and integers the kernels typed once for all routes."""
        which = None
        if len(self.routes) > 1:
            when = pl.DataFrame(columns.get([RAW + f for f in self.when], idx), height=idx.size)
            which = when.select(self.which).to_series().to_numpy()

        def one(i: int) -> ParseResult | None:
            route = self.routes[i]
            sel = idx if which is None else idx[which == i]
            if not sel.size:
                return None
            raw = columns.get([RAW + f for f in route.sources()], sel)
            raw.update(columns.typed(route.sources(), sel))
            return self.typed(rec, sel, pl.DataFrame(raw, height=sel.size), route)

        jobs = range(len(self.routes))
        threads = len(self.routes) > 1 and idx.size >= PARALLEL_RECORDS and kernels_thread_safe()
        done = _pool().map(one, jobs) if threads else map(one, jobs)
        return [p for p in done if p is not None]

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
        # through Arrow's large strings: one data buffer per column, which ``fasttime`` parses (a column of
        # several buffers went to Polars' strptime, whose %z does not take "Z")
        return pl.from_arrow(table.select(self.leaves).rechunk().to_arrow())


class Columns:
    """String columns of the fields ``json_kernel.extract`` found: views into the records' buffer, or for a
    column with a value in its ``aux`` buffer (a decoded string, a joined list) a copy of its values."""

    def __init__(self, buf: np.ndarray, aux: np.ndarray | None, fs: np.ndarray, fe: np.ndarray,
                 index: dict[str, int]):
        self.buf, self.fs, self.fe, self.index = buf, fs, fe, index
        self.aux = buf[:0] if aux is None else aux
        self.data = pa.py_buffer(buf)
        self.stamps: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # field -> microseconds, STAMP_* (extract_typed)
        self.ints: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # field -> int64 values, present
        self.epochs: frozenset[str] = frozenset()  # stamps fields read as decimal Unix seconds
        self.decimals: frozenset[str] = frozenset()  # stamps fields read as float64 numbers

    def get(self, names: list[str], rows: np.ndarray) -> dict[str, pl.Series]:
        """Columns ``names`` (``~`` + field) at ``rows``."""
        fields = np.array([self.index[n[len(RAW):]] for n in names], np.int64)
        out, valid, in_aux = K.views(self.buf, self.aux, self.fs, self.fe, fields, rows)
        cols = {}
        for j, name in enumerate(names):
            mask = None if valid[j].all() else pa.py_buffer(np.packbits(valid[j], bitorder="little"))
            if in_aux[j].any():
                offsets, data = K.packed(self.buf, self.aux, self.fs, self.fe, fields[j], rows)
                array = pa.Array.from_buffers(pa.large_string(), rows.size,
                                              [mask, pa.py_buffer(offsets), pa.py_buffer(data)])
            else:
                array = pa.Array.from_buffers(pa.string_view(), rows.size, [mask, pa.py_buffer(out[j]), self.data])
            cols[name] = pl.Series(name, array)
        return cols

    def typed(self, fields: list[str], rows: np.ndarray) -> dict[str, pl.Series]:
        """At ``rows``, the values ``extract_typed`` typed of ``fields``: ``FAST`` + raw columns of timestamp
        fields, ``FAST_EPOCH`` + raw of decimal Unix seconds and ``FAST_FLOAT`` + raw of numbers (each
        where every present value at ``rows`` parsed; the column rules parse the others), and
        ``FAST_INT`` + raw columns of integer fields."""
        out = {}
        for f in fields:
            if f in self.stamps:
                us, ok = self.stamps[f]
                ok = ok[rows]
                if (ok == K.STAMP_FAILED).any():
                    continue
                if f in self.decimals:
                    name = FAST_FLOAT + RAW + f
                    out[name] = _with_nulls(name, pa.float64(), us[rows].view(np.float64), ok == K.STAMP_PARSED)
                else:
                    name = (FAST_EPOCH if f in self.epochs else FAST) + RAW + f
                    out[name] = _with_nulls(name, pa.timestamp("us", "UTC"), us[rows], ok == K.STAMP_PARSED)
            elif f in self.ints:
                values, has = self.ints[f]
                name = FAST_INT + RAW + f
                out[name] = _with_nulls(name, pa.int64(), values[rows], has[rows])
        return out


def _with_nulls(name: str, kind: pa.DataType, values: np.ndarray, present: np.ndarray) -> pl.Series:
    """An Arrow-typed column of ``values``, null where the field is absent."""
    mask = None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))
    return pl.Series(name, pa.Array.from_buffers(kind, values.size, [mask, pa.py_buffer(values)]))


def _array(batch: LineBatch) -> bool | None:
    """Whether the input is a JSON array (its first non-blank byte is ``[``), or None if the batch is blank."""
    text = batch.buf[np.isin(batch.buf, (K.SP, K.TAB, K.NL, K.CR), invert=True)][:1]
    return None if text.size == 0 else bool(text[0] == K.LBRACKET)


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    """Threads that type the routes of a chunk side by side: the kernels release the GIL, and so do Polars'
    queries, so the routes of one chunk keep both cores busy (where Numba's threading layer allows it:
    ``soc.parse.threads``)."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="soc-json")


def _typed_ahead(rules, leaves: dict[str, pl.DataType]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Fields the kernels type once for all routes: timestamps (string fields whose fast rules all have the
    same formats, the first with a zone: the ``fasttime`` layout of that format; string fields an
    ``epoch_float`` rule reads as they are: decimal Unix seconds, Zeek's ``ts``; number fields a
    ``float64`` rule reads as they are), and integers (integer fields an integer rule reads as they are)."""
    chains = [r for rule in rules for r in rule.chain]
    stamps = {}
    for f, kind in leaves.items():
        if kind == pl.String and any(r.source == f and r.type == "epoch_float" and r.plain for r in chains):
            stamps[f] = epoch_layout()
            continue
        if kind == pl.Float64 and any(r.source == f and r.type == "float64" and r.plain for r in chains):
            stamps[f] = np.array([DECIMAL], np.int32)  # numbers: json_kernel._decimal
            continue
        formats = {r.formats for r in chains if r.source == f and r.fast}
        if kind == pl.String and len(formats) == 1:
            first = next(iter(formats))[:1]
            ops = compile_layout(first[0]) if first and "z" in first[0] else None
            if ops is not None:
                stamps[f] = ops
    ints = [f for f, kind in leaves.items()
            if kind == pl.Int64 and any(r.source == f and r.type in INTEGER_TYPES and r.plain for r in chains)]
    return stamps, ints


def _kernel_type(kind: pl.DataType) -> int:
    if isinstance(kind, pl.List):
        return K.T_LIST_KEY if isinstance(kind.inner, pl.Struct) else K.T_LIST
    return {pl.String: K.T_STRING, pl.Int64: K.T_INT, pl.Float64: K.T_FLOAT, pl.Boolean: K.T_BOOL}[kind]


def _list_key(kind: pl.DataType) -> str:
    return kind.inner.fields[0].name if isinstance(kind, pl.List) and isinstance(kind.inner, pl.Struct) else ""
