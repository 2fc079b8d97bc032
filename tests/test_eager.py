"""Frame edits without a query (soc.parse.eager) give what the Polars expressions they replace give."""

from __future__ import annotations

import polars as pl
import pytest

from soc.parse.eager import constant, nulls, prefixed, set_rows


@pytest.mark.parametrize("value", ["event", 1, 2**40, -3, 1.5, True, None, ["a", "b"]])
def test_constant_is_typed_as_a_literal(value):
    assert constant("c", value, 3).equals(pl.select(pl.lit(value).alias("c")).to_series().new_from_index(0, 3))


def test_nulls_prefixed_and_set_rows():
    frame = pl.DataFrame({"a": [1, 2], "b": ["x", None]})
    assert prefixed(frame, "raw.").columns == ["raw.a", "raw.b"] and frame.columns == ["a", "b"]
    assert nulls("n", pl.Int64, 2).to_list() == [None, None]
    assert set_rows(pl.Series([None, None], dtype=pl.String)) is None
    assert set_rows(frame.get_column("b")).tolist() == [True, False]
