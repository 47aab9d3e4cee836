"""``Drift(alpha)``: a linear term ``sum_i alpha_i x_i`` (an expected price move or alpha per bucket)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from .affine import Affine
from .base import Term, check_vector, fit, window_of


@dataclass(frozen=True, eq=True)
class Drift(Term):
    """``sum_i alpha_i x_i``: what a share bought in bucket ``i`` costs beyond its impact.

    ``alpha_i`` is an expected price move from now to bucket ``i`` (currency per share, positive
    when a buy gets dearer), a short-term alpha, or the residual impact that earlier slices
    left (see :class:`TransientImpact`). Linear, so the prox and the certificate keep it exact.

    Parameters
    ----------
    alpha : float or array_like of shape (N,)
        Currency per share; a scalar applies to every bucket.
    """

    alpha: float | tuple[float, ...]

    def __init__(self, alpha: float | ArrayLike) -> None:
        value = np.asarray(alpha, dtype=float)
        object.__setattr__(self, "alpha", float(value) if value.ndim == 0 else check_vector("alpha", value))
        if value.ndim == 0 and not np.isfinite(value):
            from ...errors import InvalidInputError

            raise InvalidInputError(f"alpha must be finite, got {float(value)}")

    def vector(self, n: int) -> np.ndarray:
        if isinstance(self.alpha, float):
            return np.full(n, self.alpha)
        return fit(self.alpha, n, "Drift alpha")

    def value(self, x):
        x = np.asarray(x, dtype=float)
        return float(np.dot(self.vector(len(x)), x))

    def gradient(self, x):
        return self.vector(len(np.asarray(x)))

    def expression(self, x):
        return self.vector(x.shape[0]) @ x

    def lipschitz(self, n):
        return 0.0

    def affine(self, n):
        return Affine(np.zeros(n), self.vector(n))

    def bind(self, total, n):
        self.vector(n)
        return self

    def window(self, start, size):
        if isinstance(self.alpha, float):
            return self
        return Drift(window_of(self.alpha, start, size))

    def scaled(self, factor):
        if isinstance(self.alpha, float):
            return Drift(self.alpha * factor)
        return replace(self, alpha=tuple(factor * a for a in self.alpha))
