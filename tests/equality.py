"""Shared checks: run two layers on the same data and compare everything they produce."""

from __future__ import annotations

import math

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

# Two implementations of the same equations differ by rounding only: in the order of the sums behind
# each value (BLAS kernels, vector widths, thread splits differ between CPUs and thread counts). A
# sum of n terms of either sign, each rounded to ε, errs by about ε · √n times its own size; the
# recurrence and the other operations add a few ε more. So the bound is
#     |got - expected| <= ROUNDING_FACTOR · ε · √n · max|expected|   (per compared tensor)
# with ε of the tensors' dtype and n the longest sum behind them. Measured on an AMD EPYC (AVX2) with
# 1 and 2 threads, the engines' worst |difference| / (ε · max|expected|) is 5 at n = 28 and 15 at
# n = 4,200 (float32 and float64 alike): a factor of 8 leaves 8-35 × room, while a wrong equation
# errs by far more than 8 · ε · √n (under 1e-4 relative in float32 up to n = 10^4).
ROUNDING_FACTOR = 8.0


def rounding_tolerance(expected: torch.Tensor, reduction: int, factor: float = ROUNDING_FACTOR) -> float:
    """The largest |difference| from ``expected`` that rounding explains, for values behind which
    lie sums of up to ``reduction`` terms (see ROUNDING_FACTOR)."""
    scale = expected.detach().abs().max().item() if expected.numel() else 0.0
    return factor * torch.finfo(expected.dtype).eps * math.sqrt(max(reduction, 1)) * (scale or 1.0)


def assert_equal_up_to_rounding(expected, got, *, reduction: int, factor: float = ROUNDING_FACTOR) -> None:
    """Assert that each tensor of ``got`` equals its twin in ``expected`` up to rounding.

    ``expected``, ``got``: tensors, or lists of tensors compared pairwise. ``reduction``: the longest
    sum behind any compared value (rows of a weight gradient T·B, the inner size of a product, ...);
    the tolerance of each pair scales with it and with the pair's magnitude, so the same test holds
    on any CPU, BLAS and thread count.
    """
    if isinstance(expected, torch.Tensor):
        expected, got = [expected], [got]
    assert len(expected) == len(got)
    for i, (e, g) in enumerate(zip(expected, got)):
        assert e.shape == g.shape and e.dtype == g.dtype, f"tensor {i}: {tuple(g.shape)} {g.dtype} vs {tuple(e.shape)} {e.dtype}"
        difference = (g - e).abs().max().item() if e.numel() else 0.0
        allowed = rounding_tolerance(e, reduction, factor)
        assert difference <= allowed, f"tensor {i} {tuple(e.shape)}: |difference| {difference:.3g} > {allowed:.3g} (rounding over sums of {reduction} in {e.dtype})"


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


def assert_relu_rnn_carries_nan(engine: str, dtype, device="cpu") -> None:
    """relu(NaN) is NaN in torch and its gradient passes through (threshold_backward): a NaN in one
    input row makes that sequence's later states NaN, as with the reference engine, while the other
    sequence stays finite, and the gradients equal the reference's, NaN for NaN."""
    reference, other = twin_layers("rnn", {"nonlinearity": "relu"}, engine, bidirectional=False, num_layers=1, dtype=dtype, device=device)
    torch.manual_seed(0)
    x = torch.randn(3, 2, 5, dtype=dtype, device=device)
    x[0, 0, 0] = float("nan")
    results = []
    for layer in (reference, other):
        x_ = x.clone().requires_grad_(True)
        outputs, _ = layer(x_)
        outputs.sum().backward()
        results.append((outputs.detach(), x_.grad))
    (expected, expected_grad), (got, got_grad) = results
    assert got[:, 0].isnan().all() and not got[:, 1].isnan().any()
    tolerance = {} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}  # a tiny layer: sums of a few terms
    torch.testing.assert_close(got, expected, equal_nan=True, **tolerance)
    torch.testing.assert_close(got_grad, expected_grad, equal_nan=True, **tolerance)
