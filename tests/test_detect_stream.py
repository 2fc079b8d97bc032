"""The streaming window kernels (``stream_count``, ``stream_distinct``, ``stream_sum``: time-ordered input, no
sort, parts in threads) give exactly what ``order`` + ``window_*`` + ``restore`` give, on random data."""

from __future__ import annotations

import numpy as np
import pytest

from soc.detect import windows

PARTS = [1, 2, 3, 8]


def _reference(keys, times, ids, nums, span):
    """The ordered kernels' answers, back in input order."""
    perm, k, t = windows.order(keys, times)
    n_values = int(ids.max()) + 1 if ids.size and ids.max() >= 0 else 1
    count = windows.restore(windows.window_count(k, t, span), perm)
    distinct = windows.restore(windows.window_distinct(k, t, ids[perm], n_values, span), perm)
    sums, valid = windows.window_sum(k, t, nums[perm], span)
    return count, distinct, windows.restore(sums, perm), windows.restore(valid, perm)


def _check(keys, times, ids, nums, span, parts=PARTS):
    count, distinct, sums, valid = _reference(keys, times, ids, nums, span)
    for p in parts:
        assert np.array_equal(windows.stream_count(keys, times, span, parts=p), count), p
        assert np.array_equal(windows.stream_distinct(keys, times, ids, span, parts=p), distinct), p
        s, v = windows.stream_sum(keys, times, nums, span, parts=p)
        assert np.array_equal(v, valid), p
        assert np.array_equal(s, sums), p  # bit for bit, not approximately
    return count, distinct


def _data(rng, n, n_keys, t_max, n_values, sorted_times=True, integral=True):
    keys = rng.integers(0, n_keys, n).astype(np.int32)
    times = rng.integers(0, t_max + 1, n).astype(np.int64)
    if sorted_times:
        times.sort()
    ids = rng.integers(-1, n_values, n)  # -1: null
    nums = rng.integers(-50, 50, n).astype(np.float64)
    if not integral:
        nums = nums * 0.1 + rng.random(n)
    nums[rng.random(n) < 0.2] = np.nan
    return keys, times, ids, nums


@pytest.mark.parametrize("seed", range(12))
def test_random_ties_few_and_many_keys(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4000))
    n_keys = [1, 2, 5, 40, 700][seed % 5]
    t_max = int(rng.integers(0, 300))  # few timestamps: many ties
    span = int(rng.integers(0, 50)) if seed % 4 else 0
    _check(*_data(rng, n, n_keys, t_max, int(rng.integers(1, 12)), integral=seed % 2 == 0), span)


@pytest.mark.parametrize("seed", range(6))
def test_out_of_order_input(seed):
    rng = np.random.default_rng(100 + seed)
    keys, times, ids, nums = _data(rng, 3000, [1, 3, 50][seed % 3], 200, 6, sorted_times=False)
    assert not np.all(np.diff(times) >= 0)
    _check(keys, times, ids, nums, int(rng.integers(0, 30)))


def test_window_definition_on_a_small_case():
    """Brute force on the definition: same key, at or before the row in time (ties: input order), inclusive."""
    keys = np.array([0, 1, 0, 0, 1, 0, 0], np.int64)
    times = np.array([0, 0, 5, 5, 10, 15, 16], np.int64)
    ids = np.array([3, 3, 3, -1, 4, 2, 3], np.int64)
    span = 10
    count = windows.stream_count(keys, times, span, parts=2)
    distinct = windows.stream_distinct(keys, times, ids, span, parts=2)
    sums, valid = windows.stream_sum(keys, times, ids.astype(np.float64), span, parts=2)
    assert count.tolist() == [1, 1, 2, 3, 2, 3, 2]  # row 5 (t=15): rows 2, 3, 5; t=5 is exactly span before
    assert distinct.tolist() == [1, 1, 1, 1, 2, 2, 2]  # the null (-1) is not a value
    assert valid.tolist() == count.tolist() and sums.tolist() == [3, 3, 6, 5, 7, 4, 5]


def test_empty_input():
    e = np.empty(0, np.int64)
    assert windows.stream_count(e, e, 5).size == 0
    assert windows.stream_distinct(e, e, e, 5).size == 0
    s, v = windows.stream_sum(e, e, np.empty(0), 5)
    assert s.size == 0 and v.size == 0


