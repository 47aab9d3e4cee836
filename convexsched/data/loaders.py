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
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._optional import require
from ..errors import DataError, InvalidInputError
from ..files import UNREADABLE, unreadable_error
from .binance import looks_binance, read_binance
from .book import book_columns, clean_book, level_columns
from .mbo import looks_mbo, read_mbo
from .sessions import CN_EQUITY, US_EQUITY, as_sessions, with_inferred_sessions

if TYPE_CHECKING:
    from .book import Book
    from .sessions import Sessions

_INT64_MAX = np.iinfo(np.int64).max
# Fixed-point divisors; dividing (not multiplying by 1e-9) gives the correctly rounded price.
_DATABENTO_UNITS = 1e9
_LOBSTER_UNITS = 1e4
_LOBSTER_EMPTY = 9_999_999_999
_LOBSTER_NAME = re.compile(
    r"^(?P<symbol>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_(?P<kind>orderbook|message)_(?P<levels>\d+)\.csv$"
)
# Dataset prefixes of US cash-equity venues: their books trade 09:30-16:00 New York time.
_US_EQUITY_VENUES = {
    "XNAS", "XNYS", "XBOS", "XPSX", "XCHI", "XCIS", "XASE", "ARCX", "BATS", "BATY",
    "EDGA", "EDGX", "IEXG", "MEMX", "EPRL", "DBEQ", "EQUS",
}  # fmt: skip


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


def _checked_path(path):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    return path


def check_tz(tz, what="tz"):
    """``tz`` if it names a time zone pandas knows (or is None), else :class:`InvalidInputError`."""
    if tz is None:
        return None
    try:
        pd.Timestamp(0, tz=tz)
    except Exception:  # noqa: BLE001 - zoneinfo, pytz and dateutil each raise their own type
        raise InvalidInputError(
            f"{what}: unknown time zone {tz!r}; expected an IANA name such as 'America/New_York', "
            "'Asia/Shanghai' or 'UTC'"
        ) from None
    return tz


def _name_lower(path):
    return Path(path).name.lower()


# ---------------------------------------------------------------- Databento


def _definition_ticks(definition):
    """instrument_id -> min_price_increment from a Databento definition file (NaN ones left out)."""
    defs = _dbn_frame(_checked_path(definition), price_type="float")
    defs = defs.dropna(subset=["min_price_increment"])
    return dict(
        zip(defs["instrument_id"].astype(int), defs["min_price_increment"].astype(float), strict=True)
    )


def _dbn_frame(path, price_type):
    # Imported here: databento pulls in an HTTP stack (~0.5 s) that only DBN reading needs.
    databento = require("databento", "databento", "reading DBN files")

    try:
        store = databento.DBNStore.from_file(path)
        with warnings.catch_warnings():
            # databento 0.87 calls set_index(inplace=True), deprecated in pandas 3.1: not ours to fix.
            warnings.filterwarnings("ignore", message="The inplace keyword")
            frame = store.to_df(price_type=price_type, map_symbols=True)
    except DataError:
        raise
    except Exception as exc:  # the decoder raises bare BentoError/ValueError/OSError variants
        raise DataError(f"cannot read DBN file {path}: {exc}") from exc
    frame.attrs["dataset"] = store.metadata.dataset
    return frame.reset_index()


