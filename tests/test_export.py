"""ONNX export: onnxruntime computes what rnnkit computes, for every cell kind, one and two
directions, one and two layers, padded batches; every model kind; the CLI writes all files or none."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rnnkit import Recurrent  # noqa: E402
from rnnkit.cells import LSTMState  # noqa: E402
from rnnkit.cli import main  # noqa: E402
from rnnkit.export import export_model  # noqa: E402
from rnnkit.export.recurrent import recurrent_model  # noqa: E402
from rnnkit.export.verify import compare, session  # noqa: E402
from rnnkit.models import build_model  # noqa: E402

CELLS = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("gru", {}), ("gru-simple", {}), ("gru-cudnn", {}), ("lstm", {}), ("lstm", {"peepholes": True})]
TOLERANCE = 2e-5  # float32: differences relative to the output's scale (about 1e-7 measured)


def run_layer_both_ways(layer: Recurrent, exported=None, seed: int = 0):
    """rnnkit's and onnxruntime's outputs and final states for one random padded batch, with a
    random initial state (so that the state inputs are checked too), inputs scaled up so that the
    gates leave their linear range. ``exported``: an ONNX model made earlier (default: now)."""
    g = torch.Generator().manual_seed(seed)
    T, B = 6, 4
    x = 3 * torch.randn(T, B, layer.input_size, generator=g)
    lengths = torch.tensor([6, 3, 1, 5])
    rows = layer.num_layers * layer.num_directions
    names = layer.cells["l0"].state_names
    state = [torch.randn(rows, B, layer.hidden_size, generator=g) for _ in names]
    with torch.no_grad():
        outputs, final = layer(x, lengths, state[0] if len(state) == 1 else LSTMState(*state))
    finals = list(final) if isinstance(final, tuple) else [final]
    feeds = {"x": x.numpy(), "lengths": lengths.int().numpy(), **{n: s.numpy() for n, s in zip(names, state)}}
    theirs = session(exported or recurrent_model(layer)).run(None, feeds)
    return [outputs, *finals], [torch.from_numpy(t) for t in theirs]


def scaled_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max()) / max(1.0, float(ours.abs().max()))


@pytest.mark.parametrize("kind, options", CELLS, ids=[k + "".join(f"-{v}" for v in o.values()) for k, o in CELLS])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_onnxruntime_equals_rnnkit_for_every_cell(kind, options, bidirectional, num_layers):
    torch.manual_seed(0)
    layer = Recurrent(kind, 5, 7, num_layers=num_layers, bidirectional=bidirectional, engine="reference", **options).eval()
    ours, theirs = run_layer_both_ways(layer)
    for o, t in zip(ours, theirs):
        assert o.shape == t.shape
        assert scaled_difference(o, t) < TOLERANCE
    assert float(theirs[0][3:, 1].abs().max()) == 0.0  # past a sequence's end the outputs are zero


def test_the_course_gru_is_the_operator_without_linear_before_reset_and_gru_simple_a_scan():
    ops = lambda layer: {n.op_type: n for n in recurrent_model(layer).graph.node}  # noqa: E731
    gru = ops(Recurrent("gru", 3, 4))["GRU"]
    assert {a.name: a.i for a in gru.attribute}["linear_before_reset"] == 0
    cudnn = ops(Recurrent("gru-cudnn", 3, 4))["GRU"]
    assert {a.name: a.i for a in cudnn.attribute}["linear_before_reset"] == 1
    assert len(ops(Recurrent("lstm", 3, 4, peepholes=True))["LSTM"].input) == 8  # ... initial_c, P
    assert "Scan" in ops(Recurrent("gru-simple", 3, 4)) and "GRU" not in ops(Recurrent("gru-simple", 3, 4))


def test_a_wrong_gate_order_is_caught():
    """The comparison can fail: export, then swap the course GRU's update and relevance rows."""
    torch.manual_seed(0)
    layer = Recurrent("gru", 5, 7, engine="reference").eval()
    exported = recurrent_model(layer)
    ours, theirs = run_layer_both_ways(layer, exported)
    assert scaled_difference(ours[0], theirs[0]) < TOLERANCE
    with torch.no_grad():
        cell = layer.cells["l0"]
        u, r = cell.block("u"), cell.block("r")
        cell.weight[u], cell.weight[r] = cell.weight[r].clone(), cell.weight[u].clone()
    ours, theirs = run_layer_both_ways(layer, exported)
    assert scaled_difference(ours[0], theirs[0]) > 1e-2


