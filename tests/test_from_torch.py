"""``Recurrent.from_torch`` layers equal the torch modules they came from: outputs and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import Recurrent

MODULES = {
    "lstm": lambda **kw: nn.LSTM(3, 5, **kw),
    "gru": lambda **kw: nn.GRU(3, 5, **kw),
    "rnn-tanh": lambda **kw: nn.RNN(3, 5, **kw),
    "rnn-relu": lambda **kw: nn.RNN(3, 5, nonlinearity="relu", **kw),
}


def torch_parameter_grads(ours: Recurrent, module: nn.RNNBase) -> dict[str, torch.Tensor]:
    """Our gradients mapped into torch's parameter layout, through the cells' own conversion."""
    grads = {}
    for layer in range(module.num_layers):
        for direction, cell in enumerate(ours.layer_cells(layer)):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            weights = cell.torch_weights()
            for name, ours_as_torch in zip(("weight_ih", "weight_hh", "bias_ih"), weights[:3]):
                grads[name + suffix] = ours_as_torch
    return grads


@pytest.mark.parametrize("engine", ["reference", "fused", "native"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("name", MODULES)
def test_from_torch_equals_module(name, bidirectional, batch_first, padded, engine):
    torch.manual_seed(0)
    module = MODULES[name](num_layers=2, bidirectional=bidirectional, batch_first=batch_first).double()
    ours = Recurrent.from_torch(module, engine=engine)
    shape = (3, 6, 3) if batch_first else (6, 3, 3)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 2, 4]) if padded else None

    if padded:
        packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        packed_out, expected_state = module(packed)
        expected, _ = pad_packed_sequence(packed_out, batch_first=batch_first, total_length=6)
    else:
        expected, expected_state = module(x)
    got, got_state = ours(x, lengths=lengths)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    expected_states = expected_state if isinstance(expected_state, tuple) else (expected_state,)
    got_states = got_state if isinstance(got_state, tuple) else (got_state,)
    for e, g in zip(expected_states, got_states):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-12)

    # gradients: with respect to the input and to every torch parameter (through our parameters)
    weights = torch.randn_like(expected)
    loss_torch = (expected * weights).sum() + sum(s.sum() for s in expected_states)
    loss_ours = (got * weights).sum() + sum(s.sum() for s in got_states)
    torch_params = dict(module.named_parameters())
    g_torch = torch.autograd.grad(loss_torch, [x, *torch_params.values()])
    g_ours = torch.autograd.grad(loss_ours, [x, *ours.parameters()], create_graph=False)
    torch.testing.assert_close(g_ours[0], g_torch[0], rtol=0, atol=1e-12)
    # map our parameter gradients to torch's layout: build a layer whose parameters are the grads
    grad_layer = Recurrent.from_torch(module)
    with torch.no_grad():
        for p, g in zip(grad_layer.parameters(), g_ours[1:]):
            p.copy_(g)
    mapped = torch_parameter_grads(grad_layer, module)
    for pname, g in zip(torch_params, g_torch[1:]):
        if pname.startswith("bias_hh"):
            continue  # folded into our biases: b_ih and b_hh add up (b_hn stays separate, checked below)
        torch.testing.assert_close(mapped[pname], g, rtol=0, atol=1e-10)
    if name == "gru":
        for layer in range(2):
            for direction, cell in enumerate(grad_layer.layer_cells(layer)):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                b_hn_grad = g_torch[1 + list(torch_params).index("bias_hh" + suffix)][10:]
                torch.testing.assert_close(cell.bias_cc, b_hn_grad, rtol=0, atol=1e-10)


def test_from_torch_rejects_what_has_no_equivalent():
    with pytest.raises(ValueError, match="proj_size"):
        Recurrent.from_torch(nn.LSTM(3, 5, proj_size=2))
    with pytest.raises(TypeError, match="takes torch.nn.LSTM, GRU or RNN, got Linear"):
        Recurrent.from_torch(nn.Linear(3, 5))


def test_from_torch_without_biases():
    torch.manual_seed(0)
    module = nn.GRU(3, 5, bias=False).double()
    ours = Recurrent.from_torch(module)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], module(x)[0], rtol=0, atol=1e-12)
