"""Issue 22 item 5: what ``soc hunt --ray`` costs against a local hunt of the same input, 1 against 2 Ray workers,
events/s per core, and from those the cores needed for one province (50 GB/day) and for 63 provinces.

    python -m bench.bench_ray                  # the measurement (10-15 min on the loaded 2-core machine)
    python -m bench.bench_ray --quick          # small inputs, one pair: does it work (~1 min)
    python -m bench.bench_ray --only percore   # one section: overhead, percore (the sizing follows percore)

Every timed hunt is ``soc hunt INPUTS --json --data-dir TMP --no-es`` in a process of its own (the console script,
as a user types it). Local: ``--workers N``; wall, CPU (user + system, its worker processes included) and peak RSS
from ``os.wait4``. Ray: ``--ray HOST:PORT`` to a local cluster started once before any timing (a holder process
that calls ``ray.init(num_cpus=N)``, its own temp dir, token authentication off), so cluster start-up is reported on
its own and never hidden in a hunt. A Ray hunt's CPU time is the driver's (``os.wait4``) plus what the cluster's
processes spent during the run (their ``/proc/PID/stat`` user + system, sampled every 0.2 s: the job's worker
processes end with the job); the cluster's idle cost per second is printed so it can be judged. The figures of a
hunt include its start-up (the CLI's imports and, on Ray, connecting and starting the job's worker processes, which
load soc and its rules: Ray does not share worker processes between jobs).

1. overhead: ``sample_logs/`` and a large generated input (a folder of symlinks to ``bench.gen_*`` files cached in
   ``$SOC_BENCH_DIR``), each hunted locally and on Ray with 1 and with 2 CPUs, alternated in every pair: throughput
   (events/s, MB/s), events per CPU-second, peak RSS, the ratio against the local hunt of the same pair, and the
   result compared (records read/parsed/dead, Sigma matches per rule, detector hits, the alerts' ids).
2. percore: each generated format alone, a local hunt on one process; events and MB per CPU-second, gross and
   past the hunt's fixed cost (a one-line file of the same format, measured in the same run).
3. sizing: from the percore rates (and the Ray CPU factor of section 1 when it ran), with every assumption
   printed: the mix of a province's bytes by log type, the peak-to-average ratio of the day, the headroom.

The machine has 2 cores shared with other work: the load average is printed at the start and the end, and CPU time
is what to compare when the wall time is disturbed. Nothing here measures a network or a multi-node cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_hunt import ALL_RULES, commit, cpu_model, median, timed
from bench.harness import DATA, ROOT, generated, machine

SAMPLE_LOGS = ROOT / "sample_logs"
SUFFIX = {"gen_nxlog_windows": ".json", "gen_suricata": ".json", "gen_zeek_json": ".json"}
# Sizes for ~10-15 min in all on the loaded 2-core machine (the generated lines are alert-heavy: 400 k NXLog + 1 M
# web + 1 M syslog lines made 430 k alerts, and one local hunt of them took 57 s wall on 2 processes)
LARGE = ("gen_nxlog_windows:200000", "gen_web:500000", "gen_syslog:500000")
PERCORE = ("gen_fortigate:500000", "gen_asa:500000", "gen_nxlog_windows:200000", "gen_web:500000",
           "gen_syslog:500000", "gen_suricata:500000", "gen_zeek_json:500000")
# A provincial SOC's bytes by log type: an assumption (no province's figures were available), printed with the sizing.
MIX = (("gen_fortigate", 0.30, "FortiGate firewall (key=value)"), ("gen_asa", 0.10, "Cisco ASA (syslog)"),
       ("gen_nxlog_windows", 0.20, "Windows events (NXLog JSON)"), ("gen_web", 0.15, "web access logs"),
       ("gen_syslog", 0.10, "Linux syslog"), ("gen_suricata", 0.10, "Suricata EVE (IDS)"),
       ("gen_zeek_json", 0.05, "Zeek JSON (network, DNS)"))
SECTIONS = ("overhead", "percore")
TICK, PAGE = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")


# --- processes of a cluster -------------------------------------------------------------------------------------


def processes() -> dict[int, tuple[int, int, float, int]]:
    """Every process: pid -> (parent pid, start time in ticks, user + system CPU seconds, RSS bytes)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        f = raw[raw.rindex(b")") + 2:].split()  # f[0] is field 3 (state): field n is f[n - 3]
        out[int(name)] = (int(f[1]), int(f[19]), (int(f[11]) + int(f[12])) / TICK, int(f[21]) * PAGE)
    return out


