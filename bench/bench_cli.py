"""CLI start-up: ``soc --help`` must answer fast (heavy libraries are imported lazily), and the fixed cost of a
hunt that is ours before any event is read: loading the rules and importing what the run needs.

    python -m bench.bench_cli [--runs 20] [--hunt-runs 5]

1. ``soc --help``, median wall of ``--runs``; baseline in the same run: ``python -c pass``.
2. The warm load of SigmaHQ's rules (``soc.sigma.loader.load``: rules/windows, then all of rules,
   rules-emerging-threats and rules-threat-hunting, from ``../shared/corpora/sigma``), each run a process of
   its own that first imports what a hunt imports anyway (``soc.sigma.hunt``), then times one ``load``: wall
   and CPU, median of ``--hunt-runs``. One untimed load first builds the cache.
3. The imports of ``soc hunt`` of a one-line Winlogbeat JSON file with all SigmaHQ rules
   (``python -X importtime``, one run): the total and the top-level modules that cost most. The hunt's wall
   time against its 1 s target is ``bench.bench_hunt``'s "fixed" section.
4. soc's modules without current bytecode (``__pycache__``): with ``PYTHONDONTWRITEBYTECODE`` set and a
   checkout never byte-compiled, every run compiles them from source (~0.1 s CPU of each hunt here; an
   installed wheel has its bytecode: ``python -m compileall soc`` does the same for a checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIGMA = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "sigma"
WINDOWS_RULES = [SIGMA / "rules" / "windows"]
ALL_RULES = [SIGMA / d for d in ("rules", "rules-emerging-threats", "rules-threat-hunting")]
LINE = {"@timestamp": "2024-01-01T00:00:00Z", "host": {"name": "pc1"},
        "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1,
                   "event_data": {"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd /c whoami"}}}
LOAD = """
import sys, time
import soc.sigma.hunt  # what a hunt imports anyway
from soc.sigma.loader import load
wall, cpu = time.perf_counter(), time.process_time()
ruleset = load(sys.argv[1:])
print(time.perf_counter() - wall, time.process_time() - cpu, len(ruleset.rules))
"""


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rules_load(rules: list[Path], runs: int) -> str:
    """Median wall and CPU of a warm ``load`` of ``rules``, each in a process of its own."""
    cmd = [sys.executable, "-c", LOAD, *map(str, rules)]
    subprocess.run(cmd, check=True, capture_output=True)  # the cache built
    got = [subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split() for _ in range(runs)]
    wall = statistics.median(float(g[0]) for g in got)
    cpu = statistics.median(float(g[1]) for g in got)
    return f"{int(got[0][2]):,} rules: median {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU over {runs} runs"


def hunt_imports(rules: list[Path]) -> str:
    """What ``python -X importtime`` says of a one-line hunt: the total and the costliest top-level imports."""
    with tempfile.TemporaryDirectory() as tmp:
        line = Path(tmp) / "one.json"
        line.write_text(json.dumps(LINE) + "\n")
        cmd = [sys.executable, "-X", "importtime", "-m", "soc", "hunt", str(line), "--data-dir",
               str(Path(tmp) / "data"), "--no-es", *[a for r in rules for a in ("--rules", str(r))]]
        subprocess.run(cmd[:1] + cmd[3:], check=True, capture_output=True)  # caches built
        err = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    top = [(int(m.group(1)), m.group(2)) for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)", err)]
    total = sum(us for us, _ in top)
    most = ", ".join(f"{name} {us / 1000:.0f}" for us, name in sorted(top, reverse=True)[:8])
    return f"{len(top)} top-level imports, {total / 1000:.0f} ms in all; most (ms): {most}"


def without_bytecode() -> str:
    """How many of soc's modules a run compiles from source (no current ``.pyc``), and why."""
    import importlib.util

    package = Path(__file__).resolve().parents[1] / "soc"
    sources = sorted(package.rglob("*.py"))
    stale = []
    for src in sources:
        cached = Path(importlib.util.cache_from_source(str(src)))
        if not cached.exists() or cached.stat().st_mtime < src.stat().st_mtime:  # what the import checks, roughly
            stale.append(src)
    why = " (PYTHONDONTWRITEBYTECODE is set: they are compiled again in every run)" if sys.dont_write_bytecode else ""
    return f"{len(stale)} of {len(sources)} soc modules without current bytecode{why}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--hunt-runs", type=int, default=5)
    args = ap.parse_args()
    soc = median_seconds([sys.executable, "-m", "soc", "--help"], args.runs)
    base = median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"soc --help: median {soc * 1000:.0f} ms over {args.runs} runs; python -c pass: {base * 1000:.0f} ms "
          f"(soc adds {(soc - base) * 1000:.0f} ms)")
    if not all(r.is_dir() for r in ALL_RULES):
        print(f"(no SigmaHQ rules at {SIGMA}: the rule load and the hunt's imports are not measured)")
        return
    print(f"rules load, warm, rules/windows: {rules_load(WINDOWS_RULES, args.hunt_runs)}")
    print(f"rules load, warm, all SigmaHQ rules: {rules_load(ALL_RULES, args.hunt_runs)}")
    print(f"soc hunt of one line, all SigmaHQ rules: {hunt_imports(ALL_RULES)}")
    print(without_bytecode())
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
