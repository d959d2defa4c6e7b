"""The layer's contract: causality, padding, per-sequence final states, directions, layers, errors."""

from __future__ import annotations

import re

import pytest
import torch

from equality import CELL_CONFIGS, CELL_IDS, assert_equal_up_to_rounding
from rnnkit import LSTMState, Recurrent

ENGINES = ["reference", "fused", "native"]


def make(kind, options, engine, **kwargs):
    try:
        return Recurrent(kind, 3, 5, engine=engine, **options, **kwargs).double()
    except ValueError:
        pytest.skip(f"engine {engine} does not run {kind}")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_one_direction_output_ignores_the_future(engine, kind, options):
    torch.manual_seed(0)
    layer = make(kind, options, engine, num_layers=2)
    x = torch.randn(8, 3, 3, dtype=torch.float64)
    changed = x.clone()
    changed[5:] = torch.randn(3, 3, 3, dtype=torch.float64)
    before, _ = layer(x)
    after, _ = layer(changed)
    assert torch.equal(before[:5], after[:5])
    assert not torch.allclose(before[5:], after[5:])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_padding_never_changes_a_real_step(engine, kind, options):
    torch.manual_seed(0)
    layer = make(kind, options, engine, num_layers=2, bidirectional=True)
    lengths = torch.tensor([8, 3, 6])
    x = torch.randn(8, 3, 3, dtype=torch.float64, requires_grad=True)
    garbage = x.detach().clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[n:, b] = 1e3 * torch.randn(8 - n, 3, dtype=torch.float64)
    garbage.requires_grad_()
    out1, fin1 = layer(x, lengths=lengths)
    out2, fin2 = layer(garbage, lengths=lengths)
    finals1 = fin1 if isinstance(fin1, tuple) else (fin1,)
    finals2 = fin2 if isinstance(fin2, tuple) else (fin2,)
    assert_equal_up_to_rounding([out1, *finals1], [out2, *finals2], reduction=8 * 3)
    for b, n in enumerate(lengths.tolist()):
        assert torch.all(out1[n:, b] == 0)  # outputs past the end are zero
    (g1,) = torch.autograd.grad(out1.sum() + sum(f.sum() for f in finals1), x)
    (g2,) = torch.autograd.grad(out2.sum() + sum(f.sum() for f in finals2), garbage)
    assert_equal_up_to_rounding(g1, g2, reduction=8 * 3)
    for b, n in enumerate(lengths.tolist()):
        assert torch.all(g2[n:, b] == 0)  # padding gets no gradient


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_padded_batch_equals_each_sequence_alone(engine, kind, options):
    """Final states at each sequence's own last step; the backward direction starts there too."""
    torch.manual_seed(0)
    layer = make(kind, options, engine, num_layers=2, bidirectional=True)
    lengths = [5, 2, 4]
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    out, final = layer(x, lengths=lengths)
    finals = final if isinstance(final, tuple) else (final,)
    for b, n in enumerate(lengths):
        alone_out, alone_final = layer(x[:n, b : b + 1])
        alone_finals = alone_final if isinstance(alone_final, tuple) else (alone_final,)
        assert_equal_up_to_rounding(alone_out, out[:n, b : b + 1], reduction=5 * 3)  # one row or three: other BLAS blocks
        assert_equal_up_to_rounding(list(alone_finals), [f[:, b : b + 1] for f in finals], reduction=5 * 3)


def test_batch_first_and_state_layout():
    torch.manual_seed(0)
    layer = Recurrent("lstm", 3, 5, num_layers=3, bidirectional=True, batch_first=True)
    x = torch.randn(2, 7, 3)
    out, state = layer(x)
    assert out.shape == (2, 7, 10)
    assert isinstance(state, LSTMState) and state.a.shape == (6, 2, 5) and state.c.shape == (6, 2, 5)
    # the last layer's forward final state is its output at the last step
    torch.testing.assert_close(state.a[4], out[:, -1, :5])
    # the last layer's backward final state is its output at the first step
    torch.testing.assert_close(state.a[5], out[:, 0, 5:])
    time_major = Recurrent("lstm", 3, 5, num_layers=3, bidirectional=True)
    time_major.load_state_dict(layer.state_dict())
    out_tm, _ = time_major(x.transpose(0, 1))
    torch.testing.assert_close(out_tm.transpose(0, 1), out)


def test_initial_state_zero_given_or_learned():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 3)
    layer = Recurrent("gru", 3, 5, num_layers=2)
    zero = torch.zeros(2, 2, 5)
    torch.testing.assert_close(layer(x)[0], layer(x, state=zero)[0])  # a<0> = 0 by default
    assert not torch.allclose(layer(x)[0], layer(x, state=torch.ones(2, 2, 5))[0])
    learned = Recurrent("lstm", 3, 5, num_layers=2, learn_initial_state=True)
    names = [name for name, _ in learned.named_parameters()]
    assert "initial_state.a" in names and "initial_state.c" in names
    out, _ = learned(x)
    out.sum().backward()
    assert learned.initial_state["a"].grad.abs().sum() > 0


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    layer = Recurrent("gru", 3, 16, num_layers=2, dropout=0.5)
    x = torch.randn(6, 4, 3)
    layer.train()
    assert not torch.equal(layer(x)[0], layer(x)[0])
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    single = Recurrent("gru", 3, 16, num_layers=1, dropout=0.5).train()
    assert torch.equal(single(x)[0], single(x)[0])  # nothing between layers to drop


