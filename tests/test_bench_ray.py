"""``bench.bench_ray``: the CPU of a process tree, the sizing's arithmetic, and (slow) one real run of the bench on
``sample_logs/`` with a Ray cluster of 1 CPU: its figures are numbers and the Ray hunt finds what the local one does."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bench import bench_ray as B
from tests.conftest import IN_CI

BURN = "import time\nb = bytearray(40 << 20)\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"


def test_a_process_tree_s_cpu_is_counted_grandchildren_included():
    """A child that starts a grandchild burning 0.6 s of CPU: the watch of the child counts the grandchild's CPU
    (ended before the watch was), and its RSS as a process started during the watch."""
    code = f"import subprocess, sys, time\ntime.sleep(0.3)\nsubprocess.run([sys.executable, '-c', {BURN!r}])\n"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        with B.Watch(child.pid, every=0.05) as watch:
            child.wait(30)
    finally:
        child.kill()
    assert 0.5 <= watch.cpu < 5.0
    assert watch.peak_mb >= 40 and watch.started == 1


def _rate(module: str, mb_per_cpu: float, bytes_per_event: float = 500.0) -> B.Rate:
    mb = 100.0
    return B.Rate(module, 1000, mb, int(mb * 1e6 / bytes_per_event), cpu=1.0 + mb / mb_per_cpu, wall=1.0,
                  fixed_cpu=1.0)


def test_sizing_arithmetic(capsys):
    """50 GB/day = 0.5787 MB/s; every type at 1 MB per CPU-s: 0.5787 cores, x 3 peak x 1.5 headroom = 2.60 cores
    (3); x 2 for Ray: 5.21 (6); 63 provinces: 328.1 cores."""
    args = B.argparse.Namespace(gb_per_day=50.0, provinces=63, peak=3.0, headroom=1.5)
    rates = [_rate(m, 1.0) for m, _, _ in B.MIX]
    B.sizing(args, rates, None)
    out = capsys.readouterr().out
    assert "0.579 cores at the average" in out and "= 2.60 cores -> 3 core(s)" in out
    assert "-> 164.1 cores -> 165 cores" in out
    B.sizing(args, rates, 2.0)
    out = capsys.readouterr().out
    assert "= 5.21 cores -> 6 core(s)" in out and "-> 328.1 cores -> 329 cores" in out
    # one type twice as fast: its share of the cores halves (FortiGate is 30 % of the bytes)
    B.sizing(args, [_rate(m, 2.0 if m == "gen_fortigate" else 1.0) for m, _, _ in B.MIX], None)
    assert f"{0.5787 * (1 - 0.15):.3f} cores at the average" in capsys.readouterr().out
    # all SigmaHQ rules on the Windows events (20 % of the bytes) at half the rate: 0.5787 x 1.2 x 4.5 = 3.1249..
    B.sizing(args, rates, None, _rate("gen_nxlog_windows", 0.5))
    assert "one province 3.12 cores -> 4 core(s); 63 provinces 196.9 -> 197 cores" in capsys.readouterr().out


def _hunt(cpu: float) -> B.Hunt:
    return B.Hunt("x", wall=1.0, cpu=cpu, driver_cpu=cpu, rss_mb=1.0)


def test_ray_s_cpu_factor_past_the_fixed_cost():
    found = {"sample_logs/": {"local 2": [_hunt(1.5)], "ray 2": [_hunt(9.5)]},
             "large: x": {"local 2": [_hunt(11.5), _hunt(12.5), _hunt(11.0)], "ray 2": [_hunt(21.5)]}}
    assert B.marginal_factor(found, 2) == pytest.approx(12.0 / 10.0)
    assert B.marginal_factor(found, 1) is None and B.marginal_factor({"sample_logs/": {}}, 2) is None


NUMBER = r"[\d,]+(?:\.\d+)?"


@pytest.mark.slow
def test_the_bench_on_sample_logs_with_a_one_cpu_cluster(capsys):
    """The real thing, small: a cluster started by the bench, sample_logs/ hunted locally and on Ray, and one
    format per core (~1 min on the 2-core machine)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("Ray is not installed (CI=true: pip install -e '.[test]' must install it)")
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    B.main(["--cpus", "1", "--pairs", "1", "--large", "--percore", "gen_web:2000", "--sigmahq", ""])
    out = capsys.readouterr().out
    assert re.search(rf"cluster of 1 CPU\(s\) at [\d.]+:\d+: started in {NUMBER} s wall", out), out
    summary = re.search(r"([\d,]+) records read .*?; ([\d,]+) Sigma matches, ([\d,]+) detector hits, ([\d,]+) alerts",
                        out)
    assert summary, out
    read, matches, hits, alerts = (int(g.replace(",", "")) for g in summary.groups())
    assert read > 2000 and matches > 100 and hits > 0 and alerts > 10
    local = re.search(r"^\| local, --workers 1 \|(.*)\|$", out, re.M)
    on_ray = re.search(r"^\| Ray, 1 CPU\(s\) \|(.*)\|$", out, re.M)
    assert local and on_ray, out
    cells = [c.strip() for c in on_ray.group(1).split("|")]
    assert cells[-1] == "same"  # records, matches per rule, detector hits and alert ids equal to the local hunt's
    for cell in cells[:7]:  # wall median and each, CPU, driver CPU, events/s, MB/s, events per CPU-s
        assert re.fullmatch(NUMBER, cell), cells
    assert re.fullmatch(rf"{NUMBER} / {NUMBER}", cells[7]), cells  # peak RSS: driver / largest worker
    assert re.fullmatch(rf"{NUMBER}x", cells[8]) and re.fullmatch(rf"{NUMBER}x", cells[9]), cells
    assert float(cells[2]) > float(cells[3]) > 0  # the cluster's workers spent CPU beside the driver
    assert int(cells[10]) >= 1  # the job's worker processes
    assert "every run (local and Ray, every CPU count) gave the same result: yes" in out
    web = re.search(r"^\| gen_web \(2,000\) \|(.*)\|$", out, re.M)
    assert web, out
    assert all(re.fullmatch(NUMBER, c.strip()) for c in web.group(1).split("|")), web.group(1)
    assert "one province: 0.58 MB/s on average" in out and "63 provinces: 3.15 TB/day" in out
