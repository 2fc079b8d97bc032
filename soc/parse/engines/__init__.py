"""Parser engines, by the name a spec's ``engine:`` gives. Each turns line batches into family frames."""

from __future__ import annotations

from soc.parse.engines.base import Engine
from soc.parse.engines.words import WordsEngine

ENGINES: dict[str, type[Engine]] = {
    "words": WordsEngine,
}

__all__ = ["ENGINES", "Engine"]
