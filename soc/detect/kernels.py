"""Statistical kernels beyond sliding windows: periodicity (beaconing), string entropy and length on Arrow
buffers, rise/drop of per-entity volume (EWMA with a robust deviation), first-seen values.

Same conventions as ``soc.detect.windows``: plain NumPy arrays, dense integer keys, int64 microsecond
timestamps, ``@njit(cache=True)``, O(n) after ordering (``windows.order``), no Python objects inside.
"""

from __future__ import annotations

import numpy as np

from soc.detect.windows import NOT_ORDERED, _misordered, grow
from soc.jit import plain_njit as njit  # small inputs run as Python (soc.jit)


@njit(cache=True)
def periodicity(keys, times):
    """Per key segment of rows ordered by (key, time): the key, its rows (first, last), the number of
    connections, the mean inter-arrival (us), its coefficient of variation and a robust variant
    (median absolute deviation / median of the inter-arrival times).

    A beacon calls home at a fixed interval (plus jitter): low CV and low MAD ratio over many connections.
    The robust variant ignores a few long gaps (a laptop asleep) that inflate the CV. Keys with fewer than 3
    rows get NaN scores.
    """
    n = keys.size
    bad = False
    m = 0
    for j in range(n):
        if j > 0:
            bad |= _misordered(keys, times, j)
        if j == 0 or keys[j] != keys[j - 1]:
            m += 1
    out_key = np.empty(m, np.int64)
    first = np.empty(m, np.int64)
    last = np.empty(m, np.int64)
    count = np.empty(m, np.int64)
    mean = np.empty(m, np.float64)
    cv = np.empty(m, np.float64)
    mad_ratio = np.empty(m, np.float64)
    s = 0
    g = 0
    for j in range(1, n + 1):
        if j < n and keys[j] == keys[s]:
            continue
        c = j - s
        out_key[g] = keys[s]
        first[g] = s
        last[g] = j - 1
        count[g] = c
        if c < 3:
            mean[g] = np.nan
            cv[g] = np.nan
            mad_ratio[g] = np.nan
        else:
            gaps = np.empty(c - 1, np.float64)
            for r in range(s + 1, j):
                gaps[r - s - 1] = times[r] - times[r - 1]
            mu = gaps.mean()
            mean[g] = mu
            cv[g] = gaps.std() / mu if mu > 0 else np.inf
            med = np.median(gaps)
            mad_ratio[g] = np.median(np.abs(gaps - med)) / med if med > 0 else np.inf
        g += 1
        s = j
    if bad:
        raise ValueError(NOT_ORDERED)
    return out_key, first, last, count, mean, cv, mad_ratio


# which part of a string ``string_stats`` scores
WHOLE, LONGEST_LABEL, FIRST_LABEL, SLD = 0, 1, 2, 3
PARTS = {"whole": WHOLE, "longest_label": LONGEST_LABEL, "first_label": FIRST_LABEL, "sld": SLD}


_TABLE = 4096  # strings shorter than this take their logarithms from tables
_LOG2 = np.log2(np.maximum(np.arange(_TABLE, dtype=np.float64), 1.0))  # log2(n), 0 for n = 0
_CLOG2 = np.arange(_TABLE, dtype=np.float64) * _LOG2  # c * log2(c)


@njit(cache=True, inline="always")
def _entropy(data, s, e, hist):
    """Shannon entropy of data[s:e]; ``hist`` is all zeros before and after (reset byte by byte: O(length)).
    As log2(n) - sum(c log2 c) / n over the byte counts c, from tables below ``_TABLE`` bytes: a log2 per
    distinct byte was most of the kernel's time."""
    n = e - s
    if n <= 0:
        return 0.0
    for i in range(s, e):
        hist[data[i]] += 1
    if n < _TABLE:
        total = 0.0
        for i in range(s, e):
            c = hist[data[i]]
            total += _CLOG2[c]
            hist[data[i]] = 0
        return max(_LOG2[n] - total / n, 0.0)
    h = 0.0
    for i in range(s, e):
        c = hist[data[i]]
        if c:
            p = c / n
            h -= p * np.log2(p)
            hist[data[i]] = 0
    return h


