"""Databento MBO (market by order) replayed into an MBP-10 :class:`Book`.

The records are read with the ``databento`` package (``DBNStore.from_file(...).to_ndarray()``);
the book is rebuilt as Databento's order-book examples do ("Limit order book construction",
"State management of resting orders"):

* ``R`` clears the instrument's book; ``A`` adds an order; ``C`` removes ``size`` from it
  (the whole order when nothing is left); ``M`` moves it to a new price and/or size (a modify
  of an unknown order is an add, as in Databento's example, and counted);
* ``T`` (trade), ``F`` (fill) and ``N`` do not change the book: the ``C``/``M`` records that
  follow a fill do. ``T`` sizes are the traded ``volume`` (``F`` repeats them);
* a file starts from its snapshot records (``F_SNAPSHOT``); without them the book starts empty,
  which the report notes;
* one venue event may be several records: the book is sampled only after a record with the
  ``F_LAST`` flag (the last record of the event for that instrument), one row per event.

Why our own replay: ``databento`` decodes the records but has no book builder (its examples
ship one to copy), and hftbacktest's Databento converter targets its own simulator's event
arrays rather than level snapshots.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .book import LoadReport, clean_book
from .databento import open_store, truncation_error
from .levels import PriceLevels, sampled_frame
from .sessions import span_sessions

F_LAST, F_TOB, F_SNAPSHOT = 128, 64, 32
_ACTIONS = ("A", "C", "M", "R", "T", "F", "N")
_SIDES = ("B", "A", "N")
_UNDEF_PRICE = np.iinfo(np.int64).max
_SCALE = 1e9
# Datasets whose books are quoted in a known exchange time zone.
DATASET_TZ = {"GLBX": "America/Chicago", "XNAS": "America/New_York", "DBEQ": "America/New_York"}


def looks_mbo(path):
    """True for a DBN file (``.dbn``/``.dbn.zst``) whose metadata says schema ``mbo``."""
    if not str(path).lower().endswith((".dbn", ".dbn.zst")):
        return False
    try:
        with open_store(path) as store:
            return str(store.schema) in ("mbo", "Schema.MBO")
    except DataError:
        return False


def mbo_records(path):
    """The records of an MBO DBN file, its dataset and ``instrument_id -> symbol``.

    Raises
    ------
    DataError
        Another schema, no record, or a truncated file (a partial trailing record): a cut file
        would silently lose the end of the day, so it is refused.
    """
    path = Path(path)
    with open_store(path) as store:
        if str(store.schema) not in ("mbo", "Schema.MBO"):
            raise DataError(f"{path.name} has schema {store.schema}, not mbo; use format='databento' for MBP files")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            records = store.to_ndarray()
        for warning in caught:
            text = str(warning.message)
            if "truncated" in text or "incomplete record" in text:
                raise DataError(
                    f"{path.name} is truncated: it ends inside a record ({len(records)} whole records "
                    "before it); refusing a partial file"
                )
        cut = truncation_error(path, [])  # a .zst whose last frame does not end (cut on a record boundary)
        if cut is not None:
            raise cut
        if len(records) == 0:
            raise DataError(f"{path.name} holds no MBO records (a multi-frame .zst read as its header only?)")
        dataset = str(store.metadata.dataset or "")
        names = _symbols(store, pd.unique(records["instrument_id"]))
    return records, dataset, names


@dataclass
class MboReplay:
    """The outcome of replaying one instrument's MBO records.

    Attributes
    ----------
    rows : list of numpy.ndarray
        One :meth:`PriceLevels.top` row per event (``F_LAST``), prices as fixed point.
    stamps, sequence : list of int
        ``ts_recv`` (or ``ts_event``) and ``sequence`` of each sampled event.
    volume : list of float
        ``T`` sizes since the previous sampled event.
    trades : list of tuple
        ``(stamp, aggressor side, price, best bid, best ask)`` for the first trade of each event,
        with the book as it stood before the event: a buy takes the best ask, a sell the best bid.
    counts : dict
        Records per action, and anomalies (``unknown_order``, ``modify_as_add``,
        ``overfilled_level``, ``tob_records``, ``snapshot_records``).
    """

    rows: list = field(default_factory=list)
    stamps: list = field(default_factory=list)
    sequence: list = field(default_factory=list)
    volume: list = field(default_factory=list)
    trades: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)


def replay(records, n_levels=10, ts="ts_recv"):
    """Replay the MBO records of **one** instrument (a structured array from ``to_ndarray``).

    Returns
    -------
    MboReplay
    """
    levels = PriceLevels()
    orders = {}
    out = MboReplay()
    counts = {k: 0 for k in _ACTIONS}
    counts.update(unknown_order=0, modify_as_add=0, overfilled_level=0, tob_records=0, snapshot_records=0,
                  unknown_action=0, unknown_side=0)  # fmt: skip
    pending_volume = 0.0
    event_has_trade = False
    before = (None, None)
    columns = [records[name].tolist() for name in ("action", "side", "price", "size", "order_id", "flags", ts, "sequence")]
    for action, side, price, size, oid, flags, stamp, seq in zip(*columns, strict=True):
        action = action.decode() if isinstance(action, bytes) else action
        side = side.decode() if isinstance(side, bytes) else side
        if action in counts and action in _ACTIONS:
            counts[action] += 1
        else:
            counts["unknown_action"] += 1
        if side not in _SIDES or (action in ("A", "M") and side not in ("B", "A")):
            counts["unknown_side"] += 1  # an order needs a side: it cannot rest in the book
        if flags & F_SNAPSHOT:
            counts["snapshot_records"] += 1
        if flags & F_TOB:
            counts["tob_records"] += 1
        bid = side == "B"
        if action == "A":
            if side in ("B", "A") and price != _UNDEF_PRICE:
                orders[oid] = (bid, price, size)
                levels.add(bid, price, size)
        elif action == "C":
            order = orders.get(oid)
            if order is None:
                counts["unknown_order"] += 1
            else:
                o_bid, o_price, o_size = order
                left = o_size - size
                if levels.add(o_bid, o_price, -min(size, o_size)) < 0:
                    counts["overfilled_level"] += 1
                if left > 0:
                    orders[oid] = (o_bid, o_price, left)
                else:
                    del orders[oid]
        elif action == "M":
            order = orders.pop(oid, None)
            if order is None:
                counts["modify_as_add"] += 1
            else:
                levels.add(order[0], order[1], -order[2])
            if side in ("B", "A") and price != _UNDEF_PRICE and size > 0:
                orders[oid] = (bid, price, size)
                levels.add(bid, price, size)
        elif action == "R":
            levels.clear()
            orders.clear()
        elif action == "T":
            pending_volume += size
            if not event_has_trade and side in ("B", "A"):
                out.trades.append((stamp, side, price, *before))
            event_has_trade = True
        if flags & F_LAST:
            out.rows.append(levels.top(n_levels, scale=_SCALE))
            out.stamps.append(stamp)
            out.sequence.append(seq)
            out.volume.append(pending_volume)
            pending_volume = 0.0
            event_has_trade = False
            before = levels.best()  # the book a trade of the next event meets
    out.counts = counts
    return out


def _symbols(store, ids):
    """instrument_id -> symbol from the file's metadata (the id as text when unmapped)."""
    from databento.common.symbology import InstrumentMap

    names = {}
    try:
        imap = InstrumentMap()
        imap.insert_metadata(store.metadata)
        day = pd.Timestamp(store.metadata.start, unit="ns").date()
        for i in ids:
            names[i] = imap.resolve(int(i), day) or str(i)
    except Exception:  # noqa: BLE001 - symbology is a convenience: fall back to ids
        names = {i: str(i) for i in ids}
    return names


