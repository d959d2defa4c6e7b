r"""The piano-roll model: one-to-many music generation with independent Bernoulli outputs.

    x<1> = 0,  x<t> = v<t-1>                 v<t>: the 88-key binary vector of step t
    a<t> = Recurrent(x<1..t>)
    p<t> = σ(W head(a<t>) + b)               P(key k sounds at step t | v<1..t-1>) = p<t>[k]
    L    = Σ_t Σ_k -[v<t>[k] log p<t>[k] + (1 - v<t>[k]) log(1 - p<t>[k])]

Dropout: ``input_dropout`` on the fed-back roll x<t> (default: ``dropout``), ``dropout`` between
layers and on a<t> before the head. Dropping fed-back notes is input noise, unlike dropping hidden
units, so the two are set apart. ``locked_dropout`` shares each of those masks over time (one per
sequence), ``weight_drop`` drops recurrent weights (``rnnkit.regularisers``).

The keys of one step are independent given the past (the setting of Boulanger-Lewandowski et al.
2012 and Chung et al. 2014), and the negative log-likelihood is reported per time step (summed over
the 88 keys, averaged over steps), as they report it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..data.music import KEYS
from ..cells import RecurrentState, hidden_state
from ..recurrent import Recurrent
from ..regularisers import make_dropout
from .base import ModelOutput
from .registry import register_model
from .heads import DeepHead
from ..errors import UsageError


@register_model
class PianoRollModel(nn.Module):
    kind = "piano-roll"

    def __init__(
        self,
        *,
        cell: str = "gru",
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.3,
        head_sizes: Sequence[int] = (),
        engine: str = "auto",
        cell_options: dict | None = None,
        input_dropout: float | None = None,
        locked_dropout: bool = False,
        weight_drop: float = 0.0,
    ):
        super().__init__()
        input_dropout = dropout if input_dropout is None else input_dropout
        self._config = dict(
            cell=cell, hidden_size=hidden_size, num_layers=num_layers, dropout=dropout, head_sizes=list(head_sizes),
            engine=engine, cell_options=dict(cell_options or {}), input_dropout=input_dropout, locked_dropout=locked_dropout,
            weight_drop=weight_drop,
        )  # fmt: skip
        self.recurrent = Recurrent(
            cell, KEYS, hidden_size, num_layers=num_layers, dropout=dropout, engine=engine, weight_drop=weight_drop,
            locked_dropout=locked_dropout, **(cell_options or {}),
        )  # fmt: skip
        self.input_dropout = make_dropout(input_dropout, locked_dropout)
        self.dropout = make_dropout(dropout, locked_dropout)
        self.head = DeepHead(hidden_size, head_sizes, dropout)
        self.output = nn.Linear(self.head.output_size, KEYS)

    def config(self) -> dict:
        return dict(self._config)

    def forward(self, rolls: Tensor, lengths: Tensor | None = None, state: RecurrentState | None = None, previous: Tensor | None = None) -> ModelOutput:
        """Logits (T, B, 88) of p<1..T> for rolls (T, B, 88) and the final state; x<1> = 0 (or
        ``previous``, (B, 88))."""
        first = torch.zeros_like(rolls[:1]) if previous is None else previous[None]  # (1, B, 88)
        x = torch.cat([first, rolls[:-1]])  # (T, B, 88): x<t> = v<t-1>
        a, state = self.recurrent(self.input_dropout(x), lengths=lengths, state=state)  # (T, B, n_a)
        return ModelOutput(self.output(self.head(self.dropout(a))), state)

    def start(self, batch_size: int) -> RecurrentState:
        """The state before the first step of ``batch_size`` rows: a<0> = 0."""
        return self.recurrent.start_state(batch_size, self.output.weight)

    def step(self, previous: Tensor | None, state: RecurrentState) -> ModelOutput:
        """Logits (B, 88) of the next step given the previous one (None: x<1> = 0), and the new state."""
        if previous is None:
            previous = self.output.weight.new_zeros(hidden_state(state).shape[1], KEYS)  # (B, 88)
        a, state = self.recurrent(previous[None], state=state)  # (1, B, n_a)
        return ModelOutput(self.output(self.head(a[0])), state)


@torch.no_grad()
def sample_rolls(model, steps: int, *, num: int = 1, temperature: float = 1.0, primer: Tensor | None = None, seed: int | None = None, device="cpu") -> Tensor:
    """(steps, num, 88) binary rolls: each step's keys drawn independently from σ(logits / temperature)
    and fed back; a primer (P, 88) is played first and kept at the start."""
    if temperature <= 0:
        raise UsageError(f"temperature must be positive, got {temperature}")
    model.eval()
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    state, previous, out = model.start(num), None, []
    if primer is not None:
        for row in primer.to(device):
            state = model.step(previous, state).state
            previous = row[None].expand(num, -1).float()
            out.append(previous)
    while len(out) < steps:
        step = model.step(previous, state)
        state = step.state
        probs = torch.sigmoid(step.logits.float() / temperature).cpu()
        previous = torch.bernoulli(probs, generator=generator).to(device)
        out.append(previous)
    return torch.stack(out[:steps])
