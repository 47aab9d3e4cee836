"""State features (E17) of a book, per snapshot and per session bucket.

Definitions (E17), with ``L`` the book's levels and level 00 best:

.. math::

    \\text{mid}_t = \\tfrac12(b_{t,0} + a_{t,0}), \\qquad
    \\text{spread}_t = a_{t,0} - b_{t,0}, \\qquad
    \\text{depth}_t = \\sum_{l<L} (q^b_{t,l} + q^a_{t,l}),

.. math::

    \\text{imbalance}_t = \\frac{q^b_{t,0} - q^a_{t,0}}{q^b_{t,0} + q^a_{t,0} + 10^{-9}}, \\qquad
    \\text{volatility}_t = \\operatorname{std}\\{\\Delta \\log \\text{mid}_s :
    t - 60\\,\\text{s} < s \\le t\\},

``hour_of_day_t = hour(t)`` in the book's local time zone, and ``vol_ratio = x / depth_t`` for an
order of ``x`` shares (built with the size grid in :func:`convexsched.impact_table`).

Beyond (E17), :func:`side_features` gives what sets the cost of an order on one side: the
queue at the touch ``q_{t,0}``, the cumulative side depth over the first 3 and 5 levels, and the
spread in ticks (minute-to-minute changes in these explain most of the gap between TWAP and the
hindsight optimum on real books).

The volatility window is time-based (60 s of clock time, not 60 rows), uses the sample standard
deviation (``ddof=1``) and is NaN until it holds two returns. By definition (E17), the log return
from the last snapshot before a break (lunch, overnight) to the first after it is an ordinary
return of the series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from .book import level_columns
from .sessions import session_buckets

if TYPE_CHECKING:
    from .book import Book
    from .sessions import Sessions

_IMBALANCE_EPS = 1e-9
_VOL_WINDOW = "60s"
_HOW = ("mean", "median", "first", "last")


SIDE_FEATURES = ("touch", "side_depth_3", "side_depth_5", "spread_ticks")
#: The state of a bucket the impact oracle reads besides the order size.
STATE_COLUMNS = ("spread", "depth", "imbalance", "volatility", "hour_of_day")
#: What the state forecast predicts for a later bucket: the state without the hour, which the
#: clock gives, and with the mid, which turns costs into basis points.
FORECAST_COLUMNS = ("spread", "depth", "imbalance", "volatility", "mid")
#: The forecast columns that follow the intraday profile (relative forecasts scale them by it).
RELATIVE_COLUMNS = ("spread", "depth", "volatility")


def side_features(book, side="buy"):
    """Cost-setting features of the traded side of every snapshot.

    Parameters
    ----------
    book : Book
    side : {"buy", "sell"}
        A buy walks the ask side, a sell the bid side.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``book.frame``; columns ``touch`` (shares at the best level),
        ``side_depth_3`` and ``side_depth_5`` (shares over the first 3 and 5 levels) and
        ``spread_ticks`` (``spread / tick``).
    """
    if side not in ("buy", "sell"):
        raise InvalidInputError(f"side must be 'buy' or 'sell', got {side!r}")
    frame = book.frame
    prefix = "ask" if side == "buy" else "bid"
    sizes = frame[level_columns(book.n_levels)[f"{prefix}_sz"]].to_numpy(float)
    cumulative = np.cumsum(sizes, axis=1)
    return pd.DataFrame(
        {
            "touch": sizes[:, 0],
            "side_depth_3": cumulative[:, min(2, book.n_levels - 1)],
            "side_depth_5": cumulative[:, min(4, book.n_levels - 1)],
            "spread_ticks": (frame["ask_px_00"] - frame["bid_px_00"]).to_numpy() / book.tick_size,
        },
        index=frame.index,
    )


def book_features(book: Book) -> pd.DataFrame:
    """State features (E17) of every snapshot.

    Parameters
    ----------
    book : Book

    Returns
    -------
    pandas.DataFrame
        Indexed like ``book.frame``; columns ``mid, spread, depth, imbalance, volatility,
        hour_of_day`` (see the module docstring for the formulas).
    """
    frame = book.frame
    cols = level_columns(book.n_levels)
    bid0, ask0 = frame["bid_px_00"], frame["ask_px_00"]
    qb0, qa0 = frame["bid_sz_00"], frame["ask_sz_00"]
    mid = (bid0 + ask0) / 2
    out = pd.DataFrame(
        {
            "mid": mid,
            "spread": ask0 - bid0,
            "depth": frame[cols["bid_sz"]].sum(axis=1) + frame[cols["ask_sz"]].sum(axis=1),
            "imbalance": (qb0 - qa0) / (qb0 + qa0 + _IMBALANCE_EPS),
            "volatility": np.log(mid).diff().rolling(_VOL_WINDOW).std(),
            "hour_of_day": frame.index.hour,
        },
        index=frame.index,
    )
    return out


def bucket_features(book: Book, freq: str = "1min", how: str = "mean", sessions: Sessions | str | None = None) -> pd.DataFrame:
    """State features (E17) aggregated over the continuous-session buckets.

    Parameters
    ----------
    book : Book
    freq : str or pandas.Timedelta
        Bucket width (see :func:`convexsched.session_buckets`).
    how : {"mean", "median", "first", "last"}
        Statistic over a bucket's snapshots. Default ``"mean"``: the bucket's cost is paid over
        the whole minute, so the average book describes it better than any single snapshot.
    sessions : Sessions or str, optional
        Overrides ``book.sessions``.

    Returns
    -------
    pandas.DataFrame
        On the full bucket index (buckets without snapshots are kept, with NaN features and
        ``n_snapshots = 0``); columns ``mid, spread, depth, imbalance, volatility`` aggregated by
        ``how``, ``hour_of_day`` of the bucket start, ``n_snapshots`` and, when the book has
        traded volume, ``volume`` (the bucket's sum). Snapshots outside the sessions are ignored.
    """
    if how not in _HOW:
        raise InvalidInputError(f"how must be one of {_HOW}, got {how!r}")
    buckets = session_buckets(book, freq, sessions)
    feats = book_features(book).drop(columns="hour_of_day")
    inside = buckets.labels.notna().to_numpy()
    grouped = feats[inside].groupby(buckets.labels[inside])
    out = getattr(grouped, how)().reindex(buckets.index)
    out["hour_of_day"] = buckets.index.hour
    out["n_snapshots"] = buckets.counts.to_numpy()
    if book.traded_volume is not None:
        out["volume"] = book.traded_volume[inside].groupby(buckets.labels[inside]).sum().reindex(buckets.index, fill_value=0.0)
    out.index.name = "bucket"
    return out
