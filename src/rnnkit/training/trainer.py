"""The trainer: knows nothing about models or data, only about a ``Task``.

A task (``rnnkit.tasks``) provides the batches of each epoch, deterministically, the summed loss of
a batch, evaluation on a split, optional progress samples, and any state it carries between batches.
The trainer provides the rest: optimizer and schedule, gradient clipping, evaluation and early
stopping, a progress bar, metrics (CSV, and TensorBoard when installed), checkpoints in the run
directory (``checkpoint.py``: one unit each, committed last), and ``resume``, which continues
exactly where the last checkpoint left off: same weights, optimizer and schedule, random-number
states, step, position in the data and metrics rows, so that a run killed at any moment and resumed
ends bit for bit as an uninterrupted one (tests/test_crash_resume.py).

A training loss or gradient norm that is not finite stops the training at that step (``TrainingDiverged``,
one line naming the step) before the optimizer applies it, so the checkpoints and the best weights
keep the last finite ones; with ``skip_non_finite`` such a step is skipped instead, as fairseq and
Lightning can.

With ``ema`` (a decay such as 0.998) the trainer also keeps an exponential moving average of the
weights, θ̄ ← ema θ̄ + (1 - ema) θ after every step (torch's ``AveragedModel``): evaluation, the best
weights and the test use θ̄, training goes on with θ. Averaging the last few hundred steps smooths
the noise of a high learning rate, which helps most on small data sets.

With ``optimizer="nt-asgd"`` (non-monotonically triggered averaged SGD, Merity et al. 2017) the
steps are SGD's, and once ``nt_patience`` evaluations in a row have not improved on the best, the
trainer starts a plain average of the weights after every step from there on (``AveragedModel``),
used as the ema's is. When it started is part of the training state, so a resume continues it.
"""

from __future__ import annotations

import math
import random
import shutil
import sys
import time
from dataclasses import asdict
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import torch
from safetensors.torch import save_model
from torch import Tensor, nn

from ..errors import UsageError
from ..files import CheckpointError, RunDir, _write_new, file_digest, load_weights_file, shell_path
from ..metrics import perplexity
from ..signals import interrupts_deferred
from .checkpoint import STATE, Checkpoint, Checkpoints, MetricsLog, load_state, state_bytes, test_point
from ..distributed import Shard, StandIn, all_sum, barrier, broadcast_flag, local_device, setup
from .config import PRECISIONS, TrainingConfig  # noqa: F401  (imported from here too)
from .optim import make_optimizer, make_schedule, unfreeze_top



@runtime_checkable
class Task(Protocol):
    """What the trainer needs from a task. ``evaluate`` returns a dict with at least ``loss`` (per
    token or per example) and ``count``; ``criterion`` (lower is better, default ``loss``) chooses the
    best weights and drives early stopping; other numeric entries are logged too. ``describe``
    turns such a dict into one line for the user. ``train_batches`` gives this process's share
    of each batch (``shard``: under torchrun). ``save_pictures(result, directory, name)`` draws a
    task's pictures of the test evaluation, -> {name: path} ({} for none). ``artifact_files`` names
    the run files the task wrote (its vocabularies), whose digests each checkpoint records.
    ``starts_trained`` (optional, false when absent): the model starts as a trained model of the task
    (a classifier fine-tuned from a classifier run), whose weights are validated before the first
    step, a candidate for the best like any later ones. ``rnnkit.tasks.TaskBase``
    provides all but ``loss``, ``evaluate`` and ``describe`` (tests/test_task_contract.py: a task
    written against it)."""

    def batches_per_epoch(self) -> int: ...
    def train_batches(self, epoch: int, start: int, shard: Shard = ...) -> Iterator[Any]: ...
    def start_epoch(self, epoch: int) -> None: ...
    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[Tensor, int]: ...
    def has_split(self, split: str) -> bool: ...
    def evaluate(self, model: nn.Module, split: str, device: torch.device) -> dict: ...
    def describe(self, result: dict) -> str: ...
    def report(self, model: nn.Module, step: int, device: torch.device) -> list[str]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def save_pictures(self, result: dict, directory, name: str) -> dict[str, str]: ...
    def artifact_files(self) -> list[str]: ...


class TrainingDiverged(UsageError):
    """The training loss or the gradient norm stopped being finite; the message names the step."""


def resolve_device(name: str) -> torch.device:
    """``auto`` (a GPU when there is one), or a device this machine has; ``UsageError`` (one line) for
    another, as ``--device`` says it, not torch's own words from deep inside (an ``AssertionError`` for cuda on a CPU build)."""
    import argparse

    from ..settings import device

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device(str(name)))
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"device: {error}") from None


