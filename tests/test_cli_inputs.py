"""What the inference verbs promise about their input and their messages:

* one output per input line, a blank line giving an empty line, for arguments, --file and standard
  input alike (all read through ``data.textio``);
* typed text tokenized the way the training text was, and text the vocabulary does not hold shown
  as typed and named, never printed as ``<UNK>`` in its place;
* numeric options checked for finiteness and range where they are parsed, with one line naming the
  option; a run of the wrong kind refused with one line naming the kinds the verb takes;
* user errors as one line, bugs with their traceback, and a closed output pipe ending quietly.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cli import main

TINY = ["--hidden-size", "8", "--max-steps", "2", "--no-progress"]
NAMES = ["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ida", "jon"] * 3
SOURCES = ["ein mann", "ein hund", "zwei frauen", "eine frau", "ein kind"] * 4
TARGETS = ["a man", "a dog", "two women", "a woman", "a child"] * 4
# tokenized as the Penn Treebank is: "n't" split off, punctuation apart
TREEBANK = ["pos\tit is good .", "neg\tit is n't good .", "pos\ta fine , witty film .", "neg\ta dull , tired film ."] * 4


def write(path: Path, lines: list[str], end: str = "\n") -> str:
    path.write_text(end.join(lines) + end, encoding="utf-8", newline="")
    return str(path)


def rnnkit(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One small trained run of every kind (a few steps each: these tests read input, not quality)."""
    pytest.importorskip("seqeval")  # the tagger's evaluation
    root = tmp_path_factory.mktemp("runs")
    songs = [[[60 + (t + k) % 7, 67] for t in range(12)] for k in range(4)]
    (root / "songs.json").write_text(json.dumps({"train": songs, "valid": songs[:1], "test": songs[:1]}))
    conll = "\n\n".join("\n".join(f"{w} X X {t}" for w, t in zip(s.split(), tags.split())) for s, tags in
                        [("Anna Smith visited Paris today .", "B-PER I-PER O B-LOC O O"), ("Bob did n't go .", "B-PER O O O O")] * 6)  # fmt: skip
    (root / "train.conll").write_text(conll + "\n")
    commands = {
        "lm": ["lm", write(root / "names.txt", NAMES), "--embedding-size", "8"],
        "tagger": ["tagger", str(root / "train.conll"), "--word-embedding-size", "8", "--char-hidden-size", "4"],
        "classifier": ["classifier", write(root / "labels.tsv", TREEBANK), "--embedding-size", "8", "--level", "whitespace"],
        "seq2seq": ["seq2seq", "--source", write(root / "train.de", SOURCES), "--target", write(root / "train.en", TARGETS),
                    "--valid-source", str(root / "train.de"), "--valid-target", str(root / "train.en"), "--embedding-size", "8"],
        "music": ["music", str(root / "songs.json")],
    }  # fmt: skip
    paths = {}
    for kind, command in commands.items():
        paths[kind] = root / kind
        code = main(["train", *command, "--run", str(paths[kind]), *TINY])
        assert code == 0, kind
    return paths


# -- one output per input line ----------------------------------------------------------------------------


def test_translate_keeps_blank_lines_in_place_for_file_and_standard_input(runs, tmp_path, capsys, monkeypatch):
    source = ["ein mann", "", "ein hund", "   ", "zwei frauen"]
    _, alone, _ = rnnkit(capsys, "translate", runs["seq2seq"], "--beam", "2", *[s for s in source if s.strip()])
    expected = iter(alone.splitlines())
    want = ["" if not s.strip() else next(expected) for s in source]
    for end in ("\n", "\r\n", "\r"):  # every line end reads the same
        path = write(tmp_path / "in.de", source, end)
        code, out, err = rnnkit(capsys, "translate", runs["seq2seq"], "--beam", "2", "--file", path)
        assert code == 0, err
        assert out.splitlines() == want
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(Path(path).read_bytes())))
        code, out, err = rnnkit(capsys, "translate", runs["seq2seq"], "--beam", "2")
        assert code == 0 and out.splitlines() == want, err
    code, out, _ = rnnkit(capsys, "translate", runs["seq2seq"], "--json", "--file", write(tmp_path / "j.de", source))
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["source"] for r in rows] == source and rows[1]["translations"] == []
    code, out, err = rnnkit(capsys, "translate", runs["seq2seq"], "ein zebra")
    assert code == 0 and len(out.splitlines()) == 1 and "'zebra'" in err and "not in the source vocabulary" in err
    # a tab-separated bitext given to translate: both sides were translated as one text, unsaid
    code, out, err = rnnkit(capsys, "translate", runs["seq2seq"], "--file", write(tmp_path / "bitext.tsv", ["ein mann\ta man", "ein hund\ta dog"]))
    assert code == 0 and len(out.splitlines()) == 2 and "source<TAB>target?" in err and "cut -f1" in err
    code, out, err = rnnkit(capsys, "translate", runs["seq2seq"], "--file", write(tmp_path / "moses.txt", ["ein mann ||| a man", "ein hund ||| a dog"]))
    assert code == 0 and len(out.splitlines()) == 2 and "source ||| target?" in err and "sed 's/ ||| .*//' FILE" in err  # Moses's bitext
    assert "tab" not in rnnkit(capsys, "translate", runs["seq2seq"], "--file", write(tmp_path / "plain.de", ["ein mann", "ein hund"]))[2]


