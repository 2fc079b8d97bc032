"""Periodic reports for the 4-layer model, in Vietnamese or English: ``make_report`` is what ``soc report``
does (``data`` computes from the alert store, ``render`` lays out one self-contained HTML page, ``pdf`` prints
it with headless Chromium)."""

from __future__ import annotations

from pathlib import Path

from soc.report.period import Period, calendar_period, custom_period

__all__ = ["Period", "calendar_period", "custom_period", "make_report"]


def make_report(data_dir: str | Path, period: Period, lang: str, out: str | Path, pdf: str | Path | None = None,
                agency: str | None = None, layer: str | None = None, sharing: str | None = None):
    """Write the report of ``period`` to ``out`` (and ``pdf``); returns its ``ReportData``."""
    from soc.private import opener
    from soc.report.data import build
    from soc.report.render import render_html

    data = build(data_dir, period, agency=agency, layer=layer, sharing=sharing)
    html = render_html(data, lang)
    with open(out, "w", encoding="utf-8", opener=opener) as fh:
        fh.write(html)
    if pdf:
        from soc.report.pdf import print_pdf

        print_pdf(out, pdf)
    return data
