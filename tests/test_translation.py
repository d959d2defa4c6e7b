"""Translation: attention, greedy and beam search against teacher forcing, the date task, the
parallel-file errors, and the command line."""

from __future__ import annotations

import json

import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.parallel import read_parallel
from rnnkit.data.text import DataError
from rnnkit.errors import UsageError
from rnnkit.decoding import beam_search, max_target_length, sequence_log_prob, translate_greedy
from rnnkit.models.seq2seq import Seq2Seq

EOS = 2


def small_model(attention="multiplicative", input_feeding=False, cell="gru", seed=0):
    torch.manual_seed(seed)
    model = Seq2Seq(12, 9, cell=cell, embedding_size=6, hidden_size=8, attention=attention, input_feeding=input_feeding, dropout=0.0).double()
    with torch.no_grad():  # sharpen the output layer, and favour <EOS>, so that hypotheses end at varied lengths
        model.output.weight.mul_(4)
        model.output.bias[EOS] += 2.5
    return model.eval()


SOURCE = torch.tensor([[3, 4], [5, 6], [7, 0], [8, 0]])  # (S=4, B=2); the second source has 2 tokens
LENGTHS = torch.tensor([4, 2])


@pytest.mark.parametrize("attention", ["multiplicative", "additive"])
def test_attention_weights_sum_to_one_and_ignore_padding(attention):
    model = small_model(attention)
    state = model.start(SOURCE, LENGTHS)
    weights = model.step(None, state).attention  # (B, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, dtype=torch.float64))
    assert torch.all(weights[1, 2:] == 0)  # padded source steps get no weight


@pytest.mark.parametrize("attention,input_feeding,cell", [("multiplicative", False, "gru"), ("additive", True, "lstm"), ("none", False, "lstm")])
def test_fast_training_pass_equals_stepwise_decoding(attention, input_feeding, cell):
    model = small_model(attention, input_feeding, cell)
    target = torch.tensor([[3, 5], [4, 2], [2, 6], [7, 2]])
    fast = model(SOURCE, LENGTHS, target).logits  # teacher forcing, all steps at once where possible
    state, previous, steps = model.start(SOURCE, LENGTHS), None, []
    for t in range(target.shape[0]):
        step = model.step(previous, state)
        logits, state = step.logits, step.state
        steps.append(logits)
        previous = target[t]
    torch.testing.assert_close(fast, torch.stack(steps))


@pytest.mark.parametrize("beam", [1, 3])
def test_each_sentence_is_bounded_by_its_own_length_not_by_the_batch(beam):
    """max_target_length gives one bound per row: a sentence translated beside a longer one gets the
    translation it gets alone (with <EOS> banned every output runs to its bound, so a bound taken
    from the batch's longest source would show at once)."""
    model = small_model(seed=2)
    limits = max_target_length(LENGTHS.tolist(), 1.5, 2)
    assert limits == [8, 5]

    def decode(source, lengths, limit):
        if beam == 1:
            return [h.tokens for h in translate_greedy(model, source, lengths, eos_id=EOS, max_length=limit, banned=[0, EOS])]
        return [h[0].tokens for h in beam_search(model, source, lengths, eos_id=EOS, beam=beam, max_length=limit, banned=[0, EOS])]

    together = decode(SOURCE, LENGTHS, limits)
    alone = decode(SOURCE[:2, 1:], LENGTHS[1:], limits[1:])
    assert [len(t) for t in together] == limits and together[1] == alone[0]


@pytest.mark.parametrize("attention", ["multiplicative", "additive", "none"])
def test_beam_width_one_equals_greedy(attention):
    model = small_model(attention, seed=1)
    greedy = translate_greedy(model, SOURCE, LENGTHS, eos_id=EOS, max_length=12, banned=[0])
    beam = beam_search(model, SOURCE, LENGTHS, eos_id=EOS, beam=1, max_length=12, banned=[0])
    assert [h.tokens for h in greedy] == [b[0].tokens for b in beam]
    assert [h.ended for h in greedy] == [b[0].ended for b in beam]
    for g, b in zip(greedy, beam):
        assert abs(g.log_prob - b[0].log_prob) < 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_beam_hypotheses_are_in_score_order_and_scores_are_the_models_log_probs(seed):
    model = small_model(seed=seed)
    results = beam_search(model, SOURCE, LENGTHS, eos_id=EOS, beam=4, max_length=12, alpha=0.6, nbest=4, banned=[0])
    for b, hypotheses in enumerate(results):
        assert len(hypotheses) == 4
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
        for h in hypotheses:
            target = h.tokens + [EOS] if h.ended else h.tokens  # cut at max_length: no <EOS> term
            recomputed = sequence_log_prob(model, SOURCE[: LENGTHS[b], b : b + 1], target)
            assert abs(h.log_prob - recomputed) < 1e-9
        assert any(h.ended for h in hypotheses)


