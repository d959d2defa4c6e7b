"""The vocabulary (rnnkit/data/vocab.py): specials first, tokens by count with ties in alphabetical
order, the data's own <unk> read as <UNK>, and the JSON round trip a run stores."""

from __future__ import annotations

import pytest

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


def test_tokens_the_vocabulary_leaves_out_are_counted_on_stderr(capsys):
    """--max-vocab and --min-count make tokens <UNK> in training and evaluation, which lowers the
    perplexity: how many is said, once, when the vocabulary is made; nothing when nothing is cut."""
    from rnnkit.data.vocab import Vocabulary

    text = [list("aaaabbbccd")]  # a 4, b 3, c 2, d 1
    Vocabulary.build(text, max_size=5)  # the specials and 2 tokens
    assert capsys.readouterr().err == "rnnkit: the vocabulary keeps 2 of 4 token types (--max-vocab 5): 3 of 10 training tokens (30.0 %) are read as <UNK>\n"
    Vocabulary.build(text, min_count=2)
    assert "keeps 3 of 4 token types (--min-count 2): 1 of 10 training tokens (10.0 %)" in capsys.readouterr().err
    # the data's own <unk> (the Penn Treebank's) is <UNK> too: counted in both figures, not left out of them
    Vocabulary.build([[*text[0], "<unk>", "<unk>"]], min_count=2)
    assert "keeps 3 of 4 token types (--min-count 2): 3 of 12 training tokens (25.0 %)" in capsys.readouterr().err
    Vocabulary.build([["a", "<unk>"]])  # nothing left out by an option: nothing said
    assert capsys.readouterr().err == ""
    Vocabulary.build(text, max_size=50, min_count=1)
    assert capsys.readouterr().err == ""


def test_a_text_of_unknown_and_marker_tokens_only_is_refused():
    """A training text of only <unk>, <EOS> and <PAD> trained silently on an empty vocabulary (its
    samples empty, its perplexity fine-looking), where --min-count leaving no token is refused."""
    from rnnkit.errors import UsageError

    with pytest.raises(UsageError, match=r"the training text holds no token but <EOS>, <PAD>, <UNK>, <unk> \(5 of them.*nothing to learn"):
        Vocabulary.build([["<unk>", "<unk>", "<EOS>"], ["<unk>", "<PAD>"]])
    assert Vocabulary.build([["<unk>", "cat"]]).tokens[-1] == "cat"


def test_a_bpe_text_of_unknown_and_marker_tokens_only_is_refused_too():
    """At --level bpe the same text trained (perplexity 4.00, blank samples marked novel): BPE cuts
    the word-start mark "▁" off before each special it keeps whole, and that mark was taken for text."""
    pytest.importorskip("tokenizers")
    from rnnkit.data.tokenizers import make_tokenizer
    from rnnkit.errors import UsageError

    lines = ["<unk> <unk> <EOS>", "<unk> <PAD>"] * 10
    tokenizer = make_tokenizer({"kind": "bpe", "vocab_size": 100})
    tokenizer.fit(lines)
    assert "\u2581" in {token for line in lines for token in tokenizer.tokenize(line)}  # what was counted as text
    with pytest.raises(UsageError, match=r"the training text holds no token but .*nothing to learn"):
        Vocabulary.build([tokenizer.tokenize(line) for line in lines])
    assert "\u2581cat" in Vocabulary.build([tokenizer.tokenize(line) for line in lines] + [["\u2581cat"]]).tokens
