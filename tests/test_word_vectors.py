"""Pre-trained word vectors (rnnkit.data.word_vectors, --word-vectors): text with and without a header,
word2vec binary, the lowercase fallback, the one-line errors, and the rows a classifier and a tagger
start from."""

from __future__ import annotations

import gzip
import json
import struct

import pytest

from rnnkit.cli import main
from rnnkit.data.word_vectors import read_word_vectors
from rnnkit.errors import DataError, UsageError
from rnnkit.models import build_model
from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask
from rnnkit.tasks.tagging import TaggingDataConfig, TaggingTask

VOCAB = ["<PAD>", "<UNK>", "<EOS>", "the", "paris", "film", "absent"]
VECTORS = {"the": [0.5, -1.0, 2.0], "Paris": [1.0, 2.0, 3.0], "film": [0.0, 0.25, -0.75], "other": [9.0, 9.0, 9.0]}


def write_text(path, header: bool = True, extra: str = "") -> str:
    lines = [f"{len(VECTORS)} 3"] if header else []
    lines += [f"{word} " + " ".join(map(str, values)) + " " for word, values in VECTORS.items()]  # fastText's trailing space
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return str(path)


def write_binary(path, entries: dict = VECTORS, cut: int = 0) -> str:
    data = f"{len(entries)} 3\n".encode()
    for word, values in entries.items():
        data += word.encode() + b" " + struct.pack("<3f", *values) + b"\n"
    path.write_bytes(data[: len(data) - cut] if cut else data)
    return str(path)


def check_rows(vectors) -> None:
    assert vectors.dimension == 3
    assert vectors.found.tolist() == [False, False, False, True, True, True, False]
    assert vectors.vectors[3].tolist() == VECTORS["the"]
    assert vectors.vectors[4].tolist() == VECTORS["Paris"]  # by lowercase
    assert vectors.vectors[6].tolist() == [0.0, 0.0, 0.0]  # a word the file lacks
    assert vectors.by_fallback == 1
    assert vectors.record(3) == {"file": vectors.path, "dimension": 3, "found": 3, "words": 4, "share": 0.75, "by_lowercase": 1}


@pytest.mark.parametrize("header", [True, False])
def test_text_format_with_and_without_header(tmp_path, header):
    check_rows(read_word_vectors(write_text(tmp_path / "v.vec", header), VOCAB))


def test_word2vec_binary_and_gzip(tmp_path):
    check_rows(read_word_vectors(write_binary(tmp_path / "v.bin"), VOCAB))
    check_rows(read_word_vectors(write_binary(tmp_path / "v.w2v"), VOCAB))  # recognised by its bytes, not its name
    with gzip.open(tmp_path / "v.vec.gz", "wt") as handle:
        handle.write(open(write_text(tmp_path / "plain.vec")).read())
    check_rows(read_word_vectors(tmp_path / "v.vec.gz", VOCAB))


