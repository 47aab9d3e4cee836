"""Readers from files to :class:`~convexsched.data.book.Book`: Databento, LOBSTER, mapped CSV/Parquet.

Entry points are :func:`read_book` and :func:`read_books`; the format is inferred from the file
when not given:

* ``"databento"`` - DBN ``.dbn`` / ``.dbn.zst`` MBP-N files (read with the ``databento`` package),
  and Databento CSV/Parquet exports (columns ``ts_recv``/``ts_event`` and ``bid_px_00``...);
* ``"lobster"`` - a LOBSTER ``*_orderbook_L.csv`` + ``*_message_L.csv`` pair;
* ``"csv"`` / ``"parquet"`` - a snapshot table read through a :class:`ColumnMap`, either a preset
  (:data:`PRESETS`, detected from the header when not named) or the caller's own mapping.

Every loader hands its rows to :func:`~convexsched.data.book.clean_book`, so each dropped row is counted
in the book's :class:`~convexsched.data.book.LoadReport`. Rows are sorted by timestamp unless
``sort=False``. Naive timestamps are read in the format's own zone (LOBSTER: New York; the Chinese
presets: Shanghai; Databento: UTC by definition) or in ``tz=``; a table whose format has no zone
is read in the zone of ``sessions=`` (else UTC) with a warning in the report.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._text import printable
from ..errors import DataError, InvalidInputError
from ..files import existing_file, is_parquet, read_columns, table_columns
from .binance import looks_binance, read_binance
from .book import clean_book, level_columns
from .databento import looks_databento, read_databento
from .lobster import lobster_pair, looks_lobster, read_lobster
from .mbo import looks_mbo, read_mbo
from .sessions import CN_EQUITY, as_sessions, with_inferred_sessions

if TYPE_CHECKING:
    from .book import Book
    from .sessions import Sessions


@dataclass(frozen=True)
class ColumnMap:
    """How a wide snapshot table maps onto the normalized book frame.

    Parameters
    ----------
    bid_px, ask_px, bid_sz, ask_sz : str
        Column templates with a ``{level}`` field, e.g. ``"BuyPrice{level}"``.
    time : tuple of str
        Column(s) joined with a space and parsed as the timestamp.
    time_format : str, optional
        ``strptime`` format of the joined string; ISO-8601 is parsed without it.
    level_base : int
        Number of the best level in the templates (1 for ``BuyPrice1``, 0 for ``BidPrice0``).
    n_levels : int
    symbol : str, optional
        Column of the instrument id; without it (or when absent from the file) the file stem.
    phase : str, optional
        Column of the trading-phase code; rows whose code is not in ``trading_phases`` are
        dropped as ``non_trading_phase``.
    trading_phases : tuple
    cum_volume : str, optional
        Cumulative traded volume column; differenced into the per-row ``volume``.
    volume : str, optional
        Per-row traded volume column (used when ``cum_volume`` is not given).
    empty_price : float, optional
        Price value that marks an empty level (0 in Chinese Level-2 files).
    tz : str, optional
        Time zone of naive timestamps (aware ones keep theirs unless ``tz=`` is passed to the
        reader). Without one, naive timestamps are read in the sessions' zone (else UTC) and the
        report warns.
    tick_size : float, optional
    sessions : Sessions, optional
    """

    bid_px: str
    ask_px: str
    bid_sz: str
    ask_sz: str
    time: tuple
    time_format: str | None = None
    level_base: int = 0
    n_levels: int = 10
    symbol: str | None = None
    phase: str | None = None
    trading_phases: tuple = ()
    cum_volume: str | None = None
    volume: str | None = None
    empty_price: float | None = None
    tz: str | None = None
    tick_size: float | None = None
    sessions: object = None

    def level_names(self, kind: str) -> list[str]:
        template = getattr(self, kind)
        return [template.format(level=i + self.level_base) for i in range(self.n_levels)]

    def required(self) -> list[str]:
        cols = [c for k in ("bid_px", "ask_px", "bid_sz", "ask_sz") for c in self.level_names(k)]
        return list(self.time) + cols + [c for c in (self.phase, self.cum_volume) if c]


PRESETS = {
    # SZSE Level-2 3-second snapshots as in DolphinDB's tick.zip (Beijing time, phase 3 = continuous).
    "cn_l2": ColumnMap(
        bid_px="BuyPrice{level}", ask_px="SellPrice{level}",
        bid_sz="BuyOrderQty{level}", ask_sz="SellOrderQty{level}",
        time=("MDDate", "MDTime"), time_format="%Y.%m.%d %H:%M:%S.%f", level_base=1,
        symbol="SecurityID", phase="TradingPhaseCode", trading_phases=(3,),
        cum_volume="TotalVolumeTrade", empty_price=0.0, tz="Asia/Shanghai", tick_size=0.01,
        sessions=CN_EQUITY,
    ),
    # SSE Level-2 snapshots as in DolphinDB's 20211201snapshot_30stocks.zip.
    "sse_l2": ColumnMap(
        bid_px="BidPrice{level}", ask_px="OfferPrice{level}",
        bid_sz="BidOrderQty{level}", ask_sz="OfferOrderQty{level}",
        time=("DateTime",), time_format="%Y.%m.%dT%H:%M:%S.%f", level_base=0,
        symbol="SecurityID", phase="InstrumentStatus", trading_phases=("TRADE",),
        cum_volume="TotalVolumeTrade", empty_price=0.0, tz="Asia/Shanghai", tick_size=0.01,
        sessions=CN_EQUITY,
    ),
    # The normalized layout itself (e.g. ``book.frame.reset_index().to_csv``), timestamps in "ts".
    "wide": ColumnMap(
        bid_px="bid_px_{level:02d}", ask_px="ask_px_{level:02d}",
        bid_sz="bid_sz_{level:02d}", ask_sz="ask_sz_{level:02d}",
        time=("ts",), symbol="symbol", volume="volume",
    ),
}  # fmt: skip


def check_tz(tz, what="tz"):
    """``tz`` if it names a time zone pandas knows (or is None), else :class:`InvalidInputError`."""
    if tz is None:
        return None
    try:
        pd.Timestamp(0, tz=tz)
    except Exception:  # noqa: BLE001 - zoneinfo, pytz and dateutil each raise their own type
        raise InvalidInputError(
            f"{what}: unknown time zone {tz!r}; expected an IANA name such as 'America/New_York', 'Asia/Shanghai' or 'UTC'"
        ) from None
    return tz


# ---------------------------------------------------------------- mapped tables


def _float_columns(df, columns, name):
    """``df[columns]`` as a float array; a cell that is not a number is a :class:`DataError`.

    Empty cells become NaN (a row the cleaning drops and counts); text is an error, since
    dropping it silently would hide a broken export.
    """
    values = df[columns].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().to_numpy() & df[columns].notna().to_numpy()
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{name}: column {columns[col]!r} must hold numbers; data row {row + 1} has {printable(df[columns[col]].iloc[row])}"
        )
    return values.to_numpy(dtype=float)


def _detect_preset(path, columns):
    for name, cmap in PRESETS.items():
        if all(c in columns for c in cmap.required()):
            return name
    raise DataError(
        f"{Path(path).name}: columns match no preset ({', '.join(PRESETS)}) nor a Databento export; "
        f"pass preset= or columns=ColumnMap(...) (its header has {len(columns)} columns)"
    )


def read_mapped(
    path: str | Path,
    *,
    preset: str | None = None,
    columns: ColumnMap | None = None,
    tick_size: float | None = None,
    tz: str | None = None,
    sessions: Sessions | str | None = None,
    sort: bool = True,
) -> dict[str, Book]:
    """Read a wide snapshot CSV/Parquet through a :class:`ColumnMap` (a preset or your own).

    Parameters
    ----------
    path : path-like
        ``.csv`` (optionally compressed, e.g. a one-file ``.zip``) or ``.parquet``.
    preset : str, optional
        Key of :data:`PRESETS`: ``"cn_l2"`` (SZSE Level-2, tick.zip), ``"sse_l2"``, ``"wide"``.
        Detected from the header when neither ``preset`` nor ``columns`` is given.
    columns : ColumnMap or dict, optional
        Your own mapping; a dict gives ColumnMap's fields.
    tick_size, tz, sessions : optional
        Override the mapping's values.
    sort : bool

    Returns
    -------
    dict[str, Book]
        One book per value of the symbol column.

    Notes
    -----
    ``volume`` is the difference of the cumulative volume between consecutive rows of the same
    symbol in file order, so volume that arrives with a dropped row (e.g. the auctions) is not
    moved onto a kept one.
    """
    path = existing_file(path)
    header = table_columns(path)
    cmap, preset = _column_map(path, header, preset, columns, tick_size=tick_size, tz=tz, sessions=sessions)
    df = _read_mapped_columns(path, header, cmap)
    stamps, assumptions = _mapped_timestamps(df, cmap, tz, path.name)
    frame, undefined = _mapped_levels(df, cmap, stamps, path.name)
    symbols = df[cmap.symbol].astype(str).to_numpy() if cmap.symbol in df else np.full(len(df), path.name.split(".")[0])
    # Every field equal: the same snapshot twice (a file exported twice), no new trade.
    duplicated = df.duplicated().to_numpy()
    volume, resets = _mapped_volume(df, cmap, stamps, symbols, path.name, duplicated)
    if volume is not None:
        frame["volume"] = volume
    trading = df[cmap.phase].isin(cmap.trading_phases).to_numpy() if cmap.phase else None
    # A preset's tick is a default the prices may contradict (an ETF on a 0.001 grid); the
    # caller's own is stated.
    stated = tick_size is not None or (columns is not None and cmap.tick_size is not None)

    books = {}
    for sym in pd.unique(symbols):
        rows = np.flatnonzero(symbols == sym)
        notes = []
        if resets.get(sym):
            notes.append(
                f"the cumulative volume ({cmap.cum_volume}) decreases {resets[sym]} times within a day: each "
                "decrease is taken as a reset to 0, the row's volume is its new cumulative value"
            )
        books[str(sym)] = clean_book(
            frame.iloc[rows], symbol=str(sym), source=path.name, tick_size=cmap.tick_size, tick_stated=stated,
            sessions=cmap.sessions, undefined=undefined[rows], trading=None if trading is None else trading[rows],
            sort=sort, meta={"format": "mapped", "preset": preset, "volume_resets": resets.get(sym, 0)},
            warnings=assumptions, notes=notes, duplicated=duplicated[rows],
        )  # fmt: skip
    return books


def _column_map(path, header, preset, columns, *, tick_size, tz, sessions):
    """The caller's ColumnMap, or the named or detected preset, with the caller's overrides; returns it and the preset."""
    if columns is not None:
        cmap = columns if isinstance(columns, ColumnMap) else ColumnMap(**columns)
    else:
        preset = preset or _detect_preset(path, header)
        if preset not in PRESETS:
            raise InvalidInputError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
        cmap = PRESETS[preset]
    cmap = replace(
        cmap,
        tick_size=cmap.tick_size if tick_size is None else tick_size,
        tz=tz or cmap.tz,
        sessions=as_sessions(sessions) or as_sessions(cmap.sessions),
    )
    return cmap, preset


def _read_mapped_columns(path, header, cmap):
    """The columns ``cmap`` uses, read from the file; a missing column or an empty file is a DataError."""
    missing = [c for c in cmap.required() if c not in header]
    if missing:
        raise DataError(f"{path.name}: missing columns {missing[:8]}{'...' if len(missing) > 8 else ''}")
    extra = [c for c in (cmap.symbol, cmap.volume) if c and c in header]
    # Security codes are text: SZSE's 000400 is not the number 400.
    df = read_columns(path, usecols=list(dict.fromkeys(cmap.required() + extra)),
                      text=[cmap.symbol] if cmap.symbol in header else [])  # fmt: skip
    if len(df) == 0:
        raise DataError(f"{path.name}: the file holds no rows (only a header)")
    return df


def _mapped_timestamps(df, cmap, tz, name):
    """The rows' tz-aware timestamps, and the warning when a zone had to be assumed for naive ones."""
    if len(cmap.time) == 1 and isinstance(df[cmap.time[0]].dtype, (pd.DatetimeTZDtype, np.dtypes.DateTime64DType)):
        stamps = pd.DatetimeIndex(df[cmap.time[0]])  # Parquet keeps typed timestamps and their zone
    else:
        text = df[cmap.time[0]].astype(str)
        for c in cmap.time[1:]:
            text = text + " " + df[c].astype(str)
        try:
            stamps = pd.DatetimeIndex(pd.to_datetime(text, format=cmap.time_format or "ISO8601"))
        except (ValueError, TypeError) as exc:
            stamps = _mixed_offsets(text, cmap, tz)
            if stamps is None:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise DataError(f"{name}: cannot parse timestamps {printable(text.iloc[0])}: {first}") from None
    assumptions = []
    if stamps.tz is None:
        zone = cmap.tz or (cmap.sessions.tz if cmap.sessions else "UTC")
        if cmap.tz is None:
            source = "the zone of the sessions" if cmap.sessions else "no zone given"
            assumptions.append(f"timestamps carry no time zone and were read as {zone} ({source}); pass tz= (--tz) to say")
        stamps = stamps.tz_localize(zone)
    elif tz is not None:
        stamps = stamps.tz_convert(tz)
    return stamps, assumptions


