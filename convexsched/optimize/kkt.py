"""KKT certificates for any schedule, including one computed elsewhere.

For the objective family of :mod:`convexsched.optimize.objective`, ``x`` is optimal if and only if there
is a water level ``lambda`` with, for every bucket ((E10): (E3), (E5) with the risk term added),

.. math::

    \\lambda + P_i - \\rho x_i \\in \\partial\\big(g_i + \\iota_{[0, c_i]}\\big)(x_i)
    = [g_i'(x_i^-), g_i'(x_i^+)], \\qquad P_i = \\psi \\sum_{j \\ge i} w_j R_j ,

(the bound multipliers live in the infinite one-sided slopes at ``0`` and ``c_i``), primal
feasibility (``sum x = S`` or ``<= S``, ``0 <= x <= c``) and, under ``<=``,
``lambda <= 0`` with ``lambda (S - sum x) = 0``. Every bucket gives an interval of admissible
levels; their intersection is the *multiplier interval* (a single point unless ties make the
level non-unique).

The duality gap closes the argument: with ``nu_i = lambda + P_i``, weak duality gives the lower
bound

.. math::

    D = \\nu_1 S - \\sum_i \\varphi_i^*(\\nu_i) - \\frac{\\psi}{2}\\sum_{i<N} w_i R_i^2
        - [\\le] \\frac{\\max(\\nu_N, 0)^2}{2 \\psi w_N},
    \\qquad \\varphi_i(x) = g_i(x) + \\frac{\\rho}{2} x^2 + \\iota_{[0,c_i]}(x),

exact for every member of the family, so ``F(x) - D`` bounds the suboptimality of ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .._deprecated import renamed
from .._jit import njit
from ..errors import InvalidInputError
from .validate import share_unit_of, validate

if TYPE_CHECKING:
    from .curves import CostCurves
    from .objective import Objective
    from .validate import Order


@dataclass(frozen=True)
class KKTReport:
    """Relative KKT residuals of a schedule; ``ok`` when all are within ``tol``.

    Attributes
    ----------
    primal_residual : float
        Budget violation ``|sum x - S|`` (or the excess over ``S`` under ``<=``) over ``max(S, 1) (the largest capacity when S = 0)``.
    bound_violation : float
        Largest excursion outside ``[0, c_i]`` over ``max(S, 1)``.
    stationarity : float
        Largest distance of ``lambda`` from a bucket's admissible interval, over the price scale.
    complementarity : float
        ``|lambda| * slack`` over ``price scale * max(S, 1)`` (``<=`` budget; 0 otherwise).
    duality_gap : float
        ``(F(x) - D) / max(|F|, price scale * max(S, 1))``.
    multiplier : float
        The level ``lambda`` checked (the one given, else the best one from ``x``).
    multiplier_interval : tuple
        Every level that satisfies stationarity for this ``x`` (empty: ``lo > hi``).
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

    def __str__(self):
        verdict = "OK" if self.ok else "FAILED"
        lo, hi = self.multiplier_interval
        admissible = f"admissible [{lo:.8g}, {hi:.8g}]" if lo <= hi else "admissible: none (no level makes x stationary)"
        return (
            f"KKT certificate: {verdict} (max violation {self.max_violation:.2e}, tol {self.tol:.0e})\n"
            f"  primal residual   {self.primal_residual:.2e}\n"
            f"  bound violation   {self.bound_violation:.2e}\n"
            f"  stationarity      {self.stationarity:.2e}\n"
            f"  complementarity   {self.complementarity:.2e}\n"
            f"  duality gap       {self.duality_gap:.2e}  (F = {self.objective_value:.8g}, D = {self.dual_value:.8g})\n"
            f"  lambda            {self.multiplier:.8g}  {admissible}"
        )


@njit
def _bucket_bounds(slopes, widths, x, snap):
    """One pass over the segments at ``x``.

    Returns the subdifferential of ``g_i + indicator[0, c_i]`` (``[left_i, right_i]``, a
    breakpoint within ``snap`` shares counts as reached), ``g_i(x_i)`` and the largest real
    slope in absolute value.
    """
    n, k = slopes.shape
    left = np.full(n, -np.inf)
    right = np.full(n, np.inf)
    cost = np.zeros(n)
    steepest = 0.0
    for i in range(n):
        start = 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                slope = slopes[i, j]
                steepest = max(steepest, abs(slope))
                if start < x[i] - snap:
                    left[i] = max(left[i], slope)
                if start + width > x[i] + snap:
                    right[i] = min(right[i], slope)
                cost[i] += slope * min(max(x[i] - start, 0.0), width)
                start += width
    return left, right, cost, steepest


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


