"""State features (E17) against hand computations on real rows and on a hand-made book."""

import numpy as np
import pandas as pd
import pytest

import convexsched as cs
from convexsched.data.book import clean_book

LOBSTER = "lobster-aapl-2012-head/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"


def test_features_of_the_first_lobster_row_by_hand(shared_data):
    # First orderbook line: 5859400,200,5853300,18,5859800,200,5853000,150,... (PROVENANCE.md).
    feats = cs.book_features(cs.read_book(shared_data / LOBSTER)).iloc[0]
    assert feats.mid == pytest.approx((585.94 + 585.33) / 2, abs=1e-12)
    assert feats.spread == pytest.approx(0.61, abs=1e-9)
    ask_sizes = [200, 200, 200, 300, 50, 100, 10, 100, 1160, 500]
    bid_sizes = [18, 150, 5, 89, 5, 300, 300, 300, 200, 300]
    assert feats.depth == sum(ask_sizes) + sum(bid_sizes) == 4487
    assert feats.imbalance == pytest.approx((18 - 200) / (18 + 200 + 1e-9), rel=1e-12)
    assert feats.hour_of_day == 9
    assert np.isnan(feats.volatility)


def test_features_of_a_tick_zip_row_by_hand(shared_data):
    book = cs.read_book(shared_data / "cn-equity-l2-dolphindb/tick.zip", symbol="300274.SZ")
    feats = cs.book_features(book)
    raw = pd.read_csv(shared_data / "cn-equity-l2-dolphindb/tick.zip")
    row = raw[(raw.SecurityID == "300274.SZ") & (raw.MDTime == "10:00:00.000")].iloc[0]
    got = feats.loc[pd.Timestamp("2022-06-01 10:00", tz="Asia/Shanghai")]
    bid, ask = round(row.BuyPrice1, 2), round(row.SellPrice1, 2)
    assert got.mid == pytest.approx((bid + ask) / 2, abs=1e-12)
    assert got.spread == pytest.approx(ask - bid, abs=1e-12)
    assert got.depth == sum(row[f"BuyOrderQty{i}"] + row[f"SellOrderQty{i}"] for i in range(1, 11))
    assert got.imbalance == pytest.approx(
        (row.BuyOrderQty1 - row.SellOrderQty1) / (row.BuyOrderQty1 + row.SellOrderQty1 + 1e-9), rel=1e-12
    )
    assert got.hour_of_day == 10
    assert (feats.spread >= 0.01 - 1e-12).all()


def _toy_book(seconds, mids):
    """One-level book with the given mids (spread 0.02) at the given seconds after 10:00 UTC."""
    index = pd.Timestamp("2024-01-02 10:00", tz="UTC") + pd.to_timedelta(seconds, unit="s")
    mids = np.asarray(mids, float)
    frame = pd.DataFrame(
        {"bid_px_00": mids - 0.01, "ask_px_00": mids + 0.01, "bid_sz_00": 100.0, "ask_sz_00": 300.0},
        index=index,
    )
    return clean_book(frame, symbol="TOY", source="test", tick_size=0.01, sessions=cs.Sessions((("10:00", "10:03"),), "UTC"))


def test_volatility_uses_a_60_second_clock_window():
    seconds = [0, 10, 30, 65, 70, 200]
    mids = [10.00, 10.02, 10.01, 10.05, 10.03, 10.04]
    vol = cs.book_features(_toy_book(seconds, mids))["volatility"]
    r = np.diff(np.log(mids))  # returns stamped at 10, 30, 65, 70, 200 s
    # At 65 s the window (5 s, 65 s] holds the returns at 10, 30 and 65 s; at 70 s those at
    # 30, 65, 70 s (the 10-s one is out); at 200 s a single return -> NaN (sample std).
    assert vol.iloc[3] == pytest.approx(np.std(r[0:3], ddof=1), rel=1e-12)
    assert vol.iloc[4] == pytest.approx(np.std(r[1:4], ddof=1), rel=1e-12)
    assert np.isnan(vol.iloc[5]) and np.isnan(vol.iloc[0]) and np.isnan(vol.iloc[1])
    # A 3-row window would have given a different value at 70 s only if time mattered: it does here.
    assert vol.iloc[3] != pytest.approx(np.std(r[1:3], ddof=1))


def test_bucket_features_mean_and_empty_buckets():
    book = _toy_book([0, 20, 40, 130, 150], [10.00, 10.02, 10.04, 10.10, 10.12])
    bf = cs.bucket_features(book, "1min")
    assert list(bf.index.strftime("%H:%M")) == ["10:00", "10:01", "10:02"]
    assert list(bf.n_snapshots) == [3, 0, 2]
    assert bf.mid.iloc[0] == pytest.approx(10.02, abs=1e-12)
    assert bf.mid.iloc[2] == pytest.approx(10.11, abs=1e-12)
    assert bf.iloc[1][["mid", "spread", "depth"]].isna().all()
    assert list(bf.hour_of_day) == [10, 10, 10]
    first = cs.bucket_features(book, "1min", how="first")
    assert first.mid.iloc[2] == pytest.approx(10.10, abs=1e-12)
    with pytest.raises(cs.InvalidInputError):
        cs.bucket_features(book, "1min", how="max")


def test_bucket_volume_sums_the_snapshots():
    book = cs.synthetic_book(seed=2)
    bf = cs.bucket_features(book)
    assert len(bf) == 390
    assert bf.volume.sum() == book.traded_volume.sum()
    first_minute = book.frame.index < book.frame.index[0] + pd.Timedelta("1min")
    assert bf.volume.iloc[0] == book.traded_volume[first_minute].sum()


def test_side_features_read_the_traded_side():
    from convexsched.data.features import side_features

    book = cs.synthetic_book(0)
    frame = book.frame
    buy, sell = side_features(book, "buy"), side_features(book, "sell")
    np.testing.assert_array_equal(buy["touch"], frame["ask_sz_00"])
    np.testing.assert_array_equal(sell["touch"], frame["bid_sz_00"])
    np.testing.assert_allclose(buy["side_depth_3"], frame[["ask_sz_00", "ask_sz_01", "ask_sz_02"]].sum(axis=1))
    np.testing.assert_allclose(sell["side_depth_5"], frame[[f"bid_sz_0{i}" for i in range(5)]].sum(axis=1))
    np.testing.assert_allclose(buy["spread_ticks"], (frame["ask_px_00"] - frame["bid_px_00"]) / book.tick_size)
    with pytest.raises(cs.InvalidInputError, match="side"):
        side_features(book, "hold")
