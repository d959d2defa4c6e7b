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


def test_decomposed_unicode_reads_as_composed_at_every_level(tmp_path):
    """Text in Unicode's decomposed form (macOS, some keyboards: "a" + U+0308) was cut at the mark by
    the word rule ("Ma", "̈", "dchen") and met a vocabulary built from composed text as <UNK>."""
    import unicodedata

    from rnnkit.data.conll import read_conll
    from rnnkit.data.corpus import prepare_corpus
    from rnnkit.data.tokenizers import make_tokenizer
    from rnnkit.tasks.language_model import LMDataConfig

    composed = "Ein Mädchen läuft über das Gras ."
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    for kind in ("char", "word", "whitespace"):
        tokenizer = make_tokenizer({"kind": kind, "lowercase": False})
        assert tokenizer.tokenize(decomposed) == tokenizer.tokenize(composed), kind
    assert make_tokenizer({"kind": "word", "lowercase": False}).tokenize(decomposed)[1] == "Mädchen"
    (tmp_path / "t.txt").write_text((decomposed + "\n") * 30, encoding="utf-8")
    for level in ("char", "word"):
        corpus = prepare_corpus(LMDataConfig(train=[str(tmp_path / "t.txt")], level=level, split=(0.1, 0.1)), cache=False)
        assert set(corpus.vocab.tokens) >= set(make_tokenizer({"kind": level, "lowercase": False}).tokenize(composed)), level
    (tmp_path / "t.conll").write_text(f"{unicodedata.normalize('NFD', 'Müller')} B-PER\n", encoding="utf-8")
    assert read_conll(tmp_path / "t.conll")[0].tokens == ["Müller"]


