"""Issue 18's targets in one run: ``soc hunt`` against the peer Zircolite 3.7.0, alternated, end to end.

    python -m bench.bench_hunt                              # the real measurement (all four sections)
    python -m bench.bench_hunt --pairs 1 --runs 1 --events 20000 --zircolite-events 5000   # a quick check
    python -m bench.bench_hunt --only corpus --pairs 5      # one section: corpus, fixed, large or evtx

Every timed run is a process of its own, measured from outside like ``/usr/bin/time``: wall time, CPU time
(user + system) and peak RSS from ``os.wait4`` (the peak of the largest single process, as ``%M``; soc's EVTX
worker processes are not added). The machine is shared: the CPU seconds say what its load hides.

1. corpus: the 483 ``.evtx`` files of ``../shared/corpora/evtx/evtx-to-mitre-attack`` and
   ``../shared/corpora/sigma/regression_data`` (~10 k events) behind a temporary folder of symlinks:
       soc hunt DIR --rules SIGMA/rules/windows --data-dir TMP --no-es                    (soc windows)
       soc hunt DIR --rules SIGMA/rules --rules SIGMA/rules-emerging-threats \\
           --rules SIGMA/rules-threat-hunting --data-dir TMP --no-es                      (soc all, 3,752 rules)
       python zircolite.py --evtx DIR --ruleset RULESET.json -o TMP/out.json            (in its copy's folder)
   RULESET.json is converted once from SIGMA/rules/windows with ``-p sysmon -p windows-logsources -sr`` and kept
   as ``$SOC_BENCH_DIR/zircolite-ruleset-windows.json``. One untimed run of each first (soc's rule and Numba
   caches built), then ``--pairs`` rounds of soc windows, Zircolite, soc all. Hits: soc's matches (rows of
   sigma_matches) and distinct (rule id, file, record); Zircolite's ``count`` and distinct (rule id, file,
   EventRecordID). The peer counts differently (it silently skips rules whose fields its database lacks):
   compare per (rule, file, record), judging each difference against the raw event.
2. fixed: ``soc hunt`` of a one-line NXLog JSON file with all SigmaHQ rules; median wall of ``--runs``.
3. large: ``--events`` NXLog JSON lines (``bench.gen_nxlog_windows``: the corpus's records with varied values,
   cached in ``$SOC_BENCH_DIR``), ``soc hunt FILE`` with all rules (parse included, sniffed as nxlog_windows)
   against ``zircolite.py --evtx FILE -j`` with its windows ruleset. Flat NXLog lines, not Winlogbeat's nested
   ones: Zircolite flattens nested JSON to the last key of each path, so ``winlog.event_id`` would become
   ``event_id`` and no ``EventID`` condition would hold; NXLog's top-level ``EventID``, ``Channel`` and
   EventData names are the columns of its EVTX path (but for the provider: NXLog's ``SourceName``, its EVTX
   path's ``Provider_Name``, which 85 of its 2,395 windows rules name). Zircolite reads the first
   ``--zircolite-events`` lines of the same file (default 100,000: it ran 1.0-1.6 k events/s on 5-20 k lines
   on this 2-core machine, so a million lines would take it over ten minutes a run; its start-up weighs a
   little more on fewer lines, which lowers its rate slightly: the output says when it read fewer lines).
4. evtx: ``bench.bench_evtx``'s measurement: records to typed frames (``pipeline.run``, one worker process)
   against the ``evtx`` package alone (records_json), alternated, on one file of ``--evtx-copies`` x the
   corpus's 10,015 records (and on the 281 evtx-to-mitre-attack files as they are, for information).

Zircolite set-up (it is never a dependency of soc): ``/tmp/zircolite-venv`` and its copy ``/tmp/zircolite`` when
present, else a venv of its own in ``$SOC_BENCH_DIR/zircolite-venv`` (``pip install -r requirements.txt`` of
``../shared/peers/zircolite``) and a copy of the peer folder in ``$SOC_BENCH_DIR/zircolite`` (it writes
zircolite.log where it runs). If it cannot be set up, the reason is printed and soc's figures still are.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.gen_nxlog_windows import CORPORA, evtx_files
from bench.harness import DATA, ROOT, generated, machine

SIGMA = CORPORA / "sigma"
WINDOWS_RULES = [SIGMA / "rules" / "windows"]
ALL_RULES = [SIGMA / d for d in ("rules", "rules-emerging-threats", "rules-threat-hunting")]
PEER = ROOT.parent / "shared" / "peers" / "zircolite"
SHARED_VENV, SHARED_COPY = Path("/tmp/zircolite-venv"), Path("/tmp/zircolite")
RULESET = DATA / "zircolite-ruleset-windows.json"
GEN = "gen_nxlog_windows"
SECTIONS = ("corpus", "fixed", "large", "evtx")


@dataclass
class Run:
    """One process, measured from outside."""

    wall: float
    cpu: float
    rss_mb: float
    code: int
    out: str
    err: str
    hits: int = 0
    keys: set = field(default_factory=set)  # distinct (rule id, file name, record id)
    events: int | None = None  # events the peer says it read
    dead: int = 0  # soc's dead letters


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> Run:
    """Run ``cmd``; its wall time, CPU time and peak RSS (``os.wait4``, as ``/usr/bin/time``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def rule_args(rules: list[Path]) -> list[str]:
    return [a for r in rules for a in ("--rules", str(r))]


def soc_command(inputs: list[str], rules: list[Path], data_dir: str) -> list[str]:
    """``soc hunt`` as a user types it (the console script beside this interpreter, else ``python -m soc``)."""
    exe = Path(sys.executable).with_name("soc")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "soc"]
    return [*head, "hunt", *inputs, *rule_args(rules), "--data-dir", data_dir, "--no-es"]


