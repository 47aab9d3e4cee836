"""convexsched: provably optimal execution schedules from limit-order-book data.

Data flow: book -> features -> oracle -> curves -> problem -> schedule -> backtest.
"""

from .curves import CostCurves
from .errors import (
    ConvexSchedError,
    DataError,
    InfeasibleError,
    InvalidInputError,
    NonConvexCurveError,
    SolverError,
)

__version__ = "0.1.0"

__all__ = [
    "CostCurves",
    "ConvexSchedError",
    "DataError",
    "InfeasibleError",
    "InvalidInputError",
    "NonConvexCurveError",
    "SolverError",
]
