r"""Each rnnkit model as ONNX graphs, in a registry by model kind (``EXPORTERS``).

Every graph is time-major and has a dynamic batch size ``B`` and sequence length ``T`` (``S`` for a
translation source); integer token ids are int64, lengths int32. An embedding table gets one more row
of zeros at index V (= the vocabulary size): feeding id V is x<1> = 0, the course's first input,
so one graph serves the first step and every later one.

=============  ==========================================================================================
model          graphs (inputs -> outputs)
=============  ==========================================================================================
``lm``         ``input_ids`` (T, B), ``lengths`` (B,), ``state_a`` [``state_c``] (L, B, H) ->
               ``logits`` (T, B, V), ``state_a_out`` [``state_c_out``]: score a batch in one call, or
               sample with T = 1 and the state fed back
``piano-roll`` ``rolls`` (T, B, 88) (x<t> = v<t-1>, zeros first), ``lengths``, ``state_a``... ->
               ``logits`` (T, B, 88) of the notes' Bernoulli probabilities σ(logits), ``state_a_out``...
``tagger``     ``words`` (T, B), ``chars`` (T, B, C), ``char_lengths`` (T, B) int32, ``cases`` (T, B),
               ``lengths`` -> ``emissions`` (T, B, K); with a CRF also ``crf_transitions`` (K, K),
               ``crf_start`` (K,), ``crf_end`` (K,) for Viterbi decoding
``classifier`` ``tokens`` (T, B), ``lengths`` -> ``logits`` (B, C), ``probabilities`` (B, C)
``seq2seq``    encoder: ``source`` (S, B), ``source_lengths`` -> ``memory`` (S, B, 2H), ``mask`` (S, B),
               [``keys`` (S, B, H)], ``state_a`` [``state_c``] (L, B, H), [``feed`` (B, H)];
               decoder step: ``previous`` (B,) and all of those -> ``logits`` (B, V), the new state,
               [``feed_out``], [``attention`` (B, S)]
=============  ==========================================================================================
"""

from __future__ import annotations

import numpy as np
import torch
from onnx import numpy_helper

from ..errors import UsageError
from .graph import BOOL, FLOAT, INT32, INT64, GraphBuilder, as_numpy
from .recurrent import recurrent, state_names, step_mask, time_steps


def embedding_with_start(g: GraphBuilder, embedding: torch.nn.Embedding, ids: str) -> str:
    """Rows of ``embedding`` for ``ids``; id V (one past the table) gives the zero vector x<1> = 0."""
    table = np.concatenate([as_numpy(embedding.weight), np.zeros((1, embedding.embedding_dim), np.float32)])
    return g.op("Gather", g.weight("embedding", table), ids, axis=0)


def deep_head(g: GraphBuilder, head, x: str) -> str:
    """``rnnkit.models.heads.DeepHead`` in eval mode: Linear -> tanh per hidden size."""
    for module in head:
        if isinstance(module, torch.nn.Linear):
            x = g.linear(x, module)
        elif isinstance(module, torch.nn.Tanh):
            x = g.op("Tanh", x)
    return x


def state_inputs(g: GraphBuilder, layer, prefix: str = "state") -> list[str]:
    rows = layer.num_layers * layer.num_directions
    return [g.input(f"{prefix}_{name}", FLOAT, [rows, "B", layer.hidden_size]) for name in state_names(layer)]


def state_outputs(g: GraphBuilder, layer, finals: list[str], prefix: str = "state") -> None:
    rows = layer.num_layers * layer.num_directions
    for name, final in zip(state_names(layer), finals):
        g.output(f"{prefix}_{name}_out", final, FLOAT, [rows, "B", layer.hidden_size])


def zero_state(g: GraphBuilder, layer, batch_of: str) -> list[str]:
    """a<0> = 0 (and c<0> = 0) for ``layer``: one (L*D, B, H) zero value per state name, with B the
    length of the 1-D value ``batch_of``."""
    shape = g.op("Concat", g.const([layer.num_layers * layer.num_directions]), g.op("Shape", batch_of), g.const([layer.hidden_size]), axis=0)
    return [g.op("ConstantOfShape", shape)] * len(state_names(layer))


