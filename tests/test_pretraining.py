"""Language-model pre-training for the other tasks (issue 21, point 2): reversed language models
(``rnnkit train lm --reverse``) and classifiers started from a language-model run (``--init-from``)
with ULMFiT's fine-tuning options."""

from __future__ import annotations

import csv
import json

import numpy as np

from rnnkit.cli import main
from rnnkit.tasks.language_model import ReversedIds, ReversedSplit

LM_SMALL = ["--hidden-size", "16", "--embedding-size", "8", "--engine", "reference", "--no-progress", "--lr", "0.05"]


class Split:  # the interface of a prepared corpus split, in memory
    def __init__(self, lines):
        self.ids = np.concatenate(lines)
        self.offsets = np.cumsum([0] + [len(line) for line in lines])
        self.num_tokens = len(self.ids)

    def __len__(self):
        return len(self.offsets) - 1

    def sentence(self, i):
        return self.ids[self.offsets[i] : self.offsets[i + 1]].astype(np.int64)

    def lengths(self, lines):
        return self.offsets[lines + 1] - self.offsets[lines]


def test_a_reversed_split_reads_each_line_backwards_with_its_terminator_last():
    split = ReversedSplit(Split([np.array([5, 6, 7, 2]), np.array([8, 2])]))
    assert split.sentence(0).tolist() == [7, 6, 5, 2] and split.sentence(1).tolist() == [8, 2]
    assert split.lengths(np.array([0, 1])).tolist() == [4, 2] and len(split) == 2
    stream = ReversedIds(np.arange(10))
    assert [stream[a:b].tolist() for a, b in ((0, 3), (4, 10), (8, 20))] == [[9, 8, 7], [5, 4, 3, 2, 1, 0], [1, 0]]


