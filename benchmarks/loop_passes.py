"""What each compiled time loop costs beyond its recurrent products: the element-wise passes.

    python benchmarks/loop_passes.py                 # n_a = 256, 21 rounds
    python benchmarks/loop_passes.py 512 --rounds 11

For the rnn (the least element-wise work per unit: one tanh) and the LSTM (the most: three sigmoids
and two tanh forward), times the fused engine's compiled forward and backward loops (B=32, T=128)
and, in the same interleaved rounds, ``products_only`` running the same products as they run them
(each thread a block of rows, this CPU's product routine) and nothing else. The difference is what
the element-wise passes cost; it is printed in wall-clock ns per unit (one unit of one row at one
step, all threads together), so that a pass far above what its arithmetic needs stands out. A stall of that kind was
found this way: GCC's speculative constants at exp's clamps were denormal numbers, and every
vector of the LSTM's forward pass took microcode assists (docs/benchmarks.md, "Denormals").
Each measurement includes restoring its input buffer from a copy, the same in a loop's entry and
its products' entry.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from rnnkit.engines import autotune
from rnnkit.engines.compiled import compiled_loops, product_in_use


def entries(loops, n: int, T: int, B: int) -> dict[str, tuple]:
    """name -> (function, units of element-wise work), every function restoring its inputs first."""
    torch.manual_seed(0)
    sizes = [B] * T
    out: dict[str, tuple] = {}
    for kind, blocks in (("rnn", 1), ("lstm", 4)):
        W_a = torch.randn(blocks * n, n) * (1.0 / n**0.5)  # [G n_a, n_a]
        G0 = torch.randn(T, B, blocks * n)  # [T, B, G n_a] input products
        G = G0.clone()
        S = torch.zeros(T + 1, B, n)  # [T + 1, B, n_a] states
        D0 = torch.randn(T + 1, B, n) * 0.1  # [T + 1, B, n_a] state gradients arriving from outside
        D = D0.clone()
        d_pre = torch.empty(T, B, blocks * n)  # [T, B, G n_a]
        if kind == "rnn":
            forward = lambda G=G, G0=G0, W_a=W_a, S=S: (G.copy_(G0), loops.rnn_forward(G, W_a, S, sizes, False))
            backward = lambda D=D, D0=D0, S=S, W_a=W_a, d_pre=d_pre: (D.copy_(D0), loops.rnn_backward(S, W_a, D, d_pre, sizes, False))
        else:
            C = torch.zeros(T + 1, B, n)  # [T + 1, B, n_a] memory cells
            TC = torch.empty(T, B, n)  # [T, B, n_a] tanh(c<t>)
            carry = torch.zeros(B, n)  # [B, n_a]
            forward = lambda G=G, G0=G0, W_a=W_a, S=S, C=C, TC=TC: (G.copy_(G0), loops.lstm_forward(G, W_a, None, S, C, TC, sizes))
            forward()  # the backward loop reads the activated gates the forward loop leaves in G ...
            G_backward = G.clone()  # ... and its own copy of them, which the forward entry does not overwrite
            backward = lambda D=D, D0=D0, G=G_backward, C=C, TC=TC, W_a=W_a, carry=carry, d_pre=d_pre: (
                D.copy_(D0),
                carry.zero_(),
                loops.lstm_backward(G, C, TC, W_a, None, D, carry, d_pre, sizes),
            )
        a = torch.zeros(B, n)  # [B, n_a]
        dz = torch.zeros(B, blocks * n)  # [B, G n_a]
        products_forward = lambda G=G, G0=G0, a=a, W_a=W_a: (G.copy_(G0), loops.products_only([a], [W_a.t()], T))
        products_backward = lambda D=D, D0=D0, dz=dz, W_a=W_a: (D.copy_(D0), loops.products_only([dz], [W_a], T))
        units = T * B * n
        out[f"{kind} forward"] = (forward, units)
        out[f"{kind} forward products"] = (products_forward, units)
        out[f"{kind} backward"] = (backward, units)
        out[f"{kind} backward products"] = (products_backward, units)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", type=int, nargs="*", default=[256], help="hidden sizes n_a")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=128)
    args = parser.parse_args()
    loops = compiled_loops()
    if loops is None:
        raise SystemExit("loop_passes.py: the compiled CPU loops are not available here")
    print(f"CPU: {autotune.cpu_model()}, torch CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, products: {product_in_use()}")
    print(f"B={args.batch} T={args.steps}; ms per call, median of {args.rounds} interleaved rounds\n")
    for n in args.sizes:
        table = entries(loops, n, args.steps, args.batch)
        times: dict[str, list[float]] = {name: [] for name in table}
        for function, _ in table.values():  # warm up: first-call packing, page faults
            function()
        for _ in range(args.rounds):
            names = list(table)
            random.shuffle(names)
            for name in names:
                start = time.perf_counter()
                table[name][0]()
                times[name].append(time.perf_counter() - start)
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"### n_a = {n}\n")
        print("| loop | ms | its products only, ms | loop / products | element-wise ns per unit |")
        print("|---|---:|---:|---:|---:|")
        for name, (_, units) in table.items():
            if name.endswith("products"):
                continue
            loop, floor = median[name], median[name + " products"]
            print(f"| {name} | {loop * 1e3:.2f} | {floor * 1e3:.2f} | {loop / floor:.2f} | {(loop - floor) / units * 1e9:.2f} |")
        print()


if __name__ == "__main__":
    main()
