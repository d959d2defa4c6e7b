"""Reading text files, with one-line errors that name the file (and the line) at fault, and a
deterministic split of one file's lines into train / valid / test when no split is given."""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from . import textio
from .textio import DataError

__all__ = ["DataError", "fingerprint", "read_lines", "split_lines"]

# the language model's data settings that make a prepared corpus (its tokens and its split; rnnkit.data.corpus):
# kept here, where no torch is imported, for rnnkit prepare --help
CORPUS_SETTINGS = ("level", "lowercase", "bpe_vocab", "line_breaks", "max_vocab", "min_count", "split", "split_seed")


def read_lines(path: str | Path, keep_blank: bool = False) -> list[str]:
    """The lines of a UTF-8 text file (``"-"``: standard input), read through ``textio`` (BOM
    dropped; LF, CRLF and lone CR are line breaks); blank lines are dropped unless ``keep_blank``,
    which is for files whose line i goes with another file's line i (a lone CR inside a line of an
    LF file is then refused: ``textio.refuse_stray_carriage_return``).

    Errors (one line each): missing file, a directory, bytes that are not UTF-8 (with the line
    number), a file with no text.
    """
    text = textio.read_text(path)
    if keep_blank:
        textio.refuse_stray_carriage_return(text, textio.source_name(path))
    lines = textio.split_lines(text)
    if not any(line.strip() for line in lines):
        raise DataError(f"{textio.source_name(path)}: the file has no text")
    if not keep_blank:
        lines = [line for line in lines if line.strip()]
    return lines


def split_sizes(n: int, valid: float, test: float, what: str = "lines") -> tuple[int, int]:
    """How many of ``n`` lines go to valid and to test: round(n·fraction), and at least one line for
    a fraction asked for, so that 5 lines split 3/1/1 rather than fail (the rule of ``split_lines``
    and of prepared corpora). Raises ``DataError`` (one line) when no training line would be left."""
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise DataError(f"split fractions must leave training data: valid={valid}, test={test}")
    n_valid, n_test = (max(1, round(n * f)) if f else 0 for f in (valid, test))
    if n - n_valid - n_test < 1:
        what = what if n != 1 else re.sub(r"^(\w+?)s\b", r"\1", what)  # "1 line of a.txt is too few"
        raise DataError(f"{n} {what} {'are' if n != 1 else 'is'} too few to split into train/valid/test = {1 - valid - test:g}/{valid:g}/{test:g} (--split); "
                        f"give more, or --valid and --test files, or --split 0 0")
    held = (n_valid + n_test) / n
    if held > 2 * (valid + test) and held >= 0.2:  # 3 lines split 1/1/1: two thirds held out, where a tenth was asked
        print(f"rnnkit: note: {n} {what} split {n - n_valid - n_test}/{n_valid}/{n_test} into train/valid/test: {held:.0%} held out "
              f"(--split asks {valid + test:.0%}; each split gets at least one); --split 0 0 trains on all", file=sys.stderr, flush=True)
    return n_valid, n_test


def split_lines(lines: Sequence[str], valid: float, test: float, seed: int, what: str = "lines") -> tuple[list[str], list[str], list[str]]:
    """Shuffle ``lines`` with ``seed`` and cut them into train / valid / test by the given fractions.

    A non-zero fraction gets at least one line. Deterministic: the same lines, fractions and seed give the same split on any machine (it uses
    Python's own ``random.Random``, whose sequence is fixed across versions for ``shuffle``).
    """
    n_valid, n_test = split_sizes(len(lines), valid, test, what)
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    pick = lambda indices: [lines[i] for i in indices]  # noqa: E731
    return pick(order[n_valid + n_test :]), pick(order[:n_valid]), pick(order[n_valid : n_valid + n_test])


def fingerprint(lines: Sequence[str]) -> str:
    """A short hash of a list of lines, recorded in runs so a changed data file is noticed."""
    digest = hashlib.sha1()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]
