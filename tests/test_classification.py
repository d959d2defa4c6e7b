"""Sequence classification: the readers of four formats, the metrics, pooling over real steps only,
overfitting, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from equality import assert_equal_up_to_rounding
from rnnkit.cli import main
from rnnkit.data.labeled import LabeledText, parse_tree, read_labeled
from rnnkit.data.text import DataError
from rnnkit.metrics import classification_scores
from rnnkit.models.classifier import POOLINGS, Classifier

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_readers_of_every_format(tmp_path):
    (tmp_path / "a.tsv").write_text("4\tGreat film .\n1\tDull .\n")
    (tmp_path / "a.ft").write_text("__label__4 Great film .\n__label__1 Dull .\n")
    (tmp_path / "a.csv").write_text("review,stars\n\"Great film, really\",4\nDull,1\n")
    (tmp_path / "a.trees").write_text("(3 (2 The) (4 (4 great) (2 film)))\n")
    assert read_labeled(tmp_path / "a.tsv") == [LabeledText("Great film .", "4"), LabeledText("Dull .", "1")]
    assert read_labeled(tmp_path / "a.ft") == [LabeledText("Great film .", "4"), LabeledText("Dull .", "1")]
    assert read_labeled(tmp_path / "a.csv", text_column="review", label_column="stars")[0] == LabeledText("Great film, really", "4")
    assert read_labeled(tmp_path / "a.trees") == [LabeledText("The great film", "3")]
    phrases = read_labeled(tmp_path / "a.trees", phrases=True)
    assert {(p.text, p.label) for p in phrases} == {("The great film", "3"), ("The", "2"), ("great film", "4"), ("great", "4"), ("film", "2")}


def test_only_treebank_phrases_are_made_distinct(tmp_path):
    """``phrases`` (on by default for training) keeps one example per distinct labelled phrase of a
    treebank, whose sentences share subtrees; a line repeated in a tsv, fastText or csv file is an
    example each time (SST-5's sst_train.txt repeats 10 of its 8,544 lines), as evaluation reads it."""
    (tmp_path / "d.tsv").write_text("pos\tgood\npos\tgood\nneg\tbad\n")
    (tmp_path / "d.ft").write_text("__label__pos good\n__label__pos good\n")
    (tmp_path / "d.csv").write_text("text,label\ngood,pos\ngood,pos\n")
    assert len(read_labeled(tmp_path / "d.tsv", phrases=True)) == 3
    assert len(read_labeled(tmp_path / "d.ft", phrases=True)) == 2
    assert len(read_labeled(tmp_path / "d.csv", phrases=True)) == 2
    (tmp_path / "d.trees").write_text("(3 (2 good) (3 film))\n(3 (2 good) (3 film))\n")
    assert len(read_labeled(tmp_path / "d.trees", phrases=True)) == 3  # the sentence, "good", "film"


def test_a_tsv_file_in_text_label_order_is_refused_as_labels_that_look_like_texts(tmp_path):
    """rnnkit reads a headerless tsv file as label<TAB>text. A text<TAB>label file read that way has
    a class per text, which nothing can learn: refused in one line. The right order, or a header
    row naming the columns, reads the same lines as two classes."""
    from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask

    rows = [(f"a review of film number {i}", "pos" if i % 2 else "neg") for i in range(40)]
    swapped = tmp_path / "swapped.tsv"
    swapped.write_text("".join(f"{text}\t{label}\n" for text, label in rows))
    with pytest.raises(DataError, match=r"^.*swapped.tsv: 40 different labels in 40 training examples \(and 2 different texts\): the labels look like texts; rnnkit reads a tsv file as label<TAB>text"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(swapped)]))
    with_header = tmp_path / "header.tsv"
    with_header.write_text("text\tlabel\n" + swapped.read_text())
    task, record = ClassificationTask.prepare(ClassificationDataConfig(train=[str(with_header)]))
    assert record["labels"] == ["neg", "pos"] and record["examples"]["train"] == 40
    many = tmp_path / "many.tsv"  # many classes, each with several texts: a real task, read as it is
    many.write_text("".join(f"intent{i % 30}\tplease do thing {i}\n" for i in range(90)))
    assert len(ClassificationTask.prepare(ClassificationDataConfig(train=[str(many)]))[1]["labels"]) == 30
    # few-shot intents (25 classes in 45 examples) in a file that says which field is the label were
    # refused as swapped columns, with advice (a header) that did not get past the refusal
    rows = [(f"intent_{i}", f"please do thing number {i} now") for i in range(25)] + [(f"intent_{i}", f"could you do task {i}") for i in range(20)]
    (tmp_path / "few.txt").write_text("".join(f"__label__{label} {text}\n" for label, text in rows))
    (tmp_path / "few.tsv").write_text("label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows))
    for name in ("few.txt", "few.tsv"):
        assert len(ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / name)]))[1]["labels"]) == 25, name
    # a small swapped file (18 examples, 18 labels, 2 texts) was trained on silently, a class per sentence
    small = tmp_path / "small.tsv"
    small.write_text("".join(f"a {'fine' if i % 2 else 'dull'} film {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(18)))
    with pytest.raises(DataError, match=r"small.tsv: 18 different labels in 18 training examples \(and 2 different texts\)"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(small)]))
    small.write_text(small.read_text() + "a dull film 0\tneg\n")  # one review twice: 18 labels in 19 examples
    with pytest.raises(DataError, match=r"small.tsv: 18 different labels in 19 training examples"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(small)]))
    (tmp_path / "invisible.tsv").write_text("pos\tgood film\nneg\tbad film\n" * 4 + "odd\t\u200b\u00ad\n")
    with pytest.raises(DataError, match=r"invisible.tsv:9: the text is empty \(only invisible characters\)"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / "invisible.tsv")]))
    (tmp_path / "glued.txt").write_text("__label__pos,__label__neg mixed feelings\n__label__pos fine\n")
    with pytest.raises(DataError, match=r"glued.txt:1: several labels"):  # was one class "pos,__label__neg"
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / "glued.txt")]))


