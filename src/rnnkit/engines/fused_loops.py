r"""The time loops of the fused engine, on torch ops: any device, any floating dtype.

``csrc/fused_loops.cpp`` compiles the same functions for the CPU; ``fused.py`` picks one. Both take
preallocated, contiguous, time-major buffers and fill them in place:

* ``G`` (T, B, G·n_a): on entry the input products ``Wx x<t> + b``; on return the activated blocks
  of each step (gates and candidate) in the cell's block order (see ``rnnkit.cells``);
* states ``A``, ``C`` (T + 1, B, n_a): slot 0 holds the initial state, slot t + 1 the state after
  step t; ``TC`` (T, B, n_a) holds tanh(c<t>) for the LSTM, ``RC`` the GRU's Γr * c<t-1>, ``HC``
  the cuDNN GRU's Wcc c<t-1> + bcc;
* gradients of states ``DA``/``DC`` (T + 1, B, n_a): on entry slot t + 1 holds the gradient
  arriving at the state after step t from outside (its output, and the final state's gradient
  at each sequence's last step); the loop adds what flows back through the recurrence, and slot 0
  ends as the initial state's gradient. The LSTM's memory cell gradient runs in ``carry_c`` (B, n_a),
  which starts as the final c's gradient: rows of sequences that have not started yet (in reverse
  time) keep it until their last step;
* ``d_pre`` (T, B, G·n_a): the pre-activation gradients of every step, written by the loop;
* ``sizes``: the number of rows running at each step (the batch is sorted by length).

Per step, the forward pass adds the recurrent product into the step's slice of ``G`` and applies the
activations in place; the backward pass first computes, for all steps at once, the factors that turn
a state gradient into pre-activation gradients, so the sequential loop is left with a few
multiplies and one product per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

sigmoid_backward = torch.ops.aten.sigmoid_backward  # (grad, σ(x)) -> grad * σ(x) * (1 - σ(x))
tanh_backward = torch.ops.aten.tanh_backward  # (grad, tanh(x)) -> grad * (1 - tanh(x)²)
threshold_backward = torch.ops.aten.threshold_backward  # (grad, relu(x), 0) -> grad * (relu(x) > 0)


def steps(x: Tensor, sizes: Sequence[int]) -> Sequence[Tensor]:
    """Per-step views of a (T, B, ...) tensor, cut to the rows running at each step."""
    per_step = x.unbind(0)
    if sizes[-1] == x.shape[1]:  # no padding
        return per_step
    return [x_t[:bs] for x_t, bs in zip(per_step, sizes)]


def rows(x: Tensor, sizes: Sequence[int]) -> Sequence[Tensor]:
    """Per-step views of a (B, ...) tensor, cut to the rows running at each step."""
    if sizes[-1] == x.shape[0]:
        return [x] * len(sizes)
    return [x[:bs] for bs in sizes]


def product(W: Tensor):
    """``target += x @ Wᵀ`` as a function of (target, x), with Wᵀ made contiguous once."""
    W_T = W.t().contiguous()
    return lambda target, x: target.addmm_(x, W_T)


# -- rnn: a<t> = g(Wa[a<t-1>, x<t>] + ba) ----------------------------------------------------------


def rnn_forward(G, W_a, A, sizes, relu):
    add_Waa = product(W_a)
    pre, a_prev, a = steps(G, sizes), steps(A[:-1], sizes), steps(A[1:], sizes)
    for t in range(len(sizes)):
        add_Waa(pre[t], a_prev[t])  # Waa a<t-1> + (Wax x<t> + ba)
        if relu:
            torch.clamp(pre[t], min=0, out=a[t])
        else:
            torch.tanh(pre[t], out=a[t])


def rnn_backward(A, W_a, DA, d_pre, sizes, relu):
    add_Waa_T = product(W_a.t())
    a, da, da_prev, dp = steps(A[1:], sizes), steps(DA[1:], sizes), steps(DA[:-1], sizes), steps(d_pre, sizes)
    for t in reversed(range(len(sizes))):
        if relu:
            threshold_backward.grad_input(da[t], a[t], 0, grad_input=dp[t])
        else:
            tanh_backward.grad_input(da[t], a[t], grad_input=dp[t])  # da<t> (1 - a<t>²)
        add_Waa_T(da_prev[t], dp[t])  # da<t-1> += dpre<t> Waa


# -- gru-simple: blocks [u c]; c<t> = c<t-1> + Γu (c̃<t> - c<t-1>) --------------------------------------


def gru_simple_forward(G, W_a, C, sizes):
    n = C.shape[-1]
    add_Wa = product(W_a)
    g, u, cand = steps(G, sizes), steps(G[..., :n], sizes), steps(G[..., n:], sizes)
    c_prev, c = steps(C[:-1], sizes), steps(C[1:], sizes)
    for t in range(len(sizes)):
        add_Wa(g[t], c_prev[t])  # Wa c<t-1> + (Wx x<t> + b), both blocks
        u[t].sigmoid_()  # Γu
        cand[t].tanh_()  # c̃<t>
        torch.lerp(c_prev[t], cand[t], u[t], out=c[t])  # c<t> = Γu*c̃ + (1-Γu)*c<t-1>


def gru_simple_backward(G, C, W_a, DC, d_pre, sizes):
    T, B, n = C.shape[0] - 1, C.shape[1], C.shape[2]
    u, cand = G[..., :n], G[..., n:]
    P = torch.empty_like(G).view(T, B, 2, n)  # dc<t> -> [dpre_u, dpre_c]
    sigmoid_backward.grad_input(cand - C[:-1], u, grad_input=P[:, :, 0])  # (c̃ - c<t-1>) Γu(1-Γu)
    tanh_backward.grad_input(u, cand, grad_input=P[:, :, 1])  # Γu (1 - c̃²)
    keep = 1 - u  # ∂c<t>/∂c<t-1> along the direct path
    add_Wa_T = product(W_a.t())
    dc, dc_prev, dc_ = steps(DC[1:], sizes), steps(DC[:-1], sizes), steps(DC[1:].unsqueeze(2), sizes)
    p, dp, dp2, keep_ = steps(P, sizes), steps(d_pre, sizes), steps(d_pre.view(T, B, 2, n), sizes), steps(keep, sizes)
    for t in reversed(range(T)):
        torch.mul(dc_[t], p[t], out=dp2[t])  # dpre_u, dpre_c
        dc_prev[t].addcmul_(keep_[t], dc[t])  # dc<t-1> += (1-Γu) dc<t>
        add_Wa_T(dc_prev[t], dp[t])  # ... + dpre<t> Wa


# -- gru: the course's GRU, blocks [u r c], relevance before the candidate's product ---------------


def gru_forward(G, W_a, C, RC, sizes):
    n = C.shape[-1]
    add_W_ur, add_W_cc = product(W_a[: 2 * n]), product(W_a[2 * n :])
    ur, u, r, cand = (steps(G[..., k * n : (k + m) * n], sizes) for k, m in ((0, 2), (0, 1), (1, 1), (2, 1)))
    rc, c_prev, c = steps(RC, sizes), steps(C[:-1], sizes), steps(C[1:], sizes)
    for t in range(len(sizes)):
        add_W_ur(ur[t], c_prev[t])  # Wu,r [c<t-1>, x<t>] + bu,r
        ur[t].sigmoid_()  # Γu, Γr
        torch.mul(r[t], c_prev[t], out=rc[t])  # Γr * c<t-1>
        add_W_cc(cand[t], rc[t])  # Wc [Γr*c<t-1>, x<t>] + bc
        cand[t].tanh_()  # c̃<t>
        torch.lerp(c_prev[t], cand[t], u[t], out=c[t])  # c<t> = Γu*c̃ + (1-Γu)*c<t-1>


def gru_backward(G, C, RC, W_a, DC, d_pre, sizes):
    n = C.shape[-1]
    c_prev = C[:-1]
    u, r, cand = G[..., :n], G[..., n : 2 * n], G[..., 2 * n :]
    P = torch.empty_like(G)
    sigmoid_backward.grad_input(cand - c_prev, u, grad_input=P[..., :n])  # (c̃ - c<t-1>) Γu(1-Γu)
    sigmoid_backward.grad_input(c_prev, r, grad_input=P[..., n : 2 * n])  # c<t-1> Γr(1-Γr)
    tanh_backward.grad_input(u, cand, grad_input=P[..., 2 * n :])  # Γu (1 - c̃²)
    keep = 1 - u
    W_cc_T = W_a[2 * n :].contiguous()  # d(Γr*c<t-1>) = dpre_c Wcc
    add_W_ur_T = product(W_a[: 2 * n].t())
    dc, dc_prev = steps(DC[1:], sizes), steps(DC[:-1], sizes)
    p_u, p_r, p_c = (steps(P[..., k * n : (k + 1) * n], sizes) for k in range(3))
    dp_u, dp_r, dp_c = (steps(d_pre[..., k * n : (k + 1) * n], sizes) for k in range(3))
    dp_ur, r_, keep_ = steps(d_pre[..., : 2 * n], sizes), steps(r, sizes), steps(keep, sizes)
    for t in reversed(range(len(sizes))):
        torch.mul(dc[t], p_u[t], out=dp_u[t])  # dpre_u
        torch.mul(dc[t], p_c[t], out=dp_c[t])  # dpre_c
        d_rc = dp_c[t].mm(W_cc_T)  # d(Γr * c<t-1>)
        torch.mul(d_rc, p_r[t], out=dp_r[t])  # dpre_r
        dc_prev[t].addcmul_(keep_[t], dc[t]).addcmul_(r_[t], d_rc)  # dc<t-1> += (1-Γu) dc<t> + Γr d(Γr*c)
        add_W_ur_T(dc_prev[t], dp_ur[t])  # ... + dpre_u,r Wu,r


# -- gru-cudnn: blocks [r u c], relevance after the product, extra bias b_cc -----------------------------


def gru_cudnn_forward(G, W_a, b_cc, C, HC, sizes):
    n = C.shape[-1]
    W_a_T = W_a.t().contiguous()
    ru, r, u, cand = (steps(G[..., k * n : (k + m) * n], sizes) for k, m in ((0, 2), (0, 1), (1, 1), (2, 1)))
    hc, c_prev, c = steps(HC, sizes), steps(C[:-1], sizes), steps(C[1:], sizes)
    for t in range(len(sizes)):
        h_ru, h_c = c_prev[t].mm(W_a_T).split(2 * n, dim=1)  # Wa c<t-1>
        ru[t].add_(h_ru).sigmoid_()  # Γr, Γu
        torch.add(h_c, b_cc, out=hc[t])  # Wcc c<t-1> + bcc
        cand[t].addcmul_(r[t], hc[t]).tanh_()  # c̃ = tanh(Wcx x + bc + Γr*(Wcc c<t-1> + bcc))
        torch.lerp(c_prev[t], cand[t], u[t], out=c[t])  # c<t> = Γu*c̃ + (1-Γu)*c<t-1>


def gru_cudnn_backward(G, C, HC, W_a, DC, d_h, d_xc, sizes):
    n = C.shape[-1]
    c_prev = C[:-1]
    r, u, cand = G[..., :n], G[..., n : 2 * n], G[..., 2 * n :]
    P = torch.empty_like(G)
    sigmoid_backward.grad_input(HC, r, grad_input=P[..., :n])  # (Wcc c + bcc) Γr(1-Γr)
    sigmoid_backward.grad_input(cand - c_prev, u, grad_input=P[..., n : 2 * n])  # (c̃ - c<t-1>) Γu(1-Γu)
    tanh_backward.grad_input(u, cand, grad_input=P[..., 2 * n :])  # Γu (1 - c̃²)
    keep = 1 - u
    add_Wa_T = product(W_a.t())
    dc, dc_prev = steps(DC[1:], sizes), steps(DC[:-1], sizes)
    p_r, p_u, p_c = (steps(P[..., k * n : (k + 1) * n], sizes) for k in range(3))
    dh, dh_r, dh_u, dh_c = (steps(z, sizes) for z in (d_h, d_h[..., :n], d_h[..., n : 2 * n], d_h[..., 2 * n :]))
    dxc, r_, keep_ = steps(d_xc, sizes), steps(r, sizes), steps(keep, sizes)
    for t in reversed(range(len(sizes))):
        torch.mul(dc[t], p_u[t], out=dh_u[t])  # dpre_u
        torch.mul(dc[t], p_c[t], out=dxc[t])  # dpre_c
        torch.mul(dxc[t], p_r[t], out=dh_r[t])  # dpre_r
        torch.mul(dxc[t], r_[t], out=dh_c[t])  # d(Wcc c + bcc) = Γr dpre_c
        dc_prev[t].addcmul_(keep_[t], dc[t])  # dc<t-1> += (1-Γu) dc<t>
        add_Wa_T(dc_prev[t], dh[t])  # ... + d_h<t> Wa


# -- lstm: blocks [u f c o]; optional peepholes (3, n_a): p_u, p_f look at c<t-1>, p_o at c<t> ---------


def lstm_forward(G, W_a, peephole, A, C, TC, sizes):
    T, B, n = TC.shape
    add_Wa = product(W_a)
    g, uf, uf2 = steps(G, sizes), steps(G[..., : 2 * n], sizes), steps(G.view(T, B, 4, n)[:, :, :2], sizes)
    u, f, cand, o = (steps(G[..., k * n : (k + 1) * n], sizes) for k in range(4))
    a_prev, a, tc = steps(A[:-1], sizes), steps(A[1:], sizes), steps(TC, sizes)
    c_prev, c, c_prev2 = steps(C[:-1], sizes), steps(C[1:], sizes), steps(C[:-1].unsqueeze(2), sizes)
    for t in range(T):
        add_Wa(g[t], a_prev[t])  # Wa a<t-1> + (Wx x<t> + b), every block
        if peephole is not None:
            uf2[t].addcmul_(c_prev2[t], peephole[:2])  # + p_u*c<t-1>, + p_f*c<t-1>
        uf[t].sigmoid_()  # Γu, Γf
        cand[t].tanh_()  # c̃<t>
        torch.mul(f[t], c_prev[t], out=c[t]).addcmul_(u[t], cand[t])  # c<t> = Γu*c̃ + Γf*c<t-1>
        if peephole is not None:
            o[t].addcmul_(c[t], peephole[2])  # + p_o*c<t>
        o[t].sigmoid_()  # Γo
        torch.tanh(c[t], out=tc[t])
        torch.mul(o[t], tc[t], out=a[t])  # a<t> = Γo*tanh(c<t>)


def lstm_backward(G, C, TC, W_a, peephole, DA, carry_c, d_pre, sizes):
    T, B, n = TC.shape
    u, f, cand, o = G.split(n, dim=-1)
    P = torch.empty_like(G)  # da<t>, dc<t> -> pre-activation gradients
    P_u, P_f, P_c, P_o = P.split(n, dim=-1)
    sigmoid_backward.grad_input(cand, u, grad_input=P_u)  # c̃ Γu(1-Γu)
    sigmoid_backward.grad_input(C[:-1], f, grad_input=P_f)  # c<t-1> Γf(1-Γf)
    tanh_backward.grad_input(u, cand, grad_input=P_c)  # Γu (1 - c̃²)
    sigmoid_backward.grad_input(TC, o, grad_input=P_o)  # tanh(c<t>) Γo(1-Γo)
    K = tanh_backward(o, TC)  # ∂a<t>/∂c<t> = Γo (1 - tanh²(c<t>))
    add_Wa_T = product(W_a.t())
    dp4, P4 = d_pre.view(T, B, 4, n), P.view(T, B, 4, n)
    da, da_prev = steps(DA[1:], sizes), steps(DA[:-1], sizes)
    dc, dc_ = rows(carry_c, sizes), rows(carry_c.unsqueeze(1), sizes)
    dp, dp_ufc, dp_o, dp_u, dp_f = (steps(z, sizes) for z in (d_pre, dp4[:, :, :3], dp4[:, :, 3], dp4[:, :, 0], dp4[:, :, 1]))
    p_ufc, p_o, k, f_ = steps(P4[:, :, :3], sizes), steps(P_o, sizes), steps(K, sizes), steps(f, sizes)
    for t in reversed(range(T)):
        torch.mul(da[t], p_o[t], out=dp_o[t])  # dpre_o
        dc[t].addcmul_(da[t], k[t])  # dc<t> += da<t> Γo (1 - tanh²c)
        if peephole is not None:
            dc[t].addcmul_(dp_o[t], peephole[2])  # ... + dpre_o p_o
        torch.mul(dc_[t], p_ufc[t], out=dp_ufc[t])  # dpre_u, dpre_f, dpre_c
        dc[t].mul_(f_[t])  # dc<t-1> = dc<t> Γf ...
        if peephole is not None:
            dc[t].addcmul_(dp_u[t], peephole[0]).addcmul_(dp_f[t], peephole[1])  # ... + dpre_u p_u + dpre_f p_f
        add_Wa_T(da_prev[t], dp[t])  # da<t-1> += dpre<t> Wa


def lstm_peephole_gradient(d_pre, C, out):
    """out (3, n_a) = [Σ_t dpre_u<t> c<t-1>, Σ_t dpre_f<t> c<t-1>, Σ_t dpre_o<t> c<t>], summed over
    steps and rows: the peephole weights' gradient, from d_pre (T, B, 4 n_a) and C (T + 1, B, n_a)."""
    T, B, n = C.shape[0] - 1, C.shape[1], C.shape[2]
    dp4 = d_pre.view(T, B, 4, n)
    torch.sum(dp4[:, :, :2] * C[:-1].unsqueeze(2), dim=(0, 1), out=out[:2])  # Σ dpre_u,f c<t-1>
    torch.sum(dp4[:, :, 3] * C[1:], dim=(0, 1), out=out[2])  # Σ dpre_o c<t>
