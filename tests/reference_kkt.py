"""Reference: the first, pure-numpy KKT certificate (the formulas are in :mod:`convexsched.kkt`).

Kept in the tests as an independent check of the compiled passes of :mod:`convexsched.kkt`.
"""

from __future__ import annotations

import numpy as np

from convexsched.errors import InvalidInputError
from convexsched.kkt import KKTReport
from convexsched.validate import share_unit_of, validate
from convexsched.waterfill import conjugate


def _admissible(curves, objective, x, remaining, snap):
    """Per-bucket intervals ``[lower_i, upper_i]`` of levels that make ``x_i`` stationary."""
    pressure = objective.psi * np.cumsum((objective.weight_vector(len(x)) * remaining)[::-1])[::-1]
    left, right = curves.slope_bounds(x, atol=snap)
    smooth = objective.rho * x - pressure
    return left + smooth, right + smooth, pressure


def _intersect(lower, upper, slack, budget, snap):
    lo, hi = float(lower.max()), float(upper.min())
    if budget == "le":
        hi = min(hi, 0.0)
        if slack > snap:
            lo = max(lo, 0.0)
    return lo, hi


def multiplier_interval(curves, total, objective, x, *, budget="eq", snap=1e-9):
    """The levels ``lambda`` that certify an (optimal) ``x``: the intersection above.

    ``snap`` is the distance in shares under which ``x_i`` counts as on a breakpoint.
    """
    x = np.asarray(x, dtype=float)
    remaining = total - np.cumsum(x)
    lower, upper, _ = _admissible(curves, objective, x, remaining, snap)
    return _intersect(lower, upper, total - x.sum(), budget, snap)


def check_kkt(curves, total, objective, x, *, budget="eq", multiplier=None, tol=1e-6):
    """Certify a schedule: primal feasibility, stationarity, complementarity and duality gap.

    Parameters
    ----------
    curves : CostCurves
    total : float
    objective : Objective
    x : array_like or pandas.Series of shape (N,)
        The schedule to check, in shares.
    budget : "eq" | "le"
    multiplier : float, optional
        A claimed ``lambda`` (e.g. a solver's dual). Without it the best level is derived from
        ``x``: the middle of the admissible interval.
    tol : float
        Relative tolerance. ``x_i`` within ``tol * max(S, 1)`` shares of a breakpoint counts as
        sitting on it (solvers return breakpoints only to their own accuracy).

    Returns
    -------
    KKTReport
    """
    total = validate(curves, total, budget)
    x = np.asarray(getattr(x, "values", x), dtype=float)
    n = curves.n_buckets
    if x.shape != (n,):
        raise InvalidInputError(f"the schedule has shape {x.shape}; the curves have {n} buckets")
    if not np.isfinite(x).all():
        raise InvalidInputError("the schedule contains NaN or inf")
    # Solvers are accurate relative to their share unit: S, or the largest bucket when S = 0.
    scale_shares = max(share_unit_of(curves, total), 1.0)
    capacity = curves.capacity
    x_in = np.clip(x, 0.0, capacity)
    remaining = total - np.cumsum(x_in)
    weights = objective.weight_vector(n)
    lower, upper, pressure = _admissible(curves, objective, x_in, remaining, tol * scale_shares)
    lo, hi = _intersect(lower, upper, total - x_in.sum(), budget, tol * scale_shares)
    slack = total - x_in.sum()
    if multiplier is None:
        if lo <= hi:
            level = 0.5 * (lo + hi) if np.isfinite(lo) and np.isfinite(hi) else (lo if np.isfinite(lo) else hi)
            if not np.isfinite(level):
                level = 0.0
        else:
            level = 0.5 * (lo + hi)
    else:
        level = float(multiplier)

    real = curves.widths > 0
    price_scale = max(
        float(np.abs(curves.slopes[real]).max(initial=0.0)),
        abs(level) if np.isfinite(level) else 0.0,
        objective.rho * scale_shares,
        float(np.abs(pressure).max(initial=0.0)),
        1e-12,
    )
    distance = np.maximum(lower - level, 0.0) + np.maximum(level - upper, 0.0)
    stationarity = float(np.nan_to_num(distance, posinf=np.inf).max()) / price_scale
    if budget == "le" and level > 0:
        stationarity = max(stationarity, level / price_scale)

    excess = x.sum() - total
    primal = abs(excess) if budget == "eq" else max(excess, 0.0)
    bounds = float(np.maximum(np.maximum(-x, x - capacity), 0.0).max(initial=0.0))
    complementarity = abs(level) * max(slack, 0.0) / (price_scale * scale_shares) if budget == "le" else 0.0

    value = objective.value(curves, total, x_in)
    nu = level + pressure
    dual = nu[0] * total - conjugate(curves, nu, objective.rho).sum()
    dual -= 0.5 * objective.psi * np.dot(weights[:-1], remaining[:-1] ** 2)
    if budget == "le" and nu[-1] > 0:
        curvature = objective.psi * weights[-1]
        dual = dual - (nu[-1] ** 2 / (2 * curvature) if curvature > 0 else np.inf)
    gap = abs(value - dual) / max(abs(value), price_scale * scale_shares)

    violations = [primal / scale_shares, bounds / scale_shares, stationarity, complementarity, gap]
    worst = float(np.nan_to_num(max(violations), nan=np.inf))
    return KKTReport(
        ok=worst <= tol,
        max_violation=worst,
        primal_residual=primal / scale_shares,
        bound_violation=bounds / scale_shares,
        stationarity=stationarity,
        complementarity=complementarity,
        duality_gap=gap,
        objective_value=value,
        dual_value=float(dual),
        multiplier=float(level),
        multiplier_interval=(lo, hi),
        tol=tol,
    )
