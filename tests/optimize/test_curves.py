import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convexsched import CostCurves, InvalidInputError, NonConvexCurveError


def test_evaluate_and_capacity_by_hand():
    curves = CostCurves([[1.0, 2.0, 4.0]], [[10.0, 5.0, 5.0]])
    assert curves.capacity.tolist() == [20.0]
    # 10 shares at 1, then 3 at 2: 16.
    assert curves.evaluate(np.array([13.0]))[0] == pytest.approx(16.0)
    assert curves.evaluate(np.array([20.0]))[0] == pytest.approx(10 + 10 + 20)
    assert curves.evaluate(np.array([21.0]))[0] == np.inf


def test_subdifferential_at_breakpoints_and_ends():
    curves = CostCurves([[1.0, 2.0], [3.0, 3.0]], [[1.0, 1.0], [2.0, 0.0]])
    left, right = curves.slope_bounds(np.array([1.0, 0.0]))
    assert (left[0], right[0]) == (1.0, 2.0)
    assert (left[1], right[1]) == (-np.inf, 3.0)
    left, right = curves.slope_bounds(np.array([2.0, 1.0]))
    assert (left[0], right[0]) == (2.0, np.inf)
    assert (left[1], right[1]) == (3.0, 3.0)


def test_widths_broadcast_scalar_and_per_bucket():
    a = CostCurves([[1, 2], [3, 4]], 5.0)
    b = CostCurves([[1, 2], [3, 4]], [5.0, 5.0])
    assert np.array_equal(a.widths, b.widths)
    assert a.capacity.tolist() == [10.0, 10.0]


def test_from_grid_matches_forward_differences():
    sizes = np.array([0, 100, 200, 400.0])
    values = np.array([[0, 1, 3, 8.0]])
    curves = CostCurves.from_grid(sizes, values)
    assert curves.slopes[0].tolist() == pytest.approx([0.01, 0.02, 0.025])
    assert curves.evaluate(np.array([300.0]))[0] == pytest.approx(5.5)


def test_non_convex_input_names_the_bucket_and_the_fix():
    index = pd.date_range("2024-01-02 09:30", periods=2, freq="1min")
    with pytest.raises(NonConvexCurveError, match=r"bucket 1 \(2024-01-02 09:31:00\).*convexify"):
        CostCurves([[1, 2], [3, 2.5]], 1.0, index=index)


def test_zero_width_segments_do_not_break_convexity():
    curves = CostCurves([[5.0, 1.0, 2.0]], [[0.0, 1.0, 1.0]])
    assert curves.slopes[0].tolist() == [1.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "slopes, widths, message",
    [
        ([[1.0, np.nan]], 1.0, "NaN"),
        ([[1.0, 2.0]], [[1.0, -1.0]], "negative"),
        ([[1.0, 2.0]], [[1.0, 1.0, 1.0]], "do not match"),
        ([[1.0, np.inf]], 1.0, "inf"),
    ],
)
def test_bad_input_is_rejected(slopes, widths, message):
    with pytest.raises(InvalidInputError, match=message):
        CostCurves(slopes, widths)


def test_from_grid_requires_zero_cost_at_zero():
    with pytest.raises(InvalidInputError, match=r"g_i\(0\) must be 0"):
        CostCurves.from_grid([0, 1], [[1.0, 2.0]])


def test_window_slicing_keeps_the_index():
    index = pd.date_range("2024-01-02 09:30", periods=5, freq="1min")
    curves = CostCurves(np.ones((5, 2)), 1.0, index=index)
    window = curves[1:3]
    assert len(window) == 2 and window.index[0] == index[1]


def test_scaling_preserves_cost():
    curves = CostCurves([[1.0, 3.0]], [[2.0, 2.0]])
    scaled = curves.scaled(share_unit=4.0, cost_unit=10.0)
    assert scaled.evaluate(np.array([0.75]))[0] * 10 == pytest.approx(curves.evaluate(np.array([3.0]))[0])


