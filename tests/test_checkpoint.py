"""Checkpoints as one unit: committed by a rename, verified against their manifest, a damaged one
passed over for the one before it, the files published at the top of the run directory checked,
leftovers of an interrupted write removed; metrics rows cut at the checkpoint's cursor; strict JSON."""

from __future__ import annotations

import json
import os
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from rnnkit.training.checkpoint import MANIFEST, STATE, CheckpointError, Checkpoints, MetricsLog, RunDir, load_state, state_bytes


def write_checkpoint(checkpoints: Checkpoints, step: int, value: float):
    def weights(path):
        save_file({"w": torch.full((3,), value)}, str(path))

    def state(path):
        path.write_bytes(state_bytes({"progress": {"step": step}}))

    return checkpoints.write(step, {"last.safetensors": weights, "best.safetensors": weights, STATE: state})


@pytest.fixture
def run(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    return run


def test_a_checkpoint_is_a_committed_directory_with_a_manifest(run):
    checkpoints = Checkpoints(run, keep=2, say=lambda line: None)
    for step in (3, 6, 9):
        write_checkpoint(checkpoints, step, float(step))
    committed = checkpoints.committed()
    assert [c.step for c in committed] == [6, 9]  # the newest two are kept
    manifest = json.loads((committed[-1].path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"last.safetensors", "best.safetensors", STATE}
    assert checkpoints.newest_intact() == committed[-1]
    # the files at the top of the run are the newest checkpoint's, and nothing temporary is left
    assert (run.path / "last.safetensors").read_bytes() == (committed[-1].path / "last.safetensors").read_bytes()
    assert load_state(run.path / STATE)["progress"]["step"] == 9
    assert not [p for p in run.path.rglob("*.tmp")]


def test_a_checkpoint_write_that_fails_removes_what_it_wrote(run):
    """A full disk (or ``ulimit -f``) while a checkpoint was written left its half-written directory
    holding the space until the next resume; the error is still the one-line OSError naming the file."""
    import errno

    checkpoints = Checkpoints(run, say=lambda line: None)
    write_checkpoint(checkpoints, 3, 3.0)

    def full(path):
        path.write_bytes(b"x" * 1000)
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    with pytest.raises(OSError) as error:
        checkpoints.write(6, {"last.safetensors": full})
    assert error.value.errno == errno.EFBIG and "000002-step-000006/last.safetensors" in str(error.value.filename)
    assert not list(run.path.rglob("*.tmp")) and [c.step for c in checkpoints.committed()] == [3]


def test_an_uncommitted_directory_is_never_a_checkpoint_and_is_removed(run):
    checkpoints = Checkpoints(run, say=lambda line: None)
    write_checkpoint(checkpoints, 2, 1.0)
    interrupted = checkpoints.root / ".000002-step-000004.abcd.tmp"  # a kill before the rename
    interrupted.mkdir()
    (interrupted / "last.safetensors").write_bytes(b"half")
    (run.path / ".last.safetensors.1234.tmp").write_bytes(b"half")  # a kill while publishing
    assert [c.step for c in checkpoints.committed()] == [2]
    removed = checkpoints.remove_leftovers()
    assert len(removed) == 2 and not interrupted.exists() and not (run.path / ".last.safetensors.1234.tmp").exists()


def test_a_damaged_checkpoint_falls_back_to_the_one_before(run):
    lines = []
    checkpoints = Checkpoints(run, say=lines.append)
    write_checkpoint(checkpoints, 2, 1.0)
    newest = write_checkpoint(checkpoints, 4, 2.0)
    state = newest.path / STATE
    state.write_bytes(state.read_bytes()[:-10])  # cut short, as by a full disk
    chosen = checkpoints.newest_intact()
    assert chosen.step == 2
    assert len(lines) == 1 and STATE in lines[0] and "step 2" in lines[0]
    older = checkpoints.committed()[0]
    (older.path / "last.safetensors").write_bytes(b"not weights")  # then the older one too
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        checkpoints.newest_intact()


@pytest.mark.parametrize("edited", ["checkpoint", "top"])
def test_the_top_files_of_a_checkpoint_set_aside_as_damaged_are_replaced_not_refused(run, edited):
    """The newest checkpoint damaged (or a top file, the same file by a hard link, edited in place):
    the resume set it aside for the one before, then refused the top files published from it as
    "changed after rnnkit wrote it", one file per try."""
    checkpoints = Checkpoints(run, say=lambda line: None)
    write_checkpoint(checkpoints, 2, 1.0)
    newest = write_checkpoint(checkpoints, 4, 2.0)
    damaged = (newest.path if edited == "checkpoint" else run.path) / STATE
    with open(damaged, "r+b") as f:  # in place: every name of the file sees it
        f.seek(5)
        f.write(b"\xff\xff")
    chosen = checkpoints.newest_intact()
    assert chosen.step == 2 and (checkpoints.root / f"damaged-{newest.path.name}").is_dir()
    checkpoints.check_views(chosen)  # the top files are the set-aside checkpoint's: replaced from the chosen one


@pytest.mark.parametrize("damaged", [STATE, MANIFEST])
def test_the_top_files_of_a_set_aside_checkpoint_in_a_copied_run_are_replaced_not_refused(run, damaged):
    """A run copied without hard links (cp -r), its newest checkpoint then damaged (its state, or
    its manifest): the resume set it aside and refused the intact top files, byte for byte what
    rnnkit wrote, as "changed after rnnkit wrote it": only the committed checkpoints' manifests were
    compared."""
    checkpoints = Checkpoints(run, say=lambda line: None)
    write_checkpoint(checkpoints, 2, 1.0)
    newest = write_checkpoint(checkpoints, 4, 2.0)
    for view in run.path.iterdir():  # copies, not links, as cp -r makes them
        if view.is_file():
            data = view.read_bytes()
            view.unlink()
            view.write_bytes(data)
    part = newest.path / damaged
    part.write_bytes(part.read_bytes()[:-10])
    chosen = checkpoints.newest_intact()
    assert chosen.step == 2
    checkpoints.check_views(chosen)
    view = run.path / "last.safetensors"  # a top file no checkpoint wrote is still refused
    view.write_bytes(view.read_bytes()[:-3] + b"   ")
    with pytest.raises(CheckpointError, match="matches no checkpoint"):
        checkpoints.check_views(chosen)


def test_a_published_file_that_matches_no_checkpoint_is_refused_by_name(run):
    checkpoints = Checkpoints(run, say=lambda line: None)
    write_checkpoint(checkpoints, 2, 1.0)
    newest = write_checkpoint(checkpoints, 4, 2.0)
    checkpoints.check_views(newest)
    # the previous checkpoint's file (a kill between the commit and the publishing) is fine
    view = run.path / "last.safetensors"
    view.unlink()
    view.write_bytes((checkpoints.committed()[0].path / "last.safetensors").read_bytes())
    checkpoints.check_views(newest)
    # a cut copy (an interrupted rsync) is named, with what to do
    data = view.read_bytes()
    view.unlink()
    view.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"last\.safetensors: damaged or incomplete.*delete it"):
        checkpoints.check_views(newest)


def test_metrics_rows_are_cut_at_the_checkpoint_cursor(run):
    log = MetricsLog(run)
    for step in (1, 2, 3):
        log.append(step=step, split="train", loss="1.0")
    with log.path.open("a") as f:
        f.write("4,1,tra")  # a row cut by a kill
    log.truncate(2)
    assert [row["step"] for row in log.rows()] == ["1", "2"]


def test_json_files_are_strict_json(run):
    run.write_json("summary.json", {"loss": math.nan, "best": math.inf, "rows": [1.0, -math.inf]})
    text = (run.path / "summary.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}")) == {"loss": None, "best": None, "rows": [1.0, None]}


