"""Host time of the native engine next to torch.nn.LSTM: what rnnkit's wrapper adds per training step.

    python benchmarks/native_host.py                  # CPU; a tiny shape, so the step is all host time
    python benchmarks/native_host.py --device cuda    # on a GPU: the same shape, queued back to back

At B=8, H=256 a cuDNN training step takes about 1.3 ms of GPU time, and a step that spends longer on
the host than that leaves the GPU waiting (docs/gpu/2026-11-27-h200.md measured rnnkit's native
lstm 0.4 ms slower there, and level at the larger shapes). The host cost of a step grows with the
number of operations it records and the number of autograd nodes its backward walks, so this
script prints both, with the microseconds per step of:

* ``torch.nn.LSTM``;
* rnnkit's ``lstm`` on the native engine with the weights handed over as one flat buffer (the CUDA
  layout) and as separate contiguous tensors (the CPU layout).

A step is ``layer(x)[0].sum().backward()``. Rounds interleave the entries; the best round counts
(the least disturbed by the rest of the machine).
"""

from __future__ import annotations

import argparse
import time

import torch

from rnnkit import Recurrent
from rnnkit.engines import native


def autograd_nodes(output: torch.Tensor) -> int:
    """How many autograd nodes a backward pass from ``output`` walks."""
    seen, stack = set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack += [next_node for next_node, _ in node.next_functions]
    return len(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", nargs=3, type=int, default=[1, 1, 4], metavar=("T", "B", "H"))
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    T, B, H = args.shape
    theirs = torch.nn.LSTM(H, H, bidirectional=args.bidirectional).to(device)
    ours = Recurrent.from_torch(theirs, engine="native")
    x = torch.randn(T, B, H, device=device, requires_grad=True)

    def entry(module, flat):
        def step():
            native.FLAT_WEIGHTS[device.type] = flat
            module(x)[0].sum().backward()

        return step

    entries = {"torch.nn.LSTM": entry(theirs, True), "native, one flat buffer": entry(ours, True), "native, separate weights": entry(ours, False)}
    best = {}
    for _ in range(args.rounds):
        for name, step in entries.items():
            for _ in range(20):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best.get(name, float("inf")), (time.perf_counter() - start) / args.steps * 1e6)
    nodes = {}
    for name, (module, flat) in {"torch.nn.LSTM": (theirs, True), "native, one flat buffer": (ours, True), "native, separate weights": (ours, False)}.items():
        native.FLAT_WEIGHTS[device.type] = flat
        nodes[name] = autograd_nodes(module(x)[0])
    print(f"device {device}, T={T} B={B} H={H}{' bidirectional' if args.bidirectional else ''}, best of {args.rounds} rounds of {args.steps} steps\n")
    print("| entry | µs per training step | over torch.nn.LSTM | autograd nodes |")
    print("|---|---:|---:|---:|")
    for name, us in best.items():
        print(f"| {name} | {us:.1f} | {us - best['torch.nn.LSTM']:+.1f} | {nodes[name]} |")


if __name__ == "__main__":
    main()
