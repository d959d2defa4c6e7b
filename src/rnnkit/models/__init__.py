"""Models built on ``rnnkit.Recurrent``, in a registry so that the trainer, checkpoints and the CLI
never ask which kind of model they hold.

Every model provides ``config()`` (constructor arguments, JSON-able) and is rebuilt by
``build_model(kind, config)``; what it computes is each task's business (``rnnkit.tasks``).
"""

from __future__ import annotations

from torch import nn
from ..errors import UsageError

MODELS: dict[str, type[nn.Module]] = {}


def register_model(cls):
    MODELS[cls.kind] = cls
    return cls


def build_model(kind: str, config: dict) -> nn.Module:
    if kind not in MODELS:
        raise UsageError(f"unknown model kind {kind!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[kind](**config)


from .classifier import Classifier  # noqa: E402  (each registers itself)
from .language_model import LanguageModel  # noqa: E402
from .music import PianoRollModel  # noqa: E402
from .seq2seq import Seq2Seq  # noqa: E402
from .tagger import Tagger  # noqa: E402

__all__ = ["MODELS", "Classifier", "LanguageModel", "PianoRollModel", "Seq2Seq", "Tagger", "build_model", "register_model"]
