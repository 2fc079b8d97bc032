"""The EVTX walker's plain-Python path (``soc.parse.evtx_plain``, small batches) against the Numba walker: the
same frames and dead letters on the whole corpus and on odd records; and a small hunt never imports Numba."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from soc import jit, pipeline
from soc.parse import evtx_kernel as K
from soc.parse import evtx_plain
from soc.parse.engines.evtx import walked_strings
from soc.parse.spec import load_spec
from soc.sources import discover
from tests.conftest import ROOT, Keep, hunt_both_ways
from tests.evtx_corpus import evtx_files

pytest.importorskip("evtx")
SPEC = load_spec(ROOT / "parsers" / "windows_evtx.yml")


def _parse(paths: list[str], way: str) -> tuple[list, Keep]:
    sink = Keep()
    with jit.forced(way):
        stats = pipeline.run(discover(paths), sink, specs={SPEC.name: SPEC})
    return stats, sink


def _same(a: tuple[list, Keep], b: tuple[list, Keep]) -> None:
    fields = ("path", "read", "parsed", "dead", "first", "last", "events", "error")
    assert [[getattr(s, f) for f in fields] for s in a[0]] == [[getattr(s, f) for f in fields] for s in b[0]]
    assert list(a[1].frames) == list(b[1].frames)
    for key, parts in a[1].frames.items():
        other = b[1].frames[key]
        assert len(parts) == len(other), key
        for x, y in zip(parts, other, strict=True):
            assert x.columns == y.columns, key
            assert x.schema == y.schema, key
            assert x.equals(y), key
    assert len(a[1].dead) == len(b[1].dead)
    for x, y in zip(a[1].dead, b[1].dead, strict=True):
        assert x.equals(y)


def test_plain_walk_gives_the_numba_walks_frames_on_the_corpus(corpora):
    """Every frame (columns, types, values, row order) and dead letter of the 483 files: the same both ways."""
    paths = [str(p) for p in evtx_files(corpora)]
    assert len(paths) == 483
    plain, numba = _parse(paths, "plain"), _parse(paths, "numba")
    assert sum(s.parsed for s in plain[0]) > 10_000
    _same(plain, numba)


ODD = [
    '{"Event":{"System":{"Channel":"Security","EventID":4624,"TimeCreated":{"#attributes":{"SystemTime":'
    '"2020-02-29T23:59:59.1234567Z"}}},"EventData":{"A":"caf\\u00e9 \\"q\\" \\\\ \\n","B":null,"C":1.5e3,'
    '"D":true,"E":[1,null,"x"],"F":{"#text":"t"},"G":{"k":"v","#attributes":{"a":1}},"H":"","I":-0,'
    '"J":"ti\u1ebfng Vi\u1ec7t \U0001f600"}}}',
    '{"Event":{"System":{"Channel":"Security","EventID":{"#attributes":{"Qualifiers":16384},"#text":4625},'
    '"TimeCreated":{"#attributes":{"SystemTime":"2021-13-01T00:00:00Z"}}},"EventData":{"A":"' + "x" * 100_000 + '"}}}',
    '{"Event":{"System":{"Channel":"Security","EventID":"46x25"},"UserData":{"Elem":{"P":"1","Q":[[1]]}}}}',
    '{"Event":{"System":{"Channel":"Security","EventID":4626},"UserData":{"Elem":{"P":{"a":{"b":1}}}}}}',
    '{"Event":{"System":{"Channel":"Security","EventID":4627},"EventData":{"a\\"b":"1"}}}',
    '{"Event":{"System":{"Channel":"S","EventID":1,"Level":{"x":[1]}}}}',
    '{"Event":{"System":{"Channel":"S","EventID":1,"Level":{"x":[[1]]}}}}',
    '{"Event":{"System":{"Channel":"S","EventID":1},"UserData":{"A":"1","B":"2"}}}',
    '{"Event":{"System":{"Channel":null,"EventID":1},"EventData":null,"X":{"Y":"z"}}}',
    '{"Event":{"System":{"Channel":"","EventID":1},"EventData":{"Data":["a","b"]}}}',
    '{"Event":{"System":{"Channel":"S","EventID":1},"EventData":{"A":"\\ud800"}}}',
    '{"Event":{"System":{"Channel":"S","EventID":1},"EventData":{"A":"1"}}',
    '{"Event":[1]}',
    '[]',
    '{"Other":{}}',
    '{"Event":{"System":{"Channel":"S","EventID":1},"EventData":{"A":NaN}}}',
    # numbers Python's do not keep as written (orjson's floats, its 0 of "-0"): read again by the standard reader
    '{"Event":{"System":{"Channel":"S","EventID":7,"Level":1E2,"Task":-0},"EventData":{"A":[1.0,-0,2],'
    '"B":18446744073709551616,"C":-9223372036854775809,"D":18446744073709551615,"E":{"x":-0}}}}',
    '{"Event":{"System":{"Channel":"S","EventID":7.0},"UserData":{"E":{"A":"-0,","B":0,"C":-1}}}}',
    '{"Event":{"System":{"Channel":"S","EventID":3},"EventData":{"A":' + "[" * 70 + "]" * 70 + '}}}',
    '{"Event":{"System":{"Channel":"S","EventID":3},"UserData":{"E":{"A":"1"},"F":' + "[" * 70 + "]" * 70 + '}}}',
    '{"Event":{"System":{"Channel":"S","EventID":3},"UserData":{"E":{"A":' + '{"x":' * 70 + "1" + "}" * 70 + '}}}}',
    *('{"Event":{"System":{"Channel":"T","EventID":2,"TimeCreated":{"#attributes":{"SystemTime":' + t + '}}}}}'
      for t in ('"2020-02-29T23:59:59Z"', '"1999-12-31T00:00:00.123456789Z"', '"2021-02-29T00:00:00Z"',
                '"2020-01-01T24:00:00Z"', '"2020-01-01 00:00:00Z"', '"2020-01-01T00:00:00.Z"',
                '"2020-01-01T00:00:00.1234567890Z"', '"0000-01-01T00:00:00.5Z"', '"2020-01-01T00:00:00+07:00"',
                '"2020-01-0\u0661T00:00:00Z"', '20200101', 'null', '"2020-04-31T00:00:00Z"',
                '"2020-12-31T23:59:60Z"', '"2020-06-15T12:30:45.000001Z"')),
]


def _walked(w: K.Walked | evtx_plain.Walked, buf: np.ndarray) -> dict:
    """What the engine takes from a walk (``walked_strings``, the group keys), as plain values."""
    order = w.order
    system, cells, (us, ok) = walked_strings(w, buf, pa.py_buffer(buf))
    m = order.size
    names = w.names(buf)
    keys = [(w.text(buf, K.CHANNEL, int(order[a])), w.text(buf, K.EVENT_ID, int(order[a]))) for a in w.starts[:-1]]
    return {"err": (w.err != 0).tolist(), "order": order.tolist(), "starts": w.starts.tolist(), "keys": keys,
            "columns": [names[c] for c in w.columns], "col_starts": w.col_starts.tolist(),
            "cell_starts": w.cell_starts.tolist(), "cells": cells.to_list(),
            "system": {name: system.slice(i * m, m).to_list() for i, name in enumerate(K.SYSTEM_NAMES)},
            "times": [u if o else None for u, o in zip(us.tolist(), ok.tolist(), strict=True)]}


@pytest.mark.parametrize("shuffle", [False, True])
def test_plain_walk_gives_the_numba_walk_on_odd_records(shuffle):
    """Escapes, non-ASCII, nulls, numbers as written, lists, #text, too deep, escaped names, lone surrogates,
    malformed JSON, huge values: the same values, errors, groups and cells."""
    texts = list(ODD)
    if shuffle:
        texts = texts[::-1] + texts[:3]
    data = "".join(texts).encode()
    offs = np.zeros(len(texts) + 1, np.int64)
    offs[1:] = np.cumsum([len(t.encode()) for t in texts])
    buf = np.frombuffer(bytearray(data), np.uint8)  # writable, as the engine's: the kernels compiled once a run
    numba_w = K.walk_batch(buf, offs)
    plain_w = evtx_plain.walk(texts)
    got, want = _walked(plain_w, buf), _walked(numba_w, buf)
    assert got["err"] == want["err"] and any(got["err"])
    assert 4 <= sum(t is not None for t in got["times"]) < len(got["times"])
    assert got == want


def test_plain_walk_without_orjson_gives_the_same(monkeypatch):
    """orjson reads the records and the standard reader those it does not keep as written; the standard
    reader alone (orjson missing) gives the same walk."""
    texts = list(ODD)
    buf = np.frombuffer(bytearray("".join(texts).encode()), np.uint8)
    fast = _walked(evtx_plain.walk(texts), buf)
    monkeypatch.setattr(evtx_plain, "_orjson_loads", None)
    assert _walked(evtx_plain.walk(texts), buf) == fast


def test_a_small_hunt_never_imports_numba(tmp_path, corpora):
    """A hunt of a few small EVTX files with detectors and SigmaHQ's windows rules: Numba never imported (its
    fixed cost, ~0.3 s and ~100 MB, is more than such input costs); with SOC_JIT=numba the same report."""
    paths = [str(p) for p in evtx_files(corpora)[:40]]
    rules = str(corpora / "sigma" / "rules" / "windows")
    out = hunt_both_ways(paths, rules, tmp_path)
    assert out[""][0] is False and out["numba"][0] is True
    assert out[""][1]["sigma"]["matches"] > 0 and out[""][1]["alerts"]["alerts"] > 0
    assert out[""][1] == out["numba"][1]
