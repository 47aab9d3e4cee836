"""Accelerated proximal gradient (FISTA) for any smooth mix of terms, stopped by the certificate.

Split the objective (E9) as ``F = [G + Q/2 |x|^2] + f`` with ``G`` the impact curves and the
bounds, ``Q`` the terms' uniform curvature (``Term.curvature``)
and ``f = H - Q/2 |x|^2`` the rest, convex and smooth with an ``L``-Lipschitz gradient. One
step from ``y`` is the prox of the separable part, an exact (B) water-filling under the budget
((E7), :func:`convexsched.optimize.waterfill.smoothed` on the curves with slopes moved):

.. math::

    x^+ = \\arg\\min_{0 \\le x \\le c,\\ \\sum x = S} \\sum_i g_i(x_i) + \\frac{Q + L}{2} x_i^2
          + \\big(\\nabla f(y)_i - L y_i\\big) x_i .
    \\qquad (E27)

Nesterov's momentum with O'Donoghue-Candes adaptive restart (restart when the step goes
against the momentum). The iteration stops when the certificate (E25) passes at ``x`` (its
gap relative to the cost paid and every residual within ``tol``), not after a set number of
iterations; ``max_iter`` only guards against a stall, and its result reports the gap reached.
``L`` is the sum of the terms' Lipschitz bounds when they all give one (the transient term's
is ``k (1+a)/(1-a)``), otherwise found by backtracking.

When every term's gradient is affine (``Term.affine``: all the built-in smooth terms), the
iterations run compiled (:func:`_fista_steps`), the prox warm-started bucket by bucket. The
stationarity residuals lag the gap; once the gap is within ``tol``, :class:`ActiveSetPolish`
solves the quadratic on the kinks the iterates found, and the certificate decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._jit import njit
from ..errors import SolverError
from . import waterfill
from .kkt import KKTReport, bound_at_level, certify
from .objective import combine
from .terms import affine
from .validate import Order


@njit
def _active_set(slopes, widths, x, snap):
    """Each bucket's segment holding ``x_i`` strictly inside (``-1``: on a kink or a bound).

    Returns ``(segment, slope, low, high)``, the last three for the free buckets only.
    """
    n, k = slopes.shape
    segment = np.full(n, -1)
    slope, low, high = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        start = 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                if start + snap < x[i] < start + width - snap:
                    segment[i] = j
                    slope[i], low[i], high[i] = slopes[i, j], start, start + width
                    break
                start += width
                if start > x[i]:
                    break
    return segment, slope, low, high


@njit
def _sides(slopes, widths, x, index, snap):
    """For the buckets ``index`` on a kink: the segment below (slope, start) and above (slope, end).

    ``-inf`` / ``+inf`` slopes where ``x_i`` is at 0 or at the capacity.
    """
    m = index.shape[0]
    left, left_low = np.full(m, -np.inf), np.zeros(m)
    right, right_high = np.full(m, np.inf), np.zeros(m)
    k = slopes.shape[1]
    for p in range(m):
        i = index[p]
        start = 0.0
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                end = start + width
                if end <= x[i] + snap:
                    left[p], left_low[p] = slopes[i, j], start
                elif right[p] == np.inf:
                    right[p], right_high[p] = slopes[i, j], end
                    break
                start = end
    return left, left_low, right, right_high


@njit
def _fista_steps(
    x,
    y,
    momentum,
    level,
    count,
    step,
    curvature,
    total,
    start,
    knots,
    fills,
    rho,
    positions,
    diagonal,
    constant,
    strengths,
    decays,
    risk,
    risk_total,
    has_risk,
):
    """``count`` iterations of (E27) on the terms' affine gradient: ``(x, y, momentum, level, restarts)``."""
    restarts = 0
    for _ in range(count):
        gradient = affine.affine_gradient(y, diagonal, constant, strengths, decays, risk, risk_total, has_risk) - curvature * y
        candidate, level = waterfill.shifted_fill(start, knots, fills, rho, total, gradient - step * y, level, positions)
        following = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum * momentum))
        if np.dot(y - candidate, candidate - x) > 0:
            y = candidate.copy()
            momentum = 1.0
            restarts += 1
        else:
            y = candidate + ((momentum - 1.0) / following) * (candidate - x)
            momentum = following
        x = candidate
    return x, y, momentum, level, restarts


