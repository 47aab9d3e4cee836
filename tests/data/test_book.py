"""Loaders on the real files of ../shared/data, and the drop report on deliberately bad input."""

import numpy as np
import pandas as pd
import pytest

import convexsched as cs
from convexsched.data.book import DROP_REASONS, book_columns, clean_book, infer_tick_size

TICK_ZIP = "cn-equity-l2-dolphindb/tick.zip"
LOBSTER = "lobster-aapl-2012-head/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
LOBSTER_MSG = "lobster-aapl-2012-head/AAPL_2012-06-21_34200000_57600000_message_10.csv"
DBN = "databento-fixtures/current/{}/test_data.{}.dbn.zst"

# Rows per symbol in tick.zip (PROVENANCE.md) and its continuous-trading rows (TradingPhaseCode 3).
TICK_ROWS = {"000400.SZ": 4921, "300122.SZ": 4906, "300274.SZ": 4919, "300288.SZ": 3423, "300918.SZ": 2811}
TICK_CONTINUOUS = {
    "000400.SZ": 4739,
    "300122.SZ": 4734,
    "300274.SZ": 4740,
    "300288.SZ": 3277,
    "300918.SZ": 2686,
}


def assert_clean(book):
    """Invariants every loaded book must satisfy."""
    f = book.frame
    r = book.report
    assert r.rows_read == r.rows_kept + sum(r.dropped.values())
    assert r.rows_kept == len(f)
    assert set(r.dropped) == set(DROP_REASONS)
    assert list(f.columns[: 4 * book.n_levels]) == book_columns(book.n_levels)
    assert all(f[c].dtype == np.float64 for c in f.columns)
    assert f.index.tz is not None
    assert f.index.is_monotonic_increasing and f.index.is_unique
    if len(f):
        assert (f["ask_px_00"] > f["bid_px_00"]).all()
        px = f.filter(regex="_px_").to_numpy()
        on_grid = px[np.isfinite(px)] / book.tick_size
        np.testing.assert_allclose(on_grid, np.rint(on_grid), atol=1e-6)
        bids = f.filter(regex="bid_px_").to_numpy()
        asks = f.filter(regex="ask_px_").to_numpy()
        with np.errstate(invalid="ignore"):
            assert not (np.diff(bids, axis=1) >= 0).any()
            assert not (np.diff(asks, axis=1) <= 0).any()
        # Empty levels carry no size.
        sizes = f.filter(regex="_sz_").to_numpy()
        assert (sizes[np.isnan(px)] == 0).all()


@pytest.fixture(scope="module")
def tick_books(shared_data):
    return cs.read_books(shared_data / TICK_ZIP)


# ---------------------------------------------------------------- tick.zip (SZSE Level-2)


def test_tick_zip_has_the_five_stocks_with_expected_rows(tick_books):
    assert sorted(tick_books) == sorted(TICK_ROWS)
    for symbol, book in tick_books.items():
        assert book.report.rows_read == TICK_ROWS[symbol]
        assert book.report.rows_kept == TICK_CONTINUOUS[symbol]
        assert book.report.dropped["non_trading_phase"] == TICK_ROWS[symbol] - TICK_CONTINUOUS[symbol]
        assert_clean(book)


def test_tick_zip_metadata(tick_books):
    book = tick_books["300274.SZ"]
    assert book.tick_size == 0.01 and book.n_levels == 10
    assert str(book.tz) == "Asia/Shanghai"
    assert book.sessions == cs.CN_EQUITY
    assert book.meta["preset"] == "cn_l2"
    times = book.frame.index
    assert times.min() >= pd.Timestamp("2022-06-01 09:30", tz="Asia/Shanghai")
    assert times.max() <= pd.Timestamp("2022-06-01 14:57", tz="Asia/Shanghai")
    lunch = (times.time > pd.Timestamp("11:30").time()) & (times.time < pd.Timestamp("13:00").time())
    assert not lunch.any()


