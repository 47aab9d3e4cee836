"""The certificate inside the kernel (issue 23): ``certify_fused`` against ``certify``, its reference.

The same numbers (to rounding: the sums run in another order) and the same verdicts on random,
adversarial and degenerate curves, claimed levels and levels read off ``x``; ``certify`` with
its compiled passes swapped for numpy as the pure-numpy reference; and cvxpy's schedules.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import problems, tick_curves

from convexsched import CostCurves, Objective, solve
from convexsched.optimize import kkt
from convexsched.optimize.validate import share_unit_of, validate

OBJECTIVES = {
    "A": Objective(),
    "B": Objective(rho=1e-4),
    "C": Objective(psi=1e-6),
    "B+C": Objective(rho=1e-4, psi=1e-6, weights=("power", 1.5)),
}
NUMBERS = ("primal_residual", "bound_violation", "stationarity", "complementarity", "relative_gap", "max_violation")


def _kernel(order, x, multiplier, tol):
    """The kernel's own outcome (the fused path ran, or the reference decides)."""
    curves, objective = order.curves, order.objective
    weights = objective.weight_vector(curves.n_buckets) if objective.psi > 0 else np.zeros(0)
    slopes, widths = kkt._arrays(curves)
    scale_shares = max(share_unit_of(curves, order.total), 1.0)
    return kkt._fused_certificate(
        slopes,
        widths,
        np.ascontiguousarray(curves.breakpoints),
        np.ascontiguousarray(x, dtype=float),
        float(order.total),
        objective.rho,
        objective.psi,
        weights,
        order.sense == "le",
        np.nan if multiplier is None else float(multiplier),
        float(tol),
        scale_shares,
    )


def assert_same(fused, reference):
    """The same verdict and numbers to rounding (relative quantities 1e-12, currency 1e-12 of F)."""
    borderline = abs(reference.max_violation - reference.tol) <= 1e-6 * reference.tol
    assert borderline or fused.ok == reference.ok, (fused, reference)
    for name in NUMBERS:
        assert np.isclose(getattr(fused, name), getattr(reference, name), rtol=1e-9, atol=1e-12), name
    scale = max(abs(reference.objective_value), 1.0)
    for name in ("objective_value", "dual_value", "duality_gap"):
        assert np.isclose(getattr(fused, name), getattr(reference, name), rtol=1e-12, atol=1e-11 * scale), name
    assert np.isclose(fused.multiplier, reference.multiplier, rtol=1e-12, atol=0.0)
    assert np.allclose(fused.multiplier_interval, reference.multiplier_interval, rtol=1e-12, atol=0.0)


def check(curves, total, objective, x, *, sense="eq", multiplier=None, tol=1e-6):
    """Compare both paths; returns whether the kernel itself decided (no hand-over to certify)."""
    order = validate(curves, total, objective, sense)
    reference = kkt.certify(order, x, multiplier=multiplier, tol=tol)
    fused = kkt.certify_fused(order, x, multiplier=multiplier, tol=tol)
    assert_same(fused, reference)
    outcome, values = _kernel(order, x, multiplier, tol)
    if outcome == kkt._FUSED_OK:
        # The report from the kernel's numbers alone, not one the fallback computed.
        assert_same(kkt._fused_report(values, tol), reference)
    return outcome == kkt._FUSED_OK, reference


@given(
    problem=problems(max_n=30, max_k=8),
    name=st.sampled_from(list(OBJECTIVES)),
    sense=st.sampled_from(["eq", "le"]),
    noise=st.sampled_from([0.0, 1e-9, 1e-3, 0.05]),
    level=st.sampled_from(["fast", "none", "moved"]),
    seed=st.integers(0, 2**16),
)
def test_fused_matches_the_reference_on_random_curves(problem, name, sense, noise, level, seed):
    # Ties (tick slopes), zero widths, buckets without capacity, S = 0 and S = capacity come
    # from the strategy; the schedule is the optimum, or moved off it.
    curves, total = problem
    objective = OBJECTIVES[name]
    schedule = solve(curves, total, objective, sense=sense)
    rng = np.random.default_rng(seed)
    x = schedule.values + noise * max(total, 1.0) * rng.standard_normal(curves.n_buckets)
    if noise and seed % 2:
        x = np.clip(x, 0.0, curves.capacity)  # feasible bounds, budget off by a little
    multiplier = {"fast": schedule.multiplier, "none": None, "moved": schedule.multiplier * (1 + 1e-3) + 1e-4}[level]
    check(curves, total, objective, x, sense=sense, multiplier=multiplier)


