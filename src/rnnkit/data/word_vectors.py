"""Pre-trained word vectors (word2vec, GloVe, fastText) for the rows of an embedding matrix.

Formats, told apart by the file's bytes, whatever its name (word2vec writes text to ``vectors.bin``
with ``-binary 0``):

* **text** (GloVe, fastText ``.vec``, word2vec ``-binary 0``): one word per line, ``word v1 ... vD``
  separated by spaces (or tabs; a trailing space is allowed, as fastText writes it); the values are
  the last D fields, so a word may hold spaces (GloVe 840B has ". . ."), though not a field that is a
  number (that is a line with too many values); an optional first line
  ``N D`` (count and dimension), which GloVe leaves out. UTF-8, strictly; LF, CRLF or CR line ends.
* **word2vec binary** (``-binary 1``): the header line ``N D``, then per word its UTF-8 bytes, a
  space, D little-endian float32 values and (usually) a newline.

A file ending in ``.gz`` (any case) is read through gzip. The file is streamed: only the vectors of the words
the vocabulary holds are kept (a (V, D) matrix), never the file.

Lookup: a vocabulary word takes the vector of the same word in the file; a word the file lacks
takes the vector of a file word that ``fallback`` maps to it, or of the file word that is its own
``fallback`` form (by default lowercase: "Paris" in the file serves "paris" in a lowercased
vocabulary, and "paris" in a lowercase file such as GloVe 6B serves "Paris" in a vocabulary that
keeps case, as fastText and Flair users expect; the tagger passes its own normalisation, digits as
0). An exact match always wins over a fallback one, and among fallback matches the first in the
file (files are ordered most frequent first); a word twice in the file takes its first vector, as
gensim reads such files (GloVe 840B holds a few words twice).

Errors (one line, a ``DataError`` naming the file and the line): a line with fewer than D values
(every line is checked), a file none of whose words is in the vocabulary, a value that is not a finite number (checked in the
vectors kept: parsing millions of unused ones would be most of the reading time), a header that is not two whole numbers, bytes
that are not UTF-8, a binary file that ends inside a vector, a header whose count of words is not the file's.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from ..errors import UsageError
from ..metrics import percent
from . import textio
from .textio import DataError
from .vocab import SPECIALS


@dataclass
class WordVectors:
    """The vectors a file holds for a vocabulary: ``vectors`` (V, D) float32, zero where a word was
    not found; ``found`` (V,) bool; ``by_fallback`` how many rows came from the fallback lookup."""

    path: str
    dimension: int
    vectors: torch.Tensor  # (V, D)
    found: torch.Tensor  # (V,) bool
    by_fallback: int

    def record(self, specials: int = 0) -> dict:
        """What a run records (config.json's ``split``): the file, its dimension, the words found
        out of the vocabulary's ``len - specials`` real words, and their share."""
        words = int(self.found.numel()) - specials
        found = int(self.found[specials:].sum())
        share = found / words if words else 0.0
        return {"file": self.path, "dimension": self.dimension, "found": found, "words": words, "share": round(share, 4), "by_lowercase": self.by_fallback}

    def describe(self, specials: int = 0) -> str:
        """One line for stderr: ``word vectors FILE (D values): F of W words found (S %; L by lowercase)``."""
        r = self.record(specials)
        return f"word vectors {r['file']} ({r['dimension']} values): {r['found']:,} of {r['words']:,} words of the vocabulary found ({percent(r['share'], 1)}; {r['by_lowercase']:,} by lowercase)"


def _compressed(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


@contextlib.contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    """The file's bytes as a stream (through gzip for ``.gz``, ``.GZ``); a missing or unreadable file
    is textio's one-line ``DataError``."""
    with textio.open_bytes(path) as raw:
        if not _compressed(path):
            yield raw
            return
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped
        except gzip.BadGzipFile as error:  # an OSError that names no file
            if raw.tell() <= 10:  # the header: a plain file named .gz (a browser unpacks downloads)
                raise DataError(f"{path}: not gzip-compressed, though its name ends in .gz; rename it without .gz") from None
            raise DataError(f"{path}: damaged gzip data ({error})") from None
        except (EOFError, zlib.error) as error:
            reason = "it ends early: an unfinished download?" if isinstance(error, EOFError) else f"damaged gzip data ({error})"
            raise DataError(f"{path}: {reason}") from None


def _lines(path: Path) -> Iterator[str]:
    """The lines of a text file, streamed by textio's rules (strict UTF-8, BOMs, any line end), a
    ``.gz`` file's as its decompressed text's."""
    if not _compressed(path):
        yield from textio.iter_lines(path)
        return
    with _open(path) as handle:
        yield from textio.stream_lines(handle, str(path))


def _is_binary(path: Path) -> bool:
    """word2vec binary, told by the bytes whatever the name (word2vec itself writes text to
    ``vectors.bin`` with ``-binary 0``): a header line ``N D``, then an entry that is not a text line
    ``word v1 ... vD``. A file without that header is text: every binary file has one."""
    with _open(path) as handle:
        head = handle.read(1 << 16)
    if head[:4] == FASTTEXT_MODEL_MAGIC:  # cc.en.300.bin: a whole model (subword buckets, its own header), read as bytes it was "not UTF-8 text"
        raise DataError(f"{path}: a fastText model (.bin), not a word-vector file; give the vectors as text: the .vec file published beside it "
                        "(cc.en.300.vec.gz), or `fasttext print-word-vectors MODEL.bin < words.txt`")
    first, _, body = head.partition(b"\n")
    header = _header(first.decode("latin-1"), path)
    if header is None or not body:
        return False
    # a binary entry is its word, a space and 4 D bytes of float32, which are not text: control
    # bytes, or not UTF-8. Read by fields instead ("too few values for the header"), a text file
    # whose header lies about the dimension was taken for binary and read as bytes, silently
    _, _, rest = body.lstrip(b"\n").partition(b" ")
    try:
        values = rest[: 4 * header[1]].decode("utf-8")
    except UnicodeDecodeError:
        return True
    return any(c < " " and c not in "\t\r\n" for c in values)


FASTTEXT_MODEL_MAGIC = (793712314).to_bytes(4, "little")  # the int32 a fastText .bin model starts with (fastText's FASTTEXT_FILEFORMAT_MAGIC_INT32)
MAX_DIMENSION = 1 << 20  # far past any published vectors (300 to a few thousand): a larger header is no header of vectors
FLOAT32_MAX = torch.finfo(torch.float32).max  # the largest finite float32: the vectors are kept in float32
VALUE_SEPARATOR = re.compile(r"[ \t]+")  # spaces, as the formats write them, or tabs, as some tools do


NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE | re.ASCII)  # as the tools write them


def _is_number(field: str) -> bool:
    """A number as C's strtof reads it, which the tools write: ASCII digits, no "1_0" (10.0 to Python's
    float) and no "١" (an Arabic-Indic digit, 1.0 to it)."""
    return NUMBER.fullmatch(field) is not None


def _header(line: str, path: Path) -> tuple[int, int] | None:
    """The ``COUNT DIMENSION`` of a first line made of two whole numbers (ASCII digits: "²" is a
    digit to ``str.isdigit`` but no number), else None. Raises DataError for a dimension outside
    1..MAX_DIMENSION."""
    parts = line.split()
    if len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts):
        count, dimension = int(parts[0]), int(parts[1])
        if not 1 <= dimension <= MAX_DIMENSION:
            raise DataError(f"{path}:1: the header 'COUNT DIMENSION' gives a dimension of {dimension}; vectors have 1 to {MAX_DIMENSION:,} values")
        return count, dimension
    return None


