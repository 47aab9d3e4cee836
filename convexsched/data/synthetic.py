"""A seeded SYNTHETIC order book with a realistic intraday shape (the default on a fresh machine).

Never market data: the symbol is ``"SYNTH"``, ``Book.synthetic`` is True and ``meta["synthetic"]``
too. One US-style day, 09:30-16:00 New York, a snapshot every ``interval`` (3 s: 7,800 rows),
``n_levels`` levels per side. With ``\\tau \\in [0, 1)`` the elapsed fraction of the session:

* volatility clusters: the per-snapshot log-return scale is
  ``\\sigma_t = \\sigma\\, v(\\tau)\\, e^{h_t}`` with ``h`` a stationary Gaussian AR(1) (persistence
  time ``vol_memory``), ``v`` U-shaped (high open, low lunch, higher close);
* the mid is ``m_t = m_0 \\exp(\\sum_{s \\le t} \\sigma_s z_s)``;
* the spread, in whole ticks, is U-shaped in ``\\tau`` and rises with ``\\sigma_t``:
  ``\\max(1, \\mathrm{round}(s_0\\, u(\\tau) \\sqrt{e^{h_t}}\\, \\epsilon_t))``;
* displayed sizes build up through the day (thin book at the open, deepest into the close) and
  grow slowly with the level, in 100-share lots; deeper levels are 1-3 ticks apart;
* traded volume per snapshot is U-shaped and scales with ``\\sigma_t``.

All prices are on the tick grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from .book import Book, clean_book, level_columns
from .sessions import US_EQUITY

_LOT = 100


def _u_shape(tau, open_weight, close_weight, width=0.08):
    return 1 + open_weight * np.exp(-tau / width) + close_weight * np.exp(-(1 - tau) / width)


def synthetic_book(
    seed: int = 0,
    *,
    date: str = "2024-03-05",
    interval: str = "3s",
    n_levels: int = 10,
    start_price: float = 50.0,
    tick_size: float = 0.01,
    daily_vol: float = 0.015,
    spread_ticks: float = 2.0,
    level_size: float = 800.0,
    vol_memory: str = "15min",
    symbol: str = "SYNTH",
) -> Book:
    """Generate a labelled synthetic book for one US trading day.

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``; equal seeds give equal books.
    date : str
        Trading date (New York).
    interval : str
        Snapshot spacing; ``"3s"`` gives 7,800 snapshots.
    n_levels : int
    start_price, tick_size : float
    daily_vol : float
        Standard deviation of the day's log return when ``h = 0`` and ``v = 1``.
    spread_ticks : float
        Midday typical spread in ticks.
    level_size : float
        Typical midday displayed shares per level.
    vol_memory : str
        Persistence time of the volatility clusters.
    symbol : str

    Returns
    -------
    Book
        ``synthetic=True``; ``frame`` has a ``volume`` column.
    """
    if n_levels < 1 or tick_size <= 0 or start_price <= 0 or daily_vol < 0:
        raise InvalidInputError("need n_levels >= 1, tick_size > 0, start_price > 0, daily_vol >= 0")
    rng = np.random.default_rng(seed)
    (start, end), = US_EQUITY.intervals  # fmt: skip
    times = pd.date_range(
        pd.Timestamp(f"{date} {start}", tz=US_EQUITY.tz),
        pd.Timestamp(f"{date} {end}", tz=US_EQUITY.tz),
        freq=interval,
        inclusive="left",
    )
    n = len(times)
    tau = np.arange(n) / n

    phi = np.exp(-pd.Timedelta(interval) / pd.Timedelta(vol_memory))
    shocks = rng.standard_normal(n) * 0.5 * np.sqrt(1 - phi**2)
    # scipy.signal takes about 0.4 s to import: only a synthetic book needs it.
    from scipy.signal import lfilter

    h = lfilter([1.0], [1.0, -phi], shocks)
    sigma = daily_vol / np.sqrt(n) * _u_shape(tau, 1.5, 0.6) * np.exp(h)
    mid_ticks = start_price / tick_size * np.exp(np.cumsum(sigma * rng.standard_normal(n)))

    noise = rng.lognormal(0.0, 0.25, n)
    spread = np.maximum(1, np.rint(spread_ticks * _u_shape(tau, 2.0, 0.5) * np.exp(h / 2) * noise)).astype(np.int64)
    best_bid = np.floor(mid_ticks - spread / 2).astype(np.int64)
    best_ask = best_bid + spread
    gaps = rng.choice([1, 2, 3], p=[0.8, 0.15, 0.05], size=(2, n, n_levels - 1))
    offsets = np.concatenate([np.zeros((2, n, 1), np.int64), np.cumsum(gaps, axis=2)], axis=2)
    bid_px = (best_bid[:, None] - offsets[0]) * tick_size
    ask_px = (best_ask[:, None] + offsets[1]) * tick_size

    depth_shape = 0.35 + 0.65 * (1 - np.exp(-tau / 0.25)) + 0.3 * tau**4
    mean_size = level_size * depth_shape[None, :, None] * (1 + 0.15 * np.arange(n_levels))
    sizes = np.maximum(_LOT, np.rint(mean_size * rng.lognormal(-0.125, 0.5, (2, n, n_levels)) / _LOT) * _LOT)
    volume = _LOT * rng.poisson(2.0 * _u_shape(tau, 2.0, 2.5, width=0.05) * np.exp(h))

    cols = level_columns(n_levels)
    frame = pd.DataFrame(
        np.hstack([bid_px, ask_px, sizes[0], sizes[1]]),
        index=times,
        columns=cols["bid_px"] + cols["ask_px"] + cols["bid_sz"] + cols["ask_sz"],
    )
    frame["volume"] = volume.astype(float)
    book = clean_book(
        frame,
        symbol=symbol,
        source=f"synthetic_book(seed={seed})",
        tick_size=tick_size,
        sessions=US_EQUITY,
        meta={"synthetic": True, "seed": seed, "date": date},
    )
    book.synthetic = True
    return book
