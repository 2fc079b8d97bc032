"""Byte ranges of large files for Ray (``soc.distributed.task.RAY_SPLIT_ENGINES``): every line format cut where the
one-process hunt cuts its chunks gives exactly what the whole file gives: the same rows (``log.line`` and
``log.offset`` included), the same dead letters, the same matches, detector hits, counts and alerts.

The ranges run here in this process through the Ray executor's own steps (``partitions`` with Ray's formats,
``run_task`` per range, ``merge_all`` in order): what a Ray task computes, without a cluster (the Ray path itself
is tested in tests/test_distributed_ray.py and tests/test_jobs_ray.py). Real data where ../shared/corpora has it
(Apache access log, Zeek TSV logs); else sample_logs/ and the bench generators."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from soc.distributed import task
from soc.distributed.local import merge_all
from soc.hunt import HuntRequest, run_hunt
from soc.pipeline import Options
from soc.sources import Source, discover
from tests.conftest import CORPORA, ROOT, need
from tests.test_distributed_local import _same, outcome

SAMPLES = ROOT / "sample_logs"
CHUNK = 16 << 10  # small chunks: a few hundred kB make many ranges




def _hunt(inputs, data: Path, options: Options, executor=None, make_runner=None) -> dict:
    report = run_hunt(HuntRequest(list(inputs), str(data), options=options, to_es=False, workers=1,
                                  executor=executor, make_runner=make_runner))
    return outcome(report, data)


class _Rows:
    """Every parsed row of a hunt (what its sink is given), to compare row for row."""

    def __init__(self):
        self.frames: dict[tuple[str, str], list[pl.DataFrame]] = {}

    def add(self, key, frame: pl.DataFrame) -> None:
        self.frames.setdefault(tuple(key), []).append(frame)

    def make_runner(self, specs):
        from soc.detect.runner import DetectorRunner

        rows = self

        class Runner(DetectorRunner):
            def feed(self, key, frame):
                rows.add(key, frame)
                return super().feed(key, frame)

        return Runner(specs)

    def table(self) -> dict[tuple[str, str], pl.DataFrame]:
        return {k: pl.concat(v, how="diagonal_relaxed").sort("log.offset") for k, v in sorted(self.frames.items())}


_TAKEN: list = []  # the frames a task's sink is given, while a test records them: [(key, frame), ...]


@pytest.fixture(autouse=True)
def _setup(monkeypatch):
    monkeypatch.setenv("SOC_CONFIG", "")
    monkeypatch.setattr(task, "SPAN_CHUNKS", 2)
    write = task._Collect.write

    def recorded(self, source_path, family, dataset, frame):
        _TAKEN.append(((family, dataset), frame))
        return write(self, source_path, family, dataset, frame)

    monkeypatch.setattr(task._Collect, "write", recorded)
    _TAKEN.clear()


def _in_ranges(seen: list, rows: _Rows | None = None) -> object:
    """An executor that does what the Ray executor does, its tasks run here: ``seen`` gets the partitions,
    ``rows`` the rows the tasks parsed (line numbers made the file's, as the driver makes them)."""

    def run(sources, stages, on_bytes):
        specs = None if stages.runner is None else tuple(stages.runner.specs)
        plan = task.HuntPlan((), None, specs, stages.options)
        parts = task.partitions(sources, stages.options, engines=task.RAY_SPLIT_ENGINES)
        seen.append(parts)
        before = [0]  # lines of the ranges before, in the file being cut

        def result(i: int):
            _TAKEN.clear()
            got = task.run_task(plan, parts[i])
            if rows is not None:
                for key, frame in _TAKEN:
                    rows.add(key, frame.with_columns(pl.col("log.line") + before[0]))
            before[0] = before[0] + got.lines if parts[i].span and not parts[i].last else 0
            return got

        stats = merge_all(parts, result, stages.sink, stages.hunter, stages.runner, on_bytes)
        stages.sink.close()
        return stats

    return run


def _compare(path: Path, tmp_path: Path, chunk: int = CHUNK, **options) -> tuple[dict, list]:
    """A whole-file hunt against one in ranges: the same everything, rows included; (the whole one, partitions)."""
    opts = Options(chunk_size=chunk, **options)
    seen: list = []
    got = []
    for name in ("whole", "ranges"):
        rows = _Rows()
        data = tmp_path / name
        executor, making = (None, rows.make_runner) if name == "whole" else (_in_ranges(seen, rows), None)
        got.append((_hunt([str(path)], data, opts, executor, making), rows.table()))
    (one, rows_one), (two, rows_two) = got
    assert rows_one.keys() == rows_two.keys() and rows_one
    for key, frame in rows_one.items():
        assert frame.equals(rows_two[key]), key
    _same(one, two)
    parts = seen[-1]
    assert len(parts) >= 3 and all(p.span for p in parts), [p.sources for p in parts]
    return one, parts


def _spoilt(lines: list[bytes], every: int, bad: bytes = b"this line is no log\n") -> bytes:
    return b"".join(bad if i % every == every // 2 else line for i, line in enumerate(lines))


def _dead(one: dict) -> pl.DataFrame:
    return pl.concat(one["dead"].values()) if one["dead"] else pl.DataFrame()


def test_a_real_apache_access_log_in_ranges(tmp_path):
    """10,000 real Apache lines (line 8899 has an unterminated quote: read by the irregular pattern), the lines of
    sample_logs' access log (its planted attacks: matches, detector hits) among them, and lines that do not parse."""
    real = need(CORPORA / "logs" / "apache_combined_elastic_examples.log", "Apache access log (../shared/corpora)")
    planted = (SAMPLES / "web" / "nginx" / "access.log").read_bytes().splitlines(keepends=True)
    lines = real.read_bytes().splitlines(keepends=True)
    lines = [x for i, line in enumerate(lines) for x in (line, *planted[i:i + 1])]
    path = tmp_path / "access.log"
    path.write_bytes(_spoilt(lines, 500))
    one, parts = _compare(path, tmp_path, 64 << 10)
    assert one["stats"][0]["read"] == len(lines) and one["stats"][0]["format"] == "web_access"
    dead = _dead(one)
    assert dead.get_column("log.line").to_list() == [i + 1 for i in range(len(lines)) if i % 500 == 250]
    assert one["matches"].height > 0 and one["hits"].height > 0 and one["alerts"]
    assert len(parts) >= 10


def test_real_zeek_tsv_logs_in_ranges_replay_their_headers(tmp_path):
    """Two real Zeek logs in one file (rdp then weird: two header blocks, each with its own #path and #fields),
    with data lines of a wrong field count: each range is read with the header lines before it."""
    need(CORPORA / "zeek" / "weird.log.gz", "Zeek logs (../shared/corpora/zeek)")
    blocks = [gzip.decompress((CORPORA / "zeek" / f"{name}.log.gz").read_bytes()).splitlines(keepends=True)
              for name in ("rdp", "weird")]
    path = tmp_path / "zeek.log"
    path.write_bytes(b"".join(b"".join(line if i % 1000 != 500 else b"only\ttwo fields\n" for i, line in enumerate(b))
                              for b in blocks))
    one, parts = _compare(path, tmp_path, 128 << 10)
    records = sum(1 for b in blocks for line in b if not line.startswith(b"#"))
    assert one["stats"][0]["read"] == records and one["stats"][0]["format"] == "zeek"
    assert one["stats"][0]["events"]
    assert len(_dead(one)) == sum(1 for b in blocks for i in range(len(b)) if i % 1000 == 500)
    preludes = [p.sources[0].prelude for p in parts]
    assert preludes[0] == b"" and all(b"#fields" in p for p in preludes[1:])
    assert b"#path\tweird" in preludes[-1] and b"#path\trdp" in preludes[1]
    assert len(parts) >= 10


def test_iis_w3c_blocks_with_other_fields_in_ranges(tmp_path):
    """An IIS log whose second half has another #Fields: order (a restart with another configuration): each
    range is read with the #Fields: before it."""
    lines = (SAMPLES / "web" / "iis" / "u_ex261120.log").read_bytes().splitlines(keepends=True)

    def reordered(line: bytes) -> bytes:
        if line.startswith(b"#Fields: "):
            return b"#Fields: " + b" ".join(reversed(line[9:].split())) + b"\n"
        return line if line.startswith(b"#") else b" ".join(reversed(line.split())) + b"\n"

    path = tmp_path / "u_ex.log"
    path.write_bytes(_spoilt(lines * 4, 97, b"2026-11-20 broken\n") + _spoilt([reordered(x) for x in lines] * 4, 89,
                                                                                b"2026-11-21 broken\n"))
    one, parts = _compare(path, tmp_path)
    assert one["stats"][0]["format"] == "iis_w3c" and len(_dead(one)) > 10
    assert all(b"#Fields:" in p.sources[0].prelude for p in parts[1:])
    assert reordered(next(x for x in lines if x.startswith(b"#Fields:"))) in parts[-1].sources[0].prelude


@pytest.mark.parametrize("name", ["firewall/fortigate.log", "firewall/cisco_asa.log", "linux/auth.log",
                                  "mail/mail.log", "dns/dns.log"])
def test_sample_logs_of_every_line_engine_in_ranges(tmp_path, name):
    """kv (FortiGate), syslog (Cisco ASA, sshd, postfix) and regex (Windows DNS debug log) lines, with lines that
    do not parse among them."""
    lines = (SAMPLES / name).read_bytes().splitlines(keepends=True)
    path = tmp_path / Path(name).name
    path.write_bytes(_spoilt(lines * max(1, 400_000 // (SAMPLES / name).stat().st_size), 61, b"\x01 no log\n"))
    one, _ = _compare(path, tmp_path)
    assert one["stats"][0]["read"] == path.read_bytes().count(b"\n") - (0 if name != "dns/dns.log" else 0)
    assert len(_dead(one)) > 0


@pytest.mark.parametrize("name", ["cef", "apache_error", "nginx_error", "iptables", "zeek_json"])
def test_conformance_lines_of_other_formats_in_ranges(tmp_path, name):
    """CEF (the input's time where a record has none: the file's mtime, the same in every range), the regex formats
    (Apache and nginx error logs), iptables through syslog and Zeek JSON: their conformance lines many times over,
    with lines that do not parse, the format given."""
    import json

    cases = json.loads((ROOT / "tests" / "conformance" / name / "cases.json").read_text(encoding="utf-8"))
    lines = [x.rstrip("\n").encode() + b"\n" for c in cases for x in (c["input"] if isinstance(c["input"], list)
                                                                     else [c["input"]])]
    path = tmp_path / f"{name}.log"
    path.write_bytes(_spoilt(lines * (300_000 // len(b"".join(lines))), 53, b"\x01 no log\n"))
    one, _ = _compare(path, tmp_path, format=name)
    assert one["stats"][0]["format"] == name and len(_dead(one)) > 0
    assert one["stats"][0]["read"] == path.read_bytes().count(b"\n")


def test_suricata_json_lines_in_ranges_a_json_array_whole(tmp_path):
    """Suricata EVE JSON lines (some broken, one starting with '[') are cut, never before a line starting with '['
    (the JSON engine would take the range for an array); a JSON array over many lines is read whole."""
    from bench.gen_suricata import generate

    made = tmp_path / "made.json"
    generate(str(made), 2000)
    lines = made.read_bytes().splitlines(keepends=True)
    path = tmp_path / "eve.json"
    path.write_bytes(_spoilt(lines, 101, b"[not an array\n"))
    data = path.read_bytes()  # the line at the third range's start made one that starts with '[' (same length)
    at = task._chunk_starts(str(path), 0, len(data), CHUNK)[4]
    end = data.index(b"\n", at)
    path.write_bytes(data[:at] + b"[" + b"x" * (end - at - 1) + data[end:])
    one, parts = _compare(path, tmp_path)
    assert at not in [p.sources[0].start for p in parts]
    assert len(_dead(one)) == sum(1 for i in range(len(lines)) if i % 101 == 50) + 1
    assert one["stats"][0]["format"] == "suricata_eve" and one["stats"][0]["read"] == len(lines)
    starts = [p.sources[0].start for p in parts[1:]]
    assert all(path.read_bytes()[s:s + 1] == b"{" for s in starts)

    array = tmp_path / "array.json"
    array.write_bytes(b"[\n" + b",\n".join(line.rstrip(b"\n") for line in lines) + b"\n]\n")
    assert len(task.partitions(discover([str(array)]), Options(chunk_size=CHUNK),
                               engines=task.RAY_SPLIT_ENGINES)) == 1


def test_syslog_ranges_take_the_same_year_across_new_year(tmp_path):
    """Year-less syslog stamps take the year of the file's mtime (earlier if they would lie more than a day after
    it): every range is read against the same mtime (``Source.mtime``), so lines of 31 December in one range and
    of 1 January in another get 2026 and 2027, as in the whole file."""
    lines = []
    for i in range(6000):
        day, hour = ("Dec 31", 23) if i < 3000 else ("Jan  1", 0)
        lines.append(f"{day} {hour:02d}:{i // 60 % 60:02d}:{i % 60:02d} web01 sshd[{100 + i}]: Failed password for "
                     f"invalid user u{i % 7} from 203.0.113.{i % 200} port {40000 + i} ssh2\n".encode())
    path = tmp_path / "auth.log"
    path.write_bytes(b"".join(lines))
    mtime = datetime(2027, 1, 2, tzinfo=UTC).timestamp()
    os.utime(path, (mtime, mtime))
    seen: list = []
    rows = _Rows()
    run_hunt(HuntRequest([str(path)], str(tmp_path / "r"), options=Options(chunk_size=CHUNK), to_es=False,
                         workers=1, executor=_in_ranges(seen, rows)))
    stamps = pl.concat([f.select("log.line", "@timestamp") for fs in rows.frames.values() for f in fs])
    years = stamps.sort("log.line").get_column("@timestamp").dt.convert_time_zone("Asia/Ho_Chi_Minh").dt.year()
    assert years.len() == 6000 and years.to_list() == [2026] * 3000 + [2027] * 3000
    parts = seen[0]
    assert parts[0].sources[0].end < len(b"".join(lines[:3000])) < parts[-1].sources[0].start
    one, _ = _compare(path, tmp_path)
    assert one["stats"][0]["read"] == 6000


def test_a_job_s_window_is_cut_from_its_start(tmp_path):
    """A job's read of what was appended (``start`` to ``end``, its first line, the Zeek header replayed) cut in
    ranges gives what the window read whole gives: line numbers and offsets of the whole file."""
    need(CORPORA / "zeek" / "rdp.log.gz", "Zeek logs (../shared/corpora/zeek)")
    data = gzip.decompress((CORPORA / "zeek" / "rdp.log.gz").read_bytes())
    path = tmp_path / "rdp.log"
    path.write_bytes(data)
    header = b"".join(line for line in data.splitlines(keepends=True)[:8])
    start = data.index(b"\n", len(data) // 3) + 1
    end = data.rindex(b"\n", 0, len(data) - 1000) + 1
    st = path.stat()
    window = Source(str(path), end - start, st.st_mtime, start=start, first_line=data[:start].count(b"\n") + 1,
                    end=end, prelude=header, format="zeek")
    options = Options(chunk_size=CHUNK)
    parts = task.partitions([window], options, engines=task.RAY_SPLIT_ENGINES)
    assert len(parts) >= 3 and parts[0].sources[0].start == start and parts[-1].sources[0].end == end
    assert all(p.sources[0].prelude == header and p.sources[0].first_line == window.first_line for p in parts)
    seen: list = []
    one = _hunt([window], tmp_path / "one", options)
    two = _hunt([window], tmp_path / "two", options, _in_ranges(seen))
    assert len(seen[0]) == len(parts)
    assert one["stats"][0]["read"] == data[start:end].count(b"\n")
    _same(one, two)
    if one["matches"].height:
        assert one["matches"].get_column("log.line").min() >= window.first_line


def test_the_local_hunt_cuts_as_before():
    """Without Ray's formats, ``partitions`` cuts only SPLIT_ENGINES' (the local ``--workers`` path is unchanged)."""
    path = SAMPLES / "firewall" / "fortigate.log"
    options = Options(chunk_size=CHUNK)
    assert len(task.partitions(discover([str(path)]), options)) == 1
    assert len(task.partitions(discover([str(path)]), options, engines=task.RAY_SPLIT_ENGINES)) >= 3


def test_header_lines_before_each_range(tmp_path):
    """``_headers``: the lines that start with '#' before each range (not a '#' inside a line), the last
    ``HEADER_LINES`` of them, after a job's prelude."""
    path = tmp_path / "h.log"
    lines = [b"#a 1\n", b"x#y\n", b"#b 2\n", b"z\n", b"# c\n", b"#d\n", b"w #\n"]
    path.write_bytes(b"".join(lines))
    starts = [sum(map(len, lines[:i])) for i in range(len(lines) + 1)]
    bounds = [starts[0], starts[2], starts[4], starts[6], starts[7]]
    assert task._headers(str(path), bounds, b"#p\n") == [b"#p\n", b"#p\n#a 1\n", b"#p\n#a 1\n#b 2\n",
                                                        b"#p\n#a 1\n#b 2\n# c\n#d\n"]
    assert task._headers(str(path), bounds[1:], b"") == [b"", b"#b 2\n", b"#b 2\n# c\n#d\n"]
    many = tmp_path / "many.log"
    many.write_bytes(b"".join(b"#%d\n" % i for i in range(100)) + b"data\n")
    got = task._headers(str(many), [0, many.stat().st_size - 5, many.stat().st_size], b"")
    assert got[1] == b"".join(b"#%d\n" % i for i in range(100 - task.HEADER_LINES, 100))


def test_a_windows_json_range_counts_its_lines_as_read(tmp_path, monkeypatch):
    """The lines of a Windows JSON range (``TaskResult.lines``: what the driver adds to the line numbers of the
    ranges after it) are its lines read, with blank, CRLF, whitespace-only and broken lines among them, not
    counted again; another format's are counted again. Both are the range's ``\\n`` bytes."""
    from bench.gen_nxlog_windows import generate

    made = tmp_path / "made.json"
    generate(str(made), 600)
    odd = {50: b"\n", 51: b"\n", 120: b"{broken json\n", 300: b"  \r\n", 301: b"[1, 2]\n"}
    lines = [odd.get(i, line.replace(b"\n", b"\r\n") if i % 7 == 3 else line)
             for i, line in enumerate(made.read_bytes().splitlines(keepends=True))]
    path = tmp_path / "nxlog.json"
    path.write_bytes(b"".join(lines))
    opts = Options(chunk_size=CHUNK)
    parts = task.partitions(discover([str(path)]), opts)
    assert len(parts) >= 3 and all(p.span for p in parts)
    counted: list = []
    recount = task._newlines
    monkeypatch.setattr(task, "_newlines", lambda *a: counted.append(a) or recount(*a))
    plan = task.HuntPlan((), None, None, opts)
    got = [task.run_task(plan, part) for part in parts]
    assert not counted  # read, not counted again
    assert [g.lines for g in got] == [recount(p.sources[0].path, p.sources[0].start, p.sources[0].end) for p in parts]
    assert sum(g.lines for g in got) == len(lines) and sum(g.stats[0].dead for g in got) >= 2
    access = tmp_path / "access.log"
    access.write_bytes((SAMPLES / "web" / "nginx" / "access.log").read_bytes() * 20)
    web = task.partitions(discover([str(access)]), opts, engines=task.RAY_SPLIT_ENGINES)
    assert len(web) >= 3 and web[0].span
    assert task.run_task(plan, web[0]).lines == access.read_bytes()[web[0].sources[0].start:
                                                                     web[0].sources[0].end].count(b"\n")
    assert counted  # a format not of COUNTED_ENGINES: counted again
