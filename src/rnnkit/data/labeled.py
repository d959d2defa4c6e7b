"""Labelled texts for sequence classification, in four formats; one-line ``file:line`` errors.

* ``tsv``: ``label<TAB>text`` per line; a first row naming the columns (``label<TAB>text``, or
  ``text<TAB>label``, ``sentence<TAB>sentiment`` ... as pandas writes them) is read as a header,
  never as an example, and the columns are then taken by name. Fields in CSV quotes (``"say ""b"" twice"``,
  as pandas' ``to_csv(sep="\t")`` writes a text with quotes) are unquoted.
* ``fasttext``: ``__label__X text`` per line, one label per line.
* ``csv``: a header row, then rows of as many fields; the text and label columns are chosen by name.

In tsv and csv files the header row met again further on (files joined with ``cat``) is skipped,
said on standard error. ``--text-column`` / ``--label-column`` given for a file whose columns have no
names (fasttext, ptb-trees, tsv without a header) are refused, not ignored.
* ``ptb-trees``: one labelled parse tree per line, as the Stanford Sentiment Treebank ships it:
  ``(3 (2 (2 The) (2 Rock)) (4 ...))``; every node has a label. The sentence's label is the root's;
  ``phrases=True`` also yields every labelled subtree (train on all phrases, evaluate on sentences).
  ``-LRB-``/``-RRB-`` become ``(``/``)`` and ``\\/`` becomes ``/``.

``auto`` picks the format from the file: ``.csv`` -> csv; a first line starting with ``(`` ->
ptb-trees; ``__label__`` -> fasttext; otherwise tsv. Every format is read through ``textio`` (UTF-8,
a BOM dropped, LF / CRLF / lone CR line ends).
"""

from __future__ import annotations

import csv
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from . import textio
from .textio import DataError
from .tokenizers import read_form, without_invisible_ends
from ..errors import UsageError

FORMATS = ("auto", "tsv", "fasttext", "csv", "ptb-trees")
UNESCAPE = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
FASTTEXT_LABEL = "__label__"
# A first row of a tsv file whose fields name a text column and a label column is a header (as pandas'
# ``to_csv(sep="\t")`` writes it): besides ``--text-column`` / ``--label-column``, these names count.
HEADER_TEXTS = {"text", "sentence", "review", "document", "content", "comment", "phrase", "utterance", "body", "tweet"}
HEADER_LABELS = {"label", "labels", "class", "category", "sentiment", "target", "rating", "score", "polarity", "stars", "tag"}
LABEL_WORDS = {"index", "id", "type", "name", "gold", "y"}  # words of a label column's name besides HEADER_LABELS ("Class Index")
COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_]*")  # what a column is called, lowercased
QUOTED_FIELD = re.compile(r'"(?:[^"]|"")*"')  # a whole field in CSV quotes, inner quotes doubled
ESCAPED_FIELD = re.compile(r'"(?:[^"\\]|\\.)*"')  # a whole field in quotes, inner quotes escaped by a backslash
ESCAPE = re.compile(r'\\(["\\])')  # \" and \\ in such a field
CSV_FIELD_LIMIT = 2**31 - 1  # the csv module refuses fields over 131,072 characters by default


@dataclass
class LabeledText:
    """A text and its label; the label in Unicode's composed form (``read_form``), as text is read,
    so that one label saved by two editors (macOS writes "é" as "e" + U+0301) is one class, and
    without the invisible characters that can end it (white space, and the format characters a web
    page or a spreadsheet leaves: zero-width space, joiners, direction marks, U+FEFF), so that
    "pos" and "pos" + U+200B, which print alike, are not two classes."""

    text: str
    label: str

    def __post_init__(self):
        self.label = without_invisible_ends(read_form(self.label))


