"""Reading text files, with one-line errors that name the file (and the line) at fault, and a
deterministic split of one file's lines into train / valid / test when no split is given."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path


class DataError(ValueError):
    """A problem with the user's data: the message is one line naming the file (and line)."""


def read_lines(path: str | Path, keep_blank: bool = False) -> list[str]:
    """The lines of a UTF-8 text file, without line breaks; blank lines are dropped unless
    ``keep_blank`` (a trailing empty line after the last line break is always dropped).

    Errors (one line each): missing file, a directory, bytes that are not UTF-8 (with the line
    number), a file with no text.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a text file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark is not text
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: the file has no text")
    if not keep_blank:
        lines = [line for line in lines if line.strip()]
    if not lines:
        raise DataError(f"{path}: the file has no text")
    return lines


def split_lines(lines: Sequence[str], valid: float, test: float, seed: int) -> tuple[list[str], list[str], list[str]]:
    """Shuffle ``lines`` with ``seed`` and cut them into train / valid / test by the given fractions.

    Deterministic: the same lines, fractions and seed give the same split on any machine (it uses
    Python's own ``random.Random``, whose sequence is fixed across versions for ``shuffle``).
    """
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise DataError(f"split fractions must leave training data: valid={valid}, test={test}")
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    n_valid, n_test = round(len(lines) * valid), round(len(lines) * test)
    if (valid and not n_valid) or (test and not n_test) or len(lines) - n_valid - n_test < 1:
        raise DataError(f"{len(lines)} lines are too few to split into train/valid/test = {1 - valid - test:g}/{valid:g}/{test:g}")
    pick = lambda indices: [lines[i] for i in indices]  # noqa: E731
    return pick(order[n_valid + n_test :]), pick(order[:n_valid]), pick(order[n_valid : n_valid + n_test])


def fingerprint(lines: Sequence[str]) -> str:
    """A short hash of a list of lines, recorded in runs so a changed data file is noticed."""
    digest = hashlib.sha1()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]
