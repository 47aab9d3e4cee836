"""Write the tutorial notebooks from the cell sources below, executed and stored with their outputs.

The notebooks are generated, not edited by hand: this script builds each notebook from the
sources below, executes it top to bottom in a fresh kernel (nbclient) and stores it with its
outputs, so that a reader browsing the repository sees tables and plots. The stored file is
normalized so that a rebuild changes only what really changed: no execution counts, no timing
metadata, fixed notebook metadata, each stream's text in one output, plots reduced to a small
palette (5-25 kB each). What still differs from run to run is the few timings the cells print,
each labelled as one (``ms to solve and certify``, ``ms (this run)``, ``median solve``).

``tests/test_notebooks.py`` executes every notebook again, checks that the stored ones hold
outputs and no error, and runs ``--check``: the stored cells must equal the sources below, so a
cell changed here but not rebuilt (its outputs stale) fails the tests.

Run ``python notebooks/build_notebooks.py [NAME ...]`` after changing a cell (it needs the
``[test]`` extra; notebook 03 shows the real Shenzhen book when ``../shared/data`` sits beside
the repository and says so in its output when it falls back to synthetic books).
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
from pathlib import Path

import nbformat

FOLDER = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------
QUICKSTART = [
    (
        "markdown",
        """\
# convexsched quickstart

From a limit-order book to an execution schedule that comes with a proof of optimality:

**book → features → impact oracle → convex cost curves → schedule → KKT certificate**

This notebook uses the seeded **synthetic** book (`convexsched.synthetic_book`), so it runs
anywhere; it is not market data. Notebook 03 repeats the pipeline on real Shenzhen Level-2 books.""",
    ),
    (
        "code",
        """\
import numpy as np
import matplotlib.pyplot as plt
import convexsched as cs

book = cs.synthetic_book(seed=0)
book""",
    ),
    (
        "markdown",
        """\
## 1. Features

`bucket_features` aggregates the state features (spread, depth on ten levels, imbalance, 60-s
volatility, hour; (E17) in `docs/equations.rst`) over one-minute buckets of the continuous
session: one row per bucket, the *state* the impact oracle conditions on.""",
    ),
    (
        "code",
        """\
states = cs.bucket_features(book).dropna()
states.head()""",
    ),
    (
        "markdown",
        """\
## 2. The impact oracle

The impact table walks every snapshot's book for a grid of order sizes: the cost `g_t(x)` of
buying `x` shares against the mid. A gradient-boosting model, monotone in size, learns it from
the state. Rows beyond the displayed depth are extrapolations, so they are left out; every 4th
snapshot keeps the fit to a few seconds.""",
    ),
    (
        "code",
        """\
sizes = np.array([100, 200, 500, 1000, 2000, 5000, 10000.0])
table = cs.impact_table(book, sizes)
table = table[~table["beyond_depth"]].dropna(subset=["volatility"])
table = table[table["timestamp"].isin(table["timestamp"].drop_duplicates().iloc[::4])]
oracle = cs.ImpactOracle(max_iter=100, learning_rate=0.1, random_state=0).fit(table, table["slippage"])
print(f"{len(table):,} training rows, {oracle.n_iter_} boosting iterations kept")""",
    ),
    (
        "markdown",
        """\
## 3. Convex cost curves

The oracle is evaluated on a size grid for every bucket and convexified (isotonic regression of
the slopes), which gives one convex piecewise-linear `g_i` per bucket: a `CostCurves`. The report
says how far convexification moved the raw predictions.""",
    ),
    (
        "code",
        """\
grid = np.linspace(0, 12_000, 41)
curves, report = oracle.cost_curves(states, grid, return_report=True)
print(curves)
print(report)
curves.plot(marginal=True);""",
    ),
    (
        "markdown",
        """\
## 4. The optimal schedule and its certificate

`solve` minimizes `sum_i g_i(x_i)` subject to `sum x = S`, `0 <= x_i <= c_i` (objective A) by
exact water-filling. Every schedule carries a KKT certificate: primal feasibility,
stationarity at a single water level `lambda` (every bucket that trades pays the same marginal
cost), and a duality gap of zero.""",
    ),
    (
        "code",
        """\
S = 100_000
schedule = cs.solve(curves, S)
print(schedule)
schedule.plot();""",
    ),
    (
        "markdown",
        """\
The certificate is independent of how a schedule was computed: `check_kkt` tests any `x`.
A TWAP schedule (equal slices) is feasible but not optimal, and the certificate says so.""",
    ),
    (
        "code",
        """\
