r"""Reference recurrent cells, written straight from their equations.

These cells are the truth of rnnkit: every fast engine (``rnnkit.engines``) is a separate piece of
code that tests prove equal to them, outputs and gradients, in float64.

Notation (the same everywhere in rnnkit)
----------------------------------------
=============  ====================================================================
``x<t>``       input at step t, shape (B, n_x)
``a<t>``       activation (hidden state, the cell's output) at step t, shape (B, n_a)
``c<t>``       memory cell; the GRU's ``c<t>`` equals ``a<t>``, the LSTM's does not
``c̃<t>``      candidate value for ``c<t>``
``Γu Γr Γf Γo``  update, relevance, forget and output gates, values in (0, 1)
``[p, q]``     concatenation along the feature axis
``*``          element-wise product; ``σ`` the logistic sigmoid
``B, T``       batch size, number of time steps
``n_x, n_a``   input size, hidden size
=============  ====================================================================

Parameter layout (shared by every engine)
-----------------------------------------
Each cell kind has a tuple of *blocks* (its gates and candidate). Each block owns ``n_a`` rows of

* ``weight``: shape ``(len(blocks) * n_a, n_a + n_x)``; the first ``n_a`` columns act on the
  previous state, the last ``n_x`` on ``x<t>``, so one block's rows are the course's
  ``W = [W_a | W_x]`` acting on ``[a<t-1>, x<t>]``;
* ``bias``: shape ``(len(blocks) * n_a,)``.

The block order follows ``torch.nn`` where a torch module exists (LSTM: u f c o as torch's i f g o),
so the native engine can hand our parameters to oneDNN / cuDNN without reordering.
Weights start uniform in ``(-1/sqrt(n_a), 1/sqrt(n_a))``, as in ``torch.nn``.

The cell contract
-----------------
A cell is an ``nn.Module`` with class attributes ``kind`` (its registry name), ``blocks`` and
``state_names`` and a ``forward(x_t, state) -> state`` where ``state`` is a tuple of tensors of shape
(B, n_a) ordered as ``state_names`` and ``state[0]`` is always ``a<t>``, the cell's output.
Register a new cell with :func:`register_cell`; that is the only place to touch: the reference
engine runs any registered cell, and faster engines say which kinds they support.

Example::

    >>> cell = make_cell("gru", input_size=3, hidden_size=4)
    >>> x_t, c_prev = torch.zeros(2, 3), torch.zeros(2, 4)
    >>> (c_t,) = cell(x_t, (c_prev,))
    >>> c_t.shape
    torch.Size([2, 4])
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Callable, ClassVar, NamedTuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._pytree import tree_leaves, tree_map_only, tree_structure, tree_unflatten
from torch.utils.hooks import RemovableHandle

from .errors import UsageError, registered

__all__ = [
    "CELLS",
    "Cell",
    "GRUCell",
    "GRUCuDNNCell",
    "LSTMCell",
    "LSTMState",
    "RNNCell",
    "RecurrentState",
    "SimpleGRUCell",
    "TorchWeights",
    "cell_class",
    "hidden_state",
    "make_cell",
    "map_state",
    "register_cell",
    "state_fields",
    "state_from_fields",
    "state_like",
    "state_tensors",
]


class LSTMState(NamedTuple):
    """The LSTM's state: activation ``a`` and memory cell ``c``, each (..., B, n_a)."""

    a: Tensor
    c: Tensor


RecurrentState = Union[Tensor, LSTMState]
"""What ``Recurrent`` takes and returns as its state, for L layers and D directions: one tensor
(L*D, B, n_a) for the cells whose state is a<t> alone (rnn, the GRUs), ``LSTMState(a, c)`` of two
such tensors for the LSTM. Callers never ask which: the functions below are the only place that
knows, so a state is detached, cloned, cut to beams or moved the same way whatever the cell.
A NamedTuple and a tensor are both pytrees (``torch.utils._pytree``), which does the work."""


