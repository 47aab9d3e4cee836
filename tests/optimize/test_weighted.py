"""Weighted water-filling (E12): exact fast path against its cvxpy problem, certificate, ties."""

import numpy as np
import pytest
import reference_weighted as reference
from hypothesis import given
from hypothesis import strategies as st

from convexsched import InfeasibleError, InvalidInputError
from convexsched.optimize.weighted import WeightedBuckets, build_weighted_problem, solve_weighted, weighted_kkt


def _cvxpy(buckets, total, formulation, solver="CLARABEL"):
    weighted = build_weighted_problem(buckets, total, formulation)
    weighted.problem.solve(solver=solver)
    assert weighted.problem.status == "optimal", weighted.problem.status
    return weighted.cost, weighted.multiplier, np.asarray(weighted.y.value)


@st.composite
def weighted_problems(draw):
    """Tick-grid curves (ties common), pool-like weights, optional tails, caps and smoothing."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n, k = draw(st.integers(1, 12)), draw(st.integers(1, 6))
    slopes = np.sort(rng.integers(1, draw(st.sampled_from([3, 40])), size=(n, k)), axis=1) * 0.01
    widths = rng.integers(0, 20, size=(n, k)).astype(float) * 100
    widths[rng.random(n) < 0.15] = 0.0
    weights = np.concatenate([[1.0], np.full(n - 1, draw(st.sampled_from([0.5, 1.0, 7.3])))])
    rho = draw(st.sampled_from([0.0, 0.0, 1e-5]))
    gamma = np.where(rng.random(n) < draw(st.sampled_from([0.0, 0.5])), 1e-4, 0.0)
    cap = np.where(rng.random(n) < draw(st.sampled_from([0.0, 0.4])), rng.integers(0, 30, n) * 100.0, np.inf)
    buckets = WeightedBuckets.build(slopes, widths, weights, rho=rho, gamma=gamma, cap=cap)
    room = float(buckets.weights @ buckets.capacity)
    fraction = draw(st.sampled_from([0.0, 0.1, 0.5, 0.93, 1.0]))
    total = fraction * min(room, 20_000.0) if np.isfinite(room) else fraction * 20_000.0
    return buckets, float(total)


@given(weighted_problems(), st.sampled_from(["segment", "epigraph"]))
def test_fast_path_equals_cvxpy_objective_and_level(case, formulation):
    buckets, total = case
    solution = solve_weighted(buckets, total)
    report = weighted_kkt(buckets, total, solution.y, solution.multiplier)
    assert report.ok, report
    assert float(buckets.weights @ solution.y) == pytest.approx(total, rel=1e-9, abs=1e-6)
    if total == 0:
        return
    value, level, _ = _cvxpy(buckets, total, formulation)
    scale = max(abs(solution.objective_value), 1e-6)
    assert abs(value - solution.objective_value) <= 1e-6 * scale
    # The level is unique unless the budget ends exactly on a breakpoint of S(lambda).
    lo, hi = report.multiplier_interval
    assert lo - 1e-6 <= level <= hi + 1e-6


@given(weighted_problems())
def test_second_solver_agrees(case):
    buckets, total = case
    if total == 0:
        return
    solution = solve_weighted(buckets, total)
    value, _, _ = _cvxpy(buckets, total, "epigraph", solver="ECOS")
    assert value == pytest.approx(solution.objective_value, rel=1e-5, abs=1e-6)


def test_the_certificate_rejects_a_perturbed_optimum():
    buckets = WeightedBuckets.build([[0.01, 0.02], [0.01, 0.03]], [[100, 100], [100, 100]], [1.0, 3.0])
    solution = solve_weighted(buckets, 500.0)
    assert weighted_kkt(buckets, 500.0, solution.y, solution.multiplier).ok
    moved = solution.y + np.array([30.0, -10.0])
    assert not weighted_kkt(buckets, 500.0, moved, solution.multiplier).ok


def test_ties_split_every_tied_bucket_at_the_same_fraction():
    # Ten identical books: the tied level is shared evenly (cvxpy's centre of the face).
    buckets = WeightedBuckets.build(np.full((10, 2), [0.01, 0.02]), np.full((10, 2), [1000.0, 1000.0]))
    solution = solve_weighted(buckets, 12_500.0)
    np.testing.assert_allclose(solution.y, 1250.0)
    assert solution.multiplier == 0.02 and solution.tie_fraction == pytest.approx(0.25)
    # With weights, the current book (weight 1) and the pool (weight 4) still fill at one pace.
    pool = WeightedBuckets.build([[0.01], [0.01]], [[100.0], [100.0]], [1.0, 4.0])
    np.testing.assert_allclose(solve_weighted(pool, 250.0).y, [50.0, 50.0])


def test_the_tail_continues_the_book_like_the_executor():
    # Beyond depth D the marginal cost rises at gamma per share from the last slope.
    buckets = WeightedBuckets.build([[0.01, 0.02]], [[100.0, 100.0]], gamma=[1e-4])
    solution = solve_weighted(buckets, 300.0)
    assert solution.y[0] == pytest.approx(300.0)
    assert solution.objective_value == pytest.approx(100 * 0.01 + 100 * 0.02 + 100 * 0.02 + 1e-4 * 100**2 / 2)
    assert solution.multiplier == pytest.approx(0.02 + 1e-4 * 100)


def test_degenerate_budgets():
    buckets = WeightedBuckets.build([[0.01, 0.02], [0.0, 0.0]], [[100.0, 50.0], [0.0, 0.0]], [1.0, 2.0])
    zero = solve_weighted(buckets, 0.0)
    assert (zero.y == 0).all() and zero.objective_value == 0
    full = solve_weighted(buckets, 150.0)
    np.testing.assert_allclose(full.y, [150.0, 0.0])
    assert weighted_kkt(buckets, 150.0, full.y, full.multiplier).ok
    with pytest.raises(InfeasibleError, match="maximum executable is 150") as error:
        solve_weighted(buckets, 151.0)
    assert error.value.max_executable == pytest.approx(150.0)


def test_bad_input_is_rejected():
    with pytest.raises(InvalidInputError, match="decrease"):
        WeightedBuckets.build([[0.02, 0.01]], [[1.0, 1.0]])
    with pytest.raises(InvalidInputError, match="finite"):
        WeightedBuckets.build([[np.nan]], [[1.0]])
    with pytest.raises(InvalidInputError, match=">= 0"):
        WeightedBuckets.build([[0.01]], [[1.0]], weights=[-1.0])
    with pytest.raises(InvalidInputError, match="budget"):
        solve_weighted(WeightedBuckets.build([[0.01]], [[1.0]]), np.nan)


# ---------------------------------------------------------------- compiled kernels and the batch


def _raw(case_seed, n, k):
    """A raw problem (before caps), like a scenario step: tick-grid slopes, ties, tails, caps."""
    rng = np.random.default_rng(case_seed)
    slopes = np.sort(rng.integers(1, 12, size=(n, k)), axis=1) * 0.01
    widths = rng.integers(0, 20, size=(n, k)).astype(float) * 100
    widths[rng.random(n) < 0.15] = 0.0
    weights = np.concatenate([[1.0], np.full(n - 1, rng.choice([0.5, 1.0, 7.3]))])
    gamma = np.where(rng.random(n) < 0.5, 1e-4, 0.0)
    cap = np.where(rng.random(n) < 0.4, rng.integers(0, 30, n) * 100.0, np.inf)
    return slopes, widths, weights, gamma, cap


@given(weighted_problems())
def test_compiled_solver_and_certificate_match_the_numpy_reference(case):
    buckets, total = case
    expected, maximum = reference.solve(buckets, total)
    solution = solve_weighted(buckets, total)
    np.testing.assert_allclose(solution.y, expected.y, rtol=1e-9, atol=1e-7)
    assert solution.multiplier == pytest.approx(expected.multiplier, rel=1e-9, abs=1e-12)
    assert solution.objective_value == pytest.approx(expected.objective_value, rel=1e-9, abs=1e-9)
    assert np.isnan(solution.tie_fraction) == np.isnan(expected.tie_fraction)
    report = weighted_kkt(buckets, total, solution.y, solution.multiplier)
    ok, worst, gap, value, dual = reference.certify(buckets, total, solution.y, solution.multiplier)
    assert report.ok == ok and report.max_violation == pytest.approx(worst, rel=1e-6, abs=1e-12)
    assert report.objective_value == pytest.approx(value, rel=1e-9, abs=1e-9)
    assert report.dual_value == pytest.approx(dual, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_compiled_caps_and_tails_match_the_numpy_reference(seed):
    slopes, widths, weights, gamma, cap = _raw(seed, 12, 6)
    compiled = WeightedBuckets.build(slopes, widths, weights, rho=1e-5, gamma=gamma, cap=cap)
    numpy = reference.build(slopes, widths, weights, rho=1e-5, gamma=gamma, cap=cap)
    for name in ("widths", "gamma", "depth", "tail_cap", "last_slope"):
        np.testing.assert_allclose(getattr(compiled, name), getattr(numpy, name), rtol=1e-12, err_msg=name)


def test_the_reference_certificate_rejects_what_the_compiled_one_rejects():
    buckets = WeightedBuckets.build([[0.01, 0.02], [0.01, 0.03]], [[100, 100], [100, 100]], [1.0, 3.0])
    solution = solve_weighted(buckets, 500.0)
    moved = solution.y + np.array([30.0, -10.0])
    assert not reference.certify(buckets, 500.0, moved, solution.multiplier)[0]
    assert not weighted_kkt(buckets, 500.0, moved, solution.multiplier).ok


@pytest.mark.parametrize("rho", [0.0, 1e-5])
def test_the_batch_gives_the_single_answers_bit_for_bit(rho):
    from convexsched.optimize.weighted import solve_weighted_batch

    n, k, count = 9, 5, 40
    problems = [_raw(seed, n, k) for seed in range(count)]
    slopes, widths, weights, gamma, cap = (np.stack(part) for part in zip(*problems, strict=True))
    single = [WeightedBuckets.build(*p[:3], rho=rho, gamma=p[3], cap=p[4]) for p in problems]
    rooms = np.array([float(b.weights @ b.capacity) for b in single])
    fractions = np.resize([0.0, 0.3, 0.7, 1.0, 1.2], count)  # 1.2: infeasible where the room is finite
    totals = fractions * np.where(np.isfinite(rooms), rooms, 5_000)
    batch = solve_weighted_batch(slopes, widths, weights, totals, rho=rho, gamma=gamma, cap=cap)
    for b, (buckets, total) in enumerate(zip(single, totals, strict=True)):
        if total > rooms[b] * (1 + 1e-12):
            assert not batch.feasible[b] and batch.maximum[b] == pytest.approx(rooms[b])
            with pytest.raises(InfeasibleError):
                solve_weighted(buckets, total)
            continue
        solution = solve_weighted(buckets, total)
        report = weighted_kkt(buckets, total, solution.y, solution.multiplier)
        assert batch.feasible[b] and batch.kkt_ok[b] == report.ok and report.ok
        assert np.array_equal(batch.y[b], solution.y)
        assert batch.multiplier[b] == solution.multiplier and batch.objective_value[b] == solution.objective_value
        assert batch.max_violation[b] == report.max_violation and batch.duality_gap[b] == report.relative_gap
        assert np.array_equal(np.isnan(batch.tie_fraction[b]), np.isnan(solution.tie_fraction))
    assert (~batch.feasible).sum() == np.isfinite(rooms[fractions > 1]).sum()


def test_padding_buckets_of_weight_zero_change_nothing():
    from convexsched.optimize.weighted import solve_weighted_batch

    slopes, widths, weights, gamma, cap = _raw(3, 6, 4)
    padded = [np.concatenate([a, np.zeros((2,) + a.shape[1:])]) for a in (slopes, widths, weights, gamma)]
    cap = np.concatenate([cap, [np.inf, np.inf]])
    batch = solve_weighted_batch(*(a[None] for a in padded[:3]), [1_500.0], gamma=padded[3][None], cap=cap[None])
    alone = solve_weighted(WeightedBuckets.build(slopes, widths, weights, gamma=gamma, cap=cap[:6]), 1_500.0)
    np.testing.assert_allclose(batch.y[0, :6], alone.y, rtol=1e-12)
    assert (batch.y[0, 6:] == 0).all() and batch.kkt_ok[0]


def test_the_batch_checks_its_input():
    from convexsched.optimize.weighted import solve_weighted_batch

    slopes, widths = np.full((2, 3, 2), [0.01, 0.02]), np.full((2, 3, 2), 100.0)
    with pytest.raises(InvalidInputError, match="problem 1, bucket 0's slopes decrease"):
        solve_weighted_batch(np.where(np.arange(2)[:, None, None] == 1, slopes[..., ::-1], slopes), widths, 1.0, [1.0, 1.0])
    with pytest.raises(InvalidInputError, match="budgets"):
        solve_weighted_batch(slopes, widths, 1.0, [1.0, -1.0])
    with pytest.raises(InvalidInputError, match="shape"):
        solve_weighted_batch(slopes[0], widths[0], 1.0, [1.0])


def test_the_problem_reads_its_multiplier_in_user_units_and_still_unpacks():
    buckets = WeightedBuckets.build([[0.01, 0.03], [0.02, 0.02]], [[500.0, 500.0], [800.0, 0.0]], [1.0, 2.0])
    weighted = build_weighted_problem(buckets, 1500.0)
    weighted.problem.solve(solver="CLARABEL")
    fast = solve_weighted(buckets, 1500.0)
    assert weighted.multiplier == pytest.approx(fast.multiplier, rel=1e-6)
    assert weighted.multiplier > 0  # a price per share, not the dual's sign and scale
    with pytest.warns(FutureWarning, match="unpacking build_weighted_problem"):
        problem, y, budget, (share_unit, cost_unit) = weighted
    assert -float(budget.dual_value) * cost_unit / share_unit == weighted.multiplier
