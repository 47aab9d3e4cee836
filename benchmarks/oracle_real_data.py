"""Out-of-sample accuracy of the impact oracle on real SZSE Level-2 books, against two baselines.

Data: ``tick.zip`` of ``shared/data/cn-equity-l2-dolphindb`` (see its PROVENANCE.md): 10-level
3-second snapshots of five Shenzhen stocks, 2022-06-01, continuous session. Each snapshot is
walked for a grid of buy sizes (:func:`convexsched.data.slippage.impact_table`, cost in CNY against
the mid). Rows whose size exceeds the displayed ask depth are dropped: their cost is an
extrapolation rule, not data.

Protocol (leave one stock out, time-ordered): for every stock S, fit the oracle and both
baselines on the other four stocks *before* ``CUT``, then score them on

* "later times": the four training stocks from ``CUT + EMBARGO`` on (the embargo keeps the 60-s
  volatility window of a test row clear of training rows);
* "held-out stock": S over the whole session (never seen, at any time);
* "held-out stock, later times": S from ``CUT + EMBARGO`` on.

Metrics are MAE and R^2 of the total cost in CNY (the oracle's target and the optimizer's
unit) and of the cost per share in basis points of the mid (comparable across prices and
sizes). The oracle's own early stopping splits its training rows by time as well. Finally the
oracle's curves for S's one-minute buckets are convexified with every method and the deviation
reported.

Next-minute forecast: where a schedule needs the oracle is a bucket not yet seen. For every
one-minute bucket t of the held-out stock, the cost of the sizes at bucket t+1's execution
snapshot (the book its slice walks) is forecast from bucket t's snapshot by (a) the naive "the
next minute's curve equals the last book" (walk bucket t's book), (b) the oracle on the state
features (E17), (c) the oracle with the traded side's book features (``features="book"``), both
fitted on the other four stocks. Run ``python benchmarks/oracle_real_data.py`` (one to two
minutes); it rewrites ``benchmarks/results/oracle.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import write_results
from sklearn.metrics import mean_absolute_error, r2_score

from convexsched import BookExecutor, HalfSpreadImpact, ImpactOracle, SquareRootImpact
from convexsched.data.features import SIDE_FEATURES, book_features, bucket_features, side_features
from convexsched.data.loaders import read_books
from convexsched.data.slippage import impact_table, walk_book
from convexsched.model.convexify import CONVEXIFY_METHODS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cn-equity-l2-dolphindb" / "tick.zip"
RESULTS = Path(__file__).resolve().parent / "results" / "oracle.md"
SIZES = np.array([100, 200, 500, 1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000], dtype=float)
CUT = "13:30"
EMBARGO = pd.Timedelta("5min")
CURVE_GRID = np.arange(0, 20001, 200.0)


def load_tables():
    books = read_books(DATA)
    tables = []
    for symbol, book in books.items():
        table = impact_table(book, SIZES, side="buy")
        table = table[~table["beyond_depth"]].dropna(subset=["volatility"])
        tables.append(table.assign(symbol=symbol))
    return books, pd.concat(tables, ignore_index=True)


def models():
    return {
        "oracle (GB)": ImpactOracle(random_state=0),
        "half-spread": HalfSpreadImpact(),
        "square-root law": SquareRootImpact(price="mid"),
    }


def scores(table, predicted):
    bps = 1e4 / (table["size"] * table["mid"])
    return {
        "MAE (CNY)": mean_absolute_error(table["slippage"], predicted),
        "R2 (CNY)": r2_score(table["slippage"], predicted),
        "MAE (bps)": mean_absolute_error(table["slippage"] * bps, predicted * bps),
        "R2 (bps)": r2_score(table["slippage"] * bps, predicted * bps),
    }


def evaluate(books, table):
    timestamps = table["timestamp"]
    cut = timestamps.dt.normalize() + pd.Timedelta(f"{CUT}:00")
    early, late = timestamps < cut, timestamps >= cut + EMBARGO
    rows, curve_rows = [], []
    for held_out in sorted(table["symbol"].unique()):
        own = table["symbol"] == held_out
        train = table[~own & early]
        tests = {
            "later times": table[~own & late],
            "held-out stock": table[own],
            "held-out stock, later times": table[own & late],
        }
        for name, model in models().items():
            start = time.perf_counter()
            model.fit(train, train["slippage"])
            seconds = time.perf_counter() - start
            for test_name, test in tests.items():
                rows.append(
                    {
                        "held_out": held_out,
                        "test": test_name,
                        "model": name,
                        "fit_s": seconds,
                        "n": len(test),
                        **scores(test, model.predict(test)),
                    }
                )
            if isinstance(model, ImpactOracle):
                states = bucket_features(books[held_out]).dropna()
                for method in CONVEXIFY_METHODS:
                    _, report = model.cost_curves(states, CURVE_GRID, convexify=method, return_report=True)
                    curve_rows.append(
                        {
                            "held_out": held_out,
                            "method": method,
                            "relative_l2": report.relative_l2,
                            "max": report.max,
                            "clipped": int(report.per_bucket["clipped"].sum()),
                        }
                    )
        print(f"held out {held_out}: done")
    return pd.DataFrame(rows), pd.DataFrame(curve_rows)


def next_minute(books, table):
    """Forecast bucket t+1's walk cost from bucket t: last book vs the oracle (module docstring)."""
    rows = []
    for held_out in sorted(books):
        book = books[held_out]
        train = table[table["symbol"] != held_out]
        oracles = {
            name: ImpactOracle(random_state=0, features=features).fit(train, train["slippage"])
            for name, features in (("oracle, state features", "state"), ("oracle, book features", "book"))
        }
        executor = BookExecutor(book, "buy")
        now, nxt = executor.rows[:-1], executor.rows[1:]
        keep = (now >= 0) & (nxt >= 0)
        now, nxt = now[keep], nxt[keep]
        walked = walk_book(book, SIZES, "buy")
        actual = walked.to_numpy()[nxt]
        depth = book.frame[[c for c in book.frame.columns if c.startswith("ask_sz")]].to_numpy().sum(axis=1)
        inside = SIZES[None, :] <= depth[nxt][:, None]
        state = book_features(book).join(side_features(book, "buy")).iloc[now]
        state = state.assign(volatility=state["volatility"].fillna(0.0))
        design = state.loc[state.index.repeat(len(SIZES))].reset_index(drop=True)
        design.insert(0, "size", np.tile(SIZES, len(state)))
        predictions = {"naive: last book": walked.to_numpy()[now]}
        for name, oracle in oracles.items():
            predictions[name] = oracle.predict(design).reshape(len(state), len(SIZES))
        mid = book_features(book)["mid"].to_numpy()[nxt][:, None]
        bps = 1e4 / (SIZES[None, :] * mid)
        truth = (actual * bps)[inside]
        for name, predicted in predictions.items():
            guess = (predicted * bps)[inside]
            rows.append(
                {
                    "held_out": held_out,
                    "forecast": name,
                    "n": int(inside.sum()),
                    "MAE (bps)": float(np.mean(np.abs(guess - truth))),
                    "R2 (bps)": float(r2_score(truth, guess)),
                    "MAE (CNY)": float(np.mean(np.abs(predicted[inside] - actual[inside]))),
                }
            )
    return pd.DataFrame(rows)


