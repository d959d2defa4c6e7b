"""Every engine equals the reference engine: outputs, final states and all gradients.

engine × cell × {one direction, two} × {1, 3 layers} × {no padding, variable lengths}, in float64
and float32, each up to the rounding of its dtype (``equality.assert_equal_up_to_rounding``: scaled
to the compared values and the sums behind them, so it holds on any CPU and thread count). The fused engine is checked with both of its loop implementations:
the compiled CPU loops and the torch-op loops.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

import pytest
import torch

import rnnkit.engines.fused as fused
from equality import CELL_CONFIGS, CELL_IDS, assert_equal_up_to_rounding, assert_relu_rnn_carries_nan, random_state, run_with_grads, twin_layers
from rnnkit import Recurrent
from rnnkit.engines import ENGINES
from rnnkit.engines import compiled
from rnnkit.engines import fused_loops as fused_loops_module
from rnnkit.engines.compiled import compiled_loops
from rnnkit.errors import UsageError

T, B = 7, 4
REDUCTION = T * B  # the weight gradients' sums over steps and rows: the longest sums in these tests
LENGTHS = {"full": None, "ragged": [7, 3, 5, 1]}


@pytest.fixture(params=["compiled", "torch-ops"])
def fused_loops(request, monkeypatch):
    """Run the fused engine with one loop implementation or the other."""
    if request.param == "compiled" and compiled_loops() is None:
        pytest.skip("the compiled CPU loops could not be built here")
    monkeypatch.setattr(fused, "FORCE_TORCH_LOOPS", request.param == "torch-ops")
    return request.param


def check_equal(kind, options, engine, bidirectional, num_layers, lengths, dtype):
    reference, other = twin_layers(kind, options, engine, bidirectional=bidirectional, num_layers=num_layers, dtype=dtype)
    torch.manual_seed(3)
    x = torch.randn(T, B, 5, dtype=dtype, requires_grad=True)
    state = random_state(reference, B, dtype)
    expected = run_with_grads(reference, x, lengths, state)
    got = run_with_grads(other, x, lengths, state)
    assert_equal_up_to_rounding(expected, got, reduction=REDUCTION)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_fused_equals_reference(fused_loops, kind, options, bidirectional, num_layers, lengths, dtype):
    check_equal(kind, options, "fused", bidirectional, num_layers, lengths, dtype)


NATIVE = [(k, o) for k, o in CELL_CONFIGS if k in ("rnn", "gru-cudnn") or (k == "lstm" and not o)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind,options", NATIVE, ids=[k + str(o or "") for k, o in NATIVE])
def test_native_equals_reference(kind, options, bidirectional, num_layers, lengths, dtype):
    check_equal(kind, options, "native", bidirectional, num_layers, lengths, dtype)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind,options", NATIVE, ids=[k + str(o or "") for k, o in NATIVE])
def test_native_with_one_flat_weight_buffer_equals_reference(monkeypatch, kind, options, bidirectional):
    """The weights handed to torch as views of one buffer (the layout the GPU uses) compute the same."""
    from rnnkit.engines import native

    monkeypatch.setitem(native.FLAT_WEIGHTS, "cpu", True)
    check_equal(kind, options, "native", bidirectional, 2, LENGTHS["ragged"], torch.float64)


def test_native_refuses_what_torch_cannot_compute():
    from rnnkit import make_cell

    native = ENGINES["native"]
    assert native.unsupported(make_cell("gru", 3, 4)) is not None  # relevance before the product
    assert native.unsupported(make_cell("gru-simple", 3, 4)) is not None
    assert native.unsupported(make_cell("lstm", 3, 4, peepholes=True)) is not None
    assert native.unsupported(make_cell("lstm", 3, 4)) is None


def test_fused_bigger_shapes_match_reference(fused_loops):
    """Sizes past the vector width and the thread split, with the packed-GEMM path (float32, B rows)."""
    for kind in ("lstm", "gru", "gru-cudnn"):
        reference, fast = twin_layers(kind, {}, "fused", bidirectional=False, num_layers=1, dtype=torch.float32, input_size=24, hidden_size=80)
        torch.manual_seed(0)
        x = torch.randn(20, 33, 24, requires_grad=True)
        expected = run_with_grads(reference, x, None, None)
        got = run_with_grads(fast, x, None, None)
        assert_equal_up_to_rounding(expected, got, reduction=20 * 33)


@pytest.fixture(params=compiled.PRODUCTS)
def product_routine(request):
    """The compiled loops with one routine for their float32 recurrent products, then the CPU's own."""
    loops = compiled_loops()
    if loops is None:
        pytest.skip("the compiled CPU loops could not be built here")
    used = loops.use_product(request.param)
    yield used
    loops.use_product(compiled.product_routine())