def test_one_number_written_two_ways_is_refused_not_split_into_two_classes(tmp_path):
    """A ratings column partly written as floats ("2" and "2.0") made two classes of one rating,
    silently: refused, naming both spellings."""
    from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask

    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("".join(f"{label}\ttext number {i}\n" for i, label in enumerate(["1", "2", "2.0", "3"] * 5)))
    with pytest.raises(DataError, match=r"mixed.tsv: the labels '(2|2.0)' and '(2.0|2)' are one number written 2 ways"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(mixed)]))


def test_tree_unescaping_and_errors(tmp_path):
    sentence, subtrees = parse_tree(r"(2 (2 -LRB-) (2 Singer\/composer) (2 -RRB-))", "x:1")
    assert sentence.text == "( Singer/composer )" and len(subtrees) == 3
    for text, message in [("(2 (2 a)", "unbalanced"), ("(2 (2 a)) extra", "text after"), ("2 a)", "expected '\\('")]:
        with pytest.raises(DataError, match=message):
            parse_tree(text, "x:1")
    (tmp_path / "bad.tsv").write_text("4\tfine\nno tab here\n")
    with pytest.raises(DataError, match=r"bad.tsv:2: expected 'label<TAB>text'"):
        read_labeled(tmp_path / "bad.tsv", "tsv")
    (tmp_path / "bad.ft").write_text("__label__4 ok\nlabel4 no\n")
    with pytest.raises(DataError, match=r"bad.ft:2: expected '__label__X text'"):
        read_labeled(tmp_path / "bad.ft", "fasttext")
    (tmp_path / "bad.csv").write_text("text,label\nok,1\n")
    with pytest.raises(DataError, match=r"bad.csv: no column 'stars'"):
        read_labeled(tmp_path / "bad.csv", label_column="stars")
    (tmp_path / "bad.trees").write_text("(3 (2 a) (2 b))\n(3 (2 a)\n")
    with pytest.raises(DataError, match=r"bad.trees:2: malformed tree"):
        read_labeled(tmp_path / "bad.trees")


