"""How the command-line tests drive ``convexsched``: as a subprocess or through ``main()``, and
what every bad-input error must look like."""

import subprocess
import sys

from convexsched.cli import main


def run(*args, timeout=240):
    """``python -m convexsched ARGS`` as a user would type it; never a traceback."""
    command = [sys.executable, "-m", "convexsched", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def run_in_process(capsys, *args):
    """``main(ARGS)``: the exit code (argparse's SystemExit included) and captured stdout/stderr."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return code, captured.out, captured.err


def assert_one_line_error(code, stderr, *fragments):
    """Exit code 2 and one line on stderr holding every fragment."""
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
