"""``rnnkit classify RUN TEXT...``: the label of each text, with class probabilities."""

from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("classify", help="classify texts with a trained classifier; label and class probabilities")
    parser.add_argument("run", metavar="RUN", help="run directory of a classifier")
    parser.add_argument("text", nargs="*", help="texts, one per argument ('-' or none: standard input)")
    parser.add_argument("--file", help="classify every line of this file")
    parser.add_argument("--json", action="store_true", help="JSON lines")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--ensemble", metavar="RUN", action="append", default=[],
                        help="classifiers: another run whose class probabilities are averaged with RUN's (repeat for more)")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(verb="classify")


def run(args) -> int:
    from ..runs import open_run
    from ._inputs import texts_from

    texts = texts_from(args.text, args.file)
    task, model, config, device = open_run(args.run, args.weights, args.device)
    if config["task"] != "classifier":
        raise ValueError(f"{args.run}: a {config['task']} run, not a classifier")
    from .evaluate import open_ensemble

    for result in task.classify(model, texts, device, open_ensemble(args.ensemble, args.weights, args.device, task)):
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            probs = "  ".join(f"{label}: {p:.2f}" for label, p in result["probabilities"].items())
            print(f"{result['label']}\t{result['text']}\n\t{probs}")
    return 0
