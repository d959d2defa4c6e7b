"""``rnnkit score RUN TEXT...``: the probability a language model gives a sentence.

P(sentence) = product over tokens of P(y<t> | y<1..t-1>). Prints each token's conditional
probability (tokens mapped to <UNK> are flagged), the log-probability and the perplexity. Text comes
from arguments, --file, or standard input ('-' or no text); one result per input line, a blank line
giving an empty result.
"""

from __future__ import annotations

import json

from ..metrics import shown_perplexity
from ._run_options import run_parser, texts_and_run


def add_parser(subparsers) -> None:
    run_parser(subparsers, "score", ["lm"], description=__doc__, text="sentences to score", json="one JSON object per input line")


def run(args) -> int:
    from ._inputs import describe_tokens, is_blank

    texts, task, model, device = texts_and_run(args)
    for text in texts:
        if is_blank(text):  # nothing to score: an empty result keeps the outputs in line with the inputs
            result = {"text": text, "tokens": [], "log_prob": None, "log10_prob": None, "perplexity": None}
            print(json.dumps(result, ensure_ascii=False) if args.json else f"{text!r}\n  blank line: nothing scored\n")
            continue
        result = task.score_text(model, text, device)
        unseen = task.tokenizer.unseen_characters(text) if any(row["unknown"] for row in result["tokens"]) else []
        if unseen:  # a BPE run's <UNK> tokens hide what was typed: the characters its alphabet lacks
            result["unknown_characters"] = unseen
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
            continue
        print(f"{text!r}")
        for row in result["tokens"]:
            flag = "  <- not in the vocabulary: scored as <UNK>" if row["unknown"] else ""
            print(f"  {row['token']!r:>16}  P = {row['prob']:.4f}  (log {row['log_prob']:8.3f}){flag}")
        if unseen:
            print(f"  characters the tokenizer has no piece for, read as <UNK>: {describe_tokens(unseen)}")
        print(f"  log P = {result['log_prob']:.3f} (log10 {result['log10_prob']:.3f}), perplexity {shown_perplexity(result['perplexity'])}, {len(result['tokens'])} tokens\n")
    return 0
