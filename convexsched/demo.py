"""The end-to-end demo behind ``convexsched demo``: every stage on the synthetic book.

book -> bucket features -> impact table -> impact oracle -> convex cost curves -> schedules
(A), (B), (C) by the exact fast paths and by cvxpy, each with its KKT certificate -> receding
horizon, the scenario horizon and static plans executed against the book (backtest, measured
against the hindsight bound) -> files and plots.

The book is SYNTHETIC (:func:`convexsched.synthetic_book`), never market data. The oracle is
evaluated on the day's observed bucket states, so the schedules of stage 5 are in-sample; the
backtest's plans see only the live state and an intraday profile learned on another synthetic
day.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._optional import pyplot, require
from .data.features import bucket_features
from .data.slippage import impact_table
from .data.synthetic import synthetic_book
from .execution.backtest import DRIFT_HELP
from .files import atomic_path, save_figure, write_table
from .io import certificate_record, write_certificate, write_curves, write_schedule
from .model.oracle import ImpactOracle
from .optimize.problem import build_problem
from .optimize.solve import solve

ORDER_SIZES = np.array([100, 200, 500, 1000, 2000, 5000, 10000], dtype=float)
# Every 4th snapshot (12 s apart) keeps the training table near 13,000 rows: a few seconds to fit.
TRAINING_THIN = 4
ORACLE_SETTINGS: dict[str, Any] = {"max_iter": 80, "learning_rate": 0.1, "random_state": 0}
GRID_STEPS = 40
HORIZON = 30
# Points of the receding horizon's live size grid: each step re-evaluates the oracle on it.
LIVE_GRID = 17


def demo_files(plots=True):
    """Names of the files :func:`run_demo` writes into its folder."""
    names = ["features.csv", "oracle.skops", "curves.csv", "comparison.csv"]
    names += [f"schedule_{kind}{suffix}" for kind in "ABC" for suffix in (".csv", ".kkt.json")]
    names += ["backtest.csv", "receding_steps.csv"]
    return names + (["curves.png", "schedules.png", "receding.png"] if plots else [])


def state_size_grid(states, steps=GRID_STEPS):
    """Size grid ``0 .. c`` in ``steps`` steps, ``c`` half the median displayed depth of ``states``.

    Half the two-sided depth is a typical one-sided depth: the sizes one bucket can absorb
    without walking past the displayed book.
    """
    largest = max(100.0, round(float(np.median(states["depth"])) / 2, -2))
    return np.linspace(0.0, largest, steps + 1)


@dataclass
class DemoResult:
    """What :func:`run_demo` computed and wrote.

    Attributes
    ----------
    comparison : pandas.DataFrame
        One row per (objective, method): F(x), lambda, time, KKT verdict and violation.
    schedules : dict
        ``(kind, method) -> Schedule``.
    backtest : pandas.DataFrame or None
        The backtest table.
    files : list of Path
    certified : bool
        Every schedule's KKT certificate holds.
    """

    comparison: pd.DataFrame
    schedules: dict
    backtest: pd.DataFrame | None
    files: list = field(default_factory=list)
    certified: bool = True


def _hourly(x):
    shares = pd.Series(np.asarray(x, dtype=float), index=x.index).groupby(x.index.hour).sum()
    return "  ".join(f"{hour:02d}h {value:>9,.0f}" for hour, value in shares.items())


def _fit_oracle(book, echo):
    table = impact_table(book, ORDER_SIZES)
    # Beyond the displayed depth the cost is an extrapolation rule, not an observation.
    table = table[~table["beyond_depth"]].dropna(subset=["volatility"])
    stamps = table["timestamp"].drop_duplicates().iloc[::TRAINING_THIN]
    table = table[table["timestamp"].isin(stamps)]
    oracle = ImpactOracle(**ORACLE_SETTINGS).fit(table, table["slippage"])
    error = np.abs(oracle.predict(table) - table["slippage"].to_numpy()).mean()
    echo(f"  impact table {len(table):,} rows (sizes {ORDER_SIZES.astype(int).tolist()}); "
         f"{oracle.n_iter_} boosting iterations kept; in-sample MAE {error:.3f} USD")  # fmt: skip
    return oracle


def _compare(curves, total, objectives, echo):
    rows, schedules = [], {}
    for kind, objective in objectives.items():
        for method in ("fast", "cvxpy"):
            # One solve per problem: a DPP-parameterized build buys fast re-solves the demo never
            # makes, and compiling it took 1.8 GB for objective B at 390 x 40 (0.02 GB without).
            started = time.perf_counter()
            problem = build_problem(curves, total, objective, dpp=False) if method == "cvxpy" else None
            schedule = solve(curves, total, objective, method=method, problem=problem)
            first = time.perf_counter() - started
            if method == "fast":
                # The first call compiles the kernels (empty numba cache) or loads them: time a second.
                schedule = solve(curves, total, objective)
            schedule.problem = None
            schedules[kind, method] = schedule
            rows.append({
                "objective": kind, "method": method, "algorithm": schedule.solver or schedule.algorithm,
                "F(x)": schedule.objective_value, "lambda": schedule.multiplier,
                "first_call_ms": 1e3 * first,
                "warm_ms": 1e3 * schedule.timings["total"] if method == "fast" else np.nan,
                "kkt_ok": schedule.kkt.ok, "kkt_violation": schedule.kkt.max_violation,
            })  # fmt: skip
        fast, reference = (np.asarray(schedules[kind, m].x, float) for m in ("fast", "cvxpy"))
        rows[-1]["max|x_fast - x_cvxpy|/S"] = rows[-2]["max|x_fast - x_cvxpy|/S"] = float(np.abs(fast - reference).max()) / total
    comparison = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        echo(comparison.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    echo("  first_call_ms: this process's first solve, certificate included (fast: compiling its numba kernels "
         "when the cache is empty, else loading them; cvxpy: building the problem, canonicalizing, Clarabel); "
         "warm_ms: the fast path called again")  # fmt: skip
    return comparison, schedules


def _backtest(book, total, oracle, objectives, seed):
    from .execution.backtest import backtest
    from .execution.executors import BookExecutor
    from .execution.receding import LiveCurves
    from .execution.strategies import (
        TWAP,
        AlmgrenChriss,
        DepthProportional,
        RecedingStrategy,
        ScenarioStrategy,
        StaticPlan,
        Strategy,
    )
    from .model.forecast import StateForecast

    strategies: list[Strategy] = [TWAP(), AlmgrenChriss(), DepthProportional()]
    strategies += [StaticPlan(kind) for kind in objectives]
    strategies += [RecedingStrategy(objectives["A"], name=f"RH A H={HORIZON}", horizon=HORIZON), ScenarioStrategy("A")]
    # The intraday profile comes from another day, so no plan sees this day's future.
    history = bucket_features(synthetic_book(seed + 1)).dropna()
    forecast = StateForecast(freq="1min").fit(history)
    live = LiveCurves(BookExecutor(book), oracle, forecast, grid=LIVE_GRID)
    return backtest(book, total, strategies=strategies, model=live, return_records=True)


def _plots(folder, curves, schedules, record):
    plt = pyplot()

    written = []
    ax = curves.plot(marginal=True)
    ax.set_title("oracle marginal cost per share (5 buckets)")
    ax.figure.tight_layout()
    written.append(save_figure(ax.figure, folder / "curves.png"))

    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for kind in ("A", "B", "C"):
        schedule = schedules[kind, "fast"]
        label = f"{kind}: F = {schedule.objective_value:,.0f}, lambda = {schedule.multiplier:.4g}"
        axes[0].plot(np.asarray(schedule.x, float), label=label, lw=1)
        axes[1].plot(np.asarray(schedule.remaining, float), label=kind)
    axes[0].set_ylabel("shares per bucket")
    axes[0].legend(fontsize="small")
    axes[1].set_ylabel("inventory R_i")
    axes[1].set_xlabel("bucket (minutes after the open)")
    fig.tight_layout()
    written.append(save_figure(fig, folder / "schedules.png"))

    if record is not None:
        axes = record.plot()
        axes[0].figure.tight_layout()
        written.append(save_figure(axes[0].figure, folder / "receding.png"))
    plt.close("all")
    return written


def run_demo(folder="convexsched-demo", total=100_000.0, seed=0, plots=True, echo=print):
    """Run the pipeline on the synthetic book and write its files to ``folder``.

    Parameters
    ----------
    folder : path-like
    total : float
        Shares to buy, ``S``.
    seed : int
        Seed of the synthetic book.
    plots : bool
        Save PNG plots (matplotlib, Agg backend).
    echo : callable
        Receives the report line by line (``print`` for the command line).

    Returns
    -------
    DemoResult
    """
    from .execution.strategies import default_objectives

    if plots:
        # Checked before all the work that precedes the plots.
        require("matplotlib", "plot", "the demo's plots (--no-plots skips them)").use("Agg")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    book = synthetic_book(seed)
    echo(f"[1/7] book: {book!r}")

    states = bucket_features(book).dropna()
    files.append(write_table(states.reset_index(), folder / "features.csv"))
    echo(f"[2/7] features: {len(states)} one-minute buckets, median spread {states['spread'].median():.3f} USD, "
         f"median depth {states['depth'].median():,.0f} shares -> features.csv")  # fmt: skip

    echo("[3/7] impact oracle (gradient boosting, monotone in size)")
    oracle = _fit_oracle(book, echo)
    with atomic_path(folder / "oracle.skops") as temporary:
        oracle.save(temporary)
    files.append(folder / "oracle.skops")

    curves, report = oracle.cost_curves(states, state_size_grid(states), return_report=True)
    files.append(write_curves(curves, folder / "curves.csv"))
    echo(f"[4/7] curves: {curves!r} -> curves.csv\n  {report}")

    objectives = default_objectives(curves, total)
    echo(f"[5/7] schedules for S = {total:,.0f} shares, A (cost), B (rho = {objectives['B'].rho:.3g}), "
         f"C (psi = {objectives['C'].psi:.3g}): exact fast path vs cvxpy")  # fmt: skip
    comparison, schedules = _compare(curves, total, objectives, echo)
    files.append(write_table(comparison, folder / "comparison.csv"))
    for kind, objective in objectives.items():
        schedule = schedules[kind, "fast"]
        files.append(write_schedule(schedule, folder / f"schedule_{kind}.csv"))
        record = certificate_record(schedule.kkt, total, objective, method="fast", algorithm=schedule.algorithm)
        files.append(write_certificate(record, folder / f"schedule_{kind}.kkt.json"))

    echo(f"[6/7] backtest against the book (state profile from synthetic day seed {seed + 1}); "
         f"receding horizon H = {HORIZON} re-planned every minute")  # fmt: skip
    table, records = _backtest(book, total, oracle, objectives, seed)
    files.append(write_table(table.reset_index(), folder / "backtest.csv"))
    receding = records[f"RH A H={HORIZON}"]
    files.append(write_table(receding.steps.reset_index(), folder / "receding_steps.csv"))
    steps = receding.steps
    echo(f"  receding horizon: {len(steps)} steps, {int(steps['kkt_ok'].sum())} certified, "
         f"largest KKT violation {steps['kkt_violation'].max():.1e}, realized {receding.cost_bps:.3f} bps")  # fmt: skip
    columns = [c for c in ("cost_bps", "vs_twap_bps", "capture", "predicted_bps", "shortfall_bps", "max_slice") if c in table]
    echo("  capture = (TWAP - strategy) / (TWAP - hindsight A): 1 is the hindsight bound (it looks ahead), 0 is TWAP")
    with pd.option_context("display.width", 160):
        echo(table[columns].to_string(float_format=lambda v: f"{v:,.3f}"))
    echo("  " + DRIFT_HELP)

    if plots:
        files += _plots(folder, curves, schedules, receding)
    echo(f"[7/7] files: {', '.join(path.name for path in files)}")

    headline = schedules["C", "fast"]
    echo(f"\nschedule C, shares per hour:  {_hourly(headline.x)}")
    echo(str(headline))
    certified = bool(comparison["kkt_ok"].all() and steps["kkt_ok"].all())
    return DemoResult(comparison=comparison, schedules=schedules, backtest=table, files=files, certified=certified)
