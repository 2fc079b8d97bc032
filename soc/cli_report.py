"""``soc report``: the periodic report for the 4-layer model (``soc.report``), in Vietnamese or English.

``--period day|week|month`` takes the calendar period (Asia/Ho_Chi_Minh) holding ``--date`` (default: today);
``--since``/``--until`` any span (naive times are Vietnam time). The page is written to ``-o`` (one
self-contained HTML file), and printed to ``--pdf`` by headless Chromium. Exit codes: 0 written, 2 usage error,
3 the PDF could not be printed (the HTML is written).
"""

from __future__ import annotations

import sys
from datetime import datetime

import click

PDF_FAILED = 3


@click.command("report")
@click.option("--period", type=click.Choice(["day", "week", "month"]), help="Calendar period (Vietnam time).")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]),
              help="A day in the period (default: today, Vietnam time).")
@click.option("--since", type=click.DateTime(), help="Start of a custom period (Vietnam time unless a zone is given).")
@click.option("--until", type=click.DateTime(), help="End of a custom period (exclusive).")
@click.option("--agency", help="Only this agency (organization.name contains it, case-insensitive).")
@click.option("--layer", type=click.Choice(["1", "2", "3", "4"]), help="Only alerts routed to this layer.")
@click.option("--lang", type=click.Choice(["vi", "en"]), default=None,
              help="Language (default: soc --lang, SOC_LANG, else the locale: vi* -> vi, else en).")
@click.option("-o", "--out", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="The HTML report.")
@click.option("--pdf", type=click.Path(dir_okay=False), help="Also print the report to this PDF (headless Chromium).")
@click.option("--policy", "sharing", default=None, type=click.Path(dir_okay=False),
              help="Sharing policy for layer 4 (default: SOC_SHARING_POLICY, else policy/sharing.toml).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False),
              help="Data folder (default: from the configuration, SOC_DATA_DIR, else ./soc-data).")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="TOML configuration (default: SOC_CONFIG, else ./soc.toml).")
def report_command(period, day, since, until, agency, layer, lang, out, pdf, sharing, data_dir, config_path):
    """Write the periodic monitoring report (HTML, and PDF with --pdf) from the alert store."""
    from soc.config import ConfigError, load_config
    from soc.i18n import current, gettext_for, resolve_lang
    from soc.report import calendar_period, custom_period, make_report
    from soc.report.period import ZONE

    if lang is None and click.get_current_context().parent is not None:
        lang = current()  # `soc --lang vi report`: the group has resolved it (its --lang, SOC_LANG, the locale)
    try:
        lang = resolve_lang(lang)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _ = gettext_for(lang)
    if period and (since or until):
        raise click.UsageError(_("give --period or --since/--until, not both"))
    if bool(since) != bool(until):
        raise click.UsageError(_("--since and --until go together"))
    try:
        if since:
            span = custom_period(since, until)
        else:
            when = day.date() if day else datetime.now(ZONE).date()
            span = calendar_period(period or "day", when)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    from soc.export.policy import SharingError
    from soc.report.pdf import PdfError

    try:
        data = make_report(data_dir or cfg.data_dir, span, lang, out, pdf=pdf, agency=agency, layer=layer,
                           sharing=sharing)
    except SharingError as exc:
        raise click.UsageError(str(exc)) from None
    except PdfError as exc:
        click.echo(_("error: the PDF could not be printed: %(reason)s") % {"reason": exc}, err=True)
        click.echo(_("report written to %(path)s") % {"path": out})
        sys.exit(PDF_FAILED)
    from babel.numbers import format_decimal

    locale = "vi_VN" if lang == "vi" else "en_US"
    counts = {"alerts": data.total, "before": data.total_before, "shared": data.layer4["total"]}
    click.echo(_("%(alerts)s alerts (previous period: %(before)s), %(shared)s for the national centre")
               % {k: format_decimal(v, locale=locale) for k, v in counts.items()})
    click.echo(_("report written to %(path)s") % {"path": out})
    if pdf:
        click.echo(_("PDF written to %(path)s") % {"path": pdf})
