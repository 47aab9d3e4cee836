"""The command line as a user drives it: subprocesses, real files in and out, trusted exit codes.

Subprocess runs cost about two seconds each (interpreter and cvxpy import), so the demo's
output folder is reused as the input of plan, check and backtest, and the rarer bad-input cases
go through ``main()`` in-process (the same code path minus ``python -m``).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runs import assert_one_line_error, run, run_in_process

from convexsched import ImpactOracle, Objective, solve, synthetic_book
from convexsched.cli import main
from convexsched.io import read_curves

COMMANDS = ("demo", "features", "fit", "plan", "backtest", "check", "bench")
PSI = 1e-9


# ``python -m convexsched`` that also notes its own peak memory. VmHWM belongs to the process
# image: getrusage in a child of pytest would count the pytest image it was forked from.
PEAK_MEMORY = """
import atexit, os, sys
from convexsched.cli import main

def note_peak():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM"))
    with open(os.environ["CONVEXSCHED_PEAK_FILE"], "w") as out:
        out.write(peak)

atexit.register(note_peak)
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's run and its own peak memory in kB (None where /proc is unavailable)."""
    folder = tmp_path_factory.mktemp("demo")
    peak_file = tmp_path_factory.mktemp("demo-peak") / "kb"
    env = dict(os.environ, CONVEXSCHED_PEAK_FILE=str(peak_file))
    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, "demo", "--output-dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert "Traceback" not in result.stderr, result.stderr
    peak_kb = int(peak_file.read_text()) if Path("/proc/self/status").exists() else None
    return folder, result, peak_kb


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
    folder, result, peak_kb = demo
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for stage in range(1, 8):
        assert f"[{stage}/7]" in out
    assert "Schedule of S = 100000 over 390 buckets, objective C" in out
    assert out.count("KKT certificate: OK") == 1 and "FAILED" not in out
    for name in ("features.csv", "curves.csv", "oracle.skops", "comparison.csv", "schedule_A.csv",
                 "schedule_C.kkt.json", "backtest.csv", "receding_steps.csv", "curves.png",
                 "schedules.png", "receding.png"):  # fmt: skip
        assert (folder / name).is_file(), name
    comparison = pd.read_csv(folder / "comparison.csv")
    assert comparison["kkt_ok"].all() and len(comparison) == 6
    assert (comparison["max|x_fast - x_cvxpy|/S"] < 1e-4).all()
    assert "RH A H=30" in set(pd.read_csv(folder / "backtest.csv")["strategy"])
    # The demo's own peak memory, loosely bounded: it once took 2.5 GB (about 0.45 GB now).
    assert peak_kb is None or peak_kb < 1_000_000


def test_a_long_fit_says_it_is_still_running(caplog):
    import logging

    from convexsched.cli import _heartbeat

    with caplog.at_level(logging.INFO, logger="convexsched"), _heartbeat("fit", every=0.05):
        time.sleep(0.2)
    assert "fit: still running after 0 s" in caplog.text


# ------------------------------------------------------------------------------- features and fit


@pytest.fixture(scope="module")
def impact_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "impact_table.parquet"
    result = run("features", "--synthetic", 1, "--kind", "impact_table", "--sizes", "100,1000", "--output", path)
    return path, result


def test_features_writes_the_impact_table_as_parquet(impact_file):
    path, result = impact_file
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(path)
    assert len(table) == 7800 * 2
    assert list(table.columns[:9]) == ["timestamp", "size", "slippage", "vol_ratio", "spread", "depth",
                                       "imbalance", "volatility", "hour_of_day"]  # fmt: skip
    assert (table["slippage"] > 0).all()


def test_fit_caps_its_threads_and_says_what_it_fits(capsys, monkeypatch, impact_file, tmp_path):
    from threadpoolctl import threadpool_info

    seen = []
    fit = ImpactOracle.fit

    def recording_fit(self, X, y):
        seen.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp")
        return fit(self, X, y)

    monkeypatch.setattr(ImpactOracle, "fit", recording_fit)
    code, _, err = run_in_process(capsys, "fit", "--table", impact_file[0], "--max-iter", 5, "--threads", 2,
                                  "--validation-fraction", 0, "-o", tmp_path / "o.skops")  # fmt: skip
    assert code == 0 and "up to 5 boosting iterations, 2 thread(s)" in err
    assert seen and set(seen) == {2}  # the tests run with OMP_NUM_THREADS=1: the option set it


