"""Find the inputs a user names: files, directories (recursive), globs, compressed files and stdin."""

from __future__ import annotations

import glob
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from soc.sources.decompress import Gunzip, Unzstd

STDIN = "-"
SKIP_SUFFIXES = {".parquet", ".pyc"}


class InputError(Exception):
    """An input the user named does not exist or cannot be read."""


@dataclass(frozen=True)
class Source:
    """One input stream. ``path`` is ``-`` for stdin; ``size`` is the on-disk size (None for stdin)."""

    path: str
    size: int | None
    mtime: float | None

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
        if self.compression == "gzip":
            return io.BufferedReader(Gunzip(raw), 1 << 20), raw
        if self.compression == "zstd":
            return io.BufferedReader(Unzstd(raw), 1 << 20), raw
        return raw, raw


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
        if os.path.isdir(name):
            paths = sorted(str(p) for p in Path(name).rglob("*") if p.is_file() and not _hidden(p, name))
        elif os.path.exists(name):
            paths = [name]
        else:
            paths = sorted(p for p in glob.glob(name, recursive=True) if os.path.isfile(p))
            if not paths:
                raise InputError(f"no such file, directory or glob match: {name}")
        for p in paths:
            if p in seen or Path(p).suffix in SKIP_SUFFIXES:
                continue
            seen.add(p)
            st = os.stat(p)
            found.append(Source(p, st.st_size, st.st_mtime))
    return found


def _hidden(path: Path, root: str) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
