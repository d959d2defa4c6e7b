"""A run directory, and checkpoints that a kill at any moment leaves either whole or absent.

    RUN/config.json           the resolved configuration (task, model, training, data, split)
    RUN/vocab*.json, ...      the task's artifacts (vocabulary, tokenizer settings, ...)
    RUN/checkpoints/          the newest committed checkpoints (two by default), one directory each:
        000007-step-000120/   serial number (7th checkpoint of the run) and training step
            last.safetensors      the weights being trained
            best.safetensors      the weights with the best validation criterion so far
            ema.safetensors       the average of the weights (--ema; nt-asgd once averaging started)
            training_state.pt     optimizer, schedule, random states, step, data position, metrics
                                  cursor: tensors and plain values only (torch.load weights_only=True)
            manifest.json         size and SHA-256 of each file above, the settings the weights were
                                  trained with (config.json's then): written last
    RUN/last.safetensors      \\
    RUN/best.safetensors       } the newest checkpoint's files, published for the other verbs (hard
    RUN/training_state.pt     /  links where the file system has them, else copies)
    RUN/metrics.csv           one row per logged training window and per evaluation
    RUN/loss_curve.png        training and validation loss (when matplotlib is installed)
    RUN/summary.json          final figures (strict JSON: a non-finite number is written null)

Why a directory per checkpoint: the weights, the optimizer and the random states belong together,
and no file system renames several files at once. A checkpoint is written into a temporary
directory, every file flushed to disk, its manifest written last, then the directory is renamed to
its final name: that rename is the commit (Orbax commits the same way). A kill before it leaves a
temporary directory that the next resume deletes; a kill after it leaves a complete checkpoint.
Resume verifies the newest checkpoint against its manifest and falls back to the one before it if
it is damaged (docs/runs.md).

Single files (config, vocabularies, summary) are written atomically, and the run directory itself
is ``RunDir``: both in ``rnnkit.files``, which the layers below training use too.
"""

from __future__ import annotations

from ..errors import DataError

import csv
import io
import json
import contextlib
import os
import pickle
import re
import secrets
import shutil
import signal
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, NamedTuple

import torch

from ..files import DIR_MODE, FILE_MODE, CheckpointError, RunDir, _fsync_path, _write_new, atomic_write, check_weights_file, file_digest, shell_path, write_with

CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"
STATE = "training_state.pt"
VIEWS = ("last.safetensors", "best.safetensors", "ema.safetensors", STATE)  # published at the top of RUN
_COMMITTED = re.compile(r"^(\d{6,})-step-(\d{6,})$")


# -- test hooks: crash tests kill the process at named points (tests/test_crash_resume.py) ----------------
def test_point(label: str) -> None:
    """A named moment of a run. With ``RNNKIT_TEST_EVENTS=FILE`` its label is appended to FILE; with
    ``RNNKIT_TEST_KILL_AT=LABEL`` the process kills itself with SIGKILL there (no cleanup runs, as
    with ``kill -9``); with ``RNNKIT_TEST_INTERRUPT_AT=LABEL`` it sends itself SIGINT (Ctrl-C) there; with ``RNNKIT_TEST_PAUSE_IN_CHECKPOINT=SECONDS`` it sleeps at every point
    inside a checkpoint write, so that an outside ``kill -9`` can land there. Unset: nothing."""
    env = os.environ
    if "RNNKIT_TEST_EVENTS" in env:
        with open(env["RNNKIT_TEST_EVENTS"], "a", encoding="utf-8") as f:
            f.write(label + "\n")
    if env.get("RNNKIT_TEST_KILL_AT") == label:
        os.kill(os.getpid(), signal.SIGKILL)
    if env.get("RNNKIT_TEST_INTERRUPT_AT") == label:  # Ctrl-C at exactly this moment
        os.kill(os.getpid(), signal.SIGINT)
    if "checkpoint" in label and env.get("RNNKIT_TEST_PAUSE_IN_CHECKPOINT"):
        time.sleep(float(env["RNNKIT_TEST_PAUSE_IN_CHECKPOINT"]))


