"""Every reader reads what the user meant, or refuses with a one-line ``file:line`` DataError:
line ends, byte-order marks, tab-separated columns, header rows, labels, pitches, MIDI files
(each test one kind of fault that users' real files showed; its own small input)."""

from __future__ import annotations

import json
import random
import re
import warnings
from pathlib import Path

import pytest

from rnnkit.cli import main
from rnnkit.data.conll import read_conll
from rnnkit.data.labeled import LabeledText, read_labeled
from rnnkit.data.music import midi_files, read_chorales, read_midi, read_midi_folder
from rnnkit.data.parallel import read_parallel
from rnnkit.data.text import read_lines
from rnnkit.data.textio import DataError
from rnnkit.tasks.classification import ClassificationDataConfig, ClassificationTask

CONLL = "-DOCSTART- -X- O O\n\nEU NNP I-NP B-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-NP B-PER\nBlackburn NNP I-NP I-PER\n"


def write(path: Path, text: str, end: str = "\n", bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.replace("\n", end).encode())
    return path


# -- line ends and byte-order marks: a file reads as its LF twin ------------------------------------------
@pytest.mark.parametrize("end", ["\r", "\r\n"])
def test_lone_cr_and_crlf_files_read_as_their_lf_twins(tmp_path, end):
    names = "anna\nemma\nolivia\n"
    labeled = "__label__pos a fine film\n__label__neg a dull film\n__label__pos witty\n"
    pairs = ("one\ntwo\n", "un\ndeux\n")
    for twin, e in (("lf", "\n"), ("other", end)):
        d = tmp_path / twin
        d.mkdir()
        write(d / "names.txt", names, e), write(d / "cls.txt", labeled, e), write(d / "eng.conll", CONLL, e)
        write(d / "a.src", pairs[0], e), write(d / "a.tgt", pairs[1], e)
    lf, other = tmp_path / "lf", tmp_path / "other"
    assert read_lines(other / "names.txt") == read_lines(lf / "names.txt") == ["anna", "emma", "olivia"]
    assert read_labeled(other / "cls.txt") == read_labeled(lf / "cls.txt")
    assert {x.label for x in read_labeled(other / "cls.txt")} == {"pos", "neg"}
    assert read_conll(other / "eng.conll") == read_conll(lf / "eng.conll")
    assert read_parallel(other / "a.src", other / "a.tgt") == [("one", "un"), ("two", "deux")]


def test_a_bom_before_docstart_is_not_a_sentence(tmp_path):
    with_bom = read_conll(write(tmp_path / "bom.conll", CONLL, bom=True))
    assert with_bom == read_conll(write(tmp_path / "plain.conll", CONLL))
    assert [s.tokens for s in with_bom] == [["EU", "rejects"], ["Peter", "Blackburn"]]
    labeled = read_labeled(write(tmp_path / "bom.tsv", "label\ttext\n1\tbad\n5\tgood\n", bom=True))
    assert labeled == [LabeledText("bad", "1"), LabeledText("good", "5")]  # the header is seen behind the BOM
    assert read_chorales(write(tmp_path / "bom.json", '{"train": [[[60]]]}', bom=True)) == {"train": [[[60]]]}


# -- column files ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, line, tab_line", [
    ("EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn\tI-PER\n", 1, 5),  # one tabbed line makes the file tab-separated
    ("EU\tB-ORG\nrejects\tO\n\nPeter B-PER\n", 4, 1),
])  # fmt: skip
def test_a_file_mixing_tabs_and_spaces_names_the_tab_that_decided(tmp_path, text, line, tab_line):
    """The error is at the first spaced line, and says which line's tab made the file split at tabs."""
    path = write(tmp_path / "mixed.conll", text)
    with pytest.raises(DataError, match=rf"mixed.conll:{line}: .*\(line {tab_line} has a tab, so every line is split at tabs only"):
        read_conll(path)


def test_a_stray_trailing_tab_makes_no_file_tab_separated(tmp_path):
    """One trailing tab (an editor's, a spreadsheet's empty cell) in a space-separated file split
    every line at tabs, and the file was refused at its first line."""
    path = write(tmp_path / "spaced.conll", "EU B-ORG\nrejects O\t\n\nPeter B-PER\nBlackburn I-PER\n")
    sentences = read_conll(path)
    assert [s.tokens for s in sentences] == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert [s.tags for s in sentences] == [["B-ORG", "O"], ["B-PER", "I-PER"]]


def test_tab_separated_columns_keep_tokens_with_spaces(tmp_path):
    path = write(tmp_path / "tabs.conll", "She\tO\nmoved to\tO\nNew York\tB-LOC\n\nSan Diego\tB-LOC\t\n")
    sentences = read_conll(path)
    assert [s.tokens for s in sentences] == [["She", "moved to", "New York"], ["San Diego"]]
    assert [s.tags for s in sentences] == [["O", "O", "B-LOC"], ["B-LOC"]]


def test_a_token_cut_in_two_by_white_space_is_refused_at_its_line(tmp_path):
    path = write(tmp_path / "spaces.conll", "She O\nmoved O\nNew York B-LOC\n")
    with pytest.raises(DataError, match=r"spaces.conll:3: 3 columns .* line 1 has 2"):
        read_conll(path)
    path = write(tmp_path / "mixed.conll", "She\tO\nmoved O\n")  # a tab file with a line without its tab
    with pytest.raises(DataError, match=r"mixed.conll:2: expected a token column"):
        read_conll(path)


def test_the_line_of_a_column_count_few_lines_share_is_blamed_with_its_odd_space(tmp_path):
    """A first line cut in two by a non-breaking space (New\u00a0York) was not blamed: the next line,
    a correct one, was, as "4 columns ..., but line 1 has 5"."""
    path = write(tmp_path / "f.conll", "New\u00a0York NNP I-NP I-LOC\nis VBZ I-VP O\nbig JJ I-NP O\n\nParis NNP I-NP I-LOC\nis VBZ I-VP O\n\n")
    with pytest.raises(DataError, match=r"^\S*f.conll:1: 5 columns split at white space .*, but line 2 has 4 \(as 3 other lines do\): "
                                        r"'New\\xa0York NNP I-NP I-LOC' \(it holds a non-breaking space, U\+00A0, which splits a token"):  # fmt: skip
        read_conll(path)
    path = write(tmp_path / "g.conll", "Paris NNP I-NP I-LOC\nis VBZ I-VP O\nNew\u202fYork NNP I-NP I-LOC\n")  # the odd line later: blamed as before
    with pytest.raises(DataError, match=r"g.conll:3: 5 columns .*, but line 1 has 4 \(as 1 other line does\).*narrow no-break space, U\+202F"):
        read_conll(path)