def _databento_books(df, *, source, dataset, ts, tick_size, tick_by_id, tz, sessions, sort):
    """Books from a Databento MBP frame (fixed-point or float prices), one per symbol."""
    if ts not in df:
        raise DataError(f"{source}: no timestamp column {ts!r} (columns: {list(df.columns)[:8]}...)")
    n_levels = sum(bool(re.fullmatch(r"bid_px_\d\d", c)) for c in df.columns)
    if n_levels == 0:
        raise DataError(f"{source}: no bid_px_00 column; is this an MBP-N file?")
    cols = level_columns(n_levels)
    venue = (dataset or "").split(".")[0]
    sessions = as_sessions(sessions) or (US_EQUITY if venue in _US_EQUITY_VENUES else None)
    tz = tz or (sessions.tz if sessions else "UTC")

    stamps = df[ts]
    if pd.api.types.is_numeric_dtype(stamps):
        stamps = pd.to_datetime(stamps, unit="ns", utc=True)
    else:
        stamps = pd.to_datetime(stamps, utc=True, format="ISO8601")
    price_cols = cols["bid_px"] + cols["ask_px"]
    prices = df[price_cols]
    fixed = all(pd.api.types.is_integer_dtype(t) for t in prices.dtypes)
    undefined = (prices.to_numpy() == _INT64_MAX) if fixed else None
    frame = pd.DataFrame(
        prices.to_numpy(dtype=float) / (_DATABENTO_UNITS if fixed else 1.0), columns=price_cols
    )
    for c in cols["bid_sz"] + cols["ask_sz"]:
        frame[c] = df[c].to_numpy(dtype=float)
    frame = frame[book_columns(n_levels)]
    if "action" in df:
        # MBP trade records ('T') carry the traded size and leave the book unchanged.
        frame["volume"] = np.where(df["action"].astype(str) == "T", df["size"].to_numpy(float), 0.0)
    frame.index = pd.DatetimeIndex(stamps).tz_convert(tz)

    id_col = next((c for c in ("instrument_id", "product_id") if c in df), None)
    symbols = (df["symbol"] if "symbol" in df else df[id_col]).astype(str).to_numpy()
    ids = df[id_col].to_numpy() if id_col else np.zeros(len(df), int)
    if len(df) == 0:
        raise DataError(f"{source}: the file holds no rows (only a header)")
    books = {}
    for sym in pd.unique(symbols):
        rows = np.flatnonzero(symbols == sym)
        tick = tick_size if tick_size is not None else tick_by_id.get(int(ids[rows[0]]))
        books[sym] = clean_book(
            frame.iloc[rows],
            symbol=sym,
            source=source,
            tick_size=tick,
            sessions=sessions,
            undefined=None if undefined is None else undefined[rows],
            sort=sort,
            meta={"dataset": dataset, "format": "databento", "timestamp": ts},
        )
    return books


def read_databento(
    path, *, definition=None, ts="ts_recv", tick_size=None, tz=None, sessions=None, sort=True
):
    """Read a Databento MBP-N file: DBN (``.dbn``, ``.dbn.zst``) or a CSV/Parquet export.

    Parameters
    ----------
    path : path-like
    definition : path-like, optional
        A Databento definition file; its ``min_price_increment`` gives each instrument's tick.
    ts : {"ts_recv", "ts_event"}
        Timestamp of the snapshot; ``ts_recv`` is Databento's sort key.
    tick_size : float, optional
        Overrides the definition; inferred from the prices when neither is given.
    tz : str, optional
        Index time zone; default the sessions' zone, else UTC.
    sessions : Sessions or str, optional
        Default: US equity hours for US equity venues (``XNAS.ITCH``, ``DBEQ.BASIC``, ...), else none.
    sort : bool
        Sort by ``ts`` (default) instead of dropping out-of-order rows.

    Returns
    -------
    dict[str, Book]

    Notes
    -----
    Prices come as int64 fixed point (scale 1e-9) where ``INT64_MAX`` marks an undefined price:
    an empty level when its size is 0, else the row is dropped as ``undefined_price``. CSV/Parquet
    exports with integer price columns are read as fixed point, float ones as prices (empty = NaN).
    """
    path = _checked_path(path)
    tick_by_id = _definition_ticks(definition) if definition is not None else {}
    name = _name_lower(path)
    if name.endswith((".dbn", ".dbn.zst")):
        df = _dbn_frame(path, price_type="fixed")
        dataset = df.attrs.get("dataset")
    else:
        df = _read_table(path)
        dataset = None
    return _databento_books(
        df, source=path.name, dataset=dataset, ts=ts, tick_size=tick_size, tick_by_id=tick_by_id,
        tz=tz, sessions=sessions, sort=sort,
    )  # fmt: skip


# ---------------------------------------------------------------- LOBSTER


def _lobster_pair(path):
    match = _LOBSTER_NAME.match(Path(path).name)
    if match is None:
        raise DataError(
            f"{Path(path).name} is not a LOBSTER file name "
            "(TICKER_YYYY-MM-DD_START_END_orderbook|message_LEVELS.csv)"
        )
    other = "message" if match["kind"] == "orderbook" else "orderbook"
    partner = Path(path).with_name(Path(path).name.replace(f"_{match['kind']}_", f"_{other}_"))
    book_file, message_file = (path, partner) if match["kind"] == "orderbook" else (partner, path)
    if not Path(message_file).is_file() or not Path(book_file).is_file():
        raise DataError(f"LOBSTER needs both files; missing {partner}")
    return Path(book_file), Path(message_file), match


def source_files(path):
    """Every file a reader of ``path`` reads: both files of a LOBSTER pair, else ``path`` itself."""
    if _LOBSTER_NAME.match(Path(path).name):
        book_file, message_file, _ = _lobster_pair(_checked_path(path))
        return [book_file, message_file]
    return [Path(path)]


