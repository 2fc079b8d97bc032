"""Incremental reading with checkpoints (soc.jobs.checkpoints): rotation, copytruncate, compressed copies,
new and deleted files, partial lines, and the rows of runs over a growing log equal to a whole-file parse."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import polars as pl
import pytest

from soc import pipeline
from soc.jobs.checkpoints import Checkpoints, RegistryError

ROOT = Path(__file__).resolve().parent.parent
AUTH = ROOT / "sample_logs" / "linux" / "auth.log"
IIS = ROOT / "sample_logs" / "web" / "iis" / "u_ex261120.log"
OPTIONS = pipeline.Options(year=2026)


class Collect(pipeline.Sink):
    def __init__(self):
        self.frames: dict[tuple[str, str], list[pl.DataFrame]] = {}
        self.dead: list[pl.DataFrame] = []

    def write(self, source_path, family, dataset, frame):
        self.frames.setdefault((family, dataset), []).append(frame)

    def write_dead(self, source_path, dead):
        if dead.height:
            self.dead.append(dead)


def parse(sources) -> tuple[dict[tuple[str, str], pl.DataFrame], list]:
    sink = Collect()
    stats = pipeline.run(sources, sink, OPTIONS)
    return {k: pl.concat(v, how="diagonal_relaxed") for k, v in sink.frames.items()}, stats


def step(reg: Path, inputs: list[str], stats_too: bool = True):
    """One job run: load, plan, read, advance, save; (sources read, frames, stats)."""
    cp = Checkpoints.load(reg)
    plan = cp.plan(inputs)
    frames, stats = parse(plan.sources) if plan.sources else ({}, [])
    cp.advance(plan, stats if stats_too else None)
    cp.save()
    return plan, frames, stats


def rows(frames: dict) -> pl.DataFrame:
    """Every parsed row of a run, in file order."""
    return pl.concat([f for f in frames.values() if f.height], how="diagonal_relaxed").sort("log.offset")


def lines_read(stats) -> int:
    return sum(s.read for s in stats)


def whole_vs_steps(tmp_path: Path, data: bytes, cuts: list[int]):
    """The rows of ``data`` parsed whole against the rows of runs over the same file grown to each cut."""
    log = tmp_path / "app.log"
    reg = tmp_path / "state" / "registry.json"
    parts: dict[tuple[str, str], list[pl.DataFrame]] = {}
    read = 0
    with open(log, "wb") as fh:
        for lo, hi in zip([0, *cuts], [*cuts, len(data)], strict=True):
            fh.write(data[lo:hi])
            fh.flush()
            _, frames, stats = step(reg, [str(log)])
            read += lines_read(stats)
            for k, v in frames.items():
                parts.setdefault(k, []).append(v)
    whole, stats = parse([pipeline.Source(str(log), len(data), log.stat().st_mtime)])
    assert read == lines_read(stats)
    assert set(parts) == set(whole)
    for key, frame in whole.items():
        got = pl.concat(parts[key], how="diagonal_relaxed").select(frame.columns)
        assert got.height == frame.height
        assert got.equals(frame), key
    return whole


def test_three_appended_steps_give_the_rows_of_a_whole_parse(tmp_path):
    data = AUTH.read_bytes()
    third = len(data) // 3
    cuts = [third + 17, 2 * third + 5]  # inside lines: each partial last line waits for the next run
    assert data[cuts[0] - 1: cuts[0]] != b"\n"
    whole = whole_vs_steps(tmp_path, data, cuts)
    frame = next(iter(whole.values()))
    assert frame["log.line"].to_list() == sorted(frame["log.line"].to_list())
    assert frame["log.line"].max() > 300  # line numbers went on across runs


def reversed_w3c(data: bytes) -> bytes:
    """The IIS sample with its fields in reverse order: no default layout reads it without its #Fields."""
    out = []
    for line in data.splitlines():
        if line.startswith(b"#Fields: "):
            line = b"#Fields: " + b" ".join(line[9:].split()[::-1])
        elif not line.startswith(b"#"):
            line = b" ".join(line.split()[::-1])
        out.append(line + b"\n")
    return b"".join(out)


