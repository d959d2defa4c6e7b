"""``rnnkit eval RUN DATA``: a trained model's loss and perplexity on a file."""

from __future__ import annotations

import json

from ._options import device as device_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="loss and perplexity of a trained model on a data file")
    parser.add_argument("run", metavar="RUN", help="run directory")
    parser.add_argument("data", metavar="DATA", help="file to evaluate, read as in training (translation: SOURCE,TARGET)")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.add_argument("--pictures", metavar="DIR", help="also write the evaluation's pictures here (a classifier's confusion matrix)")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--ensemble", metavar="RUN", action="append", default=[],
                        help="classifiers: another run whose class probabilities are averaged with RUN's (repeat for more)")
    parser.add_argument("--device", type=device_option, default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N, mps")
    parser.set_defaults(verb="eval")


def open_ensemble(runs: list[str], weights: str, device: str, task) -> list:
    """(task, model) of each ``--ensemble`` run; only classifiers average their runs."""
    from ..errors import UsageError
    from ._inputs import open_run_for

    if runs and not hasattr(task, "ensemble_probabilities"):
        raise UsageError("--ensemble: only classifier runs can be averaged")
    pairs = []
    for path in runs:
        other_task, other_model, _, _ = open_run_for("--ensemble", path, ["classifier"], weights, device)
        pairs.append((other_task, other_model))
    return pairs


def run(args) -> int:
    from ._inputs import KIND_NAMES, open_run_for

    task, model, _, device = open_run_for("rnnkit eval", args.run, list(KIND_NAMES), args.weights, args.device)
    ensemble = open_ensemble(args.ensemble, args.weights, args.device, task)
    result = task.evaluate_file(model, args.data, device, ensemble) if ensemble else task.evaluate_file(model, args.data, device)
    save_pictures = getattr(task, "save_pictures", None)
    if args.pictures and save_pictures is not None:
        result.update(save_pictures(result, args.pictures, "eval"))
    if args.json:
        print(json.dumps({"data": args.data, **result}))
    else:
        print(f"{args.data}: {task.describe(result)}")
        details = getattr(task, "details", None)  # optional: a task's breakdown (per entity type ...)
        for line in details(result) if details is not None else []:
            print(line)
    return 0