def test_a_line_of_only_invisible_characters_is_an_empty_line(tmp_path):
    """A source line of a zero-width space and a direction mark was trained on as an empty sentence;
    a blank one is refused, naming the line. Every level reads text without those characters."""
    (tmp_path / "s.txt").write_text("eins\n\u200b\u200e\ndrei\n")
    (tmp_path / "t.txt").write_text("one\ntwo\nthree\n")
    with pytest.raises(DataError, match=r"s.txt:2: empty line, while .*t.txt:2 is not"):
        read_parallel(tmp_path / "s.txt", tmp_path / "t.txt")


def test_parallel_files_errors(tmp_path):
    (tmp_path / "a.src").write_text("eins\nzwei\ndrei\n")
    (tmp_path / "a.tgt").write_text("one\ntwo\n")
    with pytest.raises(DataError, match=r"a.src has 3 lines but .*a.tgt has 2: parallel files must be line-aligned"):
        read_parallel(tmp_path / "a.src", tmp_path / "a.tgt")
    (tmp_path / "b.src").write_text("eins\n\ndrei\n")
    (tmp_path / "b.tgt").write_text("one\ntwo\nthree\n")
    with pytest.raises(DataError, match=r"b.src:2: empty line, while .*b.tgt:2 is not"):
        read_parallel(tmp_path / "b.src", tmp_path / "b.tgt")
    (tmp_path / "empty.src").write_text("")
    with pytest.raises(DataError, match="empty.src: the file has no text"):
        read_parallel(tmp_path / "empty.src", tmp_path / "a.tgt")


@pytest.mark.parametrize("separator, form, cut", [("\t", "source<TAB>target", "cut -f1 FILE"), (" ||| ", "source ||| target", "sed 's/ ||| .*//' FILE")])
def test_a_one_file_bitext_given_as_one_side_is_said(tmp_path, capsys, separator, form, cut):
    """A Moses or fast_align bitext (``source ||| target``) or a tab-separated one given as --source, beside
    another file as --target, trained each whole pair as one source sentence, unsaid; given as both sides,
    the refusal's advice named only the tab-separated form."""
    from rnnkit.tasks.translation import TranslationTask
    from rnnkit.tasks.translation_spec import TranslationDataConfig

    pairs = [("ein mann", "a man"), ("ein hund", "a dog"), ("zwei katzen", "two cats")]
    (tmp_path / "bitext.txt").write_text("".join(f"{s}{separator}{t}\n" for s, t in pairs))
    (tmp_path / "en.txt").write_text("".join(f"{t}\n" for _, t in pairs))
    TranslationTask.prepare(TranslationDataConfig(source=str(tmp_path / "bitext.txt"), target=str(tmp_path / "en.txt")))
    err = capsys.readouterr().err
    assert f"--source {tmp_path / 'bitext.txt'}'s lines look like a bitext ({form})" in err and cut in err and "--target" not in err
    (tmp_path / "de.txt").write_text("".join(f"{s}\n" for s, _ in pairs))
    TranslationTask.prepare(TranslationDataConfig(source=str(tmp_path / "de.txt"), target=str(tmp_path / "en.txt")))
    assert "bitext" not in capsys.readouterr().err
    with pytest.raises(UsageError, match=r"two line-aligned files \(a source<TAB>target file: cut -f1 FILE .*; a source \|\|\| target file: sed"):
        TranslationDataConfig(source=str(tmp_path / "bitext.txt"), target=str(tmp_path / "bitext.txt")).check()


def test_date_generator_is_deterministic_and_right_by_construction():
    pytest.importorskip("babel")
    import datetime

    from rnnkit.data.dates import generate_dates, human_date

    pairs = generate_dates(200, seed=5)
    assert pairs == generate_dates(200, seed=5)
    assert all(datetime.date.fromisoformat(iso) for _, iso in pairs)
    assert human_date(datetime.date(1979, 5, 3), "d MMMM y") == "3 may 1979"
    assert human_date(datetime.date(2021, 3, 2), "full") == "tuesday march 2 2021"


