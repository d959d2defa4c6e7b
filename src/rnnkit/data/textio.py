"""The one text-input layer: every reader, every verb's text argument, ``--file`` and standard input
read text through these functions, so that all of them follow the same rules:

* ``"-"`` is standard input, read as bytes and decoded exactly like a file;
* UTF-8, strictly: bytes that are not UTF-8 are a ``DataError`` naming the file (``<stdin>``), the
  line and the column, never text replaced by ``\\ufffd`` or a ``UnicodeDecodeError``;
* a NUL character is a ``DataError`` too: no text file holds one, and a UTF-16 file of ASCII text
  (every other byte NUL) or a binary file would otherwise decode as "UTF-8" and train on garbage;
* a byte-order mark (U+FEFF, which Windows editors write) at the start of the text, or of any line
  (files joined with ``cat``, each with its own), is dropped: it is not text;
* a compressed file (gzip, bzip2, xz, zip) or UTF-16/32 text is refused naming what it is and how to
  convert it, not as "bytes that are not UTF-8";
* LF, CRLF and a lone CR (classic Mac OS, some spreadsheet exports) are all line breaks; nothing
  else is (unlike ``str.splitlines``, a U+2028 or a form feed inside a line stays in that line);
* a missing file, a directory or an unreadable file is a one-line ``DataError``.

``DataError`` is the one exception for bad user data: its message is already one line of the form
``FILE:LINE: what is wrong`` (or ``FILE: what is wrong``), ready to print after ``error:``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from typing import BinaryIO
from pathlib import Path

from ..errors import DataError  # defined with the other user errors; imported from here by the readers

BOM = "\ufeff"
STDIN = "-"
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the order matters: CRLF is one break, not two
_CHUNK = 1 << 20  # bytes per read when streaming


def source_name(source: str | os.PathLike) -> str:
    """How messages name a source: the path as given, or ``<stdin>`` for ``"-"``."""
    return "<stdin>" if str(source) == STDIN else str(source)


def _read_bytes(source: str | os.PathLike) -> bytes:
    if str(source) == STDIN:
        stream = sys.stdin
        if stream is None:
            raise DataError("<stdin>: no standard input")
        buffer = getattr(stream, "buffer", None)
        if buffer is None:  # a text stream without bytes beneath (tests, notebooks): already decoded
            return stream.read().encode("utf-8", "surrogatepass")
        return buffer.read()
    try:
        return Path(source).read_bytes()
    except (OSError, ValueError) as error:
        raise unreadable(source, error) from None


def open_bytes(path: str | os.PathLike) -> BinaryIO:
    """The file ``path`` opened for reading bytes, or the one-line ``DataError`` of ``unreadable``."""
    try:
        return Path(path).open("rb")
    except (OSError, ValueError) as error:
        raise unreadable(path, error) from None


# what the system's refusals mean for a file the user named; any other OSError (a FIFO gone away, a
# name too long, an I/O error of the disk) is "cannot be read (its reason)"
REFUSALS = ((FileNotFoundError, "no such file"), (IsADirectoryError, "is a directory, expected a text file"),
            (PermissionError, "permission denied"))  # fmt: skip


def file_identity(path: str | os.PathLike):
    """What tells one file from another however it is named: (device, inode) of a regular file, so
    that ``a.txt``, ``./a.txt``, a symbolic link and a hard link to it are one; else (standard input,
    a FIFO, a missing file) its resolved path."""
    real = os.path.realpath(path)
    try:
        if os.path.isfile(real):
            info = os.stat(real)
            return (info.st_dev, info.st_ino)
    except OSError:
        pass
    return real


def say_held_out_in_training(held_out: list[tuple[str, str]], training: list[str]) -> None:
    """A note for each held-out file (``held_out``: (option, path), "--valid") that is one of the
    ``training`` files, however named (``file_identity``): allowed (a smoke test), but its scores
    measure what the model trains on."""
    files = {file_identity(path) for path in training if path != STDIN}
    folders = [Path(path).resolve() for path in training if path != STDIN and Path(path).is_dir()]  # MIDI folders, read with their subfolders
    for option, path in held_out:
        if path == STDIN:
            continue
        if file_identity(path) in files:
            print(f"rnnkit: note: {option} {path} is also a training file: its scores measure text the model trains on", file=sys.stderr, flush=True)
        elif (folder := next((f for f in folders if Path(path).resolve().is_relative_to(f)), None)) is not None:
            print(f"rnnkit: note: {option} {path} is inside the training folder {folder}: its files are training files too, "
                  "and its scores measure what the model trains on", file=sys.stderr, flush=True)  # fmt: skip
        elif Path(path).is_dir() and (inner := next((f for f in folders if f.is_relative_to(Path(path).resolve())), None)) is not None:
            print(f"rnnkit: note: {option} {path} holds the training folder {inner}: its pieces are scored on what the model trains on",
                  file=sys.stderr, flush=True)  # fmt: skip


def unreadable(path: str | os.PathLike, error: OSError | ValueError) -> DataError:
    """The one-line error for a file the system would not open or read: ``FILE: no such file``;
    ValueError: a name no system takes (a NUL character or a lone surrogate, from a config file)."""
    if not str(path):  # Path("") is the working folder: "": is a directory
        return DataError("a file name is empty (an unset shell variable?)")
    if isinstance(error, ValueError):  # UnicodeEncodeError is one too
        return DataError(f"{ascii(str(path))}: not a usable file name (a NUL character or characters that are not text)")
    reason = next((text for kind, text in REFUSALS if isinstance(error, kind)), None)
    return DataError(f"{path}: {reason or f'cannot be read ({error.strerror or type(error).__name__})'}")


# what a file that is not UTF-8 text often is, told by its first bytes, and how to make it text;
# checked only once decoding has failed (so a text that happens to start "BZh" is never refused)
# (the last column: the program that makes standard input text, as a pipe)
# (decompressed to standard output: `gunzip -k` refuses a name without its .gz, "unknown suffix -- ignored")
NOT_TEXT = ((b"\x1f\x8b", "a gzip-compressed file", "decompress it first: gunzip -c {name} > {plain}", "gunzip -c"),
            (b"BZh", "a bzip2-compressed file", "decompress it first: bunzip2 -c {name} > {plain}", "bunzip2 -c"),
            (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it first: unxz -c {name} > {plain}", "unxz -c"),
            (b"PK\x03\x04", "a zip archive", "unzip it first: unzip {name}", "unzip -p"),
            (b"\xff\xfe\x00\x00", "UTF-32 (it starts with UTF-32's byte-order mark)", "convert it: iconv -f UTF-32 -t UTF-8 {name} > {stem}-utf8.txt", "iconv -f UTF-32 -t UTF-8"),
            (b"\xff\xfe", "UTF-16 (it starts with UTF-16's byte-order mark)", "convert it: iconv -f UTF-16 -t UTF-8 {name} > {stem}-utf8.txt", "iconv -f UTF-16 -t UTF-8"),
            (b"\xfe\xff", "UTF-16 (it starts with UTF-16's byte-order mark)", "convert it: iconv -f UTF-16 -t UTF-8 {name} > {stem}-utf8.txt", "iconv -f UTF-16 -t UTF-8"))  # fmt: skip


def not_text(name: str, data: bytes) -> DataError | None:
    """The one-line error for a file whose first bytes say it is compressed or UTF-16/32, or None."""
    for magic, what, fix, pipe in NOT_TEXT:
        if data.startswith(magic):
            if name == source_name(STDIN):  # no file name to put in a command: "<stdin>" would be a redirection
                return DataError(f"{name}: {what}, not UTF-8 text; pipe it through {pipe} first")
            return DataError(f"{name}: {what}, not UTF-8 text; {fix.format(name=name, stem=Path(name).stem, plain=plain_name(name))}")
    return None


def plain_name(name: str) -> str:
    """Where a compressed file's text goes: its name without the compression's suffix (``train.tsv.gz``
    -> ``train.tsv``), or with ``.txt`` added, never its own name, which the shell's ``>`` would empty before it is read."""
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in COMPRESSED_SUFFIXES else f"{name}.txt"


COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")


def without_boms(text: str) -> str:
    """``text`` without the byte-order marks that start it or any of its lines."""
    text = text.removeprefix(BOM)
    if BOM in text:
        text = text.replace("\n" + BOM, "\n").replace("\r" + BOM, "\r")
    return text


def not_utf8(name: str, data: bytes, error: UnicodeDecodeError, lines_before: int = 0) -> DataError:
    """The error for the first undecodable byte of ``data`` (a file's bytes, or a piece of them
    that ``lines_before`` lines precede): its line (all three line breaks count) and its column
    (characters, from 1, in that line)."""
    before = data[: error.start].decode("utf-8")  # valid up to there, by definition of error.start
    lines = LINE_BREAK.split(before.removeprefix(BOM))
    byte = data[error.start]
    # 0x80-0x9f are control codes in Latin-1, never its text: Windows-1252's quotes, dashes and "…", which
    # the usual advice (iconv -f latin1, docs/input_formats.md) would keep as invisible control characters
    windows = "; Windows-1252 text? convert it: iconv -f cp1252 -t utf-8" if 0x80 <= byte <= 0x9F else ""
    return DataError(f"{name}:{lines_before + len(lines)}: not UTF-8 text (byte 0x{byte:02x} at column {len(lines[-1]) + 1}){windows}")


