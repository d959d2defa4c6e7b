"""Line-aligned parallel text (translation): line i of the target file translates line i of the
source file. Different line counts, or a pair with an empty side, are one-line errors naming the
files; blank lines are kept while reading so that the alignment cannot silently shift."""

from __future__ import annotations

from pathlib import Path

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


def _trimmed(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines.pop()
    return lines
