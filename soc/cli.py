"""The ``soc`` command line: a thin layer over the library (heavy imports happen inside commands)."""

from __future__ import annotations

import contextlib
import json
import sys

import click

from soc.i18n import N_, _, number

INPUTS = click.argument("inputs", nargs=-1, required=True)


def _read_options(f):
    f = click.option("--format", "fmt", metavar="NAME",
                     help="Parser to use instead of sniffing (see `soc formats`).")(f)
    f = click.option("--tz", "zone", default="Asia/Ho_Chi_Minh", show_default=True, envvar="SOC_TZ",
                     help="Zone of timestamps that carry none.")(f)
    f = click.option("--year", type=int, help="Year of year-less syslog stamps (default: from the file's mtime).")(f)
    f = click.option("--chunk-mb", type=click.IntRange(1, 1024), default=16, show_default=True,
                     help="Read chunk size; also the longest line kept whole.")(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(f)
    f = click.option("--strict", is_flag=True,
                     help="An input whose format is not recognised is an error (exit 2), not skipped.")(f)
    return f


# Click's own words (usage errors), in soc's catalogs so that they are translated too (``_speak``).
CLICK_MESSAGES = (N_("Usage:"), N_("Try '{command} {option}' for help."), N_("Error: {message}"),
                  N_("Missing argument"), N_("Missing option"), N_("Missing parameter"),
                  N_("No such option {name!r}."), N_("No such command {name!r}."),
                  N_("Invalid value for {param_hint}: {message}"), N_("Invalid value: {message}"),
                  N_("Show this message and exit."))
LEVELS = {"warning": N_("warning"), "error": N_("error")}  # the prefixes of messages on standard error


def _speak(ctx, param, value):
    """``--lang`` (else SOC_LANG, else the locale): the language of the human text, click's usage errors
    included (its messages go through gettext: its modules' ``_`` become soc's catalog's)."""
    import gettext

    from soc import i18n

    try:
        lang = i18n.resolve_lang(value)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    i18n.use(lang)
    translate = gettext.gettext if lang == "en" else i18n.translations(lang).gettext
    for name in ("core", "exceptions", "formatting", "parser", "types", "decorators"):
        module = sys.modules.get(f"click.{name}")
        if module is not None and hasattr(module, "_"):
            module._ = translate
    return lang


def _say(level: str, text: str) -> None:
    """A warning or error on standard error, its prefix in the reader's language."""
    click.echo(f"{_(LEVELS.get(level, level))}: {text}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="soc")
@click.option("--lang", type=click.Choice(["vi", "en"]), default=None, expose_value=False, is_eager=True,
              callback=_speak, help="Language of the output (default: SOC_LANG, else the locale: vi* -> vi, else en).")
def main() -> None:
    """soc: parse government network logs into ECS frames and hunt in them."""
    from soc.runtime import collect_less_often, one_blas_thread, reuse_freed_memory

    one_blas_thread()
    reuse_freed_memory()
    collect_less_often()


@main.command()
@INPUTS
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@_read_options
def parse(inputs, out, fmt, zone, year, chunk_mb, as_json, strict):
    """Parse INPUTS (files, folders, globs, .gz/.zst, - for stdin) into Parquet datasets under OUT.

    One dataset per event family (OUT/<family>/<dataset>/) and the dead letters (OUT/dead_letters/).
    """
    from soc.hunt import HuntError, discover_inputs, read_inputs
    from soc.sinks.parquet import ParquetSink

    _prepare(out)
    sink = ParquetSink(out)
    try:
        reading = read_inputs(discover_inputs(inputs), sink, _options(fmt, zone, year, chunk_mb), strict,
                              _HuntPrinter(as_json))
    except HuntError as exc:
        raise click.UsageError(str(exc)) from None
    if not as_json:
        _print_reading(reading.stats, "soc parse", out)
    for level, text in reading.messages:
        _say(level, text)
    if as_json:
        click.echo(json.dumps([st.as_dict() for st in reading.stats], indent=2))
    sys.exit(reading.exit_code)


def _options(fmt, zone, year, chunk_mb):
    from soc.options import Options  # not soc.pipeline: a hunt's workers start before Polars loads here

    return Options(format=fmt, zone=zone, year=year, chunk_size=chunk_mb << 20)


def _workers(ctx, param, value: str) -> int | None:
    """``--workers``: a count of at least 1, or ``auto`` (None: one per CPU)."""
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(_("a number of processes (1 or more) or auto"))
    return int(value)


def _ray_address(ctx, param, value: str | None) -> str | None:
    """``--ray [ADDRESS]``: ``auto``, ``ray://host:port`` or ``host:port`` (an input given right after ``--ray``
    would be taken for its address: said so)."""
    if value is None or value == "auto" or value.startswith("ray://") or \
            (":" in value and value.rsplit(":", 1)[1].isdigit()):
        return value
    raise click.BadParameter(f"{value!r} is no Ray address (auto, ray://host:10001, host:6379); to use the default, "
                             "write --ray auto or put --ray after the inputs")


@main.command()
@INPUTS
@click.option("--data-dir", default="soc-data", show_default=True, envvar="SOC_DATA_DIR",
              type=click.Path(file_okay=False), help="Where dead letters (and later alerts) are kept.")
@_read_options
@click.option("--rules", "rule_paths", multiple=True, metavar="PATH",
              help="Sigma rules (file, folder or glob; repeatable). Default: soc's own rules/.")
@click.option("--placeholders", type=click.Path(dir_okay=False, exists=True), envvar="SOC_SIGMA_PLACEHOLDERS",
              help="YAML values of the %name% placeholders of |expand rules.")
@click.option("--detectors", "detector_paths", multiple=True, metavar="PATH",
              help="Detector specs (file or folder; repeatable). Default: soc's own detectors/.")
@click.option("--set", "detector_settings", multiple=True, metavar="DETECTOR.PARAM=VALUE",
              help="Override a detector's threshold, window or kernel parameter (repeatable).")
@click.option("--no-detectors", is_flag=True, help="Run the Sigma rules only.")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="TOML configuration (default: SOC_CONFIG, else ./soc.toml if present).")
@click.option("--es/--no-es", "to_es", default=None,
              help="Index the alerts in Elasticsearch (default: when a URL is configured).")
@click.option("--workers", default="auto", show_default=True, metavar="N|auto", callback=_workers,
              help="Processes to hunt in, this one included (auto: one per CPU that other work leaves free; 1: this "
                   "one). Small inputs: one.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="auto", default=None, metavar="[ADDRESS]",
              callback=_ray_address,
              help="Hunt on a Ray cluster (pip install 'soc[ray]'): auto starts or joins a local one, "
                   "ray://host:10001 a remote one. Inputs must be paths every node sees.")
def hunt(inputs, data_dir, fmt, zone, year, chunk_mb, as_json, strict, rule_paths, placeholders, detector_paths,
         detector_settings, no_detectors, config_path, to_es, workers, ray_address):
    """Run the pipeline end to end over INPUTS, hunt with Sigma rules, and summarise each input.

    Records (lines, EVTX events) that do not parse are kept in DATA_DIR/dead_letters/ with file, line or
    record number, reason and raw bytes. Sigma matches go to DATA_DIR/sigma_matches/; the detectors (detectors/,
    run once over the whole hunt) write their hits to DATA_DIR/detector_hits/. Both become alerts in
    DATA_DIR/alerts/ (and in Elasticsearch when configured); exit code 3 if Elasticsearch refused them.
    """
    from soc.hunt import HuntError, HuntRequest, run_hunt

    request = HuntRequest(list(inputs), data_dir, rule_paths, placeholders, detector_paths, detector_settings,
                          no_detectors, _options(fmt, zone, year, chunk_mb), config_path, to_es, strict,
                          observer=_HuntPrinter(as_json), workers=workers, ray=ray_address, keep_frozen=True)
    try:
        report = run_hunt(request)
    except HuntError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2,
                              default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))
    sys.exit(report.exit_code)


