"""Run directories as ``rnnkit.runs`` handles them before any training: configuration files, the
split of one flat configuration into data, model and training settings, the choice of a free run
directory, one training process per directory. (Starting, resuming and opening runs are exercised
end to end in test_trainer.py and the task tests.)"""

from __future__ import annotations

import json
import re
import pytest
import torch

from rnnkit.errors import DataError, UsageError
from rnnkit.files import CheckpointError, RunDir
from rnnkit.runs import _locked, free_run_path, read_config_file, split_config


def test_toml_and_json_config_files_read_alike_with_dashes_as_underscores(tmp_path):
    toml = tmp_path / "settings.toml"
    toml.write_text('level = "word"\nhidden-size = 64\nhead_sizes = [32, 16]\n', encoding="utf-8")
    json_file = tmp_path / "settings.json"
    json_file.write_text('{"level": "word", "hidden-size": 64, "head_sizes": [32, 16]}', encoding="utf-8")
    expected = {"level": "word", "hidden_size": 64, "head_sizes": [32, 16]}
    assert read_config_file(toml) == expected
    assert read_config_file(json_file) == expected


@pytest.mark.parametrize("name, text, message", [
    ("bad.toml", "level = \n", r"bad\.toml: not valid TOML"),
    ("bad.json", "{\"level\": ", r"bad\.json: not valid JSON"),
    ("list.json", "[1, 2]", r"list\.json: expected a table of settings"),
    ("twice.json", '{"epochs": 1, "hidden_size": 8, "epochs": 2}', r"twice\.json: not valid JSON: the key 'epochs' is given twice"),  # was: the last won
    ("twice.toml", "epochs = 1\nepochs = 2\n", r"twice\.toml: not valid TOML"),  # as TOML's own rule says
    ("upper.JSON", '{"epochs": 1, "epochs": 2}', r"upper\.JSON: not valid JSON: the key 'epochs'"),  # read as JSON, not as TOML
    ("deep.json", "[" * 100000 + "]" * 100000, r"deep\.json: not readable JSON: nested too deeply"),  # was a RecursionError traceback
    ("deep.toml", "lr = " + "[" * 100000 + "]" * 100000 + "\n", r"deep\.toml: not readable TOML: nested too deeply"),
    ("nul.toml", 'word_vectors = "wv\\u0000.vec"\n', r"nul\.toml: word_vectors: holds a NUL character"),  # was open()'s ValueError
    ("surrogate.json", '{"valid": ["v\\ud800.tsv"]}', r"surrogate\.json: valid: holds a NUL character or a lone surrogate"),
])  # fmt: skip
def test_a_config_file_that_is_no_table_of_settings_is_named_in_one_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message) as error:
        read_config_file(tmp_path / name)
    assert "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="absent.toml: no such config file"):
        read_config_file(tmp_path / "absent.toml")


def test_a_runs_config_json_and_json_nulls_read_as_users_mean_them(tmp_path):
    """``--config RUN/config.json`` dumped a dict in its error ("split: expected a number, got {...}");
    ``{"eval_every": null}``, as a run's own config.json writes a setting that is off, was refused."""
    (tmp_path / "nulls.json").write_text('{"eval_every": null, "max_steps": null, "hidden_size": 8}')
    assert read_config_file(tmp_path / "nulls.json") == {"hidden_size": 8}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"task": "lm", "data": {}, "model": {}, "training": {}, "split": {"lines": {"train": 3}}}')
    with pytest.raises(UsageError, match=r"a run's config.json .* not a settings file; continue that run with rnnkit train lm --resume") as error:
        read_config_file(run / "config.json")
    assert "lines" not in str(error.value)


def test_an_unknown_setting_in_a_config_file_gets_the_nearest_known_one():
    with pytest.raises(UsageError, match=r"unknown setting 'hidden_sise' for task 'lm'; did you mean 'hidden_size'\?"):
        split_config("lm", {"hidden_sise": 3}, "c.json")


def test_one_flat_configuration_is_split_by_who_takes_each_setting():
    data, model, training = split_config("lm", {"level": "word", "hidden_size": 32, "peepholes": True, "lr": 0.01, "epochs": 2})
    assert data == {"level": "word"}
    assert model == {"hidden_size": 32, "peepholes": True}  # a cell setting goes with the model's
    assert training == {"lr": 0.01, "epochs": 2}
    with pytest.raises(UsageError, match=r"^settings\.toml: unknown setting 'crf' for task 'lm'$"):
        split_config("lm", {"crf": True}, source="settings.toml")  # a tagger's setting, not a language model's


