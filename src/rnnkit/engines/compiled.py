"""Build, once, and load the compiled CPU loops of the fused engine (``csrc/fused_loops.cpp``).

The cache is keyed by content, not by a build tool's log: the extension's name carries a hash of
the source, the compiler flags, torch's and Python's versions and this CPU's features, so a
different source, toolchain or machine gets a different name, and a library under an existing name
is always the right one. Layout, under torch's extension directory (``TORCH_EXTENSIONS_DIR``,
default ``~/.cache/torch_extensions/py<ver>_cpu``)::

    <name>/<name>.so      the finished library: loaded directly, no build tool asked
    <name>/build.lock     taken (fcntl.flock) while one process builds; the kernel drops it when
                          that process dies, even by kill -9, so it never goes stale
    <name>/build-XXXX/    one build in progress (torch's cpp_extension + ninja), moved into place
                          with an atomic rename when done; leftovers of killed builds are removed

Why not just ``torch.utils.cpp_extension.load`` each time: it asks ``ninja`` whether the build is
up to date, and two ninja versions (a venv's and the system's) read each other's build log as
"command line changed" and rebuild, silently, for minutes; and its own lock file, left behind by a
killed build, makes every later run wait forever.

The first build prints one line ("compiling ..., once") and takes about a minute (two or three on a
busy machine). If the compiled loops cannot be built or loaded, the fused engine
warns once and runs its torch-op loops (``fused_loops.py``), which compute the same thing more
slowly. ``RNNKIT_COMPILED_LOOPS=0`` skips the compiled loops altogether.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

from ..errors import UsageError
from ..files import exclusive_lock
from .base import switched_off

SOURCE = Path(__file__).with_name("csrc") / "fused_loops.cpp"
# -fno-trapping-math (as torch builds itself): lets the compiler turn the clamps of the element-wise
# math into vector blends, so each step's pass runs 8 floats at a time (AVX2), not one
FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-trapping-math"]
LDFLAGS = ["-fopenmp"]
LOCK_TIMEOUT_S = 1800.0  # waiting this long for another process's build: give up, use the torch-op loops
BUILD_ESTIMATE_S = 60  # the first build on an idle AMD EPYC core (g++ -O3 of one file against torch's headers)

# The routines that can compute the loops' float32 recurrent products: "mkl-packed" (MKL's packed
# GEMM, the weight packed once per call), "onednn" (oneDNN's matmul, the weight reordered once per
# call), "packed-fma" (the loops' own AVX2 or AVX-512 FMA kernel, the weight packed once per call) or "aten"
# (ATen's addmm: MKL's plain sgemm, which repacks the weight at every step).
PRODUCTS = ("mkl-packed", "onednn", "packed-fma", "aten")
# Which one, by CPU vendor (/proc/cpuinfo's vendor_id) and, where it decides, the instruction set of
# torch's kernels, as measured with benchmarks/core_speed.py (docs/benchmarks.md): on AMD, oneDNN's
# AVX-512 kernels beat MKL's; with AVX2 neither comes near the loops' own FMA kernel. RNNKIT_PRODUCT=<routine>
# overrides the table.
# Where two generations share the vendor and the instruction set, the CPU family tells them apart:
# a Zen 4 (family 25) runs AVX-512 on 256-bit units and took oneDNN's, a Zen 5 (family 26) has
# 512-bit units, where the loops' own kernel, built for AVX-512, beat oneDNN by 3-27 % (docs/benchmarks.md, "Zen 5").
PRODUCT_ROUTINES = {"GenuineIntel": "mkl-packed", "AuthenticAMD": "packed-fma", "AuthenticAMD AVX512": "onednn",
                    "AuthenticAMD AVX512 family 26": "packed-fma"}
DEFAULT_PRODUCT_ROUTINE = "mkl-packed"  # a vendor not measured

_state: dict[str, ModuleType | None] = {}


def cpu_vendor() -> str:
    from .autotune import cpu_info  # imported here: autotune reads the cells, the build needs none

    return cpu_info("vendor_id")


def cpu_family() -> str:
    from .autotune import cpu_info

    return cpu_info("cpu family")


def product_routine() -> str:
    """The routine for this CPU's recurrent products: ``RNNKIT_PRODUCT`` or ``PRODUCT_ROUTINES``.
    Raises UsageError for an unknown ``RNNKIT_PRODUCT``."""
    vendor, isa = cpu_vendor(), torch.backends.cpu.get_cpu_capability()  # ATEN_CPU_CAPABILITY=avx2 caps the ISA
    keys = (f"{vendor} {isa} family {cpu_family()}", f"{vendor} {isa}", vendor)  # the most specific entry wins
    table = next((PRODUCT_ROUTINES[key] for key in keys if key in PRODUCT_ROUTINES), DEFAULT_PRODUCT_ROUTINE)
    routine = os.environ.get("RNNKIT_PRODUCT") or table
    if routine not in PRODUCTS:
        raise UsageError(f"RNNKIT_PRODUCT={routine!r}: not a product routine of the compiled loops (known: {', '.join(PRODUCTS)})")
    return routine


def build_flags() -> list[str]:
    """FLAGS, capped to AVX2 where torch's kernels are (``ATEN_CPU_CAPABILITY=avx2`` on an AVX-512
    CPU, how the issue emulates an AVX2 machine): -march=native would otherwise build the loops'
    AVX-512 kernel into the emulation."""
    if torch.backends.cpu.get_cpu_capability() == "AVX2":
        return [*FLAGS, "-mno-avx512f"]
    return list(FLAGS)


def _cpu_signature() -> str:
    """Text that changes when the build would differ: this CPU's features, torch, Python, flags, source."""
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                cpu += line
                break
    except OSError:
        pass
    abi = sysconfig.get_config_var("EXT_SUFFIX") or sys.version
    return f"{cpu}|{torch.__version__}|{abi}|{' '.join(build_flags())}|{SOURCE.read_bytes().hex()}"


