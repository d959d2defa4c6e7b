"""``rnnkit tour``: a short tour of the layers and engines.

Cells, engines proven equal, their speed, why taggers read both ways. Takes about 15 s on two quiet
cores (14 s measured on an AMD EPYC; the first run of rnnkit also compiles the fused CPU engine, once).
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
