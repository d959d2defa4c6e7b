"""The trainer's contract: a non-finite loss stops training at its step (or is skipped on request)
with the last finite weights kept and strict JSON written; resume semantics a user can predict
(a finished run extended trains the new epochs, metrics rows never doubled, only some settings may
change); every check of the data and the options before the run directory exists; a run killed
before its first checkpoint can be resumed from step 0 or started over; damaged files named."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from rnnkit.errors import DataError, UsageError
from rnnkit.training import RunDir, Trainer, TrainingConfig
from rnnkit.training.checkpoint import CheckpointError
from rnnkit.training.trainer import TrainingDiverged
from regression_task import Regression


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch):
    monkeypatch.setenv("RNNKIT_TEST_NO_FSYNC", "1")  # a test's files need not reach the disk


def fit(run: Path, resume: bool = False, task=None, **settings):
    torch.manual_seed(0)
    config = TrainingConfig(**{"lr": 0.05, "optimizer": "sgd", "schedule": "constant", "eval_every": 2, "log_every": 1, "progress": False, **settings})
    return Trainer(task or Regression(), nn.Linear(2, 1), config, RunDir(run)).fit(resume=resume)


def strict_json(path: Path):
    return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path.name}: bare {c}"))


def metric_keys(run: Path) -> list[tuple[str, str]]:
    return [(row["step"], row["split"]) for row in csv.DictReader(open(run / "metrics.csv"))]


# -- non-finite losses -------------------------------------------------------------------------------------
def test_a_nan_loss_stops_training_at_its_step_and_keeps_the_finite_weights(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"^step 5: the training loss is nan.*last checkpoint \(step 4\)"):
        fit(run, task=Regression(nan_at={5}), epochs=2)
    summary = strict_json(run / "summary.json")
    assert summary["finished"] is False and "step 5" in summary["stopped"]
    for name in ("best", "last"):
        assert all(torch.isfinite(t).all() for t in load_file(run / f"{name}.safetensors").values())
    assert max(int(step) for step, _ in metric_keys(run)) == 4  # the NaN step is in no row


def test_a_nan_loss_is_skipped_on_request(tmp_path):
    summary = fit(tmp_path / "run", task=Regression(nan_at={5}), epochs=2, skip_non_finite=True)
    assert summary["finished"] and summary["steps"] == 12 and summary["skipped_steps"] == 1
    assert all(torch.isfinite(t).all() for t in load_file(tmp_path / "run" / "last.safetensors").values())


def test_a_loss_that_is_nan_step_after_step_stops_even_when_skipping(tmp_path):
    with pytest.raises(TrainingDiverged, match="in a row"):
        fit(tmp_path / "run", task=Regression(nan_at=set(range(3, 40))), epochs=6, skip_non_finite=True)


def test_the_steps_after_the_last_log_row_get_their_row_when_training_stops_between_rows(tmp_path):
    run = tmp_path / "run"
    fit(run, epochs=2, log_every=100, eval_every=0, time_limit=1e-9)  # stops after step 1, far before step 100
    assert ("1", "train") in metric_keys(run)
    fit(tmp_path / "full", epochs=2, log_every=5, eval_every=0)  # 12 steps: rows at 5, 10 and the last
    assert [step for step, split in metric_keys(tmp_path / "full") if split == "train"] == ["5", "10", "12"]
    # the stop's row is provisional: a resume drops it, and its rows then equal the uninterrupted run's
    fit(tmp_path / "cut", epochs=2, log_every=5, eval_every=0, stop_at_step=7)
    assert [step for step, split in metric_keys(tmp_path / "cut") if split == "train"] == ["5", "7"]
    fit(tmp_path / "cut", resume=True, epochs=2, log_every=5, eval_every=0)
    losses = [[(r["step"], r["loss"]) for r in csv.DictReader(open(run / "metrics.csv")) if r["split"] == "train"] for run in (tmp_path / "full", tmp_path / "cut")]
    assert losses[0] == losses[1]


def test_every_metrics_row_names_the_epoch_its_step_belongs_to(tmp_path):
    # 6 steps an epoch; evaluations every 2 steps fall mid-epoch and at each epoch's end, as training rows do
    fit(tmp_path / "run", epochs=2, log_every=1, eval_every=2)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert {row["split"] for row in rows} == {"train", "valid"}
    assert [(row["split"], int(row["epoch"])) for row in rows] == [(row["split"], math.ceil(int(row["step"]) / 6)) for row in rows]


# -- resume semantics ------------------------------------------------------------------------------------------
def test_a_finished_run_extended_trains_the_new_epochs_without_doubled_rows(tmp_path):
    run = tmp_path / "run"
    assert fit(run, epochs=2)["steps"] == 12
    before = (run / "metrics.csv").read_bytes()
    assert fit(run, resume=True, epochs=2)["steps"] == 12  # nothing to do: nothing written
    assert (run / "metrics.csv").read_bytes() == before
    summary = fit(run, resume=True, epochs=4)
    assert summary["finished"] and summary["steps"] == 24 and summary["epochs"] == 4
    keys = metric_keys(run)
    assert not [key for key, n in Counter(keys).items() if n > 1]
    # the same as a run planned for 4 epochs? no: the schedule's horizon changed; but every step ran once
    assert [int(step) for step, split in keys if split == "train"] == list(range(1, 25))


def test_resume_equals_an_uninterrupted_run(tmp_path):
    fit(tmp_path / "whole", epochs=3)
    fit(tmp_path / "parts", epochs=3, stop_at_step=7)
    fit(tmp_path / "parts", resume=True, epochs=3)
    for name in ("last", "best"):
        a, b = load_file(tmp_path / "whole" / f"{name}.safetensors"), load_file(tmp_path / "parts" / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert metric_keys(tmp_path / "whole") == metric_keys(tmp_path / "parts")


class InterruptedEvaluation(Regression):
    """Ctrl-C (or SIGTERM, which the trainer takes alike) in the middle of the ``interrupt_at``-th
    validation, once."""

    def __init__(self, interrupt_at: int):
        super().__init__()
        self.evaluations, self.interrupt_at = 0, interrupt_at

    def evaluate(self, model, split, device):
        self.evaluations += 1
        if self.evaluations == self.interrupt_at:
            raise KeyboardInterrupt
        return super().evaluate(model, split, device)


@pytest.mark.parametrize("eval_every", [2, 0])  # every 2 steps; at each epoch's end
def test_an_evaluation_cut_short_by_an_interrupt_is_run_by_the_resume(tmp_path, eval_every):
    """Ctrl-C or SIGTERM during a validation saved the run past it: the resume never ran it, so its
    metrics row was missing for good and the best weights, patience and results could differ."""
    fit(tmp_path / "whole", epochs=3, eval_every=eval_every)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "parts", epochs=3, eval_every=eval_every, task=InterruptedEvaluation(2))
    fit(tmp_path / "parts", resume=True, epochs=3, eval_every=eval_every)
    for name in ("last", "best"):
        a, b = load_file(tmp_path / "whole" / f"{name}.safetensors"), load_file(tmp_path / "parts" / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert metric_keys(tmp_path / "whole") == metric_keys(tmp_path / "parts")
    whole, parts = strict_json(tmp_path / "whole" / "summary.json"), strict_json(tmp_path / "parts" / "summary.json")
    assert whole["best_valid_criterion"] == parts["best_valid_criterion"]


def test_training_settings_are_checked_for_range_and_finiteness():
    for bad in ({"lr": math.nan}, {"lr": 0.0}, {"clip": math.inf}, {"epochs": 0}, {"epochs": 2.5}, {"ema": 1.0},
                {"patience": True}, {"save_every_minutes": -1.0}, {"optimizer": "adagrad"}, {"keep_checkpoints": 0}):  # fmt: skip
        with pytest.raises(UsageError, match=next(iter(bad))):
            TrainingConfig(**bad).check()
    TrainingConfig().check()


def test_numeric_options_are_refused_on_the_command_line(capsys):
    from rnnkit.cli import main

    for option, value in (("--lr", "nan"), ("--dropout", "1.5"), ("--epochs", "0"), ("--clip", "inf"), ("--save-every-minutes", "-1")):
        with pytest.raises(SystemExit) as exit:
            main(["train", "lm", "x.txt", option, value])
        assert exit.value.code == 2
        assert option in capsys.readouterr().err


# -- runs: checks first, and what a failed or killed run leaves ---------------------------------------------
def names(path: Path) -> Path:
    path.write_text("\n".join(["anna", "bob", "carla", "dora", "emil", "fritz", "gina", "hugo", "ida", "jan"] * 3) + "\n")
    return path


LM = {"hidden_size": 8, "embedding_size": 4, "epochs": 1, "batch_size": 8, "progress": False, "seed": 1}


def test_data_errors_surface_before_the_run_directory_exists(tmp_path):
    from rnnkit.runs import start

    (tmp_path / "a.src").write_text("ein langer satz hier\nnoch ein langer satz\n")
    (tmp_path / "a.tgt").write_text("a long sentence here\nanother long sentence\n")
    run = tmp_path / "s2s"
    with pytest.raises(DataError, match="--max-length 2"):
        start("seq2seq", {"source": str(tmp_path / "a.src"), "target": str(tmp_path / "a.tgt"), "max_length": 2, "hidden_size": 8, "progress": False}, run)
    assert not run.exists()
    with pytest.raises(UsageError, match="lr"):
        start("lm", {"train": [str(names(tmp_path / "n.txt"))], **LM, "lr": -1.0}, tmp_path / "lm")
    assert not (tmp_path / "lm").exists()


@pytest.mark.parametrize("engine", ["auto", "reference"])
def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0_or_starts_over(tmp_path, engine):
    """Resumed from step 0, the run draws the same initial weights as it first did: nothing that a
    resume does before them (finding the engine, which may build a cell) may use the random state."""
    from rnnkit.runs import resume, start

    data = names(tmp_path / "n.txt")
    start("lm", {"train": [str(data)], **LM, "engine": engine, "dropout": 0.0}, tmp_path / "whole")
    killed = tmp_path / "killed"
    shutil.copytree(tmp_path / "whole", killed)
    for name in ("checkpoints", "last.safetensors", "best.safetensors", "training_state.pt", "summary.json"):
        shutil.rmtree(killed / name) if (killed / name).is_dir() else (killed / name).unlink()  # as before the first checkpoint
    resume(killed, {"progress": False})
    a, b = load_file(tmp_path / "whole" / "last.safetensors"), load_file(killed / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert metric_keys(tmp_path / "whole") == metric_keys(killed)
    for name in ("checkpoints", "last.safetensors", "best.safetensors", "training_state.pt"):
        shutil.rmtree(killed / name) if (killed / name).is_dir() else (killed / name).unlink()
    start("lm", {"train": [str(data)], **LM}, killed)  # the original command may reuse it: it held no weights
    with pytest.raises(UsageError, match="a run is already there"):
        start("lm", {"train": [str(data)], **LM}, killed)  # now it does


def test_a_folder_of_the_users_is_never_taken_for_a_run_to_start_over(tmp_path):
    """Starting over deletes a dead run's files. A folder with a config.json of its own (a project,
    a model folder) and the training text is not a dead run: refused, every file kept; an empty
    folder, or one holding only rnnkit's lock, is a fine --run."""
    from rnnkit.runs import start

    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    data = names(project / "n.txt")
    (project / "config.json").write_text('{"name": "my-app"}')
    (project / "src" / "app.py").write_text("print(1)\n")
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    with pytest.raises(UsageError, match=r"project: a folder that is not an rnnkit run holds 3 entries \(config.json, n.txt, src\); give --run a new or empty folder$"):
        start("lm", {"train": [str(data)], **LM}, project)
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == before
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "metrics.csv").write_text('{"mine": 1}\n')  # a user's file that a run would append to
    with pytest.raises(UsageError, match="not an rnnkit run holds 1 entry \\(metrics.csv\\)"):
        start("lm", {"train": [str(data)], **LM}, tmp_path / "metrics")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".lock").touch()
    assert start("lm", {"train": [str(data)], **LM}, tmp_path / "empty")[1]["finished"]