def test_fit_on_a_impact_table_saves_an_oracle_that_loads(impact_file, tmp_path):
    oracle_path = tmp_path / "oracle.skops"
    result = run("fit", "--table", impact_file[0], "--max-iter", 20, "--validation-fraction", 0,
                 "--output", oracle_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "fitted ImpactOracle on 15," in result.stdout  # rows with a volatility: nearly all of 15,600
    oracle = ImpactOracle.load(oracle_path)
    states = pd.read_parquet(impact_file[0]).drop_duplicates("timestamp").dropna().iloc[:5]
    costs = oracle.predict_grid(states, np.linspace(0, 2000, 9))
    assert np.all(np.diff(costs, axis=1) >= 0)


def test_fit_target_option_and_the_removed_transform_alias(capsys, impact_file, tmp_path):
    path = tmp_path / "o.skops"
    code, _, err = run_in_process(capsys, "fit", "--table", impact_file[0], "--max-iter", 3, "--target", "per_share",
                                  "--validation-fraction", 0, "-o", path)  # fmt: skip
    assert code == 0
    assert ImpactOracle.load(path).target == "per_share"
    # --transform was removed in 0.3.0 as promised: argparse rejects it (exit 2, nothing written).
    code, _, err = run_in_process(capsys, "fit", "--table", impact_file[0], "--transform", "per_share",
                                  "-o", tmp_path / "t.skops")  # fmt: skip
    assert code == 2 and "--transform" in err and not (tmp_path / "t.skops").exists()


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
        capsys, "plan", "--oracle", folder / "oracle.skops", "--states", folder / "features.csv",
        "--total", 50_000, "--rho", 1e-6, "--method", "cvxpy", "--curves-out", curves,
        "--output", schedule, "--certificate", tmp_path / "cert.json",
    )  # fmt: skip
    assert code == 0, err
    assert "convexify[slopes-isotonic]" in out and "CLARABEL" in out
    assert pd.read_parquet(schedule)["x"].sum() == pytest.approx(50_000, rel=1e-6)
    assert read_curves(curves).n_buckets == 390
    assert json.loads((tmp_path / "cert.json").read_text())["ok"] is True


def test_plan_from_an_oracle_and_a_states_file_of_several_symbols(capsys, demo, tmp_path):
    # The layout `convexsched features` writes for a file of several symbols: a leading symbol column.
    one = pd.read_csv(demo[0] / "features.csv")
    other = one.assign(depth=2 * one["depth"])
    pd.concat([one.assign(symbol="A"), other.assign(symbol="B")])[["symbol", *one.columns]].to_csv(
        tmp_path / "states.csv", index=False)  # fmt: skip
    other.to_csv(tmp_path / "b.csv", index=False)
    base = ("plan", "--oracle", demo[0] / "oracle.skops", "--total", 50_000, "--rho", 1e-6, "--force")
    code, _, err = run_in_process(capsys, *base, "--states", tmp_path / "states.csv", "-o", tmp_path / "x.csv")
    assert_one_line_error(code, err, "states.csv holds 2 symbols ['A', 'B']; pass --symbol")
    code, _, err = run_in_process(capsys, *base, "--states", tmp_path / "states.csv", "--symbol", "C",
                                  "-o", tmp_path / "x.csv")  # fmt: skip
    assert_one_line_error(code, err, "no symbol 'C'", "'A', 'B'")
    for states, extra, name in ((tmp_path / "states.csv", ("--symbol", "B"), "picked"), (tmp_path / "b.csv", (), "alone")):
        code, _, err = run_in_process(capsys, *base, "--states", states, *extra, "--curves-out", tmp_path / f"{name}.csv",
                                      "-o", tmp_path / f"{name}_x.csv")  # fmt: skip
        assert code == 0, err
    picked, alone = read_curves(tmp_path / "picked.csv"), read_curves(tmp_path / "alone.csv")
    assert picked.n_buckets == 390
    np.testing.assert_array_equal(picked.slopes, alone.slopes)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "picked_x.csv"), pd.read_csv(tmp_path / "alone_x.csv"))


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
    result = run("backtest", "--synthetic", "--total", 20_000, "--oracle", demo[0] / "oracle.skops",
                 "--strategies", "TWAP,static A", "--output", output)  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(output)
    assert list(table["strategy"]) == ["TWAP", "static A", "hindsight A", "hindsight B"]
    assert (table["cost"] > 0).all() and (table["unfilled"] == 0).all()
    assert {"hindsight_bps", "capture"} <= set(table.columns) and "capture" in result.stdout


