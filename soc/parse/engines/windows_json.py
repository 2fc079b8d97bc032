"""Engine for Windows events forwarded as JSON lines: Winlogbeat (ECS, ``winlog.*``) and NXLog
(``im_msvistalog`` with ``to_json()``: ``EventID``, ``Channel``, ``Hostname``, ... at the top level).

The generic ``json`` engine reads the fields a spec names; Windows events carry fields of their own per
event id (every EventData field must be kept under its name), so this engine hands the records of each
(channel, event id) group to ``soc.parse.windows`` under the same raw names as the EVTX engine
(``System.*`` and the EventData names). Options (spec ``windows_json:``): ``layout`` (``winlogbeat`` or
``nxlog``), plus those of ``soc.parse.windows``. Each line is checked first (``json_kernel.validate``); a
line that is not a JSON object is dead-lettered with the reason, a blank line is skipped.

Two ways to the same frames. The fast one (``_walked``): a Numba walker (``windows_json_kernel``) reads
every record of the chunk in one pass, the System fields are typed by one query for the whole chunk
(``WindowsMapping.base``) and each group's frame is made of slices (``WindowsMapping.event``): ~200 groups
of tens of lines in a 16 MB chunk cost no query each (they cost ~5 ms each by the other way). The slower
one (``_group``), for a chunk holding a value the walker does not read as Polars' decoder does (a float, a
boolean, an object or list among the fields, an escaped key): each group decoded with an inferred schema.
Data columns come in order of first appearance (the decoder's order follows a hash set when the records
of a group differ in their fields).
"""

from __future__ import annotations

import re
from functools import cache
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa

from soc import jit
from soc.parse import evtx_kernel as E
from soc.parse import json_kernel as K
from soc.parse import windows_json_kernel as W
from soc.parse import windows_json_plain as P
from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import SpecError
from soc.parse.eager import set_rows
from soc.parse.engines.base import Engine, merge
from soc.parse.engines.evtx import SEP, _strings, text_of
from soc.parse.windows import fields_frame, group_columns, mapping_of
from soc.schema.time import UTC, localize_series

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

    def prepare(self, batch: LineBatch) -> None:
        """The check and the walk of the chunk's lines (Numba, mostly without the GIL), a chunk ahead."""
        batch.windows_json = self._walk(batch)

    def parse(self, batch: LineBatch) -> ParseResult:
        code, good, walk = getattr(batch, "windows_json", None) or self._walk(batch)
        parts: list[ParseResult] = []
        bad = (code != K.OK) & (code != K.BLANK)
        if bad.any():
            reasons = pl.Series("reason", code).replace_strict(K.ERRORS, default=None, return_dtype=pl.String)
            parts.append(ParseResult({}, batch.dead(bad, reasons), 0))
        if good.size:
            lines = batch.take(good)
            walked = None if walk is None else self._walked(lines, walk)
            if walked is not None:
                return merge(batch.n, parts + walked)
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

    def _walk(self, batch: LineBatch) -> tuple[np.ndarray, np.ndarray, Walk | None]:
        """Each line's check code, the lines that are JSON objects, and what the walker found in them (None
        when a record holds a value the walker does not read as the decoder does). A chunk too small to repay
        Numba's fixed cost is read in plain Python (``windows_json_plain``) unless that cannot tell."""
        if jit.plain(guess := batch.n * P.US_PER_RECORD):
            began = jit.cpu_us()
            try:
                system, _, _, root_data = LAYOUTS[self.layout]
                return P.walk(batch, system, _paths(self.layout), root_data, CHANNEL, EVENT_ID, self.layout == "nxlog")
            except P.Defer:
                pass
            finally:
                jit.charge(jit.cpu_us() - began - guess)
        code, _ = K.validate(batch.buf, batch.starts, batch.ends)
        good = np.flatnonzero(code == K.OK)
        return code, good, (self._kernels(batch.take(good)) if good.size else None)

    def _kernels(self, lines: LineBatch) -> Walk | None:
        system, data, skip, root_data = LAYOUTS[self.layout]
        table = _table(self.layout)
        buf, n = lines.buf, lines.n
        ss = np.full((len(system), n), -1, np.int64)
        se = np.full((len(system), n), -1, np.int64)
        err = np.zeros(n, np.int8)
        extra = np.empty(max(buf.size, 1), np.uint8)  # unescaped strings; pages never written take no memory
        fields = W.walk_all(buf, lines.starts, lines.ends, extra, ss, se, err, root_data, table)
        if err.any():
            return None
        size = 1024
        while True:
            ids, name_rows = E.name_ids(buf, fields, size)
            if ids.size == fields.shape[0]:
                break
            size *= 4
        size = 4096
        while True:
            groups, first = E.group_ids(buf, extra, ss, se, err, CHANNEL, EVENT_ID, size)
            if groups.size == n:
                break
            size *= 4
        size = E._table_size(min(fields.shape[0], 16 * (name_rows.size + first.size)))
        while True:
            order, starts, columns, col_starts, cell_starts, cs, ce = E.layout(groups, first.size, fields, ids,
                                                                               name_rows.size, size)
            if order.size or not fields.shape[0] or not first.size:
                break
            size *= 4
        names = [bytes(buf[fields[f, 1]: fields[f, 2]]).decode() for f in name_rows]
        time = list(system).index("System.TimeCreated")
        if self.layout == "winlogbeat" and (ss[time] < 0).all():
            # no winlog.time_created (Winlogbeat 7): the spec's rule falls back to @timestamp for every record
            time = list(system).index("Record.Timestamp")
        a, b = ss[time, order], se[time, order]
        us, ok = (W.wall_times if self.layout == "nxlog" else E.utc_times)(buf, a, b)
        return Walk(extra, names, order, starts, columns, col_starts, cell_starts,
                    E.views(buf, extra, ss[:, order].ravel(), se[:, order].ravel()), E.views(buf, extra, cs, ce),
                    us if ok.all() else None)

    def _walked(self, lines: LineBatch, w: Walk) -> list[ParseResult] | None:
        """The chunk's records as the walker found them (``windows_json_kernel``), the System fields typed
        in one query for the whole chunk (``WindowsMapping.base``), then each (channel, event id) group's
        frame made of slices of those columns and of one block of cells (``WindowsMapping.event``): no
        query of its own but for its ``windows.events`` entry. None when an event id is not digits (the
        chunk then goes the slower way, group by group)."""
        system = LAYOUTS[self.layout][0]
        order, starts, columns, col_starts, cell_starts = w.order, w.starts, w.columns, w.col_starts, w.cell_starts
        names = w.names
        m = order.size
        data_buf, extra_buf = lines._arrow, pa.py_buffer(w.extra)
        cols = _strings(w.system, data_buf, extra_buf)
        raw = pl.DataFrame([cols.slice(i * m, m).alias(name) for i, name in enumerate(system)])
        ids_text = raw.get_column("System.EventID")
        if ids_text.null_count() < m and not ids_text.str.contains(r"^\d+$").all():  # as the old key's regex
            return None
        take = pl.Series(order, dtype=pl.UInt32)
        origin = {k: v.gather(take) for k, v in lines.origin().items()}
        base, base_reason = self.mapping.base(raw, self.ctx, origin, self._times(w.times))
        cells = _strings(w.cells, data_buf, extra_buf)
        base_bad = set_rows(base_reason)
        base_bad = np.zeros(m, np.bool_) if base_bad is None else base_bad
        parts = []
        heads = pl.Series(starts[:-1], dtype=pl.UInt32)
        channels = raw.get_column("System.Channel").gather(heads).to_list()
        event_ids = raw.get_column("System.EventID").gather(heads).to_list()
        for g in range(starts.size - 1):
            a, size = int(starts[g]), int(starts[g + 1] - starts[g])
            channel, event_id = channels[g], event_ids[g]
            group, data_names = group_columns(cells, names, columns[col_starts[g]: col_starts[g + 1]],
                                              int(cell_starts[g]), size, system)
            if self.layout == "winlogbeat":
                group, data_names = _unnamed(group, data_names, size)

            def dead_of(rows: np.ndarray, reasons: pl.Series, a: int = a, size: int = size) -> pl.DataFrame:
                taken = order[a: a + size][rows]
                return lines.take(taken).dead(np.ones(taken.size, np.bool_), reasons)

            parts.append((a, size, group, data_names, channel, event_id, dead_of))
        return self.mapping.groups(base, base_reason, base_bad, parts, self.ctx)

    def _times(self, us: np.ndarray | None) -> dict[str, pl.Series] | None:
        """``System.TimeCreated`` as the spec's ISO 8601 rule types it, from the kernel's reading of every
        record (NXLog: wall-clock time in the rule's zone; Winlogbeat: UTC), for ``WindowsMapping.base``."""
        if us is None:
            return None
        if self.layout == "winlogbeat":
            return {"System.TimeCreated": pl.Series("System.TimeCreated", us).cast(UTC)}
        zone = next((r.zone for r in self.mapping.default.rules if r.source == "System.TimeCreated"), None)
        naive = pl.Series("System.TimeCreated", us).cast(pl.Datetime("us"))
        times = localize_series(naive, zone or self.ctx.zone)
        return None if times.null_count() else {"System.TimeCreated": times}  # a DST gap: the rule says why

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


