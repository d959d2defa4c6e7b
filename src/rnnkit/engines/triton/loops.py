r"""The time loops of the fused engine as Triton kernels: the ``triton`` engine (GPUs; the CPU too,
through Triton's interpreter, ``TRITON_INTERPRET=1``, which is how CI tests them).

The same functions, buffers and block layouts as ``engines/fused_loops.py`` (read its docstring for the
buffers): the input products ``Wx x<t> + b`` of all steps are one product before the loop, the
weight gradients products after it (``engines/fused.py``), and each time step here is one or two kernel
launches on the running rows (the batch is sorted by length, so they are a prefix of ``bs`` rows):

* forward, one launch per step (two for ``gru``): a program owns a tile of rows × hidden units,
  computes the recurrent product of every gate block for its units (``tl.dot`` over the previous
  state, accumulated in float32, or float64 for float64 data), adds the input product, applies the
  activations and writes the gates, c<t> and a<t>: no separate element-wise pass;
* backward, per step: an element-wise kernel turns the state gradients into pre-activation
  gradients (from the gates saved by the forward pass) and carries the direct paths back
  (Γf * dc<t> for the LSTM, (1 - Γu) * dc<t> for the GRUs), then a product kernel adds
  dpre<t> Wa into the previous state's gradient (``gru``: two of each, for Γr's product).

Activations are computed in float32 (float64 for float64 data) and stored in the buffers' dtype, so
float16 and bfloat16 layers run with float32 accumulation. tanh(x) is written as 2σ(2x) − 1, which
Triton's interpreter and every GPU backend compute alike.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..fused_loops import lstm_peephole_gradient  # noqa: F401 (the same function on every device: a pass after the loop)

BLOCK_K = 32  # reduction tile of the products


def block_k(x: Tensor) -> int:
    """The reduction tile for ``x``'s dtype: float64 products are element-wise (``_mm``), whose
    (rows, BK, units) intermediate must stay small."""
    return 8 if x.dtype == torch.float64 else BLOCK_K


def _tiles(bs: int, n: int) -> tuple[int, int]:
    """Tile of rows × units per program: tl.dot needs at least 16 each way."""
    return (16 if bs <= 16 else 32), (32 if n <= 32 else 64)


def _acc(x: Tensor):
    return tl.float64 if x.dtype == torch.float64 else tl.float32


# -- building blocks -------------------------------------------------------------------------------


@triton.jit
def _tanh(x):
    return 2 * tl.sigmoid(2 * x) - 1


@triton.jit
def _mm(x, w, acc):
    """acc + x @ w, accumulated in acc's dtype. float64 is multiplied element-wise and summed:
    Triton 3.6 does not compile a float64 ``tl.dot`` for Hopper (seen on an H200)."""
    if x.dtype == tl.float64:
        return acc + tl.sum(x[:, :, None] * w[None, :, :], axis=1)
    else:
        return tl.dot(x, w, acc, input_precision="ieee")


@triton.jit
def _load_cg(ptr, mask):
    """A load of shared state through L2 only (``.cg``), zeros outside ``mask``: the persistent
    kernels' state, which other programs wrote (L1 is not coherent between multiprocessors)."""
    return tl.load(ptr, mask=mask, other=0.0, cache_modifier=".cg")


@triton.jit
def _load_x(ptr, mask, X_FROM_L2: tl.constexpr):
    """A load of x, zeros outside ``mask``; through L2 only with ``X_FROM_L2``."""
    if X_FROM_L2:
        return _load_cg(ptr, mask)
    else:
        return tl.load(ptr, mask=mask, other=0.0)


@triton.jit
def _dot(acc, X, stride_x, W, stride_wj, stride_wk, rows, row_mask, cols, col_mask, K, BK: tl.constexpr, X_FROM_L2: tl.constexpr):
    """acc[rows, j] += Σ_k X[rows, k] W[k, cols[j]], k < K: a tile of x @ W, where element (k, j) of W
    is at ``W + cols[j] * stride_wj + k * stride_wk``. A row-major (N, K) weight read as its
    transpose (x @ Wᵀ, the forward products) has strides (stride_w, 1); a row-major (K, N) one
    (dpre<t> Wa, the backward products) has (1, stride_w)."""
    for k0 in range(0, K, BK):
        kk = k0 + tl.arange(0, BK)
        k_mask = kk < K
        x = _load_x(X + rows[:, None] * stride_x + kk[None, :], row_mask[:, None] & k_mask[None, :], X_FROM_L2)
        w = tl.load(W + cols[None, :] * stride_wj + kk[:, None] * stride_wk, mask=col_mask[None, :] & k_mask[:, None], other=0.0)
        acc = _mm(x, w, acc)
    return acc


