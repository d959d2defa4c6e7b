"""The classification task's declaration, without importing torch (``rnnkit.tasks.spec``): its data settings,
model defaults and ``rnnkit train --help`` texts. Its work is ``rnnkit.tasks.classification``."""

from __future__ import annotations

from dataclasses import dataclass

from ..data.labeled import FORMATS
from ..errors import UsageError
from ..settings import positive_int, setting
from .spec import check_training_files, EMBEDDING_REGULARISERS, RECURRENT_REGULARISERS, TaskSpec


@dataclass
class ClassificationDataConfig:
    train: list[str] | str = setting("", help="training file(s)")
    valid: str | None = setting(None, help="validation file (early stopping on its accuracy)")
    test: str | None = setting(None, help="test file")
    format: str = setting("auto", choices=FORMATS, help="label<TAB>text, __label__X text, CSV with a header, or PTB trees")
    text_column: str = setting("text", help="CSV column of the text")
    label_column: str = setting("label", help="CSV column of the label")
    phrases: bool = setting(True, help="PTB trees: train on every labelled phrase", off_help="PTB trees: train on whole sentences only")
    level: str = setting("whitespace", choices=("word", "whitespace", "char"),
                         help="tokens (word: punctuation split off; whitespace: pre-tokenized text)")
    lowercase: bool = setting(True, help="lowercase the text", off_flag="--keep-case", off_help="do not lowercase")
    min_count: int = setting(1, type=positive_int, help="keep words seen at least this often")
    batch_size: int = setting(32, type=positive_int, help="examples per batch")
    eval_batch_size: int = setting(128, type=positive_int, help="examples per batch in evaluation and classification")
    # balanced: weigh each class by N / (C n_c) in the training loss
    class_weights: str = setting("none", choices=("none", "balanced"), help="balanced: weigh each class alike in the loss")
    word_vectors: str | None = setting(None, metavar="FILE", help="pre-trained word vectors (word2vec/GloVe/fastText text or word2vec binary) for the embedding rows of the words found (a word missing: its lowercase); the embedding size is the file's")
    init_from: str | None = setting(None, metavar="RUN[,RUN]", help="start the embedding and the recurrent layers from a trained language-model run (ULMFiT), or from a forward and a reversed one (bidirectional); its cell, sizes and layers are taken. Or start every weight from a trained classifier run, to fine-tune it on these texts (a treebank's whole sentences after its phrases, another domain); its model settings, vocabulary and labels are taken, and its weights validated before the first step")
    lm_features: str | None = setting(None, metavar="RUN[,RUN]", help="the hidden states of a trained language-model run, or of a forward and a reversed one (rnnkit train lm --reverse), at each word as frozen features joined to its embedding (TagLM, Flair); read again from these runs by classify, eval and resume")

    def check(self) -> None:
        check_training_files(self.train)
        if self.format not in FORMATS:
            raise UsageError(f"unknown format {self.format!r}; choose one of: {', '.join(FORMATS)}")
        if self.word_vectors and self.init_from:
            raise UsageError("--word-vectors and --init-from both set the embedding; give one")
        if self.lm_features and self.init_from:  # the language model's layers read its embedding alone
            raise UsageError("--lm-features and --init-from: an encoder from a language model reads its embedding alone; give one")
        for option, value in (("--lm-features", self.lm_features), ("--word-vectors", self.word_vectors)):
            if value and self.level not in ("word", "whitespace"):  # a character's row given the vector of the word "a"
                raise UsageError(f"{option} gives features of words: it needs --level word or whitespace, not {self.level}")
        if self.class_weights not in ("none", "balanced"):
            raise UsageError(f"class_weights must be 'none' or 'balanced', got {self.class_weights!r}")


MODEL_DEFAULTS = dict(
    embedding_size=128, cell="lstm", hidden_size=128, num_layers=1, bidirectional=True, dropout=0.3, pooling="max",
    head_sizes=[], engine="auto", word_dropout=0.0, **RECURRENT_REGULARISERS, **EMBEDDING_REGULARISERS,
)  # fmt: skip


class ClassificationSpec(TaskSpec):
    """A sequence classifier (sentiment, 1-5 ratings) on labelled texts

    Train a classifier: embeddings -> (bi)recurrent stack -> pooling -> head -> softmax over
    classes. Reports accuracy, macro-F1, mean absolute error for numeric labels and the confusion
    matrix.

    examples:
      rnnkit train classifier sst/train.txt --valid sst/dev.txt --test sst/test.txt      # PTB trees: all phrases
      rnnkit train classifier reviews.csv --text-column review --label-column stars
      rnnkit classify RUN "A gorgeous, witty, seductive movie."
    """

    kind = "classifier"
    Data = ClassificationDataConfig
    model_defaults = MODEL_DEFAULTS
