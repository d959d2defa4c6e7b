"""A task of the trainer's protocol small enough to reason about step by step, for the trainer's tests
(tests/test_trainer.py) and the regularisers' (NT-ASGD in tests/test_regularisers.py)."""

from __future__ import annotations

import math

import torch


class Regression:
    """y = 3 x1 - 2 x2 by least squares, ``batches`` batches of 4 rows per epoch, for an
    ``nn.Linear(2, 1)``. The loss of a step in ``nan_at`` (1-based, counted over the epochs) is NaN.
    The validation loss is the model's mean squared error, or ``constant_valid`` when given (a loss
    that improves once, on inf, and never again)."""

    def __init__(self, batches: int = 6, nan_at: set[int] = frozenset(), constant_valid: float | None = None):
        self.batches, self.nan_at, self.constant_valid = batches, nan_at, constant_valid
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(batches, 4, 2, generator=generator)  # (batches, rows, 2)
        self.y = self.x @ torch.tensor([3.0, -2.0])  # (batches, rows)

    def batches_per_epoch(self):
        return self.batches

    def train_batches(self, epoch, start, shard=None):
        return ((epoch, i) for i in range(start, self.batches))

    def start_epoch(self, epoch):
        pass

    def loss(self, model, batch, device):
        epoch, i = batch
        loss = ((model(self.x[i]).squeeze(-1) - self.y[i]) ** 2).sum()
        if epoch * self.batches + i + 1 in self.nan_at:
            loss = loss * math.nan
        return loss, 4

    def has_split(self, split):
        return split == "valid"

    def evaluate(self, model, split, device):
        count = self.y.numel()
        if self.constant_valid is not None:
            return {"loss": self.constant_valid, "count": count}
        with torch.no_grad():
            return {"loss": float(((model(self.x).squeeze(-1) - self.y) ** 2).mean()), "count": count}

    def describe(self, result):
        return f"loss {result['loss']:.4f}"

    def report(self, model, step, device):
        return []

    def artifact_files(self):
        return []

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass
