"""JSON and Zeek throughput: Suricata EVE NDJSON (and Zeek TSV conn.log), 2 M generated lines each
through the real pipeline, against a pure-Python baseline (``json.loads``; ``str.split``) in the same run.

    python -m bench.bench_json [suricata_eve zeek] [--lines N] [--baseline-lines N] [--repeat R]

Same conventions as ``bench_parsers``: each measurement in its own process (its own peak RSS), the JIT
warmed on a small file first, the median of ``--repeat`` runs shown with all runs listed.
"""

from __future__ import annotations

from bench.harness import HEADER, arguments, compare, machine

FORMATS = {"suricata_eve": ("gen_suricata", ".json"), "zeek": ("gen_zeek", ".log")}  # format -> generator, suffix
BASELINE = {"suricata_eve": "python json.loads", "zeek": "python str.split"}


def main() -> None:
    args = arguments(["suricata_eve"])
    print(f"machine: {machine()}\n\n{HEADER}")
    for fmt in args.formats:
        module, suffix = FORMATS[fmt]
        compare(fmt, module, args, BASELINE[fmt], suffix, spread_in_mb=True)


if __name__ == "__main__":
    main()
