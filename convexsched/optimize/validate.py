"""The one input check of the optimization stage (it imports no cvxpy).

Every entry point calls :func:`validate` once and hands the :class:`Order` it returns on:
``solve``, ``check_kkt``, ``build_problem`` and ``ScheduleProblem.update``, the receding and
scenario loops (once per run: their steps build orders from checked data), ``backtest`` and the
CLI (through those). The fast paths, the certificate (``kkt.certify``) and ``solve_order`` take
an ``Order`` and check nothing again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from ..errors import InfeasibleError, InvalidInputError
from .curves import CostCurves
from .objective import Objective
from .terms import Term

Sense = Literal["eq", "le"]
SENSES: tuple[str, ...] = get_args(Sense)


@dataclass(frozen=True)
class Order:
    """A checked problem: the curves, the order size ``S``, the objective and the budget's sense.

    Built by :func:`validate`; built directly only by the package's loops, from data a
    ``validate`` call of the same run has checked.

    Attributes
    ----------
    curves : CostCurves
    total : float
        ``S >= 0`` (``> 0`` where the caller asked for it), at most the total capacity under
        ``sense="eq"``.
    objective : Objective
    sense : "eq" | "le"
        ``sum x = S`` (E1), or ``sum x <= S`` (a receding-horizon window).
    """

    curves: CostCurves
    total: float
    objective: Objective
    sense: Sense = "eq"

    @property
    def share_unit(self) -> float:
        """The share unit: ``S``, or the largest bucket's capacity when ``S = 0``."""
        return share_unit_of(self.curves, self.total)


def check_total(total: object, *, positive: bool = False) -> float:
    """``S`` as a float: a finite number ``>= 0`` (``> 0`` when ``positive``).

    Raises
    ------
    InvalidInputError
        Not a number, not finite, negative, or zero when ``positive``.
    """
    try:
        value = float(total)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"the order size S must be a number, got {total!r}") from None
    if not math.isfinite(value):
        raise InvalidInputError(f"the order size S must be finite, got {value}")
    if value < 0 or (positive and value == 0):
        raise InvalidInputError(f"the order size S must be {'> 0' if positive else '>= 0'}, got {value}")
    return value


def validate(
    curves: CostCurves,
    total: float,
    objective: Objective | None = None,
    sense: str = "eq",
    *,
    positive: bool = False,
) -> Order:
    """Check a scheduling problem once and return it as an :class:`Order`.

    Parameters
    ----------
    curves : CostCurves
    total : float
        The order size ``S``.
    objective : Objective or Term, optional
        Default: (A) cost only. A term or a sum of terms is the cost plus those terms. Array
        weights and per-bucket term parameters must have one entry per bucket.
    sense : "eq" | "le"
    positive : bool
        Require ``S > 0`` (the execution loops: an empty order has no cost in basis points).

    Raises
    ------
    InvalidInputError
        ``curves`` is not a ``CostCurves``, ``objective`` not an ``Objective`` or a ``Term`` (or
        its weights or a term's parameters do not fit the buckets), ``S`` not a finite number ``>= 0``, ``sense`` neither "eq" nor
        "le".
    InfeasibleError
        ``S`` exceeds the total capacity under ``sum x = S``; the message and
        ``error.max_executable`` name the maximum executable.
    """
    if not isinstance(curves, CostCurves):
        raise InvalidInputError(f"curves must be a CostCurves, got {type(curves).__name__}")
    objective = as_objective(objective)
    if objective.psi > 0:
        objective = objective.aligned(curves.index)  # a Series of weights by label, not by position
    value = check_total(total, positive=positive)
    if objective.terms or objective.psi > 0:
        # Per-bucket parameters of another length raise here (smoothing has none to check).
        objective.bound(value, curves.n_buckets)
    if sense not in SENSES:
        raise InvalidInputError(f"sense must be 'eq' or 'le', got {sense!r}")
    capacity = curves.total_capacity
    if sense == "eq" and value > capacity * (1 + 1e-12):
        raise InfeasibleError(
            f"S = {value:.6g} exceeds the total capacity of the {curves.n_buckets} buckets; "
            f"the maximum executable is {capacity:.6g}",
            max_executable=capacity,
        )
    return Order(curves, value, objective, sense)  # type: ignore[arg-type]


def as_objective(objective: object) -> Objective:
    """An :class:`Objective` from ``None`` (cost only), a term, a sum of terms or an objective.

    Raises
    ------
    InvalidInputError
        Anything else.
    """
    if objective is None:
        return Objective()
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, Term):
        return Objective() + objective
    raise InvalidInputError(f"objective must be an Objective or a Term, got {type(objective).__name__}")


def share_unit_of(curves: CostCurves, total: float) -> float:
    """The share unit: ``S``, or the largest bucket's capacity when ``S = 0``."""
    return total if total > 0 else max(float(curves.capacity.max()), 1.0)
