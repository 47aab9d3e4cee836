"""Piecewise-linear convex cost curves: the one type between learning and optimization.

Bucket ``i`` has a temporary-impact cost ``g_i(x)`` (E16) for trading ``x`` shares.
Here every ``g_i`` is convex, piecewise linear (E18), with ``g_i(0) = 0``:

.. math::

    g_i(x) = \\sum_{k=1}^{K} s_{ik} \\, \\min\\big(\\max(x - b_{i,k-1}, 0), w_{ik}\\big),
    \\qquad b_{ik} = \\sum_{l \\le k} w_{il}, \\qquad 0 \\le x \\le c_i = b_{iK},

with segment widths ``w_ik >= 0`` and slopes ``s_i1 <= s_i2 <= ... <= s_iK`` (convexity).
A bucket may have fewer real segments (zero widths pad the row) or no capacity at all.
Everything upstream (book walk, oracle, convexifiers) produces a :class:`CostCurves`; every
solver consumes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .._jit import njit
from .._optional import pyplot
from ..errors import InvalidInputError, NonConvexCurveError

# Tolerance, relative to a curve's largest slope, under which a slope decrease (or a negative
# slope) counts as rounding. Relative to the curve's own scale: an absolute floor accepted any
# non-convexity at prices far below 1, e.g. slopes 3e-10 then 1e-10 of a penny token.
_CONVEXITY_RTOL = 1e-9


def _as_2d_float(name, value):
    array = np.asarray(value, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise InvalidInputError(f"{name} must be a 1-D or 2-D array, got shape {array.shape}")
    return array


def _frame_index(index, **arrays):
    """``index``, else the labels of the pandas inputs among ``arrays``.

    A frame's DatetimeIndex labels the buckets (it is not dropped); pandas inputs whose labels
    differ are refused.
    """
    labelled = {name: a.index for name, a in arrays.items() if isinstance(a, (pd.DataFrame, pd.Series))}
    labelled = {name: labels for name, labels in labelled.items() if not isinstance(labels, pd.RangeIndex)}
    if not labelled:
        return index
    names = list(labelled)
    first = labelled[names[0]]
    for name in names[1:]:
        if not labelled[name].equals(first):
            raise InvalidInputError(f"{names[0]} and {name} are pandas objects with different indexes: align them first")
    return first if index is None else index  # an explicit index= relabels


def _label(index, i):
    return f"bucket {i}" if index is None else f"bucket {i} ({index[i]})"


@njit
def _canonical_row(slopes, widths, allow_negative, out_slopes, out_widths, i):
    """Copy row ``i``; whether it is canonical.

    Canonical: every number finite, widths ``>= 0``, slopes ``>= 0`` (unless
    ``allow_negative``) and nondecreasing, a zero-width segment carrying the slope of the real
    segment before it (of the first real one when none is before it), and a row without
    capacity all zeros: exactly what the general path stores. With ``f`` the first real
    segment, that is: the slope changes only at a real segment after ``f`` (and the row is 0
    when there is none). The tests accumulate without an exit inside the loop, which the
    compiler vectorizes.
    """
    k = slopes.shape[1]
    first_real = k
    for j in range(k):
        if widths[i, j] > 0.0:
            first_real = j
            break
    lowest = -np.inf if allow_negative else 0.0
    slope, width = slopes[i, 0], widths[i, 0]
    out_slopes[i, 0], out_widths[i, 0] = slope, width
    bad = not (np.isfinite(slope) and np.isfinite(width) and width >= 0.0 and slope >= lowest)
    if first_real == k:
        bad |= slope != 0.0
    for j in range(1, k):
        slope, width, before = slopes[i, j], widths[i, j], slopes[i, j - 1]
        out_slopes[i, j], out_widths[i, j] = slope, width
        bad |= not (np.isfinite(slope) & np.isfinite(width) & (width >= 0.0) & (slope >= before))
        bad |= (slope != before) & ((width == 0.0) | (j <= first_real))
    return not bad


@njit
def _canonical_rows(slopes, widths, allow_negative, out_slopes, out_widths, breakpoints):
    """Copy curves already in canonical form (:func:`_canonical_row`) and accumulate their breakpoints.

    False at the first row that is not, leaving the outputs partly written. The breakpoints of
    four rows are summed side by side: one row's running sum is a chain of dependent additions,
    four chains keep the adder busy.
    """
    n, k = slopes.shape
    for start in range(0, n, 4):
        stop = min(start + 4, n)
        for i in range(start, stop):
            if not _canonical_row(slopes, widths, allow_negative, out_slopes, out_widths, i):
                return False
        if stop - start == 4:
            a, b, c, d = 0.0, 0.0, 0.0, 0.0
            for i in range(start, stop):
                breakpoints[i, 0] = 0.0
            for j in range(k):
                a += widths[start, j]
                b += widths[start + 1, j]
                c += widths[start + 2, j]
                d += widths[start + 3, j]
                breakpoints[start, j + 1] = a
                breakpoints[start + 1, j + 1] = b
                breakpoints[start + 2, j + 1] = c
                breakpoints[start + 3, j + 1] = d
        else:
            for i in range(start, stop):
                total = 0.0
                breakpoints[i, 0] = 0.0
                for j in range(k):
                    total += widths[i, j]
                    breakpoints[i, j + 1] = total
    return True


@njit
def _block_sum(values, lo, count):
    """``values[lo:lo + count].sum()`` for ``count <= 128``, as numpy sums a block.

    Eight interleaved partial sums (a plain loop below eight).
    """
    if count < 8:
        total = 0.0
        for i in range(lo, lo + count):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[lo], values[lo + 1], values[lo + 2], values[lo + 3]
    r4, r5, r6, r7 = values[lo + 4], values[lo + 5], values[lo + 6], values[lo + 7]
    i, stop = lo + 8, lo + count - count % 8
    while i < stop:
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for j in range(i, lo + count):
        total += values[j]
    return total


@njit
def _pairwise_sum(values):
    """``values.sum()`` bit for bit as numpy sums a float64 vector.

    numpy's pairwise summation: blocks of at most 128, halves cut at a multiple of 8 above,
    walked here with an explicit stack (numba's cache cannot reload a recursive kernel).
    """
    stack_lo = np.empty(192, np.int64)
    stack_count = np.empty(192, np.int64)  # -1: add the last two sums
    sums = np.empty(96)
    stack_lo[0], stack_count[0] = 0, len(values)
    top, done = 1, 0
    while top > 0:
        top -= 1
        lo, count = stack_lo[top], stack_count[top]
        if count < 0:
            done -= 1
            sums[done - 1] = sums[done - 1] + sums[done]
        elif count <= 128:
            sums[done] = _block_sum(values, lo, count)
            done += 1
        else:
            half = count // 2
            half -= half % 8
            stack_lo[top], stack_count[top] = 0, -1
            stack_lo[top + 1], stack_count[top + 1] = lo + half, count - half
            stack_lo[top + 2], stack_count[top + 2] = lo, half
            top += 3
    return 0.0 + sums[0]


@njit
def _store_canonical(slopes, widths, allow_negative):
    """The stored arrays of canonical curves in one compiled call.

    Returns ``(ok, slopes, widths, breakpoints, total capacity)``; ``ok`` is False (and the rest
    unusable) when the input is not canonical, and the caller takes the general path, which
    raises its specific error or canonicalizes. Fresh arrays every call: no two curves share
    storage.
    """
    n, k = slopes.shape
    out_slopes, out_widths, breakpoints = np.empty((n, k)), np.empty((n, k)), np.empty((n, k + 1))
    if not _canonical_rows(slopes, widths, allow_negative, out_slopes, out_widths, breakpoints):
        return False, out_slopes, out_widths, breakpoints, 0.0
    capacity = np.empty(n)
    for i in range(n):
        capacity[i] = breakpoints[i, k]
    return True, out_slopes, out_widths, breakpoints, _pairwise_sum(capacity)


_FLOAT = np.dtype(float)


class CostCurves:
    """N convex piecewise-linear cost curves given by segment slopes and widths.

    Parameters
    ----------
    slopes : array_like, shape (N, K) or (N,)
        Marginal cost of each segment (currency per share), >= 0 and nondecreasing along each
        row over the segments of positive width.
    widths : float or array_like, shape (N,) or (N, K)
        Segment widths in shares (>= 0). A scalar or an (N,) array applies to every segment of
        the row. Zero widths pad rows with fewer real segments.
    index : pandas.Index, optional
        Labels of the buckets (e.g. their timestamps); schedules are returned as Series on it.
    allow_negative : bool
        Accept negative slopes (segments that pay for taking shares, e.g. a rebate), which only
        a ``sense="le"`` problem can price sensibly. Off by default: from a book or an oracle a
        negative slope is a data error.

    Raises
    ------
    InvalidInputError
        On NaN/inf, negative widths, negative slopes (a cost curve never falls: trading more
        cannot cost less) or mismatched shapes.
    NonConvexCurveError
        When a bucket's slopes decrease; the message names the bucket. Convexify first
        (:func:`convexsched.convexify`).

    Notes
    -----
    Slopes of zero-width segments carry no cost; they are canonicalized to the neighbouring real
    slope so that every stored row is nondecreasing. A zero-capacity bucket stores slopes of 0.
    Both checks are relative to each bucket's largest slope (``1e-9`` of it), so they hold at
    any price scale; deviations within that tolerance are rounded away.
    """

    def __init__(
        self, slopes: ArrayLike, widths: ArrayLike, index: pd.Index | Sequence | None = None, allow_negative: bool = False
    ) -> None:
        if (
            index is None
            and type(slopes) is np.ndarray
            and type(widths) is np.ndarray
            and slopes.dtype == _FLOAT
            and widths.dtype == _FLOAT
            and slopes.ndim == 2
            and slopes.shape == widths.shape
            and slopes.shape[0] > 0
        ):
            # The re-quote path: float arrays of the same shape, checked, copied and accumulated
            # in one compiled call when canonical (a book walk, a convexifier's output); a desk's
            # loop pays little Python besides (each numpy call costs microseconds on a cold cache).
            ok, stored_slopes, stored_widths, breakpoints, capacity = _store_canonical(slopes, widths, bool(allow_negative))
            if ok:
                self._store(stored_slopes, stored_widths, breakpoints, capacity, None)
                return
        index = _frame_index(index, slopes=slopes, widths=widths)
        slopes = _as_2d_float("slopes", slopes)
        n, k = slopes.shape
        widths = np.asarray(widths, dtype=float)
        if widths.ndim == 1:
            if widths.shape[0] != n:
                raise InvalidInputError(f"widths has {widths.shape[0]} rows but slopes has {n}")
            widths = widths[:, None]
        try:
            widths = np.broadcast_to(widths, (n, k))
        except ValueError:
            raise InvalidInputError(f"widths of shape {np.shape(widths)} do not match slopes of shape {(n, k)}") from None
        if n == 0:
            raise InvalidInputError("cost curves need at least one bucket")
        if index is not None:
            index = pd.Index(index)
            if len(index) != n:
                raise InvalidInputError(f"index has {len(index)} labels for {n} buckets")
        # Arrays already canonical are stored as they are, the same numbers the general path
        # stores; anything else takes the general path below.
        ok, stored_slopes, stored_widths, breakpoints, capacity = _store_canonical(slopes, widths, bool(allow_negative))
        if ok:
            self._store(stored_slopes, stored_widths, breakpoints, capacity, index)
            return
        widths = widths.copy()
        for name, array in (("slopes", slopes), ("widths", widths)):
            bad = ~np.isfinite(array)
            if bad.any():
                i = int(np.argwhere(bad)[0, 0])
                raise InvalidInputError(f"{name} has NaN or inf in {_label(index, i)}")
        if (widths < 0).any():
            i = int(np.argwhere(widths < 0)[0, 0])
            raise InvalidInputError(f"widths must be >= 0; {_label(index, i)} has a negative one")

        real = np.asarray(widths > 0)
        # Zero-width segments take the slope of the last real one before them (or the first
        # real one after, for leading ones): a forward fill along each row.
        columns = np.arange(k)[None, :]
        last_real = np.maximum.accumulate(np.where(real, columns, -1), axis=1)
        first_real = np.argmax(real, axis=1)[:, None]
        source = np.where(last_real >= 0, last_real, first_real)
        canonical = np.where(real.any(axis=1, keepdims=True), np.take_along_axis(slopes, source, axis=1), 0.0)
        tolerance = _CONVEXITY_RTOL * np.abs(canonical).max(axis=1, keepdims=True)
        negative = canonical < -tolerance
        if negative.any() and not allow_negative:
            i, j = (int(v) for v in np.argwhere(negative)[0])
            raise InvalidInputError(
                f"{_label(index, i)} has a negative slope {canonical[i, j]:.6g}: cost curves must be "
                "increasing (trading more never costs less); clip the slopes at 0 if it is noise"
            )
        bad = np.diff(canonical, axis=1) < -tolerance
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise NonConvexCurveError(
                f"{_label(index, i)} is not convex: slope {canonical[i, j]:.6g} is followed by "
                f"{canonical[i, j + 1]:.6g}. Run the values through convexsched.convexify() "
                "(isotonic slopes, convex regression or hull) before building CostCurves."
            )
        if not allow_negative:
            canonical = np.maximum(canonical, 0.0)
        self._set(np.maximum.accumulate(canonical, axis=1), widths, index)

    def _set(self, slopes, widths, index):
        n = slopes.shape[0]
        # The curves are immutable, so cumulative quantities are computed once.
        breakpoints = np.hstack([np.zeros((n, 1)), np.cumsum(widths, axis=1)])
        self._store(slopes, widths, breakpoints, float(breakpoints[:, -1].sum()), index)

    def _store(self, slopes, widths, breakpoints, total_capacity, index):
        self._slopes, self._widths, self._breakpoints = slopes, widths, breakpoints
        self._total_capacity = total_capacity
        self._breakpoint_values = None  # on first access: no solver path needs it
        slopes.setflags(write=False)
        widths.setflags(write=False)
        breakpoints.setflags(write=False)
        self.index = index

    # ------------------------------------------------------------------ constructors
    @classmethod
    def _trusted(cls, slopes, widths, index):
        """Curves from arrays already canonical (a slice or rescaling of valid curves)."""
        curves = cls.__new__(cls)
        curves._set(np.array(slopes, dtype=float), np.array(widths, dtype=float), index)
        return curves

    @classmethod
    def from_grid(cls, sizes: ArrayLike, values: ArrayLike, index: pd.Index | Sequence | None = None) -> CostCurves:
        """Curves through the points ``(sizes[u], values[i, u])`` of a size grid.

        Parameters
        ----------
        sizes : array_like, shape (G,) or (N, G)
            Strictly increasing sizes starting at 0 (shares), shared or per bucket.
        values : array_like, shape (N, G)
            ``g_i`` at those sizes, with ``g_i(0) = 0``; slopes are the forward differences
            ``(values[u+1] - values[u]) / (sizes[u+1] - sizes[u])`` (E19).

        Raises
        ------
        NonConvexCurveError
            When the forward differences decrease (noisy oracle output): convexify first.
        """
        index = _frame_index(index, values=values)
        values = _as_2d_float("values", values)
        if values.shape[1] < 2:
            raise InvalidInputError("a size grid needs at least two points, 0 and one size")
        sizes = np.asarray(sizes, dtype=float)
        if sizes.ndim == 1:
            sizes = np.broadcast_to(sizes, values.shape)
        if sizes.shape != values.shape:
            raise InvalidInputError(f"sizes of shape {sizes.shape} do not match values {values.shape}")
        if not np.isfinite(sizes).all() or not np.isfinite(values).all():
            raise InvalidInputError("sizes and values must be finite (NaN or inf found)")
        if np.any(sizes[:, 0] != 0):
            raise InvalidInputError("the size grid must start at 0")
        if np.any(np.diff(sizes, axis=1) <= 0):
            raise InvalidInputError("the size grid must be strictly increasing")
        offset = np.abs(values[:, 0])
        if np.any(offset > 1e-12 * np.abs(values).max(axis=1)):
            i = int(np.argmax(offset))
            raise InvalidInputError(
                f"g_i(0) must be 0, but {_label(index, i)} has g(0) = {values[i, 0]:.6g}; "
                "subtract values[:, :1] (a constant does not move the optimum)"
            )
        widths = np.diff(sizes, axis=1)
        return cls(np.diff(values, axis=1) / widths, widths, index=index)

    # ------------------------------------------------------------------ shape and data
    @property
    def slopes(self) -> np.ndarray:
        """(N, K) segment slopes, nondecreasing along each row (read-only)."""
        return self._slopes

    @property
    def widths(self) -> np.ndarray:
        """(N, K) segment widths in shares (read-only)."""
        return self._widths

    @property
    def n_buckets(self) -> int:
        return self._slopes.shape[0]

    @property
    def n_segments(self) -> int:
        return self._slopes.shape[1]

    def __len__(self):
        return self.n_buckets

    @property
    def capacity(self) -> np.ndarray:
        """(N,) largest executable size per bucket, ``c_i = sum_k w_ik``."""
        return self._breakpoints[:, -1]

    @property
    def breakpoints(self) -> np.ndarray:
        """(N, K+1) cumulative widths ``b_i0 = 0, ..., b_iK = c_i``."""
        return self._breakpoints

    @property
    def total_capacity(self) -> float:
        """``sum_i c_i``, the most any schedule can execute (``capacity.sum()``, bit for bit)."""
        return self._total_capacity

    @property
    def breakpoint_values(self) -> np.ndarray:
        """(N, K+1) ``g_i`` at the breakpoints (computed on first access)."""
        if self._breakpoint_values is None:
            n = self._slopes.shape[0]
            values = np.hstack([np.zeros((n, 1)), np.cumsum(self._slopes * self._widths, axis=1)])
            values.setflags(write=False)
            self._breakpoint_values = values
        return self._breakpoint_values

    def __repr__(self):
        return f"CostCurves(n_buckets={self.n_buckets}, n_segments={self.n_segments}, total_capacity={self.total_capacity:.6g})"

    def __getitem__(self, key: int | slice | ArrayLike) -> CostCurves:
        """Buckets ``key`` (a slice or an index array) as new curves, e.g. a planning window."""
        if isinstance(key, (int, np.integer)):
            key = slice(int(key), int(key) + 1 if key != -1 else None)
        index = None if self.index is None else self.index[key]
        slopes = self._slopes[key]
        if slopes.shape[0] == 0:
            raise InvalidInputError(f"the selection {key!r} holds no bucket")
        return CostCurves._trusted(slopes, self._widths[key], index)

    def with_index(self, index: pd.Index | Sequence | None) -> CostCurves:
        """The same curves labelled by ``index``."""
        if index is not None and len(index) != self.n_buckets:
            raise InvalidInputError(f"index has {len(index)} labels for {self.n_buckets} buckets")
        return CostCurves._trusted(self._slopes, self._widths, None if index is None else pd.Index(index))

    def scaled(self, share_unit: float = 1.0, cost_unit: float = 1.0) -> CostCurves:
        """The curves in other units: shares in ``share_unit``, cost in ``cost_unit``.

        ``g~_i(u) = g_i(u * share_unit) / cost_unit``; solvers use this to keep numbers near 1.
        """
        return CostCurves._trusted(self._slopes * (share_unit / cost_unit), self._widths / share_unit, self.index)

    def shifted(self, price: ArrayLike) -> CostCurves:
        """``g_i(x) + price_i x``: every slope of bucket ``i`` moved by ``price_i``.

        Still convex (a linear term keeps the slopes' order); the slopes may turn negative.
        The certificate minimizes a linearized objective on such curves (E25).
        """
        price = np.broadcast_to(np.asarray(price, dtype=float), (self.n_buckets,))
        return CostCurves._trusted(self._slopes + price[:, None], self._widths, self.index)

    # ------------------------------------------------------------------ evaluation
    def _fills(self, x):
        x = np.asarray(x, dtype=float)
        if x.shape != (self.n_buckets,):
            raise InvalidInputError(f"x must have shape ({self.n_buckets},), got {x.shape}")
        starts = self.breakpoints[:, :-1]
        return np.clip(x[:, None] - starts, 0.0, self._widths)

    def evaluate(self, x: ArrayLike) -> np.ndarray:
        """``g_i(x_i)`` for every bucket; ``inf`` outside ``[0, c_i]`` (extended-value convention).

        A relative slack of 1e-9 of the capacity counts as rounding, not as a violation.
        """
        x = np.asarray(x, dtype=float)
        values = (self._slopes * self._fills(x)).sum(axis=1)
        slack = 1e-9 * np.maximum(self.capacity, 1.0)
        outside = (x < -slack) | (x > self.capacity + slack)
        return np.where(outside, np.inf, values)

    def __call__(self, x):
        return self.evaluate(x)

    def slope_bounds(self, x: ArrayLike, tol: float = 1e-9, atol: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Left and right derivatives of ``g_i + indicator[0, c_i]`` at ``x_i``.

        The subdifferential is ``[left, right]``: in the interior of segment k both equal
        ``s_ik``; at an interior breakpoint they are the two adjacent slopes; at ``x = 0`` the
        left one is ``-inf`` and at ``x = c_i`` the right one is ``+inf`` (the bound
        constraints' multipliers live there). ``x`` within ``tol * max(c_i, 1)`` of a breakpoint
        counts as on it; ``atol`` (shares) replaces that distance when given.
        """
        x = np.asarray(x, dtype=float)
        if x.shape != (self.n_buckets,):
            raise InvalidInputError(f"x must have shape ({self.n_buckets},), got {x.shape}")
        bp = self.breakpoints
        eps = tol * np.maximum(self.capacity, 1.0) if atol is None else np.broadcast_to(atol, x.shape)
        eps = np.asarray(eps, dtype=float)[:, None]
        real = self._widths > 0
        started = real & (bp[:, :-1] < x[:, None] - eps)
        unfinished = real & (bp[:, 1:] > x[:, None] + eps)
        left = np.where(started, self._slopes, -np.inf).max(axis=1)
        right = np.where(unfinished, self._slopes, np.inf).min(axis=1)
        return left, right

    def plot(self, buckets: Sequence[int] | None = None, ax: Any = None, marginal: bool = False) -> Any:
        """Plot ``g_i`` (or its marginal cost with ``marginal=True``) for some buckets."""
        plt = pyplot()

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        if buckets is None:
            buckets = np.unique(np.linspace(0, self.n_buckets - 1, min(5, self.n_buckets)).astype(int))
        bp, values = self.breakpoints, self.breakpoint_values
        for i in buckets:
            label = _label(self.index, int(i))
            if marginal:
                ax.step(bp[i, 1:], self._slopes[i], where="pre", label=label)
            else:
                ax.plot(bp[i], values[i], marker=".", label=label)
        ax.set_xlabel("shares")
        ax.set_ylabel("marginal cost per share" if marginal else "cost g_i(x)")
        ax.legend(fontsize="small")
        return ax
