"""Line-aligned parallel text (translation): line i of the target file translates line i of the
source file. Different line counts, or a pair with an empty side, are one-line errors naming the
files; blank lines are kept while reading so that the alignment cannot silently shift."""

from __future__ import annotations

from pathlib import Path

from .text import DataError, read_lines


def read_parallel(source: str | Path, target: str | Path) -> list[tuple[str, str]]:
    src = read_lines(source, keep_blank=True)
    tgt = read_lines(target, keep_blank=True)
    if len(src) != len(tgt):
        raise DataError(f"{source} has {len(src)} lines but {target} has {len(tgt)}: parallel files must be line-aligned")
    pairs = []
    for number, (s, t) in enumerate(zip(src, tgt), start=1):
        if not s.strip() and not t.strip():
            continue  # an empty pair (a trailing blank line in both) carries nothing
        if not s.strip() or not t.strip():
            empty, other = (source, target) if not s.strip() else (target, source)
            raise DataError(f"{empty}:{number}: empty line, while {other}:{number} is not")
        pairs.append((s.strip(), t.strip()))
    return pairs
