"""The strategies a backtest compares: model-free baselines, static plans, receding horizons.

Every strategy has a ``name`` and ``execute(context) -> ExecutionRecord``; static ones plan once
at the open and then execute through :func:`convexsched.execution.backtest.execute_schedule`. Nothing
looks ahead: the model's morning view is :meth:`LiveCurves.static` (the arrival state plus its
forecast).

* :class:`TWAP`: ``x_i = S / N``.
* :class:`DepthProportional` (VWAP-like): ``x_i`` proportional to the forecast displayed depth
  (the curves' capacities ``c_i``) from the morning view.
* :class:`AlmgrenChriss`: the closed-form trajectory ``R(t) = S sinh(kappa (T - t)) /
  sinh(kappa T)``, ``x_i = R_{i-1} - R_i``, with urgency ``kappa T = T sqrt(lambda_AC sigma^2
  / eta_tilde)``; ``kappa T -> 0`` is TWAP.
* :class:`StaticPlan`: the morning solve of (E2), (E4) or (E6).
* :class:`RecedingStrategy`: a :class:`convexsched.RecedingHorizon` on the model's curves
  (certainty-equivalent: one forecast path).
* :class:`ScenarioStrategy`: a :class:`convexsched.ScenarioHorizon`: the visible book priced exactly
  and the future as a pool of recent books. Needs no model.
* :class:`convexsched.Hindsight`: the bound every backtest reports (it sees the whole day).

Objective scales for the defaults (:func:`default_objectives`): ``rho`` is the curves' median
curvature ``(s_last - s_first) / c_i``, so the smoothing is as strong as the impact's own
convexity; ``psi = 2 lambda_A / (S N)``, which makes the marginal inventory risk at the open,
``psi sum_i w_i R_i``, about the water level ``lambda_A`` of plan (A). Model-free strategies
take the same scales from the arrival book (:func:`arrival_objectives`), the only book seen at
the open.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import InvalidInputError
from ..optimize.curves import CostCurves
from ..optimize.objective import Objective
from ..optimize.solve import solve
from ..optimize.terms import Term
from ..optimize.validate import as_objective
from .executors import ExecutionRecord, Executor, execute_schedule
from .receding import CurveSource, RecedingHorizon
from .scenario import ScenarioHorizon


@dataclass
class Context:
    """What every strategy sees: the book executor, the order, the cost model."""

    executor: Executor
    total: float
    curves: CurveSource | None = None
    progress: bool = False

    def morning(self, strategy: str) -> CostCurves:
        if self.curves is None:
            raise InvalidInputError(f"strategy {strategy!r} needs a cost model: pass model= to backtest")
        return self.curves.static()


class Strategy(Protocol):
    """What :func:`convexsched.backtest` runs: a ``name`` and ``execute(context)``."""

    name: str

    def execute(self, context: Context) -> ExecutionRecord: ...


def default_objectives(curves: CostCurves, total: float) -> dict[str, Objective]:
    """Objectives (A), (B), (C) scaled to the curves (module docstring)."""
    real = curves.widths > 0
    first = np.where(real, curves.slopes, np.inf).min(axis=1)
    last = np.where(real, curves.slopes, -np.inf).max(axis=1)
    used = curves.capacity > 0
    rho = float(np.median((last[used] - first[used]) / curves.capacity[used]))
    level = solve(curves, total).multiplier
    psi = 2.0 * max(level, 0.0) / (total * curves.n_buckets)
    return {"A": Objective(), "B": Objective(rho=rho), "C": Objective(psi=psi)}


def arrival_objectives(executor: Executor, total: float) -> dict[str, Objective]:
    """Objectives (A), (B), (C) scaled to the arrival book, as :func:`default_objectives` does.

    The curve is the book walk of the first usable snapshot, ``rho`` its curvature
    ``(d_last - d_0) / D`` and ``lambda_A`` its marginal cost at the even pace ``S / N``
    (:func:`objectives_for` on the executor's realized curves).
    """
    first = next(i for i in range(len(executor)) if executor.usable(i))
    slopes, widths, _ = executor.realized_curves()
    return objectives_for(slopes, widths, total, first)


def objectives_for(slopes: np.ndarray, widths: np.ndarray, total: float, first: int | None = None) -> dict[str, Objective]:
    """:func:`arrival_objectives` from a day's curves, shape (N, L).

    Bucket ``first`` holds the arrival book (default: the first bucket with a book; buckets
    without one have zero widths).
    """
    n = len(widths)
    if first is None:
        first = int(np.flatnonzero(widths.sum(axis=1) > 0)[0])
    slopes, widths = slopes[first], widths[first]
    depth = float(widths.sum())
    rho = float((slopes[-1] - slopes[0]) / depth)
    reached = np.cumsum(widths) >= total / n
    level = float(slopes[int(np.argmax(reached))] if reached.any() else slopes[-1])
    psi = 2.0 * max(level, 0.0) / (total * n)
    return {"A": Objective(), "B": Objective(rho=rho), "C": Objective(psi=psi)}


class TWAP:
    """Equal slices, ``x_i = S / N``."""

    name = "TWAP"

    def execute(self, context: Context) -> ExecutionRecord:
        n = len(context.executor)
        curves = context.curves.static() if context.curves is not None else None
        return execute_schedule(context.executor, np.full(n, context.total / n), self.name, curves)


class DepthProportional:
    """VWAP-like: slices proportional to the morning forecast of each bucket's depth."""

    name = "depth-proportional"

    def execute(self, context: Context) -> ExecutionRecord:
        curves = context.morning(self.name)
        share = curves.capacity / curves.capacity.sum()
        return execute_schedule(context.executor, context.total * share, self.name, curves)


class AlmgrenChriss:
    """Closed-form Almgren-Chriss trajectory with urgency ``kappa T`` (default 2)."""

    def __init__(self, urgency: float = 2.0) -> None:
        if not urgency > 0:
            raise InvalidInputError(f"urgency kappa*T must be > 0, got {urgency}")
        self.urgency = float(urgency)
        self.name = f"Almgren-Chriss (kT={self.urgency:g})"

    def execute(self, context: Context) -> ExecutionRecord:
        n = len(context.executor)
        t = np.arange(n + 1) / n
        inventory = context.total * np.sinh(self.urgency * (1 - t)) / np.sinh(self.urgency)
        curves = context.curves.static() if context.curves is not None else None
        return execute_schedule(context.executor, -np.diff(inventory), self.name, curves)


class StaticPlan:
    """The morning plan of one objective, executed as planned.

    Parameters
    ----------
    kind : {"A", "B", "C"}, Objective or Term
        A default-scaled objective (:func:`default_objectives`) or an explicit one.
    """

    def __init__(self, kind: str | Objective | Term = "A") -> None:
        self.kind = kind
        label = kind if isinstance(kind, str) else as_objective(kind).kind
        self.name = f"static {label}"

    def execute(self, context: Context) -> ExecutionRecord:
        curves = context.morning(self.name)
        objective = _objective(self.kind, curves, context.total)
        schedule = solve(curves, context.total, objective)
        return execute_schedule(context.executor, np.asarray(schedule.x, float), self.name, curves)


class RecedingStrategy:
    """A :class:`RecedingHorizon` run on the context's book and live curves.

    Parameters
    ----------
    kind : {"A", "B", "C"}, Objective or Term
    **settings
        Passed to :class:`RecedingHorizon` (``horizon``, ``method``, ``cost_to_go``, ...).
    """

    def __init__(self, kind: str | Objective | Term = "A", name: str | None = None, **settings: Any) -> None:
        self.kind, self.settings = kind, settings
        probe = RecedingHorizon(objective=as_objective(kind) if isinstance(kind, (Objective, Term)) else None, **settings)
        label = kind if isinstance(kind, str) else as_objective(kind).kind
        self.name = name or probe.name.replace(f"RH {probe.objective.kind}", f"RH {label}", 1)

    def execute(self, context: Context) -> ExecutionRecord:
        curves = context.morning(self.name)
        objective = _objective(self.kind, curves, context.total)
        planner = RecedingHorizon(objective=objective, progress=context.progress, **self.settings)
        record = planner.run(context.executor, context.total, context.curves)
        record.name = self.name
        return record


class ScenarioStrategy:
    """A :class:`ScenarioHorizon` with (A), (B) or (C) scaled to the arrival book.

    Parameters
    ----------
    kind : {"A", "B", "C"}, Objective or Term
    name : str, optional
    **settings
        Passed to :class:`ScenarioHorizon` (``pool``, ``warmup``, ``pace_cap``, ...).
    """

    lookahead = False

    def __init__(self, kind: str | Objective | Term = "A", name: str | None = None, **settings: Any) -> None:
        self.kind, self.settings = kind, settings
        probe = ScenarioHorizon(objective=as_objective(kind) if isinstance(kind, (Objective, Term)) else None, **settings)
        label = kind if isinstance(kind, str) else as_objective(kind).kind
        self.name = name or probe.name.replace(f"scenario {probe.objective.kind}", f"scenario {label}", 1)

    def execute(self, context: Context) -> ExecutionRecord:
        objective = _objective(self.kind, None, context.total, context.executor)
        record = ScenarioHorizon(objective, progress=context.progress, **self.settings).run(context.executor, context.total)
        record.name = self.name
        return record


def _objective(kind, curves, total, executor=None):
    if isinstance(kind, (Objective, Term)):
        return as_objective(kind)
    objectives = default_objectives(curves, total) if curves is not None else arrival_objectives(executor, total)
    if kind not in objectives:
        raise InvalidInputError(f"kind must be 'A', 'B', 'C', an Objective or a Term, got {kind!r}")
    return objectives[kind]


#: The strategy the project recommends, marked ``default`` in every backtest table. Chosen before
#: the event-level benchmark's 30 SSE cases were run (``benchmarks/backtest_events.py``), on the
#: evidence of the earlier event study: smoothing (B) was the variant robust to sliced children.
RECOMMENDED = "scenario B"


def default_strategies(with_model: bool = True) -> list[Strategy]:
    """The comparison of the backtest: baselines, scenario horizons, static plans and receding horizons."""
    baselines: list[Strategy] = [TWAP(), AlmgrenChriss(), ScenarioStrategy("A"), ScenarioStrategy("B"), ScenarioStrategy("C")]
    if not with_model:
        return baselines
    with_curves: list[Strategy] = [
        DepthProportional(),
        StaticPlan("A"),
        StaticPlan("B"),
        StaticPlan("C"),
        RecedingStrategy("A", horizon=30),
        RecedingStrategy("A", horizon="all"),
        RecedingStrategy("B", horizon=30),
        RecedingStrategy("C", horizon=30),
        RecedingStrategy("A", horizon=30, method="cvxpy"),
    ]
    return baselines + with_curves


def strategies_by_name(names: Iterable[str], with_model: bool = True) -> list[Strategy]:
    """The strategies of :func:`default_strategies` called ``names``, in that order.

    Names are what travels (to a Dask worker, on a command line); this is the one lookup.

    Raises
    ------
    InvalidInputError
        A name is not among them (the message lists those available).
    """
    available = {strategy.name: strategy for strategy in default_strategies(with_model=with_model)}
    names = list(names)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise InvalidInputError(f"unknown strategies {unknown}; available: {list(available)}")
    return [available[name] for name in names]


class Receding(RecedingStrategy):
    """Deprecated name of :class:`RecedingStrategy` (removed in 0.4)."""

    def __init__(self, *args, **kwargs):
        warnings.warn("strategies.Receding is deprecated; use RecedingStrategy", FutureWarning, stacklevel=2)
        super().__init__(*args, **kwargs)


class Scenario(ScenarioStrategy):
    """Deprecated name of :class:`ScenarioStrategy` (removed in 0.4)."""

    def __init__(self, *args, **kwargs):
        warnings.warn("strategies.Scenario is deprecated; use ScenarioStrategy", FutureWarning, stacklevel=2)
        super().__init__(*args, **kwargs)