def test_every_text_verb_answers_each_input_line_once(runs, tmp_path, capsys):
    lines = ["emma", "", "anna"]
    path = write(tmp_path / "in.txt", lines)
    for verb, run in (("score", "lm"), ("tag", "tagger"), ("classify", "classifier")):
        code, out, err = rnnkit(capsys, verb, runs[run], "--json", "--file", path)
        rows = [json.loads(line) for line in out.splitlines()]
        assert code == 0 and len(rows) == len(lines), (verb, err)
        assert rows[1]["text"] == "" and rows[1].get("tokens", []) == []
    code, out, _ = rnnkit(capsys, "classify", runs["classifier"], "--file", path)
    assert code == 0 and len(out.splitlines()) == 3 and out.splitlines()[1] == ""  # one line per text
    code, out, _ = rnnkit(capsys, "tag", runs["tagger"], "--file", path)
    assert code == 0 and out.splitlines()[1] == "" and len(out.splitlines()) == 3


def test_texts_from_reads_arguments_files_and_stdin_by_the_same_rules(tmp_path, monkeypatch, capsys):
    from rnnkit.cli._inputs import texts_from
    from rnnkit.data.textio import DataError
    from rnnkit.errors import UsageError

    path = tmp_path / "in.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\rthree\n\nfive\n")
    lines = ["one", "two", "three", "", "five"]
    assert texts_from([], str(path)) == lines
    assert texts_from(["one\r\ntwo\rthree\n\nfive"], None) == lines
    assert "argument 1 holds 5 lines (a line break inside it), read as 5 inputs" in capsys.readouterr().err  # outputs outnumber arguments: said
    assert texts_from([""], None) == [""]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert texts_from(["-"], None) == lines
    path.write_bytes(b"ok\n\xff\n")
    with pytest.raises(DataError, match=r"in.txt:2: not UTF-8"):
        texts_from([], str(path))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(UsageError, match="no text"):
        texts_from([], None)


# -- typed text, the vocabulary and <UNK> -----------------------------------------------------------------


def test_sample_prints_an_unseen_prime_as_typed_and_names_it_once(runs, capsys):
    prime = "Ωé😀"
    code, out, err = rnnkit(capsys, "sample", runs["lm"], "-n", "3", "--max-length", "5", "--seed", "1", "--prime", prime)
    assert code == 0, err
    samples = out.splitlines()
    assert len(samples) == 3 and all(s.startswith(prime) for s in samples) and "<UNK>" not in out
    notes = [line for line in err.splitlines() if "not in the vocabulary" in line]
    assert len(notes) == 1 and all(c in notes[0] for c in prime)
    code, out, err = rnnkit(capsys, "sample", runs["lm"], "-n", "2", "--max-length", "5", "--prime", "em")
    assert code == 0 and all(s.startswith("em") for s in out.splitlines()) and "vocabulary" not in err


def test_a_very_long_unseen_token_is_named_cut_so_that_the_note_stays_one_short_line(runs, capsys):
    long = "x" * 5000
    code, out, err = rnnkit(capsys, "classify", runs["classifier"], f"a {long} film")
    notes = [line for line in err.splitlines() if "not in the vocabulary" in line]
    assert code == 0 and len(notes) == 1 and len(notes[0]) < 200 and "(5,000 characters)" in notes[0]


def test_typed_text_is_cut_as_the_treebank_training_text_was(runs, capsys):
    from rnnkit.tasks.base import typed_tokens

    code, out, _ = rnnkit(capsys, "classify", runs["classifier"], "--json", "It isn't good, a witty film.")
    result = json.loads(out)
    assert code == 0 and result["unknown"] == []  # "is n't", "good ,", "film ." are all in the vocabulary
    code, out, err = rnnkit(capsys, "classify", runs["classifier"], "a zany film")
    assert code == 0 and out.split("\t")[1] == "a zany film" and "'zany'" in err and "<UNK>\t" not in out

    class Vocab:
        ids = {"n't": 3}

    from rnnkit.data.tokenizers import make_tokenizer

    whitespace = make_tokenizer({"kind": "whitespace", "lowercase": True})
    assert typed_tokens(whitespace, Vocab, 'It isn\'t "bad" (really).') == ["it", "is", "n't", "``", "bad", "''", "(", "really", ")", "."]
    Vocab.ids = {}
    assert typed_tokens(whitespace, Vocab, "It isn't bad.") == ["it", "isn't", "bad."]  # not Treebank text: as trained
    code, out, _ = rnnkit(capsys, "tag", runs["tagger"], "--json", "Bob didn't go.")
    assert json.loads(out)["tokens"] == ["Bob", "did", "n't", "go", "."]


# -- options, kinds, messages -----------------------------------------------------------------------------

BAD_OPTIONS = [
    ("sample", "lm", ["--temperature", "nan"]), ("sample", "lm", ["--temperature", "0"]), ("sample", "lm", ["--temperature", "inf"]),
    ("sample", "lm", ["--top-p", "0"]), ("sample", "lm", ["--top-p", "1.5"]), ("sample", "lm", ["--top-p", "nan"]),
    ("sample", "lm", ["--top-k", "-1"]), ("sample", "lm", ["--num", "0"]), ("sample", "lm", ["--max-length", "0"]),
    ("translate", "seq2seq", ["--beam", "0"]), ("translate", "seq2seq", ["--nbest", "-2"]), ("translate", "seq2seq", ["--beam", "1.5"]),
    ("compose", "music", ["--temperature", "-1"]), ("compose", "music", ["--steps", "0"]), ("compose", "music", ["--program", "128"]),
    ("compose", "music", ["--step-seconds", "nan"]), ("compose", "music", ["--num", "0"]), ("sample", "lm", ["--seed", "-1"]),
    ("score", "lm", ["--device", "gpu0"]), ("tag", "tagger", ["--device", "cuda:x"]),
]  # fmt: skip


@pytest.mark.parametrize("verb,kind,option", BAD_OPTIONS, ids=[f"{v}{' '.join(o)}" for v, _, o in BAD_OPTIONS])
def test_a_bad_numeric_option_is_one_line_naming_it(tmp_path, capsys, verb, kind, option):
    with pytest.raises(SystemExit) as exit:
        main([verb, str(tmp_path / "no-run-needed"), *option])
    _, err = capsys.readouterr()
    assert exit.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"rnnkit {verb}: error: argument ")
    assert option[0] in err.split(":")[2] and repr(option[1]) in err