def markdown(frame, floatfmt):
    """A pipe table (pandas' ``to_markdown`` needs the optional ``tabulate`` package)."""
    frame = frame.reset_index()
    header = [" / ".join(str(p) for p in c if p) if isinstance(c, tuple) else str(c) for c in frame.columns]

    def cell(value):
        return format(value, floatfmt) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def verdict(summary):
    """One line per test set: does the oracle have the best mean of each metric?"""
    lines = []
    for test in summary.index.get_level_values("test").unique():
        block = summary.loc[test]
        best = {m: (block[m].idxmin() if m.startswith("MAE") else block[m].idxmax()) for m in block.columns}
        lost = [
            f"{m} (best: {model}, {block.loc[model, m]:.4g} vs oracle {block.loc['oracle (GB)', m]:.4g})"
            for m, model in best.items()
            if model != "oracle (GB)"
        ]
        status = "oracle best on every metric" if not lost else "oracle NOT best on " + "; ".join(lost)
        lines.append(f"- {test}: {status}.")
    return lines


def main():
    books, table = load_tables()
    results, curves = evaluate(books, table)
    metrics = ["MAE (CNY)", "R2 (CNY)", "MAE (bps)", "R2 (bps)"]
    summary = results.groupby(["test", "model"], sort=False)[metrics].mean()
    wins = results.pivot_table(index=["test", "held_out"], columns="model", values="MAE (CNY)")
    beat = (wins["oracle (GB)"] < wins[["half-spread", "square-root law"]].min(axis=1)).groupby("test").agg(["sum", "size"])
    per_stock = results[results["test"] == "held-out stock"].pivot_table(
        index="held_out", columns="model", values=["MAE (bps)", "R2 (bps)"]
    )
    convex = curves.groupby("method", sort=False)[["relative_l2", "max", "clipped"]].mean()
    print(summary.to_string())
    ahead = next_minute(books, table)
    ahead_mean = ahead.groupby("forecast", sort=False)[["MAE (bps)", "R2 (bps)", "MAE (CNY)"]].mean()
    ahead_per_stock = ahead.pivot_table(index="held_out", columns="forecast", values="MAE (bps)")
    print(ahead_mean.to_string())

    counts = table.groupby("symbol").size()
    lines = [
        "# Impact oracle on real order books: out-of-sample accuracy",
        "",
        "Regenerate with `python benchmarks/oracle_real_data.py`. Data: `tick.zip` (SZSE Level-2, 10-level "
        "3-s snapshots, 2022-06-01, five stocks, continuous session; see the data folder's PROVENANCE.md). "
        f"Buy sizes {', '.join(str(int(s)) for s in SIZES)} shares, walked through the ask side; rows beyond "
        f"the displayed ask depth dropped. Rows per stock: {', '.join(f'{k} {v}' for k, v in counts.items())}.",
        "",
        f"Protocol: leave one stock out, time-ordered. Train on the other four stocks before {CUT}; test on "
        f'those four from {CUT} + {int(EMBARGO.total_seconds() // 60)} min ("later times"), on the held-out '
        "stock all day, and on the held-out stock at later times. Numbers are means over the five folds. "
        "The oracle is `ImpactOracle(random_state=0)` with defaults (vol_ratio feature, bps target, "
        "time-ordered early stopping on its own training rows); the square-root law uses the mid as price "
        "level and its `c` is fitted by least squares on the same training rows.",
        "",
        "## Mean over folds",
        "",
        markdown(summary, ".4g"),
        "",
        *verdict(summary),
        "",
        "Folds where the oracle has the lowest CNY MAE of the three (of 5):",
        "",
        markdown(beat.rename(columns={"sum": "oracle best", "size": "folds"}), "g"),
        "",
        "CNY MAE per fold (the mean is dominated by the large-cost folds):",
        "",
        markdown(wins, ".4g"),
        "",
        "## Held-out stock, per stock (bps of mid)",
        "",
        markdown(per_stock, ".3g"),
        "",
        "## Convexifying the oracle's curves",
        "",
        f"Oracle predictions on a grid 0..{int(CURVE_GRID[-1])} shares (step {int(CURVE_GRID[1])}) for the "
        "held-out stock's one-minute bucket states (`bucket_features`, mean per bucket), convexified; mean "
        "over folds of the deviation from the raw predictions (relative L2, max in CNY, slopes clipped to 0).",
        "",
        markdown(convex, ".4g"),
        "",
        "## Next minute: the oracle against the last book",
        "",
        "For every one-minute bucket t of the held-out stock, forecast the walk cost of bucket t+1's execution "
        "snapshot (sizes within its displayed ask depth) from bucket t's snapshot: the naive forecast walks "
        "bucket t's book; the oracles (fitted on the other four stocks, all day) read bucket t's state features (E17) "
        f"only or with the traded side's book features ({', '.join(SIDE_FEATURES)}, size / side_depth_5). "
        "Mean over the five held-out stocks:",
        "",
        markdown(ahead_mean, ".4g"),
        "",
        "MAE (bps) per held-out stock:",
        "",
        markdown(ahead_per_stock, ".4g"),
        "",
        "Where the book is visible the book decides (the scenario and receding horizons price the bucket "
        "about to trade by its exact walk); the oracle serves the buckets not yet seen.",
        "",
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
