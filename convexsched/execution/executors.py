"""Executing a schedule against a real book (or the model) and recording what it cost.

Every executor implements one protocol (:class:`Executor`): the snapshot :class:`BookExecutor`
below, the :class:`ModelExecutor`, and the event replay :class:`convexsched.ReplayExecutor`
(:mod:`convexsched.execution.replay`), where child orders meet the exchange's order flow. Every
record carries the fills log of its executor.

Execution policy of the snapshot executor
-----------------------------------------
Bucket ``i``'s slice ``x_i`` is sent as one marketable order against the **first usable
snapshot** of the bucket (ask side for a buy, bid side for a sell) and walks its displayed
levels, best first (:func:`convexsched.data.slippage.walk_distances`). This is the model the oracle
learned: ``g_t(x)`` is the cost of walking ``x`` through one book (E16), so realized
and predicted costs measure the same thing. It is conservative: the book does not replenish
within the bucket. A slice beyond the displayed depth is priced with the linear extrapolation
of :mod:`convexsched.data.slippage` and flagged (``beyond_depth``).

A snapshot is usable when both sides have a best level, ``ask_00 > bid_00`` and the traded side
shows some size. A bucket with no usable snapshot (a data gap, or only crossed/locked books)
executes nothing: its slice is **rolled forward** to the next bucket and reported in
``rolled`` (each deferred share counted once, in the bucket that could not take it); a slice
that cannot roll past the last bucket is reported as ``unfilled``, never dropped silently, and
it is **charged**: the headline cost includes walking the unfilled shares through the last
usable book of the day (``unfilled_cost``), so a strategy that did not finish cannot look cheap.

Cost
----
The realized cost of a fill of ``q`` shares at snapshot ``t`` is the book-walk cost against that
snapshot's mid, ``g_t(q) = sum_l p_l n_l - q m_t`` for a buy (the temporary impact (E16), the
quantity every objective minimizes), in currency and in basis points of the arrival notional
``S m_0`` (``m_0`` the mid of the first usable snapshot of the day). The drift
``sum_i q_i (m_{t_i} - m_0)`` (sign-adjusted for sells) is reported separately; cost plus drift
is the implementation shortfall against the arrival mid. Drift is the market's move, the same
for every strategy up to timing, and no schedule here forecasts it.

Depletion and resilience (``half_life``)
----------------------------------------
With ``half_life = 0`` (the default) every bucket's snapshot is fresh: what a slice took is back
by the next minute. With ``half_life = h > 0`` seconds, what a slice removes from a price level
comes back exponentially: at a later snapshot ``t'`` the level at that price shows

.. math::

    q'(p) = \\max\\big(q_{t'}(p) - \\textstyle\\sum_{\\text{fills } f \\text{ at } p} n_f\\, 2^{-(t' - t_f)/h},\\; 0\\big),

so a strategy that hits the same thin book minute after minute pays for it. The strategy sees
the depleted book too (it knows its own fills): :meth:`BookExecutor.walk_curve` returns the
curve the next slice will actually walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .._optional import pyplot
from ..data.book import Book
from ..data.sessions import session_buckets
from ..data.slippage import book_side, walk_one
from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..data.sessions import Sessions
    from ..optimize.curves import CostCurves


FILL_COLUMNS = ("time", "price", "qty", "passive")


@runtime_checkable
class Executor(Protocol):
    """What a strategy executes through: the snapshot book, the model, or the event replay.

    A strategy may see, at bucket ``i``, ``walk_curve(i)`` (the curve its slice meets now, our own
    earlier fills included) and ``realized_curves()`` restricted to buckets before ``i``; ``fill``
    is called with nondecreasing ``i`` after ``reset``.
    """

    index: pd.Index
    side: str
    arrival_mid: float
    hindsight_is_bound: bool
    #: Share of a slice that trades against the book as it stands at the decision (1: one sweep).
    immediate: float

    def __len__(self) -> int: ...

    def reset(self) -> None: ...

    def usable(self, i: int) -> bool: ...

    def mid(self, i: int) -> float: ...

    def walk_curve(self, i: int) -> tuple[np.ndarray, np.ndarray, float]: ...

    def realized_curves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def fill(self, i: int, shares: float) -> tuple[float, float, bool]: ...

    def drift(self, i: int, filled: float) -> float: ...

    def settle(self, shares: float) -> float: ...

    @property
    def fills(self) -> pd.DataFrame: ...


_PROTOCOL = (
    "index",
    "side",
    "arrival_mid",
    "hindsight_is_bound",
    "immediate",
    "reset",
    "usable",
    "mid",
    "walk_curve",
    "realized_curves",
    "fill",
    "drift",
    "settle",
    "fills",
)


def as_executor(book: Any, side: str | None = None, freq: str | None = None, half_life: float | None = None) -> Executor:
    """``book`` itself when it is an executor, else a :class:`BookExecutor` over it.

    Options that only build a snapshot executor (``side``, ``freq``, ``half_life``) are an error
    next to an executor, unless they repeat what it already is.
    """
    if isinstance(book, Book):
        return BookExecutor(book, side or "buy", freq or "1min", half_life=0.0 if half_life is None else half_life)
    if not isinstance(book, Executor):
        missing = sorted(name for name in _PROTOCOL if not hasattr(book, name))
        raise InvalidInputError(f"expected a Book or an executor, got {type(book).__name__} (missing {', '.join(missing)})")
    given = {"freq": freq, "half_life": half_life}
    wrong = [name for name, value in given.items() if value is not None]
    if side is not None and side != book.side:
        wrong.append(f"side={side!r} (the executor trades {book.side!r})")
    if wrong:
        raise InvalidInputError(f"{', '.join(wrong)} cannot apply to an executor: set them when building it")
    return book


def _fills_frame(rows: list[tuple], tz: Any) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(FILL_COLUMNS))
    frame["time"] = pd.DatetimeIndex(frame["time"]) if len(frame) else pd.DatetimeIndex([], tz=tz)
    return frame.astype({"price": float, "qty": float, "passive": bool})


class BookExecutor:
    """Fills slices against the first usable snapshot of every bucket of a real book.

    Parameters
    ----------
    book : Book
    side : {"buy", "sell"}
    freq : str
        Bucket width (:func:`convexsched.session_buckets`).
    sessions : Sessions or str, optional
        Overrides ``book.sessions``.
    half_life : float
        Resilience of the levels a slice consumed, in seconds (module docstring); 0: none.

    Attributes
    ----------
    index : pandas.DatetimeIndex
        The buckets (continuous session only).
    rows : numpy.ndarray of int
        Position in ``book.frame`` of each bucket's execution snapshot, -1 when it has none.
    depth : pandas.Series
        Displayed shares on the traded side of that snapshot (0 where there is none).
    arrival_mid : float
        Mid of the first usable snapshot of the day, ``m_0``.
    hindsight_is_bound : bool
        True without resilience: every strategy's cost is then a sum of the realized curves.
    """

    def __init__(
        self, book: Book, side: str = "buy", freq: str = "1min", sessions: Sessions | None = None, half_life: float = 0.0
    ) -> None:
        if side not in ("buy", "sell"):
            raise InvalidInputError(f"side must be 'buy' or 'sell', got {side!r}")
        try:
            half_life = float(half_life)
        except (TypeError, ValueError):
            raise InvalidInputError(f"half_life must be a number of seconds, got {half_life!r}") from None
        if not (np.isfinite(half_life) and half_life >= 0):
            raise InvalidInputError(f"half_life must be finite and >= 0 seconds, got {half_life}")
        self.book, self.side, self.half_life = book, side, half_life
        buckets = session_buckets(book, freq, sessions)
        self._dist, self._qty, self._mid = book_side(book, side)
        sign = 1.0 if side == "buy" else -1.0
        # Level prices recovered from the distances (empty levels repeat the last price).
        self._price = self._mid[:, None] + sign * self._dist
        self._seconds = (book.frame.index.asi8 - book.frame.index.asi8[0]) / 1e9
        bid0 = book.frame["bid_px_00"].to_numpy(float)
        ask0 = book.frame["ask_px_00"].to_numpy(float)
        with np.errstate(invalid="ignore"):
            usable = (ask0 > bid0) & (self._qty.sum(axis=1) > 0) & np.isfinite(self._mid)
        usable &= buckets.labels.notna().to_numpy()
        positions = np.flatnonzero(usable)
        self.index = buckets.index
        # Bucket number of every usable snapshot (labels and buckets are both ns starts); the
        # positions rise, so a bucket's first occurrence is its first usable snapshot.
        bucket = np.searchsorted(self.index.asi8, pd.DatetimeIndex(buckets.labels).asi8[positions])
        taken, first = np.unique(bucket, return_index=True)
        self.rows = np.full(len(self.index), -1, dtype=int)
        self.rows[taken] = positions[first]
        if (self.rows < 0).all():
            raise InvalidInputError(f"book {book.symbol!r} has no usable snapshot in its continuous sessions")
        depth = np.where(self.rows >= 0, self._qty[np.maximum(self.rows, 0)].sum(axis=1), 0.0)
        self.depth = pd.Series(depth, index=self.index, name="depth")
        self.arrival_mid = float(self._mid[self.rows[self.rows >= 0][0]])
        self.hindsight_is_bound = half_life == 0
        self.immediate = 1.0
        self.reset()

    def reset(self) -> None:
        """Forget every fill: the book is as recorded (start of a new execution)."""
        self._taken: dict[int, tuple[float, float]] = {}
        self._fills: list[tuple] = []

    @property
    def fills(self) -> pd.DataFrame:
        """Every fill since :meth:`reset`: one row per level walked (the tail beyond depth as one row)."""
        return _fills_frame(self._fills, self.book.frame.index.tz)

    def drift(self, i: int, filled: float) -> float:
        """The market's move paid by ``filled`` shares of bucket ``i``: ``side q (m_i - m_0)``."""
        sign = 1.0 if self.side == "buy" else -1.0
        return sign * filled * (self.mid(i) - self.arrival_mid) if filled > 0 else 0.0

    def settle(self, shares: float) -> float:
        """Charge for shares never sent: their walk through the last usable book of the day."""
        last = max(i for i in range(len(self)) if self.usable(i))
        return self.fill(last, shares)[1]

    def __len__(self):
        return len(self.index)

    def usable(self, i: int) -> bool:
        """Whether bucket ``i`` has a snapshot to trade against."""
        return self.rows[i] >= 0

    def mid(self, i: int) -> float:
        """Mid of bucket ``i``'s execution snapshot (NaN when it has none)."""
        return float(self._mid[self.rows[i]]) if self.rows[i] >= 0 else float("nan")

    def _available(self, r):
        """Quantities of snapshot ``r`` net of what earlier fills still hold (resilience)."""
        qty = self._qty[r]
        if not self._taken:
            return qty
        now = self._seconds[r]
        keys = self._keys(r)
        held = np.array([self._held(key, now) for key in keys])
        return np.maximum(qty - held, 0.0)

    def _keys(self, r):
        return np.rint(self._price[r] / self.book.tick_size).astype(np.int64).tolist()

    def _held(self, key, now):
        amount, since = self._taken.get(key, (0.0, now))
        return amount * 2.0 ** (-(now - since) / self.half_life)

    def walk_curve(self, i: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The cost curve bucket ``i``'s slice walks now: the exact book walk of its snapshot.

        ``g_i(x) = sum_l d_l n_l(x)`` on the displayed (and, with resilience, depleted) levels:
        slopes are the level distances to mid ``d_l`` and widths the quantities; beyond the
        displayed depth ``D`` the executor's linear extrapolation adds ``gamma (x - D)^2 / 2``
        at the last slope (:mod:`convexsched.data.slippage`).

        Returns
        -------
        slopes, widths : numpy.ndarray, shape (L,)
        gamma : float
            The tail gradient (0 when the bucket has no usable snapshot: nothing can trade).
        """
        if self.rows[i] < 0:
            return np.zeros(self._dist.shape[1]), np.zeros(self._dist.shape[1]), 0.0
        r = self.rows[i]
        qty = self._available(r)
        return self._dist[r].copy(), qty, _tail_gradient(self._dist[r], qty, self.book.tick_size)

    def realized_curves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every bucket's fresh (undepleted) book-walk curve: what the day offered.

        Returns
        -------
        slopes, widths : numpy.ndarray, shape (N, L)
            Zero widths where a bucket has no usable snapshot.
        gamma : numpy.ndarray, shape (N,)
        """
        usable = self.rows >= 0
        rows = np.maximum(self.rows, 0)
        slopes, widths = self._dist[rows].copy(), np.where(usable[:, None], self._qty[rows], 0.0)
        depth = widths.sum(axis=1)
        # _tail_gradient for every bucket at once.
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma = np.where(depth > 0, np.maximum(slopes[:, -1] - slopes[:, 0], self.book.tick_size) / depth, 0.0)
        return slopes, widths, gamma

    def fill(self, i: int, shares: float) -> tuple[float, float, bool]:
        """Walk ``shares`` through bucket ``i``'s snapshot.

        Returns
        -------
        filled : float
            ``shares``, or 0 when the bucket has no usable snapshot.
        cost : float
            Book-walk cost against the snapshot's mid (currency).
        beyond : bool
            The slice exceeded the displayed depth (its tail is extrapolated).
        """
        shares = float(shares)
        if shares <= 0 or self.rows[i] < 0:
            return 0.0, 0.0, False
        r = self.rows[i]
        qty = self._available(r)
        if qty.sum() <= 0:
            # Every displayed level is still depleted by earlier fills: nothing to walk.
            return 0.0, 0.0, False
        cost, beyond = walk_one(self._dist[r], qty, shares, self.book.tick_size)
        self._log_walk(r, qty, shares, cost)
        if self.half_life > 0:
            self._deplete(r, qty, shares)
        return shares, cost, beyond

    def _log_walk(self, r, qty, shares, cost):
        """One fill per level walked; what lies beyond the shown depth as one fill at its average price."""
        sign = 1.0 if self.side == "buy" else -1.0
        taken = np.diff(np.minimum(np.cumsum(qty), shares), prepend=0.0)
        stamp = self.book.frame.index[r]
        inside = 0.0
        for price, amount, distance in zip(self._price[r], taken, self._dist[r]):
            if amount > 0:
                self._fills.append((stamp, float(price), float(amount), False))
                inside += amount * distance
        rest = shares - float(taken.sum())
        if rest > 0:
            self._fills.append((stamp, float(self._mid[r] + sign * (cost - inside) / rest), rest, False))

    def _deplete(self, r, qty, shares):
        now = self._seconds[r]
        taken = np.diff(np.minimum(np.cumsum(qty), shares), prepend=0.0)
        for key, amount in zip(self._keys(r), taken):
            if amount > 0:
                self._taken[key] = (self._held(key, now) + amount, now)


def _tail_gradient(dist, qty, tick):
    """Gradient of the linear extrapolation beyond the displayed depth (``walk_distances``)."""
    depth = float(qty.sum())
    if depth <= 0:
        return 0.0
    return max(float(dist[-1] - dist[0]), tick) / depth


class ModelExecutor:
    """Fills every slice in full at the model's own cost: a backtest inside the model.

    Used to study a planner without a book (benchmarks, tests): bucket ``i`` costs
    ``g_i(x)``; beyond the capacity the last slope continues, and the slice is flagged.

    Parameters
    ----------
    curves : CostCurves
        The true cost of every bucket; needs an index (the buckets' labels) or gets a RangeIndex.
    side : {"buy", "sell"}
    arrival_mid : float
        Price used for the bps figures.
    """

    hindsight_is_bound = True
    immediate = 1.0

    def __init__(self, curves: CostCurves, side: str = "buy", arrival_mid: float = 1.0) -> None:
        self.curves, self.side, self.arrival_mid = curves, side, float(arrival_mid)
        self.index = curves.index if curves.index is not None else pd.RangeIndex(curves.n_buckets)
        self.depth = pd.Series(curves.capacity, index=self.index, name="depth")
        self.reset()

    def __len__(self):
        return self.curves.n_buckets

    def reset(self) -> None:
        """Forget the fills log (the model's curves do not deplete)."""
        self._fills: list[tuple] = []

    @property
    def fills(self) -> pd.DataFrame:
        """One fill per executed bucket at its average price ``m_0 + side g_i(x) / x`` (time: the bucket label)."""
        return _fills_frame(self._fills, getattr(self.index, "tz", None))

    def walk_curve(self, i: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Bucket ``i``'s model curve (slopes, widths, no tail)."""
        return self.curves.slopes[i].copy(), self.curves.widths[i].copy(), 0.0

    def realized_curves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's curves: what the day offers in the model."""
        return self.curves.slopes.copy(), self.curves.widths.copy(), np.zeros(self.curves.n_buckets)

    def drift(self, i: int, filled: float) -> float:
        """No drift in the model: every bucket's mid is ``m_0``."""
        return 0.0

    def settle(self, shares: float) -> float:
        """Charge for shares never sent: the last bucket's curve and its last slope beyond."""
        return self.fill(self.curves.n_buckets - 1, shares)[1]

    def usable(self, i: int) -> bool:
        return True

    def mid(self, i: int) -> float:
        return self.arrival_mid

    def fill(self, i: int, shares: float) -> tuple[float, float, bool]:
        shares = float(shares)
        if shares <= 0:
            return 0.0, 0.0, False
        capacity = self.curves.capacity[i]
        inside = min(shares, capacity)
        fills = np.clip(inside - self.curves.breakpoints[i, :-1], 0.0, self.curves.widths[i])
        cost = float(self.curves.slopes[i] @ fills) + max(shares - capacity, 0.0) * self.curves.slopes[i, -1]
        sign = 1.0 if self.side == "buy" else -1.0
        self._fills.append((self.index[i], self.arrival_mid + sign * cost / shares, shares, False))
        return shares, cost, shares > capacity * (1 + 1e-9)


@dataclass
class ExecutionRecord:
    """What a strategy executed, bucket by bucket, and what it cost.

    Attributes
    ----------
    name : str
    total : float
        The parent order ``S``.
    x : pandas.Series
        Shares executed per bucket; sums to ``total - unfilled``.
    costs : pandas.Series
        Realized cost per bucket (currency).
    predicted : pandas.Series
        The model's predicted cost of each executed slice (NaN where there is no model or the
        slice lies outside the model's curve).
    rolled : pandas.Series
        Shares that bucket ``i`` could not execute (no usable book) and passed on.
    beyond_depth : pandas.Series of bool
        Slices larger than the displayed depth.
    drift : pandas.Series
        ``q_i (m_i - m_0)`` (sign-adjusted): the market move paid on each slice.
    arrival_mid : float
    unfilled : float
        Shares left when the last bucket could not execute.
    unfilled_cost : float
        The charge for them: their walk through the last usable book of the day (currency).
    plans : list of pandas.Series
        Every plan made (one for a static strategy, one per step for a receding horizon).
    steps : pandas.DataFrame or None
        Receding horizon: per step the inventory before it, the water level ``lambda``, the KKT
        verdict and residual, the solve time and flags.
    fills : pandas.DataFrame
        Every child fill: ``time`` (tz-aware), ``price``, ``qty`` (> 0), ``passive`` (bool), and
        whatever else the executor logs; the unfilled shares' charge included.
    """

    name: str
    total: float
    x: pd.Series
    costs: pd.Series
    predicted: pd.Series
    rolled: pd.Series
    beyond_depth: pd.Series
    drift: pd.Series
    arrival_mid: float
    unfilled: float = 0.0
    unfilled_cost: float = 0.0
    plans: list[pd.Series] = field(default_factory=list)
    steps: pd.DataFrame | None = None
    fills: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FILL_COLUMNS)))
    side: str = "buy"

    @property
    def shortfall(self) -> float:
        """Implementation shortfall from the fills: ``side sum_f q_f (p_f - m_0)`` (currency)."""
        sign = 1.0 if self.side == "buy" else -1.0
        return float(sign * (self.fills["qty"] * (self.fills["price"] - self.arrival_mid)).sum())

    @property
    def cost(self) -> float:
        """Total realized cost (currency), with the charge for unfilled shares."""
        return float(self.costs.sum()) + self.unfilled_cost

    @property
    def cost_bps(self) -> float:
        """Total realized cost in basis points of the arrival notional ``S m_0``."""
        return 1e4 * self.cost / (self.total * self.arrival_mid)

    @property
    def predicted_cost(self) -> float:
        """The model's cost of what was executed (NaN if any slice has no prediction)."""
        return float(self.predicted.sum(skipna=False))

    @property
    def remaining(self) -> pd.Series:
        """Inventory after each bucket, ``R_i = S - sum_{k<=i} x_k``."""
        return (self.total - self.x.cumsum()).rename("remaining")

    def summary(self) -> dict[str, object]:
        """One row of the backtest table."""
        notional = self.total * self.arrival_mid
        return {
            "strategy": self.name,
            "cost": self.cost,
            "cost_bps": self.cost_bps,
            "predicted": self.predicted_cost,
            "predicted_bps": 1e4 * self.predicted_cost / notional,
            "drift_bps": 1e4 * float(self.drift.sum()) / notional,
            "shortfall_bps": 1e4 * self.shortfall / notional,
            "passive_share": float(self.fills.loc[self.fills["passive"].astype(bool), "qty"].sum() / self.fills["qty"].sum())
            if len(self.fills)
            else 0.0,
            "fills": len(self.fills),
            "max_slice": float(self.x.max()),
            "beyond_depth": int(self.beyond_depth.sum()),
            "rolled": float(self.rolled.sum()),
            "unfilled": self.unfilled,
            "unfilled_cost_bps": 1e4 * self.unfilled_cost / notional,
            "complete": self.unfilled == 0,
        }

    def plot(self, axes: Any = None) -> Any:
        """Schedule, inventory and (receding horizon) water level over the day."""
        plt = pyplot()

        if axes is None:
            _, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
        positions = np.arange(len(self.x))
        axes[0].bar(positions, self.x.to_numpy(), width=1.0, alpha=0.7)
        axes[0].set_ylabel("shares")
        axes[0].set_title(f"{self.name}: {self.cost_bps:.2f} bps realized")
        axes[1].plot(positions, self.remaining.to_numpy())
        axes[1].set_ylabel("inventory")
        if self.steps is not None:
            axes[2].plot(positions[: len(self.steps)], self.steps["lambda"].to_numpy())
        axes[2].set_ylabel("lambda")
        axes[2].set_xlabel("bucket")
        return axes


