"""Tasks: one per kind of problem. A task turns data into batches and losses for the trainer, and
keeps what a run needs to be used later (vocabularies, tokenizers, label sets)."""

from .classification import ClassificationTask
from .language_model import LanguageModelTask
from .tagging import TaggingTask
from .translation import TranslationTask

TASKS = {task.kind: task for task in (LanguageModelTask, TaggingTask, ClassificationTask, TranslationTask)}

__all__ = ["TASKS", "ClassificationTask", "LanguageModelTask", "TaggingTask", "TranslationTask"]
