"""Backtester: fills against the real book, rolled slices, strategy table, receding runs on a book."""

import dataclasses

import matplotlib
import numpy as np
import pytest
from strategies import alter_after

from convexsched import (
    BookExecutor,
    InvalidInputError,
    LiveCurves,
    RecedingHorizon,
    SquareRootImpact,
    backtest,
    execute_schedule,
    impact_table,
    synthetic_book,
)
from convexsched.execution.strategies import TWAP, AlmgrenChriss, DepthProportional, RecedingStrategy, StaticPlan

matplotlib.use("Agg")
FREQ = "10min"  # 39 buckets keep the loops short


@pytest.fixture(scope="module")
def book():
    return synthetic_book(1)


@pytest.fixture(scope="module")
def model(book):
    table = impact_table(book, [100, 500, 1000, 2000, 5000]).dropna(subset=["volatility"])
    oracle = SquareRootImpact().fit(table, table["slippage"])
    return LiveCurves(BookExecutor(book, freq=FREQ), oracle)


def strategies():
    return [
        TWAP(),
        AlmgrenChriss(),
        DepthProportional(),
        StaticPlan("A"),
        StaticPlan("B"),
        StaticPlan("C"),
        RecedingStrategy("A", horizon=8),
        RecedingStrategy("A", horizon="all"),
        RecedingStrategy("C", horizon=8),
    ]


def test_every_strategy_executes_the_whole_order(book, model):
    total = 20_000
    table, records = backtest(book, total, strategies(), model=model, freq=FREQ, return_records=True)
    assert list(table.index) == [s.name for s in strategies()] + ["hindsight A", "hindsight B"]
    assert not table["default"].any()  # the recommended strategy was not asked for
    for record in records.values():
        assert record.x.sum() == pytest.approx(total, rel=1e-12)
        assert record.cost_bps == pytest.approx(1e4 * record.cost / (total * record.arrival_mid))
    assert table.loc["TWAP", "vs_twap_bps"] == 0.0
    assert (table["cost"] > 0).all() and (table["unfilled"] == 0).all()


def test_fill_walks_the_displayed_levels(book):
    executor = BookExecutor(book, freq=FREQ)
    row = book.frame.iloc[executor.rows[3]]
    mid = (row["bid_px_00"] + row["ask_px_00"]) / 2
    take = row["ask_sz_00"] + 0.5 * row["ask_sz_01"]
    expected = row["ask_sz_00"] * (row["ask_px_00"] - mid) + 0.5 * row["ask_sz_01"] * (row["ask_px_01"] - mid)
    filled, cost, beyond = executor.fill(3, take)
    assert filled == take and cost == pytest.approx(expected) and not beyond
    assert executor.fill(3, 10 * executor.depth.iloc[3])[2]


def _break_bucket(book, executor, bucket, crossed):
    """A copy of the book whose ``bucket`` has no usable snapshot (removed, or every one crossed)."""
    frame = book.frame.copy()
    labels = executor.index[bucket]
    inside = (frame.index >= labels) & (frame.index < labels + np.timedelta64(10, "m"))
    if crossed:
        frame.loc[inside, "ask_px_00"] = frame.loc[inside, "bid_px_00"] - book.tick_size
    else:
        frame = frame[~inside]
    return dataclasses.replace(book, frame=frame)


@pytest.mark.parametrize("crossed", [False, True])
def test_unusable_bucket_rolls_its_slice_forward(book, crossed):
    executor = BookExecutor(book, freq=FREQ)
    broken = BookExecutor(_break_bucket(book, executor, 5, crossed), freq=FREQ)
    n, total = len(broken), 39_000.0
    record = execute_schedule(broken, np.full(n, total / n), "TWAP")
    assert record.x.iloc[5] == 0 and record.rolled.iloc[5] == pytest.approx(total / n)
    assert record.x.iloc[6] == pytest.approx(2 * total / n)
    assert record.x.sum() == pytest.approx(total) and record.unfilled == 0


def test_slice_that_cannot_roll_is_reported_unfilled(book):
    executor = BookExecutor(book, freq=FREQ)
    broken = BookExecutor(_break_bucket(book, executor, len(executor) - 1, crossed=False), freq=FREQ)
    n = len(broken)
    record = execute_schedule(broken, np.full(n, 100.0), "TWAP")
    assert record.unfilled == pytest.approx(100.0)
    assert record.x.sum() + record.unfilled == pytest.approx(100.0 * n)
    # The unfilled shares are charged: walked through the last usable book of the day.
    last = max(i for i in range(n) if broken.usable(i))
    assert record.unfilled_cost == pytest.approx(BookExecutor(broken.book, freq=FREQ).fill(last, 100.0)[1])
    assert record.cost == pytest.approx(record.costs.sum() + record.unfilled_cost) and record.unfilled_cost > 0
    row = record.summary()
    assert not row["complete"] and row["unfilled_cost_bps"] > 0


def test_a_share_rolled_across_several_empty_buckets_counts_once(book):
    executor = BookExecutor(book, freq=FREQ)
    broken = _break_bucket(book, executor, 5, crossed=False)
    broken = BookExecutor(_break_bucket(broken, executor, 6, crossed=False), freq=FREQ)
    n = len(broken)
    record = execute_schedule(broken, np.full(n, 100.0), "TWAP")
    assert record.rolled.iloc[5] == 100.0 and record.rolled.iloc[6] == 100.0 and record.rolled.sum() == 200.0
    assert record.x.iloc[7] == pytest.approx(300.0) and record.unfilled == 0


