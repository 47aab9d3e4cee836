"""Stage 4, the execution: schedules run against books.

``executors`` (what a slice really costs), ``receding`` and ``scenario`` (re-planning every
bucket), ``hindsight`` (the bound), ``strategies``, ``backtest`` and ``universe``.

Version 0.2 had a module ``convexsched.execution``; its names are kept here.
"""

from .executors import BookExecutor, ExecutionRecord, ModelExecutor, execute_schedule

__all__ = ["BookExecutor", "ExecutionRecord", "ModelExecutor", "execute_schedule"]
