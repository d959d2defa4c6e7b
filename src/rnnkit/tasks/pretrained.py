"""An encoder started from trained rnnkit language models: ``rnnkit train classifier --init-from RUN``
(ULMFiT, Howard & Ruder 2018: pre-train a language model, then fine-tune it as a classifier's encoder).

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

from torch import Tensor, nn

from ..cells import cell_class
from ..data.vocab import SPECIALS
from ..data.word_vectors import WordVectors, initialise_rows, vectors_from_table
from ..errors import UsageError
from ..models.lm_features import read_language_model
from ..settings import typed_option
from .spec import MODEL_SETTINGS

SHAPE_KEYS = ("cell", "hidden_size", "num_layers", "embedding_size")  # what the encoder must share with the model
CELL_KEYS = ("peepholes", "nonlinearity")


def _language_model(path: str) -> tuple[dict, nn.Module, list[str]]:
    """(config.json, the model with its best weights, the vocabulary's tokens) of a language-model run."""
    run = read_language_model(path, "--init-from")
    return run.config, run.model, run.vocab.tokens


@dataclass
class PretrainedEncoder:
    runs: list[str]
    model_config: dict  # the forward language model's
    recurrent: dict[str, Tensor]  # the state of the classifier's Recurrent: l<k> forward, l<k>_reverse backward
    embedding: WordVectors  # the forward model's rows for the classifier's words

    @classmethod
    def read(cls, spec: str, vocabulary: list[str], level: str | None = None) -> "PretrainedEncoder":
        """The runs of ``spec`` ("FWD" or "FWD,BWD") for a classifier whose words are ``vocabulary``,
        cut at ``level`` (its tokenizer's kind): a model of another level is a ``UsageError`` (its
        recurrent layers learned characters, say, and would read words)."""
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

    def model_values(self, values: dict) -> dict:
        """The classifier's model settings ``values`` with the encoder's shape filled in; a one-line
        ``UsageError`` for a setting the user gave that differs from the language model's."""
        fixed = {key: self.model_config[key] for key in SHAPE_KEYS}
        fixed["bidirectional"] = len(self.runs) == 2
        cell_options = dict(self.model_config.get("cell_options") or {})
        # the encoder's cell settings as its cell has them (a setting left unrecorded: the cell's default)
        takes = inspect.signature(cell_class(fixed["cell"])).parameters
        for key in CELL_KEYS:
            if values.get(key) is not None and key not in takes:
                raise UsageError(f"{typed_option(key, values[key], MODEL_SETTINGS.get(key))}: the encoder comes from {', '.join(self.runs)}, "
                                 f"whose {fixed['cell']} cell has no {key}; leave it out")
        effective = {key: cell_options.get(key, takes[key].default) for key in CELL_KEYS if key in takes}
        for key, value in [*fixed.items(), *effective.items()]:
            given = values.get(key)
            if given is not None and value is not None and given != value:
                typed = typed_option(key, given, MODEL_SETTINGS.get(key))  # "--one-direction", not "--bidirectional False"
                raise UsageError(f"{typed}: the encoder comes from {', '.join(self.runs)}, whose {key.replace('_', ' ')} is {value}; leave {typed.split()[0]} unset")
        return {**{k: v for k, v in values.items() if k not in CELL_KEYS}, **fixed, "cell_options": cell_options}

    def initialise(self, embedding_weight: Tensor, recurrent: nn.Module) -> None:
        """Copy the embedding rows found and every recurrent weight into a classifier's modules."""
        initialise_rows(embedding_weight, self.embedding)
        recurrent.load_state_dict(self.recurrent, strict=True)

    def describe(self) -> str:
        return f"encoder from {', '.join(self.runs)}; embedding: " + self.embedding.describe(len(SPECIALS)).split(": ", 1)[1]

    def record(self) -> dict:
        """What the run's config.json keeps (``split.init_from``)."""
        return {"runs": self.runs, "weights": "best", "embedding": self.embedding.record(len(SPECIALS))}
