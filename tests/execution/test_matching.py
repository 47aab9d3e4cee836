"""The compiled matching kernel against the pure-Python reference (tests/reference_matching.py).

Random small streams with random SWEEP/POST/CROSS actions under both the drop and the rematch
rule; hand-built streams with known answers (queue position, a trade through our price, a
cancel ahead of us, a trade against an order we consumed); and the fills log of a real replay
checked fill by fill against the book rebuilt at that instant.
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_matching import ReferenceBook, run_reference

import convexsched as cs
from convexsched.data.events import ADD, CANCEL, CLEAR, MODIFY, PRINT, TRADE
from convexsched.execution.matching import CROSS, POST, SWEEP, BookState, FillLog, run_window

INF = math.inf


class Kernel:
    """``run_window`` over event rows ``(time, kind, order, side, price, qty, aggressor)``, window by window."""

    def __init__(self, rows, lanes, our_side, max_passive, rematch=False):
        columns = list(zip(*rows))
        self.time = np.asarray(columns[0], np.int64)
        self.kind = np.asarray(columns[1], np.int8)
        self.order = np.asarray(columns[2], np.int64)
        self.side = np.asarray(columns[3], np.int8)
        self.price = np.asarray(columns[4], np.int64)
        self.qty = np.asarray(columns[5], float)
        self.aggr = np.asarray(columns[6], np.int8)
        priced = self.kind != CLEAR
        self.price_min = int(self.price[priced].min()) - 1  # room for a post one tick inside
        self.n_levels = int(self.price[priced].max()) - self.price_min + 2
        n_orders = int(self.order.max()) + 1
        self.state = BookState(n_orders, self.n_levels, self.price_min, lanes, our_side, max_passive)
        self.lanes, self.our_side, self.rematch = lanes, our_side, rematch
        self.log = FillLog(8)
        self.totals = tuple(np.zeros(lanes) for _ in range(4))

    def window(self, t_stop, actions=()):
        """Events before ``t_stop`` with ``actions`` ``(time, kind, qty per lane, child)`` interleaved."""
        times = np.array([a[0] for a in actions], np.int64)
        kinds = np.array([a[1] for a in actions], np.int64)
        qty = np.array([a[2] for a in actions], float).T.reshape(self.lanes, len(actions))
        child = np.array([a[3] for a in actions], np.int64)
        st_ = self.state
        out = run_window(
            *st_.arrays(),
            self.time,
            self.kind,
            self.order,
            self.side,
            self.price,
            self.qty,
            self.aggr,
            self.price_min,
            st_.cursor,
            int(t_stop),
            times,
            kinds,
            qty,
            child,
            self.our_side,
            self.rematch,
            True,
            *self.log.arrays()[:-1],
            self.log.count,
            *self.totals,
        )
        st_.cursor = int(out[0])
        self.log.replace((*out[1:], self.log.count))

    def fills(self):
        n = len(self.log)
        lg, lt, lp, lq, lpas, lmid, lchild, _ = self.log.arrays()
        return [
            (int(lg[i]), int(lt[i]), int(lp[i]), float(lq[i]), bool(lpas[i]), float(lmid[i]), int(lchild[i])) for i in range(n)
        ]

    def visible(self, g):
        """``{order: shares shown in lane g}`` of every resting order."""
        s = self.state
        return {int(o): max(float(s.o_data[o] - s.taken[g, o]), 0.0) for o in np.flatnonzero(s.o_alive)}

    def feed(self):
        s = self.state
        return {int(o): float(s.o_data[o]) for o in np.flatnonzero(s.o_alive)}


def _same_fills(ours, theirs):
    assert len(ours) == len(theirs), (ours, theirs)
    for a, b in zip(ours, theirs):
        assert a[:3] == b[:3] and a[4] == b[4] and a[6] == b[6], (a, b)
        assert a[3] == pytest.approx(b[3]) and (a[5] == pytest.approx(b[5]) or (math.isnan(a[5]) and math.isnan(b[5])))


def _compare(kernel, ref):
    _same_fills(kernel.fills(), ref.fills)
    for g in range(kernel.lanes):
        assert kernel.visible(g) == pytest.approx({o: ref.visible(g, o) for o in ref.size})
        filled, cost, passive, unfilled = (t[g] for t in kernel.totals)
        assert (filled, passive, unfilled) == pytest.approx((ref.filled[g], ref.passive[g], ref.unfilled[g]))
        assert cost == pytest.approx(ref.cost[g], nan_ok=True)
        s = kernel.state
        for sd, side in ((0, 1), (1, -1)):
            # Our footprint never creates shares: each level shows at most the feed's size.
            assert (s.level_eff[g, sd] <= s.level_data[sd] + 1e-9).all()
            for level in range(kernel.n_levels):
                assert s.level_eff[g, sd, level] == pytest.approx(ref.level(side, level + kernel.price_min, g), abs=1e-9)
            best = ref.best(side, g)
            expected = (-1 if sd == 0 else kernel.n_levels) if best is None else best - kernel.price_min
            assert s.best_eff[g, sd] == expected
    assert kernel.feed() == pytest.approx(ref.size)


# -- random streams ------------------------------------------------------------------------------
@st.composite
def scenarios(draw):
    """A small feed (adds, cancels, trades, prints, modifies, a rare clear) and our actions on it."""
    rows, live, t = [], {}, 0  # live: order -> [side, price, size]
    n_orders = 0
    for _ in range(draw(st.integers(4, 40))):
        t += draw(st.sampled_from([0, 0, 1, 2]))
        op = draw(st.sampled_from(["add"] * 6 + ["cancel", "trade", "trade", "print", "modify", "ghost", "clear"]))
        if op != "clear" and (op == "add" or not live):
            side = draw(st.sampled_from([1, -1]))
            price = draw(st.integers(100, 104) if side > 0 else st.integers(103, 107))
            qty = float(draw(st.integers(1, 8)))
            rows.append((t, ADD, n_orders, side, price, qty, 0))
            live[n_orders] = [side, price, qty]
            n_orders += 1
            continue
        if op == "clear":
            rows.append((t, CLEAR, 0, 0, 0, 0.0, 0))
            live.clear()
            continue
        # "ghost": an event about an order that no longer rests (the kernel must ignore it).
        o = draw(st.integers(0, n_orders - 1)) if op == "ghost" else draw(st.sampled_from(sorted(live)))
        side, price, size = live.get(o, [1, 100, 0.0])
        qty = float(draw(st.integers(1, 8)))
        if op == "cancel" or op == "ghost":
            q = INF if draw(st.booleans()) else qty
            rows.append((t, CANCEL, o, side, price, q, 0))
        elif op in ("trade", "print"):
            rows.append((t, TRADE if op == "trade" else PRINT, o, side, price, qty, -side))
            if op == "print":
                continue
            q = qty
        else:
            price = price + draw(st.integers(-1, 1))
            size = float(draw(st.integers(0, 8)))
            rows.append((t, MODIFY, o, side, price, size, 0))
            live[o] = [side, price, size]
            q = 0.0
        if o in live:
            live[o][2] -= min(q, live[o][2])
            if live[o][2] <= 0:
                del live[o]
    lanes = 2
    actions = sorted(
        (
            (
                draw(st.integers(0, t + 1)),
                draw(st.sampled_from([SWEEP, SWEEP, POST, POST, CROSS])),
                [float(draw(st.integers(0, 9))) for _ in range(lanes)],
                i,
            )
            for i in range(draw(st.integers(0, 6)))
        ),
        key=lambda a: a[0],
    )
    cuts = sorted(set(draw(st.lists(st.integers(0, t + 2), max_size=3)) + [t + 3]))
    return rows, actions, cuts, draw(st.sampled_from([1, -1])), draw(st.integers(1, 3))


@settings(max_examples=200)
@given(scenarios(), st.booleans())
def test_kernel_matches_the_reference(scenario, rematch):
    rows, actions, cuts, our_side, slots = scenario
    kernel = Kernel(rows, 2, our_side, slots, rematch)
    ref = ReferenceBook(2, our_side, slots, rematch)
    start = -1
    for cut in cuts:
        mine = [a for a in actions if start <= a[0] < cut]
        kernel.window(cut, mine)
        run_reference(rows, mine, 2, our_side, slots, rematch, t_stop=cut, book=ref)
        _compare(kernel, ref)
        start = cut


# -- hand-built streams with known answers ----------------------------------------------------------
# Bids at 100: orders 0 and 1 (5 each); asks at 101: order 2 (5), at 102: order 3 (5).
_BOOK = [(0, ADD, 0, 1, 100, 5.0, 0), (0, ADD, 1, 1, 100, 5.0, 0), (0, ADD, 2, -1, 101, 5.0, 0), (0, ADD, 3, -1, 102, 5.0, 0)]


def _both(rows, actions, rematch=False, slots=1):
    """The kernel and the reference over the whole stream; their answers must agree."""
    kernel = Kernel(rows, 1, 1, slots, rematch)
    kernel.window(10**9, actions)
    ref = run_reference(rows, actions, 1, 1, slots, rematch)
    _compare(kernel, ref)
    return kernel


def test_queue_position():
    """Our bid joins 100 behind orders 0 and 1: trades against them do not reach us, one behind us does."""
    rows = [
        *_BOOK,
        (2, ADD, 4, 1, 100, 4.0, 0),  # order 4 joins behind our child
        (3, TRADE, 0, 1, 100, 5.0, -1),
        (4, TRADE, 1, 1, 100, 2.0, -1),
        (5, TRADE, 4, 1, 100, 2.0, -1),
    ]  # a sell that met order 4 would have met us first
    kernel = _both(rows, [(1, POST, [3.0], 0)])
    fills = kernel.fills()
    assert [(f[1], f[2], f[3], f[4]) for f in fills] == [(5, 100, 2.0, True)]


def test_trade_through_our_price():
    rows = [
        *_BOOK,
        (2, ADD, 4, 1, 99, 6.0, 0),
        (3, CANCEL, 0, 1, 100, INF, 0),
        (3, CANCEL, 1, 1, 100, INF, 0),
        (4, TRADE, 4, 1, 99, 4.0, -1),
    ]  # a sale at 99 went through our 100 bid
    fills = _both(rows, [(1, POST, [3.0], 0)]).fills()
    assert [(f[1], f[2], f[3], f[4]) for f in fills] == [(4, 100, 3.0, True)]


def test_cancel_ahead_of_us_moves_us_up_without_a_fill():
    rows = [
        *_BOOK,
        (2, CANCEL, 0, 1, 100, INF, 0),
        (3, ADD, 4, 1, 100, 2.0, 0),
        (4, TRADE, 1, 1, 100, 5.0, -1),  # order 1 was still ahead: no fill
        (5, TRADE, 4, 1, 100, 1.0, -1),
    ]  # now only we are ahead of order 4
    kernel = _both(rows, [(1, POST, [3.0], 0)])
    fills = kernel.fills()
    assert [(f[1], f[3]) for f in fills] == [(5, 1.0)]
    one_cancel = _both(rows[:6], [(1, POST, [3.0], 0)])
    assert one_cancel.fills() == []


@pytest.mark.parametrize("rematch", [False, True])
def test_trade_against_an_order_we_consumed(rematch):
    """We buy 3 of ask order 2 (5 at 101, order 5 behind it); the tape then trades 4 against order 2.

    Drop rule: the trade gets the 2 shares we left and its other 2 do not happen: order 5 keeps 3.
    Rematch: those 2 meet the next order at no worse a price, order 5, which keeps 1; order 3 at
    102 is past the trade's price and keeps 5 under both rules.
    """
    rows = [*_BOOK, (0, ADD, 5, -1, 101, 3.0, 0), (2, TRADE, 2, -1, 101, 4.0, 1)]
    kernel = _both(rows, [(1, SWEEP, [3.0], 0)], rematch=rematch)
    assert kernel.fills()[0][2:4] == (101, 3.0)
    shown = kernel.visible(0)
    assert shown[2] == 0.0 and kernel.feed()[2] == 1.0  # the feed still has 1; we took it
    assert shown[5] == (1.0 if rematch else 3.0)  # rematch: 2 of order 5 went to the displaced aggressor
    assert shown[3] == 5.0  # never past the trade's price
    later = Kernel(rows, 1, 1, 1, rematch)
    later.window(10**9, [(1, SWEEP, [3.0], 0), (3, SWEEP, [10.0], 1)])
    assert [f[2:4] for f in later.fills()] == (
        [(101, 3.0), (101, 1.0), (102, 5.0)] if rematch else [(101, 3.0), (101, 3.0), (102, 5.0)]
    )


def test_cost_is_against_the_feeds_mid():
    """A buy of 7 takes 5 at 101 and 2 at 102 with the feed's mid at 100.5: cost 5*0.5 + 2*1.5 ticks."""
    kernel = _both(_BOOK, [(1, SWEEP, [7.0], 0)])
    assert kernel.totals[1][0] == pytest.approx(5 * 0.5 + 2 * 1.5)
    assert [f[5] for f in kernel.fills()] == [100.5, 100.5]


