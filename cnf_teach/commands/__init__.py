"""The commands of ``cnf-teach``, one module per subcommand: the top floor of the package.

Each module defines ``register(subparsers)``, which adds its subcommand, and handlers that take
the parsed arguments and return an exit code; :mod:`cnf_teach.cli` only dispatches. The commands
sit above everything they use (the engine, the applications and the shipped models of
:mod:`cnf_teach.pretrained`), so every import here runs down a floor.

- :mod:`.convert`: ``cnf-teach convert-checkpoint``, older checkpoints to the safe format;
- :mod:`.sr`: ``cnf-teach sr train|eval|sample|prepare`` (:mod:`.sr_train`, :mod:`.sr_eval`,
  :mod:`.sr_inputs`);
- :mod:`.toy`: ``cnf-teach toy``, the 2D conditional toy;
- :mod:`.seg`: ``cnf-teach seg info|synth|train|eval|sample`` (:mod:`.seg_train`,
  :mod:`.seg_eval`, :mod:`.seg_inputs`);
- :mod:`.common`: one-line usage errors and ``--device``.

The old paths (``cnf_teach.super_resolution.command``, ``cnf_teach.vessels.command``,
``cnf_teach.toy.command``, ``cnf_teach.engine.command``) still import, with a
``DeprecationWarning``, for one release.
"""
