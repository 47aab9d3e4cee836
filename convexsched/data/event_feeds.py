"""Order-level event streams from Databento MBO and LOBSTER message files.

Both readers return an :class:`~convexsched.data.events.Events` stream (read them through
:func:`convexsched.read_events`) and a :class:`~convexsched.data.book.LoadReport` in which every
record is either kept or counted under a drop reason.

Databento MBO (:func:`read_mbo_events`)
---------------------------------------
Records of one instrument, in file order (``ts_recv``, Databento's sort key):

======  ==================================================================================
``A``   ADD (``F_SNAPSHOT`` adds of the start-of-day book are ordinary adds)
``C``   CANCEL of ``size`` shares (the whole order when nothing is left)
``M``   MODIFY to the new price and size (size 0: the order leaves); a modify of an order the
        file never added is an add, as in Databento's book examples, and noted
``R``   CLEAR
``F``   PRINT against the resting order (its dense number and side); the aggressor is the
        other side, 0 when the record's side is ``N`` (the opening auction's fills) and 0 for
        the fill of the aggressor's own order (its side is the preceding ``T``'s: CME reports
        both sides when a resting order is modified into the other side). The ``C`` or ``M``
        that follows the fill changes the book
``T``   nothing: the trade summary repeats its ``F`` records (counted as ``trade_summary``)
======  ==================================================================================

Because CME reports the book change of a fill as a cancel, the replay's rematch rule (which acts
on TRADE events) never applies to an MBO stream: a later cancel of an order we consumed gets only
what is left under both rules.

Time zone and sessions: the venue's zone (``America/Chicago`` for GLBX, ``America/New_York`` for
XNAS/DBEQ, else UTC), the zone of its trading day: an ES evening session opens at 17:00 CT, the
next day's date in UTC. The session is the data's own span from the first trade (``T`` or
``F``: the open, after the pre-open in which the book may be crossed), floored to the minute,
to the last record itself (not its minute's ceiling: the ES file's start-of-day snapshot is
stamped 18:00 CT of the day before, which a ceiled 17:00-18:00 session would take for a second
trading day). The tick is
the prices' common grid (ES 0.25) unless given; no board lot.

LOBSTER (:func:`read_lobster_events`)
-------------------------------------
A message file ``TICKER_YYYY-MM-DD_start_end_message_L.csv`` (seconds after midnight, New York
time) and its ``..._orderbook_L.csv`` partner, whose row ``k`` is the book *after* message ``k``.

* The book before the first message is the first orderbook row with the first message undone
  (an add taken out, a cancel or execution put back); each of its levels becomes **one
  synthetic order**, added before every message: the queue ahead of every later order.
* 1 ADD; 2 CANCEL of ``size`` shares; 3 CANCEL of the whole order; 4 TRADE against the resting
  order (aggressor ``-direction``); 5 hidden execution and 6 cross: PRINT with no book change
  (aggressor ``-direction`` for 5, 0 for the cross), all against one pseudo order that never
  rests, so the replay lets them fill our resting child only when they trade through its price
  (a hidden order at our price ranks behind us on NASDAQ: conservative); 7 trading halt or
  resume: counted (``halt``) and dropped. Any other type is refused.
* A message about an order from before the file (an id never added) applies to the synthetic
  order of its side and price while that one has shares left, else it is counted as
  ``orphan``. Levels deeper than the orderbook file's ``L`` were not seeded: their orders are
  orphans.
* Off-grid prices (sub-tick): prints are rounded toward the resting side's own side (a hidden
  bid's print up, an ask's down) so that "through our price" keeps its strict meaning; other
  messages at off-grid prices are dropped (``off_grid``).

Sessions: from the first message floored to the minute to the last message, clipped to the file
name's window (a short sample of a day has a short session, not an empty 09:30-16:00 one).

Truncated files
---------------
A file cut inside its last record is refused (:class:`~convexsched.errors.DataError`): DBN
through the decoder's incomplete-record signal; LOBSTER when a row lacks fields or the message
and orderbook files have different row counts. The orderbook file is read for its first row
only, so a cut inside the last field of its last row, which parses, changes nothing read.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, InvalidInputError
from .book import LoadReport
from .events import ADD, CANCEL, CLEAR, MODIFY, PRINT, TRADE, Events, us_sessions_for
from .sessions import Sessions

_UNDEF_PRICE = np.iinfo(np.int64).max
_SCALE = 1e9
_DBN_KINDS = {"A": ADD, "C": CANCEL, "M": MODIFY, "R": CLEAR, "F": PRINT}


def _check_file(path):
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"no such file: {path}")
    return path


class _Stream:
    """Event rows appended one at a time (exchange order), plus the dense order numbering."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.order_ids: list[int] = []

    def new_order(self, feed_id):
        self.order_ids.append(int(feed_id))
        return len(self.order_ids) - 1

    def emit(self, time, kind, order, side, price, qty, aggressor=0):
        self.rows.append((time, kind, order, side, price, qty, aggressor))

    def arrays(self):
        columns = list(zip(*self.rows)) if self.rows else [()] * 7
        time = np.asarray(columns[0], np.int64)
        kind, price = np.asarray(columns[1], np.int8), np.asarray(columns[4], np.int64)
        clear = kind == CLEAR
        if clear.any() and not clear.all():
            # A clear has no price; one on the stream's own grid keeps the replay's price range tight.
            price[clear] = price[~clear].min()
        late = int((np.diff(time) < 0).sum()) if len(time) else 0
        return {
            # A stamp out of step takes the running max: the file order is the exchange order.
            "time": np.maximum.accumulate(time) if len(time) else time,
            "kind": kind,
            "order": np.asarray(columns[2], np.int64),
            "side": np.asarray(columns[3], np.int8),
            "price": price,
            "qty": np.asarray(columns[5], float),
            "aggressor": np.asarray(columns[6], np.int8),
        }, late


