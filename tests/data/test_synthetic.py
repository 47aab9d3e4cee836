"""The synthetic default book: labelled, seeded, on the tick grid, with an intraday shape."""

import numpy as np
import pandas as pd
import pytest

import convexsched as cs


@pytest.fixture(scope="module")
def book():
    return cs.synthetic_book(seed=0)


def test_clearly_labelled_synthetic(book):
    assert book.symbol == "SYNTH" and book.synthetic and book.meta["synthetic"] is True
    assert "SYNTHETIC" in repr(book)


def test_default_day_shape_and_size(book):
    assert 5000 <= len(book) <= 8000 and book.n_levels == 10
    assert str(book.tz) == "America/New_York" and book.sessions == cs.US_EQUITY
    assert book.frame.index[0] == pd.Timestamp("2024-03-05 09:30", tz="America/New_York")
    assert book.frame.index[-1] < pd.Timestamp("2024-03-05 16:00", tz="America/New_York")
    assert book.report.rows_read == book.report.rows_kept == len(book)


def test_seeded(book):
    pd.testing.assert_frame_equal(cs.synthetic_book(seed=0).frame, book.frame)
    assert not cs.synthetic_book(seed=1).frame.equals(book.frame)


def test_on_tick_grid_and_never_crossed(book):
    px = book.frame.filter(regex="_px_").to_numpy() / book.tick_size
    np.testing.assert_allclose(px, np.rint(px), atol=1e-6)
    spread = book.frame.ask_px_00 - book.frame.bid_px_00
    assert (spread >= book.tick_size - 1e-9).all()
    assert (book.frame.filter(regex="_sz_").to_numpy() % 100 == 0).all()


def test_intraday_profile(book):
    bf = cs.bucket_features(book, "30min")
    # U-shaped spread: wider in the first and last half hour than at midday.
    midday = bf.spread.iloc[5:8].mean()
    assert bf.spread.iloc[0] > 1.5 * midday and bf.spread.iloc[-1] > midday
    # The book builds up through the day: thin at the open.
    assert bf.depth.iloc[0] < 0.8 * bf.depth.iloc[5:8].mean()
    assert bf.volume.iloc[0] > bf.volume.iloc[5:8].mean() and bf.volume.iloc[-1] > bf.volume.iloc[5:8].mean()


def test_volatility_clusters(book):
    r = np.abs(np.diff(np.log(cs.book_features(book).mid.to_numpy())))
    # Midday only, where the U-shaped profile is flat and cannot fake a correlation.
    r = r[1500:6000]
    r = r[r > 0]
    # Absolute returns stay correlated over a minute (clusters); with memoryless volatility
    # (vol_memory="3s") this correlation is ~0 +- 0.03.
    lag = 20
    assert np.corrcoef(r[:-lag], r[lag:])[0, 1] > 0.1


def test_invalid_arguments():
    with pytest.raises(cs.InvalidInputError):
        cs.synthetic_book(tick_size=0)