twap = np.full(curves.n_buckets, S / curves.n_buckets)
print(cs.check_kkt(curves, S, cs.Objective(), twap))
print(f"cost of TWAP {curves.evaluate(twap).sum():,.2f} vs optimal {schedule.objective_value:,.2f}")""",
    ),
    (
        "markdown",
        """\
## 5. The same problem in cvxpy

`method="cvxpy"` builds the explicit convex program (`build_problem`) and solves it with a conic
solver; the answer and its certificate agree with the fast path. The problem object is a
`cvxpy.Problem`, so you can add constraints of your own on `problem.x`.""",
    ),
    (
        "code",
        """\
reference = cs.solve(curves, S, method="cvxpy")
print(f"{reference.solver}: F = {reference.objective_value:,.4f}, fast path F = {schedule.objective_value:,.4f}")
print(f"largest difference in x: {np.abs(np.asarray(reference.x) - np.asarray(schedule.x)).max():.3g} shares")

problem = cs.build_problem(curves, S, cs.Objective())
no_lunch_trading = problem.with_constraints([problem.x[120:210] == 0])
no_lunch_trading.solve(solver="CLARABEL")
constrained = no_lunch_trading.schedule()
print(f"no trading 11:30-13:00: cost {curves.evaluate(constrained).sum():,.2f} vs {schedule.objective_value:,.2f} unconstrained")""",
    ),
    (
        "markdown",
        """\
## 6. Files and the command line

Curves and schedules travel as CSV or Parquet (`convexsched.io`); the `convexsched` command
does every step above from a shell: `convexsched demo`, `features`, `fit`, `plan`, `check`,
`backtest`, `bench` (see `convexsched --help`).""",
    ),
    (
        "code",
        """\
import tempfile
from pathlib import Path
from convexsched.io import read_curves, read_schedule, write_curves, write_schedule

folder = Path(tempfile.mkdtemp())
write_curves(curves, folder / "curves.csv")
write_schedule(schedule, folder / "schedule.csv")
again = read_curves(folder / "curves.csv")
x = read_schedule(folder / "schedule.csv", again)
print(cs.check_kkt(again, S, cs.Objective(), x))""",
    ),
]

# ---------------------------------------------------------------------------------------------
OBJECTIVES = [
    (
        "markdown",
        """\
# Objectives A, B, C and their KKT certificates

The objective family is

`F(x) = sum_i g_i(x_i) + rho/2 sum_i x_i^2 + psi/2 sum_i w_i R_i^2`, with `R_i = S - sum_{k<=i} x_k`,

* **A** cost only (`rho = psi = 0`),
* **B** cost plus smoothing (`rho > 0`): penalizes large slices,
* **C** cost plus inventory risk (`psi > 0`): penalizes holding inventory late (weights `w_i = i/N`).

To keep the focus on the optimization, the cost curves here are the exact book walks of the
first snapshot of every minute of the synthetic book (no oracle): convex by construction.""",
    ),
    (
        "code",
        """\
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import convexsched as cs

book = cs.synthetic_book(seed=0)
buckets = cs.session_buckets(book, "1min")
first_snapshot = book.frame.index.to_series().groupby(buckets.labels).first()
sizes = np.linspace(0, 10_000, 41)
walk = cs.walk_book(book, sizes).loc[first_snapshot.to_numpy()]
curves = cs.CostCurves.from_grid(sizes, walk.to_numpy(), index=first_snapshot.index)
S = 150_000
curves""",
    ),
    (
        "markdown",
        """\
## A vs B vs C

`rho` and `psi` are scaled to the problem: `rho` makes the smoothing penalty of an average slice
comparable to its marginal cost, `psi` makes the marginal inventory risk at the open comparable
to the water level of A.""",
    ),
    (
        "code",
        """\
plan_a = cs.solve(curves, S)
level = plan_a.multiplier
rho = level / (S / curves.n_buckets)
psi = 2 * level / (S * curves.n_buckets)
objectives = {"A": cs.Objective(), "B": cs.Objective(rho=rho), "C": cs.Objective(psi=psi)}
plans = {kind: cs.solve(curves, S, objective) for kind, objective in objectives.items()}

fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
for kind, plan in plans.items():
    axes[0].plot(np.asarray(plan.x), lw=1, label=f"{kind}: {plan.algorithm}")
    axes[1].plot(np.asarray(plan.remaining), label=kind)
