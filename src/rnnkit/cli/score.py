"""``rnnkit score RUN TEXT...``: the probability a language model gives a sentence."""

from __future__ import annotations

import json

from ._options import device as device_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="log-probability and perplexity of sentences under a trained language model",
        description="P(sentence) = product over tokens of P(y<t> | y<1..t-1>). Prints each token's conditional "
        "probability (tokens mapped to <UNK> are flagged), the log-probability and the perplexity. "
        "Text comes from arguments, --file, or standard input ('-' or no text); one result per input line, "
        "a blank line giving an empty result.",
    )
    parser.add_argument("run", metavar="RUN", help="run directory of a language model")
    parser.add_argument("text", nargs="*", help="sentences to score, one per argument")
    parser.add_argument("--file", help="score every line of this file")
    parser.add_argument("--json", action="store_true", help="one JSON object per input line")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--device", type=device_option, default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N, mps")
    parser.set_defaults(verb="score")


def run(args) -> int:
    from ._inputs import is_blank, open_run_for, texts_from

    texts = texts_from(args.text, args.file)
    task, model, _, device = open_run_for("rnnkit score", args.run, ["lm"], args.weights, args.device)
    for text in texts:
        if is_blank(text):  # nothing to score: an empty result keeps the outputs in line with the inputs
            result = {"text": text, "tokens": [], "log_prob": None, "log10_prob": None, "perplexity": None}
            print(json.dumps(result, ensure_ascii=False) if args.json else f"{text!r}\n  blank line: nothing scored\n")
            continue
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