class _HuntPrinter:
    """``soc hunt``'s observer (``soc.hunt.Observer``): warnings and errors on stderr as they arise, each
    stage's table on stdout as soon as it is done (none with --json), a progress bar on a terminal."""

    def __init__(self, as_json: bool):
        self.as_json = as_json

    def message(self, level: str, text: str) -> None:
        _say(level, text)

    def progress(self, sources):
        return _progress(sources)

    def stage(self, name: str, report) -> None:
        if self.as_json:
            return
        if name == "read":
            _print_reading(report.stats, "soc hunt", report.data_dir)
        elif name == "sigma":
            _print_sigma(report.sigma, report.data_dir)
        elif name == "detectors":
            _print_detectors(report.detectors, report.data_dir)
        elif name == "alerts" and report.delivery is not None:
            done = report.delivery
            _print_delivery(done.alerts, done.stored_new, done.elasticsearch, report.config)


def _keep(data_dir, family: str, dataset: str, frame) -> None:
    """``soc.hunt.keep``: a hunt's matches or hits as one uniquely named Parquet file of DATA_DIR."""
    from soc.hunt import keep

    keep(data_dir, family, dataset, frame)


_PREPARED: set[str] = set()


def _prepare(folder) -> None:
    """Once per folder a run writes to (data folder, parse output): remove what crashed runs left; one warning
    if it exists open to other users (new folders are made private as they are written)."""
    import os

    from soc.private import prepare
    from soc.sinks.terminal import printable

    key = os.path.abspath(folder)
    if key not in _PREPARED:
        _PREPARED.add(key)
        warning = prepare(folder)
        if warning:
            _say("warning", printable(warning))


