"""The tagging task's declaration, without importing torch (``rnnkit.tasks.spec``): its data settings,
model defaults and ``rnnkit train --help`` texts. Its work is ``rnnkit.tasks.tagging``."""

from __future__ import annotations

from dataclasses import dataclass

from ..data.conll import SCHEMES
from ..errors import UsageError
from ..settings import positive_int, probability, setting
from .spec import check_training_files, EMBEDDING_REGULARISERS, RECURRENT_REGULARISERS, TaskSpec


@dataclass
class TaggingDataConfig:
    train: list[str] | str = setting("", help="training CoNLL file(s)")
    valid: str | None = setting(None, help="validation CoNLL file (early stopping on its entity F1)")
    test: str | None = setting(None, help="test CoNLL file")
    token_column: int = setting(0, type=int, help="column of the token")
    tag_column: int = setting(-1, type=int, help="column of the tag, negative from the end")
    scheme: str = setting("iob1", choices=SCHEMES, help="tag scheme of the files (CoNLL-2003: iob1)")
    train_scheme: str = setting("iobes", choices=SCHEMES, help="scheme the model learns")
    min_count: int = setting(1, type=positive_int, help="keep words seen at least this often")
    singleton_unk: float = setting(0.5, type=probability, help="probability of replacing a word seen once by <UNK> in training",
                                   applies=lambda d: None if d.min_count == 1 else f"replaces words seen once, which --min-count {d.min_count} makes <UNK> already")
    batch_size: int = setting(10, type=positive_int, help="sentences per batch")
    eval_batch_size: int = setting(64, type=positive_int, help="sentences per batch in evaluation and tagging")
    word_vectors: str | None = setting(None, metavar="FILE", help="pre-trained word vectors (word2vec/GloVe/fastText text or word2vec binary) for the embedding rows of the words found (a word missing: its lowercase, digits as 0); the word embedding size is the file's")
    lm_features: str | None = setting(None, metavar="RUN[,RUN]", help="the hidden states of a trained language-model run, or of a forward and a reversed one (rnnkit train lm --reverse), at each word as frozen features joined to its representation (TagLM, Flair); read again from these runs by tag, eval and resume")

    def check(self) -> None:
        check_training_files(self.train)
        for scheme in (self.scheme, self.train_scheme):
            if scheme not in SCHEMES:
                raise UsageError(f"unknown tag scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")


MODEL_DEFAULTS = dict(
    word_embedding_size=100, char_embedding_size=25, char_hidden_size=25, casing_size=4, cell="lstm", hidden_size=200,
    num_layers=1, bidirectional=True, dropout=0.5, head_sizes=[], crf=True, engine="auto", **RECURRENT_REGULARISERS, **EMBEDDING_REGULARISERS,
)  # fmt: skip


class TaggingSpec(TaskSpec):
    """A sequence tagger (named entities) on CoNLL column files

    Train a tagger: words, character-level and casing features -> bidirectional recurrent stack -> a
    tag per word, with a linear-chain CRF output layer by default. Scored with entity-level F1
    (seqeval, strict IOB2).

    examples:
      rnnkit train tagger eng.train --valid eng.testa --test eng.testb        # CoNLL-2003: BiLSTM-CRF
      rnnkit train tagger train.conll --tag-column 1 --scheme iob2 --no-crf --one-direction
      rnnkit tag RUN "Teddy Roosevelt was a great President."
    """

    kind = "tagger"
    Data = TaggingDataConfig
    model_defaults = MODEL_DEFAULTS
