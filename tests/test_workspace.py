"""The fused engine's buffer pool (rnnkit.engines.workspace)."""

import torch

from rnnkit import Recurrent
from rnnkit.engines.workspace import Workspace


def test_buffers_taken_under_inference_mode_are_not_pooled():
    pool = Workspace()
    like = torch.zeros(1)
    with torch.inference_mode():
        buf = pool.take((4, 3), like)
        pool.give_back([buf])
    assert pool._free == []  # an inference tensor could not be written by a later training step
    out = pool.take((4, 3), like, zero=True)
    out.add_(1.0)  # an ordinary tensor, writable outside inference mode
    assert out.shape == (4, 3)


def test_fused_layer_runs_repeatedly_under_inference_mode_with_changing_shapes():
    torch.manual_seed(0)
    layer = Recurrent("lstm", 4, 8, bidirectional=True, engine="fused").eval()
    with torch.inference_mode():
        for T, B in [(9, 7), (4, 2), (3, 5)]:
            outputs, _ = layer(torch.randn(T, B, 4), lengths=[T] + [1] * (B - 1))
            assert outputs.shape == (T, B, 16)
    x = torch.randn(5, 3, 4, requires_grad=True)
    outputs, _ = layer.train()(x, lengths=[5, 4, 2])  # training after inference reuses the pool safely
    outputs.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
