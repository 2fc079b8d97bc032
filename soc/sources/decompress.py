"""Decompressing readers that tell a stream cut short from a stream that ended.

``gzip.GzipFile`` raises ``EOFError`` at a cut and loses what it had decoded of the read in progress (a whole
chunk of complete lines); zstandard's ``stream_reader`` just stops, so the cut line passed for a whole one.
Here every decodable byte is returned, then end of input, and ``cut_at`` says whether the compressed stream
ended inside a gzip member or a zstd frame (the compressed bytes read; None when it ended whole);
``produced`` counts the decompressed bytes.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import BinaryIO

BLOCK = 1 << 20  # compressed bytes read at a time


class Gunzip(io.RawIOBase):
    """gzip members one after another (``cat a.gz b.gz``), zero padding between them skipped, as ``gzip``
    reads them; decoded by zlib, which checks each member's CRC and length, into the caller's buffer at
    most ``len(buffer)`` at a time (memory bounded whatever the ratio)."""

    codec = "gzip"

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.cut_at: int | None = None
        self.produced = 0
        self._inflate = zlib.decompressobj(31)
        self._input = b""
        self._in_member = False
        self._read = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        while not self._ended and len(view):
            if not self._input:
                self._input = self.raw.read(BLOCK)
                self._read += len(self._input)
                if not self._input:
                    self._ended = True
                    self.cut_at = self._read if self._in_member else None
                    break
            if not self._in_member:
                self._input = self._input.lstrip(b"\0")
                if not self._input:
                    continue
                self._in_member = True
            try:
                out = self._inflate.decompress(self._input, len(view))
            except zlib.error as exc:
                raise gzip.BadGzipFile(f"corrupt gzip data before compressed byte {self._read}: {exc}") from None
            self._input = self._inflate.unconsumed_tail
            if self._inflate.eof:
                self._input = self._inflate.unused_data
                self._inflate = zlib.decompressobj(31)
                self._in_member = False
            if out:
                view[: len(out)] = out
                self.produced += len(out)
                return len(out)
        return 0


class Unzstd(io.RawIOBase):
    """zstd frames one after another, decoded by zstandard's ``stream_reader`` (bounded output); the
    compressed bytes pass through ``ZstdFrames`` on their way, which sees whether they end between frames."""

    codec = "zstd"

    def __init__(self, raw: BinaryIO):
        import zstandard

        self.raw = raw
        self.cut_at: int | None = None
        self.produced = 0
        self._frames = ZstdFrames(raw)
        self._reader = zstandard.ZstdDecompressor().stream_reader(self._frames, read_across_frames=True,
                                                                   closefd=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._reader.readinto(buffer)
        self.produced += n
        if not n and len(memoryview(buffer)):
            self._frames.drain()
            self.cut_at = None if self._frames.between_frames() else self._frames.consumed
        return n


class ZstdFrames:
    """A pass-through reader that follows the frame and block headers of a zstd stream (RFC 8878) and
    skips block contents: a few steps a block, no decoding. ``between_frames()`` at the end of input says
    whether the last frame was complete (its last block and checksum all there)."""

    MAGIC = 0xFD2FB528
    SKIPPABLE = 0x184D2A50  # to 0x184D2A5F

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.consumed = 0
        self._checksum = 0
        self._want = 4  # header bytes to collect, then ``_step`` reads them
        self._head = b""
        self._skip = 0  # content bytes to pass over
        self._state = "magic"

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self._follow(data)
        return data

    def drain(self) -> None:
        """Follow whatever the decoder left unread (nothing, when it read to the end)."""
        while data := self.raw.read(BLOCK):
            self._follow(data)

    def between_frames(self) -> bool:
        return self._state in ("magic", "lost") and not self._head and not self._skip

    def _follow(self, data: bytes) -> None:
        self.consumed += len(data)
        i, n = 0, len(data)
        while i < n and self._state != "lost":
            if self._skip:
                take = min(self._skip, n - i)
                self._skip -= take
                i += take
                continue
            take = min(self._want - len(self._head), n - i)
            self._head += data[i: i + take]
            i += take
            if len(self._head) == self._want:
                head, self._head = self._head, b""
                self._step(head)

    def _step(self, head: bytes) -> None:
        value = int.from_bytes(head, "little")
        if self._state == "magic":
            if value == self.MAGIC:
                self._state, self._want = "frame header", 1
            elif value & 0xFFFFFFF0 == self.SKIPPABLE:
                self._state, self._want = "skippable size", 4
            else:
                self._state = "lost"  # not zstd: the decoder reports it
        elif self._state == "skippable size":
            self._state, self._want, self._skip = "magic", 4, value
        elif self._state == "frame header":
            single = value >> 5 & 1
            self._checksum = value >> 2 & 1
            self._skip = (0 if single else 1) + (0, 1, 2, 4)[value & 3] + (single, 2, 4, 8)[value >> 6]
            self._state, self._want = "block", 3
        else:  # a block header: last-block flag, type (raw, RLE, compressed), size
            kind, size = value >> 1 & 3, value >> 3
            self._skip = 1 if kind == 1 else size
            if value & 1:
                self._skip += 4 * self._checksum
                self._state, self._want = "magic", 4