@pytest.mark.parametrize("name", list(OBJECTIVES))
@pytest.mark.parametrize("sense", ["eq", "le"])
def test_the_kernel_decides_the_optimum_itself(name, sense):
    # On the exact paths' own answers with their claimed level the fused pass is the
    # certificate (no hand-over). Read off x, a unique level (B) can come out as an interval
    # empty by an ulp, which both paths hand to the water-filling.
    curves = tick_curves(np.random.default_rng(7), 40, 6, ties=True)
    total = 0.4 * curves.capacity.sum()
    schedule = solve(curves, total, OBJECTIVES[name], sense=sense)
    decided, reference = check(curves, total, OBJECTIVES[name], schedule.values, sense=sense, multiplier=schedule.multiplier)
    assert decided and reference.ok
    _, reference = check(curves, total, OBJECTIVES[name], schedule.values, sense=sense)
    assert reference.ok


def _mixed_scales(seed):
    """The false-pass reproduction of test_kkt: every other bucket 1e6 times dearer, S = 2,000."""
    rng = np.random.default_rng(seed)
    slopes = np.sort(rng.uniform(0.01, 0.05, (40, 5)), axis=1)
    slopes[1::2] *= 1e6
    return CostCurves(slopes, 200.0), 2_000.0


@pytest.mark.parametrize("name", ["A", "B", "C"])
@pytest.mark.parametrize("factor", [1e-6, 1.0, 1e6])
def test_mixed_price_scales_fail_in_both(name, factor):
    curves, total = _mixed_scales(0)
    curves = CostCurves(curves.slopes * factor, curves.widths)
    objective = {"A": Objective(), "B": Objective(rho=1e-6 * factor), "C": Objective(psi=1e-9 * factor)}[name]
    best = solve(curves, total, objective)
    used = best.values > 0
    blend = 0.5 * best.values + 0.5 * np.where(used, total / used.sum(), 0.0)
    for multiplier in (best.multiplier, None):
        _, good = check(curves, total, objective, best.values, multiplier=multiplier)
        _, bad = check(curves, total, objective, blend, multiplier=multiplier)
        assert good.ok and not bad.ok


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_degenerate_budgets(name):
    objective = OBJECTIVES[name]
    curves = tick_curves(np.random.default_rng(3), 12, 4, zero_capacity=0.3)
    capacity = float(curves.capacity.sum())
    for total, sense in ((0.0, "eq"), (capacity, "eq"), (2 * capacity, "le"), (0.0, "le")):
        schedule = solve(curves, total, objective, sense=sense)
        _, reference = check(curves, total, objective, schedule.values, sense=sense, multiplier=schedule.multiplier)
        assert reference.ok
    # Every segment tied, one bucket without capacity, a rebate (negative slope) under "<=".
    tied = CostCurves(np.full((5, 3), 0.02), [[100.0] * 3] * 4 + [[0.0] * 3])
    schedule = solve(tied, 700.0, objective)
    check(tied, 700.0, objective, schedule.values, multiplier=schedule.multiplier)
    rebate = CostCurves([[-0.01, 0.02], [-0.005, 0.01]], 100.0, allow_negative=True)
    for total in (50.0, 150.0, 1000.0):
        schedule = solve(rebate, total, objective, sense="le")
        _, reference = check(rebate, total, objective, schedule.values, sense="le", multiplier=schedule.multiplier)
        assert reference.ok
        check(rebate, total, objective, schedule.values + 30.0, sense="le", multiplier=schedule.multiplier)


def test_bad_schedules_get_the_reference_errors():
    curves = CostCurves([[0.01]], 100.0)
    order = validate(curves, 50.0, Objective(), "eq")
    for x, message in (([1.0, 2.0], "shape"), ([np.nan], "NaN")):
        with pytest.raises(kkt.InvalidInputError, match=message):
            kkt.certify_fused(order, x)


def _numpy_bucket_bounds(slopes, widths, x, snap):
    starts = np.cumsum(widths, axis=1) - widths
    real = widths > 0
    left = np.where(real & (starts < x[:, None] - snap), slopes, -np.inf).max(axis=1)
    right = np.where(real & (starts + widths > x[:, None] + snap), slopes, np.inf).min(axis=1)
    fill = np.where(real, np.clip(x[:, None] - starts, 0.0, widths), 0.0)
    steepest = np.where(real, np.abs(slopes), 0.0).max(axis=1)
    return left, right, (slopes * fill).sum(axis=1), (np.abs(slopes) * fill).sum(axis=1), steepest


