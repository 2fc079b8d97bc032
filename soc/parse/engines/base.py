"""What every engine shares: turning raw string fields into a typed family frame plus dead letters."""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.parse.batch import LineBatch, ParseResult, empty_dead
from soc.parse.columns import RAW, Context, Rule, apply
from soc.parse.spec import ParserSpec
from soc.schema import columns as family_columns
from soc.schema import conform


class Engine:
    """Parses the chunks of one input with one spec. May keep state across chunks (e.g. W3C headers)."""

    def __init__(self, spec: ParserSpec, ctx: Context):
        self.spec = spec
        self.ctx = ctx
        self.dataset = spec.dataset_for(ctx.path)

    def prepare(self, batch: LineBatch) -> None:
        """Work on ``batch`` that needs nothing of the chunks before it, kept on the batch for ``parse``. The
        pipeline calls it on every chunk, in order, a chunk ahead of ``parse`` and in its own thread (the
        kernels release the GIL), so it must not touch state that ``parse`` changes; it may settle what
        ``parse`` would otherwise find out from the same chunk. Default: nothing."""

    def parse(self, batch: LineBatch) -> ParseResult:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self) -> ParseResult | None:
        """Called once after the last chunk: what the engine still holds (a record cut by the end of the
        input) as a last result, or None. Its lines were counted by the chunks that held them."""
        return None


def raw_frame(fields: dict[str, pl.Series]) -> pl.DataFrame:
    """Raw fields named with the ``~`` prefix that column rules read from."""
    return pl.DataFrame([s.alias(RAW + name) for name, s in fields.items()])


def typed_frame(
    batch: LineBatch,
    raw: pl.DataFrame,
    rules: list[Rule] | tuple[Rule, ...],
    ctx: Context,
    constants: dict,
    dataset: str,
    family: str,
    reject: pl.Series | None = None,
    extra: dict[str, pl.DataType] | None = None,
    rows: np.ndarray | None = None,
) -> tuple[pl.DataFrame, pl.Series]:
    """Typed, conformed frame of every line and, per line, why it is rejected (null if it is not).

    ``reject`` carries reasons found before typing (a tokenizer error); they take precedence. ``extra``
    fixes the non-core columns and their order (routes of one family must all give the same schema);
    by default they are the rules' own. ``rows`` are the batch lines ``raw`` holds, when not all of them
    (an engine that routes lines to several families).
    """
    typed, reason = apply(raw, list(rules), ctx, {"event.dataset": dataset, **constants})
    if reject is not None:
        reason = pl.select(pl.coalesce(reject, reason)).to_series()
    if extra is None:
        core = family_columns(family)
        extra = {c: typed.schema[c] for c in typed.columns if c not in core}
    origin = batch.origin()
    if rows is not None:
        take = pl.Series(rows)
        origin = {k: v.gather(take) for k, v in origin.items()}
    frame = conform(typed.with_columns(**origin), family, extra)
    return frame, reason.alias("reason")


def split(batch: LineBatch, frame: pl.DataFrame, reason: pl.Series, family: str, dataset: str,
          ) -> ParseResult:
    """Good lines to the family frame, rejected ones to dead letters."""
    bad = reason.is_not_null()
    if not bad.any():
        return ParseResult({(family, dataset): frame}, empty_dead(), batch.n)
    return ParseResult({(family, dataset): frame.filter(~bad)}, batch.dead(bad, reason), batch.n)


def merge(lines: int, parts: list[ParseResult], how: str = "vertical") -> ParseResult:
    """One result of a chunk parsed in parts (segments, routes); ``lines`` counts the whole chunk. ``how``
    is Polars' concat mode for parts of one key (``diagonal_relaxed`` where their columns can differ)."""
    frames: dict[tuple[str, str], list[pl.DataFrame]] = {}
    for part in parts:
        for key, frame in part.frames.items():
            if frame.height:
                frames.setdefault(key, []).append(frame)
    dead = [p.dead for p in parts if p.dead.height]
    return ParseResult(
        {k: v[0] if len(v) == 1 else pl.concat(v, how=how) for k, v in frames.items()},
        pl.concat(dead) if dead else empty_dead(),
        lines,
    )