# Active-set steps tried per solve once the gap is closed (each costs tens of iterations).
MAX_POLISHES = 3


class ActiveSetPolish:
    """A primal active-set method on the quadratic pieces, warm-started from an iterate (E27).

    Each bucket of an iterate sits on a kink of its curve (fixed) or inside a segment of slope
    ``s_i`` (free). On that set the problem is a quadratic under the budget:
    ``min_d  r_F'd + 1/2 d'H_FF d  s.t.  sum d = S - sum x`` with ``r = s + grad H(x)``, solved by
    projected conjugate gradients (Hessian products ``grad H(v) - grad H(0)``, exact for the
    quadratic terms; preconditioned by a term's ``solve_hessian`` when it has one). A bucket
    the step would push out of its segment stops on the kink and joins the fixed ones; a fixed
    bucket whose kink the level says it should leave (``lambda`` above its right slope plus its
    gradient, or below its left one) is released into the segment on that side. The result is
    only a candidate: the certificate decides (a non-quadratic term, or a set that did not
    settle within ``steps``, fails it and the iteration goes on).
    """

    def __init__(self, order: Order, terms: list, *, tol: float = 1e-6, steps: int = 12, max_cg: int = 200) -> None:
        self.order, self.terms, self.steps, self.max_cg = order, terms, steps, max_cg
        # Release a kink only on a violation well inside the certificate's tolerance.
        self.release = 0.01 * tol
        curves = order.curves
        self.slopes = np.ascontiguousarray(curves.slopes, dtype=float)
        self.widths = np.ascontiguousarray(curves.widths, dtype=float)
        n = curves.n_buckets
        self.zero = self.gradient(np.zeros(n))
        self.snap = 1e-9 * max(float(order.total), 1.0)
        # The base class returns None (no cheap solve); a one-bucket probe asks each term, scaled
        # ones included, whether it has one.
        self.preconditioners = [term for term in terms if term.solve_hessian(np.arange(1), np.ones(1)) is not None]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x))
        for term in self.terms:
            out += np.asarray(term.gradient(x), dtype=float)
        return out

    def precondition(self, free: np.ndarray, r: np.ndarray) -> np.ndarray:
        if not self.preconditioners:
            return r
        # The terms that can solve their own Hessian, summed as one: (sum H_T)^{-1} is
        # approximated by the solve of the strongest (the others' share is what PCG corrects).
        return self.preconditioners[0].solve_hessian(free, r)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, float] | None:
        total = float(self.order.total)
        x = np.ascontiguousarray(x, dtype=float).copy()
        segment, slopes, lows, highs = _active_set(self.slopes, self.widths, x, self.snap)
        free = segment >= 0
        n = len(x)
        for _ in range(self.steps):
            index = np.flatnonzero(free)
            if len(index) == 0:
                return None
            low, high = lows[index], highs[index]
            step, level = self.newton(x, index, slopes[index], total - float(x.sum()), n)
            with np.errstate(divide="ignore", invalid="ignore"):
                room = np.where(step > 0, (high - x[index]) / step, np.where(step < 0, (low - x[index]) / step, np.inf))
            fraction = float(room.min())
            x[index] = np.clip(x[index] + step, low, high)
            if fraction < 1.0:
                # Every bucket the step pushes out of its segment stops on the kink at once
                # (no line search: the next step re-solves the budget with them fixed).
                free[index[room < 1.0]] = False
                continue
            fixed = np.flatnonzero(~free)
            if len(fixed) == 0:
                return x, level
            gradient = self.gradient(x)[fixed]
            left, left_low, right, right_high = _sides(self.slopes, self.widths, x, fixed, self.snap)
            with np.errstate(invalid="ignore"):
                scale = np.maximum(
                    np.maximum(np.abs(gradient), abs(level)),
                    np.maximum(np.where(np.isfinite(left), np.abs(left), 0.0), np.where(np.isfinite(right), np.abs(right), 0.0)),
                )
                up = level - (right + gradient) > self.release * scale
                down = (left + gradient) - level > self.release * scale
            if not (up.any() or down.any()):
                return x, level
            for side, chosen in ((up, True), (down, False)):
                buckets = fixed[side]
                free[buckets] = True
                slopes[buckets] = right[side] if chosen else left[side]
                lows[buckets] = x[buckets] if chosen else left_low[side]
                highs[buckets] = right_high[side] if chosen else x[buckets]
        return None

    def newton(self, x, index, slopes, budget, n):
        """Projected (preconditioned) CG for the step on ``index``; ``(step, level)``."""

        def hessian(p):
            v = np.zeros(n)
            v[index] = p
            return (self.gradient(v) - self.zero)[index]

        weights = self.precondition(index, np.ones(len(index)))
        norm = float(weights.sum())
        step = (budget / norm) * weights
        residual = slopes + self.gradient(x)[index] + hessian(step)
        solved = self.precondition(index, residual)
        level = float(solved.sum()) / norm
        z = solved - level * weights
        direction = -z
        # (r - lambda) . z, not r . z: equal since sum z = 0, but r carries the level itself,
        # whose product with the rounding of sum z would swamp the small remainder.
        rz = float((residual - level) @ z)
        # Stop when the step still to take is below 1e-12 of the share unit.
        floor = 1e-12 * max(abs(self.order.total), 1.0)
        for _ in range(self.max_cg):
            if float(np.abs(z).max(initial=0.0)) <= floor or rz <= 0:
                break
            product = hessian(direction)
            curvature = float(direction @ product)
            if curvature <= 0:
                break
            alpha = rz / curvature
            step += alpha * direction
            residual += alpha * product
            solved = self.precondition(index, residual)
            level = float(solved.sum()) / norm
            z = solved - level * weights
            following = float((residual - level) @ z)
            direction = -z + (following / rz) * direction
            rz = following
        return step, level


