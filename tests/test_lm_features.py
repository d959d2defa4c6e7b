"""Frozen language-model features for taggers and classifiers (``--lm-features``, issue 21 point 2;
``rnnkit.models.lm_features``): each word's feature is the language model's hidden state at the
documented position, the models never change, and a tagger with them trains, tags and resumes."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rnnkit.cli import main
from rnnkit.errors import UsageError
from rnnkit.models import build_model
from rnnkit.models.lm_features import LMFeatures
from rnnkit.tasks.tagging import TaggingDataConfig, TaggingTask

LM_SMALL = ["--hidden-size", "12", "--embedding-size", "6", "--engine", "reference", "--no-progress", "--max-steps", "3", "--batch-size", "4"]
TAGGER_SMALL = [
    "--scheme", "iob2", "--word-embedding-size", "6", "--char-hidden-size", "3", "--char-embedding-size", "4", "--casing-size", "2",
    "--hidden-size", "5", "--engine", "reference", "--no-progress", "--batch-size", "2",
]  # fmt: skip
SENTENCES = [("Teddy Roosevelt was a great President .", "B-PER I-PER O O O O O"), ("Teddy bears are on sale !", "O O O O O O"),
             ("Paris is in France .", "B-LOC O O B-LOC O")]  # fmt: skip


@pytest.fixture(scope="module")
def lm_runs(tmp_path_factory):
    """Tiny language models trained for three steps: character and word level, forward and reversed,
    and a character model trained as one stream with line-break tokens."""
    root = tmp_path_factory.mktemp("lms")
    text = root / "text.txt"
    text.write_text("\n".join(words for words, _ in SENTENCES * 4) + "\nthe cat sat on the mat .\n")
    runs = {}
    for name, options in {
        "char": ["--level", "char"], "char-bwd": ["--level", "char", "--reverse"], "word": ["--level", "word"],
        "word-bwd": ["--level", "word", "--reverse"], "stream": ["--level", "char", "--batching", "stream", "--line-breaks", "token", "--bptt", "8"],
    }.items():  # fmt: skip
        runs[name] = root / name
        assert main(["train", "lm", str(text), "--run", str(runs[name]), *options, *LM_SMALL]) == 0
    return runs


def final_state(run, tokens: list[str]):
    """The language model's top hidden state after reading ``tokens`` alone, from x<1> = 0 (what the
    feature must equal): run over ``tokens`` plus a terminator, the last step's output."""
    framing = ["\n"] if run.config["data"].get("line_breaks") == "token" else []
    ids = torch.tensor([run.vocab.ids.get(t, run.vocab.unk_id) for t in framing + tokens] + [run.vocab.eos_id])[:, None]  # (S, 1)
    with torch.no_grad():
        a, _ = run.model.recurrent(run.model.inputs(ids))  # (S, 1, n_a)
    return a[-1, 0]


@pytest.mark.parametrize("name", ["char", "char-bwd", "word", "word-bwd", "stream"])
def test_a_words_feature_is_the_language_models_state_having_read_it(lm_runs, name):
    features = LMFeatures.read(str(lm_runs[name]))
    run = features.runs[0]
    sentences = [["Teddy", "bears", "sleep", "zzz"], ["Paris", "is"]]  # "zzz": unknown characters and words are <UNK>
    got = features.features(sentences)  # (T, B, F)
    assert got.shape == (4, 2, 12) and not got.requires_grad
    assert torch.equal(got[2:, 1], torch.zeros(2, 12))  # padding
    for b, words in enumerate(sentences):
        for i in range(len(words)):
            if run.tokenizer.kind == "char":  # Flair: forward, the state at the space after the word; reversed, at the space before it
                before, upto = " ".join(words[:i]) + (" " if i else ""), " ".join(words[: i + 1])
                read = list(upto) if not run.reverse else list(" ".join(words[i:]))[::-1]
            else:  # TagLM: the state at the word
                read = words[: i + 1] if not run.reverse else words[i:][::-1]
            assert torch.allclose(got[i, b], final_state(run, read), atol=1e-6), (name, words[i])
    assert got.abs().sum() > 0


