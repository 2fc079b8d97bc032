"""Logs whose header lines (``#...``) set the state of the lines after them: W3C ``#Fields:``, Zeek
``#fields``/``#path``. A file may hold several header blocks (restarts, rotation, concatenated files),
so the state is carried from line to line and across chunks by the engine that owns it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from soc.parse.batch import LineBatch, ParseResult
from soc.parse.engines.base import merge

HASH = ord("#")


def by_directives(batch: LineBatch, directive: Callable[[bytes], None],
                  segment: Callable[[LineBatch], ParseResult]) -> ParseResult:
    """``directive`` is called with each ``#`` line in order (it produces no event), ``segment`` with each
    run of lines between them, so every run is parsed with the state its headers set."""
    lengths = batch.ends - batch.starts
    first = batch.buf[np.minimum(batch.starts, max(batch.buf.size - 1, 0))] if batch.n else batch.starts
    lines = np.flatnonzero((lengths > 0) & (first == HASH))
    parts: list[ParseResult] = []
    begin = 0
    for d in [*lines.tolist(), batch.n]:
        if d > begin:
            parts.append(segment(batch.take(np.arange(begin, d))))
        if d < batch.n:
            directive(bytes(batch.buf[batch.starts[d]: batch.ends[d]]))
        begin = d + 1
    return merge(batch.n, parts)
