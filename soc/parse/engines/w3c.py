"""Engine for W3C extended log files (IIS): fields named by ``#Fields:`` directives.

A file may hold several header blocks (IIS writes a new one at each restart or configuration change), so
the field list is state carried from line to line and across chunks. Directive lines set the state but
are not records: they are not counted as read (read = parsed + dead-lettered counts events and dead
letters only, as for Zeek's TSV headers). Options (spec ``w3c:``): ``default_fields``, used for lines before
any ``#Fields:`` (a log cut from the middle of a file, a log whose header was not kept): a list of field
names, or a mapping of field count -> field names (IIS layouts differ in their number of fields, so a
line's count picks its layout; a line of another count is dead-lettered, saying so); ``timestamp`` (the
raw name given to ``date`` + ``time``); ``uri`` (the raw name given to ``cs-uri-stem`` + ``?`` +
``cs-uri-query`` where the log has no ``cs-uri`` of its own); ``address`` and ``outcome`` as in the words
engine (client address parts, ECS ``event.outcome`` of an HTTP status); ``milliseconds``: fields of
milliseconds given as raw field ``NAME:ns`` in nanoseconds (ECS ``event.duration``), multiplied as integers.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.parse import kernels
from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import FAST_INT, RAW
from soc.parse.directives import by_directives
from soc.parse.eager import nulls
from soc.parse.engines.base import Engine, raw_frame, split, typed_frame
from soc.parse.engines.words import rules_reading, web_fields
from soc.schema import columns as family_columns

FIELDS = b"#Fields:"


class W3CEngine(Engine):
    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        default = spec.options.get("default_fields") or {}
        if isinstance(default, list):
            default = {len(default): default}
        self.defaults: dict[int, list[str]] = {int(k): list(v) for k, v in default.items()}
        self.fields: list[str] | None = None
        # the rules a header's fields feed (a log has a dozen of the W3C fields the spec maps); the others'
        # columns are null, typed by ``extra``
        core = family_columns(spec.family)
        self.extra = {r.target: r.dtype for r in spec.columns if r.target not in core}
        self._subsets: dict = {}

    def parse(self, batch: LineBatch) -> ParseResult:
        self.directives = 0
        res = by_directives(batch, self._directive, self._segment)
        res.lines -= self.directives  # directive lines are not records (as Zeek's TSV headers)
        return res

    def _directive(self, line: bytes) -> None:
        self.directives += 1
        if line.startswith(FIELDS):
            self.fields = line[len(FIELDS):].decode("utf-8", "replace").split()

    def _segment(self, batch: LineBatch) -> ParseResult:
        if self.fields:
            frame, reason = self._typed(batch, self.fields)
            return split(batch, frame, reason, self.spec.family, self.dataset)
        if not self.defaults:
            return ParseResult({}, batch.dead(np.ones(batch.n, bool), "no #Fields: directive before this line"),
                               batch.n)
        return self._headerless(batch)

    def _headerless(self, batch: LineBatch) -> ParseResult:
        """Lines before any ``#Fields:``: each read with the default layout of its field count."""
        most = max(self.defaults)
        _, _, count, err = kernels.tokenize_words(batch.buf, batch.starts, batch.ends, most + 1, False, False)
        got = pl.Series("got", np.where(err == kernels.E_TOO_MANY, -1, count))
        reason = pl.select(pl.format(
            "{} fields and no #Fields: directive before this line (no default IIS layout has {} fields)",
            pl.when(got >= 0).then(got.cast(pl.String)).otherwise(pl.lit(f"more than {most}")),
            pl.when(got >= 0).then(got.cast(pl.String)).otherwise(pl.lit(f"more than {most}")),
        )).to_series().alias("reason")
        parts = []
        for k, names in self.defaults.items():
            mask = pl.Series(count == k) & pl.Series(err == 0)
            if not mask.any():
                continue
            frame, why = self._typed(batch, names)
            parts.append(frame.filter(mask & why.is_null()))
            reason = pl.select(pl.when(mask).then(why).otherwise(reason)).to_series()
        bad = reason.is_not_null()
        frames = {}
        if parts:
            frames[(self.spec.family, self.dataset)] = pl.concat(parts).sort("log.line")
        return ParseResult(frames, batch.dead(bad, reason) if bad.any() else empty_dead(), batch.n)

    def _typed(self, batch: LineBatch, names: list[str]) -> tuple[pl.DataFrame, pl.Series]:
        """Every line of ``batch`` read with the field list ``names``, typed, and why each is rejected."""
        opts = self.spec.options
        k = len(names)
        fs, fe, count, err = kernels.tokenize_words(batch.buf, batch.starts, batch.ends, k, False, False)
        fields = batch.columns(names, fs, fe)
        if "date" in fields and "time" in fields:
            stamp = opts.get("timestamp", "timestamp")
            fields[stamp] = pl.select(pl.concat_str([fields["date"], pl.lit(" "), fields["time"]])).to_series()
        uri = opts.get("uri")
        if uri and uri not in fields and "cs-uri-stem" in fields:
            query = fields.get("cs-uri-query", nulls("q", pl.String, batch.n))
            with_query = query.is_not_null() & (query != "-") & (query != "")
            fields[uri] = pl.select(pl.when(with_query).then(pl.concat_str([fields["cs-uri-stem"], pl.lit("?"), query]))
                                    .otherwise(fields["cs-uri-stem"])).to_series().alias(uri)
        web_fields(fields, opts)
        ints = {}
        for name in opts.get("milliseconds") or ():  # ECS durations are ns: an integer column, no text
            if name in fields:
                fields[f"{name}:ns"] = fields[name].alias(f"{name}:ns")  # its presence is the field's
                ints[FAST_INT + RAW + f"{name}:ns"] = fields[name].cast(pl.Int64, strict=False) * 1_000_000
        got = pl.Series("got", count)
        extra = pl.Series("extra", err == kernels.E_TOO_MANY)
        reject = pl.select(
            pl.when(extra).then(pl.lit(f"more fields than the {k} that #Fields: names"))
            .when(got != k).then(pl.format("{} fields where #Fields: names {}", got, pl.lit(k)))
        ).to_series()
        raw = raw_frame(fields)
        if ints:
            raw = raw.with_columns(**ints)
        return typed_frame(batch, raw, rules_reading(self.spec.columns, frozenset(fields), self._subsets),
                           self.ctx, self.spec.constants, self.dataset, self.spec.family, reject, self.extra)
