"""What a task declares, without importing torch: its ``kind``, its help texts, its ``Data``
dataclass of settings and its model settings with their defaults. ``rnnkit train --help`` and
``rnnkit train KIND --help`` are built from these alone, so they answer at once (torch takes seconds
to import); the task's work (``rnnkit.tasks.base.TaskBase`` and the task module) is imported when a
task runs (``rnnkit.tasks.TASKS``).

The choices of the model settings are the names of registries that live with torch code (cells,
engines, poolings, attentions): the ``*_NAMES`` tables below list them, and
tests/test_task_settings.py checks that they equal the registries' keys.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from ..data.textio import file_identity
from ..errors import DataError
from ..settings import dropout_rate, list_of_ints, nonnegative_float, nonnegative_int, option, positive_int, probability

CELL_NAMES = ("rnn", "gru", "gru-simple", "gru-cudnn", "lstm")  # rnnkit.cells.CELLS
ENGINE_NAMES = ("reference", "fused", "native", "triton", "persistent")  # rnnkit.engines.ENGINES
POOLING_NAMES = ("last", "max", "mean", "attention")  # rnnkit.models.classifier.POOLINGS
ATTENTION_NAMES = ("multiplicative", "additive")  # rnnkit.models.seq2seq.ATTENTIONS

# the regularisers' settings (rnnkit.regularisers) and their defaults (off), by the models that take them
RECURRENT_REGULARISERS = dict(locked_dropout=False, weight_drop=0.0)  # every model with recurrent layers
EMBEDDING_REGULARISERS = dict(embedding_dropout=0.0)  # every model with word embeddings
LM_REGULARISERS = dict(input_dropout=None, ar_alpha=0.0, tar_beta=0.0)  # the language model

CELL_OPTION_KEYS = ("peepholes", "nonlinearity")  # settings that go to the cell, not the model


def check_training_files(train: list[str], none: str = "no training file given") -> None:
    """The training files of a task's data check: at least one, and none given twice (``a.txt
    ./a.txt`` would train on its examples twice, silently). Raises ``DataError``."""
    if not train:
        raise DataError(none)
    seen: dict = {}  # the file itself (links and ./ resolved; a hard link is the same inode) -> the path it was first given as
    for path in map(str, train):
        if not path.strip():
            raise DataError("a training file's name is empty (an unset shell variable?)")
        real = file_identity(path)
        if real in seen:
            raise DataError(f"{path}: given twice as a training file (also as {seen[real]}); each file once")
        seen[real] = path
    folders = {Path(path).resolve(): path for path in map(str, train) if Path(path).is_dir()}  # read with their subfolders
    for folder, path in folders.items():
        outer = next((folders[other] for other in folders if other != folder and folder.is_relative_to(other)), None)
        if outer is not None:
            raise DataError(f"{path}: inside the training folder {outer}, which is read with its subfolders: its files would be trained on twice; give {outer} alone")

# What each model setting means and how the command line reads it, written once for every task: a
# task's ``model_defaults`` say which settings it takes and their defaults, and ``rnnkit train``
# makes an option of each (``rnnkit.settings``). A key missing here still gets its option, typed
# by its default, without help.
MODEL_SETTINGS: dict[str, dict] = {
    # a choice as every other registry's name, so that a config file's `cell = "LSTM"` is named with its file and setting
    "cell": option(choices=CELL_NAMES, help="the recurrent cell (rnnkit cells shows their equations)"),
    "hidden_size": option(type=positive_int, help="units per direction"),
    "num_layers": option(type=positive_int, help="stacked recurrent layers"),
    "bidirectional": option(type=bool, help="read both ways", off_flag="--one-direction", off_help="read left to right only"),
    "dropout": option(type=dropout_rate, help="on inputs, between layers and before the output"),
    "head_sizes": option(type=list_of_ints, help="deep non-recurrent head, e.g. 256,256"),
    "engine": option(choices=("auto", *ENGINE_NAMES), help="how the layers run over time, each proven equal to reference; auto picks for this machine"),
    "peepholes": option(type=bool, help="LSTM peephole connections"),
    "nonlinearity": option(choices=("tanh", "relu"), help="for --cell rnn"),
    "embedding_size": option(type=positive_int, help="token embedding size"),
    "tie_embeddings": option(type=bool, help="share the output layer with the embedding"),
    "word_embedding_size": option(type=positive_int, help="word embedding size"),
    "char_embedding_size": option(type=positive_int, help="character embedding size",
                                  applies=lambda m: "sizes the characters' embedding, and --char-hidden-size 0 reads no characters" if m.get("char_hidden_size") == 0 else None),
    "char_hidden_size": option(type=nonnegative_int, help="character BiLSTM units per direction (0 = no character features)"),
    "casing_size": option(type=nonnegative_int, help="casing feature size (0 = none)"),
    "crf": option(type=bool, help="CRF output layer", off_help="independent softmax per word"),
    "pooling": option(choices=POOLING_NAMES, help="how the outputs over time become one vector"),
    "word_dropout": option(type=dropout_rate, help="probability of replacing a word by <UNK> in training"),
    "attention": option(choices=(*ATTENTION_NAMES, "none"), help="how the decoder reads the encoder's outputs"),
    "input_feeding": option(type=bool, help="feed the previous attentional vector to the decoder",
                            applies=lambda m: "feeds the attentional vector back, and --attention none has none" if m.get("attention") == "none" and m.get("input_feeding") else None),
    "teacher_forcing": option(type=probability, help="probability of feeding the true previous token"),
    "shared_embeddings": option(type=bool, help="one embedding for both sides (needs --shared-vocab)"),
    "input_dropout": option(type=dropout_rate, help="dropout on the inputs of the recurrent layers (none: --dropout)"),
    # the regularisers of rnnkit.regularisers (AWD-LSTM, Merity et al. 2017), training only
    "locked_dropout": option(type=bool, help="one dropout mask per sequence, shared by its time steps (variational dropout), on inputs, between layers and on outputs",
                             applies=lambda m: (f"shares the masks of --dropout{' and --input-dropout, and both are 0' if 'input_dropout' in m else ', which is 0'}"
                                                if m.get("locked_dropout") and not (m.get("dropout") or m.get("input_dropout")) else None)),
    "weight_drop": option(type=dropout_rate, help="DropConnect on the recurrent weights: probability of zeroing each entry of W_a, one mask per batch"),
    "embedding_dropout": option(type=dropout_rate, help="probability of dropping a whole word from the embedding matrix, per batch"),
    "ar_alpha": option(type=nonnegative_float, help="activation regularisation: alpha x mean squared dropped output, added to the training loss (AWD-LSTM: 2)"),
    "tar_beta": option(type=nonnegative_float, help="temporal activation regularisation: beta x mean of (a<t> - a<t-1>)^2, added to the training loss (AWD-LSTM: 1)"),
}


class TaskSpec:
    """A task's declaration: what ``rnnkit train KIND`` offers and ``rnnkit.runs`` records. The task
    class inherits it (``class LanguageModelTask(LanguageModelSettings, TaskBase)``), so the two
    cannot disagree; the registry lists a task by its declaration without importing the task."""

    kind: str  # its name in the task registry and on the command line: rnnkit train KIND
    Data: type  # the task's data-configuration dataclass (its fields: rnnkit.settings)
    model_defaults: dict = {}  # the model settings it takes (MODEL_SETTINGS) and their defaults
    summary: str = ""  # for rnnkit train --help: one line
    description: str = ""  # for rnnkit train KIND --help: a paragraph ...
    examples: str = ""  # ... and command lines

    def __init_subclass__(cls, **kwargs):
        """The class that names a ``kind`` gets its ``rnnkit train KIND --help`` from its docstring
        where it sets no texts itself: the first paragraph is the summary, the second the
        description, the rest the examples; its model is the model registry's ``kind`` unless it
        names another ``model_kind``. A subclass that names no kind (the task's work, beneath its
        declaration) inherits them."""
        super().__init_subclass__(**kwargs)
        declares = "kind" in vars(cls)
        if declares and cls.__doc__ and not {"summary", "description", "examples"} & vars(cls).keys():
            summary, description, examples = (inspect.cleandoc(cls.__doc__) + "\n\n\n\n").split("\n\n", 2)
            cls.summary, cls.description, cls.examples = " ".join(summary.split()), description, examples.strip() + "\n"
        if declares and "model_kind" not in vars(cls):
            cls.model_kind = cls.kind

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
