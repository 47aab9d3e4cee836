"""The executor's book-walk curves and its depletion-and-resilience model."""

import numpy as np
import pytest

from convexsched import BookExecutor, synthetic_book
from convexsched.optimize.weighted import WeightedBuckets

FREQ = "10min"


@pytest.fixture(scope="module")
def book():
    return synthetic_book(3)


def test_walk_curve_prices_exactly_what_fill_charges(book):
    executor = BookExecutor(book, freq=FREQ)
    slopes, widths, gamma = executor.walk_curve(7)
    curve = WeightedBuckets.build(slopes[None], widths[None], gamma=[gamma])
    for shares in (1.0, 0.3 * widths.sum(), widths.sum(), 2.5 * widths.sum()):
        _, cost, beyond = executor.fill(7, shares)
        assert cost == pytest.approx(curve.value(np.array([shares])), rel=1e-12)
        assert beyond == (shares > widths.sum())


def test_without_resilience_every_bucket_is_fresh(book):
    executor = BookExecutor(book, freq=FREQ)
    before = executor.walk_curve(8)[1]
    executor.fill(7, 5 * executor.depth.iloc[7])
    np.testing.assert_array_equal(executor.walk_curve(8)[1], before)


def test_consumed_levels_come_back_with_the_half_life(book):
    executor = BookExecutor(book, freq="1min", half_life=600.0)
    fresh = BookExecutor(book, freq="1min")
    # Two consecutive minutes whose best ask is the same price, so the levels overlap.
    best = executor._price[executor.rows, 0]
    i = int(np.flatnonzero(best[1:] == best[:-1])[0])
    r7, r8 = executor.rows[i], executor.rows[i + 1]
    prices7 = executor._price[r7]
    taken = executor.depth.iloc[i] * 0.6
    executor.fill(i, taken)
    after = executor.walk_curve(i + 1)[1]
    raw = fresh.walk_curve(i + 1)[1]
    # Expected: per level of the next minute, what this one took at that price, decayed over the gap.
    consumed = np.diff(np.minimum(np.cumsum(fresh.walk_curve(i)[1]), taken), prepend=0.0)
    decay = 2.0 ** (-(executor._seconds[r8] - executor._seconds[r7]) / 600.0)
    held = {round(p / book.tick_size): c * decay for p, c in zip(prices7, consumed) if c > 0}
    expected = [max(q - held.get(round(p / book.tick_size), 0.0), 0.0) for p, q in zip(executor._price[r8], raw)]
    np.testing.assert_allclose(after, expected)
    assert after.sum() < raw.sum()
    executor.reset()
    np.testing.assert_array_equal(executor.walk_curve(i + 1)[1], raw)


def test_resilience_makes_hitting_the_same_book_dearer(book):
    total = 40_000.0
    costs = []
    for half_life in (0.0, 120.0):
        executor = BookExecutor(book, freq=FREQ, half_life=half_life)
        costs.append(sum(executor.fill(i, total / len(executor))[1] for i in range(len(executor))))
    assert costs[1] > costs[0]
