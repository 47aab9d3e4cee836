"""The objectives as explicit cvxpy problems that users can extend and re-solve.

Variables are scaled: ``u = x / share_unit`` (``share_unit = S`` unless ``S = 0``) and cost is
measured in ``cost_unit = share_unit * price_unit``, so a 1e6-share budget gives numbers near 1
and the conic solvers stay accurate. ``problem.x`` is the schedule in shares (an affine
expression of ``u``): write your own constraints on it directly.

Two formulations of ``sum_i g_i(x_i)`` (module ``convexsched.optimize.curves``):

* ``"segment"``: ``x_i = sum_k y_ik``, ``0 <= y_ik <= w_ik``, cost ``sum_ik s_ik y_ik``. Exact
  because slopes are nondecreasing, so the cheapest fill order is the natural one.
* ``"epigraph"``: ``t_i >= g_i(b_{k-1}) + s_ik (x_i - b_{k-1})`` for every piece k, cost
  ``sum t_i``, with ``0 <= x_i <= c_i``.

The inventory term uses ``R`` as a variable linked by the chain ``R_i = R_{i-1} - x_i``
(``R_0 = S``), which keeps the problem sparse (a dense ``cumsum`` would make the QP's matrix
N x N). The budget is one constraint, ``sum x == S`` or ``sum x <= S``; cvxpy's dual value of
it is ``-lambda`` (scaled), in both orientations.

DPP: slopes, widths, the budget, rho and psi*w are ``cvxpy.Parameter`` objects, so
:meth:`ScheduleProblem.update` followed by a solve skips canonicalization. Compiling a
parameterized problem costs memory that grows quickly with N*K, so above ``DPP_MAX_SIZE`` the
problem is built with constants instead (``dpp="auto"``), and ``update`` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import cvxpy as cp
import numpy as np

from .._deprecated import renamed
from ..errors import InvalidInputError
from .validate import Order, share_unit_of, validate

if TYPE_CHECKING:
    from .curves import CostCurves
    from .objective import Objective

# N*K above which a parameterized (DPP) build is replaced by a constant one (field note:
# DPP re-solves of the QPs ran out of memory from N*K of about 100,000).
DPP_MAX_SIZE = 40_000

FORMULATIONS = ("segment", "epigraph")


def units(curves: CostCurves, total: float) -> tuple[float, float]:
    """``(share_unit, price_unit)`` that bring shares and prices near 1."""
    share_unit = share_unit_of(curves, total)
    real = curves.widths > 0
    magnitude = np.abs(curves.slopes[real])
    price_unit = float(np.median(magnitude)) if magnitude.size else 1.0
    if not price_unit > 0:
        price_unit = float(magnitude.max(initial=0.0)) or 1.0
    return share_unit, price_unit


class ScheduleProblem(cp.Problem):
    """A :class:`cvxpy.Problem` for the schedule, with handles on its pieces.

    Attributes
    ----------
    x : cvxpy.Expression
        The schedule in shares, ``share_unit * u``. Add constraints on it.
    remaining : cvxpy.Expression
        ``R`` in shares.
    budget_constraint : cvxpy.Constraint
        ``sum u == S/share_unit`` (or ``<=``); its dual value is ``-lambda`` in scaled units.
    data_parameters : dict
        The DPP parameters (empty for a constant build).
    share_unit, cost_unit : float
        The scaling; ``lambda = -dual * cost_unit / share_unit``.
    """

    def __init__(self, objective: cp.Minimize | cp.Maximize, constraints: list, *, spec: dict, handles: dict) -> None:
        super().__init__(objective, constraints)
        self.spec = spec
        self.x = handles["x"]
        self.remaining = handles["remaining"]
        self.variable = handles["u"]
        self.budget_constraint = handles["budget"]
        self.data_parameters = handles["parameters"]
        self.share_unit = handles["share_unit"]
        self.cost_unit = handles["cost_unit"]
        self._handles = handles

    @property
    def parameterized(self) -> bool:
        return bool(self.data_parameters)

    def with_constraints(self, constraints: Iterable[cp.Constraint]) -> ScheduleProblem:
        """A new problem with the user's extra constraints (on ``self.x`` etc.) appended."""
        constraints = list(constraints)
        spec = dict(self.spec, user_constraints=self.spec["user_constraints"] + len(constraints))
        handles = dict(self._handles, user=list(self._handles.get("user", [])) + constraints)
        return ScheduleProblem(self.objective, list(self.constraints) + constraints, spec=spec, handles=handles)

    def with_terms(self, expressions: Iterable[cp.Expression]) -> ScheduleProblem:
        """A new problem with your own cvxpy terms (in currency, of ``self.x``) added to the objective.

        For a term you want certified and solved by the fast path too, write a
        :class:`~convexsched.Term` instead; a problem extended here is solved by
        cvxpy and its schedule reports status "solver-optimal" when the family's certificate
        cannot cover your additions.
        """
        expressions = list(expressions)
        objective = self.objective.args[0] + cp.sum(cp.hstack([e / self.cost_unit for e in expressions]))
        spec = dict(self.spec, user_terms=self.spec["user_terms"] + len(expressions))
        return ScheduleProblem(cp.Minimize(objective), list(self.constraints), spec=spec, handles=self._handles)

    @property
    def extended(self) -> bool:
        """True when you added constraints or terms: the certificate covers the family's problem only."""
        return bool(self.spec["user_constraints"] or self.spec["user_terms"])

    @property
    def user_constraints(self) -> list:
        """The constraints added by :meth:`with_constraints`, in order."""
        return list(self._handles.get("user", []))

    def dual(self, constraint: cp.Constraint) -> np.ndarray | None:
        """A constraint's dual value in currency per unit of the constraint (after a solve).

        Constraints on ``problem.x`` are in shares, so their duals come in currency per share:
        the change of ``F`` per share the constraint is relaxed by (cvxpy's own dual value is in
        the scaled cost unit, ``cost_unit`` times smaller).
        """
        value = constraint.dual_value
        if value is None:
            return None
        return np.asarray(value, dtype=float) * self.cost_unit

    def multiplier(self) -> float:
        """``lambda`` in currency per share from the budget's dual value (after a solve)."""
        dual = self.budget_constraint.dual_value
        if dual is None:
            return float("nan")
        return float(-np.asarray(dual).ravel()[0] * self.cost_unit / self.share_unit)

    def schedule(self) -> np.ndarray | None:
        """The solved ``x`` in shares, clipped to ``[0, c_i]`` against solver round-off."""
        u = self.variable.value
        if u is None:
            return None
        return np.clip(np.asarray(u, dtype=float) * self.share_unit, 0.0, self.spec["capacity"])

    def update(self, curves: CostCurves, total: float, objective: Objective | None) -> ScheduleProblem:
        """Load new data into a parameterized problem (same N, K, formulation, sense).

        Returns the problem to solve: ``self`` when parameterized or when the data is the one it
        was built with, a fresh build otherwise (which cannot carry constraints you added, since
        they refer to the old variables: that case raises).
        """
        return self.load(validate(curves, total, objective, self.spec["sense"]))

    def load(self, order: Order) -> ScheduleProblem:
        """:meth:`update` for an :class:`~convexsched.optimize.validate.Order` already checked."""
        spec = self.spec
        curves, total, objective = order.curves, order.total, order.objective
        if order.sense != spec["sense"]:
            raise InvalidInputError(f"the problem was built with sense {spec['sense']!r}, not {order.sense!r}")
        if curves is spec["curves"] and total == spec["total"] and objective == spec["objective"]:
            return self
        if curves.n_buckets != spec["n"] or curves.n_segments != spec["k"]:
            raise InvalidInputError(
                f"update needs curves of shape ({spec['n']}, {spec['k']}), got ({curves.n_buckets}, {curves.n_segments})"
            )
        built = spec["objective"]
        if (objective.rho > 0) != (built.rho > 0) or (objective.psi > 0) != (built.psi > 0):
            raise InvalidInputError(f"the problem was built for objective {built.kind}; rebuild it for {objective.kind}")
        if objective.terms or built.terms:
            # Terms are stated with their data as constants: new data means a new build.
            if spec["user_constraints"] or spec["user_terms"]:
                raise InvalidInputError(
                    "this problem carries terms stated with the old data and your own constraints or "
                    "terms: build it again for the new data and add them to the new problem.x"
                )
            return build_order_problem(
                order,
                formulation=spec["formulation"],
                dpp=self.parameterized,
                share_unit=self.share_unit,
                cost_unit=self.cost_unit,
            )
        if not self.parameterized:
            if spec["user_constraints"] or spec["user_terms"]:
                raise InvalidInputError(
                    "this problem is not parameterized (N*K above DPP_MAX_SIZE) and carries your own "
                    "constraints: build it again for the new data and add them to the new problem.x"
                )
            return build_order_problem(
                order, formulation=spec["formulation"], dpp=False, share_unit=self.share_unit, cost_unit=self.cost_unit
            )
        _assign(self.data_parameters, _scaled_data(curves, total, objective, self.share_unit, self.cost_unit))
        self.spec = dict(spec, capacity=curves.capacity, objective=objective, curves=curves, total=total)
        return self


