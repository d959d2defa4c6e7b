"""The music task's declaration, without importing torch (``rnnkit.tasks.spec``): its data settings,
model defaults and ``rnnkit train --help`` texts. Its work is ``rnnkit.tasks.music``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..settings import positive_int, probability, semitone_shift, setting
from ..settings import step_seconds as seconds_per_step
from .spec import check_training_files, RECURRENT_REGULARISERS, TaskSpec


def is_midi_folder(path: str) -> bool:
    """Whether music is read from ``path`` as a folder of MIDI files (cut into steps of ``--step-seconds``);
    any file is read as pieces in steps already (JSON, pickle)."""
    return Path(path).is_dir()


def music_inputs(data) -> list[str]:
    """Every path the run reads pieces from: the training inputs, then ``--valid`` and ``--test``."""
    return [str(p) for p in ([data.train] if isinstance(data.train, str) else data.train or []) if str(p)] + [p for p in (data.valid, data.test) if p]


@dataclass
class MusicDataConfig:
    train: list[str] | str = setting("", help="a JSB Chorales JSON/pickle file (with its splits) or a folder of MIDI files")
    valid: str | None = setting(None, help="validation file or MIDI folder (none: the training file's own split)")
    test: str | None = setting(None, help="test file or MIDI folder")
    representation: str = setting("piano-roll", choices=("piano-roll", "events"),
                                  help="piano-roll: 88 notes on or off per step; events: one token per voice per step")
    voices: int = setting(4, type=positive_int, help="tokens per step with events",
                          applies=lambda d: None if d.representation == "events" else "is the tokens per step of --representation events; a piano roll holds every key")
    step_seconds: float = setting(0.5, type=seconds_per_step, help="MIDI folders: seconds per time step (0.0001 to 16: a step is written as a MIDI beat)",
                                  applies=lambda d: None if any(map(is_midi_folder, music_inputs(d))) else "cuts MIDI files into steps, and no training, --valid or --test input is a folder of MIDI files: a JSON or pickle file of pieces is in steps already")
    split: tuple[float, float] = setting((0.1, 0.1), type=probability, nargs=2, metavar=("VALID", "TEST"),
                                         help="fractions of a MIDI folder split off for validation and test")
    transpose: int = setting(0, type=semitone_shift, help="augment: random shifts within this many semitones, 0 to 87 (a piece a shift takes off the piano is kept unshifted)")
    batch_size: int = setting(16, type=positive_int, help="sequences per batch")
    eval_batch_size: int = setting(64, type=positive_int, help="sequences per batch in evaluation")

    def check(self) -> None:
        check_training_files(self.train, "no training data given")
        if self.representation not in ("piano-roll", "events"):
            raise UsageError(f"representation must be 'piano-roll' or 'events', got {self.representation!r}")


PIANO_DEFAULTS = dict(cell="gru", hidden_size=256, num_layers=1, dropout=0.3, head_sizes=[], engine="auto", **RECURRENT_REGULARISERS)


EVENT_DEFAULTS = dict(cell="gru", embedding_size=64, hidden_size=256, num_layers=1, dropout=0.3, head_sizes=[], engine="auto", **RECURRENT_REGULARISERS)


class MusicSpec(TaskSpec):
    """A polyphonic music model (piano roll or voice tokens) on JSB Chorales files or MIDI

    Train a one-to-many music model from x<1> = 0: a piano roll with 88 independent Bernoulli
    outputs per step, or voice tokens with a language model. Reports the negative log-likelihood per
    time step.

    examples:
      rnnkit train music jsb-chorales-quarter.json                     # its train/valid/test splits; piano roll
      rnnkit train music midi_folder/ --representation events --transpose 3
      rnnkit compose RUN --length 64 --out song.mid --plot song.png --temperature 0.9
    """

    kind = "music"
    Data = MusicDataConfig
    model_defaults = EVENT_DEFAULTS  # for model_keys; model_config picks by representation

    @classmethod
    def model_keys(cls):
        return {*super().model_keys(), "input_dropout"}  # a piano-roll setting, not among EVENT_DEFAULTS
