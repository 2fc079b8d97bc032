"""Find the inputs a user names: files, directories (recursive), globs, compressed files and stdin."""

from __future__ import annotations

import glob
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from soc.sources import remote
from soc.sources.decompress import Gunzip, Unzstd

STDIN = "-"
SKIP_SUFFIXES = {".parquet", ".pyc"}


class InputError(Exception):
    """An input the user named does not exist or cannot be read."""


@dataclass(frozen=True)
class Source:
    """One input stream. ``path`` is ``-`` for stdin; ``size`` is the on-disk size (None for stdin), or the
    bytes ``start`` to ``end`` of a window.

    A job's incremental read (``soc.jobs.checkpoints``) sets the rest: read from byte ``start`` (of the
    decompressed stream), whose line is ``first_line``, up to byte ``end`` (None: to the end), so ``log.line``
    and ``log.offset`` are those of a whole-file read; ``prelude`` holds the header lines (``#fields``,
    ``#Fields:``) before ``start`` that the engine replays to know the layout, and ``format`` the format the
    file was read as before (the tail alone might sniff otherwise). ``records`` (a plain EVTX file) reads only
    the records whose ``EventRecordID`` is in (after, upto]: those a job has not read yet. The defaults read the
    whole input.
    """

    path: str
    size: int | None
    mtime: float | None
    start: int = 0
    first_line: int = 1
    end: int | None = None
    prelude: bytes = b""
    format: str | None = None
    records: tuple[int, int] | None = None

    @property
    def compression(self) -> str | None:
        if self.path.endswith(".gz"):
            return "gzip"
        if self.path.endswith(".zst"):
            return "zstd"
        return None

    def open(self) -> tuple[BinaryIO, BinaryIO]:
        """(decompressed stream, raw file): the raw file's position measures progress."""
        raw: BinaryIO = sys.stdin.buffer if self.path == STDIN else open(self.path, "rb")  # noqa: SIM115
        if self.compression is not None:
            codec = Gunzip if self.compression == "gzip" else Unzstd
            stream = io.BufferedReader(codec(raw), 1 << 20)
            _discard(stream, self.start)
            return stream, raw
        if self.start or self.end is not None:
            raw = Window(raw, self.start, self.end)
        return raw, raw


class Window(io.RawIOBase):
    """Bytes ``start`` to ``end`` (None: to the end) of a plain file; ``tell`` counts from ``start``."""

    def __init__(self, raw: BinaryIO, start: int, end: int | None):
        raw.seek(start)
        self.raw = raw
        self.left = -1 if end is None else max(end - start, 0)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self.left >= 0:
            view = view[: self.left]
        n = self.raw.readinto(view) if len(view) else 0
        self.pos += n
        if self.left >= 0:
            self.left -= n
        return n

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        self.raw.close()
        super().close()


def _discard(stream: BinaryIO, n: int) -> None:
    """Skip the first ``n`` decompressed bytes (a compressed copy of a file read up to there before)."""
    while n > 0:
        got = stream.read(min(n, 1 << 20))
        if not got:
            return
        n -= len(got)


def truncation(stream: BinaryIO) -> int | None:
    """Where the compressed input of ``stream`` (from ``Source.open``) was cut: the compressed bytes read,
    known once the stream has been read to its end; None for a whole or uncompressed input."""
    return getattr(getattr(stream, "raw", None), "cut_at", None)


def discover(inputs: list[str]) -> list[Source]:
    """Expand ``inputs`` into sources, in a stable order; raise ``InputError`` for a name matching nothing."""
    found: list[Source] = []
    seen: set[str] = set()
    for name in inputs:
        if name == STDIN:
            found.append(Source(STDIN, None, None))
            continue
        if remote.is_remote(name):  # objects in an S3-compatible store
            for s in remote.discover(name):
                if s.path not in seen and Path(s.path).suffix not in SKIP_SUFFIXES:
                    seen.add(s.path)
                    found.append(s)
            continue
        if os.path.isdir(name):
            paths = sorted(str(p) for p in Path(name).rglob("*") if p.is_file() and not _hidden(p, name))
        elif os.path.exists(name):
            paths = [name]
        else:
            paths = sorted(p for p in glob.glob(name, recursive=True) if os.path.isfile(p))
            if not paths:
                from soc.i18n import _

                raise InputError(_("no such file, directory or glob match: {name}").format(name=name))
        for p in paths:
            if p in seen or Path(p).suffix in SKIP_SUFFIXES:
                continue
            seen.add(p)
            st = os.stat(p)
            found.append(Source(p, st.st_size, st.st_mtime))
    return found


def _hidden(path: Path, root: str) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