# -- labelled text ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header, row",
    [("label\ttext", "{label}\t{text}"), ("text\tlabel", "{text}\t{label}"), ("\tsentiment\treview", "{i}\t{label}\t{text}"),
     ("Label\tSentence", "{label}\t{text}")],
)  # fmt: skip
def test_a_tsv_header_row_is_never_a_class(tmp_path, header, row):
    examples = [("a fine film", "5"), ("a dull film", "1"), ("fine\tbut long", "3")]
    lines = [header] + [row.format(i=i, text=text, label=label) for i, (text, label) in enumerate(examples)]
    path = write(tmp_path / "train.tsv", "\n".join(lines) + "\n")
    assert read_labeled(path) == [LabeledText(text, label) for text, label in examples]
    task, record = ClassificationTask.prepare(ClassificationDataConfig(train=[str(path)], format="auto"))
    assert record["labels"] == ["1", "3", "5"] and record["examples"] == {"train": 3}


def test_headerless_tsv_and_label_syntax(tmp_path):
    assert read_labeled(write(tmp_path / "plain.tsv", "5\tthe label was good\n1\ttext\n")) == [
        LabeledText("the label was good", "5"), LabeledText("text", "1")]  # fmt: skip
    path = write(tmp_path / "multi.txt", "__label__pos __label__happy a fine film\n")
    with pytest.raises(DataError, match=r"multi.txt:1: several labels"):
        read_labeled(path)
    path = write(tmp_path / "ft.txt", "__label__pos a fine film\n__label__neg\ta dull film\n")
    task, _ = ClassificationTask.prepare(ClassificationDataConfig(train=[str(path)]))
    assert not [t for t in task.vocab.tokens if "label" in t or "pos" in t or "neg" in t]


def test_fasttext_labels_end_where_fasttext_ends_a_word_and_a_csv_column_named_twice_is_refused(tmp_path):
    """A vertical tab or form feed after the label (which fastText takes as a word's end) was glued
    into it: a class per text and its first word lost. A CSV header naming the text column twice was
    read from the first, unsaid."""
    path = write(tmp_path / "vt.txt", "__label__pos\vgreat film\n__label__neg\fawful movie\n__label__pos \t loved it\n")
    assert read_labeled(path) == [LabeledText("great film", "pos"), LabeledText("awful movie", "neg"), LabeledText("loved it", "pos")]
    with pytest.raises(DataError, match=r"twice.csv: the header names the column 'text' more than once"):
        read_labeled(write(tmp_path / "twice.csv", "text,text,label\na,b,pos\nc,d,neg\n"))
    with pytest.raises(DataError, match=r"cased.csv: the header names the column 'text' more than once"):
        read_labeled(write(tmp_path / "cased.csv", "Text,text,label\na,b,pos\nc,d,neg\n"))
    with pytest.raises(DataError, match=r"one.csv: the text column and the label column are one column, 'label'"):
        read_labeled(write(tmp_path / "one.csv", "label,text\npos,good\nneg,bad\n"), text_column="label")
    for header in ("label\ttext\tText", "label\ttext\tlabel"):  # a TSV header as well
        with pytest.raises(DataError, match=r"twice.tsv:1: the header names the column '(text|label)' more than once"):
            read_labeled(write(tmp_path / "twice.tsv", header + "\npos\tgood film\tx\nneg\tbad film\ty\n"))


def test_a_tsv_column_named_on_the_command_line_is_that_column_or_refused(tmp_path):
    """In a TSV file with a header, ``--text-column coment`` (a typo) read the 'sentence' column and
    ``--label-column strs`` the 'label' column, unsaid, where a CSV file refuses the same names; and
    ``--text-column label --label-column label`` was told to give the options it had given."""
    texts = write(tmp_path / "texts.tsv", "label\tsentence\tcomment\npos\tgood film\tnote A\nneg\tbad film\tnote B\n")
    with pytest.raises(DataError, match=r"texts.tsv:1: no column 'coment' \(columns: 'label', 'sentence', 'comment'\)"):
        read_labeled(texts, text_column="coment")
    assert [item.text for item in read_labeled(texts, text_column="comment")] == ["note A", "note B"]
    assert [item.text for item in read_labeled(texts)] == ["good film", "bad film"]  # none named: the common name
    stars = write(tmp_path / "stars.tsv", "text\tlabel\tstars\ngood film\tpos\t5\nbad film\tneg\t1\n")
    with pytest.raises(DataError, match=r"stars.tsv:1: no column 'strs'"):
        read_labeled(stars, label_column="strs")
    assert [item.label for item in read_labeled(stars, label_column="Stars")] == ["5", "1"]
    with pytest.raises(DataError, match=r"stars.tsv: the text column and the label column are one column, 'label'"):
        read_labeled(stars, text_column="label", label_column="label")


def test_a_fasttext_label_after_the_text_is_refused_not_trained_as_the_texts_classes(tmp_path):
    """"great film<TAB>__label__pos" read as label<TAB>text made each text a class and each label the
    text (a small file passed the check for a class per example); with a space, the message said
    nothing of fastText's order; comma-joined labels were shown garbled."""
    path = write(tmp_path / "after.txt", "great film\t__label__pos\nlovely\t__label__pos\nbad movie\t__label__neg\n")
    with pytest.raises(DataError, match=r"after.txt:1: the text is '__label__pos', a fastText label after the text"):
        read_labeled(path)
    with pytest.raises(DataError, match=r"fastText's label comes first"):
        read_labeled(write(tmp_path / "space.txt", "great film __label__pos\n"))
    with pytest.raises(DataError, match=r"several labels \(__label__pos, __label__happy\)"):
        read_labeled(write(tmp_path / "comma.txt", "__label__pos,__label__happy great film\n"))


