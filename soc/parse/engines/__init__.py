"""Parser engines, by the name a spec's ``engine:`` gives. Each turns line batches into family frames.

Imported on demand, so a spec only pays for (and JIT-compiles) the engine it uses.
"""

from __future__ import annotations

import importlib

from soc.parse.engines.base import Engine

ENGINES: dict[str, str] = {
    "words": "soc.parse.engines.words:WordsEngine",
    "w3c": "soc.parse.engines.w3c:W3CEngine",
    "kv": "soc.parse.engines.kv:KvEngine",
    "syslog": "soc.parse.engines.syslog:SyslogEngine",
    "cef": "soc.parse.engines.cef:CefEngine",
    "evtx": "soc.parse.engines.evtx:EvtxEngine",
    "windows_json": "soc.parse.engines.windows_json:WindowsJsonEngine",
    "json": "soc.parse.engines.json:JsonEngine",
    "zeek": "soc.parse.engines.zeek:ZeekEngine",
    "zeek_json": "soc.parse.engines.zeek:ZeekJsonEngine",
    "regex": "soc.parse.engines.regex:RegexEngine",
}
RECORD_ENGINES = frozenset({"evtx"})  # those whose class is a RecordEngine: told without importing every engine


def engine_class(name: str) -> type[Engine]:
    """The engine class registered as ``name``."""
    if name not in ENGINES:
        raise KeyError(f"unknown parser engine {name!r} (known: {', '.join(ENGINES)})")
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)


__all__ = ["ENGINES", "RECORD_ENGINES", "Engine", "engine_class"]
