"""The model registry and the pieces models share (rnnkit/models/registry.py, heads.py): a run is
rebuilt from its ``config.json`` alone, so every registered kind must come back from its own
``config()`` with the same parameters. (What each model computes: the task tests.)"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import rnnkit
from rnnkit.cells import LSTMState, hidden_state, state_tensors
from rnnkit.errors import UsageError
from rnnkit.models import MODELS, build_model
from rnnkit.models.base import Model, ModelOutput, StepModel
from rnnkit.models.heads import final_outputs

# one small configuration per registered kind: a new kind is added here, or the first test says so
SMALL = {
    "lm": dict(vocab_size=20, cell="lstm", embedding_size=6, hidden_size=8, num_layers=2, head_sizes=[5]),
    "classifier": dict(vocab_size=25, num_classes=3, embedding_size=6, hidden_size=7, pooling="attention", bidirectional=True, cell="gru"),
    "tagger": dict(vocab_size=30, num_tags=5, char_vocab_size=12, word_embedding_size=6, char_embedding_size=4, char_hidden_size=3, hidden_size=7, cell="gru"),
    "seq2seq": dict(source_vocab_size=15, target_vocab_size=17, cell="lstm", embedding_size=6, hidden_size=8, attention="additive", input_feeding=True),
    "piano-roll": dict(cell="gru", hidden_size=8, num_layers=2),
}


def test_every_registered_kind_is_tested_here():
    assert set(SMALL) == set(MODELS), "add a small configuration of the new model kind to SMALL"


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_a_model_is_rebuilt_from_its_json_config_with_the_same_parameters(kind):
    torch.manual_seed(0)
    model = build_model(kind, SMALL[kind])
    assert type(model) is MODELS[kind] and model.kind == kind
    config = json.loads(json.dumps(model.config()))  # as config.json stores it
    again = build_model(kind, config)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in again.state_dict().items()}
    again.load_state_dict(model.state_dict())  # so the saved weights fit the rebuilt model
    assert again.config() == model.config()


def test_an_unknown_kind_is_one_line_naming_the_kinds():
    with pytest.raises(UsageError, match=r"unknown model kind 'transformer'; choose one of: .*\blm\b.*\btagger\b"):
        build_model("transformer", {})


def test_final_outputs_join_the_last_layers_two_directions():
    L, D, B, n_a = 2, 2, 3, 4
    a = torch.arange(L * D * B * n_a, dtype=torch.float64).view(L * D, B, n_a)  # rows: l0 fwd, l0 bwd, l1 fwd, l1 bwd
    joined = final_outputs(a)
    assert joined.shape == (B, 2 * n_a)
    assert torch.equal(joined[:, :n_a], a[2]) and torch.equal(joined[:, n_a:], a[3])  # → a<T> of the top layer, then ← a<1>
    c = torch.zeros_like(a)
    assert torch.equal(final_outputs(LSTMState(a, c)), joined)  # an LSTM's a, not its c


# -- the one model interface (rnnkit/models/base.py) ------------------------------------------------
T, B, S = 5, 3, 4


def _inputs(kind: str, generator: torch.Generator) -> tuple[tuple, tuple]:
    """(the positional arguments of a forward call, the logits' shape) for each registered kind."""
    lengths = torch.tensor([T, T - 2, 1])
    if kind == "lm":
        return (torch.randint(1, 20, (T, B), generator=generator), lengths), (T, B, 20)
    if kind == "classifier":
        return (torch.randint(1, 25, (T, B), generator=generator), lengths), (B, 3)
    if kind == "tagger":
        batch = SimpleNamespace(
            words=torch.randint(1, 30, (T, B), generator=generator), chars=torch.randint(1, 12, (T, B, 4), generator=generator),
            char_lengths=torch.full((T, B), 4), cases=torch.randint(1, 8, (T, B), generator=generator), lengths=lengths,
        )  # fmt: skip
        return (batch,), (T, B, 5)
    if kind == "seq2seq":
        return (torch.randint(3, 15, (S, B), generator=generator), torch.tensor([S, 2, 3]), torch.randint(3, 17, (T, B), generator=generator)), (T, B, 17)
    return ((torch.rand(T, B, 88, generator=generator) < 0.2).float(), lengths), (T, B, 88)


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_every_model_answers_forward_with_one_output_type(kind):
    """The tasks, decoding, analysis and export call ``model(inputs, lengths, ...)`` and read the
    fields of one ``ModelOutput``, whichever model they hold."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build_model(kind, {**SMALL[kind], "engine": "reference"}).eval()
    assert isinstance(model, Model)
    args, shape = _inputs(kind, generator)
    out = model(*args)
    assert type(out) is ModelOutput and out.logits.shape == shape and torch.isfinite(out.logits).all()
    if kind != "seq2seq":  # a recurrent stack's final state, of the RecurrentState type
        assert hidden_state(out.state).shape[1:] == (B, SMALL[kind]["hidden_size"])


GENERATING = {"lm": lambda m, g: (m.start(B), torch.randint(1, 20, (T, B), generator=g)),
              "piano-roll": lambda m, g: (m.start(B), (torch.rand(T, B, 88, generator=g) < 0.2).float())}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(GENERATING))
def test_stepping_a_generating_model_equals_its_forward_pass(kind):
    """``start(B)`` then ``step(previous, state) -> ModelOutput`` (None first: x<1> = 0), one step at
    a time, gives the logits of one forward pass over the same sequence."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build_model(kind, {**SMALL[kind], "engine": "reference"}).eval()
    assert isinstance(model, StepModel)
    state, sequence = GENERATING[kind](model, generator)
    whole = model(sequence)
    previous, logits = None, []
    for t in range(T):
        step = model.step(previous, state)
        assert type(step) is ModelOutput and step.logits.shape == whole.logits.shape[1:]
        logits.append(step.logits)
        state, previous = step.state, sequence[t]
    torch.testing.assert_close(torch.stack(logits), whole.logits)
    for stepped, passed in zip(state_tensors(state), state_tensors(whole.state)):
        torch.testing.assert_close(stepped, passed)


def test_the_decoder_steps_as_the_other_generating_models():
    """Seq2seq's ``start(source, lengths)`` and ``step(previous, state) -> ModelOutput``, the attention
    in its own field, equal the teacher-forced forward pass."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build_model("seq2seq", {**SMALL["seq2seq"], "engine": "reference"}).eval()
    (source, lengths, target), _ = _inputs("seq2seq", generator)
    state, previous, logits = model.start(source, lengths), None, []
    for t in range(T):
        step = model.step(previous, state)
        assert type(step) is ModelOutput and step.attention.shape == (B, S)
        logits.append(step.logits)
        state, previous = step.state, target[t]
    torch.testing.assert_close(torch.stack(logits), model(source, lengths, target).logits)


CALLERS = ("decoding", "tasks", "export", "serve", "analysis", "demos")  # what uses models through the interface


def test_no_caller_asks_which_state_or_model_it_holds():
    """``isinstance(state, tuple)`` / ``LSTMState`` branches live in ``rnnkit.cells`` only (its state
    functions), and no caller of the model interface asks a model whether it has a method
    (``hasattr(model, ...)``)."""
    root = Path(rnnkit.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2):
                continue
            name, (first, second) = node.func.id, node.args
            state_branch = name == "isinstance" and isinstance(second, ast.Name) and second.id in ("tuple", "LSTMState") and path.name != "cells.py"
            caller = path.relative_to(root).parts[0] in CALLERS
            model_discovery = caller and name in ("hasattr", "getattr") and isinstance(first, ast.Name) and first.id in ("model", "lm")
            if state_branch or model_discovery:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)
