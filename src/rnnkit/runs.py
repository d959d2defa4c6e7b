"""Runs: start one (configuration -> data, model, run directory -> training), resume one, and open a
finished one for sampling, scoring and evaluation. Works for every task through two registries:
``rnnkit.tasks.TASKS`` and ``rnnkit.models.MODELS``.

A configuration is one flat dictionary (as on the command line or in a config file); its keys
belong to the task's data settings, the model or the trainer, and ``split_config`` sorts them.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import random
import shutil
import sys
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

import torch

from .version import __version__
from .data.textio import no_key_twice, read_text, split_lines
from .cells import CELLS, make_cell
from .errors import DataError, MissingDependencyError, UsageError
from .files import CheckpointError, check_weights_fit, dead_temporary, first_absent_folder, remove_parents_made, scratch, shell_path
from .models import build_model
from .models.registry import check_fits_in_memory
from .models.lm_features import check_recorded
from .settings import check_settings, list_of_ints, number_fits, refuse_unapplied
from .tasks import TASKS
from .tasks.base import TaskBase, as_path_list, given_settings
from .tasks.spec import MODEL_SETTINGS
from .tasks.music_spec import is_midi_folder
from .training import RunDir, Trainer, TrainingConfig
from .training.checkpoint import STATE, Checkpoints, test_point
from .training.optim import check_model_takes
from .training.trainer import TrainingDiverged
from .distributed import SINGLE, StandIn, barrier, broadcast, setup
from .training.trainer import resolve_device

try:
    import tomllib
except ImportError:  # Python 3.10: JSON config files only
    tomllib = None

TRAINING_KEYS = {f.name for f in fields(TrainingConfig)}


NULL_MEANS = {"clip": 0.0}  # config.json records --clip 0 (no clipping) as null, and clip's default is 1.0


def read_config_file(path: str | Path) -> dict:
    """A flat configuration from a TOML or JSON file; one-line errors name the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such config file")
    text = "\n".join(split_lines(read_text(path)))  # UTF-8, a BOM dropped, any line ends (TOML takes LF only)
    is_json = path.suffix.lower() == ".json"  # cfg.JSON too
    if not is_json and tomllib is None:
        raise UsageError(f"{path}: TOML config files need Python 3.11 or newer; use a .json file")
    try:
        values = json.loads(text, object_pairs_hook=no_key_twice) if is_json else tomllib.loads(text)
    except (json.JSONDecodeError, ValueError) as error:
        raise DataError(f"{path}: not valid {'JSON' if is_json else 'TOML'}: {str(error).splitlines()[0][:200]}") from None
    except RecursionError:  # [[[[...]]]] thousands deep: neither parser reads it
        raise DataError(f"{path}: not readable {'JSON' if is_json else 'TOML'}: nested too deeply") from None
    if not isinstance(values, dict):
        raise DataError(f"{path}: expected a table of settings")
    if {"task", "model", "data", "training"} <= values.keys():  # a run's own record, not a file of settings
        raise UsageError(f"{path}: a run's config.json (what the run was trained with), not a settings file; continue that run with "
                         f"rnnkit train {values.get('task')} --resume --run {shell_path(path.parent)}, or write the settings you want as a flat file")  # fmt: skip
    # null (JSON) for a setting: its default, as a run's own config.json writes settings that are off
    # (but those whose null there is not their default: NULL_MEANS)
    settings, seen = {}, {}  # hidden-size and hidden_size are one setting: given both, the later one won silently
    for key, value in values.items():
        name = key.replace("-", "_")
        if name in seen:
            raise UsageError(f"{path}: {seen[name]!r} and {key!r} name one setting, given twice; keep one")
        seen[name] = key
        if _holds_no_text(value):  # "\u0000" or a lone "\ud800" (JSON and TOML escapes): no file name or setting
            raise DataError(f"{path}: {key}: holds a NUL character or a lone surrogate, which no setting or file name can")
        if value is not None:
            settings[name] = value
        elif name in NULL_MEANS:
            settings[name] = NULL_MEANS[name]
    _refuse_paths_beside(path, settings)
    return settings


COMMAND_LINE_ONLY = ("run", "resume", "config")  # rnnkit train's own options, which no config file holds
CONFIG_PATHS = ("train", "source", "target", "valid", "test", "valid_source", "valid_target", "test_source", "test_target", "word_vectors")


def _refuse_paths_beside(config: Path, settings: dict) -> None:
    """Data paths in a config file are read from the current directory, as on the command line. A
    relative one that names no file here but one beside the config file was "no such file", naming
    neither the config file nor where the path is read from."""
    for key in CONFIG_PATHS:
        value = settings.get(key)
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, str) and one and one != "-" and not Path(one).is_absolute() and not Path(one).exists() and (config.parent / one).exists():
                raise UsageError(f"{config}: {key} {one!r}: no such file here; a config file's paths are read from the current directory "
                                 f"(as on the command line), and this one is beside {config.name}: give it as {str(config.parent / one)!r}")  # fmt: skip