MODELS = [
    ("lm", dict(vocab_size=20, cell="lstm", embedding_size=6, hidden_size=8, num_layers=2, head_sizes=[5])),
    ("lm", dict(vocab_size=20, cell="gru-simple", embedding_size=6, hidden_size=8)),
    ("piano-roll", dict(cell="gru", hidden_size=8, num_layers=2)),
    ("tagger", dict(vocab_size=30, num_tags=5, char_vocab_size=12, word_embedding_size=6, char_embedding_size=4, char_hidden_size=3, hidden_size=7, cell="gru")),
    ("tagger", dict(vocab_size=30, num_tags=5, char_vocab_size=12, word_embedding_size=6, char_hidden_size=0, casing_size=0, hidden_size=7, crf=False, cell="lstm", cell_options={"peepholes": True})),
    *[("classifier", dict(vocab_size=25, num_classes=3, embedding_size=6, hidden_size=7, pooling=p, bidirectional=p != "mean", cell="rnn", num_layers=2, head_sizes=[4])) for p in ("last", "max", "mean", "attention")],
    ("classifier", dict(vocab_size=25, num_classes=3, embedding_size=6, hidden_size=7, pooling="last", bidirectional=False, cell="gru-cudnn")),
    *[("seq2seq", dict(source_vocab_size=15, target_vocab_size=17, cell=c, embedding_size=6, hidden_size=8, num_layers=2, attention=a, input_feeding=f))
      for c, a, f in (("gru", "multiplicative", False), ("lstm", "additive", True), ("gru-simple", "none", False), ("lstm", "multiplicative", True))],
]  # fmt: skip


@pytest.mark.parametrize("kind, config", MODELS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(MODELS)])
def test_every_model_kind_exports_and_onnxruntime_agrees(kind, config):
    torch.manual_seed(0)
    model = build_model(kind, config).eval()
    for p in model.parameters():  # larger weights than the initialisation: saturating gates, peaked softmaxes
        p.data.mul_(3)
    differences = compare(model, export_model(model))
    assert differences and max(differences.values()) < TOLERANCE, differences


@pytest.fixture(scope="module")
def names_run(tmp_path_factory) -> str:
    from test_serve import shared_runs  # the tiny runs of test_serve, trained once per session

    return shared_runs(tmp_path_factory)["names"]


