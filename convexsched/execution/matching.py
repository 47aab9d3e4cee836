"""The compiled matching engine of the event replay: an order-level book with our footprint on it.

The data book
-------------
Every event of an :class:`convexsched.data.events.Events` stream is applied in exchange order to
an order-level book: price levels on a tick grid, each a FIFO queue of resting orders (price-time
priority). ``D[o]`` is what order ``o`` still shows according to the feed.

Our footprint (``lanes``)
-------------------------
Our aggressive child orders take shares from specific resting orders, best price first, then
first in queue. ``T[g, o]`` counts the shares lane ``g`` took from order ``o`` (a lane is one
independent copy of our trading over the same tape: one strategy run, or one size of a realized
cost curve). The tape continues: the feed's later events still happen, and

* **drop rule (default):** a later trade or cancel of an order we consumed gets only what is
  left, so the order shows ``max(D[o] - T[g, o], 0)`` (the rest of that trade does not happen);
* **rematch rule:** the part of such a trade that our consumption displaced trades instead with
  the next resting orders in priority on the same side, never beyond the trade's own price
  (the tape does not reveal the aggressor's limit).

By induction over the events, under the drop rule the order's visible size is exactly
``max(D - T, 0)`` (E22): a cancel or trade of ``q`` lowers both, clipped at zero. The lanes' level
totals and best prices are kept beside the feed's, so our footprint never creates a share: it
only removes shares the feed showed.

Passive child orders
--------------------
A passive child rests at a price on our side with the queue position of its arrival (behind
every order then resting at that price, by sequence number). It fills ``min(left, q)`` when

* the tape trades ``q`` against an order *behind* it at its price (that aggressor would have met
  our order first),
* the tape trades ``q`` at a price worse than ours on our side (a trade through our price), or
* an order of ``q`` shares comes to rest on the other side at a price that crosses ours.

What this ignores (optimistic, as queue models are): our passive fills do not take the volume
from the orders behind us (the tape keeps them), and nobody reacts to our orders.

Costs
-----
Every fill is charged against the **feed's** mid at that instant (E21) (the book without our
footprint): ``cost = side * qty * (price - mid_data)``. What our footprint does to later prices
therefore stays in the cost (it is not the market's drift), while ``drift = side * qty *
(mid_data - m_0)`` is the market's own move, the same for every strategy up to timing.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit
from ..data.events import ADD, CANCEL, CLEAR, MODIFY, PRINT, TRADE

SWEEP, POST, CROSS = 0, 1, 2
_EPS = 1e-9


class BookState:
    """The arrays of the data book and of ``lanes`` footprints over it (module docstring).

    Parameters
    ----------
    n_orders : int
    n_levels : int
        Size of the price grid (ticks from ``price_min``).
    price_min : int
        Lowest price of the stream, in ticks.
    lanes : int
        Independent footprints.
    our_side : {+1, -1}
        +1: we buy (take asks, rest on the bid).
    max_passive : int
        Passive child orders a lane may hold at once.
    """

    def __init__(self, n_orders: int, n_levels: int, price_min: int, lanes: int, our_side: int, max_passive: int) -> None:
        self.n_orders, self.n_levels, self.price_min, self.lanes = n_orders, n_levels, price_min, lanes
        self.our_side = our_side
        self.o_level = np.zeros(n_orders, np.int64)
        self.o_side = np.zeros(n_orders, np.int64)
        self.o_data = np.zeros(n_orders)
        self.o_seq = np.zeros(n_orders, np.int64)
        self.o_next = np.full(n_orders, -1, np.int64)
        self.o_prev = np.full(n_orders, -1, np.int64)
        self.o_alive = np.zeros(n_orders, np.bool_)
        self.head = np.full((2, n_levels), -1, np.int64)
        self.tail = np.full((2, n_levels), -1, np.int64)
        self.level_data = np.zeros((2, n_levels))
        self.best_data = np.array([-1, n_levels], np.int64)
        self.taken = np.zeros((lanes, n_orders))
        self.level_eff = np.zeros((lanes, 2, n_levels))
        self.best_eff = np.tile(np.array([-1, n_levels], np.int64), (lanes, 1))
        self.p_level = np.zeros((lanes, max_passive), np.int64)
        self.p_left = np.zeros((lanes, max_passive))
        self.p_seq = np.zeros((lanes, max_passive), np.int64)
        self.touched = np.zeros(max(16, n_orders), np.int64)
        self.n_touched = np.zeros(1, np.int64)
        self.last_mid = np.full(1, np.nan)
        self.cursor = 0  # next event to apply

    def copy(self) -> BookState:
        """An independent copy (the data book and every lane)."""
        other = object.__new__(BookState)
        for name, value in vars(self).items():
            setattr(other, name, value.copy() if isinstance(value, np.ndarray) else value)
        return other

    def reset_lanes(self) -> None:
        """Forget every lane's footprint and resting children (:func:`reset_lanes`)."""
        reset_lanes(self.o_level, self.o_side, self.taken, self.level_data, self.level_eff, self.best_data,
                    self.best_eff, self.p_left, self.touched, self.n_touched)  # fmt: skip

    def arrays(self) -> tuple:
        """The arrays in the kernels' argument order."""
        return (
            self.o_level,
            self.o_side,
            self.o_data,
            self.o_seq,
            self.o_next,
            self.o_prev,
            self.o_alive,
            self.head,
            self.tail,
            self.level_data,
            self.best_data,
            self.taken,
            self.level_eff,
            self.best_eff,
            self.p_level,
            self.p_left,
            self.p_seq,
            self.touched,
            self.n_touched,
            self.last_mid,
        )