def test_two_runs_give_the_forward_then_the_backward_states_side_by_side(lm_runs):
    pair = LMFeatures.read(f"{lm_runs['char']},{lm_runs['char-bwd']}")
    sentences = [["Paris", "is", "in", "France"]]
    assert pair.size == 24
    got = pair.features(sentences)  # (4, 1, 24)
    assert torch.equal(got[..., :12], LMFeatures.read(str(lm_runs["char"])).features(sentences))
    assert torch.equal(got[..., 12:], LMFeatures.read(str(lm_runs["char-bwd"])).features(sentences))
    with pytest.raises(UsageError, match="give a forward run, then a reversed one"):
        LMFeatures.read(f"{lm_runs['char-bwd']},{lm_runs['char']}")
    with pytest.raises(UsageError, match="give one language-model run, or a forward and a reversed one"):
        LMFeatures.read(f"{lm_runs['char']},{lm_runs['char-bwd']},{lm_runs['word']}")


def test_a_runs_sentences_are_read_by_the_models_once_then_come_from_the_cache(lm_runs, monkeypatch):
    spec = f"{lm_runs['char']},{lm_runs['word-bwd']}"
    features = LMFeatures.read(spec)
    sentences = [["Teddy", "bears", "sleep"], ["Paris", "is"], ["Paris", "is"], ["a"]]
    direct = features.compute(sentences)  # (3, 4, 24), no cache
    calls = []
    for _ in range(2):
        features.cache_once(lambda: calls.append(1) or sentences)
    assert calls == [1] and len(features.cache) == 3  # asked once; one entry per distinct sentence
    monkeypatch.setattr(features, "compute", lambda *a, **k: pytest.fail("a cached sentence ran the language models again"))
    got = features.features(sentences[::-1])  # another order and grouping than the cache was filled in
    assert got.shape == (3, 4, 24) and torch.allclose(got, direct.flip(1), atol=1e-6)
    assert torch.equal(got[1:, 0], torch.zeros(2, 24)) and torch.equal(got[2:, 1:3], torch.zeros(1, 2, 24))  # padding
    monkeypatch.undo()
    unseen = [["Paris", "is"], ["Teddy", "Roosevelt"]]
    assert torch.allclose(features.features(unseen), features.compute(unseen))  # a sentence the cache lacks: the models read the batch
    # a fixed order: another process (a resumed run), given the sentences in any order, caches the very same numbers
    again = LMFeatures.read(spec)
    again.cache_once(lambda: sentences[::-1] + sentences[:1])
    assert again.cache.keys() == features.cache.keys() and all(torch.equal(again.cache[k], v) for k, v in features.cache.items())


def test_a_cache_over_its_limit_is_not_kept_and_says_so_in_one_line(lm_runs, capsys):
    features = LMFeatures.read(str(lm_runs["char"]))
    sentences = [["Paris", "is", "in", "France"]]
    features.cache_once(lambda: sentences, limit=4 * 12 * 4 - 1)  # one byte short of 4 words x 12 floats
    err = capsys.readouterr().err.strip().splitlines()
    assert not features.cache and len(err) == 1 and "over the cache's" in err[0] and "computed per batch" in err[0]
    assert torch.equal(features.features(sentences), features.compute(sentences))
    features = LMFeatures.read(str(lm_runs["char"]))
    features.cache_once(lambda: sentences, limit=4 * 12 * 4)  # exactly fits
    assert list(features.cache) == [tuple(sentences[0])]


def conll(path, sentences=SENTENCES):
    path.write_text("\n\n".join("\n".join(f"{w} X X {t}" for w, t in zip(words.split(), tags.split())) for words, tags in sentences) + "\n")
    return path