# -- Databento MBO ---------------------------------------------------------------------------------
def _dbn_tick(prices, tick_size, name):
    """The price grid in fixed point (1e-9): given, or the gcd of the distinct prices' gaps."""
    distinct = np.unique(prices)
    if tick_size is not None:
        if not (np.isfinite(tick_size) and tick_size > 0):
            raise InvalidInputError(f"tick_size must be > 0, got {tick_size}")
        tick = int(round(tick_size * _SCALE))
        off = distinct[(distinct - distinct[0]) % tick != 0] if len(distinct) else distinct
        if len(off):
            raise InvalidInputError(
                f"{name}: {len(off)} prices are off the grid of tick_size={tick_size:g} (e.g. {off[0] / _SCALE:g})"
            )
        return tick, None
    gaps = np.diff(distinct)
    if len(gaps) == 0:
        raise InvalidInputError(f"{name}: one distinct price, the tick cannot be inferred; pass tick_size=")
    tick = int(np.gcd.reduce(gaps))
    return tick, f"tick {tick / _SCALE:g} inferred from the grid of {len(distinct)} distinct prices"


def read_mbo_events(path: str | Path, *, symbol: str | None = None, tick_size: float | None = None) -> Events:
    """Read one instrument's order-level events from a Databento MBO file (module docstring).

    Parameters
    ----------
    path : str or Path
        ``.dbn`` or ``.dbn.zst`` with schema ``mbo``.
    symbol : str, optional
        Required when the file holds several instruments (the error lists them).
    tick_size : float, optional
        Price grid; by default the prices' own grid (ES: 0.25).

    Returns
    -------
    Events

    Raises
    ------
    InvalidInputError
        Several instruments without ``symbol=``, an unknown symbol, prices off ``tick_size``.
    DataError
        Not an MBO file, a truncated file, no usable record.
    """
    from .mbo import DATASET_TZ, mbo_records

    path = _check_file(path)
    records, dataset, names = mbo_records(path)
    ids = pd.unique(records["instrument_id"])
    by_symbol = {names[i]: i for i in ids}
    if symbol is None:
        if len(ids) != 1:
            raise InvalidInputError(f"{path.name} holds {len(ids)} instruments {sorted(by_symbol)}; pass symbol=")
        symbol = names[ids[0]]
    elif symbol not in by_symbol:
        raise InvalidInputError(f"symbol {symbol!r} is not in {path.name}; it holds {sorted(by_symbol)}")
    mine = records[records["instrument_id"] == by_symbol[symbol]]
    tz = DATASET_TZ.get(dataset.split(".")[0], "UTC")

    actions = mine["action"].astype("U1")
    priced = np.isin(actions, ("A", "M", "F")) & (mine["price"] != _UNDEF_PRICE)
    tick, tick_note = _dbn_tick(mine["price"][priced].astype(np.int64), tick_size, path.name)
    dropped = {"other_symbol": len(records) - len(mine)}
    stream, notes = _mbo_stream(mine, actions, tick, dropped)
    arrays, late = stream.arrays()
    kept = len(arrays["time"])
    if kept == 0:
        raise DataError(f"no usable MBO event of {symbol} in {path.name}")
    trades = np.isin(actions, ("T", "F"))
    stamps = mine["ts_recv"].astype(np.int64)
    first = int(stamps[trades][0]) if trades.any() else int(stamps[0])
    sessions = _data_span(first, int(arrays["time"][-1]), tz, "from the first trade")
    if tick_note:
        notes.insert(0, tick_note)
    if late:
        notes.append(f"{late} records stamped before the record ahead of them kept their place (running max)")
    report = LoadReport(
        rows_read=len(records), rows_kept=kept, dropped=dropped, source=path.name, symbol=symbol, notes=notes, out_of_order=late
    )
    return Events(
        **arrays,
        symbol=symbol,
        tick_size=tick / _SCALE,
        sessions=sessions,
        order_ids=np.asarray(stream.order_ids, np.int64),
        report=report,
    )


