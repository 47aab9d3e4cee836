"""Curve, schedule and certificate files: round trips, both curve formats, and bad files."""

import json

import numpy as np
import pandas as pd
import pytest

from convexsched import CostCurves, NonConvexCurveError, Objective, check_kkt, solve
from convexsched.errors import DataError
from convexsched.io import (
    certificate_record,
    curves_to_frame,
    read_curves,
    read_schedule,
    write_certificate,
    write_curves,
    write_schedule,
)


@pytest.fixture
def curves():
    """Three buckets on a timestamp index, one without capacity, one with fewer segments."""
    index = pd.date_range("2024-03-05 09:30", periods=3, freq="1min", tz="America/New_York", name="bucket")
    slopes = [[0.01, 0.02, 0.05], [0.0, 0.0, 0.0], [0.03, 0.04, 0.04]]
    widths = [[100, 200, 300], [0, 0, 0], [500, 500, 0]]
    return CostCurves(slopes, widths, index=index)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_curves_round_trip_keeps_every_bucket(tmp_path, curves, suffix):
    path = write_curves(curves, tmp_path / f"curves{suffix}")
    again = read_curves(path)
    assert again.n_buckets == 3
    np.testing.assert_allclose(again.capacity, curves.capacity)
    x = np.array([250.0, 0.0, 700.0])
    np.testing.assert_allclose(again.evaluate(x), curves.evaluate(x))
    assert [str(label) for label in again.index] == [str(label) for label in curves.index]


def test_segment_file_leaves_out_zero_width_padding(curves):
    frame = curves_to_frame(curves)
    assert list(frame.columns) == ["bucket", "segment", "slope", "width"]
    # 3 + 1 (the empty bucket keeps one row) + 2 real segments.
    assert len(frame) == 6


def test_segment_order_follows_the_segment_column_not_the_rows(tmp_path):
    path = tmp_path / "curves.csv"
    path.write_text("bucket,segment,slope,width\na,1,0.5,10\na,0,0.1,10\n")
    curves = read_curves(path)
    np.testing.assert_allclose(curves.slopes[0], [0.1, 0.5])


def test_grid_points_with_ragged_grids(tmp_path):
    path = tmp_path / "grid.csv"
    path.write_text("bucket,size,cost\nb1,0,0\nb1,100,1\nb1,200,3\nb2,0,0\nb2,300,3\n")
    curves = read_curves(path)
    assert list(curves.index) == ["b1", "b2"]
    np.testing.assert_allclose(curves.capacity, [200, 300])
    np.testing.assert_allclose(curves.evaluate(np.array([150.0, 300.0])), [2.0, 3.0])


