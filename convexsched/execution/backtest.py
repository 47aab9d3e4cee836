"""Backtesting: run several strategies on the same real book and compare their realized costs.

The execution policy (first usable snapshot of each bucket, slices rolled forward past empty or
crossed buckets, cost against the snapshot's mid in currency and bps of arrival notional,
optional resilience) is documented in :mod:`convexsched.execution`.

Every table is measured against the limit: the hindsight optimum of the same day
(:mod:`convexsched.execution.hindsight`, rows ``hindsight A`` and ``hindsight B``, flagged ``lookahead``)
and each strategy's ``capture`` of the gap between TWAP and that bound, (E15).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, overload

import pandas as pd

from .._deprecated import renamed
from ..errors import InvalidInputError
from ..optimize.validate import check_total
from .executors import BookExecutor, ExecutionRecord, progress_bar
from .hindsight import Hindsight, capture
from .receding import Model, curve_source
from .strategies import TWAP, Context, Strategy, arrival_objectives, default_strategies

if TYPE_CHECKING:
    from ..data.book import Book
    from ..model.forecast import StateForecast


@overload
def backtest(
    book: Book | BookExecutor,
    total: float,
    strategies: Iterable[Strategy] | None = None,
    model: Model | None = None,
    side: str = "buy",
    *,
    forecast: StateForecast | None = None,
    freq: str = "1min",
    half_life: float = 0.0,
    hindsight: bool = True,
    progress: bool = False,
    return_records: Literal[False] = False,
    oracle: Model | None = None,
) -> pd.DataFrame: ...


@overload
def backtest(
    book: Book | BookExecutor,
    total: float,
    strategies: Iterable[Strategy] | None = None,
    model: Model | None = None,
    side: str = "buy",
    *,
    forecast: StateForecast | None = None,
    freq: str = "1min",
    half_life: float = 0.0,
    hindsight: bool = True,
    progress: bool = False,
    return_records: Literal[True],
    oracle: Model | None = None,
) -> tuple[pd.DataFrame, dict[str, ExecutionRecord]]: ...


def backtest(
    book: Book | BookExecutor,
    total: float,
    strategies: Iterable[Strategy] | None = None,
    model: Model | None = None,
    side: str = "buy",
    *,
    forecast: StateForecast | None = None,
    freq: str = "1min",
    half_life: float = 0.0,
    hindsight: bool = True,
    progress: bool = False,
    return_records: bool = False,
    oracle: Model | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, ExecutionRecord]]:
    """Run strategies on the same book and tabulate their realized costs.

    Parameters
    ----------
    book : Book
    total : float
        Order size ``S`` in shares (> 0).
    strategies : list, optional
        Objects with ``name`` and ``execute(context) -> ExecutionRecord`` (see
        :mod:`convexsched.execution.strategies`). Default :func:`convexsched.execution.strategies.default_strategies`:
        TWAP, Almgren-Chriss and the scenario horizons A/B/C (no model needed); with a model
        also depth-proportional, static plans A/B/C and certainty-equivalent receding horizons.
        TWAP is always run (capture is measured against it).
    model : ImpactOracle, CurveSource or CostCurves, optional
        The cost model (:func:`convexsched.execution.receding.curve_source`); without it only
        the model-free strategies run.
    side : {"buy", "sell"}
    forecast : StateForecast, optional
        Passed to :class:`convexsched.execution.receding.LiveCurves` when ``model`` is an ImpactOracle.
    freq : str
        Bucket width.
    half_life : float
        Resilience of consumed levels in seconds (:class:`BookExecutor`); 0: every minute's
        book is fresh.
    hindsight : bool
        Add the rows ``hindsight A`` and ``hindsight B`` (the bound, (B) with the arrival book's
        ``rho``) and the columns ``hindsight_bps`` and ``capture``.
    progress : bool
        tqdm bars over strategies and receding-horizon steps.
    return_records : bool
        Also return the :class:`ExecutionRecord` of every strategy (dict by name).
    oracle : optional
        Deprecated name of ``model`` (removed in 0.4).

    Returns
    -------
    pandas.DataFrame
        One row per strategy, indexed by name: ``cost`` (currency), ``cost_bps`` (of the arrival
        notional), ``vs_twap_bps`` (negative: cheaper than TWAP), ``hindsight_bps`` (the
        bound), ``capture`` ((E15): 1 at the bound, 0 at TWAP), ``lookahead`` (True for the
        hindsight rows), ``predicted`` and ``predicted_bps`` (the model's cost of the executed
        slices), ``drift_bps``, ``shortfall_bps``, ``max_slice``, ``beyond_depth`` (slices
        beyond displayed depth), ``rolled`` (shares whose own bucket had no usable book, each
        counted once), ``unfilled``, ``unfilled_cost_bps`` (the charge for unfilled shares, already
        in ``cost``) and ``complete`` (False when shares were left: :mod:`convexsched.execution`).
    """
    executor = book if isinstance(book, BookExecutor) else BookExecutor(book, side, freq, half_life=half_life)
    model = renamed(model, oracle, "backtest", "oracle", "model")
    curves = None if model is None else curve_source(model, executor, forecast)
    context = Context(executor=executor, total=check_total(total, positive=True), curves=curves, progress=progress)
    if strategies is None:
        strategies = default_strategies(with_model=curves is not None)
    strategies = list(strategies)
    if not any(s.name == "TWAP" for s in strategies):
        strategies.insert(0, TWAP())
    if hindsight:
        smoothed = arrival_objectives(executor, context.total)["B"]
        strategies += [Hindsight(), Hindsight(smoothed)]
    names = [s.name for s in strategies]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"strategy names must be unique, got {names}")
    records = {}
    for strategy in progress_bar(strategies, progress, "strategies"):
        records[strategy.name] = strategy.execute(context)
    table = pd.DataFrame([r.summary() for r in records.values()]).set_index("strategy")
    twap = table.loc["TWAP", "cost_bps"]
    table.insert(2, "vs_twap_bps", table["cost_bps"] - twap)
    if hindsight:
        bound = table.loc["hindsight A", "cost_bps"]
        table.insert(3, "hindsight_bps", bound)
        table.insert(4, "capture", capture(table["cost_bps"].to_numpy(), twap, bound))
    table.insert(5 if hindsight else 3, "lookahead", [bool(getattr(s, "lookahead", False)) for s in strategies])
    return (table, records) if return_records else table
