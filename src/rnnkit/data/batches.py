"""Cutting token sequences into training batches, deterministically for a (seed, epoch), so a
resumed run sees exactly the batches an uninterrupted one would.

Two styles:

* ``SentenceBatches``: independent sequences (sentences, lines, names), padded to the longest in
  the batch and passed with their lengths. Sequences of similar length are grouped to waste little
  padding; batch order is shuffled every epoch.
* ``StreamBatches``: one long stream cut into B parallel columns, read in chunks of ``bptt`` steps
  for truncated backpropagation through time; the recurrent state is carried from one chunk to
  the next (the task does that, detached). As in pytorch/examples' word_language_model::

      stream  a b c d e f g h i j k l m n o p q r s t u v w x     (B = 4, bptt = 3)
      columns a g m s                 chunk 0 = rows 0..2: a b c / g h i / m n o / s t u
              b h n t                 chunk 1 = rows 3..5: d e f / j k l / p q r / v w x
              c i o u                 a chunk's first input is the previous chunk's last token
              d j p v                 (x<1> = 0 only at the very start)
              e k q w
              f l r x
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..distributed import SINGLE, Shard, StandIn, share_of
from .textio import DataError
from ..errors import UsageError


# One sequence longer than this is refused where sentences are batched: the batch holding it is
# padded to its length, and the activations kept for backpropagation grow with it (a line of 5
# million characters took 4.9 GB with a small LSTM). Streams (--batching stream) have no such limit.
MAX_SEQUENCE_STEPS = 100_000


def check_sequence_lengths(lengths, where: str, advice: str = "", limit: int = MAX_SEQUENCE_STEPS) -> None:
    """Refuse the input if its longest sequence (``lengths``: any integers, e.g. a numpy array of
    line lengths in tokens) exceeds ``limit`` steps: a one-line ``DataError`` with the figure,
    naming ``where`` (a file), followed by ``advice``."""
    longest = int(max(lengths, default=0))
    if longest > limit:
        raise DataError(f"{where}: a sequence of {longest:,} steps, more than {limit:,}: batched as one sequence it needs absurd memory{advice}")


def check_text_lengths(texts, tokenize, where: str, advice: str = "", limit: int = MAX_SEQUENCE_STEPS) -> None:
    """``check_sequence_lengths`` for raw texts: a text holds at most as many tokens as characters
    (at every level), so only texts longer than ``limit`` characters are tokenized to count them."""
    check_sequence_lengths((len(tokenize(text)) for text in texts if len(text) > limit), where, advice, limit)


@dataclass
class TokenBatch:
    """Targets y<1..T> of a batch; ``previous`` is the token before y<1> when a stream continues
    (otherwise x<1> = 0); ``lengths`` are the true lengths of padded sequences (None: no padding)."""

    tokens: Tensor  # (T, B) int64
    lengths: Tensor | None = None  # (B,)
    previous: Tensor | None = None  # (B,)
    words: list[list[str]] | None = None  # the tokens as read, where a task needs them (--lm-features)

    def to(self, device) -> "TokenBatch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return TokenBatch(self.tokens.to(device), self.lengths, move(self.previous), self.words)

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum()) if self.lengths is not None else self.tokens.numel()


def pad_sequences(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> TokenBatch:
    """(T, B) padded batch of id sequences, with lengths."""
    lengths = torch.tensor([len(s) for s in sequences])
    tokens = torch.full((int(lengths.max()), len(sequences)), pad_id, dtype=torch.long)
    for b, sequence in enumerate(sequences):
        tokens[: len(sequence), b] = torch.tensor(sequence, dtype=torch.long)
    return TokenBatch(tokens, lengths)


@dataclass(eq=False)  # compared and hashed as the one object it is, never by its sequences
class SentenceBatches:
    """Batches of examples (by default id sequences, padded by ``pad_sequences``); ``collate``
    turns a list of examples into a batch and ``length`` gives an example's length for grouping."""

    sequences: Sequence
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    collate: Callable[[list], object] | None = None  # None: pad_sequences
    length: Callable[[object], int] = len

    def __post_init__(self):
        if not self.sequences:
            raise DataError("no sequences to batch")
        self.collate = self.collate or pad_sequences

    def __len__(self) -> int:
        return math.ceil(len(self.sequences) / self.batch_size)

    def order(self, epoch: int) -> list[list[int]]:
        """The batches of one epoch as lists of sequence indices."""
        indices = list(range(len(self.sequences)))
        if not self.shuffle:
            return [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        rng = random.Random(self.seed * 1_000_003 + epoch)
        rng.shuffle(indices)
        pool = self.batch_size * 50  # sort by length within pools: little padding, still random
        batches = []
        for start in range(0, len(indices), pool):
            chunk = sorted(indices[start : start + pool], key=lambda i: self.length(self.sequences[i]))
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        return batches

    def iterate(self, epoch: int, start: int = 0, shard: Shard = SINGLE) -> Iterator:
        """The batches of ``epoch`` from batch ``start`` on; with a shard, this process's share of
        each batch (every ``world``-th example from its rank)."""
        for indices in self.order(epoch)[start:]:
            mine, stand_in = share_of(indices, shard)
            batch = self.collate([self.sequences[i] for i in mine])
            yield StandIn(batch) if stand_in else batch


class StreamBatches:
    """``ids`` cut into ``batch_size`` columns read in chunks of ``bptt`` rows (the diagram above).
    ``ids`` is anything with a length whose slices give ids: a list, a tensor, or a
    ``rnnkit.data.corpus.TokenFile`` (a prepared corpus), from which each chunk reads just its
    rows of this process's columns."""

    def __init__(self, ids: Sequence[int], batch_size: int, bptt: int):
        self.rows = len(ids) // batch_size
        if self.rows < 2:
            raise DataError(f"{len(ids)} tokens are too few for {batch_size} parallel streams")
        self.ids, self.batch_size, self.bptt = ids, batch_size, bptt

    def __len__(self) -> int:
        return math.ceil(self.rows / self.bptt)

    def iterate(self, epoch: int, start: int = 0, shard: Shard = SINGLE) -> Iterator[TokenBatch]:
        """Chunks from chunk ``start`` on; with a shard, every ``world``-th column from its rank
        (``UsageError`` when there are fewer columns than processes: a column carries its state)."""
        if self.batch_size < shard.world:
            raise UsageError(f"--batch-size {self.batch_size}: a stream has a column per sequence and each of the {shard.world} processes "
                             f"needs one; give --batch-size {shard.world} or more")  # fmt: skip
        for i in range(start * self.bptt, self.rows, self.bptt):
            first, stop = max(i - 1, 0), min(i + self.bptt, self.rows)  # from the previous chunk's last row
            columns = [np.asarray(self.ids[b * self.rows + first : b * self.rows + stop], dtype=np.int64) for b in range(shard.rank, self.batch_size, shard.world)]
            block = torch.from_numpy(np.stack(columns, axis=1))  # (stop - first, B / world)
            yield TokenBatch(block[i - first :], None, block[0] if i > 0 else None)

    def tail(self) -> TokenBatch | None:
        """The ids after the last column (fewer than ``batch_size``) as one column (T, 1) that
        continues the last one (``previous``: its last id), or None when there are none: an
        evaluation reads them too, so that every id of the text is scored."""
        start = self.batch_size * self.rows
        if start >= len(self.ids):
            return None
        block = torch.from_numpy(np.asarray(self.ids[start - 1 : len(self.ids)], dtype=np.int64))[:, None]  # (1 + tail, 1)
        return TokenBatch(block[1:], None, block[0])
