"""LOBSTER books: a ``*_orderbook_L.csv`` + ``*_message_L.csv`` pair (see :func:`read_lobster`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._text import printable
from ..errors import DataError
from ..files import UNREADABLE, existing_file, unreadable_error
from .book import clean_book, level_columns
from .sessions import US_EQUITY, as_sessions

# Fixed-point divisor of the prices; dividing gives the correctly rounded price.
_UNITS = 1e4
_EMPTY = 9_999_999_999
#: The file names of a LOBSTER pair.
NAME = re.compile(r"^(?P<symbol>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_(?P<kind>orderbook|message)_(?P<levels>\d+)\.csv$")


def looks_lobster(path):
    """Whether ``path`` is named like one file of a LOBSTER pair."""
    return NAME.match(Path(path).name) is not None


def lobster_pair(path):
    """The orderbook and message files of the pair ``path`` belongs to, and the name's match."""
    match = NAME.match(Path(path).name)
    if match is None:
        raise DataError(
            f"{Path(path).name} is not a LOBSTER file name (TICKER_YYYY-MM-DD_START_END_orderbook|message_LEVELS.csv)"
        )
    other = "message" if match["kind"] == "orderbook" else "orderbook"
    partner = Path(path).with_name(Path(path).name.replace(f"_{match['kind']}_", f"_{other}_"))
    book_file, message_file = (path, partner) if match["kind"] == "orderbook" else (partner, path)
    if not Path(message_file).is_file() or not Path(book_file).is_file():
        raise DataError(f"LOBSTER needs both files; missing {partner}")
    return Path(book_file), Path(message_file), match


_LOBSTER_TICK = 0.01
_LOBSTER_EVENTS = (1, 2, 3, 4, 5, 6, 7)


def read_lobster(path, *, tick_size=None, tz="America/New_York", sessions=US_EQUITY, sort=True):
    """Read a LOBSTER orderbook + message pair (either file may be given).

    Parameters
    ----------
    path : path-like
        ``TICKER_YYYY-MM-DD_START_END_orderbook_L.csv`` or the matching message file.
    tick_size : float, optional
        Default 0.01 USD, the tick of the NASDAQ stocks LOBSTER covers, unless the prices lie on
        a finer grid (a stock under one dollar): then that grid, with the off-grid prices counted.
    tz : str
        LOBSTER times are seconds after midnight, exchange (New York) time.
    sessions : Sessions or str
    sort : bool

    Returns
    -------
    dict[str, Book]

    Notes
    -----
    Orderbook row ``k`` is the book after message ``k``; its timestamp is message ``k``'s time.
    Prices are USD x 10000; ``+-9999999999`` with size 0 marks an empty level. Halt messages
    (event type 7) are dropped as ``non_trading_phase``. ``volume`` is the size of visible and
    hidden executions (event types 4 and 5). An event type outside LOBSTER's 1-7 is a
    :class:`DataError`: the file is not what it claims to be.
    """
    book_file, message_file, match = lobster_pair(existing_file(path))
    try:
        book = pd.read_csv(book_file, header=None)
        msg = pd.read_csv(message_file, header=None, dtype={0: str})
    except UNREADABLE as exc:
        raise unreadable_error(book_file, exc) from None
    n_levels = int(match["levels"])
    if book.shape[1] != 4 * n_levels or msg.shape[1] < 6 or len(book) != len(msg):
        raise DataError(
            f"LOBSTER shapes do not match: orderbook {book.shape}, message {msg.shape}, "
            f"expected 4 x {n_levels} columns and equal row counts"
        )
    if not all(pd.api.types.is_integer_dtype(t) for t in book.dtypes):
        raise DataError(f"{book_file.name}: LOBSTER prices and sizes must be integers on every row")
    raw = book.to_numpy(dtype=np.int64)
    # Columns per level i: AskPrice, AskSize, BidPrice, BidSize.
    bid_px, bid_sz = raw[:, 2::4], raw[:, 3::4]
    ask_px, ask_sz = raw[:, 0::4], raw[:, 1::4]
    undefined = np.abs(np.hstack([bid_px, ask_px])) == _EMPTY
    cols = level_columns(n_levels)
    frame = pd.DataFrame(np.hstack([bid_px, ask_px]) / _UNITS, columns=cols["bid_px"] + cols["ask_px"])
    frame[cols["bid_sz"]] = bid_sz.astype(float)
    frame[cols["ask_sz"]] = ask_sz.astype(float)

    # Seconds as text: a float64 round trip would move nanosecond stamps.
    secs = msg[0].str.split(".", n=1, expand=True).reindex(columns=[0, 1]).fillna("0")
    nanos = secs[0].astype(np.int64) * 1_000_000_000 + secs[1].str.ljust(9, "0").str[:9].astype(np.int64)
    midnight = pd.Timestamp(match["date"]).tz_localize(tz)
    frame.index = midnight + pd.to_timedelta(nanos.to_numpy(), unit="ns")
    event = pd.to_numeric(msg[1], errors="coerce").to_numpy()
    unknown = ~np.isin(event, _LOBSTER_EVENTS)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(
            f"{message_file.name}: {int(unknown.sum())} messages have an event type outside LOBSTER's 1-7 "
            f"(first at data row {row + 1}: {printable(msg[1].iloc[row])})"
        )
    frame["volume"] = np.where(np.isin(event, (4, 5)), msg[3].to_numpy(float), 0.0)
    symbol = match["symbol"]
    return {
        symbol: clean_book(
            frame, symbol=symbol, source=book_file.name, tick_size=_LOBSTER_TICK if tick_size is None else tick_size,
            tick_stated=tick_size is not None, sessions=as_sessions(sessions),
            undefined=undefined, trading=event != 7, sort=sort,
            meta={"format": "lobster", "date": match["date"], "message_file": message_file.name},
        )
    }  # fmt: skip
