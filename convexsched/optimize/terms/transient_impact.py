"""``TransientImpact(half_life, strength)``: a propagator with exponential resilience.

.. math::

    T(x) = \\frac{k}{2} \\sum_i \\sum_j x_i x_j \\, a^{|i-j|}, \\qquad a = 2^{-1/h} ,
    \\qquad (E26)

with ``|i-j|`` in buckets: each slice pays ``k/2`` per share for its own impact and
``k a^d`` per share for what a slice ``d`` buckets earlier left in the book (Obizhaeva-Wang,
Gatheral's exponential kernel). The kernel ``K_ij = a^{|i-j|}`` is the covariance of a
stationary AR(1) process, so it is positive definite with eigenvalues in
``[(1-a)/(1+a), (1+a)/(1-a)]`` (the range of its symbol), and ``T`` is convex:

* ``K x`` costs O(N): a forward and a backward recursive filter, ``f_i = x_i + a f_{i-1}``,
  ``b_i = x_i + a b_{i+1}``, ``K x = f + b - x`` (compiled; :func:`kernel_matvec_reference`
  is the dense numpy reference);
* ``x' K x = |C' x|^2`` with ``C`` the AR(1) Cholesky factor (``C_i1 = a^{i-1}``,
  ``C_ij = sqrt(1-a^2) a^{i-j}`` for ``2 <= j <= i``): the cvxpy expression is a sum of squares
  (dense ``C'``), and :meth:`TransientImpact.formulate` states ``v = C' x / (scale)`` by the
  backward chain ``v_j = x_j + a v_{j+1}`` instead (O(N) nonzeros, what ``build_problem`` uses);
* ``curvature = k (1-a)/(1+a)`` (``T - Q/2 |x|^2`` stays convex) and
  ``lipschitz = k (1+a)/(1-a)``.

Slices executed before the first bucket (``history``, oldest first, the last one bucket before
bucket 1) leave ``k sum_p h_p a^{d_p}`` per share on bucket ``j`` (``d_p`` buckets apart): a
known linear term, like :class:`Drift`, added by :meth:`TransientImpact.after`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from ..._jit import njit
from ...errors import InvalidInputError
from .base import Term, check_vector, check_weight


@njit
def kernel_matvec(x, a):
    """``K x`` with ``K_ij = a^{|i-j|}`` by two recursive filters, O(N)."""
    n = x.shape[0]
    out = np.empty(n)
    running = 0.0
    for i in range(n):
        running = x[i] + a * running
        out[i] = running
    running = 0.0
    for i in range(n - 1, -1, -1):
        running = x[i] + a * running
        out[i] += running - x[i]
    return out


def kernel_matvec_reference(x: np.ndarray, a: float) -> np.ndarray:
    """Dense numpy ``K x`` (the reference of :func:`kernel_matvec`)."""
    index = np.arange(len(x))
    return (a ** np.abs(index[:, None] - index[None, :])) @ x


@njit
def subkernel_solve(r, free, a):
    """``K_FF^{-1} r`` for ``K_ij = a^{|i-j|}`` on the sorted buckets ``free``, O(|F|).

    ``K_FF`` is the covariance of an AR(1) process seen at the times ``free``: consecutive
    points ``d`` buckets apart have correlation ``a^d``, so its inverse is ``B' D^{-1} B`` with
    ``B`` unit lower bidiagonal (``-a^d`` below the diagonal) and ``D = diag(1, 1 - a^{2d}, ...)``.
    """
    m = free.shape[0]
    u = np.empty(m)
    for p in range(m):
        if p == 0:
            u[p] = r[p]
        else:
            rho = a ** (free[p] - free[p - 1])
            u[p] = (r[p] - rho * r[p - 1]) / (1.0 - rho * rho)
    y = np.empty(m)
    for p in range(m):
        y[p] = u[p]
        if p + 1 < m:
            y[p] -= a ** (free[p + 1] - free[p]) * u[p + 1]
    return y


def subkernel_solve_reference(r: np.ndarray, free: np.ndarray, a: float) -> np.ndarray:
    """Dense numpy ``K_FF^{-1} r`` (the reference of :func:`subkernel_solve`)."""
    free = np.asarray(free)
    return np.linalg.solve(a ** np.abs(free[:, None] - free[None, :]).astype(float), r)


def residual_impact(history: ArrayLike, n: int, a: float) -> np.ndarray:
    """``sum_p h_p a^{d_p}`` on each of the next ``n`` buckets (``d_p`` = distance in buckets)."""
    history = np.asarray(history, dtype=float)
    if history.size == 0:
        return np.zeros(n)
    # What is left one bucket after the last executed slice, then decayed bucket by bucket.
    left = float(np.dot(history, a ** np.arange(history.size, 0, -1)))
    return left * a ** np.arange(n)


@dataclass(frozen=True, eq=True)
class TransientImpact(Term):
    """``k/2 sum_i sum_j x_i x_j 2^(-|i-j|/h)`` (E26): our own footprint, decaying with half-life ``h``.

    Parameters
    ----------
    half_life : float
        ``h`` in buckets (> 0): the impact a slice leaves halves every ``h`` buckets.
    strength : float
        ``k`` in currency per share squared (>= 0).
    history : array_like, optional
        Slices executed before the first bucket, oldest first (the last one bucket before
        bucket 1); their residual impact is a known linear term. See :meth:`after`.

    Notes
    -----
    A window of a day (a receding or scenario step) that starts after some slices were
    executed: ``term.after(executed)`` is the same term plus the residual impact of
    ``executed`` on the window's buckets, so ``solve(curves_window, remaining, Objective() +
    term.after(executed))`` prices what is still in the book. The decay can be measured from
    the books: a :class:`~convexsched.BookExecutor` with ``half_life = h`` seconds and buckets of
    ``b`` seconds gives ``half_life = h / b`` buckets; a resilience rate ``r`` per second (an event
    replay's) gives ``ln 2 / (r b)``. The scenario loop does this at every step: its window's
    objective is ``objective.window(i, ..., executed=x[:i])``.
    """

    half_life: float
    strength: float
    history: tuple[float, ...] = ()

    def __post_init__(self):
        h = check_weight("half_life", self.half_life)
        if h == 0:
            raise InvalidInputError("half_life must be > 0 (in buckets)")
        object.__setattr__(self, "half_life", h)
        object.__setattr__(self, "strength", check_weight("strength", self.strength))
        object.__setattr__(self, "history", check_vector("history", self.history) if len(self.history) else ())

    @property
    def decay(self) -> float:
        """``a = 2^(-1/h)``: what is left of a slice's impact one bucket later."""
        return float(2.0 ** (-1.0 / self.half_life))

    @property
    def curvature(self) -> float:  # type: ignore[override]
        a = self.decay
        return self.strength * (1 - a) / (1 + a)

    def lipschitz(self, n):
        a = self.decay
        return self.strength * (1 + a) / (1 - a)

    def residual(self, n: int) -> np.ndarray:
        """The history's residual impact per share on each bucket (currency per share)."""
        return self.strength * residual_impact(self.history, n, self.decay)

    def value(self, x):
        x = np.asarray(x, dtype=float)
        quadratic = 0.5 * self.strength * float(np.dot(x, kernel_matvec(x, self.decay)))
        return quadratic + (float(np.dot(self.residual(len(x)), x)) if self.history else 0.0)

    def gradient(self, x):
        x = np.ascontiguousarray(x, dtype=float)
        gradient = self.strength * kernel_matvec(x, self.decay)
        return gradient + self.residual(len(x)) if self.history else gradient

    def affine(self, n):
        from .affine import Affine  # affine.py runs this module's kernel: imported here, not at the top

        return Affine(np.zeros(n), self.residual(n) if self.history else np.zeros(n), kernels=((self.strength, self.decay),))

    def solve_hessian(self, free, r):
        if self.strength == 0:
            return None
        free = np.ascontiguousarray(free, dtype=np.int64)
        return subkernel_solve(np.ascontiguousarray(r, dtype=float), free, self.decay) / self.strength

    def factor(self, n: int) -> np.ndarray:
        """``C'`` with ``x' K x = |C' x|^2`` (upper triangular, dense)."""
        a = self.decay
        index = np.arange(n)
        distance = index[None, :] - index[:, None]  # i - j for row j, column i
        upper = np.where(distance >= 0, a ** np.maximum(distance, 0), 0.0)
        upper[1:] *= np.sqrt(1 - a * a)
        return upper

    def expression(self, x):
        import cvxpy as cp

        n = x.shape[0]
        expression = 0.5 * self.strength * cp.sum_squares(self.factor(n) @ x)
        if self.history:
            expression = expression + self.residual(n) @ x
        return expression

    def formulate(self, x, unit=1.0):
        import cvxpy as cp

        n = x.shape[0]
        a = self.decay
        # v_j = sum_{i>=j} a^{i-j} x_i by the backward chain, in units of `unit` shares;
        # |C'x|^2 = v_1^2 + (1-a^2) sum_{j>=2} v_j^2.
        v = cp.Variable(n, name="transient_state")
        constraints = [unit * v[n - 1] == x[n - 1]]
        if n > 1:
            constraints.append(unit * (v[:-1] - a * v[1:]) == x[:-1])
        weights = np.full(n, 1 - a * a)
        weights[0] = 1.0
        expression = 0.5 * self.strength * unit**2 * cp.sum(cp.multiply(weights, cp.square(v)))
        if self.history:
            expression = expression + self.residual(n) @ x
        return expression, constraints

    def after(self, executed: ArrayLike) -> TransientImpact:
        """The term for the buckets after ``executed`` (slices already traded, oldest first)."""
        return replace(self, history=self.history + check_vector("executed", np.atleast_1d(executed)))

    def window(self, start, size):
        # A step's window: the loops add what they executed with ``after``.
        return self

    def scaled(self, factor):
        return replace(self, strength=self.strength * factor)