def test_tick_zip_prices_are_rounded_to_the_grid(tick_books):
    # The file stores 19.379999999999998-style artefacts; the frame must hold the 2-decimal value.
    px = tick_books["000400.SZ"].frame.filter(regex="_px_").to_numpy()
    np.testing.assert_array_equal(px, np.round(px, 2))


def test_tick_zip_traded_volume_is_the_difference_of_cumulative_volume(shared_data, tick_books):
    raw = pd.read_csv(shared_data / TICK_ZIP, usecols=["SecurityID", "MDTime", "TotalVolumeTrade"])
    raw = raw[raw.SecurityID == "300122.SZ"].reset_index(drop=True)
    book = tick_books["300122.SZ"]
    vol = book.traded_volume
    assert vol is not None and (vol >= 0).all()
    # Row 500 of the kept book vs the raw file's consecutive cumulative values at that time.
    t = vol.index[500]
    i = raw.index[raw.MDTime == t.strftime("%H:%M:%S.000")][0]
    assert vol.iloc[500] == raw.TotalVolumeTrade[i] - raw.TotalVolumeTrade[i - 1]
    # Continuous-trading volume excludes the auctions, so it is below the day's total.
    assert 0 < vol.sum() < raw.TotalVolumeTrade.iloc[-1]


def test_multi_symbol_file_needs_a_symbol(shared_data):
    with pytest.raises(cs.InvalidInputError, match="300918.SZ"):
        cs.read_book(shared_data / TICK_ZIP)
    with pytest.raises(cs.DataError, match="available"):
        cs.read_book(shared_data / TICK_ZIP, symbol="600000.SH")
    book = cs.read_book(shared_data / TICK_ZIP, symbol="300288.SZ", preset="cn_l2")
    assert book.symbol == "300288.SZ" and len(book) == TICK_CONTINUOUS["300288.SZ"]


# ---------------------------------------------------------------- LOBSTER


def test_lobster_head(shared_data):
    book = cs.read_book(shared_data / LOBSTER)
    assert book.symbol == "AAPL" and book.n_levels == 10 and book.tick_size == 0.01
    assert book.report.rows_read == 999
    # 109 messages share a timestamp with the next one: only the book after the last survives.
    assert book.report.dropped["duplicate_timestamp"] == 109 and book.report.out_of_order == 0
    assert book.report.rows_kept == 890
    assert_clean(book)
    first = book.frame.iloc[0]
    assert first.name == pd.Timestamp("2012-06-21 09:30:00.004241176", tz="America/New_York")
    assert (first.ask_px_00, first.ask_sz_00, first.bid_px_00, first.bid_sz_00) == (585.94, 200, 585.33, 18)
    assert (first.ask_px_09, first.bid_px_09) == (587.90, 584.27)


def test_lobster_ties_keep_the_last_book_and_all_the_volume(shared_data):
    book = cs.read_book(shared_data / LOBSTER_MSG)  # either file of the pair works
    msg = pd.read_csv(shared_data / LOBSTER_MSG, header=None)
    raw = pd.read_csv(shared_data / LOBSTER, header=None)
    tied = msg[0].duplicated(keep=False)
    last_of_tie = np.flatnonzero(tied & ~msg[0].duplicated(keep="last"))[0]
    t = pd.Timestamp("2012-06-21", tz="America/New_York") + pd.to_timedelta(msg[0][last_of_tie], unit="s")
    row = book.frame.iloc[book.frame.index.get_indexer([t], method="nearest")[0]]
    assert row.ask_px_00 == raw[0][last_of_tie] / 10000 and row.bid_sz_00 == raw[3][last_of_tie]
    executions = msg[msg[1].isin([4, 5])][3].sum()
    assert book.traded_volume.sum() == executions