def _decode(raw: bytes, path: Path, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}:{number}: bytes that are not UTF-8 at byte {error.start + 1}") from None


def _floats(values: Sequence[str], path: Path, number: int) -> list[float]:
    out = []
    for value in values:
        if not _is_number(value):
            raise DataError(f"{path}:{number}: {value[:20]!r} is not a number")
        out.append(float(value))
    if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in out):  # stored as float32: 1e39 would become inf
        raise DataError(f"{path}:{number}: a value is not finite (nan or inf) or beyond float32's range (±3.4e38)")
    return out


def _text_entries(path: Path) -> Iterator[tuple[str, int, Callable[[], list[float]], int]]:
    """(word, line number, its values when asked, dimension) per line of a text file. Every line's
    count of values is checked; the values are parsed (and checked) only for the words kept, since
    parsing the floats of millions of unused lines is most of a large file's reading time."""
    dimension = None
    announced = None  # the header's count of words, checked at the end: a wrong one means a cut or joined file
    entries = 0
    for number, line in enumerate(_lines(path), start=1):
        line = line.strip(" \t")
        header = _header(line, path) if number == 1 else None
        if header is not None:
            announced, dimension = header
            continue
        if not line:
            continue
        entries += 1
        parts = VALUE_SEPARATOR.split(line)
        if dimension is None:  # no header: the values are the first line's trailing numbers (its word may hold spaces)
            numbers = next((i for i, field in enumerate(reversed(parts)) if not _is_number(field)), len(parts))
            words = parts[: len(parts) - numbers]
            clean = numbers >= 1 and words and not any(map(_is_number, words))  # words, then numbers: else one word and D values
            dimension = numbers if clean else len(parts) - 1
            if dimension < 1:
                raise DataError(f"{path}:{number}: expected 'word v1 ... vD', found one field")
        if len(parts) < dimension + 1 or (len(parts) > dimension + 1 and all(map(_is_number, parts[1:-dimension]))):
            raise DataError(f"{path}:{number}: expected a word and {dimension} values, found {len(parts) - 1} values")
        word = " ".join(parts[:-dimension])  # GloVe 840B's words may hold spaces (". . ."): the values are the last D fields
        yield word, number, (lambda parts=parts, number=number: _floats(parts[-dimension:], path, number)), dimension
    if announced is not None and entries != announced:
        raise DataError(f"{path}: holds {entries:,} words, but its header announces {announced:,}; "
                        f"is the file cut short or joined to another? (a right header is 'COUNT DIMENSION')")