def soc_hits(data_dir: Path) -> tuple[int, set]:
    """Rows of the Sigma matches in ``data_dir`` and their distinct (rule id, file name, record id)."""
    import polars as pl

    files = sorted(data_dir.joinpath("sigma_matches").rglob("*.parquet"))
    if not files:
        return 0, set()
    cols = ["rule.id", "log.file.path", "winlog.record_id"]
    frame = pl.concat([pl.read_parquet(f, columns=cols) for f in files])
    return frame.height, {(r, Path(p).name, str(i)) for r, p, i in frame.iter_rows()}


def dead_letters(data_dir: Path) -> int:
    import polars as pl

    return sum(pl.read_parquet(f).height for f in data_dir.joinpath("dead_letters").rglob("*.parquet"))


def run_soc(inputs: list[str], rules: list[Path]) -> Run:
    """One ``soc hunt`` into a fresh data folder (its run directory: no ./soc.toml is read); its hits."""
    with tempfile.TemporaryDirectory(prefix="bench-hunt-soc-") as tmp:
        data = Path(tmp, "data")
        run = timed(soc_command(inputs, rules, str(data)), Path(tmp), {**os.environ, "SOC_CONFIG": ""})
        if run.code == 0:
            run.hits, run.keys = soc_hits(data)
            run.dead = dead_letters(data)
    return run


@dataclass
class Zircolite:
    python: Path
    folder: Path
    ruleset: Path

    def command(self, source: Path, out: Path, *extra: str) -> list[str]:
        return [str(self.python), "zircolite.py", "--evtx", str(source), "--ruleset", str(self.ruleset),
                "-o", str(out), *extra]

    def run(self, source: Path, *extra: str) -> Run:
        """One timed run; its hits (``count`` summed, distinct (rule id, file, record)) and events read."""
        with tempfile.TemporaryDirectory(prefix="bench-hunt-z-") as tmp:
            out = Path(tmp, "out.json")
            run = timed(self.command(source, out, *extra), self.folder)
            if run.code == 0 and out.exists():
                run.hits, run.keys = zircolite_hits(json.loads(out.read_text(encoding="utf-8") or "[]"))
        run.events = zircolite_events(run.out)
        return run