def _mixed_offsets(text, cmap, tz):
    """Timestamps with several UTC offsets (a day across a DST change).

    The instants, in the caller's, the map's or the sessions' zone (else UTC); None when they are
    not that.
    """
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(text, format=cmap.time_format or "ISO8601", utc=True))
    except (ValueError, TypeError):
        return None
    return stamps.tz_convert(tz or cmap.tz or (cmap.sessions.tz if cmap.sessions else "UTC"))


def _mapped_levels(df, cmap, stamps, name):
    """The book frame of the mapped price and size columns, and the mask of price cells holding the empty sentinel."""
    cols = level_columns(cmap.n_levels)
    frame = pd.DataFrame(index=stamps)
    undefined = []
    for kind in ("bid_px", "ask_px", "bid_sz", "ask_sz"):
        values = _float_columns(df, cmap.level_names(kind), name)
        if kind.endswith("_px"):
            empty = cmap.empty_price
            undefined.append(values == empty if empty is not None else np.zeros(values.shape, bool))
        frame[cols[kind]] = values
    return frame, np.hstack(undefined)


def _mapped_volume(df, cmap, stamps, symbols, name, duplicated):
    """Shares traded since each row's previous row of its symbol and day, and the resets per symbol.

    From a cumulative column: differenced per symbol and per local trading day in time order
    (a shuffled file's consecutive rows are not consecutive trades; a day's count starts again
    at 0, so its first row carries that day's volume before it, e.g. the opening auction when
    the file lacks its rows). A decrease within a day is a vendor reset: counted, and the row's
    volume is its new cumulative value. Repeated rows (``duplicated``) carry none. From a
    per-row column: its values. ``(None, {})`` when the map has neither.
    """
    if cmap.cum_volume:
        cum_all = _float_columns(df, [cmap.cum_volume], name)[:, 0]
        days = stamps.tz_localize(None).normalize().asi8
        keep = np.flatnonzero(~duplicated)
        order = keep[np.argsort(stamps.asi8[keep], kind="stable")]
        cum = pd.Series(cum_all[order])
        groups = [symbols[order], days[order]]
        step = cum.groupby(groups).diff()
        reset = (step < 0).to_numpy()
        volume = np.zeros(len(df))
        volume[order] = np.where(step.isna().to_numpy() | reset, cum.to_numpy(), step.to_numpy())
        per_symbol = pd.Series(reset).groupby(symbols[order]).sum()
        return volume, {sym: int(n) for sym, n in per_symbol.items() if n}
    if cmap.volume in df:
        return np.where(duplicated, 0.0, _float_columns(df, [cmap.volume], name)[:, 0]), {}
    return None, {}


