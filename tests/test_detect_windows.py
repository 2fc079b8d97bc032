"""The sliding-window kernels against brute-force NumPy references on random data, plus the edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc.detect import windows

SPAN = 10


def _ordered(keys, times):
    keys, times = np.asarray(keys, np.int64), np.asarray(times, np.int64)
    perm, ordered_keys, ordered_times = windows.order(keys, times)
    assert np.array_equal(ordered_keys, keys[perm]) and np.array_equal(ordered_times, times[perm])
    return perm, ordered_keys, ordered_times


def _window(keys, times, j, span):
    """Rows of row j's window, by the definition: same key, at or before j, time >= t_j - span."""
    return [i for i in range(j + 1) if keys[i] == keys[j] and times[i] >= times[j] - span]


rows = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 60), st.integers(-1, 5),
                          st.one_of(st.none(), st.floats(-100, 100, allow_nan=False).map(round))),
                min_size=0, max_size=80)


@settings(max_examples=200, deadline=None)
@given(rows, st.integers(0, 30))
def test_kernels_match_brute_force(data, span):
    keys = np.array([r[0] for r in data], np.int64)
    times = np.array([r[1] for r in data], np.int64)
    ids = np.array([r[2] for r in data], np.int64)
    vals = np.array([np.nan if r[3] is None else r[3] for r in data], np.float64)
    perm, k, t = _ordered(keys, times)
    assert all((k[i], t[i]) <= (k[i + 1], t[i + 1]) for i in range(len(k) - 1))
    v, x = ids[perm], vals[perm]
    counts = windows.window_count(k, t, span)
    distinct = windows.window_distinct(k, t, v, 6, span)
    sums, valid = windows.window_sum(k, t, x, span)
    for j in range(len(k)):
        w = _window(k, t, j, span)
        assert counts[j] == len(w)
        assert distinct[j] == len({v[i] for i in w if v[i] >= 0})
        nums = [x[i] for i in w if not np.isnan(x[i])]
        assert valid[j] == len(nums)
        assert sums[j] == pytest.approx(sum(nums), abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40), st.integers(0, 2)), max_size=60),
       st.integers(0, 20))
def test_ordered_chain_matches_brute_force(data, span):
    keys = np.array([r[0] for r in data], np.int64)
    times = np.array([r[1] for r in data], np.int64)
    stages = np.array([r[2] for r in data], np.int64)
    # ties are ordered by stage, as the kernel requires: sort by (time, stage) before ordering by key
    pre = np.lexsort((stages, times))
    keys, times, stages = keys[pre], times[pre], stages[pre]
    perm, k, t = _ordered(keys, times)
    s = stages[perm]
    start = windows.ordered_chain(k, t, s, 3, span)
    for j in range(len(k)):
        w = _window(k, t, j, span)
        # brute force: rows a < b < c of the window with stages 0, 1, 2
        found = any(s[a] == 0 and s[b] == 1 and s[c] == 2 for a in w for b in w for c in w if a < b < c)
        assert (start[j] != windows.NO_TIME and t[j] - start[j] <= span) == found


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 100)), max_size=80), st.integers(0, 15),
       st.sampled_from(sorted(windows.OPERATORS)), st.integers(0, 5))
def test_episodes_match_brute_force(data, span, op, threshold):
    keys = np.array([r[0] for r in data], np.int64)
    times = np.array([r[1] for r in data], np.int64)
    perm, k, t = _ordered(keys, times)
    counts = windows.window_count(k, t, span)
    hold = windows.holds(counts, op, threshold)
    trig, first, last = windows.episodes(k, t, counts, hold, span)
    expected = []
    for j in range(len(k)):
        if not hold[j]:
            continue
        if expected and k[expected[-1][2]] == k[j] and t[j] - t[expected[-1][2]] <= span:
            expected[-1][2] = j
        else:
            expected.append([j, j - counts[j] + 1, j])
    assert [list(e) for e in zip(trig, first, last, strict=True)] == expected
    fused = windows.count_episodes(k, t, span, windows.OPERATORS[op], float(threshold))
    assert np.array_equal(fused[0], trig) and np.array_equal(fused[1], first) and np.array_equal(fused[2], last)
    assert np.array_equal(fused[3], counts[trig])


def test_boundary_is_inclusive_to_the_microsecond():
    k = np.zeros(2, np.int64)
    assert windows.window_count(k, np.array([0, 300_000_000]), 300_000_000).tolist() == [1, 2]
    assert windows.window_count(k, np.array([0, 300_000_001]), 300_000_000).tolist() == [1, 1]


