"""Engines for binary formats made of records, not lines (EVTX): they read the whole input themselves.

The pipeline hands such an engine the opened input instead of line chunks; it yields results of a few
tens of thousands of records each, with the same counts as lines (``lines`` = records read, parsed +
dead-lettered = read). Given text lines (``--format`` forced on a text file, the fuzz tests), it
dead-letters them: a line of text is not a record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from soc.parse.batch import LineBatch, ParseResult
from soc.parse.engines.base import Engine


class RecordEngine(Engine):
    """Reads a binary input as records (see the module docstring)."""

    @classmethod
    def reading_ahead(cls, paths: list[str]) -> contextlib.AbstractContextManager:
        """Around a run over ``paths`` (its plain files, in order): the engine may read the next inputs while
        the pipeline parses one. Nothing by default."""
        return contextlib.nullcontext()

    def read(self, stream: BinaryIO, path: str | None,
             records: tuple[int, int] | None = None) -> Iterator[ParseResult]:  # pragma: no cover - interface
        """The records of the input; ``records``: only those whose ids are in (after, upto] (a job's bound,
        ``Source.records``)."""
        raise NotImplementedError

    @classmethod
    def small(cls, spec, path: str) -> int | None:
        """The records of the plain file at ``path`` if it is small enough to be read with its neighbours
        (``read_many``), else None (read alone, ``read``). None by default."""
        return None

    @classmethod
    def batches(cls, spec, files: list[tuple[str, int]]) -> list[list[str]]:
        """How ``read_many`` cuts ``files`` (path and records) in batches, each typed as one: the tasks of a
        hunt in several processes (``soc.distributed``) are these batches. One batch by default."""
        return [[path for path, _ in files]]

    def read_many(self, files: list[tuple[str, int]], records: dict[str, tuple[int, int]] | None = None,
                  ) -> Iterator[tuple[list[str], ParseResult | None, list[str]]]:
        """Small plain files (path and records, from ``small``) read together: per batch, its paths, its
        result (frames and dead letters of several files; ``log.file.path`` says which; None if it
        failed) and the paths the caller must read alone (``read``). ``records``: bounds per path (``read``)."""
        raise NotImplementedError  # pragma: no cover - interface

    def parse(self, batch: LineBatch) -> ParseResult:
        why = f"{self.spec.name} reads binary files; this input is text lines"
        return ParseResult({}, batch.dead(np.ones(batch.n, bool), why), batch.n)
