"""``rnnkit classify RUN TEXT...``: the label of each text, with class probabilities.

One line per input line: LABEL<TAB>TEXT<TAB>class probabilities in % (--json: one object, with
fractions). A blank line gives an empty line. Typed text is tokenized as the training text was
(Penn Treebank style for tokenized corpora such as SST trees); words the vocabulary does not hold
are named on stderr.
"""

from __future__ import annotations

import json

from ._run_options import run_parser, texts_and_run


def add_parser(subparsers) -> None:
    run_parser(subparsers, "classify", ["classifier"], description=__doc__, text="texts",
               json="JSON lines: label, class probabilities, unknown words", ensemble=True)  # fmt: skip


def run(args) -> int:
    from ..data.labeled import looks_labelled
    from ..metrics import percent
    from ._inputs import per_line, warn, warn_unseen
    from ._run_options import open_ensemble

    texts, task, model, device = texts_and_run(args)
    ensemble = open_ensemble(args, task, model)
    if args.file and args.file.lower().endswith(".csv"):  # its header and quotes are read as text, each line one
        warn("classify", f"{args.file} is read one text per line, as every text file is: a CSV header row and its quotes are "
                         "read as text; give the texts one per line (rnnkit eval reads a labelled CSV by its columns)")
    elif looks_labelled(texts, task.labels):
        warn("classify", "the input looks like a labelled training file (a label, then the text), but classify reads text "
                         "only: the labels were read as words; to score a labelled file: rnnkit eval RUN FILE")
    unseen: dict[str, None] = {}
    for text, result in zip(texts, per_line(texts, lambda kept: task.classify(model, kept, device, ensemble))):
        if result is None:  # a blank line
            print(json.dumps({"text": text, "label": None, "probabilities": {}, "unknown": []}) if args.json else "")
            continue
        unseen.update(dict.fromkeys(result["unknown"]))
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            probs = "  ".join(f"{label}: {percent(p, 1)}" for label, p in result["probabilities"].items())
            shown = " ".join(result["text"].split("\t"))  # a tab of the text would shift the columns (--json keeps it)
            print(f"{result['label']}\t{shown}\t{probs}")
    if not args.json:
        warn_unseen("classify", "in no run's vocabulary, read as <UNK>" if ensemble else "not in the vocabulary, read as <UNK>", unseen)
    return 0