def test_an_exact_match_wins_over_the_lowercase_fallback(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("Film 1 1 1\nfilm 2 2 2\nFILM 3 3 3\nThe 4 4 4\nTHE 5 5 5\n")
    vectors = read_word_vectors(path, VOCAB)
    assert vectors.vectors[5].tolist() == [2, 2, 2]  # the exact "film", wherever it stands
    assert vectors.vectors[3].tolist() == [4, 4, 4]  # the first of the fallbacks
    path.write_text("film 1 1 1\nfilm 2 2 2\n")  # a word twice (GloVe 840B has a few): its first vector, as gensim reads it
    assert read_word_vectors(path, VOCAB).vectors[5].tolist() == [1, 1, 1]


@pytest.mark.parametrize(
    "text, message",
    [
        ("the 1 2 3\nfilm 1 2\n", "v.txt:2: expected a word and 3 values, found 2 values"),
        ("2 3\nthe 1 2 3\nfilm 1 2 3 4\n", "v.txt:3: expected a word and 3 values, found 4 values"),
        ("the 1 2 x\n", "v.txt:1: 'x' is not a number"),
        ("the 1 nan 3\n", "v.txt:1: a value is not finite"),
        ("the\n", "v.txt:1: expected 'word v1 ... vD', found one field"),
        ("", "v.txt: no word vectors in the file"),
        ("the 1e39 0 0\n", "v.txt:1: a value is not finite (nan or inf) or beyond float32's range"),  # float32 would hold inf
        ("1 0\nthe\n", "v.txt:1: the header 'COUNT DIMENSION' gives a dimension of 0"),
        ("\u00b2 3\nthe 1 2 3\n", "v.txt:2: expected a word and 1 values, found 3"),  # "²" is no header's number
        ("1 99999999999999999999999\nthe 1 2 3\n", "v.txt:1: the header 'COUNT DIMENSION' gives a dimension of 99999999999999999999999"),
        ("the 1 2 3\nfilm 1_0 2 3\n", "v.txt:2: '1_0' is not a number"),  # 10.0 to Python's float, not to the tools
        ("the 1 2 3\nfilm \u0661 2 3\n", "v.txt:2: '\u0661' is not a number"),  # an Arabic-Indic one, 1.0 to Python's float
    ],
)
def test_a_malformed_line_is_one_line_naming_file_and_line(tmp_path, text, message):
    path = tmp_path / "v.txt"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        read_word_vectors(path, VOCAB)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_binary_header_of_a_huge_dimension_is_one_line(tmp_path):
    """read(4 * 10**23 bytes): an OverflowError traceback."""
    path = tmp_path / "huge.bin"
    path.write_bytes(b"1 99999999999999999999999\ngood " + struct.pack("<3f", 1, 2, 3) + b"\x01\x02" * 10 + b"\n")
    with pytest.raises(DataError, match=r"huge.bin:1: the header 'COUNT DIMENSION' gives a dimension of 9+; vectors have 1 to"):
        read_word_vectors(path, VOCAB)


def test_binary_errors_and_a_missing_file(tmp_path):
    with pytest.raises(DataError, match="ends inside the vector of word 4 of 4"):
        read_word_vectors(write_binary(tmp_path / "cut.bin", cut=5), VOCAB)
    with pytest.raises(DataError, match="no such file"):
        read_word_vectors(tmp_path / "none.vec", VOCAB)


def test_a_header_whose_count_is_not_the_files_is_refused(tmp_path):
    """A word2vec header announcing fewer words than follow once stopped the reading there, silently
    (the later words never looked up); more than follow, in text, was accepted."""
    body = write_binary(tmp_path / "all.bin")
    lying = tmp_path / "lying.bin"
    lying.write_bytes(b"2 3\n" + open(body, "rb").read().split(b"\n", 1)[1])
    with pytest.raises(DataError, match="more entries follow the 2 words its header announces"):
        read_word_vectors(lying, VOCAB)
    for announced in (2, 9):
        path = tmp_path / f"lying{announced}.vec"
        path.write_text(f"{announced} 3\n" + open(write_text(tmp_path / "v.vec")).read().split("\n", 1)[1])
        with pytest.raises(DataError, match=f"holds 4 words, but its header announces {announced}"):
            read_word_vectors(path, VOCAB)
    check_rows(read_word_vectors(write_binary(tmp_path / "right.bin"), VOCAB))  # a last newline is no entry


def test_a_dimension_other_than_asked_is_refused(tmp_path):
    with pytest.raises(DataError, match="vectors of 3 values, but the embedding has 4"):
        read_word_vectors(write_text(tmp_path / "v.vec"), VOCAB, dimension=4)


def write_reviews(path) -> str:
    path.write_text("".join(f"{label}\t{text}\n" for label, text in [("1", "the film"), ("0", "Paris absent"), ("1", "the the film")] * 3))
    return str(path)


def test_the_classifier_and_the_tagger_start_from_the_rows_found(tmp_path, capsys):
    vectors = write_text(tmp_path / "v.vec")
    task, record = ClassificationTask.prepare(ClassificationDataConfig(train=[write_reviews(tmp_path / "r.tsv")], word_vectors=vectors))
    assert "3 of 4 words of the vocabulary found (75.0 %; 1 by lowercase)" in capsys.readouterr().err
    assert record["word_vectors"]["share"] == 0.75
    config = task.model_config({})
    assert config["embedding_size"] == 3  # the file sets the size
    model = build_model("classifier", config)
    task.initialise(model)
    weight = model.embedding.weight
    assert weight[task.vocab.ids["paris"]].tolist() == VECTORS["Paris"] and weight[task.vocab.ids["film"]].tolist() == VECTORS["film"]
    with pytest.raises(UsageError, match="--embedding-size 8: the word vectors of .* have 3 values"):
        task.model_config({"embedding_size": 8})

    conll = tmp_path / "t.conll"
    conll.write_text("Paris B-LOC\nfilm O\n1990 O\n\nthe O\n")
    (tmp_path / "d.vec").write_text("2019 7 7 7\nthe 1 1 1\n")
    task, record = TaggingTask.prepare(TaggingDataConfig(train=[str(conll)], word_vectors=str(tmp_path / "d.vec")))
    assert record["word_vectors"]["found"] == 2  # "the", and "2019" as the tagger's "0000"
    model = build_model("tagger", task.model_config({}))
    task.initialise(model)
    assert model.features.words.weight[task.words.ids["0000"]].tolist() == [7, 7, 7]


def test_word_vectors_from_the_command_line(tmp_path, capsys):
    data, vectors, run = write_reviews(tmp_path / "r.tsv"), write_text(tmp_path / "v.vec"), tmp_path / "run"
    common = ["train", "classifier", data, "--max-steps", "1", "--hidden-size", "4", "--engine", "reference", "--no-progress", "--word-vectors", vectors]
    assert main([*common, "--run", str(run)]) == 0
    assert "75.0 %" in capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["split"]["word_vectors"]["found"] == 3 and config["model"]["embedding_size"] == 3
    assert config["data"]["word_vectors"] == vectors
    assert main([*common, "--run", str(tmp_path / "bad"), "--embedding-size", "5"]) == 2
    err = capsys.readouterr().err
    assert "--embedding-size 5: the word vectors of" in err and err.count("error") == 1
    assert not (tmp_path / "bad").exists()
    # a character's row would take the vector of the word "a": refused, as --lm-features is
    assert main([*common, "--run", str(tmp_path / "bad"), "--level", "char"]) == 2
    assert "--word-vectors gives features of words: it needs --level word or whitespace, not char" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    (tmp_path / "bad.vec").write_text("the 1 2 3\nfilm 1 2\n")
    (tmp_path / "t.conll").write_text("the O\nParis B-LOC\n")
    assert main(["train", "tagger", str(tmp_path / "t.conll"), "--run", str(tmp_path / "tag"), "--word-vectors", str(tmp_path / "bad.vec")]) == 2
    assert "bad.vec:2: expected a word and 3 values, found 2 values" in capsys.readouterr().err
    assert not (tmp_path / "tag").exists()


def test_the_format_is_told_by_the_bytes_not_the_name(tmp_path):
    """word2vec writes text to ``vectors.bin`` with ``-binary 0``: read as text, whatever the name,
    and a binary file without ``.bin`` read as binary; a Latin-1 byte in a text file is the text
    layer's one-line error, never a reason to read the file as binary (garbage vectors)."""
    check_rows(read_word_vectors(write_text(tmp_path / "vectors.bin"), VOCAB))
    check_rows(read_word_vectors(write_binary(tmp_path / "vectors"), VOCAB))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(open(write_text(tmp_path / "v.txt"), "rb").read() + b"caf\xe9 1 2 3\n")
    with pytest.raises(DataError, match=r"latin1.txt:6: not UTF-8 text \(byte 0xe9 at column 4\)"):
        read_word_vectors(latin1, VOCAB)


def test_text_files_as_tools_write_them(tmp_path):
    """Tabs between the word and its values; GloVe 840B's words with spaces (the values are the last D
    fields); a gzip file whatever the case of its name, with any line end (the text layer's rules)."""
    tabs = tmp_path / "tabs.txt"
    tabs.write_text("".join(f"{w}\t" + " ".join(map(str, v)) + "\n" for w, v in VECTORS.items()))
    check_rows(read_word_vectors(tabs, VOCAB))
    spaces = tmp_path / "spaces.txt"
    spaces.write_text(open(write_text(tmp_path / "v.txt", header=False)).read() + ". . . 7 8 9\n")
    vectors = read_word_vectors(spaces, [*VOCAB, ". . ."])
    assert vectors.found.tolist()[-1] and vectors.vectors[-1].tolist() == [7.0, 8.0, 9.0]
    assert vectors.vectors[4].tolist() == VECTORS["Paris"]
    spaced_first = tmp_path / "first.txt"  # no header, and the first word holds spaces: the dimension from its numbers
    spaced_first.write_text("new york 1 2 3\n" + open(write_text(tmp_path / "v.txt", header=False)).read())
    vectors = read_word_vectors(spaced_first, [*VOCAB, "new york"])
    assert vectors.dimension == 3 and vectors.vectors[-1].tolist() == [1.0, 2.0, 3.0] and vectors.found.tolist()[-1]
    packed = tmp_path / "V.TXT.GZ"
    packed.write_bytes(gzip.compress(open(write_text(tmp_path / "v.txt"), "rb").read().replace(b"\n", b"\r")))
    check_rows(read_word_vectors(packed, VOCAB))


def test_a_file_with_none_of_the_vocabulary_is_refused(tmp_path):
    path = tmp_path / "other.txt"
    path.write_text("x 1 2 3\ny 4 5 6\n")
    with pytest.raises(DataError, match=r"other.txt: none of the vocabulary's 4 words is in it"):
        read_word_vectors(path, VOCAB)


def test_a_text_file_whose_header_lies_about_the_dimension_is_read_as_text_and_refused(tmp_path):
    """A header of dimension 6 over lines of 5 values was taken for word2vec binary: "the 12345678"
    became the float32 bytes of a vector, silently, or the message blamed the count of words."""
    path = tmp_path / "v.txt"
    path.write_text("2 2\nthe 12345678\nfilm 87654321\n")
    with pytest.raises(DataError, match=r"v.txt:2: expected a word and 2 values, found 1 values"):
        read_word_vectors(path, VOCAB)
    path.write_text("2 6\nthe 1 2 3 4 5\nfilm 1 2 3 4 5\n")
    with pytest.raises(DataError, match=r"v.txt:2: expected a word and 6 values, found 5 values"):
        read_word_vectors(path, VOCAB)


def test_a_gzip_file_cut_short_damaged_or_not_gzip_at_all_is_one_line_naming_it(tmp_path):
    """gzip's own errors reached the user: EOFError's traceback for a download cut short (of
    GoogleNews-vectors-negative300.bin.gz too), and "Not a gzipped file (b'w1')", naming no file,
    for a file a browser had unpacked but kept named .gz."""
    many = "".join(f"w{i} 0.1 0.2 0.3\n" for i in range(20000))
    packed = gzip.compress(many.encode())
    (tmp_path / "cut.txt.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=r"cut\.txt\.gz: it ends early: an unfinished download\?$"):
        read_word_vectors(tmp_path / "cut.txt.gz", VOCAB)
    (tmp_path / "bin.gz").write_bytes(gzip.compress(open(write_binary(tmp_path / "v.bin"), "rb").read())[:60])
    with pytest.raises(DataError, match=r"bin\.gz: it ends early"):
        read_word_vectors(tmp_path / "bin.gz", VOCAB)
    (tmp_path / "plain.vec.gz").write_text(many)
    with pytest.raises(DataError, match=r"plain\.vec\.gz: not gzip-compressed, though its name ends in \.gz; rename it without \.gz$"):
        read_word_vectors(tmp_path / "plain.vec.gz", VOCAB)
    damaged = bytearray(packed)
    damaged[-8] ^= 0xFF  # the CRC
    (tmp_path / "crc.gz").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=r"crc\.gz: damaged gzip data"):
        read_word_vectors(tmp_path / "crc.gz", VOCAB)


def test_a_case_keeping_vocabulary_takes_a_lowercase_files_vectors_for_its_capitalised_words(tmp_path):
    """The fallback ran one way only: a lowercase file's "paris" served a lowercase vocabulary, but a
    vocabulary that keeps case (--keep-case with GloVe 6B) left "Paris" random, against the help."""
    (tmp_path / "lower.vec").write_text("paris 1 2 3\nthe 0.5 -1 2\n")
    vectors = read_word_vectors(tmp_path / "lower.vec", ["<PAD>", "<UNK>", "<EOS>", "Paris", "paris", "The", "cat"])
    assert vectors.found.tolist() == [False, False, False, True, True, True, False] and vectors.by_fallback == 2
    assert vectors.vectors[3].tolist() == vectors.vectors[4].tolist() == [1.0, 2.0, 3.0]
    assert vectors.vectors[5].tolist() == [0.5, -1.0, 2.0]


def test_a_resume_from_a_checkpoint_reads_no_word_vectors_and_one_before_it_names_a_file_that_no_longer_fits(tmp_path, monkeypatch):
    """--resume read the --word-vectors file again though the checkpoint holds the weights: moved, the
    resume failed ("no such file"); replaced by vectors of another dimension, a ValueError traceback."""
    import shutil

    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    write_reviews(tmp_path / "r.tsv")
    write_text(tmp_path / "v.vec")
    start("classifier", {"train": ["r.tsv"], "word_vectors": "v.vec", "hidden_size": 4, "engine": "reference", "max_steps": 4,
                         "stop_at_step": 2, "progress": False}, "run")  # fmt: skip
    shutil.copytree("run", "fresh")
    for name in ("checkpoints", "last.safetensors", "best.safetensors", "training_state.pt", "summary.json"):  # as before its first checkpoint
        shutil.rmtree(f"fresh/{name}") if (tmp_path / "fresh" / name).is_dir() else (tmp_path / "fresh" / name).unlink()
    (tmp_path / "v.vec").rename(tmp_path / "elsewhere.vec")
    assert resume("run", {"stop_at_step": 3, "progress": False})[1]["steps"] == 3
    (tmp_path / "v.vec").write_text("the 1 2 3 4\nfilm 5 6 7 8\n")  # another file, of another dimension
    assert resume("run", {"progress": False})[1]["finished"]
    with pytest.raises(DataError, match=r"^fresh: has no checkpoint yet, so it starts again from --word-vectors v.vec, which no longer fits the model"):
        resume("fresh", {"progress": False})
    (tmp_path / "elsewhere.vec").replace(tmp_path / "v.vec")  # the file it started from: it starts from step 0 as start did
    assert resume("fresh", {"progress": False})[1]["finished"]


def test_a_fasttext_model_binary_is_named_as_one(tmp_path):
    """``--word-vectors cc.en.300.bin`` (fastText's whole model, not vectors) said "not UTF-8 text
    (byte 0xba at column 1)", as if the file's encoding were at fault."""
    model = tmp_path / "cc.en.300.bin"
    model.write_bytes(struct.pack("<ii", 793712314, 12) + bytes(3000))  # fastText's magic number and version
    with pytest.raises(DataError, match=r"cc\.en\.300\.bin: a fastText model \(\.bin\), not a word-vector file; give the vectors as text"):
        read_word_vectors(model, ["<PAD>", "<UNK>", "<EOS>", "the"])
