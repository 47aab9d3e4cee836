"""Every solver path against an independent one: fast vs cvxpy (two solvers, both
formulations) vs the KKT checker, on random and degenerate cases."""

import warnings
from pathlib import Path

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import problems, tick_curves

import convexsched as cs
from convexsched import CostCurves, InfeasibleError, InvalidInputError, Objective, SolverError, solve
from convexsched.optimize import solve as solve_module

OBJECTIVES = {
    "A": Objective.cost_only(),
    "B": Objective.smoothed(2e-4),
    "C": Objective.inventory_risk(1e-5),
    "C-power": Objective.inventory_risk(1e-5, weights=("power", 1.7)),
    "B+C": Objective(rho=1e-4, psi=1e-5, weights="constant"),
}


def cost_scale(curves, total, objective=None):
    """Cost of a budget-sized trade at the largest price (plus the objective's quadratic terms
    on it): the yardstick when F is near 0."""
    size = max(total, curves.capacity.max(), 1.0)
    quadratic = 0.0 if objective is None else (objective.rho + objective.psi * curves.n_buckets) * size**2 / 2
    return float(np.abs(curves.slopes).max()) * size + quadratic


def assert_agree(fast, reference, curves, rel=1e-7):
    scale = max(abs(reference.objective_value), cost_scale(curves, reference.total))
    assert abs(fast.objective_value - reference.objective_value) <= rel * scale
    assert float(np.sum(fast.x)) == pytest.approx(reference.total, rel=1e-9, abs=1e-9)
    # Ties make x non-unique in (A): compare the level, through the fast path's interval.
    lo, hi = fast.multiplier_interval
    remaining = np.asarray(fast.remaining, dtype=float)
    weights = fast.objective.weight_vector(len(remaining))
    price_scale = max(np.abs(curves.slopes).max(), abs(fast.multiplier), fast.objective.psi * weights @ remaining)
    tolerance = 1e-4 * price_scale  # interior-point duals are good to about 1e-5
    assert lo - tolerance <= reference.multiplier <= hi + tolerance


@pytest.mark.parametrize("name", list(OBJECTIVES))
@given(problem=problems())
def test_fast_path_matches_clarabel_and_a_second_solver(name, problem):
    curves, total = problem
    objective = OBJECTIVES[name]
    fast = solve(curves, total, objective)
    assert fast.kkt.ok, fast.kkt
    clarabel = solve(curves, total, objective, method="cvxpy", solver="CLARABEL", fallback=False)
    assert clarabel.kkt.ok, clarabel.kkt
    assert_agree(fast, clarabel, curves)
    # HiGHS through highspy needs cvxpy >= 1.6 (the solvers extra); the minimum-versions leg
    # (cvxpy 1.5, no extra) checks the LP with ECOS instead.
    second = "HIGHS" if name == "A" and "HIGHS" in cp.installed_solvers() else "ECOS"
    other = solve(curves, total, objective, method="cvxpy", solver=second, formulation="epigraph", fallback=False)
    assert other.solver == second
    assert abs(other.objective_value - fast.objective_value) <= 1e-6 * max(abs(fast.objective_value), cost_scale(curves, total))


@pytest.mark.parametrize("name", ["A", "B", "C"])
@settings(max_examples=4)
@given(problem=problems(min_n=200, max_n=500, min_k=16, max_k=64))
def test_large_random_instances_match_clarabel(name, problem):
    # The range (N up to 500, K up to 64), with fewer examples: each costs ~1 s.
    curves, total = problem
    fast = solve(curves, total, OBJECTIVES[name])
    reference = solve(curves, total, OBJECTIVES[name], method="cvxpy", solver="CLARABEL", formulation="epigraph")
    assert fast.kkt.ok and reference.kkt.ok
    assert_agree(fast, reference, curves)


@pytest.mark.parametrize("name", ["A", "B", "C"])
@given(problem=problems(max_n=40, max_k=8), fraction=st.sampled_from([0.0, 0.3, 1.5]))
def test_le_budget_matches_cvxpy(name, problem, fraction):
    curves, total = problem
    # Negative slopes somewhere make trading profitable, so the "<=" budget can be slack.
    shifted = CostCurves(curves.slopes - 1.0, curves.widths, allow_negative=True)
    budget_total = fraction * curves.capacity.sum() * 0.5
    objective = OBJECTIVES[name]
    fast = solve(shifted, budget_total, objective, sense="le")
    reference = solve(shifted, budget_total, objective, sense="le", method="cvxpy", solver="CLARABEL")
    assert fast.kkt.ok, fast.kkt
    assert fast.multiplier <= 1e-12  # lambda <= 0 up to round-off (6.9e-18 seen at slopes near 1)
    assert abs(fast.objective_value - reference.objective_value) <= 1e-7 * max(
        abs(reference.objective_value), cost_scale(shifted, budget_total, objective)
    )
    assert float(np.sum(fast.x)) <= budget_total + 1e-9


