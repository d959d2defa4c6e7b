"""The triton engines (the fused engine's time loops as Triton kernels, one launch per step, and the
persistent kernels, one launch per direction) equal the reference engine: outputs, final states and
all gradients, every cell, both directions, stacked layers, variable lengths, float64 and float32.
The fused sampler draws what eager sampling draws (greedy) and from the model's distribution. Without a GPU the kernels run in Triton's interpreter on the CPU
(TRITON_INTERPRET=1, set here before Triton is imported); skipped where Triton is not installed.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("Triton is not installed", allow_module_level=True)
from equality import CELL_CONFIGS, CELL_IDS, assert_equal_up_to_rounding, assert_relu_rnn_carries_nan, max_difference, random_state, run_with_grads, twin_layers  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":  # Triton's interpreter: the variable is read when the kernels are defined, at import
    _before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    import rnnkit.engines.triton.loops  # noqa: E402, F401
    import rnnkit.engines.triton.persistent  # noqa: E402, F401
    import rnnkit.engines.triton.sampling  # noqa: E402, F401

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
    assert_equal_up_to_rounding(expected, got, reduction=7 * 4)


@pytest.mark.parametrize("engine", ["triton", "persistent"])
def test_triton_relu_rnn_carries_nan_as_the_reference_does(engine):
    """The per-step and persistent kernels share the rnn's relu and its gradient: NaN stays NaN and
    its gradient passes through, as in torch."""
    assert_relu_rnn_carries_nan(engine, torch.float32, device=DEVICE)


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


PERSISTENT_CONFIGS = CELL_CONFIGS  # every cell kind has persistent kernels


@pytest.fixture
def persistent_only(monkeypatch):
    """Fail if the persistent engine quietly falls back to the per-step kernels."""
    from rnnkit.engines.triton import loops as triton_loops

    def per_step(*args, **kwargs):
        raise AssertionError("the persistent engine ran the per-step kernels")

    for kind in ("rnn", "gru_simple", "gru", "gru_cudnn", "lstm"):
        for name in (f"{kind}_forward", f"{kind}_backward"):
            monkeypatch.setattr(triton_loops, name, per_step)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("kind,options", PERSISTENT_CONFIGS, ids=CELL_IDS)
def test_persistent_equals_reference(kind, options, shape, dtype, persistent_only):
    bidirectional, num_layers, lengths = shape
    reference, layer = twin_layers(kind, options, "persistent", bidirectional=bidirectional, num_layers=num_layers, dtype=dtype, device=DEVICE)
    torch.manual_seed(3)
    x = torch.randn(7, 4, 5, dtype=dtype, device=DEVICE, requires_grad=True)
    state = random_state(reference, 4, dtype, device=DEVICE)
    assert_equal_up_to_rounding(run_with_grads(reference, x, lengths, state), run_with_grads(layer, x, lengths, state), reduction=7 * 4)


@pytest.mark.parametrize("kind", ["rnn", "gru-simple", "gru", "gru-cudnn", "lstm"])
def test_persistent_row_tiles_and_unit_remainders(kind, persistent_only):
    """33 rows (two row tiles, the second of one row), 80 units (a padded unit tile), ragged lengths."""
    reference, layer = twin_layers(kind, {}, "persistent", bidirectional=False, num_layers=1, dtype=torch.float64, input_size=24, hidden_size=80, device=DEVICE)
    torch.manual_seed(0)
    x = torch.randn(5, 33, 24, dtype=torch.float64, device=DEVICE, requires_grad=True)
    lengths = torch.randint(1, 6, (33,))
    lengths[0] = 5
    assert max_difference(run_with_grads(reference, x, lengths, None), run_with_grads(layer, x, lengths, None)) < 1e-9


def test_every_registered_cell_has_persistent_kernels():
    from rnnkit.cells import CELLS
    from rnnkit.engines.fused import PERSISTENT_KINDS

    assert set(PERSISTENT_KINDS) == set(CELLS)


# -- the fused sampler ----------------------------------------------------------------------------------


def _chaotic_language_model(num_layers):
    """A small LSTM language model whose greedy path changes token often (large recurrent weights)."""
    from rnnkit.models.language_model import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(30, cell="lstm", embedding_size=12, hidden_size=20, num_layers=num_layers).eval()
    with torch.no_grad():
        for p in model.recurrent.parameters():
            p.mul_(6)
        model.output.weight.normal_(0, 1.0)
        model.embedding.weight.normal_(0, 1.0)
    return model.to(DEVICE)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_fused_sampler_greedy_equals_eager_decoding(num_layers):
    from rnnkit.decoding import SamplingOptions, sample
    from rnnkit.engines.triton.sampling import FusedSampler

    model = _chaotic_language_model(num_layers)
    options = SamplingOptions(greedy=True, max_length=14)
    eager = sample(model, 2, options, eos_id=2, banned=[0], device=DEVICE)
    fused = FusedSampler(model, 2, options, banned=[0], steps_per_replay=4).sample(eos_id=2)
    assert len(set(eager[0])) > 3  # the path is not one repeated token
    assert fused == eager


def test_fused_sampler_starts_from_a_learned_initial_state():
    """The first step runs in the kernels too: from x<1> = 0 and the model's a<0>, c<0>, here learned
    (non-zero) ones; greedy decoding equals the eager loop's."""
    from rnnkit import Recurrent
    from rnnkit.decoding import SamplingOptions, sample
    from rnnkit.engines.triton.sampling import FusedSampler

    model = _chaotic_language_model(2).cpu()
    learned = Recurrent("lstm", 12, 20, num_layers=2, learn_initial_state=True)
    learned.load_state_dict(model.recurrent.state_dict(), strict=False)
    with torch.no_grad():
        for p in learned.initial_state.values():
            p.normal_(0, 1.0)
    model.recurrent = learned
    model = model.to(DEVICE).eval()
    options = SamplingOptions(greedy=True, max_length=9)
    eager = sample(model, 2, options, eos_id=-1, device=DEVICE, fast=False)
    assert FusedSampler(model, 2, options, steps_per_replay=4).sample(eos_id=-1) == eager


