"""The hindsight optimum: the cheapest schedule the day allowed, and how much of it a strategy caught.

With every bucket's realized book known (:meth:`BookExecutor.realized_curves`: the exact book
walk of the snapshot each slice walks, with the executor's tail beyond the displayed depth),
objective (A) (or (B)) is solved exactly over the whole day (``convexsched.optimize.weighted``) and
the schedule is executed through the same executor. With ``half_life = 0`` every strategy's
realized cost is ``sum_i g_i(x_i)`` on exactly these curves, so the hindsight (A) schedule is a
lower bound on every strategy that completes the order. With resilience (``half_life > 0``)
and in the event replay (:class:`convexsched.ReplayExecutor`, whose realized curves are the
tactic's cost per bucket without our footprint) costs depend on the path: the hindsight schedule
is then a **reference**, not a bound (``executor.hindsight_is_bound`` is False and the backtest
table says so in ``hindsight_bound``).

The **capture** of a strategy is the share of the gap between TWAP and the bound it closed:

.. math::

    \\text{capture} = \\frac{C_{\\mathrm{TWAP}} - C_{\\mathrm{strategy}}}{C_{\\mathrm{TWAP}} - C_{\\mathrm{hindsight}}}
    \\qquad (E15)

1 is the bound, 0 is TWAP, negative is worse than TWAP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidInputError
from ..optimize.objective import Objective
from ..optimize.weighted import WeightedBuckets, solve_weighted
from .executors import ExecutionRecord, Executor, execute_schedule

if TYPE_CHECKING:
    from .strategies import Context


class Hindsight:
    """The hindsight-optimal schedule of objective (A) or (B), executed like any strategy.

    It sees every bucket's book in advance: a bound to measure strategies against, not a strategy.

    Parameters
    ----------
    objective : Objective, optional
        (A) by default; (B) via ``Objective(rho=...)``. ``psi`` must be 0.
    """

    lookahead = True

    def __init__(self, objective: Objective | None = None) -> None:
        self.objective = Objective() if objective is None else objective
        if self.objective.psi != 0:
            raise InvalidInputError("the hindsight bound is for objectives (A) and (B): psi must be 0")
        self.name = f"hindsight {self.objective.kind}"

    def schedule(self, executor: Executor, total: float) -> tuple[np.ndarray, float]:
        """The hindsight schedule (shares per bucket) and its water level."""
        slopes, widths, gamma = executor.realized_curves()
        buckets = WeightedBuckets.build(slopes, widths, rho=self.objective.rho, gamma=gamma)
        solution = solve_weighted(buckets, total)
        return solution.y, solution.multiplier

    def execute(self, context: Context) -> ExecutionRecord:
        x, _ = self.schedule(context.executor, context.total)
        return execute_schedule(context.executor, x, self.name)


def capture(cost: ArrayLike, twap: ArrayLike, hindsight: ArrayLike) -> np.ndarray:
    """Capture (E15); NaN when TWAP is already at the bound (no gap to capture)."""
    gap = np.asarray(twap, dtype=float) - np.asarray(hindsight, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(gap) > 1e-12, (np.asarray(twap, dtype=float) - np.asarray(cost, dtype=float)) / gap, np.nan)