@pytest.mark.parametrize("scale", [1e-10, 1.0, 1e6])
def test_convexity_is_checked_at_the_curve_s_own_scale(scale):
    # A penny token's 3e-10 then 1e-10 is as non-convex as 3 then 1.
    with pytest.raises(NonConvexCurveError, match="bucket 0 is not convex"):
        CostCurves([[3 * scale, scale]], 100.0)
    # Round-off far below the curve's scale is not non-convexity, and is rounded away.
    curves = CostCurves([[scale, scale * (1 - 1e-12)]], 100.0)
    assert np.all(np.diff(curves.slopes, axis=1) >= 0)


def test_negative_slopes_are_an_error_unless_asked_for():
    with pytest.raises(InvalidInputError, match=r"bucket 1 \(b\) has a negative slope -0.01"):
        CostCurves([[0.01, 0.02], [-0.01, 0.02]], 100.0, index=["a", "b"])
    with pytest.raises(InvalidInputError, match="negative slope"):
        CostCurves.from_grid([0, 100, 200], [[0.0, -1e-8, 1.0]])
    rebate = CostCurves([[-0.01, 0.02]], 100.0, allow_negative=True)
    assert rebate.slopes[0, 0] == -0.01


# ------------------------------------------------ the canonical (re-quote) path, issue 23
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 20), k=st.integers(1, 12), negative=st.booleans(), empty=st.booleans())
def test_canonical_input_is_stored_as_the_general_path_stores_it(seed, n, k, negative, empty):
    rng = np.random.default_rng(seed)
    slopes = np.sort(rng.integers(-3 if negative else 0, 6, size=(n, k)), axis=1) * 0.5
    widths = rng.integers(0, 3, size=(n, k)).astype(float)
    if empty:
        widths[0] = 0.0
    general = CostCurves(slopes, widths, allow_negative=negative)  # zero widths: canonicalized
    again = CostCurves(general.slopes, general.widths, allow_negative=negative)  # canonical now
    for name in ("slopes", "widths", "breakpoints", "breakpoint_values"):
        np.testing.assert_array_equal(getattr(again, name), getattr(general, name))
    np.testing.assert_array_equal(again.breakpoints[:, 1:], np.cumsum(general.widths, axis=1))
    np.testing.assert_array_equal(again.breakpoint_values[:, 1:], np.cumsum(general.slopes * general.widths, axis=1))


def test_canonical_input_is_copied_not_shared():
    slopes, widths = np.array([[1.0, 2.0]]), np.array([[1.0, 1.0]])
    curves = CostCurves(slopes, widths)
    slopes[0, 0], widths[0, 0] = 9.0, 5.0
    assert curves.slopes.tolist() == [[1.0, 2.0]] and curves.widths.tolist() == [[1.0, 1.0]]
    assert not curves.slopes.flags.writeable and slopes.flags.writeable


@pytest.mark.parametrize(
    "slopes, widths, error, message",
    [
        # Sorted rows that are not canonical still get the general path's specific error.
        ([[0.0, np.nan]], [[1.0, 1.0]], InvalidInputError, r"NaN or inf in bucket 0"),
        ([[1.0, 2.0]], [[1.0, -1.0]], InvalidInputError, "bucket 0 has a negative one"),
        ([[-1.0, 2.0]], [[1.0, 1.0]], InvalidInputError, "negative slope -1"),
        ([[1.0, 2.0], [3.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]], NonConvexCurveError, "bucket 1 is not convex"),
    ],
)
def test_bad_input_gets_the_same_errors(slopes, widths, error, message):
    with pytest.raises(error, match=message):
        CostCurves(slopes, widths)


def test_rounding_level_decreases_are_still_canonicalized():
    curves = CostCurves([[1.0, 1.0 - 1e-12, 2.0]], [[1.0, 1.0, 1.0]])
    assert curves.slopes.tolist() == [[1.0, 1.0, 2.0]]
