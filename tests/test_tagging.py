"""Sequence tagging: the CRF against brute force, tag schemes, the CoNLL reader, why a tagger must
be bidirectional, overfitting, and the command line."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
import torch

from equality import assert_equal_up_to_rounding
from rnnkit.cli import main
from rnnkit.data.conll import TaggedSentence, convert, entities, read_conll
from rnnkit.data.text import DataError
from rnnkit.models import build_model
from rnnkit.models.crf import CRF
from rnnkit.tasks.tagging import TaggingDataConfig, TaggingTask

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def random_crf(num_tags: int, seed: int = 0) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(num_tags).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


@pytest.mark.parametrize("seed", range(3))
def test_crf_log_partition_and_viterbi_equal_brute_force(seed):
    K, T = 3, 5
    crf = random_crf(K, seed)
    emissions = torch.randn(T, 3, K, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 4])
    log_z = crf.log_partition(emissions, lengths)
    paths = crf.viterbi(emissions, lengths)
    for b, n in enumerate(lengths.tolist()):
        scored = []
        for path in itertools.product(range(K), repeat=n):
            tags = torch.tensor(list(path) + [0] * (T - n))[:, None]
            scored.append((crf.score(emissions[:, b : b + 1], tags, lengths[b : b + 1]).item(), list(path)))
        brute = torch.logsumexp(torch.tensor([s for s, _ in scored], dtype=torch.float64), 0).item()
        assert abs(log_z[b].item() - brute) < 1e-10
        assert paths[b] == max(scored)[1]


def test_crf_is_stable_with_large_scores():
    crf = random_crf(4)
    emissions = 500 * torch.randn(30, 2, 4, dtype=torch.float64)
    tags = torch.randint(4, (30, 2))
    nll = crf.nll(emissions, tags)
    assert torch.isfinite(nll).all() and (nll >= -1e-6).all()  # -log P >= 0, no overflow


def test_tag_schemes():
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "O", "I-MISC"]
    iob2 = convert(iob1, "iob1", "iob2")
    assert iob2 == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG", "O", "B-MISC"]
    iobes = convert(iob1, "iob1", "iobes")
    assert iobes == ["B-PER", "E-PER", "O", "S-LOC", "S-LOC", "S-ORG", "O", "S-MISC"]
    assert convert(iobes, "iobes", "iob2") == iob2
    assert convert(iob2, "iob2", "iob1") == iob1
    assert entities(iob2) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("ORG", 5, 6), ("MISC", 7, 8)]
    assert entities(["I-PER", "I-PER"]) == []  # strict: an entity must begin with B-


def test_conll_reader_and_its_errors(tmp_path):
    good = tmp_path / "a.conll"
    good.write_text("-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-NP I-PER\n")
    assert read_conll(good) == [TaggedSentence(["EU", "rejects"], ["I-ORG", "O"]), TaggedSentence(["Peter"], ["I-PER"])]
    bad = tmp_path / "b.conll"
    bad.write_text("EU NNP I-NP I-ORG\nrejects\n")
    with pytest.raises(DataError, match=r"b.conll:2: expected a token column \(0\) and a tag column \(-1\), got 1 column"):
        read_conll(bad)
    wrong = tmp_path / "c.conll"
    wrong.write_text("EU NNP I-NP ORG\n")
    with pytest.raises(DataError, match=r"c.conll:1: 'ORG' is not a tag"):
        read_conll(wrong)


def test_a_document_start_ends_a_sentence_and_tags_are_read_composed(tmp_path):
    """A ``-DOCSTART-`` with no blank line before it merged the sentences of two documents ("John" and
    "Smith" one PER); in the token column of a file whose first column is an index, it was a word;
    a tag type written decomposed ("O" + U+0308 "RG") was another type than the composed "ÖRG"."""
    import unicodedata

    (tmp_path / "d.conll").write_text("John I-PER\n-DOCSTART- O\nSmith I-PER\n\n")
    assert read_conll(tmp_path / "d.conll") == [TaggedSentence(["John"], ["I-PER"]), TaggedSentence(["Smith"], ["I-PER"])]
    (tmp_path / "i.conll").write_text("1\t-DOCSTART-\tO\n\n1\tEU\tB-ORG\n2\trejects\tO\n\n")
    assert read_conll(tmp_path / "i.conll", token_column=1) == [TaggedSentence(["EU", "rejects"], ["B-ORG", "O"])]
    (tmp_path / "n.conll").write_text(f"Bayer {unicodedata.normalize('NFD', 'B-ÖRG')}\nAG I-ÖRG\n", encoding="utf-8")
    assert read_conll(tmp_path / "n.conll")[0].tags == ["B-ÖRG", "I-ÖRG"]
    # a tag ending in (or with a type starting with) an invisible character is the same tag, not another type
    (tmp_path / "z.conll").write_text("John B-PER\u200b\nSmith I-PER\nin O\ufeff\nParis B-\u200eLOC\n", encoding="utf-8")
    assert read_conll(tmp_path / "z.conll")[0].tags == ["B-PER", "I-PER", "O", "B-LOC"]


def test_a_lowercased_document_start_is_a_separator_not_a_sentence(tmp_path):
    """A copy of CoNLL-2003 whose tokens were lowercased for an uncased model (``awk '{$1 = tolower($1)} 1'``)
    writes ``-docstart- -X- -X- O``: it was read as a one-word sentence of the word "-docstart-" (946 of
    them in eng.train), and lines of it were not recognised by ``rnnkit tag`` as a column file's."""
    from rnnkit.data.conll import looks_like_column_lines

    lines = ["-docstart- -X- -X- O", "", "eu NNP B-NP B-ORG", "rejects VBZ B-VP O", "", "-docstart- -X- -X- O", "peter NNP B-NP B-PER", ""]
    (tmp_path / "l.conll").write_text("\n".join(lines) + "\n")
    assert read_conll(tmp_path / "l.conll", scheme="iob2") == [TaggedSentence(["eu", "rejects"], ["B-ORG", "O"]), TaggedSentence(["peter"], ["B-PER"])]
    assert looks_like_column_lines(["-docstart-", "", "-docstart-", "eu NNP B-NP B-ORG"])