def test_bench_builtin_times_fast_against_cvxpy():
    result = run("bench", "--builtin", "--quick")
    assert result.returncode == 0, result.stderr
    for text in ("speedup", "CLARABEL", " A ", " B ", " C ", "fast_first_ms", "cvxpy_first_ms"):
        assert text in result.stdout
    # Every timing says what it includes.
    assert (
        "numba compiles" in result.stdout
        and "imports cvxpy" in result.stdout
        and "speedup = cvxpy_ms / fast_ms" in " ".join(result.stdout.split())
    )


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
    code, _, err = run_in_process(capsys, "plan", "--oracle", demo[0] / "oracle.skops", "--total", 5,
                                  "-o", tmp_path / "s.csv")  # fmt: skip
    assert_one_line_error(code, err, "--oracle needs the book state per bucket")


def test_a_file_that_is_not_an_oracle_is_a_usage_error(capsys, demo, tmp_path):
    code, _, err = run_in_process(capsys, "plan", "--oracle", demo[0] / "curves.csv", "--states",
                                  demo[0] / "features.csv", "--total", 5, "-o", tmp_path / "s.csv")  # fmt: skip
    assert_one_line_error(code, err, "is not a saved oracle")


def test_missing_book_is_a_usage_error(capsys, tmp_path):
    code, _, err = run_in_process(capsys, "fit", "--book", tmp_path / "book.zip", "-o", tmp_path / "o.skops")
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


def test_a_binance_continuation_file_takes_previous_on_the_command_line(capsys, shared_data, tmp_path):
    spot = shared_data / "binance-btcusdt-hftbacktest" / "spot"
    later, earlier = spot / "btcusdt_20240809.gz", spot / "btcusdt_20240808.gz"
    code, _, err = run_in_process(capsys, "features", "--book", later, "-o", tmp_path / "f.csv")
    assert_one_line_error(code, err, "no REST depth snapshot", "--previous PATH")
    code, out, err = run_in_process(capsys, "features", "--book", later, "--previous", earlier, "-o", tmp_path / "f.csv")
    assert code == 0, err
    assert "btcusdt_20240809.gz: read 3044, kept 3044" in err and (tmp_path / "f.csv").is_file()
    # The earlier file is an input too: never overwritten.
    code, _, err = run_in_process(capsys, "features", "--book", later, "--previous", earlier, "-o", earlier, "--force")
    assert_one_line_error(code, err, "is also the input --previous")