def nul_error(name: str, text: str, lines_before: int = 0) -> DataError:
    """The error for the first NUL character of ``text`` (a file's text, or a piece of it that
    ``lines_before`` lines precede): its line (all three line breaks count) and column, and what such
    a file usually is."""
    lines = LINE_BREAK.split(text[: text.index("\x00")])
    return DataError(f"{name}:{lines_before + len(lines)}: a NUL character at column {len(lines[-1]) + 1}: a UTF-16 or binary file? rnnkit reads UTF-8 text")


def decode(data: bytes, name: str = "<bytes>") -> str:
    """Bytes to text by the rules above (strict UTF-8, no NUL, BOMs at line starts dropped); ``name`` is for errors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise (not_text(name, data) or not_utf8(name, data, error)) from None
    text = without_boms(text)
    if "\x00" in text:
        raise not_text(name, data) or nul_error(name, text)
    return text


def read_text(source: str | os.PathLike) -> str:
    """The text of a file, or of standard input for ``"-"``; line breaks are left as they are.

    Raises ``DataError`` (one line): no such file, a directory, unreadable, or
    ``FILE:LINE: not UTF-8 text (byte 0x.. at column C)``.
    """
    return decode(_read_bytes(source), source_name(source))


def no_key_twice(pairs: list) -> dict:
    """``json.loads``' ``object_pairs_hook`` for files users write: an object that names a key twice
    is a ``ValueError`` (``json`` keeps the last one silently, as TOML does not)."""
    keys = [key for key, _ in pairs]
    twice = next((key for key in keys if keys.count(key) > 1), None)
    if twice is not None:
        raise ValueError(f"the key {twice!r} is given twice")
    return dict(pairs)


def typed_argument(text: str, name: str) -> str:
    """Text given on the command line (``name``: "argument 2", "--prime"), read by the rules of
    files: bytes that are not UTF-8 (which Python hands over as the surrogates U+DC80-U+DCFF) are
    the ``DataError`` a file's would be, and a leading BOM (a pasted file's) is dropped."""
    escaped = next((i for i, c in enumerate(text) if "\udc80" <= c <= "\udcff"), None)
    if escaped is not None:
        lines = LINE_BREAK.split(text[:escaped])
        where = f":{len(lines)}" if len(lines) > 1 else ""
        raise DataError(f"{name}{where}: not UTF-8 text (byte 0x{ord(text[escaped]) - 0xDC00:02x} at column {len(lines[-1]) + 1})")
    return text.removeprefix(BOM)


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` split at LF, CRLF and lone CR; a final line break does not add an empty
    line; empty lines inside are kept as ``""``, so that line ``i`` of the result is line ``i + 1``
    of the file (what ``file:line`` errors and line-aligned files need)."""
    if not text:
        return []
    lines = LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()  # the text ended with a line break
    return lines


