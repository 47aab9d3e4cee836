"""Binance depth streams (REST snapshot + diff depth) replayed into a 10-level :class:`Book`.

The files are what hftbacktest's collector records (``../shared/data/binance-btcusdt-hftbacktest``):
gzip text, one message per line, ``<local receive time, UNIX ns> <raw websocket JSON>``, with
``<symbol>@depth@100ms`` (spot) or ``@depth@0ms`` (USD-M futures) diff-depth events,
``@bookTicker``, ``@trade`` and one REST depth snapshot line (``lastUpdateId``, 1,000 levels).

The book is rebuilt with Binance's rules ("How to manage a local order book correctly"):

* spot: drop every event with ``u <= lastUpdateId``; the first applied event must have
  ``U <= lastUpdateId + 1 <= u``; then each event's ``U`` is the previous event's ``u + 1``;
* USD-M futures: drop every event with ``u < lastUpdateId``; the first applied event must have
  ``U <= lastUpdateId <= u``; then each event's ``pu`` is the previous event's ``u``;
* quantities are absolute, a quantity of 0 removes the level.

A broken chain is a **gap**: events are missing, so the local book is wrong from there on.
It is reported (``book.meta["update_id_gaps"]``, the report's notes) and the later events are
buffered until a newer REST snapshot re-synchronises the book (the snapshot replays the
buffered events it does not contain, as at the start); without one they are dropped as
``update_id_gap``. Nothing is patched over. A snapshot no newer than the book already built
(a repeated line) is ignored and counted. Spot and futures events mixed in one file, events of
two symbols, and negative quantities are refused (:class:`DataError`). A file without a snapshot (a continuation) needs ``previous=``: the file before
it, whose replay initializes the book and the update-id chain.

Why our own replay: hftbacktest's converters (``hftbacktest.data.utils.binance*``) turn these
files into its event arrays for its own simulator; they do not apply the update-id rule, report
gaps, nor produce level snapshots, which is what a :class:`Book` needs.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .._text import printable
from ..errors import DataError, InvalidInputError
from .book import LoadReport, clean_book
from .levels import PriceLevels, sampled_frame
from .sessions import infer_sessions, span_sessions

_LINE = re.compile(rb"^\d{16,20} \{")
_MS = 1_000_000


def _open(path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def looks_binance(path):
    """True when the file's first line is ``<ns timestamp> {json}`` of a Binance stream or snapshot."""
    try:
        with _open(path) as handle:
            line = handle.readline(4096)
    except (OSError, EOFError):
        return False
    return bool(_LINE.match(line)) and (b'"stream"' in line or b'"lastUpdateId"' in line)


@dataclass
class _Replay:
    """State of a replay: the levels, the update-id chain and what was counted."""

    levels: PriceLevels = field(default_factory=PriceLevels)
    last_u: int | None = None
    synced: bool = False
    futures: bool | None = None
    symbol: str = ""
    rows: list = field(default_factory=list)
    stamps: list = field(default_factory=list)
    ids: list = field(default_factory=list)
    tickers: list = field(default_factory=list)
    trades: list = field(default_factory=list)
    gaps: list = field(default_factory=list)
    dropped: dict = field(default_factory=lambda: {"before_snapshot": 0, "update_id_gap": 0})
    events: int = 0
    snapshots: int = 0
    pending: list = field(default_factory=list)
    first: bool = False
    stale_snapshots: int = 0


def _quantity(text, where):
    qty = float(text)
    if not qty >= 0:  # NaN too: a quantity is absolute, 0 deletes; a negative one is no Binance message
        raise DataError(f"{where}: quantity {qty!r} is negative or not a number; Binance quantities are absolute (>= 0)")
    return qty


