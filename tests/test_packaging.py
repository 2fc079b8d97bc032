"""A wheel built from the repository carries the analyst-editable content next to the code."""

from __future__ import annotations

import zipfile

import pytest

from tests.conftest import ROOT


def test_wheel_contains_parsers_detectors_and_rules(tmp_path, monkeypatch):
    build = pytest.importorskip("hatchling.build", reason="hatchling (the build backend) is in the [test] extra")
    monkeypatch.chdir(ROOT)
    wheel = tmp_path / build.build_wheel(str(tmp_path))
    names = set(zipfile.ZipFile(wheel).namelist())
    specs = sorted(p.name for p in (ROOT / "parsers").glob("*.yml"))
    assert specs, "no parser specs in the repository"
    for spec in specs:
        assert f"soc/_content/parsers/{spec}" in names
    assert "soc/_content/parsers/zeek/logs.yml" in names  # the Zeek streams' fields (zeek, zeek_json)
    assert any(n.startswith("soc/_content/detectors/") for n in names)
    assert any(n.startswith("soc/_content/rules/") for n in names)
    assert "soc/_content/policy/vietnam.toml" in names  # the 4-layer and security-level mapping (data)
    assert "soc/_content/detectors/dns_allowlist.txt" in names  # the DNS detectors' allowlist (data)
    assert "soc/detect/label_model.json" in names  # their trigram model of ordinary names
    assert "soc/cli.py" in names and "soc/parse/kernels.py" in names
    assert not any("__pycache__" in n or n.endswith(".nbi") or n.endswith(".nbc") for n in names)