def test_fused_sampler_draws_from_the_tempered_distribution():
    """Output weights zero: every step's distribution is softmax(b_y / T), whatever the state.
    256 draws of 5 tokens (one banned) against it; the tolerance is about four standard deviations."""
    from rnnkit.decoding import SamplingOptions
    from rnnkit.engines.triton.sampling import FusedSampler
    from rnnkit.models.language_model import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(5, cell="lstm", embedding_size=4, hidden_size=16).eval()
    bias = torch.tensor([0.0, 1.0, 2.0, 0.5, -1.0])
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.copy_(bias)
    sampler = FusedSampler(model.to(DEVICE), 8, SamplingOptions(temperature=2.0, max_length=32), banned=[0], steps_per_replay=16)
    draws = torch.tensor([t for row in sampler.sample(eos_id=-1, seed=1) for t in row])  # the first step's draws too
    assert len(draws) == 8 * 32
    expected = torch.softmax(bias.masked_fill(torch.arange(5) == 0, -torch.inf) / 2.0, 0) * len(draws)
    counts = torch.bincount(draws, minlength=5).float()
    assert counts[0] == 0
    assert ((counts - expected).abs() <= 4 * expected.sqrt() + 1).all(), (counts, expected)


def test_fused_sampler_says_what_it_cannot_run():
    from rnnkit.decoding import SamplingOptions
    from rnnkit.engines.triton.sampling import FusedSampler
    from rnnkit.models.language_model import LanguageModel

    with pytest.raises(ValueError, match="LSTM step only, not 'gru'"):
        FusedSampler(LanguageModel(10, cell="gru", hidden_size=8), 1, SamplingOptions())
    with pytest.raises(ValueError, match="no top_k"):
        FusedSampler(LanguageModel(10, hidden_size=8), 1, SamplingOptions(top_k=3))


