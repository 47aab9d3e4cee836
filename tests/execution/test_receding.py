"""RecedingHorizon: budget, terminal enforcement, the deferral trap, agreement with static plans."""

import numpy as np
import pytest

from convexsched import (
    BookExecutor,
    CostCurves,
    HalfSpreadImpact,
    ImpactOracle,
    InfeasibleError,
    InvalidInputError,
    LiveCurves,
    Objective,
    RecedingHorizon,
    StateForecast,
    backtest,
    bucket_features,
    impact_table,
    solve,
    synthetic_book,
)
from convexsched.execution.strategies import TWAP, RecedingStrategy
from convexsched.optimize.validate import validate


def curves_for(n, k=6, seed=0):
    """Distinct slopes (no ties, so optimal schedules are unique) and a U-shaped liquidity."""
    rng = np.random.default_rng(seed)
    slopes = np.sort(rng.uniform(0.01, 1.0, size=(n, k)), axis=1)
    depth = 1000 * (1.5 + np.cos(np.linspace(0, 2 * np.pi, n)))
    return CostCurves(slopes, np.repeat(depth[:, None] / k, k, axis=1))


OBJECTIVES = {"A": Objective(), "B": Objective(rho=2e-4), "C": Objective(psi=1e-7)}


@pytest.mark.parametrize("kind", ["A", "B", "C"])
@pytest.mark.parametrize("horizon", [5, 30, "all"])
@pytest.mark.parametrize("cost_to_go", ["exact", "lambda", None])
def test_budget_is_met_exactly(kind, horizon, cost_to_go):
    curves = curves_for(40)
    total = 0.3 * curves.capacity.sum()
    record = RecedingHorizon(horizon, OBJECTIVES[kind], cost_to_go=cost_to_go).simulate(curves, total)
    assert record.x.sum() == pytest.approx(total, rel=1e-12)
    assert (record.x >= 0).all()
    assert record.steps["kkt_ok"].all()


@pytest.mark.parametrize("kind", ["A", "B", "C"])
@pytest.mark.parametrize("horizon", [40, 100, "all"])
def test_full_horizon_with_static_state_reproduces_static_plan(kind, horizon):
    curves = curves_for(40)
    total = 0.4 * curves.capacity.sum()
    static = solve(curves, total, OBJECTIVES[kind])
    record = RecedingHorizon(horizon, OBJECTIVES[kind]).simulate(curves, total)
    np.testing.assert_allclose(record.x.to_numpy(), np.asarray(static.x), atol=1e-6 * total)


@pytest.mark.parametrize("kind", ["A", "B"])
@pytest.mark.parametrize("horizon", [8, "all"])
def test_fast_and_cvxpy_paths_agree(kind, horizon):
    curves = curves_for(20, k=4, seed=3)
    total = 0.35 * curves.capacity.sum()
    fast = RecedingHorizon(horizon, OBJECTIVES[kind], tail_segments=16).simulate(curves, total)
    slow = RecedingHorizon(horizon, OBJECTIVES[kind], method="cvxpy", tail_segments=16).simulate(curves, total)
    assert slow.steps["kkt_ok"].all()
    np.testing.assert_allclose(slow.steps["plan_value"], fast.steps["plan_value"], rtol=1e-5, atol=1e-6 * total)
    assert slow.cost == pytest.approx(fast.cost, rel=1e-4)


def test_terminal_bucket_takes_remainder_within_capacity():
    curves = curves_for(60)
    total = 0.8 * curves.capacity.sum()
    record = RecedingHorizon(10).simulate(curves, total)
    x = record.x.to_numpy()
    assert x[-1] == pytest.approx(total - x[:-1].sum(), abs=1e-9 * total)
    assert (x <= curves.capacity * (1 + 1e-9)).all()
    assert not record.steps["over_capacity"].any()
    assert not record.beyond_depth.any()


def test_cost_only_window_does_not_defer_to_the_end():
    curves = curves_for(120)
    total = 0.2 * curves.capacity.sum()
    record = RecedingHorizon(10, Objective.cost_only()).simulate(curves, total)
    x = record.x.to_numpy()
    assert x[-1] < 0.05 * total
    assert x[:60].sum() > 0.25 * total


def test_literal_window_defers_everything_to_the_last_bucket():
    """The trap of problem (9) as written: the check above would fail on this variant."""
    curves = curves_for(120)
    total = 0.2 * curves.capacity.sum()
    record = RecedingHorizon(10, Objective.cost_only(), cost_to_go=None).simulate(curves, total)
    assert record.x.iloc[-1] == pytest.approx(total)
    assert record.steps["over_capacity"].iloc[-1]
    assert record.beyond_depth.iloc[-1]


@pytest.mark.parametrize("total", [0.0, -5.0, float("nan")])
def test_nonpositive_order_is_rejected(total):
    with pytest.raises(InvalidInputError, match="S must be"):
        RecedingHorizon(5).simulate(curves_for(10), total)