def test_header_lines_are_replayed_for_a_resumed_w3c_log(tmp_path):
    data = reversed_w3c(IIS.read_bytes())
    lines = data.splitlines(keepends=True)
    cuts = [len(b"".join(lines[:50])), len(b"".join(lines[:200]))]  # the second run's range spans a new header
    whole = whole_vs_steps(tmp_path, data, cuts)
    assert sum(f.height for f in whole.values()) > 250


def test_partial_last_line_is_read_once_whole(tmp_path):
    log = tmp_path / "auth.log"
    reg = tmp_path / "reg.json"
    first, second = AUTH.read_bytes().splitlines(keepends=True)[:2]
    log.write_bytes(first + second[:20])
    plan, frames, stats = step(reg, [str(log)])
    assert lines_read(stats) == 1 and plan.sources[0].end == len(first)
    plan, frames, stats = step(reg, [str(log)])
    assert plan.sources == [] and lines_read(stats) == 0  # still no newline: waits
    with open(log, "ab") as fh:
        fh.write(second[20:])
    plan, frames, stats = step(reg, [str(log)])
    assert lines_read(stats) == 1
    frame = rows(frames)
    assert frame["log.line"].to_list() == [2] and frame["log.offset"].to_list() == [len(first)]
    assert frame["message"].to_list() == [second.decode().split(": ", 1)[1].rstrip("\n")]  # the whole line
    assert step(reg, [str(log)])[0].sources == []


def test_rotation_by_rename_reads_the_old_file_to_its_end_and_the_new_from_zero(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:100]))
    step(reg, [str(log)])
    with open(log, "ab") as fh:  # written before the rotation, not read yet
        fh.write(b"".join(lines[100:120]))
    ino = log.stat().st_ino
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes(b"".join(lines[120:130]))
    plan, frames, stats = step(reg, [str(log)])  # the input names app.log only: app.log.1 found by inode
    got = {s.path: (s.start, s.first_line, s.end) for s in plan.sources}
    assert got == {str(tmp_path / "app.log.1"): (len(b"".join(lines[:100])), 101, len(b"".join(lines[:120]))),
                   str(log): (0, 1, len(b"".join(lines[120:130])))}
    assert [s.path for s in plan.sources][0].endswith("app.log.1")  # the older data first
    assert plan.reasons[str(tmp_path / "app.log.1")] == f"renamed from {log}"
    assert lines_read(stats) == 30
    reg_files = json.loads(reg.read_text())["files"]
    assert {(f["path"], f["line"]) for f in reg_files} == {(str(tmp_path / "app.log.1"), 120), (str(log), 10)}
    assert [f for f in reg_files if f["path"].endswith(".1")][0]["ino"] == ino  # identity kept across the rename
    # renamed again (logrotate shifts the numbers): still the same file, nothing to read
    os.rename(tmp_path / "app.log.1", tmp_path / "app.log.2")
    plan, _, stats = step(reg, [str(tmp_path / "app.log*")])
    assert plan.sources == [] and lines_read(stats) == 0
    assert {f["path"] for f in json.loads(reg.read_text())["files"]} == {str(log), str(tmp_path / "app.log.2")}


def test_copytruncate_reads_the_copy_from_the_offset_and_the_truncated_file_from_zero(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:100]))
    step(reg, [str(tmp_path / "app.log*")])
    with open(log, "ab") as fh:
        fh.write(b"".join(lines[100:110]))
    (tmp_path / "app.log.1").write_bytes(log.read_bytes())  # copy, then truncate in place
    with open(log, "r+b") as fh:
        fh.truncate(0)
        fh.write(b"".join(lines[110:115]))
    plan, frames, stats = step(reg, [str(tmp_path / "app.log*")])
    got = {Path(s.path).name: (s.start, s.first_line) for s in plan.sources}
    assert got == {"app.log.1": (len(b"".join(lines[:100])), 101), "app.log": (0, 1)}
    assert lines_read(stats) == 15
    offsets = sorted(rows(frames)["log.line"].to_list())
    assert offsets == [1, 2, 3, 4, 5, *range(101, 111)]


def test_shorter_file_or_changed_fingerprint_starts_again(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:50]))
    step(reg, [str(log)])
    with open(log, "r+b") as fh:  # truncated and rewritten past the old offset: the first bytes differ
        fh.truncate(0)
        fh.write(b"".join(lines[60:200]))
    plan, _, stats = step(reg, [str(log)])
    assert [(s.start, s.first_line) for s in plan.sources] == [(0, 1)] and lines_read(stats) == 140