def _mbo_stream(records, actions, tick, dropped):
    """The event rows of one instrument's MBO records (drops counted into ``dropped``)."""
    for reason in ("trade_summary", "orphan_cancel", "orphan_fill", "bad_order", "duplicate_order", "unknown_action"):
        dropped[reason] = 0
    stream = _Stream()
    book: dict[int, list] = {}  # feed id -> [dense, side, price in ticks, size]
    as_add = snapshot = own = taker = 0
    columns = [records[name].tolist() for name in ("side", "price", "size", "order_id", "flags", "ts_recv")]
    for action, side_code, price, size, oid, flags, stamp in zip(actions.tolist(), *columns):
        side_code = side_code.decode() if isinstance(side_code, bytes) else side_code
        side = 1 if side_code == "B" else -1 if side_code == "A" else 0
        snapshot += bool(flags & 32)
        valid = side != 0 and price != _UNDEF_PRICE and size > 0
        if action == "T":
            dropped["trade_summary"] += 1
            taker = side  # the aggressor's side for the fills that follow
        elif action == "R":
            book.clear()
            stream.emit(stamp, CLEAR, -1, 0, 0, 0.0)
        elif action == "A" or (action == "M" and oid not in book):
            if not valid:
                dropped["bad_order"] += 1
            elif oid in book:
                dropped["duplicate_order"] += 1
            else:
                as_add += action == "M"
                ticks = round(price / tick)
                book[oid] = [stream.new_order(oid), side, ticks, size]
                stream.emit(stamp, ADD, book[oid][0], side, ticks, float(size))
        elif action == "C":
            order = book.get(oid)
            if order is None:
                dropped["orphan_cancel"] += 1
                continue
            order[3] -= size
            stream.emit(stamp, CANCEL, order[0], order[1], order[2], float(size) if order[3] > 0 else np.inf)
            if order[3] <= 0:
                del book[oid]
        elif action == "M":
            order = book[oid]
            if size <= 0 or price == _UNDEF_PRICE:
                stream.emit(stamp, CANCEL, order[0], order[1], order[2], np.inf)
                del book[oid]
            else:
                order[2], order[3] = round(price / tick), size
                stream.emit(stamp, MODIFY, order[0], order[1], order[2], float(size))
        elif action == "F":
            order = book.get(oid)
            if order is None or price == _UNDEF_PRICE:
                dropped["orphan_fill"] += 1
                continue
            # The aggressor's own order can rest too (a modify that crossed): its fill is no passive fill.
            aggressor = 0 if side == 0 or order[1] == taker else -order[1]
            own += side != 0 and order[1] == taker
            stream.emit(stamp, PRINT, order[0], order[1], round(price / tick), float(size), aggressor)
        else:
            dropped["unknown_action"] += 1
    notes = [f"{len(records)} MBO records of the instrument; {snapshot} snapshot records (F_SNAPSHOT) added as orders"]
    if as_add:
        notes.append(f"{as_add} modifies of orders the file never added, taken as adds")
    if own:
        notes.append(f"{own} fills of the aggressor's own resting order (its side is the trade's), printed with aggressor 0")
    if snapshot == 0 and not any(row[1] == CLEAR for row in stream.rows):
        notes.append("no snapshot or clear record: the book starts empty, orders resting before the file are missing")
    return stream, notes


# -- LOBSTER -------------------------------------------------------------------------------------
_LOBSTER_NAME = re.compile(
    r"^(?P<symbol>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_message_"
    r"(?P<levels>\d+)\.csv$",
    re.IGNORECASE,
)
_LOBSTER_TZ = "America/New_York"
_LOBSTER_EMPTY = 9999999999
_LOBSTER_PRICE = 1e-4  # currency per unit of the files' price column