def test_cli_writes_the_graph_and_json_and_a_sampling_loop_runs_without_torch(names_run, tmp_path, capsys):
    out = tmp_path / "out" / "names.onnx"
    out.parent.mkdir()
    assert main(["export", names_run, "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "largest difference" in printed
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["task"] == "lm" and info["preprocessing"]["tokenizer"]["kind"] == "char"
    assert info["weights"] == "best" and info["training_ended"] is True  # which weights, of a run that ended
    assert info["graphs"]["model"]["inputs"]["input_ids"]["shape"] == ["T", "B"]
    # greedy decoding from x<1> = 0 with the state fed back, as docs/serving.md does it
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    vocab, start = info["preprocessing"]["vocab"], info["preprocessing"]["start_id"]
    ids, state = np.array([[start]]), np.zeros((1, 1, info["model"]["hidden_size"]), np.float32)
    text = []
    for _ in range(10):
        logits, state = sess.run(None, {"input_ids": ids, "lengths": np.ones(1, np.int32), "state_a": state})
        token = int(logits[0, 0, 3:].argmax()) + 3  # not <PAD>, <UNK> or <EOS>
        text.append(vocab[token])
        ids = np.array([[token]])
    assert len("".join(text)) == 10


def test_bad_output_name_is_one_line_and_writes_nothing(names_run, tmp_path, capsys):
    assert main(["export", names_run, "--out", str(tmp_path / "model.bin")]) == 2
    err = capsys.readouterr().err
    assert "ending in .onnx" in err and len(err.strip().splitlines()) == 1
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob("*.json")) and not list(tmp_path.glob(".*.tmp"))


def test_an_export_replaces_its_own_files_and_never_someone_elses(names_run, tmp_path, capsys, tmp_path_factory):
    """A .json beside --out that no export wrote, or an .onnx without an export's JSON, is the user's:
    refused, untouched. Exporting again replaces the earlier export, and a graph the new export
    does not write (an LM's model.onnx, when a translation run is exported to the same name) goes."""
    from test_serve import shared_runs

    (tmp_path / "mydata.json").write_text('{"mine": 1}\n')
    assert main(["export", names_run, "--out", str(tmp_path / "mydata.onnx")]) == 2
    assert "mydata.json is there and is not an rnnkit export's JSON" in capsys.readouterr().err
    assert (tmp_path / "mydata.json").read_text() == '{"mine": 1}\n' and not (tmp_path / "mydata.onnx").exists()
    (tmp_path / "theirs.onnx").write_bytes(b"someone's graph")
    assert main(["export", names_run, "--out", str(tmp_path / "theirs.onnx")]) == 2
    assert (tmp_path / "theirs.onnx").read_bytes() == b"someone's graph" and not (tmp_path / "theirs.json").exists()
    out = tmp_path / "model.onnx"
    assert main(["export", names_run, "--out", str(out)]) == 0 and out.exists()
    assert main(["export", names_run, "--out", str(out)]) == 0  # again: its own files
    assert main(["export", shared_runs(tmp_path_factory)["pairs"], "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.glob("model*")) == ["model.decoder.onnx", "model.encoder.onnx", "model.json"]
    capsys.readouterr()
    # a translation exported to b.onnx writes b.encoder.onnx: refused where that is another export's graph
    assert main(["export", names_run, "--out", str(tmp_path / "b.encoder.onnx")]) == 0
    graph = (tmp_path / "b.encoder.onnx").read_bytes()
    assert main(["export", shared_runs(tmp_path_factory)["pairs"], "--out", str(tmp_path / "b.onnx")]) == 2
    assert "would write over" in capsys.readouterr().err and (tmp_path / "b.encoder.onnx").read_bytes() == graph
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "b.decoder.onnx").exists()
    (tmp_path / "d.onnx").mkdir()  # refused where --out is parsed, before any work
    for out, message in ((tmp_path / "d.onnx", "d.onnx' (a folder)"), (tmp_path / "mydata.json" / "m.onnx", "mydata.json is a file, not a folder")):
        with pytest.raises(SystemExit) as exit:
            main(["export", names_run, "--out", str(out)])
        assert exit.value.code == 2 and message in capsys.readouterr().err


def serving_snippets() -> tuple[str, dict[str, str]]:
    """The Python blocks of docs/serving.md: the shared one, and one per model kind."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "serving.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    kinds = {m.group(1): b for b in blocks if (m := re.match(r"# serving\.md: (\S+)", b))}
    common = [b for b in blocks if not b.startswith("# serving.md:")]
    assert len(common) == 1 and set(kinds) == {"lm", "tagger", "classifier", "seq2seq", "music"}
    return common[0], kinds


@pytest.mark.parametrize("name", ["names", "people", "reviews", "pairs", "songs"])
def test_the_docs_snippets_run_an_export_as_rnnkit_does(name, tmp_path_factory, tmp_path, monkeypatch):
    """Each kind's snippet of docs/serving.md, run on an exported tiny run, answers what rnnkit answers."""
    from test_serve import shared_runs

    from rnnkit.data.conll import convert
    from rnnkit.export import export_run
    from rnnkit.runs import open_run

    run = shared_runs(tmp_path_factory)[name]
    export_run(run, tmp_path / "model.onnx")
    common, kinds = serving_snippets()
    task, model, config, device = open_run(run, device="cpu")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(common + kinds["music" if config["task"] == "music" else config["task"]], "docs/serving.md", "exec"), namespace)
    if config["task"] == "lm":
        assert abs(namespace["log_prob"] - task.score_text(model, "anna", device)["log_prob"]) < 1e-4
    elif config["task"] == "tagger":
        expected = task.tag_text(model, "Teddy Roosevelt was a great President.", device)["tags"]
        assert convert(namespace["tags"], task.data.train_scheme, "iob2") == expected
    elif config["task"] == "classifier":
        expected = task.probabilities(model, namespace["texts"], device).numpy()
        assert np.abs(namespace["probabilities"] - expected).max() < 1e-5
    elif config["task"] == "seq2seq":
        expected = task.translate(model, ["one two"], device, beam=1)[0][0]
        assert namespace["output"] == expected["tokens"] and len(namespace["attention"]) == len(expected["attention"])
    else:
        assert len(namespace["piece"]) == 32
        # how long a step lasts, so that a program can write the piece as MIDI at the run's speed
        assert json.loads((tmp_path / "model.json").read_text())["preprocessing"]["step_seconds"] == task.data.step_seconds


def test_the_docs_snippets_cut_typed_text_as_rnnkit_does_for_treebank_runs(tmp_path, monkeypatch):
    """Runs that learned from Treebank-tokenized text (PTB, SST trees, CoNLL) cut typed text the
    Treebank's way first ("didn't" -> "did n't"); the snippets cut it by the word rule, so an exported
    model got other tokens, and other answers, than rnnkit. The export's ``typed_text`` says which
    rule applies, and the snippets' ``tokenize`` and ``treebank`` follow it."""
    from rnnkit.data.tokenizers import make_tokenizer
    from rnnkit.data.vocab import Vocabulary
    from rnnkit.export import _tokenizer_and_vocab
    from rnnkit.tasks.base import treebank_words, typed_text_rule, typed_tokens

    common, _ = serving_snippets()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.json").write_text("{}")
    namespace: dict = {}
    exec(compile(common, "docs/serving.md", "exec"), namespace)
    texts = ["The U.S. didn't say it's 3.5% up.", "A gorgeous, witty (seductive) movie.", "plain words", "`` Wow '' , he said ''",
             "the s&p 500 fell a <unk> drop", 'He said " EU " and "EU" wasn\'t', "Scotland , Pa. is plain , said Mr. Smith Jr.",
             "<PAD>", "the <PAD> house", "the com\u00adpany\u200e said \ufeffit", "I.B.M.\u200b's s&\u2060p"]
    for tokens in (["did", "n't", "-LRB-", "s&p", "000"], ["plain", "words"], ["n't", '"', "eu"]):  # Treebank vocabularies (parentheses; CoNLL's quotes), and not
        vocab = Vocabulary.build([tokens])
        for config in ({"kind": "whitespace", "lowercase": True}, {"kind": "char", "lowercase": False}):
            tokenizer = make_tokenizer(config)
            side = json.loads(json.dumps(_tokenizer_and_vocab(tokenizer, vocab)))  # as the JSON holds it
            for text in texts:
                assert namespace["tokenize"](text, side) == typed_tokens(tokenizer, vocab, text), (tokens, config, text)
        tagger_side = {"typed_text": typed_text_rule(True, vocab), "words": vocab.tokens}
        if "n't" in tokens:
            for text in texts:
                assert namespace["treebank"](text, tagger_side).split() == treebank_words(text, vocab)
    # a tagger whose file was cut otherwise (tweets: "U.S.", "#newyork", "e-mail" whole) keeps the words it learned
    from rnnkit.tasks.tagging import TaggingTask

    words = Vocabulary.build([["u.s.", "#newyork", "e-mail", "paul", "$0.00"]])
    tagger = TaggingTask.__new__(TaggingTask)
    tagger.words = words
    exported = _tokenizer_and_vocab(make_tokenizer({"kind": "word"}), words)
    side = json.loads(json.dumps({"typed_text": typed_text_rule(False, words), "words": words.tokens, "word_pattern": exported["word_pattern"],
                                  "ignored_characters": exported["ignored_characters"]}))  # fmt: skip
    for text in ["@paul likes #NewYork and the U.S. by e-mail for $5.00", "U.S.A. is not U.S. (really)", "in the U.S., ok. (U.S.) #NewYork. ...", *texts]:
        assert namespace["tagger_words"](namespace["read_form"](text, side), side) == tagger.typed_words(text), text
    assert tagger.typed_words("U.S. and #NewYork")[:3] == ["U.S.", "and", "#NewYork"]
    assert tagger.typed_words("the U.S., (U.S.) #NewYork.") == ["the", "U.S.", ",", "(", "U.S.", ")", "#NewYork", "."]  # punctuation attached


@pytest.mark.parametrize("options", [{"reverse": True}, {"line_breaks": "token", "batching": "stream", "bptt": 8}])
def test_the_lm_snippet_scores_reversed_and_stream_models_as_rnnkit_does(options, tmp_path, monkeypatch):
    """A reversed run's export did not say it reads lines backwards, and a stream run's (no <EOS>) the
    snippet ended with <EOS>: both scored other numbers than rnnkit, without an error."""
    from rnnkit.export import export_run
    from rnnkit.runs import open_run, start

    names = tmp_path / "names.txt"
    names.write_text("\n".join(["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank"] * 3) + "\n")
    small = {"hidden_size": 8, "embedding_size": 4, "max_steps": 3, "progress": False, "eval_every": 3, "save_every_minutes": None}
    run = str(tmp_path / "run")
    start("lm", {"train": [str(names)], **small, **options}, run)
    export_run(run, tmp_path / "model.onnx")
    common, kinds = serving_snippets()
    task, model, _, device = open_run(run, device="cpu")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(common + kinds["lm"], "docs/serving.md", "exec"), namespace)
    assert abs(namespace["log_prob"] - task.score_text(model, "anna", device)["log_prob"]) < 1e-4