@pytest.mark.parametrize("engine", ["triton", "persistent"])
def test_triton_engines_run_in_the_autocast_dtype(engine):
    """Under autocast (float16) the Triton loops compute in float16 with float32 accumulation; the
    float32 parameters get float32 gradients close to the float32 reference's."""
    reference, layer = twin_layers("gru", {}, engine, bidirectional=True, num_layers=1, dtype=torch.float32, device=DEVICE)
    torch.manual_seed(0)
    x = torch.randn(6, 3, 5, device=DEVICE)
    expected, _ = reference(x)
    expected.sum().backward()
    with torch.autocast(DEVICE, dtype=torch.float16):
        got, _ = layer(x)
    assert got.dtype == torch.float16
    assert (got.float() - expected).abs().max() < 2e-2
    got.float().sum().backward()
    for mine, theirs in zip(layer.parameters(), reference.parameters()):
        assert mine.grad.dtype == torch.float32
        assert (mine.grad - theirs.grad).abs().max() < 5e-2 * (1 + theirs.grad.abs().max())


def test_fused_sampler_seeds_repeat_and_unseeded_runs_differ():
    from rnnkit.decoding import SamplingOptions
    from rnnkit.engines.triton.sampling import FusedSampler

    model = _chaotic_language_model(1)
    sampler = FusedSampler(model, 2, SamplingOptions(max_length=6), steps_per_replay=6)
    assert sampler.sample(eos_id=-1, seed=5) == sampler.sample(eos_id=-1, seed=5)
    unseeded = [sampler.sample(eos_id=-1) for _ in range(3)]
    assert unseeded[0] != unseeded[1] or unseeded[1] != unseeded[2]


def test_auto_engine_on_cuda_takes_cudnn_then_the_persistent_kernels():
    from rnnkit import Recurrent
    from rnnkit.engines import choose_engine

    cuda = torch.device("cuda")
    chosen = {kind + "".join(o): choose_engine(Recurrent(kind, 3, 4, **{k: True for k in o}).cells["l0"], cuda).name
              for kind, o in [("lstm", ()), ("lstm", ("peepholes",)), ("gru", ()), ("gru-cudnn", ()), ("gru-simple", ()), ("rnn", ())]}  # fmt: skip
    assert chosen == {"lstm": "native", "lstmpeepholes": "persistent", "gru": "persistent", "gru-cudnn": "native", "gru-simple": "persistent", "rnn": "native"}


def test_fast_sampler_takes_the_fused_kernels_for_few_rows_of_an_lstm():
    from rnnkit.decoding import FUSED_MAX_ROWS, GraphedSampler, SamplingOptions, fast_sampler
    from rnnkit.engines.triton.sampling import FusedSampler
    from rnnkit.models.language_model import LanguageModel

    lstm, gru = LanguageModel(10, hidden_size=8), LanguageModel(10, cell="gru", hidden_size=8)
    assert isinstance(fast_sampler(lstm, FUSED_MAX_ROWS, SamplingOptions()), FusedSampler)
    assert isinstance(fast_sampler(lstm, FUSED_MAX_ROWS + 1, SamplingOptions()), GraphedSampler)
    assert isinstance(fast_sampler(lstm, 1, SamplingOptions(top_p=0.9)), GraphedSampler)
    assert isinstance(fast_sampler(gru, 1, SamplingOptions()), GraphedSampler)


