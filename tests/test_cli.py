"""The command line, run as a user runs it: real files in, Parquet and a summary out."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import polars as pl

from tests.conftest import ROOT

LINE = '10.0.0.1 - - [10/Oct/2025:13:55:36 +0700] "GET /x HTTP/1.1" 404 5 "-" "x"\n'


def soc(*args: str, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "400"}  # tmp_path's input rows unwrapped (xdist's are 10 characters longer)
    return subprocess.run([sys.executable, "-m", "soc", *args], input=stdin, capture_output=True, cwd=cwd,
                          env=env, timeout=300, check=False)


def test_parse_writes_family_datasets_and_dead_letters(tmp_path):
    log = tmp_path / "nginx" / "access.log.gz"
    log.parent.mkdir()
    log.write_bytes(gzip.compress((LINE * 5 + "not a log line\n").encode()))
    out = tmp_path / "out"
    res = soc("parse", str(tmp_path / "nginx"), "-o", str(out), "--json")
    assert res.returncode == 0, res.stderr.decode()
    (summary,) = json.loads(res.stdout)
    assert (summary["read"], summary["parsed"], summary["dead_lettered"]) == (6, 5, 1)
    assert summary["format"] == "web_access" and summary["events"] == {"web": 5}
    web = pl.read_parquet(out / "web" / "nginx.access")
    assert web.height == 5 and web["url.original"].to_list() == ["/x"] * 5
    dead = pl.read_parquet(out / "dead_letters")
    assert dead.row(0, named=True) == {
        "log.file.path": str(log), "log.line": 6, "log.offset": len(LINE) * 5,
        "error.message": "fewer than 7 fields", "event.original": b"not a log line",
    }


def test_stdin_and_forced_format(tmp_path):
    res = soc("hunt", "-", "--format", "web_access", "--json", "--data-dir", str(tmp_path), stdin=LINE.encode())
    assert res.returncode == 0, res.stderr.decode()
    assert json.loads(res.stdout)["files"][0]["parsed"] == 1


def test_unknown_format_is_skipped_with_the_formats_tried(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nworld\n")
    log = tmp_path / "access.log"
    log.write_text(LINE)
    res = soc("hunt", str(junk), str(log), "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr.decode()
    assert b"format not recognised (tried: " in res.stderr and b"web_access" in res.stderr
    res = soc("hunt", str(junk), "--data-dir", str(tmp_path / "d"))  # nothing at all was read: not a clean run
    assert res.returncode == 2 and b"nothing was read" in res.stderr, res.stderr.decode()
    res = soc("hunt", str(junk), "--strict", "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 2 and b"error: " in res.stderr


def _folder_with_documents(tmp_path):
    """A log beside what often lies next to logs: a README, a LICENSE, a PDF (binary)."""
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "access.log").write_text(LINE * 3)
    (folder / "README.md").write_text("# Logs of web01\n\nCopied on 2026-11-23 for the audit. Ask the SOC.\n")
    (folder / "LICENSE").write_text("MIT License\n\nPermission is hereby granted, free of charge, to any person\n"
                                    "obtaining a copy of this software.\n")
    (folder / "report.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
                                        + bytes(range(256)) * 4 + b"\n%%EOF\n")
    return folder


def test_files_that_are_not_logs_are_skipped_not_errors(tmp_path):
    folder = _folder_with_documents(tmp_path)
    res = soc("hunt", str(folder), "--json", "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr.decode()
    files = {os.path.basename(f["path"]): f for f in json.loads(res.stdout)["files"]}
    assert files["access.log"]["parsed"] == 3 and files["access.log"]["skipped"] is None
    for name in ("README.md", "LICENSE", "report.pdf"):
        assert files[name]["skipped"].startswith("format not recognised"), files[name]
        assert files[name]["error"] is None and files[name]["read"] == 0
    warnings = [line for line in res.stderr.decode().splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3 and all("skipped" in w for w in warnings), warnings
    assert "error:" not in res.stderr.decode()


def test_skipped_files_in_the_summary_table_and_strict_makes_them_errors(tmp_path):
    folder = _folder_with_documents(tmp_path)
    res = soc("parse", str(folder), "-o", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr.decode()
    rows = [line for line in res.stdout.decode().splitlines() if " skipped " in line]
    assert len(rows) == 3 and all("format not recognised" in r for r in rows), res.stdout.decode()
    res = soc("parse", str(folder), "-o", str(tmp_path / "out2"), "--strict", "--json")
    assert res.returncode == 2
    files = {os.path.basename(f["path"]): f for f in json.loads(res.stdout)}
    assert files["access.log"]["parsed"] == 3 and files["README.md"]["skipped"].startswith("format not")
    assert res.stderr.decode().count("error: ") == 3


def test_a_file_forced_with_format_that_does_not_parse_gives_dead_letters(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# not a log\nat all\n")
    res = soc("hunt", str(readme), "--format", "web_access", "--json", "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr.decode()
    (f,) = json.loads(res.stdout)["files"]
    assert (f["read"], f["dead_lettered"], f["skipped"]) == (2, 2, None)


def test_usage_errors_exit_2(tmp_path):
    assert soc("hunt", str(tmp_path / "nope.log")).returncode == 2
    res = soc("hunt", "-", "--format", "no_such_format", stdin=b"x\n")
    assert res.returncode == 2 and b"unknown format" in res.stderr


def test_summary_table_escapes_terminal_control_sequences(tmp_path):
    evil = tmp_path / "evil\x1b[31mred.log"
    evil.write_text(LINE)
    res = soc("hunt", str(evil), "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr.decode()
    assert b"\x1b[31m" not in res.stdout and b"\\x1b[31mred.log" in res.stdout


def test_summary_counts_records_whatever_the_unit_of_the_input(tmp_path):
    """A record is a line of a text log and an event record of an EVTX file: the table and the dead-letter
    note say records, and the caption says what a record is."""
    log = tmp_path / "access.log"
    log.write_text(LINE * 3 + "not a log line\n")
    res = soc("hunt", str(log), "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    assert "records/s" in out and "lines/s" not in out
    assert "a line of a text log, an event record of an EVTX file" in out
    assert f"1 dead-lettered records kept in {tmp_path / 'd'}/dead_letters/" in out


def test_hunt_runs_on_the_sample_logs(tmp_path):
    res = soc("hunt", str(ROOT / "sample_logs"), "--json", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    report = json.loads(res.stdout)
    stats = report["files"]
    assert {s["format"] for s in stats} >= {"web_access", "iis_w3c", "windows_dns_debug"}
    assert all(s["error"] is None and s["read"] == s["parsed"] + s["dead_lettered"] for s in stats)
    assert all(s["dead_lettered"] == 0 for s in stats)
    # the planted attacks (README.md, "Sample logs"), found by the detectors, and nothing else
    found = {(h["rule.id"], h["source.ip"]) for h in report["detectors"]["found"]}
    assert found == {("soc-ssh-brute-force", "203.0.113.45"), ("soc-web-scan", "198.51.100.23"),
                     ("soc-firewall-admin-brute-force", "192.0.2.77"),
                     ("soc-firewall-admin-brute-force", "198.51.100.66"), ("soc-port-scan", "198.51.100.66"),
                     ("soc-smtp-auth-brute-force", "203.0.113.99"), ("soc-dns-tunnel", "10.20.3.77")}
    assert report["sigma"]["matches"] > 0 and report["sigma"]["by_rule"]
    assert report["alerts"]["alerts"] > 0 and report["alerts"]["stored_new"] == report["alerts"]["alerts"]


def test_help_imports_no_heavy_library():
    """``soc --help`` stays fast because Polars, Numba and PyArrow are imported only by the commands."""
    code = ("import sys; from click.testing import CliRunner; from soc.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('polars', 'numba', 'pyarrow', 'numpy', 'rich') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_planted_attacks_of_the_sample_logs_parse_into_their_families(tmp_path):
    """The demo's planted attacks arrive as the events detectors will need (detection comes later)."""
    from soc.sinks.parquet import read_family

    out = tmp_path / "out"
    res = soc("parse", str(ROOT / "sample_logs"), "-o", str(out), "--json")
    assert res.returncode == 0, res.stderr.decode()
    auth = read_family(out, "authentication").collect()
    ssh = auth.filter((pl.col("source.ip") == "203.0.113.45") & (pl.col("event.outcome") == "failure"))
    assert set(ssh["event.dataset"].to_list()) == {"system.auth"}
    assert ssh["event.count"].sum() >= 80  # 80 attempts, some logged as "message repeated N times"
    assert {"root", "admin", "oracle"} <= set(ssh["user.name"].to_list())
    fgt = auth.filter(pl.col("source.ip") == "192.0.2.77")
    assert fgt.height == 25 and set(fgt["event.action"].to_list()) == {"admin_login"}
    assert set(fgt["event.outcome"].to_list()) == {"failure"}
    web = read_family(out, "web").collect()
    scan = web.filter(pl.col("source.ip") == "198.51.100.23")
    assert scan.height == 181 and (scan["http.response.status_code"] >= 400).all()
    assert {"nginx.access", "iis.access"} == set(web["event.dataset"].to_list())


