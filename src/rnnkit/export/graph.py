"""A small builder for ONNX graphs: named values, initializers from tensors, one call per node.

Graphs are written node by node with ``onnx.helper`` from rnnkit's weights rather than traced by
``torch.onnx.export``: tracing would unroll rnnkit's Python time loops into a graph of fixed length,
while ONNX's own ``RNN``/``GRU``/``LSTM`` operators (and ``Scan`` for cells they cannot express) keep
the sequence length and the batch size dynamic.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18  # every operator used here at its opset-18 version (Reduce* take their axes as an input)

FLOAT, INT64, INT32, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL


def as_numpy(value, dtype=np.float32) -> np.ndarray:
    """A torch tensor, numpy array or list as a contiguous numpy array of ``dtype``."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().double().numpy() if value.is_floating_point() else value.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(value, dtype=dtype))


class GraphBuilder:
    """Collects nodes, initializers, inputs and outputs of one ONNX graph; names are unique across
    a builder and the subgraphs (``Scan`` bodies) made from it with ``child``."""

    def __init__(self, name: str, counter=None):
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._counter = counter if counter is not None else itertools.count()
        self._constants: dict[tuple, str] = {}

    def child(self, name: str) -> "GraphBuilder":
        return GraphBuilder(name, self._counter)

    def fresh(self, hint: str) -> str:
        return f"{hint}_{next(self._counter)}"

    # -- values -----------------------------------------------------------------------------------
    def weight(self, hint: str, value) -> str:
        """A float32 initializer holding ``value`` (a torch tensor or array)."""
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(as_numpy(value), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        """A small constant (shapes, axes, indices), shared between nodes that ask for the same one."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            name = self.fresh("const")
            self.initializers.append(numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, name: str, value: str, elem_type: int = FLOAT, shape: list | None = None) -> None:
        """Expose ``value`` as the graph output ``name`` (through an Identity, so any value can be one)."""
        self.nodes.append(helper.make_node("Identity", [value], [name]))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    # -- nodes ------------------------------------------------------------------------------------
    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attributes):
        """Add one node; returns its output name (or a list of ``outputs`` names)."""
        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attributes))
        return names[0] if outputs == 1 else names

    def linear(self, x: str, layer) -> str:
        """``x W^T + b`` for a ``torch.nn.Linear`` (x of any rank; the last axis is the feature axis)."""
        y = self.op("MatMul", x, self.weight("W", layer.weight.t()))
        return self.op("Add", y, self.weight("b", layer.bias)) if layer.bias is not None else y

    def graph(self) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)

    def model(self, doc: str = "") -> onnx.ModelProto:
        model = helper.make_model(self.graph(), opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnnkit")
        model.doc_string = doc
        onnx.checker.check_model(model, full_check=True)
        return model
