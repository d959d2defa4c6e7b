"""The command line: train -> sample -> score -> eval end to end, config files, resume, and
one-line errors that leave nothing half-written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import os

import pytest
import torch

from rnnkit.cli import main

NAMES = ["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ida", "jon", "kara", "leo", "mona", "ned"] * 4
SMALL_MODEL = ["--cell", "gru", "--embedding-size", "8", "--hidden-size", "16", "--no-progress"]


def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def rnnkit(*args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_sample_score_eval_end_to_end(tmp_path, capsys):
    data = write(tmp_path / "names.txt", NAMES)
    run = tmp_path / "run"
    code, out, err = rnnkit("train", "lm", data, "--run", run, "--epochs", "3", "--sample-every", "5", *SMALL_MODEL, capsys=capsys)
    assert code == 0, err
    assert "summary: finished True" in out and "-- samples at step 5" in err
    for name in ("config.json", "vocab.json", "tokenizer.json", "best.safetensors", "last.safetensors", "training_state.pt", "metrics.csv", "summary.json", "loss_curve.png"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert {k: config["split"]["made_split"][k] for k in ("valid", "test", "seed")} == {"valid": 0.05, "test": 0.05, "seed": 0}
    assert config["model"]["cell"] == "gru" and config["model"]["vocab_size"] > 3

    code, out, _ = rnnkit("sample", run, "--num", "4", "--seed", "3", "--max-length", "12", capsys=capsys)
    assert code == 0 and len(out.strip().splitlines()) == 4
    assert all(line.endswith(("(novel)", "(seen in training data)")) for line in out.strip().splitlines())
    _, again, _ = rnnkit("sample", run, "--num", "4", "--seed", "3", "--max-length", "12", capsys=capsys)
    assert again == out  # fixed seed, same samples

    code, out, _ = rnnkit("score", run, "emma", "zq", "--json", capsys=capsys)
    results = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["text"] for r in results] == ["emma", "zq"]
    emma = results[0]
    assert [t["token"] for t in emma["tokens"]] == ["e", "m", "m", "a", "<EOS>"]
    assert abs(emma["log_prob"] - sum(t["log_prob"] for t in emma["tokens"])) < 1e-9
    assert results[1]["tokens"][1]["unknown"]  # "q" never occurs in the training names: <UNK>
    code, out, _ = rnnkit("score", run, "zq", capsys=capsys)
    assert "not in the vocabulary" in out and "perplexity" in out

    code, out, _ = rnnkit("eval", run, data, "--json", capsys=capsys)
    result = json.loads(out)
    assert result["count"] == sum(len(n) + 1 for n in NAMES) and result["perplexity"] > 1


def test_config_file_and_command_line_precedence(tmp_path, capsys):
    data = write(tmp_path / "names.txt", NAMES)
    (tmp_path / "settings.toml").write_text('cell = "lstm"\nhidden_size = 12\nembedding_size = 6\nmax_steps = 4\nlr = 0.01\n')
    code, _, err = rnnkit("train", "lm", data, "--config", tmp_path / "settings.toml", "--hidden-size", "10", "--run", tmp_path / "run", "--no-progress", capsys=capsys)
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["cell"] == "lstm" and config["model"]["hidden_size"] == 10  # the command line wins
    assert config["training"]["max_steps"] == 4 and config["training"]["lr"] == 0.01
    (tmp_path / "bad.toml").write_text("hiden_size = 3\n")
    code, _, err = rnnkit("train", "lm", data, "--config", tmp_path / "bad.toml", "--run", tmp_path / "run2", capsys=capsys)
    assert code == 2 and f"{tmp_path / 'bad.toml'}: unknown setting 'hiden_size'" in err and not (tmp_path / "run2").exists()
    for line, message in (('lowercase = "false"', "lowercase: expected true or false, got 'false'"),  # a string would be truthy
                          ("peepholes = 1", "peepholes: expected true or false, got 1"),
                          ("valid = 5", "valid: expected a string, got 5"),
                          ('batching = "streams"', "batching: expected one of"),
                          ('cell = "LSTM"', "cell: expected one of rnn, gru, gru-simple, gru-cudnn, lstm, got 'LSTM'")):  # named neither file nor setting
        (tmp_path / "typed.toml").write_text(line + "\n")
        code, _, err = rnnkit("train", "lm", data, "--config", tmp_path / "typed.toml", "--run", tmp_path / "run2", capsys=capsys)
        assert code == 2 and f"typed.toml: {message}" in err and not (tmp_path / "run2").exists(), (line, err)
    (tmp_path / "typed.toml").write_text('hidden_size = "10"\nembedding_size = 6\nmax_steps = 2\nlowercase = true\n')
    code, _, err = rnnkit("train", "lm", data, "--config", tmp_path / "typed.toml", "--run", tmp_path / "run3", "--no-progress", capsys=capsys)
    config = json.loads((tmp_path / "run3" / "config.json").read_text())
    assert code == 0 and config["model"]["hidden_size"] == 10 and config["data"]["lowercase"] is True  # read as the option reads "10"
    (tmp_path / "sections.toml").write_text("[model]\nhidden_size = 3\n")
    code, _, err = rnnkit("train", "lm", data, "--config", tmp_path / "sections.toml", "--run", tmp_path / "run2", capsys=capsys)
    assert code == 2 and "sections.toml: unknown setting 'model' for task 'lm' (a [model] section: a config file is flat" in err
    for line, message in (("cell = 'gru'\npeepholes = true", "keys.toml: cell 'gru' has no option 'peepholes'"),  # named no file
                          ("bptt = 5", "keys.toml: --bptt is the chunk length"),
                          ("Run = 'x'", "--run is given on the command line")):  # fmt: skip
        (tmp_path / "keys.toml").write_text(line + "\n")
        code, _, err = rnnkit("train", "lm", data, "--config", tmp_path / "keys.toml", "--run", tmp_path / "run2", capsys=capsys)
        assert code == 2 and message in err, (line, err)
    (tmp_path / "keys.toml").write_text('batching = "sentences"\n')  # --bptt typed here: the file is not what to change
    code, _, err = rnnkit("train", "lm", data, "--config", tmp_path / "keys.toml", "--bptt", "30", "--run", tmp_path / "run2", capsys=capsys)
    assert code == 2 and "error: --bptt is the chunk length" in err and f"(--batching from {tmp_path / 'keys.toml'})" in err, err
    (tmp_path / "keys.toml").write_text("split = [0.1, 0.1]\n")  # the file's split, refused for the --valid typed: named --split alone
    code, _, err = rnnkit("train", "lm", data, "--config", tmp_path / "keys.toml", "--valid", data, "--run", tmp_path / "run2", capsys=capsys)
    assert code == 2 and "error: " + str(tmp_path / "keys.toml") + ": --split splits DATA only when neither --valid nor --test" in err, err
    for line, hint in (('data = ["n.txt"]', "the training files (the command's DATA) are the setting 'train'"),
                       ('run = "elsewhere"', "--run is given on the command line, not in a config file"),
                       ("resume = true", "--resume is given on the command line")):  # fmt: skip
        (tmp_path / "keys.toml").write_text(line + "\n")
        code, _, err = rnnkit("train", "lm", data, "--config", tmp_path / "keys.toml", "--run", tmp_path / "run2", capsys=capsys)
        assert code == 2 and hint in err, (line, err)


def test_resume_from_the_command_line(tmp_path, capsys):
    data = write(tmp_path / "names.txt", NAMES)
    run = tmp_path / "run"
    code, out, err = rnnkit("train", "lm", data, "--run", run, "--max-steps", "12", "--stop-at-step", "5", *SMALL_MODEL, capsys=capsys)
    assert code == 0 and f"continue it with rnnkit train lm --resume --run {run}" in err and "finished False" in out  # the whole command: the demo has no --resume
    code, _, err = rnnkit("train", "tagger", "--resume", "--run", run, "--no-progress", capsys=capsys)
    assert code == 2 and f"{run}: a lm run; resume it with rnnkit train lm --resume --run {run}" in err  # not resumed as it is
    code, out, err = rnnkit("train", "lm", "--resume", "--run", run, "--no-progress", capsys=capsys)
    assert code == 0 and "resuming at step 5" in err and "finished True" in out
    code, _, err = rnnkit("train", "lm", data, "--run", run, *SMALL_MODEL, capsys=capsys)
    assert code == 2 and "a run is already there; continue it with --resume" in err
    code, _, err = rnnkit("train", "lm", "--resume", "--run", run, "--lr", "1", capsys=capsys)
    assert code == 2 and "'lr' cannot change" in err
    # the first command again with --resume, for a run never made (killed before its folder): said as no run, not as data given
    code, _, err = rnnkit("train", "lm", data, "--resume", "--run", tmp_path / "never", capsys=capsys)
    assert code == 2 and f"{tmp_path / 'never'}: no such run directory" in err, err
    code, _, err = rnnkit("train", "lm", data, "--level", "word", "--resume", "--run", run, capsys=capsys)
    assert code == 2 and "give no data settings (given: level)" in err  # "train" is the run's own: not named
    # the first command again with --resume added: its data and model settings are the run's, so nothing changes
    code, out, err = rnnkit("train", "lm", data, "--run", run, "--resume", "--max-steps", "14", *SMALL_MODEL, capsys=capsys)
    assert code == 0 and "resuming at step 12" in err, err
    (tmp_path / "c.toml").write_text("max_steps = 16\nbogus = 1\n")  # --config is read on --resume too, its keys checked alike
    code, _, err = rnnkit("train", "lm", "--resume", "--run", run, "--config", tmp_path / "c.toml", capsys=capsys)
    assert code == 2 and "c.toml: unknown setting 'bogus' for task 'lm'" in err, err
    (tmp_path / "c.toml").write_text("max_steps = 16\n")
    code, out, err = rnnkit("train", "lm", "--resume", "--run", run, "--config", tmp_path / "c.toml", "--no-progress", capsys=capsys)
    assert code == 0 and "resuming at step 14" in err and "steps 16" in out, (out, err)


def test_a_command_rnnkit_prints_takes_a_run_named_like_an_option(tmp_path, capsys, monkeypatch):
    """"continue it with rnnkit train lm --resume --run -dash" failed when pasted: argparse read
    -dash as an option (argument --run: expected one argument)."""
    monkeypatch.chdir(tmp_path)
    data = write(tmp_path / "names.txt", NAMES)
    code, _, err = rnnkit("train", "lm", data, "--run=-dash", "--max-steps", "12", "--stop-at-step", "5", *SMALL_MODEL, capsys=capsys)
    assert code == 0 and "continue it with rnnkit train lm --resume --run ./-dash" in err, err
    code, out, err = rnnkit("train", "lm", "--resume", "--run", "./-dash", "--no-progress", capsys=capsys)
    assert code == 0 and "finished True" in out, err
    with pytest.raises(SystemExit):  # it said "did you mean --num?" of --num itself
        main(["sample", "--", "-dash", "--num", "2"])
    assert "--num came after '--', which ends the options: give the options before it" in capsys.readouterr().err
    code, out, err = rnnkit("sample", "--num", "2", "--", "-dash", capsys=capsys)
    assert code == 0 and len(out.splitlines()) == 2, err


def test_text_after_an_option_and_dash_dash_is_text(tmp_path, capsys):
    """``score RUN --json -- -anna`` (and tag, classify) said "unrecognized arguments: -- -anna": the
    words after "--" were text only with no option before them; so was a text with a space that
    starts with "-" ("-LRB- ( ) -RRB-", as argparse reads it)."""
    run = tmp_path / "run"
    assert rnnkit("train", "lm", write(tmp_path / "names.txt", NAMES), "--run", run, "--max-steps", "2", *SMALL_MODEL, capsys=capsys)[0] == 0
    for argv, texts in (
        (["--json", "--", "-anna"], ["-anna"]),
        (["--json", "--", "anna", "--json"], ["anna", "--json"]),  # after "--", everything is text
        (["--json", "-a b"], ["-a b"]),
        (["--json", "anna", "--", "-b"], ["anna", "-b"]),
    ):
        code, out, err = rnnkit("score", run, *argv, capsys=capsys)
        assert code == 0 and [json.loads(line)["text"] for line in out.splitlines()] == texts, (argv, err)
    with pytest.raises(SystemExit):  # an unknown option before "--" is still one
        main(["score", str(run), "--jsn", "--", "anna"])
    assert "did you mean --json?" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "no such file"),
        (b"", "the file has no text"),
        (b"ok\n\xc3\x28 broken\n", ":2: not UTF-8 text"),
    ],
    ids=["missing", "empty", "not-utf8"],
)
def test_bad_input_gets_one_line_and_no_partial_run(tmp_path, capsys, content, message):
    data = tmp_path / "data.txt"
    if content is not None:
        data.write_bytes(content)
    run = tmp_path / "run"
    code, out, err = rnnkit("train", "lm", data, "--run", run, capsys=capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(data) in lines[0] and message in lines[0]
    assert not run.exists()


def test_errors_for_bad_options_and_runs(tmp_path, capsys):
    data = write(tmp_path / "names.txt", NAMES)
    code, _, err = rnnkit("train", "lm", data, "--batching", "sentences", "--line-breaks", "token", "--run", tmp_path / "r", capsys=capsys)
    assert code == 2 and "--line-breaks token needs --batching stream" in err and not (tmp_path / "r").exists()
    code, _, err = rnnkit("sample", tmp_path / "nowhere", capsys=capsys)
    assert code == 2 and "nowhere: no such run directory" in err
    with pytest.raises(SystemExit) as exit:  # argparse's own refusal, as of every choice
        rnnkit("train", "lm", data, "--cell", "lsmt", "--run", tmp_path / "r2", capsys=capsys)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and "argument --cell: invalid choice: 'lsmt'" in err and "did you mean lstm?" in err and not (tmp_path / "r2").exists()


def test_demo_quick_and_tour_quick(tmp_path, capsys, monkeypatch):
    pytest.importorskip("names")
    monkeypatch.chdir(tmp_path)
    code, out, _ = rnnkit("demo", "--quick", capsys=capsys)
    assert code == 0 and "ten new names" in out and "xqzvyk" in out
    code, out, _ = rnnkit("demo", "--quick", capsys=capsys)  # the demo replaces its own previous run
    assert code == 0
    code, _, err = rnnkit("demo", "--quick", "--time-limit", "60", capsys=capsys)  # was trained 5 s, silently
    assert code == 2 and "--quick trains for 5 seconds; --time-limit 60 would be ignored" in err
    # the demo's run, once the user trains on with --resume (as its time-limit line advises), is theirs
    before = (tmp_path / "runs" / "demo" / "config.json").read_bytes()
    code, _, err = rnnkit("train", "lm", "--resume", "--run", "runs/demo", "--epochs", "3", "--time-limit", "0.001", capsys=capsys)
    assert code == 2 and "is spent" in err, err  # refused: the run stays the demo's, its config as it was
    assert (tmp_path / "runs" / "demo" / "rnnkit-demo").exists() and (tmp_path / "runs" / "demo" / "config.json").read_bytes() == before
    trained = json.loads((tmp_path / "runs" / "demo" / "summary.json").read_text())["train_seconds"]  # a limit spent already is refused
    assert rnnkit("train", "lm", "--resume", "--run", "runs/demo", "--epochs", "3", "--time-limit", str(trained + 2), capsys=capsys)[0] == 0
    code, out, err = rnnkit("demo", "--quick", capsys=capsys)  # the resumed run is the user's: the demo goes beside it
    assert code == 0 and "this demo goes to runs/demo-2" in out, err
    assert (tmp_path / "runs" / "demo" / "config.json").exists() and (tmp_path / "runs" / "demo-2" / "config.json").exists()
    code, _, err = rnnkit("demo", "--quick", "--run", "runs/demo", capsys=capsys)  # named by the user: refused, never replaced
    assert code == 2 and "runs/demo: exists and is not a demo run (a demo run you resumed is yours now)" in err
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "notes.txt").write_text("mine")
    monkeypatch.chdir(fresh)
    code, _, err = rnnkit("demo", "--quick", "--run", "notes.txt", capsys=capsys)  # refused before it writes anything
    assert code == 2 and sorted(p.name for p in fresh.iterdir()) == ["notes.txt"], err
    code, out, _ = rnnkit("tour", "--quick", capsys=capsys)
    assert code == 0 and "Engines agree" in out


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "rnnkit.cli", "train", "lm", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "rnnkit train lm names.txt" in result.stdout


def _train_parsers() -> dict:
    """``rnnkit train``'s parser of each task, as cli/train.py generates them."""
    import argparse

    from rnnkit.cli import train

    root = argparse.ArgumentParser(prog="rnnkit")
    train.add_parser(root.add_subparsers(dest="verb"))
    parser = root._subparsers._group_actions[0].choices["train"]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _option_of(parser, dest: str):
    return [a for a in parser._actions if a.dest == dest and a.option_strings]


def test_every_setting_of_every_task_is_an_option_of_its_train_command():
    """The options are generated from the code: each field of a task's data dataclass (its files
    as DATA), each model setting it takes and each training setting is an option, parsed by the
    type its field declares, its default shown from the code; nothing is missing or invented."""

    from rnnkit.settings import settings_of
    from rnnkit.tasks import TASKS
    from rnnkit.training import TrainingConfig

    parsers = _train_parsers()
    assert set(parsers) == set(TASKS)
    for kind, task in TASKS.items():
        parser = parsers[kind]
        rows = settings_of(task.Data) + task.model_settings() + settings_of(TrainingConfig)
        for name, default, meta, _ in rows:
            if name == "train":
                assert [a.metavar for a in parser._actions if a.dest == "train"] == ["DATA"]
                continue
            actions = _option_of(parser, name)
            assert actions, f"rnnkit train {kind}: no option for the setting {name}"
            if meta.get("type") not in (None, bool):
                assert actions[0].type is meta["type"], (kind, name)
            if isinstance(default, (int, float, str)) and not isinstance(default, bool):
                assert f"(default: {default:g})" in actions[0].help if isinstance(default, float) else f"(default: {default})" in actions[0].help
        settings = {row[0] for row in rows} | {"help", "run", "resume", "config"}
        assert {a.dest for a in parser._actions} <= settings, f"rnnkit train {kind}: options that are no setting"