@triton.jit
def _dot_wt(acc, X, stride_x, W, stride_w, rows, row_mask, w_rows, w_mask, K, BK: tl.constexpr, X_FROM_L2: tl.constexpr):
    """acc[rows, j] += Σ_k X[rows, k] W[w_rows[j], k]: a tile of x @ Wᵀ (W row-major, (N, K))."""
    return _dot(acc, X, stride_x, W, stride_w, 1, rows, row_mask, w_rows, w_mask, K, BK, X_FROM_L2)


@triton.jit
def _add_product(OUT, stride_out, X, stride_x, W, stride_w, bs, N, K, ACC: tl.constexpr, ACCUMULATE: tl.constexpr,
                 BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):  # fmt: skip
    """OUT[:bs, :N] (+)= X[:bs, :K] @ W[:K, :N]: the backward pass's dpre<t> Wa."""
    rows, cols, row_mask, col_mask, mask = _tile(bs, N, BB, BN)
    acc = _dot(tl.zeros((BB, BN), dtype=ACC), X, stride_x, W, 1, stride_w, rows, row_mask, cols, col_mask, K, BK, False)
    out = OUT + rows[:, None] * stride_out + cols[None, :]
    if ACCUMULATE:
        acc += tl.load(out, mask=mask, other=0.0).to(ACC)
    tl.store(out, acc.to(OUT.dtype.element_ty), mask=mask)


def add_product(out: Tensor, x: Tensor, W: Tensor, bs: int, accumulate: bool = True) -> None:
    """out[:bs] (+)= x[:bs] @ W, for row-major 2-D views (rows may be strided)."""
    K, N = W.shape
    BB, BN = _tiles(bs, N)
    grid = (triton.cdiv(bs, BB), triton.cdiv(N, BN))
    _add_product[grid](out, out.stride(0), x, x.stride(0), W, W.stride(0), bs, N, K, _acc(out), accumulate, BB, BN, block_k(out))


@triton.jit
def _tile(bs, n, BB: tl.constexpr, BN: tl.constexpr):
    """This program's tile of a per-step kernel: rows (BB,) of the bs running ones, hidden units
    cols (BN,) of n, their masks, and the (BB, BN) mask of the tile."""
    rows = tl.program_id(0) * BB + tl.arange(0, BB)
    cols = tl.program_id(1) * BN + tl.arange(0, BN)
    row_mask, col_mask = rows < bs, cols < n
    return rows, cols, row_mask, col_mask, row_mask[:, None] & col_mask[None, :]


@triton.jit
def _offsets(rows, cols, n, BLOCKS: tl.constexpr):
    """Where the tile (rows, units cols) is in a step's gate buffer (B, BLOCKS n_a), in its first
    block (block j is n further), and in a step's state buffer (B, n_a)."""
    return rows[:, None] * (BLOCKS * n) + cols[None, :], rows[:, None] * n + cols[None, :]


@triton.jit
def _load_blocks(g, n, mask, ACC: tl.constexpr, BLOCKS: tl.constexpr):
    """The tile's values in the first BLOCKS (2 to 4) blocks of a gate buffer, at g, g + n, ..., in
    ACC; 0.0 for the blocks past BLOCKS."""
    block_0 = tl.load(g, mask=mask, other=0.0).to(ACC)
    block_1 = tl.load(g + n, mask=mask, other=0.0).to(ACC)
    block_2 = tl.load(g + 2 * n, mask=mask, other=0.0).to(ACC) if BLOCKS > 2 else 0.0
    block_3 = tl.load(g + 3 * n, mask=mask, other=0.0).to(ACC) if BLOCKS > 3 else 0.0
    return block_0, block_1, block_2, block_3


