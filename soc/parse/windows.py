"""Windows events to typed frames, routed by channel and event id (shared by every Windows reader).

A reader (EVTX today; Winlogbeat and NXLog JSON lines can feed the same) hands over the records of one
(channel, event id) group as raw string fields: ``System.*`` for the record's header (``System.Channel``,
``System.EventID``, ``System.TimeCreated``, ...) and the ``EventData`` (or ``UserData``) fields under their
own names. Each group becomes one frame of the ``windows`` family, keyed ``(windows, <dataset>.<event id>)``:
a Security 4624 frame, a Sysmon 1 frame, ... Events of one channel and id share their fields, so each
frame is dense; one frame for every event would be a wide sparse table, far slower to build and to scan
(DESIGN: ~40x). Sigma rules for Windows select by channel and event id first, which the keys give them.

Every frame has the family's ECS columns (typed by the spec's ``columns:`` plus those of the matching
``windows.events`` entry) and then every EventData field under its original name with the exact value
the log holds (``CommandLine``, ``TargetUserName``, ...), so rules written for Windows fields match.
Spec options (``windows:``):

``datasets``
    ``event.dataset`` by channel; other channels get ``windows.`` + the channel in lower case.
``events_from``
    a spec file whose ``datasets`` and ``events`` to use (Winlogbeat and NXLog use the EVTX spec's).
``events``
    entries ``{channel, ids, columns, constants, derive}``: the ECS mapping of those event ids.
    ``derive`` makes raw fields from others for the rules to read: ``{hex: F}`` reads ``0x``-prefixed
    hexadecimal (Security's process ids) as a decimal string; ``{user: F}`` and ``{domain: F}`` split
    ``DOMAIN\\user`` (Sysmon's ``User``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime, timezone
from functools import cache, cached_property

import numpy as np
import polars as pl

from soc.parse.batch import ParseResult, empty_dead
from soc.parse.columns import RAW, Context, Rule, SpecError, apply, rules_from_spec
from soc.parse.eager import constant, nulls, prefixed, put_columns, set_rows
from soc.schema import columns as family_columns
from soc.schema import conform
from soc.schema.families import split_addresses

FAMILY = "windows"
DERIVATIONS = ("hex", "user", "domain")
_UNSAFE = re.compile(r"[^a-z0-9]+")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SPLIT = tuple(f"{side}.{part}" for side in ("source", "destination") for part in ("ip", "address", "domain"))
ADDRESSES = set(SPLIT)
_MAPPINGS: dict[int, tuple[object, WindowsMapping]] = {}


def mapping_of(spec) -> WindowsMapping:
    """The spec's mapping, built once per loaded spec (an engine is made per input file)."""
    got = _MAPPINGS.get(id(spec))
    if got is None or got[0] is not spec:
        got = _MAPPINGS[id(spec)] = (spec, WindowsMapping(spec))
    return got[1]


@dataclass(frozen=True)
class EventMap:
    """The ECS mapping of some event ids of one channel."""

    channel: str
    ids: tuple[int, ...]
    rules: tuple[Rule, ...]
    constants: dict
    derive: tuple[tuple[str, str, str], ...]  # (new raw field, derivation, source field)
    own: tuple[Rule, ...] = ()  # the entry's own rules and constants (the spec's are typed per batch)
    own_constants: tuple[tuple[str, object], ...] = ()


