"""``solve``: one entry point for every path, returning a self-certifying :class:`Schedule`.

Paths
-----
``method="fast"``
    (A) exact water-filling, (B) exact breakpoint search (``convexsched.optimize.waterfill``),
    anything with ``psi > 0`` by the exact chain solver (``convexsched.optimize.chain``), all
    compiled with numba and none importing cvxpy. Past 2 million segments
    (:func:`convexsched.optimize.chain.too_large`) a ``psi > 0`` problem is solved by cvxpy instead,
    and ``Schedule.method`` says so. Any other smooth term (``convexsched.optimize.terms``)
    by the accelerated proximal gradient of ``convexsched.optimize.proximal``, whose prox is
    the exact (B) water-filling and which stops when the certificate passes; a nonsmooth term
    (``Turnover``) or a ``problem=`` goes to cvxpy, and ``Schedule.method`` says so.
``method="bisection"``
    The dual bisection of (E7) for (A)/(B), kept for comparison: ``sum x`` misses ``S`` by up
    to ``eps_S`` (0.1% of ``S`` by default), which its certificate reports.
``method="cvxpy"``
    :func:`convexsched.build_problem` solved by a conic/QP solver, falling back to the next
    solver on failure or an inaccurate status; the solver that succeeded is recorded.

Every result carries its KKT report (:func:`convexsched.check_kkt`), so no answer leaves
uncertified.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._deprecated import renamed
from .._optional import pyplot
from ..errors import InvalidInputError, SolverError
from . import chain, proximal, waterfill
from .kkt import KKTReport, certify, certify_fused
from .objective import Objective
from .validate import Order, validate

if TYPE_CHECKING:
    from .curves import CostCurves
    from .problem import ScheduleProblem

METHODS = ("fast", "bisection", "cvxpy")
SOLVERS = ("CLARABEL", "HIGHS", "ECOS", "OSQP", "SCS")
# Clarabel and HiGHS are exact on the LP (A); OSQP stalls near 1e-4 on it, so it comes last.
LP_ORDER = ("CLARABEL", "HIGHS", "ECOS", "SCS", "OSQP")
# HiGHS's QP path took minutes where Clarabel took milliseconds.
QP_ORDER = ("CLARABEL", "ECOS", "OSQP", "SCS", "HIGHS")
SOLVER_OPTIONS = {
    # Tighter than the defaults (1e-8): breakpoints and levels then certify at 1e-5 of S.
    "CLARABEL": {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
    "OSQP": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iter": 200_000},
    "SCS": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 100_000},
}
# Clarabel can stall just short of 1e-10 and report "optimal_inaccurate" (seen on a 39 x 4 (C)
# problem); one more try at 1e-9 then reaches "optimal", and the certificate still passes.
RETRY_OPTIONS = {"CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}}


@dataclass
class Schedule:
    """A solved schedule and its certificate (like scipy's ``OptimizeResult``).

    Attributes
    ----------
    x : pandas.Series
        Shares per bucket, on the curves' index (a RangeIndex when they have none). Built on
        first access, like :attr:`remaining`: a re-quote loop that reads :attr:`values` never
        pays for pandas.
    remaining : pandas.Series
        Inventory after each bucket, ``R_i = S - sum_{k<=i} x_k``, on the same index.
    values : numpy.ndarray
        ``x`` as a read-only array.
    objective_value : float
        ``F(x)`` of ``convexsched.optimize.objective``.
    multiplier : float
        The water level ``lambda`` (marginal cost of the budget; ``<= 0`` under ``<=``).
    multiplier_interval : tuple
        The levels that certify ``x`` according to the path that produced it.
    status : str
        "optimal" (the certificate passed), "approximate" for the dual bisection,
        "uncertified" when a path that should be exact fails its certificate, or
        "solver-optimal" for a problem you extended (``with_constraints``, ``with_terms``) that
        the family's certificate cannot cover: then ``kkt.duality_gap`` is only an upper bound
        on what your additions cost.
    method, algorithm, solver, formulation : str
        How it was computed (``solver`` is the one that succeeded).
    timings : dict
        Seconds: "build", "solve", "kkt", "total".
    kkt : KKTReport
    total : float
        ``S``.
    sense : "eq" | "le"
        The budget's sense: ``sum x = S`` or ``sum x <= S``.
    objective : Objective
    attempts : list of dict
        Every solver tried, with its status and time (cvxpy path).
    problem : ScheduleProblem or None
        The cvxpy problem (cvxpy path), ready for ``update`` and re-solve.
    """

    values: np.ndarray = field(repr=False)
    _index: pd.Index | None = field(repr=False)
    objective_value: float
    multiplier: float
    multiplier_interval: tuple[float, float]
    status: str
    method: str
    algorithm: str
    solver: str | None
    formulation: str | None
    timings: dict[str, float]
    kkt: KKTReport
    total: float
    sense: str
    objective: Objective
    attempts: list[dict[str, Any]] = field(default_factory=list)
    problem: ScheduleProblem | None = None

    def _labels(self):
        return self._index if self._index is not None else pd.RangeIndex(len(self.values))

    @functools.cached_property
    def x(self) -> pd.Series:
        return pd.Series(self.values, index=self._labels(), name="x")

    @functools.cached_property
    def remaining(self) -> pd.Series:
        return pd.Series(self.total - np.cumsum(self.values), index=self._labels(), name="remaining")

    @property
    def success(self) -> bool:
        """Whether the status is "optimal" and the KKT certificate holds (scipy's ``success``)."""
        return self.status == "optimal" and bool(self.kkt.ok)

    @property
    def constraint_duals(self) -> list[np.ndarray | None]:
        """Duals of the constraints you added to :attr:`problem`, in currency per share.

        What relaxing each constraint by one share (of its own units) would save; empty on the
        fast paths.
        """
        if self.problem is None:
            return []
        return [self.problem.dual(constraint) for constraint in self.problem.user_constraints]

    @property
    def budget(self) -> str:
        """Deprecated name of :attr:`sense` (removed in 0.4)."""
        warnings.warn("Schedule.budget is deprecated; use Schedule.sense", FutureWarning, stacklevel=2)
        return self.sense

    def __str__(self):
        head = (
            f"Schedule of S = {self.total:.6g} over {len(self.x)} buckets, objective {self.objective.kind} "
            f"({self.method}: {self.algorithm}{' / ' + self.solver if self.solver else ''})\n"
            f"  status {self.status}, F(x) = {self.objective_value:.10g}, lambda = {self.multiplier:.8g}, "
            f"{self.timings['total'] * 1e3:.2f} ms to solve and certify (a process's first fast solve also "
            "loads or compiles its numba kernels)"
        )
        return head + "\n" + str(self.kkt)

    def plot(self, ax: Any = None) -> Any:
        """Bar chart of the schedule with the remaining inventory on a twin axis."""
        plt = pyplot()

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3.5))
        x = np.asarray(self.x, dtype=float)
        positions = np.arange(len(x))
        ax.bar(positions, x, width=1.0, color="tab:blue", alpha=0.7, label="x_i (shares)")
        ax.set_xlabel("bucket")
        ax.set_ylabel("shares traded")
        twin = ax.twinx()
        twin.plot(positions, np.asarray(self.remaining, dtype=float), color="tab:red", label="R_i")
        twin.set_ylabel("remaining inventory")
        ax.set_title(f"objective {self.objective.kind}, lambda = {self.multiplier:.4g}")
        return ax


