"""Benchmark the scenario step (E14): the batch path against today's per-step loop.

Every step that the scenario horizons A and B solve on the 5 SZSE stocks of ``tick.zip`` (a full
day each, one-minute buckets, a pool of 30 books of 10 levels: about 31 x 10 segments plus the
tails) is recorded as it is met in a run, then solved again three ways, each with its certificate:

* **loop, numpy**: per step, the weighted water-fill as it was before this change (caps and tails
  built, bisection over ``S(lambda)`` and the certificate, all whole-array numpy;
  ``tests/reference_weighted.py``), the step of the scenario loop of 0.2 and early 0.3;
* **loop, compiled**: per step, ``WeightedBuckets.build`` + ``solve_weighted`` + ``weighted_kkt``
  (the single-problem API, now compiled);
* **batch**: every step of every stock in one ``solve_weighted_batch`` call (padded with buckets
  of weight 0), its per-step cost = the call's time / the number of steps.

The batch answers must equal the single answers bit for bit and the numpy ones within 1e-9
(relative); the script fails otherwise. Also reports the step time measured inside the scenario
run itself (``steps["solve_s"]``, a batch of one) and numba's first compilation (cold cache, in a
fresh process). Writes ``benchmarks/results/scenario_step.md``. Run (hold the heavy lock)::

    flock /tmp/convexsched-heavy.lock python benchmarks/bench_scenario_step.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine_info, markdown_table, write_results

import convexsched as cs
from convexsched.execution.scenario import ScenarioHorizon
from convexsched.optimize.weighted import WeightedBuckets, solve_weighted, solve_weighted_batch, weighted_kkt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reference_weighted  # noqa: E402 - the numpy water-fill lives with the tests

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cn-equity-l2-dolphindb" / "tick.zip"
RESULTS = Path(__file__).resolve().parent / "results"
REPEATS = 7


def record_steps(books, objective):
    """Every weighted step the scenario horizon solves on ``books``: (problem, budget), step times."""
    problems, step_seconds = [], []
    original = ScenarioHorizon._solve_weighted

    def recording(self, row, problem, remaining):
        problems.append((tuple(np.array(a, dtype=float) for a in problem), float(remaining)))
        return original(self, row, problem, remaining)

    ScenarioHorizon._solve_weighted = recording
    try:
        for book in books.values():
            size = 0.05 * float(book.traded_volume.sum())
            record = ScenarioHorizon(objective).run(book, size)
            solved = record.steps["solve_s"].to_numpy()
            step_seconds.extend(solved[solved > 0])
    finally:
        ScenarioHorizon._solve_weighted = original
    return problems, np.asarray(step_seconds)


def stack(problems):
    """Pad every problem to the largest bucket count (weight 0, zero widths) and stack them."""
    n = max(p[0][0].shape[0] for p in problems)
    k = problems[0][0][0].shape[1]
    b = len(problems)
    slopes, widths = np.zeros((b, n, k)), np.zeros((b, n, k))
    weights, gamma, cap = np.zeros((b, n)), np.zeros((b, n)), np.full((b, n), np.inf)
    totals = np.empty(b)
    for i, ((s, w, omega, g, c), total) in enumerate(problems):
        m = s.shape[0]
        slopes[i, :m], widths[i, :m], weights[i, :m], gamma[i, :m], cap[i, :m] = s, w, omega, g, c
        slopes[i, m:] = s[0]  # padding keeps each row's slopes nondecreasing
        totals[i] = total
    return slopes, widths, weights, gamma, cap, totals


def loop_numpy(problems, rho):
    out = []
    for (s, w, omega, g, c), total in problems:
        buckets = reference_weighted.build(s, w, omega, rho=rho, gamma=g, cap=c)
        solution, _ = reference_weighted.solve(buckets, total)
        reference_weighted.certify(buckets, total, solution.y, solution.multiplier)
        out.append(solution)
    return out


def loop_compiled(problems, rho):
    out = []
    for (s, w, omega, g, c), total in problems:
        buckets = WeightedBuckets.build(s, w, omega, rho=rho, gamma=g, cap=c)
        solution = solve_weighted(buckets, total)
        out.append((solution, weighted_kkt(buckets, total, solution.y, solution.multiplier)))
    return out


def timed(function, *args):
    times, result = [], None
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - started)
    return float(np.median(times)), result


COLD = """
import time, numpy as np
started = time.perf_counter()
from convexsched.optimize.weighted import solve_weighted_batch
solve_weighted_batch(np.full((1, 2, 2), [0.01, 0.02]), np.full((1, 2, 2), 100.0), 1.0, [150.0])
print(time.perf_counter() - started)
"""


def cold_compile_seconds():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.split()[-1])


def main():
    if not DATA.is_file():
        print(f"skip: {DATA} not found")
        return 0
    books = cs.read_books(DATA)
    rows, ok = [], True
    for kind, objective in (("A", cs.Objective()), ("B", cs.Objective(rho=1e-6))):
        problems, in_run = record_steps(books, objective)
        arrays = stack(problems)
        rho = objective.rho
        solve_weighted_batch(*arrays[:3], arrays[5], rho=rho, gamma=arrays[3], cap=arrays[4])  # compile once
        loop_compiled(problems[:2], rho)
        t_numpy, reference = timed(loop_numpy, problems, rho)
        t_single, single = timed(loop_compiled, problems, rho)
        t_batch, batch = timed(lambda: solve_weighted_batch(*arrays[:3], arrays[5], rho=rho, gamma=arrays[3], cap=arrays[4]))
        count = len(problems)
        n_used = [p[0][0].shape[0] for p in problems]
        identical = all(
            np.array_equal(batch.y[i, :m], solution.y) and batch.multiplier[i] == solution.multiplier
            and batch.max_violation[i] == report.max_violation
            for i, (m, (solution, report)) in enumerate(zip(n_used, single, strict=True))
        )  # fmt: skip
        close = all(
            np.allclose(batch.y[i, :m], expected.y, rtol=1e-9, atol=1e-7)
            for i, (m, expected) in enumerate(zip(n_used, reference, strict=True))
        )
        certified = bool(batch.kkt_ok.all())
        ok &= identical and close and certified
        per = t_batch / count
        rows.append((
            kind, count, f"{np.median(n_used):.0f} x {arrays[0].shape[2]}",
            f"{t_numpy / count * 1e6:.0f} µs", f"{t_single / count * 1e6:.1f} µs", f"**{per * 1e6:.1f} µs**",
            f"{np.median(in_run) * 1e6:.0f} µs", f"**{t_numpy / t_batch:.0f}x**", f"{t_single / t_batch:.1f}x",
            f"{identical} / {close} / {certified}",
        ))  # fmt: skip
        print(rows[-1])
    cold = cold_compile_seconds()
    info = machine_info(["numpy", "numba"])
    lines = [
        "# The scenario step: one batch call against today's per-step loop",
        "",
        "Every weighted step (E14) the scenario horizons A and B solve on the 5 SZSE stocks of `tick.zip` "
        "(2022-06-01, one-minute buckets, pool of 30, each buying 5% of its day's volume), solved again "
        "with its certificate: per step in numpy (the step before this change), per step with the compiled "
        "single-problem API, and all steps in one `solve_weighted_batch` call. Medians of "
        f"{REPEATS} repeats; per-step times are a loop's (or the batch call's) time over the number of steps.",
        "",
        markdown_table(
            [
                "obj",
                "steps",
                "buckets x levels",
                "loop, numpy / step",
                "loop, compiled / step",
                "batch / step",
                "in the run (batch of one), median",
                "batch vs numpy loop",
                "batch vs compiled loop",
                "bit-identical / = numpy (1e-9) / certified",
            ],
            rows,
            "lrlrrrrrrl",
        ),  # fmt: skip
        "",
        "Target: a step, certificate included, in at most 20 µs per symbol (the batch column). Before this "
        "change the step took about 370 µs (A) and 500 µs (B) inside a run (issue 20's measurement; the "
        "numpy-loop column is the same code without the run's bookkeeping).",
        "",
        f"numba's first compilation of the batch kernel (empty cache, fresh process, import included): {cold:.1f} s; "
        "later processes load it from the cache.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores (shared with other work), {info['memory_gib']} GiB; "
        f"load average before {tuple(round(x, 2) for x in info['load_average'])}; Python {info['python']}; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + ".",
        "",
        "Reproduce: `flock /tmp/convexsched-heavy.lock python benchmarks/bench_scenario_step.py`",
        "",
    ]
    write_results(RESULTS / "scenario_step.md", lines)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
