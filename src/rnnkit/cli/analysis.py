"""``rnnkit gradients``, ``rnnkit agreement``, ``rnnkit inspect``: long-term dependencies made visible."""

from __future__ import annotations

import json
from pathlib import Path

from ._options import device as device_option, nonnegative_int, positive_float, positive_int, seed


def add_parser(subparsers) -> None:
    gradients = subparsers.add_parser(
        "gradients",
        help="gradient flow over time for RNN, GRU and LSTM on the same text; exploding gradients and clipping",
        description="Trains small character language models of each cell on TEXT (default: the demo's first names) and "
        "measures the mean norm of dL<T>/da<t> against T - t, at initialisation and after training; then scales an RNN's "
        "recurrent weights up to show exploding gradients and the effect of clipping.",
    )
    gradients.add_argument("text", nargs="?", help="a UTF-8 text file (default: the names the demo uses)")
    gradients.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    gradients.add_argument("--length", type=positive_int, default=50, help="T: steps between the first input and the loss (default 50)")
    gradients.add_argument("--steps", type=positive_int, default=300, help="training steps per cell (default 300)")
    gradients.add_argument("--hidden-size", type=positive_int, default=64)
    gradients.add_argument("--explode-scale", type=positive_float, default=3.0, help="factor on the RNN's recurrent weights for the exploding case")
    gradients.add_argument("--out", default="gradient_flow.png", help="the plot (default gradient_flow.png); a .json beside it holds the numbers")
    gradients.add_argument("--seed", type=seed, default=0)
    gradients.set_defaults(verb="gradients", handler=run_gradients)

    agreement = subparsers.add_parser(
        "agreement",
        help="subject-verb agreement over distance: accuracy of RNN, GRU and LSTM at equal parameter counts",
        description="Generates sentences whose verb (was/were) must agree with a subject k words back, across attractor "
        "nouns of the other number; trains a one-direction classifier per cell and reports accuracy against k.",
    )
    agreement.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    agreement.add_argument("--max-distance", type=nonnegative_int, default=12, help="test distances 0..K (default 12)")
    agreement.add_argument("--train-max-distance", type=nonnegative_int, help="train on distances up to K only (default: all tested ones)")
    agreement.add_argument("--train-min-distance", type=nonnegative_int, default=0, help="train on distances from K on only (default 0)")
    agreement.add_argument("--steps", type=positive_int, default=1500, help="training steps per cell (default 1500)")
    agreement.add_argument("--hidden-size", type=positive_int, default=48, help="the LSTM's hidden size; the others get its parameter count")
    agreement.add_argument("--out", default="agreement.png", help="the plot (default agreement.png); a .json and .md beside it")
    agreement.add_argument("--seed", type=seed, default=0)
    agreement.set_defaults(verb="agreement", handler=run_agreement)

    inspect = subparsers.add_parser(
        "inspect",
        help="an HTML page of a trained model's hidden units over a text, with unit rankings and gate saturation",
    )
    inspect.add_argument("run", metavar="RUN", help="run directory of a text model")
    inspect.add_argument("text", metavar="TEXT", help="a UTF-8 text file to read")
    inspect.add_argument("--out", default="report.html", help="the page to write (default report.html)")
    inspect.add_argument("--max-chars", type=positive_int, default=3000, help="read at most this many characters (default 3000)")
    inspect.add_argument("--weights", choices=["best", "last"], default="best")
    inspect.add_argument("--device", type=device_option, default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N, mps")
    inspect.set_defaults(verb="inspect", handler=run_inspect)


def run(args) -> int:
    return args.handler(args)


def run_gradients(args) -> int:
    from ..analysis.gradient_flow import compare_cells, plot_flows
    from ..data.text import read_lines
    from ..demos.names import first_names

    lines = read_lines(args.text) if args.text else first_names()
    results = compare_cells(lines, args.cells, args.length, 32, args.steps, args.hidden_size, args.explode_scale, seed=args.seed)
    curves = {f"{cell} (trained)": results["trained"][cell] for cell in args.cells}
    curves.update({f"{cell} (initial)": results["init"][cell] for cell in args.cells})
    out = Path(args.out)
    if plot_flows(curves, out, f"mean ‖∂L<T>/∂a<t>‖, T = {args.length}"):
        print(f"plot: {out}")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(f"numbers: {out.with_suffix('.json')}")
    print("\n| cell | factor per step, initial | factor per step, trained | g(10) / g(0), trained |\n|---|---:|---:|---:|")
    for cell in args.cells:
        norms = results["trained"][cell]
        ratio = norms[min(10, len(norms) - 1)] / norms[0] if norms[0] else float("nan")
        print(f"| {cell} | {results['rate_init'][cell]:.3f} | {results['rate_trained'][cell]:.3f} | {ratio:.2e} |")
    return 0


def run_agreement(args) -> int:
    from ..analysis.agreement import markdown_table, plot_accuracy, run_experiment

    results = run_experiment(args.cells, args.max_distance, steps=args.steps, budget_hidden=args.hidden_size, seed=args.seed, train_max_distance=args.train_max_distance, train_min_distance=args.train_min_distance)
    out = Path(args.out)
    table = markdown_table(results)
    print("\naccuracy (%) by distance k\n" + table)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(table + "\n")
    if plot_accuracy(results, out):
        print(f"plot: {out}")
    return 0


def run_inspect(args) -> int:
    from ..analysis.inspect import inspect, render_html
    from ..data.textio import read_lines
    from ..files import atomic_write
    from ._inputs import open_run_for

    text = "\n".join(read_lines(args.text))[: args.max_chars]  # every line break as LF, as the readers see them
    task, model, _, device = open_run_for("rnnkit inspect", args.run, ["lm", "tagger", "classifier", "seq2seq"], args.weights, args.device)
    report = inspect(task, model, text, device)
    atomic_write(Path(args.out), render_html(report).encode("utf-8"))
    layers = ", ".join(f"{layer['name']} ({layer['units']} units)" for layer in report["layers"])
    print(f"{args.out}: {len(report['tokens'])} tokens, layers {layers}")
    for layer in report["layers"]:
        for feature, ranked in layer["ranking"].items():
            best = ranked[0]
            print(f"  {layer['name']}: unit {best['unit']} tracks {feature} (r = {best['r']:+.2f})")
        for gate, s in layer["gate_saturation"].items():
            print(f"  {layer['name']}: gate {gate}: {100 * s['below 0.1']:.1f}% below 0.1, {100 * s['above 0.9']:.1f}% above 0.9")
    return 0
