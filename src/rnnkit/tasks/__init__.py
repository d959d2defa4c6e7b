"""Tasks: one per kind of problem. A task turns data into batches and losses for the trainer, and
keeps what a run needs to be used later (vocabularies, tokenizers)."""

from .language_model import LanguageModelTask

TASKS = {LanguageModelTask.kind: LanguageModelTask}

__all__ = ["TASKS", "LanguageModelTask"]
