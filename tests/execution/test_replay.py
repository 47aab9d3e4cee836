"""The event replay executor: hand-built streams with known answers, the protocol, the real SSE files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import convexsched as cs
from convexsched.data.events import ADD, CANCEL, TRADE, Events
from convexsched.data.sessions import Sessions
from convexsched.errors import InvalidInputError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "cn-equity-l2-dolphindb"
SESSIONS = Sessions((("10:00", "10:03"),), "UTC", "test")
DAY = pd.Timestamp("2024-01-02 10:00", tz="UTC")


def stream(rows, lot=1.0):
    """Events from rows ``(seconds after 10:00, kind, order, side, price ticks, qty, aggressor)``."""
    rows = sorted(rows, key=lambda r: r[0])
    t = np.array([(DAY + pd.Timedelta(seconds=r[0])).value for r in rows], np.int64)
    columns = list(zip(*[r[1:] for r in rows]))
    return Events(
        time=t,
        kind=np.array(columns[0], np.int8),
        order=np.array(columns[1], np.int64),
        side=np.array(columns[2], np.int8),
        price=np.array(columns[3], np.int64),
        qty=np.array(columns[4], float),
        aggressor=np.array(columns[5], np.int8),
        symbol="TEST",
        tick_size=0.01,
        sessions=SESSIONS,
        lot=lot,
        lot_sides=("buy",) if lot > 1 else (),
    )


def base_book(extra=()):
    """Bid 99 (orders 0, 1), asks 101 (orders 2, 3: 100 + 200) and 102 (order 4: 500), before 10:00."""
    rows = [
        (-5, ADD, 0, 1, 99, 300, 0),
        (-5, ADD, 1, 1, 99, 300, 0),
        (-4, ADD, 2, -1, 101, 100, 0),
        (-4, ADD, 3, -1, 101, 200, 0),
        (-3, ADD, 4, -1, 102, 500, 0),
    ]
    return stream(rows + list(extra))


def test_a_market_sweep_takes_the_best_orders_first_in_queue():
    executor = cs.ReplayExecutor(base_book(), "buy")
    filled, cost, short = executor.fill(0, 250)
    assert (filled, short) == (250, False)
    fills = executor.fills
    assert fills[["price", "qty"]].to_numpy().tolist() == [[1.01, 250.0]]
    # Against the feed's mid 1.00: 250 shares at 1.01.
    assert cost == pytest.approx(250 * 0.01)
    # Our footprint stays: 50 shares left at 101 for the next bucket's sweep, then 102.
    slopes, widths, _ = executor.walk_curve(1)
    assert widths[:2].tolist() == [50.0, 500.0]
    assert slopes[:2] == pytest.approx([0.01, 0.02])


def test_a_sweep_larger_than_the_book_is_short_and_never_creates_shares():
    executor = cs.ReplayExecutor(base_book(), "buy")
    filled, _, short = executor.fill(0, 10_000)
    assert short and filled == 800.0
    assert executor.fills["qty"].sum() == 800.0


def test_the_drop_rule_a_trade_against_an_order_we_consumed_gets_only_what_is_left():
    # At 10:00:30 the tape trades 150 against order 2 (100 shown): we took 60 of them first.
    later = [(30, TRADE, 2, -1, 101, 100, 1), (31, TRADE, 3, -1, 101, 50, 1)]
    executor = cs.ReplayExecutor(stream(list(base_book().frame().pipe(_rows)) + later), "buy")
    executor.fill(0, 60)
    _, widths, _ = executor.walk_curve(1)
    # Order 2 is gone (40 left for the tape, which wanted 100), order 3 shows 150: 150 at 101.
    assert widths[0] == 150.0
    rematch = cs.ReplayExecutor(stream(list(base_book().frame().pipe(_rows)) + later), "buy", rematch=True)
    rematch.fill(0, 60)
    # Rematch: the 60 the tape could not take from order 2 come out of order 3 (200 - 60 - 50).
    assert rematch.walk_curve(1)[1][0] == 90.0


def _rows(frame):
    """Rows of ``stream`` back from ``Events.frame()`` (prices in ticks)."""
    for stamp, row in zip(frame.index, frame.itertuples()):
        kind = {"ADD": ADD, "CANCEL": CANCEL, "TRADE": TRADE}[row.kind]
        yield ((stamp - DAY).total_seconds(), kind, row.order, row.side, int(round(row.price / 0.01)), row.qty, row.aggressor)


def test_a_passive_child_fills_only_when_the_tape_trades_behind_it_or_through_it():
    # We post at bid 99 behind orders 0 and 1; order 5 joins behind us at 10:00:10.
    tape = [
        (10, ADD, 5, 1, 99, 100, 0),
        (20, TRADE, 0, 1, 99, 300, -1),  # ahead of us: no fill
        (25, CANCEL, 1, 1, 0, np.inf, 0),  # a cancel ahead of us moves us up, fills nothing
        (30, TRADE, 5, 1, 99, 40, -1),
    ]  # behind us: the seller would have met us first
    executor = cs.ReplayExecutor(
        stream(list(base_book().frame().pipe(_rows)) + tape), "buy", tactic=cs.PassiveFirst(1, cross_at=50)
    )
    filled, cost, _ = executor.fill(0, 100)
    fills = executor.fills
    assert fills["passive"].tolist() == [True, False]
    assert fills["qty"].tolist() == [40.0, 60.0]
    assert fills["time"].iloc[0] == DAY + pd.Timedelta(seconds=30)
    # The rest crossed at :50 against asks 101.
    assert fills["price"].tolist() == [0.99, 1.01]
    assert filled == 100
    assert cost == pytest.approx(40 * (0.99 - 1.00) + 60 * (1.01 - 1.00))


def test_a_trade_through_our_price_fills_a_passive_child():
    tape = [
        (10, TRADE, 0, 1, 99, 300, -1),
        (11, TRADE, 1, 1, 99, 300, -1),
        (12, ADD, 6, 1, 98, 500, 0),
        (20, TRADE, 6, 1, 98, 70, -1),
    ]
    executor = cs.ReplayExecutor(
        stream(list(base_book().frame().pipe(_rows)) + tape), "buy", tactic=cs.PassiveFirst(1, cross_at=50)
    )
    executor.fill(0, 100)
    passive = executor.fills[executor.fills["passive"]]
    assert passive["qty"].tolist() == [70.0] and passive["price"].tolist() == [0.99]


def test_sliced_children_are_whole_lots_at_even_times():
    executor = cs.ReplayExecutor(stream(list(base_book().frame().pipe(_rows)), lot=100.0), "buy", tactic=cs.Sliced(3))
    filled, _, _ = executor.fill(0, 450)  # 4 lots: 200, 100, 100 (the odd 50 shares are not sent)
    fills = executor.fills
    assert filled == 400
    assert fills.groupby("child")["qty"].sum().tolist() == [200.0, 100.0, 100.0]
    assert (fills["time"] - DAY).dt.total_seconds().tolist() == [0.0, 20.0, 40.0]


def test_latency_delays_every_child():
    executor = cs.ReplayExecutor(base_book(), "buy", tactic=cs.Sliced(2), latency=0.25)
    executor.fill(0, 100)
    assert (executor.fills["time"] - DAY).dt.total_seconds().tolist() == [0.25, 30.25]


def test_buckets_pass_only_forward_and_reset_starts_again():
    executor = cs.ReplayExecutor(base_book(), "buy")
    executor.fill(1, 10)
    with pytest.raises(InvalidInputError, match="bucket 0 has passed"):
        executor.fill(0, 10)
    executor.reset()
    assert executor.fill(0, 10)[0] == 10 and len(executor.fills) == 1


def test_bad_options_are_errors():
    events = base_book()
    with pytest.raises(InvalidInputError, match="side"):
        cs.ReplayExecutor(events, "hold")
    with pytest.raises(InvalidInputError, match="latency"):
        cs.ReplayExecutor(events, latency=-1)
    with pytest.raises(InvalidInputError, match="shorter than a bucket"):
        cs.ReplayExecutor(events, latency=60)
    with pytest.raises(InvalidInputError, match="tactic"):
        cs.ReplayExecutor(events, tactic="sliced")
    with pytest.raises(InvalidInputError, match="before the bucket's end"):
        cs.ReplayExecutor(events, tactic=cs.PassiveFirst(1, cross_at=90))
    with pytest.raises(InvalidInputError):
        cs.Sliced(0)


def test_backtest_refuses_options_that_cannot_apply_to_an_executor():
    executor = cs.ReplayExecutor(base_book(), "buy")
    with pytest.raises(InvalidInputError, match="half_life"):
        cs.backtest(executor, 100, half_life=60)
    with pytest.raises(InvalidInputError, match="side='sell'"):
        cs.backtest(executor, 100, side="sell")
    with pytest.raises(InvalidInputError, match="freq"):
        cs.backtest(executor, 100, freq="5min")


def test_realized_curves_are_convex_and_start_from_each_buckets_own_book():
    executor = cs.ReplayExecutor(base_book(), "buy")
    slopes, widths, _ = executor.realized_curves()
    real = widths > 0
    for s, r in zip(slopes, real):
        assert (np.diff(s[r]) >= -1e-12).all()
    # Footprint-free: every bucket offers the same book (nothing happens after the open).
    assert np.allclose(slopes[0], slopes[-1]) and np.allclose(widths[0], widths[-1])
    curves = executor.realized_cost_curves()
    # The grid's largest size the 800 shown shares can fill ends the curve.
    grid = executor.grid()
    assert curves.capacity[0] == pytest.approx(grid[grid <= 800].max())


needs_data = pytest.mark.skipif(not DATA.exists() and not os.environ.get("CI"), reason="../shared/data is absent")


@pytest.fixture(scope="module")
def sse():
    return cs.read_events(DATA, symbol="600761.SH")


@needs_data
def test_the_sse_stream_rebuilds_an_uncrossed_book_at_every_bucket(sse):
    assert sse.report.rows_dropped == sse.report.dropped["other_symbol"]
    executor = cs.ReplayExecutor(sse, "buy")
    assert len(executor) == 237 and all(executor.usable(i) for i in range(len(executor)))
    mids = np.array([executor.mid(i) for i in range(len(executor))])
    assert np.isfinite(mids).all() and 20 < mids.min() and mids.max() < 23


@needs_data
def test_every_fill_is_one_the_rebuilt_book_could_give(sse):
    # A sell TWAP with six children: each aggressive fill is at or below the best bid then shown.
    executor = cs.ReplayExecutor(sse, "sell", tactic=cs.Sliced(6))
    table, records = cs.backtest(executor, 20_000, [cs.TWAP()], hindsight=False, return_records=True)
    fills = records["TWAP"].fills
    assert fills["qty"].sum() == pytest.approx(20_000) and (fills["qty"] > 0).all()
    assert fills["time"].dt.tz is not None
    assert (fills["price"] <= fills["mid"] + 1e-9).all()
    record = records["TWAP"]
    assert record.cost == pytest.approx(-(fills["qty"] * (fills["price"] - fills["mid"])).sum())
    assert table.loc["TWAP", "shortfall_bps"] == pytest.approx(
        1e4 * -(fills["qty"] * (fills["price"] - record.arrival_mid)).sum() / (20_000 * record.arrival_mid)
    )


@needs_data
def test_a_decision_reads_nothing_stamped_after_its_bucket_starts(sse):
    # Cut the tape at bucket 100's start: decisions of buckets <= 100 must not change.
    full = cs.ReplayExecutor(sse, "buy", tactic=cs.Sliced(6))
    start = full.index[100].value
    keep = sse.time < start
    cut = Events(
        time=sse.time[keep],
        kind=sse.kind[keep],
        order=sse.order[keep],
        side=sse.side[keep],
        price=sse.price[keep],
        qty=sse.qty[keep],
        aggressor=sse.aggressor[keep],
        symbol=sse.symbol,
        tick_size=sse.tick_size,
        sessions=sse.sessions,
        lot=sse.lot,
        lot_sides=sse.lot_sides,
    )
    truncated = cs.ReplayExecutor(cut, "buy", tactic=cs.Sliced(6))
    horizon = cs.ScenarioHorizon(cs.Objective(rho=1e-6))
    a = horizon.run(full, 50_000).steps["target"].to_numpy()[:101]
    b = horizon.run(truncated, 50_000).steps["target"].to_numpy()[:101]
    np.testing.assert_array_equal(a, b)


def test_backtest_names_what_is_missing_from_something_that_is_neither_a_book_nor_an_executor():
    with pytest.raises(InvalidInputError, match="missing .*fill"):
        cs.backtest(object(), 100)
