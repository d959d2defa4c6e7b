"""The tasks' declarations (rnnkit.tasks.spec and each task's ``*_spec`` module) and the training
settings (rnnkit.training.config), read by ``rnnkit train --help`` without importing torch:

* the name tables of the registries that hold torch code equal those registries' keys;
* each task class is its declaration's subclass (one source for kind, settings, defaults and help);
* the registry lists and describes tasks without importing them, and imports a task when it is used;
* the old import paths still name the same objects.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from rnnkit.tasks import TASKS, TaskRegistry
from rnnkit.tasks.spec import ATTENTION_NAMES, CELL_NAMES, ENGINE_NAMES, POOLING_NAMES, TaskSpec


def test_the_name_tables_are_the_registries():
    from rnnkit.cells import CELLS
    from rnnkit.engines import ENGINES
    from rnnkit.models.classifier import POOLINGS
    from rnnkit.models.seq2seq import ATTENTIONS
    from rnnkit.training.config import OPTIMIZER_NAMES, SCHEDULES
    from rnnkit.training.optim import OPTIMIZERS, SCHEDULES as OPTIM_SCHEDULES

    assert CELL_NAMES == tuple(CELLS)
    assert ENGINE_NAMES == tuple(ENGINES)
    assert POOLING_NAMES == tuple(POOLINGS)
    assert ATTENTION_NAMES == tuple(ATTENTIONS)
    assert OPTIMIZER_NAMES == tuple(OPTIMIZERS)
    assert SCHEDULES is OPTIM_SCHEDULES


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_a_task_class_is_its_declaration(kind):
    spec, task = TASKS.spec(kind), TASKS[kind]
    assert issubclass(task, spec) and issubclass(spec, TaskSpec) and spec.kind == task.kind == kind
    assert (task.Data, task.model_defaults, task.model_kind) == (spec.Data, spec.model_defaults, spec.model_kind)
    assert (task.summary, task.description, task.examples) == (spec.summary, spec.description, spec.examples)
    assert task.summary and task.examples.strip()
    assert task.model_settings() == spec.model_settings() and task.data_keys() == spec.data_keys()


def test_the_registry_describes_tasks_without_importing_them():
    """A fresh interpreter: listing and describing every task imports no task module and no torch;
    looking a task up imports it."""
    child = """
import sys
from rnnkit.tasks import TASKS
from rnnkit.training import TrainingConfig
described = [(kind, TASKS.spec(kind).summary, TASKS.spec(kind).model_settings(), TASKS.spec(kind).Data()) for kind in TASKS]
TrainingConfig().check()
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "torch" or m.startswith("rnnkit.tasks.") and not m.endswith("spec"))
assert not loaded, loaded
assert TASKS["lm"].__module__ == "rnnkit.tasks.language_model" and "torch" in sys.modules
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def test_a_task_registered_by_path_is_imported_when_first_read(tmp_path, monkeypatch):
    module = tmp_path / "toy_task_module.py"
    module.write_text("from rnnkit.tasks.spec import TaskSpec\n\nclass ToyTask(TaskSpec):\n    '''toy\n\n    a toy\n    '''\n    kind = 'toy'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_task_module", raising=False)

    class ToySpec(TaskSpec):
        """A toy task

        one that is not imported until it runs
        """

        kind = "toy"

    registry = TaskRegistry()
    registry.add(ToySpec, "toy_task_module:ToyTask")
    assert list(registry) == ["toy"] and registry.spec("toy").summary == "A toy task"
    assert "toy_task_module" not in sys.modules
    assert registry["toy"].__module__ == "toy_task_module" and registry["toy"] is registry["toy"]


def test_the_old_import_paths_name_the_moved_settings():
    from rnnkit.tasks import ClassificationTask, LanguageModelTask, MusicTask, TaggingTask, TranslationTask
    from rnnkit.tasks.classification import ClassificationDataConfig
    from rnnkit.tasks.language_model import LMDataConfig
    from rnnkit.tasks.music import MusicDataConfig
    from rnnkit.tasks.tagging import TaggingDataConfig
    from rnnkit.tasks.translation import TranslationDataConfig
    from rnnkit.training import TrainingConfig
    from rnnkit.training.config import TrainingConfig as Config
    from rnnkit.training.trainer import TrainingConfig as Reexported

    assert TrainingConfig is Config is Reexported
    pairs = [(LanguageModelTask, LMDataConfig), (TaggingTask, TaggingDataConfig), (ClassificationTask, ClassificationDataConfig),
             (TranslationTask, TranslationDataConfig), (MusicTask, MusicDataConfig)]
    assert all(task.Data is data and TASKS[task.kind] is task for task, data in pairs)


@pytest.mark.parametrize("args, message", [
    (["seq2seq", "--dates", "30", "--date-locales", "xx_YY"], "--date-locales: unknown locale 'xx_YY'"),  # was Babel's traceback
    (["seq2seq", "--dates", "30", "--date-locales", "en-US"], "--date-locales: unknown locale 'en-US'"),
    (["seq2seq", "--source", "{text}", "--target", "{text2}", "--date-locales", "de_DE"], "--date-locales are the date task's"),
    (["tagger", "{conll}", "--char-hidden-size", "0", "--char-embedding-size", "10"], "--char-hidden-size 0 reads no characters"),
    (["lm", "{text}", "--config", "{twice}"], "'hidden-size' and 'hidden_size' name one setting, given twice"),
], ids=["unknown-locale", "hyphenated-locale", "locales-without-dates", "characters-unread", "config-key-twice"])
def test_settings_that_cannot_work_or_do_nothing_are_one_line_before_a_run_exists(tmp_path, capsys, args, message):
    pytest.importorskip("babel")
    from rnnkit.cli import main

    files = {"{text}": tmp_path / "a.txt", "{text2}": tmp_path / "b.txt", "{conll}": tmp_path / "t.conll", "{twice}": tmp_path / "c.toml"}
    files["{text}"].write_text("ein mann\nzwei hunde\n" * 10)
    files["{text2}"].write_text("a man\ntwo dogs\n" * 10)
    files["{conll}"].write_text("Anna B-PER\nwent O\n\nBob B-PER\n")
    files["{twice}"].write_text("hidden-size = 12\nhidden_size = 14\n")
    run = tmp_path / "run"
    code = main(["train", *[str(files.get(a, a)) for a in args], "--max-steps", "1", "--hidden-size", "4", "--no-progress", "--run", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not run.exists(), err