def _evidence_text(values, distinct=None, most: int = 3, width: int = 32) -> str:
    """A hit's or alert's evidence values for a table cell: the first ``most``, each cut to ``width``
    characters, and how many more there were; control characters escaped (the values come from logs)."""
    from soc.sinks.terminal import printable

    values = list(values or [])
    shown = [v if len(v) <= width else v[: width - 1] + "\u2026" for v in values[:most]]
    more = max(distinct or 0, len(values)) - len(shown)
    return printable(", ".join(shown) + (f" (+{number(more)})" if more > 0 else "")) or "-"


def _print_detectors(found, data_dir) -> None:
    """The detectors' hits as a table (``soc.hunt.DetectorSummary``)."""
    from soc.sinks.terminal import level_header, printable, render_table

    hits = found.hits
    if not hits.height:
        click.echo(_("Detectors: %(specs)s detectors, no hits in %(events)s events")
                   % {"specs": number(found.specs), "events": number(found.events)})
        return
    entity = [c for c in ("source.ip", "destination.ip", "user.name", "host.hostname", "event.dataset",
                          "email.from.address") if c in hits.columns]
    rows = []
    for row in hits.iter_rows(named=True):
        who = " ".join(f"{row[c]}" for c in entity if row.get(c) is not None
                       and (c != "event.dataset" or row["rule.id"] == "soc-volume-drop"))
        span = f"{row['window.start']:%Y-%m-%d %H:%M:%S} - {row['window.end']:%H:%M:%S}"
        rows.append((printable(row["rule.level"]), printable(row["rule.name"]), printable(who),
                     number(row["event.count"]), span, _evidence_text(row.get("evidence.values"),
                                                                      row.get("evidence.distinct"))))
    title = (_("Detectors: %(hits)s hits (%(specs)s detectors) in %(events)s events")
             % {"hits": number(hits.height), "specs": number(found.specs), "events": number(found.events)})
    click.echo(render_table(title, [(level_header(), "left"), (_("detector"), "left"), (_("entity"), "left"),
                                    (_("events"), "right"), (_("window (UTC)"), "left"), (_("evidence"), "left")],
                            rows, "", *_terminal()))
    click.echo(_("detector hits kept in %(path)s") % {"path": f"{printable(str(data_dir))}/detector_hits/"})


@main.command()
def formats():
    """List the log formats soc can parse (the specs in parsers/)."""
    from soc.parse.spec import load_specs

    for spec in load_specs().values():
        click.echo(f"{spec.name:14} {spec.family:15} {spec.title}")