def test_a_text_too_long_for_one_sequence_is_refused_by_eval_as_by_training(tmp_path, capsys):
    """``classify`` and training refused a text of over 100,000 tokens; ``eval`` scored it (and its memory grew with it)."""
    train = write(tmp_path / "train.tsv", "pos\tgood film\nneg\tbad film\n" * 4)
    run = tmp_path / "run"
    assert main(["train", "classifier", str(train), "--run", str(run), "--max-steps", "1", "--hidden-size", "4", "--no-progress"]) == 0
    capsys.readouterr()
    long = write(tmp_path / "long.tsv", "pos\tgood\npos\t" + "good " * 100_001 + "\n")
    assert main(["eval", str(run), str(long)]) == 2
    assert "long.tsv: a sequence of 100,001 steps, more than 100,000" in capsys.readouterr().err


def test_a_single_class_is_refused_before_a_run_exists(tmp_path, capsys):
    path = write(tmp_path / "one.txt", "__label__a good\r__label__a bad\r")
    run = tmp_path / "run"
    assert main(["train", "classifier", str(path), "--run", str(run), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "one.txt" in err and "two classes" in err and "Traceback" not in err
    assert not run.exists()


def test_csv_long_fields_and_broken_quotes(tmp_path):
    long = "ab " * 70_000  # over the csv module's default limit of 131,072 characters
    path = write(tmp_path / "big.csv", f'text,label\n"{long}",1\n"ok, fine",2\n')
    assert [x.label for x in read_labeled(path)] == ["1", "2"] and len(read_labeled(path)[0].text) == len(long.strip())
    path = write(tmp_path / "quote.csv", 'text,label\nfine,1\n"never closed,2\nmore,3\n')
    with pytest.raises(DataError, match=r"quote.csv:3: not valid CSV"):
        read_labeled(path)
    path = write(tmp_path / "cr.csv", 'text,label\n"two\nlines",1\nok,2\n', end="\r")
    assert read_labeled(path) == [LabeledText("two\nlines", "1"), LabeledText("ok", "2")]


def test_deeply_nested_trees_are_read_without_recursion(tmp_path):
    depth = 5000
    path = write(tmp_path / "deep.txt", "(2 " * depth + "word" + ")" * depth + "\n(3 (2 good) (4 movie))\n")
    assert read_labeled(path) == [LabeledText("word", "2"), LabeledText("good movie", "3")]
    assert len(read_labeled(path, phrases=True)) == 4  # (word, 2), its root, (good, 2), (movie, 4)
    path = write(tmp_path / "open.txt", "(3 (2 good) (4 movie))\n" + "(2 " * depth + "word\n")
    with pytest.raises(DataError, match=r"open.txt:2: malformed tree: unbalanced"):
        read_labeled(path)


# -- music -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pitch, message",
    [(60.7, "not a whole MIDI number"), ("Infinity", "not a finite number"), ("NaN", "not a finite number"), ("1e400", "not a finite"),
     (200, "outside the piano range"), ("true", "not a number"), ('"60"', "not a number"), ("null", "not a number")],
)  # fmt: skip
def test_pitches_must_be_whole_finite_and_on_the_piano(tmp_path, pitch, message):
    path = write(tmp_path / "songs.json", '{"train": [[[60, 64]], [[62]]], "valid": [[[62], [64, %s]]]}' % pitch)
    with pytest.raises(DataError, match=rf"songs.json \[valid\]: sequence 0, step 1: pitch .*{message}"):
        read_chorales(path)


def test_a_split_of_another_name_is_refused_not_dropped(tmp_path):
    """{"train": ..., "validation": ...}: the songs under "validation" are no split rnnkit reads, so
    the file is refused in one line naming the key, instead of training with a made-up split."""
    path = write(tmp_path / "songs.json", '{"train": [[[60]]], "validation": [[[62]]]}')
    with pytest.raises(DataError, match=r"songs.json: unknown split 'validation'; the splits are named 'train', 'valid', 'test'"):
        read_chorales(path)
    assert read_chorales(write(tmp_path / "ok.json", '{"train": [[[60]]], "test": [[[62]]]}')) == {"train": [[[60]]], "test": [[[62]]]}


def test_whole_float_pitches_are_read_as_numbers(tmp_path):
    assert read_chorales(write(tmp_path / "songs.json", "[[[60.0, 64], []]]")) == {"train": [[[60, 64], []]]}


def test_a_music_file_whose_split_has_no_note_is_refused_as_a_midi_file_without_notes_is(tmp_path):
    """{"train": [[[], [], []]] * 4} trained a model of silence, in both representations, where a
    MIDI file without a note is refused."""
    path = write(tmp_path / "silent.json", json.dumps({"train": [[[], [], []]] * 4, "valid": [[[60]]]}))
    with pytest.raises(DataError, match=r"silent.json \[train\]: no notes in any of its 4 sequences"):
        read_chorales(path)
    path = write(tmp_path / "quiet_valid.json", json.dumps({"train": [[[60], []]], "valid": [[[]]]}))
    with pytest.raises(DataError, match=r"quiet_valid.json \[valid\]: no notes"):
        read_chorales(path)
    assert read_chorales(write(tmp_path / "rests.json", "[[[], [60], []]]")) == {"train": [[[], [60], []]]}  # rests among notes are music


def test_the_cli_refuses_a_fractional_pitch_without_leaving_a_run(tmp_path, capsys):
    path = write(tmp_path / "fractional.json", json.dumps({"train": [[[60.5, 64]]] * 4}))
    assert main(["train", "music", str(path), "--run", str(tmp_path / "m"), "--epochs", "1", "--no-progress"]) == 2
    assert "fractional.json [train]: sequence 0, step 0: pitch 60.5" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def _midi(path: Path, pitches: list[int], drums: bool = False) -> Path:
    pretty_midi = pytest.importorskip("pretty_midi")
    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=0, is_drum=drums)
    instrument.notes = [pretty_midi.Note(90, p, 0.5 * i, 0.5 * i + 0.5) for i, p in enumerate(pitches)]
    midi.instruments.append(instrument)
    midi.write(str(path))
    return path


