"""Sliding-window kernels: per-group counts, distinct counts, sums and ordered chains over time.

Every kernel takes rows ordered by (group key, time): dense non-negative integer keys, int64 microsecond
timestamps, non-decreasing within a key (``order`` produces that order in O(n) for time-sorted input: a
stable counting sort by key keeps time order). After ordering, one pass over the rows, O(n), no Python
objects; out-of-order rows give a ``ValueError``, never a wrong answer.

Window of row ``j`` (the same for every kernel): the rows of ``j``'s key with
``times[j] - span <= time <= times[j]`` that come at or before ``j`` in the order. Both ends are inclusive:
an event exactly ``span`` before ``j`` is in the window, one microsecond more and it is out. Rows with the
same timestamp are in the window of the last of them (and of later rows), so the last row of a tie sees
all of it.

Episodes (``episodes``, ``count_episodes``): a condition that holds at row ``j`` starts an episode (one
alert); it extends to each later row of the key where it holds again within ``span`` of the episode's last
holding row, so an attack that goes on gives one episode, not one per event; once the window has slid
past (a holding row more than ``span`` after the last one, or a new key), a new episode starts. An
episode reports its trigger row (where the condition first held), first row (the oldest row of the
trigger's window) and last row (the last row where it held); its rows are ``first..last``, contiguous in
the order, and episodes never overlap. ``threshold_episodes`` gives the same episodes of ">= N rows" straight
from time-ordered input, without sorting.

Results are in the order's row order; ``restore(values, perm)`` puts per-row results back in input order.

``stream_count``, ``stream_distinct`` and ``stream_sum`` give the same per-row results (restored) straight from
input in time order, without ordering by key: one pass with per-key state, in threads over contiguous parts;
``stream_episodes`` then gives ``episodes``'s episodes from those results. That is the detectors' path
(``soc.detect.runner``): logs arrive in time order, so no ordering step at all.
"""

from __future__ import annotations

import numpy as np

from soc.jit import num_threads, prange
from soc.jit import plain_njit as njit  # small inputs run as Python (soc.jit)

NO_TIME = np.iinfo(np.int64).min  # "no chain yet" in ``ordered_chain``

# condition operators (the Sigma correlation operators), as codes for the kernels
GT, GTE, LT, LTE, EQ, NEQ = 0, 1, 2, 3, 4, 5
OPERATORS = {"gt": GT, "gte": GTE, "lt": LT, "lte": LTE, "eq": EQ, "neq": NEQ}


@njit(cache=True)
def is_sorted(a: np.ndarray) -> bool:
    """Whether ``a`` is non-decreasing (one pass, stops at the first step down)."""
    for i in range(1, a.size):
        if a[i] < a[i - 1]:
            return False
    return True


@njit(cache=True)
def _counting_order(keys, times, n_keys):
    """Stable counting sort by ``keys`` (dense, 0 <= key < n_keys), O(n + n_keys): the permutation and the
    keys and times in that order.

    Two passes instead of one scatter into n_keys places (a cache miss per row and array once keys are in
    the 100 k): first a scatter by the high bits of the key into a few hundred buckets, whose write streams
    stay in cache, then a counting sort by the low bits inside each bucket, which fits in cache.
    """
    n = keys.size
    bits = 1
    while (1 << bits) < n_keys:
        bits += 1
    lo_bits = bits // 2
    n_hi = ((n_keys - 1) >> lo_bits) + 1
    cnt = np.zeros(n_hi + 1, np.int64)
    for i in range(n):
        cnt[(keys[i] >> lo_bits) + 1] += 1
    for b in range(n_hi):
        cnt[b + 1] += cnt[b]
    bucket_start = cnt.copy()
    keys1 = np.empty(n, keys.dtype)
    times1 = np.empty(n, times.dtype)
    perm1 = np.empty(n, np.int64)
    for i in range(n):
        k = keys[i]
        b = k >> lo_bits
        d = cnt[b]
        keys1[d] = k
        times1[d] = times[i]
        perm1[d] = i
        cnt[b] = d + 1
    n_lo = 1 << lo_bits
    mask = n_lo - 1
    perm = np.empty(n, np.int64)
    sorted_keys = np.empty(n, keys.dtype)
    sorted_times = np.empty(n, times.dtype)
    low = np.zeros(n_lo + 1, np.int64)
    for b in range(n_hi):
        s, e = bucket_start[b], bucket_start[b + 1]
        low[:] = 0
        for r in range(s, e):
            low[(keys1[r] & mask) + 1] += 1
        low[0] = s
        for v in range(n_lo):
            low[v + 1] += low[v]
        for r in range(s, e):
            k = keys1[r]
            v = k & mask
            d = low[v]
            sorted_keys[d] = k
            sorted_times[d] = times1[r]
            perm[d] = perm1[r]
            low[v] = d + 1
    return perm, sorted_keys, sorted_times


@njit(cache=True)
def _counting_order_packed(keys, times, n_keys):
    """``_counting_order`` moving two streams instead of three (key and row packed in one int64, rows < 2**32),
    with the ordered keys written sequentially from the counts: ~17% less CPU at 50 M events, 100 k keys."""
    n = keys.size
    bits = 1
    while (1 << bits) < n_keys:
        bits += 1
    lo_bits = bits // 2
    n_hi = ((n_keys - 1) >> lo_bits) + 1
    cnt = np.zeros(n_hi + 1, np.int64)
    for i in range(n):
        cnt[(keys[i] >> lo_bits) + 1] += 1
    for b in range(n_hi):
        cnt[b + 1] += cnt[b]
    bucket_start = cnt.copy()
    packed = np.empty(n, np.int64)
    times1 = np.empty(n, np.int64)
    for i in range(n):
        k = keys[i]
        b = k >> lo_bits
        d = cnt[b]
        packed[d] = (np.int64(k) << 32) | i
        times1[d] = times[i]
        cnt[b] = d + 1
    n_lo = 1 << lo_bits
    mask = n_lo - 1
    perm = np.empty(n, np.int64)
    sorted_keys = np.empty(n, keys.dtype)
    sorted_times = np.empty(n, np.int64)
    low = np.zeros(n_lo + 1, np.int64)
    for b in range(n_hi):
        s, e = bucket_start[b], bucket_start[b + 1]
        low[:] = 0
        for r in range(s, e):
            low[((packed[r] >> 32) & mask) + 1] += 1
        low[0] = s
        for v in range(n_lo):
            low[v + 1] += low[v]
        base = b << lo_bits
        for v in range(n_lo):  # keys in order: a sequential fill, no scatter
            for d in range(low[v], low[v + 1]):
                sorted_keys[d] = base + v
        for r in range(s, e):
            p = packed[r]
            v = (p >> 32) & mask
            d = low[v]
            sorted_times[d] = times1[r]
            perm[d] = p & 0xFFFFFFFF
            low[v] = d + 1
    return perm, sorted_keys, sorted_times


