"""What engine="auto" sees: the fused and native engines' LSTM training step, timed alone and
alternately as rnnkit/engines/autotune.py times them (its _step), 9 rounds, six repeats; prints the
best of the first 3 rounds, of all 9, and the median (docs/benchmarks.md, "A real AVX2 CPU again").

    python benchmarks/autotune_repeat.py 512
"""
import time, torch, statistics, math, sys
from rnnkit import Recurrent
from rnnkit.engines import autotune, engine_named
from rnnkit.engines.compiled import compiled_loops
compiled_loops()
torch.manual_seed(0)
T,B,nx,na=128,32,64,int(sys.argv[1])
layer=Recurrent("lstm",nx,na,engine="reference")
cell=next(m for m in layer.modules() if m.__class__.__name__.endswith("Cell") or hasattr(m,"state_names"))
x=torch.randn(T,B,nx)
cands=[engine_named("fused"),engine_named("native")]
for trial in range(6):
    runs={e.name:autotune._step(e,cell,x,True) for e in cands}
    for r in runs.values(): r()
    ts={k:[] for k in runs}
    for i in range(9):
        for k,r in runs.items():
            t=time.perf_counter(); r(); ts[k].append((time.perf_counter()-t)*1e3)
    mins={k:min(v) for k,v in ts.items()}; meds={k:statistics.median(v) for k,v in ts.items()}
    m3={k:min(v[:3]) for k,v in ts.items()}
    print(trial, "min3", {k:round(v) for k,v in m3.items()}, "min9",{k:round(v) for k,v in mins.items()}, "med9",{k:round(v) for k,v in meds.items()})
