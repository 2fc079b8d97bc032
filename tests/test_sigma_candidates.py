"""A bound literal condition's candidate rows (``prefilter.candidates``): the rows of its groups combined as sets
(``and``: intersection, ``or``: union, a group not searched: no condition), whatever the shortcuts taken."""

from __future__ import annotations

import random

import numpy as np

from soc.sigma.prefilter import candidates


def reference(cond, groups: dict[int, np.ndarray]) -> set[int] | None:
    if cond is None:
        return None
    if cond[0] == "group":
        got = groups.get(cond[1])
        return None if got is None else set(got.tolist())
    if cond[0] == "none":
        return set()
    kids = [reference(k, groups) for k in cond[1]]
    if cond[0] == "or":
        return None if any(k is None for k in kids) else set().union(*kids)
    known = [k for k in kids if k is not None]
    return None if not known else set.intersection(*known)


def random_cond(rng: random.Random, depth: int = 0):
    pick = rng.random()
    if depth > 2 or pick < 0.4:
        return ["none"] if rng.random() < 0.05 else ["group", rng.randrange(8)]
    return ["and" if pick < 0.75 else "or", [random_cond(rng, depth + 1) for _ in range(rng.randint(2, 4))]]


def test_candidates_are_the_sets_their_condition_names():
    rng = random.Random(18)
    for _ in range(2000):
        groups = {g: np.array(sorted(rng.sample(range(40), rng.choice([0, 0, 1, 3, 10, 30]))), dtype=np.int64)
                  for g in range(8) if rng.random() < 0.85}  # a missing group: not searched (weak)
        cond = random_cond(rng)
        got, want = candidates(cond, groups), reference(cond, groups)
        if want is None:
            assert got is None, cond
        else:
            assert got is not None and got.tolist() == sorted(want), (cond, groups)
            assert got.dtype == np.int64