def tree(root: int, procs: dict | None = None) -> dict[tuple[int, int], tuple[float, int]]:
    """``root`` and its descendants: (pid, start) -> (CPU seconds, RSS bytes)."""
    procs = processes() if procs is None else procs
    children = defaultdict(list)
    for pid, (ppid, *_) in procs.items():
        children[ppid].append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            _, start, cpu, rss = procs[pid]
            out[(pid, start)] = (cpu, rss)
            todo.extend(children[pid])
    return out


class Watch:
    """The CPU seconds a process tree spends while a block runs (sampled: processes that end during the block count
    up to their last sample) and the largest RSS of a process started during the block."""

    def __init__(self, root: int, every: float = 0.2):
        self.root, self.every = root, every
        self.last: dict = {}
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        for key, (cpu, rss) in tree(self.root).items():
            self.last[key] = cpu
            if key not in self.base:
                self.peak = max(self.peak, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self):
        self.base = {k: cpu for k, (cpu, _) in tree(self.root).items()}
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        self.cpu = sum(cpu - self.base.get(k, 0.0) for k, cpu in self.last.items())
        self.peak_mb = self.peak / 2**20
        self.started = sum(k not in self.base for k in self.last)  # processes started during the block


def ray_env() -> dict:
    """The environment of the cluster and the drivers: a local bench cluster without token authentication (Ray
    2.60's ``ray start`` turns it on: a driver without the token cannot connect), no usage stats, no RAY_ADDRESS
    (it would override the address given)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "SOC_CONFIG": ""}


# The cluster's holder: a process that starts a local cluster (``ray.init``, as tests/test_distributed_ray.py does),
# prints its address and waits until its standard input closes. Not ``ray start --head``: that one also starts a
# Ray Client server, and on this loaded machine (load 10-16) its node never came up in 3 tries: the raylet died
# waiting a fixed 30 s for its agents, which were still importing. The holder's cluster came up in 34 s then.
HOLDER = """
import sys, time, ray
began = time.perf_counter()
ray.init(num_cpus=int(sys.argv[1]), include_dashboard=False, _temp_dir=sys.argv[2], logging_level="WARNING",
         log_to_driver=False, object_store_memory=2 << 30)