@triton.jit
def _store_blocks(g, n, mask, block_0, block_1, block_2, block_3, BLOCKS: tl.constexpr):
    """Stores the tile's values of the first BLOCKS (2 to 4) blocks of a gate buffer, at g, g + n, ...,
    in the buffer's dtype (the values past BLOCKS are not stored)."""
    tl.store(g, block_0.to(g.dtype.element_ty), mask=mask)
    tl.store(g + n, block_1.to(g.dtype.element_ty), mask=mask)
    if BLOCKS > 2:
        tl.store(g + 2 * n, block_2.to(g.dtype.element_ty), mask=mask)
    if BLOCKS > 3:
        tl.store(g + 3 * n, block_3.to(g.dtype.element_ty), mask=mask)


@triton.jit
def _gate(g, block, X, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC: tl.constexpr, BK: tl.constexpr):
    """The pre-activation of gate block ``block`` for the tile: its input product Wx x<t> + b, read
    from the gate buffer ``g`` (the tile's first block), plus the recurrent product W_block X."""
    pre = tl.load(g + block * n, mask=mask, other=0.0).to(ACC)
    return _dot_wt(pre, X, n, W, stride_w, rows, row_mask, block * n + cols, col_mask, n, BK, False)


def _steps(sizes: list[int], n: int, backward: bool = False):
    """The per-step launches, forward in time or backward: each step's t, its running rows bs, and
    the grid and tile (BB rows × BN units) of its kernels."""
    for t in reversed(range(len(sizes))) if backward else range(len(sizes)):
        BB, BN = _tiles(sizes[t], n)
        yield t, sizes[t], (triton.cdiv(sizes[t], BB), triton.cdiv(n, BN)), BB, BN


# Each cell's equations below (``_*_cell`` forward, ``_*_grads`` backward) work on one tile, so the
# persistent kernels (persistent.py) run the same code around their own loops. They take the state
# and gradients of the running step as values (the persistent kernels read those through L2) and
# read what the forward pass saved (gates, a<t>, c<t-1>, ...) from pointers at the tile.


# -- rnn: a<t> = g(Wa[a<t-1>, x<t>] + ba) ----------------------------------------------------------


@triton.jit
def _rnn_cell(pre, A_NEW, mask, RELU: tl.constexpr):
    """a<t> = g(pre), tanh or (RELU) ReLU, stored at A_NEW."""
    a = tl.where(pre <= 0, 0.0, pre) if RELU else _tanh(pre)  # as torch's relu: NaN stays NaN (tl.maximum need not keep it)
    tl.store(A_NEW, a.to(A_NEW.dtype.element_ty), mask=mask)


@triton.jit
def _rnn_grads(A_NEW, da, DP, mask, ACC: tl.constexpr, RELU: tl.constexpr):
    """dpre<t> from a<t> (at A_NEW) and da<t>, stored at DP."""
    a = tl.load(A_NEW, mask=mask, other=0.0).to(ACC)
    dp = tl.where(a <= 0, 0.0, da) if RELU else da * (1 - a * a)  # dpre<t>; at NaN, as torch's threshold_backward
    tl.store(DP, dp.to(DP.dtype.element_ty), mask=mask)


