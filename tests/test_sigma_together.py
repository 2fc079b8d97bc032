"""Small frames of many keys evaluated together (``Hunter.feed``): the same alerts as each frame alone, and a
rule's expression built only when the literals it requires are in the frame."""

from __future__ import annotations

import polars as pl
import pytest

from soc.sigma.hunt import Hunter
from soc.sigma.loader import RuleSet, compile_rule
from soc.sigma.mapping import Target

MAPPED = {"Message": "message"}  # Sigma's Message is our message where a frame has it


def rule(number: int, detection: str, targets: list[Target]):
    sigma = pytest.importorskip("sigma.rule")
    doc = f"""
title: rule {number}
id: 5b1b8a52-1f43-4a43-9d57-8a9d7d0e3a{number:02d}
logsource: {{product: linux, service: auth}}
detection:
{detection}
level: low
"""
    got = compile_rule(sigma.SigmaRule.from_yaml(doc), "t.yml")
    got.targets = targets
    return got


def ruleset() -> RuleSet:
    every = [Target("auth", "*", MAPPED)]
    return RuleSet([
        rule(1, "    a: {Message|contains: 'failed'}\n    condition: a", every),
        rule(2, "    a: {Message|contains: 'failed'}\n    b: {User: null}\n    condition: a and b", every),
        rule(3, "    a: {Message|contains: 'failed'}\n    b: {User|exists: true}\n    condition: a and not b", every),
        rule(4, "    keywords: ['SECRET']\n    condition: keywords", every),
        rule(5, "    a: {Port: 22}\n    condition: a", every),
        rule(6, "    a: {Port|gt: 1000}\n    condition: a", every),
        rule(7, "    a: {Message|endswith: 'denied'}\n    condition: a", [Target("auth", "b", MAPPED)]),
        rule(8, "    a: {Message|contains: 'failed'}\n    b: {User: '*'}\n    condition: a and not b", every),
    ], [])


