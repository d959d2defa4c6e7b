"""``rnnkit export``: a trained run as ONNX graphs (run with onnxruntime alone, no PyTorch) and a JSON
beside them with everything the graphs do not hold: tokenizer, vocabularies, labels, ids, settings.

The recurrent layers become ONNX's own ``RNN``/``GRU``/``LSTM`` operators (``export.recurrent``), the
models around them plain ONNX nodes (``export.models``); ``export.verify`` runs the result in
onnxruntime beside rnnkit. docs/serving.md shows each kind run from numpy with a decoding loop.
Needs ``pip install 'rnnkit[export]'`` (onnx; onnxruntime to check and run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..errors import DataError, UsageError, require

__all__ = ["EXPORTERS", "export_model", "export_run", "metadata"]


def _onnx():
    return require("onnx", extra="export", purpose="export writes ONNX")


def export_model(model) -> dict:
    """{graph role: onnx.ModelProto} of an rnnkit model (``model`` for most kinds; ``encoder`` and
    ``decoder`` for seq2seq). Raises UsageError for what has no ONNX form (it names it)."""
    _onnx()
    from .models import EXPORTERS

    if model.kind not in EXPORTERS:
        raise UsageError(f"export: no exporter for model kind {model.kind!r} (these have one: {', '.join(EXPORTERS)})")
    if model.config().get("lm_features_size"):  # its inputs are other runs' hidden states (rnnkit.models.lm_features)
        raise UsageError("export: no ONNX form for a model trained with --lm-features (it reads the language-model runs' states)")
    with torch.no_grad():
        return EXPORTERS[model.kind](model.cpu().float().eval())


def _io(proto) -> dict:
    """Names and shapes (dimension names for dynamic axes) of a graph's inputs and outputs."""
    from onnx import helper

    def describe(values):
        return {
            v.name: {
                "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
                "dtype": helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
            }
            for v in values
        }

    return {"inputs": describe(proto.graph.input), "outputs": describe(proto.graph.output)}


def _tokenizer_and_vocab(tokenizer, vocab) -> dict:
    from ..data.tokenizers import IGNORED_CHARACTERS, NO_SPACE_AFTER, NO_SPACE_BEFORE, word_rule
    from ..tasks.base import cuts_treebank, typed_text_rule

    return {
        "tokenizer": tokenizer.config(), "word_pattern": word_rule().pattern,  # the "word" level's rule, as a regular expression
        "ignored_characters": IGNORED_CHARACTERS,  # invisible characters every level reads text without
        "word_joining": {"no_space_before": "".join(sorted(NO_SPACE_BEFORE)), "no_space_after": "".join(sorted(NO_SPACE_AFTER))},  # and back to text
        "typed_text": typed_text_rule(cuts_treebank(tokenizer, vocab), vocab),  # typed text cut the Treebank's way first?
        "vocab": vocab.tokens, "pad_id": vocab.pad_id, "unk_id": vocab.unk_id, "eos_id": vocab.eos_id, "start_id": len(vocab),
    }  # fmt: skip


def _lm_metadata(task) -> dict:
    # line_breaks "eos": a line ends with <EOS>; "token": lines are a stream, "\n" a token, no <EOS>.
    # reverse: the model reads each line from its last token (a backward LM); <EOS> still comes last
    return {**_tokenizer_and_vocab(task.tokenizer, task.vocab), "line_breaks": task.data.line_breaks, "reverse": bool(task.data.reverse)}


def _tagger_metadata(task) -> dict:
    from ..data.tokenizers import IGNORED_CHARACTERS, word_rule
    from ..models.tagger import CASES
    from ..tasks.base import treebank_vocabulary, typed_text_rule

    return {
        "word_pattern": word_rule().pattern, "ignored_characters": IGNORED_CHARACTERS, "typed_text": typed_text_rule(treebank_vocabulary(task.words), task.words),
        "normalize": "lowercase, then every digit becomes 0 (the words vocabulary holds normalized words)",
        "words": task.words.tokens, "chars": task.chars.tokens, "unk_id": task.words.unk_id, "char_unk_id": task.chars.unk_id,
        "casing": list(CASES),
        "casing_rule": "numeric if all digits; has-digit if any digit; lower; upper; title (first upper, rest lower); mixed if any letter; else other",
        "tags": task.tags, "tag_scheme": task.data.train_scheme, "allowed": task.allowed,
    }  # fmt: skip


def _classifier_metadata(task) -> dict:
    # "strip": typed text loses the white space at its ends, as the training texts did (a character run reads it)
    return {**_tokenizer_and_vocab(task.tokenizer, task.vocab), "strip": True, "labels": task.labels}


def _seq2seq_metadata(task) -> dict:
    d = task.data
    return {
        "source": {**_tokenizer_and_vocab(task.source_tokenizer, task.source_vocab), "strip": True},  # as the classifier's
        "target": _tokenizer_and_vocab(task.target_tokenizer, task.target_vocab),
        "beam": d.beam, "length_alpha": d.length_alpha, "length_ratio": d.length_ratio, "length_extra": d.length_extra,
    }  # fmt: skip


def _music_metadata(task) -> dict:
    from ..data.music import KEYS, LOWEST

    step = {"step_seconds": task.data.step_seconds}  # how long a step lasts, as the run read MIDI (and compose writes it)
    if task.data.representation == "events":
        return {"representation": "events", "voices": task.data.voices, "vocab": task.vocab.tokens, "eos_id": task.vocab.eos_id,
                "pad_id": task.vocab.pad_id, "unk_id": task.vocab.unk_id, "start_id": len(task.vocab), **step}
    return {"representation": "piano-roll", "lowest_note": LOWEST, "keys": KEYS, **step}


