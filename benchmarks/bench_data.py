"""Benchmark the data layer: state features (E17) and book-walk labels for a full day of 3-s snapshots.

Target (issue 3): features + walk-the-book slippage for ~8,000 snapshots x a 64-point size grid
in under 1 s. Times are medians of ``--repeats`` runs on the synthetic default day (7,800 rows,
10 levels) and, when ``../shared/data`` is present, on the real Shenzhen book of 300274.SZ.
The table goes to ``benchmarks/results/data.md``. Run::

    python benchmarks/bench_data.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from _common import median_seconds

import convexsched as cs

N_SIZES = 64
TARGET_S = 1.0
RESULTS = Path(__file__).resolve().parent / "results" / "data.md"
TICK_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "cn-equity-l2-dolphindb" / "tick.zip"


def size_grid(book):
    """64 sizes from 0 to twice the median displayed ask depth (so some walks extrapolate)."""
    depth = book.frame.filter(regex="ask_sz_").sum(axis=1).median()
    return np.linspace(0.0, 2 * depth, N_SIZES)


def bench_book(label, book, repeats):
    sizes = size_grid(book)
    steps = {
        "book_features": lambda: cs.book_features(book),
        "walk_book (buy)": lambda: cs.walk_book(book, sizes, "buy"),
        "features + walk (target)": lambda: (cs.book_features(book), cs.walk_book(book, sizes, "buy")),
        "impact_table (long, n x 64 rows)": lambda: cs.impact_table(book, sizes, "buy"),
        "bucket_features (1 min)": lambda: cs.bucket_features(book, "1min"),
    }
    rows = []
    for step, function in steps.items():
        function()  # warm-up: first-call imports and caches are not the steady state
        seconds = median_seconds(function, repeats)
        rows.append((label, len(book), step, seconds, len(book) / seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    rows = bench_book("synthetic_book(seed=0), 3 s", cs.synthetic_book(seed=0), args.repeats)
    if TICK_ZIP.is_file():
        start = time.perf_counter()
        real = cs.read_book(TICK_ZIP, symbol="300274.SZ")
        load = time.perf_counter() - start
        rows += bench_book("tick.zip 300274.SZ (real)", real, args.repeats)
        rows.append(("tick.zip (all 5 stocks)", 20980, "read_book (cold, 1 run)", load, 20980 / load))

    lines = [
        "# Data layer benchmark",
        "",
        f"Features and book-walk labels, {N_SIZES}-point size grid, median of {args.repeats} runs. "
        f"Target: features + walk under {TARGET_S:.0f} s for ~8,000 snapshots.",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}.",
        "",
        "| book | snapshots | step | median time (ms) | snapshots / s |",
        "|---|---:|---|---:|---:|",
    ]
    lines += [f"| {b} | {n:,} | {s} | {sec * 1e3:.1f} | {rate:,.0f} |" for b, n, s, sec, rate in rows]
    target = [sec for _, _, s, sec, _ in rows if s.endswith("(target)")]
    verdict = "PASS" if max(target) < TARGET_S else "FAIL"
    lines += ["", f"Target {verdict}: features + walk took at most {max(target) * 1e3:.1f} ms."]
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
