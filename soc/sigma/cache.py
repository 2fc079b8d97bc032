"""The compiled-rule cache on disk: parsing 3,700 rules with pySigma takes ~20 s, reading the cache < 1 s.

One JSON file (plain data only: our rule trees, never pickled objects) per soc version and placeholder
set, under ``$SOC_CACHE_DIR`` or the user's cache folder (``$XDG_CACHE_HOME/soc``, ``~/.cache/soc``).
Entries are keyed by rule file path, size and mtime. The folder is made 0700 and the file written 0600
(atomically); a cache file not owned by the user, or writable by others, is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path

FORMAT = 1  # bump when the rule tree or the record changes


def cache_dir() -> Path:
    if os.environ.get("SOC_CACHE_DIR"):
        return Path(os.environ["SOC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "soc"


def _trusted(path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return mine and stat.S_ISREG(st.st_mode) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class RuleCache:
    """Cached compile results of rule files: ``get(path)`` / ``put(path, entry)``, then ``save()``."""

    def __init__(self, salt: str, folder: Path | None = None, enabled: bool = True):
        self.enabled = enabled
        self.path = (folder or cache_dir()) / f"sigma-rules-{salt}.json"
        self.entries: dict[str, dict] = {}
        self.dirty = False
        if enabled and _trusted(self.path):
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if data.get("format") == FORMAT:
                    self.entries = data.get("files") or {}
            except (OSError, ValueError):
                self.entries = {}

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]

    def get(self, path: Path) -> dict | None:
        if not self.enabled:
            return None
        entry = self.entries.get(str(path))
        try:
            if entry is not None and entry.get("stamp") == self._stamp(path):
                return entry
        except OSError:
            return None
        return None

    def put(self, path: Path, entry: dict) -> None:
        if not self.enabled:
            return
        try:
            self.entries[str(path)] = {**entry, "stamp": self._stamp(path)}
            self.dirty = True
        except OSError:
            pass

    def save(self) -> None:
        """Write the cache if it changed (a cache that cannot be written is only slower next time)."""
        if not (self.enabled and self.dirty):
            return
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".sigma-", dir=folder)  # created 0600
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"format": FORMAT, "files": self.entries}, out, separators=(",", ":"))
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
