"""The ``rnnkit`` command. One module per verb; each has ``add_parser(subparsers)`` and ``run(args)``.

Adding a verb: write its module, add it to ``VERBS``.
"""

from __future__ import annotations

import argparse
import sys

from . import cells, demo, evaluate, sample, score, tour, train

VERBS = {
    "demo": demo,
    "train": train,
    "sample": sample,
    "score": score,
    "eval": evaluate,
    "tour": tour,
    "cells": cells,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent sequence models (RNN, GRU, LSTM) from their equations, fast and tested.",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for module in VERBS.values():
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