@pytest.mark.skipif(not (SHARED / "sst5" / "trees" / "train.txt").exists(), reason="shared SST data absent")
def test_reads_the_real_sst_files():
    train = read_labeled(SHARED / "sst5" / "trees" / "train.txt")
    assert len(train) == 8544
    assert [sum(x.label == str(k) for x in train) for k in range(5)] == [1092, 2218, 1624, 2322, 1288]
    tabular = read_labeled(SHARED / "sst5" / "tabular" / "sst_train.txt")
    assert [x.text for x in tabular[:50]] == [x.text for x in train[:50]]  # the two forms agree
    assert [int(x.label) - 1 for x in tabular[:200]] == [int(x.label) for x in train[:200]]
    assert len(read_labeled(SHARED / "sst5" / "trees" / "dev.txt", phrases=True)) > 10 * 1101


def test_classification_scores_by_hand():
    labels = ["1", "2", "3"]
    gold, predicted = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    scores = classification_scores(gold, predicted, labels)
    assert scores["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert scores["accuracy"] == pytest.approx(4 / 6)
    f1 = [2 * 1 / (2 + 1 + 1), 2 * 1 / (2 + 1 + 0), 2 * 2 / (4 + 0 + 1)]
    assert scores["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert scores["mae"] == pytest.approx((0 + 1 + 0 + 0 + 0 + 2) / 6)
    assert "mae" not in classification_scores(gold, predicted, ["neg", "neu", "pos"])
    # a file with one class only, all answered right: 100 %, not 1/3 (the absent classes had F1 0)
    only = classification_scores([2, 2, 2], [2, 2, 2], labels)
    assert only["accuracy"] == 1 and only["macro_f1"] == 1 and only["f1_per_class"] == {"3": 1.0}
    # as scikit-learn's macro F1: a class occurs when it is in the gold labels or the predictions
    some = classification_scores([0, 0, 2], [0, 1, 2], labels)
    assert some["macro_f1"] == pytest.approx((2 / 3 + 0 + 1) / 3) and set(some["f1_per_class"]) == {"1", "2", "3"}


@pytest.mark.parametrize("pooling", sorted(POOLINGS))
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_pooling_ignores_padding(pooling, bidirectional):
    torch.manual_seed(0)
    model = Classifier(20, 3, embedding_size=6, hidden_size=5, bidirectional=bidirectional, pooling=pooling, dropout=0.0).eval()
    short = torch.tensor([[4], [7], [9]])  # one sequence of 3 tokens
    padded = torch.tensor([[4, 5], [7, 6], [9, 8], [0, 3], [0, 2]])  # the same, padded to 5, next to another
    alone = model(short).logits
    together = model(padded, torch.tensor([3, 5])).logits
    assert_equal_up_to_rounding(alone[0], together[0], reduction=5 * 6)  # one row or two: other BLAS blocks


def test_word_dropout_replaces_real_words_by_unk_in_training_only():
    torch.manual_seed(0)
    model = Classifier(50, 3, embedding_size=4, hidden_size=3, dropout=0.0, word_dropout=0.3)
    seen = []
    model.embedding.register_forward_hook(lambda module, args, out: seen.append(args[0].clone()))
    tokens = torch.randint(3, 50, (40, 30))  # (T, B) real words, no <UNK>
    tokens[30:, :10] = 0  # padding
    model.train()(tokens)
    dropped = seen[-1] == 1
    assert not dropped[30:, :10].any()  # padding stays padding
    assert 0.25 < dropped.float().mean().item() * 1200 / 1100 < 0.35  # about 30% of the 1,100 real words
    assert torch.equal(seen[-1][~dropped], tokens[~dropped])
    model.eval()(tokens)
    assert torch.equal(seen[-1], tokens)  # evaluation reads every word
    with pytest.raises(ValueError, match="word_dropout"):
        Classifier(50, 3, word_dropout=1.0)


def test_balanced_class_weights_weigh_each_class_alike(tmp_path):
    from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask

    path = tmp_path / "skewed.tsv"
    path.write_text("".join(f"{label}\tword{i}\n" for i, label in enumerate("aaaaaabbc")))  # 6, 2, 1
    task, _ = ClassificationTask.prepare(ClassificationDataConfig(train=[str(path)], class_weights="balanced"))
    torch.testing.assert_close(task.class_weights(), torch.tensor([9 / (3 * 6), 9 / (3 * 2), 9 / (3 * 1)]))
    torch.manual_seed(0)
    model = Classifier(len(task.vocab), 3, embedding_size=4, hidden_size=3, dropout=0.0)
    batch = task.collate(task._examples("train"))
    loss, count = task.loss(model, batch, "cpu")
    logits, labels = model(batch[0].tokens, batch[0].lengths).logits, batch[1]
    by_hand = sum(-torch.log_softmax(logits[i], -1)[y] * task.class_weights()[y] for i, y in enumerate(labels.tolist()))
    torch.testing.assert_close(loss, by_hand)
    assert count == 9
    unweighted, _ = ClassificationTask.prepare(ClassificationDataConfig(train=[str(path)]))
    assert unweighted.class_weights() is None
    with pytest.raises(ValueError, match="class_weights"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(path)], class_weights="inverse"))


