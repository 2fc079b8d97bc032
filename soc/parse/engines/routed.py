"""What engines that route records to families share: routes picked by Polars expressions over raw
fields, typed frames per route, and records that are spans of a buffer with their place in the input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from soc.parse.arrow import binary_series
from soc.parse.batch import ParseResult, empty_dead
from soc.parse.columns import RAW, apply
from soc.parse.engines.base import Engine
from soc.parse.routes import Route, family_extras, load_routes
from soc.schema import DEAD_LETTERS, conform


class Records:
    """Spans of records (JSON texts, TSV lines) in a buffer, with where each starts in the input."""

    def __init__(self, buf: np.ndarray, raw: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 offsets: np.ndarray, lines: np.ndarray):
        self.buf, self.raw, self.starts, self.ends, self.offsets, self.lines = buf, raw, starts, ends, offsets, lines
        self.lines_of_batch = False
        self.extracted: tuple | None = None  # what an engine found in the records ahead (``Engine.prepare``)

    def dead(self, path: str, idx: np.ndarray, reasons: pl.Series) -> pl.DataFrame:
        """Dead letters of the records at ``idx``, with their raw bytes."""
        s, e = self.starts[idx], self.ends[idx]
        return pl.DataFrame({
            "log.file.path": pl.Series([path], dtype=pl.String).new_from_index(0, idx.size),
            "log.line": self.lines[idx],
            "log.offset": self.offsets[idx],
            "error.message": reasons,
            "event.original": binary_series("event.original", pa.py_buffer(self.raw), self.raw, s, e),
        }, schema=DEAD_LETTERS)


class RoutedEngine(Engine):
    """Routes (``soc.parse.routes``) evaluated on a frame of raw fields; in ``when``, the value ``"*"``
    matches any present value. A route's constant ``event.dataset`` names its dataset (``zeek.conn``)."""

    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        self.routes: list[Route] = load_routes(spec)
        self.extras = family_extras(self.routes)
        self.which = self._route_expr()

    def route_fields(self) -> list[str]:
        """Raw fields the routes read, ``when`` first."""
        fields = [f for r in self.routes for f in r.fields()] + [s for r in self.routes for s in r.sources()]
        return list(dict.fromkeys(fields))

    def _route_expr(self) -> pl.Expr:
        """The index of the first route that takes each record."""
        out = None
        for i, route in enumerate(self.routes):
            if not route.when:
                cond = pl.lit(True)
            else:
                alts = [pl.all_horizontal([pl.col(RAW + f).is_not_null() if "*" in vs
                                           else pl.col(RAW + f).is_in(list(vs)).fill_null(False)
                                           for f, vs in alt]) for alt in route.when]
                cond = pl.any_horizontal(alts)
            out = pl.when(cond).then(pl.lit(i)) if out is None else out.when(cond).then(pl.lit(i))
        return out.otherwise(pl.lit(len(self.routes) - 1)).alias("_route")

    def route(self, rec: Records, idx: np.ndarray, table: pl.DataFrame, dataset: str | None = None,
              ) -> list[ParseResult]:
        """The records at ``idx`` (raw fields in ``table``) typed by the route each goes to."""
        which = table.select(self.which).to_series().to_numpy()
        parts = []
        for i, route in enumerate(self.routes):
            sel = np.flatnonzero(which == i)
            if sel.size:
                parts.append(self.typed(rec, idx[sel], table if sel.size == idx.size else table[sel], route,
                                        dataset))
        return parts

    def typed(self, rec: Records, idx: np.ndarray, raw: pl.DataFrame, route: Route, dataset: str | None = None,
              ) -> ParseResult:
        """One route's frame; its rejected records go to dead letters. ``dataset`` overrides the spec's."""
        dataset = str(route.constants.get("event.dataset", dataset or self.dataset))
        typed, reason = apply(raw, list(route.rules), self.ctx, {**route.constants, "event.dataset": dataset})
        origin = {
            "log.file.path": pl.Series("log.file.path", [self.ctx.path], pl.Categorical).new_from_index(0, idx.size),
            "log.offset": pl.Series("log.offset", rec.offsets[idx]),
            "log.line": pl.Series("log.line", rec.lines[idx]),
        }
        frame = conform(typed.with_columns(**origin), route.family, self.extras[route.family])
        key = (route.family, dataset)
        bad = reason.is_not_null()
        if not bad.any():
            return ParseResult({key: frame}, empty_dead(), 0)
        where = bad.to_numpy()
        dead = rec.dead(self.ctx.path, idx[where], reason.filter(bad).alias("error.message"))
        return ParseResult({key: frame.filter(~bad)}, dead, 0)


