"""Engine for logs of whitespace-separated fields with ``"quoted"`` and ``[bracketed]`` ones.

Apache/nginx combined and common formats, and other positional formats. Options (spec ``words:``):
``fields`` (names, in order), ``min_fields``, ``brackets`` (treat ``[...]`` as one field) and
``request`` (the name of a field holding an HTTP request line, split into ``request.method``,
``request.target`` and ``request.protocol``, the target further into ``request.path`` and
``request.query``) and ``split`` (fields made of two parts, e.g. Squid's ``TCP_MISS/200``:
``{result: {sep: /, into: [squid.result, status]}}`` splits at the first ``sep``; a field without it is
all first part).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.parse import kernels
from soc.parse.batch import LineBatch, ParseResult
from soc.parse.engines.base import Engine, raw_frame, split, typed_frame


class WordsEngine(Engine):
    def parse(self, batch: LineBatch) -> ParseResult:
        opts = self.spec.options
        names: list[str] = list(opts["fields"])
        k = len(names)
        fs, fe, count, err = kernels.tokenize_words(batch.buf, batch.starts, batch.ends, k,
                                                    bool(opts.get("brackets", True)))
        fields = batch.columns(names, fs, fe)
        req = opts.get("request")
        if req:
            i = names.index(req)
            rs, re_ = kernels.split_request(batch.buf, fs[i], fe[i])
            parts = [f"{req}.{part}" for part in ("method", "target", "protocol", "path", "query")]
            fields.update(batch.columns(parts, rs, re_))
        for name, how in (opts.get("split") or {}).items():
            first, second = how["into"]
            parts = fields[name].str.splitn(str(how["sep"]), 2).struct.unnest()
            fields[first], fields[second] = parts.to_series(0).alias(first), parts.to_series(1).alias(second)
        reject = token_problems(count, err, int(opts.get("min_fields", k)), k)
        frame, reason = typed_frame(batch, raw_frame(fields), self.spec.columns, self.ctx,
                                    self.spec.constants, self.dataset, self.spec.family, reject)
        return split(batch, frame, reason, self.spec.family, self.dataset)


def token_problems(count: np.ndarray, err: np.ndarray, low: int, high: int) -> pl.Series:
    """Per line, the tokenizer's reason to reject it (null when none)."""
    codes = np.where(err > 0, err.astype(np.int32), np.where(count < low, -1, 0))
    labels = {0: None, -1: f"fewer than {low} fields", **kernels.ERRORS}
    if kernels.E_TOO_MANY in labels:
        labels[kernels.E_TOO_MANY] = f"more than {high} fields"
    return pl.Series("reject", codes).replace_strict(labels, default=None, return_dtype=pl.String)