def test_lobster_empty_level_markers(tmp_path, shared_data):
    raw = pd.read_csv(shared_data / LOBSTER, header=None).head(5)
    msg = pd.read_csv(shared_data / LOBSTER_MSG, header=None, dtype={0: str}).head(5)
    raw.iloc[0, 36:40] = [9999999999, 0, -9999999999, 0]  # level 10 empty on both sides
    raw.iloc[1, 0:4] = [9999999999, 0, 5853300, 18]  # no ask at all
    raw.iloc[2, 38:40] = [-9999999999, 50]  # a size at an undefined price
    name = "XYZ_2012-06-21_34200000_57600000_{}_10.csv"
    raw.to_csv(tmp_path / name.format("orderbook"), header=False, index=False)
    msg.to_csv(tmp_path / name.format("message"), header=False, index=False)
    book = cs.read_book(tmp_path / name.format("orderbook"))
    assert book.report.dropped["empty_side"] == 1
    assert book.report.dropped["undefined_price"] == 1
    assert book.report.rows_kept == 3
    assert np.isnan(book.frame.ask_px_09.iloc[0]) and book.frame.ask_sz_09.iloc[0] == 0
    assert_clean(book)


# ---------------------------------------------------------------- Databento


@pytest.mark.parametrize(
    ("dataset", "symbol", "read", "kept", "empty_side"),
    [
        ("GLBX.MDP3", "ESH1", 4, 4, 0),
        ("XNAS.ITCH", "NVDA", 4, 2, 2),  # the first two records have no ask yet
        ("NDEX.IMPACT", "TFM FMH0024!", 4, 4, 0),
        ("IFEU.IMPACT", "BRN FMJ0024!", 4, 0, 4),  # trade records with an empty book
        ("DBEQ.BASIC", "QQQ", 4, 0, 4),  # clear records, then an ask only
    ],
)
def test_databento_mbp10_fixtures(shared_data, dataset, symbol, read, kept, empty_side):
    book = cs.read_book(shared_data / DBN.format(dataset, "mbp-10"))
    assert book.symbol == symbol and book.n_levels == 10
    assert (book.report.rows_read, book.report.rows_kept) == (read, kept)
    assert book.report.dropped["empty_side"] == empty_side
    assert_clean(book)


def test_databento_definition_gives_the_tick_and_values_match(shared_data):
    definition = shared_data / DBN.format("GLBX.MDP3", "definition")
    book = cs.read_book(shared_data / DBN.format("GLBX.MDP3", "mbp-10"), definition=definition)
    assert book.tick_size == 0.25 and "inferred" not in " ".join(book.report.notes)
    first = book.frame.iloc[0]
    assert (first.bid_px_00, first.ask_px_00) == (3702.25, 3702.75)
    assert book.sessions is None and str(book.tz) == "UTC"
    ndex = cs.read_book(
        shared_data / DBN.format("NDEX.IMPACT", "mbp-10"),
        definition=shared_data / DBN.format("NDEX.IMPACT", "definition"),
    )
    assert ndex.tick_size == 0.005
    # 4 bid / 5 ask levels in the source: the rest stays empty, never invented.
    assert ndex.frame.bid_px_04.isna().all() and (ndex.frame.bid_sz_04 == 0).all()
    assert ndex.frame.ask_px_04.notna().all() and ndex.frame.ask_px_05.isna().all()


def test_databento_us_equity_gets_new_york_sessions(shared_data):
    book = cs.read_book(shared_data / DBN.format("XNAS.ITCH", "mbp-10"))
    assert book.sessions == cs.US_EQUITY and str(book.tz) == "America/New_York"
    assert book.frame.index[0].hour == 4  # pre-market 09:01 UTC


@pytest.mark.parametrize(
    ("path", "rows"),
    [
        ("databento-fixtures/legacy/test_data.mbp-10.dbn.zst", 4),
        ("databento-fixtures/dbn-repo/test_data.mbp-10.dbn", 2),
    ],
)
def test_databento_legacy_and_uncompressed_dbn(shared_data, path, rows):
    book = cs.read_book(shared_data / path)
    assert book.symbol == "ESH1" and book.report.rows_kept == rows
    assert (book.frame.bid_px_00.iloc[0], book.frame.ask_px_00.iloc[0]) == (3720.25, 3720.5)
    assert_clean(book)


