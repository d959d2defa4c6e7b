"""Reusable work buffers for the fused engine.

A training step of one recurrent layer needs tens of megabytes of (T, B, ...) buffers. Freshly
allocated memory of that size comes straight from the operating system, and touching it for the
first time costs a page fault per 4 KiB: on a 2-core machine that alone was a third of an LSTM
step at B=32, T=128, n_a=256. The pool keeps released buffers and hands them out again.

Buffers are flat storage reused for any shape that fits. Only buffers that never reach the caller
are pooled (gates, memory cells, gradients of pre-activations); outputs are always fresh tensors.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor


class Workspace:
    """A pool of flat buffers per (dtype, device), with a cap on the bytes it keeps."""

    def __init__(self, max_bytes: int = 2 << 30):
        self.max_bytes = max_bytes
        self._free: list[Tensor] = []
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], like: Tensor, zero: bool = False) -> Tensor:
        """A contiguous tensor of ``shape`` with ``like``'s dtype and device (zero-filled if asked)."""
        numel = 1
        for size in shape:
            numel *= size
        if _capturing(like):  # memory of a CUDA graph being captured must stay the graph's own
            out = torch.empty(shape, dtype=like.dtype, device=like.device)
            return out.zero_() if zero else out
        with self._lock:
            fits = [
                i
                for i, buf in enumerate(self._free)
                if buf.dtype == like.dtype and buf.device == like.device and numel <= buf.numel() <= 2 * numel
            ]
            flat = self._free.pop(min(fits, key=lambda i: self._free[i].numel())) if fits else None
        if flat is None:
            flat = torch.empty(numel, dtype=like.dtype, device=like.device)
        out = flat[:numel].view(shape)
        return out.zero_() if zero else out

    def give_back(self, buffers: list[Tensor]) -> None:
        """Return buffers obtained from :meth:`take`; they must no longer be used by the caller."""
        if buffers and _capturing(buffers[0]):
            return
        with self._lock:
            for buf in buffers:
                # an inference tensor (made under torch.inference_mode) has no _base to return to and may
                # not be written outside that mode: it is dropped, not pooled
                if buf.is_inference():
                    continue
                self._free.append(buf._base if buf._base is not None else buf)
            kept, total = [], 0
            for buf in reversed(self._free):  # keep the most recent ones within the cap
                size = buf.numel() * buf.element_size()
                if total + size <= self.max_bytes:
                    kept.append(buf)
                    total += size
            self._free = kept[::-1]

    def clear(self) -> None:
        """Drop every pooled buffer."""
        with self._lock:
            self._free = []


def _capturing(like: Tensor) -> bool:
    return like.device.type == "cuda" and torch.cuda.is_current_stream_capturing()


WORKSPACE = Workspace()