def test_the_snippets_join_tokens_into_text_as_rnnkit_does(tmp_path, monkeypatch):
    """The snippets joined every level's tokens with spaces: BPE samples showed their subword marks
    ("▁r ▁a s"), and word-level translations "camping )" where rnnkit writes "camping)"."""
    from rnnkit.data.tokenizers import make_tokenizer
    from rnnkit.data.vocab import Vocabulary
    from rnnkit.export import _tokenizer_and_vocab

    common, _ = serving_snippets()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.json").write_text("{}")
    namespace: dict = {}
    exec(compile(common, "docs/serving.md", "exec"), namespace)
    lines = ["The (big) dog's run, 3.5% faster!", "a man [in red] sits on $5 ; ok?", "zwei drei eins"] * 20  # and a sample's line breaks below
    for config in ({"kind": "char"}, {"kind": "word"}, {"kind": "whitespace"}, {"kind": "bpe", "vocab_size": 60}):
        tokenizer = make_tokenizer(config)
        tokenizer.fit(lines)
        for line in lines[:3]:
            tokens = tokenizer.tokenize(line)
            side = json.loads(json.dumps(_tokenizer_and_vocab(tokenizer, Vocabulary.build([tokens]))))
            assert namespace["detokenize"](tokens, side) == tokenizer.detokenize(tokens), (config, line)
            if config["kind"] in ("word", "whitespace"):  # a --line-breaks token sample: no space around its breaks
                sample = [*tokens, "\n", *tokens]
                assert namespace["detokenize"](sample, side) == tokenizer.detokenize(sample)
                assert config["kind"] == "word" or tokenizer.detokenize(sample) == line + "\n" + line


