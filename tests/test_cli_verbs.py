"""What every verb of the command line shares, so that a person can predict it:

* ``rnnkit --help``, ``rnnkit VERB --help`` and ``rnnkit --version`` answer without importing torch;
* every verb that reads a run takes RUN, ``--weights`` and ``--device`` from one helper;
* one name per idea across verbs (``--prime``, ``--length`` for generated steps, ``--train-steps``
  for training steps, ``--plot`` for a picture, ``--out`` for the file a verb writes), the old
  spellings still accepted but hidden;
* text read alike (TEXT..., ``--file``, ``-``) by the verbs that read text, ``inspect`` included;
* the analysis experiments show a progress bar, and ``agreement``'s defaults are the documented figure.
"""

from __future__ import annotations

import argparse
import io
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cli import VERBS, build_parser, main

OWN_OPTIONS = {"train", "prepare"}  # their options are generated from the task settings (another test)
RUN_VERBS = ["sample", "score", "tag", "classify", "translate", "compose", "eval", "inspect", "export", "serve"]


def subparser(verb: str) -> argparse.ArgumentParser:
    parser = build_parser(verb)
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices[verb]


def visible_options(verb: str) -> set[str]:
    return {o for a in subparser(verb)._actions if a.help != argparse.SUPPRESS for o in a.option_strings}


def test_help_and_version_answer_without_importing_torch():
    """Every verb's --help, ``train TASK --help`` for every task, and ``train``'s usage errors: the
    task declarations (rnnkit.tasks.spec) and TrainingConfig are read without the tasks' torch code."""
    from rnnkit.tasks import TASKS

    answers = [["--help"], ["--version"]] + [[verb, "--help"] for verb in VERBS] + [["train", kind, "--help"] for kind in TASKS]
    usage_errors = [["train"], ["train", "nope"], ["train", "lm", "--no-such-option"], ["train", "tagger", "--engine", "nope"],
                    ["train", "lm", "--batch-size", "0"], ["prepare"]]
    child = f"""
import contextlib, io, sys
from rnnkit.cli import main
for argv, code in [(argv, 0) for argv in {answers!r}] + [(argv, 2) for argv in {usage_errors!r}]:
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            main(argv)
        except SystemExit as exit:
            assert exit.code == code, (argv, exit.code)
    assert (out.getvalue() if code == 0 else err.getvalue()), argv
    heavy = sorted(m for m in ("torch", "numpy", "matplotlib") if m in sys.modules)
    assert not heavy, (argv, heavy)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def test_version_names_rnnkit_torch_and_python(capsys):
    from importlib.metadata import version

    import rnnkit

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    out = capsys.readouterr().out
    assert exit.value.code == 0
    assert out == f"rnnkit {rnnkit.__version__} (torch {version('torch')}, Python {'.'.join(map(str, sys.version_info[:3]))})\n"


def test_the_top_level_help_lists_every_verb_and_every_verb_builds(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(f"    {verb}" in out for verb in VERBS)
    (verbs,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(verbs.choices) == set(VERBS)
    assert all(parser.add_help for parser in verbs.choices.values())  # each its own parser, not a stand-in


@pytest.mark.parametrize("verb", RUN_VERBS)
def test_every_verb_that_reads_a_run_takes_weights_and_device_alike(verb):
    parser = subparser(verb)
    weights = next(a for a in parser._actions if "--weights" in a.option_strings)
    assert weights.choices == ["best", "last"] and weights.default == "best"
    assert (verb == "export") != any("--device" in a.option_strings for a in parser._actions)  # export runs on the CPU
    positional = [a for a in parser._actions if not a.option_strings and a.metavar == "RUN"]
    assert len(positional) == 1 and parser.get_default("kinds")  # the kinds it takes, declared with RUN


def test_one_name_per_idea_and_the_old_names_hidden():
    shown = {verb: visible_options(verb) for verb in VERBS if verb not in OWN_OPTIONS}
    for old in ("--primer", "--primer-steps", "--steps", "--png", "--attention", "--pictures"):
        assert not [v for v, options in shown.items() if old in options], old
    assert "--prime" in shown["sample"] and "--prime" in shown["compose"]
    assert "--length" in shown["compose"] and {"--train-steps"} <= shown["gradients"] & shown["agreement"]
    assert all("--plot" in shown[v] for v in ("eval", "translate", "compose"))
    for verb in ("score", "tag", "classify", "translate", "inspect", "gradients"):
        assert "--file" in shown[verb], verb


@pytest.mark.parametrize("verb,old,new,value", [
    ("compose", "--primer", "prime", "a.mid"), ("compose", "--primer-steps", "prime_steps", 3),
    ("compose", "--steps", "length", 40), ("compose", "--png", "plot", "roll.png"),
    ("translate", "--attention", "plot", "att.png"), ("gradients", "--steps", "train_steps", 7),
    ("agreement", "--steps", "train_steps", 9),
])  # fmt: skip
def test_an_old_spelling_still_sets_the_new_option(verb, old, new, value):
    args = build_parser(verb).parse_args([verb, *(["RUN"] if verb in RUN_VERBS else []), old, str(value)])
    assert getattr(args, new) == value


def test_an_old_spelling_keeps_its_checks(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["compose", "RUN", "--steps", "0"])
    assert exit.value.code == 2 and "argument --steps: must be a whole number >= 1 and <= 200000, got '0'" in capsys.readouterr().err


def test_agreement_defaults_are_the_documented_figure():
    from rnnkit.analysis.agreement import run_experiment

    args = build_parser("agreement").parse_args(["agreement"])
    assert (args.max_distance, args.train_min_distance) == (24, 8)  # docs/benchmarks.md: trained on k = 8..24
    defaults = inspect.signature(run_experiment).parameters
    assert (defaults["max_distance"].default, defaults["train_min_distance"].default, defaults["steps"].default) == (24, 8, args.train_steps)
    docs = Path(__file__).parents[1] / "docs" / "benchmarks.md"
    if docs.exists():
        assert "rnnkit agreement --out docs/figures/agreement.png" in " ".join(docs.read_text().split())


def test_the_analysis_experiments_count_their_steps_on_a_progress_bar(monkeypatch):
    """gradients, agreement and tour run for minutes: each training loop runs through ``progress``."""
    from rnnkit.analysis import agreement, gradient_flow, progress
    from rnnkit.demos import tour

    bars = []

    def recording(total, what):
        bars.append((what, total))
        return range(total)

    monkeypatch.setattr(agreement, "progress", recording)
    monkeypatch.setattr(gradient_flow, "progress", recording)
    monkeypatch.setattr(tour, "progress", lambda steps, what, unit="step": recording(steps, what))
    agreement.run_experiment(("rnn",), max_distance=2, train_size=80, test_size=4, steps=3, budget_hidden=4, train_min_distance=0, log=lambda *_: None)
    gradient_flow.compare_cells(["anna", "bob", "carla"] * 5, ("gru",), length=6, batch=2, train_steps=2, hidden=4, log=lambda *_: None)
    tour.tag_by_the_next_word(True, 2, seed=0, T=4)
    assert bars == [("agreement: rnn", 3), ("gradients: gru", 2), ("bidirectional GRU", 2)]
    assert progress(5, "x").disable  # not a terminal (pytest captures stderr): no bar in logs


def test_gradients_and_inspect_read_text_as_the_other_verbs(tmp_path, monkeypatch, capsys):
    from rnnkit.cli.analysis import text_lines

    def lines(*argv):
        return text_lines(build_parser("gradients").parse_args(["gradients", *argv]))

    path = tmp_path / "in.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\n")
    assert lines("one", "two") == lines("--file", str(path)) == ["one", "two"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert lines("-") == ["one", "two"]
    capsys.readouterr()
    assert lines(str(path)) == ["one", "two"]  # the form before: a lone TEXT naming a file is that file, with a note
    assert f"write --file {path}" in capsys.readouterr().err
    assert lines("no such file") == ["no such file"]


def test_cells_shows_equations_as_plain_text_and_each_cells_options(capsys):
    """``rnnkit cells`` printed the docstrings' reST and LaTeX (``.. math::``, ``\\tanh``, ``W_{aa}``)
    and did not list the options a cell takes (``nonlinearity``, ``peepholes``)."""
    from rnnkit.cli import main

    assert main(["cells"]) == 0
    shown = capsys.readouterr().out
    assert ".. math::" not in shown and "\\" not in shown and "_{" not in shown
    assert "options nonlinearity='tanh'" in shown and "options peepholes=False" in shown
    assert "a<t> = Γo * tanh(c<t>)" in shown


def test_an_eval_plot_killed_midway_leaves_nothing_the_next_one_keeps(tmp_path):
    """``eval --plot`` killed with -9 left an empty ``.rnnkit-plot-XXXX`` folder beside the picture
    for good; the folder is named by its process now, and the next plot removes a dead one's."""
    from rnnkit.cli.evaluate import save_plot

    dead = tmp_path / ".rnnkit-plot-999999999-abcd"  # no process has that number
    dead.mkdir()

    def draw(result, directory, name):
        path = Path(directory) / f"{name}.png"
        path.write_bytes(b"png")
        return {"confusion": str(path)}

    assert save_plot(draw, {}, str(tmp_path / "c.png")) == {"confusion": str(tmp_path / "c.png")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]