def test_databento_early_csv_schema_sentinels(shared_data):
    # 2022 export (product_id, INT64_MAX for undefined prices); prices are format-only per PROVENANCE.
    for levels in (10, 5):
        book = cs.read_book(shared_data / f"databento-fixtures/legacy/test_data.mbp-{levels}.csv")
        assert book.n_levels == levels and book.symbol == "5482"
        assert book.report.rows_read == 2 and book.report.dropped["empty_side"] == 2


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # inside databento's to_parquet
@pytest.mark.parametrize("kind", ["csv_fixed", "csv_pretty", "parquet"])
def test_databento_exports_read_like_the_dbn(tmp_path, shared_data, kind):
    import databento

    src = shared_data / DBN.format("NDEX.IMPACT", "mbp-10")
    store = databento.DBNStore.from_file(src)
    out = tmp_path / ("export.parquet" if kind == "parquet" else "export.csv")
    if kind == "parquet":
        store.to_parquet(out)
    else:
        store.to_csv(out, pretty_px=kind == "csv_pretty", pretty_ts=kind == "csv_pretty")
    exported = cs.read_book(out)
    direct = cs.read_book(src)
    pd.testing.assert_frame_equal(exported.frame, direct.frame)
    assert exported.symbol == direct.symbol


# ---------------------------------------------------------------- bad input and generic reader


def _databento_csv(book, path, mutate=None):
    """Write ``book`` as a fixed-point Databento CSV export, after ``mutate(df)``."""
    f = book.frame.drop(columns="volume")
    df = pd.DataFrame({"ts_recv": f.index.asi8, "symbol": book.symbol})
    for c in f.columns:
        values = f[c].to_numpy()
        df[c] = np.rint(values * 1e9).astype(np.int64) if "_px_" in c else values.astype(np.int64)
    if mutate:
        df = mutate(df)
    df.to_csv(path, index=False)
    return path


def test_bad_rows_are_dropped_and_counted(tmp_path):
    good = cs.synthetic_book(seed=3)
    good.frame = good.frame.iloc[:20]

    def spoil(df):
        df.loc[1, "ask_px_00"] = df.loc[1, "bid_px_00"]  # locked
        df.loc[2, "ask_px_00"] = df.loc[2, "bid_px_00"] - 10_000_000  # crossed
        df.loc[3, "bid_px_00"] = np.iinfo(np.int64).max  # sentinel with a size
        df.loc[4, "ask_sz_03"] = np.nan  # missing size
        df.loc[5, ["bid_px_00", "bid_sz_00"]] = [np.iinfo(np.int64).max, 0]  # empty best bid
        df.loc[6, "ask_px_05"] = df.loc[6, "ask_px_04"]  # level 5 not above level 4
        df.loc[8, "ts_recv"] = df.loc[0, "ts_recv"]  # out of order, sorted next to row 0: a tie
        df.loc[10, "ts_recv"] = df.loc[9, "ts_recv"]  # tie: row 9 gives way to row 10
        df["bid_sz_02"] = df["bid_sz_02"].astype(float)
        df.loc[11, "bid_sz_02"] = np.inf  # an infinite size
        return df

    book = cs.read_book(_databento_csv(good, tmp_path / "bad.csv", spoil), format="databento")
    expected = {
        "crossed_or_locked": 2,
        "undefined_price": 1,
        "nan": 1,
        "non_finite": 1,
        "empty_side": 1,
        "unordered_levels": 1,
        "out_of_order": 0,
        "duplicate_timestamp": 2,
        "non_trading_phase": 0,
        "duplicate_row": 0,
    }
    assert book.report.dropped == expected
    assert book.report.rows_read == 20 and book.report.rows_kept == 11 and book.report.out_of_order == 1
    assert_clean(book)
    assert np.isfinite(cs.book_features(book)["depth"]).all()
    assert "crossed_or_locked" in str(book.report) and "read 20, kept 11" in str(book.report)
    assert "1 out-of-order rows sorted" in book.report.summary()


