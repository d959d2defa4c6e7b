"""What every task shares: its configuration keys, the model configuration built from defaults and
the user's values, and the trainer's protocol where a task has nothing of its own to add.

A task sets ``kind``, ``Data`` (its data-configuration dataclass, fields declared with
``rnnkit.settings.setting``), ``model_defaults`` (the model settings of ``MODEL_SETTINGS`` it
takes, with their defaults) and ``summary``/``description``/``examples`` for ``rnnkit train KIND
--help``, whose options are generated from those; it implements ``data_config``, ``prepare``,
``load``, ``model_config``, ``default_run_name``, ``save`` (for ``rnnkit.runs``) and
``_batches(split, train)``, ``loss``, ``evaluate`` and ``describe`` (for the trainer's ``Task``
protocol), and is registered with ``rnnkit.tasks.register_task``. It overrides anything below
that it does differently (the language model carries its state across batches, the tagger draws
its <UNK> replacements per batch). tests/test_task_contract.py writes a whole task this way.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict

from ..cells import CELLS
from ..distributed import SINGLE
from ..engines import ENGINES
from ..models.classifier import POOLINGS
from ..models.seq2seq import ATTENTIONS
from ..settings import dropout_rate, list_of_ints, nonnegative_float, nonnegative_int, option, positive_int, probability

CELL_OPTION_KEYS = ("peepholes", "nonlinearity")  # settings that go to the cell, not the model

# What each model setting means and how the command line reads it, written once for every task: a
# task's ``model_defaults`` say which settings it takes and their defaults, and ``rnnkit train``
# makes an option of each (``rnnkit.settings``). A key missing here still gets its option, typed
# by its default, without help. Choices are functions so that they read the registries when asked.
MODEL_SETTINGS: dict[str, dict] = {
    # the cells listed, not enforced by argparse: an unknown one gets the cell registry's own one-line error
    "cell": option(metavar=lambda: "{" + ",".join(CELLS) + "}", help="the recurrent cell (rnnkit cells shows their equations)"),
    "hidden_size": option(type=positive_int, help="units per direction"),
    "num_layers": option(type=positive_int, help="stacked recurrent layers"),
    "bidirectional": option(type=bool, help="read both ways", off_flag="--one-direction", off_help="read left to right only"),
    "dropout": option(type=dropout_rate, help="on inputs, between layers and before the output"),
    "head_sizes": option(type=list_of_ints, help="deep non-recurrent head, e.g. 256,256"),
    "engine": option(choices=lambda: ("auto", *ENGINES), help="how the layers run over time, each proven equal to reference; auto picks for this machine"),
    "peepholes": option(type=bool, help="LSTM peephole connections"),
    "nonlinearity": option(choices=("tanh", "relu"), help="for --cell rnn"),
    "embedding_size": option(type=positive_int, help="token embedding size"),
    "tie_embeddings": option(type=bool, help="share the output layer with the embedding"),
    "word_embedding_size": option(type=positive_int, help="word embedding size"),
    "char_embedding_size": option(type=positive_int, help="character embedding size"),
    "char_hidden_size": option(type=nonnegative_int, help="character BiLSTM units per direction (0 = no character features)"),
    "casing_size": option(type=nonnegative_int, help="casing feature size (0 = none)"),
    "crf": option(type=bool, help="CRF output layer", off_help="independent softmax per word"),
    "pooling": option(choices=lambda: tuple(POOLINGS), help="how the outputs over time become one vector"),
    "word_dropout": option(type=dropout_rate, help="probability of replacing a word by <UNK> in training"),
    "attention": option(choices=lambda: (*ATTENTIONS, "none"), help="how the decoder reads the encoder's outputs"),
    "input_feeding": option(type=bool, help="feed the previous attentional vector to the decoder"),
    "teacher_forcing": option(type=probability, help="probability of feeding the true previous token"),
    "shared_embeddings": option(type=bool, help="one embedding for both sides (needs --shared-vocab)"),
    "input_dropout": option(type=dropout_rate, help="dropout on the inputs of the recurrent layers (none: --dropout)"),
    # the regularisers of rnnkit.regularisers (AWD-LSTM, Merity et al. 2017), training only
    "locked_dropout": option(type=bool, help="one dropout mask per sequence, shared by its time steps (variational dropout), on inputs, between layers and on outputs"),
    "weight_drop": option(type=dropout_rate, help="DropConnect on the recurrent weights: probability of zeroing each entry of W_a, one mask per batch"),
    "embedding_dropout": option(type=dropout_rate, help="probability of dropping a whole word from the embedding matrix, per batch"),
    "ar_alpha": option(type=nonnegative_float, help="activation regularisation: alpha x mean squared dropped output, added to the training loss (AWD-LSTM: 2)"),
    "tar_beta": option(type=nonnegative_float, help="temporal activation regularisation: beta x mean of (a<t> - a<t-1>)^2, added to the training loss (AWD-LSTM: 1)"),
}
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
    """The ``train`` setting as a list of paths (one path or several; "", the default, is none)."""
    return [str(p) for p in ([train] if isinstance(train, str) else train) if str(p)]


class TaskBase:
    kind: str  # its name in the task registry and on the command line: rnnkit train KIND
    Data: type  # the task's data-configuration dataclass (its fields: rnnkit.settings)
    model_defaults: dict = {}  # the model settings it takes (MODEL_SETTINGS) and their defaults
    summary: str = ""  # for rnnkit train --help: one line
    description: str = ""  # for rnnkit train KIND --help: a paragraph ...
    examples: str = ""  # ... and command lines
    splits: dict[str, list]  # split name -> examples, set by the task

    # -- configuration -----------------------------------------------------------------------------------
    @classmethod
    def model_settings(cls) -> list[tuple[str, object, dict, str]]:
        """``(name, default, metadata, annotation)`` of each model setting the task takes, in the
        order of ``MODEL_SETTINGS`` (for ``rnnkit.settings.settings_of``'s readers: the command line)."""
        keys = cls.model_keys() - {"cell_options"}
        ordered = [key for key in MODEL_SETTINGS if key in keys] + sorted(keys - MODEL_SETTINGS.keys())
        return [(key, cls.model_defaults.get(key), MODEL_SETTINGS.get(key, {}), "") for key in ordered]

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

    def initialise(self, model) -> None:
        """Starting weights that the data settings bring (pre-trained word vectors, another run's
        weights), set in the freshly built ``model`` before training; nothing by default."""

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
