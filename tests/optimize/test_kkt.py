import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import problems, tick_curves

from convexsched import CostCurves, InvalidInputError, Objective, check_kkt, solve
from convexsched.optimize import kkt, waterfill


@pytest.mark.parametrize("objective", [Objective(), Objective(rho=1e-4), Objective(psi=1e-5)])
def test_optimal_passes_and_perturbation_fails(objective):
    curves = tick_curves(np.random.default_rng(5), 40, 5)
    total = 0.35 * curves.capacity.sum()
    result = solve(curves, total, objective)
    report = check_kkt(curves, total, objective, result.x)
    assert report.ok and report.relative_gap < 1e-9
    # Move 1% of S from the cheapest used bucket to the dearest free slot: still feasible,
    # but no longer optimal, and the certificate must say so.
    x = np.asarray(result.x, dtype=float).copy()
    left, right = curves.slope_bounds(x)
    room = curves.capacity - x
    give = int(np.argmin(np.where(x > 0.01 * total, left, np.inf)))
    right[give] = -np.inf
    take = int(np.argmax(np.where(room > 0.01 * total, right, -np.inf)))
    x[give] -= 0.01 * total
    x[take] += 0.01 * total
    bad = check_kkt(curves, total, objective, x)
    assert not bad.ok and bad.relative_gap > 1e-6 and bad.primal_residual < 1e-12


def test_infeasible_schedules_are_caught():
    curves = CostCurves([[0.01], [0.02]], 100.0)
    assert check_kkt(curves, 150.0, Objective(), [100.0, 60.0]).primal_residual == pytest.approx(10 / 150)
    over = check_kkt(curves, 150.0, Objective(), [120.0, 30.0])
    assert not over.ok and over.bound_violation == pytest.approx(20 / 150)
    negative = check_kkt(curves, 150.0, Objective(), [160.0, -10.0])
    assert not negative.ok and negative.bound_violation > 0


def test_claimed_multiplier_is_checked():
    curves = CostCurves([[0.01, 0.03], [0.02, 0.04]], 100.0)
    result = solve(curves, 250.0)
    assert check_kkt(curves, 250.0, Objective(), result.x, multiplier=0.03).ok
    assert not check_kkt(curves, 250.0, Objective(), result.x, multiplier=0.02).ok


def test_le_budget_complementarity():
    curves = CostCurves([[-0.01, 0.02]], 100.0, allow_negative=True)
    ok = check_kkt(curves, 1000.0, Objective(), [100.0], sense="le")
    assert ok.ok and ok.multiplier == 0.0
    # Trading the unprofitable segment too is not optimal.
    assert not check_kkt(curves, 1000.0, Objective(), [150.0], sense="le").ok


def test_bad_schedule_input():
    curves = CostCurves([[0.01]], 100.0)
    with pytest.raises(InvalidInputError, match="shape"):
        check_kkt(curves, 50.0, Objective(), [1.0, 2.0])
    with pytest.raises(InvalidInputError, match="NaN"):
        check_kkt(curves, 50.0, Objective(), [np.nan])


def test_report_prints():
    curves = CostCurves([[0.01]], 100.0)
    text = str(check_kkt(curves, 50.0, Objective(), [50.0]))
    assert "KKT certificate: OK" in text and "duality gap" in text


@given(
    problem=problems(max_n=30, max_k=6),
    rho=st.sampled_from([0.0, 1e-4]),
    noise=st.sampled_from([0.0, 0.01]),
    snap=st.sampled_from([0.0, 1e-6, 50.0]),
    seed=st.integers(0, 2**16),
)
def test_compiled_passes_match_the_numpy_curve_methods(problem, rho, noise, snap, seed):
    # The certificate's two compiled passes against the numpy methods they replace on the hot
    # path: CostCurves.slope_bounds / evaluate and waterfill.conjugate.
    curves, total = problem
    rng = np.random.default_rng(seed)
    x = solve(curves, total, Objective(rho=rho)).x.to_numpy() + noise * total * rng.standard_normal(curves.n_buckets)
    x = np.clip(x, 0.0, curves.capacity)
    slopes, widths = np.ascontiguousarray(curves.slopes), np.ascontiguousarray(curves.widths)
    left, right, cost, gross, steepest = kkt._bucket_bounds(slopes, widths, x, snap)
    expected_left, expected_right = curves.slope_bounds(x, atol=snap)
    assert np.array_equal(left, expected_left) and np.array_equal(right, expected_right)
    assert np.allclose(cost, curves.evaluate(x), rtol=1e-12, atol=1e-9)
    assert np.allclose(gross, curves.evaluate(x), rtol=1e-12, atol=1e-9)  # no negative slope here
    real = curves.widths > 0
    assert np.array_equal(steepest, np.where(real, np.abs(curves.slopes), 0.0).max(axis=1))
    # The interval's early-stopping pass: the same bounds, shifted by a gradient.
    gradient = rng.standard_normal(curves.n_buckets)
    lo, hi = kkt._interval(slopes, widths, x, snap, gradient)
    assert lo == (expected_left + gradient).max() and hi == (expected_right + gradient).min()
    price = rng.uniform(-0.5, 5.0, curves.n_buckets)
    expected = waterfill.conjugate(curves, price, rho).sum()
    assert kkt._conjugate_sum(slopes, widths, price, rho) == pytest.approx(expected, rel=1e-12, abs=1e-9)


