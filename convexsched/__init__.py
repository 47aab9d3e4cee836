"""convexsched: provably optimal execution schedules from limit-order-book data.

Data flow, one subpackage per stage:

- ``convexsched.data``: books, loaders, sessions, features and book walks;
- ``convexsched.model``: the impact oracle, the state forecast and convexification;
- ``convexsched.optimize``: ``CostCurves``, the objectives, the cvxpy problems, the exact fast
  paths, the KKT certificate and ``solve``;
- ``convexsched.execution``: executors, receding and scenario horizons, strategies, backtests
  and universes.

The public API is re-exported here; ``cli``, ``demo`` and ``timing`` sit outside the core.
"""

import logging

from ._moved import install as _install_moved_modules
from .data.book import Book, LoadReport, require_rows
from .data.events import Events, read_events
from .data.features import book_features, bucket_features
from .data.loaders import PRESETS, ColumnMap, read_book, read_books
from .data.sessions import CN_EQUITY, US_EQUITY, SessionBuckets, Sessions, session_buckets
from .data.slippage import beyond_depth, impact_table, read_impact_table, walk_book

# Deprecated 0.2 names (they warn when called; removed in 0.4), importable but not in __all__.
from .data.slippage import read_task1 as read_task1
from .data.slippage import task1_table as task1_table
from .data.synthetic import synthetic_book
from .data.universe import (
    LiquidityModel,
    UniverseDay,
    dataset_manifest,
    read_dataset_book,
    synthetic_universe,
    universe_day,
    write_book_dataset,
)
from .errors import (
    ConvexSchedError,
    DataError,
    InfeasibleError,
    InvalidInputError,
    MissingDependencyError,
    NonConvexCurveError,
    SolverError,
)
from .execution.backtest import backtest
from .execution.executors import BookExecutor, ExecutionRecord, Executor, ModelExecutor, execute_schedule
from .execution.hindsight import Hindsight, capture
from .execution.receding import CurveSource, LiveCurves, RecedingHorizon, curve_source
from .execution.replay import ReplayExecutor
from .execution.scenario import ScenarioHorizon
from .execution.strategies import (
    TWAP,
    AlmgrenChriss,
    DepthProportional,
    RecedingStrategy,
    ScenarioStrategy,
    StaticPlan,
    Strategy,
    default_strategies,
)
from .execution.tactics import Market, PassiveFirst, Sliced
from .execution.universe import run_universe
from .model.convexify import ConvexifyReport, convexify
from .optimize.curves import CostCurves
from .optimize.kkt import KKTReport, check_kkt
from .optimize.objective import Objective
from .optimize.solve import Schedule, solve
from .optimize.terms import Drift, InventoryRisk, Smoothing, Term, TrackProfile, TransientImpact, Turnover
from .optimize.weighted import (
    WeightedBatch,
    WeightedBuckets,
    WeightedProblem,
    build_weighted_problem,
    solve_weighted,
    solve_weighted_batch,
    weighted_kkt,
)

__version__ = "0.3.0"

# The cvxpy problem classes and the scikit-learn models (the impact oracle, the state
# forecast) load their libraries (about 0.4 s each): they are imported on first use, so that
# the fast paths start without them.
_LAZY = {
    "ScheduleProblem": "optimize.problem",
    "build_problem": "optimize.problem",
    "StateForecast": "model.forecast",
    "HalfSpreadImpact": "model.oracle",
    "ImpactOracle": "model.oracle",
    "SquareRootImpact": "model.oracle",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_install_moved_modules(__name__)

# The package logs progress and notes (neither results nor errors) under "convexsched.*"; it
# prints nothing unless the application configures logging (the CLI does).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CostCurves",
    "KKTReport",
    "Objective",
    "Term",
    "Smoothing",
    "InventoryRisk",
    "Drift",
    "TrackProfile",
    "Turnover",
    "TransientImpact",
    "Schedule",
    "ScheduleProblem",
    "build_problem",
    "check_kkt",
    "solve",
    "ConvexSchedError",
    "DataError",
    "InfeasibleError",
    "InvalidInputError",
    "MissingDependencyError",
    "NonConvexCurveError",
    "SolverError",
    "ConvexifyReport",
    "convexify",
    "ImpactOracle",
    "HalfSpreadImpact",
    "SquareRootImpact",
    "StateForecast",
    "Book",
    "LoadReport",
    "require_rows",
    "ColumnMap",
    "PRESETS",
    "read_book",
    "read_books",
    "Sessions",
    "SessionBuckets",
    "US_EQUITY",
    "CN_EQUITY",
    "session_buckets",
    "book_features",
    "bucket_features",
    "walk_book",
    "beyond_depth",
    "impact_table",
    "read_impact_table",
    "synthetic_book",
    "Events",
    "read_events",
    "LiquidityModel",
    "UniverseDay",
    "synthetic_universe",
    "universe_day",
    "write_book_dataset",
    "dataset_manifest",
    "read_dataset_book",
    "BookExecutor",
    "ReplayExecutor",
    "Executor",
    "Market",
    "Sliced",
    "PassiveFirst",
    "ExecutionRecord",
    "ModelExecutor",
    "backtest",
    "execute_schedule",
    "LiveCurves",
    "CurveSource",
    "curve_source",
    "Strategy",
    "RecedingHorizon",
    "ScenarioHorizon",
    "TWAP",
    "AlmgrenChriss",
    "DepthProportional",
    "StaticPlan",
    "RecedingStrategy",
    "ScenarioStrategy",
    "default_strategies",
    "Hindsight",
    "capture",
    "WeightedBuckets",
    "solve_weighted",
    "build_weighted_problem",
    "WeightedProblem",
    "weighted_kkt",
    "WeightedBatch",
    "solve_weighted_batch",
    "run_universe",
]
