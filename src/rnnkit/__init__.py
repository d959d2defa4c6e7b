"""rnnkit: recurrent sequence models (RNN, GRU, LSTM) from their equations, fast and tested.

The pieces, each in one place:

* ``rnnkit.cells``: reference cells written from the equations, and their registry;
* ``rnnkit.engines``: reference, fused and native ways of running them over time;
* ``rnnkit.Recurrent``: the layer users call (padding, directions, layers, engine choice).
"""

from .cells import CELLS, Cell, LSTMState, make_cell, register_cell
from .recurrent import Recurrent

__all__ = ["CELLS", "Cell", "LSTMState", "Recurrent", "make_cell", "register_cell"]
from .version import __version__  # noqa: E402
