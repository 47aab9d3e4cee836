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
        old = (
            reference_waterfill.smoothed(curves, total, rho, budget)
            if rho
            else reference_waterfill.cost_only(curves, total, budget)
        )
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


@given(
    problem=problems(max_n=30, max_k=6),
    rho=st.sampled_from([1e-5, 1e-3, 1.0]),
    sense=st.sampled_from(["eq", "le"]),
    seed=st.integers(0, 2**16),
)
def test_shifted_ramps_match_the_breakpoint_search_on_moved_curves(problem, rho, sense, seed):
    # The prox of the proximal gradient against the (B) path on curves with their slopes moved,
    # three fills in a row: each walks its knot indices from the previous fill's.
    curves, total = problem
    ramps = waterfill.ShiftedRamps(curves, rho)
    rng = np.random.default_rng(seed)
    for scale in (0.02, 0.02, 2.0):
        shift = rng.uniform(-scale, scale, curves.n_buckets)
        x, level = ramps.fill(shift, total, sense, guess=0.0)
        reference = waterfill.smoothed(curves.shifted(shift), total, rho, sense)
        np.testing.assert_allclose(x, reference.x, rtol=1e-9, atol=1e-9 * max(total, 1.0))
        if (
            sense == "eq"
            and 0 < total < ramps.total_capacity
            and reference.multiplier_interval[0] == reference.multiplier_interval[1]
        ):
            assert level == pytest.approx(reference.multiplier, rel=1e-9, abs=1e-12)


# ------------------------------------------------ the searches over sorted rows (issue 23)
@st.composite
def wide_rows(draw):
    """Curves with many segments per bucket (the row selection's rounds run), tick slopes (ties
    within and across rows), zero widths, buckets without capacity and shifted negative slopes."""
    n = draw(st.integers(1, 50))
    k = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = draw(st.sampled_from([3, 40, 4000]))
    slopes = np.sort(rng.integers(1, levels, size=(n, k)), axis=1) * 0.01 - draw(st.sampled_from([0.0, 0.2]))
    widths = rng.integers(0, 5, size=(n, k)).astype(float) * 100
    widths[rng.random(n) < draw(st.sampled_from([0.0, 0.3]))] = 0.0
    curves = CostCurves(slopes, widths, allow_negative=True)
    fraction = draw(st.sampled_from([0.0, 1e-9, 0.3, 0.77, 1 - 1e-9, 1.0]))
    return curves, float(fraction * curves.capacity.sum())


@given(problem=wide_rows(), budget=st.sampled_from(["eq", "le"]))
def test_row_searches_match_the_numpy_reference(problem, budget):
    curves, total = problem
    for rho in (0.0, 3e-4):
        new = waterfill.smoothed(curves, total, rho, budget) if rho else waterfill.cost_only(curves, total, budget)
        old = (
            reference_waterfill.smoothed(curves, total, rho, budget)
            if rho
            else reference_waterfill.cost_only(curves, total, budget)
        )
        # Fills are differences of breakpoints, so rounding scales with the largest bucket too.
        scale = max(float(np.abs(curves.slopes).max()) * max(total, curves.capacity.max(), 1.0), 1e-12)
        value = [curves.evaluate(r.x).sum() + 0.5 * rho * r.x @ r.x for r in (new, old)]
        assert abs(value[0] - value[1]) <= 1e-12 * scale
        assert new.x.sum() == pytest.approx(old.x.sum(), abs=1e-9 * max(total, 1.0))
        assert new.multiplier == pytest.approx(old.multiplier, rel=1e-12, abs=1e-12)
        assert new.multiplier_interval == pytest.approx(old.multiplier_interval, rel=1e-12, abs=1e-12)


def test_row_selection_when_every_slope_is_the_same():
    # Every pivot equals every candidate: one round must end the search on the tie.
    curves = CostCurves(np.full((30, 20), 0.05), np.arange(1.0, 601.0).reshape(30, 20))
    total = 0.4 * curves.capacity.sum()
    result = waterfill.cost_only(curves, total)
    assert result.multiplier == 0.05 and result.multiplier_interval == (0.05, 0.05)
    assert np.allclose(result.x, 0.4 * curves.capacity, rtol=1e-12)


def test_row_selection_skips_buckets_without_capacity_for_the_next_slope():
    # The empty bucket's zero slopes are no real price: the level's upper end is the next real one.
    curves = CostCurves([[0.0] * 6, [1.0, 1.0, 2.0, 3.0, 4.0, 5.0]], [[0.0] * 6, [1.0] * 6])
    result = waterfill.cost_only(curves, 2.0)
    assert result.multiplier == 1.0 and result.multiplier_interval == (1.0, 2.0)
    assert result.x.tolist() == [0.0, 2.0]


@given(problem=problems(max_n=12, max_k=10), rho=st.sampled_from([1e-3, 0.5, 20.0]), data=st.data())
def test_knot_count_within_any_valid_bounds_is_numpys_searchsorted(problem, rho, data):
    # The (B) search counts each bucket's knots <= level between the counts at its bracket's
    # ends: the same count as a search of the whole sorted row (numpy's searchsorted), whatever
    # valid bounds it is given.
    curves, _ = problem
    slopes, breakpoints = np.ascontiguousarray(curves.slopes), np.ascontiguousarray(curves.breakpoints)
    k = slopes.shape[1]
    for i in range(curves.n_buckets):
        knots = np.empty(2 * k)
        knots[0::2] = slopes[i] + rho * breakpoints[i, :-1]
        knots[1::2] = slopes[i] + rho * breakpoints[i, 1:]
        level = data.draw(st.sampled_from([*knots.tolist(), knots.min() - 1.0, knots.max() + 1.0, float(knots.mean())]))
        count = int(np.searchsorted(knots, level, side="right"))
        lo = data.draw(st.integers(0, count))
        hi = data.draw(st.integers(count, 2 * k))
        assert waterfill._knots_at_or_below(slopes, breakpoints, rho, i, level, lo, hi) == count


@given(problem=problems(max_n=30, max_k=8), rho=st.sampled_from([1e-4, 0.05, 3.0]), share=st.floats(0.01, 0.99))
def test_breakpoint_search_fill_is_the_response_at_its_level(problem, rho, share):
    # x, read off the search's last counts, is the bucket response (E7) at the level it returns,
    # computed independently in numpy, and it meets the budget.
    curves, _ = problem
    total = share * curves.total_capacity
    if not total > 0:
        return
    x, level, lower, upper = waterfill._smoothed(
        np.ascontiguousarray(curves.slopes), np.ascontiguousarray(curves.breakpoints), rho, total
    )
    np.testing.assert_allclose(x, waterfill.bucket_response(curves, level, rho), rtol=1e-12, atol=1e-9 * total)
    assert abs(x.sum() - total) <= 1e-9 * total
    assert lower <= level <= upper