def _false_pass_case(seed=0):
    """The issue's reproduction: 40 buckets of 5 sorted slopes in U(0.01, 0.05), width 200,
    every other bucket 1e6 times dearer, S = 2,000."""
    rng = np.random.default_rng(seed)
    slopes = np.sort(rng.uniform(0.01, 0.05, (40, 5)), axis=1)
    slopes[1::2] *= 1e6
    return CostCurves(slopes, 200.0), 2_000.0


def test_dear_unused_buckets_cannot_hide_a_bad_schedule():
    curves, total = _false_pass_case()
    best = solve(curves, total)
    assert best.kkt.ok and best.status == "optimal"
    used = best.x.to_numpy() > 0
    even = np.where(used, total / used.sum(), 0.0)
    blend = 0.5 * best.x.to_numpy() + 0.5 * even
    excess = Objective().value(curves, total, blend) / best.objective_value - 1
    assert excess > 0.01  # a real loss, several percent of the cost
    report = check_kkt(curves, total, Objective(), blend)
    assert not report.ok
    # The gap is rigorous and tight enough to show the loss: F(blend) - D >= F(blend) - F*.
    assert report.duality_gap >= excess * best.objective_value * (1 - 1e-9)
    assert report.relative_gap > 0.01 and report.stationarity > 0.01
    # The same cheap buckets alone reject it too (the verdict does not depend on scale).
    cheap = curves[np.arange(0, 40, 2)]
    assert not check_kkt(cheap, total, Objective(), blend[::2]).ok


@pytest.mark.parametrize("factor", [1e-6, 1.0, 1e6])
def test_the_verdict_is_scale_free(factor):
    # Prices in another currency unit: the same schedules pass and fail.
    curves, total = _false_pass_case(3)
    scaled = CostCurves(curves.slopes * factor, curves.widths)
    best = solve(scaled, total)
    assert best.kkt.ok
    x = best.x.to_numpy().copy()
    give, take = int(np.argmax(x)), int(np.argmin(np.where(x < 200.0, scaled.slopes[:, 0], np.inf) + (x > 0) * 1e300))
    x[give] -= 0.001 * total
    x[take] += 0.001 * total
    report = check_kkt(scaled, total, Objective(), x)
    assert not report.ok and report.relative_gap > 1e-6


def test_a_certified_inventory_schedule_prints_no_empty_interval():
    curves = tick_curves(np.random.default_rng(11), 60, 6)
    total = 0.4 * curves.capacity.sum()
    schedule = solve(curves, total, Objective(psi=1e-5))
    assert schedule.kkt.ok
    lo, hi = schedule.kkt.multiplier_interval
    assert lo <= hi and "none" not in str(schedule.kkt)


def test_an_overflowing_objective_fails_the_certificate():
    curves = CostCurves([[1e300, 1.5e300], [1e300, 1.7e300]], 1e10)
    report = check_kkt(curves, 1.5e10, Objective(), [1e10, 0.5e10])
    assert not np.isfinite(report.objective_value) or not np.isfinite(report.dual_value)
    assert not report.ok and report.max_violation == np.inf


def test_a_schedule_that_fails_its_certificate_is_not_optimal():
    curves = tick_curves(np.random.default_rng(2), 30, 4)
    total = 0.3 * curves.capacity.sum()
    loose = solve(
        curves,
        total,
        Objective(rho=1e-4),
        method="cvxpy",
        solver="OSQP",
        fallback=False,
        solver_options={"OSQP": {"eps_abs": 1e-2, "eps_rel": 1e-2, "max_iter": 1000, "polishing": False}},
    )
    assert not loose.kkt.ok and loose.status == "uncertified" and not loose.success
