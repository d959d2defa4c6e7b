"""Tasks: one per kind of problem. A task turns data into batches and losses for the trainer, and
keeps what a run needs to be used later (vocabularies, tokenizers, label sets).

``TASKS`` is the registry that ``rnnkit train``'s tasks, runs and the inference verbs read: a new
task is a ``TaskBase`` subclass (its ``kind``, ``Data`` dataclass of settings, ``model_defaults``
and the methods of ``rnnkit.training.Task``) registered with ``register_task``; its command-line
options are generated from those (``rnnkit.cli.train``), with nothing to edit in ``cli/``.
"""

from .base import TaskBase
from .classification import ClassificationTask
from .language_model import LanguageModelTask
from .music import MusicTask
from .tagging import TaggingTask
from .translation import TranslationTask

TASKS: dict[str, type[TaskBase]] = {}


def register_task(cls: type[TaskBase]) -> type[TaskBase]:
    """Add a task class to ``TASKS`` under its ``kind`` (usable as a class decorator)."""
    TASKS[cls.kind] = cls
    return cls


for _task in (LanguageModelTask, TaggingTask, ClassificationTask, TranslationTask, MusicTask):
    register_task(_task)

__all__ = ["TASKS", "ClassificationTask", "LanguageModelTask", "MusicTask", "TaggingTask", "TaskBase", "TranslationTask", "register_task"]