def _binary_entries(path: Path) -> Iterator[tuple[str, int, Callable[[], list[float]], int]]:
    """(word, entry number, its values when asked, dimension) per entry of a word2vec binary file."""
    import numpy as np

    with _open(path) as handle:
        header = _header(_decode(handle.readline(), path, 1), path)
        if header is None:
            raise DataError(f"{path}:1: a word2vec binary file starts with 'COUNT DIMENSION'")
        count, dimension = header
        size = 4 * dimension
        for number in range(2, count + 2):
            word = bytearray()
            while True:
                byte = handle.read(1)
                if not byte:
                    raise DataError(f"{path}: ends after {number - 2} of the {count} words its header announces")
                if byte == b" ":
                    break
                if byte != b"\n" or word:  # the newline after the previous vector
                    word += byte
            raw = handle.read(size)
            if len(raw) != size:
                raise DataError(f"{path}: ends inside the vector of word {number - 1} of {count}")
            values = np.frombuffer(raw, dtype="<f4")
            if not np.isfinite(values).all():
                raise DataError(f"{path}: the vector of word {number - 1} ({bytes(word)[:20]!r}) is not finite")
            yield _decode(bytes(word), path, number), number, values.tolist, dimension
        if handle.read(1024).strip():  # past the announced words only a last newline may follow
            raise DataError(f"{path}: more entries follow the {count:,} words its header announces; is its header's count wrong?")


def read_word_vectors(path: str | Path, vocabulary: Sequence[str], *, fallback: Callable[[str], str] = str.lower,
                      dimension: int | None = None) -> WordVectors:
    """The vectors of ``path`` for the words of ``vocabulary`` (a list of tokens, row i for token i).

    ``fallback``: how a file word may map to a vocabulary word it does not equal (see the module
    docstring). ``dimension``: if given, a file of another dimension is refused with one line
    (``DataError``); else the file's own is used. The vocabulary's ``<PAD>``, ``<UNK>`` and ``<EOS>``
    are never looked up.

    Example::

        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile("w", suffix=".vec", delete=False) as f:
        ...     _ = f.write("2 3\\nParis 1 2 3\\nthe 0.5 0 0\\n")
        >>> wv = read_word_vectors(f.name, ["<PAD>", "<UNK>", "<EOS>", "the", "paris", "cat"])
        >>> wv.vectors[4].tolist(), wv.found.tolist()[3:], wv.by_fallback
        ([1.0, 2.0, 3.0], [True, True, False], 1)
        >>> os.remove(f.name)
    """
    path = Path(path)
    entries = _binary_entries(path) if _is_binary(path) else _text_entries(path)
    return _match(str(path), entries, vocabulary, fallback, dimension)


