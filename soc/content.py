"""Where the analyst-editable content lives: ``parsers/``, ``detectors/``, ``rules/``, ``policy/``; and the
folder where soc keeps what it derives from it (``cache_dir``: compiled rules, YAML documents as JSON, the
parser specs' regexes already checked).

In a wheel they are packaged under ``soc/_content/``; in a source checkout (editable install) they are
the top-level folders of the repository.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent
YAML_FORMAT = 1  # of the JSON copies of YAML documents (``read_yaml``)
YAML_KEPT = 1000  # documents kept at most: past that the copies start anew


def content_dir(name: str) -> Path:
    """The folder of content ``name`` (``parsers``, ``detectors`` or ``rules``)."""
    for candidate in (_PACKAGE / "_content" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"content folder {name!r} not found beside the soc package")


def cache_dir() -> Path:
    """``$SOC_CACHE_DIR``, else the user's cache folder: ``$XDG_CACHE_HOME/soc``, ``~/.cache/soc``."""
    if os.environ.get("SOC_CACHE_DIR"):
        return Path(os.environ["SOC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "soc"


def trusted(path: Path) -> bool:
    """Whether a cache file may be read: a regular file of this user that no one else may write."""
    try:
        st = path.stat()
    except OSError:
        return False
    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return mine and stat.S_ISREG(st.st_mode) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


_docs: dict[Path, dict[str, str]] = {}  # cache file -> its documents: hash of a YAML file's bytes -> JSON text
_changed: set[Path] = set()  # cache files with documents added by this process


def read_yaml(path: str | Path) -> Any:
    """The YAML document of a file (safe-loaded), e.g. a parser spec, a detector, the Sigma pipeline.

    Each run read ~40 of them, 26-32 ms through the YAML loader; a copy of each document as JSON, kept in the
    cache folder by the hash of the file's bytes (an edited file is another file), reads in ~1 ms. Only a
    document that JSON gives back equal is kept (not one with dates or with numbers as keys). Raises what
    reading it raises: ``OSError``, ``UnicodeDecodeError``, ``safe_yaml.YAMLError``."""
    raw = Path(path).read_bytes()
    key = hashlib.blake2b(raw, digest_size=16).hexdigest()
    file = cache_dir() / f"yaml-docs-{YAML_FORMAT}.json"
    docs = _yaml_docs(file)
    if key in docs:
        return json.loads(docs[key])  # a new object each time: callers may change theirs
    from soc import safe_yaml

    doc = safe_yaml.load(raw.decode("utf-8"))
    try:
        text = json.dumps(doc, separators=(",", ":"))
        same = json.loads(text) == doc
    except (TypeError, ValueError):
        same = False
    if same:
        if len(docs) >= YAML_KEPT:
            docs.clear()
        docs[key] = text
        if not _changed:
            atexit.register(_save_yaml_docs)
        _changed.add(file)
    return doc


def _yaml_docs(file: Path) -> dict[str, str]:
    """The copies in ``file``, read once a process. By orjson: the file holds every document read as YAML (up to
    ``YAML_KEPT``, edited versions too; 139 documents, 445 KB on a developer's machine: 1.3 ms by the standard
    reader, 0.37 ms by orjson); its keys and values are strings, which both read the same."""
    if file not in _docs:
        docs = _read_kept(file).get("docs")
        _docs[file] = {str(k): v for k, v in docs.items() if isinstance(v, str)} if isinstance(docs, dict) else {}
    return _docs[file]


SET_KEPT = 2000  # strings kept at most in a set of ``known``: past that the set starts anew
_sets: dict[Path, set[str]] = {}  # cache file -> its strings
_grown: set[Path] = set()  # cache files with strings added by this process


def known(name: str) -> set[str]:
    """The strings soc keeps under ``name`` in the cache folder, e.g. the parser specs' regexes that a Polars
    version accepted (``soc.parse.columns``), with this process's own (``remember``); empty if none or if the file
    is not ``trusted``. Do not change it: ``remember`` adds."""
    file = cache_dir() / f"{name}.json"
    if file not in _sets:
        items = _read_kept(file).get("items")
        _sets[file] = {v for v in items if isinstance(v, str)} if isinstance(items, list) else set()
    return _sets[file]


def remember(name: str, value: str) -> None:
    """``value`` added to the strings of ``name`` (``known``), written to the cache folder at exit."""
    items = known(name)
    if value in items:
        return
    if len(items) >= SET_KEPT:
        items.clear()
    items.add(value)
    if not _grown:
        atexit.register(_save_sets)
    _grown.add(cache_dir() / f"{name}.json")


def _save_sets() -> None:
    """At exit, the sets this run added to."""
    for file in sorted(_grown & _sets.keys()):
        _write_kept(file, {"items": sorted(_sets[file])})
    _grown.clear()


def _save_yaml_docs() -> None:
    """At exit, the documents read as YAML this run added to the copies they were looked up in."""
    for file in sorted(_changed & _docs.keys()):
        _write_kept(file, {"docs": _docs[file]})
    _changed.clear()


def _read_kept(file: Path) -> dict:
    """The JSON object soc kept in ``file`` of its cache folder (``_write_kept``); empty if there is none, if it
    does not read, or if it is not ``trusted``. By orjson: what soc keeps there are strings, which it reads as the
    standard reader does, ~3x faster."""
    if trusted(file):
        import orjson

        with contextlib.suppress(OSError, ValueError):
            data = orjson.loads(file.read_bytes())
            if isinstance(data, dict):
                return data
    return {}


def _write_kept(file: Path, doc: dict) -> None:
    """``doc`` as JSON in ``file`` of the cache folder, private and whole, as everything soc keeps
    (``soc.private``); a cache that cannot be written is only slower next time."""
    from soc.private import remove_stale, writing

    with contextlib.suppress(OSError):
        remove_stale(file.parent)
        with writing(file, file.parent) as tmp, open(tmp, "w", encoding="utf-8") as out:
            json.dump(doc, out, separators=(",", ":"))
