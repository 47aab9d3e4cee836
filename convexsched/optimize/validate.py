"""Input checks shared by every path (fast, cvxpy, certificate), without importing cvxpy.

``solve`` validates once and hands the checked budget on, so the fast path and its certificate
never need the cvxpy modules.
"""

from __future__ import annotations

import numpy as np

from ..errors import InfeasibleError, InvalidInputError

BUDGETS = ("eq", "le")


def validate(curves, total, budget):
    """Check the budget against the curves; return it as a float.

    Raises
    ------
    InvalidInputError
        ``S`` is not a finite number ``>= 0``, or ``budget`` is not "eq" or "le".
    InfeasibleError
        ``S`` exceeds the total capacity under ``sum x = S`` (names the maximum executable).
    """
    try:
        total = float(total)
    except (TypeError, ValueError):
        raise InvalidInputError(f"the budget S must be a number, got {total!r}") from None
    if not np.isfinite(total):
        raise InvalidInputError(f"the budget S must be finite, got {total}")
    if total < 0:
        raise InvalidInputError(f"the budget S must be >= 0, got {total}")
    if budget not in BUDGETS:
        raise InvalidInputError(f"budget must be 'eq' or 'le', got {budget!r}")
    capacity = float(curves.capacity.sum())
    if budget == "eq" and total > capacity * (1 + 1e-12):
        raise InfeasibleError(
            f"S = {total:.6g} exceeds the total capacity of the {curves.n_buckets} buckets; "
            f"the maximum executable is {capacity:.6g}",
            max_executable=capacity,
        )
    return total


def share_unit_of(curves, total):
    """The share unit: ``S``, or the largest bucket's capacity when ``S = 0``."""
    return total if total > 0 else max(float(curves.capacity.max()), 1.0)
