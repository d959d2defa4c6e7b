"""Compile every Triton kernel rnnkit launches for an NVIDIA GPU, on a machine without one.

    python tests/compile_for_gpu.py [--arch 90]

Triton's own ptxas turns the kernels into machine code for the chosen architecture (90: Hopper,
the H100 and H200), so compile errors (a float64 ``tl.dot`` Hopper cannot do, a constexpr branch
that no test on the CPU takes) show before a GPU is at hand: the CPU tests run the kernels in
Triton's interpreter, which compiles nothing. Must run in a process where TRITON_INTERPRET is
unset: the interpreter replaces the kernels when they are defined. ``tests/test_triton.py`` runs it.

The kernels are the ones the modules launch (``name[grid](...)`` or through the persistent
wrapper), found in their source. Their arguments follow one convention, which gives the
signature: lowercase names and B, T, N, K, V are integers (``inv_temperature`` a float), other
uppercase names are pointers, in the variant's dtype except the int32/int8/float32 buffers below.
Each kernel is compiled in float16 (with its boolean options off, and on if it has any) and in
float64.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

if os.environ.get("TRITON_INTERPRET") == "1":
    sys.exit("compile_for_gpu.py: unset TRITON_INTERPRET (the interpreter compiles nothing)")

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from rnnkit.engines.triton import loops as triton_loops, persistent as triton_persistent, sampling as fused_sampling  # noqa: E402

MODULES = (triton_loops, triton_persistent, fused_sampling)
INTEGERS = {"B", "T", "N", "K", "V"}
FLOATS = {"inv_temperature"}
POINTERS = {"SIZES": "*i32", "SYNC": "*i32", "PART_IDX": "*i32", "COUNTER": "*i32", "OUT_TOKEN": "*i32", "BANNED": "*i8", "PART_VAL": "*fp32"}
CONSTANTS = {"BB": 32, "BN": 16, "BK": 128, "BV": 8, "BP": 16, "BLOCKS": 3, "CAND": 2}
VARIANTS = [("fp16", tl.float32, False), ("fp16", tl.float32, True), ("fp64", tl.float64, False)]
FLAGS = {"RELU", "PEEP", "OVERLAP", "FIRST_LAYER", "GREEDY", "ACCUMULATE"}  # boolean options


def launched_kernels(module) -> list[tuple[str, triton.runtime.jit.JITFunction]]:
    source = inspect.getsource(module)
    names = set(re.findall(r"(_\w+)\[(?:grid|\()", source)) | set(re.findall(r"_persistent\((_\w+),", source))
    return [(name, getattr(module, name)) for name in sorted(names)]


def signature(fn, dtype: str, acc, flag: bool) -> tuple[dict, dict]:
    types, constants = {}, {}
    for index, param in enumerate(fn.params):
        name = param.name
        if param.is_constexpr:
            types[name] = "constexpr"
            constants[(index,)] = acc if name == "ACC" else CONSTANTS.get(name, flag)
        elif name in FLOATS:
            types[name] = "fp32"
        elif name.islower() or name in INTEGERS or name[0].islower():
            types[name] = "i32"
        else:
            types[name] = POINTERS.get(name, "*" + dtype)
    return types, constants


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability × 10 (90: Hopper)")
    args = parser.parse_args()
    target = GPUTarget("cuda", args.arch, 32)
    failures = compiled = 0
    for module in MODULES:
        for name, fn in launched_kernels(module):
            has_flags = any(param.name in FLAGS for param in fn.params)
            for dtype, acc, flag in VARIANTS:
                if flag and not has_flags:
                    continue
                types, constants = signature(fn, dtype, acc, flag)
                try:
                    triton.compile(ASTSource(fn=fn, signature=types, constexprs=constants), target=target, options={"num_warps": 4})
                    compiled += 1
                except Exception as error:  # noqa: BLE001 (report every kernel that fails)
                    failures += 1
                    print(f"FAILED {module.__name__}.{name} ({dtype}, options {'on' if flag else 'off'}): {' '.join(str(error).split())[:400]}")
    print(f"{compiled} kernel variants compiled for sm_{args.arch} with Triton {triton.__version__}, {failures} failed")
    return 1 if failures or not compiled else 0


if __name__ == "__main__":
    sys.exit(main())