def test_receding_horizon_replans_around_an_empty_bucket(book, model):
    executor = BookExecutor(book, freq=FREQ)
    broken = BookExecutor(_break_bucket(book, executor, 4, crossed=False), freq=FREQ)
    curves = LiveCurves(broken, model.oracle)
    record = RecedingHorizon(8).run(broken, 20_000, curves)
    assert record.x.iloc[4] == 0 and record.rolled.iloc[4] > 0
    assert record.x.sum() == pytest.approx(20_000, rel=1e-12)


def test_receding_fast_and_cvxpy_agree_on_a_book(book, model):
    fast = RecedingHorizon(8, tail_segments=16).run(book, 20_000, model, freq=FREQ)
    slow = RecedingHorizon(8, method="cvxpy", tail_segments=16).run(book, 20_000, model, freq=FREQ)
    # The persistence forecast makes later buckets identical (ties), so the two solvers may split
    # a tie differently and the executed paths part; the first plan, on equal data, must agree.
    assert slow.steps["plan_value"].iloc[0] == pytest.approx(fast.steps["plan_value"].iloc[0], rel=1e-5)
    assert slow.cost == pytest.approx(fast.cost, rel=0.05)
    # One plan per step until the order is done (the last bucket only takes the remainder).
    assert len(fast.plans) == int((fast.steps["remaining"].iloc[:-1] > 0).sum())
    assert fast.steps["kkt_ok"].all() and slow.steps["kkt_ok"].all()
    axes = fast.plot()
    assert len(axes) == 3


def test_bad_orders_are_rejected(book, model):
    with pytest.raises(InvalidInputError, match="S must be"):
        backtest(book, 0, [TWAP()], freq=FREQ)
    with pytest.raises(Exception, match="maximum executable"):
        backtest(book, 1e9, [RecedingStrategy("A", horizon=8)], model=model, freq=FREQ)


def test_every_table_reports_the_hindsight_bound_and_capture(book, model):
    table = backtest(book, 20_000, strategies(), model=model, freq=FREQ)
    bound = table.loc["hindsight A", "cost_bps"]
    assert (table["hindsight_bps"] == bound).all()
    twap = table.loc["TWAP", "cost_bps"]
    expected = (twap - table["cost_bps"]) / (twap - bound)
    np.testing.assert_allclose(table["capture"], expected)
    assert table.loc["TWAP", "capture"] == 0 and table.loc["hindsight A", "capture"] == pytest.approx(1)
    assert table["lookahead"].sum() == 2 and table.loc["hindsight B", "lookahead"]
    # Half-life 0: every strategy pays sum g_i(x_i) on the realized curves, so none beats the bound.
    assert (table["cost_bps"] >= bound - 1e-9).all()


def test_model_free_backtest_runs_the_scenario_horizons_and_adds_twap(book):
    table = backtest(book, 20_000, freq=FREQ)
    assert {"TWAP", "scenario A", "scenario B", "scenario C", "hindsight A"} <= set(table.index)
    assert {"cost_bps", "vs_twap_bps", "hindsight_bps", "capture"} <= set(table.columns)
    only = backtest(book, 20_000, [AlmgrenChriss()], freq=FREQ, hindsight=False)
    assert list(only.index) == ["TWAP", "Almgren-Chriss (kT=2)"] and "capture" not in only.columns


def test_the_receding_horizon_does_not_look_ahead(book, model):
    """Alter every snapshot after the one bucket i walks: the decisions up to i do not move."""
    executor = BookExecutor(book, freq=FREQ)
    base = RecedingHorizon(8).run(executor, 20_000, LiveCurves(executor, model.oracle))
    for bucket in (2, 9):
        altered = BookExecutor(alter_after(book, executor.rows[bucket], bucket), freq=FREQ)
        run = RecedingHorizon(8).run(altered, 20_000, LiveCurves(altered, model.oracle))
        np.testing.assert_array_equal(run.x.to_numpy()[: bucket + 1], base.x.to_numpy()[: bucket + 1])
        assert not np.array_equal(run.x.to_numpy(), base.x.to_numpy())


def test_strategies_are_looked_up_by_name_in_one_place(capsys):
    from convexsched.cli import main
    from convexsched.execution.strategies import strategies_by_name
    from convexsched.execution.universe import backtest_task

    picked = strategies_by_name(["RH A H=30 (fast)", "TWAP"])
    assert [s.name for s in picked] == ["RH A H=30 (fast)", "TWAP"]
    with pytest.raises(InvalidInputError, match=r"unknown strategies \['static A'\]; available: \['TWAP'"):
        strategies_by_name(["static A"], with_model=False)  # a model strategy without a model
    # The command line and the universe task say the same.
    with pytest.raises(InvalidInputError, match=r"unknown strategies \['nope'\]"):
        backtest_task({"symbol": "SYN", "synthetic": 0}, strategies=["nope"])
    assert main(["backtest", "--synthetic", "--total", "1000", "--strategies", "nope"]) == 2
    assert "unknown strategies ['nope']; available: ['TWAP'" in capsys.readouterr().err