def test_auto_engine_choice():
    assert Recurrent("gru", 3, 4).engine_for(torch.device("cpu")).name == "fused"
    assert Recurrent("lstm", 3, 4).engine_for(torch.device("cuda")).name == "native"
    from rnnkit.engines.fused import triton_available

    # the course GRU on a GPU: the persistent Triton kernels where Triton is installed
    assert Recurrent("gru", 3, 4).engine_for(torch.device("cuda")).name == ("persistent" if triton_available() else "fused")


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda layer: layer(torch.randn(4, 2, 7)), r"expected input of shape \(T, B, n_x\) with n_x = 3, got \(4, 2, 7\)"),
        (lambda layer: layer(torch.randn(4, 3)), r"expected input of shape \(T, B, n_x\)"),
        (lambda layer: layer(torch.randn(4, 2, 3), lengths=[4, 5]), r"lengths must lie in \[1, 4\]"),
        (lambda layer: layer(torch.randn(4, 2, 3), lengths=[4, 0]), r"lengths must lie in \[1, 4\]"),
        (lambda layer: layer(torch.randn(4, 2, 3), lengths=[4]), r"lengths must have shape \(2,\)"),
        (lambda layer: layer(torch.randn(4, 2, 3), lengths=[4.0, 2.0]), "lengths must be integers"),
        (lambda layer: layer(torch.randn(4, 2, 3), lengths=[True, True]), "lengths must be integers"),
        (lambda layer: layer(torch.randn(4, 2, 3), state=torch.zeros(1, 2, 4)), r"initial state 'a' must have shape \(2, 2, 4\)"),
        (lambda layer: layer(torch.randn(0, 2, 3)), "no time steps"),
    ],
)
def test_errors_are_one_clear_line(call, message):
    layer = Recurrent("gru", 3, 4, num_layers=2)
    with pytest.raises(ValueError, match=message) as error:
        call(layer)
    assert "\n" not in str(error.value)


