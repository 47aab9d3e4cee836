"""convexsched: provably optimal execution schedules from limit-order-book data.

Data flow: book -> features -> oracle -> curves -> problem -> schedule -> backtest.
"""

from .backtest import backtest
from .book import Book, LoadReport, require_rows
from .convexify import ConvexifyReport, convexify
from .curves import CostCurves
from .errors import (
    ConvexSchedError,
    DataError,
    InfeasibleError,
    InvalidInputError,
    MissingDependencyError,
    NonConvexCurveError,
    SolverError,
)
from .execution import BookExecutor, ExecutionRecord, ModelExecutor, execute_schedule
from .features import book_features, bucket_features
from .hindsight import Hindsight, capture
from .kkt import KKTReport, check_kkt
from .loaders import PRESETS, ColumnMap, read_book, read_books
from .objective import Objective
from .receding import LiveCurves, RecedingHorizon
from .scenario import ScenarioHorizon
from .sessions import CN_EQUITY, US_EQUITY, SessionBuckets, Sessions, session_buckets
from .slippage import beyond_depth, read_task1, task1_table, walk_book
from .solve import Schedule, solve
from .synthetic import synthetic_book
from .universe import run_universe
from .weighted import WeightedBuckets, build_weighted_problem, solve_weighted, weighted_kkt

__version__ = "0.2.0"

# The cvxpy problem classes and the scikit-learn models (the impact oracle, the state
# forecast) load their libraries (about 0.4 s each): they are imported on first use, so that
# the fast paths start without them.
_LAZY = {
    "ScheduleProblem": "problem",
    "build_problem": "problem",
    "StateForecast": "forecast",
    "HalfSpreadImpact": "oracle",
    "ImpactOracle": "oracle",
    "SquareRootImpact": "oracle",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CostCurves",
    "KKTReport",
    "Objective",
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
    "task1_table",
    "read_task1",
    "synthetic_book",
    "BookExecutor",
    "ExecutionRecord",
    "ModelExecutor",
    "backtest",
    "execute_schedule",
    "LiveCurves",
    "RecedingHorizon",
    "ScenarioHorizon",
    "Hindsight",
    "capture",
    "WeightedBuckets",
    "solve_weighted",
    "build_weighted_problem",
    "weighted_kkt",
    "run_universe",
]
