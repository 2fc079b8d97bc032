"""Compressed inputs cut short (a copy interrupted, a disk filled): every complete line before the cut is kept,
the cut line is one dead letter "truncated input", one error line names the file and the byte offsets, and
the exit code is 2 (an input error), for every codec soc reads (issue 17 item 3)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib

import polars as pl
import pytest
import zstandard

CODECS = {"gzip": "gz", "zstd": "zst"}


def soc(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "soc", *args], capture_output=True, env=env, timeout=600,
                          check=False)


def access_log(n: int) -> bytes:
    """``n`` combined-format lines that all parse, varied enough that compression keeps some size."""
    return b"".join(
        b'10.%d.%d.%d - - [10/Oct/2025:13:%02d:%02d +0700] "GET /p/%d?q=%d HTTP/1.1" %d %d "-" "agent/%d"\n'
        % (i % 256, i // 256 % 256, i % 7, i // 60 % 60, i % 60, i * 7919 % 100_003, i * 31 % 977,
           (200, 404, 302)[i % 3], i * 13 % 5000, i % 17)
        for i in range(n))


def compress(codec: str, data: bytes) -> bytes:
    return gzip.compress(data) if codec == "gzip" else zstandard.ZstdCompressor().compress(data)


def decoded_prefix(codec: str, cut: bytes) -> bytes:
    """What a decompressor can give of ``cut``: the bytes soc may keep."""
    if codec == "gzip":
        return zlib.decompressobj(31).decompress(cut)
    return zstandard.ZstdDecompressor().decompressobj().decompress(cut)


def errors(res: subprocess.CompletedProcess) -> list[str]:
    return [line for line in res.stderr.decode().splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("codec", CODECS)
def test_parse_of_a_cut_file_keeps_the_complete_lines_and_dead_letters_the_cut_one(tmp_path, codec):
    blob = compress(codec, access_log(60_000))
    cut = blob[: len(blob) // 2]
    log = tmp_path / f"access.log.{CODECS[codec]}"
    log.write_bytes(cut)
    prefix = decoded_prefix(codec, cut)
    complete = prefix.count(b"\n")
    partial = prefix[prefix.rfind(b"\n") + 1:]
    assert complete > 10_000 and partial  # the cut falls inside a line, after several 1 MB chunks

    out = tmp_path / "out"
    res = soc("parse", str(log), "-o", str(out), "--json", "--chunk-mb", "1")
    assert res.returncode == 2, res.stderr.decode()
    (summary,) = json.loads(res.stdout)
    assert (summary["read"], summary["parsed"], summary["dead_lettered"]) == (complete + 1, complete, 1)
    assert summary["format"] == "web_access"
    assert pl.read_parquet(out / "web").height == complete
    dead = pl.read_parquet(out / "dead_letters")
    assert dead.to_dicts() == [{
        "log.file.path": str(log), "log.line": complete + 1, "log.offset": len(prefix) - len(partial),
        "error.message": "truncated input", "event.original": partial,
    }]
    (line,) = errors(res)
    assert str(log) in line and "truncated input" in line
    assert f"compressed byte {len(cut)}" in line and f"decompressed byte {len(prefix) - len(partial)}" in line


@pytest.mark.parametrize("codec", CODECS)
def test_hunt_of_a_cut_file_says_so_and_fails(tmp_path, codec):
    blob = compress(codec, access_log(3_000))
    cut = blob[: len(blob) // 2]
    log = tmp_path / f"access.log.{CODECS[codec]}"
    log.write_bytes(cut)
    prefix = decoded_prefix(codec, cut)
    data = tmp_path / "data"
    res = soc("hunt", str(log), "--data-dir", str(data), "--no-detectors", "--no-es", "--json")
    assert res.returncode == 2, res.stderr.decode()
    (entry,) = json.loads(res.stdout)["files"]
    assert entry["parsed"] == prefix.count(b"\n") and entry["dead_lettered"] == 1
    assert "truncated input" in entry["error"]
    dead = pl.read_parquet(data / "dead_letters")
    assert dead["error.message"].to_list() == ["truncated input"]
    (line,) = errors(res)
    assert str(log) in line and f"compressed byte {len(cut)}" in line


@pytest.mark.parametrize("codec", CODECS)
def test_a_file_cut_before_any_line_is_an_error_not_a_skipped_input(tmp_path, codec):
    log = tmp_path / f"access.log.{CODECS[codec]}"
    log.write_bytes(compress(codec, access_log(2_000))[:40])
    res = soc("parse", str(log), "-o", str(tmp_path / "out"), "--json")
    assert res.returncode == 2, res.stderr.decode()
    (summary,) = json.loads(res.stdout)
    assert summary["skipped"] is None and "truncated input" in summary["error"]
    assert summary["read"] == summary["parsed"] + summary["dead_lettered"]
    (line,) = errors(res)
    assert str(log) in line and "compressed byte 40" in line


@pytest.mark.parametrize("codec", CODECS)
def test_an_intact_file_still_reads_whole_with_exit_0(tmp_path, codec):
    data = access_log(5_000)
    log = tmp_path / f"access.log.{CODECS[codec]}"
    # two members / frames one after the other, as `cat a.gz b.gz` makes: both are read
    log.write_bytes(compress(codec, data[:100_000]) + compress(codec, data[100_000:]))
    out = tmp_path / "out"
    res = soc("parse", str(log), "-o", str(out), "--json", "--chunk-mb", "1")
    assert res.returncode == 0, res.stderr.decode()
    (summary,) = json.loads(res.stdout)
    assert (summary["read"], summary["parsed"], summary["dead_lettered"]) == (5_000, 5_000, 0)
    assert summary["error"] is None and not errors(res)


def test_the_decoders_stream_every_byte_and_tell_a_cut_from_an_end(tmp_path):
    from soc.sources import discover
    from soc.sources.discover import truncation

    data = access_log(2_000)
    for codec, ext in CODECS.items():
        whole = tmp_path / f"whole.{ext}"
        whole.write_bytes(compress(codec, data) + (b"\0" * 8 if codec == "gzip" else b""))  # gzip pads
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(compress(codec, data)[:-3])
        for path, expect in ((whole, None), (cut, len(cut.read_bytes()))):
            (src,) = discover([str(path)])
            stream, raw = src.open()
            got = stream.read()
            assert truncation(stream) == expect, (codec, path)
            assert data.startswith(got) and (expect or got == data)
            stream.close()
            raw.close()


def test_a_cut_compressed_evtx_file_is_an_error_too(tmp_path, corpora):
    from tests.conftest import need

    evtx = need(corpora / "evtx" / "evtx-to-mitre-attack" / "TA0008-Lateral Movement"
                / "T1550-Use Alternate Authentication Material" / "ID4624-Mimikatz Pass the hash.evtx", "an EVTX file")
    whole = gzip.compress(evtx.read_bytes())
    log = tmp_path / "security.evtx.gz"
    log.write_bytes(whole[: len(whole) // 2])
    res = soc("parse", str(log), "-o", str(tmp_path / "out"), "--json")
    assert res.returncode == 2, res.stderr.decode()
    (summary,) = json.loads(res.stdout)
    assert summary["format"] == "windows_evtx" and "truncated input" in summary["error"]
    (line,) = errors(res)
    assert str(log) in line and f"compressed byte {len(whole) // 2}" in line
