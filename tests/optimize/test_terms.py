"""Objective terms as objects: algebra, each term against cvxpy (two solvers) and the certificate."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import problems, tick_curves
from toy_terms import Wiggle

import convexsched as cs
from convexsched import InvalidInputError, Objective, check_kkt, solve
from convexsched.io import certificate_record
from convexsched.optimize.terms.transient_impact import kernel_matvec, kernel_matvec_reference
from convexsched.optimize.validate import share_unit_of


def test_the_named_constructors_are_the_sums():
    assert Objective.cost_only() == Objective() == sum([], Objective())
    assert Objective.smoothed(2e-4) == Objective() + cs.Smoothing(2e-4) == cs.Smoothing(1e-4) * 2 + Objective()
    assert Objective.inventory_risk(1e-6, ("power", 1.5)) == Objective() + cs.InventoryRisk(1e-6, ("power", 1.5))
    assert Objective(rho=1e-4, psi=1e-6) == cs.Smoothing(1e-4) + cs.InventoryRisk(1e-6)
    ac = Objective.almgren_chriss(eta_tilde=0.1, tau=2.0, risk_aversion=1e-6, sigma=0.02)
    assert ac == cs.Smoothing(0.1) + cs.InventoryRisk(2 * 1e-6 * 0.02**2 * 2.0, "constant")
    mixed = Objective.smoothed(1e-4) + cs.TransientImpact(half_life=3, strength=1e-5)
    assert mixed.kind == "B+TransientImpact" and not mixed.separable
    assert (cs.Drift(0.01) + cs.Turnover(1e-3)).terms == (cs.Drift(0.01), cs.Turnover(1e-3))
    with pytest.raises(InvalidInputError, match="Term"):
        solve(cs.CostCurves([[0.01]], 10.0), 5.0, "rho")
    with pytest.raises(InvalidInputError, match="half_life"):
        cs.TransientImpact(half_life=0, strength=1.0)


def test_f_is_computed_in_one_place_from_the_terms():
    curves = tick_curves(np.random.default_rng(1), 12, 3)
    total = 0.4 * curves.capacity.sum()
    x = np.full(12, total / 12)
    terms = [
        cs.Smoothing(1e-4),
        cs.InventoryRisk(1e-6).bind(total, 12),
        cs.Drift(np.linspace(0, 0.01, 12)),
        cs.TransientImpact(2.0, 1e-5),
        Wiggle(1e-4),
    ]
    objective = sum(terms[:1] + [cs.InventoryRisk(1e-6)] + terms[2:], Objective())
    expected = curves.evaluate(x).sum() + sum(term.value(x) for term in terms)
    assert objective.value(curves, total, x) == pytest.approx(expected, rel=1e-13)
    assert check_kkt(curves, total, objective, x).objective_value == pytest.approx(expected, rel=1e-13)


@given(n=st.integers(1, 200), h=st.floats(0.3, 50.0), seed=st.integers(0, 2**16))
def test_the_recursive_filter_is_the_dense_kernel(n, h, seed):
    x = np.random.default_rng(seed).uniform(-1, 1, n)
    term = cs.TransientImpact(half_life=h, strength=2.0)
    a = term.decay
    np.testing.assert_allclose(kernel_matvec(x, a), kernel_matvec_reference(x, a), rtol=1e-10, atol=1e-12)
    dense = term.strength * 0.5 * x @ kernel_matvec_reference(x, a)
    assert term.value(x) == pytest.approx(dense, rel=1e-10, abs=1e-12)
    factor = term.factor(n)
    assert np.sum((factor @ x) ** 2) * term.strength / 2 == pytest.approx(dense, rel=1e-9, abs=1e-12)
    # The curvature and Lipschitz hints bracket the kernel's spectrum.
    eigenvalues = np.linalg.eigvalsh(a ** np.abs(np.subtract.outer(np.arange(n), np.arange(n))))
    assert term.curvature <= term.strength * eigenvalues.min() * (1 + 1e-9)
    assert term.lipschitz(n) >= term.strength * eigenvalues.max() * (1 - 1e-9)


def test_history_is_the_residual_impact_of_earlier_slices():
    term = cs.TransientImpact(half_life=4.0, strength=1e-4)
    day = np.random.default_rng(0).uniform(0, 100, 10)
    later = term.after(day[:4])
    window = day[4:]
    # F(day) = F(first 4) + F(window with history): the cross terms are the linear residual.
    assert term.value(day) == pytest.approx(term.value(day[:4]) + later.value(window), rel=1e-12)
    np.testing.assert_allclose(later.gradient(window), term.gradient(day)[4:], rtol=1e-12)


def _terms(n, total):
    return {
        "transient": cs.TransientImpact(half_life=3.0, strength=2e-4),
        "transient+B": cs.TransientImpact(half_life=1.5, strength=1e-4) + cs.Smoothing(1e-4),
        "transient+C": cs.TransientImpact(half_life=6.0, strength=1e-4) + cs.InventoryRisk(1e-6 / max(total, 1.0)),
        "drift": cs.Drift(np.linspace(-0.01, 0.02, n)),
        "track": cs.TrackProfile(np.linspace(1.0, 2.0, n), 1e-4),
        "wiggle": Objective(rho=1e-5) + Wiggle(1e-4),
    }


@pytest.mark.parametrize("name", ["transient", "transient+B", "transient+C", "drift", "track", "wiggle"])
@settings(max_examples=8, deadline=None)
@given(problem=problems(max_n=25, max_k=5), sense=st.sampled_from(["eq", "le"]))
def test_every_term_matches_two_solvers_and_certifies(name, problem, sense):
    curves, total = problem
    objective = cs.optimize.validate.as_objective(_terms(curves.n_buckets, total)[name])
    fast = solve(curves, total, objective, sense=sense)
    assert fast.status == "optimal" and fast.kkt.ok, fast.kkt
    # Solvers are accurate relative to the share unit (S, or the largest bucket when S = 0).
    scale = max(abs(fast.objective_value), float(np.abs(curves.slopes).max()) * share_unit_of(curves, total))
    # Clarabel, then another solver: HiGHS for the LP, else SCS (ECOS where SCS stops inaccurate).
    second = ["HIGHS"] if name == "drift" else ["SCS", "ECOS"]
    for solver, formulation in ((["CLARABEL"], "segment"), (second, "epigraph")):
        reference = solve(
            curves, total, objective, sense=sense, method="cvxpy", solver=solver, fallback=False, formulation=formulation
        )
        assert reference.solver in solver
        assert reference.kkt.relative_gap <= 1e-5
        assert fast.objective_value <= reference.objective_value + 1e-7 * scale
        assert reference.objective_value - fast.objective_value <= 2e-5 * scale
    # The certificate's bound is below the optimum, and a 2% move of the order fails it.
    assert fast.kkt.dual_value <= fast.objective_value + 1e-9 * scale
    x = fast.x.to_numpy().copy()
    give = int(np.argmax(x))
    room = np.where(np.arange(len(x)) == give, -1.0, curves.capacity - x)
    if total > 0 and sense == "eq" and x[give] > 0.02 * total and room.max() > 0.02 * total:
        take = int(np.argmax(room))
        x[give] -= 0.02 * total
        x[take] += 0.02 * total
        bad = check_kkt(curves, total, objective, x, sense=sense)
        assert bad.duality_gap >= Objective.value(objective, curves, total, x) - fast.objective_value - 1e-9 * scale
        if bad.duality_gap > 1e-5 * abs(bad.objective_value):
            assert not bad.ok


@settings(max_examples=6, deadline=None)
@given(problem=problems(max_n=20, max_k=4))
def test_turnover_goes_to_cvxpy_and_its_bound_holds(problem):
    curves, total = problem
    objective = Objective() + cs.Turnover(0.3 * float(np.median(curves.slopes)))
    schedule = solve(curves, total, objective)
    assert schedule.method == "cvxpy"
    other = solve(curves, total, objective, method="cvxpy", solver="SCS", fallback=False, formulation="epigraph")
    scale = max(abs(schedule.objective_value), float(np.abs(curves.slopes).max()) * share_unit_of(curves, total))
    assert abs(schedule.objective_value - other.objective_value) <= 1e-6 * scale
    # A subgradient bound is rigorous even where it is loose: never above the optimum.
    assert schedule.kkt.dual_value <= min(schedule.objective_value, other.objective_value) + 1e-6 * scale
    assert schedule.status in ("optimal", "uncertified") and (schedule.status == "optimal") == schedule.kkt.ok


def test_a_user_term_reaches_solve_check_kkt_the_problem_and_the_record():
    curves = tick_curves(np.random.default_rng(3), 20, 4)
    total = 0.4 * curves.capacity.sum()
    objective = Objective(rho=1e-5) + Wiggle(1e-4)
    before = Wiggle.calls
    fast = solve(curves, total, objective)
    assert Wiggle.calls > before and fast.kkt.ok and "proximal" in fast.algorithm
    reference = solve(curves, total, objective, method="cvxpy")
    assert reference.objective_value == pytest.approx(fast.objective_value, rel=1e-6)
    assert check_kkt(curves, total, objective, reference.x, tol=1e-5).ok
    without = solve(curves, total, Objective(rho=1e-5))
    assert np.abs(np.diff(fast.x)).sum() < np.abs(np.diff(without.x)).sum()  # the term does its work
    record = certificate_record(fast.kkt, total, objective)
    assert "Wiggle" in record["objective_kind"] and json.dumps(record)


def test_a_plain_cvxpy_problem_is_a_clear_error_and_extended_problems_are_honest():
    import cvxpy as cp

    curves = tick_curves(np.random.default_rng(4), 15, 3)
    total = 0.5 * curves.capacity.sum()
    plain = cp.Problem(cp.Minimize(cp.sum(cp.Variable(15))))
    with pytest.raises(InvalidInputError, match="ScheduleProblem"):
        solve(curves, total, problem=plain)
    problem = cs.build_problem(curves, total)
    extended = problem.with_terms([1e-4 * cp.sum_squares(cp.diff(problem.x))])
    schedule = solve(curves, total, problem=extended)  # a problem goes to cvxpy
    assert schedule.method == "cvxpy" and schedule.status == "solver-optimal" and not schedule.success
    assert schedule.kkt.duality_gap > 0


def test_the_proximal_gradient_stops_on_the_certificate_or_on_the_gap():
    from convexsched.optimize.proximal import accelerated
    from convexsched.optimize.validate import validate

    curves = tick_curves(np.random.default_rng(8), 60, 6)
    total = 0.4 * curves.capacity.sum()
    order = validate(curves, total, cs.TransientImpact(half_life=8.0, strength=5e-5))
    certified = accelerated(order)
    early = accelerated(order, stop="gap")
    assert certified.report.ok and early.report.relative_gap <= 1e-6
    assert early.iterations <= certified.iterations
    assert early.report.objective_value >= certified.report.objective_value - 1e-9 * certified.report.objective_value


@given(n=st.integers(1, 120), h=st.floats(0.3, 40.0), seed=st.integers(0, 2**16))
def test_the_restricted_kernel_solve_is_the_dense_inverse(n, h, seed):
    from convexsched.optimize.terms.transient_impact import subkernel_solve, subkernel_solve_reference

    rng = np.random.default_rng(seed)
    free = np.sort(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False)).astype(np.int64)
    r = rng.normal(size=len(free))
    a = 2.0 ** (-1.0 / h)
    reference = subkernel_solve_reference(r, free, a)
    assert np.allclose(subkernel_solve(r, free, a), reference, rtol=1e-8, atol=1e-8 * np.abs(reference).max())


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 80), seed=st.integers(0, 2**16), factor=st.floats(0.1, 10.0))
def test_the_affine_gradient_is_the_terms_own_gradient(n, seed, factor):
    from convexsched.optimize.terms.affine import Affine, affine_gradient

    rng = np.random.default_rng(seed)
    total = float(rng.uniform(1.0, 1e4))
    x = rng.uniform(0.0, 2.0 * total / n, n)
    terms = [
        cs.Smoothing(rng.uniform(0, 1)),
        cs.InventoryRisk(rng.uniform(0, 1e-2), "linear"),
        cs.Drift(rng.normal(size=n)),
        cs.TrackProfile(rng.uniform(0.1, 1.0, n), rng.uniform(0, 1)),
        cs.TransientImpact(half_life=rng.uniform(0.5, 20), strength=rng.uniform(0, 1), history=(1.0, 3.0)),
        factor * cs.TransientImpact(half_life=rng.uniform(0.5, 20), strength=rng.uniform(0, 1)),
        factor * cs.InventoryRisk(rng.uniform(0, 1e-2), "constant"),
    ]
    bound = [term.bind(total, n) for term in terms]
    combined = sum((term.affine(n) for term in bound), Affine.zero(n))
    reference = sum(np.asarray(term.gradient(x)) for term in bound)
    assert np.allclose(
        affine_gradient(x, *combined.arrays()), reference, rtol=1e-10, atol=1e-12 * np.abs(reference).max(initial=1.0)
    )
    assert cs.Turnover(1.0).affine(n) is None and Wiggle(1.0).affine(n) is None


class Opaque(cs.Term):
    """A term the dispatcher cannot see into (no ``affine``): the proximal loop runs in Python."""

    def __init__(self, term):
        self.term, self.curvature = term, term.curvature

    def value(self, x):
        return self.term.value(x)

    def gradient(self, x):
        return self.term.gradient(x)

    def expression(self, x):
        return self.term.expression(x)

    def lipschitz(self, n):
        return self.term.lipschitz(n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_compiled_loop_and_the_python_loop_reach_the_same_optimum(seed):
    curves = tick_curves(np.random.default_rng(seed), 70, 6)
    total = 0.35 * curves.capacity.sum()
    level = float(np.median(curves.slopes)) / (total / 70)
    transient = cs.TransientImpact(half_life=3.0 + seed, strength=level)
    compiled = solve(curves, total, Objective(rho=0.1 * level) + transient + cs.Drift(0.01 * level * total / 70))
    python = solve(curves, total, Objective(rho=0.1 * level) + Opaque(transient) + cs.Drift(0.01 * level * total / 70))
    assert compiled.kkt.ok and python.kkt.ok
    assert compiled.objective_value == pytest.approx(python.objective_value, rel=1e-6)
    assert np.abs(compiled.x.to_numpy() - python.x.to_numpy()).max() <= 1e-3 * total / 70


def test_the_active_set_step_certifies_from_a_rough_iterate():
    from convexsched.optimize.kkt import certify
    from convexsched.optimize.proximal import ActiveSetPolish, accelerated
    from convexsched.optimize.validate import validate

    curves = tick_curves(np.random.default_rng(3), 80, 6)
    total = 0.4 * curves.capacity.sum()
    objective = Objective() + cs.TransientImpact(half_life=4.0, strength=float(np.median(curves.slopes)) / (total / 80))
    order = validate(curves, total, objective)
    rough = accelerated(order, tol=1e-4, stop="gap")
    before = certify(order, rough.x)
    assert not before.ok  # the iterate alone is not certified at 1e-6 ...
    x, level = ActiveSetPolish(order, objective.bound(total, 80))(rough.x)
    after = certify(order, x, multiplier=level)
    assert after.ok  # ... the active-set step from it is
    assert after.objective_value == pytest.approx(accelerated(order).report.objective_value, rel=1e-9)
