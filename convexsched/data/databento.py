"""Databento MBP-N books: DBN files (``.dbn``, ``.dbn.zst``) and their CSV/Parquet exports.

Read with the ``databento`` package (the ``databento`` extra). Prices come as int64 fixed point
(scale 1e-9) where ``INT64_MAX`` marks an undefined price; see :func:`read_databento`. MBO files
are replayed by :mod:`convexsched.data.mbo`, which opens them with :func:`open_store` too.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .._optional import require
from ..errors import DataError
from ..files import existing_file, read_columns
from .book import book_columns, clean_book, level_columns
from .sessions import US_EQUITY, as_sessions

_INT64_MAX = np.iinfo(np.int64).max
# Fixed-point divisor; dividing (not multiplying by 1e-9) gives the correctly rounded price.
_DATABENTO_UNITS = 1e9
# Dataset prefixes of US cash-equity venues: their books trade 09:30-16:00 New York time.
_US_EQUITY_VENUES = {
    "XNAS", "XNYS", "XBOS", "XPSX", "XCHI", "XCIS", "XASE", "ARCX", "BATS", "BATY",
    "EDGA", "EDGX", "IEXG", "MEMX", "EPRL", "DBEQ", "EQUS",
}  # fmt: skip


def looks_databento(columns):
    """Whether a table's ``columns`` are a Databento MBP export's (``bid_px_00`` and a ``ts_*``)."""
    return "bid_px_00" in columns and ("ts_recv" in columns or "ts_event" in columns)


def _definition_ticks(definition):
    """instrument_id -> min_price_increment from a Databento definition file (NaN ones left out)."""
    defs = _dbn_frame(existing_file(definition), price_type="float")
    defs = defs.dropna(subset=["min_price_increment"])
    return dict(zip(defs["instrument_id"].astype(int), defs["min_price_increment"].astype(float), strict=True))


def _zst_complete(path):
    """Whether every zstd frame of ``path`` ends (a download cut short ends mid-frame)."""
    import zstandard

    decompressor = None
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            while chunk:
                if decompressor is None or decompressor.eof:
                    decompressor = zstandard.ZstdDecompressor().decompressobj()
                try:
                    decompressor.decompress(chunk)
                except zstandard.ZstdError:
                    return True  # not zstd at all: not a cut file, the decoder's own error says what it is
                chunk = decompressor.unused_data if decompressor.eof else b""
    return decompressor is None or decompressor.eof


def truncation_error(path, caught):
    """A :class:`DataError` when the decoder warned of a cut record or a zstd frame does not end, else None.

    ``caught`` are the warnings recorded while decoding: ``databento`` only warns ("DBN file is
    truncated or contains an incomplete record") and decodes the records before the cut.
    """
    name = Path(path).name
    if any("truncated" in str(w.message) for w in caught):
        return DataError(f"{name} is truncated: its last record is cut short; download the file again")
    if name.lower().endswith(".zst") and Path(path).is_file() and not _zst_complete(path):
        return DataError(f"{name} is truncated: its compressed stream ends mid-frame; download the file again")
    return None


@contextmanager
def open_store(path):
    """A ``databento.DBNStore`` on ``path`` whose file is closed when the block ends.

    ``DBNStore.from_file`` opens the file on first read and never closes it (a
    ``ResourceWarning: unclosed file`` per read); the store is built on a
    ``FileDataSource`` we close ourselves, which streams the file instead of copying it.
    """
    # Imported here: databento pulls in an HTTP stack (~0.5 s) that only DBN reading needs.
    databento = require("databento", "databento", "reading DBN files")
    from databento.common.dbnstore import FileDataSource

    source = None
    try:
        source = FileDataSource(Path(path))
        store = databento.DBNStore(source)
    except Exception as exc:  # the decoder raises bare BentoError/ValueError/OSError variants
        if source is not None:
            source.reader.close()
        raise (truncation_error(path, []) or DataError(f"cannot read DBN file {Path(path).name}: {exc}")) from None
    try:
        yield store
    finally:
        source.reader.close()


def _dbn_frame(path, price_type):
    with open_store(path) as store:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # databento 0.87 calls set_index(inplace=True), deprecated in pandas 3.1: not ours to fix.
                warnings.filterwarnings("ignore", message="The inplace keyword")
                frame = store.to_df(price_type=price_type, map_symbols=True)
        except Exception as exc:  # the decoder raises bare BentoError/ValueError/OSError variants
            raise (truncation_error(path, []) or DataError(f"cannot read DBN file {path}: {exc}")) from None
        truncated = truncation_error(path, caught)
        if truncated is not None:
            raise truncated
        frame.attrs["dataset"] = store.metadata.dataset
    return frame.reset_index()


def _databento_books(df, *, source, dataset, ts, tick_size, tick_by_id, tz, sessions, sort):
    """Books from a Databento MBP frame (fixed-point or float prices), one per symbol."""
    if ts not in df:
        raise DataError(f"{source}: no timestamp column {ts!r} among its {len(df.columns)} columns")
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
    frame = pd.DataFrame(prices.to_numpy(dtype=float) / (_DATABENTO_UNITS if fixed else 1.0), columns=price_cols)
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
    # Every field equal (sequence numbers included): the same record exported twice.
    duplicated = df.duplicated().to_numpy()
    books = {}
    for sym in pd.unique(symbols):
        rows = np.flatnonzero(symbols == sym)
        tick = tick_size if tick_size is not None else tick_by_id.get(int(ids[rows[0]]))
        books[sym] = clean_book(
            frame.iloc[rows],
            symbol=sym,
            source=source,
            tick_size=tick,
            tick_stated=tick_size is not None,
            sessions=sessions,
            undefined=None if undefined is None else undefined[rows],
            sort=sort,
            meta={"dataset": dataset, "format": "databento", "timestamp": ts},
            duplicated=duplicated[rows],
        )
    return books


def read_databento(path, *, definition=None, ts="ts_recv", tick_size=None, tz=None, sessions=None, sort=True):
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
    path = existing_file(path)
    tick_by_id = _definition_ticks(definition) if definition is not None else {}
    name = path.name.lower()
    if name.endswith((".dbn", ".dbn.zst")):
        df = _dbn_frame(path, price_type="fixed")
        dataset = df.attrs.get("dataset")
    else:
        df = read_columns(path)
        dataset = None
    return _databento_books(
        df, source=path.name, dataset=dataset, ts=ts, tick_size=tick_size, tick_by_id=tick_by_id,
        tz=tz, sessions=sessions, sort=sort,
    )  # fmt: skip