print("ADDRESS", ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
"""


@dataclass
class Cluster:
    """A local Ray cluster of ``cpus`` CPUs, its processes the children of the holder ``proc`` (``HOLDER``)."""

    cpus: int
    folder: Path
    proc: subprocess.Popen | None = None
    address: str = ""
    start_wall: float = 0.0
    start_cpu: float = 0.0
    idle_cpu_per_s: float = 0.0

    def start(self, attempts: int = 3) -> None:
        """Start the cluster, again when it failed to; how long the start that worked took, its CPU, and what the
        idle cluster costs a second."""
        for attempt in range(1, attempts + 1):
            try:
                self._start()
                break
            except RuntimeError as exc:
                if attempt == attempts:
                    raise
                last = [line for line in str(exc).splitlines() if line.strip()][-1:] or [""]
                print(f"  cluster of {self.cpus} CPU(s): start {attempt} failed ({last[0].strip()[:300]}); again",
                      flush=True)
        self.start_cpu = sum(cpu for cpu, _ in tree(self.proc.pid).values())
        with Watch(self.proc.pid) as idle:
            time.sleep(5.0)
        self.idle_cpu_per_s = idle.cpu / 5.0

    def _start(self, timeout: float = 180.0) -> None:
        log = self.folder / f"ray-{self.cpus}.out"
        temp = self.folder / f"ray-{self.cpus}"
        shutil.rmtree(temp, ignore_errors=True)
        began = time.perf_counter()
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(self.cpus), str(temp)], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.PIPE, env=ray_env(),
                                         cwd=self.folder)
        while b"ADDRESS " not in log.read_bytes():
            if self.proc.poll() is not None or time.perf_counter() - began > timeout:
                self.stop()
                raise RuntimeError(f"the local cluster of {self.cpus} CPU(s) did not start: "
                                   f"{log.read_text(errors='replace')[-1500:]}")
            time.sleep(0.1)
        self.start_wall = time.perf_counter() - began
        self.address = log.read_text().split("ADDRESS ", 1)[1].split()[0]

    def stop(self) -> None:
        if self.proc is None:
            return
        mine = tree(self.proc.pid)
        self.proc.stdin.close()  # the holder returns: ray.shutdown at its exit ends the cluster's processes
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        time.sleep(1.0)
        now = processes()
        for pid, start in mine:  # what is left of them (a start that failed half-way): the same processes only
            if pid != self.proc.pid and pid in now and now[pid][1] == start:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)


# --- hunts ------------------------------------------------------------------------------------------------------


@dataclass
class Hunt:
    """One timed ``soc hunt``: its figures and what it found."""

    name: str
    wall: float
    cpu: float  # driver (its children included) + the cluster's processes during the run
    driver_cpu: float
    rss_mb: float  # the driver's peak RSS (its children's for a local hunt: the largest single process)
    worker_mb: float = 0.0  # the largest Ray worker process started during the run
    started: int = 0  # processes the cluster started during the run (the job's workers)
    code: int = 0
    err: str = ""
    read: int = 0
    parsed: int = 0
    dead: int = 0
    bytes: int = 0
    result: dict = field(default_factory=dict)


def soc_hunt(inputs: list[str], data: str, rules: list[str], workers: int | None, ray: str | None) -> list[str]:
    exe = Path(sys.executable).with_name("soc")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "soc"]
    cmd = [*head, "hunt", *inputs, *[a for r in rules for a in ("--rules", r)], "--json", "--data-dir", data,
           "--no-es"]
    return cmd + (["--ray", ray] if ray else ["--workers", str(workers)])


def outcome(report: dict, data: Path) -> dict:
    """What a hunt found, to compare a Ray hunt with a local one: counts, matches per rule, the alerts' ids."""
    from soc.sinks.alert_store import AlertStore

    files = report.get("files") or []
    sigma = report.get("sigma") or {}
    found = AlertStore(str(data)).query()
    ids = sorted(found.get_column("event.id").to_list()) if found.height else []
    return {"read": sum(f["read"] for f in files), "parsed": sum(f["parsed"] for f in files),
            "dead": sum(f["dead_lettered"] for f in files), "matches": sigma.get("matches", 0),
            "by_rule": json.dumps(sigma.get("by_rule"), sort_keys=True, default=str),
            "hits": (report.get("detectors") or {}).get("hits", 0), "alerts": len(ids),
            "alert_ids": hashlib.sha1("\n".join(ids).encode()).hexdigest()[:12]}


def hunt(name: str, inputs: list[str], rules: list[str], workers: int = 1, cluster: Cluster | None = None) -> Hunt:
    """One ``soc hunt`` in a fresh data folder: local on ``workers`` processes, or on ``cluster``."""
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        data = Path(tmp, "data")
        cmd = soc_hunt(inputs, str(data), rules, workers, cluster.address if cluster else None)
        if cluster is None:
            run = timed(cmd, Path(tmp), ray_env())
            extra, peak, started = 0.0, 0.0, 0
        else:
            with Watch(cluster.proc.pid) as watch:
                run = timed(cmd, Path(tmp), ray_env())
            extra, peak, started = watch.cpu, watch.peak_mb, watch.started
        out = Hunt(name, run.wall, run.cpu + extra, run.cpu, run.rss_mb, peak, started, run.code, run.err[-1500:])
        if run.code == 0:
            report = json.loads(run.out)
            out.result = outcome(report, data)
            out.read, out.parsed, out.dead = out.result["read"], out.result["parsed"], out.result["dead"]
            out.bytes = sum(f["bytes"] for f in report.get("files") or [])
    return out


def failed(runs: list[Hunt]) -> str | None:
    bad = [r for r in runs if r.code != 0]
    return f"{bad[0].name} FAILED (exit {bad[0].code}): {bad[0].err}" if bad else None


HEAD = ("| run | wall s (median) | wall s (each) | CPU s (median) | of which driver | events/s | MB/s | "
        "events per CPU-s | peak RSS MB (driver / worker) | wall vs local | CPU vs local | Ray processes started | "
        "same result |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def row(runs: list[Hunt], local: list[Hunt] | None) -> str:
    r0 = runs[0]
    wall, cpu = median(r.wall for r in runs), median(r.cpu for r in runs)
    ratio = cpu_ratio = same = ""
    if local:
        lw, lc = median(r.wall for r in local), median(r.cpu for r in local)
        ratio, cpu_ratio = f"{wall / lw:.2f}x", f"{cpu / lc:.2f}x"
        same = "same" if all(r.result == local[0].result for r in runs) else "DIFFERENT"
    rss = f"{max(r.rss_mb for r in runs):,.0f}" + (f" / {max(r.worker_mb for r in runs):,.0f}" if r0.worker_mb else "")
    return (f"| {r0.name} | {wall:.2f} | {', '.join(f'{r.wall:.2f}' for r in runs)} | {cpu:.2f} | "
            f"{median(r.driver_cpu for r in runs):.2f} | {r0.parsed / wall:,.0f} | {r0.bytes / wall / 1e6:,.1f} | "
            f"{r0.parsed / cpu:,.0f} | {rss} | {ratio} | {cpu_ratio} | "
            f"{median(r.started for r in runs) if r0.worker_mb else ''} | {same} |")


def link_inputs(folder: Path, specs: list[str]) -> Path:
    """A folder of symlinks to the generated files named ``module:lines`` (made once, cached in DATA)."""
    folder.mkdir(parents=True)
    for spec in specs:
        module, lines = spec.split(":")
        path = generated(module, int(lines), SUFFIX.get(module, ".log"))
        (folder / path.name).symlink_to(path)
    return folder


def overhead(args, clusters: list[Cluster], rules: list[str], tmp: Path, found: dict) -> None:
    inputs = [("sample_logs/", [str(SAMPLE_LOGS)])]
    if args.large:
        big = link_inputs(tmp / "large", args.large)
        size = sum(p.stat().st_size for p in big.iterdir())
        inputs.append((f"large: {' + '.join(args.large)} ({size / 1e6:,.0f} MB)", [str(big)]))
    print("\n## 1. overhead of --ray: local hunts and Ray hunts of the same input, alternated\n")
    print("    " + " ".join(soc_hunt(["INPUT"], "TMP", rules, "N", None)))
    print("    " + " ".join(soc_hunt(["INPUT"], "TMP", rules, None, "HOST:PORT")))
    for c in clusters:
        print(f"cluster of {c.cpus} CPU(s) at {c.address}: started in {c.start_wall:.1f} s wall, "
              f"{c.start_cpu:.1f} s CPU; idle it costs {c.idle_cpu_per_s:.3f} CPU-s per s")
    for n, (label, paths) in enumerate(inputs):
        print(f"\n### {label}\n\nwarm-up (untimed: the page cache, soc's caches, each cluster's first job) ...",
              flush=True)
        warm = [hunt("warm", paths, rules, 1)] + [hunt("warm", paths, rules, cluster=c) for c in clusters if n == 0]
        if failed(warm):
            print(failed(warm))
            continue
        runs: dict[str, list[Hunt]] = defaultdict(list)
        for i in range(args.pairs):
            for c in clusters:
                runs[f"local {c.cpus}"].append(hunt(f"local, --workers {c.cpus}", paths, rules, c.cpus))
                runs[f"ray {c.cpus}"].append(hunt(f"Ray, {c.cpus} CPU(s)", paths, rules, cluster=c))
            print(f"  pair {i + 1}: " + ", ".join(f"{k} {v[-1].wall:.2f} s" for k, v in runs.items()), flush=True)
        bad = failed([r for v in runs.values() for r in v])
        if bad:
            print(bad)
            continue
        first = runs[f"local {clusters[0].cpus}"][0]
        print(f"\n{first.read:,} records read ({first.parsed:,} parsed, {first.dead:,} dead-lettered), "
              f"{first.bytes / 1e6:,.1f} MB; {first.result['matches']:,} Sigma matches, {first.result['hits']:,} "
              f"detector hits, {first.result['alerts']:,} alerts (ids {first.result['alert_ids']})\n")
        print(HEAD)
        for c in clusters:
            local = runs[f"local {c.cpus}"]
            print(row(local, None))
            print(row(runs[f"ray {c.cpus}"], local))
        kinds = {json.dumps(r.result, sort_keys=True) for v in runs.values() for r in v}
        print("\nevery run (local and Ray, every CPU count) gave the same result: "
              + ("yes" if len(kinds) == 1 else "NO"))
        for kind in ("local", "ray"):
            one, two = runs.get(f"{kind} 1"), runs.get(f"{kind} 2")
            if one and two:
                speed = median(r.wall for r in one) / median(r.wall for r in two)
                print(f"\n{kind}, 2 CPUs against 1: speed-up (wall of 1 / wall of 2) {speed:.2f}, CPU of 2 / CPU of 1 "
                      f"{median(r.cpu for r in two) / median(r.cpu for r in one):.2f}")
        found[label] = runs


def marginal_factor(found: dict, cpus: int) -> float | None:
    """Ray's CPU per byte over the local hunt's, past each one's fixed cost: (Ray large - Ray sample_logs) /
    (local large - local sample_logs), medians, on ``cpus`` CPUs (None: not both inputs measured)."""
    small = found.get("sample_logs/")
    large = next((runs for label, runs in found.items() if label.startswith("large")), None)
    ray, local = f"ray {cpus}", f"local {cpus}"
    if not small or not large or ray not in large or local not in large:
        return None
    extra_local = median(r.cpu for r in large[local]) - median(r.cpu for r in small[local])
    extra_ray = median(r.cpu for r in large[ray]) - median(r.cpu for r in small[ray])
    return extra_ray / extra_local if extra_local > 0 else None


# --- per core and sizing ----------------------------------------------------------------------------------------


@dataclass
class Rate:
    module: str
    lines: int
    mb: float
    events: int
    cpu: float
    wall: float
    fixed_cpu: float

    @property
    def bytes_per_event(self) -> float:
        return self.mb * 1e6 / max(self.events, 1)

    @property
    def mb_per_cpu(self) -> float:  # past the fixed cost of a hunt
        return self.mb / max(self.cpu - self.fixed_cpu, 1e-9)


def percore(args, rules: list[str]) -> tuple[list[Rate], Rate | None]:
    """Section 2: the rates of ``--percore``'s formats with ``rules``, and of ``--sigmahq`` (Windows events) with
    all SigmaHQ rules when the corpora are there."""
    print("\n## 2. per core: each format alone, a local hunt on one process (--workers 1)\n")
    print("    " + " ".join(soc_hunt(["FILE"], "TMP", rules, 1, None)))
    print("Fixed cost: the same hunt of the format's one-line file, measured right before.\n")
    print("| format (generated lines) | MB | bytes/event | CPU s (median) | wall s | fixed CPU s | events per CPU-s "
          "| events per CPU-s past the fixed cost | MB per CPU-s past the fixed cost | dead |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rates = [measure(spec, rules, args.pairs) for spec in args.percore]
    windows_all = None
    if args.sigmahq and all(r.exists() for r in ALL_RULES):
        windows_all = measure(args.sigmahq, [str(r) for r in ALL_RULES], args.pairs, ", all SigmaHQ rules")
    elif args.sigmahq:
        print(f"(all SigmaHQ rules not measured: no {ALL_RULES[0]})")
    return [r for r in rates if r], windows_all


def measure(spec: str, rules: list[str], pairs: int, label: str = "") -> Rate | None:
    """One format's row of section 2 (``spec``: ``module:lines``); None when a hunt failed (printed)."""
    module, lines = spec.split(":")
    suffix = SUFFIX.get(module, ".log")
    path, one = generated(module, int(lines), suffix), generated(module, 1, suffix)
    hunt("warm", [str(one)], rules, 1)
    fixed = [hunt("one line", [str(one)], rules, 1) for _ in range(pairs)]
    runs = [hunt(module, [str(path)], rules, 1) for _ in range(pairs)]
    bad = failed(fixed + runs)
    if bad:
        print(bad)
        return None
    r0 = runs[0]
    rate = Rate(module, int(lines), r0.bytes / 1e6, r0.parsed, median(r.cpu for r in runs),
                median(r.wall for r in runs), median(r.cpu for r in fixed))
    print(f"| {module} ({int(lines):,}){label} | {rate.mb:,.0f} | {rate.bytes_per_event:,.0f} | {rate.cpu:.2f} | "
          f"{rate.wall:.2f} | {rate.fixed_cpu:.2f} | {rate.events / rate.cpu:,.0f} | "
          f"{rate.events / max(rate.cpu - rate.fixed_cpu, 1e-9):,.0f} | {rate.mb_per_cpu:,.1f} | {r0.dead:,} |",
          flush=True)
    return rate


def sizing(args, rates: list[Rate], ray_factor: float | None, windows_all: Rate | None = None) -> None:
    """Cores for ``--gb-per-day`` of the MIX, and for ``--provinces`` of them (all assumptions printed); again with
    ``windows_all``'s rate for the Windows events (all SigmaHQ rules) when given."""
    by = {r.module: r for r in rates}
    mix = [(m, share, what) for m, share, what in MIX if m in by]
    total = sum(share for _, share, _ in mix)
    factor = max(ray_factor or 1.0, 1.0)
    how = "section 1: Ray / local CPU of the large input past that of sample_logs" if ray_factor else "not measured"
    print(f"\n## 3. sizing: {args.gb_per_day:g} GB/day a province, {args.provinces} provinces\n")
    print(f"Assumptions: the mix below (bytes by log type{'' if abs(total - 1) < 1e-9 else ', rescaled to 100 %'}); "
          f"peak hour = {args.peak:g} x the day's average; headroom {args.headroom:g} x (run at most "
          f"{100 / args.headroom:.0f} % busy at the peak); CPU per MB as measured in section 2 past the hunt's "
          f"fixed cost, with the rules loaded there; x {factor:.2f} for Ray's extra CPU "
          f"({how}).\n")
    avg = args.gb_per_day * 1e9 / 86_400
    print("| log type (generator) | share of bytes | bytes/event | events/day | MB/s (day's average) | "
          "MB per CPU-s | cores at the average |\n|---|---:|---:|---:|---:|---:|---:|")
    cores = 0.0
    for module, share, what in mix:
        r, part = by[module], share / total
        need = avg * part / 1e6 / r.mb_per_cpu
        cores += need
        print(f"| {what} ({module}) | {100 * part:.0f} % | {r.bytes_per_event:,.0f} | "
              f"{args.gb_per_day * 1e9 * part / r.bytes_per_event:,.0f} | {avg * part / 1e6:.3f} | "
              f"{r.mb_per_cpu:,.1f} | {need:.3f} |")
    one = cores * args.peak * args.headroom * factor
    print(f"\none province: {avg / 1e6:.2f} MB/s on average; {cores:.3f} cores at the average, x {args.peak:g} peak "
          f"x {args.headroom:g} headroom x {factor:.2f} Ray = {one:.2f} cores -> {max(math.ceil(one), 1)} core(s)")
    print(f"{args.provinces} provinces: {args.provinces * args.gb_per_day / 1e3:.2f} TB/day, "
          f"{args.provinces * avg / 1e6:.1f} MB/s on average -> {args.provinces * one:.1f} cores -> "
          f"{math.ceil(args.provinces * one)} cores (peaks at the same hours: one time zone)")
    old = by.get(windows_all.module) if windows_all else None
    if old is not None:
        share = next(share for m, share, _ in mix if m == old.module) / total
        more = avg * share / 1e6 * (1 / windows_all.mb_per_cpu - 1 / old.mb_per_cpu)
        all_one = (cores + more) * args.peak * args.headroom * factor
        print(f"with all SigmaHQ rules on the Windows events ({windows_all.mb_per_cpu:,.1f} MB per CPU-s, not "
              f"{old.mb_per_cpu:,.1f}): one province {all_one:.2f} cores -> {max(math.ceil(all_one), 1)} core(s); "
              f"{args.provinces} provinces {args.provinces * all_one:.1f} -> "
              f"{math.ceil(args.provinces * all_one)} cores")


# --- main -------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=2, help="alternated rounds (local and Ray hunts; runs per format)")
    ap.add_argument("--cpus", default="1,2", help="Ray clusters' CPUs (and the local hunts' --workers)")
    ap.add_argument("--large", nargs="*", default=list(LARGE), metavar="GEN:LINES",
                    help="the large input's files (none: sample_logs/ only)")
    ap.add_argument("--percore", nargs="+", default=list(PERCORE), metavar="GEN:LINES", help="formats per core")
    ap.add_argument("--rules", action="append", default=[], help="Sigma rules (default: soc's own)")
    ap.add_argument("--sigmahq", default="gen_nxlog_windows:200000", metavar="GEN:LINES",
                    help="Windows events measured again with all SigmaHQ rules ('': not)")
    ap.add_argument("--only", choices=SECTIONS, action="append", help="run only this section (repeatable)")
    ap.add_argument("--quick", action="store_true", help="2,000-line inputs and one pair: a check, not a measure")
    ap.add_argument("--gb-per-day", type=float, default=50.0)
    ap.add_argument("--provinces", type=int, default=63)
    ap.add_argument("--peak", type=float, default=3.0, help="peak hour / the day's average")
    ap.add_argument("--headroom", type=float, default=1.5, help="capacity / the peak's need")
    args = ap.parse_args(argv)
    if args.quick:
        args.pairs = 1
        args.large = [f"{s.split(':')[0]}:2000" for s in args.large]
        args.percore = [f"{s.split(':')[0]}:2000" for s in args.percore]
        args.sigmahq = args.sigmahq and f"{args.sigmahq.split(':')[0]}:2000"
    sections = args.only or list(SECTIONS)
    cpus = [int(n) for n in args.cpus.split(",")]
    print(f"machine: {machine()}, {cpu_model()}; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"at the start ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())})")
    import ray

    print(f"soc at {commit()} ({ROOT}); Ray {ray.__version__}; bench data in {DATA}; pairs {args.pairs}; "
          f"rules: {', '.join(args.rules) or 'soc own'}")
    dirty = subprocess.run(["git", "status", "--short", "--untracked-files=no", "soc"], cwd=ROOT, capture_output=True,
                           text=True, check=False).stdout.split("\n")
    if any(dirty):
        print("soc files changed since the commit (measured as they are): " + ", ".join(d.strip() for d in dirty if d))
    found: dict = {}
    ray_factor = None
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        if "overhead" in sections:
            clusters = [Cluster(n, Path(tmp)) for n in cpus]
            try:
                for c in clusters:
                    c.start()
                overhead(args, clusters, args.rules, Path(tmp), found)
            finally:
                for c in clusters:
                    c.stop()
                shutil.rmtree(Path(tmp, "large"), ignore_errors=True)
            ray_factor = marginal_factor(found, cpus[-1])
        if "percore" in sections:
            rates, windows_all = percore(args, args.rules)
            sizing(args, rates, ray_factor, windows_all)
    print(f"\nload average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end "
          f"({time.strftime('%H:%M:%S UTC', time.gmtime())})")


if __name__ == "__main__":
    main()
