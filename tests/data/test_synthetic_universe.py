"""The synthetic universe: calibrated on the real books, reproducible, and a Parquet dataset source."""

import numpy as np
import pandas as pd
import pytest

import convexsched as cs
from convexsched.data.universe import (
    CN_BOOKS,
    LIQUIDITY,
    LiquidityModel,
    book_liquidity,
    dataset_manifest,
    read_dataset_book,
    synthetic_universe,
    universe_day,
    write_book_dataset,
)
from convexsched.execution.executors import BookExecutor

FILES = ("cn-equity-l2-dolphindb/tick.zip", "cn-equity-l2-dolphindb/20211201snapshot_30stocks.zip")


@pytest.fixture(scope="module")
def real_books(shared_data):
    books = []
    for name in FILES:
        books += list(cs.read_books(shared_data / name).values())
    return books


def test_the_shipped_calibration_is_the_fit_on_the_35_real_books(real_books):
    model = LiquidityModel.fit(real_books)
    assert model.n_books == CN_BOOKS.n_books == 35
    np.testing.assert_allclose(model.mean, CN_BOOKS.mean, rtol=1e-9)
    np.testing.assert_allclose(model.cov, CN_BOOKS.cov, rtol=1e-9, atol=1e-12)


def test_synthetic_books_have_the_real_cross_section():
    universe = synthetic_universe(400, seed=3)
    # Orders of magnitude, as the real books (spread 1.6 decades, per-level size 3.4, volume 3).
    for name, decades in (("spread_bps", 1.5), ("level_size", 2.5), ("volume_per_minute", 2.5)):
        assert np.log10(universe[name].max() / universe[name].min()) >= decades, name
    day = universe_day(universe.iloc[:120])
    refit = LiquidityModel.fit([day.book(i) for i in range(120)])
    spread = np.sqrt(np.diag(CN_BOOKS.cov))
    # The books' own medians, measured like the real ones, land within a third of a standard
    # deviation of the calibration (sampling: 120 books), and their spread within 25%.
    assert np.all(np.abs(np.array(refit.mean) - CN_BOOKS.mean) <= spread / 3), (refit.mean, CN_BOOKS.mean)
    np.testing.assert_allclose(np.sqrt(np.diag(refit.cov)), spread, rtol=0.25)
    # Cheap stocks have wide spreads in bps and deep books (the real correlations' signs).
    correlation = np.corrcoef(np.log(pd.DataFrame([book_liquidity(day.book(i)) for i in range(120)])[list(LIQUIDITY)].T))
    assert correlation[0, 1] < -0.3 and correlation[0, 2] < -0.3


def test_a_symbols_day_does_not_depend_on_its_batch():
    universe = synthetic_universe(6, seed=1)
    whole, alone = universe_day(universe), universe_day(universe.iloc[4:5])
    np.testing.assert_array_equal(whole.ask_px[4], alone.ask_px[0])
    np.testing.assert_array_equal(whole.bid_sz[4], alone.bid_sz[0])
    assert not np.array_equal(universe_day(universe, "2024-03-06").ask_sz[4], whole.ask_sz[4])
    assert synthetic_universe(6, seed=1).equals(universe)


def test_day_curves_are_the_executors_walk_curves_and_the_book_is_clean():
    day = universe_day(synthetic_universe(3, seed=2))
    book = day.book(1)
    assert book.synthetic and len(book.frame) == 237 and book.report.rows_kept == 237
    executor = BookExecutor(book, "sell")
    slopes, widths, _ = executor.realized_curves()
    expected = day.curves(1, "sell")
    np.testing.assert_allclose(slopes, expected[0], atol=1e-9)
    np.testing.assert_array_equal(widths, expected[1])
    assert (np.diff(slopes, axis=1) > 0).all() and (widths >= 100).all()


def test_bad_universe_input_is_rejected():
    with pytest.raises(cs.InvalidInputError):
        synthetic_universe(0)
    with pytest.raises(cs.InvalidInputError, match="lacks columns"):
        universe_day(pd.DataFrame({"symbol": ["X"]}))


def test_a_parquet_dataset_round_trips_books(tmp_path):
    day = universe_day(synthetic_universe(3, seed=4), "2024-03-05")
    books = [day.book(i) for i in range(3)]
    root = write_book_dataset(books, tmp_path / "books")
    assert (root / "symbol=SYN00001" / "day=2024-03-05" / "part-0.parquet").is_file()
    keys = dataset_manifest(root, size={"SYN00000": 1_000.0})
    assert keys["symbol"].tolist() == ["SYN00000", "SYN00001", "SYN00002"]
    assert keys["size"].iloc[0] == 1_000.0 and keys["size"].iloc[1:].isna().all()
    back = read_dataset_book(root, "SYN00001", "2024-03-05")
    pd.testing.assert_frame_equal(back.frame, books[1].frame, check_freq=False, check_names=False)
    assert back.tick_size == books[1].tick_size and back.sessions == books[1].sessions
    with pytest.raises(cs.InvalidInputError, match="exists"):
        write_book_dataset(books[:1], root)
    with pytest.raises(cs.DataError, match="no rows for symbol 'NOPE'"):
        read_dataset_book(root, "NOPE")
