"""``rnnkit tag RUN TEXT...``: named entities in raw text.

Text is split into words as the training sentences were (Penn Treebank style for CoNLL data, else
the word rule), tagged, and printed with entities marked inline, e.g. [Teddy Roosevelt](PER) was a
great President . (--json: one object per line). One output line per input line: a blank line gives
an empty line; words the vocabulary does not hold are named on stderr. ``--ensemble RUN2`` tags with
the runs' product of experts (``rnnkit.models.tagger.product_of_experts``).
"""

from __future__ import annotations

import json

from ._run_options import run_parser, texts_and_run


def add_parser(subparsers) -> None:
    run_parser(subparsers, "tag", ["tagger"], description=__doc__, text="sentences",
               json="JSON lines: tokens, tags (IOB2, whatever scheme the training file used), entities, unknown words", ensemble=True)  # fmt: skip


def run(args) -> int:
    from ..data.conll import looks_like_column_lines, looks_like_token_lines
    from ..tasks.tagging import inline
    from ._inputs import is_blank, warn, warn_unseen
    from ._run_options import open_ensemble

    texts, task, model, device = texts_and_run(args)
    ensemble = open_ensemble(args, task, model)
    if looks_like_column_lines(texts):
        warn("tag", "the input looks like a CoNLL column file (a token and its tags per line), but tag reads one sentence per "
                    "line: each line was tagged as a sentence; to score a tagged file: rnnkit eval RUN FILE")
    elif looks_like_token_lines(texts):  # each word tagged without its sentence: the entities come out wrong, unsaid
        warn("tag", "the input looks like one token per line (a CoNLL file without its tags?), but tag reads one sentence per "
                    "line: each word was tagged alone, without its sentence; give each sentence's words on one line")
    unseen: dict[str, None] = {}
    for text in texts:
        result = task.tag_text(model, "" if is_blank(text) else text, device, ensemble)  # a blank line has no words: an empty line out
        unseen.update(dict.fromkeys(result["unknown"]))
        print(json.dumps(result, ensure_ascii=False) if args.json else inline(result))
    if not args.json:  # --json carries them in each object
        where = "in no run's vocabulary" if ensemble else "not in the vocabulary"
        warn_unseen("tag", f"{where} (tagged from their letters and casing)", unseen)
    return 0