def _print_reading(stats, title, where) -> None:
    """The summary table of the inputs read, and where their dead letters are."""
    from soc.sinks.terminal import printable, summary_table

    click.echo(summary_table(stats, title, *_terminal()))
    dead = sum(st.dead for st in stats)
    if dead:
        click.echo(_("%(n)s dead-lettered records kept in %(path)s")
                   % {"n": number(dead), "path": f"{printable(str(where))}/dead_letters/"})


def _terminal() -> tuple[int, bool]:
    """(width, colours) of standard output: a terminal's width (or COLUMNS), 160 for a pipe (no 80-column wrap
    in a log file); colours only on a terminal, and not with NO_COLOR."""
    import os
    import shutil

    tty = sys.stdout.isatty()
    return shutil.get_terminal_size((160, 24)).columns, tty and "NO_COLOR" not in os.environ


PROGRESS_MIN_BYTES = 32 << 20


@contextlib.contextmanager
def _progress(sources):
    """A progress bar on stderr while large inputs (or inputs of unknown size) are read on a terminal; its
    value is the callback of the bytes read (None: no bar)."""
    total = sum(s.size or 0 for s in sources)
    unknown = any(s.size is None for s in sources)
    if not sys.stderr.isatty() or (total < PROGRESS_MIN_BYTES and not unknown):
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(_("parsing"), total=None if unknown else total)
        yield lambda n: progress.advance(task, n)


# -- alerts and Elasticsearch (issue 6) ---------------------------------------------------------------------------

ES_FAILED = 3  # exit code: Elasticsearch could not take the alerts (they are in the embedded store)


def config_option(f):
    """``--config FILE`` (default: SOC_CONFIG, else ./soc.toml if present) and ``--data-dir``."""
    f = click.option("--data-dir", default=None, type=click.Path(file_okay=False),
                     help="Data folder (default: from the configuration, SOC_DATA_DIR, else ./soc-data).")(f)
    return click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                        help="TOML configuration (default: SOC_CONFIG, else ./soc.toml if present).")(f)


def alert_options(f):
    """Options for a command that ends with alerts (e.g. a hunt): where they go."""
    f = click.option("--es/--no-es", "to_es", default=None,
                     help="Index the alerts in Elasticsearch (default: when a URL is configured).")(f)
    return config_option(f)


def load_cli_config(config_path, data_dir):
    from soc.config import ConfigError, load_config

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if data_dir:
        cfg.data_dir = data_dir
    _prepare(cfg.data_dir)
    return cfg


def deliver_alerts(hits, config_path=None, data_dir=None, to_es=None, as_json=False, rows=None) -> int:
    """Store the alerts of ``hits`` (and index them: ``soc.sinks.delivery.deliver``); print what happened (as
    JSON with ``as_json``); the exit code (0 or ES_FAILED)."""
    code, summary = _deliver(hits, config_path, data_dir, to_es, quiet=as_json, rows=rows)
    if as_json:
        click.echo(json.dumps(summary))
    return code


def _deliver(hits, config_path, data_dir, to_es, quiet: bool, rows: int | None = None) -> tuple[int, dict]:
    """``deliver_alerts`` returning its summary; prints nothing but errors (stderr) when ``quiet``."""
    from soc.alerts import InventoryError, PolicyError
    from soc.sinks.delivery import deliver

    cfg = load_cli_config(config_path, data_dir)
    try:
        result = deliver(hits, cfg, to_es, rows)
    except (InventoryError, PolicyError) as exc:
        raise click.UsageError(str(exc)) from None
    summary = {"alerts": result.count, "stored_new": result.stored, "data_dir": cfg.data_dir}
    if result.index is not None:
        summary["elasticsearch"] = result.index.as_dict()
    if not quiet:
        _print_delivery(result.count, result.stored, result.index, cfg)
    if result.error:
        from soc.sinks.terminal import printable

        summary["error"] = result.error
        _say("error", _("%(error)s (the alerts are kept in %(path)s)")
             % {"error": printable(result.error), "path": f"{cfg.data_dir}/alerts/"})
        return ES_FAILED, summary
    return 0, summary


