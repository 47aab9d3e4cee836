"""Databento MBO -> MBP-10: a hand-checked replay, the ES file, and Databento's own MBP records."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convexsched as cs
from convexsched.data.mbo import F_LAST, F_SNAPSHOT, replay, top_of_book_check

ES = "es-futures-mbo-databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst"
FIXTURES = "databento-fixtures/current"
_DTYPE = [("action", "S1"), ("side", "S1"), ("price", "<i8"), ("size", "<u4"), ("order_id", "<u8"),
          ("flags", "u1"), ("ts_recv", "<u8"), ("sequence", "<u4")]  # fmt: skip


def _records(rows):
    return np.array([(a, s, round(p * 1e9), z, o, f, t, t) for a, s, p, z, o, f, t in rows], dtype=_DTYPE)


def test_hand_checked_replay():
    records = _records([
        ("R", "N", 0, 0, 0, F_SNAPSHOT, 1),
        ("A", "B", 100.00, 5, 1, F_SNAPSHOT, 1),
        ("A", "B", 99.75, 7, 2, F_SNAPSHOT, 1),
        ("A", "A", 100.25, 4, 3, F_SNAPSHOT | F_LAST, 1),   # snapshot done: 100.00 x 5 / 100.25 x 4
        ("T", "B", 100.25, 3, 0, 0, 2),                     # a buy of 3 hits the ask...
        ("F", "A", 100.25, 3, 3, 0, 2),
        ("C", "A", 100.25, 3, 3, F_LAST, 2),                # ...and the fill's cancel leaves 1
        ("M", "B", 100.25, 6, 2, F_LAST, 3),                # order 2 moves up: locks the book
        ("A", "B", 100.00, 2, 4, 0, 4),                     # no F_LAST: not sampled alone
        ("C", "B", 100.25, 6, 2, F_LAST, 4),                # order 2 gone: 100.00 x 7 (5 + 2)
    ])  # fmt: skip
    state = replay(records, n_levels=2)
    top = np.vstack(state.rows)
    assert state.stamps == [1, 2, 3, 4]
    # columns: bid_px_00, bid_px_01, ask_px_00, ask_px_01, bid_sz_00, bid_sz_01, ask_sz_00, ask_sz_01
    np.testing.assert_array_equal(top[0], [100.00, 99.75, 100.25, np.nan, 5, 7, 4, 0])
    np.testing.assert_array_equal(top[1], [100.00, 99.75, 100.25, np.nan, 5, 7, 1, 0])
    np.testing.assert_array_equal(top[2], [100.25, 100.00, 100.25, np.nan, 6, 5, 1, 0])
    np.testing.assert_array_equal(top[3], [100.00, np.nan, 100.25, np.nan, 7, 0, 1, 0])
    assert state.volume == [0, 3, 0, 0]  # T only (F repeats it)
    assert state.trades == [(2, "B", int(100.25e9), int(100.00e9), int(100.25e9))]
    assert state.counts["snapshot_records"] == 4 and state.counts["unknown_order"] == 0


@pytest.fixture(scope="module")
def es(shared_data):
    return cs.read_book(shared_data / ES)  # recognized by its DBN schema


def test_es_mbo_becomes_a_book(es):
    assert es.meta["format"] == "mbo" and es.symbol == "ESH4" and es.tick_size == 0.25 and es.n_levels == 10
    counts = es.meta["counts"]
    # PROVENANCE: 8,725 snapshot adds, then A 20,491 / C 17,999 / M 12,233 / F 6,371 / T 2,973.
    assert counts["snapshot_records"] == 8725 and counts["A"] == 8725 + 20491
    assert (counts["C"], counts["M"], counts["F"], counts["T"]) == (17999, 12233, 6371, 2973)
    assert counts["unknown_order"] == 0 and counts["overfilled_level"] == 0
    report = es.report
    assert report.rows_read == report.rows_kept + report.rows_dropped and report.rows_kept > 40_000
    # Every event's first trade printed at the rebuilt touch (buy at the ask, sell at the bid).
    check = es.meta["trade_check"]
    assert check["events"] > 2500 and check["at_touch"] == check["events"]
    # The snapshot's records carry no F_LAST, so the first row is the first live event (an add at
    # 22:00:00.181 UTC): still the 22-Dec close book of PROVENANCE, 4799.00 x 16 / 4799.50 x 23.
    first = es.frame.iloc[0]
    assert es.frame.index[0] == pd.Timestamp(1703541600181198464, unit="ns", tz="UTC")
    assert (first["bid_px_00"], first["ask_px_00"], first["bid_sz_00"], first["ask_sz_00"]) == (4799.0, 4799.5, 16, 23)
    last = es.frame.iloc[-1]  # PROVENANCE's own replay: a 1-tick book at 4810.00 / 4810.25
    assert (last["bid_px_00"], last["ask_px_00"]) == (4810.00, 4810.25)
    assert last[[f"bid_sz_{k:02d}" for k in range(10)]].gt(0).all()
    assert str(es.sessions) == "from the first trade [17:00:00-18:00:00 America/Chicago]"  # CME reopen


def test_features_walk_and_backtest_run_on_es(es):
    features = cs.bucket_features(es)
    assert len(features) == 60 and features["n_snapshots"].gt(0).all() and features["volume"].sum() > 0
    walk = cs.walk_book(es, [1, 10, 50])
    assert (walk.iloc[:, 0] == 0.125).mean() > 0.9  # a 1-tick book: one contract pays half a tick
    table = cs.backtest(es, 200)
    assert (table["unfilled"] == 0).all() and np.isfinite(table["cost_bps"]).all()
    assert table.loc["hindsight A", "cost_bps"] <= table["cost_bps"].min() + 1e-9


def test_rebuilt_top_matches_databento_mbp_records(shared_data):
    folder = shared_data / FIXTURES / "XNAS.ITCH"
    check = top_of_book_check(folder / "test_data.mbo.dbn.zst", folder / "test_data.mbp-10.dbn.zst")
    assert len(check) == 4 and check["match"].all()
    check = top_of_book_check(folder / "test_data.mbo.dbn.zst", folder / "test_data.mbp-1.dbn.zst")
    assert len(check) == 3 and check["match"].all()  # the fourth MBP-1 record is another event
    # GLBX's fixtures are from different moments (a snapshot at 20:00 vs MBP at 00:00): nothing to compare.
    glbx = shared_data / FIXTURES / "GLBX.MDP3"
    assert top_of_book_check(glbx / "test_data.mbo.dbn.zst", glbx / "test_data.mbp-10.dbn.zst").empty


def test_mbo_format_is_checked(shared_data):
    with pytest.raises(cs.DataError, match="not mbo"):
        cs.read_book(shared_data / FIXTURES / "XNAS.ITCH/test_data.mbp-10.dbn.zst", format="mbo")
    book = cs.read_book(shared_data / FIXTURES / "XNAS.ITCH/test_data.mbo.dbn.zst")
    assert any("book starts empty" in note for note in book.report.notes)
    assert isinstance(book.frame.index, pd.DatetimeIndex)


@st.composite
def order_flows(draw):
    """Random A/C/M records on live orders (ids reused only while the order rests), each an event."""
    ops = draw(st.lists(st.tuples(st.sampled_from("ACMM"), st.integers(0, 10**6)), min_size=1, max_size=60))
    live, rows, next_id = {}, [], 1
    for action, seed in ops:
        rng = np.random.default_rng(seed)
        side = "B" if rng.random() < 0.5 else "A"
        # Bids below 100, asks from 100.25: a book that never crosses.
        price = 100.0 - 0.25 * int(rng.integers(1, 8)) if side == "B" else 100.0 + 0.25 * int(rng.integers(1, 8))
        size = int(rng.integers(1, 20))
        if action == "A" or not live:
            live[next_id] = (side, price, size)
            rows.append(("A", side, price, size, next_id, F_LAST, len(rows)))
            next_id += 1
            continue
        oid = sorted(live)[int(rng.integers(len(live)))]
        o_side, o_price, o_size = live[oid]
        if action == "C":
            cut = int(rng.integers(1, o_size + 1))
            rows.append(("C", o_side, o_price, cut, oid, F_LAST, len(rows)))
            if cut == o_size:
                del live[oid]
            else:
                live[oid] = (o_side, o_price, o_size - cut)
        else:  # modify: same side, new price and size
            price = 100.0 - 0.25 * int(rng.integers(1, 8)) if o_side == "B" else 100.0 + 0.25 * int(rng.integers(1, 8))
            live[oid] = (o_side, price, size)
            rows.append(("M", o_side, price, size, oid, F_LAST, len(rows)))
    return rows, live


@given(order_flows())
def test_replay_equals_the_sum_of_resting_orders(flow):
    rows, live = flow
    state = replay(_records(rows), n_levels=10)
    top = state.rows[-1]
    for side, k in (("B", 0), ("A", 1)):
        levels = {}
        for o_side, price, size in live.values():
            if o_side == side:
                levels[price] = levels.get(price, 0) + size
        prices = sorted(levels, reverse=side == "B")[:10]
        got_px = top[10 * k : 10 * k + len(prices)]
        got_sz = top[20 + 10 * k : 20 + 10 * k + len(prices)]
        np.testing.assert_array_equal(got_px, prices)
        np.testing.assert_array_equal(got_sz, [levels[p] for p in prices])
        assert np.isnan(top[10 * k + len(prices) : 10 * (k + 1)]).all()
    assert state.counts["unknown_order"] == 0 and state.counts["overfilled_level"] == 0


# ---------------------------------------------------------------- files cut short, records the replay cannot apply


def _dbn(path, rows, compress=False):
    """An MBO DBN file of ``rows`` (action, side, price, size, order id, flags), one per microsecond."""
    import databento_dbn as dbn

    metadata = dbn.Metadata(dataset="GLBX.MDP3", start=1_700_000_000_000_000_000, stype_in=dbn.SType.RAW_SYMBOL,
                            stype_out=dbn.SType.INSTRUMENT_ID, schema=dbn.Schema.MBO, symbols=[], partial=[],
                            not_found=[], mappings=[])  # fmt: skip
    body = b""
    for k, (action, side, price, size, oid, flags) in enumerate(rows):
        ts = 1_700_000_000_000_000_000 + 1000 * k
        body += bytes(dbn.MBOMsg(publisher_id=1, instrument_id=7, ts_event=ts, order_id=oid, price=round(price * 1e9),
                                 size=size, action=dbn.Action(action), side=dbn.Side(side), ts_recv=ts, flags=flags,
                                 sequence=k))  # fmt: skip
    data = metadata.encode() + body
    if compress:
        import zstandard

        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def _flow(n=40):
    rows = [("A", "B", 100.0, 5, 1, F_LAST), ("A", "A", 100.25, 5, 2, F_LAST)]
    for k in range(n):
        rows.append(("A", "B" if k % 2 else "A", 99.75 if k % 2 else 100.5, 1 + k % 3, 10 + k, F_LAST))
    return rows


@pytest.mark.parametrize("compress", [False, True])
def test_a_truncated_dbn_file_is_refused(tmp_path, compress):
    whole = _dbn(tmp_path / ("whole.dbn" + (".zst" if compress else "")), _flow(), compress)
    assert len(cs.read_book(whole)) > 0
    data = whole.read_bytes()
    cut = tmp_path / ("cut.dbn" + (".zst" if compress else ""))
    cut.write_bytes(data[: len(data) - (9 if compress else 30)])  # mid-record / mid-frame
    with pytest.raises(cs.DataError, match="cut.dbn(.zst)? is truncated"):
        cs.read_book(cut)


def test_unknown_actions_sides_and_orphans_are_counted_and_warned(tmp_path):
    rows = _flow(6) + [("C", "B", 99.0, 1, 999, F_LAST), ("M", "A", 101.0, 2, 998, F_LAST), ("A", "N", 99.5, 3, 50, F_LAST)]
    path = _dbn(tmp_path / "odd.dbn", rows)
    data = bytearray(path.read_bytes())
    # Overwrite the action byte (offset 38 of a 56-byte MBO record) of the third record with 'X'.
    third = len(data) - (len(rows) - 2) * 56
    assert data[third + 38] == ord("A")
    data[third + 38] = ord("X")
    path.write_bytes(bytes(data))
    book = cs.read_book(path)
    counts = book.meta["counts"]
    assert (counts["unknown_action"], counts["unknown_side"], counts["unknown_order"], counts["modify_as_add"]) == (1, 1, 1, 1)
    warning = " ".join(book.report.warnings)
    for text in ("1 with an unknown action", "1 with an unknown side", "1 cancels of unknown orders",
                 "1 modifies of unknown orders"):  # fmt: skip
        assert text in warning
