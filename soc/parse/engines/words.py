"""Engine for logs of whitespace-separated fields with ``"quoted"`` and ``[bracketed]`` ones.

Apache/nginx combined and common formats, and other positional formats. Options (spec ``words:``):
``fields`` (names, in order), ``min_fields``, ``brackets`` (treat ``[...]`` as one field) and
``request`` (the name of a field holding an HTTP request line, split into ``request.method``,
``request.target`` and ``request.protocol``, the target further into ``request.path`` and
``request.query``) and ``split`` (fields made of two parts, e.g. Squid's ``TCP_MISS/200``:
``{result: {sep: /, into: [squid.result, status]}}`` splits at the first ``sep``; a field without it is
all first part).

Real-world logs add to a positional format (a virtual host before the client, an X-Forwarded-For list, a
third quoted field, ``key="value"`` pairs or a request time after the last field). ``shape`` says how
fields must be delimited where the line is the plain format (``{time: '[', request: '"'}``: ``[``
bracketed, ``"`` quoted); a line the tokenizer rejects, or whose fields are not so delimited, is read by
the ``irregular`` regex instead (a Rust regex, linear time, named groups = raw fields, which may be more
than ``fields``: ``vhost``, ``tail``, ...; or a list of them, each taking the lines the ones before left).
Only those lines pay for the regexes; a line none matches keeps the tokenizer's reason. A field a regex
does not give is null at the lines it reads. ``address`` lists fields holding a network address (``ip``,
``ip:port``, ``[v6]:port``, a host name), each split into raw fields ``NAME:address``, ``NAME:ip``,
``NAME:port`` and ``NAME:domain`` (see ``soc.parse.address``). ``outcome`` names the HTTP status field whose ECS
``event.outcome`` is made as raw field ``NAME:outcome`` (see ``http_outcome``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.parse import kernels
from soc.parse.address import address_fields
from soc.parse.batch import LineBatch, ParseResult
from soc.parse.columns import Rule, SpecError
from soc.parse.eager import nulls
from soc.parse.engines.base import Engine, raw_frame, split, typed_frame
from soc.parse.engines.regex import check_regex
from soc.schema import columns as family_columns

MATCHED = "__matched"  # the outer group wrapped around the irregular regex: non-null where a line matched
PARTS = ("method", "target", "protocol", "path", "query")
# an HTTP request line split as kernels.split_request splits it: method up to the first space, protocol
# after the last one, the target in between (it may hold spaces), then path and query at the first '?'
REQUEST = r"^(?:(?P<method>[^ ]*) )?(?P<target>.*?)(?: (?P<protocol>[^ ]*))?$"
TARGET = r"^(?P<path>[^?]*)(?:\?(?P<query>.*))?$"


class WordsEngine(Engine):
    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        opts = spec.options
        self.names: list[str] = list(opts["fields"])
        irregular = opts.get("irregular") or []
        self.irregular: list[str] = []
        for regex in [irregular] if isinstance(irregular, str) else irregular:
            check_regex(str(regex), f"{spec.path or spec.name}: words irregular")
            self.irregular.append(f"(?P<{MATCHED}>{regex})")
        core = family_columns(spec.family)
        self.extra = {r.target: r.dtype for r in spec.columns if r.target not in core}
        self._subsets: dict[frozenset[str], tuple[Rule, ...]] = {}
        self.shape: list[tuple[int, int]] = []
        for field, mark in (opts.get("shape") or {}).items():
            if field not in self.names or mark not in ("[", '"'):
                raise SpecError(f"{spec.path or spec.name}: words shape: {field!r}: {mark!r} is not a field and "
                                "'[' or '\"'")
            self.shape.append((self.names.index(field), ord(mark)))

    def parse(self, batch: LineBatch) -> ParseResult:
        opts = self.spec.options
        names = self.names
        k = len(names)
        low = int(opts.get("min_fields", k))
        fs, fe, count, err = kernels.tokenize_words(batch.buf, batch.starts, batch.ends, k,
                                                    bool(opts.get("brackets", True)))
        fields = batch.columns(names, fs, fe)
        req = opts.get("request")
        if req:
            i = names.index(req)
            rs, re_ = kernels.split_request(batch.buf, fs[i], fe[i])
            fields.update(batch.columns([f"{req}.{part}" for part in PARTS], rs, re_))
        reject = token_problems(count, err, low, k)
        if self.irregular and batch.n:
            odd = (err != 0) | (count < low) | self._misplaced(batch.buf, fs)
            if odd.any():
                reject = self._read_irregular(batch, fields, reject, np.flatnonzero(odd))
        for name, how in (opts.get("split") or {}).items():
            first, second = how["into"]
            parts = fields[name].str.splitn(str(how["sep"]), 2).struct.unnest()
            fields[first], fields[second] = parts.to_series(0).alias(first), parts.to_series(1).alias(second)
        web_fields(fields, opts)
        frame, reason = typed_frame(batch, raw_frame(fields), self._rules(frozenset(fields)), self.ctx,
                                    self.spec.constants, self.dataset, self.spec.family, reject, self.extra)
        return split(batch, frame, reason, self.spec.family, self.dataset)

    def _rules(self, have: frozenset[str]) -> tuple[Rule, ...]:
        """The column rules that read at least one field of ``have``: a chunk without irregular lines has
        none of the regex-only fields (tail, vhost, ...), and typing their null columns cost the plain
        format ~10% of its speed; the columns are still there (``self.extra``), null."""
        return rules_reading(self.spec.columns, have, self._subsets)

    def _misplaced(self, buf: np.ndarray, fs: np.ndarray) -> np.ndarray:
        """Lines where a field that ``shape`` says is bracketed or quoted is not (a prefix shifted it)."""
        bad = np.zeros(fs.shape[1], np.bool_)
        for i, mark in self.shape:
            start = fs[i]
            there = start > 0
            bad |= there & (buf[np.where(there, start - 1, 0)] != mark)
        return bad

    def _read_irregular(self, batch: LineBatch, fields: dict[str, pl.Series], reject: pl.Series,
                        odd: np.ndarray) -> pl.Series:
        """Read the ``odd`` lines with the irregular regexes: their fields replace the tokenizer's (in
        ``fields``); the new reasons are returned (a line no regex matches keeps its own)."""
        reject = reject.clone()
        for regex in self.irregular:
            if not odd.size:
                break
            lines = batch.strings("line", batch.starts[odd], batch.ends[odd])  # only those lines
            groups = lines.str.extract_groups(regex).struct.unnest()
            hit = groups.get_column(MATCHED).is_not_null().to_numpy()
            if hit.any():
                self._take(batch, fields, groups.filter(hit), odd[hit])
                reject = reject.scatter(odd[hit], None)
            odd = odd[~hit]
        if odd.size:  # a misplaced field the tokenizer did not notice
            reject = reject.scatter(odd, reject.gather(odd).fill_null(f"fields out of place for {self.spec.name}"))
        return reject

    def _take(self, batch: LineBatch, fields: dict[str, pl.Series], groups: pl.DataFrame, rows: np.ndarray) -> None:
        """The fields of ``rows`` read by a regex (``groups``) in place of the tokenizer's."""
        got = {name: groups.get_column(name) for name in groups.columns if name != MATCHED}
        req = self.spec.options.get("request")
        if req in got:
            line = got[req].str.extract_groups(REQUEST).struct.unnest()
            target = line.get_column("target").str.extract_groups(TARGET).struct.unnest()
            for part in PARTS:
                got[f"{req}.{part}"] = (line if part in line.columns else target).get_column(part)
        for name in set(got) | set(fields):  # a field this regex does not give is null at its lines
            column = fields.get(name)
            column = nulls(name, pl.String, batch.n) if column is None else column.clone()
            values = got.get(name)
            fields[name] = column.scatter(rows, nulls(name, pl.String, rows.size) if values is None else values)