# -- files ----------------------------------------------------------------------------------------------
def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` (new) holds ``source``'s bytes: a hard link where the file system allows."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        os.chmod(target, FILE_MODE)
        _fsync_path(target)


# -- checkpoints ------------------------------------------------------------------------------------------
class Checkpoint(NamedTuple):
    path: Path
    serial: int
    step: int

    def file(self, name: str) -> Path:
        return self.path / name


class Checkpoints:
    """The committed checkpoints of a run: written as one unit, verified, published, pruned."""

    def __init__(self, run: RunDir, keep: int = 2, say: Callable[[str], None] = print):
        self.run = run
        self.root = run.file(CHECKPOINTS)
        self.keep = max(1, keep)
        self.say = say
        self.place = RunPlace(run)

    def committed(self) -> list[Checkpoint]:
        """Oldest first. Only final names count: a temporary directory was never committed."""
        found = []
        if self.root.is_dir():
            for entry in self.root.iterdir():
                match = _COMMITTED.match(entry.name)
                if match and entry.is_dir():
                    found.append(Checkpoint(entry, int(match[1]), int(match[2])))
        return sorted(found, key=lambda c: c.serial)

    # -- writing --------------------------------------------------------------------------------------
    def write(self, step: int, writers: dict[str, Callable[[Path], None]], reuse: dict[str, Checkpoint] | None = None,
              run_files: dict[str, dict] | None = None, settings: dict | None = None) -> Checkpoint:
        """Commit a checkpoint of ``step``: ``writers`` write new files (each given its path),
        ``reuse`` names files taken unchanged from an earlier checkpoint (linked, not rewritten),
        ``run_files`` the digests of the run's own files the weights go with (its vocabularies:
        ``check_run_files``), ``settings`` the settings they were trained with (``trained_with``)."""
        self.place.check()
        previous = self.committed()
        serial = previous[-1].serial + 1 if previous else 1
        name = f"{serial:06d}-step-{step:06d}"
        self.root.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{name}.", suffix=".tmp"))
        where = f"checkpoint {name}"  # the label of each moment of this write (test_point)
        test_point(f"{where}: directory created")
        manifest = {"format": 1, "serial": serial, "step": step, "files": {}, "run_files": dict(run_files or {})}
        if settings is not None:
            manifest["settings"] = settings
        try:
            for file, source in (reuse or {}).items():
                _link_or_copy(source.file(file), tmp / file)
                manifest["files"][file] = _read_manifest(source)["files"][file]
                test_point(f"{where}: linked {file}")
            for file, write in writers.items():
                write_with(write, tmp / file, shown=self.root / name / file)  # a full disk: one line naming the file
                os.chmod(tmp / file, FILE_MODE)
                _fsync_path(tmp / file)
                manifest["files"][file] = file_digest(tmp / file)
                test_point(f"{where}: wrote {file}")
            _write_new(tmp / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
            os.chmod(tmp, DIR_MODE)
            _fsync_path(tmp, directory=True)
            test_point(f"{where}: manifest written")
            os.rename(tmp, self.root / name)  # the commit
        except Exception:  # a full disk, a file-size limit: the half-written checkpoint goes, freeing its space now
            shutil.rmtree(tmp, ignore_errors=True)  # (a kill leaves it to the next resume's remove_leftovers)
            raise
        _fsync_path(self.root, directory=True)
        checkpoint = Checkpoint(self.root / name, serial, step)
        test_point(f"{where}: committed")
        self.complete(checkpoint)
        return checkpoint

    def complete(self, checkpoint: Checkpoint) -> None:
        """What follows a commit: publish the checkpoint, remove all but the newest ``keep``.
        Resume does it again for the checkpoint it starts from (a kill may have come between)."""
        self.publish(checkpoint)
        for old in self.committed()[: -self.keep]:
            if old.serial < checkpoint.serial:
                shutil.rmtree(old.path, ignore_errors=True)
        test_point(f"checkpoint {checkpoint.path.name}: older ones removed")

    def publish(self, checkpoint: Checkpoint) -> None:
        """The checkpoint's weights and state at the top of the run directory, each put in place
        atomically (a link under a temporary name, then renamed over the old file)."""
        for name in VIEWS:
            source, view = checkpoint.file(name), self.run.file(name)
            if source.exists() and not (view.exists() and os.path.samefile(source, view)):
                tmp = self.run.file(f".{name}.{secrets.token_hex(4)}.tmp")
                try:
                    _link_or_copy(source, tmp)
                    os.replace(tmp, view)
                except OSError as error:  # a read-only run folder, a full disk: named as the file the user knows
                    tmp.unlink(missing_ok=True)
                    raise OSError(error.errno, error.strerror or str(error), str(view)) from None
                tmp.unlink(missing_ok=True)  # rename(2) leaves both names when they link the same file
            if source.exists():
                test_point(f"checkpoint {checkpoint.path.name}: published {name}")

    # -- resuming -------------------------------------------------------------------------------------
    def remove_leftovers(self) -> list[str]:
        """Delete what an interrupted write left: temporary files and checkpoint directories."""
        removed = []
        for entry in [*self.run.path.glob(".*.tmp"), *(self.root.glob(".*.tmp") if self.root.is_dir() else [])]:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(str(entry.relative_to(self.run.path)))
        return removed

    def newest_intact(self, set_aside: bool = True) -> Checkpoint | None:
        """The newest checkpoint whose files match its manifest; a damaged newer one is reported
        in one line and passed over. None when the run has no checkpoint at all;
        ``CheckpointError`` when it has some and none is intact."""
        checkpoints = self.committed()
        damage = []
        for checkpoint in reversed(checkpoints):
            problem = verify(checkpoint)
            if problem is None:
                if damage:
                    self.say(f"{damage[0]}; resuming from the checkpoint before it, {checkpoint.path.name} (step {checkpoint.step})")
                    for bad in checkpoints[checkpoints.index(checkpoint) + 1 :] if set_aside else []:  # never newest again
                        os.rename(bad.path, bad.path.with_name(f"damaged-{bad.path.name}"))
                return checkpoint
            damage.append(problem)
        if damage:
            raise CheckpointError(f"{damage[0]}; no intact checkpoint is left to resume from" + (f" ({len(damage) - 1} older ones are damaged too)" if len(damage) > 1 else ""))
        return None

    def check_published(self, name: str) -> None:
        """The file ``name`` at the top of the run (best.safetensors ...) checked against the
        checkpoints' manifests before a verb loads it: one that matches none was damaged or changed
        after rnnkit wrote it (zeroed, a tensor edited), and a model loaded from it would answer
        without a word. A missing file, or a run without checkpoints (the weights copied alone), is
        not checked here."""
        view = self.run.file(name)
        if not view.exists():
            return
        for _ in range(2):  # a run training meanwhile may publish a newer checkpoint and remove this file's
            digest = file_digest(view)
            checkpoints = self.committed()
            if not checkpoints or any(_manifest_entry(c, name) == digest for c in checkpoints):
                return
        damaged = next((c for c in reversed(checkpoints) if _manifest_entry(c, STATE) is None), None)
        if damaged is not None:  # the file may well be intact: what it could not be checked against is named
            raise CheckpointError(f"{damaged.file(MANIFEST)}: damaged, so {view.name} cannot be checked against it; "
                                  f"resume the run ({self.resume_command()}) to set that checkpoint aside and publish an intact one")
        why = "damaged or incomplete" if name.endswith(".safetensors") and _unreadable(view) else "changed after rnnkit wrote it"
        raise CheckpointError(f"{view}: {why}: it matches no checkpoint in {self.root}; delete it and resume the run ({self.resume_command()}) "
                              "to restore it from the newest checkpoint")

    def check_run_files(self) -> None:
        """The run's vocabularies, tokenizers and names (``TaskBase.artifact_files``) checked against
        the digests the newest checkpoint recorded: two tokens swapped in vocab.json, or labels
        renamed in labels.json, made every answer of the weights wrong without a word. A run
        without checkpoints, or one written before they were recorded, is not checked here."""
        checkpoints = self.committed()
        try:
            recorded = _read_manifest(checkpoints[-1]).get("run_files") if checkpoints else None
        except (OSError, ValueError, AttributeError, RecursionError):
            return  # a damaged manifest: resume says so; the verbs check the weights against the others
        for name, digest in recorded.items() if isinstance(recorded, dict) else ():
            view = self.run.file(name)
            if view.is_file() and file_digest(view) != digest:
                raise CheckpointError(f"{view}: changed after rnnkit wrote it: not the file the run's weights were trained with; "
                                      f"resume the run ({self.resume_command()}) to write it again from the training data")

    def resume_command(self) -> str:
        """The command that resumes this run, as the user types it (TASK when config.json cannot say)."""
        try:
            task = str(json.loads(self.run.file("config.json").read_text(encoding="utf-8"))["task"])
        except (OSError, ValueError, KeyError, TypeError):
            task = "TASK"
        return f"rnnkit train {task} --resume --run {shell_path(self.run.path)}"

    def trained_with(self) -> dict | None:
        """The settings the newest checkpoint's weights were trained with, as ``write`` recorded them
        (the run's config.json then); None for a run without checkpoints, one written before they
        were recorded, or a damaged manifest (resume says so)."""
        checkpoints = self.committed()
        try:
            settings = _read_manifest(checkpoints[-1]).get("settings") if checkpoints else None
        except (OSError, ValueError, AttributeError, RecursionError):
            return None
        return settings if isinstance(settings, dict) else None

    def check_views(self, chosen: Checkpoint) -> None:
        """The files at the top of the run must each be one of a checkpoint's (or absent): a file
        that matches none was damaged or changed after rnnkit wrote it, and is not overwritten
        without a word."""
        checkpoints = self.committed()
        # checkpoints set aside as damaged: the top files were published from one of them (the same
        # files: an intact weights file of it, or the damaged one itself, edited in place through its
        # top name); they are that checkpoint's, and are replaced from the chosen one like any other
        set_aside = [Checkpoint(path, -1, -1) for path in self.root.glob("damaged-*") if path.is_dir()]
        for name in VIEWS:
            view = self.run.file(name)
            if not view.exists():
                continue
            if any(c.file(name).exists() and os.path.samefile(view, c.file(name)) for c in [*checkpoints, *set_aside]):
                continue  # the same file as a checkpoint's: verified (or passed over) with it
            digest = file_digest(view)
            if any(_manifest_entry(c, name) == digest for c in [*checkpoints, *set_aside]):  # a copy (cp -r: no hard links) of one
                continue
            if any(c.file(name).is_file() and file_digest(c.file(name)) == digest for c in set_aside):  # its manifest the damaged part
                continue
            why = "damaged or incomplete" if name.endswith(".safetensors") and _unreadable(view) else "changed after rnnkit wrote it"
            raise CheckpointError(
                f"{view}: {why}: it matches no checkpoint in {self.root}; "
                f"delete it and resume again to restore it from {chosen.path.name} (step {chosen.step})"
            )


def _read_manifest(checkpoint: Checkpoint) -> dict:
    return json.loads(checkpoint.file(MANIFEST).read_text(encoding="utf-8"))


def _manifest_entry(checkpoint: Checkpoint, name: str) -> dict | None:
    try:
        return _read_manifest(checkpoint)["files"].get(name)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _unreadable(path: Path) -> bool:
    try:
        check_weights_file(path)
        return False
    except CheckpointError:
        return True


def verify(checkpoint: Checkpoint) -> str | None:
    """None when every file of the checkpoint has its manifest's size and SHA-256; else a line
    naming the first file that does not."""
    try:
        manifest = _read_manifest(checkpoint)
        files = manifest["files"]
        if manifest.get("step") != checkpoint.step or not isinstance(files, dict) or STATE not in files:
            return f"{checkpoint.file(MANIFEST)}: does not describe this checkpoint"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{checkpoint.file(MANIFEST)}: unreadable ({type(error).__name__})"
    for name, expected in files.items():
        path = checkpoint.file(name)
        if not path.exists():
            return f"{path}: missing"
        if path.stat().st_size != expected.get("bytes"):
            return f"{path}: damaged ({path.stat().st_size} bytes, the manifest says {expected.get('bytes')})"
        if file_digest(path)["sha256"] != expected.get("sha256"):
            return f"{path}: damaged or changed after it was written (its SHA-256 differs from the manifest's)"
    return None


def load_state(path: Path) -> dict:
    """A training state: tensors and plain values only. ``weights_only=True``: unpickling cannot
    construct arbitrary objects, so a crafted file cannot run code."""
    try:
        with warnings.catch_warnings():  # torch warns of the pickle protocol of files it then refuses
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # torch's message would advise weights_only=False: the one thing never to do here
        if "unsupported global" in str(error).lower():  # a pickle naming other classes: what weights_only exists to refuse
            raise CheckpointError(f"{path}: holds Python objects besides tensors and plain values, which rnnkit never writes "
                                  "and never loads (a crafted or foreign file)") from None  # fmt: skip
        raise CheckpointError(f"{path}: not a training state rnnkit can load safely (damaged: it is no pickle of tensors and plain values)") from None
    except Exception as error:  # noqa: BLE001 (any failure to load is the file's fault)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a training state rnnkit can load safely ({first[:200]})") from None


def state_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


class MetricsLog:
    """metrics.csv, one row per record; on resume, rows written after the checkpoint are dropped."""

    FIELDS = ["step", "epoch", "split", "loss", "perplexity", "lr", "tokens_per_s", "elapsed_s", "other"]

    def __init__(self, run: RunDir):
        self.path = run.file("metrics.csv")
        self.place = RunPlace(run)

    def rows(self) -> list[dict]:
        """The complete rows so far: a last line without its line break is a row cut short (a kill or
        a power cut while it was written) and is no row, so a resume's truncate drops it rather than
        leaving it half-written before the new rows. A file that is not UTF-8 text (damaged, or
        another program's) is a one-line ``DataError`` naming it."""
        if not self.path.exists():
            return []
        try:
            data = self.path.read_bytes()
            if b"\n" not in data:  # not one whole line: a header cut short, or no text at all (damaged)
                data.decode("utf-8")
            complete = data if data.endswith(b"\n") else data[: data.rfind(b"\n") + 1]
            reader = csv.DictReader(io.StringIO(complete.decode("utf-8"), newline=""))
            rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as error:
            raise DataError(f"{self.path}: damaged, not rnnkit's metrics ({error})") from None
        names = reader.fieldnames or []
        if rows and not (len(names) >= 3 and names == self.FIELDS[: len(names)]):  # edited (a run of the first version lacks "other")
            raise DataError(f"{self.path}:1: damaged, not rnnkit's metrics (its columns are {','.join(names)}, "
                            f"rnnkit writes {','.join(self.FIELDS)})")
        for line, row in enumerate(rows, start=2):
            if not (row["step"] or "").isdigit() or None in row:  # a step that is no number, or more cells than columns
                raise DataError(f"{self.path}:{line}: damaged, not rnnkit's metrics (step {row['step']!r}, {len(row)} cells)")
        return rows

    def count(self) -> int:
        """Complete rows so far (the cursor a checkpoint records)."""
        return len(self.rows())

    def truncate(self, rows: int) -> None:
        """Keep the first ``rows`` rows (a row cut by a kill is never among them)."""
        kept = self.rows()[:rows]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.FIELDS)
        writer.writeheader()
        writer.writerows(kept)
        atomic_write(self.path, buffer.getvalue().encode())

    def append(self, **row) -> None:
        """One row at the end; a failed write (a full disk) is taken back, so that the next row does
        not continue a half one, and raised as an ``OSError`` naming metrics.csv."""
        self.place.check()
        new = not self.path.exists()
        size = 0 if new else self.path.stat().st_size
        try:
            with self.path.open("a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow({k: row.get(k, "") for k in self.FIELDS})
        except OSError as error:
            with contextlib.suppress(OSError):
                os.truncate(self.path, size)
            raise OSError(error.errno, error.strerror or str(error), str(self.path)) from None


class RunPlace:
    """The run folder as it was when training met it (device and inode): a folder moved or deleted
    while the run trained is refused at the next write (``CheckpointError``, one line), where a
    write would have made a new folder at the old path holding half a run, the command ending as
    if all went well. A folder not there yet is made at the first write, and known from then."""

    def __init__(self, run: RunDir):
        self.run = run
        self.identity = _identity(run.path)

    def check(self) -> None:
        if self.identity is None:
            self.run.path.mkdir(parents=True, exist_ok=True)
            self.identity = _identity(self.run.path)
        elif _identity(self.run.path) != self.identity:
            raise CheckpointError(f"{self.run.path}: the run folder is gone (moved or deleted while it trained); what it had saved went "
                                  "with it: resume it where it is now with --resume")  # fmt: skip


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino
