"""Language-model benchmarks on the shared data (../shared/data by default).

    python benchmarks/lm.py names         # character model of names.txt: test NLL per character
    python benchmarks/lm.py ptb           # word model of the Penn Treebank: test perplexity
    python benchmarks/lm.py shakespeare   # character model of tinyshakespeare: valid loss after a fixed budget

Each prints its figures and the settings used; runs go to runs/bench-<name>/ (numbered if taken).
Split files are made in a temporary directory; nothing from the shared data is copied into the project.

* names: makemore's split exactly (torch.manual_seed(3407); the last 1000 of torch.randperm are the
  test set), and 1000 of the remaining names as validation set for early stopping; NLL per
  character counts the end-of-name token, as makemore does.
* ptb: the standard split, <eos> after every sentence, one stream cut into chunks of 35 steps;
  perplexity over the 82,430 test tokens.
* --cache (ptb): also the test perplexity with a continuous cache (Grave et al. 2017) whose N, θ and λ
  are chosen on the validation text (``rnnkit eval RUN test --cache-tune valid``); the model's own
  figure over the same one-column reading is printed beside it.
* shakespeare: the char-rnn convention, first 90% of the characters for training, last 10% for
  validation; the file is one stream, line breaks are tokens.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from rnnkit.runs import free_run_path, open_run, start
from rnnkit.decoding import SamplingOptions

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

SETTINGS = {
    "names": dict(
        level="char", batch_size=64, cell="lstm", embedding_size=64, hidden_size=512, num_layers=1, dropout=0.25,
        epochs=60, lr=3e-3, schedule="cosine", patience=8, time_limit=570, log_every=100,
    ),
    "ptb": dict(
        level="whitespace", batching="stream", batch_size=20, bptt=35, cell="lstm", embedding_size=256, hidden_size=256,
        num_layers=2, dropout=0.35, tie_embeddings=True, optimizer="sgd", lr=20.0, clip=0.25, schedule="cosine",
        epochs=19, time_limit=3480, log_every=200,
    ),
    "shakespeare": dict(
        level="char", line_breaks="token", batching="stream", batch_size=32, bptt=128, cell="lstm", embedding_size=64,
        hidden_size=512, num_layers=2, dropout=0.2, lr=2e-3, schedule="cosine", epochs=12, time_limit=600,
        eval_every=200, log_every=50,
    ),
}  # fmt: skip


def names_files(tmp: Path) -> dict:
    words = [w.strip() for w in (DATA / "names" / "names.txt").read_text().splitlines()]
    words = [w for w in words if w]
    torch.manual_seed(3407)
    order = torch.randperm(len(words)).tolist()
    test_size = min(1000, int(len(words) * 0.1))
    train, test = [words[i] for i in order[:-test_size]], [words[i] for i in order[-test_size:]]
    valid, train = train[-1000:], train[:-1000]
    paths = {}
    for name, lines in (("train", train), ("valid", valid), ("test", test)):
        paths[name] = tmp / f"names.{name}.txt"
        paths[name].write_text("\n".join(lines) + "\n")
    return {"train": [str(paths["train"])], "valid": str(paths["valid"]), "test": str(paths["test"])}


def ptb_files(tmp: Path) -> dict:
    return {"train": [str(DATA / "ptb" / "ptb.train.txt")], "valid": str(DATA / "ptb" / "ptb.valid.txt"), "test": str(DATA / "ptb" / "ptb.test.txt")}


def shakespeare_files(tmp: Path) -> dict:
    text = (DATA / "tinyshakespeare" / "input.txt").read_text()
    cut = int(len(text) * 0.9)
    (tmp / "train.txt").write_text(text[:cut])
    (tmp / "valid.txt").write_text(text[cut:])
    return {"train": [str(tmp / "train.txt")], "valid": str(tmp / "valid.txt")}


FILES = {"names": names_files, "ptb": ptb_files, "shakespeare": shakespeare_files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=sorted(SETTINGS))
    parser.add_argument("--set", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[], help="override a setting (JSON value)")
    parser.add_argument("--cache", action="store_true", help="also the test figure with a continuous cache tuned on the validation text")
    parser.add_argument("--run", help="no training: the --cache figures of this finished run")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    settings = dict(SETTINGS[args.benchmark])
    for key, value in args.set:
        settings[key] = json.loads(value)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; settings: {json.dumps(settings)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = FILES[args.benchmark](Path(tmp))
        if args.run:
            return print_cached(Path(args.run), files)
        values = {**files, **settings, "progress": False}
        run_path = free_run_path(Path("runs") / f"bench-{args.benchmark}")
        started = time.perf_counter()
        run, summary = start("lm", values, run_path)
        wall = time.perf_counter() - started
        if args.cache:
            print_cached(run.path, files)
    print(f"\n== {args.benchmark}: {json.dumps(summary)}")
    print(f"wall time {wall:.0f} s (training {summary['train_seconds']:.0f} s); run {run.path}")
    if "test_loss" in summary:
        print(f"test loss {summary['test_loss']:.4f} nats per token, perplexity {summary['test_perplexity']:.2f}")
    if "best_valid_criterion" in summary:
        print(f"best valid loss {summary['best_valid_criterion']:.4f} nats per token, perplexity {math.exp(summary['best_valid_criterion']):.2f}")
    task, model, _, device = open_run(run.path)
    length = 300 if args.benchmark == "shakespeare" else 40
    prime = "ROMEO:\n" if args.benchmark == "shakespeare" else ""
    print("samples (temperature 0.8):")
    for text, seen in task.generate(model, 3 if args.benchmark == "shakespeare" else 8, SamplingOptions(temperature=0.8, max_length=length), seed=0, prime=prime, device=device):
        print(f"---\n{text}" if args.benchmark == "shakespeare" else f"  {text}  ({'seen' if seen else 'novel'})")


def print_cached(run_path: Path, files: dict) -> None:
    """The test perplexity of a run's best weights with a continuous cache tuned on the validation file."""
    task, model, _, device = open_run(run_path)
    started = time.perf_counter()
    cache, tuning = task.tune_cache(model, files["valid"], device)
    result = task.evaluate_file(model, files["test"], device, cache=cache)
    print(f"continuous cache chosen on the validation text: {json.dumps(cache.as_dict())}, valid perplexity {tuning['perplexity']:.2f} "
          f"(the model alone {tuning['model_perplexity']:.2f}); tuning and test {time.perf_counter() - started:.0f} s")  # fmt: skip
    print(f"test perplexity with the cache {result['perplexity']:.2f} ({result['count']} tokens, one column); the model alone {result['model_perplexity']:.2f}")


if __name__ == "__main__":
    main()
