"""The scenario receding horizon: the visible book at its true price, the future as scenarios.

At bucket ``i`` with ``R`` shares left and ``m = N - i - 1`` buckets after it, the policy sees

* the book its slice is about to walk, priced exactly: ``g_i`` is the book-walk curve of that
  snapshot (:meth:`BookExecutor.walk_curve`, the same curve the executor charges, depleted by
  the strategy's own earlier fills when the executor models resilience);
* the realized curves of the last ``P`` buckets (the *pool*), a sample of what later minutes
  may look like. Nothing later than the snapshot of bucket ``i`` is read.

**Objectives (A) and (B).** The step is the two-stage problem (E12) of
``convexsched.optimize.weighted``: the current curve with weight 1 and every pool curve with weight
``m / P`` (each stands for ``m / P`` of the remaining buckets),

.. math::

    \\min_{x, y}\\; g_i(x) + \\frac{\\rho}{2}x^2 + \\frac{m}{P} \\sum_{p=1}^{P} \\Big[g_p(y_p) + \\frac{\\rho}{2} y_p^2\\Big]
    \\quad \\text{s.t.}\\quad x + \\frac{m}{P}\\sum_p y_p = R, \\quad 0 \\le x \\le u_i, \\; 0 \\le y_p \\le u_p ,
    \\qquad (E14)

and the policy trades ``x``. Its optimality condition is still the equal marginal cost
(E3), (E13): buy now while the visible book is cheaper at the margin than what the future is expected to
offer at the level ``lambda`` that completes the order. Unlike a certainty-equivalent plan, the
future is a spread of books, so the plan expects to be selective later and does not chase a
single forecast.

**Objective (C).** Inventory risk needs time, so the pool is laid out on the future slots:
slot ``i + k`` gets pool curve ``P - 1 - ((k - 1) mod P)`` (the recent past replayed backwards
from the newest book), and the chain problem (E6) with the day's risk weights
``w_i .. w_N`` is solved exactly on ``[g_i, slots]`` (:func:`convexsched.solve`).

Intraday profile (optional)
---------------------------
``profile`` re-weights the pool by a depth profile learned elsewhere (other days or symbols):
pool curve ``p`` (seen at bucket ``j_p``) has its widths scaled by ``d_future / d_{j_p}``, with
``d`` the profile's relative depth and ``d_future`` its mean over the remaining buckets (for
(C), the depth of the slot it is laid on). A book seen in the thin opening minutes then stands
for a deeper midday, and the other way round. The curve keeps its prices: only how much trades
at each price scales (``s g(x / s)``).

Guardrails
----------
``warmup``
    The first buckets trade the even pace ``R / (N - i)``: with only a few books in the pool one
    thin opening book would make every later minute look expensive.
``pace_cap``
    A bucket takes at most ``pace_cap * S / N`` (a multiple of the even pace).
``participation``
    and at most ``participation`` times its displayed depth (pool curves are capped the same
    way).
Completion: the last bucket takes what is left. When the caps cannot absorb what remains
(``R > (m + 1) pace_cap S / N``), the current bucket takes the excess and the step is flagged
``forced``; nothing is ever left unfilled because of a cap.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..optimize.curves import CostCurves
from ..optimize.objective import Objective
from ..optimize.solve import solve_order
from ..optimize.validate import Order, as_objective, check_total
from ..optimize.weighted import WeightedBuckets, build_weighted_problem, solve_weighted_batch, weighted_kkt
from .executors import ExecutionRecord, Executor, Trace, as_executor, progress_bar

if TYPE_CHECKING:
    from ..data.book import Book
    from ..model.forecast import StateForecast
    from .strategies import Context


class ScenarioHorizon:
    """Receding horizon over the visible book and a pool of recent books (module docstring).

    Parameters
    ----------
    objective : Objective, optional
        (A) by default; (B) with ``rho > 0``; (C) and mixes with ``psi > 0``.
    pool : int
        ``P``: how many of the most recent buckets' books represent the future (>= 1).
    warmup : int
        Buckets traded at the even pace before the pool decides (>= 0).
    pace_cap : float or None
        Per-bucket cap as a multiple of the even pace ``S / N`` (>= 1); None: no cap.
    participation : float or None
        Per-bucket cap as a fraction of the displayed depth (> 0); None: no cap (the executor's
        tail beyond the displayed depth then prices larger slices).
    method : {"fast", "cvxpy"}
        The exact weighted water-filling, or the explicit cvxpy problem of (E14) (A and B).
    formulation : {"segment", "epigraph"}
        The cvxpy formulation.
    solver : str
        cvxpy solver for ``method="cvxpy"``.
    footprint : bool
        Add to the smoothing weight the transient impact of our own footprint, measured in the
        event replay from windows that ended before each decision
        (:mod:`convexsched.execution.resilience`, (E24)); needs a :class:`convexsched.ReplayExecutor`.
    profile : StateForecast or array_like of shape (N,), optional
        Intraday depth profile that re-weights the pool (module docstring): a fitted
        :class:`convexsched.StateForecast` (its ``depth`` profile at the day's buckets) or one
        positive relative depth per bucket. Default: none.
    progress : bool
        A tqdm bar over the buckets.
    name : str, optional
        Row name in a backtest (default ``"scenario A"``, ``"scenario B"``, ...).
    """

    lookahead = False

    def __init__(
        self,
        objective: Objective | None = None,
        *,
        pool: int = 30,
        warmup: int = 5,
        pace_cap: float | None = 4.0,
        participation: float | None = 1.0,
        method: str = "fast",
        formulation: str = "segment",
        solver: str = "CLARABEL",
        profile: StateForecast | None = None,
        footprint: bool = False,
        progress: bool = False,
        name: str | None = None,
    ) -> None:
        self.objective = as_objective(objective)
        if not (isinstance(pool, (int, np.integer)) and pool >= 1):
            raise InvalidInputError(f"pool must be a positive number of buckets, got {pool!r}")
        if not (isinstance(warmup, (int, np.integer)) and warmup >= 0):
            raise InvalidInputError(f"warmup must be a number of buckets >= 0, got {warmup!r}")
        if pace_cap is not None and not (np.isfinite(pace_cap) and pace_cap >= 1):
            raise InvalidInputError(f"pace_cap must be >= 1 (a multiple of the even pace) or None, got {pace_cap!r}")
        if participation is not None and not (np.isfinite(participation) and participation > 0):
            raise InvalidInputError(f"participation must be > 0 (a fraction of displayed depth) or None, got {participation!r}")
        if method not in ("fast", "cvxpy"):
            raise InvalidInputError(f"method must be 'fast' or 'cvxpy', got {method!r}")
        if method == "cvxpy" and (self.objective.psi > 0 or self.objective.terms):
            raise InvalidInputError("method='cvxpy' covers objectives (A) and (B); other steps use convexsched.solve")
        if formulation not in ("segment", "epigraph"):
            raise InvalidInputError(f"formulation must be 'segment' or 'epigraph', got {formulation!r}")
        self.pool, self.warmup, self.pace_cap, self.participation = int(pool), int(warmup), pace_cap, participation
        self.method, self.formulation, self.solver, self.progress = method, formulation, solver, progress
        self.profile = profile
        self.footprint = bool(footprint)
        suffix = "" if method == "fast" else f" ({method})"
        self.name = name or f"scenario {self.objective.kind}{suffix}"

    def __repr__(self):
        return (
            f"ScenarioHorizon(objective={self.objective.kind}, pool={self.pool}, warmup={self.warmup}, "
            f"pace_cap={self.pace_cap}, participation={self.participation}, method={self.method!r})"
        )

    def execute(self, context: Context) -> ExecutionRecord:
        """Strategy protocol of :func:`convexsched.backtest`."""
        record = self.run(context.executor, context.total)
        record.name = self.name
        return record

    def run(
        self,
        book: Book | Executor,
        total: float,
        side: str | None = None,
        *,
        freq: str | None = None,
        half_life: float | None = None,
    ) -> ExecutionRecord:
        """Execute ``total`` shares, deciding every bucket from its visible book and the pool.

        Parameters
        ----------
        book : Book or executor
            A Book is executed by a :class:`BookExecutor`; any executor (:class:`convexsched.ReplayExecutor`, ...) as it is.
        total : float
            Order size ``S`` (> 0).
        side : {"buy", "sell"}, optional
            For a Book (default "buy"); an error next to an executor of the other side.
        freq : str, optional
            For a Book (default "1min").
        half_life : float, optional
            Resilience of the :class:`BookExecutor` built for a Book (default 0).

        Returns
        -------
        ExecutionRecord
            ``steps`` holds per bucket the inventory before it, the level ``lambda``, the KKT
            verdict, the cap, whether the step was in warm-up or ``forced`` past its cap.
        """
        executor = as_executor(book, side, freq, half_life)
        total = check_total(total, positive=True)  # the run's one check of S
        n = len(executor)
        fresh = executor.realized_curves()
        trace = Trace(executor)
        weights = self.objective.weight_vector(n) if self.objective.psi > 0 else None
        depth = self._depth_profile(executor)
        footprint = self._footprint(executor, total)
        remaining, steps, executed = total, [], np.zeros(n)
        for i in progress_bar(range(n), self.progress, self.name):
            rho = self.objective.rho + (footprint.rho(before=executor.index[i].value) if footprint is not None else 0.0)
            target, row = self.decide(executor, fresh, i, remaining, total, weights, depth, rho, executed[:i])
            filled = trace.fill(i, target)
            executed[i] = filled
            remaining = remaining - filled if i < n - 1 else 0.0
            row.update(target=target, filled=filled)
            steps.append(row)
        return trace.finish(self.name, total, [], pd.DataFrame(steps).set_index("bucket"))

    def _footprint(self, executor, total):
        """The measured transient impact of the replay (None without ``footprint``)."""
        if not self.footprint:
            return None
        if not hasattr(executor, "lane_state"):
            raise InvalidInputError("footprint=True measures resilience in an event replay: pass a ReplayExecutor")
        from .resilience import measure_resilience

        lot = executor.lot
        size = max(lot, lot * round(total / len(executor) / lot))
        return measure_resilience(executor, size, size)

    def _depth_profile(self, executor):
        """Relative depth per bucket from ``profile`` (None without one)."""
        if self.profile is None:
            return None
        if hasattr(self.profile, "profile_at"):
            depth = self.profile.profile_at(executor.index)["depth"].to_numpy(dtype=float)
        else:
            depth = np.asarray(self.profile, dtype=float).reshape(-1)
        if depth.shape != (len(executor),) or not (np.isfinite(depth).all() and (depth > 0).all()):
            raise InvalidInputError(f"profile must give {len(executor)} finite relative depths > 0, one per bucket")
        return depth

    def decide(
        self,
        executor: Executor,
        fresh: tuple[np.ndarray, np.ndarray, np.ndarray],
        i: int,
        remaining: float,
        total: float,
        weights: np.ndarray | None = None,
        depth: np.ndarray | None = None,
        rho: float | None = None,
        executed: np.ndarray | None = None,
    ) -> tuple[float, dict[str, object]]:
        """The slice of bucket ``i``: reads bucket ``i``'s book and the pool ``fresh[j < i]`` only.

        ``depth`` is the relative depth profile (from other days: no look-ahead) or None; ``rho``
        the step's smoothing weight (default the objective's; with ``footprint`` it adds the
        transient impact measured before this bucket, (E24)); ``executed`` the slices filled in
        buckets ``0 .. i-1``, which a term with memory (``TransientImpact``) prices through
        ``Term.after``.

        Returns
        -------
        target : float
        row : dict
            The step's record.
        """
        n = len(executor)
        row = {
            "bucket": executor.index[i],
            "remaining": remaining,
            "lambda": np.nan,
            "kkt_ok": True,
            "kkt_violation": 0.0,
            "solve_s": 0.0,
            "pool": 0,
            "cap": np.inf,
            "warmup": False,
            "forced": False,
            "infeasible": False,
        }
        if remaining <= 0 or not executor.usable(i):
            return 0.0, row
        slopes, widths, gamma = executor.walk_curve(i)
        pace = np.inf if self.pace_cap is None else self.pace_cap * total / n
        cap = float(self._cap(pace, widths.sum()))
        row["cap"] = cap
        later = n - i - 1
        if later == 0:
            row["forced"] = remaining > cap * (1 + 1e-12)
            return remaining, row
        pool = [j for j in range(max(0, i - self.pool), i) if executor.usable(j)]
        row["pool"] = len(pool)
        if i < self.warmup or not pool:
            row["warmup"] = True
            target = min(remaining / (n - i), cap)
        else:
            target = self._solve_step(
                row,
                (slopes, widths, gamma),
                fresh,
                pool,
                pace,
                remaining,
                later,
                i,
                weights,
                depth,
                executor.immediate,
                self.objective.rho if rho is None else rho,
                executed,
            )
        # Completion: later buckets take at most `pace` each, so the excess must go now.
        must = remaining - later * pace
        if must > target:
            target = must
            row["forced"] = must > cap * (1 + 1e-12)
        return float(min(max(target, 0.0), remaining)), row

    def _cap(self, pace, depth):
        """Per-bucket cap: ``pace`` and ``participation`` times the depth (vectorized over depth)."""
        if self.participation is None:
            return np.full_like(np.asarray(depth, dtype=float), pace)
        return np.minimum(pace, self.participation * np.asarray(depth, dtype=float))

    def _solve_step(self, row, current, fresh, pool, pace, remaining, later, i, weights, depth, immediate, rho, executed=None):
        if immediate < 1.0:
            current = _blend_current(current, fresh[0][pool], fresh[1][pool], immediate)
        slopes, widths = _stack(current[:2], (fresh[0][pool], fresh[1][pool]))
        gamma = np.concatenate([[current[2]], fresh[2][pool]])
        omega = np.concatenate([[1.0], np.full(len(pool), later / len(pool))])
        started = time.perf_counter()
        if self.objective.psi > 0 or self.objective.terms:
            # The chain lays the pool out slot by slot: inventory risk and any other term see time.
            target = self._solve_chain(row, slopes, widths, pace, remaining, later, i, weights, pool, depth, rho, executed)
        else:
            if depth is not None:
                # s g(x / s): widths scale by s, the tail's gradient by 1 / s.
                scale = np.concatenate([[1.0], depth[i + 1 :].mean() / depth[pool]])
                widths, gamma = widths * scale[:, None], gamma / scale
            caps = self._cap(pace, widths.sum(axis=1))
            caps[0] = row["cap"]
            target = self._solve_weighted(row, (slopes, widths, omega, gamma, caps), remaining, rho)
        row["solve_s"] = time.perf_counter() - started
        return target

    def _solve_weighted(self, row, problem, remaining, rho):
        slopes, widths, omega, gamma, caps = problem
        if self.method == "fast":
            # One compiled call solves and certifies the step (a batch of one): no Python
            # object is built per step.
            batch = solve_weighted_batch(slopes[None], widths[None], omega[None], remaining, rho=rho,
                                         gamma=gamma[None], cap=caps[None])  # fmt: skip
            if remaining > batch.maximum[0]:
                # Neither now nor the capped future can take it all: as much as allowed now
                # (an infeasible problem comes back with every bucket at its cap).
                row["infeasible"] = True
            else:
                row.update({"lambda": float(batch.multiplier[0]), "kkt_ok": bool(batch.kkt_ok[0]),
                            "kkt_violation": float(batch.max_violation[0])})  # fmt: skip
            return float(batch.y[0, 0])
        buckets = WeightedBuckets.build(slopes, widths, omega, rho=rho, gamma=gamma, cap=caps)
        if remaining > float(buckets.weights @ buckets.capacity):
            row["infeasible"] = True
            return float(buckets.capacity[0])
        weighted = build_weighted_problem(buckets, remaining, self.formulation)
        weighted.problem.solve(solver=self.solver)
        y_value, level = np.asarray(weighted.y.value, dtype=float), weighted.multiplier
        report = weighted_kkt(buckets, remaining, y_value, level)
        row.update({"lambda": level, "kkt_ok": report.ok, "kkt_violation": report.max_violation})
        return float(y_value[0])

    def _solve_chain(self, row, slopes, widths, pace, remaining, later, i, weights, pool, depth, rho, executed=None):
        n_pool = len(slopes) - 1
        # Slot i + k replays the pool backwards from its newest book.
        order = n_pool - (np.arange(later) % n_pool)
        rows = np.concatenate([[0], order])
        slopes, widths = slopes[rows], widths[rows]
        if depth is not None:
            seen = np.asarray(pool)[order - 1]
            widths = widths * np.concatenate([[1.0], depth[i + 1 :] / depth[seen]])[:, None]
        caps = self._cap(pace, widths.sum(axis=1))
        caps[0] = row["cap"]
        truncated = WeightedBuckets.build(slopes, widths, cap=caps)
        # Under the equality budget a constant added to every slope adds a constant to the
        # objective: lifting slopes that pay (passive fills, a rebate) to >= 0 keeps the argmin.
        lift = max(0.0, -float(truncated.slopes[truncated.widths > 0].min(initial=0.0)))
        curves = CostCurves(truncated.slopes + lift, truncated.widths)
        objective = self.objective.window(
            i, len(rows), rho=rho, weights=None if weights is None else weights[i:], executed=executed
        )
        if remaining > float(truncated.capacity.sum()) * (1 + 1e-12):
            row["infeasible"] = True
            return float(truncated.capacity[0])
        schedule = solve_order(Order(curves, remaining, objective))
        row.update({"lambda": schedule.multiplier - lift, "kkt_ok": schedule.kkt.ok, "kkt_violation": schedule.kkt.max_violation})
        return float(np.asarray(schedule.x)[0])


def _stack(current, pool):
    """The current curve on top of the pool's rows, padded to one segment count (zero widths)."""
    k = max(len(current[0]), pool[0].shape[1])

    def pad(slopes, widths):
        slopes, widths = np.atleast_2d(slopes), np.atleast_2d(widths)
        extra = k - slopes.shape[1]
        return (
            np.hstack([slopes, np.repeat(slopes[:, -1:], extra, axis=1)]),
            np.hstack([widths, np.zeros((len(widths), extra))]),
        )

    top, rows = pad(*current), pad(*pool)
    return np.vstack([top[0], rows[0]]), np.vstack([top[1], rows[1]])


