r"""``rnnkit.Recurrent`` as ONNX nodes: ONNX's own ``RNN``, ``GRU`` and ``LSTM`` operators where their
equations are a cell's, a ``Scan`` over the cell's own equations where they are not.

How each cell's blocks map onto the operator's gates (ONNX writes ``W`` for the input columns, ``R``
for the recurrent ones, ``Wb``/``Rb`` for their biases, gates stacked per direction):

==============  =====================  ==================================================================
cell            operator               gates (ONNX order) from rnnkit's blocks
==============  =====================  ==================================================================
``rnn``         ``RNN`` (Tanh / Relu)  ``a``
``gru``         ``GRU``,               ``z r h`` = ``-u r c``: ONNX's ``H = (1 - z) h + z H<t-1>``, so
                linear_before_reset=0  z = 1 - Γu = σ(-(pre-activation of Γu)); r acts before the product
``gru-cudnn``   ``GRU``,               ``z r h`` = ``-u r c``; r multiplies ``R_h H<t-1> + Rb_h`` with
                linear_before_reset=1  ``Rb_h`` = ``bias_cc``
``lstm``        ``LSTM``               ``i o f c`` = ``u o f c``; peepholes as ``P`` = ``p_u p_o p_f``
``gru-simple``  ``Scan``               c<t> = Γu c̃ + (1 - Γu) c<t-1> written out node by node
==============  =====================  ==================================================================

Padded batches: the operators take ``sequence_lens`` (outputs past a sequence's end are zero, the
final state is each sequence's own, the backward direction starts at each sequence's own last
step); the ``Scan`` path does the same with a mask and ``ReverseSequence``. Rows of the state are
ordered as rnnkit's: layer by layer, forward direction first.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from onnx import helper

from ..cells import Cell
from ..errors import UsageError
from ..recurrent import Recurrent
from .graph import BOOL, FLOAT, GraphBuilder, as_numpy

# -- the operators' weights, per cell kind ------------------------------------------------------------


def _rows(cell: Cell, *blocks: str, sign: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W, R, Wb) of one direction: the rows of ``blocks`` in that order, negated where ``sign`` says."""
    sign = sign or {}
    W, R, b = [], [], []
    for name in blocks:
        rows, s = cell.block(name), sign.get(name, 1.0)
        W.append(s * as_numpy(cell.weight_x[rows], np.float64))  # (H, n_x)
        R.append(s * as_numpy(cell.weight_a[rows], np.float64))  # (H, H)
        b.append(s * as_numpy(cell.bias[rows], np.float64))  # (H,)
    return np.concatenate(W), np.concatenate(R), np.concatenate(b)


def _rnn(cell):
    W, R, Wb = _rows(cell, "a")
    return "RNN", W, R, np.concatenate([Wb, np.zeros_like(Wb)]), None, {"activations": [cell.nonlinearity.capitalize()]}


def _gru(cell):
    W, R, Wb = _rows(cell, "u", "r", "c", sign={"u": -1.0})  # z = 1 - Γu
    return "GRU", W, R, np.concatenate([Wb, np.zeros_like(Wb)]), None, {"linear_before_reset": 0}


def _gru_cudnn(cell):
    W, R, Wb = _rows(cell, "u", "r", "c", sign={"u": -1.0})
    H = cell.hidden_size
    Rb = np.concatenate([np.zeros(2 * H), as_numpy(cell.bias_cc, np.float64)])  # Rb_h sits inside r * (...)
    return "GRU", W, R, np.concatenate([Wb, Rb]), None, {"linear_before_reset": 1}


def _lstm(cell):
    W, R, Wb = _rows(cell, "u", "o", "f", "c")
    P = None
    if cell.peepholes:
        p_u, p_f, p_o = as_numpy(cell.peephole, np.float64)
        P = np.concatenate([p_u, p_o, p_f])  # ONNX order i o f
    return "LSTM", W, R, np.concatenate([Wb, np.zeros_like(Wb)]), P, {}


# cell kind -> one direction's (op_type, W, R, B, P or None, attributes)
OPERATORS: dict[str, Callable] = {"rnn": _rnn, "gru": _gru, "gru-cudnn": _gru_cudnn, "lstm": _lstm}


# -- Scan bodies: one step of a cell the operators cannot express --------------------------------------


