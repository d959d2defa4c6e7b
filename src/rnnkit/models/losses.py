"""The losses the tasks share, each a sum over the real (unpadded) steps with the number of steps
summed, so that a caller divides once by the count of the whole batch, or of many batches.

* ``token_loss``: the cross-entropy of predicted tokens (language models, translation, the music
  task's token form), Σ_t -log ŷ<t>[y<t>];
* ``bernoulli_nll``: the negative log-likelihood of independent binary outputs per step (piano
  rolls: 88 keys each on or off).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def token_loss(logits: Tensor, tokens: Tensor, pad_id: int = 0) -> tuple[Tensor, int]:
    """Σ over real steps of -log ŷ<t>[y<t>] (padding ignored), and how many steps were summed."""
    total = F.cross_entropy(logits.flatten(0, 1).float(), tokens.flatten(), ignore_index=pad_id, reduction="sum")
    return total, int((tokens != pad_id).sum())


def bernoulli_nll(logits: Tensor, rolls: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, int]:
    """Σ over real steps and keys of the Bernoulli negative log-likelihood, and the number of steps."""
    per_key = F.binary_cross_entropy_with_logits(logits.float(), rolls.float(), reduction="none")  # (T, B, 88)
    per_step = per_key.sum(-1)  # (T, B)
    if lengths is None:
        return per_step.sum(), per_step.numel()
    mask = torch.arange(rolls.shape[0], device=rolls.device)[:, None] < lengths.to(rolls.device)[None, :]
    return (per_step * mask).sum(), int(mask.sum())
