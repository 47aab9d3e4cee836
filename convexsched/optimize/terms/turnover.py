"""``Turnover(kappa)``: ``kappa sum_{i>=2} |x_i - x_{i-1}|``, a nonsmooth penalty on changing pace."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Term, check_weight


@dataclass(frozen=True, eq=True)
class Turnover(Term):
    """``kappa sum_{i>=2} |x_i - x_{i-1}|``: each change of pace costs ``kappa`` per share.

    Nonsmooth (``smooth = False``): ``gradient`` is a subgradient, which the certificate uses
    to linearize (E25); the fast path hands a problem with this term to cvxpy.

    Parameters
    ----------
    kappa : float
        Currency per share, ``>= 0``.
    """

    kappa: float
    smooth = False

    def __post_init__(self):
        object.__setattr__(self, "kappa", check_weight("kappa", self.kappa))

    def value(self, x):
        return self.kappa * float(np.abs(np.diff(np.asarray(x, dtype=float))).sum())

    def gradient(self, x):
        step = np.sign(np.diff(np.asarray(x, dtype=float)))
        gradient = np.zeros(len(step) + 1)
        gradient[1:] += step
        gradient[:-1] -= step
        return self.kappa * gradient

    def expression(self, x):
        import cvxpy as cp

        return self.kappa * cp.norm1(cp.diff(x)) if x.shape[0] > 1 else 0.0 * cp.sum(x)

    def scaled(self, factor):
        return Turnover(self.kappa * factor)
