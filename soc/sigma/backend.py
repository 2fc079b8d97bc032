"""Our Sigma backend: a rule's tree (``soc.sigma.ir``) becomes one Polars boolean expression over a frame
(``Builder.build``), or a program over its leaf tests (``Builder.program``, run by ``run``: what the hunter does).

Case-insensitive matching (the Sigma default) reads a lower-cased copy of each column, made once per
frame for every rule that needs it (``Lowered``), not once per rule. A rule's expression yields true or
false, never null (a missing field fails the test, and ``not`` of it is true, as in Sigma). A field the frame
does not have makes its tests false (``null`` and ``exists: false`` true), never an error.
"""

from __future__ import annotations

import ipaddress
import re
import warnings
from collections.abc import Callable
from functools import lru_cache, partial

import numpy as np
import polars as pl

from soc.sigma.ir import Node

LOWER = "\x00lc:"  # prefix of the lower-cased copies of columns (no real column starts with NUL)
IPV4 = "\x00v4:"  # ... of the sortable IPv4 keys of address columns (``cidr``)
IPV6 = "\x00v6:"
JOINED = "\x00kw:"  # ... of the text columns a keyword searches, joined (``Builder._keyword``): made once per select
TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum)
NOT_TEXT = {"log.file.path", "event.dataset", "event.kind", "event.module"}  # keywords skip these
NUMERIC = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64, pl.Float32,
           pl.Float64)

Resolver = Callable[[str], str | None]
Program = tuple | bool  # ("and"/"or", [programs]) | ("not", program) | ("leaf", number) | a constant


def run(program: Program, leaves: list) -> np.ndarray | bool:
    """A ``Program``'s outcome per row, from its leaves' (boolean arrays without nulls); a constant as a bool."""
    if program is True or program is False:
        return program
    op = program[0]
    if op == "leaf":
        return leaves[program[1]]
    if op == "not":
        got = run(program[1], leaves)
        return (not got) if got is True or got is False else ~got
    neutral = op == "and"
    out: np.ndarray | bool = neutral
    for kid in program[1]:
        got = run(kid, leaves)
        if got is True or got is False:
            if got is not neutral:  # false in an and, true in an or: decided
                return got
            continue
        out = got if out is neutral else (out & got if neutral else out | got)
    return out
SEPARATOR = "\x00"  # between the text columns a keyword searches, joined (``Builder._keyword``)
AFFIXES = 4  # prefix/suffix tests of more values than this compare slices by length (``Builder._str``)
FALSE = pl.lit(False)
TRUE = pl.lit(True)


class Lowered:
    """The derived columns a set of expressions reads (lower-cased copies, IP keys); ``columns`` makes
    them for a frame, once for every rule."""

    def __init__(self) -> None:
        self.names: set[tuple[str, str]] = set()

    def col(self, name: str, prefix: str = LOWER) -> pl.Expr:
        self.names.add((prefix, name))
        return pl.col(prefix + name)

    def columns(self, schema: pl.Schema) -> list[pl.Expr]:
        make = {LOWER: lambda c: c.str.to_lowercase(), IPV4: lambda c: ipv4_key(c.str.strip_chars()),
                IPV6: lambda c: c.map_batches(ipv6_keys, return_dtype=pl.String)}
        return [(joined_text(name.split(SEPARATOR), schema) if prefix == JOINED
                 else make[prefix](text(name, schema[name]))).alias(prefix + name)
                for prefix, name in sorted(self.names)]


