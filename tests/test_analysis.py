"""Analysis: recorded gradients equal autograd, the agreement generator's labels, the hidden-unit
report (its values, and that it renders in a real browser), for every kind of text model."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rnnkit.analysis.agreement import NOUNS, PLURAL, generate, hidden_for_budget, parameters_for
from rnnkit.analysis.gradient_flow import compare_cells, fitted_rate, gradient_flow
from rnnkit.analysis.inspect import inspect, render_html
from rnnkit.analysis.recording import recording
from rnnkit.models.language_model import LanguageModel


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_gradient_norms_equal_autograd_through_the_cells_by_hand(cell):
    torch.manual_seed(0)
    model = LanguageModel(9, cell=cell, embedding_size=4, hidden_size=6).double()
    tokens = torch.randint(3, 9, (7, 3))

    def loss_at(m, position):
        logits = m(tokens).logits
        return F.cross_entropy(logits[position], tokens[position])

    (flow,) = gradient_flow(model, loss_at)
    # by hand: the same model stepped through its cell, keeping each a<t>
    cell_module = model.recurrent.cells["l0"]
    x = model.inputs(tokens)
    state = tuple(torch.zeros(3, 6, dtype=torch.float64) for _ in cell_module.state_names)
    states = []
    for t in range(7):
        state = cell_module(x[t], state)
        states.append(state[0])
    logits = model.output(torch.stack(states))
    loss = F.cross_entropy(logits[-1], tokens[-1])
    grads = torch.autograd.grad(loss, states)
    expected = [float(g.norm(dim=-1).mean()) for g in reversed(grads)]
    assert max(abs(a - b) for a, b in zip(flow.norms, expected)) < 1e-12
    assert flow.key == ("recurrent", "l0") and len(flow.norms) == 7


def test_bidirectional_flow_measures_both_directions():
    from rnnkit.models.tagger import Tagger
    from rnnkit.tasks.tagging import TaggingBatch

    torch.manual_seed(0)
    model = Tagger(10, 4, 5, word_embedding_size=4, char_hidden_size=0, casing_size=0, hidden_size=5, crf=False, dropout=0.0).double()
    T, B = 6, 2
    batch = TaggingBatch(torch.randint(3, 10, (T, B)), torch.zeros(T, B, 1, dtype=torch.long), torch.ones(T, B, dtype=torch.long), torch.zeros(T, B, dtype=torch.long), torch.zeros(T, B, dtype=torch.long), torch.tensor([T, T]))
    flows = gradient_flow(model, lambda m, position: m(batch).logits[position].sum())
    keys = {f.key[1] for f in flows}
    assert keys == {"l0", "l0_reverse"}
    for flow in flows:
        assert flow.norms[0] > 0 and len(flow.norms) == T


def test_fitted_rate_of_a_geometric_sequence():
    assert abs(fitted_rate([0.5**d for d in range(10)]) - 0.5) < 1e-9
    # norms that overflowed float32 (x1000 recurrent weights) are exploding, not a NaN fit read as "not exploding"
    assert fitted_rate([1.0, 1e30, float("inf"), float("nan")]) == float("inf")
    assert abs(fitted_rate([2.0**d for d in range(10)]) - 2.0) < 1e-9


def test_cells_compared_and_exploding_gradients_clipped():
    lines = ["abcabcabd", "abdabdabc", "bcabcabca"] * 20
    results = compare_cells(lines, ("rnn", "lstm"), length=20, batch=8, train_steps=5, hidden=12, explode_scale=8.0, clip=1.0, log=lambda *_: None)
    assert set(results["init"]) == {"rnn", "lstm"} and len(results["init"]["rnn"]) == 20
    exploding = results["exploding"]
    assert exploding["rate"] > 1 and exploding["norm_before"] > 1 and exploding["norm_after"] <= 1.0 + 1e-5
    assert exploding["exploding"] is True  # the JSON's verdict is the printed one (it was the norm's, > 1000 x clip: False)


def test_agreement_labels_are_right_by_construction():
    for distance in (0, 3, 7, 12):
        for example in generate(300, 12, seed=distance, distance=distance):
            subject = example.words[example.subject]
            assert (subject in PLURAL.values()) == example.plural and (subject in NOUNS) != example.plural
            assert example.distance == len(example.words) - 1 - example.subject == distance
            between = [i for i, w in enumerate(example.words) if i > example.subject and (w in NOUNS or w in PLURAL.values())]
            other = [i for i in between if (example.words[i] in PLURAL.values()) != example.plural]
            assert example.attractors == other  # the attractors are exactly the nouns of the other number
            assert example.verb == ("were" if example.plural else "was")
    mixed = generate(4000, 12, seed=1)
    assert 0.4 < sum(e.plural for e in mixed) / 4000 < 0.6
    assert any(e.attractors for e in mixed)
    # no shortcut: the number of the last noun before the verb says nothing about the verb
    with_nouns = [e for e in mixed if len(e.words) - 1 > e.subject and any(w in NOUNS or w in PLURAL.values() for w in e.words[e.subject + 1 :])]
    last_plural = [[w for w in e.words if w in NOUNS or w in PLURAL.values()][-1] in PLURAL.values() for e in with_nouns]
    agree = sum(p == e.plural for p, e in zip(last_plural, with_nouns)) / len(with_nouns)
    assert 0.4 < agree < 0.6


def test_equal_parameter_budgets():
    for hidden in (1, 48, 1500):  # 1: --hidden-size 1 trained a hidden size of 2; 1500 past the 1,023 the search once stopped at
        budget = parameters_for("lstm", 32, hidden)
        assert hidden_for_budget("lstm", 32, budget) == hidden
        for cell in ("rnn", "gru") if hidden > 1 else ():  # at one unit the others' sizes are too coarse for 3 %
            assert abs(parameters_for(cell, 32, hidden_for_budget(cell, 32, budget)) - budget) / budget < 0.03


def test_a_hidden_size_too_large_to_train_is_refused_in_one_line(capsys):
    """``gradients --hidden-size 100000000`` was the allocator's traceback."""
    from rnnkit.cli import main

    assert main(["gradients", "--hidden-size", "100000000", "--cells", "rnn"]) == 2
    assert "--hidden-size 100,000,000: the cells' weights would need about" in capsys.readouterr().err


