"""The compiled-rule cache: used when fresh, private (0600), never read from a file others could write."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from soc.sigma import loader
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
    files = list((tmp_path / "cache").glob("sigma-*.json"))
    assert len(files) == 2  # the folder's file and the load's
    for cache in files:
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


def _folder(tmp_path, n: int = 3) -> Path:
    rules = tmp_path / "rules"
    (rules / "sub").mkdir(parents=True)
    for i in range(n):
        (rules / ("sub" if i % 2 else ".") / f"r{i}.yml").write_text(
            RULE.replace("c1", f"{i:02}").replace("Whoami", f"Whoami {i}"))
    return rules


def _no_compile(monkeypatch) -> list:
    calls: list = []
    real = loader.compile_file
    monkeypatch.setattr(loader, "compile_file", lambda *a: calls.append(a[0].name) or real(*a))
    return calls


def test_a_warm_load_reads_the_load_file_only_and_gives_the_same_rule_set(tmp_path, monkeypatch):
    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rules = _folder(tmp_path)
    cold = load([rules])
    shards = list((tmp_path / "cache").glob("sigma-rules-*.json"))  # one file per rule folder ...
    assert len(shards) == 2
    for shard in shards:
        shard.unlink()  # ... that a warm load does not need
    calls = _no_compile(monkeypatch)
    warm = load([rules])
    assert calls == []
    assert warm.rules == cold.rules and [r.targets for r in warm.rules] == [r.targets for r in cold.rules]
    assert [r.path for r in warm.rules] == [r.path for r in cold.rules] and warm.files == cold.files == 3
    assert [r.record() for r in warm.rules] == [r.record() for r in cold.rules]
    assert warm.rules[0].targets and all(r.targets for r in warm.rules)


def test_a_rule_file_edited_added_or_removed_since_the_load_file_is_compiled_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rules = _folder(tmp_path)
    load([rules])
    calls = _no_compile(monkeypatch)
    edited = rules / "r0.yml"
    edited.write_text(edited.read_text().replace("whoami", "hostname"))
    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 10**9))
    got = load([rules])
    assert calls == ["r0.yml"]  # the others come from the folder files
    assert "hostname" in str(got.by_id()["0a0a0a0a-0000-4000-8000-000000000000"].tree)
    assert load([rules]).rules == got.rules and calls == ["r0.yml"]  # and the new load file serves it
    (rules / "sub" / "r1.yml").unlink()
    (rules / "sub" / "r9.yml").write_text(RULE.replace("c1", "09"))
    got = load([rules])
    assert calls == ["r0.yml", "r9.yml"]
    assert sorted(r.id[-2:] for r in got.rules) == ["00", "02", "09"] and got.files == 3


def test_the_load_file_is_per_placeholder_set_and_per_list_of_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rules = _folder(tmp_path)
    load([rules])
    load([rules / "sub"])
    load([rules], placeholders={"x": ["1"]})
    assert len(list((tmp_path / "cache").glob("sigma-load-*.json"))) == 3
    assert len(load([rules / "sub"]).rules) == 1


def test_rule_files_are_found_in_path_order_without_hidden_names_and_resolved(tmp_path):
    root = tmp_path / "r"
    for name in ("b/c.yml", "b-c.yml", "a.yaml", "b/d/e.yml", ".hidden/x.yml", "b/.x.yml", "b/notes.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(RULE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "z.yml").write_text(RULE)
    (root / "link.yml").symlink_to(elsewhere / "z.yml")
    (root / "linked_folder").symlink_to(elsewhere, target_is_directory=True)
    found = loader.rule_files([root])
    expected = sorted({p.resolve() for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(root).parts)})
    assert found == expected  # what Path.rglob finds (no symbolic link to a folder followed), in Path order
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "elsewhere/z.yml", "r/a.yaml", "r/b/c.yml", "r/b/d/e.yml", "r/b-c.yml"]
    assert loader.rule_files([root / "b" / "c.yml", str(root / "*.yml")]) == [
        elsewhere / "z.yml", root / "b" / "c.yml", root / "b-c.yml"]
    with pytest.raises(loader.RuleSourceError):
        loader.rule_files([str(root / "nothing*.yml")])


def test_a_cached_rule_is_a_rule_like_any_other(tmp_path, monkeypatch):
    import copy
    import pickle

    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rules = _folder(tmp_path, 1)
    cold = load([rules]).rules[0]
    warm = load([rules]).rules[0]
    assert "tree" not in vars(warm) and "title" not in vars(warm)  # read from JSON text when asked for
    assert pickle.loads(pickle.dumps(warm)) == cold  # noqa: S301 (our own object)
    assert copy.deepcopy(warm) == cold and warm.tree == cold.tree and warm == cold
    with pytest.raises(AttributeError):
        warm.nothing  # noqa: B018


def test_a_load_file_cut_short_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rules = _folder(tmp_path)
    cold = load([rules])
    (file,) = (tmp_path / "cache").glob("sigma-load-*.json")
    lines = file.read_bytes().split(b"\n")
    assert len(lines) == 1 + len(cold.rules)  # the load, then a rule tree a line
    file.write_bytes(b"\n".join(lines[:-1]))
    assert load([rules]).rules == cold.rules
    assert len(file.read_bytes().split(b"\n")) == 1 + len(cold.rules)  # written again, whole


def test_a_warm_load_keeps_what_a_hunt_needs_of_each_rule_so_its_tree_stays_text(tmp_path, monkeypatch):
    """The load file keeps each rule's fields, keywords flag and literal condition (``prefilter.needs``): the
    hunter reads them without decoding the rule's tree, and they are what the tree gives."""
    from soc.sigma.hunt import Hunter
    from soc.sigma.prefilter import needs

    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rules = _folder(tmp_path)
    cold = load([rules])
    assert [r.needs() for r in cold.rules] == [None] * 3  # compiled now: nothing kept yet
    warm = load([rules])
    hunter = Hunter(warm)
    for i, rule in enumerate(warm.rules):
        got = hunter._rule(i)
        assert "tree" not in rule.__dict__  # the tree is still JSON text
        assert rule.needs() == needs(cold.rules[i].tree) == [needs(rule.tree)[0], list(got.fields), got.keywords,
                                                              got.cond]
    assert warm.rules[0].needs()[1:] == [["Image"], False, ["lit", "Image", ["\\whoami.exe"]]]


