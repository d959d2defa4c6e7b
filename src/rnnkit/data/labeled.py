"""Labelled texts for sequence classification, in four formats; one-line ``file:line`` errors.

* ``tsv``: ``label<TAB>text`` per line.
* ``fasttext``: ``__label__X text`` per line.
* ``csv``: a header row, then rows; the text and label columns are chosen by name.
* ``ptb-trees``: one labelled parse tree per line, as the Stanford Sentiment Treebank ships it:
  ``(3 (2 (2 The) (2 Rock)) (4 ...))``; every node has a label. The sentence's label is the root's;
  ``phrases=True`` also yields every labelled subtree (train on all phrases, evaluate on sentences).
  ``-LRB-``/``-RRB-`` become ``(``/``)`` and ``\\/`` becomes ``/``.

``auto`` picks the format from the file: ``.csv`` -> csv; a first line starting with ``(`` ->
ptb-trees; ``__label__`` -> fasttext; otherwise tsv.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .text import DataError, read_lines

FORMATS = ("auto", "tsv", "fasttext", "csv", "ptb-trees")
UNESCAPE = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


@dataclass
class LabeledText:
    text: str
    label: str


def detect_format(path: Path) -> str:
    if path.suffix.lower() == ".csv":
        return "csv"
    first = read_lines(path)[0].lstrip()
    if first.startswith("("):
        return "ptb-trees"
    if first.startswith("__label__"):
        return "fasttext"
    return "tsv"


def read_labeled(path: str | Path, fmt: str = "auto", text_column: str = "text", label_column: str = "label", phrases: bool = False) -> list[LabeledText]:
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "auto":
        read_lines(path)  # missing, empty, not UTF-8: the usual one-line errors
        fmt = detect_format(path)
    if fmt == "csv":
        return _read_csv(path, text_column, label_column)
    lines = read_lines(path, keep_blank=True)
    out: list[LabeledText] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if fmt == "tsv":
            if "\t" not in line:
                raise DataError(f"{where}: expected 'label<TAB>text', found no tab")
            label, text = line.split("\t", 1)
            out.append(_checked(where, text, label))
        elif fmt == "fasttext":
            first, _, text = line.strip().replace("\t", " ", 1).partition(" ")  # a space or a tab after the label
            if not first.startswith("__label__") or len(first) == len("__label__"):
                raise DataError(f"{where}: expected '__label__X text', got {line[:40]!r}")
            out.append(_checked(where, text, first[len("__label__") :]))
        else:
            sentence, subtrees = parse_tree(line, where)
            out.append(sentence)
            if phrases:
                out.extend(subtrees)
    if phrases:  # one example per distinct labelled phrase
        unique = {(item.text, item.label): item for item in out}
        out = list(unique.values())
    return out


def _checked(where: str, text: str, label: str) -> LabeledText:
    text, label = text.strip(), label.strip()
    if not text:
        raise DataError(f"{where}: the text is empty")
    if not label:
        raise DataError(f"{where}: the label is empty")
    return LabeledText(text, label)


def _read_csv(path: Path, text_column: str, label_column: str) -> list[LabeledText]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        for column in (text_column, label_column):
            if column not in header:
                raise DataError(f"{path}: no column {column!r} (columns: {', '.join(header)})")
        return [_checked(f"{path}:{reader.line_num}", row[text_column] or "", row[label_column] or "") for row in reader]


def parse_tree(line: str, where: str) -> tuple[LabeledText, list[LabeledText]]:
    """The sentence (root label, leaves) and every labelled subtree of one bracketed tree."""
    tokens = line.replace("(", " ( ").replace(")", " ) ").split()
    position = 0
    subtrees: list[LabeledText] = []

    def node() -> list[str]:
        nonlocal position
        if position >= len(tokens) or tokens[position] != "(":
            raise DataError(f"{where}: malformed tree near token {position + 1}: expected '('")
        position += 1
        if position >= len(tokens) or tokens[position] in "()":
            raise DataError(f"{where}: malformed tree near token {position + 1}: expected a label")
        label = tokens[position]
        position += 1
        leaves: list[str] = []
        while position < len(tokens) and tokens[position] not in "()":  # a leaf: (label word ...), e.g. (2 8 1\/2)
            leaves.append(UNESCAPE.get(tokens[position], tokens[position].replace("\\/", "/")))
            position += 1
        while position < len(tokens) and tokens[position] == "(":
            leaves += node()
        if position >= len(tokens) or tokens[position] != ")":
            raise DataError(f"{where}: malformed tree: unbalanced parentheses")
        position += 1
        if not leaves:
            raise DataError(f"{where}: malformed tree: a node without words")
        subtrees.append(LabeledText(" ".join(leaves), label))
        return leaves

    leaves = node()
    if position != len(tokens):
        raise DataError(f"{where}: malformed tree: text after the closing parenthesis")
    root = subtrees.pop()  # the last node completed is the root
    return LabeledText(" ".join(leaves), root.label), subtrees
