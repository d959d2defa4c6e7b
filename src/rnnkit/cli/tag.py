"""``rnnkit tag RUN TEXT...``: named entities in raw text."""

from __future__ import annotations

import json

from ._options import device as device_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tag",
        help="tag raw text with a trained tagger; entities inline or as JSON lines",
        description="Text is split into words as the training sentences were (Penn Treebank style for CoNLL "
        "data, else the word rule), tagged, and printed with entities marked inline, e.g. "
        "[Teddy Roosevelt](PER) was a great President . (--json: one object per line). One output line per "
        "input line: a blank line gives an empty line; words the vocabulary does not hold are named on stderr.",
    )
    parser.add_argument("run", metavar="RUN", help="run directory of a tagger")
    parser.add_argument("text", nargs="*", help="sentences, one per argument ('-' or none: standard input)")
    parser.add_argument("--file", help="tag every line of this file")
    parser.add_argument("--json", action="store_true", help="JSON lines: tokens, tags, entities, unknown words")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--device", type=device_option, default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N, mps")
    parser.set_defaults(verb="tag")


def run(args) -> int:
    from ..tasks.tagging import inline
    from ._inputs import describe_tokens, open_run_for, texts_from, warn

    texts = texts_from(args.text, args.file)
    task, model, _, device = open_run_for("rnnkit tag", args.run, ["tagger"], args.weights, args.device)
    unseen: dict[str, None] = {}
    for text in texts:
        result = task.tag_text(model, text, device)  # a blank line has no words: an empty line out
        unseen.update(dict.fromkeys(result["unknown"]))
        print(json.dumps(result, ensure_ascii=False) if args.json else inline(result))
    if unseen and not args.json:  # --json carries them in each object
        warn("tag", f"not in the vocabulary (tagged from their letters and casing): {describe_tokens(list(unseen)[:20])}{' ...' if len(unseen) > 20 else ''}")
    return 0