def write_reviews(path: Path) -> str:
    good = ["a wonderful film", "truly great acting", "wonderful and moving", "great fun", "a great wonderful story"]
    bad = ["a dull film", "truly awful acting", "dull and boring", "awful mess", "a boring dull story"]
    lines = [f"5\t{t}" for t in good] + [f"1\t{t}" for t in bad] + [f"3\t{t} , sort of" for t in ("fine", "okay")]
    path.write_text("\n".join(lines * 3) + "\n")
    return str(path)


def test_classifier_overfits_and_runs_end_to_end(tmp_path, capsys):
    data = write_reviews(tmp_path / "reviews.tsv")
    run = tmp_path / "run"
    code = main(["train", "classifier", data, "--valid", data, "--test", data, "--run", str(run), "--epochs", "25",
                 "--lr", "0.01", "--hidden-size", "16", "--embedding-size", "16", "--batch-size", "8", "--word-dropout", "0.1", "--no-progress"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_accuracy"] == 1.0 and summary["test_mae"] == 0.0
    assert summary["criterion"] == "1 - validation accuracy (lower is better)"  # what best_valid_criterion is
    assert json.loads((run / "config.json").read_text())["model"]["word_dropout"] == 0.1
    assert (run / "confusion_test.png").exists()
    code = main(["classify", str(run), "--json", "a wonderful film", "a dull film"])
    results = [json.loads(line) for line in capsys.readouterr()[0].splitlines()]
    assert [r["label"] for r in results] == ["5", "1"]
    assert abs(sum(results[0]["probabilities"].values()) - 1) < 1e-3
    code = main(["eval", str(run), data, "--pictures", str(tmp_path / "pics")])
    out, _ = capsys.readouterr()
    assert code == 0 and "accuracy 100.00" in out and "mean absolute error 0.000" in out
    assert (tmp_path / "pics" / "confusion_eval.png").exists()
    (tmp_path / "other.tsv").write_text("7\tsomething\n")
    code = main(["eval", str(run), str(tmp_path / "other.tsv")])
    assert code == 2 and "labels the model does not know: 7" in capsys.readouterr()[1]

    # an ensemble averages the class probabilities of several runs (here a second, differently seeded run)
    second = tmp_path / "second"
    code = main(["train", "classifier", data, "--valid", data, "--run", str(second), "--epochs", "3", "--seed", "1",
                 "--lr", "0.01", "--hidden-size", "8", "--embedding-size", "8", "--batch-size", "8", "--no-progress"])  # fmt: skip
    assert code == 0
    capsys.readouterr()
    texts = ["a wonderful film", "a dull film"]
    singles = []
    for path in (run, second):
        main(["classify", str(path), "--json", *texts])
        singles.append([json.loads(line)["probabilities"] for line in capsys.readouterr()[0].splitlines()])
    main(["classify", str(run), "--ensemble", str(second), "--json", *texts])
    averaged = [json.loads(line)["probabilities"] for line in capsys.readouterr()[0].splitlines()]
    for i in range(2):
        for label, p in averaged[i].items():
            assert abs(p - (singles[0][i][label] + singles[1][i][label]) / 2) < 2e-4
    code = main(["eval", str(run), data, "--ensemble", str(second), "--json"])
    result = json.loads(capsys.readouterr()[0])
    assert code == 0 and result["ensemble"] == 2 and 0 <= result["accuracy"] <= 1
    code = main(["eval", str(run), data, "--ensemble", str(tmp_path / "missing")])
    assert code != 0 and "missing" in capsys.readouterr()[1]
    for again in ([second, tmp_path / "." / "second"], [run]):  # counted twice, weighed double: refused
        code = main(["eval", str(run), data, *[a for path in again for a in ("--ensemble", str(path))]])
        assert code == 2 and "the same run as" in capsys.readouterr()[1]


def test_one_label_in_two_unicode_forms_is_one_class(tmp_path):
    """A label saved by two editors ("négatif" composed, and decomposed as macOS writes it) made two
    classes that print alike, and an NFD test file was refused for labels "the model does not know"."""
    import unicodedata

    rows = [f"{'négatif' if i % 3 else 'positif'}\ttext {i}" for i in range(12)]
    lines = [unicodedata.normalize("NFD", row) if i % 2 else row for i, row in enumerate(rows)]
    (tmp_path / "mixed.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert sorted({item.label for item in read_labeled(tmp_path / "mixed.tsv")}) == ["négatif", "positif"]


def test_a_label_ending_in_an_invisible_character_is_the_same_class(tmp_path):
    """"pos" followed by a zero-width space (a label pasted from a web page) was a third class that
    prints as "pos"; white space at a label's ends was already dropped, the format characters were not."""
    (tmp_path / "zw.csv").write_text('text,label\nnice film,pos\nbad,neg\nfine,"pos\u200b"\nx,\ufeffneg\u2060\ny,\u200epos\n', encoding="utf-8")
    assert [item.label for item in read_labeled(tmp_path / "zw.csv")] == ["pos", "neg", "pos", "neg", "pos"]
    (tmp_path / "zw.tsv").write_text("pos\u200b\tnice film\nneg\tbad\n", encoding="utf-8")
    assert [item.label for item in read_labeled(tmp_path / "zw.tsv")] == ["pos", "neg"]


def test_json_lines_are_named_as_such(tmp_path):
    """A .jsonl file was told "found no tab (a line break inside a quoted text? ... save as .csv)"."""
    (tmp_path / "train.jsonl").write_text('{"text": "a fine film", "label": "pos"}\n')
    with pytest.raises(DataError, match=r"train.jsonl:1: a JSON line\? labelled files are read as tsv"):
        read_labeled(tmp_path / "train.jsonl")


def test_labels_written_as_prices_or_not_a_number_are_drawn_and_scored_as_text(tmp_path):
    """"$", "$$", "$$$" labels (Yelp's price levels) crashed the confusion picture with matplotlib's
    math parser, leaving a run without its summary; "nan" and "inf" labels (pandas' missing value)
    were read as ratings and gave a NaN mean absolute error, which JSON cannot hold."""
    pytest.importorskip("matplotlib")
    from rnnkit.metrics import classification_scores, label_number
    from rnnkit.plots import plot_confusion

    assert plot_confusion([[2, 1], [0, 3]], ["$", "$$ to $$$"], tmp_path / "c.png", title="test $5")
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert [label_number(x) for x in ("4", "-1", "2.5", ".5", "1e3", "nan", "inf", "1e400", "1_0", "")] == [4.0, -1.0, 2.5, 0.5, 1000.0, None, None, None, None, None]
    assert "mae" not in classification_scores([0, 1], [1, 1], ["1", "nan"])
    assert classification_scores([0, 1], [1, 1], ["1", "3"])["mae"] == 1.0


def test_raw_text_read_at_the_whitespace_level_is_noted(tmp_path, capsys):
    """A CSV of raw reviews at the default whitespace level kept "it", "it," and "it." as three
    words, silently; tokenized text (SST, PTB) gets no note."""
    from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask

    raw = tmp_path / "raw.tsv"
    raw.write_text("pos\tGreat blender, works perfectly.\nneg\tBroke in a week, awful!\n" * 5)
    ClassificationTask.prepare(ClassificationDataConfig(train=[str(raw)]))
    assert "of the training words carry punctuation" in capsys.readouterr().err
    tokenized = tmp_path / "tok.tsv"
    tokenized.write_text("pos\tGreat blender , works perfectly .\nneg\tBroke in a week , awful !\n" * 5)
    ClassificationTask.prepare(ClassificationDataConfig(train=[str(tokenized)]))
    assert "carry punctuation" not in capsys.readouterr().err


def test_a_tsv_whose_fields_escape_their_quotes_with_backslashes_is_read_as_one_text_each(tmp_path):
    """Kaggle's IMDB labeledTrainData.tsv quotes each review and escapes the quotes inside with a
    backslash: the reviews quoting someone kept their wrapping quotes and backslashes, the others
    lost theirs, so one data set was read two ways."""
    (tmp_path / "imdb.tsv").write_text('id\tsentiment\treview\n"1_9"\t1\t"A \\"great\\" film, C:\\\\x"\n"2_1"\t0\t"Dull."\n')
    texts = [item.text for item in read_labeled(tmp_path / "imdb.tsv", text_column="review", label_column="sentiment")]
    assert texts == ['A "great" film, C:\\x', "Dull."]


def test_inspect_and_classify_read_typed_text_alike_and_without_white_space_at_its_ends(tmp_path):
    """inspect cut a classifier's (and a language model's, a translation's) text with the plain
    tokenizer, classify Treebank-style: what it showed was not what was classified. And a character
    run read the spaces around a typed text, which training had stripped from every text."""
    from rnnkit.runs import open_run, start

    (tmp_path / "tb.tsv").write_text("pos\tit is n't bad at all .\nneg\tit does n't work .\n" * 4)
    small = {"hidden_size": 4, "embedding_size": 4, "max_steps": 1, "progress": False}
    start("classifier", {"train": [str(tmp_path / "tb.tsv")], **small}, tmp_path / "run")
    task, model, _, device = open_run(tmp_path / "run", device="cpu")
    tokens, _ = task.inspect_forward(model, "It doesn't work.", device)
    assert tokens == task.typed_tokens("It doesn't work.") == ["it", "does", "n't", "work", "."]
    start("classifier", {"train": [str(tmp_path / "tb.tsv")], "level": "char", **small}, tmp_path / "chars")
    task, _, _, _ = open_run(tmp_path / "chars", device="cpu")
    assert task.typed_tokens("  bad \t") == task.typed_tokens("bad") == ["b", "a", "d"]


@pytest.mark.parametrize("other", ["Very Positive", "very  positive", "very\u00a0positive", "VERY POSITIVE"])
def test_one_label_in_another_case_or_spacing_is_refused_not_split_into_two_classes(tmp_path, other):
    """A label edited in another case, or with two spaces or a non-breaking space inside, made a
    class of its own, silently: refused, naming both spellings."""
    from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask

    rows = [("very positive" if i % 2 else "very negative") for i in range(20)] + [other]
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("".join(f"{label}\ttext number {i}\n" for i, label in enumerate(rows)))
    with pytest.raises(DataError, match=r"mixed.tsv: the labels .* are one label \(case or spaces apart\) written 2 ways"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(mixed)]))


def test_a_label_listing_several_labels_is_refused_not_made_a_class(tmp_path):
    """GoEmotions-style rows labelled "2,27" beside rows labelled 2 and 27 made a class "2,27";
    refused as fastText's several labels per line are. A comma in a label of its own stays a label."""
    from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask

    rows = ["text\tlabels\tid"] + [f"text number {i}\t{['2', '27', '0'][i % 3]}\tid{i}" for i in range(20)] + ["mixed feelings\t2,27\tid99"]
    (tmp_path / "goemo.tsv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"goemo.tsv: the label '2,27' lists several labels \('2', '27'"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / "goemo.tsv")]))
    own = [f"{['yes, really', 'no'][i % 2]}\ttext number {i}" for i in range(20)]  # "yes" is no label of its own
    (tmp_path / "own.tsv").write_text("\n".join(own) + "\n")
    task, _ = ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / "own.tsv")]))
    assert task.labels == ["no", "yes, really"]
    ratings = [f"{['1', '1,5', '5', '4,5'][i % 4]}\ttext number {i}" for i in range(20)]  # European decimal commas: numbers, no lists
    (tmp_path / "ratings.tsv").write_text("\n".join(ratings) + "\n")
    task, _ = ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / "ratings.tsv")]))
    assert sorted(task.labels) == ["1", "1,5", "4,5", "5"]


