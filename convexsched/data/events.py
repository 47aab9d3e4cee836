"""Order-level event streams: every order, cancel and trade of one instrument, in exchange order.

A snapshot book (:class:`convexsched.Book`) shows the levels every few seconds; an event stream
shows every change, so the book can be rebuilt at any instant and a replay can take our shares
from specific resting orders (:class:`convexsched.ReplayExecutor`).

One stream is a set of arrays in exchange sequence, one row per event:

======  ==========================================================================================
kind    meaning
======  ==========================================================================================
ADD     a limit order rests: ``order``, ``side`` (+1 bid, -1 ask), ``price`` (ticks), ``qty``
CANCEL  ``qty`` shares of ``order`` leave the book (``inf``: the whole order)
TRADE   ``qty`` shares trade against the resting ``order`` at ``price``; ``aggressor`` is the
        side that crossed (+1 buyer-initiated, -1 seller-initiated, 0 an auction print)
PRINT   a trade against ``order`` that the feed reports separately from the book change
        (Databento MBO ``F`` records: the ``C``/``M`` that follows changes the book)
MODIFY  ``order`` now rests at ``price`` with ``qty``; it loses its queue priority when the price
        changes or the size grows
CLEAR   the book empties
======  ==========================================================================================

Readers
-------
* **SSE order and trade files** (the ``SHorders``/``SHtrans`` pair): SSE publishes an incoming
  order only with the quantity that rests after its immediate executions, so the book is
  rebuilt by adding on ``OrderType`` 2, removing on 10 and reducing **only the passive order** of
  each trade (the seller for a buyer-initiated trade), both files merged on ``ApplSeqNum``.
  Auction prints (``TradeBSFlag`` 0) reduce both orders. Board lot 100 shares for buys.
* **Databento MBO** (DBN): ``A``/``C``/``M``/``R`` change the book, ``F`` are prints.
* **LOBSTER** message files: 1 add, 2 partial cancel, 3 delete, 4 visible execution (a trade
  against the resting order), 5 hidden execution and 6 cross (prints that change no displayed
  order), 7 halt (kept out). A LOBSTER file starts mid-day: the levels of the first book row are
  seeded as one synthetic order each, ahead of every later order.

Every reader returns a :class:`LoadReport`: rows read, kept and dropped per reason (orphans,
unknown types, rows of other symbols are *counted*, never silently ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, InvalidInputError
from .book import LoadReport
from .sessions import CN_EQUITY, US_EQUITY, Sessions, span_sessions

ADD, CANCEL, TRADE, PRINT, MODIFY, CLEAR = 0, 1, 2, 3, 4, 5
KIND_NAMES = ("ADD", "CANCEL", "TRADE", "PRINT", "MODIFY", "CLEAR")


@dataclass
class Events:
    """One instrument's order-level event stream (module docstring).

    Attributes
    ----------
    time : numpy.ndarray of int64
        Event times, UNIX nanoseconds (UTC), nondecreasing.
    kind : numpy.ndarray of int8
        :data:`ADD`, :data:`CANCEL`, :data:`TRADE`, :data:`PRINT`, :data:`MODIFY` or :data:`CLEAR`.
    order : numpy.ndarray of int64
        Dense order number ``0 .. n_orders - 1`` (``-1`` for CLEAR).
    side : numpy.ndarray of int8
        Side of ``order``: +1 bid (buy order), -1 ask (sell order).
    price : numpy.ndarray of int64
        Price in ticks (``price * tick_size`` in currency).
    qty : numpy.ndarray of float64
        Shares (``inf`` on a CANCEL: the whole order).
    aggressor : numpy.ndarray of int8
        TRADE/PRINT: +1 buyer-initiated, -1 seller-initiated, 0 unknown or auction.
    symbol : str
    tick_size : float
    sessions : Sessions
        The continuous-trading intervals (the replay's buckets).
    lot : float
        Board lot of the market (1: none).
    lot_sides : tuple of str
        The order sides the lot binds (SSE: buys only).
    order_ids : numpy.ndarray
        The feed's own order number of each dense order.
    report : LoadReport
    """

    time: np.ndarray
    kind: np.ndarray
    order: np.ndarray
    side: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    aggressor: np.ndarray
    symbol: str
    tick_size: float
    sessions: Sessions
    lot: float = 1.0
    lot_sides: tuple[str, ...] = ()
    order_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    report: LoadReport | None = None

    def __post_init__(self) -> None:
        n = len(self.time)
        arrays = {
            "kind": self.kind,
            "order": self.order,
            "side": self.side,
            "price": self.price,
            "qty": self.qty,
            "aggressor": self.aggressor,
        }
        for name, array in arrays.items():
            if len(array) != n:
                raise InvalidInputError(f"events: {name} has {len(array)} rows, time has {n}")
        if n and (np.diff(self.time) < 0).any():
            raise InvalidInputError("events: times must be nondecreasing (exchange sequence)")
        if not (np.isfinite(self.tick_size) and self.tick_size > 0):
            raise InvalidInputError(f"events: tick_size must be > 0, got {self.tick_size}")

    def __len__(self) -> int:
        return len(self.time)

    @property
    def n_orders(self) -> int:
        """Number of distinct orders (dense numbers ``0 .. n_orders - 1``)."""
        return int(self.order.max()) + 1 if len(self.order) else 0

    @property
    def times(self) -> pd.DatetimeIndex:
        """Event times in the market's time zone."""
        return pd.DatetimeIndex(self.time.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(self.sessions.tz)

    def frame(self) -> pd.DataFrame:
        """The stream as a DataFrame (prices in currency, kinds as names) for inspection."""
        return pd.DataFrame(
            {
                "kind": np.asarray(KIND_NAMES)[self.kind],
                "order": self.order,
                "side": self.side,
                "price": self.price * self.tick_size,
                "qty": self.qty,
                "aggressor": self.aggressor,
            },
            index=self.times,
        )

    def __repr__(self) -> str:
        return f"Events({self.symbol!r}, {len(self)} events, {self.n_orders} orders, tick {self.tick_size:g})"


def read_events(
    path: str | Path,
    *,
    format: str | None = None,
    symbol: str | None = None,
    trades: str | Path | None = None,
    tick_size: float | None = None,
) -> Events:
    """Read one instrument's order-level event stream.

    Parameters
    ----------
    path : str or Path
        SSE: the orders file (``trades=`` the trades file) or a folder holding ``SHorders*`` and
        ``SHtrans*``; Databento: an MBO ``.dbn``/``.dbn.zst`` file; LOBSTER: a ``*_message_*.csv``
        file (its ``*_orderbook_*`` partner beside it).
    format : {"sse", "mbo", "lobster"}, optional
        Inferred from the file names when omitted.
    symbol : str, optional
        Required when the file holds several instruments (the error lists them).
    trades : str or Path, optional
        SSE trades file when ``path`` is the orders file.
    tick_size : float, optional
        Price grid; SSE 0.01, LOBSTER 0.01, MBO from the prices' own grid when omitted.

    Returns
    -------
    Events

    Raises
    ------
    InvalidInputError
        Unknown format, missing partner file, several symbols without ``symbol=``.
    DataError
        A file without a usable event.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"no such file or folder: {path}")
    fmt = format or _infer_format(path)
    if fmt == "sse":
        return read_sse(path, trades=trades, symbol=symbol, tick_size=tick_size or 0.01)
    if fmt == "mbo":
        from .event_feeds import read_mbo_events

        return read_mbo_events(path, symbol=symbol, tick_size=tick_size)
    if fmt == "lobster":
        from .event_feeds import read_lobster_events

        return read_lobster_events(path, symbol=symbol, tick_size=tick_size or 0.01)
    raise InvalidInputError(f"format must be one of 'sse', 'mbo', 'lobster', got {fmt!r}")


def _infer_format(path):
    name = path.name.lower()
    if path.is_dir() or "shorders" in name or "shtrans" in name:
        return "sse"
    if ".dbn" in name:
        return "mbo"
    if "_message_" in name:
        return "lobster"
    raise InvalidInputError(f"cannot tell the event format of {path.name}; pass format='sse', 'mbo' or 'lobster'")


def _sse_pair(path, trades):
    if path.is_dir():
        orders = sorted(p for p in path.iterdir() if p.name.lower().startswith("shorders"))
        found = sorted(p for p in path.iterdir() if p.name.lower().startswith("shtrans"))
        if len(orders) != 1 or len(found) != 1:
            raise InvalidInputError(
                f"folder {path} must hold one SHorders* and one SHtrans* file, found {len(orders)} and {len(found)}"
            )
        return orders[0], found[0]
    if trades is None:
        raise InvalidInputError("SSE order files need their trade file: pass trades=")
    trades = Path(trades)
    if not trades.exists():
        raise InvalidInputError(f"no such file: {trades}")
    return path, trades


_SSE_ORDER_COLUMNS = [
    "MDDate",
    "MDTime",
    "OrderType",
    "OrderPrice",
    "OrderQty",
    "OrderBSFlag",
    "ApplSeqNum",
    "OrderNO",
    "SecurityID",
]
_SSE_TRADE_COLUMNS = [
    "MDDate",
    "MDTime",
    "TradeBuyNo",
    "TradeSellNo",
    "TradeBSFlag",
    "TradePrice",
    "TradeQty",
    "ApplSeqNum",
    "SecurityID",
]


def _read_csv(path, columns):
    try:
        # pandas reads a zip holding one CSV as the CSV itself.
        frame = pd.read_csv(path, usecols=columns, dtype={"SecurityID": str, "MDDate": str, "MDTime": str})
    except ValueError as error:
        raise InvalidInputError(f"{Path(path).name} is not an SSE file with columns {columns}: {error}") from None
    return frame


def _sse_times(frame):
    stamps = pd.to_datetime(frame["MDDate"] + " " + frame["MDTime"], format="%Y.%m.%d %H:%M:%S.%f", errors="coerce")
    bad = stamps.isna().to_numpy()
    local = pd.DatetimeIndex(stamps).tz_localize(CN_EQUITY.tz)
    return np.where(bad, 0, local.as_unit("ns").asi8), bad


def read_sse(path: str | Path, *, trades: str | Path | None = None, symbol: str | None = None, tick_size: float = 0.01) -> Events:
    """Read the SSE order-by-order and trade-by-trade files of one stock (module docstring).

    Parameters
    ----------
    path : str or Path
        The orders file, or a folder holding both files.
    trades : str or Path, optional
        The trades file (required when ``path`` is a file).
    symbol : str, optional
        ``SecurityID`` such as ``"600761.SH"``; required when the files hold several.
    tick_size : float
        Price grid (0.01 CNY).

    Returns
    -------
    Events
    """
    orders_path, trades_path = _sse_pair(Path(path), trades)
    orders = _read_csv(orders_path, _SSE_ORDER_COLUMNS)
    trades_frame = _read_csv(trades_path, _SSE_TRADE_COLUMNS)
    symbols = sorted(set(orders["SecurityID"].dropna()) | set(trades_frame["SecurityID"].dropna()))
    if symbol is None:
        if len(symbols) != 1:
            raise InvalidInputError(f"the SSE files hold {len(symbols)} symbols {symbols}; pass symbol=")
        symbol = symbols[0]
    elif symbol not in symbols:
        raise InvalidInputError(f"symbol {symbol!r} is not in the SSE files; they hold {symbols}")
    rows_read = len(orders) + len(trades_frame)
    other = int((orders["SecurityID"] != symbol).sum() + (trades_frame["SecurityID"] != symbol).sum())
    orders = orders[orders["SecurityID"] == symbol]
    trades_frame = trades_frame[trades_frame["SecurityID"] == symbol]
    dropped = {"other_symbol": other}
    events = _sse_events(orders, trades_frame, tick_size, dropped)
    kept = len(events["time"])
    # A 2-sided auction print is one trade row and two reductions: count rows, not events.
    kept_rows = kept - events.pop("auction_pairs")
    report = LoadReport(
        rows_read=rows_read,
        rows_kept=kept_rows,
        dropped=dropped,
        source=str(orders_path),
        symbol=symbol,
        notes=[f"{kept} events from {kept_rows} rows of {symbol}"],
    )
    if kept == 0:
        raise DataError(f"no usable event of {symbol} in {orders_path.name} and {trades_path.name}")
    order_ids = events.pop("order_ids")
    return Events(
        **events,
        symbol=symbol,
        tick_size=tick_size,
        sessions=CN_EQUITY,
        lot=100.0,
        lot_sides=("buy",),
        order_ids=order_ids,
        report=report,
    )


def _sse_events(orders, trades, tick_size, dropped):
    """The merged, ordered event arrays of one SSE stock (counts drops into ``dropped``)."""
    o_time, o_bad_time = _sse_times(orders)
    t_time, t_bad_time = _sse_times(trades)
    o_type = orders["OrderType"].to_numpy()
    o_side = np.where(orders["OrderBSFlag"].to_numpy() == 1, 1, np.where(orders["OrderBSFlag"].to_numpy() == 2, -1, 0))
    o_price = orders["OrderPrice"].to_numpy(float)
    o_qty = orders["OrderQty"].to_numpy(float)
    o_no = orders["OrderNO"].to_numpy(np.int64)
    o_seq = orders["ApplSeqNum"].to_numpy(np.int64)
    known_type = np.isin(o_type, (2, 10))
    is_add = o_type == 2
    bad_add = is_add & ~(np.isfinite(o_price) & (o_price > 0) & np.isfinite(o_qty) & (o_qty > 0) & (o_side != 0))
    keep_o = known_type & ~o_bad_time & ~bad_add
    dropped["unknown_order_type"] = int((~known_type).sum())
    dropped["bad_time"] = int((o_bad_time & known_type).sum())
    dropped["bad_order"] = int((bad_add & known_type & ~o_bad_time).sum())

    adds = keep_o & is_add
    add_numbers, first = np.unique(o_no[adds], return_index=True)
    dropped["duplicate_order"] = int(adds.sum() - len(add_numbers))
    dense = {int(n): k for k, n in enumerate(add_numbers)}
    add_side = dict(zip(add_numbers.tolist(), o_side[adds][first].tolist()))
    add_price = dict(zip(add_numbers.tolist(), np.rint(o_price[adds][first] / tick_size).tolist()))
    add_rows = np.flatnonzero(adds)[first]
    keep_add = np.zeros(len(orders), bool)
    keep_add[add_rows] = True

    # Orders: ADD (first add of each number) and CANCEL (of a known order).
    cancels = keep_o & (o_type == 10)
    cancel_known = np.array([int(n) in dense for n in o_no[cancels]], bool)
    dropped["orphan_cancel"] = int((~cancel_known).sum())
    cancel_rows = np.flatnonzero(cancels)[cancel_known]
    rows = [
        _block(
            o_seq[add_rows],
            o_time[add_rows],
            ADD,
            [dense[int(n)] for n in o_no[add_rows]],
            o_side[add_rows],
            np.rint(o_price[add_rows] / tick_size),
            o_qty[add_rows],
            0,
        ),
        _block(
            o_seq[cancel_rows],
            o_time[cancel_rows],
            CANCEL,
            [dense[int(n)] for n in o_no[cancel_rows]],
            [add_side[int(n)] for n in o_no[cancel_rows]],
            [add_price[int(n)] for n in o_no[cancel_rows]],
            np.full(len(cancel_rows), np.inf),
            0,
        ),
    ]

    # Trades: continuous ones reduce the passive order, auction prints both orders.
    flag = trades["TradeBSFlag"].to_numpy()
    price = trades["TradePrice"].to_numpy(float)
    qty = trades["TradeQty"].to_numpy(float)
    good = ~t_bad_time & np.isin(flag, (0, 1, 2)) & np.isfinite(price) & (price > 0) & np.isfinite(qty) & (qty > 0)
    dropped["bad_trade"] = int((~good).sum())
    buy_no, sell_no = trades["TradeBuyNo"].to_numpy(np.int64), trades["TradeSellNo"].to_numpy(np.int64)
    seq = trades["ApplSeqNum"].to_numpy(np.int64)
    ticks = np.rint(price / tick_size)
    orphan = 0
    auction_pairs = 0
    for wanted, passive_no, aggressor in ((1, sell_no, 1), (2, buy_no, -1)):
        sel = good & (flag == wanted)
        known = np.array([int(n) in dense for n in passive_no[sel]], bool)
        orphan += int((~known).sum())
        r = np.flatnonzero(sel)[known]
        rows.append(
            _block(
                seq[r],
                t_time[r],
                TRADE,
                [dense[int(n)] for n in passive_no[r]],
                [add_side[int(n)] for n in passive_no[r]],
                ticks[r],
                qty[r],
                aggressor,
            )
        )
    sel = np.flatnonzero(good & (flag == 0))
    both = np.array([int(b) in dense and int(s) in dense for b, s in zip(buy_no[sel], sell_no[sel])], bool)
    orphan += int((~both).sum())
    r = sel[both] if len(sel) else sel
    auction_pairs = len(r)
    for numbers in (buy_no, sell_no):
        rows.append(
            _block(
                seq[r],
                t_time[r],
                TRADE,
                [dense[int(n)] for n in numbers[r]],
                [add_side[int(n)] for n in numbers[r]],
                ticks[r],
                qty[r],
                0,
            )
        )
    dropped["orphan_trade"] = orphan

    merged = pd.concat([pd.DataFrame(block) for block in rows], ignore_index=True)
    duplicated = merged.duplicated(subset=["seq", "kind", "order"], keep="first")
    dropped["duplicate_event"] = int(duplicated.sum())
    merged = merged[~duplicated.to_numpy()].sort_values(["seq", "kind"], kind="stable")
    # Times are stamps of the exchange sequence; a stamp out of step (feed jitter) takes the running max.
    time = np.maximum.accumulate(merged["time"].to_numpy(np.int64))
    return {
        "time": time,
        "kind": merged["kind"].to_numpy(np.int8),
        "order": merged["order"].to_numpy(np.int64),
        "side": merged["side"].to_numpy(np.int8),
        "price": merged["price"].to_numpy(np.int64),
        "qty": merged["qty"].to_numpy(float),
        "aggressor": merged["aggressor"].to_numpy(np.int8),
        "order_ids": add_numbers.astype(np.int64),
        "auction_pairs": auction_pairs,
    }


def _block(seq, time, kind, order, side, price, qty, aggressor):
    n = len(seq)
    return {
        "seq": np.asarray(seq, np.int64),
        "time": np.asarray(time, np.int64),
        "kind": np.full(n, kind, np.int8),
        "order": np.asarray(order, np.int64).reshape(n),
        "side": np.asarray(side, np.int8).reshape(n),
        "price": np.asarray(price, float).astype(np.int64).reshape(n),
        "qty": np.asarray(qty, float).reshape(n),
        "aggressor": np.full(n, aggressor, np.int8),
    }


def us_sessions_for(time_ns: np.ndarray, tz: str = US_EQUITY.tz, name: str = "data span") -> Sessions:
    """Sessions spanning the events' own time range (feeds without exchange hours)."""
    stamps = pd.DatetimeIndex(np.asarray(time_ns).astype("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    return span_sessions(stamps[0], stamps[-1], tz, name=name)