# task kind -> what a program needs beside the graphs to turn its input into theirs and back
METADATA = {"lm": _lm_metadata, "tagger": _tagger_metadata, "classifier": _classifier_metadata, "seq2seq": _seq2seq_metadata, "music": _music_metadata}


def metadata(task, config: dict, graphs: dict, files: dict, summary: dict | None = None, weights: str = "best") -> dict:
    from ..version import __version__

    return {
        "rnnkit": __version__,
        "task": config["task"],
        "model": config["model"],
        "weights": weights,  # the run's "best" (by validation) or "last" weights
        "training_ended": summary is not None,  # False: still training, or stopped before its end (no summary.json)
        "files": files,
        "graphs": {role: _io(proto) for role, proto in graphs.items()},
        "preprocessing": METADATA[config["task"]](task),
        "metrics": summary or {},
    }


def graph_paths(out: Path, roles) -> dict[str, Path]:
    """``model.onnx`` for a single graph; ``model.encoder.onnx``, ``model.decoder.onnx`` for several."""
    roles = list(roles)
    if roles == ["model"]:
        return {"model": out}
    return {role: out.with_name(f"{out.stem}.{role}{out.suffix}") for role in roles}


AGREEMENT = 1e-3  # the largest difference between onnxruntime and rnnkit, relative to the output's scale, an export may have


def _check_agreement(differences: dict[str, float], run_path) -> None:
    """A one-line ``DataError`` when an output is not finite (NaN compares as no difference: a run
    whose outputs overflow, which every verb refuses, would pass), a ``RuntimeError`` (a bug) when
    the graphs disagree with rnnkit by more than ``AGREEMENT``."""
    for name, difference in differences.items():
        if not math.isfinite(difference):
            raise DataError(f"{run_path}: the model's outputs ({name}) are not finite on a random batch: its weights overflow "
                            "(the training that wrote them diverged); nothing was exported")  # fmt: skip
    name, worst = max(differences.items(), key=lambda item: item[1], default=(None, 0.0))
    if worst > AGREEMENT:
        raise RuntimeError(f"the exported graphs disagree with rnnkit ({name}: {worst:.1e}); nothing was written; a bug: please report it")


def export_run(run_path, out, weights: str = "best", check: bool = True) -> dict:
    """Write the run's ONNX graph(s) and ``<out stem>.json``; all or nothing. Returns
    {"files": [...], "differences": {output: relative difference} (empty without ``check``),
    "training_ended": whether the run has its summary.json (False: exported mid-training, or
    after a kill)}."""
    from ..files import RunDir, atomic_write_all, json_safe
    from ..runs import open_run

    out = Path(out)
    if out.suffix != ".onnx":
        raise UsageError(f"--out {out}: give a file name ending in .onnx")
    if out.parent.exists() and not out.parent.is_dir():
        raise UsageError(f"--out {out}: {out.parent} is a file, not a folder")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--out {out}: no such directory {out.parent}")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory; give a file name ending in .onnx")
    previous = _previous_export(out)
    task, model, config, _ = open_run(run_path, weights, "cpu")
    graphs = export_model(model)
    differences = {}
    if check:
        from .verify import compare

        differences = compare(model, graphs)
        _check_agreement(differences, run_path)  # before anything is written: a good earlier export stays
    paths = graph_paths(out, graphs)
    _check_not_someone_elses(out, paths.values(), previous)
    sidecar = out.with_suffix(".json")
    run = RunDir(run_path)
    summary = run.read_json("summary.json") if run.file("summary.json").exists() else None
    info = metadata(task, config, graphs, {role: p.name for role, p in paths.items()}, summary, weights)
    contents = {p: graphs[role].SerializeToString() for role, p in paths.items()}
    contents[sidecar] = (json.dumps(json_safe(info), indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")  # strict JSON: NaN as null
    atomic_write_all(contents)
    for name in (previous or {}).get("files", {}).values():  # an earlier export's graphs this one did not replace
        stale = out.parent / Path(str(name)).name
        if stale not in contents and stale.suffix == ".onnx" and stale.exists():
            stale.unlink()
    return {"files": [str(p) for p in contents], "differences": differences, "training_ended": summary is not None}


def _previous_export(out: Path) -> dict | None:
    """The JSON of an earlier export to ``out`` (None when there was none). An export replaces its
    own files; a ``.json`` beside ``out`` that is not an export's, or an ``.onnx`` with no export
    JSON beside it, is someone else's and is refused (``UsageError``), never overwritten."""
    sidecar = out.with_suffix(".json")
    if not sidecar.exists():
        if out.exists():
            raise UsageError(f"--out {out}: the file is there and is not an rnnkit export (no {sidecar.name} beside it); choose another --out")
        return None
    try:
        info = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        info = None
    if not (isinstance(info, dict) and "rnnkit" in info and isinstance(info.get("files"), dict)):
        raise UsageError(f"--out {out}: {sidecar} is there and is not an rnnkit export's JSON, which the export would write over; choose another --out")
    return info


def _check_not_someone_elses(out: Path, paths, previous: dict | None) -> None:
    """``UsageError`` when a graph file the export would write (a translation's ``.encoder.onnx``) is
    there and is no file of the earlier export to ``out``: another export's graph, or the user's."""
    own = {Path(str(name)).name for name in (previous or {}).get("files", {}).values()}
    for path in paths:
        if path.exists() and path.name not in own and path != out:
            raise UsageError(f"--out {out}: would write over {path}, which is not a file of an earlier export to {out.name} "
                             f"(another export's, or someone's); choose another --out")  # fmt: skip


def __getattr__(name):  # EXPORTERS without importing onnx at package import
    if name == "EXPORTERS":
        from .models import EXPORTERS

        return EXPORTERS
    raise AttributeError(name)