def test_product_routine_is_chosen_by_vendor_and_instruction_set(monkeypatch):
    """The most specific entry of the table wins: vendor, ISA and family over vendor and ISA over
    vendor (oneDNN on an AVX-512 Zen 4, the loops' own FMA kernel on a Zen 5 and on any AVX2 AMD
    CPU, as measured); RNNKIT_PRODUCT overrides them all, and an unknown name is one clear error."""
    monkeypatch.delenv("RNNKIT_PRODUCT", raising=False)
    monkeypatch.setattr(compiled, "cpu_vendor", lambda: "AuthenticAMD")
    for isa, family, routine in (("AVX512", "25", "onednn"), ("AVX512", "26", "packed-fma"), ("AVX2", "25", "packed-fma"), ("AVX2", "26", "packed-fma")):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda isa=isa: isa)
        monkeypatch.setattr(compiled, "cpu_family", lambda family=family: family)
        assert compiled.product_routine() == routine, (isa, family)
    monkeypatch.setattr(compiled, "cpu_vendor", lambda: "GenuineIntel")
    assert compiled.product_routine() == "mkl-packed"
    monkeypatch.setattr(compiled, "cpu_vendor", lambda: "NotMeasuredCPU")
    assert compiled.product_routine() == compiled.DEFAULT_PRODUCT_ROUTINE
    monkeypatch.setenv("RNNKIT_PRODUCT", "aten")
    assert compiled.product_routine() == "aten"
    monkeypatch.setenv("RNNKIT_PRODUCT", "bogus")
    with pytest.raises(UsageError, match="RNNKIT_PRODUCT='bogus'.*known: mkl-packed, onednn, packed-fma, aten"):
        compiled.product_routine()


def test_the_routine_in_use_is_the_one_that_runs(product_routine):
    """``product_in_use`` names the routine the loops compute with (what ``use_product`` returned:
    "aten" where the one asked for is not built in), as benchmarks/core_speed.py's header prints it."""
    assert compiled.product_in_use() == product_routine
    assert product_routine in compiled.PRODUCTS


@pytest.mark.parametrize("rows,K,N", [(16, 600, 50), (7, 256, 16), (13, 257, 33), (4, 40, 2048), (3, 64, 48), (37, 520, 100)])
def test_every_product_routine_computes_the_product_at_awkward_sizes(product_routine, two_threads, rows, K, N):
    """X @ R for a weight and a transposed weight, run as the loops run their products (a block of
    rows per thread where the batch is large enough): K past one 256-long slice of the packed-FMA kernel, N no multiple
    of its 16-column panels, row blocks that are no multiple of its 6-row blocks, and blocks under its
    minimum of 4 rows (3 rows: the ATen path)."""
    torch.manual_seed(rows * K + N)
    X, W = torch.randn(rows, K), torch.randn(N, K)
    for R in (W.t(), torch.randn(K, N)):
        (got,) = compiled_loops().products_only([X], [R], 2)
        expected = (X.double() @ R.double()).float()
        assert_equal_up_to_rounding([expected], [got], reduction=K)


@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_fused_gradients_hold_only_their_own_memory(fused_loops, kind, options):
    """Each parameter's .grad from the fused engine owns storage of its own size: none is a view into
    a larger product (the bias gradient is one row of the [dW_x, db] product), which .grad would keep
    alive and torch.save would write out whole."""
    layer = Recurrent(kind, 9, 4, engine="fused", **options)
    layer(torch.randn(3, 2, 9))[0].sum().backward()
    for name, parameter in layer.named_parameters():
        grad = parameter.grad
        assert grad.untyped_storage().nbytes() == grad.numel() * grad.element_size(), name


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("steps,rows,n", [(1, 1, 1), (3, 5, 7), (37, 6, 64), (130, 32, 67)])
def test_the_peephole_gradient_pass_sums_over_steps_and_rows(threads, steps, rows, n):
    """The compiled pass after the LSTM's backward loop gives Σ_t [dpre_u c<t-1>, dpre_f c<t-1>,
    dpre_o c<t>] as the torch ops do (float64: to rounding; float32: within a scaled tolerance),
    whatever the number of steps against the threads that split them."""
    if compiled_loops() is None:
        pytest.skip("the compiled CPU loops could not be built here")
    torch.manual_seed(steps * rows + n)
    with torch_threads(threads):
        for dtype in (torch.float64, torch.float32):
            d_pre, C = torch.randn(steps, rows, 4 * n, dtype=dtype), torch.randn(steps + 1, rows, n, dtype=dtype)
            got, expected = torch.full((3, n), float("nan"), dtype=dtype), torch.empty(3, n, dtype=torch.float64)
            compiled_loops().lstm_peephole_gradient(d_pre, C, got)
            fused_loops_module.lstm_peephole_gradient(d_pre.double(), C.double(), expected)
            assert_equal_up_to_rounding([expected.to(dtype)], [got], reduction=steps * rows)