def test_a_drums_only_midi_file_is_a_file_with_no_notes(tmp_path):
    folder = tmp_path / "midi"
    folder.mkdir()
    _midi(folder / "piece.mid", [60, 62, 64])
    _midi(folder / "drums_only.mid", [36, 38, 42, 36], drums=True)
    assert read_midi(folder / "piece.mid") == [[60], [62], [64]]
    with pytest.raises(DataError, match=r"drums_only.mid: no notes but 4 drum notes"):
        read_midi(folder / "drums_only.mid")
    with pytest.raises(DataError, match=r"drums_only.mid"):
        read_midi_folder(folder)


def _midi_messages(path: Path, messages: list[tuple[str, int, int]]) -> Path:
    """A type-1 file of one track from (type, pitch, delta ticks) messages, 480 ticks a beat."""
    mido = pytest.importorskip("mido")
    track = mido.MidiTrack(mido.Message(kind, note=pitch, velocity=80, time=delta) for kind, pitch, delta in messages)
    midi = mido.MidiFile(type=1)
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def test_midi_notes_never_released_are_counted_and_a_file_of_only_them_is_refused_as_such(tmp_path, capsys):
    """pretty_midi makes a note at its note-off: a chord held to the end with no note-off, or a note
    released at the tick it began, went missing without a word, and a file of only such notes was
    refused as having "no notes"."""
    scale = [m for i in range(8) for m in (("note_on", 60 + i, 0), ("note_off", 60 + i, 480))]
    held = [("note_on", p, 0) for p in (48, 52, 55, 59)] + [("note_on", 72, 0), ("note_off", 72, 1920)]
    assert len(read_midi(_midi_messages(tmp_path / "held.mid", scale + held))) == 12
    assert "held.mid: 4 of 13 notes are never released" in capsys.readouterr().err
    same_tick = [m for i in range(4) for m in (("note_on", 60 + i, 0), ("note_off", 60 + i, 480), ("note_on", 40 + i, 0), ("note_off", 40 + i, 0))]
    assert read_midi(_midi_messages(tmp_path / "zero.mid", same_tick)) == [[60], [61], [62], [63]]
    assert "zero.mid: 4 of 8 notes are never released" in capsys.readouterr().err
    read_midi(_midi_messages(tmp_path / "scale.mid", scale))  # released notes: nothing to say
    assert capsys.readouterr().err == ""
    # a key struck again before its release (two note-ons, one note-off; or both at one tick): one note
    # to that release, where the merging of overlaps took the only note-off out and the note was lost
    for delta in (480, 0):
        struck = [("note_on", 60, 0), ("note_on", 60, delta), ("note_off", 60, 960 - delta), ("note_on", 64, 0), ("note_off", 64, 960)]
        assert read_midi(_midi_messages(tmp_path / "again.mid", struck)) == [[60], [60], [64], [64]]
        assert capsys.readouterr().err == ""
    # a note too short for the shortest step: no smaller --step-seconds to suggest (it would be refused)
    mido = pytest.importorskip("mido")
    tiny = mido.MidiFile(ticks_per_beat=960)  # a beat of 1 ms: the note lasts 10 µs
    tiny.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=1000, time=0), mido.Message("note_on", note=60, velocity=80, time=0),
                                       mido.Message("note_off", note=60, time=10)]))  # fmt: skip
    tiny.save(str(tmp_path / "tiny.mid"))
    with pytest.raises(DataError, match=r"between two steps' middles\), the shortest step rnnkit takes$"):
        read_midi(tmp_path / "tiny.mid", 1e-4)
    with pytest.raises(DataError, match=r"try a smaller --step-seconds$"):
        read_midi(tmp_path / "tiny.mid", 1e-3)
    for name, messages in (("open.mid", [("note_on", 60, 0), ("note_on", 64, 960)]), ("instant.mid", [("note_on", 60, 480), ("note_off", 60, 0)] * 3)):
        with pytest.raises(DataError, match=rf"{name}: none of its \d notes is ever released"):
            read_midi(_midi_messages(tmp_path / name, messages))