def frames() -> list[tuple[tuple[str, str], pl.DataFrame]]:
    """Keys whose columns differ: Message mapped or not, User there or not, Port a number or a text."""
    a = pl.DataFrame({"message": ["login failed", "ok", "failed SECRET", None], "User": ["x", None, "y", "z"],
                      "Port": [22, 2222, 23, None]})
    b = pl.DataFrame({"Message": ["FAILED", "access denied", "nothing secret"], "Port": ["22", " 22", "4000"]})
    c = pl.DataFrame({"message": ["failed again"], "other": ["a secret"]})
    out = []
    for key, frame in ((("auth", "a"), a), (("auth", "b"), b), (("auth", "c"), c)):
        frame = frame.with_columns(pl.lit(key[1]).alias("event.dataset"), pl.int_range(pl.len()).alias("log.offset"))
        out += [(key, frame[: frame.height // 2]), (key, frame[frame.height // 2:])]
    return out


def hits(found: pl.DataFrame) -> set[tuple]:
    return set(found.select("rule.name", "event.dataset", "log.offset").iter_rows())


@pytest.mark.parametrize("prefilter", [True, False])
def test_frames_of_many_keys_evaluated_together_give_the_alerts_of_each_alone(prefilter):
    alone = Hunter(ruleset(), prefilter)
    each = set().union(*(hits(alone.evaluate(key, frame)) for key, frame in frames()))
    hunter = Hunter(ruleset(), prefilter)
    for key, frame in frames():
        hunter.feed(key, frame)
    assert hunter.events == 0  # all wait: they are small
    together = hits(hunter.matches())
    assert hunter.events == 8 and not hunter.failures
    assert together == each
    assert together == {
        ("rule 1", "a", 0), ("rule 1", "a", 2), ("rule 1", "b", 0), ("rule 1", "c", 0),
        ("rule 2", "b", 0), ("rule 2", "c", 0),  # no User column: null
        ("rule 3", "b", 0), ("rule 3", "c", 0),
        ("rule 4", "a", 2), ("rule 4", "b", 2), ("rule 4", "c", 0),  # keywords: any text column of its own
        ("rule 5", "a", 0), ("rule 5", "b", 0), ("rule 5", "b", 1),  # a number, or its text
        ("rule 6", "a", 1), ("rule 6", "b", 2),
        ("rule 7", "b", 1),  # routed to b only
        ("rule 8", "b", 0), ("rule 8", "c", 0),
    }


def test_a_rule_is_built_only_where_its_literals_are():
    hunter = Hunter(ruleset())
    hunter.evaluate(("auth", "b"), pl.DataFrame({"Message": ["all good"], "Port": ["80"]}))
    built = {hunter.ruleset.rules[memo[0]].title for memo in hunter._exprs}
    assert built == {"rule 5", "rule 6"}  # no literal to require: they run on every row
    hunter.evaluate(("auth", "b"), pl.DataFrame({"Message": ["was denied"], "Port": ["80"]}))
    assert {hunter.ruleset.rules[memo[0]].title for memo in hunter._exprs} == {"rule 5", "rule 6", "rule 7"}


def test_a_rule_failing_at_run_time_is_reported_and_the_others_still_match(monkeypatch):
    """The rules' leaf tests run in one select; when one fails, each runs alone: the rules reading it are
    reported for the key, the others (even those sharing their other tests) keep their alerts."""
    from soc.sigma.backend import Builder

    every = [Target("auth", "*", MAPPED)]
    rules = RuleSet([
        rule(1, "    a: {Message|contains: 'failed'}\n    b: {Message|re: 'x'}\n    condition: a and b", every),
        rule(2, "    a: {Message|contains: 'failed'}\n    condition: a", every),
    ], [])
    monkeypatch.setattr(Builder, "_re", lambda self, node, column: pl.col(column).str.contains("("))  # bad regex
    hunter = Hunter(rules)
    found = hunter.evaluate(("auth", "a"), pl.DataFrame({"message": ["login failed x", "ok"],
                                                         "event.dataset": ["a", "a"], "log.offset": [0, 1]}))
    assert hits(found) == {("rule 2", "a", 0)}
    assert [(f.rule_id[-2:], f.key) for f in hunter.failures] == [("01", ("auth", "a"))]
    assert "regex" in hunter.failures[0].reason.lower()


def test_contains_leaves_answered_by_the_literal_search_match_as_their_tests(monkeypatch):
    """A case-insensitive ``contains`` leaf whose texts the literal search looked for takes its rows from that
    search (``Hunter._known``) instead of running its test: the alerts are those without the prefilter."""
    every = [Target("auth", "*", MAPPED)]
    rules = RuleSet([
        rule(1, "    a: {Message|contains: 'failed'}\n    b: {Message|contains: ['again', 'ärger']}\n"
                "    condition: a and not b", every),
        rule(2, "    a: {Message|contains: ['FAILED', 'denied']}\n    condition: a", every),
    ], [])
    frame = pl.DataFrame({"message": ["Login FAILED", "failed AGAIN", "Failed: ÄRGER", "access Denied", None, "ok"],
                          "event.dataset": ["a"] * 6, "log.offset": list(range(6))})
    answered: list = []
    real = Hunter._known
    monkeypatch.setattr(Hunter, "_known", lambda self, c, g: answered.append(real(self, c, g)) or answered[-1])
    with_search = hits(Hunter(rules).evaluate(("auth", "a"), frame))
    assert any(rows is not None for rows in answered)  # the path under test was taken
    assert with_search == hits(Hunter(rules, prefilter=False).evaluate(("auth", "a"), frame)) == {
        ("rule 1", "a", 0), ("rule 2", "a", 0), ("rule 2", "a", 1), ("rule 2", "a", 2), ("rule 2", "a", 3)}


def test_a_key_with_enough_rows_waiting_is_evaluated_alone_and_unions_stay_within_their_cells(monkeypatch):
    """Frames of one key wait until that key has ``KEY_ROWS`` rows, then are evaluated stacked, without the
    other keys waiting (a narrow frame, its own rules only); a family's flush makes frames of at most
    ``UNION_CELLS`` rows x columns each (but a single stack); the alerts are those of each frame alone."""
    from soc.sigma import hunt

    seen: list[tuple[int, int, set]] = []
    real = Hunter._evaluate
    monkeypatch.setattr(Hunter, "_evaluate", lambda self, frame, parts: seen.append(
        (frame.height, frame.width, {p.key[1] for p in parts})) or real(self, frame, parts))
    alone = Hunter(ruleset())
    each = set().union(*(hits(alone.evaluate(key, frame)) for key, frame in frames()))
    fed = frames() + [(("auth", "b"), frames()[2][1])]  # a: 2 + 2 rows, b: 1 + 2 + 1, c: 0 + 1
    monkeypatch.setattr(hunt, "KEY_ROWS", 4)
    seen.clear()
    hunter = Hunter(ruleset())
    for key, frame in fed:
        hunter.feed(key, frame)
    assert seen == [(4, 5, {"a"}), (4, 4, {"b"})] and hunter._waiting_rows == 1  # each as soon as it had 4 rows
    assert hits(hunter.matches()) == each
    assert seen[2:] == [(1, 4, {"c"})]
    monkeypatch.setattr(hunt, "KEY_ROWS", 100)
    for cells, made in ((30, [(4, 4, {"b"}), (5, 6, {"a", "c"})]),  # b's Port is text: a frame of its own
                        (29, [(1, 4, {"c"}), (4, 4, {"b"}), (4, 5, {"a"})])):  # a + c: 5 rows x 6 columns
        monkeypatch.setattr(hunt, "UNION_CELLS", cells)
        seen.clear()
        hunter = Hunter(ruleset())
        for key, frame in fed:
            hunter.feed(key, frame)
        assert not seen and hits(hunter.matches()) == each
        assert sorted(seen, key=lambda s: (s[0], s[1])) == made
