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
the ``irregular`` regex instead (one Rust regex, linear time, named groups = raw fields, which may be more
than ``fields``: ``vhost``, ``tail``, ...). Only those lines pay for the regex; a line it does not match
keeps the tokenizer's reason. ``address`` lists fields holding a network address (``ip``, ``ip:port``,
``[v6]:port``, a host name), each split into raw fields ``NAME:address``, ``NAME:ip``, ``NAME:port`` and
``NAME:domain`` (see ``soc.parse.address``). ``outcome`` names the HTTP status field whose ECS
``event.outcome`` is made as raw field ``NAME:outcome`` (see ``http_outcome``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.parse import kernels
from soc.parse.address import address_fields
from soc.parse.batch import LineBatch, ParseResult
from soc.parse.columns import SpecError
from soc.parse.eager import nulls
from soc.parse.engines.base import Engine, raw_frame, split, typed_frame
from soc.parse.engines.regex import check_regex

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
        self.irregular = opts.get("irregular")
        if self.irregular:
            check_regex(self.irregular, f"{spec.path or spec.name}: words irregular")
            self.irregular = f"(?P<{MATCHED}>{self.irregular})"
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
        for name in opts.get("address") or ():
            fields.update(address_fields(fields.get(name, nulls(name, pl.String, batch.n)), name))
        if opts.get("outcome"):
            name = opts["outcome"]
            fields[f"{name}:outcome"] = http_outcome(fields[name]).alias(f"{name}:outcome")
        frame, reason = typed_frame(batch, raw_frame(fields), self.spec.columns, self.ctx,
                                    self.spec.constants, self.dataset, self.spec.family, reject)
        return split(batch, frame, reason, self.spec.family, self.dataset)

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
        """Read the ``odd`` lines with the irregular regex: their fields replace the tokenizer's (in
        ``fields``); the new reasons are returned (a line the regex does not match keeps its own)."""
        groups = batch.lines().gather(odd).str.extract_groups(self.irregular).struct.unnest()
        hit = groups.get_column(MATCHED).is_not_null()
        rows = odd[hit.to_numpy()]
        unplaced = odd[~hit.to_numpy()]
        reject = reject.clone()
        if unplaced.size:  # a misplaced field the tokenizer did not notice
            reject = reject.scatter(unplaced, reject.gather(unplaced).fill_null(
                f"fields out of place for {self.spec.name}"))
        if not rows.size:
            return reject
        got = {name: groups.get_column(name).filter(hit) for name in groups.columns if name != MATCHED}
        req = self.spec.options.get("request")
        if req in got:
            line = got[req].str.extract_groups(REQUEST).struct.unnest()
            target = line.get_column("target").str.extract_groups(TARGET).struct.unnest()
            for part in PARTS:
                got[f"{req}.{part}"] = (line if part in line.columns else target).get_column(part)
        for name, values in got.items():
            column = fields.get(name)
            column = nulls(name, pl.String, batch.n) if column is None else column.clone()
            fields[name] = column.scatter(rows, values)
        return reject.scatter(rows, None)


def http_outcome(status: pl.Series) -> pl.Series:
    """ECS ``event.outcome`` of HTTP status codes (strings): ``failure`` for 400-599, ``success`` for 100-399,
    null for anything else (``000``, ``-``: no response was sent). A cast and two comparisons, cheaper than a
    regex rule on every line."""
    code = status.str.strip_chars().cast(pl.Int32, strict=False)
    return pl.select(pl.when(code.is_between(400, 599)).then(pl.lit("failure"))
                     .when(code.is_between(100, 399)).then(pl.lit("success"))).to_series()


def token_problems(count: np.ndarray, err: np.ndarray, low: int, high: int) -> pl.Series:
    """Per line, the tokenizer's reason to reject it (null when none)."""
    codes = np.where(err > 0, err.astype(np.int32), np.where(count < low, -1, 0))
    labels = {0: None, -1: f"fewer than {low} fields", **kernels.ERRORS}
    if kernels.E_TOO_MANY in labels:
        labels[kernels.E_TOO_MANY] = f"more than {high} fields"
    return pl.Series("reject", codes).replace_strict(labels, default=None, return_dtype=pl.String)
