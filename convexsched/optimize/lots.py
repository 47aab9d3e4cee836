"""Lot rounding: a certified schedule turned into whole trading lots, with what that costs.

An exact schedule trades fractional shares (``x_i = 1,234.57``); a desk sends whole lots (100
shares on most equity venues). :func:`round_to_lots` rounds each slice down to whole lots and
hands the lots still missing, one each, to the buckets where one more lot costs least (impact
plus smoothing; the inventory term is left out of this choice), so the schedule's total stays
the same (up to one odd lot when it is not a multiple of the lot) and every slice stays within
its bucket's capacity. For a separable objective (A, B) this is the best whole-lot schedule next to the exact
one. The rounded schedule is no longer the certified optimum: :class:`LotRounding` reports its
objective against the exact one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InfeasibleError, InvalidInputError


@dataclass(frozen=True)
class LotRounding:
    """A schedule in whole lots and its cost against the exact schedule.

    Attributes
    ----------
    x : pandas.Series
        Shares per bucket, multiples of ``lot`` except at most one odd lot.
    lot : float
    odd_lot : float
        Shares left over when ``S`` is not a multiple of ``lot`` (in one bucket), else 0.
    exact_value, rounded_value : float
        ``F`` of the exact and the rounded schedule (the curves' currency).
    """

    x: pd.Series
    lot: float
    odd_lot: float
    exact_value: float
    rounded_value: float

    @property
    def extra_cost(self):
        """``F(rounded) - F(exact)`` (currency); >= 0 up to rounding, the exact one being optimal."""
        return self.rounded_value - self.exact_value

    def __str__(self):
        relative = self.extra_cost / abs(self.exact_value) if self.exact_value else 0.0
        odd = f", one odd lot of {self.odd_lot:,.6g} shares" if self.odd_lot else ""
        return (
            f"rounded to lots of {self.lot:,.6g} shares{odd}: F = {self.rounded_value:,.6g} against "
            f"{self.exact_value:,.6g} exact, rounding costs {self.extra_cost:,.6g} ({relative:.3%})"
        )


# Lot counts are floats: above 2**53 they are no longer whole numbers.
_MAX_LOTS = 2.0**53


def round_to_lots(curves, total, objective, x, lot):
    """Round schedule ``x`` to whole lots of ``lot`` shares, keeping ``sum x``.

    Parameters
    ----------
    curves : CostCurves
    total : float
        The budget ``S`` of the problem (``sum x``, or more under a ``<=`` budget); the objective's
        inventory term is measured from it.
    objective : Objective
        Prices the rounding (:attr:`LotRounding.extra_cost`).
    x : array_like or pandas.Series, shape (N,)
        The exact schedule, e.g. ``solve(...).x``.
    lot : float
        Lot size in shares (> 0).

    Returns
    -------
    LotRounding

    Raises
    ------
    InvalidInputError
        ``lot`` not positive and finite, so small that ``sum x / lot`` exceeds 2**53, or ``x``
        of the wrong length.
    InfeasibleError
        The buckets' capacities hold too few whole lots for ``sum x``.
    """
    lot = float(lot)
    if not (np.isfinite(lot) and lot > 0):
        raise InvalidInputError(f"lot must be a positive number of shares, got {lot}")
    exact = np.asarray(x, dtype=float)
    if exact.shape != (curves.n_buckets,):
        raise InvalidInputError(f"x must have {curves.n_buckets} entries, got shape {exact.shape}")
    executed = float(exact.sum())
    with np.errstate(over="ignore"):
        too_many = not executed / lot <= _MAX_LOTS
    if too_many:
        raise InvalidInputError(
            f"lot {lot!r} is too small for {executed:,.6g} shares: more lots than a float counts exactly "
            f"(2**53); use a lot of at least {executed / _MAX_LOTS:.3g} shares"
        )
    # A relative guard: 299.99999999 shares from a solver are 3 lots of 100, not 2.
    guard = 1e-9
    with np.errstate(over="ignore"):  # a huge capacity in tiny lots is room without limit
        room = np.floor(curves.capacity / lot + guard)
    units = np.minimum(np.floor(exact / lot + guard), room)
    wanted = int(np.floor(executed / lot + guard))
    missing = wanted - int(units.sum())
    spare = np.flatnonzero(units < room)
    if missing > len(spare):
        raise InfeasibleError(
            f"the buckets hold {int(room.sum())} whole lots of {lot:g} shares, {wanted} are needed",
            max_executable=float(room.sum() * lot),
        )
    rounded = units * lot
    if missing > 0:
        cheapest = spare[np.argsort(_step_cost(curves, objective, rounded, lot)[spare], kind="stable")[:missing]]
        rounded[cheapest] += lot
    odd = max(executed - rounded.sum(), 0.0)
    if odd > guard * max(executed, 1.0):
        fits = np.flatnonzero(curves.capacity - rounded >= odd)
        if not len(fits):
            raise InfeasibleError(f"no bucket has room for the odd lot of {odd:g} shares")
        rounded[fits[np.argmin(_step_cost(curves, objective, rounded, odd)[fits])]] += odd
    else:
        odd = 0.0
    index = curves.index if curves.index is not None else pd.RangeIndex(curves.n_buckets)
    return LotRounding(
        x=pd.Series(rounded, index=index, name="x"),
        lot=lot,
        odd_lot=odd,
        exact_value=objective.value(curves, total, exact),
        rounded_value=objective.value(curves, total, rounded),
    )


def _step_cost(curves, objective, x, step):
    """Impact plus smoothing cost of adding ``step`` shares to each bucket of ``x`` (inf past capacity)."""
    return curves.evaluate(x + step) - curves.evaluate(x) + objective.rho / 2 * ((x + step) ** 2 - x**2)
