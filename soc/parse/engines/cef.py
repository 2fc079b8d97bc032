"""Engine for ArcSight CEF records, bare or after a syslog header (``cef_kernel`` has the format's rules).

Raw fields: the seven header fields as ``cef.version``, ``cef.device_vendor``, ``cef.device_product``,
``cef.device_version``, ``cef.signature_id``, ``cef.name``, ``cef.severity``; every extension key a
column reads, by its own name (``src``, ``suser``, ``act``, ...), escapes undone (``\\|``, ``\\=``,
``\\\\``); and, from a syslog header before ``CEF:`` if there is one, ``timestamp`` (converted, for
``type: datetime``) and ``host``. No options: one family, the spec's.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from soc.parse.batch import LineBatch, ParseResult
from soc.parse.cef_kernel import CEF_ERRORS, HEADER, MAGIC, tokenize_cef
from soc.parse.engines.base import Engine, raw_frame, split, typed_frame
from soc.parse.kv_kernel import KeyTable
from soc.parse.syslog_header import HOST, T_NONE, T_WALL, TIME, parse_headers
from soc.schema import time as T

SYSLOG = ("timestamp", "host")


def unescape(values: pl.Series) -> pl.Series:
    """``\\|``, ``\\=`` and ``\\\\`` as the characters they stand for (only where a backslash is)."""
    if not values.str.contains("\\", literal=True).any():
        return values
    return values.str.replace_all(r"\\([\\|=])", "$1")


class CefEngine(Engine):
    """CEF lines to the spec's family; only the extension keys its columns read are kept."""

    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        sources = list(dict.fromkeys(c.source for r in spec.columns for c in r.chain))
        self.header = [s for s in sources if s in HEADER]
        self.keys = [s for s in sources if s not in HEADER and s not in SYSLOG]
        self.syslog = [s for s in sources if s in SYSLOG]
        self.table = KeyTable(self.keys)
        self.year, self.limit = T.yearless_reference(ctx.reference, ctx.zone)

    def parse(self, batch: LineBatch) -> ParseResult:
        t = self.table
        fs, fe, at, err = tokenize_cef(batch.buf, batch.starts, batch.ends, MAGIC, t.slots, t.hashes, t.mask,
                                       t.bytes, t.offsets)
        names = self.header + self.keys
        rows = np.array([HEADER.index(h) for h in self.header] + [len(HEADER) + t.index(k) for k in self.keys],
                        np.int64)
        fields = {k: unescape(v) for k, v in batch.columns(names, fs, fe, rows).items()}
        if self.syslog:
            fields.update(self._syslog(batch, at))
        if not fields:
            fields["_"] = pl.Series(np.zeros(batch.n, np.int8))
        reject = pl.Series("reject", err).replace_strict(CEF_ERRORS, default=None, return_dtype=pl.String)
        frame, reason = typed_frame(batch, raw_frame(fields), self.spec.columns, self.ctx, self.spec.constants,
                                    self.dataset, self.spec.family, reject)
        return split(batch, frame, reason, self.spec.family, self.dataset)

    def _syslog(self, batch: LineBatch, at: np.ndarray) -> dict[str, pl.Series]:
        """``timestamp`` and ``host`` of a syslog header that ends before ``CEF:`` (null without one)."""
        hs, he, ts, kind, herr = parse_headers(batch.buf, batch.starts, batch.ends, self.year, self.limit)
        before = (herr == 0) & (at >= 0)
        out = {}
        if "host" in self.syslog:
            ok = before & (hs[HOST] >= 0) & (he[HOST] <= at)
            out["host"] = batch.strings("host", np.where(ok, hs[HOST], -1), he[HOST])
        if "timestamp" in self.syslog:
            ok = before & (kind != T_NONE) & (he[TIME] <= at)
            utc = ts.copy()
            wall = np.flatnonzero(ok & (kind == T_WALL))
            if wall.size:
                utc[wall], valid = T.localize_micros(ts[wall], self.ctx.zone)
                ok[wall] &= valid
            out["timestamp"] = pl.Series("timestamp", pa.array(utc, pa.timestamp("us", "UTC"), mask=~ok))
        return out
