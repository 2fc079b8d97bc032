"""Human output: the summary and result tables as plain text, with attacker-controlled text made safe for a
terminal (control characters shown escaped; no markup is interpreted)."""

from __future__ import annotations

import re
from datetime import datetime

from soc.i18n import N_, _, current, number

RECORDS = N_("read, parsed, dead-lettered: records (a line of a text log, an event record of an EVTX file)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes, bidi overrides, newlines) shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def _span(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return "-"
    return f"{first:%Y-%m-%d %H:%M:%S} .. {last:%Y-%m-%d %H:%M:%S} UTC"


MANY_INPUTS = 20  # more inputs than this: one row per folder and format, and the inputs that need attention
ATTENTION_ROWS = 50  # at most this many rows of inputs that need attention (all in --json, errors on stderr)

Cell = str | tuple[str, str]  # text, or (text, style): a style is "red", "yellow" or "bold"
_STYLES = {"red": "\x1b[31m", "yellow": "\x1b[33m", "bold": "\x1b[1m"}


def cells(text: str) -> int:
    """Terminal columns of ``text`` (East Asian wide characters take two, combining marks none)."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns, cut at the last space when there is one (one pass: a
    long file name or error message costs its length, not its length times its lines)."""
    if cells(text) <= width:
        return [text]
    lines, start, used, space = [], 0, 0, -1
    for i, ch in enumerate(text):
        w = cells(ch)
        if used + w > width and i > start:
            cut = space if space > start else i
            lines.append(text[start:cut].rstrip())
            start = cut + 1 if cut == space else cut
            used, space = cells(text[start:i]), -1
        if ch == " ":
            space = i
        used += w
    return [*lines, text[start:]]


def render_table(title: str, columns: list[tuple[str, str]], rows: list, caption: str = "", width: int = 160,
                 color: bool = False) -> str:
    """A table as text, drawn like rich's default tables, in linear time: rich takes ~0.2-0.7 ms a row, which a
    hunt's 400-rule or 483-input table turned into a good share of a second. ``columns`` are (name, "left" or
    "right"); a row is a tuple of cells (printable text only: ``printable`` first) or None for a rule line.
    Columns wider than ``width`` allows are narrowed, those with the most room first, and their cells wrapped."""
    texts = [[c if isinstance(c, str) else c[0] for c in row] if row is not None else None for row in rows]
    widths = [cells(name) for name, _ in columns]
    for row in texts:
        if row is not None:
            widths = [max(w, cells(t)) for w, t in zip(widths, row, strict=True)]
    floor = [min(w, max(cells(name), 6)) for w, (name, _) in zip(widths, columns, strict=True)]
    while sum(widths) + 3 * len(widths) + 1 > width:
        i = max(range(len(widths)), key=lambda j: widths[j] - floor[j])
        if widths[i] <= floor[i]:
            break
        widths[i] -= 1

    def line(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def body(cells_: list[Cell], bar: str) -> list[str]:
        wrapped = [_wrap(c if isinstance(c, str) else c[0], w) for c, w in zip(cells_, widths, strict=True)]
        out = []
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for cell, lines, w, (_name, justify) in zip(cells_, wrapped, widths, columns, strict=True):
                text = lines[k] if k < len(lines) else ""
                pad = " " * (w - cells(text))
                if color and not isinstance(cell, str) and text:
                    text = f"{_STYLES[cell[1]]}{text}\x1b[0m"
                parts.append(f" {pad}{text} " if justify == "right" else f" {text}{pad} ")
            out.append(bar + bar.join(parts) + bar)
        return out

    out = [title] if title else []
    out.append(line("┏", "━", "┳", "┓"))
    out.extend(body([name for name, _ in columns], "┃"))
    out.append(line("┡", "━", "╇", "┩"))
    for row in rows:
        out.extend([line("├", "─", "┼", "┤")] if row is None else body(list(row), "│"))
    out.append(line("└", "─", "┴", "┘"))
    if caption:
        out.append(caption)
    return "\n".join(out)


SUMMARY_COLUMNS = [(N_("input"), "left"), (N_("format"), "left"), (N_("read"), "right"), (N_("parsed"), "right"),
                   (N_("dead-lettered"), "right"), (N_("time range"), "left"), (N_("records/s"), "right"),
                   (N_("MB/s"), "right")]


def level_header() -> str:
    """The header of a rule's or detector's level column: "level" in English; in Vietnamese its severity
    (mức độ), not the "cấp độ" of a system's security level that the catalog's "level" reads as."""
    return "level" if current() == "en" else _("rule level")


def _row(name: Cell, stats: list, fmt: Cell) -> tuple:
    """The counts, time range and speed of ``stats`` (inputs read, one or many) as a row of the summary."""
    read, parsed, dead = (sum(st.read for st in stats), sum(st.parsed for st in stats), sum(st.dead for st in stats))
    nbytes, secs = sum(st.bytes for st in stats), max(sum(st.seconds for st in stats), 1e-9)
    firsts = [st.first for st in stats if st.first is not None]
    lasts = [st.last for st in stats if st.last is not None]
    span = _span(min(firsts), max(lasts)) if firsts and lasts else "-"
    return (name, fmt, number(read), number(parsed), (number(dead), "yellow") if dead else "0", span,
            number(read / secs, 0), number(nbytes / secs / 1e6, 1))


def _input_row(st) -> tuple:
    """One input's row: its counts, or why it was not read."""
    path = printable(st.path)
    if st.error:  # with what was read before it (a compressed input cut short keeps its lines)
        counts = (number(st.read), number(st.parsed), number(st.dead)) if st.read else ("-", "-", "-")
        return (path, (_("error"), "red"), *counts, printable(st.error), "-", "-")
    if st.skipped:  # not a log soc knows (pipeline.SourceStats.skipped); the warning has it all
        from soc.sources.sniff import reason_text  # the reason in the reader's language, without the formats tried

        return (path, (_("skipped"), "yellow"), "-", "-", "-", printable(reason_text(st.skipped).split(" (")[0]), "-",
                "-")
    return _row(path, [st], st.format or "-")


def summary_table(stats: list, title: str = "soc", width: int = 160, color: bool = False) -> str:
    """The per-input counts (``stats`` are ``pipeline.SourceStats``) as a table of text (``render_table``).

    Counts are of records: a line of a text log, an event record of an EVTX file (the caption says so). Up to
    ``MANY_INPUTS`` inputs, a row each. More (a folder of hundreds of EVTX files): a row per folder and
    format with its totals, then a row for each input that needs attention (dead letters, an error, skipped),
    and a note that ``--json`` lists every input: an analyst wants the totals and what went wrong.
    """
    read = [st for st in stats if not st.error and not st.skipped]
    rows: list = []
    caption = _(RECORDS)
    if len(stats) <= MANY_INPUTS:
        rows = [_input_row(st) for st in stats]
    else:
        import os

        groups: dict[tuple[str, str], list] = {}
        for st in read:
            groups.setdefault((os.path.dirname(st.path) or ".", st.format or "-"), []).append(st)
        for (folder, fmt), members in groups.items():
            n = (_("%(n)s inputs") if len(members) > 1 else _("%(n)s input")) % {"n": number(len(members))}
            rows.append(_row(printable(f"{folder}{os.sep} ({n})"), members, fmt))
        attention = [st for st in stats if st.dead or st.error or st.skipped]
        if attention:
            rows.append(None)
            rows.extend(_input_row(st) for st in attention[:ATTENTION_ROWS])
            if len(attention) > ATTENTION_ROWS:
                rows.append(("... " + _("%(n)s more inputs with dead letters, errors or skipped")
                             % {"n": number(len(attention) - ATTENTION_ROWS)}, "", "", "", "", "", "", ""))
        caption += "\n" + _("%(n)s inputs: a row per folder and format, and each input with dead letters, an "
                            "error or skipped; `--json` lists every input") % {"n": number(len(stats))}
    if len(stats) > 1:
        rows.extend([None, _row((_("total"), "bold"), read, "")])
    columns = [(_(name), justify) for name, justify in SUMMARY_COLUMNS]
    return render_table(title, columns, rows, caption, width, color)