def _print_delivery(count: int, stored: int, index, cfg) -> None:
    """How many alerts, how many new, and what Elasticsearch did with them (``index``: an ``IndexReport``)."""
    click.echo(_("%(n)s alerts (%(new)s new) in %(path)s")
               % {"n": number(count), "new": number(stored), "path": f"{cfg.data_dir}/alerts/"})
    if index is not None:
        _echo_index(index, cfg)


def _echo_index(report, cfg) -> None:
    click.echo(_("Elasticsearch: %(indexed)s indexed, %(duplicates)s already there, %(dead)s dead-lettered "
                 "(%(seconds)s s)") % {"indexed": number(report.indexed), "duplicates": number(report.duplicates),
                                        "dead": number(report.dead), "seconds": number(report.seconds, 1, group=False)})
    if report.dead:
        from soc.sinks.elasticsearch import DEAD_LETTER
        from soc.sinks.terminal import printable

        for reason, n in sorted(report.reasons.items()):
            click.echo(f"  {number(n)} x {printable(reason)}")
        click.echo("  " + _("kept in %(path)s; `soc es replay` re-sends them")
                   % {"path": f"{cfg.data_dir}/{DEAD_LETTER}"})


@main.command("alerts")
@config_option
@click.option("--since", type=click.DateTime(), help="Last seen at or after (UTC).")
@click.option("--until", type=click.DateTime(), help="First seen before (UTC).")
@click.option("--rule", help="Rule id or name contains this (case-insensitive).")
@click.option("--min-severity", type=click.Choice(["informational", "low", "medium", "high", "critical"]))
@click.option("--entity", help="An address, user or host name of the alert or of its evidence (exact).")
@click.option("--layer", type=click.Choice(["1", "2", "3", "4"]), help="Routed to this layer of the 4-layer model.")
@click.option("--agency", help="organization.name contains this (case-insensitive).")
@click.option("-n", "--limit", type=click.IntRange(1), default=None, help="At most this many (newest first).")
@click.option("--json", "as_json", is_flag=True, help="NDJSON, one alert a line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header.")
def alerts_command(config_path, data_dir, since, until, rule, min_severity, entity, layer, agency, limit,
                   as_json, as_csv):
    """List the stored alerts (DATA_DIR/alerts/), newest first, filtered."""
    from datetime import UTC

    from soc.alerts import load_policy
    from soc.sinks.alert_store import AlertStore

    cfg = load_cli_config(config_path, data_dir)
    severity = load_policy(cfg.alerts.policy).severity[min_severity] if min_severity else None
    frame = AlertStore(cfg.data_dir).query(
        since=since.replace(tzinfo=UTC) if since else None, until=until.replace(tzinfo=UTC) if until else None,
        rule=rule, min_severity=severity, entity=entity, layer=layer, agency=agency, limit=limit)
    if as_json or as_csv:
        import polars as pl

        stamps = [pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ") for c, t in frame.schema.items()
                  if isinstance(t, pl.Datetime)]
        out = frame.with_columns(stamps)
        if as_csv:
            from soc.sinks.spreadsheet import safe_csv  # formulas and control characters neutralised

            sys.stdout.write(safe_csv(out))
            return
        sys.stdout.write(out.write_ndjson())
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from soc.sinks.terminal import printable

    table = Table(title=_("%(n)s alerts in %(path)s") % {"n": number(frame.height), "path": f"{cfg.data_dir}/alerts/"},
                  title_justify="left")
    for name in (N_("first seen (UTC)"), N_("severity"), N_("risk"), N_("count"), N_("rule"), N_("entity"),
                 N_("evidence"), N_("agency / system"), N_("layer")):
        table.add_column(_(name), justify="right" if name in ("risk", "count") else "left")
    for row in frame.iter_rows(named=True):
        entity_text = " ".join(str(row[c]) for c in ("source.address", "user.name", "host.hostname",
                                                     "destination.address") if row[c])
        org = " / ".join(x for x in (row["organization.name"], row["labels.system"]) if x)
        cells = (f"{row['@timestamp']:%Y-%m-%d %H:%M:%S}", row["labels.severity"], f"{row['event.risk_score']:.0f}",
                 number(row["event.count"]), row["rule.name"], entity_text, _evidence_text(row["evidence.values"]),
                 org, row["labels.layer"])
        table.add_row(*(escape(printable(str(c or "-"))) for c in cells))
    Console().print(table)


