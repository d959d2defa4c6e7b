"""``rnnkit sample RUN``: novel sequences from a trained language model."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="sample novel sequences from a trained language model",
        description="Start from x<1> = 0 (or --prime text), draw each token from the softmax, feed it back, "
        "stop at <EOS> or --max-length. Each sample is marked novel or seen in the training data.",
    )
    parser.add_argument("run", metavar="RUN", help="run directory")
    parser.add_argument("-n", "--num", type=int, default=10, help="number of samples (default 10)")
    parser.add_argument("--temperature", type=float, default=1.0, help="below 1: safer, above 1: wilder (default 1)")
    parser.add_argument("--top-k", type=int, help="draw among the k most likely tokens only")
    parser.add_argument("--top-p", type=float, help="draw among the most likely tokens holding probability p")
    parser.add_argument("--greedy", action="store_true", help="always take the most likely token")
    parser.add_argument("--prime", default="", help="text to start from")
    parser.add_argument("--max-length", type=int, default=200, help="tokens per sample at most (default 200)")
    parser.add_argument("--seed", type=int, help="random seed, for reproducible samples")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(verb="sample")


def run(args) -> int:
    from ..decoding import SamplingOptions
    from ..runs import open_run

    task, model, _, device = open_run(args.run, args.weights, args.device)
    options = SamplingOptions(args.temperature, args.top_k, args.top_p, args.greedy, args.max_length).check()
    if args.num < 1:
        raise ValueError(f"--num must be at least 1, got {args.num}")
    for text, seen in task.generate(model, args.num, options, seed=args.seed, prime=args.prime, device=device):
        print(f"{text}\t({'seen in training data' if seen else 'novel'})")
    return 0