def vectors_from_table(name: str, tokens: Sequence[str], matrix: torch.Tensor, vocabulary: Sequence[str], *,
                       fallback: Callable[[str], str] = str.lower) -> WordVectors:
    """The rows of ``matrix`` (N, D), row i the vector of ``tokens[i]`` (another model's embedding and
    vocabulary), for the words of ``vocabulary``, matched as ``read_word_vectors`` matches a file's
    words; ``name`` says where they come from in messages and records."""
    entries = ((token, i, matrix[i].tolist, matrix.shape[1]) for i, token in enumerate(tokens) if token not in SPECIALS)
    return _match(name, entries, vocabulary, fallback, None)


def _match(path: str, entries, vocabulary: Sequence[str], fallback: Callable[[str], str], dimension: int | None) -> WordVectors:
    """The vectors of ``entries`` ((word, number, values, dimension) each) for ``vocabulary``: an exact
    match first, else the first entry whose ``fallback`` is the word."""
    rows = {token: i for i, token in enumerate(vocabulary) if token not in SPECIALS}
    # the vocabulary's words by their fallback form too: a case-keeping vocabulary's "Paris" takes
    # the "paris" of a lowercase file (GloVe 6B), as a lowercase vocabulary's "paris" takes "Paris"
    folded: dict[str, list[int]] = {}
    for token, i in rows.items():
        if (form := fallback(token)) != token:
            folded.setdefault(form, []).append(i)
    vectors: torch.Tensor | None = None
    exact: set[int] = set()
    by_fallback: set[int] = set()
    file_dimension = None
    for word, _, values, file_dimension in entries:
        if vectors is None:
            if dimension is not None and file_dimension != dimension:
                raise DataError(f"{path}: vectors of {file_dimension} values, but the embedding has {dimension}; "
                                f"leave the embedding size unset to take the file's, or give {file_dimension}")
            vectors = torch.zeros(len(vocabulary), file_dimension)  # (V, D)
        vector = None
        row = rows.get(word)
        if row is not None and row not in exact:
            vectors[row] = vector = torch.tensor(values())
            exact.add(row)
            by_fallback.discard(row)
        for row in (rows.get(fallback(word)), *folded.get(word, ())):
            if row is not None and row not in exact and row not in by_fallback:
                vectors[row] = vector = torch.tensor(values()) if vector is None else vector
                by_fallback.add(row)
    if vectors is None:
        raise DataError(f"{path}: no word vectors in the file")
    if rows and not exact and not by_fallback:  # nothing to start from: the wrong file, or misread
        raise DataError(f"{path}: none of the vocabulary's {len(rows):,} words is in it (nor by its fallback lookup); "
                        f"is it for another language or tokenization?")
    found = torch.zeros(len(vocabulary), dtype=torch.bool)
    found[list(exact | by_fallback)] = True
    return WordVectors(path, file_dimension, vectors, found, len(by_fallback))


def sized_from(vectors: WordVectors | None, values: dict, key: str) -> dict:
    """A task's model settings ``values`` with the embedding size ``key`` set to the vectors' dimension
    (the choice documented for ``--word-vectors``: the file sets the size), or a one-line
    ``UsageError`` when the user asked for another size."""
    if vectors is None:
        return values
    given = values.get(key)
    if given is not None and given != vectors.dimension:
        option = "--" + key.replace("_", "-")
        raise UsageError(f"{option} {given}: the word vectors of {vectors.path} have {vectors.dimension} values; give {vectors.dimension} or leave {option} unset")
    return {**values, key: vectors.dimension}


def initialise_rows(weight: torch.Tensor, vectors: WordVectors) -> None:
    """Copy the vectors found into the rows of ``weight`` (V, D), an embedding matrix; the other rows
    keep their random initialisation. Raises ``ValueError`` on a shape mismatch (a bug: the task
    sized the embedding from the file)."""
    if tuple(weight.shape) != tuple(vectors.vectors.shape):
        raise ValueError(f"embedding {tuple(weight.shape)} but word vectors {tuple(vectors.vectors.shape)}")
    with torch.no_grad():
        weight[vectors.found] = vectors.vectors[vectors.found].to(weight.dtype)
