"""Scoring given sequences: P(y<1..T>) = Π_t P(y<t> | y<1..t-1>), reported as log-probabilities, for a
language model (one teacher-forced pass, or step by step as sampling runs: a cross-check) and for an
encoder-decoder model given its source.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import finite_outputs


@torch.no_grad()
def token_log_probs(model: nn.Module, ids: Sequence[int], device: torch.device | str = "cpu") -> list[float]:
    """log P(y<t> | y<1..t-1>) for every token of one sequence, in one teacher-forced pass."""
    model.eval()
    tokens = torch.tensor(ids, dtype=torch.long, device=device)[:, None]  # (T, 1)
    logits = finite_outputs(model(tokens).logits)  # (T, 1, V)
    log_probs = F.log_softmax(logits.double(), dim=-1)[:, 0]  # (T, V)
    return log_probs.gather(1, tokens).squeeze(1).tolist()


@torch.no_grad()
def token_log_probs_stepwise(model: nn.Module, ids: Sequence[int], device: torch.device | str = "cpu") -> list[float]:
    """The same, one token at a time through ``model.step`` (as sampling runs): a cross-check."""
    model.eval()
    state, previous, out = model.start(1), None, []
    for token in ids:
        step = model.step(previous, state)
        state = step.state
        out.append(F.log_softmax(step.logits.double(), dim=-1)[0, token].item())
        previous = torch.tensor([token], dtype=torch.long, device=device)
    return out


@torch.no_grad()
def sequence_log_prob(model, source: Tensor, target_ids: Sequence[int]) -> float:
    """log P(target_ids | source) with teacher forcing (target_ids should end with <EOS>)."""
    model.eval()
    target = torch.tensor(target_ids, dtype=torch.long, device=source.device)[:, None]
    logits = model(source, None, target).logits  # (T, 1, V)
    return float(F.log_softmax(logits.double(), dim=-1)[:, 0].gather(1, target).sum())
