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
brackets stays one token (``<unk>`` in the Penn Treebank). A letter's combining marks (Unicode
categories Mn, Mc, Me: the vowel signs of Devanagari and Thai, Arabic and Hebrew points, accents
with no composed form) and the zero-width (non-)joiners inside a word belong to the word, as a
symbol's marks, skin-tone modifiers and zero-width-joined symbols (one emoji) and a pair of
regional indicators (one flag), or a black flag and its tag characters (England's) belong to the
symbol. Invisible formatting characters (a soft hyphen, a zero-width space, direction marks:
``IGNORED_CHARACTERS``) are no part of any token: every level reads text without them. Joining puts one space between tokens, none
before ``, . ; : ! ? ) ] } ' ’ %`` and none after ``( [ { $`` (NO_SPACE_BEFORE, NO_SPACE_AFTER).
"""

from __future__ import annotations

import functools
import itertools
import re
import sys
import unicodedata
from typing import ClassVar

from ..errors import UsageError, require

# Python's \w holds letters and digits but not the marks written on them, so a Hindi word (ह ि न ्
# द ी) or a Thai one would be cut at every vowel sign; the marks are listed from Unicode's tables
# (Mn, Mc, Me lie between U+0300 and U+1FFFF, and the variation selectors from U+E0100)
MARK_SPANS = (range(0x300, 0x20000), range(0xE0100, 0xE01F0))
ZERO_WIDTH_JOINERS = "\u200c\u200d"
SKIN_TONES = "\U0001F3FB-\U0001F3FF"
EMOJI_TAGS = "\U000E0020-\U000E007F"  # the tag characters of a subdivision flag (England: 🏴 and six of them)
REGIONAL_INDICATOR = "[\U0001F1E6-\U0001F1FF]"


def _mark_class() -> str:
    """Unicode's combining marks as the inside of a regular-expression character class (ranges of
    ``\\U`` escapes, which Python's ``re`` reads and which survive JSON for the exports)."""
    marks = [c for span in MARK_SPANS for c in span if unicodedata.category(chr(c))[0] == "M"]
    ranges, start = [], marks[0]
    for before, c in zip(marks, marks[1:] + [None]):
        if c != before + 1:
            ranges.append(f"\\U{start:08x}" if start == before else f"\\U{start:08x}-\\U{before:08x}")
            start = c
    return "".join(ranges)


@functools.cache
def word_rule() -> re.Pattern:
    """The word rule (module docstring) as one regular expression, in Python's ``re`` syntax (the
    exports carry its pattern for the snippets). Built on first use (about 50 ms)."""
    marks = _mark_class()
    letter = f"[\\w{marks}{ZERO_WIDTH_JOINERS}]"  # (the invisible IGNORED_CHARACTERS are gone before any rule reads the text)
    word = f"\\w{letter}*(?:['’\\-]\\w{letter}*)*"
    symbol = f"[^\\w\\s](?:\u200d[^\\w\\s]|[{marks}{SKIN_TONES}{EMOJI_TAGS}])*"
    return re.compile(f"<[A-Za-z]+>|{word}|{REGIONAL_INDICATOR}{{2}}|{symbol}")


SENTENCEPIECE_SPACE = "\u2581"  # "▁", SentencePiece's mark of a word's start: "▁two ▁men"
NO_SPACE_BEFORE = set(",.;:!?)]}'’%")
NO_SPACE_AFTER = set("([{$" + SENTENCEPIECE_SPACE)  # the word level cuts "▁two" as "▁" "two": joined back, not "▁ two"


OPENNMT_JOINER = "\uffed"  # "￭", OpenNMT Tokenizer's joiner_annotate mark: "orange ￭-￭ colored hat ￭."


def presegmented(lines, most: int = 2_000) -> str | None:
    """What segmented this text into subwords before rnnkit read it, if anything: SentencePiece
    (pieces starting with "▁" on a third of the tokens), subword-nmt (pieces ending in "@@") or
    OpenNMT's tokenizer (the joiner "￭" on a token in a hundred), from
    the first ``most`` non-blank lines; else None. Such text is read right only by ``--level
    whitespace``: ``bpe`` decodes "▁" as a space, and the word level cuts "@@" apart."""
    tokens = [token for line in itertools.islice((line for line in lines if line.strip()), most) for token in line.split()]
    if tokens and sum(token.startswith(SENTENCEPIECE_SPACE) for token in tokens) >= 0.3 * len(tokens):
        return f"SentencePiece ('{SENTENCEPIECE_SPACE}' at the start of words)"
    if tokens and sum(token.endswith("@@") for token in tokens) >= 0.05 * len(tokens):
        return "subword-nmt's BPE ('@@' at the end of pieces)"
    if tokens and sum(OPENNMT_JOINER in token for token in tokens) >= 0.01 * len(tokens):
        return f"OpenNMT's tokenizer ('{OPENNMT_JOINER}' joiners)"
    return None


def note_if_presegmented(what: str, lines, level: str) -> None:
    """The note, on standard error, when ``lines`` (of ``what``: a file, "the target text") were
    segmented by another tool and ``level`` cuts them again (``presegmented``)."""
    if level != "whitespace" and (tool := presegmented(lines)):
        print(f"rnnkit: note: {what} looks segmented by {tool}; --level {level} cuts and joins it its own way, so what comes out "
              "will not match the file: --level whitespace keeps the pieces as written", file=sys.stderr, flush=True)


