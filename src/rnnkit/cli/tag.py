"""``rnnkit tag RUN TEXT...``: named entities in raw text."""

from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tag",
        help="tag raw text with a trained tagger; entities inline or as JSON lines",
        description="Text is split into words by the word rule (punctuation split off), tagged, and printed with "
        "entities marked inline, e.g. [Teddy Roosevelt](PER) was a great President . (--json: one object per line).",
    )
    parser.add_argument("run", metavar="RUN", help="run directory of a tagger")
    parser.add_argument("text", nargs="*", help="sentences, one per argument ('-' or none: standard input)")
    parser.add_argument("--file", help="tag every line of this file")
    parser.add_argument("--json", action="store_true", help="JSON lines: tokens, tags, entities")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(verb="tag")


def run(args) -> int:
    from ..runs import open_run
    from ..tasks.tagging import inline
    from ._inputs import texts_from

    texts = texts_from(args.text, args.file)
    task, model, config, device = open_run(args.run, args.weights, args.device)
    if config["task"] != "tagger":
        raise ValueError(f"{args.run}: a {config['task']} run, not a tagger")
    for text in texts:
        result = task.tag_text(model, text, device)
        print(json.dumps(result, ensure_ascii=False) if args.json else inline(result))
    return 0
