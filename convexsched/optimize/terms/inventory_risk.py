"""``InventoryRisk(psi, weights)``: ``psi/2 sum_i w_i R_i^2`` on the remaining inventory (E6)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Union

import numpy as np
from numpy.typing import ArrayLike

from ...errors import InvalidInputError
from .affine import Affine
from .base import Term, check_weight

#: The time weights ``w_i`` of (C): a named family, ``("power", gamma)`` or one weight per bucket.
Weights = Union[Literal["linear", "constant"], tuple[str, float], tuple[float, ...], ArrayLike]


def check_weights(weights: Weights) -> Weights:
    """The weights in their stored form (an array becomes a tuple); raises on anything else."""
    if isinstance(weights, str):
        if weights not in ("linear", "constant"):
            raise InvalidInputError(f"weights must be 'linear', 'constant', ('power', gamma) or an array; got {weights!r}")
        return weights
    if isinstance(weights, tuple) and len(weights) == 2 and weights[0] == "power":
        gamma = float(weights[1])
        if not 1.0 <= gamma <= 2.0:
            raise InvalidInputError(f"power weights need gamma in [1, 2] (E6); got {gamma}")
        return weights
    array = np.asarray(weights, dtype=float)
    if array.ndim != 1 or not np.isfinite(array).all() or (array < 0).any():
        raise InvalidInputError("a weight array must be 1-D, finite and >= 0")
    return tuple(array.tolist())


def weight_vector(weights: Weights, n: int) -> np.ndarray:
    """The weights ``w_1..w_N`` for an ``n``-bucket problem."""
    i = np.arange(1, n + 1, dtype=float)
    if isinstance(weights, str) and weights == "linear":
        return i / n
    if isinstance(weights, str) and weights == "constant":
        return np.ones(n)
    if isinstance(weights, tuple) and weights and weights[0] == "power":
        return (i / n) ** float(weights[1])
    array = np.asarray(weights, dtype=float)
    if array.shape != (n,):
        raise InvalidInputError(f"the weight array has length {array.size}, the problem has {n} buckets")
    return array


@dataclass(frozen=True, eq=True)
class InventoryRisk(Term):
    """Time risk on the remaining inventory, ``psi/2 sum_i w_i R_i^2`` with ``R_i = S - sum_{k<=i} x_k`` (E6).

    Not separable: the fast path for it alone (and with smoothing) is the exact inventory
    chain (``convexsched.optimize.chain``).

    Parameters
    ----------
    psi : float
        Currency per share squared, ``>= 0``.
    weights : "linear" | "constant" | ("power", gamma) | array_like
        ``w_i = i/N`` (default), 1, ``(i/N)**gamma`` or one weight per bucket.
    total : float, optional
        ``S``; set by :meth:`bind` (the package does it; set it yourself to call ``value``).
    """

    psi: float
    weights: Weights = field(default="linear")
    total: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "psi", check_weight("psi", self.psi))
        object.__setattr__(self, "weights", check_weights(self.weights))

    def _remaining(self, x):
        if self.total is None:
            raise InvalidInputError("InventoryRisk needs S: call term.bind(total, n) first")
        return self.total - np.cumsum(x)

    def value(self, x):
        x = np.asarray(x, dtype=float)
        remaining = self._remaining(x)
        return 0.5 * self.psi * float(np.dot(weight_vector(self.weights, len(x)), remaining**2))

    def gradient(self, x):
        x = np.asarray(x, dtype=float)
        weighted = weight_vector(self.weights, len(x)) * self._remaining(x)
        # R_j falls with every x_i, i <= j: d/dx_i = -psi sum_{j>=i} w_j R_j.
        return -self.psi * np.cumsum(weighted[::-1])[::-1]

    def expression(self, x):
        import cvxpy as cp

        n = x.shape[0]
        return 0.5 * self.psi * cp.sum(cp.multiply(weight_vector(self.weights, n), cp.square(self.total - cp.cumsum(x))))

    def lipschitz(self, n):
        # Hessian psi T' W T with T the lower-triangular ones: ||T||^2 <= n(n+1)/2.
        return self.psi * float(weight_vector(self.weights, n).max(initial=0.0)) * n * (n + 1) / 2

    def affine(self, n):
        if self.total is None:
            return None
        return Affine(np.zeros(n), np.zeros(n), risk=self.psi * weight_vector(self.weights, n), total=self.total)

    def bind(self, total, n):
        weight_vector(self.weights, n)  # a weight array of another length raises here
        return replace(self, total=float(total))

    def window(self, start, size):
        if isinstance(self.weights, tuple) and self.weights and self.weights[0] != "power":
            part = list(self.weights[start : start + size])
            return replace(self, weights=tuple(part + [0.0] * (size - len(part))), total=None)
        return replace(self, total=None)

    def scaled(self, factor):
        return replace(self, psi=self.psi * factor)
