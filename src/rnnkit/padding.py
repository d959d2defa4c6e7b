"""Variable-length batches: sequences padded to a common length T, with their true lengths.

A batch is time-major, ``x`` of shape (T, B, ...), and ``lengths[b]`` says how many leading steps
of column b are real. Steps ``t >= lengths[b]`` are padding: they must never influence a real step,
and recurrent outputs there are zero.

The backward direction of a bidirectional layer reads each sequence from its *own* last real step
back to its first. :func:`reverse_within_lengths` reorders the time axis that way, so a backward
direction is a forward run over reordered inputs::

    lengths = [4, 2]          column 0: x0 x1 x2 x3        column 1: y0 y1 _ _
    reversed                  column 0: x3 x2 x1 x0        column 1: y1 y0 _ _
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["check_lengths", "length_mask", "reverse_within_lengths", "batch_sizes"]


def check_lengths(lengths: Tensor | Sequence[int] | None, T: int, B: int, device: torch.device) -> Tensor | None:
    """Validate ``lengths`` for a (T, B, ...) batch; return them as an int64 tensor on ``device``.

    Returns None when there is no padding (no lengths given, or every length equals T), which lets
    the engines take their unpadded fast path.
    """
    if lengths is None:
        return None
    state_like = isinstance(lengths, Tensor) and lengths.dim() > 1 and lengths.is_floating_point()  # torch.nn.GRU's h0 (L, B, n_a)
    if state_like or isinstance(lengths, (tuple, list)) and any(isinstance(item, Tensor) and item.dim() > 0 for item in lengths):
        # torch.nn.LSTM's (h0, c0) given in lengths' place (forward's second argument): "only one
        # element tensors can be converted to Python scalars", naming neither
        raise ValueError("lengths must be one length per sequence; an initial state, such as torch.nn.GRU's h0 or torch.nn.LSTM's (h0, c0), "
                         "is passed as state= (rnnkit's layer takes forward(x, lengths=None, state=None))")
    if isinstance(lengths, Tensor) and lengths.device.type == "meta":
        raise ValueError("lengths are on the meta device, which holds no values; give them on the CPU or the input's device")
    try:
        lengths = torch.as_tensor(lengths)
    except (TypeError, RuntimeError, ValueError, OverflowError):  # "abc", [None, 2], 2**70: torch's "Could not infer dtype of NoneType"
        raise ValueError(f"lengths must be one integer length per sequence, got {str(lengths)[:60]}") from None
    if lengths.dim() != 1 or lengths.shape[0] != B:
        raise ValueError(f"lengths must have shape ({B},) for a batch of {B} sequences, got {tuple(lengths.shape)}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:  # True is no length of 1
        raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
    lengths_cpu = lengths.to("cpu", torch.int64)
    if B and (int(lengths_cpu.min()) < 1 or int(lengths_cpu.max()) > T):
        raise ValueError(
            f"lengths must lie in [1, {T}] (T = number of time steps), got min {int(lengths_cpu.min())}, "
            f"max {int(lengths_cpu.max())}"
        )
    if B == 0 or bool((lengths_cpu == T).all()):
        return None
    return lengths_cpu.to(device)


def length_mask(lengths: Tensor, T: int) -> Tensor:
    """(T, B, 1) boolean mask, True on real steps."""
    steps = torch.arange(T, device=lengths.device)[:, None]  # (T, 1)
    return (steps < lengths[None, :])[..., None]  # (T, B, 1)


def reverse_within_lengths(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each column of the (T, B, ...) tensor ``x`` within its own length; padding stays put.

    The reordering is its own inverse, so it also maps a backward direction's outputs back.

    Example (the module docstring's picture; a (T, B) = (4, 2) batch, column 1 two steps long)::

        >>> x = torch.tensor([[0, 10], [1, 11], [2, -1], [3, -1]])
        >>> reverse_within_lengths(x, torch.tensor([4, 2])).t().tolist()
        [[3, 2, 1, 0], [11, 10, -1, -1]]
    """
    if lengths is None:
        return x.flip(0)
    T, B = x.shape[:2]
    steps = torch.arange(T, device=x.device)[:, None]  # (T, 1)
    source = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (T, B)
    source = source.view(T, B, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, source)


def batch_sizes(lengths: Tensor, T: int) -> list[int]:
    """For lengths sorted in descending order: how many sequences are still running at each step."""
    steps = torch.arange(T)[:, None]  # (T, 1)
    return (steps < lengths.cpu()[None, :]).sum(dim=1).tolist()
