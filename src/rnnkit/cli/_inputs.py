"""What the inference verbs share: the texts they read (arguments, ``--file``, standard input, all
through ``rnnkit.data.textio`` with one set of rules), one output per input line, runs of the
right kind, and the one-line notes about text a vocabulary does not hold.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from ..errors import DataError, UsageError

# the longest input line a verb reads: as many as training's longest sequence (rnnkit.data.batches.
# MAX_SEQUENCE_STEPS) of one-character tokens; a line of 200,000 characters took 1.9 GB to score.
# The verbs that read text with a run (``texts_and_run``) count a longer line's steps with the
# run's own tokenizer instead, as training did (``check_typed_lengths``): a word-level text of
# 150,000 characters is 30,000 steps, which trained and evaluated; they refuse only lines past
# TYPED_LINE_CHARACTERS unread (a file without its line breaks)
MAX_LINE_CHARACTERS = 100_000
TYPED_LINE_CHARACTERS = 20 * MAX_LINE_CHARACTERS

# the run kinds (config["task"]) by the words the messages use for them
KIND_NAMES = {"lm": "language-model (lm)", "tagger": "tagger", "classifier": "classifier", "seq2seq": "seq2seq", "music": "music"}


def texts_from(arguments: Sequence[str], file: str | None, max_characters: int = MAX_LINE_CHARACTERS, per_line: bool = True) -> list[str]:
    """Every input line, in order: each argument (an argument holding line breaks is several
    lines; ``"-"`` is standard input at that place), then the lines of ``--file``; with neither,
    standard input when it is not a terminal.

    Files, standard input and arguments follow the same rules (``textio``): UTF-8, a leading BOM
    dropped, LF, CRLF and lone CR all line breaks, and every line kept, empty ones included, so
    that output ``i`` belongs to input line ``i``. Raises ``DataError`` (a file that cannot be
    read, bytes that are not UTF-8, or a line longer than ``max_characters``, with file:line) or
    ``UsageError`` when no text is given at all. ``per_line``: the verb answers each line on its
    own (tag, classify ...), so an argument of several lines is said; the experiments read the
    lines as one text and say nothing.
    """
    from ..data.textio import STDIN, read_lines, split_lines, typed_argument

    texts: list[str] = []
    for number, argument in enumerate(arguments, start=1):
        if argument == STDIN:
            texts += _not_too_long(read_lines(STDIN), "<stdin>", max_characters)
        else:  # "" is one empty line, as an empty line of a file is
            lines = _not_too_long(split_lines(typed_argument(argument, f"argument {number}")) or [""], f"argument {number}", max_characters)
            if per_line and len(lines) > 1:  # said: the outputs then outnumber the arguments (translate's do not show their input)
                print(f"rnnkit: note: argument {number} holds {len(lines)} lines (a line break inside it), read as {len(lines)} inputs, "
                      "each answered on its own line", file=sys.stderr, flush=True)  # fmt: skip
            texts += lines
    if file:
        texts += _not_too_long(read_lines(file), file, max_characters)
        if not texts:  # as empty standard input is: an empty file (or one holding only a BOM) is no text
            raise UsageError(f"no text: {file} is empty; give text as arguments, with --file FILE, or on standard input")
    if not arguments and not file and sys.stdin is not None and not sys.stdin.isatty():
        texts += _not_too_long(read_lines(STDIN), "<stdin>", max_characters)
        if not texts:
            raise UsageError("no text: standard input was empty; give text as arguments, with --file FILE, or on standard input")
    elif not arguments and not file:
        raise UsageError("no text: give it as arguments, with --file FILE, or on standard input")
    if not texts:  # only "-", and standard input empty: as with no argument at all
        raise UsageError("no text: standard input (-) was empty; give text as arguments, with --file FILE, or on standard input")
    return texts


def _not_too_long(lines: list[str], name: str, max_characters: int) -> list[str]:
    """``lines``, or a ``DataError`` naming ``name``:LINE for one over ``max_characters``: read as
    one sequence, such a line needs gigabytes (a file without its line breaks?)."""
    for number, line in enumerate(lines, start=1):
        if len(line) > max_characters:
            raise DataError(f"{name}:{number}: a line of {len(line):,} characters, more than {max_characters:,}: "
                            f"each line is read as one sequence; break the text into lines")
    return lines


def check_typed_lengths(texts: Sequence[str], task, arguments: Sequence[str] = (), file: str | None = None) -> None:
    """A ``DataError`` for the first input line longer than the run's longest sequence
    (``task.max_sequence_steps``: training's, or a translation's shorter one) in the steps the run reads it as (``task.typed_steps``: tokens cut as
    its training text was); only lines of more than a third as many characters are cut to count
    them. The line is named FILE:LINE when the texts are one file's (``--file``, or stdin alone)."""
    limit = task.max_sequence_steps
    source = file if file and not arguments else "<stdin>" if not file and not arguments else None
    for number, text in enumerate(texts, start=1):
        # a line of a third as many characters may still be too long: read in composed form and
        # lowercased, a character may become up to three ("\u0958" is two in NFC, "İ" two lowercased)
        if len(text) > limit // 3 and (steps := task.typed_steps(text)) > limit:
            where = f"{source}:{number}" if source else f"input line {number}"
            raise DataError(f"{where}: {steps:,} tokens, more than {limit:,} (the longest sequence "
                            f"this run reads as one): each line is read as one sequence; break the text into lines")


