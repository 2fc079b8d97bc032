"""Case-insensitive exact/prefix/suffix/contains leaves worked out per distinct value (``backend.affix_tests``):
the same outcome per row as their Polars expressions (``Builder``), nulls false, non-ASCII and empty texts included."""

from __future__ import annotations

import numpy as np
import polars as pl

from soc.sigma.backend import LOWER, Builder, Lowered, affix_tests

VALUES = ["C:\\Windows\\System32\\cmd.exe", "c:\\windows\\system32\\CMD.EXE", None, "", "Ärger.exe", "ärger.EXE",
          "powershell.exe -enc AAA", "x", "cmd.exe", "ΣΑΣ", "σας"]
TESTS = [("exact", ("cmd.exe",)), ("exact", ("", "x")), ("suffix", ("\\cmd.exe", "\\powershell.exe")),
         ("suffix", ("r.exe", "a", "b", "c", "d", "e")), ("prefix", ("c:\\windows\\",)), ("prefix", ("",)),
         ("prefix", ("är", "pow", "q", "r", "s", "t")), ("exact", ("σας",)), ("suffix", ("ς",)),
         ("contains", ("system32", "cmd")), ("contains", ("",)), ("contains", ("ärg", "rg", "ger.")),
         ("contains", ("σ", "enc aaa")), ("contains", ("not there",))]


def expected(frame: pl.DataFrame, kind: str, texts: tuple[str, ...]) -> np.ndarray:
    lowered = Lowered()
    builder = Builder(frame.schema, lambda name: name, lowered)
    test = builder.build(["str", "v", kind, list(texts), False])
    return frame.with_columns(lowered.columns(frame.schema)).select(test).to_series().to_numpy()


def test_affix_tests_give_what_the_expressions_give():
    frame = pl.DataFrame({"v": VALUES}, schema={"v": pl.String})
    work = frame.with_columns(pl.col("v").str.to_lowercase().alias(LOWER + "v"))
    got = affix_tests(work, {LOWER + "v": TESTS})[LOWER + "v"]
    for (kind, texts), value in zip(TESTS, got, strict=True):
        want = expected(frame, kind, texts)
        assert value.tolist() == want.tolist(), (kind, texts)
    assert got[0].tolist() == [False] * 8 + [True, False, False]  # "cmd.exe" only where the whole value is
    assert got[2].sum() == 2  # the two spellings of ...\\cmd.exe


def test_contains_leaves_of_several_columns_searched_together_stay_in_their_column():
    frame = pl.DataFrame({"a": ["abc", None, "xyz"], "b": ["xyz", "abc", None]})
    work = frame.with_columns(pl.col(c).str.to_lowercase().alias(LOWER + c) for c in "ab")
    tests = {LOWER + "a": [("contains", ("ab",)), ("contains", ("y", "q"))], LOWER + "b": [("contains", ("ab",))]}
    got = affix_tests(work, tests)
    assert [v.tolist() for v in got[LOWER + "a"]] == [[True, False, False], [False, False, True]]
    assert [v.tolist() for v in got[LOWER + "b"]] == [[False, True, False]]
    for c in "ab":
        for (kind, texts), value in zip(tests[LOWER + c], got[LOWER + c], strict=True):
            assert value.tolist() == expected(frame.select(pl.col(c).alias("v")), kind, texts).tolist()


def test_a_column_of_too_many_distinct_values_is_left_to_the_expressions():
    work = pl.DataFrame({LOWER + "v": [f"value {i}" for i in range(5000)]})
    assert affix_tests(work, {LOWER + "v": [("exact", ("value 1",))]}) == {}
    got = affix_tests(work, {LOWER + "v": [("exact", ("value 1",)), ("contains", ("e 12",))]})[LOWER + "v"]
    assert got[0] is None and got[1].sum() == 111  # the contains leaf is still worked out: value 12, 120-129, ...
