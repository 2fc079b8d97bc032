"""The compiled-rule cache on disk: parsing 3,700 rules with pySigma takes ~20 s, reading the cache < 60 ms.

Two kinds of JSON files (plain data only: our rule trees, never pickled objects), per soc version and
placeholder set, under ``$SOC_CACHE_DIR`` or the user's cache folder (``$XDG_CACHE_HOME/soc``,
``~/.cache/soc``):

- ``RuleCache``: one file per rule folder, entries keyed by rule file path, size and mtime, read only when a
  rule of that folder is asked for (loading one rule file must not read the cache of the whole SigmaHQ set).
  It serves the rule files a load has not seen as they are now.
- ``LoadCache``: one file per list of rule paths, the whole load's outcome (``soc.sigma.loader`` writes it),
  valid while every rule file's (path, size, mtime, ctime) is as listed in it: a warm load reads one file instead of
  hundreds of folder files (0.3 s for SigmaHQ's 443 folders). JSON lines: the load, then one line of JSON
  per item (a rule's tree), handed over undecoded (the decoder's scan of them as escaped strings took 6 ms).

The folder is made 0700 and the files written 0600 (atomically, with ``soc.private`` as the data folder); a
cache file not owned by the user, or writable by others, is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from soc.content import cache_dir
from soc.content import trusted as _trusted
from soc.private import remove_stale, writing

FORMAT = 1  # bump when the rule tree or the record changes
LOAD_FORMAT = 6  # of the load file (``LoadCache``): bump when what the loader keeps in it changes


def _read(file: Path) -> dict | None:
    """A cache file's document if it is ours and whole, of this ``FORMAT`` (else None: compile again)."""
    if not _trusted(file):
        return None
    try:
        data = json.loads(file.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def _write(file: Path, doc: dict) -> None:
    with contextlib.suppress(OSError):  # private and whole, as everything soc keeps (soc.private)
        remove_stale(file.parent)
        with writing(file, file.parent) as tmp, open(tmp, "w", encoding="utf-8") as out:
            json.dump({"format": FORMAT, **doc}, out, separators=(",", ":"))


class RuleCache:
    """Cached compile results of rule files: ``get(path)`` / ``put(path, entry)``, then ``save()``."""

    def __init__(self, salt: str, folder: Path | None = None, enabled: bool = True):
        self.enabled = enabled
        self.salt = salt
        self.folder = folder or cache_dir()
        self.shards: dict[Path, dict[str, dict]] = {}  # rule folder -> {rule file: entry}
        self.dirty: set[Path] = set()

    def _file(self, rules_folder: Path) -> Path:
        tag = hashlib.sha256(str(rules_folder).encode()).hexdigest()[:16]
        return self.folder / f"sigma-rules-{self.salt}-{tag}.json"

    def _shard(self, path: Path) -> dict[str, dict]:
        rules_folder = path.parent
        if rules_folder not in self.shards:
            data = _read(self._file(rules_folder))
            self.shards[rules_folder] = (data or {}).get("files") or {}
        return self.shards[rules_folder]

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]

    def get(self, path: Path) -> dict | None:
        if not self.enabled:
            return None
        entry = self._shard(path).get(str(path))
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
            self._shard(path)[str(path)] = {**entry, "stamp": self._stamp(path)}
            self.dirty.add(path.parent)
        except OSError:
            pass

    def save(self) -> None:
        """Write the shards that changed (a cache that cannot be written is only slower next time)."""
        if not self.enabled:
            return
        for rules_folder in sorted(self.dirty):
            _write(self._file(rules_folder), {"files": self.shards[rules_folder]})
        self.dirty.clear()


class LoadCache:
    """The outcome of loading a list of rule paths, kept with the stamps (``soc.sigma.loader._stamps``) of every
    rule file it came from and of the folders walked to find them: ``get(stamps)`` gives it back only while the
    rule files found now have those same stamps (a rule file edited, added or removed since: None, the load
    compiles what changed); ``read()`` whatever its stamps, for the loader to check them."""

    def __init__(self, salt: str, paths: list[str], folder: Path | None = None, enabled: bool = True):
        self.enabled = enabled
        tag = hashlib.sha256(json.dumps(paths).encode()).hexdigest()[:16]
        # named by its format too: two versions of soc on one machine (a checkout and an install) would
        # otherwise write over each other's load file, and each load would compile again
        self.file = (folder or cache_dir()) / f"sigma-load-{salt}-{tag}-v{LOAD_FORMAT}.json"

    def get(self, stamps: list[list]) -> tuple[dict, list[bytes]] | None:
        """The load and its items (each a line of JSON text), if the rule files have these ``stamps``."""
        got = self.read()
        return got if got is not None and got[0].get("stamps") == stamps else None

    def read(self) -> tuple[dict, list[bytes]] | None:
        """The load and its items, if the load file is ours, whole and of this format (whatever its stamps)."""
        if not self.enabled or not _trusted(self.file):
            return None
        try:
            lines = self.file.read_bytes().split(b"\n")  # (one split: a partition first copied the 3.8 MB again)
            data = json.loads(lines[0])
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != LOAD_FORMAT or not isinstance(data.get("stamps"), list):
            return None
        items = lines[1:] if lines[1:] != [b""] else []  # (a head and a line break only: no items)
        return (data, items) if len(items) == data.get("items") else None

    def put(self, stamps: list[list], doc: dict, items: list[str]) -> None:
        """Keep the load ``doc`` (plain data) and its ``items`` (JSON texts without a line break)."""
        if not self.enabled:
            return
        head = json.dumps({"format": LOAD_FORMAT, "stamps": stamps, "items": len(items), **doc}, separators=(",", ":"))
        with contextlib.suppress(OSError):
            remove_stale(self.file.parent)
            with writing(self.file, self.file.parent) as tmp, open(tmp, "w", encoding="utf-8") as out:
                out.write("\n".join([head, *items]))