def is_blank(text: str) -> bool:
    """A line with nothing to read: white space and characters that show nothing alone (a
    zero-width space, a joiner; ``tokenizers.is_blank_text``). Its output is an empty line at the
    same place."""
    from ..data.tokenizers import is_blank_text

    return is_blank_text(text)


def per_line(texts: Sequence[str], process: Callable[[list[str]], list]) -> list:
    """``process`` (a batch function) on the non-blank texts; ``None`` where a text is blank, so
    the results line up with the input lines."""
    kept = [t for t in texts if not is_blank(t)]
    results = iter(process(kept) if kept else [])
    return [None if is_blank(t) else next(results) for t in texts]


def open_run_for(user: str, path: str, kinds: Sequence[str], weights: str = "best", device: str = "auto"):
    """``open_run`` for a verb (or an option: ``user`` is "rnnkit sample", "--ensemble") that takes
    runs of ``kinds`` only: a run of another kind is a ``UsageError`` naming the kinds it takes,
    found from config.json before any weights load (``check_run_for``)."""
    from ..runs import open_run

    check_run_for(user, path, kinds)
    return open_run(path, weights, device)


def check_run_for(user: str, path: str, kinds: Sequence[str]) -> None:
    """``path`` is a run directory whose config.json names one of ``kinds``, else one line: what a
    verb checks before it reads standard input, so that a mistyped run is said at once, not after
    the user has typed all their text (or, with empty input, never)."""
    import json
    from pathlib import Path

    from ..data.textio import DataError
    from ..files import RunDir

    run = RunDir(path)
    if not Path(path).is_dir():
        raise UsageError(f"{path}: {'not a run directory (a file)' if Path(path).exists() else 'no such run directory'}")
    try:
        config = run.read_json("config.json")
    except json.JSONDecodeError as error:
        raise DataError(f"{run.file('config.json')}: not valid JSON ({error.msg}, line {error.lineno}); is {path} a complete rnnkit run?") from None
    kind = config.get("task") if isinstance(config, dict) else None
    if kind not in kinds:
        what = f"a {KIND_NAMES.get(kind, kind)} run" if isinstance(kind, str) else "not a run rnnkit knows (config.json names no task)"
        wanted = " or ".join(KIND_NAMES.get(k, k) for k in kinds)
        raise UsageError(f"{path}: {what}; {user} takes a {wanted} run")


def unknown_tokens(tokens: Sequence[str], vocabulary, tokenizer=None, text: str = "") -> list[str]:
    """The distinct tokens the vocabulary does not hold, in their first order (a typed ``<unk>``
    means <UNK> and is not flagged), then the characters of ``text`` that ``tokenizer`` itself cut
    to ``<UNK>`` (a BPE model's: its token says nothing of what was typed)."""
    from ..data.vocab import UNK_ALIASES

    unseen = (tokenizer.unseen_characters(text) if tokenizer is not None and "<UNK>" in tokens else [])
    return list(dict.fromkeys([*(t for t in tokens if t not in vocabulary.ids and t not in UNK_ALIASES), *unseen]))


LONGEST_SHOWN = 40  # characters of one token in a note


def describe_tokens(tokens: Sequence[str]) -> str:
    """``'é' (U+00E9), 'Ω' (U+03A9)``: single characters with their code points (an unseen
    character may look like a seen one, or not show at all), longer tokens quoted, and a token of
    more than ``LONGEST_SHOWN`` characters cut there (its length said) so that the note stays a line."""
    def shown(t: str) -> str:
        if len(t) == 1:
            return f"{t!r} (U+{ord(t):04X})"
        return repr(t) if len(t) <= LONGEST_SHOWN else f"{t[:LONGEST_SHOWN]!r}... ({len(t):,} characters)"

    return ", ".join(shown(t) for t in tokens)


def warn_unseen(verb: str, what: str, tokens, most: int = 20) -> None:
    """One note naming the (first ``most``) tokens the vocabulary did not hold, if any."""
    tokens = list(tokens)
    if tokens:
        warn(verb, f"{what}: {describe_tokens(tokens[:most])}{' ...' if len(tokens) > most else ''}")


def warn(verb: str, message: str) -> None:
    print(f"rnnkit {verb}: note: {message}", file=sys.stderr)
