"""The fused engine's bias through the augmented input x̂<t> = [x<t>, 1] (engines/fused.py,
``_FusedRecurrence``: one product forward, one for [dW_x, db]) against the way it was done before
(commit 98358ea: addmm adding b, then dpreᵀ x and a separate sum over dpre for db), in one process,
rounds shuffled; prints each cell's medians and the paired median of new / old
(docs/benchmarks.md, "Intel Xeon with AMX").

    python benchmarks/augmented_input.py 11          # rounds
    ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/augmented_input.py 9

``OLD`` below is that earlier autograd glue, kept only as the baseline of this comparison.
"""
import random, statistics, sys, time
import torch
from torch.autograd.function import once_differentiable
import rnnkit.engines.fused as fused
from rnnkit import Recurrent

NEW = fused._FusedRecurrence

class OLD(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kernel, n_params, x, W_x, b, *tensors):
        T, B, n_x = x.shape
        x_proj = kernel.work(T, B, W_x.shape[0], like=x)
        torch.addmm(b, x.reshape(T * B, n_x), W_x.t(), out=x_proj.view(T * B, -1))
        outputs, final = kernel.forward(x_proj, tensors[:n_params], tensors[n_params:])
        ctx.kernel = kernel  # every step here trains: the kernel is always kept for the backward pass
        ctx.save_for_backward(x, W_x)
        return (outputs, *final)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, *d_final):
        (x, W_x), kernel = ctx.saved_tensors, ctx.kernel
        d_x_proj, d_params, d_state0 = kernel.backward(d_out, d_final)
        d_pre = d_x_proj.flatten(0, 1)  # [T B, G n_a]
        grads = d_pre.mm(W_x).view_as(x), d_pre.t().mm(x.flatten(0, 1)), d_pre.sum(dim=0)  # dx, dW_x, db
        kernel.release(backward_only=True)
        return (None, None, *grads, *d_params, *d_state0)

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
x = torch.randn(128, 32, 64)
cells = [("rnn", {}), ("gru", {}), ("gru-simple", {}), ("gru-cudnn", {}), ("lstm", {}), ("lstm", {"peepholes": True})]
for n_a in (256, 512):
    runs = {}
    for kind, opt in cells:
        layer = Recurrent(kind, 64, n_a, engine="fused", **opt)
        for name, fn in (("old", OLD), ("new", NEW)):
            def run(layer=layer, fn=fn):
                fused._FusedRecurrence = fn
                x1 = x.clone().requires_grad_(True)
                layer(x1)[0].sum().backward()
            runs[(kind + ("+peepholes" if opt else ""), name)] = run
    for r in runs.values(): r(); r()
    times = {k: [] for k in runs}
    for _ in range(rounds):
        keys = list(runs); random.shuffle(keys)
        for k in keys:
            t = time.perf_counter(); runs[k](); times[k].append(time.perf_counter() - t)
    for label in dict.fromkeys(k[0] for k in runs):
        o, n = times[(label, "old")], times[(label, "new")]
        print(f"n_a={n_a} {label:15s} old {statistics.median(o)*1e3:7.1f} ms  new {statistics.median(n)*1e3:7.1f} ms  "
              f"new/old paired median {statistics.median(b / a for a, b in zip(o, n)):.3f}", flush=True)