axes[0].set_ylabel("shares per bucket"); axes[0].legend()
axes[1].set_ylabel("inventory R_i"); axes[1].set_xlabel("minute of the session")
pd.DataFrame({kind: {"F(x)": p.objective_value, "impact cost": curves.evaluate(np.asarray(p.x)).sum(),
                     "lambda": p.multiplier, "largest slice": np.max(p.x), "KKT ok": p.kkt.ok}
              for kind, p in plans.items()}).T""",
    ),
    (
        "markdown",
        """\
## The water level `lambda`

Stationarity says: a bucket that trades a positive amount below its capacity has marginal
cost `g_i'(x_i) + rho x_i - P_i = lambda`, with `P_i = psi sum_{j>=i} w_j R_j` the inventory
pressure; buckets whose first share already costs more than the level do not trade. For A the
level is flat: it is the price at which the water-filling stops. `slope_bounds` gives each
bucket's interval `[g_i'(x_i^-), g_i'(x_i^+)]`, which must contain the level.""",
    ),
    (
        "code",
        """\
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, kind in zip(axes, ("A", "C")):
    plan, objective = plans[kind], objectives[kind]
    x = np.asarray(plan.x)
    left, right = curves.slope_bounds(x)
    first_share = curves.slopes[:, 0]
    pressure = objective.psi * np.cumsum((objective.weight_vector(len(x)) * np.asarray(plan.remaining))[::-1])[::-1]
    minutes = np.arange(len(x))
    ax.plot(minutes, first_share, ".", ms=3, color="grey", label="cost of the first share g_i'(0)")
    ax.plot(minutes, np.where(x > 0, np.clip(left, 0, None), np.nan), "_", color="tab:blue", label="g_i'(x_i^-)")
    ax.plot(minutes, np.where(np.isfinite(right), right, np.nan), "_", color="tab:orange", label="g_i'(x_i^+)")
    ax.plot(minutes, plan.multiplier + pressure, color="tab:red", label="lambda + P_i")
    ax.set_title(f"{kind}: lambda = {plan.multiplier:.4f}")
    ax.set_xlabel("minute")
axes[0].set_ylabel("currency per share"); axes[0].set_ylim(0, 3 * plans["A"].multiplier); axes[0].legend(fontsize="small");""",
    ),
    (
        "markdown",
        """\
## Sweeping `rho` and `psi`

Larger `rho` spreads the order over more buckets (smaller largest slice, closer to TWAP);
larger `psi` front-loads it (the inventory-weighted centre of the schedule moves earlier).
Every point is solved by the exact fast path and certified.""",
    ),
    (
        "code",
        """\
def centre(plan):
    x = np.asarray(plan.x)
    return float(np.dot(np.arange(len(x)), x) / x.sum())

factors = [0, 0.25, 1, 4, 16]
rows = []
for factor in factors:
    smooth = cs.solve(curves, S, cs.Objective(rho=factor * rho))
    risky = cs.solve(curves, S, cs.Objective(psi=factor * psi))
    rows.append({"factor": factor, "B: largest slice": np.max(smooth.x), "B: buckets used": int((np.asarray(smooth.x) > 1e-6).sum()),
                 "C: centre (minute)": centre(risky), "C: lambda": risky.multiplier,
                 "all certified": smooth.kkt.ok and risky.kkt.ok})
sweep = pd.DataFrame(rows).set_index("factor")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
sweep["B: largest slice"].plot(ax=axes[0], marker="o", logx=False, title="B: largest slice vs rho / rho0")
sweep["C: centre (minute)"].plot(ax=axes[1], marker="o", title="C: centre of the schedule vs psi / psi0")
sweep""",
    ),
    (
        "markdown",
        """\
## Certificates, fast path vs cvxpy

Each path returns the same optimum; the certificate reports the relative primal residual,
bound violation, stationarity, complementarity and duality gap, and the admissible interval of
`lambda`. A perturbed schedule fails it. `ms (this run)` is the wall time of this kernel's call,
certificate included: the fast paths already ran above (warm), while each cvxpy row includes
building and canonicalizing its problem, so these differ from run to run and machine to machine.""",
    ),
    (
        "code",
        """\
rows = []
for kind, objective in objectives.items():
    for method in ("fast", "cvxpy"):
        plan = cs.solve(curves, S, objective, method=method)
        rows.append({"objective": kind, "method": method, "by": plan.solver or plan.algorithm,
                     "F(x)": plan.objective_value, "lambda": plan.multiplier,
                     "ms (this run)": 1e3 * plan.timings["total"], "KKT violation": plan.kkt.max_violation, "ok": plan.kkt.ok})
print(plans["C"].kkt)
perturbed = np.asarray(plans["C"].x).copy()
perturbed[[100, 200]] += [-500, 500]
print(cs.check_kkt(curves, S, objectives["C"], perturbed))
pd.DataFrame(rows)""",
    ),
]