def test_a_new_run_takes_the_first_name_that_holds_no_run(tmp_path):
    base = tmp_path / "names-char-lstm"
    assert free_run_path(base) == base  # absent
    base.mkdir()
    assert free_run_path(base) == base  # empty: nothing to lose
    (base / "config.json").write_text("{}")
    (tmp_path / "names-char-lstm-2").mkdir()
    (tmp_path / "names-char-lstm-2" / "config.json").write_text("{}")
    assert free_run_path(base) == tmp_path / "names-char-lstm-3"


def test_one_training_process_per_run_directory(tmp_path):
    run = RunDir(tmp_path / "run")
    with _locked(run):
        # a second lock on the same directory (another open file, as another process would hold)
        with pytest.raises(UsageError, match=r"run: another rnnkit process is training in this run directory"):
            with _locked(run):
                pass
    with _locked(run):  # released when the first one ended
        pass


def test_a_second_fresh_run_in_a_directory_being_trained_in_is_told_so(tmp_path):
    """Two ``train --run R`` at once: the second saw the first one's temporary files and called R "a
    folder that is not an rnnkit run", naming the other process's ``.vocab.json.PID.tmp``."""
    from rnnkit.runs import start

    names = tmp_path / "names.txt"
    names.write_text("anna\nbob\ncarla\n" * 8)
    run = RunDir(tmp_path / "run")
    with _locked(run):
        (run.path / ".vocab.json.12345-abcdefgh.tmp").write_text("{")  # what the first one is writing
        with pytest.raises(UsageError, match=r"run: another rnnkit process is training in this run directory$"):
            start("lm", {"train": [str(names)], "hidden_size": 4, "max_steps": 1, "progress": False}, run.path)


def test_a_run_inside_another_run_is_refused(tmp_path):
    """``--run OLD/checkpoints/x`` was accepted: deleting or resuming OLD would take the new run with it."""
    from rnnkit.runs import start

    names = tmp_path / "names.txt"
    names.write_text("anna\nbob\ncarla\n" * 20)
    tiny = {"train": [str(names)], "hidden_size": 8, "embedding_size": 8, "max_steps": 2, "progress": False}
    start("lm", dict(tiny), tmp_path / "outer")
    with pytest.raises(UsageError, match=r"outer/checkpoints/x: inside the run .*outer; give --run a folder outside any run"):
        start("lm", dict(tiny), tmp_path / "outer" / "checkpoints" / "x")
    assert not (tmp_path / "outer" / "checkpoints" / "x").exists()


def test_a_resume_refuses_validation_or_test_files_that_changed(tmp_path, monkeypatch):
    """Only the training data was fingerprinted: a resume after --valid or --test changed went on,
    comparing the best score across two validation sets and testing on another file."""
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.txt").write_text("\n".join(["anna", "bob", "carla", "dave"] * 10) + "\n")
    (tmp_path / "v.txt").write_text("emma\nfred\n")
    (tmp_path / "t.txt").write_text("gina\n")
    small = {"hidden_size": 4, "embedding_size": 3, "progress": False, "save_every_minutes": None, "epochs": 2}
    start("lm", {"train": ["train.txt"], "valid": "v.txt", "test": "t.txt", "stop_at_step": 3, **small}, "run")
    (tmp_path / "v.txt").write_text("x y z\n")
    with pytest.raises(DataError, match=r"held-out data changed since the run started \(--valid v.txt\)"):
        resume("run", {"progress": False})
    (tmp_path / "v.txt").write_text("emma\nfred\n")
    assert resume("run", {"progress": False})[1]["finished"]


