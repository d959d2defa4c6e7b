"""rnnkit: recurrent sequence models (RNN, GRU, LSTM) from their equations, fast and tested.

The pieces, each in one place:

* ``rnnkit.cells``: reference cells written from the equations, and their registry;
* ``rnnkit.engines``: reference, fused and native ways of running them over time;
* ``rnnkit.Recurrent``: the layer users call (padding, directions, layers, engine choice).
"""

from importlib import import_module

__all__ = ["CELLS", "Cell", "LSTMState", "Recurrent", "make_cell", "register_cell"]
from .version import __version__  # noqa: E402

# the names above load on first use (PEP 562), so that `import rnnkit.cli` for `rnnkit --help`
# does not import torch (seconds) before argparse has said anything
_HOMES = {"CELLS": ".cells", "Cell": ".cells", "LSTMState": ".cells", "make_cell": ".cells", "register_cell": ".cells", "Recurrent": ".recurrent"}


# subpackages and modules that ``rnnkit.X`` reaches after a plain ``import rnnkit`` (as the README's
# ``rnnkit.analysis.recording(model)`` does), imported on first use as the names above are
_SUBMODULES = {"analysis", "cells", "data", "decoding", "engines", "export", "metrics", "models", "padding", "plots",
               "recurrent", "regularisers", "runs", "serve", "tasks", "training"}  # fmt: skip


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)  # the import sets the attribute: later reads are plain
    if name not in _HOMES:
        raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name], __name__), name)
    globals()[name] = value  # once: later reads are plain attribute reads
    return value