# -- one-to-many and sequence models with a carried state ------------------------------------------


def export_language_model(model) -> dict:
    g = GraphBuilder("language_model")
    ids = g.input("input_ids", INT64, ["T", "B"])
    lengths = g.input("lengths", INT32, ["B"])
    state = state_inputs(g, model.recurrent)
    x = embedding_with_start(g, model.embedding, ids)  # (T, B, E)
    a, finals = recurrent(g, model.recurrent, x, lengths, state)  # (T, B, H)
    g.output("logits", g.linear(deep_head(g, model.head, a), model.output), FLOAT, ["T", "B", model.output.out_features])
    state_outputs(g, model.recurrent, finals)
    return {"model": g.model("rnnkit language model: logits of y<t> given x<1..t>; id V is x<1> = 0")}


def export_piano_roll(model) -> dict:
    g = GraphBuilder("piano_roll")
    rolls = g.input("rolls", FLOAT, ["T", "B", 88])
    lengths = g.input("lengths", INT32, ["B"])
    state = state_inputs(g, model.recurrent)
    a, finals = recurrent(g, model.recurrent, rolls, lengths, state)  # (T, B, H)
    g.output("logits", g.linear(deep_head(g, model.head, a), model.output), FLOAT, ["T", "B", 88])
    state_outputs(g, model.recurrent, finals)
    return {"model": g.model("rnnkit piano-roll model: P(key k at step t) = sigmoid(logits[t, b, k]); feed x<1> = 0")}


# -- many-to-many and many-to-one -------------------------------------------------------------------


def _final_outputs(g: GraphBuilder, final_a: str) -> str:
    """The last layer's final activations of both directions, joined: (B, 2H) from (L*D, B, H)."""
    last_two = g.op("Slice", final_a, g.const([-2]), g.const([2**62]), g.const([0]))  # (2, B, H)
    forward, backward = g.op("Split", last_two, g.const([1, 1]), axis=0, outputs=2)
    return g.op("Concat", g.op("Squeeze", forward, g.const([0])), g.op("Squeeze", backward, g.const([0])), axis=1)


def export_tagger(model) -> dict:
    g = GraphBuilder("tagger")
    words = g.input("words", INT64, ["T", "B"])
    chars = g.input("chars", INT64, ["T", "B", "C"])
    char_lengths = g.input("char_lengths", INT32, ["T", "B"])
    cases = g.input("cases", INT64, ["T", "B"])
    lengths = g.input("lengths", INT32, ["B"])
    features = model.features
    parts = [g.op("Gather", g.weight("words", features.words.weight), words, axis=0)]  # (T, B, word_size)
    if features.char_rnn is not None:
        # every word slot is a sequence of characters: (C, T*B) through a small BiLSTM
        flat = g.op("Reshape", g.op("Transpose", chars, perm=[2, 0, 1]), g.const([0, -1]))  # (C, T*B)
        x = g.op("Gather", g.weight("chars", features.chars.weight), flat, axis=0)  # (C, T*B, char_size)
        slot_lengths = g.op("Max", g.op("Reshape", char_lengths, g.const([-1])), g.const([1], np.int32))  # (T*B,)
        _, finals = recurrent(g, features.char_rnn, x, slot_lengths, zero_state(g, features.char_rnn, slot_lengths))
        char_features = _final_outputs(g, finals[0])  # (T*B, 2 char_hidden)
        shape = g.op("Concat", g.op("Shape", words), g.const([-1]), axis=0)
        parts.append(g.op("Reshape", char_features, shape))  # (T, B, 2 char_hidden)
    if features.casing is not None:
        parts.append(g.op("Gather", g.weight("casing", features.casing.weight), cases, axis=0))
    w = g.op("Concat", *parts, axis=2) if len(parts) > 1 else parts[0]
    layer = model.recurrent
    a, _ = recurrent(g, layer, w, lengths, zero_state(g, layer, lengths))
    g.output("emissions", g.linear(deep_head(g, model.head, a), model.emit), FLOAT, ["T", "B", model.emit.out_features])
    if model.crf is not None:
        K = model.crf.num_tags
        g.output("crf_transitions", g.weight("transitions", model.crf.transitions), FLOAT, [K, K])
        g.output("crf_start", g.weight("start", model.crf.start), FLOAT, [K])
        g.output("crf_end", g.weight("end", model.crf.end), FLOAT, [K])
    return {"model": g.model("rnnkit tagger: emission scores per word and tag; decode with Viterbi over the CRF outputs")}


