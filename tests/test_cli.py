"""The command line as a user drives it: subprocesses, real files in and out, trusted exit codes.

Subprocess runs cost about two seconds each (interpreter and cvxpy import), so the demo's
output folder is reused as the input of plan, check and backtest, and the rarer bad-input cases
go through ``main()`` in-process (the same code path minus ``python -m``).
"""

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from convexsched import ImpactOracle, Objective, solve
from convexsched.cli import main
from convexsched.io import read_curves

COMMANDS = ("demo", "features", "fit", "plan", "backtest", "check", "bench")
PSI = 1e-9


def run(*args, timeout=240):
    """``python -m convexsched ARGS`` as a user would type it."""
    command = [sys.executable, "-m", "convexsched", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def run_in_process(capsys, *args):
    """``main(ARGS)``: the exit code (argparse's SystemExit included) and captured stdout/stderr."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, stderr, *fragments):
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    result = run("demo", "--output-dir", folder)
    return folder, result, time.perf_counter() - started


@pytest.fixture(scope="module")
def planned(demo, tmp_path_factory):
    """A (C) schedule planned from the demo's curves with ``plan``."""
    folder = tmp_path_factory.mktemp("plan")
    curves, schedule = demo[0] / "curves.csv", folder / "schedule.csv"
    result = run("plan", "--curves", curves, "--total", 50_000, "--psi", PSI, "--output", schedule)
    return curves, schedule, result


# ------------------------------------------------------------------------------- help


def test_help_documents_commands_exit_codes_and_file_formats():
    result = run("--help")
    assert result.returncode == 0
    for text in COMMANDS + ("exit codes", "bucket,segment,slope,width", "bucket,size,cost", "bucket,x"):
        assert text in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_exit_codes(capsys, command):
    code, out, _ = run_in_process(capsys, command, "--help")
    assert code == 0
    assert "exit codes" in out and "2  bad usage or input" in out


# ------------------------------------------------------------------------------- demo


def test_demo_runs_end_to_end_and_writes_its_files(demo):
    folder, result, seconds = demo
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for stage in range(1, 8):
        assert f"[{stage}/7]" in out
    assert "Schedule of S = 100000 over 390 buckets, objective C" in out
    assert out.count("KKT certificate: OK") == 1 and "FAILED" not in out
    for name in ("features.csv", "curves.csv", "oracle.joblib", "comparison.csv", "schedule_A.csv",
                 "schedule_C.kkt.json", "backtest.csv", "receding_steps.csv", "curves.png",
                 "schedules.png", "receding.png"):  # fmt: skip
        assert (folder / name).is_file(), name
    comparison = pd.read_csv(folder / "comparison.csv")
    assert comparison["kkt_ok"].all() and len(comparison) == 6
    assert (comparison["max|x_fast - x_cvxpy|/S"] < 1e-4).all()
    assert "RH A H=30" in set(pd.read_csv(folder / "backtest.csv")["strategy"])
    assert seconds < 120


# ------------------------------------------------------------------------------- features and fit


@pytest.fixture(scope="module")
def task1_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "task1.parquet"
    result = run("features", "--synthetic", 1, "--kind", "task1", "--sizes", "100,1000", "--output", path)
    return path, result


def test_features_writes_the_task1_table_as_parquet(task1_file):
    path, result = task1_file
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(path)
    assert len(table) == 7800 * 2
    assert list(table.columns[:9]) == ["timestamp", "size", "slippage", "vol_ratio", "spread", "depth",
                                       "imbalance", "volatility", "hour_of_day"]  # fmt: skip
    assert (table["slippage"] > 0).all()


def test_fit_on_a_task1_table_saves_an_oracle_that_loads(task1_file, tmp_path):
    oracle_path = tmp_path / "oracle.joblib"
    result = run("fit", "--table", task1_file[0], "--max-iter", 20, "--validation-fraction", 0,
                 "--output", oracle_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "fitted ImpactOracle on 15," in result.stdout  # rows with a volatility: nearly all of 15,600
    oracle = ImpactOracle.load(oracle_path)
    states = pd.read_parquet(task1_file[0]).drop_duplicates("timestamp").dropna().iloc[:5]
    costs = oracle.predict_grid(states, np.linspace(0, 2000, 9))
    assert np.all(np.diff(costs, axis=1) >= 0)


# ------------------------------------------------------------------------------- plan and check


def test_plan_writes_the_optimal_schedule_and_its_certificate(planned):
    curves_path, schedule_path, result = planned
    assert result.returncode == 0, result.stderr
    assert "KKT certificate: OK" in result.stdout
    frame = pd.read_csv(schedule_path)
    assert list(frame.columns) == ["bucket", "x", "remaining"]
    assert frame["x"].sum() == pytest.approx(50_000)
    expected = solve(read_curves(curves_path), 50_000, Objective(psi=PSI))
    np.testing.assert_allclose(frame["x"].to_numpy(), np.asarray(expected.x), atol=1e-6)
    certificate = json.loads(schedule_path.with_suffix(".kkt.json").read_text())
    assert certificate["ok"] is True and certificate["objective_kind"] == "C" and certificate["total"] == 50_000


def test_plan_from_an_oracle_and_bucket_states(capsys, demo, tmp_path):
    folder = demo[0]
    schedule, curves = tmp_path / "schedule.parquet", tmp_path / "curves.csv"
    code, out, err = run_in_process(
        capsys, "plan", "--oracle", folder / "oracle.joblib", "--states", folder / "features.csv",
        "--total", 50_000, "--rho", 1e-6, "--method", "cvxpy", "--curves-out", curves,
        "--output", schedule, "--certificate", tmp_path / "cert.json",
    )  # fmt: skip
    assert code == 0, err
    assert "convexify[slopes-isotonic]" in out and "CLARABEL" in out
    assert pd.read_parquet(schedule)["x"].sum() == pytest.approx(50_000, rel=1e-6)
    assert read_curves(curves).n_buckets == 390
    assert json.loads((tmp_path / "cert.json").read_text())["ok"] is True


def test_check_certifies_the_planned_schedule(planned):
    curves, schedule, _ = planned
    result = run("check", "--curves", curves, "--schedule", schedule, "--total", 50_000, "--psi", PSI)
    assert result.returncode == 0, result.stderr
    assert "KKT certificate: OK" in result.stdout


def test_check_fails_with_exit_1_on_a_suboptimal_schedule(capsys, planned, tmp_path):
    curves, schedule, _ = planned
    twap = pd.read_csv(schedule).assign(x=50_000 / 390)
    twap.to_csv(tmp_path / "twap.csv", index=False)
    code, out, _ = run_in_process(capsys, "check", "--curves", curves, "--schedule", tmp_path / "twap.csv",
                                  "--total", 50_000, "--psi", PSI, "--json", tmp_path / "report.json")  # fmt: skip
    assert code == 1
    assert "KKT certificate: FAILED" in out
    assert json.loads((tmp_path / "report.json").read_text())["ok"] is False


def test_check_with_the_wrong_objective_fails(capsys, planned):
    curves, schedule, _ = planned
    code, out, _ = run_in_process(capsys, "check", "--curves", curves, "--schedule", schedule, "--total", 50_000)
    assert code == 1 and "objective A" in out and "FAILED" in out


# ------------------------------------------------------------------------------- backtest and bench


def test_backtest_with_an_oracle_writes_the_table(demo, tmp_path):
    output = tmp_path / "backtest.csv"
    result = run("backtest", "--synthetic", "--total", 20_000, "--oracle", demo[0] / "oracle.joblib",
                 "--strategies", "TWAP,static A", "--output", output)  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(output)
    assert list(table["strategy"]) == ["TWAP", "static A"]
    assert (table["cost"] > 0).all() and (table["unfilled"] == 0).all()


def test_bench_builtin_times_fast_against_cvxpy():
    result = run("bench", "--builtin", "--quick")
    assert result.returncode == 0, result.stderr
    for text in ("speedup", "CLARABEL", " A ", " B ", " C "):
        assert text in result.stdout


def test_bench_lists_the_scripts_but_not_their_helpers(capsys):
    code, out, _ = run_in_process(capsys, "bench", "--list")
    assert code == 0
    assert "bench_solvers" in out and "_common" not in out


def test_bench_rejects_an_unknown_benchmark(capsys):
    code, _, err = run_in_process(capsys, "bench", "no_such_benchmark")
    assert_one_line_error(code, err, "unknown benchmark(s) ['no_such_benchmark']")


# ------------------------------------------------------------------------------- bad input


def test_missing_file_is_a_one_line_usage_error(tmp_path):
    result = run("check", "--curves", tmp_path / "absent.csv", "--schedule", tmp_path / "s.csv", "--total", 1)
    assert_one_line_error(result.returncode, result.stderr, "no such file", "absent.csv")


def test_malformed_curves_csv_is_a_one_line_usage_error(tmp_path):
    curves = tmp_path / "curves.csv"
    curves.write_text("time,price\n09:30,1.0\n")
    result = run("plan", "--curves", curves, "--total", 10, "--output", tmp_path / "s.csv")
    assert_one_line_error(result.returncode, result.stderr, "curves.csv", "need columns", "found ['time', 'price']")
    assert not (tmp_path / "s.csv").exists()


def test_budget_above_capacity_is_a_one_line_usage_error(demo, tmp_path):
    result = run("plan", "--curves", demo[0] / "curves.csv", "--total", 1e12, "--output", tmp_path / "s.csv")
    assert_one_line_error(result.returncode, result.stderr, "exceeds the total capacity", "maximum executable")


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("bucket,slope,width\na,0.1,10\na,cheap,10\n", ("column 'slope'", "row 1", "'cheap'")),
        ("bucket,slope,width\na,0.5,10\na,0.1,10\n", ("bucket 0 (a) is not convex", "convexify")),
        ("\x00\x01\x02garbage", ("curves.csv",)),
    ],
)
def test_bad_curve_contents_name_the_problem(capsys, tmp_path, content, fragments):
    curves = tmp_path / "curves.csv"
    curves.write_text(content)
    code, _, err = run_in_process(capsys, "plan", "--curves", curves, "--total", 5, "--output", tmp_path / "s.csv")
    assert_one_line_error(code, err, *fragments)