def _load_snapshot(state, snap):
    last = int(snap["lastUpdateId"])
    if state.synced and last <= state.last_u:
        # Older than (or the same as) the book already built: a repeated line, nothing to re-sync.
        state.stale_snapshots += 1
        return []
    state.levels.clear()
    for price, qty in snap["bids"]:
        state.levels.set(True, float(price), _quantity(qty, "snapshot"))
    for price, qty in snap["asks"]:
        state.levels.set(False, float(price), _quantity(qty, "snapshot"))
    state.last_u = last
    state.synced, state.first = True, True
    state.snapshots += 1
    # The snapshot is newer than the events buffered before it: replay those that it misses.
    pending, state.pending = state.pending, []
    return pending


def _stale(state, event):
    """Event already contained in the snapshot (Binance: spot u <= L, futures u < L)."""
    u = event["u"]
    return u <= state.last_u if not state.futures else u < state.last_u


def _chained(state, event, first):
    if first:  # the first event after a snapshot must straddle it
        target = state.last_u if state.futures else state.last_u + 1
        return event["U"] <= target <= event["u"]
    if state.futures:
        return event.get("pu") == state.last_u
    return event["U"] == state.last_u + 1


def _apply(state, event, stamp, n_levels):
    """Apply one diff-depth event (or buffer/drop it) and sample the book after it."""
    if state.last_u is None or not state.synced:
        # Buffered until a snapshot arrives (Binance's rule, also after a gap): the snapshot
        # replays the events it does not contain.
        state.pending.append((event, stamp))
        return
    if _stale(state, event):
        state.dropped["before_snapshot"] += 1
        return
    if not _chained(state, event, state.first):
        expected = state.last_u if state.futures else state.last_u + 1
        state.gaps.append({
            "time": pd.Timestamp(stamp, unit="ns", tz="UTC"), "after_u": state.last_u, "expected": expected,
            "got_U": event["U"], "got_pu": event.get("pu"), "u": event["u"],
        })  # fmt: skip
        state.synced = False
        state.dropped["update_id_gap"] += 1
        return
    where = f"event u={event['u']}"
    for price, qty in event["b"]:
        state.levels.set(True, float(price), _quantity(qty, where))
    for price, qty in event["a"]:
        state.levels.set(False, float(price), _quantity(qty, where))
    state.last_u, state.first = event["u"], False
    state.rows.append(state.levels.top(n_levels))
    state.stamps.append(stamp)
    state.ids.append(event["u"])


def _check_same_stream(state, data, path, number):
    """One market and one symbol per replay: spot events carry no ``pu``, USD-M futures ones do."""
    futures, symbol = "pu" in data, data.get("s", "")
    if state.futures is None:
        state.futures = futures
    elif state.futures != futures:
        raise DataError(
            f"{Path(path).name} (line {number}): spot and USD-M futures depth events are mixed; their update-id "
            "rules differ, so one file (chain) must hold one market"
        )
    if state.symbol and symbol and symbol != state.symbol:
        raise DataError(
            f"{Path(path).name} (line {number}): depth events of {printable(symbol)} follow those of "
            f"{printable(state.symbol)}; one file (chain) must hold one symbol"
        )
    state.symbol = state.symbol or symbol


def _replay(path, state, n_levels, ts, keep_tickers=False):
    """Replay one file into ``state`` (in place)."""
    number = 0
    try:
        with _open(path) as handle:
            for number, line in enumerate(handle, 1):  # noqa: B007 - the error message names the line
                head, _, payload = line.partition(b" ")
                if not payload.strip():
                    continue
                probe = payload[:64]
                is_depth = b"@depth" in probe
                ticker = b"@bookTicker" in probe
                if ticker and not keep_tickers:
                    continue  # the best bid/ask stream carries no depth
                if not (is_depth or ticker or b"lastUpdateId" in probe or b"@trade" in probe):
                    continue
                message = json.loads(payload)
                local = int(head)
                if "lastUpdateId" in message:
                    for event, stamp in _load_snapshot(state, message):
                        _apply(state, event, stamp, n_levels)
                    continue
                data = message.get("data", message)
                if ticker:
                    state.tickers.append((int(data["u"]), float(data["b"]), float(data["a"])))
                    continue
                if not is_depth:
                    trade_time = local if ts == "local" else int(data.get("T", data.get("E", 0))) * _MS
                    state.trades.append((trade_time, float(data["q"])))
                    continue
                state.events += 1
                _check_same_stream(state, data, path, number)
                pu = data.get("pu")
                event = {"U": int(data["U"]), "u": int(data["u"]), "pu": None if pu is None else int(pu),
                         "b": data["b"], "a": data["a"]}  # fmt: skip
                _apply(state, event, local if ts == "local" else int(data["E"]) * _MS, n_levels)
    except DataError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read Binance stream {Path(path).name} (line {number}): {exc}") from exc
    return state


