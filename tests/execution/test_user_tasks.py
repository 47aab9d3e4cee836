"""User code reaches Dask: a task written in a user's own script, the README's Dask block as a script.

Both run in a fresh interpreter (``python script.py``) so that the task lives in ``__main__``,
where cloudpickle ships it by value with its globals, ``convexsched`` included, to process
workers that start by importing the script again (hence its ``if __name__ == "__main__":``).
"""

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import convexsched as cs

README = Path(__file__).resolve().parents[2] / "README.md"

USER_SCRIPT = '''
import pickle

import cloudpickle
import numpy as np
import pandas as pd

import convexsched as cs


def plan(key):
    """A user's task: the module-level ``cs`` travels with it."""
    rng = np.random.default_rng(key["seed"])
    slopes = np.sort(rng.uniform(0.01, 0.2, (30, 5)), axis=1)
    schedule = cs.solve(cs.CostCurves(slopes, np.full((30, 5), 100.0)), key["size"])
    return pd.DataFrame({"x0": [float(schedule.x.iloc[0])], "kkt_ok": [bool(schedule.kkt.ok)]})


if __name__ == "__main__":
    from distributed import Client, LocalCluster

    assert pickle.loads(pickle.dumps(cs)) is cs
    assert cloudpickle.loads(cloudpickle.dumps(plan))({"seed": 0, "size": 1000.0}).equals(plan({"seed": 0, "size": 1000.0}))
    keys = [{"seed": seed, "size": 1000.0 + 500 * seed} for seed in range(4)]
    serial = cs.run_universe(keys, plan, progress=False)
    with LocalCluster(processes=True, n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, \\
            Client(cluster) as client:
        remote = cs.run_universe(keys, plan, client=client, progress=False)
    print(remote[["status", "error"]].to_json())
    serial.attrs, remote.attrs = {}, {}
    pd.testing.assert_frame_equal(remote, serial)
    print("EQUAL")
'''


def _run(script, cwd):
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_package_pickles_by_reference():
    assert pickle.loads(pickle.dumps(cs)) is cs
    cloudpickle = pytest.importorskip("cloudpickle")
    assert cloudpickle.loads(cloudpickle.dumps(cs)) is cs


def test_a_task_from_a_users_script_runs_on_process_workers(tmp_path):
    pytest.importorskip("distributed")
    script = tmp_path / "user_task.py"
    script.write_text(USER_SCRIPT)
    result = _run(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    status = json.loads(result.stdout.splitlines()[0])
    assert set(status["status"].values()) == {"ok"} and set(status["error"].values()) == {""}
    assert result.stdout.splitlines()[-1] == "EQUAL"


def test_the_readme_dask_block_runs_as_a_script(tmp_path, shared_data):
    pytest.importorskip("distributed")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
                if "cluster(" in b]  # fmt: skip
    assert 'if __name__ == "__main__":' in block and "convexsched.universe" not in block
    # The README's two files are found in the working folder; the SSE panel alone keeps this short.
    files = re.search(r"make_manifest\((\[.*?\])", block).group(1)
    script = tmp_path / "universe.py"
    sse = shared_data / "cn-equity-l2-dolphindb" / "20211201snapshot_30stocks.zip"
    script.write_text(block.replace(files, repr([str(sse)])) + (
        '\nif __name__ == "__main__":\n'
        "    import pandas as pd\n\n"
        "    serial.attrs, table.attrs = {}, {}\n"
        "    pd.testing.assert_frame_equal(table, serial)\n"
        "    print(len(keys), (table['status'] == 'ok').all())\n"
    ))  # fmt: skip
    result = _run(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["30", "True"]
    assert "FutureWarning" not in result.stderr
