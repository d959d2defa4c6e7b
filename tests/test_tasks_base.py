"""The shared half of every task (tasks/base.py): configuration, run names, help from the
docstring, the declared run files, and evaluation of a split or a file through one explicit call."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from rnnkit.data.vocab import Vocabulary
from rnnkit.files import RunDir
from rnnkit.models.registry import build_model
from rnnkit.tasks import TASKS
from rnnkit.tasks.base import treebank_words
from rnnkit.tasks.classification import ClassificationTask
from rnnkit.tasks.tagging import TaggingTask


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_every_task_gets_help_model_kind_and_configuration_from_the_base(kind):
    task = TASKS[kind]
    assert task.summary and task.description and task.examples.startswith("examples:")
    assert "\n" not in task.summary and task.examples.endswith("\n")
    data = task.data_config({"train": "a.txt"} if "train" in task.data_keys() else {})
    if "train" in task.data_keys():
        assert data.train == ["a.txt"]  # one path given: a list of paths
    assert "eval_batch_size" in task.data_keys()  # the evaluation batch size is a setting of every task


def labelled(path, lines: int = 30):
    words = ["good", "bad", "film", "plot", "dull", "great", "fine"]
    rows = [f"{'pos' if i % 3 else 'neg'}\t{words[i % 7]} {words[(3 * i) % 7]} {words[(5 * i + 1) % 7]}" for i in range(lines)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture
def classifier(tmp_path):
    data = ClassificationTask.data_config({"train": labelled(tmp_path / "train.tsv"), "valid": labelled(tmp_path / "valid.tsv", 11)})
    task, _ = ClassificationTask.prepare(data)
    torch.manual_seed(0)
    model = build_model(task.model_kind, task.model_config({"embedding_size": 6, "hidden_size": 5}))
    return task, model


def test_a_file_is_evaluated_as_a_split_without_being_added_to_the_tasks_splits(classifier, tmp_path):
    task, model = classifier
    splits = dict(task.splits)
    from_file = task.evaluate_file(model, str(tmp_path / "valid.tsv"), "cpu")
    assert task.splits == splits  # no split injected, none left behind
    assert from_file == task.evaluate(model, "valid", "cpu") == task.evaluate_examples(model, task.splits["valid"], "cpu")
    assert from_file["count"] == 11


def test_the_evaluation_batch_size_is_the_settings_and_changes_no_score(classifier):
    task, model = classifier
    wide = task.evaluate(model, "valid", "cpu")
    task.data.eval_batch_size = 2
    assert len(task.batches_of(task.splits["valid"], False)) == 6  # 11 examples, 2 a batch
    narrow = task.evaluate(model, "valid", "cpu")
    assert narrow["accuracy"] == wide["accuracy"] and narrow["loss"] == pytest.approx(wide["loss"], rel=1e-5)


def test_the_declared_vocabularies_tokenizers_and_names_make_the_round_trip(classifier, tmp_path):
    task, _ = classifier
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    task.save(run)
    assert {p.name for p in run.path.iterdir()} == {"vocab.json", "tokenizer.json", "labels.json"}
    loaded = ClassificationTask.load(run, task.data)
    assert loaded.vocab.tokens == task.vocab.tokens and loaded.labels == task.labels
    assert loaded.tokenizer.config() == task.tokenizer.config()


def test_a_run_name_says_the_data_the_kind_the_direction_and_the_cell(classifier, tmp_path):
    task, _ = classifier
    assert task.default_run_name({"bidirectional": True, "cell": "gru"}) == "train-classifier-bigru"
    tagger = TaggingTask(TaggingTask.data_config({"train": str(tmp_path / "eng.train")}), None, None, [])
    assert tagger.default_run_name({"bidirectional": False, "cell": "lstm"}) == "eng-tagger-unilstm"


SST = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst5" / "trees" / "test.txt"
QUOTES = ("``", "''")


def test_text_tokenized_already_keeps_its_quotes_when_typed_again():
    """Sentences copied from a tokenized corpus (SST's) and typed again were cut anew, and NLTK read
    their closing quotes "''" as opening ones: ``classify`` and ``tag`` then answered otherwise than
    ``eval`` on the same sentences (SST-5 test: 43.03 against 43.35 % for one run)."""
    vocab = Vocabulary.build([["did", "n't", "-LRB-"]])
    assert treebank_words("`` Wow '' , he said '' did n't", vocab) == ["``", "Wow", "''", ",", "he", "said", "''", "did", "n't"]
    assert treebank_words('He said "didn\'t" and \'\'quoted\'\'', vocab) == ["He", "said", "``", "did", "n't", "''", "and", "``", "quoted", "''"]
    if not SST.exists():
        pytest.skip("shared SST-5 data absent")
    for line in SST.read_text(encoding="utf-8").splitlines():
        leaves = re.findall(r"\(\d ([^()]+)\)", line)
        typed = treebank_words(" ".join(leaves), vocab)
        assert [w for w in typed if w in QUOTES] == [w for w in leaves if w in QUOTES], line


def test_words_the_vocabulary_holds_are_not_cut_again():
    """Penn Treebank lines scored or primed were cut again by NLTK: ``s&p`` -> ``s & p``, ``<unk>`` ->
    ``< unk >``, ``u.s.`` -> ``u.s .`` (2,347 of the test set's 3,761 lines); a CoNLL tagger's ``"``
    became ``` `` ```, which its vocabulary does not hold."""
    ptb = Vocabulary.build([["the", "s&p", "index", "u.s.", "n't", "''", "``", "fell"]])
    assert treebank_words("the s&p index fell a <unk> drop in the u.s. and didn't stop", ptb) == [
        "the", "s&p", "index", "fell", "a", "<unk>", "drop", "in", "the", "u.s.", "and", "did", "n't", "stop"]
    assert treebank_words("in the U.S. today", Vocabulary.build([["n't"]])) == ["in", "the", "U.S.", "today"]  # cut together: no period split off
    sst = Vocabulary.build([["n't", "scotland", ",", "is", "a", "romp", "."]])
    assert treebank_words("Scotland , Pa. is a drab romp .", sst) == ["Scotland", ",", "Pa.", "is", "a", "drab", "romp", "."]  # mid-text: kept
    assert treebank_words("I met Pa.", sst) == ["I", "met", "Pa", "."]  # the text's own final period: split off, as NLTK does
    conll = Vocabulary.build([['"', "eu", "'s", "n't"]])
    assert treebank_words('He said " EU " and "EU" wasn\'t', conll) == ["He", "said", '"', "EU", '"', "and", '"', "EU", '"', "was", "n't"]


def _seeded_tasks(tmp_path: Path, seed: int) -> dict:
    """Each task with batches of examples, prepared from tiny files with ``--seed seed``."""
    import json

    from rnnkit.tasks.classification import ClassificationDataConfig
    from rnnkit.tasks.music import MusicDataConfig, MusicTask
    from rnnkit.tasks.tagging import TaggingDataConfig
    from rnnkit.tasks.translation import TranslationDataConfig, TranslationTask

    words = [f"w{i}" for i in range(40)]
    (tmp_path / "c.tsv").write_text("".join(f"{i % 5}\t{' '.join(words[: 1 + i % 7])} {w}\n" for i, w in enumerate(words)))
    (tmp_path / "t.conll").write_text("".join(f"Anna B-PER\n{w} O\n\n" for w in words))
    (tmp_path / "s.txt").write_text("".join(f"{w} haus\n" for w in words))
    (tmp_path / "e.txt").write_text("".join(f"{w} house\n" for w in words))
    (tmp_path / "m.json").write_text(json.dumps({"train": [[[60 + i % 12], [64]] for i in range(40)], "valid": [[[60]]], "test": [[[62]]]}))
    return {
        "classifier": ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / "c.tsv")], batch_size=4), seed=seed)[0],
        "tagger": TaggingTask.prepare(TaggingDataConfig(train=[str(tmp_path / "t.conll")], scheme="iob2", batch_size=4), seed=seed)[0],
        "seq2seq": TranslationTask.prepare(TranslationDataConfig(source=str(tmp_path / "s.txt"), target=str(tmp_path / "e.txt"), batch_size=4), seed=seed)[0],
        "music": MusicTask.prepare(MusicDataConfig(train=[str(tmp_path / "m.json")], batch_size=4, transpose=5), seed=seed)[0],
    }


def _training_orders(tmp_path: Path, seed: int) -> dict:
    """Each task's training batches of epochs 0 and 1, as lists of example indices."""
    folder = tmp_path / f"seed{seed}-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    return {name: [task._batches("train", True).order(epoch) for epoch in (0, 1)] for name, task in _seeded_tasks(folder, seed).items()}


def test_the_seed_sets_the_order_of_every_tasks_training_batches(tmp_path):
    """``--seed`` seeds "the initial weights, the batch order and dropout" (--help): each task's
    training batches come in another order under another seed, and in the same under the same.
    (Classifiers, taggers, seq2seq and music once shuffled with seed 0 whatever --seed said.)"""
    zero, one, again = _training_orders(tmp_path, 0), _training_orders(tmp_path, 1), _training_orders(tmp_path, 0)
    for name in zero:
        assert zero[name] == again[name], name
        assert zero[name] != one[name], f"{name}: --seed 0 and --seed 1 shuffle alike"


def test_the_seed_sets_musics_transpositions(tmp_path):
    """``--transpose``'s shifts of each epoch's pieces are drawn per seed as well."""
    shifted = {}
    for seed in (0, 1):
        (tmp_path / str(seed)).mkdir()
        music = _seeded_tasks(tmp_path / str(seed), seed)["music"]
        shifted[seed] = list(music.batches_of(music.splits["train"], True, epoch=0).sequences)
    assert shifted[0] != shifted[1]


def test_a_run_named_after_a_folder_given_as_dot_has_the_folders_name(tmp_path, monkeypatch):
    """``rnnkit train lm .`` in a prepared corpus's folder made the run "runs/-char-lstm" (the stem of
    "." is ""), which ``rnnkit sample -char-lstm`` then read as an option."""
    from rnnkit.tasks.base import file_stem

    corpus = tmp_path / "ptb-store"
    (corpus / "inner").mkdir(parents=True)
    monkeypatch.chdir(corpus / "inner")
    assert [file_stem(p) for p in (".", "./", "..", "../", "../inner", "a/b.txt", "-")] == ["inner", "inner", "ptb-store", "ptb-store", "inner", "b", "stdin"]
