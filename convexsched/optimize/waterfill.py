"""Exact water-filling for the separable objectives (A) and (B).

Both objectives split per bucket once the budget constraint is priced by a multiplier
``lambda`` (the water level, (E3), (E5), (E7)):

.. math::

    x_i(\\lambda) = \\arg\\min_{0 \\le x \\le c_i} \\; g_i(x) + \\frac{\\rho}{2} x^2 - \\lambda x ,
    \\qquad S(\\lambda) = \\sum_i x_i(\\lambda) .

With piecewise-linear ``g_i`` the response is explicit: a segment ``k`` (slope ``s_k``, from
``b_{k-1}`` to ``b_k``) fills as ``clip((lambda - s_k)/rho - b_{k-1}, 0, w_k)`` for ``rho > 0``
and completely when ``s_k < lambda`` for ``rho = 0``. ``S(lambda)`` is therefore a step function
(A) or a piecewise-linear one (B) whose breakpoints are known, so the budget ``S(lambda) = S`` is
solved exactly, not by bisection. Each bucket's slopes are sorted (convexity), and so are the
knots of its response, so both search over the N sorted rows instead of all N K segments: a
selection over the rows for (A) (weighted median of the open ranges' middles as pivot,
O(N log K) per round), a safeguarded Newton iteration on the piecewise-linear ``S`` for (B)
(O(N log K) per step); both compiled with numba. The dual bisection with tolerance ``eps_S`` is kept
as :func:`bisection` for comparison.

Sign convention (used everywhere in convexsched): ``lambda`` is the water level, the marginal
cost of the last share, so ``g_i'(x_i) + rho x_i = lambda`` on buckets strictly inside their
range. Under the ``<=`` budget ``lambda <= 0`` (the budget's shadow price is ``-lambda``) and
``lambda * (S - sum x) = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._jit import inline, njit


@dataclass(frozen=True)
class WaterLevel:
    """Output of a fast path: the schedule, its water level and the level's valid interval."""

    x: np.ndarray
    multiplier: float
    multiplier_interval: tuple
    iterations: int = 0


def bucket_response(curves, price, rho=0.0, upper=False):
    """``x_i(price_i)`` of (E7): the best size of every bucket at a given marginal price.

    Parameters
    ----------
    curves : CostCurves
    price : float or ndarray of shape (N,)
        The marginal price offered to each bucket.
    rho : float
        The smoothing weight of objective (B).
    upper : bool
        For ``rho = 0`` a price equal to a slope leaves that segment's fill free; ``False``
        returns the smallest optimal size (segment empty), ``True`` the largest.
    """
    price = np.broadcast_to(np.asarray(price, dtype=float), (curves.n_buckets,))[:, None]
    slopes, widths = curves.slopes, curves.widths
    if rho > 0:
        starts = curves.breakpoints[:, :-1]
        fill = np.clip((price - slopes) / rho - starts, 0.0, widths)
    else:
        take = slopes <= price if upper else slopes < price
        fill = np.where(take, widths, 0.0)
    return fill.sum(axis=1)


def conjugate(curves, price, rho=0.0):
    """``phi_i^*(price_i) = max_{0<=x<=c_i} price_i x - g_i(x) - rho/2 x^2`` (exact)."""
    price = np.broadcast_to(np.asarray(price, dtype=float), (curves.n_buckets,))
    if rho == 0:
        # Every segment cheaper than the price earns its margin on its whole width.
        return (np.maximum(price[:, None] - curves.slopes, 0.0) * curves.widths).sum(axis=1)
    x = bucket_response(curves, price, rho)
    return price * x - curves.evaluate(x) - 0.5 * rho * x * x


def _arrays(curves):
    return (np.ascontiguousarray(curves.slopes, dtype=float), np.ascontiguousarray(curves.widths, dtype=float))