# -- a real replay's fills log against the book ------------------------------------------------------
def _check_fills_log(events, fills, our_side, rematch):
    """Every fill is one the book rebuilt at that instant could give (module docstring).

    Aggressive fills: at the best price our footprint leaves on the other side, no more than it
    shows there, charged against the feed's mid of that instant; they join our footprint.
    Passive fills: an event at that instant traded on our side at or through the child's price,
    or an order of the other side came to rest at a price reaching it, with at least as many
    shares as the fills of that instant.
    """
    book = ReferenceBook(1, our_side, 0, rematch)
    rows = list(
        zip(
            events.time.tolist(),
            events.kind.tolist(),
            events.order.tolist(),
            events.side.tolist(),
            events.price.tolist(),
            events.qty.tolist(),
            events.aggressor.tolist(),
        )
    )
    k = 0
    tick = events.tick_size
    times = pd.DatetimeIndex(fills["time"]).as_unit("ns").asi8.tolist()
    passive_at: dict[int, float] = {}
    for t, price, qty, passive, mid in zip(times, fills["price"], fills["qty"], fills["passive"], fills["mid"]):
        while k < len(rows) and rows[k][0] <= t:
            book.event(k, *rows[k])
            k += 1
        p = round(price / tick)
        if passive:
            passive_at[t] = passive_at.get(t, 0.0) + qty
            at_t = [r for r in rows[:k] if r[0] == t]
            supply = sum(
                r[5]
                for r in at_t
                if (r[1] in (TRADE, PRINT) and r[6] != 0 and r[3] == our_side and (r[4] - p) * our_side <= 0)
                or (r[1] in (ADD, MODIFY) and r[3] == -our_side and (r[4] - p) * our_side <= 0)
            )
            assert supply >= passive_at[t] - 1e-9, f"passive fill at {t} without a trade reaching {price}"
            continue
        assert book.best(-our_side, 0) == p, f"fill at {price} is not the best price our footprint left"
        assert book.level(-our_side, p, 0) >= qty - 1e-9
        assert mid == pytest.approx(book.mid * tick)
        got = book.take(0, -our_side, qty, limit=p)
        assert sum(g for _, g in got) == pytest.approx(qty)
    return len(fills)


@pytest.mark.parametrize(
    "tactic,side,rematch",
    [
        (cs.Sliced(3), "buy", False),
        (cs.Sliced(3), "sell", True),
        (cs.PassiveFirst(2, cross_at=6.0), "buy", False),
        (cs.PassiveFirst(2, cross_at=9.0), "sell", False),
    ],
)
def test_real_fills_log_is_one_the_book_could_give(shared_data, tactic, side, rematch):
    events = cs.read_events(shared_data / "lobster-aapl-2012-head" / "AAPL_2012-06-21_34200000_57600000_message_10.csv")
    executor = cs.ReplayExecutor(events, side, "10s", tactic=tactic, rematch=rematch)
    for i in range(len(executor)):
        executor.fill(i, 600.0)
    fills = executor.fills
    assert (fills["qty"] > 0).all()
    checked = _check_fills_log(events, fills, 1 if side == "buy" else -1, rematch)
    assert checked >= len(executor) - 1  # a fill in every bucket but the first (no book at 09:30:00.000)
    if isinstance(tactic, cs.PassiveFirst):
        assert fills["passive"].any() and not fills["passive"].all()