def _numpy_conjugate_sum(slopes, widths, price, rho):
    starts = np.cumsum(widths, axis=1) - widths
    price = price[:, None]
    if rho > 0:
        taken = np.clip((price - slopes) / rho - starts, 0.0, widths)
    else:
        taken = np.where(slopes < price, widths, 0.0)
    bought = taken.sum(axis=1)
    return float((price[:, 0] * bought - (slopes * taken).sum(axis=1) - 0.5 * rho * bought**2).sum())


@given(
    problem=problems(max_n=20, max_k=6),
    name=st.sampled_from(list(OBJECTIVES)),
    noise=st.sampled_from([0.0, 1e-3]),
    seed=st.integers(0, 2**16),
)
def test_fused_matches_a_pure_numpy_certificate(problem, name, noise, seed):
    # The reference with its two compiled passes replaced by numpy: no compiled code on that side.
    curves, total = problem
    schedule = solve(curves, total, OBJECTIVES[name])
    x = np.clip(
        schedule.values + noise * total * np.random.default_rng(seed).standard_normal(curves.n_buckets), 0.0, curves.capacity
    )
    order = validate(curves, total, OBJECTIVES[name], "eq")
    outcome, values = _kernel(order, x, schedule.multiplier, 1e-6)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kkt, "_bucket_bounds", _numpy_bucket_bounds)
        patch.setattr(kkt, "_conjugate_sum", _numpy_conjugate_sum)
        reference = kkt.certify(order, x, multiplier=schedule.multiplier)
    # The optimum with its own level is decided in the kernel; a moved schedule may be handed
    # over (the reference then decides, with the numbers above).
    assert outcome == kkt._FUSED_OK or noise > 0
    if outcome == kkt._FUSED_OK:
        assert_same(kkt._fused_report(values, 1e-6), reference)


@pytest.mark.parametrize("name", ["A", "B", "C"])
def test_cvxpy_schedules_get_the_same_certificate(name):
    curves = tick_curves(np.random.default_rng(21), 25, 5)
    total = 0.3 * curves.capacity.sum()
    objective = OBJECTIVES[name]
    clarabel = solve(curves, total, objective, method="cvxpy", solver="CLARABEL", fallback=False)
    fast = solve(curves, total, objective)
    _, reference = check(curves, total, objective, clarabel.values, tol=1e-5)
    assert reference.ok and fast.kkt.ok
    assert fast.objective_value == pytest.approx(clarabel.objective_value, rel=1e-6)


def test_solve_reports_the_fused_certificate(monkeypatch):
    # The fast paths' reports are the kernel's: with certify unavailable, they still certify.
    curves = tick_curves(np.random.default_rng(4), 30, 5)
    total = 0.3 * curves.capacity.sum()
    expected = {name: solve(curves, total, objective).kkt for name, objective in OBJECTIVES.items()}

    def unavailable(*args, **kwargs):
        raise AssertionError("the reference certificate ran on the hot path")

    monkeypatch.setattr(kkt, "certify", unavailable)
    for name, objective in OBJECTIVES.items():
        schedule = solve(curves, total, objective)
        assert schedule.status == "optimal"
        assert_same(schedule.kkt, expected[name])


@pytest.mark.parametrize("worst", [0.0, 2e-7, 3e-6, np.inf])
def test_the_fused_report_is_the_dataclass_built_normally(worst):
    # _fused_report fills the frozen KKTReport's fields in one dict update: the same object as
    # the dataclass's own constructor (fields, order, equality, hash, immutability).
    numbers = np.array([1e-9, 0.0, worst, 0.0, 12.5, 12.5 - 1e-7, 0.3, 0.29, 0.31, 12.5, 1e-7])
    report = kkt._fused_report(numbers, 1e-6)
    again = kkt.KKTReport(**report.__dict__)
    assert list(report.__dict__) == list(kkt.KKTReport.__dataclass_fields__)
    assert report == again and hash(report) == hash(again) and str(report) == str(again)
    assert report.ok == (worst <= 1e-6)
    with pytest.raises(AttributeError):
        report.ok = True  # type: ignore[misc]


@pytest.mark.parametrize("position", [0, 1, 2, 3, 10])
def test_a_nan_residual_anywhere_fails_the_report(position):
    # Python's max keeps a NaN only when it comes first: each residual in turn is NaN (the gap,
    # position 10, makes the relative gap NaN), and the report must fail with an infinite
    # violation wherever it sits.
    numbers = np.array([1e-9, 0.0, 2e-7, 0.0, 12.5, 12.5 - 1e-7, 0.3, 0.29, 0.31, 12.5, 1e-7])
    numbers[position] = np.nan
    report = kkt._fused_report(numbers, 1e-6)
    assert not report.ok and report.max_violation == np.inf
