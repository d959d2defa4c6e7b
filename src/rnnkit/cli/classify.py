"""``rnnkit classify RUN TEXT...``: the label of each text, with class probabilities."""

from __future__ import annotations

import json

from ._options import device as device_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify texts with a trained classifier; label and class probabilities",
        description="One line per input line: LABEL<TAB>TEXT<TAB>class probabilities (--json: one object). A blank "
        "line gives an empty line. Typed text is tokenized as the training text was (Penn Treebank style for "
        "tokenized corpora such as SST trees); words the vocabulary does not hold are named on stderr.",
    )
    parser.add_argument("run", metavar="RUN", help="run directory of a classifier")
    parser.add_argument("text", nargs="*", help="texts, one per argument ('-' or none: standard input)")
    parser.add_argument("--file", help="classify every line of this file")
    parser.add_argument("--json", action="store_true", help="JSON lines")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--ensemble", metavar="RUN", action="append", default=[],
                        help="classifiers: another run whose class probabilities are averaged with RUN's (repeat for more)")
    parser.add_argument("--device", type=device_option, default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N, mps")
    parser.set_defaults(verb="classify")


def run(args) -> int:
    from ._inputs import describe_tokens, open_run_for, per_line, texts_from, warn
    from .evaluate import open_ensemble

    texts = texts_from(args.text, args.file)
    task, model, _, device = open_run_for("rnnkit classify", args.run, ["classifier"], args.weights, args.device)
    ensemble = open_ensemble(args.ensemble, args.weights, args.device, task)
    unseen: dict[str, None] = {}
    for text, result in zip(texts, per_line(texts, lambda kept: task.classify(model, kept, device, ensemble))):
        if result is None:  # a blank line
            print(json.dumps({"text": text, "label": None, "probabilities": {}, "unknown": []}) if args.json else "")
            continue
        unseen.update(dict.fromkeys(result["unknown"]))
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            probs = "  ".join(f"{label}: {p:.2f}" for label, p in result["probabilities"].items())
            print(f"{result['label']}\t{result['text']}\t{probs}")
    if unseen and not args.json:
        warn("classify", f"not in the vocabulary, read as <UNK>: {describe_tokens(list(unseen)[:20])}{' ...' if len(unseen) > 20 else ''}")
    return 0
