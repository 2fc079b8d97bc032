"""Engine for W3C extended log files (IIS): fields named by ``#Fields:`` directives.

A file may hold several header blocks (IIS writes a new one at each restart or configuration change), so
the field list is state carried from line to line and across chunks. Directive lines are parsed (they
set the state) but produce no event. Options (spec ``w3c:``): ``default_fields``, used for lines before
any ``#Fields:`` (a log cut from the middle of a file); ``timestamp`` (the raw name given to
``date`` + ``time``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.parse import kernels
from soc.parse.batch import LineBatch, ParseResult
from soc.parse.directives import by_directives
from soc.parse.engines.base import Engine, raw_frame, split, typed_frame

FIELDS = b"#Fields:"


class W3CEngine(Engine):
    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        self.fields: list[str] | None = list(spec.options.get("default_fields") or []) or None

    def parse(self, batch: LineBatch) -> ParseResult:
        return by_directives(batch, self._directive, self._segment)

    def _directive(self, line: bytes) -> None:
        if line.startswith(FIELDS):
            self.fields = line[len(FIELDS):].decode("utf-8", "replace").split()

    def _segment(self, batch: LineBatch) -> ParseResult:
        if not self.fields:
            return ParseResult({}, batch.dead(np.ones(batch.n, bool), "no #Fields: directive before this line"),
                               batch.n)
        names = self.fields
        k = len(names)
        fs, fe, count, err = kernels.tokenize_words(batch.buf, batch.starts, batch.ends, k, False, False)
        fields = batch.columns(names, fs, fe)
        if "date" in fields and "time" in fields:
            stamp = self.spec.options.get("timestamp", "timestamp")
            fields[stamp] = pl.select(pl.concat_str([fields["date"], pl.lit(" "), fields["time"]])).to_series()
        got = pl.Series("got", count)
        extra = pl.Series("extra", err == kernels.E_TOO_MANY)
        reject = pl.select(
            pl.when(extra).then(pl.lit(f"more fields than the {k} that #Fields: names"))
            .when(got != k).then(pl.format("{} fields where #Fields: names {}", got, pl.lit(k)))
        ).to_series()
        frame, reason = typed_frame(batch, raw_frame(fields), self.spec.columns, self.ctx,
                                    self.spec.constants, self.dataset, self.spec.family, reject)
        return split(batch, frame, reason, self.spec.family, self.dataset)
