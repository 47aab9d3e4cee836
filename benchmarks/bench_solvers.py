"""Benchmark the fast paths of :func:`convexsched.solve` against cvxpy's solvers (issue 2).

Objectives (A) cost only, (B) ``rho > 0`` and (C) ``psi > 0`` with linear weights, on
order-book-like curves, for N in {390, 1560, 23400} and K in {16, 64}. Every cvxpy solver
(CLARABEL, ECOS, OSQP, HIGHS, SCS) and both formulations are timed cold (build + solve from
scratch) and warm (DPP re-solve after ``problem.update``), each in a worker process under a
time limit; the fast paths (``method="fast"``, and ``method="bisection"`` for A/B) run the same
way. Results go to ``benchmarks/results/solvers.{md,csv}`` and ``solvers_time_vs_n.png``. Run::

    python benchmarks/bench_solvers.py            # full run, about an hour on 2 cores
    python benchmarks/bench_solvers.py --quick    # N = 390 only, a few minutes
    python benchmarks/bench_solvers.py --from-csv # rewrite the report from the last CSV
    python benchmarks/bench_solvers.py --resume   # run only the cells missing from the CSV
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _common import TimedWorker, TimeLimitExceeded, WorkerDied, machine_info, markdown_table, peak_memory_gib, reset_peak_memory
from tqdm import tqdm

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = ((390, 16), (390, 64), (1560, 16), (1560, 64), (23400, 16), (23400, 64))
OBJECTIVES = ("A", "B", "C")
SOLVERS = ("CLARABEL", "ECOS", "OSQP", "HIGHS", "SCS")
FORMULATIONS = ("segment", "epigraph")
TICK = 0.01
CAPACITY_SHARE = 0.3
# rho = RHO_SCALE * lambda_A / (S/N): at the average trade size the smoothing adds half the
# cost-only water level to the marginal cost. psi = PSI_SCALE * lambda_A / (N S): for a uniform
# schedule the risk premium of the first bucket, psi * sum_j w_j R_j ~ psi N S / 6, is 2/3 of
# lambda_A. Both scale with N, so they change the schedule by a similar amount at every size.
RHO_SCALE = 0.5
PSI_SCALE = 4.0
FAST_REPEATS = 7
CVXPY_REPEATS = {390: 3, 1560: 2, 23400: 1}
# Seconds a single solve may take before its cell counts as the time limit. At N = 390 every
# solver that finishes does so in a few seconds, so 30 s already marks a hopeless one and keeps
# the full run near 40 minutes; 120 s from N = 1560 on.
TIME_LIMITS = {390: 30.0, 1560: 120.0, 23400: 120.0}
QUICK_TIME_LIMIT = 5.0
# Repeats stop early once one solve took this long (cvxpy) or the fast cell spent this long.
SLOW_SOLVE_S = 10.0
FAST_BUDGET_S = 20.0
VARIANTS = 8  # curve variants per size: the base book and perturbed re-quotes
MEMORY_GIB = 14.0
SETUP_LIMIT_S = 600.0
# Targets of issue 2, at N = 390, K = 64: (objective, cvxpy mode) -> minimum speed-up.
TARGETS = {("A", "warm"): 100, ("A", "cold"): 1000, ("B", "warm"): 100, ("B", "cold"): 1000, ("C", "warm"): 20}
NEAR_LINEAR_EXPONENT = 1.2


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def book_curves(n, k, seed=0):
    """Order-book-like cost curves for a 6.5-hour session cut into ``n`` buckets of ``k`` levels.

    Segment ``k`` of a bucket is one displayed price level: its slope is the level's distance
    from the mid (half the spread, then 1 tick per level with occasional 2-3 tick holes), its
    width the shares resting there. Depth follows the intraday U-shape of volume (3.5x at the
    open and close), grows slowly with the level and is lognormal around that; spreads are
    widest just after the open. Finer buckets see proportionally less depth (``390 / n``).
    """
    rng = np.random.default_rng([seed, n, k])
    t = (np.arange(n) + 0.5) / n
    volume = 1.0 + 2.5 * (2.0 * t - 1.0) ** 2
    spread_ticks = 1 + rng.poisson(1.5 * np.exp(-10.0 * t) + 0.3)
    gaps = rng.choice([1, 1, 1, 1, 2, 3], size=(n, k))
    gaps[:, 0] = 0
    slopes = TICK * (spread_ticks[:, None] / 2.0 + np.cumsum(gaps, axis=1))
    depth = (390.0 / n) * 2000.0 * volume[:, None] * rng.lognormal(0.0, 0.5, (n, k)) * (1.0 + 0.05 * np.arange(k))
    return slopes, np.maximum(1.0, np.round(depth))


def requote(slopes, seed):
    """The book a moment later: every bucket's ladder shifted by -1, 0 or +1 tick."""
    rng = np.random.default_rng(seed)
    shifted = slopes + TICK * rng.integers(-1, 2, size=(slopes.shape[0], 1))
    return np.maximum(shifted, TICK / 2.0)


def _size_data(n, k):
    from convexsched import CostCurves, Objective, solve

    slopes, widths = book_curves(n, k)
    variants = [CostCurves(slopes, widths)]
    variants += [CostCurves(requote(slopes, [n, k, r]), widths) for r in range(1, VARIANTS)]
    total = CAPACITY_SHARE * float(variants[0].capacity.sum())
    base = solve(variants[0], total)
    level = base.multiplier
    objectives = {
        "A": Objective(),
        "B": Objective(rho=RHO_SCALE * level / (total / n)),
        "C": Objective(psi=PSI_SCALE * level / (n * total), weights="linear"),
    }
    return {"curves": variants, "total": total, "objectives": objectives, "x_cost_only": base.x, "lambda_cost_only": level}


