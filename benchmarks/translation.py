"""Translation benchmarks.

    python benchmarks/translation.py dates       # the built-in date task: exact match on 1,000 held-out dates
    python benchmarks/translation.py multi30k    # Multi30k de->en: test BLEU and chrF (sacreBLEU), training time

Multi30k uses the raw files (cased, untokenized); the model reads and writes BPE subwords learned on
the training data, and BLEU is computed by sacreBLEU on the detokenized output against the raw
references (its default 13a tokenization, case-sensitive), signature printed. bentrevett's
pytorch-seq2seq GRU with attention reports 28.3 (on spaCy-tokenized, lowercased text, with
torchtext's BLEU, so not the same measurement).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from rnnkit.runs import free_run_path, start

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k" / "raw"

BENCHMARKS = {
    "dates": dict(
        dates=30000, level="char", batch_size=64, cell="gru", embedding_size=64, hidden_size=192, dropout=0.1,
        attention="multiplicative", lr=3e-3, schedule="cosine", epochs=12, beam=3, time_limit=900, log_every=100,
    ),
    "multi30k": dict(
        level="bpe", bpe_vocab=8000, shared_vocab=False, batch_size=64, max_length=60, cell="gru", embedding_size=256,
        hidden_size=384, dropout=0.4, attention="additive", input_feeding=False, lr=2e-3, schedule="cosine", epochs=14,
        beam=5, eval_beam=1, eval_sentences=500, patience=4, time_limit=3300, log_every=100,
    ),
}  # fmt: skip


def files(name: str) -> dict:
    if name != "multi30k":
        return {}
    return {
        "source": str(DATA / "train.de"), "target": str(DATA / "train.en"),
        "valid_source": str(DATA / "val.de"), "valid_target": str(DATA / "val.en"),
        "test_source": str(DATA / "test_2016_flickr.de"), "test_target": str(DATA / "test_2016_flickr.en"),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--set", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[], help="override a setting (JSON value)")
    args = parser.parse_args()
    if args.benchmark == "multi30k" and not DATA.exists():
        sys.exit(f"Multi30k not found at {DATA}")
    settings = dict(BENCHMARKS[args.benchmark])
    for key, value in args.set:
        settings[key] = json.loads(value)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; settings: {json.dumps(settings)}", flush=True)
    started = time.perf_counter()
    run, summary = start("seq2seq", {**files(args.benchmark), **settings, "progress": False}, free_run_path(Path("runs") / f"bench-{args.benchmark}"))
    print(f"\n== {args.benchmark}: {json.dumps(summary)}")
    print(f"wall time {time.perf_counter() - started:.0f} s (training {summary['train_seconds']:.0f} s); run {run.path}")
    print(f"test BLEU {summary['test_bleu']:.2f}, chrF {summary['test_chrf']:.2f}, exact match {100 * summary['test_exact_match']:.2f}% (beam {settings['beam']})")
    print(f"signatures: {summary.get('test_bleu_signature')} | {summary.get('test_chrf_signature')}")


if __name__ == "__main__":
    main()
