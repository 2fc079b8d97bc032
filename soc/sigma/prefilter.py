"""The literal prefilter: only rows holding a literal a rule requires reach the rule's full expression.

From a rule's tree (``soc.sigma.ir``) we derive a necessary condition made of literal tests: ``["lit", field,
[texts]]`` (one of the lower-cased texts occurs in the field, as a substring), combined by ``and``/``or``.
A string test (exact, prefix, suffix, contains, glob) requires its literal text, a regex the longest plain
text of its top-level sequence (``regex_literal``); ``and`` requires all of its children's conditions (so the
candidates are the intersection), ``or`` requires one of them (the union, or no condition if one child has
none); ``not``, regexes without such text, numbers, ``exists``/``null``, CIDR and field references give none.
A keyword (``field`` None) requires its text in one of the text columns. A rule without any condition runs on
every row.

Per frame, the distinct values of every text column that a literal test reads are lower-cased and searched once
for all the literals of all rules at the same time (one Aho-Corasick automaton, Polars ``str.extract_many``,
over the columns stacked). Matching the lower-cased column exactly is what the backend's case-insensitive tests
do, so the candidate rows are a superset of the rows a rule matches: the alerts are the same with and without
the prefilter.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from soc.sigma.backend import TEXT_TYPES
from soc.sigma.ir import Node, fields_of, walk

Cond = list  # ["lit", field, [texts]] | ["and", [conds]] | ["or", [conds]]
Rows = np.ndarray | None  # sorted row numbers; None: every row
MIN_LITERAL = 3  # characters of an ASCII text (a non-ASCII character is rare enough on its own)
SAMPLE = 1000  # rows sampled to find the weak literal groups
SAMPLE_FROM = 20 * SAMPLE  # rows of a frame from which the weak groups are looked for (a smaller one: all searched)
FEW_CHECKS = 200_000  # values x texts up to which a search checks each text in each value in Python
KEYWORDS = "\x00keywords"  # the column of a keyword's literal test: it is searched for in every text column
WEAK = 0.3  # a group found in more of the sampled rows than this is not searched for


NEEDS = 1  # the version of ``needs``: bump when it (or ``necessary``) gives other results for a tree


def needs(tree: Node) -> list:
    """What a hunt needs of a rule before building its expression, kept in the load cache (``Rule.line``):
    ``[NEEDS, the Sigma fields it reads (sorted), whether it has keywords, its literal condition]``."""
    keywords: list[bool] = []
    walk(tree, lambda n: keywords.append(n[0] in ("str", "re") and n[1] is None))
    return [NEEDS, sorted(fields_of(tree)), any(keywords), necessary(tree)]


def necessary(node: Node) -> Cond | None:
    """A condition on literals that every row matching ``node`` satisfies (None: no such condition)."""
    op = node[0]
    if op == "str":
        _, field, kind, values, cased = node
        if kind == "any":
            return None
        if not cased and kind != "glob":  # the usual test: its texts are its values lower-cased (``literal``)
            texts = [v.lower() for v in values]
        else:
            texts = [literal(kind, v, cased) for v in values]
        if not all(t and not t.isascii() for t in texts if not t or len(t) < MIN_LITERAL):
            return None  # a very short text is in most rows: searching for it costs more than it saves
        return ["lit", field, sorted(set(texts))]
    if op == "re":
        text = regex_literal(node[2], "i" in node[3])
        return ["lit", node[1], [text]] if text and len(text) >= MIN_LITERAL else None  # ASCII only
    if op == "and":
        kids = [c for c in map(necessary, node[1]) if c is not None]
        return None if not kids else kids[0] if len(kids) == 1 else ["and", kids]
    if op == "or":
        kids = [necessary(k) for k in node[1]]
        return None if any(c is None for c in kids) else kids[0] if len(kids) == 1 else ["or", kids]
    return None


def literal(kind: str, value: str, cased: bool) -> str | None:
    """The lower-cased text a string test's value requires in the field ('' or None: nothing usable)."""
    text = value if cased else value.lower()  # the backend compares ``value.lower()`` with the lower-cased column
    if kind == "glob":
        text = max(glob_runs(text), key=len, default="")
    if cased and not text.isascii():
        # lower-casing is per character for ASCII only: keep the longest ASCII run of a case-sensitive text
        text = max("".join(c if c.isascii() else "\0" for c in text).split("\0"), key=len)
    return text.lower() if cased else text