class WindowsMapping:
    """A spec's Windows mapping: datasets by channel, and the rules and constants of each event group."""

    def __init__(self, spec):
        self.spec = spec
        opts = spec.options
        if opts.get("events_from"):  # another spec's datasets and events (JSON forwarders share the EVTX ones)
            from soc.content import content_dir
            from soc.parse.spec import load_spec

            other = load_spec(content_dir("parsers") / str(opts["events_from"])).options
            opts = {"datasets": other.get("datasets"), "events": other.get("events"), **opts}
        self.datasets: dict[str, str] = {str(k): str(v) for k, v in (opts.get("datasets") or {}).items()}
        nulls = tuple(spec.columns[0].nulls) if spec.columns else ("-", "")
        self.events: dict[tuple[str, int], EventMap] = {}
        self._sets_address: dict[tuple[str | None, str | None], bool] = {}
        self._dataset_ones: dict[str | None, pl.Series] = {}
        self._keys: dict[tuple[str | None, str | None], tuple[str, str]] = {}
        self._core = family_columns(FAMILY)
        for i, raw in enumerate(opts.get("events") or []):
            where = f"{spec.path}: windows.events[{i}]"
            unknown = set(raw) - {"channel", "ids", "columns", "constants", "derive"}
            if unknown or "channel" not in raw or "ids" not in raw:
                raise SpecError(f"{where}: needs channel and ids; unknown keys {sorted(unknown)}")
            derive = []
            for name, how in (raw.get("derive") or {}).items():
                (kind, source), = how.items()
                if kind not in DERIVATIONS:
                    raise SpecError(f"{where}: derive {name}: unknown {kind!r} (known: {DERIVATIONS})")
                derive.append((str(name), kind, str(source)))
            try:
                own = rules_from_spec(raw.get("columns") or {}, nulls)
            except SpecError as exc:
                raise SpecError(f"{where}: {exc}") from None
            rules = {r.target: r for r in spec.columns}
            rules.update({r.target: r for r in own})
            consts = {**spec.constants, **(raw.get("constants") or {})}
            ids = raw["ids"] if isinstance(raw["ids"], list) else [raw["ids"]]
            extra = raw.get("constants") or {}
            emap = EventMap(str(raw["channel"]), tuple(int(x) for x in ids),
                            tuple(r for t, r in rules.items() if t not in consts), consts, tuple(derive),
                            tuple(r for r in own if r.target not in extra), tuple(extra.items()))
            for event_id in emap.ids:
                self.events[(emap.channel, event_id)] = emap

    @cached_property
    def default(self) -> EventMap:
        rules = tuple(r for r in self.spec.columns if r.target not in self.spec.constants)
        return EventMap("", (), rules, dict(self.spec.constants), ())

    def dataset(self, channel: str | None) -> str:
        """``event.dataset`` of a channel."""
        if channel in self.datasets:
            return self.datasets[channel]
        return "windows." + (_UNSAFE.sub("_", (channel or "unknown").lower()).strip("_") or "unknown")

    def key(self, channel: str | None, event_id: str | None) -> tuple[str, str]:
        """The frame key of a group: ``(windows, <dataset>.<event id>)``."""
        return FAMILY, f"{self.dataset(channel)}.{event_id if event_id is not None else 'none'}"

    def typed(self, raw: pl.DataFrame, data: list[str], channel: str | None, event_id: str | None,
              ctx: Context, origin: dict[str, pl.Series]) -> tuple[pl.DataFrame, pl.Series]:
        """The typed frame of one group and, per record, why it is rejected (null if it is not).

        ``raw`` holds the ``System.*`` fields and the EventData fields named in ``data`` (strings).
        """
        emap = self._entry(channel, event_id) or self.default
        derived = [derive(pl.col(source), kind).alias(name) for name, kind, source in emap.derive
                   if source in raw.columns]
        fields = raw.with_columns(derived) if derived else raw
        # rules never read a year-less stamp here: one context for every file keeps their expressions cached
        same = Context("", ctx.zone, EPOCH)
        typed, reason = apply(prefixed(fields, RAW), list(emap.rules), same,
                              {"event.dataset": self.dataset(channel), **emap.constants})
        core = family_columns(FAMILY)
        extra = {c: typed.schema[c] for c in typed.columns if c not in core}
        taken = set(core) | set(extra)
        own = {}
        for name in data:  # EventData under its own name (a clash with an ECS name gets a prefix)
            column = name if name not in taken else f"winlog.event_data.{name}"
            extra[column] = pl.String
            own[column] = raw.get_column(name)
        return conform(typed.with_columns(**own, **origin), FAMILY, extra), reason.alias("reason")

    def base(self, raw: pl.DataFrame, ctx: Context, origin: dict[str, pl.Series],
             parsed: dict[str, pl.Series] | None = None) -> tuple[pl.DataFrame, pl.Series]:
        """The spec's own columns (the ``System`` fields) of a whole batch, typed in one query, with the
        family's columns; ``event.dataset`` is set per group by ``event``. ``parsed`` holds ISO 8601 raw
        fields the engine has already converted, every value of them (``TimeCreated``, the costliest
        column: ~75% of the query as four ``strptime`` and a regex): a plain ``iso8601`` rule of such a
        field takes that column, whose values are present and valid, so its fallback, null markers and
        reasons cannot apply."""
        emap = self.default
        done = {r.target: parsed[r.source] for r in emap.rules if parsed and r.source in parsed and _plain_iso(r)}
        rules = [r for r in emap.rules if r.target not in done]
        typed, reason = apply(prefixed(raw, RAW), rules, Context("", ctx.zone, EPOCH), emap.constants)
        core = family_columns(FAMILY)
        extra = {c: t for c, t in typed.schema.items() if c not in core}
        return conform(put_columns(typed, {**done, **origin}), FAMILY, extra), reason.alias("reason")

    def event(self, base: pl.DataFrame, reason: pl.Series, raw: pl.DataFrame | dict[str, pl.Series],
              data: list[str], channel: str | None, event_id: str | None, ctx: Context,
              own: tuple[dict[str, pl.Series], pl.Series] | None = None, index: dict[str, int] | None = None,
              ) -> tuple[pl.DataFrame, pl.Series]:
        """One group's frame: its rows of the batch's ``base`` frame, then the columns of its
        ``windows.events`` entry (if any) and its EventData fields under their own names. ``raw``: the
        fields, a frame or ``group_columns``'s Series by name; ``own``: the entry's columns and reasons typed
        already (``groups`` types those of a batch's groups together); ``index``: ``base``'s columns by name,
        the batch's (given, ``base`` is a slice of the caller's own, changed in place)."""
        emap = self._entry(channel, event_id)
        core = self._core
        height = base.height
        # Series put together without a query: a group costs no Polars plan of its own (~170 a batch)
        columns = {"event.dataset": self._dataset_one(channel, core["event.dataset"]).new_from_index(0, height)}
        if emap is not None:
            typed, why = own if own is not None else self._own(emap, raw, height, ctx)
            for c, column in typed.items():
                columns[c] = column.cast(core[c]) if c in core else column
            if why.null_count() < why.len():  # the first reason of each record
                first = set_rows(reason)
                reason = why.alias("reason") if first is None else reason.zip_with(pl.Series(first), why)
        taken = index or {c: i for i, c in enumerate(base.columns)}
        ours = set(columns)
        get = raw.__getitem__ if isinstance(raw, dict) else raw.get_column
        for name in data:  # EventData under its own name (a clash with an ECS name gets a prefix)
            column = name if name not in taken and name not in ours else f"winlog.event_data.{name}"
            columns[column] = get(name)
        # the base frame's columns stay where they are (replaced in place), the group's own come after:
        # no frame rebuilt column by column
        return (put_columns(base, columns) if index is None else _put(base, columns, index)), reason

    def _own(self, emap: EventMap, raw: pl.DataFrame | dict[str, pl.Series], height: int, ctx: Context,
             ) -> tuple[dict[str, pl.Series], pl.Series]:
        """The columns of one group's ``windows.events`` entry (constants last) and why each record is rejected,
        typed in a query of the group's own."""
        table = fields_frame(raw, height)
        # the derived fields are made in the typing's own query
        derived = {RAW + name: derive(pl.col(RAW + source), kind) for name, kind, source in emap.derive
                   if source in table.columns}
        typed, why = apply(prefixed(table, RAW), list(emap.own), Context("", ctx.zone, EPOCH),
                           dict(emap.own_constants), derived)
        return {c: typed.get_column(c) for c in typed.columns}, why

    def _dataset_one(self, channel: str | None, dtype: pl.DataType) -> pl.Series:
        """``event.dataset`` of a channel as a one-value Series of the family's type, made once a channel
        (a Series built and cast per group cost ~40 us of ~300)."""
        got = self._dataset_ones.get(channel)
        if got is None:
            got = self._dataset_ones[channel] = pl.Series("event.dataset", [self.dataset(channel)],
                                                          pl.String).cast(dtype)
        return got

    def sets_address(self, channel: str | None, event_id: str | None) -> bool:
        """Whether the ``windows.events`` entry of (channel, event id) sets an address (cached)."""
        key = (channel, event_id)
        got = self._sets_address.get(key)
        if got is None:
            emap = self._entry(channel, event_id)
            targets = {r.target for r in emap.own} | {k for k, _ in emap.own_constants} if emap else set()
            got = self._sets_address[key] = bool(targets & ADDRESSES)
        return got

    def groups(self, base: pl.DataFrame, reason: pl.Series, bad: np.ndarray, items: list[GroupItem], ctx: Context,
               ) -> list[ParseResult]:
        """``group`` of each of a batch's groups (``items``: ``at, size, raw, data, channel, event_id, dead_of``),
        the ``windows.events`` entries' columns of groups whose entries agree typed in one query (``_typed``)."""
        # the addresses split once a set (``_typed``) when the batch's own columns hold none (as ``group`` sees them)
        split = all(base.get_column(c).null_count() == base.height for c in SPLIT if c in base.columns)
        owns = self._typed(items, ctx, split and all(c in base.columns for c in SPLIT))
        batch = ({c: i for i, c in enumerate(base.columns)}, bool(bad.any()))
        return [self.group(base, reason, bad, *item[:6], ctx, item[6], owns.get(i), batch)
                for i, item in enumerate(items)]

    @cached_property
    def _sets(self) -> tuple[list[_EntrySet], dict[int, tuple[int, dict[str, str], dict[str, str]]]]:
        """The entries in sets typed together, and per entry (by id) its set, its fields by slot and its targets'
        columns in the set's query (``_EntrySet.place``)."""
        sets: list[_EntrySet] = []
        slots_of: dict[int, tuple[int, dict[str, str], dict[str, str]]] = {}
        for emap in {id(e): e for e in self.events.values()}.values():
            if not emap.own or any(r.required for r in emap.own):
                continue
            made = {name: (kind, source) for name, kind, source in emap.derive}
            sigs = {r.target: (_typing_of(r), tuple(made.get(c.source, ("",))[0] for c in r.chain)) for r in emap.own}
            checked = [r.target for r in emap.own if r.checked]
            at, keys = next(((i, k) for i, st in enumerate(sets) if (k := st.place(sigs, checked)) is not None),
                            (len(sets), None))
            if keys is None:
                sets.append(_EntrySet())
                keys = sets[at].place(sigs, checked)
            pairs: dict[str, str] = {}
            for r in emap.own:
                key = keys[r.target]
                names = [f"{key}@{k}" for k in range(len(r.chain))]
                derived = {}
                for name, c in zip(names, r.chain, strict=True):
                    if c.source in made:
                        kind, source = made[c.source]
                        pairs[RAW + name + "<"] = source
                        derived[RAW + name] = (kind, RAW + name + "<", key)
                    else:
                        pairs[RAW + name] = c.source
                sets[at].add(key, sigs[r.target], _renamed(r, names, key), derived)
            slots_of[id(emap)] = (at, pairs, keys)
        return sets, slots_of

    def _typed(self, items: list[GroupItem], ctx: Context, split: bool = False,
               ) -> dict[int, tuple[dict[str, pl.Series], pl.Series, bool]]:
        """The entries' columns and reasons of the groups (by index in ``items``) whose entry shares a set with
        another group's: the set's rules typed in one query over their rows one after the other (a query per
        group cost ~0.6 ms, ~40% of a chunk's per-group work); a group alone in its set is typed by ``event``.
        ``split``: the addresses of groups whose entry sets one are split here too, once a set (``split_addresses``
        is ~5 queries: ~0.45 ms a group), with their ``*.address`` columns (True the third of the group's tuple)."""
        sets, slots_of = self._sets
        members: dict[int, list] = {}
        for i, (_, size, raw, _, channel, event_id, _) in enumerate(items):
            emap = self._entry(channel, event_id)
            got = slots_of.get(id(emap)) if emap is not None else None
            if got is None:
                continue
            fields = raw if isinstance(raw, dict) else {c: raw.get_column(c) for c in raw.columns}
            if any(name in fields and source not in fields for name, _, source in emap.derive):
                continue  # a field named as a derived one and nothing to derive it from: it is read as it is
            members.setdefault(got[0], []).append((i, emap, size, fields, got[1], got[2]))
        out = {}
        for at, group in members.items():
            if len(group) < 2:
                continue
            frames = []
            for _, _, size, fields, pairs, _ in group:  # a group's slots; those it lacks are null (a diagonal concat)
                columns = [fields[source].alias(slot) for slot, source in pairs.items() if source in fields]
                frames.append(pl.DataFrame(columns or [nulls(next(iter(pairs)), pl.String, size)]))
            table = pl.concat(frames, how="diagonal", rechunk=False)
            rules, derived, needed = sets[at].typing(frozenset(k for *_, keys in group for k in keys.values()))
            if absent := [slot for slot in needed if slot not in table.columns]:  # a derivation reads them
                table = table.hstack([nulls(slot, pl.String, table.height) for slot in absent])
            typed, why = apply(table, rules, Context("", ctx.zone, EPOCH), None, derived)
            addressed: dict[str, list[pl.Series]] = {c: [] for c in SPLIT}  # the address groups' rows, in order
            offset = 0
            for i, emap, size, _, _, keys in group:
                part = typed.slice(offset, size)
                cols = {r.target: part.get_column(keys[r.target]) for r in emap.own}
                cols.update((k, constant(k, v, size)) for k, v in emap.own_constants)
                address = split and self.sets_address(items[i][4], items[i][5])
                if address:  # its own columns, the others null as the batch's
                    for c in SPLIT:
                        addressed[c].append(cols[c].alias(c) if c in cols else nulls(c, pl.String, size))
                out[i] = (cols, why.slice(offset, size), address)
                offset += size
            if addressed[SPLIT[0]]:  # split once a set: split_addresses is ~5 small queries
                done = split_addresses(pl.DataFrame([pl.concat(addressed[c], rechunk=False) for c in SPLIT]))
                offset = 0
                for i, _, size, _, _, _ in group:
                    if out[i][2]:
                        out[i][0].update((c, done.get_column(c).slice(offset, size)) for c in SPLIT)
                        offset += size
        return out

    def _entry(self, channel: str | None, event_id: str | None) -> EventMap | None:
        """The ``windows.events`` entry of (channel, event id), None if it has none (an id that is no number: -1)."""
        try:
            number = int(event_id) if event_id is not None else -1
        except ValueError:
            number = -1
        return self.events.get((channel or "", number))

    def group(self, base: pl.DataFrame, reason: pl.Series, bad: np.ndarray, at: int, size: int,
              raw: pl.DataFrame | dict[str, pl.Series], data: list[str], channel: str | None, event_id: str | None,
              ctx: Context, dead_of: Callable[[np.ndarray, pl.Series], pl.DataFrame],
              own: tuple[dict[str, pl.Series], pl.Series, bool] | None = None,
              batch: tuple[dict[str, int], bool] | None = None) -> ParseResult:
        """Rows ``at .. at + size`` of a walked batch (one (channel, event id) group; ``base``/``reason`` typed
        for the whole batch, ``bad`` its rows with a reason) as the group's frame and dead letters, the EVTX and
        Windows JSON engines alike: ``dead_of(rows, reasons)`` makes the dead letters of the group's ``rows``
        (numbers within the group). A group whose ``windows.events`` entry sets an address gets its
        ``*.address`` and ``*.domain`` as ``conform`` makes them (``event`` types the entry's columns after the
        family's were conformed, so they are split here, unless ``own``, the columns typed already, were).
        ``batch``: what ``groups`` works out once a batch (``base``'s columns by name, whether ``bad`` has any)."""
        group_reason = reason.slice(at, size)
        index, any_bad = batch if batch is not None else (None, True)
        frame, reason = self.event(base.slice(at, size), group_reason, raw, data, channel, event_id, ctx,
                                   own[:2] if own is not None else None, index)
        if self.sets_address(channel, event_id) and not (own is not None and own[2]):
            frame = split_addresses(frame)
        key = self._keys.get((channel, event_id))
        if key is None:
            key = self._keys[(channel, event_id)] = self.key(channel, event_id)
        rows = None if reason is group_reason and not (any_bad and bad[at: at + size].any()) else set_rows(reason)
        if rows is None:
            return ParseResult({key: frame}, _no_dead(), size)
        keep = ~pl.Series(rows)
        return ParseResult({key: frame.filter(keep)}, dead_of(rows, reason.filter(~keep)), size)


