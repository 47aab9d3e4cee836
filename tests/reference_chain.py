"""Reference: the first exact chain solver (an O(N^2 K) dynamic program on merged curves).

Kept in the tests as an independent check of :mod:`convexsched.optimize.chain`, which replaced it.

Exact dynamic programming on the inventory chain: objective (C) and every mix with psi > 0.

With ``psi > 0`` the objective is not separable, because ``R_i = S - sum_{k<=i} x_k`` couples
the buckets. It is a chain, though: ``x_i = R_{i-1} - R_i``. Write ``mu_i`` for the marginal
price offered to bucket ``i`` ((E10): (E3) with the risk term added):

.. math::

    g_i'(x_i) + \\rho x_i \\ni \\mu_i, \\qquad
    \\mu_i = \\lambda + \\psi \\sum_{j \\ge i} w_j R_j, \\qquad
    \\mu_{i+1} = \\mu_i - \\psi w_i R_i .

A forward pass carries, for every bucket, the monotone relation between the price and the
inventory left: ``Y_i(q)`` is the optimal ``R_i`` when the next bucket's price is ``q``. With
``X_i(mu)`` the bucket response of (E7) (a monotone staircase or ramp curve),

.. math::

    G_i(\\mu) = Y_{i-1}(\\mu) - X_i(\\mu), \\qquad
    Y_i = \\{(\\mu - \\psi w_i R, R) : (\\mu, R) \\in G_i\\} ,

an inf-convolution (subtract two monotone curves at equal price: merge their breakpoints) then
a shear. Both are exact on piecewise-linear monotone curves, so the whole pass is exact.
``lambda`` is where ``Y_N`` meets ``R_N = 0`` (or ``lambda = 0`` with slack under ``<=``), and
a backward pass recovers ``R`` and ``x``. Curves are clipped to the inventory that can still be
completed, ``max(0, S - sum_{k<=i} c_k) <= R_i <= min(S, sum_{k>i} c_k)``: a combination of the
original constraints, so neither the optimum nor the multiplier changes, and the curves stay
short. Each step costs O(n log n) in the current curve length n (at most the number of
segments seen so far).
"""

from __future__ import annotations

import numpy as np

from convexsched.optimize.kkt import multiplier_interval
from convexsched.optimize.waterfill import WaterLevel


class _Curve:
    """A monotone relation through points ``(q_j, r_j)``, linear between them, flat beyond.

    ``q`` is nondecreasing; a repeated ``q`` is a vertical jump. ``r`` is monotone.
    """

    __slots__ = ("q", "r")

    def __init__(self, q, r):
        self.q, self.r = q, r

    def limits(self, at):
        """Left and right limits of the relation at the prices ``at``."""
        return _value(self.q, self.r, at, "left"), _value(self.q, self.r, at, "right")

    def prices_for(self, value):
        """The interval of prices at which a decreasing relation takes ``value``."""
        q, r = self.q, self.r
        neg = -r
        j1 = int(np.searchsorted(neg, -value, side="left"))  # first r_j <= value
        j2 = int(np.searchsorted(neg, -value, side="right"))  # first r_j < value
        n = len(q)
        if j1 < j2:
            lo = -np.inf if j1 == 0 else q[j1]
            hi = np.inf if j2 == n else q[j2 - 1]
            return lo, hi
        if j1 == 0:
            return -np.inf, q[0]
        if j1 == n:
            return q[-1], np.inf
        price = q[j1 - 1] + (value - r[j1 - 1]) * (q[j1] - q[j1 - 1]) / (r[j1] - r[j1 - 1])
        return price, price


def _response_curve(curves, i, rho):
    """``X_i`` as a curve: segment k fills while the price runs from ``s_k + rho b_{k-1}`` to
    ``s_k + rho b_k`` (a vertical jump at ``s_k`` when ``rho = 0``)."""
    real = curves.widths[i] > 0
    if not real.any():
        return _Curve(np.zeros(1), np.zeros(1))
    s = curves.slopes[i][real]
    b = curves.breakpoints[i]
    start, end = b[:-1][real], b[1:][real]
    q = np.column_stack([s + rho * start, s + rho * end]).ravel()
    r = np.column_stack([start, end]).ravel()
    return _Curve(q, r)


def _value(q, r, at, side):
    """Left (``side="left"``) or right limit at ``at`` of the relation through ``(q, r)``.

    ``searchsorted`` on the side asked puts an exact hit at the end of the bracketing pair
    (left limit: first point of a vertical run) or at its start (right limit: last point), so
    one interpolation formula serves both; brackets clamped at the ends give the flat extension.
    """
    n = len(q)
    j = np.searchsorted(q, at, side=side)
    a = np.clip(j - 1, 0, n - 1)
    b = np.minimum(j, n - 1)
    span = q[b] - q[a]
    t = np.divide(at - q[a], span, out=np.zeros(len(at)), where=span > 0)
    return r[a] + t * (r[b] - r[a])


def _subtract(y, x):
    """``Y(q) - X(q)`` as a curve (a sum of monotone relations: merge the breakpoints).

    Y's points lose X's left limit; X's points (after any of Y's at the same price) take Y's
    right limit. Cost O(n log m + m log n) for n points of Y and m of X, with no sort.
    """
    y_values = y.r - _value(x.q, x.r, y.q, "left")
    x_values = _value(y.q, y.r, x.q, "right") - x.r
    n, m = len(y.q), len(x.q)
    at = np.searchsorted(y.q, x.q, side="right") + np.arange(m)
    from_y = np.ones(n + m, dtype=bool)
    from_y[at] = False
    q = np.empty(n + m)
    r = np.empty(n + m)
    q[at], r[at] = x.q, x_values
    q[from_y], r[from_y] = y.q, y_values
    return _Curve(q, r)


