"""A run directory: everything a trained model needs, every file written atomically.

    RUN/config.json           the resolved configuration (task, model, training, data, split)
    RUN/vocab*.json, ...      the task's artifacts (vocabulary, tokenizer settings, ...)
    RUN/best.safetensors      weights with the best validation loss
    RUN/last.safetensors      weights at the last checkpoint
    RUN/training_state.pt     optimizer, schedule, RNG states, step, data position: --resume
    RUN/metrics.csv           one row per logged training window and per evaluation
    RUN/loss_curve.png        training and validation loss (when matplotlib is installed)
    RUN/summary.json          final figures

Atomic: each file is written to a temporary name in the same directory, flushed, then renamed over
the old one, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file (mkstemp gives 0600)


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file("config.json").exists()

    # -- JSON and text ---------------------------------------------------------------------------
    def write_json(self, name: str, obj) -> None:
        atomic_write(self.file(name), (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    def read_json(self, name: str):
        path = self.file(name)
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; is {self.path} a complete rnnkit run?")
        return json.loads(path.read_text(encoding="utf-8"))

    def write_bytes(self, name: str, data: bytes) -> None:
        atomic_write(self.file(name), data)

    # -- weights -----------------------------------------------------------------------------------
    def save_weights(self, name: str, model: nn.Module) -> None:
        """Weights in safetensors (tied weights stored once)."""
        path = self.file(f"{name}.safetensors")
        self.path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, FILE_MODE)
        try:
            save_model(model, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load_weights(self, name: str, model: nn.Module) -> None:
        path = self.file(f"{name}.safetensors")
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; is {self.path} a complete rnnkit run?")
        device = next(model.parameters()).device
        missing, unexpected = load_model(model, path, strict=False, device=str(device))
        if missing or unexpected:
            raise ValueError(f"{path}: weights do not fit the model (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")

    # -- training state -----------------------------------------------------------------------------
    def save_state(self, state: dict) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(self.file("training_state.pt"), buffer.getvalue())

    def load_state(self) -> dict:
        path = self.file("training_state.pt")
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; nothing to resume")
        return torch.load(path, map_location="cpu", weights_only=False)


class MetricsLog:
    """metrics.csv, one row per record; on resume, rows past the checkpoint are dropped."""

    FIELDS = ["step", "epoch", "split", "loss", "perplexity", "lr", "tokens_per_s", "elapsed_s", "other"]

    def __init__(self, run: RunDir):
        self.path = run.file("metrics.csv")

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def truncate_after(self, step: int) -> None:
        kept = [row for row in self.rows() if int(row["step"]) <= step]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.FIELDS)
        writer.writeheader()
        writer.writerows(kept)
        atomic_write(self.path, buffer.getvalue().encode())

    def append(self, **row) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in self.FIELDS})