GroupItem = tuple[int, int, "pl.DataFrame | dict[str, pl.Series]", list[str], "str | None", "str | None",
                  Callable[[np.ndarray, pl.Series], pl.DataFrame]]


class _EntrySet:
    """Entries typed in one query: a rule a column (its fields renamed to slots ``<column>@<k>``) and the
    derivations of slots (``<slot>`` from ``<slot><``)."""

    def __init__(self) -> None:
        self.sigs: dict[str, tuple] = {}  # column -> its rule's typing (the rule without its fields)
        self.rules: dict[str, Rule] = {}
        self.made: dict[str, tuple[str, str, str]] = {}  # slot -> (derivation, slot read, column)
        self._typing: dict[frozenset[str], tuple[list[Rule], dict[str, pl.Expr], list[str]]] = {}

    def place(self, sigs: dict[str, tuple], checked: list[str]) -> dict[str, str] | None:
        """The column of each target of an entry (``sigs``: its rules' typings by target), or None when it does
        not fit. A target goes to the column typing it the same way (from whichever field); a target the set
        types another way gets a column of its own (``<target>@@<n>``), but only if its rule cannot reject a
        record: a reason names the rule's target. The ``checked`` targets (those that can) the set has are
        first, in the set's order: a record's first reason is then the same."""
        keys = {}
        for t, sig in sigs.items():
            if self.sigs.get(t, sig) == sig:
                keys[t] = t
            elif t in checked:
                return None
            else:
                aliases = [k for k in self.sigs if k.startswith(t + "@@")]
                keys[t] = next((k for k in aliases if self.sigs[k] == sig), f"{t}@@{len(aliases) + 1}")
        order = {t: i for i, t in enumerate(self.sigs) if self.rules[t].checked}
        known = [order[t] for t in checked if t in order]
        return keys if all(t in order for t in checked[:len(known)]) and known == sorted(known) else None

    def add(self, key: str, sig: tuple, rule: Rule, derived: dict[str, tuple[str, str, str]]) -> None:
        self.sigs.setdefault(key, sig)
        self.rules.setdefault(key, rule)
        self.made.update(derived)

    def typing(self, targets: frozenset[str]) -> tuple[list[Rule], dict[str, pl.Expr], list[str]]:
        """The rules of ``targets`` (the columns of the groups at hand: the others' would be null), the
        derivations they read, and the slots those read (present even when no group has them: the expressions
        name them); made once for each such set of columns."""
        got = self._typing.get(targets)
        if got is None:
            made = {slot: m for slot, m in self.made.items() if m[2] in targets}
            got = self._typing[targets] = ([r for t, r in self.rules.items() if t in targets],
                                           {slot: derive(pl.col(source), kind) for slot, (kind, source, _) in
                                            made.items()},
                                           [source for _, source, _ in made.values()])
        return got