def text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column as strings."""
    col = pl.col(name)
    return col if dtype == pl.String else col.cast(pl.String)


def joined_text(cols: list[str], schema: pl.Schema) -> pl.Expr:
    """The text of ``cols`` joined by ``SEPARATOR`` (nulls left out), what a keyword searches."""
    return pl.concat_str([text(c, schema[c]) for c in cols], separator=SEPARATOR, ignore_nulls=True)


def text_columns(schema: pl.Schema) -> list[str]:
    """The columns a keyword is searched in: every text column but the bookkeeping ones."""
    return [n for n, t in schema.items() if isinstance(t, TEXT_TYPES) and n not in NOT_TEXT
            and not n.startswith("\x00")]


class Builder:
    """Turns trees into expressions for one frame (its schema and how Sigma fields map to its columns)."""

    def __init__(self, schema: pl.Schema, resolve: Resolver, lowered: Lowered | None = None,
                 words: list[str] | None = None):
        self.schema = schema
        self.resolve = resolve
        self.lowered = lowered or Lowered()
        self.words = words  # the columns keywords are searched in (None: ``text_columns`` of the schema)
        self.read: set[str] = set()  # the frame columns ``program``'s leaves read (or derive copies from)
        self.memo: dict[tuple, tuple[pl.Expr, set]] | None = None  # leaf key -> (test, its derived columns)
        self.lazy = False  # ``program``'s leaves as (key, a function giving (test, its derived columns)): a leaf
        # whose outcome is known otherwise (the literal search, ``affix_tests``) is never built (~30 us each)
        self.contains: dict[int, tuple[str, tuple[str, ...]]] = {}  # leaf number -> (column, texts lower-cased):
        # a case-insensitive ``contains`` leaf, true where one of the texts is in the lower-cased column
        self.affixes: dict[int, tuple[str, str, tuple[str, ...]]] = {}  # leaf number -> (column, kind, texts
        # lower-cased) of a case-insensitive ``exact``/``prefix``/``suffix`` leaf (see ``affix_tests``)

    def build(self, node: Node) -> pl.Expr:
        """The tree's test: true or false on every row, never null."""
        return self._build(node).fill_null(FALSE)

    def _build(self, node: Node) -> pl.Expr:
        """A test that may be null where a value is: ``and``/``or`` are Kleene's (null only where the outcome
        differs with the nulls read as false or true; they are monotone, so a null is false once filled),
        and ``not`` fills its operand first (a test of a missing value is false, its ``not`` true): one
        ``fill_null`` per ``not`` and at the top, not one per test."""
        op = node[0]
        if op == "and":
            return pl.all_horizontal([self._build(k) for k in node[1]])
        if op == "or":
            return pl.any_horizontal([self._build(k) for k in node[1]])
        if op == "not":
            return ~self._build(node[1]).fill_null(FALSE)
        if op == "const":
            return TRUE if node[1] else FALSE
        if op in ("str", "re") and node[1] is None:  # keyword: any text column
            cols = text_columns(self.schema) if self.words is None else self.words
            if not cols:
                return FALSE
            if op == "str" and node[2] == "contains" and not any(SEPARATOR in v for v in node[3]):
                return self._keyword(node[3], node[4], cols)
            return pl.any_horizontal([self._leaf([op, c, *node[2:]], c) for c in cols])
        column = self.resolve(node[1])
        if column is None or column not in self.schema:
            return TRUE if op == "null" or (op == "exists" and not node[2]) else FALSE
        return self._leaf(node, column)

    def program(self, node: Node) -> tuple[Program, list[tuple[tuple, pl.Expr]]]:
        """The tree's test as a ``Program`` over its leaf tests, and the leaves: (key, expression true or
        false on every row). Equal keys are equal expressions, so the leaves of many rules can be evaluated
        once each, as top-level expressions of one ``select``: a leaf nested in ``all_horizontal`` /
        ``any_horizontal`` costs Polars several times more to plan (~20 us) than a top-level one (~5 us),
        and planning, not the rows, is most of a small frame's cost. A null leaf is false: ``and``/``or`` are
        monotone, ``not`` fills its operand (see ``_build``), so the outcome is the one ``build`` gives."""
        leaves: list[tuple[tuple, pl.Expr]] = []
        return self._program(node, leaves), leaves

    def _program(self, node: Node, leaves: list) -> Program:
        op = node[0]
        if op in ("and", "or"):
            return (op, [self._program(k, leaves) for k in node[1]])
        if op == "not":
            return ("not", self._program(node[1], leaves))
        if op == "const":
            return bool(node[1])
        if op in ("str", "re") and node[1] is None:  # keyword: any text column
            cols = text_columns(self.schema) if self.words is None else self.words
            if not cols:
                return False
            self.read.update(cols)
            if op == "str" and node[2] == "contains" and not any(SEPARATOR in v for v in node[3]):
                key = (repr(node), tuple((c, self.schema[c]) for c in cols))
                leaves.append((key, self._made(key, lambda: self._keyword(node[3], node[4], cols))))
                return ("leaf", len(leaves) - 1)
            kids = []
            for c in cols:
                leaf = [op, c, *node[2:]]
                key = (repr(leaf), c, self.schema[c])
                leaves.append((key, self._made(key, lambda leaf=leaf, c=c: self._leaf(leaf, c).fill_null(FALSE))))
                kids.append(("leaf", len(leaves) - 1))
            return ("or", kids)
        column = self.resolve(node[1])
        if column is None or column not in self.schema:
            return op == "null" or (op == "exists" and not node[2])
        self.read.add(column)
        key: tuple = (repr(node), column, self.schema[column])
        if op == "str" and node[2] == "contains" and not node[4]:
            self.contains[len(leaves)] = (column, tuple(sorted({v.lower() for v in node[3]})))
        if op == "str" and node[2] in ("exact", "prefix", "suffix") and not node[4]:
            self.affixes[len(leaves)] = (column, node[2], tuple(v.lower() for v in node[3]))
        if op == "ref":
            other = self.resolve(node[2])
            if other is None or other not in self.schema:
                return False  # as ``_ref``
            self.read.add(other)
            key += (other, self.schema[other])
        leaves.append((key, self._made(key, lambda: self._leaf(node, column).fill_null(FALSE))))
        return ("leaf", len(leaves) - 1)

    def _made(self, key: tuple, make: Callable[[], pl.Expr]) -> pl.Expr | Callable[[], tuple[pl.Expr, set]]:
        """The leaf test of ``key``, from ``memo`` when it has it (rules share many leaves; building one costs
        ~30 us of Python), its derived columns added to ``lowered`` (``lazy``: a function giving both)."""
        if self.lazy:
            return partial(self._make_leaf, key, make)
        got = self._make_leaf(key, make)
        self.lowered.names |= got[1]
        return got[0]

    def _make_leaf(self, key: tuple, make: Callable[[], pl.Expr]) -> tuple[pl.Expr, set]:
        got = None if self.memo is None else self.memo.get(key)
        if got is None:
            outer, self.lowered = self.lowered, Lowered()
            try:
                got = (make(), self.lowered.names)
            finally:
                self.lowered = outer
            if self.memo is not None:
                self.memo[key] = got
        return got

    def _keyword(self, values: list[str], cased: bool, cols: list[str]) -> pl.Expr:
        """A keyword's ``contains`` test: a text in one of the columns is a text in them joined by a separator it
        does not hold, so one automaton pass over the joined text, not one per column."""
        if any(SEPARATOR in c for c in cols):  # (no real column's name holds one)
            joined = joined_text(cols, self.schema)
        else:  # the joined text is a derived column, made once for all the keywords of a select (~0.75 ms each)
            joined = self.lowered.col(SEPARATOR.join(cols), JOINED)
        if not cased and all(v.isascii() for v in values):  # the usual keyword: no lower-cased copy
            return joined.str.contains_any(values, ascii_case_insensitive=True).fill_null(FALSE)
        if not cased:
            joined, values = joined.str.to_lowercase(), [v.lower() for v in values]
        test = joined.str.contains(values[0], literal=True) if len(values) == 1 else joined.str.contains_any(values)
        return test.fill_null(FALSE)

    def _leaf(self, node: Node, column: str) -> pl.Expr:
        return getattr(self, "_" + node[0])(node, column)

    def _str(self, node: Node, column: str) -> pl.Expr:
        _, _, kind, values, cased = node
        if cased:
            col = text(column, self.schema[column])
        else:
            col = self.lowered.col(column)
            values = [v.lower() for v in values]
        if kind == "exact":
            return col == values[0] if len(values) == 1 else col.is_in(values)
        if kind == "contains":
            if len(values) == 1:
                return col.str.contains(values[0], literal=True)
            return col.str.contains_any(values)
        if kind in ("prefix", "suffix") and len(values) > AFFIXES:
            # many values: per length, the column's first (last) characters among those values, one test
            # per length instead of one per value (a shorter text is sliced whole: it equals none of them)
            by_length: dict[int, list[str]] = {}
            for v in values:
                by_length.setdefault(len(v), []).append(v)
            return pl.any_horizontal([(col.str.slice(0, n) if kind == "prefix" else col.str.slice(-n)).is_in(vs)
                                      for n, vs in sorted(by_length.items())])
        if kind == "prefix":
            return pl.any_horizontal([col.str.starts_with(v) for v in values])
        if kind == "suffix":
            return pl.any_horizontal([col.str.ends_with(v) for v in values])
        if kind == "any":
            return col.is_not_null()
        # glob: anchored regex of escaped literals and wildcards (lower-cased literals: escapes stay valid)
        return col.str.contains("(?s)^(?:" + "|".join(values) + ")$")

    def _re(self, node: Node, column: str) -> pl.Expr:
        _, _, pattern, flags = node
        prefix = f"(?{flags})" if flags else ""
        return text(column, self.schema[column]).str.contains(prefix + search_pattern(pattern))

    def _num(self, node: Node, column: str) -> pl.Expr:
        numbers = node[2]
        dtype = self.schema[column]
        if isinstance(dtype, NUMERIC):
            return pl.col(column).is_in(numbers) if len(numbers) > 1 else pl.col(column) == numbers[0]
        words = [_number_text(n) for n in numbers]
        return self.lowered.col(column).str.strip_chars().is_in(words)

    def _cmp(self, node: Node, column: str) -> pl.Expr:
        _, _, op, number = node
        dtype = self.schema[column]
        col = pl.col(column) if isinstance(dtype, NUMERIC) else \
            text(column, dtype).str.strip_chars().cast(pl.Float64, strict=False)
        return {"lt": col < number, "lte": col <= number, "gt": col > number, "gte": col >= number,
                "neq": col != number}[op]

    def _bool(self, node: Node, column: str) -> pl.Expr:
        dtype = self.schema[column]
        if dtype == pl.Boolean:
            return pl.col(column) == node[2]
        return self.lowered.col(column) == ("true" if node[2] else "false")

    def _null(self, node: Node, column: str) -> pl.Expr:
        return pl.col(column).is_null()

    def _exists(self, node: Node, column: str) -> pl.Expr:
        present = pl.col(column).is_not_null()
        return present if node[2] else ~present

    def _ref(self, node: Node, column: str) -> pl.Expr:
        other = self.resolve(node[2])
        if other is None or other not in self.schema:
            return FALSE
        a, b = self.lowered.col(column), self.lowered.col(other)
        mode = node[3]
        if mode == "prefix":
            return a.str.starts_with(b)
        if mode == "suffix":
            return a.str.ends_with(b)
        if mode == "contains":
            return a.str.contains(b, literal=True)
        return a == b

    def _cidr(self, node: Node, column: str) -> pl.Expr:
        tests = []
        for net in map(ipaddress.ip_network, node[2]):
            if net.version == 4:
                lo, hi = _v4_key(net.network_address), _v4_key(net.broadcast_address)
                key = self.lowered.col(column, IPV4)
            else:
                lo, hi = _v6_key(net.network_address), _v6_key(net.broadcast_address)
                key = self.lowered.col(column, IPV6)
            tests.append(key.is_between(pl.lit(lo), pl.lit(hi)))
        return pl.any_horizontal(tests)


