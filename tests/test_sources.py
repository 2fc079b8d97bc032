"""Inputs: discovery, decompression, stdin, chunking on line ends, over-long lines, sniffing."""

from __future__ import annotations

import gzip
import io

import pytest
import zstandard

from soc.sources import InputError, discover, read_chunks
from soc.sources.sniff import Signature, UnknownFormat, sniff

LINE = b'10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "x"\n'


def test_chunks_end_on_line_ends_and_keep_every_byte():
    data = b"".join(b"line %d %s\n" % (i, b"x" * (i % 50)) for i in range(2000)) + b"last without newline"
    chunks = list(read_chunks(io.BytesIO(data), 997))
    assert b"".join(bytes(c.data) for c in chunks) == data
    assert all(bytes(c.data).endswith(b"\n") for c in chunks[:-1])
    line = 1
    offset = 0
    for c in chunks:
        assert c.first_line == line and c.offset == offset
        line += bytes(c.data).count(b"\n")
        offset += len(c.data)


def test_line_longer_than_a_chunk_is_cut_and_flagged():
    data = b"short\n" + b"y" * 5000 + b"\nafter\n"
    chunks = list(read_chunks(io.BytesIO(data), 1024))
    over = [c for c in chunks if c.oversize]
    assert len(over) == 1
    assert over[0].first_line == 2 and len(over[0].data) + over[0].dropped == 5001
    rest = b"".join(bytes(c.data) for c in chunks if not c.oversize)
    assert rest == b"short\nafter\n"
    assert chunks[-1].first_line == 3


def test_discover_dirs_globs_and_compressed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.log").write_bytes(LINE)
    (tmp_path / "a" / ".hidden").write_bytes(LINE)
    (tmp_path / "b.log.gz").write_bytes(gzip.compress(LINE * 3))
    (tmp_path / "c.log.zst").write_bytes(zstandard.ZstdCompressor().compress(LINE * 4))
    found = [s.path for s in discover([str(tmp_path)])]
    assert found == [str(tmp_path / "a" / "x.log"), str(tmp_path / "b.log.gz"), str(tmp_path / "c.log.zst")]
    assert [s.path for s in discover([str(tmp_path / "*.log.*")])] == found[1:]
    for src, lines in zip(discover(found), (1, 3, 4), strict=True):
        stream, raw = src.open()
        assert stream.read() == LINE * lines
        raw.close()
    with pytest.raises(InputError, match="no such file"):
        discover([str(tmp_path / "missing*.log")])


def test_sniff_picks_the_best_signature_and_reports_what_it_tried():
    sigs = [Signature("a", r"^A"), Signature("b", r"^B"), Signature("ab", r"^[AB]", priority=-1)]
    assert sniff(b"A1\nA2\n", sigs) == "a"  # a and ab match every line: priority decides
    assert sniff(b"A1\nB2\n", sigs) == "ab"  # only ab matches every line
    with pytest.raises(UnknownFormat, match=r"tried: a, b, ab"):
        sniff(b"zzz\n", sigs)


def test_prefetch_keeps_order_raises_the_producers_error_and_stops_with_the_caller():
    import threading

    from soc.sources.prefetch import prefetch

    assert list(prefetch(iter(range(100)), depth=2)) == list(range(100))

    def broken():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetch(broken()):
            got.append(item)
    assert got == [1]

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    items = prefetch(endless(), depth=2, name="test-prefetch")
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # the caller stops early: the producer thread ends too
    assert not any(t.name == "test-prefetch" for t in threading.enumerate())
    assert len(produced) <= 3 + 2 + 2  # at most depth ahead, plus the one in hand