def test_the_load_file_is_named_by_its_format(tmp_path, monkeypatch):
    """Two versions of soc on one machine keep load files of their own (they wrote over each other's, and
    each load compiled again)."""
    from soc.sigma import cache

    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    folder = _folder(tmp_path)
    load([folder])
    monkeypatch.setattr(cache, "LOAD_FORMAT", cache.LOAD_FORMAT + 1)
    load([folder])
    names = sorted(f.name for f in (tmp_path / "cache").glob("sigma-load-*.json"))
    assert len(names) == 2 and names[0].endswith(f"-v{cache.LOAD_FORMAT - 1}.json")
    assert names[1].endswith(f"-v{cache.LOAD_FORMAT}.json")


def test_load_file_texts_read_back_as_the_standard_json_reader_reads_them():
    """The load file's rule lines are read by orjson, except a text it would read otherwise (an integer beyond 64
    bits: a float there; NaN: refused), marked at the write and read by the standard reader."""
    import json
    import math

    big = 123456789012345678901234567890
    for value in (["num", "Size", [big]], ["num", "Size", [-(2**63) - 1]], ["cmp", "x", "gt", float("nan")]):
        text = loader._encode(value)
        assert text.startswith(" ")  # marked
        got = loader._decode(text.encode())
        assert repr(got) == repr(json.loads(text)) and (got[2] == value[2] or math.isnan(got[3]))
    plain = ["str", "Image", "suffix", ["\\whoami.exe", "é", "\u2028"], False, 2**63, 1.5, None, True]
    text = loader._encode(plain)
    assert not text.startswith(" ") and loader._decode(text.encode()) == plain == loader._decode(text)


def test_a_warm_load_walks_no_folder_whose_stamps_are_kept_and_sees_every_change(tmp_path, monkeypatch):
    """The load file keeps the stamps of the folders walked: while they are the same, a load stats them instead
    of listing them; a rule file added, removed or renamed, or a folder added, changes a folder's stamps."""
    monkeypatch.setenv("SOC_CACHE_DIR", str(tmp_path / "cache"))
    rules = _folder(tmp_path)
    cold = load([rules])
    listed: list = []
    real = os.scandir
    monkeypatch.setattr(loader.os, "scandir", lambda p: listed.append(p) or real(p))
    assert load([rules]).rules == cold.rules and listed == []  # no folder listed
    (rules / "sub" / "new").mkdir()
    (rules / "sub" / "new" / "r7.yml").write_text(RULE.replace("c1", "07"))
    got = load([rules])
    assert listed and sorted(r.id[-2:] for r in got.rules) == ["00", "01", "02", "07"]
    listed.clear()
    assert load([rules]).rules == got.rules and listed == []
    (rules / "sub" / "new" / "r7.yml").rename(rules / "sub" / "new" / ".r7.yml")  # a hidden name: no rule
    assert sorted(r.id[-2:] for r in load([rules]).rules) == ["00", "01", "02"] and listed
    listed.clear()
    (rules / "r2.yml").unlink()
    assert sorted(r.id[-2:] for r in load([rules]).rules) == ["00", "01"] and listed
    with pytest.raises(loader.RuleSourceError):  # a glob that names nothing any more: walked, not kept
        load([rules, str(tmp_path / "gone*.yml")])
    (rules / "x.yml").write_text(RULE.replace("c1", "05"))
    assert [r.id[-2:] for r in load([rules / "x.yml"]).rules] == ["05"]
    (rules / "x.yml").unlink()
    with pytest.raises(loader.RuleSourceError):  # a rule file given by name and removed since
        load([rules / "x.yml"])