def test_a_model_too_large_for_memory_is_refused_before_any_weight_is_allocated(tmp_path):
    """``--hidden-size 100000000`` (extra zeros) was a traceback from the allocator ("you tried to
    allocate 160000102400000000 bytes"), and ``--embedding-size 100000000`` swapped for minutes: the
    weights are counted on the meta device first, and more than memory holds is one line."""
    from rnnkit.models.registry import check_fits_in_memory
    from rnnkit.runs import start

    config = {"vocab_size": 30, "cell": "lstm", "embedding_size": 8, "hidden_size": 16, "num_layers": 1}
    check_fits_in_memory("lm", config)  # small: nothing said
    weights = 30 * 8 + 4 * 16 * (8 + 16) + 4 * 16 + 16 * 30 + 30  # embedding, the gates W and b, output layer
    with pytest.raises(UsageError, match=rf"the model would have {weights:,} weights \(hidden_size 16, embedding_size 8, num_layers 1\): "
                                         r"training them needs about 0.0 GiB .*, more than the 0.0 GiB this process may use; lower --hidden-size"):
        check_fits_in_memory("lm", config, memory_bytes=1000)
    names = tmp_path / "names.txt"
    names.write_text("anna\nbob\ncarla\n" * 8)
    with pytest.raises(UsageError, match=r"the model would have 40,000,0[\d,]+ weights \(hidden_size 100,000,000"):
        start("lm", {"train": [str(names)], "hidden_size": 100_000_000, "max_steps": 1, "progress": False}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_file_given_as_a_run_is_named_a_file_by_every_verb(tmp_path):
    """``export afile`` and ``serve afile`` said "no such run directory" of a file that is there."""
    from rnnkit.runs import open_run, resume

    (tmp_path / "afile").write_text("hi\n")
    for open_it in (open_run, resume):
        with pytest.raises((UsageError, FileNotFoundError), match=r"afile: not a run directory \(a file\)$"):
            open_it(tmp_path / "afile")


def test_a_refused_run_leaves_no_folder_it_made_not_even_its_parents(tmp_path, monkeypatch):
    """``--gradual-unfreezing`` on a language model printed "run directory: ..." and was refused only
    once training began; the run folder went, its new parent folders stayed. Now the model's and the
    schedule's refusals come first, and a failure later removes every folder the run made."""
    from rnnkit.runs import start
    from rnnkit.training import Trainer

    names = tmp_path / "names.txt"
    names.write_text("anna\nbob\ncarla\n" * 8)
    small = {"train": [str(names)], "hidden_size": 4, "max_steps": 1, "progress": False}
    for extra, message in (({"gradual_unfreezing": True}, "a lm model has no layer groups"), ({"schedule_by_time": True}, "needs --time-limit")):
        with pytest.raises(UsageError, match=message):
            start("lm", {**small, **extra}, tmp_path / "new" / "sub" / "run")
        assert not (tmp_path / "new").exists()

    def broken(self):
        raise RuntimeError("a fault during training")

    monkeypatch.setattr(Trainer, "fit", broken)
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        start("lm", small, tmp_path / "kept" / "new" / "run")
    assert list((tmp_path / "kept").iterdir()) == []  # the folder that was there stays, the ones made go


def test_a_held_out_file_that_is_a_training_file_is_said_for_every_task(tmp_path, capsys):
    """Only a language model's corpus said that --valid named a training file; a classifier's or a
    tagger's scores then silently measured training text (a hard link too)."""
    import os

    from rnnkit.runs import start

    reviews = tmp_path / "r.tsv"
    reviews.write_text("pos\ta fine film\nneg\ta dull film\n" * 4)
    os.link(reviews, tmp_path / "same.tsv")
    start("classifier", {"train": [str(reviews)], "valid": str(tmp_path / "same.tsv"), "hidden_size": 4, "max_steps": 1, "progress": False}, tmp_path / "run")
    assert "--valid" in (err := capsys.readouterr().err) and "same.tsv is also a training file" in err


def test_resume_passes_the_recorded_time_limit_and_records_a_new_one(tmp_path, monkeypatch):
    """The time limit is the run's (seconds over all resumes): config.json keeps the last one given."""
    from rnnkit.runs import resume, start
    from rnnkit.training.trainer import Trainer

    (tmp_path / "t.txt").write_text("abc abd\n" * 40)
    run = tmp_path / "run"
    start("lm", {"train": [str(tmp_path / "t.txt")], "hidden_size": 4, "time_limit": 1000, "stop_at_step": 2, "progress": False}, run)
    seen = []
    monkeypatch.setattr(Trainer, "fit", lambda self, resume=False, limit_given=True, accepted=None: seen.append((self.config.time_limit, limit_given)) or accepted() or {})
    resume(run)
    resume(run, {"time_limit": 2000})
    assert seen == [(1000, False), (2000, True)]
    assert json.loads((run / "config.json").read_text())["training"]["time_limit"] == 2000


SMALL = {"hidden_size": 4, "embedding_size": 3, "progress": False, "save_every_minutes": None, "epochs": 2}


def test_the_command_that_started_a_run_continues_it_with_resume_added(tmp_path, monkeypatch):
    """--peepholes and --nonlinearity are recorded inside cell_options and --clip 0 as null, so the
    run's own command with --resume added was refused: "'peepholes' cannot change"."""
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    settings = {"cell": "lstm", "peepholes": True, "clip": 0.0, **SMALL}  # (the command line checks the data settings given again)
    start("lm", {"train": ["n.txt"], **settings, "stop_at_step": 2}, "lstm")
    assert resume("lstm", settings)[1]["finished"]
    settings = {"cell": "rnn", "nonlinearity": "relu", **SMALL}
    start("lm", {"train": ["n.txt"], **settings, "stop_at_step": 2}, "rnn")
    with pytest.raises(UsageError, match="'nonlinearity' cannot change"):
        resume("rnn", {**settings, "nonlinearity": "tanh"})
    assert resume("rnn", settings)[1]["finished"]


@pytest.mark.parametrize("there", [False, True], ids=["new-folder", "empty-folder"])
def test_an_interrupt_before_the_runs_config_is_written_leaves_nothing_in_the_way(tmp_path, monkeypatch, there):
    """Ctrl-C after the vocabularies were saved and before config.json left a folder that neither
    train (a folder that is not a run) nor --resume (config.json missing) would take."""
    from rnnkit.runs import start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    if there:
        (tmp_path / "run").mkdir()
    write_json = RunDir.write_json

    def interrupted(self, name, obj):
        if name == "config.json":
            raise KeyboardInterrupt
        write_json(self, name, obj)

    monkeypatch.setattr(RunDir, "write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        start("lm", {"train": ["n.txt"], **SMALL}, "run")
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name != ".lock"] == [] if there else not (tmp_path / "run").exists()
    monkeypatch.setattr(RunDir, "write_json", write_json)
    assert start("lm", {"train": ["n.txt"], **SMALL}, "run")[1]["finished"]


def test_settings_that_act_on_the_validation_score_are_refused_without_validation_data(tmp_path, monkeypatch):
    """Without validation data --patience never stopped, --schedule plateau never lowered the rate and
    nt-asgd never averaged, while config.json recorded them as if they had shaped the run."""
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    data = {"train": ["n.txt"], "split": [0.0, 0.0], **SMALL}
    for given, shown in (({"patience": 2}, "--patience"), ({"schedule": "plateau"}, "--schedule plateau"), ({"optimizer": "nt-asgd"}, "--optimizer nt-asgd"),
                         ({"eval_every": 3}, "--eval-every")):  # fmt: skip
        with pytest.raises(UsageError, match=f"^{shown} acts on the validation score, and this run has no validation data"):
            start("lm", {**data, **given}, "run")
        assert not (tmp_path / "run").exists()
    start("lm", {**data, "stop_at_step": 2}, "run")
    with pytest.raises(UsageError, match="--patience acts on the validation score"):
        resume("run", {"patience": 3})
    assert start("lm", {**data, "split": [0.2, 0.0], "patience": 2}, "valid")[1]["finished"]  # with a validation split: taken


def test_a_null_clip_in_a_settings_file_is_no_clipping_as_a_runs_config_json_means_it(tmp_path):
    """config.json records --clip 0 as null; a settings file copied from it clipped at the default 1.0."""
    path = tmp_path / "s.json"
    path.write_text('{"clip": null, "patience": null}')
    assert read_config_file(path) == {"clip": 0.0}


def test_a_run_trained_from_standard_input_asks_for_it_again_whatever_the_task(tmp_path, monkeypatch):
    """A translation run trained with --source - looked at its (absent) train setting only: the resume
    read the terminal, waiting for Ctrl-D, instead of saying to pipe the data in again."""
    import io
    import sys

    from rnnkit.runs import resume, start

    class Terminal(io.TextIOWrapper):
        def isatty(self):
            return True

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text("a house\nthe cat\n" * 10)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ein haus\ndie katze\n" * 10)))
    start("seq2seq", {"source": "-", "target": "t.txt", "stop_at_step": 1, **SMALL}, "run")
    monkeypatch.setattr(sys, "stdin", Terminal(io.BytesIO(b"")))
    with pytest.raises(UsageError, match=r"trained from standard input; to resume it, pipe the same data in again"):
        resume("run", {"progress": False})


def test_a_run_stopped_by_a_loss_that_is_not_finite_may_go_on_with_what_its_message_advises(tmp_path, monkeypatch):
    """The message said to try --skip-non-finite or a lower --clip, and --resume refused both: the run
    kept was resumable only into the same NaN at the same step."""
    from rnnkit.runs import resume, start
    from rnnkit.training.trainer import TrainingDiverged

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 30)
    diverging = {"train": ["n.txt"], "cell": "rnn", "nonlinearity": "relu", "lr": 1e4, "clip": 0.0, "optimizer": "sgd",
                 "schedule": "constant", "eval_every": 2, **SMALL}  # fmt: skip
    with pytest.raises(TrainingDiverged):
        start("lm", diverging, "run")
    for change in ({"skip_non_finite": True}, {"clip": 0.5}, {"precision": "fp32"}):
        try:
            resume("run", {**change, "progress": False})
        except TrainingDiverged:
            pass  # taken: the steps after ran, and may diverge again
    assert json.loads((tmp_path / "run" / "config.json").read_text())["training"]["skip_non_finite"] is True


