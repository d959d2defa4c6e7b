"""What every task shares: its configuration keys, the model configuration built from defaults and
the user's values, and the trainer's protocol where a task has nothing of its own to add.

A task sets ``kind``, ``Data`` (its data-configuration dataclass, fields declared with
``rnnkit.settings.setting``), ``model_defaults`` (the model settings of
``rnnkit.tasks.spec.MODEL_SETTINGS`` it takes, with their defaults), ``vocabularies``/``tokenizers`` (the run files of what it learns from
the data) and ``summary``/``description``/``examples`` for ``rnnkit train KIND --help``, whose
options are generated from those; it implements ``prepare``, ``load``, ``model_config`` (for
``rnnkit.runs``) and ``batches_of(examples, train)``, ``loss``, ``evaluate_examples`` and
``describe`` (for the trainer's ``Task`` protocol; ``rnnkit eval FILE`` reads the file with
``read_file``), and is registered with ``rnnkit.tasks.register_task``. The shared half is here:
``data_config``, ``default_run_name``, ``save``, ``evaluate(split)``, ``evaluate_file``,
``read_splits`` and the summed loss of an evaluation. A task overrides anything below that it
does differently (the language model carries its state across batches, the tagger draws its
<UNK> replacements per batch). tests/test_task_contract.py writes a whole task this way. A
built-in task declares its kind, settings and texts in a torch-free ``*_spec`` module that its
class inherits from, so that ``rnnkit train KIND --help`` reads them without importing torch.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import torch

from ..data.batches import MAX_SEQUENCE_STEPS
from ..data.tokenizers import read_form
from ..data.vocab import UNK_ALIASES
from ..distributed import SINGLE
from ..errors import DataError, UsageError
from .spec import CELL_OPTION_KEYS, TaskSpec

# tokens that only Penn-Treebank-style tokenization makes ("don't" -> "do n't"): a vocabulary that
# holds them was built from tokenized text (PTB trees, CoNLL), and typed text must be cut the same way
TREEBANK_MARKS = ("n't", "'s", "'re", "'ll")


def treebank_vocabulary(vocab) -> bool:
    """Whether ``vocab`` was built from Penn-Treebank-tokenized text (see ``TREEBANK_MARKS``)."""
    return any(mark in vocab.ids for mark in TREEBANK_MARKS)


GO_ON = "rnnkitgoeson"  # a word after a run cut in mid-text, so that NLTK does not take the run's last period for the text's
TREEBANK_QUOTES = ("``", "''")  # standing alone, quotes cut already (NLTK reads "''" after a space as opening)


def known_word(word: str, vocab) -> bool:
    """Whether ``vocab`` holds ``word`` as typed, lowercased, or with digits as 0 (a tagger's
    normalized words), or it is the data's own unknown marker (``<unk>``) or a Treebank quote."""
    lowered = word.lower()
    return word in vocab.ids or lowered in vocab.ids or re.sub(r"\d", "0", lowered) in vocab.ids or word in UNK_ALIASES or word in TREEBANK_QUOTES


def plain_quotes(vocab) -> bool:
    """Whether ``vocab`` writes quotes as ``"`` (CoNLL files), not as the Treebank's ``` `` ``` and ``''``."""
    return '"' in vocab.ids and "``" not in vocab.ids and "''" not in vocab.ids


def treebank_words(text: str, vocab) -> list[str]:
    """``text`` as the Penn Treebank tokenizes it (NLTK's ``TreebankWordTokenizer``: "n't" and "'s"
    split off, punctuation split, quotes as ``` `` ``` and ``''``), with parentheses written
    ``-LRB-`` / ``-RRB-`` when the vocabulary holds those (raw Treebank files), and quotes as ``"``
    when it holds that and not the Treebank's (``plain_quotes``).

    A word the vocabulary holds (``known_word``) is kept as it is: text copied from a tokenized
    corpus was cut already, and cutting it again breaks its tokens (``s&p``, ``<unk>``, ``u.s.``,
    a closing ``''`` that NLTK reads as an opening quote). The words between two such are cut
    together, as NLTK's rules look at their neighbours (a period ends only the text)."""
    from nltk.tokenize.treebank import TreebankWordTokenizer  # imported here: nltk loads slowly

    tokenizer, parentheses = TreebankWordTokenizer(), treebank_parentheses(vocab)
    words: list[str] = []
    groups = [(known, list(run)) for known, run in itertools.groupby(text.split(), key=lambda word: known_word(word, vocab))]
    for i, (known, run) in enumerate(groups):
        if known:
            words += run
            continue
        ends_text = i == len(groups) - 1  # NLTK splits a final period off the text it is given: only the text's own
        cut = tokenizer.tokenize(" ".join(run) + ("" if ends_text else f" {GO_ON}"), convert_parentheses=parentheses)
        words += cut if ends_text else cut[:-1]
    if plain_quotes(vocab):
        words = ['"' if word in ("``", "''") else word for word in words]
    return words


