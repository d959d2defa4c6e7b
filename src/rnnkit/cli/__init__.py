"""The ``rnnkit`` command. One module per verb; each has ``add_parser(subparsers)`` and ``run(args)``.

Adding a verb: write its module, add it to ``VERBS``.
"""

from __future__ import annotations

import argparse
import sys

from . import analysis, cells, classify, compose, demo, evaluate, export, sample, score, tag, tour, train, translate

VERBS = {
    "demo": demo,
    "train": train,
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
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        return VERBS[args.verb].run(args) or 0
    except (ValueError, TypeError, OSError, KeyError) as error:  # user-facing errors: one clear line
        print(f"rnnkit {args.verb}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnnkit {args.verb}: interrupted", file=sys.stderr)
        return 130