def zircolite_hits(detections: list[dict]) -> tuple[int, set]:
    keys = set()
    for rule in detections:
        for m in rule.get("matches", []):
            record = m.get("EventRecordID", m.get("RecordNumber"))
            keys.add((rule.get("id"), Path(str(m.get("OriginalLogfile", ""))).name, str(record)))
    return sum(int(rule.get("count", 0)) for rule in detections), keys


def zircolite_events(stdout: str) -> int | None:
    """Events Zircolite says it processed (summed over its files), from its console output."""
    found = re.findall(r"Total events processed: ([\d,]+)", stdout)
    return sum(int(n.replace(",", "")) for n in found) if found else None


def _works(python: Path) -> bool:
    return python.exists() and subprocess.run([str(python), "-c", "import evtx, sigma, orjson, rich"],
                                              capture_output=True, check=False).returncode == 0


def setup_zircolite(corpus: Path) -> Zircolite | str:
    """Zircolite ready to time on its saved windows ruleset, or why it is not (set-up runs are not timed)."""
    if not (PEER / "zircolite.py").exists():
        return f"no peer at {PEER}"
    python = SHARED_VENV / "bin" / "python"
    if not _works(python):
        venv = DATA / "zircolite-venv"
        python = venv / "bin" / "python"
        if not _works(python):
            print(f"setting up Zircolite's venv in {venv} ...", flush=True)
            for cmd in ([sys.executable, "-m", "venv", "--clear", str(venv)],
                        [str(python), "-m", "pip", "install", "-q", "-r", str(PEER / "requirements.txt")]):
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    return f"{' '.join(cmd[:4])} ... failed: {(done.stderr or done.stdout)[-800:]}"
            if not _works(python):
                return f"{python} cannot import Zircolite's requirements"
    folder = SHARED_COPY if (SHARED_COPY / "zircolite.py").exists() else DATA / "zircolite"
    if not (folder / "zircolite.py").exists():
        shutil.copytree(PEER, folder)
    z = Zircolite(python, folder, RULESET)
    if not RULESET.exists():
        print(f"converting Zircolite's ruleset once (-sr) into {RULESET} ...", flush=True)
        before = set(folder.glob("ruleset-*.json"))
        with tempfile.TemporaryDirectory(prefix="bench-hunt-z-") as tmp:
            cmd = [str(python), "zircolite.py", "--evtx", str(corpus), "--ruleset", str(WINDOWS_RULES[0]),
                   "-p", "sysmon", "-p", "windows-logsources", "-sr", "-o", str(Path(tmp, "out.json"))]
            run = timed(cmd, folder)
        made = sorted(set(folder.glob("ruleset-*.json")) - before, key=lambda p: p.stat().st_mtime)
        if run.code != 0 or not made:
            return f"Zircolite's ruleset conversion failed (exit {run.code}): {run.err[-800:] or run.out[-800:]}"
        DATA.mkdir(parents=True, exist_ok=True)
        shutil.move(made[-1], RULESET)
        print(f"  converted in {run.wall:.1f} s: {' '.join(cmd)}", flush=True)
    return z


def corpus_links(folder: Path) -> int:
    """``folder`` made of symlinks to the corpus's files (numbered: two files may share a name)."""
    folder.mkdir(parents=True)
    files = evtx_files()
    for i, f in enumerate(files, 1):
        (folder / f"{i:03d}_{f.name}").symlink_to(f)
    return len(files)


def median(values) -> float:
    return statistics.median(values)


def check(failed: list, runs: list[Run], what: str) -> bool:
    """True when every run exited 0; else print why and remember it."""
    bad = [r for r in runs if r.code != 0]
    for r in bad[:1]:
        print(f"  {what} FAILED (exit {r.code}): {r.err[-1500:] or r.out[-1500:]}")
    if bad:
        failed.append(what)
    return not bad