def extension_name() -> str:
    return "rnnkit_fused_loops_" + hashlib.sha1(_cpu_signature().encode()).hexdigest()[:12]


def cache_directory(name: str | None = None) -> Path:
    """The directory holding the extension ``name`` (default: this source's) and its builds."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    name = name or extension_name()
    if root is None:
        from torch.utils import cpp_extension

        return Path(cpp_extension._get_build_directory(name, verbose=False))
    return Path(root) / name


def compiled_loops_known_missing() -> bool:
    """Whether the fused engine runs its torch-op loops, as far as is known without building: the
    loops switched off, or a build this process tried that failed."""
    return switched_off("RNNKIT_COMPILED_LOOPS") or ("module" in _state and _state["module"] is None)


def compiled_loops() -> ModuleType | None:
    """The compiled loops module, building it on first use; None when unavailable (with a warning)
    or switched off by ``RNNKIT_COMPILED_LOOPS=0``."""
    if switched_off("RNNKIT_COMPILED_LOOPS"):  # read at every call: a forked process
        return None  # that sets it computes with the torch-op loops, as a fresh one would
    if "module" in _state:
        return _state["module"]
    routine = product_routine()
    module = None
    try:
        module = load()
        module.use_product(routine)
    except Exception as error:  # a missing compiler, a failed build, an unreadable cache: fall back
        warnings.warn(
            f"rnnkit: could not build the compiled CPU loops of the fused engine ({_last_line(error)}); "
            "using its slower torch-op loops",
            RuntimeWarning,
            stacklevel=3,
        )
    _state["module"] = module
    return module


def product_in_use() -> str | None:
    """The routine the compiled loops compute their float32 recurrent products with, which is
    ``product_routine()`` unless that one is not available in this build (then "aten"); None
    without the compiled loops. Builds them on first use."""
    module = compiled_loops()
    return None if module is None else module.product_in_use()


def load(directory: Path | None = None, compile: Callable[[str, Path], Path] | None = None) -> ModuleType:
    """Load ``<directory>/<name>.so``, building it first when it is missing or unloadable.

    ``compile(name, build_dir)`` builds the library into the empty ``build_dir`` and returns its
    path (default: torch's cpp_extension); tests pass a stand-in. Raises on failure.
    """
    name = extension_name()
    directory = directory or cache_directory(name)
    directory.mkdir(parents=True, exist_ok=True)
    library = directory / f"{name}.so"
    if library.exists():
        try:
            return _import(name, library)
        except ImportError:  # truncated or corrupt: rebuilt below, under the lock
            pass
    with exclusive_lock(directory / "build.lock", "compiling the fused CPU engine's loops", LOCK_TIMEOUT_S):
        if library.exists():  # another process may have finished it while this one waited
            try:
                return _import(name, library)
            except ImportError:
                library.unlink()
        for leftover in directory.glob("build-*"):  # only builds under the lock write these: dead ones
            shutil.rmtree(leftover, ignore_errors=True)
        print(f"rnnkit: compiling the fused CPU engine's loops (once, about {BUILD_ESTIMATE_S} s; cached in {directory})", file=sys.stderr, flush=True)
        build_dir = Path(tempfile.mkdtemp(prefix="build-", dir=directory))
        try:
            built = (compile or _compile_with_torch)(name, build_dir)
            os.replace(built, library)  # atomic: a reader sees no library or a whole one
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
    return _import(name, library)


def _import(name: str, library: Path) -> ModuleType:
    """Import a built extension module from its file (what cpp_extension does after a build)."""
    if name in sys.modules:  # this process built or loaded it already
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, library)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {library}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def _compile_with_torch(name: str, build_dir: Path) -> Path:
    """Build the extension into ``build_dir`` with torch's cpp_extension (ninja and a C++ compiler)."""
    from torch.utils import cpp_extension

    # cpp_extension also imports the module it built; keep that one (its file is moved, not changed)
    sys.modules[name] = cpp_extension.load(
        name=name,
        sources=[str(SOURCE)],
        extra_cflags=build_flags(),
        extra_ldflags=LDFLAGS,
        build_directory=str(build_dir),
        verbose=False,
    )
    return build_dir / f"{name}.so"


def _last_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else type(error).__name__
