"""Crash tests: a run killed with SIGKILL at any moment and resumed ends bit for bit as the run that
was never interrupted (weights, best weights, optimizer and random states, metrics), with no
temporary file left and never a run that cannot be resumed.

How the kills are placed. An uninterrupted run records every named moment it passes
(``RNNKIT_TEST_EVENTS``: each training step, each metrics row, every file of every checkpoint
before and after its commit, the publishing of last/best/training_state, the summary). A seeded
generator picks K of those moments across the whole run; a chain of processes then runs the same
command: the first is killed at the first moment (``RNNKIT_TEST_KILL_AT``: the process sends itself
SIGKILL there, so no cleanup code runs), each following ``--resume`` is killed at the next one, and
a last ``--resume`` runs to the end. The processes are forked from the test process (torch is
already imported, so a kill costs a fraction of a second instead of an interpreter start); one test
starts real interpreters and kills one from outside while it pauses inside a checkpoint
(``RNNKIT_TEST_PAUSE_IN_CHECKPOINT``), as ``kill -9`` would.

CPU, one thread, the fused engine's torch-op loops, no autotuning: the same arithmetic in every
process.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ENV = {"RNNKIT_COMPILED_LOOPS": "0", "RNNKIT_AUTOTUNE": "0", "OMP_NUM_THREADS": "1", "RNNKIT_TEST_NO_FSYNC": "1"}
TIMING = {"tokens_per_s", "elapsed_s"}  # metrics columns that measure the clock, not the training

if not hasattr(os, "fork"):
    pytest.skip("the crash tests fork processes (POSIX only)", allow_module_level=True)

import rnnkit.cli  # noqa: E402 (imported once here, so that each forked run starts at once)
from rnnkit.errors import UsageError  # noqa: E402
from rnnkit.runs import resume  # noqa: E402
import rnnkit.plots  # noqa: E402

rnnkit.plots.pyplot()  # matplotlib for the loss curve (when installed), imported once as well
torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # the optimizers' first use imports torch._dynamo (seconds)


# -- running rnnkit in a process that can be killed ----------------------------------------------------------
def run_cli(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """``rnnkit ARGS`` in a forked child; its exit status, or -9 when it was killed."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.environ.update({**ENV, **(env or {})})
            if cwd is not None:
                os.chdir(cwd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal, even when the tests run with it ignored
            torch.set_num_threads(1)
            code = rnnkit.cli.main(args)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            code = 71
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def events_of(args: list[str], tmp: Path) -> list[str]:
    log = tmp / "events.txt"
    assert run_cli(args, {"RNNKIT_TEST_EVENTS": str(log)}) == 0
    return log.read_text().splitlines()


def kill_chain(start: list[str], run: Path, labels: list[str]) -> None:
    """``start`` killed at labels[0], then ``--resume`` killed at each following label, then a
    ``--resume`` to the end."""
    resume = ["train", start[1], "--resume", "--run", str(run), "--no-progress"]
    for i, label in enumerate(labels):
        code = run_cli(start if i == 0 else resume, {"RNNKIT_TEST_KILL_AT": label})
        assert code == -signal.SIGKILL, f"kill {i + 1} at {label!r}: the process ended with {code} instead of being killed"
        assert run.is_dir() or i == 0, f"kill {i + 1} at {label!r}: the run directory is gone"
    final = run_cli(resume) if run.joinpath("config.json").exists() else run_cli(start)
    assert final == 0, f"the last resume failed with exit status {final}"


def pick(events: list[str], k: int, seed: int) -> list[str]:
    assert len(set(events)) == len(events), "each moment of a run must have its own label"
    chosen = sorted(random.Random(seed).sample(range(len(events)), k))
    return [events[i] for i in chosen]


# -- comparing two runs ---------------------------------------------------------------------------------------
def newest_checkpoint(run: Path) -> Path:
    return max((run / "checkpoints").iterdir(), key=lambda p: p.name)


def assert_same_run(a: Path, b: Path) -> None:
    for name in ("last.safetensors", "best.safetensors"):
        wa, wb = load_file(a / name), load_file(b / name)
        assert wa.keys() == wb.keys()
        for key in wa:
            assert torch.equal(wa[key], wb[key]), f"{name} {key} differs"
    sa = torch.load(newest_checkpoint(a) / "training_state.pt", weights_only=True)
    sb = torch.load(newest_checkpoint(b) / "training_state.pt", weights_only=True)
    for timing in ("elapsed", "window_elapsed"):  # seconds of this machine's clock, as the metrics' timing columns
        sa["progress"].pop(timing), sb["progress"].pop(timing)
    assert_equal_nested(sa, sb, "training_state")
    rows = lambda run: [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(open(run / "metrics.csv"))]
    assert rows(a) == rows(b)
    summary = lambda run: {k: v for k, v in json.loads((run / "summary.json").read_text()).items() if k not in ("train_seconds", "loss_curve")}
    assert summary(a) == summary(b)
    leftovers = [p.name for p in [*b.iterdir(), *(b / "checkpoints").iterdir()] if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left: {leftovers}"
    assert len(list((b / "checkpoints").iterdir())) <= 2


def assert_equal_nested(x, y, where: str) -> None:
    if isinstance(x, dict):
        assert isinstance(y, dict) and x.keys() == y.keys(), where
        for key in x:
            assert_equal_nested(x[key], y[key], f"{where}.{key}")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y)):
            assert_equal_nested(u, v, f"{where}[{i}]")
    elif isinstance(x, torch.Tensor):
        assert torch.equal(x, y), where
    else:
        assert x == y or (x != x and y != y), f"{where}: {x!r} != {y!r}"


