"""The options every verb that reads a trained run shares, written once: the RUN positional,
``--weights`` and ``--device``; the text a verb reads (arguments, ``--file``, ``-``); the picture it
may draw (``--plot``); and the old spellings kept, hidden, for scripts written before a rename.

A verb declares the run kinds it takes where its parser is made, and opens the run with one call::

    parser = run_parser(subparsers, "tag", ["tagger"], description="...",  # RUN, --weights, --device
                        text="sentences", json="JSON lines")                # TEXT..., --file, --json
    ...
    task, model, config, device = open_verb_run(args)                     # a tagger run, or one line

Nothing here imports torch: ``rnnkit VERB --help`` answers before any of it loads.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ._inputs import KIND_NAMES
from ._options import device as device_option
from ._options import nonempty_text, plot_file

WEIGHTS = ["best", "last"]


def run_parser(subparsers, name: str, kinds: Sequence[str] | None = None, *, description: str | None = None,
               many: bool = False, device: bool = True, text: str | None = None, json: str | None = None,
               ensemble: bool = False) -> argparse.ArgumentParser:  # fmt: skip
    """The parser of verb ``name`` with RUN (``many``: RUN...; in ``args.runs``), ``--weights`` and
    (``device``) ``--device``. ``kinds``: the ``config.json`` tasks the verb takes (None: all),
    checked by ``open_verb_run`` before any weights load. ``description``: as ``verb_parser``'s.
    ``text`` (what the text is) and ``json``: the verb reads text (``add_text_input``); ``ensemble``:
    it takes ``--ensemble`` (``add_ensemble``)."""
    parser = verb_parser(subparsers, name, description)
    kinds = list(KIND_NAMES) if kinds is None else kinds
    what = "of any kind" if set(kinds) == set(KIND_NAMES) else "of a " + " or ".join(KIND_NAMES.get(k, k) for k in kinds) + " run"
    if many:
        parser.add_argument("runs", metavar="RUN", nargs="+", type=nonempty_text, help=f"run directories, each {what}")
    else:
        parser.add_argument("run", metavar="RUN", type=nonempty_text, help=f"run directory {what}")
    parser.add_argument("--weights", choices=WEIGHTS, default="best",
                        help="the weights of the best validation score or the last saved ones (default best)")  # fmt: skip
    if device:
        parser.add_argument("--device", type=device_option, default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N, mps")
    if text:
        add_text_input(parser, text, json=json)
    if ensemble:
        add_ensemble(parser)
    parser.set_defaults(verb=name, kinds=list(kinds))
    return parser


def verb_parser(subparsers, name: str, description: str | None) -> argparse.ArgumentParser:
    """The parser of verb ``name``; ``description`` is the verb module's docstring, its reST quotes
    dropped: the module's documentation is its ``--help``."""
    parser = subparsers.add_parser(name, description=description and description.replace("``", ""))
    parser.set_defaults(verb=name)
    return parser


def open_verb_run(args):
    """(task, model, config, device) of ``args.run``, refused in one line (``UsageError``) unless its
    kind is one the verb declared in ``run_parser``."""
    from ._inputs import open_run_for

    return open_run_for(f"rnnkit {args.verb}", args.run, args.kinds, args.weights, getattr(args, "device", "auto"))