def test_large_random_instance_all_paths_agree():
    rng = np.random.default_rng(7)
    curves = tick_curves(rng, 390, 16)
    total = 0.4 * curves.capacity.sum()
    for objective in OBJECTIVES.values():
        fast = solve(curves, total, objective)
        reference = solve(curves, total, objective, method="cvxpy", formulation="epigraph")
        assert fast.kkt.ok and reference.kkt.ok
        assert_agree(fast, reference, curves)


# ---------------------------------------------------------------- hand-checked examples
def test_cost_only_fills_cheapest_segments_first():
    curves = CostCurves([[1.0, 3.0], [2.0, 4.0]], 1.0)
    result = solve(curves, 2.5)
    # Segments by price: 1 (b0), 2 (b1), 3 (b0, half), lambda = 3.
    assert result.x.tolist() == [1.5, 1.0]
    assert result.multiplier == 3.0
    assert result.objective_value == pytest.approx(1 + 2 + 1.5)


def test_smoothed_equalizes_marginal_cost_by_hand():
    # g = x in both buckets, rho = 1: 1 + x1 = 1 + x2 = lambda, x1 + x2 = 4.
    curves = CostCurves([[1.0], [1.0]], 10.0)
    result = solve(curves, 4.0, Objective.smoothed(1.0))
    assert np.allclose(result.x, [2.0, 2.0])
    assert result.multiplier == pytest.approx(3.0)


def test_inventory_risk_reproduces_almgren_chriss_closed_form():
    n, total, rho, psi = 20, 1e6, 2e-4, 5e-5
    curves = CostCurves(np.full((n, 1), 0.01), 1e7)
    result = solve(curves, total, Objective(rho=rho, psi=psi, weights="constant"))
    kappa = np.arccosh(1 + psi / (2 * rho))
    i = np.arange(1, n + 1)
    remaining = total * np.sinh(kappa * (n - i)) / np.sinh(kappa * n)
    assert np.allclose(result.remaining, remaining, rtol=1e-9, atol=1e-6)
    reference = solve(curves, total, Objective(rho=rho, psi=psi, weights="constant"), method="cvxpy")
    assert reference.objective_value == pytest.approx(result.objective_value, rel=1e-7)


def test_inventory_risk_front_loads():
    curves = CostCurves(np.full((10, 2), [0.01, 0.02]), 500.0)
    flat = solve(curves, 4000.0)
    risky = solve(curves, 4000.0, Objective.inventory_risk(1e-4))
    assert risky.remaining.sum() < flat.remaining.sum() + 1e-9
    assert np.all(np.diff(risky.x) <= 1e-9)


# ---------------------------------------------------------------- degenerate cases
@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_all_slopes_equal(name):
    curves = CostCurves(np.full((8, 3), 0.05), 100.0)
    fast = solve(curves, 1234.0, OBJECTIVES[name])
    reference = solve(curves, 1234.0, OBJECTIVES[name], method="cvxpy")
    assert fast.kkt.ok
    assert_agree(fast, reference, curves)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_zero_capacity_buckets_trade_nothing(name):
    widths = np.full((6, 2), 100.0)
    widths[[1, 4]] = 0.0
    curves = CostCurves(np.tile([0.01, 0.03], (6, 1)), widths)
    result = solve(curves, 500.0, OBJECTIVES[name])
    assert result.kkt.ok
    assert result.x[1] == 0 and result.x[4] == 0


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_single_bucket(name):
    curves = CostCurves([[0.01, 0.02]], 100.0)
    result = solve(curves, 150.0, OBJECTIVES[name])
    assert result.x[0] == pytest.approx(150.0, rel=1e-14)
    assert result.kkt.ok


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_zero_budget(name):
    curves = tick_curves(np.random.default_rng(1), 5, 3)
    result = solve(curves, 0.0, OBJECTIVES[name])
    assert np.all(result.x == 0) and result.objective_value == 0
    assert result.kkt.ok


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_budget_equal_to_capacity_fills_everything(name):
    curves = tick_curves(np.random.default_rng(2), 6, 3)
    result = solve(curves, curves.capacity.sum(), OBJECTIVES[name])
    assert np.allclose(result.x, curves.capacity)
    assert result.kkt.ok


def test_budget_above_capacity_names_the_maximum():
    curves = CostCurves([[0.01], [0.02]], [100.0, 50.0])
    with pytest.raises(InfeasibleError, match="maximum executable is 150") as error:
        solve(curves, 151.0)
    assert error.value.max_executable == 150.0