def _arrays(curves):
    return (np.ascontiguousarray(curves.slopes, dtype=float), np.ascontiguousarray(curves.widths, dtype=float))


def _admissible(slopes, widths, objective, x, remaining, snap):
    """Per-bucket intervals ``[lower_i, upper_i]`` of levels that make ``x_i`` stationary."""
    pressure = objective.psi * np.cumsum((objective.weight_vector(len(x)) * remaining)[::-1])[::-1]
    left, right, cost, steepest = _bucket_bounds(slopes, widths, x, float(snap))
    smooth = objective.rho * x - pressure
    return left + smooth, right + smooth, pressure, cost, steepest


def _intersect(lower, upper, slack, sense, snap):
    lo, hi = float(lower.max()), float(upper.min())
    if sense == "le":
        hi = min(hi, 0.0)
        if slack > snap:
            lo = max(lo, 0.0)
    return lo, hi


def multiplier_interval(curves: CostCurves, total: float, objective: Objective, x: ArrayLike, *, sense: str = "eq",
                        snap: float = 1e-9) -> tuple[float, float]:
    """The levels ``lambda`` that certify an (optimal) ``x``: the intersection above.

    ``snap`` is the distance in shares under which ``x_i`` counts as on a breakpoint.
    """
    x = np.asarray(x, dtype=float)
    remaining = total - np.cumsum(x)
    slopes, widths = _arrays(curves)
    lower, upper, _, _, _ = _admissible(slopes, widths, objective, x, remaining, snap)
    return _intersect(lower, upper, total - x.sum(), sense, snap)


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
        A claimed ``lambda`` (e.g. a solver's dual). Without it the best level is derived from
        ``x``: the middle of the admissible interval.
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


def certify(order: Order, x: ArrayLike, *, multiplier: float | None = None, tol: float = 1e-6) -> KKTReport:
    """:func:`check_kkt` for an :class:`~convexsched.optimize.validate.Order` already checked.

    Two compiled passes over the N x K segments: the subdifferentials and costs at ``x``, then
    the conjugates at ``nu = lambda + P``.
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
    capacity = curves.capacity
    x_in = np.clip(x, 0.0, capacity)
    remaining = total - np.cumsum(x_in)
    weights = objective.weight_vector(n)
    lower, upper, pressure, cost, steepest = _admissible(slopes, widths, objective, x_in, remaining,
                                                         tol * scale_shares)
    lo, hi = _intersect(lower, upper, total - x_in.sum(), sense, tol * scale_shares)
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

    price_scale = max(
        steepest,
        abs(level) if np.isfinite(level) else 0.0,
        objective.rho * scale_shares,
        float(np.abs(pressure).max(initial=0.0)),
        1e-12,
    )
    distance = np.maximum(lower - level, 0.0) + np.maximum(level - upper, 0.0)
    stationarity = float(np.nan_to_num(distance, posinf=np.inf).max()) / price_scale
    if sense == "le" and level > 0:
        stationarity = max(stationarity, level / price_scale)

    excess = x.sum() - total
    primal = abs(excess) if sense == "eq" else max(excess, 0.0)
    bounds = float(np.maximum(np.maximum(-x, x - capacity), 0.0).max(initial=0.0))
    complementarity = abs(level) * max(slack, 0.0) / (price_scale * scale_shares) if sense == "le" else 0.0

    value = float(cost.sum() + 0.5 * objective.rho * np.dot(x_in, x_in)
                  + 0.5 * objective.psi * np.dot(weights, remaining**2))
    nu = level + pressure
    dual = nu[0] * total - _conjugate_sum(slopes, widths, nu, float(objective.rho))
    dual -= 0.5 * objective.psi * np.dot(weights[:-1], remaining[:-1] ** 2)
    if sense == "le" and nu[-1] > 0:
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