# ---------------------------------------------------------------------------------------------
# Worker side: runs in a spawned process, yields one message per timed solve
# ---------------------------------------------------------------------------------------------
def _diagnostics(data, schedule):
    """How much the penalty moves the schedule: L1 distance to (A)'s and the penalty's share."""
    curves = data["curves"][0]
    x = np.asarray(schedule.x, dtype=float)
    cost = float(curves.evaluate(x).sum())
    return {
        "objective_value": schedule.objective_value,
        "l1_change_vs_A": float(np.abs(x - data["x_cost_only"]).sum() / data["total"]),
        "penalty_share": 1.0 - cost / schedule.objective_value,
        "primal_residual": schedule.kkt.primal_residual,
    }


def _record(schedule, seconds, data, first):
    timings = schedule.timings
    message = {
        "seconds": seconds,
        "algorithm_seconds": timings["build"] + timings["solve"],
        "kkt_ok": bool(schedule.kkt.ok),
        "kkt_max_violation": schedule.kkt.max_violation,
        "solver_used": schedule.solver,
    }
    if first:
        message.update(_diagnostics(data, schedule))
    return message


def _warm_up(task, data, objective, state):
    """One untimed solve on 8 buckets, so imports and first-call caches are not timed."""
    from convexsched import solve
    from convexsched.errors import SolverError

    key = (task["mode"], task.get("method"), task.get("solver"), task.get("formulation"), objective.kind)
    if key in state.setdefault("warmed", set()):
        return
    small = data["curves"][0][:8]
    total = CAPACITY_SHARE * float(small.capacity.sum())
    try:
        if task["mode"] == "fast":
            solve(small, total, objective, method=task["method"])
        else:
            solve(small, total, objective, method="cvxpy", solver=task["solver"], formulation=task["formulation"], fallback=False)
    except SolverError:
        pass
    state["warmed"].add(key)


def work(task, state):
    """Handler of :class:`_common.TimedWorker`: run one benchmark cell, yield its solves.

    Messages: ``{"phase": "setup", ...}`` (the size's data), ``{"phase": "warm-up"}``, then one
    ``{"phase": "solve" | "compile", "seconds", ...}`` per timed solve, or ``{"phase":
    "failed", "error", "seconds"}`` when a solver returns no optimal status.
    """
    from convexsched import build_problem, solve
    from convexsched.errors import SolverError

    # Statuses are recorded; cvxpy's "may be inaccurate" warnings would only clutter the bar.
    warnings.simplefilter("ignore")
    size = (task["n"], task["k"])
    if state.get("size") != size:
        state.clear()
        state["size"], state["data"] = size, _size_data(*size)
    data = state["data"]
    objective = data["objectives"][task["objective"]]
    yield {
        "phase": "setup",
        "total": data["total"],
        "rho": objective.rho,
        "psi": objective.psi,
        "lambda_A": data["lambda_cost_only"],
    }
    _warm_up(task, data, objective, state)
    yield {"phase": "warm-up"}
    reset_peak_memory()
    curves, total = data["curves"], data["total"]
    mode, repeats = task["mode"], task["repeats"]
    if mode == "fast":
        spent = 0.0
        for r in range(repeats):
            started = time.perf_counter()
            schedule = solve(curves[r], total, objective, method=task["method"])
            seconds = time.perf_counter() - started
            spent += seconds
            message = _record(schedule, seconds, data, r == 0)
            message["algorithm_seconds"] = schedule.timings["solve"]
            yield dict(message, phase="solve", peak_gib=peak_memory_gib())
            if spent > FAST_BUDGET_S:
                return
        return
    options = {"method": "cvxpy", "solver": task["solver"], "fallback": False}
    if mode == "cold":
        for r in range(repeats):
            started = time.perf_counter()
            try:
                schedule = solve(curves[r], total, objective, formulation=task["formulation"], **options)
            except SolverError as error:
                yield {"phase": "failed", "error": str(error), "seconds": time.perf_counter() - started}
                return
            seconds = time.perf_counter() - started
            yield dict(_record(schedule, seconds, data, r == 0), phase="solve", peak_gib=peak_memory_gib())
            if seconds > SLOW_SOLVE_S:
                return
        return
    # Warm: build the parameterized problem once, compile it on the base book, then re-solve
    # re-quoted books through problem.update (done inside solve(problem=...)).
    started = time.perf_counter()
    try:
        problem = build_problem(curves[0], total, objective, formulation=task["formulation"], dpp=task["dpp"])
        schedule = solve(curves[0], total, objective, problem=problem, **options)
    except SolverError as error:
        yield {"phase": "failed", "error": str(error), "seconds": time.perf_counter() - started}
        return
    seconds = time.perf_counter() - started
    yield dict(_record(schedule, seconds, data, True), phase="compile", peak_gib=peak_memory_gib())
    for r in range(1, repeats + 1):
        started = time.perf_counter()
        try:
            schedule = solve(curves[r], total, objective, problem=problem, **options)
        except SolverError as error:
            yield {"phase": "failed", "error": str(error), "seconds": time.perf_counter() - started}
            return
        seconds = time.perf_counter() - started
        yield dict(_record(schedule, seconds, data, False), phase="solve", peak_gib=peak_memory_gib())
        if seconds > SLOW_SOLVE_S:
            return


