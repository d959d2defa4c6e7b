"""Language-model pre-training for the other tasks (issue 21, point 2): reversed language models
(``rnnkit train lm --reverse``) and classifiers started from a language-model run (``--init-from``)
with ULMFiT's fine-tuning options."""

from __future__ import annotations

import json

import numpy as np

from rnnkit.cli import main
from rnnkit.tasks.language_model import LanguageModelTask, LMDataConfig, ReversedIds, ReversedSplit

LM_SMALL = ["--hidden-size", "16", "--embedding-size", "8", "--engine", "reference", "--no-progress", "--lr", "0.05"]


class Split:  # the interface of a prepared corpus split, in memory
    def __init__(self, lines):
        self.ids = np.concatenate(lines)
        self.offsets = np.cumsum([0] + [len(line) for line in lines])
        self.num_tokens = len(self.ids)

    def __len__(self):
        return len(self.offsets) - 1

    def sentence(self, i):
        return self.ids[self.offsets[i] : self.offsets[i + 1]].astype(np.int64)

    def lengths(self, lines):
        return self.offsets[lines + 1] - self.offsets[lines]


def test_a_reversed_split_reads_each_line_backwards_with_its_terminator_last():
    split = ReversedSplit(Split([np.array([5, 6, 7, 2]), np.array([8, 2])]))
    assert split.sentence(0).tolist() == [7, 6, 5, 2] and split.sentence(1).tolist() == [8, 2]
    assert split.lengths(np.array([0, 1])).tolist() == [4, 2] and len(split) == 2
    stream = ReversedIds(np.arange(10))
    assert [stream[a:b].tolist() for a, b in ((0, 3), (4, 10), (8, 20))] == [[9, 8, 7], [5, 4, 3, 2, 1, 0], [1, 0]]


def test_a_reversed_language_model_trains_samples_and_scores_backwards(tmp_path, capsys):
    data, valid, run = tmp_path / "lines.txt", tmp_path / "valid.txt", tmp_path / "rev"
    data.write_text("abcd\n" * 400)
    valid.write_text("abcd\n")
    code = main(["train", "lm", str(data), "--valid", str(valid), "--reverse", "--run", str(run), "--epochs", "1", "--batch-size", "8", *LM_SMALL])
    assert code == 0, capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["data"]["reverse"] is True
    capsys.readouterr()
    assert main(["score", str(run), "--json", "abcd"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reversed"] and [row["token"] for row in result["tokens"]] == ["d", "c", "b", "a", "<EOS>"]
    assert all(row["prob"] > 0.5 for row in result["tokens"])  # learned backwards: d first, then c, b, a
    assert main(["sample", str(run), "--num", "2", "--seed", "1", "--temperature", "0.3"]) == 0
    assert capsys.readouterr().out.split() == ["abcd", "(seen", "in", "training", "data)"] * 2  # printed in reading order
    assert main(["sample", str(run), "--num", "1", "--seed", "1", "--temperature", "0.3", "--prime", "cd"]) == 0
    assert capsys.readouterr().out.startswith("abcd")  # the prime is the line's end
