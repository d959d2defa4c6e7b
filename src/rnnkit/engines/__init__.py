"""Engines: interchangeable ways to run a layer of cells over time.

* ``reference``: autograd through the reference cells of ``rnnkit.cells`` -- the truth;
* ``fused``: a hand-written backward pass through time per cell kind (``engines/fused.py``);
* ``native``: torch's own RNN kernels (oneDNN, cuDNN) for the cells whose equations torch computes;
* ``triton``: the fused engine with its time loops as Triton kernels, one launch per step (GPUs);
* ``persistent``: the same with one launch per direction for all steps, the weights kept on chip
  (GPUs; every cell kind).

``Recurrent(engine="auto")`` asks :func:`choose_engine`, which times the engines on the machine
it runs on (``autotune.py``); ``engine=NAME`` forces one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells import Cell
from . import autotune
from .base import DirectionalEngine, Engine, State
from .fused import FusedEngine, PersistentTritonEngine, TritonEngine
from .native import NativeEngine
from .reference import ReferenceEngine
from ..errors import UsageError, registered

__all__ = ["ENGINES", "DirectionalEngine", "Engine", "State", "choose_engine", "engine_named", "engines_for", "check_engine"]

ENGINES: dict[str, Engine] = {engine.name: engine for engine in (ReferenceEngine(), FusedEngine(), NativeEngine(), TritonEngine(), PersistentTritonEngine())}

# Preference order for engine="auto" where it does not measure (RNNKIT_AUTOTUNE=0, tiny shapes, GPUs;
# see autotune.py), by device type, from benchmarks/core_speed.py and benchmarks/gpu.py on the
# machines of docs/benchmarks.md: the first engine that supports the cell wins.
AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("fused", "native", "reference"),
    # cuDNN for the cells it computes (fastest in fp16; docs/gpu), the persistent Triton kernels for
    # the others (the course GRU: about 2 × cuDNN's GRU in fp16), the torch-op loops without Triton
    "cuda": ("native", "persistent", "fused", "reference"),
}
AUTO_ORDER_DEFAULT = ("fused", "reference")
# the CPU without the compiled loops (RNNKIT_COMPILED_LOOPS=0, or a build that failed): the fused
# engine's torch-op loops are several times slower than torch's own kernels where those run the cell
CPU_ORDER_WITHOUT_COMPILED_LOOPS = ("native", "fused", "reference")


def auto_order(device: torch.device) -> tuple[str, ...]:
    """``AUTO_ORDER`` for ``device``'s type; on the CPU, ``CPU_ORDER_WITHOUT_COMPILED_LOOPS`` when
    the fused engine runs its torch-op loops (known without building anything)."""
    if device.type == "cpu":
        from .compiled import compiled_loops_known_missing

        if compiled_loops_known_missing():
            return CPU_ORDER_WITHOUT_COMPILED_LOOPS
    return AUTO_ORDER.get(device.type, AUTO_ORDER_DEFAULT)


def engine_named(name: str) -> Engine:
    """The engine registered as ``name``; a one-line error lists the choices."""
    return registered(ENGINES, name, "engine", ("auto", *ENGINES))


def check_engine(name: str, cell: Cell) -> None:
    """Raise a one-line error when engine ``name`` (or "auto") cannot run ``cell``."""
    if name == "auto":
        return
    reason = engine_named(name).unsupported(cell)
    if reason:
        raise UsageError(f"engine={name!r} cannot run cell {cell.kind!r}: {reason}; use engine='auto' or 'reference'")


def engines_for(cell: Cell, device: torch.device | str) -> list[str]:
    """The names of the engines that can run ``cell`` on ``device``, in registry order."""
    device = torch.device(device)
    return [name for name, engine in ENGINES.items() if engine.unsupported(cell) is None and engine.unavailable_on(device) is None]


def choose_engine(cell: Cell, device: torch.device, x: Tensor | None = None, training: bool = False) -> Engine:
    """The engine ``engine="auto"`` uses for ``cell`` on ``device``.

    Without ``x`` (the call's input, (T, B, n_x)): the first engine of the fixed ``AUTO_ORDER``
    that runs the cell. With it, where the shape is worth it, the fastest engine measured on this
    machine for the call's shape class, ``training`` or not (``engines/autotune.py``).
    """
    fixed = next((ENGINES[name] for name in auto_order(device) if ENGINES[name].unsupported(cell) is None), ENGINES["reference"])
    if x is None or not autotune.worth_tuning(cell, x):
        return fixed
    candidates = [ENGINES[name] for name in engines_for(cell, device) if name != "reference"]
    if len(candidates) < 2:
        return fixed
    return autotune.choose(cell, x, training, candidates, fixed)