# ---------------------------------------------------------------- entry points


def _read_table_auto(path, preset=None, **options):
    """CSV/Parquet: a Databento export goes to the Databento reader, anything else is mapped."""
    if preset == "databento" or (
        preset is None and options.get("columns") is None and looks_databento(table_columns(existing_file(path)))
    ):
        return _call(read_databento, path, options)
    return _call(read_mapped, path, dict(options, preset=preset))


@dataclass(frozen=True)
class Format:
    """A book format :func:`read_books` knows: its reader and the files it takes (one line)."""

    reader: Callable[..., dict[str, Book]]
    files: str


#: The one list of book formats: ``read_books(format=...)``, the CLI's ``--format`` and its help.
FORMATS = {
    "databento": Format(read_databento, "Databento MBP-N: DBN (.dbn, .dbn.zst) or its CSV/Parquet export"),
    "mbo": Format(read_mbo, "Databento MBO (.dbn, .dbn.zst), replayed into MBP-10"),
    "lobster": Format(read_lobster, "LOBSTER: *_orderbook_L.csv with its *_message_L.csv"),
    "csv": Format(_read_table_auto, "a wide snapshot CSV (also .zip, .gz): SZSE/SSE Level-2 presets or --preset"),
    "parquet": Format(_read_table_auto, "the same as Parquet"),
    "binance": Format(read_binance, "Binance depth-stream captures (spot, USD-M futures), by content"),
}