class FillLog:
    """Growable fill buffers the kernel appends to (lane, time, price in ticks, qty, passive, data mid)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.lane = np.zeros(capacity, np.int64)
        self.time = np.zeros(capacity, np.int64)
        self.price = np.zeros(capacity, np.int64)
        self.qty = np.zeros(capacity)
        self.passive = np.zeros(capacity, np.bool_)
        self.mid = np.zeros(capacity)
        self.child = np.zeros(capacity, np.int64)
        self.count = np.zeros(1, np.int64)

    def arrays(self) -> tuple:
        return self.lane, self.time, self.price, self.qty, self.passive, self.mid, self.child, self.count

    def replace(self, arrays: tuple) -> None:
        self.lane, self.time, self.price, self.qty, self.passive, self.mid, self.child, self.count = arrays

    def clear(self) -> None:
        self.count[0] = 0

    def __len__(self) -> int:
        return int(self.count[0])


@njit
def _side_index(side):
    return 0 if side > 0 else 1


@njit
def _next_level(row, start, step, n_levels):
    """First level from ``start`` in direction ``step`` with size > 0 (-1 or n_levels if none)."""
    level = start
    while 0 <= level < n_levels:
        if row[level] > _EPS:
            return level
        level += step
    return -1 if step < 0 else n_levels


@njit
def _better(sd, a, b):
    """Level ``a`` is a better price than ``b`` on side index ``sd`` (bids higher, asks lower)."""
    return a > b if sd == 0 else a < b


@njit
def _refresh_best(best, row, sd, level, n_levels):
    """Keep ``best[sd]`` right after ``row[level]`` changed."""
    if row[level] > _EPS:
        if best[sd] < 0 or best[sd] >= n_levels or _better(sd, level, best[sd]):
            best[sd] = level
    elif level == best[sd]:
        best[sd] = _next_level(row, level, -1 if sd == 0 else 1, n_levels)


@njit
def _mid(best_data, n_levels, last_mid):
    """The feed's mid in grid levels (add ``price_min`` for ticks); the last one while a side is empty."""
    if best_data[0] >= 0 and best_data[1] < n_levels:
        last_mid[0] = 0.5 * (best_data[0] + best_data[1])
    return last_mid[0]


