"""Readers at the edges: grids, cumulative volume, repeated rows, codes, LOBSTER event types, cut DBN files.

Every file is built in the test.
"""

import numpy as np
import pandas as pd
import pytest

import convexsched as cs


def _cn_l2(path, stamps, bid, ask, step, cum, code="000400", phase=3):
    """A SZSE Level-2 table (the ``cn_l2`` preset's columns): ten levels ``step`` apart."""
    n = len(stamps)
    stamps = pd.DatetimeIndex(stamps)
    table = {"SecurityID": [code] * n, "MDDate": stamps.strftime("%Y.%m.%d"), "MDTime": stamps.strftime("%H:%M:%S.000"),
             "TradingPhaseCode": [phase] * n, "TotalVolumeTrade": cum}  # fmt: skip
    for level in range(1, 11):
        table[f"BuyPrice{level}"] = np.round(np.asarray(bid) - (level - 1) * step, 6)
        table[f"SellPrice{level}"] = np.round(np.asarray(ask) + (level - 1) * step, 6)
        table[f"BuyOrderQty{level}"] = 100 * level
        table[f"SellOrderQty{level}"] = 100 * level
    pd.DataFrame(table).to_csv(path, index=False)
    return path


def _stamps(days=("2024-03-01",), start="09:31:00", n=6, every="3s"):
    return [t for day in days for t in pd.date_range(f"{day} {start}", periods=n, freq=every)]


def test_a_book_on_a_finer_grid_than_the_preset_keeps_its_prices(tmp_path):
    # An ETF quoted on 0.001: the preset's 0.01 must not round 1.234 / 1.235 onto 1.23 / 1.24 (or lock them).
    stamps = _stamps()
    bid = 1.234 + 0.001 * np.arange(6)
    path = _cn_l2(tmp_path / "etf.csv", stamps, bid, bid + 0.001, 0.001, np.arange(6) * 100)
    book = cs.read_book(path)
    assert book.tick_size == pytest.approx(0.001) and len(book) == 6
    np.testing.assert_allclose(book.frame["bid_px_00"], bid)
    assert (book.frame["ask_px_00"] > book.frame["bid_px_00"]).all()
    assert any("off the default 0.01 tick grid" in note for note in book.report.notes)


def test_a_stated_tick_the_prices_contradict_is_refused(tmp_path):
    stamps = _stamps()
    bid = 10.005 + 0.005 * np.arange(6)  # a 0.005 grid
    path = _cn_l2(tmp_path / "half.csv", stamps, bid, bid + 0.01, 0.01, np.arange(6) * 100)
    with pytest.raises(cs.DataError, match=r"half.csv: \d+ of \d+ prices are off the stated 0.01 tick grid"):
        cs.read_book(path, tick_size=0.01)
    assert cs.read_book(path, tick_size=0.005).tick_size == 0.005  # the right one is taken


def test_cumulative_volume_starts_again_each_day(tmp_path):
    # Ten days without auction rows: each day's count starts from 0, so differencing across days
    # would make each day's first row negative.
    days = [str(d.date()) for d in pd.bdate_range("2024-03-04", periods=10)]
    stamps = _stamps(days, n=4)
    cum = np.tile([5000, 5300, 5600, 6000], 10) * np.repeat(np.arange(1, 11), 4)
    book = cs.read_book(_cn_l2(tmp_path / "days.csv", stamps, [10.0] * 40, [10.01] * 40, 0.01, cum))
    volume = book.traded_volume
    assert (volume >= 0).all()
    # Each day's volume is that day's last cumulative value (its first row carries the count before it).
    assert volume.sum() == pytest.approx(sum(6000 * k for k in range(1, 11)))
    assert book.meta["volume_resets"] == 0


def test_a_reset_of_the_cumulative_volume_is_counted_not_negative(tmp_path):
    stamps = _stamps(n=6)
    cum = [1000, 1500, 2000, 100, 300, 600]  # the vendor restarts the count after the third row
    book = cs.read_book(_cn_l2(tmp_path / "reset.csv", stamps, [10.0] * 6, [10.01] * 6, 0.01, cum))
    np.testing.assert_array_equal(book.traded_volume.to_numpy(), [1000, 500, 500, 100, 200, 300])
    assert book.meta["volume_resets"] == 1
    assert any("decreases 1 times within a day" in note for note in book.report.notes)


