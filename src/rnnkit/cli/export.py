"""``rnnkit export RUN --format onnx --out model.onnx``: a trained run as ONNX graphs and a JSON.

Writes the run's model as ONNX graphs (the recurrent layers as ONNX's own RNN/GRU/LSTM operators; a
seq2seq run as OUT's stem .encoder.onnx and .decoder.onnx) and a JSON beside them with the
tokenizer, vocabularies and labels, then runs the graphs in onnxruntime beside rnnkit on a random
padded batch and prints how far apart they are. docs/serving.md shows how to run them.
"""

from __future__ import annotations

import sys

from ._options import output_file
from ._run_options import run_parser


def add_parser(subparsers) -> None:
    parser = run_parser(subparsers, "export", device=False, description=__doc__)
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="the only format so far: onnx")
    parser.add_argument("--out", required=True, type=output_file, help="file to write, ending in .onnx (the JSON goes beside it)")
    parser.add_argument("--no-check", action="store_true", help="do not run the export in onnxruntime against rnnkit")


def run(args) -> int:
    from ..export import export_run

    result = export_run(args.run, args.out, weights=args.weights, check=not args.no_check)
    if not result["training_ended"]:
        print(f"rnnkit export: note: {args.run} has no summary.json (still training, or stopped before its end): "
              f"the graph holds its {args.weights} weights so far", file=sys.stderr)
    for path in result["files"]:
        print(path)
    if result["differences"]:
        name, worst = max(result["differences"].items(), key=lambda item: item[1])
        print(f"onnxruntime against rnnkit on a random padded batch: largest difference {worst:.1e} relative to the output's scale ({name})")
    return 0