def test_one_key_and_a_key_with_thousands_of_rows_in_its_window():
    """The worst case for the hash table and the parts' warm-up: one hot key holding thousands of rows of few
    and of many values (long probe runs, counts far above 1), among rare other keys."""
    rng = np.random.default_rng(7)
    n = 60_000
    times = np.sort(rng.integers(0, 20_000, n)).astype(np.int64)
    keys = np.where(rng.random(n) < 0.9, 0, rng.integers(1, 30, n)).astype(np.int64)
    for n_values in (3, 5000):
        ids = rng.integers(-1, n_values, n)
        nums = rng.integers(0, 1000, n).astype(np.float64)
        count, distinct = _check(keys, times, ids, nums, 1000, parts=[1, 2, 5])
        assert count.max() > 2000 and distinct.max() > (2 if n_values == 3 else 1000)
    zeros = np.zeros(n, np.int64)
    _check(zeros, times, rng.integers(0, 50, n), rng.random(n), 300, parts=[1, 3])


def test_span_longer_than_the_data_and_all_one_time():
    rng = np.random.default_rng(3)
    keys, times, ids, nums = _data(rng, 2000, 10, 100, 8)
    _check(keys, times, ids, nums, 10**9)  # every part's warm-up starts at row 0
    _check(keys, np.zeros_like(times), ids, nums, 0)