def test_a_run_recorded_with_an_engine_that_cannot_run_here_opens_on_auto_with_a_note(tmp_path, monkeypatch, capsys):
    """A run trained with --engine triton on a GPU could not be sampled, exported or resumed on a CPU:
    the engine was rebuilt as recorded, and no verb takes --engine."""
    from rnnkit.runs import open_run, resume, start

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    start("lm", {"train": ["n.txt"], "stop_at_step": 2, **SMALL}, "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["model"]["engine"] = "triton"
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    for manifest in (tmp_path / "run" / "checkpoints").glob("*/manifest.json"):  # what its checkpoints record it was trained with
        recorded = json.loads(manifest.read_text())
        recorded["settings"]["model"]["engine"] = "triton"
        manifest.write_text(json.dumps(recorded))
    capsys.readouterr()
    _, model, _, _ = open_run("run", device="cpu")
    assert "was trained with --engine triton, which cannot run here (cpu)" in capsys.readouterr().err
    assert resume("run", {"progress": False})[1]["finished"]


def test_a_finished_runs_resume_that_trains_nothing_leaves_its_config_as_it_was(tmp_path, monkeypatch):
    """"nothing to train", and config.json said patience 2 and eval-every 10 all the same: settings the
    run never trained with, which a later --epochs extension then used."""
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    start("lm", {"train": ["n.txt"], **SMALL}, "run")
    before = (tmp_path / "run" / "config.json").read_bytes()
    resume("run", {"patience": 2, "eval_every": 10, "progress": False})
    assert (tmp_path / "run" / "config.json").read_bytes() == before
    # a plain --resume writes nothing: config.json, vocab.json, tokenizer.json and seen.u64 were written again, unchanged
    times = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "run").iterdir()}
    resume("run", {"progress": False})
    assert {path.name: path.stat().st_mtime_ns for path in (tmp_path / "run").iterdir()} == times


