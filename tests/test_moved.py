"""The 0.2 module paths (``convexsched.solve``, ``convexsched.book``, ...) still import, as
deprecated aliases of the moved modules."""

import importlib
import subprocess
import sys

import pytest

import convexsched
from convexsched._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_is_the_new_module(old):
    sys.modules.pop(f"convexsched.{old}", None)
    with pytest.warns(FutureWarning, match=f"convexsched.{old} moved to convexsched.{MOVED[old]}"):
        module = importlib.import_module(f"convexsched.{old}")
    assert module is importlib.import_module(f"convexsched.{MOVED[old]}")


def test_old_paths_do_not_replace_the_functions_of_the_same_name():
    # Importing a submodule sets it as an attribute of its parent: without the guard,
    # ``convexsched.solve`` would become the module after ``import convexsched.solve``.
    script = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import convexsched, convexsched.solve, convexsched.backtest, convexsched.convexify\n"
        "from convexsched.solve import Schedule\n"
        "print(callable(convexsched.solve), callable(convexsched.backtest), callable(convexsched.convexify))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True", "True"]


def test_the_old_execution_module_names_are_kept_by_the_package():
    from convexsched.execution import BookExecutor, ExecutionRecord, ModelExecutor, execute_schedule

    assert BookExecutor is convexsched.BookExecutor and ModelExecutor is convexsched.ModelExecutor
    assert ExecutionRecord is convexsched.ExecutionRecord and execute_schedule is convexsched.execute_schedule


def test_an_unknown_module_is_still_an_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("convexsched.no_such_module")


@pytest.mark.parametrize(("old", "new"), [("Receding", "RecedingStrategy"), ("Scenario", "ScenarioStrategy")])
def test_the_old_strategy_names_warn_and_build_the_new_ones(old, new):
    from convexsched.execution import strategies

    with pytest.warns(FutureWarning, match=f"strategies.{old} is deprecated; use {new}"):
        strategy = getattr(strategies, old)("A", horizon=30) if old == "Receding" else getattr(strategies, old)("A")
    assert isinstance(strategy, getattr(strategies, new))
    assert strategy.name == getattr(strategies, new)("A", **({"horizon": 30} if old == "Receding" else {})).name
