"""Statistical kernels beyond sliding windows: periodicity (beaconing), string entropy and length on Arrow
buffers, rise/drop of per-entity volume (EWMA with a robust deviation), first-seen values.

Same conventions as ``soc.detect.windows``: plain NumPy arrays, dense integer keys, int64 microsecond
timestamps, ``@njit(cache=True)``, O(n) after ordering (``windows.order``), no Python objects inside.
"""

from __future__ import annotations

import numpy as np

from soc import jit
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
PLAIN_US_PER_ROW = 20  # CPU a row costs ``_plain_rise_drop`` (a row and the gap after it), for ``soc.jit``


def rise_drop(keys, buckets, counts, last_bucket, alpha, warmup, min_scale, mode=ALL, threshold=0.0,
              min_count=0.0, max_ratio=1.0, min_baseline=0.0):
    """``walk_rise_drop`` (see there), with RISE and DROP run by ``_plain_rise_drop`` while ``soc.jit`` lets
    work this size run without Numba: the kernel's walk as Python cost ~0.1 s on the EVTX corpus's 153 rows
    (a gap is walked until the EWMA stops changing: ~2,100 steps at alpha 0.3), the plain way ~3 ms."""
    if mode != ALL and jit.plain(guess := PLAIN_US_PER_ROW * keys.size):
        began = jit.cpu_us()
        try:
            return _plain_rise_drop(keys, buckets, counts, last_bucket, alpha, warmup, min_scale, mode, threshold,
                                    min_count, max_ratio, min_baseline)
        finally:
            jit.charge(jit.cpu_us() - began - guess)
    return walk_rise_drop(keys, buckets, counts, last_bucket, alpha, warmup, min_scale, mode, threshold, min_count,
                          max_ratio, min_baseline)


@njit(cache=True)
def walk_rise_drop(keys, buckets, counts, last_bucket, alpha, warmup, min_scale, mode=ALL, threshold=0.0,
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


_QUIET_K = 10_000_000  # longest gap crossed in one step (the error bounds of ``_cross`` hold far beyond it)
_TINY = 1e-300  # above any EWMA the kernel stops at (decayed as far as floating point goes) and its rounding
_SLACK = 2.0 ** -60  # a value this much smaller than another adds to it (or subtracts) without changing it


def _plain_rise_drop(keys, buckets, counts, last_bucket, alpha, warmup, min_scale, mode, threshold, min_count,
                     max_ratio, min_baseline):
    """``walk_rise_drop`` in RISE or DROP mode, the same points to the bit, by Python over the rows: a gap where
    no point can qualify (RISE: never, with min_count or threshold above 0; DROP: once the baseline is below
    min_baseline, as it only decays in a gap) is crossed in one step (``_cross``), not walked bucket by bucket."""
    n = keys.size
    if n > 1:
        dk, db = np.diff(keys), np.diff(buckets)
        if ((dk < 0) | ((dk == 0) & (db <= 0))).any():
            raise ValueError("rows are not ordered by (key, bucket) with one row per bucket")
    ks, bs, xs = keys.tolist(), buckets.tolist(), np.asarray(counts, np.float64).tolist()
    last_bucket, alpha, warmup, min_scale = int(last_bucket), float(alpha), int(warmup), float(min_scale)
    threshold, min_count, max_ratio, min_baseline = float(threshold), float(min_count), float(max_ratio), \
        float(min_baseline)
    c = 1 - alpha
    # where crossing is exact: a decaying EWMA, a positive scale, counts that are finite and not negative
    cross = 1e-9 <= alpha < 1 and min_scale > 0 and bool(np.isfinite(counts).all()) and (not n or min(xs) >= 0)
    rise_quiet = cross and mode == RISE and (min_count > 0 or threshold > 0)  # an empty bucket never rises
    out: list[tuple] = []
    s = 0
    while s < n:
        key = ks[s]
        j = s + 1
        while j < n and ks[j] == key:
            j += 1
        r = s
        tried = -1
        mean = dev = 0.0
        t = -1
        b = bs[s] - 1
        while b < last_bucket:
            b += 1
            t += 1
            row = r < j and bs[r] == b
            x = 0.0
            if row:
                x = xs[r]
                r += 1
            keep = False
            if t == 0:
                mean = x
            elif t >= warmup:
                z = (x - mean) / max(1.4826 * dev, min_scale)
                if mode == RISE:
                    keep = z >= threshold and x >= min_count
                else:
                    keep = z <= -threshold and x <= max_ratio * mean and mean >= min_baseline
                if keep:
                    out.append((key, b, x, mean, z))
            if t > 0:
                before_mean, before_dev = mean, dev
                dev = (1 - alpha) * dev + alpha * abs(x - mean)
                mean = (1 - alpha) * mean + alpha * x
                if not row and not keep and t >= warmup and mean == before_mean and dev == before_dev:
                    gap_end = bs[r] if r < j else last_bucket + 1  # as the kernel: the rest of the gap is the same
                    t += gap_end - 1 - b
                    b = gap_end - 1
                    continue
            gap = (bs[r] if r < j else last_bucket + 1) - b - 1  # empty buckets next
            if gap > 0 and tried != r and (rise_quiet or cross and mode == DROP and not mean >= min_baseline):
                if r >= j:
                    break  # the key's last gap: nothing in it qualifies
                tried = r  # once a gap: where it cannot be crossed, it is walked
                crossed = _cross(mean, dev, c, alpha, gap, xs[r], min_scale)
                if crossed is not None:
                    mean, dev = crossed, 0.0
                    t += gap
                    b += gap
        s = j
    if not out:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), *(np.zeros(0, np.float64) for _ in range(3)))
    k, bb, x, base, z = zip(*out, strict=True)
    return (np.array(k, np.int64), np.array(bb, np.int64), np.array(x, np.float64), np.array(base, np.float64),
            np.array(z, np.float64))


def _cross(mean: float, dev: float, c: float, alpha: float, k: int, x: float, min_scale: float) -> float | None:
    """The baseline after ``k`` empty buckets from (``mean``, ``dev``), exact (the kernel's products, by NumPy),
    if the next count ``x`` washes out what the deviation became: then the kernel's next point and state do not
    depend on it (the deviation enters them only through max(1.4826 dev, min_scale) = min_scale, and as c dev,
    too small to change alpha x when added to it), so the caller carries 0. Else None: walk the gap.

    The deviation after j empty buckets is c^j dev + j alpha c^(j-1) mean, within the rounding of 3j operations
    (relative 2^-53 each, absolute 2^-1075 below the normal range); where the kernel stops early (both values
    at their fixed point) both are below ``_TINY``."""
    y = alpha * x
    limit = y * _SLACK
    if k > _QUIET_K or not (y >= 1e-280 and mean <= 1e15 and dev <= 1e15):
        return None
    bound = max((c ** k * dev + k * alpha * c ** (k - 1) * mean) * (1 + 1e-6) + 1e-305, _TINY)
    if not (bound <= limit and 1.4826 * bound < min_scale):
        return None
    m = _decay(mean, c, k)
    return m if m <= limit else None


def _decay(mean: float, c: float, k: int) -> float:
    """``mean`` multiplied by ``c`` ``k`` times, one rounding a time as the kernel does (``np.multiply.accumulate``
    multiplies in order), stopping once it no longer changes."""
    while k > 0:
        step = min(k, 4096)
        seq = np.full(step + 1, c)
        seq[0] = mean
        seq = np.multiply.accumulate(seq)
        mean = float(seq[-1])
        if seq[-1] == seq[-2]:
            break
        k -= step
    return mean


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
