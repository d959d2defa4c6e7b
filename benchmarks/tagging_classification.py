"""Tagging and classification benchmarks on the shared data (../shared/data), without pretrained
word vectors, each run one-direction and bidirectional with the same settings and time budget.

    python benchmarks/tagging_classification.py conll          # CoNLL-2003 English NER: test entity F1
    python benchmarks/tagging_classification.py sst5           # SST-5: test accuracy on whole sentences
    python benchmarks/tagging_classification.py conll --only bi

Runs go to runs/bench-<name>-<direction>/ (numbered if taken). The figures printed at the end are
the test scores of the weights with the best validation score (entity F1 on eng.testa, accuracy on
the SST dev sentences).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from rnnkit.runs import free_run_path, start

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

BENCHMARKS = {
    "conll": dict(
        task="tagger",
        files=lambda: {"train": [str(DATA / "conll2003" / "eng.train")], "valid": str(DATA / "conll2003" / "eng.testa"), "test": str(DATA / "conll2003" / "eng.testb")},
        settings=dict(
            scheme="iob1", train_scheme="iobes", batch_size=10, word_embedding_size=100, char_embedding_size=25,
            char_hidden_size=25, casing_size=4, cell="lstm", hidden_size=200, num_layers=1, dropout=0.5, crf=True,
            optimizer="adam", lr=2e-3, schedule="cosine", clip=5.0, epochs=30, patience=6, time_limit=1800, log_every=200,
        ),
    ),
    "sst5": dict(
        task="classifier",
        files=lambda: {"train": [str(DATA / "sst5" / "trees" / "train.txt")], "valid": str(DATA / "sst5" / "trees" / "dev.txt"), "test": str(DATA / "sst5" / "trees" / "test.txt")},
        settings=dict(
            format="ptb-trees", phrases=True, level="whitespace", lowercase=True, batch_size=64, embedding_size=64,
            cell="lstm", hidden_size=64, num_layers=1, dropout=0.5, pooling="max", optimizer="adam", lr=2e-3,
            weight_decay=0.0, schedule="cosine", epochs=10, eval_every=600, patience=6, time_limit=1200, log_every=200,
        ),
    ),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--only", choices=["uni", "bi"], help="run one direction setting only")
    parser.add_argument("--set", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[], help="override a setting (JSON value)")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    spec = BENCHMARKS[args.benchmark]
    settings = dict(spec["settings"])
    for key, value in args.set:
        settings[key] = json.loads(value)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; settings: {json.dumps(settings)}", flush=True)
    results = {}
    for direction in ("uni", "bi"):
        if args.only and direction != args.only:
            continue
        values = {**spec["files"](), **settings, "bidirectional": direction == "bi", "progress": False}
        run_path = free_run_path(Path("runs") / f"bench-{args.benchmark}-{direction}")
        started = time.perf_counter()
        run, summary = start(spec["task"], values, run_path)
        summary["wall_seconds"] = round(time.perf_counter() - started)
        results[direction] = summary
        print(f"\n== {args.benchmark} {direction}: {json.dumps(summary)}\n", flush=True)
    print(f"== {args.benchmark} summary")
    for direction, summary in results.items():
        if "test_loss" not in summary:
            print(f"{direction:3s}: no test figures ({summary.get('stopped', 'not finished')})")
            continue
        if spec["task"] == "tagger":
            figure = f"test entity F1 {100 * summary['test_f1']:.2f} (P {100 * summary['test_precision']:.2f}, R {100 * summary['test_recall']:.2f})"
        else:
            figure = f"test accuracy {100 * summary['test_accuracy']:.2f}, macro-F1 {100 * summary['test_macro_f1']:.2f}, MAE {summary['test_mae']:.3f}"
        print(f"{direction:3s}: {figure}; {summary['steps']} steps, {summary['train_seconds']:.0f} s training, {summary['wall_seconds']} s wall")


if __name__ == "__main__":
    main()
