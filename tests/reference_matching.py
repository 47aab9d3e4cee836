"""A pure-Python matching engine, written from the rules of :mod:`convexsched.execution.matching`'s docstring.

Dicts and lists, no arrays and no incremental bookkeeping: every level total and best price is
recomputed from the queues when it is needed, so nothing can drift. Slow on purpose; it checks
the compiled ``run_window`` on small streams.

The rules, as the docstring states them (and what the docstring leaves open, decided here):

* The feed's book: price levels of FIFO queues. ADD joins the back of its level. CANCEL and
  TRADE take ``min(q, D)`` from the order (``inf`` cancels all of it). MODIFY of a resting order
  keeps its place when the price stays and the size does not grow, else it goes to the back of
  its (new) level; MODIFY of an order not resting is an ADD. An order at 0 leaves. CLEAR empties
  the book. An event about an order not resting changes nothing.
* Lane ``g`` has taken ``T[g][o]`` shares of order ``o``; the order shows ``max(D - T, 0)`` in
  that lane. A (re)added order starts untouched.
* SWEEP ``q``: take from the other side, best visible price first, first in queue, until ``q``
  or the side is empty (the rest is ``unfilled``). One fill per price level.
* POST ``q``: rest at the lane's visible best of our side; with none, one tick inside the other
  side's visible best; with neither, ``unfilled``. The child ranks behind every event applied so
  far. Children live in ``max_passive`` slots (the first free slot; none free: ``unfilled``),
  and fills go to them in slot order.
* CROSS: the lane's resting children are cancelled and what they had left is swept.
* Passive fills, with the event applied first: a TRADE or PRINT with a known aggressor against
  an order of our side fills ``min(left, q)`` (supply shared in slot order) when its price is
  worse than the child's (through) or equal and the order ranks behind the child; an order of
  the other side that comes to rest (ADD, or a MODIFY that puts it at the back of a level) at a
  price that reaches the child's fills it the same way.
* Rematch rule: the part of a TRADE that lane ``g``'s consumption displaced
  (``q`` minus what the trade took from the order's visible size) is taken by the lane from the
  next orders of that side, best visible price first, never the traded order, never past the
  trade's price. Drop rule: it does not happen.
* Costs against the feed's mid (its best bid and ask without any lane; the last one while a
  side is empty): ``side * qty * (price - mid)``, prices in ticks. An action meets the book after
  every event stamped at or before it.
"""

from __future__ import annotations

import math

ADD, CANCEL, TRADE, PRINT, MODIFY, CLEAR = 0, 1, 2, 3, 4, 5
SWEEP, POST, CROSS = 0, 1, 2
EPS = 1e-9