def test_gzip_of_a_rotated_file_already_read_is_not_read_again(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:100]))
    step(reg, [str(tmp_path / "app.log*")])
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes(b"".join(lines[100:110]))
    step(reg, [str(tmp_path / "app.log*")])
    # the rotated file compressed (a new inode) and removed, as logrotate's delaycompress does
    (tmp_path / "app.log.1.gz").write_bytes(gzip.compress((tmp_path / "app.log.1").read_bytes()))
    (tmp_path / "app.log.1").unlink()
    plan, _, stats = step(reg, [str(tmp_path / "app.log*")])
    assert plan.sources == [] and lines_read(stats) == 0
    assert plan.forgotten == []  # app.log.1's checkpoint went on as the .gz's
    names = {Path(f["path"]).name for f in json.loads(reg.read_text())["files"]}
    assert names == {"app.log", "app.log.1.gz"}
    assert step(reg, [str(tmp_path / "app.log*")])[0].sources == []  # and not opened again


def test_gzip_of_a_file_read_in_part_is_read_from_its_offset(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:100]))
    step(reg, [str(tmp_path / "app.log*")])
    (tmp_path / "app.log.1.gz").write_bytes(gzip.compress(b"".join(lines[:130])))  # rotated, compressed at once
    log.unlink()
    log.write_bytes(b"".join(lines[130:135]))
    plan, frames, stats = step(reg, [str(tmp_path / "app.log*")])
    got = {Path(s.path).name: (s.start, s.first_line) for s in plan.sources}
    assert got == {"app.log.1.gz": (len(b"".join(lines[:100])), 101), "app.log": (0, 1)}
    assert lines_read(stats) == 35
    assert sorted(rows(frames)["log.line"].to_list()) == [1, 2, 3, 4, 5, *range(101, 131)]


def test_new_file_matching_a_glob_is_picked_up_and_a_deleted_one_forgotten(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    reg = tmp_path / "reg.json"
    (tmp_path / "a.log").write_bytes(b"".join(lines[:10]))
    glob = str(tmp_path / "*.log")
    step(reg, [glob])
    (tmp_path / "b.log").write_bytes(b"".join(lines[10:15]))
    plan, _, stats = step(reg, [glob])
    assert [Path(s.path).name for s in plan.sources] == ["b.log"] and lines_read(stats) == 5
    assert plan.reasons[str(tmp_path / "b.log")] == "new"
    (tmp_path / "a.log").unlink()
    plan, _, _ = step(reg, [glob])
    assert plan.sources == [] and plan.forgotten == [str(tmp_path / "a.log")]
    assert [Path(f["path"]).name for f in json.loads(reg.read_text())["files"]] == ["b.log"]
    (tmp_path / "b.log").unlink()
    plan, _, _ = step(reg, [glob])
    assert plan.missing == [glob] and json.loads(reg.read_text())["files"] == []


def test_a_failed_read_keeps_its_old_checkpoint(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:10]))
    step(reg, [str(log)])
    with open(log, "ab") as fh:
        fh.write(b"".join(lines[10:20]))
    cp = Checkpoints.load(reg)
    plan = cp.plan([str(log)])
    stats = [pipeline.SourceStats(str(log), error="cannot read: boom")]
    cp.advance(plan, stats)
    cp.save()
    assert [(s.start, s.first_line) for s in Checkpoints.load(reg).plan([str(log)]).sources] == \
        [(len(b"".join(lines[:10])), 11)]


def test_a_crash_between_temp_and_rename_leaves_the_old_registry(tmp_path, monkeypatch):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "state" / "reg.json"
    log.write_bytes(b"".join(lines[:10]))
    step(reg, [str(log)])
    before = reg.read_bytes()
    with open(log, "ab") as fh:
        fh.write(b"".join(lines[10:20]))
    cp = Checkpoints.load(reg)
    cp.advance(cp.plan([str(log)]))

    def crash(*_):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        cp.save()
    monkeypatch.undo()
    assert reg.read_bytes() == before
    assert Checkpoints.load(reg).entries[0].line == 10
    assert not [p for p in (reg.parent / ".tmp").glob("*") if p.is_file()]  # the temporary file removed