def looks_labelled(lines: list[str], labels) -> bool:
    """Whether typed text (``rnnkit classify``'s lines) is a labelled training file: at least three
    lines, most of them (80 %) labelled lines of a format ``read_labeled`` reads: ``__label__X text``,
    an SST tree, or tab-separated (else comma-separated: a CSV's rows, whatever the file's name) fields
    of which the first or the last is one of ``labels`` (``label<TAB>text``, ``"text, quoted",label``);
    a header row first (``sentence<TAB>label``, ``text,label``) is not counted."""
    lines = [line.strip() for line in lines if line.strip()]
    first = (_fields(lines[0]) if "\t" in lines[0] else _csv_fields(lines[0])) if lines else []
    if len(first) > 1 and tsv_header(first, relaxed=False) is not None:
        lines = lines[1:]

    def labelled(line: str) -> bool:
        if line.startswith(FASTTEXT_LABEL):
            return True
        if line.startswith("("):  # a sentence in brackets is no tree: parse_tree takes only "(label words (child) ...)"
            try:
                parse_tree(line, "")
            except DataError:
                return False
            return True
        for fields in (_fields(line), _csv_fields(line)):
            if len(fields) > 1 and (fields[0] in labels or fields[-1] in labels):
                return True
        return False

    return len(lines) >= 3 and sum(map(labelled, lines)) >= 0.8 * len(lines)


def _csv_fields(line: str) -> list[str]:
    """A line's fields read as a CSV row, stripped; none for a line the csv module will not read (a
    field past its limit of 131,072 characters: a long text, whatever it is)."""
    try:
        return [field.strip() for field in next(csv.reader([line]), [])]
    except csv.Error:
        return []


def named_csv(path: str | Path) -> bool:
    """Whether a file's name makes it csv for ``--format auto`` (standard input has no name)."""
    return str(path) != textio.STDIN and Path(path).suffix.lower() == ".csv"


def detect_format(path: str | Path, lines: list[str] | None = None, usual: str = "tsv") -> str:
    """``csv`` for a ``.csv`` file; else from the first non-blank line: ``(`` -> ptb-trees,
    ``__label__`` -> fasttext, a tab -> tsv, anything else -> ``usual`` (a run's held-out and eval
    files are read as its training files were: a run trained on csv reads csv of any name)."""
    if named_csv(path):
        return "csv"
    lines = textio.read_lines(path) if lines is None else lines
    first = next((line.lstrip() for line in lines if line.strip()), "")
    if first.startswith("("):
        return "ptb-trees"
    if first.startswith(FASTTEXT_LABEL):
        return "fasttext"
    return "tsv" if "\t" in first else usual


def read_labeled(path: str | Path, fmt: str = "auto", text_column: str = "text", label_column: str = "label", phrases: bool = False,
                 positional: bool = False, usual: str = "tsv") -> list[LabeledText]:  # fmt: skip
    """The labelled texts of one file (``"-"``: standard input), read through ``textio`` (UTF-8, BOM
    dropped, LF / CRLF / lone CR line ends), in the order of the file.

    ``text_column`` / ``label_column`` name the columns of a csv file and of a tsv file with a header
    row. A file without column names (fastText, trees, a tsv without a header) given other names is
    refused, as the names would go unused; with ``positional`` (a run's held-out and eval files, the
    names being the training file's) it is read by position. ``usual``: what ``auto`` reads a file
    whose first line says nothing (``detect_format``). Errors: ``DataError`` naming ``file:line`` (a missing tab, label or text; several fastText
    labels on a line; a malformed tree; a csv parsing error), or ``file: no labelled texts``.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    name = textio.source_name(path)
    text = textio.read_text(path)
    lines = textio.split_lines(text)
    if not any(line.strip() for line in lines):
        raise DataError(f"{name}: the file has no text")
    if fmt == "auto":
        fmt = detect_format(path, lines, usual)
    if fmt == "csv":
        out = _read_csv(name, text, text_column, label_column)
    elif fmt == "tsv":
        out = _read_tsv(name, lines, text_column, label_column, positional)
    else:
        if not positional:
            _columns_unnamed(name, f"a {fmt} file", text_column, label_column)
        out = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            if fmt == "fasttext":
                out.append(_fasttext_line(where, line))
            else:
                sentence, subtrees = parse_tree(line, where)
                out.append(sentence)
                if phrases:
                    out.extend(subtrees)
    if phrases and fmt == "ptb-trees":  # one example per distinct labelled phrase; other formats keep every line
        unique = {(item.text, item.label): item for item in out}
        out = list(unique.values())
    if not out:
        raise DataError(f"{name}: no labelled texts")
    return out


def names_its_labels(path: str | Path, fmt: str = "auto", text_column: str = "text", label_column: str = "label") -> bool:
    """Whether the file itself says which field is the label: fastText's ``__label__``, trees, a CSV
    header, or a tsv header row naming the columns; not a headerless tsv, whose columns may be swapped."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt != "tsv":
        return True
    first = next((line for line in textio.read_lines(path) if line.strip()), "")
    return tsv_header([field.strip() for field in first.split("\t")], text_column, label_column, relaxed=False) is not None


