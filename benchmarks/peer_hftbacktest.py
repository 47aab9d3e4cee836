"""Peer check: our event replay against hftbacktest on the same Databento MBO data (ES, one hour).

hftbacktest (PyPI ``hftbacktest``, the field's event-level backtester) replays order-by-order
(L3) data with exact FIFO queue positions (``L3FIFOQueueModel``) and assumes, as is usual, that
our orders leave no footprint: the book it shows always follows the feed. Our replay
(:mod:`convexsched.execution.matching`) is compared where both model the same thing:

* **Market children** with the footprint switched off: every child runs in its own lane of the
  kernel, so no child sees another's fills (hftbacktest never removes our fills from its book).
  A buy (sell) of ``q`` contracts at ``t`` must get the same price and quantity in both.
* **Passive children** on order-level data: one contract posted at the touch at ``t``, alone,
  left for 50 s (no cross). Both must fill it, or not, at the same event.

What hftbacktest cannot model, and why we need more than it:

* **Our persistent footprint.** hftbacktest's book is the feed's: shares we take come back at
  the next feed event, and a later trade against an order we emptied still happens. Our replay
  keeps the shares we took out of the book (the drop or the rematch rule, closed-loop
  decisions), which is the point of issue 17: a schedule's own depletion is part of its cost.
  So the comparison below turns the footprint off (one lane per child).
* **Sweeps through several levels.** Its only L3 exchange (``NoPartialFillExchange``; it refuses
  ``partial_fill_exchange`` with L3 data) fills a marketable order's whole quantity at the best
  price. Children larger than the touch are reported apart: there hftbacktest is optimistic.
* **Our fill rule for passive children** differs where the tape says so: we fill when the tape
  trades an order *behind* ours at our price, trades through it, or an order of the other side
  comes to rest crossing it. hftbacktest's FIFO model fills us when any order behind us at our
  price reports a fill, including the aggressor's own order: on CME a resting order modified into
  the other side gets a fill record (at the other side's price) before the record that moves it.
  No one traded at our price then; our reader marks those fills (aggressor 0) and we wait.

Clocks: both read the same records. hftbacktest's own converter (``hftbacktest.data.utils.
databento.convert``) stamps ``exch_ts`` with ``ts_event`` and ``local_ts`` with ``ts_recv``; our
stream is on ``ts_recv``. To compare matching rules rather than clocks, the converted
``exch_ts`` is set to its ``local_ts`` (no feed latency) and orders reach hftbacktest's exchange
1 microsecond after they are sent (its smallest working constant latency here; 0 left orders
unacknowledged); our children arrive 1 microsecond after their decision as well. The converter
goes through float seconds, so its stamps are off by up to a few hundred nanoseconds; a child is
sent 1.5 s after each minute, away from those boundaries.

Run: ``flock /tmp/convexsched-heavy.lock python benchmarks/peer_hftbacktest.py`` (hftbacktest
installed: ``pip install -e ".[peer]"``). Writes
``benchmarks/results/peer_hftbacktest.md``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, markdown_table, write_results

import convexsched as cs
from convexsched.data.events import ADD, CLEAR, MODIFY, PRINT
from convexsched.execution.matching import POST, SWEEP, BookState, FillLog, run_window

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "es-futures-mbo-databento"
ES = DATA / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
RESULTS = Path(__file__).resolve().parent / "results" / "peer_hftbacktest.md"
LATENCY_NS = 1_000
OFFSET_NS = 1_500_000_000
WINDOW_NS = 50_000_000_000
SIZES = (1.0, 5.0, 20.0)
MINUTES = int(sys.argv[1]) if len(sys.argv) > 1 else 59  # decisions at minutes 1 .. MINUTES - 1


# -- hftbacktest ------------------------------------------------------------------------------------
def hbt_data():
    """The ES file through hftbacktest's converter, on the receive clock (module docstring)."""
    from hftbacktest.data.utils import databento as hbt_databento

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = hbt_databento.convert(str(ES), None)
    data["exch_ts"] = data["local_ts"]
    return data