@njit(cache=True, nogil=True)
def compact(codes: np.ndarray) -> np.ndarray:
    """Integer codes as dense ids 0..m-1 in the same order (a negative code, a null, stays -1): the keys of the
    kernels from a Categorical's physical codes, which leave gaps where a frame lacks some of its values."""
    top = -1
    for c in codes:
        top = max(top, np.int64(c))
    lookup = np.zeros(top + 1, np.int64)
    for c in codes:
        if c >= 0:
            lookup[c] = 1
    m = 0
    for v in range(top + 1):
        seen = lookup[v]
        lookup[v] = m
        m += seen
    out = np.empty(codes.size, np.int64)
    for i in range(codes.size):
        c = codes[i]
        out[i] = lookup[c] if c >= 0 else -1
    return out


def order(keys: np.ndarray, times: np.ndarray, n_keys: int | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ordered by (key, time), stable (ties keep their input order): the permutation, keys and times.

    Time-sorted input (the usual case for logs) costs one check and one counting sort, O(n); otherwise a
    stable argsort by time comes first. ``keys`` must be dense non-negative integers (below ``n_keys``).
    """
    keys = np.asarray(keys)
    times = np.asarray(times, dtype=np.int64)
    if keys.shape != times.shape or keys.ndim != 1:
        raise ValueError("keys and times must be 1-d arrays of the same length")
    if keys.size == 0:
        return np.empty(0, np.int64), keys.copy(), times.copy()
    if keys.dtype.kind not in "iu":
        raise ValueError(f"group keys must be integers, not {keys.dtype}")
    if keys.min() < 0:
        raise ValueError("group keys must be non-negative (dense ids)")
    top = int(keys.max()) + 1
    if n_keys is None:
        n_keys = top
    elif n_keys < top:
        raise ValueError(f"group key {top - 1} is not below n_keys={n_keys}")
    sort = _counting_order_packed if keys.size < 2**32 and n_keys < 2**31 else _counting_order
    if is_sorted(times):
        return sort(keys, times, n_keys)
    by_time = np.argsort(times, kind="stable")
    perm, sorted_keys, sorted_times = sort(keys[by_time], times[by_time], n_keys)
    return by_time[perm], sorted_keys, sorted_times


def restore(values: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Per-row results computed in ``perm`` order, back in input order."""
    out = np.empty_like(values)
    out[perm] = values
    return out


@njit(cache=True, inline="always")
def _misordered(keys, times, j):
    """Row ``j`` is before row ``j - 1`` in (key, time) order. Kernels OR this into a flag and raise once at
    the end: a raise inside the loop costs twice the time of the whole loop."""
    return (keys[j] < keys[j - 1]) | ((keys[j] == keys[j - 1]) & (times[j] < times[j - 1]))


NOT_ORDERED = "rows are not ordered by (key, time): use windows.order first"


@njit(cache=True)
def window_count(keys, times, span):
    """Rows in the window of each row (itself included)."""
    n = keys.size
    out = np.empty(n, np.int64)
    left = 0
    bad = False
    for j in range(n):
        if j > 0:
            bad |= _misordered(keys, times, j)
            if keys[j] != keys[j - 1]:
                left = j
        lo = times[j] - span
        while times[left] < lo:
            left += 1
        out[j] = j - left + 1
    if bad:
        raise ValueError(NOT_ORDERED)
    return out


@njit(cache=True)
def window_distinct(keys, times, values, n_values, span):
    """Distinct ``values`` (dense ids 0 <= v < n_values; -1 is null and not counted) in each row's window."""
    n = keys.size
    out = np.empty(n, np.int64)
    seen = np.zeros(n_values, np.int64)
    left = 0
    distinct = 0
    bad = False
    for j in range(n):
        if j > 0:
            bad |= _misordered(keys, times, j)
            if keys[j] != keys[j - 1]:  # new key: empty the window
                while left < j:
                    v = values[left]
                    if v >= 0:
                        seen[v] -= 1
                        if seen[v] == 0:
                            distinct -= 1
                    left += 1
        v = values[j]
        if v >= 0:
            seen[v] += 1
            if seen[v] == 1:
                distinct += 1
        lo = times[j] - span
        while times[left] < lo:
            v = values[left]
            if v >= 0:
                seen[v] -= 1
                if seen[v] == 0:
                    distinct -= 1
            left += 1
        out[j] = distinct
    if bad:
        raise ValueError(NOT_ORDERED)
    return out


@njit(cache=True)
def window_sum(keys, times, values, span):
    """Sum and number of non-NaN ``values`` (float64; NaN is null) in each row's window.

    A running sum: integers below 2**53 add exactly; it restarts at 0 whenever the window holds no value.
    """
    n = keys.size
    sums = np.empty(n, np.float64)
    valid = np.empty(n, np.int64)
    left = 0
    total = 0.0
    k = 0
    bad = False
    for j in range(n):
        if j > 0:
            bad |= _misordered(keys, times, j)
            if keys[j] != keys[j - 1]:
                left = j
                total = 0.0
                k = 0
        lo = times[j] - span
        while times[left] < lo:  # leave first, so an emptied window restarts from an exact 0
            v = values[left]
            if not np.isnan(v):
                total -= v
                k -= 1
            left += 1
        if k == 0:
            total = 0.0
        v = values[j]
        if not np.isnan(v):
            total += v
            k += 1
        sums[j] = total
        valid[j] = k
    if bad:
        raise ValueError(NOT_ORDERED)
    return sums, valid


@njit(cache=True)
def ordered_chain(keys, times, stages, n_stages, span):
    """Start time of the latest-starting complete chain stage 0 -> 1 -> ... -> n_stages-1 up to each row.

    ``stages`` are 0..n_stages-1 (-1: not a stage); rows of one timestamp must be ordered by stage (a tie
    counts as in order). The window of row ``j`` holds a complete chain iff ``times[j] - out[j] <= span``;
    ``NO_TIME`` means no complete chain yet. Keeping only the latest start per stage is enough: a later
    start fits every window an earlier one fits.
    """
    n = keys.size
    out = np.empty(n, np.int64)
    best = np.full(n_stages, NO_TIME, np.int64)
    bad = False
    for j in range(n):
        if j > 0:
            bad |= _misordered(keys, times, j)
            if keys[j] != keys[j - 1]:
                best[:] = NO_TIME
        s = stages[j]
        if s == 0:
            best[0] = times[j]
        elif s > 0 and best[s - 1] > best[s]:
            best[s] = best[s - 1]
        out[j] = best[n_stages - 1]
    if bad:
        raise ValueError(NOT_ORDERED)
    return out


@njit(cache=True)
def grow(a, size):
    """``a``, or a copy of it with room for at least ``size`` items (twice its size or more) when it has not.
    The hot kernels call it between runs of their loops, not inside one: an array reassigned inside a Numba
    loop slows all of the loop (``_episodes_from``; ``threshold_episodes``, off the detectors' path, still
    grows inside its loop)."""
    if size <= a.size:
        return a
    b = np.empty(max(16, 2 * a.size, size), a.dtype)
    b[: a.size] = a
    return b


@njit(cache=True)
def episodes(keys, times, counts, holds, span):
    """Episodes where ``holds`` is true: arrays of trigger, first and last rows (see the module docstring).

    ``counts`` are the rows in each row's window (``window_count``), so a window starts at ``j - counts[j] + 1``.
    """
    trig = np.empty(1024, np.int64)
    first = np.empty(1024, np.int64)
    last = np.empty(1024, np.int64)
    j, m, is_open = 0, 0, False
    while True:
        j, m, is_open = _episodes_from(keys, times, counts, holds, span, j, m, is_open, trig, first, last)
        if j >= keys.size:
            return trig[:m].copy(), first[:m].copy(), last[:m].copy()
        trig, first, last = grow(trig, m + 1), grow(first, m + 1), grow(last, m + 1)


@njit(cache=True)
def _episodes_from(keys, times, counts, holds, span, j, m, is_open, trig, first, last):
    """``episodes`` from row ``j`` until the outputs are full; returns where it stopped. The outputs are
    arguments, grown by the caller: arrays reassigned inside a loop slow all of it (here ~2x; 24x in
    ``kernels.rise_drop``)."""
    while j < keys.size:
        if is_open and keys[j] != keys[last[m - 1]]:
            is_open = False
        if holds[j]:
            if is_open and times[j] - times[last[m - 1]] <= span:
                last[m - 1] = j
            else:
                if m == trig.size:
                    return j, m, is_open
                trig[m] = j
                first[m] = j - counts[j] + 1
                last[m] = j
                m += 1
                is_open = True
        j += 1
    return j, m, is_open


@njit(cache=True)
def _holds(value, op, threshold):
    if op == GT:
        return value > threshold
    if op == GTE:
        return value >= threshold
    if op == LT:
        return value < threshold
    if op == LTE:
        return value <= threshold
    if op == EQ:
        return value == threshold
    return value != threshold


@njit(cache=True)
def count_episodes(keys, times, span, op, threshold):
    """``window_count`` + condition + ``episodes`` in one pass on ordered rows, without per-row arrays.

    Returns trigger, first and last rows and the window count at each trigger.
    """
    trig = np.empty(1024, np.int64)
    first = np.empty(1024, np.int64)
    last = np.empty(1024, np.int64)
    value = np.empty(1024, np.int64)
    j, m, left, is_open, bad = 0, 0, 0, False, False
    while True:
        j, m, left, is_open, bad = _count_episodes_from(keys, times, span, op, threshold, j, m, left, is_open, bad,
                                                        trig, first, last, value)
        if j >= keys.size:
            break
        need = m + 1
        trig, first, last, value = grow(trig, need), grow(first, need), grow(last, need), grow(value, need)
    if bad:
        raise ValueError(NOT_ORDERED)
    return trig[:m].copy(), first[:m].copy(), last[:m].copy(), value[:m].copy()


@njit(cache=True)
def _count_episodes_from(keys, times, span, op, threshold, j, m, left, is_open, bad, trig, first, last, value):
    """``count_episodes`` from row ``j`` until the outputs are full (see ``_episodes_from``)."""
    while j < keys.size:
        if j > 0:
            bad |= _misordered(keys, times, j)
            if keys[j] != keys[j - 1]:
                left = j
                is_open = False
        lo = times[j] - span
        while times[left] < lo:
            left += 1
        c = j - left + 1
        if _holds(c, op, threshold):
            if is_open and times[j] - times[last[m - 1]] <= span:
                last[m - 1] = j
            else:
                if m == trig.size:
                    return j, m, left, is_open, bad
                trig[m] = j
                first[m] = left
                last[m] = j
                value[m] = c
                m += 1
                is_open = True
        j += 1
    return j, m, left, is_open, bad


@njit(cache=True)
def threshold_episodes(keys, times, span, threshold, n_keys):
    """Episodes of "at least ``threshold`` rows of a key in the window" on rows in time order, without sorting.

    For logs, which arrive in time order: each key keeps the (time, row) of its
    last ``threshold`` events in a ring (``n_keys * threshold * 16`` bytes; a pair shares a cache line), and
    the condition holds at a row when the oldest of them is within ``span``. The episodes are those of
    ``count_episodes(..., GTE, threshold)`` on the ordered rows (at a trigger the window holds exactly
    ``threshold`` rows, so the ring's oldest is the window's first), given here as input row numbers, sorted
    by trigger row. ``times`` must be non-decreasing.
    """
    n = keys.size
    t_cap = max(threshold, 1)
    ring = np.empty((n_keys, t_cap, 2), np.int64)  # [key, slot] = (time, row)
    state = np.zeros((n_keys, 3), np.int64)  # [key] = (events seen, open episode + 1, its last time)
    trig = np.empty(16, np.int64)
    first = np.empty(16, np.int64)
    last = np.empty(16, np.int64)
    m = 0
    bad = False
    for j in range(n):
        t = times[j]
        if j > 0:
            bad |= t < times[j - 1]
        k = keys[j]
        seen = state[k, 0]
        slot = seen % t_cap
        ring[k, slot, 0] = t
        ring[k, slot, 1] = j
        seen += 1
        state[k, 0] = seen
        if seen < t_cap:
            continue
        oldest = seen % t_cap
        if ring[k, oldest, 0] < t - span:
            continue
        e = state[k, 1] - 1
        if e >= 0 and t - state[k, 2] <= span:
            last[e] = j
            state[k, 2] = t
            continue
        trig = grow(trig, m + 1)
        first = grow(first, m + 1)
        last = grow(last, m + 1)
        trig[m] = j
        first[m] = ring[k, oldest, 1]
        last[m] = j
        state[k, 1] = m + 1
        state[k, 2] = t
        m += 1
    if bad:
        raise ValueError("rows are not in time order: sort them, or use order() and count_episodes")
    return trig[:m].copy(), first[:m].copy(), last[:m].copy()


@njit(cache=True)
def _stream_episodes(keys, times, holds, span, j, m, open_ep, trig, last):
    """``episodes`` on rows in time order, from row ``j`` until the outputs are full (see ``_episodes_from``):
    the same per-key logic (a holding row within ``span`` of its key's open episode extends it, otherwise
    starts one), with each key's open episode kept in ``open_ep``."""
    while j < keys.size:
        if holds[j]:
            k = keys[j]
            e = open_ep[k]
            if e >= 0 and times[j] - times[last[e]] <= span:
                last[e] = j
            else:
                if m == trig.size:
                    return j, m
                trig[m] = j
                last[m] = j
                open_ep[k] = m
                m += 1
        j += 1
    return j, m


@njit(cache=True)
def _episode_of_rows(keys, lows, lasts, key_start, first, lo, hi, out):
    """Each row's episode in ``out`` (rows ``lo..hi``), and each episode's first row: a row of key k is in
    k's episode e when ``lows[e] <= row <= lasts[e]``. A key's episodes (``key_start[k]:key_start[k + 1]``, in
    time order) never overlap, so one pointer per key walks them as the rows go by: O(rows + episodes)."""
    at = key_start[:-1].copy()
    for i in range(lo, hi):
        k = keys[i]
        e = at[k]
        end = key_start[k + 1]
        while e < end and lasts[e] < i:
            e += 1
        at[k] = e
        if e < end and lows[e] <= i:
            out[i] = e
            first[e] = min(first[e], i)


def stream_episodes(keys: np.ndarray, times: np.ndarray, holds: np.ndarray, span: int, n_keys: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``episodes`` straight from rows in time order (non-decreasing ``times``), given as input row numbers:
    trigger, first and last row of each episode, in (key, time) order as ``episodes`` gives them, and each
    row's episode (-1 for none). An episode's rows are its key's rows from ``first`` to ``last``: the rows
    of the trigger's window (time >= trigger time - span) and those up to its last holding row."""
    keys = np.ascontiguousarray(keys)
    times = np.ascontiguousarray(times, dtype=np.int64)
    if keys.size and not is_sorted(times):
        raise ValueError("rows are not in time order: sort them by time first")
    n_keys = int(keys.max()) + 1 if n_keys is None and keys.size else (n_keys or 0)
    holds = np.ascontiguousarray(holds, dtype=np.bool_)
    open_ep = np.full(max(n_keys, 1), -1, np.int64)
    trig, last = np.empty(1024, np.int64), np.empty(1024, np.int64)
    j, m = 0, 0
    while j < keys.size:
        j, m = _stream_episodes(keys, times, holds, span, j, m, open_ep, trig, last)
        if j < keys.size:
            trig, last = grow(trig, m + 1), grow(last, m + 1)
    trig, last = trig[:m], last[:m]
    # the triggers' window starts while the triggers are in time order: sorted needles make searchsorted
    # walk forward (4.5 M episodes in 50 M rows: 6.4 s in key order)
    lows = np.searchsorted(times, times[trig] - span, side="left")
    ep_keys = keys[trig]
    ranked = np.lexsort((trig, ep_keys))  # (key, time): the order of ``episodes`` on ordered rows
    trig, last, ep_keys, lows = trig[ranked], last[ranked], ep_keys[ranked], lows[ranked]
    first = np.full(trig.size, keys.size, np.int64)
    rows = np.full(keys.size, -1, np.int64)
    if not trig.size:  # nothing found, the usual case: no pass over the rows
        return trig, first, last, rows
    key_start = np.searchsorted(ep_keys, np.arange(max(n_keys, 1) + 1))
    lo, hi = int(lows.min()), int(last.max()) + 1  # no row outside belongs to an episode
    _episode_of_rows(keys, lows, last, key_start, first, lo, hi, rows)
    return trig, first, last, rows


def holds(values: np.ndarray, op: str, threshold: float) -> np.ndarray:
    """Where ``values op threshold`` (op: gt, gte, lt, lte, eq, neq), vectorised; NaN never holds."""
    ops = {"gt": np.greater, "gte": np.greater_equal, "lt": np.less, "lte": np.less_equal, "eq": np.equal,
           "neq": np.not_equal}
    if op not in ops:
        raise ValueError(f"unknown condition operator {op!r} (expected one of {', '.join(ops)})")
    out = ops[op](values, threshold)
    if op == "neq" and values.dtype.kind == "f":
        out &= ~np.isnan(values)
    return out


# --- streaming kernels: time-ordered input, no sort, results in input order ----------------------------------
#
# Logs arrive in time order, so the rows of every window are a contiguous run of the input that slides forward:
# one pointer ``left`` walks behind the current row and takes each row out of its key's state when it falls out
# of the window (time < t - span). Each row goes in once and out once, O(1); per-key state only (a count, a sum,
# a per-(key, value) count in a hash table that holds just the pairs of rows inside windows), no permutation,
# no gather, no restore. The windows are those of the module docstring: the rows of a key that come before a
# row in time order (ties: input order), which are the rows before it in ``order``'s (key, time) order.
#
# Threads: the rows are cut into contiguous parts, each replayed in its own thread (nogil) from the first row
# of its window (a binary search), so its state is rebuilt before it writes its own rows; no shared state.

_STREAM_MIN_PART = 1 << 18  # rows per part below which a thread is not worth starting
_FIB = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64: multiplicative (Fibonacci) hashing


@njit(cache=True, nogil=True)
def _scan(keys, times):
    """One pass: smallest and largest key, and whether ``times`` are non-decreasing."""
    lo = hi = keys[0]
    ok = True
    for i in range(keys.size):
        k = keys[i]
        lo = min(lo, k)
        hi = max(hi, k)
        if i > 0:
            ok &= times[i] >= times[i - 1]
    return lo, hi, ok


@njit(cache=True, nogil=True)
def _stream_count_part(keys, times, span, n_keys, warm, start, stop, out):
    cnt = np.zeros(n_keys, np.int64)
    left = warm
    for j in range(warm, stop):
        k = keys[j]
        cnt[k] += 1
        lo = times[j] - span
        for _ in range(2):  # the usual 0-2 leaving rows without a branch (a mispredicted loop exit per row
            e = times[left] < lo  # costs a quarter of the time); left never passes j: times[j] >= lo
            cnt[keys[left]] -= e
            left += e
        while times[left] < lo:
            cnt[keys[left]] -= 1
            left += 1
        if j >= start:
            out[j] = cnt[k]


@njit(cache=True, nogil=True, inline="always")
def _slot(pair, bits):
    return ((pair * _FIB) >> (64 - bits)) & ((1 << bits) - 1)  # the top bits of the product


@njit(cache=True, nogil=True, inline="always")
def _add(tab, bits, cb, pair):
    """One more row of ``pair``; True when it is new (its count went 0 -> 1). A slot holds pair << cb | count
    (0: free), so a probe reads one int64."""
    mask = (1 << bits) - 1
    i = _slot(pair, bits)
    while True:
        e = tab[i]
        if e == 0:
            tab[i] = (pair << cb) | 1
            return True
        if (e >> cb) == pair:
            tab[i] = e + 1
            return False
        i = (i + 1) & mask


@njit(cache=True, nogil=True, inline="always")
def _remove(tab, bits, cb, pair):
    """One row less of ``pair`` (present); True when its count drops to 0, then its slot is freed by backward
    shift (the later entries of its probe run move up), so lookups never meet tombstones."""
    mask = (1 << bits) - 1
    i = _slot(pair, bits)
    while (tab[i] >> cb) != pair:
        i = (i + 1) & mask
    e = tab[i]
    if (e & ((1 << cb) - 1)) > 1:
        tab[i] = e - 1
        return False
    j = i
    while True:
        j = (j + 1) & mask
        e = tab[j]
        if e == 0:
            break
        h = _slot(e >> cb, bits)
        # e stays if its home h lies cyclically in (i, j]: the freed slot i is not on its probe path
        if (h > i and h <= j) if i <= j else (h > i or h <= j):
            continue
        tab[i] = e
        i = j
    tab[i] = 0
    return True


@njit(cache=True, nogil=True)
def _regrow(tab, bits, cb):
    new = np.zeros(2 * tab.size, np.int64)
    mask = new.size - 1
    for e in tab:
        if e != 0:
            s = _slot(e >> cb, bits + 1)
            while new[s] != 0:
                s = (s + 1) & mask
            new[s] = e
    return new


@njit(cache=True, nogil=True)
def _distinct_rows(keys, times, values, n_values, cb, span, tab, bits, distinct, start, stop, j, left, live, out):
    """Rows from ``j`` until the table is half full (or ``stop``): the next row, ``left`` and the live
    pairs. The table is an argument, not reassigned here: a reassigned array in the loop costs twice the time."""
    while j < stop:
        k = keys[j]
        v = values[j]
        if v >= 0:
            if 2 * (live + 1) > tab.size:
                break
            if _add(tab, bits, cb, np.int64(k) * n_values + v):
                distinct[k] += 1
                live += 1
        lo = times[j] - span
        while times[left] < lo:
            w = values[left]
            if w >= 0:
                kl = keys[left]
                if _remove(tab, bits, cb, np.int64(kl) * n_values + w):
                    distinct[kl] -= 1
                    live -= 1
            left += 1
        if j >= start:
            out[j] = distinct[k]
        j += 1
    return j, left, live


@njit(cache=True, nogil=True)
def _stream_distinct_part(keys, times, values, n_values, cb, span, n_keys, warm, start, stop, out):
    """A (key, value) -> rows-in-window hash table: it holds the pairs of the rows in the sliding window only,
    doubled whenever it gets half full (short probe runs)."""
    distinct = np.zeros(n_keys, np.int64)
    bits = 12
    tab = np.zeros(1 << bits, np.int64)
    j, left, live = warm, warm, 0
    while True:
        j, left, live = _distinct_rows(keys, times, values, n_values, cb, span, tab, bits, distinct, start, stop, j,
                                       left, live, out)
        if j >= stop:
            return
        tab = _regrow(tab, bits, cb)
        bits += 1


@njit(cache=True, nogil=True)
def _stream_sum_part(keys, times, values, span, n_keys, warm, start, stop, sums, valid):
    total = np.zeros(n_keys, np.float64)
    cnt = np.zeros(n_keys, np.int64)
    left = warm
    for j in range(warm, stop):
        k = keys[j]
        lo = times[j] - span
        for _ in range(2):  # leave first (per key the same operations as ``window_sum``, so the same sums);
            w = values[left]  # the usual 0-2 leaving rows without a branch: subtracting 0.0 changes no sum
            e = (times[left] < lo) & (w == w)  # w == w: not NaN
            kl = keys[left]
            total[kl] -= w if e else 0.0
            cnt[kl] -= e
            left += times[left] < lo
        while times[left] < lo:
            w = values[left]
            if not np.isnan(w):
                kl = keys[left]
                total[kl] -= w
                cnt[kl] -= 1
            left += 1
        if cnt[k] == 0:
            total[k] = 0.0
        v = values[j]
        if not np.isnan(v):
            total[k] += v
            cnt[k] += 1
        if j >= start:
            sums[j] = total[k]
            valid[j] = cnt[k]


@njit(cache=True, nogil=True)
def _exact_sums(values):
    """Every running sum of these values is exact (integers, total magnitude below 2**53), so the order of the
    additions, hence the cut into parts, cannot change a sum."""
    s = 0.0
    for v in values:
        if not np.isnan(v):
            if v != np.floor(v):
                return False
            s += abs(v)
    return s < 2.0**53


# Distinct counts by key buckets (``stream_distinct``'s fast path). The hash table of (key, value) pairs costs
# a cache miss per row and per leaving row. Instead, the rows of a time block (plus the rows of the window
# before it, replayed) are scattered into buckets of 2**shift keys, each row packed into one int64 (time
# offset | key within its bucket | value + 1, 0 for null); a bucket's rows, still in time order, then
# stream through a dense count table of its (key, value) pairs that stays in L2, and the results are
# gathered back to the rows.
_BUCKET_TABLE_BITS = 16  # a bucket's count table: 2**16 int32 = 256 KB (fastest measured here)
_MAX_VALUE_BITS = 18  # values needing more bits take the hash table (a table of one key would leave L2)
_DISTINCT_BLOCK = 1 << 22  # rows per time block: its scatter buffers stay small and cached


_NULL_COUNT = 1 << 30  # a null value's table slot starts here: it never reaches 0 or 1, so never counts


@njit(cache=True, nogil=True, inline="always")
def _bucket_step(packed, j, left, tmask, reach, qmask, vb, cnt, distinct, out_sorted):
    """One step of a bucket's merge of entering and leaving rows, without a branch: row ``left`` leaves if
    its time + span is before row ``j``'s (``reach`` is (span + 1) in the time bits), else row ``j``
    enters. The row's (key, value) count moves by one, and its key's distinct count with it when the
    count leaves or reaches 0. Returns the moved pointers.

    The select is on the row index, not on the packed words: a select of two loaded words is turned into
    a branch by LLVM's x86 cmov converter, and that branch is taken at random."""
    one = np.uint64(1)
    leave = (packed[left] & tmask) + reach <= packed[j]
    p = packed[left if leave else j]
    q = p & qmask
    c = cnt[q]
    lv = np.int32(leave)
    delta = np.int32(1) - lv - lv
    cnt[q] = c + delta
    k = q >> vb
    d = distinct[k] + (delta & -np.int32(c == lv))  # entering a 0 count, or leaving a 1
    distinct[k] = d
    out_sorted[j] = d  # a leaving step writes here too; row j's own step comes later and wins
    lu = np.uint64(leave)
    return j + one - lu, left + lu


@njit(cache=True, nogil=True)
def _bucket_stream(start, packed, shift, vb, span, b0, b1, out_sorted, cnt, distinct):
    """Buckets ``b0..b1``, two at a time: each bucket's rows merged with its leaving rows in time order
    (``_bucket_step``). A step's pointers wait on its loads, so one merge is a chain of latencies; two
    independent merges in one loop run in each other's shadow (6.5 against 9.1 ns a row here; four were
    no faster). ``cnt`` and ``distinct`` hold two tables each, one per merge; null slots of ``cnt`` hold
    ``_NULL_COUNT``, and the tables are left as they were found. ``span`` is below 2**(61 - shift - vb)
    (``_bucket_plan``)."""
    one = np.uint64(1)
    vbu = np.uint64(vb)
    qbits = np.uint64(shift + vb)
    qmask = (one << qbits) - one
    tmask = ~qmask
    reach = (np.uint64(span) + one) << qbits
    half = cnt.size // 2
    cnt_a, cnt_b = cnt[:half], cnt[half:]
    dist_a, dist_b = distinct[:distinct.size // 2], distinct[distinct.size // 2:]
    for b in range(b0, b1, 2):
        sa, ea = np.uint64(start[b]), np.uint64(start[b + 1])
        sb, eb = np.uint64(start[b + 1]), np.uint64(start[min(b + 2, b1)])
        ja, la, jb, lb = sa, sa, sb, sb
        while ja < ea and jb < eb:
            ja, la = _bucket_step(packed, ja, la, tmask, reach, qmask, vbu, cnt_a, dist_a, out_sorted)
            jb, lb = _bucket_step(packed, jb, lb, tmask, reach, qmask, vbu, cnt_b, dist_b, out_sorted)
        while ja < ea:
            ja, la = _bucket_step(packed, ja, la, tmask, reach, qmask, vbu, cnt_a, dist_a, out_sorted)
        while jb < eb:
            jb, lb = _bucket_step(packed, jb, lb, tmask, reach, qmask, vbu, cnt_b, dist_b, out_sorted)
        for r in range(la, ea):  # the rows still in a window leave, for the next buckets
            q = packed[r] & qmask
            cnt_a[q] -= np.int32(1)
            dist_a[q >> vbu] = 0
        for r in range(lb, eb):
            q = packed[r] & qmask
            cnt_b[q] -= np.int32(1)
            dist_b[q >> vbu] = 0


@njit(cache=True, nogil=True)
def _bucket_sizes(keys, shift, lo, hi, hist):
    """Rows of each bucket among rows ``lo..hi``."""
    hist[:] = 0
    sh = np.uint64(shift)
    for i in range(lo, hi):
        hist[np.uint64(keys[i]) >> sh] += 1


@njit(cache=True, nogil=True)
def _scatter(keys, times, values, t0, shift, vb, lo, hi, put, packed):
    """Rows ``lo..hi`` packed into their buckets from ``put`` on. Indices are unsigned throughout: with
    signed ones Numba checks every index for a negative value, which cost 20% of this pass here."""
    qbits = np.uint64(shift + vb)
    sh, vbu = np.uint64(shift), np.uint64(vb)
    kmask = (np.uint64(1) << sh) - np.uint64(1)
    one = np.uint64(1)
    for i in range(lo, hi):
        k = np.uint64(keys[i])
        b = k >> sh
        v = values[i]
        at = put[b]
        packed[at] = (np.uint64(times[i] - t0) << qbits) | ((k & kmask) << vbu) | np.uint64(v + 1 if v >= 0 else 0)
        put[b] = at + one


@njit(cache=True, nogil=True)
def _gather(keys, shift, lo, s, hi, take, out_sorted, out):
    """The counts of rows ``s..hi`` back in row order; rows ``lo..s`` (the warm-up) only move ``take`` on.
    Unsigned indices and no branch in the loop: 40% of this pass here (see ``_scatter``)."""
    sh, one = np.uint64(shift), np.uint64(1)
    for i in range(lo, min(s, hi)):
        take[np.uint64(keys[i]) >> sh] += one
    for i in range(max(lo, s), hi):
        b = np.uint64(keys[i]) >> sh
        at = take[b]
        out[i] = out_sorted[at]
        take[b] = at + one


@njit(cache=True, nogil=True, parallel=True)
def _distinct_buckets(keys, times, values, span, n_keys, vb, shift, blocks, parts):
    """The distinct counts of the rows of each block ``(warm, start, stop)``: its rows from ``warm`` (the
    window before ``start``) scattered, streamed and gathered back, every pass in ``parts`` threads. The
    buffers are Numba's, not NumPy's: NumPy asks for huge pages, and where the kernel compacts memory to
    find them first touches stall (see ``_empty_int64``: 1.4 s against 1.9 s here)."""
    n_b = ((n_keys - 1) >> shift) + 1
    qbits = shift + vb
    cnts = np.zeros((parts, 2 << qbits), np.int32)  # two tables a part, one per merge of ``_bucket_stream``
    for p in range(parts):
        cnts[p, ::1 << vb] = _NULL_COUNT
    dists = np.zeros((parts, 2 << shift), np.int32)
    big = 0
    for i in range(blocks.shape[0]):
        big = max(big, blocks[i, 2] - blocks[i, 0])
    packed = np.empty(big, np.uint64)
    out_sorted = np.empty(big, np.int32)
    out = np.empty(keys.size, np.int32)  # half the bytes of int64 to write (and to fault in)
    hists = np.zeros((parts, n_b), np.uint64)
    pos = np.zeros((parts, n_b), np.uint64)
    start = np.zeros(n_b + 1, np.int64)
    for blk in range(blocks.shape[0]):
        w, s, e = blocks[blk, 0], blocks[blk, 1], blocks[blk, 2]
        m = e - w
        for p in prange(parts):
            _bucket_sizes(keys, shift, w + m * p // parts, w + m * (p + 1) // parts, hists[p])
        at = np.uint64(0)
        for b in range(n_b):
            start[b] = at
            for p in range(parts):
                pos[p, b] = at
                at += hists[p, b]
        start[n_b] = m
        gather = pos.copy()  # the scatter moves ``pos`` on; the gather walks the same places again
        for p in prange(parts):
            _scatter(keys, times, values, times[w], shift, vb, w + m * p // parts, w + m * (p + 1) // parts,
                     pos[p], packed)
        for p in prange(parts):
            b0 = np.searchsorted(start, m * p // parts) if p > 0 else 0
            b1 = np.searchsorted(start, m * (p + 1) // parts) if p < parts - 1 else n_b
            _bucket_stream(start, packed, shift, vb, span, b0, b1, out_sorted, cnts[p], dists[p])
        for p in prange(parts):
            _gather(keys, shift, w + m * p // parts, s, w + m * (p + 1) // parts, gather[p], out_sorted, out)
    return out


def _bucket_plan(times: np.ndarray, span: int, n_values: int):
    """(value bits, key bits of a bucket, blocks, span) for ``_distinct_buckets``, or None when the values or
    a block's time range do not pack into an int64 (then the hash table)."""
    vb = int(n_values).bit_length()  # value + 1 <= n_values < 2**vb
    if vb > _MAX_VALUE_BITS:
        return None
    shift = max(0, _BUCKET_TABLE_BITS - vb)
    blocks = []
    s, n = 0, times.size
    while s < n:
        w = int(np.searchsorted(times, times[s] - span, "left"))
        e = min(n, s + max(_DISTINCT_BLOCK, s - w))  # a block at least as long as its warm-up: at most twice the work
        blocks.append((w, s, e))
        s = e
    blocks = np.array(blocks, np.int64).reshape(-1, 3)
    if blocks.size and int((times[blocks[:, 2] - 1] - times[blocks[:, 0]]).max()) >= 1 << (61 - shift - vb):
        return None
    return vb, shift, blocks, min(span, 1 << (61 - shift - vb))  # beyond a block's time range, nothing leaves


@njit(cache=True)
def _empty_int64(n):
    """An output array from Numba's allocator. NumPy asks the kernel for huge pages on large arrays; where
    it compacts memory to find them (THP defrag ``madvise``, a common default and this VM's), the first
    touches of a 400 MB output stall: ~0.5 s more per 50 M rows here, measured side by side."""
    return np.empty(n, np.int64)


@njit(cache=True)
def _empty_int32(n):
    """See ``_empty_int64``."""
    return np.empty(n, np.int32)


@njit(cache=True)
def _empty_float64(n):
    """See ``_empty_int64``."""
    return np.empty(n, np.float64)


def _stream_prepare(keys, times, span, n_keys, *columns):
    """Checked arrays in time order (stable argsort when they are not), n_keys and the argsort (or None)."""
    keys = np.asarray(keys)
    times = np.asarray(times, dtype=np.int64)
    if keys.shape != times.shape or keys.ndim != 1 or any(np.shape(c) != keys.shape for c in columns):
        raise ValueError("keys, times and values must be 1-d arrays of the same length")
    if span < 0:
        raise ValueError(f"window span must be >= 0, not {span}")
    if keys.size and keys.dtype.kind not in "iu":
        raise ValueError(f"group keys must be integers, not {keys.dtype}")
    by_time = None
    top = 0
    if keys.size:
        lo, hi, in_order = _scan(keys, times)
        if lo < 0:
            raise ValueError("group keys must be non-negative (dense ids)")
        top = int(hi) + 1
        if not in_order:
            by_time = np.argsort(times, kind="stable")
            keys, times = keys[by_time], times[by_time]
            columns = tuple(c[by_time] for c in columns)
    if n_keys is None:
        n_keys = top
    elif n_keys < top:
        raise ValueError(f"group key {top - 1} is not below n_keys={n_keys}")
    return keys, times, n_keys, by_time, columns


def _parts(times: np.ndarray, span: int, parts: int | None) -> list[tuple[int, int, int]]:
    """(warm-up start, start, stop) of each contiguous part; parts=None: one per Numba thread, not too small."""
    n = times.size
    if parts is None:
        parts = max(1, min(num_threads(), n // _STREAM_MIN_PART))
    bounds = np.linspace(0, n, max(1, min(parts, n)) + 1).astype(np.int64)
    starts = bounds[:-1]
    warms = np.searchsorted(times, times[starts] - span, side="left") if n else starts
    return [(int(w), int(s), int(e)) for w, s, e in zip(warms, starts, bounds[1:], strict=True) if e > s]


def _run_parts(fn, pieces) -> None:
    """``fn(warm, start, stop)`` for each part, in threads (the kernels release the GIL)."""
    if len(pieces) <= 1:
        for p in pieces:
            fn(*p)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(pieces)) as pool:
        for f in [pool.submit(fn, *p) for p in pieces]:
            f.result()


def _input_order(out, by_time):
    return out if by_time is None else restore(out, by_time)


def stream_count(keys: np.ndarray, times: np.ndarray, span: int, n_keys: int | None = None,
                 parts: int | None = None) -> np.ndarray:
    """Rows in the window of each row, in input order, without sorting by key: ``window_count`` on ``order``ed
    rows, restored. Time-ordered input streams in one pass (``parts`` threads, default one per Numba thread);
    other input is stably argsorted by time first."""
    keys, times, n_keys, by_time, _ = _stream_prepare(keys, times, span, n_keys)
    out = _empty_int64(keys.size)
    _run_parts(lambda w, s, e: _stream_count_part(keys, times, span, n_keys, w, s, e, out),
               _parts(times, span, parts))
    return _input_order(out, by_time)


def stream_distinct(keys: np.ndarray, times: np.ndarray, values: np.ndarray, span: int, n_keys: int | None = None,
                    parts: int | None = None) -> np.ndarray:
    """Distinct ``values`` (non-negative ids; negative is null, not counted) in each row's window, in input
    order: ``window_distinct`` on ``order``ed rows, restored, without sorting (see ``stream_count``). Values
    below 2**18 are counted by key buckets (``_distinct_buckets``, ``parts`` threads); wider ones by a hash
    table of the (key, value) pairs of the rows inside windows, so memory follows the window, not
    n_keys * n_values. The counts are int32 (a count never exceeds the rows of one window)."""
    values = np.asarray(values)
    if values.size and values.dtype.kind not in "iu":
        raise ValueError(f"distinct values must be integer ids, not {values.dtype}")
    keys, times, n_keys, by_time, (values,) = _stream_prepare(keys, times, span, n_keys, values)
    n_values = int(values.max()) + 1 if values.size else 1
    n_values = max(n_values, 1)
    plan = _bucket_plan(times, span, n_values) if keys.size else None
    if plan is not None:
        vb, shift, blocks, span = plan
        if parts is None:
            parts = num_threads()
        out = _distinct_buckets(keys if keys.dtype.kind == "i" else keys.astype(np.int64), times,
                                values.astype(np.int64, copy=False), span, n_keys, vb, shift, blocks, max(1, parts))
        return _input_order(out, by_time)
    out = _empty_int32(keys.size)
    cb = max(keys.size, 1).bit_length()  # bits of a pair's row count
    if (max(n_keys * n_values - 1, 1)).bit_length() + cb > 62:  # a table slot holds pair << cb | count
        raise ValueError(f"values must be dense ids: {n_keys:,} keys x {n_values:,} values x {keys.size:,} rows "
                         "do not fit a 62-bit table slot")
    _run_parts(lambda w, s, e: _stream_distinct_part(keys, times, values, n_values, cb, span, n_keys, w, s, e,
                                                     out),
               _parts(times, span, parts))
    return _input_order(out, by_time)


def stream_sum(keys: np.ndarray, times: np.ndarray, values: np.ndarray, span: int, n_keys: int | None = None,
               parts: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sum and number of non-NaN ``values`` in each row's window, in input order: ``window_sum`` on ``order``ed
    rows, restored, bit for bit, without sorting (see ``stream_count``). Values whose running sums may round
    (non-integers, or totals reaching 2**53) run in one part: a part rebuilds its sums from its warm-up only,
    which could round differently from the sums carried from the first row."""
    values = np.asarray(values, dtype=np.float64)
    keys, times, n_keys, by_time, (values,) = _stream_prepare(keys, times, span, n_keys, values)
    sums = _empty_float64(keys.size)
    valid = _empty_int64(keys.size)
    pieces = _parts(times, span, parts)
    if len(pieces) > 1 and not _exact_sums(values):
        pieces = _parts(times, span, 1)
    _run_parts(lambda w, s, e: _stream_sum_part(keys, times, values, span, n_keys, w, s, e, sums, valid), pieces)
    return _input_order(sums, by_time), _input_order(valid, by_time)
