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


# ------------------------------------------------ the ndarray re-quote path and its stored arrays
def _is_canonical(slopes, widths, allow_negative):
    """Pure-numpy reference of the constructor's canonical test (``_canonical_row``), row by row."""
    if not (np.isfinite(slopes).all() and np.isfinite(widths).all() and (widths >= 0).all()):
        return False
    if not allow_negative and (slopes < 0).any():
        return False
    for s, w in zip(slopes, widths):
        if (np.diff(s) < 0).any():
            return False
        real = np.flatnonzero(w > 0)
        if real.size == 0:
            if (s != 0).any():
                return False
            continue
        # Every segment takes the slope of the last real one at or before it (the first real one
        # for the leading ones).
        source = np.maximum.accumulate(np.where(w > 0, np.arange(len(w)), -1))
        source[source < 0] = real[0]
        if not np.array_equal(s, s[source]):
            return False
    return True


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 11), k=st.integers(1, 9), negative=st.booleans())
def test_canonical_test_matches_the_numpy_reference(seed, n, k, negative):
    from convexsched.optimize import curves as module

    rng = np.random.default_rng(seed)
    slopes = np.sort(rng.integers(-2, 4, size=(n, k)), axis=1) * 0.5
    widths = rng.integers(0, 3, size=(n, k)).astype(float)
    if rng.random() < 0.5:  # canonical rows, then (sometimes) one entry spoiled
        general = CostCurves(slopes, widths, allow_negative=True)
        slopes, widths = np.array(general.slopes), np.array(general.widths)
    if rng.random() < 0.6:
        i, j = rng.integers(0, n), rng.integers(0, k)
        spoil = rng.integers(0, 5)
        if spoil == 0:
            slopes[i, j] = [np.nan, np.inf, -np.inf][rng.integers(0, 3)]
        elif spoil == 1:
            widths[i, j] = [-1.0, np.inf, np.nan][rng.integers(0, 3)]
        elif spoil == 2:
            slopes[i, j] += 0.5 * rng.choice([-1, 1])
        else:
            widths[i, j] = 0.0 if widths[i, j] > 0 else 1.0
    out = np.empty((n, k)), np.empty((n, k)), np.empty((n, k + 1))
    ok = module._canonical_rows(slopes, widths, negative, *out)
    assert ok == _is_canonical(slopes, widths, negative)
    if ok:
        np.testing.assert_array_equal(out[0], slopes)
        np.testing.assert_array_equal(out[1], widths)
        np.testing.assert_array_equal(out[2], np.hstack([np.zeros((n, 1)), np.cumsum(widths, axis=1)]))


@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 127, 128, 129, 136, 1000, 8191, 8192, 8193, 23_400, 100_003])
def test_total_capacity_is_numpys_sum_bit_for_bit(n):
    # The constructor sums the capacities as numpy does (pairwise), so that S = capacity.sum()
    # is exactly the total capacity everywhere (validate, the fast paths' S = capacity case).
    from convexsched.optimize import curves as module

    rng = np.random.default_rng(n)
    widths = rng.random((n, 3)) * 10.0 ** rng.uniform(-3, 6, (n, 1))
    slopes = np.sort(rng.random((n, 3)), axis=1)
    curves = CostCurves(slopes, widths)
    assert curves.total_capacity == curves.capacity.sum()
    assert module._pairwise_sum(np.ascontiguousarray(curves.capacity)) == curves.capacity.sum()
    general = CostCurves(slopes.tolist(), widths.tolist())  # the general path
    assert general.total_capacity == general.capacity.sum() == curves.total_capacity


def test_ndarray_input_is_copied_and_no_two_curves_share_storage():
    slopes = np.sort(np.random.default_rng(0).random((5, 4)), axis=1)
    widths = np.full((5, 4), 2.0)
    first, second = CostCurves(slopes, widths), CostCurves(slopes, widths)
    for name in ("slopes", "widths", "breakpoints", "breakpoint_values"):
        a, b = getattr(first, name), getattr(second, name)
        assert not np.shares_memory(a, b), name
        assert not np.shares_memory(a, slopes) and not np.shares_memory(a, widths), name
        assert not a.flags.writeable, name
    slopes[0, 0], widths[0, 0] = -5.0, 7.0
    assert first.slopes[0, 0] != -5.0 and first.widths[0, 0] == 2.0
    assert first.breakpoints[0, -1] == 8.0 and first.total_capacity == 40.0


def test_breakpoint_values_on_first_access_are_the_cumulative_costs():
    curves = CostCurves(np.array([[1.0, 2.0, 4.0]]), np.array([[10.0, 5.0, 5.0]]))
    assert curves._breakpoint_values is None  # not built until asked for
    assert curves.breakpoint_values.tolist() == [[0.0, 10.0, 20.0, 40.0]]
    assert curves.breakpoint_values is curves.breakpoint_values and not curves.breakpoint_values.flags.writeable


@pytest.mark.parametrize(
    "slopes, widths, error, message",
    [
        ([[0.0, np.nan]], [[1.0, 1.0]], InvalidInputError, r"NaN or inf in bucket 0"),
        ([[0.0, 1.0]], [[np.inf, 1.0]], InvalidInputError, r"widths has NaN or inf in bucket 0"),
        ([[1.0, 2.0]], [[1.0, -1.0]], InvalidInputError, "bucket 0 has a negative one"),
        ([[-1.0, 2.0]], [[1.0, 1.0]], InvalidInputError, "negative slope -1"),
        ([[1.0, 2.0], [3.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]], NonConvexCurveError, "bucket 1 is not convex"),
    ],
)
def test_bad_ndarray_input_gets_the_same_errors(slopes, widths, error, message):
    # float64 ndarrays of one shape take the compiled path first; what it refuses gets the
    # general path's specific error, as lists do.
    with pytest.raises(error, match=message):
        CostCurves(np.array(slopes), np.array(widths))
    with pytest.raises(error, match=message):
        CostCurves(slopes, widths)