# -- the runs -------------------------------------------------------------------------------------------------
def names_file(path: Path, n: int = 96) -> Path:
    rng = random.Random(5)
    syllables = ["ka", "lo", "mi", "ra", "te", "su", "no", "bel", "an", "dor"]
    path.write_text("\n".join("".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(n)) + "\n")
    return path


def crash_and_compare(tmp_path: Path, start_args: list[str], k: int, seed: int) -> None:
    reference, crashed = tmp_path / "A", tmp_path / "B"
    events = events_of([*start_args, "--run", str(reference)], tmp_path)
    kill_chain([*start_args, "--run", str(crashed)], crashed, pick(events, k, seed))
    assert_same_run(reference, crashed)


def test_language_model_survives_kills_anywhere(tmp_path):
    """K = 24 kills across a small LM run with dropout, a moving average (ema), evaluations every 4
    steps, checkpoints every 3 steps as well (so some fall between evaluations) and metrics rows
    every 2 steps."""
    data = names_file(tmp_path / "names.txt")
    args = ["train", "lm", str(data), "--hidden-size", "12", "--embedding-size", "8", "--dropout", "0.2", "--ema", "0.9",
            "--batch-size", "8", "--epochs", "3", "--eval-every", "4", "--save-every-steps", "3", "--save-every-minutes", "1000",
            "--log-every", "2", "--seed", "3", "--no-progress"]  # fmt: skip
    crash_and_compare(tmp_path, args, k=24, seed=2024)


def test_stream_language_model_carries_its_state_across_kills(tmp_path):
    """Stream batching: the LSTM state carried from chunk to chunk is part of the checkpoint."""
    data = names_file(tmp_path / "names.txt", 60)
    args = ["train", "lm", str(data), "--batching", "stream", "--bptt", "8", "--batch-size", "4", "--hidden-size", "12",
            "--embedding-size", "8", "--epochs", "2", "--save-every-steps", "2", "--save-every-minutes", "1000", "--log-every", "3",
            "--seed", "1", "--no-progress"]  # fmt: skip
    crash_and_compare(tmp_path, args, k=6, seed=7)


def test_tagger_survives_kills(tmp_path):
    rng = random.Random(0)
    words = {"anna": "B-PER", "berlin": "B-LOC", "acme": "B-ORG", "the": "O", "went": "O", "to": "O", "saw": "O"}
    sentences = ["\n".join(f"{w} {words[w]}" for w in rng.sample(sorted(words), rng.randint(2, 5))) for _ in range(40)]
    (tmp_path / "train.conll").write_text("\n\n".join(sentences) + "\n")
    (tmp_path / "valid.conll").write_text("\n\n".join(sentences[:8]) + "\n")
    args = ["train", "tagger", str(tmp_path / "train.conll"), "--valid", str(tmp_path / "valid.conll"), "--scheme", "iob2",
            "--hidden-size", "8", "--word-embedding-size", "8", "--char-embedding-size", "4", "--char-hidden-size", "4",
            "--batch-size", "8", "--epochs", "2", "--save-every-steps", "3", "--save-every-minutes", "1000", "--log-every", "2",
            "--no-progress"]  # fmt: skip
    crash_and_compare(tmp_path, args, k=8, seed=11)


