"""Models built on ``rnnkit.Recurrent``, in a registry so that the trainer, checkpoints and the CLI
never ask which kind of model they hold.

Every model provides ``config()`` (constructor arguments, JSON-able) and is rebuilt by
``build_model(kind, config)``; what it computes is each task's business (``rnnkit.tasks``).
"""

from __future__ import annotations

from .registry import MODELS, build_model, register_model
from .classifier import Classifier  # each registers itself
from .language_model import LanguageModel
from .music import PianoRollModel
from .seq2seq import Seq2Seq
from .tagger import Tagger

__all__ = ["MODELS", "Classifier", "LanguageModel", "PianoRollModel", "Seq2Seq", "Tagger", "build_model", "register_model"]