def _checked(where: str, text: str, label: str) -> LabeledText:
    text, label = text.strip(), label.strip()
    if not read_form(text).strip():  # blank, or only invisible characters, which every level reads without
        raise DataError(f"{where}: the text is empty" + (" (only invisible characters)" if text else ""))
    if not label:
        raise DataError(f"{where}: the label is empty")
    return LabeledText(text, label)


def tsv_header(fields: list[str], text_column: str = "text", label_column: str = "label", relaxed: bool = True) -> tuple[int, int] | None:
    """(text index, label index) if ``fields`` (a first row split at tabs) is a header row: one field
    names the text column and another the label column (``text_column`` / ``label_column`` or a
    common name, case ignored), or, in a row of two fields, one of them does; None for a data row."""
    names = [field.strip().lower() for field in fields]

    def find(wanted: str, known: set[str]) -> int | None:
        if wanted.lower() in names:
            return names.index(wanted.lower())
        return next((i for i, n in enumerate(names) if n in known), None)

    text_at, label_at = find(text_column, HEADER_TEXTS), find(label_column, HEADER_LABELS)
    if relaxed and len(names) == 2 and (text_at is None) != (label_at is None):  # "label<TAB>question", "intent<TAB>text"
        other = names[1 - (label_at if text_at is None else text_at)]
        if COLUMN_NAME.fullmatch(other):  # a name, not a number or a sentence
            text_at = 1 - label_at if text_at is None else text_at
            label_at = 1 - text_at if label_at is None else label_at
    if text_at is None or label_at is None or text_at == label_at:
        return None
    return text_at, label_at


