"""Optional packages: the core works without them, and each use says which extra installs it."""

import subprocess
import sys

import cvxpy
import numpy as np
import pytest

import convexsched as cs
from convexsched.data.loaders import read_databento
from convexsched.errors import MissingDependencyError

OPTIONAL = ("databento", "matplotlib", "ecos", "highspy", "dask", "distributed")


def block(monkeypatch, *names):
    """Make ``import name`` (and its submodules) fail as when the package is not installed."""
    for module in list(sys.modules):
        if module.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, module)
    for name in names:
        # A None entry makes the import system raise ImportError (ModuleNotFoundError).
        monkeypatch.setitem(sys.modules, name, None)


def curves():
    return cs.CostCurves([[1.0, 2.0], [1.5, 3.0]], [[10.0, 10.0], [10.0, 10.0]])


def test_plots_name_the_plot_extra(monkeypatch):
    block(monkeypatch, "matplotlib")
    with pytest.raises(MissingDependencyError, match=r'pip install "convexsched\[plot\]"'):
        curves().plot()
    schedule = cs.solve(curves(), 15.0, cs.Objective())
    with pytest.raises(ImportError, match=r"convexsched\[plot\]"):
        schedule.plot()


def test_the_demo_asks_for_the_plot_extra_before_any_work(monkeypatch, tmp_path):
    from convexsched.demo import run_demo

    block(monkeypatch, "matplotlib")
    with pytest.raises(MissingDependencyError, match=r"--no-plots skips them.*convexsched\[plot\]"):
        run_demo(tmp_path / "demo")
    assert not (tmp_path / "demo").exists()


def test_dbn_files_name_the_databento_extra(monkeypatch, tmp_path):
    block(monkeypatch, "databento")
    path = tmp_path / "book.dbn"
    path.write_bytes(b"DBN\x01")
    with pytest.raises(MissingDependencyError, match=r"reading DBN files needs .*'databento'.*convexsched\[databento\]"):
        read_databento(path)


def test_a_solver_not_installed_names_the_solvers_extra(monkeypatch):
    monkeypatch.setattr(cvxpy, "installed_solvers", lambda: ["CLARABEL", "OSQP", "SCS"])
    with pytest.raises(cs.SolverError, match=r"\['HIGHS'\] requested but not installed.*convexsched\[solvers\]"):
        cs.solve(curves(), 15.0, cs.Objective(), method="cvxpy", solver="HIGHS")
    # Without a request the order skips what is absent, and Clarabel (a core dependency) solves.
    assert cs.solve(curves(), 15.0, cs.Objective(), method="cvxpy").solver == "CLARABEL"


def test_core_import_and_fast_path_need_no_optional_package():
    code = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({OPTIONAL!r}))\n"
        "import convexsched as cs\n"
        "curves = cs.CostCurves([[1.0, 2.0], [1.5, 3.0]], [[10.0, 10.0], [10.0, 10.0]])\n"
        "schedule = cs.solve(curves, 15.0, cs.Objective())\n"
        "assert schedule.kkt.ok, schedule\n"
        "print(schedule.x.tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert np.allclose(eval(result.stdout), [10.0, 5.0])
