"""Stitch every benchmark's results into one report: ``benchmarks/results/REPORT.md``.

Each script in this folder measures one layer and writes its own table to
``benchmarks/results/``; this script gathers them, in the order of the data flow, under one
table of contents, with the plots inline. It reruns nothing (run the scripts first, e.g.
``python benchmarks/bench_solvers.py``); a missing part is listed as missing, not skipped.

Run ``python benchmarks/report.py``.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPORT = RESULTS / "REPORT.md"
PARTS = (
    ("data.md", "bench_data.py", "Data layer: features and book-walk labels"),
    ("oracle.md", "oracle_real_data.py", "Impact oracle on real books, out of sample"),
    ("convexify.md", "bench_convexify.py", "Convexifiers"),
    ("fast_paths.md", "bench_fast_paths.py", "Fast paths: ratios at 390 x 64, scaling, compilation"),
    ("solvers.md", "bench_solvers.py", "Solvers: fast paths (before issue 10) vs cvxpy, formulations x solvers x sizes"),
    ("receding.md", "bench_receding.py", "Receding-horizon loop"),
    ("backtest.md", "backtest_real_data.py", "Backtest against real order books"),
)


def _demote(text):
    """Every heading one level down, so each part nests under the report's own headings."""
    return "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())


def main():
    lines = [
        "# convexsched benchmark report",
        "",
        "One file gathering the tables each benchmark script writes (`python benchmarks/report.py`).",
        "Every part states its own method: what is timed, medians of how many repeats, cold vs warm,",
        "solver tolerances and how failures count. All numbers of one part come from one run.",
        "",
    ]
    lines += [f"{i}. [{title}](#{i}) (`{script}`)" for i, (_, script, title) in enumerate(PARTS, 1)]
    for i, (name, script, title) in enumerate(PARTS, 1):
        lines += ["", f'<a id="{i}"></a>', ""]
        path = RESULTS / name
        if path.exists():
            text = path.read_text()
            lines.append(_demote(text))
            # Plots a part writes beside its table but does not show, e.g. time vs N (log-log).
            for plot in sorted(RESULTS.glob(f"{path.stem}*.png")):
                if f"]({plot.name})" not in text:
                    lines += ["", f"![{plot.stem}]({plot.name})"]
        else:
            lines.append(f"## {title}\n\nMissing: run `python benchmarks/{script}` first.")
    REPORT.write_text("\n".join(lines) + "\n")
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
