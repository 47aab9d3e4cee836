"""Receding-horizon execution (the window (E8)) that cannot defer the order to the end.

At bucket ``i`` with ``S_rem`` shares left, the planner re-plans a window ``j = i .. i+H-1`` from
the live state and executes only ``x_i``:

.. math::

    \\min_{x} \\sum_{j=i}^{i+H-1} \\Big[\\hat g_j(x_j) + \\frac{\\rho}{2} x_j^2\\Big]
    \\quad \\text{s.t.} \\quad \\sum_{j=i}^{i+H-1} x_j \\le S_{\\mathrm{rem}}, \\; x_j \\ge 0, \\qquad (E8)

with ``x_N := S_rem`` at the last bucket. Taken literally this defers everything: trading now
costs something, waiting costs nothing, so every window's optimum is ``x = 0`` and the whole
order lands in the last bucket (``cost_to_go=None`` keeps this variant so the trap can be shown).
The window has to price what it leaves behind. With ``r`` the inventory left after the window,

.. math::

    V_i(r) = \\min \\Big\\{ \\sum_{j \\ge i+H} \\hat g_j(x_j) : \\sum_{j \\ge i+H} x_j = r,
    \\; 0 \\le x_j \\le c_j \\Big\\}

is the exact cost-to-go (E11) of objective (A): the inf-convolution of the later curves, i.e. all
their segments sorted by slope, a convex piecewise-linear curve whose capacity is the later
buckets' total capacity. Appending ``V_i`` as one pseudo-bucket and solving the window with
``sum x = S_rem`` (``budget="eq"``) prices the future exactly *and* bounds the inventory left
by what the later buckets can absorb (feasibility), so the existing solvers run unchanged.

Variants (``cost_to_go``)
-------------------------
``"exact"``
    The pseudo-bucket ``V_i`` above, from the forecast curves of the later buckets. Its
    segments are merged into at most ``tail_segments`` chords between its own breakpoints
    (half spread evenly over capacity, half over the slope range): an upper bound exact at
    those points, which keeps the window's size fixed (and the cvxpy path's DPP shape).
``"lambda"``
    A linear pseudo-bucket at the static morning plan's water level ``lambda`` with the later
    buckets' total capacity: the simplest tail, cheaper, not adaptive.
``None``
    The literal window (E8), ``sum x <= S_rem``: demonstrates the trap.
``horizon="all"``
    Shrinking horizon: re-plan the whole rest of the day every bucket with the exact
    objective. No cost-to-go approximation, no myopia.

Objectives (B) and (C) in a window. ``rho/2 x^2`` cannot sit on the pseudo-bucket (that would
charge the whole leftover as one slice), so with a tail the smoothing term is folded into the
curves: on every grid segment ``[b_{k-1}, b_k]`` the chord of ``rho/2 x^2`` adds
``rho (b_{k-1} + b_k) / 2`` to the slope. That is exact at the breakpoints (error at most
``rho w_k^2 / 8`` inside a segment of width ``w_k``) and makes ``V_i`` the exact cost-to-go of
the chorded (B) too. The inventory term ``psi/2 w_j R_j^2`` of (C) is kept on the window's
buckets (day weights ``w_j``, so it still pushes trading forward) but the pseudo-bucket prices
only the tail's impact, not its inventory risk: the window under-weights risk relative to the
full (C) and trades somewhat later. The shrinking horizon is exact for every objective.

Default: ``horizon=30`` with ``cost_to_go="exact"``. With (A) and a tail forecast from the same
live state, it has the same optimum as the shrinking horizon at a fixed problem size, which
matters for the cvxpy path (31 rows instead of up to N); see ``benchmarks/results/backtest.md``
for the comparison on real books.

The cvxpy path compiles one DPP problem per run and updates its parameters: windows that run
past the session end are **padded** with zero-capacity buckets (and zero risk weights) so ``N``
and ``K`` never change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

import numpy as np
import pandas as pd

from .._deprecated import renamed
from ..data.features import FORECAST_COLUMNS, RELATIVE_COLUMNS, SIDE_FEATURES, book_features, side_features
from ..errors import InvalidInputError
from ..model.convexify import convex_slopes
from ..optimize.curves import CostCurves
from ..optimize.objective import Objective
from ..optimize.solve import solve_order
from ..optimize.validate import Order, as_objective, validate
from .executors import ExecutionRecord, Executor, ModelExecutor, Trace, as_executor, progress_bar

if TYPE_CHECKING:
    from ..data.book import Book
    from ..model.forecast import StateForecast
    from ..model.oracle import ImpactOracle

COST_TO_GO = ("exact", "lambda", None)


@runtime_checkable
class CurveSource(Protocol):
    """Where a receding-horizon loop gets its curves (:class:`LiveCurves`, or fixed curves).

    ``source(i)`` is the view at the start of bucket ``i`` of buckets ``i .. N-1``, as
    :class:`CostCurves` (the one form the loop reads); it may use what is known by then and
    nothing later. ``static()`` is the morning view of the whole day.
    """

    index: pd.Index

    def __len__(self) -> int: ...

    def __call__(self, i: int) -> CostCurves: ...

    def static(self) -> CostCurves: ...


#: What the loops accept as a cost model.
Model = Union["ImpactOracle", CurveSource, CostCurves]


def curve_source(model: Model, executor: Executor, forecast: StateForecast | None = None) -> CurveSource:
    """The curve source of a cost model on ``executor``'s buckets.

    An impact oracle (anything with ``predict``) is wrapped in :class:`LiveCurves` with
    ``forecast``; a :class:`CurveSource` (e.g. live curves shared between runs, cached per
    bucket) is used as is; fixed :class:`CostCurves` are a static state, every step seeing the
    morning's curves.
    """
    if isinstance(model, CostCurves):
        return _StaticCurves(model.with_index(executor.index) if len(model) == len(executor) else model)
    if isinstance(model, CurveSource):
        return model
    if not hasattr(model, "predict"):
        raise InvalidInputError(
            f"the model must be an impact oracle (with predict), a curve source or CostCurves; got {type(model).__name__}"
        )
    return LiveCurves(executor, model, forecast)


# Traded-side depths scale with the depth profile, the spread in ticks with the spread's.
_SIDE_DEPTHS = ("side_depth", "touch", "side_depth_3", "side_depth_5")


class LiveCurves:
    """Oracle cost curves of the buckets still ahead, from the book state seen so far.

    The live state of bucket ``i`` is the state feature vector (E17) of the snapshot the bucket trades
    against (the first usable one, :class:`convexsched.BookExecutor`): known when the
    slice is sent, so nothing looks ahead. Later buckets get a forecast of that state:

    * no ``forecast``: persistence, every later bucket looks like the live one;
    * ``relative=True`` (default): ``z_j = z_i p(tau_j) / p(tau_i)`` for spread, depth and
      volatility (imbalance and mid persist), with ``p`` the :class:`StateForecast` profile.
      Only the profile's *shape* is used, so it may be fitted on other stocks (normalized);
    * ``relative=False``: :meth:`StateForecast.predict` with the live state (profile plus a
      decaying anomaly, absolute levels: fit it on the same instrument).

    Bucket ``j``'s capacity is ``capacity`` times its forecast displayed depth on the traded
    side (the live snapshot's side depth, scaled like the total depth). The oracle is evaluated
    on the grid ``u c_j`` for ``u`` in ``linspace(0, 1, grid)``: a shared relative grid keeps
    ``convexify``'s shared-grid contract and rescaling the axis keeps convexity.

    Parameters
    ----------
    executor : BookExecutor or ReplayExecutor
        An executor with a snapshot ``book``, the ``rows`` of its buckets' snapshots, ``depth`` and ``side``.
    oracle : regressor
        ``predict(X)`` of total costs from columns ``size, spread, depth, imbalance, volatility,
        hour_of_day, mid`` (an :class:`ImpactOracle`, or a baseline).
    forecast : StateForecast, optional
    relative : bool
    capacity : float
        Fraction of the displayed side depth a bucket may take (> 0).
    grid : int
        Points of the size grid (>= 2).
    convexify : str
        Convexifier (:func:`convexsched.convexify`).
    """

    def __init__(
        self,
        executor: Any,
        oracle: ImpactOracle,
        forecast: StateForecast | None = None,
        *,
        relative: bool = True,
        capacity: float = 1.0,
        grid: int = 33,
        convexify: str = "slopes-isotonic",
    ) -> None:
        if not capacity > 0:
            raise InvalidInputError(f"capacity must be > 0, got {capacity}")
        if int(grid) < 2:
            raise InvalidInputError(f"grid needs at least 2 points, got {grid}")
        self.executor, self.oracle, self.forecast = executor, oracle, forecast
        self.relative, self.capacity, self.grid, self.convexify = relative, float(capacity), int(grid), convexify
        self.index = executor.index
        features = book_features(executor.book)
        rows = np.maximum(executor.rows, 0)
        states = features.iloc[rows][list(FORECAST_COLUMNS)].set_axis(self.index)
        states["side_depth"] = executor.depth.to_numpy()
        sides = side_features(executor.book, executor.side).iloc[rows].set_axis(self.index)
        states[list(SIDE_FEATURES)] = sides.to_numpy()
        # A bucket without a usable snapshot keeps the last state seen (the first volatility
        # of the day is undefined: 0, a quiet minute).
        states[executor.rows < 0] = np.nan
        self.states = states.ffill().bfill().fillna({"volatility": 0.0})
        self._values = self.states.to_numpy(dtype=float)
        self._columns = {name: k for k, name in enumerate(self.states.columns)}
        self._hours = np.asarray(self.index.hour)
        self._profile: np.ndarray | None = None
        self._cache: dict[int, CostCurves] = {}

    def __len__(self) -> int:
        return len(self.index)

    def __call__(self, i: int) -> CostCurves:
        """Curves of buckets ``i .. N-1`` as seen at the start of bucket ``i`` (cached)."""
        if i not in self._cache:
            self._cache[i] = self._curves(i)
        return self._cache[i]

    def _forecast_states(self, i):
        """States of buckets ``i .. N-1`` as seen at ``i``: an array with ``self.states``' columns."""
        columns = self._columns
        live = self._values[i]
        frame = np.repeat(live[None, :], len(self.index) - i, axis=0)
        if self.forecast is None:
            return frame
        if self.relative:
            if self._profile is None:
                self._profile = self.forecast.profile_at(self.index)[list(RELATIVE_COLUMNS)].to_numpy()
            profile = self._profile[i:]
            base = profile[0]
            ratio = np.divide(profile, base, out=np.ones_like(profile), where=base > 0)
            frame[:, [columns[c] for c in RELATIVE_COLUMNS]] *= ratio
            frame[:, [columns[c] for c in _SIDE_DEPTHS]] *= ratio[:, 1:2]
            frame[:, columns["spread_ticks"]] *= ratio[:, 0]
            return frame
        ahead = self.index[i:]
        if len(ahead) > 1:
            predicted = self.forecast.predict(ahead[1:], self.states.iloc[i].rename(self.index[i]))
            frame[1:, [columns[c] for c in FORECAST_COLUMNS]] = predicted[list(FORECAST_COLUMNS)].to_numpy()
            scale = frame[:, columns["depth"]] / live[columns["depth"]]
            frame[:, [columns[c] for c in _SIDE_DEPTHS]] = live[[columns[c] for c in _SIDE_DEPTHS]] * scale[:, None]
            frame[:, columns["spread_ticks"]] = (
                live[columns["spread_ticks"]] * frame[:, columns["spread"]] / live[columns["spread"]]
            )
        return frame

    def _curves(self, i):
        states = self._forecast_states(i)
        index = self.index[i:]
        cap = self.capacity * states[:, self._columns["side_depth"]]
        u = np.linspace(0.0, 1.0, self.grid)
        n, g = len(states), self.grid - 1
        # One design frame per step, built from arrays: the oracle's columns by name. Size 0
        # is not asked for: g(0) = 0 whatever the oracle says.
        rows = {"size": (cap[:, None] * u[1:]).ravel()}
        rows.update({name: np.repeat(states[:, k], g) for name, k in self._columns.items()})
        rows["hour_of_day"] = np.repeat(self._hours[i:], g)
        # Trusted arrays go straight to an oracle that takes them; others get a DataFrame.
        predict = getattr(self.oracle, "predict_columns", None)
        values = np.zeros((n, self.grid))
        values[:, 1:] = (predict(rows) if predict is not None else self.oracle.predict(pd.DataFrame(rows))).reshape(n, g)
        slopes = convex_slopes(u, values, method=self.convexify)
        # Back from the unit grid to shares: x = u c_j.
        return CostCurves(slopes / cap[:, None], np.diff(u) * cap[:, None], index=index)

    def static(self) -> CostCurves:
        """The morning view: curves of the whole day from the arrival state."""
        return self(0)


class _StaticCurves:
    """A fixed forecast: bucket ``i`` sees the same curves as the morning (static state)."""

    def __init__(self, curves: CostCurves) -> None:
        self.index = curves.index if curves.index is not None else pd.RangeIndex(curves.n_buckets)
        self.curves = curves.with_index(self.index)

    def __len__(self) -> int:
        return self.curves.n_buckets

    def __call__(self, i: int) -> CostCurves:
        return self.curves[i:]

    def static(self) -> CostCurves:
        return self.curves


def _first_cost(slopes, widths, x):
    """``g_i(x)`` of a bucket's row (``x`` within its capacity)."""
    fills = np.clip(x - np.cumsum(widths) + widths, 0.0, widths)
    return float(slopes @ fills)


def _chord_smoothing(slopes, widths, rho):
    """Slopes of ``g + rho/2 x^2`` with the quadratic replaced by its chords on the grid.

    Rows stay canonical (:class:`CostCurves`): a zero-width segment takes the increment of the
    real segment whose slope it carries, and a row without capacity stays zero, so the window
    built from them is stored as it is.
    """
    ends = np.cumsum(widths, axis=1)
    lift = 0.5 * rho * (2 * ends - widths)
    real = widths > 0
    columns = np.arange(widths.shape[1])[None, :]
    last_real = np.maximum.accumulate(np.where(real, columns, -1), axis=1)
    source = np.where(last_real >= 0, last_real, np.argmax(real, axis=1)[:, None])
    lift = np.where(real.any(axis=1, keepdims=True), np.take_along_axis(lift, source, axis=1), 0.0)
    # Rounding cannot make a chord slope fall below the one before it.
    return np.maximum.accumulate(slopes + lift, axis=1)


def _tail_curve(slopes, widths, segments):
    """Cost-to-go ``V(r)`` of a set of buckets: their segments sorted by slope, as (s, w).

    Merged into at most ``segments`` chords between breakpoints of ``V`` when longer (see the
    module docstring), so the result is convex, exact at its breakpoints and above ``V``.
    """
    real = widths > 0
    s, w = slopes[real], widths[real]
    order = np.argsort(s, kind="stable")
    s, w = s[order], w[order]
    if segments is None or len(s) <= segments:
        return s, w
    filled = np.cumsum(w)
    cost = np.cumsum(s * w)
    half = segments // 2
    by_capacity = np.searchsorted(filled, np.linspace(0.0, filled[-1], segments - half + 1)[1:], side="left")
    by_slope = np.searchsorted(s, np.linspace(s[0], s[-1], half + 1)[1:-1], side="left") - 1
    ends = np.unique(np.concatenate([by_capacity, by_slope[by_slope >= 0], [len(s) - 1]]))
    at = np.concatenate([[0.0], filled[ends]])
    value = np.concatenate([[0.0], cost[ends]])
    chord_w = np.diff(at)
    keep = chord_w > 0
    # Chords of a convex curve rise; rounding in the division must not make one fall.
    return np.maximum.accumulate(np.diff(value)[keep] / chord_w[keep]), chord_w[keep]


class RecedingHorizon:
    """Re-plan at every bucket from the live state, execute the first slice (E8).

    Parameters
    ----------
    horizon : int or "all"
        Window length ``H`` in buckets, or ``"all"`` for the shrinking horizon (the whole rest
        of the day every time).
    objective : Objective, optional
        Any mix of (A), (B), (C); default (A). Risk weights ``w_j`` are those of the full day
        (``objective.weight_vector(N)``), sliced to each window.
    method : {"fast", "cvxpy"}
        Exact fast paths (no compilation) or a cvxpy problem compiled once (DPP) and updated.
    cost_to_go : {"exact", "lambda", None}
        How the window prices the inventory it leaves (module docstring). ``None`` is the
        literal window (E8), which defers the order to the last bucket.
    tail_segments : int or None
        Chords of the ``"exact"`` pseudo-bucket (``None``: every segment, fast path only).
    warm : bool
        cvxpy: reuse the compiled problem (DPP update) instead of rebuilding every step.
    current : {"book", "model"}
        How the bucket about to trade is priced. ``"book"`` (default): by the exact walk of the
        snapshot its slice walks (:meth:`BookExecutor.walk_curve`, capped at the displayed
        depth), since that book is visible when the slice is sent; the model prices only the
        buckets not yet seen. ``"model"``: by the model too (the previous behaviour).
    solver : str, optional
        cvxpy solver (see :func:`convexsched.solve`).
    progress : bool
        A tqdm bar over the steps.

    Examples
    --------
    >>> rh = RecedingHorizon(horizon=30, objective=Objective.cost_only())   # doctest: +SKIP
    >>> record = rh.run(book, 50_000, oracle)                               # doctest: +SKIP
    >>> record.x.sum(), record.cost, record.steps["lambda"]                 # doctest: +SKIP
    """

    def __init__(
        self,
        horizon: int | str = 30,
        objective: Objective | None = None,
        method: str = "fast",
        *,
        cost_to_go: str | None = "exact",
        tail_segments: int | None = 64,
        warm: bool = True,
        solver: str | None = None,
        current: str = "book",
        progress: bool = False,
    ) -> None:
        if not (horizon == "all" or (isinstance(horizon, (int, np.integer)) and horizon >= 1)):
            raise InvalidInputError(f"horizon must be a positive number of buckets or 'all', got {horizon!r}")
        if method not in ("fast", "cvxpy"):
            raise InvalidInputError(f"method must be 'fast' or 'cvxpy', got {method!r}")
        if cost_to_go not in COST_TO_GO:
            raise InvalidInputError(f"cost_to_go must be one of {COST_TO_GO}, got {cost_to_go!r}")
        if tail_segments is None and method == "cvxpy" and cost_to_go == "exact" and horizon != "all":
            raise InvalidInputError("the cvxpy path needs a fixed window shape: give tail_segments an int")
        if tail_segments is not None and int(tail_segments) < 2:
            raise InvalidInputError(f"tail_segments must be >= 2, got {tail_segments}")
        self.horizon = horizon
        self.objective = as_objective(objective)
        self.method, self.cost_to_go, self.tail_segments = method, cost_to_go, tail_segments
        if current not in ("book", "model"):
            raise InvalidInputError(f"current must be 'book' or 'model', got {current!r}")
        self.warm, self.solver, self.current, self.progress = warm, solver, current, progress

    def __repr__(self):
        return (
            f"RecedingHorizon(horizon={self.horizon!r}, objective={self.objective.kind}, "
            f"method={self.method!r}, cost_to_go={self.cost_to_go!r})"
        )

    @property
    def name(self) -> str:
        window = "shrinking" if self.horizon == "all" else f"H={self.horizon}"
        tail = {"exact": "", "lambda": ", lambda tail", None: ", literal (E8)"}[self.cost_to_go]
        return f"RH {self.objective.kind} {window}{tail} ({self.method})"

    # ------------------------------------------------------------------ entry points
    def run(
        self,
        book: Book | Executor,
        total: float,
        model: Model | None = None,
        side: str | None = None,
        *,
        forecast: StateForecast | None = None,
        freq: str | None = None,
        oracle: Model | None = None,
    ) -> ExecutionRecord:
        """Execute ``total`` shares on a real book, re-planning at every bucket.

        Parameters
        ----------
        book : Book or BookExecutor
        total : float
            Order size ``S`` (> 0).
        model : ImpactOracle, CurveSource or CostCurves
            The cost model (:func:`curve_source`): an oracle (wrapped in :class:`LiveCurves`
            with ``forecast``), a curve source such as live curves already built (shared
            between runs: they are cached per bucket), or fixed curves (a static state: every
            step sees the morning's curves).
        side : {"buy", "sell"}
        forecast : StateForecast, optional
        freq : str
            Bucket width.
        oracle : optional
            Deprecated name of ``model`` (removed in 0.4).

        Returns
        -------
        ExecutionRecord
            ``x`` sums to ``total`` (minus ``unfilled`` if the last bucket has no book),
            ``cost`` is the realized cost; ``plans`` and ``steps`` hold every step's plan,
            ``lambda`` and KKT verdict.

        Raises
        ------
        InvalidInputError
            ``S <= 0`` or a model on other buckets than the book's.
        InfeasibleError
            ``S`` above what the day can absorb; the message names the maximum.
        """
        model = renamed(model, oracle, "RecedingHorizon.run", "oracle", "model")
        if model is None:
            raise InvalidInputError("RecedingHorizon.run needs a cost model (model=)")
        executor = as_executor(book, side, freq)
        return self._execute(curve_source(model, executor, forecast), executor, total)

    def simulate(self, curves: CostCurves, total: float) -> ExecutionRecord:
        """Run the loop inside the model: fixed ``curves``, every slice filled at ``g_i(x_i)``."""
        fixed = _StaticCurves(curves)
        # The model executor's walk of bucket i is the curve the loop already reads.
        return self._execute(fixed, ModelExecutor(fixed.curves), total, book=False)

    # ------------------------------------------------------------------ the loop
    def _execute(self, curves, executor, total, book=True):
        if len(curves) != len(executor):
            raise InvalidInputError(f"the model has {len(curves)} buckets, the book has {len(executor)}")
        morning = curves.static()
        # The run's one validation: every step's window is built from checked curves (the
        # source's CostCurves) by the constructor's canonical path, and checked nowhere again.
        order = validate(morning, total, self.objective, positive=True)
        total, objective, n = order.total, order.objective, morning.n_buckets
        # The whole day fits the window at the open: that is the shrinking horizon.
        shrinking = self.horizon == "all" or self.horizon >= n
        run = _Run(
            n=n,
            weights=objective.weight_vector(n) if objective.psi > 0 else np.zeros(n),
            shrinking=shrinking,
            with_tail=self.cost_to_go is not None and not shrinking,
            level=solve_order(order).multiplier if self.cost_to_go == "lambda" else None,
        )
        trace = Trace(executor)
        remaining, steps, plans = total, [], []
        priced_by_book = book and self.current == "book"
        for i in progress_bar(range(n), self.progress, self.name):
            row = {
                "bucket": executor.index[i],
                "remaining": remaining,
                "lambda": np.nan,
                "plan_value": np.nan,
                "kkt_ok": True,
                "kkt_violation": 0.0,
                "solve_s": 0.0,
                "tail": 0.0,
                "feasible": True,
                "over_capacity": False,
            }
            if remaining <= 0:
                # Done: nothing to plan, so no curves to read.
                filled = trace.fill(i, 0.0)
                trace.predicted[i] = 0.0
                row.update(target=0.0, filled=filled)
                steps.append(row)
                continue
            rows = _Rows(curves(i), executor.walk_curve(i)[:2] if priced_by_book and executor.usable(i) else None)
            capacity = rows.first_capacity
            if i == n - 1:
                # Terminal enforcement: the last bucket takes the remainder exactly.
                target = remaining
                row["over_capacity"] = target > capacity * (1 + 1e-9)
            else:
                plan, row_update = self._plan(run, rows, remaining, i)
                row.update(row_update)
                plans.append(plan)
                target = float(np.clip(plan.iloc[0], 0.0, remaining))
            filled = trace.fill(i, target)
            if filled <= capacity * (1 + 1e-9):
                trace.predicted[i] = _first_cost(rows.slopes[0], rows.widths[0], filled)
            remaining = remaining - filled if i < n - 1 else 0.0
            row.update(target=target, filled=filled)
            steps.append(row)
        return trace.finish(self.name, total, plans, pd.DataFrame(steps).set_index("bucket"))

    def _plan(self, run, rows, remaining, i):
        """Solve step ``i``'s window; returns the plan on its real buckets and the step record."""
        window = rows.n if run.shrinking else min(self.horizon, rows.n)
        curves, objective, sense = self._window(run, rows, i, window)
        capacity = float(curves.capacity.sum())
        feasible = sense == "le" or remaining <= capacity * (1 + 1e-12)
        # Live capacities below the inventory: trade all the window can take now.
        order = Order(curves, remaining if feasible else capacity, objective, sense)
        started = time.perf_counter()
        if self.method == "cvxpy":
            schedule = solve_order(order, method="cvxpy", solver=self.solver, problem=run.problem if self.warm else None)
            run.problem = schedule.problem
        else:
            schedule = solve_order(order)
        seconds = time.perf_counter() - started
        x = np.asarray(schedule.x, dtype=float)
        plan = pd.Series(x[:window], index=rows.index[:window], name=f"plan {i}")
        tail = float(x[-1]) if run.with_tail else 0.0
        report = schedule.kkt
        return plan, {
            "lambda": schedule.multiplier,
            "plan_value": schedule.objective_value,
            "kkt_ok": report.ok,
            "kkt_violation": report.max_violation,
            "solve_s": seconds,
            "tail": tail,
            "feasible": feasible,
        }

    def _window(self, run, rows, i, window):
        """Step ``i``'s problem: curves (zero-capacity padding for cvxpy), objective, sense.

        The curves are the step's one :class:`CostCurves`, from rows that are canonical by
        construction (checked curves, padding, sorted tail chords), so the constructor stores
        them in its one compiled pass.
        """
        pad = self.method == "cvxpy"
        weights = run.weights[i : i + window]
        if not run.with_tail:
            # Shrinking horizon (exact objective) or the literal window (E8).
            size = (run.n if run.shrinking else self.horizon) if pad else window
            blocks = [(rows.slopes[:window], rows.widths[:window]), _empty(size - window)]
            objective = self._objective(self.objective.rho, np.concatenate([weights, np.zeros(size - window)]), i)
            return _stack(blocks, rows.k), objective, "eq" if run.shrinking else "le"
        slopes, widths = rows.slopes, rows.widths
        if self.objective.rho > 0:
            slopes = _chord_smoothing(slopes, widths, self.objective.rho)
        if window == rows.n:
            tail = _empty(1)
        elif self.cost_to_go == "lambda":
            later = widths[window:].sum()
            # A tail without capacity is a zero row, as CostCurves stores one.
            tail = (np.array([[run.level if later > 0 else 0.0]]), np.array([[later]]))
        else:
            s, w = _tail_curve(slopes[window:], widths[window:], self.tail_segments)
            tail = (s[None, :], w[None, :])
        size = self.horizon if pad else window
        k = rows.k
        if pad and self.cost_to_go == "exact":
            k = max(k, self.tail_segments)
        k = max(k, tail[0].shape[1])
        blocks = [(slopes[:window], widths[:window]), _empty(size - window), tail]
        objective = self._objective(0.0, np.concatenate([weights, np.zeros(size - window + 1)]), i)
        return _stack(blocks, k), objective, "eq"

    def _objective(self, rho, weights, i):
        # The run's objective whole, on the window's buckets (every term, not field by field).
        return self.objective.window(i, len(weights), rho=rho, weights=weights if self.objective.psi > 0 else "linear")


@dataclass
class _Run:
    """One run's state, kept off the planner so that a planner runs any number of days.

    ``weights`` are the day's (C) weights, ``level`` the day's (A) multiplier (the ``"lambda"``
    cost-to-go), ``problem`` the previous step's cvxpy problem (warm starts).
    """

    n: int
    weights: np.ndarray
    shrinking: bool
    with_tail: bool
    level: float | None
    problem: Any = None


class _Rows:
    """The curves of buckets ``i .. N-1`` as step ``i`` prices them: arrays of checked curves.

    ``live`` is the source's :class:`CostCurves`; with ``current`` (the walk of the book bucket
    ``i``'s slice meets, seen now) its first row is that walk instead, stored in canonical form
    by :class:`CostCurves` (a new book each step: the one curve the step has not seen checked)
    and padded with the other rows to one segment count.
    """

    def __init__(self, live, current=None):
        self.index, self.n = live.index, live.n_buckets
        if current is None:
            self.slopes, self.widths = live.slopes, live.widths
            self.first_capacity = float(live.capacity[0])
        else:
            k = max(live.n_segments, len(current[0]))
            walk = CostCurves(*_padded(current[0][None, :], current[1][None, :], k))
            slopes, widths = _padded(live.slopes[1:], live.widths[1:], k)
            self.slopes, self.widths = np.vstack([walk.slopes, slopes]), np.vstack([walk.widths, widths])
            self.first_capacity = float(walk.capacity[0])
        self.k = self.slopes.shape[1]


def _empty(rows):
    """``rows`` zero-capacity buckets (padding)."""
    return np.zeros((rows, 1)), np.zeros((rows, 1))


def _padded(slopes, widths, k):
    """Rows padded to ``k`` segments of zero width at their last slope (canonical rows stay canonical)."""
    pad = k - slopes.shape[1]
    if pad == 0:
        return slopes, widths
    return np.hstack([slopes, np.repeat(slopes[:, -1:], pad, axis=1)]), np.hstack([widths, np.zeros((len(widths), pad))])


def _stack(blocks, k):
    """One CostCurves from canonical (slopes, widths) blocks, rows padded to ``k`` segments."""
    blocks = [_padded(s, w, k) for s, w in blocks if len(s)]
    return CostCurves(np.vstack([s for s, _ in blocks]), np.vstack([w for _, w in blocks]))