def _gru_simple_step(g: GraphBuilder, cell: Cell, x_t: str, state: list[str]) -> list[str]:
    (c_prev,) = state  # (B, H)
    W_u, b_u = g.weight("W_u", cell.weight[cell.block("u")].t()), g.weight("b_u", cell.bias[cell.block("u")])
    W_c, b_c = g.weight("W_c", cell.weight[cell.block("c")].t()), g.weight("b_c", cell.bias[cell.block("c")])
    joined = g.op("Concat", c_prev, x_t, axis=1)  # [c<t-1>, x<t>]: (B, H + n_x)
    gamma_u = g.op("Sigmoid", g.op("Add", g.op("MatMul", joined, W_u), b_u))  # Γu = σ(Wu[c<t-1>, x<t>] + bu)
    c_tilde = g.op("Tanh", g.op("Add", g.op("MatMul", joined, W_c), b_c))  # c̃ = tanh(Wc[c<t-1>, x<t>] + bc)
    keep = g.op("Sub", g.const(1.0, np.float32), gamma_u)  # 1 - Γu
    return [g.op("Add", g.op("Mul", gamma_u, c_tilde), g.op("Mul", keep, c_prev))]  # c<t> = Γu*c̃ + (1-Γu)*c<t-1>


# cell kind -> one step (builder, cell, x_t, state names) -> new state names
SCAN_STEPS: dict[str, Callable] = {"gru-simple": _gru_simple_step}


def supported_cells() -> list[str]:
    return [*OPERATORS, *SCAN_STEPS]


# -- a whole stack ------------------------------------------------------------------------------------


def step_mask(g: GraphBuilder, lengths: str, T: str) -> str:
    """(T, B, 1) boolean mask, True on real steps, from int32 ``lengths`` (B,) and the scalar T."""
    steps = g.op("Range", g.const(0, np.int32), g.op("Cast", T, to=6), g.const(1, np.int32))  # (T,) int32
    below = g.op("Less", g.op("Unsqueeze", steps, g.const([1])), g.op("Unsqueeze", lengths, g.const([0])))  # (T, B)
    return g.op("Unsqueeze", below, g.const([2]))


def time_steps(g: GraphBuilder, x: str) -> str:
    """The scalar number of steps T of a (T, B, ...) value."""
    return g.op("Squeeze", g.op("Slice", g.op("Shape", x), g.const([0]), g.const([1])), g.const([0]))


def _scan_direction(g: GraphBuilder, cell: Cell, x: str, lengths: str, mask: str, initial: list[str], reverse: bool):
    """One direction through a Scan over ``SCAN_STEPS[cell.kind]``: outputs (T, B, H) and finals (B, H)."""
    if reverse:  # read each sequence from its own last step: reverse within lengths, run forward
        x = g.op("ReverseSequence", x, g.op("Cast", lengths, to=7), batch_axis=1, time_axis=0)
    body = g.child("step")
    names = [body.fresh("state") for _ in initial]
    x_t, m_t = body.fresh("x_t"), body.fresh("m_t")
    for name in names:
        body.input(name, FLOAT, ["B", cell.hidden_size])
    body.input(x_t, FLOAT, ["B", cell.input_size])
    body.input(m_t, BOOL, ["B", 1])
    new = SCAN_STEPS[cell.kind](body, cell, x_t, names)
    held = [body.op("Where", m_t, n, old) for n, old in zip(new, names)]  # padding: the state stays
    y_t = body.op("Where", m_t, new[0], body.const(0.0, np.float32))  # padding: output zero
    for name in held:
        body.output(body.fresh("state_out"), name, FLOAT, ["B", cell.hidden_size])
    body.output(body.fresh("y_t"), y_t, FLOAT, ["B", cell.hidden_size])
    results = g.op("Scan", *initial, x, mask, outputs=len(initial) + 1, num_scan_inputs=2, body=body.graph())
    finals, y = results[:-1], results[-1]
    if reverse:
        y = g.op("ReverseSequence", y, g.op("Cast", lengths, to=7), batch_axis=1, time_axis=0)
    return y, finals


