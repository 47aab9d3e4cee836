"""``python -m convexsched``: the command line of :mod:`convexsched.cli`."""

from .cli import main

raise SystemExit(main())
