"""The native engine: torch's own RNN kernels (oneDNN on the CPU, cuDNN on NVIDIA GPUs).

Only for cells whose equations torch computes: ``rnn``, ``gru-cudnn`` and ``lstm`` without
peepholes. Each cell hands over its parameters in torch layout (``Cell.torch_weights``), so the
parameters stay ours and gradients flow back to them.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .base import Engine

# device type -> hand torch one flat weight buffer (benchmarks/gpu.py times both on a GPU)
FLAT_WEIGHTS = {"cuda": True, "cpu": False}

# torch's functional RNN entry points, by mode name (as torch.nn.RNNBase calls them)
TORCH_RNN = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}


class FlatWeights(torch.autograd.Function):
    """The weights as views of one buffer in torch's layout (w_ih, w_hh, b_ih, b_hh per cell), as
    flatten_parameters() leaves torch.nn's, made in one autograd node. cuDNN uses such a buffer as it
    is; separate weights (ours are column slices of one [W_a | W_x] matrix) it would copy into one at
    every call.

    Each view's gradient is its source's, so backward passes the gradients through. As torch ops
    (reshape, cat, split, view) the same layout cost 19 more autograd nodes for a bidirectional
    layer, and at small shapes a GPU training step waits on the host, where every node costs time
    twice (benchmarks/native_host.py)."""

    @staticmethod
    def forward(ctx, *weights: Tensor) -> tuple[Tensor, ...]:
        buffer = torch.cat([w.reshape(-1) for w in weights])  # (Σ numel,)
        return tuple(chunk.view(w.shape) for chunk, w in zip(buffer.split([w.numel() for w in weights]), weights))

    @staticmethod
    def backward(ctx, *grads: Tensor) -> tuple[Tensor, ...]:
        return grads


@contextlib.contextmanager
def _separate_weights_are_meant():
    """Silence cuDNN's advice to use one flat weight buffer when separate weights are chosen. (With
    the flat buffer the warning stays audible: it would mean the buffer missed cuDNN's layout.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
        yield


class NativeEngine(Engine):
    name = "native"

    def unsupported(self, cell):
        if cell.torch_mode is None:
            return f"torch.nn has no cell computing {cell.kind!r} with options {cell.options()}"
        return None

    def run_layer(self, cells, x, lengths, states):
        mode = cells[0].torch_mode
        rnn = TORCH_RNN[mode]
        flat = FLAT_WEIGHTS.get(x.device.type, False)
        separate = [w for cell in cells for w in cell.torch_weights()]
        # on the CPU (oneDNN) separate contiguous weights are faster
        weights = FlatWeights.apply(*separate) if flat else [w.contiguous() for w in separate]
        # torch wants each state tensor stacked over directions: (D, B, n_a)
        hx = tuple(torch.stack(parts) if len(parts) > 1 else parts[0].unsqueeze(0) for parts in zip(*states))  # a view when one direction
        hx_arg = hx if mode == "LSTM" else hx[0]
        bidirectional = len(cells) == 2
        train = torch.is_grad_enabled()  # cuDNN keeps what backward needs only in training mode
        quiet = x.is_cuda and not flat  # only cuDNN warns about separate weights
        with _separate_weights_are_meant() if quiet else contextlib.nullcontext():
            if lengths is None:
                out, *finals = rnn(x, hx_arg, weights, True, 1, 0.0, train, bidirectional, False)
            else:
                packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
                hx_sorted = tuple(h.index_select(1, packed.sorted_indices) for h in hx)
                hx_arg = hx_sorted if mode == "LSTM" else hx_sorted[0]
                data, *finals = rnn(packed.data, packed.batch_sizes, hx_arg, weights, True, 1, 0.0, train, bidirectional)
                packed_out = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
                out, _ = pad_packed_sequence(packed_out, total_length=x.shape[0])
                finals = [h.index_select(1, packed.unsorted_indices) for h in finals]
        # finals: one (D, B, n_a) tensor per state name -> one state tuple per direction
        return out, [tuple(h[d] for h in finals) for d in range(len(cells))]