@njit
def _unlink(o, sd, o_level, o_next, o_prev, head, tail, o_alive):
    level = o_level[o]
    if o_prev[o] >= 0:
        o_next[o_prev[o]] = o_next[o]
    else:
        head[sd, level] = o_next[o]
    if o_next[o] >= 0:
        o_prev[o_next[o]] = o_prev[o]
    else:
        tail[sd, level] = o_prev[o]
    o_next[o] = -1
    o_prev[o] = -1
    o_alive[o] = False


@njit
def _link(o, sd, level, o_level, o_next, o_prev, head, tail, o_alive):
    o_level[o] = level
    o_prev[o] = tail[sd, level]
    o_next[o] = -1
    if tail[sd, level] >= 0:
        o_next[tail[sd, level]] = o
    else:
        head[sd, level] = o
    tail[sd, level] = o
    o_alive[o] = True


@njit
def _set_data(o, new, sd, o_data, o_level, taken, level_data, level_eff, best_data, best_eff, n_levels):
    """Order ``o``'s feed size becomes ``new``: level totals and best prices follow, per lane."""
    level = o_level[o]
    old = o_data[o]
    o_data[o] = new
    level_data[sd, level] += new - old
    _refresh_best(best_data, level_data[sd], sd, level, n_levels)
    for g in range(taken.shape[0]):
        t = taken[g, o]
        change = max(new - t, 0.0) - max(old - t, 0.0)
        if change != 0.0:
            level_eff[g, sd, level] += change
            _refresh_best(best_eff[g], level_eff[g, sd], sd, level, n_levels)


@njit
def _take(g, o, amount, sd, o_level, taken, level_eff, best_eff, n_levels, touched, n_touched):
    """Lane ``g`` removes ``amount`` visible shares of order ``o``."""
    if taken[g, o] == 0.0 and n_touched[0] < touched.shape[0]:
        touched[n_touched[0]] = o
        n_touched[0] += 1
    taken[g, o] += amount
    level = o_level[o]
    level_eff[g, sd, level] -= amount
    if level_eff[g, sd, level] < _EPS:
        level_eff[g, sd, level] = 0.0
    _refresh_best(best_eff[g], level_eff[g, sd], sd, level, n_levels)


@njit
def _consume(
    g,
    sd,
    amount,
    limit,
    o_level,
    o_data,
    o_next,
    head,
    taken,
    level_eff,
    best_eff,
    n_levels,
    touched,
    n_touched,
    log_level,
    log_qty,
):
    """Lane ``g`` takes up to ``amount`` from side ``sd``, best price first, FIFO, not beyond ``limit``.

    Returns the shares taken; per level touched, ``log_level``/``log_qty`` get one row (their
    count is the second return value).
    """
    left = amount
    rows = 0
    step = -1 if sd == 0 else 1
    while left > _EPS:
        level = best_eff[g, sd]
        if level < 0 or level >= n_levels:
            break
        if limit >= 0 and _better(sd, limit, level):
            break
        got = 0.0
        o = head[sd, level]
        while o >= 0:
            visible = o_data[o] - taken[g, o]
            if visible > _EPS:
                part = min(visible, left)
                _take(g, o, part, sd, o_level, taken, level_eff, best_eff, n_levels, touched, n_touched)
                left -= part
                got += part
                if left <= _EPS:
                    break
            o = o_next[o]
        if got > 0.0 and rows < log_level.shape[0]:
            log_level[rows] = level
            log_qty[rows] = got
            rows += 1
        if o < 0 and best_eff[g, sd] == level:
            # Every order of the level was walked: what the total still shows is rounding.
            level_eff[g, sd, level] = 0.0
            best_eff[g, sd] = _next_level(level_eff[g, sd], level + step, step, n_levels)
    return amount - left, rows


