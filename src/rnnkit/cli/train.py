"""``rnnkit train TASK ...``: train a model; parsing and wiring only (the work is in rnnkit.runs)."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from ._options import nonnegative_float, nonnegative_int, number, positive_float, positive_int, probability

LM_EXAMPLES = """examples:
  rnnkit train lm names.txt                                  # character level, valid/test split off names.txt
  rnnkit train lm ptb.train.txt --valid ptb.valid.txt --test ptb.test.txt \\
      --level whitespace --batching stream --bptt 35 --cell lstm --hidden-size 650 --num-layers 2 --dropout 0.5
  rnnkit train lm input.txt --line-breaks token --batching stream --time-limit 600
  rnnkit train lm --resume --run runs/names-char-lstm        # continue from the last checkpoint

Every option can also come from --config FILE (TOML or JSON, the same names with underscores);
the command line wins. Afterwards: rnnkit sample RUN, rnnkit score RUN "text", rnnkit eval RUN FILE.
"""


def _list_of_ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None



def add_lm_text_options(group) -> None:
    """The language model's data files and tokenization options: ``rnnkit train lm``'s and ``rnnkit prepare``'s."""
    group.add_argument("--valid", help="validation text file (default: split off the training data)")
    group.add_argument("--test", help="test text file (default: split off the training data)")
    group.add_argument("--split", type=probability, nargs=2, metavar=("VALID", "TEST"), help="fractions split off DATA when no --valid/--test (default 0.05 0.05)")
    group.add_argument("--split-seed", type=nonnegative_int, help="seed of that split (default 0)")
    group.add_argument("--level", choices=["char", "word", "whitespace", "bpe"], help="tokens: characters, words (punctuation split off), white-space separated, or BPE subwords (default char)")
    group.add_argument("--lowercase", action="store_true", default=None, help="lowercase the text")
    group.add_argument("--bpe-vocab", type=positive_int, help="BPE vocabulary size (default 4000)")
    group.add_argument("--line-breaks", choices=["eos", "token"], help="eos: each line ends with <EOS>; token: one stream, line breaks are tokens (default eos)")
    group.add_argument("--max-vocab", type=positive_int, help="keep at most this many tokens (others become <UNK>)")
    group.add_argument("--min-count", type=positive_int, help="keep tokens seen at least this often (default 1)")

def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a model: lm, tagger or classifier (see: rnnkit train lm --help)")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    _add_lm(tasks)
    _add_tagger(tasks)
    _add_classifier(tasks)
    _add_seq2seq(tasks)
    _add_music(tasks)
    parser.set_defaults(verb="train")
    for task, task_parser in tasks.choices.items():
        task_parser.set_defaults(_options=task_parser)  # for checking --config values like the options


def _run_options(parser) -> None:
    parser.add_argument("train", nargs="*", metavar="DATA", help="training file(s)")
    run = parser.add_argument_group("run")
    run.add_argument("--run", help="run directory (default: runs/<data>-..., numbered if taken)")
    run.add_argument("--resume", action="store_true", help="continue the run in --run from its last checkpoint")
    run.add_argument("--config", help="TOML or JSON file of settings (command line wins)")


def _recurrent_options(group, defaults: str) -> None:
    group.add_argument("--cell", help=f"rnn, gru, gru-simple, gru-cudnn or lstm ({defaults})")
    group.add_argument("--hidden-size", type=positive_int, help="units per direction")
    group.add_argument("--num-layers", type=positive_int, help="stacked recurrent layers")
    group.add_argument("--dropout", type=DROPOUT, help="on inputs, between layers and before the output")
    group.add_argument("--head-sizes", type=_list_of_ints, help="deep non-recurrent head, e.g. 256,256 (default none)")
    group.add_argument("--engine", choices=["auto", "reference", "fused", "native"], help="default auto")
    group.add_argument("--peepholes", action="store_true", default=None, help="LSTM peephole connections")
    group.add_argument("--nonlinearity", choices=["tanh", "relu"], help="for --cell rnn")