def test_a_reversed_language_model_trains_samples_and_scores_backwards(tmp_path, capsys):
    data, valid, run = tmp_path / "lines.txt", tmp_path / "valid.txt", tmp_path / "rev"
    data.write_text("abcd\n" * 400)
    valid.write_text("abcd\n")
    code = main(["train", "lm", str(data), "--valid", str(valid), "--reverse", "--run", str(run), "--epochs", "1", "--batch-size", "8", *LM_SMALL])
    assert code == 0, capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["data"]["reverse"] is True
    capsys.readouterr()
    assert main(["score", str(run), "--json", "abcd"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reversed"] and [row["token"] for row in result["tokens"]] == ["d", "c", "b", "a", "<EOS>"]
    assert all(row["prob"] > 0.5 for row in result["tokens"])  # learned backwards: d first, then c, b, a
    assert main(["sample", str(run), "--num", "2", "--seed", "1", "--temperature", "0.3"]) == 0
    assert capsys.readouterr().out.split() == ["abcd", "(seen", "in", "training", "data)"] * 2  # printed in reading order
    assert main(["sample", str(run), "--num", "1", "--seed", "1", "--temperature", "0.3", "--prime", "cd"]) == 0
    assert capsys.readouterr().out.startswith("abcd")  # the prime is the line's end
    lower = tmp_path / "rev-lower"
    assert main(["train", "lm", str(data), "--reverse", "--lowercase", "--run", str(lower), "--epochs", "1", "--batch-size", "8", *LM_SMALL]) == 0
    capsys.readouterr()
    assert main(["sample", str(lower), "--num", "1", "--seed", "1", "--temperature", "0.3", "--prime", "cD"]) == 0
    assert capsys.readouterr().out.split("\t")[0].endswith("cD")  # printed as typed (was "cd"), as a forward model prints it


# -- classifiers started from language models (--init-from) and ULMFiT's fine-tuning --------------------------
from rnnkit.errors import UsageError  # noqa: E402
from rnnkit.files import RunDir  # noqa: E402
from rnnkit.models import build_model  # noqa: E402
from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask  # noqa: E402
from rnnkit.training.optim import make_optimizer, make_schedule, unfreeze_top  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

LM_CONFIG = dict(kind="lm", vocab_size=7, cell="gru", embedding_size=6, hidden_size=5, num_layers=2)


def language_model_run(path, reverse: bool, seed: int, num_layers: int = 2, level: str = "whitespace"):
    """A language-model run directory as rnnkit train lm leaves it (config, vocabulary, best weights)."""
    torch.manual_seed(seed)
    config = {**LM_CONFIG, "num_layers": num_layers}
    model = build_model("lm", {k: v for k, v in config.items() if k != "kind"})
    run = RunDir(path)
    run.path.mkdir(parents=True)
    run.write_json("config.json", {"task": "lm", "data": {"reverse": reverse, "level": level}, "model": config})
    run.write_json("vocab.json", {"tokens": ["<PAD>", "<UNK>", "<EOS>", "good", "Bad", "film", "plot"]})
    run.save_weights("best", model)
    return model


def reviews(tmp_path) -> str:
    path = tmp_path / "r.tsv"
    path.write_text("".join(f"{label}\t{text}\n" for label, text in [("1", "good film"), ("0", "bad plot"), ("0", "bad unseen")] * 4))
    return str(path)


def test_the_encoder_starts_as_the_language_models(tmp_path, capsys):
    data = reviews(tmp_path)
    for layers, bidirectional in ((2, False), (1, True)):  # one run: the layers read one way; two (one-layer) runs: both ways
        forward = language_model_run(tmp_path / f"fwd{layers}", False, 0, layers)
        backward = language_model_run(tmp_path / f"bwd{layers}", True, 1, layers)
        runs = f"{tmp_path / f'fwd{layers}'},{tmp_path / f'bwd{layers}'}" if bidirectional else str(tmp_path / f"fwd{layers}")
        task, record = ClassificationTask.prepare(ClassificationDataConfig(train=[data], init_from=runs))
        config = task.model_config({})
        assert (config["cell"], config["hidden_size"], config["num_layers"], config["embedding_size"], config["bidirectional"]) == ("gru", 5, layers, 6, bidirectional)
        model = build_model("classifier", config)
        task.initialise(model)
        for name, value in forward.recurrent.state_dict().items():
            assert torch.equal(model.recurrent.state_dict()[name], value), name
        if bidirectional:
            for name, value in backward.recurrent.state_dict().items():
                assert torch.equal(model.recurrent.state_dict()[name.replace("cells.l0.", "cells.l0_reverse.")], value), name
        # the classifier's words (lowercased) take the model's rows; "bad" by lowercase; "unseen" keeps its own
        assert torch.equal(model.embedding.weight[task.vocab.ids["bad"]], forward.embedding.weight[4])
        assert torch.equal(model.embedding.weight[task.vocab.ids["film"]], forward.embedding.weight[5])
        assert record["init_from"]["embedding"]["found"] == 4 and record["init_from"]["embedding"]["words"] == 5
    assert "encoder from" in capsys.readouterr().err


def test_init_from_refuses_incompatible_settings_and_runs(tmp_path):
    language_model_run(tmp_path / "fwd", False, 0)
    language_model_run(tmp_path / "bwd", True, 1)
    data = reviews(tmp_path)
    task, _ = ClassificationTask.prepare(ClassificationDataConfig(train=[data], init_from=str(tmp_path / "fwd")))
    with pytest.raises(UsageError, match="--hidden-size 64: the encoder comes from .*, whose hidden size is 5; leave --hidden-size unset"):
        task.model_config({"hidden_size": 64})
    with pytest.raises(UsageError, match="--bidirectional: .* whose bidirectional is False; leave --bidirectional unset"):
        task.model_config({"bidirectional": True})
    language_model_run(tmp_path / "fwd1", False, 0, num_layers=1)
    language_model_run(tmp_path / "bwd1", True, 1, num_layers=1)
    pair, _ = ClassificationTask.prepare(ClassificationDataConfig(train=[data], init_from=f"{tmp_path / 'fwd1'},{tmp_path / 'bwd1'}"))
    with pytest.raises(UsageError, match="^--one-direction: .* whose bidirectional is True; leave --one-direction unset"):
        pair.model_config({"bidirectional": False})  # named as typed: there is no "--bidirectional False"
    assert task.model_config({"hidden_size": 5, "dropout": 0.1})["dropout"] == 0.1  # the same value, and settings of its own, pass
    # a cell setting the encoder's cell lacks, or has otherwise (its default when unrecorded), was dropped silently
    with pytest.raises(UsageError, match="--peepholes: the encoder comes from .*, whose gru cell has no peepholes"):
        task.model_config({"peepholes": True})
    with pytest.raises(UsageError, match="--nonlinearity relu: the encoder comes from .*, whose gru cell has no nonlinearity"):
        task.model_config({"nonlinearity": "relu"})
    with pytest.raises(UsageError, match="bwd must be a forward model"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[data], init_from=f"{tmp_path / 'bwd'},{tmp_path / 'fwd'}"))
    with pytest.raises(UsageError, match="needs one-layer models; these have 2"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[data], init_from=f"{tmp_path / 'fwd'},{tmp_path / 'bwd'}"))
    with pytest.raises(UsageError, match="not an rnnkit run directory"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[data], init_from=str(tmp_path / "none")))
    language_model_run(tmp_path / "chars", False, 0, level="char")  # train lm's default level, a classifier's whitespace
    with pytest.raises(UsageError, match="a language model of --level char, and this classifier reads --level whitespace"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[data], init_from=str(tmp_path / "chars")))


