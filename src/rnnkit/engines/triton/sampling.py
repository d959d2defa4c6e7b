r"""Sampling from an LSTM language model with a few Triton launches per token, replayed from CUDA
graphs: the decode step without per-token Python or per-op kernel overhead. Two graphs of 16
tokens each alternate, so the GPU runs the next 16 tokens while the host reads the last 16.
About 18 µs per token at n_a = 1024 on an H200 (docs/gpu/2026-11-27-h200.md).

One token of a one-layer model is two launches (one more per extra layer):

1. ``_lstm_decode_step`` (one per layer): each program owns a tile of hidden units of all four
   gates. It first picks the previous token (layer 0 only): the argmax of the per-tile maxima that
   launch 2 of the previous step left, so the token never leaves the GPU; then
   ``pre = W_a a<t-1> + W_x x<t> + b`` for its units (x<t> = e(token), read straight from the
   embedding; the first step's "previous token" is -1, for x<1> = 0, so no step runs eagerly),
   then c<t> = Γu*c̃ + Γf*c<t-1>, a<t> = Γo*tanh(c<t>). The state is double-buffered: programs
   read a<t-1> of every unit while writing their own part of a<t>.
2. ``_sample_partial``: each program owns a tile of the vocabulary, computes those logits
   ``W_y a<t> + b_y``, and draws with the Gumbel-max trick: argmax(logit / temperature + g),
   g = -log(-log u), u uniform (Philox, ``tl.rand``), is a draw from softmax(logit / temperature)
   (greedy: argmax of the logits). It writes its tile's best score and index.

Supported: ``LanguageModel`` with ``cell="lstm"`` (no peepholes), any number of layers, no deep
head, sampling with a temperature or greedy decoding, banned tokens. ``fused_sampler_unsupported``
gives the reason otherwise; ``decoding.fast_sampler`` then uses the CUDA-graph sampler of eager ops.
On the CPU the kernels run in Triton's interpreter (tests), without a graph. Each program loops
over the rows, re-reading its weights for each: up to ``decoding.FUSED_MAX_ROWS`` rows this beats
the graph of torch ops, beyond it the batched products of the latter win.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import update_config
from .loops import _acc, _tanh

# tile sizes: hidden units per program (all four gates), its reduction chunk and warps; vocabulary
# entries per program of the draw, its chunk and warps. benchmarks/gpu.py times alternatives (``configure``).
CONFIG = {"BN": 2, "BK": 2048, "warps": 8, "BV": 8, "sample_BK": 1024, "sample_warps": 4}  # the fastest timed on an H200


def configure(**values: int) -> None:
    """Change the tile sizes (keys of ``CONFIG``)."""
    update_config(CONFIG, values, "fused-sampler")


@triton.jit
def _lstm_decode_step(PART_VAL, PART_IDX, n_parts, OUT_TOKEN, EMB, stride_emb, X, W, stride_w, BIAS, A, C, A_NEW, C_NEW,
                      B, n, n_x, FIRST_LAYER: tl.constexpr, ACC: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
                      BP: tl.constexpr):  # fmt: skip
    pid = tl.program_id(0)
    cols = pid * BN + tl.arange(0, BN)
    col_mask = cols < n
    for b in range(0, B):
        if FIRST_LAYER:  # the previous token: argmax over the tiles' best scores
            parts = tl.arange(0, BP)
            part_mask = parts < n_parts
            vals = tl.load(PART_VAL + b * n_parts + parts, mask=part_mask, other=-float("inf"))
            best = tl.argmax(vals, 0)
            token = tl.sum(tl.where(parts == best, tl.load(PART_IDX + b * n_parts + parts, mask=part_mask, other=0), 0))
            if pid == 0:
                tl.store(OUT_TOKEN + b, token)
            x_row = EMB + token.to(tl.int64) * stride_emb  # x<t> = e(token)
            x_end = n + tl.where(token >= 0, n_x, 0)  # token -1 stands for x<1> = 0: nothing read
        else:
            x_row = X + b * n_x  # the layer below's a<t>
            x_end = n + n_x
        u = tl.load(BIAS + cols, mask=col_mask, other=0.0).to(ACC)
        f = tl.load(BIAS + n + cols, mask=col_mask, other=0.0).to(ACC)
        cand = tl.load(BIAS + 2 * n + cols, mask=col_mask, other=0.0).to(ACC)
        o = tl.load(BIAS + 3 * n + cols, mask=col_mask, other=0.0).to(ACC)
        for k0 in range(0, n + n_x, BK):  # [a<t-1>, x<t>] against the rows of W = [W_a | W_x]
            kk = k0 + tl.arange(0, BK)
            from_a = kk < n
            v = tl.load(A + b * n + kk, mask=from_a, other=0.0).to(ACC)
            v += tl.load(x_row + (kk - n), mask=(kk >= n) & (kk < x_end), other=0.0).to(ACC)
            w = W + cols[:, None] * stride_w + kk[None, :]
            w_mask = col_mask[:, None] & (kk < n + n_x)[None, :]
            u += tl.sum(tl.load(w, mask=w_mask, other=0.0).to(ACC) * v[None, :], axis=1)
            f += tl.sum(tl.load(w + n * stride_w, mask=w_mask, other=0.0).to(ACC) * v[None, :], axis=1)
            cand += tl.sum(tl.load(w + 2 * n * stride_w, mask=w_mask, other=0.0).to(ACC) * v[None, :], axis=1)
            o += tl.sum(tl.load(w + 3 * n * stride_w, mask=w_mask, other=0.0).to(ACC) * v[None, :], axis=1)
        c_prev = tl.load(C + b * n + cols, mask=col_mask, other=0.0).to(ACC)
        c = tl.sigmoid(u) * _tanh(cand) + tl.sigmoid(f) * c_prev  # c<t> = Γu*c̃ + Γf*c<t-1>
        tl.store(C_NEW + b * n + cols, c.to(C_NEW.dtype.element_ty), mask=col_mask)
        tl.store(A_NEW + b * n + cols, (tl.sigmoid(o) * _tanh(c)).to(A_NEW.dtype.element_ty), mask=col_mask)  # a<t>


@triton.jit
def _sample_partial(A, W, stride_w, BIAS, BANNED, PART_VAL, PART_IDX, COUNTER, step, B, n, V, inv_temperature,
                    GREEDY: tl.constexpr, ACC: tl.constexpr, BV: tl.constexpr, BK: tl.constexpr):  # fmt: skip
    pid = tl.program_id(0)
    n_parts = tl.num_programs(0)
    vocab = pid * BV + tl.arange(0, BV)
    v_mask = vocab < V
    banned = tl.load(BANNED + vocab, mask=v_mask, other=1) != 0
    for b in range(0, B):
        logit = tl.load(BIAS + vocab, mask=v_mask, other=0.0).to(ACC)
        for k0 in range(0, n, BK):
            kk = k0 + tl.arange(0, BK)
            k_mask = kk < n
            a = tl.load(A + b * n + kk, mask=k_mask, other=0.0).to(ACC)
            w = tl.load(W + vocab[:, None] * stride_w + kk[None, :], mask=v_mask[:, None] & k_mask[None, :], other=0.0).to(ACC)
            logit += tl.sum(w * a[None, :], axis=1)  # W_y a<t> + b_y
        if GREEDY:
            score = logit.to(tl.float32)
        else:  # Gumbel-max: argmax(logit / T + g) is a draw from softmax(logit / T)
            offsets = (step * B + b) * V + vocab
            u = tl.maximum(tl.rand(tl.load(COUNTER), offsets), 1e-20)  # seed: the call's seed + replays so far
            score = logit.to(tl.float32) * inv_temperature - tl.log(-tl.log(u))
        score = tl.where(banned, -float("inf"), score)
        best = tl.argmax(score, 0)
        tl.store(PART_VAL + b * n_parts + pid, tl.max(score, 0))
        tl.store(PART_IDX + b * n_parts + pid, pid * BV + best)


def fused_sampler_unsupported(model, options) -> str | None:
    """Why the fused sampler cannot run ``model`` under ``options`` (None: it can)."""
    recurrent = getattr(model, "recurrent", None)
    if recurrent is None or not hasattr(model, "embedding") or not hasattr(model, "output"):
        return "the fused sampler runs language models (embedding, recurrent stack, output layer)"
    cell = recurrent.cells["l0"]
    if cell.kind != "lstm" or cell.options().get("peepholes"):
        return f"the fused sampler has an LSTM step only, not {cell.kind!r} {cell.options() or ''}".strip()
    if recurrent.num_directions != 1:
        return "the fused sampler runs one direction"
    if any(True for _ in model.head.parameters()):
        return "the fused sampler has no deep head"
    if options.top_k or options.top_p is not None:  # top_k 0 is no limit
        return "the fused sampler draws from the whole distribution (no top_k / top_p)"
    return None


class FusedSampler:
    """Samples ``batch_size`` sequences from an LSTM language model with the fused kernels; on a
    GPU ``steps_per_replay`` tokens per CUDA-graph replay. The same interface as ``GraphedSampler``."""

    def __init__(self, model, batch_size: int, options, *, banned: Sequence[int] = (), steps_per_replay: int = 16):
        reason = fused_sampler_unsupported(model, options.check())
        if reason:
            raise ValueError(reason)
        self.model, self.B, self.options = model, batch_size, options
        self.K = steps_per_replay + steps_per_replay % 2  # even: the double-buffered state ends where it began
        self.banned_ids, self.seed = list(banned), 0
        self.graph = None
        self.ready = False

    def _setup(self) -> None:
        model, B = self.model, self.B
        device = model.output.weight.device
        self.cells = [model.recurrent.cells[f"l{layer}"] for layer in range(model.recurrent.num_layers)]
        n, V = self.cells[0].hidden_size, model.output.out_features
        dtype = model.output.weight.dtype
        # state buffers: [layer][parity] -> (a, c), each (B, n_a)
        self.states = [[(torch.zeros(B, n, dtype=dtype, device=device), torch.zeros(B, n, dtype=dtype, device=device)) for _ in range(2)] for _ in self.cells]
        self.config = dict(CONFIG)
        self.n_parts = triton.cdiv(V, self.config["BV"])
        self.part_val = torch.full((B, self.n_parts), -float("inf"), device=device)
        self.part_idx = torch.zeros(B, self.n_parts, dtype=torch.int32, device=device)
        # two token buffers, one per graph: replay r writes tokens[r % 2] while the host reads the other
        self.tokens = [torch.zeros(self.K, B, dtype=torch.int32, device=device) for _ in range(2)]
        # the random stream's seed: the call's seed plus the replays so far. On the device, not a kernel
        # argument, since a CUDA graph keeps the arguments it was captured with
        self.counter = torch.zeros(1, dtype=torch.int32, device=device)
        self.banned = torch.zeros(V, dtype=torch.int8, device=device)
        if self.banned_ids:
            self.banned[self.banned_ids] = 1
        self.ready = True

    def _load(self) -> None:
        """Start a sequence: the 'previous token' -1 (the first step reads x<1> = 0) as the winning
        tile, a<0> and c<0> (zero, or the model's learned initial state), this call's seed."""
        self.part_val.fill_(-float("inf"))
        self.part_val[:, 0] = 0.0
        self.part_idx.zero_()
        self.part_idx[:, 0] = -1
        self.counter.fill_(self.seed)  # this call's random stream
        learned = self.model.recurrent.initial_state  # (L, n_a) per state name, or None: zeros
        for layer, buffers in enumerate(self.states):
            for name, buffer in zip(("a", "c"), buffers[0]):
                if learned is None:
                    buffer.zero_()
                else:
                    buffer.copy_(learned[name][layer].expand_as(buffer))

    def _token_step(self, i: int, tokens: Tensor) -> None:
        """Step i of a replay: pick the previous token (into tokens[i]), run the layers, leave the
        next draw's tiles."""
        model, B, cfg = self.model, self.B, self.config
        emb = model.embedding.weight
        x = emb  # unread by layer 0
        for layer, cell in enumerate(self.cells):
            (a, c), (a_new, c_new) = self.states[layer][i % 2], self.states[layer][(i + 1) % 2]
            n, n_x = cell.hidden_size, cell.input_size
            W = cell.weight  # [W_a | W_x]: (4 n_a, n_a + n_x)
            _lstm_decode_step[(triton.cdiv(n, cfg["BN"]),)](
                self.part_val, self.part_idx, self.n_parts, tokens[i],
                emb, emb.stride(0), x, W, W.stride(0), cell.bias, a, c, a_new, c_new, B, n, n_x,
                layer == 0, _acc(W), cfg["BN"], min(cfg["BK"], triton.next_power_of_2(n + n_x)), triton.next_power_of_2(self.n_parts),
                num_warps=cfg["warps"],
            )  # fmt: skip
            x = a_new
        out = model.output
        _sample_partial[(self.n_parts,)](
            x, out.weight, out.weight.stride(0), out.bias, self.banned, self.part_val, self.part_idx, self.counter,
            i, B, x.shape[1], out.out_features, 1.0 / self.options.divisor, self.options.greedy,
            _acc(out.weight), cfg["BV"], min(cfg["sample_BK"], triton.next_power_of_2(x.shape[1])), num_warps=cfg["sample_warps"],
        )  # fmt: skip

    def _replay_body(self, tokens: Tensor) -> None:
        for i in range(self.K):
            self._token_step(i, tokens)
        self.counter.add_(1)

    def _buffers(self) -> list[Tensor]:
        return [self.part_val, self.part_idx, self.counter] + [s for layer in self.states for pair in layer for s in pair]

    def _capture(self) -> None:
        """Two CUDA graphs of one replay each, one per token buffer (the kernels compile first)."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        saved = [t.clone() for t in self._buffers()]
        with torch.cuda.stream(stream):  # compile the kernels outside the graphs
            self._replay_body(self.tokens[0])
        torch.cuda.current_stream().wait_stream(stream)
        for target, value in zip(self._buffers(), saved):
            target.copy_(value)
        self.graphs = []
        for tokens in self.tokens:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._replay_body(tokens)
            self.graphs.append(graph)
        self.graph = self.graphs[0]
        self.replayed = [torch.cuda.Event(), torch.cuda.Event()]
        self.host = [torch.empty(self.K, self.B, dtype=torch.int32, pin_memory=True) for _ in range(2)]
        self.copy_stream = torch.cuda.Stream()

    def _launch(self, r: int) -> None:
        self.graphs[r % 2].replay()
        self.replayed[r % 2].record()

    def _fetch(self, r: int) -> Tensor:
        """Replay r's tokens on the host, (B, K); waits for replay r only, not for the one after it."""
        self.copy_stream.wait_event(self.replayed[r % 2])
        with torch.cuda.stream(self.copy_stream):
            self.host[r % 2].copy_(self.tokens[r % 2], non_blocking=True)
        copied = torch.cuda.Event()
        copied.record(self.copy_stream)
        copied.synchronize()
        return self.host[r % 2].t().to(torch.long)

    @torch.no_grad()
    def sample(self, eos_id: int, seed: int | None = None) -> list[list[int]]:
        """Every step runs in the kernels, the first (x<1> = 0) too: slot i of replay r holds the
        token fed to step r·K + i, so slot 0 of the first replay is the -1 that stands for x<1> and
        the sequence is everything after it. On a GPU the next replay is queued before the host
        reads the last one, so the GPU never waits for Python."""
        self.model.eval()
        if seed is not None:
            torch.manual_seed(seed)
        # the kernels' random stream, from torch's so that seeded runs repeat (below 2^30: room for
        # the replays in int32)
        self.seed = int(torch.randint(2**30, ()))
        if not self.ready:
            self._setup()
        self._load()
        replays = -(-(self.options.max_length + 1) // self.K)  # + the slot of x<1>
        on_gpu = self.part_val.is_cuda and os.environ.get("TRITON_INTERPRET") != "1"
        if on_gpu and self.graph is None:
            self._capture()
        rows: list[Tensor] = []
        if on_gpu:
            self._launch(0)
        for r in range(replays):
            if on_gpu:
                if r + 1 < replays:
                    self._launch(r + 1)
                rows.append(self._fetch(r))
            else:  # the interpreter: no graphs
                self._replay_body(self.tokens[0])
                rows.append(self.tokens[0].t().to(torch.long).cpu())
            if bool((torch.cat(rows, dim=1)[:, 1:] == eos_id).any(dim=1).all()):
                break
        tokens = torch.cat(rows, dim=1)[:, 1 : self.options.max_length + 1].tolist()
        return [row[: row.index(eos_id)] if eos_id in row else row for row in tokens]