def test_a_resume_from_another_folder_says_where_the_runs_relative_paths_start(tmp_path, monkeypatch):
    from rnnkit.runs import resume, start

    (tmp_path / "project").mkdir()
    names(tmp_path / "project" / "n.txt")
    monkeypatch.chdir(tmp_path / "project")
    start("lm", {"train": ["n.txt"], **LM, "stop_at_step": 2}, tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=rf"^n.txt: no such file here; the run's data paths are relative to {tmp_path / 'project'}, where its training started: resume from there$"):
        resume(tmp_path / "run", {"progress": False})
    monkeypatch.chdir(tmp_path / "project")
    assert resume(tmp_path / "run", {"progress": False})[1]["finished"]


def test_resume_changes_only_the_settings_it_may_and_records_them(tmp_path):
    from rnnkit.runs import resume, start

    run = tmp_path / "run"
    start("lm", {"train": [str(names(tmp_path / "n.txt"))], **LM}, run)
    with pytest.raises(UsageError, match="'lr' cannot change"):
        resume(run, {"lr": 0.1})
    config = json.loads((run / "config.json").read_text())
    # the run's own values repeated (a script that always passes its model options) change nothing
    resume(run, {"epochs": 2, "progress": False, "hidden_size": config["model"]["hidden_size"], "lr": config["training"]["lr"]})
    assert json.loads((run / "config.json").read_text())["training"]["epochs"] == 2
    assert strict_json(run / "summary.json")["epochs"] == 2