def _blend_current(current, pool_slopes, pool_widths, immediate):
    """The current bucket's curve when only a share of its slice meets the visible book now (E23).

    With a tactic whose first ``a = immediate`` of the slice sweeps the book as it stands (Sliced(n):
    ``a = 1/n``; PassiveFirst: 0), the rest is priced like the pool's buckets:

    .. math::

        g_i(x) = w_i(a x) + (1 - a) \\frac{1}{P} \\sum_p g_p(x),

    ``w_i`` the visible book's walk. A sum of convex piecewise-linear curves is convex: its slopes
    over the union of the breakpoints are nondecreasing.
    """
    slopes, widths, gamma = current
    rows_s = [np.asarray(slopes, float)[None, :]] if immediate > 0 else []
    rows_w = [np.asarray(widths, float)[None, :] / immediate] if immediate > 0 else []
    coef = [1.0 * immediate] if immediate > 0 else []
    rows_s.append(pool_slopes)
    rows_w.append(pool_widths)
    coef.extend([(1.0 - immediate) / len(pool_slopes)] * len(pool_slopes))
    k = max(r.shape[1] for r in rows_s)
    all_s = np.vstack([np.hstack([r, np.repeat(r[:, -1:], k - r.shape[1], axis=1)]) for r in rows_s])
    all_w = np.vstack([np.hstack([r, np.zeros((len(r), k - r.shape[1]))]) for r in rows_w])
    # walk(a x) has slopes a * d_l over widths q_l / a; its coefficient carries the a.
    ends = np.cumsum(all_w, axis=1)
    knots = np.unique(ends[all_w > 0])
    if len(knots) == 0:
        return slopes, widths, gamma
    starts = ends - all_w
    inside = np.clip(knots[None, None, :] - starts[:, :, None], 0.0, all_w[:, :, None])
    value = np.einsum("rk,rkj->rj", all_s, inside)
    beyond = np.maximum(knots[None, :] - ends[:, -1:], 0.0) * all_s[:, -1:]
    total = np.asarray(coef) @ (value + beyond)
    edges = np.concatenate([[0.0], knots])
    blended = np.maximum.accumulate(np.diff(np.concatenate([[0.0], total])) / np.diff(edges))
    return blended, np.diff(edges), gamma
