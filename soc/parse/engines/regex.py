"""Engine for line logs whose fields are told apart only by a regex (padded columns, optional fields).

For formats the literal-split engines cannot read: runs of padding spaces, a field that is sometimes
blank (the Windows DNS debug log's ``R`` of responses), a line layout that depends on the server's
locale. Each pattern is one Rust regex (linear time, no backtracking) with named groups, run by Polars
``str.extract_groups`` on the lines no earlier pattern took; a group's name is the raw field column rules
read (dots are allowed: ``(?P<source.ip>...)``).

Options (spec ``regex:``):

- ``events``: a list tried in order, each ``{family, dataset, columns, constants, patterns}`` where a
  pattern is ``{match: REGEX, constants: {...}}`` (its constants are raw fields, like its groups); or
  ``{reject: REASON, patterns: [...]}``: lines those patterns match are dead-lettered with REASON (a
  truncated record that a later, looser pattern would otherwise take).
- ``skip``: a regex of lines that are part of the file's own layout (a legend printed at the top of each
  file, blank lines): read and counted as parsed, but no event, as W3C ``#`` directives are.
- ``unmatched``: the dead-letter reason of lines nothing matches (default: no pattern matches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import RAW, Rule, SpecError, rules_from_spec
from soc.parse.eager import nulls
from soc.parse.engines.base import Engine, typed_frame
from soc.schema import FAMILIES

MATCHED = "__matched"  # the outer group wrapped around every pattern: non-null where the line matched
GROUP = re.compile(r"\(\?P?<([^>]+)>")


@dataclass(frozen=True)
class Pattern:
    regex: str
    constants: tuple[tuple[str, str], ...]
    route: int


@dataclass(frozen=True)
class Route:
    """Where matched lines go: a family frame (``reject`` is None) or the dead letters with ``reject``."""

    family: str
    dataset: str
    rules: tuple[Rule, ...]
    constants: dict
    reject: str | None = None


def check_regex(regex: str, where: str) -> None:
    """A spec error (not a crash in the middle of a file) for a regex Polars cannot compile."""
    try:
        pl.Series([""], dtype=pl.String).str.contains(regex)
    except pl.exceptions.ComputeError as exc:
        raise SpecError(f"{where}: {regex!r} is not a valid regex: {exc}") from None


def load(options: dict, nulls: tuple[str, ...], where: str) -> tuple[list[Route], list[Pattern]]:
    """The routes and patterns of a spec's ``regex:`` section, checked."""
    unknown = set(options) - {"events", "skip", "unmatched"}
    if unknown:
        raise SpecError(f"{where}: regex: unknown keys {sorted(unknown)}")
    routes: list[Route] = []
    patterns: list[Pattern] = []
    for i, ev in enumerate(options.get("events") or []):
        here = f"{where}: regex events[{i}]"
        reject = ev.get("reject")
        allowed = {"reject", "patterns"} if reject else {"family", "dataset", "columns", "constants", "patterns"}
        if set(ev) - allowed:
            raise SpecError(f"{here}: unknown keys {sorted(set(ev) - allowed)}")
        if reject:
            routes.append(Route("", "", (), {}, str(reject)))
        else:
            if ev.get("family") not in FAMILIES or not ev.get("dataset"):
                raise SpecError(f"{here}: needs a known family and a dataset (or reject: REASON)")
            routes.append(Route(ev["family"], ev["dataset"], tuple(rules_from_spec(ev.get("columns") or {}, nulls)),
                                ev.get("constants") or {}))
        fields: set[str] = set()
        for p in ev.get("patterns") or []:
            if not isinstance(p, dict) or "match" not in p or set(p) - {"match", "constants"}:
                raise SpecError(f"{here}: a pattern is {{match: REGEX, constants: {{...}}}}, got {p!r}")
            regex = str(p["match"])
            check_regex(regex, here)
            consts = tuple((str(k), str(v)) for k, v in (p.get("constants") or {}).items())
            fields |= set(GROUP.findall(regex)) | {k for k, _ in consts}
            patterns.append(Pattern(f"(?P<{MATCHED}>{regex})", consts, i))
        unread = [c.source for r in routes[i].rules for c in r.chain if c.source not in fields]
        if unread:
            raise SpecError(f"{here}: columns read fields no pattern gives: {sorted(set(unread))}")
    if options.get("skip"):
        check_regex(str(options["skip"]), f"{where}: regex skip")
    return routes, patterns


class RegexEngine(Engine):
    """Lines to the frame of the route whose pattern first matches them (see the module docstring)."""

    def __init__(self, spec, ctx):
        super().__init__(spec, ctx)
        self.routes, self.patterns = load(spec.options, ("-", ""), spec.path or spec.name)
        self.skip = spec.options.get("skip")
        self.unmatched = str(spec.options.get("unmatched") or f"no pattern of {spec.name} matches this line")

    def parse(self, batch: LineBatch) -> ParseResult:
        lines = batch.lines()
        todo = np.ones(batch.n, np.bool_)
        if self.skip and batch.n:
            todo &= ~lines.str.contains(self.skip).fill_null(False).to_numpy()
        taken: dict[int, list[tuple[np.ndarray, pl.DataFrame]]] = {}
        for p in self.patterns:
            idx = np.flatnonzero(todo)
            if not idx.size:
                break
            groups = lines.gather(idx).str.extract_groups(p.regex).struct.unnest()
            hit = groups.get_column(MATCHED).is_not_null()
            if not hit.any():
                continue
            rows = idx[hit.to_numpy()]
            todo[rows] = False
            raw = groups.filter(hit).drop(MATCHED).with_columns(
                [pl.lit(v, pl.String).alias(k) for k, v in p.constants])
            taken.setdefault(p.route, []).append((rows, raw))
        reasons = nulls("reason", pl.String, batch.n)
        if todo.any():
            reasons = reasons.scatter(np.flatnonzero(todo), self.unmatched)
        frames: dict[tuple[str, str], pl.DataFrame] = {}
        for g, parts in sorted(taken.items()):
            route = self.routes[g]
            rows = np.concatenate([r for r, _ in parts])
            if route.reject is not None:
                reasons = reasons.scatter(rows, route.reject)
                continue
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
            raw = pl.concat([f for _, f in parts], how="diagonal_relaxed")[order]
            raw = raw.rename({c: RAW + c for c in raw.columns})
            frame, why = typed_frame(batch, raw, route.rules, self.ctx, route.constants, route.dataset,
                                     route.family, rows=rows)
            bad = why.is_not_null()
            if bad.any():
                reasons = reasons.scatter(rows[bad.to_numpy()], why.filter(bad))
                frame = frame.filter(~bad)
            key = (route.family, route.dataset)
            frames[key] = pl.concat([frames[key], frame], how="diagonal") if key in frames else frame
        dead = reasons.is_not_null()
        return ParseResult(frames, batch.dead(dead, reasons) if dead.any() else empty_dead(), batch.n)
