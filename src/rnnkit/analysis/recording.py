"""Recording what recurrent layers compute, inside any model.

``with recording(model) as rec:`` runs every ``Recurrent`` in ``model`` on the reference engine,
one step at a time, and keeps for each layer and direction:

* ``rec.states[key]``: per step, the state tuple after that step (a<t>, and c<t> for the LSTM),
  still attached to the autograd graph, so that gradients with respect to them can be taken;
* ``rec.gates[key][name]``: per step, each gate the reference cell reports (update, relevance,
  forget, output).

``key`` is ``(module name, cell name)``, e.g. ``("recurrent", "l0")`` or ``("recurrent",
"l1_reverse")``. Steps are in the order the direction reads them; ``rec.in_time_order(key,
values)`` puts values stacked over the steps, (T, B, ...), back in time order (the backward
direction reads each sequence from its own last step). A sequence's steps past its length are
recorded as the reference cell computed them on the padding, not as zeros as the layer's outputs
are: read a sequence's states up to its length.
Everything else about the model is unchanged: the recording only sets the engine and listens.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..padding import check_lengths, reverse_within_lengths
from ..recurrent import Recurrent
from ..errors import UsageError


class Recording:
    def __init__(self):
        self.states: dict[tuple[str, str], list[tuple[Tensor, ...]]] = defaultdict(list)
        self.gates: dict[tuple[str, str], dict[str, list[Tensor]]] = defaultdict(lambda: defaultdict(list))
        self.lengths: dict[tuple[str, str], Tensor | None] = {}

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


def _lengths_of(layer: Recurrent, args: tuple, kwargs: dict) -> Tensor | None:
    """The (B,) lengths a call of ``layer`` passes to its engine (None: no column padded)."""
    x = args[0] if args else kwargs.get("x")
    lengths = args[1] if len(args) > 1 else kwargs.get("lengths")
    if not isinstance(x, Tensor) or x.dim() != 3:
        return None  # the layer's own check refuses the call
    T, B = (x.shape[1], x.shape[0]) if layer.batch_first else (x.shape[0], x.shape[1])
    return check_lengths(lengths, T, B, x.device)


@contextmanager
def recording(model: nn.Module):
    """Record every ``Recurrent`` layer of ``model`` while the block runs (see the module docstring).

    Each layer runs on the reference engine meanwhile (its ``engine`` setting is put back after), so
    that every step goes through the cells' ``forward``; the recording listens with hooks only:
    torch's forward hooks for the states, the cells' gate hooks (``Cell.register_gate_hook``) for
    the gates, a forward pre-hook on the layer for the lengths. Raises ``UsageError`` when the
    model has no recurrent layer."""
    rec = Recording()
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, Recurrent)]
    if not layers:
        raise UsageError("this model has no recurrent layer to record")
    handles = []
    engines = []
    for layer_name, layer in layers:
        engines.append((layer, layer.engine))
        layer.engine = "reference"  # one step at a time through the cells: every step is seen
        keys = [(layer_name, cell_name) for cell_name in layer.cells]
        for key, cell in zip(keys, layer.cells.values()):
            handles.append(cell.register_forward_hook(lambda _cell, _inputs, state, key=key: rec.states[key].append(state)))
            handles.append(cell.register_gate_hook(lambda _cell, gate, value, key=key: rec.gates[key][gate].append(value)))

        def keep_lengths(module, args, kwargs, keys=keys):
            lengths = _lengths_of(module, args, kwargs)
            rec.lengths.update(dict.fromkeys(keys, lengths))

        handles.append(layer.register_forward_pre_hook(keep_lengths, with_kwargs=True))
    try:
        yield rec
    finally:
        for handle in handles:
            handle.remove()
        for layer, engine in engines:
            layer.engine = engine
