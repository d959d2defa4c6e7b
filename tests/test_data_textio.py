"""The one text-input layer (rnnkit.data.textio): line ends, byte-order marks, standard input and
undecodable bytes are handled once, the same way for every reader."""

from __future__ import annotations

import io
import sys

import pytest

from rnnkit.data import textio
from rnnkit.data.textio import DataError, iter_lines, read_lines, read_text, split_lines

LINES = ["first", "", "  third\twith a tab  ", "fourth\u2028still fourth\x0cand a form feed"]


def variants(lines: list[str]) -> dict[str, bytes]:
    """The same lines as LF, CRLF, lone-CR and BOM files, with and without a final line break."""
    out = {}
    for name, end in (("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")):
        out[name] = end.join(lines).encode() + end.encode()
        out[name + "-unterminated"] = end.join(lines).encode()
        out[name + "-bom"] = b"\xef\xbb\xbf" + out[name]
    out["mixed"] = b"first\r\n\rthird\n".replace(b"third", "  third\twith a tab  ".encode()) + LINES[3].encode() + b"\r"
    return out


@pytest.mark.parametrize("kind", sorted(variants(LINES)))
def test_every_line_end_and_a_bom_read_alike(tmp_path, kind, monkeypatch):
    path = tmp_path / "f.txt"
    path.write_bytes(variants(LINES)[kind])
    assert read_lines(path) == LINES
    monkeypatch.setattr(textio, "_CHUNK", 3)  # line ends and the BOM cut across the streamed pieces
    assert list(iter_lines(path)) == LINES


def test_split_lines_keeps_alignment():
    assert split_lines("") == []
    assert split_lines("\n") == [""]
    assert split_lines("a\r\r\nb") == ["a", "", "b"]  # a lone CR then a CRLF: two breaks
    assert split_lines("a\n\n") == ["a", ""]  # only the final break is not a line


def test_standard_input_reads_like_a_file(tmp_path, monkeypatch):
    data = variants(LINES)["cr-bom"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert read_lines("-") == LINES
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xff\n")))
    with pytest.raises(DataError, match=r"^<stdin>:2: not UTF-8 text \(byte 0xff at column 1\)$"):
        read_text("-")


def test_undecodable_bytes_name_file_line_and_column(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"fine\rstill fine\r\ncaf\xe9 au lait\n")  # the third line, whichever the line ends
    for reader in (read_text, read_lines, lambda p: list(iter_lines(p))):
        with pytest.raises(DataError, match=r"latin1.txt:3: not UTF-8 text \(byte 0xe9 at column 4\)"):
            reader(path)


def test_a_nul_character_names_file_line_and_column(tmp_path):
    """A UTF-16 file of ASCII text decodes as "UTF-8" with a NUL after every letter: refused at the
    first NUL, by every reader of this layer (whole, streamed in pieces), never trained on."""
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("one\ntwo\n".encode("utf-16-le"))
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"one\r\ntwo\nth\x00ree\n")
    for read in (read_text, read_lines, lambda path: list(iter_lines(path))):
        with pytest.raises(DataError, match=r"utf16.txt:1: a NUL character at column 2: a UTF-16 or binary file"):
            read(utf16)
        with pytest.raises(DataError, match=r"nul.txt:3: a NUL character at column 3"):
            read(nul)


def test_a_bom_at_the_start_of_any_line_is_dropped_as_files_joined_with_cat_have_them(tmp_path, monkeypatch):
    """``cat a.txt b.txt`` of two files saved by Windows editors puts b's BOM at the start of a line
    in the middle: it is not text there either, for the whole-file, streamed and corpus readers."""
    from rnnkit.data.corpus import byte_pieces

    path = tmp_path / "joined.txt"
    path.write_bytes(b"\xef\xbb\xbfone two\r\n\xef\xbb\xbfthree\rfour \xef\xbb\xbfkept inside\n\xef\xbb\xbf\n")
    expected = ["one two", "three", "four \ufeffkept inside", ""]
    assert read_lines(path) == expected
    monkeypatch.setattr(textio, "_CHUNK", 3)  # the BOMs cut across the streamed pieces
    assert list(iter_lines(path)) == expected
    assert b"".join(byte_pieces(path, piece_bytes=4)).decode().split("\n")[:-1] == expected