def _infer_format(path):
    name = Path(path).name.lower()
    if name.endswith((".dbn", ".dbn.zst")):
        return "mbo" if looks_mbo(path) else "databento"  # the schema in the DBN metadata
    if looks_lobster(path):
        return "lobster"
    if is_parquet(path):
        return "parquet"
    if re.search(r"\.(csv|txt)(\.(gz|bz2|zst|xz))?$|\.zip$", name):
        return "csv"
    if looks_binance(path):  # recognized by content: "<ns> {json}" lines of a depth stream
        return "binance"
    raise DataError(f"cannot infer the format of {Path(path).name}; pass format= one of {sorted(FORMATS)}")


def source_files(path):
    """Every file a reader of ``path`` reads: both files of a LOBSTER pair, else ``path`` itself."""
    if looks_lobster(path):
        book_file, message_file, _ = lobster_pair(existing_file(path))
        return [book_file, message_file]
    return [Path(path)]


def _call(loader, path, options):
    accepted = set(inspect.signature(loader).parameters) - {"path"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidInputError(f"{loader.__name__} does not take {unknown}; it takes {sorted(accepted)}")
    return loader(path, **options)


def read_books(path: str | Path, format: str | None = None, **options: Any) -> dict[str, Book]:
    """Read every instrument of an order-book file.

    Parameters
    ----------
    path : path-like
    format : str, optional
        A key of :data:`FORMATS`. Inferred from the file name (and, for tables, the header) when omitted; Databento
        MBO files and Binance depth streams are recognized by their content.
    **options
        Passed to the format's reader: :func:`read_databento` (``definition``, ``ts``),
        :func:`read_lobster`, :func:`read_mapped` (``preset``, ``columns``); all take
        ``tick_size``, ``tz``, ``sessions`` and ``sort``. Without ``sessions`` the format's
        default sessions are trimmed to the span the data cover
        (:func:`convexsched.data.sessions.infer_sessions`, noted in each book's report).

    Returns
    -------
    dict[str, Book]
        Keyed by symbol, in file order.
    """
    check_tz(options.get("tz"))
    format = format or _infer_format(path)
    if format not in FORMATS:
        raise InvalidInputError(f"unknown format {format!r}; known: {sorted(FORMATS)}")
    loader = FORMATS[format].reader
    books = loader(path, **options) if loader is _read_table_auto else _call(loader, path, options)
    if options.get("sessions") is None:
        # Sessions not given: trim the market's sessions to the span the data cover.
        books = {symbol: with_inferred_sessions(book) for symbol, book in books.items()}
    return books


def read_book(path: str | Path, format: str | None = None, *, symbol: str | None = None, **options: Any) -> Book:
    """Read one instrument's book; see :func:`read_books` for ``format`` and ``options``.

    Parameters
    ----------
    symbol : str, optional
        Required when the file holds several instruments.

    Returns
    -------
    Book
        With ``.frame`` (normalized) and ``.report`` (rows read/kept/dropped per reason).

    Raises
    ------
    DataError
        Unreadable file or unknown ``symbol`` (the message lists the available ones).
    InvalidInputError
        Several instruments and no ``symbol``.
    """
    books = read_books(path, format, **options)
    if symbol is None:
        if len(books) != 1:
            raise InvalidInputError(
                f"{Path(path).name} holds {len(books)} symbols {list(books)}; pass symbol= (or use read_books)"
            )
        return next(iter(books.values()))
    if str(symbol) not in books:
        raise DataError(f"symbol {symbol!r} not in {Path(path).name}; available: {list(books)}")
    return books[str(symbol)]
