"""Texts for the verbs that read them: arguments, a file, or standard input."""

from __future__ import annotations

import sys


def texts_from(arguments: list[str], file: str | None) -> list[str]:
    from ..data.text import read_lines

    texts = [t for t in arguments if t != "-"]
    if file:
        texts += read_lines(file)
    if "-" in arguments or (not texts and not sys.stdin.isatty()):
        texts += [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("no text: give it as arguments, with --file FILE, or on standard input")
    return texts
