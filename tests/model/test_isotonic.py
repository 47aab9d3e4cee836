"""The compiled weighted PAVA behind ``convexify(method="slopes-isotonic")`` against scipy's."""

import numpy as np
import pytest
import reference_isotonic
from hypothesis import given
from hypothesis import strategies as st

from convexsched import InvalidInputError, convexify
from convexsched.model.convexify import isotonic_rows

# Few distinct values make ties and equal-mean blocks common.
TIED = st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
ANY = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
WEIGHT = st.one_of(st.sampled_from([0.0, 1.0, 0.25, 2.0]), st.floats(1e-3, 1e3))


@st.composite
def rows(draw):
    """(values (N, G), weights (G,)): random, tied, constant, decreasing, single-column rows."""
    g = draw(st.integers(1, 40))
    n = draw(st.integers(1, 5))
    kind = draw(st.sampled_from(["any", "tied", "constant", "decreasing", "increasing"]))
    element = TIED if kind == "tied" else ANY
    values = np.array(draw(st.lists(st.lists(element, min_size=g, max_size=g), min_size=n, max_size=n)))
    if kind == "constant":
        values[:] = values[:, :1]
    elif kind == "decreasing":
        values = -np.sort(values, axis=1)
    elif kind == "increasing":
        values = np.sort(values, axis=1)
    weights = np.array(draw(st.lists(WEIGHT, min_size=g, max_size=g)))
    if draw(st.booleans()):
        weights = np.maximum(weights, 1e-3)  # the positive weights scipy takes, as convexify has
    return values, weights


def assert_matches_scipy(values, weights):
    fitted = isotonic_rows(values, weights)
    reference = reference_isotonic.isotonic_rows(values, weights)
    assert fitted.shape == values.shape
    assert (np.diff(fitted, axis=1) >= 0).all()
    scale = np.abs(values).max(axis=1, keepdims=True)
    positive = weights > 0
    np.testing.assert_allclose(
        fitted[:, positive], reference[:, positive], rtol=1e-12, atol=0.0 if not scale.any() else 1e-12 * float(scale.max())
    )
    return fitted


@given(data=rows())
def test_kernel_matches_scipy_pava(data):
    # Zero-weight points are left out of the comparison; monotonicity (checked) puts each
    # between its neighbours' fits.
    assert_matches_scipy(*data)


@pytest.mark.parametrize(
    ("values", "weights", "expected"),
    [
        ([[3.0, 1.0, 2.0]], [1.0, 1.0, 1.0], [[2.0, 2.0, 2.0]]),
        ([[3.0, 1.0, 2.0]], [1.0, 3.0, 1.0], [[1.5, 1.5, 2.0]]),
        ([[5.0]], [2.0], [[5.0]]),
        ([[1.0, 1.0, 1.0]], [1.0, 2.0, 3.0], [[1.0, 1.0, 1.0]]),
        ([[4.0, 3.0, 2.0, 1.0]], [1.0, 1.0, 1.0, 1.0], [[2.5, 2.5, 2.5, 2.5]]),
        # The zero-weight 9 pools with the 1 after it and takes its value; the fit is scipy's on [0, 1].
        ([[0.0, 9.0, 1.0]], [1.0, 0.0, 1.0], [[0.0, 1.0, 1.0]]),
        ([[2.0, 1.0]], [0.0, 0.0], [[1.0, 1.0]]),
    ],
)
def test_small_cases_by_hand(values, weights, expected):
    np.testing.assert_allclose(isotonic_rows(np.array(values), np.array(weights)), expected, rtol=1e-15)


def test_empty_and_non_contiguous_input():
    assert isotonic_rows(np.empty((0, 3)), np.ones(3)).shape == (0, 3)
    values = np.arange(24.0)[::-1].reshape(4, 6)[:, ::2]  # a strided view
    np.testing.assert_allclose(isotonic_rows(values, np.ones(3)), reference_isotonic.isotonic_rows(values, np.ones(3)))


@pytest.mark.parametrize(
    ("values", "weights", "match"),
    [
        (np.zeros((2, 3)), np.ones(2), "one weight per column"),
        (np.zeros(3), np.ones(3), "one weight per column"),
        (np.zeros((1, 2)), np.array([1.0, -1.0]), ">= 0"),
        (np.zeros((1, 2)), np.array([1.0, np.inf]), ">= 0"),
    ],
)
def test_bad_input_is_rejected(values, weights, match):
    with pytest.raises(InvalidInputError, match=match):
        isotonic_rows(values, weights)


@given(seed=st.integers(0, 2**32 - 1), g=st.integers(2, 40), noise=st.sampled_from([0.0, 0.01, 1.0, 50.0]))
def test_convexify_is_unchanged_from_the_scipy_loop(seed, g, noise):
    # slopes-isotonic ran scipy's PAVA row by row before 0.3.0: same curves to rounding.
    rng = np.random.default_rng(seed)
    sizes = np.concatenate([[0.0], np.cumsum(rng.uniform(0.1, 3.0, g - 1))])
    values = rng.uniform(0, 2, (5, 1)) * sizes + rng.uniform(0, 1, (5, 1)) * sizes**2
    values += noise * rng.standard_normal(values.shape)
    values[:, 0] = 0.0
    widths = np.diff(sizes)
    before = np.maximum(reference_isotonic.isotonic_rows(np.diff(values, axis=1) / widths, widths), 0.0)
    curves, _ = convexify(sizes, values)
    np.testing.assert_allclose(curves.slopes, before, rtol=1e-12, atol=1e-12 * np.abs(before).max())
