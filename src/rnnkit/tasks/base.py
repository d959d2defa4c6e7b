"""What every task shares: its configuration keys, the model configuration built from defaults and
the user's values, and the trainer's protocol where a task has nothing of its own to add.

A task sets ``Data`` (its data-configuration dataclass) and ``model_defaults``, and implements
``_batches(split, train)``, ``loss``, ``evaluate`` and ``describe``; it overrides anything below
that it does differently (the language model carries its state across batches, the tagger draws
its <UNK> replacements per batch).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict

from ..training.distributed import SINGLE

CELL_OPTION_KEYS = ("peepholes", "nonlinearity")  # settings that go to the cell, not the model
# tokens that only Penn-Treebank-style tokenization makes ("don't" -> "do n't"): a vocabulary that
# holds them was built from tokenized text (PTB trees, CoNLL), and typed text must be cut the same way
TREEBANK_MARKS = ("n't", "'s", "'re", "'ll")


def treebank_vocabulary(vocab) -> bool:
    """Whether ``vocab`` was built from Penn-Treebank-tokenized text (see ``TREEBANK_MARKS``)."""
    return any(mark in vocab.ids for mark in TREEBANK_MARKS)


def treebank_words(text: str, vocab) -> list[str]:
    """``text`` as the Penn Treebank tokenizes it (NLTK's ``TreebankWordTokenizer``: "n't" and "'s"
    split off, punctuation split, quotes as ``` `` ``` and ``''``), with parentheses written
    ``-LRB-`` / ``-RRB-`` when the vocabulary holds those (raw Treebank files)."""
    from nltk.tokenize.treebank import TreebankWordTokenizer  # imported here: nltk loads slowly

    escaped = any(mark in vocab.ids for mark in ("-LRB-", "-lrb-"))
    return TreebankWordTokenizer().tokenize(text, convert_parentheses=escaped)


def typed_tokens(tokenizer, vocab, text: str) -> list[str]:
    """The tokens of text a user typed, cut the way the training text was.

    A run's tokenizer cuts training text and typed text alike, except the ``whitespace`` one:
    it is for training text that was tokenized already, and typed text is not ("A gorgeous, witty
    movie." would give "gorgeous," and "movie." that no tokenized corpus holds). When the
    vocabulary shows Treebank tokenization, typed text is first cut that way; then the run's
    tokenizer (lowercasing, if it does) as in training.
    """
    if getattr(tokenizer, "kind", None) == "whitespace" and treebank_vocabulary(vocab):
        return tokenizer.tokenize(" ".join(treebank_words(text, vocab)))
    return tokenizer.tokenize(text)


def as_path_list(train) -> list[str]:
    """The ``train`` setting as a list of paths (one path or several)."""
    return [str(p) for p in ([train] if isinstance(train, str) else train)]


class TaskBase:
    Data: type  # the task's data-configuration dataclass
    model_defaults: dict = {}
    splits: dict[str, list]  # split name -> examples, set by the task

    # -- configuration -----------------------------------------------------------------------------------
    @classmethod
    def data_keys(cls) -> set[str]:
        return set(cls.Data.__dataclass_fields__)

    @classmethod
    def model_keys(cls) -> set[str]:
        return {*cls.model_defaults, *CELL_OPTION_KEYS, "cell_options"}

    def data_dict(self) -> dict:
        return asdict(self.data)

    def _model_config(self, sizes: dict, values: dict, defaults: dict | None = None) -> dict:
        """The model's constructor arguments: the sizes the data fixes, then the defaults, then the
        user's ``values``; cell settings gathered into ``cell_options``."""
        config = {**sizes, **(self.model_defaults if defaults is None else defaults), **values}
        options = dict(config.pop("cell_options", None) or {})
        for key in CELL_OPTION_KEYS:
            if config.get(key) is not None:
                options[key] = config[key]
            config.pop(key, None)
        config["cell_options"] = options
        if "head_sizes" in config:
            config["head_sizes"] = list(config["head_sizes"])
        return config

    # -- the trainer's Task protocol ----------------------------------------------------------------------
    def batches_per_epoch(self) -> int:
        return len(self._batches("train", True))

    def start_epoch(self, epoch: int) -> None:
        pass

    def train_batches(self, epoch: int, start: int, shard=SINGLE):
        return self._batches("train", True).iterate(epoch, start, shard)

    def has_split(self, split: str) -> bool:
        return bool(self.splits.get(split))

    def report(self, model, step: int, device) -> list[str]:
        return []

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    # -- for the CLI -------------------------------------------------------------------------------------
    @contextmanager
    def _file_split(self, items: list):
        """``items`` as the split "file" while the block runs (``evaluate_file``)."""
        self.splits["file"] = items
        getattr(self, "_encoded", {}).pop("file", None)
        try:
            yield "file"
        finally:
            del self.splits["file"]
            getattr(self, "_encoded", {}).pop("file", None)
