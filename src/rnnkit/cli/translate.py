"""``rnnkit translate RUN TEXT...``: translations from a trained encoder-decoder."""

from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "translate",
        help="translate with a trained seq2seq run (greedy or beam search)",
        description="Translate each text (arguments, --file, or standard input). --beam K runs beam search with "
        "length normalisation; --nbest N prints the N best with their scores; --attention FILE.png draws the "
        "attention weights of the first text.",
    )
    parser.add_argument("run", metavar="RUN", help="run directory of a seq2seq model")
    parser.add_argument("text", nargs="*", help="texts, one per argument ('-' or none: standard input)")
    parser.add_argument("--file", help="translate every line of this file")
    parser.add_argument("--beam", type=int, help="beam width (default: the run's, 5)")
    parser.add_argument("--nbest", type=int, default=1, help="how many translations per text (default 1)")
    parser.add_argument("--replace-unk", action="store_true", help="replace <UNK> by the source word attended to most")
    parser.add_argument("--attention", metavar="PNG", help="write the first text's attention heat map here")
    parser.add_argument("--json", action="store_true", help="JSON lines")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(verb="translate")


def run(args) -> int:
    from ..runs import open_run
    from ..training.plots import plot_attention
    from ._inputs import texts_from

    texts = texts_from(args.text, args.file)
    task, model, config, device = open_run(args.run, args.weights, args.device)
    if config["task"] != "seq2seq":
        raise ValueError(f"{args.run}: a {config['task']} run, not a seq2seq one")
    if args.nbest < 1:
        raise ValueError(f"--nbest must be at least 1, got {args.nbest}")
    beam = args.beam or task.data.beam
    results = task.translate(model, texts, device, beam=beam, nbest=args.nbest, replace_unk=args.replace_unk)
    for text, hypotheses in zip(texts, results):
        if args.json:
            print(json.dumps({"source": text, "translations": [{k: h[k] for k in ("text", "score", "log_prob")} for h in hypotheses]}, ensure_ascii=False))
        elif args.nbest == 1:
            print(hypotheses[0]["text"])
        else:
            for rank, h in enumerate(hypotheses, start=1):
                print(f"{rank}\t{h['score']:.3f}\t{h['text']}")
    if args.attention:
        first = results[0][0]
        if not first["attention"]:
            raise ValueError("this model has no attention to draw")
        plot_attention(first["attention"], task.source_tokenizer.tokenize(texts[0]), first["tokens"] + ["<EOS>"], args.attention)
        print(f"attention heat map: {args.attention}")
    return 0
