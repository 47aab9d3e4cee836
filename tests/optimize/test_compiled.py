"""The compiled fast paths as a user meets them: in a fresh process, without cvxpy, and where
numba cannot write its cache (a read-only install)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "convexsched"

SCRIPT = """
import sys
import numpy as np
import convexsched as cs

curves = cs.CostCurves(np.tile([0.01, 0.02, 0.05], (10, 1)), 1000.0)
for objective in (cs.Objective(), cs.Objective(rho=1e-4), cs.Objective(psi=1e-5), cs.Objective(rho=1e-4, psi=1e-5)):
    schedule = cs.solve(curves, 12_500.0, objective)
    assert schedule.kkt.ok, schedule.kkt
print("cvxpy imported:", "cvxpy" in sys.modules)
"""


def run(script, env, cwd):
    return subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_fast_paths_work_without_a_writable_numba_cache_and_without_cvxpy(tmp_path):
    # A copy of the package whose __pycache__ folders are files (numba's in-tree cache cannot be made),
    # with the user-wide and the NUMBA_CACHE_DIR locations under a file as well.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    shutil.copytree(PACKAGE, tmp_path / "convexsched", ignore=shutil.ignore_patterns("__pycache__"))
    for package in [tmp_path / "convexsched", *(tmp_path / "convexsched").glob("*/")]:
        (package / "__pycache__").write_text("")
    env = dict(
        os.environ,
        HOME=str(blocker),
        XDG_CACHE_HOME=str(blocker / "cache"),
        NUMBA_CACHE_DIR=str(blocker / "numba"),
        PYTHONPATH=str(tmp_path),
        PYTHONDONTWRITEBYTECODE="1",
    )
    result = run(SCRIPT, env, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cvxpy imported: False" in result.stdout
    # The same script with caching possible, to show the check above is not vacuous: numba
    # does write a cache index where it may.
    cache = tmp_path / "numba-cache"
    result = run(SCRIPT, dict(env, NUMBA_CACHE_DIR=str(cache)), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(cache.rglob("*.nbi"))


def test_a_damaged_numba_cache_is_discarded_and_rebuilt_with_one_warning(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "convexsched", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "numba-cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    script = (
        "import numpy as np, convexsched as cs\n"
        "print(cs.solve(cs.CostCurves(np.tile([0.01, 0.02, 0.05], (10, 1)), 1000.0), 12_500.0).kkt.ok)\n"
    )
    assert run(script, env, tmp_path).returncode == 0
    files = sorted(cache.rglob("*.nb[ic]"))
    assert files
    for k, path in enumerate(files):  # a full disk or a killed process: files cut short
        path.write_bytes(path.read_bytes()[: 20 if k % 2 else 100])
    result = run(script, env, tmp_path)
    assert result.returncode == 0 and "True" in result.stdout, result.stderr[-3000:]
    assert result.stderr.count("RuntimeWarning: the numba cache of convexsched") == 1
    assert "Traceback" not in result.stderr
    again = run(script, env, tmp_path)  # rebuilt: read back without a word
    assert again.returncode == 0 and "RuntimeWarning" not in again.stderr, again.stderr[-3000:]