def test_option_typos_are_refused_with_a_suggestion_never_taken_as_a_prefix(capsys):
    """``--epoch 1`` passed for ``--epochs`` (argparse's prefixes), and ``--hiden-size`` or
    ``rnnkit trian`` gave no hint."""
    from rnnkit.cli import main

    for argv, hint in ((["train", "lm", "x.txt", "--epoch", "1"], "did you mean --epochs?"),
                       (["train", "lm", "x.txt", "--hiden-size", "3"], "did you mean --hidden-size?"),
                       (["trian"], "did you mean train?")):  # fmt: skip
        with pytest.raises(SystemExit) as exit:
            main(argv)
        err = capsys.readouterr().err
        assert exit.value.code == 2 and hint in err and len(err.strip().splitlines()) == 1, err


def test_a_stray_word_gets_no_suggestion_of_itself(capsys):
    """``rnnkit sample RUN last`` answered "unrecognized arguments: last; did you mean last?"."""
    from rnnkit.cli import main

    with pytest.raises(SystemExit):
        main(["train", "lm", "x.txt", "--max-steps", "1", "fp16"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: fp16" in err and "did you mean" not in err


@pytest.mark.parametrize("verb", VERBS)
def test_a_file_a_verb_writes_unasked_is_named_in_its_help(verb):
    """compose wrote (and replaced) song.mid when --out was left out, and its --help did not say so."""
    for action in subparser(verb)._actions:
        if "--out" in action.option_strings and action.default not in (None, argparse.SUPPRESS):
            assert f"default {action.default}" in action.help, (verb, action.help)