def read_lobster(path, *, tick_size=0.01, tz="America/New_York", sessions=US_EQUITY, sort=True):
    """Read a LOBSTER orderbook + message pair (either file may be given).

    Parameters
    ----------
    path : path-like
        ``TICKER_YYYY-MM-DD_START_END_orderbook_L.csv`` or the matching message file.
    tick_size : float
        0.01 USD for the NASDAQ stocks LOBSTER covers.
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
    hidden executions (event types 4 and 5).
    """
    book_file, message_file, match = _lobster_pair(_checked_path(path))
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
    undefined = np.abs(np.hstack([bid_px, ask_px])) == _LOBSTER_EMPTY
    cols = level_columns(n_levels)
    frame = pd.DataFrame(
        np.hstack([bid_px, ask_px]) / _LOBSTER_UNITS, columns=cols["bid_px"] + cols["ask_px"]
    )
    frame[cols["bid_sz"]] = bid_sz.astype(float)
    frame[cols["ask_sz"]] = ask_sz.astype(float)

    # Seconds as text: a float64 round trip would move nanosecond stamps.
    secs = msg[0].str.split(".", n=1, expand=True).reindex(columns=[0, 1]).fillna("0")
    nanos = secs[0].astype(np.int64) * 1_000_000_000 + secs[1].str.ljust(9, "0").str[:9].astype(np.int64)
    midnight = pd.Timestamp(match["date"]).tz_localize(tz)
    frame.index = midnight + pd.to_timedelta(nanos.to_numpy(), unit="ns")
    event = msg[1].to_numpy()
    frame["volume"] = np.where(np.isin(event, (4, 5)), msg[3].to_numpy(float), 0.0)
    symbol = match["symbol"]
    return {
        symbol: clean_book(
            frame, symbol=symbol, source=book_file.name, tick_size=tick_size, sessions=as_sessions(sessions),
            undefined=undefined, trading=event != 7, sort=sort,
            meta={"format": "lobster", "date": match["date"], "message_file": message_file.name},
        )
    }  # fmt: skip


# ---------------------------------------------------------------- mapped tables


def _is_parquet(path):
    return _name_lower(path).endswith((".parquet", ".pq"))


def _table_columns(path):
    try:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            return pq.read_schema(path).names
        return list(pd.read_csv(path, nrows=0).columns)
    except UNREADABLE as exc:
        raise unreadable_error(path, exc) from None


def _read_table(path, usecols=None):
    try:
        if _is_parquet(path):
            # Databento's to_parquet stores ts_recv as the index: make it a column again.
            frame = pd.read_parquet(path, columns=usecols)
            return frame.reset_index() if frame.index.name is not None else frame
        return pd.read_csv(path, usecols=usecols)
    except UNREADABLE as exc:
        raise unreadable_error(path, exc) from None


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
            f"{name}: column {columns[col]!r} must hold numbers; data row {row + 1} has "
            f"{df[columns[col]].iloc[row]!r}"
        )
    return values.to_numpy(dtype=float)


def _looks_databento(columns):
    return "bid_px_00" in columns and ("ts_recv" in columns or "ts_event" in columns)


def _detect_preset(path, columns):
    for name, cmap in PRESETS.items():
        if all(c in columns for c in cmap.required()):
            return name
    raise DataError(
        f"{Path(path).name}: columns match no preset ({', '.join(PRESETS)}) nor a Databento export; "
        f"pass preset= or columns=ColumnMap(...). First columns: {columns[:10]}"
    )


