"""CoNLL column files for sequence tagging, and the IOB1 / IOB2 / IOBES tag schemes.

A CoNLL file has one token per line, columns separated by tabs or (in a file without tabs) white
space, a blank line between sentences; ``-DOCSTART-`` lines (in either case) separate documents and are skipped. The token and tag columns are
chosen by index (negative counts from the end: the tag is usually the last column).

Tag schemes for entities of type X:

* IOB1 (CoNLL-2003's original): ``I-X`` inside an entity; ``B-X`` only to start an entity right
  after another of the same type.
* IOB2 (BIO): ``B-X`` starts every entity, ``I-X`` continues it.
* IOBES: ``B-X`` begins, ``I-X`` continues, ``E-X`` ends a multi-token entity; ``S-X`` is a
  single-token entity.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from . import textio
from .tokenizers import read_form, without_invisible_ends
from .textio import DataError
from ..errors import UsageError

SCHEMES = ("iob1", "iob2", "iobes")
COMMENT_HINT = " (a CoNLL-U comment line? rnnkit reads column files without them: grep -v '^#')"
LONG_SENTENCE = 1_000  # tokens: CoNLL-2003's longest sentence has 124; a longer one is likely sentences run together
MAX_TOKEN_CHARS = 10_000  # characters of one token: a batch's character tensor is padded to the longest


@dataclass
class TaggedSentence:
    tokens: list[str]
    tags: list[str]


ENTITY_TAG = re.compile(r"O|[BIESLU][-_]\S+")  # what ends a line of a tagged column file, in any scheme


def is_document_start(token: str) -> bool:
    """Whether a line's token is CoNLL's document separator, ``-DOCSTART-``; a copy of the corpus whose
    tokens were lowercased (an uncased model's preprocessing) writes it ``-docstart-``, which is no word."""
    return token.upper() == "-DOCSTART-"


def looks_like_column_lines(lines: list[str]) -> bool:
    """Whether typed text (``rnnkit tag``'s lines) is a CoNLL column file, a token and its tags per
    line: at least three lines, most of them (80 %) ``-DOCSTART-`` or ending in a tag after the token,
    or CoNLL-U's ten tab-separated columns after a word number."""
    conllu = sum(1 for line in lines if len(line.split("\t")) == 10 and line.split("\t")[0].replace("-", "").replace(".", "").isdigit())
    lines = [line.split() for line in lines if line.strip() and not (conllu and line.startswith("#"))]  # CoNLL-U's comments count for neither
    tagged = sum(1 for fields in lines if is_document_start(fields[0]) or (len(fields) >= 2 and ENTITY_TAG.fullmatch(fields[-1])))
    return len(lines) >= 3 and max(tagged, conllu) >= 0.8 * len(lines)  # CoNLL-U: ID, FORM, ... MISC, tab-separated


def looks_like_token_lines(lines: list[str]) -> bool:
    """Whether typed text is one token per line with blank lines between sentences (a CoNLL file
    without its tag columns, ``cut -d' ' -f1 eng.testb``, the usual input of NER tools): at least
    five tokens, nine in ten non-blank lines a single token, and a blank line among them or a line
    of punctuation alone (a sentence's end)."""
    words = [line.split() for line in lines if line.strip()]
    single = sum(1 for fields in words if len(fields) == 1)
    ends = any(not line.strip() for line in lines) or any(fields == ["."] for fields in words)
    return len(words) >= 5 and single >= 0.9 * len(words) and ends


def split_columns(line: str, tabs: bool) -> list[str]:
    """The columns of one line: at tabs in a tab-separated file (a token may then hold spaces, as
    ``New York``; trailing tabs make no column), else at runs of white space."""
    if not tabs:
        return line.split()
    columns = [column.strip() for column in line.split("\t")]
    while columns and not columns[-1]:
        columns.pop()
    return columns


def _mixed(line: str, columns: int, first_tab: int | None) -> str:
    """For an error about ``line``: why it has too few columns when the file mixes tabs and spaces
    (one tab anywhere splits every line at tabs only), else nothing."""
    if first_tab is None or "\t" in line.strip() or len(line.split()) <= columns:
        return ""
    return f" (line {first_tab} has a tab, so every line is split at tabs only, and this one has none)"


def _columns_differ(name: str, lines: list[str], this: tuple[int, int], first: tuple[int, int], tabs: bool, first_tab: int | None) -> DataError:
    """The error for a token line (``this``: line number, column count) whose column count is not
    the first token line's: it names the line of the two whose count fewer token lines share, so
    that a first line cut in two by a non-breaking space is blamed, not the correct line after it."""
    counts: dict[int, int] = {}
    for line in lines:
        if line.strip() and not is_document_start(line.split()[0]):
            n = len(split_columns(line, tabs))
            counts[n] = counts.get(n, 0) + 1
    (number, n), (other, other_n) = (first, this) if counts[first[1]] < counts[this[1]] else (this, first)
    line = lines[number - 1]
    split = "tabs" if tabs else "white space (a token with a space? separate the columns with tabs)"
    why = COMMENT_HINT if line.lstrip().startswith("#") else _mixed(line, n, first_tab) or ("" if tabs else _odd_space(line))
    alike = counts[other_n] - 1
    alike = f" (as {alike:,} other line{'s do' if alike > 1 else ' does'})" if alike else ""
    return DataError(f"{name}:{number}: {n} columns split at {split}, but line {other} has {other_n}{alike}: {line.strip()[:60]!r}{why}")


def _odd_space(line: str) -> str:
    """For an error about a line split at white space: the first space in it that is not a plain one
    (a non-breaking space pasted from a web page, ``New\u00a0York``), which splits a token as a space does."""
    odd = next((c for c in line.strip() if c.isspace() and c not in " \t"), None)
    if odd is None:
        return ""
    what = "a non-breaking space" if odd == "\u00a0" else f"the white space {unicodedata.name(odd, 'character').lower()}"
    return f" (it holds {what}, U+{ord(odd):04X}, which splits a token as a space does)"


def read_conll(path: str | Path, token_column: int = 0, tag_column: int = -1, scheme: str | None = None, scheme_fixed: bool = False) -> list[TaggedSentence]:
    """Sentences of a CoNLL file (``"-"``: standard input), read through ``textio`` (UTF-8, BOM
    dropped, any line ends).

    A file with a tab inside any line (not at its end) is tab-separated: columns are split at tabs only, so a token may
    hold spaces; other files are split at white space. Every token line must have as many columns
    as the first, so a token that white space cut in two is an error, never a silently shifted tag.
    ``-DOCSTART-`` lines are skipped. With ``scheme`` iob1 or iob2, an ``E-X`` or ``S-X`` tag (IOBES's
    own) is an error: read as IOB, "John/B-PER Smith/E-PER" would be two entities of which the second
    is invalid, and no tagger trained on it could tag a two-word name. With ``scheme`` iob2 or iobes,
    a tag the scheme does not allow after the one before (``follows``: an I-X after O, an IOBES entity
    left open) is an error too: an IOB1 file read so would lose its entities; such an error asks
    whether the file is of another ``--scheme``, or, with ``scheme_fixed`` (a trained run's scheme,
    which ``rnnkit eval`` cannot change), says to convert the file. Errors: ``DataError`` with
    ``file:line`` (a missing column, a changed column count, an empty token, a tag not of the form
    O / B-X / I-X / E-X / S-X, an IOBES tag in an IOB file), or ``file: no tagged sentences``.
    """
    from .batches import MAX_SEQUENCE_STEPS  # here: batches imports torch, and the tag schemes are read by rnnkit train --help

    name = textio.source_name(path)
    text = textio.read_text(path)
    textio.refuse_doubled_line_ends(text, name)
    lines = textio.split_lines(text)
    first_tab = next((number for number, line in enumerate(lines, start=1) if "\t" in line.rstrip()), None)  # not a tab on a blank line, nor trailing ones
    tabs = first_tab is not None
    sentences, tokens, tags = [], [], []
    first: tuple[int, int] | None = None  # (line number, column count) of the first token line
    last_line = 0  # the line of the last token read
    for number, line in enumerate(lines, start=1):
        if len(tokens) > MAX_SEQUENCE_STEPS:  # a file without blank lines is one endless sentence
            raise DataError(f"{name}:{number - len(tokens)}: a sentence of more than {MAX_SEQUENCE_STEPS:,} tokens: are blank lines missing between sentences?")
        if not line.strip():
            if tokens:
                _check_sequence(name, last_line, tags[-1], None, scheme, scheme_fixed)  # an IOBES entity must have ended
                sentences.append(TaggedSentence(tokens, tags))
                tokens, tags = [], []
            continue
        columns = split_columns(line, tabs)
        if is_document_start(line.split()[0]) or (len(columns) > token_column >= -len(columns) and is_document_start(columns[token_column])):
            if tokens:  # a document starts: the sentence before it has ended, blank line or not
                _check_sequence(name, last_line, tags[-1], None, scheme, scheme_fixed)
                sentences.append(TaggedSentence(tokens, tags))
                tokens, tags = [], []
            continue
        n = len(columns)
        if not (-n <= token_column < n and -n <= tag_column < n) or token_column % n == tag_column % n:
            why = COMMENT_HINT if line.lstrip().startswith("#") else _mixed(line, n, first_tab)
            raise DataError(f"{name}:{number}: expected a token column ({token_column}) and a tag column ({tag_column}), got {n} column(s): {line.strip()[:60]!r}{why}")
        if first is None:
            first = (number, n)
        elif n != first[1]:
            raise _columns_differ(name, lines, (number, n), first, tabs, first_tab)
        token, tag = read_form(columns[token_column]), without_invisible_ends(read_form(columns[tag_column]))  # "I-PER" + U+200B is I-PER
        if tag[1:2] == "-":  # and so is "I-" + U+200E + "PER": the type's own ends
            tag = tag[:2] + without_invisible_ends(tag[2:])
        if not token:
            raise DataError(f"{name}:{number}: the token (column {token_column}) is empty"
                            + (" (only invisible characters)" if columns[token_column] else ""))
        if len(token) > MAX_TOKEN_CHARS:  # the tagger reads every token's characters, padded to the longest
            raise DataError(f"{name}:{number}: a token of {len(token):,} characters, more than {MAX_TOKEN_CHARS:,}: is this a CoNLL file?")
        if tag != "O" and (len(tag) < 3 or tag[1] != "-" or tag[0] not in "BIES"):
            raise DataError(f"{name}:{number}: {tag[:30]!r} is not a tag of the form O, B-X, I-X, E-X or S-X{COMMENT_HINT if line.lstrip().startswith('#') else _tag_hint(tag)}")
        if scheme in ("iob1", "iob2") and tag[0] in "ES":
            raise DataError(f"{name}:{number}: {tag[:30]!r} is an IOBES tag, but the file is read as {scheme.upper()} (--scheme {scheme}); "
                            f"{_other_scheme(scheme, 'iobes', scheme_fixed)}")
        _check_sequence(name, number, tags[-1] if tags else "O", tag, scheme, scheme_fixed)
        tokens.append(token)  # composed, as typed text is read
        tags.append(tag)
        last_line = number
    if tokens:
        _check_sequence(name, last_line, tags[-1], None, scheme, scheme_fixed)
        sentences.append(TaggedSentence(tokens, tags))
    if not sentences:
        raise DataError(f"{name}: no tagged sentences")
    longest = max(len(sentence.tokens) for sentence in sentences)
    if longest > LONG_SENTENCE:  # read as asked, but a file without blank lines is one sentence: said, not silent
        print(f"rnnkit: note: {name}: a sentence of {longest:,} tokens ({len(sentences):,} in all): are blank lines missing between sentences?",
              file=sys.stderr, flush=True)
    return sentences


def _tag_hint(tag: str) -> str:
    """Why a tag is not of the form O / B-X / ...: the other spellings seen in tagged files."""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "LU":
        return " (BILOU? its L-X and U-X are IOBES's E-X and S-X: rename them and read the file as --scheme iobes)"
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "biesou":
        return " (tags are case-sensitive: B-, I-, E-, S- and O in capitals)"
    if len(tag) > 2 and tag[1] in "_.:" and tag[0] in "BIES":
        return f" (a hyphen follows the {tag[0]}: {tag[0]}-{tag[2:][:20]})"
    if tag in ("o", "0"):
        return " (outside an entity is the capital letter O)"
    if len(tag) > 2 and tag[-2] == "-" and tag[-1] in "BIESLU":
        return f" (the position comes first: {tag[-1]}-{tag[:-2][:20]})"
    return ""


def follows(previous: str, tag: str | None, scheme: str) -> bool:
    """Whether ``tag`` may follow ``previous`` in ``scheme`` (``previous`` "O" at a sentence's start,
    ``tag`` None at its end). IOB1: any tag anywhere (I-X begins an entity). IOB2: I-X continues a B-X
    or I-X of its type. IOBES: B-X and I-X are followed by I-X or E-X of their type, and only they are."""
    open_entity = previous[:1] in ("B", "I")
    continues = tag is not None and open_entity and tag[:1] in ("I", "E") and _type(tag) == _type(previous)
    if scheme == "iob2":
        return tag is None or tag[:1] != "I" or continues
    if scheme == "iobes":
        return continues if open_entity else tag is None or tag[:1] not in ("I", "E")
    return True


def allowed_transitions(tags: list[str], scheme: str) -> dict[str, list]:
    """The scheme's rules over a tag set, for decoding only valid paths (Viterbi with the others
    forbidden): ``start`` (K,) may begin a sentence, ``transitions`` (K, K) [from][to], ``end`` (K,)
    may end one."""
    return {"start": [follows("O", tag, scheme) for tag in tags],
            "transitions": [[follows(previous, tag, scheme) for tag in tags] for previous in tags],
            "end": [follows(previous, None, scheme) for previous in tags]}  # fmt: skip


def _other_scheme(scheme: str, hint: str, fixed: bool) -> str:
    """The end of an error for a file that does not follow ``scheme``: ask whether it is of scheme
    ``hint``, or, where the scheme is a trained run's own (``rnnkit eval`` takes no --scheme), say
    what to do instead of naming an option the verb refuses."""
    if fixed:
        return f"this run reads {scheme.upper()} files (it was trained with --scheme {scheme}): convert the file to it"
    return f"is it --scheme {hint}?"


def _check_sequence(name: str, number: int, previous: str, tag: str | None, scheme: str | None, fixed: bool = False) -> None:
    """Refuse a tag that cannot follow ``previous`` in ``scheme`` (``tag`` None: the sentence ends):
    read under the wrong scheme, a file's entities are silently lost (an IOB1 file read as IOB2 or
    IOBES has no entity whose first word is I-X, which is most of CoNLL-2003's)."""
    if scheme not in ("iob2", "iobes") or follows(previous, tag, scheme):
        return
    rules = {"iob2": ("I-X continues a B-X or I-X of its type", "iob1"),
             "iobes": ("B-X and I-X are followed by I-X or E-X of their type, and only they are", "iob1 or --scheme iob2")}  # fmt: skip
    rule, hint = rules[scheme]
    if tag is None:
        raise DataError(f"{name}:{number}: {previous[:30]!r} ends a sentence, but in IOBES an entity ends with E-X (--scheme iobes); "
                        f"{_other_scheme(scheme, hint, fixed)}")
    raise DataError(f"{name}:{number}: {tag[:30]!r} after {previous[:30]!r} is not {scheme.upper()} (--scheme {scheme}), where {rule}; "
                    f"{_other_scheme(scheme, hint, fixed)}")


def _type(tag: str) -> str:
    return tag[2:]


def iob1_to_iob2(tags: list[str]) -> list[str]:
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and (i == 0 or tags[i - 1] == "O" or _type(tags[i - 1]) != _type(tag)):
            tag = "B-" + _type(tag)
        out.append(tag)
    return out


def iob2_to_iobes(tags: list[str]) -> list[str]:
    out = []
    for i, tag in enumerate(tags):
        continues = i + 1 < len(tags) and tags[i + 1] == "I-" + _type(tag)
        if tag.startswith("B-"):
            out.append(tag if continues else "S-" + _type(tag))
        elif tag.startswith("I-"):
            out.append(tag if continues else "E-" + _type(tag))
        else:
            out.append(tag)
    return out


def iobes_to_iob2(tags: list[str]) -> list[str]:
    return ["B-" + _type(t) if t.startswith("S-") else "I-" + _type(t) if t.startswith("E-") else t for t in tags]


def convert(tags: list[str], source: str, target: str) -> list[str]:
    """Tags from one scheme to another (through IOB2)."""
    for scheme in (source, target):
        if scheme not in SCHEMES:
            raise UsageError(f"unknown tag scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")
    iob2 = iob1_to_iob2(tags) if source == "iob1" else iobes_to_iob2(tags) if source == "iobes" else list(tags)
    if target == "iob2":
        return iob2
    if target == "iobes":
        return iob2_to_iobes(iob2)
    return [("I-" + _type(t)) if t.startswith("B-") and (i == 0 or iob2[i - 1] == "O" or _type(iob2[i - 1]) != _type(t)) else t for i, t in enumerate(iob2)]


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, start, end) spans of IOB2 tags, end exclusive; strict: an I-X must follow B-X or I-X."""
    spans, start, kind = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and not (tag.startswith("I-") and _type(tag) == kind):
            spans.append((kind, start, i))
            start = None
        if tag.startswith("B-"):
            start, kind = i, _type(tag)
    return spans
