"""The fused engine's training step under each product routine of the compiled loops (default: ATen's
addmm and oneDNN's matmul), in one process, rounds shuffled, with torch.nn.LSTM and torch.nn.GRU
beside them; prints medians and, per cell, the paired median of each routine / the first one
(docs/benchmarks.md, "A real AVX2 CPU again" and "The loops' own product kernel").

    python benchmarks/product_routines.py 11 256,512 lstm,gru,rnn,gru-simple
    python benchmarks/product_routines.py 9 256,512 lstm,gru,rnn,gru-simple aten,packed-fma
    python benchmarks/product_routines.py 9 256,512 lstm,gru aten,packed-fma 4   # batches of 4 rows (default 32)
"""
import time, torch, statistics, sys, random
from rnnkit import Recurrent
from rnnkit.engines.compiled import compiled_loops
torch.manual_seed(0)
mod=compiled_loops()
T,B,nx=128,32,64
rounds=int(sys.argv[1]); sizes=[int(s) for s in sys.argv[2].split(",")]; cells=sys.argv[3].split(",")
routines=(sys.argv[4] if len(sys.argv) > 4 else "aten,onednn").split(",")
B=int(sys.argv[5]) if len(sys.argv) > 5 else B
x=torch.randn(T,B,nx)
print(f"B={B} T={T} n_x={nx}; ms per training step, {rounds} rounds")
def step(m):
    x1=x.clone().requires_grad_(True)
    m(x1)[0].sum().backward()
for na in sizes:
    runs={}
    for c in cells:
        f=Recurrent(c,nx,na,engine="fused")
        for p in routines:
            runs[(c,p)]=(lambda f=f,p=p: (mod.use_product(p), step(f)))
    runs[("nn.LSTM","")]=lambda m=torch.nn.LSTM(nx,na): step(m)
    runs[("nn.GRU","")]=lambda m=torch.nn.GRU(nx,na): step(m)
    for r in runs.values(): r()
    ts={k:[] for k in runs}
    keys=list(runs)
    for i in range(rounds):
        random.shuffle(keys)
        for k in keys:
            t=time.perf_counter(); runs[k](); ts[k].append(time.perf_counter()-t)
    print(f"n_a={na}")
    for k,v in ts.items(): print(f"  {k[0]:8s} {k[1]:7s} med {statistics.median(v)*1e3:7.1f} min {min(v)*1e3:7.1f}")
    for c in cells:
        a=ts[(c,routines[0])]
        for other in routines[1:]:
            o=ts[(c,other)]
            print(f"  {c}: {other}/{routines[0]} paired median {statistics.median(q/p for p,q in zip(a,o)):.3f}")
