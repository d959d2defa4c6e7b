"""``rnnkit demo``: the main job: train a character-level language model of first names, sample
new ones, score some (no data download needed).

Trains an LSTM on the 5,163 first names of the names package for --time-limit seconds, prints ten
new names, each marked novel or seen in the training data, and scores some names: about 2 minutes
in all on two cores.
"""

from __future__ import annotations

from ._options import add_quick, nonempty_text, positive_float
from ._run_options import verb_parser


def add_parser(subparsers) -> None:
    parser = verb_parser(subparsers, "demo", __doc__)
    parser.add_argument("--run", type=nonempty_text, help="run directory (default runs/demo, or runs/demo-2 ... when runs/demo holds something else, such as a run you trained on; a previous demo run there is replaced)")
    parser.add_argument("--time-limit", type=positive_float, help="seconds of training (default 90; --quick: 5)")
    add_quick(parser, "a few seconds of training")


def run(args) -> int:
    from ..demos.names import run_demo
    from ..errors import UsageError

    if args.quick and args.time_limit is not None:  # --quick fixes its own few seconds: the limit would go unheeded
        raise UsageError(f"--quick trains for 5 seconds; --time-limit {args.time_limit:g} would be ignored: give one of them")
    run_demo(args.run, quick=args.quick, **({} if args.time_limit is None else {"time_limit": args.time_limit}))
    return 0
