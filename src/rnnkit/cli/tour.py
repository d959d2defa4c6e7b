"""``rnnkit tour``: a short tour of the layers and engines."""

from __future__ import annotations

from ._options import seed


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tour",
        description="Cells, engines proven equal, their speed, why taggers read both ways. Runs on any machine in "
        "about a minute (the first run also compiles the fused CPU engine).",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer steps (for tests)")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    parser.set_defaults(verb="tour")


def run(args) -> int:
    from ..demos.tour import run_demo

    run_demo(quick=args.quick, seed=args.seed)
    return 0