@njit
def _log(lg, lt, lp, lq, lpas, lmid, lchild, count, lane, time, price, qty, passive, mid, child):
    """Append one fill; returns the (possibly grown) buffers."""
    n = count[0]
    if n >= lg.shape[0]:
        size = 2 * lg.shape[0] + 16
        lg2 = np.zeros(size, np.int64)
        lt2 = np.zeros(size, np.int64)
        lp2 = np.zeros(size, np.int64)
        lq2 = np.zeros(size)
        lpas2 = np.zeros(size, np.bool_)
        lmid2 = np.zeros(size)
        lchild2 = np.zeros(size, np.int64)
        lg2[:n] = lg[:n]
        lt2[:n] = lt[:n]
        lp2[:n] = lp[:n]
        lq2[:n] = lq[:n]
        lpas2[:n] = lpas[:n]
        lmid2[:n] = lmid[:n]
        lchild2[:n] = lchild[:n]
        lg, lt, lp, lq, lpas, lmid, lchild = lg2, lt2, lp2, lq2, lpas2, lmid2, lchild2
    lg[n] = lane
    lt[n] = time
    lp[n] = price
    lq[n] = qty
    lpas[n] = passive
    lmid[n] = mid
    lchild[n] = child
    count[0] = n + 1
    return lg, lt, lp, lq, lpas, lmid, lchild


@njit
def _passive_fill(
    g,
    j,
    supply,
    p_left,
    p_level,
    price_min,
    our_side,
    mid,
    now,
    filled,
    passive_filled,
    cost,
    log_on,
    lg,
    lt,
    lp,
    lq,
    lpas,
    lmid,
    lchild,
    count,
):
    """Lane ``g``'s resting child ``j`` fills from ``supply`` shares at its own price; returns the part and the log."""
    part = min(p_left[g, j], supply)
    p_left[g, j] -= part
    px = p_level[g, j] + price_min
    filled[g] += part
    passive_filled[g] += part
    cost[g] += our_side * part * (px - mid)
    if log_on:
        lg, lt, lp, lq, lpas, lmid, lchild = _log(lg, lt, lp, lq, lpas, lmid, lchild, count, g, now, px, part, True, mid, -1)
    return part, lg, lt, lp, lq, lpas, lmid, lchild


