r"""Persistent Triton kernels: one launch runs a whole direction's time loop on the GPU.

The per-step kernels of ``loops.py`` pay a launch (and Python) per step and per phase: on a
GPU that, not the arithmetic, is what a small recurrent step costs. Here one launch covers all T
steps. Each program owns a tile of hidden units (all rows of the batch) for the whole sequence:

* it re-reads the same slice of the recurrent weights ``W_a`` at every step (16 units × all gate
  rows: 32–64 KiB in fp16 at n_a = 512), small enough to stay in its multiprocessor's L1 cache, so
  the weights stay on chip across time steps (an expectation from the sizes; no hardware counter
  has confirmed the hit rate);
* the state that all programs share (a<t>, c<t>, Γr * c<t-1>, dpre<t>) goes through L2: state
  loads bypass L1 (``cache_modifier=".cg"``), since L1 is not coherent between multiprocessors;
* between the phases that need every program's results (the next step's product needs all of
  a<t>), the programs meet at a grid barrier: an atomic counter in global memory that each program
  increments (release) and then spins on (acquire) until all have arrived.

A grid barrier only works when every program is resident at once, so the grid is at most one
program per multiprocessor (:func:`plan`); where that cannot hold, the engine falls back to the
per-step kernels. Triton's interpreter runs programs one after another, so on the CPU (tests) the
plan is a single program that owns every unit: the barrier is then trivially passed and the
arithmetic is checked; the multi-program barrier is checked on a GPU by ``benchmarks/gpu.py``.

Phases per step (the same buffers and block layouts as ``loops.py``, and its cells' equations, the
``_*_cell`` and ``_*_grads`` helpers, run here on each tile):

* ``lstm`` forward: gates of the tile from a<t-1> (all units) → barrier.
  backward: dpre<t> of the tile from da<t>, dc<t> → barrier → da<t-1> tile += Σ_k dpre<t>[k] W[k, tile].
* ``gru`` (relevance before the product) forward: Γr of the tile from c<t-1> (all units),
  Γr * c<t-1> → arrive · Γu of the tile · wait → c̃<t> from Γr * c<t-1> (all units), c<t> → barrier.
  backward: dpre_u, dpre_c of the tile → barrier → d(Γr * c<t-1>) = dpre_c Wcc, dpre_r →
  arrive · dc<t-1> tile += dpre_u Wu · wait → dc<t-1> tile += dpre_r Wr.
  Two barriers per step each way, since each phase needs the whole previous one; the work between
  arrive and wait needs no other program's results of that phase (``CONFIG["overlap"]``).

* ``gru-cudnn`` (relevance after the product) forward: Γr, Γu and Wcc c<t-1> + bcc of the tile from
  c<t-1> (all units), then c̃<t>, c<t> → barrier. backward: dpre of the tile → barrier →
  dc<t-1> tile += Σ_k d_h<t>[k] W[k, tile]. One barrier per step each way, as for the LSTM.
* ``rnn`` and ``gru-simple``: as the LSTM, one barrier per step each way.

Every cell kind has a persistent kernel; where the plan says no (too many programs to be resident,
offsets beyond 32 bits), the per-step kernels of ``loops.py`` run instead.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import PERSISTENT_KINDS  # noqa: F401 (the cell kinds with a persistent kernel here)
from . import update_config
from . import loops as triton_loops
from .loops import (
    _acc, _dot, _dot_wt, _gru_candidate, _gru_cudnn_cell, _gru_cudnn_grads, _gru_relevance_grads,
    _gru_simple_cell, _gru_update_grads, _load_blocks, _load_cg, _lstm_cell, _lstm_grads, _mm, _offsets,
    _peepholes, _rnn_cell, _rnn_grads,
)  # fmt: skip
from .loops import lstm_peephole_gradient  # noqa: F401 (a pass after the loop, as in the per-step kernels)


# tile sizes on a GPU: units per program, rows per tile, reduction chunk, warps; benchmarks/gpu.py
# times the alternatives (``configure``). The tiles are the fastest of those timed on an H200
# (docs/gpu). "overlap": the course gru does the work that needs no other program's results of a
# phase (Γu forward, dpre_u Wu backward) between arriving at the barrier and waiting at it; not yet
# timed on a GPU (benchmarks/gpu.py tune-gru compares both settings).
CONFIG = {"BN": 16, "BB": 32, "BK": 128, "num_warps": 4, "num_stages": 3, "overlap": True}


def configure(**values: int) -> None:
    """Change the GPU tile sizes (keys of ``CONFIG``); the benchmark uses this to compare them."""
    update_config(CONFIG, values, "persistent-kernel")


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def plan(n: int, B: int, like: Tensor, largest: Tensor) -> dict | None:
    """Tile sizes and grid for n hidden units and B rows, or None when the programs could not all be
    resident at once (the barrier would deadlock) or when offsets into the ``largest`` buffer would
    not fit in 32 bits: then the per-step kernels run instead."""
    if largest.numel() >= 2**31:
        return None
    BK = triton_loops.block_k(like) if like.dtype == torch.float64 else CONFIG["BK"]
    if _interpreting():  # one program owns every unit: the interpreter runs programs in turn
        width = max(16, triton.next_power_of_2(n))
        return {"BN": width, "BB": 16 if B <= 16 else 32, "BK": min(BK, width), "num_warps": 4, "num_stages": 1, "programs": 1}
    programs = triton.cdiv(n, CONFIG["BN"])
    if programs > torch.cuda.get_device_properties(like.device).multi_processor_count:
        return None
    BB = 16 if B <= 16 else CONFIG["BB"]
    return {**CONFIG, "BB": BB, "BK": min(BK, max(16, triton.next_power_of_2(n))), "programs": programs}


def _launch_state(sizes: list[int], device: torch.device) -> tuple[Tensor, Tensor]:
    """The running rows of every step, on the device, and a zeroed barrier counter.

    Without padding every step runs all B rows: that is a fill on the device, not a copy from the
    host, so the launch can be captured in a CUDA graph (decoding.GraphedSampler captures model
    steps; a copy from pageable host memory cannot be captured)."""
    counter = torch.zeros(1, dtype=torch.int32, device=device)
    if all(size == sizes[0] for size in sizes):
        return torch.full((len(sizes),), sizes[0], dtype=torch.int32, device=device), counter
    return torch.tensor(sizes, dtype=torch.int32, device=device), counter


# -- building blocks -------------------------------------------------------------------------------


@triton.jit
def _barrier_arrive(SYNC):
    """Arrive at the grid barrier: add 1 to the counter once every thread of this program has issued
    its stores (release: they are visible to whoever sees the count)."""
    tl.debug_barrier()
    tl.atomic_add(SYNC, 1, sem="release", scope="gpu")


@triton.jit
def _barrier_wait(SYNC, target):
    """Wait until the counter reaches ``target`` (acquire: every arrived program's stores are then
    visible to this program's L2 (``.cg``) loads). Between arrive and wait a program may do work
    that needs no other program's results of this phase: it is then off the critical path."""
    while tl.atomic_add(SYNC, 0, sem="acquire", scope="gpu") < target:
        pass
    tl.debug_barrier()


@triton.jit
def _grid_barrier(SYNC, target):
    """Arrive, then wait until the counter reaches ``target``; every program adds 1 on arrival."""
    _barrier_arrive(SYNC)
    _barrier_wait(SYNC, target)


@triton.jit
def _units(n, BN: tl.constexpr):
    """What this program owns for the whole sequence: its hidden units cols (BN,) of n and their
    mask; and how many programs share the grid (the barrier's count per phase)."""
    cols = tl.program_id(0) * BN + tl.arange(0, BN)
    return tl.num_programs(0), cols, cols < n


@triton.jit
def _row_block(r0, bs, col_mask, BB: tl.constexpr):
    """Rows r0 .. r0 + BB - 1 of the bs running ones, their mask, and the (BB, BN) mask of the
    block with the program's units."""
    rows = r0 + tl.arange(0, BB)
    row_mask = rows < bs
    return rows, row_mask, row_mask[:, None] & col_mask[None, :]


@triton.jit
def _k_chunk(X, k0, rows, row_mask, cols, col_mask, n, W, stride_w, BK: tl.constexpr):
    """Chunk k0 .. k0 + BK - 1 of the shared state X (B, n) for the block's rows, read through L2;
    and the pointers and mask of the matching columns of the program's rows of the first weight
    block (block j: + j * n * stride_w): one step of a recurrent product over all n units."""
    kk = k0 + tl.arange(0, BK)
    k_mask = kk < n
    x = _load_cg(X + rows[:, None] * n + kk[None, :], row_mask[:, None] & k_mask[None, :])
    return x, W + cols[None, :] * stride_w + kk[:, None], col_mask[None, :] & k_mask[:, None]


@triton.jit
def _gate_products(X, rows, row_mask, cols, col_mask, n, W, stride_w, pre_0, pre_1, pre_2, pre_3, BLOCKS: tl.constexpr, BK: tl.constexpr):
    """pre_j + W_j X for the block's rows and the program's units, for the first BLOCKS (2 to 4) gate
    blocks W_j (n rows each) of W; pre_j past BLOCKS come back as they are. One pass over the
    chunks of the shared state X (B, n): each chunk is read once for every block."""
    for k0 in range(0, n, BK):
        x, w, w_mask = _k_chunk(X, k0, rows, row_mask, cols, col_mask, n, W, stride_w, BK)
        pre_0 = _mm(x, tl.load(w, mask=w_mask, other=0.0), pre_0)
        pre_1 = _mm(x, tl.load(w + n * stride_w, mask=w_mask, other=0.0), pre_1)
        if BLOCKS > 2:
            pre_2 = _mm(x, tl.load(w + 2 * n * stride_w, mask=w_mask, other=0.0), pre_2)
        if BLOCKS > 3:
            pre_3 = _mm(x, tl.load(w + 3 * n * stride_w, mask=w_mask, other=0.0), pre_3)
    return pre_0, pre_1, pre_2, pre_3


@triton.jit
def _backward_product(OUT, DP, stride_dp, K, W, stride_w, bs, n, cols, col_mask, ACC: tl.constexpr, BB: tl.constexpr, BK: tl.constexpr):
    """This program's tile of a state gradient (B, n_a) += Σ_k DP[:, k] W[k, tile] for k < K: the
    backward pass's dpre<t> Wa, over the running rows, with dpre<t> read through L2."""
    for r0 in range(0, bs, BB):
        rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
        out = OUT + rows[:, None] * n + cols[None, :]
        acc = _dot(_load_cg(out, mask).to(ACC), DP, stride_dp, W, 1, stride_w, rows, row_mask, cols, col_mask, K, BK, True)
        tl.store(out, acc.to(OUT.dtype.element_ty), mask=mask)
    tl.debug_barrier()  # the next step's first phase reads this tile back


# -- lstm: blocks [u f c o]; optional peepholes (3, n_a) ---------------------------------------------


@triton.jit
def _lstm_forward_persistent(SIZES, SYNC, T, B, n, G, W, stride_w, P, A, C, TC, PEEP: tl.constexpr, ACC: tl.constexpr,
                             BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):  # fmt: skip
    programs, cols, col_mask = _units(n, BN)
    p_u, p_f, p_o = _peepholes(P, n, cols, col_mask, ACC, PEEP)
    for t in range(0, T):
        bs = tl.load(SIZES + t)
        G_t = G + t * B * 4 * n
        A_prev = A + t * B * n
        C_prev = C + t * B * n
        for r0 in range(0, bs, BB):
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            g, state = _offsets(rows, cols, n, 4)
            u, f, cand, o = _load_blocks(G_t + g, n, mask, ACC, 4)  # Wx x<t> + b, per block
            u, f, cand, o = _gate_products(A_prev, rows, row_mask, cols, col_mask, n, W, stride_w, u, f, cand, o, 4, BK)  # + Wa a<t-1>
            c_prev = _load_cg(C_prev + state, mask).to(ACC)
            c_new, tc_new, a_new = C_prev + B * n + state, TC + t * B * n + state, A_prev + B * n + state
            _lstm_cell(G_t + g, n, u, f, cand, o, c_prev, p_u, p_f, p_o, c_new, tc_new, a_new, mask, PEEP)
        _grid_barrier(SYNC, programs * (t + 1))  # the next step's product reads all of a<t>


@triton.jit
def _lstm_backward_persistent(SIZES, SYNC, T, B, n, G, W, stride_w, P, C, TC, DA, CARRY, DP, PEEP: tl.constexpr, ACC: tl.constexpr,
                              BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):  # fmt: skip
    programs, cols, col_mask = _units(n, BN)
    p_u, p_f, p_o = _peepholes(P, n, cols, col_mask, ACC, PEEP)
    for i in range(0, T):
        t = T - 1 - i
        bs = tl.load(SIZES + t)
        G_t = G + t * B * 4 * n
        DP_t = DP + t * B * 4 * n
        TC_t, C_prev = TC + t * B * n, C + t * B * n  # tanh(c<t>), c<t-1>
        # phase 1, this tile: dpre<t> from da<t> (complete: this program finished it last step)
        for r0 in range(0, bs, BB):
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            g, state = _offsets(rows, cols, n, 4)
            da = _load_cg(DA + (t + 1) * B * n + state, mask).to(ACC)
            carry = _load_cg(CARRY + state, mask).to(ACC)
            _lstm_grads(G_t + g, DP_t + g, n, TC_t + state, C_prev + state, da, carry, p_u, p_f, p_o, CARRY + state, mask, ACC, PEEP)
        _grid_barrier(SYNC, programs * (i + 1))  # the product reads dpre<t> of every unit
        # phase 2, this tile: da<t-1> += Σ_k dpre<t>[:, k] Wa[k, tile], k over all 4 n_a gate rows
        _backward_product(DA + t * B * n, DP_t, 4 * n, 4 * n, W, stride_w, bs, n, cols, col_mask, ACC, BB, BK)


# -- gru: the course's GRU, blocks [u r c], relevance before the candidate's product -----------------


@triton.jit
def _gru_update_phase(G_t, DP_t, C_prev, DC_prev, B, bs, n, cols, col_mask, BLOCKS: tl.constexpr, CAND: tl.constexpr, ACC: tl.constexpr,
                      BB: tl.constexpr):  # fmt: skip
    """Both course GRUs (Γu in block 0, c̃ in block CAND of BLOCKS), this program's tile of step t:
    dpre_u, dpre_c from dc<t> (in the state slot after DC_prev); dc<t-1> += (1 - Γu) dc<t>."""
    for r0 in range(0, bs, BB):
        rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
        g, state = _offsets(rows, cols, n, BLOCKS)
        dc = _load_cg(DC_prev + B * n + state, mask).to(ACC)
        dc_prev = _load_cg(DC_prev + state, mask).to(ACC)
        _gru_update_grads(G_t + g, DP_t + g, CAND * n, C_prev + state, dc, dc_prev, DC_prev + state, mask, ACC)


@triton.jit
def _gru_gate(G_t, gate, C_prev, W, stride_w, bs, n, cols, col_mask, ACC: tl.constexpr, BB: tl.constexpr, BK: tl.constexpr):
    """Γ = σ(W_gate[c<t-1>, x<t>] + b_gate) for this tile, in place of its input projection in G
    (blocks [u r c]; ``gate`` 0 for Γu, 1 for Γr)."""
    for r0 in range(0, bs, BB):
        rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
        g = G_t + rows[:, None] * (3 * n) + gate * n + cols[None, :]
        pre = tl.load(g, mask=mask, other=0.0).to(ACC)
        pre = _dot_wt(pre, C_prev, n, W, stride_w, rows, row_mask, gate * n + cols, col_mask, n, BK, True)  # + W_gate,a c<t-1>
        tl.store(g, tl.sigmoid(pre).to(G_t.dtype.element_ty), mask=mask)


@triton.jit
def _gru_forward_persistent(SIZES, SYNC, T, B, n, G, W, stride_w, C, RC, ACC: tl.constexpr, OVERLAP: tl.constexpr, BB: tl.constexpr,
                            BN: tl.constexpr, BK: tl.constexpr):  # fmt: skip
    """With OVERLAP, Γu is computed after arriving at the first barrier: only this program reads it
    (in phase 2), so its product runs while the other programs are still arriving."""
    programs, cols, col_mask = _units(n, BN)
    for t in range(0, T):
        bs = tl.load(SIZES + t)
        G_t = G + t * B * 3 * n
        C_prev = C + t * B * n
        RC_t = RC + t * B * n
        # phase 1, this tile: Γr from [c<t-1>, x<t>]; Γr * c<t-1>, which every program's phase 2 reads
        _gru_gate(G_t, 1, C_prev, W, stride_w, bs, n, cols, col_mask, ACC, BB, BK)
        tl.debug_barrier()  # Γr of the tile is stored before it is read back
        for r0 in range(0, bs, BB):
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            g, state = _offsets(rows, cols, n, 3)
            r = tl.load(G_t + g + n, mask=mask, other=0.0).to(ACC)
            c_prev = _load_cg(C_prev + state, mask).to(ACC)
            tl.store(RC_t + state, (r * c_prev).to(RC.dtype.element_ty), mask=mask)
        if not OVERLAP:
            _gru_gate(G_t, 0, C_prev, W, stride_w, bs, n, cols, col_mask, ACC, BB, BK)  # Γu
        _barrier_arrive(SYNC)
        if OVERLAP:
            _gru_gate(G_t, 0, C_prev, W, stride_w, bs, n, cols, col_mask, ACC, BB, BK)  # Γu, while the others arrive
        _barrier_wait(SYNC, programs * (2 * t + 1))  # the candidate's product reads all of Γr * c<t-1>
        # phase 2, this tile: c̃<t> = tanh(Wc[Γr * c<t-1>, x<t>] + bc); c<t> = c<t-1> + Γu (c̃<t> - c<t-1>)
        for r0 in range(0, bs, BB):
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            g, state = _offsets(rows, cols, n, 3)
            cand = tl.load(G_t + g + 2 * n, mask=mask, other=0.0).to(ACC)
            cand = _dot_wt(cand, RC_t, n, W, stride_w, rows, row_mask, 2 * n + cols, col_mask, n, BK, True)  # + Wc,a (Γr * c<t-1>)
            c_prev = _load_cg(C_prev + state, mask).to(ACC)
            _gru_candidate(G_t + g, n, cand, c_prev, C_prev + B * n + state, mask, ACC)
        _grid_barrier(SYNC, programs * (2 * t + 2))  # the next step's products read all of c<t>


@triton.jit
def _gru_backward_persistent(SIZES, SYNC, T, B, n, G, W, stride_w, C, DC, DP, ACC: tl.constexpr, OVERLAP: tl.constexpr, BB: tl.constexpr,
                             BN: tl.constexpr, BK: tl.constexpr):  # fmt: skip
    programs, cols, col_mask = _units(n, BN)
    for i in range(0, T):
        t = T - 1 - i
        bs = tl.load(SIZES + t)
        G_t = G + t * B * 3 * n
        DP_t = DP + t * B * 3 * n
        C_prev = C + t * B * n
        DC_prev = DC + t * B * n  # dc<t-1>, accumulating; dc<t> (slot t + 1) is complete
        # phase 1, this tile: dpre_u, dpre_c from dc<t>; dc<t-1> += (1 - Γu) dc<t>
        _gru_update_phase(G_t, DP_t, C_prev, DC_prev, B, bs, n, cols, col_mask, 3, 2, ACC, BB)
        _grid_barrier(SYNC, programs * (2 * i + 1))  # the next product reads dpre_c of every unit
        # phase 2, this tile: d(Γr * c<t-1>) = Σ_k dpre_c[:, k] Wcc[k, tile]; dpre_r; dc<t-1> += Γr d(Γr * c<t-1>)
        for r0 in range(0, bs, BB):
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            g, state = _offsets(rows, cols, n, 3)
            d_rc = tl.zeros((BB, BN), dtype=ACC)
            d_rc = _dot(d_rc, DP_t + 2 * n, 3 * n, W + 2 * n * stride_w, 1, stride_w, rows, row_mask, cols, col_mask, n, BK, True)
            dc_prev = _load_cg(DC_prev + state, mask).to(ACC)
            _gru_relevance_grads(G_t + g, DP_t + g, n, C_prev + state, d_rc, dc_prev, DC_prev + state, mask, ACC)
        if not OVERLAP:
            _backward_product(DC_prev, DP_t, 3 * n, n, W, stride_w, bs, n, cols, col_mask, ACC, BB, BK)  # += dpre_u Wu
        _barrier_arrive(SYNC)
        # phase 3, this tile: dc<t-1> += Σ_k dpre_u[:, k] Wu[k, tile] (dpre_u is complete since the
        # first barrier: with OVERLAP this runs while the others arrive) + Σ_k dpre_r[:, k] Wr[k, tile]
        if OVERLAP:
            _backward_product(DC_prev, DP_t, 3 * n, n, W, stride_w, bs, n, cols, col_mask, ACC, BB, BK)
        _barrier_wait(SYNC, programs * (2 * i + 2))  # the next product reads dpre_r of every unit
        _backward_product(DC_prev, DP_t + n, 3 * n, n, W + n * stride_w, stride_w, bs, n, cols, col_mask, ACC, BB, BK)


# -- rnn and gru-simple: one product per step ---------------------------------------------------------


@triton.jit
def _rnn_forward_persistent(SIZES, SYNC, T, B, n, G, W, stride_w, A, RELU: tl.constexpr, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr,
                            BK: tl.constexpr):  # fmt: skip
    programs, cols, col_mask = _units(n, BN)
    for t in range(0, T):
        bs = tl.load(SIZES + t)
        A_prev = A + t * B * n
        for r0 in range(0, bs, BB):
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            tile = rows[:, None] * n + cols[None, :]
            pre = tl.load(G + t * B * n + tile, mask=mask, other=0.0).to(ACC)  # Wax x<t> + ba
            pre = _dot_wt(pre, A_prev, n, W, stride_w, rows, row_mask, cols, col_mask, n, BK, True)  # + Waa a<t-1>
            _rnn_cell(pre, A_prev + B * n + tile, mask, RELU)
        _grid_barrier(SYNC, programs * (t + 1))


@triton.jit
def _rnn_backward_persistent(SIZES, SYNC, T, B, n, W, stride_w, A, DA, DP, RELU: tl.constexpr, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr,
                             BK: tl.constexpr):  # fmt: skip
    programs, cols, col_mask = _units(n, BN)
    for i in range(0, T):
        t = T - 1 - i
        bs = tl.load(SIZES + t)
        for r0 in range(0, bs, BB):  # phase 1, this tile: dpre<t> from da<t>
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            tile = rows[:, None] * n + cols[None, :]
            da = _load_cg(DA + (t + 1) * B * n + tile, mask).to(ACC)
            _rnn_grads(A + (t + 1) * B * n + tile, da, DP + t * B * n + tile, mask, ACC, RELU)
        _grid_barrier(SYNC, programs * (i + 1))  # the product reads dpre<t> of every unit
        _backward_product(DA + t * B * n, DP + t * B * n, n, n, W, stride_w, bs, n, cols, col_mask, ACC, BB, BK)  # da<t-1> += dpre<t> Waa


@triton.jit
def _gru_simple_forward_persistent(SIZES, SYNC, T, B, n, G, W, stride_w, C, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    programs, cols, col_mask = _units(n, BN)
    for t in range(0, T):
        bs = tl.load(SIZES + t)
        G_t = G + t * B * 2 * n
        C_prev = C + t * B * n
        for r0 in range(0, bs, BB):
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            g, state = _offsets(rows, cols, n, 2)
            u, cand, _, _ = _load_blocks(G_t + g, n, mask, ACC, 2)  # Wx x<t> + b, per block
            u, cand, _, _ = _gate_products(C_prev, rows, row_mask, cols, col_mask, n, W, stride_w, u, cand, 0.0, 0.0, 2, BK)  # + Wa c<t-1>
            c_prev = _load_cg(C_prev + state, mask).to(ACC)
            _gru_simple_cell(G_t + g, n, u, cand, c_prev, C_prev + B * n + state, mask)
        _grid_barrier(SYNC, programs * (t + 1))


@triton.jit
def _gru_simple_backward_persistent(SIZES, SYNC, T, B, n, G, W, stride_w, C, DC, DP, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr,
                                    BK: tl.constexpr):  # fmt: skip
    programs, cols, col_mask = _units(n, BN)
    for i in range(0, T):
        t = T - 1 - i
        bs = tl.load(SIZES + t)
        DP_t = DP + t * B * 2 * n
        DC_prev = DC + t * B * n
        # phase 1, this tile: dpre_u, dpre_c; dc<t-1> += (1 - Γu) dc<t>
        _gru_update_phase(G + t * B * 2 * n, DP_t, C + t * B * n, DC_prev, B, bs, n, cols, col_mask, 2, 1, ACC, BB)
        _grid_barrier(SYNC, programs * (i + 1))
        _backward_product(DC_prev, DP_t, 2 * n, 2 * n, W, stride_w, bs, n, cols, col_mask, ACC, BB, BK)  # dc<t-1> += dpre<t> Wa


# -- gru-cudnn: blocks [r u c], relevance after the product, extra bias b_cc --------------------------


@triton.jit
def _gru_cudnn_forward_persistent(SIZES, SYNC, T, B, n, G, W, stride_w, B_CC, C, HC, ACC: tl.constexpr, BB: tl.constexpr, BN: tl.constexpr,
                                  BK: tl.constexpr):  # fmt: skip
    programs, cols, col_mask = _units(n, BN)
    b_cc = tl.load(B_CC + cols, mask=col_mask, other=0.0).to(ACC)[None, :]
    for t in range(0, T):
        bs = tl.load(SIZES + t)
        G_t = G + t * B * 3 * n
        C_prev = C + t * B * n
        for r0 in range(0, bs, BB):
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            g, state = _offsets(rows, cols, n, 3)
            r, u, _, _ = _load_blocks(G_t + g, n, mask, ACC, 2)  # Wrx x<t> + br, Wux x<t> + bu
            hc = b_cc + tl.zeros((BB, BN), dtype=ACC)  # bcc
            r, u, hc, _ = _gate_products(C_prev, rows, row_mask, cols, col_mask, n, W, stride_w, r, u, hc, 0.0, 3, BK)  # + W c<t-1>, three blocks
            c_prev = _load_cg(C_prev + state, mask).to(ACC)
            _gru_cudnn_cell(G_t + g, n, r, u, hc, c_prev, HC + t * B * n + state, C_prev + B * n + state, mask, ACC)
        _grid_barrier(SYNC, programs * (t + 1))  # the next step's product reads all of c<t>


@triton.jit
def _gru_cudnn_backward_persistent(SIZES, SYNC, T, B, n, G, W, stride_w, C, HC, DC, DH, DXC, ACC: tl.constexpr, BB: tl.constexpr,
                                   BN: tl.constexpr, BK: tl.constexpr):  # fmt: skip
    programs, cols, col_mask = _units(n, BN)
    for i in range(0, T):
        t = T - 1 - i
        bs = tl.load(SIZES + t)
        G_t = G + t * B * 3 * n
        DH_t = DH + t * B * 3 * n
        HC_t, C_prev, DXC_t = HC + t * B * n, C + t * B * n, DXC + t * B * n
        DC_prev = DC + t * B * n  # dc<t-1>, accumulating; dc<t> (slot t + 1) is complete for this tile
        # phase 1, this tile: the gradients of the pre-activations from dc<t>
        for r0 in range(0, bs, BB):
            rows, row_mask, mask = _row_block(r0, bs, col_mask, BB)
            g, state = _offsets(rows, cols, n, 3)
            dc = _load_cg(DC_prev + B * n + state, mask).to(ACC)
            dc_prev = _load_cg(DC_prev + state, mask).to(ACC)
            _gru_cudnn_grads(G_t + g, DH_t + g, n, HC_t + state, C_prev + state, dc, dc_prev, DXC_t + state, DC_prev + state, mask, ACC)
        _grid_barrier(SYNC, programs * (i + 1))  # the product reads d_h<t> of every unit
        # phase 2, this tile: dc<t-1> += Σ_k d_h<t>[:, k] Wa[k, tile], k over all 3 n_a gate rows
        _backward_product(DC_prev, DH_t, 3 * n, 3 * n, W, stride_w, bs, n, cols, col_mask, ACC, BB, BK)


# -- the loop functions (the interface of fused_loops.py) -----------------------------------------------


def _persistent(kernel, per_step, per_step_args: tuple, state: Tensor, largest: Tensor, sizes: list[int], *args) -> None:
    """One launch of ``kernel`` over every step, its programs planned for ``state`` (T + 1, B, n_a);
    where the plan says no, ``per_step(*per_step_args)``, the per-step kernels."""
    n, B = state.shape[-1], state.shape[1]
    p = plan(n, B, state, largest)
    if p is None:
        per_step(*per_step_args)
        return
    SIZES, SYNC = _launch_state(sizes, state.device)
    kernel[(p["programs"],)](SIZES, SYNC, len(sizes), B, n, *args, p["BB"], p["BN"], p["BK"], num_warps=p["num_warps"], num_stages=p["num_stages"])


def rnn_forward(G, W_a, A, sizes, relu):
    _persistent(_rnn_forward_persistent, triton_loops.rnn_forward, (G, W_a, A, sizes, relu), A, G, sizes, G, W_a, W_a.stride(0), A, relu, _acc(G))


def rnn_backward(A, W_a, DA, d_pre, sizes, relu):
    _persistent(_rnn_backward_persistent, triton_loops.rnn_backward, (A, W_a, DA, d_pre, sizes, relu), A, d_pre, sizes,
                W_a, W_a.stride(0), A, DA, d_pre, relu, _acc(A))  # fmt: skip


def gru_simple_forward(G, W_a, C, sizes):
    _persistent(_gru_simple_forward_persistent, triton_loops.gru_simple_forward, (G, W_a, C, sizes), C, G, sizes, G, W_a, W_a.stride(0), C, _acc(G))


def gru_simple_backward(G, C, W_a, DC, d_pre, sizes):
    _persistent(_gru_simple_backward_persistent, triton_loops.gru_simple_backward, (G, C, W_a, DC, d_pre, sizes), C, G, sizes,
                G, W_a, W_a.stride(0), C, DC, d_pre, _acc(G))  # fmt: skip


def gru_forward(G, W_a, C, RC, sizes):
    _persistent(_gru_forward_persistent, triton_loops.gru_forward, (G, W_a, C, RC, sizes), C, G, sizes, G, W_a, W_a.stride(0), C, RC, _acc(G),
                CONFIG["overlap"])  # fmt: skip


def gru_backward(G, C, RC, W_a, DC, d_pre, sizes):
    _persistent(_gru_backward_persistent, triton_loops.gru_backward, (G, C, RC, W_a, DC, d_pre, sizes), C, G, sizes,
                G, W_a, W_a.stride(0), C, DC, d_pre, _acc(G), CONFIG["overlap"])  # fmt: skip


def gru_cudnn_forward(G, W_a, b_cc, C, HC, sizes):
    _persistent(_gru_cudnn_forward_persistent, triton_loops.gru_cudnn_forward, (G, W_a, b_cc, C, HC, sizes), C, G, sizes,
                G, W_a, W_a.stride(0), b_cc, C, HC, _acc(G))  # fmt: skip


def gru_cudnn_backward(G, C, HC, W_a, DC, d_h, d_xc, sizes):
    _persistent(_gru_cudnn_backward_persistent, triton_loops.gru_cudnn_backward, (G, C, HC, W_a, DC, d_h, d_xc, sizes), C, G, sizes,
                G, W_a, W_a.stride(0), C, HC, DC, d_h, d_xc, _acc(G))  # fmt: skip


def lstm_forward(G, W_a, peephole, A, C, TC, sizes):
    P = peephole if peephole is not None else W_a  # any pointer; unread without peepholes
    _persistent(_lstm_forward_persistent, triton_loops.lstm_forward, (G, W_a, peephole, A, C, TC, sizes), A, G, sizes,
                G, W_a, W_a.stride(0), P, A, C, TC, peephole is not None, _acc(G))  # fmt: skip


def lstm_backward(G, C, TC, W_a, peephole, DA, carry_c, d_pre, sizes):
    P = peephole if peephole is not None else W_a
    _persistent(_lstm_backward_persistent, triton_loops.lstm_backward, (G, C, TC, W_a, peephole, DA, carry_c, d_pre, sizes), C, G, sizes,
                G, W_a, W_a.stride(0), P, C, TC, DA, carry_c, d_pre, peephole is not None, _acc(G))  # fmt: skip

