"""Runs: start one (configuration -> data, model, run directory -> training), resume one, and open a
finished one for sampling, scoring and evaluation. Works for every task through two registries:
``rnnkit.tasks.TASKS`` and ``rnnkit.models.MODELS``.

A configuration is one flat dictionary (as on the command line or in a config file); its keys
belong to the task's data settings, the model or the trainer, and ``split_config`` sorts them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, fields
from pathlib import Path

import torch

from . import __version__
from .models import build_model
from .tasks import TASKS
from .training import RunDir, Trainer, TrainingConfig
from .training.distributed import barrier, setup
from .training.trainer import resolve_device

try:
    import tomllib
except ImportError:  # Python 3.10: JSON config files only
    tomllib = None

TRAINING_KEYS = {f.name for f in fields(TrainingConfig)}


def read_config_file(path: str | Path) -> dict:
    """A flat configuration from a TOML or JSON file; one-line errors name the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".json" and tomllib is None:
        raise ValueError(f"{path}: TOML config files need Python 3.11 or newer; use a .json file")
    try:
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, ValueError) as error:
        raise ValueError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a table of settings")
    return {key.replace("-", "_"): value for key, value in values.items()}


def split_config(task_kind: str, values: dict, source: str = "the configuration") -> tuple[dict, dict, dict]:
    """(data, model, training) settings from one flat dictionary; unknown keys are an error."""
    task = TASKS[task_kind]
    data_keys, model_keys = task.data_keys(), task.model_keys()
    data, model, training = {}, {}, {}
    for key, value in values.items():
        if key in data_keys:
            data[key] = value
        elif key in model_keys:
            model[key] = value
        elif key in TRAINING_KEYS:
            training[key] = value
        else:
            raise ValueError(f"{source}: unknown setting {key!r} for task {task_kind!r}")
    return data, model, training


def free_run_path(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... : the first that holds no run yet."""
    candidate, n = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def start(task_kind: str, values: dict, run_path: str | Path | None = None) -> tuple[RunDir, dict]:
    """Prepare the data and the model (every error surfaces before anything is written), then
    create the run directory, save the configuration and artifacts, and train."""
    shard = setup()  # under torchrun: rank 0 writes the run directory, the others train alongside
    data_values, model_values, training_values = split_config(task_kind, values)
    task_class = TASKS[task_kind]
    training = TrainingConfig.from_dict(training_values)
    task, split_record = task_class.prepare(task_class.data_config(data_values), seed=training.seed)
    model_config = task.model_config(model_values)
    torch.manual_seed(training.seed)
    model = build_model(task.model_kind, model_config)
    if run_path is None:
        run_path = free_run_path(Path("runs") / task.default_run_name(model_config))
    run = RunDir(run_path)
    if not shard.main:
        barrier(shard)  # wait for rank 0 to create the run
        return run, Trainer(task, model, training, run, shard).fit()
    if run.exists():
        raise FileExistsError(f"{run.path}: a run is already there; continue it with --resume or choose another --run")
    created = not run.path.exists()
    run.path.mkdir(parents=True, exist_ok=True)
    try:
        config = {
            "rnnkit": __version__,
            "task": task_kind,
            "data": task.data_dict(),
            "split": split_record,
            "model": {"kind": task.model_kind, **model_config},
            "training": asdict(training),
        }
        task.save(run)
        run.write_json("config.json", config)
    except BaseException:
        if created:
            shutil.rmtree(run.path, ignore_errors=True)  # nothing half-written
        raise
    print(f"run directory: {run.path}", flush=True)
    barrier(shard)
    summary = Trainer(task, model, training, run, shard).fit()
    return run, summary


def resume(run_path: str | Path, overrides: dict | None = None) -> tuple[RunDir, dict]:
    """Continue a run from its last checkpoint. ``overrides`` may change when to stop (epochs,
    max_steps, time_limit, stop_at_step, patience) and how to show progress; nothing else."""
    run = RunDir(run_path)
    config = run.read_json("config.json")
    allowed = {"epochs", "max_steps", "time_limit", "stop_at_step", "patience", "progress", "device", "sample_every", "log_every"}
    for key in overrides or {}:
        if key not in allowed:
            raise ValueError(f"--resume continues the run as configured; {key!r} cannot change (these can: {', '.join(sorted(allowed))})")
    # when to stop was this run's last invocation's business: a resume runs to the configured end
    training = TrainingConfig.from_dict({**config["training"], "stop_at_step": None, "time_limit": None, **(overrides or {})})
    task_class = TASKS[config["task"]]
    task, split_record = task_class.prepare(task_class.data_config(config["data"]), seed=training.seed)
    if split_record.get("train_fingerprint") != config["split"].get("train_fingerprint"):
        raise ValueError(f"{run.path}: the training data changed since the run started ({', '.join(config['split']['train_files'])})")
    model = build_model(config["model"]["kind"], {k: v for k, v in config["model"].items() if k != "kind"})
    return run, Trainer(task, model, training, run).fit(resume=True)


def open_run(run_path: str | Path, weights: str = "best", device: str = "auto"):
    """(task, model, config, device) of a trained run, for sampling, scoring and evaluation."""
    run = RunDir(run_path)
    if not run.path.is_dir():
        raise FileNotFoundError(f"{run.path}: no such run directory")
    config = run.read_json("config.json")
    task_class = TASKS[config["task"]]
    task = task_class.load(run, task_class.data_config(config["data"]))
    model = build_model(config["model"]["kind"], {k: v for k, v in config["model"].items() if k != "kind"})
    torch_device = resolve_device(device)
    model.to(torch_device)
    run.load_weights(weights, model)
    model.eval()
    return task, model, config, torch_device
