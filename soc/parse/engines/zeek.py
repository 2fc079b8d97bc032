"""Engine for Zeek TSV logs: values separated by the ``#separator`` byte, named by ``#fields``, the log
stream told by ``#path``.

The header lines are state carried across lines and chunks (``soc.parse.directives``, as for W3C logs);
a file may hold several header blocks (concatenated or rotated logs, different streams). Every line of a
block is split by one Numba pass (``tsv_kernel.split_on``), its fields become string views into the
chunk, and the spec's routes (``when: {_path: [conn]}``) send it to its family; the dataset is
``zeek.<path>``. ``#close`` and the other headers produce no event. Lines before any ``#fields`` and
lines with another number of fields are dead-lettered.
"""

from __future__ import annotations

import codecs

import numpy as np
import polars as pl

from soc.parse import tsv_kernel
from soc.parse.batch import LineBatch, ParseResult
from soc.parse.columns import RAW
from soc.parse.directives import by_directives
from soc.parse.eager import nulls
from soc.parse.engines.base import merge
from soc.parse.engines.routed import Records, RoutedEngine


class ZeekEngine(RoutedEngine):
    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        self.sep = b"\t"
        self.fields: list[str] | None = None
        self.path = ""
        self.when = list(dict.fromkeys(f for r in self.routes for f in r.fields()))

    def parse(self, batch: LineBatch) -> ParseResult:
        return by_directives(batch, self._directive, self._segment)

    def _directive(self, line: bytes) -> None:
        if line.startswith(b"#separator "):
            value = codecs.decode(line[len(b"#separator "):].strip().decode("ascii", "replace"), "unicode_escape")
            self.sep = value.encode("latin-1", "replace")[:1] or b"\t"
            return
        name, _, value = line[1:].partition(self.sep)
        if name == b"fields":
            self.fields = value.decode("utf-8", "replace").split(self.sep.decode("latin-1"))
        elif name == b"path":
            self.path = value.decode("utf-8", "replace").strip()

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
            dataset = f"zeek.{self.path}" if self.path else self.dataset
            which = None
            if len(self.routes) > 1:
                when = self._fields(batch, fs, fe, index, self.when, idx)
                which = pl.DataFrame(when).select(self.which).to_series().to_numpy()
            for i, route in enumerate(self.routes):
                sel = idx if which is None else idx[which == i]
                if sel.size:  # only the columns the route reads, only at its lines
                    raw = pl.DataFrame(self._fields(batch, fs, fe, index, route.sources(), sel), height=sel.size)
                    parts.append(self.typed(rec, sel, raw, route, dataset))
        res = merge(batch.n, parts)
        if len(parts) > 1:
            res.frames = {key: f.sort("log.offset") for key, f in res.frames.items()}
            res.dead = res.dead.sort("log.offset")
        return res

    def _fields(self, batch: LineBatch, fs: np.ndarray, fe: np.ndarray, index: dict[str, int], fields: list[str],
                lines: np.ndarray) -> dict[str, pl.Series]:
        """Raw columns of ``fields`` at ``lines`` (views into the chunk; ``_path`` the block's, absent ones
        null)."""
        have = [f for f in fields if f in index]
        cols = batch.columns([RAW + f for f in have], fs, fe, np.array([index[f] for f in have], np.int64), lines)
        for f in fields:
            if f == "_path":
                cols[RAW + f] = pl.Series(RAW + f, [self.path], pl.String).new_from_index(0, lines.size)
            elif f not in index:
                cols[RAW + f] = nulls(RAW + f, pl.String, lines.size)
        return cols
