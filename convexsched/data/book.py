"""The normalized order book: one frame layout for every source, and the cleaning that builds it.

A book frame has a sorted, strictly increasing, tz-aware DatetimeIndex and float columns in the
Databento naming, level ``00`` being the best::

    bid_px_00 .. bid_px_{L-1}, ask_px_00 .. ask_px_{L-1}, bid_sz_00 .., ask_sz_00 ..

plus an optional ``volume`` column (shares traded since the previous row of the source file).
An empty level has price NaN and size 0; a source with fewer than 10 levels keeps its ``L``
(nothing is invented). Every loader funnels its rows through :func:`clean_book`, which sorts the
rows by timestamp (stably: rows with equal timestamps keep their file order; merged or parallel
exports arrive out of order), then drops bad rows and counts each drop under exactly one reason,
checked in this order:

0. ``duplicate_row`` - a repeat of an earlier row of the source (every field equal, e.g. a file
   exported twice): it is no new event, and its traded volume must not count twice;
1. ``non_trading_phase`` - the source flags the row as auction, break, halt or after-hours;
2. ``nan`` - a missing timestamp or size, or a missing price that carries a size;
3. ``non_finite`` - an infinite size, or an infinite price that carries a size;
4. ``undefined_price`` - a sentinel price (Databento ``INT64_MAX``, LOBSTER ``+-9999999999``,
   a zero price in Chinese Level-2 files) that carries a size;
5. ``empty_side`` - no best bid or no best ask;
6. ``unordered_levels`` - bid prices not strictly decreasing or ask prices not strictly
   increasing over the filled levels, or a filled level below an empty one;
7. ``crossed_or_locked`` - ``ask_px_00 <= bid_px_00``;
8. ``out_of_order`` - only with ``sort=False``: the row is older than a kept row before it;
9. ``duplicate_timestamp`` - the row shares its timestamp with the next kept row: of rows with
   equal timestamps the last in file order survives, being the book after all events of that
   instant, and takes over their traded volume.

so that ``rows_read == rows_kept + sum(dropped.values())`` always holds. The report also counts
the rows that sorting moved (:attr:`LoadReport.out_of_order`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd

from ..errors import DataError
from .sessions import Sessions

DROP_REASONS = (
    "duplicate_row",
    "non_trading_phase",
    "nan",
    "non_finite",
    "undefined_price",
    "empty_side",
    "unordered_levels",
    "crossed_or_locked",
    "out_of_order",
    "duplicate_timestamp",
)

# Prices are kept at nanounit resolution when looking for their common grid (Databento's scale).
_PRICE_RESOLUTION = 1e-9


def level_columns(n_levels: int) -> dict[str, list[str]]:
    """Column names of an ``n_levels`` book: dict with keys bid_px, ask_px, bid_sz, ask_sz."""
    return {kind: [f"{kind}_{i:02d}" for i in range(n_levels)] for kind in ("bid_px", "ask_px", "bid_sz", "ask_sz")}


def book_columns(n_levels: int) -> list[str]:
    """All price and size columns of an ``n_levels`` book, in frame order."""
    cols = level_columns(n_levels)
    return cols["bid_px"] + cols["ask_px"] + cols["bid_sz"] + cols["ask_sz"]


@dataclass
class LoadReport:
    """What a loader read, kept and dropped, with one count per drop reason.

    Attributes
    ----------
    rows_read, rows_kept : int
    dropped : dict[str, int]
        Count per reason of :data:`DROP_REASONS` (zeros included).
    source, symbol : str
    notes : list of str
        Observations that dropped nothing (empty deep levels, inferred tick size, ...).
    warnings : list of str
        Assumptions the reader had to make that may be wrong for this file (a time zone taken
        for naive timestamps): a caller should confirm them.
    out_of_order : int
        Rows older than a row before them in the file; sorted into place (or dropped as
        ``out_of_order`` when sorting was turned off).
    """

    rows_read: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    source: str = ""
    symbol: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    out_of_order: int = 0

    def __post_init__(self):
        if self.rows_read != self.rows_kept + sum(self.dropped.values()):
            raise DataError(
                f"load report does not add up: read {self.rows_read}, kept {self.rows_kept}, dropped {sum(self.dropped.values())}"
            )

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def drops(self) -> str:
        """The nonzero drop counts as ``"12 crossed_or_locked, 3 nan"`` (``"none"`` if none)."""
        return ", ".join(f"{n} {reason}" for reason, n in self.dropped.items() if n) or "none"

    def summary(self) -> str:
        """One line: what was read, kept, dropped per reason, and reordered."""
        moved = f"; {self.out_of_order} out-of-order rows sorted into place" if self.out_of_order else ""
        return (
            f"{self.symbol or '?'} from {self.source or '?'}: read {self.rows_read}, kept "
            f"{self.rows_kept}, dropped {self.drops()}{moved}"
        )

    def __str__(self):
        head = f"{self.symbol or '?'} from {self.source or '?'}: read {self.rows_read}, kept {self.rows_kept}"
        drops = [f"  dropped {n:>8} {reason}" for reason, n in self.dropped.items() if n]
        moved = [f"  sorted  {self.out_of_order:>8} out-of-order rows into place"] if self.out_of_order else []
        notes = [f"  note: {note}" for note in self.notes]
        warnings = [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join([head] + (drops or ["  dropped        0"]) + moved + notes + warnings)


def require_rows(book: Book) -> Book:
    """Raise :class:`DataError` naming the drop reasons when ``book`` kept no row.

    Loaders return such books (the report is the answer to "what is in this file?"), but no
    feature, curve or backtest can be computed from them.
    """
    report = book.report
    if len(book.frame) == 0:
        raise DataError(
            f"{report.source or '?'}: no usable rows for {report.symbol or '?'}: read {report.rows_read}, "
            f"dropped {report.drops()}"
        )
    return book


@dataclass
class Book:
    """A cleaned order book of one instrument.

    Attributes
    ----------
    frame : pandas.DataFrame
        The normalized frame (see module docstring).
    report : LoadReport
    symbol : str
    tick_size : float
        Price grid step; given by the source/preset/caller or inferred (``meta["tick_size_source"]``).
    sessions : Sessions or None
        Continuous-trading intervals used for bucketing.
    synthetic : bool
        True for generated books (never mistake them for market data).
    meta : dict
        Source-specific extras (dataset, date, file names, ...).
    """

    frame: pd.DataFrame
    report: LoadReport
    symbol: str
    tick_size: float
    sessions: Sessions | None = None
    synthetic: bool = False
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def n_levels(self) -> int:
        """Number of level columns per side (the source's depth, filled or not)."""
        return sum(c.startswith("bid_px_") for c in self.frame.columns)

    @property
    def traded_volume(self) -> pd.Series | None:
        """Shares traded since the previous source row (Series), or None if the source has none."""
        return self.frame["volume"] if "volume" in self.frame else None

    @property
    def tz(self) -> object:
        return self.frame.index.tz

    def __len__(self):
        return len(self.frame)

    def __repr__(self):
        span = f"{self.frame.index[0]} .. {self.frame.index[-1]}" if len(self.frame) else "empty"
        tag = ", SYNTHETIC" if self.synthetic else ""
        return f"Book({self.symbol!r}{tag}, {len(self.frame)} rows, {self.n_levels} levels, tick {self.tick_size:g}, {span})"


def _decimals(tick):
    exponent = Decimal(repr(float(tick))).normalize().as_tuple().exponent
    # A finite tick has an integer exponent; "n"/"N"/"F" (NaN, inf) have no decimals to count.
    return max(0, -exponent) if isinstance(exponent, int) else 0


def infer_tick_size(prices):
    """Coarsest grid all finite ``prices`` lie on: their gcd at 1e-9 resolution.

    With few distinct prices this is an upper bound of the true tick (a book quoted only at
    whole dollars looks like a 1.00 tick); pass ``tick_size`` when it is known.
    """
    values = np.unique(np.rint(np.abs(prices[np.isfinite(prices)]) / _PRICE_RESOLUTION).astype(np.int64))
    values = values[values > 0]
    if len(values) == 0:
        return float("nan")
    return float(np.gcd.reduce(values)) * _PRICE_RESOLUTION


def _strictly_monotone_filled(px, filled, sign):
    """Rows whose filled levels move strictly away from the touch with no hole before them."""
    hole = (~filled[:, :-1] & filled[:, 1:]).any(axis=1)
    step = sign * np.diff(px, axis=1)
    bad_step = (filled[:, 1:] & filled[:, :-1] & ~(step > 0)).any(axis=1)
    return hole | bad_step


def _level_layout(frame, source):
    """The number of levels of a raw book frame and its column names; every level column must be there."""
    n_levels = sum(c.startswith("bid_px_") for c in frame.columns)
    missing = [c for c in book_columns(n_levels) if c not in frame.columns]
    if n_levels == 0 or missing:
        raise DataError(f"{source}: book frame lacks columns {missing or ['bid_px_00', '...']}")
    return n_levels, level_columns(n_levels)


def _count_out_of_order(index):
    """Rows older than a row before them in the file."""
    if len(index) == 0:
        return 0
    stamps = index.asi8
    # NaT rows are counted as nan, not here.
    return int((~index.isna() & (stamps < np.maximum.accumulate(stamps))).sum())


def _time_sorted(frame, undefined, row_masks, source, sort):
    """The rows (and their masks) stable-sorted by timestamp when ``sort``, with the ns index and the out-of-order count."""
    index = pd.DatetimeIndex(frame.index).as_unit("ns")
    if len(index) and index.tz is None:
        raise DataError(f"{source}: timestamps must be tz-aware")
    out_of_order = _count_out_of_order(index)
    if sort:
        order = np.argsort(index.asi8, kind="stable")
        frame, index, undefined = frame.iloc[order], index[order], undefined[order]
        row_masks = tuple(mask[order] for mask in row_masks)
    return frame, index, undefined, row_masks, out_of_order


def _value_masks(index, px, sz, undefined):
    """Rows with a missing, infinite or undefined value (drop reasons nan, non_finite, undefined_price)."""
    # A bad price only matters where it carries a size: an empty level is fine.
    sized = sz > 0
    return {
        "nan": index.isna() | np.isnan(sz).any(axis=1) | (np.isnan(px) & ~undefined & sized).any(axis=1),
        "non_finite": np.isinf(sz).any(axis=1) | (np.isinf(px) & ~undefined & sized).any(axis=1),
        "undefined_price": (undefined & sized).any(axis=1),
    }


def _blank_unfilled(px, sz, undefined):
    """Set every level without a usable quote to price NaN, size 0 in place; returns the filled levels."""
    filled = (sz > 0) & ~undefined & np.isfinite(px)
    px[~filled] = np.nan
    sz[~filled] = 0.0
    return filled


def _shape_masks(px, filled, n_levels):
    """Rows whose book is malformed (drop reasons empty_side, unordered_levels, crossed_or_locked)."""
    bid_filled, ask_filled = filled[:, :n_levels], filled[:, n_levels:]
    bid_px, ask_px = px[:, :n_levels], px[:, n_levels:]
    with np.errstate(invalid="ignore"):
        crossed = ask_px[:, 0] <= bid_px[:, 0]
    return {
        "empty_side": ~bid_filled[:, 0] | ~ask_filled[:, 0],
        "unordered_levels": _strictly_monotone_filled(bid_px, bid_filled, -1) | _strictly_monotone_filled(ask_px, ask_filled, +1),
        "crossed_or_locked": crossed,
    }


def _drop_by_first_reason(masks, n):
    """Count each bad row under the first reason of ``masks`` that hits it; returns the counts and the kept rows."""
    dropped = {}
    alive = np.ones(n, bool)
    for reason, mask in masks.items():
        hit = alive & mask
        dropped[reason] = int(hit.sum())
        alive &= ~hit
    return dropped, alive


def _time_order_drops(alive, index):
    """Rows older than a kept row before them, rows tied with the next kept row's timestamp, and the rows in order."""
    # Out-of-order rows never raise the running maximum, so it equals that of the kept rows.
    t = np.where(alive, index.asi8, np.iinfo(np.int64).min)
    running = np.maximum.accumulate(t)
    older = alive & (t < np.concatenate(([np.iinfo(np.int64).min], running[:-1])))
    alive_t = np.flatnonzero(alive & ~older)
    tie = np.zeros(len(alive), bool)
    tie[alive_t[:-1]] = t[alive_t[:-1]] == t[alive_t[1:]]
    return older, tie, alive_t


def _volume_onto_survivors(frame, tie, alive_t):
    """The frame's traded volume with each timestamp's volume moved onto its surviving row (None without volume)."""
    volume = frame["volume"].to_numpy(dtype=float, copy=True) if "volume" in frame else None
    if volume is not None and len(alive_t):
        # Trades stamped at one instant all belong to the surviving (last) row of that instant.
        run_starts = np.flatnonzero(np.concatenate(([True], ~tie[alive_t][:-1])))
        survivors = alive_t[np.concatenate((run_starts[1:] - 1, [len(alive_t) - 1]))]
        volume[survivors] = np.add.reduceat(volume[alive_t], run_starts)
    return volume


def _on_tick_grid(px, tick_size, tick_stated, source):
    """The kept prices on their grid, the tick and the notes; never a grid coarser than the prices' own.

    The prices' own grid (:func:`infer_tick_size`) is the tick when none is given. A tick the
    caller stated (``tick_stated``) that some prices are off is refused: rounding onto it would
    move quotes and lock books. A format's default tick (a preset, a definition file) that the
    prices contradict gives way to the finer common grid, and the off-grid prices are counted.
    """
    notes = []
    own = infer_tick_size(px)
    if tick_size is None:
        tick_size = own
        notes.append(
            f"tick size {tick_size:g} inferred from the prices (coarsest common grid)"
            if np.isfinite(tick_size)
            else "tick size unknown: no prices kept to infer it from"
        )
        return _rounded(px, tick_size), tick_size, notes
    tick_size = float(tick_size)
    if not (np.isfinite(tick_size) and tick_size > 0):
        raise DataError(f"{source}: tick size must be a positive number, got {tick_size!r}")
    with np.errstate(invalid="ignore"):
        ratio = px / tick_size
        off = np.abs(ratio - np.rint(ratio)) > 1e-6
    n_off = int(off.sum())
    if n_off:
        finite = int(np.isfinite(px).sum())
        if tick_stated:
            raise DataError(
                f"{source}: {n_off} of {finite} prices are off the stated {tick_size:g} tick grid (the prices "
                f"lie on a {own:g} grid); pass the right tick size, or none to infer it"
            )
        finer = _common_grid(tick_size, own)
        notes.append(
            f"{n_off} of {finite} prices off the default {tick_size:g} tick grid: the tick is taken as "
            f"{finer:g}, the prices' own grid, so that no price is moved"
        )
        tick_size = finer
    return _rounded(px, tick_size), tick_size, notes


def _common_grid(a, b):
    """The coarsest grid both steps lie on (their gcd at the price resolution)."""
    units = np.rint(np.array([a, b]) / _PRICE_RESOLUTION).astype(np.int64)
    return float(np.gcd.reduce(units)) * _PRICE_RESOLUTION


def _rounded(px, tick_size):
    # Rounding to the tick's decimals removes float artefacts such as 19.379999999999998; the
    # tick is never coarser than the prices' grid, so no price moves by more than that.
    return np.round(px, _decimals(tick_size)) if np.isfinite(tick_size) else px


def _depth_notes(kept, n_levels):
    """A note when some kept rows fill fewer than all levels (``kept``: their filled levels)."""
    if len(kept) == 0:
        return []
    min_bid, min_ask = kept[:, :n_levels].sum(1).min(), kept[:, n_levels:].sum(1).min()
    if min(min_bid, min_ask) >= n_levels:
        return []
    return [
        f"some rows have fewer than {n_levels} filled levels (min {min_bid} bid, {min_ask} ask); "
        "empty levels are NaN/0, not invented"
    ]


def _book_frame(px, sz, index, volume, cols):
    """The normalized frame of the kept rows: prices, sizes and the optional volume, indexed by ``ts``."""
    out = pd.DataFrame(
        np.hstack([px, sz]),
        index=index,
        columns=cols["bid_px"] + cols["ask_px"] + cols["bid_sz"] + cols["ask_sz"],
    )
    if volume is not None:
        out["volume"] = volume
    out.index.name = "ts"
    return out


def clean_book(
    frame,
    *,
    symbol,
    source,
    tick_size=None,
    sessions=None,
    undefined=None,
    trading=None,
    sort=True,
    meta=None,
    warnings=(),
    notes=(),
    duplicated=None,
    tick_stated=True,
):
    """Drop bad rows of a raw book frame and return the normalized :class:`Book`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Index: tz-aware timestamps (NaT allowed, counted as ``nan``). Columns: the
        :func:`book_columns` of some ``L`` (any numeric dtype), optionally ``volume``.
    symbol, source : str
    tick_size : float, optional
        Known grid step; prices are rounded to its decimals (float artefacts like
        19.379999999999998). Inferred from the prices when omitted.
    tick_stated : bool
        ``tick_size`` was stated by the caller (default): prices off its grid are a
        :class:`DataError`. False for a format's default, which gives way to the prices' finer
        grid with the off-grid prices counted in the notes.
    sessions : Sessions, optional
    undefined : array_like of bool, shape (n, 2L), optional
        Price cells (bid then ask block) holding the source's undefined-price sentinel.
    trading : array_like of bool, shape (n,), optional
        False where the source flags the row as outside continuous trading.
    sort : bool
        Stable-sort by timestamp first (default); ``False`` drops out-of-order rows instead.
    meta : dict, optional
    warnings : sequence of str
        The loader's assumptions to pass on to :attr:`LoadReport.warnings`.
    notes : sequence of str
        The loader's observations, put first in :attr:`LoadReport.notes`.
    duplicated : array_like of bool, shape (n,), optional
        Rows that repeat an earlier source row (the loader compares every field it read);
        dropped as ``duplicate_row``.

    Returns
    -------
    Book
    """
    n_levels, cols = _level_layout(frame, source)
    n = len(frame)
    undefined = np.zeros((n, 2 * n_levels), bool) if undefined is None else np.asarray(undefined, bool)
    trading = np.ones(n, bool) if trading is None else np.asarray(trading, bool)
    duplicated = np.zeros(n, bool) if duplicated is None else np.asarray(duplicated, bool)
    frame, index, undefined, (trading, duplicated), out_of_order = _time_sorted(
        frame, undefined, (trading, duplicated), source, sort
    )
    px = frame[cols["bid_px"] + cols["ask_px"]].to_numpy(dtype=float, copy=True)
    sz = frame[cols["bid_sz"] + cols["ask_sz"]].to_numpy(dtype=float, copy=True)
    # The reasons in the order of DROP_REASONS: a row is counted under the first that hits it.
    masks = {"duplicate_row": duplicated, "non_trading_phase": ~trading, **_value_masks(index, px, sz, undefined)}
    filled = _blank_unfilled(px, sz, undefined)
    masks.update(_shape_masks(px, filled, n_levels))
    dropped, alive = _drop_by_first_reason(masks, n)
    older, tie, alive_t = _time_order_drops(alive, index)
    dropped["out_of_order"] = int(older.sum())
    dropped["duplicate_timestamp"] = int(tie.sum())
    volume = _volume_onto_survivors(frame, tie, alive_t)
    alive &= ~(older | tie)

    px, tick_size, grid_notes = _on_tick_grid(px[alive], tick_size, tick_stated, source)
    notes = list(notes) + grid_notes
    if dropped["duplicate_row"]:
        notes.append(f"{dropped['duplicate_row']} rows repeat an earlier row field for field and are dropped with their volume")
    notes += _depth_notes(filled[alive], n_levels)
    out = _book_frame(px, sz[alive], index[alive], None if volume is None else volume[alive], cols)
    if dropped["duplicate_timestamp"]:
        notes.append(
            f"{dropped['duplicate_timestamp']} rows share their timestamp with a later row: the last "
            "in file order is kept (the book after that instant's events) with their traded volume"
        )
    report = LoadReport(
        rows_read=n, rows_kept=int(alive.sum()), dropped=dropped, source=source, symbol=symbol,
        notes=notes, warnings=list(warnings), out_of_order=out_of_order,
    )  # fmt: skip
    return Book(frame=out, report=report, symbol=symbol, tick_size=tick_size, sessions=sessions, meta=meta or {})
