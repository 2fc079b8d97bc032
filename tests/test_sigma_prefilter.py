"""The literal prefilter (soc.sigma.prefilter): what a rule requires, and the same alerts with and without it."""

from __future__ import annotations

import polars as pl
import pytest

from soc.sigma.prefilter import glob_runs, literal, necessary
from tests.conftest import CORPORA, Keep, need
from tests.test_sigma_corpus import RULE_DIRS


def s(field, kind, values, cased=False):
    return ["str", field, kind, values, cased]


def test_necessary_literals_of_and_or_not():
    img = s("Image", "suffix", ["\\cmd.exe"])
    cmd = s("CommandLine", "contains", ["Whoami", "net user"])
    assert necessary(img) == ["lit", "Image", ["\\cmd.exe"]]
    assert necessary(["and", [img, cmd]]) == ["and", [["lit", "Image", ["\\cmd.exe"]],
                                                      ["lit", "CommandLine", ["net user", "whoami"]]]]
    assert necessary(["or", [img, cmd]])[0] == "or"
    # a branch without a literal: an and keeps the others, an or has no condition at all
    regex = ["re", "CommandLine", "a.*b", ""]
    assert necessary(["and", [regex, img]]) == ["lit", "Image", ["\\cmd.exe"]]
    assert necessary(["or", [regex, img]]) is None
    assert necessary(["not", img]) is None
    assert necessary(["and", [["not", img], ["exists", "User", True]]]) is None
    assert necessary(s(None, "contains", ["Mimikatz"])) == ["lit", None, ["mimikatz"]]  # keywords: any text column
    assert necessary(s("Image", "contains", ["ab"])) is None  # too short to be worth searching
    assert necessary(s("CommandLine", "contains", ["\u0410"])) == ["lit", "CommandLine", ["\u0430"]]  # rare
    assert necessary(["re", "CommandLine", "net\\s+stop SuperBackupMan", "i"]) == \
        ["lit", "CommandLine", ["uperbackupman"]]  # (?i): no run across an s (U+017F folds to s)
    assert necessary(["num", "EventID", [4688]]) is None


def test_literal_texts_of_globs_and_cased_values():
    assert glob_runs(r"c:\\windows\\.*\\svc.*\.exe") == ["c:\\windows\\", "\\svc", ".exe"]
    assert glob_runs(r"a.b") == ["a", "b"]
    assert literal("glob", r"C:\\Windows\\.*\\Temp\\.*", False) == "c:\\windows\\"
    assert literal("contains", "PowerShell", True) == "powershell"  # cased: still found in the lower-cased column
    assert literal("contains", "Ｐower", True) == "ower"  # cased non-ASCII: only the ASCII run is safe
    assert literal("exact", "ÉCOLE", False) == "école"  # the backend's own lower-casing


def _hunt(ruleset, frames, prefilter: bool) -> set[tuple]:
    from soc.sigma.hunt import Hunter

    hunter = Hunter(ruleset, prefilter)
    for key, frame in frames.items():
        hunter.feed(key, frame)
    assert not hunter.failures, hunter.failures[:5]
    return set(hunter.matches().select("rule.id", "log.file.path", "log.offset", "winlog.record_id").iter_rows())


def test_prefilter_changes_no_alert_on_a_small_frame():
    from soc.sigma.loader import RuleSet, compile_rule
    from soc.sigma.mapping import Target

    sigma = pytest.importorskip("sigma.rule")
    doc = """
title: t
id: 5b1b8a52-1f43-4a43-9d57-8a9d7d0e3a11
logsource: {product: linux, service: auth}
detection:
    a: {message|contains: ['FAILED password', 'Kelvin']}
    b: {message|re: 'x[0-9]+y'}
    c: {user.name: 'ROOT'}
    condition: (a and c) or b
level: low
"""
    rule = compile_rule(sigma.SigmaRule.from_yaml(doc), "t.yml")
    rule.targets = [Target("authentication")]
    frame = pl.DataFrame({
        "message": ["xx failed PASSWORD", "x12y", "nothing", "KELVIN", "\u212aELVIN", None],
        "user.name": ["root", "a", "ROOT", "Root", "root", "root"],
        "log.offset": list(range(6)),
    })
    frames = {("authentication", "system.auth"): frame}
    ruleset = RuleSet([rule], [])
    with_prefilter, without = _hunt(ruleset, frames, True), _hunt(ruleset, frames, False)
    assert with_prefilter == without
    assert {row[2] for row in without} == {0, 1, 3, 4}  # the Kelvin sign lower-cases to k as the backend sees it


def test_small_frames_wait_and_give_the_same_alerts():
    from soc.sigma.hunt import Hunter
    from soc.sigma.loader import RuleSet, compile_rule
    from soc.sigma.mapping import Target

    sigma = pytest.importorskip("sigma.rule")
    doc = """
title: t
id: 0b1d6f0e-8e8e-4c1a-9a51-0d3f3c1f2b77
logsource: {product: linux, service: auth}
detection:
    a: {message|contains: 'failed password'}
    condition: a
level: low
"""
    rule = compile_rule(sigma.SigmaRule.from_yaml(doc), "t.yml")
    rule.targets = [Target("authentication")]
    frame = pl.DataFrame({"message": ["Failed password", "ok", "x failed password y"] * 5,
                          "log.offset": list(range(15))})
    key = ("authentication", "system.auth")
    whole = Hunter(RuleSet([rule], [])).evaluate(key, frame)
    hunter = Hunter(RuleSet([rule], []), batch_rows=8)
    for part in (frame[:4], frame[4:6], frame[6:]):  # 4 + 2 wait; the third part (9 rows) is evaluated at once
        hunter.feed(key, part)
    assert hunter.events == 9 and len(hunter._waiting) == 1
    assert sorted(hunter.matches()["log.offset"]) == sorted(whole["log.offset"]) == [0, 2, 3, 5, 6, 8, 9, 11, 12, 14]
    assert hunter.events == 15


@pytest.fixture(scope="module")
def ruleset():
    from soc.sigma.loader import load

    sigma = need(CORPORA / "sigma", "SigmaHQ rules and regression data (../shared/corpora/sigma)")
    return load([sigma / d for d in RULE_DIRS])


@pytest.fixture(scope="module")
def corpus_frames() -> dict[tuple[str, str], pl.DataFrame]:
    """The frames of every EVTX file of the corpora: evtx-to-mitre-attack and the Sigma regression data."""
    from soc import pipeline
    from soc.sources import discover

    files = sorted(need(CORPORA / "evtx", "EVTX samples (../shared/corpora/evtx)").rglob("*.evtx"))
    files += sorted(need(CORPORA / "sigma", "SigmaHQ regression data").joinpath("regression_data").rglob("*.evtx"))
    sink = Keep()
    stats = pipeline.run(discover([str(p) for p in files]), sink)
    assert not [s.error for s in stats if s.error]
    return {key: pl.concat(parts, how="diagonal_relaxed") for key, parts in sink.frames.items()}


@pytest.mark.slow
def test_same_alerts_with_and_without_prefilter_on_the_corpora(ruleset, corpus_frames, monkeypatch):
    from soc.sigma import prefilter

    without = _hunt(ruleset, corpus_frames, False)
    assert len(without) > 2000
    # the corpus frames are small: sample fewer rows so that weak literal groups are dropped on most of them
    # (frames under 2 x SAMPLE rows are searched for every group, as they are by default)
    monkeypatch.setattr(prefilter, "SAMPLE", 40)
    assert _hunt(ruleset, corpus_frames, True) == without