def _holds_no_text(value) -> bool:
    """Whether a config value (strings inside lists and tables too) holds what is not text."""
    stack = [value]  # a stack, not recursion: a value nested hundreds deep is read by the parsers
    while stack:
        value = stack.pop()
        if isinstance(value, str) and ("\x00" in value or not value.isascii() and any("\ud800" <= c <= "\udfff" for c in value)):
            return True
        if isinstance(value, (list, dict)):
            stack.extend(value.values() if isinstance(value, dict) else value)
    return False


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
            section = f" (a [{key}] section: a config file is flat, its settings at the top level)" if isinstance(value, dict) else ""
            close = difflib.get_close_matches(key, [*data_keys, *model_keys, *TRAINING_KEYS], n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close and not section else ""
            if key.lower() in ("data", "files", "train_files") and "train" in data_keys and not section:  # the help's DATA
                hint = "; the training files (the command's DATA) are the setting 'train', a list of paths"
            elif key.lower() in COMMAND_LINE_ONLY:  # the run folder and --resume say what to do with a configuration, not what it is
                hint = f"; --{key.lower().replace('_', '-')} is given on the command line, not in a config file"
            raise UsageError(f"{source}: unknown setting {key!r} for task {task_kind!r}{section}{hint}")
    return data, model, training


def free_run_path(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... : the first that holds no run yet."""
    candidate, n = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _check_ready(task, model, shard=SINGLE) -> None:
    """Everything the first training step needs, tried before the run directory exists: the
    batches of an epoch are built (a data error such as every pair longer than ``max_length``
    surfaces here) and one batch's loss is computed, without gradients. Random states and the
    task's carried state are restored, so the training that follows is the same as without it."""
    if task.batches_per_epoch() < 1:
        raise DataError("no training batches: the training data is empty after reading it")
    carried = task.state_dict()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        python_state = random.getstate()
        try:
            batch = next(iter(task.train_batches(0, 0, shard)))  # this process's share (under torchrun: a stream's columns)
            was_training = model.training
            model.train()
            task.loss(model, batch.batch if isinstance(batch, StandIn) else batch, torch.device("cpu"))
            model.train(was_training)
        finally:
            random.setstate(python_state)
    task.load_state_dict(carried)


DEMO_MARK = "rnnkit-demo"  # rnnkit demo's own run folder, which the next demo replaces
DEMO_MARK_TEXT = b"made by rnnkit demo; rnnkit demo replaces this run\n"
RUN_MARKS = {".lock", DEMO_MARK}  # what rnnkit puts in a run folder before its config.json


def _foreign_entries(run: RunDir) -> list[str]:
    """The entries of an existing ``--run`` folder that are not known to be rnnkit's: all of them
    (but ``RUN_MARKS``) unless its config.json is an rnnkit run's. Starting over deletes a folder's
    entries, so a folder of the user's (a project with its own config.json, the training text) is
    never taken for a run that died before its first checkpoint."""
    if not run.path.is_dir():
        return []
    # a run killed while it wrote its first files leaves their temporaries: rnnkit's, as its lock
    entries = sorted(entry.name for entry in run.path.iterdir() if entry.name not in RUN_MARKS and not dead_temporary(entry.name, run.path))
    try:
        config = run.read_json("config.json") if run.exists() else None
    except (OSError, ValueError):
        config = None
    return [] if isinstance(config, dict) and {"rnnkit", "task", "training"} <= config.keys() else entries


def _empty(run: RunDir) -> None:
    """Delete every entry of the run directory but its lock (the process holds it)."""
    for entry in run.path.iterdir():
        if entry.name != ".lock":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _has_checkpoint(run: RunDir) -> bool:
    """Whether a resume of ``run`` starts from saved weights (a committed checkpoint, or an older
    run's files at the top), not from step 0 (``Trainer._restore`` decides the same)."""
    return bool(Checkpoints(run).committed()) or any(run.file(name).exists() for name in ("last.safetensors", STATE))


def _may_start_over(run: RunDir) -> bool:
    """A run directory that never reached its first checkpoint holds no weights: starting over
    in it loses nothing (``--resume`` would start from step 0 as well)."""
    return not _has_checkpoint(run) and not run.file("best.safetensors").exists()


def _training_elsewhere(run: RunDir) -> bool:
    """Whether another process holds the run directory's lock (``_locked``) now."""
    import fcntl

    try:
        handle = open(run.file(".lock"), "r")
    except OSError:  # no lock file: no process has started training there
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


@contextmanager
def _locked(run: RunDir):
    """One process trains in a run directory at a time: an exclusive lock on RUN/.lock (released
    by the system when the process ends, however it ends)."""
    import fcntl

    run.path.mkdir(parents=True, exist_ok=True)
    with open(run.file(".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{run.path}: another rnnkit process is training in this run directory") from None
        yield


def _say_held_out_in_training(task_kind: str, data_values: dict) -> None:
    """A note when a validation or test file is a training file (however named: a link is the same
    file): its scores measure text the model trains on. A language model's corpus says it itself."""
    if task_kind == "lm":
        return
    from .data.textio import say_held_out_in_training

    held_out = [(f"--{key.replace('_', '-')}", path) for key in ("valid", "test", "valid_source", "test_source")
                if isinstance(path := data_values.get(key), str) and path and Path(path).exists()
                and not (task_kind == "music" and not is_midi_folder(path))]  # a music file's: said by the task (its --valid may read its valid split)
    say_held_out_in_training(held_out, [p for key in ("train", "source") for p in as_path_list(data_values.get(key) or "")])


# settings that act on the validation score (name -> the value that does; None: any value given)
ON_VALIDATION = {"patience": None, "schedule": "plateau", "optimizer": "nt-asgd", "eval_beam": None, "eval_sentences": None, "eval_every": None}


def _refuse_without_validation(task, given: dict) -> None:
    """A ``UsageError`` for a setting ``given`` (by the user, or a resume's override) that acts on the
    validation score when the run has no validation data: it would do nothing (no early stop, the
    rate never lowered, no averaging), while config.json recorded it as if it shaped the run."""
    if task.has_split("valid"):
        return
    for name, acting in ON_VALIDATION.items():
        value = given.get(name)
        if value is not None and (acting is None or value == acting):
            shown = f"--{name.replace('_', '-')}" + ("" if acting is None else f" {acting}")
            raise UsageError(f"{shown} acts on the validation score, and this run has no validation data: it would do nothing; "
                             "give validation data (--valid FILE; a translation's --valid-source and --valid-target; a language model's "
                             "--split of its training file) or leave it out")  # fmt: skip


def _refuse_samples_of(task_class, task_kind: str, sample_every) -> None:
    """``--sample-every`` for a task that prints no samples while it trains (it reports none): refused
    as the other settings that would do nothing are, on a fresh run and on a resume."""
    if sample_every and task_class.report is TaskBase.report:
        raise UsageError(f"--sample-every {sample_every}: a {task_kind} run prints no samples while it trains (language models do); leave it out")


def start(task_kind: str, values: dict, run_path: str | Path | None = None, source: str = "the configuration") -> tuple[RunDir, dict]:
    """Prepare the data and the model and try one batch (every error that the data and the
    options can show surfaces before anything is written), then create the run directory, save
    the configuration and artifacts, and train. A failure before the first checkpoint removes the
    directory this call created; after it, the run is left to ``resume``. ``source`` names where
    ``values`` came from in errors (the config file: the command line's options are known)."""
    shard = setup()  # under torchrun: rank 0 writes the run directory, the others train alongside
    data_values, model_values, training_values = split_config(task_kind, values, source)
    task_class = TASKS[task_kind]
    training = TrainingConfig.from_dict(training_values)
    training.check()
    check_pretrained_runs(data_values)
    task, split_record = task_class.prepare(given_settings(task_class.data_config(data_values), data_values), seed=training.seed)
    _say_held_out_in_training(task_kind, data_values)
    split_record["held_out_digests"] = held_out_digests(data_values)
    model_config = task.model_config(model_values)
    refuse_unapplied(task.data, data_values)  # after prepare: a prepared corpus sets the data's settings
    refuse_unapplied(training, training_values)
    _refuse_samples_of(type(task), task_kind, training_values.get("sample_every"))
    refuse_unapplied(model_config, model_values, MODEL_SETTINGS)
    _refuse_without_validation(task, {**data_values, **training_values})
    check_fits_in_memory(task.model_kind, model_config)  # before any weight is allocated
    if training.schedule_by_time and training.time_limit is None:  # the trainer's own refusals, before a run directory exists
        raise UsageError("--schedule-by-time needs --time-limit: the schedule runs over that time")
    torch.manual_seed(training.seed)
    model = build_model(task.model_kind, model_config)
    check_model_takes(model, training.discriminative_lr, training.gradual_unfreezing)
    task.initialise(model)  # pre-trained rows or layers the data settings name
    task.before_training(training.progress)
    _check_ready(task, model, shard)
    if run_path is None:  # rank 0's choice on every process: each one's own could differ once rank 0 has made its folder
        run_path = broadcast(str(free_run_path(Path("runs") / task.default_run_name(model_config))) if shard.main else None, shard)
    run = RunDir(run_path)
    if not shard.main:
        barrier(shard)  # wait for rank 0 to create the run
        return run, Trainer(task, model, training, run, shard).fit()
    outer = next((parent for parent in run.path.resolve().parents if (parent / "config.json").is_file() and (parent / "checkpoints").is_dir()), None)
    if outer is not None:  # deleting or resuming that run would take this one with it
        raise UsageError(f"{run.path}: inside the run {outer}; give --run a folder outside any run")
    if _training_elsewhere(run):  # a second `train --run R` at once sees the first one's files being written
        raise UsageError(f"{run.path}: another rnnkit process is training in this run directory")
    foreign = _foreign_entries(run)
    if foreign:
        shown = ", ".join(foreign[:4]) + (", ..." if len(foreign) > 4 else "")
        raise UsageError(f"{run.path}: a folder that is not an rnnkit run holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} ({shown}); give --run a new or empty folder")
    if run.exists() and not _may_start_over(run):
        raise UsageError(f"{run.path}: a run is already there; continue it with --resume, or choose another --run (or delete {run.path})")
    created = not run.path.exists()
    made = first_absent_folder(run.path)
    with _locked(run):
        if run.exists():  # killed before its first checkpoint: nothing to lose
            print(f"{run.path}: the run there never reached its first checkpoint; starting it over", file=sys.stderr, flush=True)
            _empty(run)
        trainer = None
        try:
            config = {
                "rnnkit": __version__,
                "task": task_kind,
                "started_in": os.getcwd(),  # where the data's relative paths start (a resume elsewhere is told)
                "data": task.data_dict(),
                "split": split_record,
                "model": {"kind": task.model_kind, **model_config},
                "training": asdict(training),
            }
            # config.json first: it makes the folder an rnnkit run, which the same command starts over
            # and --resume completes (it writes the vocabularies again) should a kill come next
            run.write_json("config.json", config)
            test_point("run config written")
            task.save(run)
            test_point("run directory written")
            print(f"run directory: {run.path}", flush=True)
            barrier(shard)
            trainer = Trainer(task, model, training, run, shard, _trained_with(config))
            summary = trainer.fit()
        except BaseException as error:
            if isinstance(error, (KeyboardInterrupt, TrainingDiverged)) and run.exists():
                raise  # the run is left as it is: resumable (from step 0 if it has no checkpoint)
            committed = trainer is not None and trainer.checkpoints.committed() != []
            if not created and not committed:  # a folder that was there, empty or a run started over: what this call wrote goes
                _empty(run)  # (a config.json and vocabularies of a run that never trained: half a run, in the user's folder)
            elif created and not committed:
                shutil.rmtree(run.path, ignore_errors=True)  # nothing half-written
                remove_parents_made(run.path, made)
            raise
    return run, summary


# settings a resume may change: when to stop, how often to evaluate and save, what to show, where to run
RESUMABLE = {
    "epochs", "max_steps", "time_limit", "stop_at_step", "patience", "progress", "device", "sample_every", "log_every",
    "eval_every", "save_every_steps", "save_every_minutes", "keep_checkpoints",
    # what a run stopped by a loss that is not finite needs to go on, and what a GPU run resumed on a CPU needs
    "skip_non_finite", "clip", "precision",
}  # fmt: skip
LASTING = RESUMABLE - {"stop_at_step", "progress", "device"}  # recorded in config.json for later resumes
TRAINED_WITH = ("data", "model", "training")  # the sections of config.json each checkpoint records (Checkpoints.trained_with)
# the data settings that say where files are, which config.json may say otherwise once they moved (a run copied
# with its training file): a resume checks what they hold (the training data's fingerprint, the held-out files'
# digests, the --lm-features models' weights), and reads no --word-vectors or --init-from from a checkpoint
MOVED = (*CONFIG_PATHS, "lm_features", "init_from")


def resume(run_path: str | Path, overrides: dict | None = None, task_kind: str | None = None) -> tuple[RunDir, dict]:
    """Continue a run from its newest intact checkpoint (or from step 0 when it was stopped
    before its first one). ``overrides`` may change the settings in ``RESUMABLE`` and nothing
    else; those that outlast this call (epochs, max_steps, patience, frequencies) are recorded
    in config.json, so a later resume continues the same plan. ``task_kind``: the task the caller
    means to train (``rnnkit train tagger --resume``); a run of another task is a ``UsageError``.
    See docs/runs.md."""
    run = RunDir(run_path)
    if not run.path.is_dir():
        raise UsageError(f"{run.path}: {'not a run directory (a file)' if run.path.exists() else 'no such run directory'}")
    if not run.exists() and not _foreign_entries(run):  # only rnnkit's lock, and temporaries of a killed write
        raise UsageError(f"{run.path}: the run was stopped before it wrote its settings (config.json), so there is nothing to resume; "
                         "run its training command again with this --run (it takes the folder)")  # fmt: skip
    config = run_config(run, ("task", "model", "data", "split", "training"))
    if task_kind is not None and config["task"] != task_kind:
        raise UsageError(f"{run.path}: a {config['task']} run; resume it with rnnkit train {config['task']} --resume --run {shell_path(run.path)}")
    check_recorded_model(run, config["model"])
    overrides = dict(overrides or {})
    # a setting repeated as the run has it changes nothing: compared as recorded (cell settings inside
    # cell_options, --clip 0 as no clipping), so the run's own command with --resume added is taken
    with reading_run(run):
        model = dict(config["model"])
        options = model.pop("cell_options", None) or {}
        if isinstance(model.get("cell"), str) and model["cell"] in CELLS:  # with the cell's defaults: --no-peepholes restated is no change
            options = {**make_cell(model["cell"], 1, 1, **options).options(), **options}
        recorded = {**model, **options, **config["training"]}
        as_recorded = {**overrides, **{key: value for key, value in asdict(TrainingConfig.from_dict(overrides)).items() if key in overrides}}
    for key in list(overrides):
        if key not in RESUMABLE and key in recorded and json.loads(json.dumps(as_recorded[key])) == recorded[key]:
            del overrides[key]
    _refuse_samples_of(TASKS[config["task"]], config["task"], overrides.get("sample_every"))
    for key in overrides:
        if key not in RESUMABLE:
            raise UsageError(f"--resume continues the run as configured; {key!r} cannot change (these can: {', '.join(sorted(RESUMABLE))})")
    # a run with a checkpoint resumes from its weights: the sources its initial weights came from
    # (--word-vectors, --init-from) are not read again, and may have moved or changed since
    task_class = TASKS[config["task"]]
    from_checkpoint = _has_checkpoint(run)
    read = {**config, "data": {key: None if from_checkpoint and key in task_class.initialised_from else value for key, value in config["data"].items()}}
    # a stop at a step was the last invocation's business; the time limit (seconds over all resumes)
    # is the run's, so that a run killed before it ends where it would have (the trainer lets a
    # spent one go, for a resume meant to train on)
    with reading_run(run), recorded_settings(run):
        training = TrainingConfig.from_dict({**config["training"], "stop_at_step": None, **overrides})
        data = recorded_data(task_class, read)
    try:
        training.check()
    except UsageError:
        with recorded_settings(run):  # the run's own setting at fault, not one given now: said as config.json's
            TrainingConfig.from_dict({**config["training"], "stop_at_step": None}).check()
        raise
    _check_started_here(read)
    from_stdin = any("-" in as_path_list(config["data"].get(key) or "") for key in ("train", "source", "target", *HELD_OUT_KEYS))
    again = f"{run.path}: trained from standard input; to resume it, pipe the same data in again (… | rnnkit train {config['task']} --resume --run {shell_path(run.path)})"
    if from_stdin and (sys.stdin is None or sys.stdin.isatty()):
        raise UsageError(again)
    check_pretrained_runs(read["data"])
    own = task_class.resumed_data(run.path, config.get("split") or {}) if from_checkpoint else {}
    if own:  # the run's own files are then its source: checked against its checkpoint, as no data can write them again
        try:
            Checkpoints(run).check_run_files()
        except CheckpointError as error:
            started = ", ".join(f"--{key.replace('_', '-')} {config['data'].get(key)}" for key in own)
            raise CheckpointError(f"{str(error).split('; resume the run')[0]}; it came from {started} at the run's start, which a resume "
                                  "does not read again, so it cannot be written again: put the file back, or train a new run") from None
    for key, value in own.items():
        setattr(data, key, value)  # after the checks above
    given_settings(data, ())  # none given now: --resume changes no data setting (and no start is announced again)
    try:
        with recorded_settings(run):  # the data settings are the run's own (--resume changes none of them)
            task, split_record = task_class.prepare(data, seed=training.seed)
    except DataError as error:
        if from_stdin and str(error).startswith("<stdin>: "):  # of the whole input, no line: empty (/dev/null under cron or nohup)
            raise UsageError(again) from None
        raise
    check_recorded(task.lm_features, config)
    _refuse_without_validation(task, overrides)
    if split_record.get("train_fingerprint") != config["split"].get("train_fingerprint"):
        raise DataError(f"{run.path}: the training data changed since the run started ({', '.join(config['split'].get('train_files', []))})")
    recorded = config["split"].get("held_out_digests")  # runs before it was recorded: not checked
    if isinstance(recorded, dict):
        now = held_out_digests(config["data"])
        changed = [f"--{key.replace('_', '-')} {config['data'][key]}" for key in sorted(set(recorded) | set(now)) if recorded.get(key) != now.get(key)]
        if changed:  # a best score over two validation sets, a test figure of another file
            raise DataError(f"{run.path}: the held-out data changed since the run started ({', '.join(changed)}): its scores would not compare; "
                            "put the files back, or train a new run")  # fmt: skip
    with reading_run(run), recorded_settings(run):
        model_config = engine_here(run, config["model"], resolve_device(training.device))
        torch.manual_seed(training.seed)  # the initial weights, should the run have no checkpoint yet: drawn as start drew them
        model = build_model(config["model"]["kind"], model_config)
    _check_as_trained(run, config)  # after each recorded setting is checked by itself (an unknown engine is said as such)
    if not from_checkpoint:
        _initialise_again(run, task, model, config)
    task.before_training(training.progress)  # before the trainer's clock restarts, as in start
    checkpoints = Checkpoints(run).committed()
    step_before = checkpoints[-1].step if checkpoints else 0
    _check_not_behind(run, task, training, overrides, step_before)
    shard = setup()  # under torchrun: rank 0 checks and writes the run's files, the others train alongside
    if not shard.main:
        barrier(shard)  # wait for rank 0's rewriting of the run's files
        return run, Trainer(task, model, training, run, shard).fit(resume=True, limit_given="time_limit" in overrides)
    with _locked(run):
        _rewrite_damaged_files(run, task)
        # a demo run the user trains on is theirs (the next demo leaves it), and the settings that
        # outlast this call are recorded before training, for the resume after an interrupt: once the
        # trainer has refused what it refuses, so that a resume refused, or with nothing to train (a
        # finished run: the settings never shaped it, docs/runs.md), leaves both as they were
        was_demo, recorded = run.file(DEMO_MARK).exists(), run.file("config.json").read_bytes()
        lasting = {k: v for k, v in overrides.items() if k in LASTING and config["training"].get(k) != v}

        def accepted() -> None:
            run.file(DEMO_MARK).unlink(missing_ok=True)
            if lasting:
                config["training"].update(lasting)
                run.write_json("config.json", config)

        barrier(shard)
        trainer = Trainer(task, model, training, run, shard, _trained_with(config))  # (accepted's updates too)
        try:
            summary = trainer.fit(resume=True, limit_given="time_limit" in overrides, accepted=accepted)
        except TrainingDiverged:
            raise  # it trained, with the settings given: they stay recorded
        except Exception:  # a data or disk error while it trained: unless a checkpoint was committed since, nothing trained
            committed = Checkpoints(run).committed()
            if (committed[-1].step if committed else 0) <= step_before:  # < where a damaged newest one was set aside
                if run.file("config.json").read_bytes() != recorded:
                    run.write_bytes("config.json", recorded)
                if was_demo and not run.file(DEMO_MARK).exists():
                    run.write_bytes(DEMO_MARK, DEMO_MARK_TEXT)
            raise
        if was_demo and summary.get("steps") == step_before and not run.file(DEMO_MARK).exists():  # nothing trained: still the demo's
            run.write_bytes(DEMO_MARK, DEMO_MARK_TEXT)
        return run, summary


def _initialise_again(run: RunDir, task, model, config: dict) -> None:
    """The initial weights of a run resumed before its first checkpoint, from the sources its data
    settings name, as start set them: a source replaced since by one of other sizes (vectors of
    another dimension, a language model of other layers, a classifier of another vocabulary) no
    longer fits the model config.json records, and is one line naming it, not a shape error from
    inside torch, nor a vocabulary of more words than the model has rows."""
    data = config["data"]
    try:
        changed = _changed_sizes(run, task, config)
        if changed:
            key, held, trained = changed[0]
            raise ValueError(f"{key} {held:,}, not {trained:,}")
        task.initialise(model)
    except (DataError, UsageError):
        raise
    except (ValueError, RuntimeError) as error:
        sources = ", ".join(f"--{key.replace('_', '-')} {data[key]}" for key in task.initialised_from if data.get(key))
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{run.path}: has no checkpoint yet, so it starts again from {sources}, which no longer fits the model it was "
                        f"started with ({first[:120]}); put back what the run started from, or train a new run") from None


def _rewrite_damaged_files(run: RunDir, task) -> None:
    """The run's vocabularies, tokenizers, tags and labels (and a language model's seen.u64) written
    again from the data just read, which the resume trains with (the same data: its fingerprint was
    checked), so that what the run's files say is what its weights are trained on. Only a missing,
    damaged or edited file changes, and each one that did is said: a resume once left them so and
    finished "successfully" with a run no verb could open, or one that answered with swapped labels."""
    names = [*task.artifact_files(), "seen.u64"]
    with scratch("rewrite") as directory:  # written aside and compared: a file that is right is not touched (a finished
        task.save(RunDir(directory))  # run's resume writes nothing, docs/runs.md; a read-only run stays readable)
        written = {name: (directory / name).read_bytes() for name in names if (directory / name).is_file()}
    changed = [name for name, data in written.items() if not run.file(name).is_file() or run.file(name).read_bytes() != data]
    for name in changed:
        run.write_bytes(name, written[name])
    if changed:
        print(f"rnnkit: note: {run.path}: {', '.join(changed)} did not hold what the training data gives (missing, damaged or "
              f"edited); written again from it", file=sys.stderr, flush=True)


HELD_OUT_KEYS = ("valid", "test", "valid_source", "valid_target", "test_source", "test_target")


def held_out_digests(data: dict) -> dict[str, str]:
    """SHA-256 (16 hex digits) of each validation and test file (a MIDI folder: of its files, in
    order) the data settings name: a resume checks them as it checks the training data's
    fingerprint. Standard input and missing paths have none (a missing one fails where it is read)."""
    digests = {}
    for key in HELD_OUT_KEYS:
        value = data.get(key)
        if not isinstance(value, str) or not value or value == "-" or not Path(value).exists():
            continue
        path = Path(value)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        digest = hashlib.sha256()
        for file in files:
            digest.update(str(file.relative_to(path) if path.is_dir() else "").encode() + b"\0")
            with open(file, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        digests[key] = digest.hexdigest()[:16]
    return digests


def _trained_with(config: dict) -> dict:
    """What each checkpoint records of config.json as the settings its weights were trained with."""
    return {section: config[section] for section in TRAINED_WITH}


def _check_as_trained(run: RunDir, config: dict, sections: tuple[str, ...] = TRAINED_WITH,
                      use: str = "a resume continues the run as it was trained") -> None:
    """config.json's ``sections`` against the settings the newest checkpoint's weights were trained
    with: one edited by hand that a resume may not change (the batch size, the seed, the dropout) was
    used without a word, where the same change on the command line is refused; a reading verb
    (``open_run``, sections data and model) read text with another tokenization than the weights
    learnt. The settings a resume may change (``RESUMABLE``, which a resume records there itself) are
    not compared, nor the data's paths (``MOVED``). ``use``: why the settings must match, said."""
    trained = Checkpoints(run).trained_with()
    changed = []
    for section in sections if trained is not None else ():
        now, then = config.get(section), trained.get(section)
        if not isinstance(now, dict) or not isinstance(then, dict):
            continue
        for key in [key for key in then if key not in now] + list(now):
            if not (section == "training" and key in RESUMABLE or section == "data" and key in MOVED) and now.get(key) != then.get(key):
                changed.append(f"{key} is {json.dumps(now.get(key))}, but the checkpoint was trained with {json.dumps(then.get(key))}")
    if changed:
        raise DataError(f"{run.file('config.json')}: {'; '.join(changed)}: {use}; put back what it was trained with (other settings are a new run)")


def _check_not_behind(run: RunDir, task, training: TrainingConfig, overrides: dict, step: int) -> None:
    """Refuse an ``--epochs`` or ``--max-steps`` given on resume that ends before ``step``, the step
    the run has reached (its newest checkpoint's): it would mark the run finished with more
    training in its weights than it says."""
    given = [key for key in ("epochs", "max_steps") if key in overrides]
    if not given or not step:
        return
    total = training.max_steps if training.max_steps is not None else task.batches_per_epoch() * training.epochs
    if total < step:
        option = "--max-steps" if training.max_steps is not None else "--epochs"
        value = training.max_steps if training.max_steps is not None else training.epochs
        raise UsageError(f"{run.path}: the run is at step {step:,} already; {option} {value} ends at step {total:,}, before it: give a larger {option}")


def _check_started_here(config: dict) -> None:
    """A run's data paths are as its training command gave them, relative to the folder it started
    in. A resume from another folder, where such a path names no file but does from there, is a
    one-line ``UsageError`` saying where to resume from (not the reader's bare "no such file")."""
    started = config.get("started_in")
    if not isinstance(started, str) or not started or Path(started).resolve() == Path.cwd().resolve():
        return
    for value in config["data"].values():
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, str) and path and not Path(path).is_absolute() and not Path(path).exists() and (Path(started) / path).exists():
                raise UsageError(f"{path}: no such file here; the run's data paths are relative to {started}, where its training started: resume from there")


def run_config(run: RunDir, sections: tuple[str, ...]) -> dict:
    """``run``'s config.json, holding each of ``sections``; else a one-line ``DataError`` (not JSON,
    or a section missing: a damaged or partly written run)."""
    config = run.read_json("config.json")  # a one-line DataError when it is not JSON
    missing = [name for name in sections if not isinstance(config, dict) or name not in config]
    if missing:
        raise DataError(f"{run.file('config.json')}: damaged (no {', '.join(repr(m) for m in missing)} section); is {run.path} a complete rnnkit run?")
    wrong = [name for name in sections if not isinstance(config[name], str if name == "task" else dict)]
    if wrong or ("task" in sections and config["task"] not in TASKS):
        what = f"{', '.join(repr(w) for w in wrong)} of the wrong type" if wrong else f"an unknown task {str(config['task'])[:40]!r}"
        raise DataError(f"{run.file('config.json')}: {what}; is {run.path} a complete rnnkit run?")
    return config


@contextmanager
def reading_run(run: RunDir):
    """Reading a run's own files (tokenizer, vocabularies, tags, labels, the model's settings): a
    file edited or damaged into the wrong shape (``{}`` for a list, a number for a name) is one
    ``DataError`` line naming the run, not a KeyError from deep inside a loader."""
    try:
        yield
    except (KeyError, TypeError, IndexError, AttributeError) as error:
        raise DataError(f"{run.path}: a file of the run has the wrong contents ({type(error).__name__}: {str(error)[:80]}); "
                        f"is it a complete rnnkit run?") from None


@contextmanager
def recorded_settings(run: RunDir):
    """Settings read from a run's config.json: one that is unknown or out of range there (edited by
    hand, or written by a newer rnnkit) is one ``DataError`` line naming that file, where the
    setting's own error read as if the user had typed a bad option."""
    try:
        yield
    except (DataError, MissingDependencyError):  # a file's own error, or a library to install: no setting at fault
        raise
    except UsageError as error:
        raise DataError(f"{run.file('config.json')}: {error}") from None


def recorded_data(task_class, config: dict):
    """The data configuration a run's config.json records, checked as the command line checks the
    options (a level, scheme or representation of no such name; ``"false"`` for a switch): called
    under ``recorded_settings``, its errors name config.json (a bad level was a KeyError on resume)."""
    data = task_class.data_config(config["data"])
    check_settings(data, "data setting")
    return data


def check_pretrained_runs(data: dict) -> None:
    """The runs that data settings name (``--lm-features``; ``--init-from``, a classifier's too): their
    best weights checked against their own checkpoints' manifests before a task reads them (here, in
    the layer that knows checkpoints), so that a model zeroed or edited after its training is one
    line naming it, not states or an encoder of garbage, silently."""
    for option, key in (("--lm-features", "lm_features"), ("--init-from", "init_from")):
        value = data.get(key)
        for path in [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else []:
            if RunDir(path).exists():  # no run there: the task's reader says so
                checkpoints = Checkpoints(RunDir(path))
                try:
                    checkpoints.check_published("best.safetensors")
                    checkpoints.check_run_files()
                except CheckpointError as error:
                    raise CheckpointError(f"{option} {path}: {error}") from None


def check_recorded_model(run: RunDir, model: dict) -> None:
    """The model settings a run's config.json records, checked as their options check them (a
    switch as true or false, a size as a whole number, the cell's options as a table), so that an
    edit is one line naming config.json: ``"crf": "yes"`` was read as true, ``"cell_options": "x"``
    ended in a traceback, ``"head_sizes": "16"`` in a message naming no file."""
    where = run.file("config.json")
    options = model.get("cell_options")
    if options is not None and not isinstance(options, dict):
        raise DataError(f"{where}: model cell_options: must be a table of the cell's options, got {options!r}")
    for key in SIZES:  # the sizes of the vocabularies and label sets, which no option sets
        if key in model and (type(model[key]) is not int or model[key] < 1):
            raise DataError(f"{where}: model {key}: must be a whole number >= 1, got {model[key]!r}")
    for key, value in [*model.items(), *(options or {}).items()]:
        parse, choices = MODEL_SETTINGS.get(key, {}).get("type"), MODEL_SETTINGS.get(key, {}).get("choices")
        choices = choices() if callable(choices) else choices
        if choices is not None and value is not None and (not isinstance(value, str) or value not in choices):  # ["x"]: unhashable further on
            raise DataError(f"{where}: model {key}: must be one of {', '.join(choices)}, got {value!r}")
        if parse is None or value is None:
            continue
        if parse is bool:
            if not isinstance(value, bool):  # "yes" in a JSON file is true to Python
                raise DataError(f"{where}: model {key}: must be true or false, got {value!r}")
        elif parse is list_of_ints:
            if not isinstance(value, list) or not all(type(one) is int and one >= 1 for one in value):
                raise DataError(f"{where}: model {key}: must be a list of whole numbers >= 1, got {value!r}")
        elif getattr(parse, "kind", None) is not None and not number_fits(parse, value):
            raise DataError(f"{where}: model {key}: must be {parse.what}, got {value!r}")


SIZES = ("vocab_size", "num_tags", "num_classes", "char_vocab_size", "source_vocab_size", "target_vocab_size")


def check_sizes(run: RunDir, task, config: dict) -> None:
    """The run's vocabularies, tags and labels have the sizes its weights were trained with: a
    labels.json one label short would otherwise drop a class from every answer, silently."""
    changed = _changed_sizes(run, task, config)  # first, as ever: an error of the files' own sizes comes before the checks below
    level, lowercase = config.get("data", {}).get("level"), config.get("data", {}).get("lowercase")
    for name, attribute in type(task).tokenizers.items():
        why = getattr(task, attribute).disagreement(level, lowercase)
        if why:
            raise DataError(f"{run.file(name)}: {why}: the run's files do not belong together")
    for name, attribute in type(task).names.items():  # the order too: swapped labels answer every text with the wrong name
        recorded, held = config.get("split", {}).get(attribute), getattr(task, attribute, None)
        if isinstance(recorded, list) and held is not None and list(held) != recorded:
            raise DataError(f"{run.file(name)}: its {attribute} differ from those config.json records (in their order, which the "
                            "weights' outputs follow): the run's files do not belong together")
    for key, held, trained in changed[:1]:
        raise DataError(f"{run.path}: its files hold {held:,} entries for {key} but its weights were trained with "
                        f"{trained:,}: the run's files do not belong together")


def _changed_sizes(run: RunDir, task, config: dict) -> list[tuple[str, int, int]]:
    """(size, what the task's files give, what config.json's model records) for each of ``SIZES`` that differ."""
    with reading_run(run):
        held = task.model_config({})
    return [(key, held[key], config["model"][key]) for key in SIZES if key in held and key in config["model"] and held[key] != config["model"][key]]


def engine_here(run: RunDir, model_config: dict, device: torch.device) -> dict:
    """The model settings of a run (without its kind) to build it on ``device``: its recorded engine,
    or ``auto`` where that one cannot run (``--engine triton``, trained on a GPU, opened or resumed
    on a CPU), with a note; every engine computes what the reference cells do, so the run's results
    stay its own (and its arithmetic a device's, as any move between devices makes it)."""
    from .cells import make_cell
    from .engines import engine_named, engines_for

    settings = {k: v for k, v in model_config.items() if k != "kind"}
    name = settings.get("engine", "auto")
    if name != "auto":
        with recorded_settings(run):
            engine_named(name)  # an engine of no name at all is no engine that "cannot run here"
    if name == "auto" or not isinstance(settings.get("cell"), str):
        return settings
    cell = make_cell(settings["cell"], 1, 1, **(settings.get("cell_options") or {}))
    if name not in engines_for(cell, device):
        print(f"rnnkit: note: {run.path} was trained with --engine {name}, which cannot run here ({device.type}): "
              "it runs on the engine auto picks, equal to it by construction", file=sys.stderr, flush=True)  # fmt: skip
        settings["engine"] = "auto"
    return settings


def open_run(run_path: str | Path, weights: str = "best", device: str = "auto"):
    """(task, model, config, device) of a trained run, for sampling, scoring and evaluation."""
    run = RunDir(run_path)
    if not run.path.is_dir():
        raise FileNotFoundError(f"{run.path}: {'not a run directory (a file)' if run.path.exists() else 'no such run directory'}")
    config = run_config(run, ("task", "model", "data"))
    task_class = TASKS[config["task"]]
    check_recorded_model(run, config["model"])
    # the runs read at every use (--lm-features); those copied into its weights at its start (--init-from) are no concern of a trained run
    check_pretrained_runs({key: value for key, value in config["data"].items() if key not in task_class.initialised_from})
    Checkpoints(run).check_run_files()
    with reading_run(run), recorded_settings(run):
        task = task_class.load(run, recorded_data(task_class, config))
    check_recorded(task.lm_features, config)
    check_sizes(run, task, config)
    torch_device = resolve_device(device)
    weights_file = run.file(f"{weights}.safetensors")
    with reading_run(run), recorded_settings(run):
        settings = engine_here(run, config["model"], torch_device)
        with torch.device("meta"):  # the sizes config.json gives, against the weights' before any is allocated
            shapes = build_model(config["model"]["kind"], settings)
    # after each recorded setting is checked by itself (an unknown level is said as such), before the weights' sizes
    _check_as_trained(run, config, ("data", "model"), "the run's weights are read with the settings they were trained with")
    if weights_file.exists():
        check_weights_fit(weights_file, shapes)
    with reading_run(run), recorded_settings(run):
        model = build_model(config["model"]["kind"], settings)
    model.to(torch_device)
    Checkpoints(run).check_published(weights_file.name)
    run.load_weights(weights, model)
    model.eval()
    return task, model, config, torch_device