def test_a_training_file_without_entity_tags_is_refused(tmp_path):
    """A file of O tags only (a POS column swapped for O) trained a one-tag model whose entity F1 is
    0 whatever it answers."""
    (tmp_path / "o.conll").write_text("EU O\nrejects O\n\nPeter O\n")
    with pytest.raises(DataError, match=r"o.conll: no entity tags, every token is O; .* is --tag-column the right column\?"):
        TaggingTask.prepare(TaggingDataConfig(train=[str(tmp_path / "o.conll")], scheme="iob2"))


@pytest.mark.skipif(not (SHARED / "conll2003" / "eng.train").exists(), reason="shared CoNLL-2003 data absent")
def test_iobes_tags_in_a_file_read_as_iob_are_refused_naming_the_line(tmp_path):
    """An IOBES file under the default --scheme iob1 would keep "John/B-PER Smith/E-PER" as B-PER then
    a stray E-PER: no two-word entity could ever be learned. Its first E-/S- tag is an error."""
    path = tmp_path / "iobes.conll"
    path.write_text("-DOCSTART- O\n\nJohn B-PER\nSmith E-PER\nsaw O\nMary S-PER\n\n")
    for scheme in ("iob1", "iob2"):
        with pytest.raises(DataError, match=rf"^{path}:4: 'E-PER' is an IOBES tag, but the file is read as {scheme.upper()} \(--scheme {scheme}\); is it --scheme iobes\?$"):
            TaggingTask.prepare(TaggingDataConfig(train=[str(path)], scheme=scheme))
    task, _ = TaggingTask.prepare(TaggingDataConfig(train=[str(path)], scheme="iobes", train_scheme="iob2"))
    assert task.splits["train"][0].tags == ["B-PER", "I-PER", "O", "B-PER"]