def exact_stamps(data):
    """The exact ``ts_recv`` of each converted row (the converter's stamps went through float seconds)."""
    from convexsched.data.mbo import mbo_records

    records, _, _ = mbo_records(ES)
    exact = records["ts_recv"].astype(np.int64)
    if len(exact) != len(data) or np.abs(data["local_ts"] - exact).max() > 10_000:
        raise RuntimeError("hftbacktest's rows are not the file's records in order: cannot map its stamps")
    return exact


def hbt_backtest(data):
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data(data)
        .linear_asset(1.0)
        .constant_order_latency(LATENCY_NS, LATENCY_NS)
        .l3_fifo_queue_model()
        .no_partial_fill_exchange()
        .tick_size(0.25)
        .lot_size(1.0)
    )
    return HashMapMarketDepthBacktest([asset])


def _hbt_kernels():
    from hftbacktest import GTC, LIMIT
    from numba import njit

    @njit
    def goto(hbt, t, start):
        now = hbt.current_timestamp
        if now == 9223372036854775807:  # before the first elapse the clock reads int64 max
            now = start
        if t > now:
            hbt.elapse(t - now)

    @njit
    def market(hbt, times, sides, qty, start, out):
        """Marketable limit children (10 ticks through the touch), one at a time: price, qty, status, touch."""
        for i in range(len(times)):
            goto(hbt, times[i], start)
            depth = hbt.depth(0)
            oid = i + 1
            if sides[i] > 0:
                out[i, 3] = depth.best_ask_qty
                hbt.submit_buy_order(0, oid, depth.best_ask + 10 * depth.tick_size, qty[i], GTC, LIMIT, True)
            else:
                out[i, 3] = depth.best_bid_qty
                hbt.submit_sell_order(0, oid, depth.best_bid - 10 * depth.tick_size, qty[i], GTC, LIMIT, True)
            order = hbt.orders(0).get(oid)
            out[i, 0] = order.exec_price
            out[i, 1] = order.exec_qty
            out[i, 2] = order.status
            if order.cancellable:
                hbt.cancel(0, oid, True)
            hbt.clear_inactive_orders(0)

    @njit
    def passive(hbt, times, side, window, start, out):
        """One contract at the touch per time, alone for ``window``: posted price, status, fill stamp."""
        for i in range(len(times)):
            goto(hbt, times[i], start)
            depth = hbt.depth(0)
            oid = i + 1
            price = depth.best_bid if side > 0 else depth.best_ask
            out[i, 0] = price
            if side > 0:
                hbt.submit_buy_order(0, oid, price, 1.0, GTC, LIMIT, False)
            else:
                hbt.submit_sell_order(0, oid, price, 1.0, GTC, LIMIT, False)
            hbt.elapse(window)
            order = hbt.orders(0).get(oid)
            out[i, 1] = order.status
            out[i, 2] = order.exch_timestamp
            out[i, 3] = order.exec_price
            if order.cancellable:
                hbt.cancel(0, oid, True)
            hbt.clear_inactive_orders(0)

    return market, passive


# -- our kernel, one lane per child --------------------------------------------------------------------
def ours(events, times, kinds, qty_per_child, our_side):
    """Each child in its own lane (no footprint between children); the fills log."""
    priced = events.kind != CLEAR
    price_min = int(events.price[priced].min()) - 1
    n_levels = int(events.price[priced].max()) - price_min + 2
    n = len(times)
    state = BookState(events.n_orders, n_levels, price_min, n, our_side, 1)
    qty = np.zeros((n, n))
    qty[np.arange(n), np.arange(n)] = qty_per_child
    log = FillLog(4 * n)
    totals = tuple(np.zeros(n) for _ in range(4))
    out = run_window(
        *state.arrays(),
        events.time,
        events.kind,
        events.order,
        events.side,
        events.price,
        events.qty,
        events.aggressor,
        price_min,
        0,
        int(events.time[-1]) + 1,
        np.asarray(times, np.int64),
        np.asarray(kinds, np.int64),
        qty,
        np.arange(n, dtype=np.int64),
        our_side,
        False,
        True,
        *log.arrays()[:-1],
        log.count,
        *totals,
    )
    log.replace((*out[1:], log.count))
    k = len(log)
    frame = pd.DataFrame(
        {
            "lane": log.lane[:k],
            "time": log.time[:k],
            "price": log.price[:k] * events.tick_size,
            "qty": log.qty[:k],
            "passive": log.passive[:k],
        }
    )
    return frame, totals