def _lobster_table(path, n_columns, what):
    """One LOBSTER csv as a float array; a row with missing or unreadable fields is refused."""
    try:
        frame = pd.read_csv(path, header=None, dtype=float, skip_blank_lines=True)
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path.name}: not a LOBSTER {what} file of numbers ({error}); a truncated last row?") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: empty LOBSTER {what} file") from None
    if frame.shape[1] != n_columns:
        raise DataError(f"{path.name}: a LOBSTER {what} file has {n_columns} columns, this one {frame.shape[1]}")
    values = frame.to_numpy()
    bad = np.flatnonzero(np.isnan(values).any(axis=1))
    if len(bad):
        where = (
            "its last row is partial: the file is truncated" if bad[0] == len(values) - 1 else f"row {bad[0] + 1} is incomplete"
        )
        raise DataError(f"{path.name}: {where} ({len(bad)} rows with missing fields)")
    return values


def _seed_levels(first_row, first_message, n_levels):
    """The book before the first message: ``{(side, price): shares}`` from the first orderbook row."""
    levels: dict[tuple[int, int], float] = {}
    for i in range(n_levels):
        for side, column in ((-1, 4 * i), (1, 4 * i + 2)):
            price, size = int(first_row[column]), float(first_row[column + 1])
            if size > 0 and abs(price) < _LOBSTER_EMPTY:
                levels[(side, price)] = size
    kind, size, price, direction = int(first_message[1]), float(first_message[3]), int(first_message[4]), int(first_message[5])
    change = {1: -size, 2: size, 3: size, 4: size}.get(kind, 0.0)
    if change:
        left = levels.get((direction, price), 0.0) + change
        if left > 0:
            levels[(direction, price)] = left
        else:
            levels.pop((direction, price), None)
    return levels


def read_lobster_events(path: str | Path, *, symbol: str | None = None, tick_size: float = 0.01) -> Events:
    """Read a LOBSTER message file (and its orderbook partner) as an event stream (module docstring).

    Parameters
    ----------
    path : str or Path
        ``TICKER_YYYY-MM-DD_start_end_message_L.csv``; ``..._orderbook_L.csv`` must sit beside it.
    symbol : str, optional
        Checked against the ticker of the file name.
    tick_size : float
        Price grid in currency (0.01 USD).

    Returns
    -------
    Events

    Raises
    ------
    InvalidInputError
        A name that is not LOBSTER's, a missing orderbook file, another symbol, an undefined
        event type.
    DataError
        A truncated or malformed file, no usable message.
    """
    path = _check_file(path)
    match = _LOBSTER_NAME.match(path.name)
    if match is None:
        raise InvalidInputError(
            f"{path.name} is not named like a LOBSTER message file "
            "(TICKER_YYYY-MM-DD_start_end_message_L.csv: the date is in the name)"
        )
    ticker = match["symbol"]
    if symbol is not None and symbol != ticker:
        raise InvalidInputError(f"symbol {symbol!r} is not in {path.name}; it holds {ticker!r}")
    if not (np.isfinite(tick_size) and tick_size > 0):
        raise InvalidInputError(f"tick_size must be > 0, got {tick_size}")
    n_levels = int(match["levels"])
    book_path = path.with_name(f"{match['symbol']}_{match['date']}_{match['start']}_{match['end']}_orderbook_{n_levels}.csv")
    if not book_path.is_file():
        raise InvalidInputError(f"the LOBSTER orderbook file {book_path.name} must sit beside {path.name}")
    messages = _lobster_table(path, 6, "message")
    if len(messages) == 0:
        raise DataError(f"{path.name} holds no message")
    undefined = ~np.isin(messages[:, 1], (1, 2, 3, 4, 5, 6, 7))
    if undefined.any():
        row = int(np.flatnonzero(undefined)[0])
        raise InvalidInputError(
            f"{path.name} row {row + 1}: undefined LOBSTER event type {messages[row, 1]:g} "
            "(1 add, 2 cancel, 3 delete, 4 execution, 5 hidden execution, 6 cross, 7 halt)"
        )
    book_rows = _lobster_table(book_path, 4 * n_levels, "orderbook")
    if len(book_rows) != len(messages):
        raise DataError(
            f"{path.name} has {len(messages)} rows, {book_path.name} {len(book_rows)}: one of them is "
            "truncated (LOBSTER writes one book row per message)"
        )

    midnight = pd.Timestamp(match["date"]).tz_localize(_LOBSTER_TZ).value
    time = midnight + np.rint(messages[:, 0] * 1e9).astype(np.int64)
    units = tick_size / _LOBSTER_PRICE  # price units per tick
    seed = _seed_levels(book_rows[0], messages[0], n_levels)
    stream, dropped, notes = _lobster_stream(messages, time, seed, units)
    arrays, late = stream.arrays()
    kept_rows = len(messages) - sum(dropped.values())
    if kept_rows == 0:
        raise DataError(f"no usable message in {path.name}")
    if late:
        notes.append(f"{late} messages stamped before the message ahead of them kept their place (running max)")
    report = LoadReport(
        rows_read=len(messages),
        rows_kept=kept_rows,
        dropped=dropped,
        source=path.name,
        symbol=ticker,
        notes=notes,
        out_of_order=late,
    )
    window = tuple((pd.Timestamp(0) + pd.Timedelta(milliseconds=int(match[key]))).time() for key in ("start", "end"))
    sessions = _data_span(time[0], time[-1], _LOBSTER_TZ, "LOBSTER data span", window)
    return Events(
        **arrays,
        symbol=ticker,
        tick_size=float(tick_size),
        sessions=sessions,
        order_ids=np.asarray(stream.order_ids, np.int64),
        report=report,
    )