def test_damaged_files_are_named_in_one_line(tmp_path):
    from rnnkit.cli import main
    from rnnkit.runs import open_run, resume, start

    run = tmp_path / "run"
    start("lm", {"train": [str(names(tmp_path / "n.txt"))], **LM}, run)
    for name, action in (("best.safetensors", lambda r: open_run(r)), ("last.safetensors", lambda r: resume(r, {"epochs": 2, "progress": False}))):
        copy = tmp_path / name
        shutil.copytree(run, copy)
        data = (copy / name).read_bytes()
        (copy / name).unlink()
        (copy / name).write_bytes(data[: len(data) // 2])  # cut short by an interrupted copy
        with pytest.raises(CheckpointError, match=rf"{name}: damaged or incomplete"):
            action(copy)
    nan = tmp_path / "nan"
    shutil.copytree(run, nan)
    weights = load_file(nan / "best.safetensors")
    (nan / "best.safetensors").unlink()
    from safetensors.torch import save_file

    save_file({k: torch.full_like(v, math.nan) for k, v in weights.items()}, nan / "best.safetensors")
    # against the checkpoints' manifests first: weights zeroed or edited after training loaded and
    # answered (uniformly) without a word
    with pytest.raises(CheckpointError, match=r"best\.safetensors: changed after rnnkit wrote it: it matches no checkpoint") as refused:
        open_run(nan)
    # its advice works: the command it names (once "rnnkit train --resume", no command) restores the
    # file from the newest checkpoint, though the run is finished and has nothing to train
    assert f"delete it and resume the run (rnnkit train lm --resume --run {nan})" in str(refused.value)
    intact = tmp_path / "intact"
    shutil.copytree(nan, intact)
    (intact / "best.safetensors").unlink()
    assert main(["train", "lm", "--resume", "--run", str(intact), "--no-progress"]) == 0
    assert torch.equal(load_file(intact / "best.safetensors")[next(iter(weights))], weights[next(iter(weights))])
    open_run(intact)
    shutil.rmtree(nan / "checkpoints")  # the weights without their run's checkpoints: checked for what they hold
    with pytest.raises(CheckpointError, match="not finite"):
        open_run(nan)
    (nan / "best.safetensors").unlink()
    save_file({k: (v * 100).long() for k, v in weights.items()}, nan / "best.safetensors")
    with pytest.raises(CheckpointError, match=r"stored as I64, not as floating-point numbers"):
        open_run(nan)  # integers would be cast to floats on loading, silently


def test_a_vocabulary_edited_after_training_is_refused_and_resume_writes_it_again(tmp_path):
    """Two tokens swapped in a finished run's vocab.json made every sample and score wrong without
    a word: the checkpoints record the run files' digests, the verbs check them, and a resume writes
    the file again from the training data."""
    from rnnkit.runs import open_run, resume, start

    run = tmp_path / "run"
    start("lm", {"train": [str(names(tmp_path / "n.txt"))], **LM}, run)
    intact = (run / "vocab.json").read_bytes()
    vocab = json.loads(intact)
    vocab["tokens"][5], vocab["tokens"][6] = vocab["tokens"][6], vocab["tokens"][5]
    (run / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(CheckpointError, match=r"vocab\.json: changed after rnnkit wrote it: not the file the run's weights were trained with"):
        open_run(run)
    from rnnkit.runs import check_pretrained_runs

    with pytest.raises(CheckpointError, match=r"--lm-features .*vocab\.json: changed after rnnkit wrote it"):
        check_pretrained_runs({"lm_features": str(run)})  # a language model another task's --lm-features names
    resume(run, {"progress": False})  # finished: nothing to train, the file written again
    assert (run / "vocab.json").read_bytes() == intact
    open_run(run)


def test_a_vocabulary_edited_while_the_run_trains_is_not_recorded_as_the_runs(tmp_path, monkeypatch):
    """Each checkpoint took its run files' digests from the disk at that moment: a vocab.json
    edited during training was recorded as genuine, every verb then read ids through it, and a
    resume that wrote it again left the run refused for good."""
    from rnnkit.runs import open_run, resume, start
    from rnnkit.training import trainer as trainer_module

    fit = trainer_module.Trainer.fit

    def edited_then_fit(self, *args, **kwargs):  # the user's edit, after the files are written, before any checkpoint
        vocab = json.loads(self.run.file("vocab.json").read_text())
        vocab["tokens"][5], vocab["tokens"][6] = vocab["tokens"][6], vocab["tokens"][5]
        self.run.file("vocab.json").write_text(json.dumps(vocab))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(trainer_module.Trainer, "fit", edited_then_fit)
    run = tmp_path / "run"
    start("lm", {"train": [str(names(tmp_path / "n.txt"))], **LM}, run)
    monkeypatch.setattr(trainer_module.Trainer, "fit", fit)
    with pytest.raises(CheckpointError, match=r"vocab\.json: changed after rnnkit wrote it"):
        open_run(run)
    resume(run, {"progress": False})  # written again from the training data: the run opens
    open_run(run)


@pytest.mark.parametrize("key, value, message", [
    ("cell_options", "x", "cell_options: must be a table"),  # a traceback
    ("cell_options", {"peepholes": "yes"}, "peepholes: must be true or false"),  # read as true
    ("tie_embeddings", "x", "tie_embeddings: must be true or false"),
    ("head_sizes", "16", "head_sizes: must be a list of whole numbers"),  # a message naming no file
    ("hidden_size", 2.5, "hidden_size: must be a whole number >= 1"),
    ("vocab_size", "29", "vocab_size: must be a whole number >= 1"),  # a traceback from the error's own formatting
    ("engine", ["x"], "engine: must be one of auto, "),  # "unhashable type", naming no file
])  # fmt: skip
def test_a_model_setting_edited_in_config_json_is_one_line_naming_it(tmp_path, key, value, message):
    from rnnkit.runs import open_run, resume, start

    run = tmp_path / "run"
    start("lm", {"train": [str(names(tmp_path / "n.txt"))], **LM}, run)
    config = json.loads((run / "config.json").read_text())
    config["model"][key] = value
    (run / "config.json").write_text(json.dumps(config))
    for action in (lambda: open_run(run), lambda: resume(run, {"epochs": 2, "progress": False})):
        with pytest.raises(DataError, match=rf"config\.json: model {message}"):
            action()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_unreadable_weights_are_said_to_be_unreadable_not_damaged(tmp_path):
    from rnnkit.runs import open_run, start

    run = tmp_path / "run"
    start("lm", {"train": [str(names(tmp_path / "n.txt"))], **LM}, run)
    (run / "best.safetensors").chmod(0)
    with pytest.raises(PermissionError):
        open_run(run)


def test_a_config_files_path_that_is_beside_it_says_where_paths_are_read_from(tmp_path, monkeypatch, capsys):
    from rnnkit.cli import main

    (tmp_path / "cfg").mkdir()
    names(tmp_path / "cfg" / "n.txt")
    (tmp_path / "cfg" / "s.json").write_text(json.dumps({"train": "n.txt", "hidden_size": 4}))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "lm", "--config", "cfg/s.json", "--run", "run"]) == 2
    err = capsys.readouterr().err
    assert "cfg/s.json: train 'n.txt': no such file here; a config file's paths are read from the current directory" in err
    assert "give it as 'cfg/n.txt'" in err and not (tmp_path / "run").exists()


def test_config_file_values_are_checked_like_options(tmp_path, capsys):
    from rnnkit.cli import main

    data = names(tmp_path / "n.txt")
    for setting in ({"batch_size": 0}, {"dropout": math.inf}, {"lr": "fast"}, {"embedding_size": 2.5}):
        (tmp_path / "c.json").write_text(json.dumps(setting))
        assert main(["train", "lm", str(data), "--config", str(tmp_path / "c.json"), "--run", str(tmp_path / "run")]) == 2
        error = capsys.readouterr().err
        assert next(iter(setting)) in error and "c.json" in error and "Traceback" not in error
        assert not (tmp_path / "run").exists()


class Pictured(Regression):
    """A task with a test split whose ``save_pictures`` draws one file: the trainer calls it on the
    test evaluation, as the written contract says (no optional lookup)."""

    def has_split(self, split):
        return split in ("valid", "test")

    def save_pictures(self, result, directory, name):
        path = Path(directory) / f"{name}.txt"
        path.write_text(f"loss {result['loss']}\n")
        return {"picture": str(path)}


def test_save_pictures_is_part_of_the_task_contract(tmp_path):
    from rnnkit.tasks import TaskBase
    from rnnkit.training.trainer import Task

    summary = fit(tmp_path / "run", task=Pictured(), max_steps=2)
    assert summary["picture"] == str(tmp_path / "run" / "test.txt") and (tmp_path / "run" / "test.txt").exists()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["picture"] == summary["picture"]
    assert isinstance(Pictured(), Task) and not isinstance(Regression(), Task)  # a task without it breaks the contract
    assert TaskBase.save_pictures(None, {}, tmp_path, "test") == {}  # what TaskBase gives: no pictures


# -- a schedule over the time limit ---------------------------------------------------------------------
class Clocked(Regression):
    """Each training step takes one second of the fake clock ``now`` (the trainer's perf_counter)."""

    def __init__(self, now: list[float]):
        super().__init__()
        self.now = now

    def loss(self, model, batch, device):
        self.now[0] += 1.0
        return super().loss(model, batch, device)


def learning_rates(run: Path) -> dict[int, float]:
    """The learning rate after each logged step, from metrics.csv."""
    return {int(row["step"]): float(row["lr"]) for row in csv.DictReader(open(run / "metrics.csv")) if row["split"] == "train"}


@pytest.mark.parametrize("by_time", [True, False], ids=["by-time", "by-steps"])
def test_schedule_by_time_anneals_a_run_the_clock_stops_and_a_resume_never_raises_the_rate(tmp_path, monkeypatch, by_time):
    now = [0.0]
    monkeypatch.setattr("rnnkit.training.trainer.time.perf_counter", lambda: now[0])
    cosine = lambda share: 0.05 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * share)))  # noqa: E731
    fit(tmp_path, task=Clocked(now), schedule="cosine", epochs=10, time_limit=12, schedule_by_time=by_time)  # 60 steps planned, 12 s
    lr = learning_rates(tmp_path)
    assert max(lr) == 12  # the clock stopped it
    share = (lambda step: step / 12) if by_time else (lambda step: step / 60)
    for step in (3, 6, 12):
        assert lr[step] == pytest.approx(cosine(share(step)), rel=2e-3)  # metrics.csv keeps 3 digits
    if by_time:  # ended at lr/100; going on with a larger limit keeps it there
        fit(tmp_path, resume=True, task=Clocked(now), schedule="cosine", epochs=10, time_limit=18, schedule_by_time=True)
        lr = learning_rates(tmp_path)
        assert max(lr) == 18 and all(lr[step] == pytest.approx(cosine(1.0), rel=2e-3) for step in range(12, 19))