_QUANTIFIER = re.compile(r"(?:[?*+]|\{(\d+)(,(\d*))?\})\??")  # (lazy or not) after an atom
_SAFE_ESCAPES = set("dDwWsS") | set(r".\\+*?()[]{}|^$-/#&~ '\"`%@!:;,=_")  # classes and escaped punctuation


@lru_cache(maxsize=4096)
def search_pattern(pattern: str) -> str:
    """A regex with the same answer to "is there a match in this text" (what ``str.contains`` asks) and often
    much cheaper to compile: a trailing part of its top-level sequence that matches the empty text anywhere is
    dropped (``(?:\\s?-p)?``, ``x*``), and a trailing ``x{m,n}`` / ``x{m,}`` / ``x+`` keeps its first ``m``
    (one) repetitions. A match of the shorter one is the start of a match of the longer one, and the reverse
    holds by construction. Polars compiles a regex at each expression that runs it (its cache keeps 32 per
    thread; a hunt runs hundreds) and Unicode classes repeated are costly: SigmaHQ's ``-k\\s\\w{1,64}(?:...)?``
    took ~20 ms of CPU to compile each time, ``-k\\s\\w`` ~0.5 ms. Only a tail made of plain characters,
    classes, groups and the escapes of ``_SAFE_ESCAPES`` is touched, and only in a pattern without top-level
    alternation, verbose flag or anything this reader does not know: else the pattern is returned as is."""
    items = _top_level(pattern)
    if items is None or re.search(r"\(\?[a-zA-Z-]*x", pattern):
        return pattern
    with warnings.catch_warnings(record=True) as warned:  # a pattern Python cannot read (or warns about: nested
        warnings.simplefilter("always")  # sets ...) either is left to fail or not as written
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError, ValueError):
            return pattern
    if warned:
        return pattern
    end = len(items)
    while end:
        atom, quantifier = items[end - 1]
        if not quantifier or not _droppable(atom):
            break
        low = _QUANTIFIER.fullmatch(quantifier)
        if quantifier[0] in "?*" or (low.group(1) is not None and int(low.group(1)) == 0):
            end -= 1  # matches the empty text: dropped
            continue
        least = 1 if quantifier[0] == "+" else int(low.group(1))
        items[end - 1] = (atom, "" if least == 1 else f"{{{least}}}")
        break
    return "".join(atom + quantifier for atom, quantifier in items[:end])