def _last_pooling(g, model, outputs, finals, mask):
    if model.recurrent.bidirectional:
        return _final_outputs(g, finals[0])
    return g.op("Squeeze", g.op("Slice", finals[0], g.const([-1]), g.const([2**62]), g.const([0])), g.const([0]))  # top layer's a<T>


def _max_pooling(g, model, outputs, finals, mask):
    return g.op("ReduceMax", g.op("Where", mask, outputs, g.const(-np.inf, np.float32)), g.const([0]), keepdims=0)


def _mean_pooling(g, model, outputs, finals, mask):
    m = g.op("Cast", mask, to=FLOAT)
    return g.op("Div", g.op("ReduceSum", g.op("Mul", outputs, m), g.const([0]), keepdims=0), g.op("ReduceSum", m, g.const([0]), keepdims=0))


def _attention_pooling(g, model, outputs, finals, mask):
    scores = g.linear(g.op("Tanh", g.linear(outputs, model.pool.project)), model.pool.v)  # (T, B, 1): s<t>
    weights = g.op("Softmax", g.op("Where", mask, scores, g.const(-np.inf, np.float32)), axis=0)  # α over real steps
    return g.op("ReduceSum", g.op("Mul", weights, outputs), g.const([0]), keepdims=0)


# the ONNX form of each pooling of ``models.classifier.POOLINGS``, by the name the model's config gives
POOLING_GRAPHS = {"last": _last_pooling, "max": _max_pooling, "mean": _mean_pooling, "attention": _attention_pooling}


def export_classifier(model) -> dict:
    g = GraphBuilder("classifier")
    tokens = g.input("tokens", INT64, ["T", "B"])
    lengths = g.input("lengths", INT32, ["B"])
    layer = model.recurrent
    x = g.op("Gather", g.weight("embedding", model.embedding.weight), tokens, axis=0)  # (T, B, E)
    outputs, finals = recurrent(g, layer, x, lengths, zero_state(g, layer, lengths))  # (T, B, D*H)
    mask = step_mask(g, lengths, time_steps(g, x))  # (T, B, 1)
    pooling = model.config()["pooling"]
    if pooling not in POOLING_GRAPHS:
        raise UsageError(f"export: no ONNX form for the pooling {pooling!r}")
    h = POOLING_GRAPHS[pooling](g, model, outputs, finals, mask)  # (B, D*H)
    logits = g.linear(deep_head(g, model.head, h), model.output)
    C = model.output.out_features
    g.output("logits", logits, FLOAT, ["B", C])
    g.output("probabilities", g.op("Softmax", logits, axis=-1), FLOAT, ["B", C])
    return {"model": g.model("rnnkit classifier: class logits and probabilities per sequence")}


# -- many-to-many with different lengths: an encoder and a decoder step --------------------------------


def _multiplicative_scores(g, attention, keys, h):  # hᵀ W_a m, the keys W_a m given
    return g.op("ReduceSum", g.op("Mul", keys, g.op("Unsqueeze", h, g.const([0]))), g.const([-1]), keepdims=0)  # (S, B)


def _additive_scores(g, attention, keys, h):  # vᵀ tanh(W_1 m + W_2 h), the keys W_1 m given
    query = g.op("Unsqueeze", g.linear(h, attention.W_2), g.const([0]))  # (1, B, H)
    return g.op("Squeeze", g.linear(g.op("Tanh", g.op("Add", keys, query)), attention.v), g.const([2]))  # (S, B)


# the ONNX form of each score of ``models.seq2seq.ATTENTIONS``, by the name the model's config gives
ATTENTION_SCORES = {"multiplicative": _multiplicative_scores, "additive": _additive_scores}


