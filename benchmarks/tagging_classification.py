"""Tagging and classification benchmarks on the shared data (../shared/data), without pretrained
word vectors, each run one-direction and bidirectional with the same settings and time budget.

    python benchmarks/tagging_classification.py conll          # CoNLL-2003 English NER: test entity F1
    python benchmarks/tagging_classification.py sst5           # SST-5: test accuracy on whole sentences
    python benchmarks/tagging_classification.py conll --only bi
    python benchmarks/tagging_classification.py sst5 --only bi --seeds 0-7   # eight seeds, their mean and
                                                                             # (classifiers) their ensemble

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
            weight_decay=0.0, schedule="cosine", epochs=10, eval_every=600, patience=12, time_limit=1200, log_every=200,
        ),
    ),
}  # fmt: skip


def seed_list(text: str) -> list[int]:
    """'0-7' or '0,3,5' -> the seeds."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds += list(range(int(first), int(last or first) + 1))
    return seeds


def figure(task: str, summary: dict) -> str:
    if task == "tagger":
        return f"test entity F1 {100 * summary['test_f1']:.2f} (P {100 * summary['test_precision']:.2f}, R {100 * summary['test_recall']:.2f})"
    return f"test accuracy {100 * summary['test_accuracy']:.2f}, macro-F1 {100 * summary['test_macro_f1']:.2f}, MAE {summary['test_mae']:.3f}"


def ensemble_of(runs: list[Path], test_file: str) -> str:
    """The classifiers' class probabilities averaged over ``runs``, scored on the test file."""
    from rnnkit.runs import open_run

    (task, model, _, device), *others = [open_run(run) for run in runs]
    result = task.evaluate_file(model, test_file, device, [(t, m) for t, m, _, _ in others])
    return task.describe(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--only", choices=["uni", "bi"], help="run one direction setting only")
    parser.add_argument("--seeds", type=seed_list, help="run each of these seeds ('0-7', '0,2'): their mean, and for a classifier their ensemble")
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
        for seed in args.seeds or [settings.get("seed", 0)]:
            values = {**spec["files"](), **settings, "seed": seed, "bidirectional": direction == "bi", "progress": False}
            run_path = free_run_path(Path("runs") / f"bench-{args.benchmark}-{direction}")
            started = time.perf_counter()
            run, summary = start(spec["task"], values, run_path)
            summary["wall_seconds"] = round(time.perf_counter() - started)
            summary["run"] = str(run_path)
            results[(direction, seed)] = summary
            print(f"\n== {args.benchmark} {direction} seed {seed}: {json.dumps(summary)}\n", flush=True)
    print(f"== {args.benchmark} summary")
    for (direction, seed), summary in results.items():
        if "test_loss" not in summary:
            print(f"{direction:3s} seed {seed}: no test figures ({summary.get('stopped', 'not finished')})")
            continue
        print(f"{direction:3s} seed {seed}: {figure(spec['task'], summary)}; {summary['steps']} steps, {summary['train_seconds']:.0f} s training, {summary['wall_seconds']} s wall")
    if args.seeds and len(args.seeds) > 1:
        key = "test_f1" if spec["task"] == "tagger" else "test_accuracy"
        for direction in ("uni", "bi"):
            done = [s for (d, _), s in results.items() if d == direction and key in s]
            if not done:
                continue
            values = [100 * s[key] for s in done]
            mean = sum(values) / len(values)
            spread = (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
            print(f"{direction:3s}: mean {key} over {len(values)} seeds {mean:.2f} (standard deviation {spread:.2f})")
            if spec["task"] == "classifier":
                print(f"{direction:3s}: ensemble of the {len(done)} runs: {ensemble_of([Path(s['run']) for s in done], spec['files']()['test'])}")


if __name__ == "__main__":
    main()
