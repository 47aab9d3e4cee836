"""A SYNTHETIC universe of thousands of symbols with the liquidity cross-section of real books.

Scale tests need thousands of symbols a desk would trade, and the project has 35 real books. The
cross-section of those books (price, quoted spread, displayed depth, traded volume and
volatility spanning orders of magnitude, and correlated: cheap stocks have wide spreads in bps
and deep books) is summarized by a :class:`LiquidityModel`, a joint lognormal of

``price`` (mid), ``spread_bps`` (median quoted spread), ``level_size`` (median displayed shares per
level), ``volume_per_minute`` (shares traded per session minute) and ``minute_volatility``
(standard deviation of one-minute log mid returns),

fitted per book by :meth:`LiquidityModel.fit` (:func:`book_liquidity`). :data:`CN_BOOKS` is that
fit on the 35 real Chinese books (``tick.zip``: 5 SZSE stocks, a full day; the SSE 30-stock panel,
its first hour); ``tests/data/test_synthetic_universe.py`` refits it from ``../shared/data`` and checks the
constants.

:func:`synthetic_universe` draws symbols from the model; :func:`universe_day` generates one day of
books for a batch of them in whole-array numpy, one snapshot per one-minute bucket of the
sessions: the executor trades every bucket against its first snapshot, so a finer book would not
change a backtest. Within the day the mid is a random walk with U-shaped volatility, the spread
(whole ticks) is U-shaped too and deeper levels are 1-3 ticks apart, displayed sizes build
through the day and grow with the level (100-share lots), as in
:func:`convexsched.synthetic_book`. Never market data: books are labelled ``synthetic``.

Books can also be kept as a hive-partitioned Parquet dataset (``root/symbol=S/day=D/*.parquet``,
:func:`write_book_dataset`, read back with ``pyarrow.dataset`` by :func:`read_dataset_book`), a
universe source beside the CSV manifest (:func:`dataset_manifest`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, InvalidInputError
from .book import Book, clean_book, level_columns
from .sessions import CN_EQUITY, Sessions, session_buckets

_LOT = 100.0
LIQUIDITY = ("price", "spread_bps", "level_size", "volume_per_minute", "minute_volatility")


def book_liquidity(book: Book) -> dict[str, float]:
    """One book's liquidity: the medians and rates :class:`LiquidityModel` is fitted on.

    Returns
    -------
    dict
        ``price`` (median mid), ``spread_bps`` (median quoted spread over the mid),
        ``level_size`` (median displayed ask shares per filled level), ``volume_per_minute``
        (shares traded in the sessions over their minutes) and ``minute_volatility`` (standard
        deviation of the one-minute changes of the log mid, last snapshot of each minute).
    """
    frame = book.frame
    bid, ask = frame["bid_px_00"].to_numpy(float), frame["ask_px_00"].to_numpy(float)
    mid = (bid + ask) / 2
    sizes = frame.filter(like="ask_sz_").to_numpy(float)
    buckets = session_buckets(book)
    inside = buckets.labels.notna().to_numpy()
    if not inside.any() or book.traded_volume is None:
        raise DataError(f"{book.symbol}: needs rows in its sessions and a traded volume")
    minutes = buckets.labels[inside]
    last_mid = pd.Series(np.log(mid[inside]), index=minutes.index).groupby(minutes.to_numpy()).last()
    return {
        "price": float(np.median(mid)),
        "spread_bps": float(np.median((ask - bid) / mid * 1e4)),
        "level_size": float(np.median(sizes[sizes > 0])),
        "volume_per_minute": float(book.traded_volume[inside].sum() / minutes.nunique()),
        "minute_volatility": float(np.diff(last_mid.to_numpy()).std()),
    }


@dataclass(frozen=True)
class LiquidityModel:
    """A joint lognormal cross-section of :data:`LIQUIDITY` (module docstring).

    Attributes
    ----------
    mean : tuple of float
        Mean of the logs, in the order of :data:`LIQUIDITY`.
    cov : tuple of tuple of float
        Covariance of the logs.
    n_books : int
        How many books it was fitted on.
    source : str
    """

    mean: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]
    n_books: int
    source: str = ""
    names: tuple[str, ...] = field(default=LIQUIDITY)

    @classmethod
    def fit(cls, books: Iterable[Book], source: str = "") -> LiquidityModel:
        """Mean and covariance of the logs of :func:`book_liquidity` over ``books``."""
        table = pd.DataFrame([book_liquidity(book) for book in books], columns=list(LIQUIDITY))
        if len(table) < 2 or not (table.to_numpy() > 0).all():
            raise DataError(f"need at least two books with positive liquidity figures, got {len(table)}")
        logs = np.log(table.to_numpy())
        cov = tuple(tuple(float(v) for v in row) for row in np.cov(logs, rowvar=False))
        return cls(tuple(float(v) for v in logs.mean(axis=0)), cov, len(table), source)

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        """``n`` symbols' liquidity drawn from the model (one column per name)."""
        rng = np.random.default_rng(seed)
        logs = rng.multivariate_normal(np.asarray(self.mean), np.asarray(self.cov), size=int(n), method="cholesky")
        return pd.DataFrame(np.exp(logs), columns=list(self.names))


