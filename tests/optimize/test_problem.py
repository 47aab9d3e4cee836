import cvxpy as cp
import numpy as np
import pytest
from strategies import tick_curves

from convexsched import CostCurves, InvalidInputError, Objective, build_problem, solve
from convexsched.optimize import problem as problem_module


@pytest.mark.parametrize("formulation", ["segment", "epigraph"])
@pytest.mark.parametrize("objective", [Objective(), Objective(rho=1e-4), Objective(psi=1e-5)])
def test_problem_is_dpp_and_reusable(formulation, objective):
    rng = np.random.default_rng(0)
    curves = tick_curves(rng, 20, 4)
    total = 0.3 * curves.capacity.sum()
    problem = build_problem(curves, total, objective, formulation=formulation)
    assert isinstance(problem, cp.Problem) and problem.is_dpp() and problem.parameterized
    first = solve(curves, total, objective, method="cvxpy", problem=problem)
    # New data through the parameters: the answer must be that of a fresh build.
    other = tick_curves(rng, 20, 4)
    other_total = 0.5 * other.capacity.sum()
    again = solve(other, other_total, objective, method="cvxpy", problem=problem)
    fresh = solve(other, other_total, objective)
    assert again.problem is problem
    assert again.objective_value == pytest.approx(fresh.objective_value, rel=1e-7)
    assert first.kkt.ok and again.kkt.ok


def test_user_constraint_on_x_in_shares():
    curves = CostCurves([[0.01], [0.02], [0.03]], 1000.0)
    problem = build_problem(curves, 1500.0, Objective())
    capped = problem.with_constraints([problem.x[0] <= 400.0])
    capped.solve(solver="CLARABEL")
    x = capped.schedule()
    assert x[0] == pytest.approx(400.0, abs=1e-5)
    assert x.sum() == pytest.approx(1500.0, rel=1e-8)
    assert capped.multiplier() == pytest.approx(0.03, abs=1e-7)
    # Through solve(): the same data keeps the user's constraint, and the result is certified
    # against the plain problem (so the cap shows up as a KKT violation, not silently).
    result = solve(curves, 1500.0, Objective(), method="cvxpy", problem=capped)
    assert result.x[0] == pytest.approx(400.0, abs=1e-5)
    assert not result.kkt.ok


def test_rebuilt_problem_refuses_to_drop_user_constraints(monkeypatch):
    monkeypatch.setattr(problem_module, "DPP_MAX_SIZE", 1)
    curves = CostCurves([[0.01], [0.02]], 1000.0)
    problem = build_problem(curves, 1500.0, Objective())
    capped = problem.with_constraints([problem.x[0] <= 900.0])
    with pytest.raises(InvalidInputError, match="build it again"):
        capped.update(CostCurves([[0.01], [0.03]], 1000.0), 1500.0, Objective())


def test_million_share_budget_is_scaled():
    # Almgren-Chriss with a 1e6-share budget: unscaled, ECOS reported failure here.
    n = 50
    curves = CostCurves(np.full((n, 1), 0.05), 1e7)
    objective = Objective.almgren_chriss(eta_tilde=2.5e-7, tau=1.0, risk_aversion=1e-6, sigma=0.3)
    fast = solve(curves, 1e6, objective)
    for solver in ("ECOS", "CLARABEL", "OSQP"):
        result = solve(curves, 1e6, objective, method="cvxpy", solver=solver, fallback=False)
        assert result.solver == solver
        assert result.objective_value == pytest.approx(fast.objective_value, rel=1e-6)


def test_large_problems_switch_off_dpp(monkeypatch):
    monkeypatch.setattr(problem_module, "DPP_MAX_SIZE", 10)
    curves = tick_curves(np.random.default_rng(1), 6, 2)
    problem = build_problem(curves, 100.0, Objective(rho=1e-4))
    assert not problem.parameterized
    rebuilt = problem.update(curves, 200.0, Objective(rho=1e-4))
    assert rebuilt is not problem
    result = solve(curves, 200.0, Objective(rho=1e-4), method="cvxpy", problem=problem)
    assert result.objective_value == pytest.approx(solve(curves, 200.0, Objective(rho=1e-4)).objective_value, rel=1e-7)


def test_update_rejects_other_shapes_and_structures():
    curves = tick_curves(np.random.default_rng(2), 5, 3)
    problem = build_problem(curves, 100.0, Objective())
    with pytest.raises(InvalidInputError, match="shape"):
        problem.update(tick_curves(np.random.default_rng(3), 6, 3), 100.0, Objective())
    with pytest.raises(InvalidInputError, match="rebuild"):
        problem.update(curves, 100.0, Objective(rho=1.0))


def test_bad_formulation():
    with pytest.raises(InvalidInputError, match="formulation"):
        build_problem(CostCurves([[1.0]], 1.0), 1.0, Objective(), formulation="dense")


def test_duals_of_user_constraints_come_in_currency_per_share():
    from convexsched import CostCurves, Objective, build_problem, solve

    rng = np.random.default_rng(4)
    curves = CostCurves(np.sort(rng.uniform(0.04, 0.06, (12, 4)), axis=1), 5_000.0)
    total = 60_000.0
    cap = 3_000.0
    problem = build_problem(curves, total, Objective(rho=1e-7))
    capped = problem.with_constraints([problem.x[3] <= cap])
    schedule = solve(curves, total, Objective(rho=1e-7), method="cvxpy", problem=capped)
    (dual,) = schedule.constraint_duals
    # Relaxing the cap by a few shares saves dual * shares (currency per share, like the prices).
    relaxed = build_problem(curves, total, Objective(rho=1e-7))
    looser = solve(
        curves, total, Objective(rho=1e-7), method="cvxpy", problem=relaxed.with_constraints([relaxed.x[3] <= cap + 10.0])
    )
    saving = (schedule.objective_value - looser.objective_value) / 10.0
    assert float(dual) > 1e-4
    assert float(dual) == pytest.approx(saving, rel=1e-2)