def _droppable(atom: str) -> bool:
    """Whether an atom of the tail may be shortened or dropped: no assertion, nothing unknown inside."""
    i = 0
    depth = 0  # inside a character class
    while i < len(atom):
        c = atom[i]
        if c == "\\":
            if atom[i + 1:i + 2] not in _SAFE_ESCAPES:  # assertions (``\b``), escapes with arguments, unknown
                return False
            i += 2
            continue
        if depth:
            if c == "[" or atom[i:i + 2] in ("&&", "--", "~~"):  # nested classes, class operations: not followed
                return False
            if c == "]":
                depth -= 1
        elif c == "[":
            depth = 1
            if atom[i + 1:i + 2] == "^":
                i += 1
            if atom[i + 1:i + 2] == "]":  # a first ``]`` is a character
                i += 1
        elif c in "^$":
            return False
        elif c == "(" and atom[i + 1:i + 2] == "?":
            flags = atom[i + 2:].split(")", 1)[0].split(":", 1)[0]
            if not all(f in "ims-" for f in flags):  # lookarounds, named groups, the verbose flag: unknown here
                return False
        i += 1
    return True


def _top_level(pattern: str) -> list[tuple[str, str]] | None:
    """The pattern's top-level sequence as (atom, quantifier) pairs (None: top-level alternation, a syntax this
    reader does not follow, or unbalanced brackets)."""
    items: list[tuple[str, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        start = i
        if c == "|":
            return None
        if c == "\\":
            if i + 1 >= n or pattern[i + 1] in "xupPUk0123456789":  # escapes with arguments: not followed here
                return None
            i += 2
        elif c == "[":
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":
                i += 1
            depth = 1
            while i < n and depth:
                if pattern[i] == "\\":
                    i += 1
                elif pattern[i] == "[":
                    depth += 1
                elif pattern[i] == "]":
                    depth -= 1
                i += 1
            if depth:
                return None
        elif c == "(":
            depth, i = 1, i + 1
            klass = 0
            while i < n and depth:
                d = pattern[i]
                if d == "\\":
                    i += 1
                elif klass:
                    klass += d == "["
                    klass -= d == "]"
                elif d == "[":
                    klass = 1
                    if pattern[i + 1:i + 2] == "^":
                        i += 1
                    if pattern[i + 1:i + 2] == "]":
                        i += 1
                elif d == "(":
                    depth += 1
                elif d == ")":
                    depth -= 1
                i += 1
            if depth:
                return None
        elif c in ")?*+{":
            return None  # a quantifier with nothing before it, or a stray bracket
        else:
            i += 1
        quantifier = _QUANTIFIER.match(pattern, i)
        if quantifier is None and pattern[i:i + 1] == "{":
            return None
        end = quantifier.end() if quantifier else i
        items.append((pattern[start:i], pattern[i:end]))
        i = end
    return items


def _number_text(n: int | float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


def _v4_key(addr: ipaddress.IPv4Address) -> str:
    return "".join(f"{int(o):03d}" for o in str(addr).split("."))


def _v6_key(addr: ipaddress.IPv6Address) -> str:
    return f"{int(addr):032x}"


def ipv4_key(col: pl.Expr) -> pl.Expr:
    """Dotted-quad text as a 12-digit string that sorts like the address (null if not IPv4)."""
    octets = col.str.extract_groups(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
    parts = [octets.struct.field(str(i)) for i in range(1, 5)]
    valid = pl.all_horizontal([p.cast(pl.Int32, strict=False) <= 255 for p in parts])
    return pl.when(valid).then(pl.concat_str([p.str.zfill(3) for p in parts]))


def ipv6_keys(values: pl.Series) -> pl.Series:
    """``ipv6_key`` of a column, computed once per distinct address that has a colon (addresses repeat)."""
    distinct = values.drop_nulls().unique()
    distinct = distinct.filter(distinct.str.contains(":", literal=True))
    if distinct.is_empty():
        return pl.Series(values.name, [None] * len(values), dtype=pl.String)
    keys = pl.Series([ipv6_text_key(v) for v in distinct.str.strip_chars().to_list()], dtype=pl.String)
    return values.replace_strict(distinct, keys, default=None, return_dtype=pl.String)


_ZONE = re.compile(r"%.*\Z")  # Rust's ``$`` (end of text) is Python's ``\Z``; ``.`` stops at a line break in both
_TAIL = re.compile(r":([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\Z")
_HEXTEXT = re.compile(r"[0-9a-f:]+\Z")


def ipv6_text_key(value: str) -> str | None:
    """``ipv6_key`` of one stripped text, in Python: the expression costs ~35 ms a call (its regexes are
    compiled each time) where a column's distinct addresses take microseconds each. A non-ASCII digit (which
    the expression's ``\\d`` matches) makes both null: its cast fails there, the hex test here."""
    low = _ZONE.sub("", value.lower(), count=1)
    tail = _TAIL.search(low)
    if tail is not None:
        octets = [int(o) for o in tail.groups()]
        if max(octets) > 255:
            return None
        low = low[:tail.start() + 1] + _HEX[octets[0]] + _HEX[octets[1]] + ":" + _HEX[octets[2]] + _HEX[octets[3]]
    halves = low.split("::")
    if len(halves) > 2 or not _HEXTEXT.match(low):
        return None
    groups = halves[0].split(":") if halves[0] else []
    if len(halves) == 2:
        right = halves[1].split(":") if halves[1] else []
        groups += ["0"] * max(8 - len(groups) - len(right), 0) + right
    if len(groups) != 8 or not all(1 <= len(g) <= 4 for g in groups):
        return None
    return "".join(g.zfill(4) for g in groups)


def ipv6_key(col: pl.Expr) -> pl.Expr:
    """IPv6 text (``::`` compression, zone ids, IPv4 tails) as 32 hex digits (null if not IPv6)."""
    low = col.str.to_lowercase().str.replace(r"%.*$", "")
    tail = low.str.extract(r":(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$", 1)  # ::ffff:1.2.3.4
    octets = tail.str.extract_groups(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$")
    hexes = [octets.struct.field(str(i)).cast(pl.Int32, strict=False)
             .replace_strict(list(range(256)), _HEX, default=None, return_dtype=pl.String) for i in range(1, 5)]
    tail_hex = hexes[0] + hexes[1] + ":" + hexes[2] + hexes[3]
    low = pl.when(tail.is_not_null()).then(
        low.str.replace(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$", "") + tail_hex).otherwise(low)
    halves = low.str.split("::")
    left, right = halves.list.get(0, null_on_oob=True), halves.list.get(1, null_on_oob=True)
    lg = pl.when(left == "").then(pl.lit([], dtype=pl.List(pl.String))).otherwise(left.str.split(":"))
    rg = pl.when(right.is_null() | (right == "")).then(pl.lit([], dtype=pl.List(pl.String))
                                                        ).otherwise(right.str.split(":"))
    missing = 8 - lg.list.len() - rg.list.len()
    zeros = pl.lit("0").repeat_by(missing.clip(lower_bound=0))
    groups = pl.when(halves.list.len() == 2).then(lg.list.concat(zeros).list.concat(rg)).otherwise(lg)
    ok = (groups.list.len() == 8) & low.str.contains(r"^[0-9a-f:]+$") & (halves.list.len() <= 2)
    ok = ok & groups.list.eval(pl.element().str.len_chars().is_between(1, 4)).list.all()
    return pl.when(ok).then(groups.list.eval(pl.element().str.zfill(4)).list.join(""))


_HEX = [f"{i:02x}" for i in range(256)]  # an octet as two hex digits



AFFIX_BUDGET = 400  # (distinct values x text lengths) a leaf may cost ``affix_tests`` (~0.1 us each) instead of
# its Polars expression (~50-90 us to plan and run on a small frame: most of a small frame's leaf cost)


def affix_tests(work: pl.DataFrame, tests: dict[str, list[tuple[str, tuple[str, ...]]]],
                known: dict[str, tuple[list[str], np.ndarray]] | None = None) -> dict[str, list]:
    """The outcome per row of case-insensitive ``exact``/``prefix``/``suffix``/``contains`` leaves, by column of
    ``work`` (each the lower-cased copy the leaves' expressions read) -> their (kind, texts lower-cased), worked
    out once per distinct value of the column: one dictionary look-up per text length for the first three, one
    automaton over the distinct values for every ``contains`` text of the column (Polars builds one per
    ``contains_any`` leaf, ~0.2 ms each), not one Polars expression per leaf; two selects for every column.
    A leaf left to its expression is None: the ``exact``/``prefix``/``suffix`` ones of a column whose distinct
    values would cost more (``AFFIX_BUDGET``). Same outcome as ``Builder._str``: a text is a prefix (suffix,
    part) of a value in bytes iff in characters; null is false.
    ``known``: column -> its distinct values lower-cased and, per row of ``work``, the number of its value counted
    from 1 (0: null), as the literal search found them (``prefilter.Distinct``): such a column needs neither
    selects nor a lower-cased copy in ``work``."""
    local = {c: _present(*known[c]) for c in tests if c in known} if known else {}
    names = [c for c in tests if c not in local]
    distinct = work.select([pl.col(c).drop_nulls().unique().sort().implode() for c in names]) if names else None
    plans: dict[str, tuple] = {}
    for c in tests:
        values = local[c][0] if c in local else distinct.get_column(c)[0].to_list()
        exact: dict[str, list[int]] = {}
        affix: dict[tuple[str, int], dict[str, list[int]]] = {}
        contains = []
        for k, (kind, texts) in enumerate(tests[c]):
            if kind == "contains":
                contains.append(k)
                continue
            for t in texts:
                (exact if kind == "exact" else affix.setdefault((kind, len(t)), {})).setdefault(t, []).append(k)
        lookups = len(tests[c]) - len(contains)
        if not lookups or len(values) * (len(affix) + 1) > AFFIX_BUDGET * lookups:
            exact, affix, lookups = {}, {}, 0
        if lookups or contains:
            plans[c] = (values, exact, affix, lookups, contains)
    if not plans:
        return {}
    selected = [c for c in plans if c not in local]
    codes = work.select([pl.when(pl.col(c).is_null()).then(0).otherwise(  # 0: null, i: the i-th distinct value
        pl.col(c).drop_nulls().unique().sort().search_sorted(pl.col(c)).cast(pl.UInt32) + 1).alias(c)
        for c in selected]) if selected else None
    tables, parts = {}, []
    for c, (values, exact, affix, lookups, contains) in plans.items():
        leaf, at = [], []
        for i, v in enumerate(values if lookups else [], start=1):
            hit = exact.get(v)
            if hit:
                leaf += hit
                at += [i] * len(hit)
            n = len(v)
            for (kind, size), by_text in affix.items():
                if size <= n:
                    hit = by_text.get(v[:size] if kind == "prefix" else v[n - size:])
                    if hit:
                        leaf += hit
                        at += [i] * len(hit)
        table = np.zeros((len(tests[c]), len(values) + 1), dtype=bool)
        table[np.asarray(leaf, dtype=np.int64), np.asarray(at, dtype=np.int64)] = True
        if contains:
            parts.append((values, [(k, tests[c][k][1]) for k in contains], table))
        tables[c] = (table, set(contains) if not lookups else range(len(tests[c])))
    if parts:
        _contained_in(parts)
    out = {}
    for c, (table, done) in tables.items():
        rows = table[:, local[c][1] if c in local else codes.get_column(c).to_numpy()]  # one gather for all leaves
        out[c] = [rows[k] if k in done else None for k in range(len(tests[c]))]
    return out


def _present(values: list[str], codes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Of a column's distinct ``values`` and its rows' value numbers (from 1; 0: null), those its rows hold, and
    their numbers among them."""
    seen = np.zeros(len(values) + 1, dtype=bool)
    seen[codes] = True
    seen[0] = False
    present = np.flatnonzero(seen)
    if len(present) == len(values):
        return values, codes
    number = np.zeros(len(values) + 1, dtype=np.int64)
    number[present] = np.arange(1, len(present) + 1)
    return [values[k - 1] for k in present.tolist()], number[codes]


def _contained_in(columns: list[tuple[list[str], list[tuple[int, tuple[str, ...]]], np.ndarray]]) -> None:
    """For each column's (distinct ``values``, ``leaves``, ``table``): set ``table[k, i]`` (value ``i`` counted from
    1) where one of leaf ``k``'s texts is in the ``i``-th value. Every text of every column found in every value
    by one automaton pass over the columns' values stacked (``str.extract_many``, overlapping: all of them),
    each found text then given to the leaves of the value's column that have it. An empty text is in every value."""
    pats = sorted({t for _, leaves, _ in columns for _, texts in leaves for t in texts if t})
    number = {t: p for p, t in enumerate(pats)}
    pairs = sorted((c * len(pats) + number[t], k) for c, (_, leaves, _) in enumerate(columns)
                   for k, texts in leaves for t in set(texts) if t)  # (column, text) -> its leaves
    for _, leaves, table in columns:
        for k, texts in leaves:
            if "" in texts:
                table[k, 1:] = True
    sizes = np.array([len(values) for values, _, _ in columns], dtype=np.int64)
    if not pats or not sizes.sum():
        return
    starts = np.cumsum(sizes) - sizes
    stacked = pl.Series([v for values, _, _ in columns for v in values], dtype=pl.String)
    hits = pl.DataFrame({"m": stacked.str.extract_many(pats, overlapping=True)}).with_row_index("i") \
        .explode("m").drop_nulls("m")  # an empty list explodes to one null: dropped with the nulls
    found = hits.get_column("m").cast(pl.Enum(pats)).to_physical().to_numpy().astype(np.int64)
    at = hits.get_column("i").to_numpy().astype(np.int64)
    column = np.searchsorted(starts, at, side="right") - 1
    key = np.array([k for k, _ in pairs], dtype=np.int64)
    leaf = np.array([k for _, k in pairs], dtype=np.int64)
    want = column * len(pats) + found
    first = np.searchsorted(key, want)
    count = np.searchsorted(key, want, side="right") - first
    spans = np.repeat(first, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    column, at = np.repeat(column, count), np.repeat(at, count)
    for c, (_, _, table) in enumerate(columns):
        mine = column == c
        table[leaf[spans[mine]], at[mine] - starts[c] + 1] = True