def test_a_resume_whose_time_limit_is_spent_is_refused_not_one_more_step(tmp_path, monkeypatch):
    """A run the clock stopped, resumed with the same (or a smaller) --time-limit, trained one more
    step and tested again each time."""
    now = [0.0]
    monkeypatch.setattr("rnnkit.training.trainer.time.perf_counter", lambda: now[0])
    fit(tmp_path, task=Clocked(now), epochs=10, time_limit=12)
    with open(tmp_path / "metrics.csv", "a") as f:  # a row after the checkpoint (a kill at the test), which a refusal leaves
        f.write("13,1,train,2.00000,7.389,0.05,4,13.0,\n")
    rows = (tmp_path / "metrics.csv").read_bytes()
    for limit in (12, 5):
        with pytest.raises(UsageError, match="--time-limit .* is spent: give a larger --time-limit"):
            fit(tmp_path, resume=True, task=Clocked(now), epochs=10, time_limit=limit)
    assert (tmp_path / "metrics.csv").read_bytes() == rows
    assert fit(tmp_path, resume=True, task=Clocked(now), epochs=10, time_limit=14)["steps"] == 14


class ClockedInterruptedEvaluation(Clocked):
    """``Clocked``, with Ctrl-C in the middle of the ``interrupt_at``-th validation, once."""

    def __init__(self, now: list[float], interrupt_at: int):
        super().__init__(now)
        self.evaluations, self.interrupt_at = 0, interrupt_at

    def evaluate(self, model, split, device):
        self.evaluations += 1 if split == "valid" else 0
        if split == "valid" and self.evaluations == self.interrupt_at:
            raise KeyboardInterrupt
        return super().evaluate(model, split, device)