# ---------------------------------------------------------------------------------------------
# Parent side: plan, skip rules, aggregation
# ---------------------------------------------------------------------------------------------
def plan(sizes, repeats_override=None):
    """Every cell in run order: per size the fast paths, then cvxpy cold/warm per solver."""
    from convexsched.optimize.problem import DPP_MAX_SIZE

    cells = []
    for n, k in sizes:
        cvx_repeats = repeats_override or CVXPY_REPEATS[n]
        base = {"n": n, "k": k}
        for objective in OBJECTIVES:
            methods = ("fast", "bisection") if objective != "C" else ("fast",)
            for method in methods:
                cells.append(
                    dict(
                        base,
                        objective=objective,
                        mode="fast",
                        method=method,
                        solver="",
                        formulation="",
                        repeats=FAST_REPEATS,
                        dpp="",
                    )
                )
        for objective in OBJECTIVES:
            for solver in SOLVERS:
                for formulation in FORMULATIONS:
                    cell = dict(
                        base, objective=objective, method="cvxpy", solver=solver, formulation=formulation, repeats=cvx_repeats
                    )
                    cells.append(dict(cell, mode="cold", dpp=""))
                    dpp = n * k <= DPP_MAX_SIZE
                    cells.append(dict(cell, mode="warm", dpp="yes" if dpp else "rebuilt"))
    # Forced DPP above the automatic threshold: does the compiling first solve stay usable?
    for n, k in sizes:
        if n * k > DPP_MAX_SIZE:
            for objective in ("A", "C"):
                for formulation in FORMULATIONS:
                    cells.append(
                        {
                            "n": n,
                            "k": k,
                            "objective": objective,
                            "mode": "warm",
                            "method": "cvxpy",
                            "solver": "CLARABEL",
                            "formulation": formulation,
                            "repeats": 1,
                            "dpp": "forced",
                        }
                    )
    return cells


def _key(cell):
    return (cell["objective"], cell["method"], cell["solver"], cell["formulation"], cell["mode"], cell["dpp"] == "forced")


def _skip_reason(cell, hopeless, rows):
    """Why a cell is not run: a size it dominates was hopeless, or its cold twin was."""
    for n, k, why in hopeless.get(_key(cell), ()):
        if n <= cell["n"] and k <= cell["k"]:
            return f"skipped: {why} at {n}x{k}"
    if cell["mode"] == "warm" and cell["dpp"] == "yes":
        twin = _find(rows, cell, mode="cold")
        if twin is not None and twin["status"] in LIMIT_STATUSES + ("failed",):
            return f"skipped: cold {'failed' if twin['status'] == 'failed' else 'hit the limit'} at this size"
        if twin is not None and twin["status"] == "skipped":
            return twin["note"]
    return None


LIMIT_STATUSES = ("time limit", "out of memory", "crashed")
# Every dominated size has at least 4x the N*K of the one that dominates it, and no solver gets
# faster per variable as problems grow: a solve longer than a quarter of the limit (successful or
# not) would exceed the limit at the next size.
PREDICTS_LIMIT = 0.25


def _mark_hopeless(hopeless, row):
    """Record a cell that hit the limit, or took long enough to hit it at the next size."""
    if row["status"] in LIMIT_STATUSES:
        why = "hit the limit" if row["status"] == "time limit" else row["status"]
    elif row["status"] in ("ok", "failed") and row["median_s"] > PREDICTS_LIMIT * row["time_limit_s"]:
        why = f"{'failed after' if row['status'] == 'failed' else 'took'} {row['median_s']:.0f} s"
    else:
        return
    hopeless.setdefault(_key(row), []).append((row["n"], row["k"], why))


def _find(rows, cell, **changes):
    wanted = dict(cell, **changes)
    for row in rows:
        if all(row[name] == wanted[name] for name in ("n", "k", "objective", "method", "solver", "formulation", "mode")):
            if (row["dpp"] == "forced") == (wanted["dpp"] == "forced"):
                return row
    return None


def run_cell(worker, cell, limit):
    """Run one cell in the worker; return its CSV row (times in seconds)."""
    row = dict(
        cell,
        status="ok",
        note="",
        measured=0,
        median_s=np.nan,
        min_s=np.nan,
        algorithm_median_s=np.nan,
        compile_s=np.nan,
        objective_value=np.nan,
        kkt_ok=None,
        kkt_max_violation=np.nan,
        primal_residual=np.nan,
        l1_change_vs_A=np.nan,
        penalty_share=np.nan,
        peak_gib=np.nan,
        solver_used="",
        total=np.nan,
        rho=np.nan,
        psi=np.nan,
        lambda_A=np.nan,
        time_limit_s=limit,
    )
    task = dict(cell, dpp=cell["dpp"] != "" and cell["dpp"] != "rebuilt")
    times, algorithm, peaks, kkt_ok = [], [], [], []
    started = time.perf_counter()
    try:
        for message in worker.run(task, limit, first_limit=SETUP_LIMIT_S):
            phase = message["phase"]
            if phase == "setup":
                row.update(total=message["total"], rho=message["rho"], psi=message["psi"], lambda_A=message["lambda_A"])
                continue
            if phase == "warm-up":
                continue
            if phase == "failed":
                row.update(status="failed", note=message["error"][:160], median_s=message["seconds"])
                continue
            for name in ("objective_value", "l1_change_vs_A", "penalty_share", "primal_residual"):
                if name in message:
                    row[name] = message[name]
            peaks.append(message["peak_gib"])
            kkt_ok.append(message["kkt_ok"])
            row["kkt_max_violation"] = np.nanmax([row["kkt_max_violation"], message["kkt_max_violation"]])
            row["solver_used"] = message["solver_used"] or ""
            if phase == "compile":
                row["compile_s"] = message["seconds"]
            else:
                times.append(message["seconds"])
                algorithm.append(message["algorithm_seconds"])
    except TimeLimitExceeded:
        row.update(status="time limit", note=f"a solve exceeded {limit:g} s")
    except WorkerDied as error:
        row.update(status="crashed", note=f"{error} (likely out of memory)")
    except RuntimeError as error:
        out_of_memory = str(error).startswith("MemoryError")
        row.update(status="out of memory" if out_of_memory else "error", note=str(error)[:160])
    if row["status"] != "ok" and times:
        row["note"] += f" (after {len(times)} timed solves)"
    if row["status"] == "ok" and not times and np.isnan(row["compile_s"]):
        row.update(status="error", note="no timed solve")
    if times:
        row.update(
            measured=len(times),
            median_s=float(np.median(times)),
            min_s=float(np.min(times)),
            algorithm_median_s=float(np.median(algorithm)),
        )
    if row["status"] in ("time limit", "out of memory", "crashed"):
        row["median_s"] = limit if row["status"] == "time limit" else np.nan
    if peaks:
        row["peak_gib"] = max(peaks)
    row["kkt_ok"] = all(kkt_ok) if kkt_ok else None
    row["cell_wall_s"] = time.perf_counter() - started
    row["load_1min"] = os.getloadavg()[0]
    return row


