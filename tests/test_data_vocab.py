"""The vocabulary (rnnkit/data/vocab.py): specials first, tokens by count with ties in alphabetical
order, the data's own <unk> read as <UNK>, and the JSON round trip a run stores."""

from __future__ import annotations

from rnnkit.data.vocab import Vocabulary


def test_vocabulary_rules_and_round_trip():
    sentences = [["the", "cat", "sat"], ["the", "dog", "<unk>"], ["a", "cat"]]
    vocab = Vocabulary.build(sentences, max_size=6)
    assert vocab.tokens[:3] == ["<PAD>", "<UNK>", "<EOS>"]
    assert vocab.tokens[3:] == ["cat", "the", "a"]  # by count, ties alphabetical; max_size counts specials
    assert "<unk>" not in vocab  # the data's own unknown marker is <UNK>
    ids = vocab.encode(["the", "dog", "<unk>", "cat"], eos=True)
    assert ids == [vocab.ids["the"], vocab.unk_id, vocab.unk_id, vocab.ids["cat"], vocab.eos_id]
    assert vocab.decode(ids) == ["the", "<UNK>", "<UNK>", "cat"]
    assert vocab.decode([vocab.ids["a"], vocab.pad_id, vocab.eos_id, vocab.ids["cat"]]) == ["a"]  # PAD skipped, stop at EOS
    assert Vocabulary.from_json(vocab.to_json()).tokens == vocab.tokens
    assert Vocabulary.build(sentences, min_count=2).tokens[3:] == ["cat", "the"]