@njit
def _median_of_three(values, lo, hi):
    a, b, c = values[lo], values[(lo + hi) // 2], values[hi - 1]
    if a > b:
        a, b = b, a
    if b > c:
        b = c
    return max(a, b)


@njit
def weighted_select(values, weights, total):
    """Smallest value ``v`` with ``sum(weights[values <= v]) >= total`` (weighted quickselect).

    Returns ``(v, weight strictly below v, weight at v)``. Each round splits the open range
    three ways around a pivot and keeps one side, so the expected cost is O(M); ``values`` and
    ``weights`` are permuted in place.
    """
    lo, hi, below = 0, len(values), 0.0
    while True:
        pivot = _median_of_three(values, lo, hi)
        less, i, more = lo, lo, hi
        weight_less, weight_equal = 0.0, 0.0
        while i < more:
            value = values[i]
            if value < pivot:
                values[i], values[less] = values[less], value
                weights[i], weights[less] = weights[less], weights[i]
                weight_less += weights[less]
                less += 1
                i += 1
            elif value > pivot:
                more -= 1
                values[i], values[more] = values[more], value
                weights[i], weights[more] = weights[more], weights[i]
            else:
                weight_equal += weights[i]
                i += 1
        if less > lo and below + weight_less >= total:
            hi = less
        elif below + weight_less + weight_equal >= total or more == hi:
            # (Nothing above the pivot only when rounding left the total just out of reach.)
            return pivot, below + weight_less, weight_equal
        else:
            below += weight_less + weight_equal
            lo = more


@njit
def _count_below(slopes, i, lo, hi, value, strict):
    """Index of the first entry of ``slopes[i, lo:hi]`` not below ``value``, by binary search.

    Not below means ``<`` when ``strict``, else ``<=``; the row is sorted.
    """
    while lo < hi:
        middle = (lo + hi) // 2
        entry = slopes[i, middle]
        if entry < value or (not strict and entry == value):
            lo = middle + 1
        else:
            hi = middle
    return lo


@njit
def _row_select(slopes, breakpoints, total):
    """The level of (A): the smallest slope ``v`` with ``sum_i b_i(#{k: s_ik <= v}) >= total``.

    Every row of a :class:`CostCurves` is sorted, so the candidates still open are one index
    range ``[lo_i, hi_i)`` per row. Each round takes the weighted median of the ranges' middle
    entries as pivot (at least a quarter of the open candidates lies on either side of it),
    binary-searches it in every range and keeps the side that holds the level; once the open
    candidates are few, a weighted quickselect over them finishes. O(N log K) per round, about
    log(N K) rounds. Zero-width segments count nothing (their breakpoints do not move) and carry
    a real segment's slope in canonical curves, so the level found is a real slope. Returns
    ``(level, width strictly below it, width at it)``.
    """
    n, k = slopes.shape
    lo = np.zeros(n, np.int64)
    hi = np.full(n, k, np.int64)
    middles = np.empty(n)
    counts = np.empty(n)
    open_count = n * k
    while open_count > 4 * n:
        m = 0
        for i in range(n):
            if hi[i] > lo[i]:
                middles[m] = slopes[i, (lo[i] + hi[i]) // 2]
                counts[m] = hi[i] - lo[i]
                m += 1
        pivot, _, _ = weighted_select(middles[:m], counts[:m], 0.5 * open_count)
        below, at = 0.0, 0.0
        for i in range(n):
            less = _count_below(slopes, i, lo[i], hi[i], pivot, True)
            equal = _count_below(slopes, i, less, hi[i], pivot, False)
            below += breakpoints[i, less]
            at += breakpoints[i, equal]
            middles[i] = less  # reused: the row's split, kept for the side chosen below
            counts[i] = equal
        if below >= total:
            for i in range(n):
                hi[i] = int(middles[i])
        elif at >= total:
            return pivot, below, at - below
        else:
            for i in range(n):
                lo[i] = int(counts[i])
        open_count = 0
        for i in range(n):
            open_count += hi[i] - lo[i]
    # The last candidates: their widths (a breakpoint difference; zero-width ones are harmless)
    # and the width already below every one of them.
    values = np.empty(open_count)
    weights = np.empty(open_count)
    floor, m = 0.0, 0
    for i in range(n):
        floor += breakpoints[i, lo[i]]
        for j in range(lo[i], hi[i]):
            values[m] = slopes[i, j]
            weights[m] = breakpoints[i, j + 1] - breakpoints[i, j]
            m += 1
    level, _, _ = weighted_select(values, weights, total - floor)
    # The widths at and below the level, summed over whole rows as the rounds above do.
    below, at = 0.0, 0.0
    for i in range(n):
        less = _count_below(slopes, i, lo[i], hi[i], level, True)
        below += breakpoints[i, less]
        at += breakpoints[i, _count_below(slopes, i, less, hi[i], level, False)]
    return level, below, at - below


@njit
def _cost_only(slopes, breakpoints, total):
    """Water-filling for ``0 < total < capacity``: ``(x, level, upper end of its interval)``.

    Every segment cheaper than the level is full; segments tied at the level are all filled to
    the same fraction (the centre of the optimal face, which cvxpy's interior point returns).
    One binary search per row places the level after :func:`_row_select` found it.
    """
    n, k = slopes.shape
    level, below, tied = _row_select(slopes, breakpoints, total)
    remainder = total - below
    share = min(remainder / tied, 1.0) if tied > 0 else 0.0
    upper = np.inf
    x = np.empty(n)
    for i in range(n):
        less = _count_below(slopes, i, 0, k, level, True)
        equal = _count_below(slopes, i, less, k, level, False)
        x[i] = breakpoints[i, less] + share * (breakpoints[i, equal] - breakpoints[i, less])
        # The next real slope: canonical rows repeat real slopes only, and a row without
        # capacity (all zeros) has none.
        if equal < k and breakpoints[i, k] > 0 and slopes[i, equal] < upper:
            upper = slopes[i, equal]
    if remainder < tied:
        upper = level
    return x, level, upper


def centred_fill(slopes, widths, total):
    """Objective (A) with ``sum x = total`` on raw arrays: the centred water-filling's ``x``."""
    if total <= 0:
        return np.zeros(slopes.shape[0])
    breakpoints = np.hstack([np.zeros((slopes.shape[0], 1)), np.cumsum(widths, axis=1)])
    if total >= breakpoints[:, -1].sum():
        return breakpoints[:, -1]
    return _cost_only(np.ascontiguousarray(slopes), breakpoints, float(total))[0]


def cost_only(curves, total, sense="eq"):
    """Objective (A), exact: fill the globally cheapest segments first ((E2), (E3)).

    The marginal slope ``lambda`` is the budget's weighted quantile of all segment slopes
    (weights = widths), found by a selection over the N sorted rows (O(N log K) per round,
    about log(N K) rounds, never touching every segment); every cheaper segment is full. Segments tied at ``lambda`` share the remainder in proportion to their widths, so
    a tie is split at the centre of the optimal face (any split is optimal). The returned
    interval is every ``lambda`` that certifies the schedule.
    """
    # Any real segment is capacity somewhere: the N capacities decide, not the N K widths.
    capacity = curves.total_capacity
    if total <= 0 or not capacity > 0:
        return _nothing_to_trade(curves, curves.slopes[curves.widths > 0], sense)
    if sense == "le":
        # Slack is allowed: trade only what is profitable, unless that exceeds the budget.
        profitable = bucket_response(curves, 0.0)
        if profitable.sum() < total:
            return WaterLevel(profitable, 0.0, (0.0, 0.0))
    if total >= capacity:
        return _everything(curves, curves.slopes[curves.widths > 0], sense)
    # The stored arrays are C-contiguous float64 already (CostCurves stores them so).
    x, level, upper = _cost_only(curves.slopes, curves.breakpoints, float(total))
    return _finish(x, level, (level, upper), sense)


def _nothing_to_trade(curves, first_prices, sense):
    """``S = 0`` (or no capacity at all): x = 0, certified by any level below every price."""
    upper = float(first_prices.min(initial=np.inf))
    return _finish(np.zeros(curves.n_buckets), upper if np.isfinite(upper) else 0.0, (-np.inf, upper), sense)


def _everything(curves, last_prices, sense):
    """``S`` = total capacity: every bucket full, certified by any level above every price."""
    lower = float(last_prices.max())
    return _finish(curves.capacity.copy(), lower, (lower, np.inf), sense)


def _finish(x, level, interval, sense):
    if sense == "le":
        # Under "<=" the level is <= 0 (the budget's shadow price -lambda is >= 0).
        interval = (interval[0], min(interval[1], 0.0))
        level = min(level, 0.0)
    return WaterLevel(x, float(level), (float(interval[0]), float(interval[1])))


@njit
def _ramp_response(slopes, widths, rho, level):
    """``x_i(level)`` of (E7) for ``rho > 0``: every ramp filled up to the level."""
    n, k = slopes.shape
    x = np.zeros(n)
    for i in range(n):
        filled = 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                x[i] += min(max((level - slopes[i, j]) / rho - filled, 0.0), width)
                filled += width
    return x


@njit
def ramps(slopes, widths, rho):
    """Per bucket, the knots ``a_1 <= c_1 <= a_2 <= ...`` of its response and the fills there.

    Segment ``k`` fills while the price runs from ``a_k = s_k + rho b_{k-1}`` to
    ``c_k = s_k + rho b_k``; convexity (``s_k <= s_{k+1}``) keeps the knots sorted.
    """
    n, k = slopes.shape
    start = np.zeros(n + 1, np.int64)
    knots = np.empty(2 * n * k)
    fills = np.empty(2 * n * k)
    m = 0
    for i in range(n):
        start[i] = m
        filled = 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                knots[m] = slopes[i, j] + rho * filled
                fills[m] = filled
                filled += width
                knots[m + 1] = slopes[i, j] + rho * filled
                fills[m + 1] = filled
                m += 2
    start[n] = m
    return start, knots[:m], fills[:m]


@njit
def _knot(slopes, breakpoints, rho, i, m):
    """Knot ``m`` of bucket ``i``'s response: ``a_k`` (``m = 2k``) or ``c_k`` (``m = 2k + 1``).

    A zero-width segment of canonical curves gives two knots equal to a real one's, so every
    row's ``2 K`` knots stay sorted without leaving them out.
    """
    j = m >> 1
    return slopes[i, j] + rho * breakpoints[i, j + (m & 1)]


@njit
def _knots_at_or_below(slopes, breakpoints, rho, i, level, lo, hi):
    """How many of bucket ``i``'s knots are ``<= level``, known to be in ``[lo, hi]``.

    A binary search over the sorted row: any range that holds the count gives the same count,
    and a narrower one (the counts at the ends of the search's bracket) finds it in fewer steps.
    """
    while lo < hi:
        middle = (lo + hi) // 2
        if _knot(slopes, breakpoints, rho, i, middle) <= level:
            lo = middle + 1
        else:
            hi = middle
    return lo


@njit
def _supply(slopes, breakpoints, rho, level, low_counts, high_counts, counts):
    """``S(level)`` and its slope, one binary search per bucket over its response's knots.

    Bucket ``i``'s count of knots ``<= level`` is searched between ``low_counts[i]`` and
    ``high_counts[i]`` and stored in ``counts[i]``.
    """
    n, k = slopes.shape
    supply, active = 0.0, 0
    for i in range(n):
        j = _knots_at_or_below(slopes, breakpoints, rho, i, level, low_counts[i], high_counts[i])
        counts[i] = j
        if j == 0:
            continue
        if j == 2 * k:
            supply += breakpoints[i, k]
        elif j % 2 == 1:
            # On the ramp of segment j // 2 (a zero-width one has no ramp: its knots coincide).
            segment = j >> 1
            ramp = breakpoints[i, segment] + (level - _knot(slopes, breakpoints, rho, i, j - 1)) / rho
            supply += min(ramp, breakpoints[i, segment + 1])
            active += 1
        else:
            supply += breakpoints[i, j >> 1]
    return supply, active / rho


@inline
def _bracketed_newton(level, supply, slope, total, low, high, supply_low, supply_high):
    """One safeguarded Newton step on an increasing ``S(level) = total``: the new bracket and level.

    Newton's step where it stays inside the bracket, else the secant (regula falsi) of the
    bracket, else its midpoint.
    """
    if supply < total:
        low, supply_low = level, supply
    else:
        high, supply_high = level, supply
    step = level + (total - supply) / slope if slope > 0 else np.nan
    if not low < step < high:
        step = low + (total - supply_low) * (high - low) / (supply_high - supply_low)
        if not low < step < high:
            step = 0.5 * (low + high)
    return low, high, supply_low, supply_high, step


@njit
def _smoothed(slopes, breakpoints, rho, total):
    """Safeguarded Newton on ``S(lambda)`` for ``0 < total < capacity``: ``(x, level, lower, upper)``.

    ``S`` is piecewise linear, so a Newton step from inside the piece that holds the root lands
    on it; steps that leave the bracket fall back to regula falsi, then bisection. Each
    evaluation is one binary search per bucket over its ``2 K`` sorted knots, read off the
    slopes and breakpoints (O(N log K)), between the bucket's counts at the bracket's ends (which
    shrink with the bracket); a handful of them usually suffice. ``[lower, upper]`` is the flat
    stretch of ``S`` at the level when there is one (no bucket on a ramp there), and ``x`` the
    response ``x_i(level)`` of (E7), read off the last evaluation's counts.
    """
    n, k = slopes.shape
    low, high, supply_high = np.inf, -np.inf, 0.0
    for i in range(n):
        if breakpoints[i, k] > 0:  # a bucket without capacity has no knot
            low = min(low, _knot(slopes, breakpoints, rho, i, 0))
            high = max(high, _knot(slopes, breakpoints, rho, i, 2 * k - 1))
            supply_high += breakpoints[i, k]
    supply_low = 0.0
    low_counts = np.zeros(n, np.int64)
    high_counts = np.full(n, 2 * k, np.int64)
    counts = np.empty(n, np.int64)
    level = low + (total / supply_high) * (high - low)
    supply, slope = _supply(slopes, breakpoints, rho, level, low_counts, high_counts, counts)
    for _ in range(200):
        if supply == total:
            break
        # The end of the bracket that moves to this level takes its counts.
        if supply < total:
            low_counts[:] = counts
        else:
            high_counts[:] = counts
        low, high, supply_low, supply_high, step = _bracketed_newton(
            level, supply, slope, total, low, high, supply_low, supply_high
        )
        if step == level or not low < step < high:
            break
        level = step
        supply, slope = _supply(slopes, breakpoints, rho, level, low_counts, high_counts, counts)
    lower, upper = level, level
    if slope == 0:
        lower, upper = -np.inf, np.inf
        for i in range(n):
            if breakpoints[i, k] > 0:  # a bucket without capacity has no knot
                j = counts[i]
                if j > 0:
                    lower = max(lower, _knot(slopes, breakpoints, rho, i, j - 1))
                if j < 2 * k:
                    upper = min(upper, _knot(slopes, breakpoints, rho, i, j))
    x = np.empty(n)
    for i in range(n):
        j = counts[i]
        if j == 0:
            x[i] = 0.0
        elif j == 2 * k:
            x[i] = breakpoints[i, k]
        elif j % 2 == 1:
            segment = j >> 1
            ramp = breakpoints[i, segment] + (level - _knot(slopes, breakpoints, rho, i, j - 1)) / rho
            x[i] = min(ramp, breakpoints[i, segment + 1])
        else:
            x[i] = breakpoints[i, j >> 1]
    return x, level, lower, upper


def smoothed(curves, total, rho, sense="eq"):
    """Objective (B), exact breakpoint search on the piecewise-linear ``S(lambda)``.

    Every real segment contributes a ramp of slope ``1/rho`` in ``lambda`` between
    ``a_k = s_k + rho b_{k-1}`` and ``c_k = s_k + rho b_k`` (E7), so ``S`` is piecewise
    linear with known breakpoints and a safeguarded Newton iteration ends on the exact root of
    its affine piece: ``sum x = S`` holds to rounding. The schedule is unique (the objective is
    strictly convex), so there is no tie to split.
    """
    capacity = curves.total_capacity
    if total <= 0 or not capacity > 0 or sense == "le" or total >= capacity:
        slopes, widths = _arrays(curves)
        starts = curves.breakpoints[:, :-1]
        if total <= 0 or not capacity > 0:
            return _nothing_to_trade(curves, (slopes + rho * starts)[widths > 0], sense)
        if sense == "le":
            at_zero = _ramp_response(slopes, widths, rho, 0.0)
            if at_zero.sum() < total:
                return WaterLevel(at_zero, 0.0, (0.0, 0.0))
        if total >= capacity:
            return _everything(curves, (slopes + rho * (starts + widths))[widths > 0], sense)
    # The stored arrays are C-contiguous float64 already (CostCurves stores them so).
    x, level, lower, upper = _smoothed(curves.slopes, curves.breakpoints, float(rho), float(total))
    return _finish(x, level, (lower, upper), sense)


def bisection(curves, total, rho=0.0, sense="eq", tol=None, max_iter=200):
    """The dual bisection of (E7): bisect ``lambda`` until ``|S(lambda) - S| <= eps_S``.

    Kept for comparison with the exact paths: it stops within ``tol`` shares (default 0.1% of
    ``S``, the ``eps_S`` of (E7)), so ``sum x`` generally misses ``S`` by up to ``tol``.
    """
    tol = 1e-3 * total if tol is None else tol
    if sense == "le" and bucket_response(curves, 0.0, rho).sum() <= total:
        x = bucket_response(curves, 0.0, rho)
        return WaterLevel(x, 0.0, (0.0, 0.0))
    real = curves.widths > 0
    lo = curves.slopes[real].min(initial=0.0) - 1.0
    hi = (curves.slopes[real] + rho * curves.breakpoints[:, 1:][real]).max(initial=0.0) + 1.0
    level, iterations = hi, 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported in the result
        level = 0.5 * (lo + hi)
        supplied = bucket_response(curves, level, rho).sum()
        if abs(supplied - total) <= tol:
            break
        if supplied < total:
            lo = level
        else:
            hi = level
    x = bucket_response(curves, level, rho)
    return WaterLevel(x, float(level), (float(level), float(level)), iterations)


@njit
def _warm_supply(start, knots, fills, rho, level, shift, positions):
    """``S(level) = sum_i x_i(level - shift_i)`` and its slope on prepared ramps.

    Each bucket's knot index is walked from ``positions`` (and stored back): successive proximal steps move each bucket's price a little, so the index moves a knot or
    two: a walk from the last one instead of a binary search. Same indices, same numbers.
    """
    supply, active = 0.0, 0
    for i in range(len(start) - 1):
        lo, hi = start[i], start[i + 1]
        if lo == hi:
            continue
        price = level - shift[i]
        j = min(max(positions[i], lo), hi)
        while j < hi and knots[j] <= price:
            j += 1
        while j > lo and knots[j - 1] > price:
            j -= 1
        positions[i] = j
        if j == lo:
            continue
        if j == hi:
            supply += fills[hi - 1]
        elif (j - lo) % 2 == 1:
            supply += min(fills[j - 1] + (price - knots[j - 1]) / rho, fills[j])
            active += 1
        else:
            supply += fills[j - 1]
    return supply, active / rho


@njit
def _warm_response(start, knots, fills, rho, level, shift, positions):
    """``x_i(level - shift_i)`` on prepared ramps, each index walked from ``positions`` (updated)."""
    _warm_supply(start, knots, fills, rho, level, shift, positions)
    n = len(start) - 1
    x = np.zeros(n)
    for i in range(n):
        lo, hi, j = start[i], start[i + 1], positions[i]
        if lo == hi or j == lo:
            continue
        if j == hi:
            x[i] = fills[hi - 1]
        elif (j - lo) % 2 == 1:
            x[i] = min(fills[j - 1] + (level - shift[i] - knots[j - 1]) / rho, fills[j])
        else:
            x[i] = fills[j - 1]
    return x


@njit
def shifted_fill(start, knots, fills, rho, total, shift, guess, positions):
    """``(x, level)`` of :meth:`ShiftedRamps.fill` for ``0 < total < capacity`` under ``=``, compiled.

    The safeguarded Newton of :func:`_smoothed` on :func:`_warm_supply`, which keeps each
    bucket's knot index in ``positions`` between calls: what the compiled proximal loop calls
    (``convexsched.optimize.proximal``), many fills on the same ramps.
    """
    low, high = np.inf, -np.inf
    capacity = 0.0
    for i in range(len(start) - 1):
        lo, hi = start[i], start[i + 1]
        if lo < hi:
            low = min(low, knots[lo] + shift[i])
            high = max(high, knots[hi - 1] + shift[i])
            capacity += fills[hi - 1]
    supply_low, supply_high = 0.0, capacity
    level = guess if low < guess < high else low + (total / capacity) * (high - low)
    for _ in range(200):
        supply, slope = _warm_supply(start, knots, fills, rho, level, shift, positions)
        if supply == total:
            break
        low, high, supply_low, supply_high, step = _bracketed_newton(
            level, supply, slope, total, low, high, supply_low, supply_high
        )
        if step == level or not low < step < high:
            break
        level = step
    return _warm_response(start, knots, fills, rho, level, shift, positions), level


class ShiftedRamps:
    """(B) water-filling of ``g_i(x) + shift_i x + rho/2 x^2`` for many shifts on the same curves.

    The ramps of (E7) depend on the curves and ``rho`` only; a per-bucket linear term moves
    bucket ``i``'s ramps by ``shift_i``. Prepared once (O(N K)), each fill is a safeguarded
    Newton iteration whose steps walk each bucket's knot index from the last fill's (a knot or
    two when the shifts move a little): the prox of ``convexsched.optimize.proximal``.
    """

    def __init__(self, curves, rho):
        if not rho > 0:
            raise ValueError("ShiftedRamps needs rho > 0")
        slopes, widths = _arrays(curves)
        self.start, self.knots, self.fills = ramps(slopes, widths, float(rho))
        self.rho = float(rho)
        self.capacity = curves.capacity
        self.total_capacity = float(self.capacity.sum())
        # Each bucket's knot index at the last fill: the next search walks from it.
        self.positions = self.start[:-1].copy()

    def fill(self, shift, total, sense="eq", guess=np.nan):
        """``(x, level)`` minimizing ``sum_i g_i(x_i) + shift_i x_i + rho/2 x_i^2`` under the budget.

        ``guess`` is a level to start the search from, e.g. the previous one; each bucket's
        knot index also starts from the previous fill's.
        """
        shift = np.ascontiguousarray(shift, dtype=float)
        args = (self.start, self.knots, self.fills, self.rho)
        if total <= 0:
            return np.zeros(len(self.capacity)), 0.0
        if sense == "le":
            supply, _ = _warm_supply(*args, 0.0, shift, self.positions)
            if supply <= total:
                return _warm_response(*args, 0.0, shift, self.positions), 0.0
        if total >= self.total_capacity:
            return self.capacity.copy(), 0.0
        return shifted_fill(*args, float(total), shift, float(guess), self.positions)
