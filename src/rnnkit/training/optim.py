"""Optimizers and learning-rate schedules, by name."""

from __future__ import annotations

import math

import torch
from torch import nn
from ..errors import UsageError

OPTIMIZERS = {
    "adam": lambda params, lr, weight_decay, momentum: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay),
    "adamw": lambda params, lr, weight_decay, momentum: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay),
    "sgd": lambda params, lr, weight_decay, momentum: torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum),
    # NT-ASGD (Merity et al. 2017): SGD steps; the trainer averages the iterates once validation stops
    # improving (TrainingConfig.nt_patience), as torch.optim.ASGD would with its start t0 chosen late
    "nt-asgd": lambda params, lr, weight_decay, momentum: torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum),
}
SCHEDULES = ("constant", "cosine", "plateau")


def make_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float = 0.0, momentum: float = 0.0):
    if name not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](model.parameters(), lr, weight_decay, momentum)


def make_schedule(name: str, optimizer, total_steps: int, warmup_steps: int = 0, plateau_factor: float = 0.25):
    """``constant``: lr throughout (after a linear warm-up); ``cosine``: warm-up, then a cosine from
    lr to lr/100 at the last step; ``plateau``: lr × ``plateau_factor`` whenever an evaluation does
    not improve on the best validation loss (as pytorch/examples' word language model does)."""
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=plateau_factor, patience=0)
    if name not in SCHEDULES:
        raise UsageError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if name == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
