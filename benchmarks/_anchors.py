"""The solvers themselves, called directly and warm: the anchors of ``bench_fast_paths.py``.

A desk that benchmarks a formulation compares against the solver it would otherwise call, with
its data updated in place between re-quotes and its tolerance as loose as the answer allows.

* :class:`HighsA`: objective (A) as the LP in segment form, ``min sum s_ik y_ik`` over
  ``0 <= y_ik <= w_ik``, ``sum y = S``, through highspy: a re-quote changes the costs
  (``changeColsCost``) and, when the depth moved, the column bounds (``changeColsBounds``); both
  keep the previous optimal basis, so ``run()`` restarts the simplex from it (or, tuned
  per instance, ``clearSolver()`` first: a fresh start).
* :class:`ClarabelBC`: objectives (B) and (C) in epigraph form through clarabel's own Python API:
  ``t_i >= G_i(b_{i,k-1}) + s_ik (x_i - b_{i,k-1})`` for every segment, ``0 <= x_i <= c_i``,
  ``rho/2 x^2`` on the diagonal of ``P``, and for (C) the inventory chain ``R_i = R_{i-1} - x_i``
  (``R_0 = S``, ``R_N = 0``) with ``psi w_i / 2 R_i^2`` on ``P``. A re-quote calls
  ``solver.update(A=..., b=...)`` with the new values of the same sparsity pattern (presolve
  off, which updates require), so no symbolic factorization is repeated.

Both work in shares of ``S`` and in a price unit fixed on the first book (the mean slope), so
their tolerances mean the same thing on every book.
"""

from __future__ import annotations

import numpy as np


def _price_unit(slopes):
    return float(np.abs(slopes).mean()) or 1.0


class HighsA:
    """(A) by HiGHS (simplex, ``threads=1``) with the basis kept between re-quotes."""

    def __init__(self, slopes, widths, total, tol=1e-7, strategy=1, keep_basis=True, time_limit=None):
        import highspy

        self.n, self.k = slopes.shape
        self.total, self.unit = float(total), _price_unit(slopes)
        self.settings = {
            "simplex_strategy": strategy,
            "primal_feasibility_tolerance": tol,
            "dual_feasibility_tolerance": tol,
            "threads": 1,
        }
        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        for name, value in self.settings.items():
            highs.setOptionValue(name, value)
        m = self.n * self.k
        self.columns = np.arange(m, dtype=np.int32)
        self.lower = np.zeros(m)
        highs.addVars(m, self.lower, np.ravel(widths) / self.total)
        highs.changeColsCost(m, self.columns, np.ravel(slopes) / self.unit)
        highs.addRow(1.0, 1.0, m, self.columns, np.ones(m))
        self.highs, self.status_ok = highs, highspy.HighsModelStatus.kOptimal
        self.status_time_limit = highspy.HighsModelStatus.kTimeLimit
        self.timed_out = False
        self.widths = np.array(widths, dtype=float)
        self.keep_basis = keep_basis
        # A cap on every solve but the first (the first starts from no basis and is not timed).
        self.time_limit = time_limit

    def data(self, slopes, widths):
        """The solver's data for a book (scaling and flattening): part of a re-quote."""
        same = widths is self.widths or np.array_equal(widths, self.widths)
        return np.ravel(slopes) / self.unit, None if same else np.ravel(widths) / self.total

    def solve(self, data):
        """Load a book's data into the warm solver, solve, return ``x`` (shares)."""
        cost, upper = data
        m = len(self.columns)
        self.highs.changeColsCost(m, self.columns, cost)
        if upper is not None:
            self.highs.changeColsBounds(m, self.columns, self.lower, upper)
        if not self.keep_basis:
            self.highs.clearSolver()  # a fresh start: when the depth moves, the old basis can cost more than it saves
        self.highs.run()
        if self.time_limit is not None:
            self.highs.setOptionValue("time_limit", float(self.time_limit))
        self.timed_out = self.highs.getModelStatus() == self.status_time_limit
        if self.highs.getModelStatus() != self.status_ok:
            raise RuntimeError(f"HiGHS: {self.highs.getModelStatus()}")
        y = np.asarray(self.highs.getSolution().col_value)
        return y.reshape(self.n, self.k).sum(axis=1) * self.total

    def requote(self, slopes, widths):
        return self.solve(self.data(slopes, widths))


