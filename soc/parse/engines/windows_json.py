"""Engine for Windows events forwarded as JSON lines: Winlogbeat (ECS, ``winlog.*``) and NXLog
(``im_msvistalog`` with ``to_json()``: ``EventID``, ``Channel``, ``Hostname``, ... at the top level).

The generic ``json`` engine reads the fields a spec names; Windows events carry fields of their own per
event id (every EventData field must be kept under its name), so this engine decodes the records of each
(channel, event id) group with an inferred schema, like the EVTX engine, and hands them to
``soc.parse.windows`` under the same raw names (``System.*`` and the EventData names). Options (spec
``windows_json:``): ``layout`` (``winlogbeat`` or ``nxlog``), plus those of ``soc.parse.windows``.
Each line is checked first (``json_kernel.validate``); a line that is not a JSON object is dead-lettered
with the reason, a blank line is skipped.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from soc.parse import json_kernel as K
from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import SpecError
from soc.parse.engines.base import Engine, merge
from soc.parse.engines.evtx import SEP, text_of
from soc.parse.windows import mapping_of

# System raw name -> path, per layout
WINLOGBEAT = {
    "System.Channel": ("winlog", "channel"), "System.EventID": ("winlog", "event_id"),
    "System.Provider": ("winlog", "provider_name"), "System.ProviderGuid": ("winlog", "provider_guid"),
    "System.EventRecordID": ("winlog", "record_id"), "System.Computer": ("winlog", "computer_name"),
    "System.Version": ("winlog", "version"), "System.Task": ("winlog", "task"),
    "System.Opcode": ("winlog", "opcode"), "System.Keywords": ("winlog", "keywords"),
    "System.ActivityID": ("winlog", "activity_id"), "System.ProcessID": ("winlog", "process", "pid"),
    "System.ThreadID": ("winlog", "process", "thread", "id"), "System.UserID": ("winlog", "user", "identifier"),
    "System.Level": ("log", "level"), "System.TimeCreated": ("winlog", "time_created"),
    "Record.Timestamp": ("@timestamp",),  # the event's time too, unless a relay (Logstash, Kafka) reset it
}
NXLOG = {
    "System.Channel": ("Channel",), "System.EventID": ("EventID",), "System.Provider": ("SourceName",),
    "System.ProviderGuid": ("ProviderGuid",), "System.EventRecordID": ("RecordNumber",),
    "System.Computer": ("Hostname",), "System.Version": ("Version",), "System.Task": ("Task",),
    "System.Opcode": ("OpcodeValue",), "System.Keywords": ("Keywords",), "System.ActivityID": ("ActivityID",),
    "System.ProcessID": ("ExecutionProcessID",), "System.ThreadID": ("ExecutionThreadID",),
    "System.UserID": ("UserID",), "System.Level": ("SeverityValue",), "System.TimeCreated": ("EventTime",),
}
# NXLog's own fields (im_msvistalog and the core), not EventData
NXLOG_META = {
    "EventTime", "Hostname", "Keywords", "EventType", "SeverityValue", "Severity", "EventID", "SourceName",
    "ProviderGuid", "Version", "Task", "OpcodeValue", "RecordNumber", "ActivityID", "RelatedActivityID",
    "ProcessID", "ExecutionProcessID", "ThreadID", "ExecutionThreadID", "Channel", "Domain", "AccountName",
    "UserID", "AccountType", "Category", "Opcode", "Message", "EventReceivedTime", "SourceModuleName",
    "SourceModuleType", "Level", "ERRORINFO",
}
# grouping keys (JSON written with or without spaces after the colons)
KEYS = {
    "winlogbeat": (r'"channel"\s*:\s*"((?:[^"\\]|\\.)*)"', r'"event_id"\s*:\s*"?(\d+)'),
    "nxlog": (r'"Channel"\s*:\s*"((?:[^"\\]|\\.)*)"', r'"EventID"\s*:\s*"?(\d+)'),
}
PARAM = re.compile(r"param([1-9]\d*)")  # Winlogbeat's names of unnamed <Data> elements


class WindowsJsonEngine(Engine):
    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        self.layout = spec.options.get("layout", "winlogbeat")
        if self.layout not in KEYS:
            raise SpecError(f"{spec.path}: windows_json layout {self.layout!r} (known: {', '.join(KEYS)})")
        self.mapping = mapping_of(spec)

    def parse(self, batch: LineBatch) -> ParseResult:
        code, _ = K.validate(batch.buf, batch.starts, batch.ends)
        parts: list[ParseResult] = []
        bad = (code != K.OK) & (code != K.BLANK)
        if bad.any():
            reasons = pl.Series("reason", code).replace_strict(K.ERRORS, default=None, return_dtype=pl.String)
            parts.append(ParseResult({}, batch.dead(bad, reasons), 0))
        good = np.flatnonzero(code == K.OK)
        if good.size:
            lines = batch.take(good)
            text = lines.lines("data")
            channel_re, id_re = KEYS[self.layout]
            keys = pl.DataFrame({"channel": text.str.extract(channel_re), "event_id": text.str.extract(id_re)})
            groups = keys.with_row_index("row").group_by(["channel", "event_id"], maintain_order=True).agg("row")
            origin = lines.origin()
            for channel, event_id, rows in groups.iter_rows():
                take = pl.Series(rows, dtype=pl.UInt32)
                sub = lines.take(np.asarray(rows, np.int64))
                parts.append(self._group(sub, text.gather(take), {k: v.gather(take) for k, v in origin.items()},
                                         channel, event_id))
        return merge(batch.n, parts)

    def _group(self, lines: LineBatch, text: pl.Series, origin: dict[str, pl.Series], channel: str | None,
               event_id: str | None) -> ParseResult:
        try:
            raw, names = self.flatten(text.str.json_decode(infer_schema_length=None))
        except Exception as exc:  # noqa: BLE001 - e.g. a field that is a number here and an object there
            if lines.n == 1:
                return ParseResult({}, lines.dead(np.ones(1, bool), f"JSON does not decode: {str(exc)[:200]}"), 1)
            half = lines.n // 2  # isolate the record(s) the decoder refuses
            first, second = np.arange(half), np.arange(half, lines.n)
            return merge(lines.n, [
                self._group(lines.take(idx), text.gather(pl.Series(idx)), {k: v.gather(pl.Series(idx))
                                                                             for k, v in origin.items()},
                            channel, event_id) for idx in (first, second)])
        frame, reason = self.mapping.typed(raw, names, channel, event_id, self.ctx, origin)
        key = self.mapping.key(channel, event_id)
        bad = reason.is_not_null()
        if not bad.any():
            return ParseResult({key: frame}, empty_dead(), lines.n)
        return ParseResult({key: frame.filter(~bad)}, lines.dead(bad, reason), lines.n)

    def flatten(self, decoded: pl.Series) -> tuple[pl.DataFrame, list[str]]:
        """``System.*`` and EventData fields of one group's decoded records (strings)."""
        schema = decoded.dtype
        exprs: dict[str, pl.Expr] = {}
        for name, path in (WINLOGBEAT if self.layout == "winlogbeat" else NXLOG).items():
            expr, dtype = pl.col("d"), schema
            for step in path:
                dtype = _sub(dtype, step)
                if dtype is None:
                    break
                expr = expr.struct.field(step)
            else:
                exprs[name] = text_of(expr, dtype).alias(name)
        names: list[str] = []
        if self.layout == "winlogbeat":
            winlog = _sub(schema, "winlog")
            for block in ("event_data", "user_data"):
                fields = _sub(winlog, block)
                if isinstance(fields, pl.Struct):
                    for f in fields.fields:
                        if f.name not in exprs:
                            base = pl.col("d").struct.field("winlog").struct.field(block)
                            exprs[f.name] = text_of(base.struct.field(f.name), f.dtype).alias(f.name)
                            names.append(f.name)
            params = sorted((int(m.group(1)), n) for n in names if (m := PARAM.fullmatch(n)))
            if params and "Data" not in exprs:  # unnamed <Data>: also one text, as the EVTX reader has it
                values = [exprs[n] for _, n in params]
                exprs["Data"] = pl.when(pl.any_horizontal([v.is_not_null() for v in values])).then(
                    pl.concat_str(values, separator=SEP, ignore_nulls=True)).alias("Data")
                names.append("Data")
        else:
            for f in schema.fields:
                if f.name not in NXLOG_META and f.name not in exprs:
                    exprs[f.name] = text_of(pl.col("d").struct.field(f.name), f.dtype).alias(f.name)
                    names.append(f.name)
        if not exprs:  # nothing to read: still one row per record
            exprs["System.Channel"] = pl.repeat(None, decoded.len(), dtype=pl.String).alias("System.Channel")
        return decoded.to_frame("d").select(list(exprs.values())), names


def _sub(dtype, name: str):
    if not isinstance(dtype, pl.Struct):
        return None
    for f in dtype.fields:
        if f.name == name:
            return f.dtype
    return None
