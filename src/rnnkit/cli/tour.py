"""``rnnkit tour``: a short tour of the layers and engines.

Cells, engines proven equal, their speed, why taggers read both ways. Runs on any machine in about a
minute (the first run also compiles the fused CPU engine).
"""

from __future__ import annotations

from ._options import add_quick, seed
from ._run_options import verb_parser


def add_parser(subparsers) -> None:
    parser = verb_parser(subparsers, "tour", __doc__)
    add_quick(parser, "smaller sizes and fewer steps")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")


def run(args) -> int:
    from ..demos.tour import run_demo

    run_demo(quick=args.quick, seed=args.seed)
    return 0