STRAY_CR = re.compile(r"\r(?!\n)")  # a CR that is not CRLF's first half


def refuse_stray_carriage_return(text: str, name: str) -> None:
    """A ``DataError`` naming the line when ``text``, whose lines end in LF or CRLF, holds a lone CR.
    rnnkit reads a lone CR as a line break (as a file saved with CR line ends needs), but the tools
    that make and count line-aligned files (``wc -l``, Moses, fairseq, OpenNMT) read it inside a
    line: one such line in one of two parallel files would shift every pair after it, silently."""
    stray = STRAY_CR.search(text) if "\n" in text else None
    if stray is not None:
        line = len(LINE_BREAK.split(text[: stray.start()]))
        raise DataError(f"{name}:{line}: a carriage return (\\r) inside the line, in a file whose lines end in LF; "
                        "line-aligned files are counted by their LF (as wc -l counts them): remove it (tr -d '\\r')")  # fmt: skip


def refuse_doubled_line_ends(text: str, name: str) -> None:
    """A ``DataError`` when a line of ``text`` ends in CR CR LF: line ends converted to Windows'
    twice (Python's csv module writes them on Windows, to a file opened without ``newline=''``), in
    the whole file or in a part of it (files joined with cat). Read by the rules above (a lone CR,
    then CRLF), a blank line follows every such line: in a file whose blank lines part its
    sentences, every token would be a sentence of its own, silently."""
    at = text.find("\r\r\n")
    if at < 0:
        return
    every = text.count("\r\r\n") == text.count("\n")
    line = len(split_lines(text[:at] + "x"))  # the line the first one ends
    more = text.count("\r\r\n") - 1
    where = f"{name}: its lines end" if every else f"{name}:{line}: this line {f'and {more:,} more end' if more else 'ends'}"
    raise DataError(f"{where} in CR CR LF (line ends converted twice), so a blank line would follow each of them "
                    f"and each token be a sentence of its own; convert it: tr -s '\\r' < {name} > fixed-{Path(name).name}")  # fmt: skip


def read_lines(source: str | os.PathLike) -> list[str]:
    """``split_lines(read_text(source))``: every line, empty ones included; ``[]`` for an empty file."""
    return split_lines(read_text(source))


def iter_lines(source: str | os.PathLike) -> Iterator[str]:
    """The lines of ``read_lines`` one at a time, reading a file in 1 MiB pieces (for big files).

    Standard input is read whole (a pipe cannot be read twice, and its errors must name a line).
    A decoding error is reported exactly as ``read_text`` reports it (``stream_lines``), so the two
    never disagree.
    """
    if str(source) == STDIN:
        yield from read_lines(source)
        return
    path = Path(source)
    with open_bytes(path) as handle:
        yield from stream_lines(handle, str(path))


def stream_lines(handle: BinaryIO, name: str) -> Iterator[str]:
    """The lines of the bytes ``handle`` reads (a file, a gzip stream), by ``iter_lines``'s rules, in
    pieces of whole lines of about 1 MiB. A fault (bytes not UTF-8, a NUL) is the one-line
    ``DataError`` ``read_text`` would raise, naming its line and column, found from the piece that
    holds it: memory holds one piece, however big the file, fault or not."""
    carry, lines_before = b"", 0
    while True:
        chunk = handle.read(_CHUNK)
        data = carry + chunk
        if chunk:
            # a cut after LF, or after a CR that is not the last byte read (it may be CRLF's first half),
            # ends a line: never inside a UTF-8 sequence or a CRLF
            cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1
            piece, carry = data[:cut], data[cut:]
            if not piece:  # no line break yet: a long line, read on
                continue
        else:
            piece, carry = data, b""
        try:
            text = piece.decode("utf-8")
        except UnicodeDecodeError as error:
            raise (lines_before == 0 and not_text(name, piece) or not_utf8(name, piece, error, lines_before)) from None
        if "\x00" in text:
            raise (lines_before == 0 and not_text(name, piece) or nul_error(name, without_boms(text), lines_before))
        lines = split_lines(text)
        lines_before += len(lines)
        yield from (line.removeprefix(BOM) for line in lines)
        if not chunk:
            return