def main():
    if not ES.is_file():
        sys.exit(f"the ES MBO file is not at {ES}")
    import hftbacktest

    events = cs.read_events(ES)
    sessions = events.sessions
    day = events.times[-1].normalize()
    start = pd.Timestamp.combine(day.date(), sessions.intervals[0][0]).tz_localize(sessions.tz)
    decisions = np.array([(start + pd.Timedelta(minutes=m)).value + OFFSET_NS for m in range(1, MINUTES)], np.int64)
    t0 = time.perf_counter()
    data = hbt_data()
    convert_s = time.perf_counter() - t0
    market_hbt, passive_hbt = _hbt_kernels()
    first = int(data["local_ts"][0])

    # Market children: every decision x side x size, in hftbacktest one at a time.
    rows = [(t, side, q) for t in decisions for side in (1, -1) for q in SIZES]
    times = np.array([r[0] for r in rows], np.int64)
    sides = np.array([r[1] for r in rows], np.int64)
    sizes = np.array([r[2] for r in rows])
    theirs = np.zeros((len(rows), 4))
    t0 = time.perf_counter()
    market_hbt(hbt_backtest(data), times, sides, sizes, first, theirs)
    hbt_market_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compare = []
    for side in (1, -1):
        mine = sides == side
        fills, totals = ours(events, times[mine] + LATENCY_NS, np.full(mine.sum(), SWEEP), sizes[mine], side)
        vwap = fills.groupby("lane").apply(lambda f: (f.price * f.qty).sum() / f.qty.sum(), include_groups=False)
        levels = fills.groupby("lane").size()
        for lane, i in enumerate(np.flatnonzero(mine)):
            compare.append(
                {
                    "side": "buy" if side > 0 else "sell",
                    "size": sizes[i],
                    "touch": theirs[i, 3],
                    "ours_qty": totals[0][lane],
                    "ours_price": vwap.get(lane, np.nan),
                    "ours_levels": int(levels.get(lane, 0)),
                    "hbt_qty": theirs[i, 1],
                    "hbt_price": theirs[i, 0],
                }
            )
    ours_market_s = time.perf_counter() - t0
    market = pd.DataFrame(compare)
    market["fits"] = market["size"] <= market["touch"]
    market["same"] = np.isclose(market.ours_qty, market.hbt_qty) & np.isclose(market.ours_price, market.hbt_price)

    # Passive children: one contract at the touch, 50 s, no cross.
    passive_rows = []
    for side in (1, -1):
        theirs_p = np.zeros((len(decisions), 4))
        passive_hbt(hbt_backtest(data), decisions, side, WINDOW_NS, first, theirs_p)
        fills, _ = ours(events, decisions + LATENCY_NS, np.full(len(decisions), POST), np.ones(len(decisions)), side)
        fills = fills[fills.passive]
        for lane, t in enumerate(decisions):
            mine = fills[(fills.lane == lane) & (fills.time < t + WINDOW_NS)]
            hbt_filled = theirs_p[lane, 1] == 3
            passive_rows.append(
                {
                    "side": "buy" if side > 0 else "sell",
                    "posted": theirs_p[lane, 0],
                    "ours_filled": len(mine) > 0,
                    "hbt_filled": hbt_filled,
                    "ours_time": int(mine.time.iloc[0]) if len(mine) else 0,
                    "ours_price": float(mine.price.iloc[0]) if len(mine) else np.nan,
                    "hbt_time": int(theirs_p[lane, 2]) if hbt_filled else 0,
                    "hbt_price": theirs_p[lane, 3] if hbt_filled else np.nan,
                }
            )
    passive = pd.DataFrame(passive_rows)
    both = passive.ours_filled & passive.hbt_filled
    passive["dt_us"] = np.where(both, (passive.ours_time - passive.hbt_time) / 1e3, np.nan)
    # hftbacktest's fill stamp back to the exact stamp of the record it processed last.
    exact = exact_stamps(data)
    stamps = passive.hbt_time.to_numpy()
    after = np.clip(np.searchsorted(data["local_ts"], stamps), 1, len(data) - 1)
    # The nearest converted stamp (they are float-rounded by up to a microsecond either way).
    row = np.where(np.abs(data["local_ts"][after] - stamps) < np.abs(data["local_ts"][after - 1] - stamps), after, after - 1)
    passive["hbt_record"] = np.where(both | passive.hbt_filled, exact[row], 0)
    passive["same_record"] = both & (passive.hbt_record == passive.ours_time)
    report(events, market, passive, convert_s, hbt_market_s, ours_market_s, hftbacktest.__version__)


