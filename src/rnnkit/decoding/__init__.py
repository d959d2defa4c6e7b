"""Decoding: what a trained model produces and how likely it finds given text, split by job.

Every generating model offers the same two calls (``rnnkit.models.base.StepModel``): ``start(...)
-> state`` and ``step(previous, state) -> ModelOutput`` (the logits of the next token given the
previous one, None at the first step, where x<1> = 0; the new state; the attention, if any).

* ``sampling``: novel sequences from such a model: the loop on any device, and on a GPU the
  CUDA-graph and fused-kernel samplers;
* ``search``: greedy translation and beam search in encoder-decoder models (``start(source, lengths)``);
* ``scoring``: P(y<1..T>) = Π_t P(y<t> | y<1..t-1>) as log-probabilities.

Everything is importable from ``rnnkit.decoding`` itself.
"""

from .sampling import FUSED_MAX_ROWS, GraphedSampler, SamplingOptions, fast_sampler, filtered_logits, next_token, next_token_on_device, sample
from .scoring import sequence_log_prob, token_log_probs, token_log_probs_stepwise
from .search import Hypothesis, beam_search, length_penalty, max_target_length, translate_greedy

__all__ = [
    "FUSED_MAX_ROWS", "GraphedSampler", "Hypothesis", "SamplingOptions", "beam_search", "fast_sampler", "filtered_logits", "length_penalty",
    "max_target_length", "next_token", "next_token_on_device", "sample", "sequence_log_prob", "token_log_probs", "token_log_probs_stepwise",
    "translate_greedy",
]  # fmt: skip
