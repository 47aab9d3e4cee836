import numpy as np
import pytest
import reference_waterfill
from hypothesis import given
from hypothesis import strategies as st
from strategies import problems

from convexsched import CostCurves
from convexsched.optimize import waterfill


def brute_force_response(curves, price, rho):
    """argmin over a fine grid of g(x) + rho/2 x^2 - price x, bucket by bucket."""
    out = []
    for i in range(curves.n_buckets):
        grid = np.linspace(0, curves.capacity[i], 20001)
        x = np.zeros(curves.n_buckets)
        values = []
        for v in grid:
            x[i] = v
            values.append(curves.evaluate(x)[i] + 0.5 * rho * v * v - price * v)
        out.append(grid[int(np.argmin(values))])
    return np.array(out)


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_bucket_response_is_the_argmin(rho):
    curves = CostCurves([[1.0, 2.0, 4.0], [0.5, 3.0, 3.5]], [[1.0, 2.0, 1.0], [2.0, 1.0, 1.0]])
    for price in (0.0, 1.7, 2.9, 3.6, 10.0):
        expected = brute_force_response(curves, price, rho)
        assert np.allclose(waterfill.bucket_response(curves, price, rho), expected, atol=5e-4)


@given(problem=problems(max_n=30, max_k=6))
def test_supply_at_the_level_brackets_the_budget(problem):
    curves, total = problem
    result = waterfill.cost_only(curves, total)
    lo = waterfill.bucket_response(curves, result.multiplier).sum()
    hi = waterfill.bucket_response(curves, result.multiplier, upper=True).sum()
    assert lo - 1e-9 <= total <= hi + 1e-9
    assert result.x.sum() == pytest.approx(total, abs=1e-9)


def test_conjugate_by_hand():
    curves = CostCurves([[1.0, 3.0]], 1.0)
    # max_x 2x - g(x): fill the slope-1 segment only -> 2 - 1 = 1.
    assert waterfill.conjugate(curves, np.array([2.0]))[0] == pytest.approx(1.0)


# ---------------------------------------------------------------- compiled kernels vs numpy
@given(problem=problems(max_n=40, max_k=10), budget=st.sampled_from(["eq", "le"]), shift=st.sampled_from([0.0, 1.0]))
def test_compiled_water_filling_matches_the_numpy_reference(problem, budget, shift):
    curves, total = problem
    if shift:
        # Negative slopes on purpose: the "<=" budget's profitable segments.
        curves = CostCurves(curves.slopes - shift, curves.widths, allow_negative=True)
    if budget == "eq":
        total = min(total, float(curves.capacity.sum()))
    cost = curves.evaluate
    for rho in (0.0, 2e-4):
        new = waterfill.smoothed(curves, total, rho, budget) if rho else waterfill.cost_only(curves, total, budget)
        old = (reference_waterfill.smoothed(curves, total, rho, budget) if rho
               else reference_waterfill.cost_only(curves, total, budget))
        scale = max(float(np.abs(curves.slopes).max()) * max(total, 1.0), 1e-12)
        f_new = cost(new.x).sum() + 0.5 * rho * new.x @ new.x
        f_old = cost(old.x).sum() + 0.5 * rho * old.x @ old.x
        assert abs(f_new - f_old) <= 1e-12 * scale
        assert new.multiplier == pytest.approx(old.multiplier, rel=1e-12, abs=1e-12)
        assert new.multiplier_interval == pytest.approx(old.multiplier_interval, rel=1e-12, abs=1e-12)
        if rho:
            # (B) is strictly convex: the schedule itself is unique.
            assert np.allclose(new.x, old.x, rtol=1e-12, atol=1e-9)


@given(problem=problems(max_n=40, max_k=10))
def test_ties_are_split_in_equal_fractions(problem):
    curves, total = problem
    result = waterfill.cost_only(curves, total)
    level = result.multiplier
    real = curves.widths > 0
    below = np.where(real & (curves.slopes < level), curves.widths, 0.0).sum(axis=1)
    tied = np.where(real & (curves.slopes == level), curves.widths, 0.0).sum(axis=1)
    share = (result.x - below)[tied > 0] / tied[tied > 0]
    assert result.x.sum() == pytest.approx(total, abs=1e-9 * max(total, 1.0))
    if share.size and 0 < total < curves.capacity.sum():
        assert np.ptp(share) <= 1e-12


def test_ten_identical_buckets_share_equally():
    curves = CostCurves(np.tile([0.01, 0.02, 0.05], (10, 1)), 1000.0)
    for result in (waterfill.cost_only(curves, 12_500.0), waterfill.smoothed(curves, 12_500.0, 1e-6)):
        assert np.allclose(result.x, 1250.0, rtol=1e-12)


@given(problem=problems(max_n=30, max_k=6), rho=st.sampled_from([1e-5, 1e-3]), sense=st.sampled_from(["eq", "le"]),
       seed=st.integers(0, 2**16))
def test_shifted_ramps_match_the_breakpoint_search_on_moved_curves(problem, rho, sense, seed):
    # The prox of the proximal gradient against the (B) path on curves with their slopes moved.
    curves, total = problem
    shift = np.random.default_rng(seed).uniform(-0.02, 0.02, curves.n_buckets)
    x, level = waterfill.ShiftedRamps(curves, rho).fill(shift, total, sense)
    reference = waterfill.smoothed(curves.shifted(shift), total, rho, sense).x
    np.testing.assert_allclose(x, reference, rtol=1e-9, atol=1e-9 * max(total, 1.0))
