"""Decoding: sampling novel sequences and scoring given ones.

Works with any model that has ``step(previous, state, batch_size) -> (logits, state)``: the logits
of the next token given the previous one (None at the first step, where x<1> = 0) and the state.

Sampling, as the course describes it: start from x<1> = 0 (or feed a prime text first), draw each
token from the softmax, feed it back as the next input, stop at ``<EOS>`` or after ``max_length``
tokens. Scoring: P(y<1..T>) = Π_t P(y<t> | y<1..t-1>), reported as log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class SamplingOptions:
    temperature: float = 1.0  # < 1 sharper, > 1 flatter
    top_k: int | None = None  # keep the k most likely tokens
    top_p: float | None = None  # keep the smallest set of tokens whose probability reaches p (nucleus)
    greedy: bool = False  # always the most likely token
    max_length: int = 200

    def check(self) -> "SamplingOptions":
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {self.max_length}")
        return self


def next_token(logits: Tensor, options: SamplingOptions, generator: torch.Generator | None, banned: Sequence[int] = ()) -> Tensor:
    """One token per row of ``logits`` (B, V), under ``options``; ``banned`` ids are never chosen."""
    logits = logits.float().clone()
    if banned:
        logits[:, list(banned)] = -torch.inf
    if options.greedy:
        return logits.argmax(dim=-1)
    logits = logits / options.temperature
    if options.top_k is not None:
        kth = torch.topk(logits, min(options.top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, -torch.inf)
    if options.top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative - sorted_logits.softmax(dim=-1) >= options.top_p  # mass before this token already enough
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, -torch.inf))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(logits.device)


@torch.no_grad()
def sample(
    model: nn.Module,
    num_samples: int,
    options: SamplingOptions,
    *,
    eos_id: int,
    banned: Sequence[int] = (),
    prime: Sequence[int] = (),
    seed: int | None = None,
    device: torch.device | str = "cpu",
) -> list[list[int]]:
    """``num_samples`` sequences of ids (without the prime, without ``<EOS>``), drawn in one batch."""
    options.check()
    model.eval()
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    B = num_samples
    state, previous = None, None
    for token in prime:  # feed the prime text: its predictions are not used
        _, state = model.step(previous, state, B)
        previous = torch.full((B,), token, dtype=torch.long, device=device)
    out: list[list[int]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    for _ in range(options.max_length):
        logits, state = model.step(previous, state, B)  # (B, V)
        chosen = next_token(logits, options, generator, banned)
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


@torch.no_grad()
def token_log_probs(model: nn.Module, ids: Sequence[int], device: torch.device | str = "cpu") -> list[float]:
    """log P(y<t> | y<1..t-1>) for every token of one sequence, in one teacher-forced pass."""
    model.eval()
    tokens = torch.tensor(ids, dtype=torch.long, device=device)[:, None]  # (T, 1)
    logits, _ = model(tokens)
    log_probs = F.log_softmax(logits.float(), dim=-1)[:, 0]  # (T, V)
    return log_probs.gather(1, tokens).squeeze(1).tolist()


@torch.no_grad()
def token_log_probs_stepwise(model: nn.Module, ids: Sequence[int], device: torch.device | str = "cpu") -> list[float]:
    """The same, one token at a time through ``model.step`` (as sampling runs): a cross-check."""
    model.eval()
    state, previous, out = None, None, []
    for token in ids:
        logits, state = model.step(previous, state, 1)
        out.append(F.log_softmax(logits.float(), dim=-1)[0, token].item())
        previous = torch.tensor([token], dtype=torch.long, device=device)
    return out
