"""Read a byte stream in chunks cut on line ends, so memory stays bounded whatever the input size."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

DEFAULT_CHUNK = 16 * 1024 * 1024


@dataclass
class Chunk:
    """Whole lines of one input: ``data`` starts at byte ``offset`` and line number ``first_line`` (1-based).

    ``oversize`` marks a single line longer than the chunk size: ``data`` holds its first bytes only and
    ``dropped`` counts the bytes skipped after them; the parser dead-letters it.
    """

    data: bytearray
    offset: int
    first_line: int
    oversize: bool = False
    dropped: int = 0


def read_chunks(stream: BinaryIO, chunk_size: int = DEFAULT_CHUNK) -> Iterator[Chunk]:
    """Yield chunks of about ``chunk_size`` bytes, each ending on ``\\n`` (or at end of input)."""
    pending = bytearray()
    offset = 0
    line = 1
    while True:
        block = stream.read(chunk_size - len(pending) if len(pending) < chunk_size else 0)
        if block:
            pending += block
        if not block and not pending:
            return
        cut = pending.rfind(b"\n")
        if cut < 0:
            if block and len(pending) < chunk_size:
                continue  # keep reading: the line goes on
            if not block:  # last line without a newline
                yield Chunk(pending, offset, line)
                return
            head = pending  # one line longer than a chunk: keep its head, skip to its end
            dropped, tail = _skip_line(stream, chunk_size)
            yield Chunk(head, offset, line, oversize=True, dropped=dropped)
            offset += len(head) + dropped
            line += 1
            pending = bytearray(tail)
            continue
        body = pending[: cut + 1]
        pending = pending[cut + 1 :]
        yield Chunk(body, offset, line)
        offset += len(body)
        line += body.count(b"\n")


def _skip_line(stream: BinaryIO, block_size: int) -> tuple[int, bytes]:
    """Skip to just after the next ``\\n``; return how many bytes were skipped and what follows it."""
    skipped = 0
    while True:
        block = stream.read(block_size)
        if not block:
            return skipped, b""
        nl = block.find(b"\n")
        if nl >= 0:
            return skipped + nl + 1, block[nl + 1 :]
        skipped += len(block)