def test_an_internal_error_is_exit_1_and_debug_shows_its_traceback(capsys, monkeypatch, tmp_path):
    import convexsched.cli as cli

    def broken(args):
        raise ValueError("Length of values (3) does not match length of index (6)")  # a pandas bug, say

    monkeypatch.setattr(cli, "_run_features", broken)
    code, _, err = run_in_process(capsys, "features", "--synthetic", "-o", tmp_path / "f.csv")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "internal error: ValueError: Length of values" in err and "--debug" in err
    assert main(["features", "--synthetic", "-o", str(tmp_path / "f.csv"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and 'raise ValueError("Length of values' in err
    # Bad input stays exit 2, one line, and --debug adds its traceback.
    code, _, err = run_in_process(capsys, "plan", "--curves", tmp_path / "missing.csv", "--total", 1, "-o", tmp_path / "x.csv")
    assert_one_line_error(code, err, "no such file")
    assert (
        main(["plan", "--curves", str(tmp_path / "missing.csv"), "--total", "1", "-o", str(tmp_path / "x.csv"), "--debug"]) == 2
    )
    assert "Traceback" in capsys.readouterr().err


def test_notes_go_through_logging(capsys, caplog, small_book, tmp_path):
    # What is neither a result nor an error is a log record of the convexsched loggers.
    import logging

    with caplog.at_level(logging.INFO, logger="convexsched"):
        code, _, err = run_in_process(capsys, "features", "--book", small_book[0], "--sessions", "us_equity",
                                      "-o", tmp_path / "f.csv")  # fmt: skip
    assert code == 0
    assert any(r.name == "convexsched.cli" and r.getMessage().startswith("book ") for r in caplog.records)
    assert "book " in err


def test_real_file_with_several_stocks_needs_a_symbol(capsys, shared_data):
    tick = shared_data / "cn-equity-l2-dolphindb" / "tick.zip"
    code, _, err = run_in_process(capsys, "backtest", "--book", tick, "--total", 1000)
    assert_one_line_error(code, err, "holds 5 symbols", "300274.SZ", "--symbol")


# ------------------------------------------------------------------------------- books as users send them


@pytest.fixture(scope="module")
def small_book(tmp_path_factory):
    """Twenty minutes of the synthetic book (400 snapshots) as a wide CSV, and its frame."""
    frame = synthetic_book(0).frame.iloc[:400].reset_index()
    path = tmp_path_factory.mktemp("books") / "book.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_shuffled_book_is_sorted_and_says_so(small_book, tmp_path):
    path, frame = small_book
    frame.sample(frac=1, random_state=0).to_csv(tmp_path / "shuffled.csv", index=False)
    result = run("features", "--book", tmp_path / "shuffled.csv", "--sessions", "us_equity", "-o", tmp_path / "a.csv")
    assert result.returncode == 0, result.stderr
    assert "read 400, kept 400, dropped none;" in result.stderr and "out-of-order rows sorted into place" in result.stderr
    # A partial book says how much of the session it covers.
    assert "covers 20 of the 390 1min buckets of its sessions (5%)" in result.stderr
    assert main(["features", "--book", str(path), "--sessions", "us_equity", "-o", str(tmp_path / "b.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))


def test_non_finite_values_are_dropped_counted_and_strict_refuses_them(capsys, small_book, tmp_path):
    _, frame = small_book
    frame.assign(bid_sz_03=frame["bid_sz_03"].where(frame.index != 5, np.inf)).to_csv(tmp_path / "inf.csv", index=False)
    arguments = ("features", "--book", tmp_path / "inf.csv", "--sessions", "us_equity", "--kind", "snapshots")
    code, _, err = run_in_process(capsys, *arguments, "-o", tmp_path / "f.csv")
    assert code == 0 and "kept 399, dropped 1 non_finite" in err
    assert np.isfinite(pd.read_csv(tmp_path / "f.csv")["depth"]).all()
    code, _, err = run_in_process(capsys, *arguments, "--strict", "-o", tmp_path / "g.csv")
    assert_one_line_error(code, err, "--strict", "1 non_finite")
    assert not (tmp_path / "g.csv").exists()


def test_a_book_with_no_usable_row_is_an_error_naming_the_reasons(capsys, small_book, tmp_path):
    _, frame = small_book
    frame.assign(ask_px_00=frame["bid_px_00"]).to_csv(tmp_path / "locked.csv", index=False)
    code, _, err = run_in_process(capsys, "features", "--book", tmp_path / "locked.csv", "-o", tmp_path / "f.csv")
    assert_one_line_error(code, err, "no usable rows", "read 400, dropped 400 crossed_or_locked")
    assert not (tmp_path / "f.csv").exists()


def test_naive_timestamps_are_a_warning_or_a_strict_error(capsys, small_book, tmp_path):
    _, frame = small_book
    frame.assign(ts=frame["ts"].dt.tz_localize(None)).to_csv(tmp_path / "naive.csv", index=False)
    base = ("features", "--book", tmp_path / "naive.csv", "--sessions", "us_equity")
    code, _, err = run_in_process(capsys, *base, "-o", tmp_path / "zone.csv")
    assert code == 0 and "warning: naive: timestamps carry no time zone and were read as America/New_York" in err
    code, _, err = run_in_process(capsys, *base, "--tz", "America/New_York", "-o", tmp_path / "ny.csv")
    assert code == 0 and "warning" not in err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "zone.csv"), pd.read_csv(tmp_path / "ny.csv"))
    code, _, err = run_in_process(capsys, *base, "--strict", "-o", tmp_path / "strict.csv")
    assert_one_line_error(code, err, "--strict", "no time zone")


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda path, tick: path.write_bytes(tick.read_bytes()[:100_000]), ("book.zip", "truncated or corrupt")),
        (lambda path, tick: path.write_text("SecurityID,MDDate\n"), ("book.zip",)),
    ],
)
def test_truncated_archive_is_one_line(capsys, shared_data, tmp_path, make, fragments):
    make(tmp_path / "book.zip", shared_data / "cn-equity-l2-dolphindb" / "tick.zip")
    code, _, err = run_in_process(capsys, "features", "--book", tmp_path / "book.zip", "-o", tmp_path / "f.csv")
    assert_one_line_error(code, err, *fragments)


# ------------------------------------------------------------------------------- outputs


@pytest.fixture
def protected(planned, tmp_path):
    """Copies of the planned curves and schedule, and their bytes, to check nothing touched them."""
    curves, schedule = tmp_path / "curves.csv", tmp_path / "schedule.csv"
    curves.write_bytes(planned[0].read_bytes())
    schedule.write_bytes(planned[1].read_bytes())
    return curves, schedule, {path: path.read_bytes() for path in (curves, schedule)}


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (("plan", "--curves", "{curves}", "-S", 5, "-o", "{curves}"), "--output {curves} is also the input --curves"),
        (("plan", "--curves", "{curves}", "-S", 5, "-o", "{dir}/s.csv", "--certificate", "{dir}/s.csv"),
         "--certificate and --output are the same file"),
        (("check", "--curves", "{curves}", "--schedule", "{schedule}", "-S", 5, "--json", "{schedule}"),
         "--json {schedule} is also the input --schedule"),
        (("features", "--book", "{curves}", "-o", "{curves}"), "is also the input --book"),
        (("plan", "--curves", "{curves}", "-S", 5, "-o", "{schedule}"), "exists; pass --force to overwrite it"),
    ],
)  # fmt: skip
def test_outputs_never_overwrite_inputs_or_each_other(capsys, protected, arguments, fragment):
    curves, schedule, before = protected
    names = {"curves": curves, "schedule": schedule, "dir": curves.parent}
    code, _, err = run_in_process(capsys, *(str(a).format(**names) for a in arguments))
    assert_one_line_error(code, err, fragment.format(**names))
    assert {path: path.read_bytes() for path in before} == before