@njit(cache=True)
def string_stats(offsets, data, valid, part):
    """Length (bytes) and Shannon entropy (bits per byte) of each string of an Arrow string array
    (``offsets``: n + 1 int64, ``data``: uint8, ``valid``: bool), on the part ``part`` (see PARTS) of a
    dot-separated name: the whole string, its longest label, its first label, or the second-level label
    (the one left of the last; a trailing dot is ignored). Nulls give length -1 and entropy NaN.

    DNS tunnels put encoded data in long high-entropy labels; DGA domains have a random second-level label.
    """
    n = valid.size
    length = np.empty(n, np.int64)
    entropy = np.empty(n, np.float64)
    hist = np.zeros(256, np.int64)
    for i in range(n):
        if not valid[i]:
            length[i] = -1
            entropy[i] = np.nan
            continue
        s, e = offsets[i], offsets[i + 1]
        if e > s and data[e - 1] == 46:  # trailing '.'
            e -= 1
        a, b = s, e
        if part == LONGEST_LABEL:
            best_a, best_b = s, s
            start = s
            for k in range(s, e + 1):
                if k == e or data[k] == 46:
                    if k - start > best_b - best_a:
                        best_a, best_b = start, k
                    start = k + 1
            a, b = best_a, best_b
        elif part == FIRST_LABEL:
            b = s
            while b < e and data[b] != 46:
                b += 1
        elif part == SLD:
            dots = 0
            b = e
            k = e - 1
            while k >= s:
                if data[k] == 46:
                    dots += 1
                    if dots == 1:
                        b = k
                    else:
                        break
                k -= 1
            a = k + 1
            if dots == 0:  # a single label: it is the name
                a, b = s, e
        length[i] = b - a
        entropy[i] = _entropy(data, a, b, hist)
    return length, entropy


ALL, RISE, DROP = 0, 1, 2  # what ``rise_drop`` returns: every point, or only the rises / drops that qualify


@njit(cache=True)
def rise_drop(keys, buckets, counts, last_bucket, alpha, warmup, min_scale, mode=ALL, threshold=0.0,
              min_count=0.0, max_ratio=1.0, min_baseline=0.0):
    """Per key series of counts per time bucket (rows ordered by (key, bucket), one row per non-empty
    bucket; missing buckets are zeros, up to ``last_bucket`` for every key so a source that went silent shows
    as zeros): for each bucket after ``warmup`` buckets, the EWMA baseline (before the bucket), a robust
    scale (EWMA of absolute deviations, x1.4826 as for a MAD, at least ``min_scale``) and the z-score.

    Returns key, bucket, count, baseline, z of every point (``mode=ALL``) or only of the points that qualify:
    ``RISE``: z >= threshold and count >= min_count; ``DROP``: z <= -threshold, count <= max_ratio x baseline
    and baseline >= min_baseline. Time: with ``ALL``, O(keys x buckets) (the zeros are walked, not stored);
    with RISE/DROP, a gap is walked only until the EWMA stops changing (``_series``). Memory is O(output):
    with RISE/DROP, bounded by the hits, not by keys x buckets.
    """
    n = keys.size
    bad = False
    total = 0
    s = 0
    for j in range(1, n + 1):
        if j < n:
            bad |= (keys[j] < keys[j - 1]) | ((keys[j] == keys[j - 1]) & (buckets[j] <= buckets[j - 1]))
        if j < n and keys[j] == keys[s]:
            continue
        span = last_bucket - buckets[s] + 1
        if span > warmup:
            total += span - warmup
        s = j
    if bad:
        raise ValueError("rows are not ordered by (key, bucket) with one row per bucket")
    cap = total if mode == ALL else 16
    out_key = np.empty(cap, np.int64)
    out_bucket = np.empty(cap, np.int64)
    out_count = np.empty(cap, np.float64)
    out_base = np.empty(cap, np.float64)
    out_z = np.empty(cap, np.float64)
    s = 0
    m = 0
    while True:
        s, m = _series(keys, buckets, counts, last_bucket, alpha, warmup, min_scale, mode, threshold, min_count,
                       max_ratio, min_baseline, s, m, out_key, out_bucket, out_count, out_base, out_z)
        if s >= n:
            break
        room = m + last_bucket - buckets[s] + 1  # a key has at most a point per bucket
        out_key, out_bucket = grow(out_key, room), grow(out_bucket, room)
        out_count, out_base, out_z = grow(out_count, room), grow(out_base, room), grow(out_z, room)
    return out_key[:m].copy(), out_bucket[:m].copy(), out_count[:m].copy(), out_base[:m].copy(), out_z[:m].copy()