def _read_tsv(name: str, lines: list[str], text_column: str, label_column: str, positional: bool = False) -> list[LabeledText]:
    """``label<TAB>text`` lines; a header row naming the columns (in any order, with more columns
    if it likes) is recognised, read as the columns' names and never as an example."""
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    _refuse_one_column(name, text_column, label_column)
    first = _fields(numbered[0][1]) if numbered else []
    header = tsv_header(first, text_column, label_column) if numbered else None
    names = first if header else None
    if header is not None:
        _refuse_named_twice(f"{name}:{numbered[0][0]}", first, [first[at] for at in header])
        # a column named on the command line that the header lacks: tsv_header fell back to a common name ("sentence" for "coment")
        lowered = [field.strip().lower() for field in first]
        for column, usual in ((text_column, "text"), (label_column, "label")):
            if column.lower() != usual and column.lower() not in lowered:
                raise DataError(f"{name}:{numbered[0][0]}: no column {column!r} (columns: {', '.join(map(repr, first))[:200]})")
    rows = [_fields(line) for _, line in numbered[1:]]
    if header is not None and len(names) == 2:  # "neg<TAB>review" names a column, yet "neg" is a label below: a data row
        labels = {row[header[1]] for row in rows if len(row) > 1 and tsv_header(row, text_column, label_column, relaxed=False) is None}  # headers again (cat) are no examples
        if names[header[1]] in labels:
            header, names = None, None
        elif tsv_header(first, text_column, label_column, relaxed=False) is None:  # one field names a column ("target<TAB>shooting"): said, as it may be a first example
            print(f"rnnkit: {name}:{numbered[0][0]}: {first[0]!r}<TAB>{first[1]!r} read as the header row (it names a column, and its label is on no other line)",
                  file=sys.stderr, flush=True)  # fmt: skip
    elif header is None and _names_the_columns(first, rows, label_column):  # "intent<TAB>query", "Class Index<TAB>Review Text"
        where = f"{name}:{numbered[0][0]}"
        if len(first) > 2:  # "label<TAB>title<TAB>description": which column is the text? which the label?
            lowered = [field.lower() for field in first]
            missing = [f"--{role}-column NAME" for role, wanted, known in (("label", label_column, HEADER_LABELS), ("text", text_column, HEADER_TEXTS))
                       if wanted.lower() not in lowered and not known & set(lowered)]  # fmt: skip
            raise DataError(f"{where}: a header row ({', '.join(map(repr, first))[:120]}) in which rnnkit finds no "
                            f"{' and no '.join(option.split('-')[2] + ' column' for option in missing) or 'label and text columns'}; "
                            f"give {' and '.join(missing) or '--label-column NAME and --text-column NAME'}")  # fmt: skip
        print(f"rnnkit: {where}: {first[0]!r}<TAB>{first[1]!r} read as the header row (a label on no other line)", file=sys.stderr, flush=True)
        header, names = (1, 0), first
    if header is None:
        if not positional:
            _columns_unnamed(name, "a tsv file without a header row", text_column, label_column)
        _refuse_unnamed_table(name, numbered)
        columns, text_at, label_at = 2, 1, 0
    else:
        columns, (text_at, label_at) = len(first), header
        header_line, numbered = numbered[0][0], numbered[1:]
    out = []
    for number, line in numbered:
        where = f"{name}:{number}"
        if names and _fields(line) == names:
            _say_header_again(where)
            continue
        if names and tsv_header(line.split("\t"), text_column, label_column, relaxed=False) is not None:
            raise DataError(f"{where}: another header row ({line.strip()[:60]!r}), unlike line {header_line}'s: "
                            f"files with different columns joined? give them as separate training files")
        if "\t" not in line:
            if line.lstrip().startswith(("{", "[")):  # JSON lines, read as the default format
                raise DataError(f"{where}: a JSON line? labelled files are read as tsv (label<TAB>text), fastText, csv or SST trees "
                                "(docs/input_formats.md), not JSON")  # fmt: skip
            quoted = " (a line break inside a quoted text? a tsv file cannot hold one; save the file as .csv)" if '"' in line else ""
            late = f" (fastText's label comes first: '{FASTTEXT_LABEL}X text')" if FASTTEXT_LABEL in line else ""
            raise DataError(f"{where}: expected 'label<TAB>text', found no tab{quoted}{late}")
        fields = line.split("\t")
        while len(fields) > columns and not fields[-1].strip():  # trailing tabs make no column (a spreadsheet's empty cells)
            fields.pop()
        if len(fields) > columns:  # the text column keeps the tabs beyond the header's count
            after = columns - 1 - text_at  # columns after the text's
            fields = [*fields[:text_at], "\t".join(fields[text_at : len(fields) - after]), *fields[len(fields) - after :]]
        if len(fields) < columns:
            raise DataError(f"{where}: {len(fields)} tab-separated fields, the header row has {columns}")
        text = _unquoted(fields[text_at])
        if text.strip().startswith(FASTTEXT_LABEL) and len(text.split()) == 1:  # "great film<TAB>__label__pos": every text a label
            raise DataError(f"{where}: the text is {text.strip()[:40]!r}, a fastText label after the text; fastText puts the label "
                            f"first ('{FASTTEXT_LABEL}X text'), a tsv line is label<TAB>text")
        out.append(_checked(where, text, _unquoted(fields[label_at])))
    return out


def _refuse_unnamed_table(name: str, numbered: list[tuple[int, str]]) -> None:
    """Refuse a headerless tsv file whose every line has the same three or more columns (GLUE's CoLA:
    ``source<TAB>label<TAB>mark<TAB>sentence``): read as ``label<TAB>text`` its first column would be
    the labels and the rest one text, silently; a text holding a tab is rare, the same tabs on every
    line are a table. A ``DataError`` naming the file, with the header row that makes it readable."""
    rows = [_fields(line) for _, line in numbered]
    counts = {len(row) for row in rows}
    filled = {at for row in rows for at, field in enumerate(row) if field}  # a column empty on every line (a spreadsheet's) tells nothing
    if len(numbered) >= 2 and len(counts) == 1 and (columns := counts.pop()) >= 3 and len(filled) >= 3:
        first = _fields(numbered[0][1])
        raise DataError(f"{name}:{numbered[0][0]}: every line has {columns} tab-separated columns and no header row says which is the label "
                        f"and which the text (line {numbered[0][0]}: {', '.join(repr(f[:20]) for f in first)[:120]}); add a header row naming the "
                        f"label column 'label' and the text column 'text' (the others any name), or keep only those two columns, label first")  # fmt: skip


def _fields(line: str) -> list[str]:
    """A tsv line's fields, stripped; trailing tabs make no field (a spreadsheet's empty cells)."""
    fields = [field.strip() for field in line.split("\t")]
    while len(fields) > 1 and not fields[-1]:
        fields.pop()
    return fields


