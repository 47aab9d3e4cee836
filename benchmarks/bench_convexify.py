"""Benchmark the convexifiers at a full-session size: 390 buckets x 128 grid points.

Every method of :func:`convexsched.convexify` is timed (median of ``--repeats`` runs) against the
per-bucket cvxpy loop :func:`convexsched.model.convexify.convex_regression_cvxpy` measured in the same
run; the table goes to ``benchmarks/results/convexify.md``. Run::

    python benchmarks/bench_convexify.py [--repeats 7] [--loop-repeats 1]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
from _common import median_seconds, write_results

from convexsched import convexify
from convexsched.model.convexify import CONVEXIFY_METHODS, convex_regression_cvxpy

N_BUCKETS, N_GRID = 390, 128
TARGET_MS = 50.0
RESULTS = Path(__file__).resolve().parent / "results" / "convexify.md"


def noisy_oracle_output(seed=0):
    """Predictions that look like an oracle's: convex in size plus noise, in CNY on 0..12,700 shares."""
    rng = np.random.default_rng(seed)
    sizes = np.arange(N_GRID) * 100.0
    half_spread = rng.uniform(0.005, 0.02, (N_BUCKETS, 1))
    curvature = rng.uniform(1e-7, 1e-6, (N_BUCKETS, 1))
    values = half_spread * sizes + curvature * sizes**2
    values += rng.normal(0.0, 0.02, values.shape) * values.max(axis=1, keepdims=True) / 10
    values[:, 0] = 0.0
    return sizes, values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--loop-repeats", type=int, default=1, help="repeats of the slow cvxpy loop")
    args = parser.parse_args()

    sizes, values = noisy_oracle_output()
    convexify(sizes, values)  # warm-up: imports and first-call caches are not the method's cost
    loop = median_seconds(lambda: convex_regression_cvxpy(sizes, values), args.loop_repeats)
    rows = []
    for method in CONVEXIFY_METHODS:
        seconds = median_seconds(lambda: convexify(sizes, values, method=method), args.repeats)
        _, report = convexify(sizes, values, method=method)
        rows.append((method, seconds, loop / seconds, report))
        print(f"{method:>18}: {1e3 * seconds:8.2f} ms  ({loop / seconds:7.1f}x faster than the cvxpy loop)")
    print(f"{'cvxpy loop':>18}: {1e3 * loop:8.2f} ms")

    fast = convexify(sizes, values, method="convex-regression")[0].breakpoint_values
    agreement = float(np.abs(fast - convex_regression_cvxpy(sizes, values)).max())
    default_ms = 1e3 * rows[0][1]
    lines = [
        "# Convexifier benchmark",
        "",
        f"Regenerate with `python benchmarks/bench_convexify.py`. {N_BUCKETS} buckets x {N_GRID} grid "
        f"points (noisy convex costs, seed 0); median of {args.repeats} runs per method, the per-bucket "
        f"cvxpy loop (Clarabel) median of {args.loop_repeats}, measured in the same run. "
        f"Python {platform.python_version()}, {platform.machine()}.",
        "",
        "| method | time (ms) | speed-up vs cvxpy loop | L2 deviation (rel.) | max deviation | clipped slopes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method, seconds, ratio, report in rows:
        lines.append(
            f"| `{method}` | {1e3 * seconds:.2f} | {ratio:.0f}x | {report.relative_l2:.3%} | "
            f"{report.max:.4g} | {int(report.per_bucket['clipped'].sum())} |"
        )
    lines += [
        f"| per-bucket cvxpy loop (convex regression) | {1e3 * loop:.1f} | 1x | | | |",
        "",
        f"Default (`slopes-isotonic`): {default_ms:.2f} ms against the {TARGET_MS:.0f} ms target "
        f"({'met' if default_ms < TARGET_MS else 'NOT met'}).",
        f"Fast convex regression (NNLS) vs the cvxpy loop: max |difference| {agreement:.2e} "
        f"(values up to {np.abs(values).max():.3g}).",
        "`slopes-isotonic` and `hull` are the same curve by two algorithms (PAVA on width-weighted "
        "slopes = greatest convex minorant), hence equal deviations; `convex-regression` is the L2 "
        "projection and moves the predictions least.",
        "",
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
