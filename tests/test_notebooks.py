"""The tutorial notebooks: stored with their outputs, built from the current sources, and still
executing top to bottom without errors."""

import base64
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_quickstart.ipynb", "02_objectives_and_kkt.ipynb", "03_real_book_backtest.ipynb")
# A guard against a hung kernel, not a speed target (speed is measured in benchmarks/).
HANG_GUARD_S = 600
# The build stores plots on a small palette; a plot past this was stored unreduced.
LARGEST_PLOT_BYTES = 100_000


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _shape(cell):
    """What kinds of output a cell shows (not their values, which hold timings and fitted numbers).

    Text on stderr (a library's warning) depends on the installed versions, so it is left out;
    a kernel may cut its text on one stream into several outputs, so runs of them count once.
    """
    shape = []
    for output in cell.outputs:
        kind = (output.output_type, output.get("name"), sorted(output.get("data", {})))
        if kind[:2] != ("stream", "stderr") and not (shape and kind[0] == "stream" and shape[-1] == kind):
            shape.append(kind)
    return shape


def test_every_notebook_is_listed():
    assert sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_has_outputs_and_no_errors(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    for cell in _code_cells(notebook):
        assert _shape(cell), f"{name}: cell {cell.id} has no stored output; run python notebooks/build_notebooks.py {name}"
        assert all(output.output_type != "error" for output in cell.outputs), f"{name}: cell {cell.id} stored an error"
        # The build strips what changes at every run without saying anything.
        assert cell.execution_count is None and not cell.metadata, f"{name}: cell {cell.id} keeps counts or metadata"
        for output in cell.outputs:
            if "image/png" in output.get("data", {}):
                size = len(base64.b64decode(output.data["image/png"]))
                assert size < LARGEST_PLOT_BYTES, f"{name}: cell {cell.id} stores a {size:,}-byte plot"


def test_notebooks_match_their_generator():
    result = subprocess.run([sys.executable, str(NOTEBOOKS / "build_notebooks.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_changed_cell_makes_the_check_fail(tmp_path, monkeypatch):
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import build_notebooks
    finally:
        sys.path.remove(str(NOTEBOOKS))
    for name in NAMES:
        (tmp_path / name).write_text((NOTEBOOKS / name).read_text())
    monkeypatch.setattr(build_notebooks, "FOLDER", tmp_path)
    assert build_notebooks.main(["--check"]) == 0
    stored = nbformat.read(tmp_path / NAMES[0], as_version=4)
    _code_cells(stored)[-1].source += "\nprint('edited by hand')"
    nbformat.write(stored, tmp_path / NAMES[0])
    assert build_notebooks.main(["--check"]) == 1


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_without_errors(name):
    stored = nbformat.read(NOTEBOOKS / name, as_version=4)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=HANG_GUARD_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    errors = [o for cell in _code_cells(notebook) for o in cell.outputs if o.output_type == "error"]
    assert not errors
    # The stored outputs are of the same kinds as a fresh run's, cell by cell (values aside).
    assert [_shape(cell) for cell in _code_cells(notebook)] == [_shape(cell) for cell in _code_cells(stored)]
