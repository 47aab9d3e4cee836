"""The command line at its edges: outputs no race or signal can clobber, manifests' books as
inputs, nothing from a data file that drives the terminal or leaks a file's contents."""

import os
import signal
import time

import pandas as pd
import pytest
from cli_runs import assert_one_line_error, run_in_process

from convexsched import cli as cli_module
from convexsched import synthetic_book
from convexsched.errors import OutputError
from convexsched.files import check_outputs, release_outputs, write_table


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def book_csv(tmp_path):
    path = tmp_path / "book.csv"
    synthetic_book(seed=0).frame.iloc[:200].reset_index().assign(symbol="SYN").to_csv(path, index=False)
    return path


def test_a_file_that_appears_after_the_check_is_not_replaced(tmp_path):
    target = tmp_path / "out.csv"
    check_outputs({"--output": target})
    target.write_text("another run's result\n")  # written by someone else meanwhile
    with pytest.raises(OutputError, match="appeared while this command ran"):
        write_table(pd.DataFrame({"a": [1]}), target)
    assert target.read_text() == "another run's result\n" and _leftovers(tmp_path) == []
    release_outputs()
    # With force the check does not reserve the name: the write replaces.
    check_outputs({"--output": target}, force=True)
    write_table(pd.DataFrame({"a": [1]}), target)
    assert target.read_text() == "a\n1\n"


def test_two_commands_writing_one_output_do_not_clobber_each_other(capsys, tmp_path, book_csv, monkeypatch):
    output = tmp_path / "features.csv"
    read = cli_module._read_books

    def read_while_another_run_finishes(args, one=False):
        output.write_text("the other run\n")
        return read(args, one)

    monkeypatch.setattr(cli_module, "_read_books", read_while_another_run_finishes)
    code, _, err = run_in_process(capsys, "features", "--book", book_csv, "--kind", "snapshots", "-o", output)
    assert code == 2 and "appeared while this command ran" in err and len(err.strip().splitlines()) >= 1
    assert output.read_text() == "the other run\n" and _leftovers(tmp_path) == []


