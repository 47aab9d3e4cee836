"""Benchmark a desk's universe at scale: 3,000 synthetic symbols planned and backtested.

The universe is :func:`convexsched.data.universe.synthetic_universe` (the liquidity cross-section of
the 35 real Chinese books: spread, depth and volume spanning orders of magnitude), one Chinese
trading day (237 one-minute buckets, 10 levels, one snapshot per bucket), each symbol buying the
smaller of 5% of its day's expected volume and 10% of its day's expected displayed depth, in
100-share lots.

1. **Plan**: tomorrow's schedules A, B and C for every symbol, each certified (KKT), with
   :func:`~convexsched.execution.universe.plan_task` (``objective=["A", "B", "C"]``), serially and on
   a ``LocalCluster`` (process workers, one thread each, keys in batches); the tables must be equal.
2. **Backtest**: scenario A (with TWAP and the hindsight bound, :func:`backtest_task`) on every
   symbol-day, serially and on the cluster, tables equal; each task records its time and its
   process's peak memory (VmHWM after a reset, so the peak of a worker while it ran that task).
3. **Core-hours**: the default backtest (every default row: TWAP, Almgren-Chriss, scenario A, B, C
   and the two hindsight rows; no impact model) timed on a sample of symbol-days, extrapolated to
   3,000 symbols x 250 days.

Writes ``benchmarks/results/universe_scale.md``. Run (heavy: hold the shared lock; about 15 min)::

    flock /tmp/convexsched-heavy.lock python benchmarks/bench_universe_scale.py [--symbols 3000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine_info, markdown_table, measured, serial_and_cluster, write_results

from convexsched.data.universe import synthetic_universe
from convexsched.execution.universe import backtest_task, plan_task, run_universe

RESULTS = Path(__file__).resolve().parent / "results"
DAY, BUCKETS = "2024-03-05", 237
YEAR_SYMBOLS, YEAR_DAYS = 3_000, 250


def universe_keys(n, seed=0):
    keys = synthetic_universe(n, seed=seed)
    keys["day"] = DAY
    expected_volume = 0.05 * keys["volume_per_minute"] * BUCKETS
    expected_depth = 0.10 * keys["level_size"] * 10 * BUCKETS
    keys["size"] = (np.minimum(expected_volume, expected_depth) / 100).round().clip(lower=1) * 100
    return keys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=3_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=30, help="symbol-days for the default-backtest timing")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    keys = universe_keys(args.symbols)
    # Load the compiled kernels once (numba's cache) so that the serial run times the work.
    plan_task(keys.iloc[0].to_dict(), objective=["A", "B", "C"])
    backtest_task(keys.iloc[0].to_dict(), strategies=["scenario A"])

    plan = serial_and_cluster(keys, plan_task, args.workers, objective=["A", "B", "C"])
    backtest = serial_and_cluster(keys, backtest_task, args.workers, strategies=["scenario A"])

    sample = universe_keys(args.sample, seed=1)
    started = time.perf_counter()
    full = run_universe(sample, measured(backtest_task), progress=False)
    full_s = time.perf_counter() - started
    per_day = full.groupby("symbol", sort=False)["task_seconds"].first()
    core_hours = YEAR_SYMBOLS * YEAR_DAYS * float(per_day.mean()) / 3600

    info = machine_info(["numpy", "numba", "pandas", "dask", "distributed", "pyarrow"])
    rows, ok = [], True
    for label, (serial, parallel, serial_s, parallel_s, ready_s, equal), target in (
        ("plan A, B, C (certified)", plan, 60), ("backtest scenario A (+ TWAP, hindsight A/B)", backtest, 600),
    ):  # fmt: skip
        failed = int((serial["status"] != "ok").sum() + (parallel["status"] != "ok").sum())
        certified = bool(serial["kkt_ok"].all()) if "kkt_ok" in serial else None
        worker_peak = float(parallel["peak_gib"].max())
        ok &= equal and failed == 0 and certified is not False
        for where, seconds in (("serial, one process", serial_s),
                               (f"LocalCluster {args.workers} x 1 thread", parallel_s)):  # fmt: skip
            met = "met" if seconds < target else "**missed**"
            rows.append((label, where, len(keys), f"{seconds:.1f}", f"{seconds / len(keys) * 1e3:.1f}",
                         f"< {target} s, {met}", equal, failed, "-" if certified is None else certified,
                         f"{worker_peak:.2f}" if "Cluster" in where else f"{float(serial['peak_gib'].max()):.2f}"))  # fmt: skip
        rows[-1] = rows[-1][:3] + (f"{parallel_s:.1f} (+{ready_s:.1f} start)",) + rows[-1][4:]
    estimate = [
        ("default backtest rows", ", ".join(pd.unique(full["strategy"]))),
        ("sample (synthetic symbol-days, serial)", f"{len(per_day)} in {full_s:.1f} s, {int((full['status'] != 'ok').sum())} failed"),
        ("seconds per symbol-day (mean / max)", f"{per_day.mean():.3f} / {per_day.max():.3f}"),
        (f"core-hours for {YEAR_SYMBOLS:,} x {YEAR_DAYS} symbol-days", f"**{core_hours:,.1f}**"),
        ("wall hours on this machine's 2 cores / on 64 cores", f"{core_hours / 2:,.1f} / {core_hours / 64:,.2f}"),
    ]  # fmt: skip
    lines = [
        "# A desk's universe at scale: 3,000 synthetic symbols",
        "",
        f"{len(keys):,} symbols of `synthetic_universe(seed=0)` (calibrated on the 35 real Chinese books), "
        f"one day ({DAY}, {BUCKETS} one-minute buckets, 10 levels, one snapshot per bucket: the executor "
        "trades each bucket against its first snapshot), each buying min(5% of its expected day volume, "
        "10% of its expected displayed depth). Serial = `run_universe(keys, task)` in this process; "
        f"cluster = a fresh `LocalCluster(processes=True, n_workers={args.workers}, threads_per_worker=1)`, "
        "keys in batches (`run_universe`'s default). Peak GiB: the largest VmHWM of a process while it ran "
        "one task (interpreter and libraries included): per worker on the cluster.",
        "",
        markdown_table(
            ["job", "where", "keys", "wall s", "ms / key", "target", "tables equal", "failed", "all KKT ok", "peak GiB"],
            rows,
            "llrrrllrlr",
        ),  # fmt: skip
        "",
        f"## Core-hours: {YEAR_SYMBOLS:,} symbols x {YEAR_DAYS} days with every default backtest row",
        "",
        markdown_table(["quantity", "value"], estimate, "lr"),
        "",
        "Measured on one core (serial), synthetic Chinese days as above; a US day has 390 buckets "
        "(about 1.6x the steps). Without an impact model: the model strategies (static plans, receding "
        "horizons) need a fitted oracle and are not in the default table without one.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores (shared with other agents' work while it ran), "
        f"{info['memory_gib']} GiB; load average at the end {tuple(round(x, 2) for x in os.getloadavg())}; "
        f"Python {info['python']}; " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".",
        "",
        "Reproduce: `flock /tmp/convexsched-heavy.lock python benchmarks/bench_universe_scale.py`",
        "",
    ]
    write_results(args.results_dir / "universe_scale.md", lines)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
