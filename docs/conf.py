"""Sphinx configuration of the convexsched API reference (autodoc + napoleon, numpy style).

Build: ``sphinx-build -W -b html docs docs/_build`` (warnings are errors; tests/test_docs.py).
"""

import sys
from pathlib import Path

# The checkout's package, not an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import convexsched  # noqa: E402

project = "convexsched"
author = "the convexsched authors"
copyright = "2026, the convexsched authors"
release = convexsched.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
# scikit-learn generates the metadata-routing setters on every estimator; their docstrings
# point into scikit-learn's own glossary, and they are not convexsched's API.
autodoc_default_options = {
    "members": True,
    "exclude-members": "set_fit_request,set_score_request,set_predict_request,get_metadata_routing",
}
exclude_patterns = ["_build"]
html_theme = "alabaster"

# Every cross-reference to convexsched must resolve (stale paths after a move fail the build).
# Other libraries' names are not checked: their inventories (intersphinx) need the network, and
# numpy-style type specs ("array_like, optional", "{'eq', 'le'}") are prose, not references.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!convexsched\.).*")]