# ---------------------------------------------------------------------------------------------
REAL_BOOK = [
    (
        "markdown",
        """\
# A real book: backtest on Shenzhen Level-2 data

`tick.zip` (SZSE Level-2, 10-level 3-second snapshots of five stocks on 2022-06-01, see the
data folder's PROVENANCE.md) sits beside the repository in CI. When it is absent this notebook
falls back to synthetic books, and says so.

Protocol: the oracle is trained on the *other* stocks (its bps target transfers across price
levels), the intraday profile of the state too; the backtest then executes one order on the
held-out stock, each bucket's slice walking the first usable snapshot of the minute. The plans
see only the live state: nothing looks ahead.""",
    ),
    (
        "code",
        """\
from pathlib import Path
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from threadpoolctl import threadpool_limits
import convexsched as cs
from convexsched import BookExecutor, LiveCurves, backtest
from convexsched.execution import strategies

root = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "pyproject.toml").is_file())
DATA = root.parent / "shared" / "data" / "cn-equity-l2-dolphindb" / "tick.zip"
if DATA.is_file():
    books = cs.read_books(DATA)
    target = "300274.SZ"
    print(f"real data: {DATA.name}, {len(books)} stocks")
else:
    books = {f"SYNTH{seed}": cs.synthetic_book(seed, symbol=f"SYNTH{seed}") for seed in range(3)}
    target = "SYNTH0"
    print(f"{DATA} not found: using SYNTHETIC books (not market data)")
book = books[target]
for symbol, b in books.items():
    print(b.report if symbol == target else repr(b))""",
    ),
    (
        "markdown",
        """\
## Train the oracle and the state profile on the other stocks""",
    ),
    (
        "code",
        """\
sizes = np.array([100, 200, 500, 1000, 2000, 5000, 10000.0])
training = []
for symbol, other in books.items():
    if symbol == target:
        continue
    table = cs.impact_table(other, sizes)
    table = table[~table["beyond_depth"]].dropna(subset=["volatility"])
    training.append(table[table["timestamp"].isin(table["timestamp"].drop_duplicates().iloc[::2])])
training = pd.concat(training, ignore_index=True)
oracle = cs.ImpactOracle(max_iter=100, learning_rate=0.1, random_state=0).fit(training, training["slippage"])
history = pd.concat([cs.bucket_features(b).dropna() for s, b in books.items() if s != target])
forecast = cs.StateForecast(freq="1min").fit(history)
print(f"oracle: {len(training):,} rows from {len(books) - 1} stocks, {oracle.n_iter_} iterations")""",
    ),
    (
        "markdown",
        """\
## Backtest

The order is 5% of the stock's traded volume of the day. The strategies: TWAP, Almgren-Chriss,
depth-proportional (VWAP-like), the morning plans A/B/C, a 30-minute receding horizon that
re-plans every minute from the oracle's view of the live state (`RecedingHorizon`,
certainty-equivalent), and the scenario receding horizon (`ScenarioHorizon`, no model): it prices
the book its slice is about to walk exactly and treats the last 30 minutes' books as samples of
the future.

Every table is measured against the limit: `hindsight A` is objective (A) solved on the
realized books of the whole day (it looks ahead: a bound, not a strategy), and
`capture = (TWAP - strategy) / (TWAP - hindsight A)` says how much of that gap a strategy
closed: 1 is the bound, 0 is TWAP.""",
    ),
    (
        "code",
        """\
S = float(round(0.05 * book.traded_volume.sum(), -2))
executor = BookExecutor(book)
live = LiveCurves(executor, oracle, forecast, grid=17)
morning = live.static()
objectives = strategies.default_objectives(morning, S)
chosen = [strategies.TWAP(), strategies.AlmgrenChriss(), strategies.DepthProportional(),
          *(strategies.StaticPlan(kind) for kind in "ABC"),
          strategies.RecedingStrategy(objectives["A"], name="RH A H=30", horizon=30),
          strategies.ScenarioStrategy("A"), strategies.ScenarioStrategy("B")]
# Small per-step predictions run faster on one OpenMP thread than on a contended pool.
with threadpool_limits(limits=1):
    table, records = backtest(executor, S, strategies=chosen, model=live, return_records=True)
print(f"{book.symbol}: buy {S:,.0f} shares over {len(executor)} one-minute buckets")
table[["cost_bps", "vs_twap_bps", "hindsight_bps", "capture", "lookahead", "shortfall_bps", "max_slice"]]""",
    ),
    (
        "markdown",
        """\
## Where the money is: TWAP, the certainty-equivalent plan, the scenario plan and the bound

The bound buys in the minutes whose books are cheap at the margin. The scenario horizon sees
each minute's book before its slice walks it and compares it with what recent minutes
offered, so it can be selective the same way, without knowing the future.""",
    ),
    (
        "code",
        """\
fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
for name in ["TWAP", "RH A H=30", "scenario A", "hindsight A"]:
    record = records[name]
    axes[0].plot(record.remaining.to_numpy() / S, lw=1, label=f"{name}: {record.cost_bps:.2f} bps")
    axes[1].plot(np.cumsum(record.costs.to_numpy()) / (S * record.arrival_mid) * 1e4, lw=1, label=name)
axes[0].set_ylabel("inventory / S"); axes[0].legend(fontsize="small")
axes[1].set_ylabel("cumulative cost (bps)"); axes[1].set_xlabel("one-minute bucket")
plt.tight_layout()""",
    ),
    (
        "markdown",
        """\
## The receding horizon, step by step

Every step solves its window exactly and certifies it; `steps` records the inventory, the water
level and the KKT verdict of each re-plan.""",
    ),
    (
        "code",
        """\
receding = records["RH A H=30"]
steps = receding.steps
print(f"{len(steps)} re-plans, {int(steps['kkt_ok'].sum())} certified, "
      f"largest KKT violation {steps['kkt_violation'].max():.1e}, median solve {1e3 * steps['solve_s'].median():.2f} ms")
receding.plot();""",
    ),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_objectives_and_kkt.ipynb": OBJECTIVES,
    "03_real_book_backtest.ipynb": REAL_BOOK,
}
METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}
# A guard against a hung kernel, not a speed target.
HANG_GUARD_S = 900
# Plots are stored on this many colours: a few kB each instead of tens, still legible.
PALETTE_COLOURS = 64