def test_le_budget_larger_than_worth_trading():
    # Only the first segment (slope -0.01) is profitable: the window trades 100 of 1000.
    curves = CostCurves([[-0.01, 0.02], [0.03, 0.04]], 100.0, allow_negative=True)
    for method in ("fast", "cvxpy"):
        result = solve(curves, 1000.0, sense="le", method=method)
        assert np.allclose(result.x, [100.0, 0.0], atol=1e-6)
        assert result.multiplier == pytest.approx(0.0, abs=1e-9)
        assert result.kkt.ok


def test_le_budget_with_positive_costs_trades_nothing_without_risk():
    curves = CostCurves(np.full((5, 1), 0.01), 100.0)
    assert np.all(solve(curves, 300.0, sense="le").x == 0)
    risky = solve(curves, 300.0, Objective.inventory_risk(1.0), sense="le")
    assert risky.x.sum() > 0 and risky.kkt.ok


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf, "ten"])
def test_bad_budget(bad):
    curves = CostCurves([[0.01]], 100.0)
    with pytest.raises(InvalidInputError):
        solve(curves, bad)


def test_bad_method_and_solver():
    curves = CostCurves([[0.01]], 100.0)
    with pytest.raises(InvalidInputError, match="method"):
        solve(curves, 1.0, method="magic")
    with pytest.raises(InvalidInputError, match="unknown solver"):
        solve(curves, 1.0, method="cvxpy", solver="GUROBI")
    with pytest.raises(InvalidInputError, match="psi > 0"):
        solve(curves, 1.0, Objective.inventory_risk(1.0), method="bisection")


def test_indexed_curves_give_series():
    index = pd.date_range("2024-01-02 09:30", periods=3, freq="1min", tz="America/New_York")
    curves = CostCurves([[0.01], [0.02], [0.03]], 100.0, index=index)
    result = solve(curves, 150.0)
    assert isinstance(result.x, pd.Series) and result.x.index.equals(index)
    assert "KKT certificate: OK" in str(result)


def test_dual_bisection_misses_by_at_most_eps():
    curves = tick_curves(np.random.default_rng(3), 50, 6)
    total = 0.3 * curves.capacity.sum()
    approximate = solve(curves, total, Objective.smoothed(1e-4), method="bisection")
    exact = solve(curves, total, Objective.smoothed(1e-4))
    assert approximate.status == "approximate"
    assert abs(np.sum(approximate.x) - total) <= 1e-3 * total
    assert abs(np.sum(exact.x) - total) <= 1e-9 * total
    assert approximate.objective_value == pytest.approx(exact.objective_value, rel=1e-2)


def test_dual_bisection_cannot_split_a_step_in_cost_only():
    # For (A), S(lambda) jumps by a whole segment at each slope: bisection stalls one segment
    # away from S, and its certificate says so. Exact water-filling splits the segment.
    curves = CostCurves([[0.01], [0.02]], 1000.0)
    approximate = solve(curves, 1500.0, method="bisection")
    assert abs(np.sum(approximate.x) - 1500.0) == 500.0
    assert not approximate.kkt.ok and approximate.kkt.primal_residual > 0.3
    assert solve(curves, 1500.0).x.tolist() == [1000.0, 500.0]


def test_fallback_records_the_solver_that_succeeded():
    curves = tick_curves(np.random.default_rng(4), 30, 4)
    total = 0.5 * curves.capacity.sum()
    result = solve(curves, total, method="cvxpy", solver=["OSQP", "CLARABEL"], solver_options={"OSQP": {"max_iter": 1}})
    assert [a["solver"] for a in result.attempts] == ["OSQP", "CLARABEL"]
    assert result.attempts[0]["status"] != "optimal"
    assert result.solver == "CLARABEL" and result.kkt.ok


def test_inventory_risk_beyond_the_dynamic_programs_limit_uses_cvxpy(monkeypatch):
    from convexsched.optimize import chain

    curves = tick_curves(np.random.default_rng(6), 40, 4)
    total = 0.4 * curves.capacity.sum()
    exact = solve(curves, total, OBJECTIVES["C"])
    monkeypatch.setattr(chain, "MAX_SEGMENTS", 10)
    fallback = solve(curves, total, OBJECTIVES["C"])
    assert fallback.method == "cvxpy" and fallback.solver == "CLARABEL" and fallback.kkt.ok
    assert fallback.objective_value == pytest.approx(exact.objective_value, rel=1e-7)


def test_public_api_names():
    for name in ("CostCurves", "Objective", "solve", "build_problem", "check_kkt"):
        assert hasattr(cs, name)