def _scaled_data(curves, total, objective, share_unit, cost_unit):
    n = curves.n_buckets
    slopes = curves.slopes * (share_unit / cost_unit)
    widths = curves.widths / share_unit
    starts = curves.breakpoints[:, :-1] / share_unit
    start_values = curves.breakpoint_values[:, :-1] / cost_unit
    return {
        "slopes": slopes,
        "widths": widths,
        "capacity": widths.sum(axis=1),
        "intercepts": start_values - slopes * starts,
        "budget": total / share_unit,
        "rho": objective.rho * share_unit**2 / cost_unit,
        "risk": objective.psi * objective.weight_vector(n) * share_unit**2 / cost_unit,
    }


def _assign(parameters, data):
    for name, parameter in parameters.items():
        if name.startswith("slope_"):
            parameter.value = data["slopes"][:, int(name[6:])]
        elif name.startswith("intercept_"):
            parameter.value = data["intercepts"][:, int(name[10:])]
        elif name == "slopes":
            parameter.value = data["slopes"].ravel(order="F")
        else:
            parameter.value = data[name]


def build_problem(
    curves: CostCurves,
    total: float,
    objective: Objective | None = None,
    *,
    sense: str = "eq",
    formulation: str = "segment",
    dpp: bool | str = "auto",
    share_unit: float | None = None,
    cost_unit: float | None = None,
    budget: str | None = None,
) -> ScheduleProblem:
    """Build the schedule problem of ``convexsched.optimize.objective`` as a cvxpy problem.

    Parameters
    ----------
    curves : CostCurves
    total : float
        The budget ``S`` in shares.
    objective : Objective, optional
        Default: (A) cost only.
    sense : "eq" | "le"
        ``sum x = S`` (E1) or ``sum x <= S`` (E8).
    formulation : "segment" | "epigraph"
    dpp : "auto" | bool
        Parameterize (DPP) for fast re-solves. "auto" does so while ``N*K <= DPP_MAX_SIZE``.
    share_unit, cost_unit : float, optional
        Override the automatic scaling.
    budget : "eq" | "le", optional
        Deprecated name of ``sense`` (removed in 0.4).

    Returns
    -------
    ScheduleProblem
        A :class:`cvxpy.Problem`; ``problem.x`` is the schedule in shares.
    """
    order = validate(curves, total, objective, renamed(sense, budget, "build_problem", "budget", "sense"))
    return build_order_problem(order, formulation=formulation, dpp=dpp, share_unit=share_unit, cost_unit=cost_unit)