SCRIPTS_WITH_MARKS = {
    "हिन्दी भाषा": ["हिन्दी", "भाषा"],  # Devanagari vowel signs (Mc) and virama (Mn)
    "สวัสดีครับ": ["สวัสดีครับ"],  # Thai vowel and tone marks (Mn)
    "مَرْحَبًا بكم": ["مَرْحَبًا", "بكم"],  # Arabic harakat
    "שָׁלוֹם": ["שָׁלוֹם"],  # Hebrew points
    "می‌خواهم": ["می\u200cخواهم"],  # Persian: a zero-width non-joiner inside the word
    "q\u0301uick": ["q\u0301uick"],  # an accent with no composed form
    "👨‍👩‍👧 ok 👍🏽! 🇫🇷": ["👨\u200d👩\u200d👧", "ok", "👍🏽", "!", "🇫🇷"],  # one emoji, one emoji, one flag
    "com\u00adpany 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f": ["company", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"],  # a soft hyphen is no letter; England's flag
    "word\u200b next \u2060 \ufeffend Mary\u200e saw": ["word", "next", "end", "Mary", "saw"],  # invisible characters are no tokens
}


@pytest.mark.parametrize("text", list(SCRIPTS_WITH_MARKS))
def test_the_word_rule_keeps_a_letter_and_its_marks_together_in_every_script(text, tmp_path):
    """Python's \\w holds no combining marks, so the word rule cut "हिन्दी" into six tokens (ह ि न्
    द ी), Thai at every vowel sign, and a family emoji at its joiners; joined back, the text came
    out with spaces inside its words. The corpus reader and an export's pattern cut the same way."""
    import json
    import re

    from rnnkit.data.corpus import prepare_corpus
    from rnnkit.data.tokenizers import word_rule
    from rnnkit.tasks.language_model import LMDataConfig

    word = make_tokenizer({"kind": "word"})
    tokens = word.tokenize(text)
    assert tokens == SCRIPTS_WITH_MARKS[text]
    joined = word.detokenize(tokens)
    assert all(token in joined for token in tokens) and word.tokenize(joined) == tokens  # joined back with its words whole
    from rnnkit.data.tokenizers import IGNORED_CHARACTERS

    exported = json.loads(json.dumps({"pattern": word_rule().pattern, "ignored": IGNORED_CHARACTERS}))  # as the exports' snippets read it
    assert re.findall(exported["pattern"], text.translate(dict.fromkeys(map(ord, exported["ignored"])))) == tokens
    (tmp_path / "t.txt").write_text((text + "\n") * 30, encoding="utf-8")
    corpus = prepare_corpus(LMDataConfig(train=[str(tmp_path / "t.txt")], level="word", split=(0.1, 0.1)), cache=False)
    assert set(tokens) <= set(corpus.vocab.tokens)
    assert not {"\u093f", "\u0e31", "\u200d"} & set(corpus.vocab.tokens)  # no lone mark or joiner became a token


def test_a_bpe_models_unseen_characters_are_named_not_hidden_in_unk():
    """A BPE run cuts a character its alphabet lacks to <UNK> itself: the verbs' lists of unknown
    input ("unknown": [] in translate --json, classify's) were empty for "帽", though the model read <UNK>."""
    pytest.importorskip("tokenizers")
    from rnnkit.cli._inputs import unknown_tokens
    from rnnkit.data.vocab import Vocabulary

    bpe = make_tokenizer({"kind": "bpe", "vocab_size": 60, "lowercase": True})
    bpe.fit(["the cat sat on the mat", "the dog sat on the log"] * 20)
    vocab = Vocabulary.build([bpe.tokenize("the cat sat on the mat the dog log"), ["▁"]])  # "▁" alone: a word's start before a piece
    assert bpe.unseen_characters("The cat 帽 ☃ sat") == ["帽", "☃"]
    assert unknown_tokens(bpe.tokenize("the 帽 cat"), vocab, bpe, "the 帽 cat") == ["帽"]
    assert unknown_tokens(bpe.tokenize("the cat"), vocab, bpe, "the cat") == []
    assert make_tokenizer({"kind": "word"}).unseen_characters("帽") == []  # the vocabulary decides at the other levels


def test_an_invisible_character_inside_a_decomposed_letter_is_removed_before_composing():
    """"cafe" + U+00AD + U+0301 stayed decomposed ("cafe\u0301"): NFC came before the soft hyphen
    went, so the word was another one than "café"."""
    for level in ("char", "word"):
        tokenizer = make_tokenizer({"kind": level})
        assert tokenizer.tokenize("cafe\u00ad\u0301") == tokenizer.tokenize("caf\u00e9"), level


def test_the_penn_treebanks_unk_is_one_token_at_the_bpe_level_read_as_unk(tmp_path):
    """BPE learned PTB's "<unk>" (5 % of its tokens) as text: pieces such as "▁<unk>" that samples drew
    and scores counted as words, where the other levels read the marker as <UNK>."""
    pytest.importorskip("tokenizers")
    from rnnkit.data.vocab import Vocabulary

    bpe = make_tokenizer({"kind": "bpe", "vocab_size": 80})
    bpe.fit(["the <unk> sat on the mat", "the dog sat on the <unk>"] * 20)
    tokens = bpe.tokenize("the <unk> sat")
    assert "<unk>" in tokens and not any("unk" in t for t in tokens if t != "<unk>")
    vocab = Vocabulary.build([bpe.tokenize(line) for line in ["the <unk> sat on the mat"] * 3])
    assert vocab.encode(["<unk>"]) == [vocab.unk_id]
    assert make_tokenizer(bpe.config()).tokenize("the <unk> sat") == tokens


def test_a_pad_or_eos_written_in_the_text_is_one_token_at_the_bpe_level_read_as_unk():
    """A <EOS> or <PAD> written in the text became pieces ("▁<EOS>") at the bpe level, which samples
    drew mid-line; the other levels read them as <UNK> (docs/input_formats.md)."""
    pytest.importorskip("tokenizers")
    from rnnkit.data.vocab import Vocabulary

    bpe = make_tokenizer({"kind": "bpe", "vocab_size": 80})
    lines = ["a <UNK> b <EOS> c <PAD> d <unk>"] * 50
    bpe.fit(lines)
    tokens = bpe.tokenize(lines[0])
    assert {"<EOS>", "<PAD>"} <= set(tokens) and not any(("EOS" in t or "PAD" in t) and t not in ("<EOS>", "<PAD>") for t in tokens)
    vocab = Vocabulary.build([bpe.tokenize(line) for line in lines])
    assert not any("EOS" in t or "PAD" in t for t in vocab.tokens[3:])
    assert vocab.encode(["<EOS>", "<PAD>"]) == [vocab.unk_id] * 2


def test_a_bpe_vocabulary_below_the_alphabet_is_said(capsys):
    """--bpe-vocab 10 on a text of more characters learned no merge and said nothing."""
    pytest.importorskip("tokenizers")
    bpe = make_tokenizer({"kind": "bpe", "vocab_size": 10})
    bpe.fit(["the quick brown fox jumps over the lazy dog"] * 5)
    assert "--bpe-vocab 10 is below the" in capsys.readouterr().err
    make_tokenizer({"kind": "bpe", "vocab_size": 80}).fit(["the quick brown fox jumps over the lazy dog"] * 5)
    assert "below" not in capsys.readouterr().err