def test_the_language_models_stay_frozen_while_the_tagger_trains(lm_runs, tmp_path):
    spec = f"{lm_runs['char']},{lm_runs['word-bwd']}"
    task, record = TaggingTask.prepare(TaggingDataConfig(train=[str(conll(tmp_path / "train.conll"))], scheme="iob2", lm_features=spec))
    assert record["lm_features"]["size"] == 24 and task.data.lm_features == spec.replace(str(lm_runs["char"]), str(lm_runs["char"].resolve()))
    model = build_model("tagger", task.model_config({"hidden_size": 5, "word_embedding_size": 4, "engine": "reference"}))
    lms = [run.model for run in task.lm_features.runs]
    before = [{k: v.clone() for k, v in lm.state_dict().items()} for lm in lms]
    assert not {id(p) for lm in lms for p in lm.parameters()} & {id(p) for p in model.parameters()}  # not the tagger's to train
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model.train()
    for batch in task.train_batches(0, 0):
        loss, _ = task.loss(model, batch, torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for lm, state in zip(lms, before):
        assert not lm.training and all(p.grad is None and not p.requires_grad for p in lm.parameters())
        assert all(torch.equal(state[k], v) for k, v in lm.state_dict().items())
    assert model.features.output_size == 4 + 2 * 25 + 4 + 24
    assert set(task.lm_features.cache) == {tuple(words.split()) for words, _ in SENTENCES}  # training read them from the cache


def test_a_tagger_with_lm_features_trains_tags_resumes_and_names_a_run_that_moved(lm_runs, tmp_path, capsys):
    train, run = conll(tmp_path / "train.conll"), tmp_path / "tagger"
    spec = f"{lm_runs['char']},{lm_runs['char-bwd']}"
    weights = [(lm_runs[n] / "best.safetensors").read_bytes() for n in ("char", "char-bwd")]
    assert main(["train", "tagger", str(train), "--valid", str(train), "--run", str(run), "--lm-features", spec, "--max-steps", "2", *TAGGER_SMALL]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["lm_features_size"] == 24 and config["data"]["lm_features"] == f"{lm_runs['char'].resolve()},{lm_runs['char-bwd'].resolve()}"
    assert "language-model features" in capsys.readouterr().err
    assert main(["tag", str(run), "--json", "Teddy Roosevelt was a great President ."]) == 0
    assert len(json.loads(capsys.readouterr().out.splitlines()[0])["tags"]) == 7
    assert main(["train", "tagger", "--resume", "--run", str(run), "--max-steps", "4"]) == 0
    assert main(["eval", str(run), str(train)]) == 0
    assert [(lm_runs[n] / "best.safetensors").read_bytes() for n in ("char", "char-bwd")] == weights
    capsys.readouterr()
    moved = lm_runs["char-bwd"].with_name("moved")
    lm_runs["char-bwd"].rename(moved)
    try:
        assert main(["tag", str(run), "Paris"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"--lm-features {lm_runs['char-bwd'].resolve()}: not an rnnkit run directory" in err
    finally:
        moved.rename(lm_runs["char-bwd"])


def test_a_language_model_retrained_or_changed_at_its_path_is_one_line_naming_it(lm_runs, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    shutil.copytree(lm_runs["char"], tmp_path / "fwd")
    train, run = conll(tmp_path / "train.conll"), tmp_path / "tagger"
    assert main(["train", "tagger", str(train), "--run", str(run), "--lm-features", str(tmp_path / "fwd"), "--max-steps", "2", *TAGGER_SMALL]) == 0
    assert main(["tag", str(run), "Paris"]) == 0
    capsys.readouterr()
    weights = load_file(tmp_path / "fwd" / "best.safetensors")
    save_file({k: v + 0.01 if i == 0 else v for i, (k, v) in enumerate(weights.items())}, tmp_path / "fwd" / "best.safetensors")
    for command in (["tag", str(run), "Paris"], ["train", "tagger", "--resume", "--run", str(run), "--max-steps", "4"]):
        assert main(command) == 2
        err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("language-model features:")]  # resume describes them first
        # the weights against the language model's own checkpoints: changed after it was trained
        assert len(err) == 1 and f"{tmp_path / 'fwd'}" in err[0] and "best.safetensors: changed after rnnkit wrote it" in err[0], err
    # and a new run given it: trained on states of edited weights, silently
    assert main(["train", "tagger", str(train), "--run", str(tmp_path / "new"), "--lm-features", str(tmp_path / "fwd"), "--max-steps", "2", *TAGGER_SMALL]) == 2
    assert "best.safetensors: changed after rnnkit wrote it" in capsys.readouterr().err and not (tmp_path / "new").exists()
    shutil.rmtree(tmp_path / "fwd")
    text = tmp_path / "text.txt"
    text.write_text("\n".join(words for words, _ in SENTENCES * 4) + "\n")
    assert main(["train", "lm", str(text), "--run", str(tmp_path / "fwd"), "--level", "char", *LM_SMALL, "--hidden-size", "16"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), str(train)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its hidden size is 16, the run was trained with 12" in err[0]


@pytest.mark.parametrize("kind", ["tagger", "missing", "empty"])
def test_a_run_that_is_no_language_model_is_one_line_naming_it(lm_runs, tmp_path, capsys, kind):
    """``{}`` as config.json (damaged) was "a None run; --lm-features takes language-model (lm) runs"."""
    train = conll(tmp_path / "train.conll")
    other = tmp_path / "other"
    if kind == "tagger":
        assert main(["train", "tagger", str(train), "--run", str(other), "--max-steps", "1", *TAGGER_SMALL]) == 0
    if kind == "empty":
        shutil.copytree(lm_runs["char"], other)
        (other / "config.json").write_text("{}")
    capsys.readouterr()
    for option in ("--lm-features", "--init-from") if kind == "empty" else ("--lm-features",):
        args = ["train", "classifier", str(tmp_path / "train.tsv")] if option == "--init-from" else ["train", "tagger", str(train), *TAGGER_SMALL]
        (tmp_path / "train.tsv").write_text("pos\ta fine film\nneg\ta dull film\n")
        assert main([*args, "--run", str(tmp_path / "t"), option, str(other)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert {"tagger": f"--lm-features {other}: a tagger run; --lm-features takes language-model (lm) runs",
                "missing": f"--lm-features {other}: not an rnnkit run directory",
                "empty": f"{other / 'config.json'}: damaged (no 'task', 'model', 'data' section)"}[kind] in err, err
    assert not (tmp_path / "t").exists()


def test_a_classifier_with_lm_features_trains_classifies_and_resumes(lm_runs, tmp_path, capsys):
    train, run = tmp_path / "train.tsv", tmp_path / "classifier"
    train.write_text("".join(f"{label}\t{text}\n" for label, text in [("pos", "Paris is great"), ("neg", "sale is over"), ("pos", "Teddy bears"), ("neg", "zzz !")] * 2))
    small = ["--embedding-size", "4", "--hidden-size", "3", "--engine", "reference", "--no-progress", "--batch-size", "2", "--level", "whitespace"]
    spec = f"{lm_runs['word']},{lm_runs['char-bwd']}"
    assert main(["train", "classifier", str(train), "--valid", str(train), "--run", str(run), "--lm-features", spec, "--max-steps", "2", *small]) == 0
    assert json.loads((run / "config.json").read_text())["model"]["lm_features_size"] == 24
    capsys.readouterr()
    assert main(["classify", str(run), "--json", "Paris is great", "zzz qqq"]) == 0
    assert [len(json.loads(line)["probabilities"]) for line in capsys.readouterr().out.splitlines()] == [2, 2]
    assert main(["train", "classifier", "--resume", "--run", str(run), "--max-steps", "3"]) == 0
    from rnnkit.runs import open_run

    task, model, _, device = open_run(run)
    words = [["Paris", "is", "great"]]
    expected = task.lm_features.features(words)  # (3, 1, 24): what the classifier reads beside its embeddings
    seen = {}
    model.recurrent.register_forward_pre_hook(lambda module, args, kwargs: seen.update(x=args[0]), with_kwargs=True)
    task.probabilities(model, ["Paris is great"], device)
    assert torch.equal(seen["x"][..., 4:], expected)
    assert task.probabilities(model, ["", "Paris"], device).shape == (2, 2)  # an empty text: one <UNK>, one feature
    assert main(["train", "classifier", str(train), "--lm-features", spec, "--level", "char", "--run", str(tmp_path / "c"), *small[:-2]]) == 2
    assert "--lm-features gives features of words: it needs --level word or whitespace, not char" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["another level", "a vocabulary one short"])
def test_a_language_model_whose_files_do_not_belong_together_is_refused_as_the_verbs_refuse_it(lm_runs, tmp_path, capsys, damage):
    """A word-level run given a character tokenizer, or a vocab.json one token short, gave features
    silently (and its level was recorded wrong) where every verb refused the run."""
    lm = tmp_path / "lm"
    shutil.copytree(lm_runs["word"], lm)
    if damage == "another level":
        (lm / "tokenizer.json").write_text(json.dumps({"kind": "char", "lowercase": False}))
    else:
        tokens = json.loads((lm / "vocab.json").read_text())["tokens"]
        (lm / "vocab.json").write_text(json.dumps({"tokens": tokens[:-1]}))
    capsys.readouterr()
    assert main(["train", "tagger", str(conll(tmp_path / "train.conll")), "--run", str(tmp_path / "t"), "--lm-features", str(lm), *TAGGER_SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--lm-features {lm}: " in err and "changed after rnnkit wrote it" in err, err  # against its checkpoints
    shutil.rmtree(lm / "checkpoints")  # the files copied without their checkpoints: found not to belong together
    assert main(["train", "tagger", str(conll(tmp_path / "train.conll")), "--run", str(tmp_path / "t"), "--lm-features", str(lm), *TAGGER_SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--lm-features {lm}: " in err and "do not belong together" in err, err
    assert not (tmp_path / "t").exists()
