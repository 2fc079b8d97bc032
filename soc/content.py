"""Where the analyst-editable content lives: ``parsers/``, ``detectors/``, ``rules/``, ``policy/``.

In a wheel they are packaged under ``soc/_content/``; in a source checkout (editable install) they are
the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def content_dir(name: str) -> Path:
    """The folder of content ``name`` (``parsers``, ``detectors`` or ``rules``)."""
    for candidate in (_PACKAGE / "_content" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"content folder {name!r} not found beside the soc package")