@njit
def run_window(
    o_level,
    o_side,
    o_data,
    o_seq,
    o_next,
    o_prev,
    o_alive,
    head,
    tail,
    level_data,
    best_data,
    taken,
    level_eff,
    best_eff,
    p_level,
    p_left,
    p_seq,
    touched,
    n_touched,
    last_mid,
    ev_time,
    ev_kind,
    ev_order,
    ev_side,
    ev_price,
    ev_qty,
    ev_aggr,
    price_min,
    cursor,
    t_stop,
    act_time,
    act_kind,
    act_qty,
    act_child,
    our_side,
    rematch,
    log_on,
    lg,
    lt,
    lp,
    lq,
    lpas,
    lmid,
    lchild,
    count,
    filled,
    cost,
    passive_filled,
    unfilled,
):
    """Apply the events before ``t_stop`` from ``cursor`` with our actions interleaved.

    Action ``a`` (time ``act_time[a]``, nondecreasing) runs after every event stamped at or before
    it: SWEEP takes ``act_qty[g, a]`` from the other side; POST rests ``act_qty[g, a]`` at our
    touch; CROSS cancels lane ``g``'s resting children and sweeps what they had left. Per lane,
    ``filled``, ``cost`` (against the feed's mid, currency in ticks), ``passive_filled`` and
    ``unfilled`` (shares a sweep found no book for) accumulate. Returns the new cursor and the
    fill buffers.
    """
    n_levels = head.shape[1]
    lanes = taken.shape[0]
    n_events = ev_time.shape[0]
    opp = _side_index(-our_side)
    ours = _side_index(our_side)
    scratch_level = np.zeros(4096, np.int64)
    scratch_qty = np.zeros(4096)
    k = cursor
    a = 0
    n_actions = act_time.shape[0]
    while True:
        event_due = k < n_events and ev_time[k] < t_stop
        action_due = a < n_actions
        if not event_due and not action_due:
            break
        if action_due and (not event_due or act_time[a] < ev_time[k]):
            now = act_time[a]
            kind = act_kind[a]
            mid = _mid(best_data, n_levels, last_mid) + price_min
            for g in range(lanes):
                want = act_qty[g, a]
                if kind == CROSS:
                    want = 0.0
                    for j in range(p_left.shape[1]):
                        want += p_left[g, j]
                        p_left[g, j] = 0.0
                    kind_g = SWEEP
                else:
                    kind_g = kind
                if want <= _EPS:
                    continue
                if kind_g == SWEEP:
                    got, rows = _consume(
                        g,
                        opp,
                        want,
                        -1,
                        o_level,
                        o_data,
                        o_next,
                        head,
                        taken,
                        level_eff,
                        best_eff,
                        n_levels,
                        touched,
                        n_touched,
                        scratch_level,
                        scratch_qty,
                    )
                    for r in range(rows):
                        px = scratch_level[r] + price_min
                        filled[g] += scratch_qty[r]
                        cost[g] += our_side * scratch_qty[r] * (px - mid)
                        if log_on:
                            lg, lt, lp, lq, lpas, lmid, lchild = _log(
                                lg, lt, lp, lq, lpas, lmid, lchild, count, g, now, px, scratch_qty[r], False, mid, act_child[a]
                            )
                    unfilled[g] += want - got
                else:
                    level = best_eff[g, ours]
                    if level < 0 or level >= n_levels:
                        # No touch on our side: rest one tick inside the other side's best.
                        other = best_eff[g, opp]
                        if other < 0 or other >= n_levels:
                            unfilled[g] += want
                            continue
                        level = other - 1 if our_side > 0 else other + 1
                    placed = False
                    for j in range(p_left.shape[1]):
                        if p_left[g, j] <= _EPS:
                            p_left[g, j] = want
                            p_level[g, j] = level
                            p_seq[g, j] = k - 1  # behind every order applied so far
                            placed = True
                            break
                    if not placed:
                        unfilled[g] += want
            a += 1
            continue
        # One feed event.
        kind = ev_kind[k]
        o = ev_order[k]
        sd = _side_index(ev_side[k])
        now = ev_time[k]
        arrived = False  # the order comes to rest at the back of a level (an add, or a modify that loses priority)
        if kind == ADD or (kind == MODIFY and not o_alive[o]):
            level = ev_price[k] - price_min
            o_data[o] = 0.0
            o_side[o] = ev_side[k]
            o_seq[o] = k
            _link(o, sd, level, o_level, o_next, o_prev, head, tail, o_alive)
            for g in range(lanes):
                taken[g, o] = 0.0
            _set_data(o, ev_qty[k], sd, o_data, o_level, taken, level_data, level_eff, best_data, best_eff, n_levels)
            arrived = True
        elif kind == CANCEL or kind == TRADE or kind == MODIFY:
            if o_alive[o]:
                old = o_data[o]
                if kind == MODIFY:
                    level = ev_price[k] - price_min
                    if level != o_level[o] or ev_qty[k] > old:
                        # Loses priority: leaves, then rests again at the back of its (new) level.
                        _set_data(o, 0.0, sd, o_data, o_level, taken, level_data, level_eff, best_data, best_eff, n_levels)
                        _unlink(o, sd, o_level, o_next, o_prev, head, tail, o_alive)
                        o_seq[o] = k
                        _link(o, sd, level, o_level, o_next, o_prev, head, tail, o_alive)
                        for g in range(lanes):
                            taken[g, o] = 0.0
                        _set_data(o, ev_qty[k], sd, o_data, o_level, taken, level_data, level_eff, best_data, best_eff, n_levels)
                        arrived = True
                    else:
                        _set_data(o, ev_qty[k], sd, o_data, o_level, taken, level_data, level_eff, best_data, best_eff, n_levels)
                else:
                    q = min(ev_qty[k], old)
                    if kind == TRADE and rematch:
                        limit = ev_price[k] - price_min
                        for g in range(lanes):
                            displaced = q - (max(old - taken[g, o], 0.0) - max(old - q - taken[g, o], 0.0))
                            if displaced > _EPS:
                                # The displaced rest meets the orders next in priority (never o itself).
                                saved = taken[g, o]
                                visible = max(old - saved, 0.0)
                                level_eff[g, sd, o_level[o]] -= visible
                                _refresh_best(best_eff[g], level_eff[g, sd], sd, o_level[o], n_levels)
                                taken[g, o] = old
                                _consume(
                                    g,
                                    sd,
                                    displaced,
                                    limit,
                                    o_level,
                                    o_data,
                                    o_next,
                                    head,
                                    taken,
                                    level_eff,
                                    best_eff,
                                    n_levels,
                                    touched,
                                    n_touched,
                                    scratch_level,
                                    scratch_qty,
                                )
                                taken[g, o] = saved
                                level_eff[g, sd, o_level[o]] += visible
                                _refresh_best(best_eff[g], level_eff[g, sd], sd, o_level[o], n_levels)
                    _set_data(o, old - q, sd, o_data, o_level, taken, level_data, level_eff, best_data, best_eff, n_levels)
                if o_data[o] <= _EPS:
                    _unlink(o, sd, o_level, o_next, o_prev, head, tail, o_alive)
        elif kind == CLEAR:
            for sd2 in range(2):
                for level in range(n_levels):
                    o2 = head[sd2, level]
                    while o2 >= 0:
                        nxt = o_next[o2]
                        _set_data(o2, 0.0, sd2, o_data, o_level, taken, level_data, level_eff, best_data, best_eff, n_levels)
                        _unlink(o2, sd2, o_level, o_next, o_prev, head, tail, o_alive)
                        o2 = nxt
        tape_ours = (kind == TRADE or kind == PRINT) and ev_aggr[k] != 0 and sd == ours
        if (arrived and sd == opp) or tape_ours:
            # Our passive children fill: an order of the other side that comes to rest crossing
            # a child's price would have traded with it; the tape traded on our side behind a
            # child at its price, or through its price.
            price = ev_price[k] - price_min if tape_ours else level
            lmid_now = _mid(best_data, n_levels, last_mid) + price_min
            for g in range(lanes):
                supply = ev_qty[k]
                for j in range(p_left.shape[1]):
                    if p_left[g, j] > _EPS and supply > _EPS:
                        if tape_ours:
                            through = price < p_level[g, j] if our_side > 0 else price > p_level[g, j]
                            hit = through or (price == p_level[g, j] and o_seq[o] > p_seq[g, j])
                        else:
                            hit = price <= p_level[g, j] if our_side > 0 else price >= p_level[g, j]
                        if hit:
                            part, lg, lt, lp, lq, lpas, lmid, lchild = _passive_fill(
                                g, j, supply, p_left, p_level, price_min, our_side, lmid_now, now, filled,
                                passive_filled, cost, log_on, lg, lt, lp, lq, lpas, lmid, lchild, count,
                            )  # fmt: skip
                            supply -= part
        _mid(best_data, n_levels, last_mid)
        k += 1
    return k, lg, lt, lp, lq, lpas, lmid, lchild


@njit
def reset_lanes(o_level, o_side, taken, level_data, level_eff, best_data, best_eff, p_left, touched, n_touched):
    """Forget every lane's footprint (the orders it touched) and resting children."""
    for i in range(n_touched[0]):
        o = touched[i]
        sd = 0 if o_side[o] > 0 else 1
        level = o_level[o]
        for g in range(taken.shape[0]):
            taken[g, o] = 0.0
            level_eff[g, sd, level] = level_data[sd, level]
    n_touched[0] = 0
    for g in range(taken.shape[0]):
        best_eff[g, 0] = best_data[0]
        best_eff[g, 1] = best_data[1]
        for j in range(p_left.shape[1]):
            p_left[g, j] = 0.0


@njit
def top_levels(level_eff_row, best, step, n_levels, depth, out_level, out_qty):
    """The first ``depth`` nonempty levels of one side from ``best`` (returns how many)."""
    level = best
    n = 0
    while 0 <= level < n_levels and n < depth:
        if level_eff_row[level] > _EPS:
            out_level[n] = level
            out_qty[n] = level_eff_row[level]
            n += 1
        level += step
    return n
