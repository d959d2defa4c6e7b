"""The language model task's declaration, without importing torch (``rnnkit.tasks.spec``): its data settings,
model defaults and ``rnnkit train --help`` texts. Its work is ``rnnkit.tasks.language_model``."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from ..settings import nonnegative_int, positive_int, probability, setting
from .spec import check_training_files, EMBEDDING_REGULARISERS, LM_REGULARISERS, RECURRENT_REGULARISERS, TaskSpec


def split_applies(data) -> str | None:
    """``--split`` and ``--split-seed`` shape nothing when a validation or test file is given."""
    return None if not (data.valid or data.test) else "splits DATA only when neither --valid nor --test is given"


@dataclass
class LMDataConfig:
    train: list[str] = setting(default_factory=list, help="training text file(s), or a prepared corpus (rnnkit prepare)")
    valid: str | None = setting(None, help="validation text file (with neither --valid nor --test, both are split off DATA; with one, there is no other)")
    test: str | None = setting(None, help="test text file (with neither --valid nor --test, both are split off DATA; with one, there is no other)")
    split: tuple[float, float] = setting((0.05, 0.05), type=probability, nargs=2, metavar=("VALID", "TEST"),
                                         help="fractions split off DATA when no --valid/--test", applies=split_applies)
    split_seed: int = setting(0, type=nonnegative_int, help="seed of that split", applies=split_applies)
    level: str = setting("char", choices=("char", "word", "whitespace", "bpe"),
                         help="tokens: characters, words (punctuation split off), white-space separated, or BPE subwords")
    lowercase: bool = setting(False, help="lowercase the text", off_help="keep the case")
    bpe_vocab: int = setting(4000, type=positive_int, help="BPE vocabulary size", applies=lambda d: None if d.level == "bpe" else f"sizes the vocabulary of --level bpe, not {d.level}")
    line_breaks: str = setting("eos", choices=("eos", "token"), help="eos: each line ends with <EOS>; token: one stream, line breaks are tokens")
    max_vocab: int | None = setting(None, type=positive_int, help="keep at most this many tokens, <PAD> <UNK> <EOS> included (others become <UNK>)")
    min_count: int = setting(1, type=positive_int, help="keep tokens seen at least this often")
    batching: str = setting("sentences", choices=("sentences", "stream"),
                            help="sentences: padded lines with lengths; stream: chunks for truncated BPTT, state carried")
    batch_size: int = setting(32, type=positive_int, help="sequences (or parallel streams) per batch")
    bptt: int = setting(64, type=positive_int, help="time steps per chunk with --batching stream",
                        applies=lambda d: None if d.batching == "stream" else "is the chunk length of --batching stream; each line here is one sequence")
    eval_batch_size: int | None = setting(None, type=positive_int, help="per evaluation batch: parallel streams with --batching stream (none: 10), sentences otherwise (none: 64)")
    reverse: bool = setting(False, help="read each line from its last token to its first (<EOS> still last; stream: the whole text from its end): the backward model of TagLM/Flair features")

    def check(self) -> None:
        check_training_files(self.train)
        if self.line_breaks not in ("eos", "token"):
            raise UsageError(f"line_breaks must be 'eos' or 'token', got {self.line_breaks!r}")
        if self.batching not in ("sentences", "stream"):
            raise UsageError(f"batching must be 'sentences' or 'stream', got {self.batching!r}")
        if self.batching == "sentences" and self.line_breaks == "token":
            from ..data.corpus import is_prepared  # here only, on the way to an error: the spec imports no data code for --help

            store = len(self.train) == 1 and is_prepared(self.train[0])
            if store and "line_breaks" not in (getattr(self, "given", None) or ()):  # the store's setting, which the user never typed
                raise UsageError(f"{self.train[0]} was prepared with --line-breaks token, which needs --batching stream: sentence batching "
                                 "(the default) reads each line as a sentence ending in <EOS>; give --batching stream")
            raise UsageError("--line-breaks token needs --batching stream: sentence batching (the default) reads each line as a sentence ending in <EOS> (--line-breaks eos)")


MODEL_DEFAULTS = dict(
    cell="lstm", embedding_size=64, hidden_size=256, num_layers=1, dropout=0.0, head_sizes=[], tie_embeddings=False, engine="auto",
    **RECURRENT_REGULARISERS, **EMBEDDING_REGULARISERS, **LM_REGULARISERS,
)


class LanguageModelSpec(TaskSpec):
    """A language model on text files

    Train a recurrent language model: each line a sentence ending in <EOS> (or one stream), rare
    tokens as <UNK>, loss summed over time steps; samples printed as it learns with --sample-every N.

    examples:
      rnnkit train lm names.txt                                  # character level, valid/test split off names.txt
      rnnkit train lm ptb.train.txt --valid ptb.valid.txt --test ptb.test.txt \\
          --level whitespace --batching stream --bptt 35 --cell lstm --hidden-size 650 --num-layers 2 --dropout 0.5
      rnnkit train lm input.txt --line-breaks token --batching stream --time-limit 600
      rnnkit train lm --resume --run runs/names-char-lstm        # continue from the last checkpoint

    Afterwards: rnnkit sample RUN, rnnkit score RUN "text", rnnkit eval RUN FILE.
    """

    kind = "lm"
    Data = LMDataConfig
    model_defaults = MODEL_DEFAULTS