# invisible formatting characters that carry no letter: a soft hyphen copied from a web page
# ("com\u00adpany" is "company"), zero-width space, word joiner, direction marks and embeddings,
# invisible operators, U+FEFF. The zero-width (non-)joiners stay: Persian and Indic words and emoji need them
IGNORED_CHARACTERS = ("\u00ad\u061c\u180e\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                      "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\ufeff")
_IGNORED = dict.fromkeys(map(ord, IGNORED_CHARACTERS))


def read_form(text: str, lowercase: bool = False) -> str:
    """``text`` as every level reads it: in Unicode's composed form (NFC: "a" + U+0308 is "ä", as
    most editors write it; macOS file names and some keyboards give the decomposed form, which a
    word rule would cut at the mark and a vocabulary would not hold), without the invisible
    ``IGNORED_CHARACTERS``, lowercased if asked."""
    if not text.isascii():  # ASCII is composed already and holds none of them: the common case costs one scan
        text = unicodedata.normalize("NFC", text.translate(_IGNORED))  # removed first: "e" + U+00AD + U+0301 is "é"
    return text.lower() if lowercase else text


# characters that show nothing by themselves, beside IGNORED_CHARACTERS: the joiners (kept inside
# words, where they shape the letters), combining grapheme joiner, Hangul fillers, Khmer inherent
# vowels, Mongolian and other variation selectors, tags (Unicode's Default_Ignorable_Code_Point)
_SHOWS_NOTHING = re.compile("[\\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
                            "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
                            "\ufff9-\ufffb\U0001d173-\U0001d17a\U000e0000-\U000e0fff]*")


def is_blank_text(text: str) -> bool:
    """Whether ``text`` shows nothing: white space and characters that are invisible by themselves
    (a zero-width joiner or a variation selector alone on a line). Such a line has nothing to read:
    every verb answers it with an empty line, as a blank one."""
    return _SHOWS_NOTHING.fullmatch(text) is not None


def without_invisible_ends(text: str) -> str:
    """``text`` without the white space and format characters (Unicode category Cf: zero-width space,
    joiners, direction marks, U+FEFF) at its ends, which a web page or a spreadsheet leaves on a
    label or a tag: "pos" and "pos" + U+200B print alike and must be one class."""
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start]) == "Cf"):
        start += 1
    while end > start and (text[end - 1].isspace() or unicodedata.category(text[end - 1]) == "Cf"):
        end -= 1
    return text[start:end]


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

    def disagreement(self, level, lowercase) -> str | None:
        """Why this tokenizer is not the one a run's recorded data settings (``level``, ``lowercase``;
        either None: not recorded) describe, in words; None when it is: a run's files that do not
        belong together ({"kind": "word"} on a char run read every name as one <UNK>)."""
        if isinstance(level, str) and self.kind != level:
            return f"a {self.kind} tokenizer, but the run was trained at level {level} (config.json)"
        if isinstance(lowercase, bool) and self.lowercase != lowercase:  # "GOOD FILM" read as <UNK> <UNK>, unsaid
            return (f"a tokenizer that {'lowercases' if self.lowercase else 'keeps the case'}, but the run was trained "
                    f"{'lowercased' if lowercase else 'keeping the case'} (config.json)")
        return None

    def ready(self) -> bool:
        """Whether it can cut text: a subword tokenizer only once fitted (or read with its model)."""
        return True

    def unseen_characters(self, text: str) -> list[str]:
        """The characters of ``text`` the tokenizer itself cuts to ``<UNK>`` (a BPE model's alphabet
        lacks them); none at the other levels, where the vocabulary decides what is unknown."""
        return []

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
        return word_rule().findall(self.cased(text))

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
        out = ""
        for token in tokens:  # spaces between tokens, none around a line break (a --line-breaks token sample's)
            if out and "\n" not in (token, out[-1]):
                out += " "
            out += token
        return out


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
        # the Penn Treebank's <unk>, and a <PAD> or <EOS> written in the text, kept whole, as the other
        # levels keep them (the vocabulary reads each as <UNK>): learned as text, they became pieces
        # ("▁<EOS>") that samples drew mid-line and scores counted as words
        trainer = tk.trainers.BpeTrainer(vocab_size=self.vocab_size, special_tokens=["<UNK>", "<unk>", "<PAD>", "<EOS>"], show_progress=False)
        tokenizer.train_from_iterator((self.cased(line) for line in lines), trainer)
        self._tokenizer = tokenizer
        if tokenizer.get_vocab_size() > self.vocab_size:  # the alphabet alone is larger: no merge learned, unsaid before
            print(f"rnnkit: note: --bpe-vocab {self.vocab_size} is below the {tokenizer.get_vocab_size()} symbols BPE starts from (each "
                  "character of the training text, and its markers): no subword is learned, the text is read character by character",
                  file=sys.stderr, flush=True)  # fmt: skip

    def ready(self):
        return self._tokenizer is not None

    def tokenize(self, text):
        if self._tokenizer is None:
            raise ValueError("the bpe tokenizer has not been trained")
        return self._tokenizer.encode(self.cased(text)).tokens

    def detokenize(self, tokens):
        return self._tokenizer.decoder.decode(tokens)

    def unseen_characters(self, text):
        return [c for c in dict.fromkeys(self.cased(text)) if not c.isspace() and self._tokenizer.token_to_id(c) is None]

    def config(self):
        return {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "lowercase": self.lowercase,
            "model": None if self._tokenizer is None else self._tokenizer.to_str(),
        }