@pytest.mark.parametrize("kind", ["A", "C"])
@pytest.mark.parametrize("method", ["fast", "cvxpy"])
def test_one_order_meets_one_validation_in_a_run(monkeypatch, kind, method):
    # Every module that imported the checks gets a counting copy: the run's S must be checked
    # once, not by each step's solve and certificate again.
    import sys

    from convexsched.optimize import validate as validate_module

    calls = []
    for name in ("validate", "check_total"):
        original = getattr(validate_module, name)

        def counting(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        for module in list(sys.modules.values()):
            if module is validate_module and name == "check_total":
                continue  # validate's own first step
            if (getattr(module, "__name__", "") or "").startswith("convexsched") and getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, counting)
    record = RecedingHorizon(8, OBJECTIVES[kind], method=method, tail_segments=8).simulate(curves_for(20), 5_000.0)
    assert record.steps["kkt_ok"].all()
    assert calls == ["validate"]


def test_order_above_capacity_names_the_maximum():
    curves = curves_for(10)
    maximum = curves.capacity.sum()
    with pytest.raises(InfeasibleError, match=f"maximum executable is {maximum:.6g}") as error:
        RecedingHorizon(5).simulate(curves, 1.01 * maximum)
    assert error.value.max_executable == pytest.approx(maximum)


@pytest.mark.parametrize(
    "settings", [{"horizon": 0}, {"horizon": "some"}, {"method": "bisection"}, {"cost_to_go": "maybe"}, {"tail_segments": 1}]
)
def test_bad_settings_are_rejected(settings):
    with pytest.raises(InvalidInputError):
        RecedingHorizon(**settings)


def test_with_a_model_from_other_days_the_receding_horizon_beats_twap():
    """Oracle fitted on one synthetic day, state profile from a second, executed on a third."""
    train, profile_day, test_day = synthetic_book(10), synthetic_book(11), synthetic_book(12)
    table = impact_table(train, [100, 500, 1000, 2000, 5000, 10000]).dropna(subset=["volatility"])
    table = table[~table["beyond_depth"]]
    oracle = ImpactOracle(max_iter=100, learning_rate=0.1, random_state=0).fit(table, table["slippage"])
    forecast = StateForecast(freq="5min").fit(bucket_features(profile_day, freq="5min").dropna())
    executor = BookExecutor(test_day, freq="5min")
    live = LiveCurves(executor, oracle, forecast, relative=True, grid=17)
    for total in (20_000, 100_000):
        result = backtest(
            executor,
            total,
            [
                TWAP(),
                RecedingStrategy("A", horizon=12),
                RecedingStrategy("A", name="RH A priced by the model", horizon=12, current="model"),
            ],
            model=live,
        )
        assert result.loc["RH A H=12 (fast)", "vs_twap_bps"] < 0
        assert result.loc["RH A H=12 (fast)", "capture"] > result.loc["RH A priced by the model", "capture"]


def test_every_kind_of_model_is_a_curve_source():
    from convexsched.execution.receding import CurveSource, curve_source

    book = synthetic_book(seed=3)
    executor = BookExecutor(book, freq="30min")
    n = len(executor)
    fixed = curve_source(curves_for(n), executor)
    assert isinstance(fixed, CurveSource) and fixed.static().n_buckets == n
    assert list(fixed.index) == list(executor.index)  # fixed curves take the book's buckets
    table = impact_table(book, [100, 1000]).dropna(subset=["volatility"])
    live = LiveCurves(executor, HalfSpreadImpact().fit(table, table["slippage"]))
    assert isinstance(live, CurveSource) and curve_source(live, executor) is live
    with pytest.raises(InvalidInputError, match="the model must be an impact oracle .* got str"):
        curve_source("oracle", executor)


def test_the_oracle_keyword_of_0_2_still_works_with_a_warning():
    book = synthetic_book(seed=3)
    curves = curves_for(len(BookExecutor(book, freq="30min")))
    with pytest.warns(FutureWarning, match=r"RecedingHorizon.run\(oracle=...\) is deprecated; use model="):
        old = RecedingHorizon(4).run(book, 2_000.0, oracle=curves, freq="30min")
    new = RecedingHorizon(4).run(book, 2_000.0, curves, freq="30min")
    assert np.array_equal(old.x, new.x)
    with pytest.warns(FutureWarning, match=r"backtest\(oracle=...\)"):
        table = backtest(book, 2_000.0, [TWAP()], oracle=curves, freq="30min", hindsight=False)
    assert list(table.index) == ["TWAP"]
    with pytest.raises(InvalidInputError, match="needs a cost model"):
        RecedingHorizon(4).run(book, 2_000.0, freq="30min")