@contextlib.contextmanager
def torch_threads(count: int):
    """torch's intra-op threads set to ``count`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def two_threads():
    with torch_threads(2):
        yield


@pytest.mark.parametrize("rows", [37, 9])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_compiled_loops_split_the_batch_over_threads(product_routine, two_threads, kind, options, dtype, rows):
    """With two threads each runs the time loop for its own block of rows (37 rows: 19 and 18, each
    product packed for its block; 9 rows: 5 and 4 under packed-fma, one block under the others),
    sequences ending at different steps in both blocks; every product routine the CPU table can name
    gives the reference's results."""
    reference, fast = twin_layers(kind, options, "fused", bidirectional=True, num_layers=1, dtype=dtype, hidden_size=12)
    torch.manual_seed(5)
    steps = 9
    x = torch.randn(steps, rows, 5, dtype=dtype, requires_grad=True)
    lengths = torch.randint(1, steps + 1, (rows,))
    lengths[: rows // 2 + 1] = steps  # the first block runs full length, the second one ragged
    state = random_state(reference, rows, dtype)
    expected = run_with_grads(reference, x, lengths, state)
    got = run_with_grads(fast, x, lengths, state)
    assert_equal_up_to_rounding(expected, got, reduction=steps * rows)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_fused_relu_rnn_carries_nan_as_the_reference_does(fused_loops, dtype):
    """relu(NaN) is NaN in torch, and its gradient passes through, with either loop implementation."""
    assert_relu_rnn_carries_nan("fused", dtype)


@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_compiled_loops_wide_products_match_reference(product_routine, two_threads, kind, options):
    """At n_a = 256 the products of every cell but the rnn (K·N from 256 × 512 up) are wide enough
    for oneDNN's routine (``kOneDnnMinimumProduct``), the course gru's candidate product is not: one
    step mixes both routines. Float32, two row blocks, ragged lengths."""
    reference, fast = twin_layers(kind, options, "fused", bidirectional=False, num_layers=1, dtype=torch.float32, input_size=7, hidden_size=256)
    torch.manual_seed(6)
    steps, rows = 5, 37
    x = torch.randn(steps, rows, 7, requires_grad=True)
    lengths = torch.randint(1, steps + 1, (rows,))
    lengths[:20] = steps
    state = random_state(reference, rows, torch.float32)
    expected = run_with_grads(reference, x, lengths, state)
    got = run_with_grads(fast, x, lengths, state)
    assert_equal_up_to_rounding(expected, got, reduction=max(steps * rows, 4 * 256))


def test_fused_inference_mode_and_repeated_calls_reuse_buffers(fused_loops):
    """Pooled work buffers: results stay right when calls interleave and buffers are reused."""
    reference, fast = twin_layers("lstm", {}, "fused", bidirectional=True, num_layers=2, dtype=torch.float64)
    xs = [torch.randn(T, B, 5, dtype=torch.float64) for _ in range(3)]
    with torch.no_grad():
        expected = [reference(x)[0] for x in xs]
        got = [fast(x)[0] for x in xs]
    assert_equal_up_to_rounding(expected, got, reduction=REDUCTION)
    # two graphs alive at once, then backward through the older one
    x1, x2 = (torch.randn(T, B, 5, dtype=torch.float64, requires_grad=True) for _ in range(2))
    out1, _ = fast(x1)
    out2, _ = fast(x2)
    (g1,) = torch.autograd.grad(out1.sum(), x1)
    (g2,) = torch.autograd.grad(out2.sum(), x2)
    (r1,) = torch.autograd.grad(reference(x1)[0].sum(), x1)
    (r2,) = torch.autograd.grad(reference(x2)[0].sum(), x2)
    assert_equal_up_to_rounding([r1, r2], [g1, g2], reduction=REDUCTION)


def test_fused_retain_graph_backward_twice(fused_loops):
    reference, fast = twin_layers("gru", {}, "fused", bidirectional=False, num_layers=1, dtype=torch.float64)
    x = torch.randn(T, B, 5, dtype=torch.float64, requires_grad=True)
    out, _ = fast(x)
    (first,) = torch.autograd.grad(out.sum(), x, retain_graph=True)
    (second,) = torch.autograd.grad((out**2).sum(), x)
    (expected,) = torch.autograd.grad((reference(x)[0] ** 2).sum(), x)
    assert_equal_up_to_rounding(expected, second, reduction=REDUCTION)
    assert first.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("engine", ["fused", "native"])
@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_engines_on_gpu_equal_reference(engine, kind, options):
    if engine == "native" and (kind, options) not in NATIVE:
        pytest.skip("torch has no such cell")
    reference, other = twin_layers(kind, options, engine, bidirectional=True, num_layers=2, dtype=torch.float64, device="cuda")
    x = torch.randn(T, B, 5, dtype=torch.float64, device="cuda", requires_grad=True)
    expected = run_with_grads(reference, x, torch.tensor([7, 3, 5, 1]), None)
    got = run_with_grads(other, x, torch.tensor([7, 3, 5, 1]), None)
    assert_equal_up_to_rounding(expected, got, reduction=REDUCTION)


def test_fused_large_batch_splits_its_element_wise_pass_over_threads(fused_loops):
    """The compiled loops split a batch's rows over threads, each running the time loop for its
    own block: 2,100 rows of 64 units, two blocks of 1,050 rows with two threads. The
    weight gradients sum 4,200 rows: in float32 their rounding differs between CPUs and BLAS kernels
    by about 1e-4 (AMD EPYC vs Intel Xeon), which the tolerance scales with."""
    for kind in ("lstm", "gru"):
        reference, fast = twin_layers(kind, {}, "fused", bidirectional=False, num_layers=1, dtype=torch.float32, input_size=4, hidden_size=64)
        torch.manual_seed(0)
        x = torch.randn(2, 2100, 4, requires_grad=True)
        assert_equal_up_to_rounding(run_with_grads(reference, x, None, None), run_with_grads(fast, x, None, None), reduction=2 * 2100)


def test_native_flat_weights_add_no_autograd_nodes_over_torch(monkeypatch):
    """The flat weight buffer (the CUDA layout) is built in one autograd node, so a backward pass
    through rnnkit's native lstm walks no more nodes than through torch.nn.LSTM: at small shapes a
    GPU step waits on the host, which pays for every node (benchmarks/native_host.py)."""
    from rnnkit.engines import native

    spec = importlib.util.spec_from_file_location("native_host", Path(__file__).resolve().parents[1] / "benchmarks" / "native_host.py")
    native_host = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(native_host)

    monkeypatch.setitem(native.FLAT_WEIGHTS, "cpu", True)
    for bidirectional in (False, True):
        theirs = torch.nn.LSTM(4, 4, num_layers=2, bidirectional=bidirectional)
        ours = Recurrent.from_torch(theirs, engine="native")
        x = torch.randn(3, 2, 4)
        assert native_host.autograd_nodes(ours(x)[0]) <= native_host.autograd_nodes(theirs(x)[0])


@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_under_autocast_the_fused_engine_multiplies_outside_its_loop_in_bfloat16(fused_loops, monkeypatch, kind, options):
    """Under CPU autocast (bfloat16) the products outside the time loop — the input product, dx and
    the weight gradients — run in bfloat16, as autocast runs a linear layer, and the loop stays
    float32: outputs, states and gradients come back float32, within bfloat16's rounding (8 bits)
    of the reference engine's, and measurably off float32's (so the bfloat16 path ran)."""
    calls = []
    product = fused.product
    monkeypatch.setattr(fused, "product", lambda a, b, dtype, **out: calls.append(dtype) or product(a, b, dtype, **out))
    reference, layer = twin_layers(kind, options, "fused", bidirectional=True, num_layers=2, dtype=torch.float32)
    torch.manual_seed(3)
    x = torch.randn(T, B, 5, requires_grad=True)
    state = random_state(reference, B, torch.float32)
    lengths = LENGTHS["ragged"]
    expected = run_with_grads(reference, x, lengths, state)

    def fused_run(precision):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            return run_with_grads(layer, x, lengths, state)

    def relative(tensors):  # the largest relative (Frobenius) error of any output or gradient
        return max(((g - e).norm() / e.norm()).item() for g, e in zip(tensors, expected) if e.norm() > 0)

    exact = fused_run("fp32")
    assert set(calls) == {torch.float32}
    calls.clear()
    got = fused_run("bf16")
    assert set(calls) == {torch.bfloat16}  # the input product, dx, [dW_x, db] and the recurrent weight gradients
    assert len(calls) >= 2 * 2 * 4  # per layer and direction
    assert all(t.dtype == torch.float32 for t in got)
    assert relative(got) < 0.03, relative(got)  # bfloat16's 2^-8 per factor, through two layers and both directions
    assert relative(got) > 30 * max(relative(exact), 1e-7)  # float32's own rounding is about 1e-7


@pytest.mark.parametrize("kind,options", CELL_CONFIGS, ids=CELL_IDS)
def test_fused_saturated_gates_equal_reference(fused_loops, two_threads, kind, options):
    """Pre-activations far past the clamps of the compiled loops' exp (-87, 88): gates at 0 and 1,
    tanh at ±1, the sigmoids' tails below float32's smallest normal number. The same results as the
    reference, up to rounding."""
    reference, fast = twin_layers(kind, options, "fused", bidirectional=False, num_layers=1, dtype=torch.float32, input_size=5, hidden_size=16)
    torch.manual_seed(8)
    x = (torch.randn(6, 19, 5) * 150).requires_grad_()  # input weights up to 1/4: |z| up to ~220, 7 % past 88
    state = random_state(reference, 19, torch.float32)
    expected = run_with_grads(reference, x, None, state)
    got = run_with_grads(fast, x, None, state)
    assert_equal_up_to_rounding(expected, got, reduction=6 * 19)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_fused_keeps_denormal_numbers_as_the_reference_does(fused_loops, two_threads, nonlinearity, dtype):
    """Values below the dtype's smallest normal number are numbers, not zeros: a relu lets a denormal
    pre-activation through (and its gradient back), and a recurrence with Waa = 2 doubles a denormal
    input over 100 steps to about 1e-9 (float32), which a loop that flushed denormals would leave at 0."""
    tiny = torch.finfo(dtype).tiny
    reference, fast = twin_layers("rnn", {"nonlinearity": nonlinearity}, "fused", bidirectional=False, num_layers=1, dtype=dtype, input_size=1, hidden_size=1)
    with torch.no_grad():
        for layer in (reference, fast):
            layer.cells["l0"].weight.copy_(torch.tensor([[2.0, 1.0]], dtype=dtype))  # [Waa, Wax]
            layer.cells["l0"].bias.zero_()
    x = torch.zeros(100, 9, 1, dtype=dtype)
    x[0, :, 0] = tiny * torch.linspace(0.05, 0.9, 9, dtype=dtype)  # denormal inputs, one per row
    x.requires_grad_()
    expected = run_with_grads(reference, x, None, None)
    got = run_with_grads(fast, x, None, None)
    assert expected[0][-1].abs().min() > 100 * tiny  # the reference carries them into normal numbers
    assert_equal_up_to_rounding(expected, got, reduction=100 * 9)


def test_compiled_loops_refuse_tensors_of_another_dtype():
    """The compiled loops read raw pointers of one dtype: a float64 weight in a float32 loop is an
    error, not a read past the weight's end."""
    loops = compiled_loops()
    if loops is None:
        pytest.skip("the compiled CPU loops could not be built here")
    T, B, n = 3, 2, 4
    G, A, C, TC = torch.zeros(T, B, 4 * n), torch.zeros(T + 1, B, n), torch.zeros(T + 1, B, n), torch.zeros(T, B, n)
    with pytest.raises(RuntimeError, match="lstm_forward: every tensor must be Float, not Double"):
        loops.lstm_forward(G, torch.zeros(4 * n, n, dtype=torch.float64), None, A, C, TC, [B] * T)
    with pytest.raises(RuntimeError, match="products_only: float32 tensors only"):
        loops.products_only([torch.zeros(B, n)], [torch.zeros(n, n, dtype=torch.float64)], T)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_fused_gates_saturated_by_a_huge_input_pass_no_false_gradient(fused_loops, kind):
    """One row with an input of 1e30 saturates its gates: their slope σ(1 - σ) is 0 in torch (or a
    denormal), so that row adds nothing to the weight gradient. A sigmoid whose tail stops at 1e-30
    (exp clamped at 69) gave a slope of 1e-30 and, times the input, a false gradient of about 1."""
    reference, fast = twin_layers(kind, {}, "fused", bidirectional=False, num_layers=1, dtype=torch.float32, input_size=2, hidden_size=3)
    x = torch.tensor([[[1e30, 0.0], [1.0, 1.0]]])
    expected, got = [], []
    for layer, grads in ((reference, expected), (fast, got)):
        layer(x)[0].sum().backward()
        grads.append(layer.cells["l0"].weight.grad)
    assert_equal_up_to_rounding(expected, got, reduction=2)
