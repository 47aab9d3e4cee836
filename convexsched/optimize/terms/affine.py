"""The gradient of the quadratic terms as one affine map, applied in one compiled pass.

Every built-in smooth term has an affine gradient (E9, E26):

.. math::

    \\nabla H(x) = d \\circ x + c + \\sum_t k_t K(a_t) x
                   - \\operatorname{rev\\,cumsum}\\big(r \\circ (S - \\operatorname{cumsum} x)\\big)

with ``d`` the separable curvatures (smoothing, profile tracking), ``c`` the linear parts (drift,
a profile's target, a transient term's history), ``K(a)`` the exponential kernels of the
transient terms and ``r = psi w`` the inventory risk's weights. A term says so through
``Term.affine``; when all of an objective's terms do, the accelerated
proximal gradient runs its iterations in one compiled loop (``convexsched.optimize.proximal``).
The terms' own ``gradient`` methods are the numpy reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._jit import njit
from . import transient_impact  # its kernel by module attribute: the compiled one once swapped in (_jit)


@dataclass(frozen=True)
class Affine:
    """``grad H(x)`` of the module docstring for an ``n``-bucket problem."""

    diagonal: np.ndarray
    constant: np.ndarray
    kernels: tuple[tuple[float, float], ...] = ()
    risk: np.ndarray | None = None
    total: float = 0.0

    @classmethod
    def zero(cls, n: int) -> Affine:
        return cls(np.zeros(n), np.zeros(n))

    def __add__(self, other: Affine) -> Affine:
        if self.risk is not None and other.risk is not None and self.total != other.total:
            raise ValueError("two inventory risks bound to different order sizes")
        risk = self.risk if other.risk is None else (other.risk if self.risk is None else self.risk + other.risk)
        total = self.total if self.risk is not None else other.total
        return Affine(self.diagonal + other.diagonal, self.constant + other.constant, self.kernels + other.kernels, risk, total)

    def scaled(self, factor: float) -> Affine:
        return Affine(
            factor * self.diagonal,
            factor * self.constant,
            tuple((factor * strength, decay) for strength, decay in self.kernels),
            None if self.risk is None else factor * self.risk,
            self.total,
        )

    def arrays(self) -> tuple:
        """The arguments of :func:`affine_gradient` after ``x``."""
        n = len(self.diagonal)
        strengths = np.array([strength for strength, _ in self.kernels], dtype=float)
        decays = np.array([decay for _, decay in self.kernels], dtype=float)
        risk = np.zeros(n) if self.risk is None else np.ascontiguousarray(self.risk, dtype=float)
        return (
            np.ascontiguousarray(self.diagonal, dtype=float),
            np.ascontiguousarray(self.constant, dtype=float),
            strengths,
            decays,
            risk,
            float(self.total),
            self.risk is not None,
        )


@njit
def affine_gradient(x, diagonal, constant, strengths, decays, risk, total, has_risk):
    """``grad H(x)`` of the module docstring, O(N) per kernel."""
    gradient = diagonal * x + constant
    for t in range(strengths.shape[0]):
        gradient += strengths[t] * transient_impact.kernel_matvec(x, decays[t])
    if has_risk:
        n = x.shape[0]
        remaining = total - np.cumsum(x)
        accumulated = 0.0
        for i in range(n - 1, -1, -1):
            accumulated += risk[i] * remaining[i]
            gradient[i] -= accumulated
    return gradient