def classifier(num_layers: int = 2):
    torch.manual_seed(0)
    return build_model("classifier", dict(vocab_size=9, num_classes=3, embedding_size=4, hidden_size=3, num_layers=num_layers, dropout=0.0))


def test_discriminative_learning_rates_per_layer_group():
    model = classifier()
    groups = model.layer_groups()
    assert len(groups) == 4 and sum(len(g) for g in groups) == len(list(model.parameters()))  # embedding, 2 layers, the rest
    optimizer = make_optimizer("adamw", model, 0.1, discriminative=2.6)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.1 / 2.6**3, 0.1 / 2.6**2, 0.1 / 2.6, 0.1])
    assert [len(g["params"]) for g in optimizer.param_groups] == [len(g) for g in groups]
    # the slanted triangular schedule scales each group's own rate: lr/32 at the start, lr at 10% of the steps, lr/32 at the end
    schedule = make_schedule("slanted", optimizer, total_steps=100)
    factors = []
    for _ in range(100):
        factors.append(optimizer.param_groups[0]["lr"] / (0.1 / 2.6**3))
        optimizer.step()
        schedule.step()
    assert factors[0] == pytest.approx(1 / 32) and factors[10] == pytest.approx(1) and factors[99] == pytest.approx((1 + 31 / 90) / 32)
    assert max(factors) == factors[10] and factors[5] == pytest.approx((1 + 0.5 * 31) / 32)
    with pytest.raises(UsageError, match="--discriminative-lr: a lm model has no layer groups"):
        make_optimizer("adamw", build_model("lm", dict(vocab_size=5, embedding_size=2, hidden_size=2)), 0.1, discriminative=2.6)


def test_gradual_unfreezing_leaves_the_frozen_groups_untouched():
    model = classifier()
    before = [[p.detach().clone() for p in group] for group in model.layer_groups()]
    optimizer = make_optimizer("adamw", model, 0.1, weight_decay=0.1)
    unfreeze_top(model, 1)  # epoch 1: the top group only
    tokens = torch.tensor([[3, 4], [5, 6], [7, 8]])  # (T, B)
    torch.nn.functional.cross_entropy(model(tokens).logits, torch.tensor([0, 2])).backward()
    optimizer.step()
    groups = model.layer_groups()
    for group, old in zip(groups[:-1], before[:-1]):
        assert all(p.grad is None and torch.equal(p, q) for p, q in zip(group, old))  # no gradient, no update, no decay
    assert all(not torch.equal(p, q) for p, q in zip(groups[-1], before[-1]))
    unfreeze_top(model, 2)  # epoch 2: the last recurrent layer joins
    assert all(p.requires_grad for p in groups[2]) and not any(p.requires_grad for p in groups[1])