def regex_literal(pattern: str, ignore_case: bool) -> str | None:
    """The longest text every match of a regex contains, lower-cased (None: none found).

    Only plain characters of the pattern's top-level sequence count; any other element (class, group,
    repetition, anchor, alternation) ends a run. Case-insensitive patterns drop runs at ``s``: the regex engine
    folds U+017F (long s) to ``s`` but lower-casing keeps it, so the lower-cased text would not contain it.
    Non-ASCII characters end a run too (lower-casing is per character for ASCII only).
    """
    import re

    try:
        from re import _parser as parser  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse as parser  # type: ignore[no-redef]
    try:
        parsed = parser.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    ignore_case = ignore_case or bool(parsed.state.flags & re.IGNORECASE)
    literal_op = parser.LITERAL
    runs, cur = [], []
    for op, arg in parsed:
        ch = chr(arg) if op is literal_op else None
        if ch is None or not ch.isascii() or (ignore_case and ch.lower() == "s"):
            runs.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    runs.append("".join(cur))
    best = max(runs, key=len)
    return best.lower() or None


def glob_runs(pattern: str) -> list[str]:
    """The literal runs of a glob regex as ``ir.string_test`` writes it (escaped text, ``.*`` and ``.``)."""
    runs, cur, i = [], [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            cur.append(pattern[i + 1])
            i += 2
            continue
        if c == ".":
            runs.append("".join(cur))
            cur = []
            i += 2 if pattern[i + 1:i + 2] == "*" else 1
            continue
        cur.append(c)
        i += 1
    runs.append("".join(cur))
    return [r for r in runs if r]


def literals(cond: Cond | None) -> list[tuple[str, str]]:
    """Every (field, text) a condition tests."""
    if cond is None:
        return []
    if cond[0] == "lit":
        return [(cond[1], t) for t in cond[2]]
    return [pair for kid in cond[1] for pair in literals(kid)]


class Literals:
    """The literal tests of the rules bound to frame columns: groups ``(column, texts)``, numbered as first
    seen and kept across frames, so that a rule's bound condition (``bind``) is made once per rule and
    columns, whatever frame it meets.

    ``group_rows`` first searches a sample of the frame: a group whose texts are in more than ``WEAK`` of the
    sampled rows (``.exe`` in a command line) would select most rows anyway and only slow the search down, so
    it is dropped, as if the rule did not require it (always safe: a condition is only ever weakened). Then one
    pass per column over the texts of the remaining groups finds the rows of every group at once.
    """

    def __init__(self) -> None:
        self.groups: list[tuple[str, tuple[str, ...]]] = []  # group number -> (column, texts)
        self._number: dict[tuple[str, tuple[str, ...]], int] = {}
        self._text: dict[str, int] = {}  # every text of a group -> its number
        self._texts: list[np.ndarray] = []  # group number -> the numbers of its texts

    def bind(self, cond: Cond | None, column_of: Callable[[str], tuple[str, pl.DataType] | None]) -> Cond | None:
        """``cond`` with its fields resolved (``column_of``: field -> (column, dtype), None if absent):
        ``["group", number]`` | ``["none"]`` (a missing field: the backend's string test is false) |
        ``["and"/"or", [...]]`` | None (no condition: every row)."""
        if cond is None:
            return None
        if cond[0] != "lit":
            kids = [self.bind(k, column_of) for k in cond[1]]
            if cond[0] == "and":
                kids = [k for k in kids if k is not None]
                return None if not kids else kids[0] if len(kids) == 1 else ["and", kids]
            return None if any(k is None for k in kids) else ["or", kids]
        got = (KEYWORDS, pl.String()) if cond[1] is None else column_of(cond[1])
        if got is None:
            return ["none"]
        if not isinstance(got[1], TEXT_TYPES):
            return None  # numbers etc. are compared as text by the backend: do not guess
        key = (got[0], tuple(cond[2]))
        number = self._number.get(key)
        if number is None:
            number = self._number[key] = len(self.groups)
            self.groups.append(key)
            self._texts.append(np.array([self._text.setdefault(t, len(self._text)) for t in key[1]], dtype=np.int64))
        return ["group", number]

    def number(self, group: tuple[str, tuple[str, ...]]) -> int | None:
        """The number of the group (column, texts), if a condition bound so far has it."""
        return self._number.get(group)

    def search(self, frame: pl.DataFrame, active: list[int], keywords: bool = True
               ) -> tuple[Distinct | None, dict[int, np.ndarray]]:
        """The sorted rows of each ``active`` group searched (a weak one, or a keyword's without ``keywords``, is
        left out: no condition), and the distinct values of the columns stacked for it (``Distinct``; None when
        they were not worked out: few values), for the backend's per-value tests to reuse. The values of every
        column searched (keywords: of every text column) are searched in one automaton pass, stacked without
        their nulls."""
        from soc.sigma.backend import text_columns

        n = frame.height
        none = None
        if not keywords:
            active = [g for g in active if self.groups[g][0] != KEYWORDS]
        named = {self.groups[g][0] for g in active}
        schema = frame.schema
        columns = sorted(named - {KEYWORDS})
        words = text_columns(schema) if KEYWORDS in named else []
        others = [c for c in words if c not in named]
        series = [frame.get_column(c) for c in columns + others]
        if not series:
            return none, {g: _EMPTY for g in active}
        # where the values are: one pass for every column (column by column, then row by row, as stacked)
        # (one select each: hundreds of Series calls cost ~30 us apiece)
        both = pl.DataFrame(series)
        masks = both.select(pl.all().is_not_null()).to_numpy(order="fortran")
        column, row = np.nonzero(masks.T)
        if not len(row):
            return none, {g: _EMPTY for g in active}
        stacked = _stacked(both, series)
        word = set(words)
        is_word = np.array([c in word for c in columns + others])
        if n >= SAMPLE_FROM:  # the weak groups, found in a sample of the rows, are not searched for
            sample = np.zeros(n, dtype=bool)
            sample[np.linspace(0, n - 1, SAMPLE).astype(np.int64)] = True
            pick = sample[row]
            found = self._find(stacked.filter(pl.Series(pick)), column[pick], row[pick], n, columns, active,
                               is_word)[0]
            active = [g for g in active if len(found[g]) <= WEAK * SAMPLE]
        found, distinct = self._find(stacked, column, row, n, columns, active, is_word)
        if distinct is not None:
            distinct.names = {c: k for k, c in enumerate(columns + others)}
        return distinct, found

    def _find(self, stacked: pl.Series, column: np.ndarray, row: np.ndarray, n: int, columns: list[str],
              active: list[int], is_word: np.ndarray) -> tuple[dict[int, np.ndarray], Distinct | None]:
        """The rows of the ``active`` groups among the ``stacked`` values (as they are, of ``column`` numbers, at
        ``row``s of a frame of ``n``): a match of a text in a lower-cased value counts for a group that searches
        it in that column (a keyword's: in any text column).

        Each distinct (column, value) is lower-cased and searched once (Windows fields repeat: 100 k NXLog lines
        stacked 1.97 M values, 0.10 M distinct per search); its groups are worked out once, then given to the
        rows that hold it. With the distinct values (``Distinct``) when they were worked out."""
        out = {g: _EMPTY for g in active}
        if not active:
            return out, None
        index = {c: k for k, c in enumerate(columns)}
        anywhere = len(is_word)  # the column number of the keywords' texts
        groups = self.groups
        sizes = np.array([len(self._texts[g]) for g in active], dtype=np.int64)
        owner = np.repeat(np.asarray(active, dtype=np.int64), sizes)
        place = np.repeat(np.array([anywhere if groups[g][0] == KEYWORDS else index[groups[g][0]] for g in active],
                                   dtype=np.int64), sizes)  # (group, text) pairs: the column searched
        numbers, local = np.unique(np.concatenate([self._texts[g] for g in active]), return_inverse=True)
        names = list(self._text)
        pats = [names[t] for t in numbers.tolist()]  # pattern number -> text
        key = place * len(pats) + local
        order = np.argsort(key, kind="stable")
        key, owner = key[order], owner[order]
        distinct = None
        if len(stacked) * len(pats) <= FEW_CHECKS:  # a few values: building the automaton would cost more
            pairs = list(zip(place.tolist(), local.tolist(), strict=True))
            units = column  # each value its own unit
            found, at = _contained(stacked.str.to_lowercase().to_list(), column, pats, pairs, is_word, anywhere)
        else:  # the columns groups name (first) for every text; the others for the keywords' only
            grouped = pl.DataFrame({"c": column, "v": stacked}).with_row_index("i").group_by("c", "v").agg("i") \
                .sort("c")
            units = grouped.get_column("c").to_numpy()
            values = grouped.get_column("v").str.to_lowercase()
            distinct = Distinct(units, values, grouped.get_column("i"), row, n)
            named = int(np.searchsorted(units, len(columns)))
            words = np.unique(local[place == anywhere])
            found, at = _extracted(values.slice(0, named), pats, np.arange(len(pats)), 0)
            if named < len(values) and len(words):
                more = _extracted(values.slice(named), [pats[w] for w in words.tolist()], words, named)
                found, at = np.concatenate([found, more[0]]), np.concatenate([at, more[1]])
        if not len(found):
            return out, distinct
        width = len(units)
        where = units[at]
        pairs = []
        for k in (where, np.where(is_word[where], anywhere, -1)):  # its own column's groups, the keywords'
            want = k * len(pats) + found
            pos = np.minimum(np.searchsorted(key, want), len(key) - 1)
            hit = key[pos] == want
            first, want, unit = pos[hit], want[hit], at[hit]
            sizes = np.searchsorted(key, want, side="right") - first  # a text of several groups: a pair each
            pairs.append(owner[_spans(first, sizes)] * width + np.repeat(unit, sizes))
        group, unit = np.divmod(sorted_unique(np.concatenate(pairs)), width)  # (group, unit) pairs
        if distinct is None:
            rows = row[unit]
        else:  # each distinct value's rows
            rows, sizes = distinct.rows_of(unit)
            group = np.repeat(group, sizes)
        group, rows = np.divmod(sorted_unique(group * n + rows), n)
        wanted = np.asarray(active, dtype=np.int64)
        lo, hi = np.searchsorted(group, wanted), np.searchsorted(group, wanted, side="right")
        return {g: rows[a:b] for g, a, b in zip(active, lo.tolist(), hi.tolist(), strict=True)}, distinct


class Distinct:
    """The distinct values a search stacked, per column, lower-cased, and each row's value number: what the
    backend's per-value tests (``backend.affix_tests``) would otherwise work out again (two selects and a
    lower-cased copy of each of their columns, per select)."""

    def __init__(self, units: np.ndarray, values: pl.Series, lists: pl.Series, row: np.ndarray, n: int) -> None:
        self.names: dict[str, int] = {}  # column -> its number in ``units``
        self._units = units  # per distinct (column, value), sorted: its column's number
        self._values = values  # ... its value, lower-cased
        self._lists = lists  # ... the positions of its stacked values
        self._row = row  # stacked value -> frame row
        self._n = n
        self._members: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._codes: dict[str, tuple[list[str], np.ndarray]] = {}

    def rows_of(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The frame rows of the distinct values ``units``, one after the other, and how many each has."""
        if self._members is None:
            counts = self._lists.list.len().to_numpy().astype(np.int64)
            self._members = (counts, np.cumsum(counts) - counts, self._lists.explode().to_numpy().astype(np.int64))
        counts, starts, members = self._members
        sizes = counts[units]
        return self._row[members[_spans(starts[units], sizes)]], sizes

    def column(self, name: str) -> tuple[list[str], np.ndarray] | None:
        """A column's distinct values lower-cased (in no order; two may be equal once lower-cased) and per frame
        row the number of its value counted from 1 (0: null), as ``affix_tests`` reads them; None: not stacked."""
        got = self._codes.get(name)
        if got is None:
            number = self.names.get(name)
            if number is None:
                return None
            lo, hi = np.searchsorted(self._units, [number, number + 1]).tolist()
            rows, sizes = self.rows_of(np.arange(lo, hi))
            codes = np.zeros(self._n, dtype=np.int64)
            codes[rows] = np.repeat(np.arange(1, hi - lo + 1, dtype=np.int64), sizes)
            got = self._codes[name] = (self._values.slice(lo, hi - lo).to_list(), codes)
        return got


def _spans(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The positions ``starts[j] .. starts[j] + sizes[j] - 1`` of every ``j``, one after the other."""
    return np.repeat(starts, sizes) + np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def _extracted(values: pl.Series, pats: list[str], numbers: np.ndarray, offset: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(pattern number, value number + ``offset``) of every occurrence of ``pats`` (numbered ``numbers``) in
    ``values``: one automaton pass."""
    if not len(values) or not pats:
        return _EMPTY, _EMPTY
    hits = pl.DataFrame({"m": values.str.extract_many(pats, overlapping=True)}).with_row_index("i") \
        .explode("m").drop_nulls("m")  # an empty list explodes to one null: dropped with the nulls
    found = hits.get_column("m").cast(pl.Enum(pats)).to_physical().to_numpy().astype(np.int64)
    return numbers[found], hits.get_column("i").to_numpy().astype(np.int64) + offset


def _contained(values: list[str], column: np.ndarray, pats: list[str], keys: list[tuple[int, int]],
               is_word: np.ndarray, anywhere: int) -> tuple[np.ndarray, np.ndarray]:
    """(pattern number, value number) of the patterns in each value that a group searches in its column, by
    Python's ``in`` (what ``str.extract_many`` finds, for few values)."""
    by_column: dict[int, set[int]] = {}
    for k, p in keys:
        by_column.setdefault(k, set()).add(p)
    words = by_column.get(anywhere, set())
    found, at = [], []
    for j, value in enumerate(values):
        k = int(column[j])
        for p in by_column.get(k, set()) | (words if is_word[k] else set()):
            if pats[p] in value:
                found.append(p)
                at.append(j)
    return np.array(found, dtype=np.int64), np.array(at, dtype=np.int64)


def _stacked(frame: pl.DataFrame, series: list[pl.Series]) -> pl.Series:
    """The values of ``series`` (columns of ``frame``, at least one value in all) without their nulls, as text,
    one column after the other: one select."""
    values = [pl.col(s.name) if s.dtype == pl.String else pl.col(s.name).cast(pl.String) for s in series]
    return frame.select(pl.concat_list([v.drop_nulls().implode() for v in values]).explode()).to_series()


def used_groups(cond: Cond | None, into: set[int]) -> None:
    """Add the group numbers a bound condition reads to ``into``."""
    if cond is None or cond[0] == "none":
        return
    if cond[0] == "group":
        into.add(cond[1])
        return
    for kid in cond[1]:
        used_groups(kid, into)


def candidates(cond: Cond | None, groups: dict[int, np.ndarray]) -> Rows:
    """The rows that hold a bound condition's literals (None: every row); ``groups``: the rows of each
    group searched (a group not in it, e.g. a weak one, is no condition)."""
    if cond is None:
        return None
    op = cond[0]
    if op == "group":
        return groups.get(cond[1])
    if op == "none":
        return _EMPTY
    if op == "and":  # a group without rows decides at once (most rules of a frame: their literals are not in it)
        for kid in cond[1]:
            if kid[0] == "none" or (kid[0] == "group" and len(groups.get(kid[1], _NONE)) == 0):
                return _EMPTY
    kids = [candidates(k, groups) for k in cond[1]]
    if op == "or":
        if any(k is None for k in kids):
            return None
        kids = [k for k in kids if len(k)]
        return _EMPTY if not kids else kids[0] if len(kids) == 1 else sorted_unique(np.concatenate(kids))
    out = None
    for k in sorted((k for k in kids if k is not None), key=len):
        out = k if out is None else _intersected(out, k)
        if not len(out):
            break
    return out


def _intersected(short: np.ndarray, long: np.ndarray) -> np.ndarray:
    """The values of sorted, distinct ``short`` that are in sorted, distinct, non-empty ``long`` (a search per
    value: ``np.intersect1d`` sorts both again)."""
    pos = np.minimum(np.searchsorted(long, short), len(long) - 1)
    return short[long[pos] == short]


_EMPTY = np.empty(0, dtype=np.int64)
_NONE = np.empty(1, dtype=np.int64)  # (a group not searched: no condition)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (a sort and a neighbour test: numpy 2's hash-based ``unique`` is slower here)."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]
