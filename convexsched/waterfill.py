"""Exact water-filling for the separable objectives (A) and (B).

Both objectives split per bucket once the budget constraint is priced by a multiplier
``lambda`` (the water level, seed (3), (5), (8)):

.. math::

    x_i(\\lambda) = \\arg\\min_{0 \\le x \\le c_i} \\; g_i(x) + \\frac{\\rho}{2} x^2 - \\lambda x ,
    \\qquad S(\\lambda) = \\sum_i x_i(\\lambda) .

With piecewise-linear ``g_i`` the response is explicit: a segment ``k`` (slope ``s_k``, from
``b_{k-1}`` to ``b_k``) fills as ``clip((lambda - s_k)/rho - b_{k-1}, 0, w_k)`` for ``rho > 0``
and completely when ``s_k < lambda`` for ``rho = 0``. ``S(lambda)`` is therefore a step function
(A) or a piecewise-linear one (B) whose breakpoints are known, so the budget ``S(lambda) = S`` is
solved exactly by sorting the breakpoints, not by bisection. The seed's dual bisection with
tolerance ``eps_S`` is kept as :func:`bisection` for comparison.

Sign convention (used everywhere in convexsched): ``lambda`` is the water level, the marginal
cost of the last share, so ``g_i'(x_i) + rho x_i = lambda`` on buckets strictly inside their
range. Under the ``<=`` budget ``lambda <= 0`` (the budget's shadow price is ``-lambda``) and
``lambda * (S - sum x) = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WaterLevel:
    """Output of a fast path: the schedule, its water level and the level's valid interval."""

    x: np.ndarray
    multiplier: float
    multiplier_interval: tuple
    iterations: int = 0


