"""``engine="auto"`` by measurement: time each engine that can run a layer, once, and keep the fastest.

Which engine is fastest depends on the machine, not only on the cell: on an Intel Xeon (AVX-512)
the fused engine's LSTM beats torch's oneDNN LSTM, on an AMD EPYC (AVX2) it is slower
(docs/benchmarks.md). So, as ``torch.backends.cudnn.benchmark`` does, the first call of a layer with
a new *shape class* times every engine that supports it on one layer of the real input, a few
rounds interleaved, and keeps the fastest:

* shape class (the key): cell kind and options, device type, dtype, steps, batch size, hidden
  size and input size each rounded up to a power of two, training or inference, and torch's
  thread count;
* what is timed: the first layer's forward direction on the call's own input (detached; no random
  numbers drawn, no ``.grad`` touched), forward and, when training, backward to the input and
  parameters; ``reference`` only when no other engine runs the cell (it is the truth, never fast);
* where it is kept: in memory for the life of the process, and in ``autotune.json`` under the
  user's cache directory (``files.user_cache_directory``: ``$RNNKIT_CACHE``, else
  ``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``), under a signature of the CPU model, torch's and rnnkit's versions and the fused
  engine's loops (``machine_signature``), so later
  processes on the same machine reuse it without timing. The file is written atomically; a corrupt
  or foreign file is ignored and rewritten, never an error.

The fixed order of ``engines.auto_order`` is used instead when ``RNNKIT_AUTOTUNE=0``, for tiny
shapes (timing would cost more than it saves), on other devices than the CPU (GPU engines compile
kernels on first use; their order is measured in docs/benchmarks.md), under autocast, and whenever
timing fails. A choice the user forces with ``Recurrent(engine=...)`` never reaches this module.

Stability: a choice, once made for a key, is the process's for good, so a run never changes engine
half-way. Engines agree to rounding, not bit for bit; a resumed run is bit-identical to an
uninterrupted one only when both choose the same engine: force ``engine=`` (or set
``RNNKIT_AUTOTUNE=0``) where that matters, as the test suite does. ``RNNKIT_AUTOTUNE=0`` is also
what ``tests/conftest.py`` sets, so no test depends on timing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..cells import Cell
from ..files import atomic_write, user_cache_directory
from .base import Engine, switched_off

log = logging.getLogger("rnnkit.engines")

FORMAT = 1
ROUNDS = 3  # timed rounds per engine, interleaved, after one warm-up run each; the fastest round counts
MORE_ROUNDS = 6  # further rounds while the two fastest are within CLOSE of each other
CLOSE = 0.05  # relative gap under which 3 rounds' noise could decide (at the FMA limit two engines tie)
TINY_WORK = 2**22  # T·B·n_a·(n_a + n_x) below this: the fixed order (a tuning would outweigh any gain)

_chosen: dict[str, str] = {}  # key -> engine name, for the life of the process
_lock = threading.Lock()


def enabled() -> bool:
    return not switched_off("RNNKIT_AUTOTUNE")


def cache_file() -> Path:
    """Where measured choices are kept across processes."""
    return user_cache_directory() / "autotune.json"


# Variables that cap the instruction set of MKL's and oneDNN's kernels (how an AVX2 CPU is emulated
# on an AVX-512 one): the same CPU runs other GEMMs under them.
BLAS_ISA_LIMITS = ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def machine_signature() -> str:
    """CPU model, the instruction set torch's kernels use, torch and rnnkit versions, and which loops
    the fused engine runs (the compiled loops' name, a hash of their source and flags, with their
    product routine; or the torch-op loops): a stored choice is only reused while all are the same,
    so an engine whose code changed, or a machine that runs other kernels, is timed again."""
    from ..version import __version__
    from .compiled import extension_name, product_routine

    if switched_off("RNNKIT_COMPILED_LOOPS"):
        loops = "torch-op loops"
    else:
        loops = f"{extension_name()} ({product_routine()})"
    isa = torch.backends.cpu.get_cpu_capability()  # ATEN_CPU_CAPABILITY=avx2 on an AVX-512 CPU runs other kernels
    isa += "".join(f" {name}={os.environ[name]}" for name in BLAS_ISA_LIMITS if os.environ.get(name))  # and so do these
    return f"{cpu_model()} | {isa} | torch {torch.__version__} | rnnkit {__version__} | {loops}"


def cpu_model() -> str:
    """The model name, with the family and model numbers where /proc/cpuinfo gives them: two AMD
    generations (Zen 3 without AVX-512, Zen 4 with it) are both named only "AMD EPYC" on some VMs."""
    name = cpu_info("model name")
    family, model = cpu_info("cpu family"), cpu_info("model")
    if family.isdigit() and model.isdigit():
        return f"{name} (family {family}, model {model})"
    return name


def cpu_info(field: str) -> str:
    """The first ``field`` of /proc/cpuinfo ("model name", "vendor_id", "model"); elsewhere, or
    without it, the platform's processor or machine name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, colon, value = line.partition(":")
            if colon and key.strip() == field:  # whole keys: "model" is not "model name"
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _bucket(n: int) -> int:
    """n rounded up to a power of two: shapes that close share a measurement."""
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def key_for(cell: Cell, x: Tensor, training: bool) -> str:
    """The shape class of a call: what a measurement is kept under."""
    T, B, n_x = x.shape
    options = ",".join(f"{k}={v}" for k, v in sorted(cell.options().items()))
    mode = "train" if training else "infer"
    return (
        f"{cell.kind}({options}) {x.device.type} {str(x.dtype).removeprefix('torch.')} T<={_bucket(T)} "
        f"B<={_bucket(B)} n_a<={_bucket(cell.hidden_size)} n_x<={_bucket(n_x)} {mode} threads={torch.get_num_threads()}"
    )