def run(sizes, limits, repeats_override, csv_path, done=None):
    """Run the plan's cells (reusing the rows of ``done``, a previous run's CSV) and save the CSV."""
    cells = plan(sizes, repeats_override)
    rows, hopeless = [], {}
    previous = [] if done is None else done.to_dict("records")
    worker = TimedWorker(work, memory_gib=MEMORY_GIB, quiet=True)
    bar = tqdm(cells, desc="cells", unit="cell", dynamic_ncols=True)
    try:
        for cell in bar:
            label = f"{cell['n']}x{cell['k']} {cell['objective']} {cell['method']} {cell['solver']} {cell['formulation']} {cell['mode']}"
            bar.set_postfix_str(label)
            limit = limits[cell["n"]]
            reused = _find(previous, cell)
            if reused is not None and reused["status"] != "skipped":
                rows.append(reused)
                _mark_hopeless(hopeless, reused)
                continue
            if cell["dpp"] == "rebuilt":
                rows.append(_rebuilt_row(rows, cell, limit))
                continue
            reason = _skip_reason(cell, hopeless, rows)
            if reason:
                rows.append(
                    dict(
                        cell,
                        status="skipped",
                        note=reason,
                        time_limit_s=limit,
                        median_s=np.nan,
                        cell_wall_s=0.0,
                        load_1min=os.getloadavg()[0],
                    )
                )
                continue
            row = run_cell(worker, cell, limit)
            _mark_hopeless(hopeless, row)
            if row["status"] != "ok":
                tqdm.write(f"{label}: {row['status']} ({row['note']})")
            rows.append(row)
            pd.DataFrame(rows).to_csv(csv_path, index=False)
    finally:
        worker.stop()
    pd.DataFrame(rows).to_csv(csv_path, index=False)
    return pd.DataFrame(rows)


def _rebuilt_row(rows, cell, limit):
    """Warm above the DPP threshold: ``update`` rebuilds a constant problem, the cold path."""
    cold = _find(rows, cell, mode="cold", dpp="")
    row = dict(cold) if cold is not None else dict(cell, median_s=np.nan)
    row.update(mode="warm", dpp="rebuilt", cell_wall_s=0.0, time_limit_s=limit)
    if row.get("status") == "ok":
        row["note"] = "N*K > 40,000: problem.update rebuilds without DPP, i.e. the cold path; cold time reported"
    return row


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def fmt_time(seconds):
    if seconds is None or not np.isfinite(seconds):
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_ratio(value):
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2g}x"


def _cell_text(row):
    """One cvxpy cell of the full table: its median time, or why there is none."""
    if row is None:
        return ""
    status = row["status"]
    if status == "ok":
        text = fmt_time(row["median_s"])
        if row["kkt_ok"] is False or row["kkt_ok"] == "False":
            text += " ‡"
        return text
    if status == "time limit":
        return "TL"
    if status == "skipped":
        note = row["note"]
        for phrase, text in (
            ("cold failed", "skip (cold fail)"),
            ("cold hit", "skip (cold TL)"),
            ("hit the limit", "skip (TL smaller)"),
            ("out of memory", "skip (OOM smaller)"),
            ("crashed", "skip (crash smaller)"),
        ):
            if phrase in note:
                return text
        return "skip (slow smaller)"
    if status == "failed":
        return f"fail ({fmt_time(row['median_s'])})"
    return {"out of memory": "OOM", "crashed": "crash"}.get(status, status)


def summarize(df):
    """Per objective and size: fast path, best warm and cold cvxpy, ratios, agreement."""
    records = []
    for (n, k), group in df.groupby(["n", "k"], sort=False):
        for objective in OBJECTIVES:
            rows = group[group["objective"] == objective]
            fast = rows[(rows["method"] == "fast")].iloc[0]
            bisection = rows[rows["method"] == "bisection"]
            cvx = rows[(rows["method"] == "cvxpy") & (rows["dpp"] != "forced")]
            limit = float(rows["time_limit_s"].iloc[0])
            best = {}
            for mode in ("warm", "cold"):
                part = cvx[cvx["mode"] == mode]
                ok = part[part["status"] == "ok"]
                if part.empty:
                    best[mode] = (np.nan, np.nan, "not run", "")
                elif len(ok):
                    winner = ok.loc[ok["median_s"].idxmin()]
                    best[mode] = (
                        float(winner["median_s"]),
                        float(winner["algorithm_median_s"]),
                        f"{winner['solver']}/{winner['formulation']}",
                        winner["dpp"],
                    )
                else:
                    best[mode] = (limit, limit, "none (all failed: time limit used)", "")
            fast_ok = fast["status"] == "ok"
            fast_s = float(fast["median_s"]) if fast_ok else limit
            fast_algo = float(fast["algorithm_median_s"]) if fast_ok else limit
            reference = _clarabel_reference(cvx)
            agreement = np.nan
            if fast_ok and reference is not None:
                agreement = (fast["objective_value"] - reference) / abs(reference)
            record = {
                "n": n,
                "k": k,
                "objective": objective,
                "fast_status": fast["status"],
                "fast_s": fast_s,
                "fast_algorithm_s": fast_algo,
                "fast_measured": fast.get("measured", 0),
                "fast_kkt_ok": fast["kkt_ok"],
                "warm_s": best["warm"][0],
                "warm_algorithm_s": best["warm"][1],
                "warm_by": best["warm"][2],
                "warm_dpp": best["warm"][3],
                "cold_s": best["cold"][0],
                "cold_algorithm_s": best["cold"][1],
                "cold_by": best["cold"][2],
                "speedup_warm": best["warm"][0] / fast_s,
                "speedup_cold": best["cold"][0] / fast_s,
                "speedup_warm_algorithm": best["warm"][1] / fast_algo,
                "speedup_cold_algorithm": best["cold"][1] / fast_algo,
                "agreement": agreement,
                "l1_change_vs_A": _effect(rows, "l1_change_vs_A"),
                "penalty_share": _effect(rows, "penalty_share"),
                "limit": limit,
                "rho": float(rows["rho"].dropna().iloc[0]) if rows["rho"].notna().any() else np.nan,
                "psi": float(rows["psi"].dropna().iloc[0]) if rows["psi"].notna().any() else np.nan,
            }
            if len(bisection):
                b = bisection.iloc[0]
                record.update(
                    bisection_s=b["median_s"] if b["status"] == "ok" else np.nan, bisection_residual=b["primal_residual"]
                )
            records.append(record)
    return pd.DataFrame(records)


