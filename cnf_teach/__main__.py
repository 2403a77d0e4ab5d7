"""``python -m cnf_teach``: the command-line interface."""

from .cli import main

raise SystemExit(main())
