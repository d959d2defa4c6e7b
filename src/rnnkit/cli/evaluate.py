"""``rnnkit eval RUN DATA``: a trained model's scores on a data file.

The run's scores on DATA, read as in training: loss and perplexity for a language model, entity F1
for a tagger, accuracy and macro-F1 for a classifier, BLEU and chrF for translation, the loss per
step for music.
"""

from __future__ import annotations

import json

from ._run_options import add_plot, hidden_alias, open_verb_run, run_parser


def add_parser(subparsers) -> None:
    parser = run_parser(subparsers, "eval", description=__doc__, ensemble=True)
    parser.add_argument("data", metavar="DATA", help="file to evaluate, read as in training (translation: SOURCE,TARGET)")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    add_plot(parser, "the evaluation (a classifier's confusion matrix)")
    hidden_alias(parser, "--pictures", "pictures", metavar="DIR")  # its former option: the pictures into DIR, named by the task
    parser.set_defaults(pictures=None)


def run(args) -> int:
    from ._run_options import open_ensemble

    task, model, _, device = open_verb_run(args)
    ensemble = open_ensemble(args, task)
    result = task.evaluate_file(model, args.data, device, ensemble) if ensemble else task.evaluate_file(model, args.data, device)
    if args.pictures:  # a task without pictures draws none (TaskBase.save_pictures)
        result.update(task.save_pictures(result, args.pictures, "eval"))
    if args.plot:
        result.update(save_plot(task.save_pictures, result, args.plot))
    if args.json:
        print(json.dumps({"data": args.data, **result}))
    else:
        print(f"{args.data}: {task.describe(result)}")
        for line in task.details(result):  # a task's breakdown (per entity type ...), none by default
            print(line)
    return 0


def save_plot(save_pictures, result: dict, plot: str) -> dict:
    """The task's picture of ``result`` at ``plot``. A task names its pictures inside a directory
    (the trainer's run directory): they are drawn in a temporary one beside ``plot`` and moved to it;
    a second picture, should a task draw two, gets its key as a suffix."""
    import os
    import tempfile
    from pathlib import Path

    target = Path(plot)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".rnnkit-plot-") as folder:
        written = save_pictures(result, folder, "eval")
        for i, (key, path) in enumerate(written.items()):
            final = target if i == 0 else target.with_name(f"{target.stem}-{key}{target.suffix or '.png'}")
            os.replace(path, final)
            written[key] = str(final)
    return written