def test_constructor_errors():
    with pytest.raises(ValueError, match="unknown engine 'fast'; choose one of: auto, reference, fused, native"):
        Recurrent("gru", 3, 4, engine="fast")
    with pytest.raises(ValueError, match="engine='native' cannot run cell 'gru'"):
        Recurrent("gru", 3, 4, engine="native")
    with pytest.raises(ValueError, match="dropout must be a number in"):
        Recurrent("gru", 3, 4, dropout=1.0)
    with pytest.raises(ValueError, match="dropout must be a number in .*got '0.1'"):
        Recurrent("gru", 3, 4, dropout="0.1")
    with pytest.raises(ValueError, match="batch_first must be True or False, got 'no'"):
        Recurrent("gru", 3, 4, batch_first="no")  # "no" is truthy: it was taken as True
    layer = Recurrent("gru", 3, 4)
    with pytest.raises(ValueError, match="engine='native' cannot run cell 'gru'"):
        layer.engine = "native"  # was accepted, then a KeyError inside the engine at the next call
    assert layer.engine == "auto" and layer.engine_for("cpu").name  # a device as a string, as torch takes it
    from rnnkit.engines.fused import triton_available

    if triton_available() and not torch.cuda.is_available():
        with pytest.raises(ValueError, match="engine='persistent' runs on CUDA"):
            Recurrent("gru", 3, 4, engine="persistent")(torch.randn(2, 1, 3))
    with pytest.raises(ValueError, match="num_layers must be a whole number >= 1, got 0"):
        Recurrent("gru", 3, 4, num_layers=0)
    for wrong in ("8", 8.5, True, 0):  # a size from a config file or a division: named, not torch's "empty(): argument 'size'"
        with pytest.raises(ValueError, match=rf"input_size must be a whole number >= 1, got {re.escape(repr(wrong))}"):
            Recurrent("gru", wrong, 4)
    layer = Recurrent("lstm", 3, 4)
    with pytest.raises(TypeError, match=r"Recurrent takes a floating-point tensor as the input, got torch.int64"):
        layer(torch.ones(2, 1, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"parameters are torch.float32 but the input is torch.float64"):
        layer(torch.ones(2, 1, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"parameters are torch.float32 but initial state 'c' is torch.float64"):
        layer(torch.ones(2, 1, 3), state=(torch.zeros(1, 1, 4), torch.zeros(1, 1, 4, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"an input with no sequences \(B = 0\)"):
        layer(torch.ones(2, 0, 3))
    for kind in ("gru", "gru-cudnn", "rnn"):  # the option is named with the cells that take it, still a TypeError to Python
        with pytest.raises(TypeError, match=rf"^cell '{kind}' has no option 'peepholes' \(an option of: lstm\)$"):
            Recurrent(kind, 3, 4, peepholes=True)
    with pytest.raises(ValueError, match="LSTM state has|has a state of 2 tensor"):
        Recurrent("lstm", 3, 4)(torch.randn(2, 1, 3), state=torch.zeros(1, 1, 4))


def test_without_the_compiled_loops_auto_prefers_torchs_kernels_where_they_run_the_cell(monkeypatch):
    """The fused engine's torch-op loops (no compiler, or RNNKIT_COMPILED_LOOPS=0) were auto's first
    choice for shapes too small to time: 7 times slower than torch's LSTM in ``rnnkit tour``."""
    monkeypatch.setenv("RNNKIT_COMPILED_LOOPS", "0")
    assert Recurrent("lstm", 3, 4).engine_for("cpu").name == "native"
    assert Recurrent("gru", 3, 4).engine_for("cpu").name == "fused"  # the course GRU: torch has no kernel for it
    monkeypatch.setenv("RNNKIT_COMPILED_LOOPS", "1")
    assert Recurrent("lstm", 3, 4).engine_for("cpu").name == "fused"


def test_a_state_given_in_lengths_place_or_a_meta_input_is_one_clear_line():
    """torch.nn.LSTM's (h0, c0) passed as forward's second argument was read as lengths: "only one
    element tensors can be converted to Python scalars"; a meta input failed inside autocast."""
    layer = Recurrent("lstm", input_size=8, hidden_size=16)
    x = torch.randn(5, 3, 8)
    with pytest.raises(ValueError, match=r"is passed as state="):
        layer(x, (torch.zeros(1, 3, 16), torch.zeros(1, 3, 16)))
    with pytest.raises(ValueError, match=r"is passed as state="):  # torch.nn.GRU's habit, one tensor
        Recurrent("gru", input_size=8, hidden_size=16)(x, torch.zeros(1, 3, 16))
    with pytest.raises(ValueError, match=r"initial state 'a' is on meta, the input on cpu"):
        layer(x, None, (torch.zeros(1, 3, 16, device="meta"), torch.zeros(1, 3, 16)))
    with pytest.raises(ValueError, match=r"input on the meta device"):
        layer(x.to("meta"))
    with pytest.raises(ValueError, match=r"lengths are on the meta device"):
        layer(x, torch.tensor([5, 2, 4], device="meta"))
    assert layer(x, [5, 2, 4])[0].shape == (5, 3, 16)


@pytest.mark.parametrize("engine", ["auto", "reference", "fused", "native"])
def test_a_layer_on_another_device_than_its_input_is_one_clear_line(engine, monkeypatch):
    """A layer moved to the meta device (as the meta-input message suggests) and run on a CPU input
    returned uninitialised memory under the torch-op loops, or torch's errors from inside an engine."""
    from rnnkit.engines import fused

    monkeypatch.setattr(fused, "FORCE_TORCH_LOOPS", True)  # the loops that returned garbage, silently
    layer = Recurrent("gru-cudnn" if engine == "native" else "gru", 3, 4, engine=engine).to("meta")
    with pytest.raises(ValueError, match=r"Recurrent's parameters are on meta but the input is on cpu.*meta device holds no values"):
        layer(torch.randn(2, 1, 3))


def test_odd_arguments_of_the_python_api_are_one_clear_line():
    """Each gave torch's words from deep inside, or a wrong layer silently."""
    with pytest.raises(ValueError, match=r"lstm: peepholes must be True or False, got 'no'"):
        Recurrent("lstm", 3, 4, peepholes="no")  # "no" is truthy: an LSTM with peepholes
    layer, x = Recurrent("gru", 3, 4), torch.randn(2, 2, 3)
    for lengths in ("abc", [None, 2], [2**70, 2]):  # "Could not infer dtype of NoneType", "Overflow when unpacking long"
        with pytest.raises(ValueError, match=r"lengths must be one integer length per sequence"):
            layer(x, lengths)
    for size in (-1, 0, 1.5, True):
        with pytest.raises(ValueError, match=r"start_state takes a batch size of 1 or more"):
            layer.start_state(size, x)
    assert layer.start_state(3, x).shape == (1, 3, 4)
    with pytest.raises(ValueError, match=r"engine_for: 'tpu' is no device torch knows"):
        layer.engine_for("tpu")
    import rnnkit  # the README's rnnkit.analysis.recording(model) after a plain import

    with rnnkit.analysis.recording(layer) as recording:
        layer(x)
    assert recording is not None and rnnkit.regularisers.activation_penalty and rnnkit.engines.engines_for
    with pytest.raises(AttributeError):
        rnnkit.nothing_of_that_name


def test_a_torch_module_without_biases_gives_biases_that_stay_zero():
    module = torch.nn.GRU(3, 4, bias=False)
    layer = Recurrent.from_torch(module)
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == sum(p.numel() for p in module.parameters())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(layer(x)[0], module(x)[0])
