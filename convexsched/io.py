"""Files in and out: tables, cost curves and schedules as CSV or Parquet.

The format of a file follows its suffix: ``.parquet`` / ``.pq`` is Parquet, anything else CSV.
Every reader raises :class:`~convexsched.errors.DataError` naming the file and the problem
(missing file, unreadable content, a missing or non-numeric column), never a parser traceback.

Cost-curve files (long format, one row per segment or per grid point)
----------------------------------------------------------------------
*Segments* (what :func:`write_curves` writes)::

    bucket,segment,slope,width
    09:30,0,0.010,500
    09:30,1,0.012,500

``slope`` is the marginal cost (currency per share) of the segment and ``width`` its length in
shares (>= 0); slopes must be nondecreasing within a bucket (convexity). ``segment`` orders the
rows of a bucket and may be omitted (file order is then used). A bucket without capacity is one
row of width 0.

*Grid points*::

    bucket,size,cost
    09:30,0,0
    09:30,500,5.0

the cost ``g_i(size)`` (currency) at sizes that start at 0 with cost 0, strictly increasing
within a bucket; buckets may have different grids.

Buckets keep the order in which they first appear; their labels are free text (timestamps,
numbers, names).

Schedule files
--------------
``bucket,x`` with ``x`` the shares traded in the bucket (:func:`write_schedule` adds
``remaining``, the inventory after the bucket, and ``x_lots``, the slices rounded to whole lots
when asked; readers ignore both). With a ``bucket`` column
every bucket of the curves must appear exactly once, in any order; without one the rows are
taken in the curves' bucket order.

Certificates
------------
A KKT report with the problem it certifies (sense, objective, method) as JSON; infinite
multiplier bounds are written as the strings ``"inf"`` / ``"-inf"``.

Writing
-------
Every writer is atomic (:func:`convexsched.files.atomic_path`): it writes a hidden temporary file
beside the target and renames it into place, so an error never leaves half a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError

# The plumbing moved to convexsched.files (0.3.0) so the data stage can read files without this
# module's curve and schedule formats; these names stay importable from here.
from .files import (
    PARQUET_SUFFIXES,
    UNREADABLE,
    atomic_path,
    check_outputs,
    is_parquet,
    read_table,
    save_figure,
    unreadable_error,
    write_table,
)
from .model.convexify import convexify as _convexify
from .optimize.curves import CostCurves

__all__ = [
    "GRID_COLUMNS",
    "PARQUET_SUFFIXES",
    "SEGMENT_COLUMNS",
    "UNREADABLE",
    "atomic_path",
    "certificate_record",
    "check_outputs",
    "curves_from_frame",
    "curves_to_frame",
    "is_parquet",
    "read_curves",
    "read_schedule",
    "read_table",
    "save_figure",
    "unreadable_error",
    "write_certificate",
    "write_curves",
    "write_schedule",
    "write_table",
]

SEGMENT_COLUMNS = ("bucket", "slope", "width")
GRID_COLUMNS = ("bucket", "size", "cost")


def _numeric(frame, columns, name):
    out = {}
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype(float))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{name}: column {column!r} must be a finite number on every row; row {row} has {frame[column].iloc[row]!r}"
            )
        out[column] = values.astype(float).to_numpy()
    return out


def _require(frame, columns, name, what):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: {what} needs column(s) {missing}; found {list(frame.columns)}")


def curves_to_frame(curves):
    """The long segment format of the module docstring (zero-width padding left out)."""
    n, k = curves.slopes.shape
    labels = curves.index if curves.index is not None else pd.RangeIndex(n)
    frame = pd.DataFrame(
        {
            "bucket": np.repeat(np.asarray(labels), k),
            "segment": np.tile(np.arange(k), n),
            "slope": curves.slopes.ravel(),
            "width": curves.widths.ravel(),
        }
    )
    real = frame["width"].to_numpy() > 0
    # A bucket without capacity keeps one row, so that it is not lost from the file.
    empty = np.repeat(curves.capacity == 0, k) & (frame["segment"].to_numpy() == 0)
    return frame[real | empty].reset_index(drop=True)


def _padded(rows_per_bucket):
    k = max(len(slopes) for slopes, _ in rows_per_bucket)
    slopes = np.zeros((len(rows_per_bucket), k))
    widths = np.zeros_like(slopes)
    for i, (s, w) in enumerate(rows_per_bucket):
        slopes[i, : len(s)], widths[i, : len(w)] = s, w
        # Padding repeats the last slope, so rows stay nondecreasing.
        slopes[i, len(s) :] = s[-1] if len(s) else 0.0
    return slopes, widths


def _groups(frame, name):
    """Row positions of each bucket, in order of first appearance."""
    codes, labels = pd.factorize(frame["bucket"], sort=False)
    if (codes < 0).any():
        raise DataError(f"{name}: row {int(np.flatnonzero(codes < 0)[0])} has no bucket label")
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    return pd.Index(labels, name="bucket"), [order[bounds[i] : bounds[i + 1]] for i in range(len(labels))]


def curves_from_frame(frame, name="curves", convexify=None):
    """Cost curves from a frame in the segment or grid format of the module docstring.

    Parameters
    ----------
    frame : pandas.DataFrame
    name : str
        What to call the source in error messages (e.g. the file name).
    convexify : str, optional
        Grid format only: pass the points through :func:`convexsched.convexify` with this
        method (all buckets must share one grid) instead of requiring them to be convex.

    Raises
    ------
    DataError
        Neither format's columns, non-numeric values, or a grid that is not ``0 = x_0 < x_1 ...``
        with ``g(0) = 0``.
    NonConvexCurveError
        Slopes decrease in some bucket (named in the message).
    """
    if set(SEGMENT_COLUMNS) <= set(frame.columns):
        return _curves_from_segments(frame, name)
    if set(GRID_COLUMNS) <= set(frame.columns):
        return _curves_from_grid(frame, name, convexify)
    raise DataError(
        f"{name}: cost curves need columns {list(SEGMENT_COLUMNS)} (segments) or "
        f"{list(GRID_COLUMNS)} (grid points); found {list(frame.columns)}"
    )


def _curves_from_segments(frame, name):
    values = _numeric(frame, ("slope", "width") + (("segment",) if "segment" in frame else ()), name)
    if (values["width"] < 0).any():
        row = int(np.flatnonzero(values["width"] < 0)[0])
        raise DataError(f"{name}: widths must be >= 0; row {row} has {values['width'][row]}")
    labels, groups = _groups(frame, name)
    rows = []
    for positions in groups:
        if "segment" in values:
            positions = positions[np.argsort(values["segment"][positions], kind="stable")]
        rows.append((values["slope"][positions], values["width"][positions]))
    slopes, widths = _padded(rows)
    return CostCurves(slopes, widths, index=labels)


def _curves_from_grid(frame, name, convexify):
    values = _numeric(frame, ("size", "cost"), name)
    labels, groups = _groups(frame, name)
    grids = []
    for label, positions in zip(labels, groups):
        positions = positions[np.argsort(values["size"][positions], kind="stable")]
        sizes, costs = values["size"][positions], values["cost"][positions]
        if len(sizes) < 2 or sizes[0] != 0 or costs[0] != 0:
            raise DataError(f"{name}: bucket {label!r} needs a point at size 0 with cost 0 and at least one more size")
        if np.any(np.diff(sizes) <= 0):
            raise DataError(f"{name}: bucket {label!r} repeats a size")
        grids.append((sizes, costs))
    if convexify is not None:
        sizes = grids[0][0]
        if any(len(s) != len(sizes) or np.any(s != sizes) for s, _ in grids):
            raise DataError(f"{name}: convexifying needs every bucket on the same size grid")
        curves, _ = _convexify(sizes, np.vstack([c for _, c in grids]), method=convexify, index=labels)
        return curves
    rows = [(np.diff(costs) / np.diff(sizes), np.diff(sizes)) for sizes, costs in grids]
    slopes, widths = _padded(rows)
    return CostCurves(slopes, widths, index=labels)


def read_curves(path, convexify=None):
    """Read cost curves (segment or grid format, see the module docstring)."""
    return curves_from_frame(read_table(path), Path(path).name, convexify)


def write_curves(curves, path):
    """Write ``curves`` in the segment format."""
    return write_table(curves_to_frame(curves), path)


def schedule_frame(x, remaining=None, lots=None):
    """A schedule as the ``bucket, x, remaining[, x_lots]`` frame of the module docstring."""
    x = x if isinstance(x, pd.Series) else pd.Series(np.asarray(x, dtype=float))
    frame = pd.DataFrame({"bucket": x.index, "x": x.to_numpy(dtype=float)})
    if remaining is not None:
        frame["remaining"] = np.asarray(remaining, dtype=float)
    if lots is not None:
        frame["x_lots"] = np.asarray(lots, dtype=float)
    return frame


def write_schedule(schedule, path, lots=None):
    """Write a :class:`~convexsched.Schedule` as ``bucket, x, remaining``.

    With ``lots`` (e.g. :attr:`convexsched.optimize.lots.LotRounding.x`) also ``x_lots``.
    """
    return write_table(schedule_frame(schedule.x, schedule.remaining, lots), path)


def read_schedule(path, curves):
    """Read a schedule file and align it with the buckets of ``curves``.

    Returns
    -------
    pandas.Series
        Shares per bucket, on the curves' bucket order (and index, when they have one).

    Raises
    ------
    DataError
        A missing ``x`` column, non-numeric values, or buckets that do not match the curves
        (the message names the first missing or unknown one).
    """
    name = Path(path).name
    frame = read_table(path)
    _require(frame, ("x",), name, "a schedule")
    x = _numeric(frame, ("x",), name)["x"]
    n = curves.n_buckets
    if "bucket" not in frame.columns:
        if len(x) != n:
            raise DataError(f"{name}: {len(x)} rows without a bucket column, but the curves have {n} buckets")
        return pd.Series(x, index=curves.index, name="x")
    # Labels are compared as text: a CSV round trip turns timestamps and numbers into strings.
    given = pd.Index(frame["bucket"].astype(str))
    expected = pd.Index(np.asarray(curves.index if curves.index is not None else pd.RangeIndex(n)).astype(str))
    if given.has_duplicates:
        raise DataError(f"{name}: bucket {given[given.duplicated()][0]!r} appears more than once")
    unknown = given.difference(expected, sort=False)
    if len(unknown):
        raise DataError(f"{name}: bucket {unknown[0]!r} is not a bucket of the curves")
    missing = expected.difference(given, sort=False)
    if len(missing):
        raise DataError(f"{name}: bucket {missing[0]!r} of the curves has no row ({len(missing)} missing)")
    aligned = pd.Series(x, index=given).reindex(expected).to_numpy()
    return pd.Series(aligned, index=curves.index, name="x")


def _json_value(value):
    """JSON has no infinity: non-finite numbers become the strings "inf", "-inf", "nan"."""
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return str(float(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def certificate_record(report, total, objective, sense="eq", **details):
    """A KKT report with the problem it certifies, as a JSON-ready dict.

    Parameters
    ----------
    report : KKTReport
    total : float
    objective : Objective
    sense : "eq" | "le"
        ``sum x = S`` or ``sum x <= S``.
    **details
        Extra entries, e.g. ``method=``, ``solver=``.
    """
    record = {name: _json_value(getattr(report, name)) for name in report.__dataclass_fields__}
    record.update(
        total=float(total), sense=sense, objective_kind=objective.kind, rho=objective.rho,
        psi=objective.psi, weights=_json_value(objective.weights),
        terms=[repr(term) for term in objective.terms],
    )  # fmt: skip
    record.update({name: _json_value(value) for name, value in details.items()})
    return record


def write_certificate(record, path):
    """Write a :func:`certificate_record` as indented JSON (atomically)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n")
    return path
