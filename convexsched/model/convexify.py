"""Convexification: from noisy predicted costs on a size grid to convex :class:`CostCurves`.

The oracle predicts ``g_hat_i(x_u)`` on a grid ``0 = x_0 < x_1 < ... < x_{G-1}`` (the input of
the water-filling (E7)). The rule needs each ``g_i`` convex and nondecreasing with
``g_i(0) = 0``; predictions are none of these exactly. Every method here returns values
``g~_iu`` with

.. math::

    \\tilde g_{i0} = 0, \\qquad
    0 \\le \\tilde s_{i1} \\le \\tilde s_{i2} \\le \\dots, \\qquad
    \\tilde s_{iu} = \\frac{\\tilde g_{iu} - \\tilde g_{i,u-1}}{x_u - x_{u-1}},

(E19), and a :class:`ConvexifyReport` of how far ``g~`` moved from ``g_hat``.

Methods
-------
``"slopes-isotonic"`` (default)
    Pool-adjacent-violators (PAVA) on the forward-difference slopes ``s_u``, weighted by the
    segment widths ``w_u = x_u - x_{u-1}``:
    ``min sum_u w_u (s~_u - s_u)^2  s.t.  s~ nondecreasing``, then ``s~ <- max(s~, 0)``.
    Nondecreasing slopes *are* convexity, so the output is convex by construction. Clipping the
    unbounded isotonic fit is the exact bounded fit (the same fact ``sklearn.isotonic`` uses for
    ``y_min``). By the cumulative-sum-diagram theorem (Barlow, Bartholomew, Bremner & Brunk 1972)
    the width-weighted isotonic slopes are the slopes of the greatest convex minorant of the points
    ``(x_u, g_hat_u)``, so this method and ``"hull"`` give the same curve, computed by two
    independent algorithms (the tests check they agree).
``"isotonic"``
    The classic isotonic (PAVA) projection on ``g(x)``: PAVA on the values,
    ``min sum_u (g~_u - g_hat_u)^2  s.t.  g~ nondecreasing, g~ >= 0``. That makes ``g`` monotone
    but **not convex**; to still return convex curves the monotone fit is then replaced by its
    greatest convex minorant. The report measures the deviation of that final curve from
    ``g_hat``.
``"convex-regression"``
    Convex regression, plus monotonicity: the least-squares projection
    ``min sum_u (g~_u - g_hat_u)^2  s.t.  g~_0 = 0, s~_1 >= 0, Delta^2 g~ >= 0``. Writing
    ``g~(x) = sum_k d_k (x - x_k)_+`` with kinks ``d_0 = s~_1`` and ``d_k = s~_{k+1} - s~_k``
    turns the constraints into ``d >= 0``: a nonnegative least-squares problem
    ``min ||A d - g_hat||^2, d >= 0`` with ``A_uk = (x_u - x_k)_+``, solved exactly by the
    Lawson-Hanson active-set method (:func:`scipy.optimize.nnls`) on a grid scaled to [0, 1].
    :func:`convex_regression_cvxpy` is the same problem as a per-bucket cvxpy loop, the baseline it
    is benchmarked and tested against. Of the four, this one moves the predictions least in L2.
``"hull"``
    The greatest convex minorant (lower convex hull) of ``(x_u, g_hat_u)``: Andrew's monotone
    chain, O(G) per bucket, run for all buckets at once with a vectorized stack. Stays below the
    data and touches it at the hull vertices, then slopes are clipped at 0.

For every method except ``"convex-regression"`` (which has ``s~_1 >= 0`` as a constraint), a
negative slope is raised to 0 (for ``"isotonic"``: a negative value, before the hull); the report
counts those clips per bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import nnls

from .._jit import njit
from ..errors import InvalidInputError, SolverError
from ..optimize.curves import CostCurves

CONVEXIFY_METHODS = ("slopes-isotonic", "isotonic", "convex-regression", "hull")


@dataclass(frozen=True)
class ConvexifyReport:
    """How far convexification moved the raw predictions.

    Attributes
    ----------
    method : str
        The convexifier used.
    per_bucket : pandas.DataFrame
        One row per bucket (indexed like the curves) with ``l2 = ||g~_i - g_hat_i||_2`` and
        ``max = ||g~_i - g_hat_i||_inf`` over the grid points, and ``clipped``, the number of
        slopes (values, for ``"isotonic"``) raised to 0 to make ``g~_i`` nondecreasing.
    l2 : float
        ``||g~ - g_hat||_F`` over all buckets and grid points.
    max : float
        Largest absolute deviation anywhere.
    relative_l2 : float
        ``l2 / ||g_hat||_F`` (0 when ``g_hat`` is all zeros).
    """

    method: str
    per_bucket: pd.DataFrame
    l2: float
    max: float
    relative_l2: float

    def __str__(self):
        clipped = int(self.per_bucket["clipped"].sum())
        return (
            f"convexify[{self.method}]: {len(self.per_bucket)} buckets, L2 deviation "
            f"{self.l2:.6g} ({self.relative_l2:.3%} of the predictions), max deviation "
            f"{self.max:.6g}, {clipped} negative slopes clipped to 0"
        )


def convexify(
    sizes: ArrayLike, values: ArrayLike, method: str = "slopes-isotonic", index: pd.Index | Sequence | None = None
) -> tuple[CostCurves, ConvexifyReport]:
    """Convex, nondecreasing piecewise-linear curves closest (in a method's sense) to ``values``.

    Parameters
    ----------
    sizes : array_like, shape (G,)
        Shared size grid, strictly increasing, starting at 0 (shares), G >= 2.
    values : array_like, shape (N, G) or (G,)
        Raw predicted costs ``g_hat_i(x_u)`` with ``values[:, 0] == 0``.
    method : {"slopes-isotonic", "isotonic", "convex-regression", "hull"}
        See the module docstring for what each one solves.
    index : pandas.Index, optional
        Bucket labels, passed to the curves and the report.

    Returns
    -------
    curves : CostCurves
        N curves with breakpoints at the grid sizes.
    report : ConvexifyReport
        L2 and max deviation from ``values``, per bucket and overall.

    Raises
    ------
    InvalidInputError
        On an unknown method, a grid that does not start at 0 or is not increasing, NaN/inf,
        ``values[:, 0] != 0`` or mismatched shapes.
    """
    sizes, values = _check_grid(sizes, values)
    if index is not None:
        index = pd.Index(index)
        if len(index) != values.shape[0]:
            raise InvalidInputError(f"index has {len(index)} labels for {values.shape[0]} buckets")
    slopes, clipped = _slopes(sizes, values, method)
    widths = np.diff(sizes)
    fitted = np.hstack([np.zeros((len(values), 1)), np.cumsum(slopes * widths, axis=1)])
    curves = CostCurves(slopes, np.broadcast_to(widths, slopes.shape), index=index)
    return curves, _report(method, fitted, values, clipped, index)


def convex_slopes(sizes: ArrayLike, values: ArrayLike, method: str = "slopes-isotonic") -> np.ndarray:
    """The slopes of :func:`convexify`'s curves, without the curves and the report.

    For a caller that rescales the grid before building curves (the receding loop's
    :class:`~convexsched.LiveCurves`, once per step): the report's per-bucket table cost more
    than the fit. Same arguments, checks and numbers as :func:`convexify`.

    Returns
    -------
    numpy.ndarray, shape (N, G - 1)
        Nonnegative, nondecreasing slopes ``s~_iu`` of the segments between grid points.
    """
    sizes, values = _check_grid(sizes, values)
    return _slopes(sizes, values, method)[0]


def _slopes(sizes, values, method):
    """Clipped slopes of ``method`` and the number of clips per bucket, on a checked grid."""
    widths = np.diff(sizes)
    clipped = np.zeros(len(values), dtype=int)
    if method == "slopes-isotonic":
        slopes = _isotonic_slopes(np.diff(values, axis=1) / widths, widths)
    elif method == "isotonic":
        monotone = isotonic_rows(values, np.ones(values.shape[1]))
        # The block that pools with g(0) = 0 only ever absorbs smaller values, so its mean is
        # <= 0 and the clip puts it back at 0: g(0) = 0 survives the bounded fit.
        clipped = (monotone < 0).sum(axis=1)
        slopes = _hull_slopes(sizes, np.maximum(monotone, 0.0))
    elif method == "convex-regression":
        slopes = _convex_regression_slopes(sizes, values)
    elif method == "hull":
        slopes = _hull_slopes(sizes, values)
    else:
        raise InvalidInputError(f"unknown convexify method {method!r}; choose one of {CONVEXIFY_METHODS}")
    clipped = clipped + (slopes < 0).sum(axis=1)
    return np.maximum(slopes, 0.0), clipped


def convex_regression_cvxpy(sizes, values, solver="CLARABEL"):
    """The ``"convex-regression"`` problem solved bucket by bucket with cvxpy (the baseline).

    ``min sum_u (g~_u - g_hat_u)^2  s.t.  g~_0 = 0, s~_1 >= 0, s~_{u+1} >= s~_u`` for each row,
    one cvxpy problem per bucket, the textbook formulation. Kept to
    benchmark and test the fast NNLS path of :func:`convexify` against.

    Returns
    -------
    numpy.ndarray, shape (N, G)
        Fitted values ``g~``.

    Raises
    ------
    SolverError
        When a bucket's solve does not reach an optimal status.
    """
    import cvxpy as cp

    sizes, values = _check_grid(sizes, values)
    widths = np.diff(sizes)
    fitted = np.empty_like(values)
    for i, row in enumerate(values):
        g = cp.Variable(len(sizes))
        slopes = cp.diff(g) / widths
        problem = cp.Problem(
            cp.Minimize(cp.sum_squares(g - row)),
            [g[0] == 0, slopes[0] >= 0, cp.diff(slopes) >= 0],
        )
        problem.solve(solver=solver)
        if problem.status != cp.OPTIMAL:
            raise SolverError(f"convex regression of bucket {i} ended with status {problem.status}")
        fitted[i] = g.value
    return fitted


def _check_grid(sizes, values):
    sizes = np.asarray(sizes, dtype=float)
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[None, :]
    if sizes.ndim != 1:
        raise InvalidInputError(f"sizes must be one shared 1-D grid, got shape {sizes.shape}")
    if values.ndim != 2 or values.shape[1] != sizes.shape[0]:
        raise InvalidInputError(f"values of shape {values.shape} do not match a grid of {sizes.shape[0]} sizes")
    if sizes.shape[0] < 2:
        raise InvalidInputError("a size grid needs at least two points, 0 and one size")
    if values.shape[0] == 0:
        raise InvalidInputError("values need at least one bucket")
    if not np.isfinite(sizes).all():
        raise InvalidInputError("sizes must be finite (NaN or inf found)")
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise InvalidInputError(f"values of bucket {int(np.argmax(bad))} contain NaN or inf")
    if sizes[0] != 0:
        raise InvalidInputError(f"the size grid must start at 0, got {sizes[0]:.6g}")
    if np.any(np.diff(sizes) <= 0):
        raise InvalidInputError("the size grid must be strictly increasing")
    scale = np.maximum(np.abs(values).max(axis=1), 1.0)
    offset = np.abs(values[:, 0]) > 1e-12 * scale
    if offset.any():
        i = int(np.argmax(offset))
        raise InvalidInputError(
            f"values[:, 0] must be g(0) = 0, but bucket {i} has {values[i, 0]:.6g}; trading nothing "
            "costs nothing, so set it to 0 (or subtract values[:, :1]: a constant does not move the optimum)"
        )
    return sizes, values


def _isotonic_slopes(slopes, widths):
    # One compiled pass over all rows: scipy's PAVA per row cost more in call overhead than in
    # pooling at G = 33 (the receding loop convexifies ~76,000 rows a day).
    return isotonic_rows(slopes, widths)


def isotonic_rows(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted isotonic (nondecreasing) regression of every row of ``values``, compiled.

    Row ``i`` of the result solves ``min sum_u w_u (y_u - values[i, u])^2`` over nondecreasing
    ``y``: what :func:`scipy.optimize.isotonic_regression` returns for ``(values[i],
    weights=weights)``, up to rounding, for all rows in one call.

    Parameters
    ----------
    values : numpy.ndarray, shape (N, G)
        Finite rows to fit.
    weights : numpy.ndarray, shape (G,)
        Weights ``w_u >= 0`` shared by the rows. Where scipy needs them strictly positive, a
        zero weight is allowed here: such a point does not move its neighbours' fit and takes
        the value of the block it pools with (its own value when it pools with none).

    Returns
    -------
    numpy.ndarray, shape (N, G)
        The fitted rows.

    Raises
    ------
    InvalidInputError
        On mismatched shapes or a negative or non-finite weight.
    """
    values = np.ascontiguousarray(values, dtype=float)
    weights = np.ascontiguousarray(weights, dtype=float)
    if values.ndim != 2 or weights.ndim != 1 or weights.shape[0] != values.shape[1]:
        raise InvalidInputError(f"values of shape {values.shape} need one weight per column, got shape {weights.shape}")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise InvalidInputError("weights must be finite and >= 0")
    return _pava_rows(values, weights)


@njit
def _pava_rows(values, weights):
    """Pool-adjacent-violators on every row, with a stack of blocks (mean, weight, first index).

    A new point is pushed as its own block, then merged into the block below while that block's
    mean is larger; each point is pushed and merged at most once, so a row costs O(G).
    """
    n, g = values.shape
    out = np.empty((n, g))
    mean = np.empty(g)
    weight = np.empty(g)
    start = np.empty(g + 1, dtype=np.int64)
    for i in range(n):
        top = 0
        for u in range(g):
            m = values[i, u]
            w = weights[u]
            first = u
            while top > 0 and mean[top - 1] > m:
                top -= 1
                pooled = weight[top] + w
                # A block of zero weight has no say in the fit: it takes the other block's mean
                # (only zero-weight blocks pooling keep the lower, later value).
                if pooled > 0:
                    m = (weight[top] * mean[top] + w * m) / pooled
                w = pooled
                first = start[top]
            mean[top] = m
            weight[top] = w
            start[top] = first
            top += 1
        start[top] = g
        for k in range(top):
            for u in range(start[k], start[k + 1]):
                out[i, u] = mean[k]
    return out


def _hull_slopes(sizes, values):
    """Slopes of the lower convex hull of every row, Andrew's monotone chain across rows.

    ``stack[i, :top[i]]`` holds the grid indices of row i's hull so far. Point u pops the last
    vertex b (preceded by a) while ``slope(a, b) >= slope(b, u)``, i.e. while b is not strictly
    below the chord from a to u; the loop runs while any row still pops, and every index is pushed
    and popped at most once per row, so the work is O(G) per row.
    """
    n, g = values.shape
    rows = np.arange(n)
    stack = np.zeros((n, g), dtype=np.intp)
    stack[:, 1] = 1
    top = np.full(n, 2)
    for u in range(2, g):
        while True:
            a, b = stack[rows, top - 2], stack[rows, top - 1]
            left = (values[rows, b] - values[rows, a]) * (sizes[u] - sizes[b])
            right = (values[:, u] - values[rows, b]) * (sizes[b] - sizes[a])
            pop = (top >= 2) & (left >= right)
            if not pop.any():
                break
            top -= pop
        stack[rows, top] = u
        top += 1
    vertex = np.zeros((n, g), dtype=bool)
    vertex[np.repeat(rows, top), stack[np.arange(g) < top[:, None]]] = True
    # Segment u (between grid points u and u+1) lies on the hull edge from the last vertex <= u
    # to the first vertex >= u+1.
    positions = np.arange(g)
    last = np.maximum.accumulate(np.where(vertex, positions, 0), axis=1)[:, :-1]
    first = np.minimum.accumulate(np.where(vertex, positions, g - 1)[:, ::-1], axis=1)[:, ::-1][:, 1:]
    rise = np.take_along_axis(values, first, axis=1) - np.take_along_axis(values, last, axis=1)
    return rise / (sizes[first] - sizes[last])


def _convex_regression_slopes(sizes, values):
    # Scaling the grid to [0, 1] and the values to unit size keeps the active-set solves well
    # conditioned whatever the share and currency units are.
    x = sizes / sizes[-1]
    design = np.maximum(x[1:, None] - x[None, :-1], 0.0)
    scales = np.maximum(np.abs(values).max(axis=1), np.finfo(float).tiny)
    kinks = np.empty((values.shape[0], len(sizes) - 1))
    for i, row in enumerate(values):
        try:
            kinks[i], _ = nnls(design, row[1:] / scales[i])
        except RuntimeError as error:
            raise SolverError(f"convex regression of bucket {i} did not converge: {error}") from None
    return np.cumsum(kinks, axis=1) * (scales[:, None] / sizes[-1])


def _report(method, fitted, values, clipped, index):
    deviation = fitted - values
    per_bucket = pd.DataFrame(
        {
            "l2": np.sqrt((deviation**2).sum(axis=1)),
            "max": np.abs(deviation).max(axis=1),
            "clipped": clipped,
        },
        index=index,
    )
    l2 = float(np.sqrt((deviation**2).sum()))
    norm = float(np.sqrt((values**2).sum()))
    return ConvexifyReport(
        method=method,
        per_bucket=per_bucket,
        l2=l2,
        max=float(per_bucket["max"].max()),
        relative_l2=l2 / norm if norm > 0 else 0.0,
    )
