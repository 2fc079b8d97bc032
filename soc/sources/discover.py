"""Find the inputs a user names: files, directories (recursive), globs, compressed files and stdin."""

from __future__ import annotations

import glob
import gzip
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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
            return gzip.GzipFile(fileobj=raw, mode="rb"), raw
        if self.compression == "zstd":
            import zstandard

            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            return io.BufferedReader(reader, 1 << 20), raw
        return raw, raw


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