def build_order_problem(
    order: Order,
    *,
    formulation: str = "segment",
    dpp: bool | str = "auto",
    share_unit: float | None = None,
    cost_unit: float | None = None,
) -> ScheduleProblem:
    """:func:`build_problem` for an :class:`~convexsched.optimize.validate.Order` already checked."""
    if formulation not in FORMULATIONS:
        raise InvalidInputError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    curves, total, objective, sense = order.curves, order.total, order.objective, order.sense
    n, k = curves.n_buckets, curves.n_segments
    if dpp == "auto":
        dpp = n * k <= DPP_MAX_SIZE
    if share_unit is None or cost_unit is None:
        share_unit, price_unit = units(curves, total)
        cost_unit = share_unit * price_unit
    data = _scaled_data(curves, total, objective, share_unit, cost_unit)
    parameters = {}

    def value(name, shape, **kwargs):
        if not dpp:
            return data[name]
        parameters[name] = cp.Parameter(shape, name=name, **kwargs)
        return parameters[name]

    u = cp.Variable(n, name="u")
    constraints = []
    if formulation == "segment":
        y = cp.Variable((n, k), name="fill")
        widths = value("widths", (n, k), nonneg=True)
        constraints += [y >= 0, y <= widths, u == cp.sum(y, axis=1)]
        if dpp:
            # vec(P) @ vec(y) compiles in linear time; multiply(P, y) does not.
            slopes = cp.Parameter(n * k, name="slopes")
            parameters["slopes"] = slopes
            cost = slopes @ cp.vec(y, order="F")
        else:
            cost = cp.sum(cp.multiply(data["slopes"], y))
    else:
        t = cp.Variable(n, name="cost")
        capacity = value("capacity", n, nonneg=True)
        constraints += [u >= 0, u <= capacity]
        for j in range(k):
            if dpp:
                slope = parameters[f"slope_{j}"] = cp.Parameter(n, name=f"slope_{j}")
                intercept = parameters[f"intercept_{j}"] = cp.Parameter(n, name=f"intercept_{j}")
            else:
                slope, intercept = data["slopes"][:, j], data["intercepts"][:, j]
            constraints.append(t >= cp.multiply(slope, u) + intercept)
        cost = cp.sum(t)

    budget_value = value("budget", (), nonneg=True)
    budget_constraint = cp.sum(u) == budget_value if sense == "eq" else cp.sum(u) <= budget_value
    constraints.append(budget_constraint)
    terms = [cost]
    if objective.rho > 0:
        terms.append(0.5 * value("rho", (), nonneg=True) * cp.sum_squares(u))
    remaining = None
    if objective.psi > 0:
        remaining = cp.Variable(n, name="remaining")
        constraints += [remaining[0] == budget_value - u[0]]
        if n > 1:
            constraints += [remaining[1:] == remaining[:-1] - u[1:]]
        terms.append(0.5 * cp.sum(cp.multiply(value("risk", n, nonneg=True), cp.square(remaining))))
    x_shares = share_unit * u
    for term in objective.terms:
        # Terms are in currency, the problem in cost units.
        expression, extra = term.bind(total, n).formulate(x_shares, share_unit)
        terms.append(expression / cost_unit)
        constraints += extra
    if dpp:
        _assign(parameters, data)
    handles = {
        "x": x_shares,
        "remaining": share_unit * (remaining if remaining is not None else budget_value - cp.cumsum(u)),
        "u": u,
        "budget": budget_constraint,
        "parameters": parameters,
        "share_unit": share_unit,
        "cost_unit": cost_unit,
    }
    spec = {
        "n": n,
        "k": k,
        "sense": sense,
        "formulation": formulation,
        "capacity": curves.capacity,
        "objective": objective,
        "curves": curves,
        "total": total,
        "user_constraints": 0,
        "user_terms": 0,
    }
    return ScheduleProblem(cp.Minimize(cp.sum(terms)), constraints, spec=spec, handles=handles)