def test_a_resume_finishes_the_time_limits_validation_an_interrupt_cut_short_and_trains_no_step(tmp_path, monkeypatch):
    """Ctrl-C during the validation at the time limit: the resume with the same --time-limit was
    refused as spent, and no other limit could end the run as the uninterrupted one ended."""
    now = [0.0]
    monkeypatch.setattr("rnnkit.training.trainer.time.perf_counter", lambda: now[0])
    fit(tmp_path / "whole", task=Clocked(now), epochs=10, time_limit=12)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "parts", task=ClockedInterruptedEvaluation(now, interrupt_at=6), epochs=10, time_limit=12)  # at step 12
    summary = fit(tmp_path / "parts", resume=True, task=Clocked(now), epochs=10, time_limit=12)
    assert summary["steps"] == 12 and metric_keys(tmp_path / "whole") == metric_keys(tmp_path / "parts")
    whole = strict_json(tmp_path / "whole" / "summary.json")
    assert summary["best_valid_criterion"] == whole["best_valid_criterion"]
    a, b = load_file(tmp_path / "whole" / "last.safetensors"), load_file(tmp_path / "parts" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resume_keeps_the_runs_time_limit_until_it_is_spent_then_trains_on(tmp_path, monkeypatch, capsys):
    """A run killed before its --time-limit, resumed without the option, trained to the end of its
    epochs (hours past the limit it was given); kept, it ends where the uninterrupted run ended."""
    now = [0.0]
    monkeypatch.setattr("rnnkit.training.trainer.time.perf_counter", lambda: now[0])
    fit(tmp_path / "whole", task=Clocked(now), epochs=10, time_limit=12)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "parts", task=ClockedInterruptedEvaluation(now, interrupt_at=3), epochs=10, time_limit=12)  # at step 6
    torch.manual_seed(0)
    config = TrainingConfig(lr=0.05, optimizer="sgd", schedule="constant", eval_every=2, log_every=1, progress=False, epochs=10, time_limit=12)
    summary = Trainer(Clocked(now), nn.Linear(2, 1), config, RunDir(tmp_path / "parts")).fit(resume=True, limit_given=False)
    assert summary["steps"] == 12 and metric_keys(tmp_path / "whole") == metric_keys(tmp_path / "parts")
    (tmp_path / "parts" / "config.json").write_text(json.dumps({"training": {"time_limit": 12}}))
    config = TrainingConfig(lr=0.05, optimizer="sgd", schedule="constant", eval_every=2, log_every=1, progress=False, epochs=10, time_limit=12)
    summary = Trainer(Clocked(now), nn.Linear(2, 1), config, RunDir(tmp_path / "parts")).fit(resume=True, limit_given=False)
    assert summary["steps"] == 60 and summary["finished"]  # spent: a resume meant to train on goes to the configured end
    assert "the run's --time-limit 12 s is spent (12 s trained): it trains on" in capsys.readouterr().err
    # and the run has no limit any more: an interrupt of that training, resumed, does not stop at the old one again
    assert json.loads((tmp_path / "parts" / "config.json").read_text())["training"]["time_limit"] is None


