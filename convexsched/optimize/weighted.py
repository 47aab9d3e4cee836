"""Exact water-filling over weighted buckets: the scenario step and the hindsight bound.

The problem (E12) shared by the scenario receding horizon (:mod:`convexsched.execution.scenario`) and the
hindsight optimum (:mod:`convexsched.execution.hindsight`) is

.. math::

    \\min_{y}\\; \\sum_j \\omega_j \\Big[ g_j(y_j) + \\frac{\\rho}{2} y_j^2
        + \\frac{\\gamma_j}{2} (y_j - D_j)_+^2 \\Big]
    \\quad\\text{s.t.}\\quad \\sum_j \\omega_j y_j = R, \\qquad 0 \\le y_j \\le u_j ,
    \\qquad (E12)

where ``g_j`` is convex piecewise linear with displayed depth ``D_j`` (its capacity), the
optional *tail* ``gamma_j > 0`` continues the last slope beyond ``D_j`` with the book walk's
linear gradient (:mod:`convexsched.data.slippage`, ``extrapolate="linear"``), and ``u_j`` is a cap
(``D_j`` without a tail, possibly ``inf`` with one). A weight ``omega_j`` is the number of
buckets that bucket ``j`` stands for: ``omega_j = 1`` for the book that is visible now, and
``m / P`` for each of the ``P`` pool curves that represent ``m`` future buckets.

Stationarity (E13) is the equal-marginal-cost rule (E3), unchanged by the weights:

.. math::

    \\lambda \\in \\partial\\big(g_j + \\tfrac{\\rho}{2} y^2 + \\tfrac{\\gamma_j}{2}(y - D_j)_+^2
        + \\iota_{[0, u_j]}\\big)(y_j) \\quad \\text{for every } j, \\qquad (E13)

so each bucket's response ``y_j(lambda)`` is a staircase (``rho = 0``) or a ramp
(``rho > 0``, or in the tail), and ``S(lambda) = sum_j omega_j y_j(lambda)`` is piecewise
linear between the *breakpoints* of the responses. The solver evaluates ``S`` at breakpoints
by bisection (``O(M log M)`` for ``M`` segments), then either interpolates linearly inside the
bracketing interval (exact: ``S`` is linear there) or, at a jump of ``S`` (``rho = 0``, tied
slopes), gives every tied segment the same fraction ``f`` of its width. That is the centre of
the optimal face: tied buckets trade at the same pace, none is favoured by its position.

Because ``omega_j y_j`` is what bucket ``j`` contributes, (E12) with ``z_j = omega_j y_j`` is an
ordinary (A)/(B) problem on curves whose widths are scaled by ``omega_j`` (and smoothing
``rho / omega_j``): the weighted sum is exactly the "pool curve weighted by remaining buckets
over pool size" of the scenario step. :func:`build_weighted_problem` states (E12) as an explicit
cvxpy problem in both formulations, and :func:`weighted_kkt` certifies any ``y``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InfeasibleError, InvalidInputError
from .kkt import KKTReport


@dataclass(frozen=True)
class WeightedBuckets:
    """The data of problem (E12), validated and with caps applied.

    Attributes
    ----------
    slopes, widths : numpy.ndarray, shape (n, K)
        Nondecreasing slopes and (cap-truncated) widths of each ``g_j``.
    weights : numpy.ndarray, shape (n,)
        ``omega_j >= 0``.
    gamma : numpy.ndarray, shape (n,)
        Tail gradient beyond the displayed depth (0: no tail).
    depth : numpy.ndarray, shape (n,)
        Displayed depth ``D_j`` (sum of the untruncated widths).
    tail_cap : numpy.ndarray, shape (n,)
        Largest tail fill ``u_j - D_j`` (0 without a tail or when the cap is inside the book).
    rho : float
    """

    slopes: np.ndarray
    widths: np.ndarray
    weights: np.ndarray
    gamma: np.ndarray
    depth: np.ndarray
    tail_cap: np.ndarray
    last_slope: np.ndarray
    rho: float

    @classmethod
    def build(cls, slopes: ArrayLike, widths: ArrayLike, weights: ArrayLike | None = None, *, rho: float = 0.0,
              gamma: ArrayLike | None = None, cap: ArrayLike | None = None) -> WeightedBuckets:
        """Validate and truncate.

        Parameters
        ----------
        slopes, widths : array_like, shape (n, K)
        weights : array_like, shape (n,), optional
            Default 1.
        rho : float
            Smoothing ``rho >= 0``.
        gamma : array_like, shape (n,), optional
            Tail gradients (> 0 for a tail, 0 for none). Default: no tails.
        cap : array_like, shape (n,), optional
            Per-bucket cap ``u_j >= 0`` (``inf``: none). Default: none.
        """
        slopes = np.atleast_2d(np.asarray(slopes, dtype=float))
        widths = np.atleast_2d(np.asarray(widths, dtype=float))
        if slopes.shape != widths.shape:
            raise InvalidInputError(f"slopes {slopes.shape} and widths {widths.shape} differ in shape")
        n = slopes.shape[0]
        weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
        gamma = np.zeros(n) if gamma is None else np.asarray(gamma, dtype=float).reshape(-1)
        cap = np.full(n, np.inf) if cap is None else np.asarray(cap, dtype=float).reshape(-1)
        for name, array in (("weights", weights), ("gamma", gamma), ("cap", cap)):
            if array.shape != (n,):
                raise InvalidInputError(f"{name} has shape {array.shape}; expected ({n},)")
        if not (np.isfinite(slopes).all() and np.isfinite(widths).all() and np.isfinite(weights).all()
                and np.isfinite(gamma).all()):
            raise InvalidInputError("slopes, widths, weights and gamma must be finite")
        if (widths < 0).any() or (weights < 0).any() or (gamma < 0).any() or np.isnan(cap).any() or (cap < 0).any():
            raise InvalidInputError("widths, weights, gamma and caps must be >= 0")
        if not np.isfinite(rho) or rho < 0:
            raise InvalidInputError(f"rho must be finite and >= 0, got {rho}")
        if (np.diff(slopes, axis=1) < 0).any():
            i = int(np.argwhere(np.diff(slopes, axis=1) < 0)[0, 0])
            raise InvalidInputError(f"bucket {i}'s slopes decrease: every curve must be convex")
        depth = widths.sum(axis=1)
        last_slope = _last_real(slopes, widths > 0)
        # A tail continues the book past D_j only where there is a book to continue.
        gamma = np.where(depth > 0, gamma, 0.0)
        ends = np.cumsum(widths, axis=1)
        truncated = np.clip(np.minimum(ends, cap[:, None]) - (ends - widths), 0.0, widths)
        tail_cap = np.where(gamma > 0, np.maximum(cap - depth, 0.0), 0.0)
        return cls(slopes, truncated, weights, gamma, depth, tail_cap, last_slope, float(rho))

    @property
    def n_buckets(self) -> int:
        return self.slopes.shape[0]

    @property
    def capacity(self) -> np.ndarray:
        """``u_j``: the most bucket ``j`` can take (``inf`` with an uncapped tail)."""
        return self.widths.sum(axis=1) + self.tail_cap

    def response(self, level: float, upper: bool = False) -> np.ndarray:
        """``y_j(lambda)``: per-bucket minimizers of ``phi_j(y) - lambda y`` (E13).

        With ``rho = 0`` a level equal to a slope leaves that segment anywhere in
        ``[0, w]``: ``upper=False`` takes none of it, ``upper=True`` all of it.
        """
        fills = _segment_fills(self.slopes, self.widths, self.rho, level, upper)
        return fills.sum(axis=1) + self._tail_fill(level)

    def _tail_fill(self, level):
        start = self._tail_start()
        curvature = self.rho + self.gamma
        with np.errstate(divide="ignore", invalid="ignore"):
            fill = np.where(self.tail_cap > 0, (level - start) / curvature, 0.0)
        return np.clip(fill, 0.0, self.tail_cap)

    def _tail_start(self):
        return self.last_slope + self.rho * self.depth

    def total(self, level: float, upper: bool = False) -> float:
        """``S(lambda) = sum_j omega_j y_j(lambda)``."""
        return float(self.weights @ self.response(level, upper))

    def breakpoints(self) -> np.ndarray:
        """Every level where some response changes slope or jumps, sorted and unique."""
        real = self.widths > 0
        if self.rho > 0:
            ends = np.cumsum(self.widths, axis=1)
            points = [(self.slopes + self.rho * (ends - self.widths))[real], (self.slopes + self.rho * ends)[real]]
        else:
            points = [self.slopes[real]]
        tails = self.tail_cap > 0
        start = self._tail_start()[tails]
        points += [start, (start + (self.rho + self.gamma[tails]) * self.tail_cap[tails])]
        values = np.concatenate(points)
        return np.unique(values[np.isfinite(values)])

    def value(self, y: ArrayLike) -> float:
        """``sum_j omega_j phi_j(y_j)``, the objective of (E12) (``y`` within the caps)."""
        return float(self.weights @ self.bucket_values(y))

    def bucket_values(self, y: ArrayLike) -> np.ndarray:
        """``phi_j(y_j)`` without the weights."""
        y = np.asarray(y, dtype=float)
        inside = np.minimum(y, self.widths.sum(axis=1))
        starts = np.cumsum(self.widths, axis=1) - self.widths
        fills = np.clip(inside[:, None] - starts, 0.0, self.widths)
        beyond = np.maximum(y - self.depth, 0.0)
        return (self.slopes * fills).sum(axis=1) + beyond * self.last_slope + 0.5 * self.gamma * beyond**2 + 0.5 * self.rho * y**2


def _last_real(slopes, real):
    """Slope of the last segment flagged in ``real`` in each row (0 for rows with none)."""
    k = slopes.shape[1]
    last = k - 1 - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), slopes[np.arange(len(slopes)), last], 0.0)


def _segment_fills(slopes, widths, rho, level, upper):
    if rho > 0:
        starts = np.cumsum(widths, axis=1) - widths
        return np.clip((level - slopes) / rho - starts, 0.0, widths)
    below = slopes <= level if upper else slopes < level
    return np.where(below, widths, 0.0)


@dataclass(frozen=True)
class WeightedSolution:
    """Solution of (E12).

    Attributes
    ----------
    y : numpy.ndarray
        Per-bucket amounts (shares per represented bucket); ``omega_j y_j`` is bucket ``j``'s share
        of the budget.
    multiplier : float
        The water level ``lambda``.
    objective_value : float
    tie_fraction : float
        At a jump of ``S`` (tied slopes), the common fraction of the tied width used (else NaN).
    """

    y: np.ndarray
    multiplier: float
    objective_value: float
    tie_fraction: float


def solve_weighted(buckets: WeightedBuckets, total: float) -> WeightedSolution:
    """Solve (E12) exactly (module docstring).

    Parameters
    ----------
    buckets : WeightedBuckets
    total : float
        ``R >= 0``.

    Returns
    -------
    WeightedSolution

    Raises
    ------
    InfeasibleError
        ``R`` above ``sum_j omega_j u_j``; the message names that maximum.
    """
    total = float(total)
    if not np.isfinite(total) or total < 0:
        raise InvalidInputError(f"the budget must be finite and >= 0, got {total}")
    maximum = float(buckets.weights @ buckets.capacity)
    if total > maximum * (1 + 1e-12):
        raise InfeasibleError(
            f"{total:.6g} shares exceed what the buckets can take; the maximum executable is {maximum:.6g}",
            max_executable=maximum,
        )
    points = buckets.breakpoints()
    if total == 0 or len(points) == 0:
        level = float(points[0]) if len(points) else 0.0
        y = np.zeros(buckets.n_buckets)
        return WeightedSolution(y, level, 0.0, np.nan)
    # First breakpoint whose upper total reaches the budget (S is nondecreasing).
    lo, hi = 0, len(points) - 1
    if buckets.total(points[hi], upper=True) < total:
        # Beyond every breakpoint only uncapped tails grow, linearly.
        y, level = _beyond(buckets, points[hi], total)
        return WeightedSolution(y, level, buckets.value(y), np.nan)
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
        return WeightedSolution(y, level, buckets.value(y), fraction if span > 0 else np.nan)
    # S is continuous and linear on (points[lo-1], points[lo]]: interpolate the level.
    left = float(points[lo - 1])
    at_left = buckets.total(left, upper=True)
    level = left + (total - at_left) * (level - left) / (below - at_left)
    y = buckets.response(level, upper=True)
    return WeightedSolution(y, level, buckets.value(y), np.nan)


def _beyond(buckets, last, total):
    base = buckets.response(last, upper=True)
    open_tail = (buckets.tail_cap > 0) & np.isinf(buckets.tail_cap)
    rate = float(buckets.weights[open_tail] @ (1.0 / (buckets.rho + buckets.gamma[open_tail])))
    if rate == 0:
        # R is the whole capacity (up to rounding of the ramps' ends): every bucket is full.
        return buckets.capacity.copy(), float(last)
    level = float(last) + (total - float(buckets.weights @ base)) / rate
    return buckets.response(level, upper=True), level


def weighted_kkt(buckets: WeightedBuckets, total: float, y: ArrayLike, multiplier: float, tol: float = 1e-6) -> KKTReport:
    """Certificate of (E12): feasibility, stationarity (E13) and the exact duality gap.

    The dual function is ``D(lambda) = lambda R - sum_j omega_j phi_j^*(lambda)`` with
    ``phi_j^*(lambda) = lambda y_j(lambda) - phi_j(y_j(lambda))``; ``F(y) - D(lambda) >= 0``
    bounds the suboptimality of ``y``.

    Returns
    -------
    KKTReport
    """
    y = np.asarray(y, dtype=float)
    n = buckets.n_buckets
    if y.shape != (n,) or not np.isfinite(y).all():
        raise InvalidInputError(f"y must be {n} finite numbers")
    scale_shares = max(float(total), 1.0)
    capacity = buckets.capacity
    price_scale = max(float(np.abs(buckets.slopes[buckets.widths > 0]).max(initial=0.0)), abs(multiplier), 1e-12)
    snap = tol * scale_shares
    left, right = _slope_bounds(buckets, y, snap)
    used = buckets.weights > 0
    stationarity = float(np.maximum(np.maximum(left - multiplier, multiplier - right), 0.0)[used].max(initial=0.0))
    lo, hi = float(left[used].max(initial=-np.inf)), float(right[used].min(initial=np.inf))
    primal = abs(float(buckets.weights @ y) - total) / scale_shares
    bounds = float(np.maximum(np.maximum(-y, y - capacity), 0.0).max(initial=0.0)) / scale_shares
    value = buckets.value(np.clip(y, 0.0, capacity))
    response = buckets.response(multiplier, upper=True)
    dual = multiplier * total - float(buckets.weights @ (multiplier * response - buckets.bucket_values(response)))
    gap = (value - dual) / max(abs(value), price_scale * scale_shares)
    violations = (primal, bounds, stationarity / price_scale, max(gap, 0.0))
    worst = float(max(violations))
    return KKTReport(
        ok=bool(worst <= tol), max_violation=worst, primal_residual=primal, bound_violation=bounds,
        stationarity=stationarity / price_scale, complementarity=0.0, duality_gap=float(gap),
        objective_value=value, dual_value=dual, multiplier=float(multiplier), multiplier_interval=(lo, hi), tol=tol,
    )


def _slope_bounds(buckets, y, snap):
    """Left and right derivatives of ``phi_j`` at ``y_j`` (``-inf`` at 0, ``+inf`` at the cap)."""
    widths = buckets.widths
    ends = np.cumsum(widths, axis=1)
    starts = ends - widths
    real = widths > 0
    book = widths.sum(axis=1)
    inside = np.minimum(y, book)
    # Segments strictly containing y (up to snap) give both bounds; at a breakpoint the left
    # one comes from the segment ending there and the right one from the segment starting there.
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


def build_weighted_problem(buckets: WeightedBuckets, total: float, formulation: str = "segment") -> tuple[Any, Any, Any, tuple[float, float]]:
    """Problem (E12) as an explicit cvxpy problem.

    Parameters
    ----------
    buckets : WeightedBuckets
    total : float
    formulation : {"segment", "epigraph"}
        ``"segment"``: fills ``0 <= f_jk <= w_jk`` with ``y_j = sum_k f_jk``;
        ``"epigraph"``: ``t_j >= g_j(b_{k-1}) + s_k (y_j - b_{k-1})`` for every piece,
        ``0 <= y_j``.

    Returns
    -------
    problem : cvxpy.Problem
    y : cvxpy.Expression
        Per-bucket amounts in shares.
    budget : cvxpy.Constraint
        ``sum_j omega_j y_j == R``; its dual times ``-cost_unit / share_unit`` is ``lambda``.
    units : tuple of float
        ``(share_unit, cost_unit)`` used to scale the problem.
    """
    import cvxpy as cp

    if formulation not in ("segment", "epigraph"):
        raise InvalidInputError(f"formulation must be 'segment' or 'epigraph', got {formulation!r}")
    share_unit = max(float(total), 1.0)
    real = buckets.widths > 0
    cost_unit = share_unit * max(float(np.median(np.abs(buckets.slopes[real]))) if real.any() else 1.0, 1e-12)
    n, k = buckets.slopes.shape
    slopes = buckets.slopes * share_unit / cost_unit
    widths = buckets.widths / share_unit
    omega = buckets.weights
    constraints = []
    if formulation == "segment":
        fills = cp.Variable((n, k), nonneg=True)
        inside = cp.sum(fills, axis=1)
        constraints.append(fills <= widths)
        book_cost = cp.sum(cp.multiply(slopes, fills), axis=1)
    else:
        # One affine piece per segment, each a supporting line of g_j on [0, capacity].
        inside = cp.Variable(n, nonneg=True)
        book_cost = cp.Variable(n)
        ends = np.cumsum(widths, axis=1)
        starts = ends - widths
        base = np.cumsum(slopes * widths, axis=1) - slopes * widths
        constraints.append(inside <= ends[:, -1])
        constraints += [book_cost >= base[:, j] + cp.multiply(slopes[:, j], inside - starts[:, j]) for j in range(k)]
    # Beyond the displayed depth the last slope continues and the tail's gradient adds on;
    # g's slopes never exceed the last one, so the book fills before the tail does.
    beyond = cp.Variable(n, nonneg=True)
    capped = np.flatnonzero(np.isfinite(buckets.tail_cap))
    if len(capped):
        constraints.append(beyond[capped] <= buckets.tail_cap[capped] / share_unit)
    y = inside + beyond
    last = buckets.last_slope * share_unit / cost_unit
    tail_cost = cp.multiply(last, beyond) + cp.multiply(buckets.gamma * share_unit**2 / cost_unit / 2, cp.square(beyond))
    smooth = (buckets.rho * share_unit**2 / cost_unit / 2) * cp.square(y)
    budget = omega @ y == float(total) / share_unit
    objective = omega @ (book_cost + tail_cost + smooth)
    problem = cp.Problem(cp.Minimize(objective), constraints + [budget])
    return problem, y * share_unit, budget, (share_unit, cost_unit)
