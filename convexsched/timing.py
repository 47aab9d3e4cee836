"""A built-in timing of the exact fast paths against cvxpy (``convexsched bench --builtin``).

It needs nothing but the package, so an installed copy without the repository's
``benchmarks/`` folder can still check its speed and its certificates. The curves are random
but shaped like an oracle's: a half-spread first slope and increments that grow along the row.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .optimize.curves import CostCurves
from .optimize.objective import Objective
from .optimize.solve import solve

QUICK_SIZES = ((390, 20),)
FULL_SIZES = ((78, 20), (390, 40), (1560, 40))
BUDGET_FRACTION = 0.3
# Objective values of the two paths may differ by the interior-point solver's accuracy.
AGREEMENT_RTOL = 1e-5


def random_curves(n_buckets, n_segments, seed=0):
    """Convex curves in currency per share, 100 to 1,000 shares a segment."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0.005, 0.02, (n_buckets, 1))
    steps = rng.exponential(0.002, (n_buckets, n_segments - 1))
    slopes = np.hstack([first, first + np.cumsum(steps, axis=1)])
    widths = rng.integers(1, 11, (n_buckets, n_segments)) * 100.0
    return CostCurves(slopes, widths)


def _objectives(curves, total):
    """(A), (B), (C) with each penalty about as large, at the optimum, as the marginal cost."""
    price = float(np.median(curves.slopes))
    share = total / curves.n_buckets
    return {
        "A": Objective(),
        "B": Objective(rho=price / share),
        "C": Objective(psi=2 * price / (total * curves.n_buckets)),
    }


def _median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), result


#: What each timing column of :func:`builtin_timing` includes (printed under its table).
COLUMNS_HELP = (
    "fast_first_ms: the first fast call (numba compiles its kernels, or loads them from its cache, in the first case); "
    "fast_ms: median of the warm calls after it; "
    "cvxpy_first_ms: the first cvxpy call (imports cvxpy in the first case); "
    "cvxpy_ms: a second call, imports loaded (builds, canonicalizes and solves the problem: what solve(method='cvxpy') "
    "costs, not a warm re-solve of a parameterized problem); speedup = cvxpy_ms / fast_ms"
)


def builtin_timing(quick=False, repeats=3, progress=None):
    """Time ``solve(method="fast")`` against ``solve(method="cvxpy")`` on objectives A, B, C.

    Parameters
    ----------
    quick : bool
        One problem size (390 buckets x 20 segments) instead of three.
    repeats : int
        Warm runs of the fast path after its first call (median reported).
    progress : callable, optional
        Wraps the list of cases, e.g. a tqdm factory.

    Returns
    -------
    pandas.DataFrame
        One row per (size, objective): ``fast_first_ms``, ``fast_ms``, ``cvxpy_first_ms``,
        ``cvxpy_ms`` (see :data:`COLUMNS_HELP`), ``speedup``, the cvxpy solver,
        ``relative_gap`` between the two objective values, ``kkt_ok`` (both certificates hold)
        and ``agree`` (gap within ``AGREEMENT_RTOL``).
    """
    cases = []
    for n_buckets, n_segments in QUICK_SIZES if quick else FULL_SIZES:
        curves = random_curves(n_buckets, n_segments)
        total = BUDGET_FRACTION * float(curves.capacity.sum())
        cases += [(curves, total, kind, objective) for kind, objective in _objectives(curves, total).items()]
    rows = []
    for curves, total, kind, objective in progress(cases, desc="timing") if progress else cases:
        fast_first, _ = _median_seconds(lambda: solve(curves, total, objective), 1)
        fast_s, fast = _median_seconds(lambda: solve(curves, total, objective), repeats)
        cvxpy_first, _ = _median_seconds(lambda: solve(curves, total, objective, method="cvxpy"), 1)
        cvxpy_s, reference = _median_seconds(lambda: solve(curves, total, objective, method="cvxpy"), 1)
        gap = abs(fast.objective_value - reference.objective_value) / max(abs(reference.objective_value), 1e-12)
        rows.append({
            "objective": kind, "buckets": curves.n_buckets, "segments": curves.n_segments,
            "fast_first_ms": 1e3 * fast_first, "fast_ms": 1e3 * fast_s,
            "cvxpy_first_ms": 1e3 * cvxpy_first, "cvxpy_ms": 1e3 * cvxpy_s, "speedup": cvxpy_s / fast_s,
            "solver": reference.solver, "relative_gap": gap,
            "kkt_ok": fast.kkt.ok and reference.kkt.ok, "agree": gap <= AGREEMENT_RTOL,
        })  # fmt: skip
    return pd.DataFrame(rows)