def build(cells):
    """A v4 notebook of ``(kind, source)`` cells with stable ids and no outputs."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata.update(METADATA)
    for number, (kind, source) in enumerate(cells):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        # Fixed ids keep regenerated files byte-identical (nbformat draws random ones).
        cell.id = f"cell-{number:02d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def cell_sources(notebook):
    """What a notebook's text is made of, outputs aside: each cell's id, kind and source."""
    return [(cell.id, cell.cell_type, cell.source) for cell in notebook.cells]


def _small_png(data):
    """A base64 PNG re-encoded on a small palette (matplotlib's plots use a handful of colours)."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    small = image.quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _merged_streams(outputs):
    """``outputs`` with each run of text on one stream made one output (where a kernel's text is
    cut depends on when it flushed, so the cuts change from run to run)."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.output_type == "stream"
            and previous is not None
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def normalize(notebook):
    """Strip what changes at every run without saying anything: counts, metadata, stream cuts, PNG bytes."""
    notebook.metadata = nbformat.from_dict(METADATA)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        cell.metadata = nbformat.from_dict({})
        cell.outputs = _merged_streams(cell.outputs)
        for output in cell.outputs:
            if "execution_count" in output:
                output.execution_count = None
            if "image/png" in output.get("data", {}):
                output.data["image/png"] = _small_png(output.data["image/png"])
    nbformat.validate(notebook)
    return notebook


def execute(notebook):
    """Run ``notebook`` in a fresh kernel (working directory: this folder) and normalize it."""
    from nbclient import NotebookClient

    client = NotebookClient(notebook, timeout=HANG_GUARD_S, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(FOLDER)}})  # fmt: skip
    client.execute()
    return normalize(notebook)


def render(notebook):
    return nbformat.writes(notebook) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"notebooks to rebuild (default: all of {', '.join(NOTEBOOKS)})")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a stored notebook's cells differ from the sources here (nothing is executed)")  # fmt: skip
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NOTEBOOKS))
    if unknown:
        parser.error(f"no notebook named {', '.join(unknown)}")
    names = args.names or list(NOTEBOOKS)
    stale = []
    for name in names:
        path = FOLDER / name
        notebook = build(NOTEBOOKS[name])
        if args.check:
            stored = nbformat.read(path, as_version=4) if path.is_file() else None
            if stored is None or cell_sources(stored) != cell_sources(notebook) or stored.metadata != notebook.metadata:
                stale.append(name)
        else:
            print(f"executing {name} ...", flush=True)
            path.write_text(render(execute(notebook)))
            print(f"wrote {path} ({path.stat().st_size / 1e3:,.0f} kB)")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python notebooks/build_notebooks.py {' '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
