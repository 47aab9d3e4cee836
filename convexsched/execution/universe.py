"""A universe of (symbol, day) keys: one task mapped over many books, serially or on Dask.

An execution desk calibrates on many days, plans thousands of symbols each morning and
backtests a universe before trusting a change. :func:`run_universe` maps a task over keys and
collects one table:

* ``client=None`` runs the keys one after the other in this process;
* a :class:`dask.distributed.Client` (a ``LocalCluster`` or a remote scheduler) runs them on its
  workers through ``client.map`` and ``as_completed``. Dask is an optional extra
  (``pip install convexsched[dask]``); nothing here imports it unless a client is given.

Only keys and small result tables travel: the task loads its book inside the worker
(:func:`load_key_book`, so the key's ``file`` must be readable where the workers run). Inner
BLAS/OpenMP pools are pinned to ``threads`` (default 1) around each task with ``threadpoolctl``,
so ``n`` single-threaded workers do not oversubscribe ``n`` cores. A task that raises is
reported in its key's row (``status="error"``, ``error`` holds the exception type and
message) while the other keys complete; a worker that dies is reported the same way
(``status="lost"``). Rows come back in key order, so a serial run and a cluster run of the same
keys give identical tables.

Ready-made tasks take a key with ``symbol``, ``file`` and optionally ``day`` (a local date;
omitted or empty = every day in the file), ``size`` (shares) and ``format``:

* :func:`backtest_task` - :func:`convexsched.backtest` on the key's book (model-free strategies
  unless an oracle is given), one row per strategy;
* :func:`plan_task` - tomorrow's schedule for the key: the key's day's book-walk curves as the
  forecast of the same minutes tomorrow, solved exactly with its KKT certificate;
* :func:`calibrate_task` - an :class:`~convexsched.ImpactOracle` per symbol fitted on the
  pooled book walks of the key's ``files`` (several past days), one summary row;
* :func:`walk_forward_task` - fit on the symbol's days before the key's ``day`` (its
  ``history`` files), backtest ``day`` with the model strategies too.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._text import printable
from ..errors import DataError, InvalidInputError

STATUS_OK, STATUS_ERROR, STATUS_LOST = "ok", "error", "lost"
STATUS_TIMEOUT, STATUS_INTERRUPTED = "timeout", "interrupted"
MANIFEST_COLUMNS = ("symbol", "day", "file", "size")
#: A key with these columns and no ``file`` is a synthetic symbol (:func:`load_key_book`).
SYNTHETIC_COLUMNS = ("price", "tick_size", "spread_ticks", "level_size", "volume_per_minute", "minute_volatility", "seed")


# ---------------------------------------------------------------- keys


def _is_missing(value):
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT or value == ""


def as_keys(keys):
    """Normalize keys to a list of plain dicts.

    Parameters
    ----------
    keys : pandas.DataFrame or iterable of mappings
        One row (or mapping) per key, e.g. columns ``symbol, day, file, size``.

    Returns
    -------
    list of dict
    """
    if isinstance(keys, pd.DataFrame):
        records = keys.to_dict("records")
    else:
        try:
            records = [dict(k) for k in keys]
        except (TypeError, ValueError):
            raise InvalidInputError("keys must be a DataFrame or an iterable of mappings (dicts)") from None
    if not records:
        raise InvalidInputError("run_universe needs at least one key")
    # numpy scalars -> Python ones, so keys pickle small and compare equal everywhere.
    records = [{name: (v.item() if isinstance(v, np.generic) else v) for name, v in r.items()} for r in records]
    seen: dict[str, int] = {}
    for i, record in enumerate(records):
        text = repr(sorted((name, repr(value)) for name, value in record.items()))
        if text in seen:
            raise InvalidInputError(
                f"key {i} repeats key {seen[text]} ({printable(record.get('symbol', ''))} {record.get('day', '')}): "
                "it would run and count twice"
            )
        seen[text] = i
    return records


def read_manifest(path):
    """A universe manifest: a CSV with the columns ``symbol, day, file, size``.

    Relative ``file`` paths are resolved against the manifest's folder; ``day`` may be empty
    (every day in the file). Raises :class:`DataError` when the file or a column is missing, a
    row has no ``file`` or no ``symbol``, or two rows name the same ``symbol, day, file``.
    ``attrs["outside"]`` counts the files that lie outside the manifest's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such manifest: {path}")
    try:
        table = pd.read_csv(path, dtype={"symbol": str, "day": str, "file": str})
    except (ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read manifest {path}: {first}") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path.name}: manifest lacks columns {missing} (needs {list(MANIFEST_COLUMNS)})")
    for column in ("file", "symbol"):
        empty = table[column].isna() | (table[column].astype(str).str.strip() == "")
        if empty.any():
            rows = [int(i) + 2 for i in np.flatnonzero(empty.to_numpy())]  # line numbers, the header is line 1
            raise DataError(f"{path.name}: the {column} cell is empty on line(s) {rows[:5]}{'...' if len(rows) > 5 else ''}")
    folder = path.parent.resolve()
    files = [Path(f) if Path(f).is_absolute() else (path.parent / f).resolve() for f in table["file"]]
    table["file"] = [str(f) for f in files]
    table["day"] = table["day"].fillna("")
    repeated = table.duplicated(subset=["symbol", "day", "file"], keep="first")
    if repeated.any():
        line = int(np.flatnonzero(repeated.to_numpy())[0]) + 2
        row = table.iloc[line - 2]
        raise DataError(
            f"{path.name}: line {line} repeats the key {printable(row['symbol'])} {row['day'] or '(every day)'} "
            f"{Path(row['file']).name} ({int(repeated.sum())} repeated rows): each key would run and count twice"
        )
    table.attrs["outside"] = sum(not f.is_relative_to(folder) for f in files)
    return table


