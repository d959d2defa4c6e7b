"""Training speed of bfloat16 autocast against float32 on the CPU, as a ratio from one interleaved run.

    python benchmarks/precision_speed.py                 # the Penn Treebank model of benchmarks/lm.py
    python benchmarks/precision_speed.py --steps 200 --rounds 5

Each round trains the benchmark's model from scratch for ``--steps`` steps once in each variant —
fp32; bf16; and bf16 with the fused engine's products outside its time loop kept in float32, as
before they took autocast's dtype — the order rotating between rounds so that none always runs on
a warmer or busier machine; a first round is a warm-up and is not counted (it also fills the engine
autotune cache). Printed: the CPU (model name and whether it multiplies bfloat16 natively), ms per
step of each variant per round, each one's ratio to fp32 per round and its median, and each run's
validation perplexity after its steps (the same seed: the variants should be close). ``--precision bf16`` is refused on CPUs
without native bfloat16 (README, "Speed"), so there this script says so and stops.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm import DATA, FILES, SETTINGS  # noqa: E402  (the benchmark's own model and files)

import rnnkit.engines.fused as fused  # noqa: E402
from rnnkit.runs import start  # noqa: E402
from rnnkit.training.trainer import cpu_native_bfloat16  # noqa: E402


def train_for(values: dict, precision: str, steps: int, run_path: Path) -> tuple[float, float]:
    """(ms per step, validation perplexity) of ``steps`` training steps in ``precision``."""
    _, summary = start("lm", {**values, "precision": precision, "max_steps": steps}, run_path)
    return 1000 * summary["train_seconds"] / summary["steps"], math.exp(summary["best_valid_criterion"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", choices=sorted(SETTINGS), default="ptb")
    parser.add_argument("--steps", type=int, default=150, help="training steps per run (fewer than an epoch, so no evaluation is timed)")
    parser.add_argument("--rounds", type=int, default=3, help="counted rounds, after one warm-up round")
    parser.add_argument("--set", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[], help="override a setting (JSON value)")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    cpu = torch.cpu.get_capabilities().get("cpu_name", "unknown") if hasattr(torch.cpu, "get_capabilities") else "unknown"
    print(f"CPU {cpu}, ISA {torch.backends.cpu.get_cpu_capability()}, native bfloat16: {cpu_native_bfloat16()}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    if not cpu_native_bfloat16():
        sys.exit("this CPU has no native bfloat16 (AVX512_BF16 or AMX): rnnkit refuses --precision bf16 on it")
    settings = dict(SETTINGS[args.benchmark])
    for key, value in args.set:
        settings[key] = json.loads(value)
    with tempfile.TemporaryDirectory() as tmp:
        values = {**FILES[args.benchmark](Path(tmp)), **settings, "progress": False, "time_limit": None, "test": None}  # no test: only training is compared
        ratios: dict[str, list[float]] = {name: [] for name in VARIANTS if name != "fp32"}
        for round_ in range(args.rounds + 1):
            names = list(VARIANTS)
            order = names[round_ % len(names) :] + names[: round_ % len(names)]  # each variant first in turn
            ms, ppl = {}, {}
            for name in order:
                with variant(name):
                    ms[name], ppl[name] = train_for(values, VARIANTS[name], args.steps, Path(tmp) / f"run-{round_}-{name}")
            times = ", ".join(f"{name} {ms[name]:.1f}" for name in names)
            if round_ == 0:
                print(f"warm-up, ms per step: {times} (not counted)", flush=True)
                continue
            for name in ratios:
                ratios[name].append(ms[name] / ms["fp32"])
            shown = ", ".join(f"{name} / fp32 {ratios[name][-1]:.3f}" for name in ratios)
            perplexities = ", ".join(f"{name} {ppl[name]:.2f}" for name in names)
            print(f"round {round_} ({' then '.join(order)}), ms per step: {times}; {shown}; "
                  f"valid perplexity after {args.steps} steps: {perplexities}", flush=True)  # fmt: skip
    print()
    for name, values_ in ratios.items():
        print(f"median {name} / fp32 time per step: {statistics.median(values_):.3f} over {len(values_)} rounds")


# variant -> the --precision it trains with. "bf16, fp32 engine products" is bf16 as it was before the
# fused engine ran its products outside the time loop in autocast's dtype: what that change is worth.
VARIANTS = {"fp32": "fp32", "bf16": "bf16", "bf16-engine-fp32": "bf16"}


@contextlib.contextmanager
def variant(name: str):
    """The engine as the variant runs it: ``bf16-engine-fp32`` keeps the fused engine's products
    outside its loop in float32 (autocast's dtype, as the engine reads it, set to float32)."""
    if name != "bf16-engine-fp32":
        yield
        return
    original = fused.autocast_dtype_on
    fused.autocast_dtype_on = lambda device: torch.float32
    try:
        yield
    finally:
        fused.autocast_dtype_on = original

if __name__ == "__main__":
    main()