@pytest.mark.parametrize("section, key, value", [("data", "batch_size", 8), ("training", "seed", 2), ("model", "dropout", 0.5)])
def test_a_setting_edited_in_config_json_that_a_resume_may_not_change_is_refused_naming_it(tmp_path, monkeypatch, section, key, value):
    """--resume trained on with a config.json edited by hand (another batch size, seed or dropout)
    without a word, where the same change on the command line is refused."""
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    start("lm", {"train": ["n.txt"], **SMALL, "batch_size": 4, "stop_at_step": 2}, "run")
    config_json = tmp_path / "run" / "config.json"
    # the settings a resume may change are the run's to change, there too: given to one (which records them), or edited;
    # and a data path, once the file moved
    resume("run", {"epochs": 3, "log_every": 1, "stop_at_step": 3, "progress": False})
    config = json.loads(config_json.read_text())
    config["training"]["epochs"] = 4
    (tmp_path / "n.txt").rename(tmp_path / "moved.txt")
    config["data"]["train"] = ["moved.txt"]
    config_json.write_text(json.dumps(config))
    resume("run", {"stop_at_step": 4, "progress": False})
    was, config[section][key] = config[section][key], value
    config_json.write_text(json.dumps(config))
    with pytest.raises(DataError, match=rf"^run/config\.json: {key} is {value}, but the checkpoint was trained with {was}: a resume continues the run as it was trained"):
        resume("run", {"progress": False})
    config[section][key] = was
    config_json.write_text(json.dumps(config))
    assert resume("run", {"progress": False})[1]["epochs"] == 4


