"""``rnnkit eval RUN DATA``: a trained model's scores on a data file.

The run's scores on DATA, read as in training: loss and perplexity for a language model, entity F1
for a tagger, accuracy and macro-F1 for a classifier, BLEU and chrF for translation, the loss per
step for music.
"""

from __future__ import annotations

import json
import sys

from ..errors import UsageError
from ._inputs import warn
from ..metrics import shown_perplexity
from ._options import nonempty_text, positive_int
from ._run_options import add_plot, hidden_alias, open_verb_run, run_parser


def add_parser(subparsers) -> None:
    parser = run_parser(subparsers, "eval", description=__doc__, ensemble=True)
    parser.add_argument("data", metavar="DATA", type=nonempty_text, help="file to evaluate, read as in training (translation: SOURCE,TARGET; the source from standard input: -- -,TARGET)")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    cache = parser.add_argument_group("continuous cache (language models read as one stream; Grave et al. 2017)")
    cache.add_argument("--cache", type=positive_int, metavar="N", help="score with a cache of the model's last N steps (with --cache-tune: N tuned too when not given)")
    cache.add_argument("--cache-theta", type=float, metavar="THETA", help="θ: how sharply a step's hidden vector must match a remembered one (default 0.3; alone it turns the cache on, N 2000)")
    cache.add_argument("--cache-lambda", type=float, metavar="LAMBDA", help="λ: the cache's share of each probability, at least 0 and below 1 (default 0.1)")
    cache.add_argument("--cache-tune", metavar="FILE", type=nonempty_text, help="choose θ and λ (and N) on FILE, validation text, before scoring DATA")
    add_plot(parser, "the evaluation (a classifier's confusion matrix; other kinds draw none and refuse it)")
    hidden_alias(parser, "--pictures", "pictures", metavar="DIR")  # its former option: the pictures into DIR, named by the task
    parser.set_defaults(pictures=None)


def run(args) -> int:
    from ..data.textio import source_name
    from ._run_options import open_ensemble

    task, model, _, device = open_verb_run(args)
    if (args.plot or args.pictures) and task.eval_picture is None:  # refused before the work, not ignored after it
        option = "--plot" if args.plot else "--pictures"  # the option the user typed, the hidden former one too
        raise UsageError(f"{option}: the evaluation of a {task.kind} run draws no picture; nothing was evaluated")
    ensemble = open_ensemble(args, task, model)
    cache, tuning = continuous_cache(args, task, model, device)
    if ensemble:
        result = task.evaluate_file(model, args.data, device, ensemble)
    elif cache:
        result = task.evaluate_file(model, args.data, device, cache=cache)
    else:
        result = task.evaluate_file(model, args.data, device)
    if tuning:
        result["cache_tuning"] = tuning
        if not args.json:
            print(f"{tuning['data']}: perplexity {shown_perplexity(tuning['perplexity'])} with the cache chosen there (the model alone {shown_perplexity(tuning['model_perplexity'])})")
        for note in tuning["notes"]:
            warn("eval", note)
    if args.pictures:  # a task without pictures draws none (TaskBase.save_pictures)
        result.update(task.save_pictures(result, args.pictures, "eval"))
    failed = None  # a picture that could not be written (a full disk) loses no figure: they are printed, then the error
    if args.plot:
        try:
            pictures = save_plot(task.save_pictures, result, args.plot)
        except OSError as error:
            failed = error
        else:
            result.update(pictures)
            if not args.json:
                print(f"plot: {', '.join(map(str, pictures.values()))}", file=sys.stderr)
    if args.json:
        print(json.dumps({"data": args.data, **result}))
    else:
        print(f"{source_name(args.data)}: {task.describe(result)}" + (f" (ensemble of {result['ensemble']} runs)" if ensemble else ""))
        for line in task.details(result):  # a task's breakdown (per entity type ...), none by default
            print(line)
    if failed is not None:
        raise failed
    return 0


def save_plot(save_pictures, result: dict, plot: str) -> dict:
    """The task's picture of ``result`` at ``plot``. A task names its pictures inside a directory
    (the trainer's run directory): they are drawn in a temporary one beside ``plot`` and moved to it;
    a second picture, should a task draw two, gets its key as a suffix."""
    import os
    import shutil
    from pathlib import Path

    from ..files import scratch_directory

    target = Path(plot)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = scratch_directory("plot", beside=target.parent)  # PID-named: a killed eval's folder goes with the next one
    except OSError as error:  # named as the picture asked for, not the scratch folder beside it
        raise OSError(error.errno, error.strerror, str(target)) from None
    try:
        written = save_pictures(result, folder, "eval")
        for i, (key, path) in enumerate(written.items()):
            final = target if i == 0 else target.with_name(f"{target.stem}-{key}{target.suffix or '.png'}")
            os.replace(path, final)
            written[key] = str(final)
    except OSError as error:  # a full disk while drawing: the picture asked for failed, not a scratch file
        raise OSError(error.errno, error.strerror, str(target)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return written


def continuous_cache(args, task, model, device):
    """(``ContinuousCache`` or None, the tuning figures or None) from the ``--cache`` options: None
    when none is given; refused in one line for a run that is not a language model read as one
    stream, and with ``--ensemble``."""
    from ..decoding.cache import NEEDS_STREAM, ContinuousCache

    if all(getattr(args, name) is None for name in ("cache", "cache_theta", "cache_lambda", "cache_tune")):
        return None, None
    if not task.reads_one_stream:
        raise UsageError(NEEDS_STREAM)
    if args.ensemble:
        raise UsageError("--cache and --ensemble cannot be combined")
    defaults = ContinuousCache()
    if args.cache_tune is None:
        return ContinuousCache(defaults.window if args.cache is None else args.cache, defaults.theta if args.cache_theta is None else args.cache_theta,
                               defaults.interpolation if args.cache_lambda is None else args.cache_lambda), None  # fmt: skip
    if args.cache_theta is not None or args.cache_lambda is not None:
        raise UsageError("--cache-tune chooses --cache-theta and --cache-lambda; give either the tuning file or the values")
    if args.cache is not None:
        ContinuousCache(args.cache)  # the window checked before the tuning pass
    return task.tune_cache(model, args.cache_tune, device, args.cache)