def test_eval_of_a_file_in_another_scheme_says_to_convert_it_not_an_option_eval_refuses(tmp_path):
    """rnnkit eval on a tagger run asked "is it --scheme iob1?", and rnnkit eval takes no --scheme
    (the scheme is the run's): a dead end. Under a run's own scheme the error says to convert the file."""
    path = tmp_path / "iob1.conll"
    path.write_text("EU I-ORG\nrejects O\n\nJohn B-PER\nSmith E-PER\n\n")
    with pytest.raises(DataError, match=r"is it --scheme iob1\?$"):
        read_conll(path, scheme="iob2")
    with pytest.raises(DataError, match=r"'I-ORG' after 'O' is not IOB2 .*; this run reads IOB2 files \(it was trained with --scheme iob2\): convert"):
        read_conll(path, scheme="iob2", scheme_fixed=True)
    with pytest.raises(DataError, match=r"'E-PER' is an IOBES tag.*; this run reads IOB1 files") as error:
        TaggingTask.read_file(TaggingDataConfig(scheme="iob1"), str(path), scheme_fixed=True)  # as a tagger run's eval reads
    assert "--scheme iobes?" not in str(error.value)


def test_reads_the_real_conll_files():
    counts = {name: read_conll(SHARED / "conll2003" / name) for name in ("eng.train", "eng.testa", "eng.testb")}
    assert [len(s) for s in counts.values()] == [14041, 3250, 3453]
    assert sum(len(s.tokens) for s in counts["eng.train"]) == 203621
    spans = [e for s in counts["eng.testb"] for e in entities(convert(s.tags, "iob1", "iob2"))]
    assert {kind: sum(k == kind for k, _, _ in spans) for kind in ("LOC", "MISC", "ORG", "PER")} == {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617}


TEDDY = [
    TaggedSentence("Teddy Roosevelt was a great President .".split(), ["B-PER", "I-PER", "O", "O", "O", "O", "O"]),
    TaggedSentence("Teddy bears are on sale !".split(), ["O", "O", "O", "O", "O", "O"]),
]


def teddy_task(tmp_path) -> TaggingTask:
    path = tmp_path / "teddy.conll"
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(s.tokens, s.tags)) for s in TEDDY) + "\n")
    return TaggingTask.prepare(TaggingDataConfig(train=[str(path)], scheme="iob2", train_scheme="iob2"))[0]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-direction", "bidirectional"])
def test_only_a_bidirectional_tagger_reads_the_words_after_teddy(tmp_path, bidirectional):
    task = teddy_task(tmp_path)
    torch.manual_seed(0)
    model = build_model("tagger", task.model_config({"bidirectional": bidirectional, "hidden_size": 8, "crf": False, "dropout": 0.0}))
    model.eval()
    emissions = model(task.collate(TEDDY)).logits  # (T, 2, K): both sentences in one batch
    teddy_1, teddy_2 = emissions[0, 0].softmax(-1), emissions[0, 1].softmax(-1)
    if bidirectional:
        assert (teddy_1 - teddy_2).abs().max() > 1e-4  # "Roosevelt" vs "bears" changes the tag of "Teddy"
    else:
        assert_equal_up_to_rounding(teddy_1, teddy_2, reduction=8 * 4)  # only "Teddy" itself has been read


def synthetic_conll(path: Path, n: int = 60, seed: int = 0) -> str:
    import random

    rng = random.Random(seed)
    people, places = ["Anna Smith", "Bob Jones", "Carla Diaz"], ["Paris", "New York", "Tokyo"]
    lines = []
    for _ in range(n):
        person, place = rng.choice(people).split(), rng.choice(places).split()
        words = [*person, "visited", *place, "today", "."]
        tags = ["B-PER"] + ["I-PER"] * (len(person) - 1) + ["O"] + ["B-LOC"] + ["I-LOC"] * (len(place) - 1) + ["O", "O"]
        lines.append("\n".join(f"{w} X X {t}" for w, t in zip(words, tags)))
    path.write_text("\n\n".join(lines) + "\n")
    return str(path)


