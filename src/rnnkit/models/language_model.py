r"""The recurrent language model of the course.

A sentence y<1..T> (its last token ``<EOS>``) is read one token at a time. The first input is the
zero vector, each later input is the previous true token, and the model predicts the next::

    x<1> = 0,   x<t> = e(y<t-1>) for t > 1           e: the embedding
    a<t> = Recurrent(x<1..t>)                        any cell, layers, dropout between
    ŷ<t> = softmax(W_y head(a<t>) + b_y)             head: optional deep non-recurrent layers
    L    = Σ_t -log ŷ<t>[y<t>]                       summed over the real (non-padding) steps

so ŷ<t> is P(y<t> | y<1..t-1>) and P(sentence) = Π_t ŷ<t>[y<t>]. Continuing a stream (truncated
backpropagation through time), the first input of a chunk is the previous chunk's last token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..cells import RecurrentState, hidden_state
from ..recurrent import Recurrent
from ..regularisers import Embedding, activation_penalty, check_probability, make_dropout
from .base import ModelOutput
from .registry import register_model
from .heads import DeepHead
from ..errors import UsageError


@register_model
class LanguageModel(nn.Module):
    """Embedding -> recurrent stack -> optional deep head -> softmax over the vocabulary.

    Args:
        vocab_size: V, including the special tokens.
        cell, hidden_size, num_layers, dropout, engine, cell_options: the recurrent stack's
            (``rnnkit.Recurrent``); ``dropout`` also applies to the stack's output.
        input_dropout: dropout on the embeddings x<t> (default: ``dropout``).
        locked_dropout: every dropout above with one mask per sequence, shared over time.
        weight_drop: DropConnect on the recurrent weights W_a (``rnnkit.Recurrent``).
        embedding_dropout: whole words dropped from the embedding matrix per batch.
        ar_alpha, tar_beta: AR and TAR (``rnnkit.regularisers.activation_penalty``), added to the
            training loss by the language-model task; 0 leaves them out.
        embedding_size: size of the token embeddings.
        head_sizes: sizes of non-recurrent layers between the stack and the output layer.
        tie_embeddings: share the output layer's weight with the embedding (Press & Wolf 2017);
            the last layer before it must then have ``embedding_size`` units.
        bidirectional: refused; a language model may not read the token it predicts.
    """

    kind = "lm"

    def __init__(
        self,
        vocab_size: int,
        *,
        cell: str = "lstm",
        embedding_size: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        head_sizes: Sequence[int] = (),
        tie_embeddings: bool = False,
        engine: str = "auto",
        cell_options: dict | None = None,
        bidirectional: bool = False,
        input_dropout: float | None = None,
        locked_dropout: bool = False,
        weight_drop: float = 0.0,
        embedding_dropout: float = 0.0,
        ar_alpha: float = 0.0,
        tar_beta: float = 0.0,
    ):
        super().__init__()
        if bidirectional:
            raise UsageError(
                "a language model cannot be bidirectional: it predicts each token from the ones before it, "
                "and a backward direction would read the very token it predicts"
            )
        self._config = dict(
            vocab_size=vocab_size, cell=cell, embedding_size=embedding_size, hidden_size=hidden_size,
            num_layers=num_layers, dropout=dropout, head_sizes=list(head_sizes), tie_embeddings=tie_embeddings,
            engine=engine, cell_options=dict(cell_options or {}),
        )  # fmt: skip
        input_dropout = dropout if input_dropout is None else input_dropout
        regularisers = dict(
            input_dropout=input_dropout, locked_dropout=locked_dropout, weight_drop=weight_drop, embedding_dropout=embedding_dropout,
            ar_alpha=ar_alpha, tar_beta=tar_beta,
        )  # fmt: skip
        self._config.update(regularisers)
        for name in ("ar_alpha", "tar_beta"):
            if isinstance(regularisers[name], bool) or not isinstance(regularisers[name], (int, float)) or not regularisers[name] >= 0:
                raise UsageError(f"{name} must be a number >= 0, got {regularisers[name]!r}")
        self.ar_alpha, self.tar_beta = float(ar_alpha), float(tar_beta)
        self.embedding = Embedding(vocab_size, embedding_size, dropout=embedding_dropout)
        self.recurrent = Recurrent(
            cell, embedding_size, hidden_size, num_layers=num_layers, dropout=dropout, engine=engine,
            weight_drop=weight_drop, locked_dropout=locked_dropout, **(cell_options or {}),
        )  # fmt: skip
        self.input_dropout = make_dropout(check_probability("input_dropout", input_dropout), locked_dropout)
        self.dropout = make_dropout(dropout, locked_dropout)
        self.head = DeepHead(hidden_size, head_sizes, dropout)
        self.output = nn.Linear(self.head.output_size, vocab_size)
        # small uniform embeddings and output weights, zero output bias (Zaremba et al. 2014): the
        # default N(0, 1) embedding would also be the output layer when tied, with huge first logits
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.uniform_(self.output.weight, -0.1, 0.1)
        nn.init.zeros_(self.output.bias)
        if tie_embeddings:
            if self.head.output_size != embedding_size:
                raise UsageError(
                    f"--tie-embeddings needs the layer before the output ({self.head.output_size} units) "
                    f"to have --embedding-size ({embedding_size}) units; set --head-sizes or --hidden-size to match"
                )
            self.output.weight = self.embedding.weight

    def config(self) -> dict:
        return dict(self._config)

    def inputs(self, tokens: Tensor, previous: Tensor | None = None) -> Tensor:
        """x<1..T> (T, B, E) for targets y<1..T>: x<1> = 0 (or e(previous)), x<t> = e(y<t-1>)."""
        T, B = tokens.shape
        if previous is None:
            x = self.embedding(tokens[:-1])  # (T-1, B, E)
            return torch.cat([x.new_zeros(1, B, self.embedding.embedding_dim), x])  # x<1> = 0
        return self.embedding(torch.cat([previous[None], tokens[:-1]]))  # (T, B, E): one lookup, one embedding-dropout mask

    def forward(self, tokens: Tensor, lengths: Tensor | None = None, state: RecurrentState | None = None, previous: Tensor | None = None) -> ModelOutput:
        """Logits (T, B, V) of ŷ<1..T> for targets ``tokens`` (T, B), continuing from ``state``
        (None: a<0> = 0) with ``previous`` (B,) the token before them (None: x<1> = 0); the final
        state; the features the output layer read (T, B, F); while training with ``ar_alpha`` or
        ``tar_beta``, AR + TAR of this call as the penalty (a scalar; ``activation_penalty``).
        ``ValueError`` for tokens that are not (T, B) with T, B >= 1."""
        if tokens.dim() != 2 or 0 in tokens.shape:  # T = 0 gave the logits of one step: x<1> = 0 is made whatever T is
            raise ValueError(f"LanguageModel takes tokens of shape (T, B) with T, B >= 1, got {tuple(tokens.shape)}")
        x = self.input_dropout(self.inputs(tokens, previous))
        a, state = self.recurrent(x, lengths=lengths, state=state)  # (T, B, n_a)
        dropped = self.dropout(a)  # (T, B, n_a)
        features = self.head(dropped)  # (T, B, F): what the output layer reads
        logits = self.output(features)  # (T, B, V)
        penalised = self.training and (self.ar_alpha or self.tar_beta)
        penalty = activation_penalty(a, dropped, lengths, self.ar_alpha, self.tar_beta) if penalised else None
        return ModelOutput(logits, state, penalty, features=features)

    def start(self, batch_size: int) -> RecurrentState:
        """The state before the first step of ``batch_size`` rows: a<0> = 0."""
        return self.recurrent.start_state(batch_size, self.embedding.weight)

    def step(self, previous: Tensor | None, state: RecurrentState) -> ModelOutput:
        """One step for decoding: logits (B, V) of the next token given the previous one (None: the
        first step, x<1> = 0) and the state so far (from ``start``), and the new state."""
        if previous is None:
            B = hidden_state(state).shape[1]
            x = self.embedding.weight.new_zeros(1, B, self.embedding.embedding_dim)  # (1, B, E): x<1> = 0
        else:
            x = self.embedding(previous)[None]  # (1, B, E)
        a, state = self.recurrent(x, state=state)  # (1, B, n_a)
        return ModelOutput(self.output(self.head(a[0])), state)  # (B, V)
