"""Sampling novel sequences from a model's ``start``/``step`` (``rnnkit.models.base.StepModel``), as the course describes it: start
from x<1> = 0 (or feed a prime text first), draw each token from the softmax, feed it back as the
next input, stop at ``<EOS>`` or after ``max_length`` tokens. On a GPU the same loop runs without
Python between tokens: replayed from a CUDA graph (``GraphedSampler``) or as fused Triton kernels
(``rnnkit.engines.triton.sampling``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..cells import map_state, state_tensors
from ..errors import UsageError, finite_outputs


COLDEST = 1e-30  # temperatures below this sample as this one does: greedy already, and logit / T stays finite in float32
HOTTEST = 1e30  # and above this as this one does: uniform already, and T itself stays finite in float32 (a T of 1e39 is inf there)


@dataclass
class SamplingOptions:
    temperature: float = 1.0  # < 1 sharper, > 1 flatter
    top_k: int | None = None  # keep the k most likely tokens (0 or None: all)
    top_p: float | None = None  # keep the smallest set of tokens whose probability reaches p (nucleus)
    greedy: bool = False  # always the most likely token
    max_length: int = 200
    allow_unk: bool = False  # let samples contain <UNK> (by default it is never drawn: see ``sample``)

    def check(self) -> "SamplingOptions":
        """Raises ``UsageError`` (one line, naming the option) for a value that would sample
        nonsense: a non-finite or non-positive temperature divides the logits into NaN."""
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise UsageError(f"temperature must be positive and finite, got {self.temperature}")
        if self.top_k is not None and self.top_k < 0:
            raise UsageError(f"top_k must be at least 0 (0: no limit), got {self.top_k}")
        if self.top_p is not None and not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise UsageError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.max_length < 1:
            raise UsageError(f"max_length must be at least 1, got {self.max_length}")
        return self

    @property
    def divisor(self) -> float:
        """The temperature the logits are divided by: at least ``COLDEST``, so that a tiny but valid
        temperature (1e-300, which float32 holds as 0) draws the likeliest token instead of NaN, and
        at most ``HOTTEST``, so that a huge one (1e39, infinite in float32) draws uniformly instead."""
        return min(max(self.temperature, COLDEST), HOTTEST)


def next_token(logits: Tensor, options: SamplingOptions, generator: torch.Generator | None, banned: Sequence[int] = ()) -> Tensor:
    """One token per row of ``logits`` (B, V), under ``options``; ``banned`` ids are never chosen."""
    logits = finite_outputs(logits).float().clone()
    if banned:
        logits[:, list(banned)] = -torch.inf
    if options.greedy:
        return logits.argmax(dim=-1)
    probs = filtered_logits(logits, options).softmax(dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(logits.device)


def filtered_logits(logits: Tensor, options: SamplingOptions) -> Tensor:
    """The (B, V) logits a token is drawn from: divided by the temperature, then everything outside
    the top k and outside the nucleus (top p) set to -inf. On the logits' device, graph-safe."""
    logits = logits / options.divisor
    if options.top_k:  # None or 0: no limit
        kth = torch.topk(logits, min(options.top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, -torch.inf)
    if options.top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs >= options.top_p  # mass before this token already enough
        drop[:, 0] = False  # the likeliest token always stays: a p that float32 holds as 0 (1e-46) dropped every one
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, -torch.inf))
    return logits