#: :meth:`LiquidityModel.fit` on the 35 real Chinese books of ``../shared/data``
#: (``cn-equity-l2-dolphindb``: ``tick.zip`` and ``20211201snapshot_30stocks.zip``).
CN_BOOKS = LiquidityModel(
    mean=(2.827489356904297, 2.1231993279282415, 8.495201047580018, 10.4277295790301, -6.300458939183391),
    cov=(
        (1.137364841844087, -0.5206166353307382, -1.551237188511155, -0.15525897656667675, 0.16242029578030354),
        (-0.5206166353307382, 0.48243965056821014, 0.7636726378425859, 0.009092902663885787, 0.03679682014830257),
        (-1.551237188511155, 0.7636726378425859, 2.892047678402734, 1.0269554284860776, -0.058092783410798515),
        (-0.15525897656667675, 0.009092902663885787, 1.0269554284860776, 1.7963557535112762, 0.43312139080437645),
        (0.16242029578030354, 0.03679682014830257, -0.058092783410798515, 0.43312139080437645, 0.32102454538205283),
    ),
    n_books=35,
    source="SZSE tick.zip (5 stocks, 2022-06-01, full day) and the SSE 30-stock panel (2021-12-01, 09:30-10:30)",
)


def synthetic_universe(
    n_symbols: int, *, seed: int = 0, model: LiquidityModel = CN_BOOKS, tick_size: float = 0.01
) -> pd.DataFrame:
    """``n_symbols`` synthetic symbols with the liquidity cross-section of ``model``.

    Parameters
    ----------
    n_symbols : int
    seed : int
        Equal seeds give equal universes.
    model : LiquidityModel
        Default :data:`CN_BOOKS`.
    tick_size : float
        Price grid; the mid is rounded to it and the spread is at least one tick.

    Returns
    -------
    pandas.DataFrame
        One row per symbol (``SYN00000``, ...): the model's columns plus ``tick_size``,
        ``spread_ticks`` (the drawn spread in ticks, >= 1) and ``seed`` (of its days' books).
    """
    if int(n_symbols) < 1 or not tick_size > 0:
        raise InvalidInputError(f"need n_symbols >= 1 and tick_size > 0, got {n_symbols}, {tick_size}")
    table = model.sample(int(n_symbols), seed)
    # A listed stock trades at a few ticks at least (the fit's cheapest book is 1.94).
    table["price"] = np.maximum(np.round(table["price"] / tick_size), 100) * tick_size
    table["tick_size"] = float(tick_size)
    table["spread_ticks"] = np.maximum(table["spread_bps"] * table["price"] / 1e4 / tick_size, 1.0)
    table["seed"] = np.random.default_rng([seed, 1]).integers(0, 2**31, len(table))
    table.insert(0, "symbol", [f"SYN{i:05d}" for i in range(len(table))])
    return table


def _u_shape(tau, open_weight, close_weight, width=0.08):
    return 1 + open_weight * np.exp(-tau / width) + close_weight * np.exp(-(1 - tau) / width)


@dataclass(frozen=True)
class UniverseDay:
    """One day of synthetic books for a batch of symbols, one snapshot per bucket.

    Attributes
    ----------
    symbols : list of str
    index : pandas.DatetimeIndex
        Snapshot times (the start of every one-minute bucket of the sessions).
    bid_px, ask_px, bid_sz, ask_sz : numpy.ndarray, shape (symbols, buckets, levels)
    volume : numpy.ndarray, shape (symbols, buckets)
        Shares traded in the minute before each snapshot.
    tick_size : numpy.ndarray, shape (symbols,)
    sessions : Sessions
    date : str
    """

    symbols: list[str]
    index: pd.DatetimeIndex
    bid_px: np.ndarray
    ask_px: np.ndarray
    bid_sz: np.ndarray
    ask_sz: np.ndarray
    volume: np.ndarray
    tick_size: np.ndarray
    sessions: Sessions
    date: str

    def curves(self, i: int, side: str = "buy") -> tuple[np.ndarray, np.ndarray]:
        """Book-walk curves (E16) of symbol ``i``'s buckets: distances to the mid and sizes.

        Returns
        -------
        slopes, widths : numpy.ndarray, shape (buckets, levels)
            What :meth:`BookExecutor.realized_curves` gives for :meth:`book` ``(i)``.
        """
        mid = (self.bid_px[i, :, :1] + self.ask_px[i, :, :1]) / 2
        if side == "buy":
            return self.ask_px[i] - mid, self.ask_sz[i].copy()
        if side == "sell":
            return mid - self.bid_px[i], self.bid_sz[i].copy()
        raise InvalidInputError(f"side must be 'buy' or 'sell', got {side!r}")

    def book(self, i: int) -> Book:
        """Symbol ``i``'s :class:`Book` (cleaned like any loader's, labelled synthetic)."""
        n_levels = self.ask_px.shape[2]
        cols = level_columns(n_levels)
        frame = pd.DataFrame(
            np.hstack([self.bid_px[i], self.ask_px[i], self.bid_sz[i], self.ask_sz[i]]),
            index=self.index, columns=cols["bid_px"] + cols["ask_px"] + cols["bid_sz"] + cols["ask_sz"],
        )  # fmt: skip
        frame["volume"] = self.volume[i]
        book = clean_book(frame, symbol=self.symbols[i], source="synthetic universe", tick_size=float(self.tick_size[i]),
                          sessions=self.sessions, meta={"synthetic": True, "date": self.date})  # fmt: skip
        book.synthetic = True
        return book


