"""The ``rnnkit`` command. One module per verb; each has ``add_parser(subparsers)`` and ``run(args)``.

Adding a verb: write its module, add it to ``VERBS``.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import USER_ERRORS
from . import analysis, cells, classify, compose, demo, evaluate, export, prepare, sample, score, serve, tag, tour, train, translate

VERBS = {
    "demo": demo,
    "train": train,
    "prepare": prepare,
    "sample": sample,
    "score": score,
    "tag": tag,
    "classify": classify,
    "translate": translate,
    "compose": compose,
    "gradients": analysis,
    "agreement": analysis,
    "inspect": analysis,
    "eval": evaluate,
    "tour": tour,
    "cells": cells,
    "export": export,
    "serve": serve,
}


class Parser(argparse.ArgumentParser):
    """argparse's parser, with its errors on one line: ``rnnkit sample: error: argument --top-p: ...``
    (argparse would print the whole usage first; ``--help`` still shows it). Subcommands' parsers
    are of the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rnnkit",
        description="Recurrent sequence models (RNN, GRU, LSTM) from their equations, fast and tested.",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for module in dict.fromkeys(VERBS.values()):  # a module may serve several verbs
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse cannot take positional text after an option (tag RUN --json "text"); collect it here
    args, extra = parser.parse_known_args(argv)
    if extra:
        if isinstance(getattr(args, "text", None), list) and not any(e.startswith("-") and e != "-" for e in extra):
            args.text += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.verb is None:
        parser.print_help()
        return 0
    try:
        code = VERBS[args.verb].run(args) or 0
        sys.stdout.flush()  # here, so that a reader gone away (| head) is seen inside this try
        return code
    except BrokenPipeError:
        # the reader of our output closed it (rnnkit ... | head -1): stop quietly, as Unix tools do;
        # stdout goes to /dev/null so the interpreter's own flush at exit does not fail again
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
            pass
        return 0
    except USER_ERRORS as error:  # the user's mistake: one line; anything else is a bug and keeps its traceback
        print(f"rnnkit {args.verb}: error: {user_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnnkit {args.verb}: interrupted", file=sys.stderr)
        return 130


def user_message(error: BaseException) -> str:
    """One line for a user error. An ``OSError`` raised by the system reads ``[Errno 2] No such file
    or directory: 'x'``: shown as ``x: no such file or directory``."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        target = f"{error.filename} -> {error.filename2}" if error.filename2 is not None else str(error.filename)
        message = f"{target}: {error.strerror[0].lower()}{error.strerror[1:]}"
    else:
        message = str(error) or type(error).__name__
    return " ".join(message.split("\n"))
