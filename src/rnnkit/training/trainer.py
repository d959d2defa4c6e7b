"""The trainer: knows nothing about models or data, only about a ``Task``.

A task (``rnnkit.tasks``) provides the batches of each epoch, deterministically, the summed loss of
a batch, evaluation on a split, optional progress samples, and any state it carries between batches.
The trainer provides the rest: optimizer and schedule, gradient clipping, evaluation and early
stopping, a progress bar, metrics (CSV, and TensorBoard when installed), checkpoints in the run
directory, and ``resume``, which continues exactly where the last checkpoint left off: same weights,
optimizer and schedule, random-number states, step and position in the data.

With ``ema`` (a decay such as 0.998) the trainer also keeps an exponential moving average of the
weights, θ̄ ← ema θ̄ + (1 - ema) θ after every step (torch's ``AveragedModel``): evaluation, the best
weights and the test use θ̄, training goes on with θ. Averaging the last few hundred steps smooths
the noise of a high learning rate, which helps most on small data sets.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterator, Protocol

import torch
from torch import Tensor, nn

from .checkpoint import MetricsLog, RunDir
from .distributed import Shard, all_sum, barrier, broadcast_flag, local_device, setup
from .optim import make_optimizer, make_schedule


class Task(Protocol):
    """What the trainer needs from a task. ``evaluate`` returns a dict with at least ``loss`` (per
    token or per example) and ``count``; ``criterion`` (lower is better, default ``loss``) chooses the
    best weights and drives early stopping; other numeric entries are logged too. ``describe``
    turns such a dict into one line for the user."""

    def batches_per_epoch(self) -> int: ...
    def train_batches(self, epoch: int, start: int) -> Iterator[Any]: ...
    def start_epoch(self, epoch: int) -> None: ...
    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[Tensor, int]: ...
    def has_split(self, split: str) -> bool: ...
    def evaluate(self, model: nn.Module, split: str, device: torch.device) -> dict: ...
    def describe(self, result: dict) -> str: ...
    def report(self, model: nn.Module, step: int, device: torch.device) -> list[str]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class TrainingConfig:
    epochs: int = 10
    max_steps: int | None = None  # overrides epochs × batches per epoch
    lr: float = 2e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd only
    schedule: str = "cosine"
    warmup_steps: int = 0
    clip: float | None = 1.0  # max gradient norm; None: no clipping
    ema: float | None = None  # decay of an exponential moving average of the weights, used to evaluate
    patience: int | None = None  # early stopping: evaluations without improvement
    eval_every: int | None = None  # steps between evaluations; None: once per epoch
    sample_every: int | None = None  # steps between printed samples
    log_every: int = 50
    time_limit: float | None = None  # seconds of training, over all resumes; checkpoint and stop
    stop_at_step: int | None = None  # checkpoint and stop here (the run can be resumed)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16: autocast on CUDA (fp16 with a gradient scaler)
    progress: bool = True

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    def __init__(self, task: Task, model: nn.Module, config: TrainingConfig, run: RunDir, shard: Shard | None = None):
        self.task = task
        self.model = model
        self.config = config
        self.run = run
        self.metrics = MetricsLog(run)
        self.shard = shard if shard is not None else setup()  # torchrun: several processes share the work
        self.device = local_device(self.shard, resolve_device(config.device))
        self.train_model = model  # wrapped in DistributedDataParallel when several processes train
        self.averaged = None  # the moving average of the weights (ema), an AveragedModel
        self._bar = None

    def say(self, text: str) -> None:
        if not self.shard.main:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    # -- the loop --------------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        c = self.config
        model = self.model.to(self.device)
        if self.shard.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        optimizer = make_optimizer(c.optimizer, model, c.lr, c.weight_decay, c.momentum)
        self._precision_setup()
        self._average_setup(model)
        per_epoch = self.task.batches_per_epoch()
        total = c.max_steps if c.max_steps is not None else per_epoch * c.epochs
        schedule = make_schedule(c.schedule, optimizer, total, c.warmup_steps)
        s = {"step": 0, "epoch": 0, "batch": 0, "best": math.inf, "bad_evals": 0, "elapsed": 0.0, "finished": False, "evaluated_at": -1}
        if resume:
            saved = self.run.load_state()
            self.run.load_weights("last", model)
            if self.averaged is not None:
                self.run.load_weights("ema", self.averaged.module)
                self.averaged.n_averaged.fill_(saved["ema_updates"])
            optimizer.load_state_dict(saved["optimizer"])
            schedule.load_state_dict(saved["schedule"])
            self.task.load_state_dict(saved["task"])
            set_rng_state(saved["rng"])
            s.update(saved["progress"])
            if self.shard.main:
                self.metrics.truncate_after(s["step"])
            self.say(f"resuming at step {s['step']} (epoch {s['epoch'] + 1}, batch {s['batch']})")
        else:
            torch.manual_seed(c.seed)
            random.seed(c.seed)
        writer = self._tensorboard() if self.shard.main else None
        window = {"loss": 0.0, "count": 0, "start": time.perf_counter(), "tokens": 0}
        started = time.perf_counter() - s["elapsed"]
        stop_reason = None
        budget_spent = False  # a time limit ends the training as planned: validated and tested, unlike other stops
        self._bar = self._progress(total, s["step"])
        try:
            while s["step"] < total and not s["finished"]:
                if s["batch"] == 0:
                    self.task.start_epoch(s["epoch"])
                for batch in self.task.train_batches(s["epoch"], s["batch"], self.shard):
                    loss_sum, count = self._train_step(model, optimizer, batch)
                    if not isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        schedule.step()
                    s["step"] += 1
                    s["batch"] += 1
                    window["loss"] += loss_sum
                    window["count"] += count
                    s["elapsed"] = time.perf_counter() - started
                    if s["step"] % c.log_every == 0 or s["step"] == total:
                        self._log_window(s, window, optimizer, writer)
                    if c.sample_every and s["step"] % c.sample_every == 0:
                        self._samples(s["step"])
                    if c.eval_every and s["step"] % c.eval_every == 0:
                        self._evaluate_and_checkpoint(s, optimizer, schedule, writer)
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
                    if not c.eval_every:
                        self._evaluate_and_checkpoint(s, optimizer, schedule, writer)
            if not stop_reason:
                s["finished"] = True
            if (not stop_reason or budget_spent) and s["evaluated_at"] != s["step"]:
                self._evaluate_and_checkpoint(s, optimizer, schedule, writer)
            self._checkpoint(s, optimizer, schedule)
        except KeyboardInterrupt:
            self._checkpoint(s, optimizer, schedule)
            self._close(writer)
            self.say(f"interrupted at step {s['step']}; the run is saved: continue it with --resume")
            raise
        self._close(writer)
        if stop_reason:
            self.say(f"{stop_reason}; the run is saved: continue it with --resume" + (" and a larger --time-limit" if budget_spent else ""))
        return self._finish(s, stop_reason, test=not stop_reason or budget_spent)

    def _average_setup(self, model) -> None:
        ema = self.config.ema
        if not ema:
            return
        if not 0.0 < ema < 1.0:
            raise ValueError(f"ema is the decay of the moving average, in (0, 1), got {ema}")
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True)

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated, kept as the best and tested: the average with ema."""
        return self.model if self.averaged is None else self.averaged.module

    def _precision_setup(self) -> None:
        precisions = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if self.config.precision not in precisions:
            raise ValueError(f"precision must be one of {', '.join(precisions)}, got {self.config.precision!r}")
        self.autocast_dtype = precisions[self.config.precision]
        if self.autocast_dtype is not None and self.device.type != "cuda":
            raise ValueError(f"precision {self.config.precision} (autocast) is for CUDA devices; this run is on {self.device}")
        self.scaler = torch.amp.GradScaler("cuda") if self.config.precision == "fp16" else None

    def _train_step(self, model, optimizer, batch) -> tuple[float, int]:
        model.train()
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
            loss_sum, count = self.task.loss(self.train_model, batch, self.device)
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
        if self.config.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if self.averaged is not None:
            self.averaged.update_parameters(model)
        return all_sum(float(loss_sum.detach()), self.shard, self.device), count

    def _log_window(self, s, window, optimizer, writer) -> None:
        if not self.shard.main:
            window.update(loss=0.0, count=0, start=time.perf_counter())
            return
        elapsed = time.perf_counter() - window["start"]
        loss = window["loss"] / max(window["count"], 1)
        lr = optimizer.param_groups[0]["lr"]
        rate = window["count"] / max(elapsed, 1e-9)
        self.metrics.append(
            step=s["step"], epoch=s["epoch"] + 1, split="train", loss=f"{loss:.5f}", perplexity=f"{math.exp(min(loss, 50)):.3f}",
            lr=f"{lr:.3g}", tokens_per_s=f"{rate:.0f}", elapsed_s=f"{s['elapsed']:.1f}",
        )  # fmt: skip
        if writer is not None:
            writer.add_scalar("loss/train", loss, s["step"])
            writer.add_scalar("lr", lr, s["step"])
        if self._bar is not None:
            self._bar.set_postfix_str(f"loss {loss:.3f} | ppl {math.exp(min(loss, 50)):.1f} | {rate:,.0f} tok/s | lr {lr:.2g}")
            self._bar.n = s["step"]
            self._bar.refresh()
        window.update(loss=0.0, count=0, start=time.perf_counter())

    def _samples(self, step: int) -> None:
        if not self.shard.main:
            return
        lines = self.task.report(self.eval_model, step, self.device)
        if lines:
            self.say(f"-- samples at step {step}")
            for line in lines:
                self.say(f"   {line}")

    def _evaluate_and_checkpoint(self, s, optimizer, schedule, writer) -> None:
        s["evaluated_at"] = s["step"]
        if self.task.has_split("valid"):
            result = self.task.evaluate(self.eval_model, "valid", self.device)
            criterion = result.get("criterion", result["loss"])
            self._log_evaluation(s, "valid", result, writer)
            improved = criterion < s["best"]
            self.say(f"step {s['step']}: valid {self.task.describe(result)}" + (" (best)" if improved else ""))
            if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
                schedule.step(criterion)
            if improved:
                s["best"], s["bad_evals"] = criterion, 0
                if self.shard.main:
                    self.run.save_weights("best", self.eval_model)
            else:
                s["bad_evals"] += 1
                if self.config.patience and s["bad_evals"] >= self.config.patience:
                    self.say(f"early stop: no improvement in {s['bad_evals']} evaluations")
                    s["finished"] = True
        elif self.shard.main:
            self.run.save_weights("best", self.eval_model)
        self._checkpoint(s, optimizer, schedule)

    def _log_evaluation(self, s, split: str, result: dict, writer) -> None:
        if not self.shard.main:
            return
        loss = result["loss"]
        extra = {k: v for k, v in result.items() if k not in ("loss", "count") and isinstance(v, (int, float))}
        self.metrics.append(
            step=s["step"], epoch=s["epoch"], split=split, loss=f"{loss:.5f}", perplexity=f"{math.exp(min(loss, 50)):.3f}",
            elapsed_s=f"{s['elapsed']:.1f}", other=";".join(f"{k}={v:.5g}" for k, v in extra.items()),
        )  # fmt: skip
        if writer is not None:
            writer.add_scalar(f"loss/{split}", loss, s["step"])
            for key, value in extra.items():
                writer.add_scalar(f"{key}/{split}", value, s["step"])

    def _checkpoint(self, s, optimizer, schedule) -> None:
        if not self.shard.main:
            return
        self.run.save_weights("last", self.model)
        if self.averaged is not None:
            self.run.save_weights("ema", self.averaged.module)
        if not self.run.file("best.safetensors").exists():
            self.run.save_weights("best", self.eval_model)
        state = {
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "task": self.task.state_dict(),
            "rng": rng_state(),
            "progress": dict(s),
        }
        if self.averaged is not None:
            state["ema_updates"] = int(self.averaged.n_averaged)
        self.run.save_state(state)

    def _finish(self, s, stop_reason: str | None, test: bool) -> dict:
        """The loss curve and summary.json; the test evaluation (on the best weights) once the
        training is complete or its time budget spent, not when it was only paused."""
        summary = {"finished": stop_reason is None, "steps": s["step"], "epochs": s["epoch"], "train_seconds": round(s["elapsed"], 1)}
        if stop_reason:
            summary["stopped"] = stop_reason
        if math.isfinite(s["best"]):
            summary["best_valid_criterion"] = s["best"]
        barrier(self.shard)  # rank 0 has written the best weights
        if test and self.task.has_split("test"):
            self.run.load_weights("best", self.model)
            result = self.task.evaluate(self.model, "test", self.device)
            summary.update({f"test_{k}": v for k, v in result.items()})
            self._log_evaluation(s, "test", result, None)
            self.say(f"test {self.task.describe(result)} (best weights)")
            save_pictures = getattr(self.task, "save_pictures", None)  # optional: a task's own pictures
            if save_pictures is not None and self.shard.main:
                summary.update(save_pictures(result, self.run.path, "test"))
        if not self.shard.main:
            return summary
        from .plots import plot_losses

        if plot_losses(self.metrics.rows(), self.run.file("loss_curve.png")):
            summary["loss_curve"] = str(self.run.file("loss_curve.png"))
        self.run.write_json("summary.json", summary)
        return summary

    # -- optional helpers ---------------------------------------------------------------------------
    def _progress(self, total: int, initial: int):
        if not self.config.progress or not self.shard.main:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: CSV only
            return None
        return SummaryWriter(str(self.run.file("tensorboard")))

    def _close(self, writer) -> None:
        if writer is not None:
            writer.close()
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def config_dict(config: TrainingConfig) -> dict:
    return asdict(config)