@njit(cache=True)
def _series(keys, buckets, counts, last_bucket, alpha, warmup, min_scale, mode, threshold, min_count, max_ratio,
            min_baseline, s, m, out_key, out_bucket, out_count, out_base, out_z):
    """``rise_drop``'s walk of the keys from row ``s``, while the outputs have room for all of the next key's
    points; returns where it stopped and the points written. The outputs are arguments, never reassigned
    here: arrays reassigned inside the loop (grown in place) made it ~24x slower (6.0 s against 0.25 s
    for 100 k keys x 288 buckets)."""
    n = keys.size
    while s < n:
        j = s + 1
        while j < n and keys[j] == keys[s]:
            j += 1
        if m + max(last_bucket - buckets[s] + 1 - warmup, 0) > out_key.size:
            return s, m
        r = s
        mean = 0.0
        dev = 0.0
        t = -1
        b = int(buckets[s]) - 1  # int() and float(): plain Python numbers when run as Python (soc.jit), 5x faster
        while b < last_bucket:
            b += 1
            t += 1
            x = 0.0
            row = r < j and buckets[r] == b
            if row:
                x = float(counts[r])
                r += 1
            keep = False
            if t == 0:
                mean = x
            elif t >= warmup:
                z = (x - mean) / max(1.4826 * dev, min_scale)
                keep = mode == ALL
                if mode == RISE:
                    keep = z >= threshold and x >= min_count
                elif mode == DROP:
                    keep = z <= -threshold and x <= max_ratio * mean and mean >= min_baseline
                if keep:
                    out_key[m] = keys[s]
                    out_bucket[m] = b
                    out_count[m] = x
                    out_base[m] = mean
                    out_z[m] = z
                    m += 1
            if t > 0:
                before_mean, before_dev = mean, dev
                dev = (1 - alpha) * dev + alpha * abs(x - mean)
                mean = (1 - alpha) * mean + alpha * x
                # An empty bucket that left the baseline and the deviation as they were (the EWMA has decayed
                # as far as floating point goes) leaves them so for every empty bucket after it, each with
                # this one's z: where this one did not qualify, none of them does, so the rest of the gap is
                # skipped. A source silent for months then costs ~1-2 k steps (~75 k with alpha 0.01), not a
                # step a bucket. ALL returns every point, so it walks them all.
                if (not row and not keep and t >= warmup and mode != ALL and mean == before_mean
                        and dev == before_dev):
                    gap_end = buckets[r] if r < j else last_bucket + 1
                    t += gap_end - 1 - b
                    b = gap_end - 1
        s = j
    return s, m


@njit(cache=True)
def first_seen(pairs, keys, times, n_pairs, n_keys, baseline_end):
    """Rows (input order, time-ordered input) where a (key, value) pair is seen for the first time after
    ``baseline_end``, for keys already seen before it (a known user from a new address, not a new user).

    ``pairs`` are dense ids of (key, value), ``keys`` dense ids of the key alone. Returns the row numbers.
    """
    n = pairs.size
    pair_seen = np.zeros((n_pairs + 63) >> 6, np.uint64)  # a bit a pair: 8x less memory to miss in than bools
    key_known = np.zeros(n_keys, np.bool_)
    out = np.empty(n, np.int64)
    m = 0
    bad = False
    one = np.uint64(1)
    for j in range(n):
        if j > 0:
            bad |= times[j] < times[j - 1]
        p = pairs[j]
        k = keys[j]
        word = p >> 6
        bit = one << np.uint64(p & 63)
        if times[j] <= baseline_end:
            pair_seen[word] |= bit
            key_known[k] = True
            continue
        if not pair_seen[word] & bit:
            pair_seen[word] |= bit
            if key_known[k]:
                out[m] = j
                m += 1
    if bad:
        raise ValueError("rows are not in time order")
    return out[:m].copy()
