"""A pySigma rule's detection as our own plain tree (lists, strings, numbers): cacheable as JSON.

pySigma parses the rule and applies its modifiers (``contains``, ``base64offset``, ``windash``, ``cidr`` ...
become typed values); this module walks the postprocessed condition tree and writes one node per test.
Nodes (JSON-friendly lists):

``["and", [nodes]]``, ``["or", [nodes]]``, ``["not", node]``, ``["const", bool]``
``["str", field, kind, [values], cased]``  kind: exact | prefix | suffix | contains | any | glob (anchored
    regex made from ``*``/``?`` wildcards); field ``None`` is a keyword searched over the text columns
``["re", field, pattern, flags]``  a rule's own regex (flags: any of ``ims``)
``["num", field, [numbers]]``, ``["cmp", field, op, number]``, ``["bool", field, bool]``
``["cidr", field, [networks]]``, ``["ref", field, other, mode]`` (mode eq | prefix | suffix)
``["exists", field, bool]``, ``["null", field]``

The tree never depends on which frames exist: columns are resolved when it is turned into a Polars
expression for a frame (``soc.sigma.backend``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

Node = list
_FLAGS = {"IGNORECASE": "i", "MULTILINE": "m", "DOTALL": "s"}
_OPS = {"LT": "lt", "LTE": "lte", "GT": "gt", "GTE": "gte", "NEQ": "neq"}


class Unsupported(Exception):
    """A rule (or one of its values) this backend cannot evaluate; the message says why."""


def from_condition(cond, placeholders: dict[str, list[str]]) -> Node:
    """Our tree of one postprocessed pySigma condition (``SigmaRule.detection.parsed_condition[i].parsed``)."""
    from sigma.conditions import (
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionNOT,
        ConditionOR,
        ConditionValueExpression,
    )

    if cond is None:  # a detection every item of which was dropped
        return ["const", False]
    if isinstance(cond, ConditionAND):
        return ["and", [from_condition(a, placeholders) for a in cond.args]]
    if isinstance(cond, ConditionOR):
        return ["or", [from_condition(a, placeholders) for a in cond.args]]
    if isinstance(cond, ConditionNOT):
        return ["not", from_condition(cond.args[0], placeholders)]
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        return value_node(cond.field, cond.value, placeholders)
    if isinstance(cond, ConditionValueExpression):
        return value_node(None, cond.value, placeholders)
    raise Unsupported(f"condition element {type(cond).__name__}")


def value_node(field: str | None, value, placeholders: dict[str, list[str]]) -> Node:
    """The test of one field (or keyword, field ``None``) against one pySigma value."""
    from sigma import types as T

    if isinstance(value, T.SigmaExpansion):  # base64offset, windash: any of the variants
        return ["or", [value_node(field, v, placeholders) for v in value.values]]
    if isinstance(value, T.SigmaString):
        cased = isinstance(value, T.SigmaCasedString)
        if value.contains_placeholder():
            return ["or", [value_node(field, _cased(v, cased), {}) for v in _fill(value, placeholders)]]
        parts = value.s if field is not None else _unanchored(value.s)
        kind, text = string_test(parts)
        return ["str", field, kind, [text], cased]
    if isinstance(value, T.SigmaRegularExpression):
        if value.regexp.contains_placeholder():
            raise Unsupported("placeholder inside a regular expression (|expand|re)")
        flags = "".join(sorted(_FLAGS[f.name] for f in value.flags))
        return ["re", field, value.regexp.original, flags]
    if isinstance(value, T.SigmaBool):  # before SigmaNumber: not a subclass, but be explicit
        return ["bool", _need(field, value), bool(value.boolean)]
    if isinstance(value, T.SigmaTimestampPart):
        raise Unsupported(f"timestamp part modifier ({value.timestamp_part.name.lower()})")
    if isinstance(value, T.SigmaNumber):
        if field is None:  # a bare number among keywords: search its text
            return ["str", None, "contains", [str(value.number)], False]
        return ["num", field, [value.number]]
    if isinstance(value, T.SigmaNull):
        return ["null", _need(field, value)]
    if isinstance(value, T.SigmaExists):
        return ["exists", _need(field, value), bool(value.exists)]
    if isinstance(value, T.SigmaCompareExpression):
        return ["cmp", _need(field, value), _OPS[value.op.name], value.number.number]
    if isinstance(value, T.SigmaCIDRExpression):
        return ["cidr", _need(field, value), [str(value.network)]]
    if isinstance(value, T.SigmaFieldReference):
        mode = "prefix" if value.starts_with else "suffix" if value.ends_with else "eq"
        if value.starts_with and value.ends_with:
            mode = "contains"
        return ["ref", _need(field, value), value.field, mode]
    raise Unsupported(f"value type {type(value).__name__}")


def _unanchored(parts: list) -> list:
    """A keyword matches anywhere in a text (as full-text search does): ``*keyword*``."""
    from sigma.types import SpecialChars

    multi = SpecialChars.WILDCARD_MULTI
    return ([] if parts and parts[0] is multi else [multi]) + list(parts) + \
        ([] if parts and parts[-1] is multi else [multi])


def _need(field: str | None, value) -> str:
    if field is None:
        raise Unsupported(f"{type(value).__name__} without a field")
    return field


def _cased(s, cased: bool):
    from sigma.types import SigmaCasedString

    return SigmaCasedString.from_sigma_string(s) if cased else s


def _fill(value, placeholders: dict[str, list[str]]) -> list:
    """The strings a value with ``%name%`` placeholders stands for, from the placeholders file."""
    def values(p):
        if p.name not in placeholders:
            raise Unsupported(f"placeholder %{p.name}% has no value (define it in the placeholders file)")
        return list(placeholders[p.name])

    return value.replace_placeholders(values)


def string_test(parts: list) -> tuple[str, str]:
    """(kind, text) of a Sigma string given as parts (plain strings and wildcards)."""
    from sigma.types import Placeholder, SpecialChars

    multi, single = SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE
    if any(isinstance(p, Placeholder) for p in parts):
        raise Unsupported("unexpanded placeholder")
    plain = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if not isinstance(p, str)]
    if not specials:
        return "exact", "".join(plain)
    if all(p is multi for p in specials) and len(plain) <= 1:
        text = plain[0] if plain else ""
        lead, trail = parts[0] is multi, parts[-1] is multi
        if not text:
            return "any", ""
        if lead and trail and len(parts) == 3:
            return "contains", text
        if lead and len(parts) == 2:
            return "suffix", text
        if trail and len(parts) == 2:
            return "prefix", text
    out = []
    for p in parts:
        out.append(re.escape(p) if isinstance(p, str) else ".*" if p is multi else "." if p is single else "")
    return "glob", "".join(out)


def simplify(node: Node) -> Node:
    """Flatten nested and/or, and merge the string tests of one field and kind under an ``or`` (one
    ``is_in`` / ``contains_any`` instead of many comparisons)."""
    op = node[0]
    if op == "not":
        inner = simplify(node[1])
        if inner[0] == "const":
            return ["const", not inner[1]]
        return ["not", inner]
    if op not in ("and", "or"):
        return node
    kids: list[Node] = []
    for k in (simplify(k) for k in node[1]):
        if k[0] == op:
            kids.extend(k[1])
        else:
            kids.append(k)
    if op == "or":
        merged: dict[tuple, Node] = {}
        rest = []
        for k in kids:
            if k[0] in ("str", "num", "cidr"):
                key = (k[0], k[1], k[2], k[4]) if k[0] == "str" else (k[0], k[1])
                if key in merged:
                    target = merged[key][3] if k[0] == "str" else merged[key][2]
                    target.extend(v for v in (k[3] if k[0] == "str" else k[2]) if v not in target)
                    continue
                merged[key] = [*k[:3], list(k[3]), k[4]] if k[0] == "str" else [k[0], k[1], list(k[2])]
                rest.append(merged[key])
            else:
                rest.append(k)
        kids = rest
    constant = op == "and"  # the neutral element
    kids = [k for k in kids if not (k[0] == "const" and k[1] == constant)]
    if any(k[0] == "const" for k in kids):  # an absorbing element
        return ["const", not constant]
    if not kids:
        return ["const", constant]
    return kids[0] if len(kids) == 1 else [op, kids]


def walk(node: Node, visit: Callable[[Node], None]) -> None:
    """Call ``visit`` on every node of the tree."""
    visit(node)
    if node[0] in ("and", "or"):
        for k in node[1]:
            walk(k, visit)
    elif node[0] == "not":
        walk(node[1], visit)


def fields_of(node: Node) -> set[str]:
    """The Sigma field names a tree reads (``ref`` nodes read two)."""
    found: set[str] = set()

    def visit(n: Node) -> None:
        if n[0] in ("str", "re", "num", "cmp", "bool", "cidr", "ref", "exists", "null") and n[1] is not None:
            found.add(n[1])
        if n[0] == "ref":
            found.add(n[2])

    walk(node, visit)
    return found


def pinned(node: Node, field: str) -> set[int] | None:
    """The values of ``field`` (e.g. EventID) a record must have for the tree to match; None if any."""
    op = node[0]
    if op == "num" and node[1] == field:
        return {int(v) for v in node[2] if float(v).is_integer()}
    if op == "str" and node[1] == field and node[2] == "exact" and all(v.isdigit() for v in node[3]):
        return {int(v) for v in node[3]}
    if op == "const" and node[1] is False:
        return set()
    if op == "and":
        sets = [s for s in (pinned(k, field) for k in node[1]) if s is not None]
        return set.intersection(*sets) if sets else None
    if op == "or":
        sets = [pinned(k, field) for k in node[1]]
        return None if any(s is None for s in sets) else set().union(*sets)
    return None