def _fast(order, method, tol):
    curves, total, objective, sense = order.curves, order.total, order.objective, order.sense
    if method == "bisection":
        if not objective.separable:
            raise InvalidInputError("the dual bisection handles (A) and (B) only; use method='fast' for psi > 0 or other terms")
        return waterfill.bisection(curves, total, objective.rho, sense), "dual bisection", "approximate"
    if objective.terms:
        result = proximal.accelerated(order, tol=tol)
        polish = ", active-set polish" if result.polished else ""
        return result, f"accelerated proximal gradient ({result.iterations} iterations{polish})", "optimal"
    if objective.psi > 0:
        algorithm = "chain backward shooting" if objective.rho > 0 else "chain forward pass"
        return chain.inventory_chain(curves, total, objective, sense), algorithm, "optimal"
    if objective.rho > 0:
        return waterfill.smoothed(curves, total, objective.rho, sense), "breakpoint search", "optimal"
    return waterfill.cost_only(curves, total, sense), "water-filling", "optimal"


def _solver_order(objective, solver, fallback):
    defaults = LP_ORDER if objective.rho == 0 and objective.psi == 0 and not objective.terms else QP_ORDER
    if solver is None:
        chosen = list(defaults)
    else:
        requested = [solver] if isinstance(solver, str) else list(solver)
        requested = [name.upper() for name in requested]
        unknown = [name for name in requested if name not in SOLVERS]
        if unknown:
            raise InvalidInputError(f"unknown solver(s) {unknown}; choose from {SOLVERS}")
        chosen = requested + ([name for name in defaults if name not in requested] if fallback else [])
    import cvxpy as cp

    installed = set(cp.installed_solvers())
    if solver is not None:
        absent = [name for name in requested if name not in installed]
        if absent:
            raise SolverError(
                f"solver(s) {absent} requested but not installed; Clarabel comes with convexsched, "
                'the others with pip install "convexsched[solvers]"'
            )
    return [name for name in chosen if name in installed]