def _direction_options(group) -> None:
    group.add_argument("--bidirectional", dest="bidirectional", action="store_true", default=None, help="read both ways (default)")
    group.add_argument("--one-direction", dest="bidirectional", action="store_false", help="read left to right only")


def _training_options(parser, defaults: str) -> None:
    training = parser.add_argument_group("training", defaults)
    training.add_argument("--epochs", type=positive_int)
    training.add_argument("--max-steps", type=positive_int, help="stop after this many steps (overrides --epochs)")
    training.add_argument("--lr", type=positive_float, help="learning rate")
    training.add_argument("--optimizer", choices=["adam", "adamw", "sgd"])
    training.add_argument("--weight-decay", type=nonnegative_float)
    training.add_argument("--momentum", type=probability, help="for sgd")
    training.add_argument("--schedule", choices=["constant", "cosine", "plateau"])
    training.add_argument("--warmup-steps", type=nonnegative_int, help="linear warm-up")
    training.add_argument("--clip", type=nonnegative_float, help="clip the gradient norm (0 = off)")
    training.add_argument("--ema", type=EMA_DECAY, help="evaluate a moving average of the weights with this decay, e.g. 0.998 (default off)")
    training.add_argument("--patience", type=positive_int, help="early stop after this many evaluations without improvement")
    training.add_argument("--eval-every", type=positive_int, help="steps between evaluations (default: each epoch)")
    training.add_argument("--sample-every", type=nonnegative_int, help="print samples every this many steps (language models)")
    training.add_argument("--log-every", type=positive_int, help="steps per metrics row")
    training.add_argument("--time-limit", type=positive_float, help="seconds of training, then checkpoint and stop")
    training.add_argument("--stop-at-step", type=positive_int, help="checkpoint and stop at this step (resumable)")
    training.add_argument("--seed", type=nonnegative_int)
    training.add_argument("--save-every-steps", type=positive_int, help="checkpoint every this many steps, besides each evaluation (default off)")
    training.add_argument("--save-every-minutes", type=positive_float, help="checkpoint when this many minutes passed since the last one (default 5)")
    training.add_argument("--keep-checkpoints", type=positive_int, help="newest checkpoints kept in RUN/checkpoints (default 2)")
    training.add_argument("--skip-non-finite", action="store_true", default=None, help="skip a step whose loss or gradient norm is NaN or infinite (default: stop the training there)")
    training.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    training.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="mixed precision (autocast) on CUDA (default fp32)")
    training.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")


DROPOUT = number(float, low=0, high=1, high_open=True, name="dropout")  # 1 would drop everything
EMA_DECAY = number(float, low=0, high=1, low_open=True, high_open=True, name="ema_decay")  # 1 never moves
TRAINING_DEFAULTS = "defaults: epochs 10, lr 0.002, adamw, cosine schedule, clip 1.0, seed 0, device auto"


