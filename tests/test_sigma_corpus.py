"""The SigmaHQ rule set and its regression data (../shared/corpora/sigma): conformance, loading, isolation.

Each regression test is ``info.yml`` (the rule's id, the ``.evtx``, ``match_count``, default 1): the rule
with that id must match at least ``match_count`` events of its file, read by our own pipeline. The whole
rule set is loaded once (the disk cache makes it fast after the first run) and evaluated once over the
frames of all 202 files together; matches are told apart by ``log.file.path``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.conftest import CORPORA, Keep, need

RULE_DIRS = ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-placeholder")
REGRESSION_TESTS = 202


@dataclass(frozen=True)
class Case:
    rule_id: str
    title: str
    evtx: Path
    match_count: int


@pytest.fixture(scope="session")
def sigma_dir() -> Path:
    return need(CORPORA / "sigma", "SigmaHQ rules and regression data (../shared/corpora/sigma)")


@pytest.fixture(scope="session")
def ruleset(sigma_dir):
    from soc.sigma.loader import load

    return load([sigma_dir / d for d in RULE_DIRS])


@pytest.fixture(scope="session")
def cases(sigma_dir) -> list[Case]:
    found = []
    for info in sorted((sigma_dir / "regression_data").rglob("info.yml")):
        doc = yaml.safe_load(info.read_text())
        meta = doc["rule_metadata"][0]
        for test in doc.get("regression_tests_info") or []:
            if test.get("type") == "evtx":
                path = sigma_dir / test["path"]
                found.append(Case(str(meta["id"]), meta.get("title", ""), path, int(test.get("match_count", 1))))
    return found


@pytest.fixture(scope="session")
def frames(cases) -> dict[tuple[str, str], pl.DataFrame]:
    from soc import pipeline
    from soc.sources import discover

    sink = Keep()  # every frame (the regression files are small)
    stats = pipeline.run(discover(sorted({str(c.evtx) for c in cases})), sink)
    assert not [s.error for s in stats if s.error]
    return {key: pl.concat(parts, how="diagonal_relaxed") for key, parts in sink.frames.items()}


def run(ruleset, frames) -> pl.DataFrame:
    from soc.sigma.hunt import Hunter

    hunter = Hunter(ruleset)
    for key, frame in frames.items():
        hunter.feed(key, frame)
    assert not hunter.failures, hunter.failures[:5]
    return hunter.matches()


@pytest.fixture(scope="session")
def matches(ruleset, frames) -> pl.DataFrame:
    return run(ruleset, frames)


@pytest.mark.slow
def test_regression_data_every_rule_matches_its_events(cases, ruleset, matches):
    assert len(cases) == REGRESSION_TESTS
    loaded = ruleset.by_id()
    counts = matches.group_by("rule.id", "log.file.path").len()
    hits = {(r["rule.id"], r["log.file.path"]): r["len"] for r in counts.iter_rows(named=True)}
    others = matches.group_by("log.file.path").agg(pl.col("rule.id").n_unique().alias("rules"))
    fired = {r["log.file.path"]: r["rules"] for r in others.iter_rows(named=True)}
    failed = []
    lines = []
    for case in cases:
        n = hits.get((case.rule_id, str(case.evtx)), 0)
        other = fired.get(str(case.evtx), 0) - (n > 0)
        lines.append(f"{n:5} {other:4}  {case.evtx.name}  {case.title}")
        if case.rule_id not in loaded:
            failed.append(f"{case.rule_id} ({case.title}): rule not loaded")
        elif n < case.match_count:
            failed.append(f"{case.rule_id} ({case.title}): {n} < {case.match_count} in {case.evtx}")
    print(f"\nregression: {len(cases) - len(failed)}/{len(cases)} (matches, other rules firing, file, rule)")
    print("\n".join(lines))
    print(f"other rules firing per file: total {sum(fired.values()) - len(cases) + len(failed)}")
    assert not failed, "\n".join(failed)


def test_every_rule_loads_but_those_needing_site_placeholders(ruleset):
    from soc.sigma.loader import known_unsupported

    known = known_unsupported()
    unexpected = [str(e) for e in ruleset.errors if not any(e.reason.startswith(k["reason"]) for k in known)]
    print(f"\n{len(ruleset.rules):,} rules loaded from {ruleset.files:,} files; {len(ruleset.errors)} not loaded "
          f"(placeholders without a value: {len(ruleset.errors) - len(unexpected)})")
    assert not unexpected, "\n".join(unexpected)
    assert len(ruleset.rules) + len(ruleset.errors) == ruleset.files  # one rule per SigmaHQ file
    assert len(ruleset.rules) >= 3700


def test_placeholder_rules_load_when_their_values_are_given(sigma_dir):
    import re

    from soc.sigma.loader import load

    files = sorted((sigma_dir / "rules-placeholder").rglob("*.yml"))
    names = {name for f in files for name in re.findall(r"%([A-Za-z0-9_-]+)%", f.read_text())}
    values = {name: [f"value-of-{name}"] for name in names}
    filled = load([sigma_dir / "rules-placeholder"], values)
    assert filled.errors == [] and len(filled.rules) == filled.files


def _identity(frame: pl.DataFrame) -> set[tuple]:
    return set(frame.select("rule.id", "log.file.path", "log.offset", "winlog.record_id").iter_rows())


@pytest.mark.slow
def test_a_rules_alerts_do_not_depend_on_the_other_rules(ruleset, frames, matches):
    from soc.sigma.loader import RuleSet

    fired = sorted(set(matches["rule.id"]))
    assert len(fired) > 100
    by_id = ruleset.by_id()
    quiet = [r.id for r in ruleset.rules if r.targets and r.id not in set(fired)][:50]
    for rule_id in fired + quiet:
        alone = run(RuleSet([by_id[rule_id]], []), frames)
        assert _identity(alone) == _identity(matches.filter(pl.col("rule.id") == rule_id)), rule_id