def _first_trade_sessions(stamps, trade_stamps, tz):
    """Continuous trading as the data show it: from the first trade to the last event."""
    first = trade_stamps[0] if len(trade_stamps) else stamps[0]
    first, last = (pd.Timestamp(int(ns), unit="ns", tz="UTC") for ns in (first, stamps[-1]))
    return span_sessions(first, last, tz, name="from the first trade")


def read_mbo(path, *, n_levels=10, ts="ts_recv", tick_size=None, tz=None, sessions=None, sort=False):
    """Rebuild MBP-``n_levels`` books from a Databento MBO file.

    Parameters
    ----------
    path : path-like
        ``.dbn`` or ``.dbn.zst`` with schema ``mbo``.
    n_levels : int
        Levels per side sampled (10).
    ts : {"ts_recv", "ts_event"}
        Row timestamps (``ts_recv`` is Databento's sort key).
    tick_size : float, optional
        Inferred from the prices when omitted (ES: 0.25).
    tz : str, optional
        Default the venue's zone (``America/Chicago`` for GLBX.MDP3), else UTC.
    sessions : Sessions or str, optional
        Default: one interval from the first trade (the open) to the last event, floored and
        ceiled to minutes: the part of the file where the book trades continuously. Pre-open
        rows stay in the book but outside the sessions.
    sort : bool

    Returns
    -------
    dict[str, Book]
        One book per instrument: one row per venue event (``F_LAST``), the book after it;
        ``volume`` is the ``T`` size since the previous row. ``meta["trade_check"]`` counts
        the first trade of each event that printed at the best price of the rebuilt book
        before it (buy at the ask, sell at the bid); ``meta["counts"]`` the records per action.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if ts not in ("ts_recv", "ts_event"):
        raise DataError(f"ts must be 'ts_recv' or 'ts_event', got {ts!r}")
    records, dataset, names = mbo_records(path)
    ids = pd.unique(records["instrument_id"])
    tz = tz or DATASET_TZ.get(dataset.split(".")[0], "UTC")
    books = {}
    for instrument in ids:
        mine = records[records["instrument_id"] == instrument]
        state = replay(mine, n_levels, ts)
        symbol = names[instrument]
        if not state.rows:
            raise DataError(f"{path.name}: instrument {symbol} has no record with F_LAST to sample the book at")
        frame = sampled_frame(state.rows, state.stamps, n_levels, volume=state.volume, tz=tz)
        trades = np.asarray([t[0] for t in state.trades], dtype=np.int64)
        span = sessions or _first_trade_sessions(np.asarray(state.stamps, np.int64), trades, tz)
        check = _trade_check(state.trades)
        book = clean_book(
            frame, symbol=symbol, source=path.name, tick_size=tick_size, sessions=span, sort=sort,
            meta={"format": "mbo", "dataset": dataset, "instrument_id": int(instrument), "timestamp": ts,
                  "counts": state.counts, "trade_check": check},
        )  # fmt: skip
        counts = state.counts
        notes = list(book.report.notes)
        notes.append(
            f"{len(mine)} MBO records -> {len(state.rows)} events (F_LAST); "
            + ", ".join(f"{a} {counts[a]}" for a in ("R", "A", "C", "M", "T", "F") if counts.get(a))
            + f"; {counts['snapshot_records']} snapshot records"
        )
        if counts["snapshot_records"] == 0 and counts["R"] == 0:
            notes.append("no snapshot or clear record: the book starts empty, orders resting before the file are missing")
        if counts["tob_records"]:
            notes.append(f"{counts['tob_records']} top-of-book (F_TOB) records, treated as orders")
        # Records the replay could not apply: the rebuilt book may differ from the venue's, so
        # they are warnings (printed with the load report), not notes.
        anomalies = [f"{counts[key]} {text}" for key, text in _ANOMALIES if counts[key]]
        if anomalies:
            warnings_ = [f"records the replay could not apply as sent: {', '.join(anomalies)}"]
        else:
            warnings_ = []
        if check["events"]:
            notes.append(f"trade check: {check['at_touch']} of {check['events']} events' first trade printed at "
                         "the rebuilt best price")  # fmt: skip
        report = LoadReport(rows_read=book.report.rows_read, rows_kept=book.report.rows_kept,
                            dropped=book.report.dropped, source=path.name, symbol=symbol, notes=notes,
                            warnings=list(book.report.warnings) + warnings_)  # fmt: skip
        book.report = report
        books[symbol] = book
    return books


_ANOMALIES = (
    ("unknown_action", "with an unknown action (ignored)"),
    ("unknown_side", "with an unknown side (not added to the book)"),
    ("unknown_order", "cancels of unknown orders (ignored)"),
    ("modify_as_add", "modifies of unknown orders (added)"),
    ("overfilled_level", "cancels larger than their level"),
)


def _trade_check(trades):
    """How many events' first trade printed at the touch of the rebuilt book before the event."""
    if not trades:
        return {"events": 0, "at_touch": 0}
    frame = pd.DataFrame(trades, columns=["ts", "side", "price", "bid", "ask"])
    touch = np.where(frame["side"] == "B", frame["ask"], frame["bid"])
    hit = pd.Series(touch).eq(frame["price"]).to_numpy()
    return {"events": len(frame), "at_touch": int(hit.sum())}


