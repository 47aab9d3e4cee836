"""How long our footprint lasts in the SSE event replay: the excess cost of a sweep after ours.

For each of the five SSE stocks of 2023-07-11, a buy sweep of 10% and of 30% of the opening
book's visible ask depth (whole lots) is followed after 0-300 s by a probe of the same size; the
probe's excess cost over the same probe on the feed's own book is averaged over windows every
10 minutes and fitted as exponential resilience (:mod:`convexsched.execution.resilience`, (E24)).

Run ``python benchmarks/resilience_events.py``; it writes ``benchmarks/results/resilience_events.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import convexsched as cs
from convexsched.execution.resilience import measure_resilience

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backtest_events import DATA, SYMBOLS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main():
    lines = [
        "# Footprint resilience in the SSE event replay",
        "",
        "`python benchmarks/resilience_events.py`: excess cost (CNY) of a probe after a sweep of the same size, "
        "mean over windows every 10 minutes; half-life `h` and strength `k` of the fitted propagator (E24); "
        "`rho_eff` for one-minute buckets.",
        "",
        "| stock | sweep (shares) | excess at 0 / 10 / 60 / 300 s | h (s) | k (CNY/share^2) | rho_eff |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for symbol in SYMBOLS:
        executor = cs.ReplayExecutor(cs.read_events(DATA, symbol=symbol), "buy")
        opening = float(executor.depth[[executor.usable(i) for i in range(len(executor))]].iloc[0])
        for share in (0.1, 0.3):
            size = 100.0 * max(1, round(share * opening / 100))
            measured = measure_resilience(executor, size, size, every=301.0)
            mean = np.nanmean(measured.excess, axis=0)
            at = [mean[list(measured.delays).index(d)] for d in (0.0, 10.0, 60.0, 300.0)]
            half_life, strength = measured.fit()
            line = (
                f"| {symbol} | {size:,.0f} | {' / '.join(f'{v:.2f}' for v in at)} | {half_life:.0f} | "
                f"{strength:.2e} | {measured.rho():.2e} |"
            )
            print(line, flush=True)
            lines.append(line)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "resilience_events.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