def test_fused_sampler_reused_with_another_seed_draws_another_stream():
    """The seed lives on the device: a CUDA graph keeps the kernel arguments it was captured with, so
    a seed passed as an argument would give every later call the first call's stream. Output weights
    zero: the draws after the first depend on the random stream only."""
    from rnnkit.decoding import SamplingOptions
    from rnnkit.engines.triton.sampling import FusedSampler
    from rnnkit.models.language_model import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(40, cell="lstm", embedding_size=4, hidden_size=16).eval()
    with torch.no_grad():
        model.output.weight.zero_()
    sampler = FusedSampler(model.to(DEVICE), 2, SamplingOptions(max_length=17), steps_per_replay=8)
    first, again, other = (sampler.sample(eos_id=-1, seed=seed) for seed in (1, 1, 2))
    assert first == again
    assert [row[1:] for row in first] != [row[1:] for row in other]


def test_persistent_launch_without_padding_copies_nothing_from_the_host(monkeypatch, persistent_only):
    """A GPU sampler captures model steps in a CUDA graph, where a copy from pageable host memory
    cannot be captured: without padding, the persistent engine's launch makes its tensors on the
    device (the step count of rows is a fill, not a tensor of host data)."""
    from rnnkit.engines.triton import persistent as triton_persistent

    made_from_host = []
    real_tensor = torch.tensor
    monkeypatch.setattr(triton_persistent.torch, "tensor", lambda *a, **k: made_from_host.append(a) or real_tensor(*a, **k))
    _, layer = twin_layers("gru", {}, "persistent", bidirectional=False, num_layers=1, dtype=torch.float32, device=DEVICE)
    with torch.no_grad():
        layer(torch.randn(3, 2, 5, device=DEVICE))
    assert made_from_host == []
    layer(torch.randn(3, 2, 5, device=DEVICE), lengths=[3, 1])  # ragged: the sizes come from the host
    assert made_from_host


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_graphed_sampler_captures_the_persistent_engine():
    """The course GRU's language model runs on the persistent kernels on CUDA; its CUDA-graph
    sampler decodes greedily what the eager loop decodes."""
    from rnnkit.decoding import GraphedSampler, SamplingOptions, sample
    from rnnkit.models.language_model import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(30, cell="gru", embedding_size=12, hidden_size=20).cuda().eval()
    assert model.recurrent.engine_for(torch.device("cuda")).name == "persistent"
    options = SamplingOptions(greedy=True, max_length=24)
    eager = sample(model, 5, options, eos_id=2, device="cuda", fast=False)
    assert GraphedSampler(model, 5, options, steps_per_replay=8).sample(eos_id=2) == eager


@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "no-overlap"])
def test_persistent_gru_with_and_without_work_between_arrive_and_wait(overlap, monkeypatch, persistent_only):
    """The course gru's kernels can do Γu (forward) and dpre_u Wu (backward) between arriving at a
    barrier and waiting at it, or before arriving; both orders compute the reference's values."""
    from rnnkit.engines.triton import persistent as triton_persistent

    monkeypatch.setitem(triton_persistent.CONFIG, "overlap", overlap)
    reference, layer = twin_layers("gru", {}, "persistent", bidirectional=True, num_layers=1, dtype=torch.float64, device=DEVICE)
    torch.manual_seed(1)
    x = torch.randn(6, 3, 5, dtype=torch.float64, device=DEVICE, requires_grad=True)
    state = random_state(reference, 3, torch.float64, device=DEVICE)
    assert max_difference(run_with_grads(reference, x, [6, 2, 4], state), run_with_grads(layer, x, [6, 2, 4], state)) < 1e-9


def test_every_kernel_compiles_for_hopper():
    """Every kernel rnnkit launches compiles to sm_90 machine code with Triton's own ptxas, in
    float16 and float64, each boolean option both ways: the interpreter tests above compile nothing.
    (With Triton 3.6, the version on the GPU machines, this caught float64 ``tl.dot``.)"""
    import subprocess
    import sys
    from pathlib import Path

    import triton

    if not (Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas").exists():
        pytest.skip("this Triton has no ptxas")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = Path(__file__).with_name("compile_for_gpu.py")
    done = subprocess.run([sys.executable, str(script), "--arch", "90"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0 failed" in done.stdout
