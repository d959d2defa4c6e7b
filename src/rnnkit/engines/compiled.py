"""Build, once, and load the compiled CPU loops of the fused engine (``csrc/fused_loops.cpp``).

The C++ source is compiled on first use with ``torch.utils.cpp_extension`` (a C++ compiler and
``ninja`` are needed; about half a minute) and cached under torch's extension directory
(``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``), keyed by the source, the torch
version and this CPU, so later runs load it at once. If it cannot be built, the fused engine warns
once and runs its torch-op loops (``fused_loops.py``), which compute the same thing more slowly.
``RNNKIT_COMPILED_LOOPS=0`` skips the compiled loops altogether.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import warnings
from pathlib import Path
from types import ModuleType

import torch

SOURCE = Path(__file__).with_name("csrc") / "fused_loops.cpp"
FLAGS = ["-O3", "-march=native", "-fopenmp"]

_state: dict[str, ModuleType | None] = {}


def _cpu_signature() -> str:
    """Text that changes when the build would differ: this CPU's features, torch, the source."""
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                cpu += line
                break
    except OSError:
        pass
    return f"{cpu}|{torch.__version__}|{' '.join(FLAGS)}|{SOURCE.read_bytes().hex()}"


def extension_name() -> str:
    return "rnnkit_fused_loops_" + hashlib.sha1(_cpu_signature().encode()).hexdigest()[:12]


def compiled_loops() -> ModuleType | None:
    """The compiled loops module, building it on first use; None when unavailable."""
    if "module" in _state:
        return _state["module"]
    module = None
    if os.environ.get("RNNKIT_COMPILED_LOOPS", "1") != "0":
        try:
            module = _build()
        except Exception as error:  # a missing compiler or ninja, a failed build: fall back
            message = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            warnings.warn(
                f"rnnkit: could not build the compiled CPU loops of the fused engine ({message}); "
                "using its slower torch-op loops",
                RuntimeWarning,
                stacklevel=3,
            )
    _state["module"] = module
    return module


def _build() -> ModuleType:
    from torch.utils import cpp_extension

    name = extension_name()
    build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
    if not any(build_dir.glob(f"{name}*.so")):
        print(f"rnnkit: compiling the fused CPU engine (once, about 30 s; cached in {build_dir})", file=sys.stderr)
    return cpp_extension.load(
        name=name,
        sources=[str(SOURCE)],
        extra_cflags=FLAGS,
        extra_ldflags=["-fopenmp"],
        build_directory=str(build_dir),
        verbose=False,
    )
