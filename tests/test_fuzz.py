"""Property tests: no input crashes a parser, and every line is either parsed or dead-lettered.

Random bytes, truncated lines of every sample log, invalid UTF-8, NUL bytes and 1 MB lines, for every
parser spec (forced, as ``--format`` would), through the real chunked reader with small chunks so line
boundaries fall everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soc.parse.spec import load_specs
from tests.conftest import ROOT, parse_text

SPECS = sorted(load_specs())
SAMPLES = [line for p in sorted((ROOT / "sample_logs").rglob("*.log"))
           for line in Path(p).read_bytes().splitlines()[:40]]
FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


DIRECTIVES = {"iis_w3c", "zeek"}  # their '#' header lines set state and are not records (soc.parse.directives)


def expected_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def check(spec: str, data: bytes, chunk_size: int = 4096) -> None:
    res = parse_text(spec, data, chunk_size=chunk_size)
    # a line holding several bad JSON array elements counts once per dead letter (engines/json.py)
    shared = res.dead.height - res.dead["log.line"].n_unique() if res.dead.height else 0
    headers = sum(line.startswith(b"#") for line in data.split(b"\n")) if spec in DIRECTIVES else 0
    assert res.lines == expected_lines(data) + shared - headers
    events = sum(f.height for f in res.frames.values())
    assert res.parsed + res.dead.height == res.lines
    assert events <= res.parsed
    if res.dead.height:
        assert res.dead["error.message"].null_count() == 0
        assert not res.dead.select("log.line", "log.offset").is_duplicated().any()


@pytest.mark.parametrize("spec", SPECS)
@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes(spec, data):
    check(spec, data, chunk_size=512)


@pytest.mark.parametrize("spec", SPECS)
@FUZZ
@given(picks=st.lists(st.tuples(st.sampled_from(SAMPLES), st.floats(0, 1)), min_size=1, max_size=30))
def test_truncated_sample_lines(spec, picks):
    data = b"\n".join(line[: int(len(line) * cut)] for line, cut in picks)
    check(spec, data, chunk_size=700)


@pytest.mark.parametrize("spec", SPECS)
@FUZZ
@given(picks=st.lists(st.tuples(st.sampled_from(SAMPLES), st.integers(0, 400),
                                st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b'"',
                                                 b"\\", b"=", b"[", b"\x1b[31m", b"\r"])),
                      min_size=1, max_size=20))
def test_corrupted_sample_lines(spec, picks):
    data = b"\n".join(line[:at] + junk + line[at:] for line, at, junk in picks) + b"\n"
    check(spec, data, chunk_size=1024)


@pytest.mark.parametrize("spec", SPECS)
def test_one_megabyte_lines(spec):
    big = SAMPLES[0] + b" " + b"A" * (1 << 20)
    quoted = b'x="' + b"B" * (1 << 20)
    data = b"\n".join([SAMPLES[1], big, quoted, SAMPLES[2], b"\x00" * (1 << 20)])
    check(spec, data, chunk_size=4 << 20)
    check(spec, data, chunk_size=256 << 10)  # longer than a chunk: cut, kept and dead-lettered
