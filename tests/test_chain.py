import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convexsched import Objective, chain, solve, waterfill
from strategies import problems


@given(problem=problems(max_n=40, max_k=8), rho=st.sampled_from([0.0, 3e-4]))
def test_dynamic_program_reproduces_water_filling_without_risk(problem, rho):
    # With psi = 0 the chain DP must agree with the separable exact paths: two independent
    # algorithms for the same optimum.
    curves, total = problem
    objective = Objective(rho=rho)
    dp = chain.inventory_chain(curves, total, objective)
    direct = waterfill.smoothed(curves, total, rho) if rho else waterfill.cost_only(curves, total)
    f_dp, f_direct = objective.value(curves, total, dp.x), objective.value(curves, total, direct.x)
    assert f_dp == pytest.approx(f_direct, rel=1e-9, abs=1e-9)
    assert dp.x.sum() == pytest.approx(total, rel=1e-12, abs=1e-9)


def test_zero_weights_inside_the_day():
    # w_i = 0 at some buckets leaves vertical pieces unsheared: the DP must still be exact.
    curves = problems_fixed()
    weights = np.array([0, 1, 0, 2, 0, 1.0])
    objective = Objective(psi=1e-4, weights=weights)
    fast = solve(curves, 900.0, objective)
    reference = solve(curves, 900.0, objective, method="cvxpy")
    assert fast.kkt.ok
    assert fast.objective_value == pytest.approx(reference.objective_value, rel=1e-7)


def problems_fixed():
    from convexsched import CostCurves

    return CostCurves(np.tile([0.01, 0.02, 0.05], (6, 1)), 100.0)