def _add_lm(tasks) -> None:
    lm = tasks.add_parser(
        "lm",
        help="a language model on text files",
        description="Train a recurrent language model: each line a sentence ending in <EOS> (or one stream), "
        "rare tokens as <UNK>, loss summed over time steps; samples printed as it learns.",
        epilog=LM_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_options(lm)
    data = lm.add_argument_group("data")
    add_lm_text_options(data)
    data.add_argument("--batching", choices=["sentences", "stream"], help="sentences: padded lines with lengths; stream: chunks for truncated BPTT, state carried (default sentences)")
    data.add_argument("--batch-size", type=positive_int, help="sequences (or parallel streams) per batch (default 32)")
    data.add_argument("--bptt", type=positive_int, help="time steps per chunk with --batching stream (default 64)")
    model = lm.add_argument_group("model", "defaults: lstm, 1 layer of 256, embedding 64, dropout 0")
    _recurrent_options(model, "default lstm")
    model.add_argument("--embedding-size", type=positive_int)
    model.add_argument("--tie-embeddings", action="store_true", default=None, help="share the output layer with the embedding")
    _training_options(lm, TRAINING_DEFAULTS)


TAGGER_EXAMPLES = """examples:
  rnnkit train tagger eng.train --valid eng.testa --test eng.testb        # CoNLL-2003: BiLSTM-CRF
  rnnkit train tagger train.conll --tag-column 1 --scheme iob2 --no-crf --one-direction
  rnnkit tag RUN "Teddy Roosevelt was a great President."
"""


def _add_tagger(tasks) -> None:
    tagger = tasks.add_parser(
        "tagger",
        help="a sequence tagger (named entities) on CoNLL column files",
        description="Train a tagger: words, character-level and casing features -> bidirectional recurrent stack -> "
        "a tag per word, with a linear-chain CRF output layer by default. Scored with entity-level F1 (seqeval, strict IOB2).",
        epilog=TAGGER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_options(tagger)
    data = tagger.add_argument_group("data")
    data.add_argument("--valid", help="validation CoNLL file (early stopping on its entity F1)")
    data.add_argument("--test", help="test CoNLL file")
    data.add_argument("--token-column", type=int, help="column of the token (default 0)")
    data.add_argument("--tag-column", type=int, help="column of the tag, negative from the end (default -1)")
    data.add_argument("--scheme", choices=["iob1", "iob2", "iobes"], help="tag scheme of the files (default iob1, as CoNLL-2003)")
    data.add_argument("--train-scheme", choices=["iob1", "iob2", "iobes"], help="scheme the model learns (default iobes)")
    data.add_argument("--singleton-unk", type=probability, help="probability of replacing a word seen once by <UNK> in training (default 0.5)")
    data.add_argument("--batch-size", type=positive_int, help="sentences per batch (default 10)")
    model = tagger.add_argument_group("model", "defaults: bidirectional lstm, 1 layer of 200, dropout 0.5, CRF, word 100 + chars 2x25 + casing 4")
    _recurrent_options(model, "default lstm")
    _direction_options(model)
    model.add_argument("--word-embedding-size", type=positive_int)
    model.add_argument("--char-embedding-size", type=positive_int)
    model.add_argument("--char-hidden-size", type=nonnegative_int, help="character BiLSTM units per direction (0 = no character features)")
    model.add_argument("--casing-size", type=nonnegative_int, help="casing feature size (0 = none)")
    model.add_argument("--crf", dest="crf", action="store_true", default=None, help="CRF output layer (default)")
    model.add_argument("--no-crf", dest="crf", action="store_false", help="independent softmax per word")
    _training_options(tagger, TRAINING_DEFAULTS)


CLASSIFIER_EXAMPLES = """examples:
  rnnkit train classifier sst/train.txt --valid sst/dev.txt --test sst/test.txt      # PTB trees: all phrases
  rnnkit train classifier reviews.csv --text-column review --label-column stars
  rnnkit classify RUN "A gorgeous, witty, seductive movie."
"""


def _add_classifier(tasks) -> None:
    classifier = tasks.add_parser(
        "classifier",
        help="a sequence classifier (sentiment, 1-5 ratings) on labelled texts",
        description="Train a classifier: embeddings -> (bi)recurrent stack -> pooling -> head -> softmax over classes. "
        "Reports accuracy, macro-F1, mean absolute error for numeric labels and the confusion matrix.",
        epilog=CLASSIFIER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_options(classifier)
    data = classifier.add_argument_group("data")
    data.add_argument("--valid", help="validation file (early stopping on its accuracy)")
    data.add_argument("--test", help="test file")
    data.add_argument("--format", choices=["auto", "tsv", "fasttext", "csv", "ptb-trees"], help="label<TAB>text, __label__X text, CSV with a header, or PTB trees (default auto)")
    data.add_argument("--text-column", help="CSV column of the text (default text)")
    data.add_argument("--label-column", help="CSV column of the label (default label)")
    data.add_argument("--no-phrases", dest="phrases", action="store_false", default=None, help="PTB trees: train on whole sentences only")
    data.add_argument("--level", choices=["word", "whitespace", "char"], help="tokens (default whitespace)")
    data.add_argument("--keep-case", dest="lowercase", action="store_false", default=None, help="do not lowercase")
    data.add_argument("--min-count", type=positive_int, help="keep words seen at least this often (default 1)")
    data.add_argument("--batch-size", type=positive_int, help="examples per batch (default 32)")
    data.add_argument("--class-weights", choices=["none", "balanced"], help="balanced: weigh each class alike in the loss (default none)")
    model = classifier.add_argument_group("model", "defaults: bidirectional lstm, 1 layer of 128, embedding 128, max pooling, dropout 0.3")
    _recurrent_options(model, "default lstm")
    _direction_options(model)
    model.add_argument("--embedding-size", type=positive_int)
    model.add_argument("--pooling", choices=["last", "max", "mean", "attention"])
    model.add_argument("--word-dropout", type=DROPOUT, help="probability of replacing a word by <UNK> in training (default 0)")
    _training_options(classifier, TRAINING_DEFAULTS)


SEQ2SEQ_EXAMPLES = """examples:
  rnnkit train seq2seq --dates 20000 --level char                          # the course's date task, no files
  rnnkit train seq2seq --source train.de --target train.en --valid-source val.de --valid-target val.en \\
      --test-source test.de --test-target test.en --level word --attention additive
  rnnkit translate RUN "ein mann mit einem orangefarbenen hut ." --beam 5 --nbest 3
"""


def _add_seq2seq(tasks) -> None:
    seq2seq = tasks.add_parser(
        "seq2seq",
        help="an encoder-decoder with attention (translation) on line-aligned files",
        description="Train a bidirectional encoder and an attentive decoder started from the encoder's final state. "
        "Validation picks the weights with the best BLEU (sacreBLEU on detokenized output); the test set is decoded with beam search.",
        epilog=SEQ2SEQ_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = seq2seq.add_argument_group("run")
    run.add_argument("--run", help="run directory (default: runs/<source>-seq2seq-<cell>, numbered if taken)")
    run.add_argument("--resume", action="store_true", help="continue the run in --run from its last checkpoint")
    run.add_argument("--config", help="TOML or JSON file of settings (command line wins)")
    data = seq2seq.add_argument_group("data")
    for name in ("source", "target", "valid-source", "valid-target", "test-source", "test-target"):
        data.add_argument(f"--{name}", help=f"{name.replace('-', ' ')} file (line-aligned)")
    data.add_argument("--dates", type=positive_int, help="the built-in date task: this many generated training pairs (human date -> ISO)")
    data.add_argument("--date-locales", nargs="+", help="Babel locales for the date task (default en_US)")
    data.add_argument("--level", choices=["char", "word", "whitespace", "bpe"], help="tokens on both sides (default word)")
    data.add_argument("--lowercase", action="store_true", default=None)
    data.add_argument("--bpe-vocab", type=positive_int, help="BPE vocabulary size (default 8000)")
    data.add_argument("--shared-vocab", action="store_true", default=None, help="one vocabulary for both sides")
    data.add_argument("--max-vocab", type=positive_int)
    data.add_argument("--min-count", type=positive_int)
    data.add_argument("--max-length", type=positive_int, help="skip training pairs longer than this (default 80)")
    data.add_argument("--batch-size", type=positive_int, help="pairs per batch (default 64)")
    data.add_argument("--beam", type=positive_int, help="beam width for the test set (default 5)")
    data.add_argument("--eval-beam", type=positive_int, help="beam width for validation during training (default 1: greedy)")
    data.add_argument("--length-alpha", type=nonnegative_float, help="length normalisation exponent of beam search (default 0.6)")
    model = seq2seq.add_argument_group("model", "defaults: gru, 1 layer of 256 (encoder: each direction), embedding 256, multiplicative attention, dropout 0.3")
    _recurrent_options(model, "default gru")
    model.add_argument("--embedding-size", type=positive_int)
    model.add_argument("--attention", choices=["multiplicative", "additive", "none"])
    model.add_argument("--input-feeding", action="store_true", default=None, help="feed the previous attentional vector to the decoder")
    model.add_argument("--teacher-forcing", type=probability, help="probability of feeding the true previous token (default 1)")
    model.add_argument("--shared-embeddings", action="store_true", default=None, help="one embedding for both sides (needs --shared-vocab)")
    _training_options(seq2seq, TRAINING_DEFAULTS)


MUSIC_EXAMPLES = """examples:
  rnnkit train music jsb-chorales-quarter.json                     # its train/valid/test splits; piano roll
  rnnkit train music midi_folder/ --representation events --transpose 3
  rnnkit compose RUN --steps 64 --out song.mid --png song.png --temperature 0.9
"""


def _add_music(tasks) -> None:
    music = tasks.add_parser(
        "music",
        help="a polyphonic music model (piano roll or voice tokens) on JSB Chorales files or MIDI",
        description="Train a one-to-many music model from x<1> = 0: a piano roll with 88 independent Bernoulli outputs "
        "per step, or voice tokens with a language model. Reports the negative log-likelihood per time step.",
        epilog=MUSIC_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_options(music)
    data = music.add_argument_group("data")
    data.add_argument("--valid", help="validation file or MIDI folder (default: the training file's own split)")
    data.add_argument("--test", help="test file or MIDI folder")
    data.add_argument("--representation", choices=["piano-roll", "events"], help="default piano-roll")
    data.add_argument("--voices", type=positive_int, help="tokens per step with events (default 4)")
    data.add_argument("--step-seconds", type=positive_float, help="MIDI folders: seconds per time step (default 0.5)")
    data.add_argument("--transpose", type=nonnegative_int, help="augment: random shifts within this many semitones (default 0)")
    data.add_argument("--batch-size", type=positive_int, help="sequences per batch (default 16)")
    model = music.add_argument_group("model", "defaults: gru, 1 layer of 256, dropout 0.3")
    _recurrent_options(model, "default gru")
    model.add_argument("--embedding-size", type=positive_int, help="token embedding (events only)")
    model.add_argument("--input-dropout", type=DROPOUT, help="piano roll: dropout on the fed-back notes (default: --dropout)")
    _training_options(music, TRAINING_DEFAULTS)


NOT_SETTINGS = {"verb", "task", "run", "resume", "config", "_options"}


def check_config_values(parser: argparse.ArgumentParser, values: dict, source: str) -> None:
    """Each value from a config file through the type of its command-line option, so that a file's
    ``batch_size = 0`` or ``dropout = nan`` gets the one-line error ``--batch-size 0`` gets."""
    types = {action.dest: action for action in parser._actions if callable(action.type)}
    for key, value in values.items():
        action = types.get(key)
        if action is None:
            continue
        several = isinstance(value, list) and action.nargs not in (None, "?")
        for item in value if several else [value]:
            try:
                if isinstance(item, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in item):
                    item = ",".join(map(str, item))  # a list option written as a TOML/JSON array (head_sizes)
                if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                    raise argparse.ArgumentTypeError(f"expected a number, got {item!r}")
                action.type(str(item))
            except argparse.ArgumentTypeError as error:
                raise UsageError(f"{source}: {key}: {error}") from None


def run(args) -> int:
    from ..runs import read_config_file, resume, start

    given = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS and v is not None and v != []}
    if args.resume:
        if not args.run:
            raise UsageError("--resume needs --run DIR")
        if given.get("train") or given.get("source"):
            raise UsageError("--resume reads the data recorded in the run; give no data files")
        _, summary = resume(args.run, given)
    else:
        values = read_config_file(args.config) if args.config else {}
        if values and getattr(args, "_options", None) is not None:
            check_config_values(args._options, values, args.config)
        values.update(given)
        if values.get("clip") == 0:
            values["clip"] = None
        if not (values.get("train") or values.get("source") or values.get("dates")):
            raise UsageError("no training data: give DATA files (or 'train' in --config)")
        _, summary = start(args.task, values, args.run)
    _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items() if isinstance(v, (int, float, str))}
    print("summary: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