def row(name: str, runs: list[Run], extra: str = "") -> str:
    walls = ", ".join(f"{r.wall:.2f}" for r in runs)
    return (f"| {name} | {median(r.wall for r in runs):.2f} | {walls} | {median(r.cpu for r in runs):.2f} | "
            f"{median(r.rss_mb for r in runs):,.0f} | {max(r.rss_mb for r in runs):,.0f} |{extra}")


HEAD = ("| run | wall s (median) | wall s (each) | CPU s (median) | peak RSS MB (median) | peak RSS MB (max) |"
        "{extra}\n|---|---:|---:|---:|---:|---:|{sep}")


def target(verdicts: list, name: str, value: float, goal: float, higher: bool, unit: str = "") -> None:
    ok = value >= goal if higher else value <= goal
    verdicts.append((name, f"{value:,.2f}{unit}", f"{'>=' if higher else '<='} {goal:,}{unit}", ok))


def corpus(args, z: Zircolite | str, verdicts: list, failed: list) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hunt-") as tmp:
        folder = Path(tmp, "evtx")
        n = corpus_links(folder)
        src = [str(folder)]
        print(f"\n## 1. corpus: {n} .evtx files, symlinked in {folder}\n")
        print("    " + " ".join(soc_command(["DIR"], WINDOWS_RULES, "TMP")))
        print("    " + " ".join(soc_command(["DIR"], ALL_RULES, "TMP")))
        if isinstance(z, str):
            print(f"    Zircolite not run: {z}")
            z = None
        else:
            print(f"    (cd {z.folder} && {' '.join(z.command(Path('DIR'), Path('TMP/out.json')))})")
        print("warm-up runs (untimed) ...", flush=True)
        warm = [run_soc(src, WINDOWS_RULES), run_soc(src, ALL_RULES)] + ([z.run(folder)] if z else [])
        if not check(failed, warm, "corpus warm-up"):
            return
        soc_w, soc_a, peer = [], [], []
        for i in range(args.pairs):
            soc_w.append(run_soc(src, WINDOWS_RULES))
            if z:
                peer.append(z.run(folder))
            soc_a.append(run_soc(src, ALL_RULES))
            print(f"  pair {i + 1}: soc windows {soc_w[-1].wall:.2f} s"
                  + (f", Zircolite {peer[-1].wall:.2f} s" if z else "") + f", soc all {soc_a[-1].wall:.2f} s",
                  flush=True)
        ok = check(failed, soc_w, "soc windows") & check(failed, soc_a, "soc all") & check(failed, peer, "Zircolite")
        if not ok:
            return
        print("\n" + HEAD.format(extra=" matches | distinct (rule, file, record) |", sep="---:|---:|"))
        for name, runs in (("soc, rules/windows", soc_w), ("Zircolite 3.7.0, windows ruleset", peer),
                           ("soc, all SigmaHQ rules", soc_a)):
            if runs:
                print(row(name, runs, f" {runs[0].hits:,} | {len(runs[0].keys):,} |"))
        if soc_w[0].dead:
            print(f"\nsoc dead-lettered {soc_w[0].dead:,} records of the corpus")
        rss_all = max(r.rss_mb for r in soc_a)
        target(verdicts, "corpus: soc all rules, peak RSS (max of the runs)", rss_all, 400, False, " MB")
        if not peer:
            return
        zw = median(r.wall for r in peer)
        ratio_w, ratio_a = zw / median(r.wall for r in soc_w), zw / median(r.wall for r in soc_a)
        common = soc_w[0].keys & peer[0].keys
        print(f"\nhits, distinct (rule id, file, record): soc windows {len(soc_w[0].keys):,}, Zircolite "
              f"{len(peer[0].keys):,}, in both {len(common):,}, soc only {len(soc_w[0].keys - common):,}, "
              f"Zircolite only {len(peer[0].keys - common):,}")
        print(f"Zircolite events read: {peer[0].events}")
        print("wall ratios per pair (Zircolite / soc windows): "
              + ", ".join(f"{p.wall / s.wall:.2f}" for p, s in zip(peer, soc_w, strict=True)))
        zc = median(r.cpu for r in peer)
        print(f"CPU ratios of the medians (what a loaded machine hides): Zircolite / soc windows "
              f"{zc / median(r.cpu for r in soc_w):.2f}, Zircolite / soc all {zc / median(r.cpu for r in soc_a):.2f}")
        target(verdicts, "corpus: Zircolite wall / soc windows wall", ratio_w, 5, True, "x")
        target(verdicts, "corpus: Zircolite (windows) wall / soc all-rules wall", ratio_a, 4, True, "x")