class ClarabelBC:
    """(B) or (C) by Clarabel (interior point, epigraph form) with in-place data updates."""

    def __init__(self, slopes, widths, total, rho=0.0, psi=0.0, weights=None, tol=1e-8, refine=True):
        import clarabel
        import scipy.sparse as sp

        n, k = slopes.shape
        self.n, self.k, self.chain = n, k, psi > 0
        self.total, self.unit = float(total), _price_unit(slopes)
        self.settings = {
            "tol_gap_abs": tol,
            "tol_gap_rel": tol,
            "tol_feas": tol,
            "iterative_refinement_enable": refine,
            "presolve_enable": False,
        }
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        for name, value in self.settings.items():
            setattr(settings, name, value)
        # Variables: x (n), t (n), then R (n) for (C), all scaled: x / S, t / (S unit).
        variables = 3 * n if self.chain else 2 * n
        x, t, r = np.arange(n), n + np.arange(n), 2 * n + np.arange(n)
        diagonal = np.zeros(variables)
        diagonal[x] = rho * self.total / self.unit
        if self.chain:
            diagonal[r] = psi * self.total / self.unit * np.asarray(weights, dtype=float)
        P = sp.diags(diagonal).tocsc()
        q = np.zeros(variables)
        q[t] = 1.0
        rows, cols, vals = [], [], []
        b_zero = []
        if self.chain:
            # R_1 + x_1 = 1, R_i - R_{i-1} + x_i = 0, R_N = 0.
            rows += [np.arange(n), np.arange(n), np.arange(1, n), [n]]
            cols += [r, x, r[:-1], [r[-1]]]
            vals += [np.ones(n), np.ones(n), -np.ones(n - 1), [1.0]]
            b_zero = np.zeros(n + 1)
            b_zero[0] = 1.0
        else:
            rows += [np.zeros(n, int)]
            cols += [x]
            vals += [np.ones(n)]
            b_zero = np.ones(1)
        zero = len(b_zero)
        # Bounds: -x <= 0, x <= c / S.
        rows += [zero + np.arange(n), zero + n + np.arange(n)]
        cols += [x, x]
        vals += [-np.ones(n), np.ones(n)]
        self.first_cut = zero + 2 * n
        # Cuts: s_ik x_i - t_i <= s_ik b_{i,k-1} - G_i(b_{i,k-1}), row first_cut + i k + j.
        cut_rows = self.first_cut + np.arange(n * k)
        rows += [cut_rows, cut_rows]
        cols += [np.repeat(x, k), np.repeat(t, k)]
        vals += [np.zeros(n * k), -np.ones(n * k)]
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        values = np.concatenate([np.asarray(v, dtype=float) for v in vals])
        # The CSC position of every entry, so that an update writes the slopes in place.
        ids = sp.coo_matrix(
            (np.arange(1, len(rows) + 1, dtype=float), (rows, cols)), shape=(self.first_cut + n * k, variables)
        ).tocsc()
        self.order = ids.data.astype(np.int64) - 1
        self.slope_entries = len(rows) - 2 * n * k + np.arange(n * k)  # the s_ik x_i entries
        self.values = values
        self.b_head = np.concatenate([b_zero, np.zeros(n), np.zeros(n)])
        self.zero = zero
        A = sp.csc_matrix((values[self.order], ids.indices, ids.indptr), shape=ids.shape)
        cones = [clarabel.ZeroConeT(zero), clarabel.NonnegativeConeT(2 * n + n * k)]
        self.solver = clarabel.DefaultSolver(P, q, A, self._b(slopes, widths), cones, settings)
        self.A_values, self.b = None, None

    def _b(self, slopes, widths):
        b = np.empty(self.first_cut + self.n * self.k)
        b[: self.zero + self.n] = self.b_head[: self.zero + self.n]
        b[self.zero + self.n : self.first_cut] = widths.sum(axis=1) / self.total
        starts = np.cumsum(widths, axis=1) - widths
        values = np.cumsum(slopes * widths, axis=1) - slopes * widths
        b[self.first_cut :] = np.ravel(slopes * starts - values) / (self.total * self.unit)
        return b

    def data(self, slopes, widths):
        """The solver's data for a book: the cut slopes in CSC order and the right-hand side."""
        values = self.values.copy()
        values[self.slope_entries] = np.ravel(slopes) / self.unit
        return values[self.order], self._b(slopes, widths)

    def solve(self, data):
        """Load a book's data into the warm solver, solve, return ``x`` (shares)."""
        A_values, b = data
        self.solver.update(A=A_values, b=b)
        solution = self.solver.solve()
        if str(solution.status) not in ("Solved", "AlmostSolved"):
            raise RuntimeError(f"Clarabel: {solution.status}")
        return np.asarray(solution.x)[: self.n] * self.total

    def requote(self, slopes, widths):
        return self.solve(self.data(slopes, widths))