@torch.no_grad()
def sample(
    model: nn.Module,
    num_samples: int,
    options: SamplingOptions,
    *,
    eos_id: int,
    banned: Sequence[int] = (),
    unk_id: int | None = None,
    prime: Sequence[int] = (),
    seed: int | None = None,
    device: torch.device | str = "cpu",
    fast: bool = True,
) -> list[list[int]]:
    """``num_samples`` sequences of ids (without the prime, without ``<EOS>``), drawn in one batch.
    On a CUDA device without a prime, the draws run on the GPU (``fast_sampler``) unless ``fast`` is
    False: the same distribution, another random stream.

    ``banned`` ids are never drawn; neither is ``unk_id`` unless ``options.allow_unk``. A sample is
    text, and ``<UNK>`` is no text: the course's advice is to reject an ``<UNK>`` and draw again,
    and drawing from the softmax with ``<UNK>``'s logit at -inf is exactly that (the renormalised
    distribution of the other tokens), in one draw, on every sampler (this loop, the CUDA graph,
    the fused kernels), since all of them mask ``banned``.
    """
    options.check()
    if unk_id is not None and not options.allow_unk:
        banned = [*banned, unk_id]
    model.eval()
    if fast and not prime and torch.device(device).type == "cuda":
        return fast_sampler(model, num_samples, options, banned=banned).sample(eos_id, seed=seed)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    B = num_samples
    state, previous = model.start(B), None
    for token in prime:  # feed the prime text: its predictions are not used
        state = model.step(previous, state).state
        previous = torch.full((B,), token, dtype=torch.long, device=device)
    out: list[list[int]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    for _ in range(options.max_length):
        step = model.step(previous, state)
        state = step.state
        chosen = next_token(step.logits, options, generator, banned)  # (B,) from logits (B, V)
        for b, token in enumerate(chosen.tolist()):
            if not done[b]:
                if token == eos_id:
                    done[b] = True
                else:
                    out[b].append(token)
        if bool(done.all()):
            break
        previous = chosen
    return out


# -- fast sampling on a GPU: the decode loop replayed from a CUDA graph --------------------------------


def next_token_on_device(logits: Tensor, options: SamplingOptions, banned: Sequence[int] | Tensor = ()) -> Tensor:
    """``next_token`` without leaving the device (graph-safe when ``banned`` is already a tensor on
    the device: no host synchronisation or copy)."""
    logits = logits.float()
    if len(banned):
        index = banned if isinstance(banned, Tensor) else torch.tensor(list(banned), device=logits.device)
        logits = logits.index_fill(1, index, -torch.inf)
    if options.greedy:
        return logits.argmax(dim=-1)
    return torch.multinomial(filtered_logits(logits, options).softmax(dim=-1), 1)[:, 0]


FUSED_MAX_ROWS = 4  # up to this many rows the fused kernels beat the graph of torch ops (benchmarks/gpu.py)


def fast_sampler(model: nn.Module, batch_size: int, options: SamplingOptions, *, banned: Sequence[int] = ()):
    """The fastest GPU sampler for ``model``: the fused Triton kernels (``rnnkit.engines.triton.sampling``)
    for LSTM language models and few rows, else the CUDA graph of the model's own step."""
    from ..engines.fused import triton_available

    if triton_available() and batch_size <= FUSED_MAX_ROWS:
        from ..engines.triton.sampling import FusedSampler, fused_sampler_unsupported

        if fused_sampler_unsupported(model, options) is None:
            return FusedSampler(model, batch_size, options, banned=banned)
    return GraphedSampler(model, batch_size, options, banned=banned)


class GraphedSampler:
    """Samples from a model's ``step`` with ``steps_per_replay`` tokens per CUDA-graph
    replay: each token is drawn on the GPU and fed back inside the graph, so no Python runs between
    the tokens of a replay. The first step (x<1> = 0) runs eagerly and gives the state's shapes."""

    def __init__(self, model: nn.Module, batch_size: int, options: SamplingOptions, *, banned: Sequence[int] = (), steps_per_replay: int = 16):
        self.model, self.B, self.options, self.banned, self.K = model, batch_size, options.check(), list(banned), steps_per_replay
        self.graph = None

    def _capture(self, previous: Tensor, state) -> None:
        self.banned = torch.tensor(self.banned, dtype=torch.long, device=previous.device)  # made before capturing
        self.static_previous = previous.clone()
        self.static_state = map_state(Tensor.clone, state)

        def unrolled():
            prev, st = self.static_previous, self.static_state
            tokens = []
            for _ in range(self.K):
                step = self.model.step(prev, st)
                st = step.state
                prev = next_token_on_device(step.logits, self.options, self.banned)
                tokens.append(prev)
            return torch.stack(tokens), prev, st

        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm up outside the graph (allocations, autotuning)
            unrolled()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out_tokens, out_previous, out_state = unrolled()
            self.static_previous.copy_(out_previous)
            self._copy_state(out_state)

    def _copy_state(self, state) -> None:
        for static, new in zip(state_tensors(self.static_state), state_tensors(state)):
            static.copy_(new)

    @torch.no_grad()
    def sample(self, eos_id: int, seed: int | None = None) -> list[list[int]]:
        self.model.eval()
        if seed is not None:
            torch.manual_seed(seed)
        step = self.model.step(None, self.model.start(self.B))
        first = next_token_on_device(step.logits, self.options, self.banned)
        if self.graph is None:
            self._capture(first, step.state)
        else:
            self.static_previous.copy_(first)
            self._copy_state(step.state)
        rows = [first[:, None].cpu()]
        length = 1
        while length < self.options.max_length:
            self.graph.replay()
            rows.append(self.out_tokens.t().cpu())
            length += self.K
            if bool((torch.cat(rows, dim=1) == eos_id).any(dim=1).all()):
                break
        tokens = torch.cat(rows, dim=1)[:, : self.options.max_length].tolist()
        return [row[: row.index(eos_id)] if eos_id in row else row for row in tokens]