def _solve_cvxpy(problem, solvers, warm_start, solver_options):
    import cvxpy as cp

    attempts = []
    for name in solvers:
        tries = [SOLVER_OPTIONS.get(name, {})]
        if name in RETRY_OPTIONS and name not in solver_options:
            tries.append(RETRY_OPTIONS[name])
        for defaults in tries:
            options = dict(defaults, **solver_options.get(name, {}))
            started = time.perf_counter()
            try:
                problem.solve(solver=name, warm_start=warm_start, **options)
                status = problem.status
            except (cp.error.SolverError, ValueError, ArithmeticError) as error:
                status = f"error: {error}"
            attempts.append({"solver": name, "status": status, "seconds": time.perf_counter() - started})
            if status == cp.OPTIMAL:
                return name, attempts
            if status != cp.OPTIMAL_INACCURATE:
                break
    raise SolverError("no solver reached an optimal status: " + "; ".join(f"{a['solver']} -> {a['status']}" for a in attempts))


def solve(
    curves: CostCurves,
    total: float,
    objective: Objective | None = None,
    *,
    sense: str = "eq",
    method: str = "fast",
    solver: str | Sequence[str] | None = None,
    formulation: str = "segment",
    problem: ScheduleProblem | None = None,
    fallback: bool = True,
    warm_start: bool = True,
    tol: float | None = None,
    solver_options: dict[str, dict[str, Any]] | None = None,
    budget: str | None = None,
) -> Schedule:
    """Optimal schedule of ``S = total`` shares over the buckets of ``curves``.

    Parameters
    ----------
    curves : CostCurves
    total : float
        Shares to execute, ``S >= 0``.
    objective : Objective, Term or a sum of terms, optional
        Default: (A) cost only. A term ``T`` means the impact curves plus ``T``.
    sense : "eq" | "le"
        ``sum x = S`` or ``sum x <= S`` (a receding-horizon window).
    method : "fast" | "bisection" | "cvxpy"
        "fast" uses the exact paths for A, B, C and their mixes, the accelerated proximal
        gradient (``convexsched.optimize.proximal``) for other smooth terms, and cvxpy for
        a nonsmooth term or a ``problem`` you pass.
    solver : str or list of str, optional
        cvxpy solver(s) to try first: CLARABEL, HIGHS, ECOS, OSQP, SCS. Default per class: the
        LP (A) Clarabel then HiGHS; QPs Clarabel.
    formulation : "segment" | "epigraph"
    problem : ScheduleProblem, optional
        A problem from :func:`build_problem` to reuse (it is updated with the data given).
    fallback : bool
        Try the remaining solvers when one fails or is inaccurate.
    tol : float, optional
        Tolerance of the KKT report: 1e-6 for the exact paths, 1e-5 for cvxpy (interior-point
        solvers place breakpoints and multipliers to about 1e-6 of the budget).
    solver_options : dict, optional
        Per-solver keyword overrides, e.g. ``{"OSQP": {"max_iter": 10**6}}``.
    budget : "eq" | "le", optional
        Deprecated name of ``sense`` (removed in 0.4).

    Returns
    -------
    Schedule

    Raises
    ------
    InvalidInputError, InfeasibleError (names the maximum executable), SolverError
    """
    started = time.perf_counter()
    order = validate(curves, total, objective, renamed(sense, budget, "solve", "budget", "sense"))
    return solve_order(
        order,
        method=method,
        solver=solver,
        formulation=formulation,
        problem=problem,
        fallback=fallback,
        warm_start=warm_start,
        tol=tol,
        solver_options=solver_options,
        started=started,
    )