class Walk(NamedTuple):
    """What the kernels found in a chunk's records (``evtx_kernel.layout``), and the string views of the
    System fields (records by group) and of the groups' cells."""

    extra: np.ndarray
    names: list[str]
    order: np.ndarray
    starts: np.ndarray
    columns: np.ndarray
    col_starts: np.ndarray
    cell_starts: np.ndarray
    system: tuple[np.ndarray, np.ndarray]
    cells: tuple[np.ndarray, np.ndarray]
    # System.TimeCreated of every record (microseconds; Winlogbeat's @timestamp where no record has the
    # former, which the spec's rule then reads), if the kernel read them all
    times: np.ndarray | None


# per layout: System raw name -> path, objects whose members are fields, names that are not fields, and
# whether the record's own members are fields
LAYOUTS = {
    "winlogbeat": (WINLOGBEAT, [("winlog", "event_data"), ("winlog", "user_data")], set(), False),
    "nxlog": (NXLOG, [], NXLOG_META - {p[0] for p in NXLOG.values()}, True),
}
CHANNEL, EVENT_ID = list(NXLOG).index("System.Channel"), list(NXLOG).index("System.EventID")
assert (list(WINLOGBEAT).index("System.Channel"), list(WINLOGBEAT).index("System.EventID")) == (CHANNEL, EVENT_ID)


@cache
def _paths(layout: str) -> dict:
    system, data, skip, _ = LAYOUTS[layout]
    return P.tree(system, data, skip)


@cache
def _table(layout: str) -> K.PathTable:
    system, data, skip, _ = LAYOUTS[layout]
    return W.table(system, data, skip)


def _unnamed(group: dict[str, pl.Series], names: list[str], height: int) -> tuple[dict[str, pl.Series], list[str]]:
    """Winlogbeat's param1..paramN (unnamed ``<Data>``) also joined one per line as ``Data`` (``flatten``)."""
    params = sorted((int(m.group(1)), n) for n in names if (m := PARAM.fullmatch(n)))
    if not params or "Data" in names:
        return group, names
    values = [pl.col(n) for _, n in params]
    data = fields_frame(group, height).select(pl.when(pl.any_horizontal([v.is_not_null() for v in values])).then(
        pl.concat_str(values, separator=SEP, ignore_nulls=True)).alias("Data")).to_series()
    return {**group, "Data": data}, [*names, "Data"]


def _sub(dtype, name: str):
    if not isinstance(dtype, pl.Struct):
        return None
    for f in dtype.fields:
        if f.name == name:
            return f.dtype
    return None
