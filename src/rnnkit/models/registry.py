"""The registry of model kinds: the trainer, checkpoints and the CLI rebuild a model from its kind and
its ``config()`` without asking which class it is. A model file registers its class with
``@register_model`` (the class names its ``kind``).
"""

from __future__ import annotations


import torch
from torch import nn

from ..errors import UsageError, registered
from ..files import usable_memory

MODELS: dict[str, type[nn.Module]] = {}


def register_model(cls):
    MODELS[cls.kind] = cls
    return cls


def build_model(kind: str, config: dict) -> nn.Module:
    return registered(MODELS, kind, "model kind")(**config)


# what training holds per weight beside the weight itself: its gradient and two optimizer moments (Adam)
TRAINING_COPIES = 4


def training_bytes(weights: int) -> int:
    """The memory training ``weights`` float32 weights holds: each with its gradient and optimizer state."""
    return TRAINING_COPIES * 4 * weights


def check_fits_in_memory(kind: str, config: dict, memory_bytes: int | None = None) -> None:
    """A one-line ``UsageError`` when the model ``build_model(kind, config)`` would make cannot be
    trained in the memory this process may use (``memory_bytes``: ``usable_memory()``, by default): counted
    on PyTorch's ``meta`` device, which allocates nothing, so that ``--hidden-size 100000000`` is
    refused at once instead of failing deep in an allocation (a traceback) or swapping for minutes."""
    with torch.device("meta"):
        model = build_model(kind, config)
    count = sum(p.numel() for p in model.parameters())
    needed = training_bytes(count)
    memory_bytes = usable_memory() if memory_bytes is None else memory_bytes
    if needed > memory_bytes:
        sizes = ", ".join(f"{key} {config[key]:,}" for key in ("hidden_size", "embedding_size", "num_layers") if isinstance(config.get(key), int))
        raise UsageError(f"the model would have {count:,} weights ({sizes}): training them needs about {needed / 2**30:,.1f} GiB "
                         f"(weights, gradients, optimizer state), more than the {memory_bytes / 2**30:,.1f} GiB this process may use; "
                         "lower --hidden-size, --embedding-size, --num-layers or --head-sizes")