def universe_day(
    universe: pd.DataFrame, date: str = "2024-03-05", *, sessions: Sessions = CN_EQUITY, n_levels: int = 10
) -> UniverseDay:
    """One day of books for every symbol of ``universe`` (rows of :func:`synthetic_universe`).

    Each symbol's day is seeded by its ``seed`` and the date, so a symbol's day is the same
    whichever batch it is generated in.

    Parameters
    ----------
    universe : pandas.DataFrame
        Columns ``symbol, price, tick_size, spread_ticks, level_size, volume_per_minute,
        minute_volatility, seed``.
    date : str
        Local trading date.
    sessions : Sessions
        Trading hours (default the Chinese day the model was fitted on: 237 buckets).
    n_levels : int

    Returns
    -------
    UniverseDay
    """
    needed = ["symbol", "price", "tick_size", "spread_ticks", "level_size", "volume_per_minute", "minute_volatility",
              "seed"]  # fmt: skip
    missing = [c for c in needed if c not in universe.columns]
    if missing:
        raise InvalidInputError(f"universe lacks columns {missing}")
    if int(n_levels) < 1:
        raise InvalidInputError(f"n_levels must be >= 1, got {n_levels}")
    index = _bucket_starts(sessions, date)
    n, s, k = len(index), len(universe), int(n_levels)
    tau = np.arange(n) / n
    day = int(pd.Timestamp(date).toordinal())
    rng = [np.random.default_rng([int(seed), day]) for seed in universe["seed"]]
    tick = universe["tick_size"].to_numpy(float)[:, None]
    price = universe["price"].to_numpy(float)[:, None]
    sigma = universe["minute_volatility"].to_numpy(float)[:, None] * _mean_one(_u_shape(tau, 1.0, 0.4))[None]
    walk = np.stack([r.standard_normal(n) for r in rng])
    mid_ticks = price / tick * np.exp(np.cumsum(sigma * walk, axis=1) - sigma[:, :1] * walk[:, :1])
    noise = np.stack([r.lognormal(0.0, 0.25, n) for r in rng])
    typical = universe["spread_ticks"].to_numpy(float)[:, None]
    spread = np.maximum(1, np.rint(typical * _mean_one(_u_shape(tau, 1.0, 0.3))[None] * noise))
    best_bid = np.floor(mid_ticks - spread / 2)
    best_ask = best_bid + spread
    gaps = np.stack([r.choice([1.0, 2.0, 3.0], p=[0.8, 0.15, 0.05], size=(2, n, k - 1)) for r in rng])
    offsets = np.concatenate([np.zeros((s, 2, n, 1)), np.cumsum(gaps, axis=3)], axis=3)
    bid_px = (best_bid[:, :, None] - offsets[:, 0]) * tick[:, :, None]
    ask_px = (best_ask[:, :, None] + offsets[:, 1]) * tick[:, :, None]
    shape = (0.5 + 0.5 * (1 - np.exp(-tau / 0.25)) + 0.3 * tau**4)[None, :, None] * (1 + 0.15 * np.arange(k))[None, None]
    # ``level_size`` is the median displayed size per level, over the day and the levels.
    level = universe["level_size"].to_numpy(float)[:, None, None] * shape / np.median(shape)
    sizes = np.stack([r.lognormal(0.0, 0.5, (2, n, k)) for r in rng]) * level[:, None]
    sizes = np.maximum(_LOT, np.rint(sizes / _LOT) * _LOT)
    flow = np.stack([r.lognormal(-0.18, 0.6, n) for r in rng])
    volume = universe["volume_per_minute"].to_numpy(float)[:, None] * _mean_one(_u_shape(tau, 1.5, 1.5, 0.05))[None] * flow
    return UniverseDay(
        symbols=[str(x) for x in universe["symbol"]], index=index, bid_px=bid_px, ask_px=ask_px,
        bid_sz=sizes[:, 0], ask_sz=sizes[:, 1], volume=np.rint(volume / _LOT) * _LOT,
        tick_size=tick[:, 0].copy(), sessions=sessions, date=str(pd.Timestamp(date).date()),
    )  # fmt: skip


