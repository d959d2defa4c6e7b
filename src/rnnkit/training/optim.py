"""Optimizers and learning-rate schedules, by name; ULMFiT's fine-tuning (Howard & Ruder 2018):
discriminative learning rates over a model's layer groups, gradual unfreezing and the slanted
triangular schedule.

A model that offers ``layer_groups()`` (its parameters in groups, lowest first: the classifier's
embedding, each recurrent layer, the rest) can be trained with

* ``discriminative_lr`` F: the group d levels below the top learns at lr / F^d (ULMFiT: 2.6);
* ``gradual_unfreezing``: in epoch e (from 0) only the top e + 1 groups are trained; the others
  are frozen (``requires_grad`` off: no gradient, so no update, weight decay or momentum either).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from ..errors import UsageError
from .config import SCHEDULES  # the names live with the torch-free settings (rnnkit train --help)

OPTIMIZERS = {
    "adam": lambda params, lr, weight_decay, momentum: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay),
    "adamw": lambda params, lr, weight_decay, momentum: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay),
    "sgd": lambda params, lr, weight_decay, momentum: torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum),
    # NT-ASGD (Merity et al. 2017): SGD steps; the trainer averages the iterates once validation stops
    # improving (TrainingConfig.nt_patience), as torch.optim.ASGD would with its start t0 chosen late
    "nt-asgd": lambda params, lr, weight_decay, momentum: torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum),
}
SLANTED_CUT, SLANTED_RATIO = 0.1, 32  # ULMFiT's cut_frac and ratio


def layer_groups(model: nn.Module, option: str) -> list[list[nn.Parameter]]:
    """``model.layer_groups()``, or a one-line ``UsageError`` naming ``option`` for a model without."""
    model = getattr(model, "module", model)  # DistributedDataParallel holds the model as .module
    if not hasattr(model, "layer_groups"):
        raise UsageError(f"{option}: a {getattr(model, 'kind', type(model).__name__)} model has no layer groups; it is for classifiers")
    return model.layer_groups()


def check_model_takes(model: nn.Module, discriminative_lr: float, gradual_unfreezing: bool) -> None:
    """The ``UsageError`` ``parameter_groups`` or ``unfreeze_top`` would raise for ``model``, said
    before a run directory exists (rnnkit.runs.start), not once training has begun."""
    for option, given in (("--discriminative-lr", discriminative_lr != 1.0), ("--gradual-unfreezing", gradual_unfreezing)):
        if given:
            layer_groups(model, option)


def parameter_groups(model: nn.Module, lr: float, factor: float = 1.0) -> list[dict] | object:
    """The optimizer's parameter groups: with ``factor`` F > 1, one group per layer group, the one d
    levels below the top at lr / F^d (discriminative learning rates); else all parameters at lr."""
    if factor == 1.0:
        return model.parameters()
    groups = layer_groups(model, "--discriminative-lr")
    top = len(groups) - 1
    return [{"params": params, "lr": lr / factor ** (top - depth)} for depth, params in enumerate(groups)]


def unfreeze_top(model: nn.Module, count: int) -> None:
    """Gradual unfreezing: the top ``count`` layer groups are trained, the ones below are frozen."""
    groups = layer_groups(model, "--gradual-unfreezing")
    for depth, params in enumerate(groups):
        for p in params:
            p.requires_grad_(depth >= len(groups) - count)


def make_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float = 0.0, momentum: float = 0.0, discriminative: float = 1.0):
    """The optimizer ``name`` over ``model``'s parameters (by layer group at lr / ``discriminative``^depth
    when that is above 1: ``parameter_groups``)."""
    if name not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](parameter_groups(model, lr, discriminative), lr, weight_decay, momentum)


def make_schedule(name: str, optimizer, total_steps: int, warmup_steps: int = 0, plateau_factor: float = 0.25, clock_share: Callable[[], float] | None = None):
    """``constant``: lr throughout (after a linear warm-up); ``cosine``: warm-up, then a cosine from
    lr to lr/100 at the last step; ``plateau``: lr × ``plateau_factor`` whenever an evaluation does
    not improve on the best validation loss (as pytorch/examples' word language model does);
    ``slanted``: ULMFiT's slanted triangular rate, up linearly over the first 10% of the steps from
    lr/32 to lr, then down linearly to lr/32 at the last step (Howard & Ruder 2018, eq. 3). Each
    parameter group keeps its own lr (the factor multiplies it).

    How far cosine and slanted are is the share of the steps after the warm-up done, or with
    ``clock_share`` (the share of a time limit spent, read at each step) the larger of the two, so
    that a run the clock ends is annealed by then (``--schedule-by-time``)."""
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=plateau_factor, patience=0)
    if name not in SCHEDULES:
        raise UsageError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")

    def share(step: int) -> float:  # how far the schedule is, 0 to 1
        done = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min(1.0, max(done, clock_share()) if clock_share is not None else done)

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if name == "constant":
            return 1.0
        if name == "slanted":  # up to the cut, then down to the end
            f = share(step)
            p = f / SLANTED_CUT if f < SLANTED_CUT else 1 - (f - SLANTED_CUT) / (1 - SLANTED_CUT)
            return (1 + max(0.0, p) * (SLANTED_RATIO - 1)) / SLANTED_RATIO
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * share(step)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