def treebank_parentheses(vocab) -> bool:
    """Whether ``vocab`` writes parentheses as ``-LRB-`` / ``-RRB-`` (raw Treebank files)."""
    return any(mark in vocab.ids for mark in ("-LRB-", "-lrb-"))


def cuts_treebank(tokenizer, vocab) -> bool:
    """Whether typed text is cut the Penn Treebank's way before ``tokenizer`` (``typed_tokens``)."""
    return getattr(tokenizer, "kind", None) == "whitespace" and treebank_vocabulary(vocab)


def typed_text_rule(treebank: bool, vocab) -> dict:
    """How typed text is cut before the tokenizer, for programs outside rnnkit (an export's JSON):
    ``treebank_words``' choices (the words the vocabulary holds are kept, the rest cut)."""
    return {"treebank": treebank, "parentheses": treebank and treebank_parentheses(vocab), "plain_quotes": treebank and plain_quotes(vocab)}


def typed_tokens(tokenizer, vocab, text: str) -> list[str]:
    """The tokens of text a user typed, cut the way the training text was.

    A run's tokenizer cuts training text and typed text alike, except the ``whitespace`` one:
    it is for training text that was tokenized already, and typed text is not ("A gorgeous, witty
    movie." would give "gorgeous," and "movie." that no tokenized corpus holds). When the
    vocabulary shows Treebank tokenization, typed text is first cut that way; then the run's
    tokenizer (lowercasing, if it does) as in training.
    """
    text = read_form(text)  # composed, without invisible characters, before any rule looks at its words
    if cuts_treebank(tokenizer, vocab):
        return tokenizer.tokenize(" ".join(treebank_words(text, vocab)))
    return tokenizer.tokenize(text)


def tokens_to_inspect(tokens: list[str]) -> list[str]:
    """``tokens``, or ``UsageError`` when there are none: ``rnnkit inspect`` has nothing to show."""
    if not tokens:
        raise UsageError("nothing to inspect: the text has no tokens")
    return tokens


def file_stem(path: str) -> str:
    """A file's name without its suffix, for a run's name; ``stdin`` for standard input (``-``); a
    folder given as "." or ".." (a prepared corpus) by its own name, never "" (a run "-char-lstm",
    which the verbs then read as an option)."""
    if str(path) == "-":
        return "stdin"
    stem = Path(path).stem
    return stem if stem not in ("", ".", "..") else Path(path).resolve().name or "data"  # "/" has no name either


def as_path_list(train) -> list[str]:
    """The ``train`` setting as a list of paths (one path or several; "", the default, is none)."""
    return [str(p) for p in ([train] if isinstance(train, str) else train) if str(p)]


