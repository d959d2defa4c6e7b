"""``Recurrent``: the layer users call. Runs cells over time -- padded batches, both directions,
stacked layers -- on whichever engine fits, with the same parameters whatever the engine.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cells import CELLS, Cell, RecurrentState, TorchWeights, cell_class, state_tensors
from .engines import Engine, State, check_engine, choose_engine, engine_named
from .padding import check_lengths
from .errors import UnexpectedArgumentError, UsageError
from .regularisers import MaskHolder, check_probability, drop_connect

__all__ = ["Recurrent"]


class Recurrent(MaskHolder, nn.Module):
    r"""A stack of recurrent layers, one or two directions each.

    Args:
        cell: a registered cell kind: ``rnn``, ``gru``, ``gru-simple``, ``gru-cudnn``, ``lstm``
            (see ``rnnkit.cells``).
        input_size: n_x, features per input step.
        hidden_size: n_a, units per direction.
        num_layers: layers stacked; layer l > 0 reads layer l-1's outputs.
        bidirectional: add a direction reading each sequence from its own last real step back to
            its first; the two directions' outputs are joined on the feature axis.
        dropout: dropout probability on the outputs of every layer but the last (training only).
        locked_dropout: that dropout with one mask per sequence, shared by all its time steps
            (variational dropout, Gal & Ghahramani 2016) instead of one per element.
        weight_drop: DropConnect on the recurrent weights (Merity et al. 2017): in training each
            entry of every cell's W_a (the columns acting on a<t-1>) is zeroed with this
            probability and the kept ones scaled by 1/(1-p), one mask per call shared by all time
            steps; W_x and the biases are kept whole. Every engine runs the dropped weights
            (``rnnkit.regularisers``).
        batch_first: inputs and outputs are (B, T, ...) instead of (T, B, ...).
        engine: ``"auto"`` (the fastest engine that can run the cell on the input's device: on the
            CPU measured once per shape class and machine, see ``rnnkit.engines.autotune``),
            ``"reference"``, ``"fused"``, ``"native"``, ``"triton"`` or ``"persistent"``.
        learn_initial_state: learn a<0> (and the LSTM's c<0>) instead of starting from zeros.
        **cell_options: options of the cell, e.g. ``nonlinearity="relu"`` for ``rnn`` or
            ``peepholes=True`` for ``lstm``.

    Call: ``outputs, state = layer(x, lengths=None, state=None)``

    * ``x``: (T, B, n_x), or (B, T, n_x) with ``batch_first``.
    * ``lengths``: optional (B,) true lengths of padded sequences. Outputs past a sequence's end
      are zero and padding never influences a real step.
    * ``state``: optional initial state, (L*D, B, n_a), or ``LSTMState(a, c)`` of two such tensors
      for the LSTM; rows ordered layer by layer, forward direction first. Default a<0> = 0.
    * ``outputs``: (T, B, D*n_a) (batch-first if asked), the last layer's a<t>.
    * ``state``: the final state in the same layout as the initial one: for each layer and
      direction, the state at each sequence's own last real step (for the backward direction,
      after reading the sequence's first step).

    Parameters are named by layer and direction, ``cells.l0.weight``, ``cells.l0_reverse.weight``
    and so on; each cell's layout is described in ``rnnkit.cells``.

    Example::

        >>> layer = Recurrent("lstm", 8, 16, num_layers=2, bidirectional=True)
        >>> x = torch.randn(5, 3, 8)                      # (T, B, n_x)
        >>> outputs, (a, c) = layer(x, lengths=[5, 2, 4])
        >>> outputs.shape, a.shape
        (torch.Size([5, 3, 32]), torch.Size([4, 3, 16]))
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = False,
        engine: str = "auto",
        learn_initial_state: bool = False,
        weight_drop: float = 0.0,
        locked_dropout: bool = False,
        **cell_options,
    ):
        super().__init__()
        cls = cell_class(cell)
        for name in cell_options:  # --cell gru --peepholes: say whose option it is, not Python's TypeError text
            if name not in inspect.signature(cls.__init__).parameters:
                takers = [kind for kind, other in CELLS.items() if name in inspect.signature(other.__init__).parameters]
                raise UnexpectedArgumentError(f"cell {cell!r} has no option {name!r}" + (f" (an option of: {', '.join(takers)})" if takers else ""))
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise UsageError(f"{name} must be a whole number >= 1, got {size!r}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
            raise UsageError(f"dropout must be a number in [0, 1), got {dropout!r}")
        for name, flag in (("bidirectional", bidirectional), ("batch_first", batch_first), ("learn_initial_state", learn_initial_state), ("locked_dropout", locked_dropout)):
            if not isinstance(flag, bool):  # "no" is truthy: batch_first="no" was taken as True
                raise UsageError(f"{name} must be True or False, got {flag!r}")
        self.cell_kind = cell
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.dropout = dropout
        self.locked_dropout = bool(locked_dropout)
        self.weight_drop = check_probability("weight_drop", weight_drop)
        self._dropping_weights = False  # inside the call that runs the dropped weights
        self.batch_first = batch_first
        self.cells = nn.ModuleDict()
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for direction in range(self.num_directions):
                try:
                    self.cells[self._cell_name(layer, direction)] = cls(layer_input, hidden_size, **cell_options)
                except TypeError as error:
                    raise UnexpectedArgumentError(f"cell {cell!r}: {str(error).splitlines()[0]}") from None  # torch's own: C++ frames follow
        self.cell_options = self.cells["l0"].options()
        self.engine = engine  # checked by the property's setter
        self.initial_state = None
        if learn_initial_state:
            shape = (num_layers * self.num_directions, hidden_size)
            self.initial_state = nn.ParameterDict({name: nn.Parameter(torch.zeros(shape)) for name in cls.state_names})

    @property
    def engine(self) -> str:
        """The engine name the layer runs on ("auto", or one of ``rnnkit.engines.ENGINES``). Set it
        to change engine; one that cannot run the cell is a one-line ``UsageError`` then, not an
        error from inside the engine at the next call."""
        return self._engine

    @engine.setter
    def engine(self, name: str) -> None:
        check_engine(name, self.cells["l0"])
        self._engine = name

    @property
    def bidirectional(self) -> bool:
        return self.num_directions == 2

    @staticmethod
    def _cell_name(layer: int, direction: int) -> str:
        return f"l{layer}" + ("_reverse" if direction else "")

    def layer_cells(self, layer: int) -> list[Cell]:
        """The cells of one layer, forward direction first."""
        return [self.cells[self._cell_name(layer, d)] for d in range(self.num_directions)]

    def engine_for(self, device: torch.device, x: Tensor | None = None) -> Engine:
        """The engine a call on ``device`` runs on; with ``x``, the call's time-major input (T, B, n_x),
        the one ``auto`` measured fastest on this machine for its shape class (training when grad
        mode is on and x or a parameter requires grad; ``rnnkit.engines.autotune``). A forced
        ``engine=`` is returned as it is, never timed."""
        if self.engine != "auto":
            return engine_named(self.engine)
        try:
            device = torch.device(device)  # "cpu" as torch's own functions take it
        except (RuntimeError, TypeError):  # torch's paragraph listing every device type it knows
            raise ValueError(f"engine_for: {device!r} is no device torch knows (cpu, cuda, cuda:N, mps)") from None
        if x is None:
            return choose_engine(self.cells["l0"], device)
        training = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        return choose_engine(self.cells["l0"], device, x, training)

    def extra_repr(self) -> str:
        parts = [repr(self.cell_kind), str(self.input_size), str(self.hidden_size)]
        parts += [f"{k}={v!r}" for k, v in self.cell_options.items()]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        for flag, default in (
            ("bidirectional", False), ("dropout", 0.0), ("locked_dropout", False), ("weight_drop", 0.0), ("batch_first", False), ("engine", "auto")
        ):  # fmt: skip
            if getattr(self, flag) != default:
                parts.append(f"{flag}={getattr(self, flag)!r}")
        return ", ".join(parts)

    # -- the call -------------------------------------------------------------------------------
    def forward(
        self, x: Tensor, lengths: Tensor | Sequence[int] | None = None, state: RecurrentState | None = None
    ) -> tuple[Tensor, RecurrentState]:
        if self.weight_drop and self.training and not self._dropping_weights:
            return self._run_dropped_weights(x, lengths, state)
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            layout = "(B, T, n_x)" if self.batch_first else "(T, B, n_x)"
            raise ValueError(f"Recurrent expected input of shape {layout} with n_x = {self.input_size}, got {tuple(x.shape)}")
        if self.batch_first:
            x = x.transpose(0, 1)
        T, B = x.shape[:2]
        if T == 0 or B == 0:
            raise ValueError(f"Recurrent got an input with no {'time steps (T = 0)' if T == 0 else 'sequences (B = 0)'}")
        self._check_dtype("the input", x)
        if x.device.type == "meta":  # torch's "unknown device type for autocast", naming neither
            raise ValueError("Recurrent got an input on the meta device, which holds no values; build the layer on the meta "
                             "device for shapes alone (with torch.device('meta'): ...), and run it on the CPU or a GPU")
        weight = self.cells["l0"].weight
        if weight.device != x.device:  # torch's "not on the expected device" from inside an engine, or a meta layer's uninitialised memory
            holds = " (the meta device holds no values: load the weights first, e.g. load_state_dict(..., assign=True) or .to_empty(device=...))" if weight.device.type == "meta" else ""
            raise ValueError(f"Recurrent's parameters are on {weight.device} but the input is on {x.device}: move one to the other's device{holds}")
        lengths = check_lengths(lengths, T, B, x.device)
        initial = self._initial_states(state, B, x)
        engine = self.engine_for(x.device, x)
        finals: list[State] = []
        layer_input = x
        for layer in range(self.num_layers):
            directions = slice(layer * self.num_directions, (layer + 1) * self.num_directions)
            outputs, layer_finals = engine.run_layer(self.layer_cells(layer), layer_input, lengths, initial[directions])
            finals += layer_finals
            if self.dropout and self.training and layer < self.num_layers - 1:
                if self.locked_dropout:  # one mask per sequence: (1, B, D*n_a), broadcast over time
                    outputs = outputs * self.draw_mask(("between", layer), (1, *outputs.shape[1:]), self.dropout, outputs)
                else:
                    outputs = F.dropout(outputs, self.dropout, training=True)
            layer_input = outputs
        if self.batch_first:
            outputs = outputs.transpose(0, 1)
        stacked = tuple(torch.stack(parts) if len(parts) > 1 else parts[0].unsqueeze(0) for parts in zip(*finals))  # per state name: (L*D, B, n_a)
        return outputs, self.cells["l0"].public_state(stacked)

    def _check_dtype(self, what: str, tensor: Tensor) -> None:
        """A floating tensor of the parameters' dtype (any floating one under autocast, which casts),
        else a ``TypeError`` naming it, not torch's "mat1 and mat2 must have the same dtype" from inside an engine."""
        dtype = self.cells["l0"].weight.dtype
        if tensor.dtype == dtype or (tensor.is_floating_point() and torch.is_autocast_enabled(tensor.device.type)):
            return
        raise TypeError(f"Recurrent's parameters are {dtype} but {what} is {tensor.dtype}: convert it (.to({dtype})), or the layer (.to({tensor.dtype}))"
                        if tensor.is_floating_point() else f"Recurrent takes a floating-point tensor as {what}, got {tensor.dtype} (token ids go through an nn.Embedding first)")

    def _run_dropped_weights(self, x, lengths, state):
        """The call with every cell's ``weight`` replaced by its DropConnect version for its whole
        duration (``torch.func.functional_call``): engines read the weights from the cells, so each
        one runs the dropped weights unchanged, and the gradient reaches ``weight`` through the mask."""
        from torch.func import functional_call

        weights = {}
        for name, cell in self.cells.items():
            mask = self.draw_mask(("weight", name), tuple(cell.weight_a.shape), self.weight_drop, cell.weight)  # (G·n_a, n_a)
            weights[f"cells.{name}.weight"] = drop_connect(cell.weight, cell.hidden_size, mask)
        self._dropping_weights = True
        try:
            return functional_call(self, weights, (x, lengths, state))
        finally:
            self._dropping_weights = False

    def start_state(self, batch_size: int, like: Tensor) -> RecurrentState:
        """The state before the first step for ``batch_size`` rows, as ``forward`` takes it: the
        learned a<0> (and c<0>) when ``learn_initial_state``, else zeros; (L*D, B, n_a) each, of
        ``like``'s dtype and device. Passing it equals passing ``state=None``. ``ValueError`` for a
        batch size that is not a whole number of 1 or more."""
        if isinstance(batch_size, bool) or not hasattr(batch_size, "__index__") or batch_size < 1:  # torch's "negative dimension -1"
            raise ValueError(f"start_state takes a batch size of 1 or more, got {batch_size!r}")
        return self.cells["l0"].public_state(self._start_tensors(int(batch_size), like))

    def _start_tensors(self, B: int, x: Tensor) -> tuple[Tensor, ...]:
        names = self.cells["l0"].state_names
        expected = (self.num_layers * self.num_directions, B, self.hidden_size)
        if self.initial_state is not None:
            return tuple(self.initial_state[name][:, None, :].expand(expected).to(x.dtype) for name in names)
        return (x.new_zeros(expected),) * len(names)

    def _initial_states(self, state, B: int, x: Tensor) -> list[State]:
        """One state tuple per layer and direction, each tensor (B, n_a)."""
        names = self.cells["l0"].state_names
        rows = self.num_layers * self.num_directions
        expected = (rows, B, self.hidden_size)
        if state is None:
            tensors = self._start_tensors(B, x)
        else:
            tensors = state_tensors(state)
            if len(tensors) != len(names):
                raise ValueError(f"cell {self.cell_kind!r} has a state of {len(names)} tensor(s) ({', '.join(names)}), got {len(tensors)}")
            for name, tensor in zip(names, tensors):
                if tuple(tensor.shape) != expected:
                    raise ValueError(f"initial state {name!r} must have shape {expected} (L*D, B, n_a), got {tuple(tensor.shape)}")
                self._check_dtype(f"initial state {name!r}", tensor)
                if tensor.device != x.device:  # torch's "Input and hidden tensors are not at the same device", or a meta state's
                    raise ValueError(f"initial state {name!r} is on {tensor.device}, the input on {x.device}: give both on one device")
        return [tuple(t[i] for t in tensors) for i in range(rows)]

    # -- bringing torch.nn models over ---------------------------------------------------------
    @classmethod
    def from_torch(cls, module: nn.RNNBase, *, engine: str = "auto") -> "Recurrent":
        """An equal layer from a ``torch.nn.LSTM``, ``GRU`` or ``RNN``, weights copied.

        ``nn.GRU`` becomes the ``gru-cudnn`` cell, the one whose equations it computes. A module
        built with ``bias=False`` gives zero biases that do not train (``requires_grad=False``).
        """
        kinds = {c.torch_module: kind for kind, c in CELLS.items() if c.torch_module is not None}
        kind = kinds.get(type(module))
        if kind is None:
            raise TypeError(f"Recurrent.from_torch takes torch.nn.LSTM, GRU or RNN, got {type(module).__name__}")
        layer = cls(
            kind,
            module.input_size,
            module.hidden_size,
            num_layers=module.num_layers,
            bidirectional=module.bidirectional,
            dropout=module.dropout,
            batch_first=module.batch_first,
            engine=engine,
            **cell_class(kind).from_torch_options(module),
        )
        param = next(module.parameters())
        layer.to(device=param.device, dtype=param.dtype)  # before copying, so nothing is rounded
        p = dict(module.named_parameters())
        for layer_index in range(module.num_layers):
            for direction, cell in enumerate(layer.layer_cells(layer_index)):
                suffix = f"_l{layer_index}" + ("_reverse" if direction else "")
                zeros = torch.zeros_like(p[f"weight_ih{suffix}"][:, 0])
                cell.load_torch_weights(
                    TorchWeights(
                        p[f"weight_ih{suffix}"],
                        p[f"weight_hh{suffix}"],
                        p.get(f"bias_ih{suffix}", zeros),
                        p.get(f"bias_hh{suffix}", zeros),
                    )
                )
                if not module.bias:  # bias=False: the zero biases stay zero, as the module has none to train
                    for name, parameter in cell.named_parameters():
                        if name.startswith("bias"):
                            parameter.requires_grad_(False)
        return layer