@pytest.mark.parametrize("section, key, value", [("data", "reverse", True), ("model", "cell", "gru"), ("model", "dropout", 0.5)])
def test_a_reading_verb_refuses_a_config_json_edited_against_its_weights(tmp_path, monkeypatch, section, key, value):
    """sample, score and eval opened a run whose config.json was edited by hand (an LM trained forwards
    said to read reversed text: its samples came out backwards; another cell: a message about weight
    shapes) as if it had been trained so; a data path edited after the file moved is still read."""
    from rnnkit.runs import open_run, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("Anna\nBob\nCarla\nDave\n" * 10)
    start("lm", {"train": ["n.txt"], **SMALL, "stop_at_step": 2}, "run")
    config_json = tmp_path / "run" / "config.json"
    config = json.loads(config_json.read_text())
    config["data"]["train"] = ["moved.txt"]
    config_json.write_text(json.dumps(config))
    open_run("run")
    was, config[section][key] = config[section][key], value
    config_json.write_text(json.dumps(config))
    with pytest.raises(DataError, match=rf"^run/config\.json: {key} is {json.dumps(value)}, but the checkpoint was trained with {json.dumps(was)}: "
                                        "the run's weights are read with the settings they were trained with"):
        open_run("run")


def test_a_refused_resume_leaves_the_runs_recorded_settings_as_they_were(tmp_path, monkeypatch):
    """A resume refused by a damaged training state (a DataError or OSError, not only a UsageError)
    left config.json holding the new --epochs and --max-steps it never trained with."""
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    start("lm", {"train": ["n.txt"], **SMALL}, "run")
    before = (tmp_path / "run" / "config.json").read_bytes()
    (tmp_path / "run" / "metrics.csv").write_bytes(b"\x89\xff")
    with pytest.raises(DataError, match="metrics.csv"):
        resume("run", {"epochs": 3, "progress": False})
    assert (tmp_path / "run" / "config.json").read_bytes() == before


@pytest.mark.parametrize("damage", ["missing", "empty", "a word twice", "one short", "two swapped"])
def test_a_resume_writes_again_a_vocabulary_that_is_missing_or_damaged(tmp_path, monkeypatch, capsys, damage):
    """It finished "successfully" with a run whose vocab.json every verb then refused."""
    from rnnkit.runs import open_run, resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    start("lm", {"train": ["n.txt"], **SMALL}, "run")
    vocab = tmp_path / "run" / "vocab.json"
    before = vocab.read_bytes()
    if damage == "missing":
        vocab.unlink()
    elif damage == "empty":
        vocab.write_bytes(b"")
    elif damage == "a word twice":
        tokens = json.loads(before)["tokens"]
        vocab.write_text(json.dumps({"tokens": [*tokens[:-1], tokens[3]]}))
        with pytest.raises(CheckpointError, match="vocab.json: changed after rnnkit wrote it"):  # against the checkpoint's digest
            open_run("run")
        with pytest.raises(DataError, match="vocab.json: damaged: the token .* is listed twice"):  # and by itself
            RunDir("run").read_vocabulary("vocab.json")
    else:  # readable, but not what the weights were trained with: refused by the verbs, or read with letters swapped
        tokens = json.loads(before)["tokens"]
        vocab.write_text(json.dumps({"tokens": tokens[:-1] if damage == "one short" else [*tokens[:3], tokens[4], tokens[3], *tokens[5:]]}))
    capsys.readouterr()
    resume("run", {"epochs": 3, "progress": False})
    err = capsys.readouterr().err
    assert "vocab.json" in err and "written again from it" in err, err
    assert vocab.read_bytes() == before
    open_run("run")  # every verb opens it again


