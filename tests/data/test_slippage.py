"""Walking the book: hand-walked costs, convexity, extrapolation, the impact table and its reader."""

import numpy as np
import pandas as pd
import pytest

import convexsched as cs
from convexsched.data.book import clean_book

LOBSTER = "lobster-aapl-2012-head/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"


@pytest.fixture()
def toy():
    """Bid 9.99 x100, 9.98 x200 | ask 10.01 x100, 10.02 x200, 10.04 x300; mid 10.00, tick 0.01."""
    frame = pd.DataFrame(
        [[9.99, 9.98, np.nan, 10.01, 10.02, 10.04, 100, 200, 0, 100, 200, 300]],
        columns=["bid_px_00", "bid_px_01", "bid_px_02", "ask_px_00", "ask_px_01", "ask_px_02"]
        + ["bid_sz_00", "bid_sz_01", "bid_sz_02", "ask_sz_00", "ask_sz_01", "ask_sz_02"],
        index=pd.DatetimeIndex([pd.Timestamp("2024-01-02 15:00", tz="UTC")]),
    )
    return clean_book(frame, symbol="TOY", source="hand", tick_size=0.01)


def test_hand_walked_buy_and_sell(toy):
    buy = cs.walk_book(toy, [0, 50, 100, 250, 600], side="buy").iloc[0]
    # 250: 100 @ 10.01 + 150 @ 10.02 = 2504.00 against 250 x 10.00.
    expected = [0.0, 50 * 0.01, 100 * 0.01, 100 * 0.01 + 150 * 0.02, 100 * 0.01 + 200 * 0.02 + 300 * 0.04]
    np.testing.assert_allclose(buy.to_numpy(), expected, rtol=0, atol=1e-9)
    sell = cs.walk_book(toy, [150], side="sell").iloc[0]
    assert sell.iloc[0] == pytest.approx(100 * 0.01 + 50 * 0.02, abs=1e-9)


def test_hand_walked_real_lobster_row(shared_data):
    book = cs.read_book(shared_data / LOBSTER)
    mid = (585.94 + 585.33) / 2
    buy = cs.walk_book(book, [300], "buy").iloc[0, 0]
    assert buy == pytest.approx(200 * 585.94 + 100 * 585.98 - 300 * mid, abs=1e-7)  # 95.50
    assert buy == pytest.approx(95.5, abs=1e-7)
    sell = cs.walk_book(book, [200], "sell").iloc[0, 0]
    assert sell == pytest.approx(200 * mid - (18 * 585.33 + 150 * 585.30 + 5 * 585.10 + 27 * 585.01), abs=1e-7)
    assert sell == pytest.approx(75.29, abs=1e-7)


def test_units(toy):
    sizes = [100, 250]
    cur = cs.walk_book(toy, sizes).iloc[0].to_numpy()
    per_share = cs.walk_book(toy, sizes, unit="per_share").iloc[0].to_numpy()
    bps = cs.walk_book(toy, sizes, unit="bps").iloc[0].to_numpy()
    np.testing.assert_allclose(per_share, cur / np.array(sizes))
    np.testing.assert_allclose(bps, per_share / 10.0 * 1e4)
    assert bps[1] == pytest.approx(16.0)  # 4.00 / 250 / 10.00 = 16 bps


def test_beyond_depth_extrapolation(toy):
    sizes = np.array([600.0, 700.0, 1000.0])
    linear = cs.walk_book(toy, sizes).iloc[0].to_numpy()
    flat = cs.walk_book(toy, sizes, extrapolate="flat").iloc[0].to_numpy()
    nan = cs.walk_book(toy, sizes, extrapolate="nan").iloc[0].to_numpy()
    at_depth = 100 * 0.01 + 200 * 0.02 + 300 * 0.04  # 17.0
    gradient = (0.04 - 0.01) / 600  # (d_last - d_0) / displayed depth
    extra = sizes - 600
    np.testing.assert_allclose(flat, at_depth + extra * 0.04, atol=1e-9)
    np.testing.assert_allclose(linear, at_depth + extra * 0.04 + gradient * extra**2 / 2, atol=1e-9)
    assert np.isfinite(nan[0]) and np.isnan(nan[1:]).all()
    flags = cs.beyond_depth(toy, sizes).iloc[0].to_numpy()
    assert list(flags) == [False, True, True]


def test_convex_and_increasing_on_real_books(shared_data):
    book = cs.read_book(shared_data / "cn-equity-l2-dolphindb/tick.zip", symbol="300918.SZ")
    depth = book.frame.filter(regex="ask_sz_").sum(axis=1)
    sizes = np.linspace(0, 2 * depth.max(), 80)  # well past the displayed depth of every row
    for side in ("buy", "sell"):
        g = cs.walk_book(book, sizes, side).to_numpy()
        assert (g[:, 0] == 0).all()
        assert (np.diff(g, axis=1) > 0).all()
        scale = np.abs(g).max(axis=1, keepdims=True)
        assert (np.diff(g, n=2, axis=1) >= -1e-12 * scale).all()
        assert cs.beyond_depth(book, sizes, side).to_numpy()[:, -1].all()


