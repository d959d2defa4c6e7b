"""Music data: polyphonic sequences as piano rolls or as voice tokens, read from the JSB Chorales
files or from MIDI, written back to MIDI.

A *sequence* is a list of time steps; a step is the list of MIDI pitches sounding then (a chord;
empty for silence), at a fixed resolution (the JSB quarter data: one step per quarter note).

* Piano roll: step t becomes a binary vector over the 88 piano keys (index = pitch - 21).
* Voice tokens: step t becomes ``voices`` tokens, its pitches from the highest down (``p72``),
  ``rest`` where fewer notes sound; a sequence is then a sentence for a language model.

MIDI: writing merges a pitch held over consecutive steps into one note; reading samples the
piano roll at the step resolution (pretty_midi), so roll -> MIDI -> roll is exact at that resolution.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from .text import DataError

LOWEST, KEYS = 21, 88  # piano range: MIDI 21 (A0) .. 108 (C8)

Sequence = list[list[int]]


def _check_sequences(sequences, where: str) -> list[Sequence]:
    if not isinstance(sequences, list) or not sequences:
        raise DataError(f"{where}: expected a non-empty list of sequences")
    out = []
    for i, sequence in enumerate(sequences):
        if not isinstance(sequence, list) or not sequence:
            raise DataError(f"{where}: sequence {i} is not a non-empty list of time steps")
        steps = []
        for t, step in enumerate(sequence):
            if not isinstance(step, (list, tuple)):
                raise DataError(f"{where}: sequence {i}, step {t}: expected a list of pitches, got {step!r}")
            pitches = []
            for p in step:
                if int(p) != p or not LOWEST <= int(p) < LOWEST + KEYS:
                    raise DataError(f"{where}: sequence {i}, step {t}: pitch {p!r} outside the piano range {LOWEST}..{LOWEST + KEYS - 1}")
                pitches.append(int(p))
            steps.append(sorted(set(pitches)))
        out.append(steps)
    return out


def read_chorales(path: str | Path) -> dict[str, list[Sequence]]:
    """The splits of a JSB Chorales JSON or pickle file: ``{"train": [...], "valid": [...], "test": [...]}``.
    A file holding one list of sequences counts as the training split."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".pkl":
        try:
            data = pickle.loads(path.read_bytes(), encoding="latin1")
        except Exception as error:  # noqa: BLE001 (any unpickling failure is the file's fault)
            raise DataError(f"{path}: not a readable pickle ({type(error).__name__})") from None
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text") from None
    if isinstance(data, list):
        data = {"train": data}
    if not isinstance(data, dict) or "train" not in data:
        raise DataError(f"{path}: expected {{'train': [...], 'valid': [...], 'test': [...]}} or a list of sequences")
    return {split: _check_sequences([[list(map(int, s)) for s in seq] for seq in data[split]] if isinstance(data[split], list) else data[split], f"{path} [{split}]") for split in data if split in ("train", "valid", "test")}


def piano_roll(sequence: Sequence) -> torch.Tensor:
    """(T, 88) binary float tensor."""
    roll = torch.zeros(len(sequence), KEYS)
    for t, step in enumerate(sequence):
        for pitch in step:
            roll[t, pitch - LOWEST] = 1.0
    return roll


def roll_to_sequence(roll: torch.Tensor) -> Sequence:
    return [[LOWEST + int(k) for k in torch.nonzero(row > 0.5).flatten().tolist()] for row in roll]


def transpose(sequence: Sequence, semitones: int) -> Sequence | None:
    """The sequence moved by ``semitones``; None if a note would leave the piano range."""
    moved = [[p + semitones for p in step] for step in sequence]
    if any(not LOWEST <= p < LOWEST + KEYS for step in moved for p in step):
        return None
    return moved


def to_voice_tokens(sequence: Sequence, voices: int = 4) -> list[str]:
    """``voices`` tokens per step, highest pitch first, ``rest`` where fewer notes sound."""
    tokens = []
    for step in sequence:
        pitches = sorted(step, reverse=True)[:voices]
        tokens += [f"p{p}" for p in pitches] + ["rest"] * (voices - len(pitches))
    return tokens


def from_voice_tokens(tokens: list[str], voices: int = 4) -> Sequence:
    steps = []
    for i in range(0, len(tokens) - len(tokens) % voices, voices):
        steps.append(sorted({int(t[1:]) for t in tokens[i : i + voices] if t.startswith("p") and t[1:].isdigit()}))
    return steps


def _pretty_midi():
    try:
        import pretty_midi
    except ImportError:
        raise ValueError("MIDI needs pretty_midi: pip install 'rnnkit[music]'") from None
    return pretty_midi


def write_midi(sequence: Sequence, path: str | Path, *, step_seconds: float = 0.5, program: int = 0, velocity: int = 90) -> None:
    """A MIDI file with one instrument; a pitch held over consecutive steps is one note."""
    pretty_midi = _pretty_midi()
    from ..training.checkpoint import atomic_write

    midi = pretty_midi.PrettyMIDI(initial_tempo=60.0 / step_seconds)
    instrument = pretty_midi.Instrument(program=program)
    sounding: dict[int, int] = {}  # pitch -> step where it started
    for t, step in enumerate([*sequence, []]):
        for pitch in list(sounding):
            if pitch not in step:
                instrument.notes.append(pretty_midi.Note(velocity, pitch, sounding.pop(pitch) * step_seconds, t * step_seconds))
        for pitch in step:
            sounding.setdefault(pitch, t)
    midi.instruments.append(instrument)
    # a text event at the very end, so that trailing silent steps still count in the file's length
    midi.text_events.append(pretty_midi.Text("end", len(sequence) * step_seconds))
    import io

    buffer = io.BytesIO()
    midi.write(buffer)
    atomic_write(Path(path), buffer.getvalue())


def read_midi(path: str | Path, step_seconds: float = 0.5) -> Sequence:
    """The piano roll of a MIDI file sampled every ``step_seconds`` (all instruments but drums)."""
    pretty_midi = _pretty_midi()
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # noqa: BLE001 (a broken file, whatever the parser says)
        raise DataError(f"{path}: not a readable MIDI file ({type(error).__name__})") from None
    roll = midi.get_piano_roll(fs=1.0 / step_seconds)  # (128, T)
    steps = [[int(p) for p in range(LOWEST, LOWEST + KEYS) if roll[p, t] > 0] for t in range(roll.shape[1])]
    if not steps:
        raise DataError(f"{path}: no notes")
    return steps


def read_midi_folder(folder: str | Path, step_seconds: float = 0.5) -> list[Sequence]:
    folder = Path(folder)
    files = sorted([*folder.glob("*.mid"), *folder.glob("*.midi")])
    if not files:
        raise DataError(f"{folder}: no .mid or .midi files")
    return [read_midi(f, step_seconds) for f in files]
