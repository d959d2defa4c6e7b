r"""The encoder-decoder with attention: many-to-many with different lengths (translation).

    m<1..S>  = BiRecurrent(e_src(x<1..S>))                 the encoder's outputs: the memory
    s<0>     = tanh(W_bridge [→a<S>; ←a<1>])              the decoder starts from the encoder's final states
    h<t>     = Recurrent(e_tgt(y<t-1>) [; h̃<t-1>]; s)      y<0> = 0; h̃<t-1> only with input feeding
    α<t,s>   = softmax_s(score(h<t>, m<s>))               over the source's real steps only
    c<t>     = Σ_s α<t,s> m<s>
    h̃<t>     = tanh(W_c [c<t>; h<t>])
    ŷ<t>     = softmax(W_y h̃<t> + b)

Scores (Luong et al. 2015): ``multiplicative`` h<t>ᵀ W_a m<s>; ``additive`` vᵀ tanh(W_1 m<s> + W_2 h<t>)
(Bahdanau et al.'s form); ``none``: no attention, h̃<t> = h<t>. Teacher forcing feeds the true
previous token with probability ``teacher_forcing`` (else the model's own best guess).

Regularisers (``rnnkit.regularisers``, training only): ``locked_dropout`` shares each dropout mask
over time, ``weight_drop`` drops recurrent weights of the encoder and the decoder,
``embedding_dropout`` drops whole words from the embeddings. Where the decoder runs one step at a
time (input feeding, or teacher forcing below 1) its masks are drawn once per batch all the same.

Decoding goes one step at a time through ``start`` (encode, returning a ``DecoderState``) and
``step`` (one token for every row of the state), which greedy search, sampling and beam search
share (``rnnkit.decoding``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from ..cells import RecurrentState, map_state, state_like, state_tensors
from ..recurrent import Recurrent
from ..regularisers import Embedding, make_dropout, same_masks
from .base import ModelOutput
from .registry import register_model
from ..errors import UsageError, registered


class Attention(nn.Module):
    """What the scores share: ``key_layer`` projects the memory (S, B, D) into keys once per
    sentence; ``scores(keys, query (B, n_a)) -> (S, B)``."""

    key_layer: nn.Linear

    def keys(self, memory: Tensor) -> Tensor:
        return self.key_layer(memory)  # (S, B, query_size), computed once per sentence


class MultiplicativeAttention(Attention):
    """score(h, m) = hᵀ W_a m (Luong's 'general')."""

    def __init__(self, memory_size: int, query_size: int):
        super().__init__()
        self.W_a = nn.Linear(memory_size, query_size, bias=False)

    @property
    def key_layer(self) -> nn.Linear:
        return self.W_a

    def scores(self, keys: Tensor, query: Tensor) -> Tensor:
        return (keys * query[None]).sum(-1)  # (S, B)


class AdditiveAttention(Attention):
    """score(h, m) = vᵀ tanh(W_1 m + W_2 h) (Bahdanau's form)."""

    def __init__(self, memory_size: int, query_size: int):
        super().__init__()
        self.W_1 = nn.Linear(memory_size, query_size, bias=False)
        self.W_2 = nn.Linear(query_size, query_size)
        self.v = nn.Linear(query_size, 1, bias=False)

    @property
    def key_layer(self) -> nn.Linear:
        return self.W_1

    def scores(self, keys: Tensor, query: Tensor) -> Tensor:
        return self.v(torch.tanh(keys + self.W_2(query)[None]))[..., 0]  # (S, B)


ATTENTIONS = {"multiplicative": MultiplicativeAttention, "additive": AdditiveAttention}


@dataclass
class DecoderState:
    """What the decoder carries from one step to the next, for B rows (sentences or beams)."""

    rnn: RecurrentState  # the decoder's recurrent state, (L, B, n_a) or an LSTMState of two
    feed: Tensor | None  # h̃<t-1> (B, n_a) with input feeding
    memory: Tensor  # (S, B, D) encoder outputs
    keys: Tensor | None  # (S, B, n_a) attention keys
    mask: Tensor  # (S, B) True on real source steps

    def index_select(self, index: Tensor) -> "DecoderState":
        """Rows ``index`` of every part (beam search reorders and repeats rows)."""
        rnn = map_state(lambda s: s.index_select(1, index), self.rnn)  # (L, B', n_a) each
        pick = lambda t, dim: None if t is None else t.index_select(dim, index)  # noqa: E731
        return replace(self, rnn=rnn, feed=pick(self.feed, 0), memory=pick(self.memory, 1), keys=pick(self.keys, 1), mask=pick(self.mask, 1))


@register_model
class Seq2Seq(nn.Module):
    kind = "seq2seq"

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        *,
        cell: str = "gru",
        embedding_size: int = 256,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.3,
        attention: str = "multiplicative",
        input_feeding: bool = False,
        teacher_forcing: float = 1.0,
        shared_embeddings: bool = False,
        engine: str = "auto",
        cell_options: dict | None = None,
        locked_dropout: bool = False,
        weight_drop: float = 0.0,
        embedding_dropout: float = 0.0,
    ):
        super().__init__()
        attention_class = registered({**ATTENTIONS, "none": None}, attention, "attention")
        if not 0 <= teacher_forcing <= 1:
            raise UsageError(f"teacher_forcing must lie in [0, 1], got {teacher_forcing}")
        self._config = dict(
            source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size, cell=cell, embedding_size=embedding_size,
            hidden_size=hidden_size, num_layers=num_layers, dropout=dropout, attention=attention, input_feeding=input_feeding,
            teacher_forcing=teacher_forcing, shared_embeddings=shared_embeddings, engine=engine, cell_options=dict(cell_options or {}),
            locked_dropout=locked_dropout, weight_drop=weight_drop, embedding_dropout=embedding_dropout,
        )  # fmt: skip
        options = dict(cell_options or {}, weight_drop=weight_drop, locked_dropout=locked_dropout)
        self.source_embedding = Embedding(source_vocab_size, embedding_size, padding_idx=0, dropout=embedding_dropout)
        if shared_embeddings:
            if source_vocab_size != target_vocab_size:
                raise UsageError("shared_embeddings needs one vocabulary for both sides")
            self.target_embedding = self.source_embedding
        else:
            self.target_embedding = Embedding(target_vocab_size, embedding_size, padding_idx=0, dropout=embedding_dropout)
        self.encoder = Recurrent(cell, embedding_size, hidden_size, num_layers=num_layers, bidirectional=True, dropout=dropout, engine=engine, **options)
        self.bridges = nn.ModuleList(nn.Linear(2 * hidden_size, hidden_size) for _ in self.encoder.cells["l0"].state_names)
        decoder_input = embedding_size + (hidden_size if input_feeding and attention != "none" else 0)
        self.decoder = Recurrent(cell, decoder_input, hidden_size, num_layers=num_layers, dropout=dropout, engine=engine, **options)
        self.attention = attention_class(2 * hidden_size, hidden_size) if attention_class is not None else None
        self.combine = nn.Linear(2 * hidden_size + hidden_size, hidden_size) if self.attention is not None else None
        self.dropout = make_dropout(dropout, locked_dropout)  # on the embeddings
        self.output_dropout = make_dropout(dropout, locked_dropout)  # on h̃<t>: its own module, so its mask is its own in same_masks
        self.output = nn.Linear(hidden_size, target_vocab_size)
        self.input_feeding = input_feeding and self.attention is not None
        self.teacher_forcing = teacher_forcing

    def config(self) -> dict:
        return dict(self._config)

    # -- encoding ---------------------------------------------------------------------------------------
    def start(self, source: Tensor, lengths: Tensor | None = None) -> DecoderState:
        """Encode ``source`` (S, B) and return the decoder's initial state."""
        S, B = source.shape
        memory, final = self.encoder(self.dropout(self.source_embedding(source)), lengths=lengths)  # (S, B, 2H)
        finals = state_tensors(final)  # each (2L, B, n_a)
        L = self.encoder.num_layers
        # per state tensor: the last encoder layer's two directions joined, bridged, one per decoder layer
        states = tuple(torch.tanh(bridge(torch.cat([f[2 * L - 2], f[2 * L - 1]], dim=-1))) for bridge, f in zip(self.bridges, finals))
        states = tuple(s[None].expand(L, B, -1).contiguous() for s in states)
        rnn = state_like(states, final)
        lengths = torch.full((B,), S) if lengths is None else torch.as_tensor(lengths)
        mask = torch.arange(S)[:, None] < lengths[None, :]  # (S, B)
        keys = self.attention.keys(memory) if self.attention is not None else None
        feed = memory.new_zeros(B, self.decoder.hidden_size) if self.input_feeding else None
        return DecoderState(rnn, feed, memory, keys, mask.to(memory.device))

    def attend(self, h: Tensor, state: DecoderState) -> tuple[Tensor, Tensor]:
        """h̃<t> and the attention weights α<t> (B, S) for decoder outputs h (B, n_a)."""
        scores = self.attention.scores(state.keys, h)  # (S, B)
        weights = scores.masked_fill(~state.mask, -torch.inf).softmax(dim=0)  # zero on padding
        context = (weights[..., None] * state.memory).sum(0)  # (B, 2H)
        return torch.tanh(self.combine(torch.cat([context, h], dim=-1))), weights.t()

    # -- one step ----------------------------------------------------------------------------------------
    def step(self, previous: Tensor | None, state: DecoderState) -> ModelOutput:
        """Logits (B, V) of the next token given the previous one (None: y<0> = 0), the new state,
        and the attention weights (B, S) (None without attention)."""
        B = state.memory.shape[1]
        if previous is None:
            x = state.memory.new_zeros(B, self.target_embedding.embedding_dim)
        else:
            x = self.target_embedding(previous)
        x = self.dropout(x)
        if self.input_feeding:
            x = torch.cat([x, state.feed], dim=-1)
        h, rnn = self.decoder(x[None], state=state.rnn)
        h = h[0]  # (B, n_a)
        weights = None
        if self.attention is not None:
            h, weights = self.attend(h, state)
        logits = self.output(self.output_dropout(h))
        return ModelOutput(logits, replace(state, rnn=rnn, feed=h if self.input_feeding else None), attention=weights)

    # -- training ----------------------------------------------------------------------------------------
    def forward(self, source: Tensor, source_lengths: Tensor | None, target: Tensor) -> ModelOutput:
        """Logits (T, B, V) of y<1..T> (target (T, B)) given the source (S, B), teacher-forced with
        probability ``teacher_forcing`` per step (no state: the decoder has read the whole target)."""
        T = target.shape[0]
        if self.teacher_forcing == 1.0 and not self.input_feeding:  # every input known: one pass over time
            state = self.start(source, source_lengths)
            x = self.target_embedding(target[:-1])  # (T-1, B, E)
            x = torch.cat([x.new_zeros(1, *x.shape[1:]), x])  # y<0> = 0
            h, _ = self.decoder(self.dropout(x), state=state.rnn)  # (T, B, n_a)
            if self.attention is not None:
                scores = torch.stack([self.attention.scores(state.keys, h[t]) for t in range(T)])  # (T, S, B)
                weights = scores.masked_fill(~state.mask[None], -torch.inf).softmax(dim=1)
                context = torch.einsum("tsb,sbd->tbd", weights, state.memory)
                h = torch.tanh(self.combine(torch.cat([context, h], dim=-1)))
            return ModelOutput(self.output(self.output_dropout(h)))  # (T, B, V)
        logits, previous = [], None
        with same_masks(self):  # one step at a time, one dropout mask per sentence all the same
            state = self.start(source, source_lengths)
            for t in range(T):
                out = self.step(previous, state)
                step_logits, state = out.logits, out.state
                logits.append(step_logits)
                use_truth = self.training is False or torch.rand(()) < self.teacher_forcing
                previous = target[t] if use_truth else step_logits.argmax(-1).detach()
        return ModelOutput(torch.stack(logits))  # (T, B, V)
