"""The translation task's declaration, without importing torch (``rnnkit.tasks.spec``): its data settings,
model defaults and ``rnnkit train --help`` texts. Its work is ``rnnkit.tasks.translation``."""

from __future__ import annotations

from dataclasses import dataclass

from ..data.parallel import bitext_advice
from ..data.textio import file_identity
from ..errors import DataError, UsageError
from ..settings import beam_width, nonnegative_float, nonnegative_int, number, positive_float, positive_int, setting
from .spec import EMBEDDING_REGULARISERS, RECURRENT_REGULARISERS, TaskSpec

# steps on either side of a pair read as one, at most: attention weighs every source step at every
# target step (T x S), so one pair of 60,000 tokens a side would need about 14 GB to score, and
# training keeps more: a pair of 15,000 tokens a side took 17.6 GB (--max-length is held to it too)
LONGEST_SIDE = 10_000
pair_length = number(int, low=1, high=LONGEST_SIDE, name="pair_length")


@dataclass
class TranslationDataConfig:
    source: str | None = setting(None, help="training source file (line-aligned with --target)")
    target: str | None = setting(None, help="training target file")
    valid_source: str | None = setting(None, help="validation source file")
    valid_target: str | None = setting(None, help="validation target file")
    test_source: str | None = setting(None, help="test source file")
    test_target: str | None = setting(None, help="test target file")
    # > 0: the built-in date task with this many training pairs (no files)
    dates: int = setting(0, type=positive_int, help="the built-in date task: this many generated training pairs (human date -> ISO)")
    date_locales: list[str] | None = setting(None, nargs="+", help="Babel locales for the date task (none: en_US)",
                                             applies=lambda d: None if d.dates else "are the date task's (--dates N); parallel files are read as they are")
    level: str = setting("word", choices=("char", "word", "whitespace", "bpe"), help="tokens on both sides")
    lowercase: bool = setting(False, help="lowercase both sides", off_help="keep the case")
    bpe_vocab: int = setting(8000, type=positive_int, help="BPE vocabulary size", applies=lambda d: None if d.level == "bpe" else f"sizes the vocabulary of --level bpe, not {d.level}")
    shared_vocab: bool = setting(False, help="one vocabulary for both sides", off_help="a vocabulary per side")
    max_vocab: int | None = setting(None, type=positive_int, help="keep at most this many tokens per side, <PAD> <UNK> <EOS> included")
    min_count: int = setting(1, type=positive_int, help="keep tokens seen at least this often")
    max_length: int = setting(80, type=pair_length, help=f"skip training pairs longer than this (at most {LONGEST_SIDE:,}: held-out pairs' limit)")
    batch_size: int = setting(64, type=positive_int, help="pairs per batch")
    eval_batch_size: int = setting(64, type=positive_int, help="pairs per batch in evaluation and translation")
    beam: int = setting(5, type=beam_width, help="beam width for the test set (and translate's default)")
    length_alpha: float = setting(0.6, type=nonnegative_float, help="length normalisation exponent of beam search")
    # maximum output length = ratio * source length + extra
    length_ratio: float = setting(1.5, type=positive_float, help="longest output: this times the source length, plus --length-extra")
    length_extra: int = setting(10, type=nonnegative_int, help="see --length-ratio")
    eval_beam: int = setting(1, type=beam_width, help="beam width for validation during training (1: greedy, fast)")
    eval_sentences: int | None = setting(None, type=positive_int, help="score validation BLEU on the first N sentences only (none: all)")

    def check(self) -> None:
        if not self.dates and not (self.source and self.target):
            raise DataError("give --source and --target training files, or --dates N for the built-in date task")
        files = [f"--{name.replace('_', '-')}" for name in ("source", "target", "valid_source", "valid_target", "test_source", "test_target") if getattr(self, name)]
        if self.dates and files:  # the date task makes its own pairs: the files would be silently left out
            raise UsageError(f"--dates {self.dates} trains on generated date pairs; {', '.join(files)} would not be read: give one or the other")
        for a, b in (("source", "target"), ("valid_source", "valid_target"), ("test_source", "test_target")):
            if bool(getattr(self, a)) != bool(getattr(self, b)) and a != "source":
                raise DataError(f"give both --{a.replace('_', '-')} and --{b.replace('_', '-')}, or neither")
            if getattr(self, a) == "-" and getattr(self, b) == "-":  # standard input is read once: the second side would be empty
                raise UsageError(f"--{a.replace('_', '-')} and --{b.replace('_', '-')} cannot both be standard input (-): give one of them as a file")
            if getattr(self, a) and getattr(self, b) not in (None, "-") and file_identity(getattr(self, a)) == file_identity(getattr(self, b)):
                raise UsageError(f"--{a.replace('_', '-')} and --{b.replace('_', '-')} are the same file ({getattr(self, b)}): a translation "
                                 f"model needs the source and its translation as two line-aligned files ({bitext_advice()})")


MODEL_DEFAULTS = dict(
    cell="gru", embedding_size=256, hidden_size=256, num_layers=1, dropout=0.3, attention="multiplicative",
    input_feeding=False, teacher_forcing=1.0, shared_embeddings=False, engine="auto", **RECURRENT_REGULARISERS, **EMBEDDING_REGULARISERS,
)  # fmt: skip


class TranslationSpec(TaskSpec):
    """An encoder-decoder with attention (translation) on line-aligned files

    Train a bidirectional encoder and an attentive decoder started from the encoder's final state.
    Validation picks the weights with the best BLEU (sacreBLEU on the output joined back into text;
    at --level whitespace, tokens joined by spaces, scored against the tokenized references as they
    are); the test set is decoded with beam search.

    examples:
      rnnkit train seq2seq --dates 20000 --level char                          # the course's date task, no files
      rnnkit train seq2seq --source train.de --target train.en --valid-source val.de --valid-target val.en \\
          --test-source test.de --test-target test.en --level word --attention additive
      rnnkit translate RUN "ein mann mit einem orangefarbenen hut ." --beam 5 --nbest 3
    """

    kind = "seq2seq"
    Data = TranslationDataConfig
    model_defaults = MODEL_DEFAULTS
