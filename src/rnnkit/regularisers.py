r"""The regularisers the field uses for recurrent networks (Merity et al. 2017, "Regularizing and
Optimizing LSTM Language Models", the AWD-LSTM; reference code: salesforce/awd-lstm-lm). Each is
training-only: in eval mode every one of them is the identity.

* DropConnect on the recurrent weights (``weight_drop`` of ``rnnkit.Recurrent``, Wan et al. 2013):
  each entry of W_a, the columns of a cell's ``weight`` that act on a<t-1>, is zeroed with
  probability p and the kept ones scaled by 1/(1-p); one mask per forward pass (per batch), shared
  by every time step. The input columns W_x and the biases are kept whole::

      W̃_a = W_a ⊙ M / (1 - p),   M_ij ~ Bernoulli(1 - p)

* Locked (variational) dropout (``LockedDropout``, Gal & Ghahramani 2016): one mask per sequence
  and feature, the same at every time step, on a (T, B, F) tensor: m ~ Bernoulli(1 - p)^(1, B, F).
* Embedding dropout (``Embedding``, Gal & Ghahramani 2016): whole rows of the embedding matrix --
  whole words -- dropped per batch, the kept rows scaled by 1/(1-p); a dropped word's embedding is
  zero at every occurrence in the batch.
* Activation regularisation (AR) and temporal activation regularisation (TAR) on a language
  model's last layer (``activation_penalty``)::

      AR  = α · mean_t,j (m ⊙ a<t>)_j²            m: the output dropout's mask (the dropped outputs)
      TAR = β · mean_t,j (a<t> - a<t-1>)_j²        on the un-dropped outputs

A model that runs its recurrent layers one step at a time (a decoder with input feeding) calls
them once per step; ``same_masks(model)`` makes every regulariser draw its mask once for the whole
``with`` block, so that one sequence still sees one mask.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import UsageError
from .padding import check_lengths

__all__ = ["Embedding", "LockedDropout", "MaskHolder", "activation_penalty", "check_probability", "drop_connect", "make_dropout", "same_masks"]


# their model settings, defaults (off) and help: rnnkit.tasks.spec (RECURRENT_REGULARISERS ..., MODEL_SETTINGS), read without torch


def check_probability(name: str, p: float) -> float:
    """``p`` when it lies in [0, 1); else a one-line ``UsageError`` naming the option."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise UsageError(f"{name} must lie in [0, 1), got {p!r}")
    return float(p)


