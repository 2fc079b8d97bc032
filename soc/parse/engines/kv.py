"""Engine for ``key=value`` logs (FortiGate), with lines routed by their own fields to event families.

One Numba pass (``kv_kernel.tokenize_kv``) finds the value spans of the keys the spec uses; the routes
then pick each line's family from a few of those values, and only the columns of a line's route are
built (string views into the chunk, typed once by the column rules). Options (spec ``kv:``):

``join``
    raw fields made of others, the parts present joined by a space (``stamp: [date, time, tz]``).
``routes``
    a list tried in order, the first that matches takes the line::

        - name: traffic
          when: {type: [traffic]}          # every field listed has one of its values
          family: network
          columns: {...}                   # added to (or replacing) the spec's own columns
          constants: {...}                 # idem for constants; a constant replaces a column

    ``when`` may also be a list of such mappings, any of which matches. A route without ``when`` takes
    every line (it must be the last). Lines no route takes go to the spec's ``family`` with the spec's
    columns: a line is never dropped. Each route costs a few Polars queries per chunk whatever its
    size, so routes of one family are best merged (maps and fallbacks absorb their differences).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.parse import kv_kernel
from soc.parse.batch import LineBatch, ParseResult
from soc.parse.engines.base import Engine, merge, raw_frame, split, typed_frame
from soc.parse.routes import CONSTANT_TYPES, Route, family_extras, load_routes, spec_nulls

__all__ = ["CONSTANT_TYPES", "KvEngine", "Route", "family_extras", "load_routes", "spec_nulls"]


class KvEngine(Engine):
    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        self.joins = {name: [str(p) for p in parts] for name, parts in (spec.options.get("join") or {}).items()}
        self.routes = load_routes(spec)
        self.extras = family_extras(self.routes)
        keys = [f for route in self.routes for f in route.fields()]
        for route in self.routes:
            for source in route.sources():
                keys.extend(self.joins.get(source, [source]))
        self.table = kv_kernel.KeyTable(keys)
        self.route_table = kv_kernel.RouteTable([
            [[(self.table.index(f), list(vs)) for f, vs in alt] for alt in route.when] for route in self.routes])

    def parse(self, batch: LineBatch) -> ParseResult:
        t = self.table
        fs, fe, _, err = kv_kernel.tokenize_kv(batch.buf, batch.starts, batch.ends, t.slots, t.hashes, t.mask,
                                               t.bytes, t.offsets)
        bad = err != kv_kernel.OK
        parts: list[ParseResult] = []
        if bad.any():
            reasons = pl.Series("reason", err).replace_strict(kv_kernel.KV_ERRORS, default=None,
                                                             return_dtype=pl.String)
            parts.append(ParseResult({}, batch.dead(bad, reasons), 0))
        which = kv_kernel.route_lines(batch.buf, fs, fe, err, *self.route_table.arrays())
        taken: dict[str, int] = {}
        for i, route in enumerate(self.routes):
            idx = np.flatnonzero(which == i)
            if idx.size:
                parts.append(self._parse_route(batch, route, fs, fe, idx))
                taken[route.family] = taken.get(route.family, 0) + 1
        res = merge(batch.n, parts)
        for (family, dataset), frame in res.frames.items():
            if taken.get(family, 0) > 1:  # several routes: back to line order
                res.frames[(family, dataset)] = frame.sort("log.offset")
        if len(parts) > 1 and res.dead.height:
            res.dead = res.dead.sort("log.offset")
        return res

    def _parse_route(self, batch: LineBatch, route: Route, fs: np.ndarray, fe: np.ndarray, idx: np.ndarray,
                     ) -> ParseResult:
        sub = batch if idx.size == batch.n else batch.take(idx)
        keys = list(dict.fromkeys(k for source in route.sources() for k in self.joins.get(source, [source])))
        fields = batch.columns(keys, fs, fe, np.array([self.table.index(k) for k in keys], np.int64), idx)
        for source in route.sources():
            if source in self.joins:
                parts = [pl.when(fields[p] != "").then(fields[p]) for p in self.joins[source]]
                fields[source] = pl.select(pl.concat_str(parts, separator=" ", ignore_nulls=True)
                                           .alias(source)).to_series()
        frame, reason = typed_frame(sub, raw_frame(fields), route.rules, self.ctx, route.constants, self.dataset,
                                    route.family, extra=self.extras[route.family])
        return split(sub, frame, reason, route.family, self.dataset)

