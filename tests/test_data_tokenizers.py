"""Tokenizers (rnnkit/data/tokenizers.py): each level's rule, and a tokenizer rebuilt from its saved
settings cuts text as the original did."""

from __future__ import annotations

import pytest

from rnnkit.data.tokenizers import make_tokenizer


def test_word_tokenizer_rule_and_round_trip():
    word = make_tokenizer({"kind": "word"})
    tokens = word.tokenize('Cats average 15 hours of sleep a day. "Don\'t" (really) well-known <unk>!')
    assert tokens == ["Cats", "average", "15", "hours", "of", "sleep", "a", "day", ".", '"', "Don't", '"', "(", "really", ")", "well-known", "<unk>", "!"]
    assert word.detokenize(word.tokenize("Hello, world (again)!")) == "Hello, world (again)!"
    char = make_tokenizer({"kind": "char", "lowercase": True})
    assert char.tokenize("Ab c") == ["a", "b", " ", "c"] and char.detokenize(["a", "b"]) == "ab"
    assert make_tokenizer({"kind": "whitespace"}).tokenize(" mr. <unk> is  N ") == ["mr.", "<unk>", "is", "N"]
    with pytest.raises(ValueError, match="unknown tokenizer level 'syllable'"):
        make_tokenizer({"kind": "syllable"})


def test_bpe_tokenizer_learns_and_saves():
    pytest.importorskip("tokenizers")
    bpe = make_tokenizer({"kind": "bpe", "vocab_size": 60})
    bpe.fit(["the cat sat on the mat", "the dog sat on the log"] * 20)
    tokens = bpe.tokenize("the cat sat")
    assert bpe.detokenize(tokens) == "the cat sat"
    again = make_tokenizer(bpe.config())
    assert again.tokenize("the cat sat") == tokens
