"""Backtest of every strategy on real SZSE Level-2 books against the hindsight bound, no look-ahead.

Data: ``tick.zip`` of ``shared/data/cn-equity-l2-dolphindb`` (five Shenzhen stocks, 2022-06-01,
10-level 3-s snapshots), one-minute buckets over the continuous session only (237 buckets,
lunch break skipped). Buy orders of 1%, 5% and 10% of each stock's continuous-session volume:
15 cases.

Every case reports the hindsight optimum (objective A solved on the realized book-walk curves
and executed through the same executor) and each strategy's capture
``(TWAP - strategy) / (TWAP - hindsight)``.

No look-ahead: the scenario horizons read the snapshot each slice walks and the books of earlier
minutes only (tested in ``tests/execution/test_scenario.py``). For the model-based strategies the impact
oracle is fitted on the other four stocks' impact tables and the seasonal state profile on the
other four stocks' bucket features (leave-one-stock-out).

Execution: each slice walks the first usable snapshot of its bucket (:mod:`convexsched.execution`),
once with fresh books every minute (half-life 0) and once with depletion and resilience at a
half-life of 60 s. Run ``python benchmarks/backtest_real_data.py`` (about two minutes); it
rewrites ``benchmarks/results/backtest.md``, ``backtest.csv`` and ``backtest.png``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from convexsched import BookExecutor, ImpactOracle, LiveCurves, StateForecast, backtest, bucket_features  # noqa: E402
from convexsched.execution.strategies import (  # noqa: E402
    TWAP,
    AlmgrenChriss,
    DepthProportional,
    RecedingStrategy,
    ScenarioStrategy,
    StaticPlan,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_real_data import load_tables, markdown  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (0.01, 0.05, 0.10)
HALF_LIVES = (0.0, 60.0)
PLOT_STOCK, PLOT_FRACTION = "000400.SZ", 0.05
NORMALIZED = ("spread", "depth", "volatility")
# Scenario A's guardrails around the defaults (pool, warmup, pace_cap), model-free and quick.
SENSITIVITY = [
    dict(),
    dict(pool=10),
    dict(pool=60),
    dict(warmup=0),
    dict(warmup=15),
    dict(pace_cap=2.0),
    dict(pace_cap=None),
    dict(participation=None),
    dict(participation=0.5),
]


def strategies(forecast):
    return [
        TWAP(),
        AlmgrenChriss(),
        DepthProportional(),
        StaticPlan("A"),
        StaticPlan("B"),
        StaticPlan("C"),
        RecedingStrategy("A", horizon=30),
        RecedingStrategy("A", horizon="all"),
        RecedingStrategy("A", horizon=30, cost_to_go="lambda"),
        RecedingStrategy("A", horizon=30, cost_to_go=None),
        RecedingStrategy("B", horizon=30),
        RecedingStrategy("C", horizon=30),
        ScenarioStrategy("A"),
        ScenarioStrategy("B"),
        ScenarioStrategy("C"),
        ScenarioStrategy("A", name="scenario A + profile", profile=forecast),
    ]


def state_profile(books, symbols):
    """Seasonal state shape of ``symbols``: bucket features divided by each stock's median."""
    frames = []
    for symbol in symbols:
        features = bucket_features(books[symbol]).dropna(subset=["mid"])
        features[list(NORMALIZED)] = features[list(NORMALIZED)] / features[list(NORMALIZED)].median()
        frames.append(features)
    return StateForecast().fit(pd.concat(frames))