def test_a_held_out_label_spelled_otherwise_is_named_with_its_training_spelling(tmp_path):
    from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask

    (tmp_path / "train.tsv").write_text("".join(f"{i % 2 + 1}\ttext number {i}\n" for i in range(20)))
    (tmp_path / "test.tsv").write_text("1.0\ta text\n2\tanother\n")
    with pytest.raises(DataError, match=r"test.tsv: labels not seen in training: 1.0 \('1.0' is written '1' there"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / "train.tsv")], test=str(tmp_path / "test.tsv")))
    task, _ = ClassificationTask.prepare(ClassificationDataConfig(train=[str(tmp_path / "train.tsv")]))
    with pytest.raises(DataError, match=r"test.tsv: labels the model does not know: 1.0 \('1.0' is written '1' there"):  # rnnkit eval
        task.evaluate_file(None, str(tmp_path / "test.tsv"), "cpu")


def test_a_run_trained_on_named_csv_columns_evaluates_files_without_names(tmp_path, capsys):
    """A run trained with --text-column review --label-column stars refused --valid and eval files
    in tsv or fastText ("the text column 'review' (--text-column) cannot be found"), advising an
    option eval does not have; their columns go by position."""
    from rnnkit.cli import main

    rows = [("good film", "pos"), ("bad film", "neg"), ("fine film", "pos"), ("dull film", "neg")] * 3
    (tmp_path / "train.csv").write_text("review,stars\n" + "".join(f"{t},{l}\n" for t, l in rows))
    (tmp_path / "dev.tsv").write_text("".join(f"{l}\t{t}\n" for t, l in rows[:4]))
    (tmp_path / "dev.txt").write_text("".join(f"__label__{l} {t}\n" for t, l in rows[:4]))
    run = tmp_path / "run"
    assert main(["train", "classifier", str(tmp_path / "train.csv"), "--text-column", "review", "--label-column", "stars", "--valid",
                 str(tmp_path / "dev.tsv"), "--run", str(run), "--max-steps", "2", "--hidden-size", "4", "--embedding-size", "4", "--no-progress"]) == 0  # fmt: skip
    for held_out in ("dev.tsv", "dev.txt"):
        capsys.readouterr()
        assert main(["eval", str(run), str(tmp_path / held_out)]) == 0
        assert "(4 examples)" in capsys.readouterr().out


