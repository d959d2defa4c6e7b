"""Recording what recurrent layers compute, inside any model.

``with recording(model) as rec:`` runs every ``Recurrent`` in ``model`` on the reference engine,
one step at a time, and keeps for each layer and direction:

* ``rec.states[key]``: per step, the state tuple after that step (a<t>, and c<t> for the LSTM),
  still attached to the autograd graph, so that gradients with respect to them can be taken;
* ``rec.gates[key][name]``: per step, each gate the reference cell reports (update, relevance,
  forget, output).

``key`` is ``(module name, cell name)``, e.g. ``("recurrent", "l0")`` or ``("recurrent",
"l1_reverse")``. Steps are in the order the direction reads them; ``rec.positions(key)`` maps them
back to time positions (the backward direction reads each sequence from its own last step).
Everything else about the model is unchanged: the recording only swaps the engine and listens.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..engines.reference import ReferenceEngine
from ..padding import reverse_within_lengths
from ..recurrent import Recurrent
from ..errors import UsageError


class Recording:
    def __init__(self):
        self.states: dict[tuple[str, str], list[tuple[Tensor, ...]]] = defaultdict(list)
        self.gates: dict[tuple[str, str], dict[str, list[Tensor]]] = defaultdict(lambda: defaultdict(list))
        self.lengths: dict[tuple[str, str], Tensor | None] = {}
        self._keys: dict[int, tuple[str, str]] = {}

    def keys(self) -> list[tuple[str, str]]:
        return list(self.states)

    def stacked(self, key, index: int = 0) -> Tensor:
        """(T, B, n_a) of state part ``index`` (0: a<t>, 1: c<t>) in reading order."""
        return torch.stack([state[index] for state in self.states[key]])

    def in_time_order(self, key, values: Tensor) -> Tensor:
        """(T, B, ...) values recorded in reading order, put back in time order."""
        if not key[1].endswith("_reverse"):
            return values
        return reverse_within_lengths(values, self.lengths.get(key))

    def gate(self, key, name: str) -> Tensor:
        return torch.stack(self.gates[key][name])


class _RecordingEngine(ReferenceEngine):
    name = "recording"

    def __init__(self, recording: Recording):
        self.recording = recording

    def run_direction(self, cell, x, lengths, state):
        key = self.recording._keys[id(cell)]
        self.recording.lengths[key] = lengths
        steps = self.recording.states[key]
        original = cell.forward

        def forward(x_t, state_t):
            new = original(x_t, state_t)
            steps.append(new)
            return new

        cell.forward = forward
        try:
            return super().run_direction(cell, x, lengths, state)
        finally:
            del cell.forward


@contextmanager
def recording(model: nn.Module):
    rec = Recording()
    engine = _RecordingEngine(rec)
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, Recurrent)]
    if not layers:
        raise UsageError("this model has no recurrent layer to record")
    saved = []
    for layer_name, layer in layers:
        saved.append((layer, layer.engine_for))
        layer.engine_for = lambda device, x=None, _engine=engine: _engine
        for cell_name, cell in layer.cells.items():
            rec._keys[id(cell)] = (layer_name, cell_name)

            def observer(c, gate, value, _key=(layer_name, cell_name)):
                rec.gates[_key][gate].append(value)

            cell.observer = observer
    try:
        yield rec
    finally:
        for layer, engine_for in saved:
            del layer.engine_for  # back to the class's method
            for cell in layer.cells.values():
                cell.observer = None