def main():
    started = time.perf_counter()
    books, table = load_tables()
    rows, records_for_plot, sensitivity = [], None, []
    # Seconds per half-life pass: model fits and curve building count once, in the first pass.
    spent = dict.fromkeys(HALF_LIVES, 0.0)
    for held_out in sorted(books):
        book = books[held_out]
        setup = time.perf_counter()
        train = table[table["symbol"] != held_out]
        oracle = ImpactOracle(random_state=0).fit(train, train["slippage"])
        forecast = state_profile(books, [s for s in books if s != held_out])
        curves = LiveCurves(BookExecutor(book, "buy"), oracle, forecast, relative=True)
        spent[HALF_LIVES[0]] += time.perf_counter() - setup
        volume = float(bucket_features(book)["volume"].sum())
        for fraction in FRACTIONS:
            total = round(fraction * volume, -2)
            for half_life in HALF_LIVES:
                clock = time.perf_counter()
                executor = BookExecutor(book, "buy", half_life=half_life)
                result, records = backtest(executor, total, strategies(forecast), model=curves, return_records=True)
                spent[half_life] += time.perf_counter() - clock
                result = result.assign(stock=held_out, fraction=fraction, S=total, half_life=half_life)
                rows.append(result.reset_index())
                if held_out == PLOT_STOCK and fraction == PLOT_FRACTION and half_life == 0:
                    records_for_plot = records
                print(
                    f"{held_out} {fraction:.0%} half-life {half_life:g}s: TWAP {result.loc['TWAP', 'cost_bps']:.2f}, "
                    f"hindsight {result.loc['hindsight A', 'cost_bps']:.2f}, scenario A "
                    f"{result.loc['scenario A', 'cost_bps']:.2f} bps (capture {result.loc['scenario A', 'capture']:.2f}) "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
            executor = BookExecutor(book, "buy")
            for settings in SENSITIVITY:
                label = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
                result = backtest(executor, total, [ScenarioStrategy("A", name=label, **settings)])
                sensitivity.append(
                    {
                        "settings": label,
                        "stock": held_out,
                        "fraction": fraction,
                        "vs_twap_bps": result.loc[label, "vs_twap_bps"],
                        "capture": result.loc[label, "capture"],
                    }
                )
    frame = pd.concat(rows, ignore_index=True)
    frame.to_csv(RESULTS / "backtest.csv", index=False)
    write_report(frame, pd.DataFrame(sensitivity), time.perf_counter() - started, spent)
    plot(records_for_plot)


def summarize(frame):
    """Mean over the cases of one half-life, with wins and the worst case against TWAP."""
    order = list(dict.fromkeys(frame["strategy"]))
    grouped = frame.groupby("strategy", sort=False)
    mean = grouped[["cost_bps", "vs_twap_bps", "hindsight_bps", "capture", "shortfall_bps"]].mean()
    wins = frame.assign(win=frame["vs_twap_bps"] < -1e-9).groupby("strategy", sort=False)["win"].sum()
    cases = frame.groupby("strategy", sort=False).size()
    worst = grouped["vs_twap_bps"].max().rename("worst_vs_twap_bps")
    beats = wins.astype(int).astype(str) + "/" + cases.astype(str)
    twap, bound = mean.loc["TWAP", "cost_bps"], mean.loc["TWAP", "hindsight_bps"]
    # Capture of the mean costs: big cases weigh more than in the mean of per-case captures.
    pooled = ((twap - mean["cost_bps"]) / (twap - bound)).rename("capture_of_mean")
    return mean.join(pooled).join(worst).assign(beats_twap=beats).reindex(order)


def write_report(frame, sensitivity, seconds, spent):
    fresh, resilient = (frame[frame["half_life"] == h] for h in HALF_LIVES)
    order = list(dict.fromkeys(fresh["strategy"]))
    by_size = fresh.pivot_table(index="strategy", columns="fraction", values="capture").reindex(order)
    per_case = fresh.pivot_table(index=["stock", "fraction"], columns="strategy", values="cost_bps")[order]
    sens = sensitivity.groupby("settings", sort=False).agg(
        mean_vs_twap_bps=("vs_twap_bps", "mean"),
        worst_vs_twap_bps=("vs_twap_bps", "max"),
        beats_twap=("vs_twap_bps", lambda v: f"{int((v < -1e-9).sum())}/{len(v)}"),
        capture=("capture", "mean"),
    )
    lines = [
        "# Backtest on real order books: cost, the hindsight bound and capture",
        "",
        "Regenerate with `python benchmarks/backtest_real_data.py` "
        f"(took {seconds / 60:.1f} min on this machine for both half-lives and the sensitivity grid; the 15-case "
        f"backtest of every strategy at half-life 0, oracle fits and curve building included, took "
        f"{spent[HALF_LIVES[0]]:.0f} s, at half-life 60 s another {spent[HALF_LIVES[1]]:.0f} s). Data: `tick.zip`, "
        "SZSE Level-2, 2022-06-01, five stocks, one-minute buckets over the continuous session (237 buckets, lunch "
        "skipped). Buy orders of 1%, 5% and 10% of each stock's continuous-session traded volume: 15 cases.",
        "",
        "**The bound.** `hindsight A` solves objective (A) on the realized book-walk curves of every minute "
        "(it sees the whole day) and executes through the same executor; with fresh books (half-life 0) no strategy "
        "can be cheaper. `capture = (TWAP - strategy) / (TWAP - hindsight A)`: 1 is the bound, 0 is TWAP.",
        "",
        "**No look-ahead.** The scenario horizons (`scenario A/B/C`, no model) read the snapshot each slice walks "
        "and the books of earlier minutes only. The model-based strategies use an `ImpactOracle` fitted on the "
        "other four stocks and a state profile from the other four stocks' normalized bucket features.",
        "",
        "**Execution.** Each bucket's slice walks the first usable snapshot of its bucket. Cost = book-walk cost "
        "against that snapshot's mid, in bps of the arrival notional. `shortfall_bps` adds the price drift since "
        "arrival (the same market path for all; timing luck, not skill). With resilience, what a slice takes from a "
        "price level comes back with a 60 s half-life, so hitting the same thin book minute after minute costs more.",
        "",
        "Strategies: TWAP; Almgren-Chriss (kT = 2); depth-proportional; static plans A, B, C (morning oracle view); "
        "certainty-equivalent receding horizons `RH` (H = 30 with the exact cost-to-go, the shrinking horizon, "
        "the lambda tail, the literal window (E8), B and C); the scenario receding horizons with their "
        "defaults (pool of the last 30 minutes' books, 5 warm-up minutes at the even pace, at most 4x the even pace "
        "and 1x the displayed depth per minute), and scenario A with its pool re-weighted by the depth profile of the "
        "other four stocks (`profile=`); the hindsight bounds A and B (B with the arrival book's curvature).",
        "",
        "## Mean over the 15 cases, fresh books (half-life 0)",
        "",
        markdown(summarize(fresh), ".3f"),
        "",
        "## Mean over the 15 cases, depletion and resilience (half-life 60 s)",
        "",
        markdown(summarize(resilient), ".3f"),
        "",
        "## Capture by order size (mean over 5 stocks, half-life 0)",
        "",
        markdown(by_size.rename(columns=lambda f: f"{f:.0%} of volume"), ".3f"),
        "",
        "## Scenario A's guardrails: sensitivity (half-life 0, 15 cases)",
        "",
        "The defaults (pool 30, warm-up 5, pace cap 4, participation 1) were set before the first run and not "
        "tuned on it; the grid shows how much they matter.",
        "",
        markdown(sens, ".3f"),
        "",
        "## Realized cost per case (bps, half-life 0)",
        "",
        markdown(per_case.T, ".2f"),
        "",
        f"![schedules of {PLOT_STOCK} at {PLOT_FRACTION:.0%}](backtest.png)",
        "",
    ]
    (RESULTS / "backtest.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / 'backtest.md'}")


def plot(records):
    names = ["TWAP", "RH A H=30 (fast)", "scenario A", "hindsight A"]
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for name, color in zip(names, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        record = records[name]
        positions = np.arange(len(record.x))
        axes[0].plot(positions, record.x.to_numpy(), lw=1, color=color, label=f"{name}: {record.cost_bps:.2f} bps")
        axes[1].plot(positions, record.remaining.to_numpy() / record.total, lw=1, color=color, label=name)
        if record.steps is not None:
            axes[2].plot(positions, record.steps["lambda"].to_numpy(), lw=1, color=color, label=name)
    axes[0].set_ylabel("shares per bucket")
    axes[0].set_yscale("symlog", linthresh=1000)
    axes[0].legend(fontsize="small")
    axes[1].set_ylabel("inventory / S")
    axes[2].set_ylabel("water level lambda (CNY/share)")
    axes[2].legend(fontsize="small")
    axes[2].set_xlabel("one-minute bucket (continuous session)")
    axes[0].set_title(f"{PLOT_STOCK}, buy {PLOT_FRACTION:.0%} of volume: TWAP, certainty-equivalent RH, scenario RH, bound")
    fig.tight_layout()
    fig.savefig(RESULTS / "backtest.png", dpi=110)
    print(f"wrote {RESULTS / 'backtest.png'}")


if __name__ == "__main__":
    with threadpool_limits(limits=1, user_api="openmp"):
        main()