def trained_lm_run(tmp_path) -> Path:
    from rnnkit.runs import start

    text = tmp_path / "text.txt"
    text.write_text('he said "hello (world)" to me\nshe said "bye" (again)\n' * 20)
    start("lm", {"train": [str(text)], "level": "char", "cell": "lstm", "hidden_size": 8, "embedding_size": 4, "max_steps": 5, "progress": False}, tmp_path / "run")
    return tmp_path / "run"


def test_report_holds_the_recorded_values(tmp_path):
    from rnnkit.runs import open_run

    run = trained_lm_run(tmp_path)
    task, model, _, device = open_run(run)
    report = inspect(task, model, 'he said "hi (there)"', device)
    tokens = report["tokens"]
    assert tokens[:4] == ["h", "e", " ", "s"] and tokens[-1] == "<EOS>"
    ids = [task.vocab.eos_id if t == "<EOS>" else task.vocab.ids.get(t, task.vocab.unk_id) for t in tokens]
    with torch.no_grad(), recording(model) as rec:
        model(torch.tensor(ids)[:, None])
    a = torch.stack([s[0] for s in rec.states[("recurrent", "l0")]])[:, 0]
    layer = report["layers"][0]
    assert torch.allclose(torch.tensor(layer["a"]), a, atol=1e-4)
    assert set(layer["gate_saturation"]) == {"update", "forget", "output"}
    assert set(layer["ranking"]) == {"position in line", "position in word", "inside quotes", "inside brackets", "token length"}
    plain = inspect(task, model, "he said hi", device)  # no quotes, no brackets: nothing to rank them by
    assert "inside quotes" not in plain["layers"][0]["ranking"] and "inside brackets" not in plain["layers"][0]["ranking"]
    assert len(report["predictions"]) == len(tokens)
    first = [p for _, p in report["predictions"][0]]
    assert len(first) == 5 and first == sorted(first, reverse=True) and sum(first) <= 1 + 1e-6
    page = render_html(report)
    embedded = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1))
    packed = embedded["layers"][0]["a"]  # int8 steps of scale, as the page decodes them
    decoded = torch.frombuffer(bytearray(base64.b64decode(packed["base64"])), dtype=torch.int8).float().view(packed["rows"], packed["columns"]) * packed["scale"]
    assert torch.allclose(decoded, torch.tensor(layer["a"]), atol=packed["scale"] / 2 + 1e-6)


