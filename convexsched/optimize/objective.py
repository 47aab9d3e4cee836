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

An objective is a sum of terms (``convexsched.optimize.terms``): ``rho`` and ``psi`` are the
:class:`~convexsched.optimize.terms.Smoothing` and
:class:`~convexsched.optimize.terms.InventoryRisk` terms, kept as fields because the exact
fast paths and the parameterized cvxpy problem are built on them; any other term rides in
``terms``. ``Objective.smoothed(rho) == Objective() + Smoothing(rho)``, and so on: the named
constructors and the sums are the same objects. ``F(x)`` is computed here, in
:meth:`Objective.value`, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidInputError
from .terms import InventoryRisk, Smoothing, Term
from .terms.inventory_risk import Weights, check_weights, weight_vector

if TYPE_CHECKING:
    from .curves import CostCurves

__all__ = ["Objective", "Weights"]


def _check_nonnegative(name, value):
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {value}")
    return value


@dataclass(frozen=True)
class Objective:
    """The objective: the impact curves plus a sum of terms (see the module docstring).

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
    terms : tuple of Term
        Every other term (``convexsched.optimize.terms``, or your own subclass of
        :class:`~convexsched.Term`). Usually built with ``+``.
    """

    rho: float = 0.0
    psi: float = 0.0
    weights: Weights = field(default="linear")
    weight_index: tuple | None = field(default=None, repr=False)
    terms: tuple[Term, ...] = ()

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
        stored = check_weights(weights)
        object.__setattr__(self, "weights", stored)
        count = len(stored) if isinstance(stored, tuple) and stored and stored[0] != "power" else None
        if self.weight_index is not None and count is not None and len(self.weight_index) != count:
            raise InvalidInputError(f"weight_index has {len(self.weight_index)} labels for {count} weights")
        terms = tuple(self.terms)
        for term in terms:
            if not isinstance(term, Term):
                raise InvalidInputError(f"objective terms must be Term objects, got {type(term).__name__}")
        object.__setattr__(self, "terms", terms)

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

    # ------------------------------------------------------------------ algebra
    def __add__(self, other: object) -> Objective:
        if other is None:
            return self
        if isinstance(other, Objective):
            result = self
            for term in other.parts():
                result = result + term
            return result
        if isinstance(other, Smoothing):
            return replace(self, rho=self.rho + other.rho)
        if isinstance(other, InventoryRisk) and other.total is None:
            if self.psi == 0:
                return replace(self, psi=other.psi, weights=other.weights)
            if other.weights == self.weights:
                return replace(self, psi=self.psi + other.psi)
        if isinstance(other, Term):
            return replace(self, terms=self.terms + (other,))
        return NotImplemented

    def __radd__(self, other: object) -> Objective:
        if isinstance(other, (int, float)) and other == 0:  # sum([...]) starts from 0
            return self
        if isinstance(other, Term):
            return Objective() + other + self
        return NotImplemented

    def parts(self) -> list[Term]:
        """The terms of the sum beside the impact curves, fields included (unbound)."""
        parts: list[Term] = []
        if self.rho > 0:
            parts.append(Smoothing(self.rho))
        if self.psi > 0:
            parts.append(InventoryRisk(self.psi, self.weights))
        return parts + list(self.terms)

    def bound(self, total: float, n: int) -> list[Term]:
        """:meth:`parts` bound to ``S = total`` and ``n`` buckets (raises on a length mismatch)."""
        return [term.bind(total, n) for term in self.parts()]

    def window(
        self, start: int, size: int, *, rho: float | None = None, weights: Any = None, executed: ArrayLike | None = None
    ) -> Objective:
        """The objective of a step's window: buckets ``start .. start + size - 1`` of the day.

        The receding and scenario loops call it so that every term reaches the step whole:
        ``rho`` and ``weights`` replace the fields (the loops adjust them), each extra term is
        restricted by its own ``Term.window``, and, given the
        slices ``executed`` before ``start``, a term with memory adds what they left
        (``Term.after``).
        """
        terms = [term.window(start, size) for term in self.terms]
        history = np.asarray(executed if executed is not None else [], dtype=float)
        if history.size:
            terms = [term.after(history) for term in terms]
        return replace(
            self,
            rho=self.rho if rho is None else rho,
            weights=self.weights if weights is None else weights,
            terms=tuple(terms),
        )

    # ------------------------------------------------------------------ helpers
    @property
    def kind(self) -> str:
        """'A', 'B', 'C', a mix such as 'B+C', or with other terms e.g. 'A+TransientImpact'."""
        parts = [name for name, on in (("B", self.rho > 0), ("C", self.psi > 0)) if on] or ["A"]
        return "+".join(parts + [term.name for term in self.terms])

    @property
    def separable(self) -> bool:
        """True when the objective splits per bucket (no inventory term, no other term): A, B."""
        return self.psi == 0 and not self.terms

    @property
    def smooth(self) -> bool:
        """True when every extra term is smooth (the proximal-gradient path can take it)."""
        return all(term.smooth for term in self.terms)

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
            raise InvalidInputError(f"the weights have no entry for bucket {missing[0]!r} of the curves ({len(missing)} missing)")
        values = pd.Series(np.asarray(self.weights, dtype=float), index=labels).reindex(pd.Index(index))
        return replace(self, weights=tuple(values.to_numpy().tolist()), weight_index=None)

    def weight_vector(self, n: int) -> np.ndarray:
        """The weights ``w_1..w_N`` for an ``n``-bucket problem."""
        return weight_vector(self.weights, n)

    def smooth_part(self, total: float, x: np.ndarray) -> tuple[float, np.ndarray, float]:
        """The terms beside the impact curves at ``x``: ``(H(x), grad H(x), Q)``.

        ``H`` is everything in ``F`` but ``sum g_i``; ``Q`` is the uniform curvature the
        certificate and the prox keep exact (``H - Q/2 |x|^2`` is convex), see (E25).
        """
        value, gradient, _, curvature = combine(self.bound(total, len(x)), x)
        return value, gradient, curvature

    def smooth_terms(self, total: float, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        """:meth:`smooth_part` with ``sum_T |grad T(x)|`` per bucket after the gradient.

        The magnitude is the price scale a bucket's stationarity is judged against: terms whose
        gradients nearly cancel (risk against smoothing) carry errors of their own size.
        """
        return combine(self.bound(total, len(x)), x)

    def value(self, curves: CostCurves, total: float, x: ArrayLike) -> float:
        """``F(x)`` of the module docstring (the one place it is computed)."""
        x = np.asarray(x, dtype=float)
        return float(curves.evaluate(x).sum()) + self.smooth_part(total, x)[0]


def combine(terms: Iterable[Term], x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
    """``(sum T(x), sum grad T(x), sum |grad T(x)|, sum Q_T)`` over bound terms."""
    value, gradient, magnitude, curvature = 0.0, np.zeros(len(x)), np.zeros(len(x)), 0.0
    for term in terms:
        value += float(term.value(x))
        part = np.asarray(term.gradient(x), dtype=float)
        gradient = gradient + part
        magnitude = magnitude + np.abs(part)
        curvature += float(term.curvature)
    return value, gradient, magnitude, curvature