def test_train_choices_come_from_the_registries():
    from rnnkit.cells import CELLS
    from rnnkit.engines import ENGINES

    for parser in _train_parsers().values():
        assert list(_option_of(parser, "engine")[0].choices) == ["auto", *ENGINES]  # every engine, triton's too
        assert list(_option_of(parser, "cell")[0].choices) == list(CELLS)


def test_train_help_lists_every_task(capsys):
    from rnnkit.tasks import TASKS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert len(TASKS) == 5 and all(f"    {kind} " in out or f"    {kind}\n" in out for kind in TASKS)


def test_boolean_settings_take_both_flags_and_the_command_line_wins_over_a_config_file():
    parser = _train_parsers()["tagger"]
    assert parser.parse_args(["x", "--one-direction", "--no-crf"]).bidirectional is False
    assert parser.parse_args(["x", "--bidirectional"]).bidirectional is True
    assert parser.parse_args(["x"]).bidirectional is None  # not given: the config file's or the default
    classifier = _train_parsers()["classifier"]
    assert classifier.parse_args(["x", "--keep-case"]).lowercase is False
    assert classifier.parse_args(["x", "--lowercase", "--no-phrases"]).lowercase is True


def test_prepare_takes_the_language_models_corpus_settings():
    import argparse

    from rnnkit.cli import prepare
    from rnnkit.data.corpus import SETTINGS

    root = argparse.ArgumentParser(prog="rnnkit")
    prepare.add_parser(root.add_subparsers(dest="verb"))
    parser = root._subparsers._group_actions[0].choices["prepare"]
    lm = _train_parsers()["lm"]
    for name in ("valid", "test", *SETTINGS):
        ours, theirs = _option_of(parser, name), _option_of(lm, name)
        assert [a.option_strings for a in ours] == [a.option_strings for a in theirs] and ours[0].type is theirs[0].type
    assert not _option_of(parser, "batch_size")  # batching is training's business


