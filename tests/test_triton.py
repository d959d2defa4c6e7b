"""The triton engine (the fused engine's time loops as Triton kernels) equals the reference engine:
outputs, final states and all gradients, every cell, both directions, stacked layers, variable
lengths, float64 and float32. Without a GPU the kernels run in Triton's interpreter on the CPU
(TRITON_INTERPRET=1, set here before Triton is imported); skipped where Triton is not installed.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("Triton is not installed", allow_module_level=True)
from equality import CELL_CONFIGS, CELL_IDS, TOLERANCE, max_difference, random_state, run_with_grads, twin_layers  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":  # Triton's interpreter: the variable is read when the kernels are defined, at import
    _before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    import rnnkit.engines.triton_loops  # noqa: E402, F401

    if _before is None:  # the other test modules must see the CPU as a machine where triton cannot run
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = _before


@pytest.fixture(autouse=True)
def interpreter(monkeypatch):
    """The triton engine asks for the interpreter before it runs on the CPU: set it for these tests only."""
    if DEVICE == "cpu":
        monkeypatch.setenv("TRITON_INTERPRET", "1")


SHAPES = {"uni-1layer-full": (False, 1, None), "bi-3layers-ragged": (True, 3, [7, 3, 5, 1])}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_triton_equals_reference(kind, options, shape, dtype):
    bidirectional, num_layers, lengths = shape
    reference, triton_layer = twin_layers(kind, options, "triton", bidirectional=bidirectional, num_layers=num_layers, dtype=dtype, device=DEVICE)
    torch.manual_seed(3)
    x = torch.randn(7, 4, 5, dtype=dtype, device=DEVICE, requires_grad=True)
    state = random_state(reference, 4, dtype, device=DEVICE)
    expected = run_with_grads(reference, x, lengths, state)
    got = run_with_grads(triton_layer, x, lengths, state)
    assert max_difference(expected, got) < TOLERANCE[dtype]


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru-cudnn"])
def test_triton_tiles_and_reduction_remainders(kind):
    """More rows than one tile (33 > 32), more units than one tile with a remainder (80 = 64 + 16),
    and a reduction that is not a multiple of its tile."""
    reference, triton_layer = twin_layers(kind, {}, "triton", bidirectional=False, num_layers=1, dtype=torch.float64, input_size=24, hidden_size=80, device=DEVICE)
    torch.manual_seed(0)
    x = torch.randn(4, 33, 24, dtype=torch.float64, device=DEVICE, requires_grad=True)
    lengths = torch.randint(1, 5, (33,))
    lengths[0] = 4
    assert max_difference(run_with_grads(reference, x, lengths, None), run_with_grads(triton_layer, x, lengths, None)) < 1e-9


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
def test_triton_half_precision_accumulates_in_float32(half):
    if half == torch.bfloat16 and DEVICE == "cpu":
        pytest.skip("Triton's interpreter multiplies bfloat16 matrices wrongly (numpy has no bfloat16)")
    reference, triton_layer = twin_layers("lstm", {}, "triton", bidirectional=False, num_layers=1, dtype=torch.float32, device=DEVICE)
    triton_layer = triton_layer.to(half)
    torch.manual_seed(0)
    x = torch.randn(7, 4, 5, device=DEVICE)
    expected, _ = reference(x)
    got, _ = triton_layer(x.to(half))
    assert got.dtype == half and (got.float() - expected).abs().max() < 3e-2


def test_triton_on_the_cpu_needs_the_interpreter(monkeypatch):
    from rnnkit import Recurrent

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    layer = Recurrent("gru", 3, 4, engine="triton")
    with pytest.raises(ValueError, match="engine='triton' runs on CUDA devices"):
        layer(torch.randn(2, 1, 3))
