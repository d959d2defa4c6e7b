r"""The continuous cache of a language model (Grave, Joulin & Usunier 2017, "Improving Neural Language
Models with a Continuous Cache", ICLR; eq. 2 and the linear interpolation of section 4).

A language model reading a text in order keeps its last N hidden vectors h<i> (the vectors its output
layer reads), each with the token y<i> it then had to predict. A token that occurred in the last N
steps in a context like the present one gets extra probability::

    p_cache(w | h<t>) = Σ_{i=t-N..t-1} 1{y<i> = w} softmax_i(θ h<t>·h<i>)
    p(w | h<t>)       = (1 - λ) p_model(w | h<t>) + λ p_cache(w | h<t>)

At the first step of a text the memory is empty and p = p_model. Nothing is trained: N, θ and λ are
chosen on validation text (``tune``), and only tokens already read are ever in the memory, so the
score of a token never depends on it or on the tokens after it. A name or topic word that recurs in
an article ("Roosevelt" for the fifth time) is where the cache helps: the model alone must spread its
probability over every name it knows.

Only the true next token's probability is needed to score a text, so p_cache is computed for it alone
(a sum over the memory) rather than over the vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import UsageError

NEEDS_STREAM = "--cache: the continuous cache is for language models trained on one stream of text (--batching stream)"


@dataclass(frozen=True)
class ContinuousCache:
    """The cache's three numbers. ``window``: N, the steps kept (Grave et al. used 100–2,000 on the
    Penn Treebank); ``theta``: θ, the sharpness of the match between hidden vectors; ``interpolation``:
    λ, the cache's share of the probability. Raises ``UsageError`` naming the ``rnnkit eval`` option
    for a value out of range."""

    window: int = 2000
    theta: float = 0.3
    interpolation: float = 0.1

    def __post_init__(self):
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise UsageError(f"--cache must be a whole number of steps >= 1, got {self.window!r}")
        if not (isinstance(self.theta, (int, float)) and math.isfinite(self.theta) and self.theta >= 0):
            raise UsageError(f"--cache-theta must be a number >= 0, got {self.theta!r}")
        if not (isinstance(self.interpolation, (int, float)) and 0 <= self.interpolation < 1):  # λ = 1: a token not yet seen has p = 0
            raise UsageError(f"--cache-lambda must be at least 0 and below 1, got {self.interpolation!r}")

    def as_dict(self) -> dict:
        return {"window": self.window, "theta": self.theta, "lambda": self.interpolation}


class CacheMemory:
    """The memory of one text read in order, chunk by chunk: ``__call__`` gives p_cache of each
    target of a chunk and then remembers the chunk."""

    def __init__(self, window: int, theta: float):
        self.window, self.theta = window, theta
        self.keys: Tensor | None = None  # (M, F): h<i> of the last M <= N steps
        self.values: Tensor | None = None  # (M,): y<i>, the token that followed each

    @torch.no_grad()
    def __call__(self, features: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """p_cache(y<t> | h<t>) (T,) float64 for ``features`` h<t> (T, F) and ``targets`` y<t> (T,),
        and whether step t had anything in memory (T,) bool (False at the text's first step)."""
        T = features.shape[0]
        features = features.float()
        keys = features if self.keys is None else torch.cat([self.keys, features])  # (M + T, F)
        values = targets if self.values is None else torch.cat([self.values, targets])  # (M + T,)
        M = keys.shape[0] - T
        query = torch.arange(M, M + T, device=keys.device)[:, None]  # (T, 1): each step's position
        key = torch.arange(M + T, device=keys.device)[None, :]  # (1, M + T)
        remembered = (key < query) & (key >= query - self.window)  # (T, M + T): the N steps before t
        scores = (self.theta * features @ keys.T).masked_fill(~remembered, -math.inf)  # (T, M + T): θ h<t>·h<i>
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # (T, M + T); a row with no memory: 0
        p_cache = (weights * (values[None, :] == targets[:, None])).sum(-1).double()  # (T,)
        self.keys, self.values = keys[-self.window :], values[-self.window :]
        return p_cache, remembered.any(-1)


def mixed_log_probs(model_log_probs: Tensor, p_cache: Tensor, remembered: Tensor, interpolation: float) -> Tensor:
    """log p(y<t>) = log((1 - λ) p_model(y<t>) + λ p_cache(y<t>)) (T,) float64; p_model alone where
    the memory was empty."""
    mixed = torch.log((1 - interpolation) * model_log_probs.double().exp() + interpolation * p_cache)
    return torch.where(remembered, mixed, model_log_probs.double())


def cached_log_probs(chunks: Iterable[tuple[Tensor, Tensor, Tensor]], cache: ContinuousCache) -> Tensor:
    """log p(y<t>) with ``cache`` for every target of a text given as chunks in reading order, each
    (features h (T, F), targets y (T,), log p_model(y<t>) (T,)); (total T,) float64."""
    memory = CacheMemory(cache.window, cache.theta)
    out = [mixed_log_probs(log_p, *memory(h, y), cache.interpolation) for h, y, log_p in chunks]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def model_loss(chunks: Sequence[tuple[Tensor, Tensor, Tensor]]) -> float:
    """The model's own loss per token (nats) over ``chunks``, as ``cached_log_probs`` takes them."""
    return -float(torch.cat([log_p for _, _, log_p in chunks]).double().mean())


WINDOWS = (100, 500, 1000, 2000, 4000)  # N tried by ``tune`` (Grave et al.'s Penn Treebank range, and twice its top)
THETAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0)
INTERPOLATIONS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)  # 0: the model alone, chosen where the cache does not help


def tune(chunks: Sequence[tuple[Tensor, Tensor, Tensor]], windows: Sequence[int], thetas: Sequence[float] = THETAS,
         interpolations: Sequence[float] = INTERPOLATIONS) -> tuple[ContinuousCache, list[dict]]:  # fmt: skip
    """The (N, θ, λ) of the grid with the lowest loss per token on ``chunks`` (a validation text, as
    ``cached_log_probs`` takes it), and every grid point's loss (nats per token). One pass over the
    memory per (N, θ); λ costs nothing more (Grave et al. chose theirs on validation data likewise)."""
    if not chunks:
        raise UsageError("--cache-tune: the tuning text has no tokens")
    model_log_probs = torch.cat([log_p for _, _, log_p in chunks]).double()  # (total T,)
    table = []
    for window in windows:
        for theta in thetas:
            memory = CacheMemory(window, theta)
            p_cache, remembered = (torch.cat(parts) for parts in zip(*(memory(h, y) for h, y, _ in chunks)))
            for lam in interpolations:
                loss = -float(mixed_log_probs(model_log_probs, p_cache, remembered, lam).mean())
                table.append({"window": window, "theta": theta, "lambda": lam, "loss": loss})
    best = min(table, key=lambda row: row["loss"])
    return ContinuousCache(best["window"], best["theta"], best["lambda"]), table


def grid_edges(cache: ContinuousCache, windows: Sequence[int], thetas: Sequence[float] = THETAS,
               interpolations: Sequence[float] = INTERPOLATIONS) -> list[str]:  # fmt: skip
    """Notes on the tuned values that lie at an end of their grid (of more than one value): one beyond
    the grid might do better, and the user can give it by hand. λ = 0 is no such end: it means the
    cache did not help on the tuning text at all."""
    if cache.interpolation == 0:  # N and θ then shape nothing: a note on their grids would mislead
        return ["λ = 0: the cache did not help on the tuning text, so the scores are the model's alone"]
    tuned = (("--cache", "N", cache.window, windows), ("--cache-theta", "θ", cache.theta, thetas), ("--cache-lambda", "λ", cache.interpolation, interpolations))
    notes = []
    for option, name, value, grid in tuned:
        if len(grid) > 1 and value in (min(grid), max(grid)) and not (name == "λ" and value == 0):
            notes.append(f"{name} = {value:g} is at the end of the tuning grid ({min(grid):g} to {max(grid):g}): a value beyond it may do better ({option})")
    return notes