class MaskHolder:
    """A module that draws dropout masks. Inside ``same_masks`` it keeps each mask it draws (by
    ``key``) and hands the same one out again, so that a model run one step at a time sees one
    mask per sequence."""

    _held: dict | None = None

    def draw_mask(self, key, shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
        """A mask of ``shape``: 0 with probability p, else 1/(1-p); in ``like``'s dtype and device."""
        if self._held is not None and key in self._held:
            return self._held[key]
        mask = like.new_empty(shape).bernoulli_(1 - p).div_(1 - p)
        if self._held is not None:
            self._held[key] = mask
        return mask


@contextmanager
def same_masks(model: nn.Module):
    """Every ``MaskHolder`` in ``model`` draws each of its masks once while the block runs."""
    holders = [m for m in model.modules() if isinstance(m, MaskHolder)]
    for m in holders:
        m._held = {}
    try:
        yield
    finally:
        for m in holders:
            m._held = None


def drop_connect(weight: Tensor, hidden_size: int, mask: Tensor) -> Tensor:
    """A cell's ``weight`` (G·n_a, n_a + n_x) with its recurrent columns W_a multiplied by ``mask``
    (G·n_a, n_a), already scaled by 1/(1-p). The gradient reaches W_a only through kept entries."""
    w_a, w_x = weight[:, :hidden_size], weight[:, hidden_size:]  # (G·n_a, n_a), (G·n_a, n_x)
    return torch.cat([w_a * mask, w_x], dim=1)  # (G·n_a, n_a + n_x)


class LockedDropout(MaskHolder, nn.Module):
    """Dropout with one mask per sequence, shared over time (variational dropout).

    Input (T, B, F), time-major: the mask is (1, B, F). A (B, F) input (a single step, or a
    pooled sentence vector) gets a (B, F) mask; inside ``same_masks`` that mask is kept for the
    following steps. Eval mode, or p = 0: the identity.
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = check_probability("dropout", p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = (1, *x.shape[1:]) if x.dim() == 3 else tuple(x.shape)
        return x * self.draw_mask(shape, shape, self.p, x)  # mask broadcast over time

    def extra_repr(self) -> str:
        return f"p={self.p}"


def make_dropout(p: float, locked: bool) -> nn.Module:
    """Locked (one mask per sequence) or ordinary (one mask per element) dropout of probability p."""
    return LockedDropout(p) if locked else nn.Dropout(p)


class Embedding(MaskHolder, nn.Embedding):
    """``torch.nn.Embedding`` with embedding dropout: in training, each row of the matrix (each
    word of the vocabulary) is dropped with probability ``dropout`` for the whole call and the kept
    rows scaled by 1/(1-p). Same parameters (``weight``) as ``nn.Embedding``, so checkpoints of
    either load into the other.

    Example::

        >>> e = Embedding(100, 8, dropout=0.1).train()
        >>> x = e(torch.tensor([[3, 3], [5, 3]]))   # word 3 is zero everywhere or nowhere
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, dropout: float = 0.0, **options):
        super().__init__(num_embeddings, embedding_dim, **options)
        self.dropout = check_probability("embedding_dropout", dropout)

    def forward(self, ids: Tensor) -> Tensor:
        if not self.training or self.dropout == 0.0:
            return super().forward(ids)
        mask = self.draw_mask("rows", (self.num_embeddings, 1), self.dropout, self.weight)  # (V, 1): whole words
        weight = self.weight * mask  # (V, E)
        return F.embedding(ids, weight, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse)


def activation_penalty(a: Tensor, dropped: Tensor, lengths: Tensor | None, alpha: float, beta: float) -> Tensor:
    """α · mean((dropped a)²) + β · mean((a<t> - a<t-1>)²) over the real steps (AR and TAR).

    ``a``: (T, B, n_a) the last layer's outputs; ``dropped``: the same after the output dropout;
    ``lengths``: (B,) true lengths (a tensor or a list, each in [1, T]), or None when no sequence is
    padded. Means are over the real steps' units (TAR: over the pairs of consecutive real steps).
    A scalar tensor. Raises ``ValueError`` for shapes that differ, lengths out of range or a
    negative weight.
    """
    if a.dim() != 3 or dropped.shape != a.shape:  # a (T, B, 1) one broadcast silently
        raise ValueError(f"activation_penalty takes a and dropped of one shape (T, B, n_a), got {tuple(a.shape)} and {tuple(dropped.shape)}")
    if not (alpha >= 0 and beta >= 0):  # a negative weight rewards large activations; NaN makes the loss NaN
        raise ValueError(f"activation_penalty's alpha and beta are weights of penalties, 0 or more; got {alpha} and {beta}")
    T, B, n = a.shape
    lengths = check_lengths(lengths, T, B, a.device)  # a list as Recurrent takes them; each in [1, T]; None: every one is T
    if lengths is None:
        real = a.new_ones(T, B)
    else:
        real = (torch.arange(T, device=a.device)[:, None] < lengths[None, :]).to(a.dtype)  # (T, B)
    penalty = a.new_zeros(())
    if alpha:
        penalty = penalty + alpha * (dropped.pow(2).sum(-1) * real).sum() / (real.sum() * n).clamp(min=1)
    if beta and T > 1:
        pairs = real[1:] * real[:-1]  # (T-1, B): both steps real
        penalty = penalty + beta * ((a[1:] - a[:-1]).pow(2).sum(-1) * pairs).sum() / (pairs.sum() * n).clamp(min=1)
    return penalty