@pytest.mark.parametrize("data,says", [
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", r"f.txt: a gzip-compressed file, not UTF-8 text; decompress it first: gunzip -c .*f.txt > .*f.txt.txt$"),
    (b"BZh91AY&SY\xff\x00", r"f.txt: a bzip2-compressed file, not UTF-8 text; decompress it first: bunzip2 -c .*f.txt > .*f.txt.txt$"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xff", r"f.txt: a zip archive"),
    ("one\ntwo\n".encode("utf-16"), r"f.txt: UTF-16 \(it starts with UTF-16's byte-order mark\), not UTF-8 text; convert it: iconv -f UTF-16 -t UTF-8"),
    ("one\n".encode("utf-32"), r"f.txt: UTF-32 "),
])  # fmt: skip
def test_compressed_and_utf16_files_are_refused_saying_what_they_are(tmp_path, data, says):
    from rnnkit.data.corpus import text_pieces

    path = tmp_path / "f.txt"
    path.write_bytes(data)
    for read in (read_text, read_lines, lambda p: list(iter_lines(p)), lambda p: list(text_pieces(p))):
        with pytest.raises(DataError, match=says):
            read(path)
    path.write_bytes(b"BZh is how this text starts\n")  # the first bytes are looked at only once decoding failed
    assert read_lines(path) == ["BZh is how this text starts"]


@pytest.mark.parametrize("name", ["train_data", "train.tsv.gz", "train.tsv.bz2", "train.tsv.xz"])
@pytest.mark.parametrize("compress,tool", [("gzip", "gunzip"), ("bz2", "bunzip2"), ("lzma", "unxz")])
def test_the_command_that_decompresses_a_file_runs_for_any_name(tmp_path, name, compress, tool):
    """``gunzip -k train_data`` was advised, which gzip refuses ("unknown suffix -- ignored")."""
    import importlib
    import shlex
    import shutil
    import subprocess

    if shutil.which(tool) is None:
        pytest.skip(f"no {tool} here")
    path = tmp_path / name
    path.write_bytes(importlib.import_module(compress).compress(b"one two\n"))
    with pytest.raises(DataError) as error:
        read_text(path)
    command = str(error.value).split("decompress it first: ")[1]
    assert command.startswith(f"{tool} -c ")
    subprocess.run(command, shell=True, check=True, cwd=tmp_path, capture_output=True)
    plain = shlex.split(command)[-1]
    assert read_text(plain) == "one two\n" and plain != str(path) and path.exists()


@pytest.mark.parametrize("data,says", [
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", r"<stdin>: a gzip-compressed file, not UTF-8 text; pipe it through gunzip -c first$"),
    ("one\n".encode("utf-16"), r"<stdin>: UTF-16 .*; pipe it through iconv -f UTF-16 -t UTF-8 first$"),
])  # fmt: skip
def test_standard_input_that_is_not_text_is_told_a_command_that_runs(monkeypatch, data, says):
    """The remedy for a file names it in a command; for standard input that was ``iconv ... <stdin> >
    <stdin>-utf8.txt``, which a shell reads as redirections."""
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    with pytest.raises(DataError, match=says):
        read_lines("-")


def test_missing_files_and_folders_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"nothere.txt: no such file"):
        read_text(tmp_path / "nothere.txt")
    with pytest.raises(DataError, match=r"is a directory"):
        read_lines(tmp_path)
    with pytest.raises(DataError, match=r"nothere.txt: no such file"):
        list(iter_lines(tmp_path / "nothere.txt"))


def test_the_lm_reader_goes_through_textio(tmp_path):
    from rnnkit.data.text import read_lines as lm_lines

    path = tmp_path / "names.txt"
    path.write_bytes(b"\xef\xbb\xbfanna\remma\r\rolivia\r")  # lone CRs, a blank line, a BOM
    assert lm_lines(path) == ["anna", "emma", "olivia"]
    assert lm_lines(path, keep_blank=True) == ["anna", "emma", "", "olivia"]
    path.write_bytes(b"\r\n \r")
    with pytest.raises(DataError, match="no text"):
        lm_lines(path)