def test_shuffled_timestamps_are_sorted_by_default_or_dropped_on_request(tmp_path):
    good = cs.synthetic_book(seed=4)
    good.frame = good.frame.iloc[:50]
    path = _databento_csv(good, tmp_path / "x.csv", lambda df: df.sample(frac=1, random_state=1).reset_index(drop=True))
    shuffled = pd.read_csv(path)
    running_max = (shuffled.ts_recv >= shuffled.ts_recv.cummax()).sum()
    restored = cs.read_book(path, tz="America/New_York")
    assert restored.report.rows_kept == 50 and restored.report.out_of_order == 50 - running_max
    pd.testing.assert_frame_equal(restored.frame, good.frame.drop(columns="volume"), check_freq=False)
    dropped = cs.read_book(path, sort=False)
    # Kept rows are exactly the file's running maxima.
    assert dropped.report.rows_kept == running_max < 50
    assert dropped.report.dropped["out_of_order"] == 50 - running_max


def test_shuffled_mapped_file_keeps_its_traded_volume(tmp_path, shared_data):
    raw = pd.read_csv(shared_data / TICK_ZIP)
    raw = raw[raw.SecurityID == "300918.SZ"]
    raw.sample(frac=1, random_state=0).to_csv(tmp_path / "shuffled.csv", index=False)
    raw.to_csv(tmp_path / "ordered.csv", index=False)
    shuffled, ordered = cs.read_book(tmp_path / "shuffled.csv"), cs.read_book(tmp_path / "ordered.csv")
    assert shuffled.report.out_of_order > 2000 and shuffled.report.rows_kept == TICK_CONTINUOUS["300918.SZ"]
    pd.testing.assert_frame_equal(shuffled.frame, ordered.frame)


def test_naive_timestamps_without_a_zone_are_read_as_utc_with_a_warning(tmp_path, tick_books):
    frame = cs.synthetic_book(seed=0).frame.iloc[:20].tz_convert(None).reset_index()
    frame.to_csv(tmp_path / "naive.csv", index=False)
    book = cs.read_book(tmp_path / "naive.csv")
    assert str(book.tz) == "UTC" and "no time zone" in book.report.warnings[0]
    zoned = cs.read_book(tmp_path / "naive.csv", tz="America/New_York")
    assert str(zoned.tz) == "America/New_York" and zoned.report.warnings == []
    # Presets of a market carry its zone: no assumption to warn about.
    assert all(book.report.warnings == [] for book in tick_books.values())


def test_a_book_with_no_usable_row_names_the_reasons(shared_data):
    book = cs.read_book(shared_data / DBN.format("DBEQ.BASIC", "mbp-10"))
    with pytest.raises(cs.DataError, match=r"no usable rows for QQQ: read 4, dropped 4 empty_side"):
        cs.require_rows(book)


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda f, p: f.iloc[:0].to_csv(p, index=False), "holds no rows"),
        (lambda f, p: f.astype({"ask_sz_03": object}).assign(ask_sz_03="many").to_csv(p, index=False),
         "column 'ask_sz_03' must hold numbers; data row 1 has 'many'"),
    ],
)  # fmt: skip
def test_unreadable_table_contents_name_file_and_column(tmp_path, write, message):
    write(cs.synthetic_book(seed=0).frame.iloc[:5].reset_index(), tmp_path / "book.csv")
    with pytest.raises(cs.DataError, match=message):
        cs.read_books(tmp_path / "book.csv")


