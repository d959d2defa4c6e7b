r"""The sequence tagger: a tag for every word (named entities), many-to-many with equal lengths.

    w<t>  = [e(word<t>); char-BiRNN(characters of word<t>); e_case(casing of word<t>)]
    a<t>  = BiRecurrent(w<1..T>)             the tag of word t may depend on the words after it
    E<t>  = W_tag head(a<t>) + b             emission scores, one per tag
    tags  = Viterbi over a linear-chain CRF on E (``crf=True``), or argmax_k E<t>[k] per word

"Teddy Roosevelt was a great President." against "Teddy bears are on sale!": the right tag of
"Teddy" depends on the next word, so the tagger reads both ways (``bidirectional=True``).
Words are looked up lowercased with digits as 0 (their case has its own feature); characters keep
their case. The character features are the final states of a small bidirectional RNN over the
word's characters (Lample et al. 2016).

With ``lm_features_size`` > 0, w<t> also holds the frozen hidden states of trained language models at
word t (``rnnkit.models.lm_features``; TagLM, Flair), which the task computes and hands in with the batch.

``locked_dropout``, ``weight_drop`` and ``embedding_dropout`` (word embeddings only) are the
regularisers of ``rnnkit.regularisers``, training only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..recurrent import Recurrent
from ..regularisers import Embedding, make_dropout
from .base import ModelOutput
from .registry import register_model
from .crf import CRF
from .heads import DeepHead, final_outputs

CASES = ("<pad>", "lower", "upper", "title", "mixed", "numeric", "has-digit", "other")


def casing(word: str) -> int:
    """The casing category of a word (index into ``CASES``)."""
    if word.isdigit():
        return CASES.index("numeric")
    if any(ch.isdigit() for ch in word):
        return CASES.index("has-digit")
    if word.islower():
        return CASES.index("lower")
    if word.isupper():
        return CASES.index("upper")
    if word[:1].isupper() and word[1:].islower():
        return CASES.index("title")
    if any(ch.isalpha() for ch in word):
        return CASES.index("mixed")
    return CASES.index("other")


class WordFeatures(nn.Module):
    """Word embedding, character-level BiRNN features and a casing embedding, joined."""

    def __init__(self, vocab_size: int, char_vocab_size: int, word_size: int, char_size: int, char_hidden_size: int, casing_size: int, engine: str,
                 embedding_dropout: float = 0.0, lm_features_size: int = 0):  # fmt: skip
        super().__init__()
        self.words = Embedding(vocab_size, word_size, padding_idx=0, dropout=embedding_dropout)  # whole words dropped in training
        self.chars = nn.Embedding(char_vocab_size, char_size, padding_idx=0) if char_hidden_size else None
        self.char_rnn = Recurrent("lstm", char_size, char_hidden_size, bidirectional=True, engine=engine) if char_hidden_size else None
        self.casing = nn.Embedding(len(CASES), casing_size, padding_idx=0) if casing_size else None
        self.lm_features_size = lm_features_size  # 0: none; the task gives them with the batch (``lm_features``)
        self.output_size = word_size + 2 * char_hidden_size + casing_size + lm_features_size

    def forward(self, words: Tensor, chars: Tensor, char_lengths: Tensor, cases: Tensor, lm_features: Tensor | None = None) -> Tensor:
        parts = [self.words(words)]  # (T, B, word_size)
        if self.char_rnn is not None:
            T, B, L = chars.shape
            flat = chars.view(T * B, L).t()  # (L, T*B): every word slot is a sequence of characters
            _, state = self.char_rnn(self.chars(flat), lengths=char_lengths.view(-1).clamp(min=1).cpu())
            parts.append(final_outputs(state).view(T, B, -1))  # (T, B, 2 * char_hidden)
        if self.casing is not None:
            parts.append(self.casing(cases))
        if lm_features is not None:  # (T, B, lm_features_size): frozen language-model states (rnnkit.models.lm_features)
            parts.append(lm_features)
        return torch.cat(parts, dim=-1)


@register_model
class Tagger(nn.Module):
    kind = "tagger"

    def __init__(
        self,
        vocab_size: int,
        num_tags: int,
        char_vocab_size: int = 2,
        *,
        word_embedding_size: int = 100,
        char_embedding_size: int = 25,
        char_hidden_size: int = 25,
        casing_size: int = 4,
        cell: str = "lstm",
        hidden_size: int = 200,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.5,
        head_sizes: Sequence[int] = (),
        crf: bool = True,
        engine: str = "auto",
        cell_options: dict | None = None,
        locked_dropout: bool = False,
        weight_drop: float = 0.0,
        embedding_dropout: float = 0.0,
        lm_features_size: int = 0,
    ):
        super().__init__()
        self._config = dict(
            vocab_size=vocab_size, num_tags=num_tags, char_vocab_size=char_vocab_size, word_embedding_size=word_embedding_size,
            char_embedding_size=char_embedding_size, char_hidden_size=char_hidden_size, casing_size=casing_size, cell=cell,
            hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
            head_sizes=list(head_sizes), crf=crf, engine=engine, cell_options=dict(cell_options or {}), locked_dropout=locked_dropout,
            weight_drop=weight_drop, embedding_dropout=embedding_dropout, lm_features_size=lm_features_size,
        )  # fmt: skip
        self.features = WordFeatures(
            vocab_size, char_vocab_size, word_embedding_size, char_embedding_size, char_hidden_size, casing_size, engine, embedding_dropout,
            lm_features_size,
        )
        self.recurrent = Recurrent(
            cell, self.features.output_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
            dropout=dropout, engine=engine, weight_drop=weight_drop, locked_dropout=locked_dropout, **(cell_options or {}),
        )  # fmt: skip
        self.dropout = make_dropout(dropout, locked_dropout)
        self.head = DeepHead(hidden_size * self.recurrent.num_directions, head_sizes, dropout)
        self.emit = nn.Linear(self.head.output_size, num_tags)
        self.crf = CRF(num_tags) if crf else None

    def config(self) -> dict:
        return dict(self._config)

    def forward(self, batch, lengths: Tensor | None = None) -> ModelOutput:
        """Emission scores E (T, B, num_tags) for a batch of words (``words``, ``chars``,
        ``char_lengths``, ``cases``, with ``lm_features``: ``rnnkit.tasks.tagging``), of ``lengths`` (default: the batch's),
        and the recurrent stack's final state."""
        lm = batch.lm_features if self.features.lm_features_size else None  # (T, B, lm_features_size): frozen LM states
        w = self.dropout(self.features(batch.words, batch.chars, batch.char_lengths, batch.cases, lm))  # (T, B, F)
        a, state = self.recurrent(w, lengths=batch.lengths if lengths is None else lengths)  # (T, B, D*n_a)
        return ModelOutput(self.emit(self.head(self.dropout(a))), state)  # (T, B, K)

    @torch.no_grad()
    def decode(self, batch) -> list[list[int]]:
        """The best tag ids of each sentence, cut to its length: Viterbi over the CRF, or argmax."""
        return best_tags(self.crf, self(batch).logits, batch.lengths)


def tag_loss(crf: CRF | None, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
    """Σ over the sentences of -log P(tags | x): the CRF's, or each word's softmax over its emission
    scores E (T, B, K); ``tags`` (T, B) hold -100 on padding."""
    if crf is not None:
        # + 0 · Σ transitions: every parameter takes part in every step, as DistributedDataParallel
        # (torchrun) waits for each one's gradient, and a batch of one-word sentences uses no transition
        return crf.nll(emissions, tags, lengths).sum() + 0 * crf.transitions.sum()
    return F.cross_entropy(emissions.flatten(0, 1), tags.flatten(), ignore_index=-100, reduction="sum")


def best_tags(crf: CRF | None, emissions: Tensor, lengths: Tensor, allowed: dict | None = None) -> list[list[int]]:
    """The best tag ids of each sentence for emission scores E (T, B, K), cut to its length: Viterbi
    over ``crf``, or argmax per word. ``allowed``: the tag scheme's rules (``CRF.viterbi``); without a
    CRF, the path the rules allow of the highest Σ_t log softmax(E<t>), the words' own probabilities."""
    if crf is None and allowed is not None:
        crf, emissions = CRF(emissions.shape[-1]).to(emissions), emissions.log_softmax(-1)  # no transition scores: only the rules
    if crf is not None:
        return crf.viterbi(emissions, lengths, allowed)
    best = emissions.argmax(-1)  # (T, B)
    return [best[: int(n), b].tolist() for b, n in enumerate(lengths)]


@torch.no_grad()
def product_of_experts(members: Sequence[tuple["Tagger", Tensor]]) -> tuple[CRF | None, Tensor]:
    """An ensemble of taggers over the same tags as one tagger's output layer: (crf, E) such that
    ``tag_loss`` and ``best_tags`` score argmax_y Π_m P_m(y | x), the members' normalised geometric
    mean (Hinton 2002). ``members``: (tagger, its emission scores (T, B, K) for the same sentences).

    CRF taggers: E = the mean of the members' emission scores and the CRF of their mean transitions
    (``CRF.mean``). Softmax taggers: E = the mean of log softmax(E_m) per word, whose softmax is the
    product renormalised. Raises ``ValueError`` for a mix of the two."""
    crfs = [tagger.crf for tagger, _ in members]
    if all(crf is not None for crf in crfs):
        return CRF.mean(crfs), torch.stack([e for _, e in members]).mean(0)  # (T, B, K)
    if any(crf is not None for crf in crfs):
        raise ValueError("an ensemble of taggers needs all of them with a CRF or all without")
    return None, torch.stack([e.log_softmax(-1) for _, e in members]).mean(0)  # (T, B, K)
