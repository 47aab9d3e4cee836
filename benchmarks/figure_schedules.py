"""The README's picture: objectives A, B and C on the synthetic book's oracle curves.

Run: ``python benchmarks/figure_schedules.py`` -> ``benchmarks/results/schedules.png``.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import convexsched as cs

OUT = Path(__file__).resolve().parent / "results" / "schedules.png"


def main():
    book = cs.synthetic_book(seed=0)
    depth = book.frame.filter(regex="ask_sz_").sum(axis=1).median()
    train_sizes = np.linspace(depth / 16, 2 * depth, 16)
    # The first minute has no 60-second volatility yet; the oracle refuses NaN, so drop it.
    table = cs.impact_table(book, train_sizes, side="buy").dropna(subset=["volatility"])
    oracle = cs.ImpactOracle(random_state=0).fit(table, table["slippage"])
    states = cs.bucket_features(book, "1min").ffill().bfill()
    grid = np.linspace(0, depth, 65)
    curves = oracle.cost_curves(states, grid)
    total = 0.25 * curves.capacity.sum()
    price = float(np.median(curves.slopes))
    objectives = {
        "A: cost only": cs.Objective.cost_only(),
        "B: + rho/2 x^2": cs.Objective.smoothed(2 * price / depth),
        "C: + psi/2 w R^2": cs.Objective.inventory_risk(0.05 * price / total),
    }
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for label, objective in objectives.items():
        schedule = cs.solve(curves, total, objective)
        assert schedule.kkt.ok, schedule.kkt
        x = schedule.x.tz_localize(None)
        top.plot(x.index, x.to_numpy(), lw=1, label=f"{label} (lambda = {schedule.multiplier:.4f})")
        bottom.plot(x.index, schedule.remaining.to_numpy(), lw=1.5, label=label)
    top.set_ylabel("shares per minute")
    top.set_title(f"Buying {total:,.0f} shares over {len(curves)} one-minute buckets (synthetic book, oracle curves)")
    top.legend(fontsize="small")
    bottom.set_ylabel("remaining inventory R_i")
    bottom.set_xlabel("time (New York)")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