def test_a_file_exported_twice_counts_its_volume_once(tmp_path):
    stamps = _stamps(n=6)
    path = _cn_l2(tmp_path / "once.csv", stamps, [10.0] * 6, [10.01] * 6, 0.01, [0, 100, 250, 300, 700, 900])
    once = cs.read_book(path)
    table = pd.read_csv(path, dtype={"SecurityID": str})
    pd.concat([table, table]).to_csv(tmp_path / "twice.csv", index=False)
    twice = cs.read_book(tmp_path / "twice.csv")
    assert twice.report.dropped["duplicate_row"] == 6 and twice.report.rows_kept == 6
    pd.testing.assert_frame_equal(twice.frame, once.frame)
    # A per-row volume column (the "wide" layout) as well.
    frame = cs.synthetic_book(seed=0).frame.iloc[:30].reset_index()
    pd.concat([frame, frame]).to_csv(tmp_path / "wide.csv", index=False)
    wide = cs.read_book(tmp_path / "wide.csv")
    assert wide.traded_volume.sum() == pytest.approx(frame["volume"].sum())


def test_security_codes_keep_their_zeros(tmp_path):
    path = _cn_l2(tmp_path / "codes.csv", _stamps(), [10.0] * 6, [10.01] * 6, 0.01, np.arange(6) * 100, code="000400")
    books = cs.read_books(path)
    assert list(books) == ["000400"] and books["000400"].symbol == "000400"
    assert cs.read_book(path, symbol="000400").symbol == "000400"


def _lobster(folder, events):
    """A one-level LOBSTER pair whose messages have the given event types."""
    n = len(events)
    times = 34200 + np.arange(n) * 0.5
    message = pd.DataFrame({0: times, 1: events, 2: np.arange(n) + 1, 3: 100, 4: 1_000_000, 5: 1})
    book = pd.DataFrame({0: 1_000_100, 1: 200, 2: 1_000_000, 3: 300}, index=range(n))
    stem = "TOY_2012-06-21_34200000_57600000_{}_1.csv"
    message.to_csv(folder / stem.format("message"), header=False, index=False)
    book.to_csv(folder / stem.format("orderbook"), header=False, index=False)
    return folder / stem.format("orderbook")


def test_lobster_event_types_outside_one_to_seven_are_refused(tmp_path):
    assert len(cs.read_book(_lobster(tmp_path, [1, 4, 5, 3]))) > 0
    with pytest.raises(cs.DataError, match=r"2 messages have an event type outside LOBSTER's 1-7 \(first at data row 2: '9'\)"):
        cs.read_book(_lobster(tmp_path, [1, 9, 0, 3]))


def test_lobster_default_tick_gives_way_to_sub_penny_prices(tmp_path):
    path = _lobster(tmp_path, [1, 1, 1])
    book = pd.read_csv(path, header=None)
    book[0], book[2] = 5_050, 5_001  # 0.5050 / 0.5001: a sub-dollar stock quoted on 0.0001
    book.to_csv(path, header=False, index=False)
    assert cs.read_book(path).tick_size == pytest.approx(0.0001)
    with pytest.raises(cs.DataError, match="off the stated 0.01 tick grid"):
        cs.read_book(path, tick_size=0.01)


def test_iso_timestamps_across_a_dst_change_are_read(tmp_path):
    frame = cs.synthetic_book(seed=0).frame.iloc[:4].reset_index()
    # 2024-03-10: New York moves from -05:00 to -04:00 at 02:00 local.
    frame["ts"] = ["2024-03-10T01:58:00-05:00", "2024-03-10T01:59:00-05:00", "2024-03-10T03:00:00-04:00",
                   "2024-03-10T03:01:00-04:00"]  # fmt: skip
    frame.to_csv(tmp_path / "dst.csv", index=False)
    book = cs.read_book(tmp_path / "dst.csv", tz="America/New_York")
    assert len(book) == 4 and str(book.tz) == "America/New_York"
    assert (book.frame.index[2] - book.frame.index[1]) == pd.Timedelta("1min")
