"""Event-level execution: our child orders replayed through the exchange's own order flow.

:class:`ReplayExecutor` implements the executor protocol of :func:`convexsched.backtest` on an
order-level event stream (:func:`convexsched.read_events`). The book is rebuilt event by event
(:mod:`convexsched.execution.matching`: price-time priority, our shares taken from specific resting
orders, the tape continuing under the drop or rematch rule, passive children with their exact
queue position), and each bucket's slice is worked with the executor's tactic
(:mod:`convexsched.execution.tactics`). Decisions are closed loop: the curve a strategy sees at
bucket ``i`` (:meth:`ReplayExecutor.walk_curve`) is the book as our own earlier fills left it, and
it reads no event stamped at or after the bucket's start.

Timing
------
A decision for bucket ``[t_i, t_{i+1})`` sees the events stamped before ``t_i``; a child sent at
offset ``u`` arrives at ``t_i + u + latency`` and meets the book after every event stamped at or
before its arrival. Latency must be shorter than a bucket.

Realized curves
---------------
:meth:`ReplayExecutor.realized_curves` measures what executing ``x`` shares in bucket ``j`` with the
tactic cost, for a grid of sizes, each replayed from the bucket's start on the feed's own book
(without our footprint), all sizes in one pass over the tape (one lane per size). Their slopes
are made nondecreasing (pooled adjacent violators, weighted by the grid's widths), so they are
convex :class:`~convexsched.CostCurves` rows. They serve as the scenario pool, as labels and as
the hindsight reference. The hindsight computed on them is **a reference, not a bound**: once
our footprint persists across buckets, no strategy's cost is the sum of these curves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.events import TRADE, Events
from ..data.sessions import bucket_grid
from ..errors import InvalidInputError
from .matching import CROSS, SWEEP, BookState, FillLog, run_window, top_levels
from .tactics import Market, PassiveFirst, Sliced, Tactic, split

if TYPE_CHECKING:
    from ..data.book import Book
    from ..optimize.curves import CostCurves

_NO_ACTIONS = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((1, 0)), np.zeros(0, np.int64))
GRID_POINTS = 12


class ReplayExecutor:
    """Executes slices by replaying child orders through an order-level event stream.

    Parameters
    ----------
    events : Events
        One instrument's stream (:func:`convexsched.read_events`).
    side : {"buy", "sell"}
    freq : str
        Bucket width over the stream's continuous sessions.
    tactic : Market, Sliced or PassiveFirst, optional
        How a slice is worked inside its bucket (default :class:`Market`).
    latency : float
        Seconds from a decision to its child's arrival (constant, >= 0, shorter than a bucket).
    rematch : bool
        The rule for a later trade against an order we consumed: False (default) the rest of that
        trade does not happen; True it meets the next orders in priority at no worse a price.
    depth : int
        Levels of the visible book in :meth:`walk_curve`.

    Attributes
    ----------
    index : pandas.DatetimeIndex
        The buckets.
    arrival_mid : float
        The feed's mid at the first bucket's start, ``m_0``.
    depth : pandas.Series
        Shares shown on the side we take from, in ``depth`` levels, at each bucket's start.
    hindsight_is_bound : bool
        False: costs depend on the path (module docstring).
    """

    hindsight_is_bound = False

    def __init__(
        self,
        events: Events,
        side: str = "buy",
        freq: str = "1min",
        *,
        tactic: Tactic | None = None,
        latency: float = 0.0,
        rematch: bool = False,
        depth: int = 10,
    ) -> None:
        if not isinstance(events, Events):
            raise InvalidInputError(f"events must be an Events stream (convexsched.read_events), got {type(events).__name__}")
        if side not in ("buy", "sell"):
            raise InvalidInputError(f"side must be 'buy' or 'sell', got {side!r}")
        tactic = Market() if tactic is None else tactic
        if not isinstance(tactic, (Market, Sliced, PassiveFirst)):
            raise InvalidInputError(f"tactic must be Market(), Sliced(n) or PassiveFirst(n, cross_at), got {tactic!r}")
        try:
            latency = float(latency)
        except (TypeError, ValueError):
            raise InvalidInputError(f"latency must be a number of seconds, got {latency!r}") from None
        if not (np.isfinite(latency) and latency >= 0):
            raise InvalidInputError(f"latency must be finite and >= 0 seconds, got {latency}")
        if not (isinstance(depth, (int, np.integer)) and depth >= 1):
            raise InvalidInputError(f"depth must be a number of levels >= 1, got {depth!r}")
        self.events, self.side, self.tactic, self.latency, self.rematch = events, side, tactic, latency, bool(rematch)
        self._depth_levels = int(depth)
        self._sign = 1 if side == "buy" else -1
        #: Share of a slice that sweeps the book as it stands at the decision.
        self.immediate = {Market: 1.0, Sliced: 1.0 / tactic.children, PassiveFirst: 0.0}[type(tactic)]
        self.lot = events.lot if side in events.lot_sides else 1.0
        self._setup_buckets(freq)
        if self._width.min() <= latency:
            raise InvalidInputError(f"latency ({latency:g} s) must be shorter than a bucket ({self._width.min():g} s)")
        self._actions = tactic.plan(float(self._width.min()))
        self._price_min = int(events.price.min()) if len(events) else 0
        self._n_levels = int(events.price.max()) - self._price_min + 2 if len(events) else 2
        self._opening = self._new_state(1)
        self._advance(self._opening, self._starts[0])
        self._scan_day()
        self._realized: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._measured: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._book: Book | None = None
        self.reset()

    # -- set-up -------------------------------------------------------------------------------
    def _setup_buckets(self, freq):
        events = self.events
        if len(events) == 0:
            raise InvalidInputError(f"events of {events.symbol!r} are empty")
        local = events.times.tz_convert(events.sessions.tz)
        clock = local.time
        inside = np.zeros(len(local), bool)
        for a, b in events.sessions.intervals:
            inside |= (clock >= a) & (clock <= b)
        # Trading days are those with events in a session; a stream that is all pre-open (a book
        # and then a quiet session) trades on its own dates.
        days = pd.unique(local[inside].date if inside.any() else local.date)
        try:
            freq = pd.Timedelta(freq)
        except ValueError:
            raise InvalidInputError(f"freq {freq!r} is not a duration like '1min'") from None
        if freq <= pd.Timedelta(0):
            raise InvalidInputError(f"freq must be positive, got {freq}")
        starts, ends, _ = bucket_grid(days, events.sessions, freq)
        self.index = starts
        self._starts = starts.asi8.astype(np.int64)
        self._ends = ends.asi8.astype(np.int64)
        self._width = (self._ends - self._starts) / 1e9

    def _new_state(self, lanes, passive=None):
        return BookState(
            self.events.n_orders, self._n_levels, self._price_min, lanes, self._sign, passive or self.tactic.passive_slots
        )

    def _advance(self, state, t_stop, actions=_NO_ACTIONS, log=None, totals=None):
        """Apply the events before ``t_stop`` (and ``actions``) to ``state``."""
        ev = self.events
        lanes = state.lanes
        if totals is None:
            totals = tuple(np.zeros(lanes) for _ in range(4))
        log_on = log is not None
        if log is None:
            log = FillLog(16)
        times, kinds, qty, child = actions
        out = run_window(
            *state.arrays(),
            ev.time,
            ev.kind,
            ev.order,
            ev.side,
            ev.price,
            ev.qty,
            ev.aggressor,
            self._price_min,
            state.cursor,
            int(t_stop),
            times,
            kinds,
            qty,
            child,
            self._sign,
            self.rematch,
            log_on,
            *log.arrays()[:-1],
            log.count,
            *totals,
        )
        state.cursor = int(out[0])
        log.replace((*out[1:], log.count))
        return totals

    def _scan_day(self):
        """One pass over the tape without us: each bucket's usable flag, mid and depth at its start."""
        state = self._opening.copy()
        n = len(self.index)
        mids, depth, usable = np.full(n, np.nan), np.zeros(n), np.zeros(n, bool)
        level, qty = np.zeros(self._depth_levels, np.int64), np.zeros(self._depth_levels)
        opp = 1 if self._sign > 0 else 0
        for i in range(n):
            self._advance(state, self._starts[i])
            bid, ask = state.best_data
            usable[i] = 0 <= bid < ask < self._n_levels
            if usable[i]:
                mids[i] = 0.5 * (bid + ask) + self._price_min
                step = 1 if opp == 1 else -1
                k = top_levels(state.level_data[opp], state.best_data[opp], step, self._n_levels, self._depth_levels, level, qty)
                depth[i] = qty[:k].sum()
        if not usable.any():
            raise InvalidInputError(f"events of {self.events.symbol!r} never show a two-sided book at a bucket's start")
        self._usable, self._mid_ticks = usable, mids
        self.depth = pd.Series(depth, index=self.index, name="depth")
        self.arrival_mid = float(mids[np.flatnonzero(usable)[0]] * self.events.tick_size)

    # -- lanes for measurements (resilience) ----------------------------------------------------
    def lane_state(self, lanes: int, passive: int = 1) -> BookState:
        """A fresh state at the session's opening book with ``lanes`` footprint-free lanes."""
        state = self._new_state(lanes, passive)
        _share_data(self._opening, state)
        return state

    def advance_state(
        self, state: BookState, t_stop: int, actions: tuple | None = None, log: FillLog | None = None
    ) -> tuple[np.ndarray, ...]:
        """Apply the events before ``t_stop`` (UNIX ns) and ``actions`` (times, kinds, qty per lane, child) to ``state``.

        Returns the per-lane totals ``(filled, cost in ticks, passive filled, unfilled)``.
        """
        if actions is None:
            actions = (_NO_ACTIONS[0], _NO_ACTIONS[1], np.zeros((state.lanes, 0)), _NO_ACTIONS[3])
        return self._advance(state, t_stop, actions, log)

    def bucket_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends of the buckets (UNIX ns)."""
        return self._starts.copy(), self._ends.copy()

    @property
    def bucket_seconds(self) -> float:
        """The buckets' width (the shortest, when a session's last bucket is cut short)."""
        return float(self._width.min())

    # -- the executor protocol ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return (
            f"ReplayExecutor({self.events.symbol!r}, side={self.side!r}, {len(self)} buckets, tactic={self.tactic.name}, "
            f"latency={self.latency:g}s{', rematch' if self.rematch else ''})"
        )

    def reset(self) -> None:
        """Back to the session's opening book, no footprint, an empty fills log."""
        self._state = self._opening.copy()
        self._log = FillLog(1024)
        self._next = 0
        self._last_drift = 0.0

    def usable(self, i: int) -> bool:
        """Whether bucket ``i`` starts with a two-sided book."""
        return bool(self._usable[i])

    def mid(self, i: int) -> float:
        """The feed's mid at bucket ``i``'s start (NaN without a two-sided book)."""
        return float(self._mid_ticks[i] * self.events.tick_size)

    def _goto(self, i):
        if i < self._next:
            raise InvalidInputError(f"the replay is at bucket {self._next}; bucket {i} has passed (call reset() first)")
        self._advance(self._state, self._starts[i])
        self._next = i

    def walk_curve(self, i: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The curve bucket ``i``'s slice meets, from the book as our fills left it at ``t_i``.

        The visible levels of the side we take from, priced against the feed's mid: slopes are
        the distances ``side (p_l - m)`` and widths the shares still showing: the cost of a sweep
        now. Only :attr:`immediate` of a slice meets this book (the first child of ``Sliced(n)``;
        none of ``PassiveFirst``); a planner prices the rest like the recent buckets' realized
        curves (:mod:`convexsched.execution.scenario`). Beyond the shown depth the tail gradient
        of the snapshot executor applies.

        Returns
        -------
        slopes, widths : numpy.ndarray, shape (depth,)
        gamma : float
        """
        n_levels = self._depth_levels
        if not self._usable[i]:
            return np.zeros(n_levels), np.zeros(n_levels), 0.0
        self._goto(i)
        state = self._state
        opp = 1 if self._sign > 0 else 0
        step = 1 if opp == 1 else -1
        level, qty = np.zeros(n_levels, np.int64), np.zeros(n_levels)
        k = top_levels(state.level_eff[0, opp], state.best_eff[0, opp], step, self._n_levels, n_levels, level, qty)
        tick = self.events.tick_size
        mid = 0.5 * (state.best_data[0] + state.best_data[1]) if self._usable[i] else np.nan
        prices = (level[:k] - mid) * self._sign * tick
        slopes = np.full(n_levels, prices[-1] if k else 0.0)
        slopes[:k] = prices
        widths = np.zeros(n_levels)
        widths[:k] = qty[:k]
        return slopes, widths, _tail_gradient(slopes, widths, tick)

    def fill(self, i: int, shares: float) -> tuple[float, float, bool]:
        """Work ``shares`` in bucket ``i`` with the tactic (whole lots where the market has them).

        Returns
        -------
        filled : float
            Shares executed (less than asked when the book ran out or lots rounded down).
        cost : float
            Against the feed's mid at each fill (currency; module :mod:`~convexsched.execution.matching`).
        short : bool
            The book could not supply a sweep.
        """
        self._goto(i)
        shares = float(shares)
        if self.lot > 1:
            shares = np.floor(shares / self.lot + 1e-9) * self.lot
        if shares <= 0 or not self._usable[i]:
            self._last_drift = 0.0
            self._advance(self._state, self._ends[i])
            self._next = i + 1
            return 0.0, 0.0, False
        offsets, kinds, child = self._actions
        children = split(shares, self.tactic.children, self.lot)
        qty = np.where(kinds == CROSS, 0.0, children[np.maximum(child, 0)])[None, :]
        times = self._starts[i] + np.rint((offsets + self.latency) * 1e9).astype(np.int64)
        child_ids = np.where(child >= 0, i * self.tactic.children + child, -1)
        start = len(self._log)
        filled, cost, _, unfilled = self._advance(
            self._state, self._ends[i], (times, kinds.astype(np.int64), qty, child_ids), self._log
        )
        self._next = i + 1
        tick = self.events.tick_size
        count = len(self._log)
        mids = self._log.mid[start:count]
        m0 = self.arrival_mid / tick
        self._last_drift = float(self._sign * (self._log.qty[start:count] * (mids - m0)).sum() * tick)
        return float(filled[0]), float(cost[0] * tick), bool(unfilled[0] > 0)

    def drift(self, i: int, filled: float) -> float:
        """The market's move paid by the last fill: ``side sum q (m_data - m_0)`` (currency)."""
        return self._last_drift

    def settle(self, shares: float) -> float:
        """Charge for shares never sent: swept through the book at the last bucket's end (currency)."""
        last = len(self) - 1
        if self._next <= last:
            self._advance(self._state, self._ends[last])
            self._next = last + 1
        actions = (
            np.array([self._ends[last]], np.int64),
            np.array([SWEEP], np.int64),
            np.array([[float(shares)]]),
            np.array([-1], np.int64),
        )
        start = len(self._log)
        filled, cost, _, unfilled = self._advance(self._state, self._ends[last] + 1, actions, self._log)
        tick = self.events.tick_size
        charge = float(cost[0] * tick)
        if unfilled[0] > 0:
            # No book left to take them: price them at the worst level reached (or the mid's tick).
            worst = self._log.price[start : len(self._log)]
            reference = self._log.mid[start : len(self._log)]
            gap = float((worst.max() - reference.max()) if len(worst) else 1.0)
            charge += float(unfilled[0]) * max(gap, 1.0) * tick
        return charge

    @property
    def fills(self) -> pd.DataFrame:
        """Every fill since :meth:`reset`: ``time`` (tz-aware), ``price``, ``qty``, ``passive``, ``child``, ``mid``."""
        n = len(self._log)
        tick = self.events.tick_size
        times = pd.DatetimeIndex(self._log.time[:n].astype("datetime64[ns]")).tz_localize("UTC")
        return pd.DataFrame(
            {
                "time": times.tz_convert(self.events.sessions.tz),
                "price": self._log.price[:n] * tick,
                "qty": self._log.qty[:n].copy(),
                "passive": self._log.passive[:n].copy(),
                "child": self._log.child[:n].copy(),
                "mid": self._log.mid[:n] * tick,
            }
        )

    # -- realized curves --------------------------------------------------------------------------
    def grid(self) -> np.ndarray:
        """Sizes of the realized curves: geometric from one lot to twice the opening book's visible depth.

        The opening book is known before the first decision; a grid set from the whole day's
        depth would let later buckets' books shape the earlier buckets' curves.
        """
        top = max(2.0 * float(self.depth[self._usable].iloc[0]), 4.0 * self.lot)
        sizes = np.geomspace(self.lot, top, GRID_POINTS)
        if self.lot > 1:
            sizes = np.maximum(np.rint(sizes / self.lot), 1) * self.lot
        return np.unique(sizes)

    def realized_curves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every bucket's realized cost curve for the tactic, replayed without our footprint.

        Returns
        -------
        slopes, widths : numpy.ndarray, shape (N, G)
            Convex rows over the size grid (:meth:`grid`); zero widths where a bucket has no book.
        gamma : numpy.ndarray, shape (N,)
            Tail gradient beyond the grid.
        """
        if self._realized is None:
            self._realized = self._measure_curves()
        return tuple(array.copy() for array in self._realized)  # type: ignore[return-value]

    def _measure_curves(self):
        from ..model.convexify import isotonic_rows

        sizes = self.grid()
        g = len(sizes)
        state = self._opening.copy()
        lanes = BookState(self.events.n_orders, self._n_levels, self._price_min, g, self._sign, self.tactic.passive_slots)
        _share_data(state, lanes)
        offsets, kinds, child = self._actions
        children = np.stack([split(s, self.tactic.children, self.lot) for s in sizes])
        qty = np.where(kinds[None, :] == CROSS, 0.0, children[:, np.maximum(child, 0)])
        n = len(self)
        costs, filled = np.zeros((n, g)), np.zeros((n, g))
        for i in range(n):
            self._advance(lanes, self._starts[i])
            if not self._usable[i]:
                continue
            times = self._starts[i] + np.rint((offsets + self.latency) * 1e9).astype(np.int64)
            totals = self._advance(lanes, self._ends[i], (times, kinds.astype(np.int64), qty, child), None)
            filled[i], costs[i] = totals[0], totals[1] * self.events.tick_size
            lanes.reset_lanes()
        self._measured = (sizes, costs, filled)
        widths = np.diff(np.concatenate([[0.0], sizes]))
        complete = filled >= sizes[None, :] - 1e-6
        # A size the bucket could not fill ends the curve (and every larger size).
        usable_sizes = np.cumprod(complete, axis=1).astype(bool)
        raw = np.diff(np.concatenate([np.zeros((n, 1)), costs], axis=1), axis=1) / widths[None, :]
        # Sizes past a row's end carry no width; set above the row's real slopes they pool with nothing.
        ceiling = np.where(usable_sizes, raw, -np.inf).max(axis=1, keepdims=True)
        raw = np.where(usable_sizes, raw, np.where(np.isfinite(ceiling), ceiling, 0.0))
        slopes = isotonic_rows(raw, widths)
        widths_rows = np.where(usable_sizes, widths[None, :], 0.0)
        widths_rows[~self._usable] = 0.0
        tick = self.events.tick_size
        gamma = np.array([_tail_gradient(s, w, tick) for s, w in zip(slopes, widths_rows)])
        return slopes, widths_rows, gamma

    def impact_table(self) -> pd.DataFrame:
        """The impact table at event level: what each grid size cost with the tactic, per bucket.

        One row per (usable bucket, size of :meth:`grid`): the realized cost ``slippage``
        (currency, against the feed's mid, replayed from the bucket's start without our
        footprint: the labels of :meth:`realized_curves` before convexification) beside the
        book's state at the bucket's start (:func:`convexsched.book_features` of :attr:`book`),
        in the columns of :func:`convexsched.impact_table`, so an
        :class:`convexsched.ImpactOracle` can learn the tactic's cost. Sizes the bucket could
        not fill are left out (``attrs["unfilled_rows"]`` counts them).
        """
        from ..data.features import book_features

        self.realized_curves()
        assert self._measured is not None
        sizes, costs, filled = self._measured
        features = book_features(self.book).iloc[self.rows[self._usable]]
        buckets = np.flatnonzero(self._usable)
        g = len(sizes)
        complete = (filled[buckets] >= sizes[None, :] - 1e-6).ravel()
        table = pd.DataFrame(
            {
                "timestamp": self.index[buckets].repeat(g),
                "size": np.tile(sizes, len(buckets)),
                "slippage": costs[buckets].ravel(),
                "vol_ratio": (sizes[None, :] / features["depth"].to_numpy()[:, None]).ravel(),
                **{
                    name: np.repeat(features[name].to_numpy(), g)
                    for name in ("spread", "depth", "imbalance", "volatility", "hour_of_day", "mid")
                },
            }
        )[complete].reset_index(drop=True)
        table.attrs.update(
            side=self.side,
            slippage_unit="currency",
            symbol=self.events.symbol,
            tactic=self.tactic.name,
            unfilled_rows=int((~complete).sum()),
        )
        return table

    @property
    def book(self) -> Book:
        """The feed's book sampled every 3 s and at every bucket's start (10 levels), for features and models."""
        return self._book if self._book is not None else self._sampled()

    def _sampled(self) -> Book:
        self._book = self._sample_book(3.0)
        return self._book

    @property
    def rows(self) -> np.ndarray:
        """Row of :attr:`book` at each bucket's start (-1 where the bucket has no two-sided book)."""
        if self._book is None:
            self._sampled()
        return self._rows

    def _sample_book(self, every):
        from ..data.book import Book, LoadReport

        step = int(every * 1e9)
        stamps = np.unique(np.concatenate([np.arange(a, b, step) for a, b in zip(self._starts, self._ends)]))
        state = self._opening.copy()
        depth = self._depth_levels
        bid_px, ask_px = np.full((len(stamps), depth), np.nan), np.full((len(stamps), depth), np.nan)
        bid_sz, ask_sz = np.zeros((len(stamps), depth)), np.zeros((len(stamps), depth))
        level, qty = np.zeros(depth, np.int64), np.zeros(depth)
        tick = self.events.tick_size
        for r, stamp in enumerate(stamps):
            self._advance(state, stamp)
            for sd, step_dir, px, sz in ((0, -1, bid_px, bid_sz), (1, 1, ask_px, ask_sz)):
                k = top_levels(state.level_data[sd], state.best_data[sd], step_dir, self._n_levels, depth, level, qty)
                px[r, :k] = (level[:k] + self._price_min) * tick
                sz[r, :k] = qty[:k]
        ev = self.events
        traded = np.where((ev.kind == TRADE) & (ev.aggressor != 0), ev.qty, 0.0).cumsum()
        upto = np.searchsorted(ev.time, stamps, side="left")
        cumulative = np.where(upto > 0, traded[np.maximum(upto - 1, 0)], 0.0)
        two_sided = ~np.isnan(bid_px[:, 0]) & ~np.isnan(ask_px[:, 0]) & (ask_px[:, 0] > bid_px[:, 0])
        columns = {}
        for name, values in (("bid_px", bid_px), ("ask_px", ask_px), ("bid_sz", bid_sz), ("ask_sz", ask_sz)):
            columns.update({f"{name}_{k:02d}": values[:, k] for k in range(depth)})
        columns["volume"] = np.diff(cumulative, prepend=0.0)
        index = pd.DatetimeIndex(stamps.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(ev.sessions.tz)
        frame = pd.DataFrame(columns, index=index)[two_sided]
        report = LoadReport(
            rows_read=len(stamps),
            rows_kept=int(two_sided.sum()),
            dropped={"empty_side": int((~two_sided).sum())},
            source=f"replay of {ev.symbol}",
            symbol=ev.symbol,
        )
        positions = pd.Series(np.arange(len(frame)), index=frame.index.asi8)
        self._rows = positions.reindex(self._starts).fillna(-1).astype(int).to_numpy()
        return Book(
            frame=frame, report=report, symbol=ev.symbol, tick_size=tick, sessions=ev.sessions, meta={"source": "event replay"}
        )

    def realized_cost_curves(self) -> CostCurves:
        """:meth:`realized_curves` as :class:`~convexsched.CostCurves` on the buckets (negative slopes kept)."""
        from ..optimize.curves import CostCurves

        slopes, widths, _ = self.realized_curves()
        return CostCurves(slopes, widths, index=self.index, allow_negative=True)


def _share_data(source: BookState, lanes: BookState) -> None:
    """Give ``lanes`` the data book of ``source`` (its lanes start footprint-free)."""
    for name in (
        "o_level",
        "o_side",
        "o_data",
        "o_seq",
        "o_next",
        "o_prev",
        "o_alive",
        "head",
        "tail",
        "level_data",
        "best_data",
        "last_mid",
    ):
        setattr(lanes, name, getattr(source, name).copy())
    lanes.level_eff[:] = source.level_data[None, :, :]
    lanes.best_eff[:] = source.best_data[None, :]
    lanes.cursor = source.cursor


def _tail_gradient(slopes, widths, tick):
    """Gradient of the linear extrapolation beyond the measured sizes (as the snapshot executor's)."""
    depth = float(widths.sum())
    if depth <= 0:
        return 0.0
    real = widths > 0
    return max(float(slopes[real][-1] - slopes[real][0]), tick) / depth