def map_state(fn: Callable[[Tensor], Tensor], state: RecurrentState | None) -> RecurrentState | None:
    """The state with ``fn`` applied to each of its tensors, of the same type; None stays None.

    >>> map_state(Tensor.detach, LSTMState(torch.zeros(1, 2, 3), torch.ones(1, 2, 3))).c.shape
    torch.Size([1, 2, 3])
    """
    return tree_map_only(Tensor, fn, state)


def state_tensors(state: RecurrentState) -> tuple[Tensor, ...]:
    """The state's tensors, ordered as the cell's ``state_names``: a<t> first, then c<t> (LSTM)."""
    return tuple(tree_leaves(state))


def state_like(tensors: Sequence[Tensor], like: RecurrentState) -> RecurrentState:
    """``tensors`` (as ``state_tensors`` gives them) as a state of ``like``'s type."""
    return tree_unflatten(list(tensors), tree_structure(like))


def hidden_state(state: RecurrentState) -> Tensor:
    """a<t> of a state, (L*D, B, n_a): the tensor itself, or the LSTM's ``a``."""
    return state_tensors(state)[0]


def state_fields(state: RecurrentState) -> dict[str, Tensor]:
    """The state's tensors by name (``state_names``), plain for a checkpoint that loads with
    ``weights_only=True``: ``{"a": a}`` or ``{"a": a, "c": c}``."""
    return state._asdict() if isinstance(state, tuple) else {"a": state}


def state_from_fields(fields: dict[str, Tensor] | Tensor) -> RecurrentState:
    """The state ``state_fields`` stored, typed as the cell with those ``state_names`` types it
    (``Cell.public_state``). A lone tensor (how checkpoints stored a one-tensor state before) is
    taken as it is."""
    if isinstance(fields, Tensor):
        return fields
    names = tuple(fields)
    cell = next((c for c in CELLS.values() if c.state_names == names), None)
    if cell is None:
        raise ValueError(f"no cell has a state of {', '.join(names)}")
    return cell.public_state(tuple(fields.values()))


class TorchWeights(NamedTuple):
    """One layer-direction's parameters in ``torch.nn.RNNBase`` layout."""

    w_ih: Tensor  # (G * n_a, n_x)
    w_hh: Tensor  # (G * n_a, n_a)
    b_ih: Tensor  # (G * n_a,)
    b_hh: Tensor  # (G * n_a,)


CELLS: dict[str, type[Cell]] = {}


def register_cell(cls: type[Cell]) -> type[Cell]:
    """Class decorator: make ``cls`` available under ``cls.kind`` everywhere in rnnkit."""
    if cls.kind in CELLS:
        raise ValueError(f"a cell named {cls.kind!r} is already registered")
    CELLS[cls.kind] = cls
    return cls


def cell_class(kind: str) -> type[Cell]:
    """The registered cell class called ``kind``; a one-line error lists the known kinds."""
    return registered(CELLS, kind, "cell")


def make_cell(kind: str, input_size: int, hidden_size: int, **options) -> Cell:
    """Build the cell registered as ``kind``; ``options`` are that cell's own (see its docstring)."""
    return cell_class(kind)(input_size, hidden_size, **options)


_ZEROS: dict[tuple, Tensor] = {}


def _zeros_like(t: Tensor) -> Tensor:
    """A shared zero tensor of ``t``'s shape, dtype and device (torch's unused second bias): made
    once, not at every call, which on a GPU costs a launch per call."""
    key = (tuple(t.shape), t.dtype, t.device)
    if key not in _ZEROS:
        _ZEROS[key] = torch.zeros(t.shape, dtype=t.dtype, device=t.device)
    return _ZEROS[key]