def _names_the_columns(first: list[str], rows: list[list[str]], label_column: str) -> bool:
    """Whether a first row that names no column rnnkit knows is still a header: its label is on no
    other line, and it is a label column's name (``label_column`` or a common one), or every field
    is a name (an identifier; or words naming a label column, where the other lines' labels repeat, as classes do)."""
    labels = [row[0] for row in rows if len(row) > 1]
    if len(first) < 2 or len(labels) < 2 or first[0] in labels:
        return False
    if first[0].strip().lower() in HEADER_LABELS | {label_column.lower()}:
        return True
    if all(COLUMN_NAME.fullmatch(field.strip().lower()) for field in first):  # identifiers: "intent<TAB>query"
        return True
    words = all(COLUMN_NAME.fullmatch(field.strip().lower().replace(" ", "_")) and len(field) <= 40 for field in first)
    # "Class Index<TAB>Review Text": words naming a label column, over labels that repeat; a first
    # example of a rare class ("neutral<TAB>okay film", "Very Negative<TAB>...") names none
    names_a_label = bool(set(first[0].strip().lower().replace("_", " ").split()) & (HEADER_LABELS | LABEL_WORDS))
    return words and names_a_label and len(set(labels)) <= len(labels) / 2


def _unquoted(field: str) -> str:
    """A tsv field as written with CSV quoting (Python's csv module, pandas' ``to_csv(sep="\\t")``):
    ``"He said ""wow"" twice"`` is ``He said "wow" twice``; or with backslash escapes (Kaggle's IMDB
    ``labeledTrainData.tsv``, database dumps): ``"He said \\"wow\\" twice"`` is the same text, where
    read as it is, the reviews quoting someone kept their quotes and backslashes and the others lost theirs.
    Any other field is read as it is (a text may well start with a quote: an inch mark, a quotation)."""
    stripped = field.strip()
    if stripped.startswith('"') and QUOTED_FIELD.fullmatch(stripped):
        return stripped[1:-1].replace('""', '"')
    if stripped.startswith('"') and ESCAPED_FIELD.fullmatch(stripped):
        return ESCAPE.sub(r"\1", stripped[1:-1])
    return field


def _say_header_again(where: str) -> None:
    print(f"rnnkit: {where}: the header row again (files joined with cat?): skipped", file=sys.stderr, flush=True)


def _columns_unnamed(name: str, what: str, text_column: str, label_column: str) -> None:
    """Refuse --text-column / --label-column (not their defaults) for a file whose columns have no names."""
    given = [f"the {role} column {value!r} ({option})" for role, option, value, default in (("text", "--text-column", text_column, "text"), ("label", "--label-column", label_column, "label")) if value != default]
    if given:  # named as columns, not only as options: rnnkit eval of a run trained with them takes no such option
        raise DataError(f"{name}: {what} has no column names, so {' and '.join(given)} cannot be found in it; a .csv file with a header row names its columns")


FASTTEXT_SEPARATOR = re.compile(r"[ \t\v\f\r\0]+")  # fastText's Dictionary::readWord: these end a word


def _refuse_one_column(name: str, text_column: str, label_column: str) -> None:
    """``--text-column label --label-column label``: the labels would be trained on as their own texts."""
    if text_column.strip().lower() == label_column.strip().lower():
        raise DataError(f"{name}: the text column and the label column are one column, {text_column!r}; "
                        f"name two columns (--text-column, --label-column)")


def _refuse_named_twice(where: str, header: list[str], wanted: list[str]) -> None:
    """A header row naming a wanted column more than once (case ignored, as columns are found):
    which one is meant? The first was taken, unsaid."""
    names = [field.strip().lower() for field in header]
    for column in wanted:
        if names.count(column.strip().lower()) > 1:
            raise DataError(f"{where}: the header names the column {column!r} more than once; rename one (columns: {', '.join(map(repr, header))[:200]})")


def _fasttext_line(where: str, line: str) -> LabeledText:
    """``__label__X text``: one label, first; the label's prefix and the label never become words."""
    first, *rest = FASTTEXT_SEPARATOR.split(line.strip(), maxsplit=1)  # as fastText cuts words: at space, tab, \v, \f, \r, \0
    text = rest[0] if rest else ""
    if not first.startswith(FASTTEXT_LABEL) or len(first) == len(FASTTEXT_LABEL):
        raise DataError(f"{where}: expected '__label__X text', got {line[:40]!r}")
    glued = [FASTTEXT_LABEL + label.rstrip(",;|") for label in first.split(FASTTEXT_LABEL)[1:]]  # "__label__a,__label__b": two
    labels = glued + [word for word in text.split() if word.startswith(FASTTEXT_LABEL)]
    if len(labels) > 1:
        raise DataError(f"{where}: several labels ({', '.join(labels[:4])}): the classifier takes one label per text")
    return _checked(where, text, first[len(FASTTEXT_LABEL) :])


