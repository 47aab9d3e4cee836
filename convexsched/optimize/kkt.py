"""KKT certificates for any schedule, including one computed elsewhere; scale-free.

Write the objective as ``F = G + H`` with ``G(x) = sum_i g_i(x_i) + iota_{[0, c_i]}(x_i)`` (the
impact curves and the bounds) and ``H`` every other term, and let ``Q >= 0`` be a uniform
curvature with ``H - Q/2 |x|^2`` convex (the smoothing ``rho``; 0 otherwise). ``x`` is optimal
if and only if there is a water level ``lambda`` with, for every bucket ((E10), (E25)),

.. math::

    \\lambda - \\nabla_i H(x) \\in \\partial\\big(g_i + \\iota_{[0, c_i]}\\big)(x_i)
    = [g_i'(x_i^-), g_i'(x_i^+)] ,

primal feasibility (``sum x = S`` or ``<= S``, ``0 <= x <= c``) and, under ``<=``,
``lambda <= 0`` with ``lambda (S - sum x) = 0``. (For the family, ``-\\nabla_i H = P_i - \\rho
x_i`` with ``P_i = psi sum_{j>=i} w_j R_j``.) Every bucket gives an interval of admissible
levels; their intersection is the *multiplier interval*.

The lower bound comes from convexity alone (E25): with ``c = \\nabla H(x) - Q x``,

.. math::

    F(y) \\ge G(y) + \\frac{Q}{2}|y|^2 + c^\\top y + \\underbrace{H(x) - \\frac{Q}{2}|x|^2 - c^\\top x}_{\\kappa}
    \\quad\\Rightarrow\\quad
    F^* \\ge D = \\kappa + \\min_{y \\text{ feasible}} \\sum_i \\big[g_i(y_i) + c_i y_i + \\tfrac{Q}{2} y_i^2\\big] ,

a separable (A)/(B) problem on the curves with slopes moved by ``c_i``, solved exactly by
water-filling. Any level ``lambda`` (``<= 0`` under ``<=``) also gives the weak-duality bound
``kappa + lambda S - sum_i phi_i^*(lambda - c_i)``, one pass over the segments, exact when
``lambda`` is the level of the linearized problem; the certificate takes it first and runs the
water-filling only when it does not already close the gap. ``F(x) - D >= 0`` bounds the
suboptimality of ``x`` for any mix of terms, and it is zero at the optimum.

Scale: the gap is judged relative to what ``x`` pays (``|F(x)|``, or the sum of the terms'
magnitudes when they cancel), and each bucket's stationarity residual against that bucket's own
prices (its steepest slope, each term's gradient and the level), less the ``Q * snap`` a curved
term moves over the share snap that breakpoints get, so buckets a million times
dearer elsewhere cannot hide a bad schedule. A NaN or infinite value fails.

Two paths give the same report. :func:`certify` is the reference: any objective, numpy
between two compiled passes. :func:`certify_fused`, which ``solve``'s fast paths call, computes
the same quantities for the built-in terms (smoothing and inventory risk) in one compiled pass
over the segments when a level is claimed, stopping each sorted row once nothing further can
change (past ``x``, its right slope and the level's fill); it hands everything else to
:func:`certify`, including every schedule whose gap the one-level bound does not close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .._deprecated import renamed
from .._jit import njit
from ..errors import InvalidInputError
from . import waterfill
from .validate import share_unit_of, validate

if TYPE_CHECKING:
    from .curves import CostCurves
    from .objective import Objective
    from .validate import Order


@dataclass(frozen=True)
class KKTReport:
    """KKT residuals and duality gap of a schedule; ``ok`` when all are within ``tol``.

    Attributes
    ----------
    ok : bool
        Every relative residual within ``tol`` and every number finite.
    max_violation : float
        The largest of the relative residuals (``inf`` when one is NaN).
    primal_residual : float
        Budget violation ``|sum x - S|`` (or the excess over ``S`` under ``<=``) over the share
        unit (``S``, or the largest capacity when ``S = 0``).
    bound_violation : float
        Largest excursion outside ``[0, c_i]`` over the share unit.
    stationarity : float
        Largest distance of ``lambda`` from a bucket's admissible interval, each over that
        bucket's own price scale.
    complementarity : float
        ``|lambda| * slack`` over the cost scale (``<=`` budget; 0 otherwise).
    duality_gap : float
        ``F(x) - D`` in currency: ``x`` costs at most this much more than the optimum.
    relative_gap : float
        ``|F(x) - D|`` over the cost scale (``|F(x)|``, or the terms' magnitudes when larger).
    objective_value, dual_value : float
        ``F(x)`` and the lower bound ``D``.
    multiplier : float
        The level ``lambda`` checked (the one given, else the best one from ``x``).
    multiplier_interval : tuple
        Every level that satisfies stationarity for this ``x``; ``(lambda, lambda)`` when the
        intersection is empty only by rounding.
    """

    ok: bool
    max_violation: float
    primal_residual: float
    bound_violation: float
    stationarity: float
    complementarity: float
    duality_gap: float
    objective_value: float
    dual_value: float
    multiplier: float
    multiplier_interval: tuple[float, float]
    tol: float
    relative_gap: float = 0.0

    def __str__(self):
        verdict = "OK" if self.ok else "FAILED"
        lo, hi = self.multiplier_interval
        if lo <= hi:
            admissible = f"admissible [{lo:.8g}, {hi:.8g}]"
        else:
            admissible = "admissible: none (no level makes x stationary)"
        return (
            f"KKT certificate: {verdict} (max violation {self.max_violation:.2e}, tol {self.tol:.0e})\n"
            f"  primal residual   {self.primal_residual:.2e}\n"
            f"  bound violation   {self.bound_violation:.2e}\n"
            f"  stationarity      {self.stationarity:.2e}\n"
            f"  complementarity   {self.complementarity:.2e}\n"
            f"  duality gap       {self.relative_gap:.2e}  ({self.duality_gap:.6g} in currency; "
            f"F = {self.objective_value:.8g}, D = {self.dual_value:.8g})\n"
            f"  lambda            {self.multiplier:.8g}  {admissible}"
        )


@njit
def _bucket_bounds(slopes, widths, x, snap):
    """One pass over the segments at ``x``.

    Returns the subdifferential of ``g_i + indicator[0, c_i]`` (``[left_i, right_i]``, a
    breakpoint within ``snap`` shares counts as reached), ``g_i(x_i)``, ``sum_k |s_ik| fill_ik``
    (what the bucket pays, gross of rebates) and each bucket's steepest real slope in absolute
    value.
    """
    n, k = slopes.shape
    left = np.full(n, -np.inf)
    right = np.full(n, np.inf)
    cost = np.zeros(n)
    gross = np.zeros(n)
    steepest = np.zeros(n)
    for i in range(n):
        start = 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                slope = slopes[i, j]
                steepest[i] = max(steepest[i], abs(slope))
                if start < x[i] - snap:
                    left[i] = max(left[i], slope)
                if start + width > x[i] + snap:
                    right[i] = min(right[i], slope)
                fill = min(max(x[i] - start, 0.0), width)
                cost[i] += slope * fill
                gross[i] += abs(slope) * fill
                start += width
    return left, right, cost, gross, steepest


@njit
def _interval(slopes, widths, x, snap, gradient):
    """``max_i (left_i + gradient_i)`` and ``min_i (right_i + gradient_i)`` of :func:`_bucket_bounds`.

    A canonical row is sorted, so each row stops at the first segment that ends past
    ``x_i + snap``: its slope is ``right_i``, and no later segment starts before ``x_i - snap``.
    """
    n, k = slopes.shape
    lo, hi = -np.inf, np.inf
    for i in range(n):
        left, right, start = -np.inf, np.inf, 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                slope = slopes[i, j]
                if start < x[i] - snap:
                    left = max(left, slope)
                if start + width > x[i] + snap:
                    right = slope
                    break
                start += width
        lo = max(lo, left + gradient[i])
        hi = min(hi, right + gradient[i])
    return lo, hi


@njit
def _conjugate_sum(slopes, widths, price, rho):
    """``sum_i phi_i^*(price_i)``, ``phi_i^*(p) = max_{0<=x<=c_i} p x - g_i(x) - rho/2 x^2`` (exact)."""
    n, k = slopes.shape
    total = 0.0
    for i in range(n):
        start, bought, cost = 0.0, 0.0, 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                slope = slopes[i, j]
                if rho > 0:
                    fill = min(max((price[i] - slope) / rho - start, 0.0), width)
                else:
                    fill = width if slope < price[i] else 0.0
                bought += fill
                cost += slope * fill
                start += width
        total += price[i] * bought - cost - 0.5 * rho * bought * bought
    return total


@njit
def _cost_sum(slopes, widths, x):
    """``sum_i g_i(x_i)`` for ``x`` inside the bounds, one pass."""
    n, k = slopes.shape
    total = 0.0
    for i in range(n):
        start = 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                fill = min(max(x[i] - start, 0.0), width)
                if fill <= 0:
                    break
                total += slopes[i, j] * fill
                start += width
    return total


def _arrays(curves):
    return (np.ascontiguousarray(curves.slopes, dtype=float), np.ascontiguousarray(curves.widths, dtype=float))


def _intersect(lo, hi, slack, sense, snap):
    """The admissible levels from ``lo = max_i lower_i`` and ``hi = min_i upper_i``.

    Under ``<=`` the level is at most 0, and at least 0 while budget is left over.
    """
    lo, hi = float(lo), float(hi)
    if sense == "le":
        hi = min(hi, 0.0)
        if slack > snap:
            lo = max(lo, 0.0)
    return lo, hi


def multiplier_interval(
    curves: CostCurves, total: float, objective: Objective, x: ArrayLike, *, sense: str = "eq", snap: float = 1e-9
) -> tuple[float, float]:
    """The levels ``lambda`` that certify an (optimal) ``x``: the intersection above.

    ``snap`` is the distance in shares under which ``x_i`` counts as on a breakpoint.
    """
    x = np.ascontiguousarray(x, dtype=float)
    slopes, widths = _arrays(curves)
    gradient = np.ascontiguousarray(objective.smooth_part(total, x)[1], dtype=float)
    lo, hi = _interval(slopes, widths, x, float(snap), gradient)
    return _intersect(lo, hi, total - x.sum(), sense, snap)


def check_kkt(
    curves: CostCurves,
    total: float,
    objective: Objective | None,
    x: ArrayLike,
    *,
    sense: str = "eq",
    multiplier: float | None = None,
    tol: float = 1e-6,
    budget: str | None = None,
) -> KKTReport:
    """Certify a schedule: primal feasibility, stationarity, complementarity and duality gap.

    Parameters
    ----------
    curves : CostCurves
    total : float
    objective : Objective
    x : array_like or pandas.Series of shape (N,)
        The schedule to check, in shares.
    sense : "eq" | "le"
        ``sum x = S`` or ``sum x <= S``.
    multiplier : float, optional
        A claimed ``lambda`` (e.g. a solver's dual). Without it the level is derived from
        ``x`` (the middle of the admissible interval) or, when no level fits, from the
        water-filling of the lower bound.
    tol : float
        Relative tolerance. ``x_i`` within ``tol * max(S, 1)`` shares of a breakpoint counts as
        sitting on it (solvers return breakpoints only to their own accuracy).
    budget : "eq" | "le", optional
        Deprecated name of ``sense`` (removed in 0.4).

    Returns
    -------
    KKTReport

    Raises
    ------
    InvalidInputError, InfeasibleError
        A malformed budget or schedule (see :func:`convexsched.optimize.validate.validate`).
    """
    order = validate(curves, total, objective, renamed(sense, budget, "check_kkt", "budget", "sense"))
    return certify(order, x, multiplier=multiplier, tol=tol)


def _linearized_minimum(curves, total, sense, shift, curvature):
    """``min sum_i g_i(y_i) + shift_i y_i + Q/2 y_i^2`` over the feasible set, exactly: ``(value, level)``."""
    moved = curves.shifted(shift)
    if curvature > 0:
        filled = waterfill.smoothed(moved, total, curvature, sense)
    else:
        filled = waterfill.cost_only(moved, total, sense)
    y = filled.x
    return float(moved.evaluate(y).sum() + 0.5 * curvature * np.dot(y, y)), float(filled.multiplier)


def _level_bound(slopes, widths, total, sense, shift, curvature, level):
    """Weak duality at one level: ``lambda S - sum_i phi_i^*(lambda - shift_i)``."""
    if sense == "le":
        level = min(level, 0.0)
    return level * total - _conjugate_sum(slopes, widths, level - shift, float(curvature))


def certify(order: Order, x: ArrayLike, *, multiplier: float | None = None, tol: float = 1e-6) -> KKTReport:
    """:func:`check_kkt` for an :class:`~convexsched.optimize.validate.Order` already checked.

    Two compiled passes over the N x K segments (the subdifferentials and costs at ``x``, then
    the conjugates at the level); an exact water-filling of the linearized problem only when
    those do not certify ``x``.
    """
    curves, total, objective, sense = order.curves, order.total, order.objective, order.sense
    x = np.asarray(getattr(x, "values", x), dtype=float)
    n = curves.n_buckets
    if x.shape != (n,):
        raise InvalidInputError(f"the schedule has shape {x.shape}; the curves have {n} buckets")
    if not np.isfinite(x).all():
        raise InvalidInputError("the schedule contains NaN or inf")
    slopes, widths = _arrays(curves)
    # Solvers are accurate relative to their share unit: S, or the largest bucket when S = 0.
    scale_shares = max(share_unit_of(curves, total), 1.0)
    snap = tol * scale_shares
    capacity = curves.capacity
    x_in = np.clip(x, 0.0, capacity)
    slack = total - x_in.sum()
    with np.errstate(over="ignore", invalid="ignore"):
        left, right, cost, gross, steepest = _bucket_bounds(slopes, widths, x_in, float(snap))
        smooth_value, gradient, magnitude, curvature = objective.smooth_terms(total, x_in)
        lower, upper = left + gradient, right + gradient
        lo, hi = _intersect(lower.max(initial=-np.inf), upper.min(initial=np.inf), slack, sense, snap)
        shift = gradient - curvature * x_in
        constant = smooth_value - 0.5 * curvature * float(np.dot(x_in, x_in)) - float(np.dot(shift, x_in))
        value = float(cost.sum()) + smooth_value
        # What x pays: |F|, or the magnitudes of its parts when a linear term cancels the cost;
        # near S = 0 (x a few ulps from 0), tol of trading one share unit in the buckets x uses.
        used_price = float(np.where(x_in > 0, steepest, 0.0).max(initial=0.0))
        cost_scale = max(abs(value), float(gross.sum()) + abs(smooth_value), abs(constant), tol * used_price * scale_shares)

        exact_level = None
        if multiplier is not None:
            level = float(multiplier)
        elif lo <= hi:
            level = 0.5 * (lo + hi) if np.isfinite(lo) and np.isfinite(hi) else (lo if np.isfinite(lo) else hi)
            if not np.isfinite(level):
                level = 0.0
        else:
            bound, exact_level = _linearized_minimum(curves, total, sense, shift, curvature)
            level = exact_level
        # Each bucket against its own prices: its slopes, each term's gradient (terms that cancel
        # carry errors of their own size) and the level.
        bucket_scale = np.maximum(np.maximum(steepest, magnitude), abs(level) if np.isfinite(level) else 0.0)
        # A smooth term's own curvature moves bucket i's derivative by at least Q per share, so
        # x_i within snap shares of its stationary point leaves up to Q * snap: the allowance
        # breakpoints get in shares, given to the curved part too (E25).
        distance = np.maximum(np.maximum(lower - level, 0.0) + np.maximum(level - upper, 0.0) - curvature * snap, 0.0)
        residual = np.where(distance > 0, distance / np.where(bucket_scale > 0, bucket_scale, 1.0), 0.0)
        residual = np.where((distance > 0) & (bucket_scale == 0), np.inf, residual)
        stationarity = float(residual.max(initial=0.0))
        if sense == "le" and level > 0:
            stationarity = max(stationarity, level / max(float(steepest.max(initial=0.0)), abs(level)))
        complementarity = 0.0
        if sense == "le" and level != 0 and slack > 0:
            complementarity = abs(level) * slack / cost_scale if cost_scale > 0 else np.inf

        excess = x.sum() - total
        primal = abs(excess) if sense == "eq" else max(excess, 0.0)
        bounds = float(np.maximum(np.maximum(-x, x - capacity), 0.0).max(initial=0.0))
        dual = constant + _level_bound(slopes, widths, total, sense, shift, curvature, level)
        others_fail = (
            multiplier is not None and not max(stationarity, complementarity, primal / scale_shares, bounds / scale_shares) <= tol
        )
        if (not value - dual <= tol * cost_scale) and exact_level is None and not others_fail:
            # The level does not close the gap: the exact minimum of the linearized problem
            # decides (a level is only a bound; the water-filling is the best one). With a
            # claimed level that already fails, the verdict stands and the one-level bound
            # (rigorous, looser) is reported.
            bound, exact_level = _linearized_minimum(curves, total, sense, shift, curvature)
        if exact_level is not None:
            dual = max(dual, constant + bound) if np.isfinite(dual) else constant + bound
        gap = value - dual
        relative_gap = abs(gap) / cost_scale if cost_scale > 0 else (0.0 if gap == 0 else np.inf)

    if lo > hi and stationarity <= tol:
        lo = hi = level  # empty only by rounding (a few ulps): the level fits every bucket
    violations = (primal / scale_shares, bounds / scale_shares, stationarity, complementarity, relative_gap)
    finite = all(np.isfinite(v) for v in (value, dual, level))
    worst = _worst(violations) if finite else np.inf
    return KKTReport(
        ok=bool(worst <= tol),
        max_violation=worst,
        primal_residual=primal / scale_shares,
        bound_violation=bounds / scale_shares,
        stationarity=stationarity,
        complementarity=complementarity,
        duality_gap=float(gap),
        relative_gap=float(relative_gap),
        objective_value=value,
        dual_value=float(dual),
        multiplier=float(level),
        multiplier_interval=(float(lo), float(hi)),
        tol=tol,
    )


# The fused certificate's outcomes: a report, or the reference path decides.
_FUSED_OK, _FUSED_REFERENCE = 0, 1


@njit
def _fused_certificate(slopes, widths, breakpoints, x, total, rho, psi, weights, le, multiplier, tol, scale_shares):
    """:func:`certify` for the built-in objectives (A, B, C and their mixes) in compiled passes.

    The same arithmetic as the reference, term by term: ``H = rho/2 |x|^2 + psi/2 sum w_i R_i^2``
    (E9), ``grad_i H = rho x_i - psi sum_{j>=i} w_j R_j``, ``Q = rho``; the subdifferentials,
    costs and, with a claimed level, the conjugates of the one-level bound (E25) in one pass
    over the segments (a second pass for the conjugates when the level is read off ``x``).
    ``multiplier`` is NaN when none is claimed; the capacities are the breakpoints' last column. Returns ``(outcome, values)``: with
    ``_FUSED_REFERENCE`` (a non-finite input or gradient, no level fits ``x``, or the level does
    not close the gap and the exact water-filling of the linearized problem must decide) the
    caller runs :func:`certify`; otherwise ``values`` holds the report's numbers in the order of
    :func:`_fused_report`.
    """
    n, k = slopes.shape
    values = np.zeros(11)
    snap = tol * scale_shares
    x_in = np.empty(n)
    gradient = np.empty(n)
    magnitude = np.empty(n)
    lower = np.empty(n)
    upper = np.empty(n)
    steepest = np.zeros(n)
    raw_sum, in_sum, bounds, squares = 0.0, 0.0, 0.0, 0.0
    for i in range(n):
        xi = x[i]
        if not np.isfinite(xi):
            return _FUSED_REFERENCE, values
        raw_sum += xi
        capacity = breakpoints[i, k]
        bounds = max(bounds, max(max(-xi, xi - capacity), 0.0))
        clipped = min(max(xi, 0.0), capacity)
        x_in[i] = clipped
        in_sum += clipped
        squares += clipped * clipped
    slack = total - in_sum
    # The terms beside the curves, summed in the order of Objective.parts() (smoothing, then risk).
    smooth_value = 0.0
    if rho > 0:
        smooth_value += 0.5 * rho * squares
    for i in range(n):
        gradient[i] = rho * x_in[i] if rho > 0 else 0.0
        magnitude[i] = abs(gradient[i])
    if psi > 0:
        # R_i = S - sum_{k<=i} x_k; the gradient sums w_j R_j from the end.
        bought, risk = 0.0, 0.0
        for i in range(n):
            bought += x_in[i]
            remaining = total - bought
            lower[i] = weights[i] * remaining  # scratch: w_i R_i
            risk += weights[i] * (remaining * remaining)  # np.dot(w, R**2)
        smooth_value += 0.5 * psi * risk
        tail = 0.0
        for i in range(n - 1, -1, -1):
            tail += lower[i]
            part = -psi * tail
            gradient[i] += part
            magnitude[i] += abs(part)
    shift_dot, x_dot = 0.0, 0.0
    for i in range(n):
        if not np.isfinite(gradient[i]):
            return _FUSED_REFERENCE, values
        shift_dot += (gradient[i] - rho * x_in[i]) * x_in[i]
        x_dot += x_in[i] * x_in[i]
    constant = smooth_value - 0.5 * rho * x_dot - shift_dot
    claimed = not np.isnan(multiplier)
    level = multiplier
    conjugates_at = min(level, 0.0) if le else level
    cost_sum, gross_sum, conjugates = 0.0, 0.0, 0.0
    lo, hi, used_price = -np.inf, np.inf, 0.0
    for i in range(n):
        # The subdifferential of g_i + indicator[0, c_i] at x_i (a breakpoint within snap counts
        # as reached), the cost, what the bucket pays gross of rebates, its steepest slope and,
        # with a claimed level, phi_i^*(level - shift_i): _bucket_bounds and _conjugate_sum.
        xi = x_in[i]
        price = conjugates_at - (gradient[i] - rho * xi)
        left, right, cost, gross = -np.inf, np.inf, 0.0, 0.0
        # A canonical row is sorted and its zero widths carry a real slope (a row without
        # capacity is all zeros): the steepest real slope is at one of its ends.
        steep = max(abs(slopes[i, 0]), abs(slopes[i, k - 1]))
        start, bought, paid, taken = 0.0, 0.0, 0.0, 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                slope = slopes[i, j]
                if start < xi - snap:
                    left = max(left, slope)
                if start + width > xi + snap:
                    right = min(right, slope)
                fill = min(max(xi - start, 0.0), width)
                cost += slope * fill
                gross += abs(slope) * fill
                if claimed:
                    if rho > 0:
                        taken = min(max((price - slope) / rho - start, 0.0), width)
                    else:
                        taken = width if slope < price else 0.0
                    bought += taken
                    paid += slope * taken
                start += width
                # Past x, past the first slope right of it and past the price: the rest of the
                # sorted row adds only zeros (rounding keeps each test monotone along the row).
                if start >= xi and right < np.inf and taken == 0.0:
                    break
        if claimed:
            conjugates += price * bought - paid - 0.5 * rho * bought * bought
        steepest[i] = steep
        lower[i] = left + gradient[i]
        upper[i] = right + gradient[i]
        lo = max(lo, lower[i])
        hi = min(hi, upper[i])
        cost_sum += cost
        gross_sum += gross
        if xi > 0:
            used_price = max(used_price, steep)
    if le:
        hi = min(hi, 0.0)
        if slack > snap:
            lo = max(lo, 0.0)
    value = cost_sum + smooth_value
    cost_scale = max(max(abs(value), gross_sum + abs(smooth_value)), max(abs(constant), tol * used_price * scale_shares))
    if not claimed:
        if not lo <= hi:
            return _FUSED_REFERENCE, values  # no level fits x: the water-filling gives one
        if np.isfinite(lo) and np.isfinite(hi):
            level = 0.5 * (lo + hi)
        else:
            level = lo if np.isfinite(lo) else hi
        if not np.isfinite(level):
            level = 0.0
        conjugates_at = min(level, 0.0) if le else level
        for i in range(n):
            price = conjugates_at - (gradient[i] - rho * x_in[i])
            start, bought, paid = 0.0, 0.0, 0.0
            for j in range(k):
                width = widths[i, j]
                if width > 0:
                    slope = slopes[i, j]
                    if rho > 0:
                        taken = min(max((price - slope) / rho - start, 0.0), width)
                    else:
                        taken = width if slope < price else 0.0
                    if taken == 0.0:
                        break  # and on every later (dearer, later-starting) segment
                    bought += taken
                    paid += slope * taken
                    start += width
            conjugates += price * bought - paid - 0.5 * rho * bought * bought
    if not np.isfinite(level):
        return _FUSED_REFERENCE, values
    stationarity, steepest_all = 0.0, 0.0
    for i in range(n):
        # Each bucket against its own prices, less the Q * snap allowance of the curved part.
        scale = max(max(steepest[i], magnitude[i]), abs(level))
        distance = max(max(lower[i] - level, 0.0) + max(level - upper[i], 0.0) - rho * snap, 0.0)
        if distance > 0:
            stationarity = max(stationarity, distance / scale if scale > 0 else np.inf)
        steepest_all = max(steepest_all, steepest[i])
    if le and level > 0:
        stationarity = max(stationarity, level / max(steepest_all, abs(level)))
    complementarity = 0.0
    if le and level != 0 and slack > 0:
        complementarity = abs(level) * slack / cost_scale if cost_scale > 0 else np.inf
    excess = raw_sum - total
    primal = abs(excess) if not le else max(excess, 0.0)
    dual = constant + (conjugates_at * total - conjugates)
    others_fail = (
        claimed and not max(max(stationarity, complementarity), max(primal / scale_shares, bounds / scale_shares)) <= tol
    )
    if not value - dual <= tol * cost_scale and not others_fail:
        return _FUSED_REFERENCE, values
    values[0], values[1], values[2], values[3] = primal / scale_shares, bounds / scale_shares, stationarity, complementarity
    values[4], values[5], values[6], values[7] = value, dual, level, lo
    values[8], values[9], values[10] = hi, cost_scale, value - dual
    return _FUSED_OK, values


def _worst(violations):
    """The largest violation; inf if any is NaN.

    Python's ``max`` keeps a NaN only when it comes first, so a NaN residual further on would
    read as passed.
    """
    worst = 0.0
    for violation in violations:
        if violation != violation:
            return np.inf
        worst = max(worst, violation)
    return float(worst)


def _fused_report(values, tol):
    primal, bounds, stationarity, complementarity, value, dual, level, lo, hi, cost_scale, gap = values.tolist()
    relative_gap = abs(gap) / cost_scale if cost_scale > 0 else (0.0 if gap == 0 else np.inf)
    if lo > hi and stationarity <= tol:
        lo = hi = level  # empty only by rounding (a few ulps): the level fits every bucket
    worst = _worst((primal, bounds, stationarity, complementarity, relative_gap))
    if not (math.isfinite(value) and math.isfinite(dual)):
        worst = np.inf
    # The same object KKTReport(...) makes, its fields set in one dict update: the frozen
    # dataclass's __init__ sets each of the 13 through object.__setattr__, which costs several
    # microseconds on the cold cache a desk's re-quote meets (it runs right after other work).
    report = object.__new__(KKTReport)
    report.__dict__.update(
        ok=bool(worst <= tol),
        max_violation=float(worst),
        primal_residual=primal,
        bound_violation=bounds,
        stationarity=stationarity,
        complementarity=complementarity,
        duality_gap=gap,
        objective_value=value,
        dual_value=dual,
        multiplier=level,
        multiplier_interval=(lo, hi),
        tol=tol,
        relative_gap=float(relative_gap),
    )
    return report


_NO_WEIGHTS = np.zeros(0)
_FLOAT = np.dtype(float)


def certify_fused(order: Order, x: ArrayLike, *, multiplier: float | None = None, tol: float = 1e-6) -> KKTReport:
    """:func:`certify` in compiled passes, for the built-in objectives: the same numbers and verdict.

    The hot path of ``solve``: the subdifferentials, costs, terms and conjugates of (E25) in one
    compiled pass over the segments when a level is claimed (the fast paths claim theirs), and no
    numpy between. Objectives with other terms, inputs the kernel does not take (NaN, a wrong
    shape), schedules no level fits and gaps the one-level bound does not close go to
    :func:`certify`, the reference, which then decides.
    """
    objective, curves, total = order.objective, order.curves, order.total
    # The fast paths hand over a float ndarray: no conversion (each numpy call costs microseconds
    # on a cold cache, and a re-quote loop runs right after other work).
    values = x if type(x) is np.ndarray and x.dtype == _FLOAT else np.asarray(getattr(x, "values", x), dtype=float)
    if objective.terms or values.shape != (curves.n_buckets,):
        return certify(order, x, multiplier=multiplier, tol=tol)
    weights = objective.weight_vector(curves.n_buckets) if objective.psi > 0 else _NO_WEIGHTS
    # The curves' stored arrays are C-contiguous float64 (CostCurves stores them so).
    outcome, numbers = _fused_certificate(
        curves.slopes,
        curves.widths,
        curves.breakpoints,
        values if values.flags.c_contiguous else np.ascontiguousarray(values),
        float(total),
        objective.rho,
        objective.psi,
        weights,
        order.sense == "le",
        np.nan if multiplier is None else float(multiplier),
        float(tol),
        max(share_unit_of(curves, total), 1.0),
    )
    if outcome != _FUSED_OK:
        return certify(order, x, multiplier=multiplier, tol=tol)
    return _fused_report(numbers, tol)


def bound_at_level(order: Order, x: np.ndarray, level: float) -> tuple[float, float]:
    """``(F(x), D(lambda))``: the objective and the one-pass weak-duality bound of (E25) at a level.

    ``D(lambda) <= F*`` for any level (``<= 0`` under ``<=``); the iterative solvers use it as a
    cheap test before the full :func:`certify`.
    """
    curves, total = order.curves, order.total
    slopes, widths = _arrays(curves)
    smooth_value, gradient, curvature = order.objective.smooth_part(total, x)
    shift = gradient - curvature * x
    constant = smooth_value - 0.5 * curvature * float(np.dot(x, x)) - float(np.dot(shift, x))
    # x comes from the prox, inside the bounds: the one-pass cost (no extended-value check).
    value = _cost_sum(slopes, widths, np.ascontiguousarray(x, dtype=float)) + smooth_value
    return value, constant + _level_bound(slopes, widths, total, order.sense, shift, curvature, level)