def fixed(args, verdicts: list, failed: list) -> None:
    one = generated(GEN, 1, ".json")
    print("\n## 2. fixed cost: a one-line input, all SigmaHQ rules\n\n    "
          + " ".join(soc_command([str(one)], ALL_RULES, "TMP")))
    if not check(failed, [run_soc([str(one)], ALL_RULES)], "fixed warm-up"):
        return
    runs = [run_soc([str(one)], ALL_RULES) for _ in range(args.runs)]
    if not check(failed, runs, "fixed"):
        return
    print("\n" + HEAD.format(extra=" matches |", sep="---:|"))
    print(row(f"soc, one line, all rules ({args.runs} runs)", runs, f" {runs[0].hits} |"))
    target(verdicts, "fixed: one-line hunt, all rules, wall (median)", median(r.wall for r in runs), 1.0, False, " s")


def large(args, z: Zircolite | str, verdicts: list, failed: list) -> None:
    print(f"\n## 3. large input: {args.events:,} NXLog JSON lines, all SigmaHQ rules\n")
    start = time.perf_counter()
    path = generated(GEN, args.events, ".json")
    warm = generated(GEN, 2_000, ".json")
    print(f"input: {path} ({path.stat().st_size / 1e6:,.0f} MB; ready in {time.perf_counter() - start:.1f} s)")
    print("    " + " ".join(soc_command([str(path)], ALL_RULES, "TMP")))
    zn = min(args.zircolite_events, args.events)
    zpath = path if zn == args.events else generated(GEN, zn, ".json")
    if isinstance(z, str):
        print(f"    Zircolite not run: {z}")
        z = None
    else:
        print(f"    (cd {z.folder} && {' '.join(z.command(zpath, Path('TMP/out.json'), '-j'))})")
        if zn < args.events:
            print(f"    NOTE: Zircolite reads only the first {zn:,} of the {args.events:,} lines (--zircolite-events; "
                  "its start-up weighs more on fewer lines): events/s are compared")
    wruns = [run_soc([str(warm)], ALL_RULES)] + ([z.run(warm, "-j")] if z else [])
    if not check(failed, wruns, "large warm-up"):
        return
    ours, peer = [], []
    for i in range(args.pairs):
        ours.append(run_soc([str(path)], ALL_RULES))
        if z:
            peer.append(z.run(zpath, "-j"))
        print(f"  pair {i + 1}: soc {ours[-1].wall:.2f} s" + (f", Zircolite {peer[-1].wall:.2f} s" if z else ""),
              flush=True)
    if not (check(failed, ours, "soc large") & check(failed, peer, "Zircolite large")):
        return
    rate = args.events / median(r.wall for r in ours)
    print("\n" + HEAD.format(extra=" events | events/s | matches |", sep="---:|---:|---:|"))
    print(row("soc, all SigmaHQ rules", ours, f" {args.events:,} | {rate:,.0f} | {ours[0].hits:,} |"))
    if ours[0].dead:
        print(f"soc dead-lettered {ours[0].dead:,} lines")
    target(verdicts, "large: soc events/s, all rules, parse included", rate, 50_000, True, "/s")
    if peer:
        zrate = zn / median(r.wall for r in peer)
        print(row("Zircolite 3.7.0 -j, windows ruleset", peer, f" {zn:,} | {zrate:,.0f} | {peer[0].hits:,} |"))
        print(f"Zircolite events read: {peer[0].events}")
        target(verdicts, "large: soc events/s / Zircolite events/s", rate / zrate, 20, True, "x")


