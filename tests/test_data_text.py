"""Line-per-example text (rnnkit/data/text.py): errors that name the file and line, and the
deterministic, complete split into train, valid and test."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.data.text import DataError, read_lines, split_lines

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_read_lines_errors_name_the_file(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"fine\nbad \xff here\n")
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(DataError, match=r"bad.txt:2: not UTF-8 text"):
        read_lines(tmp_path / "bad.txt")
    with pytest.raises(DataError, match=r"empty.txt: the file has no text"):
        read_lines(tmp_path / "empty.txt")
    with pytest.raises(DataError, match=r"missing.txt: no such file"):
        read_lines(tmp_path / "missing.txt")


def test_split_is_deterministic_and_complete():
    lines = [f"line {i}" for i in range(100)]
    a = split_lines(lines, 0.1, 0.2, seed=3)
    assert a == split_lines(lines, 0.1, 0.2, seed=3)
    assert [len(part) for part in a] == [70, 10, 20]
    assert sorted(sum(a, [])) == sorted(lines)
    assert a != split_lines(lines, 0.1, 0.2, seed=4)


@pytest.mark.skipif(not (SHARED / "names" / "names.txt").exists(), reason="shared names data absent")
def test_reads_the_real_names_file():
    assert len(read_lines(SHARED / "names" / "names.txt")) == 32033
