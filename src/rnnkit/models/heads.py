"""The optional deep non-recurrent head between a recurrent stack and a model's output layer."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


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