def test_order_sorts_out_of_order_input_stably():
    keys = np.array([2, 0, 2, 0, 1, 2])
    times = np.array([50, 40, 10, 40, 5, 10])
    perm, k, t = windows.order(keys, times)
    # ties (key 0 at 40, key 2 at 10) keep their input order
    assert perm.tolist() == [1, 3, 4, 2, 5, 0] and t.tolist() == [40, 40, 5, 10, 10, 50]
    assert windows.restore(np.arange(6)[perm] * 10, perm).tolist() == [0, 10, 20, 30, 40, 50]


def test_unordered_rows_are_an_error_not_a_wrong_answer():
    with pytest.raises(ValueError, match="not ordered"):
        windows.window_count(np.array([0, 0]), np.array([5, 1]), 10)
    with pytest.raises(ValueError, match="not ordered"):
        windows.window_count(np.array([1, 0]), np.array([1, 5]), 10)


def test_bad_keys_are_reported():
    with pytest.raises(ValueError, match="non-negative"):
        windows.order(np.array([0, -1]), np.array([1, 2]))
    with pytest.raises(ValueError, match="below n_keys"):
        windows.order(np.array([0, 3]), np.array([1, 2]), n_keys=3)
    with pytest.raises(ValueError, match="integers"):
        windows.order(np.array([0.5]), np.array([1]))
    with pytest.raises(ValueError, match="unknown condition"):
        windows.holds(np.array([1]), "ge", 1)


def test_empty_input():
    e = np.empty(0, np.int64)
    assert all(a.size == 0 for a in windows.order(e, e))
    assert windows.window_count(e, e, 5).size == 0
    assert all(a.size == 0 for a in windows.episodes(e, e, e, np.empty(0, np.bool_), 5))
    assert all(a.size == 0 for a in windows.count_episodes(e, e, 5, windows.GTE, 1.0))


def test_many_episodes_grow_the_output():
    n = 1000  # one event per key: 1000 episodes, more than the kernel's first allocation
    trig, first, last, value = windows.count_episodes(np.arange(n), np.zeros(n, np.int64), 5, windows.GTE, 1.0)
    assert trig.tolist() == list(range(n)) and value.tolist() == [1] * n


def test_sum_restarts_exactly_when_the_window_empties():
    k = np.zeros(3, np.int64)
    sums, valid = windows.window_sum(k, np.array([0, 100, 200]), np.array([0.1, 0.2, 0.3]), 10)
    assert sums.tolist() == [0.1, 0.2, 0.3] and valid.tolist() == [1, 1, 1]


@pytest.mark.parametrize("sorted_times", [True, False])
def test_order_with_many_keys_matches_lexsort(sorted_times):
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 70_000, 50_000).astype(np.int32)  # enough keys for both passes of the sort
    times = rng.integers(0, 1_000, keys.size)
    if sorted_times:
        times = np.sort(times)
    perm, k, t = windows.order(keys, times, n_keys=70_000)
    assert np.array_equal(perm, np.lexsort((times, keys)))  # lexsort is stable too
    assert np.array_equal(k, keys[perm]) and np.array_equal(t, times[perm]) and k.dtype == np.int32


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), max_size=80), st.integers(0, 15),
       st.integers(1, 5))
def test_threshold_episodes_without_sorting_match_count_episodes(data, span, threshold):
    keys = np.array([r[0] for r in data], np.int64)
    times = np.cumsum(np.array([r[1] for r in data], np.int64))  # time order, with ties
    perm, k, t = _ordered(keys, times)
    trig, first, last, _ = windows.count_episodes(k, t, span, windows.GTE, float(threshold))
    expected = sorted(zip(perm[trig].tolist(), perm[first].tolist(), perm[last].tolist(), strict=True))
    got = windows.threshold_episodes(keys, times, span, threshold, 4)
    assert list(zip(*(a.tolist() for a in got), strict=True)) == expected


def test_threshold_episodes_refuse_rows_out_of_time_order():
    with pytest.raises(ValueError, match="time order"):
        windows.threshold_episodes(np.array([0, 0]), np.array([5, 1]), 10, 2, 1)


def test_compact_keeps_order_closes_gaps_and_nulls():
    codes = np.array([7, 3, -1, 7, 12, 3], np.int64)
    assert windows.compact(codes).tolist() == [1, 0, -1, 1, 2, 0]
    assert windows.compact(np.array([5, 2, 5], np.uint32)).tolist() == [1, 0, 1]
    assert windows.compact(np.array([-1, -1], np.int64)).tolist() == [-1, -1]
    assert windows.compact(np.array([], np.int64)).size == 0