def test_the_cli_process_reuses_freed_memory_where_malloc_is_glibc():
    """``soc.runtime.reuse_freed_memory`` (called by every command) takes on glibc and says no elsewhere."""
    import platform

    from soc.runtime import reuse_freed_memory

    assert reuse_freed_memory() is (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc")


def test_a_run_keeps_its_setup_out_of_full_collections_and_gives_it_back():
    """``soc.runtime.setup_kept``: objects alive when the data starts flowing are frozen (a full collection
    does not walk them) during the run, and handed back to the collector after it; a caller's own frozen
    objects stay frozen."""
    import gc

    from soc.runtime import setup_kept

    gc.unfreeze()  # what earlier tests of this process froze for good (soc.sigma.hunt.hunter_for freezes its rules)
    before = gc.get_freeze_count()
    with setup_kept():
        assert gc.get_freeze_count() > before + 1000  # this test process's modules at least
    assert gc.get_freeze_count() == before
    gc.freeze()  # a caller that keeps objects frozen itself
    try:
        kept = gc.get_freeze_count()
        with setup_kept():
            pass
        assert gc.get_freeze_count() >= kept > 1000
    finally:
        gc.unfreeze()


def test_the_cli_process_collects_cyclic_garbage_less_often():
    """``soc.runtime.collect_less_often`` (called by every command): the young generation is looked at every
    ``GC_YOUNG`` allocations, not Python's 700 (a run's start-up makes long-lived objects, little garbage)."""
    from soc.runtime import GC_MIDDLE, GC_YOUNG

    code = ("import atexit, gc, sys; atexit.register(lambda: print(*gc.get_threshold()[:2]));"
            "from soc.cli import main; sys.argv = ['soc', 'formats']; main()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert res.stdout.decode().split()[-2:] == [str(GC_YOUNG), str(GC_MIDDLE)] != ["700", "10"]


def _stats(path, **kw):
    from datetime import UTC, datetime

    from soc.pipeline import SourceStats

    base = {"format": "windows_evtx", "read": 10, "parsed": 10, "bytes": 1000, "seconds": 0.01,
            "first": datetime(2026, 1, 1, tzinfo=UTC), "last": datetime(2026, 1, 2, tzinfo=UTC)}
    return SourceStats(path, **{**base, **kw})


def test_summary_of_many_inputs_gives_totals_per_folder_and_format_and_what_needs_attention():
    """Hundreds of inputs: a row per folder and format with its totals, a row for each input with dead
    letters, an error or skipped (names escaped), a total, and a note that --json lists every input."""
    from soc.sinks.terminal import summary_table

    stats = [_stats(f"/cases/host{h}/f{i}.evtx") for h in (1, 2) for i in range(200)]
    stats += [_stats("/cases/host1/web.log", format="web_access", read=5, parsed=5),
              _stats("/cases/host2/evil\x1b[31m.evtx", read=12, parsed=9, dead=3),
              _stats("/cases/host2/cut.evtx", read=4, parsed=4, error="truncated file"),
              _stats("/cases/README.md", read=0, parsed=0, skipped="format not recognised (tried: a, b)")]
    out = summary_table(stats, "soc hunt", width=200)
    lines = out.splitlines()
    assert "\x1b" not in out and "evil\\x1b[31m.evtx" in out
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 3 + 3 + 1  # 3 groups, 3 inputs needing attention, the total
    assert any("/cases/host1/ (200 inputs)" in r and "2,000" in r for r in rows)
    assert any("/cases/host2/ (201 inputs)" in r and "2,012" in r and "│             3 │" in r for r in rows)
    assert any("/cases/host1/ (1 input)" in r and "web_access" in r for r in rows)
    assert any("cut.evtx" in r and "error" in r and "truncated file" in r for r in rows)
    assert any("README.md" in r and " skipped " in r and "format not recognised" in r and "tried" not in r
               for r in rows)
    total = next(r for r in rows if r.startswith("│ total"))
    assert "4,017" in total and "4,014" in total  # the inputs read (errors and skipped inputs aside)
    assert "`--json` lists every input" in out and "f17.evtx" not in out


def test_summary_of_a_few_inputs_has_a_row_each_and_wraps_to_the_width():
    from soc.sinks.terminal import summary_table

    stats = [_stats(f"/cases/{'x' * 60}/f{i}.evtx") for i in range(3)]
    out = summary_table(stats, "soc hunt", width=100)
    assert all(len(line) <= 100 for line in out.splitlines()[1:])
    assert sum(line.startswith("│ /cases/") for line in out.splitlines()) == 3
    assert "`--json`" not in out


def test_hunt_of_many_files_summarises_them_and_json_lists_every_one(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    for i in range(25):
        (folder / f"access{i}.log").write_text(LINE * 2)
    (folder / "broken.log").write_text(LINE + "not a log line\n")
    res = soc("hunt", str(folder), "--data-dir", str(tmp_path / "d"), "--no-detectors")
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    assert f"{folder}/ (26 inputs)" in out and "broken.log" in out and "access7.log" not in out
    assert "`--json` lists every input" in out
    res = soc("hunt", str(folder), "--data-dir", str(tmp_path / "d"), "--no-detectors", "--json")
    assert len(json.loads(res.stdout)["files"]) == 26


def test_tables_fit_the_width_whatever_the_cells():
    """Wide characters take two columns, long cells wrap (at a space when there is one), every line fits."""
    from soc.sinks.terminal import cells, render_table

    rows = [("世界" * 30, "a b " * 40, "1"), ("x" * 5000, "", "22"), None, ("total", "", "23")]
    out = render_table("t", [("name", "left"), ("what", "left"), ("n", "right")], rows, "cap", width=60)
    lines = out.splitlines()
    assert lines[0] == "t" and lines[-1] == "cap"
    assert all(cells(line) == 60 for line in lines[1:-1]), {cells(line) for line in lines[1:-1]}
    assert sum("世" in line for line in lines) > 1 and "│ total" in out and "├" in out
    assert all(line.split("│")[2].strip().endswith("b") for line in lines if "a b" in line)  # cut at spaces
