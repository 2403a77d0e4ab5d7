"""The training engine shared by every model: one job per module.

- :mod:`.config`: :class:`TrainConfig`, the settings of a run;
- :mod:`.devices`: ``--device auto|cpu|cuda|mps``;
- :mod:`.distributed`: several GPUs under ``torchrun``;
- :mod:`.loaders`: reproducible, sharded data loaders;
- :mod:`.evaluation`: evaluation split across DDP ranks (:class:`ShardedEval`);
- :mod:`.checkpoint`: the checkpoint format, and the import path of its parts:
  :mod:`.checkpoint_io` (atomic saves, loading that never runs code), :mod:`.checkpoint_validation`
  (every entry checked; :class:`CheckpointError`), :mod:`.checkpoint_fit` (states against the model
  and optimizer), :mod:`.random_state` (for exact resume) and :mod:`.legacy` (older checkpoints,
  which ``cnf-teach convert-checkpoint``, :mod:`cnf_teach.commands.convert`, converts);
- :mod:`.trainer`: the loop itself (:class:`Trainer`), whose other jobs are its base classes:
  :mod:`.step` (the step on the device and the divergence check), :mod:`.run_state`
  (checkpoints and exact resume) and :mod:`.collective` (what the DDP ranks reduce together).

The engine knows nothing of flows or tasks: a task hands it a model and
``loss_fn(model, batch) -> (loss, metrics)``.
"""

from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint, save_weights
from .config import TrainConfig, TrainingDiverged
from .devices import resolve_device
from .distributed import distributed_info
from .evaluation import Shard, ShardedEval
from .loaders import make_loader
from .trainer import Trainer

__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "Shard",
    "ShardedEval",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "distributed_info",
    "load_checkpoint",
    "make_loader",
    "resolve_device",
    "save_checkpoint",
    "save_weights",
]
