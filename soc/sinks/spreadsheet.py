"""CSV that a spreadsheet opens safely: alert text comes from logs, which an attacker writes.

As OWASP's CSV-injection guidance says: a text cell that a spreadsheet would read as a formula (first
character ``=``, ``+``, ``-``, ``@``, tab or carriage return; also after leading spaces, and the full-width
forms some locales accept) gets a leading ``'``, and every text cell is quoted. A text cell that is exactly a
decimal number (``-42``, ``+3.5``) is kept: a spreadsheet reads it as that number, which runs nothing; numeric
columns are written as numbers, unquoted. Control characters (ANSI escapes, line breaks, NUL, bidi overrides)
are shown as ``\\xNN``/``\\uNNNN``, as in the terminal table, so that the analyst sees they were there.
"""

from __future__ import annotations

import polars as pl

from soc.sinks.terminal import _CONTROL, printable

FORMULA = r"^\s*[=+\-@\t\r\x{FF1D}\x{FF0B}\x{FF0D}\x{FF20}]"
NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


def safe_csv(frame: pl.DataFrame) -> str:
    """``frame`` as CSV with a header; list columns joined with spaces; text neutralised (module doc)."""
    lists = [pl.col(c).list.join(" ") for c, t in frame.schema.items() if isinstance(t, pl.List)]
    frame = frame.with_columns(lists)
    text = [c for c, t in frame.schema.items() if t == pl.String]
    frame = frame.with_columns(_visible(frame.get_column(c)) for c in text)
    frame = frame.with_columns(
        pl.when(pl.col(c).str.contains(FORMULA) & ~pl.col(c).str.contains(NUMBER))
        .then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in text)
    header = ",".join(frame.columns) + "\n"  # ECS names of ours, written as before (scripts read them)
    return header + frame.write_csv(include_header=False, quote_style="non_numeric")


def _visible(column: pl.Series) -> pl.Series:
    """``column`` with control characters escaped (``printable``); Python only for the cells holding one."""
    hit = column.str.contains(_CONTROL.pattern).fill_null(False)
    if not hit.any():
        return column
    where = hit.arg_true()
    return column.scatter(where, [printable(v) for v in column.gather(where).to_list()])