@pytest.mark.parametrize("text", ["[1, 2]", '"x"'])
def test_a_finished_runs_summary_edited_into_no_table_is_written_again_by_a_resume(tmp_path, monkeypatch, text):
    """summary.get(...) on a list: an AttributeError traceback where a damaged file (not JSON at all)
    was taken as no summary, and written again."""
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    start("lm", {"train": ["n.txt"], **SMALL}, "run")
    (tmp_path / "run" / "summary.json").write_text(text)
    _, summary = resume("run", {"progress": False})
    assert isinstance(json.loads((tmp_path / "run" / "summary.json").read_text()), dict) and summary["finished"] is True


def test_a_resume_that_restates_a_cell_settings_default_is_no_change(tmp_path, monkeypatch):
    """A run trained without --peepholes records no cell setting; its resume with --no-peepholes
    (the default, as the run has it) was refused as a change of peepholes."""
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    start("lm", {"train": ["n.txt"], **SMALL, "cell": "lstm"}, "run")
    resume("run", {"epochs": 3, "peepholes": False, "progress": False})
    with pytest.raises(UsageError, match="'peepholes' cannot change"):
        resume("run", {"epochs": 4, "peepholes": True, "progress": False})


def test_a_seen_file_cut_to_whole_keys_is_named_and_a_resume_writes_it_again(tmp_path, monkeypatch):
    """A seen.u64 cut at a multiple of 8 bytes read without a word: half the training lines then
    sampled as "(novel)". The run records how many distinct lines it holds."""
    from rnnkit.runs import open_run, resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("".join(f"name{i}\n" for i in range(40)))
    start("lm", {"train": ["n.txt"], **SMALL}, "run")
    seen = tmp_path / "run" / "seen.u64"
    whole = seen.read_bytes()
    seen.write_bytes(whole[: len(whole) // 16 * 8])
    with pytest.raises(DataError, match=r"seen\.u64: damaged \([\d,]+ distinct training lines, the run recorded [\d,]+\)"):
        open_run("run")
    resume("run", {"progress": False})
    assert seen.read_bytes() == whole
    open_run("run")


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("model", "engine", "warp", "model engine: must be one of auto, "),  # was taken for an engine that "cannot run here", and trained on
    ("model", "cell", 7, "model cell: must be one of rnn, "),
    ("training", "optimizer", "lion", "optimizer: must be one of"),
    ("data", "level", "bytes", "level: must be one of"),  # resume: a KeyError traceback from the corpus builder
    ("data", "batching", "streams", "batching: must be one of"),  # eval read it silently
    ("data", "reverse", "false", "reverse: must be true or false"),  # the string "false" is true: samples came out reversed
])
def test_a_setting_of_a_runs_config_json_that_is_no_setting_names_that_file(tmp_path, monkeypatch, section, key, value, message):
    """An unknown engine, cell, optimizer or level in config.json (edited by hand, or written by a newer
    rnnkit) read as if the user had typed a bad option, naming no file; an unknown engine was even
    taken for one that cannot run on this device, and the run opened and trained on."""
    from rnnkit.runs import open_run, resume, start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    start("lm", {"train": ["n.txt"], **SMALL}, "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config[section][key] = value
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=rf"^run/config.json: .*{message}"):
        resume("run", {"epochs": 3, "progress": False})
    if section != "training":  # the verbs that open a run
        opened = rf"^run/config.json: .*{message}" if key != "level" else r"^run/config.json: .*level: must be one of"
        with pytest.raises(DataError, match=opened):
            open_run("run")