def test_force_replaces_an_existing_output_atomically(capsys, protected):
    curves, schedule, _ = protected
    code, _, err = run_in_process(capsys, "plan", "--curves", curves, "-S", 1000, "-o", schedule, "--force")
    assert code == 0, err
    assert pd.read_csv(schedule)["x"].sum() == pytest.approx(1000)
    assert not [p for p in schedule.parent.iterdir() if p.name.startswith(".")]  # no temporary left


READ_ONLY = Path("/sys")  # not writable, not even by root


@pytest.mark.parametrize("target", ["read-only", "folder"])
@pytest.mark.parametrize(
    "command",
    [
        ("demo", "--output-dir", "{out}"),
        ("features", "--synthetic", "-o", "{out}"),
        ("fit", "--synthetic", "-o", "{out}"),
        ("plan", "--curves", "{curves}", "-S", 1000, "-o", "{out}"),
        ("plan", "--curves", "{curves}", "-S", 1000, "-o", "{dir}/s.csv", "--plot", "{out}"),
        ("backtest", "--synthetic", "-S", 1000, "-o", "{out}"),
        ("check", "--curves", "{curves}", "--schedule", "{schedule}", "-S", 1000, "--json", "{out}"),
    ],
    ids=lambda command: "-".join(str(part) for part in command[:1] + command[-2:-1]),
)  # fmt: skip
def test_every_command_refuses_an_unwritable_output_in_one_line(capsys, protected, tmp_path, command, target):
    curves, schedule, _ = protected
    if target == "folder":
        out = tmp_path / "a-folder"
        out.mkdir()
        (out / "features.csv").mkdir()  # the demo's first file is a folder too
    else:
        out = READ_ONLY / "convexsched-output"
    before = set(tmp_path.rglob("*"))
    arguments = [str(a).format(out=out, curves=curves, schedule=schedule, dir=tmp_path) for a in command]
    code, out_text, err = run_in_process(capsys, *arguments)
    assert_one_line_error(code, err)
    assert set(tmp_path.rglob("*")) == before and out_text == ""


