"""Reference: the first, pure-numpy weighted water-filling (E12) and its certificate.

Kept in the tests as an independent check of the compiled kernels of
:mod:`convexsched.optimize.weighted`: the same algorithm (bisection over the sorted breakpoints of
``S(lambda)``, then the tie split or the linear interpolation) written with whole-array numpy
operations, on the evaluation methods of :class:`WeightedBuckets` (``response``, ``total``,
``breakpoints``, ``value``, ``bucket_values``), which stay numpy.
"""

from __future__ import annotations

import numpy as np

from convexsched.optimize.weighted import WeightedBuckets, WeightedSolution, _last_real


def build(slopes, widths, weights=None, *, rho=0.0, gamma=None, cap=None):
    """:meth:`WeightedBuckets.build` without its checks: caps and tails applied in numpy."""
    slopes = np.atleast_2d(np.asarray(slopes, dtype=float))
    widths = np.atleast_2d(np.asarray(widths, dtype=float))
    n = slopes.shape[0]
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    gamma = np.zeros(n) if gamma is None else np.asarray(gamma, dtype=float).reshape(-1)
    cap = np.full(n, np.inf) if cap is None else np.asarray(cap, dtype=float).reshape(-1)
    depth = widths.sum(axis=1)
    last_slope = _last_real(slopes, widths > 0)
    gamma = np.where(depth > 0, gamma, 0.0)
    ends = np.cumsum(widths, axis=1)
    truncated = np.clip(np.minimum(ends, cap[:, None]) - (ends - widths), 0.0, widths)
    tail_cap = np.where(gamma > 0, np.maximum(cap - depth, 0.0), 0.0)
    return WeightedBuckets(slopes, truncated, weights, gamma, depth, tail_cap, last_slope, float(rho))


def solve(buckets, total):
    """``(solution, maximum)``; the solution is None when ``total`` exceeds the maximum."""
    maximum = float(buckets.weights @ buckets.capacity)
    if total > maximum * (1 + 1e-12):
        return None, maximum
    points = buckets.breakpoints()
    if total == 0 or len(points) == 0:
        level = float(points[0]) if len(points) else 0.0
        return WeightedSolution(np.zeros(buckets.n_buckets), level, 0.0, np.nan), maximum
    lo, hi = 0, len(points) - 1
    if buckets.total(points[hi], upper=True) < total:
        y, level = _beyond(buckets, points[hi], total)
        return WeightedSolution(y, level, buckets.value(y), np.nan), maximum
    while lo < hi:
        mid = (lo + hi) // 2
        if buckets.total(points[mid], upper=True) >= total:
            hi = mid
        else:
            lo = mid + 1
    level = float(points[lo])
    below = buckets.total(level, upper=False)
    if below <= total:
        low, high = buckets.response(level, False), buckets.response(level, True)
        span = float(buckets.weights @ (high - low))
        fraction = (total - below) / span if span > 0 else 0.0
        y = low + fraction * (high - low)
        return WeightedSolution(y, level, buckets.value(y), fraction if span > 0 else np.nan), maximum
    left = float(points[lo - 1])
    at_left = buckets.total(left, upper=True)
    level = left + (total - at_left) * (level - left) / (below - at_left)
    y = buckets.response(level, upper=True)
    return WeightedSolution(y, level, buckets.value(y), np.nan), maximum


def _beyond(buckets, last, total):
    base = buckets.response(last, upper=True)
    open_tail = (buckets.tail_cap > 0) & np.isinf(buckets.tail_cap)
    rate = float(buckets.weights[open_tail] @ (1.0 / (buckets.rho + buckets.gamma[open_tail])))
    if rate == 0:
        return buckets.capacity.copy(), float(last)
    level = float(last) + (total - float(buckets.weights @ base)) / rate
    return buckets.response(level, upper=True), level


def certify(buckets, total, y, multiplier, tol=1e-6):
    """``(ok, worst violation, duality gap, objective, dual value)`` of the certificate."""
    scale_shares = max(float(total), 1.0)
    capacity = buckets.capacity
    price_scale = max(float(np.abs(buckets.slopes[buckets.widths > 0]).max(initial=0.0)), abs(multiplier), 1e-12)
    left, right = _slope_bounds(buckets, y, tol * scale_shares)
    used = buckets.weights > 0
    stationarity = float(np.maximum(np.maximum(left - multiplier, multiplier - right), 0.0)[used].max(initial=0.0))
    primal = abs(float(buckets.weights @ y) - total) / scale_shares
    bounds = float(np.maximum(np.maximum(-y, y - capacity), 0.0).max(initial=0.0)) / scale_shares
    value = buckets.value(np.clip(y, 0.0, capacity))
    response = buckets.response(multiplier, upper=True)
    dual = multiplier * total - float(buckets.weights @ (multiplier * response - buckets.bucket_values(response)))
    gap = (value - dual) / max(abs(value), price_scale * scale_shares)
    worst = max(primal, bounds, stationarity / price_scale, max(gap, 0.0))
    return worst <= tol, worst, gap, value, dual


def _slope_bounds(buckets, y, snap):
    widths = buckets.widths
    ends = np.cumsum(widths, axis=1)
    starts = ends - widths
    real = widths > 0
    book = widths.sum(axis=1)
    inside = np.minimum(y, book)
    left_mask = real & (starts < inside[:, None] - snap)
    right_mask = real & (ends > inside[:, None] + snap)
    last_left = np.where(left_mask, buckets.slopes, -np.inf).max(axis=1)
    first_right = np.where(right_mask, buckets.slopes, np.inf).min(axis=1)
    beyond = np.maximum(y - buckets.depth, 0.0)
    tail_slope = buckets.last_slope + buckets.gamma * beyond
    has_tail = buckets.tail_cap > 0
    in_tail = has_tail & (y > book + snap)
    at_book_end = ~right_mask.any(axis=1)
    left = np.where(in_tail, tail_slope, last_left)
    right = np.where(at_book_end, np.where(has_tail & (y < book + buckets.tail_cap - snap), tail_slope, np.inf), first_right)
    right = np.where(in_tail & (y < book + buckets.tail_cap - snap), tail_slope, right)
    left = np.where(y <= snap, -np.inf, left)
    smooth = buckets.rho * y
    return left + smooth, right + smooth