@pytest.mark.parametrize("task", ["lm", "tagger", "classifier", "seq2seq", "music"])
def test_train_without_training_data_is_one_line_for_every_task(task, tmp_path, capsys):
    code, _, err = rnnkit("train", task, "--run", tmp_path / "run", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "no training" in err or "--source and --target" in err
    assert not (tmp_path / "run").exists()
    code, _, err = rnnkit("train", task, "--resume", "--run", tmp_path / "run", "--batch-size", "3", capsys=capsys)
    assert code == 2 and f"{tmp_path / 'run'}: no such run directory" in err  # no run was made: that, not the data setting given


def test_an_interrupt_during_the_imports_is_held_back_until_they_are_done():
    """Ctrl-C inside numpy's or torch's import left them half-initialised (tracebacks about missing
    attributes, or the interrupt swallowed and the run going on): ``interrupts_deferred`` holds it
    until the block ends, then raises it (SIGTERM as ``Terminated``)."""
    import os
    import signal

    from rnnkit.signals import interrupts_deferred
    from rnnkit.errors import Terminated

    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (CI may run with SIGINT ignored)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        for number, raised in ((signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)):
            finished = False
            with pytest.raises(raised):
                with interrupts_deferred():
                    os.kill(os.getpid(), number)
                    finished = True  # the block runs to its end
            assert finished
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are restored
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a process started with Ctrl-C ignored (nohup, a background job) keeps ignoring it
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def test_a_sigterm_while_an_output_folder_is_tried_leaves_no_probe_in_it(tmp_path):
    """Options are read before any signal handler is set: a SIGTERM while ``--out``'s folder was tried
    with a file killed the process and left ``.rnnkit-probe-XXXXXXXX`` in the user's folder."""
    import os
    import signal

    script = """
import os, signal, sys, tempfile
from rnnkit.cli import main
made = tempfile.mkstemp
def mkstemp(*args, **kwargs):  # the probe made, then a SIGTERM (docker stop, a job's time limit)
    handle, path = made(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)
    return handle, path
tempfile.mkstemp = mkstemp
sys.exit(main(["prepare", sys.argv[1], "--out", sys.argv[2]]))
"""
    (tmp_path / "t.txt").write_text("a b c\n")
    (tmp_path / "folder").mkdir()
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "t.txt"), str(tmp_path / "folder" / "out")],
                            capture_output=True, text=True)  # fmt: skip
    assert os.listdir(tmp_path / "folder") == [], result.stderr
    assert result.returncode == 128 + signal.SIGTERM and result.stderr == "rnnkit prepare: terminated (SIGTERM)\n", result.stderr


def test_requests_that_cannot_be_met_are_one_line_before_any_work(tmp_path, capsys):
    """Each of these trained silently on something else, or ended in a traceback: --dates with files
    (the files were never read, yet recorded), a device this machine lacks, agreement distances that
    leave nothing to train on."""
    names = tmp_path / "names.txt"
    names.write_text("anna\nbob\n" * 20)
    cases = [
        (["train", "seq2seq", "--dates", "50", "--source", names, "--target", names], r"--dates 50 trains on generated date pairs; --source, --target would not be read"),
        (["train", "lm", names, "--device", "bogus"], r"argument --device: expected auto, cpu, cuda, cuda:N or mps, got 'bogus'"),
        (["agreement", "--max-distance", "4"], r"--train-min-distance 8 is above --max-distance 4"),
        (["agreement", "--max-distance", "10", "--train-min-distance", "6", "--train-max-distance", "3"], r"--train-min-distance 6 is above --train-max-distance 3"),
    ]
    if not torch.cuda.is_available():
        cases.append((["train", "lm", names, "--device", "cuda"], r"argument --device: 'cuda': no CUDA device on this machine"))
    for args, message in cases:
        try:
            code, _, err = rnnkit(*args, "--run" if args[0] == "train" else "--seed", tmp_path / "run" if args[0] == "train" else "0", capsys=capsys)
        except SystemExit as exit:  # argparse's own refusal of an option's value
            code, err = exit.code, capsys.readouterr().err.strip().splitlines()[-1]
        assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), (args, err)
        assert not (tmp_path / "run").exists()


