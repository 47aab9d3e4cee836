"""The README's Python examples run verbatim, in order, in one namespace.

A block whose first line says it is not run here (it needs data files a user brings) is skipped.
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_as_written(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 2
    namespace = {}
    for block in blocks:
        if block.startswith("# (not run by tests/test_readme.py"):
            continue
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the README is ours
    schedule, report, result = namespace["schedule"], namespace["report"], namespace["result"]
    # What the tour's comments promise.
    assert isinstance(schedule.x, pd.Series) and isinstance(schedule.x.index, pd.RangeIndex)
    assert schedule.kkt.ok and abs(schedule.x.sum() - 50_000) < 1e-6
    assert (np.asarray(result.x)[:30] <= 500 + 1e-6).all() and not report.ok
    assert "KKT certificate: OK" in capsys.readouterr().out