@triton.jit
def _rnn_forward_step(G, W, stride_w, A_prev, A, bs, n, RELU: tl.constexpr, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    tile = rows[:, None] * n + cols[None, :]
    pre = tl.load(G + tile, mask=mask, other=0.0).to(ACC)  # Wax x<t> + ba
    pre = _dot_wt(pre, A_prev, n, W, stride_w, rows, row_mask, cols, col_mask, n, BK, False)  # + Waa a<t-1>
    _rnn_cell(pre, A + tile, mask, RELU)


@triton.jit
def _rnn_backward_step(A, DA, DP, bs, n, RELU: tl.constexpr, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr):
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    tile = rows[:, None] * n + cols[None, :]
    da = tl.load(DA + tile, mask=mask, other=0.0).to(ACC)
    _rnn_grads(A + tile, da, DP + tile, mask, ACC, RELU)


def rnn_forward(G, W_a, A, sizes, relu):
    n = A.shape[-1]
    for t, bs, grid, BB, BN in _steps(sizes, n):
        _rnn_forward_step[grid](G[t], W_a, W_a.stride(0), A[t], A[t + 1], bs, n, relu, _acc(G), BB, BN, block_k(G))


def rnn_backward(A, W_a, DA, d_pre, sizes, relu):
    n = A.shape[-1]
    for t, bs, grid, BB, BN in _steps(sizes, n, backward=True):
        _rnn_backward_step[grid](A[t + 1], DA[t + 1], d_pre[t], bs, n, relu, _acc(A), BB, BN)
        add_product(DA[t], d_pre[t], W_a, bs)  # da<t-1> += dpre<t> Waa


# -- gru-simple: blocks [u c]; c<t> = c<t-1> + Γu (c̃<t> - c<t-1>) --------------------------------------


@triton.jit
def _gru_simple_cell(g, n, u, cand, c_prev, C_NEW, mask):
    """From the pre-activations of the blocks [u c] (tiles at g, g + n) and c<t-1>: stores Γu and
    c̃<t> over the pre-activations, and c<t> at C_NEW."""
    u, cand = tl.sigmoid(u), _tanh(cand)  # Γu, c̃<t>
    _store_blocks(g, n, mask, u, cand, 0.0, 0.0, 2)
    tl.store(C_NEW, (c_prev + u * (cand - c_prev)).to(C_NEW.dtype.element_ty), mask=mask)  # c<t>


@triton.jit
def _gru_simple_forward_step(G, W, stride_w, C_prev, C, bs, n, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    g, state = _offsets(rows, cols, n, 2)
    u = _gate(G + g, 0, C_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK)
    cand = _gate(G + g, 1, C_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK)
    c_prev = tl.load(C_prev + state, mask=mask, other=0.0).to(ACC)
    _gru_simple_cell(G + g, n, u, cand, c_prev, C + state, mask)


def gru_simple_forward(G, W_a, C, sizes):
    n = C.shape[-1]
    for t, bs, grid, BB, BN in _steps(sizes, n):
        _gru_simple_forward_step[grid](G[t], W_a, W_a.stride(0), C[t], C[t + 1], bs, n, _acc(G), BB, BN, block_k(G))


def gru_simple_backward(G, C, W_a, DC, d_pre, sizes):
    n = C.shape[-1]
    for t, bs, grid, BB, BN in _steps(sizes, n, backward=True):
        _gru_update_backward[grid](G[t], C[t], DC[t + 1], DC[t], d_pre[t], bs, n, 2, 1, _acc(G), BB, BN)
        add_product(DC[t], d_pre[t], W_a, bs)  # dc<t-1> += dpre<t> Wa


# -- gru: the course's GRU, blocks [u r c], relevance before the candidate's product ---------------


@triton.jit
def _gru_gates_step(G, W, stride_w, C_prev, RC, bs, n, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """Γu, Γr from [c<t-1>, x<t>]; Γr * c<t-1>, the candidate product's input."""
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    g, state = _offsets(rows, cols, n, 3)
    u = tl.sigmoid(_gate(G + g, 0, C_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK))  # Γu
    r = tl.sigmoid(_gate(G + g, 1, C_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK))  # Γr
    c_prev = tl.load(C_prev + state, mask=mask, other=0.0).to(ACC)
    tl.store(G + g, u.to(G.dtype.element_ty), mask=mask)
    tl.store(G + g + n, r.to(G.dtype.element_ty), mask=mask)
    tl.store(RC + state, (r * c_prev).to(RC.dtype.element_ty), mask=mask)


@triton.jit
def _gru_candidate(g, n, cand, c_prev, C_NEW, mask, ACC: tl.constexpr):
    """From c̃'s pre-activation Wc[Γr * c<t-1>, x<t>] + bc and c<t-1>: stores c̃<t> over it (tile
    at g + 2n) and c<t> = c<t-1> + Γu (c̃<t> - c<t-1>) at C_NEW, with Γu from the tile at g."""
    cand = _tanh(cand)  # c̃<t>
    u = tl.load(g, mask=mask, other=0.0).to(ACC)
    tl.store(g + 2 * n, cand.to(g.dtype.element_ty), mask=mask)
    tl.store(C_NEW, (c_prev + u * (cand - c_prev)).to(C_NEW.dtype.element_ty), mask=mask)


@triton.jit
def _gru_candidate_step(G, W, stride_w, C_prev, RC, C, bs, n, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """c̃<t> = tanh(Wc[Γr * c<t-1>, x<t>] + bc); c<t> = Γu * c̃<t> + (1 - Γu) * c<t-1>."""
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    g, state = _offsets(rows, cols, n, 3)
    cand = _gate(G + g, 2, RC, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK)
    c_prev = tl.load(C_prev + state, mask=mask, other=0.0).to(ACC)
    _gru_candidate(G + g, n, cand, c_prev, C + state, mask, ACC)


@triton.jit
def _gru_update_grads(g, dp, cand_offset, C_PREV, dc, dc_prev, DC_PREV, mask, ACC: tl.constexpr):
    """Both course GRUs, one tile: from dc<t>, the gates at g (Γu; c̃ at g + cand_offset) and c<t-1>
    (at C_PREV), dpre_u and dpre_c (stored at dp, dp + cand_offset), and dc<t-1> = dc_prev +
    (1 - Γu) dc<t>, the direct path (stored at DC_PREV)."""
    c_prev = tl.load(C_PREV, mask=mask, other=0.0).to(ACC)
    u = tl.load(g, mask=mask, other=0.0).to(ACC)
    cand = tl.load(g + cand_offset, mask=mask, other=0.0).to(ACC)
    tl.store(dp, (dc * (cand - c_prev) * u * (1 - u)).to(dp.dtype.element_ty), mask=mask)  # dpre_u
    tl.store(dp + cand_offset, (dc * u * (1 - cand * cand)).to(dp.dtype.element_ty), mask=mask)  # dpre_c
    tl.store(DC_PREV, (dc_prev + (1 - u) * dc).to(DC_PREV.dtype.element_ty), mask=mask)


@triton.jit
def _gru_update_backward(G, C_prev, DC, DC_prev, DP, bs, n, BLOCKS: tl.constexpr, CAND: tl.constexpr, ACC: tl.constexpr,
                         BB: tl.constexpr, BN: tl.constexpr):  # fmt: skip
    """Both course GRUs (Γu in block 0, c̃ in block CAND of BLOCKS): dpre_u, dpre_c from dc<t>;
    dc<t-1> += (1 - Γu) dc<t>."""
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    g, state = _offsets(rows, cols, n, BLOCKS)
    dc = tl.load(DC + state, mask=mask, other=0.0).to(ACC)
    dc_prev = tl.load(DC_prev + state, mask=mask, other=0.0).to(ACC)
    _gru_update_grads(G + g, DP + g, CAND * n, C_prev + state, dc, dc_prev, DC_prev + state, mask, ACC)


@triton.jit
def _gru_relevance_grads(g, dp, n, C_PREV, d_rc, dc_prev, DC_PREV, mask, ACC: tl.constexpr):
    """The course GRU, one tile: from d(Γr * c<t-1>), Γr (at g + n) and c<t-1> (at C_PREV), dpre_r
    (stored at dp + n) and dc<t-1> = dc_prev + Γr d(Γr * c<t-1>) (stored at DC_PREV)."""
    c_prev = tl.load(C_PREV, mask=mask, other=0.0).to(ACC)
    r = tl.load(g + n, mask=mask, other=0.0).to(ACC)
    tl.store(dp + n, (d_rc * c_prev * r * (1 - r)).to(dp.dtype.element_ty), mask=mask)  # dpre_r
    tl.store(DC_PREV, (dc_prev + r * d_rc).to(DC_PREV.dtype.element_ty), mask=mask)


@triton.jit
def _gru_backward_relevance(G, C_prev, D_RC, DC_prev, DP, bs, n, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr):
    """From d(Γr * c<t-1>) = dpre_c Wcc: dpre_r, and dc<t-1> += Γr d(Γr * c<t-1>)."""
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    g, state = _offsets(rows, cols, n, 3)
    d_rc = tl.load(D_RC + state, mask=mask, other=0.0).to(ACC)
    dc_prev = tl.load(DC_prev + state, mask=mask, other=0.0).to(ACC)
    _gru_relevance_grads(G + g, DP + g, n, C_prev + state, d_rc, dc_prev, DC_prev + state, mask, ACC)


def gru_forward(G, W_a, C, RC, sizes):
    n = C.shape[-1]
    for t, bs, grid, BB, BN in _steps(sizes, n):
        _gru_gates_step[grid](G[t], W_a, W_a.stride(0), C[t], RC[t], bs, n, _acc(G), BB, BN, block_k(G))
        _gru_candidate_step[grid](G[t], W_a, W_a.stride(0), C[t], RC[t], C[t + 1], bs, n, _acc(G), BB, BN, block_k(G))


def gru_backward(G, C, RC, W_a, DC, d_pre, sizes):
    n = C.shape[-1]
    W_ur, W_cc = W_a[: 2 * n], W_a[2 * n :]
    d_rc = torch.empty_like(C[0])  # (B, n_a): d(Γr * c<t-1>) of one step
    for t, bs, grid, BB, BN in _steps(sizes, n, backward=True):
        _gru_update_backward[grid](G[t], C[t], DC[t + 1], DC[t], d_pre[t], bs, n, 3, 2, _acc(G), BB, BN)
        add_product(d_rc, d_pre[t][:, 2 * n :], W_cc, bs, accumulate=False)  # d(Γr * c<t-1>) = dpre_c Wcc
        _gru_backward_relevance[grid](G[t], C[t], d_rc, DC[t], d_pre[t], bs, n, _acc(G), BB, BN)
        add_product(DC[t], d_pre[t][:, : 2 * n], W_ur, bs)  # dc<t-1> += dpre_u,r Wu,r


# -- gru-cudnn: blocks [r u c], relevance after the product, extra bias b_cc -----------------------------


@triton.jit
def _gru_cudnn_cell(g, n, r, u, hc, c_prev, HC_NEW, C_NEW, mask, ACC: tl.constexpr):
    """From the pre-activations r, u (Wx x<t> + b + Wa c<t-1>, tiles at g, g + n), hc = Wcc c<t-1> + bcc
    and c<t-1>: stores Γr, Γu and c̃<t> over the pre-activations (c̃'s input product Wcx x<t> + bc
    read from g + 2n), hc at HC_NEW and c<t> at C_NEW."""
    r, u = tl.sigmoid(r), tl.sigmoid(u)  # Γr, Γu
    cand = _tanh(tl.load(g + 2 * n, mask=mask, other=0.0).to(ACC) + r * hc)  # c̃ = tanh(Wcx x + bc + Γr*(Wcc c<t-1> + bcc))
    _store_blocks(g, n, mask, r, u, cand, 0.0, 3)
    tl.store(HC_NEW, hc.to(HC_NEW.dtype.element_ty), mask=mask)
    tl.store(C_NEW, (c_prev + u * (cand - c_prev)).to(C_NEW.dtype.element_ty), mask=mask)


@triton.jit
def _gru_cudnn_grads(g, dh, n, HC, C_PREV, dc, dc_prev, DXC, DC_PREV, mask, ACC: tl.constexpr):
    """From dc<t>, the gates at g ([r u c]), Wcc c<t-1> + bcc (at HC) and c<t-1> (at C_PREV): d_h<t>
    (stored at dh, dh + n, dh + 2n: dpre_r, dpre_u, and d(Wcc c<t-1> + bcc)), dpre_c (at DXC) and
    dc<t-1> = dc_prev + (1 - Γu) dc<t>, the direct path (at DC_PREV)."""
    hc = tl.load(HC, mask=mask, other=0.0).to(ACC)
    c_prev = tl.load(C_PREV, mask=mask, other=0.0).to(ACC)
    r, u, cand, _ = _load_blocks(g, n, mask, ACC, 3)  # Γr, Γu, c̃<t>
    dxc = dc * u * (1 - cand * cand)  # dpre_c
    dpre_r = dxc * hc * r * (1 - r)
    dpre_u = dc * (cand - c_prev) * u * (1 - u)
    _store_blocks(dh, n, mask, dpre_r, dpre_u, dxc * r, 0.0, 3)  # and d(Wcc c<t-1> + bcc)
    tl.store(DXC, dxc.to(DXC.dtype.element_ty), mask=mask)
    tl.store(DC_PREV, (dc_prev + (1 - u) * dc).to(DC_PREV.dtype.element_ty), mask=mask)


@triton.jit
def _gru_cudnn_forward_step(G, W, stride_w, B_CC, C_prev, HC, C, bs, n, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    g, state = _offsets(rows, cols, n, 3)
    r = _gate(G + g, 0, C_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK)
    u = _gate(G + g, 1, C_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK)
    hc = tl.load(B_CC + cols, mask=col_mask, other=0.0).to(ACC)[None, :] + tl.zeros((BB, BN), dtype=ACC)
    hc = _dot_wt(hc, C_prev, n, W, stride_w, rows, row_mask, 2 * n + cols, col_mask, n, BK, False)  # Wcc c<t-1> + bcc
    c_prev = tl.load(C_prev + state, mask=mask, other=0.0).to(ACC)
    _gru_cudnn_cell(G + g, n, r, u, hc, c_prev, HC + state, C + state, mask, ACC)


@triton.jit
def _gru_cudnn_backward_step(G, C_prev, HC, DC, DC_prev, DH, DXC, bs, n, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr):
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    g, state = _offsets(rows, cols, n, 3)
    dc = tl.load(DC + state, mask=mask, other=0.0).to(ACC)
    dc_prev = tl.load(DC_prev + state, mask=mask, other=0.0).to(ACC)
    _gru_cudnn_grads(G + g, DH + g, n, HC + state, C_prev + state, dc, dc_prev, DXC + state, DC_prev + state, mask, ACC)


def gru_cudnn_forward(G, W_a, b_cc, C, HC, sizes):
    n = C.shape[-1]
    for t, bs, grid, BB, BN in _steps(sizes, n):
        _gru_cudnn_forward_step[grid](G[t], W_a, W_a.stride(0), b_cc, C[t], HC[t], C[t + 1], bs, n, _acc(G), BB, BN, block_k(G))


def gru_cudnn_backward(G, C, HC, W_a, DC, d_h, d_xc, sizes):
    n = C.shape[-1]
    for t, bs, grid, BB, BN in _steps(sizes, n, backward=True):
        _gru_cudnn_backward_step[grid](G[t], C[t], HC[t], DC[t + 1], DC[t], d_h[t], d_xc[t], bs, n, _acc(G), BB, BN)
        add_product(DC[t], d_h[t], W_a, bs)  # dc<t-1> += d_h<t> Wa


# -- lstm: blocks [u f c o]; optional peepholes (3, n_a): p_u, p_f look at c<t-1>, p_o at c<t> ---------


@triton.jit
def _peepholes(P, n, cols, col_mask, ACC: tl.constexpr, PEEP: tl.constexpr):
    """The tile's peephole weights p_u, p_f, p_o, each (1, BN); zeros (unread) without peepholes."""
    if PEEP:
        p_u = tl.load(P + cols, mask=col_mask, other=0.0).to(ACC)[None, :]
        p_f = tl.load(P + n + cols, mask=col_mask, other=0.0).to(ACC)[None, :]
        p_o = tl.load(P + 2 * n + cols, mask=col_mask, other=0.0).to(ACC)[None, :]
    else:
        p_u = 0.0
        p_f = 0.0
        p_o = 0.0
    return p_u, p_f, p_o


@triton.jit
def _lstm_cell(g, n, u, f, cand, o, c_prev, p_u, p_f, p_o, C_NEW, TC_NEW, A_NEW, mask, PEEP: tl.constexpr):
    """The cell from the pre-activations of its blocks [u f c o] (tiles at g, g + n, ...) and c<t-1>:
    stores Γu, Γf, c̃<t>, Γo over the pre-activations, and c<t>, tanh(c<t>), a<t> at their tiles."""
    if PEEP:
        u += p_u * c_prev  # + p_u * c<t-1>
        f += p_f * c_prev  # + p_f * c<t-1>
    u, f, cand = tl.sigmoid(u), tl.sigmoid(f), _tanh(cand)  # Γu, Γf, c̃<t>
    c = u * cand + f * c_prev  # c<t> = Γu*c̃ + Γf*c<t-1>
    if PEEP:
        o += p_o * c  # + p_o * c<t>
    o = tl.sigmoid(o)  # Γo
    tc = _tanh(c)
    _store_blocks(g, n, mask, u, f, cand, o, 4)
    tl.store(C_NEW, c.to(C_NEW.dtype.element_ty), mask=mask)
    tl.store(TC_NEW, tc.to(TC_NEW.dtype.element_ty), mask=mask)
    tl.store(A_NEW, (o * tc).to(A_NEW.dtype.element_ty), mask=mask)  # a<t> = Γo*tanh(c<t>)


@triton.jit
def _lstm_grads(g, dp, n, TC, C_PREV, da, carry, p_u, p_f, p_o, CARRY_PREV, mask, ACC: tl.constexpr, PEEP: tl.constexpr):
    """dpre<t> of the blocks [u f c o] (stored at dp, dp + n, ...) from the gates at g, tanh(c<t>) and
    c<t-1> (at TC, C_PREV), da<t> and the gradient carried along the memory from step t + 1; stores
    dc<t-1> along that direct path."""
    tc = tl.load(TC, mask=mask, other=0.0).to(ACC)
    c_prev = tl.load(C_PREV, mask=mask, other=0.0).to(ACC)
    u, f, cand, o = _load_blocks(g, n, mask, ACC, 4)  # Γu, Γf, c̃<t>, Γo
    dpre_o = da * tc * o * (1 - o)
    dc = carry + da * o * (1 - tc * tc)  # dc<t>
    if PEEP:
        dc += dpre_o * p_o
    dpre_u = dc * cand * u * (1 - u)
    dpre_f = dc * c_prev * f * (1 - f)
    dpre_c = dc * u * (1 - cand * cand)
    carry_prev = dc * f  # dc<t-1> along the direct path
    if PEEP:
        carry_prev += dpre_u * p_u + dpre_f * p_f
    _store_blocks(dp, n, mask, dpre_u, dpre_f, dpre_c, dpre_o, 4)
    tl.store(CARRY_PREV, carry_prev.to(CARRY_PREV.dtype.element_ty), mask=mask)


@triton.jit
def _lstm_forward_step(G, W, stride_w, P, A_prev, C_prev, A, C, TC, bs, n, PEEP: tl.constexpr, ACC: tl.constexpr,
                       BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):  # fmt: skip
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    g, state = _offsets(rows, cols, n, 4)
    c_prev = tl.load(C_prev + state, mask=mask, other=0.0).to(ACC)
    u = _gate(G + g, 0, A_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK)
    f = _gate(G + g, 1, A_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK)
    cand = _gate(G + g, 2, A_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK)
    o = _gate(G + g, 3, A_prev, n, W, stride_w, rows, row_mask, cols, col_mask, mask, ACC, BK)
    p_u, p_f, p_o = _peepholes(P, n, cols, col_mask, ACC, PEEP)
    _lstm_cell(G + g, n, u, f, cand, o, c_prev, p_u, p_f, p_o, C + state, TC + state, A + state, mask, PEEP)


@triton.jit
def _lstm_backward_step(G, P, C_prev, TC, DA, CARRY, DP, bs, n, PEEP: tl.constexpr, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr):
    rows, cols, row_mask, col_mask, mask = _tile(bs, n, BB, BN)
    g, state = _offsets(rows, cols, n, 4)
    da = tl.load(DA + state, mask=mask, other=0.0).to(ACC)
    carry = tl.load(CARRY + state, mask=mask, other=0.0).to(ACC)
    p_u, p_f, p_o = _peepholes(P, n, cols, col_mask, ACC, PEEP)
    _lstm_grads(G + g, DP + g, n, TC + state, C_prev + state, da, carry, p_u, p_f, p_o, CARRY + state, mask, ACC, PEEP)


def lstm_forward(G, W_a, peephole, A, C, TC, sizes):
    n = A.shape[-1]
    P = peephole if peephole is not None else W_a  # any pointer; unread without peepholes
    for t, bs, grid, BB, BN in _steps(sizes, n):
        _lstm_forward_step[grid](G[t], W_a, W_a.stride(0), P, A[t], C[t], A[t + 1], C[t + 1], TC[t], bs, n, peephole is not None, _acc(G), BB, BN, block_k(G))


def lstm_backward(G, C, TC, W_a, peephole, DA, carry_c, d_pre, sizes):
    n = C.shape[-1]
    P = peephole if peephole is not None else W_a
    for t, bs, grid, BB, BN in _steps(sizes, n, backward=True):
        _lstm_backward_step[grid](G[t], P, C[t], TC[t], DA[t + 1], carry_c, d_pre[t], bs, n, peephole is not None, _acc(G), BB, BN)
        add_product(DA[t], d_pre[t], W_a, bs)  # da<t-1> += dpre<t> Wa


def supported_dtype(dtype: torch.dtype) -> bool:
    return dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)


__all__ = [
    "rnn_forward", "rnn_backward", "gru_simple_forward", "gru_simple_backward", "gru_forward", "gru_backward",
    "gru_cudnn_forward", "gru_cudnn_backward", "lstm_forward", "lstm_backward", "lstm_peephole_gradient", "add_product",
]  # fmt: skip
