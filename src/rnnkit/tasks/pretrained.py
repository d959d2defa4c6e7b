"""A classifier started from a trained rnnkit run: ``rnnkit train classifier --init-from RUN``.

Two kinds of run start one (``read_start`` chooses by the run's task, ``STARTS``):

* language models (``PretrainedEncoder``): ULMFiT, Howard & Ruder 2018: pre-train a language model,
  then fine-tune it as a classifier's encoder;
* a trained classifier (``TrainedClassifier``): every weight, to be fine-tuned on other labelled
  texts (a treebank's whole sentences after its phrases; another domain's reviews).

Language models.

``--init-from FWD`` takes one language-model run: the classifier reads one way, as the model did.
``--init-from FWD,BWD`` takes a forward run and a reversed one (``rnnkit train lm --reverse``) of
the same shape: the classifier is bidirectional, its forward direction from FWD and its backward
direction from BWD (each direction reads the text the way its model was trained to). Those must be
one-layer models: in a stacked bidirectional encoder the second layer reads both directions' outputs,
which neither model was trained on.

What is copied: the recurrent layers, all of them, and the embedding rows of the classifier's words
(its vocabulary is its own training data's; each word takes the forward model's row of the same word,
else of the word in lowercase, as ``--word-vectors`` matches a file; a word the model lacks keeps its
random row). The cell, hidden size, layers, embedding size and cell options are the model's; asking
for others is refused with one line. The run's ``best`` weights are used.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..cells import cell_class
from ..data.vocab import SPECIALS, Vocabulary
from ..data.word_vectors import WordVectors, initialise_rows, vectors_from_table
from ..data.text import DataError
from ..errors import UsageError
from ..files import RunDir
from ..models.lm_features import read_language_model, read_run_config
from ..models.registry import build_model
from ..settings import typed_option
from .spec import MODEL_SETTINGS

SHAPE_KEYS = ("cell", "hidden_size", "num_layers", "embedding_size")  # what the encoder must share with the model
CELL_KEYS = ("peepholes", "nonlinearity")


def _language_model(path: str) -> tuple[dict, nn.Module, list[str]]:
    """(config.json, the model with its best weights, the vocabulary's tokens) of a language-model run."""
    run = read_language_model(path, "--init-from")
    return run.config, run.model, run.vocab.tokens


def _with_fixed(values: dict, fixed: dict, model_config: dict, source: str) -> dict:
    """The model settings ``values`` with ``fixed`` (and ``model_config``'s cell options) filled in;
    a one-line ``UsageError`` for a setting the user gave that differs (``source`` says why it is fixed)."""
    cell_options = dict(model_config.get("cell_options") or {})
    # the cell's settings as its cell has them (a setting left unrecorded: the cell's default)
    takes = inspect.signature(cell_class(fixed["cell"])).parameters
    for key in CELL_KEYS:
        if values.get(key) is not None and key not in takes:
            raise UsageError(f"{typed_option(key, values[key], MODEL_SETTINGS.get(key))}: {source}, whose {fixed['cell']} cell has no {key}; leave it out")
    effective = {key: cell_options.get(key, takes[key].default) for key in CELL_KEYS if key in takes}
    for key, value in [*fixed.items(), *effective.items()]:
        given = values.get(key)
        if given is not None and value is not None and given != value:
            typed = typed_option(key, given, MODEL_SETTINGS.get(key))  # "--one-direction", not "--bidirectional False"
            shown = (",".join(map(str, value)) or "none") if isinstance(value, list) else value
            raise UsageError(f"{typed}: {source}, whose {key.replace('_', ' ')} is {shown}; leave {typed.split()[0]} unset")
    return {**{k: v for k, v in values.items() if k not in CELL_KEYS}, **fixed, "cell_options": cell_options}


@dataclass
class PretrainedEncoder:
    runs: list[str]
    model_config: dict  # the forward language model's
    recurrent: dict[str, Tensor]  # the state of the classifier's Recurrent: l<k> forward, l<k>_reverse backward
    embedding: WordVectors  # the forward model's rows for the classifier's words
    starts_trained = False  # its head is new: nothing to validate before training

    @classmethod
    def read(cls, spec: str, vocabulary: list[str], level: str | None = None, lowercase: bool | None = None) -> "PretrainedEncoder":
        """The runs of ``spec`` ("FWD" or "FWD,BWD") for a classifier whose words are ``vocabulary``,
        cut at ``level`` (its tokenizer's kind): a model of another level is a ``UsageError`` (its
        recurrent layers learned characters, say, and would read words). ``lowercase`` is not
        checked: a word the model lacks takes the row of its lowercase form."""
        runs = [part.strip() for part in spec.split(",") if part.strip()]
        if not 1 <= len(runs) <= 2:
            raise UsageError(f"--init-from {spec}: give one language-model run, or a forward and a reversed one (FWD,BWD)")
        models = [_language_model(path) for path in runs]
        for path, (config, _, _) in zip(runs, models):
            theirs = config["data"].get("level")  # every run records it
            if level is not None and theirs is not None and theirs != level:
                raise UsageError(f"--init-from {path}: a language model of --level {theirs}, and this classifier reads --level {level}: "
                                 f"its layers would read other tokens than they learned; train the language model with --level {level}")  # fmt: skip
        for path, (config, _, _), reverse in zip(runs, models, (False, True)):
            if bool(config["data"].get("reverse")) != reverse:
                wanted = "a reversed (--reverse) model" if reverse else "a forward model"
                raise UsageError(f"--init-from {spec}: {path} must be {wanted}" + ("" if reverse else " (give FWD,BWD in that order)"))
        forward = models[0][0]["model"]
        if len(models) == 2:
            backward = models[1][0]["model"]
            differ = [key for key in (*SHAPE_KEYS, "cell_options") if forward.get(key) != backward.get(key)]
            if differ:
                raise UsageError(f"--init-from {spec}: the two runs differ in {', '.join(differ)}; the directions of one layer must match")
            if forward["num_layers"] > 1:  # layer 2 of a bidirectional stack reads both directions' outputs, which neither model did
                raise UsageError(f"--init-from {spec}: a bidirectional encoder from two runs needs one-layer models; these have {forward['num_layers']}")
        state = {}
        for direction, (_, model, _) in enumerate(models):
            for key, value in model.recurrent.state_dict().items():
                renamed = re.sub(r"^cells\.l(\d+)\.", lambda m: f"cells.l{m[1]}{'_reverse' if direction else ''}.", key)
                if direction == 0 or renamed != key:
                    state[renamed] = value
        _, model, tokens = models[0]
        embedding = vectors_from_table(runs[0], tokens, model.embedding.weight.detach(), vocabulary)
        return cls(runs, forward, state, embedding)

    def own_labels(self, labels: list[str], files: str) -> list[str]:
        """The classifier's labels: its training data's (a language model has none)."""
        return labels

    def own_vocabulary(self, vocab: Vocabulary) -> Vocabulary:
        """The classifier's vocabulary: its training data's (rows of the model's words copied into it)."""
        return vocab

    def model_values(self, values: dict) -> dict:
        """The classifier's model settings ``values`` with the encoder's shape filled in; a one-line
        ``UsageError`` for a setting the user gave that differs from the language model's."""
        fixed = {key: self.model_config[key] for key in SHAPE_KEYS}
        fixed["bidirectional"] = len(self.runs) == 2
        return _with_fixed(values, fixed, self.model_config, f"the encoder comes from {', '.join(self.runs)}")

    def initialise(self, model: nn.Module) -> None:
        """Copy the embedding rows found and every recurrent weight into a classifier."""
        initialise_rows(model.embedding.weight, self.embedding)
        model.recurrent.load_state_dict(self.recurrent, strict=True)

    def describe(self) -> str:
        return f"encoder from {', '.join(self.runs)}; embedding: " + self.embedding.describe(len(SPECIALS)).split(": ", 1)[1]

    def record(self) -> dict:
        """What the run's config.json keeps (``split.init_from``)."""
        return {"runs": self.runs, "weights": "best", "embedding": self.embedding.record(len(SPECIALS))}


CLASSIFIER_SHAPE = ("embedding_size", "cell", "hidden_size", "num_layers", "bidirectional", "pooling", "head_sizes")  # what its weights fix
CLASSIFIER_REGULARISERS = ("dropout", "word_dropout", "locked_dropout", "weight_drop", "embedding_dropout")  # taken unless given anew


@dataclass
class TrainedClassifier:
    """A trained classifier run to fine-tune on other labelled texts (``--init-from RUN``).

    What is copied: every weight, its best ones (embedding, recurrent layers, pooling, head). Its
    vocabulary is kept, its words at their ids; the new texts' words it lacks are added after them,
    with random rows.
    Its model settings are taken: those its weights fix (``CLASSIFIER_SHAPE``, the cell's options)
    may not be given otherwise; its regularisers (``CLASSIFIER_REGULARISERS``) may. Its labels are the new
    classifier's, in their order: a training label it never learned is refused (a ``DataError``), a
    label of its own the new data lacks is kept. Its level and lowercasing must be the new data's, and
    a run that read ``--lm-features`` is refused (its weights read features the new run would lack).
    """

    run: str
    model_config: dict
    labels: list[str]
    words: list[str]  # the new classifier's vocabulary: its own, then the new texts' other words
    known: int  # how many of them are its own (the specials too), at the same ids
    starts_trained = True  # a classifier already: the trainer validates its weights before the first step

    @classmethod
    def read(cls, spec: str, vocabulary: list[str], level: str | None = None, lowercase: bool | None = None) -> "TrainedClassifier":
        """The classifier run ``spec`` for a classifier whose training words are ``vocabulary``, cut at
        ``level`` and lowercased when ``lowercase``; a one-line ``UsageError`` or ``DataError`` for a run
        that cannot start it (see the class docstring) or whose files are damaged."""
        if "," in spec.strip().strip(","):
            raise UsageError(f"--init-from {spec}: a classifier run starts a classifier alone; give one run")
        path = spec.strip().strip(",")
        run, config = read_run_config(path, "--init-from", WANTED)
        data, where = config["data"], run.file("config.json")
        for key, option, mine, kind in (("level", "--level", level, str), ("lowercase", "--lowercase", lowercase, bool)):
            theirs = data.get(key)
            if theirs is not None and not isinstance(theirs, kind):
                raise DataError(f"{where}: damaged ({key} is {theirs!r}); is {path} a complete rnnkit run?")
            if mine is not None and theirs is not None and theirs != mine:
                said = {True: "--lowercase", False: "--keep-case"} if key == "lowercase" else {theirs: f"--level {theirs}", mine: f"--level {mine}"}
                raise UsageError(f"--init-from {path}: a classifier trained with {said[theirs]}, and this one reads {said[mine]}: "
                                 f"its weights would read other tokens than they learned; give {said[theirs]}")
        if data.get("lm_features"):
            raise UsageError(f"--init-from {path}: a classifier trained with --lm-features {data['lm_features']}; "
                             "a classifier started from it would lack those features: train it anew with them")
        model_config = {key: value for key, value in config["model"].items() if key != "kind"}
        try:
            with torch.device("meta"):  # its settings checked, no weight allocated: they are read by initialise
                build_model("classifier", model_config)
        except (UsageError, TypeError, ValueError) as error:  # a setting edited by hand: said as the file's
            raise DataError(f"{where}: {error}; is {path} a complete rnnkit run?") from None
        tokens = run.read_vocabulary("vocab.json").tokens
        labels = run.read_json("labels.json").get("labels")
        if not isinstance(labels, list) or len(labels) != model_config["num_classes"]:
            raise DataError(f"--init-from {path}: labels.json does not hold the {model_config['num_classes']} labels its weights were trained with: its files do not belong together")
        if len(tokens) != model_config.get("vocab_size", len(tokens)):
            raise DataError(f"--init-from {path}: vocab.json holds {len(tokens):,} tokens, but its weights were trained with {model_config['vocab_size']:,}: its files do not belong together")
        known = set(tokens)  # its words keep their ids; the new texts' other words come after them
        return cls(path, model_config, labels, [*tokens, *(token for token in vocabulary if token not in known)], len(tokens))

    @property
    def runs(self) -> list[str]:
        return [self.run]

    def own_labels(self, labels: list[str], files: str) -> list[str]:
        """The run's labels for a classifier whose training data holds ``labels``; a ``DataError``
        naming those it never learned (its head has no row for them)."""
        new = sorted(set(labels) - set(self.labels))
        if new:
            raise DataError(f"{files}: the labels {', '.join(map(repr, new))} are not among those of --init-from {self.run} "
                            f"({', '.join(map(repr, self.labels))}); its head learned those alone")
        return list(self.labels)

    def own_vocabulary(self, vocab: Vocabulary) -> Vocabulary:
        """Its vocabulary, then the new texts' words it lacks (``words``, joined by ``read`` from the same
        vocabulary as ``vocab``): a word it learned that the new texts lack keeps its row instead of
        becoming <UNK>."""
        return Vocabulary(self.words)

    def model_values(self, values: dict) -> dict:
        """The classifier's model settings: the run's, those its weights fix refused when given otherwise."""
        fixed = {key: self.model_config[key] for key in CLASSIFIER_SHAPE}
        regularisers = {key: self.model_config[key] for key in CLASSIFIER_REGULARISERS if key in self.model_config and values.get(key) is None}
        return _with_fixed({**values, **regularisers}, fixed, self.model_config, f"the classifier comes from {self.run}")

    def initialise(self, model: nn.Module) -> None:
        """Its best weights into the new classifier: every one, and its embedding's rows at its words'
        ids (the first ``known``); a new word keeps its random row. Read here, once a run starts from
        it (checked against its checkpoints by rnnkit.runs.check_pretrained_runs)."""
        with torch.random.fork_rng(devices=[]):  # its random initial weights, overwritten, draw nothing from the run's seeded generator
            trained = build_model("classifier", self.model_config)
        RunDir(self.run).load_weights("best", trained)
        state = trained.state_dict()
        with torch.no_grad():
            model.embedding.weight[: self.known] = state.pop("embedding.weight")  # (known, E)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [key for key in missing if not key.startswith("embedding.")]:
            raise ValueError(f"--init-from {self.run}: weights do not fit (missing {missing[:3]}, unexpected {unexpected[:3]})")  # a bug: the settings are the run's

    def describe(self) -> str:
        return (f"classifier from {self.run}: its {self.known - len(SPECIALS):,} words kept, "
                f"{len(self.words) - self.known:,} new words of these texts added (random rows)")

    def record(self) -> dict:
        """What the run's config.json keeps (``split.init_from``): ``kind`` tells a resume that the
        run's vocabulary and labels came from it (``ClassificationTask.resumed_data``)."""
        return {"kind": "classifier", "runs": self.runs, "weights": "best", "labels": self.labels,
                "words": {"kept": self.known - len(SPECIALS), "added": len(self.words) - self.known}}


STARTS = {"lm": PretrainedEncoder, "classifier": TrainedClassifier}  # the runs --init-from takes, by task
WANTED = "a trained language model (rnnkit train lm) or classifier (rnnkit train classifier)"


def read_start(spec: str, vocabulary: list[str], level: str | None = None, lowercase: bool | None = None):
    """What ``--init-from spec`` starts a classifier from (``STARTS``, by the first run's task); a
    one-line ``UsageError`` when it is no run or another task's."""
    first = next((part.strip() for part in spec.split(",") if part.strip()), spec)
    _, config = read_run_config(first, "--init-from", WANTED)
    if config["task"] not in STARTS:
        raise UsageError(f"--init-from {first}: a {config['task']} run; --init-from takes language-model (lm) runs or a classifier run")
    return STARTS[config["task"]].read(spec, vocabulary, level, lowercase)
