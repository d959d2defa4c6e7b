"""Prepared corpora: text files tokenized once into token ids on disk, then read back batch by batch,
so that a language model trains on a corpus larger than memory (a 10 MB file and a 10 GB one take
the same memory, beyond the vocabulary). The anchors: nanoGPT's ``prepare.py`` (ids as a uint16
``np.memmap``), fairseq's and Megatron's indexed datasets (a token array plus offsets).

A prepared corpus is a directory::

    meta.json         settings, the source files (path, size, mtime, a content sample), line and token counts, and the
                      SHA-256 of vocab.json and tokenizer.json (an edited one is refused when opened)
    vocab.json        the vocabulary (rnnkit.data.vocab: counted on the training lines)
    tokenizer.json    the tokenizer's config (a trained BPE model included)
    train.ids         token ids, one after another: raw little-endian uint16 (uint32 when the
                      vocabulary has more than 65,536 tokens): np.memmap(path, dtype) opens it
    train.offsets     int64, lines + 1 of them: line i is ids[offsets[i] : offsets[i + 1]]
    valid.* test.*    the same for the other splits
    seen.u64          sorted uint64 hashes of the training lines: the novelty check of samples

Each line ends in its terminator: ``<EOS>`` (``line_breaks="eos"``; blank lines dropped) or the
``\\n`` token (``line_breaks="token"``; blank lines kept), so a split's ids are exactly the stream
``LanguageModelTask.encode_stream`` makes of its lines, and ``offsets`` cut it into sentences.

How it is made, never holding more than a piece of text (4 MB) and its tokens:

1. Text is read in binary pieces cut after a line break (LF, CRLF and a lone CR are line breaks, as
   in ``rnnkit.data.textio``; a CR at the end of a piece waits for the next, which may start with
   its LF), decoded as strict UTF-8, line breaks written ``\\n``, a leading BOM dropped.
2. With only training files, the valid/test split is made by line index: after a first pass counts
   the N kept lines, line i goes to valid if π(i) < round(N·valid), to test if below that plus
   round(N·test), else to train, where π is a pseudo-random permutation of [0, N) keyed by the split
   seed (``permute``): exact split sizes without a list of N lines. The lines of each split keep
   their order in the file.
3. Tokenizing: characters as code points in bulk (``str.encode("utf-32-le")`` and numpy); words and
   white-space tokens with the tokenizer's own regular expression over a whole piece (worker
   processes on both cores for big files); BPE with the ``tokenizers`` library's batch encoding.
   Token keys (code points, word numbers, BPE ids) go to temporary files while the training
   split's keys are counted; the vocabulary is ranked from the counts by the rule of
   ``Vocabulary.from_counts``; a second pass maps keys to ids (numpy table lookup).

Corpora under ``CACHE_FROM_BYTES`` are built in a temporary directory that goes when the process
ends (rebuilding them takes a moment); bigger ones are cached under ``$RNNKIT_CACHE`` (default
``~/.cache/rnnkit``) ``/corpora/<name>-<key>``, the key a hash of the settings and the files' paths,
and reused while every source file keeps its size, modification time and a sample of its content
(``content_sample``; a changed file is prepared again). ``rnnkit prepare FILE --out DIR`` writes one anywhere; ``rnnkit train lm DIR``
trains from it without the source files.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR, S_ISREG

import numpy as np

from ..errors import UsageError
from ..files import atomic_write, exclusive_lock, first_absent_folder, process_alive, remove_parents_made, scratch_directory, usable_memory, user_cache_directory
from .text import CORPUS_SETTINGS, split_sizes
from .textio import BOM, DataError, not_text, not_utf8, nul_error, open_bytes, say_held_out_in_training, source_name, unreadable
from .tokenizers import Tokenizer, make_tokenizer, read_form, word_rule
from .vocab import Vocabulary

FORMAT = 1  # the layout version: a store of another version is prepared again
PIECE_BYTES = 4 << 20  # text read and tokenized at a time
BLOCK_TOKENS = 1 << 20  # token ids mapped and hashed at a time
CACHE_FROM_BYTES = 1 << 20  # smaller corpora: a temporary store (rebuilt in a moment); bigger: cached
POOL_FROM_BYTES = 32 << 20  # word-level text this big is tokenized by worker processes
SPLITS = ("train", "valid", "test")
TRAIN, VALID, TEST = 0, 1, 2
NEWLINE = "\n"
SETTINGS = CORPUS_SETTINGS


# -- hashing and permutations ----------------------------------------------------------------------------
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = 0x9E3779B97F4A7C15


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer, elementwise on uint64 (wrapping arithmetic): a bijection of 64-bit
    words whose output bits each depend on every input bit."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def derive_key(*parts: int) -> int:
    """A 64-bit key from small integers (a seed, an epoch, a purpose)."""
    key = 0
    for part in parts:
        key = int(mix64(np.uint64((key + _GOLDEN * (int(part) + 1)) % 2**64)))
    return key


def permute(indices: np.ndarray, n: int, key: int) -> np.ndarray:
    """π(indices) for a pseudo-random permutation π of [0, n) chosen by ``key``: a four-round
    Feistel network on the smallest even number of bits covering n, walked round its cycles until
    the value falls inside [0, n) (each value is < 4n, so on average fewer than four walks). The
    same (n, key) always gives the same π; any slice of it costs O(len(indices)) time and memory.
    Shapes: indices (K,) int, each in [0, n) -> (K,) int64."""
    half = max(1, (int(n - 1).bit_length() + 1) // 2)
    shift, mask = np.uint64(half), np.uint64((1 << half) - 1)
    round_keys = [np.uint64(derive_key(key, r)) for r in range(4)]

    def feistel(x: np.ndarray) -> np.ndarray:
        left, right = x >> shift, x & mask
        for k in round_keys:
            left, right = right, left ^ (mix64(right ^ k) & mask)
        return (left << shift) | right

    indices = np.asarray(indices)
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise IndexError(f"permute: indices outside [0, {n})")
    out = feistel(indices.astype(np.uint64))
    outside = np.flatnonzero(out >= np.uint64(n))
    while outside.size:  # cycle walking: a bijection of [0, 4^half) restricted to [0, n)
        out[outside] = feistel(out[outside])
        outside = outside[out[outside] >= np.uint64(n)]
    return out.astype(np.int64)


_SALT = np.uint64(0x5851F42D4C957F2D)


def _token_values(ids: np.ndarray, positions: np.ndarray, mixed: np.ndarray | None = None) -> np.ndarray:
    """A 64-bit value per (token id, position in its line), mix(id) · (2·position + 1) with
    ``mixed[id] = mix(id)`` precomputed: hashes of lines are sums of these."""
    mixed_ids = mixed[ids] if mixed is not None else mix64(ids.astype(np.uint64) ^ _SALT)
    with np.errstate(over="ignore"):
        return mixed_ids * (positions.astype(np.uint64) * np.uint64(2) + np.uint64(1))


def _finish(sums: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return mix64(sums ^ mix64(lengths.astype(np.uint64) + _SALT))


def sequence_hash(ids: Iterable[int]) -> int:
    """The 64-bit hash of one token-id sequence, as ``SeenLines`` stores the training lines' (their
    ids without the terminator): Σ_t mix(id_t, t), mixed again with the length. Two different
    lines collide with probability about 2^-64 (what a multilinear hash over pseudo-random
    values gives: a difference of two lines is a sum of products that is rarely 0 mod 2^64)."""
    ids = np.fromiter(ids, dtype=np.int64)
    values = _token_values(ids, np.arange(len(ids)))
    with np.errstate(over="ignore"):
        total = values.sum(dtype=np.uint64) if len(ids) else np.uint64(0)
    return int(_finish(np.array([total], dtype=np.uint64), np.array([len(ids)]))[0])


# -- files of token ids ------------------------------------------------------------------------------------
class TokenFile:
    """A 1-D array of token ids in a file (raw little-endian values: ``np.memmap(path, dtype)``
    opens it), read by slices with ``os.pread``. Read this way, not through a memory map, so that
    the pages read stay in the page cache and out of the process's resident memory: an epoch over
    a 10 GB corpus would otherwise map all of it into the process. ``tokens_read`` counts what
    this process read (tests check that each rank reads only its share)."""

    def __init__(self, path: str | Path, dtype):
        self.path = Path(path)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.tokens_read = 0
        self._open()

    def _open(self) -> None:
        # opened now, not at the first read: a store rebuilt later under the same name (its source
        # changed) is another file, and this one keeps reading what it opened; a forked child
        # shares the descriptor (os.pread moves no file position)
        self._fd = os.open(self.path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)
        self.length = os.fstat(self._fd).st_size // self.dtype.itemsize

    def __getstate__(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if key != "_fd"}

    def __setstate__(self, state: dict) -> None:  # another process: opened again by name
        self.__dict__.update(state)
        self._open()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: slice) -> np.ndarray:
        """ids[start:stop] as a numpy array of the file's dtype (only steps of 1)."""
        start, stop, step = index.indices(self.length)
        if step != 1:
            raise ValueError("a TokenFile is read by contiguous slices")
        count, size = max(0, stop - start), self.dtype.itemsize
        if not count:
            return np.zeros(0, self.dtype)
        data = os.pread(self._fd, count * size, start * size)
        self.tokens_read += count
        return np.frombuffer(data, self.dtype)