def test_unk_replacement_is_the_same_when_training_resumes_mid_epoch(tmp_path):
    task, _ = TaggingTask.prepare(TaggingDataConfig(train=[synthetic_conll(tmp_path / "train.conll")], batch_size=4, singleton_unk=0.5))
    task.singletons = set(task.words.tokens[3:])  # every word may be replaced, so that draws show
    whole_epoch = [batch.words for batch in task.train_batches(epoch=2, start=0)]
    resumed = [batch.words for batch in task.train_batches(epoch=2, start=5)]
    assert len(resumed) == len(whole_epoch) - 5
    assert all(torch.equal(a, b) for a, b in zip(resumed, whole_epoch[5:]))
    unk = torch.cat([w.flatten() for w in whole_epoch]) == task.words.unk_id
    assert 0.3 < unk.float().mean() < 0.6  # about half of the real words (padding is id 0)
    other_epoch = [batch.words for batch in task.train_batches(epoch=3, start=0)]
    assert not all(torch.equal(a, b) for a, b in zip(other_epoch, whole_epoch))


@pytest.mark.parametrize("crf", [True, False], ids=["crf", "softmax"])
def test_tagger_overfits_a_small_slice(tmp_path, crf):
    from rnnkit.training import RunDir, Trainer, TrainingConfig

    data = synthetic_conll(tmp_path / "train.conll")
    task, _ = TaggingTask.prepare(TaggingDataConfig(train=[data], valid=data, scheme="iob2", singleton_unk=0.0))
    torch.manual_seed(0)
    model = build_model("tagger", task.model_config({"hidden_size": 16, "word_embedding_size": 16, "crf": crf, "dropout": 0.0}))
    summary = Trainer(task, model, TrainingConfig(epochs=8, lr=1e-2, progress=False), RunDir(tmp_path / "run")).fit()
    assert summary["best_valid_criterion"] < 0.01  # entity F1 above 0.99


