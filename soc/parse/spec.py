"""Parser specs: one YAML file per log source in ``parsers/`` (data an analyst can extend, not code)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soc.content import content_dir, read_yaml
from soc.parse.columns import Rule, SpecError, rules_from_spec
from soc.schema import FAMILIES
from soc.sources.sniff import Signature


@dataclass(frozen=True)
class ParserSpec:
    """A loaded spec: identity, signature, the engine that runs it and that engine's options."""

    name: str
    title: str
    engine: str
    family: str
    dataset: str
    signature: Signature
    options: dict[str, Any]
    columns: tuple[Rule, ...]
    constants: dict[str, Any]
    dataset_from_path: tuple[tuple[str, str], ...] = ()
    path: str = ""

    def dataset_for(self, file_path: str) -> str:
        """The ``event.dataset`` of a file: the first ``dataset_from_path`` word found in its path."""
        low = file_path.lower()
        for word, dataset in self.dataset_from_path:
            if word in low:
                return dataset
        return self.dataset


REQUIRED = ("name", "engine", "family", "dataset", "sniff")


def load_spec(path: Path) -> ParserSpec:
    """Load and check one spec file (YAML safe-loaded)."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a parser spec is a mapping")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise SpecError(f"{path}: missing {', '.join(missing)}")
    if raw["family"] not in FAMILIES:
        raise SpecError(f"{path}: unknown family {raw['family']!r}")
    sniff = raw["sniff"]
    nulls = tuple(raw.get("null", ("-", "")))
    try:
        columns = tuple(rules_from_spec(raw.get("columns", {}), nulls))
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
    return ParserSpec(
        name=raw["name"],
        title=raw.get("title", raw["name"]),
        engine=raw["engine"],
        family=raw["family"],
        dataset=raw["dataset"],
        signature=Signature(raw["name"], sniff["pattern"], int(sniff.get("priority", 0)),
                            str(sniff.get("magic", "")).encode("latin-1")),
        options=raw.get(raw["engine"], {}) or {},
        columns=columns,
        constants=raw.get("constants", {}) or {},
        dataset_from_path=tuple((raw.get("dataset_from_path") or {}).items()),
        path=str(path),
    )


def load_specs(folder: Path | None = None) -> dict[str, ParserSpec]:
    """All specs of ``folder`` (default: the packaged ``parsers/``), by name."""
    folder = folder or content_dir("parsers")
    specs: dict[str, ParserSpec] = {}
    for path in sorted(folder.glob("*.yml")):
        spec = load_spec(path)
        if spec.name in specs:
            raise SpecError(f"{path}: parser name {spec.name!r} also used by {specs[spec.name].path}")
        specs[spec.name] = spec
    return specs
