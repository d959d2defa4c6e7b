"""Time per training step (forward + backward) and peak memory of every engine and cell, next to
torch.nn.LSTM and torch.nn.GRU, on the CPU.

    python benchmarks/core_speed.py                     # B=32, T=128, n_x=64, n_a in {256, 512}
    python benchmarks/core_speed.py --sizes 256 --rounds 5 --no-memory

A step is ``layer(x)`` then ``outputs.sum().backward()`` with ``x`` requiring grad (a layer inside
a model). Timings are medians over rounds; within a round every entry runs once, in a shuffled
order, so that a machine whose speed drifts (a shared VM) affects all entries alike. Peak memory is
measured in a fresh process per entry: the growth of the resident set (VmHWM) during one step after
a warm-up step, with freed memory returned to the system in between.

Each cell also gets a "products only" row: the matrix products that any training step of that cell
must do (the input projection, one recurrent product per step forward and one backward, the weight
and input gradients), with the step's shapes and nothing else — no element-wise work, no autograd.
Its recurrent products run as the fused engine's compiled loops run theirs (a block of batch rows
per thread, the CPU's product routine), so "fused / products only" is what the rest of a fused
step costs, and "reference / products only" about the largest speed-up over the reference engine
that an engine could reach on this machine.

And an "auto" row: a layer with ``engine="auto"``, which times the engines on its first call
(``rnnkit/engines/autotune.py``; here with a fresh cache, so it measures under this run's
conditions) and runs the one it found fastest; the row names it. The header names the CPU model and
the instruction set torch's kernels use: which engine wins depends on them.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import random
import statistics
import os
import subprocess
import sys
import tempfile
import time

import torch

from rnnkit import Recurrent
from rnnkit.engines import autotune, engines_for
from rnnkit.engines.compiled import compiled_loops, product_in_use
from rnnkit.engines.workspace import WORKSPACE

CELLS = [("rnn", {}), ("gru", {}), ("gru-simple", {}), ("gru-cudnn", {}), ("lstm", {}), ("lstm", {"peepholes": True})]
FLOOR = "products only"
AUTO = "auto"
# Recurrent products per step, in blocks of n_a columns: the course's gru multiplies c<t-1> by
# [Wu; Wr] and then Γr * c<t-1> by Wc, a second product that must wait for the first.
RECURRENT_BLOCKS = {"rnn": [1], "gru": [2, 1], "gru-simple": [2], "gru-cudnn": [3], "lstm": [4]}


def packed_product(W: torch.Tensor, rows: int):
    """x -> x @ W for x (rows, K), W (K, N): MKL's packed GEMM (the weight packed once, as the fused
    engine's compiled loops do) where torch exports it, else ATen's mm."""
    weight = W.t().contiguous()  # (N, K), nn.Linear's layout
    try:
        packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, rows)
        return lambda x: torch.ops.mkl._mkl_linear(x, packed, weight, None, rows)
    except (AttributeError, RuntimeError):
        return lambda x: x @ W


class ProductsOnly:
    """The matrix products of one training step of a cell, with its shapes, and nothing else.

    The recurrent products run as the fused engine's compiled loops run theirs
    (``products_only``: each thread a block of batch rows, the CPU's product routine); without
    the compiled loops, one product per step, MKL's packed GEMM split over the threads."""

    def __init__(self, kind: str, n_x: int, n_a: int, B: int):
        blocks = RECURRENT_BLOCKS[kind]
        G = sum(blocks)
        self.W_x = torch.randn(n_x, G * n_a)  # [n_x, G n_a]
        self.W_a = [torch.randn(n_a, g * n_a) for g in blocks]  # [n_a, g n_a] each
        self.forward_products = [packed_product(W, B) for W in self.W_a]  # a<t-1> [B, n_a] -> [B, g n_a]
        self.backward_products = [packed_product(W.t(), B) for W in self.W_a]  # dz [B, g n_a] -> [B, n_a]
        self.widths = [W.shape[1] for W in self.W_a]
        self.n_a = n_a
        self.loops = compiled_loops()

    def recurrent_products(self, T: int, B: int) -> None:
        """Forward a<t-1> @ Wa per block and backward dz @ Waᵀ per block, for each of T steps."""
        if self.loops is not None:
            xs = [torch.zeros(B, self.n_a) for _ in self.W_a] + [torch.zeros(B, w) for w in self.widths]  # [B, K] each
            return self.loops.products_only(xs, self.W_a + [W.t() for W in self.W_a], T)
        a = torch.zeros(B, self.n_a)
        for _ in range(T):  # forward: one product per block per step
            outs = [product(a) for product in self.forward_products]
        for _ in range(T):  # backward through time: gate gradients back to a<t-1>
            for product, out in zip(self.backward_products, outs):
                product(out)

    def step(self, x: torch.Tensor) -> None:
        T, B, n_x = x.shape
        X = x.detach().reshape(T * B, n_x)  # [T B, n_x]
        Z = X @ self.W_x  # [T B, G n_a] input projection for all steps
        self.recurrent_products(T, B)
        A = torch.zeros(T * B, self.n_a)  # [T B, n_a] stacked a<t-1>
        for width in self.widths:  # weight gradients: one product after the loop
            A.t() @ Z[:, :width]
        X.t() @ Z  # dW_x [n_x, G n_a]
        Z @ self.W_x.t()  # dx [T B, n_x]


def entries() -> list[tuple[str, str]]:
    """(cell label, engine) pairs; torch.nn modules appear as ("torch.nn.LSTM", "torch")."""
    rows = [("torch.nn.LSTM", "torch"), ("torch.nn.GRU", "torch")]
    for kind, options in CELLS:
        cell = Recurrent(kind, 1, 1, **options).cells["l0"]
        label = kind + ("+peepholes" if options else "")
        rows += [(label, name) for name in engines_for(cell, "cpu")] + [(label, AUTO), (label, FLOOR)]
    return rows


def machine() -> str:
    """CPU model, the instruction set of torch's CPU kernels, threads, and the BLAS in use."""
    mkl = "MKL" if torch.backends.mkl.is_available() else "no MKL"
    onednn = "oneDNN" if torch.backends.mkldnn.is_available() else "no oneDNN"
    return f"{autotune.cpu_model()}, torch CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, {mkl}, {onednn}"



def build(label: str, engine: str, n_x: int, n_a: int, B: int):
    if engine == FLOOR:
        return ProductsOnly(label.partition("+")[0], n_x, n_a, B)
    if engine == "torch":
        return getattr(torch.nn, label.split(".")[-1])(n_x, n_a)
    kind, _, option = label.partition("+")
    return Recurrent(kind, n_x, n_a, engine=engine, **({"peepholes": True} if option else {}))


def step(module, x: torch.Tensor) -> None:
    if isinstance(module, ProductsOnly):
        return module.step(x)
    outputs = module(x)[0]
    outputs.sum().backward()


def time_all(rows, B, T, n_x, n_a, rounds, seed=0):
    torch.manual_seed(0)
    x = torch.randn(T, B, n_x, requires_grad=True)
    modules = {row: build(*row, n_x, n_a, B) for row in rows}
    for module in modules.values():  # warm-up: kernels, buffers, the compiled loops, auto's timing
        step(module, x)
        step(module, x)
    picks = {row: modules[row].engine_for(x.device, x).name for row in rows if row[1] == AUTO}  # chosen in the warm-up
    # Each auto row is timed right beside the row of the engine it picked, in either order, so that
    # their paired ratio is auto's own cost and not how far the VM's speed drifted between the two
    # moments of a round: identical work then differs only by the spread of one step's time.
    pairs = {auto: (auto[0], pick) for auto, pick in picks.items() if (auto[0], pick) in rows}
    paired = set(pairs) | set(pairs.values())
    units = [[row] for row in rows if row not in paired] + [[auto, pick] for auto, pick in pairs.items()]
    times = {row: [] for row in rows}
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(units)
        order = [row for unit in units for row in rng.sample(unit, len(unit))]
        for row in order:
            start = time.perf_counter()
            step(modules[row], x)
            times[row].append(time.perf_counter() - start)
    return {row: statistics.median(ts) * 1e3 for row, ts in times.items()}, picks, times


def paired_ratio(times, row, other) -> float:
    """Median over rounds of row's time / other's time in the same round: a drift of the machine's
    speed between rounds (a shared VM) cancels, which a ratio of the two medians does not."""
    return statistics.median(a / b for a, b in zip(times[row], times[other]))


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def peak_memory_here(label, engine, B, T, n_x, n_a) -> float:
    """MiB by which the resident set grows during one step (after a warm-up step and a trim)."""
    torch.manual_seed(0)
    x = torch.randn(T, B, n_x, requires_grad=True)
    module = build(label, engine, n_x, n_a, B)
    step(module, x)
    if isinstance(module, torch.nn.Module):
        module.zero_grad(set_to_none=True)
    x.grad = None
    gc.collect()
    WORKSPACE.clear()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark
        f.write("5")
    step(module, x)
    return (_status("VmHWM") - before) / 2**20


def peak_memory(label, engine, B, T, n_x, n_a) -> float:
    args = [sys.executable, __file__, "--memory-of", json.dumps([label, engine, B, T, n_x, n_a])]
    return float(subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="hidden sizes n_a")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=128, help="sequence length T")
    parser.add_argument("--inputs", type=int, default=64, help="input size n_x")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        compiled_loops()
        print(f"{peak_memory_here(*json.loads(args.memory_of)):.1f}")
        return

    os.environ.setdefault("RNNKIT_CACHE_DIR", tempfile.mkdtemp(prefix="rnnkit-autotune-"))  # auto measures in this run
    compiled = compiled_loops()
    print(f"CPU: {machine()}")
    loops = f"compiled, products: {product_in_use()}" if compiled else "torch ops"
    print(f"torch {torch.__version__}, fused loops: {loops}, auto: {'measured' if autotune.enabled() else 'fixed order'}")
    print(f"B={args.batch} T={args.steps} n_x={args.inputs}; ms per training step, median of {args.rounds} interleaved rounds\n")
    rows = entries()
    summary = []
    for n_a in args.sizes:
        ms, picks, times = time_all(rows, args.batch, args.steps, args.inputs, n_a, args.rounds)
        print(f"### n_a = {n_a}\n")
        print("| cell | engine | ms / step | × torch.nn.LSTM | × torch.nn.GRU | × its reference engine | × products only | peak MiB |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for label, engine in rows:
            t = ms[(label, engine)]
            ref, floor = ms.get((label, "reference")), ms.get((label, FLOOR))
            memory = "" if args.no_memory or engine in (FLOOR, AUTO) else f"{peak_memory(label, engine, args.batch, args.steps, args.inputs, n_a):.0f}"
            vs_ref = f"{t / ref:.2f}" if ref and engine != "reference" else ""
            vs_floor = f"{t / floor:.2f}" if floor and engine != FLOOR else ""
            shown = f"auto ({picks[(label, engine)]})" if engine == AUTO else engine
            print(
                f"| {label} | {shown} | {t:.1f} | {t / ms[('torch.nn.LSTM', 'torch')]:.2f} | "
                f"{t / ms[('torch.nn.GRU', 'torch')]:.2f} | {vs_ref} | {vs_floor} | {memory} |"
            )
        summary.append((n_a, ms, picks, times))
        print()
    print(targets(rows, summary))


def targets(rows, summary) -> str:
    """The issue's targets, each with its figure and whether this run meets it. Each ratio is the
    median over rounds of the two entries' times in the same round (``paired_ratio``)."""
    labels = list(dict.fromkeys(label for label, engine in rows if engine == AUTO))
    lines = ["### Targets\n"]

    def check(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    for n_a, ms, picks, times in summary:
        fastest = {label: min((e for l, e in rows if l == label and e not in (AUTO, FLOOR, "reference")), key=lambda e: ms[(label, e)]) for label in labels}
        # Paired per round: where auto runs the fastest engine itself, this is the spread of one
        # engine timed twice, which a ratio of medians inflates on a shared machine.
        auto_vs_best = {label: paired_ratio(times, (label, AUTO), (label, fastest[label])) for label in labels}
        above_floor = {label: paired_ratio(times, (label, "fused"), (label, FLOOR)) for label in labels}
        worst = max(auto_vs_best, key=auto_vs_best.get)
        lstm = paired_ratio(times, ("lstm", AUTO), ("torch.nn.LSTM", "torch"))
        cudnn = paired_ratio(times, ("gru-cudnn", AUTO), ("torch.nn.GRU", "torch"))
        course = paired_ratio(times, ("gru", AUTO), ("torch.nn.GRU", "torch"))
        lines += [
            f"- n_a={n_a}: auto / fastest engine <= 1.05: {check(auto_vs_best[worst] <= 1.05)} "
            f"({', '.join(f'{k} {v:.2f} [{picks[(k, AUTO)]}; fastest {fastest[k]}]' for k, v in auto_vs_best.items())})",
            f"  auto lstm <= 1.0 x nn.LSTM: {check(lstm <= 1.0)} ({lstm:.2f}); "
            f"auto gru-cudnn <= 1.0 x nn.GRU: {check(cudnn <= 1.0)} ({cudnn:.2f}); "
            f"course gru <= 0.9 x nn.GRU: {check(course <= 0.9)} ({course:.2f})",
            f"  fused / products only <= 1.25: {check(max(above_floor.values()) <= 1.25)} ({', '.join(f'{k} {v:.2f}' for k, v in above_floor.items())})",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
