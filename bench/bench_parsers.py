"""Parser throughput: each format on 2 M generated lines through the real pipeline, against a pure-Python
``re`` baseline measured in the same run.

    python -m bench.bench_parsers [web_access fortigate syslog cisco_asa] [--lines N] [--baseline-lines N]

Each measurement runs in its own process (peak RSS is its own); the JIT is warmed on a small file first.
soc runs ``--repeat`` times per format (the median run is shown: the machine is shared and noisy).
"""

from __future__ import annotations

from bench.harness import HEADER, arguments, compare, machine

FORMATS = {  # format -> (generator module, file suffix)
    "web_access": "gen_web",
    "fortigate": "gen_fortigate",
    "syslog": "gen_syslog",
    "cisco_asa": "gen_asa",
}


def main() -> None:
    args = arguments(list(FORMATS))
    print(f"machine: {machine()}\n\n{HEADER}")
    for fmt in args.formats:
        compare(fmt, FORMATS[fmt], args)


if __name__ == "__main__":
    main()
