"""The task contract: a new task is one task class, one model class and one registry line each, with
nothing to edit in ``rnnkit.cli``. A toy regression task (a sequence of numbers -> their sum),
written here and nowhere else, trains through the real trainer from the real command line,
evaluates, and gets its ``rnnkit train toy`` options generated from its settings."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnkit import Recurrent
from rnnkit.cli import main
from rnnkit.data.batches import SentenceBatches
from rnnkit.data.text import fingerprint
from rnnkit.models import MODELS, register_model
from rnnkit.settings import positive_float, positive_int, setting
from rnnkit.tasks import TASKS, TaskBase, register_task
from rnnkit.training.trainer import Task


class ToySum(nn.Module):
    """x (T, B, 1) -> a recurrent layer -> its last real output -> a linear readout: ŷ (B,)."""

    kind = "toy-sum"

    def __init__(self, *, cell: str, hidden_size: int, num_layers: int = 1, engine: str = "reference", cell_options: dict | None = None):
        super().__init__()
        self.recurrent = Recurrent(cell, 1, hidden_size, num_layers=num_layers, engine=engine, **(cell_options or {}))
        self.readout = nn.Linear(hidden_size, 1)

    def forward(self, x, lengths):
        outputs, _ = self.recurrent(x, lengths)  # (T, B, n_a)
        last = outputs[lengths - 1, torch.arange(x.shape[1])]  # (B, n_a): a<T_b> of each sequence
        return self.readout(last).squeeze(-1)  # (B,)


@dataclass
class ToyData:
    train: list[str] = setting(default_factory=list, help="files of numbers, a sequence per line")
    batch_size: int = setting(4, type=positive_int, help="sequences per batch")
    scale: float = setting(1.0, type=positive_float, help="numbers are divided by this before the model reads them")
    # a plain dataclass field with help in its metadata is an option as well
    valid_every: int = field(default=4, metadata={"help": "every this-th line is a validation sequence"})


class ToyTask(TaskBase):
    kind = "toy"
    model_kind = ToySum.kind
    Data = ToyData
    model_defaults = dict(cell="gru", hidden_size=8, num_layers=1, engine="reference")
    summary = "the sum of a sequence of numbers (a test's task)"
    description = "Regress the sum of each line's numbers."
    examples = "examples:\n  rnnkit train toy numbers.txt --scale 10\n"

    def __init__(self, data: ToyData, splits: dict[str, list[list[float]]]):
        self.data, self.splits = data, splits

    @classmethod
    def data_config(cls, values: dict) -> ToyData:
        return ToyData(**values)

    @classmethod
    def prepare(cls, data: ToyData, seed: int = 0):
        lines = [line for path in data.train for line in Path(path).read_text().splitlines() if line.strip()]
        sequences = [[float(x) / data.scale for x in line.split()] for line in lines]
        splits = {
            "train": [s for i, s in enumerate(sequences) if i % data.valid_every],
            "valid": [s for i, s in enumerate(sequences) if not i % data.valid_every],
        }
        return cls(data, splits), {"train_files": list(data.train), "train_fingerprint": fingerprint(lines)}

    @classmethod
    def load(cls, run, data: ToyData):
        return cls(data, {})

    def model_config(self, values: dict) -> dict:
        return self._model_config({}, values)

    def default_run_name(self, model_config: dict) -> str:
        return f"toy-{model_config['cell']}"

    def save(self, run) -> None:
        pass  # nothing learned from the data besides the weights

    def _batches(self, split: str, train: bool) -> SentenceBatches:
        return SentenceBatches(self.splits[split], self.data.batch_size, shuffle=train, collate=self._collate)

    @staticmethod
    def _collate(sequences):
        lengths = torch.tensor([len(s) for s in sequences])  # (B,)
        x = nn.utils.rnn.pad_sequence([torch.tensor(s) for s in sequences])  # (T, B)
        return x.unsqueeze(-1), lengths, torch.tensor([sum(s) for s in sequences])  # (T, B, 1), (B,), (B,)

    def loss(self, model, batch, device):
        x, lengths, y = batch
        error = model(x.to(device), lengths.to(device)) - y.to(device)  # (B,)
        return (error**2).sum(), len(y)

    def evaluate(self, model, split: str, device) -> dict:
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in self._batches(split, False).iterate(0):
                loss, n = self.loss(model, batch, device)
                total, count = total + float(loss), count + n
        return {"loss": total / count, "count": count}

    def describe(self, result: dict) -> str:
        return f"squared error {result['loss']:.3f} ({result['count']} sequences)"


@pytest.fixture
def toy(monkeypatch):
    """The toy task and model in their registries for one test: one registry line each."""
    monkeypatch.setitem(TASKS, ToyTask.kind, None)  # removed again after the test
    monkeypatch.setitem(MODELS, ToySum.kind, MODELS.get(ToySum.kind))
    register_model(ToySum)
    register_task(ToyTask)
    return ToyTask


def numbers(path: Path, lines: int = 40) -> str:
    rows = [" ".join(str((7 * i + 3 * j) % 10) for j in range(1 + i % 5)) for i in range(lines)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_the_toy_task_implements_the_trainers_contract(toy, tmp_path):
    task, _ = ToyTask.prepare(ToyTask.data_config({"train": [numbers(tmp_path / "n.txt")]}))
    assert isinstance(task, Task)  # every method the trainer calls, the shared ones from TaskBase


def test_a_registered_task_gets_its_options_generated(toy, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", "toy", "--help"])
    assert exit.value.code == 0
    help = " ".join(capsys.readouterr().out.split())
    assert "Regress the sum" in help and "rnnkit train toy numbers.txt" in help
    # its data settings, with help and the default from the dataclass; its model defaults; training's
    assert "--scale SCALE numbers are divided by this before the model reads them (default: 1)" in help
    assert "--valid-every VALID_EVERY every this-th line is a validation sequence (default: 4)" in help
    assert "--hidden-size HIDDEN_SIZE units per direction (default: 8)" in help
    assert "--lr LR" in help and "--max-steps" in help
    assert "--embedding-size" not in help  # a model setting the toy does not take
    with pytest.raises(SystemExit) as exit:
        main(["train", "--help"])
    assert "toy" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit:  # the setting's type checks the value where it is parsed
        main(["train", "toy", "x.txt", "--scale", "0"])
    assert exit.value.code == 2 and "argument --scale: must be a finite number > 0" in capsys.readouterr().err


def test_the_toy_task_trains_and_evaluates_from_the_command_line(toy, tmp_path, capsys):
    data = numbers(tmp_path / "n.txt")
    run = tmp_path / "run"
    code = main(["train", "toy", data, "--scale", "10", "--hidden-size", "6", "--max-steps", "12", "--eval-every", "6",
                 "--lr", "0.01", "--no-progress", "--run", str(run)])
    out, err = capsys.readouterr()
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "toy" and config["data"]["scale"] == 10 and config["model"]["hidden_size"] == 6
    assert config["training"]["max_steps"] == 12
    assert "squared error" in err + out  # the task's describe(), from the trainer's evaluations
    metrics = (run / "metrics.csv").read_text().splitlines()
    assert len(metrics) > 1
    from rnnkit.runs import open_run

    task, model, _, device = open_run(run)
    task.splits = ToyTask.prepare(task.data)[0].splits
    result = task.evaluate(model, "valid", device)
    assert result["count"] == 10 and math.isfinite(result["loss"])


def test_a_config_file_value_for_a_toy_setting_is_checked_like_its_option(toy, tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"scale": -1}))
    code = main(["train", "toy", numbers(tmp_path / "n.txt"), "--config", str(tmp_path / "c.json"), "--run", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "c.json: scale: must be a finite number > 0" in err and not (tmp_path / "run").exists()
