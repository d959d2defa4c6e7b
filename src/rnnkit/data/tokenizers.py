"""Tokenizers: text -> tokens -> text, one per level, in a registry. Saved with every run, so that
scoring and sampling cut text exactly as training did.

* ``char``: every character is a token.
* ``word``: the documented rule below; ``lowercase`` optional.
* ``whitespace``: split on white space only, for text that is already tokenized (Penn Treebank).
* ``bpe``: byte-pair-encoding subwords learned from the training text with the ``tokenizers``
  library (``pip install rnnkit[subword]``).

The word rule: a token is a run of letters and digits, which may contain an apostrophe or a hyphen
between two such runs (``don't``, ``well-known``, ``3.5`` is ``3 . 5``); every other character
that is not white space is a token of its own (``,`` ``.`` ``"`` ``(``); a ``<word>`` in angle
brackets stays one token (``<unk>`` in the Penn Treebank). Joining puts one space between tokens,
none before ``, . ; : ! ? ) ] }`` and none after ``( [ {``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import ClassVar

from ..errors import UsageError, require

WORD = re.compile(r"<[A-Za-z]+>|\w+(?:['’\-]\w+)*|[^\w\s]")
NO_SPACE_BEFORE = set(",.;:!?)]}'’%")
NO_SPACE_AFTER = set("([{$")


def read_form(text: str, lowercase: bool = False) -> str:
    """``text`` as every level reads it: in Unicode's composed form (NFC: "a" + U+0308 is "ä", as
    most editors write it; macOS file names and some keyboards give the decomposed form, which a
    word rule would cut at the mark and a vocabulary would not hold), lowercased if asked."""
    if not text.isascii():  # ASCII is composed already: the common case costs one scan
        text = unicodedata.normalize("NFC", text)
    return text.lower() if lowercase else text


class Tokenizer:
    """Cuts text into tokens and joins them back; ``lowercase``: the text is lowercased first."""

    kind: ClassVar[str]

    def __init__(self, lowercase: bool = False):
        self.lowercase = lowercase

    def cased(self, text: str) -> str:
        """``text`` as the tokenizer reads it (``read_form``): composed, lowercased if it lowercases."""
        return read_form(text, self.lowercase)

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def detokenize(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def fit(self, lines: list[str]) -> None:
        """Learn from the training text (only subword tokenizers learn anything)."""

    def config(self) -> dict:
        """What ``make_tokenizer`` rebuilds the tokenizer from (saved with a run)."""
        return {"kind": self.kind, "lowercase": self.lowercase}


TOKENIZERS: dict[str, type[Tokenizer]] = {}


def register_tokenizer(cls):
    TOKENIZERS[cls.kind] = cls
    return cls


def make_tokenizer(config: dict) -> Tokenizer:
    """Rebuild a tokenizer from its saved ``config()``."""
    config = dict(config)
    kind = config.pop("kind")
    if kind not in TOKENIZERS:
        raise UsageError(f"unknown tokenizer level {kind!r}; choose one of: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[kind](**config)


@register_tokenizer
class CharTokenizer(Tokenizer):
    kind = "char"

    def tokenize(self, text):
        return list(self.cased(text))

    def detokenize(self, tokens):
        return "".join(tokens)


@register_tokenizer
class WordTokenizer(Tokenizer):
    kind = "word"

    def tokenize(self, text):
        return WORD.findall(self.cased(text))

    def detokenize(self, tokens):
        out = ""
        for token in tokens:
            if out and not (token in NO_SPACE_BEFORE or out[-1] in NO_SPACE_AFTER or token == "\n" or out[-1] == "\n"):
                out += " "
            out += token
        return out


@register_tokenizer
class WhitespaceTokenizer(Tokenizer):
    kind = "whitespace"

    def tokenize(self, text):
        return self.cased(text).split()

    def detokenize(self, tokens):
        return " ".join(tokens)


@register_tokenizer
class BPETokenizer(Tokenizer):
    """Byte-pair-encoding subwords (Sennrich et al. 2016) learned with the ``tokenizers`` library."""

    kind = "bpe"

    def __init__(self, vocab_size: int = 4000, lowercase: bool = False, model: str | None = None):
        super().__init__(lowercase)
        self.vocab_size = vocab_size
        self._tokenizer = None
        if model is not None:
            self._tokenizer = self._library().Tokenizer.from_str(model)

    @staticmethod
    def _library():
        return require("tokenizers", extra="subword", purpose="level 'bpe' learns its subwords")

    def fit(self, lines):
        tk = self._library()
        tokenizer = tk.Tokenizer(tk.models.BPE(unk_token="<UNK>"))
        tokenizer.pre_tokenizer = tk.pre_tokenizers.Metaspace()
        tokenizer.decoder = tk.decoders.Metaspace()
        trainer = tk.trainers.BpeTrainer(vocab_size=self.vocab_size, special_tokens=["<UNK>"], show_progress=False)
        tokenizer.train_from_iterator((self.cased(line) for line in lines), trainer)
        self._tokenizer = tokenizer

    def tokenize(self, text):
        if self._tokenizer is None:
            raise ValueError("the bpe tokenizer has not been trained")
        return self._tokenizer.encode(self.cased(text)).tokens

    def detokenize(self, tokens):
        return self._tokenizer.decoder.decode(tokens)

    def config(self):
        return {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "lowercase": self.lowercase,
            "model": None if self._tokenizer is None else self._tokenizer.to_str(),
        }