@main.group("es")
def es_group():
    """Elasticsearch: templates, indexing the alert store, re-sending dead letters."""


def _es_client(cfg, setup_templates: bool = True):
    from soc.sinks import elasticsearch as es

    try:
        client = es.connect(cfg.elasticsearch)
        if setup_templates:
            es.ensure_setup(client, cfg.elasticsearch)
    except es.ESError as exc:
        from soc.sinks.terminal import printable

        _say("error", printable(str(exc)))
        sys.exit(ES_FAILED)
    return client


@es_group.command("setup")
@config_option
def es_setup(config_path, data_dir):
    """Create or update the component and index templates (ECS core types) for <prefix>-YYYY.MM indices."""
    from soc.config import redact
    from soc.sinks import elasticsearch as es

    cfg = load_cli_config(config_path, data_dir)
    client = _es_client(cfg, setup_templates=False)
    try:
        names = es.setup(client, cfg.elasticsearch)
    except es.ESError as exc:
        _say("error", str(exc))
        sys.exit(ES_FAILED)
    click.echo(_("templates {names} ready at {url} (indices {prefix}-YYYY.MM)").format(
        names=", ".join(names), url=redact(cfg.elasticsearch.url or "", cfg.elasticsearch.url),
        prefix=cfg.elasticsearch.index_prefix))