class Cell(nn.Module):
    """Base class: parameters laid out as in the module docstring, and the cell contract."""

    kind: ClassVar[str]
    blocks: ClassVar[tuple[str, ...]]
    state_names: ClassVar[tuple[str, ...]] = ("a",)
    # The torch.nn module whose equations equal this cell's, with its mode name in torch's
    # functional RNN API ("LSTM", "GRU", "RNN_TANH", "RNN_RELU"); None when torch has no such cell.
    torch_module: ClassVar[type[nn.RNNBase] | None] = None

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise UsageError(
                f"{self.kind}: input_size and hidden_size must be positive, got {input_size} and {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        n_blocks = len(self.blocks)
        self.weight = nn.Parameter(torch.empty(n_blocks * hidden_size, hidden_size + input_size))
        self.bias = nn.Parameter(torch.empty(n_blocks * hidden_size))
        self._gate_hooks: OrderedDict[int, Callable[[Cell, str, Tensor], None]] = OrderedDict()  # register_gate_hook (weakly referenced by handles, as torch's)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    # -- views on the parameters, by the names the equations use -------------------------------
    @property
    def weight_a(self) -> Tensor:
        """Recurrent columns of ``weight`` (acting on the previous state): (G * n_a, n_a)."""
        return self.weight[:, : self.hidden_size]

    @property
    def weight_x(self) -> Tensor:
        """Input columns of ``weight`` (acting on ``x<t>``): (G * n_a, n_x)."""
        return self.weight[:, self.hidden_size :]

    def block(self, name: str) -> slice:
        """Row slice of ``weight`` and ``bias`` that belongs to block ``name``."""
        i = self.blocks.index(name)
        return slice(i * self.hidden_size, (i + 1) * self.hidden_size)

    def affine(self, name: str, *parts: Tensor) -> Tensor:
        """``W_name [parts...] + b_name``: one block applied to the concatenated ``parts``."""
        rows = self.block(name)
        return F.linear(torch.cat(parts, dim=-1), self.weight[rows], self.bias[rows])

    # -- the contract -----------------------------------------------------------------------------
    def forward(self, x_t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        raise NotImplementedError

    # -- observation points, for tools that look inside (rnnkit.analysis) ------------------------
    # A cell's state after each step is what ``forward`` returns: torch's ``register_forward_hook``
    # sees it. Its gates are intermediate values, so the cell reports them through ``observe``.
    def register_gate_hook(self, hook: Callable[[Cell, str, Tensor], None]) -> RemovableHandle:
        """Call ``hook(cell, name, value)`` with each gate the cell computes in ``forward`` (``name``:
        "update", "relevance", "forget" or "output"; ``value``: (B, n_a), still in the autograd
        graph), at every step the reference cell runs: engines that do not call ``forward`` (fused,
        native) report nothing. ``handle.remove()`` stops it, as for torch's module hooks."""
        handle = RemovableHandle(self._gate_hooks)
        self._gate_hooks[handle.id] = hook
        return handle

    def observe(self, name: str, value: Tensor) -> Tensor:
        """Report the gate ``name`` to the gate hooks, if any (see ``register_gate_hook``); returns
        ``value`` unchanged."""
        for hook in self._gate_hooks.values():
            hook(self, name, value)
        return value

    def options(self) -> dict:
        """Constructor options beyond the sizes, so that ``type(cell)(n_x, n_a, **options)`` rebuilds it."""
        return {}

    @classmethod
    def public_state(cls, tensors: tuple[Tensor, ...]) -> Tensor | LSTMState:
        """The state users see: a tensor for one-tensor states (an LSTMState for the LSTM)."""
        (a,) = tensors
        return a

    # -- the relation to torch.nn, used by Recurrent.from_torch and the native engine ------------
    @property
    def torch_mode(self) -> str | None:
        """Mode name in torch's functional RNN API when torch computes these equations, else None."""
        return None

    def torch_weights(self) -> TorchWeights:
        """This cell's parameters in torch.nn layout (differentiable views of ours).

        The default is the direct mapping, for cells whose blocks are in torch's order: torch's two
        biases only ever appear summed, so ours is b_ih and b_hh is zero."""
        self._check_torch_equivalent()
        # one split, not two slices: its backward is one concatenation, not two zero-filled scatters
        w_hh, w_ih = self.weight.split([self.hidden_size, self.input_size], dim=1)
        return TorchWeights(w_ih, w_hh, self.bias, _zeros_like(self.bias))

    @torch.no_grad()
    def load_torch_weights(self, w: TorchWeights) -> None:
        """Set this cell's parameters from torch.nn ones so that both compute the same function."""
        self._check_torch_equivalent()
        self.weight.copy_(torch.cat([w.w_hh, w.w_ih], dim=1))
        self.bias.copy_(w.b_ih + w.b_hh)

    def _check_torch_equivalent(self) -> None:
        if self.torch_mode is None:
            raise NotImplementedError(f"cell {self.kind!r} with options {self.options()} has no torch.nn equivalent")

    @classmethod
    def from_torch_options(cls, module: nn.RNNBase) -> dict:
        """Constructor options matching ``module``."""
        return {}

    def extra_repr(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options().items())
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}{opts}"


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}