class GivenOnce(argparse.Action):
    """An option whose second value would silently replace the first (``--file a.txt --file
    b.txt`` read only b.txt, a.txt's lines lost): refused in one line."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice ({getattr(namespace, self.dest)}, {values}): give one "
                         f"(several files: cat them into one, or pipe them in with {option_string} -)")
        setattr(namespace, self.dest, values)


def add_text_input(parser: argparse.ArgumentParser, what: str, *, stdin: str = "'-' or none: standard input",
                   json: str | None = None) -> None:  # fmt: skip
    """TEXT... and ``--file FILE``, the same on every verb that reads text (``_inputs.texts_from``
    reads them): each argument one input line, ``-`` standard input, then the lines of FILE; with
    ``json`` (its help), ``--json``: one JSON object per input line."""
    parser.add_argument("text", nargs="*", metavar="TEXT", help=f"{what}, one per argument ({stdin})")
    parser.add_argument("--file", metavar="FILE", type=nonempty_text, action=GivenOnce, help=f"read {what} from FILE, one per line ('-': standard input)")
    if json:
        parser.add_argument("--json", action="store_true", help=json)


def texts_and_run(args):
    """(texts, task, model, device) of a verb that reads text: the run's directory and kind checked
    first, then the input lines, so that a missing ``--file`` or empty standard input is named
    before any weights load, and a mistyped run before the user types any text."""
    from ._inputs import TYPED_LINE_CHARACTERS, check_run_for, check_typed_lengths, texts_from

    check_run_for(f"rnnkit {args.verb}", args.run, args.kinds)
    for path in getattr(args, "ensemble", None) or ():  # as the run: said before the text is typed
        check_run_for("--ensemble", path, args.kinds)
    texts = texts_from(args.text, args.file, TYPED_LINE_CHARACTERS)
    task, model, _, device = open_verb_run(args)
    check_typed_lengths(texts, task, args.text, args.file)  # in the run's tokens, as training counted them
    return texts, task, model, device


def add_plot(parser: argparse.ArgumentParser, what: str, *, old: str | None = None) -> None:
    """``--plot FILE.png``: a picture of ``what``, the one name every verb uses for a picture beside
    its output (``--out`` is the file a verb exists to write). ``old``: the verb's former name for it."""
    parser.add_argument("--plot", metavar="PNG", type=plot_file, help=f"a picture of {what}, written to this PNG file")
    if old:
        hidden_alias(parser, old, "plot", type=plot_file)


def hidden_alias(parser: argparse.ArgumentParser, old: str, dest: str, **kwargs) -> None:
    """``old`` still works as the option now named for ``dest`` (scripts written before the rename),
    with the same checks (``type=``), but is no longer shown in ``--help``."""
    parser.add_argument(old, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)


def add_ensemble(parser: argparse.ArgumentParser) -> None:
    """``--ensemble RUN`` (repeatable): runs of RUN's kind combined with it (``open_ensemble``)."""
    parser.add_argument("--ensemble", metavar="RUN", action="append", default=[], type=nonempty_text,
                        help="another run of RUN's kind combined with it, repeat for more (classifiers: class probabilities "
                             "averaged; taggers: the product of their distributions)")  # fmt: skip


def open_ensemble(args, task, model) -> list:
    """(task, model) of each ``--ensemble`` run, opened with the verb's ``--weights`` and ``--device``:
    only the kinds whose task ``averages_runs`` take it, each with runs of its own kind that can join
    ``model`` (``TaskBase.ensemble_mismatch``). Any error names the run at fault, before anything is scored."""
    from ..errors import USER_ERRORS, UsageError
    from ..tasks import TASKS
    from . import user_message
    from ._inputs import open_run_for

    if args.ensemble and not task.averages_runs:
        kinds = " and ".join(KIND_NAMES.get(k, k) for k in TASKS if TASKS[k].averages_runs)
        raise UsageError(f"--ensemble: only {kinds} runs can be combined, not a {KIND_NAMES.get(task.kind, task.kind)} run")
    given = {Path(args.run).resolve(): f"RUN {args.run}"}
    for path in args.ensemble:  # an average over a run twice would weigh it double, and count it as two
        if (real := Path(path).resolve()) in given:
            raise UsageError(f"--ensemble {path}: the same run as {given[real]}; give each run once")
        given[real] = f"--ensemble {path}"
    pairs = []
    for path in args.ensemble:
        try:
            other_task, other_model, _, _ = open_run_for("--ensemble", path, [task.kind], args.weights, args.device)
        except USER_ERRORS as error:  # errors of opening it (its language models ...) say which run
            message = user_message(error)
            raise UsageError(message if message.startswith(("--ensemble", path)) else f"--ensemble {path}: {message}") from None
        reason = task.ensemble_mismatch(model, other_task, other_model)
        if reason:
            raise UsageError(f"--ensemble {path} cannot join {args.run}: {reason}")
        pairs.append((other_task, other_model))
    return pairs