class Noisy(Regression):
    """Each step's loss scaled by a random draw (as dropout draws its masks)."""

    def loss(self, model, batch, device):
        loss, count = super().loss(model, batch, device)
        return loss * (1 + torch.rand(())), count  # the global generator, as dropout's masks


def test_ctrl_c_inside_a_step_saves_a_state_the_uninterrupted_run_passes_through(tmp_path, monkeypatch):
    """An interrupt after the optimizer's update but before the step was counted was saved as the
    step before: the resume took the step again, and ended elsewhere than the uninterrupted run."""
    import os
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever an earlier test left: Ctrl-C as Python's own
    fit(tmp_path / "whole", task=Noisy(), epochs=3)
    update, calls = torch.optim.SGD.step, []

    def update_then_interrupt(self, *args, **kwargs):
        result = update(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 8:  # Python runs the handler at the next instruction: inside the step, after the update
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(torch.optim.SGD, "step", update_then_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(tmp_path / "parts", task=Noisy(), epochs=3)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.setattr(torch.optim.SGD, "step", update)
    fit(tmp_path / "parts", resume=True, task=Noisy(), epochs=3)
    a, b = load_file(tmp_path / "whole" / "last.safetensors"), load_file(tmp_path / "parts" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert metric_keys(tmp_path / "whole") == metric_keys(tmp_path / "parts")


def test_a_window_a_resume_continues_is_timed_by_the_runs_own_seconds(tmp_path, monkeypatch):
    """The rate of a training window was its examples over the wall time since the process started:
    a resume mid-window (or after an interrupted test) logged millions of tokens/s."""
    now = [0.0]
    monkeypatch.setattr("rnnkit.training.trainer.time.perf_counter", lambda: now[0])
    fit(tmp_path, task=Clocked(now), epochs=2, log_every=4, stop_at_step=6)  # one second a step; stopped mid-window
    now[0] += 1000.0  # the time between the two processes is no training
    fit(tmp_path, resume=True, task=Clocked(now), epochs=2, log_every=4)
    rates = {row["tokens_per_s"] for row in csv.DictReader(open(tmp_path / "metrics.csv")) if row["split"] == "train"}
    assert rates == {"4"}, rates  # 4 examples a step, one step a second: every row alike


def test_a_resume_whose_stop_at_step_is_reached_is_refused_not_one_more_step(tmp_path):
    fit(tmp_path, epochs=3, stop_at_step=5)
    for stop in (5, 3):
        with pytest.raises(UsageError, match="at step 5 already; --stop-at-step .* stops at or before it"):
            fit(tmp_path, resume=True, epochs=3, stop_at_step=stop)
    assert fit(tmp_path, resume=True, epochs=3, stop_at_step=6)["steps"] == 6


def test_a_refused_resume_touches_no_file_of_the_run(tmp_path):
    """A resume refused for its --stop-at-step cut metrics.csv back to the checkpoint's rows first (a
    run killed between checkpoints lost the rows after it) and wrote config.json again."""
    from rnnkit.runs import resume, start

    run = tmp_path / "run"
    start("lm", {"train": [str(names(tmp_path / "n.txt"))], **LM, "epochs": 3, "log_every": 1, "stop_at_step": 4}, run)
    with open(run / "metrics.csv", "a") as f:  # a row of the step after the checkpoint, as a run killed there leaves it
        f.write("5,1,train,2.00000,7.389,0.002,100,1.0,\n")
    before = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in run.iterdir() if path.is_file()}
    for overrides in ({"stop_at_step": 4}, {"stop_at_step": 2, "epochs": 4, "log_every": 2}):  # the latter two recorded by a resume that trains
        with pytest.raises(UsageError, match="at step 4 already; --stop-at-step .* stops at or before it"):
            resume(run, {**overrides, "progress": False})
        assert {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in run.iterdir() if path.is_file()} == before


def test_schedule_by_time_is_refused_without_a_time_limit_or_a_schedule_it_shapes(tmp_path):
    with pytest.raises(UsageError, match="needs --time-limit"):
        fit(tmp_path / "a", schedule="cosine", schedule_by_time=True)
    with pytest.raises(UsageError, match="not constant"):
        TrainingConfig(schedule="constant", schedule_by_time=True, time_limit=10).check()


def test_no_progress_bar_frames_in_a_pipe_or_a_log_file(tmp_path, capfd):
    """The bar was drawn whatever stderr was: ``rnnkit train ... 2>&1 | cat`` and log files filled
    with carriage-return frames mixed into the evaluation lines."""
    fit(tmp_path / "run", epochs=1, progress=True)
    assert "\r" not in capfd.readouterr().err  # pytest's stderr is no terminal


def test_a_time_limit_stop_at_an_epochs_last_batch_is_validated_once(tmp_path, monkeypatch):
    """The clock stopped a run on an epoch's last batch, and that step was validated; the resume then
    ended the epoch and validated the same weights again: a second row of the step, and one more
    evaluation without improvement, so that --patience stopped the run early."""
    now = [0.0]
    monkeypatch.setattr("rnnkit.training.trainer.time.perf_counter", lambda: now[0])
    task = lambda: Clocked(now)  # noqa: E731
    fit(tmp_path, task=task(), epochs=3, eval_every=0, time_limit=6)  # 6 batches an epoch: stopped at step 6, its last
    summary = fit(tmp_path, resume=True, task=task(), epochs=3, eval_every=0, time_limit=100, patience=2)
    valid = [int(step) for step, split in metric_keys(tmp_path) if split == "valid"]
    assert valid == [6, 12, 18] and summary["steps"] == 18


def test_a_metrics_file_shorter_than_its_checkpoint_says_is_said_and_never_doubles_rows(tmp_path, capsys):
    """A metrics.csv that lost rows (edited, or a power cut) was trusted: the in-memory count stayed
    at the checkpoint's, later cursors counted rows that were not there, and the next resume kept
    rows written after its checkpoint, which were then written again."""
    run = tmp_path / "run"
    fit(run, epochs=4, stop_at_step=10)
    (run / "metrics.csv").unlink()
    fit(run, resume=True, epochs=4, stop_at_step=17)
    assert "rows are missing from it" in capsys.readouterr().err
    newest = sorted(p for p in (run / "checkpoints").iterdir() if not p.name.startswith("."))[-1]
    shutil.rmtree(newest)  # killed after step 17's row, before its checkpoint: the resume starts at step 16
    for view in ("last.safetensors", "best.safetensors", "training_state.pt"):  # step 17's: the resume restores them from step 16's
        (run / view).unlink()
    fit(run, resume=True, epochs=4)
    keys = metric_keys(run)
    assert not [key for key, n in Counter(keys).items() if n > 1]
    assert [int(step) for step, split in keys if split == "train"] == list(range(11, 25))


def test_a_metrics_row_cut_short_is_dropped_on_resume_not_left_half_written(tmp_path, capsys):
    """A metrics.csv cut in the middle of a row (a power cut while it was appended) kept that half row
    after a resume, followed directly by the new rows; it was even counted as a whole one."""
    run = tmp_path / "run"
    fit(run, epochs=4, stop_at_step=10)
    data = (run / "metrics.csv").read_bytes()
    lines = data.splitlines(keepends=True)
    cut = b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2]  # the last row half written
    (run / "metrics.csv").write_bytes(cut)
    fit(run, resume=True, epochs=4)
    text = (run / "metrics.csv").read_text()
    assert lines[-1][: len(lines[-1]) // 2].decode() + "\n" not in text.replace("\r\n", "\n")  # the fragment is gone
    rows = list(csv.DictReader(io.StringIO(text)))
    assert all(row["split"] and row["loss"] for row in rows)  # every row whole
    keys = metric_keys(run)
    assert not [key for key, n in Counter(keys).items() if n > 1]
    assert "rows are missing from it" in capsys.readouterr().err  # the cut row is one fewer than the checkpoint recorded


@pytest.mark.parametrize(("edit", "message"), [
    (lambda lines: ["stepz" + lines[0][4:], *lines[1:]], r"metrics.csv:1: damaged, not rnnkit's metrics \(its columns are stepz"),
    (lambda lines: [lines[0], "x" + lines[1][lines[1].index(","):], *lines[2:]], r"metrics.csv:2: damaged, not rnnkit's metrics \(step 'x'"),
])
def test_an_edited_metrics_file_is_one_line_naming_it_not_a_traceback(tmp_path, edit, message):
    """A renamed column ended a resume in csv's "dict contains fields not in fieldnames" traceback
    (and left the run's lock file); a step that is no number, in int()'s."""
    run = tmp_path / "run"
    fit(run, epochs=4, stop_at_step=10)
    lines = (run / "metrics.csv").read_text().splitlines(keepends=True)
    (run / "metrics.csv").write_text("".join(edit(lines)))
    with pytest.raises(DataError, match=message):
        fit(run, resume=True, epochs=4)


def test_a_damaged_manifest_is_named_not_the_weights_it_could_not_check(tmp_path):
    """With the newest checkpoint's manifest damaged, the verbs said the untouched best.safetensors
    had been "changed after rnnkit wrote it"."""
    from rnnkit.runs import open_run, start

    run = tmp_path / "run"
    start("lm", {"train": [str(names(tmp_path / "n.txt"))], **LM}, run)
    manifest = sorted((run / "checkpoints").glob("*/manifest.json"))[-1]
    manifest.write_text("garbage")
    with pytest.raises(CheckpointError, match=r"manifest\.json: damaged, so best\.safetensors cannot be checked against it"):
        open_run(run)
