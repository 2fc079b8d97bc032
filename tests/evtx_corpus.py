"""The EVTX corpus of issue 18 (483 ``.evtx`` files: evtx-to-mitre-attack and SigmaHQ's regression data) and
the Sigma hits ``soc hunt`` finds in it, per (rule id, file, record), to hold every speed-up to the same hits.

``python -m tests.evtx_corpus --write`` records the hits of the current code in ``tests/data/evtx_hits.json``
(only when the hits are meant to change: say why in the commit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
GOLDEN = ROOT / "tests" / "data" / "evtx_hits.json"
RULE_SETS = {  # name -> rule folders under corpora/sigma
    "windows": ["rules/windows"],
    "all": ["rules", "rules-emerging-threats", "rules-threat-hunting"],
}


def evtx_files(corpora: Path = CORPORA) -> list[Path]:
    """The corpus's ``.evtx`` files, sorted."""
    roots = [corpora / "evtx" / "evtx-to-mitre-attack", corpora / "sigma" / "regression_data"]
    return sorted(p for r in roots for p in r.rglob("*.evtx"))


def hunt_hits(rule_set: str, corpora: Path = CORPORA) -> dict[str, dict[str, list[int | None]]]:
    """``soc hunt`` (the CLI, default options, detectors off) of every corpus file with the rule set: per rule id,
    per file (relative to the corpora), the record ids of its matches, sorted (a record twice: matched twice)."""
    with tempfile.TemporaryDirectory() as data:
        rules = [a for d in RULE_SETS[rule_set] for a in ("--rules", str(corpora / "sigma" / d))]
        cmd = [sys.executable, "-m", "soc", "hunt", *map(str, evtx_files(corpora)), "--data-dir", data, "--no-es",
               "--no-detectors", "--json", *rules]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "SOC_CONFIG": ""})
        if done.returncode != 0:
            raise RuntimeError(f"soc hunt exited {done.returncode}: {done.stderr[-2000:]}")
        files = list(Path(data, "sigma_matches").rglob("*.parquet"))
        frame = pl.concat([pl.read_parquet(f, columns=["rule.id", "log.file.path", "winlog.record_id"]) for f in files])
    prefix = str(corpora) + os.sep
    out: dict[str, dict[str, list[int | None]]] = {}
    for rule, path, record in frame.iter_rows():
        out.setdefault(rule, {}).setdefault(path.removeprefix(prefix), []).append(record)
    return {r: {f: sorted(ids, key=lambda i: (i is None, i or 0)) for f, ids in sorted(by_file.items())}
            for r, by_file in sorted(out.items())}


def main() -> None:
    if "--write" not in sys.argv:
        sys.exit("usage: python -m tests.evtx_corpus --write")
    golden = {name: hunt_hits(name) for name in RULE_SETS}
    GOLDEN.write_text(json.dumps(golden, separators=(",", ":")).replace('},"', '},\n"') + "\n")
    print({name: sum(len(ids) for by_file in h.values() for ids in by_file.values()) for name, h in golden.items()})


if __name__ == "__main__":
    main()
