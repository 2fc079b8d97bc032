"""The compiled-rule cache: used when fresh, private (0600), never read from a file others could write."""

from __future__ import annotations

import os
import stat

from soc.sigma.loader import load

RULE = """title: Whoami
id: 0a0a0a0a-0000-4000-8000-0000000000c1
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\\\\whoami.exe'}
  condition: selection
"""


def test_cache_is_written_private_and_reused_until_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rule = tmp_path / "r.yml"
    rule.write_text(RULE)
    first = load([rule])
    (cache,) = (tmp_path / "cache").glob("sigma-rules-*.json")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    assert load([rule]).rules == first.rules
    import soc.sigma.loader as loader

    calls = []
    real = loader.compile_file
    monkeypatch.setattr(loader, "compile_file", lambda *a: calls.append(a) or real(*a))
    load([rule])
    assert calls == []  # served from the cache
    rule.write_text(RULE.replace("whoami", "hostname"))
    os.utime(rule, ns=(rule.stat().st_atime_ns, rule.stat().st_mtime_ns + 10**9))
    changed = load([rule])
    assert len(calls) == 1 and changed.rules[0].tree != first.rules[0].tree


def test_a_cache_others_can_write_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rule = tmp_path / "r.yml"
    rule.write_text(RULE)
    load([rule])
    (cache,) = (tmp_path / "cache").glob("sigma-rules-*.json")
    cache.write_text(cache.read_text().replace("whoami", "notepad"))  # tampered
    os.chmod(cache, 0o666)
    assert "whoami" in str(load([rule]).rules[0].tree)  # compiled again from the rule, not the tampered cache


def test_each_rule_folder_has_its_own_cache_file_read_only_when_needed(tmp_path, monkeypatch):
    from soc.sigma.cache import RuleCache

    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "r.yml").write_text(RULE.replace("c1", "c2" if name == "b" else "c1"))
    both = load([tmp_path / "a", tmp_path / "b"])
    assert len(both.rules) == 2 and not both.errors
    assert len(list((tmp_path / "cache").glob("sigma-rules-*.json"))) == 2
    salt = next((tmp_path / "cache").glob("sigma-rules-*.json")).name.split("-")[2]
    cache = RuleCache(salt)
    assert cache.get((tmp_path / "a" / "r.yml").resolve()) is not None  # served from a's file
    assert list(cache.shards) == [(tmp_path / "a").resolve()]  # b's file was not read