def test_inspect_every_text_model_kind(tmp_path):
    from rnnkit.models import build_model
    from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask
    from rnnkit.tasks.tagging import TaggingDataConfig, TaggingTask
    from rnnkit.tasks.translation import TranslationDataConfig, TranslationTask

    (tmp_path / "t.conll").write_text("Anna B-PER\nsaw O\nParis B-LOC\n")
    (tmp_path / "c.tsv").write_text("1\tbad film\n5\tgood film\n")
    (tmp_path / "s.txt").write_text("ein haus\n")
    (tmp_path / "t.txt").write_text("a house\n")
    tasks = [
        TaggingTask.prepare(TaggingDataConfig(train=[str(tmp_path / "t.conll")], scheme="iob2"))[0],
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / "c.tsv")]))[0],
        TranslationTask.prepare(TranslationDataConfig(source=str(tmp_path / "s.txt"), target=str(tmp_path / "t.txt")))[0],
    ]
    for task in tasks:
        model = build_model(task.model_kind, task.model_config({"hidden_size": 6}))
        report = inspect(task, model, "Anna saw a good film in Paris", "cpu")
        assert report["layers"] and all(len(layer["a"]) == len(report["tokens"]) for layer in report["layers"])
        assert any(layer["name"].endswith("_reverse") for layer in report["layers"])  # both directions shown


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_report_renders_in_headless_chromium(tmp_path):
    from rnnkit.cli import main

    run = trained_lm_run(tmp_path)
    (tmp_path / "read.txt").write_text('she said "hello (world)"\n')
    assert main(["inspect", str(run), str(tmp_path / "read.txt"), "--out", str(tmp_path / "report.html")]) == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,700",
         f"--screenshot={shot}", (tmp_path / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert shot.exists() and shot.stat().st_size > 5000
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile2'}",
         "--dump-dom", (tmp_path / "report.html").as_uri()],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert dom.count("<span") >= len('she said "hello (world)"') and "rgb(" in dom  # the script ran: tokens coloured


def test_gradient_flow_on_too_short_a_text_counts_the_characters_as_written():
    """An empty file is 0 characters, not the 1 of the line break the reader adds after the last line."""
    from rnnkit.analysis.gradient_flow import compare_cells
    from rnnkit.errors import UsageError

    for lines, count in (([""], "0 characters"), (["a"], "1 character"), (["ab", "c"], "4 characters")):
        with pytest.raises(UsageError, match=rf"^the text has {count} \(line breaks included\); need more than --length 50$"):
            compare_cells(lines, length=50)


