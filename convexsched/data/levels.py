"""Price-level books for feed replays (Binance diff depth, Databento MBO) and their sampling.

A replay keeps every price level of both sides in a :class:`sortedcontainers.SortedDict`
(a well-kept pure-Python sorted map: O(log n) updates and O(k) top-k reads, where a plain
dict would need a sort of ~1,000 levels at every sample), and samples the best ``n_levels``
into rows of the normalized book layout (:func:`convexsched.data.book.book_columns`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sortedcontainers import SortedDict

from .book import book_columns


class PriceLevels:
    """Resting quantity per price on both sides; empty levels are removed.

    Prices may be any sortable numbers (floats, or int fixed point with ``scale``); quantities
    are floats.
    """

    def __init__(self):
        self.bids = SortedDict()
        self.asks = SortedDict()

    def side(self, bid):
        return self.bids if bid else self.asks

    def set(self, bid, price, qty):
        """Set a level's quantity (absolute, as in Binance's diff depth); 0 removes it."""
        levels = self.side(bid)
        if qty > 0:
            levels[price] = qty
        else:
            levels.pop(price, None)

    def add(self, bid, price, delta):
        """Change a level's quantity by ``delta``; a level at or below 0 is removed.

        Returns the new quantity (negative when more was removed than rested: a feed error
        the caller counts).
        """
        levels = self.side(bid)
        qty = levels.get(price, 0) + delta
        if qty > 0:
            levels[price] = qty
        else:
            levels.pop(price, None)
        return qty

    def clear(self):
        self.bids.clear()
        self.asks.clear()

    def best(self):
        """(best bid, best ask) prices, None for an empty side."""
        bid = self.bids.peekitem(-1)[0] if self.bids else None
        ask = self.asks.peekitem(0)[0] if self.asks else None
        return bid, ask

    def top(self, n_levels, scale=1.0):
        """One row ``[bid_px.., ask_px.., bid_sz.., ask_sz..]`` of the best ``n_levels`` (NaN/0 padded)."""
        row = np.full(4 * n_levels, np.nan)
        row[2 * n_levels :] = 0.0
        bids = self.bids.items()[-n_levels:][::-1] if self.bids else []
        asks = self.asks.items()[:n_levels] if self.asks else []
        for k, (price, qty) in enumerate(bids):
            row[k], row[2 * n_levels + k] = price / scale, qty
        for k, (price, qty) in enumerate(asks):
            row[n_levels + k], row[3 * n_levels + k] = price / scale, qty
        return row


def sampled_frame(rows, stamps, n_levels, volume=None, tz="UTC"):
    """Sampled rows (from :meth:`PriceLevels.top`) as a raw book frame for :func:`clean_book`.

    Parameters
    ----------
    rows : list of numpy.ndarray
    stamps : array_like of int
        UNIX nanoseconds of each row.
    volume : array_like, optional
        Traded quantity since the previous row.
    """
    frame = pd.DataFrame(
        np.vstack(rows) if rows else np.empty((0, 4 * n_levels)),
        columns=book_columns(n_levels),
        index=pd.DatetimeIndex(pd.to_datetime(np.asarray(stamps, dtype=np.int64), unit="ns", utc=True)).tz_convert(tz),
    )
    if volume is not None:
        frame["volume"] = np.asarray(volume, float)
    return frame