def test_schedule_with_a_foreign_bucket_is_a_usage_error(capsys, planned, tmp_path):
    curves, schedule, _ = planned
    frame = pd.read_csv(schedule)
    frame.loc[0, "bucket"] = "tomorrow"
    frame.to_csv(tmp_path / "s.csv", index=False)
    code, _, err = run_in_process(capsys, "check", "--curves", curves, "--schedule", tmp_path / "s.csv", "--total", 50_000)
    assert_one_line_error(code, err, "bucket 'tomorrow' is not a bucket of the curves")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("plan", "--curves", "c.csv", "--total", "-5", "-o", "s.csv"), ("--total", "must be >= 0")),
        (("plan", "--curves", "c.csv", "--total", "5", "--rho", "nan", "-o", "s.csv"), ("--rho", "must be finite")),
        (("plan", "--total", "5", "-o", "s.csv"), ("plan needs a cost model",)),
        (("plan", "--curves", "c.csv", "--total", "5", "--weights", "cubic", "-o", "s.csv"), ("power:GAMMA",)),
        (("features", "--synthetic", "--sizes", "10,5", "-o", "f.csv"), ("increasing",)),
        (("nonsense",), ("invalid choice: 'nonsense'",)),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(capsys, args, fragments):
    code, _, err = run_in_process(capsys, *args)
    assert_one_line_error(code, err, *fragments)