def test_an_export_says_which_weights_it_holds_and_of_a_run_that_has_not_ended(names_run, tmp_path, capsys):
    """Exports of a killed run's best and last weights were alike: no note, and nothing in the JSON
    told which weights the graph held, or that the run had not ended."""
    import shutil

    run = tmp_path / "killed"
    shutil.copytree(names_run, run)
    (run / "summary.json").unlink()  # as a kill mid-training leaves it
    for weights in ("best", "last"):
        out = tmp_path / f"{weights}.onnx"
        assert main(["export", str(run), "--weights", weights, "--out", str(out), "--no-check"]) == 0
        err = capsys.readouterr().err
        assert f"has no summary.json (still training, or stopped before its end): the graph holds its {weights} weights so far" in err
        info = json.loads(out.with_suffix(".json").read_text())
        assert info["weights"] == weights and info["training_ended"] is False


def test_an_events_export_names_the_ids_a_sampler_must_not_draw_and_the_step(tmp_path, capsys):
    """The events JSON held <PAD> and <UNK> in its vocabulary but no pad_id or unk_id (the docs'
    loop then drew them), and no step length for writing MIDI."""
    songs = [[[60 + (t + k) % 5, 67] for t in range(8)] for k in range(3)]
    (tmp_path / "songs.json").write_text(json.dumps({"train": songs, "valid": songs[:1], "test": songs[:1]}))
    run = tmp_path / "run"
    assert main(["train", "music", str(tmp_path / "songs.json"), "--representation", "events", "--hidden-size", "4",
                 "--max-steps", "1", "--no-progress", "--run", str(run)]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx"), "--no-check"]) == 0
    pre = json.loads((tmp_path / "m.json").read_text())["preprocessing"]
    assert pre["vocab"][pre["pad_id"]] == "<PAD>" and pre["vocab"][pre["unk_id"]] == "<UNK>" and pre["vocab"][pre["eos_id"]] == "<EOS>"
    assert pre["step_seconds"] == 0.5 and pre["start_id"] == len(pre["vocab"])


def test_an_export_that_disagrees_or_overflows_writes_nothing_over_a_good_one(names_run, tmp_path, capsys, monkeypatch):
    """The check's verdict came after the files had replaced the last export; and an output that
    overflowed compared as NaN, which is not over the tolerance: "largest difference nan", exit 0."""
    out = tmp_path / "names.onnx"
    assert main(["export", names_run, "--out", str(out)]) == 0
    good = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for difference, code, says in ((float("nan"), 2, "are not finite on a random batch"), (0.5, None, "disagree with rnnkit")):
        monkeypatch.setattr("rnnkit.export.verify.compare", lambda model, graphs, d=difference: {"logits": d})
        capsys.readouterr()
        if code is None:
            with pytest.raises(RuntimeError, match=says + r".*nothing was written"):
                main(["export", names_run, "--out", str(out)])
        else:
            assert main(["export", names_run, "--out", str(out)]) == code
            assert says in capsys.readouterr().err
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == good


def test_an_exports_json_is_strict_and_says_which_texts_lose_their_end_spaces(names_run, tmp_path, tmp_path_factory):
    """A summary.json holding NaN (a hand edit) was copied into the export's JSON as a bare NaN, which
    JSON.parse refuses; and the snippets kept the spaces a classifier or translation strips."""
    import shutil

    from test_serve import shared_runs

    run = tmp_path / "names"
    shutil.copytree(names_run, run)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "test_loss": float("nan")}))
    assert main(["export", str(run), "--out", str(tmp_path / "n.onnx")]) == 0
    info = json.loads((tmp_path / "n.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert info["metrics"]["test_loss"] is None
    runs = shared_runs(tmp_path_factory)
    for name, side in (("reviews", lambda p: p), ("pairs", lambda p: p["source"])):
        assert main(["export", runs[name], "--out", str(tmp_path / f"{name}.onnx")]) == 0
        assert side(json.loads((tmp_path / f"{name}.json").read_text())["preprocessing"])["strip"] is True
