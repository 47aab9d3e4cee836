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

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._jit import inline, njit
from ..errors import InfeasibleError, InvalidInputError
from . import waterfill
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
    def build(
        cls,
        slopes: ArrayLike,
        widths: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        rho: float = 0.0,
        gamma: ArrayLike | None = None,
        cap: ArrayLike | None = None,
    ) -> WeightedBuckets:
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
        n = slopes.shape[0]
        weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
        gamma = np.zeros(n) if gamma is None else np.asarray(gamma, dtype=float).reshape(-1)
        cap = np.full(n, np.inf) if cap is None else np.asarray(cap, dtype=float).reshape(-1)
        for name, array in (("weights", weights), ("gamma", gamma), ("cap", cap)):
            if array.shape != (n,):
                raise InvalidInputError(f"{name} has shape {array.shape}; expected ({n},)")
        slopes, widths, weights, gamma, cap = (np.ascontiguousarray(a) for a in (slopes, widths, weights, gamma, cap))
        _check_arrays(slopes, widths, weights, gamma, cap, np.asarray(rho, dtype=float))
        truncated, tail_gamma = np.empty_like(widths), np.empty(n)
        depth, tail_cap, last_slope = np.empty(n), np.empty(n), np.empty(n)
        _prepare(slopes, widths, gamma, cap, truncated, tail_gamma, depth, tail_cap, last_slope)
        return cls(slopes, truncated, weights, tail_gamma, depth, tail_cap, last_slope, float(rho))

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


