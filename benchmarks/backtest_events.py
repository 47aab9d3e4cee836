"""Event-level backtest: every strategy replayed through the SSE order flow, tactic by tactic.

Data: ``SHorders.zip`` + ``SHtrans.zip`` of ``shared/data/cn-equity-l2-dolphindb`` (five Shanghai
stocks, 2023-07-11, every order and trade), read with :func:`convexsched.read_events` and replayed
event by event (:class:`convexsched.ReplayExecutor`): our children take shares from specific
resting orders, the tape continues (drop rule), decisions see the book as our own fills left it
(closed loop), latency 0. 237 one-minute buckets of continuous trading.

Cases: 5 stocks x buy/sell x 1%, 5%, 10% of the stock's continuous-session traded volume (whole
lots of 100): 30 cases. Tactics: ``Sliced(6)`` (the headline), ``Market()`` and
``PassiveFirst(1, cross_at=50)``; every row of a tactic's table, TWAP included, is executed with
that tactic.

Rows: TWAP, Almgren-Chriss, scenario A/B/C (model-free), scenario A/B + footprint (the smoothing
weight raised by our own footprint's transient impact, measured in the replay before each decision,
(E24)), and the hindsight A/B *reference* (its
schedule solved on the realized tactic curves of the whole day: look-ahead, and not a bound once
our footprint persists). The ``default`` row (``scenario B``) was fixed before this script was
first run on these cases.

Costs are against the feed's own mid at each fill (our footprint's persistence stays in the cost),
in bps of the arrival notional; ``shortfall_bps`` adds the market's drift and is computed from the
fills log.

Run ``python benchmarks/backtest_events.py [--quick]`` (``--quick``: one stock, Sliced(6) only). It
writes ``benchmarks/results/backtest_events.md`` and ``backtest_events.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import convexsched as cs
from convexsched.data.events import PRINT, TRADE
from convexsched.execution.strategies import ScenarioStrategy, default_strategies

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info  # noqa: E402
from oracle_real_data import markdown  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = SHARED / "cn-equity-l2-dolphindb"
ES = SHARED / "es-futures-mbo-databento" / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
RESULTS = Path(__file__).resolve().parent / "results"
SYMBOLS = ("600536.SH", "600961.SH", "600761.SH", "605580.SH", "601825.SH")
FRACTIONS = (0.01, 0.05, 0.10)
SIDES = ("buy", "sell")
TACTICS = {"Sliced(6)": cs.Sliced(6), "Market()": cs.Market(), "PassiveFirst(1, 50s)": cs.PassiveFirst(1, 50.0)}
COLUMNS = [
    "default",
    "cost_bps",
    "vs_twap_bps",
    "hindsight_bps",
    "capture",
    "drift_bps",
    "shortfall_bps",
    "passive_share",
    "fills",
    "unfilled",
]


def strategies():
    """The model-free defaults plus the scenario steps that price our measured footprint (E24)."""
    return default_strategies(with_model=False) + [
        ScenarioStrategy("A", name="scenario A + footprint", footprint=True),
        ScenarioStrategy("B", name="scenario B + footprint", footprint=True),
    ]


def continuous_volume(events: cs.Events) -> float:
    """Shares traded in continuous trading (prints with an aggressor)."""
    trades = np.isin(events.kind, (TRADE, PRINT)) & (events.aggressor != 0)
    return float(events.qty[trades].sum())


def run_case(events, side, fraction, tactic):
    lot = 100.0 if events.lot > 1 else 1.0
    total = lot * max(1, round(fraction * continuous_volume(events) / lot))
    started = time.perf_counter()
    executor = cs.ReplayExecutor(events, side, tactic=tactic)
    built = time.perf_counter() - started
    table = cs.backtest(executor, total, strategies())
    elapsed = time.perf_counter() - started
    table = table[COLUMNS].copy()
    table.insert(0, "fraction", fraction)
    table.insert(0, "side", side)
    table.insert(0, "symbol", events.symbol)
    table["seconds"] = elapsed
    table["build_s"] = built
    return table


def speed(streams):
    """Seconds to replay one day of TWAP with Sliced(6) (237 buckets x 6 children), after a warm-up."""
    lines = ["| stream | events | orders | build s | TWAP day s |", "|---|---:|---:|---:|---:|"]
    for symbol, events in streams.items():
        best_build, best_run = np.inf, np.inf
        for _ in range(3):
            started = time.perf_counter()
            executor = cs.ReplayExecutor(events, "buy", tactic=cs.Sliced(6))
            built = time.perf_counter()
            for i in range(len(executor)):
                executor.fill(i, 1000.0)
            best_build, best_run = min(best_build, built - started), min(best_run, time.perf_counter() - built)
        lines.append(f"| {symbol} | {len(events):,} | {events.n_orders:,} | {best_build:.3f} | {best_run:.3f} |")
    return "\n".join(lines) + "\n\n(best of 3, kernels compiled; build = the opening book and the day's scan)"


def summary(frame):
    rows = []
    for (market, tactic, strategy), group in frame.groupby(["market", "tactic", "strategy"], sort=False):
        rows.append(
            {
                "market": market,
                "tactic": tactic,
                "strategy": strategy,
                "default": bool(group["default"].iloc[0]),
                "cases": len(group),
                "cost_bps": group["cost_bps"].mean(),
                "vs_twap_bps": group["vs_twap_bps"].mean(),
                "cheaper_than_twap": int((group["vs_twap_bps"] < 0).sum()),
                "capture_vs_reference": group["capture"].median(),
                "shortfall_bps": group["shortfall_bps"].mean(),
                "passive_share": group["passive_share"].mean(),
                "unfilled": group["unfilled"].max(),
            }
        )
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one stock, Sliced(6) only")
    parser.add_argument("--tactic", choices=sorted(TACTICS), action="append", help="only these tactics (repeatable)")
    args = parser.parse_args(argv)
    symbols = SYMBOLS[2:3] if args.quick else SYMBOLS
    chosen = ["Sliced(6)"] if args.quick else (args.tactic or list(TACTICS))
    tactics = {label: TACTICS[label] for label in chosen}
    started = time.perf_counter()
    streams = {symbol: cs.read_events(DATA, symbol=symbol) for symbol in symbols}
    if not args.quick:
        streams["ESH4"] = cs.read_events(ES)
    read_s = time.perf_counter() - started
    frames = []
    for label, tactic in tactics.items():
        for symbol, events in streams.items():
            for side in SIDES:
                for fraction in FRACTIONS:
                    table = run_case(events, side, fraction, tactic)
                    table.insert(0, "tactic", label)
                    table.insert(0, "market", "CME ES hour" if symbol == "ESH4" else "SSE day")
                    frames.append(table.reset_index())
                    default = table[table["default"]].iloc[0]
                    print(
                        f"{label:>20} {symbol} {side:4} {fraction:4.0%}: TWAP {table.loc['TWAP', 'cost_bps']:6.2f} bps, "
                        f"default {default['cost_bps']:6.2f} ({default['vs_twap_bps']:+.2f}), {table['seconds'].iloc[0]:.1f} s",
                        flush=True,
                    )
    frame = pd.concat(frames, ignore_index=True)
    RESULTS.mkdir(exist_ok=True)
    name = "backtest_events_quick" if args.quick else "backtest_events" if not args.tactic else "backtest_events_partial"
    frame.to_csv(RESULTS / f"{name}.csv", index=False)
    table = summary(frame)
    total_s = time.perf_counter() - started
    n_events = {symbol: len(events) for symbol, events in streams.items()}
    with open(RESULTS / f"{name}.md", "w") as out:
        out.write("# Event-level backtest (SSE order and trade files, 2023-07-11)\n\n")
        info = machine_info(["numpy", "numba", "pandas"])
        out.write(
            f"`python benchmarks/backtest_events.py{' --quick' if args.quick else ''}` on {info['cpu']} "
            f"({info['cores']} cores), Python {info['python']}, {info['versions']}; "
            f"{len(frame) // len(table) if len(table) else 0} cases per row, "
            f"read {read_s:.1f} s, total {total_s:.0f} s (numba compile included on a cold cache).\n"
        )
        out.write(
            "Closed loop, latency 0, drop rule; costs against the feed's mid at each fill, bps of arrival notional; "
            "`capture_vs_reference` is the median of (TWAP - strategy) / (TWAP - hindsight A reference).\n\n"
        )
        out.write(markdown(table.set_index("market"), ".3f") + "\n\n")
        out.write("Events per stock: " + ", ".join(f"{s} {n:,}" for s, n in n_events.items()) + "\n\n")
        per_case = frame[frame["default"]][["tactic", "symbol", "side", "fraction", "cost_bps", "vs_twap_bps", "seconds"]]
        out.write("## The default row, case by case\n\n" + markdown(per_case.set_index("tactic"), ".3f") + "\n\n")
        out.write("## Replay speed\n\n" + speed(streams) + "\n")
    print(table.to_string(index=False))
    print(f"total {total_s:.0f} s")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