def test_a_fault_deep_in_a_streamed_file_is_named_from_its_piece_never_the_whole_file(tmp_path, monkeypatch):
    """iter_lines (word vectors, big files) read the whole file again to name a bad byte's line:
    a 5 GB vectors file with one Latin-1 word was read into memory, several times over."""
    from pathlib import Path

    monkeypatch.setattr(textio, "_CHUNK", 3)  # line ends and UTF-8 sequences cut across the pieces
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("the whole file was read"))
    path = tmp_path / "v.txt"
    path.write_bytes("ünë\r\ndeux\rtrois é\n".encode() + b"caf\xe9 0.1\n")
    with pytest.raises(DataError, match=r"v\.txt:4: not UTF-8 text \(byte 0xe9 at column 4\)$"):
        list(iter_lines(path))
    path.write_bytes(b"one\r\ntwo\nth\x00ree\n")
    with pytest.raises(DataError, match=r"v\.txt:3: a NUL character at column 3"):
        list(iter_lines(path))
    path.write_bytes(b"a\rbb\rccc\r" * 5)  # CR line ends only: no LF to cut at
    assert list(iter_lines(path)) == ["a", "bb", "ccc"] * 5


def test_a_lone_cr_inside_a_line_of_parallel_files_is_refused_not_read_as_a_line_break(tmp_path):
    """A stray CR in an LF file was a line break to rnnkit and none to wc -l or Moses: every pair
    after it shifted by one, silently, when the other file had one too."""
    from rnnkit.data.parallel import read_parallel

    (tmp_path / "s.txt").write_text("Hello\nGood\rmorning\nThank you\nBye\n", newline="")
    (tmp_path / "t.txt").write_text("Hallo\nGuten Morgen\nDanke\nTschuess\rbis bald\n", newline="")
    with pytest.raises(DataError, match=r"s\.txt:2: a carriage return \(\\r\) inside the line, in a file whose lines end in LF"):
        read_parallel(tmp_path / "s.txt", tmp_path / "t.txt")
    (tmp_path / "cr.txt").write_text("Hallo\rGuten Morgen\rDanke\rTschuess\r", newline="")  # CR line ends: lines
    (tmp_path / "crlf.txt").write_text("Hello\r\nGood morning\r\nThank you\r\nBye\r\n", newline="")
    assert read_parallel(tmp_path / "crlf.txt", tmp_path / "cr.txt")[1] == ("Good morning", "Guten Morgen")


def test_a_held_out_folder_inside_or_around_a_training_folder_is_said(tmp_path, capsys):
    """MIDI folders are read with their subfolders: a --valid folder inside the training folder, or
    one holding it, scored pieces the model trains on, without a word."""
    from rnnkit.data.textio import say_held_out_in_training

    (tmp_path / "mid" / "sub").mkdir(parents=True)
    say_held_out_in_training([("--valid", str(tmp_path / "mid" / "sub"))], [str(tmp_path / "mid")])
    assert "is inside the training folder" in capsys.readouterr().err
    say_held_out_in_training([("--valid", str(tmp_path / "mid"))], [str(tmp_path / "mid" / "sub")])
    assert "holds the training folder" in capsys.readouterr().err
    say_held_out_in_training([("--valid", str(tmp_path / "other"))], [str(tmp_path / "mid")])
    assert capsys.readouterr().err == ""


def test_a_windows_1252_file_is_told_to_convert_from_cp1252_not_latin1(tmp_path):
    """The advice was iconv -f latin1, which turns Windows' quotes and dashes (0x80-0x9f) into
    invisible control characters that rnnkit then read silently."""
    from rnnkit.data.textio import DataError, read_text

    path = tmp_path / "w.tsv"
    path.write_bytes(b"pos\t\x93great\x94 film\n")
    with pytest.raises(DataError, match=r"w\.tsv:1: not UTF-8 text \(byte 0x93 at column 5\); Windows-1252 text\? convert it: iconv -f cp1252 -t utf-8$"):
        read_text(path)
    path.write_bytes(b"pos\tcaf\xe9\n")  # Latin-1's own letters: the docs' iconv -f latin1
    with pytest.raises(DataError, match=r"byte 0xe9 at column 8\)$"):
        read_text(path)