def export_seq2seq(model) -> dict:
    encoder_layer, decoder_layer = model.encoder, model.decoder
    L, H = decoder_layer.num_layers, decoder_layer.hidden_size
    names = state_names(decoder_layer)

    g = GraphBuilder("encoder")
    source = g.input("source", INT64, ["S", "B"])
    source_lengths = g.input("source_lengths", INT32, ["B"])
    x = g.op("Gather", g.weight("source_embedding", model.source_embedding.weight), source, axis=0)  # (S, B, E)
    memory, finals = recurrent(g, encoder_layer, x, source_lengths, zero_state(g, encoder_layer, source_lengths))  # (S, B, 2H)
    g.output("memory", memory, FLOAT, ["S", "B", 2 * H])
    mask = g.op("Squeeze", step_mask(g, source_lengths, time_steps(g, memory)), g.const([2]))  # (S, B)
    g.output("mask", mask, BOOL, ["S", "B"])
    if model.attention is not None:
        g.output("keys", g.linear(memory, model.attention.key_layer), FLOAT, ["S", "B", H])  # W_a m or W_1 m: once per sentence
    for name, bridge, final in zip(names, model.bridges, finals):
        start = g.op("Tanh", g.linear(_final_outputs(g, final), bridge))  # s<0> = tanh(W [→a<S>; ←a<1>])
        g.output(f"state_{name}", g.op("Expand", g.op("Unsqueeze", start, g.const([0])), g.const([L, 1, 1])), FLOAT, [L, "B", H])
    if model.input_feeding:
        zeros = g.op("ConstantOfShape", g.op("Concat", g.op("Shape", source_lengths), g.const([H]), axis=0))
        g.output("feed", zeros, FLOAT, ["B", H])  # h̃<0> = 0
    encoder = g.model("rnnkit seq2seq encoder: the memory and the decoder's first state")

    g = GraphBuilder("decoder_step")
    previous = g.input("previous", INT64, ["B"])
    state = [g.input(f"state_{name}", FLOAT, [L, "B", H]) for name in names]
    feed = g.input("feed", FLOAT, ["B", H]) if model.input_feeding else None
    memory = g.input("memory", FLOAT, ["S", "B", 2 * H])
    mask = g.input("mask", BOOL, ["S", "B"])
    keys = g.input("keys", FLOAT, ["S", "B", H]) if model.attention is not None else None
    x = embedding_with_start(g, model.target_embedding, previous)  # (B, E); id V: y<0> = 0
    if feed is not None:
        x = g.op("Concat", x, feed, axis=1)
    x = g.op("Unsqueeze", x, g.const([0]))  # one step: (1, B, E)
    ones = g.op("ConstantOfShape", g.op("Shape", previous), value=numpy_helper.from_array(np.ones(1, np.int32)))  # lengths 1
    h, new_state = recurrent(g, decoder_layer, x, ones, state)
    h = g.op("Squeeze", h, g.const([0]))  # (B, H)
    if model.attention is not None:
        scores = ATTENTION_SCORES[model.config()["attention"]](g, model.attention, keys, h)  # (S, B)
        weights = g.op("Softmax", g.op("Where", mask, scores, g.const(-np.inf, np.float32)), axis=0)  # (S, B), zero on padding
        context = g.op("ReduceSum", g.op("Mul", g.op("Unsqueeze", weights, g.const([2])), memory), g.const([0]), keepdims=0)  # (B, 2H)
        h = g.op("Tanh", g.linear(g.op("Concat", context, h, axis=1), model.combine))  # h̃<t>
    g.output("logits", g.linear(h, model.output), FLOAT, ["B", model.output.out_features])
    for name, value in zip(names, new_state):
        g.output(f"state_{name}_out", value, FLOAT, [L, "B", H])
    if model.input_feeding:
        g.output("feed_out", h, FLOAT, ["B", H])
    if model.attention is not None:
        g.output("attention", g.op("Transpose", weights, perm=[1, 0]), FLOAT, ["B", "S"])
    decoder = g.model("rnnkit seq2seq decoder: one step; id V is y<0> = 0")
    return {"encoder": encoder, "decoder": decoder}


# model kind -> exporter(model) -> {graph role: onnx.ModelProto}
EXPORTERS = {
    "lm": export_language_model,
    "piano-roll": export_piano_roll,
    "tagger": export_tagger,
    "classifier": export_classifier,
    "seq2seq": export_seq2seq,
}
