import numpy as np
import pytest
from hypothesis import given

from convexsched import CostCurves, waterfill
from strategies import problems


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
