"""The ``soc`` command line: a thin layer over the library (heavy imports happen inside commands)."""

from __future__ import annotations

import json
import sys

import click

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
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="soc")
def main() -> None:
    """soc: parse government network logs into ECS frames and hunt in them."""


@main.command()
@INPUTS
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@_read_options
def parse(inputs, out, fmt, zone, year, chunk_mb, as_json):
    """Parse INPUTS (files, folders, globs, .gz/.zst, - for stdin) into Parquet datasets under OUT.

    One dataset per event family (OUT/<family>/<dataset>/) and the dead letters (OUT/dead_letters/).
    """
    from soc.sinks.parquet import ParquetSink

    sys.exit(_run(inputs, ParquetSink(out), fmt, zone, year, chunk_mb, as_json, "soc parse", out))


@main.command()
@INPUTS
@click.option("--data-dir", default="soc-data", show_default=True, envvar="SOC_DATA_DIR",
              type=click.Path(file_okay=False), help="Where dead letters (and later alerts) are kept.")
@_read_options
def hunt(inputs, data_dir, fmt, zone, year, chunk_mb, as_json):
    """Run the pipeline end to end over INPUTS and summarise each input.

    Lines that do not parse are kept in DATA_DIR/dead_letters/ with file, line, reason and raw bytes.
    """
    from soc.sinks.parquet import ParquetSink

    sink = ParquetSink(data_dir, frames=False)
    sys.exit(_run(inputs, sink, fmt, zone, year, chunk_mb, as_json, "soc hunt", data_dir))


@main.command()
def formats():
    """List the log formats soc can parse (the specs in parsers/)."""
    from soc.parse.spec import load_specs

    for spec in load_specs().values():
        click.echo(f"{spec.name:14} {spec.family:15} {spec.title}")


def _run(inputs, sink, fmt, zone, year, chunk_mb, as_json, title, where) -> int:
    from soc import pipeline
    from soc.sources import InputError, discover

    try:
        sources = discover(list(inputs))
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    options = pipeline.Options(format=fmt, zone=zone, year=year, chunk_size=chunk_mb << 20)
    try:
        stats = _with_progress(sources, sink, options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps([st.as_dict() for st in stats], indent=2))
    else:
        import os

        from rich.console import Console

        from soc.sinks.terminal import summary_table

        wide = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160  # pipes: no 80-column wrap
        console = Console(width=wide)
        console.print(summary_table(stats, title))
        dead = sum(st.dead for st in stats)
        if dead:
            console.print(f"{dead:,} dead-lettered lines kept in {where}/dead_letters/")
    failed = [st for st in stats if st.error]
    for st in failed:
        from soc.sinks.terminal import printable

        click.echo(f"error: {printable(st.path)}: {printable(st.error)}", err=True)
    return 2 if failed else 0


PROGRESS_MIN_BYTES = 32 << 20


def _with_progress(sources, sink, options):
    from soc import pipeline

    total = sum(s.size or 0 for s in sources)
    unknown = any(s.size is None for s in sources)
    if not sys.stderr.isatty() or (total < PROGRESS_MIN_BYTES and not unknown):
        return pipeline.run(sources, sink, options)
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("parsing", total=None if unknown else total)
        return pipeline.run(sources, sink, options, on_bytes=lambda n: progress.advance(task, n))
