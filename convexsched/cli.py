"""The ``convexsched`` command line: demo, features, fit, plan, backtest, check, bench.

Every subcommand reads and writes CSV or Parquet (by file suffix, formats in
:mod:`convexsched.io`) and returns an exit code scripts can trust: :data:`EXIT_OK`,
:data:`EXIT_FAILURE` (a KKT certificate or a solver failed) or :data:`EXIT_USAGE` (bad arguments
or input, reported as one line on stderr, never a traceback).

Outputs follow one rule everywhere: every path is checked before any work starts (not an input,
not another output, not an existing file unless ``--force``, in a folder that can be written),
and every file is written atomically (:func:`convexsched.files.atomic_path`).
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from ._optional import require
from .data.loaders import FORMATS as BOOK_FORMATS
from .errors import ConvexSchedError, DataError, InvalidInputError, SolverError
from .files import atomic_path, check_outputs, read_table, release_outputs, save_figure, write_table
from .io import certificate_record, read_curves, read_schedule, write_certificate, write_curves, write_schedule

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
PROGRAM = "convexsched"
# What is neither a result (stdout) nor an error (the last line, with the exit code): progress,
# notes and warnings, on stderr through the package's loggers (see _logging).
log = logging.getLogger(__name__)
DEFAULT_IMPACT_SIZES = "100,200,500,1000,2000,5000,10000"
# Sizes of a grid or size list: each is a column of predictions or book walks per bucket or snapshot.
MAX_SIZES = 10_000
HELP_WIDTH = 92
# Where the repository keeps its benchmark scripts; absent from an installed wheel.
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

EXIT_CODES_HELP = """\
exit codes:
  0  success (plan, check: the KKT certificate holds)
  1  failure: a KKT certificate fails, every solver fails, a benchmark fails, or an
     internal error (a bug, not your input: --debug shows its traceback)
  2  bad usage or input: unknown option, missing or malformed file, S above the capacity,
     an output that is an input or exists (without --force), a file that cannot be written"""

FORMATS_HELP = """\
files (CSV, or Parquet when the name ends in .parquet or .pq):
  curves    bucket,segment,slope,width   one row per linear piece: slope = marginal cost
                                          (currency/share), width = shares; slopes nondecreasing
                                          within a bucket (segment orders them, optional)
        or  bucket,size,cost             points of g_i from size 0 (cost 0), e.g. a book walk
  schedule  bucket,x[,remaining,x_lots]  shares traded per bucket (remaining and x_lots, the
                                          slices in whole lots, are ignored on read)
  states    [symbol,]bucket,spread,depth,imbalance,volatility,hour_of_day,mid
                                          one row per bucket, as `convexsched features` writes
                                          (a symbol column: pick one with --symbol)
  book      inferred from the file, or --format:
""" + "\n".join(f"    {name:<11}{spec.files}" for name, spec in BOOK_FORMATS.items())


# Values that start with "-" but are numbers (exponents, lists, ranges), not options.
_NEGATIVE_VALUE = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?([,:].*)?$")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (usage stays available through --help).

    ``--psi -1e-6`` and ``--grid -100,0,100`` reach the option's own check (argparse alone
    would take them for options and say "expected one argument").
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_VALUE

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _RenamedOption(argparse.Action):
    """An option under its 0.2 name: stores into the new option and says so on stderr."""

    def __init__(self, *args, new: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        log.info(f"note: {option_string} is deprecated; use {self.new} (removed in 0.4)")
        setattr(namespace, self.dest, values)


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _progress(iterable, **options):
    """A tqdm bar on stderr, shown only when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, disable=None, leave=False, **options)


# ---------------------------------------------------------------------- argument types


def _float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _bounded_float(accept, requirement):
    """An argument type: a finite number with ``accept(value)``, else "must be REQUIREMENT"."""

    def parse(text):
        value = _float(text)
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    return parse


_positive_float = _bounded_float(lambda value: value > 0, "> 0")
_nonnegative_float = _bounded_float(lambda value: value >= 0, ">= 0")
_percent = _bounded_float(lambda value: 0 < value <= 100, "a percentage in (0, 100]")