def worth_tuning(cell: Cell, x: Tensor) -> bool:
    """False where the fixed order stands: tiny shapes, devices other than the CPU, autocast."""
    T, B, n_x = x.shape
    if not enabled() or x.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
        return False
    return T * B * cell.hidden_size * (cell.hidden_size + n_x) >= TINY_WORK


def choose(cell: Cell, x: Tensor, training: bool, candidates: Sequence[Engine], fallback: Engine) -> Engine:
    """The fastest of ``candidates`` (at least two) for this call's shape class: remembered, read
    from the cache file, or measured now (and then stored). ``fallback`` (the fixed order's pick)
    when timing fails, for the rest of the process."""
    by_name = {engine.name: engine for engine in (*candidates, fallback)}
    key = key_for(cell, x, training)
    with _lock:
        name = _chosen.get(key)
        if name is None:
            entry = _stored().get(key)
            name = entry.get("engine") if isinstance(entry, dict) else None
            if isinstance(name, str) and name in by_name:  # else (missing, of another type, unknown): timed, and rewritten
                log.debug("auto: %s for %s (stored in %s)", name, key, cache_file())
            else:
                try:
                    times = measure(cell, x, training, candidates)
                except Exception as error:  # an engine failing at this shape: the fixed order, as without timing
                    name = fallback.name
                    log.debug("auto: %s for %s (timing failed: %s)", name, key, error)
                else:
                    name = min(times, key=times.get)
                    _store(key, name, times)
                    log.debug("auto: %s for %s (measured, ms: %s)", name, key, ", ".join(f"{k} {v:.2f}" for k, v in times.items()))
            _chosen[key] = name
    return by_name[name]


def measure(
    cell: Cell, x: Tensor, training: bool, candidates: Sequence[Engine], rounds: int = ROUNDS, more_rounds: int = MORE_ROUNDS
) -> dict[str, float]:
    """Milliseconds of one layer-direction step of each engine: the fastest of ``rounds`` interleaved
    rounds after a warm-up run (which absorbs one-time costs: compiled loops, buffers), and of up to
    ``more_rounds`` more while the two fastest are within ``CLOSE`` of each other: there one slow
    round would otherwise pick the slower engine for good (it is stored)."""
    runs = {engine.name: _step(engine, cell, x, training) for engine in candidates}
    for run in runs.values():
        run()
    best = {name: math.inf for name in runs}
    for done in range(rounds + more_rounds):
        if done >= rounds and not too_close_to_call(best):
            break
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], (time.perf_counter() - start) * 1e3)
    return best


def too_close_to_call(ms: dict[str, float]) -> bool:
    """Whether the two fastest times differ by less than ``CLOSE`` of the faster."""
    first, second = sorted(ms.values())[:2]
    return second - first < CLOSE * first


def _step(engine: Engine, cell: Cell, x: Tensor, training: bool) -> Callable[[], None]:
    """One call of ``engine`` on ``cell`` over x's shape and values, as a training step (forward
    and backward to the input and parameters, without touching ``.grad``) or inference."""
    x = x.detach()
    state = tuple(x.new_zeros(x.shape[1], cell.hidden_size) for _ in cell.state_names)
    params = [p for p in cell.parameters() if p.requires_grad]

    def run() -> None:
        with torch.set_grad_enabled(training):
            x_in = x.requires_grad_(True) if training else x
            outputs, _ = engine.run_layer([cell], x_in, None, [state])
            if training:
                torch.autograd.grad(outputs.sum(), [x_in, *params])
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)

    return run


def _stored() -> dict[str, dict]:
    """This machine's stored choices: {key: {"engine": name, "ms": {name: ms}}}; {} when the file is
    missing, unreadable, corrupt or from another format."""
    try:
        data = json.loads(cache_file().read_text())
        entries = data["machines"][machine_signature()] if data.get("format") == FORMAT else {}
        return entries if isinstance(entries, dict) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):  # RecursionError: nesting json cannot read
        return {}


def _store(key: str, name: str, times: dict[str, float]) -> None:
    """Add a measurement to the cache file: read, merge, write a temporary file, rename it over."""
    path = cache_file()
    try:
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT or not isinstance(data.get("machines"), dict):
                raise ValueError("another format")
        except (OSError, ValueError, AttributeError, RecursionError):
            data = {"format": FORMAT, "machines": {}}
        entries = data["machines"].get(machine_signature())
        if not isinstance(entries, dict):
            entries = data["machines"][machine_signature()] = {}
        entries[key] = {"engine": name, "ms": {k: round(v, 3) for k, v in times.items()}}
        atomic_write(path, json.dumps(data, indent=1, sort_keys=True).encode())
    except OSError as error:  # a read-only home, a full disk: the choice still holds for this process
        log.debug("auto: could not store the choice in %s (%s)", path, error)


def forget() -> None:
    """Drop this process's choices (tests; after changing threads or engines)."""
    with _lock:
        _chosen.clear()
