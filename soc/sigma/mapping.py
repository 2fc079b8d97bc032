"""The processing pipeline as data: Sigma logsources -> our frames, Sigma field names -> columns.

Read from ``rules/pipeline/*.yml`` (see the comments there). A rule's logsource routes it to targets; a
target names frames by family and dataset glob, and how the rule's fields map to their columns. A
logsource entry matches a rule whose (product, category, service) set is exactly the entry's.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from soc.content import content_dir, read_yaml

KEYS = ("product", "category", "service")
Logsource = tuple[str | None, str | None, str | None]


class PipelineError(ValueError):
    """A pipeline file that does not say what it should; the message names the file and entry."""


@dataclass(frozen=True)
class Target:
    """Frames a rule runs on, and its fields' columns there."""

    family: str
    dataset: str = "*"  # glob over the frame key's dataset
    fields: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    channel: str | None = None  # Windows: the channel's dataset prefix (event ids follow it)
    ids: tuple[int, ...] | None = None

    def covers(self, key: tuple[str, str]) -> bool:
        return key[0] == self.family and fnmatch.fnmatchcase(key[1], self.dataset)

    def pinned(self, ids: set[int] | None) -> list[Target]:
        """This target restricted to the event ids a rule's detection requires (Windows)."""
        if self.channel is None or ids is None:
            return [self]
        keep = sorted(ids if self.ids is None else ids & set(self.ids))
        return [Target(self.family, f"{self.channel}.{i}", self.fields, self.channel, (i,)) for i in keep]

    def resolve(self, name: str, columns) -> str | None:
        """The column of Sigma field ``name`` in a frame with ``columns`` (None if it has none)."""
        for candidate in (self.fields.get(name), name, "winlog.event_data." + name):
            if candidate is not None and candidate in columns:
                return candidate
        if self.family == "windows":  # Defender writes "Source Name" for Sigma's SourceName
            return next((c for c in columns if " " in c and c.replace(" ", "") == name), None)
        return None


class Pipeline:
    """Every logsource entry of the pipeline files."""

    def __init__(self, folder: Path | None = None):
        folder = folder or content_dir("rules") / "pipeline"
        self.entries: dict[Logsource, list[Target]] = {}
        self.files = sorted(folder.glob("*.yml"))
        for path in self.files:
            self._read(path)

    def targets(self, logsource: Logsource) -> list[Target]:
        """Where a rule with this logsource runs (empty: no frame of ours carries it)."""
        return self.entries.get(tuple(None if v is None else str(v).lower() for v in logsource), [])

    def _read(self, path: Path) -> None:
        doc = read_yaml(path) or {}
        win = doc.get("windows") or {}
        win_fields = {str(k): str(v) for k, v in (win.get("fields") or {}).items()}
        for service, channels in (win.get("services") or {}).items():
            chans = channels if isinstance(channels, list) else [channels]
            key = ("windows", None, str(service).lower())
            self.entries.setdefault(key, []).extend(
                Target("windows", f"{_channel_dataset(c)}.*", win_fields, _channel_dataset(c)) for c in chans)
        for i, entry in enumerate(doc.get("logsources") or []):
            where = f"{path}: logsources[{i}]"
            source = entry.get("logsource") or {}
            if not isinstance(source, dict) or set(source) - set(KEYS) or not source:
                raise PipelineError(f"{where}: logsource needs some of {KEYS}, got {source!r}")
            key = tuple(None if source.get(k) is None else str(source[k]).lower() for k in KEYS)
            common = {str(k): str(v) for k, v in (entry.get("fields") or {}).items()}
            for frame in entry.get("frames") or []:
                fields = {**common, **{str(k): str(v) for k, v in (frame.get("fields") or {}).items()}}
                if "channel" in frame:
                    ds = _channel_dataset(str(frame["channel"]))
                    ids = frame.get("ids")
                    fields = {**win_fields, **fields}
                    if ids is None:
                        self.entries.setdefault(key, []).append(Target("windows", f"{ds}.*", fields, ds))
                    else:
                        for n in ids:
                            self.entries.setdefault(key, []).append(
                                Target("windows", f"{ds}.{int(n)}", fields, ds, (int(n),)))
                elif "family" in frame:
                    if frame["family"] == "windows":
                        fields = {**win_fields, **fields}
                    self.entries.setdefault(key, []).append(
                        Target(str(frame["family"]), str(frame.get("dataset", "*")), fields))
                else:
                    raise PipelineError(f"{where}: a frame needs 'channel' or 'family', got {frame!r}")


@cache
def _channel_dataset(channel: str) -> str:
    """The ``event.dataset`` our Windows readers give a channel (the EVTX spec's naming)."""
    from soc.parse.windows import WindowsMapping

    return WindowsMapping.dataset(_windows(), channel)


@cache
def _windows():
    """What ``WindowsMapping.dataset`` reads of the EVTX spec (its ``datasets``): the whole mapping (every event
    group's column rules, which the parse builds for itself) took 11-18 ms of each process's rule load."""
    from types import SimpleNamespace

    from soc.parse.spec import load_spec
    from soc.parse.windows import WindowsMapping

    spec = load_spec(content_dir("parsers") / "windows_evtx.yml")
    if spec.options.get("events_from"):  # datasets of another spec: as the mapping reads them
        return WindowsMapping(spec)
    return SimpleNamespace(datasets={str(k): str(v) for k, v in (spec.options.get("datasets") or {}).items()})


@cache
def default_pipeline() -> Pipeline:
    return Pipeline()