def _busiest_date(index, tz):
    return pd.Series(index.tz_convert(tz).date).value_counts().idxmax()


def _span_sessions(index, tz):
    """One interval covering the data on its busiest local date (crypto trades around the clock)."""
    local = index.tz_convert(tz)
    on_main = local[local.date == _busiest_date(index, tz)]
    return span_sessions(on_main[0], on_main[-1], tz)


def read_binance(path, *, previous=None, n_levels=10, ts="exchange", tick_size=None, tz="UTC", sessions=None,
                 sort=False):  # fmt: skip
    """Rebuild a Binance spot or USD-M futures book from a depth-stream file.

    Parameters
    ----------
    path : path-like
        A gzip (or plain) JSON-lines file as recorded by hftbacktest's collector.
    previous : path-like or list of path-like, optional
        The file(s) before ``path`` (oldest first) when ``path`` holds no REST snapshot.
    n_levels : int
        Levels per side sampled into the book (10).
    ts : {"exchange", "local"}
        Row timestamps: the event time ``E`` (ms) or the recorder's receive time (ns).
    tick_size : float, optional
        Inferred from the prices when omitted (spot BTCUSDT 0.01, futures 0.10).
    tz : str
    sessions : Sessions or str, optional
        Default: one interval spanning the data on its busiest date (rows on another date
        fall outside and are not bucketed).
    sort : bool

    Returns
    -------
    dict[str, Book]
        One book keyed by the stream's symbol (e.g. ``"BTCUSDT"``): one row per applied
        diff-depth event, the book after it; ``volume`` is the traded quantity (base asset)
        since the previous row. The report counts ``before_snapshot`` (events the snapshot
        already contains) and ``update_id_gap`` (events after a broken chain) besides
        :func:`convexsched.data.book.clean_book`'s reasons; ``meta["update_id_gaps"]`` lists the gaps.

    Raises
    ------
    DataError
        Unreadable file, or no snapshot to start from.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if ts not in ("exchange", "local"):
        raise InvalidInputError(f"ts must be 'exchange' or 'local', got {ts!r}")
    state = _Replay()
    chain = [previous] if isinstance(previous, (str, Path)) else list(previous or [])
    for earlier in chain:
        if not Path(earlier).is_file():
            raise DataError(f"no such file: {earlier}")
        _replay(earlier, state, n_levels, ts)
    seeded = state.snapshots > 0
    if seeded:  # only this file's rows make the book; the earlier ones only initialize the state
        state = replace(state, rows=[], stamps=[], trades=[], gaps=[], events=0,
                        dropped={"before_snapshot": 0, "update_id_gap": 0})  # fmt: skip
    _replay(path, state, n_levels, ts)
    if state.snapshots == 0:
        raise DataError(
            f"{path.name} has no REST depth snapshot (lastUpdateId) to start the book from; "
            "pass previous= the file(s) before it (on the command line: --previous PATH)"
        )
    unsynced = len(state.pending)  # events whose (re-)synchronizing snapshot never came
    state.dropped["update_id_gap" if state.last_u is not None else "before_snapshot"] += unsynced
    stamps = np.asarray(state.stamps, dtype=np.int64)
    span = None
    if len(stamps):
        index = pd.DatetimeIndex(pd.to_datetime(stamps, unit="ns", utc=True))
        span = sessions or _span_sessions(index.tz_convert(tz), tz)
    if sessions is None and span is not None:
        # Sessions are times of day of one date: rows past midnight belong to the next file.
        on_day = index.tz_convert(span.tz).date == _busiest_date(index, span.tz)
        state.dropped["other_date"] = int((~on_day).sum())
        stamps, state.rows = stamps[on_day], [r for r, keep in zip(state.rows, on_day, strict=True) if keep]
    volume = np.zeros(len(stamps))
    outside_trades = 0
    if state.trades and len(stamps):
        t, q = np.asarray(state.trades).T
        slot = np.searchsorted(stamps, t.astype(np.int64), side="left")
        inside = (slot < len(stamps)) & (t.astype(np.int64) > stamps[0])
        volume = np.bincount(slot[inside], weights=q[inside], minlength=len(stamps))
        outside_trades = int((~inside).sum())
    frame = sampled_frame(state.rows, stamps, n_levels, volume=volume, tz=tz)
    market = "usdm" if state.futures else "spot"
    symbol = state.symbol or path.name.split("_")[0].upper()
    if not len(frame):
        raise DataError(f"{path.name}: no diff-depth event could be applied after the snapshot")
    book = clean_book(
        frame, symbol=symbol, source=path.name, tick_size=tick_size, sessions=span, sort=sort,
        meta={"format": "binance", "market": market, "update_id_gaps": state.gaps, "timestamp": ts,
              "previous": [Path(p).name for p in chain]},
    )  # fmt: skip
    notes = list(book.report.notes)
    notes.append(f"{market}: {state.events} diff-depth events, {state.snapshots} REST snapshot(s)"
                 + (f" (book seeded by {', '.join(Path(p).name for p in chain)})" if chain else ""))  # fmt: skip
    if state.gaps:
        first = state.gaps[0]
        notes.append(
            f"{len(state.gaps)} gap(s) in the update ids, first at {first['time']} after u={first['after_u']} "
            f"(expected {first['expected']}, got U={first['got_U']}, pu={first['got_pu']}); later events dropped "
            "until a newer snapshot re-synchronizes the book"
        )
    if state.stale_snapshots:
        notes.append(f"{state.stale_snapshots} REST snapshot(s) no newer than the book built so far ignored (repeats)")
    if outside_trades:
        notes.append(f"{outside_trades} trades before the first or after the last kept book row are not in 'volume'")
    report = LoadReport(
        rows_read=book.report.rows_read + sum(state.dropped.values()),
        rows_kept=book.report.rows_kept,
        dropped={**state.dropped, **book.report.dropped},
        source=path.name,
        symbol=symbol,
        notes=notes,
    )
    book = replace(book, report=report)
    if sessions is None:
        book = replace(book, sessions=infer_sessions(book) or span)
    return {symbol: book}


def top_of_book_check(path, previous=None):
    """Rebuilt best bid/ask against Binance's own ``bookTicker`` at the same update id.

    A ``bookTicker`` message carries the update id ``u`` after which it holds; where a
    diff-depth event ends at the same ``u`` the rebuilt book after that event must show the
    same best bid and ask.

    Returns
    -------
    pandas.DataFrame
        One row per matched update id: ``u, bid, ask, ticker_bid, ticker_ask, match``.
    """
    state = _Replay()
    chain = [previous] if isinstance(previous, (str, Path)) else list(previous or [])
    for earlier in chain:
        _replay(earlier, state, 1, "exchange")
    state.tickers = []
    _replay(path, state, 1, "exchange", keep_tickers=True)
    if not state.ids:
        raise DataError(f"{Path(path).name}: no diff-depth event applied")
    rows = np.vstack(state.rows)
    built = pd.DataFrame({"u": state.ids, "bid": rows[:, 0], "ask": rows[:, 1]}).drop_duplicates("u", keep="last")
    tickers = pd.DataFrame(state.tickers, columns=["u", "ticker_bid", "ticker_ask"]).drop_duplicates("u", keep="last")
    out = built.merge(tickers, on="u", how="inner")
    out["match"] = (out["bid"] == out["ticker_bid"]) & (out["ask"] == out["ticker_ask"])
    return out
