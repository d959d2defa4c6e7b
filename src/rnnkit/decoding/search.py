"""Search in encoder-decoder models: greedy (or sampled) translation and beam search with a length
penalty, each returning ``Hypothesis`` objects with their tokens, scores and attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import finite_outputs
from .sampling import SamplingOptions, next_token


@dataclass
class Hypothesis:
    tokens: list[int]  # without <EOS>
    log_prob: float  # log P(tokens + <EOS> | source), or of the tokens alone when cut at max length
    score: float  # log_prob / length penalty: what the beam ranks by
    attention: list[list[float]]  # one row of source weights per output token (<EOS> included)
    ended: bool = True  # False when cut by the maximum length (then log_prob has no <EOS> term)


def _as_lists(rows: list[Tensor]) -> list[list[float]]:
    """Attention rows kept as tensors while searching (4 bytes a weight, where Python floats in lists
    took 32 and a copy per candidate), as lists once a hypothesis is returned."""
    return torch.stack(rows).tolist() if rows else []


def length_penalty(length: int, alpha: float) -> float:
    """((5 + length) / 6) ** alpha (Wu et al. 2016): alpha = 0 ranks by raw log-probability."""
    return ((5 + length) / 6) ** alpha


def max_target_length(source_lengths: Sequence[int], ratio: float, extra: int) -> list[int]:
    """Each row's bound on its output: ``ratio`` × its own source length + ``extra`` tokens, so that
    a sentence's translation never depends on the sentences batched with it."""
    return [int(n * ratio + extra) for n in source_lengths]


def _row_limits(max_length: int | Sequence[int], rows: int) -> list[int]:
    """``max_length`` as one bound per row (an int bounds every row alike)."""
    return [int(max_length)] * rows if isinstance(max_length, int) else [int(n) for n in max_length]


@torch.no_grad()
def translate_greedy(model, source: Tensor, lengths: Tensor, *, eos_id: int, max_length: int | Sequence[int], banned=(), options: SamplingOptions | None = None, seed=None) -> list[Hypothesis]:
    """One output per source row: the most likely token at each step (or a draw, with ``options``),
    at most ``max_length`` tokens (one bound, or one per row: ``max_target_length``)."""
    model.eval()
    state = model.start(source, lengths)
    B = source.shape[1]
    limits = _row_limits(max_length, B)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    tokens = [[] for _ in range(B)]
    log_probs = [0.0] * B
    attention = [[] for _ in range(B)]
    done = [False] * B
    previous = None
    for i in range(max(limits)):
        step = model.step(previous, state)
        state, weights = step.state, step.attention  # attention: (B, S) or None
        step_log_probs = F.log_softmax(step.logits.double(), dim=-1)  # sums of many log-probabilities: in float64
        chosen = next_token(step.logits, options or SamplingOptions(greedy=True), generator, banned)
        for b, token in enumerate(chosen.tolist()):
            if done[b] or i >= limits[b]:  # ended, or at its own bound (the rows step on together)
                continue
            log_probs[b] += step_log_probs[b, token].item()
            if weights is not None:
                attention[b].append(weights[b])  # (S,)
            if token == eos_id:
                done[b] = True
            else:
                tokens[b].append(token)
        if all(d or i + 1 >= limit for d, limit in zip(done, limits)):
            break
        previous = chosen
    return [Hypothesis(t, lp, lp, _as_lists(a), d) for t, lp, a, d in zip(tokens, log_probs, attention, done)]


@torch.no_grad()
def beam_search(model, source: Tensor, lengths: Tensor, *, eos_id: int, beam: int, max_length: int | Sequence[int], alpha: float = 0.6, nbest: int = 1, banned=()) -> list[list[Hypothesis]]:
    """Batched beam search: ``beam`` hypotheses per source row, extended one token at a time; a
    hypothesis ends at ``<EOS>``; a row is done when it has ``beam`` finished hypotheses (or at
    its ``max_length``, one bound or one per row, where the hypotheses still alive are finished as
    they are). Returns each row's ``nbest`` best, best first, ranked by log-probability over the
    length penalty."""
    model.eval()
    B, K = source.shape[1], beam
    limits = _row_limits(max_length, B)
    state = model.start(source, lengths).index_select(torch.arange(B).repeat_interleave(K).to(source.device))
    scores = torch.full((B, K), -torch.inf, dtype=torch.float64, device=source.device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    histories: list[list[tuple[list[int], list[Tensor]]]] = [[([], []) for _ in range(K)] for _ in range(B)]  # tokens, attention rows (S,)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    previous = None
    for i in range(max(limits)):
        step = model.step(previous, state)
        state, weights = step.state, step.attention  # attention: (B*K, S) or None
        log_probs = F.log_softmax(finite_outputs(step.logits).double(), dim=-1)  # (B*K, V), summed in float64
        if banned:
            log_probs[:, list(banned)] = -torch.inf
        V = log_probs.shape[-1]
        candidates = (scores.view(-1, 1) + log_probs).view(B, K * V)
        top_scores, top_ids = candidates.topk(min(2 * K, K * V), dim=1)  # (B, 2K)
        new_scores = torch.full((B, K), -torch.inf, dtype=torch.float64, device=source.device)
        rows = torch.zeros(B, K, dtype=torch.long)
        next_tokens = torch.full((B, K), eos_id, dtype=torch.long)
        new_histories = [[([], []) for _ in range(K)] for _ in range(B)]
        for b in range(B):
            if len(finished[b]) >= K:
                continue
            if i >= limits[b]:  # at its own bound: the live hypotheses stay as they are, finished below
                new_scores[b], new_histories[b] = scores[b], histories[b]
                rows[b] = torch.arange(b * K, (b + 1) * K)
                continue
            alive = 0
            for rank, (score, flat) in enumerate(zip(top_scores[b].tolist(), top_ids[b].tolist())):
                if score == -torch.inf:
                    break
                k, token = divmod(flat, V)
                tokens, attention = histories[b][k]
                row_weights = [weights[b * K + k]] if weights is not None else []
                if token == eos_id:
                    if rank >= K:  # an ending that ranks below the beam is not kept (as fairseq does)
                        continue
                    length = len(tokens) + 1
                    finished[b].append(Hypothesis(tokens, score, score / length_penalty(length, alpha), attention + row_weights))
                    if len(finished[b]) >= K:
                        break
                elif alive < K:
                    new_scores[b, alive] = score
                    rows[b, alive] = b * K + k
                    next_tokens[b, alive] = token
                    new_histories[b][alive] = (tokens + [token], attention + row_weights)
                    alive += 1
        if all(len(f) >= K for f in finished):
            break
        scores = new_scores
        histories = new_histories
        if all(len(f) >= K or i + 1 >= limit for f, limit in zip(finished, limits)):
            break  # every row ended or reached its bound: its live hypotheses are finished below
        state = state.index_select(rows.view(-1).to(source.device))
        previous = next_tokens.view(-1).to(source.device)
    for b in range(B):  # rows cut by max_length: their live hypotheses count as they are
        if len(finished[b]) < nbest:
            for k in range(K):
                if scores[b, k] > -torch.inf:
                    tokens, attention = histories[b][k]
                    finished[b].append(Hypothesis(tokens, float(scores[b, k]), float(scores[b, k]) / length_penalty(len(tokens), alpha), attention, ended=False))
    best = [sorted(f, key=lambda h: h.score, reverse=True)[:nbest] for f in finished]
    for hypotheses in best:
        for h in hypotheses:
            h.attention = _as_lists(h.attention)
    return best