def test_a_full_disk_while_weights_are_written_is_an_os_error_naming_the_file(tmp_path, monkeypatch):
    """safetensors reports a full disk as its own error type, without the file: the command line
    would print a traceback. Every weights write goes through files.write_with, which makes it the
    OSError the command line shows in one line ("PATH: no space left on device")."""
    import errno

    import safetensors

    from rnnkit.cli import user_message
    from rnnkit.files import atomic_write, write_with

    def full(path):
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    for write in (lambda: write_with(full, tmp_path / ".x.tmp", shown=tmp_path / "best.safetensors"), lambda: atomic_write(tmp_path / "best.safetensors", full)):
        with pytest.raises(OSError) as error:
            write()
        assert error.value.errno == errno.ENOSPC and user_message(error.value) == f"{tmp_path / 'best.safetensors'}: no space left on device"
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    with pytest.raises(ValueError, match="not an I/O error"):  # other errors pass as they are
        write_with(lambda path: (_ for _ in ()).throw(ValueError("not an I/O error")), tmp_path / "y")


def test_temporary_files_a_killed_writer_left_are_removed_by_the_next_write(tmp_path):
    """A kill while an export or a run file is written leaves ``.NAME.PID-XXXX.tmp`` beside it: the next
    write of that name removes those of processes that no longer exist, never a live writer's."""
    import os
    import subprocess

    from rnnkit.files import atomic_write, atomic_write_all

    dead = subprocess.Popen(["true"])
    dead.wait()
    target = tmp_path / "model.onnx"
    left = tmp_path / f".model.onnx.{dead.pid}-abc123.tmp"
    live = tmp_path / f".model.onnx.{os.getppid()}-def456.tmp"  # the test runner's parent: alive
    left.write_bytes(b"half a graph")
    live.write_bytes(b"being written")
    atomic_write_all({target: b"graph", tmp_path / "model.json": b"{}"})
    assert target.read_bytes() == b"graph" and not left.exists() and live.exists()
    other = tmp_path / f".summary.json.{dead.pid}-x.tmp"
    other.write_bytes(b"{")
    atomic_write(tmp_path / "summary.json", b"{}")
    assert not other.exists() and sorted(p.name for p in tmp_path.glob(".*.tmp")) == [live.name]