def _sizes(text):
    """``"100,200,500"`` or ``"START:STOP:STEP"`` (STOP included) as a float array."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if not step > 0 or not stop > start:
                raise ValueError
            count = (stop - start) / step + 1
            if not count <= MAX_SIZES:  # checked before np.arange allocates (NaN and inf included)
                raise argparse.ArgumentTypeError(
                    f"{text!r} makes {count:,.0f} sizes; at most {MAX_SIZES:,}: choose a larger STEP"
                )
            values = np.arange(start, stop + step / 2, step)
        else:
            values = np.array([float(part) for part in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 100,200,500 or START:STOP:STEP, got {text!r}") from None
    if not np.isfinite(values).all() or (values < 0).any() or np.any(np.diff(values) <= 0):
        raise argparse.ArgumentTypeError(f"sizes must be finite, >= 0 and increasing, got {text!r}")
    if len(values) > MAX_SIZES:
        raise argparse.ArgumentTypeError(f"{len(values):,} sizes; at most {MAX_SIZES:,}")
    return values


def _freq(text):
    """A positive bucket width such as ``1min``, ``30s`` or ``5min``."""
    import pandas as pd

    try:
        value = pd.Timedelta(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a bucket width like 1min, 30s or 5min, got {text!r}") from None
    if value <= pd.Timedelta(0):
        raise argparse.ArgumentTypeError(f"must be a positive width like 1min, got {text!r}")
    return text


def _tz(text):
    from .data.loaders import check_tz

    try:
        return check_tz(text, "time zone")
    except InvalidInputError as error:
        raise argparse.ArgumentTypeError(str(error).split(": ", 1)[1]) from None


def _solver(text):
    from .optimize.solve import SOLVERS

    if text.upper() not in SOLVERS:
        raise argparse.ArgumentTypeError(f"unknown solver {text!r}; choose from {', '.join(SOLVERS)}")
    return text.upper()


def _threads(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of threads >= 1, got {text!r}")
    return int(text)


def _weights(text):
    """``linear``, ``constant`` or ``power:GAMMA`` as an :class:`Objective` weights argument."""
    if text in ("linear", "constant"):
        return text
    if text.startswith("power:"):
        return ("power", _float(text.split(":", 1)[1]))
    raise argparse.ArgumentTypeError(f"expected linear, constant or power:GAMMA, got {text!r}")


def _transient(text):
    """``HALF_LIFE:STRENGTH`` (buckets, currency per share squared) as a ``TransientImpact``."""
    from .optimize.terms import TransientImpact

    half_life, colon, strength = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(f"expected HALF_LIFE:STRENGTH (e.g. 5:1e-6), got {text!r}")
    try:
        return TransientImpact(half_life=_float(half_life), strength=_float(strength))
    except InvalidInputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# ---------------------------------------------------------------------- shared options


def _add_book_arguments(parser, table=False, required=True, title=None, universe=False):
    """--book/--synthetic (or --table, for training data) and the reader options; the group."""
    title = title or (
        "training data (one of --book, --synthetic, --table)" if table else "order book (one of --book, --synthetic)"
    )
    source = parser.add_argument_group(title)
    choice = source.add_mutually_exclusive_group(required=required)
    choice.add_argument("--book", type=Path, metavar="PATH", help="order-book file (format inferred)")
    choice.add_argument(
        "--synthetic", type=int, nargs="?", const=0, metavar="SEED",
        help="the seeded SYNTHETIC book instead (never market data; default seed 0)",
    )  # fmt: skip
    if table:
        choice.add_argument("--table", type=Path, metavar="PATH",
                            help="an impact table: timestamp,size,slippage,spread,depth,imbalance,volatility,hour_of_day,mid")  # fmt: skip
    if universe:
        choice.add_argument("--universe", type=Path, metavar="MANIFEST",
                            help="a CSV of symbol,day,file,size: backtest every key (see --scheduler)")  # fmt: skip
    source.add_argument("--format", choices=tuple(BOOK_FORMATS), help="the book's format, when not inferred (see the list below)")
    source.add_argument("--preset", help="column preset of a snapshot table: cn_l2, sse_l2, wide")
    source.add_argument("--symbol", help="instrument to use when the file holds several")
    source.add_argument("--tick-size", type=_positive_float, metavar="TICK")
    source.add_argument("--tz", type=_tz, help="time zone of naive timestamps, e.g. Asia/Shanghai")
    source.add_argument("--sessions", choices=("us_equity", "cn_equity"),
                        help="trading hours of a book whose format does not say them (e.g. a wide CSV)")  # fmt: skip
    source.add_argument("--previous", type=Path, action="append", metavar="PATH",
                        help="a Binance depth file of the same stream before --book, for a file that "
                             "continues it without a snapshot (repeat for several, oldest first)")  # fmt: skip
    source.add_argument("--no-sort", action="store_true",
                        help="drop rows older than a row before them instead of sorting by timestamp")  # fmt: skip
    source.add_argument("--strict", action="store_true",
                        help="exit 2 when the reader drops any row or has to assume a time zone")  # fmt: skip
    return source


def _add_output_arguments(parser, output_help, required=True):
    """--output (or -o) and --force: the one overwrite rule of every command."""
    parser.add_argument("--output", "-o", type=Path, required=required, help=output_help)
    parser.add_argument("--force", action="store_true", help="replace output files that exist")


def _add_threads_argument(parser):
    parser.add_argument(
        "--threads", type=_threads, default=1, metavar="N",
        help="BLAS/OpenMP threads for fitting and predicting (default 1: on a busy machine more "
             "threads than free cores make gradient boosting many times slower)",
    )  # fmt: skip


def _add_order_arguments(parser, zero=False, required=True, total_help="shares to execute"):
    """--total or --pct-volume: the order size in shares or as a share of the traded volume."""
    order = parser.add_mutually_exclusive_group(required=required)
    order.add_argument("--total", "-S", type=_nonnegative_float if zero else _positive_float, metavar="S",
                       help=total_help)  # fmt: skip
    order.add_argument("--pct-volume", type=_percent, metavar="PCT",
                       help="shares to execute as PCT percent of the volume the book traded (needs a book with volume)")  # fmt: skip


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
        "--transient", type=_transient, metavar="H:K",
        help="add our own footprint, TransientImpact: k/2 sum_ij x_i x_j 2^(-|i-j|/h), half-life H buckets, "
             "strength K currency per share^2 (solved by the proximal gradient)",
    )  # fmt: skip
    group.add_argument(
        "--sense", choices=("eq", "le"), default="eq",
        help="sum x = S (default) or sum x <= S (a receding-horizon window)",
    )  # fmt: skip
    group.add_argument(
        "--budget", dest="sense", choices=("eq", "le"), action=_RenamedOption, new="--sense", help=argparse.SUPPRESS
    )


def _objective(args):
    from .optimize.objective import Objective

    objective = Objective(rho=args.rho, psi=args.psi, weights=args.weights)
    return objective + args.transient if getattr(args, "transient", None) is not None else objective


def _read_books(args, one=False):
    """Books of the chosen source, keyed by symbol (only ``--symbol`` when given).

    With ``one``, a file of several symbols is an error unless ``--symbol`` picks one.

    Each book's load report goes to stderr (rows read, kept, dropped per reason, sorted, and
    the reader's assumptions). Books that kept no row are left out with a warning; when none is
    left, or any row was dropped under ``--strict``, the error names the reasons.
    """
    from .data.book import require_rows
    from .data.loaders import read_book, read_books
    from .data.synthetic import synthetic_book

    if args.synthetic is not None:
        book = synthetic_book(args.synthetic)
        return {book.symbol: book}
    if not args.book.is_file():
        raise DataError(f"no such file: {args.book}")
    options = {
        key: value
        for key, value in (
            ("preset", args.preset),
            ("tick_size", args.tick_size),
            ("tz", args.tz),
            ("sessions", args.sessions),
            ("previous", args.previous),
        )
        if value is not None
    }
    options["sort"] = not args.no_sort
    if args.symbol is not None:
        books = {args.symbol: read_book(args.book, args.format, symbol=args.symbol, **options)}
    else:
        books = read_books(args.book, args.format, **options)
    if not books:
        raise DataError(f"{args.book.name} holds no book rows")
    if one and len(books) != 1:
        raise InvalidInputError(f"{args.book.name} holds {len(books)} symbols {list(books)}; pass --symbol")
    for report in (book.report for book in books.values()):
        if args.strict and (report.rows_dropped or report.warnings):
            problem = report.drops() if report.rows_dropped else report.warnings[0]
            raise DataError(f"--strict: {report.symbol} from {report.source}: {problem}")
    usable = {symbol: book for symbol, book in books.items() if len(book)}
    if not usable:
        require_rows(next(iter(books.values())))
    for book in books.values():
        report = book.report
        if not len(book):
            log.warning(f"{report.symbol} kept no row and is left out: {report.summary()}")
            continue
        log.info(f"book {report.summary()}")
        if book.sessions is not None:
            log.info(f"  {_coverage(book, getattr(args, 'freq', '1min'))}")
        for warning in report.warnings:
            log.warning(f"{report.symbol}: {warning}")
    return usable


def _coverage(book, freq):
    """How much of its trading sessions a book covers, e.g. a one-hour file of a four-hour day."""
    from .data.sessions import session_buckets

    buckets = session_buckets(book, freq)
    filled = int((buckets.counts > 0).sum())
    share = filled / len(buckets.index) if len(buckets.index) else 0.0
    return (
        f"covers {filled} of the {len(buckets.index)} {freq} buckets of its sessions ({share:.0%}); "
        f"{buckets.n_outside} snapshots outside them"
    )


def _read_one_book(args):
    return next(iter(_read_books(args, one=True).values()))


# ---------------------------------------------------------------------- subcommands


def _inputs(args, *names):
    """``{"--name": path}`` of the input options given on the command line.

    A LOBSTER book's message file is included (it is read too), and so are ``--previous`` files.
    """
    from .data.loaders import source_files

    inputs = {f"--{name.replace('_', '-')}": getattr(args, name) for name in names if getattr(args, name, None) is not None}
    if "--book" in inputs and inputs["--book"].is_file():
        inputs.update({f"--book ({path.name})": path for path in source_files(inputs["--book"])[1:]})
    if "--book" in inputs:
        inputs.update({f"--previous ({path.name})": path for path in getattr(args, "previous", None) or []})
    return inputs


@contextmanager
def _heartbeat(what, every=15.0):
    """Say on stderr every ``every`` seconds that ``what`` is still running.

    A gradient-boosting fit prints nothing of its own; on a busy machine it can take minutes.
    """
    done = threading.Event()
    started = time.perf_counter()

    def beat():
        while not done.wait(every):
            log.info(f"  {what}: still running after {time.perf_counter() - started:.0f} s")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _run_demo(args):
    from .demo import demo_files, run_demo

    folder = args.output_dir
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"--output-dir {folder} is a file, not a folder")
    check_outputs({f"--output-dir {name}": folder / name for name in demo_files(not args.no_plots)}, force=args.force)
    started = time.perf_counter()
    result = run_demo(folder, total=args.total, seed=args.seed, plots=not args.no_plots, echo=print)
    print(
        f"\nwrote {len(result.files)} files to {folder} in {time.perf_counter() - started:.1f} s of wall time "
        "(after start-up; with an empty numba cache this includes compiling the kernels)"
    )
    return EXIT_OK if result.certified else EXIT_FAILURE


def _run_features(args):
    from .data.features import book_features, bucket_features
    from .data.slippage import impact_table

    check_outputs({"--output": args.output}, _inputs(args, "book"), args.force)
    if args.kind == "task1":
        log.info("note: --kind task1 is deprecated; use --kind impact_table (removed in 0.4)")
        args.kind = "impact_table"
    books = _read_books(args)
    frames = []
    for symbol, book in _progress(books.items(), desc="features", total=len(books)):
        if args.kind == "buckets":
            frame = bucket_features(book, freq=args.freq, how=args.how).reset_index()
        elif args.kind == "snapshots":
            frame = book_features(book).rename_axis("timestamp").reset_index()
        else:
            frame = impact_table(book, args.sizes, side=args.side, unit=args.unit)
        if len(books) > 1:
            frame.insert(0, "symbol", symbol)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    write_table(table, args.output)
    print(f"{args.kind}: {len(table):,} rows x {table.shape[1]} columns from {len(books)} book(s) -> {args.output}")
    return EXIT_OK


def _training_table(args):
    from .data.slippage import impact_table, read_impact_table

    if args.table is not None:
        return read_impact_table(args.table, unit=args.unit, tz=args.tz)
    tables = []
    for symbol, book in _progress(_read_books(args).items(), desc="book walk"):
        table = impact_table(book, args.sizes, side=args.side)
        # Beyond the displayed depth the cost is an extrapolation rule, not an observation.
        tables.append(table[~table["beyond_depth"]].assign(symbol=symbol))
    table = pd.concat(tables, ignore_index=True)
    if args.thin > 1:
        stamps = table["timestamp"].drop_duplicates().iloc[:: args.thin]
        table = table[table["timestamp"].isin(stamps)]
    return table


def _run_fit(args):
    from .model.oracle import ImpactOracle

    check_outputs({"--output": args.output}, _inputs(args, "book", "table"), args.force)
    table = _training_table(args)
    table = table.dropna(subset=[c for c in ("volatility", "spread", "depth") if c in table])
    if table.empty:
        raise DataError("no training rows left after dropping rows with missing features")
    oracle = ImpactOracle(
        target=args.target,
        validation_fraction=args.validation_fraction or None,
        max_iter=args.max_iter,
        learning_rate=args.learning_rate,
        random_state=args.seed,
    )
    probe = " plus a validation probe" if oracle.validation_fraction else ""
    log.info(f"fitting on {len(table):,} rows: up to {args.max_iter} boosting iterations{probe}, {args.threads} thread(s)")
    started = time.perf_counter()
    with _heartbeat("fit"):
        oracle.fit(table, table["slippage"])
    seconds = time.perf_counter() - started
    error = np.abs(oracle.predict(table) - table["slippage"].to_numpy()).mean()
    with atomic_path(args.output) as temporary:
        oracle.save(temporary)
    print(
        f"fitted ImpactOracle on {len(table):,} rows in {seconds:.1f} s: {oracle.n_iter_} boosting "
        f"iterations kept, in-sample MAE {error:.4g} (currency) -> {args.output}"
    )
    return EXIT_OK


def _load_oracle(path):
    """``ImpactOracle.load`` with any unpickling failure reported as bad input."""
    from .model.oracle import ImpactOracle

    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    try:
        return ImpactOracle.load(path)
    except ConvexSchedError:
        raise
    except Exception as error:  # noqa: BLE001 - a file that is not a pickle fails in arbitrary ways
        raise DataError(f"cannot read an oracle from {path.name}: {type(error).__name__}: {error}") from None


def _read_states(path, symbol=None, pool=False):
    """A states file indexed by bucket (timestamps when they parse), rows with gaps dropped.

    A file of several symbols (what ``features`` writes for such a book: a leading ``symbol``
    column) gives the rows of ``symbol``, which it then needs, or all of them with ``pool``
    (a profile learnt across symbols).
    """
    states = read_table(path)
    if pool:
        states = states.drop(columns="symbol", errors="ignore")
    if "symbol" in states.columns:
        symbols = list(pd.unique(states["symbol"]))
        if symbol is None and len(symbols) > 1:
            raise InvalidInputError(f"{Path(path).name} holds {len(symbols)} symbols {symbols}; pass --symbol")
        if symbol is not None and symbol not in symbols:
            raise InvalidInputError(f"{Path(path).name} has no symbol {symbol!r}; it holds {symbols}")
        states = states[states["symbol"] == (symbols[0] if symbol is None else symbol)].drop(columns="symbol")
    if "bucket" in states.columns:
        try:
            labels = pd.DatetimeIndex(pd.to_datetime(states["bucket"], format="ISO8601"))
        except (ValueError, TypeError):
            labels = pd.Index(states["bucket"])
        states = states.drop(columns="bucket").set_axis(labels.rename("bucket"))
    return _complete_states(states, Path(path).name)


def _complete_states(states, name):
    """The rows of ``states`` without a missing value (buckets without data are left out)."""
    from .data.features import STATE_COLUMNS

    present = [c for c in STATE_COLUMNS + ("mid",) if c in states.columns]
    gaps = states[present].isna().any(axis=1)
    if gaps.all():
        raise DataError(f"{name}: every row misses a state value")
    if gaps.any():
        log.info(f"note: {int(gaps.sum())} bucket(s) of {name} have missing state values and are left out of the plan")
    return states[~gaps]


def _grid(args, states, name):
    if args.grid is not None:
        return args.grid
    from .demo import state_size_grid

    if "depth" not in states.columns:
        raise DataError(f"{name} has no depth column to size the default grid; pass --grid")
    return state_size_grid(states)


def _plan_inputs(args):
    """Curves of the plan and the bucket states behind them: ``(curves, states or None)``.

    ``--curves``: the file. ``--oracle`` with ``--states`` or a book: the oracle's curves on
    those bucket states. A book alone: each bucket's cost is the mean book walk of its
    snapshots (hindsight: the day's own books).
    """
    from .model.convexify import convexify

    has_book = args.book is not None or args.synthetic is not None
    if args.curves is not None:
        if has_book or args.states is not None:
            raise InvalidInputError("--curves takes no --states or --book: the curves are the cost model")
        return read_curves(args.curves, convexify=args.convexify), None
    if args.oracle is not None:
        if has_book == (args.states is not None):
            raise InvalidInputError("--oracle needs the book state per bucket: pass --states or --book/--synthetic")
        oracle = _load_oracle(args.oracle)
        if args.states is not None:
            states, name = _read_states(args.states, args.symbol), args.states.name
        else:
            from .data.features import bucket_features

            book = _read_one_book(args)
            states, name = _complete_states(bucket_features(book, freq=args.freq), book.symbol), book.symbol
        curves, report = oracle.cost_curves(
            states, _grid(args, states, name), convexify=args.convexify or "slopes-isotonic", return_report=True
        )
        print(report)
        return curves, states
    if not has_book:
        raise InvalidInputError("plan needs a cost model: --curves, --oracle with --states or --book, or --book alone")
    from .data.features import bucket_features
    from .data.sessions import session_buckets
    from .data.slippage import walk_book

    book = _read_one_book(args)
    states = _complete_states(bucket_features(book, freq=args.freq), book.symbol)
    grid = _grid(args, states, book.symbol)
    labels = session_buckets(book, args.freq).labels
    inside = labels.notna().to_numpy()
    costs = walk_book(book, grid, side=args.side)[inside]
    values = costs.groupby(labels[inside]).mean().reindex(states.index)
    curves, report = convexify(grid, values.to_numpy(), method=args.convexify or "slopes-isotonic", index=states.index)
    print(f"curves: mean {args.side} book walk of each bucket's snapshots in {book.symbol} (hindsight); {report}")
    return curves, states


def _plan_total(args, states):
    """``--total``, or ``--pct-volume`` percent of the traded volume the states or the book show."""
    if args.total is not None:
        return args.total
    if states is None or "volume" not in states.columns:
        raise InvalidInputError("--pct-volume needs traded volume: plan from --book, or --states with a volume column")
    return _share_of_volume(args.pct_volume, states["volume"])


def _units(book):
    """What the order counts: "shares" of a stock (a book on equity sessions), else "units" (contracts, coins)."""
    name = getattr(book.sessions, "name", None) or ""
    return "shares" if name.startswith(("us_equity", "cn_equity")) else "units"


def _amount(value):
    """An order size for the eye: whole units from 1,000 on, else six significant digits (a coin's fractions)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.6g}"


def _share_of_volume(percent, volume, units="shares"):
    """``percent`` of the traded ``volume`` (a Series, None when the source has none), said on stdout."""
    traded = float(volume.sum()) if volume is not None else 0.0
    if not traded > 0:
        raise DataError("--pct-volume: the book shows no traded volume")
    total = percent / 100 * traded
    print(f"S = {percent:g}% of {_amount(traded)} {units} traded = {_amount(total)} {units}")
    return total


def _print_costs(value, total, states):
    """The objective with its unit, per share, and in bps of the notional when a mid is known."""
    line = f"objective F(x) = {value:,.6g} in the curves' currency"
    if total > 0:
        line += f" ({value / total:.6g} per share"
        if states is not None and "mid" in states.columns:
            line += f", {1e4 * value / (total * float(states['mid'].mean())):.4g} bps of S x the mean mid"
        line += ")"
    print(line)


# Objective C hands problems past the chain solver's limit to Clarabel; past this many segments
# (N x K) Clarabel ran for 20 minutes and 6.8 GB without an answer (N = 200,000, K = 16).
CVXPY_MAX_SEGMENTS = 2_000_000


def _check_method(args, curves, objective):
    """Refuse a size cvxpy cannot solve here, and say on stderr when ``solve`` will switch to it."""
    from .optimize import chain

    switched = args.method == "fast" and objective.psi > 0 and chain.too_large(curves)
    size = curves.n_buckets * curves.n_segments
    if (switched or args.method == "cvxpy") and size > CVXPY_MAX_SEGMENTS:
        why = "past the exact chain solver's limit and " if switched else ""
        raise InvalidInputError(
            f"{curves.n_buckets} buckets x {curves.n_segments} segments = {size:,} is {why}past what cvxpy "
            f"solves here ({CVXPY_MAX_SEGMENTS:,}); use wider buckets (--freq) or a coarser --grid"
        )
    if switched:
        log.info(f"note: objective C on {curves.n_buckets} x {curves.n_segments} segments is past the exact "
                 "chain solver's limit: solving with cvxpy (Clarabel) instead")  # fmt: skip


def _run_plan(args):
    from .optimize.lots import round_to_lots
    from .optimize.solve import solve

    certificate = args.certificate or Path(args.output).with_suffix(".kkt.json")
    outputs = {"--output": args.output, "--certificate": certificate, "--plot": args.plot, "--curves-out": args.curves_out}
    check_outputs(outputs, _inputs(args, "curves", "oracle", "states", "book"), args.force)
    if args.plot is not None:
        FigureCanvasBase = require("matplotlib.backend_bases", "plot", "--plot").FigureCanvasBase
        formats = FigureCanvasBase.get_supported_filetypes()
        if args.plot.suffix.lstrip(".").lower() not in formats:
            raise InvalidInputError(f"--plot {args.plot}: the suffix must name an image format: {', '.join(formats)}")
    curves, states = _plan_inputs(args)
    total = _plan_total(args, states)
    objective = _objective(args)
    _check_method(args, curves, objective)
    schedule = solve(curves, total, objective, sense=args.sense, method=args.method, solver=args.solver)
    print(schedule)
    _print_costs(schedule.objective_value, schedule.total, states)
    if not schedule.kkt.ok:
        print(f"{PROGRAM}: the KKT certificate fails: schedule not written", file=sys.stderr)
        return EXIT_FAILURE
    lots = None
    if args.lot is not None:
        rounding = round_to_lots(curves, schedule.total, objective, schedule.x, args.lot)
        print(rounding)
        lots = rounding.x.to_numpy()
    record = certificate_record(
        schedule.kkt, schedule.total, objective, args.sense,
        method=schedule.method, algorithm=schedule.algorithm, solver=schedule.solver,
    )  # fmt: skip
    figure = _schedule_figure(schedule) if args.plot is not None else None
    if args.curves_out is not None:
        write_curves(curves, args.curves_out)
    write_schedule(schedule, args.output, lots=lots)
    write_certificate(record, certificate)
    if figure is not None:
        save_figure(figure, args.plot)
    print(f"schedule -> {args.output}, certificate -> {certificate}")
    return EXIT_OK


def _schedule_figure(schedule):
    require("matplotlib", "plot", "--plot").use("Agg")
    ax = schedule.plot()
    ax.figure.tight_layout()
    return ax.figure


def _run_check(args):
    from .optimize.kkt import check_kkt

    check_outputs({"--json": args.json}, _inputs(args, "curves", "schedule"), args.force)
    curves = read_curves(args.curves)
    x = read_schedule(args.schedule, curves)
    objective = _objective(args)
    report = check_kkt(curves, args.total, objective, x, sense=args.sense, multiplier=args.multiplier, tol=args.tol)
    if args.json is not None:
        write_certificate(certificate_record(report, args.total, objective, args.sense), args.json)
    print(f"{args.schedule}: {curves.n_buckets} buckets, sum x = {x.sum():.10g}, S = {args.total:.10g}, "
          f"objective {objective.kind}")  # fmt: skip
    print(report)
    return EXIT_OK if report.ok else EXIT_FAILURE


def _state_profile(args):
    """A :class:`StateForecast` fitted on the ``--profile`` states (other days or symbols)."""
    from .model.forecast import StateForecast

    if args.profile is None:
        return None
    if args.oracle is None:
        raise InvalidInputError("--profile forecasts the book state for the model's plans: it needs --oracle")
    states = _read_states(args.profile, pool=True)
    if not isinstance(states.index, pd.DatetimeIndex):
        raise DataError(f"{args.profile.name}: the bucket column must hold timestamps (as `convexsched features` writes)")
    return StateForecast(freq=args.freq).fit(states)


def _run_backtest(args):
    from .execution.backtest import DRIFT_HELP, backtest
    from .execution.strategies import default_strategies, strategies_by_name

    inputs = _inputs(args, "book", "oracle", "profile", "universe")
    if args.universe is not None:
        from .execution.universe import manifest_files

        inputs.update(manifest_files(args.universe))  # the books it names are inputs too
    check_outputs({"--output": args.output}, inputs, args.force)
    if args.universe is not None:
        return _run_manifest_backtest(args)
    if args.total is None and args.pct_volume is None:
        raise InvalidInputError("give --total or --pct-volume (with --universe the manifest's sizes are used)")
    forecast = _state_profile(args)
    book = _read_one_book(args)
    oracle = _load_oracle(args.oracle) if args.oracle is not None else None
    strategies = None
    if args.strategies is not None:
        strategies = strategies_by_name(args.strategies, with_model=oracle is not None)
    total = args.total
    if total is None:
        from .data.sessions import session_buckets

        # The volume of the sessions the order trades in, as plan counts it (not the pre-market).
        volume = book.traded_volume
        inside = session_buckets(book, args.freq).labels.notna().to_numpy()
        total = _share_of_volume(args.pct_volume, None if volume is None else volume[inside], _units(book))
    table = backtest(
        book, total, strategies=strategies, model=oracle, side=args.side, forecast=forecast, freq=args.freq,
        half_life=args.half_life, progress=sys.stderr.isatty(),
    )  # fmt: skip
    if oracle is not None:
        # The model's plans see the book state through a forecast; without --profile it is the
        # opening state carried all day, which a reader must be told.
        model_free = {s.name for s in default_strategies(with_model=False)}
        label = "profile" if forecast is not None else "persistence"
        needs_model = [name not in model_free and not table.loc[name, "lookahead"] for name in table.index]
        table.insert(0, "state_forecast", [label if needed else "-" for needed in needs_model])
    if args.output is not None:
        write_table(table.reset_index(), args.output)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"{book!r}, {args.side} S = {_amount(total)} {_units(book)}, resilience half-life {args.half_life:g} s")
        print("capture = (TWAP - strategy) / (TWAP - hindsight A): 1 is the hindsight bound, 0 is TWAP")
        print(table.to_string(float_format=lambda v: f"{v:,.3f}"))
        print(textwrap.fill(DRIFT_HELP, HELP_WIDTH))
    return EXIT_OK


def _run_manifest_backtest(args):
    """``convexsched backtest --universe MANIFEST``: prints a summary, writes ``--output``.

    Returns the exit code: 0 when every key ran, 1 when some failed (they are listed).
    """
    from .execution.universe import STATUS_OK, backtest_task, cluster, read_manifest, run_universe

    keys = read_manifest(args.universe)
    if keys.attrs["outside"]:
        print(f"note: {keys.attrs['outside']} file(s) of {Path(args.universe).name} lie outside its folder", file=sys.stderr)
    options = {"side": args.side, "freq": args.freq, "half_life": args.half_life}
    if args.strategies is not None:
        options["strategies"] = list(args.strategies)
    if args.oracle is not None:
        options["oracle"] = str(Path(args.oracle).resolve())
    if args.total is not None:
        options["size"] = args.total
    started = time.perf_counter()
    with cluster(args.scheduler) as client:
        where = "serially" if client is None else f"on {args.scheduler} ({len(client.scheduler_info()['workers'])} workers)"
        table = run_universe(keys, backtest_task, client=client, progress=sys.stderr.isatty(),
                             timeout=getattr(args, "timeout", None), **options)  # fmt: skip
    seconds = time.perf_counter() - started
    if args.output is not None:
        write_table(table, args.output)
    ok = table[table["status"] == STATUS_OK]
    failed = table.attrs["failed"]
    print(f"universe {Path(args.universe).name}: {len(keys)} keys {where} in {seconds:.1f} s of wall time "
          "(cluster start-up and book reading included), "
          f"{len(keys) - len(failed)} ok, {len(failed)} failed")  # fmt: skip
    if len(ok):
        summary = ok.pivot_table(index="strategy", values=["cost_bps", "vs_twap_bps", "capture"], aggfunc="mean")
        # Shares left unfilled make a cost look low: count the keys where that happened.
        summary["keys_unfilled"] = ok.assign(short=ok["unfilled"] > 0).groupby("strategy")["short"].sum()
        with pd.option_context("display.width", 160):
            print("mean over keys (bps of arrival notional; capture 1 = hindsight bound, 0 = TWAP; "
                  "keys_unfilled: keys where the strategy left shares unfilled):")  # fmt: skip
            print(summary.to_string(float_format=lambda v: f"{v:,.3f}"))
    for key, (_, row) in zip(failed, table[table["status"] != STATUS_OK].iterrows(), strict=True):
        print(f"failed: {key.get('symbol')} {key.get('day') or ''}: {row['error']}", file=sys.stderr)
    if table.attrs["interrupted"]:
        done = table.attrs["finished"]
        saved = f"; their results are in {args.output}" if args.output is not None else ""
        print(f"interrupted after {done} of {len(keys)} keys{saved}", file=sys.stderr)
        return 130
    return 0 if not failed else 1


# Where `bench --quick` sends the tables of scripts that can write elsewhere.
QUICK_RESULTS = "convexsched-bench-quick"


def _benchmark_scripts():
    """The runnable scripts of benchmarks/ (``_name.py`` files are their shared helpers)."""
    if not BENCHMARKS.is_dir():
        return []
    return [path for path in sorted(BENCHMARKS.glob("*.py")) if not path.name.startswith("_")]


def _run_bench(args):
    from .timing import COLUMNS_HELP, builtin_timing

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
        print(textwrap.fill(COLUMNS_HELP, HELP_WIDTH))
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
    # The order here is the order of `convexsched --help`.
    _add_demo_parser(commands)
    _add_features_parser(commands)
    _add_fit_parser(commands)
    _add_plan_parser(commands)
    _add_check_parser(commands)
    _add_backtest_parser(commands)
    _add_bench_parser(commands)
    return parser


def _add_command(commands, name, handler, summary, description="", epilog=""):
    """Add one subcommand with its summary, description and the exit codes, dispatching to ``handler``."""
    # One-paragraph descriptions are wrapped; multi-line ones keep their layout.
    if description and "\n" not in description:
        description = textwrap.fill(description, HELP_WIDTH)
    sub = commands.add_parser(
        name, help=summary, description=textwrap.fill(summary, HELP_WIDTH) + ("\n\n" + description if description else ""),
        epilog=(epilog + "\n\n" if epilog else "") + EXIT_CODES_HELP, formatter_class=_formatter,
    )  # fmt: skip
    sub.set_defaults(handler=handler)
    sub.add_argument("--debug", action="store_true",
                     help="log at debug level, and show the traceback of any error")  # fmt: skip
    return sub


def _add_demo_parser(commands):
    """Add ``demo``: the whole pipeline on the synthetic book."""
    demo = _add_command(
        commands, "demo", _run_demo,
        "end to end on the synthetic book: features, oracle, curves, A/B/C fast vs cvxpy with KKT, "
        "receding horizon, backtest, plots",
        "Writes features, curves, schedules with certificates, the oracle, the backtest table and "
        "plots to OUTPUT_DIR; its last line says how long it took after start-up. The whole command takes "
        "about 50 s the first time after installing (most of it compiling the numba kernels into their cache) "
        "and about 8 s after, on a 2-core machine (see the README).",
    )  # fmt: skip
    demo.add_argument("--output-dir", "-o", type=Path, default=Path("convexsched-demo"), metavar="DIR",
                      help="folder for the files (default ./convexsched-demo/)")  # fmt: skip
    demo.add_argument(
        "--total", "-S", type=_positive_float, default=100_000.0, metavar="S", help="shares to buy (default 100000)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic book (default 0)")
    demo.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    demo.add_argument("--force", action="store_true", help="replace the demo's files in OUTPUT_DIR if they exist")
    _add_threads_argument(demo)


def _add_features_parser(commands):
    """Add ``features``: a book to per-bucket, per-snapshot or impact-table features."""
    features = _add_command(
        commands, "features", _run_features,
        "book -> per-bucket features, per-snapshot features or the impact table",
        "buckets:   bucket,mid,spread,depth,imbalance,volatility,hour_of_day,n_snapshots[,volume]\n"
        "           (the states file of `plan --oracle`)\n"
        "snapshots: timestamp,mid,spread,depth,imbalance,volatility,hour_of_day\n"
        "impact_table: timestamp,size,slippage,vol_ratio,spread,depth,imbalance,volatility,hour_of_day,"
        "mid,beyond_depth\n"
        "           (the training table of `fit --table`; `task1` is its deprecated 0.2 name)\n"
        "A file with several symbols gives one table with a leading symbol column.",
        FORMATS_HELP,
    )  # fmt: skip
    _add_book_arguments(features)
    features.add_argument("--kind", choices=("buckets", "snapshots", "impact_table", "task1"), default="buckets",
                          help="what to compute (default buckets)")  # fmt: skip
    features.add_argument("--freq", type=_freq, default="1min", help="bucket width (default 1min)")
    features.add_argument("--how", choices=("mean", "median", "first", "last"), default="mean",
                          help="statistic over a bucket's snapshots (default mean)")  # fmt: skip
    features.add_argument("--sizes", type=_sizes, default=_sizes(DEFAULT_IMPACT_SIZES),
                          help=f"impact_table order sizes in shares: a,b,c or START:STOP:STEP (default {DEFAULT_IMPACT_SIZES})")  # fmt: skip
    features.add_argument("--side", choices=("buy", "sell"), default="buy")
    features.add_argument("--unit", choices=("currency", "per_share", "bps"), default="currency",
                          help="impact_table slippage unit (default currency)")  # fmt: skip
    _add_output_arguments(features, "CSV or Parquet file to write")


def _add_fit_parser(commands):
    """Add ``fit``: train and save the impact oracle."""
    fit = _add_command(
        commands, "fit", _run_fit,
        "train the impact oracle on a book (walked for a size grid) or an impact table, and save it",
        "Rows whose size exceeds the displayed depth are left out (their cost is extrapolated, not "
        "observed). The saved file is in skops' format, not a pickle: --oracle loads it without running code "
        "from it, and refuses pickle or joblib files.",
    )  # fmt: skip
    source = _add_book_arguments(fit, table=True)
    source.add_argument("--sizes", type=_sizes, default=_sizes(DEFAULT_IMPACT_SIZES),
                        help=f"order sizes to walk the book for (default {DEFAULT_IMPACT_SIZES})")  # fmt: skip
    source.add_argument("--side", choices=("buy", "sell"), default="buy")
    source.add_argument("--unit", choices=("currency", "per_share", "bps"), default="currency",
                        help="unit of the --table slippage column (default currency)")  # fmt: skip
    source.add_argument("--thin", type=int, default=1, metavar="K", help="keep every K-th snapshot (faster fits)")
    model = fit.add_argument_group("model")
    model.add_argument("--target", choices=("bps", "per_share", "log"), default="bps",
                       help="what the trees learn (default bps: cost per share in bps of the mid)")  # fmt: skip
    model.add_argument("--max-iter", type=int, default=300, help="boosting iterations (default 300)")
    model.add_argument("--learning-rate", type=_positive_float, default=0.05)
    model.add_argument("--validation-fraction", type=_nonnegative_float, default=0.2,
                       help="time-ordered early-stopping split, 0 for none (default 0.2)")  # fmt: skip
    model.add_argument("--seed", type=int, default=0)
    _add_threads_argument(model)
    _add_output_arguments(fit, "oracle file to write (.skops)")


def _add_plan_parser(commands):
    """Add ``plan``: a cost model to an optimal schedule and its KKT certificate."""
    plan = _add_command(
        commands, "plan", _run_plan,
        "curves, oracle + states, or a book -> optimal schedule CSV and its KKT certificate",
        "Writes the schedule (bucket,x,remaining[,x_lots]) and its certificate as JSON beside it "
        "(SCHEDULE.kkt.json unless --certificate), prints the summary and the certificate. A "
        "schedule whose certificate fails is not written (exit 1). Costs are in the curves' "
        "currency (slopes are currency per share).",
        FORMATS_HELP,
    )  # fmt: skip
    model = plan.add_argument_group(
        "cost model", textwrap.fill("--curves; or --oracle with --states or a book; or a book alone (the mean "
                                    "book walk of each bucket's snapshots, in hindsight)", HELP_WIDTH),
    )  # fmt: skip
    choice = model.add_mutually_exclusive_group()
    choice.add_argument("--curves", type=Path, metavar="PATH", help="cost-curve file")
    choice.add_argument("--oracle", type=Path, metavar="PATH", help="oracle from `convexsched fit`")
    model.add_argument("--states", type=Path, metavar="PATH", help="with --oracle: book state per bucket")
    model.add_argument("--grid", type=_sizes, metavar="SIZES",
                       help="with --oracle: size grid START:STOP:STEP or a,b,c from 0 "
                            "(default 40 steps up to half the median depth)")  # fmt: skip
    model.add_argument("--convexify", choices=("slopes-isotonic", "isotonic", "convex-regression", "hull"),
                       help="convexifier of oracle output (default slopes-isotonic) or of grid-point curves")  # fmt: skip
    model.add_argument("--curves-out", type=Path, metavar="PATH", help="also write the curves used")
    book = _add_book_arguments(plan, required=False, title="order book (for --oracle instead of --states, or alone)")
    book.add_argument("--freq", type=_freq, default="1min", help="bucket width of a book (default 1min)")
    book.add_argument("--side", choices=("buy", "sell"), default="buy", help="side a book is walked for (default buy)")
    _add_order_arguments(plan, zero=True)
    plan.add_argument("--lot", type=_positive_float, metavar="SHARES",
                      help="also round the schedule to whole lots (column x_lots) and report what it costs")  # fmt: skip
    _add_objective_arguments(plan)
    solver = plan.add_argument_group("solver")
    solver.add_argument("--method", choices=("fast", "bisection", "cvxpy"), default="fast",
                        help="exact fast path (default), the dual bisection (E7), or cvxpy")  # fmt: skip
    solver.add_argument("--solver", type=_solver, help="cvxpy solver to try first: CLARABEL, HIGHS, ECOS, OSQP, SCS")
    _add_threads_argument(solver)
    _add_output_arguments(plan, "schedule file to write")
    plan.add_argument("--certificate", type=Path, metavar="PATH", help="certificate JSON to write")
    plan.add_argument("--plot", type=Path, metavar="PNG", help="also save a plot of the schedule")


def _add_check_parser(commands):
    """Add ``check``: KKT-check a schedule file against cost curves."""
    check = _add_command(
        commands, "check", _run_check,
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
    check.add_argument("--force", action="store_true", help="replace the --json file if it exists")


def _add_backtest_parser(commands):
    """Add ``backtest``: execute strategies against a book and tabulate their costs."""
    backtest = _add_command(
        commands, "backtest", _run_backtest,
        "execute strategies against the book's snapshots and tabulate realized costs",
        "Each bucket's slice walks the first usable snapshot of the bucket. Without --oracle only "
        "the model-free strategies run.",
    )  # fmt: skip
    _add_book_arguments(backtest, universe=True)
    _add_order_arguments(backtest, required=False, total_help="shares to execute (with --universe: overrides the "
                         "manifest's sizes)")  # fmt: skip
    backtest.add_argument(
        "--scheduler",
        metavar="WHERE",
        help="with --universe: omitted = serial, 'local' = a LocalCluster, or a Dask scheduler address",
    )
    backtest.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                          help="with --universe: seconds a key may run; a key still running then is reported "
                          "with status 'timeout' and the others go on")  # fmt: skip
    backtest.add_argument("--oracle", type=Path, metavar="PATH", help="oracle from `convexsched fit`")
    backtest.add_argument(
        "--profile", type=Path, metavar="PATH",
        help="bucket states of other days or symbols (`convexsched features`): the intraday profile the "
             "model's plans forecast the book state from; without it they carry the opening state all "
             "day (column state_forecast says persistence)",
    )  # fmt: skip
    backtest.add_argument("--strategies", type=lambda text: text.split(","), metavar="A,B",
                          help="comma-separated strategy names (default: all that apply)")  # fmt: skip
    backtest.add_argument("--side", choices=("buy", "sell"), default="buy")
    backtest.add_argument("--freq", type=_freq, default="1min", help="bucket width (default 1min)")
    backtest.add_argument("--half-life", type=_nonnegative_float, default=0.0, metavar="SECONDS",
                          help="resilience: what a slice takes from a level comes back with this half-life "
                               "(default 0: every minute's book is fresh)")  # fmt: skip
    _add_threads_argument(backtest)
    _add_output_arguments(backtest, "table file to write", required=False)


def _add_bench_parser(commands):
    """Add ``bench``: the benchmark scripts or the built-in timing."""
    bench = _add_command(
        commands, "bench", _run_bench,
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


@contextmanager
def _thread_limit(threads):
    """Cap BLAS and OpenMP threads (gradient boosting, numpy) for the command, when it has --threads."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield


class _LevelPrefix(logging.Formatter):
    """``warning: ...`` / ``debug [module]: ...``; information as it is."""

    def format(self, record):
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        if record.levelno < logging.INFO:
            return f"debug [{record.name}]: {message}"
        return message


@contextmanager
def _logging(debug):
    """Send the package's log records to stderr for one command (debug level with ``--debug``)."""
    logger = logging.getLogger("convexsched")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelPrefix())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _one_line(error):
    text = " ".join(str(error).split())
    return text or type(error).__name__


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` (temporary files) runs."""


@contextmanager
def _terminate_like_interrupt():
    """While the command runs, SIGTERM unwinds the stack as SIGINT does, then the old handler is back."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _escaped_output():
    """Stdout and stderr with control characters escaped.

    Data (symbols, file names, cells) must not drive the user's terminal.
    """
    from ._text import EscapingStream

    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingStream(out), EscapingStream(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


def main(argv=None):
    """Run the command line; returns the exit code (see :data:`EXIT_CODES_HELP`).

    Bad input (a :class:`~convexsched.errors.ConvexSchedError` other than a solver failure, or
    a file the system cannot read or write) is one line and exit 2; anything else is a bug in
    convexsched, said as such with exit 1, its traceback shown under ``--debug``. SIGTERM is
    handled like Ctrl-C (temporary files removed, exit 143), and everything printed has its
    control characters escaped.
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        with _escaped_output(), _terminate_like_interrupt():
            return _main(argv)
    finally:
        release_outputs()


def _main(argv):
    # Logging before parsing: a renamed option says so while it is parsed.
    debug = "--debug" in argv
    with _logging(debug):
        args = build_parser().parse_args(argv)
        try:
            with _thread_limit(getattr(args, "threads", None)):
                return args.handler(args)
        except Terminated:
            print(f"{PROGRAM}: terminated", file=sys.stderr)
            return 143
        except KeyboardInterrupt:
            print(f"{PROGRAM}: interrupted", file=sys.stderr)
            return 130
        except Exception as error:
            if debug:
                traceback.print_exc()
            code, message = _error_line(error)
            print(f"{PROGRAM}: {message}", file=sys.stderr)
            return code


def _error_line(error):
    """The exit code and the one line that reports ``error``."""
    if isinstance(error, SolverError):
        return EXIT_FAILURE, f"solver failure: {_one_line(error)}"
    if isinstance(error, ConvexSchedError):
        return EXIT_USAGE, f"error: {_one_line(error)}"
    if isinstance(error, OSError):
        # A file that cannot be read or written: name it, with the system's reason.
        where = f"{error.filename}: " if error.filename else ""
        return EXIT_USAGE, f"error: {where}{error.strerror or _one_line(error)}"
    return EXIT_FAILURE, (
        f"internal error: {type(error).__name__}: {_one_line(error)} (a bug in convexsched, not in your "
        "input; rerun with --debug for the traceback and report it)"
    )
