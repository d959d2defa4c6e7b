r"""The sequence classifier: one label per sequence (1-5 ratings), many-to-one.

    a<t>   = (Bi)Recurrent(e(x<1..T>))
    h      = pool(a<1..T>)         last state, max or mean over steps, or attention
    ŷ      = softmax(W head(h) + b)

Pooling, over each sequence's real steps only:

* ``last``: the final states (both directions' when bidirectional: the forward one after the last
  word, the backward one after the first);
* ``max`` / ``mean``: element-wise over steps;
* ``attention``: s<t> = vᵀ tanh(W a<t>), α = softmax(s) over steps, h = Σ_t α<t> a<t>.

``word_dropout`` p replaces each real token by ``<UNK>`` with probability p while training (Iyyer et
al. 2015 drop whole words): the model cannot lean on any single word, which matters when every
labelled phrase of a small treebank is a training example. It draws from torch's generator, which
checkpoints save, so a resumed run drops the same words.

``locked_dropout``, ``weight_drop`` and ``embedding_dropout`` are the regularisers of
``rnnkit.regularisers`` (one dropout mask per sequence; DropConnect on the recurrent weights;
whole words dropped from the embedding matrix per batch, unlike ``word_dropout``'s <UNK> per
occurrence), training only.

``layer_groups`` gives ULMFiT's groups (embedding, each recurrent layer, the rest) for
discriminative learning rates and gradual unfreezing; the encoder (embedding and recurrent layers)
can start from a trained language model (``rnnkit train classifier --init-from RUN``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..data.vocab import Vocabulary
from ..padding import length_mask
from ..cells import hidden_state
from ..recurrent import Recurrent
from ..regularisers import Embedding, make_dropout
from .base import ModelOutput
from .registry import register_model
from .heads import DeepHead, final_outputs
from ..errors import UsageError, registered


PAD_ID, UNK_ID = Vocabulary.pad_id, Vocabulary.unk_id


class Pooling(nn.Module):
    """One vector per sequence from its real steps: built from the size D of a step's outputs,
    ``forward(outputs (T, B, D), state, mask (T, B, 1)) -> (B, D)``; ``state`` is the stack's final
    ``RecurrentState``, ``mask`` True on real steps. The parameter-free poolings ignore the size."""

    def __init__(self, size: int):
        super().__init__()


class LastPooling(Pooling):
    def forward(self, outputs, state, mask):
        a = hidden_state(state)  # (L*D, B, n_a)
        return final_outputs(state) if outputs.shape[-1] == 2 * a.shape[-1] else a[-1]


class MaxPooling(Pooling):
    def forward(self, outputs, state, mask):  # outputs (T, B, D), mask (T, B, 1)
        return outputs.masked_fill(~mask, -torch.inf).amax(dim=0)


class MeanPooling(Pooling):
    def forward(self, outputs, state, mask):
        return (outputs * mask).sum(dim=0) / mask.sum(dim=0)  # (B, D)


class AttentionPooling(Pooling):
    def __init__(self, size: int):
        super().__init__(size)
        self.project = nn.Linear(size, size)
        self.v = nn.Linear(size, 1, bias=False)

    def forward(self, outputs, state, mask):
        scores = self.v(torch.tanh(self.project(outputs)))  # (T, B, 1): s<t>
        weights = scores.masked_fill(~mask, -torch.inf).softmax(dim=0)  # α over real steps
        return (weights * outputs).sum(dim=0)


POOLINGS = {"last": LastPooling, "max": MaxPooling, "mean": MeanPooling, "attention": AttentionPooling}


@register_model
class Classifier(nn.Module):
    kind = "classifier"

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        *,
        embedding_size: int = 128,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.3,
        pooling: str = "max",
        head_sizes: Sequence[int] = (),
        engine: str = "auto",
        cell_options: dict | None = None,
        word_dropout: float = 0.0,
        locked_dropout: bool = False,
        weight_drop: float = 0.0,
        embedding_dropout: float = 0.0,
        lm_features_size: int = 0,
    ):
        super().__init__()
        pool = registered(POOLINGS, pooling, "pooling")
        if not 0.0 <= word_dropout < 1.0:
            raise UsageError(f"word_dropout must be in [0, 1), got {word_dropout}")
        self._config = dict(
            vocab_size=vocab_size, num_classes=num_classes, embedding_size=embedding_size, cell=cell, hidden_size=hidden_size,
            num_layers=num_layers, bidirectional=bidirectional, dropout=dropout, pooling=pooling, head_sizes=list(head_sizes),
            engine=engine, cell_options=dict(cell_options or {}), word_dropout=word_dropout, locked_dropout=locked_dropout,
            weight_drop=weight_drop, embedding_dropout=embedding_dropout, lm_features_size=lm_features_size,
        )  # fmt: skip
        self.lm_features_size = lm_features_size  # 0: none; the task gives them (forward's ``lm_features``)
        self.word_dropout = word_dropout
        self.embedding = Embedding(vocab_size, embedding_size, padding_idx=0, dropout=embedding_dropout)
        self.recurrent = Recurrent(
            cell, embedding_size + lm_features_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, dropout=dropout,
            engine=engine, weight_drop=weight_drop, locked_dropout=locked_dropout, **(cell_options or {}),
        )  # fmt: skip
        size = hidden_size * self.recurrent.num_directions
        self.pool = pool(size)
        self.dropout = make_dropout(dropout, locked_dropout)  # on the embeddings (T, B, E) and the pooled vector (B, D*n_a)
        self.head = DeepHead(size, head_sizes, dropout)
        self.output = nn.Linear(self.head.output_size, num_classes)

    def config(self) -> dict:
        return dict(self._config)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The parameters in ULMFiT's layer groups, lowest first: the embedding, each recurrent layer
        (both directions), then the rest (pooling, head, output). Discriminative learning rates and
        gradual unfreezing (``rnnkit.training.optim``) go by these groups."""
        groups = [list(self.embedding.parameters())]
        groups += [[p for cell in self.recurrent.layer_cells(layer) for p in cell.parameters()] for layer in range(self.recurrent.num_layers)]
        grouped = {id(p) for group in groups for p in group}
        return groups + [[p for p in self.parameters() if id(p) not in grouped]]

    def forward(self, tokens: Tensor, lengths: Tensor | None = None, lm_features: Tensor | None = None) -> ModelOutput:
        """Class scores (B, C) for token ids (T, B), and the recurrent stack's final state; with
        ``lm_features_size``, ``lm_features`` (T, B, lm_features_size) are the frozen language-model
        states at each token (``rnnkit.models.lm_features``), joined to its embedding."""
        T, B = tokens.shape
        if self.training and self.word_dropout > 0:
            dropped = (torch.rand(tokens.shape, device=tokens.device) < self.word_dropout) & (tokens != PAD_ID)  # (T, B)
            tokens = tokens.masked_fill(dropped, UNK_ID)
        x = self.embedding(tokens)  # (T, B, E)
        if self.lm_features_size:
            x = torch.cat([x, lm_features], dim=-1)  # (T, B, E + lm_features_size)
        outputs, state = self.recurrent(self.dropout(x), lengths=lengths)  # (T, B, D*n_a)
        if lengths is None:
            lengths = torch.full((B,), T)
        mask = length_mask(lengths.to(tokens.device), T)  # (T, B, 1)
        return ModelOutput(self.output(self.head(self.dropout(self.pool(outputs, state, mask)))), state)  # (B, C)
