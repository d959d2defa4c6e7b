"""``rnnkit score RUN TEXT...``: the probability a language model gives a sentence."""

from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="log-probability and perplexity of sentences under a trained language model",
        description="P(sentence) = product over tokens of P(y<t> | y<1..t-1>). Prints each token's conditional "
        "probability (tokens mapped to <UNK> are flagged), the log-probability and the perplexity. "
        "Text comes from arguments, --file, or standard input ('-' or no text).",
    )
    parser.add_argument("run", metavar="RUN", help="run directory")
    parser.add_argument("text", nargs="*", help="sentences to score, one per argument")
    parser.add_argument("--file", help="score every line of this file")
    parser.add_argument("--json", action="store_true", help="one JSON object per sentence")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(verb="score")


def run(args) -> int:
    from ..runs import open_run
    from ._inputs import texts_from

    texts = texts_from(args.text, args.file)
    task, model, _, device = open_run(args.run, args.weights, args.device)
    for text in texts:
        result = task.score_text(model, text, device)
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
            continue
        print(f"{text!r}")
        for row in result["tokens"]:
            flag = "  <- not in the vocabulary: scored as <UNK>" if row["unknown"] else ""
            print(f"  {row['token']!r:>16}  P = {row['prob']:.4f}  (log {row['log_prob']:8.3f}){flag}")
        print(f"  log P = {result['log_prob']:.3f} (log10 {result['log10_prob']:.3f}), perplexity {result['perplexity']:.2f}, {len(result['tokens'])} tokens\n")
    return 0