def test_an_unwritable_plot_leaves_no_schedule_behind(planned, tmp_path):
    result = run("plan", "--curves", planned[0], "-S", 1000, "-o", tmp_path / "s.csv", "--plot", READ_ONLY / "s.png")
    assert_one_line_error(result.returncode, result.stderr, "--plot", "/sys")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- options and messages


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("plan", "--curves", "c.csv", "-S", 5, "--psi", "-1e-6", "-o", "s.csv"), ("--psi", "must be >= 0, got -1e-6")),
        (("plan", "--curves", "c.csv", "-S", 5, "--grid", "-100,0,100", "-o", "s.csv"), ("--grid", ">= 0", "'-100,0,100'")),
        (("plan", "--curves", "c.csv", "-S", 5, "--solver", "GUROBI", "-o", "s.csv"), ("unknown solver 'GUROBI'", "CLARABEL")),
        (("features", "--synthetic", "--freq", "1 minute please", "-o", "f.csv"), ("--freq", "like 1min")),
        (("features", "--synthetic", "--tz", "Mars/Olympus", "-o", "f.csv"), ("unknown time zone 'Mars/Olympus'",)),
        (("backtest", "--synthetic", "--pct-volume", 150), ("--pct-volume", "(0, 100]")),
    ],
)  # fmt: skip
def test_options_are_checked_with_our_own_messages(capsys, args, fragments):
    code, _, err = run_in_process(capsys, *args)
    assert_one_line_error(code, err, *fragments)


def test_a_negative_multiplier_is_a_value_not_an_option(capsys, planned):
    curves, schedule, _ = planned
    code, out, _ = run_in_process(capsys, "check", "--curves", curves, "--schedule", schedule, "-S", 50_000,
                                  "--psi", PSI, "--multiplier", "-1e-3")  # fmt: skip
    assert code == 1 and "lambda            -0.001" in out


def test_check_never_prints_an_inverted_admissible_interval(capsys, planned, tmp_path):
    curves, schedule, _ = planned
    pd.read_csv(schedule).assign(x=50_000 / 390).to_csv(tmp_path / "twap.csv", index=False)
    code, out, _ = run_in_process(capsys, "check", "--curves", curves, "--schedule", tmp_path / "twap.csv",
                                  "-S", 50_000, "--psi", PSI)  # fmt: skip
    assert code == 1 and "admissible: none" in out


def test_a_failed_bisection_plan_is_not_written(capsys, planned, tmp_path):
    code, out, err = run_in_process(capsys, "plan", "--curves", planned[0], "-S", 50_000, "--rho", 1e-6,
                                    "--method", "bisection", "-o", tmp_path / "s.csv")  # fmt: skip
    assert code == 1 and "FAILED" in out and "schedule not written" in err
    assert list(tmp_path.iterdir()) == []


