"""Line-aligned parallel text (translation): line i of the target file translates line i of the
source file. Different line counts, or a pair with an empty side, are one-line errors naming the
files; blank lines are kept while reading so that the alignment cannot silently shift."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

from .text import read_lines
from .textio import DataError, source_name
from .tokenizers import is_blank_text


def read_parallel(source: str | Path, target: str | Path) -> list[tuple[str, str]]:
    """The (source, target) sentence pairs of two line-aligned files, read through ``textio``
    (UTF-8, BOM dropped, LF / CRLF / lone CR line ends, so files saved on different systems still
    align). Blank lines at the very end of either file are not lines of text and do not count.

    Errors (``DataError``, one line): different line counts, naming both files and counts; a line
    empty on one side only, naming ``file:line``; a missing or undecodable file.
    """
    src, tgt = (_trimmed(read_lines(path, keep_blank=True)) for path in (source, target))
    if len(src) != len(tgt):
        raise DataError(f"{source_name(source)} has {len(src)} lines but {source_name(target)} has {len(tgt)}: parallel files must be line-aligned")
    pairs = []
    for number, (s, t) in enumerate(zip(src, tgt), start=1):
        blank_s, blank_t = is_blank_text(s), is_blank_text(t)  # only invisible characters is blank too
        if blank_s and blank_t:
            continue  # an empty pair carries nothing
        if blank_s or blank_t:
            empty, other = (source, target) if blank_s else (target, source)
            raise DataError(f"{source_name(empty)}:{number}: empty line, while {source_name(other)}:{number} is not")
        pairs.append((s.strip(), t.strip()))
    return pairs


class Bitext(NamedTuple):
    """A one-file bitext form of other tools: each line a source and its translation, and the
    commands that cut such a file into its two sides."""

    form: str
    source_side: str
    target_side: str


# the one-file bitexts of other tools, by the separator between a line's two sides
BITEXTS = {
    "\t": Bitext("source<TAB>target", "cut -f1 FILE", "cut -f2 FILE"),  # Tatoeba's and Anki's pairs, OPUS's tab-separated downloads
    " ||| ": Bitext("source ||| target", "sed 's/ ||| .*//' FILE", "sed 's/.* ||| //' FILE"),  # Moses's and fast_align's
}


def bitext_form(lines: list[str]) -> Bitext | None:
    """The bitext ``lines`` are (``BITEXTS``) when at least half of their non-blank lines hold its
    separator; None otherwise."""
    lines = [line for line in lines if line.strip()]
    for separator, bitext in BITEXTS.items():
        if lines and 2 * sum(separator in line for line in lines) >= len(lines):
            return bitext
    return None


def bitext_advice(bitexts=BITEXTS.values()) -> str:
    """The commands that cut each of ``bitexts`` (every form by default) into its two sides."""
    return "; ".join(f"a {b.form} file: {b.source_side} and {b.target_side} make them" for b in bitexts)


def note_if_bitext(what: str, lines: list[str]) -> None:
    """The note, on standard error, when ``lines`` (the text of ``what``: a file given as one side of
    a pair) are a one-file bitext: each line would be read as one side's sentence, both sides in it."""
    if bitext := bitext_form(lines):
        print(f"rnnkit: note: {what}'s lines look like a bitext ({bitext.form}), read here as one side: each pair was learnt as one "
              f"sentence; give the two sides as two files ({bitext_advice([bitext])})", file=sys.stderr, flush=True)


def _trimmed(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines.pop()
    return lines
