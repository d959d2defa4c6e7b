"""Run an exported model in onnxruntime beside rnnkit on a random padded batch and measure how far
the two are apart: what ``rnnkit export`` reports after writing, and what the tests assert on.

Each model kind has one check in ``CHECKS``; each returns pairs (name, rnnkit's value, onnxruntime's)
compared on real (non-padding) positions only.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from ..cells import state_tensors
from ..errors import require


def session(model_proto):
    """An onnxruntime session of an in-memory ONNX model (CPU)."""
    ort = require("onnxruntime", extra="export", purpose="checking an export runs it")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _run(sess, **feeds) -> dict:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def _lengths(generator, T: int, B: int) -> torch.Tensor:
    lengths = torch.randint(1, T + 1, (B,), generator=generator)
    lengths[0] = T  # one full row, so that T is the batch's length
    return lengths


def _real(value: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero the padding positions of a (T, B, ...) tensor."""
    mask = torch.arange(value.shape[0])[:, None] < lengths[None, :]
    return value * mask.view(*mask.shape, *([1] * (value.dim() - 2)))


def _check_language_model(model, graphs, generator, T=7, B=4):
    V = model.output.out_features
    tokens = torch.randint(3, V, (T, B), generator=generator) if V > 3 else torch.full((T, B), V - 1)
    lengths = _lengths(generator, T, B)
    out = model(tokens, lengths=lengths)
    logits, state = out.logits, out.state  # (T, B, V)
    ids = torch.cat([torch.full((1, B), V), tokens[:-1]])  # id V: x<1> = 0
    return _carried_pairs(model, graphs, lengths, logits, state, input_ids=ids.numpy())


def _check_piano_roll(model, graphs, generator, T=7, B=3):
    rolls = (torch.rand(T, B, 88, generator=generator) < 0.1).float()
    lengths = _lengths(generator, T, B)
    out = model(rolls, lengths=lengths)
    logits, state = out.logits, out.state  # (T, B, 88)
    x = torch.cat([torch.zeros(1, B, 88), rolls[:-1]])  # x<t> = v<t-1>
    return _carried_pairs(model, graphs, lengths, logits, state, rolls=x.numpy())


def _carried_pairs(model, graphs, lengths, logits, state, **inputs) -> list:
    """(name, the model's, the graph's) of a model that carries its state (a language model, a
    piano-roll model): the graph run on ``inputs`` from a zero state a<0> (c<0>); the logits (T, B, V)
    on real steps and every final state (L, B, H)."""
    B = len(lengths)
    zeros = np.zeros((model.recurrent.num_layers, B, model.recurrent.hidden_size), np.float32)
    names = model.recurrent.cells["l0"].state_names
    out = _run(session(graphs["model"]), lengths=lengths.int().numpy(), **inputs, **{f"state_{n}": zeros for n in names})
    pairs = [("logits", _real(logits, lengths), _real(torch.from_numpy(out["logits"]), lengths))]
    return pairs + [(f"state_{n}", s, torch.from_numpy(out[f"state_{n}_out"])) for n, s in zip(names, state_tensors(state))]


def _check_tagger(model, graphs, generator, T=6, B=3, C=5):
    lengths = _lengths(generator, T, B)
    real = torch.arange(T)[:, None] < lengths[None, :]  # (T, B)
    words = torch.randint(1, model.features.words.num_embeddings, (T, B), generator=generator) * real
    char_lengths = torch.randint(1, C + 1, (T, B), generator=generator) * real
    n_chars = model.features.chars.num_embeddings if model.features.chars is not None else 2
    chars = torch.randint(1, n_chars, (T, B, C), generator=generator) * (torch.arange(C) < char_lengths[..., None])
    cases = torch.randint(1, 8, (T, B), generator=generator) * real
    batch = SimpleNamespace(words=words, chars=chars, char_lengths=char_lengths, cases=cases, lengths=lengths)
    emissions = model(batch).logits  # (T, B, K)
    out = _run(session(graphs["model"]), words=words.numpy(), chars=chars.numpy(), char_lengths=char_lengths.int().numpy(), cases=cases.numpy(), lengths=lengths.int().numpy())
    pairs = [("emissions", _real(emissions, lengths), _real(torch.from_numpy(out["emissions"]), lengths))]
    if model.crf is not None:
        pairs.append(("crf_transitions", model.crf.transitions, torch.from_numpy(out["crf_transitions"])))
    return pairs


def _check_classifier(model, graphs, generator, T=7, B=4):
    tokens = torch.randint(1, model.embedding.num_embeddings, (T, B), generator=generator)
    lengths = _lengths(generator, T, B)
    tokens = tokens * (torch.arange(T)[:, None] < lengths[None, :])
    logits = model(tokens, lengths).logits  # (B, C)
    out = _run(session(graphs["model"]), tokens=tokens.numpy(), lengths=lengths.int().numpy())
    return [("logits", logits, torch.from_numpy(out["logits"])), ("probabilities", logits.softmax(-1), torch.from_numpy(out["probabilities"]))]


def _check_seq2seq(model, graphs, generator, S=6, B=3, steps=4):
    source = torch.randint(3, model.source_embedding.num_embeddings, (S, B), generator=generator)
    lengths = _lengths(generator, S, B)
    source = source * (torch.arange(S)[:, None] < lengths[None, :])
    state = model.start(source, lengths)
    encoded = _run(session(graphs["encoder"]), source=source.numpy(), source_lengths=lengths.int().numpy())
    pairs = [("memory", _real(state.memory, lengths), _real(torch.from_numpy(encoded["memory"]), lengths))]
    decoder = session(graphs["decoder"])
    wanted = {i.name for i in decoder.get_inputs()}
    feeds = {k: v for k, v in encoded.items() if k in wanted}
    V = model.output.out_features
    previous = None
    for t in range(steps):
        step = model.step(previous, state)
        logits, state, weights = step.logits, step.state, step.attention  # (B, V), ..., (B, S) or None
        ids = np.full(B, V, np.int64) if previous is None else previous.numpy()
        out = _run(decoder, previous=ids, **feeds)
        pairs.append((f"logits<{t + 1}>", logits, torch.from_numpy(out["logits"])))
        if weights is not None:
            pairs.append((f"attention<{t + 1}>", weights, torch.from_numpy(out["attention"])))
        for name in [n for n in wanted if n.startswith("state_") or n == "feed"]:
            feeds[name] = out[f"{name}_out"]
        previous = logits.argmax(-1)  # both follow rnnkit's choice, so the paths never part
    return pairs


# model kind -> check(model, graphs, generator) -> [(name, rnnkit value, onnxruntime value)]
CHECKS = {"lm": _check_language_model, "piano-roll": _check_piano_roll, "tagger": _check_tagger, "classifier": _check_classifier, "seq2seq": _check_seq2seq}


@torch.no_grad()
def compare(model, graphs: dict, seed: int = 0) -> dict[str, float]:
    """For each compared output: max |rnnkit - onnxruntime| / max(1, max |rnnkit|), on a random
    padded batch (float32). The model must be on the CPU and in eval mode."""
    model = model.cpu().float().eval()
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for name, ours, theirs in CHECKS[model.kind](model, graphs, generator):
        ours, theirs = ours.float(), theirs.float()
        if ours.shape != theirs.shape:
            raise AssertionError(f"{name}: rnnkit gives shape {tuple(ours.shape)}, onnxruntime {tuple(theirs.shape)}")
        result[name] = float((ours - theirs).abs().max()) / max(1.0, float(ours.abs().max()))
    return result