@pytest.mark.parametrize("method", ["fast", "cvxpy"])
def test_a_planner_keeps_no_run_state_and_runs_any_number_of_days(method):
    # Two days of different lengths and weights through one planner, in either order: the run's
    # state (weights, multiplier, warm problem) lives in the run, not on the planner.
    planner = RecedingHorizon(6, Objective(psi=1e-7), method=method, cost_to_go="lambda")
    settings = dict(vars(planner))
    short, long = curves_for(12, k=3, seed=1), curves_for(20, k=3, seed=2)
    first = planner.simulate(short, 0.3 * short.capacity.sum())
    planner.simulate(long, 0.3 * long.capacity.sum())
    again = planner.simulate(short, 0.3 * short.capacity.sum())
    assert vars(planner) == settings
    np.testing.assert_array_equal(first.x.to_numpy(), again.x.to_numpy())
    fresh = RecedingHorizon(6, Objective(psi=1e-7), method=method, cost_to_go="lambda").simulate(
        short, 0.3 * short.capacity.sum()
    )
    np.testing.assert_array_equal(fresh.x.to_numpy(), again.x.to_numpy())


def _count_curve_checks(monkeypatch):
    """Every CostCurves built from arrays: its rows and whether the compiled canonical pass stored it."""
    from convexsched.optimize import curves as curves_module

    built, verdicts = [], []
    store, init = curves_module._store_canonical, CostCurves.__init__

    def counting_store(*args):
        stored = store(*args)  # (canonical?, the stored arrays...)
        verdicts.append(bool(stored[0]))
        return stored

    def counting_init(self, slopes, *args, **kwargs):
        built.append(np.shape(slopes)[0])
        init(self, slopes, *args, **kwargs)

    monkeypatch.setattr(curves_module, "_store_canonical", counting_store)
    monkeypatch.setattr(CostCurves, "__init__", counting_init)
    return built, verdicts


@pytest.mark.parametrize("kind", ["A", "B", "C"])
@pytest.mark.parametrize("cost_to_go", ["exact", "lambda", None])
def test_a_run_checks_its_curves_once_and_builds_one_window_a_step(monkeypatch, kind, cost_to_go):
    # The curves are checked when the run starts (validate); a step builds its window once, from
    # rows canonical by construction, so the constructor stores it in its compiled pass and never
    # re-checks or re-canonicalizes the day's rows (the general path).
    import convexsched.execution.receding as receding_module

    curves = curves_for(30)
    calls = []
    monkeypatch.setattr(receding_module, "validate", lambda *a, **k: calls.append(1) or validate(*a, **k))
    built, verdicts = _count_curve_checks(monkeypatch)
    record = RecedingHorizon(6, OBJECTIVES[kind], cost_to_go=cost_to_go).simulate(curves, 0.3 * curves.capacity.sum())
    planned = len(record.plans)
    assert calls == [1]
    assert planned > 20 and len(built) == planned  # one window per planned step, nothing else
    assert all(verdicts)


def test_on_a_book_a_step_checks_only_the_walk_it_has_not_seen(monkeypatch):
    # With the visible book pricing the current bucket, a step also stores that walk (one row,
    # new data) in canonical form; the model's rows are never checked again.
    book = synthetic_book(seed=3)
    executor = BookExecutor(book, freq="10min")
    curves = curves_for(len(executor))
    built, verdicts = _count_curve_checks(monkeypatch)
    record = RecedingHorizon(6, Objective(rho=2e-4)).run(executor, 20_000.0, curves)
    walks = [rows for rows in built if rows == 1]
    windows = [rows for rows in built if rows > 1]
    assert len(windows) == len(record.plans) and len(walks) <= len(executor)
    assert sum(verdicts[i] for i, rows in enumerate(built) if rows > 1) == len(windows)


@pytest.mark.parametrize("kind", ["A", "B", "C"])
def test_one_planner_runs_days_on_books_with_the_same_answers(kind):
    # A planner reused across live runs (another book between them, shared live curves) answers
    # exactly as a fresh one: nothing of a run stays on the planner or in its windows.
    table = impact_table(synthetic_book(4), [100, 1000, 5000]).dropna(subset=["volatility"])
    oracle = HalfSpreadImpact().fit(table, table["slippage"])
    first, other = BookExecutor(synthetic_book(3), freq="10min"), BookExecutor(synthetic_book(5), freq="10min")
    live = LiveCurves(first, oracle)
    planner = RecedingHorizon(6, OBJECTIVES[kind])
    settings = dict(vars(planner))
    before = planner.run(first, 20_000.0, live)
    planner.run(other, 20_000.0, LiveCurves(other, oracle))
    after = planner.run(first, 20_000.0, live)
    fresh = RecedingHorizon(6, OBJECTIVES[kind]).run(first, 20_000.0, LiveCurves(first, oracle))
    assert vars(planner) == settings
    for record in (after, fresh):
        np.testing.assert_array_equal(record.x.to_numpy(), before.x.to_numpy())
        np.testing.assert_array_equal(record.steps["lambda"].to_numpy(), before.steps["lambda"].to_numpy())
        assert record.cost == before.cost