def test_gamma_outside_the_family_is_a_usage_error(capsys, planned, tmp_path):
    curves, _, _ = planned
    code, _, err = run_in_process(capsys, "plan", "--curves", curves, "--total", 5, "--psi", 1e-9,
                                  "--weights", "power:3", "-o", tmp_path / "s.csv")  # fmt: skip
    assert_one_line_error(code, err, "gamma in [1, 2]")


def test_oracle_without_states_is_a_usage_error(capsys, demo, tmp_path):
    code, _, err = run_in_process(capsys, "plan", "--oracle", demo[0] / "oracle.joblib", "--total", 5,
                                  "-o", tmp_path / "s.csv")  # fmt: skip
    assert_one_line_error(code, err, "--oracle needs the book state per bucket")


def test_a_file_that_is_not_an_oracle_is_a_usage_error(capsys, demo, tmp_path):
    code, _, err = run_in_process(capsys, "plan", "--oracle", demo[0] / "curves.csv", "--states",
                                  demo[0] / "features.csv", "--total", 5, "-o", tmp_path / "s.csv")  # fmt: skip
    assert_one_line_error(code, err, "cannot read an oracle")


def test_missing_book_is_a_usage_error(capsys, tmp_path):
    code, _, err = run_in_process(capsys, "fit", "--book", tmp_path / "book.zip", "-o", tmp_path / "o.joblib")
    assert_one_line_error(code, err, "no such file", "book.zip")


# ------------------------------------------------------------------------------- real data


def test_features_of_one_real_stock(shared_data, tmp_path):
    tick = shared_data / "cn-equity-l2-dolphindb" / "tick.zip"
    output = tmp_path / "states.csv"
    result = run("features", "--book", tick, "--symbol", "300274.SZ", "--output", output)
    assert result.returncode == 0, result.stderr
    states = pd.read_csv(output)
    # 09:30-11:30 and 13:00-14:57 in one-minute buckets.
    assert len(states) == 237 and states["spread"].min() >= 0.01 - 1e-9


def test_real_file_with_several_stocks_needs_a_symbol(capsys, shared_data):
    tick = shared_data / "cn-equity-l2-dolphindb" / "tick.zip"
    code, _, err = run_in_process(capsys, "backtest", "--book", tick, "--total", 1000)
    assert_one_line_error(code, err, "holds 5 symbols", "300274.SZ", "--symbol")
