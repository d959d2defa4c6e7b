"""Shared checks: run two layers on the same data and compare everything they produce."""

from __future__ import annotations

import torch

from rnnkit import Recurrent

# Every registered cell, with the options that change its equations.
CELL_CONFIGS = [
    ("rnn", {}),
    ("rnn", {"nonlinearity": "relu"}),
    ("gru", {}),
    ("gru-simple", {}),
    ("gru-cudnn", {}),
    ("lstm", {}),
    ("lstm", {"peepholes": True}),
]
CELL_IDS = [kind + "".join(f"-{k}={v}" for k, v in opts.items()) for kind, opts in CELL_CONFIGS]
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-5}


def random_state(layer: Recurrent, B: int, dtype, device="cpu"):
    """A random initial state in the layer's public layout, requiring grad."""
    rows = layer.num_layers * layer.num_directions
    names = layer.cells["l0"].state_names
    tensors = tuple(torch.randn(rows, B, layer.hidden_size, dtype=dtype, device=device, requires_grad=True) for _ in names)
    return layer.cells["l0"].public_state(tensors)


def run_with_grads(layer: Recurrent, x, lengths, state, seed: int = 7):
    """Outputs, final state tensors, and the gradients of a random linear function of all of them
    with respect to the input, the initial state and every parameter."""
    outputs, final = layer(x, lengths=lengths, state=state)
    finals = final if isinstance(final, tuple) else (final,)
    generator = torch.Generator().manual_seed(seed)

    def weights(t):
        return torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)

    loss = (outputs * weights(outputs)).sum() + sum((f * weights(f)).sum() for f in finals)
    states = () if state is None else state if isinstance(state, tuple) else (state,)
    inputs = [x, *states, *layer.parameters()]
    grads = torch.autograd.grad(loss, inputs)
    return [outputs, *finals, *grads]


def max_difference(a: list, b: list) -> float:
    assert len(a) == len(b)
    return max((p - q).abs().max().item() for p, q in zip(a, b))


def twin_layers(kind, options, engine, *, bidirectional, num_layers, dtype, input_size=5, hidden_size=6, device="cpu"):
    """A reference-engine layer and an ``engine`` layer with the same parameters."""
    torch.manual_seed(1)
    reference = Recurrent(kind, input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, engine="reference", **options)
    other = Recurrent(kind, input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, engine=engine, **options)
    other.load_state_dict(reference.state_dict())
    return reference.to(device=device, dtype=dtype), other.to(device=device, dtype=dtype)