_FIELDS = tuple(f.name for f in dataclass_fields(Rule) if f.name not in ("target", "source", "fallback"))


def _typing_of(rule: Rule) -> tuple:
    """How ``rule`` types its field, the field aside (its fallbacks' too): rules alike type alike."""
    return (*(getattr(rule, name) for name in _FIELDS), _typing_of(rule.fallback) if rule.fallback else None)


def _put(frame: pl.DataFrame, columns: dict[str, pl.Series], index: dict[str, int]) -> pl.DataFrame:
    """``put_columns`` on a frame of the caller's own (changed in place, not copied) whose columns by name
    (``index``) are known: a group's slice of its batch (the copy and the index cost ~10 us of a group's ~50)."""
    new = []
    for name, column in columns.items():
        column = column if column.name == name else column.alias(name)
        at = index.get(name)
        if at is None:
            new.append(column)
        else:
            frame.replace_column(at, column)
    return frame.hstack(new, in_place=True) if new else frame


def _renamed(rule: Rule, sources: list[str], target: str) -> Rule:
    """``rule`` reading ``sources`` (one for it and each fallback, in order) into column ``target``."""
    fallback = _renamed(rule.fallback, sources[1:], rule.fallback.target) if rule.fallback is not None else None
    return replace(rule, target=target, source=sources[0], fallback=fallback)