def recurrent(g: GraphBuilder, layer: Recurrent, x: str, lengths: str, state: list[str]) -> tuple[str, list[str]]:
    """Nodes computing ``layer(x, lengths, state)``.

    Args:
        x: (T, B, n_x) float; lengths: (B,) int32; state: one (L*D, B, H) value per state name
        (``a``, and ``c`` for the LSTM).

    Returns the outputs (T, B, D*H) and one final-state value (L*D, B, H) per state name.
    """
    if layer.batch_first:
        raise UsageError("export: a batch-first Recurrent layer is not supported (rnnkit's models are time-major)")
    if layer.initial_state is not None:
        raise UsageError("export: a learned initial state is not supported yet")
    kind, D, H = layer.cell_kind, layer.num_directions, layer.hidden_size
    if kind not in OPERATORS and kind not in SCAN_STEPS:
        raise UsageError(f"export: no ONNX form for cell {kind!r} (these have one: {', '.join(supported_cells())})")
    finals: list[list[str]] = [[] for _ in state]
    mask = step_mask(g, lengths, time_steps(g, x)) if kind in SCAN_STEPS else None
    for index in range(layer.num_layers):
        cells = layer.layer_cells(index)
        rows = [g.op("Slice", s, g.const([index * D]), g.const([(index + 1) * D]), g.const([0])) for s in state]  # (D, B, H)
        if kind in OPERATORS:
            parts = [OPERATORS[kind](cell) for cell in cells]
            op_type, attributes = parts[0][0], dict(parts[0][5])
            if "activations" in attributes:
                attributes["activations"] = attributes["activations"] * D
            inputs = [x, g.weight("W", np.stack([p[1] for p in parts])), g.weight("R", np.stack([p[2] for p in parts]))]
            inputs += [g.weight("B", np.stack([p[3] for p in parts])), lengths, rows[0]]
            if op_type == "LSTM":
                inputs.append(rows[1])
                if parts[0][4] is not None:
                    inputs.append(g.weight("P", np.stack([p[4] for p in parts])))
            direction = "bidirectional" if D == 2 else "forward"
            results = g.op(op_type, *inputs, outputs=1 + len(state), hidden_size=H, direction=direction, **attributes)
            y = g.op("Transpose", results[0], perm=[0, 2, 1, 3])  # (T, D, B, H) -> (T, B, D, H)
            x = g.op("Reshape", y, g.const([0, 0, D * H]))  # (T, B, D*H)
            for i, final in enumerate(results[1:]):
                finals[i].append(final)  # (D, B, H)
        else:
            outputs = []
            for direction, cell in enumerate(cells):
                initial = [g.op("Squeeze", r_, g.const([0])) for r_ in
                           (g.op("Slice", r, g.const([direction]), g.const([direction + 1]), g.const([0])) for r in rows)]
                y, last = _scan_direction(g, cell, x, lengths, mask, initial, reverse=direction == 1)
                outputs.append(y)
                for i, final in enumerate(last):
                    finals[i].append(g.op("Unsqueeze", final, g.const([0])))  # (1, B, H)
            x = outputs[0] if D == 1 else g.op("Concat", *outputs, axis=2)
    return x, [parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=0) for parts in finals]


def state_names(layer: Recurrent) -> tuple[str, ...]:
    return layer.cells["l0"].state_names


@torch.no_grad()
def recurrent_model(layer: Recurrent):
    """A standalone ONNX model of ``layer`` alone: inputs ``x`` (T, B, n_x), ``lengths`` (B,) int32 and
    the initial state (``a``, and ``c`` for the LSTM: (L*D, B, H)); outputs ``outputs`` (T, B, D*H) and
    the final state (``a_out``, ``c_out``). For tests and for people who export a layer of their own."""
    g = GraphBuilder("recurrent")
    rows = layer.num_layers * layer.num_directions
    x = g.input("x", FLOAT, ["T", "B", layer.input_size])
    lengths = g.input("lengths", helper.np_dtype_to_tensor_dtype(np.dtype(np.int32)), ["B"])
    state = [g.input(name, FLOAT, [rows, "B", layer.hidden_size]) for name in state_names(layer)]
    outputs, finals = recurrent(g, layer, x, lengths, state)
    g.output("outputs", outputs, FLOAT, ["T", "B", layer.num_directions * layer.hidden_size])
    for name, final in zip(state_names(layer), finals):
        g.output(f"{name}_out", final, FLOAT, [rows, "B", layer.hidden_size])
    return g.model(f"rnnkit Recurrent: {layer.extra_repr()}")