def test_seq2seq_survives_kills(tmp_path):
    rng = random.Random(1)
    pairs = [(" ".join(rng.choice("abcdef") for _ in range(rng.randint(1, 4))),) * 2 for _ in range(48)]
    (tmp_path / "train.src").write_text("\n".join(s for s, _ in pairs) + "\n")
    (tmp_path / "train.tgt").write_text("\n".join(t[::-1] for _, t in pairs) + "\n")
    args = ["train", "seq2seq", "--source", str(tmp_path / "train.src"), "--target", str(tmp_path / "train.tgt"),
            "--valid-source", str(tmp_path / "train.src"), "--valid-target", str(tmp_path / "train.tgt"),
            "--hidden-size", "8", "--embedding-size", "8", "--batch-size", "8", "--epochs", "2", "--eval-every", "4",
            "--save-every-minutes", "1000", "--log-every", "2", "--no-progress"]  # fmt: skip
    crash_and_compare(tmp_path, args, k=8, seed=5)


@pytest.mark.parametrize("label", ["run config written", "run directory written"])
def test_a_kill_while_a_run_writes_its_first_files_leaves_a_run_both_commands_take(tmp_path, label):
    """Killed as it writes its first files, a run is resumed from step 0 to the uninterrupted run's
    weights (drawn as the first process drew them, with an engine named) or started over by the same
    command; a temporary file the kill left inside a write is rnnkit's, not a file of the user's."""
    data = names_file(tmp_path / "names.txt", 48)
    args = ["train", "lm", str(data), "--hidden-size", "8", "--embedding-size", "8", "--batch-size", "8", "--epochs", "1",
            "--engine", "reference", "--seed", "2", "--no-progress"]  # fmt: skip
    assert run_cli([*args, "--run", str(tmp_path / "A")]) == 0
    for follow in ("resume", "start"):
        run = tmp_path / follow
        assert run_cli([*args, "--run", str(run)], {"RNNKIT_TEST_KILL_AT": label}) == -signal.SIGKILL
        (run / ".vocab.json.99999999-k1ll.tmp").write_text("{")  # what a kill inside writing vocab.json leaves
        again = ["train", "lm", "--resume", "--run", str(run), "--no-progress"] if follow == "resume" else [*args, "--run", str(run)]
        assert run_cli(again) == 0
        assert_same_run(tmp_path / "A", run)
    early = tmp_path / "early"  # killed before config.json: nothing to resume, and the way on is said
    early.mkdir()
    (early / ".lock").touch()
    (early / ".config.json.99999999-k1ll.tmp").write_text("{")
    with pytest.raises(UsageError, match=r"early: the run was stopped before it wrote its settings .* run its training command again"):
        resume(early)
    assert run_cli([*args, "--run", str(early)]) == 0


