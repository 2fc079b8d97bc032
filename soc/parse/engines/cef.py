"""Engine for ArcSight CEF records, bare or after a syslog header (``cef_kernel`` has the format's rules).

Raw fields: the seven header fields as ``cef.version``, ``cef.device_vendor``, ``cef.device_product``,
``cef.device_version``, ``cef.signature_id``, ``cef.name``, ``cef.severity``; every extension key a
column reads, by its own name (``src``, ``suser``, ``act``, ...), escapes undone (``\\|``, ``\\=``,
``\\\\``); and, from a syslog header before ``CEF:`` if there is one, ``timestamp`` (converted, for
``type: datetime``) and ``host``. One family, the spec's.

The record's time: option ``time`` (spec ``cef:``) lists the extension keys that carry it, best first
(``rt``, ``end``, ``start``, ...). Of each line exactly one source is passed on, so a rule's fallbacks can
never hide a time that is present but unreadable (that line is dead-lettered with the value):

- the text of the first of those keys present, as one of ``time_ms`` (all digits: epoch milliseconds),
  ``time_yearless`` (``MMM dd HH:mm:ss``), ``time_iso`` (ISO 8601) or ``time`` (the rest: ``MMM dd yyyy
  HH:mm:ss``), so that each rule runs only on values of its form (run on every value, the rules of the
  other forms made the parse 2-3x slower), a zone word made an offset (`` UTC``/`` GMT``/`` UT``/`` Z``
  become `` +0000``, `` GMT+07:00`` `` +07:00``) so that one fast layout with ``%z`` reads them all;
- else ``timestamp``, the syslog header's;
- else ``soc.input_time``, the input's reference time (``Context.reference``: the file's mtime, the end
  of a year given with ``--year``, the time of reading for stdin).

``soc.timestamp_source`` names which (the key, ``syslog`` or ``input_time``): a record that carries no
time of its own is still an event, and says so.
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
# the record's own time, by its form: digits (epoch milliseconds), year-less 'MMM dd HH:mm:ss', ISO 8601,
# or any other text ('MMM dd yyyy HH:mm:ss'); so that each rule runs only on the values of its form
OWN_MS, OWN_YEARLESS, OWN_ISO, OWN_TIME = "time_ms", "time_yearless", "time_iso", "time"
FORMS = ((OWN_MS, r"^[0-9]+$"), (OWN_YEARLESS, r"^[A-Za-z]{3}\s+[0-9]{1,2}\s+[0-9]{1,2}:"),
         (OWN_ISO, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]"))  # values come without blanks around (the kernel's)
INPUT_TIME, TIME_SOURCE = "soc.input_time", T.TIMESTAMP_SOURCE
MADE = (OWN_MS, OWN_YEARLESS, OWN_ISO, OWN_TIME, INPUT_TIME, TIME_SOURCE)  # fields this engine makes


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
        self.times = [str(k) for k in spec.options.get("time", [])]
        self.made = [s for s in sources if s in MADE]
        self.header = [s for s in sources if s in HEADER]
        self.keys = list(dict.fromkeys([s for s in sources if s not in HEADER and s not in SYSLOG and s not in MADE]
                                       + (self.times if self.made else [])))
        self.syslog = list(dict.fromkeys([s for s in sources if s in SYSLOG] + (["timestamp"] if self.made else [])))
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
        if self.made:
            fields.update(self._time(fields, batch.n))
        if not fields:
            fields["_"] = pl.Series(np.zeros(batch.n, np.int8))
        reject = pl.Series("reject", err).replace_strict(CEF_ERRORS, default=None, return_dtype=pl.String)
        frame, reason = typed_frame(batch, raw_frame(fields), self.spec.columns, self.ctx, self.spec.constants,
                                    self.dataset, self.spec.family, reject)
        return split(batch, frame, reason, self.spec.family, self.dataset)

    def _time(self, fields: dict[str, pl.Series], n: int) -> dict[str, pl.Series]:
        """``time``, ``timestamp`` and ``soc.input_time``, one of them set per line, and which (module doc)."""
        texts = [(k, fields[k]) for k in self.times]
        frame = pl.DataFrame([s.alias(f"t{i}") for i, (_, s) in enumerate(texts)] + [fields["timestamp"]],
                             height=n)
        frame = frame.with_columns(  # zone words as offsets, for every column reading these keys (event.end)
            pl.col(f"t{i}").str.replace(" (?:UTC|GMT|UT|Z)$", " +0000").str.replace(" (?:UTC|GMT)([+-])", " $1")
            for i in range(len(texts)))
        has = [pl.col(f"t{i}").str.len_bytes().fill_null(0) > 0 for i in range(len(texts))]  # null, empty: absent
        own = pl.any_horizontal(has) if has else pl.lit(False)
        header = ~own & pl.col("timestamp").is_not_null()
        source = pl.coalesce([pl.when(h).then(pl.lit(k)) for h, (k, _) in zip(has, texts, strict=True)]
                             + [pl.when(header).then(pl.lit("syslog")), pl.lit("input_time")])
        own_time = pl.coalesce([pl.when(h).then(pl.col(f"t{i}")) for i, h in enumerate(has)]
                               or [pl.lit(None, pl.String)]).cast(pl.String)
        form = pl.coalesce([pl.when(own_time.str.contains(rx)).then(pl.lit(name)) for name, rx in FORMS]
                           + [pl.lit(OWN_TIME)])
        out = frame.with_columns(own_time.alias("_text"), form.alias("_form")).select(
            *(pl.when(pl.col("_form") == name).then(pl.col("_text")).alias(name)
              for name in (*(f for f, _ in FORMS), OWN_TIME)),
            *(pl.col(f"t{i}").alias(k) for i, (k, _) in enumerate(texts)),
            pl.when(header).then(pl.col("timestamp")).alias("timestamp"),
            pl.when(~own & ~header).then(pl.lit(self.ctx.reference).cast(T.UTC)).alias(INPUT_TIME),
            source.alias(TIME_SOURCE),
        )
        return {c: out.get_column(c) for c in out.columns}

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