@pytest.mark.parametrize("text", ['{"version": 1, "files": [', "[]", '{"version": 1, "files": [{"path": 3}]}',
                                  '{"version": 99, "files": []}', "\x00\x01",
                                  '{"version": 1, "files": [{"path": "x", "dev": 1, "ino": 2, "fp": "%s", '
                                  '"fp_len": 3, "directives": [1]}]}' % ("0" * 64)])
def test_a_corrupted_registry_is_an_error(tmp_path, text):
    reg = tmp_path / "reg.json"
    reg.write_text(text)
    with pytest.raises(RegistryError, match="corrupted"):
        Checkpoints.load(reg)


def test_no_registry_yet_is_a_first_run(tmp_path):
    (tmp_path / "a.log").write_bytes(AUTH.read_bytes())
    plan = Checkpoints.load(tmp_path / "none.json").plan([str(tmp_path / "a.log")])
    assert [(s.start, s.first_line, s.end) for s in plan.sources] == [(0, 1, AUTH.stat().st_size)]


def test_the_format_read_first_is_remembered(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:10]))
    _, _, stats = step(reg, [str(log)])
    with open(log, "ab") as fh:
        fh.write(b"".join(lines[10:12]))
    plan = Checkpoints.load(reg).plan([str(log)])
    assert stats[0].format and plan.sources[0].format == stats[0].format


def test_zeek_tsv_in_steps_gives_the_rows_of_a_whole_parse(tmp_path, corpora):
    """Zeek's TSV header (#separator .. #types) is state: a resumed read replays it (real dns.log)."""
    lines = gzip.decompress((corpora / "zeek" / "dns.log.gz").read_bytes()).splitlines(keepends=True)[:3000]
    data = b"".join(lines)
    whole = whole_vs_steps(tmp_path, data, [len(data) // 3 + 11, 2 * len(data) // 3 + 3])
    assert sum(f.height for f in whole.values()) == 3000 - 8


def test_evtx_unchanged_is_skipped_and_changed_without_new_records_is_not_read(tmp_path, corpora):
    src = next((corpora / "evtx").rglob("ID4624-Mimikatz Pass the hash.evtx"))
    evtx, reg = tmp_path / "Security.evtx", tmp_path / "reg.json"
    evtx.write_bytes(src.read_bytes())
    plan, _, stats = step(reg, [str(evtx)])
    first = lines_read(stats)
    assert first > 0 and [(s.start, s.end, s.records[0]) for s in plan.sources] == [(0, None, 0)]
    assert plan.reasons[str(evtx)] == "new" and Checkpoints.load(reg).entries[0].record == plan.sources[0].records[1]
    plan, _, stats = step(reg, [str(evtx)])
    assert plan.sources == []
    os.utime(evtx, (1, 1))  # written again (the mtime moves), no record after the highest read: nothing to read
    plan, _, stats = step(reg, [str(evtx)])
    assert plan.sources == [] and Checkpoints.load(reg).entries[0].mtime == 1
    assert step(reg, [str(evtx)])[0].sources == []


def test_zstd_copy_of_a_file_read_in_part_goes_on_from_its_offset(tmp_path):
    import zstandard

    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:40]))
    step(reg, [str(tmp_path / "app.log*")])
    (tmp_path / "app.log.1.zst").write_bytes(zstandard.ZstdCompressor().compress(b"".join(lines[:45])))
    log.unlink()
    plan, frames, stats = step(reg, [str(tmp_path / "app.log*")])
    assert [(Path(s.path).name, s.first_line) for s in plan.sources] == [("app.log.1.zst", 41)]
    assert rows(frames)["log.line"].to_list() == [41, 42, 43, 44, 45]
    assert step(reg, [str(tmp_path / "app.log*")])[0].sources == []


