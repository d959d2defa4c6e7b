"""``rnnkit sample RUN``: novel sequences from a trained language model.

Start from x<1> = 0 (or --prime text), draw each token from the softmax, feed it back, stop at <EOS>
or --max-length. Each sample is marked novel or seen in the training data. <UNK> is never drawn
unless --allow-unk (its logit is masked: the same as rejecting it and drawing again).
"""

from __future__ import annotations

from ..errors import UsageError
from ._options import nonnegative_int, positive_float, sample_count, sample_length, seed, top_p_float
from ._run_options import open_verb_run, run_parser


def add_parser(subparsers) -> None:
    parser = run_parser(subparsers, "sample", ["lm"], description=__doc__)
    parser.add_argument("-n", "--num", type=sample_count, help="number of samples (default 10; 1 with --greedy, whose samples are all alike)")
    parser.add_argument("--temperature", type=positive_float, help="below 1: safer, above 1: wilder (default 1)")
    parser.add_argument("--top-k", type=nonnegative_int, help="draw among the k most likely tokens only (0: all)")
    parser.add_argument("--top-p", type=top_p_float, help="draw among the most likely tokens holding probability p, in (0, 1]")
    parser.add_argument("--greedy", action="store_true", help="always take the most likely token")
    parser.add_argument("--prime", default="", help="text to start from; printed as typed, its unseen characters or words named on stderr")
    parser.add_argument("--allow-unk", action="store_true", help="let samples contain <UNK> (default: never drawn)")
    parser.add_argument("--max-length", type=sample_length, default=200, help="tokens drawn per sample at most, after the --prime (default 200)")
    parser.add_argument("--seed", type=seed, help="random seed: the same seed and --num give the same samples (the --num samples are drawn as one batch, so another --num draws others)")


def run(args) -> int:
    from ..decoding import SamplingOptions
    from ..data.textio import typed_argument
    from ._inputs import describe_tokens, unknown_tokens, warn

    if args.greedy:  # one token each step, the likeliest: what shapes a draw changes nothing
        drawn = [option for option, value in (("--temperature", args.temperature), ("--top-k", args.top_k), ("--top-p", args.top_p), ("--seed", args.seed)) if value is not None]
        if drawn or (args.num or 1) > 1:
            given = ", ".join(drawn + ([f"--num {args.num}"] if (args.num or 1) > 1 else []))
            raise UsageError(f"--greedy takes the likeliest token at every step, so {given} would do nothing (every sample alike); leave {'it' if given.count('--') == 1 else 'them'} out")
    num = args.num or (1 if args.greedy else 10)
    task, model, _, device = open_verb_run(args)
    options = SamplingOptions(1.0 if args.temperature is None else args.temperature, args.top_k, args.top_p, args.greedy, args.max_length, args.allow_unk).check()
    args.prime = typed_argument(args.prime, "--prime")  # as a file's text is read: UTF-8, no BOM
    if args.prime:
        unseen = unknown_tokens(task.prime_tokens(args.prime), task.vocab, task.tokenizer, args.prime)
        if unseen:  # once, before the samples: the model reads them as <UNK>, the output shows them as typed
            warn("sample", f"--prime: not in the vocabulary, read as <UNK>: {describe_tokens(unseen)}")
    for text, seen in task.generate(model, num, options, seed=args.seed, prime=args.prime, device=device):
        print(f"{text}\t({'seen in training data' if seen else 'novel'})")
    return 0