def evtx(args, verdicts: list, failed: list) -> None:
    from bench import bench_evtx

    big = bench_evtx.build(args.evtx_copies, args.evtx_copies)
    small = sorted(bench_evtx.CORPUS.rglob("*.evtx"))
    print("\n## 4. EVTX records to typed frames against the evtx package (bench.bench_evtx's measurement)\n")
    print("| input | soc records/s (median) | evtx records/s (median) | soc / evtx | soc / evtx per CPU-s | soc each "
          "| evtx each |\n|---|---:|---:|---:|---:|---:|---:|")
    for label, paths in ((f"1 file of {args.evtx_copies * 10_015:,} records", big),
                         (f"{len(small)} files as they are", small)):
        ours, theirs = [], []
        try:
            for _ in range(args.pairs):
                ours.append(bench_evtx.child("soc", paths))
                theirs.append(bench_evtx.child("evtx", paths))
        except RuntimeError as exc:
            print(f"  evtx {label} FAILED: {exc}")
            failed.append(f"evtx {label}")
            return
        a = [r["records"] / r["seconds"] for r in ours]
        b = [r["records"] / r["seconds"] for r in theirs]
        ratio = median(a) / median(b)
        per_cpu = (median(r["records"] / r["cpu_seconds"] for r in ours)
                   / median(r["records"] / r["cpu_seconds"] for r in theirs))
        print(f"| {label} | {median(a):,.0f} | {median(b):,.0f} | {ratio:.2f} | {per_cpu:.2f} | "
              f"{', '.join(f'{x / 1e3:.0f} k' for x in a)} | {', '.join(f'{x / 1e3:.0f} k' for x in b)} |")
        if any(r["dead"] or r["errors"] for r in ours):
            print(f"  soc dead letters / errors: {[(r['dead'], r['errors'][:1]) for r in ours]}")
        if paths is big:
            target(verdicts, "evtx: soc records/s / evtx package records/s", ratio, 0.45, True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def commit() -> str:
    done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=3, help="alternated rounds of soc and Zircolite")
    ap.add_argument("--runs", type=int, default=5, help="runs of the one-line hunt (fixed cost)")
    ap.add_argument("--only", choices=SECTIONS, action="append", help="run only this section (repeatable)")
    ap.add_argument("--events", type=int, default=1_000_000, help="lines of the large input")
    ap.add_argument("--zircolite-events", type=int, default=100_000,
                    help="lines of the large input Zircolite reads (a prefix of soc's file)")
    ap.add_argument("--evtx-copies", type=int, default=5, help="copies of the corpus's records in the EVTX file")
    args = ap.parse_args()
    sections = args.only or list(SECTIONS)
    print(f"machine: {machine()}, {cpu_model()}; load average {os.getloadavg()[0]:.2f} at the start")
    print(f"soc at {commit()} ({ROOT}); bench data in {DATA}; pairs {args.pairs}")
    z: Zircolite | str = "not needed"
    if {"corpus", "large"} & set(sections):
        with tempfile.TemporaryDirectory(prefix="bench-hunt-") as tmp:
            links = Path(tmp, "evtx")
            corpus_links(links)
            z = setup_zircolite(links)
        print(f"Zircolite: {z if isinstance(z, str) else f'{z.python} in {z.folder}, ruleset {z.ruleset}'}")
    verdicts: list = []
    failed: list = []
    for name in sections:
        if name == "corpus":
            corpus(args, z, verdicts, failed)
        elif name == "fixed":
            fixed(args, verdicts, failed)
        elif name == "large":
            large(args, z, verdicts, failed)
        else:
            evtx(args, verdicts, failed)
    print("\n## targets\n\n| target | measured | goal | |\n|---|---:|---:|---|")
    for name, value, goal, ok in verdicts:
        print(f"| {name} | {value} | {goal} | {'pass' if ok else 'FAIL'} |")
    if failed:
        print(f"\nruns that failed: {', '.join(failed)}")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