def test_a_decompressed_copy_of_a_compressed_file_read_is_not_read_again(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    reg = tmp_path / "reg.json"
    (tmp_path / "old.log.gz").write_bytes(gzip.compress(b"".join(lines[:30])))
    plan, _, stats = step(reg, [str(tmp_path / "old.log*")])
    assert lines_read(stats) == 30
    (tmp_path / "old.log").write_bytes(gzip.decompress((tmp_path / "old.log.gz").read_bytes()))
    (tmp_path / "old.log.gz").unlink()
    plan, _, stats = step(reg, [str(tmp_path / "old.log*")])
    assert plan.sources == [] and lines_read(stats) == 0
    with open(tmp_path / "old.log", "ab") as fh:  # and it goes on from its end
        fh.write(lines[30])
    plan, frames, _ = step(reg, [str(tmp_path / "old.log*")])
    assert rows(frames)["log.line"].to_list() == [31]


def test_one_file_under_two_names_is_read_once(tmp_path):
    (tmp_path / "a.log").write_bytes(AUTH.read_bytes())
    os.link(tmp_path / "a.log", tmp_path / "b.log")
    plan = Checkpoints.load(tmp_path / "reg.json").plan([str(tmp_path / "*.log")])
    assert [Path(s.path).name for s in plan.sources] == ["a.log"]


def test_lines_appended_after_planning_wait_for_the_next_run(tmp_path):
    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:10]))
    cp = Checkpoints.load(reg)
    plan = cp.plan([str(log)])
    with open(log, "ab") as fh:  # written while the run reads
        fh.write(b"".join(lines[10:20]))
    frames, stats = parse(plan.sources)
    assert lines_read(stats) == 10
    cp.advance(plan, stats)
    cp.save()
    assert rows(step(reg, [str(log)])[1])["log.line"].to_list() == list(range(11, 21))


def test_a_file_that_cannot_be_read_keeps_its_checkpoint(tmp_path, monkeypatch):
    from soc.jobs import checkpoints

    lines = AUTH.read_bytes().splitlines(keepends=True)
    log, reg = tmp_path / "app.log", tmp_path / "reg.json"
    log.write_bytes(b"".join(lines[:10]))
    step(reg, [str(log)])
    with open(log, "ab") as fh:
        fh.write(b"".join(lines[10:20]))

    def denied(*_):
        raise PermissionError("permission denied")

    with monkeypatch.context() as m:
        m.setattr(checkpoints, "_scan", denied)
        plan, _, _ = step(reg, [str(log)])
    assert plan.sources == [] and plan.errors == {str(log): "cannot read: permission denied"}
    assert rows(step(reg, [str(log)])[1])["log.line"].to_list() == list(range(11, 21))


def test_a_window_source_reads_its_bytes_numbered_as_the_whole_file(tmp_path):
    from soc.sources import Source, read_chunks

    data = b"".join(b"line %d\n" % i for i in range(1, 101))
    (tmp_path / "a.log").write_bytes(data + b"partial")
    start, end = data.index(b"line 40\n"), data.index(b"line 61\n")
    src = Source(str(tmp_path / "a.log"), end - start, None, start=start, first_line=40, end=end)
    stream, raw = src.open()
    chunks = list(read_chunks(stream, 64, src.start, src.first_line, b"#h\n"))
    assert raw.tell() == end - start  # progress counts the window's bytes
    raw.close()
    assert chunks[0].replay and bytes(chunks[0].data) == b"#h\n"
    assert b"".join(bytes(c.data) for c in chunks[1:]) == data[start:end]
    for c in chunks[1:]:
        assert data[c.offset:].startswith(b"line %d\n" % c.first_line)


# -- EVTX files that grow: the records after the highest id read (issue 20) ------------------------------------

SQL = "ID33205-SQL Server failed login with non existing accounts.evtx"  # 3 chunks: ids 1-27, 28-54, 55-72


def evtx_state(data: bytes, slots: list[int]) -> bytes:
    """An EVTX file of ``data``'s chunks ``slots`` (indices, in this order), its header patched as the writer
    keeps it (last chunk, next record id, chunk count, the header's CRC32): an earlier state of the same log
    (its first chunks), or one whose chunks wrapped around as a ring (a later chunk written over the first)."""
    from zlib import crc32

    from soc.parse.engines.evtx import CHUNK_SIZE, HEADER_SIZE

    chunks = [data[HEADER_SIZE + k * CHUNK_SIZE: HEADER_SIZE + (k + 1) * CHUNK_SIZE] for k in slots]
    newest = max(range(len(slots)), key=lambda i: int.from_bytes(chunks[i][32:40], "little"))
    head = bytearray(data[:HEADER_SIZE])
    head[8:32] = b"".join(n.to_bytes(8, "little") for n in (
        (newest + 1) % len(slots), newest, int.from_bytes(chunks[newest][32:40], "little") + 1))
    head[42:44] = len(slots).to_bytes(2, "little")
    head[120:124] = (int.from_bytes(head[120:124], "little") & ~1).to_bytes(4, "little")  # not dirty
    head[124:128] = crc32(bytes(head[:120])).to_bytes(4, "little")
    return bytes(head) + b"".join(chunks)