def group_columns(cells: pl.Series, names: list[str], columns: np.ndarray, at: int, size: int,
                  system: Collection[str]) -> tuple[dict[str, pl.Series], list[str]]:
    """A walked group's own fields (not System ones): field ``columns[j]`` is ``size`` cells from
    ``at + j * size`` of ``cells``; them by name (not yet named: a frame is made of them only for a group
    whose ``windows.events`` entry types some, ~45 us a group saved on the others) and their names, in order."""
    cols = {}
    for j, k in enumerate(columns.tolist()):
        name = names[k]
        if name not in system:
            cols[name] = cells.slice(at + j * size, size)
    return cols, list(cols)


def fields_frame(raw: pl.DataFrame | dict[str, pl.Series], height: int) -> pl.DataFrame:
    """A group's fields (``group_columns``'s, or a frame already) as a frame."""
    if isinstance(raw, pl.DataFrame):
        return raw
    return pl.DataFrame([s.alias(n) for n, s in raw.items()]) if raw else pl.DataFrame(height=height)


@cache
def _no_dead() -> pl.DataFrame:
    """The empty dead-letter frame of every group without one (shared: frames are not changed in place)."""
    return empty_dead()


def _plain_iso(rule: Rule) -> bool:
    """Whether ``rule`` is an ISO 8601 conversion of its raw field as it is (nothing replaced or mapped)."""
    return rule.type == "iso8601" and not (rule.lower or rule.map or rule.replace or rule.replace_regex
                                           or rule.strip or rule.extract)


def derive(values: pl.Expr, kind: str) -> pl.Expr:
    """A raw field made from another (see the module's ``derive``)."""
    if kind == "hex":
        hexa = values.str.starts_with("0x") | values.str.starts_with("0X")
        return pl.when(hexa).then(values.str.slice(2).str.to_integer(base=16, strict=False).cast(pl.String)
                                  ).otherwise(values)
    parts = values.str.splitn("\\", 2).struct
    if kind == "user":
        return pl.coalesce(parts.field("field_1"), parts.field("field_0"))
    return pl.when(parts.field("field_1").is_not_null()).then(parts.field("field_0"))
