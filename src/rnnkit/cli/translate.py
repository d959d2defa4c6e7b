"""``rnnkit translate RUN TEXT...``: translations from a trained encoder-decoder.

Translate each line (arguments, --file, or standard input): one output line per input line, a blank
line giving an empty line. --beam K runs beam search with length normalisation; --nbest N prints the
N best with their scores, N lines per text (fewer, or one empty line for a blank line, said on
stderr); --plot FILE.png draws the attention weights of the first text.
"""

from __future__ import annotations

import json
import sys

from ._options import beam_width, positive_int
from ._run_options import add_plot, run_parser, texts_and_run


def add_parser(subparsers) -> None:
    parser = run_parser(subparsers, "translate", ["seq2seq"], description=__doc__, text="texts",
                        json="JSON lines: the translations with their scores, unknown words")  # fmt: skip
    parser.add_argument("--beam", type=beam_width, help="beam width, 1 to 1000 (default: the run's, 5)")
    parser.add_argument("--nbest", type=positive_int, default=1, help="how many translations per text (default 1)")
    parser.add_argument("--replace-unk", action="store_true", help="replace <UNK> by the source word attended to most")
    add_plot(parser, "the first text's attention weights (a heat map)", old="--attention")


def run(args) -> int:
    from ..data.parallel import bitext_form
    from ..errors import UsageError
    from ..files import RunDir
    from ._inputs import check_run_for, is_blank, per_line, unknown_tokens, warn, warn_unseen

    check_run_for("rnnkit translate", args.run, args.kinds)
    data = RunDir(args.run).read_json("config.json").get("data")  # the run's own beam, when none is given (a damaged file: checked when it opens)
    recorded = data.get("beam") if isinstance(data, dict) else None
    beam = args.beam or (recorded if type(recorded) is int and recorded >= 1 else None)  # another value: config.json's fault, said when it opens
    if beam is not None and args.nbest > beam:  # said before standard input is read, as the task would after
        raise UsageError(f"--nbest {args.nbest} cannot exceed the beam width {beam}: give --beam {args.nbest} or more")
    texts, task, model, device = texts_and_run(args)
    beam = args.beam or task.data.beam
    lines = [text for text in texts if not is_blank(text)]
    if bitext := bitext_form(lines):  # a bitext's source and target: both sides translated as one text
        warn("translate", f"the input's lines look like a bitext ({bitext.form}?), but translate reads one source text per line: each "
                          f"whole line was translated; give the source side only ({bitext.source_side}), or rnnkit eval RUN SOURCE,TARGET to score")
    if model.attention is None and (args.replace_unk or args.plot):  # said before any translating, not ignored or after it
        option = "--replace-unk copies the source word the attention points at" if args.replace_unk else "--plot draws the attention"
        raise UsageError(f"{option}, and {args.run} was trained with --attention none; leave it out")

    def translate(kept: list[str]) -> list:
        return task.translate(model, kept, device, beam=beam, nbest=args.nbest, replace_unk=args.replace_unk, typed=True)

    results = per_line(texts, translate)
    unseen: dict[str, None] = {}
    for text, hypotheses in zip(texts, results):
        hypotheses = hypotheses or []  # a blank line: no translation
        unknown = [] if is_blank(text) else unknown_tokens(task.typed_source(text), task.source_vocab, task.source_tokenizer, text.strip())  # what the model read
        unseen.update(dict.fromkeys(unknown))
        if args.json:
            translations = [{k: h[k] for k in ("text", "score", "log_prob")} for h in hypotheses]
            print(json.dumps({"source": text, "translations": translations, "unknown": unknown}, ensure_ascii=False))
        elif not hypotheses:
            print()
        elif args.nbest == 1:
            print(hypotheses[0]["text"])
        else:  # one line per hypothesis: rank, score, text
            for rank, h in enumerate(hypotheses, start=1):
                print(f"{rank}\t{h['score']:.3f}\t{h['text']}")
    short = sum(1 for hypotheses in results if hypotheses and len(hypotheses) < args.nbest)
    if short:  # said, or a script counting nbest lines per text loses its place
        warn("translate", f"{short:,} text(s) have fewer than --nbest {args.nbest} translations: the beam of {beam} found only "
                          f"{min(len(h) for h in results if h)} finished within the length limit")
    blank = sum(1 for text in texts if is_blank(text)) if args.nbest > 1 and not args.json else 0
    if blank:  # the same: its one empty line is no N lines
        warn("translate", f"{blank:,} blank line(s) gave one empty line each, not --nbest {args.nbest} lines")
    if not args.json:
        warn_unseen("translate", "not in the source vocabulary, read as <UNK>", unseen)
    if args.plot:
        first = next((i for i, text in enumerate(texts) if not is_blank(text)), None)
        if first is None or not results[first][0]["attention"]:
            raise UsageError("--plot: no text to draw")
        from ..plots import plot_attention

        best = results[first][0]
        source_tokens = task.typed_source(texts[first])
        plot_attention(best["attention"], source_tokens, best["tokens"] + ["<EOS>"], args.plot)
        print(f"attention heat map: {args.plot}", file=sys.stderr)  # stdout holds one line per input line, nothing else
    return 0