def write_in_place(path: Path, data: bytes) -> None:
    """The file's new content under the same inode (a collector copying a grown log over the old copy)."""
    ino = path.stat().st_ino if path.exists() else None
    with open(path, "r+b" if ino is not None else "wb") as fh:
        fh.write(data)
        fh.truncate()
    assert ino is None or path.stat().st_ino == ino


def record_ids(frames: dict) -> list[int]:
    return sorted(rows_by_id(frames).get_column("log.line").to_list()) if frames else []


def rows_by_id(frames: dict) -> pl.DataFrame:
    return pl.concat([f for f in frames.values() if f.height], how="diagonal_relaxed").sort("log.line")


@pytest.fixture
def sql_evtx(corpora) -> bytes:
    return next((corpora / "evtx").rglob(SQL)).read_bytes()


def test_evtx_cut_copy_is_a_valid_earlier_state(tmp_path, sql_evtx):
    import evtx

    from soc.parse.engines.evtx import chunk_ranges

    path = tmp_path / "cut.evtx"
    path.write_bytes(sql_evtx)
    assert [(a, b) for _, a, b in chunk_ranges(str(path))] == [(1, 27), (28, 54), (55, 72)]
    for slots, want in (([0], range(1, 28)), ([0, 1], range(1, 55)), ([2, 1], [*range(55, 73), *range(28, 55)])):
        path.write_bytes(evtx_state(sql_evtx, slots))
        ids = [r["event_record_id"] for r in evtx.PyEvtxParser(str(path)).records()]
        assert ids == list(want)


@pytest.mark.parametrize("alone", [False, True], ids=["with-neighbours", "alone"])
def test_growing_evtx_reads_only_the_new_records(tmp_path, sql_evtx, monkeypatch, alone):
    """A log that grows chunk by chunk (the same inode, written in place): each run reads exactly the records
    after the highest id read before, and the runs' rows are a whole parse's. ``alone``: the file read by
    ``EvtxEngine.read`` (its new chunks only, ``_read_after``) rather than with its neighbours (``read_many``)."""
    from soc.parse.engines.evtx import EvtxEngine

    after: list[tuple[int, int]] = []  # the bounds read by ``_read_after``
    if alone:
        monkeypatch.setattr(EvtxEngine, "small", classmethod(lambda cls, spec, path: None))
        read_after = EvtxEngine._read_after

        def spy(self, path):
            after.append(self.records)
            return read_after(self, path)

        monkeypatch.setattr(EvtxEngine, "_read_after", spy)
    log, reg = tmp_path / "ForwardedEvents.evtx", tmp_path / "reg.json"
    got, bounds = [], []
    for slots, want in (([0], range(1, 28)), ([0, 1], range(28, 55)), ([0, 1, 2], range(55, 73))):
        write_in_place(log, evtx_state(sql_evtx, slots) if len(slots) < 3 else sql_evtx)
        plan, frames, stats = step(reg, [str(log)])
        bounds.append([s.records for s in plan.sources])
        assert record_ids(frames) == list(want)
        assert [(s.read, s.parsed, s.dead, s.error) for s in stats] == [(len(want), len(want), 0, None)]
        got.append(rows_by_id(frames))
    assert bounds == [[(0, 27)], [(27, 54)], [(54, 72)]]
    assert plan.bytes == 4096 + 65536  # the bytes of the chunk read (the run's status says so)
    assert after == ([(27, 54), (54, 72)] if alone else [])
    assert plan.reasons[str(log)] == "grown: records after id 54"
    assert Checkpoints.load(reg).entries[0].record == 72
    whole, _ = parse([pipeline.Source(str(log), None, None)])
    assert pl.concat(got, how="diagonal_relaxed").equals(rows_by_id(whole))
    os.utime(log, (1, 1))  # written again without a new record: nothing read
    assert step(reg, [str(log)])[0].sources == []