def test_sigterm_during_a_write_leaves_no_partial_file(capsys, tmp_path, book_csv, monkeypatch):
    output = tmp_path / "features.csv"
    real = pd.DataFrame.to_csv

    def write_half_then_get_terminated(self, path, *args, **kwargs):
        real(self.iloc[:10], path, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler raises before this returns

    monkeypatch.setattr(pd.DataFrame, "to_csv", write_half_then_get_terminated)
    code, _, err = run_in_process(capsys, "features", "--book", book_csv, "--kind", "snapshots", "-o", output)
    assert code == 143 and "terminated" in err
    assert not output.exists() and _leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is not None  # the previous handler is back


def test_a_book_the_manifest_names_is_an_input_even_with_force(capsys, tmp_path, book_csv):
    manifest = tmp_path / "universe.csv"
    pd.DataFrame({"symbol": ["SYN"], "day": [""], "file": ["book.csv"], "size": [1000]}).to_csv(manifest, index=False)
    before = book_csv.read_bytes()
    code, _, err = run_in_process(capsys, "backtest", "--universe", manifest, "-o", book_csv, "--force")
    assert code == 2 and "is also the input" in err and "universe.csv line 2" in err
    assert book_csv.read_bytes() == before


def test_control_characters_from_the_data_are_escaped(capsys, tmp_path):
    path = tmp_path / "book.csv"
    evil = "X\x1b]0;owned\x07\x1b[2J"
    synthetic_book(seed=0).frame.iloc[:50].reset_index().assign(symbol=evil).to_csv(path, index=False)
    code, out, err = run_in_process(capsys, "features", "--book", path, "--kind", "snapshots", "-o", tmp_path / "f.csv")
    assert code == 0
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text
    assert "X\\x1b]0;owned\\x07\\x1b[2J" in err


def test_an_error_does_not_quote_a_private_file_the_manifest_names(capsys, tmp_path):
    secret = tmp_path / "notes.txt"
    secret.write_text("api_key=sk-very-secret\nother=1\n")
    manifest = tmp_path / "universe.csv"
    pd.DataFrame({"symbol": ["SYN"], "day": [""], "file": ["notes.txt"], "size": [1000]}).to_csv(manifest, index=False)
    code, out, err = run_in_process(capsys, "backtest", "--universe", manifest, "-o", tmp_path / "r.csv")
    assert code == 1 and "failed" in err
    assert "sk-very-secret" not in out + err and "sk-very-secret" not in (tmp_path / "r.csv").read_text()


def test_an_empty_manifest_cell_is_one_clear_line(capsys, tmp_path, book_csv):
    manifest = tmp_path / "universe.csv"
    manifest.write_text("symbol,day,file,size\nSYN,,book.csv,1000\nSYN,,,1000\n")
    code, _, err = run_in_process(capsys, "backtest", "--universe", manifest)
    assert_one_line_error(code, err, "the file cell is empty on line(s) [3]")


def test_a_repeated_manifest_key_is_refused(capsys, tmp_path, book_csv):
    manifest = tmp_path / "universe.csv"
    manifest.write_text("symbol,day,file,size\nSYN,,book.csv,1000\nSYN,,book.csv,2000\n")
    code, _, err = run_in_process(capsys, "backtest", "--universe", manifest)
    assert code == 2 and "line 3 repeats the key 'SYN'" in err


# ---------------------------------------------------------------- sizes checked before allocating


@pytest.mark.parametrize("grid", ["0:1e12:1", "0:inf:1", ",".join(str(k) for k in range(10_001))])
def test_a_grid_that_asks_for_terabytes_is_one_line(capsys, grid):
    code, _, err = run_in_process(capsys, "plan", "--curves", "c.csv", "-S", 1, "--grid", grid)
    assert_one_line_error(code, err, "--grid", "at most 10,000")


@pytest.mark.parametrize("freq", ["1us", "1ms"])
def test_a_bucket_width_that_makes_millions_of_buckets_is_refused(capsys, tmp_path, book_csv, freq):
    code, _, err = run_in_process(capsys, "features", "--book", book_csv, "--sessions", "us_equity", "--freq", freq,
                                  "-o", tmp_path / "f.csv")  # fmt: skip
    assert code == 2 and "buckets for 200 snapshots; at most 1,000,000" in err and "choose a wider freq" in err
    assert not (tmp_path / "f.csv").exists()


def test_a_lot_too_small_to_count_is_refused(capsys, tmp_path):
    import numpy as np

    from convexsched import CostCurves
    from convexsched.io import write_curves

    write_curves(CostCurves(np.tile([0.01, 0.02], (5, 1)), 1000.0), tmp_path / "c.csv")
    code, _, err = run_in_process(capsys, "plan", "--curves", tmp_path / "c.csv", "-S", 5000, "--lot", "1e-320",
                                  "-o", tmp_path / "s.csv")  # fmt: skip
    assert_one_line_error(code, err, "lot 1e-320 is too small for 5,000 shares")
    assert not (tmp_path / "s.csv").exists()


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("command", ["plan", "backtest"])
def test_a_crafted_oracle_file_runs_no_code_from_the_cli(capsys, tmp_path, command):
    import joblib

    marker = tmp_path / "code-ran"
    joblib.dump({"format": "convexsched.ImpactOracle", "estimator": _RunsCode(marker)}, tmp_path / "o.joblib")
    code, _, err = run_in_process(capsys, command, "--oracle", tmp_path / "o.joblib", "--synthetic", "-S", 1000,
                                  "-o", tmp_path / "out.csv")  # fmt: skip
    assert_one_line_error(code, err, "is a pickle (joblib) file")
    assert not marker.exists()