def test_date_task_learns_and_runs_end_to_end(tmp_path, capsys):
    pytest.importorskip("babel")
    pytest.importorskip("sacrebleu")
    run = tmp_path / "run"
    code = main(["train", "seq2seq", "--dates", "6000", "--level", "char", "--run", str(run), "--epochs", "6", "--lr", "0.005",
                 "--hidden-size", "48", "--embedding-size", "24", "--batch-size", "64", "--beam", "3", "--no-progress"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_exact_match"] >= 0.5  # the benchmark (docs/benchmarks.md) trains to >= 99%
    assert "nrefs:1" in summary["test_bleu_signature"]
    code = main(["translate", str(run), "--beam", "3", "--nbest", "2", "--json", "3 may 1979", "--attention", str(tmp_path / "att.png")])
    out, _ = capsys.readouterr()
    result = json.loads(out.splitlines()[0])
    assert code == 0 and len(result["translations"]) == 2 and (tmp_path / "att.png").exists()
    assert result["translations"][0]["score"] >= result["translations"][1]["score"]
    code = main(["translate", str(run), "--beam", "2", "--nbest", "3", "3 may 1979"])  # the server's rule too (test_serve)
    assert code == 2 and "--nbest 3 cannot exceed the beam width 2: give --beam 3 or more" in capsys.readouterr().err
    source, target = tmp_path / "d.src", tmp_path / "d.tgt"
    source.write_text("3 may 1979\n25.12.49\n")
    target.write_text("1979-05-03\n2049-12-25\n")
    code = main(["eval", str(run), f"{source},{target}", "--json"])
    result = json.loads(capsys.readouterr()[0])
    assert code == 0 and 0 <= result["exact_match"] <= 1 and result["bleu_signature"].startswith("nrefs:1")
    code = main(["eval", str(run), f"{source},{target}"])  # as read by a person: the signatures too (README)
    out = capsys.readouterr()[0]
    assert code == 0 and "BLEU signature: nrefs:1" in out and "chrF signature: nrefs:1" in out, out


@pytest.mark.parametrize("lowercase", [True, False])
def test_a_lowercasing_run_is_scored_case_blind(lowercase):
    """A ``--lowercase`` run translates into lower case; scored against the references as cased, a
    perfect copy made BLEU 25 and exact match 0 (and picked the best weights by that)."""
    pytest.importorskip("sacrebleu")
    from rnnkit.tasks.translation import TranslationTask

    task = TranslationTask.__new__(TranslationTask)
    task.data = TranslationTask.data_config({"lowercase": lowercase})
    import unicodedata

    references = ["Der Hund läuft über das Gras .", "Eine Frau ."]
    scores = task.scores([r.lower() for r in references], [unicodedata.normalize("NFD", r) for r in references])  # composed or not
    if lowercase:
        assert scores["bleu"] == pytest.approx(100) and scores["exact_match"] == 1 and "case:lc" in scores["bleu_signature"]
    else:
        assert scores["bleu"] < 50 and scores["exact_match"] == 0 and "case:mixed" in scores["bleu_signature"]
    # read otherwise than sacrebleu reads the file: said under the signatures, so that nobody publishes a figure the files do not give
    assert scores["references_read_otherwise"] == 1 and "1 reference lines were scored as rnnkit reads text" in task.details(scores)[-1]


def test_options_an_attention_free_model_cannot_honour_are_refused_before_translating(tmp_path, capsys):
    """``--replace-unk`` on an ``--attention none`` run printed <UNK> silently; ``--plot`` translated
    every line and only then said there was no attention; ``--source - --target -`` said the (twice
    read) standard input had no text."""
    from rnnkit.runs import start

    source, target = tmp_path / "s.txt", tmp_path / "t.txt"
    source.write_text("one two\ntwo three\n" * 4)
    target.write_text("eins zwei\nzwei drei\n" * 4)
    start("seq2seq", {"source": str(source), "target": str(target), "attention": "none", "hidden_size": 4, "embedding_size": 4,
                      "max_steps": 1, "progress": False}, tmp_path / "run")  # fmt: skip
    capsys.readouterr()
    for option in (["--replace-unk"], ["--plot", str(tmp_path / "a.png")]):
        assert main(["translate", str(tmp_path / "run"), "one two", *option]) == 2
        out, err = capsys.readouterr()
        assert not out and "was trained with --attention none; leave it out" in err, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["data"]["beam"] = 0  # edited: config.json's fault, not options the user never gave
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    assert main(["translate", str(tmp_path / "run"), "one two"]) == 2
    assert "config.json: data setting beam: must be a whole number >= 1" in capsys.readouterr().err
    with pytest.raises(Exception, match=r"--source and --target cannot both be standard input"):
        start("seq2seq", {"source": "-", "target": "-", "max_steps": 1, "progress": False}, tmp_path / "run2")


def test_text_segmented_by_another_tool_is_named_and_sentencepiece_marks_join_back(tmp_path, capsys):
    """SentencePiece text at the word level came back as "▁ two ▁ men" (BLEU 0 for a perfect model),
    with no word; the same file as source and target trained a copy model silently."""
    from rnnkit.data.tokenizers import make_tokenizer, presegmented
    from rnnkit.runs import start

    word = make_tokenizer({"kind": "word"})
    pieces = "\u2581two \u2581men \u2581are \u2581stand ing"
    assert word.detokenize(word.tokenize(pieces)) == pieces
    assert presegmented([pieces]).startswith("SentencePiece") and presegmented(["wor@@ ld"]).startswith("subword-nmt")
    assert presegmented(["two men are standing ."]) is None
    assert presegmented(["orange \uffed-\uffed colored hat \uffed."]).startswith("OpenNMT")  # OpenNMT's joiners, said as the others
    source, target = tmp_path / "s.txt", tmp_path / "t.txt"
    source.write_text("zwei männer\nein hund\n" * 4)
    target.write_text(f"{pieces}\n\u2581a \u2581dog\n" * 4)
    start("seq2seq", {"source": str(source), "target": str(target), "hidden_size": 4, "embedding_size": 4, "max_steps": 1, "progress": False}, tmp_path / "run")
    err = capsys.readouterr().err
    assert "the target text looks segmented by SentencePiece" in err and "--level whitespace" in err and "source text" not in err
    with pytest.raises(Exception, match=r"--source and --target are the same file"):
        start("seq2seq", {"source": str(source), "target": str(tmp_path / "." / "s.txt"), "max_steps": 1, "progress": False}, tmp_path / "run2")
    assert not (tmp_path / "run2").exists()


def test_fewer_translations_than_nbest_are_said_and_a_wide_beam_decodes_fewer_texts_at_once(tmp_path, capsys, monkeypatch):
    """--nbest 20 printed 5 hypotheses per text without a word; --beam 5000 over 40 texts took 13 GB."""
    import rnnkit.tasks.translation as translation
    from rnnkit.runs import start

    source, target = tmp_path / "s.txt", tmp_path / "t.txt"
    source.write_text("a\nb\n" * 4)
    target.write_text("x\ny\n" * 4)
    start("seq2seq", {"source": str(source), "target": str(target), "hidden_size": 4, "embedding_size": 4, "max_steps": 1,
                      "length_ratio": 0.01, "length_extra": 1, "progress": False}, tmp_path / "run")  # fmt: skip
    capsys.readouterr()
    assert main(["translate", str(tmp_path / "run"), "a", "b", "--beam", "20", "--nbest", "20"]) == 0
    out, err = capsys.readouterr()
    assert "2 text(s) have fewer than --nbest 20 translations" in err and len(out.splitlines()) < 40
    assert main(["translate", str(tmp_path / "run"), "a", "b", "a", "--beam", "3", "--nbest", "2"]) == 0
    wide = capsys.readouterr().out
    monkeypatch.setattr(translation, "BEAM_ROWS", 3)  # one text at a time: the same translations
    assert main(["translate", str(tmp_path / "run"), "a", "b", "a", "--beam", "3", "--nbest", "2"]) == 0
    assert capsys.readouterr().out == wide
    # a blank line's one empty line is no --nbest lines either: said too (a script counting lines loses its place)
    assert main(["translate", str(tmp_path / "run"), "a", "", "b", "--beam", "3", "--nbest", "2"]) == 0
    out, err = capsys.readouterr()
    assert "1 blank line(s) gave one empty line each, not --nbest 2 lines" in err and "" in out.splitlines(), err


def test_a_held_out_pair_longer_than_a_translation_reads_is_refused_before_training_and_at_eval(tmp_path, capsys, monkeypatch):
    """Training leaves out pairs over --max-length; a validation, test or eval file took any length
    into attention (target x source steps) and beam search: a document on one line ran out of memory
    at the first validation, after the training it ended."""
    from rnnkit.runs import start
    from rnnkit.tasks import translation

    monkeypatch.setattr(translation.TranslationTask, "max_sequence_steps", 50)
    source, target, long = tmp_path / "s.txt", tmp_path / "t.txt", tmp_path / "long.txt"
    source.write_text("one two\ntwo three\n" * 4)
    target.write_text("eins zwei\nzwei drei\n" * 4)
    long.write_text("one two\n" + "two " * 60 + "\n")
    (tmp_path / "t2.txt").write_text("eins zwei\nzwei drei\n")
    small = {"hidden_size": 4, "embedding_size": 4, "max_steps": 1, "progress": False}
    with pytest.raises(DataError, match=r"long\.txt,.*t2\.txt \(source side\): a sequence of 60 steps, more than 50"):
        start("seq2seq", {"source": str(source), "target": str(target), "valid_source": str(long), "valid_target": str(tmp_path / "t2.txt"), **small}, tmp_path / "r")
    assert not (tmp_path / "r").exists()
    start("seq2seq", {"source": str(source), "target": str(target), **small}, tmp_path / "run")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), f"{long},{tmp_path / 't2.txt'}"]) != 0
    assert "long.txt" in capsys.readouterr().err
    assert main(["translate", str(tmp_path / "run"), "two " * 60]) != 0
    assert "60 tokens, more than 50" in capsys.readouterr().err


