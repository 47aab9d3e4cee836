"""The base class of an objective term, and the scalar multiple of a term.

A term ``T`` adds ``T(x)`` to the objective ``F(x) = sum_i g_i(x_i) + sum_T T(x)`` (E9), where
``x`` is the schedule in shares. A user subclass implements three methods and nothing else:

* ``value(x)``: ``T(x)`` in currency (a float),
* ``gradient(x)``: ``grad T(x)`` (a subgradient where ``T`` is not smooth), shape ``(N,)``,
* ``expression(x)``: the same function as a cvxpy expression of the cvxpy schedule ``x``.

``T`` must be convex. With that, ``solve``, ``build_problem``, ``check_kkt``, the receding and
scenario loops and ``backtest`` take it: cvxpy states it through ``expression``, the fast path
uses ``gradient`` (accelerated proximal gradient, ``convexsched.optimize.proximal``) and the
certificate linearizes it at ``x`` (E25).

Optional hints (what the dispatcher may exploit), all with safe defaults:

* ``curvature``: a uniform ``Q >= 0`` such that ``T - Q/2 |x|^2`` is still convex (a separable
  quadratic keeps it exact in the prox and the certificate); default 0.
* ``smooth``: ``gradient`` is a true gradient (Lipschitz); default True. A nonsmooth term
  (``False``) makes ``method="fast"`` hand the problem to cvxpy.
* ``lipschitz(n)``: an upper bound on the Lipschitz constant of ``gradient`` over ``n`` buckets
  (default ``None``: found by backtracking).
* ``affine(n)``: the gradient as an ``Affine`` map (``convexsched.optimize.terms.affine``; a
  quadratic term), or ``None`` (the default). When every term of an objective gives one, the
  accelerated proximal gradient runs compiled.
* ``solve_hessian(free, r)``: ``H_FF^{-1} r``, the term's Hessian restricted to the buckets
  ``free`` (sorted indices) solved against ``r``, or ``None`` (the default) when the term has no
  cheap solve. The fast path's active-set polish uses it as a preconditioner (the transient
  term's restricted kernel has a tridiagonal inverse, an O(N) solve).
* ``formulate(x, unit)``: ``(expression, constraints)``, a sparser statement with auxiliary
  variables for :func:`~convexsched.build_problem` (default: ``(expression(x), [])``);
  ``unit`` is the share unit the solver's variables are scaled by (auxiliary variables in that
  unit keep the solver's numbers near 1).
* ``bind(total, n)``: the term for a problem of ``n`` buckets and order size ``total`` (terms on
  the remaining inventory need ``S``); default ``self``.
* ``after(executed)``: the term for the buckets after slices already traded (a term with
  memory, like the transient impact, adds what they left); default ``self``.
* ``window(start, size)``: the term on buckets ``start .. start + size - 1`` of the day, for a
  receding or scenario step (a per-bucket parameter is sliced, and padded with zeros past the
  day's end); default ``self`` (a term that does not depend on the bucket's position).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import InvalidInputError


def check_weight(name: str, value: object) -> float:
    """A finite number ``>= 0``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number) or number < 0:
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {number}")
    return number


def check_vector(name: str, value: object) -> tuple[float, ...]:
    """A 1-D vector of finite numbers, stored as a tuple (terms are immutable and hashable)."""
    array = np.asarray(value, dtype=float)
    if array.ndim != 1 or not np.isfinite(array).all():
        raise InvalidInputError(f"{name} must be a 1-D array of finite numbers")
    return tuple(array.tolist())


def fit(values: tuple[float, ...], n: int, name: str) -> np.ndarray:
    """A per-bucket parameter for ``n`` buckets (it must have exactly ``n`` entries)."""
    array = np.asarray(values, dtype=float)
    if array.shape != (n,):
        raise InvalidInputError(f"{name} has {array.size} entries, the problem has {n} buckets")
    return array


def window_of(values: tuple[float, ...], start: int, size: int) -> tuple[float, ...]:
    """``values[start:start + size]``, padded with zeros past the end."""
    part = list(values[start : start + size])
    return tuple(part + [0.0] * (size - len(part)))


class Term:
    """A convex term of the scheduling objective (see the module docstring).

    Terms compose: ``term + term``, ``Objective + term`` and ``c * term`` (``c >= 0``).
    """

    curvature: float = 0.0
    smooth: bool = True

    def value(self, x: np.ndarray) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement value(x)")

    def gradient(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement gradient(x)")

    def expression(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement expression(x)")

    def lipschitz(self, n: int) -> float | None:
        return None

    def formulate(self, x: Any, unit: float = 1.0) -> tuple[Any, list]:
        return self.expression(x), []

    def solve_hessian(self, free: np.ndarray, r: np.ndarray) -> np.ndarray | None:
        return None

    def affine(self, n: int) -> Any:
        return None

    def bind(self, total: float, n: int) -> Term:
        return self

    def window(self, start: int, size: int) -> Term:
        return self

    def after(self, executed: Any) -> Term:
        """The term for buckets after the slices ``executed`` (oldest first).

        A term without memory of earlier slices returns itself.
        """
        return self

    @property
    def name(self) -> str:
        """The label used in ``Objective.kind`` and tables."""
        return type(self).__name__

    # ------------------------------------------------------------------ algebra
    def __add__(self, other: object) -> Any:
        from ..objective import Objective

        return Objective() + self + other

    def __radd__(self, other: object) -> Any:
        if other == 0:  # sum([...]) starts from 0
            return self.__add__(None)
        return self.__add__(other)

    def __mul__(self, factor: object) -> Term:
        return self.scaled(check_weight("a term's factor", factor))

    __rmul__ = __mul__

    def scaled(self, factor: float) -> Term:
        """``factor * self``; built-in terms scale their own weight."""
        return Scaled(self, factor)


class Scaled(Term):
    """``factor * term`` for a term that does not scale its own weight."""

    def __init__(self, term: Term, factor: float) -> None:
        self.term, self.factor = term, factor
        self.curvature = factor * term.curvature
        self.smooth = term.smooth

    def value(self, x):
        return self.factor * self.term.value(x)

    def gradient(self, x):
        return self.factor * np.asarray(self.term.gradient(x), dtype=float)

    def expression(self, x):
        return self.factor * self.term.expression(x)

    def lipschitz(self, n):
        bound = self.term.lipschitz(n)
        return None if bound is None else self.factor * bound

    def formulate(self, x, unit=1.0):
        expression, constraints = self.term.formulate(x, unit)
        return self.factor * expression, constraints

    def affine(self, n):
        parts = self.term.affine(n)
        return None if parts is None else parts.scaled(self.factor)

    def solve_hessian(self, free, r):
        solved = self.term.solve_hessian(free, r)
        return None if solved is None or self.factor == 0 else solved / self.factor

    def bind(self, total, n):
        return Scaled(self.term.bind(total, n), self.factor)

    def window(self, start, size):
        return Scaled(self.term.window(start, size), self.factor)

    def after(self, executed):
        return Scaled(self.term.after(executed), self.factor)

    @property
    def name(self):
        return self.term.name

    def __eq__(self, other):
        return isinstance(other, Scaled) and other.term == self.term and other.factor == self.factor

    def __hash__(self):
        return hash((Scaled, self.term, self.factor))

    def __repr__(self):
        return f"{self.factor!r} * {self.term!r}"