def execute_schedule(executor: Executor, schedule: ArrayLike, name: str, curves: CostCurves | None = None) -> ExecutionRecord:
    """Execute a fixed schedule bucket by bucket, rolling slices of unusable buckets forward.

    Parameters
    ----------
    executor : Executor
        A :class:`BookExecutor`, :class:`ModelExecutor` or :class:`convexsched.ReplayExecutor`.
    schedule : array_like or pandas.Series, length N
        Shares per bucket; must sum to the order size.
    name : str
    curves : CostCurves, optional
        The model the schedule was planned on; its ``g_i(x_i)`` is the predicted cost.

    Returns
    -------
    ExecutionRecord
    """
    target = np.asarray(schedule, dtype=float)
    n = len(executor)
    if target.shape != (n,):
        raise InvalidInputError(f"the schedule has {target.size} buckets, the book has {n}")
    if (target < 0).any() or not np.isfinite(target).all():
        raise InvalidInputError("a schedule must be finite and >= 0")
    trace = Trace(executor)
    carry = 0.0
    for i in range(n):
        filled = trace.fill(i, target[i] + carry)
        carry = target[i] + carry - filled
        # Count a deferred share once: in the bucket whose own slice it was.
        trace.rolled[i] = target[i] - min(filled, target[i])
    trace.unfilled = carry
    if curves is not None:
        inside = trace.x <= curves.capacity * (1 + 1e-9)
        trace.predicted = np.where(inside, curves.evaluate(np.minimum(trace.x, curves.capacity)), np.nan)
    index = executor.index
    plans = [pd.Series(target, index=index, name=name)]
    return trace.record(name, float(target.sum()), plans)