def test_midi_tempo_on_another_track_is_read_and_type_2_is_refused(tmp_path, capsys):
    """pretty_midi reads tempo changes from a type 1 file's first track only (and warns in a bare
    Python warning): a tempo of 30 bpm in the notes' track read the piece at 120 bpm, four times too
    fast. A type 2 file's patterns, meant one after another, were played on top of each other."""
    mido = pytest.importorskip("mido")
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("track_name", name="conductor")]))  # no tempo here
    notes = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=2_000_000), mido.MetaMessage("time_signature")])  # 2 s a beat
    for i in range(4):
        notes += [mido.Message("note_on", note=60 + i, velocity=80, time=0), mido.Message("note_off", note=60 + i, time=480)]
    midi.tracks.append(notes)
    midi.save(str(tmp_path / "tempo.mid"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no bare warning either
        steps = read_midi(tmp_path / "tempo.mid")
    assert steps == [[60 + i] for i in range(4) for _ in range(4)] and capsys.readouterr().err == ""  # 4 beats of 2 s in steps of 0.5 s
    midi.type = 2
    midi.save(str(tmp_path / "patterns.mid"))
    with pytest.raises(DataError, match=r"patterns.mid: a type 2 MIDI file \(patterns meant one after another\), which rnnkit does not read"):
        read_midi(tmp_path / "patterns.mid")


def test_midi_extensions_match_in_any_case(tmp_path):
    """Karaoke files (.kar: standard MIDI files with lyrics events) were skipped without a word."""
    for name in ("a.MID", "b.mid", "c.Midi", "d.midi", "e.kar", "f.KAR"):
        _midi(tmp_path / name, [60, 67])
    (tmp_path / "notes.txt").write_text("not music")
    assert [f.name for f in midi_files(tmp_path)] == ["a.MID", "b.mid", "c.Midi", "d.midi", "e.kar", "f.KAR"]
    assert len(read_midi_folder(tmp_path)) == 6


def test_a_midi_folder_is_read_with_its_subfolders_as_maestro_and_lakh_are_laid_out(tmp_path):
    """MAESTRO keeps its pieces in one folder per year, Lakh two levels down: files in subfolders
    were left out silently (or the folder refused as holding no MIDI)."""
    for name in ("top.mid", "2004/a.midi", "2006/deep/b.MID", ".hidden/c.mid"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        _midi(tmp_path / name, [60, 64])
    assert [str(f.relative_to(tmp_path)) for f in midi_files(tmp_path)] == ["2004/a.midi", "2006/deep/b.MID", "top.mid"]
    assert len(read_midi_folder(tmp_path / "2006")) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no .mid, .midi or .kar files, in it or its subfolders"):
        read_midi_folder(tmp_path / "empty")


def test_midi_notes_off_the_piano_are_counted_on_stderr(tmp_path, capsys):
    """Notes below 21 or above 108 have no key in the piano roll; they are left out, and said so:
    per file by read_midi, in one line for a folder by read_midi_folder."""
    _midi(tmp_path / "ok.mid", [60, 62])
    _midi(tmp_path / "wide.mid", [10, 60, 120, 64, 127])
    assert read_midi(tmp_path / "wide.mid") == [[], [60], [], [64]]  # the last note, left out, adds no silent step
    assert "wide.mid: 3 of 5 notes lie off the piano range 21..108 and are left out" in capsys.readouterr().err
    assert len(read_midi(tmp_path / "ok.mid")) == 2 and capsys.readouterr().err == ""
    assert len(read_midi_folder(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3 of 7 notes, in 1 of 2 files (wide.mid), lie off the piano range" in err


@pytest.mark.parametrize("step", [0.5, 0.7, 1.7, 0.02, 0.333])
def test_a_piece_compose_writes_reads_back_step_for_step(tmp_path, step):
    """At 0.7 s steps pretty_midi stores the tempo as 699,999 microseconds a beat: every note came
    back a hair before its step's start and fell into the step before, and the last step was lost."""
    from rnnkit.data.music import write_midi

    rng = random.Random(0)
    piece = [sorted(rng.sample(range(40, 90), rng.randint(0, 4))) for _ in range(49)] + [[60]]
    write_midi(piece, tmp_path / "p.mid", step_seconds=step)
    assert read_midi(tmp_path / "p.mid", step) == piece


def test_a_short_note_under_the_sustain_pedal_rings_until_it_is_lifted_and_trailing_silence_is_kept(tmp_path, capsys):
    """A 0.2 s key press with the pedal down was dropped as "shorter than half a step" (pretty_midi
    lengthens only the notes that already fill a step); a piece ending in silent steps read back
    without them, though write_midi marks the end."""
    pretty_midi = pytest.importorskip("pretty_midi")
    from rnnkit.data.music import write_midi

    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=0)
    instrument.notes = [pretty_midi.Note(90, 60, 0.0, 0.2), pretty_midi.Note(90, 64, 0.0, 2.0)]
    instrument.control_changes = [pretty_midi.ControlChange(64, 127, 0.0), pretty_midi.ControlChange(64, 0, 1.0)]
    midi.instruments.append(instrument)
    midi.write(str(tmp_path / "pedal.mid"))
    assert read_midi(tmp_path / "pedal.mid") == [[60, 64], [60, 64], [64], [64]]
    assert "shorter" not in capsys.readouterr().err
    for step in (0.5, 0.37, 0.0333):
        write_midi([[60], [62], [], []], tmp_path / "rest.mid", step_seconds=step)
        assert read_midi(tmp_path / "rest.mid", step) == [[60], [62], [], []], step
    # a controller reset at 30 s or a drum track to 10 s is no silence of the music: not 60 steps
    instrument.notes = [pretty_midi.Note(90, 60, 0.0, 1.0)]
    instrument.control_changes = [pretty_midi.ControlChange(121, 0, 30.0)]
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes = [pretty_midi.Note(90, 36, 0.0, 10.0)]
    midi.instruments.append(drums)
    instrument.notes.append(pretty_midi.Note(90, 120, 5.0, 5.5))  # off the piano: left out, and no silence before it either
    midi.write(str(tmp_path / "late.mid"))
    assert read_midi(tmp_path / "late.mid") == [[60], [60]]


def test_notes_a_tick_short_of_a_step_keep_it_and_shorter_ones_are_counted(tmp_path, capsys):
    """Notation software ends a note a tick early: 0.499 s at 0.5 s steps sounded in no step at all,
    and nothing was said (only a file where every note was lost was refused)."""
    pretty_midi = pytest.importorskip("pretty_midi")
    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=0)
    instrument.notes = [pretty_midi.Note(90, 60 + i, 0.5 * i, 0.5 * i + 0.499) for i in range(4)]  # a tick short
    instrument.notes += [pretty_midi.Note(90, 70, 2.0, 2.1), pretty_midi.Note(90, 72, 2.5, 3.0)]  # a grace note, then a step
    midi.instruments.append(instrument)
    midi.write(str(tmp_path / "early.mid"))
    assert read_midi(tmp_path / "early.mid") == [[60], [61], [62], [63], [], [72]]  # step 4 held only the grace note
    assert "early.mid: 1 of 6 notes sound through no step's middle at steps of 0.5 s" in capsys.readouterr().err
    folder = tmp_path / "f"
    folder.mkdir()
    (tmp_path / "early.mid").rename(folder / "early.mid")
    _midi(folder / "ok.mid", [60, 62])
    read_midi_folder(folder)
    assert "f: 1 of 8 notes, in 1 of 2 files (early.mid), sound through no step's middle" in capsys.readouterr().err


def test_a_note_between_two_steps_middles_is_named_for_that_and_makes_no_silence(tmp_path, capsys):
    """0.3-0.7 s at 0.5 s steps is longer than half a step yet crosses no step's middle: the message
    called it "shorter than half a step", and a last note left out still lengthened the piece."""
    pretty_midi = pytest.importorskip("pretty_midi")
    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=0)
    instrument.notes = [pretty_midi.Note(90, 60, 0.0, 1.0), pretty_midi.Note(90, 64, 1.3, 1.7)]
    midi.instruments.append(instrument)
    midi.write(str(tmp_path / "between.mid"))
    assert read_midi(tmp_path / "between.mid") == [[60], [60]]  # no silent step for the note left out
    assert "1 of 2 notes sound through no step's middle" in capsys.readouterr().err
    instrument.notes = instrument.notes[1:]
    midi.write(str(tmp_path / "none.mid"))
    with pytest.raises(DataError, match=r"none of its 1 notes sounds through the middle of a step of 0.5 s"):
        read_midi(tmp_path / "none.mid")


def test_a_broken_midi_file_is_a_one_line_error(tmp_path):
    data = _midi(tmp_path / "ok.mid", [60, 62]).read_bytes()
    (tmp_path / "cut.mid").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut.mid: not a readable MIDI file"):
        read_midi(tmp_path / "cut.mid")


# -- absurd lengths ----------------------------------------------------------------------------------------------
def test_a_line_of_absurd_length_is_refused_with_its_figure(tmp_path):
    from rnnkit.data.batches import MAX_SEQUENCE_STEPS
    from rnnkit.tasks.language_model import LanguageModelTask

    path = write(tmp_path / "long.txt", "a short line\n" * 40 + "x" * (MAX_SEQUENCE_STEPS + 1) + "\n")
    data = LanguageModelTask.data_config({"train": [str(path)]})
    with pytest.raises(DataError, match=r"long.txt .*: a sequence of 100,00[12] steps, more than 100,000.*--batching stream"):
        LanguageModelTask.prepare(data)
    LanguageModelTask.prepare(LanguageModelTask.data_config({"train": [str(path)], "batching": "stream"}))  # a stream has no such limit
    # eval reads as the run was trained, and has no --batching to give: its advice is one it can follow
    task, _ = LanguageModelTask.prepare(LanguageModelTask.data_config({"train": [write(tmp_path / "short.txt", "a short line\nxy\n" * 40)]}))
    with pytest.raises(DataError, match=r"long.txt: a sequence of .* trained with --batching sentences .*: break the text into lines$") as error:
        task.evaluate_file(None, str(path), "cpu")
    assert "--batching stream" not in str(error.value)
    path = write(tmp_path / "noblank.conll", "word O\n" * (MAX_SEQUENCE_STEPS + 2))
    with pytest.raises(DataError, match=r"noblank.conll:1: a sentence of more than 100,000 tokens: are blank lines missing"):
        read_conll(path)


def test_config_files_follow_the_same_text_rules(tmp_path):
    from rnnkit.runs import read_config_file

    path = tmp_path / "settings.toml"
    path.write_bytes(b"\xef\xbb\xbfepochs = 2\rhidden-size = 8\r")  # a BOM and lone CRs, as Notepad and old Macs save
    assert read_config_file(path) == {"epochs": 2, "hidden_size": 8}
    path.write_bytes(b"epochs = 2\n# caf\xe9\n")
    with pytest.raises(DataError, match=r"settings.toml:2: not UTF-8 text"):
        read_config_file(path)


def test_a_text_or_token_of_absurd_length_is_refused(tmp_path):
    from rnnkit.data.batches import MAX_SEQUENCE_STEPS

    path = write(tmp_path / "long.tsv", "1\tshort\n2\t" + "word " * (MAX_SEQUENCE_STEPS + 1) + "\n")
    with pytest.raises(DataError, match=r"long.tsv: a sequence of 100,001 steps, more than 100,000"):
        ClassificationTask.prepare(ClassificationDataConfig(train=[str(path)]))
    path = write(tmp_path / "token.conll", "x" * 20_000 + " O\n")
    with pytest.raises(DataError, match=r"token.conll:1: a token of 20,000 characters"):
        read_conll(path)


def test_labelled_files_as_spreadsheets_and_pandas_write_them(tmp_path, capsys):
    """The shapes real tsv/csv files take: a header naming only one column by a known name; two
    files joined with cat (the header again, skipped and said); pandas' CSV quoting in a tsv; and the
    faults that would silently misread a file refused in one line: an unquoted comma in a csv text
    (the text cut, the rest taken as the label), a quoted line break in a tsv, column options for a
    file whose columns have no names."""
    rows = [LabeledText("who wrote hamlet", "HUM"), LabeledText("where is paris", "LOC")]
    assert read_labeled(write(tmp_path / "q.tsv", "label\tquestion\nHUM\twho wrote hamlet\nLOC\twhere is paris\n")) == rows
    assert read_labeled(write(tmp_path / "i.tsv", "intent\ttext\nHUM\twho wrote hamlet\nLOC\twhere is paris\n")) == rows
    # a first row that would name a column, but whose label is one of the file's: an example, not a header
    first = read_labeled(write(tmp_path / "n.tsv", "neg\treview\npos\tgood film\nneg\tbad film\n"))
    assert first[0] == LabeledText("review", "neg") and len(first) == 3
    # two names no list knows, and a "label" on no other line: the header, said on stderr
    assert read_labeled(write(tmp_path / "iq.tsv", "intent\tquery\nHUM\twho wrote hamlet\nLOC\twhere is paris\n")) == rows
    assert "iq.tsv:1: 'intent'<TAB>'query' read as the header row" in capsys.readouterr().err
    # column names with spaces (Kaggle's "Class Index"), over labels that repeat: the header, said
    classes = "".join(f"{i % 2 + 1}\t{'good' if i % 2 else 'bad'} film {i}\n" for i in range(8))
    assert len(read_labeled(write(tmp_path / "ci.tsv", "Class Index\tReview Text\n" + classes))) == 8
    assert "ci.tsv:1: 'Class Index'<TAB>'Review Text' read as the header row" in capsys.readouterr().err
    for first in ("neutral\tokay film", "Very Negative\tOkay Film"):  # the first example of a rare class: an example
        rare = read_labeled(write(tmp_path / "rare.tsv", first + "\n" + classes))
        assert len(rare) == 9 and rare[0].label == first.split("\t")[0] and capsys.readouterr().err == ""
    # a label column named, the text in one of several columns none of which is named so: which one?
    with pytest.raises(DataError, match=r"ag.tsv:1: a header row \('label', 'title', 'description'\) in which rnnkit finds no text column; give --text-column NAME"):
        read_labeled(write(tmp_path / "ag.tsv", "label\ttitle\tdescription\n" + "".join(f"{i % 2}\tnews {i}\tmore {i}\n" for i in range(6))))
    assert read_labeled(tmp_path / "ag.tsv", text_column="description")[0] == LabeledText("more 0", "0")
    with pytest.raises(DataError, match=r"mix.tsv:4: another header row \('sentence\\tlabel'\), unlike line 1's: files with different columns joined"):
        read_labeled(write(tmp_path / "mix.tsv", "text\tlabel\ngood\tpos\nbad\tneg\nsentence\tlabel\nok\tpos\n"))
    joined = read_labeled(write(tmp_path / "cat.tsv", "label\ttext\nHUM\twho wrote hamlet\nlabel\ttext\nLOC\twhere is paris\n"))
    assert joined == rows and "cat.tsv:3: the header row again" in capsys.readouterr().err
    joined = read_labeled(write(tmp_path / "cat.csv", "text,label\nwho wrote hamlet,HUM\ntext,label\nwhere is paris,LOC\n"))
    assert joined == rows and "cat.csv:3: the header row again" in capsys.readouterr().err
    quoted = write(tmp_path / "pandas.tsv", 'label\ttext\npos\t"He said ""wow"" twice"\npos\t"a\ttab inside"\nneg\t"plain" start\n')
    assert read_labeled(quoted) == [LabeledText('He said "wow" twice', "pos"), LabeledText("a\ttab inside", "pos"), LabeledText('"plain" start', "neg")]
    spaced = read_labeled(write(tmp_path / "spaced.csv", 'label, text\n1, "great, fine film"\n0, dull\n'))  # a space after each comma
    assert spaced == [LabeledText("great, fine film", "1"), LabeledText("dull", "0")]
    inches = read_labeled(write(tmp_path / "inches.tsv", '4\t"It is 5" tall" he said\n3\tfine\n'))  # a text that starts with a quote, as is
    assert inches[0] == LabeledText('"It is 5" tall" he said', "4")
    faults = {
        "comma.csv": ("text,label\nTerrible, just terrible,neg\n", r"comma.csv:2: 3 field\(s\), the header has 2 \(an unquoted comma"),
        "break.tsv": ('label\ttext\npos\t"line\nbreak"\n', r"break.tsv:3: expected 'label<TAB>text', found no tab \(a line break inside a quoted text\?"),
    }
    for name, (text, message) in faults.items():
        with pytest.raises(DataError, match=message):
            read_labeled(write(tmp_path / name, text))
    for name, text in (("plain.tsv", "pos\tgood film\n"), ("ft.txt", "__label__pos good film\n")):
        with pytest.raises(DataError, match=rf"{name}: .* has no column names, so the text column 'review' \(--text-column\) cannot be found in it"):
            read_labeled(write(tmp_path / name, text), text_column="review")
        # a run trained on a csv's named columns evaluates such a file by position (its eval offered no --text-column)
        assert read_labeled(tmp_path / name, text_column="review", label_column="stars", positional=True) == [LabeledText("good film", "pos")]
    with pytest.raises(DataError, match=r"semi.csv: no column 'text' \(columns: 'text;label'\); fields separated by ';'\?"):
        read_labeled(write(tmp_path / "semi.csv", "text;label\ngood film;pos\n"))  # Excel's CSV in many locales


@pytest.mark.parametrize("scheme", ["iob2", "iobes"])
def test_an_iob1_file_read_under_another_scheme_is_refused_not_stripped_of_its_entities(tmp_path, scheme):
    """CoNLL-2003's files are IOB1: most entities start with I-X. Read as IOB2 or IOBES those would
    all be invalid and every gold entity lost (F1 0, silently); the first tag that the scheme does not
    allow is refused naming its line and the scheme to try."""
    iob1 = write(tmp_path / "iob1.txt", "EU I-ORG\nrejects O\n\nthe O\nGerman I-MISC\ncall O\n")
    with pytest.raises(DataError, match=rf"iob1.txt:1: 'I-ORG' after 'O' is not {scheme.upper()} \(--scheme {scheme}\).*is it --scheme iob1"):
        read_conll(iob1, scheme=scheme)
    assert len(read_conll(iob1, scheme="iob1")) == 2
    iob2 = write(tmp_path / "iob2.txt", "Peter B-PER\nSmith I-PER\nsaid O\n")
    assert read_conll(iob2, scheme="iob2")[0].tags == ["B-PER", "I-PER", "O"]
    with pytest.raises(DataError, match=r"iob2.txt:3: 'O' after 'I-PER' is not IOBES"):
        read_conll(iob2, scheme="iobes")
    cut = write(tmp_path / "cut.txt", "Peter B-PER\nSmith I-PER\n")
    with pytest.raises(DataError, match=r"cut.txt:2: 'I-PER' ends a sentence, but in IOBES an entity ends with E-X"):
        read_conll(cut, scheme="iobes")
    iobes = write(tmp_path / "iobes.txt", "Peter B-PER\nSmith E-PER\nin O\nParis S-LOC\n")
    assert read_conll(iobes, scheme="iobes")[0].tags == ["B-PER", "E-PER", "O", "S-LOC"]


@pytest.mark.parametrize("line, hint", [
    ("# sent_id = 1", "a CoNLL-U comment line?"), ("Paris U-LOC", "BILOU?"), ("Paris b-loc", "case-sensitive"), ("Paris B_LOC", "B-LOC"),
    ("Paris o", "capital letter O"), ("Paris 0", "capital letter O"), ("Paris LOC-B", "B-LOC"),
])
def test_a_tag_file_in_another_tools_spelling_is_refused_with_what_to_change(tmp_path, line, hint):
    path = write(tmp_path / "t.conll", f"{line}\nwent O\n")
    with pytest.raises(DataError, match=re.escape(hint)):
        read_conll(path)


def test_a_sentence_of_over_a_thousand_tokens_is_read_and_named(tmp_path, capsys):
    """A file without blank lines between sentences was one sentence, without a word."""
    path = write(tmp_path / "noblank.conll", "".join(f"w{i} {'B-PER' if i % 7 == 0 else 'O'}\n" for i in range(1_200)))
    assert [len(s.tokens) for s in read_conll(path, scheme="iob2")] == [1_200]
    assert "a sentence of 1,200 tokens (1 in all): are blank lines missing" in capsys.readouterr().err
    read_conll(write(tmp_path / "fine.conll", "a O\nb O\n\nc O\n"))
    assert capsys.readouterr().err == ""


def test_a_small_conllu_file_given_as_text_is_recognised_despite_its_comments():
    from rnnkit.data.conll import looks_like_column_lines

    rows = ["# sent_id = 1", "# text = Peter lives in Paris."] + [f"{i}\t{w}\t{w}\tX\tX\t_\t0\tdep\t_\t_" for i, w in enumerate(["Peter", "lives", "in", "Paris", "."], 1)]
    assert looks_like_column_lines(rows) and not looks_like_column_lines(["# a comment", "Peter lives in Paris .", "ok fine", "so it goes"])


@pytest.mark.parametrize("header", ["sentence\tlabel", "sentence\tlabel\t", None])
def test_trailing_tabs_in_a_tsv_file_make_no_column(tmp_path, header):
    """A stray tab at a line's end (a spreadsheet's empty cell) shifted the columns: with the text
    column first the label read as empty and the file was refused for it."""
    rows = ["great film\tpos\t", "bad film\tneg", "fine film\tpos\t\t"] if header else ["pos\tgreat film\t", "neg\tbad film"]
    path = write(tmp_path / "train.tsv", "\n".join(([header] if header else []) + rows) + "\n")
    got = read_labeled(path)
    assert [(x.label, x.text) for x in got][:2] == [("pos", "great film"), ("neg", "bad film")]


def test_a_first_row_taken_as_the_header_by_one_column_name_is_said(tmp_path, capsys):
    """'target<TAB>shooting' names a column ('target') and its label is on no other line: read as
    the header row, which may be a first example: said, not done silently."""
    lines = ["target\tshooting"] + [f"{['sport', 'food'][i % 2]}\tsome words {i}" for i in range(20)]
    got = read_labeled(write(tmp_path / "t.tsv", "\n".join(lines) + "\n"))
    assert len(got) == 20
    assert "t.tsv:1: 'target'<TAB>'shooting' read as the header row" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["one track", "hands in two tracks", "pedal in a track of its own", "pedal on another channel"])
def test_the_sustain_pedal_holds_every_note_of_its_channel_whatever_the_track(tmp_path, layout):
    """A controller acts on its channel: a piano file with one track per hand and the pedal in the
    right hand's track (or in a track of its own) held only that track's notes. A pedal on another
    channel holds none of them."""
    mido = pytest.importorskip("mido")
    pytest.importorskip("pretty_midi")
    on = lambda pitch, time=0: mido.Message("note_on", note=pitch, velocity=80, time=time)  # noqa: E731
    off = lambda pitch, time: mido.Message("note_off", note=pitch, velocity=0, time=time)  # noqa: E731
    pedal = lambda value, time, channel=0: mido.Message("control_change", control=64, value=value, time=time, channel=channel)  # noqa: E731
    # 120 bpm, 480 ticks a beat: 0.25 s = 240 ticks; the pedal down from 0 to 2 s (1920 ticks)
    right, left = [on(72), off(72, 240)], [on(48), off(48, 240)]
    down_up = [pedal(127, 0), pedal(0, 1920)]
    tracks = {
        "one track": [[down_up[0], on(72), on(48), off(72, 240), off(48, 0), pedal(0, 1680)]],
        "hands in two tracks": [down_up[:1] + right + [pedal(0, 1680)], left],
        "pedal in a track of its own": [right, left, down_up],
        "pedal on another channel": [right, left, [pedal(127, 0, 1), pedal(0, 1920, 1)]],
    }[layout]
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)]))
    for messages in tracks:
        midi.tracks.append(mido.MidiTrack(messages))
    midi.save(str(tmp_path / "piano.mid"))
    held = [[48, 72]] * 4
    assert read_midi(tmp_path / "piano.mid", 0.5) == ([[48, 72]] if layout == "pedal on another channel" else held)