def test_default_parts_run_in_threads():
    rng = np.random.default_rng(11)
    n = 2 * windows._STREAM_MIN_PART + 1000
    keys, times, ids, nums = _data(rng, n, 5000, n // 10, 100)
    count, distinct, sums, valid = _reference(keys, times, ids, nums, 50)
    assert np.array_equal(windows.stream_count(keys, times, 50), count)
    assert np.array_equal(windows.stream_distinct(keys, times, ids, 50), distinct)
    s, v = windows.stream_sum(keys, times, nums, 50)
    assert np.array_equal(s, sums) and np.array_equal(v, valid)


def test_sums_that_round_are_kept_in_one_part():
    """Non-integer values: running sums round, so a part that rebuilt its sums from its warm-up could differ in
    the last bit; the kernel then runs one part and matches the ordered kernel bit for bit."""
    rng = np.random.default_rng(5)
    keys, times, ids, nums = _data(rng, 5000, 3, 400, 4, integral=False)
    nums[::7] = 1e17  # large and small together: rounding in every window
    _, _, sums, valid = _reference(keys, times, ids, nums, 60)
    s, v = windows.stream_sum(keys, times, nums, 60, parts=4)
    assert np.array_equal(s, sums, equal_nan=True) and np.array_equal(v, valid)
    assert not windows._exact_sums(nums) and windows._exact_sums(np.array([1.0, -3.0, np.nan]))


@pytest.mark.parametrize("block", [1, 7, 100, 1000])
def test_distinct_by_buckets_across_time_blocks(monkeypatch, block):
    """Small time blocks: every block replays the window before it (its warm-up), and a block whose warm-up is
    longer than itself grows; results stay those of the ordered kernel."""
    monkeypatch.setattr(windows, "_DISTINCT_BLOCK", block)
    rng = np.random.default_rng(block)
    for n_keys, n_values, span in ((1, 3, 40), (700, 9, 5), (300, 100_000, 60), (50, 20, 10**12)):
        keys, times, ids, nums = _data(rng, 3000, n_keys, 2000, n_values)
        plan = windows._bucket_plan(times, span, int(ids.max()) + 1)
        warm, start, stop = plan[2][:-1].T  # a block is at least as long as its warm-up (the last may be cut)
        assert len(plan[2]) > 1 and (start - warm <= stop - start).all()
        _, distinct, _, _ = _reference(keys, times, ids, nums, span)
        for p in (1, 2, 3):
            assert np.array_equal(windows.stream_distinct(keys, times, ids, span, parts=p), distinct), (n_keys, p)


@pytest.mark.parametrize("n_keys", [16, 40, 45, 700])
def test_distinct_buckets_merged_two_at_a_time(monkeypatch, n_keys):
    """Small buckets (16 keys each): the merges run two buckets at a time, one of them alone when a part
    has an odd number of buckets or one bucket outlasts its pair (skewed keys)."""
    monkeypatch.setattr(windows, "_BUCKET_TABLE_BITS", 8)
    rng = np.random.default_rng(n_keys)
    keys, times, ids, nums = _data(rng, 4000, n_keys, 3000, 12)
    keys[rng.random(keys.size) < 0.3] = 3  # one heavy key: its bucket runs long after its pair
    assert windows._bucket_plan(times, 40, int(ids.max()) + 1)[1] == 4
    _, distinct, _, _ = _reference(keys, times, ids, nums, 40)
    for p in (1, 2, 3):
        assert np.array_equal(windows.stream_distinct(keys, times, ids, 40, parts=p), distinct), p


def test_distinct_by_hash_table_when_values_or_times_do_not_pack():
    """Values of 2**18 and more, or a time range beyond the packing's bits: the hash table, same results."""
    rng = np.random.default_rng(12)
    keys, times, ids, nums = _data(rng, 4000, 30, 900, 1)
    wide = rng.integers(-1, 3 * 2**18, 4000)
    far = times * 2**45  # ~70 years of microseconds between the first and the last row
    assert windows._bucket_plan(times, 30, int(wide.max()) + 1) is None
    assert windows._bucket_plan(far, 30 * 2**45, 100) is None
    for t, v, span in ((times, wide, 30), (far, rng.integers(-1, 100, 4000), 30 * 2**45)):
        _, distinct, _, _ = _reference(keys, t, v, nums, span)
        for p in (1, 2):
            assert np.array_equal(windows.stream_distinct(keys, t, v, span, parts=p), distinct), p
    assert (distinct > 1).any()


def test_distinct_values_too_wide_to_pack_are_a_clear_error():
    rng = np.random.default_rng(9)
    keys, times, _, _ = _data(rng, 3000, 20, 300, 1)
    ids = rng.integers(0, 4, 3000) * (2**45)  # not dense ids: n_keys * n_values beyond a table slot
    with pytest.raises(ValueError, match="dense ids"):
        windows.stream_distinct(keys, times, ids, 30)


@pytest.mark.parametrize("call", [
    lambda: windows.stream_count(np.array([0, -1]), np.array([1, 2]), 5),
    lambda: windows.stream_count(np.array([0, 1]), np.array([1, 2]), -1),
    lambda: windows.stream_count(np.array([0, 1]), np.array([1, 2, 3]), 5),
    lambda: windows.stream_count(np.array([0.5, 1.0]), np.array([1, 2]), 5),
    lambda: windows.stream_count(np.array([0, 3]), np.array([1, 2]), 5, n_keys=2),
    lambda: windows.stream_distinct(np.array([0, 1]), np.array([1, 2]), np.array([0.5, 1.0]), 5),
    lambda: windows.stream_sum(np.array([0, 1]), np.array([1, 2]), np.array([1.0]), 5),
])
def test_bad_input_is_a_clear_error(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("seed", range(10))
def test_stream_episodes_are_those_of_the_ordered_rows(seed):
    """The detectors' path (time order: ``stream_episodes``) finds the episodes ``episodes`` finds on the
    rows ordered by key, with the same trigger, first and last rows and the same rows in each."""
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(1, 3000))
    keys, times, ids, _ = _data(rng, n, [1, 3, 30, 400][seed % 4], int(rng.integers(0, 400)), 6)
    span = int(rng.integers(0, 40))
    count, distinct = _reference(keys, times, ids, np.zeros(n), span)[:2]
    for stat, threshold in ((count, int(rng.integers(1, 5))), (distinct, int(rng.integers(1, 4)))):
        perm, k, t = windows.order(keys, times)
        o_trig, o_first, o_last = windows.episodes(k, t, count[perm], stat[perm] >= threshold, span)
        trig, first, last, rows = windows.stream_episodes(keys, times, stat >= threshold, span)
        assert trig.size == o_trig.size and trig.size > 0 or threshold > stat.max()
        assert np.array_equal(trig, perm[o_trig])
        assert np.array_equal(first, perm[o_first])
        assert np.array_equal(last, perm[o_last])
        expected = np.full(n, -1)
        for e, (a, b) in enumerate(zip(o_first, o_last, strict=True)):
            expected[perm[a: b + 1]] = e
        assert np.array_equal(rows, expected)


def test_stream_episodes_refuse_rows_out_of_time_order():
    with pytest.raises(ValueError, match="time order"):
        windows.stream_episodes(np.array([0, 0]), np.array([5, 4]), np.array([True, True]), 10)
