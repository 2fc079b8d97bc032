"""The literal search's distinct values (``prefilter.Distinct``) reused by the per-value tests
(``backend.affix_tests(..., known)``): the same outcome per row as with the tests' own selects over a lower-cased
copy, on any subset of rows."""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.sigma.backend import LOWER, affix_tests
from soc.sigma.prefilter import Literals

SPELLINGS = ["C:\\Windows\\System32\\CMD.EXE", "c:\\windows\\system32\\cmd.exe", "powershell.exe -enc AAA", "",
             "Ärger.exe", "ärger.EXE", "ΣΑΣ", "σας", None]
TESTS = [("exact", ("c:\\windows\\system32\\cmd.exe",)), ("suffix", ("\\cmd.exe", "r.exe")),
         ("prefix", ("pow", "är")), ("exact", ("",)), ("contains", ("system32", "enc aaa")), ("contains", ("σ",))]


def frame(n: int = 3000) -> pl.DataFrame:
    """Enough rows and texts that the search groups its values (not the few-values path)."""
    a = [SPELLINGS[i % len(SPELLINGS)] if i % 7 else f"value {i}" for i in range(n)]
    b = [None if i % 3 else f"other {i % 50}" for i in range(n)]
    return pl.DataFrame({"a": a, "b": b, "c": ["zzz"] * n}, schema={"a": pl.String, "b": pl.Categorical,
                                                                     "c": pl.String})


def searched(df: pl.DataFrame):
    literals = Literals()
    texts = [f"text {i}" for i in range(80)] + ["cmd.exe"]
    cond = literals.bind(["or", [["lit", "a", texts], ["lit", "b", ["other 1"]]]], lambda f: (f, df.schema[f]))
    groups = sorted({kid[1] for kid in cond[1]})
    distinct, found = literals.search(df, groups)
    return distinct, found, groups


def test_the_search_gives_each_rows_value_lower_cased():
    df = frame()
    distinct, found, groups = searched(df)
    assert distinct is not None
    for name in ("a", "b"):
        values, codes = distinct.column(name)
        column = df.get_column(name).cast(pl.String)
        want = column.str.to_lowercase().to_list()
        got = [None if k == 0 else values[int(k) - 1] for k in codes]
        assert got == want
        assert (codes == 0).sum() == column.null_count()
    assert distinct.column("c") is None  # not stacked for the search
    rows = found[groups[0]]
    assert len(rows) and all("cmd.exe" in df.get_column("a")[int(r)].lower() for r in rows)


def test_affix_tests_on_the_searched_values_equal_their_own_on_any_rows():
    df = frame()
    distinct, _, _ = searched(df)
    values, codes = distinct.column("a")
    rng = np.random.default_rng(7)
    for rows in (np.arange(df.height), np.sort(rng.choice(df.height, 40, replace=False)), np.array([0, 7])):
        work = df[rows].with_columns(pl.col("a").str.to_lowercase().alias(LOWER + "a"))
        own = affix_tests(work, {LOWER + "a": TESTS})[LOWER + "a"]
        reused = affix_tests(work.drop(LOWER + "a"), {LOWER + "a": TESTS}, {LOWER + "a": (values, codes[rows])})
        reused = reused[LOWER + "a"]
        for (kind, texts), x, y in zip(TESTS, own, reused, strict=True):
            assert (x is None) == (y is None), (kind, texts)
            if x is not None:
                assert x.tolist() == y.tolist(), (kind, texts, len(rows))
        assert own[0] is None or own[0].sum() == sum(v == "c:\\windows\\system32\\cmd.exe"
                                                     for v in work.get_column(LOWER + "a").to_list())