class Trace:
    """Per-bucket accumulators shared by static and receding execution (package-internal)."""

    def __init__(self, executor):
        n = len(executor)
        self.executor = executor
        executor.reset()
        self.x, self.costs, self.drift = np.zeros(n), np.zeros(n), np.zeros(n)
        self.predicted, self.rolled = np.full(n, np.nan), np.zeros(n)
        self.beyond = np.zeros(n, bool)
        self.unfilled = 0.0

    def fill(self, i, shares):
        executor = self.executor
        filled, cost, beyond = executor.fill(i, shares)
        self.x[i], self.costs[i], self.beyond[i] = filled, cost, beyond
        self.rolled[i] = max(shares - filled, 0.0)
        self.drift[i] = executor.drift(i, filled)
        return filled

    def finish(self, name, total, plans, steps):
        """The record of a policy that decided bucket by bucket: unfilled is what it never sent."""
        self.unfilled = total - float(self.x.sum())
        if abs(self.unfilled) <= 1e-9 * total:
            self.unfilled = 0.0
        return self.record(name, total, plans, steps)

    def record(self, name, total, plans, steps=None):
        index = self.executor.index
        charge = self.executor.settle(self.unfilled) if self.unfilled > 0 else 0.0
        return ExecutionRecord(
            name=name,
            total=total,
            x=pd.Series(self.x, index=index, name="x"),
            costs=pd.Series(self.costs, index=index, name="cost"),
            predicted=pd.Series(self.predicted, index=index, name="predicted"),
            rolled=pd.Series(self.rolled, index=index, name="rolled"),
            beyond_depth=pd.Series(self.beyond, index=index, name="beyond_depth"),
            drift=pd.Series(self.drift, index=index, name="drift"),
            arrival_mid=self.executor.arrival_mid,
            unfilled=self.unfilled,
            unfilled_cost=charge,
            plans=plans,
            steps=steps,
            fills=self.executor.fills,
            side=self.executor.side,
        )


def progress_bar(iterable, enabled, description):
    """``iterable`` wrapped in a tqdm bar when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, leave=False)
