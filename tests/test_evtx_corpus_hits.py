"""Issue 18: speed-ups of the EVTX hunt keep the same hits, per (rule id, file, record), as recorded in
``tests/data/evtx_hits.json`` (``python -m tests.evtx_corpus --write``) on the 483 corpus files."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CORPORA, need
from tests.evtx_corpus import GOLDEN, RULE_SETS, evtx_files, hunt_hits


@pytest.mark.parametrize("rule_set", sorted(RULE_SETS))
def test_the_corpus_hunt_finds_the_recorded_hits(rule_set):
    need(CORPORA / "evtx" / "evtx-to-mitre-attack", "EVTX corpus (../shared/corpora/evtx)")
    need(CORPORA / "sigma" / "regression_data", "SigmaHQ regression data (../shared/corpora/sigma)")
    assert len(evtx_files()) == 483
    want = json.loads(GOLDEN.read_text())[rule_set]
    got = hunt_hits(rule_set)
    flat = lambda hits: {(r, f, i) for r, by_file in hits.items() for f, ids in by_file.items()  # noqa: E731
                         for i in ids}
    missing, extra = sorted(flat(want) - flat(got))[:20], sorted(flat(got) - flat(want))[:20]
    assert got == want, f"missing (first 20): {missing}\nnew (first 20): {extra}"
    assert sum(len(ids) for by_file in got.values() for ids in by_file.values()) > 2000