def _mean_one(profile):
    return profile / profile.mean()


@functools.lru_cache(maxsize=8)
def _bucket_starts(sessions, date, freq="1min"):
    day = pd.Timestamp(date).date()
    starts = [pd.date_range(pd.Timestamp.combine(day, a), pd.Timestamp.combine(day, b), freq=freq, inclusive="left")
              for a, b in sessions.intervals]  # fmt: skip
    return starts[0].append(starts[1:]).tz_localize(sessions.tz)


# ---------------------------------------------------------------- a Parquet dataset of books


def write_book_dataset(books: Iterable[Book], root: str | Path, *, overwrite: bool = False) -> Path:
    """Write books as a hive-partitioned Parquet dataset ``root/symbol=S/day=D/part-0.parquet``.

    Each book is split by local day (its sessions' time zone). A partition that exists is an
    error unless ``overwrite`` (it is then replaced).

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    for book in books:
        tz = book.sessions.tz if book.sessions is not None else book.tz
        local = book.frame.index.tz_convert(tz)
        for day in pd.unique(local.date):
            folder = root / f"symbol={book.symbol}" / f"day={day}"
            target = folder / "part-0.parquet"
            if target.exists() and not overwrite:
                raise InvalidInputError(f"{target} exists; pass overwrite=True to replace it")
            folder.mkdir(parents=True, exist_ok=True)
            frame = book.frame[local.date == day]
            table = pa.Table.from_pandas(frame.rename_axis("ts").reset_index(), preserve_index=False)
            metadata = {b"tick_size": str(book.tick_size).encode(), b"tz": str(tz).encode(),
                        b"sessions": (book.sessions.name if book.sessions is not None else "").encode()}  # fmt: skip
            pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata}), target)
    return root


def dataset_manifest(root: str | Path, size: float | Mapping[str, float] | None = None) -> pd.DataFrame:
    """The keys of a book dataset (:func:`write_book_dataset`): one per ``symbol=/day=`` partition.

    Parameters
    ----------
    root : path-like
    size : float or mapping, optional
        Order size of every key, or per symbol; default: none (pass ``size=`` to the task).

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol, day, dataset, size`` (``dataset`` the absolute root), sorted.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise DataError(f"no such dataset folder: {root}")
    rows = []
    for folder in sorted(root.glob("symbol=*/day=*")):
        if folder.is_dir() and any(folder.glob("*.parquet")):
            symbol, day = folder.parent.name.split("=", 1)[1], folder.name.split("=", 1)[1]
            value = size.get(symbol) if isinstance(size, Mapping) else size
            rows.append({"symbol": symbol, "day": day, "dataset": str(root), "size": np.nan if value is None else float(value)})
    if not rows:
        raise DataError(f"{root} holds no symbol=.../day=... partitions of Parquet files")
    return pd.DataFrame(rows, columns=["symbol", "day", "dataset", "size"])


def read_dataset_book(root: str | Path, symbol: str, day: str | None = None) -> Book:
    """One symbol's book from a dataset (``pyarrow.dataset``, hive partitions), cut to ``day``.

    Raises
    ------
    DataError
        No such folder, or no rows for the symbol (and day).
    """
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from .sessions import as_sessions

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no such dataset folder: {root}")
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    condition = ds.field("symbol") == str(symbol)
    if day:
        condition &= ds.field("day") == str(pd.Timestamp(str(day)).date())
    fragments = list(dataset.get_fragments(filter=condition))
    if not fragments:
        raise DataError(f"no rows for symbol {symbol!r}{f' on {day}' if day else ''} in {root}")
    frame = dataset.to_table(filter=condition).to_pandas()
    metadata = pq.read_schema(fragments[0].path).metadata or {}
    tz = metadata.get(b"tz", b"UTC").decode()
    sessions_name = metadata.get(b"sessions", b"").decode()
    frame = frame.drop(columns=[c for c in ("symbol", "day") if c in frame.columns]).set_index("ts").sort_index()
    frame.index = pd.DatetimeIndex(frame.index).tz_convert(tz) if frame.index.tz is not None else \
        pd.DatetimeIndex(frame.index).tz_localize(tz)  # fmt: skip
    return clean_book(frame, symbol=str(symbol), source=f"dataset {root}", tick_size=float(metadata[b"tick_size"]),
                      sessions=as_sessions(sessions_name) if sessions_name else None)  # fmt: skip