def _clarabel_reference(cvx):
    for mode, formulation in (("cold", "segment"), ("cold", "epigraph"), ("warm", "segment"), ("warm", "epigraph")):
        hit = cvx[
            (cvx["solver"] == "CLARABEL")
            & (cvx["mode"] == mode)
            & (cvx["formulation"] == formulation)
            & (cvx["status"] == "ok")
            & cvx["objective_value"].notna()
        ]
        if len(hit):
            return float(hit["objective_value"].iloc[0])
    return None


def _effect(rows, column):
    """The penalty's effect measured on the fast path's schedule, else on Clarabel's."""
    for mask in (rows["method"] == "fast", rows["solver"] == "CLARABEL"):
        values = rows[mask & (rows["status"] == "ok")][column].dropna()
        if len(values):
            return float(values.iloc[0])
    return np.nan


def scaling_exponent(summary, objective, column="fast_s", k=None):
    """Least-squares slope of log(time) on log(N*K) (on log N at one ``k``) where the fast path ran."""
    part = summary[(summary["objective"] == objective) & (summary["fast_status"] == "ok")]
    if k is not None:
        part = part[part["k"] == k]
    if len(part) < 2:
        return np.nan
    return float(np.polyfit(np.log(part["n"] * part["k"]), np.log(part[column]), 1)[0])


