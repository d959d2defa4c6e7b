"""The registry of model kinds: the trainer, checkpoints and the CLI rebuild a model from its kind and
its ``config()`` without asking which class it is. A model file registers its class with
``@register_model`` (the class names its ``kind``).
"""

from __future__ import annotations

from torch import nn

from ..errors import registered

MODELS: dict[str, type[nn.Module]] = {}


def register_model(cls):
    MODELS[cls.kind] = cls
    return cls


def build_model(kind: str, config: dict) -> nn.Module:
    return registered(MODELS, kind, "model kind")(**config)
