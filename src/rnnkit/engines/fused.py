r"""The fused engine: a hand-written backward pass through time for each cell kind.

What makes it fast, for every cell:

* the input products ``Wx x<t> + b`` for all T steps are one matrix product before the loop, and
  that (T, B, G·n_a) result is the buffer the loop then works in: each step adds its recurrent
  product into its slice and applies the activations in place;
* each step does one recurrent product (two for ``gru``, whose relevance gate must be known before
  the candidate's product) and its element-wise work, in the backward pass too;
* the weight gradients are products after the loop: ``dW_a = Σ_t dpre<t>ᵀ a<t-1>`` as one
  ``(T·B, G·n_a)ᵀ @ (T·B, n_a)`` product, and likewise ``dx``;
* the bias rides in the input product as a weight on a constant input (the augmented input
  x̂<t> = [x<t>, 1], so W_x x<t> + b = [W_x, b] x̂<t>): the forward pass needs no separate pass
  adding b, and ``[dW_x, db] = Σ_t dpre<t>ᵀ x̂<t>`` is one product, so the bias gradient costs
  no extra pass over the (T, B, G·n_a) gradient buffer;
* under autocast those products outside the time loop (the input product, the weight gradients
  and ``dx``) run in autocast's dtype, as autocast runs a linear layer (``product``), while the
  time loop, its states and the gradients it carries stay in the parameters' precision: on a CPU
  with native bfloat16 these big products are most of the engine's arithmetic.

The pieces: this module holds, per cell kind, a ``Kernel`` that allocates the buffers, runs the
time loops and does the products after them, plus the autograd glue and the engine. The time loops
themselves exist twice with the same functions and buffers: ``fused_loops.py`` on torch ops (any
device; it documents the buffers) and ``csrc/fused_loops.cpp``, compiled for the CPU on first use
(``compiled.py``), where each step's element-wise work is one vectorised pass, the recurrent
product accumulates into the gate buffer through the routine (MKL, oneDNN or ATen) measured best for the CPU
(``compiled.PRODUCT_ROUTINES``), and each thread runs the whole time loop for its own block of
batch rows. A third implementation,
``triton/loops.py``, writes each step as Triton kernels: that is the ``triton`` engine below.

Variable lengths: the engine sorts the batch by length, so the sequences still running at step t
are the first ``batch_sizes[t]`` rows, and every step works on that prefix only (as
``torch.nn.utils.rnn.PackedSequence`` does). Work buffers are zero-filled when padded.

The equations and block layouts are those of ``rnnkit.cells``; tests prove this engine, with either
loop implementation, equal to the reference engine in outputs, final states and all gradients.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..cells import Cell
from ..padding import batch_sizes
from . import fused_loops
from .base import DirectionalEngine, State
from .triton import PERSISTENT_KINDS
from .compiled import compiled_loops
from .workspace import WORKSPACE
from ..errors import UsageError

def loops_for(x: Tensor) -> ModuleType:
    """The loop implementation for ``x``'s device and dtype: compiled on the CPU (float32 and
    float64) when it builds, the torch-op loops otherwise."""
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not FORCE_TORCH_LOOPS:
        compiled = compiled_loops()
        if compiled is not None:
            return compiled
    return fused_loops


FORCE_TORCH_LOOPS = False  # tests set this to check the torch-op loops on the CPU as well


class Kernel:
    """One direction's recurrence for one cell kind: sets up the buffers, runs the time loops
    (``fused_loops``), and finishes with the products after the loop.

    A kernel instance lives for one forward call and its backward. ``params`` are the recurrent
    parameters it differentiates; the input product and its gradients are done by the caller.
    ``forward`` may overwrite ``x_proj`` (the caller's own buffer) in place.
    """

    def __init__(self, cell: Cell, lengths: Tensor | None, sizes: list[int], loops: ModuleType):
        self.cell = cell
        self.loops = loops  # fused_loops, the compiled loops or triton_loops: the same functions
        self.n = cell.hidden_size
        self.lengths = lengths  # (B,) sorted descending, or None: no padding
        self.sizes = sizes  # rows still running at each step
        self.forward_buffers: list[Tensor] = []
        self.backward_buffers: list[Tensor] = []
        self.products: torch.dtype | None = None  # the dtype of the products after the loop (None: the loop's)

    @staticmethod
    def params(cell: Cell) -> tuple[Tensor, ...]:
        return (cell.weight_a,)

    def forward(self, x_proj: Tensor, params: tuple[Tensor, ...], state0: State) -> tuple[Tensor, State]:
        """Outputs (T, B, n_a) and the final state, from x_proj = Wx x<t> + b (T, B, G·n_a)."""
        raise NotImplementedError

    def backward(self, d_out: Tensor, d_final: State) -> tuple[Tensor, tuple[Tensor, ...], State]:
        """Gradients of x_proj, of ``params`` and of the initial state."""
        raise NotImplementedError

    # -- helpers shared by the kernels ---------------------------------------------------------------
    def buffer(self, *shape: int, like: Tensor) -> Tensor:
        """A fresh tensor for results that leave the kernel; zero-filled when padded."""
        make = torch.empty if self.lengths is None else torch.zeros
        return make(shape, dtype=like.dtype, device=like.device)

    def work(self, *shape: int, like: Tensor, backward: bool = False) -> Tensor:
        """A pooled work buffer that never leaves the kernel; zero-filled when padded, so padded rows
        never carry garbage. Forward buffers go back to the pool when the kernel is freed (with the
        autograd graph), backward ones at the end of the backward pass."""
        buf = WORKSPACE.take(shape, like, zero=self.lengths is not None)
        (self.backward_buffers if backward else self.forward_buffers).append(buf)
        return buf

    def release(self, backward_only: bool = False) -> None:
        WORKSPACE.give_back(self.backward_buffers)
        self.backward_buffers = []
        if not backward_only:
            WORKSPACE.give_back(self.forward_buffers)
            self.forward_buffers = []

    def __del__(self):
        try:
            self.release()
        except Exception:  # interpreter shutdown: the pool may be gone already
            pass

    def state_buffer(self, T: int, initial: Tensor, pooled: bool = False) -> Tensor:
        """(T + 1, B, n_a): slot 0 holds the initial state, slot t + 1 the state after step t."""
        shape = (T + 1, *initial.shape)
        S = self.work(*shape, like=initial) if pooled else self.buffer(*shape, like=initial)
        S[0] = initial
        return S

    def state_gradients(self, d_out: Tensor, d_final: Tensor) -> Tensor:
        """(T + 1, B, n_a): slot t + 1 = output gradient of step t, plus the final state's gradient
        at each sequence's last step; slot 0 = 0, to receive the initial state's gradient."""
        T, B, _ = d_out.shape
        DA = self.work(T + 1, *d_out.shape[1:], like=d_out, backward=True)
        DA[0] = 0
        DA[1:] = d_out
        if self.lengths is None:
            DA[T] += d_final
        else:
            DA[self.lengths, torch.arange(B, device=d_out.device)] += d_final
        return DA

    def gru_forward(self, loop, x_proj: Tensor, params: tuple[Tensor, ...], state0: State) -> tuple[Tensor, State]:
        """The two GRUs' forward: ``loop(G, *params, C, aux, sizes)`` fills the state buffer C and a
        (T, B, n_a) buffer ``aux`` that their backward pass reads (saved as C, G, aux, W_a)."""
        T, B, _ = x_proj.shape
        C = self.state_buffer(T, state0[0])
        aux = self.work(T, B, self.n, like=x_proj)
        loop(x_proj, *params, C, aux, self.sizes)
        self.saved = C, x_proj, aux, params[0]
        return C[1:], (self.final(C),)

    def weight_grad(self, d_pre: Tensor, inputs: Tensor, columns: slice = slice(None)) -> Tensor:
        """Σ_t d_pre<t>[:, columns]ᵀ inputs<t> as one product: (T, B, m), (T, B, n) -> (m', n)."""
        T, B = inputs.shape[:2]
        return product(d_pre.view(T * B, -1)[:, columns].t(), inputs.reshape(T * B, -1), self.products or d_pre.dtype)

    def final(self, S: Tensor) -> Tensor:
        """Each sequence's state at its own last real step, from a (T + 1, B, n) state buffer."""
        if self.lengths is None:
            return S[-1].clone()
        return S[self.lengths, torch.arange(S.shape[1], device=S.device)]


def augmented_input(x: Tensor, out: Tensor) -> Tensor:
    """x̂<t> = [x<t>, 1] for every step, so that W_x x<t> + b = [W_x, b] x̂<t>: x (T, B, n_x) into
    ``out`` (T·B, n_x + 1), which is returned."""
    n_x = x.shape[-1]
    out[:, :n_x] = x.reshape(-1, n_x)
    out[:, n_x] = 1
    return out


def product(a: Tensor, b: Tensor, dtype: torch.dtype, out: Tensor | None = None) -> Tensor:
    """a @ b, (m, k) @ (k, n) -> (m, n) in a's dtype (into ``out`` when given), multiplied in
    ``dtype``: autocast's lower precision (bfloat16, float16) rounds both factors and the result, as
    it does for a linear layer; the accumulation is float32 in oneDNN's, MKL's and cuBLAS's kernels."""
    if dtype == a.dtype:
        return a.mm(b) if out is None else torch.mm(a, b, out=out)
    result = a.to(dtype).mm(b.to(dtype))
    return result.to(a.dtype) if out is None else out.copy_(result)


class RNNKernel(Kernel):
    """a<t> = g(Wa[a<t-1>, x<t>] + ba)."""

    def forward(self, x_proj, params, state0):
        (W_a,) = params
        A = self.state_buffer(x_proj.shape[0], state0[0])
        self.relu = self.cell.nonlinearity == "relu"
        self.loops.rnn_forward(x_proj, W_a, A, self.sizes, self.relu)
        self.saved = A, W_a
        return A[1:], (self.final(A),)

    def backward(self, d_out, d_final):
        A, W_a = self.saved
        DA = self.state_gradients(d_out, d_final[0])
        d_pre = self.work(*d_out.shape, like=d_out, backward=True)
        self.loops.rnn_backward(A, W_a, DA, d_pre, self.sizes, self.relu)
        return d_pre, (self.weight_grad(d_pre, A[:-1]),), (DA[0].clone(),)


class SimpleGRUKernel(Kernel):
    """Γu, c̃ from [c<t-1>, x<t>]; c<t> = c<t-1> + Γu * (c̃<t> - c<t-1>). Blocks [u c]."""

    def forward(self, x_proj, params, state0):
        (W_a,) = params
        C = self.state_buffer(x_proj.shape[0], state0[0])
        self.loops.gru_simple_forward(x_proj, W_a, C, self.sizes)  # x_proj becomes Γu, c̃
        self.saved = C, x_proj, W_a
        return C[1:], (self.final(C),)

    def backward(self, d_out, d_final):
        C, G, W_a = self.saved
        DC = self.state_gradients(d_out, d_final[0])
        d_pre = self.work(*G.shape, like=d_out, backward=True)
        self.loops.gru_simple_backward(G, C, W_a, DC, d_pre, self.sizes)
        return d_pre, (self.weight_grad(d_pre, C[:-1]),), (DC[0].clone(),)


class GRUKernel(Kernel):
    """The course's GRU, relevance before the product. Blocks [u r c]; two products per step."""

    def forward(self, x_proj, params, state0):
        # RC: Γr * c<t-1>, the candidate product's input; x_proj becomes Γu, Γr, c̃
        return self.gru_forward(self.loops.gru_forward, x_proj, params, state0)

    def backward(self, d_out, d_final):
        C, G, RC, W_a = self.saved
        DC = self.state_gradients(d_out, d_final[0])
        d_pre = self.work(*G.shape, like=d_out, backward=True)
        self.loops.gru_backward(G, C, RC, W_a, DC, d_pre, self.sizes)
        ur, cand = slice(0, 2 * self.n), slice(2 * self.n, None)  # blocks [u r] see c<t-1>, block c sees Γr * c<t-1>
        dW_a = torch.cat([self.weight_grad(d_pre, C[:-1], ur), self.weight_grad(d_pre, RC, cand)])
        return d_pre, (dW_a,), (DC[0].clone(),)


class GRUCuDNNKernel(Kernel):
    """The cuDNN GRU, relevance after the product. Blocks [r u c]; extra parameter b_cc."""

    @staticmethod
    def params(cell):
        return (cell.weight_a, cell.bias_cc)

    def forward(self, x_proj, params, state0):
        # HC: Wcc c<t-1> + bcc, which Γr scales; x_proj becomes Γr, Γu, c̃
        return self.gru_forward(self.loops.gru_cudnn_forward, x_proj, params, state0)

    def backward(self, d_out, d_final):
        C, G, HC, W_a = self.saved
        n = self.n
        DC = self.state_gradients(d_out, d_final[0])
        # d_h: gradient of the recurrent product [r u c] (its c block is Γr * dpre_c);
        # d_xc: gradient of the candidate's input part, dpre_c
        d_h = self.work(*G.shape, like=d_out, backward=True)
        d_xc = self.work(*d_out.shape, like=d_out, backward=True)
        self.loops.gru_cudnn_backward(G, C, HC, W_a, DC, d_h, d_xc, self.sizes)
        dW_a, d_b_cc = self.weight_grad(d_h, C[:-1]), d_h[..., 2 * n :].sum(dim=(0, 1))
        d_h[..., 2 * n :] = d_xc  # d_h becomes the gradient of x_proj: [dpre_r, dpre_u, dpre_c]
        return d_h, (dW_a, d_b_cc), (DC[0].clone(),)


class LSTMKernel(Kernel):
    """c<t> = Γu*c̃ + Γf*c<t-1>, a<t> = Γo*tanh(c<t>); optional peepholes. Blocks [u f c o]."""

    @staticmethod
    def params(cell):
        return (cell.weight_a, cell.peephole) if cell.peepholes else (cell.weight_a,)

    def forward(self, x_proj, params, state0):
        W_a, *peephole = params
        peephole = peephole[0] if peephole else None
        a0, c0 = state0
        T, B, _ = x_proj.shape
        A, C = self.state_buffer(T, a0), self.state_buffer(T, c0, pooled=True)
        TC = self.work(T, B, self.n, like=x_proj)  # tanh(c<t>)
        self.loops.lstm_forward(x_proj, W_a, peephole, A, C, TC, self.sizes)  # x_proj becomes Γu Γf c̃ Γo
        self.saved = A, C, x_proj, TC, W_a, peephole
        return A[1:], (self.final(A), self.final(C))

    def backward(self, d_out, d_final):
        A, C, G, TC, W_a, peephole = self.saved
        DA = self.state_gradients(d_out, d_final[0])
        carry_c = d_final[1].clone()  # dc<t> from the future; rows not yet running keep dc_final
        d_pre = self.work(*G.shape, like=d_out, backward=True)
        self.loops.lstm_backward(G, C, TC, W_a, peephole, DA, carry_c, d_pre, self.sizes)
        d_params = (self.weight_grad(d_pre, A[:-1]),)
        if peephole is not None:
            d_peephole = peephole.new_empty(peephole.shape)  # [3, n_a], contiguous
            self.loops.lstm_peephole_gradient(d_pre, C, d_peephole)  # Σ dpre_u,f c<t-1>, Σ dpre_o c<t>
            d_params += (d_peephole,)
        return d_pre, d_params, (DA[0].clone(), carry_c)


# cell kind -> kernel; a cell kind without an entry runs on the other engines
KERNELS: dict[str, type[Kernel]] = {
    "rnn": RNNKernel,
    "gru": GRUKernel,
    "gru-simple": SimpleGRUKernel,
    "gru-cudnn": GRUCuDNNKernel,
    "lstm": LSTMKernel,
}


class _FusedRecurrence(torch.autograd.Function):
    """Autograd glue. Inputs: the kernel, how many recurrent params follow, x (T, B, n_x), the
    input weight and bias, then the recurrent params and the initial state tensors."""

    @staticmethod
    def forward(ctx, kernel: Kernel, n_params: int, x: Tensor, W_x: Tensor, b: Tensor, *tensors: Tensor):
        T, B, n_x = x.shape
        # x̂ is built again in the backward pass rather than kept: kept, it would be one more copy of
        # the input per layer and direction for the graph's lifetime; building it is one copy of x
        x_hat = augmented_input(x, WORKSPACE.take((T * B, n_x + 1), x))  # [T B, n_x + 1]
        W_hat = torch.cat((W_x, b[:, None]), dim=1)  # [G n_a, n_x + 1]: [W_x, b]
        x_proj = kernel.work(T, B, W_x.shape[0], like=x)  # [T, B, G n_a]
        product(x_hat, W_hat.t(), kernel.products or x.dtype, out=x_proj.view(T * B, -1))  # W_x x<t> + b, every step
        WORKSPACE.give_back([x_hat])
        out, final = kernel.forward(x_proj, tensors[:n_params], tensors[n_params:])
        if kernel.keep_for_backward:
            ctx.kernel = kernel
            ctx.save_for_backward(x, W_x)
        else:
            kernel.release()
        return (out, *final)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, *d_final):
        x, W_x = ctx.saved_tensors
        d_x_proj, d_params, d_state0 = ctx.kernel.backward(d_out, d_final)
        T, B, n_x = x.shape
        d_pre = d_x_proj.reshape(T * B, -1)  # [T B, G n_a]
        needs = ctx.needs_input_grad
        products = ctx.kernel.products or d_pre.dtype
        dx = product(d_pre, W_x, products).view(T, B, n_x) if needs[2] else None
        dW_x = db = None
        if needs[3] or needs[4]:
            # x̂ᵀ dpre rather than dpreᵀ x̂: the (n_x + 1) × (G n_a) orientation is the faster one in
            # MKL's sgemm (docs/benchmarks.md, "Intel Xeon with AMX"); the transposed dW_x is copied into
            # the cell weight's gradient by autograd's slice backward, as before
            x_hat = augmented_input(x, ctx.kernel.work(T * B, n_x + 1, like=x, backward=True))  # [T B, n_x + 1]
            d_W_hat_t = product(x_hat.t(), d_pre, products)  # [n_x + 1, G n_a]: Σ_t x̂<t>ᵀ dpre<t> = [dW_x, db]ᵀ
            dW_x = d_W_hat_t[:n_x].t() if needs[3] else None  # [G n_a, n_x]
            # [G n_a]: Σ_t dpre<t>, the product with the 1s; a copy, or bias.grad would keep the whole product alive
            db = d_W_hat_t[n_x].clone() if needs[4] else None
        ctx.kernel.release(backward_only=True)
        return (None, None, dx, dW_x, db, *d_params, *d_state0)


class FusedEngine(DirectionalEngine):
    name = "fused"

    def unsupported(self, cell):
        if cell.kind not in KERNELS:
            return f"no fused kernel for cell {cell.kind!r}"
        return None

    def loops_for(self, x: Tensor) -> ModuleType:
        return loops_for(x)

    def run_layer(self, cells, x, lengths, states):
        if lengths is None:
            return super().run_layer(cells, x, lengths, states)
        # Sort by length once for both directions, so that the running rows are always a prefix.
        order = torch.argsort(lengths, descending=True, stable=True)
        restore = torch.argsort(order)
        sorted_states = [tuple(s.index_select(0, order) for s in state) for state in states]
        out, finals = super().run_layer(cells, x.index_select(1, order), lengths[order], sorted_states)
        return out.index_select(1, restore), [tuple(s.index_select(0, restore) for s in f) for f in finals]

    def autocast_dtype(self, cell: Cell, device: torch.device) -> torch.dtype:
        """The precision this engine's time loop computes in under autocast. The torch-op and
        compiled loops keep the parameters' precision; only the products outside the loop take
        autocast's dtype (``product``)."""
        return cell.weight.dtype

    def run_direction(self, cell, x, lengths, state):
        dtype = cell.weight.dtype
        if torch.is_autocast_enabled(x.device.type):
            dtype = self.autocast_dtype(cell, x.device)
            products = autocast_dtype_on(x.device) if dtype == torch.float32 else dtype  # autocast lowers float32 only
            with torch.autocast(x.device.type, enabled=False):
                return self._run(cell, x.to(dtype), lengths, tuple(s.to(dtype) for s in state), dtype, products)
        return self._run(cell, x, lengths, state, dtype)

    def _run(self, cell, x, lengths, state, dtype, products=None):
        """One direction in ``dtype``: parameters in another dtype enter through differentiable casts.
        ``products``: the dtype of the products outside the time loop, when not ``dtype``."""
        T, B = x.shape[:2]
        sizes = [B] * T if lengths is None else batch_sizes(lengths, T)
        kernel = KERNELS[cell.kind](cell, lengths, sizes, self.loops_for(x))
        kernel.products = None if products == dtype else products
        params = tuple(p.to(dtype) for p in kernel.params(cell))
        W_x, b = cell.weight_x.to(dtype), cell.bias.to(dtype)
        inputs = (x, W_x, b, *params, *state)
        kernel.keep_for_backward = torch.is_grad_enabled() and any(t.requires_grad for t in inputs)
        out, *final = _FusedRecurrence.apply(kernel, len(params), x, W_x, b, *params, *state)
        return out, tuple(final)


class TritonEngine(FusedEngine):
    """The fused engine with its time loops as Triton kernels (``triton/loops.py``): CUDA devices,
    or the CPU through Triton's interpreter (``TRITON_INTERPRET=1``, slow: for tests). Chosen only
    when asked for (``engine="triton"``) until it has been timed against cuDNN on a GPU."""

    name = "triton"

    def unsupported(self, cell):
        reason = super().unsupported(cell)
        if reason is None and not triton_available():
            reason = "Triton is not installed (pip install triton)"
        return reason

    def unavailable_on(self, device) -> str | None:
        import os

        if torch.device(device).type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            return f"engine={self.name!r} runs on CUDA devices (or on the CPU with TRITON_INTERPRET=1), not on {torch.device(device).type!r}"
        return None

    def autocast_dtype(self, cell, device):
        """Under autocast the Triton loops run in autocast's dtype (float16 or bfloat16), accumulating
        in float32; the float32 parameters are cast on the way in and get float32 gradients."""
        return autocast_dtype_on(device)

    def loops_for(self, x: Tensor) -> ModuleType:
        reason = self.unavailable_on(x.device)
        if reason:
            raise UsageError(reason)
        from .triton import loops as triton_loops

        if not triton_loops.supported_dtype(x.dtype):
            raise UsageError(f"engine='triton' runs float16, bfloat16, float32 and float64, not {x.dtype}")
        return triton_loops


class PersistentTritonEngine(TritonEngine):
    """The triton engine with one launch per direction for the whole time loop
    (``triton/persistent.py``): the programs keep their slice of the recurrent weights on chip and
    meet at a grid barrier between steps. For the cells in ``PERSISTENT_KINDS``."""

    name = "persistent"

    def unsupported(self, cell):
        reason = super().unsupported(cell)
        if reason is None and cell.kind not in PERSISTENT_KINDS:
            reason = f"no persistent kernel for cell {cell.kind!r} (these have one: {', '.join(PERSISTENT_KINDS)})"
        return reason

    def loops_for(self, x: Tensor) -> ModuleType:
        super().loops_for(x)  # the same device and dtype checks
        from .triton import persistent as triton_persistent

        return triton_persistent


def autocast_dtype_on(device: torch.device) -> torch.dtype:
    """The dtype autocast lowers products to on ``device``'s type (bfloat16 or float16)."""
    get = getattr(torch, "get_autocast_dtype", None)
    if get is not None:
        return get(device.type)
    return torch.get_autocast_gpu_dtype() if device.type == "cuda" else torch.get_autocast_cpu_dtype()


def triton_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("triton") is not None