def plot(summary, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    for ax, objective in zip(axes, OBJECTIVES):
        part = summary[summary["objective"] == objective]
        for k, style in ((64, "-"), (16, "--")):
            rows = part[part["k"] == k].sort_values("n")
            if rows.empty:
                continue
            fast = rows[rows["fast_status"] == "ok"]
            ax.plot(fast["n"], fast["fast_s"], "o" + style, color="tab:green", label=f"fast, K={k}")
            if "bisection_s" in rows and rows["bisection_s"].notna().any():
                ax.plot(rows["n"], rows["bisection_s"], "^" + style, color="tab:olive", label=f"bisection, K={k}")
            warm = rows[~rows["warm_by"].str.startswith(("none", "not run"))]
            ax.plot(warm["n"], warm["warm_s"], "s" + style, color="tab:blue", label=f"best warm cvxpy, K={k}")
            cold = rows[~rows["cold_by"].str.startswith(("none", "not run"))]
            ax.plot(cold["n"], cold["cold_s"], "x" + style, color="tab:red", label=f"best cold cvxpy, K={k}")
        limits = part.groupby("n")["limit"].first()
        ax.plot(limits.index, limits.values, ":", color="grey", linewidth=1, label="time limit per solve")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (buckets)")
        ax.set_title(f"objective {objective}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("median seconds per solve() (incl. KKT certificate)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize="small", loc="center right")
    fig.suptitle("convexsched: fast paths vs cvxpy (warm = best DPP re-solve, or rebuilt above N*K = 40,000)")
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(df, path_md, path_png, info, args):
    from convexsched.optimize.solve import SOLVER_OPTIONS

    summary = summarize(df)
    plot(summary, path_png)
    per_n = df.groupby("n")["time_limit_s"].first()
    limit = ", ".join(f"{value:g} s at N = {n}" for n, value in per_n.items())
    sizes = sorted({(int(n), int(k)) for n, k in zip(df["n"], df["k"])}, key=lambda s: (s[0] * s[1], s[0]))
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    measured_minutes = df["cell_wall_s"].fillna(0).sum() / 60
    lines = [
        "# Solver benchmark: fast paths vs cvxpy (issue 2)",
        "",
        f"Regenerate with `python benchmarks/bench_solvers.py{' --quick' if args.quick else ''}` "
        f"({'quick mode: N = 390 only' if args.quick else 'full run'}; cells took {measured_minutes:.1f} min of wall time). "
        f"Raw numbers: `solvers.csv`; plot: `solvers_time_vs_n.png`.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, {info['platform']}, "
        f"Python {info['python']}. {_load_text(df)}",
        f"Versions: {versions}.",
        "",
        "## Methodology",
        "",
        f"* **Curves** (`book_curves` in this script): order-book-like ladders on a {TICK} tick grid. Segment k of a "
        "bucket is one price level: slope = distance from the mid (half the spread, then +1 tick per level with "
        "occasional 2-3 tick holes), width = shares resting there; depth follows an intraday U-shape (3.5x at the "
        "open and close), spreads are widest just after the open, depth is lognormal, and finer buckets see "
        "proportionally less depth. N = 390 / 1560 / 23400 are 60-s / 15-s / 1-s buckets of a 6.5-h session.",
        f'* **Budget** S = {CAPACITY_SHARE:.0%} of the total capacity, `budget="eq"`.',
        f"* **Objectives**: (A) cost only; (B) rho = {RHO_SCALE} * lambda_A / (S/N); (C) psi = {PSI_SCALE} * lambda_A / (N S) "
        "with linear weights w_i = i/N (lambda_A = (A)'s water level). Their effect, measured on the exact schedules: "
        + "; ".join(_effect_text(summary, n, k) for n, k in sizes)
        + ". So the penalties matter without dominating.",
        f"* **Repeats**: each repeat solves a re-quoted book (every bucket's ladder shifted by -1/0/+1 tick), the "
        f"same {VARIANTS} books for every method. Fast paths: median of {FAST_REPEATS} "
        f"(fewer once a cell has spent {FAST_BUDGET_S:g} s). cvxpy: median of "
        + ", ".join(f"{r} at N = {n}" for n, r in CVXPY_REPEATS.items() if any(s[0] == n for s in sizes))
        + (f" ({args.repeats} forced by --repeats)" if args.repeats else "")
        + f"; a solve longer than {SLOW_SOLVE_S:g} s ends the repeats of its cell.",
        "* **Times** are wall-clock seconds of the whole `solve(...)` call, which includes the KKT certificate for "
        "every path (about 1-2 ms at N = 390); the *algorithm-only* columns drop it (fast: `timings['solve']`, "
        "cvxpy: `timings['build'] + timings['solve']`, where cvxpy's canonicalization happens inside the solve).",
        '* **Cold** = `solve(curves, S, objective, method="cvxpy", solver=X, formulation=F, fallback=False)` '
        "from scratch (build + canonicalize + solve). **Warm** = `build_problem(...)` once on the base book, a "
        "first (compiling) solve, then `solve(requoted, ..., problem=problem)`, which calls `problem.update` and "
        "re-solves with the cached DPP canonicalization (and the solver's warm start where it has one). "
        '`build_problem(dpp="auto")` turns DPP off above N*K = 40,000, where `update` rebuilds the problem: '
        "warm then *is* the cold path, marked (r) and reported with the cold time, not re-measured. "
        "The compile time column is build + first solve.",
        f"* **Isolation**: every cell (fast paths too) runs in a spawned worker process; a solve that returns "
        f"nothing within the **time limit: {limit}** (cold, warm compile and each re-solve alike) is killed and counted as "
        f"the time limit; the worker's address space is capped at {MEMORY_GIB:g} GiB so a blow-up is an "
        "out-of-memory failure, not a machine-wide OOM kill. A solver that returns a non-optimal status "
        "(`fallback=False`) is a failure. In ratios failures count as the time limit. A cell that hit the limit "
        "or ran out of memory is skipped at every larger size (both N and K at least as large). So is one whose "
        f"solve took (or failed after) more than {PREDICTS_LIMIT:.0%} of the limit: every larger size has at least "
        "4x its N*K, so it would exceed the limit there (this rule was added during the full run, from N = 1560 "
        "on, when iteration-capped OSQP/HiGHS failures of about a minute each made the run too long; cells already "
        "measured were kept). A warm cell is skipped when its cold twin hit the limit or failed at the same size "
        "(the first warm solve compiles and hands the same problem to the same solver).",
        "* **Solver tolerances** (`convexsched.optimize.solve.SOLVER_OPTIONS`, tighter than the defaults so the answers "
        "certify at 1e-5): "
        + "; ".join(f"{name}: {options}" for name, options in SOLVER_OPTIONS.items())
        + "; ECOS and HiGHS at their defaults. A cvxpy answer whose KKT certificate fails at 1e-5 is marked ‡.",
        "* Untimed warm-up solve on 8 buckets per (worker, path, solver, formulation), so imports and "
        "first-call caches are not timed.",
        "",
        "## Fast path vs cvxpy (same run)",
        "",
        "Speed-up = best cvxpy median / fast-path median (end-to-end; algorithm-only in brackets). "
        "Agreement = (F_fast - F_Clarabel) / |F_Clarabel| on the base book (Clarabel cold segment; negative means "
        "the fast path is lower).",
        "",
    ]
    headers = [
        "N",
        "K",
        "obj",
        "fast",
        "fast algo",
        "best warm cvxpy",
        "best cold cvxpy",
        "speed-up vs warm",
        "speed-up vs cold",
        "agreement",
        "bisection (E7)",
    ]
    table = []
    for _, s in summary.iterrows():
        fast_text = fmt_time(s["fast_s"]) if s["fast_status"] == "ok" else f"**{s['fast_status']}**"
        warm = f"{fmt_time(s['warm_s'])} {s['warm_by']}" + (" (r)" if s["warm_dpp"] == "rebuilt" else "")
        bisection = ""
        if "bisection_s" in s and np.isfinite(s.get("bisection_s", np.nan)):
            bisection = f"{fmt_time(s['bisection_s'])}, misses S by {s['bisection_residual']:.1e}"
        table.append(
            [
                s["n"],
                s["k"],
                s["objective"],
                fast_text,
                fmt_time(s["fast_algorithm_s"]) if s["fast_status"] == "ok" else "",
                warm,
                f"{fmt_time(s['cold_s'])} {s['cold_by']}",
                f"{fmt_ratio(s['speedup_warm'])} ({fmt_ratio(s['speedup_warm_algorithm'])})",
                f"{fmt_ratio(s['speedup_cold'])} ({fmt_ratio(s['speedup_cold_algorithm'])})",
                f"{s['agreement']:.1e}" if np.isfinite(s["agreement"]) else "n/a",
                bisection,
            ]
        )
    lines += [markdown_table(headers, table, "rrlrrllrrrl"), ""]
    lines += ["Where the fast path hit the limit, its time counts as the limit, so the speed-up is an upper bound.", ""]
    lines += _bisection_note(summary)
    lines += _targets_section(summary)
    lines += _scaling_section(summary)
    lines += _compile_section(df)
    lines += _full_table(df, sizes, limit)
    path_md.write_text("\n".join(lines) + "\n")
    return summary


def _load_text(df):
    """The 1-minute load average over the run's cells: other work on the machine adds noise."""
    load = df["load_1min"].dropna() if "load_1min" in df else pd.Series(dtype=float)
    if load.empty:
        return ""
    return (
        f"1-min load average after each cell: median {load.median():.2f}, max {load.max():.2f} on "
        f"{os.cpu_count()} cores (the machine is shared with other work, so single timings are noisy)."
    )


def _bisection_note(summary):
    """Why the dual bisection (E7) is slow and off the budget on (A), when it is."""
    part = summary[(summary["objective"] == "A") & summary["bisection_residual"].notna()]
    worst = part["bisection_residual"].max() if len(part) else np.nan
    if not worst > 1e-3:
        return []
    return [
        f"The dual bisection (E7) on (A) misses S by up to {worst:.1%} of S, more than its eps_S = 0.1%: on a "
        "tick grid many segments share a slope, so S(lambda) jumps by more than eps_S at one price level, "
        "no level meets the tolerance and the bisection runs all 200 iterations (hence also its time). "
        "The exact water-filling splits the marginal level instead.",
        "",
    ]


def _effect_text(summary, n, k):
    part = summary[(summary["n"] == n) & (summary["k"] == k)].set_index("objective")
    pieces = []
    for objective in ("B", "C"):
        if objective in part.index:
            row = part.loc[objective]
            pieces.append(
                f"{objective} moves {row['l1_change_vs_A']:.0%} of S (L1) and its penalty is {row['penalty_share']:.0%} of F"
            )
    return f"{n}x{k}: " + ", ".join(pieces)


def _targets_section(summary):
    lines = ["## Targets (N = 390, K = 64)", ""]
    row = summary[(summary["n"] == 390) & (summary["k"] == 64)].set_index("objective")
    if row.empty:
        return lines + ["Not measured in this run.", ""]
    for (objective, mode), target in TARGETS.items():
        s = row.loc[objective]
        ratio, algorithm = s[f"speedup_{mode}"], s[f"speedup_{mode}_algorithm"]
        verdict = "**met**" if ratio >= target else "**missed**"
        lines.append(
            f"* {objective} fast path >= {target}x faster than the best {mode} cvxpy solve: {verdict} "
            f"({fmt_ratio(ratio)} end-to-end: {fmt_time(s['fast_s'])} vs {fmt_time(s[f'{mode}_s'])} "
            f"{s[f'{mode}_by']}; algorithm-only {fmt_ratio(algorithm)}, "
            f"{'met' if algorithm >= target else 'missed'})."
        )
    return lines + [""]


def _scaling_section(summary):
    lines = [
        "## Fast-path scaling in N*K",
        "",
        f"Time per N*K (ns per segment) and the least-squares exponent of time in N*K over the sizes run "
        f"(near-linear: exponent <= {NEAR_LINEAR_EXPONENT}; sorting makes a small log factor expected).",
        "",
    ]
    ks = sorted(summary["k"].unique())
    headers = [
        "objective",
        *[f"{n}x{k}" for n, k in summary[["n", "k"]].drop_duplicates().itertuples(index=False)],
        "exponent (end-to-end)",
        "exponent (algorithm)",
        *[f"exponent in N, K={k}" for k in ks],
        "near-linear?",
    ]
    table = []
    for objective in OBJECTIVES:
        part = summary[summary["objective"] == objective]
        cells = []
        for _, s in part.iterrows():
            if s["fast_status"] == "ok":
                cells.append(f"{1e9 * s['fast_s'] / (s['n'] * s['k']):.0f}")
            else:
                cells.append(s["fast_status"])
        if summary["n"].nunique() < 2:
            # One N (--quick): no exponent in N was measured, and one fitted across K alone says
            # nothing about growth in N*K.
            table.append(
                [objective, *cells, "not measured (one N)", "not measured (one N)", *["not measured" for _ in ks], "not measured"]
            )
            continue
        exponent = scaling_exponent(summary, objective)
        algorithm = scaling_exponent(summary, objective, "fast_algorithm_s")
        complete = (part["fast_status"] == "ok").all()
        failed = ", ".join(f"{s['fast_status']} at {s['n']}x{s['k']}" for _, s in part.iterrows() if s["fast_status"] != "ok")
        in_n = [scaling_exponent(summary, objective, k=k) for k in ks]
        # An exponent in N needs two sizes at that K; a missing one is not evidence of linearity.
        complete = complete and all(np.isfinite(value) and value <= NEAR_LINEAR_EXPONENT for value in in_n)
        verdict = "yes" if exponent <= NEAR_LINEAR_EXPONENT and complete else "no"
        if failed:
            verdict += f" ({failed})"
        table.append([objective, *cells, f"{exponent:.2f}", f"{algorithm:.2f}", *[f"{value:.2f}" for value in in_n], verdict])
    return lines + [markdown_table(headers, table, "l" + "r" * (len(headers) - 2) + "l"), ""]


def _compile_section(df):
    """The first (compiling) DPP solve against the cold solve, Clarabel, by size."""
    lines = [
        "## DPP compile time vs N (Clarabel)",
        "",
        "Compile = `build_problem(dpp=True)` + the first solve; re-solve = the median warm solve after "
        '`update`; cold = the constant build + solve at the same size. Above N*K = 40,000 `dpp="auto"` '
        "builds without parameters; the *forced* rows build with `dpp=True` anyway to show why.",
        "",
    ]
    warm = df[(df["solver"] == "CLARABEL") & (df["mode"] == "warm") & df["dpp"].isin(["yes", "forced"])]
    headers = ["N", "K", "N*K", "obj", "formulation", "DPP", "compile", "re-solve", "cold", "compile / cold", "peak memory"]
    table = []
    for _, w in warm.sort_values(["n", "k", "objective", "formulation"]).iterrows():
        cold = df[
            (df["n"] == w["n"])
            & (df["k"] == w["k"])
            & (df["objective"] == w["objective"])
            & (df["solver"] == "CLARABEL")
            & (df["formulation"] == w["formulation"])
            & (df["mode"] == "cold")
        ]
        cold_s = float(cold["median_s"].iloc[0]) if len(cold) and cold["status"].iloc[0] == "ok" else np.nan
        if w["status"] == "ok":
            compile_text = fmt_time(w["compile_s"])
            ratio = f"{w['compile_s'] / cold_s:.1f}" if np.isfinite(cold_s) else "n/a"
        else:
            compile_text, ratio = _cell_text(w), ""
        table.append(
            [
                w["n"],
                w["k"],
                f"{w['n'] * w['k']:,}",
                w["objective"],
                w["formulation"],
                "auto" if w["dpp"] == "yes" else "forced",
                compile_text,
                fmt_time(w["median_s"]) if w["status"] == "ok" else "",
                fmt_time(cold_s),
                ratio,
                f"{w['peak_gib']:.2f} GiB" if np.isfinite(w.get("peak_gib", np.nan)) else "",
            ]
        )
    return lines + [markdown_table(headers, table, "rrrllllrrrr"), ""]


def _full_table(df, sizes, limit):
    lines = [
        "## Every cvxpy cell (median seconds per solve)",
        "",
        f"TL: a solve exceeded the time limit ({limit}). skip (TL / OOM smaller): hit the limit / ran out of "
        "memory at a smaller size, not run. skip (slow smaller): took (or failed after) more than a quarter of "
        "the limit at a size with at most a quarter of the N*K, so it would exceed the limit here; the CSV "
        "names the size. skip (cold TL / cold fail): the cold solve hit the limit (or ran out of memory) / failed at this size. "
        "fail (t): non-optimal status after t. "
        "OOM / crash: out of memory. (r): rebuilt, warm = cold above N*K = 40,000. ‡: KKT certificate failed "
        "at 1e-5.",
        "",
    ]
    cvx = df[(df["method"] == "cvxpy") & (df["dpp"] != "forced")]
    headers = ["N", "K", "solver", "formulation", *[f"{o} {m}" for o in OBJECTIVES for m in ("cold", "warm")]]
    table = []
    for n, k in sizes:
        for solver in SOLVERS:
            for formulation in FORMULATIONS:
                entries = []
                for objective in OBJECTIVES:
                    cell = cvx[
                        (cvx["n"] == n)
                        & (cvx["k"] == k)
                        & (cvx["solver"] == solver)
                        & (cvx["formulation"] == formulation)
                        & (cvx["objective"] == objective)
                    ]
                    for mode in ("cold", "warm"):
                        hit = cell[cell["mode"] == mode]
                        if len(hit) and hit.iloc[0]["dpp"] == "rebuilt":
                            # Warm is the cold path here: show the cold cell, marked.
                            hit = cell[cell["mode"] == "cold"]
                            entries.append(_cell_text(hit.iloc[0]) + " (r)")
                        else:
                            entries.append(_cell_text(hit.iloc[0]) if len(hit) else "")
                table.append([n, k, solver, formulation, *entries])
    lines += [markdown_table(headers, table, "rrll" + "r" * 6), ""]
    failures = cvx[(cvx["status"] == "failed") & (cvx["dpp"] != "rebuilt")].drop_duplicates(
        subset=["solver", "formulation", "objective", "note"]
    )
    if len(failures):
        lines += ["Failure messages (first of each kind):", ""]
        for _, f in failures.iterrows():
            lines.append(f"* {f['n']}x{f['k']} {f['objective']} {f['solver']} {f['formulation']} {f['mode']}: {f['note']}")
        lines.append("")
    return lines


def _read_csv(path):
    df = pd.read_csv(path)
    text = ["method", "solver", "formulation", "dpp", "note", "solver_used"]
    df[text] = df[text].fillna("")
    return df


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 390 only (both K), a few minutes")
    parser.add_argument("--sizes", nargs="+", metavar="NxK", help="sizes to run, e.g. 390x64 1560x16")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds per solve before a cell counts as the time limit, at every size "
        "(default 30 at N = 390 and 120 from N = 1560 on; 5 with --quick)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="cvxpy repeats at every size (default 3 / 2 / 1 at N = 390 / 1560 / 23400; 1 with --quick)",
    )
    parser.add_argument("--from-csv", action="store_true", help="rewrite the report from solvers.csv, no solving")
    parser.add_argument("--resume", action="store_true", help="keep the cells already in solvers.csv, run the rest")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where solvers.{csv,md} and the plot go")
    args = parser.parse_args()

    results = args.results_dir
    results.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = results / "solvers.csv", results / "solvers.md"
    png_path = results / "solvers_time_vs_n.png"
    info = machine_info(["convexsched", "cvxpy", "numpy", "scipy", "clarabel", "ecos", "osqp", "highspy", "scs"])
    done = _read_csv(csv_path) if args.from_csv or args.resume else None
    if args.from_csv:
        df = done
        args.quick = set(df["n"]) == {390}
    else:
        if args.sizes:
            sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes]
        else:
            sizes = [s for s in SIZES if s[0] == 390] if args.quick else list(SIZES)
        for n, _ in sizes:
            if n not in CVXPY_REPEATS and args.repeats is None:
                parser.error(f"no default repeats for N = {n}; pass --repeats")
        if args.time_limit:
            limits = {n: args.time_limit for n, _ in sizes}
        elif args.quick:
            limits = {n: QUICK_TIME_LIMIT for n, _ in sizes}
        else:
            limits = {n: TIME_LIMITS.get(n, max(TIME_LIMITS.values())) for n, _ in sizes}
        repeats = args.repeats or (1 if args.quick else None)
        df = run(sorted(sizes, key=lambda s: (s[0] * s[1], s[0])), limits, repeats, csv_path, done)
    summary = report(df, md_path, png_path, info, args)
    print((md_path).read_text().split("## Methodology")[0])
    print(
        summary[
            [
                "n",
                "k",
                "objective",
                "fast_s",
                "warm_s",
                "warm_by",
                "cold_s",
                "cold_by",
                "speedup_warm",
                "speedup_cold",
                "agreement",
            ]
        ].to_string(index=False)
    )


if __name__ == "__main__":
    main()