def _data_span(first_ns, last_ns, tz, name, window=None):
    """One session from ``first_ns`` floored to the minute to the last event itself.

    Ending at the last event rather than its minute's ceiling keeps out a record stamped on the
    boundary of another local date (the ES file's start-of-day snapshot sits at 18:00 CT the day
    before its session). ``window``: a (start, end) of local times the session is clipped to.
    """
    span = us_sessions_for(np.array([first_ns, last_ns]), tz=tz, name=name)
    ((a, b),) = span.intervals
    last = pd.Timestamp(int(last_ns), tz="UTC").tz_convert(tz).time()
    b = last if a < last < b else b
    if window is not None:
        a, b = max(a, window[0]), min(b, window[1])
    return Sessions(((a, b),), tz, name) if a < b else span


def _lobster_stream(messages, time, seed, units):
    """The event rows of a LOBSTER message file after the seeded book."""
    stream = _Stream()
    dropped = {"halt": 0, "orphan": 0, "off_grid": 0, "duplicate_order": 0}
    t0 = int(time[0])
    synthetic: dict[tuple[int, int], list] = {}  # (side, price) -> [dense, side, ticks, shares left]
    for (side, price), size in sorted(seed.items()):
        ticks = int(round(price / units))
        synthetic[(side, price)] = [stream.new_order(-1), side, ticks, size]
        stream.emit(t0, ADD, synthetic[(side, price)][0], side, ticks, size)
    live: dict[int, list] = {}  # LOBSTER id -> [dense, side, ticks, shares left]
    added: set[int] = set()
    hidden = -1
    ids = messages[:, 2].astype(np.int64).tolist()
    for stamp, kind, oid, size, price, direction in zip(
        time.tolist(),
        messages[:, 1].astype(int).tolist(),
        ids,
        messages[:, 3].tolist(),
        messages[:, 4].astype(np.int64).tolist(),
        messages[:, 5].astype(int).tolist(),
    ):
        exact = price / units
        on_grid = abs(exact - round(exact)) < 1e-6
        if kind == 7:
            dropped["halt"] += 1
        elif kind in (5, 6):
            if hidden < 0:
                hidden = stream.new_order(0)
            # Round a sub-tick print toward its resting side: "through our price" stays strict.
            ticks = round(exact) if on_grid else int(np.ceil(exact) if direction > 0 else np.floor(exact))
            stream.emit(stamp, PRINT, hidden, direction, ticks, size, -direction if kind == 5 else 0)
        elif not on_grid:
            dropped["off_grid"] += 1
        elif kind == 1:
            if oid in added:
                dropped["duplicate_order"] += 1
                continue
            added.add(oid)
            live[oid] = [stream.new_order(oid), direction, round(exact), size]
            stream.emit(stamp, ADD, live[oid][0], direction, round(exact), size)
        else:
            in_file = oid in live
            # An id added in the file and gone is an orphan too: never the synthetic order's shares.
            order = live[oid] if in_file else None if oid in added else synthetic.get((direction, price))
            if order is None:
                dropped["orphan"] += 1
                continue
            take = order[3] if kind == 3 and in_file else min(size, order[3])
            order[3] -= take
            if kind == 4:
                stream.emit(stamp, TRADE, order[0], order[1], round(exact), take, -direction)
            else:
                stream.emit(stamp, CANCEL, order[0], order[1], order[2], np.inf if order[3] <= 0 else take)
            if order[3] <= 0:
                if in_file:
                    del live[oid]
                else:
                    del synthetic[(direction, price)]
    notes = [f"{len(seed)} levels of the first orderbook row (first message undone) seeded as synthetic orders"]
    return stream, dropped, notes