def read_mapped(path: str | Path, *, preset: str | None = None, columns: ColumnMap | None = None,
                tick_size: float | None = None, tz: str | None = None, sessions: Sessions | str | None = None,
                sort: bool = True) -> dict[str, Book]:
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
    path = _checked_path(path)
    header = _table_columns(path)
    cmap, preset = _column_map(path, header, preset, columns, tick_size=tick_size, tz=tz, sessions=sessions)
    df = _read_mapped_columns(path, header, cmap)
    stamps, assumptions = _mapped_timestamps(df, cmap, tz, path.name)
    frame, undefined = _mapped_levels(df, cmap, stamps, path.name)
    symbols = (
        df[cmap.symbol].astype(str).to_numpy()
        if cmap.symbol in df
        else np.full(len(df), path.name.split(".")[0])
    )
    volume = _mapped_volume(df, cmap, stamps, symbols, path.name)
    if volume is not None:
        frame["volume"] = volume
    trading = df[cmap.phase].isin(cmap.trading_phases).to_numpy() if cmap.phase else None

    books = {}
    for sym in pd.unique(symbols):
        rows = np.flatnonzero(symbols == sym)
        books[str(sym)] = clean_book(
            frame.iloc[rows], symbol=str(sym), source=path.name, tick_size=cmap.tick_size, sessions=cmap.sessions,
            undefined=undefined[rows], trading=None if trading is None else trading[rows], sort=sort,
            meta={"format": "mapped", "preset": preset}, warnings=assumptions,
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
    df = _read_table(path, usecols=list(dict.fromkeys(cmap.required() + extra)))
    if len(df) == 0:
        raise DataError(f"{path.name}: the file holds no rows (only a header)")
    return df


def _mapped_timestamps(df, cmap, tz, name):
    """The rows' tz-aware timestamps, and the warning when a zone had to be assumed for naive ones."""
    if len(cmap.time) == 1 and isinstance(
        df[cmap.time[0]].dtype, (pd.DatetimeTZDtype, np.dtypes.DateTime64DType)
    ):
        stamps = pd.DatetimeIndex(df[cmap.time[0]])  # Parquet keeps typed timestamps and their zone
    else:
        text = df[cmap.time[0]].astype(str)
        for c in cmap.time[1:]:
            text = text + " " + df[c].astype(str)
        try:
            stamps = pd.DatetimeIndex(pd.to_datetime(text, format=cmap.time_format or "ISO8601"))
        except (ValueError, TypeError) as exc:
            raise DataError(f"{name}: cannot parse timestamps {text.iloc[0]!r}: {exc}") from exc
    assumptions = []
    if stamps.tz is None:
        zone = cmap.tz or (cmap.sessions.tz if cmap.sessions else "UTC")
        if cmap.tz is None:
            source = "the zone of the sessions" if cmap.sessions else "no zone given"
            assumptions.append(
                f"timestamps carry no time zone and were read as {zone} ({source}); pass tz= (--tz) to say"
            )
        stamps = stamps.tz_localize(zone)
    elif tz is not None:
        stamps = stamps.tz_convert(tz)
    return stamps, assumptions


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


def _mapped_volume(df, cmap, stamps, symbols, name):
    """Shares traded since each symbol's previous row, from a cumulative or a per-row volume column (None if neither)."""
    if cmap.cum_volume:
        # Differenced in time order: in a shuffled file, consecutive rows are not consecutive trades.
        order = np.argsort(stamps.asi8, kind="stable")
        cum = pd.Series(_float_columns(df, [cmap.cum_volume], name)[order, 0])
        volume = np.empty(len(df))
        volume[order] = cum.groupby(symbols[order]).diff().fillna(cum).to_numpy()
        return volume
    if cmap.volume in df:
        return _float_columns(df, [cmap.volume], name)[:, 0]
    return None


# ---------------------------------------------------------------- entry points


def _read_table_auto(path, preset=None, **options):
    """CSV/Parquet: a Databento export goes to the Databento reader, anything else is mapped."""
    if preset == "databento" or (
        preset is None
        and options.get("columns") is None
        and _looks_databento(_table_columns(_checked_path(path)))
    ):
        return _call(read_databento, path, options)
    return _call(read_mapped, path, dict(options, preset=preset))


_FORMATS = {
    "databento": read_databento,
    "lobster": read_lobster,
    "csv": _read_table_auto,
    "parquet": _read_table_auto,
    "binance": read_binance,
    "mbo": read_mbo,
}


def _infer_format(path):
    name = _name_lower(path)
    if name.endswith((".dbn", ".dbn.zst")):
        return "mbo" if looks_mbo(path) else "databento"  # the schema in the DBN metadata
    if _LOBSTER_NAME.match(Path(path).name):
        return "lobster"
    if _is_parquet(path):
        return "parquet"
    if re.search(r"\.(csv|txt)(\.(gz|bz2|zst|xz))?$|\.zip$", name):
        return "csv"
    if looks_binance(path):  # recognized by content: "<ns> {json}" lines of a depth stream
        return "binance"
    raise DataError(f"cannot infer the format of {Path(path).name}; pass format= one of {sorted(_FORMATS)}")


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
    format : {"databento", "mbo", "lobster", "csv", "parquet", "binance"}, optional
        Inferred from the file name (and, for tables, the header) when omitted; Databento
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
    if format not in _FORMATS:
        raise InvalidInputError(f"unknown format {format!r}; known: {sorted(_FORMATS)}")
    loader = _FORMATS[format]
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
                f"{Path(path).name} holds {len(books)} symbols {list(books)}; "
                "pass symbol= (or use read_books)"
            )
        return next(iter(books.values()))
    if str(symbol) not in books:
        raise DataError(f"symbol {symbol!r} not in {Path(path).name}; available: {list(books)}")
    return books[str(symbol)]
