"""What the models put between a recurrent stack and their output layer: the optional deep
non-recurrent head, and the final activations of a bidirectional stack."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..cells import RecurrentState, hidden_state


class DeepHead(nn.Sequential):
    """``Linear -> tanh -> dropout`` once per entry of ``sizes``; no layers when ``sizes`` is empty.

    ``output_size`` is the size of what comes out: the last of ``sizes``, or ``input_size``.
    """

    def __init__(self, input_size: int, sizes: Sequence[int] = (), dropout: float = 0.0):
        layers: list[nn.Module] = []
        for size in sizes:
            layers += [nn.Linear(input_size, size), nn.Tanh(), nn.Dropout(dropout)]
            input_size = size
        super().__init__(*layers)
        self.output_size = input_size

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x)


def final_outputs(state: RecurrentState) -> Tensor:
    """The last layer's final activations of both directions, joined: (B, 2 n_a)."""
    a = hidden_state(state)  # (L*D, B, n_a)
    return torch.cat([a[-2], a[-1]], dim=-1)