def test_init_from_and_gradual_unfreezing_from_the_command_line(tmp_path, capsys):
    forward = language_model_run(tmp_path / "fwd", False, 0)
    run = tmp_path / "run"
    code = main(["train", "classifier", reviews(tmp_path), "--init-from", str(tmp_path / "fwd"), "--gradual-unfreezing", "--epochs", "1",
                 "--discriminative-lr", "2.6", "--schedule", "slanted", "--engine", "reference", "--no-progress", "--run", str(run)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["hidden_size"] == 5 and config["split"]["init_from"]["runs"] == [str(tmp_path / "fwd")]
    assert config["training"]["discriminative_lr"] == 2.6 and config["training"]["gradual_unfreezing"]
    trained = build_model("classifier", {k: v for k, v in config["model"].items() if k != "kind"})
    RunDir(run).load_weights("last", trained)
    for name, value in forward.recurrent.state_dict().items():  # frozen through epoch 1
        assert torch.equal(trained.recurrent.state_dict()[name], value), name
    # metrics.csv's lr is the top layers' (the rate given), not the embedding group's lr / 2.6^depth
    steady = tmp_path / "steady"
    assert main(["train", "classifier", reviews(tmp_path), "--init-from", str(tmp_path / "fwd"), "--discriminative-lr", "2.6", "--lr", "0.002",
                 "--schedule", "constant", "--max-steps", "2", "--log-every", "1", "--no-progress", "--run", str(steady)]) == 0  # fmt: skip
    assert {row["lr"] for row in csv.DictReader(open(steady / "metrics.csv")) if row["split"] == "train"} == {"0.002"}
    code = main(["train", "classifier", reviews(tmp_path), "--init-from", str(tmp_path / "fwd"), "--num-layers", "3", "--run", str(tmp_path / "bad")])
    assert code == 2 and "--num-layers 3: the encoder comes from" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_a_resume_from_a_checkpoint_reads_no_init_from_run_and_one_before_it_names_a_run_that_no_longer_fits(tmp_path, monkeypatch):
    """--resume read the --init-from run again though the checkpoint holds the weights: replaced by a
    language model of other layers, a RuntimeError traceback (loading state_dict); moved, refused."""
    import shutil

    from rnnkit.errors import DataError
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    language_model_run(tmp_path / "fwd", False, 0, num_layers=1)
    start("classifier", {"train": [reviews(tmp_path)], "init_from": "fwd", "max_steps": 4, "stop_at_step": 2, "progress": False}, "run")
    shutil.copytree("run", "fresh")
    for name in ("checkpoints", "last.safetensors", "best.safetensors", "training_state.pt", "summary.json"):  # as before its first checkpoint
        shutil.rmtree(f"fresh/{name}") if (tmp_path / "fresh" / name).is_dir() else (tmp_path / "fresh" / name).unlink()
    shutil.rmtree(tmp_path / "fwd")
    language_model_run(tmp_path / "fwd", False, 0, num_layers=2)  # another language model in its place
    assert resume("run", {"stop_at_step": 3, "progress": False})[1]["steps"] == 3
    with pytest.raises(DataError, match=r"^fresh: has no checkpoint yet, so it starts again from --init-from fwd, which no longer fits the model"):
        resume("fresh", {"progress": False})
    shutil.rmtree(tmp_path / "fwd")  # moved away
    assert resume("run", {"progress": False})[1]["finished"]


# -- a classifier started from a trained classifier (--init-from CLASSIFIER_RUN): fine-tuning on other texts ---------
def rated(tmp_path, name: str, rows) -> str:
    path = tmp_path / name
    path.write_text("".join(f"{label}\t{text}\n" for label, text in rows))
    return str(path)


SMALL_CLASSIFIER = ["--hidden-size", "4", "--embedding-size", "3", "--pooling", "attention", "--head-sizes", "5", "--dropout", "0.2",
                    "--engine", "reference", "--no-progress"]  # fmt: skip


def test_a_classifier_run_starts_every_weight_of_a_new_classifier_with_its_labels(tmp_path, capsys):
    first = tmp_path / "first"
    three = rated(tmp_path, "three.tsv", [("1", "bad film"), ("3", "fine plot"), ("5", "good film")] * 4)
    assert main(["train", "classifier", three, *SMALL_CLASSIFIER, "--max-steps", "3", "--run", str(first)]) == 0, capsys.readouterr().err
    trained = build_model("classifier", {k: v for k, v in json.loads((first / "config.json").read_text())["model"].items() if k != "kind"})
    RunDir(first).load_weights("best", trained)
    old_vocab = RunDir(first).read_vocabulary("vocab.json")
    # the new texts: two of its three labels, first seen in another order, and a word it never read
    two = rated(tmp_path, "two.tsv", [("5", "great film"), ("1", "bad plot")] * 3)
    task, record = ClassificationTask.prepare(ClassificationDataConfig(train=[two], init_from=str(first)))
    assert task.labels == ["1", "3", "5"] and record["init_from"]["runs"] == [str(first)]  # its head's rows, in their order
    config = task.model_config({})
    assert (config["hidden_size"], config["embedding_size"], config["pooling"], config["head_sizes"], config["dropout"]) == (4, 3, "attention", [5], 0.2)
    model = build_model("classifier", config)
    task.initialise(model)
    for name, value in trained.state_dict().items():
        if not name.startswith("embedding."):
            assert torch.equal(model.state_dict()[name], value), name
    # its vocabulary kept, at its ids (a word the new texts lack, "fine", too: it was <UNK> there), the new words after it
    assert task.vocab.tokens == [*old_vocab.tokens, "great"] and "fine" not in open(two).read()
    assert torch.equal(model.embedding.weight[: len(old_vocab.tokens)], trained.embedding.weight)  # every row, the special tokens' too
    assert not any(torch.equal(model.embedding.weight[task.vocab.ids["great"]], row) for row in trained.embedding.weight)  # a new word: its own
    assert record["init_from"]["words"] == {"kept": 5, "added": 1} and record["init_from"]["kind"] == "classifier"
    # regularisers may change, what the weights fix may not
    assert task.model_config({"dropout": 0.5, "hidden_size": 4})["dropout"] == 0.5
    for given, said in (({"hidden_size": 8}, "--hidden-size 8: the classifier comes from .*, whose hidden size is 4; leave --hidden-size unset"),
                        ({"pooling": "max"}, "--pooling max: .* whose pooling is attention"),
                        ({"head_sizes": []}, "^--head-sizes '': the classifier comes from .*, whose head sizes is 5; leave --head-sizes unset")):
        with pytest.raises(UsageError, match=said):
            task.model_config(given)
    # and from the command line: a run that classifies with the first run's labels
    second = tmp_path / "second"
    assert main(["train", "classifier", two, "--init-from", str(first), "--max-steps", "2", "--no-progress", "--run", str(second)]) == 0
    assert json.loads((second / "labels.json").read_text())["labels"] == ["1", "3", "5"]
    assert "classifier from" in capsys.readouterr().err
    assert main(["classify", str(second), "--json", "great film"]) == 0
    assert set(json.loads(capsys.readouterr().out)["probabilities"]) == {"1", "3", "5"}


def test_a_classifier_run_is_refused_as_a_start_when_it_cannot_be_one(tmp_path, capsys):
    import shutil

    from rnnkit.errors import DataError

    first = tmp_path / "first"
    three = rated(tmp_path, "three.tsv", [("1", "bad film"), ("3", "fine plot"), ("5", "good film")] * 4)
    assert main(["train", "classifier", three, *SMALL_CLASSIFIER, "--max-steps", "1", "--run", str(first)]) == 0, capsys.readouterr().err
    def prepare(rows, **settings):
        return ClassificationTask.prepare(ClassificationDataConfig(train=[rated(tmp_path, "new.tsv", rows)], **settings))
    with pytest.raises(DataError, match=r"new.tsv: the labels '4' are not among those of --init-from .*first \('1', '3', '5'\)"):
        prepare([("4", "good film"), ("1", "bad")], init_from=str(first))
    with pytest.raises(UsageError, match="a classifier trained with --lowercase, and this one reads --keep-case"):
        prepare([("5", "good film"), ("1", "bad")], init_from=str(first), lowercase=False)
    with pytest.raises(UsageError, match="a classifier trained with --level whitespace, and this one reads --level char"):
        prepare([("5", "good film"), ("1", "bad")], init_from=str(first), level="char")
    with pytest.raises(UsageError, match="a classifier run starts a classifier alone; give one run"):
        prepare([("5", "good film"), ("1", "bad")], init_from=f"{first},{first}")
    with pytest.raises(UsageError, match="--init-from .*nowhere: not an rnnkit run directory .*; give the run directory of a trained "
                                         "language model \\(rnnkit train lm\\) or classifier \\(rnnkit train classifier\\)$"):
        prepare([("5", "good film"), ("1", "bad")], init_from=str(tmp_path / "nowhere"))
    # its config.json damaged: one line naming it, as the verbs say it
    for edit, said in ((lambda c: c["data"].update(lowercase="yes"), "config.json: damaged \\(lowercase is 'yes'\\)"),
                       (lambda c: c.pop("model"), "config.json: damaged \\(no 'model' section\\)"),
                       (lambda c: c.update(model="x"), "config.json: damaged \\(no 'model' section\\)"),
                       (lambda c: c["model"].update(pooling="nope"), "config.json: unknown pooling 'nope'.*; is .* a complete rnnkit run\\?")):
        damaged = tmp_path / "damaged"
        shutil.rmtree(damaged, ignore_errors=True)
        shutil.copytree(first, damaged)
        config = json.loads((damaged / "config.json").read_text())
        edit(config)
        (damaged / "config.json").write_text(json.dumps(config))
        with pytest.raises((UsageError, DataError), match=said):
            prepare([("5", "good film"), ("1", "bad")], init_from=str(damaged))
    for task, key, value, said in (("classifier", "lm_features", "lm-run", "a classifier trained with --lm-features lm-run"),
                                   ("tagger", None, None, "a tagger run; --init-from takes language-model \\(lm\\) runs or a classifier run")):
        other = tmp_path / f"other-{task}"
        shutil.copytree(first, other)
        config = json.loads((other / "config.json").read_text())
        config["task"] = task
        if key:
            config["data"][key] = value
        (other / "config.json").write_text(json.dumps(config))
        with pytest.raises(UsageError, match=said):
            prepare([("5", "good film"), ("1", "bad")], init_from=str(other))


def test_a_fine_tuned_classifier_keeps_its_start_when_nothing_validates_better_and_resumes_exactly(tmp_path, monkeypatch):
    """Fine-tuning kept the best of its evaluations after training steps only: a start better on the
    validation data than anything after it was lost (SST-5's seed 3: 47.50 dev, 46.70 test, replaced
    by 47.14 dev, 46.47 test)."""
    from safetensors.torch import load_file

    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    data = rated(tmp_path, "easy.tsv", [("pos", "good film"), ("neg", "bad plot")] * 8)
    small = {"hidden_size": 4, "embedding_size": 3, "engine": "reference", "progress": False, "seed": 0}
    first = start("classifier", {"train": [data], "valid": data, "lr": 0.05, "epochs": 30, **small}, "first")[1]
    assert first["best_valid_criterion"] == 0.0  # every validation text right: nothing can do better
    tuned = {"train": [data], "valid": data, "init_from": "first", "lr": 0.05, "eval_every": 2, "max_steps": 6, **small}
    assert start("classifier", tuned, "tuned")[1]["best_valid_criterion"] == 0.0
    started, best = load_file("first/best.safetensors"), load_file("tuned/best.safetensors")
    assert all(torch.equal(best[name], value) for name, value in started.items() if not name.startswith("embedding."))
    assert not torch.equal(load_file("tuned/last.safetensors")["output.weight"], started["output.weight"])  # it did train
    rows = list(csv.DictReader(open("tuned/metrics.csv")))
    assert (rows[0]["step"], rows[0]["split"]) == ("0", "valid")  # the start, validated before the first step
    start("classifier", {**tuned, "stop_at_step": 3}, "paused")
    resume("paused", {"progress": False})
    for name in ("last", "best"):  # a resume goes on as the uninterrupted run did
        a, b = load_file(f"tuned/{name}.safetensors"), load_file(f"paused/{name}.safetensors")
        assert all(torch.equal(a[key], b[key]) for key in a), name
    scores = lambda rows: [(r["step"], r["other"]) for r in rows if r["split"] == "valid"]  # noqa: E731
    assert scores(csv.DictReader(open("paused/metrics.csv"))) == scores(rows) and len(scores(rows)) == 4  # steps 0, 2, 4, 6


def test_a_run_started_from_another_does_not_read_it_again(tmp_path, capsys, monkeypatch):
    """classify, eval and the other verbs refused a fine-tuned (or ULMFiT) classifier once the run it
    started from was damaged, though its weights were copied at the start and are the run's own."""
    monkeypatch.chdir(tmp_path)
    three = rated(tmp_path, "three.tsv", [("1", "bad film"), ("3", "fine plot"), ("5", "good film")] * 4)
    assert main(["train", "classifier", three, *SMALL_CLASSIFIER, "--max-steps", "2", "--run", "first"]) == 0
    assert main(["train", "classifier", three, "--init-from", "first", "--max-steps", "2", "--no-progress", "--run", "tuned"]) == 0
    capsys.readouterr()
    best = tmp_path / "first" / "best.safetensors"
    damaged = best.read_bytes()[:300]
    best.unlink()  # not written through: a hard link into its checkpoint
    best.write_bytes(damaged)
    assert main(["classify", "tuned", "--json", "good film"]) == 0, capsys.readouterr().err
    assert main(["eval", "tuned", three]) == 0
    assert "accuracy" in capsys.readouterr().out
    code = main(["train", "classifier", three, "--init-from", "first", "--max-steps", "2", "--no-progress", "--run", "again"])
    assert code == 2 and "--init-from first: " in capsys.readouterr().err and not (tmp_path / "again").exists()  # read at a start: checked


def test_an_option_of_several_values_is_named_as_typed():
    from rnnkit.settings import typed_option

    assert typed_option("head_sizes", [5, 6]) == "--head-sizes 5,6" and typed_option("head_sizes", []) == "--head-sizes ''"  # not "[5, 6]"


def test_a_fine_tuned_classifier_whose_vocabulary_grew_resumes_exactly_without_the_run_it_started_from(tmp_path, monkeypatch):
    """A resume rebuilt vocab.json and labels.json from the new texts alone: the first run's words
    lost and the others at other ids (a different model, or one no verb would open), and a label of
    the first run that the new texts lack refused in the validation file."""
    import shutil

    from safetensors.torch import load_file

    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    three = rated(tmp_path, "three.tsv", [("1", "bad film"), ("3", "fine plot"), ("5", "good film")] * 4)
    small = {"hidden_size": 4, "embedding_size": 3, "engine": "reference", "progress": False}
    start("classifier", {"train": [three], "max_steps": 3, **small}, "first")
    new = rated(tmp_path, "new.tsv", [("5", "great acting"), ("1", "dull acting"), ("5", "superb film")] * 3)  # new words; no 3
    tuned = {"train": [new], "valid": three, "init_from": "first", "eval_every": 2, "max_steps": 8, "progress": False}
    start("classifier", tuned, "whole")
    start("classifier", {**tuned, "stop_at_step": 3}, "paused")
    vocabulary = (tmp_path / "paused" / "vocab.json").read_bytes()
    shutil.move("first", "elsewhere")  # a resume from a checkpoint does not read it
    assert resume("paused", {"progress": False})[1]["finished"]
    assert (tmp_path / "paused" / "vocab.json").read_bytes() == vocabulary == (tmp_path / "whole" / "vocab.json").read_bytes()
    assert json.loads((tmp_path / "paused" / "labels.json").read_text())["labels"] == ["1", "3", "5"]
    for name in ("last", "best"):
        a, b = load_file(f"whole/{name}.safetensors"), load_file(f"paused/{name}.safetensors")
        assert all(torch.equal(a[key], b[key]) for key in a), name


def test_a_fine_tuned_runs_own_vocabulary_and_labels_are_not_rewritten_from_what_they_were_edited_into(tmp_path, monkeypatch, capsys):
    """A resume said it wrote an edited labels.json again, kept it, and trained on with the labels
    reversed (its start gave them: no data can write them again); before the first checkpoint, a
    replaced start of another vocabulary crashed the resume inside torch (an id past the embedding)."""
    import shutil

    from rnnkit.errors import DataError
    from rnnkit.files import CheckpointError
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    three = rated(tmp_path, "three.tsv", [("1", "bad film"), ("3", "fine plot"), ("5", "good film")] * 4)
    small = {"hidden_size": 4, "embedding_size": 3, "engine": "reference", "progress": False}
    start("classifier", {"train": [three], "max_steps": 3, **small}, "first")
    new = rated(tmp_path, "new.tsv", [("5", "great acting"), ("1", "dull acting")] * 3)
    tuned = {"train": [new], "valid": three, "init_from": "first", "max_steps": 8, "stop_at_step": 3, "progress": False}
    start("classifier", tuned, "tuned")
    capsys.readouterr()
    labels = tmp_path / "tuned" / "labels.json"
    kept = labels.read_bytes()
    labels.write_text(json.dumps({"labels": ["5", "3", "1"]}))
    with pytest.raises(CheckpointError, match=r"labels.json: changed after rnnkit wrote it.*; it came from --init-from first at the run's start, "
                                              r"which a resume does not read again, so it cannot be written again: put the file back"):
        resume("tuned", {"progress": False})
    labels.write_bytes(kept)
    assert resume("tuned", {"progress": False})[1]["finished"]
    assert "classifier from" not in capsys.readouterr().err  # the resume reads the run's own files: no start announced
    # before the first checkpoint: the start replaced by a classifier of other words is one line naming it
    shutil.copytree("tuned", "fresh")
    for name in ("checkpoints", "last.safetensors", "best.safetensors", "training_state.pt", "summary.json"):
        shutil.rmtree(f"fresh/{name}") if (tmp_path / "fresh" / name).is_dir() else (tmp_path / "fresh" / name).unlink()
    shutil.rmtree("first")
    start("classifier", {"train": [rated(tmp_path, "other.tsv", [("1", "awful show"), ("3", "okay"), ("5", "lovely")] * 4)], "max_steps": 1, **small}, "first")
    with pytest.raises(DataError, match=r"^fresh: has no checkpoint yet, so it starts again from --init-from first, which no longer fits"):
        resume("fresh", {"progress": False})
