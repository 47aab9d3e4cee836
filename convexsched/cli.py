"""The ``convexsched`` command line: demo, features, fit, plan, backtest, check, bench.

Every subcommand reads and writes CSV or Parquet (by file suffix, formats in
:mod:`convexsched.io`) and returns an exit code scripts can trust: :data:`EXIT_OK`,
:data:`EXIT_FAILURE` (a KKT certificate or a solver failed) or :data:`EXIT_USAGE` (bad arguments
or input, reported as one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .errors import ConvexSchedError, DataError, InvalidInputError, SolverError
from .io import (
    certificate_record,
    read_curves,
    read_schedule,
    read_table,
    write_certificate,
    write_curves,
    write_schedule,
    write_table,
)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
PROGRAM = "convexsched"
DEFAULT_TASK1_SIZES = "100,200,500,1000,2000,5000,10000"
HELP_WIDTH = 92
# Where the repository keeps its benchmark scripts; absent from an installed wheel.
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

EXIT_CODES_HELP = """\
exit codes:
  0  success (plan, check: the KKT certificate holds)
  1  failure: a KKT certificate fails, every solver fails, a benchmark fails
  2  bad usage or input: unknown option, missing or malformed file, S above the capacity"""

FORMATS_HELP = """\
files (CSV, or Parquet when the name ends in .parquet or .pq):
  curves    bucket,segment,slope,width   one row per linear piece: slope = marginal cost
                                          (currency/share), width = shares; slopes nondecreasing
                                          within a bucket (segment orders them, optional)
        or  bucket,size,cost             points of g_i from size 0 (cost 0), e.g. a book walk
  schedule  bucket,x[,remaining]         shares traded per bucket (remaining is ignored on read)
  states    bucket,spread,depth,imbalance,volatility,hour_of_day,mid
                                          one row per bucket, as `convexsched features` writes
  book      Databento DBN/CSV/Parquet, LOBSTER pairs, SZSE/SSE Level-2 zips, wide CSV"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (usage stays available through --help)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _progress(iterable, **options):
    """A tqdm bar on stderr, shown only when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, disable=None, leave=False, **options)


# ---------------------------------------------------------------------- argument types


def _positive_float(text):
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _nonnegative_float(text):
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _sizes(text):
    """``"100,200,500"`` or ``"START:STOP:STEP"`` (STOP included) as a float array."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if step <= 0 or stop <= start:
                raise ValueError
            values = np.arange(start, stop + step / 2, step)
        else:
            values = np.array([float(part) for part in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like 100,200,500 or START:STOP:STEP, got {text!r}"
        ) from None
    if not np.isfinite(values).all() or (values < 0).any() or np.any(np.diff(values) <= 0):
        raise argparse.ArgumentTypeError(f"sizes must be finite, >= 0 and increasing, got {text!r}")
    return values


def _weights(text):
    """``linear``, ``constant`` or ``power:GAMMA`` as an :class:`Objective` weights argument."""
    if text in ("linear", "constant"):
        return text
    if text.startswith("power:"):
        return ("power", _float(text.split(":", 1)[1]))
    raise argparse.ArgumentTypeError(f"expected linear, constant or power:GAMMA, got {text!r}")


# ---------------------------------------------------------------------- shared options


def _add_book_arguments(parser, table=False, universe=False):
    """--book/--synthetic (or --table, for training data) and the reader options; the group."""
    title = "training data (one of --book, --synthetic, --table)" if table else "order book (one of --book, --synthetic)"
    source = parser.add_argument_group(title)
    choice = source.add_mutually_exclusive_group(required=True)
    choice.add_argument("--book", type=Path, metavar="PATH", help="order-book file (format inferred)")
    choice.add_argument(
        "--synthetic", type=int, nargs="?", const=0, metavar="SEED",
        help="the seeded SYNTHETIC book instead (never market data; default seed 0)",
    )  # fmt: skip
    if table:
        choice.add_argument("--table", type=Path, metavar="PATH",
                            help="a Task-1 table: timestamp,size,slippage,spread,depth,imbalance,volatility,hour_of_day,mid")  # fmt: skip
    if universe:
        choice.add_argument("--universe", type=Path, metavar="MANIFEST",
                            help="a CSV of symbol,day,file,size: backtest every key (see --scheduler)")  # fmt: skip
    source.add_argument("--format", choices=("databento", "mbo", "lobster", "csv", "parquet", "binance"))
    source.add_argument("--preset", help="column preset of a snapshot table: cn_l2, sse_l2, wide")
    source.add_argument("--symbol", help="instrument to use when the file holds several")
    source.add_argument("--tick-size", type=_positive_float, metavar="TICK")
    source.add_argument("--tz", help="time zone of naive timestamps, e.g. Asia/Shanghai")
    return source


def _add_objective_arguments(parser):
    group = parser.add_argument_group(
        "objective",
        "F(x) = sum g_i(x_i) + rho/2 sum x_i^2 + psi/2 sum w_i R_i^2, R_i = S - sum_{k<=i} x_k\n"
        "A: rho = psi = 0 (cost only), B: rho > 0 (smoothing), C: psi > 0 (inventory risk)",
    )
    group.add_argument("--rho", type=_nonnegative_float, default=0.0, help="smoothing weight (default 0)")
    group.add_argument("--psi", type=_nonnegative_float, default=0.0, help="inventory-risk weight (default 0)")
    group.add_argument(
        "--weights", type=_weights, default="linear", metavar="W",
        help="time weights w_i: linear (i/N, default), constant, power:GAMMA (GAMMA in [1, 2])",
    )  # fmt: skip
    group.add_argument(
        "--budget", choices=("eq", "le"), default="eq",
        help="sum x = S (default) or sum x <= S (a receding-horizon window)",
    )  # fmt: skip


def _objective(args):
    from .objective import Objective

    return Objective(rho=args.rho, psi=args.psi, weights=args.weights)


def _read_books(args):
    """Books of the chosen source, keyed by symbol (only ``--symbol`` when given)."""
    from .loaders import read_book, read_books
    from .synthetic import synthetic_book

    if args.synthetic is not None:
        book = synthetic_book(args.synthetic)
        return {book.symbol: book}
    if not args.book.is_file():
        raise DataError(f"no such file: {args.book}")
    options = {
        key: value
        for key, value in (("preset", args.preset), ("tick_size", args.tick_size), ("tz", args.tz))
        if value is not None
    }
    if args.symbol is not None:
        book = read_book(args.book, args.format, symbol=args.symbol, **options)
        return {book.symbol: book}
    return read_books(args.book, args.format, **options)


def _read_one_book(args):
    books = _read_books(args)
    if len(books) != 1:
        raise InvalidInputError(f"{args.book.name} holds {len(books)} symbols {list(books)}; pass --symbol")
    return next(iter(books.values()))


# ---------------------------------------------------------------------- subcommands


def _run_demo(args):
    from .demo import run_demo

    started = time.perf_counter()
    result = run_demo(args.output_dir, total=args.total, seed=args.seed, plots=not args.no_plots, echo=print)
    print(f"\nwrote {len(result.files)} files to {args.output_dir} in {time.perf_counter() - started:.1f} s")
    return EXIT_OK if result.certified else EXIT_FAILURE


def _run_features(args):
    from .features import book_features, bucket_features
    from .slippage import task1_table

    books = _read_books(args)
    frames = []
    for symbol, book in _progress(books.items(), desc="features", total=len(books)):
        if args.kind == "buckets":
            frame = bucket_features(book, freq=args.freq, how=args.how).reset_index()
        elif args.kind == "snapshots":
            frame = book_features(book).rename_axis("timestamp").reset_index()
        else:
            frame = task1_table(book, args.sizes, side=args.side, unit=args.unit)
        if len(books) > 1:
            frame.insert(0, "symbol", symbol)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    write_table(table, args.output)
    print(f"{args.kind}: {len(table):,} rows x {table.shape[1]} columns from {len(books)} book(s) -> {args.output}")
    return EXIT_OK


def _training_table(args):
    from .slippage import read_task1, task1_table

    if args.table is not None:
        return read_task1(args.table, unit=args.unit, tz=args.tz)
    tables = []
    for symbol, book in _progress(_read_books(args).items(), desc="book walk"):
        table = task1_table(book, args.sizes, side=args.side)
        # Beyond the displayed depth the cost is an extrapolation rule, not an observation.
        tables.append(table[~table["beyond_depth"]].assign(symbol=symbol))
    table = pd.concat(tables, ignore_index=True)
    if args.thin > 1:
        stamps = table["timestamp"].drop_duplicates().iloc[:: args.thin]
        table = table[table["timestamp"].isin(stamps)]
    return table


def _run_fit(args):
    from .oracle import ImpactOracle

    table = _training_table(args)
    table = table.dropna(subset=[c for c in ("volatility", "spread", "depth") if c in table])
    if table.empty:
        raise DataError("no training rows left after dropping rows with missing features")
    oracle = ImpactOracle(
        transform=args.transform,
        validation_fraction=args.validation_fraction or None,
        max_iter=args.max_iter,
        learning_rate=args.learning_rate,
        random_state=args.seed,
    )
    started = time.perf_counter()
    oracle.fit(table, table["slippage"])
    seconds = time.perf_counter() - started
    error = np.abs(oracle.predict(table) - table["slippage"].to_numpy()).mean()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    oracle.save(args.output)
    print(
        f"fitted ImpactOracle on {len(table):,} rows in {seconds:.1f} s: {oracle.n_iter_} boosting "
        f"iterations kept, in-sample MAE {error:.4g} (currency) -> {args.output}"
    )
    return EXIT_OK


def _load_oracle(path):
    """``ImpactOracle.load`` with any unpickling failure reported as bad input."""
    from .oracle import ImpactOracle

    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    try:
        return ImpactOracle.load(path)
    except ConvexSchedError:
        raise
    except Exception as error:  # noqa: BLE001 - a file that is not a pickle fails in arbitrary ways
        raise DataError(f"cannot read an oracle from {path.name}: {type(error).__name__}: {error}") from None


def _read_states(path):
    """A states file indexed by bucket (timestamps when they parse), rows with gaps dropped."""
    from .oracle import STATE_COLUMNS

    states = read_table(path)
    if "bucket" in states.columns:
        try:
            labels = pd.DatetimeIndex(pd.to_datetime(states["bucket"], format="ISO8601"))
        except (ValueError, TypeError):
            labels = pd.Index(states["bucket"])
        states = states.drop(columns="bucket").set_axis(labels.rename("bucket"))
    present = [c for c in STATE_COLUMNS + ("mid",) if c in states.columns]
    gaps = states[present].isna().any(axis=1)
    if gaps.all():
        raise DataError(f"{Path(path).name}: every row misses a state value")
    if gaps.any():
        print(f"note: {int(gaps.sum())} bucket(s) of {Path(path).name} have missing state values "
              "and are left out of the plan", file=sys.stderr)  # fmt: skip
    return states[~gaps]


def _plan_curves(args):
    if args.curves is not None:
        return read_curves(args.curves, convexify=args.convexify)
    if args.states is None:
        raise InvalidInputError("--oracle needs --states (one row of book state per bucket)")
    oracle = _load_oracle(args.oracle)
    states = _read_states(args.states)
    grid = args.grid
    if grid is None:
        from .demo import state_size_grid

        if "depth" not in states.columns:
            raise DataError(f"{args.states.name} has no depth column to size the default grid; pass --grid")
        grid = state_size_grid(states)
    curves, report = oracle.cost_curves(
        states, grid, convexify=args.convexify or "slopes-isotonic", return_report=True
    )
    print(report)
    return curves


def _run_plan(args):
    from .solve import solve

    curves = _plan_curves(args)
    if args.curves_out is not None:
        write_curves(curves, args.curves_out)
    objective = _objective(args)
    schedule = solve(curves, args.total, objective, budget=args.budget, method=args.method, solver=args.solver)
    write_schedule(schedule, args.output)
    certificate = args.certificate or Path(args.output).with_suffix(".kkt.json")
    record = certificate_record(
        schedule.kkt, schedule.total, objective, args.budget,
        method=schedule.method, algorithm=schedule.algorithm, solver=schedule.solver,
    )  # fmt: skip
    write_certificate(record, certificate)
    if args.plot is not None:
        _save_schedule_plot(schedule, args.plot)
    print(schedule)
    print(f"schedule -> {args.output}, certificate -> {certificate}")
    return EXIT_OK if schedule.kkt.ok else EXIT_FAILURE


def _save_schedule_plot(schedule, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = schedule.plot()
    ax.figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(path, dpi=110)
    plt.close(ax.figure)


def _run_check(args):
    from .kkt import check_kkt

    curves = read_curves(args.curves)
    x = read_schedule(args.schedule, curves)
    objective = _objective(args)
    report = check_kkt(
        curves, args.total, objective, x, budget=args.budget, multiplier=args.multiplier, tol=args.tol
    )
    if args.json is not None:
        write_certificate(certificate_record(report, args.total, objective, args.budget), args.json)
    print(f"{args.schedule}: {curves.n_buckets} buckets, sum x = {x.sum():.10g}, S = {args.total:.10g}, "
          f"objective {objective.kind}")  # fmt: skip
    print(report)
    return EXIT_OK if report.ok else EXIT_FAILURE


def _run_backtest(args):
    from .backtest import backtest

    if args.universe is not None:
        from .universe import run_manifest_backtest

        return run_manifest_backtest(args)
    if args.total is None:
        raise InvalidInputError("--total is required (with --universe the manifest's size is used)")
    book = _read_one_book(args)
    oracle = _load_oracle(args.oracle) if args.oracle is not None else None
    strategies = None
    if args.strategies is not None:
        from .strategies import default_strategies

        available = {s.name: s for s in default_strategies(with_model=oracle is not None)}
        unknown = [name for name in args.strategies if name not in available]
        if unknown:
            raise InvalidInputError(f"unknown strategies {unknown}; available: {list(available)}")
        strategies = [available[name] for name in args.strategies]
    table = backtest(
        book, args.total, strategies=strategies, oracle=oracle, side=args.side, freq=args.freq,
        half_life=args.half_life, progress=sys.stderr.isatty(),
    )  # fmt: skip
    if args.output is not None:
        write_table(table.reset_index(), args.output)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"{book!r}, {args.side} S = {args.total:,.0f} shares, resilience half-life {args.half_life:g} s")
        print("capture = (TWAP - strategy) / (TWAP - hindsight A): 1 is the hindsight bound, 0 is TWAP")
        print(table.to_string(float_format=lambda v: f"{v:,.3f}"))
    return EXIT_OK


# Where `bench --quick` sends the tables of scripts that can write elsewhere.
QUICK_RESULTS = "convexsched-bench-quick"


def _benchmark_scripts():
    """The runnable scripts of benchmarks/ (``_name.py`` files are their shared helpers)."""
    if not BENCHMARKS.is_dir():
        return []
    return [path for path in sorted(BENCHMARKS.glob("*.py")) if not path.name.startswith("_")]


def _run_bench(args):
    from .timing import builtin_timing

    scripts = _benchmark_scripts()
    if args.list:
        for script in scripts:
            quick = "--quick" in script.read_text()
            print(f"{script.stem}{'  (has --quick)' if quick else ''}")
        if not scripts:
            print(f"no benchmarks/ folder next to the package ({BENCHMARKS}); `bench` runs the built-in timing")
        return EXIT_OK
    if args.names:
        known = {script.stem: script for script in scripts}
        unknown = [name for name in args.names if name not in known]
        if unknown:
            raise InvalidInputError(f"unknown benchmark(s) {unknown}; available: {sorted(known)}")
        scripts = [known[name] for name in args.names]
    failed = False
    if args.builtin or args.quick or not scripts:
        table = builtin_timing(quick=args.quick or not scripts, progress=_progress)
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
        failed = not table["kkt_ok"].all() or not table["agree"].all()
        if args.builtin:
            return EXIT_FAILURE if failed else EXIT_OK
    for script in _progress(scripts, desc="benchmarks"):
        command = [sys.executable, str(script)]
        if args.quick:
            if "--quick" not in script.read_text():
                print(f"skip {script.stem}: it has no --quick mode", flush=True)
                continue
            command.append("--quick")
            if "--results-dir" in script.read_text():
                # A quick run must not overwrite the committed full-run tables.
                command += ["--results-dir", str(Path(QUICK_RESULTS).resolve())]
        print(f"$ {' '.join(command)}", flush=True)
        failed |= subprocess.run(command, check=False).returncode != 0
    return EXIT_FAILURE if failed else EXIT_OK


# ---------------------------------------------------------------------- parser


def build_parser():
    """The argparse parser of every subcommand (``convexsched --help`` documents them)."""
    parser = _Parser(
        prog=PROGRAM,
        formatter_class=_formatter,
        description=textwrap.fill(
            "Provably optimal execution schedules from limit-order-book data: book -> features -> "
            "oracle -> convex cost curves -> schedule -> KKT certificate -> backtest.",
            HELP_WIDTH,
        ),
        epilog=EXIT_CODES_HELP + "\n\n" + FORMATS_HELP + "\n\nRun `convexsched demo` for the whole pipeline on a synthetic book.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name, handler, summary, description="", epilog=""):
        # One-paragraph descriptions are wrapped; multi-line ones keep their layout.
        if description and "\n" not in description:
            description = textwrap.fill(description, HELP_WIDTH)
        sub = commands.add_parser(
            name, help=summary, description=textwrap.fill(summary, HELP_WIDTH) + ("\n\n" + description if description else ""),
            epilog=(epilog + "\n\n" if epilog else "") + EXIT_CODES_HELP, formatter_class=_formatter,
        )  # fmt: skip
        sub.set_defaults(handler=handler)
        return sub

    demo = command(
        "demo", _run_demo,
        "end to end on the synthetic book: features, oracle, curves, A/B/C fast vs cvxpy with KKT, "
        "receding horizon, backtest, plots",
        "Writes features, curves, schedules with certificates, the oracle, the backtest table and "
        "plots to OUTPUT_DIR; about half a minute on two cores.",
    )  # fmt: skip
    demo.add_argument("--output-dir", "-o", type=Path, default=Path("convexsched-demo"), metavar="DIR",
                      help="folder for the files (default ./convexsched-demo/)")  # fmt: skip
    demo.add_argument("--total", "-S", type=_positive_float, default=100_000.0, metavar="S", help="shares to buy (default 100000)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic book (default 0)")
    demo.add_argument("--no-plots", action="store_true", help="skip the PNG plots")

    features = command(
        "features", _run_features,
        "book -> per-bucket features, per-snapshot features or the Task-1 table",
        "buckets:   bucket,mid,spread,depth,imbalance,volatility,hour_of_day,n_snapshots[,volume]\n"
        "           (the states file of `plan --oracle`)\n"
        "snapshots: timestamp,mid,spread,depth,imbalance,volatility,hour_of_day\n"
        "task1:     timestamp,size,slippage,vol_ratio,spread,depth,imbalance,volatility,hour_of_day,"
        "mid,beyond_depth\n"
        "A file with several symbols gives one table with a leading symbol column.",
        FORMATS_HELP,
    )  # fmt: skip
    _add_book_arguments(features)
    features.add_argument("--kind", choices=("buckets", "snapshots", "task1"), default="buckets",
                          help="what to compute (default buckets)")  # fmt: skip
    features.add_argument("--freq", default="1min", help="bucket width (default 1min)")
    features.add_argument("--how", choices=("mean", "median", "first", "last"), default="mean",
                          help="statistic over a bucket's snapshots (default mean)")  # fmt: skip
    features.add_argument("--sizes", type=_sizes, default=_sizes(DEFAULT_TASK1_SIZES),
                          help=f"task1 order sizes in shares: a,b,c or START:STOP:STEP (default {DEFAULT_TASK1_SIZES})")  # fmt: skip
    features.add_argument("--side", choices=("buy", "sell"), default="buy")
    features.add_argument("--unit", choices=("currency", "per_share", "bps"), default="currency",
                          help="task1 slippage unit (default currency)")  # fmt: skip
    features.add_argument("--output", "-o", type=Path, required=True, help="CSV or Parquet file to write")

    fit = command(
        "fit", _run_fit,
        "train the impact oracle on a book (walked for a size grid) or a Task-1 table, and save it",
        "Rows whose size exceeds the displayed depth are left out (their cost is extrapolated, not "
        "observed). The saved file is a joblib pickle: load only files you wrote.",
    )  # fmt: skip
    source = _add_book_arguments(fit, table=True)
    source.add_argument("--sizes", type=_sizes, default=_sizes(DEFAULT_TASK1_SIZES),
                        help=f"order sizes to walk the book for (default {DEFAULT_TASK1_SIZES})")  # fmt: skip
    source.add_argument("--side", choices=("buy", "sell"), default="buy")
    source.add_argument("--unit", choices=("currency", "per_share", "bps"), default="currency",
                        help="unit of the --table slippage column (default currency)")  # fmt: skip
    source.add_argument("--thin", type=int, default=1, metavar="K", help="keep every K-th snapshot (faster fits)")
    model = fit.add_argument_group("model")
    model.add_argument("--transform", choices=("bps", "per_share", "log"), default="bps",
                       help="what the trees learn (default bps: cost per share in bps of the mid)")  # fmt: skip
    model.add_argument("--max-iter", type=int, default=300, help="boosting iterations (default 300)")
    model.add_argument("--learning-rate", type=_positive_float, default=0.05)
    model.add_argument("--validation-fraction", type=_nonnegative_float, default=0.2,
                       help="time-ordered early-stopping split, 0 for none (default 0.2)")  # fmt: skip
    model.add_argument("--seed", type=int, default=0)
    fit.add_argument("--output", "-o", type=Path, required=True, help="oracle file to write (.joblib)")

    plan = command(
        "plan", _run_plan,
        "curves, or oracle + states -> optimal schedule CSV and its KKT certificate",
        "Writes the schedule (bucket,x,remaining) and its certificate as JSON beside it "
        "(SCHEDULE.kkt.json unless --certificate), prints the summary and the certificate.",
        FORMATS_HELP,
    )  # fmt: skip
    model = plan.add_argument_group("cost model (one of --curves, --oracle)")
    choice = model.add_mutually_exclusive_group(required=True)
    choice.add_argument("--curves", type=Path, metavar="PATH", help="cost-curve file")
    choice.add_argument("--oracle", type=Path, metavar="PATH", help="oracle from `convexsched fit`")
    model.add_argument("--states", type=Path, metavar="PATH", help="with --oracle: book state per bucket")
    model.add_argument("--grid", type=_sizes, metavar="SIZES",
                       help="with --oracle: size grid START:STOP:STEP or a,b,c from 0 "
                            "(default 40 steps up to half the median depth)")  # fmt: skip
    model.add_argument("--convexify", choices=("slopes-isotonic", "isotonic", "convex-regression", "hull"),
                       help="convexifier of oracle output (default slopes-isotonic) or of grid-point curves")  # fmt: skip
    model.add_argument("--curves-out", type=Path, metavar="PATH", help="also write the curves used")
    plan.add_argument("--total", "-S", type=_nonnegative_float, required=True, metavar="S", help="shares to execute")
    _add_objective_arguments(plan)
    solver = plan.add_argument_group("solver")
    solver.add_argument("--method", choices=("fast", "bisection", "cvxpy"), default="fast",
                        help="exact fast path (default), the seed's bisection, or cvxpy")  # fmt: skip
    solver.add_argument("--solver", help="cvxpy solver to try first: CLARABEL, HIGHS, ECOS, OSQP, SCS")
    plan.add_argument("--output", "-o", type=Path, required=True, help="schedule file to write")
    plan.add_argument("--certificate", type=Path, metavar="PATH", help="certificate JSON to write")
    plan.add_argument("--plot", type=Path, metavar="PNG", help="also save a plot of the schedule")

    check = command(
        "check", _run_check,
        "KKT-check a schedule file against cost curves: exit 0 if optimal, 1 if not",
        "Prints the primal residual, bound violation, stationarity, complementarity and duality gap "
        "(all relative) and the water level lambda. A schedule from elsewhere is fine: only its x "
        "column is read.",
        FORMATS_HELP,
    )  # fmt: skip
    check.add_argument("--curves", type=Path, required=True, metavar="PATH", help="cost-curve file")
    check.add_argument("--schedule", type=Path, required=True, metavar="PATH", help="schedule file")
    check.add_argument("--total", "-S", type=_nonnegative_float, required=True, metavar="S", help="the budget S (shares)")
    _add_objective_arguments(check)
    check.add_argument("--tol", type=_positive_float, default=1e-6, help="relative tolerance (default 1e-6)")
    check.add_argument("--multiplier", type=_float, metavar="LAMBDA", help="a claimed water level to check")
    check.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")

    backtest = command(
        "backtest", _run_backtest,
        "execute strategies against the book's snapshots and tabulate realized costs",
        "Each bucket's slice walks the first usable snapshot of the bucket. Without --oracle only "
        "the model-free strategies run.",
    )  # fmt: skip
    _add_book_arguments(backtest, universe=True)
    backtest.add_argument("--total", "-S", type=_positive_float, metavar="S",
                          help="shares to execute (with --universe: overrides the manifest's sizes)")
    backtest.add_argument("--scheduler", metavar="WHERE",
                          help="with --universe: omitted = serial, 'local' = a LocalCluster, or a Dask scheduler address")
    backtest.add_argument("--oracle", type=Path, metavar="PATH", help="oracle from `convexsched fit`")
    backtest.add_argument("--strategies", type=lambda text: text.split(","), metavar="A,B",
                          help="comma-separated strategy names (default: all that apply)")  # fmt: skip
    backtest.add_argument("--side", choices=("buy", "sell"), default="buy")
    backtest.add_argument("--freq", default="1min", help="bucket width (default 1min)")
    backtest.add_argument("--half-life", type=_nonnegative_float, default=0.0, metavar="SECONDS",
                          help="resilience: what a slice takes from a level comes back with this half-life "
                               "(default 0: every minute's book is fresh)")  # fmt: skip
    backtest.add_argument("--output", "-o", type=Path, help="table file to write")

    bench = command(
        "bench", _run_bench,
        "run the benchmarks in benchmarks/, or a built-in timing of fast vs cvxpy",
        "Without benchmarks/ (an installed package) or with --builtin: times the exact fast paths "
        "against cvxpy on objectives A, B, C and checks that both certify. --quick runs the "
        "built-in timing at one size plus the scripts that have a --quick mode, writing their tables "
        "to ./convexsched-bench-quick/ where a script allows it; full runs rewrite benchmarks/results/.",
    )  # fmt: skip
    bench.add_argument("names", nargs="*", metavar="NAME", help="benchmark scripts to run (default all)")
    bench.add_argument("--quick", action="store_true", help="short runs only")
    bench.add_argument("--builtin", action="store_true", help="only the built-in timing")
    bench.add_argument("--list", action="store_true", help="list the benchmark scripts and exit")
    return parser


def _one_line(error):
    text = " ".join(str(error).split())
    return text or type(error).__name__


def main(argv=None):
    """Run the command line; returns the exit code (see :data:`EXIT_CODES_HELP`)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SolverError as error:
        print(f"{PROGRAM}: solver failure: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILURE
    except (ConvexSchedError, ValueError, FileNotFoundError) as error:
        print(f"{PROGRAM}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