def rules_reading(rules: tuple[Rule, ...], have: frozenset[str], cache: dict) -> tuple[Rule, ...]:
    """``rules`` that read at least one of the raw fields ``have`` (a rule whose fields are all absent makes
    a null column, which ``typed_frame``'s ``extra`` gives without typing anything), and every required
    one (its absence is the lines' dead letter), kept in ``cache``."""
    out = cache.get(have)
    if out is None:
        out = cache[have] = tuple(r for r in rules if r.required or any(c.source in have for c in r.chain))
    return out


def web_fields(fields: dict[str, pl.Series], opts: dict) -> None:
    """The raw fields the options ``address`` (``name:address``, ``:ip``, ``:port``, ``:domain`` of client or
    server fields) and ``outcome`` (``status:outcome``) derive, added to ``fields`` (words and W3C engines)."""
    for name in opts.get("address") or ():
        if name in fields:
            fields.update(address_fields(fields[name], name))
    status = opts.get("outcome")
    if status and status in fields:
        fields[f"{status}:outcome"] = http_outcome(fields[status]).alias(f"{status}:outcome")


def http_outcome(status: pl.Series) -> pl.Series:
    """ECS ``event.outcome`` of HTTP status codes (strings): ``failure`` for 400-599, ``success`` for 100-399,
    null for anything else (``000``, ``-``: no response was sent). A cast and two comparisons, cheaper than a
    regex rule on every line (Categorical literals: no string column to cast after, 33 -> 11 ms a million)."""
    code = status.cast(pl.Int32, strict=False)
    return pl.select(pl.when(code.is_between(400, 599)).then(pl.lit("failure", pl.Categorical))
                     .when(code.is_between(100, 399)).then(pl.lit("success", pl.Categorical))).to_series()


def token_problems(count: np.ndarray, err: np.ndarray, low: int, high: int) -> pl.Series:
    """Per line, the tokenizer's reason to reject it (null when none)."""
    codes = np.where(err > 0, err.astype(np.int32), np.where(count < low, -1, 0))
    labels = {0: None, -1: f"fewer than {low} fields", **kernels.ERRORS}
    if kernels.E_TOO_MANY in labels:
        labels[kernels.E_TOO_MANY] = f"more than {high} fields"
    return pl.Series("reject", codes).replace_strict(labels, default=None, return_dtype=pl.String)
