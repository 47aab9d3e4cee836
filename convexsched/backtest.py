"""Backtesting: run several strategies on the same real book and compare their realized costs.

The execution policy (first usable snapshot of each bucket, slices rolled forward past empty or
crossed buckets, cost against the snapshot's mid in currency and bps of arrival notional) is
documented in :mod:`convexsched.execution`.
"""

from __future__ import annotations

import pandas as pd

from .errors import InvalidInputError
from .execution import BookExecutor, check_order_size, progress_bar
from .receding import LiveCurves
from .strategies import Context, default_strategies


def backtest(book, total, strategies=None, oracle=None, side="buy", *, forecast=None, freq="1min",
             progress=False, return_records=False):
    """Run strategies on the same book and tabulate their realized costs.

    Parameters
    ----------
    book : Book
    total : float
        Order size ``S`` in shares (> 0).
    strategies : list, optional
        Objects with ``name`` and ``execute(context) -> ExecutionRecord`` (see
        :mod:`convexsched.strategies`). Default :func:`convexsched.strategies.default_strategies`:
        TWAP, depth-proportional, Almgren-Chriss, static plans A/B/C and receding horizons.
    oracle : ImpactOracle or LiveCurves, optional
        The cost model; without it only the model-free strategies (TWAP, Almgren-Chriss) run.
    side : {"buy", "sell"}
    forecast : StateForecast, optional
        Passed to :class:`convexsched.receding.LiveCurves` when ``oracle`` is an ImpactOracle.
    freq : str
        Bucket width.
    progress : bool
        tqdm bars over strategies and receding-horizon steps.
    return_records : bool
        Also return the :class:`ExecutionRecord` of every strategy (dict by name).

    Returns
    -------
    pandas.DataFrame
        One row per strategy, indexed by name: ``cost`` (currency), ``cost_bps`` (of the arrival
        notional), ``predicted`` and ``predicted_bps`` (the model's cost of the executed
        slices), ``drift_bps``, ``shortfall_bps``, ``vs_twap_bps`` (negative: cheaper than TWAP),
        ``max_slice``, ``beyond_depth`` (slices beyond displayed depth), ``rolled``,
        ``unfilled``.
    """
    executor = BookExecutor(book, side, freq)
    curves = oracle
    if oracle is not None and not isinstance(oracle, LiveCurves):
        curves = LiveCurves(executor, oracle, forecast)
    context = Context(executor=executor, total=check_order_size(total), curves=curves, progress=progress)
    if strategies is None:
        strategies = default_strategies(with_model=curves is not None)
    names = [s.name for s in strategies]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"strategy names must be unique, got {names}")
    records = {}
    for strategy in progress_bar(strategies, progress, "strategies"):
        records[strategy.name] = strategy.execute(context)
    table = pd.DataFrame([r.summary() for r in records.values()]).set_index("strategy")
    if "TWAP" in table.index:
        table.insert(2, "vs_twap_bps", table["cost_bps"] - table.loc["TWAP", "cost_bps"])
    return (table, records) if return_records else table