def test_a_run_trained_on_a_csv_file_evaluates_csv_of_any_name_and_from_standard_input(tmp_path, capsys, monkeypatch):
    """``--format auto`` is recorded, not the csv the .csv name chose: ``eval RUN -`` and ``eval RUN
    va_csv.txt`` read the csv as tsv ("<stdin>:1: expected 'label<TAB>text', found no tab")."""
    import io
    import sys

    rows = [("good film", "pos"), ("bad film", "neg"), ("fine film", "pos"), ("dull film", "neg")] * 3
    table = "review,stars\n" + "".join(f"{t},{l}\n" for t, l in rows)
    (tmp_path / "train.csv").write_text(table)
    (tmp_path / "va_csv.txt").write_text(table)
    (tmp_path / "dev.tsv").write_text("".join(f"{l}\t{t}\n" for t, l in rows[:4]))  # a tab says tsv, whatever the training
    run = tmp_path / "run"
    assert main(["train", "classifier", str(tmp_path / "train.csv"), "--text-column", "review", "--label-column", "stars", "--run", str(run),
                 "--max-steps", "2", "--hidden-size", "4", "--embedding-size", "4", "--no-progress"]) == 0  # fmt: skip
    for held_out, examples in (("va_csv.txt", 12), ("-", 12), ("dev.tsv", 4)):
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(table.encode())))
        code = main(["eval", str(run), held_out if held_out == "-" else str(tmp_path / held_out)])
        out, err = capsys.readouterr()
        assert code == 0 and f"({examples} examples)" in out, (held_out, err)