def test_a_runs_labels_reordered_by_hand_are_named_not_used(tmp_path, monkeypatch):
    """labels.json with two labels swapped (same names, same count) passed every check: classify
    gave each probability under the wrong label, eval scored against the swapped names."""
    from rnnkit.runs import open_run, start

    monkeypatch.chdir(tmp_path)
    lines = [f"__label__{label}\t{text}" for label, text in (("good", "a fine film"), ("bad", "a dull film"), ("meh", "a film"))] * 10
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    start("classifier", {"train": ["c.txt"], "valid": "c.txt", **SMALL}, "run")
    open_run("run")
    labels = json.loads((tmp_path / "run" / "labels.json").read_text())
    labels["labels"][0], labels["labels"][-1] = labels["labels"][-1], labels["labels"][0]
    (tmp_path / "run" / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(CheckpointError, match=r"^run/labels.json: changed after rnnkit wrote it"):  # against the checkpoint's digest
        open_run("run")
    import shutil

    shutil.rmtree(tmp_path / "run" / "checkpoints")  # the run copied without its checkpoints: against config.json
    with pytest.raises(DataError, match=r"^run/labels.json: its labels differ from those config.json records"):
        open_run("run")


def test_options_of_a_mode_the_data_is_not_in_are_refused_not_recorded(tmp_path, monkeypatch):
    """--no-phrases of a fastText file (phrases are a treebank's) and --singleton-unk with a
    --min-count that makes every word seen once <UNK> already did nothing and were recorded."""
    from rnnkit.runs import start

    tagger = {k: v for k, v in SMALL.items() if k != "embedding_size"}
    monkeypatch.chdir(tmp_path)
    lines = [f"__label__{label}\t{text}" for label, text in (("good", "a fine film"), ("bad", "a dull film"))] * 10
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=r"^--no-phrases chooses the phrases of PTB trees, and c.txt is a fasttext file"):
        start("classifier", {"train": ["c.txt"], "phrases": False, **SMALL}, "run")
    (tmp_path / "t.conll").write_text("EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n\n" * 5)
    with pytest.raises(UsageError, match=r"^--singleton-unk replaces words seen once, which --min-count 2 makes <UNK> already"):
        start("tagger", {"train": ["t.conll"], "scheme": "iob2", "min_count": 2, "singleton_unk": 0.3, **tagger}, "run")
    assert not (tmp_path / "run").exists()
    start("tagger", {"train": ["t.conll"], "scheme": "iob2", "min_count": 2, **tagger}, "run")  # not given: nothing to refuse


def test_training_data_of_one_repeated_example_is_said_or_refused(tmp_path, monkeypatch, capsys):
    """Every line the same (a language model: said) or every text the same (a classifier, whatever
    its labels: refused, as a classifier of one label is) trained without a word."""
    from rnnkit.runs import start

    monkeypatch.chdir(tmp_path)
    (tmp_path / "same.txt").write_text("a b c\n" * 10)
    start("lm", {"train": ["same.txt"], **SMALL}, "lm")
    assert re.search(r"same.txt: all \d+ training lines are the same line", capsys.readouterr().err)
    (tmp_path / "c.txt").write_text("__label__pos\tsame text\n__label__neg\tsame text\n" * 10)
    with pytest.raises(DataError, match=r"^c.txt: all 20 training examples have the same text 'same text'"):
        start("classifier", {"train": ["c.txt"], **SMALL}, "run")
    assert not (tmp_path / "run").exists()


def test_a_device_this_machine_lacks_is_one_line_from_python_too(tmp_path, monkeypatch):
    """open_run(..., device="cuda") on a CPU build was an AssertionError; "tpu" torch's paragraph."""
    from rnnkit.runs import open_run, start
    from rnnkit.training.trainer import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match=r"device: 'tpu': rnnkit runs on cpu, cuda or mps|device: expected auto, cpu"):
        resolve_device("tpu")
    with pytest.raises(UsageError, match=r"device: 'cuda': no CUDA device on this machine"):
        resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("auto") == torch.device("cpu")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    start("lm", {"train": ["n.txt"], **SMALL}, "run")
    with pytest.raises(UsageError, match=r"no CUDA device"):
        open_run("run", device="cuda")


def test_a_failure_before_the_first_checkpoint_leaves_an_existing_empty_folder_empty(tmp_path, monkeypatch):
    """A --run folder that existed empty kept config.json and the vocabularies after a full disk
    stopped the run before its first checkpoint: half a run in the user's folder."""
    import errno

    from rnnkit.runs import start
    from rnnkit.training import trainer as trainer_module

    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    (tmp_path / "run").mkdir()

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "seen.u64"))

    monkeypatch.setattr(trainer_module.Trainer, "fit", full)
    with pytest.raises(OSError, match="No space left"):
        start("lm", {"train": ["n.txt"], **SMALL}, "run")
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name != ".lock"] == []
