"""``soc export``: layer-4 sharing with the national monitoring centre (``soc.export``).

``soc export stix`` writes a STIX 2.1 bundle of the shared alerts (and pushes it to a TAXII 2.1 collection with
``--taxii URL --collection ID``; credentials from ``SOC_TAXII_USER``/``SOC_TAXII_PASSWORD``); ``soc export
ndjson`` writes them as ECS NDJSON. What is shared, with which TLP, is ``policy/sharing.toml`` (``--policy``,
``SOC_SHARING_POLICY``). Exit codes: 0 done, 2 usage or policy error, 3 the TAXII server did not take the bundle.
"""

from __future__ import annotations

import json
import sys

import click

from soc.i18n import _, number

TAXII_FAILED = 3


def _filters(f):
    f = click.option("--policy", "sharing_path", default=None, type=click.Path(dir_okay=False),
                     help="Sharing policy (default: SOC_SHARING_POLICY, else the shipped policy/sharing.toml).")(f)
    f = click.option("-o", "--out", default="-", type=click.Path(dir_okay=False, allow_dash=True),
                     help="Output file (default: standard output).")(f)
    f = click.option("--agency", help="organization.name contains this (case-insensitive).")(f)
    f = click.option("--layer", type=click.Choice(["1", "2", "3", "4"]),
                     help="Routed to this layer of the 4-layer model.")(f)
    f = click.option("--min-severity", type=click.Choice(["informational", "low", "medium", "high", "critical"]))(f)
    f = click.option("--until", type=click.DateTime(), help="First seen before (UTC).")(f)
    f = click.option("--since", type=click.DateTime(), help="Last seen at or after (UTC).")(f)
    f = click.option("--data-dir", default=None, type=click.Path(file_okay=False),
                     help="Data folder (default: from the configuration, SOC_DATA_DIR, else ./soc-data).")(f)
    return click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                        help="TOML configuration (default: SOC_CONFIG, else ./soc.toml).")(f)


def _select(config_path, data_dir, since, until, layer, agency, min_severity, sharing_path):
    """(sharing policy, the shared alerts the filters keep); usage errors exit 2."""
    from soc.alerts import PolicyError, load_policy
    from soc.config import ConfigError, load_config
    from soc.export import Filters, SharingError, load_sharing, shared_alerts

    try:
        cfg = load_config(config_path)
        grading = load_policy(cfg.alerts.policy)
        policy = load_sharing(sharing_path, grading.severity)
    except (ConfigError, PolicyError, SharingError) as exc:
        raise click.UsageError(str(exc)) from None
    filters = Filters(since=since, until=until, layer=layer, agency=agency,
                      min_severity=grading.severity[min_severity] if min_severity else None)
    return policy, shared_alerts(data_dir or cfg.data_dir, policy, filters)


def _write(text: str, out: str) -> None:
    if out == "-":
        sys.stdout.write(text)
        return
    import os
    from pathlib import Path

    from soc.private import opener

    path = Path(out)  # 0600 (TLP-marked data), renamed into place whole
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", opener=opener) as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@click.group("export")
def export_group():
    """Share alerts with the national monitoring centre (layer 4): STIX 2.1 / TAXII 2.1, or ECS NDJSON."""


@export_group.command("stix")
@_filters
@click.option("--taxii", "taxii_url", metavar="URL", help="Push to this TAXII 2.1 API root too.")
@click.option("--collection", metavar="ID", help="The TAXII collection id (with --taxii).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (on standard error with -o -).")
def stix_command(config_path, data_dir, since, until, min_severity, layer, agency, out, sharing_path, taxii_url,
                 collection, as_json):
    """A STIX 2.1 bundle of the shared alerts: sightings, observed data, indicators, ATT&CK, TLP markings."""
    if bool(taxii_url) != bool(collection):
        raise click.UsageError(_("--taxii and --collection go together"))
    policy, frame = _select(config_path, data_dir, since, until, layer, agency, min_severity, sharing_path)
    from soc.export.stix import bundle_json

    text = bundle_json(frame, policy)
    _write(text, out)
    summary = {"alerts": frame.height, "objects": len(json.loads(text)["objects"]), "out": out}
    code = 0
    if taxii_url:
        from soc.export.taxii import TaxiiError, push

        try:
            report = push(text, taxii_url, collection)
        except TaxiiError as exc:
            from soc.sinks.terminal import printable

            click.echo(f"{_('error')}: {printable(str(exc))}", err=True)
            sys.exit(TAXII_FAILED)
        summary["taxii"] = {"status": report.status, "success": report.success, "failure": report.failure,
                            "pending": report.pending}
        code = 0 if report.status == "complete" and not report.pending else TAXII_FAILED
    if as_json:
        click.echo(json.dumps(summary), err=out == "-")
    else:
        line = (_("%(alerts)s alerts shared as %(objects)s STIX objects")
                % {"alerts": number(summary["alerts"]), "objects": number(summary["objects"])})
        if "taxii" in summary:
            t = summary["taxii"]
            line += "; " + (_("TAXII %(status)s: %(added)s added, %(refused)s refused, %(pending)s pending")
                            % {"status": t["status"], "added": t["success"], "refused": t["failure"],
                               "pending": t["pending"]})
        click.echo(line, err=True)
    sys.exit(code)


@export_group.command("ndjson")
@_filters
def ndjson_command(config_path, data_dir, since, until, min_severity, layer, agency, out, sharing_path):
    """The shared alerts as ECS NDJSON, one alert a line, oldest first."""
    _policy, frame = _select(config_path, data_dir, since, until, layer, agency, min_severity, sharing_path)
    from soc.export.ndjson import to_ndjson

    _write(to_ndjson(frame), out)