def top_of_book_check(mbo_path, mbp_path, n_levels=1):
    """The rebuilt book against Databento's own MBP-1/MBP-10 records of the same events.

    Records are matched on ``(instrument_id, ts_recv, sequence)``; only events present in both
    files are compared.

    Returns
    -------
    pandas.DataFrame
        One row per matched event: ``ts_recv, sequence``, the rebuilt and the exchange's
        ``bid_px_00, ask_px_00, bid_sz_00, ask_sz_00`` (suffixes ``_mbo`` and ``_mbp``), and
        ``match`` (all equal, an empty side on both counting as equal).
    """
    with open_store(mbo_path) as mbo, open_store(mbp_path) as mbp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records, exchange = mbo.to_ndarray(), mbp.to_ndarray()
    rows = []
    for instrument in pd.unique(records["instrument_id"]):
        mine = records[records["instrument_id"] == instrument]
        state = replay(mine, n_levels, "ts_recv")
        top = np.vstack(state.rows) if state.rows else np.empty((0, 4 * n_levels))
        rows.append(pd.DataFrame({
            "instrument_id": int(instrument), "ts_recv": state.stamps, "sequence": state.sequence,
            "bid_px_00": top[:, 0], "ask_px_00": top[:, n_levels],
            "bid_sz_00": top[:, 2 * n_levels], "ask_sz_00": top[:, 3 * n_levels],
        }))  # fmt: skip
    built = pd.concat(rows, ignore_index=True)
    bid_px = exchange["bid_px_00"].astype(np.int64)
    ask_px = exchange["ask_px_00"].astype(np.int64)
    theirs = pd.DataFrame({
        "instrument_id": exchange["instrument_id"].astype(int), "ts_recv": exchange["ts_recv"].astype(np.int64),
        "sequence": exchange["sequence"].astype(np.int64),
        "bid_px_00": np.where(bid_px == _UNDEF_PRICE, np.nan, bid_px / _SCALE),
        "ask_px_00": np.where(ask_px == _UNDEF_PRICE, np.nan, ask_px / _SCALE),
        "bid_sz_00": exchange["bid_sz_00"].astype(float), "ask_sz_00": exchange["ask_sz_00"].astype(float),
    })  # fmt: skip
    built["ts_recv"] = built["ts_recv"].astype(np.int64)
    built["sequence"] = built["sequence"].astype(np.int64)
    out = built.merge(theirs, on=["instrument_id", "ts_recv", "sequence"], suffixes=("_mbo", "_mbp"))
    same = np.ones(len(out), bool)
    for column in ("bid_px_00", "ask_px_00", "bid_sz_00", "ask_sz_00"):
        a, b = out[f"{column}_mbo"].to_numpy(), out[f"{column}_mbp"].to_numpy()
        same &= (a == b) | (np.isnan(a) & np.isnan(b)) | ((column.endswith("sz_00")) & (a == 0) & (b == 0))
    out["match"] = same
    return out