@pytest.mark.parametrize("alone", [False, True], ids=["with-neighbours", "alone"])
def test_evtx_wrapped_as_a_ring_reads_the_chunk_written_over_the_oldest(tmp_path, sql_evtx, monkeypatch, alone):
    from soc.parse.engines.evtx import EvtxEngine

    if alone:
        monkeypatch.setattr(EvtxEngine, "small", classmethod(lambda cls, spec, path: None))
    log, reg = tmp_path / "Security.evtx", tmp_path / "reg.json"
    write_in_place(log, evtx_state(sql_evtx, [0, 1]))
    assert record_ids(step(reg, [str(log)])[1]) == list(range(1, 55))
    write_in_place(log, evtx_state(sql_evtx, [2, 1]))  # full: ids 55-72 written over the chunk of 1-27
    plan, frames, stats = step(reg, [str(log)])
    assert [s.records for s in plan.sources] == [(54, 72)] and record_ids(frames) == list(range(55, 73))
    assert [(s.read, s.dead) for s in stats] == [(18, 0)]
    frames, stats = parse([pipeline.Source(str(log), None, None, records=(0, 60))])  # kept: 55-60 and 28-54
    assert record_ids(frames) == list(range(28, 61)) and [(s.read, s.dead) for s in stats] == [(33, 0)]


@pytest.mark.parametrize("alone", [False, True], ids=["with-neighbours", "alone"])
def test_evtx_bound_inside_chunks_counts_only_its_records(tmp_path, sql_evtx, monkeypatch, alone):
    """A bound that cuts chunks (a chunk filled further since the last run): the records outside it are
    neither parsed nor dead-lettered as missing."""
    from soc.parse.engines.evtx import EvtxEngine

    if alone:
        monkeypatch.setattr(EvtxEngine, "small", classmethod(lambda cls, spec, path: None))
    log = tmp_path / "Security.evtx"
    log.write_bytes(sql_evtx)
    frames, stats = parse([pipeline.Source(str(log), None, None, records=(10, 60))])
    assert record_ids(frames) == list(range(11, 61))
    assert [(s.read, s.parsed, s.dead, s.error) for s in stats] == [(50, 50, 0, None)]


def test_evtx_entry_of_an_older_registry_is_read_whole_once(tmp_path, sql_evtx):
    """A registry written before entries kept a record id (no ``record``): a changed EVTX file is read whole
    once, as it was then, and from its highest id after."""
    log, reg = tmp_path / "Security.evtx", tmp_path / "reg.json"
    write_in_place(log, evtx_state(sql_evtx, [0]))
    step(reg, [str(log)])
    data = json.loads(reg.read_text())
    del data["files"][0]["record"]
    reg.write_text(json.dumps(data))
    write_in_place(log, evtx_state(sql_evtx, [0, 1]))
    assert record_ids(step(reg, [str(log)])[1]) == list(range(1, 55))
    write_in_place(log, sql_evtx)
    assert record_ids(step(reg, [str(log)])[1]) == list(range(55, 73))


def test_cleared_evtx_is_read_whole(tmp_path, sql_evtx):
    log, reg = tmp_path / "Security.evtx", tmp_path / "reg.json"
    write_in_place(log, sql_evtx)
    assert len(record_ids(step(reg, [str(log)])[1])) == 72
    write_in_place(log, evtx_state(sql_evtx, [0]))  # cleared, then 27 records: ids 1-27 again
    plan, frames, stats = step(reg, [str(log)])
    assert [s.records for s in plan.sources] == [(0, 27)] and record_ids(frames) == list(range(1, 28))
    assert plan.reasons[str(log)] == "cleared or replaced (newest record id 27 < 72 read): read whole"
    assert Checkpoints.load(reg).entries[0].record == 27


