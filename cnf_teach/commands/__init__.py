"""Subcommands of ``cnf-teach``: one module per task, each with ``register(subparsers)``.

``register`` adds a subparser and sets ``handler=fn`` on it with
``parser.set_defaults(handler=fn)``; ``fn(args) -> int`` returns the exit code.
"""