def bucket_response(curves, price, rho=0.0, upper=False):
    """``x_i(price_i)`` of seed (8): the best size of every bucket at a given marginal price.

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
    x = bucket_response(curves, price, rho)
    return price * x - curves.evaluate(x) - 0.5 * rho * x * x


def _real_segments(curves):
    real = curves.widths > 0
    return curves.slopes[real], curves.widths[real], curves.breakpoints[:, :-1][real], real


def cost_only(curves, total, budget="eq"):
    """Objective (A), exact: fill the globally cheapest segments first (seed (2), (3)).

    Sorting all ``M`` real segments by slope costs ``O(M log M)``; the marginal segment's slope
    is ``lambda``. Ties (equal slopes) are filled in bucket order; any split of a tie is optimal.
    The returned interval is every ``lambda`` that certifies the schedule.
    """
    slopes, widths, starts, real = _real_segments(curves)
    if total <= 0 or len(slopes) == 0:
        return _nothing_to_trade(curves, slopes, budget)
    if budget == "le":
        # Slack is allowed: trade only what is profitable, unless that exceeds the budget.
        profitable = bucket_response(curves, 0.0)
        if profitable.sum() < total:
            return WaterLevel(profitable, 0.0, (0.0, 0.0))
    if total >= curves.capacity.sum():
        return _everything(curves, slopes, budget)
    order = np.argsort(slopes, kind="stable")
    sorted_slopes, sorted_widths = slopes[order], widths[order]
    filled_before = np.concatenate([[0.0], np.cumsum(sorted_widths)])
    # The first segment whose completion reaches the budget is the marginal one.
    p = min(int(np.searchsorted(filled_before[1:], total, side="left")), len(order) - 1)
    fills_sorted = np.zeros_like(sorted_widths)
    fills_sorted[:p] = sorted_widths[:p]
    fills_sorted[p] = min(total - filled_before[p], sorted_widths[p])
    fills = np.zeros_like(widths)
    fills[order] = fills_sorted
    segment_fill = np.zeros_like(curves.widths)
    segment_fill[real] = fills
    level = sorted_slopes[p]
    if fills_sorted[p] >= sorted_widths[p]:
        upper = sorted_slopes[p + 1] if p + 1 < len(order) else np.inf
    else:
        upper = level
    return _finish(segment_fill.sum(axis=1), level, (level, upper), budget)


def _nothing_to_trade(curves, first_prices, budget):
    """``S = 0`` (or no capacity at all): x = 0, certified by any level below every price."""
    upper = float(first_prices.min(initial=np.inf))
    return _finish(np.zeros(curves.n_buckets), upper if np.isfinite(upper) else 0.0, (-np.inf, upper), budget)


def _everything(curves, last_prices, budget):
    """``S`` = total capacity: every bucket full, certified by any level above every price."""
    lower = float(last_prices.max())
    return _finish(curves.capacity.copy(), lower, (lower, np.inf), budget)


def _finish(x, level, interval, budget):
    if budget == "le":
        # Under "<=" the level is <= 0 (the budget's shadow price -lambda is >= 0).
        interval = (interval[0], min(interval[1], 0.0))
        level = min(level, 0.0)
    return WaterLevel(x, float(level), (float(interval[0]), float(interval[1])))


def smoothed(curves, total, rho, budget="eq"):
    """Objective (B), exact breakpoint search on the piecewise-linear ``S(lambda)``.

    Every real segment contributes a ramp of slope ``1/rho`` in ``lambda`` between
    ``a_k = s_k + rho b_{k-1}`` and ``c_k = s_k + rho b_k`` (seed (8)). Sorting the ``2M`` ramp
    ends and accumulating gives ``S`` at every breakpoint; ``lambda`` is interpolated inside the
    bracketing piece, so ``sum x = S`` holds to rounding.
    """
    slopes, widths, starts, _ = _real_segments(curves)
    if total <= 0 or len(slopes) == 0:
        return _nothing_to_trade(curves, slopes + rho * starts, budget)
    if budget == "le":
        at_zero = bucket_response(curves, 0.0, rho)
        if at_zero.sum() < total:
            return WaterLevel(at_zero, 0.0, (0.0, 0.0))
    if total >= curves.capacity.sum():
        return _everything(curves, slopes + rho * (starts + widths), budget)
    events = np.concatenate([slopes + rho * starts, slopes + rho * (starts + widths)])
    change = np.concatenate([np.full(len(slopes), 1.0 / rho), np.full(len(slopes), -1.0 / rho)])
    order = np.argsort(events, kind="stable")
    events, change = events[order], change[order]
    rate = np.cumsum(change)  # dS/dlambda just after each event
    # S at each event: the integral of the rate over the previous pieces.
    supply = np.concatenate([[0.0], np.cumsum(rate[:-1] * np.diff(events))])
    j = min(int(np.searchsorted(supply, total, side="left")), len(events) - 1)
    if supply[j] <= total:
        # S reaches the budget exactly at an event and may stay there (a plateau): every level
        # on the plateau certifies the schedule.
        k = int(np.searchsorted(supply, total, side="right"))
        level = events[j]
        interval = (level, events[k - 1] if k < len(events) else np.inf)
    else:
        level = events[j - 1] + (total - supply[j - 1]) / rate[j - 1]
        interval = (level, level)
    return _finish(bucket_response(curves, level, rho), level, interval, budget)


def bisection(curves, total, rho=0.0, budget="eq", tol=None, max_iter=200):
    """The seed's dual bisection (section 1): bisect ``lambda`` until ``|S(lambda) - S| <= eps_S``.

    Kept for comparison with the exact paths: it stops within ``tol`` shares (default 0.1% of
    ``S``, the seed's ``eps_S``), so ``sum x`` generally misses ``S`` by up to ``tol``.
    """
    tol = 1e-3 * total if tol is None else tol
    if budget == "le" and bucket_response(curves, 0.0, rho).sum() <= total:
        x = bucket_response(curves, 0.0, rho)
        return WaterLevel(x, 0.0, (0.0, 0.0))
    real = curves.widths > 0
    lo = curves.slopes[real].min(initial=0.0) - 1.0
    hi = (curves.slopes[real] + rho * curves.breakpoints[:, 1:][real]).max(initial=0.0) + 1.0
    level, iterations = hi, 0
    for iterations in range(1, max_iter + 1):
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
