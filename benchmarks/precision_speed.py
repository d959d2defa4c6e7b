"""Training speed of bfloat16 autocast against float32 on the CPU, as a ratio from one interleaved run.

    python benchmarks/precision_speed.py                 # the Penn Treebank model of benchmarks/lm.py
    python benchmarks/precision_speed.py --steps 200 --rounds 5

Each round trains the benchmark's model from scratch for ``--steps`` steps once in each precision,
the order alternating between rounds so that neither always runs on a warmer or busier machine; a
first round is a warm-up and is not counted (it also fills the engine autotune cache). Printed: the
CPU (model name and whether it multiplies bfloat16 natively), ms per step of each precision per
round, the ratio bf16 / fp32 per round and its median, and each run's validation perplexity after its
steps (the same seed: the two precisions should be close). ``--precision bf16`` is refused on CPUs
without native bfloat16 (README, "Speed"), so there this script says so and stops.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm import DATA, FILES, SETTINGS  # noqa: E402  (the benchmark's own model and files)

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
        ratios = []
        for round_ in range(args.rounds + 1):
            order = ("fp32", "bf16") if round_ % 2 == 0 else ("bf16", "fp32")
            ms, ppl = {}, {}
            for precision in order:
                ms[precision], ppl[precision] = train_for(values, precision, args.steps, Path(tmp) / f"run-{round_}-{precision}")
            if round_ == 0:
                print(f"warm-up: fp32 {ms['fp32']:.1f} ms/step, bf16 {ms['bf16']:.1f} ms/step (not counted)", flush=True)
                continue
            ratios.append(ms["bf16"] / ms["fp32"])
            print(f"round {round_} ({' then '.join(order)}): fp32 {ms['fp32']:.1f} ms/step, bf16 {ms['bf16']:.1f} ms/step, "
                  f"bf16 / fp32 {ratios[-1]:.3f}; valid perplexity after {args.steps} steps fp32 {ppl['fp32']:.2f}, bf16 {ppl['bf16']:.2f}", flush=True)  # fmt: skip
    print(f"\nmedian bf16 / fp32 time per step: {statistics.median(ratios):.3f} over {len(ratios)} rounds")


if __name__ == "__main__":
    main()