def _crossing(q, r, j, level):
    """The point at ``level`` on the piece from point ``j - 1`` to point ``j``."""
    t = (r[j - 1] - level) / (r[j - 1] - r[j])
    return q[j - 1] + t * (q[j] - q[j - 1])


def _clip(curve, lo, hi):
    """The decreasing relation restricted to ``lo <= R <= hi``.

    R is monotone, so each level is crossed on at most one piece: the crossing point is
    inserted there and the points beyond it, which the flat extension reproduces, are dropped.
    """
    q, r = curve.q, curve.r
    n = len(q)
    if hi <= lo:
        return _Curve(q[:1], np.array([lo]))
    above = int(np.searchsorted(-r, -hi, side="right"))  # points with r >= hi
    below = int(np.searchsorted(-r, -lo, side="left"))  # points with r > lo
    if above == n:
        return _Curve(q[-1:], np.array([hi]))
    if below == 0:
        return _Curve(q[:1], np.array([lo]))
    head_q, head_r, first = [], [], 0
    if above > 0:
        if r[above - 1] == hi:
            first = above - 1
        else:
            head_q, head_r, first = [_crossing(q, r, above, hi)], [hi], above
    tail_q, tail_r, last = [], [], n
    if below < n:
        if r[below] == lo:
            last = below + 1
        else:
            tail_q, tail_r, last = [_crossing(q, r, below, lo)], [lo], below
    q = np.concatenate([head_q, q[first:last], tail_q])
    r = np.concatenate([head_r, r[first:last], tail_r])
    # Points inside flat or vertical runs carry no information; repeated points neither.
    if len(q) > 2:
        same_q, same_r = q[1:] == q[:-1], r[1:] == r[:-1]
        repeated = np.concatenate([[False], same_q & same_r])
        q, r = q[~repeated], r[~repeated]
        if len(q) > 2:
            flat = (r[1:-1] == r[:-2]) & (r[1:-1] == r[2:])
            vertical = (q[1:-1] == q[:-2]) & (q[1:-1] == q[2:])
            keep = np.concatenate([[True], ~(flat | vertical), [True]])
            q, r = q[keep], r[keep]
    return _Curve(q, r)


def inventory_chain(curves, total, objective, sense="eq"):
    """The former solver: same arguments and result as :func:`convexsched.optimize.chain.inventory_chain`."""
    n = curves.n_buckets
    rho, psi = objective.rho, objective.psi
    shear = psi * objective.weight_vector(n)
    capacity = curves.capacity
    done_capacity = np.cumsum(capacity)
    future_capacity = capacity.sum() - done_capacity

    y = _Curve(np.zeros(1), np.array([float(total)]))
    before, responses, differences = [], [], []
    for i in range(n):
        before.append(y)
        x_curve = _response_curve(curves, i, rho)
        g = _subtract(y, x_curve)
        responses.append(x_curve)
        differences.append(g)
        lo = max(0.0, total - done_capacity[i])
        hi = min(float(total), future_capacity[i]) if sense == "eq" else float(total)
        if i == n - 1:
            break
        g = _clip(g, lo, max(hi, lo))
        y = _Curve(g.q - shear[i] * g.r, g.r)

    # Terminal condition on R_N.
    final = _Curve(g.q - shear[-1] * g.r, g.r)
    if sense == "le":
        left, right = (v[0] for v in final.limits(np.zeros(1)))
        if left >= 0 and right > 0:
            # Slack at a zero level: leftover inventory is cheaper than trading it.
            level, r_end = 0.0, float(right)
        else:
            level, r_end = min(final.prices_for(0.0)[1], 0.0), 0.0
    else:
        lo_p, hi_p = final.prices_for(0.0)
        level, r_end = (lo_p if np.isfinite(lo_p) else hi_p), 0.0

    # Backward pass: recover R_{i-1} and x_i from R_i and the price of bucket i.
    x = np.zeros(n)
    r_next = r_end
    price = level + shear[-1] * r_end
    for i in range(n - 1, -1, -1):
        lo_p, hi_p = differences[i].prices_for(r_next)
        price = float(np.clip(price, lo_p, hi_p))
        at = np.array([price])
        yl, yr = (v[0] for v in before[i].limits(at))
        xl, xr = (v[0] for v in responses[i].limits(at))
        r_prev = float(np.clip(r_next + xl, yr, yl))
        x[i] = float(np.clip(r_prev - r_next, xl, xr))
        r_next = r_next + x[i]
        if i > 0:
            price = price + shear[i - 1] * r_next
    # Clipping R to what can still be completed adds constraints that are combinations of the
    # original ones: x is unchanged, but the level they certify must be read off x itself.
    lo, hi = multiplier_interval(curves, total, objective, x, sense=sense, snap=1e-9 * max(total, 1.0))
    level = float(np.clip(level, lo, hi)) if lo <= hi else 0.5 * (lo + hi)
    return WaterLevel(x, level, (lo, hi), iterations=n)