def test_training_pairs_left_out_for_their_length_are_counted_on_stderr(tmp_path, capsys):
    """Pairs longer than --max-length are not trained on: the run says how many, in one line."""
    sources = SOURCES[:15] + [" ".join(["und"] * 30)] * 5  # a quarter of the pairs too long
    source, target = write(tmp_path / "train.de", sources), write(tmp_path / "train.en", TARGETS)
    code, out, err = rnnkit(capsys, "train", "seq2seq", "--source", source, "--target", target, "--max-length", "20",
                            "--run", tmp_path / "run", "--embedding-size", "8", *TINY)  # fmt: skip
    assert code == 0, err
    notes = [line for line in err.splitlines() if "left out" in line]
    assert len(notes) == 1 and "5 of 20 training pairs" in notes[0] and "--max-length 20" in notes[0], err
    # every pair too long: one line naming the files and the option, no run left
    code, out, err = rnnkit(capsys, "train", "seq2seq", "--source", write(tmp_path / "long.de", sources[-5:]), "--target",
                            write(tmp_path / "long.en", TARGETS[:5]), "--max-length", "20", "--run", tmp_path / "run2", *TINY)  # fmt: skip
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "long.de, " in lines[0] and "long.en:" in lines[0] and "--max-length 20" in lines[0], err
    assert not (tmp_path / "run2").exists()


@pytest.mark.parametrize("option", [["--max-vocab", "3"], ["--min-count", "1000"]])
@pytest.mark.parametrize("batching", ["sentences", "stream"])
def test_a_vocabulary_of_only_unk_is_refused(tmp_path, capsys, option, batching):
    """--max-vocab counts <PAD>, <UNK> and <EOS>; at 3, or with a --min-count no token reaches, every
    token would be <UNK> and the perplexity meaningless: one line naming the option, no run left."""
    names = write(tmp_path / "names.txt", NAMES)
    code, out, err = rnnkit(capsys, "train", "lm", names, *option, "--batching", batching, "--run", tmp_path / "run", *TINY)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and option[0] in lines[0], err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("sizes", ["0", "8,0", "8,,8", "-4", "x"])
@pytest.mark.parametrize("kind", ["lm", "tagger", "classifier", "music"])
def test_head_sizes_are_whole_numbers_of_at_least_one(tmp_path, capsys, kind, sizes):
    """A head layer of 0 units would train a model whose output ignores its input; an empty part
    ("8,,8") is no size either: refused in one line before any file is read."""
    with pytest.raises(SystemExit) as exit:
        main(["train", kind, str(tmp_path / "no-file-needed"), "--head-sizes", sizes, "--run", str(tmp_path / "run")])
    _, err = capsys.readouterr()
    assert exit.value.code == 2 and len(err.strip().splitlines()) == 1 and "--head-sizes" in err and repr(sizes) in err, err
    assert not (tmp_path / "run").exists()


VERBS = {"sample": "lm", "score": "lm", "tag": "tagger", "classify": "classifier", "translate": "seq2seq", "compose": "music"}


@pytest.mark.parametrize("verb", VERBS)
def test_a_run_of_the_wrong_kind_is_one_line_naming_the_kinds_the_verb_takes(runs, capsys, verb, tmp_path):
    for kind, run in runs.items():
        if kind == VERBS[verb]:
            continue
        args = [verb, run] + (["some text"] if verb in ("score", "tag", "classify", "translate") else [])
        args += ["--out", tmp_path / "x.mid"] if verb == "compose" else []
        code, out, err = rnnkit(capsys, *args)
        lines = err.strip().splitlines()
        assert code == 2 and out == "" and len(lines) == 1, (verb, kind, err)
        assert lines[0].startswith(f"rnnkit {verb}: error: {run}: a ") and f"rnnkit {verb} takes a" in lines[0]
        assert VERBS[verb] in lines[0].split("takes a")[1]
    assert not (tmp_path / "x.mid").exists()


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(capsys, monkeypatch):
    from rnnkit.cli import score
    from rnnkit.errors import UsageError

    def raising(error):
        def run(args):
            raise error
        return run

    monkeypatch.setattr(score, "run", raising(UsageError("--x must be positive, got 0")))
    code, _, err = rnnkit(capsys, "score", "RUN", "text")
    assert code == 2 and err == "rnnkit score: error: --x must be positive, got 0\n"
    monkeypatch.setattr(score, "run", raising(FileNotFoundError(2, "No such file or directory", "a.txt")))
    code, _, err = rnnkit(capsys, "score", "RUN", "text")
    assert code == 2 and err == "rnnkit score: error: a.txt: no such file or directory\n"
    for bug in (KeyError("<UNK>"), TypeError("'<' not supported between instances of 'str' and 'int'"), ValueError("x")):
        monkeypatch.setattr(score, "run", raising(bug))
        with pytest.raises(type(bug)):  # not a message: a bug, shown with its traceback
            main(["score", "RUN", "text"])


def test_output_closed_early_ends_quietly(runs, tmp_path):
    path = write(tmp_path / "many.txt", ["emma"] * 3000)
    env = {**os.environ, "RNNKIT_COMPILED_LOOPS": "0"}
    command = f"{sys.executable} -m rnnkit.cli score {runs['lm']} --file {path} | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout == "'emma'\n" and result.stderr == ""


