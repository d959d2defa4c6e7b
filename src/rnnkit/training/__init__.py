"""Training: a model-agnostic trainer, run directories and checkpoints, optimizers, plots."""

from .checkpoint import RunDir
from .trainer import Trainer, TrainingConfig

__all__ = ["RunDir", "Trainer", "TrainingConfig"]
