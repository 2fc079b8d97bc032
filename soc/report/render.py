"""The report as ONE self-contained HTML page: Jinja2 with autoescape (every string from the alerts, which an
attacker may have written, is escaped), inline CSS, charts as inline SVG, a Content-Security-Policy of
``default-src 'none'`` (the page may fetch nothing, even if a bug let markup through), Babel's number and date
formats for the reader (vi: 1.234,5 and dd/mm/yyyy)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from soc.i18n import gettext_for, translations
from soc.report import charts
from soc.report.data import LAYER_NAMES, SEVERITY_NAMES, ReportData
from soc.report.period import ZONE

TEMPLATES = Path(__file__).with_name("templates")
DATE = {"vi": "dd/MM/yyyy", "en": "yyyy-MM-dd"}
TIME = {"vi": "HH:mm dd/MM/yyyy", "en": "yyyy-MM-dd HH:mm"}


def environment(lang: str):
    """A Jinja2 environment that speaks ``lang``: ``_()`` from soc's catalog, ``num``/``pct``/``date``/``time``
    filters from Babel."""
    from babel.dates import format_datetime
    from babel.numbers import format_decimal, format_percent
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(lang), newstyle=True)
    locale = "vi_VN" if lang == "vi" else "en_US"

    def num(value) -> str:
        return "" if value is None else format_decimal(value, locale=locale)

    def pct(value) -> str:
        return "" if value is None else format_percent(value, format="#,##0.0%", locale=locale)

    def stamp(value: datetime | None, pattern: dict) -> str:
        return "" if value is None else format_datetime(value, pattern[lang], tzinfo=ZONE, locale=locale)

    _ = translations(lang).gettext

    def sev(name: str | None) -> str:  # a plain str (autoescaped), never a catalog Markup of stored text
        return _(SEVERITY_NAMES[name]) if name in SEVERITY_NAMES else (name or "")

    def layer(key: str | None) -> str:
        return _(LAYER_NAMES[key]) if key in LAYER_NAMES else (key or "")

    env.filters.update(num=num, pct=pct, date=lambda v: stamp(v, DATE), time=lambda v: stamp(v, TIME), sev=sev,
                       layer=layer)
    return env


def _charts(data: ReportData, lang: str) -> dict[str, str]:
    _ = gettext_for(lang)
    from babel.dates import format_datetime

    locale = "vi_VN" if lang == "vi" else "en_US"
    sev = data.severity
    out = {"severity": charts.compare_bars(
        [_(SEVERITY_NAMES[r["name"]]) for r in sev], [r["now"] for r in sev], [r["before"] for r in sev],
        _("This period"), _("Previous period"), [r["flag"] for r in sev])}
    pattern = "HH:mm" if data.period.hourly else ("dd/MM" if lang == "vi" else "MM-dd")
    ticks = [format_datetime(r["start"], pattern, tzinfo=ZONE, locale=locale) for r in data.series]
    out["series"] = charts.series(ticks, [r["count"] for r in data.series], [r["flag"] for r in data.series],
                                  _("Alerts"), _("Spike"), _("Drop"))
    return out


def render_html(data: ReportData, lang: str) -> str:
    """The page for ``data`` in ``lang``."""
    env = environment(lang)
    return env.get_template("report.html.j2").render(
        d=data, lang=lang, charts=_charts(data, lang), severity_names=SEVERITY_NAMES)
