"""Slippage by walking the book, the impact table built from it, and reading a user's own table.

For a buy of ``x`` shares at snapshot ``t`` (the ask side; a sell mirrors it on the bid side)
the temporary-impact cost (E16) is the walk-the-book cost against the mid:

.. math::

    g_t(x) = \\sum_l p_{t,l}\\, n_{t,l}(x) - x\\, m_t \\quad\\text{(buy)}, \\qquad
    g_t(x) = x\\, m_t - \\sum_l p_{t,l}\\, n_{t,l}(x) \\quad\\text{(sell)},

where ``n_{t,l}(x)`` is the quantity taken at level ``l`` when levels are consumed best first.
Written with the distances ``d_{t,l} = |p_{t,l} - m_t|`` (increasing in ``l``), ``g_t`` is the
integral of the step function ``d_t(q)`` over ``[0, x]``: convex, increasing, ``g_t(0) = 0``.

Beyond the displayed depth ``D_t`` the rule (``extrapolate=``) is

* ``"linear"`` (default): the marginal distance keeps rising at the book's average gradient,
  ``d_t(q) = d_{t,last} + \\lambda_t (q - D_t)``, ``\\lambda_t = \\max(d_{t,last} - d_{t,0},
  \\text{tick}) / D_t``, so ``g_t(x) = g_t(D_t) + (x - D_t) d_{t,last} + \\lambda_t (x - D_t)^2 / 2``;
* ``"flat"``: the remainder fills at the last displayed price (``\\lambda_t = 0``), a lower bound;
* ``"nan"``: no value.

Both rules keep ``g_t`` convex; :func:`beyond_depth` flags the affected (snapshot, size) pairs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ..errors import DataError, InvalidInputError
from ..files import read_table
from .book import level_columns
from .features import book_features, side_features

if TYPE_CHECKING:
    from .book import Book

_SIDES = {"buy": ("ask", 1.0), "sell": ("bid", -1.0)}
_UNITS = ("currency", "per_share", "bps")
_EXTRAPOLATE = ("linear", "flat", "nan")
IMPACT_TABLE_COLUMNS = (
    "timestamp", "size", "slippage", "vol_ratio", "spread", "depth", "imbalance", "volatility", "hour_of_day",
)  # fmt: skip


def _check_sizes(sizes):
    sizes = np.atleast_1d(np.asarray(sizes, dtype=float))
    if sizes.ndim != 1 or len(sizes) == 0:
        raise InvalidInputError("sizes must be a non-empty 1-D array of share counts")
    if not np.isfinite(sizes).all() or (sizes < 0).any():
        raise InvalidInputError("sizes must be finite and >= 0")
    return sizes


def _side(side):
    if side not in _SIDES:
        raise InvalidInputError(f"side must be 'buy' or 'sell', got {side!r}")
    return _SIDES[side]


def book_side(book, side):
    """Distances to mid (n, L), quantities (n, L) and the mid of one side of the book."""
    prefix, sign = _side(side)
    cols = level_columns(book.n_levels)
    px = book.frame[cols[f"{prefix}_px"]].to_numpy(dtype=float)
    qty = book.frame[cols[f"{prefix}_sz"]].to_numpy(dtype=float)
    mid = (book.frame["bid_px_00"].to_numpy(float) + book.frame["ask_px_00"].to_numpy(float)) / 2
    dist = sign * (px - mid[:, None])
    # Empty levels (NaN price, 0 size) take the last filled distance (fmax skips NaN): 0 shares
    # there cost nothing and the distances stay nondecreasing, which the walk relies on.
    dist = np.fmax.accumulate(dist, axis=1)
    return dist, qty, mid


def walk_distances(dist, qty, sizes, tick, extrapolate="linear"):
    """Walk-the-book cost ``g_t(x)`` from level distances to mid, vectorized over rows and sizes.

    Parameters
    ----------
    dist : ndarray, shape (n, L)
        ``|p_{t,l} - m_t|``, nondecreasing along each row.
    qty : ndarray, shape (n, L)
        Displayed quantities (0 for empty levels).
    sizes : ndarray, shape (m,)
    tick : float
        Minimum price gradient unit of the ``"linear"`` extrapolation.
    extrapolate : {"linear", "flat", "nan"}

    Returns
    -------
    cost : ndarray, shape (n, m)
    beyond : ndarray of bool, shape (n, m)
        ``x`` exceeds the displayed depth ``D_t``.
    """
    if extrapolate not in _EXTRAPOLATE:
        raise InvalidInputError(f"extrapolate must be one of {_EXTRAPOLATE}, got {extrapolate!r}")
    n, n_levels = qty.shape
    cum_q = np.cumsum(qty, axis=1)
    cum_c = np.cumsum(dist * qty, axis=1)
    zeros = np.zeros((n, 1))
    q_before = np.hstack([zeros, cum_q])
    c_before = np.hstack([zeros, cum_c])
    d_at = np.hstack([dist, dist[:, -1:]])
    # k = levels fully consumed before x is reached (L when x is beyond the displayed depth);
    # accumulating level by level keeps memory at (n, m) instead of (n, L, m).
    k = np.zeros((n, len(sizes)), dtype=np.intp)
    for level in range(n_levels):
        k += cum_q[:, level : level + 1] < sizes
    cost = np.take_along_axis(c_before, k, axis=1) + (sizes - np.take_along_axis(q_before, k, axis=1)) * np.take_along_axis(
        d_at, k, axis=1
    )
    depth = cum_q[:, -1:]
    beyond = sizes > depth
    if extrapolate == "linear":
        gradient = np.maximum(dist[:, -1:] - dist[:, :1], tick) / depth
        cost = cost + np.where(beyond, gradient * (sizes - depth) ** 2 / 2, 0.0)
    elif extrapolate == "nan":
        cost = np.where(beyond, np.nan, cost)
    return cost, beyond


def walk_one(dist: np.ndarray, qty: np.ndarray, size: float, tick: float) -> tuple[float, bool]:
    """:func:`walk_distances` of one snapshot and one size (``extrapolate="linear"``).

    The executor walks one slice at a time: the same arithmetic on one row, without the
    (n, m) machinery that costs more than the walk itself for a single size.

    Returns
    -------
    cost : float
    beyond : bool
    """
    cum_q = np.cumsum(qty)
    cum_c = np.cumsum(dist * qty)
    k = int(np.searchsorted(cum_q, size, side="left"))  # levels with cum_q < size
    before_q, before_c = (float(cum_q[k - 1]), float(cum_c[k - 1])) if k > 0 else (0.0, 0.0)
    cost = before_c + (size - before_q) * float(dist[min(k, len(dist) - 1)])
    depth = float(cum_q[-1])
    beyond = size > depth
    if beyond:
        gradient = max(float(dist[-1] - dist[0]), tick) / depth
        cost += gradient * (size - depth) ** 2 / 2
    return cost, bool(beyond)


def _convert(cost, sizes, mid, unit):
    if unit not in _UNITS:
        raise InvalidInputError(f"unit must be one of {_UNITS}, got {unit!r}")
    if unit == "currency":
        return cost
    with np.errstate(invalid="ignore", divide="ignore"):
        per_share = cost / sizes
    return per_share if unit == "per_share" else per_share / mid[:, None] * 1e4


def walk_book(
    book: Book, sizes: ArrayLike, side: str = "buy", unit: str = "currency", extrapolate: str | None = "linear"
) -> pd.DataFrame:
    """Slippage ``g_t(x)`` of every snapshot for every size, by walking the book.

    Parameters
    ----------
    book : Book
    sizes : array_like of float, shape (m,)
        Order sizes in shares (>= 0).
    side : {"buy", "sell"}
        Buys walk the asks, sells the bids.
    unit : {"currency", "per_share", "bps"}
        ``currency``: ``g_t(x)`` against mid (module docstring); ``per_share``: ``g_t(x)/x``;
        ``bps``: ``1e4 g_t(x) / (x m_t)``. Per-share and bps are NaN at ``x = 0``.
    extrapolate : {"linear", "flat", "nan"}
        Rule beyond the displayed depth (module docstring).

    Returns
    -------
    pandas.DataFrame
        Index: the book's snapshots; columns: ``sizes``.
    """
    sizes = _check_sizes(sizes)
    dist, qty, mid = book_side(book, side)
    cost, _ = walk_distances(dist, qty, sizes, book.tick_size, extrapolate)
    values = _convert(cost, sizes, mid, unit)
    return pd.DataFrame(values, index=book.frame.index, columns=pd.Index(sizes, name="size"))


def beyond_depth(book: Book, sizes: ArrayLike, side: str = "buy") -> pd.DataFrame:
    """True where ``x`` exceeds the side's displayed depth, i.e. ``walk_book`` extrapolated.

    Returns
    -------
    pandas.DataFrame of bool, shaped like :func:`walk_book`'s result.
    """
    sizes = _check_sizes(sizes)
    prefix, _ = _side(side)
    depth = book.frame[level_columns(book.n_levels)[f"{prefix}_sz"]].sum(axis=1).to_numpy()
    return pd.DataFrame(sizes > depth[:, None], index=book.frame.index, columns=pd.Index(sizes, name="size"))


def impact_table(
    book: Book, sizes: ArrayLike, side: str = "buy", unit: str = "currency", extrapolate: str | None = "linear"
) -> pd.DataFrame:
    """The impact-table regression table of the oracle (E17): one row per (snapshot, size).

    Parameters
    ----------
    book : Book
    sizes : array_like of float
        Size grid in shares.
    side, unit, extrapolate
        As in :func:`walk_book`.

    Returns
    -------
    pandas.DataFrame
        Columns ``timestamp, size, slippage, vol_ratio, spread, depth, imbalance, volatility,
        hour_of_day`` (the order of (E17)), then ``mid``, ``beyond_depth`` and the traded side's
        :func:`convexsched.data.features.side_features` (``touch, side_depth_3, side_depth_5,
        spread_ticks``); ``vol_ratio = size / depth``. ``attrs`` record ``side``,
        ``slippage_unit`` and ``symbol``.
    """
    sizes = _check_sizes(sizes)
    dist, qty, mid = book_side(book, side)
    cost, beyond = walk_distances(dist, qty, sizes, book.tick_size, extrapolate)
    feats = book_features(book)
    m = len(sizes)

    def rows(values):
        return np.repeat(np.asarray(values), m)

    table = pd.DataFrame(
        {
            "timestamp": feats.index.repeat(m),
            "size": np.tile(sizes, len(feats)),
            "slippage": _convert(cost, sizes, mid, unit).ravel(),
            "vol_ratio": (sizes[None, :] / feats["depth"].to_numpy()[:, None]).ravel(),
            "spread": rows(feats["spread"]),
            "depth": rows(feats["depth"]),
            "imbalance": rows(feats["imbalance"]),
            "volatility": rows(feats["volatility"]),
            "hour_of_day": rows(feats["hour_of_day"]),
            "mid": rows(mid),
            "beyond_depth": beyond.ravel(),
            **{name: rows(values) for name, values in side_features(book, side).items()},
        }
    )
    table.attrs.update(side=side, slippage_unit=unit, symbol=book.symbol)
    return table


def read_impact_table(
    path: str | Path, *, unit: str = "currency", columns: dict[str, str] | None = None, tz: str | None = None
) -> pd.DataFrame:
    """Read a user's impact table (CSV or Parquet), validate it and put slippage in currency.

    Parameters
    ----------
    path : path-like
    unit : {"currency", "per_share", "bps"}
        Unit of the file's ``slippage`` column (declared, not guessed): ``per_share`` is
        multiplied by ``size``, ``bps`` by ``size * mid / 1e4`` (needs a ``mid`` column).
    columns : dict, optional
        Renames file columns to the impact-table names, e.g. ``{"qty": "size", "cost": "slippage"}``.
    tz : str, optional
        Time zone of naive timestamps (required if they are naive).

    Returns
    -------
    pandas.DataFrame
        Columns ``timestamp, size, slippage`` first, then the other impact-table features present;
        ``vol_ratio`` is added from ``depth`` when missing. ``attrs["slippage_unit"] = "currency"``.

    Raises
    ------
    DataError
        Missing required columns, non-numeric or NaN values, sizes <= 0, unparsable timestamps.
    InvalidInputError
        Unknown ``unit``, or naive timestamps without ``tz``.
    """
    if unit not in _UNITS:
        raise InvalidInputError(f"unit must be one of {_UNITS}, got {unit!r}")
    path = Path(path)
    df = read_table(path).rename(columns=columns or {})
    _check_impact_table(df, unit, path.name)
    df["timestamp"] = _impact_table_timestamps(df["timestamp"], tz, path.name)
    df["slippage"] = _slippage_in_currency(df, unit)
    if "vol_ratio" not in df and "depth" in df:
        df["vol_ratio"] = df["size"] / df["depth"]
    order = [c for c in IMPACT_TABLE_COLUMNS + ("mid",) if c in df]
    out = df[order + [c for c in df.columns if c not in order]]
    out.attrs["slippage_unit"] = "currency"
    return out


def _check_impact_table(df, unit, name):
    """Raise DataError unless the table has the required columns, numeric features and no missing or non-positive size."""
    required = ["timestamp", "size", "slippage"] + (["mid"] if unit == "bps" else [])
    missing = [c for c in required if c not in df]
    if missing:
        raise DataError(f"{name}: missing columns {missing}; found {list(df.columns)}")
    numeric = [c for c in IMPACT_TABLE_COLUMNS[1:] + ("mid",) if c in df]
    for c in numeric:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise DataError(f"{name}: column {c!r} is not numeric (dtype {df[c].dtype})")
    bad = df[required].isna().any(axis=1)
    if bad.any():
        raise DataError(f"{name}: {int(bad.sum())} rows with missing {required}, first at row {bad.idxmax()}")
    if (df["size"] <= 0).any():
        raise DataError(f"{name}: {int((df['size'] <= 0).sum())} rows with size <= 0")


def _impact_table_timestamps(timestamps, tz, name):
    """The timestamp column parsed as ISO 8601 and made tz-aware (naive ones need ``tz``)."""
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(timestamps, format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name}: cannot parse timestamps: {exc}") from exc
    if stamps.tz is None:
        if tz is None:
            raise InvalidInputError(f"{name}: timestamps have no time zone; pass tz=")
        stamps = stamps.tz_localize(tz)
    return stamps


def _slippage_in_currency(df, unit):
    """The slippage column converted from ``unit`` to currency."""
    if unit == "per_share":
        return df["slippage"] * df["size"]
    if unit == "bps":
        return df["slippage"] * df["size"] * df["mid"] / 1e4
    return df["slippage"]


def task1_table(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """Deprecated 0.2 name of :func:`impact_table` (removed in 0.4)."""
    warnings.warn("task1_table is deprecated; use impact_table (removed in 0.4)", FutureWarning, stacklevel=2)
    return impact_table(*args, **kwargs)


def read_task1(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """Deprecated 0.2 name of :func:`read_impact_table` (removed in 0.4)."""
    warnings.warn("read_task1 is deprecated; use read_impact_table (removed in 0.4)", FutureWarning, stacklevel=2)
    return read_impact_table(*args, **kwargs)