@pytest.mark.parametrize("damage", ["cut", "no-tokens", "no-specials"])
def test_a_damaged_vocabulary_file_is_one_line_naming_it(runs, capsys, tmp_path, damage):
    """vocab.json and its kin cut short or edited by hand: the verb names the file, no traceback."""
    verb_of = {kind: verb for verb, kind in VERBS.items()}
    for kind, run in runs.items():
        for vocabulary in sorted(run.glob("*vocab.json")) + sorted(run.glob("chars.json")):
            copy = tmp_path / f"{kind}-{vocabulary.stem}"
            shutil.copytree(run, copy)
            text = (copy / vocabulary.name).read_text()
            damaged = {"cut": text[: len(text) // 2], "no-tokens": '{"words": []}', "no-specials": '{"tokens": ["a", "b"]}'}
            (copy / vocabulary.name).write_text(damaged[damage])
            verb = verb_of[kind]
            args = [verb, copy] + (["some text"] if verb in ("score", "tag", "classify", "translate") else [])
            args += ["--out", tmp_path / "x.mid"] if verb == "compose" else []
            code, out, err = rnnkit(capsys, *args)
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1, (kind, vocabulary.name, err)
            assert str(copy / vocabulary.name) in lines[0] and "damaged" in lines[0]


def _one_short(value):
    """A run file's list one entry short (a label, tag or token lost by an edit)."""
    if isinstance(value, list):
        return value[:-1]
    key = next(k for k, v in value.items() if isinstance(v, list))
    return {**value, key: value[key][:-1]}


RUN_FILE_DAMAGE = {
    "config-model-number": ("config.json", lambda c: {**c, "model": 7}),
    "config-data-list": ("config.json", lambda c: {**c, "data": []}),
    "config-task-unknown": ("config.json", lambda c: {**c, "task": "x"}),
    "config-model-kind-missing": ("config.json", lambda c: {**c, "model": {k: v for k, v in c["model"].items() if k != "kind"}}),
    "tokenizer-empty": ("tokenizer.json", lambda t: {}),
    "tokenizer-number": ("tokenizer.json", lambda t: 5),
    "tokenizer-string": ("tokenizer.json", lambda t: "hello"),  # was dict()'s ValueError traceback
    "tokenizer-bpe-untrained": ("tokenizer.json", lambda t: {"kind": "bpe", "lowercase": False}),  # was an AttributeError at sampling
    "tokenizer-another-level": ("tokenizer.json", lambda t: {**t, "kind": "whitespace" if t.get("kind") != "whitespace" else "char"}),  # scored silently
    "labels-string": ("labels.json", lambda t: "x"),
    "tokenizer-case-flipped": ("tokenizer.json", lambda t: {**t, "lowercase": not t.get("lowercase")}),  # "GOOD" read as <UNK>, unsaid
    "vocab-one-twice": ("vocab.json", lambda v: {"tokens": [*v["tokens"][:-1], v["tokens"][3]]}),  # one token, two ids: read silently
    "labels-one-short": ("labels.json", _one_short),
    "labels-empty-object": ("labels.json", lambda t: {}),
    "labels-one-twice": ("labels.json", lambda t: {**t, "labels": [*t["labels"][:-1], t["labels"][0]]}),
    "tags-one-short": ("tags.json", _one_short),
    "tags-null": ("tags.json", lambda t: None),
    "vocab-one-short": ("vocab.json", _one_short),
}


@pytest.mark.parametrize("damage", sorted(RUN_FILE_DAMAGE))
def test_run_files_of_the_wrong_shape_or_size_are_one_line_never_a_traceback_or_a_silent_answer(runs, capsys, tmp_path, damage):
    """A run file edited into the wrong type ({} for a list, a number for a section) is one line naming
    the run; a labels.json, tags.json or vocab.json one entry short of what the weights were trained
    with is refused, not answered with a class silently gone."""
    name, change = RUN_FILE_DAMAGE[damage]
    verb_of = {kind: verb for verb, kind in VERBS.items()}
    tried = 0
    for kind, run in runs.items():
        if not (run / name).exists():
            continue
        copy = tmp_path / f"{kind}-{damage}"
        shutil.copytree(run, copy)
        (copy / name).write_text(json.dumps(change(json.loads((copy / name).read_text()))))
        verb = verb_of[kind]
        args = [verb, copy] + (["some text"] if verb in ("score", "tag", "classify", "translate") else [])
        args += ["--out", tmp_path / "x.mid"] if verb == "compose" else []
        for command in (args, ["export", copy, "--out", tmp_path / "x.onnx", "--no-check"]):
            code, out, err = rnnkit(capsys, *command)
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and str(copy) in lines[0], (kind, command[0], err)
        tried += 1
    assert tried


# -- one convention across verbs: --plot for a picture, --out for the file a verb writes, text read alike ----


def test_every_picture_is_plot_and_the_old_names_still_draw_it(runs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    labels = runs["classifier"].parent / "labels.tsv"
    drawn = {
        "confusion.png": ["eval", runs["classifier"], labels, "--plot"],
        "attention.png": ["translate", runs["seq2seq"], "ein mann", "--plot"],
        "roll.png": ["compose", runs["music"], "--length", "6", "--out", tmp_path / "song.mid", "--plot"],
    }
    for name, args in drawn.items():
        code, _, err = rnnkit(capsys, *args, tmp_path / name)
        assert code == 0 and (tmp_path / name).stat().st_size > 1000, (name, err)
    assert not list(tmp_path.glob(".rnnkit-plot-*"))  # eval's picture drawn aside, then moved: nothing left over
    old = {  # the spellings before: scripts keep working
        "old/confusion_eval.png": ["eval", runs["classifier"], labels, "--pictures", tmp_path / "old"],
        "old-attention.png": ["translate", runs["seq2seq"], "ein mann", "--attention", tmp_path / "old-attention.png"],
        "old-roll.png": ["compose", runs["music"], "--steps", "6", "--out", tmp_path / "old.mid", "--png", tmp_path / "old-roll.png"],
    }
    for name, args in old.items():
        code, _, err = rnnkit(capsys, *args)
        assert code == 0 and (tmp_path / name).exists(), (name, err)


def test_plot_on_an_evaluation_that_draws_no_picture_is_refused_in_one_line(runs, tmp_path, capsys):
    """--plot is never ignored in silence: a kind whose evaluation draws nothing says so, before it evaluates."""
    data = {"lm": runs["lm"].parent / "names.txt", "tagger": runs["tagger"].parent / "train.conll"}
    for kind, path in data.items():
        picture = tmp_path / f"{kind}.png"
        code, out, err = rnnkit(capsys, "eval", runs[kind], path, "--plot", picture)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "--plot" in lines[0] and kind in lines[0], (kind, err)
        assert out == "" and not picture.exists() and not list(tmp_path.glob(".rnnkit-plot-*"))
    # the hidden former option is refused alike, by the name the user typed
    code, out, err = rnnkit(capsys, "eval", runs["lm"], data["lm"], "--pictures", tmp_path / "pictures")
    assert code == 2 and "error: --pictures:" in err and "--plot" not in err, err
    assert not (tmp_path / "pictures").exists()


def test_inspect_reads_text_file_and_standard_input_alike(runs, tmp_path, capsys, monkeypatch):
    text = ["emma and anna", "bob"]
    path = write(tmp_path / "in.txt", text)
    outputs = []
    for source in (text, ["--file", path], ["-"]):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\n".join(text).encode())))
        code, out, err = rnnkit(capsys, "inspect", runs["lm"], *source, "--out", tmp_path / "report.html")
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1] == outputs[2] and "tokens, layers" in outputs[0]


def test_inspect_of_text_without_tokens_is_one_line_for_every_kind(runs, tmp_path, capsys, monkeypatch):
    """Blank text gives a language model that ends sentences with <EOS> no tokens at all (a blank
    line ends none): one line and exit 2, as for the other kinds, no traceback."""
    for kind in ("lm", "tagger", "classifier"):
        for source in (["\n\n"], ["-"]):
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\n")))
            code, out, err = rnnkit(capsys, "inspect", runs[kind], *source, "--out", tmp_path / "report.html")
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and "nothing to inspect" in lines[0], (kind, err)
            assert not (tmp_path / "report.html").exists()


def test_a_training_file_given_twice_is_refused_before_the_run_exists(runs, tmp_path, capsys, monkeypatch):
    """Several training files are read as one set (a tagger on train + dev): the same file twice,
    however it is written, would silently train on its examples twice; every kind refuses it."""
    monkeypatch.chdir(tmp_path)
    names = write(tmp_path / "names.txt", NAMES)
    conll = runs["tagger"].parent / "train.conll"
    (tmp_path / "link.txt").symlink_to(tmp_path / "names.txt")
    os.link(tmp_path / "names.txt", tmp_path / "hard.txt")  # one file under two names: no path resolves to the other
    cases = {
        "lm": ["lm", names, "./names.txt", "--embedding-size", "8"],
        "lm-link": ["lm", "names.txt", "link.txt", "--embedding-size", "8"],
        "lm-hard-link": ["lm", "names.txt", "hard.txt", "--embedding-size", "8"],
        "tagger": ["tagger", conll, conll],
        "classifier": ["classifier", runs["classifier"].parent / "labels.tsv", runs["classifier"].parent / "labels.tsv"],
    }
    for name, command in cases.items():
        code, out, err = rnnkit(capsys, "train", *command, "--run", tmp_path / name, *TINY)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "given twice as a training file" in lines[0], (name, err)
        assert not (tmp_path / name).exists(), name


def test_a_test_score_says_which_weights_it_read(runs, tmp_path, capsys):
    """With no validation split nothing chose the weights: the test line says they are the last ones."""
    conll = runs["tagger"].parent / "train.conll"
    code, out, err = rnnkit(capsys, "train", "tagger", conll, "--test", conll, "--run", tmp_path / "last", *TINY)
    assert code == 0 and "(last weights: no validation split" in out + err, out + err
    code, out, err = rnnkit(capsys, "train", "tagger", conll, "--valid", conll, "--test", conll, "--run", tmp_path / "best", *TINY)
    assert code == 0 and "(best weights)" in out + err, out + err


@pytest.mark.parametrize("verb,option", [("compose", "--out"), ("compose", "--wav"), ("gradients", "--out"), ("agreement", "--out"), ("inspect", "--out")])
def test_a_file_to_write_under_a_file_is_refused_where_it_is_parsed(tmp_path, capsys, verb, option):
    """An output under a path that is a file fails before any work (gradients trains three models
    first), in one line saying what is wrong ("not a folder"), not "file exists" afterwards."""
    (tmp_path / "afile").write_text("mine\n")
    run = [] if verb in ("gradients", "agreement") else [str(tmp_path / "no-run-needed")]
    with pytest.raises(SystemExit) as exit:
        main([verb, *run, option, str(tmp_path / "afile" / "x.out")])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"argument {option}: {tmp_path / 'afile' / 'x.out'}: {tmp_path / 'afile'} is a file, not a folder" in err


def test_a_line_too_long_to_read_as_one_sequence_is_refused_by_the_verbs_as_by_training(runs, capsys, tmp_path):
    """Training refuses a line of over 100,000 tokens (batched as one sequence it needs absurd memory);
    the verbs read a line as one sequence too, and took 1.9 GB and a minute for 200,000 characters."""
    huge = tmp_path / "huge.txt"
    huge.write_text("anna" * 30_000)
    for args in (["score", runs["lm"], "--file", huge], ["tag", runs["tagger"], "--file", huge]):  # characters are steps
        code, _, err = rnnkit(capsys, *args)
        assert code == 2 and re.search(r"huge.txt:1: 120,000 tokens, more than 100,000", err), (args[0], err)
    (tmp_path / "grows.txt").write_text("\u0958" * 60_000)  # 60,000 characters, 120,000 once composed (NFC), as the run reads them
    code, _, err = rnnkit(capsys, "score", runs["lm"], "--file", tmp_path / "grows.txt")
    assert code == 2 and "grows.txt:1: 120,000 tokens, more than 100,000" in err, err
    # counted in the run's own tokens, as training counted them: 150,000 characters are 30,000 words,
    # which a word-level classifier trained and evaluated on, so classify reads them too
    words = tmp_path / "words.txt"
    words.write_text("anna " * 30_000 + "\nbob\n")
    code, out, err = rnnkit(capsys, "classify", runs["classifier"], "--file", words)
    assert code == 0 and len(out.splitlines()) == 2, err
    words.write_text("bob\n" + "a " * 1_000_001)  # past any run's limit: refused unread, with its line
    code, _, err = rnnkit(capsys, "classify", runs["classifier"], "--file", words)
    assert code == 2 and re.search(r"words.txt:2: a line of 2,000,002 characters, more than 2,000,000", err), err
    code, _, err = rnnkit(capsys, "eval", runs["lm"], huge)
    assert code == 2 and "huge.txt: a sequence of 120,001 steps, more than 100,000" in err, err


def test_a_picture_is_asked_for_by_a_png_name(runs, capsys, tmp_path):
    """``gradients --out g7.txt`` wrote PNG bytes under a .txt name: pictures are PNG, named so."""
    for args in (["gradients", "--out", tmp_path / "g.txt"], ["eval", runs["classifier"], "x.tsv", "--plot", tmp_path / "c.txt"]):
        with pytest.raises(SystemExit):
            main([str(a) for a in args])
        assert "a picture is written as PNG; give a name ending in .png" in capsys.readouterr().err


def test_greedy_sampling_refuses_what_would_shape_a_draw(runs, capsys):
    """``sample --greedy --temperature 3 --top-k 5`` printed ten identical lines, ignoring all three."""
    code, _, err = rnnkit(capsys, "sample", runs["lm"], "--greedy", "--top-k", "5", "--temperature", "3")
    assert code == 2 and "--greedy takes the likeliest token at every step, so --temperature, --top-k would do nothing" in err
    code, out, err = rnnkit(capsys, "sample", runs["lm"], "--greedy", "--max-length", "5")
    assert code == 0 and len(out.splitlines()) == 1, err  # one sample: every other would be the same


def test_text_arguments_follow_the_rules_of_files(runs, capsys):
    """Bytes that are not UTF-8 in a file are refused with their line and column; on the command line
    (which Python hands over as surrogates) they were scored as <UNK> and printed as "�". A BOM and a
    CRLF file's CR (``--prime "$(cat prime.txt)"``) are dropped from a prime as from a file's line."""
    for args in (["score", runs["lm"], "he \udc93hi"], ["classify", runs["classifier"], "ok", "a\nb \udc93"],
                 ["sample", runs["lm"], "--prime", "he said \udc93hi"]):  # fmt: skip
        code, _, err = rnnkit(capsys, *args)
        assert code == 2 and re.search(r"(argument 1|argument 2:2|--prime): not UTF-8 text \(byte 0x93 at column (4|3|9)\)", err), (args, err)
    for prime in ("an\r\n", "\ufeffan", "an\r"):
        code, out, err = rnnkit(capsys, "sample", runs["lm"], "--prime", prime, "--num", "2", "--seed", "1")
        assert code == 0 and "note" not in err, (prime, err)
        assert [line[:2] for line in out.splitlines()] == ["an", "an"], (prime, out)


def test_an_empty_file_is_no_text_as_empty_standard_input_is(runs, capsys, tmp_path, monkeypatch):
    """``score --file empty.txt`` printed nothing and succeeded, ``score < empty.txt`` was an error."""
    for content in (b"", b"\xef\xbb\xbf"):
        (tmp_path / "empty.txt").write_bytes(content)
        for verb, run in (("score", runs["lm"]), ("classify", runs["classifier"])):
            code, out, err = rnnkit(capsys, verb, run, "--file", tmp_path / "empty.txt")
            assert code == 2 and not out and "no text:" in err and "empty.txt is empty" in err, (verb, err)
    import io
    import sys

    for args in (["-"], ["--file", "-"], []):  # `score RUN -` printed nothing and succeeded
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
        code, out, err = rnnkit(capsys, "score", runs["lm"], *args)
        assert code == 2 and not out and "no text:" in err, (args, err)


def test_a_full_disk_names_the_file_the_user_asked_for_and_loses_no_figure(runs, tmp_path, capsys, monkeypatch):
    """write(2)'s errors name no file: ``ulimit -f`` or a full disk gave "[Errno 27] File too large"
    for export, compose, eval --plot and inspect --out, and eval printed none of its figures."""
    import errno

    import matplotlib.figure

    from rnnkit import files

    def too_large(*args, **kwargs):
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    monkeypatch.setattr(files, "_write_to", too_large)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", too_large)
    labels = runs["classifier"].parent / "labels.tsv"
    cases = {
        "export": (["export", runs["lm"], "--out", tmp_path / "m.onnx", "--no-check"], tmp_path / "m.onnx"),
        "compose": (["compose", runs["music"], "--length", "6", "--out", tmp_path / "song.mid"], tmp_path / "song.mid"),
        "inspect": (["inspect", runs["lm"], "anna and bob", "--out", tmp_path / "r.html"], tmp_path / "r.html"),
        "eval": (["eval", runs["classifier"], labels, "--plot", tmp_path / "c.png"], tmp_path / "c.png"),
    }
    for name, (args, shown) in cases.items():
        code, out, err = rnnkit(capsys, *args)
        assert code == 2 and err.strip().endswith(f"{shown}: file too large"), (name, err)
        assert os.listdir(tmp_path) == [], (name, os.listdir(tmp_path))  # nothing half-written
    assert "accuracy" in out  # eval's figures were printed before the error


def test_until_end_on_a_piano_roll_model_is_refused_not_ignored(runs, capsys, tmp_path):
    """``compose --until-end`` on a piano-roll run wrote its --length steps, exit 0, no word."""
    code, out, err = rnnkit(capsys, "compose", runs["music"], "--until-end", "--length", "6", "--out", tmp_path / "x.mid")
    assert code == 2 and "--until-end stops where a voice-token model ends the piece" in err and "piano-roll model" in err
    assert not (tmp_path / "x.mid").exists()


@pytest.mark.parametrize("args", [
    ["train", "tagger", "{conll}", "--word-vectors", ""], ["train", "tagger", "{conll}", "--lm-features", ""],
    ["train", "tagger", "{conll}", "--valid", ""], ["train", "classifier", "{conll}", "--text-column", " "],
    ["tag", "{tagger}", "--file", ""], ["eval", "{tagger}", ""], ["sample", ""], ["serve", ""], ["train", "lm", "{conll}", "--run", ""],
    ["tag", "{tagger}", "x", "--ensemble", ""], ["prepare", ""],
], ids=["word-vectors", "lm-features", "valid", "text-column", "tag-file", "eval-file", "run", "runs", "train-run", "ensemble", "prepare"])
def test_an_empty_name_is_refused_not_read_as_the_option_left_out(runs, tmp_path, capsys, args):
    """``--word-vectors "$GLOVE"`` with the variable unset passes "": the run trained without the
    vectors, features or validation it named, silently; ``tag --file ""`` read standard input."""
    values = {"{conll}": str(runs["tagger"].parent / "train.conll"), "{tagger}": str(runs["tagger"])}
    run = tmp_path / "run"
    try:
        code = main([values.get(a, a) for a in args] + ([*TINY, "--run", str(run)] if args[0] == "train" and "--run" not in args else []))
    except SystemExit as exit:  # refused by argparse
        code = exit.code
    out, err = capsys.readouterr()
    assert code == 2 and ("empty" in err or "expected a name" in err), err
    assert len(err.strip().splitlines()) == 1 and not run.exists() and out == ""


def test_a_training_file_given_to_tag_or_classify_gets_a_note_not_silent_nonsense(runs, capsys, tmp_path):
    """A flair user's ``tag --file eng.testb`` tagged each ``word POS chunk TAG`` line as a sentence,
    and a fastText user's ``classify --file train.txt`` read the labels as words, with no word said."""
    column = write(tmp_path / "tagged.conll", ["-DOCSTART- -X- -X- O", "", "Anna NNP I-NP B-PER", "Smith NNP I-NP I-PER", "visited VBD I-VP O"])
    code, out, err = rnnkit(capsys, "tag", runs["tagger"], "--file", column)
    assert code == 0 and "looks like a CoNLL column file" in err and "rnnkit eval" in err
    # the same file without its tags (cut -d' ' -f1): each word was tagged alone, with no word said
    tokens = write(tmp_path / "tokens.txt", ["Anna", "Smith", "visited", "Paris", ".", "", "Bob", "left", "."])
    code, out, err = rnnkit(capsys, "tag", runs["tagger"], "--file", tokens)
    assert code == 0 and "looks like one token per line" in err and len(out.splitlines()) == 9
    code, out, err = rnnkit(capsys, "tag", runs["tagger"], "Paris", "London", "Berlin", "Rome", "Madrid")  # words typed as arguments
    assert code == 0 and "one token per line" not in err
    labelled = write(tmp_path / "labelled.txt", ["__label__pos it is good .", "__label__neg a dull film .", "__label__pos fine ."])
    code, out, err = rnnkit(capsys, "classify", runs["classifier"], "--file", labelled)
    assert code == 0 and "looks like a labelled training file" in err
    code, out, err = rnnkit(capsys, "classify", runs["classifier"], "--file", write(tmp_path / "tsv.txt", TREEBANK[:4]))
    assert code == 0 and "looks like a labelled training file" in err
    code, out, err = rnnkit(capsys, "classify", runs["classifier"], "--file", write(tmp_path / "new.csv", ["review", '"Great, love it"']))
    assert code == 0 and "a CSV header row and its quotes are read as text" in err
    for verb, run in (("tag", "tagger"), ("classify", "classifier")):  # sentences, even ending in "O", get none
        code, out, err = rnnkit(capsys, verb, runs[run], "Anna saw O", "it is good .", "Bob went home", "a dull film .")
        assert code == 0 and "looks like" not in err


def test_a_labelled_file_with_the_label_elsewhere_gets_the_same_note(runs, capsys, tmp_path):
    """SST trees, ``text<TAB>label`` files (with a header row or without) and CSV rows in a file not
    named .csv were classified as plain text with no word said: only a label first, before a tab, was
    recognised."""
    trees = ["(3 (2 It) (4 (4 works) (2 .)))", "(1 (2 A) (1 (1 dull) (2 film)))", "(4 (2 Fine) (2 .))"]
    swapped = [line.split("\t")[1] + "\t" + line.split("\t")[0] for line in TREEBANK[:4]]
    rows = ["text,label", '"it is good .",pos', '"a fine , witty film .",pos', "a dull film .,neg"]  # a CSV, named or piped as text
    for name, lines in (("trees.txt", trees), ("swapped.txt", swapped), ("header.tsv", ["sentence\tlabel", *swapped]), ("rows.txt", rows)):
        code, out, err = rnnkit(capsys, "classify", runs["classifier"], "--file", write(tmp_path / name, lines))
        assert code == 0 and "looks like a labelled training file" in err and "rnnkit eval RUN FILE" in err, (name, err)
    long = write(tmp_path / "long.txt", ["a " * 65_537, "it is good .", "a dull film ."])  # past the csv module's field limit
    code, out, err = rnnkit(capsys, "classify", runs["classifier"], "--file", long)  # was a csv.Error traceback
    assert code == 0 and len(out.splitlines()) == 3 and "looks like" not in err, err
    texts = ["(laughs) a fine film", "(2 a) b", "it is good .", "see (3) below"]  # brackets in sentences make no tree
    code, out, err = rnnkit(capsys, "classify", runs["classifier"], "--file", write(tmp_path / "texts.txt", texts))
    assert code == 0 and "looks like" not in err


def test_a_line_of_only_invisible_characters_is_blank_for_every_verb(runs, capsys, tmp_path):
    """A zero-width space or soft hyphen alone: blank in training, but translate read it as <UNK>, and
    --replace-unk crashed (max() of no source words)."""
    lines = ["ein mann", "\u200b\u200c", "\u00ad \u200e\u3164\ufe0f", "ein hund"]  # joiners, fillers, selectors alone show nothing
    path = write(tmp_path / "invisible.de", lines)
    code, out, err = rnnkit(capsys, "translate", runs["seq2seq"], "--file", path, "--replace-unk")
    assert code == 0 and out.split("\n")[1:3] == ["", ""] and len(out.splitlines()) == 4, (out, err)
    code, out, err = rnnkit(capsys, "translate", runs["seq2seq"], "--file", path, "--plot", tmp_path / "a.png", "--json")
    assert code == 0 and len(out.splitlines()) == 4 and "heat map" in err  # stdout: one line per input line
    for verb, run in (("tag", "tagger"), ("classify", "classifier")):
        code, out, err = rnnkit(capsys, verb, runs[run], "--file", path)
        assert code == 0 and out.split("\n")[1:3] == ["", ""], (verb, out)
    code, out, err = rnnkit(capsys, "score", runs["lm"], "--file", path, "--json")
    assert code == 0 and [json.loads(line)["tokens"] for line in out.splitlines()][1:3] == [[], []], out


def test_eval_reads_a_named_pipe_as_it_reads_standard_input(runs, tmp_path, capsys):
    """``eval RUN <(cat text)`` was refused as "read more than once", though eval reads it once (and
    ``-`` worked)."""
    import threading

    text = "\n".join(NAMES) + "\n"
    (tmp_path / "names.txt").write_text(text)
    assert main(["eval", str(runs["lm"]), str(tmp_path / "names.txt")]) == 0
    from_file = capsys.readouterr().out.split(": ", 1)[1]
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(text))
    writer.start()
    code = main(["eval", str(runs["lm"]), str(fifo)])
    writer.join()
    out, err = capsys.readouterr()
    assert code == 0 and out == f"{fifo}: {from_file}", err


def test_inspect_reads_the_first_max_chars_of_a_file_of_one_long_line(runs, tmp_path, capsys):
    """A char-rnn corpus of one 150,000-character line was refused for its length, though inspect
    reads only --max-chars of it (a 50,000-character one was read)."""
    path = tmp_path / "long.txt"
    path.write_text("anna bob carla " * 10_000)
    code, out, err = rnnkit(capsys, "inspect", runs["lm"], "--file", path, "--out", tmp_path / "r.html", "--max-chars", "300")
    assert code == 0 and "the first 300 are read" in err and (tmp_path / "r.html").exists()


@pytest.mark.parametrize("verb, kind", [("score", "tagger"), ("tag", "lm"), ("classify", "lm"), ("translate", "lm"), ("inspect", "music")])
def test_the_run_is_checked_before_standard_input_is_read(runs, tmp_path, capsys, monkeypatch, verb, kind):
    """A mistyped or wrong-kind RUN was named only after standard input ended (a user typing text
    typed it all first), and with empty input never: "no text: standard input was empty"."""

    class Untouched(io.StringIO):
        def isatty(self):
            return False

        def read(self, *args):
            raise AssertionError("standard input was read before the run was checked")

        readline = readlines = __iter__ = read

    monkeypatch.setattr(sys, "stdin", Untouched())
    for run, said in ((tmp_path / "nosuch", "no such run directory"), (runs[kind], "takes a")):
        code, out, err = rnnkit(capsys, verb, run)
        assert code == 2 and said in err and "standard input" not in err, err


def test_a_beam_wider_than_any_use_and_a_copy_as_reference_are_refused(runs, capsys, tmp_path, monkeypatch):
    """--beam 10**9 asked for 128 GB (a traceback), 10**20 overflowed; eval SOURCE,SOURCE scored a
    copy; --nbest above an explicit --beam, and a wrong --ensemble, waited for standard input first."""
    for beam in ("1001", "1000000000", "99999999999999999999"):
        with pytest.raises(SystemExit):
            main(["translate", str(runs["seq2seq"]), "ein mann", "--beam", beam])
        assert "must be a whole number >= 1 and <= 1000" in capsys.readouterr().err
    source = write(tmp_path / "s.de", SOURCES)
    code, out, err = rnnkit(capsys, "eval", runs["seq2seq"], f"{source},{tmp_path / '.' / 's.de'}")
    assert code == 2 and "the source and the reference are the same file" in err

    class Untouched(io.StringIO):
        def isatty(self):
            return False

        def read(self, *args):
            raise AssertionError("standard input was read first")

    monkeypatch.setattr(sys, "stdin", Untouched())
    code, out, err = rnnkit(capsys, "translate", runs["seq2seq"], "--nbest", "9", "--beam", "3")
    assert code == 2 and "--nbest 9 cannot exceed the beam width 3" in err
    code, out, err = rnnkit(capsys, "translate", runs["seq2seq"], "--nbest", "9")  # above the run's own beam
    assert code == 2 and "--nbest 9 cannot exceed the beam width" in err
    code, out, err = rnnkit(capsys, "classify", runs["classifier"], "--ensemble", runs["tagger"])
    assert code == 2 and "--ensemble" in err and "takes a classifier run" in err