class CorpusSplit:
    """One split of a prepared corpus: ``ids`` (a TokenFile) and ``offsets`` (lines + 1,) int64.
    ``len()`` is the number of lines (sentences)."""

    def __init__(self, directory: Path, name: str, dtype, owner=None):
        self.name = name
        self.ids = TokenFile(directory / f"{name}.ids", dtype)
        self.offsets = np.memmap(directory / f"{name}.offsets", np.int64, mode="r")  # (lines + 1,)
        self._owner = owner  # keeps a temporary store alive while a split is in use

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_tokens(self) -> int:
        return len(self.ids)

    def sentence(self, i: int) -> np.ndarray:
        """The ids of line ``i``, its terminator included: (length,) int64."""
        return self.ids[int(self.offsets[i]) : int(self.offsets[i + 1])].astype(np.int64)

    def lengths(self, lines: np.ndarray) -> np.ndarray:
        return self.offsets[lines + 1] - self.offsets[lines]


class SeenLines:
    """Whether a token sequence is a line of the training data: a sorted array of the lines'
    ``sequence_hash`` values (8 bytes a distinct line; memory-mapped), searched with
    ``np.searchsorted``. A false "seen" needs a 64-bit collision: about n / 2^64 per query for n
    training lines. Replaces a Python set of every training line."""

    def __init__(self, hashes: np.ndarray, path: Path | None = None):
        self.hashes = hashes  # (distinct lines,) uint64, sorted
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> "SeenLines":
        """The hashes of ``path``; a ``DataError`` naming it when it is cut short (not whole 8-byte keys)
        or its keys are not strictly increasing, as ``save`` writes them (a file zero-filled by a crash
        had the right size and marked every training line "novel")."""
        path = Path(path)
        size = path.stat().st_size
        if size % 8:
            raise DataError(f"{path}: damaged ({size:,} bytes, not whole 8-byte keys of training lines); is it a complete rnnkit file?")
        hashes = np.memmap(path, np.dtype("<u8"), mode="r") if size else np.zeros(0, np.uint64)
        block = 1 << 20  # keys per comparison: no temporary of the whole file
        for start in range(0, max(len(hashes) - 1, 0), block):
            part = hashes[start : start + block + 1]
            if not np.all(part[1:] > part[:-1]):
                raise DataError(f"{path}: damaged (its keys of training lines are not in increasing order); is it a complete rnnkit file?")
        return cls(hashes, path)

    def save(self, path: str | Path) -> None:
        """Write the hashes to ``path`` (a file copy, never the whole array in memory), atomically
        and flushed to disk (a run's config.json, written after it, must never outlast it)."""
        path = Path(path)
        if self.path is not None:
            atomic_write(path, lambda partial: shutil.copyfile(self.path, partial))
        else:
            atomic_write(path, lambda partial: np.asarray(self.hashes, np.dtype("<u8")).tofile(partial))

    def in_memory(self) -> "SeenLines":
        """The same hashes read into memory, detached from the file: for a process that outlives
        its reading (``rnnkit serve``), where a memory map of a file cut short by a later copy over
        the run ended the server with SIGBUS."""
        return SeenLines(np.array(self.hashes, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self.hashes)

    def __contains__(self, ids) -> bool:
        key = np.uint64(sequence_hash(ids))
        i = int(np.searchsorted(self.hashes, key))
        return i < len(self.hashes) and self.hashes[i] == key


# -- reading text in pieces ---------------------------------------------------------------------------------
# white space other than a line break, as UTF-8 bytes: the characters str.isspace accepts
SPACE_BYTES = rb"(?:[\t\x0b\x0c\x1c-\x1f ]|\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80)"
BOM_BYTES = BOM.encode()
BLANK_AFTER_BREAK = re.compile(rb"\n(?=" + SPACE_BYTES + rb"*\n)")  # a line break before a blank line
BLANK_BODY = re.compile(rb"\n" + SPACE_BYTES + rb"*(?=\n)")  # a blank line's body and the break before it
LEADING_BLANKS = re.compile(rb"(?:" + SPACE_BYTES + rb"*\n)*")


def byte_pieces(path: str | Path, on_bytes=None, piece_bytes: int | None = None, max_line_bytes: int | None = None) -> Iterator[bytes]:
    """The bytes of a file in pieces of whole lines, each ending in ``\\n``: a BOM at the start of
    the file or of any line dropped, LF / CRLF / lone CR all written ``\\n`` (the rules of ``rnnkit.data.textio``; on bytes, since
    neither byte occurs inside a UTF-8 sequence), a missing final line break added. A piece is cut
    after a line break; a CR that ends a read waits for the next, which may start with its LF.
    ``on_bytes(n)`` is told how many bytes were read. Not decoded: see ``text_pieces``. A line longer
    than ``max_line_bytes`` is a ``DataError`` naming it (a line is held, and tokenized, whole)."""
    path = Path(path)
    with open_bytes(path) as handle:
        pending, lines = b"", 0
        while True:
            data = handle.read(piece_bytes or PIECE_BYTES)
            if on_bytes and data:
                on_bytes(len(data))
            block = pending + data
            if data:
                cut = max(block.rfind(b"\n"), block.rfind(b"\r", 0, len(block) - 1)) + 1
                if cut == 0:  # no line break yet: a long line, read on
                    if max_line_bytes is not None and len(block) > max_line_bytes:
                        raise DataError(f"{path}:{lines + 1}: a line of more than {max_line_bytes / 2**20:,.0f} MB, more than the memory this process may use "
                                        "can tokenize at once (a line is read whole); break the text into lines, e.g. fold -s -w 10000")
                    pending = block
                    continue
                block, pending = block[:cut], block[cut:]
            if block:
                block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                lines += block.count(b"\n")
                block = block.removeprefix(BOM_BYTES).replace(b"\n" + BOM_BYTES, b"\n")  # a block starts a line
                yield block if block.endswith(b"\n") else block + b"\n"
            if not data:
                return


def text_pieces(path: str | Path, on_bytes=None, piece_bytes: int | None = None, max_line_bytes: int | None = None) -> Iterator[tuple[bytes, str]]:
    """``byte_pieces`` with their text (strict UTF-8): (bytes, text) pairs. Errors are ``DataError``
    lines naming the file (and, for bad bytes, the line and column, found in the piece that holds
    them: memory holds one piece, however big the file)."""
    lines_before = 0
    for block in byte_pieces(path, on_bytes, piece_bytes, max_line_bytes):
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            text = "\x00"  # refused below
        if "\x00" in text:  # bytes not UTF-8, or a UTF-16 or binary file
            _check_utf8(block, source_name(path), lines_before)
            raise AssertionError(f"{path}: a piece was refused that passes the check")
        lines_before += block.count(b"\n")
        yield block, text


def count_kept_lines(block: bytes, eos: bool) -> int:
    """The lines of a piece, less its blank ones (white space only) when they are dropped."""
    if not eos:
        return block.count(b"\n")
    return block.count(b"\n") - len(BLANK_AFTER_BREAK.findall(block)) - block[: LEADING_BLANKS.match(block).end()].count(b"\n")


def kept_bytes(block: bytes, eos: bool) -> bytes:
    """What ``text.fingerprint`` hashes of a piece's lines: each kept line and a line break."""
    if not eos:
        return block
    return BLANK_BODY.sub(b"", block[LEADING_BLANKS.match(block).end() :])


# -- tokenizing pieces ----------------------------------------------------------------------------------------
@functools.cache
def _space_table() -> np.ndarray:
    """(0x110000,) bool: which code points ``str.isspace`` calls white space (a blank line holds only those)."""
    table = np.zeros(0x110000, bool)
    table[[c for c in range(0x3001) if chr(c).isspace()]] = True  # none lies above U+3000
    return table


def _char_piece(text: str, lowercase: bool) -> tuple[np.ndarray, np.ndarray]:
    """Keys = code points, the line break included: (tokens,) uint32; the lines' lengths; and which
    lines hold more than white space: (lines,) bool."""
    text = read_form(text, lowercase)
    keys = np.frombuffer(text.encode("utf-32-le"), np.uint32)  # one code point per character, in C
    ends = np.flatnonzero(keys == 10) + 1
    starts = np.concatenate([[0], ends[:-1]])
    nonblank = np.logical_or.reduceat(~_space_table()[keys], starts)
    return keys, ends - starts, nonblank


def _regex_piece(text: str, pattern: re.Pattern, lowercase: bool) -> tuple[np.ndarray, list[str]]:
    """The tokens of a piece by ``pattern`` (which also matches ``\\n``): (keys, distinct tokens),
    keys (tokens,) int64 indexing the distinct tokens (in order of first occurrence)."""
    tokens = pattern.findall(read_form(text, lowercase))
    first: dict[str, int] = {}
    positions = np.fromiter(map(first.setdefault, tokens, itertools.count()), np.int64, len(tokens))  # of first occurrences
    dense = np.empty(len(tokens), np.int64)
    dense[np.fromiter(first.values(), np.int64, len(first))] = np.arange(len(first))
    return dense[positions], list(first)


# byte classes for ASCII text: the word rule's \w, its joiners, white space (str.isspace's ASCII
# characters), the line break, and everything else (a token of its own)
_SPACE, _WORD, _JOIN, _NEWLINE, _OTHER = range(5)
_CLASS = np.full(256, _OTHER, np.int8)
_CLASS[[c for c in range(128) if chr(c).isspace()]] = _SPACE
_CLASS[[c for c in range(128) if chr(c).isalnum() or chr(c) == "_"]] = _WORD
_CLASS[[ord("'"), ord("-")]] = _JOIN
_CLASS[ord("\n")] = _NEWLINE
_LETTER = np.array([chr(c).isascii() and chr(c).isalpha() for c in range(256)])
_P = np.uint64(0x100000001B3)  # an odd multiplier: invertible mod 2^64


_P_INVERSE = np.uint64(pow(int(_P), -1, 2**64))


@functools.cache
def _powers(n: int, base: int = int(_P)) -> np.ndarray:
    """base^i mod 2^64 for i < n: (n,) uint64."""
    with np.errstate(over="ignore"):
        return np.concatenate([np.ones(1, np.uint64), np.cumprod(np.full(n - 1, np.uint64(base)), dtype=np.uint64)])


def _distinct_in_order(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keys, first): keys (tokens,) int64 numbering the distinct values in order of first
    occurrence, first (distinct,) int64 the index of each one's first occurrence.

    One plain sort of (high bits of the hash, index) packed into a word, instead of np.unique's
    argsort, which has no vectorised kernel on AVX2 CPUs (6-8 × slower there than the sort); the
    tokens a truncated hash would merge are found by comparing full hashes, and then np.unique decides."""
    n = len(hashes)
    bits = max(1, int(n - 1).bit_length())
    if n == 0 or bits > 32:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    shift = np.uint64(bits)
    packed = np.sort((hashes >> shift << shift) | np.arange(n, dtype=np.uint64))  # (tokens,)
    order = (packed & np.uint64((1 << bits) - 1)).astype(np.int64)  # by hash, then by position
    high = packed >> shift
    starts = np.flatnonzero(np.concatenate([[True], high[1:] != high[:-1]]))  # (distinct,)
    group = np.cumsum(np.concatenate([[True], high[1:] != high[:-1]])) - 1  # (tokens,)
    in_order = hashes[order]
    if (in_order != in_order[starts][group]).any():  # two tokens share the hash's high bits
        _, first, keys = np.unique(hashes, return_index=True, return_inverse=True)
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(first)] = np.arange(len(first))
        return rank[keys], np.sort(first)
    first = order[starts]  # the smallest index of each group: the first occurrence
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))  # (distinct,): numbered by first occurrence
    keys = np.empty(n, np.int64)
    keys[order] = rank[group]
    return keys, np.sort(first)


def _ascii_piece(block: bytes, kind: str, lowercase: bool) -> tuple[np.ndarray, list[str]]:
    """What ``_regex_piece`` returns, for ASCII text, computed on bytes with numpy: the word rule
    (runs of \\w joined by single ' or - between them, ``<letters>`` one token, every other
    character that is not white space a token) or the white-space rule, ``\\n`` a token. Tokens
    are told apart by a 64-bit polynomial hash of their bytes (two distinct tokens of a piece share
    one with probability about 2^-64 times the square of the number of distinct tokens)."""
    if lowercase:
        block = block.lower()
    b = np.frombuffer(block, np.uint8)
    n = len(b)
    kind_of = _CLASS[b]
    if kind == "word":
        word = kind_of == _WORD
        before, after = np.concatenate([[False], word[:-1]]), np.concatenate([word[1:], [False]])
        run = word | ((kind_of == _JOIN) & before & after)  # a joiner between two word characters
        single = ~run & (kind_of != _SPACE)
    else:
        run = (kind_of != _SPACE) & (kind_of != _NEWLINE)
        single = kind_of == _NEWLINE
    edges = np.diff(np.concatenate([[0], run.view(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if kind == "word":  # <letters>: the run and its brackets are one token
        angle = (starts > 0) & (ends < n)
        angle &= (b[np.maximum(starts - 1, 0)] == ord("<")) & (b[np.minimum(ends, n - 1)] == ord(">"))
        not_letter = np.flatnonzero(run & ~_LETTER[b])  # digits, _ and joiners inside runs
        angle[np.searchsorted(starts, not_letter, side="right") - 1] = False
        single[starts[angle] - 1] = False
        single[ends[angle]] = False
        starts[angle] -= 1
        ends[angle] += 1
    end_of = np.empty(n + 1, np.int64)  # tokens in order of their start, without a sort
    end_of[starts] = ends
    singles = np.flatnonzero(single)
    end_of[singles] = singles + 1
    is_start = single
    is_start[starts] = True
    starts = np.flatnonzero(is_start)
    ends = end_of[starts]
    # Σ_j byte_j · P^j over a token's bytes (j its position in the token), from one running sum of
    # byte_g · P^g over the piece (g the global position): (S[end] − S[start]) · P^(−start)
    size = ((n >> 20) + 1) << 20  # a whole number of MiB, so that few sizes are cached
    with np.errstate(over="ignore"):
        running = np.concatenate([[np.uint64(0)], np.cumsum(b * _powers(size)[:n], dtype=np.uint64)])  # (bytes + 1,)
        sums = (running[ends] - running[starts]) * _powers(size, int(_P_INVERSE))[starts]
        hashes = mix64(sums ^ (ends - starts).astype(np.uint64))
    keys, first = _distinct_in_order(hashes)
    tokens = [block[starts[i] : ends[i]].decode("ascii") for i in first]
    return keys, tokens


def _word_piece(block: bytes, pattern: re.Pattern, kind: str, lowercase: bool) -> tuple[np.ndarray, list[str]]:
    """The tokens of a piece (``_ascii_piece`` for ASCII text, else ``_regex_piece``)."""
    if block.isascii():
        return _ascii_piece(block, kind, lowercase)
    return _regex_piece(block.decode("utf-8"), pattern, lowercase)


def _char_tokens(block: bytes, lowercase: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, None]:
    """A ``_Level.job``: code points are global keys already."""
    return (*_char_piece(block.decode("utf-8"), lowercase), None)


def _word_tokens(block: bytes, pattern: re.Pattern, kind: str, lowercase: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """A ``_Level.job``: keys numbering the piece's distinct tokens, and those tokens."""
    keys, distinct = _word_piece(block, pattern, kind, lowercase)
    lengths = np.diff(np.concatenate([[-1], np.flatnonzero(keys == distinct.index(NEWLINE))]))  # every piece ends in \n
    return keys, lengths, lengths > 1, distinct  # a line without tokens is white space only


class _Level:
    """Turns text pieces into token keys; ``symbols()[key]`` is the token a key stands for."""

    terminator: int  # the key of the line break
    parallel = True  # whether ``job`` may run in worker processes
    # bytes of memory per byte of a line while it is tokenized (a line is tokenized whole): 70
    # measured at the word level, 18 at the character level, on lines of 50 MB
    memory_per_byte = 80

    def job(self) -> tuple:
        """(function, arguments), ``function(block, *arguments)`` -> (keys, lengths, nonblank,
        distinct) for a piece's bytes: keys (tokens,) int with the line break ending each line,
        lengths (lines,) int64 (the line break included), nonblank (lines,) bool; distinct: the
        tokens the keys number within the piece (``absorb`` makes them global), or None when the
        keys are global already. Picklable when ``parallel``."""
        raise NotImplementedError

    def absorb(self, distinct) -> np.ndarray | None:
        """(distinct,) int64: the global key of each of a piece's local keys (None: global already)."""
        return None

    def symbols(self) -> list[str]:
        raise NotImplementedError


class _CharLevel(_Level):
    terminator = 10
    # tokenizing is cheaper than sending a piece's code points between processes (measured: 100 MB
    # in 4.1-4.9 s here, 5.0-5.2 s with two workers); the counts use torch's bincount instead (3 ×)
    parallel = False
    memory_per_byte = 20

    def __init__(self, tokenizer: Tokenizer):
        self.lowercase = tokenizer.lowercase

    def job(self):
        return _char_tokens, (self.lowercase,)

    def symbols(self):
        return _CodePoints()


class _CodePoints:
    def __len__(self) -> int:
        return 0x110000

    def __getitem__(self, key: int) -> str:
        return chr(key)


class _RegexLevel(_Level):
    """Word and white-space levels: the tokenizer's own rule as a regular expression over a whole
    piece, with ``\\n`` matched as a token (it is white space to both rules, so no other token
    holds it and the line-by-line tokens are unchanged)."""

    def __init__(self, tokenizer: Tokenizer):
        self.pattern = re.compile((word_rule().pattern if tokenizer.kind == "word" else r"\S+") + r"|\n")
        self.lowercase, self.kind = tokenizer.lowercase, tokenizer.kind
        self.index = {NEWLINE: 0}  # token -> key, for every token met (vocabulary-sized)
        self.terminator = 0

    def job(self):
        return _word_tokens, (self.pattern, self.kind, self.lowercase)

    def absorb(self, distinct):
        return np.array([self.index.setdefault(token, len(self.index)) for token in distinct], np.int64)

    def symbols(self):
        return list(self.index)


class _BPELevel(_Level):
    parallel = False  # the tokenizers library runs its batch encoding on every core itself

    def __init__(self, tokenizer: Tokenizer):
        self.model = tokenizer._tokenizer  # the tokenizers library's Tokenizer
        self.lowercase = tokenizer.lowercase
        self.terminator = self.model.get_vocab_size(with_added_tokens=True)

    def job(self):
        return self._encode, ()

    def _encode(self, block: bytes):
        lines = [read_form(line, self.lowercase) for line in block.decode("utf-8").split("\n")[:-1]]  # as BPETokenizer.tokenize reads a line
        nonblank = np.fromiter((not line.isspace() and line != "" for line in lines), bool, len(lines))  # a line of invisible characters is blank
        encodings = self.model.encode_batch(lines)
        keys = np.fromiter(itertools.chain.from_iterable((*e.ids, self.terminator) for e in encodings), np.int64)
        return keys, np.fromiter((len(e.ids) + 1 for e in encodings), np.int64, len(encodings)), nonblank, None

    def symbols(self):
        table = [""] * (self.terminator + 1)
        for token, i in self.model.get_vocab(with_added_tokens=True).items():
            table[i] = token
        table[self.terminator] = NEWLINE
        return table


def _count_keys(keys: np.ndarray) -> np.ndarray:
    """np.bincount(keys), by torch's bincount (vectorised, about 3 × numpy's) in this process, not in
    a forked worker (OpenMP, which torch's kernels use, does not survive fork)."""
    if len(keys) and "torch" in sys.modules and multiprocessing.parent_process() is None:
        import torch

        return torch.bincount(torch.from_numpy(keys.astype(np.int32, copy=False))).numpy().astype(np.int64, copy=False)
    return np.bincount(keys)


def _split_piece(block: bytes, where: tuple, job: tuple, eos: bool, count: bool):
    """One piece's work, in a worker process for big corpora: tokenize (``job``), drop blank lines
    (``eos``), and cut the lines into splits, ``where`` = (fixed split, splitter or None, index
    of the piece's first kept line). Returns ([(keys, lengths) per split], training-key counts or
    None, distinct, whether the piece has text)."""
    function, arguments = job
    keys, lengths, nonblank, distinct = function(block, *arguments)
    if eos and not nonblank.all():  # blank lines are dropped, each line ends in <EOS>
        keys, lengths = keys[np.repeat(nonblank, lengths)], lengths[nonblank]
    fixed, splitter, first = where
    label = fixed if splitter is None else splitter.labels(first, len(lengths), TRAIN)
    if isinstance(label, int):
        parts = [(keys, lengths) if s == label else None for s in range(len(SPLITS))]
    else:
        token_labels = np.repeat(label, lengths)  # (tokens,)
        train = token_labels == TRAIN  # most tokens: one pass over all, the others from the few left
        rest, rest_labels = keys[~train], token_labels[~train]
        parts = [(keys[train], lengths[label == TRAIN])] + [(rest[rest_labels == s], lengths[label == s]) for s in (VALID, TEST)]
    counts = _count_keys(parts[TRAIN][0]) if count and parts[TRAIN] is not None else None  # the terminators too
    return parts, counts, distinct, bool(nonblank.any())


LEVELS: dict[str, type[_Level]] = {"char": _CharLevel, "word": _RegexLevel, "whitespace": _RegexLevel, "bpe": _BPELevel}


def longest_line_bytes(level: str, memory_bytes: int | None = None) -> int:
    """The longest line (bytes) a corpus at ``level`` may hold: one whose tokenizing fits in half
    of ``memory_bytes`` (what this process may use, by default). A line is tokenized whole: a 300 MB line of
    words needs about 20 GB, which ended in the kernel's out-of-memory kill, not a message."""
    memory = usable_memory() if memory_bytes is None else memory_bytes
    return memory // 2 // LEVELS[level].memory_per_byte


# -- settings and the cache ------------------------------------------------------------------------------------
def is_prepared(path: str | Path) -> bool:
    """Whether ``path`` is a prepared-corpus directory."""
    return (Path(path) / "meta.json").is_file()


def _settings(data) -> dict:
    settings = {key: getattr(data, key) for key in SETTINGS}
    settings["split"] = list(settings["split"])
    if data.level != "bpe":
        settings.pop("bpe_vocab")
    if data.valid or data.test:
        settings.pop("split"), settings.pop("split_seed")
    return settings


def _sources(data, run_data: bool = True) -> list[dict]:
    """Each source file with what tells a change: size and modification time (ns). ``run_data``:
    the files are a run's DATA (a prepared corpus may stand for them), not a text to evaluate."""
    out = []
    for path, split in [*((p, "train") for p in data.train), (data.valid, "valid"), (data.test, "test")]:
        if not path:
            continue
        if str(path) == "-":
            raise DataError("-: a language model's text must be a file (it is read more than once), not standard input")
        try:
            stat = Path(path).stat()
        except OSError as error:
            raise unreadable(path, error) from None
        if is_prepared(path):  # here, one of several files, a --valid, or eval's text: a prepared corpus is a run's whole DATA
            raise DataError(f"{path}: is a prepared corpus, which is a run's only DATA (rnnkit train lm {path}); here a text file is needed")
        if Path(path).is_dir():
            store = " (or a prepared corpus from rnnkit prepare)" if run_data and split == "train" and len(data.train) == 1 else ""  # a run's whole DATA only
            raise DataError(f"{path}: is a directory, expected a text file{store}")
        if not S_ISREG(stat.st_mode):  # a named pipe, <(...), /dev/stdin: read once, then a second open waits forever
            raise DataError(f"{path}: is a pipe or a device, not a file; a language model's text is read more than once: save it to a file first")
        out.append({"path": str(Path(path).resolve()), "split": split, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sample": content_sample(path, stat.st_size)})
    return out


SAMPLE_BLOCKS, SAMPLE_BYTES = 64, 4096
CHANGE_KEYS = ("size", "mtime_ns", "sample")  # what tells a source file changed (``_sources``)


def content_sample(path: str | Path, size: int) -> str:
    """A digest of ``SAMPLE_BLOCKS`` blocks of ``SAMPLE_BYTES`` spread evenly over a file (the whole
    file when it is smaller): beside size and modification time, it tells a file rewritten with the
    same size and its modification time kept (``cp -p``, ``rsync -a``, ``touch -r``, an archive
    unpacked), at 64 reads of 4 KB whatever the file's size. An edit that falls between the blocks
    and keeps both is not seen: preparing again is ``rnnkit prepare``'s, or a new cache folder."""
    digest = hashlib.blake2b(digest_size=8)
    try:
        with open(path, "rb") as file:
            if size <= SAMPLE_BLOCKS * SAMPLE_BYTES:
                digest.update(file.read())
            else:
                for block in range(SAMPLE_BLOCKS):  # the first block at 0, the last ending at the file's end
                    file.seek(block * (size - SAMPLE_BYTES) // (SAMPLE_BLOCKS - 1))
                    digest.update(file.read(SAMPLE_BYTES))
    except OSError as error:
        raise unreadable(path, error) from None
    return digest.hexdigest()


def cache_path(data, sources: list[dict] | None = None, root: Path | None = None) -> Path:
    """Where the cache keeps the prepared corpus of ``data``: ``root`` (default ``user_cache_directory()``)
    ``/corpora/<first file's stem>-<level>-<hash of the settings and the files' paths>``."""
    sources = _sources(data) if sources is None else sources
    identity = {"format": FORMAT, "settings": _settings(data), "files": [(s["path"], s["split"]) for s in sources]}
    key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return (root or user_cache_directory()) / "corpora" / f"{Path(data.train[0]).stem}-{data.level}-{key}"


# -- the prepared corpus ------------------------------------------------------------------------------------------
class _Temporary:
    """A directory removed when the last object holding it goes (or the process ends)."""

    def __init__(self, path: Path):
        self.path = path
        weakref.finalize(self, shutil.rmtree, str(path), True)


@dataclass
class Corpus:
    directory: Path
    meta: dict
    vocab: Vocabulary
    tokenizer: Tokenizer
    splits: dict[str, CorpusSplit]
    seen: SeenLines
    owner: object = None  # a _Temporary when the store goes with the process

    @classmethod
    def open(cls, directory: str | Path, owner=None) -> "Corpus":
        directory = Path(directory)
        try:
            meta = _store_json(directory, "meta.json")
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise DataError(f"{directory}: a prepared corpus of format {meta.get('format') if isinstance(meta, dict) else None}; this rnnkit reads format {FORMAT}: prepare it again")
            for name, recorded in (meta.get("digests") or {}).items():  # stores of before they were recorded: not checked
                if _digest(directory / name) != recorded:  # a vocab.json edited (two tokens swapped): every id read as another word
                    raise DataError(f"{directory / name}: changed since rnnkit prepare wrote it (meta.json records another digest): prepare it again")
            vocab = Vocabulary(_store_json(directory, "vocab.json")["tokens"])
            tokenizer = make_tokenizer(_store_json(directory, "tokenizer.json"))
            splits = {name: CorpusSplit(directory, name, meta["dtype"], owner) for name in SPLITS if name in meta["lines"]}
            for name, split in splits.items():  # a file cut short (a full disk, a partial copy) would train on less, silently
                lines, tokens = meta["lines"][name], meta["tokens"][name]
                if len(split) != lines or split.num_tokens != tokens or int(split.offsets[-1]) != tokens:
                    raise DataError(f"{directory}: not a complete prepared corpus ({name}.ids and {name}.offsets hold {split.num_tokens:,} tokens "
                                    f"in {len(split):,} lines; meta.json says {tokens:,} in {lines:,}): prepare it again")  # fmt: skip
                if int(split.offsets[0]) != 0 or (np.diff(split.offsets) < 1).any():  # every line holds its terminator at least
                    raise DataError(f"{directory}: not a consistent prepared corpus ({name}.offsets does not rise line by line): prepare it again")
            settings = meta.get("settings", {})
            if (tokenizer.kind, tokenizer.lowercase) != (settings.get("level", tokenizer.kind), settings.get("lowercase", tokenizer.lowercase)):
                raise DataError(f"{directory}: not a consistent prepared corpus (tokenizer.json cuts at level {tokenizer.kind}, meta.json says "
                                f"{settings.get('level')}): prepare it again")  # fmt: skip
            for name, split in splits.items():  # an id past the vocabulary, found now rather than at its batch, runs later
                if split.num_tokens and int(np.max(np.memmap(split.ids.path, split.ids.dtype, mode="r"))) >= len(vocab):
                    raise DataError(f"{directory}: not a consistent prepared corpus ({name}.ids holds ids past the vocabulary of {len(vocab):,}): prepare it again")
            if meta.get("vocab_size", len(vocab)) != len(vocab):
                raise DataError(f"{directory}: not a consistent prepared corpus (vocab.json holds {len(vocab):,} tokens, meta.json says {meta['vocab_size']:,}): prepare it again")
            seen = SeenLines.open(directory / "seen.u64")
            if meta.get("seen_lines", len(seen)) != len(seen):  # stores of before it was recorded: not checked
                raise DataError(f"{directory}: not a complete prepared corpus (seen.u64 holds {len(seen):,} training lines, meta.json says "
                                f"{meta['seen_lines']:,}): prepare it again")  # fmt: skip
        except (OSError, KeyError, ValueError, TypeError) as error:
            if isinstance(error, DataError):
                raise
            if isinstance(error, OSError) and error.filename:  # a file of the store missing or unreadable: named
                raise DataError(f"{error.filename}: {(error.strerror or 'cannot be read').lower()}: not a complete prepared corpus") from None
            raise DataError(f"{directory}: not a complete prepared corpus ({type(error).__name__}: {error})") from None
        return cls(directory, meta, vocab, tokenizer, splits, seen, owner)

    def record(self, data) -> dict:
        """The run config's record of the data (files as ``data`` names them, the split, line
        counts, the fingerprint of the training lines)."""
        record = {**self.meta["record"], "train_files": list(map(str, data.train))}
        for name in ("valid", "test"):
            if getattr(data, name, None):
                record[f"{name}_file"] = getattr(data, name)
        return record


def _store_json(directory: Path, name: str):
    """The JSON file ``name`` of a store; a ``DataError`` naming it when it is not JSON."""
    try:
        return json.loads((directory / name).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{directory / name}: damaged, not a JSON file of rnnkit prepare's ({error}): prepare it again") from None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached(target: Path, data, sources: list[dict], say: bool = True) -> Corpus | None:
    """The cache's store of these files when it is there, up to date and whole; None when it is to be
    built: a store damaged on disk (by a power cut during its writing, or by hand) is a cache's
    entry, prepared again with a note, never an error that preparing again would repeat."""
    if not (is_prepared(target) and _up_to_date(target, data, sources)):
        return None
    try:
        return Corpus.open(target)
    except DataError as error:
        if say:
            print(f"rnnkit: note: {str(error).removesuffix(': prepare it again')}: preparing it again", file=sys.stderr, flush=True)
        return None


def prepare_corpus(data, cache: str | Path | bool | None = None, out: str | Path | None = None, progress: bool | None = None) -> Corpus:
    """The prepared corpus of an ``LMDataConfig``: reused from the cache when its source files are
    unchanged, else prepared (see the module docstring). ``cache``: None chooses by size
    (``CACHE_FROM_BYTES``), True caches always, False never, a path caches there; ``out`` prepares
    into that directory instead. ``data.train = [DIR]`` with a prepared DIR opens it.

    Raises ``DataError`` (one line naming the file) for missing or unreadable files, bytes that are
    not UTF-8 (line and column), a file with no text, a split that leaves no data."""
    if len(data.train) == 1 and is_prepared(data.train[0]):
        if out is not None:  # a store is no text to prepare: --out would do nothing
            raise UsageError(f"{data.train[0]} is a prepared corpus already; --out prepares text files into a new one "
                             f"(to have it elsewhere, copy the folder: cp -r {data.train[0]} {out})")
        corpus = Corpus.open(data.train[0])
        _check_fits(corpus, data)
        return corpus
    data.check()
    sources = _sources(data)
    say_held_out_in_training([(f"--{s['split']}", s["path"]) for s in sources if s["split"] != "train"], [s["path"] for s in sources if s["split"] == "train"])
    size = sum(s["size"] for s in sources)
    if out is not None:
        # a link to a folder (a bigger disk) is written through, not replaced by a folder beside it
        target = Path(os.path.realpath(out)) if Path(out).is_symlink() else Path(out)
        if target.is_dir() and os.path.ismount(target):  # a mount point cannot be renamed away; refused before any work
            raise UsageError(f"--out {out}: a mount point, which rnnkit cannot replace with the corpus it writes beside it and "
                             f"renames into place; give a folder inside it (--out {Path(out) / 'corpus'})")
        if target.exists() and any(target.iterdir()):
            if is_prepared(target) and _up_to_date(target, data, sources):
                try:
                    return Corpus.open(target)
                except DataError as error:  # a folder of the user's is never replaced: said, with what to do
                    raise DataError(f"{str(error).removesuffix(': prepare it again')}: delete it or choose another --out") from None
            raise DataError(f"{target}: exists and is not an up-to-date prepared corpus of these files; choose another --out")
    elif cache is False or (cache is None and size < CACHE_FROM_BYTES):
        directory = scratch_directory("corpus")
        owner = _Temporary(directory)
        _build_while_unchanged(data, sources, directory, progress, shown=directory.parent)
        return Corpus.open(directory, owner)
    else:
        target = cache_path(data, sources, None if cache in (None, True) else Path(cache))
        if (cached := _cached(target, data, sources)) is not None:
            return cached
    made = first_absent_folder(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _build_into(target, data, sources, size, out, progress)
    except BaseException:
        remove_parents_made(target, made)  # an --out a/b/c that failed left a/b behind
        raise


def _build_into(target: Path, data, sources: list[dict], size: int, out, progress: bool | None) -> Corpus:
    """``prepare_corpus``'s build of ``target`` (a cached store, or ``--out``), in a folder beside it renamed into place."""
    # one builder at a time per store; a store in use by another process is never changed in place:
    # its readers hold its files open (TokenFile, memory maps), a rebuild renames a new directory in
    # (--out: a folder of the user's, which is never replaced; no lock file left beside it)
    with exclusive_lock(target.with_name(f"{target.name}.lock"), f"preparing {target.name}") if out is None else contextlib.nullcontext():
        if out is None and (cached := _cached(target, data, sources, say=False)) is not None:
            return cached  # built by the process we waited for
        for leftover in target.parent.glob(f"{glob.escape(target.name)}.tmp-*"):
            pid = leftover.name[len(target.name) + len(".tmp-") :].split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and process_alive(int(pid)):  # only with --out, which takes no lock
                raise DataError(f"{target}: another rnnkit prepare (process {pid}) is writing it; wait for it, or choose another --out")
            shutil.rmtree(leftover, ignore_errors=True)  # of a killed build
        building = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            building.mkdir()
        except OSError as error:  # a read-only folder or mount
            raise _written_where(error, building, target) from None
        try:
            started = time.perf_counter()
            _build_while_unchanged(data, sources, building, progress, shown=target)
            if target.exists():  # an out-of-date store of the same files and settings
                old = target.with_name(f"{target.name}.tmp-{os.getpid()}-old")
                os.replace(target, old)
                os.replace(building, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(building, target)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)  # nothing half-written
            raise
    seconds = time.perf_counter() - started
    print(f"prepared {target} in {seconds:.1f} s ({size / 1e6 / max(seconds, 1e-9):.1f} MB/s)", file=sys.stderr, flush=True)
    return Corpus.open(target)


def _build_while_unchanged(data, sources: list[dict], directory: Path, progress: bool | None, shown: Path) -> None:
    """``_build``, then a check that no source file changed while it read them (a crawl still being
    written): a changed file gives a store that matches neither the old text nor the new, or fails
    midway; either way one line (``DataError``) naming the file, instead."""
    try:
        _build(data, sources, directory, progress=progress)
    except Exception as error:
        _check_unchanged(data, sources)  # the likelier cause of whatever failed
        if isinstance(error, OSError):  # a full disk, a file size limit, a read-only mount
            raise _written_where(error, directory, shown) from None
        raise
    _check_unchanged(data, sources)


def _written_where(error: OSError, directory: Path, shown: Path) -> DataError:
    """An OS error while writing a prepared corpus into ``directory`` as one line naming what the
    user knows: ``shown`` (the --out folder, the cache's), not the temporary folder it is built in;
    a source file's own error keeps its name."""
    import errno

    filename = str(error.filename or "")
    where = filename if filename and not filename.startswith(str(directory)) else f"the prepared corpus in {shown}"
    why = {errno.EFBIG: "; a file size limit? (ulimit -f)", errno.ENOSPC: "; the disk is full"}.get(error.errno, "")
    return DataError(f"{where}: {error.strerror or error} (while preparing the corpus; nothing is left half-written{why})")


def _check_unchanged(data, sources: list[dict]) -> None:
    now = {s["path"]: s for s in _sources(data)}
    for source in sources:
        current = now.get(source["path"])
        if current is None or [current[key] for key in CHANGE_KEYS] != [source.get(key) for key in CHANGE_KEYS]:
            raise DataError(f"{source['path']}: changed while it was being prepared (size {source['size']:,} bytes, now "
                            f"{current['size'] if current else 0:,}); prepare it again once it is written")  # fmt: skip


def _check_fits(corpus: Corpus, data) -> None:
    """Refuse (one line, ``UsageError``) settings given with a prepared corpus that it was not
    prepared with: they would be silently ignored, and the run's config would record them."""
    shown = corpus.directory
    for name in ("valid", "test"):
        if getattr(data, name, None):
            raise UsageError(f"--{name}: {shown} is a prepared corpus with its own valid and test lines; leave out --{name}, or prepare the files again with it")
    settings, stored = {**_settings(data), "bpe_vocab": data.bpe_vocab}, corpus.meta["settings"]  # bpe_vocab: given without --level too
    given = getattr(data, "given", None)  # the names the user set (TaskBase.data_config), at their default value or not
    if given is None:  # a configuration made in code: the settings that differ from the defaults
        default = type(data)(train=data.train)
        default = {**_settings(default), "bpe_vocab": default.bpe_vocab}
        given = [key for key, value in settings.items() if value != default.get(key)]
    for key in (key for key in settings if key in given):
        value = settings[key]
        if value != stored.get(key):
            option = "--" + key.replace("_", "-")
            shown_option = ("--" if value else "--no-") + key.replace("_", "-") if isinstance(value, bool) else f"{option} {value}"  # as typed
            was = f"with {key} = {stored[key]}" if key in stored else f"at level {stored.get('level')}, which has no {key}"
            raise UsageError(f"{shown_option}: {shown} was prepared {was}; leave out {option}, or prepare the text again with it")


def _up_to_date(directory: Path, data, sources: list[dict]) -> bool:
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("format") == FORMAT and meta.get("sources") == sources and meta.get("settings") == _settings(data)


# -- building --------------------------------------------------------------------------------------------------
class _Progress:
    def __init__(self, total: int, enabled: bool | None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="B", unit_scale=True, desc="preparing", disable=None if enabled is None else not enabled, leave=False)

    def __call__(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


class _Splitter:
    """The split of each kept line: one split per file, or (only training files) π(line index)."""

    def __init__(self, n: int | None = None, fractions=(0.0, 0.0), seed: int = 0, what: str = "lines"):
        self.n = n
        if n is not None:
            self.n_valid, self.n_test = split_sizes(n, *fractions, what=what)
            self.key = derive_key(seed, 0x5B117)

    def labels(self, first: int, count: int, fixed: int) -> np.ndarray | int:
        if self.n is None:
            return fixed
        rank = permute(np.arange(first, first + count), self.n, self.key)
        return np.where(rank < self.n_valid, VALID, np.where(rank < self.n_valid + self.n_test, TEST, TRAIN)).astype(np.int8)


def _check_utf8(block: bytes, name: str, lines_before: int) -> None:
    """Raise textio's one-line ``DataError`` (file, line, column) when ``block``, a piece of ``name``
    that ``lines_before`` lines precede, is not UTF-8 or holds a NUL; from the piece alone (memory
    stays flat)."""
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError as error:
            raise (lines_before == 0 and not_text(name, block) or not_utf8(name, block, error, lines_before)) from None
    if b"\x00" in block:  # a UTF-16 or binary file
        raise (lines_before == 0 and not_text(name, block) or nul_error(name, block.decode("utf-8"), lines_before))


def _in_order(work, jobs: Iterable[tuple], pool) -> Iterator:
    """``work(*job)`` for each job, in order: in ``pool``'s worker processes when there is one
    (a bounded queue keeps at most a few pieces in memory), else here."""
    if pool is None:
        yield from itertools.starmap(work, jobs)
        return
    waiting: deque = deque()
    for job in jobs:
        waiting.append(pool.apply_async(work, job))
        if len(waiting) > 4:
            yield waiting.popleft().get()
    while waiting:
        yield waiting.popleft().get()


def _build(data, sources: list[dict], directory: Path, progress: bool | None = None, vocab: Vocabulary | None = None, tokenizer: Tokenizer | None = None) -> None:
    """Write a prepared corpus of ``sources`` into ``directory`` (see the module docstring). With
    ``vocab`` and ``tokenizer`` given (evaluating a file with a trained run's), nothing is counted
    or fitted and ``sources`` are one file, written as the split "file"."""
    eos = data.line_breaks == "eos"
    evaluating = vocab is not None
    train_paths = [s["path"] for s in sources if s["split"] == "train"]
    made_split = vocab is None and not any(s["split"] != "train" for s in sources)
    passes = (1 if made_split else 0) + (1 if data.level == "bpe" and vocab is None else 0) + 1
    longest = longest_line_bytes(data.level)
    bar = _Progress(passes * sum(s["size"] for s in sources), progress)
    fingerprint = hashlib.sha1()
    with contextlib.ExitStack() as files:
        files.callback(bar.close)
        # pass 0 (only training files): count the kept lines, so that the split can be made by index
        splitter = _Splitter()
        piece_lines: list[int] = []  # kept lines per piece of the training files, in order
        if made_split:
            for path in train_paths:
                has_text = False
                lines_before = 0
                for block in byte_pieces(path, bar, max_line_bytes=longest):
                    _check_utf8(block, _shown(path, data), lines_before)  # named before other faults (too few lines to split)
                    lines_before += block.count(b"\n")
                    nonblank = count_kept_lines(block, True)
                    piece_lines.append(nonblank if eos else block.count(b"\n"))
                    has_text = has_text or nonblank > 0
                    fingerprint.update(kept_bytes(block, eos))
                if not has_text:
                    raise DataError(f"{_shown(path, data)}: the file has no text")
            splitter = _Splitter(sum(piece_lines), tuple(data.split), data.split_seed, what=f"lines of {', '.join(map(str, data.train))}")
        if tokenizer is None:
            tokenizer = make_tokenizer({"kind": data.level, "lowercase": data.lowercase, **({"vocab_size": data.bpe_vocab} if data.level == "bpe" else {})})
            if data.level == "bpe":  # learned from the training split's lines
                tokenizer.fit(_train_lines(train_paths, splitter, eos, bar, longest))
        level = LEVELS[data.level](tokenizer)
        big = sum(s["size"] for s in sources) >= POOL_FROM_BYTES and (os.cpu_count() or 1) > 1
        pool = files.enter_context(multiprocessing.get_context("fork").Pool(2, initializer=_worker_ignores_interrupts, initargs=(os.getpid(),))) if big and level.parallel else None

        # pass 1: tokenize, assign splits, count the training keys, write keys and offsets
        names = ["file"] if vocab is not None else list(SPLITS)
        keys_out = {name: files.enter_context(open(directory / f"{name}.keys.tmp", "wb")) for name in names}
        offsets_out = {name: files.enter_context(open(directory / f"{name}.offsets", "wb")) for name in names}
        for handle in offsets_out.values():
            handle.write(np.zeros(1, "<i8").tobytes())  # line 0 starts at token 0
        totals = dict.fromkeys(names, 0)
        lines = dict.fromkeys(names, 0)
        counts = np.zeros(0, np.int64)
        first_lines = itertools.accumulate(piece_lines, initial=0)  # of each training piece, when made_split
        work = functools.partial(_split_piece, job=level.job(), eos=eos, count=not evaluating)
        for source in sources:
            fixed = SPLITS.index(source["split"]) if source["split"] in SPLITS else TRAIN
            fingerprinted = fixed == TRAIN and not made_split and not evaluating

            def pieces(path=source["path"], fixed=fixed, fingerprinted=fingerprinted):
                lines_before = 0
                for block in byte_pieces(path, bar, max_line_bytes=longest):
                    if not made_split:  # (made_split: checked while counting)
                        _check_utf8(block, _shown(path, data), lines_before)
                        lines_before += block.count(b"\n")
                    if fingerprinted:
                        fingerprint.update(kept_bytes(block, eos))
                    yield block, (fixed, splitter if made_split else None, next(first_lines) if made_split else 0)

            has_text = False
            for parts, found, distinct, text in _in_order(work, pieces(), pool):
                has_text = has_text or text
                table = level.absorb(distinct) if distinct is not None else None  # piece keys -> global keys
                for name, part in zip(names, parts if not evaluating else parts[TRAIN : TRAIN + 1]):
                    if part is None or not len(part[1]):
                        continue
                    mine_keys, mine_lengths = part if table is None else (table[part[0]], part[1])
                    keys_out[name].write(np.ascontiguousarray(mine_keys, "<u4").data)
                    offsets_out[name].write((totals[name] + np.cumsum(mine_lengths)).astype("<i8").data)
                    totals[name] += len(mine_keys)
                    lines[name] += len(mine_lengths)
                if found is not None and len(found):
                    keys_found = np.arange(len(found)) if table is None else table[: len(found)]
                    top = int(keys_found.max()) + 1
                    if top > len(counts):
                        counts = np.concatenate([counts, np.zeros(top - len(counts), np.int64)])
                    counts[keys_found] += found  # distinct keys: no two additions meet
            if not has_text:
                raise DataError(f"{_shown(source['path'], data)}: the file has no text")
        for handle in [*keys_out.values(), *offsets_out.values()]:
            handle.close()
        if vocab is None and not lines["train"]:
            raise DataError(f"{', '.join(map(str, data.train))}: no training lines")

        # the vocabulary, and the table from keys to ids
        symbols = level.symbols()
        if eos and len(counts) > level.terminator:
            counts[level.terminator] = 0  # the line break is <EOS> here, not a token
        if vocab is None:
            present = np.flatnonzero(counts)
            vocab = Vocabulary.from_counts({symbols[k]: int(counts[k]) for k in present}, data.max_vocab, data.min_count,
                                           keep=() if eos else (NEWLINE,))  # the line break as a token: every line's end, never <UNK>
        dtype = np.dtype("<u2") if len(vocab) <= 1 << 16 else np.dtype("<u4")
        table = _key_table(symbols, vocab, level.terminator, eos, max(len(counts), len(symbols))).astype(dtype)

        # pass 2: keys -> ids, and the hashes of the training lines
        seen_parts = []
        for name in names:
            _remap(directory, name, table, dtype, seen_parts if name == "train" else None, mix64(np.arange(len(vocab), dtype=np.uint64) ^ _SALT))
        seen = np.unique(np.concatenate(seen_parts)) if seen_parts else np.zeros(0, np.uint64)
        seen.astype("<u8").tofile(directory / "seen.u64")

    record = {"train_files": list(map(str, data.train)), "train_fingerprint": fingerprint.hexdigest()[:16]}
    if made_split:
        record["made_split"] = {"valid": data.split[0], "test": data.split[1], "seed": data.split_seed, "rule": "permutation by line index (rnnkit.data.corpus)"}
    for name in ("valid", "test"):
        path = getattr(data, name, None)
        if path:
            record[f"{name}_file"] = path
    present = names if evaluating else ["train", *(n for n in ("valid", "test") if made_split or getattr(data, n))]
    record["lines"] = {name: lines[name] for name in present}
    meta = {
        "format": FORMAT,
        "settings": _settings(data),
        "sources": sources,
        "dtype": dtype.str,
        "lines": record["lines"],
        "tokens": {name: totals[name] for name in record["lines"]},
        "vocab_size": len(vocab),  # checked against vocab.json when opened
        "seen_lines": len(seen),  # and against seen.u64: cut to whole keys, it read without a word
        "record": record,
    }
    (directory / "vocab.json").write_text(json.dumps({"tokens": vocab.tokens}, ensure_ascii=False), encoding="utf-8")
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer.config(), ensure_ascii=False), encoding="utf-8")
    meta["digests"] = {name: _digest(directory / name) for name in ("vocab.json", "tokenizer.json")}  # checked when opened
    (directory / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")  # last: marks the store complete


def _shown(path: str, data) -> str:
    """A source path as the user wrote it (messages name what was typed)."""
    for given in [*data.train, data.valid, data.test]:
        if given and str(Path(given).resolve()) == path:
            return str(given)
    return path


def _worker_ignores_interrupts(parent: int) -> None:
    """A tokenizing worker leaves Ctrl-C to the main process, which stops the pool and says
    "interrupted" once (otherwise each worker prints its own KeyboardInterrupt traceback); SIGTERM,
    which the pool sends its workers to stop them, ends a worker at once. On Linux a worker also
    ends, silently, when the main process is killed (``kill -9``): it would otherwise print a
    BrokenPipeError traceback as its next result found no reader."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request was in place
            os._exit(0)


def _train_lines(paths: list[str], splitter: _Splitter, eos: bool, bar, max_line_bytes: int | None = None) -> Iterator[str]:
    """The training split's lines, as text, in file order (for fitting BPE)."""
    index = 0
    for path in paths:
        for _, text in text_pieces(path, bar, max_line_bytes=max_line_bytes):
            lines = text.split("\n")[:-1]
            if eos:
                lines = [line for line in lines if line.strip()]
            label = splitter.labels(index, len(lines), TRAIN)
            index += len(lines)
            yield from (line for i, line in enumerate(lines) if isinstance(label, int) or label[i] == TRAIN)


def _key_table(symbols, vocab: Vocabulary, terminator: int, eos: bool, size: int) -> np.ndarray:
    """(keys,) int64: the id of each key's token (``<UNK>`` outside the vocabulary); the terminator
    is ``<EOS>`` or the ``\\n`` token."""
    table = np.full(size, vocab.unk_id, np.int64)
    if isinstance(symbols, _CodePoints):
        for token, i in vocab.ids.items():
            if len(token) == 1:
                table[ord(token)] = i
    else:
        for key, token in enumerate(symbols[:size]):
            table[key] = vocab.ids.get(token, vocab.unk_id)  # as Vocabulary.encode: "<PAD>" or "<EOS>" in the text is <UNK>
    table[terminator] = vocab.eos_id if eos else vocab.ids.get(NEWLINE, vocab.unk_id)
    return table


def _remap(directory: Path, name: str, table: np.ndarray, dtype: np.dtype, seen_parts: list | None, mixed: np.ndarray) -> None:
    """``name.keys.tmp`` -> ``name.ids`` through ``table``, block by block; with ``seen_parts``, the
    hashes of the lines (their ids without the terminator)."""
    keys_path, ids_path = directory / f"{name}.keys.tmp", directory / f"{name}.ids"
    ends = np.memmap(directory / f"{name}.offsets", np.int64, mode="r")[1:]  # (lines,) exclusive ends
    with open(keys_path, "rb") as keys_in, open(ids_path, "wb") as ids_out:
        done, carry, carry_line = 0, np.uint64(0), 0
        while True:
            keys = np.fromfile(keys_in, np.dtype("<u4"), BLOCK_TOKENS)
            if not len(keys):
                break
            ids = table[keys]  # (block,) of the store's dtype
            ids_out.write(ids.data)
            if seen_parts is not None:
                carry, carry_line = _hash_block(ids, done, ends, carry, carry_line, seen_parts, mixed)
            done += len(keys)
    keys_path.unlink()


def _hash_block(ids: np.ndarray, t0: int, ends: np.ndarray, carry, carry_line: int, seen_parts: list, mixed: np.ndarray):
    """Add the hashes of the lines that end in this block of ids (starting at token ``t0``) to
    ``seen_parts``; a line that runs on into the next block is carried as a partial sum."""
    t1 = t0 + len(ids)
    first = carry_line  # the line holding token t0
    last = int(np.searchsorted(ends, t1, side="left"))  # the line holding token t1 - 1
    line_ends = ends[first : last + 1]
    line_starts = np.concatenate([[ends[first - 1] if first else 0], line_ends[:-1]])
    in_block = np.minimum(line_ends, t1) - np.maximum(line_starts, t0)
    # Σ_t mix(id_t)·(2·(g_t − start) + 1) over a line's tokens at global indices g_t, written as
    # 2·(Σ m·g − start·Σ m) + Σ m (wrapping uint64 arithmetic is linear): two sums per line and
    # no per-token position (what _token_values computes, token by token, for one sequence)
    m = mixed[ids]  # (block,) uint64
    m[line_ends[line_ends <= t1] - 1 - t0] = 0  # the terminator is not hashed
    cuts = np.concatenate([[0], np.cumsum(in_block)[:-1]])  # (lines in block,)
    with np.errstate(over="ignore"):
        s1 = np.add.reduceat(m, cuts)
        s2 = np.add.reduceat(m * np.arange(t0, t1, dtype=np.uint64), cuts)
        sums = (s2 - line_starts.astype(np.uint64) * s1) * np.uint64(2) + s1
        sums[0] += carry
    finished = line_ends <= t1  # all but perhaps the last line
    if finished.any():
        seen_parts.append(np.unique(_finish(sums[finished], (line_ends - line_starts - 1)[finished])))
    return (np.uint64(0), last + 1) if finished[-1] else (sums[-1], last)


def encode_file(path: str | Path, tokenizer: Tokenizer, vocab: Vocabulary, line_breaks: str, directory: str | Path) -> CorpusSplit:
    """A text file (``"-"``: standard input, copied to ``directory`` first) tokenized as a trained
    run reads text, into ``directory`` as the split "file" (``rnnkit eval``: evaluation that streams).
    An OS error writing there (a full disk) is one ``DataError`` naming the folder and TMPDIR."""
    try:
        return _encode_file(path, tokenizer, vocab, line_breaks, directory)
    except OSError as error:
        if error.filename and not str(error.filename).startswith(str(directory)):
            raise  # a source file's own: its name is in it
        why = "; the disk is full" if error.errno == errno.ENOSPC else ""
        raise DataError(f"the temporary folder {directory}: {error.strerror or error} (while encoding {'standard input' if str(path) == '-' else path} "
                        f"to evaluate it{why}; TMPDIR chooses where)") from None


def _encode_file(path: str | Path, tokenizer: Tokenizer, vocab: Vocabulary, line_breaks: str, directory: str | Path) -> CorpusSplit:
    from types import SimpleNamespace

    stream = str(path) != "-" and _is_stream(path)  # a named pipe, <(...), /dev/stdin: read once, as standard input is
    if str(path) == "-" or stream:
        copy = Path(directory) / "stdin.txt"
        with copy.open("wb") as out:
            if stream:
                with open_bytes(path) as source:
                    shutil.copyfileobj(source, out)
            else:
                shutil.copyfileobj(getattr(sys.stdin, "buffer", None) or _EncodedText(sys.stdin), out)
        try:
            return encode_file(copy, tokenizer, vocab, line_breaks, directory)
        except DataError as error:
            raise DataError(str(error).replace(str(copy), str(path) if stream else "<stdin>")) from None
    data = SimpleNamespace(train=[str(path)], valid=None, test=None, level=tokenizer.kind, lowercase=getattr(tokenizer, "lowercase", False), line_breaks=line_breaks, split=(0, 0), split_seed=0, max_vocab=None, min_count=1, bpe_vocab=None)
    source = _sources(data, run_data=False)[0]
    source["split"] = "file"
    directory = Path(directory)
    _build(data, [source], directory, progress=False, vocab=vocab, tokenizer=tokenizer)
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    return CorpusSplit(directory, "file", meta["dtype"])


def _is_stream(path: str | Path) -> bool:
    """Whether ``path`` exists and is neither a regular file nor a directory (a pipe, a device)."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return False  # named as missing by the reader
    return not S_ISREG(mode) and not S_ISDIR(mode)


class _EncodedText:
    """A text stream read as UTF-8 bytes (standard input replaced by a text stream, in tests)."""

    def __init__(self, stream):
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size).encode("utf-8", "surrogatepass")


# -- batches of sentences read from the store ----------------------------------------------------------------
class CorpusSentenceBatches:
    """Batches of sentences (lines) of a ``CorpusSplit``, padded, with their lengths; each is read
    from the store when its batch comes, so memory holds one batch, whatever the corpus.

    The order of an epoch (shuffled), deterministic per (seed, epoch) and computed per batch:

    * the sentences in the order π_e(0), π_e(1), ... (``permute`` keyed by seed and epoch);
    * cut into pools of ``POOL`` batches (``POOL · batch_size`` sentences); within a pool, sorted by
      length (stable), so a batch holds sentences of similar length (little padding);
    * the pools' batches, numbered pool by pool, taken in the order of a second permutation.

    Batch k of epoch e is thus found without listing the others (resume from any k is exact), and
    under torchrun each process reads only its share of each batch (every ``world``-th sentence from
    its rank). Without shuffling: consecutive sentences, in the file's order.
    """

    POOL = 50

    def __init__(self, split: CorpusSplit, batch_size: int, seed: int = 0, shuffle: bool = True, pad_id: int = 0):
        if not len(split):
            raise DataError("no sequences to batch")
        self.split, self.batch_size, self.seed, self.shuffle, self.pad_id = split, batch_size, seed, shuffle, pad_id

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def indices(self, epoch: int, k: int) -> np.ndarray:
        """The sentences of batch ``k`` of ``epoch``: (≤ batch_size,) int64."""
        n, size = len(self.split), self.batch_size
        if not 0 <= k < len(self):
            raise IndexError(f"batch {k} of an epoch of {len(self)}")
        if not self.shuffle:
            return np.arange(k * size, min((k + 1) * size, n))
        g = int(permute(np.array([k]), len(self), derive_key(self.seed, epoch, 2))[0])
        pool, r = divmod(g, self.POOL)
        positions = np.arange(pool * self.POOL * size, min((pool + 1) * self.POOL * size, n))
        members = permute(positions, n, derive_key(self.seed, epoch, 1))
        by_length = members[np.argsort(self.split.lengths(members), kind="stable")]
        return by_length[r * size : (r + 1) * size]

    def iterate(self, epoch: int, start: int = 0, shard=None) -> Iterator:
        """The batches of ``epoch`` from batch ``start`` on (``TokenBatch``: (T, B) tokens and lengths);
        with a shard, this process's share of each."""
        from ..distributed import SINGLE, StandIn, share_of
        from .batches import pad_sequences

        for k in range(start, len(self)):
            mine, stand_in = share_of(list(self.indices(epoch, k)), shard or SINGLE)
            batch = pad_sequences([self.split.sentence(i) for i in mine], self.pad_id)
            yield StandIn(batch) if stand_in else batch