def test_nonconvex_grid_names_the_bucket_and_convexify_repairs_it(tmp_path):
    path = tmp_path / "grid.csv"
    path.write_text("bucket,size,cost\nb1,0,0\nb1,100,3\nb1,200,4\n")
    with pytest.raises(NonConvexCurveError, match="b1"):
        read_curves(path)
    curves = read_curves(path, convexify="hull")
    assert curves.n_buckets == 1 and np.all(np.diff(curves.slopes[0]) >= 0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a,b\n1,2\n", r"need columns \['bucket', 'slope', 'width'\]"),
        ("bucket,slope,width\nx,cheap,10\n", "column 'slope' must be a finite number on every row; row 0"),
        ("bucket,slope,width\nx,0.1,-5\n", "widths must be >= 0"),
        ("bucket,size,cost\nx,100,1\nx,200,2\n", "needs a point at size 0 with cost 0"),
        ("bucket,size,cost\nx,0,0\nx,100,1\nx,100,2\n", "repeats a size"),
        ("bucket,slope,width\n", "holds no rows"),
    ],
)
def test_malformed_curve_files_raise_data_errors_that_say_why(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_curves(path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_curves(tmp_path / "absent.csv")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"\x00\x01 not parquet")
    with pytest.raises(DataError, match="cannot read garbage.parquet as Parquet"):
        read_curves(garbage)


def test_schedule_round_trip_in_any_row_order(tmp_path, curves):
    schedule = solve(curves, 500.0)
    path = write_schedule(schedule, tmp_path / "schedule.csv")
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["bucket", "x", "remaining"]
    frame.iloc[::-1].to_csv(path, index=False)
    x = read_schedule(path, read_curves(write_curves(curves, tmp_path / "curves.csv")))
    np.testing.assert_allclose(x.to_numpy(), np.asarray(schedule.x))


def test_schedule_without_bucket_column_is_taken_in_curve_order(tmp_path, curves):
    path = tmp_path / "x.csv"
    path.write_text("x\n100\n0\n400\n")
    np.testing.assert_allclose(read_schedule(path, curves).to_numpy(), [100, 0, 400])
    path.write_text("x\n100\n0\n")
    with pytest.raises(DataError, match="2 rows without a bucket column, but the curves have 3"):
        read_schedule(path, curves)


@pytest.mark.parametrize(
    "rows, message",
    [
        (["a", "b", "c", "zzz"], "bucket 'zzz' is not a bucket of the curves"),
        (["a", "b"], "bucket 'c' of the curves has no row"),
        (["a", "a", "b", "c"], "bucket 'a' appears more than once"),
    ],
)
def test_schedule_buckets_must_match_the_curves(tmp_path, rows, message):
    curves = CostCurves([[0.1], [0.1], [0.1]], 10.0, index=["a", "b", "c"])
    path = tmp_path / "x.csv"
    pd.DataFrame({"bucket": rows, "x": 1.0}).to_csv(path, index=False)
    with pytest.raises(DataError, match=message):
        read_schedule(path, curves)


def test_certificate_is_valid_json_with_infinite_bounds_as_text(tmp_path, curves):
    # S = 0: nothing trades, so the admissible levels are unbounded below.
    report = check_kkt(curves, 0.0, Objective(), np.zeros(3))
    record = certificate_record(report, 0.0, Objective(), method="fast")
    path = write_certificate(record, tmp_path / "kkt.json")
    loaded = json.loads(path.read_text())
    assert loaded["ok"] is True and loaded["method"] == "fast" and loaded["objective_kind"] == "A"
    assert "-inf" in loaded["multiplier_interval"]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    from convexsched.io import atomic_path, write_table

    path = write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "table.csv")
    before = path.read_bytes()
    with pytest.raises(ZeroDivisionError):
        with atomic_path(path) as temporary:
            temporary.write_text("half a fi")
            raise ZeroDivisionError("an error half way through a write")
    with pytest.raises(ValueError):
        write_table(pd.DataFrame({"a": [object()]}), tmp_path / "table.parquet")  # pyarrow refuses
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_check_outputs_rules(tmp_path):
    from convexsched.errors import OutputError
    from convexsched.io import check_outputs

    existing = tmp_path / "in.csv"
    existing.write_text("x\n1\n")
    check_outputs({"--output": tmp_path / "new" / "out.csv"}, {"--curves": existing})
    check_outputs({"--output": existing}, force=True)
    cases = [
        (({"--output": tmp_path / "." / "in.csv"}, {"--curves": existing}), "is also the input --curves"),
        (({"--a": tmp_path / "x.csv", "--b": tmp_path / "x.csv"}, None), "--b and --a are the same file"),
        (({"--output": existing}, None), "exists; pass --force"),
        (({"--output": tmp_path}, None), "is a folder"),
        (({"--output": existing / "out.csv"}, None), "is not a folder"),
    ]
    for (outputs, inputs), message in cases:
        with pytest.raises(OutputError, match=message):
            check_outputs(outputs, inputs)


def test_a_truncated_zipped_table_is_a_data_error(tmp_path):
    from convexsched.io import read_table

    pd.DataFrame({"x": range(1000)}).to_csv(tmp_path / "full.csv.zip", index=False)
    (tmp_path / "cut.csv.zip").write_bytes((tmp_path / "full.csv.zip").read_bytes()[:200])
    with pytest.raises(DataError, match="cut.csv.zip: the archive is truncated or corrupt"):
        read_table(tmp_path / "cut.csv.zip")
