"""What ``import convexsched`` loads: the heavy libraries only on first use (module
``__getattr__``, as scipy does), checked in fresh interpreters."""

import json
import subprocess
import sys

HEAVY = ("cvxpy", "sklearn", "numba", "matplotlib", "distributed", "databento")

SCRIPT = """
import json, sys
import numpy as np
import convexsched as cs
loaded = {{"import": [name for name in {heavy!r} if name in sys.modules]}}
curves = cs.CostCurves(np.tile([0.01, 0.02, 0.05], (10, 1)), 1000.0)
for objective in (cs.Objective(), cs.Objective(rho=1e-4), cs.Objective(psi=1e-5)):
    assert cs.solve(curves, 12_500.0, objective).success
loaded["fast solve"] = [name for name in ("cvxpy", "sklearn") if name in sys.modules]
cs.build_problem
loaded["build_problem"] = [name for name in ("cvxpy", "sklearn") if name in sys.modules]
cs.ImpactOracle
loaded["ImpactOracle"] = [name for name in ("cvxpy", "sklearn") if name in sys.modules]
print(json.dumps(loaded))
"""


def test_heavy_libraries_load_on_first_use_only():
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(heavy=HEAVY)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"import": [], "fast solve": [], "build_problem": ["cvxpy"], "ImpactOracle": ["cvxpy", "sklearn"]}


def test_every_lazy_name_resolves_and_is_exported():
    import convexsched

    for name in convexsched._LAZY:
        assert getattr(convexsched, name) is not None
        assert name in convexsched.__all__
    assert set(convexsched.__all__) <= set(dir(convexsched)) | set(convexsched._LAZY)
