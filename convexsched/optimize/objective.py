"""The scheduling objective family (E9): (E2), (E4), (E6) and their mixes.

.. math::

    F(x) = \\sum_{i=1}^{N} g_i(x_i) + \\frac{\\rho}{2} \\sum_{i=1}^{N} x_i^2
           + \\frac{\\psi}{2} \\sum_{i=1}^{N} w_i R_i^2,
    \\qquad R_i = S - \\sum_{k \\le i} x_k ,

subject to ``0 <= x_i <= c_i`` and the budget ``sum x = S`` (global, (E1)) or
``sum x <= S`` (a receding-horizon window, (E8)). Under the equality budget ``R_N = 0``, so
its term vanishes, as in (E6); under ``<=`` the last weight prices what is left over.

* (A) cost only: ``rho = psi = 0`` (E2).
* (B) cost + risk smoothing: ``rho > 0`` (E4).
* (C) cost + time risk on remaining inventory: ``psi > 0`` (E6), weights ``w_i = i/N``,
  ``(i/N)**gamma`` with ``gamma`` in [1, 2], or proportional to a variance forecast.
* Almgren-Chriss: one linear segment, ``rho = 2 * eta_tilde / tau`` and constant weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from .curves import CostCurves

#: The time weights ``w_i`` of (C): a named family, ``("power", gamma)`` or one weight per bucket.
Weights = Union[Literal["linear", "constant"], tuple[str, float], tuple[float, ...], ArrayLike]


def _check_nonnegative(name, value):
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {value}")
    return value


@dataclass(frozen=True)
class Objective:
    """Penalty weights of the objective family (see the module docstring).

    Parameters
    ----------
    rho : float
        Quadratic smoothing ``rho/2 * x_i^2`` (E4); 0 for none.
    psi : float
        Inventory-risk weight ``psi/2 * w_i R_i^2`` (E6); 0 for none.
    weights : "linear" | "constant" | ("power", gamma) | array_like of length N
        The time weights ``w_i``: ``i/N`` (default), 1, ``(i/N)**gamma`` (``gamma`` in [1, 2])
        or a user array, e.g. proportional to a forecast variance ``sigma_i^2``. ``w_N``
        multiplies ``R_N``, which is 0 under the equality budget. A pandas Series is aligned
        on the curves' index by label (a bucket it misses is an error), not taken by position.
    weight_index : tuple, optional
        The labels of array weights (set from a Series); see :meth:`aligned`.
    """

    rho: float = 0.0
    psi: float = 0.0
    weights: Weights = field(default="linear")
    weight_index: tuple | None = field(default=None, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "rho", _check_nonnegative("rho", self.rho))
        object.__setattr__(self, "psi", _check_nonnegative("psi", self.psi))
        weights: Any = self.weights
        if hasattr(weights, "index") and hasattr(weights, "to_numpy"):  # a pandas Series: keep its labels
            if self.weight_index is not None:
                raise InvalidInputError("give the weights' labels once: a Series, or weight_index= with an array")
            object.__setattr__(self, "weight_index", tuple(weights.index))
            weights = weights.to_numpy(dtype=float)
        elif self.weight_index is not None:
            object.__setattr__(self, "weight_index", tuple(self.weight_index))
        if isinstance(weights, str):
            if weights not in ("linear", "constant"):
                raise InvalidInputError(
                    f"weights must be 'linear', 'constant', ('power', gamma) or an array; got {weights!r}"
                )
        elif isinstance(weights, tuple) and len(weights) == 2 and weights[0] == "power":
            gamma = float(weights[1])
            if not 1.0 <= gamma <= 2.0:
                raise InvalidInputError(f"power weights need gamma in [1, 2] (E6); got {gamma}")
        else:
            array = np.asarray(weights, dtype=float)
            if array.ndim != 1 or not np.isfinite(array).all() or (array < 0).any():
                raise InvalidInputError("a weight array must be 1-D, finite and >= 0")
            object.__setattr__(self, "weights", tuple(array.tolist()))
            if self.weight_index is not None and len(self.weight_index) != len(array):
                raise InvalidInputError(f"weight_index has {len(self.weight_index)} labels for {len(array)} weights")

    # ------------------------------------------------------------------ named constructors
    @classmethod
    def cost_only(cls) -> Objective:
        """(A) (E2): minimize the impact cost alone."""
        return cls()

    @classmethod
    def smoothed(cls, rho: float) -> Objective:
        """(B) (E4): cost + ``rho/2 sum x_i^2``."""
        return cls(rho=rho)

    @classmethod
    def inventory_risk(cls, psi: float, weights: Weights = "linear") -> Objective:
        """(C) (E6): cost + ``psi/2 sum w_i R_i^2``."""
        return cls(psi=psi, weights=weights)

    @classmethod
    def almgren_chriss(cls, eta_tilde: float, tau: float, risk_aversion: float, sigma: float) -> Objective:
        """Almgren-Chriss as a member of the family (with one linear segment per bucket).

        The discrete AC cost ``sum eta_tilde/tau x_i^2 + lambda_AC sigma^2 tau sum R_i^2`` is
        ``rho = 2 eta_tilde / tau`` and ``psi = 2 lambda_AC sigma^2 tau`` with constant weights.

        Parameters
        ----------
        eta_tilde : float
            Temporary-impact coefficient (>= 0).
        tau : float
            Bucket length (> 0, in the unit ``sigma`` is quoted per).
        risk_aversion : float
            ``lambda_AC >= 0``.
        sigma : float
            Volatility per unit of time (>= 0).

        Raises
        ------
        InvalidInputError
            A parameter that is not finite, ``tau <= 0``, or a negative one.
        """
        tau = float(tau)
        if not (np.isfinite(tau) and tau > 0):
            raise InvalidInputError(f"Almgren-Chriss tau (the bucket length) must be a finite number > 0, got {tau}")
        eta_tilde = _check_nonnegative("Almgren-Chriss eta_tilde", eta_tilde)
        risk_aversion = _check_nonnegative("Almgren-Chriss risk_aversion", risk_aversion)
        sigma = _check_nonnegative("Almgren-Chriss sigma", sigma)
        return cls(
            rho=2.0 * eta_tilde / tau,
            psi=2.0 * risk_aversion * sigma**2 * tau,
            weights="constant",
        )

    # ------------------------------------------------------------------ helpers
    @property
    def kind(self) -> str:
        """'A', 'B', 'C' or a mix such as 'B+C'."""
        parts = [name for name, on in (("B", self.rho > 0), ("C", self.psi > 0)) if on]
        return "+".join(parts) or "A"

    @property
    def separable(self) -> bool:
        """True when the objective splits per bucket (no inventory term): A, B."""
        return self.psi == 0

    def aligned(self, index: object) -> Objective:
        """The objective with labelled weights (a Series) put in the order of ``index`` (the curves').

        Raises
        ------
        InvalidInputError
            The curves have no labels to align on, the weights repeat a label, or miss one of
            the curves' buckets.
        """
        if self.weight_index is None:
            return self
        import pandas as pd

        labels = pd.Index(self.weight_index)
        if index is None:
            raise InvalidInputError(
                "the weights are a labelled Series but the curves have no bucket labels to align them on: "
                "give the curves an index, or the weights as a plain array in bucket order"
            )
        if labels.has_duplicates:
            raise InvalidInputError(f"the weights repeat the label {labels[labels.duplicated()][0]!r}")
        missing = pd.Index(index).difference(labels, sort=False)
        if len(missing):
            raise InvalidInputError(
                f"the weights have no entry for bucket {missing[0]!r} of the curves ({len(missing)} missing)"
            )
        values = pd.Series(np.asarray(self.weights, dtype=float), index=labels).reindex(pd.Index(index))
        return Objective(rho=self.rho, psi=self.psi, weights=tuple(values.to_numpy().tolist()))

    def weight_vector(self, n: int) -> np.ndarray:
        """The weights ``w_1..w_N`` for an ``n``-bucket problem."""
        i = np.arange(1, n + 1, dtype=float)
        if self.weights == "linear":
            return i / n
        if self.weights == "constant":
            return np.ones(n)
        if isinstance(self.weights, tuple) and self.weights and self.weights[0] == "power":
            return (i / n) ** float(self.weights[1])
        array = np.asarray(self.weights, dtype=float)
        if array.shape != (n,):
            raise InvalidInputError(f"the weight array has length {array.size}, the problem has {n} buckets")
        return array

    def value(self, curves: CostCurves, total: float, x: ArrayLike) -> float:
        """``F(x)`` of the module docstring; ``inf`` if ``x`` leaves a bucket's capacity."""
        x = np.asarray(x, dtype=float)
        remaining = total - np.cumsum(x)
        cost = curves.evaluate(x).sum()
        return float(
            cost
            + 0.5 * self.rho * np.dot(x, x)
            + 0.5 * self.psi * np.dot(self.weight_vector(len(x)), remaining**2)
        )
