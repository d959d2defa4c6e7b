"""Tasks: one per kind of problem. A task turns data into batches and losses for the trainer, and
keeps what a run needs to be used later (vocabularies, tokenizers, label sets)."""

from .classification import ClassificationTask
from .language_model import LanguageModelTask
from .music import MusicTask
from .tagging import TaggingTask
from .translation import TranslationTask

TASKS = {task.kind: task for task in (LanguageModelTask, TaggingTask, ClassificationTask, TranslationTask, MusicTask)}

__all__ = ["TASKS", "ClassificationTask", "LanguageModelTask", "MusicTask", "TaggingTask", "TranslationTask"]
