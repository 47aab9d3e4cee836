"""Equation references are self-contained: every (E<n>) cited is defined in docs/equations.rst.

The package once cited the numbered equations of a design document it does not ship ("seed (3)");
"seed" also names the random seed. The project numbers its own equations now, once, in
``docs/equations.rst``; the README repeats the list.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EQUATIONS = ROOT / "docs" / "equations.rst"
LABEL = re.compile(r"\(E(\d+)\)")
# A definition is a section title "(E<n>) ..." underlined with "~".
DEFINITION = re.compile(r"^\(E(\d+)\) \S.*\n~{3,}$", flags=re.M)
# Citations of the unshipped design document: "seed (3)", "the seed's ...", '(seed, "Setup")'.
DOCUMENT_CITATION = re.compile(r"seed\s*\(\d|seed \(|\bseed's\b|\(seed,\s*(?:\"|section|step|problem)", flags=re.I)
# The local letter labels that were folded into the E numbering.
OLD_LABEL = re.compile(r"\((?:W|W1|S1|H1)\)")


def _sources():
    files = sorted((ROOT / "convexsched").rglob("*.py"))
    files += sorted((ROOT / "benchmarks").glob("*.py"))
    files += [ROOT / "README.md", ROOT / "notebooks" / "build_notebooks.py"]
    files += sorted((ROOT / "docs").glob("*.rst")) + [ROOT / "docs" / "conf.py"]
    files += sorted(path for path in (ROOT / "tests").rglob("*.py") if path.name != "test_equations.py")
    return [path for path in files if path.exists()]


def defined_labels():
    numbers = [int(n) for n in DEFINITION.findall(EQUATIONS.read_text())]
    assert numbers, "docs/equations.rst defines no (E<n>) label"
    return numbers


def test_labels_are_defined_once_and_numbered_in_order():
    numbers = defined_labels()
    assert numbers == list(range(1, len(numbers) + 1))


def test_package_sources_exist():
    # Guards the scan below against a moved tree (an empty scan would pass vacuously).
    assert len(list((ROOT / "convexsched").rglob("*.py"))) > 20


@pytest.mark.parametrize("path", _sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_citation_of_the_design_document(path):
    text = path.read_text()
    hits = [line.strip() for line in text.splitlines() if DOCUMENT_CITATION.search(line) or OLD_LABEL.search(line)]
    assert not hits, f"{path.relative_to(ROOT)} cites the design document or an old label: {hits}"


@pytest.mark.parametrize("path", _sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_cited_label_is_defined(path):
    defined = set(defined_labels())
    cited = {int(n) for n in LABEL.findall(path.read_text())}
    assert cited <= defined, f"{path.relative_to(ROOT)} cites undefined labels {sorted(cited - defined)}"


def test_readme_lists_the_same_equations():
    readme = (ROOT / "README.md").read_text()
    listed = [int(n) for n in re.findall(r"^\| \(E(\d+)\) \|", readme, flags=re.M)]
    assert listed == defined_labels()


def test_the_checks_catch_what_they_should():
    assert DOCUMENT_CITATION.search("the water level, seed (3), (5)")
    assert DOCUMENT_CITATION.search("The Seed's dual bisection")
    assert DOCUMENT_CITATION.search('a cost curve (seed, "Setup")')
    assert not DOCUMENT_CITATION.search("rng = np.random.default_rng(seed)")
    assert not DOCUMENT_CITATION.search("synthetic_book(seed, symbol=name)")
    assert OLD_LABEL.search("stationarity (W1)") and not OLD_LABEL.search("objective (A)")
    assert set(defined_labels()) and 10_000 not in set(defined_labels())
