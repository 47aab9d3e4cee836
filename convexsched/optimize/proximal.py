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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SolverError
from . import waterfill
from .kkt import KKTReport, bound_at_level, certify
from .objective import combine
from .validate import Order


@dataclass(frozen=True)
class ProximalResult:
    """The schedule, its level, iterations, restarts and the certificate that stopped it."""

    x: np.ndarray
    multiplier: float
    multiplier_interval: tuple[float, float]
    iterations: int
    restarts: int
    report: KKTReport


def accelerated(order: Order, *, tol: float = 1e-6, max_iter: int = 20_000, check_every: int = 5,
                stop: str = "certificate") -> ProximalResult:
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
        Iterations between full certificates once the one-pass bound at the prox's level
        (:func:`~convexsched.optimize.kkt.bound_at_level`) is within ``tol``.
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
    report = certify(order, x, tol=tol)
    if report.ok or step == 0.0:
        # Nothing smooth beyond a linear term: the start is the exact answer.
        report = report if report.ok else certify(order, x, tol=tol)
        return ProximalResult(x, report.multiplier, report.multiplier_interval, 0, 0, report)
    ramps = waterfill.ShiftedRamps(curves, curvature + step)
    y, momentum, restarts, since_check, wait = x.copy(), 1.0, 0, 0, check_every
    for iteration in range(1, max_iter + 1):
        f_y, gradient = smooth(y)
        while True:
            candidate, level = ramps.fill(gradient - step * y, total, sense, guess=level)
            if known:
                break
            move = candidate - y
            if smooth(candidate)[0] <= f_y + float(np.dot(gradient, move)) + 0.5 * step * float(np.dot(move, move)) \
                    + 1e-12 * abs(f_y):
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
        since_check += 1
        if since_check >= wait:
            since_check = 0
            value, bound = bound_at_level(order, x, level)
            if value - bound <= tol * abs(value):
                # The prox's level is the candidate multiplier (it converges with x).
                report = certify(order, x, multiplier=level, tol=tol)
                if report.ok or (stop == "gap" and report.relative_gap <= tol):
                    return ProximalResult(x, report.multiplier, report.multiplier_interval, iteration, restarts,
                                          report)
                # The gap is closed but a bucket is not yet stationary: check less often.
                wait = min(2 * wait, 4 * check_every)
    report = certify(order, x, tol=tol)
    if report.ok:
        return ProximalResult(x, report.multiplier, report.multiplier_interval, max_iter, restarts, report)
    raise SolverError(
        f"the proximal gradient did not certify within {max_iter} iterations (relative gap "
        f"{report.relative_gap:.2e}, stationarity {report.stationarity:.2e}, tol {tol:.0e}); "
        "use method='cvxpy'"
    )