def test_a_finished_run_says_which_limit_ended_it_when_a_resume_has_nothing_to_train(tmp_path, capsys):
    """``--resume --epochs 20`` on a ``--max-steps`` run trained nothing and advised "a larger --epochs
    or --max-steps", the first of which the user had just given: the line names the limit that decides."""
    names = tmp_path / "names.txt"
    names.write_text("anna\nbob\ncarla\n" * 20)
    run = tmp_path / "run"
    assert rnnkit("train", "lm", names, "--run", run, "--max-steps", "6", "--no-progress", *SMALL_MODEL, capsys=capsys)[0] == 0
    code, out, err = rnnkit("train", "lm", "--resume", "--run", run, "--epochs", "20", "--no-progress", capsys=capsys)
    said = out + err
    assert code == 0 and "nothing to train, it is at --max-steps 6, which decides while it is set (not --epochs); give a larger --max-steps" in said, said


def test_standard_input_is_named_stdin_in_run_names_and_results(tmp_path, capsys, monkeypatch):
    """``train tagger -`` made a run folder named ``--tagger-bilstm`` (a name that reads as an option),
    and ``eval RUN -`` printed ``-: ...``."""
    import io

    pytest.importorskip("seqeval")
    conll = ("Anna B-PER\nwent O\nhome O\n\nBob B-PER\nstayed O\n\n" * 10).encode()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(conll)))
    tiny = ["--hidden-size", "4", "--char-hidden-size", "4", "--word-embedding-size", "4", "--max-steps", "2", "--no-progress"]
    assert rnnkit("train", "tagger", "-", *tiny, capsys=capsys)[0] == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["stdin-tagger-bilstm"], runs
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(conll)))
    code, out, _ = rnnkit("eval", tmp_path / "runs" / runs[0], "-", capsys=capsys)
    assert code == 0 and out.startswith("<stdin>: "), out

    class Terminal(io.StringIO):  # nothing piped in: standard input is the terminal
        def isatty(self):
            return True

    for nothing in (Terminal(), io.TextIOWrapper(io.BytesIO(b""))):  # a terminal, or /dev/null (cron, nohup)
        monkeypatch.setattr(sys, "stdin", nothing)
        code, _, err = rnnkit("train", "tagger", "--resume", "--run", tmp_path / "runs" / runs[0], "--max-steps", "4", capsys=capsys)
        assert code == 2 and "trained from standard input; to resume it, pipe the same data in again" in err, err


@pytest.mark.parametrize("options, message", [
    (["--bptt", "10"], r"--bptt is the chunk length of --batching stream"),
    (["--momentum", "0.9"], r"--momentum is SGD's; --optimizer adamw has none"),
    (["--nt-patience", "3"], r"--nt-patience is for --optimizer nt-asgd, not adamw"),
    (["--bpe-vocab", "100"], r"--bpe-vocab sizes the vocabulary of --level bpe, not char"),
    (["--batching", "stream", "--line-breaks", "token", "--bptt", "10"], None),
    (["--optimizer", "sgd", "--momentum", "0.9"], None),
    (["--locked-dropout", "--dropout", "0"], r"--locked-dropout shares the masks of --dropout and --input-dropout, and both are 0"),
    (["--locked-dropout", "--dropout", "0.2"], None),
    (["--valid", "{valid}", "--split", "0.2", "0.2"], r"--split splits DATA only when neither --valid nor --test is given"),
    (["--split", "0.2", "0.2", "--split-seed", "3"], None),
])  # fmt: skip
def test_a_setting_that_would_do_nothing_is_refused_not_recorded(tmp_path, capsys, options, message):
    """Options given for another mode (--bptt without stream batching, --momentum with Adam, ...)
    trained exactly as without them, yet config.json recorded them as if they had shaped the run;
    refused in one line as --peepholes with a GRU is. The same options where they apply train."""
    names = tmp_path / "names.txt"
    names.write_text("anna\nbob\ncarla\n" * 20)
    run = tmp_path / "run"
    (tmp_path / "valid.txt").write_text("dave\nemma\n")
    options = [str(tmp_path / "valid.txt") if option == "{valid}" else option for option in options]
    code, _, err = rnnkit("train", "lm", names, "--run", run, "--max-steps", "2", *options, *SMALL_MODEL, capsys=capsys)
    if message is None:
        assert code == 0, err
    else:
        assert code == 2 and re.search(message, err) and len(err.strip().splitlines()) == 1 and not run.exists(), err