def test_walk_book_shape_and_errors(toy):
    out = cs.walk_book(toy, np.arange(5.0))
    assert out.shape == (1, 5) and out.index.equals(toy.frame.index)
    for bad in ([-1.0], [np.nan], [], [[1.0, 2.0]]):
        with pytest.raises(cs.InvalidInputError):
            cs.walk_book(toy, bad)
    with pytest.raises(cs.InvalidInputError, match="side"):
        cs.walk_book(toy, [1.0], side="short")
    with pytest.raises(cs.InvalidInputError, match="unit"):
        cs.walk_book(toy, [1.0], unit="pips")
    with pytest.raises(cs.InvalidInputError, match="extrapolate"):
        cs.walk_book(toy, [1.0], extrapolate="cubic")


def test_impact_table_rows_match_walk_and_features():
    book = cs.synthetic_book(seed=7)
    book.frame = book.frame.iloc[:200]
    sizes = np.array([100.0, 1000.0, 5000.0])
    table = cs.impact_table(book, sizes, side="sell")
    impact_columns = "timestamp size slippage vol_ratio spread depth imbalance volatility hour_of_day"
    assert list(table.columns[:9]) == impact_columns.split()
    assert len(table) == 200 * 3 and table.attrs["side"] == "sell"
    walk = cs.walk_book(book, sizes, side="sell")
    feats = cs.book_features(book)
    row = table.iloc[3 * 57 + 2]
    assert row.timestamp == feats.index[57] and row["size"] == 5000.0
    assert row.slippage == walk.iloc[57, 2]
    assert row.vol_ratio == 5000.0 / feats.depth.iloc[57]
    assert row.imbalance == feats.imbalance.iloc[57]


def test_read_impact_table_round_trip_and_units(tmp_path):
    book = cs.synthetic_book(seed=8)
    book.frame = book.frame.iloc[:30]
    table = cs.impact_table(book, [200.0, 2000.0])
    table.to_csv(tmp_path / "t1.csv", index=False)
    back = cs.read_impact_table(tmp_path / "t1.csv")
    np.testing.assert_allclose(back.slippage, table.slippage)
    assert back.timestamp.dt.tz is not None and back.attrs["slippage_unit"] == "currency"

    bps = cs.impact_table(book, [200.0, 2000.0], unit="bps").rename(columns={"slippage": "cost_bps", "size": "qty"})
    bps.to_parquet(tmp_path / "t1.parquet")
    back = cs.read_impact_table(tmp_path / "t1.parquet", unit="bps", columns={"cost_bps": "slippage", "qty": "size"})
    np.testing.assert_allclose(back.slippage, table.slippage, rtol=1e-12)

    per_share = table.assign(slippage=table.slippage / table["size"])
    per_share.to_csv(tmp_path / "ps.csv", index=False)
    np.testing.assert_allclose(cs.read_impact_table(tmp_path / "ps.csv", unit="per_share").slippage, table.slippage)


def test_read_impact_table_validation(tmp_path):
    good = pd.DataFrame({"timestamp": ["2024-01-02 10:00:00+00:00"] * 2, "size": [100, 200], "slippage": [1.0, 3.0]})
    cases = {
        "missing": (good.drop(columns="slippage"), cs.DataError, "missing columns"),
        "text": (good.assign(slippage=["a", "b"]), cs.DataError, "not numeric"),
        "nan": (good.assign(slippage=[1.0, np.nan]), cs.DataError, "missing"),
        "zero": (good.assign(size=[0, 200]), cs.DataError, "size <= 0"),
        "naive": (good.assign(timestamp=["2024-01-02 10:00:00"] * 2), cs.InvalidInputError, "tz="),
    }
    for name, (frame, error, message) in cases.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        with pytest.raises(error, match=message):
            cs.read_impact_table(tmp_path / f"{name}.csv")
    good.to_csv(tmp_path / "good.csv", index=False)
    with pytest.raises(cs.DataError, match="mid"):
        cs.read_impact_table(tmp_path / "good.csv", unit="bps")
    naive = tmp_path / "naive.csv"
    assert str(cs.read_impact_table(naive, tz="Asia/Shanghai").timestamp.dt.tz) == "Asia/Shanghai"


def test_the_task1_names_are_deprecated_aliases(tmp_path):
    book = cs.synthetic_book(seed=8)
    with pytest.warns(FutureWarning, match="task1_table is deprecated; use impact_table"):
        old = cs.task1_table(book, [200.0])
    pd.testing.assert_frame_equal(old, cs.impact_table(book, [200.0]))
    old.to_csv(tmp_path / "t.csv", index=False)
    with pytest.warns(FutureWarning, match="read_task1 is deprecated; use read_impact_table"):
        back = cs.read_task1(tmp_path / "t.csv")
    pd.testing.assert_frame_equal(back, cs.read_impact_table(tmp_path / "t.csv"))


def test_walk_one_is_walk_distances_for_one_row_and_size():
    from convexsched.data.slippage import walk_distances, walk_one

    rng = np.random.default_rng(7)
    for _ in range(200):
        levels = int(rng.integers(1, 8))
        dist = np.sort(rng.integers(0, 6, levels)) * 0.01 + 0.005
        qty = rng.integers(0, 4, levels) * 100.0
        qty[-1] += 100.0  # some depth
        size = float(rng.choice([50.0, 100.0, qty.sum(), qty.sum() + 70.0, float(np.cumsum(qty)[0])]))
        cost, beyond = walk_distances(dist[None], qty[None], np.array([size]), 0.01)
        assert walk_one(dist, qty, size, 0.01) == (pytest.approx(float(cost[0, 0]), rel=1e-12), bool(beyond[0, 0]))
