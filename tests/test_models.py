"""The model registry and the pieces models share (rnnkit/models/registry.py, heads.py): a run is
rebuilt from its ``config.json`` alone, so every registered kind must come back from its own
``config()`` with the same parameters. (What each model computes: the task tests.)"""

from __future__ import annotations

import json

import pytest
import torch

from rnnkit.cells import LSTMState
from rnnkit.errors import UsageError
from rnnkit.models import MODELS, build_model
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