def _read_csv(name: str, text: str, text_column: str, label_column: str) -> list[LabeledText]:
    """A header row, then rows; fields may be quoted and hold commas, line breaks and any length.
    Quoting is read strictly: a quote never closed, or text after a closing quote, is an error at the
    line where its row starts, not a field that silently swallows the rest of the file."""
    text = "\n".join(textio.split_lines(text))  # line breaks inside quoted fields read alike too
    # skipinitialspace: `1, "great, fine film"` (a space after each comma, as people type CSV) is two
    # fields, where the quote after the space was read as text and the comma inside it split the field
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    out, start = [], 1
    try:
        header = next(reader, [])
        names = [field.strip().lower() for field in header]
        where = {}
        for column in (text_column, label_column):
            if column not in header and column.lower() not in names:
                semicolons = "; fields separated by ';'? rnnkit reads CSV separated by ','" if len(header) == 1 and ";" in header[0] else ""
                raise DataError(f"{name}: no column {column!r} (columns: {', '.join(map(repr, header))[:200]}){semicolons}")
            where[column] = header.index(column) if column in header else names.index(column.lower())
        if where[text_column] == where[label_column]:  # --text-column label: the labels trained on as their own texts
            _refuse_one_column(name, header[where[text_column]], header[where[label_column]])
        _refuse_named_twice(name, header, [text_column, label_column])
        while True:
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                break
            if not any(field.strip() for field in row):
                continue  # a blank line
            at = f"{name}:{start}"
            if row == header:
                _say_header_again(at)
                continue
            if len(row) != len(header):
                unquoted = " (an unquoted comma in a text? quote the field)" if len(row) > len(header) else ""
                raise DataError(f"{at}: {len(row)} field(s), the header has {len(header)}{unquoted}")
            out.append(_checked(at, row[where[text_column]], row[where[label_column]]))
    except csv.Error as error:
        raise DataError(f"{name}:{start}: not valid CSV ({error})") from None
    finally:
        csv.field_size_limit(limit)
    return out


def parse_tree(line: str, where: str) -> tuple[LabeledText, list[LabeledText]]:
    """The sentence (root label, leaves) and every labelled subtree of one bracketed tree.

    Iterative (an explicit stack), so a tree nested thousands deep is read, not a RecursionError.
    A node is ``(label word ... (child) ...)``: its words, then its children.
    """
    tokens = line.replace("(", " ( ").replace(")", " ) ").split()
    subtrees: list[LabeledText] = []
    stack: list[tuple[str, list[str]]] = []  # the open nodes: (label, words so far)
    root: LabeledText | None = None
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if root is not None:
            raise DataError(f"{where}: malformed tree: text after the closing parenthesis")
        if token == "(":
            position += 1
            if position >= len(tokens) or tokens[position] in "()":
                raise DataError(f"{where}: malformed tree near token {position + 1}: expected a label")
            label, leaves = tokens[position], []
            position += 1
            while position < len(tokens) and tokens[position] not in "()":  # a leaf: (label word ...), e.g. (2 8 1\/2)
                leaves.append(UNESCAPE.get(tokens[position], tokens[position].replace("\\/", "/")))
                position += 1
            stack.append((label, leaves))
        elif token == ")":
            if not stack:
                raise DataError(f"{where}: malformed tree: unbalanced parentheses")
            label, leaves = stack.pop()
            position += 1
            if not leaves:
                raise DataError(f"{where}: malformed tree: a node without words")
            if stack:
                subtrees.append(LabeledText(" ".join(leaves), label))
                stack[-1][1].extend(leaves)
            else:
                root = LabeledText(" ".join(leaves), label)
        elif not stack:
            raise DataError(f"{where}: malformed tree near token {position + 1}: expected '('")
        else:  # a word after a child node: (2 (2 a) b)
            raise DataError(f"{where}: malformed tree: unbalanced parentheses")
    if stack:
        raise DataError(f"{where}: malformed tree: unbalanced parentheses")
    if root is None:
        raise DataError(f"{where}: malformed tree near token 1: expected '('")
    return root, subtrees