def test_the_cli_says_when_objective_c_switches_method_and_refuses_what_it_cannot_solve(capsys, monkeypatch, planned, tmp_path):
    from convexsched import cli
    from convexsched.optimize import chain

    monkeypatch.setattr(chain, "MAX_SEGMENTS", 0)  # every problem is past the chain solver's limit
    code, out, err = run_in_process(capsys, "plan", "--curves", planned[0], "-S", 50_000, "--psi", PSI,
                                    "-o", tmp_path / "s.csv")  # fmt: skip
    assert code == 0 and "past the exact chain solver's limit: solving with cvxpy" in err and "CLARABEL" in out
    monkeypatch.setattr(cli, "CVXPY_MAX_SEGMENTS", 1000)
    code, _, err = run_in_process(capsys, "plan", "--curves", planned[0], "-S", 50_000, "--psi", PSI,
                                  "-o", tmp_path / "t.csv")  # fmt: skip
    assert_one_line_error(code, err, "past what cvxpy solves here", "--freq")


def test_plan_from_a_book_by_percent_of_volume_in_lots(capsys, tmp_path):
    code, out, err = run_in_process(capsys, "plan", "--synthetic", "--pct-volume", 1, "--lot", 100,
                                    "-o", tmp_path / "s.csv")  # fmt: skip
    assert code == 0, err
    assert "S = 1% of 2,042,000 shares traded = 20,420 shares" in out
    assert "in the curves' currency" in out and "bps of S x the mean mid" in out and "rounding costs" in out
    frame = pd.read_csv(tmp_path / "s.csv")
    assert frame["x"].sum() == pytest.approx(20_420) and frame["x_lots"].sum() == pytest.approx(20_420)
    assert np.count_nonzero(frame["x_lots"] % 100) == 1


def test_plan_from_an_oracle_and_a_book(capsys, demo, tmp_path):
    code, out, err = run_in_process(capsys, "plan", "--oracle", demo[0] / "oracle.skops", "--synthetic",
                                    "-S", 20_000, "-o", tmp_path / "s.csv")  # fmt: skip
    assert code == 0, err
    assert "convexify[slopes-isotonic]" in out and len(pd.read_csv(tmp_path / "s.csv")) > 380


def test_backtest_says_persistence_unless_given_a_state_profile(capsys, demo, tmp_path):
    assert main(["features", "--synthetic", "1", "-o", str(tmp_path / "day1.csv")]) == 0
    base = ("backtest", "--synthetic", "-S", 20_000, "--oracle", demo[0] / "oracle.skops",
            "--strategies", "TWAP,depth-proportional", "-o")  # fmt: skip
    code, _, err = run_in_process(capsys, *base, tmp_path / "persistence.csv")
    assert code == 0, err
    persistence = pd.read_csv(tmp_path / "persistence.csv").set_index("strategy")
    # The hindsight rows look at the realized books: no forecast.
    assert persistence["state_forecast"].tolist() == ["-", "persistence", "-", "-"]
    # The opening book carried all day has the same depth every minute: depth-proportional is TWAP.
    assert persistence.loc["depth-proportional", "cost"] == pytest.approx(persistence.loc["TWAP", "cost"])
    code, _, err = run_in_process(capsys, *base, tmp_path / "profile.csv", "--profile", tmp_path / "day1.csv")
    assert code == 0, err
    profile = pd.read_csv(tmp_path / "profile.csv").set_index("strategy")
    assert profile["state_forecast"].tolist() == ["-", "profile", "-", "-"]
    assert profile.loc["depth-proportional", "cost"] != pytest.approx(profile.loc["TWAP", "cost"])


def test_the_message_file_of_a_lobster_book_is_an_input_too(capsys, shared_data, tmp_path):
    for source in (shared_data / "lobster-aapl-2012-head").glob("*_10.csv"):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    book, message = next(tmp_path.glob("*_orderbook_10.csv")), next(tmp_path.glob("*_message_10.csv"))
    before = message.read_bytes()
    code, _, err = run_in_process(capsys, "features", "--book", book, "-o", message, "--force")
    assert_one_line_error(code, err, f"is also the input --book ({message.name})")
    assert message.read_bytes() == before