def test_failed_evtx_read_keeps_its_highest_id(tmp_path, sql_evtx):
    log, reg = tmp_path / "Security.evtx", tmp_path / "reg.json"
    write_in_place(log, evtx_state(sql_evtx, [0]))
    step(reg, [str(log)])
    write_in_place(log, sql_evtx)
    cp = Checkpoints.load(reg)
    plan = cp.plan([str(log)])
    cp.advance(plan, [pipeline.SourceStats(str(log), error="boom")])
    assert cp.entries[0].record == 27
    cp.save()
    plan, frames, _ = step(reg, [str(log)])
    assert [s.records for s in plan.sources] == [(27, 72)] and record_ids(frames) == list(range(28, 73))


def test_records_written_after_planning_wait_for_the_next_run(tmp_path, sql_evtx):
    """The plan bounds a read by the newest id at planning time: records the file gets before the read are
    left to the next run (counted once), as lines appended after planning are."""
    log, reg = tmp_path / "Security.evtx", tmp_path / "reg.json"
    write_in_place(log, evtx_state(sql_evtx, [0]))
    cp = Checkpoints.load(reg)
    plan = cp.plan([str(log)])
    write_in_place(log, sql_evtx)  # grew between planning and reading
    frames, stats = parse(plan.sources)
    assert record_ids(frames) == list(range(1, 28)) and stats[0].read == 27
    cp.advance(plan, stats)
    cp.save()
    assert record_ids(step(reg, [str(log)])[1]) == list(range(28, 73))


def test_growing_evtx_with_workers_drops_the_records_past_the_bound(tmp_path, sql_evtx, monkeypatch):
    """The worker-process path (a file cut in pieces of chunks): a bound (0, upto] planned before the file grew
    drops the newer records there too."""
    import dataclasses

    from soc.parse.engines import evtx as engine
    from soc.parse.spec import load_specs

    monkeypatch.setattr(engine, "MIN_PIECE", 1)
    monkeypatch.setenv(engine.PROCESSES_ENV, "3")
    specs = load_specs()
    spec = specs["windows_evtx"]
    specs[spec.name] = dataclasses.replace(spec, options={**spec.options, "batch": 40})  # pieces of a chunk
    pieces: list[int] = []
    parallel = engine.EvtxEngine._parallel

    def spy(self, ahead, tasks):
        pieces.append(len(tasks))
        return parallel(self, ahead, tasks)

    monkeypatch.setattr(engine.EvtxEngine, "_parallel", spy)
    log = tmp_path / "Security.evtx"
    log.write_bytes(sql_evtx)
    sink = Collect()
    stats = pipeline.run([pipeline.Source(str(log), None, None, records=(0, 54))], sink, OPTIONS, specs=specs)
    frames = {k: pl.concat(v, how="diagonal_relaxed") for k, v in sink.frames.items()}
    assert pieces == [3]  # a piece a chunk, read by the workers and this process
    assert record_ids(frames) == list(range(1, 55)) and [(s.read, s.dead) for s in stats] == [(54, 0)]


def test_job_over_a_growing_evtx_gives_the_alerts_of_one_hunt(tmp_path, sql_evtx):
    """`soc jobs run-once` after each growth of a forwarded-events log (written in place): each run reads the
    new records only, and the stored alerts are one `soc hunt`'s over the whole file (the SQL Server
    brute-force detector counts all 72 failures once: re-read records would count twice)."""
    from tests.test_jobs import current_alerts, job_config, soc

    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "ForwardedEvents.evtx"
    cfg = job_config(tmp_path, logs)
    runs = []
    for slots in ([0], [0, 1], None):
        write_in_place(log, evtx_state(sql_evtx, slots) if slots else sql_evtx)
        done = soc("jobs", "run-once", "logs", "--config", str(cfg), "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        record = json.loads(done.stdout)
        runs.append((record["records"], record["dead"], record["reading"][str(log)]))
    assert runs == [(27, 0, "new"), (27, 0, "grown: records after id 27"), (18, 0, "grown: records after id 54")]
    one = tmp_path / "one"
    hunt = soc("hunt", str(logs), "--data-dir", str(one), "--no-es", "--config", os.devnull)
    assert hunt.returncode == 0, hunt.stderr[-3000:]
    job, whole = current_alerts(tmp_path / "data"), current_alerts(one)
    assert whole.get_column("event.count").to_list() == [72]
    assert job.equals(whole), job.join(whole, on="event.id", how="full", suffix="_hunt")
