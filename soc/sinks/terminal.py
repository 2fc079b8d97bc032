"""Human output: the summary table, with attacker-controlled text made safe for a terminal."""

from __future__ import annotations

import re
from datetime import datetime

RECORDS = "read, parsed, dead-lettered: records (a line of a text log, an event record of an EVTX file)"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes, bidi overrides, newlines) shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def _span(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return "-"
    return f"{first:%Y-%m-%d %H:%M:%S} .. {last:%Y-%m-%d %H:%M:%S} UTC"


def summary_table(stats: list, title: str = "soc"):
    """A rich Table of per-input counts (``stats`` are ``pipeline.SourceStats``).

    Counts are of records: a line of a text log, an event record of an EVTX file (the caption says so).
    """
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left", caption=RECORDS, caption_justify="left")
    for name, kw in [("input", {}), ("format", {}), ("read", {"justify": "right"}),
                     ("parsed", {"justify": "right"}), ("dead-lettered", {"justify": "right"}),
                     ("time range", {}), ("records/s", {"justify": "right"}), ("MB/s", {"justify": "right"})]:
        table.add_column(name, **kw)
    total = [0, 0, 0, 0, 0.0]
    for st in stats:
        secs = max(st.seconds, 1e-9)
        if st.error:  # with what was read before it (a compressed input cut short keeps its lines)
            counts = (f"{st.read:,}", f"{st.parsed:,}", f"{st.dead:,}") if st.read else ("-", "-", "-")
            table.add_row(escape(printable(st.path)), "[red]error[/red]", *counts, escape(printable(st.error)),
                          "-", "-")
            continue
        if st.skipped:  # not a log soc knows (pipeline.SourceStats.skipped)
            table.add_row(escape(printable(st.path)), "[yellow]skipped[/yellow]", "-", "-", "-",
                          escape(printable(st.skipped.split(" (tried:")[0])), "-", "-")  # the warning has it all
            continue
        dead = f"[yellow]{st.dead:,}[/yellow]" if st.dead else "0"
        table.add_row(escape(printable(st.path)), st.format or "-", f"{st.read:,}", f"{st.parsed:,}", dead,
                      _span(st.first, st.last), f"{st.read / secs:,.0f}", f"{st.bytes / secs / 1e6:,.1f}")
        total = [total[0] + st.read, total[1] + st.parsed, total[2] + st.dead, total[3] + st.bytes,
                 total[4] + st.seconds]
    if len(stats) > 1:
        secs = max(total[4], 1e-9)
        table.add_row("[b]total[/b]", "", f"{total[0]:,}", f"{total[1]:,}", f"{total[2]:,}", "",
                      f"{total[0] / secs:,.0f}", f"{total[3] / secs / 1e6:,.1f}", end_section=True)
    return table
