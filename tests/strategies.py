"""Hypothesis strategies and small builders shared by the tests."""

import dataclasses

import numpy as np
from hypothesis import strategies as st

from convexsched import CostCurves


def tick_curves(rng, n, k, tick=0.01, zero_capacity=0.0, ties=False):
    """Random convex curves whose slopes sit on a tick grid (so ties are common)."""
    if ties:
        slopes = np.sort(rng.integers(1, 4, size=(n, k)), axis=1) * tick
    else:
        slopes = np.sort(rng.integers(1, 400, size=(n, k)), axis=1) * tick
    widths = rng.integers(0, 50, size=(n, k)).astype(float) * 100
    widths[rng.random(n) < zero_capacity] = 0.0
    return CostCurves(slopes, widths)


@st.composite
def problems(draw, max_n=60, max_k=12, min_n=1, min_k=1):
    """(curves, S) with N, K, fill fraction and seed drawn by hypothesis."""
    n = draw(st.integers(min_n, max_n))
    k = draw(st.integers(min_k, max_k))
    seed = draw(st.integers(0, 2**32 - 1))
    ties = draw(st.booleans())
    zero = draw(st.sampled_from([0.0, 0.2]))
    rng = np.random.default_rng(seed)
    curves = tick_curves(rng, n, k, ties=ties, zero_capacity=zero)
    capacity = curves.capacity.sum()
    fraction = draw(st.sampled_from([0.0, 0.05, 0.3, 0.77, 1.0]))
    return curves, float(np.round(fraction * capacity, 2))


def alter_after(book, row, seed):
    """A copy of ``book`` whose snapshots after position ``row`` are all different (still valid)."""
    frame = book.frame.copy()
    rng = np.random.default_rng(seed)
    later = np.arange(len(frame)) > row
    sizes = [c for c in frame.columns if "_sz_" in c]
    prices = [c for c in frame.columns if "_px_" in c]
    frame.loc[later, sizes] = frame.loc[later, sizes].to_numpy() * rng.uniform(0.1, 3.0, (later.sum(), len(sizes)))
    frame.loc[later, prices] = frame.loc[later, prices].to_numpy() + book.tick_size * rng.integers(-3, 4, (later.sum(), 1))
    return dataclasses.replace(book, frame=frame)