@register_cell
class RNNCell(Cell):
    r"""Simple RNN cell.

    .. math::  a<t> = g(W_{aa} a<t-1> + W_{ax} x<t> + b_a) = g(W_a [a<t-1>, x<t>] + b_a)

    with ``g = tanh`` (default) or ``relu`` (``nonlinearity="relu"``).
    Blocks: ``a``. Equal to ``torch.nn.RNN`` with the same nonlinearity.
    """

    kind = "rnn"
    blocks = ("a",)
    torch_module = nn.RNN

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__(input_size, hidden_size)
        if nonlinearity not in ACTIVATIONS:
            raise UsageError(f"rnn: nonlinearity must be one of {', '.join(ACTIVATIONS)}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.g = ACTIVATIONS[nonlinearity]
        self.reset_parameters()

    def forward(self, x_t, state):
        (a_prev,) = state
        a = self.g(self.affine("a", a_prev, x_t))  # a<t> = g(Wa[a<t-1>, x<t>] + ba)
        return (a,)

    def options(self):
        return {"nonlinearity": self.nonlinearity}

    @property
    def torch_mode(self):
        return "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"

    @classmethod
    def from_torch_options(cls, module):
        return {"nonlinearity": module.nonlinearity}


@register_cell
class GRUCell(Cell):
    r"""The full GRU as the course writes it: the relevance gate acts *before* the recurrent product.

    .. math::
        Γu   &= σ(W_u [c<t-1>, x<t>] + b_u)

        Γr   &= σ(W_r [c<t-1>, x<t>] + b_r)

        c̃<t> &= \tanh(W_c [Γr * c<t-1>, x<t>] + b_c)

        c<t> &= Γu * c̃<t> + (1 - Γu) * c<t-1>,   a<t> = c<t>

    Blocks: ``u r c``. Needs two recurrent products per step (Γr must be known before the second),
    which is why cuDNN and torch.nn.GRU compute the ``gru-cudnn`` variant instead.
    """

    kind = "gru"
    blocks = ("u", "r", "c")

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.reset_parameters()

    def forward(self, x_t, state):
        (c_prev,) = state
        gamma_u = torch.sigmoid(self.affine("u", c_prev, x_t))  # Γu = σ(Wu[c<t-1>, x<t>] + bu)
        gamma_r = torch.sigmoid(self.affine("r", c_prev, x_t))  # Γr = σ(Wr[c<t-1>, x<t>] + br)
        c_tilde = torch.tanh(self.affine("c", gamma_r * c_prev, x_t))  # c̃ = tanh(Wc[Γr*c<t-1>, x<t>] + bc)
        c = gamma_u * c_tilde + (1 - gamma_u) * c_prev
        self.observe("update", gamma_u), self.observe("relevance", gamma_r)
        return (c,)


@register_cell
class SimpleGRUCell(Cell):
    r"""The course's simplified GRU: an update gate only.

    .. math::
        Γu   &= σ(W_u [c<t-1>, x<t>] + b_u)

        c̃<t> &= \tanh(W_c [c<t-1>, x<t>] + b_c)

        c<t> &= Γu * c̃<t> + (1 - Γu) * c<t-1>,   a<t> = c<t>

    Blocks: ``u c``.
    """

    kind = "gru-simple"
    blocks = ("u", "c")

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.reset_parameters()

    def forward(self, x_t, state):
        (c_prev,) = state
        gamma_u = torch.sigmoid(self.affine("u", c_prev, x_t))  # Γu = σ(Wu[c<t-1>, x<t>] + bu)
        c_tilde = torch.tanh(self.affine("c", c_prev, x_t))  # c̃ = tanh(Wc[c<t-1>, x<t>] + bc)
        c = gamma_u * c_tilde + (1 - gamma_u) * c_prev
        self.observe("update", gamma_u)
        return (c,)


@register_cell
class GRUCuDNNCell(Cell):
    r"""The GRU as torch.nn.GRU and cuDNN compute it: the relevance gate acts *after* the product.

    .. math::
        Γu   &= σ(W_u [c<t-1>, x<t>] + b_u)

        Γr   &= σ(W_r [c<t-1>, x<t>] + b_r)

        c̃<t> &= \tanh(W_{cx} x<t> + b_c + Γr * (W_{cc} c<t-1> + b_{cc}))

        c<t> &= Γu * c̃<t> + (1 - Γu) * c<t-1>,   a<t> = c<t>

    Blocks: ``r u c`` (torch's r z n). ``W_cc`` and ``W_cx`` are the recurrent and input columns of
    block ``c``; ``b_cc`` is the extra parameter ``bias_cc``. torch writes the update gate as
    ``z = 1 - Γu``, so its z rows are the negation of our u rows.
    """

    kind = "gru-cudnn"
    blocks = ("r", "u", "c")
    torch_module = nn.GRU

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.bias_cc = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def forward(self, x_t, state):
        (c_prev,) = state
        gamma_r = torch.sigmoid(self.affine("r", c_prev, x_t))  # Γr = σ(Wr[c<t-1>, x<t>] + br)
        gamma_u = torch.sigmoid(self.affine("u", c_prev, x_t))  # Γu = σ(Wu[c<t-1>, x<t>] + bu)
        rows, n_a = self.block("c"), self.hidden_size
        W_cc, W_cx = self.weight[rows, :n_a], self.weight[rows, n_a:]
        recurrent = F.linear(c_prev, W_cc, self.bias_cc)  # Wcc c<t-1> + bcc
        c_tilde = torch.tanh(F.linear(x_t, W_cx, self.bias[rows]) + gamma_r * recurrent)
        c = gamma_u * c_tilde + (1 - gamma_u) * c_prev
        self.observe("update", gamma_u), self.observe("relevance", gamma_r)
        return (c,)

    @property
    def torch_mode(self):
        return "GRU"

    def _torch_sign(self) -> Tensor:
        """+1 on the r and c rows, -1 on the u rows: torch's z = 1 - Γu = σ(-(pre-activation of Γu))."""
        sign = torch.ones(len(self.blocks) * self.hidden_size, 1, dtype=self.weight.dtype, device=self.weight.device)
        sign[self.block("u")] = -1
        return sign

    def torch_weights(self):
        sign = self._torch_sign()
        b_hh = torch.cat([torch.zeros_like(self.bias[: 2 * self.hidden_size]), self.bias_cc])
        return TorchWeights(self.weight_x * sign, self.weight_a * sign, self.bias * sign[:, 0], b_hh)

    @torch.no_grad()
    def load_torch_weights(self, w):
        sign = self._torch_sign()
        n = self.hidden_size
        self.weight.copy_(torch.cat([w.w_hh, w.w_ih], dim=1) * sign)
        bias = w.b_ih.clone()
        bias[: 2 * n] += w.b_hh[: 2 * n]  # r and z biases simply add; b_hn stays inside Γr * (...)
        self.bias.copy_(bias * sign[:, 0])
        self.bias_cc.copy_(w.b_hh[2 * n :])


@register_cell
class LSTMCell(Cell):
    r"""Long short-term memory: a memory cell c<t> separate from the activation a<t>.

    .. math::
        c̃<t> &= \tanh(W_c [a<t-1>, x<t>] + b_c)

        Γu   &= σ(W_u [a<t-1>, x<t>] + b_u)

        Γf   &= σ(W_f [a<t-1>, x<t>] + b_f)

        Γo   &= σ(W_o [a<t-1>, x<t>] + b_o)

        c<t> &= Γu * c̃<t> + Γf * c<t-1>

        a<t> &= Γo * \tanh(c<t>)

    Blocks: ``u f c o`` (torch's i f g o). With ``peepholes=True`` the gates also look at the
    memory cell (Gers & Schmidhuber 2000): ``p_u * c<t-1>`` is added inside Γu, ``p_f * c<t-1>``
    inside Γf and ``p_o * c<t>`` inside Γo, with ``peephole`` the (3, n_a) rows ``p_u p_f p_o``.
    State: ``LSTMState(a, c)``.
    """

    kind = "lstm"
    blocks = ("u", "f", "c", "o")
    state_names = ("a", "c")
    torch_module = nn.LSTM

    def __init__(self, input_size: int, hidden_size: int, peepholes: bool = False):
        super().__init__(input_size, hidden_size)
        if not isinstance(peepholes, bool):  # "no" is truthy: an LSTM with peepholes, unsaid
            raise UsageError(f"lstm: peepholes must be True or False, got {peepholes!r}")
        self.peepholes = peepholes
        if self.peepholes:
            self.peephole = nn.Parameter(torch.empty(3, hidden_size))
        self.reset_parameters()

    def forward(self, x_t, state):
        a_prev, c_prev = state
        c_tilde = torch.tanh(self.affine("c", a_prev, x_t))  # c̃ = tanh(Wc[a<t-1>, x<t>] + bc)
        pre_u = self.affine("u", a_prev, x_t)
        pre_f = self.affine("f", a_prev, x_t)
        if self.peepholes:
            p_u, p_f, _ = self.peephole
            pre_u = pre_u + p_u * c_prev
            pre_f = pre_f + p_f * c_prev
        gamma_u, gamma_f = torch.sigmoid(pre_u), torch.sigmoid(pre_f)
        c = gamma_u * c_tilde + gamma_f * c_prev  # c<t> = Γu*c̃<t> + Γf*c<t-1>
        pre_o = self.affine("o", a_prev, x_t)
        if self.peepholes:
            pre_o = pre_o + self.peephole[2] * c
        gamma_o = torch.sigmoid(pre_o)
        a = gamma_o * torch.tanh(c)  # a<t> = Γo*tanh(c<t>)
        self.observe("update", gamma_u), self.observe("forget", gamma_f), self.observe("output", gamma_o)
        return (a, c)

    def options(self):
        return {"peepholes": self.peepholes}

    @classmethod
    def public_state(cls, tensors):
        return LSTMState(*tensors)

    @property
    def torch_mode(self):
        return None if self.peepholes else "LSTM"  # torch.nn.LSTM has no peepholes

    @classmethod
    def from_torch_options(cls, module):
        if module.proj_size:
            raise ValueError("Recurrent.from_torch: LSTM with proj_size > 0 has no rnnkit equivalent")
        return {}
