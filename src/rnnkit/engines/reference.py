"""The reference engine: autograd through the reference cells, one step at a time. The truth.

Padding is handled the plainest way: on a padded step the state is kept and the output is zero.
"""

from __future__ import annotations

import torch

from ..padding import length_mask
from .base import DirectionalEngine


class ReferenceEngine(DirectionalEngine):
    name = "reference"

    def run_direction(self, cell, x, lengths, state):
        T = x.shape[0]
        mask = None if lengths is None else length_mask(lengths, T)  # (T, B, 1)
        outputs = []
        for t in range(T):
            new_state = cell(x[t], state)
            if mask is not None:  # padding: keep the state, emit zero
                new_state = tuple(torch.where(mask[t], new, old) for new, old in zip(new_state, state))
                outputs.append(torch.where(mask[t], new_state[0], 0.0))
            else:
                outputs.append(new_state[0])
            state = new_state
        return torch.stack(outputs), state  # (T, B, n_a)
