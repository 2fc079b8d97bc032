"""The statistical kernels of soc.detect.kernels against plain-Python references, and the detector specs."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc.detect import kernels, windows
from soc.detect.specs import SpecError, apply_settings, default_specs, duration_us, load_specs

rows = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 200)), max_size=60)


def _ordered(data):
    keys = np.array([k for k, _ in data], np.int64)
    times = np.array([t for _, t in data], np.int64)
    perm, k, t = windows.order(keys, times)
    return k, t


@given(rows)
@settings(max_examples=150, deadline=None)
def test_periodicity_matches_reference(data):
    k, t = _ordered(data)
    key, first, last, count, mean, cv, mad = kernels.periodicity(k, t)
    assert list(key) == sorted(set(k.tolist()))
    for g, kk in enumerate(key):
        ts = t[k == kk]
        assert count[g] == ts.size and last[g] - first[g] + 1 == ts.size
        if ts.size < 3:
            assert math.isnan(cv[g])
            continue
        gaps = np.diff(ts).astype(float)
        assert mean[g] == pytest.approx(gaps.mean())
        ref_cv = gaps.std() / gaps.mean() if gaps.mean() > 0 else math.inf
        assert cv[g] == pytest.approx(ref_cv) if math.isfinite(ref_cv) else math.isinf(cv[g])
        med = np.median(gaps)
        ref_mad = np.median(np.abs(gaps - med)) / med if med > 0 else math.inf
        assert mad[g] == pytest.approx(ref_mad) if math.isfinite(ref_mad) else math.isinf(mad[g])


def test_periodicity_refuses_unordered_rows():
    with pytest.raises(ValueError):
        kernels.periodicity(np.array([0, 0, 0]), np.array([5, 3, 9]))


def _entropy(s: bytes) -> float:
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _part(name: str, part: str) -> str:
    name = name[:-1] if name.endswith(".") else name
    labels = name.split(".")
    if part == "whole":
        return name
    if part == "first_label":
        return labels[0]
    if part == "longest_label":
        return max(labels, key=len)  # first of the longest
    return labels[-2] if len(labels) >= 2 else name


names = st.lists(st.one_of(st.none(), st.text(alphabet="ab.c9x-", max_size=30),
                           st.text(max_size=8)), max_size=40)


@given(names, st.sampled_from(sorted(kernels.PARTS)), st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_string_stats_match_reference(values, part, skip):
    arr = pa.array(values, pa.large_string()).slice(min(skip, len(values)))  # sliced: the offset is honoured
    validity, offsets, data = arr.buffers()
    offs = np.frombuffer(offsets, np.int64)[arr.offset: arr.offset + len(arr) + 1]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    length, entropy = kernels.string_stats(offs, raw, valid, kernels.PARTS[part])
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            assert length[i] == -1 and math.isnan(entropy[i])
            continue
        p = _part(v, part).encode()
        assert length[i] == len(p)
        assert entropy[i] == pytest.approx(_entropy(p), abs=1e-9)


def test_random_labels_score_higher_than_words():
    arr = pa.array(["www.google.com", "mail.example.gov.vn", "mzxw6ytboi2dsnrqgezdgnbvgy3tqojq.t.exfil.example",
                    "x7kq9zp2m4vb.com"], pa.large_string())
    _, offsets, data = arr.buffers()
    valid = np.ones(4, bool)
    length, entropy = kernels.string_stats(np.frombuffer(offsets, np.int64), np.frombuffer(data, np.uint8), valid,
                                           kernels.LONGEST_LABEL)
    assert list(length) == [6, 7, 32, 12]
    assert entropy[2] > 3.5 > entropy[0]


def _ewma_reference(series, alpha, warmup, min_scale):
    out = []
    mean = dev = 0.0
    for t, x in enumerate(series):
        if t == 0:
            mean = x
        elif t >= warmup:
            out.append((t, x, mean, (x - mean) / max(1.4826 * dev, min_scale)))
        if t > 0:
            dev = (1 - alpha) * dev + alpha * abs(x - mean)
            mean = (1 - alpha) * mean + alpha * x
    return out


@given(st.dictionaries(st.integers(0, 3), st.dictionaries(st.integers(0, 30), st.integers(1, 50), min_size=1),
                       max_size=4), st.integers(0, 5))
@settings(max_examples=150, deadline=None)
def test_rise_drop_matches_reference(series, warmup):
    keys, buckets, counts = [], [], []
    for k in sorted(series):
        for b in sorted(series[k]):
            keys.append(k)
            buckets.append(b)
            counts.append(series[k][b])
    last = 35
    k, b, x, base, z = kernels.rise_drop(np.array(keys, np.int64), np.array(buckets, np.int64),
                                         np.array(counts, np.float64), last, 0.3, warmup, 1.0)
    expect = []
    for key in sorted(series):
        first = min(series[key])
        dense = [series[key].get(i, 0) for i in range(first, last + 1)]
        expect += [(key, first + t, xx, m, zz) for t, xx, m, zz in _ewma_reference(dense, 0.3, warmup, 1.0)]
    assert len(expect) == k.size
    for i, (ek, eb, ex, em, ez) in enumerate(expect):
        assert (k[i], b[i], x[i]) == (ek, eb, ex)
        assert base[i] == pytest.approx(em) and z[i] == pytest.approx(ez)


@given(st.lists(st.integers(0, 60), min_size=1, max_size=40), st.sampled_from([kernels.RISE, kernels.DROP]),
       st.floats(0.5, 5), st.floats(0, 20))
@settings(max_examples=150, deadline=None)
def test_rise_drop_modes_keep_exactly_the_qualifying_points(series, mode, threshold, floor):
    buckets = np.flatnonzero(np.array(series) > 0).astype(np.int64)
    counts = np.array(series, np.float64)[buckets]
    args = (np.zeros(buckets.size, np.int64), buckets, counts, len(series) + 3, 0.3, 2, 1.0)
    k, b, x, base, z = kernels.rise_drop(*args)
    if mode == kernels.RISE:
        keep = (z >= threshold) & (x >= floor)
    else:
        keep = (z <= -threshold) & (x <= 0.5 * base) & (base >= floor)
    got = kernels.rise_drop(*args, mode, threshold, floor, 0.5, floor)
    for want, have in zip((k, b, x, base, z), got, strict=True):
        assert np.array_equal(want[keep], have)


def test_rise_drop_sees_a_source_go_silent():
    buckets = np.arange(20, dtype=np.int64)
    k, b, x, base, z = kernels.rise_drop(np.zeros(20, np.int64), buckets, np.full(20, 100.0), 30, 0.3, 6, 1.0)
    assert b[-1] == 30 and x[-1] == 0  # the series runs on to the end of the hunt
    gone = np.flatnonzero(b == 20)[0]  # the first silent bucket
    assert x[gone] == 0 and base[gone] == 100 and z[gone] < -10
    assert (z[b < 20] == 0).all()


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 100)), max_size=50),
       st.integers(0, 100))
@settings(max_examples=150, deadline=None)
def test_first_seen_matches_reference(data, cut):
    data = sorted(data, key=lambda r: r[2])
    keys = np.array([k for k, _, _ in data], np.int64)
    pairs = np.array([k * 4 + v for k, v, _ in data], np.int64)
    times = np.array([t for _, _, t in data], np.int64)
    got = kernels.first_seen(pairs, keys, times, 16, 4, cut)
    seen, known, expect = set(), set(), []
    for j, (k, v, t) in enumerate(data):
        if t <= cut:
            seen.add((k, v))
            known.add(k)
        elif (k, v) not in seen:
            seen.add((k, v))
            if k in known:
                expect.append(j)
    assert got.tolist() == expect


def test_shipped_specs_load_and_settings_apply():
    specs = default_specs()
    assert len(specs) >= 15
    changed = apply_settings(specs, ["soc-ssh-brute-force.threshold=20", "soc-c2-beaconing.max_cv=0.2",
                                     "soc-web-scan.window=10m"])
    by_id = {s.id: s for s in changed}
    assert by_id["soc-ssh-brute-force"].threshold == 20
    assert by_id["soc-c2-beaconing"].params["max_cv"] == 0.2
    assert by_id["soc-web-scan"].span == duration_us("10m") == 600_000_000
    for bad in ["nodot=1", "soc-nope.threshold=1", "soc-web-scan.window=soon", "soc-web-scan.level=urgent"]:
        with pytest.raises(SpecError):
            apply_settings(specs, [bad])


def test_every_shipped_spec_says_what_it_misses():
    """Issue 19: each detector of detectors/ says, in a short paragraph, what it will not catch."""
    for spec in default_specs():
        assert 80 <= len(spec.misses) <= 900, (spec.id, spec.misses)
        assert "\n" not in spec.misses and spec.misses.endswith(".")
    changed = apply_settings(default_specs(), ["soc-port-scan.threshold=10"])
    assert next(s for s in changed if s.id == "soc-port-scan").misses.startswith("Slow scans")


@pytest.mark.parametrize("text, reason", [
    ("id: x\nname: y\n", "missing"),
    ("id: x\nname: y\nlevel: high\nkernel: magic\nframes: [{family: web}]\nkey: [a]\nwindow: 5m\nthreshold: 1\n",
     "unknown kernel"),
    ("id: x\nname: y\nlevel: high\nkernel: count\nframes: [{family: web}]\nkey: [a]\nwindow: 5m\nthreshold: 1\n"
     "filter: {a: {like: b}}\n", "unknown operator"),
    ("id: x\nname: y\nlevel: high\nkernel: distinct\nframes: [{family: web}]\nkey: [a]\nwindow: 5m\nthreshold: 1\n",
     "needs a value"),
    ("id: x\nname: y\nlevel: high\nkernel: count\nframes: [{family: web}]\nkey: [a]\nwindow: 5m\nthreshold: 1\n"
     "colour: red\n", "unknown field"),
    ("- [unclosed", "flow sequence"),
    ("- a\n- b\n", "mapping"),
    ("id: x\nname: y\nlevel: high\nkernel: count\nframes: [{family: web}]\nkey: [a]\nwindow: 5m\nthreshold: 1\n"
     "misses: [slow]\n", "misses must be"),
    ("id: x\nname: y\nlevel: high\nkernel: count\nframes: [{family: web}]\nkey: [a]\nwindow: 5m\nthreshold: 1\n"
     "misses: ' '\n", "misses must be"),
    ("id: x\nname: y\nlevel: high\nkernel: count\nframes: [{family: web}]\nkey: [a]\nwindow: 5m\nthreshold: 1\n"
     "filter: {not: {a: {like: b}}}\n", "unknown operator"),
    ("id: x\nname: y\nlevel: high\nkernel: count\nframes: [{family: web}]\nkey: [a]\nwindow: 5m\nthreshold: 1\n"
     "filter: {not: a}\n", "not: must be"),
    ("id: x\nname: y\nlevel: high\nkernel: count\nframes: [{family: web}]\nkey: [a]\nwindow: 5m\nthreshold: 1\n"
     "filter: {not: [{a: 1}, b]}\n", "not: must be"),
])
def test_bad_specs_are_reported_with_the_file(tmp_path, text, reason):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(SpecError, match=reason) as err:
        load_specs([path])
    assert "bad.yml" in str(err.value)


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.05])
def test_rise_drop_long_gaps_skipped_give_the_points_walking_them_gives(alpha):
    """RISE and DROP skip a gap once its EWMA stops changing: the points they keep are still exactly those
    of ALL (which walks every bucket) that qualify, across gaps of thousands of buckets."""
    rng = np.random.default_rng(5)
    keys, buckets, counts = [], [], []
    for key in range(4):
        b = int(rng.integers(0, 50))
        for _ in range(60):
            keys.append(key)
            buckets.append(b)
            counts.append(float(rng.choice([100, 102, 98, 1000], p=[0.33, 0.33, 0.32, 0.02])))  # steady, rare spikes
            b += int(rng.choice([1, 3000, 20000], p=[0.9, 0.05, 0.05]))  # and silences (drops)
    last = max(buckets) + 5000
    args = (np.array(keys, np.int64), np.array(buckets, np.int64), np.array(counts), last, alpha, 3, 1.0)
    k, b, x, base, z = kernels.rise_drop(*args)
    for mode, keep in ((kernels.RISE, (z >= 2.0) & (x >= 10)),
                       (kernels.DROP, (z <= -2.0) & (x <= 0.2 * base) & (base >= 10))):
        got = kernels.rise_drop(*args, mode, 2.0, 10.0, 0.2, 10.0)
        assert keep.any()
        for want, have in zip((k, b, x, base, z), got, strict=True):
            assert np.array_equal(want[keep], have)


_gaps = st.lists(st.tuples(st.sampled_from([1, 1, 2, 5, 40, 300, 2500, 30_000]),
                           st.sampled_from([0.0, 1.0, 3.0, 12.0, 60.0, 100.0, 2000.0])), min_size=1, max_size=25)


@given(st.lists(_gaps, min_size=1, max_size=3), st.sampled_from([kernels.RISE, kernels.DROP]),
       st.sampled_from([0.05, 0.3, 0.5, 0.9]), st.integers(0, 6), st.sampled_from([1.0, 0.5, 3.0]),
       st.sampled_from([0.0, 1.0, 2.0, 4.0]), st.sampled_from([0.0, 5.0, 10.0, 50.0]), st.integers(0, 40_000))
@settings(max_examples=200, deadline=None)
def test_plain_rise_drop_gives_the_kernels_points_to_the_bit(series, mode, alpha, warmup, min_scale, threshold,
                                                             floor, tail):
    """The plain RISE/DROP (gaps crossed in one step where nothing in them can qualify) against the kernel
    compiled by Numba, which walks every gap until its EWMA stops changing: the same arrays, bit for bit."""
    from soc import jit

    keys, buckets, counts = [], [], []
    for key, steps in enumerate(series):
        b = 0
        for gap, count in steps:
            b += gap
            keys.append(key)
            buckets.append(b)
            counts.append(count)
    args = (np.array(keys, np.int64), np.array(buckets, np.int64), np.array(counts), max(buckets) + tail, alpha,
            warmup, min_scale, mode, threshold, floor, 0.2, floor)
    with jit.forced("numba"):
        want = kernels.walk_rise_drop(*args)
    got = kernels._plain_rise_drop(*args)
    for w, g in zip(want, got, strict=True):
        assert w.dtype == g.dtype and np.array_equal(w, g)


def test_plain_rise_drop_crosses_gaps_without_walking_them(monkeypatch):
    """A DROP over the EVTX corpus's shape (160 rows, gaps of up to 26 k buckets): the kernel's walk run as
    Python stepped through ~2,100 empty buckets a gap (0.1 s); the plain way crosses the gaps nothing can
    qualify in at once (``_cross``), with the same points."""
    rng = np.random.default_rng(7)
    keys = np.repeat(np.arange(10), 16).astype(np.int64)
    steps = [rng.choice([1, 1, 1, 2000, 26_000], 16) for _ in range(10)]  # bursts, then silences
    buckets = np.concatenate([np.cumsum(s) for s in steps]).astype(np.int64)
    counts = rng.choice([98.0, 100.0, 102.0, 900.0], keys.size, p=[0.3, 0.3, 0.3, 0.1])
    args = (keys, buckets, counts, int(buckets.max()) + 1000, 0.3, 2, 1.0, kernels.DROP, 2.0, 10.0, 0.1, 50.0)
    crossed = []
    cross = kernels._cross
    monkeypatch.setattr(kernels, "_cross", lambda *a: crossed.append(cross(*a)) or crossed[-1])
    got = kernels._plain_rise_drop(*args)
    want = kernels.walk_rise_drop.py_func(*args)
    for w, g in zip(want, got, strict=True):
        assert np.array_equal(w, g)
    assert want[0].size == 3
    assert sum(c is not None for c in crossed) >= 40  # the long gaps between two rows of a key
