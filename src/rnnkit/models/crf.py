r"""A linear-chain conditional random field over tag sequences (Lafferty et al. 2001; the output
layer of Lample et al. 2016's BiLSTM-CRF).

For emission scores E<t>[k] (from the recurrent tagger) and tags y<1..T>:

    score(y) = start[y<1>] + Σ_t E<t>[y<t>] + Σ_{t>1} W[y<t-1>, y<t>] + end[y<T>]
    P(y | x) = exp(score(y)) / Z,     Z = Σ_{all y'} exp(score(y'))

``log Z`` comes from the forward algorithm, in log space so that it neither overflows nor
underflows: α<1> = start + E<1>, α<t>[k] = logsumexp_j(α<t-1>[j] + W[j, k]) + E<t>[k],
log Z = logsumexp_k(α<T>[k] + end[k]). The loss is the negative log-likelihood log Z - score(y);
decoding takes the best path with the Viterbi algorithm (the same recursion with max for logsumexp).
Sequences of a padded batch stop at their own lengths.

An ensemble of CRFs over the same tags is one CRF: the mean of M members' scores,
(1/M) Σ_m score_m(y), is the score of a CRF whose emissions, transitions, start and end are the
members' means (score is linear in them), so its Viterbi path is argmax_y Π_m P_m(y | x) (each log Z_m
is constant in y) and its own log Z normalises that product of experts (Hinton 2002) (``CRF.mean``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class CRF(nn.Module):
    def __init__(self, num_tags: int):
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))  # W[from, to]
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))

    @classmethod
    @torch.no_grad()
    def mean(cls, crfs: "Sequence[CRF]") -> "CRF":
        """The CRF whose transitions, start and end are the means of ``crfs``' (the same number of
        tags each): with the members' mean emissions, the product of experts described above."""
        averaged = cls(crfs[0].num_tags).to(crfs[0].transitions)  # its dtype and device
        for name, parameter in averaged.named_parameters():
            parameter.copy_(torch.stack([getattr(crf, name) for crf in crfs]).mean(0))
        return averaged

    @staticmethod
    def _mask(emissions: Tensor, lengths: Tensor | None) -> Tensor:
        T, B, _ = emissions.shape
        if lengths is None:
            return torch.ones(T, B, dtype=torch.bool, device=emissions.device)
        return torch.arange(T, device=emissions.device)[:, None] < lengths.to(emissions.device)[None, :]  # (T, B)

    def score(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """score(y) of the given tags (T, B) for each sequence: (B,)."""
        mask = self._mask(emissions, lengths)
        T, B, _ = emissions.shape
        tags = tags.clamp(min=0)  # padded positions (any value) are masked out below
        emitted = emissions.gather(2, tags[..., None])[..., 0]  # (T, B): E<t>[y<t>]
        total = self.start[tags[0]] + emitted[0]
        for t in range(1, T):
            step = self.transitions[tags[t - 1], tags[t]] + emitted[t]
            total = total + step * mask[t]
        last = tags.gather(0, (mask.sum(0) - 1).clamp(min=0)[None])[0]  # (B,): y<T> of each sequence
        return total + self.end[last]

    def log_partition(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """log Z for each sequence: (B,)."""
        mask = self._mask(emissions, lengths)
        alpha = self.start + emissions[0]  # (B, K)
        for t in range(1, emissions.shape[0]):
            nxt = torch.logsumexp(alpha[:, :, None] + self.transitions[None], dim=1) + emissions[t]  # (B, K)
            alpha = torch.where(mask[t][:, None], nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def nll(self, emissions: Tensor, tags: Tensor, lengths: Tensor | None = None) -> Tensor:
        """-log P(tags | x) for each sequence: (B,)."""
        return self.log_partition(emissions, lengths) - self.score(emissions, tags, lengths)

    @torch.no_grad()
    def viterbi(self, emissions: Tensor, lengths: Tensor | None = None, allowed: dict | None = None) -> list[list[int]]:
        """The highest-scoring tag sequence of each sequence, cut to its length. ``allowed``: the tag
        scheme's rules (``rnnkit.data.conll.allowed_transitions``: ``start`` (K,), ``transitions``
        (K, K), ``end`` (K,) booleans); a path they forbid is never chosen (its score is lowered by
        ``FORBIDDEN``), so that no decoded path holds an entity the scheme cannot read."""
        mask = self._mask(emissions, lengths)
        T, B, K = emissions.shape
        start, transitions, end = self.start, self.transitions, self.end
        if allowed is not None:
            start, transitions, end = (forbid(score, allowed[key]) for score, key in ((start, "start"), (transitions, "transitions"), (end, "end")))
        delta = start + emissions[0]  # (B, K): best score of a path ending in each tag
        pointers = []
        for t in range(1, T):
            best, previous = (delta[:, :, None] + transitions[None]).max(dim=1)  # (B, K)
            delta = torch.where(mask[t][:, None], best + emissions[t], delta)
            pointers.append(torch.where(mask[t][:, None], previous, torch.arange(K, device=delta.device)))
        last = (delta + end).argmax(dim=1)  # (B,)
        paths = [last]
        for previous in reversed(pointers):
            paths.append(previous.gather(1, paths[-1][:, None])[:, 0])
        path = torch.stack(paths[::-1])  # (T, B)
        sizes = mask.sum(0).tolist()
        return [path[: sizes[b], b].tolist() for b in range(B)]


FORBIDDEN = -1e4  # far below any path's score, yet finite: a path is always chosen, never a NaN


def forbid(scores: Tensor, allowed) -> Tensor:
    """``scores`` where ``allowed`` (booleans of the same shape), ``scores + FORBIDDEN`` elsewhere."""
    allowed = torch.as_tensor(allowed, dtype=torch.bool, device=scores.device)
    return scores + FORBIDDEN * (~allowed).to(scores.dtype)
