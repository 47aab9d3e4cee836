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
from .executors import ExecutionRecord, Executor, as_executor, progress_bar
from .hindsight import Hindsight, capture
from .receding import Model, curve_source
from .strategies import RECOMMENDED, TWAP, Context, Strategy, arrival_objectives, default_strategies

if TYPE_CHECKING:
    from ..data.book import Book
    from ..model.forecast import StateForecast


#: What the cost columns of a backtest table measure, printed wherever the table is.
DRIFT_HELP = (
    "cost_bps: the temporary impact paid against the mid of each slice's own snapshot, in bps of the arrival "
    "notional S m_0 (what the cost curves model); drift_bps: sum_i x_i (m_i - m_0) / (S m_0), sign-adjusted for "
    "sells, the mid's move since arrival on the shares traded, which no schedule here models; shortfall_bps = "
    "cost_bps + drift_bps, the implementation shortfall against the arrival mid. vs_twap_bps and capture "
    "compare costs only: on one day the drift can be far larger than the impact"
)


@overload
def backtest(
    book: Book | Executor,
    total: float,
    strategies: Iterable[Strategy] | None = None,
    model: Model | None = None,
    side: str | None = None,
    *,
    forecast: StateForecast | None = None,
    freq: str | None = None,
    half_life: float | None = None,
    hindsight: bool = True,
    progress: bool = False,
    return_records: Literal[False] = False,
    oracle: Model | None = None,
) -> pd.DataFrame: ...


@overload
def backtest(
    book: Book | Executor,
    total: float,
    strategies: Iterable[Strategy] | None = None,
    model: Model | None = None,
    side: str | None = None,
    *,
    forecast: StateForecast | None = None,
    freq: str | None = None,
    half_life: float | None = None,
    hindsight: bool = True,
    progress: bool = False,
    return_records: Literal[True],
    oracle: Model | None = None,
) -> tuple[pd.DataFrame, dict[str, ExecutionRecord]]: ...


def backtest(
    book: Book | Executor,
    total: float,
    strategies: Iterable[Strategy] | None = None,
    model: Model | None = None,
    side: str | None = None,
    *,
    forecast: StateForecast | None = None,
    freq: str | None = None,
    half_life: float | None = None,
    hindsight: bool = True,
    progress: bool = False,
    return_records: bool = False,
    oracle: Model | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, ExecutionRecord]]:
    """Run strategies on the same book and tabulate their realized costs.

    Parameters
    ----------
    book : Book or executor
        A Book is executed by a :class:`BookExecutor` built from ``side``, ``freq`` and
        ``half_life``; an executor (:class:`convexsched.ReplayExecutor`, a :class:`BookExecutor`
        ...) is used as it is, and those three options are then an error.
    total : float
        Order size ``S`` in shares (> 0).
    strategies : list, optional
        Objects with ``name`` and ``execute(context) -> ExecutionRecord`` (see
        :mod:`convexsched.execution.strategies`). Default :func:`convexsched.default_strategies`:
        TWAP, Almgren-Chriss and the scenario horizons A/B/C (no model needed); with a model
        also depth-proportional, static plans A/B/C and certainty-equivalent receding horizons.
        TWAP is always run (capture is measured against it).
    model : ImpactOracle, CurveSource or CostCurves, optional
        The cost model (:func:`convexsched.curve_source`); without it only
        the model-free strategies run.
    side : {"buy", "sell"}, optional
        Default "buy" (for a Book).
    forecast : StateForecast, optional
        Passed to :class:`convexsched.execution.receding.LiveCurves` when ``model`` is an ImpactOracle.
    freq : str, optional
        Bucket width (default "1min", for a Book).
    half_life : float, optional
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
        One row per strategy, indexed by name: ``default`` (True for the row of the strategy the
        project recommends, :data:`convexsched.execution.strategies.RECOMMENDED`: exactly one row
        with the default strategies, none when a strategy list leaves it out), ``cost`` (currency), ``cost_bps`` (of the arrival
        notional), ``vs_twap_bps`` (negative: cheaper than TWAP), ``hindsight_bps`` (the
        bound), ``capture`` ((E15): 1 at the bound, 0 at TWAP), ``lookahead`` (True for the
        hindsight rows), ``hindsight_bound`` (False where the hindsight is only a reference:
        resilience or the event replay), ``predicted`` and ``predicted_bps`` (the model's cost of the executed
        slices), ``drift_bps`` (the market's own move paid,
        ``side sum q (m_t - m_0)``, the same for every strategy up to timing), ``shortfall_bps``
        (from the fills: ``side sum_f q_f (p_f - m_0)``, cost plus drift), ``passive_share`` (of the
        filled shares), ``fills`` (rows in the record's fills log), ``max_slice``, ``beyond_depth`` (slices
        beyond displayed depth), ``rolled`` (shares whose own bucket had no usable book, each
        counted once), ``unfilled``, ``unfilled_cost_bps`` (the charge for unfilled shares, already
        in ``cost``) and ``complete`` (False when shares were left: :mod:`convexsched.execution`).
    """
    executor = as_executor(book, side, freq, half_life)
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
        # A flat arrival curve (a passive tactic's first minute) gives rho = 0: (B) is then (A).
        strategies += [Hindsight(), Hindsight(smoothed)] if smoothed.rho > 0 else [Hindsight()]
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
    table.insert(0, "default", table.index == RECOMMENDED)
    if hindsight:
        table.insert(6, "hindsight_bound", bool(executor.hindsight_is_bound))
    return (table, records) if return_records else table
