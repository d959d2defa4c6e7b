"""Property-based tests of every reader (hypothesis): for generated, real-looking files

* the file and its CRLF, lone-CR and byte-order-mark twins read identically (the same result, or the
  same error);
* the file mutated (bytes flipped, cut short, a column inserted, random unicode inserted, lines
  shuffled, dropped or doubled) is read, or refused with a ``DataError``: never another exception.

The starts of real files (CoNLL-2003, SST trees and fastText lines, PTB; skipped where
``../shared/data`` is absent) are mutated the same way. Each reader sees at least 2,000 inputs: ``EXAMPLES`` generated files, each read as 4 twins and 4
mutants. The examples are derandomized, so CI sees the same inputs every run (no flaky failures);
raise ``RNNKIT_PROPERTY_EXAMPLES`` to search further by hand.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rnnkit.data.conll import read_conll  # noqa: E402
from rnnkit.data.labeled import read_labeled  # noqa: E402
from rnnkit.data.music import read_chorales, read_midi  # noqa: E402
from rnnkit.data.parallel import read_parallel  # noqa: E402
from rnnkit.data.text import read_lines  # noqa: E402
from rnnkit.data import textio  # noqa: E402
from rnnkit.data.textio import DataError  # noqa: E402

EXAMPLES = int(os.environ.get("RNNKIT_PROPERTY_EXAMPLES", "260"))  # x 8 inputs = 2,080 per reader
TWINS, MUTANTS = 4, 4
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip

# -- real-looking content ------------------------------------------------------------------------------------
# words of letters, digits, punctuation and some non-ASCII, never a line break (twins are made by
# changing the line breaks, so a word must not hold one)
WORD = st.one_of(
    st.text(alphabet=st.sampled_from(list("abcXYZ019.,'-()é漢😀_")), min_size=1, max_size=6),
    st.sampled_from(["__label__pos", "label", "text", "-DOCSTART-", "\\/", "-LRB-"]),
)  # fmt: skip
TEXT = st.lists(WORD, min_size=1, max_size=5).map(" ".join)
TAG = st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-ORG", "S-MISC"])


@st.composite
def conll_files(draw) -> str:
    sep = draw(st.sampled_from(["\t", " ", "  "]))
    pos = draw(st.booleans())  # a part-of-speech column between token and tag
    lines = ["-DOCSTART- -X- O O", ""] if draw(st.booleans()) else []
    for sentence in draw(st.lists(st.lists(st.tuples(WORD, TAG), min_size=1, max_size=5), min_size=1, max_size=4)):
        for token, tag in sentence:
            token = token.replace(" ", "") or "x" if sep != "\t" else token
            lines.append(sep.join([token, "NN", tag] if pos else [token, tag]))
        lines.append("")
    return "\n".join(lines) + "\n"


@st.composite
def tsv_files(draw) -> str:
    header = [draw(st.sampled_from(["label\ttext", "text\tlabel", "Label\tSentence"]))] if draw(st.booleans()) else []
    rows = draw(st.lists(st.tuples(st.sampled_from(["1", "2", "5", "pos", "neg"]), TEXT), min_size=1, max_size=6))
    flip = header and header[0].startswith("text")
    return "\n".join(header + [f"{t}\t{label}" if flip else f"{label}\t{t}" for label, t in rows]) + "\n"


@st.composite
def fasttext_files(draw) -> str:
    rows = draw(st.lists(st.tuples(st.sampled_from(["1", "pos", "neg", "a_b"]), TEXT), min_size=1, max_size=6))
    return "".join(f"__label__{label}{draw(st.sampled_from([' ', chr(9)]))}{t}\n" for label, t in rows)


@st.composite
def csv_files(draw) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(draw(st.sampled_from([["text", "label"], ["label", "text"], ["id", "text", "label"]])))
    multiline = st.lists(TEXT, min_size=1, max_size=2).map("\n".join)  # quoted fields may hold line breaks
    for text, label in draw(st.lists(st.tuples(multiline, st.sampled_from(["1", "2", "x,y", '"q"'])), min_size=1, max_size=5)):
        writer.writerow({2: [text, label], 3: ["7", text, label]}[3 if buffer.getvalue().startswith("id") else 2])
    return buffer.getvalue()


TREE = st.recursive(
    st.tuples(st.sampled_from("01234"), st.lists(WORD.map(lambda w: w.replace("(", "-LRB-").replace(")", "-RRB-")), min_size=1, max_size=2)).map(
        lambda t: f"({t[0]} {' '.join(t[1])})"
    ),
    lambda children: st.tuples(st.sampled_from("01234"), st.lists(children, min_size=1, max_size=3)).map(lambda t: f"({t[0]} {' '.join(t[1])})"),
    max_leaves=8,
)


@st.composite
def tree_files(draw) -> str:
    return "".join(tree + "\n" for tree in draw(st.lists(TREE, min_size=1, max_size=4)))


@st.composite
def chorale_files(draw) -> str:
    odd = st.sampled_from([60.5, 60.0, float("inf"), float("nan"), 10**30, True, None, "60", 200, -1, [60], {"p": 60}])
    pitch = st.one_of(st.integers(21, 108), st.integers(21, 108), st.integers(21, 108), odd)  # now and then, not a pitch
    sequence = st.lists(st.lists(pitch, max_size=4), min_size=1, max_size=5)
    splits = {name: draw(st.lists(sequence, min_size=1, max_size=3)) for name in ("train", "valid", "test") if name == "train" or draw(st.booleans())}
    return json.dumps(splits, indent=draw(st.sampled_from([None, 1])))


@st.composite
def parallel_files(draw) -> tuple[str, str]:
    pairs = draw(st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=5))
    return "".join(s + "\n" for s, _ in pairs), "".join(t + "\n" for _, t in pairs)


# -- twins and mutants ---------------------------------------------------------------------------------------
def twins(text: str) -> list[bytes]:
    """LF, CRLF, lone CR, and lone CR after a byte-order mark (the worst of both)."""
    data = text.encode("utf-8")
    return [data, data.replace(b"\n", b"\r\n"), data.replace(b"\n", b"\r"), b"\xef\xbb\xbf" + data.replace(b"\n", b"\r")]


MUTATIONS = ["flip", "truncate", "column", "unicode", "shuffle", "drop", "double"]
BINARY_MUTATIONS = ["flip", "truncate", "bytes"]
INSERTED = ["x", "New York", "__label__neg", "(", ")", "-DOCSTART-", "1.5", '"', ",", "\t", "B-"]


def mutant(rng: random.Random, data: bytes, binary: bool = False) -> bytes:
    """``data`` with one to three mutations of real files' kinds (for MIDI, the byte-level ones).
    Drawn from ``rng`` (seeded by hypothesis): far cheaper than a hypothesis draw per choice."""
    for kind in rng.choices(BINARY_MUTATIONS if binary else MUTATIONS, k=rng.randint(1, 3)):
        at = rng.randint(0, len(data))
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
        elif kind == "truncate":
            data = data[:at]
        elif kind == "bytes":
            data = data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
        elif kind == "unicode":  # any code point, surrogates included (not UTF-8 once encoded)
            text = "".join(chr(rng.choice([rng.randrange(0x80), rng.randrange(0x110000)])) for _ in range(rng.randint(1, 4)))
            data = data[:at] + text.encode("utf-8", "surrogatepass") + data[at:]
        else:  # line-level mutations
            lines = data.split(b"\n")
            i = rng.randrange(len(lines))
            if kind == "column":
                sep = b"\t" if b"\t" in lines[i] else b" "
                words = lines[i].split(sep)
                words.insert(rng.randint(0, len(words)), rng.choice(INSERTED).encode())
                lines[i] = sep.join(words)
            elif kind == "shuffle":
                rng.shuffle(lines)
            elif kind == "drop" and len(lines) > 1:
                del lines[i]
            elif kind == "double":
                lines.insert(i, lines[i])
            data = b"\n".join(lines)
    return data


def outcome(read, path: Path):
    """What ``read`` makes of the file: its result, or ("DataError", message); any other exception
    propagates, and fails the test."""
    try:
        return read(path)
    except DataError as error:
        message = str(error)
        assert "\n" not in message and message, f"not a one-line message: {message!r}"
        return ("DataError", message)


def check_twins_and_mutants(read, files: dict, path: Path, text: str, rng: random.Random) -> None:
    results = []
    for twin in twins(text):
        files[str(path)] = twin
        results.append(outcome(read, path))
    assert all(r == results[0] for r in results[1:]), f"LF / CRLF / CR / BOM+CR twins of {text!r} read differently: {results}"
    for _ in range(MUTANTS):
        files[str(path)] = mutant(rng, text.encode("utf-8"))
        outcome(read, path)


READERS = {
    "conll": (conll_files(), lambda p: read_conll(p)),
    "tsv": (tsv_files(), lambda p: read_labeled(p, "tsv")),
    "fasttext": (fasttext_files(), lambda p: read_labeled(p, "fasttext")),
    "auto": (st.one_of(tsv_files(), fasttext_files(), tree_files()), lambda p: read_labeled(p)),
    "ptb-trees": (tree_files(), lambda p: read_labeled(p, "ptb-trees", phrases=True)),
    "lines": (st.one_of(TEXT, tsv_files(), st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=30)).map(lambda t: t + "\n\n" + t),
              lambda p: read_lines(p, keep_blank=True)),
    "chorales-json": (chorale_files(), lambda p: read_chorales(p)),
}  # fmt: skip


class MemoryFiles(dict):
    """Files served from memory to the text readers (``textio`` reads every text file): the
    property is about decoding and parsing, and 20,000 writes to a busy disk cost more than both."""

    def __call__(self, source):
        return self[str(source)]


@pytest.fixture()
def memory_files(monkeypatch) -> MemoryFiles:
    files = MemoryFiles()
    monkeypatch.setattr(textio, "_read_bytes", files)
    return files


@pytest.mark.parametrize("reader", sorted(READERS))
def test_twins_read_alike_and_mutants_parse_or_raise_data_error(memory_files, reader):
    strategy, read = READERS[reader]
    path = Path("data.json" if reader == "chorales-json" else "data.txt")

    @SETTINGS
    @given(text=strategy, rng=st.randoms(use_true_random=False))
    def check(text, rng):
        check_twins_and_mutants(read, memory_files, path, text, rng)

    check()


def test_csv_twins_read_alike_and_mutants_parse_or_raise_data_error(memory_files):
    path = Path("data.csv")

    @SETTINGS
    @given(text=csv_files(), rng=st.randoms(use_true_random=False))
    def check(text, rng):
        check_twins_and_mutants(lambda p: read_labeled(p), memory_files, path, text, rng)

    check()


def test_parallel_twins_read_alike_and_mutants_parse_or_raise_data_error(memory_files):
    source, target = "a.src", "a.tgt"

    @SETTINGS
    @given(files=parallel_files(), rng=st.randoms(use_true_random=False))
    def check(files, rng):
        results = []
        for a, b in zip(twins(files[0]), reversed(twins(files[1]))):  # each side its own line ends
            memory_files[source], memory_files[target] = a, b
            results.append(outcome(lambda _: read_parallel(source, target), source))
        assert all(r == results[0] for r in results[1:]), results
        for _ in range(MUTANTS):
            memory_files[source], memory_files[target] = mutant(rng, files[0].encode()), mutant(rng, files[1].encode())
            outcome(lambda _: read_parallel(source, target), source)

    check()


def test_midi_mutants_parse_or_raise_data_error(tmp_path):
    pretty_midi = pytest.importorskip("pretty_midi")
    path = tmp_path / "piece.mid"
    notes = st.lists(st.tuples(st.integers(0, 127), st.integers(1, 127), st.floats(0, 4), st.floats(0.01, 2)), min_size=0, max_size=6)

    @SETTINGS
    @given(notes=notes, drums=st.booleans(), rng=st.randoms(use_true_random=False))
    def check(notes, drums, rng):
        midi = pretty_midi.PrettyMIDI()
        instrument = pretty_midi.Instrument(program=0, is_drum=drums)
        instrument.notes = [pretty_midi.Note(velocity, pitch, start, start + length) for pitch, velocity, start, length in notes]
        midi.instruments.append(instrument)
        buffer = io.BytesIO()
        midi.write(buffer)
        original = buffer.getvalue()
        path.write_bytes(original)
        result = outcome(read_midi, path)
        if drums or not any(21 <= pitch <= 108 for pitch, *_ in notes):  # no pitched notes on the piano: refused
            assert result[0] == "DataError", result
        elif result[0] == "DataError":  # pitched notes, none through a step's middle: the message says so
            assert "sounds through the middle of a step" in result[1], result
        for _ in range(TWINS + MUTANTS - 1):
            path.write_bytes(mutant(rng, original, binary=True))
            outcome(read_midi, path)

    check()


# -- mutants of real files (skipped where ../shared/data is absent) ----------------------------------------
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = {  # (file, lines taken from its start, reader)
    "conll": (SHARED / "conll2003" / "eng.testa", 60, lambda p: read_conll(p)),
    "sst-trees": (SHARED / "sst5" / "trees" / "dev.txt", 8, lambda p: read_labeled(p, phrases=True)),
    "sst-fasttext": (SHARED / "sst5" / "tabular" / "sst_dev.txt", 20, lambda p: read_labeled(p)),
    "ptb": (SHARED / "ptb" / "ptb.valid.txt", 20, lambda p: read_lines(p)),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_mutants_of_real_files_parse_or_raise_data_error(memory_files, name):
    source, count, read = REAL[name]
    if not source.exists():
        pytest.skip(f"{source} absent")
    with source.open("rb") as f:
        head = b"".join(f.readline() for _ in range(count))
    path = Path(source.name)

    results = set()
    for data in (head, head.replace(b"\n", b"\r"), b"\xef\xbb\xbf" + head.replace(b"\n", b"\r\n")):
        memory_files[str(path)] = data
        results.add(repr(outcome(read, path)))
    assert len(results) == 1, f"{name}: the LF / CR / BOM+CRLF twins read differently"

    @settings(SETTINGS, max_examples=max(EXAMPLES // 2, 1))
    @given(rng=st.randoms(use_true_random=False))
    def check(rng):
        for _ in range(MUTANTS):
            memory_files[str(path)] = mutant(rng, head)
            outcome(read, path)

    check()