def test_weights_of_another_size_are_one_line_naming_the_tensor(tmp_path):
    """A best.safetensors copied from a run of another --hidden-size: torch's size-mismatch traceback
    before; now one line naming the tensor and both shapes."""
    from safetensors.torch import save_model

    from rnnkit.files import CheckpointError, load_weights_file

    save_model(torch.nn.Linear(12, 5), str(tmp_path / "best.safetensors"))
    with pytest.raises(CheckpointError, match=r"best.safetensors: weight has shape \[5, 12\] but the run's config.json gives \[5, 8\]: "):
        load_weights_file(tmp_path / "best.safetensors", torch.nn.Linear(8, 5))


def test_an_unwritable_folder_is_named_as_the_users_file_and_said_before_any_work(tmp_path, monkeypatch):
    """``gradients``, ``inspect``, ``export`` and ``compose`` into a read-only folder trained or ran
    everything, then failed naming a hidden temporary (``.gradient_flow.png.3882-980smy41.tmp``)."""
    import argparse
    import errno
    import os
    import tempfile

    from rnnkit.cli._options import output_file
    from rnnkit.files import atomic_write, atomic_write_all

    def read_only(*args, dir=None, prefix="", suffix="", **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, prefix + "abcd" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    for write in (lambda: atomic_write(tmp_path / "plot.png", b"png"), lambda: atomic_write_all({tmp_path / "m.onnx": b"graph"})):
        with pytest.raises(OSError) as raised:
            write()
        assert raised.value.filename in (str(tmp_path / "plot.png"), str(tmp_path / "m.onnx")) and ".tmp" not in str(raised.value)
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(argparse.ArgumentTypeError, match=rf"cannot write in {tmp_path}"):
        output_file(str(tmp_path / "new" / "plot.png"))


def test_a_run_folder_moved_while_it_trains_is_refused_not_made_again_half(run, tmp_path):
    """A run folder renamed during training was made again at the old path by the next checkpoint
    and metrics row (no config.json, serials from 1), and the command ended as if all went well."""
    checkpoints, metrics = Checkpoints(run, say=lambda line: None), MetricsLog(run)
    write_checkpoint(checkpoints, 1, 1.0)
    metrics.append(step=1, split="train", loss=1.0)
    run.path.rename(tmp_path / "moved")
    with pytest.raises(CheckpointError, match=r"run: the run folder is gone \(moved or deleted while it trained\)"):
        write_checkpoint(checkpoints, 2, 2.0)
    with pytest.raises(CheckpointError, match=r"the run folder is gone"):
        metrics.append(step=2, split="train", loss=1.0)
    assert not run.path.exists() and (tmp_path / "moved" / "checkpoints").is_dir()
    fresh = RunDir(tmp_path / "new" / "run")  # a folder not there yet is made by the first write (the library's Trainer)
    write_checkpoint(Checkpoints(fresh, say=lambda line: None), 1, 1.0)
    assert fresh.file("last.safetensors").is_file()


def test_write_errors_name_the_users_file_and_leave_no_half_row_or_temporary(run, monkeypatch):
    """A full disk while appending metrics.csv said "[Errno 28] No space left on device" (no file)
    and left half a row that the next one continued; a copy into a temporary (seen.u64) and a
    publish into a read-only folder named the temporary files."""
    import errno

    from rnnkit.files import atomic_write
    from rnnkit.training import checkpoint as checkpoint_module

    metrics = MetricsLog(run)
    metrics.append(step=1, split="train", loss=1.0)
    run.file("metrics.csv").rename(run.file("kept.csv"))
    os.symlink("/dev/full", run.file("metrics.csv"))  # every write: ENOSPC
    with pytest.raises(OSError, match="No space left on device") as error:
        metrics.append(step=2, split="train", loss=1.0)
    assert error.value.filename == str(run.file("metrics.csv"))

    def copy_into(partial):  # as shutil.copyfile reports it: the source first, the temporary second
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/elsewhere/seen.u64", None, str(partial))

    with pytest.raises(OSError) as error:
        atomic_write(run.file("seen.u64"), copy_into)
    assert error.value.filename == str(run.file("seen.u64")) and not list(run.path.glob(".*.tmp"))

    checkpoints = Checkpoints(run, say=lambda line: None)
    checkpoint = write_checkpoint(checkpoints, 1, 1.0)
    run.file("last.safetensors").unlink()

    def refused(source, target):
        raise PermissionError(errno.EACCES, "Permission denied", str(target))

    monkeypatch.setattr(checkpoint_module, "_link_or_copy", refused)
    with pytest.raises(OSError) as error:
        checkpoints.publish(checkpoint)
    assert error.value.filename == str(run.file("last.safetensors")) and not list(run.path.glob(".*.tmp"))


def test_writing_a_link_writes_the_file_it_names_and_refuses_a_link_to_a_device(tmp_path):
    """An --out that is a symbolic link was replaced by a file, its target left as it was; a link to
    /dev/full was swapped for a file silently (exit 0)."""
    from rnnkit.files import atomic_write, atomic_write_all

    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "real.html").write_text("OLD")
    link = tmp_path / "link.html"
    link.symlink_to("target/real.html")
    atomic_write(link, b"NEW")
    assert link.is_symlink() and (tmp_path / "target" / "real.html").read_text() == "NEW"
    atomic_write_all({link: b"NEWER"})
    assert link.is_symlink() and (tmp_path / "target" / "real.html").read_text() == "NEWER"
    full = tmp_path / "full.png"
    full.symlink_to("/dev/full")
    for write in (lambda: atomic_write(full, b"x"), lambda: atomic_write_all({full: b"x"})):
        with pytest.raises(OSError, match=r"a link to /dev/full, which is not a regular file") as error:
            write()
        assert error.value.filename == str(full) and full.is_symlink()