class TaskBase(TaskSpec):
    """The shared half of every task's work, beneath its declaration (``TaskSpec``: kind, settings,
    help texts)."""

    splits: dict[str, list]  # split name -> examples, set by the task
    seed: int = 0  # --seed: the order of the training batches (and music's transpositions), set by ``prepare``

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

    initialised_from: tuple[str, ...] = ()  # the data settings read for ``initialise`` alone: a resume from a checkpoint reads none
    starts_trained = False  # the model starts as a trained model of this task: the trainer validates it before the first step

    @classmethod
    def resumed_data(cls, run_path, split: dict) -> dict:
        """Data settings a resume from a checkpoint sets besides the run's own: what the run's start
        gave its files that its data alone cannot give again (``split``: config.json's record of
        the start). None by default: a run's vocabularies and names come from its data."""
        return {}

    lm_features = None  # rnnkit.models.lm_features.LMFeatures of a task given --lm-features

    def lm_sentences(self) -> list[list[str]]:
        """The words the ``--lm-features`` models read for every example of this run's splits."""
        return []

    max_sequence_steps = MAX_SEQUENCE_STEPS  # the longest text an inference verb reads as one (check_typed_lengths)

    def typed_steps(self, text: str) -> int:
        """How many steps a text typed to an inference verb is to the model: its tokens, cut as the
        training text was (``typed_tokens`` with the task's ``tokenizer`` and ``vocab``; the tasks
        that read typed text otherwise say so by overriding this)."""
        return len(typed_tokens(self.tokenizer, self.vocab, text))

    def detach_from_files(self) -> None:
        """Read into memory what the task maps from the run's files, for a process that outlives
        its reading (``rnnkit serve``): a file replaced or cut short under it must not end the
        process. Tasks that map nothing keep this."""

    def before_training(self, progress: bool = True) -> None:
        """Work done once before training starts or resumes, outside its clock (``rnnkit.runs``):
        the ``--lm-features`` models' features of the run's own sentences (``LMFeatures.cache_once``)."""
        if self.lm_features is not None:
            self.lm_features.cache_once(self.lm_sentences, progress=progress)

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

    eval_picture: str | None = None  # what save_pictures draws of an evaluation, for rnnkit eval --plot; None: nothing

    def save_pictures(self, result: dict, directory, name: str) -> dict:
        """Pictures of an evaluation ``result`` drawn into ``directory`` (file names from ``name``),
        as {key: path}; none by default (a task that draws one names it in ``eval_picture``)."""
        return {}

    def details(self, result: dict) -> list[str]:
        """Lines that break an evaluation down (per entity type ...) for ``rnnkit eval``; none by default."""
        return []

    averages_runs: bool = False  # whether rnnkit eval/classify/tag --ensemble can combine runs of this kind
    criterion: str = "validation loss per token"  # what best_valid_criterion is (lower is better), said in the summary
    reads_one_stream: bool = False  # a language model that read its text as one stream: rnnkit eval --cache

    def ensemble_mismatch(self, model, other_task, other_model) -> str | None:
        """Why the run of (``other_task``, ``other_model``), of this kind, cannot join this one's
        ``model`` in an ensemble, in words; None when it can (the default)."""
        return None

    def check_ensemble(self, model, ensemble) -> None:
        """A ``UsageError`` naming the first (task, model) of ``ensemble`` that cannot join ``model``."""
        for number, (other_task, other_model) in enumerate(ensemble, 1):
            reason = self.ensemble_mismatch(model, other_task, other_model)
            if reason:
                raise UsageError(f"--ensemble: run {number} of the ensemble cannot join the first: {reason}")

    def load_state_dict(self, state: dict) -> None:
        pass

    # -- evaluation ------------------------------------------------------------------------------------------
    def batches_of(self, examples, train: bool):
        """Batches of ``examples`` (a split's items as ``prepare`` read them): shuffled with the
        training batch size when ``train``, else in order with ``data.eval_batch_size``."""
        raise NotImplementedError(f"{type(self).__name__} batches its examples in _batches")

    def _batches(self, split: str, train: bool):
        return self.batches_of(self.splits[split], train)

    def evaluate(self, model, split: str, device) -> dict:
        """``evaluate_examples`` on the split ``split`` (the trainer's valid and test evaluations)."""
        return self.evaluate_examples(model, self.splits[split], device)

    def evaluate_examples(self, model, examples, device) -> dict:
        """Scores of ``model`` on ``examples`` (items as ``read_file`` returns them); by default the
        mean loss per counted unit (``summed_loss``)."""
        total, count = self.summed_loss(model, self.batches_of(examples, False), device)
        return {"loss": total / max(count, 1), "count": count}

    @torch.no_grad()
    def summed_loss(self, model, batches, device) -> tuple[float, int]:
        """(Σ loss, Σ count) of ``self.loss`` over ``batches`` in evaluation mode (no dropout, no
        regularisers, no gradients)."""
        model.eval()
        total, count = 0.0, 0
        for batch in batches.iterate(0):
            loss, n = self.loss(model, batch, device)
            total, count = total + float(loss), count + n
        return total, count

    def evaluate_file(self, model, path: str, device) -> dict:
        """``evaluate_examples`` on a file read as the valid and test files are (``read_file``)."""
        return self.evaluate_examples(model, self.read_file(self.data, path), device)

    @classmethod
    def read_file(cls, data, path: str, train: bool = False) -> list:
        """The examples of one data file (``train``: read as a training file)."""
        raise NotImplementedError(f"{cls.__name__} reads no data files")

    @classmethod
    def read_splits(cls, data) -> dict[str, list]:
        """``train`` (every training file's examples) and ``valid``/``test`` where given."""
        splits = {"train": [item for path in data.train for item in cls.read_file(data, path, train=True)]}
        for name in ("valid", "test"):
            if getattr(data, name):  # a field of the Data dataclass, named by the loop
                splits[name] = cls.read_file(data, getattr(data, name))
        return splits

    # -- configuration and artifacts -----------------------------------------------------------------------
    @classmethod
    def data_config(cls, values: dict):
        """The ``Data`` dataclass of ``values``: ``train`` as a list of paths, ``split`` a tuple.
        ``config.given`` starts empty (a run's recorded settings); ``given_settings`` sets it."""
        config = cls.Data(**values)
        config.given = frozenset()
        names = cls.data_keys()
        if "train" in names:
            config.train = as_path_list(config.train)
        if "split" in names:
            config.split = tuple(config.split)
        return config

    def default_run_name(self, model_config: dict) -> str:
        """``<data>-<kind>-<bi|uni><cell>`` (``run_name_detail`` for the part after the data's name)."""
        return f"{self.data_name()}-{self.run_name_detail(model_config)}"

    def data_name(self) -> str:
        """The data's part of a run name: the first training file's stem (``stdin`` for ``-``)."""
        return file_stem(self.data.train[0])

    def run_name_detail(self, model_config: dict) -> str:
        if "bidirectional" in model_config:
            return f"{self.kind}-{'bi' if model_config['bidirectional'] else 'uni'}{model_config['cell']}"
        return f"{self.kind}-{model_config['cell']}"

    vocabularies: dict[str, str] = {}  # run file -> the attribute holding that Vocabulary (None: not saved)
    tokenizers: dict[str, str] = {}  # run file -> the attribute holding that Tokenizer
    names: dict[str, str] = {}  # run file -> the attribute holding a list of names (labels, tags), saved under that key

    @classmethod
    def artifact_files(cls) -> list[str]:
        """The run files ``save`` writes and ``load`` reads back: vocabularies, tokenizers, names.
        Each checkpoint's manifest records their digests (``Checkpoints.check_run_files``)."""
        return [*cls.vocabularies, *cls.tokenizers, *cls.names]

    def save(self, run) -> None:
        """The declared vocabularies and tokenizers into the run directory (``rnnkit.files.RunDir``)."""
        for name, attribute in self.vocabularies.items():
            vocab = getattr(self, attribute)  # declared above, not discovered
            if vocab is not None:
                run.write_json(name, {"tokens": vocab.tokens})
        for name, attribute in self.tokenizers.items():
            run.write_json(name, getattr(self, attribute).config())
        for name, attribute in self.names.items():
            run.write_json(name, {attribute: getattr(self, attribute)})

    @classmethod
    def load(cls, run, data):
        """The task as a trained run needs it (no data files read): ``Data`` and what ``save`` wrote."""
        return cls(data, **cls.read_artifacts(run))

    @classmethod
    def read_artifacts(cls, run) -> dict:
        """The declared vocabularies and tokenizers of a run, by attribute name (for ``load``):
        ``DataError`` naming a damaged file, ``FileNotFoundError`` a missing one."""
        artifacts = {attribute: run.read_vocabulary(name) for name, attribute in cls.vocabularies.items()}
        artifacts.update({attribute: run.read_tokenizer(name) for name, attribute in cls.tokenizers.items()})
        for name, attribute in cls.names.items():
            value = run.read_json(name)
            names = value.get(attribute) if isinstance(value, dict) else None
            if not isinstance(names, list) or len(set(map(str, names))) != len(names):  # a class or tag twice: one of them never answered
                raise DataError(f"{run.file(name)}: damaged, its {attribute} are not a list of distinct names")
            artifacts[attribute] = names
        return artifacts


def given_settings(data, names: Iterable[str]):
    """``data`` (a task's data configuration) marked with the names of the settings the user gave
    now, on the command line or in a config file, as ``data.given``: a setting given at its default
    value is still given, so one that would do nothing is refused by that name (a prepared corpus's
    other level, ``--split`` of pieces that hold their splits), where comparing with the default
    missed it. A configuration that takes no new attribute (a frozen dataclass) is left as it is."""
    with contextlib.suppress(AttributeError):
        data.given = frozenset(names)
    return data