@es_group.command("index")
@config_option
@click.option("--since", type=click.DateTime(), help="Only alerts last seen at or after this (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def es_index(config_path, data_dir, since, as_json):
    """Index the alerts of the embedded store (those already indexed count as duplicates, not twice)."""
    from datetime import UTC

    from soc.sinks import elasticsearch as es
    from soc.sinks.alert_store import AlertStore

    cfg = load_cli_config(config_path, data_dir)
    frame = AlertStore(cfg.data_dir).query(since=since.replace(tzinfo=UTC) if since else None)
    client = _es_client(cfg)
    report = es.index_alerts(client, frame, cfg.data_dir, cfg.elasticsearch)
    _report(report, cfg, as_json)


@es_group.command("replay")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def es_replay(config_path, data_dir, as_json):
    """Re-send the dead-lettered alerts (DATA_DIR/es_dead_letters.ndjson); what fails again stays there. Puts
    back the refresh of any index a run left off (DATA_DIR/es_refresh_off.json)."""
    from soc.sinks import elasticsearch as es

    cfg = load_cli_config(config_path, data_dir)
    if not es.DeadLetters(cfg.data_dir).pending() and not es.refresh_left_off(cfg.data_dir):
        click.echo(json.dumps(es.IndexReport().as_dict()) if as_json else _("no dead-lettered alerts to replay"))
        return
    client = _es_client(cfg)
    _report(es.replay(client, cfg.data_dir, cfg.elasticsearch), cfg, as_json)


def _report(report, cfg, as_json) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        _echo_index(report, cfg)
    if report.error:
        from soc.sinks.terminal import printable

        _say("error", printable(report.error))
    if report.error or report.dead:
        sys.exit(ES_FAILED)


# -- Sigma rules (issue 4) ------------------------------------------------------------------------------------------


def _load_rules(rule_paths, placeholders, use_cache: bool = True):
    """The rule set of ``--rules`` (``soc.hunt.load_rules``), failures printed."""
    from soc.hunt import HuntError, load_rules

    try:
        return load_rules(rule_paths, placeholders, use_cache, say=_say)
    except HuntError as exc:
        raise click.UsageError(str(exc)) from None


def _print_sigma(sigma, data_dir) -> None:
    """A table of the rules that matched, their levels and counts (``soc.hunt.SigmaSummary``)."""
    from soc.sinks.terminal import level_header, printable, render_table

    rules = sigma.rules + sigma.correlations
    matches = sigma.matches
    if not matches.height:
        click.echo(_("Sigma: %(rules)s rules, no matches in %(events)s events")
                   % {"rules": number(rules), "events": number(sigma.events)})
        return
    counts = (matches.counts("rule.id", "rule.name", "rule.level", "event.severity")
              .sort(["event.severity", "len", "rule.id"], descending=[True, True, False]))  # ties: one order
    rows = [(printable(level or "-"), printable(name or "-"), printable(rule_id or "-"), number(n))
            for rule_id, name, level, _severity, n in counts.iter_rows()]
    title = (_("Sigma: %(matches)s matches of %(fired)s rules (%(rules)s loaded) in %(events)s events")
             % {"matches": number(matches.height), "fired": number(counts.height), "rules": number(rules),
                "events": number(sigma.events)})
    click.echo(render_table(title, [(level_header(), "left"), (_("rule"), "left"), ("id", "left"),
                                    (_("matches"), "right")], rows, "", *_terminal()))
    click.echo(_("matches kept in %(path)s") % {"path": f"{printable(str(data_dir))}/sigma_matches/"})


@main.group("rules")
def rules_group():
    """Sigma rules: what loads, where it runs, what does not load and why."""


def _rules_options(f):
    f = click.option("--rules", "rule_paths", multiple=True, metavar="PATH",
                     help="Sigma rules (file, folder or glob; repeatable). Default: soc's own rules/.")(f)
    f = click.option("--placeholders", type=click.Path(dir_okay=False, exists=True),
                     envvar="SOC_SIGMA_PLACEHOLDERS", help="YAML values of the %name% placeholders.")(f)
    return click.option("--no-cache", is_flag=True, help="Parse every rule again (ignore the rule cache).")(f)


@rules_group.command("list")
@_rules_options
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def rules_list(rule_paths, placeholders, no_cache, as_json):
    """Count the rules that load per logsource, and the frames each logsource runs on."""
    from collections import Counter

    ruleset = _load_rules(rule_paths, placeholders, not no_cache)
    per: Counter = Counter()
    frames: dict = {}
    for rule in ruleset.rules:
        key = "/".join(x or "-" for x in rule.logsource)
        per[key] += 1
        frames.setdefault(key, set()).update(f"{t.family}:{t.dataset}" for t in rule.targets)
    routed = sum(1 for r in ruleset.rules if r.targets)
    if as_json:
        click.echo(json.dumps({"files": ruleset.files, "loaded": len(ruleset.rules), "routed": routed,
                               "not_loaded": len(ruleset.errors),
                               "logsources": {k: {"rules": n, "frames": sorted(frames[k])}
                                              for k, n in per.most_common()}}, indent=2))
        return
    from soc.sinks.terminal import printable

    for key, n in per.most_common():
        where = ", ".join(sorted(frames[key])) or _("(no frame of ours carries this logsource)")
        click.echo(f"{number(n):>6}  {printable(key):45} {printable(where)[:200]}")
    click.echo(_("{rules} rules loaded from {files} files ({routed} run on our frames), {failed} did not load "
                 "(`soc rules check`)").format(rules=number(len(ruleset.rules)), files=number(ruleset.files),
                                               routed=number(routed), failed=number(len(ruleset.errors))))


@rules_group.command("check")
@_rules_options
def rules_check(rule_paths, placeholders, no_cache):
    """Report every rule that does not load, with its reason; exit 1 if one fails for a reason not listed in
    rules/pipeline/known_unsupported.yml."""
    from soc.sigma.loader import known_unsupported
    from soc.sinks.terminal import printable

    ruleset = _load_rules(rule_paths, placeholders, not no_cache)
    known = known_unsupported()
    unexpected = 0
    for error in ruleset.errors:
        why = next((k["why"] for k in known if error.reason.startswith(k["reason"])), None)
        unexpected += why is None
        click.echo(f"{printable(str(error))}" + ("  " + _("[known: {why}]").format(why=printable(why)) if why else ""))
    click.echo(_("{rules} rules loaded from {files} files; {failed} did not load ({known} for known reasons)").format(
        rules=number(len(ruleset.rules)), files=number(ruleset.files), failed=number(len(ruleset.errors)),
        known=number(len(ruleset.errors) - unexpected)))
    sys.exit(1 if unexpected else 0)


@rules_group.command("convert")
@click.argument("rule_paths", nargs=-1, metavar="RULES...")
@click.option("--target", type=click.Choice(["lucene", "esql", "dsl"]), default="lucene", show_default=True,
              help="Lucene query strings, ES|QL, or the query DSL with an embedded Lucene query.")
@click.option("--pipeline", type=click.Choice(["ecs_windows", "ecs_windows_old", "ecs_zeek_beats", "ecs_zeek_corelight",
                                               "ecs_kubernetes", "ecs_macos_esf"]),
              help="pySigma's field mapping to ECS (default: keep the rules' field names).")
@click.option("-o", "--out", type=click.Path(dir_okay=False, writable=True),
              help="Write the queries (NDJSON: path, id, title, query) here instead of standard output.")
def rules_convert(rule_paths, target, pipeline, out):
    """Convert Sigma RULES (files, folders, globs; default: soc's own rules/) to Elasticsearch queries with
    pySigma's Elasticsearch backend. Every rule that does not convert is reported with its reason (exit 1)."""
    from soc.sigma.convert import convert
    from soc.sigma.loader import RuleSourceError, default_rule_paths
    from soc.sinks.terminal import printable

    try:
        done = convert(list(rule_paths) or default_rule_paths(), target, pipeline)
    except RuleSourceError as exc:
        raise click.UsageError(str(exc)) from None
    lines = "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in done.queries)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(lines)
    else:
        click.echo(lines, nl=False)
    for f in done.failures:
        who = f" rule {f['id']} ({f['title']})" if f["id"] or f["title"] else ""
        click.echo(printable(f"not converted: {f['path']}:{who} {f['reason']}"), err=True)
    click.echo(f"{len(done.queries):,} queries ({target}); {len(done.failures):,} rules did not convert", err=True)
    sys.exit(1 if done.failures else 0)


@main.command("deliver")
@click.argument("matches", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@alert_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def deliver_command(matches, config_path, data_dir, to_es, as_json):
    """Turn a hunt's matches into alerts: store them, and index them if Elasticsearch is configured.

    MATCHES are hit frames (Parquet); default: the newest file of DATA_DIR/sigma_matches/ (the last hunt).
    Alerts go to DATA_DIR/alerts/ first, so a failing Elasticsearch (exit code 3) costs none.
    """
    from pathlib import Path

    from soc.alerts.build import HIT_COLUMNS
    from soc.sinks.matches import parquet_rows, read_batches

    cfg = load_cli_config(config_path, data_dir)
    files = [Path(m) for m in matches]
    if not files:
        found = sorted((Path(cfg.data_dir) / "sigma_matches").rglob("*.parquet"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise click.UsageError(_("no hunt matches under %(path)s (run `soc hunt` first)")
                                   % {"path": f"{cfg.data_dir}/sigma_matches/"})
        files = found[-1:]
    def hits():  # alerts are built batch by batch, a share of them at a time (each share reads the files)
        return (batch for f in files for batch in read_batches(f, columns=HIT_COLUMNS))

    sys.exit(deliver_alerts(hits, config_path, cfg.data_dir, to_es, as_json, sum(map(parquet_rows, files))))


# the other command groups, each in a module of its own (imported last: they use this module's helpers)
from soc.cli_export import export_group  # noqa: E402  (soc export: sharing with the national centre, layer 4)
from soc.cli_jobs import jobs_group  # noqa: E402  (soc jobs: scheduled, incremental hunts)
from soc.cli_report import report_command  # noqa: E402  (soc report: the 4-layer report)

main.add_command(jobs_group)
main.add_command(export_group)
main.add_command(report_command)


def run() -> None:
    """The ``soc`` command (its console script, ``python -m soc``): ``main``, then the process ends at once, its
    exit handlers run and its output flushed, without the interpreter's teardown (``soc.runtime.exit_now``).
    Tests call ``main`` through click's runner, in their own process, which goes on."""
    try:
        main()
    except SystemExit as exc:
        from soc.runtime import exit_now

        exit_now(exc.code)
