"""``Smoothing(rho)``: ``rho/2 sum_i x_i^2``, objective (B) (E4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .affine import Affine
from .base import Term, check_weight


@dataclass(frozen=True, eq=True)
class Smoothing(Term):
    """Quadratic smoothing ``rho/2 sum_i x_i^2`` (E4): a temporary impact that grows with the slice.

    Separable, so the fast paths keep it exact (``curvature = rho``).

    Parameters
    ----------
    rho : float
        Currency per share squared, ``>= 0``.
    """

    rho: float

    def __post_init__(self):
        object.__setattr__(self, "rho", check_weight("rho", self.rho))

    @property
    def curvature(self) -> float:  # type: ignore[override]
        return self.rho

    def value(self, x):
        x = np.asarray(x, dtype=float)
        return 0.5 * self.rho * float(np.dot(x, x))

    def gradient(self, x):
        return self.rho * np.asarray(x, dtype=float)

    def expression(self, x):
        import cvxpy as cp

        return 0.5 * self.rho * cp.sum_squares(x)

    def lipschitz(self, n):
        return self.rho

    def affine(self, n):
        return Affine(np.full(n, self.rho), np.zeros(n))

    def scaled(self, factor):
        return Smoothing(self.rho * factor)
