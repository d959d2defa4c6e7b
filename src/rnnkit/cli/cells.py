"""``rnnkit cells``: the registered cells, their equations and which engines run them."""

from __future__ import annotations

from ._run_options import verb_parser


def add_parser(subparsers) -> None:
    verb_parser(subparsers, "cells", __doc__)


def run(args) -> int:
    from ..demos.tour import describe_cells

    print(describe_cells())
    return 0