def test_a_midi_file_in_smpte_time_is_refused_saying_so(tmp_path):
    """A header division with its top bit set (frames a second, ticks a frame) was refused as "not
    a readable MIDI file (ValueError)", saying nothing of why."""
    import struct

    mido = pytest.importorskip("mido")
    pytest.importorskip("pretty_midi")
    midi = mido.MidiFile(type=0, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0), mido.Message("note_off", note=60, time=480)]))
    midi.save(str(tmp_path / "a.mid"))
    data = bytearray((tmp_path / "a.mid").read_bytes())
    data[12:14] = struct.pack(">h", -25 * 256 + 40)  # 25 frames a second, 40 ticks a frame
    (tmp_path / "smpte.mid").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"smpte.mid: SMPTE time"):
        read_midi(tmp_path / "smpte.mid")
    data[12:14] = bytes(2)  # top bit clear, 0 ticks a beat: was refused as SMPTE time too
    (tmp_path / "zero.mid").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"zero.mid: a ticks-per-beat of 0: not a valid MIDI file$"):
        read_midi(tmp_path / "zero.mid")


def test_a_headerless_tsv_table_of_three_or_more_columns_is_refused_not_read_as_label_and_text(tmp_path):
    """GLUE's CoLA (``source<TAB>label<TAB>mark<TAB>sentence``, no header) trained silently on the
    source codes as labels and "0<TAB>*<TAB>sentence" as texts."""
    rows = "gj04\t1\t\tour friends won't buy this analysis\ngj04\t0\t*\tone more pseudo generalization\nbc01\t1\t\tthe sailors rode the breeze\n"
    path = write(tmp_path / "cola.tsv", rows)
    with pytest.raises(DataError, match=r"cola\.tsv:1: every line has 4 tab-separated columns and no header row says which is the label"):
        read_labeled(path)
    named = read_labeled(write(tmp_path / "named.tsv", "source\tlabel\tmark\ttext\n" + rows))
    assert [(e.label, e.text) for e in named][:2] == [("1", "our friends won't buy this analysis"), ("0", "one more pseudo generalization")]
    # a text holding a tab on some lines only is still label<TAB>text; a column empty on every line tells nothing
    assert read_labeled(write(tmp_path / "some.tsv", "pos\ta\tb\nneg\tc\n"))[0] == LabeledText("a\tb", "pos")
    assert read_labeled(write(tmp_path / "gap.tsv", "pos\t\tgreat film\nneg\t\tbad film\n"))[0] == LabeledText("great film", "pos")
    # a header whose label column rnnkit does not know: it asked for --text-column, which did not help
    headed = write(tmp_path / "headed.tsv", "source\tacceptability\tmark\tsentence\n" + rows)
    for given in ({}, {"text_column": "sentence"}):
        with pytest.raises(DataError, match=r"headed\.tsv:1: a header row \('source', .*\) in which rnnkit finds no label column; give --label-column NAME$"):
            read_labeled(headed, **given)
    assert read_labeled(headed, label_column="acceptability")[1] == LabeledText("one more pseudo generalization", "0")