def manifest_files(path):
    """Every book file a manifest names (a LOBSTER pair's both files), as ``{label: path}``.

    These are inputs a command must not overwrite.
    """
    from ..data.loaders import source_files

    table = read_manifest(path)
    inputs = {}
    for line, value in enumerate(table["file"], start=2):
        try:
            sources = source_files(value)
        except DataError:
            sources = [Path(value)]
        for source in sources:
            inputs[f"{Path(path).name} line {line} ({Path(source).name})"] = Path(source)
    return inputs


# ---------------------------------------------------------------- running


def _run_one(key, task, kwargs, threads, timeout=None):
    """Run ``task(key, **kwargs)`` with pinned inner thread pools; never raises.

    With ``timeout`` (seconds) the task runs in a daemon thread that is abandoned, and the key
    reported as ``"timeout"``, when it has not finished by then: Python cannot stop a thread, but
    the caller (and the table) no longer waits for it.

    Returns ``(status, table or None, error message, seconds)``.
    """
    if timeout is None:
        return _run_here(key, task, kwargs, threads)
    outcome: list[tuple] = []
    worker = threading.Thread(
        target=lambda: outcome.append(_run_here(key, task, kwargs, threads)), name=f"convexsched-key-{key.get('symbol')}",
        daemon=True,
    )  # fmt: skip
    started = time.perf_counter()
    worker.start()
    worker.join(timeout)
    if outcome:
        return outcome[0]
    return STATUS_TIMEOUT, None, f"TimeoutError: still running after {timeout:g} s (timeout=)", time.perf_counter() - started


def _run_here(key, task, kwargs, threads):
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    try:
        with threadpool_limits(limits=threads):
            out = task(key, **kwargs)
        if not isinstance(out, pd.DataFrame):
            raise InvalidInputError(f"task must return a DataFrame, got {type(out).__name__}")
        return STATUS_OK, out, "", time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 - every failure is reported in its key's row
        return STATUS_ERROR, None, f"{type(exc).__name__}: {' '.join(str(exc).split())}", time.perf_counter() - started


def _run_many(keys, task, kwargs, threads, timeout=None):
    """:func:`_run_one` over a batch of keys in one worker call."""
    return [_run_one(key, task, kwargs, threads, timeout) for key in keys]


