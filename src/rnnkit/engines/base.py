"""What every engine provides: run one layer (one or two directions) of cells over time."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from ..cells import Cell
from ..padding import reverse_within_lengths

State = tuple[Tensor, ...]  # one layer-direction's state, ordered as the cell's state_names

OFF = ("0", "false", "no", "off")  # what a user writes to switch a feature off


def switched_off(variable: str) -> bool:
    """Whether the environment variable ``variable`` (``RNNKIT_AUTOTUNE``, ``RNNKIT_COMPILED_LOOPS``)
    switches its feature off: 0, false, no or off, in any case; unset or anything else leaves it on."""
    return os.environ.get(variable, "").strip().lower() in OFF


class Engine:
    """An engine runs one layer over time.

    ``run_layer(cells, x, lengths, states)``:

    * ``cells``: one cell per direction (forward first; a second one runs backward in time),
    * ``x``: (T, B, n_x), time-major,
    * ``lengths``: (B,) int64 on x's device, or None when no column is padded,
    * ``states``: one initial state tuple per direction, each tensor (B, n_a).

    Returns ``outputs`` (T, B, D * n_a), zero past each column's length, and the final state tuple
    of each direction: the state at each column's own last real step.
    """

    name: str

    def unsupported(self, cell: Cell) -> str | None:
        """None when this engine can run ``cell``; otherwise the reason, for error messages."""
        return None

    def unavailable_on(self, device: torch.device) -> str | None:
        """None when this engine runs on ``device`` (a device type is enough); otherwise the reason."""
        return None

    def run_layer(
        self, cells: Sequence[Cell], x: Tensor, lengths: Tensor | None, states: Sequence[State]
    ) -> tuple[Tensor, list[State]]:
        raise NotImplementedError


class DirectionalEngine(Engine):
    """An engine that runs each direction separately: the backward direction is a forward run over
    inputs reversed within their lengths (``rnnkit.padding.reverse_within_lengths``)."""

    def run_direction(self, cell: Cell, x: Tensor, lengths: Tensor | None, state: State) -> tuple[Tensor, State]:
        """Run ``cell`` forward in time over x (T, B, n_x); return outputs (T, B, n_a) and final state."""
        raise NotImplementedError

    def run_layer(self, cells, x, lengths, states):
        outputs, finals = [], []
        for direction, (cell, state) in enumerate(zip(cells, states)):
            backward = direction == 1
            x_dir = reverse_within_lengths(x, lengths) if backward else x
            out, final = self.run_direction(cell, x_dir, lengths, state)
            outputs.append(reverse_within_lengths(out, lengths) if backward else out)
            finals.append(final)
        return (outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)), finals
