"""``rnnkit train TASK ...``: train a model; parsing and wiring only (the work is in rnnkit.runs)."""

from __future__ import annotations

import argparse

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


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a model (see: rnnkit train lm --help)")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    lm = tasks.add_parser(
        "lm",
        help="a language model on text files",
        description="Train a recurrent language model: each line a sentence ending in <EOS> (or one stream), "
        "rare tokens as <UNK>, loss summed over time steps; samples printed as it learns.",
        epilog=LM_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lm.add_argument("train", nargs="*", metavar="DATA", help="UTF-8 training text file(s)")
    run = lm.add_argument_group("run")
    run.add_argument("--run", help="run directory (default: runs/<data>-<level>-<cell>, numbered if taken)")
    run.add_argument("--resume", action="store_true", help="continue the run in --run from its last checkpoint")
    run.add_argument("--config", help="TOML or JSON file of settings (command line wins)")

    data = lm.add_argument_group("data")
    data.add_argument("--valid", help="validation text file (default: split off the training data)")
    data.add_argument("--test", help="test text file (default: split off the training data)")
    data.add_argument("--split", type=float, nargs=2, metavar=("VALID", "TEST"), help="fractions split off DATA when no --valid/--test (default 0.05 0.05)")
    data.add_argument("--split-seed", type=int, help="seed of that split (default 0)")
    data.add_argument("--level", choices=["char", "word", "whitespace", "bpe"], help="tokens: characters, words (punctuation split off), white-space separated, or BPE subwords (default char)")
    data.add_argument("--lowercase", action="store_true", default=None, help="lowercase the text")
    data.add_argument("--bpe-vocab", type=int, help="BPE vocabulary size (default 4000)")
    data.add_argument("--line-breaks", choices=["eos", "token"], help="eos: each line ends with <EOS>; token: one stream, line breaks are tokens (default eos)")
    data.add_argument("--max-vocab", type=int, help="keep at most this many tokens (others become <UNK>)")
    data.add_argument("--min-count", type=int, help="keep tokens seen at least this often (default 1)")
    data.add_argument("--batching", choices=["sentences", "stream"], help="sentences: padded lines with lengths; stream: chunks for truncated BPTT, state carried (default sentences)")
    data.add_argument("--batch-size", type=int, help="sequences (or parallel streams) per batch (default 32)")
    data.add_argument("--bptt", type=int, help="time steps per chunk with --batching stream (default 64)")

    model = lm.add_argument_group("model")
    model.add_argument("--cell", help="rnn, gru, gru-simple, gru-cudnn or lstm (default lstm)")
    model.add_argument("--embedding-size", type=int, help="default 64")
    model.add_argument("--hidden-size", type=int, help="default 256")
    model.add_argument("--num-layers", type=int, help="default 1")
    model.add_argument("--dropout", type=float, help="on embeddings, between layers and before the output (default 0)")
    model.add_argument("--head-sizes", type=_list_of_ints, help="deep non-recurrent head, e.g. 256,256 (default none)")
    model.add_argument("--tie-embeddings", action="store_true", default=None, help="share the output layer with the embedding")
    model.add_argument("--engine", choices=["auto", "reference", "fused", "native"], help="default auto")
    model.add_argument("--peepholes", action="store_true", default=None, help="LSTM peephole connections")
    model.add_argument("--nonlinearity", choices=["tanh", "relu"], help="for --cell rnn")

    training = lm.add_argument_group("training")
    training.add_argument("--epochs", type=int, help="default 10")
    training.add_argument("--max-steps", type=int, help="stop after this many steps (overrides --epochs)")
    training.add_argument("--lr", type=float, help="learning rate (default 0.002)")
    training.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], help="default adamw")
    training.add_argument("--weight-decay", type=float, help="default 0")
    training.add_argument("--momentum", type=float, help="for sgd (default 0)")
    training.add_argument("--schedule", choices=["constant", "cosine", "plateau"], help="default cosine")
    training.add_argument("--warmup-steps", type=int, help="linear warm-up (default 0)")
    training.add_argument("--clip", type=float, help="clip the gradient norm (default 1.0; 0 = off)")
    training.add_argument("--patience", type=int, help="early stop after this many evaluations without improvement")
    training.add_argument("--eval-every", type=int, help="steps between evaluations (default: each epoch)")
    training.add_argument("--sample-every", type=int, help="print samples every this many steps")
    training.add_argument("--log-every", type=int, help="steps per metrics row (default 50)")
    training.add_argument("--time-limit", type=float, help="seconds of training, then checkpoint and stop")
    training.add_argument("--stop-at-step", type=int, help="checkpoint and stop at this step (resumable)")
    training.add_argument("--seed", type=int, help="default 0")
    training.add_argument("--device", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    training.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    parser.set_defaults(verb="train")


NOT_SETTINGS = {"verb", "task", "run", "resume", "config"}


def run(args) -> int:
    from ..runs import read_config_file, resume, start

    given = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS and v is not None and v != []}
    if args.resume:
        if not args.run:
            raise ValueError("--resume needs --run DIR")
        if given.get("train"):
            raise ValueError("--resume reads the data recorded in the run; give no DATA files")
        _, summary = resume(args.run, given)
    else:
        values = read_config_file(args.config) if args.config else {}
        values.update(given)
        if values.get("clip") == 0:
            values["clip"] = None
        if not values.get("train"):
            raise ValueError("no training data: give DATA files (or 'train' in --config)")
        _, summary = start(args.task, values, args.run)
    _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()}
    print("summary: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
