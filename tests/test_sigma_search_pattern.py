"""A rule's regex is run as the shortest regex with the same answer to "is there a match" (``search_pattern``):
same outcome on every text, cheaper to compile (Polars compiles it at each expression)."""

from __future__ import annotations

import random

import polars as pl
import pytest

from soc.sigma.backend import search_pattern
from tests.conftest import CORPORA, need
from tests.test_sigma_corpus import RULE_DIRS


@pytest.mark.parametrize(("pattern", "shorter"), [
    (r"-k\s\w{1,64}(?:\s?(?:-p|-s))?", r"-k\s\w"),  # SigmaHQ: ~20 ms of CPU to compile, now ~0.5 ms
    (r".{1000,}", r".{1000}"),
    (r"net\s+user\s+", r"net\s+user\s"),
    (r"a{2,5}", r"a{2}"),
    (r"x(y)*", "x"),
    (r"ab+?", "ab"),
    (r"(?i)foo\s*", "(?i)foo"),
    (r"foo[a-z]*", "foo"),
    (r"x[^]]*", "x"),
    (r"(ab)+", "(ab)"),
])
def test_a_trailing_part_that_may_match_nothing_is_dropped(pattern, shorter):
    assert search_pattern(pattern) == shorter


@pytest.mark.parametrize("pattern", [
    r"abc", r"a|b?", r"\w+$", r"foo\b", r"foo(?:bar$)?", r"foo(?=x)?", r"a\p{L}*", r"a[[:alpha:]]*",
    r"(?x)a b*", r"a\1*", r"a{,3}", r"a*+", r"a{3}", r"\+.*\+.*\+", r"a(", r"[a", r"*a", r"a[b&&c]*",
    r"^%systemroot%\\[a-zA-Z]{8}\.exe$",
])
def test_anything_else_is_left_as_written(pattern):
    """Assertions, alternation at the top, escapes with arguments, syntax Python cannot read or this reader does
    not follow: the pattern as it is (a pattern that fails must still fail)."""
    assert search_pattern(pattern) == pattern


def _texts(pattern: str, rng: random.Random, n: int) -> list[str]:
    """Texts made of the pattern's own characters, letters, digits and spaces, some long."""
    alphabet = sorted(set(pattern) | set("aAzZ09 \t-k.:/é"))
    out = []
    for _ in range(n):
        size = rng.choice([0, 1, 3, 8, 20, 70, 250, 1001])
        out.append("".join(rng.choice(alphabet) for _ in range(size)))
    return out


@pytest.mark.parametrize("pattern", [
    r"-k\s\w{1,64}(?:\s?(?:-p|-s))?", r"a{2,5}", r"x(y)*", r"k+?", r"(?i)A\s*", r"[a-f0-9]{2,3}", r"(.){20,}",
    r":[0-9]{1,3}\.[0-9]{1,3}", r"\w+`(?:\w+|-|.)`[\w+|\s]+",
])
def test_the_same_outcome_as_the_regex_written(pattern):
    rng = random.Random(7)
    texts = pl.Series(_texts(pattern, rng, 3000) + ["-k x", "-k\tnetsvcs -p", "aa", "x", "A", "ab1", "1:2.3"])
    shorter = search_pattern(pattern)
    assert shorter != pattern
    written = texts.str.contains(pattern)
    assert written.any() and not written.all()
    assert (written == texts.str.contains(shorter)).all()


def test_every_sigmahq_regex_keeps_its_outcome():
    """Every regex of the SigmaHQ rules that is shortened matches the same random texts made of its own
    characters (the hunt's hits on the EVTX corpus are compared in test_evtx_corpus_hits)."""
    from soc.sigma.ir import walk
    from soc.sigma.loader import load

    sigma = need(CORPORA / "sigma", "SigmaHQ rules (../shared/corpora/sigma)")
    found: set[tuple[str, str]] = set()
    for rule in load([sigma / d for d in RULE_DIRS]).rules:
        walk(rule.tree, lambda n: found.add((n[2], n[3])) if n[0] == "re" else None)
    changed = sorted((p, f) for p, f in found if search_pattern(p) != p)
    assert len(changed) >= 10  # (25 at SigmaHQ's copy of 2026-12)
    rng = random.Random(11)
    for pattern, flags in changed:
        prefix = f"(?{flags})" if flags else ""
        texts = pl.Series(_texts(pattern, rng, 400))
        assert (texts.str.contains(prefix + pattern) == texts.str.contains(prefix + search_pattern(pattern))).all(), \
            pattern