@dataclass(frozen=True)
class ProximalResult:
    """The schedule, its level, iterations, restarts and the certificate that stopped it."""

    x: np.ndarray
    multiplier: float
    multiplier_interval: tuple[float, float]
    iterations: int
    restarts: int
    report: KKTReport
    polished: bool = False


def accelerated(
    order: Order, *, tol: float = 1e-6, max_iter: int = 20_000, check_every: int = 10, stop: str = "certificate"
) -> ProximalResult:
    """Solve any objective whose extra terms are smooth by FISTA with restart (E27).

    Parameters
    ----------
    order : Order
    tol : float
        The certificate's tolerance: the iteration stops when :func:`~convexsched.optimize.kkt.certify`
        passes.
    max_iter : int
        Guard against a stall (a :class:`~convexsched.errors.SolverError` names the gap reached).
    check_every : int
        The fewest iterations between checks of the one-pass bound at the prox's level
        (:func:`~convexsched.optimize.kkt.bound_at_level`); the interval then follows the gap's
        linear rate (at most 8 times this), and the full certificate runs once that bound is
        within ``tol``.
    stop : "certificate" | "gap"
        Stop when the whole certificate passes (gap and per-bucket stationarity within ``tol``,
        what :func:`~convexsched.solve` uses), or as soon as the rigorous relative gap is within
        ``tol`` (the stationarity residuals then lag, about as the square root of the gap; the
        result's report says where they are).

    Returns
    -------
    ProximalResult
    """
    curves, total, sense = order.curves, order.total, order.sense
    n = curves.n_buckets
    terms = order.objective.bound(total, n)
    curvature = float(sum(term.curvature for term in terms))
    bounds = [term.lipschitz(n) for term in terms]
    known = all(bound is not None for bound in bounds)

    def smooth(x):
        value, gradient, _, _ = combine(terms, x)
        return value - 0.5 * curvature * float(np.dot(x, x)), gradient - curvature * x

    def separable(shift, rho):
        # The exact water-filling of G + rho/2 |x|^2 + shift'x: (E7) with moved slopes.
        if rho > 0:
            filled = waterfill.smoothed(curves.shifted(shift), total, rho, sense)
        else:
            filled = waterfill.cost_only(curves.shifted(shift), total, sense)
        return filled.x, filled.multiplier

    # Start from the separable problem: the curves with the terms' curvature and their
    # gradient at 0.
    x, level = separable(smooth(np.zeros(n))[1], curvature)
    if known:
        step = max(float(sum(bounds)) - curvature, 0.0)  # type: ignore[arg-type]
    else:
        # A first Lipschitz estimate from two gradients, refined by backtracking.
        probe = x + 1e-3 * max(total, 1.0) / n
        step = max(float(np.linalg.norm(smooth(probe)[1] - smooth(x)[1]) / np.linalg.norm(probe - x)), 1e-300)
    if step == 0.0:
        # Nothing smooth beyond a linear term: the start is the exact answer.
        report = certify(order, x, tol=tol)
        return ProximalResult(x, report.multiplier, report.multiplier_interval, 0, 0, report)
    value, bound = bound_at_level(order, x, level)
    if value - bound <= tol * abs(value):
        report = certify(order, x, multiplier=level, tol=tol)
        if report.ok:
            return ProximalResult(x, report.multiplier, report.multiplier_interval, 0, 0, report)
    ramps = waterfill.ShiftedRamps(curves, curvature + step)
    polish = ActiveSetPolish(order, terms, tol=tol) if sense == "eq" and all(term.smooth for term in terms) else None
    parts = [term.affine(n) for term in terms]
    compiled = None
    if known and sense == "eq" and 0 < total < ramps.total_capacity and all(part is not None for part in parts):
        compiled = sum(parts, affine.Affine.zero(n)).arrays()
        positions = ramps.positions
    y, momentum, restarts, wait = x.copy(), 1.0, 0, check_every
    polishes, last_gap, last_iteration = 0, np.inf, 0
    iteration = 0
    while iteration < max_iter:
        count = min(wait, max_iter - iteration)
        if compiled is not None:
            # Every term's gradient is affine: the iterations run compiled, no Python per step.
            x, y, momentum, level, restarted = _fista_steps(
                x,
                y,
                momentum,
                level,
                count,
                step,
                curvature,
                float(total),
                ramps.start,
                ramps.knots,
                ramps.fills,
                ramps.rho,
                positions,
                *compiled,
            )
            restarts += restarted
        else:
            for _ in range(count):
                f_y, gradient = smooth(y)
                while True:
                    candidate, level = ramps.fill(gradient - step * y, total, sense, guess=level)
                    if known:
                        break
                    move = candidate - y
                    if smooth(candidate)[0] <= f_y + float(np.dot(gradient, move)) + 0.5 * step * float(
                        np.dot(move, move)
                    ) + 1e-12 * abs(f_y):
                        break
                    step *= 2.0
                    ramps = waterfill.ShiftedRamps(curves, curvature + step)
                following = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum * momentum))
                if float(np.dot(y - candidate, candidate - x)) > 0:
                    # The step goes against the momentum: restart (O'Donoghue-Candes).
                    y, momentum = candidate.copy(), 1.0
                    restarts += 1
                else:
                    y = candidate + ((momentum - 1.0) / following) * (candidate - x)
                    momentum = following
                x = candidate
        iteration += count
        value, bound = bound_at_level(order, x, level)
        gap = (value - bound) / abs(value) if value != 0 else (0.0 if value == bound else np.inf)
        if gap <= tol:
            # The prox's level is the candidate multiplier (it converges with x).
            report = certify(order, x, multiplier=level, tol=tol)
            if report.ok or (stop == "gap" and report.relative_gap <= tol):
                return ProximalResult(x, report.multiplier, report.multiplier_interval, iteration, restarts, report)
            # The gap is closed but some bucket is not yet stationary (that lags, about as the
            # square root of the gap): the kinks are found, so the active-set step usually ends it.
            if polish is not None and polishes < MAX_POLISHES:
                polishes += 1
                polished = polish(x)
                if polished is not None:
                    report = certify(order, polished[0], multiplier=polished[1], tol=tol)
                    if report.ok:
                        return ProximalResult(
                            polished[0], report.multiplier, report.multiplier_interval, iteration, restarts, report, polished=True
                        )
            wait = min(2 * wait, 8 * check_every)
        elif np.isfinite(last_gap) and 0 < gap < last_gap:
            # Linear convergence: check again about when the gap should reach tol.
            rate = np.log(gap / last_gap) / (iteration - last_iteration)
            wait = int(min(max(0.7 * np.log(tol / gap) / rate, check_every), 8 * check_every))
        last_gap, last_iteration = gap, iteration
    report = certify(order, x, tol=tol)
    if report.ok:
        return ProximalResult(x, report.multiplier, report.multiplier_interval, max_iter, restarts, report)
    raise SolverError(
        f"the proximal gradient did not certify within {max_iter} iterations (relative gap "
        f"{report.relative_gap:.2e}, stationarity {report.stationarity:.2e}, tol {tol:.0e}); "
        "use method='cvxpy'"
    )