def test_tagger_end_to_end_from_the_command_line(tmp_path, capsys):
    data = synthetic_conll(tmp_path / "train.conll")
    run = tmp_path / "run"
    code = main(["train", "tagger", data, "--valid", data, "--test", data, "--scheme", "iob2", "--run", str(run),
                 "--epochs", "6", "--lr", "0.01", "--hidden-size", "16", "--word-embedding-size", "16", "--no-progress"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "entity F1" in err
    code = main(["tag", str(run), "Carla Diaz visited Tokyo today."])
    out, _ = capsys.readouterr()
    assert code == 0 and out.strip() == "[Carla Diaz](PER) visited [Tokyo](LOC) today ."
    main(["tag", str(run), "--json", "Bob Jones visited New York today."])
    result = json.loads(capsys.readouterr()[0])
    assert [(e["text"], e["type"]) for e in result["entities"]] == [("Bob Jones", "PER"), ("New York", "LOC")]
    code = main(["eval", str(run), data, "--json"])
    result = json.loads(capsys.readouterr()[0])
    assert code == 0 and result["f1"] > 0.99 and set(result["per_type"]) == {"PER", "LOC"}
    main(["eval", str(run), data])  # a line overall, then a table per entity type
    lines = capsys.readouterr()[0].splitlines()
    assert "entity F1" in lines[0] and lines[1].startswith("| type |") and [line.split(" | ")[0] for line in lines[3:]] == ["| LOC", "| PER"]


def all_paths_scores(crf: CRF, emissions: torch.Tensor) -> tuple[list[tuple[int, ...]], torch.Tensor]:
    """Every tag path of one sentence (T, 1, K) and its score under ``crf``: (paths, (K^T,))."""
    T, _, K = emissions.shape
    paths = list(itertools.product(range(K), repeat=T))
    return paths, torch.stack([crf.score(emissions, torch.tensor(p)[:, None])[0] for p in paths])


@pytest.mark.parametrize("seed", range(3))
def test_an_ensemble_of_crf_taggers_is_the_normalised_product_of_their_distributions(seed):
    from rnnkit.models.tagger import best_tags, product_of_experts, tag_loss

    K, T, M = 3, 4, 3
    torch.manual_seed(seed)
    members = [(type("Member", (), {"crf": random_crf(K, seed * 10 + m)})(), torch.randn(T, 1, K, dtype=torch.float64)) for m in range(M)]
    log_p = []  # log P_m(y | x) of every path, by brute force
    for member, emissions in members:
        paths, scores = all_paths_scores(member.crf, emissions)
        log_p.append(scores - torch.logsumexp(scores, 0))
    product = torch.stack(log_p).mean(0)  # (K^T,): log of the geometric mean, unnormalised
    normalised = product - torch.logsumexp(product, 0)
    crf, emissions = product_of_experts(members)
    lengths = torch.tensor([T])
    assert best_tags(crf, emissions, lengths)[0] == list(paths[int(product.argmax())])
    for i in (0, 7, len(paths) - 1):
        nll = tag_loss(crf, emissions, torch.tensor(paths[i])[:, None], lengths)
        assert abs(nll.item() + normalised[i].item()) < 1e-10


def test_an_ensemble_of_softmax_taggers_multiplies_each_words_distributions_and_one_member_is_the_model():
    from rnnkit.models.tagger import best_tags, product_of_experts, tag_loss

    softmax = type("Member", (), {"crf": None})()
    e1, e2 = torch.randn(5, 2, 4, dtype=torch.float64), torch.randn(5, 2, 4, dtype=torch.float64)
    crf, emissions = product_of_experts([(softmax, e1), (softmax, e2)])
    expected = (e1.softmax(-1) * e2.softmax(-1)).sqrt()
    assert crf is None and torch.allclose(emissions.softmax(-1), expected / expected.sum(-1, keepdim=True))
    tags, lengths = torch.randint(4, (5, 2)), torch.tensor([5, 3])
    tags[3:, 1] = -100
    crf, alone = product_of_experts([(softmax, e1)])
    assert torch.allclose(tag_loss(crf, alone, tags, lengths), tag_loss(None, e1, tags, lengths))
    assert best_tags(crf, alone, lengths) == best_tags(None, e1, lengths)
    with pytest.raises(ValueError, match="all of them with a CRF or all without"):
        product_of_experts([(softmax, e1), (type("Member", (), {"crf": random_crf(4)})(), e2)])


def test_one_evaluation_pass_gives_the_loss_of_the_training_batches_and_the_tags_of_predict(tmp_path):
    data = synthetic_conll(tmp_path / "train.conll", n=23)
    task, _ = TaggingTask.prepare(TaggingDataConfig(train=[data], scheme="iob2", eval_batch_size=4))
    torch.manual_seed(0)
    model = build_model("tagger", task.model_config({"hidden_size": 8, "word_embedding_size": 8})).double()
    sentences = task.splits["train"]
    result = task.evaluate_examples(model, sentences, "cpu")
    total, count = task.summed_loss(model, task.batches_of(sentences, False), "cpu")  # batched another way
    assert result["count"] == count and abs(result["loss"] - total / count) < 1e-9 * max(1.0, abs(result["loss"]))
    one_by_one = [task.predict(model, [s], "cpu")[0] for s in sentences]
    assert task.predict(model, sentences, "cpu") == one_by_one  # chunks sorted by length, answers in order


def test_tagger_runs_combine_with_ensemble_and_other_kinds_are_refused(tmp_path, capsys):
    data = synthetic_conll(tmp_path / "train.conll")
    runs = []
    for seed in (0, 1):
        runs.append(str(tmp_path / f"run{seed}"))
        code = main(["train", "tagger", data, "--valid", data, "--scheme", "iob2", "--run", runs[-1], "--seed", str(seed),
                     "--epochs", "4", "--lr", "0.01", "--hidden-size", "8", "--word-embedding-size", "8", "--no-progress"])  # fmt: skip
        assert code == 0
    capsys.readouterr()
    assert main(["eval", runs[0], data, "--ensemble", runs[1], "--json"]) == 0
    together = json.loads(capsys.readouterr()[0])
    assert together["ensemble"] == 2 and 0 <= together["f1"] <= 1 and together["count"] > 0
    assert main(["tag", runs[0], "--ensemble", runs[1], "--json", "Carla Diaz visited Tokyo today."]) == 0
    assert json.loads(capsys.readouterr()[0])["tokens"][:2] == ["Carla", "Diaz"]
    other = tmp_path / "other.conll"  # another tag set: its run cannot join
    other.write_text(Path(data).read_text().replace("PER", "PERSON"))
    assert main(["train", "tagger", str(other), "--scheme", "iob2", "--run", str(tmp_path / "other"), "--epochs", "1",
                 "--hidden-size", "8", "--word-embedding-size", "8", "--no-progress"]) == 0  # fmt: skip
    assert main(["train", "tagger", data, "--scheme", "iob2", "--run", str(tmp_path / "softmax"), "--epochs", "1", "--no-crf",
                 "--hidden-size", "8", "--word-embedding-size", "8", "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["eval", runs[0], data, "--ensemble", runs[1]]) == 0
    assert "(ensemble of 2 runs)" in capsys.readouterr()[0]
    for other, reason in [("other", "PERSON"), ("softmax", "no CRF")]:  # refused before any text is read, naming the run
        for verb in (["eval", runs[0], data], ["tag", runs[0], ""]):
            assert main([*verb, "--ensemble", runs[1], "--ensemble", str(tmp_path / other)]) == 2
            err = capsys.readouterr()[1].strip()
            assert f"--ensemble {tmp_path / other} cannot join {runs[0]}" in err and reason in err and len(err.splitlines()) == 1
    broken = tmp_path / "broken"  # a run directory whose config.json lost its sections
    shutil.copytree(runs[1], broken)
    (broken / "config.json").write_text('{"task": "tagger"}')
    assert main(["eval", runs[0], data, "--ensemble", str(broken)]) == 2
    err = capsys.readouterr()[1].strip()
    assert "config.json: damaged (no 'model', 'data' section)" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("scheme", ["iob2", "iobes"])
@pytest.mark.parametrize("with_crf", [True, False], ids=["crf", "softmax"])
def test_decoding_chooses_the_best_path_the_tag_scheme_allows(scheme, with_crf):
    """With the scheme's rules, Viterbi returns exactly the best-scoring path among those the rules
    allow (checked against every path of a small tag set), so no decoded I-X or E-X dangles without
    its entity ("Teddy/I-PER" with no entity was printed before); without a CRF, the best allowed path
    of the words' log-probabilities. Emissions favour invalid paths, so the rules matter."""
    from rnnkit.data.conll import allowed_transitions, follows
    from rnnkit.models.tagger import best_tags

    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"] + (["E-PER", "S-PER", "E-LOC", "S-LOC"] if scheme == "iobes" else [])
    K, T = len(tags), 4
    allowed = allowed_transitions(tags, scheme)
    torch.manual_seed(0)
    emissions = torch.randn(T, 3, K, dtype=torch.float64) * 3
    emissions[0, :, tags.index("I-PER")] += 20  # an entity's inside as the first word: never valid in these schemes
    crf = CRF(K).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    lengths = torch.tensor([4, 3, 1])
    got = best_tags(crf if with_crf else None, emissions, lengths, allowed)
    scores = emissions if with_crf else emissions.log_softmax(-1)
    for b, n in enumerate(lengths.tolist()):
        def valid(path):
            return all(follows(p, q, scheme) for p, q in zip(["O", *[tags[k] for k in path]], [*[tags[k] for k in path], None]))

        def score(path):
            total = sum(scores[t, b, k].item() for t, k in enumerate(path))
            if with_crf:
                total += crf.start[path[0]].item() + crf.end[path[-1]].item() + sum(crf.transitions[i, j].item() for i, j in zip(path, path[1:]))
            return total

        best = max((path for path in itertools.product(range(K), repeat=n) if valid(path)), key=score)
        assert got[b] == list(best), (b, [tags[k] for k in got[b]], [tags[k] for k in best])
    unconstrained = best_tags(crf if with_crf else None, emissions, lengths)
    assert tags[unconstrained[0][0]] == "I-PER"  # what the rules forbid is what the scores preferred


def test_inspect_reads_a_taggers_text_as_tag_does(tmp_path):
    """``inspect`` cut a tagger's text by the word rule ("U", ".", "S", "."), ``tag`` by the training
    file's words: the predictions it showed were for other words than the ones tagged."""
    from rnnkit.runs import start

    conll = tmp_path / "t.conll"
    conll.write_text("the O\nU.S. B-LOC\nsaid O\n\n#NewYork B-LOC\nis O\nbig O\n\n" * 4)
    start("tagger", {"train": [str(conll)], "scheme": "iob2", "hidden_size": 4, "word_embedding_size": 4, "char_embedding_size": 4,
                     "char_hidden_size": 2, "max_steps": 1, "progress": False}, tmp_path / "run")  # fmt: skip
    from rnnkit.runs import open_run

    task, model, _, device = open_run(tmp_path / "run", device="cpu")
    text = "the U.S. said #NewYork is big (really)"
    tokens, _ = task.inspect_forward(model, text, device)
    assert tokens == task.tag_text(model, text, device)["tokens"] == ["the", "U.S.", "said", "#NewYork", "is", "big", "(", "really", ")"]


def test_typed_words_peel_punctuation_beyond_ascii_and_keep_a_letters_marks(tmp_path):
    """A Treebank-vocabulary tagger kept "“Germany”", "London…" and "Germany—England" as one unknown
    word each (the entities missed); any tagger peeled a combining mark off a known word as punctuation."""
    from rnnkit.runs import open_run, start

    for name, text in (("treebank", "Germany B-LOC\ndid O\nn't O\ngo O\nLondon B-LOC\nEngland B-LOC\n\n"), ("plain", "Germany B-LOC\nLondon B-LOC\nZoë B-PER\n\n")):
        conll = tmp_path / f"{name}.conll"
        conll.write_text(text * 3)
        start("tagger", {"train": [str(conll)], "scheme": "iob2", "hidden_size": 4, "word_embedding_size": 4, "char_embedding_size": 4,
                         "char_hidden_size": 2, "max_steps": 1, "progress": False}, tmp_path / name)  # fmt: skip
    treebank, _, _, _ = open_run(tmp_path / "treebank", device="cpu")
    assert treebank.typed_words("“Germany” beat Germany—England in London…") == \
        ["“", "Germany", "”", "beat", "Germany", "—", "England", "in", "London", "…"]
    assert treebank.typed_words("It didn't rain at 3.5% in the U.S.") [:3] == ["It", "did", "n't"]
    plain, _, _, _ = open_run(tmp_path / "plain", device="cpu")
    assert plain.typed_words("Zo\u00eb\u0308 met London.")[:1] == ["Zo\u00eb\u0308"]  # the mark is the letter's


def test_one_long_word_beside_long_sentences_never_pads_a_chunk_past_its_bound(tmp_path, monkeypatch):
    """Characters are padded to a chunk's longest sentence times its longest word: 64 texts to serve's
    /api/tag, one of 2,000 letters beside sentences of 1,000 words, asked for a 13 GB tensor. Chunks
    now stop at CHUNK_CELLS (bar a sentence alone), and answer as one sentence at a time does."""
    from rnnkit.tasks import tagging

    data = synthetic_conll(tmp_path / "train.conll", n=12)
    task, _ = TaggingTask.prepare(TaggingDataConfig(train=[data], scheme="iob2"))
    torch.manual_seed(0)
    model = build_model("tagger", task.model_config({"hidden_size": 8, "word_embedding_size": 8})).double()
    sentences = [TaggedSentence(["a"] * 40, ["O"] * 40) for _ in range(6)] + [TaggedSentence(["x" * 300], ["O"])]
    monkeypatch.setattr(tagging, "CHUNK_CELLS", 4000)
    shapes = [tuple(batch.chars.shape) for _, batch, _, _ in task.scored_chunks(model, sentences, "cpu")]
    assert all(t * b * length <= 4000 or b == 1 for t, b, length in shapes) and sum(b for _, b, _ in shapes) == len(sentences)
    assert task.predict(model, sentences, "cpu") == [task.predict(model, [s], "cpu")[0] for s in sentences]


def test_a_column_file_whose_lines_end_in_cr_cr_lf_is_refused_not_read_one_token_a_sentence(tmp_path):
    """Python's csv module writes CR CR LF on Windows to a file opened without newline='': read as a
    lone CR and a CRLF, a blank line followed every token, so every token was a sentence of its own
    (and "Peter Blackburn" two entities), silently."""
    path = tmp_path / "win.conll"
    path.write_bytes(b"Peter\tB-PER\r\r\nBlackburn\tI-PER\r\r\nsaid\tO\r\r\n\r\r\nEU\tB-ORG\r\r\nrejects\tO\r\r\n")
    with pytest.raises(DataError, match=r"win\.conll: its lines end in CR CR LF .* tr -s '\\r' < .*win\.conll > fixed-win\.conll$"):
        read_conll(path)
    converted = path.read_bytes()
    path.write_bytes(converted.replace(b"\r\r\n", b"\r\n"))
    assert [s.tokens for s in read_conll(path)] == [["Peter", "Blackburn", "said"], ["EU", "rejects"]]
    # joined with cat to a file of plain line ends, the half that is CR CR LF was read one token a sentence
    joined = tmp_path / "joined.conll"
    joined.write_bytes(b"Anna\tB-PER\nsaid\tO\n\n" + converted)
    with pytest.raises(DataError, match=r"joined\.conll:4: this line and 5 more end in CR CR LF"):
        read_conll(joined)


def test_a_held_out_file_without_entities_is_refused_and_unseen_entity_types_are_said(tmp_path, capsys):
    """A validation file of only O tags scored entity F1 0 whatever the tagger answered, so "best"
    weights were a coin's; entity types training never shows were counted as missed, silently."""
    train, valid = tmp_path / "train.conll", tmp_path / "valid.conll"
    train.write_text("Peter B-PER\nsaw O\nAnna B-PER\n\n" * 5)
    valid.write_text("Peter O\nsaw O\n\n")
    with pytest.raises(DataError, match=r"valid.conll: no entity tags, every token is O; its entity F1 is 0 whatever"):
        TaggingTask.prepare(TaggingDataConfig(train=[str(train)], valid=str(valid), scheme="iob2"))
    valid.write_text("Peter B-PER\nsaw O\nBerlin B-LOC\n\n")
    TaggingTask.prepare(TaggingDataConfig(train=[str(train)], valid=str(valid), scheme="iob2"))
    assert "valid.conll has entity types the training data never shows (LOC)" in capsys.readouterr().err
    from rnnkit.cli import main  # and rnnkit eval of such a file says so too

    assert main(["train", "tagger", str(train), "--scheme", "iob2", "--max-steps", "1", "--hidden-size", "4", "--no-progress", "--run", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), str(valid)]) == 0
    assert "valid.conll has entity types the training data never shows (LOC)" in capsys.readouterr().err


def test_one_entity_type_written_in_two_cases_is_refused_not_learned_as_two(tmp_path):
    """B-PER and B-Per in one training file trained two entity types (S-PER and S-Per), each
    learned and scored from part of the entities, silently; the classifier refuses such labels."""
    train = tmp_path / "train.conll"
    train.write_text("Peter B-PER\nsaw O\nAnna B-Per\n\n" * 5)
    with pytest.raises(DataError, match=r"train.conll: the entity types 'PER' and 'Per' are one type written 2 ways"):
        TaggingTask.prepare(TaggingDataConfig(train=[str(train)], scheme="iob2"))
