"""Convexifiers: convex, nondecreasing output through 0, honest deviation reports."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convexsched import CostCurves, InvalidInputError, convexify
from convexsched.model.convexify import CONVEXIFY_METHODS, convex_regression_cvxpy


@st.composite
def noisy_curves(draw):
    """Noisy convex costs on a random grid: (sizes (G,), values (N, G) with values[:, 0] = 0)."""
    n = draw(st.integers(1, 6))
    g = draw(st.integers(2, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    sizes = np.concatenate([[0.0], np.cumsum(rng.uniform(0.1, 3.0, g - 1))])
    slope = rng.uniform(0, 2, (n, 1))
    curvature = rng.uniform(0, 1, (n, 1))
    noise = draw(st.sampled_from([0.0, 0.01, 1.0, 50.0]))
    values = slope * sizes + curvature * sizes**2 + noise * rng.standard_normal((n, g))
    values[:, 0] = 0.0
    return sizes, values


def brute_force_hull(sizes, row):
    """Greatest convex minorant by its definition: min over chords (i <= u <= j) through x_u."""
    g = len(sizes)
    hull = row.copy()
    for u in range(g):
        for i in range(u + 1):
            for j in range(u, g):
                if i < j:
                    t = (sizes[u] - sizes[i]) / (sizes[j] - sizes[i])
                    hull[u] = min(hull[u], (1 - t) * row[i] + t * row[j])
    return hull


def assert_valid(curves, sizes, values):
    """g(0) = 0, slopes >= 0 and nondecreasing, breakpoints on the grid."""
    assert isinstance(curves, CostCurves)
    assert curves.slopes.shape == (values.shape[0], len(sizes) - 1)
    np.testing.assert_allclose(curves.breakpoints, np.broadcast_to(sizes, values.shape), rtol=1e-12)
    assert (curves.breakpoint_values[:, 0] == 0).all()
    assert (curves.slopes >= 0).all()
    drops = np.diff(curves.slopes, axis=1)
    assert (drops >= -1e-9 * np.maximum(np.abs(curves.slopes[:, 1:]), 1.0)).all()
    # Rebuilding from the grid runs CostCurves' own convexity check.
    CostCurves.from_grid(sizes, curves.breakpoint_values)


@pytest.mark.parametrize("method", CONVEXIFY_METHODS)
@given(data=noisy_curves())
def test_every_method_returns_convex_nondecreasing_curves(method, data):
    sizes, values = data
    curves, report = convexify(sizes, values, method=method)
    assert_valid(curves, sizes, values)
    deviation = curves.breakpoint_values - values
    np.testing.assert_allclose(report.per_bucket["l2"], np.linalg.norm(deviation, axis=1), atol=1e-9)
    np.testing.assert_allclose(report.per_bucket["max"], np.abs(deviation).max(axis=1), atol=1e-9)
    assert report.max == pytest.approx(np.abs(deviation).max(), abs=1e-9)
    assert report.method == method


@given(data=noisy_curves())
def test_isotonic_slopes_equal_the_hull(data):
    # Width-weighted PAVA on slopes = slopes of the greatest convex minorant (Barlow et al.).
    sizes, values = data
    by_pava, _ = convexify(sizes, values, method="slopes-isotonic")
    by_hull, _ = convexify(sizes, values, method="hull")
    scale = max(np.abs(by_hull.slopes).max(), 1.0)
    np.testing.assert_allclose(by_pava.slopes, by_hull.slopes, atol=1e-9 * scale)


@given(data=noisy_curves())
def test_hull_is_the_greatest_convex_minorant(data):
    sizes, values = data
    curves, report = convexify(sizes, values, method="hull")
    fitted = curves.breakpoint_values
    for row in range(len(values)):
        hull = brute_force_hull(sizes, values[row])
        if report.per_bucket["clipped"].iloc[row] == 0:
            scale = max(np.abs(values[row]).max(), 1.0)
            np.testing.assert_allclose(fitted[row], hull, atol=1e-9 * scale)
            assert (fitted[row] <= values[row] + 1e-9 * scale).all()
            # It touches the data at its vertices: both ends and every kink.
            kinks = np.flatnonzero(np.diff(curves.slopes[row]) > 1e-9 * scale) + 1
            touching = np.concatenate([[0, len(sizes) - 1], kinks])
            np.testing.assert_allclose(fitted[row, touching], values[row, touching], atol=1e-9 * scale)
        else:
            # Clipping raises the negative-slope part to 0, so only g(0) = 0 touches for sure.
            assert (fitted[row] >= np.minimum(hull, 0) - 1e-9).all()


@given(data=noisy_curves())
def test_convex_regression_moves_predictions_least(data):
    # It is the L2 projection onto the set every other method's output lies in.
    sizes, values = data
    _, best = convexify(sizes, values, method="convex-regression")
    for method in ("slopes-isotonic", "isotonic", "hull"):
        _, other = convexify(sizes, values, method=method)
        assert (best.per_bucket["l2"] <= other.per_bucket["l2"] * (1 + 1e-7) + 1e-9).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_convex_regression_matches_a_plain_cvxpy_solve(seed):
    rng = np.random.default_rng(seed)
    sizes = np.concatenate([[0.0], np.cumsum(rng.uniform(50, 150, 14))])
    values = 0.01 * sizes + 2e-5 * sizes**2 + rng.normal(0, 1.0, (3, 15))
    values[:, 0] = 0.0
    values[2] = -values[2]  # a decreasing bucket: the s_1 >= 0 constraint binds
    curves, _ = convexify(sizes, values, method="convex-regression")
    reference = convex_regression_cvxpy(sizes, values)
    np.testing.assert_allclose(curves.breakpoint_values, reference, atol=1e-5 * np.abs(values).max())


def test_value_isotonic_is_pava_on_values_then_hull():
    sizes = np.arange(5.0)
    values = np.array([0.0, 3.0, 1.0, 4.0, 4.0])
    # PAVA pools 3, 1 -> 2, 2; the hull of (0, 2, 2, 4, 4) is the chord 0 -> 4 at slope 1.
    curves, report = convexify(sizes, values, method="isotonic")
    np.testing.assert_allclose(curves.breakpoint_values[0], [0, 1, 2, 3, 4])
    assert report.max == pytest.approx(2.0)


@pytest.mark.parametrize("method", CONVEXIFY_METHODS)
def test_convex_increasing_input_is_left_alone(method):
    sizes = np.linspace(0, 1000, 30)
    values = np.vstack([0.02 * sizes + 1e-5 * sizes**2, 0.5 * sizes])
    curves, report = convexify(sizes, values, method=method, index=pd.Index(["a", "b"]))
    np.testing.assert_allclose(curves.breakpoint_values, values, rtol=1e-7, atol=1e-9)
    assert report.l2 == pytest.approx(0.0, abs=1e-6)
    assert list(report.per_bucket.index) == ["a", "b"]
    assert list(curves.index) == ["a", "b"]


@pytest.mark.parametrize("method", CONVEXIFY_METHODS)
def test_decreasing_costs_are_clipped_and_reported(method):
    sizes = np.arange(6.0)
    values = np.array([[0.0, -1.0, -2.0, -2.5, -2.0, 0.0], [0.0, 1, 2, 3, 4, 5]])
    curves, report = convexify(sizes, values, method=method)
    assert (curves.slopes >= 0).all()
    if method == "convex-regression":
        assert report.per_bucket["clipped"].sum() == 0  # s_1 >= 0 is a constraint there
    else:
        assert report.per_bucket["clipped"].iloc[0] > 0
    assert report.per_bucket["clipped"].iloc[1] == 0
    assert "clipped" in str(report)


@pytest.mark.parametrize(
    ("sizes", "values", "match"),
    [
        ([1.0, 2.0], [[0.0, 1.0]], "start at 0"),
        ([0.0, 2.0, 1.0], [[0.0, 1.0, 2.0]], "strictly increasing"),
        ([0.0, 1.0], [[0.0, np.nan]], "NaN or inf"),
        ([0.0, 1.0], [[0.5, 1.0]], "g\\(0\\) = 0"),
        ([0.0, 1.0, 2.0], [[0.0, 1.0]], "do not match"),
        ([0.0], [[0.0]], "at least two"),
        ([[0.0, 1.0]], [[0.0, 1.0]], "one shared 1-D grid"),
    ],
)
def test_bad_input_is_rejected_clearly(sizes, values, match):
    with pytest.raises(InvalidInputError, match=match):
        convexify(sizes, values)


def test_unknown_method_and_bad_index():
    with pytest.raises(InvalidInputError, match="unknown convexify method"):
        convexify([0.0, 1.0], [0.0, 1.0], method="spline")
    with pytest.raises(InvalidInputError, match="index has 2 labels"):
        convexify([0.0, 1.0], [0.0, 1.0], index=["a", "b"])