def test_truncated_archive_and_unknown_zone_are_named(tmp_path, shared_data):
    data = (shared_data / TICK_ZIP).read_bytes()
    (tmp_path / "tick.zip").write_bytes(data[: len(data) // 3])
    with pytest.raises(cs.DataError, match="tick.zip: the archive is truncated or corrupt"):
        cs.read_books(tmp_path / "tick.zip")
    with pytest.raises(cs.InvalidInputError, match="unknown time zone 'Mars/Base'"):
        cs.read_books(shared_data / TICK_ZIP, tz="Mars/Base")


def test_wide_preset_round_trips_a_book(tmp_path):
    book = cs.synthetic_book(seed=5)
    path = tmp_path / "book.parquet"
    book.frame.reset_index().assign(symbol="SYNTH").to_parquet(path)
    back = cs.read_book(path)  # preset detected from the columns
    assert back.meta["preset"] == "wide"
    pd.testing.assert_frame_equal(back.frame, book.frame, check_freq=False)


def test_custom_column_map(tmp_path):
    df = pd.DataFrame(
        {
            "time": ["2024-01-02 10:00:00", "2024-01-02 10:00:01", "2024-01-02 10:00:02"],
            "b1": [9.99, 9.98, 10.00],
            "a1": [10.01, 10.02, 10.00],
            "bq1": [100, 200, 300],
            "aq1": [150, 250, 350],
        }
    )
    df.to_csv(tmp_path / "mine.csv", index=False)
    cmap = cs.ColumnMap(
        bid_px="b{level}", ask_px="a{level}", bid_sz="bq{level}", ask_sz="aq{level}",
        time=("time",), level_base=1, n_levels=1, tz="Europe/London", tick_size=0.01,
    )  # fmt: skip
    book = cs.read_book(tmp_path / "mine.csv", columns=cmap)
    assert book.symbol == "mine" and book.n_levels == 1 and str(book.tz) == "Europe/London"
    assert book.report.dropped["crossed_or_locked"] == 1 and len(book) == 2


def test_loader_errors(tmp_path, shared_data):
    with pytest.raises(cs.DataError, match="no such file"):
        cs.read_book(tmp_path / "missing.dbn.zst")
    with pytest.raises(cs.InvalidInputError, match="unknown format"):
        cs.read_book(shared_data / LOBSTER, format="hdf5")
    with pytest.raises(cs.InvalidInputError, match="does not take"):
        cs.read_book(shared_data / LOBSTER, presett="x")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(cs.DataError, match="no preset"):
        cs.read_book(tmp_path / "other.csv")
    with pytest.raises(cs.DataError, match="not a LOBSTER"):
        cs.read_book(tmp_path / "other.csv", format="lobster")
    (tmp_path / "junk.dbn.zst").write_bytes(b"not dbn at all")
    with pytest.raises(cs.DataError, match="cannot read DBN"):
        cs.read_book(tmp_path / "junk.dbn.zst")


def test_clean_book_rejects_naive_timestamps():
    frame = cs.synthetic_book(seed=0).frame.iloc[:3]
    with pytest.raises(cs.DataError, match="tz-aware"):
        clean_book(frame.tz_localize(None), symbol="X", source="test")


def test_infer_tick_size():
    assert infer_tick_size(np.array([3720.25, 3720.5, 3719.75, np.nan])) == pytest.approx(0.25)
    assert infer_tick_size(np.array([27.52, 28.065])) == pytest.approx(0.005)


def test_load_report_must_add_up():
    with pytest.raises(cs.DataError, match="does not add up"):
        cs.LoadReport(rows_read=10, rows_kept=5, dropped={"nan": 4})


def test_sse_preset_reads_the_30_stock_panel(shared_data):
    books = cs.read_books(shared_data / "cn-equity-l2-dolphindb/20211201snapshot_30stocks.zip")
    assert len(books) == 30 and "600103" in books
    assert sum(b.report.rows_read for b in books.values()) == 32972
    assert all(b.meta["preset"] == "sse_l2" for b in books.values())
    for book in books.values():
        assert book.report.dropped["non_trading_phase"] > 0  # the 09:15-09:25 call auction
        assert_clean(book)


def test_databento_reads_close_their_files(shared_data):
    # DBNStore.from_file never closed its file: one ResourceWarning per MBP or MBO read.
    import gc
    import warnings

    es = shared_data / "es-futures-mbo-databento"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cs.read_books(es / "futures_mbp-1_2024-07-01T23-58_2024-07-02T00-02.dbn.zst")
        cs.read_books(es / "esh4-glbx-mdp3-20231224.mbo.dbn.zst")
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]