def test_schedule_x_is_a_series_without_an_index_and_unknown_solvers_fail_everywhere():
    curves = CostCurves([[0.01, 0.02], [0.015, 0.03]], 100.0)
    schedule = solve(curves, 150.0)
    assert isinstance(schedule.x, pd.Series) and isinstance(schedule.x.index, pd.RangeIndex)
    assert isinstance(schedule.remaining, pd.Series) and schedule.remaining.iloc[-1] == pytest.approx(0.0)
    for method in ("fast", "cvxpy"):
        with pytest.raises(InvalidInputError, match="unknown solver"):
            solve(curves, 150.0, method=method, solver="GUROBI_OR_NOT")


# ---------------------------------------------------------------- ties: the centre of the face
def test_ten_identical_buckets_get_the_same_share_on_every_path():
    curves = CostCurves(np.tile([0.01, 0.02, 0.05], (10, 1)), 1000.0)
    for name in ("A", "C"):
        objective = Objective(psi=1e-4, weights=np.zeros(10)) if name == "C" else OBJECTIVES[name]
        fast = solve(curves, 12_500.0, objective)
        reference = solve(curves, 12_500.0, objective, method="cvxpy")
        assert np.allclose(fast.x, 1250.0, rtol=1e-12)
        assert np.allclose(reference.x, 1250.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["A", "B"])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 30), k=st.integers(1, 4), fraction=st.sampled_from([0.1, 0.35, 0.6]))
def test_schedules_close_to_cvxpy_on_tied_instances(name, seed, n, k, fraction):
    # Tick slopes from three values and one width everywhere: ties across and within buckets,
    # and the equal-fraction split is also the interior point's limit (the face is symmetric).
    # (C) ties only inside runs of zero weights; there Clarabel's QP answer is not the centre
    # (test_chain.py checks the split itself).
    rng = np.random.default_rng(seed)
    curves = CostCurves(np.sort(rng.integers(1, 4, size=(n, k)), axis=1) * 0.01, 100.0)
    total = fraction * curves.capacity.sum()
    fast = solve(curves, total, OBJECTIVES[name])
    reference = solve(curves, total, OBJECTIVES[name], method="cvxpy", solver="CLARABEL")
    assert np.abs(fast.x - reference.x).max() <= 1e-4 * total


def test_success_follows_the_status_and_the_certificate():
    curves = CostCurves([[0.01, 0.02], [0.015, 0.03]], 100.0)
    assert solve(curves, 150.0).success
    # The dual bisection (E7) cannot split a tied step: it stops short of S and says so.
    bisection = solve(CostCurves([[0.01], [0.01]], 100.0), 150.0, method="bisection")
    assert bisection.status == "approximate" and not bisection.success


def test_clarabel_stalling_at_1e10_is_retried_at_1e9(monkeypatch):
    # A (C) problem found by hypothesis: Clarabel at 1e-10 ends "optimal_inaccurate".
    case = np.load(Path(__file__).parent / "cases" / "clarabel_stalls.npz")
    curves = CostCurves(case["slopes"], case["widths"])
    total = float(case["total"])
    objective = OBJECTIVES["C"]
    fast = solve(curves, total, objective)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # cvxpy's "may be inaccurate"
        monkeypatch.setattr(solve_module, "RETRY_OPTIONS", {})
        with pytest.raises(SolverError, match="CLARABEL -> optimal_inaccurate"):
            solve(curves, total, objective, method="cvxpy", solver="CLARABEL", fallback=False)
        monkeypatch.undo()
        retried = solve(curves, total, objective, method="cvxpy", solver="CLARABEL", fallback=False)
    assert [a["status"] for a in retried.attempts] == ["optimal_inaccurate", "optimal"]
    assert retried.kkt.ok
    assert_agree(fast, retried, curves)


@pytest.mark.parametrize("name", list(OBJECTIVES))
@pytest.mark.parametrize("share", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("sense", ["eq", "le"])
def test_schedule_values_are_their_own_read_only_array(name, share, sense):
    # The water-filling paths hand their fresh x to the schedule without a copy: no schedule's
    # values alias another's, the curves' arrays, or anything the user can write through.
    curves = tick_curves(np.random.default_rng(11), 12, 4)
    total = share * curves.total_capacity
    first, second = solve(curves, total, OBJECTIVES[name], sense=sense), solve(curves, total, OBJECTIVES[name], sense=sense)
    assert not first.values.flags.writeable
    assert not np.shares_memory(first.values, second.values)
    for array in (curves.capacity, curves.breakpoints, curves.widths, curves.slopes):
        assert not np.shares_memory(first.values, array)
    np.testing.assert_array_equal(first.values, second.values)
    assert np.array_equal(first.x.to_numpy(), first.values)
