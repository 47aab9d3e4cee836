"""``TrackProfile(profile, weight)``: ``weight/2 sum_i (x_i - S p_i)^2``, for VWAP-style schedules."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from ...errors import InvalidInputError
from .affine import Affine
from .base import Term, check_vector, check_weight, fit, window_of


@dataclass(frozen=True, eq=True)
class TrackProfile(Term):
    """Quadratic distance to a target volume profile: ``weight/2 sum_i (x_i - S p_i)^2``.

    ``p`` is normalized to sum to 1, so the target ``S p`` spreads the order like the profile
    (a volume forecast gives a VWAP-style schedule). Separable: ``curvature = weight`` and a
    linear part, both exact in the prox and the certificate. In a receding or scenario step the
    profile of the remaining buckets is normalized again over what is left.

    Parameters
    ----------
    profile : array_like of shape (N,)
        Nonnegative volume profile (any scale), not all zero.
    weight : float
        Currency per share squared, ``>= 0``.
    total : float, optional
        ``S``; set by :meth:`bind`.
    """

    profile: tuple[float, ...]
    weight: float
    total: float | None = None

    def __init__(self, profile: ArrayLike, weight: float, total: float | None = None) -> None:
        values = check_vector("profile", profile)
        if any(v < 0 for v in values) or not any(v > 0 for v in values):
            raise InvalidInputError("a profile must be >= 0 and not all zero")
        object.__setattr__(self, "profile", values)
        object.__setattr__(self, "weight", check_weight("TrackProfile weight", weight))
        object.__setattr__(self, "total", None if total is None else float(total))

    @property
    def curvature(self) -> float:  # type: ignore[override]
        return self.weight

    def target(self, n: int) -> np.ndarray:
        if self.total is None:
            raise InvalidInputError("TrackProfile needs S: call term.bind(total, n) first")
        profile = fit(self.profile, n, "the profile")
        mass = profile.sum()
        return self.total * profile / mass if mass > 0 else np.zeros(n)

    def value(self, x):
        x = np.asarray(x, dtype=float)
        gap = x - self.target(len(x))
        return 0.5 * self.weight * float(np.dot(gap, gap))

    def gradient(self, x):
        x = np.asarray(x, dtype=float)
        return self.weight * (x - self.target(len(x)))

    def expression(self, x):
        import cvxpy as cp

        return 0.5 * self.weight * cp.sum_squares(x - self.target(x.shape[0]))

    def formulate(self, x, unit=1.0):
        import cvxpy as cp

        # In units of `unit` shares the gap stays near 1, so conic solvers see a well-scaled cone.
        gap = x / unit - self.target(x.shape[0]) / unit
        return 0.5 * self.weight * unit**2 * cp.sum_squares(gap), []

    def lipschitz(self, n):
        return self.weight

    def affine(self, n):
        return Affine(np.full(n, self.weight), -self.weight * self.target(n))

    def bind(self, total, n):
        return replace(self, total=float(total)).checked(n)

    def checked(self, n):
        fit(self.profile, n, "the profile")
        return self

    def window(self, start, size):
        part = window_of(self.profile, start, size)
        if not any(v > 0 for v in part):
            return TrackProfile([1.0] * size, 0.0)  # nothing left to track
        return TrackProfile(part, self.weight)

    def scaled(self, factor):
        return TrackProfile(self.profile, self.weight * factor, self.total)
