"""The EVTX engine's copy of the package's records into one batch (``engines.evtx.take``, ``_Texts``): the same
texts, record ids and timestamps as pyarrow's converter of the dicts gives, ASCII or not, across steps and
however the buffer grows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from soc.parse.engines import evtx as E

RECORD = pa.struct([("data", pa.large_string()), ("event_record_id", pa.int64()), ("timestamp", pa.string())])


def _records(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    words = ["a", "tiếng Việt", "\U0001f600", '\\"q\\"', "x" * 5000, "", "Đ"]
    return [{"data": '{"Event":{"EventData":{"A":"' + "".join(rng.choice(words, rng.integers(0, 6))) + f'{i}"}}}}}}',
             "event_record_id": int(rng.integers(1, 1 << 40)), "timestamp": f"2024-01-01T00:00:{i % 60:02}Z UTC"}
            for i in range(n)]


@pytest.mark.parametrize(("n", "size"), [(1, 10), (700, 10_000), (1500, 600), (2000, 5)])
def test_take_gives_what_the_converter_gives(n, size):
    rows = _records(n, n)
    it = iter(rows)
    got = []
    while (batch := E.take(it, size)) is not None:
        got.append(batch)
    assert [len(b[0]) for b in got] == [min(size, n - i) for i in range(0, n, size)]
    want = pa.array(rows, RECORD)
    text = pa.concat_arrays([b[0] for b in got])
    assert text.to_pylist() == want.field(0).to_pylist()
    assert np.concatenate([b[1] for b in got]).tolist() == want.field(1).to_pylist()
    assert pa.concat_arrays([b[2] for b in got]).to_pylist() == want.field(2).to_pylist()
    text.validate(full=True)


def test_a_batch_of_files_grows_its_buffer():
    """Steps larger than the first one guessed (a file of long records after short ones) and no records."""
    texts = E._Texts(10)
    short, long = _records(3, 1), [{"data": "é" * 100_000, "event_record_id": 7, "timestamp": "t"}] * 4
    for rows in (short, long, short):
        texts.add(rows)
    text, ids, stamps = texts.batch()
    text.validate(full=True)
    assert text.to_pylist() == [r["data"] for r in short + long + short]
    assert ids.tolist() == [r["event_record_id"] for r in short + long + short]
    assert E._Texts(5).n == 0


def test_files_added_one_by_one_give_every_record_in_order():
    """Small files' records added a file at a time (``read_many``): copied once ``READ_STEP`` are waiting, the
    rest at the end, in order."""
    rows = _records(3 * E.READ_STEP + 7, 3)
    texts = E._Texts(E.MANY_RECORDS)
    sizes = [1, 2, 5, 40, 0, 300, 1]
    i = k = 0
    while i < len(rows):
        texts.add(rows[i: i + sizes[k % len(sizes)]])
        i += sizes[k % len(sizes)]
        k += 1
    assert len(texts.lengths) >= 2  # copies made on the way, not only at the end
    text, ids, stamps = texts.batch()
    text.validate(full=True)
    assert text.to_pylist() == [r["data"] for r in rows]
    assert ids.tolist() == [r["event_record_id"] for r in rows]
    assert stamps.to_pylist() == [r["timestamp"] for r in rows]
