"""``rnnkit cells``: the registered cells, their equations and which engines run them."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("cells", description="The registered cells, their equations and which engines run them.")
    parser.set_defaults(verb="cells")


def run(args) -> int:
    from ..demos.tour import describe_cells

    print(describe_cells())
    return 0