def solve_order(
    order: Order,
    *,
    method: str = "fast",
    solver: str | Sequence[str] | None = None,
    formulation: str = "segment",
    problem: ScheduleProblem | None = None,
    fallback: bool = True,
    warm_start: bool = True,
    tol: float | None = None,
    solver_options: dict[str, dict[str, Any]] | None = None,
    started: float | None = None,
) -> Schedule:
    """:func:`solve` for an :class:`~convexsched.optimize.validate.Order` already checked.

    The receding and scenario loops call it at every step with orders built from the data
    their run validated once; the options are :func:`solve`'s.
    """
    started = time.perf_counter() if started is None else started
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {METHODS}, got {method!r}")
    curves, total, objective, sense = order.curves, order.total, order.objective, order.sense
    if solver is not None:
        _solver_order(objective, solver, fallback)  # an unknown name is an error on every path
    timings = {}
    attempts, used_solver, used_formulation, built = [], None, None, None
    if method == "fast" and objective.psi > 0 and not objective.terms and chain.too_large(curves):
        # The chain solver is measured and tested up to 2 million segments; beyond, the same
        # answer comes from Clarabel.
        method = "cvxpy"
    if method == "fast" and (problem is not None or (objective.terms and not objective.smooth)):
        # Your own problem, or a nonsmooth term beside the curves (Turnover): cvxpy states it.
        method = "cvxpy"
    if method == "cvxpy":
        # cvxpy costs about 0.5 s to import: only this path loads it.
        from .problem import ScheduleProblem, build_order_problem

        built_at = time.perf_counter()
        if problem is not None and not isinstance(problem, ScheduleProblem):
            raise InvalidInputError(
                f"problem must be a ScheduleProblem from build_problem, got {type(problem).__name__}; extend "
                "it with problem.with_constraints([...]) or problem.with_terms([...]) (on problem.x, in shares), "
                "or add a convexsched Term to the objective"
            )
        if problem is None:
            built = build_order_problem(order, formulation=formulation)
        else:
            built = problem.load(order)
        timings["build"] = time.perf_counter() - built_at
        solve_at = time.perf_counter()
        used_solver, attempts = _solve_cvxpy(built, _solver_order(objective, solver, fallback), warm_start, solver_options or {})
        timings["solve"] = time.perf_counter() - solve_at
        x = built.schedule()
        if x is None:
            raise SolverError(f"{used_solver} reported an optimal status without a solution")
        # An interior-point dual sits at the edge of the multiplier interval, or a few ulps of
        # the budget outside it: the certificate reads the level off x instead and the
        # solver's own is kept in the attempts.
        attempts[-1]["multiplier"] = built.multiplier()
        level, algorithm, status = None, "cvxpy", "optimal"
        used_formulation = built.spec["formulation"]
    else:
        solve_at = time.perf_counter()
        result, algorithm, status = _fast(order, method, 1e-6 if tol is None else tol)
        timings["build"] = 0.0
        timings["solve"] = time.perf_counter() - solve_at
        x, level, interval = result.x, result.multiplier, result.multiplier_interval

    if tol is None:
        tol = 1e-5 if method == "cvxpy" else 1e-6
    kkt_at = time.perf_counter()
    # The exact paths' certificate in compiled passes (the same numbers as certify, which it
    # calls for other terms and whenever the one-level bound leaves the verdict open).
    report = (certify if built is not None else certify_fused)(order, x, multiplier=level, tol=tol)
    timings["kkt"] = time.perf_counter() - kkt_at
    if level is None:
        level = report.multiplier
        interval = report.multiplier_interval
    if status == "optimal" and not report.ok:
        # A solver's word is not enough: only a passed certificate reads "optimal". Your own
        # constraints or terms are outside the family's certificate: the solver's word is all
        # there is, and the status says so.
        status = "solver-optimal" if built is not None and built.extended else "uncertified"
    timings["total"] = time.perf_counter() - started
    # The water-filling paths (A, B) return a fresh float array nothing else holds: it becomes
    # the schedule's own (read-only) array. Every other path's x is copied.
    values = x if method == "fast" and objective.separable else np.array(x, dtype=float)
    values.setflags(write=False)
    return Schedule(
        values=values,
        _index=curves.index,
        objective_value=report.objective_value,
        multiplier=float(level),
        multiplier_interval=(float(interval[0]), float(interval[1])),
        status=status,
        method=method,
        algorithm=algorithm,
        solver=used_solver,
        formulation=used_formulation,
        timings=timings,
        kkt=report,
        total=total,
        sense=sense,
        objective=objective,
        attempts=attempts,
        problem=built,
    )
