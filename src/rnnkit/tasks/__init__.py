"""Tasks: one per kind of problem. A task turns data into batches and losses for the trainer, and
keeps what a run needs to be used later (vocabularies, tokenizers, label sets).

``TASKS`` is the registry that ``rnnkit train``'s tasks, runs and the inference verbs read: a new
task is a ``TaskBase`` subclass (its ``kind``, ``Data`` dataclass of settings, ``model_defaults``
and the methods of ``rnnkit.training.Task``) registered with ``register_task``; its command-line
options are generated from those (``rnnkit.cli.train``), with nothing to edit in ``cli/``.

A task may instead be registered by its declaration (``rnnkit.tasks.spec.TaskSpec``: kind, settings,
help texts, in a module that imports no torch) and the path of its class, which is imported when
``TASKS[kind]`` is first read: ``rnnkit train --help`` and ``rnnkit train KIND --help`` read the
declarations only (``TASKS.spec(kind)``) and answer without importing torch. The built-in tasks are
registered so; this package's ``__init__`` imports no task module, and names the task classes
lazily (PEP 562).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module

from .classification_spec import ClassificationSpec
from .language_model_spec import LanguageModelSpec
from .music_spec import MusicSpec
from .spec import TaskSpec
from .tagging_spec import TaggingSpec
from .translation_spec import TranslationSpec


class TaskRegistry(MutableMapping):
    """``kind -> task class``. Each entry is a declaration (``TaskSpec``, read without importing the
    task) and the task class, or the ``"module:Class"`` path it is imported from on first lookup."""

    def __init__(self) -> None:
        self._specs: dict[str, type[TaskSpec]] = {}
        self._classes: dict[str, type | str] = {}  # a class, or the path of one not imported yet

    def add(self, spec: type[TaskSpec], path: str) -> None:
        """Register the task that ``spec`` declares, its class at ``path`` (``"module:Class"``)."""
        self._specs[spec.kind], self._classes[spec.kind] = spec, path

    def spec(self, kind: str) -> type[TaskSpec]:
        """The declaration of ``kind``: its settings and help texts, without importing the task."""
        return self._specs[kind]

    def __getitem__(self, kind: str):
        task = self._classes[kind]
        if isinstance(task, str):
            module, _, name = task.partition(":")
            task = self._classes[kind] = getattr(import_module(module), name)
        return task

    def __setitem__(self, kind: str, task) -> None:
        """A task class (its own declaration), as ``register_task`` adds it."""
        self._specs[kind], self._classes[kind] = task, task

    def __delitem__(self, kind: str) -> None:
        del self._specs[kind], self._classes[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


TASKS = TaskRegistry()


def register_task(cls):
    """Add a task class to ``TASKS`` under its ``kind`` (usable as a class decorator)."""
    TASKS[cls.kind] = cls
    return cls


BUILT_IN = (  # each task's declaration and where its work is
    (LanguageModelSpec, "rnnkit.tasks.language_model:LanguageModelTask"),
    (TaggingSpec, "rnnkit.tasks.tagging:TaggingTask"),
    (ClassificationSpec, "rnnkit.tasks.classification:ClassificationTask"),
    (TranslationSpec, "rnnkit.tasks.translation:TranslationTask"),
    (MusicSpec, "rnnkit.tasks.music:MusicTask"),
)
for _spec, _path in BUILT_IN:
    TASKS.add(_spec, _path)

_LAZY = {"TaskBase": "rnnkit.tasks.base", **{path.partition(":")[2]: path.partition(":")[0] for _, path in BUILT_IN}}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TASKS", "ClassificationTask", "LanguageModelTask", "MusicTask", "TaggingTask", "TaskBase", "TaskRegistry", "TaskSpec", "TranslationTask", "register_task"]