def _batch_size(n_keys, client, batch):
    if batch is not None:
        return int(batch)
    threads = max(1, sum(client.nthreads().values()))
    return int(min(256, max(1, -(-n_keys // (8 * threads)))))


def _progress(total, enabled, description):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, leave=False)


def run_universe(
    keys: Iterable,
    task: Callable[..., Any],
    *,
    client: Any = None,
    threads: int = 1,
    progress: bool | None = None,
    window: int | None = None,
    batch: int | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Map ``task`` over ``keys`` and return one table with the keys and a status column.

    Parameters
    ----------
    keys : pandas.DataFrame or iterable of mappings
        One key per task, e.g. the rows of a manifest (:func:`read_manifest`).
    task : callable
        ``task(key, **kwargs) -> pandas.DataFrame`` with ``key`` a dict. It must be importable
        by the workers (a module-level function) when a client is given.
    client : dask.distributed.Client, optional
        ``None`` runs serially in this process; a client runs the keys on its cluster.
    threads : int
        BLAS/OpenMP threads allowed inside each task (``threadpoolctl``); 1 avoids
        oversubscription when each worker has one core.
    progress : bool, optional
        A tqdm bar over completed keys; default when stderr is a terminal.
    window : int, optional
        With a client: at most this many Dask tasks in flight, the next submitted as one
        completes (bounds the scheduler's memory for very large universes); default all at once.
    batch : int, optional
        With a client: keys per Dask task, run one after the other in the worker. Many small
        keys then cost one scheduler round trip per batch, not per key; a worker that dies
        loses its whole batch (each key reported ``"lost"``). Default: about 8 tasks per worker
        thread (``ceil(keys / (8 threads))``, at most 256 keys), one key per task for small
        universes.
    timeout : float, optional
        Seconds a key may run (measured where it runs); a key still running then is reported
        with status ``"timeout"`` and the others go on. Default: no limit.
    **kwargs
        Passed to every ``task`` call (small: they travel to every worker).

    Returns
    -------
    pandas.DataFrame
        The key columns, ``status`` (``"ok"``, ``"error"``: the task raised, ``"lost"``: the
        worker died, ``"timeout"``: still running after ``timeout``, ``"interrupted"``: not
        finished when the run was interrupted) and ``error`` (``"ExceptionType: message"``, empty when ok), then the
        task's columns (a task column named like a key column, ``status`` or ``error`` gives
        way to the key's); a key contributes one row per row of its table (one row of NaN
        results on failure). Rows are in key order. ``attrs["seconds"]`` holds each key's run time
        and ``attrs["failed"]`` the failed keys. On Ctrl-C (or SIGTERM under the command line)
        the finished keys' results are returned, the others marked ``"interrupted"``, and
        ``attrs["interrupted"]`` is True.

    Raises
    ------
    InvalidInputError
        No key, a key repeated, ``threads`` or ``window`` below 1, ``timeout`` not positive.
    """
    keys = as_keys(keys)
    if int(threads) < 1:
        raise InvalidInputError(f"threads must be >= 1, got {threads}")
    if window is not None and int(window) < 1:
        raise InvalidInputError(f"window must be >= 1, got {window}")
    if batch is not None and int(batch) < 1:
        raise InvalidInputError(f"batch must be >= 1, got {batch}")
    if timeout is not None and not float(timeout) > 0:
        raise InvalidInputError(f"timeout must be > 0 seconds, got {timeout}")
    timeout = None if timeout is None else float(timeout)
    run = functools.partial(_run_one, task=task, kwargs=kwargs, threads=int(threads), timeout=timeout)
    results: list[tuple | None] = [None] * len(keys)
    bar = _progress(len(keys), progress, getattr(task, "__name__", "tasks"))
    interrupted = False
    try:
        if client is None:
            for i, key in enumerate(keys):
                results[i] = run(key)
                if bar is not None:
                    bar.update()
        else:
            run_many = functools.partial(_run_many, task=task, kwargs=kwargs, threads=int(threads), timeout=timeout)
            _run_on_client(client, keys, run_many, results, window, batch, bar)
    except KeyboardInterrupt:
        interrupted = True  # the finished keys are kept: the table says which did not run
    if bar is not None:
        bar.close()
    unfinished = (STATUS_INTERRUPTED, None, "KeyboardInterrupt: the run was interrupted", np.nan)
    table = _collect(keys, [unfinished if r is None else r for r in results])
    table.attrs["interrupted"] = interrupted
    table.attrs["finished"] = sum(r is not None for r in results)
    return table


def _run_on_client(client, keys, run_many, results, window, batch, bar):
    """Fill ``results`` from the keys run on ``client`` in batches (``window`` tasks in flight).

    Cancels what is left on interrupt.
    """
    from distributed import as_completed

    futures: list = []
    try:
        size = _batch_size(len(keys), client, batch)
        batches = [list(range(i, min(i + size, len(keys)))) for i in range(0, len(keys), size)]
        # pure=False: a re-run of the same key is a new computation (files may have changed).
        first = len(batches) if window is None else int(window)
        futures = client.map(run_many, [[keys[i] for i in b] for b in batches[:first]], pure=False)
        position = {future.key: n for n, future in enumerate(futures)}
        pending = as_completed(futures)
        following = iter(range(first, len(batches)))
        for future in pending:
            for n in itertools.islice(following, 1):  # keep ``window`` tasks in flight
                extra = client.submit(run_many, [keys[i] for i in batches[n]], pure=False)
                position[extra.key] = n
                futures.append(extra)
                pending.add(extra)
            chosen = batches[position[future.key]]
            try:
                for i, result in zip(chosen, future.result(), strict=True):
                    results[i] = result
            except Exception as exc:  # noqa: BLE001 - the worker died or the result did not arrive
                for i in chosen:
                    results[i] = (STATUS_LOST, None, f"{type(exc).__name__}: {' '.join(str(exc).split())}", np.nan)
            future.release()
            if bar is not None:
                bar.update(len(chosen))
    except KeyboardInterrupt:
        client.cancel([f for f in futures if not f.done()])
        raise


def _collect(keys, results):
    key_columns = list(dict.fromkeys(name for key in keys for name in key))
    frames = []
    for key, (status, table, error, _) in zip(keys, results, strict=True):
        if table is None or table.empty:
            table = pd.DataFrame(index=[0])
        else:
            table = table.reset_index(drop=True)
        clash = [c for c in key_columns + ["status", "error"] if c in table.columns]
        if clash:
            table = table.drop(columns=clash)
        head = pd.DataFrame({name: [key.get(name)] * len(table) for name in key_columns})
        head["status"] = status
        head["error"] = error
        frames.append(pd.concat([head, table], axis=1))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["seconds"] = [r[3] for r in results]
    out.attrs["failed"] = [key for key, r in zip(keys, results, strict=True) if r[0] != STATUS_OK]
    return out


# ---------------------------------------------------------------- loading inside the task


@functools.lru_cache(maxsize=4)
def _cached_books(path, format, sessions, mtime_ns, size):
    # A worker often gets several symbols of the same multi-symbol file: read it once.
    from ..data.loaders import read_books

    return read_books(path, format, **({} if sessions is None else {"sessions": sessions}))


def _is_synthetic(key):
    return _is_missing(key.get("file")) and all(not _is_missing(key.get(name)) for name in SYNTHETIC_COLUMNS)


def _synthetic_day(key):
    from ..data.universe import universe_day

    day = key.get("day")
    return universe_day(pd.DataFrame([key]), *(() if _is_missing(day) else (str(day),)))


def load_key_book(key):
    """The book of a key, from one of three sources, cut to its ``day``.

    * ``file`` (and ``format``, ``sessions``) and its ``symbol``: a book file. A worker reads
      each file once for all its keys (a small per-process cache keyed on the path, its size
      and modification time);
    * ``dataset``: the root of a hive-partitioned Parquet dataset of books
      (:func:`convexsched.data.universe.read_dataset_book`, partitions ``symbol=/day=``);
    * a synthetic symbol: the columns of :func:`convexsched.data.universe.synthetic_universe`
      (no ``file``): its book of ``day`` (:func:`~convexsched.data.universe.universe_day`).

    Raises
    ------
    DataError
        Missing file, unknown symbol, or no rows on ``day``.
    """
    if not _is_missing(key.get("dataset")):
        from ..data.universe import read_dataset_book

        day = key.get("day")
        return read_dataset_book(key["dataset"], str(key.get("symbol")), None if _is_missing(day) else str(day))
    if _is_synthetic(key):
        return _synthetic_day(key).book(0)
    path = key.get("file")
    if _is_missing(path):
        raise InvalidInputError(f"key {key} has no 'file'")
    stat = Path(path).stat() if Path(path).is_file() else None
    if stat is None:
        raise DataError(f"no such file: {path}")
    fmt, sessions = key.get("format"), key.get("sessions")
    books = _cached_books(str(path), None if _is_missing(fmt) else fmt, None if _is_missing(sessions) else sessions,
                          stat.st_mtime_ns, stat.st_size)  # fmt: skip
    symbol = key.get("symbol")
    if _is_missing(symbol):
        if len(books) != 1:
            raise InvalidInputError(f"{Path(path).name} holds {len(books)} symbols; the key needs a 'symbol'")
        book = next(iter(books.values()))
    elif str(symbol) not in books:
        raise DataError(f"symbol {symbol!r} not in {Path(path).name}; available: {list(books)[:10]}")
    else:
        book = books[str(symbol)]
    day = key.get("day")
    if _is_missing(day):
        return book
    tz = book.sessions.tz if book.sessions is not None else book.tz
    dates = book.frame.index.tz_convert(tz).date
    wanted = pd.Timestamp(str(day)).date()
    keep = dates == wanted
    if not keep.any():
        raise DataError(f"{book.symbol} has no rows on {wanted} in {Path(path).name}")
    if keep.all():
        return book
    return replace(book, frame=book.frame[keep], meta=dict(book.meta, day=str(wanted)))


def _key_size(key, size=None):
    value = key.get("size") if size is None else size
    if _is_missing(value):
        raise InvalidInputError(f"key {key} has no 'size' (shares) and none was passed")
    return float(value)


# ---------------------------------------------------------------- ready-made tasks


def backtest_task(key, *, strategies=None, oracle=None, side="buy", freq="1min", half_life=0.0, size=None):
    """Backtest one key: :func:`convexsched.backtest` on its book, one row per strategy.

    Parameters
    ----------
    key : dict
        ``symbol``, ``file``, optional ``day`` and ``format``; ``size`` in shares unless
        ``size=`` is given.
    strategies : list of str, optional
        Names among :func:`convexsched.execution.strategies.default_strategies` (names travel, objects
        are rebuilt in the worker); default all that apply.
    oracle : ImpactOracle or path, optional
        A fitted oracle (or its ``.skops`` file, loaded in the worker).
    side, freq, half_life
        As in :func:`convexsched.backtest`.

    Returns
    -------
    pandas.DataFrame
        ``strategy`` then the backtest columns (``cost_bps, vs_twap_bps, hindsight_bps,
        capture, ..., unfilled``), plus ``n_buckets``.
    """
    from .backtest import backtest
    from .strategies import strategies_by_name

    # Names first: a typo fails before the book is read.
    chosen = None if strategies is None else strategies_by_name(strategies, with_model=oracle is not None)
    book = load_key_book(key)
    if isinstance(oracle, (str, Path)):
        from ..model.oracle import ImpactOracle

        oracle = ImpactOracle.load(oracle)
    table, records = backtest(
        book, _key_size(key, size), strategies=chosen, model=oracle, side=side, freq=freq,
        half_life=half_life, return_records=True,
    )  # fmt: skip
    table = table.reset_index()
    table["n_buckets"] = len(next(iter(records.values())).x)
    return table


def plan_task(key, *, objective=None, side="buy", freq="1min", size=None):
    """Tomorrow's schedule for one key, from the key's day as the forecast of tomorrow.

    Each bucket of the next business day gets the book-walk curve of the same minute of the
    key's day (the fresh, undepleted curve of :meth:`BookExecutor.realized_curves`); the
    schedule is solved exactly (:func:`convexsched.solve`) and carries its KKT certificate.
    Buckets without a usable snapshot get no capacity. A synthetic key (:func:`load_key_book`)
    takes its curves from the generated day directly (one snapshot per one-minute bucket: the
    same curves, without building its book).

    Parameters
    ----------
    objective : Objective, str or list of them, optional
        Default (A). ``"A"``, ``"B"``, ``"C"`` are the objectives scaled to the key's first book
        (:func:`convexsched.execution.strategies.arrival_objectives`); a list plans each in turn.

    Returns
    -------
    pandas.DataFrame
        ``bucket`` (tomorrow's start times), ``x`` (shares), ``multiplier`` (the water level),
        ``kkt_ok``; with a list of objectives also ``objective`` (its name, or its repr).
    """
    from ..optimize.curves import CostCurves
    from ..optimize.solve import solve
    from .strategies import objectives_for

    if _is_synthetic(key) and pd.Timedelta(freq) == pd.Timedelta("1min"):
        day = _synthetic_day(key)
        slopes, widths = day.curves(0, side)
        index = day.index
    else:
        from .executors import BookExecutor

        book = load_key_book(key)
        executor = BookExecutor(book, side, freq)
        slopes, widths, _ = executor.realized_curves()
        index = executor.index
    days = pd.DatetimeIndex(index.normalize().unique())
    if len(days) != 1:
        raise InvalidInputError(f"plan_task needs a key of one day; {key.get('symbol')} has {len(days)} (set 'day')")
    tomorrow = index + pd.offsets.BDay(1)
    curves = CostCurves(slopes, widths, index=tomorrow)
    total = _key_size(key, size)
    many = isinstance(objective, (list, tuple))
    chosen = list(objective) if many else [objective]
    named = objectives_for(slopes, widths, total) if any(isinstance(o, str) for o in chosen) else {}
    x, multiplier, ok = [], [], []
    for item in chosen:
        if isinstance(item, str) and item not in named:
            raise InvalidInputError(f"unknown objective {item!r}; use 'A', 'B', 'C' or an Objective")
        schedule = solve(curves, total, named[item] if isinstance(item, str) else item)
        x.append(np.asarray(schedule.x, float))
        multiplier.append(schedule.multiplier)
        ok.append(bool(schedule.kkt.ok))
    n = len(tomorrow)
    columns = {"objective": np.repeat([o if isinstance(o, str) else repr(o) for o in chosen], n)} if many else {}
    return pd.DataFrame({
        **columns, "bucket": tomorrow.append([tomorrow] * (len(chosen) - 1)),
        "x": np.concatenate(x), "multiplier": np.repeat(multiplier, n), "kkt_ok": np.repeat(ok, n),
    })  # fmt: skip


def _split_files(value):
    if isinstance(value, str):
        return [f for f in value.split(";") if f]
    return [] if _is_missing(value) else list(value)


def _fit_oracle(key, files, *, before=None, sizes=None, side="buy", max_iter=100, random_state=0, thin=1):
    """An ImpactOracle fitted on the book walks of ``files`` (rows before the date ``before``).

    Returns ``(oracle, n_days, n_rows, in-sample MAE)``.
    """
    from ..data.slippage import impact_table
    from ..model.oracle import ImpactOracle

    if not files:
        raise InvalidInputError(f"key {key} has no files to calibrate on")
    tables, days = [], set()
    for file in files:
        book = load_key_book({**key, "file": file, "day": None})
        tz = book.sessions.tz if book.sessions is not None else book.tz
        dates = book.frame.index.tz_convert(tz).date
        keep = np.ones(len(dates), bool) if before is None else dates < before
        if int(thin) > 1:
            keep &= np.arange(len(keep)) % int(thin) == 0
        if not keep.any():
            continue
        book = replace(book, frame=book.frame[keep])
        days.update(dates[keep])
        grid = sizes
        if grid is None:
            depth = float(np.median(book.frame.filter(like="ask_sz_" if side == "buy" else "bid_sz_").sum(axis=1)))
            grid = np.linspace(depth / 20, depth, 20)
        table = impact_table(book, grid, side=side)
        tables.append(table[~table["beyond_depth"]])
    if not tables:
        raise DataError(f"{key.get('symbol')}: no history{f' before {before}' if before else ''} in {len(files)} file(s)")
    table = pd.concat(tables, ignore_index=True).dropna(subset=["volatility", "spread", "depth"])
    if table.empty:
        raise DataError(f"{key.get('symbol')}: no training rows after dropping missing features")
    oracle = ImpactOracle(max_iter=max_iter, random_state=random_state, validation_fraction=None)
    oracle.fit(table, table["slippage"])
    mae = float(np.abs(oracle.predict(table) - table["slippage"].to_numpy()).mean())
    return oracle, len(days), len(table), mae


def calibrate_task(key, *, sizes=None, side="buy", output_dir=None, max_iter=100, random_state=0, thin=1):
    """Fit an :class:`~convexsched.ImpactOracle` for one symbol on its pooled past days.

    Parameters
    ----------
    key : dict
        ``symbol`` and ``files`` (a list, or a ``;``-separated string, of book files: the past
        days); a single ``file`` works too. Every day in the files is used.
    sizes : array_like, optional
        Order-size grid of the book walks; default 20 sizes up to the median one-sided depth.
    output_dir : path-like, optional
        Save the oracle there as ``<symbol>.skops`` (a path travels back, not the model).
    max_iter, random_state : int
        Boosting settings (:class:`~convexsched.ImpactOracle`).
    thin : int
        Keep every ``thin``-th snapshot.

    Returns
    -------
    pandas.DataFrame
        One row: ``n_days, n_rows, n_iter, mae`` (in-sample, currency), ``oracle`` (the saved
        file or empty).
    """
    files = _split_files(key.get("files", key.get("file")))
    oracle, n_days, n_rows, mae = _fit_oracle(
        key, files, sizes=sizes, side=side, max_iter=max_iter, random_state=random_state, thin=thin
    )
    saved = ""
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        saved = str(Path(output_dir) / f"{key.get('symbol')}.skops")
        oracle.save(saved)
    return pd.DataFrame([{"n_days": n_days, "n_rows": n_rows, "n_iter": int(oracle.n_iter_),
                          "mae": mae, "oracle": saved}])  # fmt: skip


def walk_forward_task(key, *, strategies=None, side="buy", freq="1min", half_life=0.0, size=None, max_iter=100,
                      thin=1):  # fmt: skip
    """Walk forward: fit an oracle on the symbol's days before the key's ``day``, backtest ``day``.

    Parameters
    ----------
    key : dict
        ``symbol``, ``file`` and ``day`` (the test day), ``size``, and ``history``: the files
        (a list or ``;``-separated) holding the past days; only their rows dated before ``day``
        are used, so the test day's own file may be listed too.
    strategies, side, freq, half_life, size
        As in :func:`backtest_task` (the model strategies run since there is an oracle).
    max_iter, thin
        As in :func:`calibrate_task`.

    Returns
    -------
    pandas.DataFrame
        :func:`backtest_task`'s table plus ``train_days`` and ``train_rows``.
    """
    day = key.get("day")
    if _is_missing(day):
        raise InvalidInputError(f"walk_forward_task needs the key's test 'day', got {key}")
    history = _split_files(key.get("history", key.get("file")))
    oracle, n_days, n_rows, _ = _fit_oracle(
        key, history, before=pd.Timestamp(str(day)).date(), side=side, max_iter=max_iter, thin=thin
    )
    table = backtest_task(key, strategies=strategies, oracle=oracle, side=side, freq=freq, half_life=half_life,
                          size=size)  # fmt: skip
    table["train_days"], table["train_rows"] = n_days, n_rows
    return table


# ---------------------------------------------------------------- manifests and the command line


def make_manifest(paths, participation=0.05, lot=100):
    """A manifest of every symbol and day in ``paths``, sized at a share of the day's volume.

    Parameters
    ----------
    paths : iterable of path-like
        Book files (any format :func:`convexsched.read_books` reads).
    participation : float
        Order size as a fraction of the volume traded in the book's sessions that day.
    lot : float
        Sizes are rounded to whole lots (at least one).

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol, day, file, size`` (plus ``volume``, the day's traded volume);
        books without traded volume are left out.
    """
    from ..data.loaders import read_books
    from ..data.sessions import session_buckets

    if not 0 < participation <= 1:
        raise InvalidInputError(f"participation must be in (0, 1], got {participation}")
    rows = []
    for path in paths:
        for symbol, book in read_books(path).items():
            if book.traded_volume is None or book.sessions is None:
                continue
            labels = session_buckets(book).labels
            inside = labels.notna().to_numpy()
            per_day = book.traded_volume[inside].groupby(labels[inside].dt.date.to_numpy()).sum()
            for day, volume in per_day.items():
                size = max(lot, round(participation * volume / lot) * lot)
                rows.append({"symbol": symbol, "day": str(day), "file": str(Path(path).resolve()),
                             "size": float(size), "volume": float(volume)})  # fmt: skip
    return pd.DataFrame(rows, columns=["symbol", "day", "file", "size", "volume"])


# What a Dask scheduler sends first: its handshake, one message of a few hundred bytes.
_HANDSHAKE_MAX_BYTES = 1 << 20


def check_scheduler(address, timeout=10.0):
    """Raise :class:`InvalidInputError` unless a Dask scheduler answers at ``address`` (TCP).

    A Dask server sends its handshake as soon as a connection opens: an 8-byte length, then the
    message. A server that sends nothing within ``timeout`` seconds, or something else (an HTTP
    server, e.g. the dashboard), is not a scheduler; asking ``distributed`` to talk to it would
    wait forever or read a text banner as a length of exabytes. Other protocols (``tls://``,
    ``ucx://``, ``inproc://``) are left to ``distributed``.
    """
    text = str(address)
    if "://" in text and not text.startswith("tcp://"):
        return
    host, _, port = text.removeprefix("tcp://").rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInputError(f"--scheduler {printable(text)}: expected HOST:PORT, tcp://HOST:PORT, 'local' or 'serial'")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.settimeout(timeout)
            try:
                head = conn.recv(8, socket.MSG_WAITALL)
            except TimeoutError:
                head = None
            if head is None:
                # Silent: perhaps a server that waits for a request (HTTP). Ask, to say which.
                try:
                    conn.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
                    conn.settimeout(min(timeout, 2.0))
                    reply = conn.recv(8)
                except OSError:
                    reply = b""
                if reply.startswith(b"HTTP/"):
                    raise InvalidInputError(
                        f"--scheduler {printable(text)} answers HTTP, not the Dask protocol (a dashboard? the "
                        "scheduler's own port is usually 8786)"
                    )
                raise InvalidInputError(
                    f"--scheduler {printable(text)} accepted the connection but sent no Dask handshake within "
                    f"{timeout:g} s: not a Dask scheduler, or one too busy to answer"
                )
    except OSError as error:
        raise InvalidInputError(f"--scheduler {printable(text)}: cannot connect: {error.strerror or error}") from None
    if head.startswith(b"HTTP/"):
        raise InvalidInputError(f"--scheduler {printable(text)} answers HTTP, not the Dask protocol")
    if len(head) < 8 or not 0 < struct.unpack("<Q", head)[0] <= _HANDSHAKE_MAX_BYTES:
        raise InvalidInputError(
            f"--scheduler {printable(text)} does not speak the Dask protocol (its first bytes are no handshake)"
        )


class _Cluster:
    """``scheduler`` as a context manager yielding a Dask client (or None for a serial run)."""

    def __init__(self, scheduler, n_workers=None, timeout=10.0):
        self.scheduler, self.n_workers, self.timeout = scheduler, n_workers, timeout
        self._stack = []

    def __enter__(self):
        if self.scheduler in (None, "", "serial"):
            return None
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InvalidInputError("--scheduler needs Dask: pip install 'convexsched[dask]'") from None
        if self.scheduler == "local":
            cluster = LocalCluster(
                processes=True, n_workers=self.n_workers or os.cpu_count(), threads_per_worker=1,
                dashboard_address=None,
            )  # fmt: skip
            self._stack.append(cluster)
            client = Client(cluster)
        else:
            check_scheduler(self.scheduler, self.timeout)
            try:
                client = Client(self.scheduler, timeout=self.timeout)
            except (OSError, TimeoutError) as error:
                raise InvalidInputError(
                    f"--scheduler {printable(self.scheduler)}: no Dask scheduler connection within {self.timeout:g} s "
                    f"({type(error).__name__})"
                ) from None
        self._stack.append(client)
        return client

    def __exit__(self, *exc):
        for item in reversed(self._stack):
            item.close()
        return False


def cluster(scheduler=None, n_workers=None, timeout=10.0):
    """A client for ``scheduler``, closed on exit.

    ``None``/``"serial"`` (no client), ``"local"`` (a process ``LocalCluster``, one thread per
    worker) or a scheduler address (``"tcp://host:8786"``).

    An address is checked first (:func:`check_scheduler`): an address that does not answer
    like a Dask scheduler within ``timeout`` seconds is an :class:`InvalidInputError`, never
    a hang.

    Use as ``with cluster("local") as client: run_universe(keys, task, client=client)``.
    """
    return _Cluster(scheduler, n_workers, timeout)