def test_a_real_kill_inside_a_checkpoint_write(tmp_path):
    """A fresh interpreter killed from outside (SIGKILL) while it pauses between the files of a
    checkpoint, then resumed by another: the same weights and metrics as the uninterrupted run."""
    data = names_file(tmp_path / "names.txt", 64)
    command = [sys.executable, "-c", "import sys; from rnnkit.cli import main; sys.exit(main())"]
    args = ["train", "lm", str(data), "--hidden-size", "8", "--embedding-size", "8", "--dropout", "0.1", "--batch-size", "8",
            "--epochs", "2", "--save-every-steps", "2", "--save-every-minutes", "1000", "--no-progress"]  # fmt: skip
    env = {**os.environ, **ENV}
    env.pop("RNNKIT_TEST_NO_FSYNC")  # these processes flush to disk as users' do
    assert run_cli([*args, "--run", str(tmp_path / "A")]) == 0
    crashed = tmp_path / "B"
    child = subprocess.Popen([*command, *args, "--run", str(crashed)], env={**env, "RNNKIT_TEST_PAUSE_IN_CHECKPOINT": "0.3"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:  # the 2nd checkpoint's temporary directory
        if any(p.name.startswith(".000002-") for p in (crashed / "checkpoints").glob(".*.tmp")):
            break
        time.sleep(0.02)
    assert child.poll() is None, "the run ended before the kill"
    child.send_signal(signal.SIGKILL)
    child.wait()
    resumed = subprocess.run([*command, "train", "lm", "--resume", "--run", str(crashed), "--no-progress"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(tmp_path / "A", crashed)


def test_sigterm_saves_the_run_as_ctrl_c_does(tmp_path):
    """SIGTERM is what a scheduler (SLURM pre-emption, ``docker stop``, systemd) sends to stop a job:
    the run saves a checkpoint at the step it reached, as on Ctrl-C, and exits with 143; the resume
    goes on from that step instead of from the last periodic checkpoint (none here)."""
    data = names_file(tmp_path / "names.txt", 64)
    run = tmp_path / "R"
    args = ["train", "lm", str(data), "--hidden-size", "8", "--embedding-size", "8", "--batch-size", "8", "--epochs", "200",
            "--save-every-steps", "100000", "--save-every-minutes", "1000", "--log-every", "1", "--no-progress", "--run", str(run)]  # fmt: skip
    command = [sys.executable, "-c", "import sys; from rnnkit.cli import main; sys.exit(main())"]
    child = subprocess.Popen([*command, *args], env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:  # a few steps logged: training runs
        metrics = run / "metrics.csv"
        if metrics.exists() and len(metrics.read_text().splitlines()) > 3:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the run ended before the signal"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143 and "terminated (SIGTERM)" in err and "the run is saved" in err, err
    reached = int(re.search(r"interrupted at step (\d+); the run is saved", err)[1])
    saved = sorted((run / "checkpoints").glob("0*-step-*"))
    assert reached > 0 and int(saved[-1].name.split("-")[-1]) == reached  # the newest checkpoint is the step SIGTERM came at
    assert run_cli(["train", "lm", "--resume", "--run", str(run), "--max-steps", str(reached + 2), "--no-progress"]) == 0


def test_ctrl_c_just_after_a_checkpoint_commits_writes_no_second_one_of_the_same_step(tmp_path):
    """Ctrl-C that landed after a checkpoint's rename but before the trainer recorded it made the
    interrupt handler write that step's checkpoint again (two of one state, one fewer to fall back
    on): the commit and its record are one unit for interrupts too."""
    data = names_file(tmp_path / "names.txt", 64)
    run = tmp_path / "R"
    args = ["train", "lm", str(data), "--hidden-size", "8", "--embedding-size", "8", "--batch-size", "8", "--epochs", "2",
            "--save-every-steps", "2", "--save-every-minutes", "1000", "--no-progress", "--run", str(run)]  # fmt: skip
    code = run_cli(args, env={"RNNKIT_TEST_INTERRUPT_AT": "checkpoint 000002-step-000004: committed"})
    assert code == 130
    names = sorted(p.name for p in (run / "checkpoints").glob("0*-step-*"))
    steps = [name.split("-")[-1] for name in names]
    assert names[-1] == "000002-step-000004" and len(steps) == len(set(steps)), names


def test_an_interrupted_resume_leaves_no_summary_of_the_earlier_stop(tmp_path):
    """A run stopped at step 5 (summary.json: 5 steps, its scores), resumed and interrupted at step 9,
    kept the step-5 summary: its steps, stop reason and best validation described a run that had
    since trained on. A fresh run interrupted leaves no summary; a resumed one now does the same."""
    data = names_file(tmp_path / "names.txt", 64)
    run = tmp_path / "R"
    base = ["train", "lm", str(data), "--hidden-size", "8", "--embedding-size", "8", "--batch-size", "8", "--epochs", "50",
            "--eval-every", "4", "--log-every", "1", "--no-progress", "--run", str(run)]  # fmt: skip
    assert run_cli([*base, "--stop-at-step", "5"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 5
    code = run_cli(["train", "lm", "--resume", "--run", str(run), "--no-progress"], env={"RNNKIT_TEST_INTERRUPT_AT": "step 9: trained"})
    assert code != 0 and not (run / "summary.json").exists()
    assert run_cli(["train", "lm", "--resume", "--run", str(run), "--max-steps", "12", "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 12