def test_max_length_is_held_to_the_longest_pair_a_translation_reads(tmp_path, capsys):
    """``--max-length 20000`` let a training pair of 15,000 tokens a side into training, which took
    17.6 GB until the kernel killed it, leaving a run without a checkpoint; held-out pairs were
    refused past 10,000. The option is now held to the same limit, before a run is made."""
    from rnnkit.tasks.translation import LONGEST_SIDE

    source, target = tmp_path / "s.txt", tmp_path / "t.txt"
    source.write_text("one two\n" * 4)
    target.write_text("eins zwei\n" * 4)
    for where in ("option", "config"):
        (tmp_path / "c.toml").write_text(f"max_length = {LONGEST_SIDE + 1}\n")
        extra = ["--max-length", str(LONGEST_SIDE + 1)] if where == "option" else ["--config", str(tmp_path / "c.toml")]
        try:
            code = main(["train", "seq2seq", "--source", str(source), "--target", str(target), "--run", str(tmp_path / "r"), *extra])
        except SystemExit as exit:  # argparse's own refusal of the option
            code = exit.code
        err = capsys.readouterr().err
        assert code == 2 and f"{LONGEST_SIDE}" in err and "max" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "r").exists()


def test_eval_finds_the_comma_between_source_and_target_in_paths_that_hold_commas(tmp_path, monkeypatch):
    """``SOURCE,TARGET`` was cut at its first comma: "a,b/v.de,a,b/v.en" read the file "a"."""
    from rnnkit.tasks.translation import source_and_target

    folder = tmp_path / "a,b"
    folder.mkdir()
    (folder / "v.de").write_text("eins\n")
    (folder / "v.en").write_text("one\n")
    assert source_and_target(f"{folder}/v.de,{folder}/v.en") == (f"{folder}/v.de", f"{folder}/v.en")
    assert source_and_target(f"-,{folder}/v.en") == ("-", f"{folder}/v.en")
    assert source_and_target("x.de,y.en") == ("x.de", "y.en")  # none there: the reader names the missing file
    with pytest.raises(UsageError, match=r"cut at any of its 3 commas it does not name two existing files"):
        source_and_target(f"{folder}/v.de,{folder}/none.en")
    with pytest.raises(UsageError, match="SOURCE,TARGET"):
        source_and_target("x.de")
    monkeypatch.chdir(tmp_path)
    for name in ("p", "q,r", "p,q", "r"):  # "p,q,r" is p and q,r, or p,q and r
        (tmp_path / name).write_text("x\n")
    with pytest.raises(UsageError, match="in 2 ways"):
        source_and_target("p,q,r")