def test_backtest_sizes_the_order_as_a_percent_of_volume(capsys):
    code, out, err = run_in_process(capsys, "backtest", "--synthetic", "--pct-volume", 1, "--strategies", "TWAP")
    assert code == 0, err
    assert "S = 1% of 2,042,000 shares traded = 20,420 shares" in out and "S = 20,420 shares" in out


@pytest.mark.parametrize("option", ["--sense", "--budget"])
def test_the_le_sense_plans_and_certifies_and_budget_is_its_old_name(demo, tmp_path, capsys, option):
    # 1e12 shares exceed the day's capacity: only "sum x <= S" makes the plan feasible.
    schedule, certificate = tmp_path / "s.csv", tmp_path / "s.kkt.json"
    code, out, err = run_in_process(
        capsys, "plan", "--curves", demo[0] / "curves.csv", "--total", 1e12, option, "le", "--output", schedule
    )
    assert code == 0, err
    assert "KKT certificate: OK" in out
    assert json.loads(certificate.read_text())["sense"] == "le"
    assert ("--budget is deprecated; use --sense" in err) == (option == "--budget")


def test_version_is_one_fact(capsys):
    # --version, the package, the installed metadata and the CHANGELOG's newest release agree.
    import importlib.metadata
    import re

    import convexsched

    code, out, _ = run_in_process(capsys, "--version")
    changelog = (Path(__file__).parents[1] / "CHANGELOG.md").read_text()
    newest = re.search(r"^## (\d+\.\d+\.\d+)", changelog, re.M).group(1)
    assert code == 0 and out.split() == ["convexsched", convexsched.__version__]
    assert importlib.metadata.version("convexsched") == convexsched.__version__ == newest


def test_book_formats_come_from_the_loaders_registry(capsys):
    from convexsched.data.loaders import FORMATS

    code, out, _ = run_in_process(capsys, "features", "--help")
    assert code == 0
    for name, spec in FORMATS.items():
        assert f"    {name:<11}{spec.files}" in out
    assert "{" + ",".join(FORMATS) + "}" in " ".join(out.split())
    code, _, err = run_in_process(capsys, "features", "--synthetic", "--format", "nope", "-o", "x.csv")
    assert code == 2 and "invalid choice: 'nope'" in err and "binance" in err and "mbo" in err


def test_a_coin_is_counted_in_units_with_its_fractions(capsys, shared_data):
    spot = shared_data / "binance-btcusdt-hftbacktest" / "spot" / "btcusdt_20240808.gz"
    code, out, err = run_in_process(capsys, "backtest", "--book", spot, "--pct-volume", 1, "--strategies", "TWAP")
    assert code == 0, err
    line = next(text for text in out.splitlines() if text.startswith("S = 1% of"))
    assert line.endswith(" units") and "shares" not in line and " 0 units" not in line
    assert "drift_bps:" in " ".join(out.split())  # the table says what its columns measure


def test_the_transient_term_has_a_spelling(capsys, planned, tmp_path):
    curves, _, _ = planned
    out = tmp_path / "transient.csv"
    code, _, err = run_in_process(
        capsys,
        "plan",
        "--curves",
        curves,
        "--total",
        50_000,
        "--transient",
        "5:1e-6",
        "--certificate",
        tmp_path / "kkt.json",
        "--output",
        out,
    )
    assert code == 0, err
    record = json.loads((tmp_path / "kkt.json").read_text())
    assert record["ok"] and "TransientImpact" in record["objective_kind"]
    plain = tmp_path / "plain.csv"
    assert run_in_process(capsys, "plan", "--curves", curves, "--total", 50_000, "--output", plain)[0] == 0
    # The footprint spreads the order: fewer shares bunched in the same buckets than cost only.
    assert (pd.read_csv(out)["x"] ** 2).sum() < (pd.read_csv(plain)["x"] ** 2).sum()
    for bad, fragment in (("5", "HALF_LIFE:STRENGTH"), ("0:1e-6", "half_life must be > 0"), ("5:-1", ">= 0")):
        code, _, err = run_in_process(
            capsys, "plan", "--curves", curves, "--total", 5, "--transient", bad, "-o", tmp_path / "bad.csv"
        )
        assert_one_line_error(code, err, "--transient", fragment)