class ReferenceBook:
    """The feed's book and ``lanes`` footprints (module docstring)."""

    def __init__(self, lanes: int, our_side: int, max_passive: int, rematch: bool = False) -> None:
        self.lanes, self.our_side, self.rematch = lanes, our_side, rematch
        self.queues: dict[tuple[int, int], list[int]] = {}  # (side, price) -> order numbers, first in queue first
        self.size: dict[int, float] = {}  # resting orders' feed sizes
        self.where: dict[int, tuple[int, int]] = {}
        self.rank: dict[int, int] = {}  # event index at which the order (last) took its place
        self.taken: list[dict[int, float]] = [{} for _ in range(lanes)]
        self.children: list[list[list]] = [[[0.0, 0, 0] for _ in range(max_passive)] for _ in range(lanes)]  # left, price, rank
        self.applied = 0
        self.mid = math.nan
        self.filled = [0.0] * lanes
        self.cost = [0.0] * lanes
        self.passive = [0.0] * lanes
        self.unfilled = [0.0] * lanes
        self.fills: list[tuple] = []  # (lane, time, price, qty, passive, mid, child)

    # -- views -----------------------------------------------------------------------------------
    def visible(self, g: int, o: int) -> float:
        return max(self.size[o] - self.taken[g].get(o, 0.0), 0.0)

    def level(self, side: int, price: int, g: int | None = None) -> float:
        queue = self.queues.get((side, price), [])
        if g is None:
            return sum(self.size[o] for o in queue)
        return sum(self.visible(g, o) for o in queue)

    def prices(self, side: int, g: int | None = None) -> list[int]:
        """Nonempty prices of ``side``, best first (in lane ``g``, or the feed's when None)."""
        found = [p for (s, p) in self.queues if s == side and self.level(side, p, g) > EPS]
        return sorted(found, reverse=side > 0)

    def best(self, side: int, g: int | None = None) -> int | None:
        prices = self.prices(side, g)
        return prices[0] if prices else None

    def _update_mid(self) -> float:
        bid, ask = self.best(1), self.best(-1)
        if bid is not None and ask is not None:
            self.mid = 0.5 * (bid + ask)
        return self.mid

    # -- the feed --------------------------------------------------------------------------------
    def _rest(self, o: int, side: int, price: int, qty: float, k: int) -> None:
        self.queues.setdefault((side, price), []).append(o)
        self.size[o], self.where[o], self.rank[o] = qty, (side, price), k
        for taken in self.taken:
            taken.pop(o, None)

    def _leave(self, o: int) -> None:
        self.queues[self.where[o]].remove(o)
        del self.size[o], self.where[o]

    def event(self, k: int, time: int, kind: int, o: int, side: int, price: int, qty: float, aggressor: int) -> None:
        """Apply event ``k`` of the stream, then the passive fills it causes."""
        resting = o in self.size
        arrives = False  # the order comes to rest (again) at the back of its level
        if kind == ADD or (kind == MODIFY and not resting):
            if resting:  # an ADD of an order already resting: the feed re-adds it
                self._leave(o)
            self._rest(o, side, price, qty, k)
            arrives = True
        elif kind == MODIFY:
            if price != self.where[o][1] or qty > self.size[o]:
                self._leave(o)
                self._rest(o, side, price, qty, k)
                arrives = True
            else:
                self.size[o] = qty
            if self.size[o] <= EPS:
                self._leave(o)
        elif kind in (CANCEL, TRADE) and resting:
            q = min(qty, self.size[o])
            if kind == TRADE and self.rematch:
                for g in range(self.lanes):
                    t = self.taken[g].get(o, 0.0)
                    displaced = q - (max(self.size[o] - t, 0.0) - max(self.size[o] - q - t, 0.0))
                    if displaced > EPS:
                        self.take(g, self.where[o][0], displaced, limit=price, skip=o)
            self.size[o] -= q
            if self.size[o] <= EPS:
                self._leave(o)
        elif kind == CLEAR:
            for order in list(self.size):
                self._leave(order)
        self.applied = k + 1
        self._update_mid()
        if arrives and side == -self.our_side and qty > EPS:
            self._crossing_add(time, price, qty)
        if kind in (TRADE, PRINT) and aggressor != 0 and side == self.our_side:
            self._tape_trade(time, o, price, qty)

    def _fill_children(self, g: int, time: int, supply: float, reaches) -> None:
        for child in self.children[g]:
            left, price, rank = child
            if left > EPS and supply > EPS and reaches(price, rank):
                part = min(left, supply)
                child[0] -= part
                supply -= part
                self._record(g, time, price, part, True, -1)

    def _crossing_add(self, time: int, price: int, qty: float) -> None:
        for g in range(self.lanes):
            self._fill_children(g, time, qty, lambda ours, _: price <= ours if self.our_side > 0 else price >= ours)

    def _tape_trade(self, time: int, o: int, price: int, qty: float) -> None:
        behind_rank = self.rank.get(o, -1)  # an order that never rested ranks ahead of everyone
        for g in range(self.lanes):

            def reaches(ours, rank):
                through = price < ours if self.our_side > 0 else price > ours
                return through or (price == ours and behind_rank >= rank)

            self._fill_children(g, time, qty, reaches)

    # -- our actions -----------------------------------------------------------------------------
    def take(self, g: int, side: int, amount: float, limit: int | None = None, skip: int | None = None) -> list:
        """Lane ``g`` takes ``amount`` from ``side``; ``[(price, qty)]`` per level touched."""
        got = []
        for price in self.prices(side, g):
            if amount <= EPS or (limit is not None and (price < limit if side > 0 else price > limit)):
                break
            here = 0.0
            for o in self.queues[(side, price)]:
                if o == skip:
                    continue
                part = min(self.visible(g, o), amount)
                if part > EPS:
                    self.taken[g][o] = self.taken[g].get(o, 0.0) + part
                    amount -= part
                    here += part
                if amount <= EPS:
                    break
            if here > 0:
                got.append((price, here))
        return got

    def _record(self, g: int, time: int, price: int, qty: float, passive: bool, child: int) -> None:
        self.filled[g] += qty
        self.cost[g] += self.our_side * qty * (price - self.mid)
        if passive:
            self.passive[g] += qty
        self.fills.append((g, time, price, qty, passive, self.mid, child))

    def action(self, time: int, kind: int, qty: list[float], child: int) -> None:
        """Our action (``qty`` per lane), after every event applied so far."""
        self._update_mid()
        for g in range(self.lanes):
            want = qty[g]
            if kind == CROSS:
                want = sum(c[0] for c in self.children[g])
                for c in self.children[g]:
                    c[0] = 0.0
            if want <= EPS:
                continue
            if kind in (SWEEP, CROSS):
                got = self.take(g, -self.our_side, want)
                for price, part in got:
                    self._record(g, time, price, part, False, child)
                self.unfilled[g] += want - sum(part for _, part in got)
                continue
            price = self.best(self.our_side, g)
            if price is None:
                other = self.best(-self.our_side, g)
                if other is None:
                    self.unfilled[g] += want
                    continue
                price = other - self.our_side
            free = [c for c in self.children[g] if c[0] <= EPS]
            if not free:
                self.unfilled[g] += want
                continue
            free[0][:] = [want, price, self.applied]


def run_reference(events, actions, lanes, our_side, max_passive, rematch=False, t_stop=None, book=None):
    """Apply ``events`` (rows ``(time, kind, order, side, price, qty, aggressor)``) before ``t_stop``
    and every action ``(time, kind, qty per lane, child)``; an action goes after the events stamped at
    or before it. Continue ``book`` when given (``book.applied`` events already applied)."""
    book = book or ReferenceBook(lanes, our_side, max_passive, rematch)
    k = book.applied
    pending = list(actions)
    while True:
        event_due = k < len(events) and (t_stop is None or events[k][0] < t_stop)
        if not event_due and not pending:
            return book
        if pending and (not event_due or pending[0][0] < events[k][0]):
            book.action(*pending.pop(0))
            continue
        book.event(k, *events[k])
        k += 1
