"""soc's own YAML content is read from its JSON copies (``soc.content.read_yaml``): a hunt whose caches are warm
never imports PyYAML (~13-18 ms of CPU in every process of a hunt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def _shipped() -> list:
    return [p for folder in ("parsers", "detectors", "rules/pipeline") for p in sorted((ROOT / folder).rglob("*.yml"))]


def test_every_shipped_document_keeps_its_json_copy():
    """A document JSON gives back different (numbers as keys, dates) is parsed as YAML in every process."""
    from soc import safe_yaml

    for path in _shipped():
        doc = safe_yaml.load(path.read_text(encoding="utf-8"))
        assert json.loads(json.dumps(doc)) == doc, path


def test_the_iis_default_layouts_are_keyed_by_field_count():
    from soc.parse.columns import Context
    from soc.parse.engines.w3c import W3CEngine
    from soc.parse.spec import load_specs

    spec = load_specs()["iis_w3c"]
    engine = W3CEngine(spec, Context("u_ex261120.log"))
    assert sorted(engine.defaults) == [14, 15, 16, 18, 19, 20, 22]
    assert all(len(fields) == n for n, fields in engine.defaults.items())


_CODE = ("import sys\nfrom soc.cli import main\nsys.argv = ['soc', 'hunt', *sys.argv[1:]]\n"
         "try:\n    main()\n"
         "except SystemExit:\n    pass\n"
         "print('YAML', 'yaml' in sys.modules)")


def test_a_hunt_with_warm_caches_never_imports_pyyaml(tmp_path, corpora):
    """The first hunt compiles the rules and copies the YAML documents (PyYAML and pySigma imported); the second
    reads both caches: its detectors, parser specs and rules need no YAML parser. (Numba's import takes PyYAML
    along: small EVTX files are read without Numba.)"""
    paths = [str(p) for p in sorted(corpora.rglob("*.evtx"))[:20]]
    env = {**os.environ, "SOC_CONFIG": "", "SOC_JIT": "", "SOC_CACHE_DIR": str(tmp_path / "cache")}
    got = []
    for run in ("cold", "warm"):
        args = [*paths, "--data-dir", str(tmp_path / run), "--no-es", "--workers", "1"]
        done = subprocess.run([sys.executable, "-c", _CODE, *args], capture_output=True, text=True, cwd=ROOT,
                              env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        got.append(done.stdout.strip().splitlines()[-1])
    assert got == ["YAML True", "YAML False"]


def test_a_spec_regex_polars_accepted_is_not_checked_again(tmp_path, monkeypatch):
    """``columns._regex`` runs a Polars query per pattern once per Polars version and cache folder; a bad pattern is
    an error every time and never kept; a copy others could write is not read."""
    import polars as pl
    import pytest

    from soc import content
    from soc.parse import columns
    from soc.parse.columns import SpecError

    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(content, "_sets", {})
    monkeypatch.setattr(content, "_grown", set())
    checks = []
    real = pl.Series

    class Counting:  # pl.Series as _regex uses it, counted
        def __new__(cls, *args, **kwargs):
            checks.append(1)
            return real(*args, **kwargs)

    monkeypatch.setattr(columns.pl, "Series", Counting)
    for _ in range(2):
        assert columns._regex("a", "extract", r"^([^\\]+)\\") == r"^([^\\]+)\\"
        with pytest.raises(SpecError, match="not a valid regex"):
            columns._regex("a", "extract", "[a-")
    assert len(checks) == 1 + 2
    content._save_sets()
    (saved,) = (tmp_path / "cache").glob("regexes-*.json")
    assert saved.name == f"regexes-{pl.__version__}.json"
    assert json.loads(saved.read_text()) == {"items": [r"^([^\\]+)\\"]}
    monkeypatch.setattr(content, "_sets", {})  # another process: reads the file
    columns._regex("a", "extract", r"^([^\\]+)\\")
    assert len(checks) == 3
    saved.chmod(0o666)
    monkeypatch.setattr(content, "_sets", {})
    columns._regex("a", "extract", r"^([^\\]+)\\")
    assert len(checks) == 4


def test_a_broken_copies_file_is_read_as_none(tmp_path, monkeypatch):
    from soc import content

    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path))
    spec = tmp_path / "d.yml"
    spec.write_text("threshold: 5\nname: ok\n")
    for text in ('{"docs": {"k": "v"', "[1, 2]", '{"docs": [1]}', '{"docs": {"k": 1, "x": "y"}}', "\udcff"):
        monkeypatch.setattr(content, "_docs", {})
        monkeypatch.setattr(content, "_changed", set())
        (tmp_path / f"yaml-docs-{content.YAML_FORMAT}.json").write_text(text, errors="surrogateescape")
        assert content.read_yaml(spec) == {"threshold": 5, "name": "ok"}
