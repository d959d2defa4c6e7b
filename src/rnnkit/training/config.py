"""How to train (``TrainingConfig``), without importing torch: ``rnnkit train KIND --help`` makes
its options from these fields (``rnnkit.settings``) and answers at once. The trainer
(``rnnkit.training.trainer``, which re-exports ``TrainingConfig``) does the work.

The optimizers' and schedules' names are those of ``rnnkit.training.optim``'s registry, which holds
torch code: ``OPTIMIZER_NAMES`` lists them, and tests/test_task_settings.py checks it equals
``OPTIMIZERS``' keys.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import UsageError
from ..settings import check_settings, ema_decay, learning_rate, nonnegative_float, nonnegative_int, number, positive_float, positive_int, probability, seed, setting
from ..settings import device as device_name

OPTIMIZER_NAMES = ("adam", "adamw", "sgd", "nt-asgd")  # rnnkit.training.optim.OPTIMIZERS
SCHEDULES = ("constant", "cosine", "plateau", "slanted")  # rnnkit.training.optim.make_schedule
PRECISIONS = ("fp32", "bf16", "fp16")  # autocast's dtypes: CUDA, and bf16 on CPUs with native bfloat16 (fp16 with a gradient scaler)


# the schedules a linear warm-up would not fit (--warmup-steps refused, saying why)
WARMUP_REFUSED = {
    "plateau": "is a ramp of the stepped schedules; --schedule plateau lowers the rate on the validation score only",
    # its own ramp starts again from lr/32 after the warm-up: the rate climbed to lr, fell 32-fold and climbed again
    "slanted": "is a ramp of its own, and --schedule slanted ramps up already (over its first 10% of steps, from lr/32)",
}


@dataclass
class TrainingConfig:
    """How to train: the optimizer and its schedule, when to evaluate, stop and checkpoint, where to
    run. Each field is a ``rnnkit train`` option of the same name (``rnnkit.settings``)."""

    epochs: int = setting(10, type=positive_int, help="passes over the training data")
    max_steps: int | None = setting(None, type=positive_int, help="stop after this many steps (overrides --epochs)")
    lr: float = setting(2e-3, type=learning_rate, help="learning rate")
    optimizer: str = setting("adamw", choices=OPTIMIZER_NAMES, help="the optimizer")
    weight_decay: float = setting(0.0, type=nonnegative_float, help="L2 penalty (decoupled with adamw)")
    momentum: float = setting(0.0, type=probability, help="for sgd", applies=lambda c: None if c.optimizer in ("sgd", "nt-asgd") else f"is SGD's; --optimizer {c.optimizer} has none")
    schedule: str = setting("cosine", choices=SCHEDULES, help="how the learning rate changes over the steps (slanted: ULMFiT's slanted triangle, up over the first 10%, then down)")
    schedule_by_time: bool = setting(False, help="with --time-limit: cosine and slanted run over the time limit, or over the steps should they end first, "
                                                 "so that a run the clock stops ends annealed (not repeatable step for step)")
    warmup_steps: int = setting(0, type=nonnegative_int, help="linear warm-up",
                                applies=lambda c: WARMUP_REFUSED.get(c.schedule) if c.warmup_steps else None)
    # ULMFiT's fine-tuning (rnnkit.training.optim), for models with layer groups (the classifier)
    discriminative_lr: float = setting(1.0, type=number(float, low=1, name="factor"), metavar="FACTOR", help="layer group d levels below the top learns at lr / FACTOR^d (ULMFiT: 2.6; 1 = off)")
    gradual_unfreezing: bool = setting(False, help="train only the top layer group in epoch 1, the top two in epoch 2, ... (ULMFiT)")
    clip: float | None = setting(1.0, type=nonnegative_float, help="clip the gradient norm to this (0 = off)")  # None: no clipping
    ema: float | None = setting(None, type=ema_decay, help="evaluate a moving average of the weights with this decay, e.g. 0.998")
    nt_patience: int = setting(5, type=positive_int, help="for --optimizer nt-asgd: start averaging the weights once this many evaluations in a row have not improved on the best (AWD-LSTM's nonmono)",
                               applies=lambda c: None if c.optimizer == "nt-asgd" else f"is for --optimizer nt-asgd, not {c.optimizer}")
    patience: int | None = setting(None, type=positive_int, help="early stop after this many evaluations without improvement")
    eval_every: int | None = setting(None, type=positive_int, help="steps between evaluations (none: once per epoch)")
    sample_every: int | None = setting(None, type=nonnegative_int, help="print samples every this many steps (language models)")
    log_every: int = setting(50, type=positive_int, help="steps per metrics row")
    time_limit: float | None = setting(None, type=positive_float, help="seconds of training, over all resumes, then checkpoint and stop")
    stop_at_step: int | None = setting(None, type=positive_int, help="checkpoint and stop at this step (resumable)")
    save_every_steps: int | None = setting(None, type=positive_int, help="checkpoint every this many steps, besides each evaluation")
    # ... and after this many minutes without one (a kill loses less)
    save_every_minutes: float | None = setting(5.0, type=positive_float, help="checkpoint when this many minutes passed since the last one")
    keep_checkpoints: int = setting(2, type=positive_int, help="newest checkpoints kept in RUN/checkpoints")
    skip_non_finite: bool = setting(False, help="skip a step whose loss or gradient norm is NaN or infinite",
                                    off_help="stop the training at such a step")
    seed: int = setting(0, type=seed, help="seed of the initial weights, the batch order and dropout")
    device: str = setting("auto", type=device_name, help="auto, cpu, cuda, cuda:1 ...")
    precision: str = setting("fp32", choices=PRECISIONS, help="mixed precision (autocast): bf16 or fp16 on CUDA, bf16 on a CPU with native bfloat16 (AVX512_BF16 or AMX)")
    progress: bool = setting(True, help="show a progress bar", off_help="no progress bar")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingConfig":
        """The configuration of ``values``' training settings (others are ignored); ``clip`` 0 is
        no clipping (None), as ``--clip 0`` says."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        if values.get("clip") == 0:
            values["clip"] = None
        return cls(**values)

    def check(self, source: str = "training setting") -> None:
        """A one-line ``UsageError`` for a setting of the wrong type, not finite, out of range or not
        one of its choices, by the field's own option (settings from a config file or a resumed run
        do not pass through the command line's checks)."""
        check_settings(self, source)
        if self.schedule_by_time and self.schedule not in ("cosine", "slanted"):
            raise UsageError(f"{source} schedule_by_time: --schedule-by-time shapes the cosine and slanted schedules, not {self.schedule}")
