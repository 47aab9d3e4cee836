"""A user's term, defined in the tests (``toy_terms``), reaches the scenario and receding loops and the backtest whole."""

import numpy as np
import pytest
from toy_terms import Wiggle

import convexsched as cs
from convexsched import BookExecutor, LiveCurves, Objective, ScenarioHorizon, SquareRootImpact, backtest
from convexsched.execution.strategies import RecedingStrategy, ScenarioStrategy

FREQ = "10min"


@pytest.fixture(scope="module")
def book():
    return cs.synthetic_book(2)


def test_a_user_term_reaches_the_scenario_loop_and_changes_its_steps(book):
    executor = BookExecutor(book, freq=FREQ)
    plain = ScenarioHorizon(Objective()).run(executor, 20_000)
    before = Wiggle.calls
    smooth = ScenarioHorizon(Objective() + Wiggle(1e-3)).run(executor, 20_000)
    assert Wiggle.calls > before
    assert smooth.x.sum() == pytest.approx(20_000, rel=1e-9)
    solved = smooth.steps.dropna(subset=["kkt_ok"])
    assert len(solved) and solved["kkt_ok"].astype(bool).all()
    assert not np.allclose(smooth.x.to_numpy(), plain.x.to_numpy())


def test_a_user_term_reaches_the_receding_loop_and_the_backtest(book):
    executor = BookExecutor(book, freq=FREQ)
    table = cs.impact_table(book, [100, 500, 1000, 2000, 5000]).dropna(subset=["volatility"])
    model = LiveCurves(executor, SquareRootImpact().fit(table, table["slippage"]))
    term = Wiggle(1e-3)
    before = Wiggle.calls
    strategies = [ScenarioStrategy(Objective() + term), RecedingStrategy(term, horizon=8)]
    result = backtest(book, 20_000, strategies, model=model, freq=FREQ)
    assert Wiggle.calls > before
    assert sum("A+Wiggle" in name for name in result.index) == 2  # both strategies, labelled by the term
    assert (result["unfilled"] == 0).all()


def test_the_scenario_step_prices_what_earlier_slices_left_in_the_book(book):
    executor = BookExecutor(book, freq=FREQ)
    n = len(executor)
    # Half-life 1 bucket; the executor's resilience (seconds) maps to buckets the same way.
    term = cs.TransientImpact(half_life=1.0, strength=2e-5)
    horizon = ScenarioHorizon(Objective() + term, warmup=2, pace_cap=None, participation=None)
    fresh = executor.realized_curves()
    i = 6
    quiet, _ = horizon.decide(executor, fresh, i, 12_000.0, 20_000.0, executed=np.zeros(i))
    loud, _ = horizon.decide(executor, fresh, i, 12_000.0, 20_000.0, executed=np.r_[np.zeros(i - 1), 8_000.0])
    # A big slice one bucket ago still weighs on the book now: trade less now, more later.
    assert loud < quiet
    record = horizon.run(executor, 20_000)
    assert record.x.sum() == pytest.approx(20_000, rel=1e-9) and len(record.x) == n
    assert record.steps["kkt_ok"].astype(bool).all()