def cpu_native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512_BF16's dot products or AMX tiles), so
    that oneDNN's bfloat16 matmuls run at about twice float32's rate. Without them oneDNN converts
    to float32 and bfloat16 is slower than float32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu, since torch 2.3
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def cpu_autocast_refusal(precision: str) -> str | None:
    """Why ``precision`` cannot train on this CPU, or None. bf16 runs the products that autocast
    lowers (the output layer, input projections outside the recurrent engines) in bfloat16 with
    float32 weights and accumulation; fp16 has no fast CPU kernels and is not offered there."""
    if precision == "fp16":
        return "is for CUDA devices (on a CPU use bf16)"
    if precision == "bf16" and not cpu_native_bfloat16():
        return "needs a CPU with native bfloat16 (AVX512_BF16 or AMX); this one has neither and would train slower than in fp32"
    return None


def rng_state() -> dict:
    """Every random-number state training draws from, as tensors and plain lists (so that a
    checkpoint loads with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "python": [version, list(internal), gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _grad_norm(parameters, clip: float | None) -> Tensor:
    """The global gradient norm, clipped to ``clip`` when given (one pass either way)."""
    parameters = [p for p in parameters if p.grad is not None]
    if clip:
        return torch.nn.utils.clip_grad_norm_(parameters, clip)
    if not parameters:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad.detach()) for p in parameters]))


MAX_SKIPPED_IN_A_ROW = 10  # with skip_non_finite: so many non-finite steps in a row end the training


class Trainer:
    def __init__(self, task: Task, model: nn.Module, config: TrainingConfig, run: RunDir, shard: Shard | None = None,
                 settings: dict | None = None):
        """``settings``: the run's settings as its config.json records them, which every checkpoint
        records as what its weights were trained with (``Checkpoints.trained_with``)."""
        self.task = task
        self.model = model
        self.config = config
        self.run = run
        self.metrics = MetricsLog(run)
        self.shard = shard if shard is not None else setup()  # torchrun: several processes share the work
        self.device = local_device(self.shard, resolve_device(config.device))
        self.train_model = model  # wrapped in DistributedDataParallel when several processes train
        self.averaged = None  # the moving average of the weights (ema, or nt-asgd once started), an AveragedModel
        self.checkpoints = Checkpoints(run, config.keep_checkpoints, self.say)
        # the run files as the task wrote them just now (start, or a resume that wrote them again):
        # every checkpoint records these digests, so that a file edited while the run trains is
        # refused by the verbs, not recorded as the run's
        self._run_files = {name: file_digest(run.file(name)) for name in task.artifact_files() if run.file(name).is_file()} if self.shard.main else {}
        self._settings = settings
        self._bar = None
        self._best_source = None  # the checkpoint whose best.safetensors is still the best
        self._checkpointed_at = None  # the step of the newest checkpoint
        self._saved_clock = time.monotonic()

    def say(self, text: str) -> None:
        if not self.shard.main:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    # -- the loop --------------------------------------------------------------------------------------
    def fit(self, resume: bool = False, limit_given: bool = True, accepted: Callable[[], None] | None = None) -> dict:
        """Train (``resume``: on from the run's newest intact checkpoint). ``accepted``: called once a
        resume is neither refused nor finds the run finished and summarized, before any of the run's
        files changes, for what the caller records of it (``rnnkit.runs.resume``: the settings that
        outlast the call)."""
        c = self.config
        model = self.model.to(self.device)
        if self.shard.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        with interrupts_deferred():  # torch's optimizers import torch.distributed.tensor on first use: never half-imported
            optimizer = make_optimizer(c.optimizer, model, c.lr, c.weight_decay, c.momentum, c.discriminative_lr)
        self._precision_setup()
        self._average_setup(model)
        per_epoch = self.task.batches_per_epoch()
        total = c.max_steps if c.max_steps is not None else per_epoch * c.epochs
        self._total = total
        s = {
            "step": 0, "epoch": 0, "batch": 0, "best": math.inf, "bad_evals": 0, "elapsed": 0.0, "finished": False, "evaluated_at": -1, "averaging_since": None,
            "early_stopped": False, "skipped": 0, "skipped_in_a_row": 0, "window_loss": 0.0, "window_count": 0, "window_elapsed": 0.0, "metrics_rows": 0, "clock_share": 0.0,
        }  # fmt: skip
        if c.schedule_by_time and c.time_limit is None and not resume:  # a resume may go on without one: by the steps, from the share reached
            raise UsageError("--schedule-by-time needs --time-limit: the schedule runs over that time")

        def clock_share() -> float:
            """The share of the time limit spent, never lower than before: a resume with a larger
            limit, or none, goes on from the rate reached instead of raising it again."""
            if c.time_limit is not None:
                s["clock_share"] = max(s["clock_share"], s["elapsed"] / c.time_limit)
            return s["clock_share"]

        schedule = make_schedule(c.schedule, optimizer, total, c.warmup_steps, clock_share=clock_share if c.schedule_by_time else None)
        restored = self._restore(s, model, optimizer, schedule, total) if resume else None
        if restored == "done":  # finished before this call, and summarized: nothing trained or written
            return self.run.read_json("summary.json")
        # the refusals of a resume come before it touches the run's files (metrics.csv cut back to the checkpoint's rows)
        if restored and not s["finished"] and c.stop_at_step is not None and s["step"] >= c.stop_at_step:
            raise UsageError(f"{self.run.path}: the run is at step {s['step']:,} already; --stop-at-step {c.stop_at_step} stops at or before it: "
                             "give a larger one to continue it")  # fmt: skip
        # a resume whose limit is spent trains no step (it did one more, then tested again): it only
        # finishes what an interrupt cut short (the time limit's validation and test), else is refused
        spent = bool(restored) and not s["finished"] and c.time_limit is not None and s["elapsed"] >= c.time_limit
        if spent and self._tested_at(s["step"]) and limit_given:
            raise UsageError(f"{self.run.path}: the run has trained {s['elapsed']:.0f} s already, --time-limit {c.time_limit:g} is spent: "
                             "give a larger --time-limit to continue it")  # fmt: skip
        if accepted is not None:
            accepted()
        if restored:
            self._take_over(s)
        if restored is None:
            torch.manual_seed(c.seed)
            random.seed(c.seed)
            if self.shard.main and resume:
                self.metrics.truncate(0)
        self._metrics_rows = s["metrics_rows"]
        writer = self._tensorboard(purge_after=s["step"] if resume else None) if self.shard.main else None
        started = time.perf_counter() - s["elapsed"]
        stop_reason = None
        budget_spent = False  # a time limit ends the training as planned: validated and tested, unlike other stops
        self._bar = self._progress(total, s["step"])
        if spent and self._tested_at(s["step"]) and not limit_given:  # the run's own limit stopped it: resumed, it trains on
            if self.shard.main:
                print(f"rnnkit: note: the run's --time-limit {c.time_limit:g} s is spent ({s['elapsed']:.0f} s trained): it trains on to its "
                      "configured end; give --time-limit to bound it", file=sys.stderr, flush=True)  # fmt: skip
                # and the run has no limit from now on: an interrupt of this training, resumed, must not read as the limit's stop
                if self.run.file("config.json").exists():  # (a trainer used alone, as in tests, has none)
                    config = self.run.read_json("config.json")
                    config["training"]["time_limit"] = None
                    self.run.write_json("config.json", config)
            c.time_limit, spent = None, False
        if restored and self.shard.main:  # the earlier stop's summary no longer describes the run (an interrupt
            self.run.file("summary.json").unlink(missing_ok=True)  # now would leave it, as a fresh run's leaves none)
        try:
            if restored and self._evaluation_due(s):  # the evaluation an interrupt cut short
                self._evaluate_and_checkpoint(s, optimizer, schedule, writer)
            if restored is None and getattr(self.task, "starts_trained", False) and self.task.has_split("valid"):
                # fine-tuning a trained model: where it starts is a candidate too, so that the weights kept
                # are never worse on the validation data than those it started from
                self._evaluate_and_checkpoint(s, optimizer, schedule, writer)
            if spent:
                stop_reason, budget_spent = f"time limit of {c.time_limit:g} s reached at step {s['step']}", True
            while not spent and s["step"] < total and not s["finished"]:
                if c.gradual_unfreezing:  # every epoch, resumed mid-epoch too: requires_grad is not checkpointed
                    unfreeze_top(model, s["epoch"] + 1)
                if s["batch"] == 0:
                    self.task.start_epoch(s["epoch"])
                batches = iter(self.task.train_batches(s["epoch"], s["batch"], self.shard))
                while True:
                    # a step whole or not at all: Ctrl-C or SIGTERM inside it (after the optimizer's
                    # update but before the count, or between dropout draws) saved a state no
                    # uninterrupted run passes through, and the resume repeated or skewed the step
                    with interrupts_deferred():
                        batch = next(batches, None)
                        if batch is None:
                            break
                        loss_sum, count, norm = self._train_step(model, optimizer, batch)
                        s["elapsed"] = time.perf_counter() - started  # before the schedule, which may read it (--schedule-by-time)
                        if not isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
                            schedule.step()
                        s["step"] += 1
                        s["batch"] += 1
                        if math.isfinite(loss_sum) and (norm is None or math.isfinite(norm)):
                            s["window_loss"] += loss_sum
                            s["window_count"] += count
                            s["skipped_in_a_row"] = 0
                        else:
                            self._non_finite(s, loss_sum, norm)
                        if s["step"] % c.log_every == 0 or s["step"] == total:  # its row too, as a resume reads the rows back
                            self._log_window(s, optimizer, writer)
                    test_point(f"step {s['step']}: trained")
                    if c.sample_every and s["step"] % c.sample_every == 0:
                        self._samples(s["step"])
                    if c.eval_every and s["step"] % c.eval_every == 0:
                        self._evaluate_and_checkpoint(s, optimizer, schedule, writer)
                    if self._save_due(s):
                        self._checkpoint(s, optimizer, schedule)
                    if s["step"] >= total or s["finished"]:
                        break
                    if c.stop_at_step is not None and s["step"] >= c.stop_at_step:
                        stop_reason = f"stopped at step {s['step']} (stop_at_step)"
                        break
                    if c.time_limit is not None and broadcast_flag(s["elapsed"] >= c.time_limit, self.shard):
                        stop_reason = f"time limit of {c.time_limit:g} s reached at step {s['step']}"
                        budget_spent = True
                        break
                if stop_reason:
                    break
                if s["batch"] >= per_epoch:  # the epoch is complete
                    s["epoch"] += 1
                    s["batch"] = 0
                    if not c.eval_every and s["evaluated_at"] != s["step"]:  # a time limit's stop at an epoch's last batch validated it
                        self._evaluate_and_checkpoint(s, optimizer, schedule, writer)
            if not stop_reason:
                s["finished"] = True
            if (not stop_reason or budget_spent) and s["evaluated_at"] != s["step"]:
                self._evaluate_and_checkpoint(s, optimizer, schedule, writer)
            self._checkpoint(s, optimizer, schedule)
            self._log_unlogged(s, optimizer, writer)
        except KeyboardInterrupt:
            self._checkpoint(s, optimizer, schedule)
            self._log_unlogged(s, optimizer, writer)
            self._close(writer)
            self.say(f"interrupted at step {s['step']}; the run is saved: continue it with {self._resume_command()}")
            raise
        except TrainingDiverged as error:
            self._close(writer)
            if self._checkpointed_at is not None:
                kept = f"the run keeps its last checkpoint (step {self._checkpointed_at}) and best weights"
            else:
                kept = "no checkpoint was written: the same --run can be started again with other settings"
            if self.shard.main:
                summary = {"finished": False, "steps": s["step"], "epochs": s["epoch"], "stopped": str(error), "kept": kept}
                if math.isfinite(s["best"]):
                    summary["best_valid_criterion"] = s["best"]
                self.run.write_json("summary.json", summary)
            raise TrainingDiverged(f"{error}; {kept}") from None
        self._close(writer)
        if stop_reason:
            self.say(f"{stop_reason}; the run is saved: continue it with {self._resume_command()}" + (" and a larger --time-limit" if budget_spent else ""))
        return self._finish(s, stop_reason, test=not stop_reason or budget_spent)

    def _resume_command(self) -> str:
        """The command that continues this run, whole: ``rnnkit demo`` has no --resume of its own."""
        kind = getattr(self.task, "kind", None)
        return f"rnnkit train {kind} --resume --run {shell_path(self.run.path)}" if kind else "--resume"  # pasted into a shell as it is

    def _restore(self, s, model, optimizer, schedule, total) -> str | None:
        """The newest intact checkpoint into model, optimizer, schedule, task, random states and
        ``s``: "restored"; None when the run has none yet (killed before it: training starts from
        step 0); "done" when the run is finished and summarized (nothing is changed). The run's own
        files are left as they are (but an interrupted write's leftovers): ``_take_over`` brings them
        to the checkpoint once the resume is not refused."""
        if self.shard.main:
            removed = self.checkpoints.remove_leftovers()
            if removed:
                self.say(f"removed what an interrupted write left: {', '.join(removed)}")
        barrier(self.shard)
        checkpoint = self.checkpoints.newest_intact(set_aside=self.shard.main)
        legacy = checkpoint is None and self.run.file(STATE).exists() and self.run.file("last.safetensors").exists()
        if legacy:  # written before checkpoints had their own directory: the files at the top, unverified
            self.say(f"{self.run.path}: an older run without {self.checkpoints.root.name}/; resuming from its {STATE} and last.safetensors (no manifest to verify them)")
            checkpoint = Checkpoint(self.run.path, 0, -1)
        elif checkpoint is None:
            if self.run.file("last.safetensors").exists() or self.run.file(STATE).exists():
                raise CheckpointError(f"{self.run.path}: holds only part of a run (last.safetensors or {STATE} without the other, and no {self.checkpoints.root.name}/); it cannot be resumed")
            self.say("no checkpoint yet (the run stopped before its first one): training from step 0")
            return None
        else:
            self.checkpoints.check_views(checkpoint)
            if self.shard.main:  # a top file deleted (as check_published advises for a changed one) is restored, finished run or not
                self.checkpoints.publish(checkpoint)
        saved = load_state(checkpoint.file(STATE))
        load_weights_file(checkpoint.file("last.safetensors"), model)
        if self.averaged is not None:
            load_weights_file(checkpoint.file("ema.safetensors"), self.averaged.module)
            self.averaged.n_averaged.fill_(saved["ema_updates"])
        try:
            optimizer.load_state_dict(saved["optimizer"])
            schedule.load_state_dict(saved["schedule"])
            if self.scaler is not None and "scaler" in saved:
                self.scaler.load_state_dict(saved["scaler"])
            self.task.load_state_dict(saved["task"])
            set_rng_state(saved["rng"])
            s.update(saved["progress"])
            if self.averaged is None and s.get("averaging_since") is not None:  # nt-asgd had started averaging
                self._start_average(model)
                load_weights_file(checkpoint.file("ema.safetensors"), self.averaged.module)
                self.averaged.n_averaged.fill_(saved["ema_updates"])
        except (KeyError, ValueError, TypeError, RuntimeError) as error:
            raise CheckpointError(f"{checkpoint.file(STATE)}: does not fit this run ({type(error).__name__}: {str(error)[:120]})") from None
        # the settings that may change on resume decide again whether the run is finished
        c = self.config
        early = s["early_stopped"] and bool(c.patience) and s["bad_evals"] >= c.patience
        s["finished"] = s["step"] >= total or early
        if not early:
            s["early_stopped"] = False
        if s["finished"] and s["batch"] >= self.task.batches_per_epoch():  # as the loop counts a completed epoch
            s["epoch"], s["batch"] = s["epoch"] + 1, 0
        if s["finished"] and self._already_summarized(s):
            return "done"
        self._restored_from = checkpoint, legacy, "metrics_rows" in saved["progress"]
        return "restored"

    def _take_over(self, s) -> None:
        """The run's files brought to the checkpoint ``_restore`` read, once ``fit`` has refused what
        it refuses: metrics.csv cut back to the checkpoint's rows, the checkpoint published."""
        checkpoint, legacy, has_cursor = self._restored_from
        if self.shard.main:
            if has_cursor:
                held = self.metrics.count()
                if held < s["metrics_rows"]:  # edited, or rows a power cut lost: later cursors count what is there
                    print(f"rnnkit: note: {self.metrics.path} holds {held:,} rows where the checkpoint recorded {s['metrics_rows']:,}: "
                          "rows are missing from it; it goes on from the rows it holds", file=sys.stderr, flush=True)  # fmt: skip
                    s["metrics_rows"] = held
                self.metrics.truncate(s["metrics_rows"])  # rows written after the checkpoint are written again
            else:  # an older run's state has no metrics cursor: its rows up to the step
                self.metrics.truncate(sum(1 for row in self.metrics.rows() if row["step"].isdigit() and int(row["step"]) <= s["step"]))
                s["metrics_rows"] = self.metrics.count()
            if not legacy:
                self.checkpoints.complete(checkpoint)  # publish and prune, should a kill have come first
        barrier(self.shard)
        self._best_source, self._checkpointed_at = (checkpoint if not legacy else None), s["step"]
        where = ("training done: finishing its evaluation and summary" if s["finished"]  # not "epoch 3" of a 2-epoch run
                 else f"epoch {s['epoch'] + 1}, batch {s['batch']}")
        self.say(f"resuming at step {s['step']} ({where}) from {checkpoint.path.relative_to(self.run.path) if not legacy else STATE}")

    def _summary(self) -> dict:
        """summary.json as written, or {} where it is missing, damaged or no table (edited by hand):
        then the run is taken as not summarized, and its summary is written again."""
        try:
            summary = self.run.read_json("summary.json")
        except (OSError, ValueError):
            return {}
        return summary if isinstance(summary, dict) else {}

    def _tested_at(self, step: int) -> bool:
        """Whether summary.json holds the test of the run at ``step`` (a run the time limit stopped)."""
        summary = self._summary()
        return summary.get("steps") == step and (any(key.startswith("test_") for key in summary) or not self.task.has_split("test"))

    def _already_summarized(self, s) -> bool:
        """A finished run whose summary is written: nothing left to do."""
        summary = self._summary()
        if summary.get("finished") is True and summary.get("steps") == s["step"]:
            c = self.config
            if s["early_stopped"]:
                why = f"it stopped early, {s['bad_evals']} evaluations without a better one (--patience {c.patience}); give a larger --patience to train on"
            elif c.max_steps is not None:  # the steps decide: --epochs is not counted while --max-steps is set
                at = "at" if s["step"] == c.max_steps else "past"
                why = f"it is {at} --max-steps {c.max_steps}, which decides while it is set (not --epochs); give a larger --max-steps to train on"
            else:
                why = f"it has done its --epochs {c.epochs}; give a larger --epochs to train on"
            self.say(f"the run finished at step {s['step']} (epoch {s['epoch']}): nothing to train, {why}")
            return True
        return False

    def _non_finite(self, s, loss_sum: float, norm: float | None) -> None:
        what = f"the training loss is {loss_sum}" if not math.isfinite(loss_sum) else f"the gradient norm is {norm}"
        if not self.config.skip_non_finite:
            raise TrainingDiverged(
                f"step {s['step']}: {what} (not finite): training stopped before applying it "
                "(try --skip-non-finite, which skips such steps, or a lower --clip, both of which --resume takes; or a lower --lr in a new run)"
            )
        s["skipped"] += 1
        s["skipped_in_a_row"] += 1
        self.say(f"step {s['step']}: {what} (not finite): step skipped")
        if s["skipped_in_a_row"] >= MAX_SKIPPED_IN_A_ROW:
            raise TrainingDiverged(f"step {s['step']}: {s['skipped_in_a_row']} steps in a row had a non-finite loss or gradient norm: training stopped")

    def _save_due(self, s) -> bool:
        """A checkpoint between evaluations: every save_every_steps, or save_every_minutes after the last."""
        c = self.config
        if self._checkpointed_at == s["step"] or s["step"] >= self._total:
            return False  # the end of the training has its own checkpoint
        due = bool(c.save_every_steps and s["step"] % c.save_every_steps == 0)
        if c.save_every_minutes and not due:
            due = broadcast_flag(time.monotonic() - self._saved_clock >= 60 * c.save_every_minutes, self.shard)
        return due

    def _average_setup(self, model) -> None:
        ema = self.config.ema
        if ema and self.config.optimizer == "nt-asgd":
            raise UsageError("--ema and --optimizer nt-asgd both average the weights; give one of them")
        if not ema:
            return
        if not 0.0 < ema < 1.0:
            raise UsageError(f"ema is the decay of the moving average, in (0, 1), got {ema}")
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True)

    def _start_average(self, model) -> None:
        """NT-ASGD's averaging (Merity et al. 2017): from now on θ̄ is the plain mean of the weights
        after each step (``AveragedModel``'s default average), and evaluation, the best weights, the
        checkpoints and the test use it."""
        from torch.optim.swa_utils import AveragedModel

        self.averaged = AveragedModel(model, use_buffers=True)

    def _non_monotone_trigger(self, s, model) -> None:
        """With optimizer nt-asgd: averaging starts once ``nt_patience`` evaluations in a row have
        not improved on the best (validation stopped improving), and stays on."""
        c = self.config
        if c.optimizer != "nt-asgd" or s["averaging_since"] is not None or s["bad_evals"] < c.nt_patience:
            return
        s["averaging_since"] = s["step"]
        self._start_average(model)
        self.say(f"step {s['step']}: no improvement in {s['bad_evals']} evaluations: averaging the weights from here on (nt-asgd)")

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated, kept as the best and tested: the average with ema, or with
        nt-asgd once averaging started."""
        return self.model if self.averaged is None else self.averaged.module

    def _precision_setup(self) -> None:
        precisions = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if self.config.precision not in precisions:
            raise UsageError(f"precision must be one of {', '.join(precisions)}, got {self.config.precision!r}")
        self.autocast_dtype = precisions[self.config.precision]
        if self.autocast_dtype is not None and self.device.type != "cuda":
            reason = cpu_autocast_refusal(self.config.precision) if self.device.type == "cpu" else "is for CUDA devices and CPUs"
            if reason:
                raise UsageError(f"precision {self.config.precision} (autocast) {reason}; this run is on {self.device}")
        self.scaler = torch.amp.GradScaler("cuda") if self.config.precision == "fp16" else None

    def _train_step(self, model, optimizer, batch) -> tuple[float, int, float | None]:
        """One step: (summed loss, tokens, gradient norm). A non-finite loss or gradient norm is
        not applied (the caller stops or skips); with fp16 the gradient scaler handles infinite
        gradients itself (norm None)."""
        model.train()
        stand_in = isinstance(batch, StandIn)  # this process's share of the batch is empty: it runs one example, weighted 0
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
            loss_sum, count = self.task.loss(self.train_model, batch.batch if stand_in else batch, self.device)
        if stand_in:
            loss_sum, count = loss_sum * 0, 0
        # optimize the mean over tokens (the summed loss scaled by a constant per batch); with several
        # processes, over the global batch's tokens (DDP averages the gradients: hence × world)
        if self.shard.world == 1:
            loss = loss_sum / max(count, 1)
        else:
            count = int(all_sum(count, self.shard, self.device))
            loss = loss_sum * (self.shard.world / max(count, 1))
        if self.scaler is not None:  # fp16: scale the loss so that small gradients do not underflow
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optimizer)
        else:
            loss.backward()
        norm = _grad_norm(model.parameters(), self.config.clip)
        total = all_sum(float(loss_sum.detach()), self.shard, self.device)
        norm = None if self.scaler is not None else float(norm)
        if not math.isfinite(total) or (norm is not None and not math.isfinite(norm)):
            optimizer.zero_grad(set_to_none=True)  # not applied: the weights stay the last finite ones
            return total, count, norm
        try:
            if self.scaler is not None:
                self.scaler.step(optimizer)
                self.scaler.update()
            else:
                optimizer.step()
        except RuntimeError as error:  # Adam's step size lr / (1 - β1^t) past float32's largest, at an --lr that is itself within it
            if "without overflow" not in str(error):
                raise
            raise TrainingDiverged(f"the update at --lr {self.config.lr:g} overflows float32 ({error}): give a smaller --lr") from None
        optimizer.zero_grad(set_to_none=True)
        if self.averaged is not None:
            self.averaged.update_parameters(model)
        return total, count, norm

    def _log_window(self, s, optimizer, writer) -> None:
        """A metrics row for the steps since the last one. Its rate is over the window's training
        seconds as the run counts them (``elapsed``), so a window that a resume continues is timed
        across both processes, not by the second's clock alone (4.5 million tokens/s once)."""
        if not self.shard.main:
            s["window_loss"], s["window_count"], s["window_elapsed"] = 0.0, 0, s["elapsed"]
            return
        elapsed = s["elapsed"] - s["window_elapsed"]
        loss = s["window_loss"] / max(s["window_count"], 1)
        lr = max(group["lr"] for group in optimizer.param_groups)  # the top layers' with --discriminative-lr (the first group is the embedding's, lr / factor^depth)
        rate = s["window_count"] / max(elapsed, 1e-9)
        self._append_metrics(
            step=s["step"], epoch=self._epoch_of_step(s), split="train", loss=f"{loss:.5f}", perplexity=f"{perplexity(loss):.3f}",
            lr=f"{lr:.3g}", tokens_per_s=f"{rate:.0f}", elapsed_s=f"{s['elapsed']:.1f}",
        )  # fmt: skip
        if writer is not None:
            writer.add_scalar("loss/train", loss, s["step"])
            writer.add_scalar("lr", lr, s["step"])
        if self._bar is not None:
            self._bar.set_postfix_str(f"loss {loss:.3f} | ppl {perplexity(loss):.1f} | {rate:,.0f} tok/s | lr {lr:.2g}")
            self._bar.n = s["step"]
            self._bar.refresh()
        s["window_loss"], s["window_count"], s["window_elapsed"] = 0.0, 0, s["elapsed"]

    def _log_unlogged(self, s, optimizer, writer) -> None:
        """At a stop between two ``log_every`` steps (a time limit, Ctrl-C, an uneven last epoch):
        the row of the steps since the last one. Written after the last checkpoint, whose metrics
        cursor and window leave it out: a resume removes it and its next row averages the same
        steps as an uninterrupted run's."""
        if s["window_count"]:
            self._log_window(s, optimizer, writer)

    @staticmethod
    def _epoch_of_step(s) -> int:
        """The 1-based epoch that step ``s["step"]`` belongs to, for metrics rows: training windows
        and evaluations, mid-epoch (``--eval-every``) or at an epoch's end, read alike (0 before any step)."""
        return s["epoch"] + (1 if s["batch"] else 0)  # s["epoch"] counts completed epochs; batch 0 means one just ended

    def _append_metrics(self, **row) -> None:
        self.metrics.append(**row)
        self._metrics_rows += 1
        test_point(f"step {row['step']}: metrics row {row['split']}")

    def _samples(self, step: int) -> None:
        if not self.shard.main:
            return
        lines = self.task.report(self.eval_model, step, self.device)
        if lines:
            self.say(f"-- samples at step {step}")
            for line in lines:
                self.say(f"   {line}")

    def _evaluation_due(self, s) -> bool:
        """Whether the step reached ends with an evaluation that has not run: one an interrupt cut
        short (its checkpoint is of the step before the evaluation's record), which a resume runs
        first, as the run without the interrupt did."""
        c = self.config
        due = s["step"] % c.eval_every == 0 if c.eval_every else s["batch"] == 0  # batch 0: an epoch just ended
        return due and s["step"] > 0 and not s["finished"] and s["evaluated_at"] != s["step"]

    def _evaluate_and_checkpoint(self, s, optimizer, schedule, writer) -> None:
        """Validate, then record the result (metrics row, best score, patience, schedule) and commit
        a checkpoint as one unit: an interrupt during the evaluation changes nothing, and a resume
        runs the evaluation again (``_evaluation_due``); one during the record comes after it."""
        result = self.task.evaluate(self.eval_model, "valid", self.device) if self.task.has_split("valid") else None
        with interrupts_deferred():
            self._record_evaluation(s, result, optimizer, schedule, writer)

    def _record_evaluation(self, s, result, optimizer, schedule, writer) -> None:
        s["evaluated_at"] = s["step"]
        improved = True  # without a validation split, the newest weights are the best
        if result is not None:
            if not math.isfinite(result["loss"]):  # finite weights whose outputs overflow (--skip-non-finite let them grow)
                raise TrainingDiverged(f"step {s['step']}: the validation loss is {result['loss']} (not finite): the model's outputs "
                                       f"overflow, training stopped (try a lower --clip, which --resume takes, or a lower --lr in a new run)")
            criterion = float(result.get("criterion", result["loss"]))  # a plain float (not numpy's) in the state
            self._log_evaluation(s, "valid", result, writer)
            improved = criterion < s["best"]
            self.say(f"step {s['step']}: valid {self.task.describe(result)}" + (" (best)" if improved else ""))
            if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
                schedule.step(criterion)
            if improved:
                s["best"], s["bad_evals"] = criterion, 0
            else:
                s["bad_evals"] += 1
                if self.config.patience and s["bad_evals"] >= self.config.patience:
                    self.say(f"early stop: no improvement in {s['bad_evals']} evaluations")
                    s["finished"] = s["early_stopped"] = True
                self._non_monotone_trigger(s, self.model)
        self._checkpoint(s, optimizer, schedule, best_now=improved)

    def _log_evaluation(self, s, split: str, result: dict, writer) -> None:
        if not self.shard.main:
            return
        loss = result["loss"]
        extra = {k: v for k, v in result.items() if k not in ("loss", "count") and isinstance(v, (int, float))}
        self._append_metrics(
            step=s["step"], epoch=self._epoch_of_step(s), split=split, loss=f"{loss:.5f}", perplexity=f"{perplexity(loss):.3f}",
            elapsed_s=f"{s['elapsed']:.1f}", other=";".join(f"{k}={v:.5g}" for k, v in extra.items()),
        )  # fmt: skip
        if writer is not None:
            writer.add_scalar(f"loss/{split}", loss, s["step"])
            for key, value in extra.items():
                writer.add_scalar(f"{key}/{split}", value, s["step"])

    def _checkpoint(self, s, optimizer, schedule, best_now: bool = False) -> None:
        """One checkpoint, committed as a unit (``Checkpoints.write``); the best weights are
        written when they changed, else linked from the checkpoint that holds them."""
        if self._checkpointed_at == s["step"] and not best_now:
            return  # nothing new since the last one
        for name, p in self.model.state_dict().items():
            if p.is_floating_point() and not torch.isfinite(p).all():
                raise TrainingDiverged(f"step {s['step']}: the weights ({name}) are no longer finite: training stopped (try a lower --clip, which --resume takes, or a lower --lr in a new run)")
        if not self.shard.main:
            self._saved_clock, self._checkpointed_at = time.monotonic(), s["step"]
            return
        s["metrics_rows"] = self._metrics_rows
        state = {
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "task": self.task.state_dict(),
            "rng": rng_state(),
            "progress": dict(s),
        }
        if self.averaged is not None:
            state["ema_updates"] = int(self.averaged.n_averaged)
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        writers = {"last.safetensors": lambda path: save_model(self.model, str(path))}
        if self.averaged is not None:
            writers["ema.safetensors"] = lambda path: save_model(self.averaged.module, str(path))
        reuse = {}
        legacy_best = self.run.file("best.safetensors")
        if not best_now and self._best_source is None and self._checkpointed_at is not None and legacy_best.exists():
            writers["best.safetensors"] = lambda path: shutil.copyfile(legacy_best, path)  # an older run's best, resumed
        elif best_now or self._best_source is None:
            writers["best.safetensors"] = lambda path: save_model(self.eval_model, str(path))
        else:
            reuse["best.safetensors"] = self._best_source
        writers[STATE] = lambda path: _write_new(path, state_bytes(state))
        with interrupts_deferred():  # the commit and the trainer's record of it, whole: a Ctrl-C then comes after both
            self._best_source = self.checkpoints.write(s["step"], writers, reuse, self._run_files, self._settings)  # it holds the best weights too
            self._saved_clock, self._checkpointed_at = time.monotonic(), s["step"]

    def _finish(self, s, stop_reason: str | None, test: bool) -> dict:
        """The loss curve and summary.json; the test evaluation (on the best weights) once the
        training is complete or its time budget spent, not when it was only paused."""
        summary = {"finished": stop_reason is None, "steps": s["step"], "epochs": s["epoch"], "train_seconds": round(s["elapsed"], 1)}
        if stop_reason:
            summary["stopped"] = stop_reason
        if s["skipped"]:
            summary["skipped_steps"] = s["skipped"]
        if math.isfinite(s["best"]):
            summary["best_valid_criterion"] = s["best"]
            summary["criterion"] = f"{getattr(self.task, 'criterion', 'the validation criterion')} (lower is better)"  # TaskBase's, or a bare task's
        barrier(self.shard)  # rank 0 has written the best weights
        if test and self.task.has_split("test"):
            self.run.load_weights("best", self.model)
            result = self.task.evaluate(self.model, "test", self.device)
            summary.update({f"test_{k}": v for k, v in result.items()})
            self._log_evaluation(s, "test", result, None)
            chosen = "best weights" if self.task.has_split("valid") else "last weights: no validation split to choose others"
            self.say(f"test {self.task.describe(result)} ({chosen})")
            if self.shard.main:
                summary.update(self.task.save_pictures(result, self.run.path, "test"))
        if not self.shard.main:
            return summary
        from ..plots import plot_losses

        if plot_losses(self.metrics.rows(), self.run.file("loss_curve.png")):
            summary["loss_curve"] = str(self.run.file("loss_curve.png"))
        self.run.write_json("summary.json", summary)
        test_point("summary written")
        return summary

    # -- optional helpers ---------------------------------------------------------------------------
    def _progress(self, total: int, initial: int):
        if not self.config.progress or not self.shard.main:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        # disable=None: a bar on a terminal only; a pipe or a log file would get a frame per update
        return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr, disable=None)

    def _tensorboard(self, purge_after: int | None = None):
        """A TensorBoard writer; on resume, events logged after the checkpoint's step are purged
        (TensorBoard hides them), so no step is shown twice."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: CSV only
            return None
        return SummaryWriter(str(self.run.file("tensorboard")), purge_step=None if purge_after is None else purge_after + 1)

    def _close(self, writer) -> None:
        if writer is not None:
            writer.close()
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def config_dict(config: TrainingConfig) -> dict:
    return asdict(config)
