"""The chunk kernels every line engine starts with: line spans (``find_lines``) and the UTF-8 check
(``has_invalid_utf8``), both in parallel blocks read eight bytes at a time. Blocks of a few bytes put
every boundary in every place: a newline, a CR before it, a multi-byte character cut in two."""

from __future__ import annotations

import numpy as np
import pytest

from soc.parse import kernels

PIECES = ["a", "b", "\r", "\n", "\n", "ắ", "€", "😀", "Hà Nội"]
BAD = [b"\x80", b"\xbf", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xff", b"\xed\xa0\x80"]


def _reference_lines(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    text = bytes(buf)
    starts, ends, at = [], [], 0
    for line in text.split(b"\n")[: None if not text.endswith(b"\n") else -1] if text else []:
        starts.append(at)
        ends.append(at + len(line) - (1 if line.endswith(b"\r") else 0))
        at += len(line) + 1
    return np.array(starts, np.int64), np.array(ends, np.int64)


def _valid(buf: np.ndarray) -> bool:
    try:
        bytes(buf).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _buffers(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        parts = [PIECES[i].encode() for i in rng.integers(0, len(PIECES), int(rng.integers(0, 40)))]
        if rng.random() < 0.4:  # one invalid sequence somewhere
            parts.insert(int(rng.integers(0, len(parts) + 1)), BAD[int(rng.integers(0, len(BAD)))])
        yield np.frombuffer(bytearray(b"".join(parts)), np.uint8)  # writable as a chunk is: no second compile


@pytest.mark.parametrize("block", [1, 2, 3, 5, 8, 13, 1 << 20])
def test_line_spans_and_utf8_check_match_the_plain_answers_at_every_block_size(block):
    for buf in _buffers(block, 400):
        words = buf[: buf.size // 8 * 8].view(np.uint64)
        starts, ends = kernels._find_lines(buf, words, block)
        want_s, want_e = _reference_lines(buf)
        assert np.array_equal(starts, want_s) and np.array_equal(ends, want_e), bytes(buf)
        assert kernels._invalid_utf8(buf, words, block) == (not _valid(buf)), bytes(buf)


def test_public_entry_points_on_a_large_buffer():
    """Several blocks of the real size: an invalid byte in the last block, a line cut by a block end."""
    line = "2026-11-23 Sở Thông tin và Truyền thông ok\r\n".encode()
    buf = np.frombuffer(line * (3 * kernels.BLOCK // len(line)) + b"tail without newline", np.uint8)
    starts, ends = kernels.find_lines(buf)
    want_s, want_e = _reference_lines(buf)
    assert starts.size > 60_000 and np.array_equal(starts, want_s) and np.array_equal(ends, want_e)
    assert not kernels.has_invalid_utf8(buf)
    assert kernels.has_invalid_utf8(np.concatenate([buf, np.frombuffer(b"\xe1\xba", np.uint8)]))
    empty = np.zeros(0, np.uint8)
    assert kernels.find_lines(empty)[0].size == 0 and not kernels.has_invalid_utf8(empty)