def test_settings_that_would_do_nothing_in_music_and_translation_are_refused(tmp_path):
    from rnnkit.errors import UsageError
    from rnnkit.settings import refuse_unapplied
    from rnnkit.tasks.music_spec import MusicDataConfig
    from rnnkit.tasks.spec import MODEL_SETTINGS

    midi, jsb, named_txt = str(tmp_path / "midi"), str(tmp_path / "jsb.json"), str(tmp_path / "jsb.txt")
    (tmp_path / "midi").mkdir()
    with pytest.raises(UsageError, match=r"--voices is the tokens per step of --representation events"):
        refuse_unapplied(MusicDataConfig(train=jsb), {"voices"})
    refuse_unapplied(MusicDataConfig(train=midi, representation="events"), {"voices", "step_seconds"})
    # --step-seconds cuts whichever input is a MIDI folder: found in any place, whatever the order or a file's name
    for data in (MusicDataConfig(train=jsb), MusicDataConfig(train=[named_txt]), MusicDataConfig(train=jsb, valid=named_txt, test=jsb)):
        with pytest.raises(UsageError, match=r"--step-seconds cuts MIDI files into steps"):
            refuse_unapplied(data, {"step_seconds"})
    for data in (MusicDataConfig(train=[jsb, midi]), MusicDataConfig(train=[midi, jsb]), MusicDataConfig(train=jsb, valid=midi),
                 MusicDataConfig(train=jsb, test=midi)):
        refuse_unapplied(data, {"step_seconds"})
    with pytest.raises(UsageError, match=r"--input-feeding feeds the attentional vector back, and --attention none has none"):
        refuse_unapplied({"attention": "none", "input_feeding": True}, {"input_feeding"}, MODEL_SETTINGS)
    refuse_unapplied({"attention": "additive", "input_feeding": True}, {"input_feeding"}, MODEL_SETTINGS)
    from rnnkit.training import TrainingConfig  # the plateau schedule returned before the warm-up was looked at

    with pytest.raises(UsageError, match=r"--warmup-steps is a ramp of the stepped schedules; --schedule plateau"):
        refuse_unapplied(TrainingConfig(schedule="plateau", warmup_steps=100), {"warmup_steps"})
    refuse_unapplied(TrainingConfig(schedule="cosine", warmup_steps=100), {"warmup_steps"})
    refuse_unapplied(TrainingConfig(schedule="plateau", warmup_steps=0), {"warmup_steps"})  # the default, written out
    # the slanted triangle's own ramp began again after a warm-up: lr, then lr/32, then up again
    with pytest.raises(UsageError, match=r"--warmup-steps is a ramp of its own, and --schedule slanted ramps up already"):
        refuse_unapplied(TrainingConfig(schedule="slanted", warmup_steps=5), {"warmup_steps"})


def test_learning_rates_that_overflow_and_outputs_that_overflow_are_one_line(tmp_path, capsys):
    """An --lr past float32's largest value, or one within it whose Adam step is not (lr / (1 - β1)),
    ended in torch's RuntimeError; finite weights whose outputs overflow (--skip-non-finite let them
    grow) trained on to "finished" and then crashed the sampler. Each is one line now."""
    from rnnkit.decoding import SamplingOptions, next_token, token_log_probs
    from rnnkit.errors import DataError

    names = tmp_path / "names.txt"
    names.write_text("anna\nbob\ncarla\n" * 20)
    try:
        code, _, err = rnnkit("train", "lm", names, "--run", tmp_path / "a", "--lr", "1e39", *SMALL_MODEL, capsys=capsys)
    except SystemExit as exit:
        code, err = exit.code, capsys.readouterr().err
    assert code == 2 and "argument --lr: must be a finite number > 0 and <= 3.40282e+38, got '1e39'" in err
    code, _, err = rnnkit("train", "lm", names, "--run", tmp_path / "b", "--lr", "3e38", "--optimizer", "adam", *SMALL_MODEL, capsys=capsys)
    assert code == 2 and "the update at --lr 3e+38 overflows float32" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = rnnkit("train", "lm", names, "--run", tmp_path / "c", "--lr", "3e38", "--clip", "0", "--optimizer", "sgd", "--schedule", "constant",
                          "--skip-non-finite", "--eval-every", "2", *SMALL_MODEL, capsys=capsys)  # fmt: skip
    assert code == 2 and "the validation loss is" in err and "(not finite)" in err, err
    with pytest.raises(DataError, match=r"the model's outputs are not finite: its weights are finite but overflow"):
        next_token(torch.tensor([[float("inf"), 0.0]]), SamplingOptions(), None)

    class Overflowing(torch.nn.Module):
        def forward(self, tokens):
            return type("Out", (), {"logits": torch.full((*tokens.shape, 3), float("nan"))})()

    with pytest.raises(DataError, match=r"the model's outputs are not finite"):
        token_log_probs(Overflowing(), [1, 2])


def test_a_resume_whose_limit_ends_before_the_step_reached_is_refused(tmp_path, capsys):
    """``--resume --epochs 1`` on a run stopped in its third epoch marked it finished at "epochs 2",
    with more training in its weights than it said: refused, and config.json keeps its plan."""
    names = tmp_path / "names.txt"
    names.write_text("anna\nbob\ncarla\n" * 20)
    run = tmp_path / "run"
    assert rnnkit("train", "lm", names, "--run", run, "--epochs", "5", "--stop-at-step", "12", "--batch-size", "8", *SMALL_MODEL, capsys=capsys)[0] == 0
    for option, value in (("--epochs", "1"), ("--max-steps", "10")):
        code, _, err = rnnkit("train", "lm", "--resume", "--run", run, option, value, "--no-progress", capsys=capsys)
        assert code == 2 and f"the run is at step 12 already; {option} {value} ends at step" in err, err
    assert json.loads((run / "config.json").read_text())["training"]["epochs"] == 5


