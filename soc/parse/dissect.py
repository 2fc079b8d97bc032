"""Dissect-style message patterns (literal text around ``%{field}`` slots), matched by a Numba kernel.

Patterns are compiled into flat byte arrays; candidates are looked up by program and by the first byte of
the message. A slot ends at the first occurrence of the literal after it (greedy-left), a final slot takes
the rest, the whole message must match, and the first pattern that matches wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from soc.jit import njit, prange
from soc.parse.columns import SpecError
from soc.parse.kernels import find_bytes, same_bytes


@njit(cache=True)
def _try(buf, a, b, p, lits, lit_at, pat_lit, slots, ss, se, r):
    """Whether pattern ``p`` matches all of ``buf[a:b]``; on a match its slot spans are set."""
    l0 = pat_lit[p]
    nf = pat_lit[p + 1] - l0 - 1
    f0 = l0 - p
    x = lit_at[l0]
    n = lit_at[l0 + 1] - x
    if n > b - a or not same_bytes(buf, a, lits, x, n):
        return False
    pos = a + n
    ok = True
    for j in range(nf):
        x = lit_at[l0 + j + 1]
        n = lit_at[l0 + j + 2] - x
        start = pos
        if n == 0:  # a final slot: the rest of the message
            end = b
            pos = b
        else:
            end = find_bytes(buf, pos, b, lits, x, n)
            if end < 0:
                ok = False
                break
            pos = end + n
        k = slots[f0 + j]
        if k >= 0:
            ss[k, r] = start
            se[k, r] = end
    if ok and pos == b:
        return True
    for j in range(nf):
        k = slots[f0 + j]
        if k >= 0:
            ss[k, r] = -1
            se[k, r] = -1
    return False


@njit(cache=True, nogil=True, parallel=True)
def match_messages(buf, ps, pe, ms, me, names, name_at, cands, cand_at, lits, lit_at, pat_lit, slots, n_slots):
    """Index of the first pattern matching each message (-1: none) and the slot spans it sets.

    Program ``k`` (``names[name_at[k]:name_at[k + 1]]``; the last is every other program) with a message
    starting with byte ``c`` tries ``cands[cand_at[256 * k + c]:cand_at[256 * k + c + 1]]``. Pattern ``p`` is
    literals ``pat_lit[p]`` to ``pat_lit[p + 1]`` (spans of ``lits`` by ``lit_at``) around the slots
    ``slots[pat_lit[p] - p:]`` (-1: skipped).
    """
    n = ms.size
    pat = np.full(n, -1, np.int32)
    ss = np.full((n_slots, n), -1, np.int64)
    se = np.full((n_slots, n), -1, np.int64)
    other = name_at.size - 1
    for r in prange(n):
        a = ms[r]
        if a < 0:
            continue
        prog = other
        p0 = ps[r]
        if p0 >= 0:
            ln = pe[r] - p0
            for k in range(other):
                if name_at[k + 1] - name_at[k] == ln and same_bytes(buf, p0, names, name_at[k], ln):
                    prog = k
                    break
        q = 256 * prog + buf[a]
        for c in range(cand_at[q], cand_at[q + 1]):
            p = cands[c]
            if _try(buf, a, me[r], p, lits, lit_at, pat_lit, slots, ss, se, r):
                pat[r] = p
                break
    return pat, ss, se


FIELD = re.compile(r"%\{([^}]*)\}")


@dataclass(frozen=True)
class Pattern:
    """A message pattern: literals around slots (None: skipped), where it applies and what it sets."""

    text: str
    literals: tuple[bytes, ...]
    slots: tuple[str | None, ...]
    programs: tuple[str, ...]
    constants: tuple[tuple[str, str], ...]
    route: int

    @staticmethod
    def from_spec(spec: dict, route: int) -> Pattern:
        unknown = set(spec) - {"match", "programs", "constants"}
        if unknown or "match" not in spec:
            raise SpecError(f"pattern {spec!r}: needs 'match'; may have 'programs', 'constants'")
        text = str(spec["match"])
        parts = FIELD.split(text)
        literals = tuple(p.encode() for p in parts[0::2])
        if any(not lit for lit in literals[1:-1]):
            raise SpecError(f"pattern {text!r}: two slots with no literal between them")
        slots = tuple(None if not s or s.startswith("?") else s for s in parts[1::2])
        return Pattern(text, literals, slots, tuple(map(str, spec.get("programs") or ())),
                       tuple((str(k), str(v)) for k, v in (spec.get("constants") or {}).items()), route)


class Matcher:
    """The patterns of all routes compiled into the flat arrays ``match_messages`` reads."""

    def __init__(self, patterns: list[Pattern]):
        self.patterns = patterns
        self.slot_names = list(dict.fromkeys(s for p in patterns for s in p.slots if s))
        self.const_names = list(dict.fromkeys(k for p in patterns for k, _ in p.constants))
        slot = {s: k for k, s in enumerate(self.slot_names)}
        programs = list(dict.fromkeys(g for p in patterns for g in p.programs))
        # by program, then by the first byte of the message: the patterns that could match it, in spec order
        # (built with arrays: the lists of a 100-pattern spec over 20 programs took 0.2 s an input file)
        starts = np.ones((len(patterns), 256), np.bool_)
        for i, p in enumerate(patterns):
            if p.literals[0]:
                starts[i] = np.arange(256) == p.literals[0][0]
        cand_list, cand_sizes = [], []
        for g in [*programs, None]:
            applies = np.array([not p.programs or g in p.programs for p in patterns], np.bool_).reshape(-1, 1)
            by_byte = (starts & applies).T  # 256 x patterns
            cand_list.append(np.nonzero(by_byte)[1])  # pattern indices, grouped by byte, in order
            cand_sizes.append(by_byte.sum(axis=1))
        lits = [lit for p in patterns for lit in p.literals]
        self.tables = (
            *_flat([g.encode() for g in programs]),
            np.concatenate(cand_list).astype(np.int32) if cand_list else np.zeros(0, np.int32),
            _offsets(np.concatenate(cand_sizes).tolist()),
            *_flat(lits), _offsets([len(p.literals) for p in patterns]),
            np.array([slot[s] if s else -1 for p in patterns for s in p.slots], np.int32),
            len(self.slot_names),
        )
        self.route = np.array([p.route for p in patterns] + [-1], np.int64)
        self.uses = np.zeros((len(patterns), len(self.slot_names)), np.bool_)
        for i, p in enumerate(patterns):
            for s in p.slots:
                if s:
                    self.uses[i, slot[s]] = True
        self.consts = {
            name: pl.Series(name, [dict(p.constants).get(name) for p in patterns], pl.Categorical)
            for name in self.const_names
        }

    def match(self, buf: np.ndarray, program: tuple[np.ndarray, np.ndarray], message: tuple[np.ndarray, np.ndarray],
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per line the pattern that matched (or -1), and the slot spans; ``program``/``message`` are spans."""
        return match_messages(buf, *program, *message, *self.tables)


def _flat(items: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    data = np.frombuffer(b"".join(items) or b"\0", np.uint8).copy()
    return data, _offsets([len(x) for x in items])


def _offsets(sizes: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