def _prints_at(events, stamp):
    """The prints stamped ``stamp``: whose fill (the aggressor's own, or a resting order's), where it rested, its price."""
    tick = events.tick_size
    out = []
    for k in np.flatnonzero((events.time == stamp) & (events.kind == PRINT)):
        o = events.order[k]
        placed = np.flatnonzero((events.order == o) & (events.time < stamp) & np.isin(events.kind, (ADD, MODIFY)))
        rested = f"{events.price[placed[-1]] * tick:.2f}" if len(placed) else "?"
        who = "aggressor's own" if events.aggressor[k] == 0 else "resting"
        side = "bid" if events.side[k] > 0 else "ask"
        out.append(f"{who} {side} (rested at {rested}) at {events.price[k] * tick:.2f}")
    return "; ".join(out) or "no print (a cancel or add)"


def _stamp(ns):
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").strftime("%H:%M:%S.%f")


def report(events, market, passive, convert_s, hbt_market_s, ours_market_s, version):
    info = machine_info(["hftbacktest", "numba", "numpy"])
    lines = [
        "# Peer check: our event replay against hftbacktest (ES MBO, 2023-12-25 17:00-18:00 CT)",
        "",
        f"hftbacktest {version}; {len(events)} events of {events.symbol}; {len(passive) // 2} decisions (1.5 s after "
        f"each minute from 17:01 CT); footprint off (one lane per child); orders arrive 1 microsecond after the decision in both.",
        f"Machine: {info['cpu']}, {info['cores']} cores, load {info['load_average'][0]:.1f}. Command: "
        "`flock /tmp/convexsched-heavy.lock .venv/bin/python benchmarks/peer_hftbacktest.py`.",
        "",
        "## Market children (marketable, each alone)",
        "",
    ]
    rows = []
    for (side, size), group in market.groupby(["side", "size"]):
        fits = group[group.fits]
        rows.append(
            [
                side,
                f"{size:g}",
                len(group),
                len(fits),
                int(fits.same.sum()),
                len(group) - len(fits),
                int((group[~group.fits].ours_levels > 1).sum()),
                f"{(group[~group.fits].hbt_price - group[~group.fits].ours_price).abs().mean():.3f}"
                if (~group.fits).any()
                else "-",
            ]
        )
    lines.append(
        markdown_table(
            [
                "side",
                "contracts",
                "children",
                "fit the touch",
                "same price and qty",
                "larger than the touch",
                "ours walk >1 level",
                "mean VWAP gap, abs (points)",
            ],
            rows,
            "llrrrrrr",
        )
    )
    fit = market[market.fits]
    lines += [
        "",
        f"Children within the touch: **{int(fit.same.sum())} of {len(fit)}** get the same price and quantity "
        "in both. Larger children: hftbacktest fills the whole quantity at the best price (its L3 exchange has "
        "no partial fills); ours walks the book, so its price is worse by the VWAP gap above.",
        "",
    ]
    mismatch = fit[~fit.same]
    if len(mismatch):
        lines += [
            "Mismatches within the touch:",
            "",
            markdown_table(
                ["side", "size", "touch", "ours qty", "ours price", "hbt qty", "hbt price"],
                [
                    [
                        r.side,
                        f"{r.size:g}",
                        f"{r.touch:g}",
                        f"{r.ours_qty:g}",
                        f"{r.ours_price:.2f}",
                        f"{r.hbt_qty:g}",
                        f"{r.hbt_price:.2f}",
                    ]
                    for r in mismatch.itertuples()
                ],
            ),
            "",
        ]
    lines += ["## Passive children (1 contract at the touch, alone, 50 s, no cross)", ""]
    rows = []
    for side, group in passive.groupby("side"):
        both = group.ours_filled & group.hbt_filled
        rows.append(
            [
                side,
                len(group),
                int(group.ours_filled.sum()),
                int(group.hbt_filled.sum()),
                int(both.sum()),
                int((group.ours_filled & ~group.hbt_filled).sum()),
                int((~group.ours_filled & group.hbt_filled).sum()),
                int(group.same_record.sum()),
                f"{group.dt_us[both].median():.1f}" if both.any() else "-",
            ]
        )
    lines.append(
        markdown_table(
            [
                "side",
                "children",
                "ours filled",
                "hbt filled",
                "both",
                "only ours",
                "only hbt",
                "same record",
                "median ours - hbt (us)",
            ],
            rows,
            "lrrrrrrrr",
        )
    )
    odd = passive[(passive.ours_filled != passive.hbt_filled) | (passive.ours_filled & passive.hbt_filled & ~passive.same_record)]
    if len(odd):
        lines += [
            "",
            "Children where the two differ (last column: the prints of the record at hftbacktest's fill):",
            "",
            markdown_table(
                ["side", "posted", "ours fill (UTC)", "ours price", "hbt fill (UTC)", "hbt price", "prints at hbt's fill"],
                [
                    [
                        r.side,
                        f"{r.posted:.2f}",
                        _stamp(r.ours_time) if r.ours_filled else "none",
                        f"{r.ours_price:.2f}",
                        _stamp(r.hbt_record or r.hbt_time) if r.hbt_filled else "none",
                        f"{r.hbt_price:.2f}",
                        _prints_at(events, r.hbt_record) if r.hbt_filled else "",
                    ]
                    for r in odd.itertuples()
                ],
            ),
        ]
    lines += [
        "",
        "Where hftbacktest fills first, the record it reacts to is the fill report of the aggressor's own "
        "order: it rested behind us at our price and was modified into the other side, so its fill prints at the "
        "other side's price before the record that moves it. Nobody traded at our price; ours fills at the next "
        "trade that reaches it.",
        "",
        "Fill times on the receive clock: ours is the triggering record's `ts_recv`; hftbacktest's fill stamp "
        "is mapped to the exact `ts_recv` of the nearest record. Same record: equal stamps.",
        "",
        "## Timings",
        "",
        markdown_table(
            ["step", "seconds"],
            [
                ["hftbacktest's Databento converter (68,792 records)", f"{convert_s:.1f}"],
                [f"hftbacktest, {len(market)} market children (with its numba compile)", f"{hbt_market_s:.2f}"],
                [f"ours, {len(market)} market children (2 kernel passes, one lane each)", f"{ours_market_s:.2f}"],
            ],
            "lr",
        ),
        "",
    ]
    write_results(RESULTS, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
