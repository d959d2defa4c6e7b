"""The regularisers of rnnkit.regularisers (AWD-LSTM, Merity et al. 2017), each by its defining
property: DropConnect zeroes recurrent weights for the whole pass and the gradient flows only
through the kept ones, on every engine alike; locked dropout shares one mask over time; embedding
dropout drops whole words; AR/TAR add their formula to the training loss; NT-ASGD's average is the
mean of the iterates since it started, and survives a resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from rnnkit.errors import UsageError
from rnnkit.models import build_model
from rnnkit.recurrent import Recurrent
from rnnkit.regularisers import Embedding, LockedDropout, activation_penalty, same_masks
from rnnkit.tasks.language_model import LanguageModelTask, LMDataConfig
from rnnkit.training import RunDir, Trainer, TrainingConfig
from regression_task import Regression


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch):
    monkeypatch.setenv("RNNKIT_TEST_NO_FSYNC", "1")


def recorded_weights(cell: nn.Module) -> list[torch.Tensor]:
    """The ``weight`` the cell computes with at each step (the reference engine calls the cell)."""
    seen = []
    cell.register_forward_hook(lambda m, args, out: seen.append(m.weight.detach().clone()))
    return seen


# -- DropConnect on the recurrent weights ------------------------------------------------------------------
def test_weight_drop_zeroes_recurrent_weights_for_the_pass_and_the_gradient_flows_only_through_kept_ones():
    torch.manual_seed(0)
    p, n_a = 0.4, 32
    layer = Recurrent("lstm", 5, n_a, weight_drop=p, engine="reference").double()
    seen = recorded_weights(layer.cells["l0"])
    x = torch.randn(6, 3, 5, dtype=torch.float64)
    out, _ = layer(x)
    out.pow(2).sum().backward()
    assert len(seen) == 6 and all(torch.equal(w, seen[0]) for w in seen)  # one mask for every step of the pass
    w, param = seen[0], layer.cells["l0"].weight
    dropped = w[:, :n_a] == 0
    assert abs(dropped.double().mean().item() - p) < 0.05  # 4096 entries: the fraction is p within 3 %
    torch.testing.assert_close(w[:, :n_a][~dropped], param.detach()[:, :n_a][~dropped] / (1 - p))  # kept: scaled
    assert torch.equal(w[:, n_a:], param.detach()[:, n_a:])  # W_x whole
    grad = param.grad[:, :n_a]
    assert torch.all(grad[dropped] == 0) and torch.all(grad[~dropped] != 0)
    # the next pass draws a new mask; eval mode computes with the parameter itself
    layer(x)
    assert not torch.equal(seen[-1], seen[0])
    layer.eval()
    layer(x)
    assert torch.equal(seen[-1], param.detach())


@pytest.mark.parametrize("cell,engines", [("lstm", ["fused", "native"]), ("gru", ["fused"]), ("gru-cudnn", ["fused", "native"]), ("rnn", ["fused", "native"])])
def test_weight_drop_every_engine_equals_the_reference_with_the_same_mask(cell, engines):
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    results = {}
    for engine in ["reference", *engines]:
        torch.manual_seed(0)  # same weights, then the same masks
        layer = Recurrent(cell, 4, 6, num_layers=2, bidirectional=True, dropout=0.3, locked_dropout=True, weight_drop=0.5, engine=engine).double()
        inputs = x.clone().requires_grad_()
        out, _ = layer(inputs, lengths=[5, 2, 4])
        out.pow(2).sum().backward()
        results[engine] = [out.detach(), inputs.grad, *(c.weight.grad for c in layer.cells.values())]
    for engine in engines:
        for got, want in zip(results[engine], results["reference"]):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_weight_drop_out_of_range_is_one_line():
    with pytest.raises(UsageError, match=r"weight_drop must lie in \[0, 1\), got 1"):
        Recurrent("lstm", 2, 3, weight_drop=1)


# -- locked dropout ----------------------------------------------------------------------------------------
def test_locked_dropout_one_mask_per_sequence_shared_over_time():
    torch.manual_seed(0)
    y = LockedDropout(0.5).train()(torch.ones(7, 4, 64))  # (T, B, F)
    assert all(torch.equal(y[t], y[0]) for t in range(7))
    assert all(not torch.equal(y[0, b], y[0, 0]) for b in range(1, 4))
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(LockedDropout(0.5).eval()(y), y)


def test_locked_dropout_between_layers_and_across_step_by_step_calls():
    torch.manual_seed(0)
    layer = Recurrent("gru", 3, 40, num_layers=2, dropout=0.5, locked_dropout=True, engine="reference")
    seen = []  # the inputs of layer 1 at each step: layer 0's dropped outputs
    layer.cells["l1"].register_forward_hook(lambda m, args, out: seen.append(args[0].detach() == 0))
    layer(torch.randn(6, 4, 3))
    assert all(torch.equal(z, seen[0]) for z in seen) and seen[0].any()  # the same units dropped at every step
    assert not all(torch.equal(seen[0][b], seen[0][0]) for b in range(1, 4))  # ... but not in every sequence
    seen.clear()
    with same_masks(layer):  # a decoder called one step at a time keeps its masks for the sequence
        for _ in range(4):
            layer(torch.randn(1, 4, 3))
    assert all(torch.equal(z, seen[0]) for z in seen)


@pytest.mark.parametrize("kind,config", [
    ("lm", dict(vocab_size=20)),
    ("classifier", dict(vocab_size=20, num_classes=3)),
    ("tagger", dict(vocab_size=20, num_tags=3)),
    ("seq2seq", dict(source_vocab_size=20, target_vocab_size=20, input_feeding=True)),
    ("piano-roll", dict()),
])  # fmt: skip
def test_every_model_with_recurrent_layers_takes_the_regularisers_and_eval_is_untouched(kind, config):
    options = dict(locked_dropout=True, weight_drop=0.5, dropout=0.3, hidden_size=8, engine="reference")
    if kind != "piano-roll":
        options["embedding_dropout"] = 0.2
    model = build_model(kind, {**config, **options})
    layers = [m for m in model.modules() if isinstance(m, Recurrent) and m.hidden_size == 8]
    assert layers and all(m.weight_drop == 0.5 and m.locked_dropout for m in layers)
    assert any(isinstance(m, LockedDropout) for m in model.modules())
    assert kind == "piano-roll" or any(isinstance(m, Embedding) and m.dropout == 0.2 for m in model.modules())
    assert model.config()["weight_drop"] == 0.5


# -- embedding dropout -------------------------------------------------------------------------------------
def test_embedding_dropout_drops_whole_words_for_the_batch():
    torch.manual_seed(0)
    p = 0.5
    embedding = Embedding(12, 6, dropout=p).train()
    ids = torch.randint(0, 12, (30, 5))  # every word many times
    out = embedding(ids)
    zero = (out == 0).all(-1)  # (T, B): the word's whole embedding is zero
    for word in ids.unique().tolist():
        at = ids == word
        assert zero[at].all() or not zero[at].any()  # zero at every occurrence or at none
        if not zero[at].any():
            torch.testing.assert_close(out[at], embedding.weight.detach()[word].expand(int(at.sum()), -1) / (1 - p))
    dropped = {w for w in ids.unique().tolist() if zero[ids == w].all()}
    assert 0 < len(dropped) < 12
    assert torch.equal(embedding.eval()(ids), embedding.weight.detach()[ids])


def test_the_language_model_looks_its_inputs_up_with_one_mask():
    torch.manual_seed(0)
    model = build_model("lm", dict(vocab_size=6, embedding_size=4, hidden_size=4, embedding_dropout=0.5, engine="reference")).train()
    tokens = torch.tensor([[1, 2, 3, 4, 5, 1, 2, 3, 4, 5]]).t()  # (T, 1)
    previous = torch.tensor([5])
    x = model.inputs(tokens, previous)  # x<1> = e(previous) and x<t> = e(y<t-1>) share the mask
    ids = torch.cat([previous, tokens[:-1, 0]])
    zero = (x[:, 0] == 0).all(-1)
    for word in range(1, 6):
        assert zero[ids == word].all() or not zero[ids == word].any()


# -- AR and TAR --------------------------------------------------------------------------------------------
def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def lm_task(tmp_path) -> LanguageModelTask:
    names = ["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ida", "jon", "kara", "leo"] * 2
    return LanguageModelTask.prepare(LMDataConfig(train=[write(tmp_path / "names.txt", names)], batch_size=4))[0]


def test_ar_and_tar_add_their_formula_to_the_training_loss_only(tmp_path):
    task = lm_task(tmp_path)
    batch = next(iter(task.train_batches(0, 0)))
    alpha, beta, p = 2.0, 1.0, 0.3
    torch.manual_seed(0)
    model = build_model("lm", task.model_config({"embedding_size": 5, "hidden_size": 7, "dropout": p, "ar_alpha": alpha, "tar_beta": beta}))
    plain = build_model("lm", task.model_config({"embedding_size": 5, "hidden_size": 7, "dropout": p}))
    plain.load_state_dict(model.state_dict())
    model.train(), plain.train()
    torch.manual_seed(1)
    total, count = task.loss(model, batch, "cpu")
    torch.manual_seed(1)
    base, _ = task.loss(plain, batch, "cpu")
    # the formula by hand: the same masks, drawn in the same order as in the model's forward
    torch.manual_seed(1)
    x = plain.input_dropout(plain.inputs(batch.tokens, batch.previous))
    a, _ = plain.recurrent(x, lengths=batch.lengths)  # (T, B, n_a)
    dropped = plain.dropout(a)
    real = torch.arange(a.shape[0])[:, None] < batch.lengths[None, :]  # (T, B)
    ar = alpha * dropped[real].pow(2).mean()
    pairs = real[1:] & real[:-1]
    tar = beta * (a[1:] - a[:-1])[pairs].pow(2).mean()
    assert batch.lengths.min() < batch.lengths.max()  # padding is left out of both means
    torch.testing.assert_close((total - base) / count, ar + tar)
    model.eval()
    evaluated, _ = task.loss(model, batch, "cpu")
    plain.eval()
    torch.testing.assert_close(evaluated, task.loss(plain, batch, "cpu")[0])  # no penalty outside training


def test_activation_penalty_checks_its_inputs_and_takes_lengths_as_a_list():
    a = torch.randn(5, 2, 3)
    torch.testing.assert_close(activation_penalty(a, a, [5, 2], 2.0, 1.0), activation_penalty(a, a, torch.tensor([5, 2]), 2.0, 1.0))
    for lengths in ([9, 2], [0, 2]):  # past T, or none at all: were read silently
        with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
            activation_penalty(a, a, lengths, 2.0, 1.0)
    with pytest.raises(ValueError, match=r"of one shape \(T, B, n_a\), got \(5, 2, 3\) and \(5, 2, 1\)"):
        activation_penalty(a, a[:, :, :1], None, 2.0, 1.0)  # was broadcast
    with pytest.raises(ValueError, match=r"0 or more; got -1.0"):
        activation_penalty(a, a, None, -1.0, 1.0)
    with pytest.raises(ValueError, match=r"0 or more; got nan"):
        activation_penalty(a, a, None, float("nan"), 1.0)


def test_activation_penalty_of_an_unpadded_batch():
    a = torch.arange(12.0).view(3, 2, 2)  # a<t> - a<t-1> = 4 everywhere
    torch.testing.assert_close(activation_penalty(a, a, None, 0.0, 0.5), torch.tensor(0.5 * 16))
    torch.testing.assert_close(activation_penalty(a, 2 * a, None, 1.0, 0.0), (2 * a).pow(2).mean())


def test_a_run_keeps_its_regularisers_and_its_loaded_model_computes_without_them(tmp_path):
    from rnnkit.runs import open_run, start

    names = write(tmp_path / "names.txt", ["anna", "bob", "carla", "dave", "emma", "fred"] * 4)
    options = dict(weight_drop=0.4, locked_dropout=True, embedding_dropout=0.2, dropout=0.3, ar_alpha=2.0, tar_beta=1.0)
    values = {"train": [names], "batch_size": 4, "embedding_size": 4, "hidden_size": 6, "max_steps": 2, "progress": False, **options}
    run, _ = start("lm", values, tmp_path / "run")
    config = run.read_json("config.json")["model"]
    assert {k: config[k] for k in options} == options
    _, model, _, _ = open_run(run.path, device="cpu")
    assert model.recurrent.weight_drop == 0.4 and model.embedding.dropout == 0.2 and not model.training
    tokens = torch.randint(1, 5, (6, 2))
    torch.testing.assert_close(model(tokens).logits, model(tokens).logits)  # eval: no mask drawn, the same every call


# -- NT-ASGD -----------------------------------------------------------------------------------------------
def nt_fit(run: Path, resume: bool = False, model: nn.Module | None = None, **settings):
    torch.manual_seed(0)
    model = model or nn.Linear(2, 1)
    config = TrainingConfig(**{"lr": 0.02, "optimizer": "nt-asgd", "nt_patience": 2, "schedule": "constant", "eval_every": 2,
                               "max_steps": 12, "progress": False, **settings})  # fmt: skip
    # 4 batches per epoch; the validation loss improves once (on inf) and never again: NT-ASGD's trigger fires after nt_patience more
    return Trainer(Regression(batches=4, constant_valid=1.0), model, config, RunDir(run)).fit(resume=resume)


def test_nt_asgd_averages_the_iterates_once_validation_stops_improving(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    seen = []  # the weights each step starts from: θ0 .. θ11
    model.register_forward_pre_hook(lambda m, args: seen.append({k: v.detach().clone() for k, v in m.state_dict().items()}))
    nt_fit(tmp_path / "run", model=model)
    # evaluations at steps 2 (best), 4, 6 (two without improvement): averaging starts after step 6
    last = load_file(tmp_path / "run" / "last.safetensors")  # θ12
    iterates = [*seen[7:], last]  # θ7 .. θ12
    assert len(iterates) == 6
    average = load_file(tmp_path / "run" / "ema.safetensors")
    for k in average:
        torch.testing.assert_close(average[k], torch.stack([theta[k] for theta in iterates]).mean(0))
        assert not torch.equal(average[k], last[k])


@pytest.mark.parametrize("stop", [5, 9])  # before averaging started, and after
def test_nt_asgd_resumes_exactly(tmp_path, stop):
    whole = nt_fit(tmp_path / "whole")
    stopped = nt_fit(tmp_path / "parts", stop_at_step=stop)
    assert not stopped["finished"] and stopped["steps"] == stop
    resumed = nt_fit(tmp_path / "parts", resume=True)
    assert resumed["steps"] == whole["steps"] == 12
    for name in ("last", "ema", "best"):
        a, b = load_file(tmp_path / "whole" / f"{name}.safetensors"), load_file(tmp_path / "parts" / f"{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_nt_asgd_and_ema_are_refused_together(tmp_path):
    with pytest.raises(UsageError, match="--ema and --optimizer nt-asgd"):
        nt_fit(tmp_path / "run", ema=0.9)
