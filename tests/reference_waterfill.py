"""Reference: the first, pure-numpy water-filling for (A) and (B).

Kept in the tests as an independent check of the compiled kernels of
:mod:`convexsched.optimize.waterfill` (weighted quickselect in numpy for (A), median bisection over
the breakpoints for (B)). It splits a tied level in bucket order, not at the centre. The
per-bucket response and the boundary cases were not compiled, so they are the package's own.
"""

from __future__ import annotations

import numpy as np

from convexsched.optimize.waterfill import WaterLevel, _everything, _finish, _nothing_to_trade, bucket_response


def _real_segments(curves):
    real = curves.widths > 0
    return curves.slopes[real], curves.widths[real], curves.breakpoints[:, :-1][real], real


def _weighted_select(values, weights, total):
    """Smallest value ``v`` with ``sum(weights[values <= v]) >= total`` (weighted quickselect).

    Returns ``(v, weight strictly below v, weight at v)``. Each round partitions around the
    median and keeps one side, so the expected cost is O(M) rather than a sort's O(M log M).
    """
    below = 0.0
    while len(values) > 64:
        middle = len(values) // 2
        pivot = np.partition(values, middle)[middle]
        less = values < pivot
        weight_less = weights[less].sum()
        if below + weight_less >= total:
            values, weights = values[less], weights[less]
            continue
        equal = values == pivot
        weight_equal = weights[equal].sum()
        if below + weight_less + weight_equal >= total:
            return pivot, below + weight_less, weight_equal
        below += weight_less + weight_equal
        more = ~(less | equal)
        values, weights = values[more], weights[more]
    distinct, inverse = np.unique(values, return_inverse=True)
    weight = np.bincount(inverse, weights=weights, minlength=len(distinct))
    cumulative = np.cumsum(weight)
    j = min(int(np.searchsorted(cumulative, total - below, side="left")), len(distinct) - 1)
    return distinct[j], below + (cumulative[j - 1] if j else 0.0), weight[j]


def cost_only(curves, total, sense="eq"):
    """Objective (A), exact: fill the globally cheapest segments first ((E2), (E3)).

    The marginal slope ``lambda`` is the budget's weighted quantile of all segment slopes
    (weights = widths), found by weighted quickselect in expected O(M); every cheaper segment
    is full. Segments tied at ``lambda`` share the remainder in bucket order; any split of a
    tie is optimal. The returned interval is every ``lambda`` that certifies the schedule.
    """
    slopes, widths, _, real = _real_segments(curves)
    if total <= 0 or len(slopes) == 0:
        return _nothing_to_trade(curves, slopes, sense)
    if sense == "le":
        # Slack is allowed: trade only what is profitable, unless that exceeds the budget.
        profitable = bucket_response(curves, 0.0)
        if profitable.sum() < total:
            return WaterLevel(profitable, 0.0, (0.0, 0.0))
    if total >= curves.capacity.sum():
        return _everything(curves, slopes, sense)
    level, below, tied_width = _weighted_select(slopes, widths, total)
    fill = np.where(curves.slopes < level, curves.widths, 0.0)
    tied = np.where(real & (curves.slopes == level), curves.widths, 0.0).ravel()
    remainder = total - below
    before = np.cumsum(tied) - tied
    fill += np.clip(remainder - before, 0.0, tied).reshape(fill.shape)
    if remainder >= tied_width:
        upper = float(slopes[slopes > level].min(initial=np.inf))
    else:
        upper = level
    return _finish(fill.sum(axis=1), level, (level, upper), sense)


def smoothed(curves, total, rho, sense="eq"):
    """Objective (B), exact breakpoint search on the piecewise-linear ``S(lambda)``.

    Every real segment contributes a ramp of slope ``1/rho`` in ``lambda`` between
    ``a_k = s_k + rho b_{k-1}`` and ``c_k = s_k + rho b_k`` (E7). Bisecting over these
    ``2M`` breakpoints (median pivots, exact ``S`` at each) brackets the budget between two
    consecutive breakpoints, where ``S`` is affine: ``lambda`` is interpolated there, so
    ``sum x = S`` holds to rounding. About ``log2(2M)`` evaluations of O(M) each.
    """
    slopes, widths, starts, _ = _real_segments(curves)
    if total <= 0 or len(slopes) == 0:
        return _nothing_to_trade(curves, slopes + rho * starts, sense)
    if sense == "le":
        at_zero = bucket_response(curves, 0.0, rho)
        if at_zero.sum() < total:
            return WaterLevel(at_zero, 0.0, (0.0, 0.0))
    if total >= curves.capacity.sum():
        return _everything(curves, slopes + rho * (starts + widths), sense)
    ramp_starts = slopes + rho * starts
    ramp_ends = slopes + rho * (starts + widths)
    candidates = np.concatenate([ramp_starts, ramp_ends])
    low, high = -np.inf, np.inf
    supply_low, supply_high = 0.0, float(curves.capacity.sum())
    # Bisect over the breakpoints themselves (median pivots, exact S at each) until none is
    # left between the bracket's ends, where S is affine. Ramps wholly outside the bracket
    # are settled (full or empty) and leave the working set, so every round costs O(size of
    # what is still open) and the rounds shrink geometrically.
    open_starts, open_widths, settled = ramp_starts, widths, 0.0
    while len(candidates):
        middle = len(candidates) // 2
        pivot = np.partition(candidates, middle)[middle]
        supply = settled + np.clip((pivot - open_starts) / rho, 0.0, open_widths).sum()
        if supply == total:
            # The budget is met at a breakpoint; S may stay flat on both sides of it.
            lower = (
                pivot
                if np.any((ramp_starts < pivot) & (pivot <= ramp_ends))
                else float(ramp_ends[ramp_ends < pivot].max(initial=-np.inf))
            )
            upper = (
                pivot
                if np.any((ramp_starts <= pivot) & (pivot < ramp_ends))
                else float(ramp_starts[ramp_starts > pivot].min(initial=np.inf))
            )
            return _finish(bucket_response(curves, pivot, rho), pivot, (lower, upper), sense)
        if supply < total:
            low, supply_low = pivot, supply
            candidates = candidates[candidates > pivot]
        else:
            high, supply_high = pivot, supply
            candidates = candidates[candidates < pivot]
        open_ends = open_starts + rho * open_widths
        full = open_ends <= low
        settled += open_widths[full].sum()
        still = ~full & (open_starts < high)
        open_starts, open_widths = open_starts[still], open_widths[still]
    level = low + (total - supply_low) * (high - low) / (supply_high - supply_low)
    return _finish(bucket_response(curves, level, rho), level, (level, level), sense)
