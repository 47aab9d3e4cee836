"""Binance depth streams: snapshot + diff depth with the update-id rule, gaps reported, real files."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convexsched as cs
from convexsched.data.binance import looks_binance, read_binance, top_of_book_check

FOLDER = "binance-btcusdt-hftbacktest"


@pytest.fixture(scope="module")
def files(shared_data):
    folder = shared_data / FOLDER
    return {
        "spot": folder / "spot/btcusdt_20240808.gz",
        "spot_next": folder / "spot/btcusdt_20240809.gz",
        "usdm": folder / "usdm/btcusdt_20240808.gz",
    }


@pytest.fixture(scope="module")
def spot(files):
    return cs.read_book(files["spot"])  # recognized by content


def test_spot_and_futures_are_recognized_and_rebuilt(files, spot):
    assert spot.meta["format"] == "binance" and spot.meta["market"] == "spot"
    assert spot.symbol == "BTCUSDT" and spot.tick_size == pytest.approx(0.01) and spot.n_levels == 10
    report = spot.report
    # 3,451 diff-depth events (PROVENANCE): 2 already in the snapshot, 12 after midnight (next file's day).
    assert report.rows_read == 3451 and report.dropped["before_snapshot"] == 2
    assert report.dropped["other_date"] == 12 and report.dropped["update_id_gap"] == 0
    assert report.rows_read == report.rows_kept + report.rows_dropped
    assert spot.meta["update_id_gaps"] == []
    frame = spot.frame
    assert str(frame.index.tz) == "UTC" and frame.index.is_monotonic_increasing
    assert (frame["ask_px_00"] > frame["bid_px_00"]).all()
    assert frame["bid_px_00"].between(61_500, 62_000).all()  # BTC ~61,700-61,840 USDT
    assert (np.diff(frame[[f"bid_px_{k:02d}" for k in range(10)]].to_numpy(), axis=1) < 0).all()
    assert frame["volume"].sum() > 100  # BTC traded in six minutes
    # Hand-checked first row: the snapshot (line 8, lastUpdateId 50093239218: 61837.63 x 3.78826 /
    # 61837.64 x 1.54698, second bid 61837.62 x 0.617) plus the buffered event of line 6
    # (U 50093239208 <= L + 1 <= u 50093239224, E 1723161255408) that sets the ask to 1.60520.
    first = frame.iloc[0]
    assert frame.index[0] == pd.Timestamp(1723161255408, unit="ms", tz="UTC")
    assert (first["bid_px_00"], first["bid_sz_00"], first["bid_px_01"], first["bid_sz_01"]) == (
        61837.63, 3.78826, 61837.62, 0.617)  # fmt: skip
    assert (first["ask_px_00"], first["ask_sz_00"]) == (61837.64, 1.6052)
    futures = cs.read_book(files["usdm"], format="binance")
    assert futures.meta["market"] == "usdm" and futures.tick_size == pytest.approx(0.1)
    assert futures.report.rows_read == 6551 and futures.report.dropped["update_id_gap"] == 0


@pytest.mark.parametrize("name", ["spot", "usdm"])
def test_rebuilt_top_matches_binance_book_ticker(files, name):
    check = top_of_book_check(files[name])
    assert len(check) > 500 and check["match"].all()


def test_continuation_file_needs_the_previous_one(files):
    with pytest.raises(cs.DataError, match="no REST depth snapshot"):
        read_binance(files["spot_next"])
    book = cs.read_book(files["spot_next"], previous=files["spot"])
    assert book.report.rows_read == 3044 and book.report.rows_kept == 3044  # the chain continues: no gap
    check = top_of_book_check(files["spot_next"], previous=files["spot"])
    assert len(check) > 400 and check["match"].all()


def test_a_missing_event_is_a_reported_gap(files, tmp_path):
    with gzip.open(files["spot"]) as handle:
        lines = handle.read().splitlines(keepends=True)
    depth = [k for k, line in enumerate(lines) if b"@depth" in line[:80]]
    removed = depth[100]  # well after the snapshot line
    broken = tmp_path / "gap.gz"
    with gzip.open(broken, "wb") as out:
        out.writelines(line for k, line in enumerate(lines) if k != removed)
    assert looks_binance(broken)
    book = cs.read_book(broken)
    gaps = book.meta["update_id_gaps"]
    assert len(gaps) == 1 and gaps[0]["got_U"] > gaps[0]["expected"]
    # 3,450 events left: the 100 before the hole (2 stale, 98 applied) and 3,350 after it, all
    # dropped since no snapshot follows to re-synchronise.
    assert book.report.rows_read == 3450 and book.report.dropped["update_id_gap"] == 3350
    assert book.report.rows_kept == 98
    assert any("gap(s) in the update ids" in note for note in book.report.notes)
    assert book.frame.index[-1] < cs.read_book(files["spot"]).frame.index[100]


def test_features_and_backtest_run_on_binance(spot):
    features = cs.bucket_features(spot)
    assert len(features) == 6 and features["n_snapshots"].gt(0).all()
    table = cs.backtest(spot, 5.0)  # 5 BTC over six minutes
    assert (table["unfilled"] == 0).all()
    assert table.loc["hindsight A", "cost_bps"] <= table["cost_bps"].min() + 1e-9
    assert np.isfinite(table["cost_bps"]).all()


def test_other_text_is_not_binance(tmp_path):
    other = tmp_path / "x.gz"
    with gzip.open(other, "wb") as out:
        out.write(b"hello,world\n1,2\n")
    assert not looks_binance(other)
    with pytest.raises(cs.DataError, match="cannot infer the format"):
        cs.read_book(other)


@given(
    futures=st.booleans(),
    stale=st.integers(0, 3),
    fresh=st.integers(1, 12),
    gap_at=st.one_of(st.none(), st.integers(1, 11)),
    buffered=st.integers(0, 4),
)
def test_update_id_rule_and_gaps(tmp_path_factory, futures, stale, fresh, gap_at, buffered):
    """Synthetic streams: stale events dropped, the chain checked per market, a gap ends the book."""
    last = 1000
    # Stale events, the last one on the boundary: u = L is stale on spot, u = L - 1 on futures.
    ids, u = [], last - (1 if futures else 0) - 3 * (stale - 1)
    for _ in range(stale):
        ids.append((u - 2, u))
        u += 3
    # The first fresh event straddles the snapshot: U <= L (+1 on spot) <= u.
    start = last if futures else last + 1
    ids.append((start - 1, start + 1))
    prev = start + 1
    gap = gap_at if gap_at is not None and gap_at < fresh else None
    for k in range(1, fresh):
        lo = prev + 1 + (5 if k == gap else 0)
        ids.append((lo, lo + 2))
        prev = lo + 2
    lines, t0 = [], 1_723_161_000_000
    gap_index = None if gap is None else stale + gap  # position of the event after the hole
    snapshot = json.dumps({"lastUpdateId": last, "bids": [["99.00", "1"], ["98.00", "2"]],
                           "asks": [["101.00", "1"], ["102.00", "2"]]})  # fmt: skip
    previous_u = None
    for k, (lo, hi) in enumerate(ids):
        data = {"e": "depthUpdate", "E": t0 + 100 * k, "s": "TOY", "U": lo, "u": hi,
                "b": [["98.00", str(3 + k)]], "a": [["102.00", str(4 + k)]]}  # fmt: skip
        if futures:  # pu: the exchange's previous event, a missing one at the gap
            data["pu"] = lo - 1 if previous_u is None else previous_u + (5 if k == gap_index else 0)
        previous_u = hi
        lines.append(f"{(t0 + 100 * k) * 1_000_000} " + json.dumps({"stream": "toy@depth", "data": data}))
        if k == min(buffered, len(ids) - 1):
            lines.append(f"{(t0 + 100 * k) * 1_000_000 + 1} {snapshot}")
    path = tmp_path_factory.mktemp("stream") / "toy.gz"
    with gzip.open(path, "wt") as out:
        out.write("\n".join(lines) + "\n")
    book = read_binance(path)["TOY"]
    applied = fresh if gap is None else gap
    report = book.report
    assert report.dropped["before_snapshot"] == stale
    assert report.dropped["update_id_gap"] == fresh - applied
    assert report.rows_kept == applied and len(book.meta["update_id_gaps"]) == (gap is not None)
    assert book.frame["bid_sz_00"].eq(1).all() and book.frame["bid_sz_01"].iloc[-1] == 3 + stale + applied - 1


# ---------------------------------------------------------------- Binance's rules at the edges


def _snapshot(last, bid="1"):
    return {"lastUpdateId": last, "bids": [["99.00", bid], ["98.00", "2"]], "asks": [["101.00", "1"], ["102.00", "2"]]}


def _event(lo, hi, k, qty=None, pu=None, symbol="TOY"):
    data = {"e": "depthUpdate", "E": 1_723_161_000_000 + 100 * k, "s": symbol, "U": lo, "u": hi,
            "b": [["98.00", str(3 + k if qty is None else qty)]], "a": [["102.00", "4"]]}  # fmt: skip
    if pu is not None:
        data["pu"] = pu
    return {"stream": "toy@depth", "data": data}


def _write_stream(path, messages):
    t0 = 1_723_161_000_000_000_000
    with gzip.open(path, "wt") as out:
        out.write("".join(f"{t0 + 1000 * k} {json.dumps(m)}\n" for k, m in enumerate(messages)))
    return path


def test_a_repeated_snapshot_line_is_ignored_not_a_gap(tmp_path):
    events = [_event(1001 + 3 * k, 1003 + 3 * k, k) for k in range(8)]
    path = _write_stream(tmp_path / "toy.gz", [_snapshot(1000), *events[:4], _snapshot(1000), *events[4:]])
    book = read_binance(path)["TOY"]
    assert book.report.rows_kept == 8 and book.report.dropped["update_id_gap"] == 0
    assert book.meta["update_id_gaps"] == [] and book.frame["bid_sz_01"].iloc[-1] == 3 + 7
    assert any("1 REST snapshot(s) no newer" in note for note in book.report.notes)


def test_a_gap_is_resynchronized_by_a_later_snapshot(tmp_path):
    # Events 0-2 chain from snapshot 1000; event 3 skips ids (a gap); events 4-6 arrive before the
    # new snapshot 1020 (Binance: buffer them), event 5 straddles it; events 7-8 follow.
    ids = [(1001, 1003), (1004, 1006), (1007, 1009), (1013, 1015), (1016, 1018), (1019, 1021), (1022, 1024),
           (1025, 1027), (1028, 1030)]  # fmt: skip
    events = [_event(lo, hi, k) for k, (lo, hi) in enumerate(ids)]
    path = _write_stream(tmp_path / "toy.gz", [_snapshot(1000), *events[:7], _snapshot(1020, bid="9"), *events[7:]])
    book = read_binance(path)["TOY"]
    report = book.report
    assert len(book.meta["update_id_gaps"]) == 1
    # applied: 0-2 before the gap, then 5-8 after the new snapshot (4 is in it, 3 is the gap).
    assert report.rows_kept == 7 and report.dropped["update_id_gap"] == 1 and report.dropped["before_snapshot"] == 1
    assert book.frame["bid_sz_00"].iloc[-1] == 9 and book.frame["bid_sz_01"].iloc[-1] == 3 + 8


def test_a_gap_without_a_later_snapshot_drops_the_rest(tmp_path):
    events = [_event(1001, 1003, 0), _event(1004, 1006, 1), _event(1010, 1012, 2), _event(1013, 1015, 3)]
    book = read_binance(_write_stream(tmp_path / "toy.gz", [_snapshot(1000), *events]))["TOY"]
    assert book.report.rows_kept == 2 and book.report.dropped["update_id_gap"] == 2


def test_mixed_spot_and_futures_streams_are_refused(tmp_path):
    messages = [_snapshot(1000), _event(1001, 1003, 0), _event(1004, 1006, 1, pu=1003)]
    with pytest.raises(cs.DataError, match="spot and USD-M futures depth events are mixed"):
        read_binance(_write_stream(tmp_path / "toy.gz", messages))


def test_two_symbols_in_one_stream_are_refused(tmp_path):
    messages = [_snapshot(1000), _event(1001, 1003, 0), _event(1004, 1006, 1, symbol="OTHER")]
    with pytest.raises(cs.DataError, match="'OTHER' follow those of 'TOY'"):
        read_binance(_write_stream(tmp_path / "toy.gz", messages))


@pytest.mark.parametrize("where", ["event", "snapshot"])
def test_a_negative_quantity_is_refused_not_a_delete(tmp_path, where):
    snapshot = _snapshot(1000, bid="-1" if where == "snapshot" else "1")
    events = [_event(1001, 1003, 0), _event(1004, 1006, 1, qty=-2 if where == "event" else None)]
    with pytest.raises(cs.DataError, match="negative"):
        read_binance(_write_stream(tmp_path / "toy.gz", [snapshot, *events]))


def test_a_cut_gzip_member_is_refused(tmp_path):
    events = [_event(1001 + 3 * k, 1003 + 3 * k, k) for k in range(200)]
    whole = _write_stream(tmp_path / "toy.gz", [_snapshot(1000), *events]).read_bytes()
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(cs.DataError, match=r"cannot read Binance stream cut.gz \(line \d+\)"):
        read_binance(tmp_path / "cut.gz")