def test_gradients_json_is_strict_and_the_verdict_honest_when_no_rate_can_be_fitted(tmp_path, capsys):
    """Recurrent weights x1000 saturate every tanh unit: the gradient is zero past the first step and
    no rate can be fitted. The report says so (not "not exploding") and the .json beside the plot is
    strict JSON (null where a number is not finite), which jq and browsers read."""
    from rnnkit.cli import main

    text = tmp_path / "text.txt"
    text.write_text("abcabcabd abdabdabc bcabcabca\n" * 20)
    out = tmp_path / "flow.png"
    code = main(["gradients", "--file", str(text), "--cells", "rnn", "--explode-scale", "1000", "--train-steps", "2", "--hidden-size", "4", "--length", "30", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "per-step factor nan (undetermined: fewer than two nonzero gradient norms" in printed
    results = json.loads(out.with_suffix(".json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    assert results["exploding"]["rate"] is None


def test_inspect_says_no_unit_tracks_a_feature_when_the_best_correlation_is_weak(tmp_path, capsys, monkeypatch):
    """A character model of names printed "unit 5 tracks position in line (r = -0.06)": a correlation
    that weak tracks nothing, and is said so."""
    import rnnkit.analysis.inspect as inspect_module
    import rnnkit.cli.analysis as cli_analysis
    from rnnkit.cli import main

    layer = {"name": "layer 1", "units": 8, "gate_saturation": {},
             "ranking": {"position in line": [{"unit": 5, "r": -0.06}], "token length": [{"unit": 2, "r": 0.71}]}}  # fmt: skip
    monkeypatch.setattr(inspect_module, "inspect", lambda task, model, text, device: {"tokens": list(text), "layers": [layer]})
    monkeypatch.setattr(inspect_module, "render_html", lambda report: "<html></html>")
    monkeypatch.setattr(cli_analysis, "open_verb_run", lambda args: (None, None, None, "cpu"))
    monkeypatch.setattr("rnnkit.cli._inputs.check_run_for", lambda user, path, kinds: None)
    assert main(["inspect", "RUN", "anna", "--out", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert "no unit tracks position in line (the largest |r| is 0.06)" in out and "unit 2 tracks token length (r = +0.71)" in out


def test_text_features_follow_line_ends_words_and_pieces():
    """A character LM's line ends are <EOS> tokens (the position never reset, and jumped by five);
    words carry no spaces (position in word equalled position in line); a word token holding its
    quotes ("great") was never inside them."""
    from rnnkit.analysis.inspect import text_features

    chars = text_features(list("ab c") + ["<EOS>"] + list("de"), "char")
    assert chars["position in line"] == [0, 1, 2, 3, 4, 0, 1]
    assert chars["position in word"] == [0, 1, 2, 0, 1, 0, 1]
    assert chars["token length"] == [1, 1, 1, 1, 0, 1, 1]
    words = text_features(["A", '"great"', "film", "(", "really", ")", "<EOS>", "Yes"], "word")
    assert words["position in line"] == [0, 2, 10, 15, 17, 24, 25, 0]
    assert set(words["position in word"]) == {0}  # every word starts one: nothing to track
    assert words["inside quotes"] == [0, 1, 0, 0, 0, 0, 0, 0]
    assert words["inside brackets"] == [0, 0, 0, 0, 1, 1, 0, 0]
    pieces = text_features(["\u2581the", "\u2581ca", "t", "\u2581sat"], "bpe")
    assert pieces["position in line"] == [0, 4, 6, 8] and pieces["position in word"] == [0, 0, 2, 0]


def test_the_page_survives_any_text_and_too_few_tokens_rank_nothing(tmp_path, capsys):
    from rnnkit.cli import main

    """"<!--<script" in the text made the page's own script part of the data (a blank page); two
    tokens correlate at ±1 with anything, and the verb claimed units "tracked" features from them."""
    run = trained_lm_run(tmp_path)
    out = tmp_path / "page.html"
    assert main(["inspect", str(run), "--out", str(out), "hi <!--<script> </script> there"]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data and the page's code, nothing more
    capsys.readouterr()
    assert main(["inspect", str(run), "--out", str(out), "--max-chars", "3", "hello"]) == 0
    said = capsys.readouterr().out
    assert "too few tokens" in said and "tracks" not in said


def test_the_experiments_check_their_cells_first_and_write_into_new_folders(tmp_path, capsys):
    """``agreement --out new/x.png`` trained every cell, then failed on the missing folder, losing the
    table; ``--cells rnn bogus`` trained rnn before refusing bogus; ``--length 5`` headed g(4) as g(10)."""
    from rnnkit.cli import main

    assert main(["gradients", "--cells", "rnn", "bogus", "--train-steps", "1", "--out", str(tmp_path / "g.png")]) == 2
    assert "unknown cell 'bogus'" in capsys.readouterr().err and not list(tmp_path.iterdir())
    out = tmp_path / "new" / "deeper" / "agr.png"
    assert main(["agreement", "--cells", "rnn", "--train-steps", "2", "--hidden-size", "4", "--max-distance", "3", "--train-min-distance", "0", "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text()) and out.with_suffix(".md").read_text().startswith("|")
    text = tmp_path / "text.txt"
    text.write_text("abcabcabd abdabdabc bcabcabca\n" * 20)
    assert main(["gradients", "--file", str(text), "--cells", "rnn", "rnn", "--train-steps", "1", "--hidden-size", "4", "--length", "5", "--out", str(tmp_path / "g" / "g.png")]) == 0
    printed = capsys.readouterr().out
    assert "g(4) / g(0)" in printed and printed.count("| rnn |") == 1
    (tmp_path / "blank.txt").write_text("\n \n\n")
    assert main(["gradients", "--file", str(tmp_path / "blank.txt"), "--out", str(tmp_path / "b.png")]) == 2
    assert "only blank lines" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:  # refused where it is parsed: a flow over one step has no rate
        main(["gradients", "--file", str(text), "--length", "1", "--out", str(tmp_path / "b.png")])
    assert exit.value.code == 2 and "--length: must be a whole number >= 2" in capsys.readouterr().err


def test_the_experiments_replace_only_their_own_numbers_beside_the_picture(tmp_path, capsys):
    """``gradients --out keep.png`` wrote over the user's keep.json (a data file), ``agreement`` over
    keep.json and keep.md, without a word; ``export`` refuses the same."""
    from rnnkit.cli import main

    (tmp_path / "keep.json").write_text('{"train": [[[60]]]}')
    (tmp_path / "keep2.md").write_text("notes\n")
    gradients = ["gradients", "--cells", "rnn", "--train-steps", "1", "--hidden-size", "4", "--length", "3"]
    agreement = ["agreement", "--cells", "rnn", "--train-steps", "1", "--hidden-size", "4", "--max-distance", "2", "--train-min-distance", "0"]
    for command, out, beside in ((gradients, "keep.png", "keep.json"), (agreement, "keep2.png", "keep2.md")):
        before = (tmp_path / beside).read_bytes()
        assert main([*command, "--out", str(tmp_path / out)]) == 2
        assert f"{tmp_path / beside} is there and is not an earlier rnnkit" in capsys.readouterr().err
        assert (tmp_path / beside).read_bytes() == before
    assert main([*gradients, "--out", str(tmp_path / "mine.png")]) == 0
    assert main([*gradients, "--out", str(tmp_path / "mine.png")]) == 0  # its own earlier numbers: replaced
    assert main([*agreement, "--out", str(tmp_path / "a.png")]) == 0
    assert main([*agreement, "--out", str(tmp_path / "a.png")]) == 0
    (tmp_path / "a.md").write_text("# my notes\n")  # its own JSON beside, but the table is someone's now
    assert main([*agreement, "--out", str(tmp_path / "a.png")]) == 2 and (tmp_path / "a.md").read_text() == "# my notes\n"
    edited = json.loads((tmp_path / "mine.json").read_text()) | {"note": "mine"}  # its own numbers, edited since
    (tmp_path / "mine.json").write_text(json.dumps(edited))
    assert main([*gradients, "--out", str(tmp_path / "mine.png")]) == 2 and "note" in json.loads((tmp_path / "mine.json").read_text())


def test_agreements_table_and_numbers_are_written_together_or_not_at_all(tmp_path, monkeypatch):
    """The JSON (which names the table's digest) was written before the table: a kill or a full disk
    between the two left numbers describing a table that was not there, and every later run with the
    same --out refused the table as someone else's."""
    import os

    from rnnkit.cli import main

    agreement = ["agreement", "--cells", "rnn", "--train-steps", "1", "--hidden-size", "4", "--max-distance", "2", "--train-min-distance", "0"]
    replace = os.replace

    def full_disk_at_the_table(source, target):
        if str(target).endswith(".md"):
            raise OSError(28, "No space left on device", str(target))
        replace(source, target)

    monkeypatch.setattr(os, "replace", full_disk_at_the_table)
    assert main([*agreement, "--out", str(tmp_path / "a.png")]) == 2
    assert not (tmp_path / "a.json").exists() and not list(tmp_path.glob(".*.tmp"))
    monkeypatch.setattr(os, "replace", replace)
    assert main([*agreement, "--out", str(tmp_path / "a.png")]) == 0 and (tmp_path / "a.md").exists()
    # the picture goes with them: an interrupt while drawing left the new numbers beside the old picture
    before = {path.name: path.read_bytes() for path in tmp_path.glob("a.*")}
    assert sorted(before) == ["a.json", "a.md", "a.png"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("rnnkit.analysis.agreement.plot_accuracy", interrupted)
    assert main([*agreement, "--seed", "5", "--out", str(tmp_path / "a.png")]) == 130
    assert {path.name: path.read_bytes() for path in tmp_path.glob("a.*")} == before


def test_an_experiment_without_matplotlib_says_it_drew_no_plot(tmp_path, monkeypatch, capsys):
    """gradients and agreement wrote their numbers and, without matplotlib (an extra), no plot and no word of it."""
    from rnnkit.cli import main

    monkeypatch.setattr("rnnkit.plots.pyplot", lambda: None)
    out = tmp_path / "g.png"
    assert main(["gradients", "--cells", "rnn", "--train-steps", "1", "--hidden-size", "4", "--length", "3", "--out", str(out)]) == 0
    assert f"no plot drawn at {out}: matplotlib is not installed" in capsys.readouterr().err
    assert not out.exists() and out.with_suffix(".json").exists()


def test_the_features_of_a_reversed_models_steps_are_those_of_the_text_as_written():
    """inspect of a --reverse run computed the features on the reversed tokens: ")" opened a bracket
    that "(" then closed, so the words inside (ab) were never inside brackets, the words before it were."""
    from rnnkit.analysis.inspect import features_as_read, text_features

    written = list("x (ab) y") + ["<EOS>"] + list("(c)")
    read = list("y )ba( x") + ["<EOS>"] + list(")c(")  # each line from its end, as the model read it
    forward, backward = text_features(written, "char"), features_as_read(read, "char", backwards=True)
    for name in forward:  # each step's feature is its character's in the text, in reading order
        assert backward[name] == [*forward[name][:8][::-1], forward[name][8], *forward[name][9:][::-1]], name
    inside = [ch for ch, flag in zip(read, backward["inside brackets"]) if flag]
    assert inside == [")", "b", "a", ")", "c"]  # a closing mark is inside what it closes, as forward
    assert features_as_read(written, "char") == forward


def test_inspect_reads_a_reversed_models_features_as_the_text_is_written(tmp_path, monkeypatch):
    import rnnkit.analysis.inspect as inspecting
    from rnnkit.runs import open_run, start

    text = tmp_path / "text.txt"
    text.write_text('he said "hello (world)" to me\n' * 20)
    start("lm", {"train": [str(text)], "level": "char", "reverse": True, "hidden_size": 8, "embedding_size": 4, "max_steps": 2, "progress": False}, tmp_path / "run")
    asked = []
    monkeypatch.setattr(inspecting, "features_as_read", lambda tokens, level, backwards: asked.append((tokens, backwards)) or inspecting.text_features(tokens, level))
    task, model, _, device = open_run(tmp_path / "run")
    inspect(task, model, "ab (cd) ef", device)
    assert asked == [([*"fe )dc( ba", "<EOS>"], True)]  # the steps as read, said to be read backwards


def test_the_loss_curve_marks_a_split_logged_once(tmp_path, monkeypatch):
    """A run that logged its training loss once drew it as a line through one point: nothing."""
    pytest.importorskip("matplotlib")
    import rnnkit.plots as plots

    drawn = []
    made = plots.new_figure
    monkeypatch.setattr(plots, "new_figure", lambda *a: drawn.append(made(*a)) or drawn[-1])
    assert plots.plot_losses([{"step": "5", "split": "train", "loss": "2.0"}, {"step": "5", "split": "valid", "loss": "2.1"}], tmp_path / "c.png")
    ((_, axes),) = drawn
    assert [line.get_marker() for line in axes.get_lines()] == ["o", "o"]
    assert plots.plot_losses([{"step": str(s), "split": "train", "loss": "2.0"} for s in (1, 2)], tmp_path / "d.png")
    assert [line.get_marker() for line in drawn[-1][1].get_lines()] == ["None"]  # a line of two points needs none
