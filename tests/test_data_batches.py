"""Batching (rnnkit/data/batches.py): sentence batches, deterministic per epoch, that cover every
sequence and resume mid-epoch; stream batches laid out in columns for truncated backpropagation."""

from __future__ import annotations

import torch

from rnnkit.data.batches import SentenceBatches, StreamBatches


def test_sentence_batches_are_deterministic_per_epoch_and_cover_everything():
    sequences = [[3] * n + [2] for n in range(1, 40)]
    batches = SentenceBatches(sequences, batch_size=8, seed=1)
    first = [b.tokens.clone() for b in batches.iterate(0)]
    again = [b.tokens for b in batches.iterate(0)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert batches.order(0) != batches.order(1)
    assert sorted(i for batch in batches.order(0) for i in batch) == list(range(39))
    resumed = list(batches.iterate(0, start=2))
    assert torch.equal(resumed[0].tokens, first[2])
    batch = next(batches.iterate(0))
    for b, n in enumerate(batch.lengths.tolist()):
        assert batch.tokens[n - 1, b] == 2 and torch.all(batch.tokens[n:, b] == 0)  # <EOS> then <PAD>


def test_stream_batches_layout():
    stream = StreamBatches(list(range(3, 27)), batch_size=4, bptt=3)  # 24 tokens: 4 columns of 6
    chunks = list(stream.iterate(0))
    assert len(chunks) == 2
    assert chunks[0].tokens[:, 0].tolist() == [3, 4, 5] and chunks[0].previous is None
    assert chunks[1].tokens[:, 0].tolist() == [6, 7, 8] and chunks[1].previous.tolist() == [5, 11, 17, 23]


def test_stream_batches_tail_continues_the_last_column():
    stream = StreamBatches(list(range(3, 30)), batch_size=4, bptt=3)  # 27 tokens: 4 columns of 6, 3 left over
    tail = stream.tail()
    assert tail.tokens[:, 0].tolist() == [27, 28, 29] and tail.previous.tolist() == [26]  # column 4 ends at 26
    assert StreamBatches(list(range(3, 27)), batch_size=4, bptt=3).tail() is None  # 24 tokens: nothing left over