@pytest.mark.parametrize("setting,value,message", [
    ("seed", "18446744073709551616", "seed: must be a whole number >= 0 and <= 18446744073709551615"),  # was torch's overflow traceback
    ("split", "[0.1]", "split: expected a list of 2 values [VALID, TEST], got [0.1]"),  # was a TypeError traceback
    ("split", "[0.1, 0.1, 0.1]", "split: expected a list of 2 values [VALID, TEST]"),  # was trained on, the third value ignored
    ("split", "0.1", "split: expected a list of 2 values [VALID, TEST], got 0.1"),
])  # fmt: skip
def test_config_values_past_what_their_options_take_are_one_line(tmp_path, capsys, setting, value, message):
    data = write(tmp_path / "names.txt", NAMES)
    (tmp_path / "c.toml").write_text(f"epochs = 1\n{setting} = {value}\n")
    code, _, err = rnnkit("train", "lm", data, "--run", tmp_path / "r", "--config", tmp_path / "c.toml", *SMALL_MODEL, capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()
    if setting == "seed":
        with pytest.raises(SystemExit) as exit:  # argparse's own refusal
            main(["train", "lm", data, "--run", str(tmp_path / "r"), "--seed", value, *SMALL_MODEL])
        assert exit.value.code == 2 and "argument --seed: must be a whole number >= 0 and <= 18446744073709551615" in capsys.readouterr().err


def test_sample_every_on_a_task_that_prints_no_samples_is_refused(tmp_path, capsys):
    """``train classifier --sample-every 2`` was accepted and printed nothing: refused as the other
    settings that would do nothing are (``--momentum`` with Adam)."""
    reviews = write(tmp_path / "reviews.tsv", ["pos\ta fine film", "neg\ta dull film"] * 4)
    code, _, err = rnnkit("train", "classifier", reviews, "--run", tmp_path / "r", "--sample-every", "2", "--no-progress", capsys=capsys)
    assert code == 2 and "--sample-every 2: a classifier run prints no samples while it trains (language models do); leave it out" in err
    assert not (tmp_path / "r").exists()
    code, _, err = rnnkit("train", "classifier", reviews, "--run", tmp_path / "r", "--max-steps", "1", "--no-progress", capsys=capsys)
    code, _, err = rnnkit("train", "classifier", "--resume", "--run", tmp_path / "r", "--sample-every", "2", "--max-steps", "2", capsys=capsys)
    assert code == 2 and "a classifier run prints no samples" in err  # on a resume too, and not recorded
    assert "sample_every\": 2" not in (tmp_path / "r" / "config.json").read_text()


def test_a_plot_asked_for_without_matplotlib_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """matplotlib is an extra: without it --plot wrote nothing, and translate still said it had."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: its import fails
    with pytest.raises(SystemExit) as exit:
        main(["eval", str(tmp_path / "run"), "x.txt", "--plot", str(tmp_path / "cm.png")])
    assert exit.value.code == 2 and "pictures are drawn with matplotlib, which is not installed: pip install 'rnnkit[plot]'" in capsys.readouterr().err


@pytest.mark.parametrize("arguments,says", [
    (["sample", "RUN", "--num", "100000000000"], "argument -n/--num: must be a whole number >= 1 and <= 10000"),  # was torch's traceback
    (["compose", "RUN", "--num", "5000"], "argument --num: must be a whole number >= 1 and <= 1000"),
    (["compose", "RUN", "--prime", ""], "argument --prime: "),  # an unset $PRIME composed unprimed
    (["compose", "RUN", "--out", "song.wav"], "music is written as MIDI; give a name ending in .mid or .midi"),  # MIDI bytes in a .wav
    (["compose", "RUN", "--out", ".mid"], "give a name before .mid, as song.mid"),
    (["inspect", "RUN", "--out", "report.txt"], "the report is a web page; give a name ending in .html or .htm"),
])  # fmt: skip
def test_counts_and_output_names_are_checked_where_they_are_parsed(tmp_path, capsys, arguments, says):
    with pytest.raises(SystemExit) as exit:
        main([str(tmp_path / "run") if a == "RUN" else a for a in arguments])
    assert exit.value.code == 2 and says in capsys.readouterr().err


def test_config_files_name_a_switchs_off_flag_and_a_bad_whole_number_in_one_line(tmp_path, capsys):
    """no_crf = true (the command line's --no-crf) was "unknown setting" with no hint of crf = false,
    and tag_column = 1.0 was int()'s ValueError traceback."""
    data = tmp_path / "t.conll"
    data.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n\n" * 10)
    for line, says in (("no_crf = true", "'no_crf' is the command line's --no-crf; a file sets the switch itself: crf = false"),
                       ("no_progress = false", "the command line's --no-progress; a file sets the switch itself: progress = true"),
                       ("tag_column = 1.5", "tag_column: invalid int value: 1.5"),
                       ("cell_options = 5", "cell_options: expected a table of cell settings"),  # was a TypeError traceback
                       ("cell_options = {peepholes = \"false\"}", "peepholes: expected true or false, got 'false'"),  # was peepholes on
                       ("cell_options = {depth = 2}", "cell_options: 'depth' is no cell setting"),
                       ("hidden_size = [8]", "hidden_size: expected a number, got [8]")):  # was taken as 8; the command line has no list form  # fmt: skip
        (tmp_path / "c.toml").write_text(line + "\n")
        code, _, err = rnnkit("train", "tagger", data, "--run", tmp_path / "r", "--config", tmp_path / "c.toml", capsys=capsys)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "r").exists()


def test_the_command_answers_a_second_ctrl_c_in_one_line_and_then_no_more(monkeypatch, capsys):
    """A second Ctrl-C while the first was being answered escaped main (a traceback), and one during
    the interpreter's shutdown printed tracebacks of torch's exit handlers: the command (``entry``)
    answers it as the first, then ignores Ctrl-C and SIGTERM until the process ends."""
    import signal

    import rnnkit.cli as cli

    def interrupted_twice(argv=None):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise KeyboardInterrupt from None  # the second, inside the handling of the first

    monkeypatch.setattr(cli, "main", interrupted_twice)
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert cli.entry() == 130
        assert capsys.readouterr().err == "rnnkit: interrupted\n"
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def test_an_allocation_that_fails_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    """Under an address-space limit (ulimit -v, as clusters set) numpy's MemoryError reached the
    user as a traceback; the guards now measure against that limit too (``usable_memory``)."""
    import resource

    from rnnkit import files
    from rnnkit.data import corpus

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 384. MiB for an array with shape (100663296,) and data type int32")

    monkeypatch.setattr(corpus, "prepare_corpus", no_memory)
    (tmp_path / "t.txt").write_text("some text\n" * 10)
    assert main(["prepare", str(tmp_path / "t.txt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rnnkit prepare: error: out of memory (Unable to allocate 384. MiB" in err
    def no_room_for_a_library(*args, **kwargs):  # torch's import under ulimit -v 300000
        raise ImportError("libtorch_cpu.so: failed to map segment from shared object")

    monkeypatch.setattr(corpus, "prepare_corpus", no_room_for_a_library)
    assert main(["prepare", str(tmp_path / "t.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "error: out of memory (libtorch_cpu.so: failed to map segment" in capsys.readouterr().err
    monkeypatch.setattr(resource, "getrlimit", lambda which: (2**31, resource.RLIM_INFINITY) if which == resource.RLIMIT_AS else (-1, -1))
    assert files.usable_memory() <= 2**31


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be made")
@pytest.mark.parametrize("argv", [["gradients", "--out", "/proc/g.png"], ["agreement", "--out", "/proc/a.png"], ["inspect", "RUN", "--out", "/proc/r.html"],
                                  ["export", "RUN", "--out", "/proc/x.onnx"], ["prepare", "t.txt", "--out", "/proc/corpus"]])
def test_an_output_folder_that_takes_no_file_is_refused_before_any_work(argv, capsys):
    """Root passes os.access everywhere: gradients trained for 18 s, printed its results, then
    failed to write /proc/g.png; agreement named a file the user never typed (a.md)."""
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert "cannot write in /proc" in capsys.readouterr().err


def test_a_second_file_is_refused_not_read_instead_of_the_first(tmp_path, capsys):
    """classify --file a.txt --file b.txt classified b.txt alone; a.txt's lines were lost unsaid."""
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "b.txt").write_text("two\n")
    with pytest.raises(SystemExit) as exit:
        main(["classify", str(tmp_path / "run"), "--file", str(tmp_path / "a.txt"), "--file", str(tmp_path / "b.txt")])
    assert exit.value.code == 2 and "--file given twice" in capsys.readouterr().err


def test_a_loop_of_links_as_prepares_folder_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    with pytest.raises(SystemExit) as exit:
        main(["prepare", str(tmp_path / "t.txt"), "--out", str(tmp_path / "loop1")])
    assert exit.value.code == 2 and "loop1: a loop of symbolic links" in capsys.readouterr().err


def test_a_closed_standard_output_is_no_traceback(tmp_path):
    """``rnnkit cells >&-`` ended in "'NoneType' object has no attribute 'flush'" (exit 1)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "rnnkit.cli", "cells"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: os.close(1))  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full (Linux's always-full device)")
@pytest.mark.parametrize("buffered", [True, False])
def test_a_full_standard_output_is_named_in_one_line(buffered):
    """``rnnkit cells > /dev/full`` (a full disk under a redirect) said "error: [Errno 28] No space left on
    device", naming nothing; with Python's buffered output the interpreter then added "Exception ignored"
    and exit status 120."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED" or not buffered}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    # --help and --version too: argparse hid the failed write of their text (nothing printed, exit 0)
    for words, name in ((["cells"], "rnnkit cells"), (["cells", "--help"], "rnnkit cells"), (["--help"], "rnnkit"), (["--version"], "rnnkit")):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "rnnkit.cli", *words], stdout=full, stderr=subprocess.PIPE, text=True, env=env)
        assert (done.returncode, done.stderr) == (2, f"{name}: error: standard output: no space left on device\n"), words


def test_an_output_encoding_that_cannot_write_the_text_is_one_line():
    """``PYTHONIOENCODING=ascii rnnkit classify RUN café`` (or a cp1252 console) ended in a UnicodeEncodeError
    traceback; the encoding is the user's setting."""
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-m", "rnnkit.cli", "cells"], capture_output=True, text=True, env=env)  # its equations hold Γ
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.endswith("rnnkit cells: error: standard output: its encoding (ascii) cannot write '\\u0393'; "
                                "set PYTHONIOENCODING=utf-8 (or PYTHONIOENCODING=ascii:backslashreplace)\n"), done.stderr


@pytest.mark.parametrize("taken, why", [("file", "is a file, not a demo run"), ("folder", "is a folder that is not a demo run"),
                                        ("run", "holds a run you trained on")])  # fmt: skip
def test_the_demo_says_why_it_goes_beside_runs_demo(tmp_path, monkeypatch, capsys, taken, why):
    """With runs/demo a plain file the demo said "runs/demo holds a run you trained on"."""
    from rnnkit.demos import names

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    if taken == "file":
        (tmp_path / "runs" / "demo").write_text("mine")
    else:
        (tmp_path / "runs" / "demo").mkdir()
        (tmp_path / "runs" / "demo" / ("config.json" if taken == "run" else "notes.txt")).write_text("{}")
    monkeypatch.setattr(names, "RunDir", lambda path: (_ for _ in ()).throw(SystemExit(path)))  # stop once the path is chosen
    with pytest.raises(SystemExit, match="runs/demo-2"):
        names.run_demo(quick=True)
    assert capsys.readouterr().out == f"runs/demo {why}: this demo goes to runs/demo-2\n"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, BrokenPipeError])
def test_a_demo_stopped_before_its_run_has_a_config_leaves_no_run(tmp_path, monkeypatch, stop):
    """Ctrl-C in the first seconds, or `rnnkit demo | head -1`, left runs/demo holding only the demo's
    mark, which sample then called a run missing its config.json."""
    pytest.importorskip("names")
    from rnnkit.demos import names

    def stopped(task, settings, path):
        raise stop

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(names, "start", stopped)
    with pytest.raises(stop):
        names.run_demo(quick=True)
    assert not (tmp_path / "runs" / "demo").exists()


def test_training_with_standard_error_closed_runs_without_its_progress_bar(tmp_path):
    """With 2>&- Python's sys.stderr is None, and tqdm's bar (and demo, tour and train with it) ended
    in exit 1 with no message."""
    data = tmp_path / "names.txt"
    data.write_text("anna\nbob\ncarla\ndave\n" * 10)
    command = f"{sys.executable} -m rnnkit.cli train lm {data} --run {tmp_path / 'run'} --hidden-size 8 --embedding-size 4 --max-steps 3 2>&-"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env={**os.environ, "RNNKIT_COMPILED_LOOPS": "0"})
    assert done.returncode == 0, done.stdout
    assert (tmp_path / "run" / "summary.json").exists()
