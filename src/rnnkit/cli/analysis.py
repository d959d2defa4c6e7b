"""``rnnkit gradients``, ``rnnkit agreement``, ``rnnkit inspect``: long-term dependencies made visible."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ._options import html_file, nonnegative_int, number, png_file, positive_float, positive_int, seed
from ..errors import UsageError
from ._run_options import add_text_input, hidden_alias, open_verb_run, run_parser, verb_parser


def add_parser(subparsers) -> None:
    gradients = verb_parser(
        subparsers, "gradients",
        "Trains small character language models of each cell on the text (default: the names the demo "
        "uses) and measures the mean norm of dL<T>/da<t> against T - t, at initialisation and after training; then "
        "scales an RNN's recurrent weights up to show exploding gradients and the effect of clipping.",
    )
    add_text_input(gradients, "lines of text to train on", stdin="'-': standard input; none: the demo's first names")
    add_comparison(gradients, 300, 64, "the hidden size of every cell", "gradient_flow.png", "a .json beside it holds the numbers")
    # a flow over one step has no rate to fit, and its table would read g(0) / g(0)
    gradients.add_argument("--length", type=number(int, low=2, name="flow_steps"), default=50, help="T: steps between the first input and the loss, 2 or more (default 50)")
    gradients.add_argument("--explode-scale", type=positive_float, default=3.0, help="factor on the RNN's recurrent weights for the exploding case (default 3.0; small hidden sizes may still not explode)")
    gradients.set_defaults(handler=run_gradients)

    agreement = verb_parser(
        subparsers, "agreement",
        "Generates sentences whose verb (was/were) must agree with a subject k words back, across nouns of "
        "either number; trains a one-direction classifier per cell and reports accuracy against k. The defaults are "
        "docs/benchmarks.md's figure: trained on k = 8..24 only, the RNN stays at chance where the GRU and LSTM reach "
        "100 % (about 2 minutes on one core); --train-min-distance 0 trains on every distance, where all three cells "
        "reach 100 %.",
    )
    add_comparison(agreement, 1500, 48, "the LSTM's hidden size; the others get its parameter count", "agreement.png", "a .json and .md beside it")
    agreement.add_argument("--max-distance", type=nonnegative_int, default=24, help="test distances 0..K (default 24)")
    agreement.add_argument("--train-max-distance", type=nonnegative_int, help="train on distances up to K only (default: --max-distance)")
    agreement.add_argument("--train-min-distance", type=nonnegative_int, default=8, help="train on distances from K on only (default 8)")
    agreement.set_defaults(handler=run_agreement)

    inspect = run_parser(subparsers, "inspect", ["lm", "tagger", "classifier", "seq2seq"], description="Reads the text "
                         "with the run's model and writes a page of its hidden units and gates over it, ranking the "
                         "units by what they follow (position in the line, inside quotes ...).", text="the text")  # fmt: skip
    inspect.add_argument("--out", default="report.html", type=html_file, help="the page to write (default report.html)")
    inspect.add_argument("--max-chars", type=positive_int, default=3000, help="read at most this many characters (default 3000)")
    inspect.set_defaults(handler=run_inspect)


def add_comparison(parser, train_steps: int, hidden_size: int, hidden_help: str, out: str, beside: str) -> None:
    """The options of an experiment that trains each cell and compares them (gradients, agreement):
    the cells, ``--train-steps`` per cell (``--steps``, its former name, still works; rnnkit
    compose's generated steps are ``--length``), the hidden size, the plot (``out``; ``beside``:
    the files written next to it) and the seed."""
    parser.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"], metavar="CELL",
                        help="the cells to compare, each once (rnnkit cells lists them; default: rnn gru lstm)")
    parser.add_argument("--train-steps", type=positive_int, default=train_steps, help=f"training steps per cell (default {train_steps})")
    hidden_alias(parser, "--steps", "train_steps", type=positive_int)
    parser.add_argument("--hidden-size", type=positive_int, default=hidden_size, help=f"{hidden_help} (default {hidden_size})")
    parser.add_argument("--out", default=out, type=png_file, help=f"the plot, a .png (default {out}); {beside}")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")


def text_lines(args, max_characters: int | None = None) -> list[str]:
    """TEXT..., --file or '-' as every verb reads them. A lone TEXT naming an existing file is read
    as that file, with a note: that was these verbs' form before they took text as the others do.
    ``max_characters``: the longest line taken (default: the verbs' ``MAX_LINE_CHARACTERS``)."""
    from ._inputs import MAX_LINE_CHARACTERS, texts_from, warn

    most = max_characters or MAX_LINE_CHARACTERS
    if len(args.text) == 1 and args.file is None and args.text[0] != "-" and Path(args.text[0]).is_file():
        warn(args.verb, f"reading {args.text[0]} as a file (a TEXT argument is text now; write --file {args.text[0]})")
        return texts_from([], args.text[0], most, per_line=False)
    return texts_from(args.text, args.file, most, per_line=False)


def run(args) -> int:
    if getattr(args, "cells", None) is not None:  # checked here, before any training (--help imports no torch)
        from ..cells import CELLS

        unknown = [cell for cell in args.cells if cell not in CELLS]
        if unknown:
            raise UsageError(f"--cells: unknown cell {unknown[0]!r}; choose from {', '.join(CELLS)}")
        args.cells = list(dict.fromkeys(args.cells))  # "rnn rnn": one row, not the same cell trained twice
    if getattr(args, "hidden_size", None) is not None:  # an LSTM's 8 n_a² weights (gates over [a, x]), trained: refused up front, not an allocator's traceback
        from ..files import usable_memory
        from ..models.registry import training_bytes

        needed, memory = training_bytes(8 * args.hidden_size**2 * len(getattr(args, "cells", None) or [None])), usable_memory()
        if needed > memory:
            raise UsageError(f"--hidden-size {args.hidden_size:,}: the cells' weights would need about {needed / 2**30:,.1f} GiB to train, "
                             f"more than the {memory / 2**30:,.1f} GiB this process may use; give a smaller one")
    return args.handler(args)


def _digest(record: dict) -> str:
    """SHA-256 of an experiment's record (keys sorted), written into it as ``sha256``: what tells
    a later run that the JSON is as it wrote it."""
    import hashlib

    return hashlib.sha256(json.dumps(record, sort_keys=True, allow_nan=False).encode()).hexdigest()


def _numbers(record: dict) -> bytes:
    """An experiment's JSON: strict (NaN and inf as null), with its own digest."""
    from ..files import json_safe

    record = json.loads(json.dumps(json_safe(record), allow_nan=False))  # as it will read back
    return json.dumps({**record, "sha256": _digest(record)}, indent=1, allow_nan=False).encode()


def _refuse_writing_over(out: Path, experiment: str, suffixes: tuple[str, ...]) -> None:
    """The files an experiment writes beside its picture (``out`` with ``suffixes``) replace only
    its own earlier ones, whose JSON says ``"experiment": experiment``; another file there (the
    user's data named like the picture) is a ``UsageError`` before any training, as ``export``
    refuses, never overwritten."""
    import hashlib

    numbers = out.with_suffix(".json")
    try:
        record = json.loads(numbers.read_text(encoding="utf-8"))
        unedited = record.pop("sha256", None) == _digest(record)  # the numbers as written, not edited since
        written = record.get("written", {}) if record.get("experiment") == experiment and unedited else None  # suffix -> SHA-256 of what it wrote
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        written = None
    for suffix in suffixes:
        beside = out.with_suffix(suffix)
        if not beside.exists():
            continue
        ours = written is not None and (suffix == ".json" or written.get(suffix) == hashlib.sha256(beside.read_bytes()).hexdigest())
        if not ours:  # the numbers of another run, or a file edited since: someone's
            raise UsageError(f"--out {out}: {beside} is there and is not an earlier rnnkit {experiment}'s, which this would write over; choose another --out")


def _said_plot(drawn: bool, out: Path) -> None:
    """Where the picture went, or why there is none (matplotlib is an extra: the numbers are written without it)."""
    if drawn:
        print(f"plot: {out}")
    else:
        print(f"rnnkit: note: no plot drawn at {out}: matplotlib is not installed (pip install 'rnnkit[plot]'); the numbers are beside it", file=sys.stderr)


def run_gradients(args) -> int:
    from ..analysis.gradient_flow import compare_cells, plot_flows
    from ..files import atomic_write_all, drawn_aside

    _refuse_writing_over(Path(args.out), "gradients", (".json",))
    from ..demos.names import first_names

    lines = [line for line in text_lines(args) if line.strip()] if args.text or args.file else first_names()
    if not lines:  # the text counted without its blank lines would say "0 characters" of a file full of them
        raise UsageError("the text has only blank lines; give text to train the cells on")
    results = compare_cells(lines, args.cells, args.length, 32, args.train_steps, args.hidden_size, args.explode_scale, seed=args.seed)
    curves = {f"{cell} (trained)": results["trained"][cell] for cell in args.cells}
    curves.update({f"{cell} (initial)": results["init"][cell] for cell in args.cells})
    out = Path(args.out)
    picture = drawn_aside(lambda path: plot_flows(curves, path, f"mean ‖∂L<T>/∂a<t>‖, T = {args.length}"), out)
    record = {"experiment": "gradients", **results}  # what tells a later run's --out that the file is its own
    out.parent.mkdir(parents=True, exist_ok=True)  # folders on the way made, as for the plot
    atomic_write_all({**({out: picture} if picture is not None else {}), out.with_suffix(".json"): _numbers(record)})  # one set
    _said_plot(picture is not None, out)
    print(f"numbers: {out.with_suffix('.json')}")
    k = min(10, *(len(results["trained"][cell]) - 1 for cell in args.cells))  # 10 steps back, or all there are
    print(f"\n| cell | factor per step, initial | factor per step, trained | g({k}) / g(0), trained |\n|---|---:|---:|---:|")
    for cell in args.cells:
        norms = results["trained"][cell]
        ratio = norms[min(k, len(norms) - 1)] / norms[0] if norms[0] else float("nan")
        print(f"| {cell} | {results['rate_init'][cell]:.3f} | {results['rate_trained'][cell]:.3f} | {ratio:.2e} |")
    return 0


def run_agreement(args) -> int:
    from ..analysis.agreement import markdown_table, plot_accuracy, run_experiment
    from ..files import atomic_write_all, drawn_aside

    _refuse_writing_over(Path(args.out), "agreement", (".json", ".md"))
    results = run_experiment(args.cells, args.max_distance, steps=args.train_steps, budget_hidden=args.hidden_size, seed=args.seed, train_max_distance=args.train_max_distance, train_min_distance=args.train_min_distance)
    out = Path(args.out)
    table = markdown_table(results)
    print("\naccuracy by distance k\n" + table)
    import hashlib

    markdown = (table + "\n").encode()
    # what tells a later run's --out that the files are its own (the table as written, not one edited since)
    record = {"experiment": "agreement", "written": {".md": hashlib.sha256(markdown).hexdigest()}, **results}
    out.parent.mkdir(parents=True, exist_ok=True)  # folders on the way made, as for the plot
    # the pair written together, the describing JSON last: a kill or a full disk between two writes
    # would leave a table its JSON does not describe, which the next run's --out refuses as someone's
    # and the picture with them (an interrupt, a full disk or a kill left new numbers beside an old picture)
    picture = drawn_aside(lambda path: plot_accuracy(results, path), out)
    atomic_write_all({**({out: picture} if picture is not None else {}), out.with_suffix(".md"): markdown, out.with_suffix(".json"): _numbers(record)})
    _said_plot(picture is not None, out)
    return 0



TRACKS = 0.3  # the |correlation| from which a unit is said to track a feature (a moderate one, by convention)


def run_inspect(args) -> int:
    from ..analysis.inspect import MIN_TOKENS, inspect, render_html
    from ._inputs import check_run_for, warn
    from ..files import atomic_write
    from ..metrics import percent

    check_run_for(f"rnnkit {args.verb}", args.run, args.kinds)  # before standard input is read
    # only the first --max-chars are read: a file of one long line (enwik8, a char-rnn corpus) is no longer refused for it
    whole = "\n".join(text_lines(args, max_characters=sys.maxsize))  # every line break as LF, as the readers see them
    text = whole[: args.max_chars]
    if len(text) < len(whole):
        warn(args.verb, f"the text has {len(whole):,} characters; the first {args.max_chars:,} are read (--max-chars)")
    task, model, _, device = open_verb_run(args)
    report = inspect(task, model, text, device)
    atomic_write(Path(args.out), render_html(report).encode("utf-8"))
    layers = ", ".join(f"{layer['name']} ({layer['units']} units)" for layer in report["layers"])
    print(f"{args.out}: {len(report['tokens'])} tokens, layers {layers}")
    if len(report["tokens"]) < MIN_TOKENS:
        print(f"  too few tokens to rank units by the text's features (any {len(report['tokens'])} points correlate strongly); give at least {MIN_TOKENS}")
    for layer in report["layers"]:
        for feature, ranked in layer["ranking"].items():
            best = ranked[0]
            if abs(best["r"]) >= TRACKS:
                print(f"  {layer['name']}: unit {best['unit']} tracks {feature} (r = {best['r']:+.2f})")
            else:  # a correlation this weak tracks nothing (a feature constant in this text gives r near 0)
                print(f"  {layer['name']}: no unit tracks {feature} (the largest |r| is {abs(best['r']):.2f})")
        for gate, s in layer["gate_saturation"].items():
            print(f"  {layer['name']}: gate {gate}: {percent(s['below 0.1'], 1)} below 0.1, {percent(s['above 0.9'], 1)} above 0.9")
    return 0
