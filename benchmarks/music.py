"""JSB Chorales (quarter-note split 229/76/77): test negative log-likelihood per time step of a
piano-roll model (88 independent Bernoulli outputs per step) for tanh RNN, GRU and LSTM, one table.

    python benchmarks/music.py                     # all three cells
    python benchmarks/music.py --cells lstm --set hidden_size 512

Chung et al. (2014) report 9.10 (tanh RNN), 8.54 (GRU) and 8.67 (LSTM) on this split. Each cell
trains with the same settings and the same time budget; the best validation epoch is tested.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from rnnkit.runs import free_run_path, start

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "jsb_chorales" / "jsb-chorales-quarter.json"
# The recipe found by the runs recorded in docs/benchmarks.md: small batches, dropout 0.5 on the
# hidden units but only 0.1 on the fed-back notes, a learning rate that stays high (a cosine over
# 300 epochs that early stopping ends long before), and a moving average of the weights.
SETTINGS = dict(
    representation="piano-roll", batch_size=2, hidden_size=384, num_layers=1, dropout=0.5, input_dropout=0.1,
    transpose=0, optimizer="adam", lr=2e-3, weight_decay=0.0, schedule="cosine", epochs=300, patience=15,
    ema=0.998, time_limit=900, log_every=100,
)  # fmt: skip
PUBLISHED = {"rnn": 9.10, "gru": 8.54, "lstm": 8.67}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    parser.add_argument("--set", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[], help="override a setting (JSON value)")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"JSB data not found at {DATA}")
    settings = dict(SETTINGS)
    for key, value in args.set:
        settings[key] = json.loads(value)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; settings: {json.dumps(settings)}", flush=True)
    rows = []
    for cell in args.cells:
        started = time.perf_counter()
        run, summary = start("music", {"train": [str(DATA)], **settings, "cell": cell, "progress": False}, free_run_path(Path("runs") / f"bench-jsb-{cell}"))
        rows.append((cell, summary, time.perf_counter() - started))
        print(f"== {cell}: {json.dumps(summary)}", flush=True)
    print("\n| cell | test NLL per step | best valid NLL | Chung et al. 2014 | steps | training s |\n|---|---:|---:|---:|---:|---:|")
    for cell, s, wall in rows:
        print(f"| {cell} | {s['test_nll_per_step']:.3f} | {s['best_valid_criterion']:.3f} | {PUBLISHED.get(cell, float('nan')):.2f} | {s['steps']} | {s['train_seconds']:.0f} |")


if __name__ == "__main__":
    main()
