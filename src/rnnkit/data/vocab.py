"""The vocabulary: tokens <-> ids, with the three special tokens every model shares.

* ``<PAD>`` (id 0) fills padded positions; losses ignore it. Written in a text, it reads as ``<UNK>``.
* ``<UNK>`` (id 1) stands for every token outside the vocabulary; ``<unk>`` in the data (the Penn
  Treebank's marker) maps to it too.
* ``<EOS>`` (id 2) ends each sentence or line, where rnnkit puts it; written in a text, it reads as
  ``<UNK>`` too (a line of the text is not cut in two).

The vocabulary is built from the training data: tokens by count, most frequent first (ties in
alphabetical order, so the same data always gives the same ids), at most ``max_size`` of them
(specials included), each seen at least ``min_count`` times.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from ..errors import UsageError
from .tokenizers import SENTENCEPIECE_SPACE

PAD, UNK, EOS = "<PAD>", "<UNK>", "<EOS>"
SPECIALS = (PAD, UNK, EOS)
UNK_ALIASES = frozenset({UNK, "<unk>"})


class Vocabulary:
    pad_id, unk_id, eos_id = 0, 1, 2

    def __init__(self, tokens: Sequence[str]):
        if tuple(tokens[:3]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {', '.join(SPECIALS)}")
        if len(set(tokens)) != len(tokens):  # one token, two ids: a file edited by hand, whose text would read as one of them
            seen: set[str] = set()
            twice = next(token for token in tokens if token in seen or seen.add(token))
            raise ValueError(f"the token {twice!r} is listed twice")
        self.tokens = list(tokens)
        # token -> id for reading text: a "<PAD>" written in the text is no padding (which every loss
        # skips: it would vanish from training and scores), and an "<EOS>" no end of the line (the model
        # would learn to stop mid-line), so they read as <UNK>, as any unknown token; encode(eos=True) adds the real one
        self.ids = {token: i for i, token in enumerate(self.tokens) if token not in (PAD, EOS)}

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], max_size: int | None = None, min_count: int = 1) -> "Vocabulary":
        """The vocabulary of ``sequences``: the specials, then tokens by count (ties alphabetical).

        >>> vocab = Vocabulary.build([["the", "cat"], ["the", "dog"]])
        >>> vocab.tokens
        ['<PAD>', '<UNK>', '<EOS>', 'the', 'cat', 'dog']
        >>> vocab.encode(["the", "cow"], eos=True)
        [3, 1, 2]
        """
        return cls.from_counts(Counter(token for sequence in sequences for token in sequence), max_size, min_count)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], max_size: int | None = None, min_count: int = 1, keep: Iterable[str] = ()) -> "Vocabulary":
        """The vocabulary of tokens counted elsewhere (rnnkit.data.corpus counts while streaming).
        ``keep``: tokens kept whatever ``max_size`` and ``min_count`` say, as the specials are (the
        line break of ``--line-breaks token``, which ends lines as <EOS> does otherwise)."""
        marked = sum(n for token, n in counts.items() if token in UNK_ALIASES or token in (PAD, EOS))  # <unk> in the data: <UNK> already
        counts = {token: n for token, n in counts.items() if token not in UNK_ALIASES and token not in SPECIALS}
        kept = {token for token in keep if token in counts}
        ranked = sorted((token for token, n in counts.items() if n >= min_count and token not in kept), key=lambda t: (-counts[t], t))
        # BPE's word-start mark alone is the space before a special kept whole ("▁", "<unk>"): no text of its own
        if not set(counts) - {SENTENCEPIECE_SPACE} and marked:  # a text of <unk>, <EOS> and <PAD> only: the same model that learns nothing
            raise UsageError(f"the training text holds no token but {', '.join(sorted(UNK_ALIASES | {PAD, EOS}))} ({marked:,} of them, "
                             "all read as <UNK> or ends): there is nothing to learn")
        if counts.keys() - kept and not ranked:  # every token <UNK>: a model that learns nothing, with a perplexity that looks fine
            raise UsageError(f"--min-count {min_count}: no token is seen that often (the commonest, {max(counts.values())} times)")
        if max_size is not None:
            if counts.keys() - kept and max_size <= len(SPECIALS) + len(kept):
                besides = [*SPECIALS, *(repr(token) for token in sorted(kept))]
                raise UsageError(f"--max-vocab {max_size}: keeps no token besides {', '.join(besides)}, which it counts (give more than {len(besides)})")
            ranked = ranked[: max(0, max_size - len(SPECIALS) - len(kept))]
        ranked = sorted([*ranked, *kept], key=lambda t: (-counts[t], t))  # in the order of the counts, as ever
        _say_what_becomes_unk(counts, ranked, max_size, min_count, marked)
        return cls([*SPECIALS, *ranked])

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.ids

    def encode(self, tokens: Sequence[str], eos: bool = False) -> list[int]:
        """Ids of ``tokens`` (unknown ones become ``<UNK>``), with ``<EOS>`` appended if asked."""
        ids = [self.ids.get(token, self.unk_id) for token in tokens]
        return ids + [self.eos_id] if eos else ids

    def decode(self, ids: Iterable[int], stop_at_eos: bool = True) -> list[str]:
        """Tokens of ``ids``; stops at ``<EOS>`` and skips ``<PAD>``."""
        out = []
        for i in ids:
            if i == self.eos_id and stop_at_eos:
                break
            if i != self.pad_id:
                out.append(self.tokens[i])
        return out

    def to_json(self) -> str:
        return json.dumps({"tokens": self.tokens}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        return cls(json.loads(text)["tokens"])


def _say_what_becomes_unk(counts: Mapping[str, int], kept: list[str], max_size: int | None, min_count: int, marked: int = 0) -> None:
    """One line on standard error when --max-vocab or --min-count leaves tokens out: they are read
    as <UNK> in training and evaluation, and a share of <UNK> makes a perplexity look better than
    the text's (an <UNK> is one easy prediction where the words were many). The share counts every
    training token read as <UNK>, the data's own ``<unk>`` too."""
    total = sum(counts.values()) + marked  # ``marked``: the data's own <unk> (and typed specials), <UNK> whatever is kept
    unk = total - sum(counts[token] for token in kept)
    if unk > marked:  # the options left words out
        options = ", ".join(option for option, given in ((f"--max-vocab {max_size}", max_size is not None), (f"--min-count {min_count}", min_count > 1)) if given)
        print(f"rnnkit: the vocabulary keeps {len(kept):,} of {len(counts):,} token types ({options}): {unk:,} of {total:,} training tokens "
              f"({100 * unk / total:.1f} %) are read as <UNK>", file=sys.stderr, flush=True)  # fmt: skip
