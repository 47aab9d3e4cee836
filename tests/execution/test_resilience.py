"""Resilience measured in the replay: a known decay, the fit, and no look-ahead in the weight."""

from __future__ import annotations

import numpy as np
import pytest

import convexsched as cs
from convexsched.data.events import ADD, CANCEL, Events
from convexsched.data.sessions import Sessions
from convexsched.errors import InvalidInputError
from convexsched.execution.resilience import Resilience, measure_resilience

DAY = np.datetime64("2024-01-02T10:00:00", "ns").astype(np.int64)


def events(rows):
    rows = sorted(rows, key=lambda r: r[0])
    t = np.array([DAY + int(r[0] * 1e9) for r in rows], np.int64)
    kind, order, side, price, qty = (np.array(c) for c in zip(*[r[1:] for r in rows]))
    return Events(
        time=t,
        kind=kind.astype(np.int8),
        order=order.astype(np.int64),
        side=side.astype(np.int8),
        price=price.astype(np.int64),
        qty=qty.astype(float),
        aggressor=np.zeros(len(t), np.int8),
        symbol="T",
        tick_size=0.01,
        sessions=Sessions((("10:00", "10:20"),), "UTC"),
    )


def test_the_excess_lasts_until_the_tape_removes_what_we_took():
    # Asks: 100 at 101 (order 1), 1000 at 103 (order 2). The feed cancels order 1 at 10:00:45
    # and a fresh 100 arrive at 101 (order 3): from then on the book is whole again.
    book = events(
        [
            (-2, ADD, 0, 1, 99, 1000),
            (-1, ADD, 1, -1, 101, 100),
            (-1, ADD, 2, -1, 103, 1000),
            (45, CANCEL, 1, -1, 101, np.inf),
            (45.5, ADD, 3, -1, 101, 100),
        ]
    )
    executor = cs.ReplayExecutor(book, "buy")
    measured = measure_resilience(executor, 100, 100, every=600, delays=(0, 20, 40, 60, 120))
    first = measured.excess[0]
    # Before 45 s the probe of 100 must walk to 103 (2 ticks more): 100 * 0.02 = 2.0 CNY.
    assert first[:3] == pytest.approx([2.0, 2.0, 2.0])
    assert first[3:] == pytest.approx([0.0, 0.0])


def test_the_fit_recovers_an_exponential_decay_and_its_smoothing_weight():
    delays = np.array([0.0, 30, 60, 120, 240])
    truth_h, e0 = 90.0, 4.0
    excess = np.tile(e0 * 2.0 ** (-delays / truth_h), (3, 1))
    measured = Resilience(delays=delays, excess=excess, ends=np.array([10, 20, 30]), size=200.0, probe=100.0, bucket_seconds=60.0)
    half_life, strength = measured.fit()
    assert half_life == pytest.approx(truth_h) and strength == pytest.approx(e0 / (200 * 100))
    decay = 2.0 ** (60 / truth_h)
    assert measured.rho() == pytest.approx(strength * (decay + 1) / (decay - 1))
    term = measured.transient()  # the same propagator as an objective term, half-life in buckets
    assert term.half_life == pytest.approx(truth_h / 60) and term.strength == pytest.approx(strength)
    # A slice q then a probe p one window-delay d later pay k q p 2^(-d/h) extra: the fit's model.
    x = np.array([200.0, 0.0, 100.0])
    cross = term.value(x) - term.value(x * [1, 0, 0]) - term.value(x * [0, 0, 1])
    assert cross == pytest.approx(e0 * 2.0 ** (-120 / truth_h))
    flat = Resilience(delays=delays, excess=np.zeros((1, 5)), ends=np.array([10]), size=1.0, probe=1.0, bucket_seconds=60.0)
    assert flat.transient() is None and flat.rho() == 0.0


def test_a_decision_uses_only_windows_that_ended_before_it():
    delays = np.array([0.0, 60.0])
    excess = np.array([[1.0, 0.5], [100.0, 1.0]])
    measured = Resilience(delays=delays, excess=excess, ends=np.array([100, 200]), size=1.0, probe=1.0, bucket_seconds=60.0)
    half_life, strength = measured.fit(before=100)  # no window has ended yet
    assert np.isnan(half_life) and strength == 0.0
    assert measured.fit(before=150) == pytest.approx((60.0, 1.0))
    assert measured.fit(before=250)[1] != pytest.approx(1.0)


def test_bad_measurement_options_are_errors():
    book = events([(-2, ADD, 0, 1, 99, 1000), (-1, ADD, 1, -1, 101, 100)])
    executor = cs.ReplayExecutor(book, "buy")
    with pytest.raises(InvalidInputError, match="size"):
        measure_resilience(executor, 0)
    with pytest.raises(InvalidInputError, match="every"):
        measure_resilience(executor, 100, every=60, delays=(0, 60))
    with pytest.raises(InvalidInputError, match="delays"):
        measure_resilience(executor, 100, delays=(10, 5))


def test_the_footprint_option_needs_an_event_replay():
    horizon = cs.ScenarioHorizon(footprint=True)
    with pytest.raises(InvalidInputError, match="ReplayExecutor"):
        horizon.run(cs.synthetic_book(seed=1), 10_000)
