"""``rnnkit eval RUN DATA``: a trained model's loss and perplexity on a file."""

from __future__ import annotations

import json
import math


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="loss and perplexity of a trained model on a data file")
    parser.add_argument("run", metavar="RUN", help="run directory")
    parser.add_argument("data", metavar="DATA", help="file to evaluate, tokenized as in training")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(verb="eval")


def run(args) -> int:
    from ..runs import open_run

    task, model, _, device = open_run(args.run, args.weights, args.device)
    loss, tokens = task.evaluate_file(model, args.data, device)
    result = {"data": args.data, "loss_per_token": loss, "perplexity": math.exp(min(loss, 50)), "tokens": tokens}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.data}: loss {loss:.4f} nats per token, perplexity {result['perplexity']:.2f} ({tokens} tokens)")
    return 0
