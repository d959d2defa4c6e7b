"""The native engine: torch's own RNN kernels (oneDNN on the CPU, cuDNN on NVIDIA GPUs).

Only for cells whose equations torch computes: ``rnn``, ``gru-cudnn`` and ``lstm`` without
peepholes. Each cell hands over its parameters in torch layout (``Cell.torch_weights``), so the
parameters stay ours and gradients flow back to them.
"""

from __future__ import annotations

import warnings

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .base import Engine

# device type -> hand torch one flat weight buffer (benchmarks/gpu.py times both on a GPU)
FLAT_WEIGHTS = {"cuda": True, "cpu": False}

# torch's functional RNN entry points, by mode name (as torch.nn.RNNBase calls them)
TORCH_RNN = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}


class NativeEngine(Engine):
    name = "native"

    def unsupported(self, cell):
        if cell.torch_mode is None:
            return f"torch.nn has no cell computing {cell.kind!r} with options {cell.options()}"
        return None

    def run_layer(self, cells, x, lengths, states):
        mode = cells[0].torch_mode
        rnn = TORCH_RNN[mode]
        # All weights as views of one buffer in torch's layout (w_ih, w_hh, b_ih, b_hh per cell), as
        # flatten_parameters() leaves torch.nn's: cuDNN then uses the buffer as it is, where separate
        # weights (ours are column slices of one [W_a | W_x] matrix) are copied into one at every call.
        # On the CPU (oneDNN) separate contiguous weights are faster.
        separate = [w for cell in cells for w in cell.torch_weights()]
        if FLAT_WEIGHTS.get(x.device.type, False):
            flat = torch.cat([w.reshape(-1) for w in separate])
            weights = [chunk.view(w.shape) for chunk, w in zip(flat.split([w.numel() for w in separate]), separate)]
        else:
            weights = [w.contiguous() for w in separate]
        # torch wants each state tensor stacked over directions: (D, B, n_a)
        hx = tuple(torch.stack(parts) if len(parts) > 1 else parts[0].unsqueeze(0) for parts in zip(*states))  # a view when one direction
        hx_arg = hx if mode == "LSTM" else hx[0]
        bidirectional = len(cells) == 2
        train = torch.is_grad_enabled()  # cuDNN keeps what backward needs only in training mode
        with warnings.catch_warnings():
            # cuDNN would like one flat weight buffer; ours are separate parameters.
            warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
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
