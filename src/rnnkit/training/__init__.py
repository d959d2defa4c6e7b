"""Training: a model-agnostic trainer, run directories and checkpoints, optimizers, plots.

``TrainingConfig`` (``rnnkit.training.config``) imports no torch, for ``rnnkit train --help``; the
trainer and run directories are imported when first named (PEP 562), which needs torch.
"""

from importlib import import_module

from .config import TrainingConfig

_LAZY = {"RunDir": ".checkpoint", "Trainer": ".trainer"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RunDir", "Trainer", "TrainingConfig"]
