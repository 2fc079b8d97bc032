"""Conformance: every variant in ``tests/conformance/<format>/cases.json`` parses to its expected ECS fields.

The cases are lines of our own making with the shapes of real-world variants; see the folder's README.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from tests.conftest import _specs, parse_text

HERE = Path(__file__).parent / "conformance"


def _cases() -> list:
    out = []
    for path in sorted(HERE.glob("*/cases.json")):
        for i, case in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            out.append(pytest.param(path.parent.name, case, id=f"{path.parent.name}:{i}:{case['name']}"))
    return out


def _plain(value):
    """A frame value as JSON would write it: timestamps as ISO 8601, lists as lists."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def test_every_spec_folder_has_cases_of_a_known_format():
    names = {p.parent.name for p in HERE.glob("*/cases.json")}
    assert names, "no conformance cases found"
    assert names <= set(_specs()), names - set(_specs())


@pytest.mark.parametrize(("fmt", "case"), _cases())
def test_conformance(fmt: str, case: dict):
    lines = case["input"] if isinstance(case["input"], list) else [case["input"]]
    text = "\n".join(lines) + "\n"
    expected_format = case.get("sniff", fmt)
    if expected_format:
        from soc.sources.sniff import sniff

        assert sniff(text.encode(), [s.signature for s in _specs().values()]) == expected_format
    res = parse_text(fmt, text, path=case.get("path", "test.log"), zone=case.get("zone", "Asia/Ho_Chi_Minh"),
                     year=case.get("year", 2026))
    dead = res.dead["error.message"].to_list() if res.dead.height else []
    assert len(dead) == case.get("dead", 0), dead
    assert res.lines == sum(f.height for f in res.frames.values()) + res.dead.height  # nothing lost
    if "family" not in case:
        return
    key = (case["family"], case["dataset"])
    assert key in res.frames, f"no frame {key}; frames: {sorted(res.frames)}"
    frame = res.frames[key]
    if "records" in case:
        assert frame.height == case["records"]
    row = frame.row(case.get("row", 0), named=True)
    got = {k: _plain(row.get(k)) for k in case.get("expect", {})}
    assert got == case.get("expect", {})
    present = [c for c in case.get("absent", []) if c in frame.columns]
    assert not present, f"columns that must be absent: {present}"