def _check_arrays(slopes, widths, weights, gamma, cap, rho):
    """The checks of (E12)'s data, whole arrays at once (one problem or a batch)."""
    if slopes.shape != widths.shape:
        raise InvalidInputError(f"slopes {slopes.shape} and widths {widths.shape} differ in shape")
    if not (np.isfinite(slopes).all() and np.isfinite(widths).all() and np.isfinite(weights).all() and np.isfinite(gamma).all()):
        raise InvalidInputError("slopes, widths, weights and gamma must be finite")
    if (widths < 0).any() or (weights < 0).any() or (gamma < 0).any() or np.isnan(cap).any() or (cap < 0).any():
        raise InvalidInputError("widths, weights, gamma and caps must be >= 0")
    if not (np.isfinite(rho).all() and (rho >= 0).all()):
        raise InvalidInputError(f"rho must be finite and >= 0, got {rho}")
    decreasing = np.diff(slopes, axis=-1) < 0
    if decreasing.any():
        *problem, bucket = (int(i) for i in np.argwhere(decreasing)[0][:-1])
        where = f"problem {problem[0]}, bucket {bucket}" if problem else f"bucket {bucket}"
        raise InvalidInputError(f"{where}'s slopes decrease: every curve must be convex")


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
    """Solve (E12) exactly (module docstring), in one compiled call.

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
    total = _check_budget(total)
    y = np.empty(buckets.n_buckets)
    level, value, tie, maximum, feasible = _solve_prepared(*_kernel_args(buckets), total, y)
    if not feasible:
        raise InfeasibleError(
            f"{total:.6g} shares exceed what the buckets can take; the maximum executable is {maximum:.6g}",
            max_executable=maximum,
        )
    return WeightedSolution(y, level, value, tie)


def weighted_kkt(buckets: WeightedBuckets, total: float, y: ArrayLike, multiplier: float, tol: float = 1e-6) -> KKTReport:
    """Certificate of (E12): feasibility, stationarity (E13) and the exact duality gap.

    The dual function is ``D(lambda) = lambda R - sum_j omega_j phi_j^*(lambda)`` with
    ``phi_j^*(lambda) = lambda y_j(lambda) - phi_j(y_j(lambda))``; ``F(y) - D(lambda) >= 0``
    bounds the suboptimality of ``y``. Stationarity compares ``lambda`` with the left and right
    derivatives of every ``phi_j`` at ``y_j`` (``-inf`` at 0, ``+inf`` at the cap; a point
    within ``tol R`` of a breakpoint counts as on it).

    Returns
    -------
    KKTReport
    """
    y = np.ascontiguousarray(y, dtype=float)
    n = buckets.n_buckets
    if y.shape != (n,) or not np.isfinite(y).all():
        raise InvalidInputError(f"y must be {n} finite numbers")
    out = np.empty(_N_CERTIFICATE)
    _certify(*_kernel_args(buckets), float(total), y, float(multiplier), float(tol), out)
    worst, primal, bounds, stationarity, gap, value, dual, lo, hi = out
    return KKTReport(
        ok=bool(worst <= tol),
        max_violation=float(worst),
        primal_residual=float(primal),
        bound_violation=float(bounds),
        stationarity=float(stationarity),
        complementarity=0.0,
        duality_gap=float(value - dual),
        relative_gap=float(gap),
        objective_value=float(value),
        dual_value=float(dual),
        multiplier=float(multiplier),
        multiplier_interval=(float(lo), float(hi)),
        tol=tol,
    )


@dataclass(frozen=True)
class WeightedBatch:
    """Solutions and certificates of a batch of (E12) problems (:func:`solve_weighted_batch`).

    Row ``b`` of every array belongs to problem ``b``; an infeasible problem (``feasible`` False)
    has every bucket at its cap in ``y``, NaN for its level, objective and certificate.

    Attributes
    ----------
    y : numpy.ndarray, shape (B, n)
    multiplier, objective_value, tie_fraction : numpy.ndarray, shape (B,)
        As in :class:`WeightedSolution`.
    maximum : numpy.ndarray, shape (B,)
        ``sum_j omega_j u_j``, the most the problem can take.
    feasible : numpy.ndarray of bool, shape (B,)
    kkt_ok : numpy.ndarray of bool, shape (B,)
    max_violation, duality_gap : numpy.ndarray, shape (B,)
        As in :class:`~convexsched.KKTReport` (:func:`weighted_kkt` of the same problem); the gap
        here is the relative one, ``KKTReport.relative_gap``.
    """

    y: np.ndarray
    multiplier: np.ndarray
    objective_value: np.ndarray
    tie_fraction: np.ndarray
    maximum: np.ndarray
    feasible: np.ndarray
    kkt_ok: np.ndarray
    max_violation: np.ndarray
    duality_gap: np.ndarray


def solve_weighted_batch(
    slopes: ArrayLike,
    widths: ArrayLike,
    weights: ArrayLike,
    totals: ArrayLike,
    *,
    rho: ArrayLike = 0.0,
    gamma: ArrayLike | None = None,
    cap: ArrayLike | None = None,
    tol: float = 1e-6,
    check: bool = True,
) -> WeightedBatch:
    """Solve and certify ``B`` problems (E12) of the same shape in one compiled call.

    Problem ``b`` is ``WeightedBuckets.build(slopes[b], widths[b], weights[b], rho=rho[b],
    gamma=gamma[b], cap=cap[b])`` with budget ``totals[b]``; its answer is bit for bit that of
    :func:`solve_weighted` and :func:`weighted_kkt` on that problem (the same compiled steps), but
    the batch is checked once and builds no Python object per problem. Problems with fewer
    buckets are padded with buckets of weight 0 and zero widths (they take nothing).

    Parameters
    ----------
    slopes, widths : array_like, shape (B, n, K)
    weights : array_like, shape (B, n)
    totals : array_like, shape (B,)
        Budgets ``R_b >= 0``.
    rho : float or array_like of shape (B,)
    gamma, cap : array_like, shape (B, n), optional
        Tail gradients (default none) and caps (default ``inf``).
    tol : float
        Tolerance of the certificates.
    check : bool
        Check the data (finite, nonnegative, convex curves: as :meth:`WeightedBuckets.build`).
        ``False`` is for a caller whose curves are checked already (the scenario's book walks):
        unchecked bad data gives meaningless answers, not an error.

    Returns
    -------
    WeightedBatch
        Infeasible problems are flagged, not raised: the others are still solved.
    """
    slopes = np.ascontiguousarray(slopes, dtype=float)
    widths = np.ascontiguousarray(widths, dtype=float)
    if slopes.ndim != 3:
        raise InvalidInputError(f"slopes must have shape (B, n, K), got {slopes.shape}")
    b, n, _ = slopes.shape
    weights, totals, rho = _batch_array(weights, (b, n)), _batch_array(totals, (b,)), _batch_array(rho, (b,))
    gamma = np.zeros((b, n)) if gamma is None else _batch_array(gamma, (b, n))
    cap = np.full((b, n), np.inf) if cap is None else _batch_array(cap, (b, n))
    if check:
        _check_arrays(slopes, widths, weights, gamma, cap, rho)
        if not (np.isfinite(totals).all() and (totals >= 0).all()):
            raise InvalidInputError("the budgets must be finite and >= 0")
    y, info = np.empty((b, n)), np.empty((b, _N_INFO))
    _solve_batch(slopes, widths, weights, gamma, cap, rho, totals, float(tol), y, info)
    feasible = info[:, 4] > 0
    return WeightedBatch(
        y=y,
        multiplier=info[:, 0],
        objective_value=info[:, 1],
        tie_fraction=info[:, 2],
        maximum=info[:, 3],
        feasible=feasible,
        kkt_ok=feasible & (info[:, 5] <= tol),
        max_violation=info[:, 5],
        duality_gap=info[:, 9],
    )


def _batch_array(value, shape):
    """``value`` broadcast to ``shape`` as a writable C array (one compiled signature)."""
    array = np.asarray(value, dtype=float)
    if array.shape == shape and array.flags.c_contiguous and array.flags.writeable:
        return array
    return np.array(np.broadcast_to(array, shape), order="C")


def _check_budget(total):
    total = float(total)
    if not np.isfinite(total) or total < 0:
        raise InvalidInputError(f"the budget must be finite and >= 0, got {total}")
    return total


def _kernel_args(buckets):
    return (buckets.slopes, buckets.widths, buckets.weights, buckets.gamma, buckets.depth, buckets.tail_cap,
            buckets.last_slope, buckets.rho)  # fmt: skip


# ---------------------------------------------------------------- compiled kernels
#
# One problem's steps, shared by the single-problem functions and the batch: the batch answer
# is the single answer bit for bit. The pure-numpy reference is tests/reference_weighted.py.

_N_CERTIFICATE = 9  # worst, primal, bounds, stationarity, gap, value, dual, lo, hi
_N_INFO = 5 + _N_CERTIFICATE  # level, objective, tie fraction, maximum, feasible, then the certificate


@njit
def _prepare(slopes, widths, gamma, cap, truncated, tail_gamma, depth, tail_cap, last_slope):
    """Caps and tails of one problem (:meth:`WeightedBuckets.build` after its checks)."""
    n, k = slopes.shape
    for j in range(n):
        total, last = 0.0, 0.0
        for q in range(k):
            total += widths[j, q]
            if widths[j, q] > 0:
                last = slopes[j, q]
        depth[j], last_slope[j] = total, last
        # A tail continues the book past D_j only where there is a book to continue.
        tail_gamma[j] = gamma[j] if total > 0 else 0.0
        end = 0.0
        for q in range(k):
            w = widths[j, q]
            end += w
            truncated[j, q] = min(max(min(end, cap[j]) - (end - w), 0.0), w)
        tail_cap[j] = max(cap[j] - total, 0.0) if tail_gamma[j] > 0 else 0.0


@inline
def _bucket_response(slopes, widths, gamma, depth, tail_cap, last_slope, rho, j, level, upper):
    """``y_j(lambda)`` of (E13); at a level equal to a slope (``rho = 0``) ``upper`` takes the segment."""
    # Slopes rise along the row, so the first segment left empty ends the walk (zero widths
    # take nothing either way).
    fill, start = 0.0, 0.0
    for q in range(slopes.shape[1]):
        w = widths[j, q]
        if rho > 0:
            ramp = (level - slopes[j, q]) / rho - start
            if ramp <= 0.0:
                break
            fill += min(ramp, w)
        elif slopes[j, q] < level or (upper and slopes[j, q] == level):
            fill += w
        else:
            break
        start += w
    if tail_cap[j] > 0:
        fill += min(max((level - (last_slope[j] + rho * depth[j])) / (rho + gamma[j]), 0.0), tail_cap[j])
    return fill


@inline
def _total(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, level, upper):
    """``S(lambda) = sum_j omega_j y_j(lambda)``."""
    total = 0.0
    for j in range(slopes.shape[0]):
        if weights[j] > 0:
            total += weights[j] * _bucket_response(slopes, widths, gamma, depth, tail_cap, last_slope, rho, j, level, upper)
    return total


@inline
def _bucket_value(slopes, widths, gamma, depth, last_slope, rho, j, y):
    """``phi_j(y)``: the book walk, the tail beyond ``D_j`` and the smoothing."""
    book = 0.0
    for q in range(slopes.shape[1]):
        book += widths[j, q]
    inside, start, value = min(y, book), 0.0, 0.0
    for q in range(slopes.shape[1]):
        w = widths[j, q]
        value += slopes[j, q] * min(max(inside - start, 0.0), w)
        start += w
    beyond = max(y - depth[j], 0.0)
    return value + beyond * last_slope[j] + 0.5 * gamma[j] * beyond * beyond + 0.5 * rho * y * y


@inline
def _value(slopes, widths, weights, gamma, depth, last_slope, rho, y):
    value = 0.0
    for j in range(slopes.shape[0]):
        if weights[j] > 0:
            value += weights[j] * _bucket_value(slopes, widths, gamma, depth, last_slope, rho, j, y[j])
    return value


@inline
def _capacity(widths, tail_cap, j):
    book = 0.0
    for q in range(widths.shape[1]):
        book += widths[j, q]
    return book + tail_cap[j]


@inline
def _collect_breakpoints(slopes, widths, gamma, depth, tail_cap, last_slope, rho, points):
    """Every level where some response changes slope or jumps, unsorted, into ``points``; returns the count."""
    n, k = slopes.shape
    m = 0
    for j in range(n):
        start = 0.0
        for q in range(k):
            w = widths[j, q]
            if w > 0:
                if rho > 0:
                    points[m], points[m + 1] = slopes[j, q] + rho * start, slopes[j, q] + rho * (start + w)
                    m += 2
                else:
                    points[m] = slopes[j, q]
                    m += 1
            start += w
        if tail_cap[j] > 0:
            begin = last_slope[j] + rho * depth[j]
            points[m] = begin
            m += 1
            end = begin + (rho + gamma[j]) * tail_cap[j]
            if np.isfinite(end):
                points[m] = end
                m += 1
    return m


@njit
def _breakpoints(slopes, widths, gamma, depth, tail_cap, last_slope, rho):
    """Every level where some response changes slope or jumps, sorted and unique."""
    n, k = slopes.shape
    points = np.empty(2 * n * k + 2 * n)
    m = _collect_breakpoints(slopes, widths, gamma, depth, tail_cap, last_slope, rho, points)
    points = np.sort(points[:m])
    unique = 0
    for i in range(m):
        if i == 0 or points[i] != points[unique - 1]:
            points[unique] = points[i]
            unique += 1
    return points[:unique]


@inline
def _fill(slopes, widths, gamma, depth, tail_cap, last_slope, rho, level, upper, y):
    for j in range(slopes.shape[0]):
        y[j] = _bucket_response(slopes, widths, gamma, depth, tail_cap, last_slope, rho, j, level, upper)


@njit
def _solve_prepared(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, total, y):
    """(E12) on prepared data; writes ``y``, returns ``(level, objective, tie, maximum, feasible)``.

    ``S`` is nondecreasing: bisect the breakpoints for the first whose upper total reaches
    ``R``; there either split a jump of ``S`` (tied slopes) at one fraction of every tied
    width, or interpolate the level on the linear piece before it. When ``S`` is a step
    function (``rho = 0``, no open tail: the capped scenario step) that breakpoint is found by
    weighted selection instead, without sorting, and checked as the bisection would.
    """
    n = slopes.shape[0]
    maximum = 0.0
    for j in range(n):
        if weights[j] > 0:
            maximum += weights[j] * _capacity(widths, tail_cap, j)
    if total > maximum * (1 + 1e-12):
        for j in range(n):
            y[j] = _capacity(widths, tail_cap, j)
        return np.nan, np.nan, np.nan, maximum, False
    if total > 0 and rho == 0 and _jumps_only(weights, tail_cap):
        level = _jump_level(slopes, widths, weights, total)
        if not np.isnan(level):
            value, tie, solved = _split_tie(
                slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, level, total, y, True
            )
            if solved:
                return level, value, tie, maximum, True
    if total > 0 and rho > 0:
        left, level = _ramp_bracket(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, total)
        if not np.isnan(level):
            return _finish_at(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, total, y, left, level,
                              maximum)  # fmt: skip
    points = _breakpoints(slopes, widths, gamma, depth, tail_cap, last_slope, rho)
    if total == 0 or len(points) == 0:
        y[:] = 0.0
        return (points[0] if len(points) else 0.0), 0.0, np.nan, maximum, True
    lo, hi = 0, len(points) - 1
    if _total(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, points[hi], True) < total:
        # Beyond every breakpoint only uncapped tails grow, linearly.
        level = _beyond(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, points[hi], total, y)
        return level, _value(slopes, widths, weights, gamma, depth, last_slope, rho, y), np.nan, maximum, True
    while lo < hi:
        mid = (lo + hi) // 2
        if _total(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, points[mid], True) >= total:
            hi = mid
        else:
            lo = mid + 1
    return _finish_at(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, total, y,
                      points[lo - 1] if lo > 0 else -np.inf, points[lo], maximum)  # fmt: skip


@njit
def _finish_at(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, total, y, left, level, maximum):
    """The answer at ``level``, the first breakpoint whose upper total reaches ``R``.

    ``left`` is the breakpoint before it: split the jump of ``S`` there, or interpolate on the
    piece before it.
    """
    value, tie, solved = _split_tie(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, level, total, y, False)
    if solved:
        return level, value, tie, maximum, True
    below = _total(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, level, False)
    # S is continuous and linear on (left, level]: interpolate the level.
    at_left = _total(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, left, True)
    level = left + (total - at_left) * (level - left) / (below - at_left)
    _fill(slopes, widths, gamma, depth, tail_cap, last_slope, rho, level, True, y)
    return level, _value(slopes, widths, weights, gamma, depth, last_slope, rho, y), np.nan, maximum, True


@inline
def _total_and_rate(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, level):
    """``S(lambda)`` and its right derivative for ``rho > 0`` (every response a sum of ramps)."""
    total, rate = 0.0, 0.0
    for j in range(slopes.shape[0]):
        if weights[j] <= 0:
            continue
        fill, start = 0.0, 0.0
        for q in range(slopes.shape[1]):
            w = widths[j, q]
            ramp = (level - slopes[j, q]) / rho - start
            if ramp <= 0.0:
                break
            if ramp < w:
                fill += ramp
                rate += weights[j] / rho
            else:
                fill += w
            start += w
        if tail_cap[j] > 0:
            into = (level - (last_slope[j] + rho * depth[j])) / (rho + gamma[j])
            if into > 0:
                if into < tail_cap[j]:
                    fill += into
                    rate += weights[j] / (rho + gamma[j])
                else:
                    fill += tail_cap[j]
        total += weights[j] * fill
    return total, rate


@njit
def _ramp_bracket(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, total):
    """For ``rho > 0``: the breakpoints ``(previous, first)`` the bisection would find, without sorting.

    A safeguarded Newton iteration on the piecewise-linear ``S`` lands on the piece that
    reaches ``R``, one scan of the breakpoints gives its ends, and both are checked with
    :func:`_total` as the bisection checks them. NaNs when that fails (the caller bisects).
    """
    n, k = slopes.shape
    points = np.empty(2 * n * k + 2 * n)
    m = _collect_breakpoints(slopes, widths, gamma, depth, tail_cap, last_slope, rho, points)
    if m == 0:
        return np.nan, np.nan
    low = np.inf
    for i in range(m):
        low = min(low, points[i])
    a, high = low, np.inf
    at_a, rate = _total_and_rate(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, a)
    at_high = np.nan
    for _ in range(40):
        if at_a >= total:
            break
        if rate > 0:
            level = a + (total - at_a) / rate
            if level >= high:  # past a point known to be too far: interpolate instead
                level = a + (total - at_a) * (high - a) / (at_high - at_a)
        else:
            level = np.inf  # S is flat here: go to the next breakpoint
            for i in range(m):
                if a < points[i] < level:
                    level = points[i]
            if not np.isfinite(level):
                return np.nan, np.nan
        if not a < level:
            break
        value, slope = _total_and_rate(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, level)
        if value < total:
            a, at_a, rate = level, value, slope
        else:
            high, at_high = level, value
            if value == total or (high - a) <= 1e-15 * max(abs(a), abs(high), 1e-300):
                break
            # Newton overshot: step from a again, now bounded by high.
    target = a if at_a >= total else min(high, np.inf)
    if not np.isfinite(target):
        return np.nan, np.nan
    for _ in range(2):
        first, previous = np.inf, -np.inf
        for i in range(m):
            if points[i] >= target:
                first = min(first, points[i])
            else:
                previous = max(previous, points[i])
        if not np.isfinite(first):
            return np.nan, np.nan
        if _total(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, first, True) < total:
            return np.nan, np.nan
        if previous == -np.inf or _total(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, previous,
                                         True) < total:  # fmt: skip
            return previous, first
        target = previous  # the piece ends at an earlier breakpoint: step back once
    return np.nan, np.nan


@njit
def _jumps_only(weights, tail_cap):
    """Whether ``S`` is a pure step function: no ramps (``rho = 0``) and no open tails."""
    for j in range(len(weights)):
        if weights[j] > 0 and tail_cap[j] > 0:
            return False
    return True


@njit
def _jump_level(slopes, widths, weights, total):
    """The smallest slope whose upper total reaches ``R`` (S a step function).

    In expected linear time (weighted quickselect, no sort); NaN when rounding leaves ``R`` out
    of reach.
    """
    n, k = slopes.shape
    values, amounts = np.empty(n * k), np.empty(n * k)
    m, reach = 0, 0.0
    for j in range(n):
        if weights[j] > 0:
            for q in range(k):
                if widths[j, q] > 0:
                    values[m], amounts[m] = slopes[j, q], weights[j] * widths[j, q]
                    reach += amounts[m]
                    m += 1
    if m == 0 or reach < total:
        return np.nan
    # Through the module: its global is the compiled kernel once numba is loaded (_jit).
    return waterfill.weighted_select(values[:m], amounts[:m], total)[0]


@njit
def _split_tie(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, level, total, y, selected):
    """Split the jump of ``S`` over ``R`` at the breakpoint ``level``.

    ``y`` gives every segment tied at the level the same fraction of its width (the centre of
    the optimal face).

    Returns ``(objective, fraction, done)``. After the bisection (``selected`` False) the level
    is the first breakpoint with ``S_upper >= R`` and the split applies when
    ``S_lower(level) <= R``; a ``selected`` level is accepted only if ``S_lower < R <= S_upper``
    there, the bisection's own test, with the sums of :func:`_total` in its order: a level found
    by selection gives the bisection's answer bit for bit. ``done`` False leaves ``y`` scratch.
    """
    n = slopes.shape[0]
    low, below, upper, span = np.empty(n), 0.0, 0.0, 0.0
    for j in range(n):
        low[j] = _bucket_response(slopes, widths, gamma, depth, tail_cap, last_slope, rho, j, level, False)
        high = _bucket_response(slopes, widths, gamma, depth, tail_cap, last_slope, rho, j, level, True)
        y[j] = high - low[j]
        if weights[j] > 0:
            below += weights[j] * low[j]
            upper += weights[j] * high
            span += weights[j] * y[j]
    if not (below < total <= upper if selected else below <= total):
        return np.nan, np.nan, False
    fraction = (total - below) / span if span > 0 else 0.0
    for j in range(n):
        y[j] = low[j] + fraction * y[j]
    return _value(slopes, widths, weights, gamma, depth, last_slope, rho, y), (fraction if span > 0 else np.nan), True


@inline
def _beyond(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, last, total, y):
    rate = 0.0
    for j in range(slopes.shape[0]):
        if weights[j] > 0 and np.isinf(tail_cap[j]):
            rate += weights[j] / (rho + gamma[j])
    if rate == 0:
        # R is the whole capacity (up to rounding of the ramps' ends): every bucket is full.
        for j in range(slopes.shape[0]):
            y[j] = _capacity(widths, tail_cap, j)
        return last
    base = _total(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, last, True)
    level = last + (total - base) / rate
    _fill(slopes, widths, gamma, depth, tail_cap, last_slope, rho, level, True, y)
    return level


@njit
def _certify(slopes, widths, weights, gamma, depth, tail_cap, last_slope, rho, total, y, multiplier, tol, out):
    """The certificate of :func:`weighted_kkt` into ``out`` (``_N_CERTIFICATE`` numbers)."""
    n, k = slopes.shape
    scale = max(total, 1.0)
    snap = tol * scale
    price = max(abs(multiplier), 1e-12)
    for j in range(n):
        for q in range(k):
            if widths[j, q] > 0:
                price = max(price, abs(slopes[j, q]))
    stationarity, lo, hi, sold, bounds, value, conjugates = 0.0, -np.inf, np.inf, 0.0, 0.0, 0.0, 0.0
    for j in range(n):
        left, right = _slope_bounds(slopes, widths, gamma, depth, tail_cap, last_slope, j, y[j], snap)
        left, right = left + rho * y[j], right + rho * y[j]
        capacity = _capacity(widths, tail_cap, j)
        bounds = max(bounds, -y[j], y[j] - capacity)
        if weights[j] > 0:
            stationarity = max(stationarity, left - multiplier, multiplier - right)
            lo, hi = max(lo, left), min(hi, right)
            sold += weights[j] * y[j]
            value += weights[j] * _bucket_value(slopes, widths, gamma, depth, last_slope, rho, j, min(max(y[j], 0.0), capacity))
            response = _bucket_response(slopes, widths, gamma, depth, tail_cap, last_slope, rho, j, multiplier, True)
            conjugates += weights[j] * (
                multiplier * response - _bucket_value(slopes, widths, gamma, depth, last_slope, rho, j, response)
            )
    primal = abs(sold - total) / scale
    dual = multiplier * total - conjugates
    gap = (value - dual) / max(abs(value), price * scale)
    worst = max(primal, max(bounds, 0.0) / scale, stationarity / price, max(gap, 0.0))
    out[0], out[1], out[2], out[3], out[4] = worst, primal, max(bounds, 0.0) / scale, stationarity / price, gap
    out[5], out[6], out[7], out[8] = value, dual, lo, hi


@inline
def _slope_bounds(slopes, widths, gamma, depth, tail_cap, last_slope, j, y, snap):
    """Left and right derivatives of ``g_j`` plus its tail at ``y`` (``-inf`` at 0, ``+inf`` at the cap)."""
    book = 0.0
    for q in range(slopes.shape[1]):
        book += widths[j, q]
    inside = min(y, book)
    # Segments strictly containing y (up to snap) give both bounds; at a breakpoint the left
    # one comes from the segment ending there and the right one from the segment starting there.
    last_left, first_right, start = -np.inf, np.inf, 0.0
    for q in range(slopes.shape[1]):
        w = widths[j, q]
        if w > 0:
            if start < inside - snap:
                last_left = max(last_left, slopes[j, q])
            if start + w > inside + snap:
                first_right = min(first_right, slopes[j, q])
        start += w
    tail_slope = last_slope[j] + gamma[j] * max(y - depth[j], 0.0)
    has_tail = tail_cap[j] > 0
    in_tail = has_tail and y > book + snap
    room = has_tail and y < book + tail_cap[j] - snap
    left = tail_slope if in_tail else last_left
    if in_tail and room:
        right = tail_slope
    elif first_right == np.inf:  # at the end of the book
        right = tail_slope if room else np.inf
    else:
        right = first_right
    if y <= snap:
        left = -np.inf
    return left, right


@njit
def _solve_batch(slopes, widths, weights, gamma, cap, rho, totals, tol, y, info):
    """:func:`solve_weighted_batch`'s loop: prepare, solve and certify every problem."""
    n, k = slopes.shape[1], slopes.shape[2]
    truncated, tail_gamma = np.empty((n, k)), np.empty(n)
    depth, tail_cap, last_slope = np.empty(n), np.empty(n), np.empty(n)
    for b in range(slopes.shape[0]):
        _prepare(slopes[b], widths[b], gamma[b], cap[b], truncated, tail_gamma, depth, tail_cap, last_slope)
        level, value, tie, maximum, feasible = _solve_prepared(
            slopes[b], truncated, weights[b], tail_gamma, depth, tail_cap, last_slope, rho[b], totals[b], y[b]
        )
        info[b, 0], info[b, 1], info[b, 2], info[b, 3], info[b, 4] = level, value, tie, maximum, 1.0 if feasible else 0.0
        if feasible:
            _certify(slopes[b], truncated, weights[b], tail_gamma, depth, tail_cap, last_slope, rho[b], totals[b], y[b],
                     level, tol, info[b, 5:])  # fmt: skip
        else:
            info[b, 5:] = np.nan


@dataclass(frozen=True)
class WeightedProblem:
    """Problem (E12) as a cvxpy problem, scaled, with what reads its solution in user units.

    Attributes
    ----------
    problem : cvxpy.Problem
        Solved in scaled units (shares / ``share_unit``, cost / ``cost_unit``).
    y : cvxpy.Expression
        Per-bucket amounts in shares.
    budget : cvxpy.Constraint
        ``sum_j omega_j y_j == R`` (scaled).
    share_unit, cost_unit : float
        The scales.
    """

    problem: Any
    y: Any
    budget: Any
    share_unit: float
    cost_unit: float

    @property
    def multiplier(self) -> float:
        """``lambda`` of (E12) in currency per share, once solved: the budget's dual, unscaled and sign-fixed."""
        return -float(self.budget.dual_value) * self.cost_unit / self.share_unit

    @property
    def cost(self) -> float:
        """The optimal objective in currency, once solved."""
        return float(self.problem.value) * self.cost_unit

    def __iter__(self):
        # The 0.2 return value was the tuple (problem, y, budget, (share_unit, cost_unit)).
        warnings.warn("unpacking build_weighted_problem(...) is deprecated; use its attributes "
                      "(.problem, .y, .budget, .multiplier) (removed in 0.4)", FutureWarning, stacklevel=2)  # fmt: skip
        return iter((self.problem, self.y, self.budget, (self.share_unit, self.cost_unit)))


def build_weighted_problem(buckets: WeightedBuckets, total: float, formulation: str = "segment") -> WeightedProblem:
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
    WeightedProblem
        The cvxpy problem; after ``.problem.solve()``, ``.y.value`` (shares), ``.multiplier``
        (``lambda``, currency per share) and ``.cost`` (currency) read it in user units.
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
    return WeightedProblem(problem, y * share_unit, budget, share_unit, cost_unit)
