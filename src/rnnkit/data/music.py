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

import io
import json
import math
import numbers
import sys
from pathlib import Path

import torch

from . import textio
from .textio import DataError
from ..errors import UsageError, require
from ..settings import SHORTEST_STEP_SECONDS

LOWEST, KEYS = 21, 88  # piano range: MIDI 21 (A0) .. 108 (C8)

Sequence = list[list[int]]
REST = "rest"  # the token of a voice without a note in its step (--representation events)


def _pitch(p, where: str) -> int:
    """A pitch as read from JSON: a whole MIDI number on the piano, else a ``DataError`` naming it
    (a fraction is never rounded, an infinity never reaches ``int``)."""
    shown = repr(p) if len(repr(p)) <= 40 else repr(p)[:37] + "..."
    if isinstance(p, bool) or not isinstance(p, numbers.Real):  # numbers.Real: numpy's numbers too
        raise DataError(f"{where}: pitch {shown} is not a number")
    if not isinstance(p, numbers.Integral) and not math.isfinite(p):
        raise DataError(f"{where}: pitch {shown} is not a finite number")
    if not isinstance(p, numbers.Integral) and not float(p).is_integer():
        raise DataError(f"{where}: pitch {shown} is not a whole MIDI number")
    if not LOWEST <= p < LOWEST + KEYS:
        rest = " (-1 is a silent voice in Coconet's 'separated' files; rnnkit reads a step as the list of pitches that sound)" if p == -1 else ""
        raise DataError(f"{where}: pitch {shown} outside the piano range {LOWEST}..{LOWEST + KEYS - 1}{rest}")
    return int(p)


def _nonempty_list(value, error: str):
    """``value`` when it is a non-empty list (a JSON array, or a list or tuple from a pickle); else
    the ``DataError`` with message ``error``."""
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(error)
    return value


def _check_sequences(sequences, where: str) -> list[Sequence]:
    """Sequences as read from JSON (any structure): lists of steps, each a list of whole pitches in
    the piano range; a ``DataError`` naming the sequence and step of the first that is not."""
    out = []
    for i, sequence in enumerate(_nonempty_list(sequences, f"{where}: expected a non-empty list of sequences")):
        steps = []
        for t, step in enumerate(_nonempty_list(sequence, f"{where}: sequence {i} is not a non-empty list of time steps")):
            if not isinstance(step, (list, tuple)):
                shown = repr(step) if len(repr(step)) <= 40 else repr(step)[:37] + "..."
                raise DataError(f"{where}: sequence {i}, step {t}: expected a list of pitches, got {shown}")
            steps.append(sorted({_pitch(p, f"{where}: sequence {i}, step {t}") for p in step}))
        out.append(steps)
    return out


SPLITS = ("train", "valid", "test")  # the keys of a JSB Chorales file


PICKLE_SUFFIXES = (".pkl", ".pickle")  # compared in lower case, as the MIDI suffixes are


def read_chorales(path: str | Path) -> dict[str, list[Sequence]]:
    """The splits of a JSB Chorales JSON or pickle file: ``{"train": [...], "valid": [...], "test": [...]}``.
    A file holding one list of sequences counts as the training split.

    JSON is read through ``textio`` (UTF-8, BOM dropped). Errors (``DataError``, one line naming the
    file and the split, sequence and step): not JSON, not the expected structure (a split named other
    than train, valid, test), a pitch that is not a whole number (60.7), not finite (``Infinity``,
    ``NaN``) or off the piano (21..108), a split without a single note.
    """
    path = Path(path)
    if path.suffix.lower() in MIDI_SUFFIXES:
        raise DataError(f"{path}: a MIDI file; give the folder of MIDI files to read them all")
    if path.suffix.lower() in (".npz", ".npy"):  # numpy's archives: a zip, which the text reader would say to unzip
        raise DataError(f"{path}: a numpy file; music is read from JSON, a .pkl pickle or a folder of MIDI files (docs/input_formats.md)")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not path.exists():
            raise DataError(f"{path}: no such file")
        from ..safe_pickle import load_data

        data = load_data(path)  # containers and numbers only: a pickle naming anything else is refused, never run
    else:
        text = textio.read_text(path)
        try:
            data = json.loads(text, object_pairs_hook=textio.no_key_twice)  # {"train": [10 pieces], "train": [1]} lost ten unsaid
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
        except RecursionError:
            raise DataError(f"{path}: not readable JSON: nested too deeply") from None
        except ValueError as error:  # a number of more than 4,300 digits
            raise DataError(f"{path}: not readable JSON: {str(error).splitlines()[0][:80]}") from None
    if isinstance(data, list):
        data = {"train": data}
    if not isinstance(data, dict) or "train" not in data:
        raise DataError(f"{path}: expected {{'train': [...], 'valid': [...], 'test': [...]}} or a list of sequences")
    unknown = [key for key in data if key not in SPLITS]  # "validation", "dev": their songs would be dropped unsaid
    if unknown:
        raise DataError(f"{path}: unknown split {unknown[0]!r}; the splits are named {', '.join(map(repr, SPLITS))}")
    splits = {split: _check_sequences(data[split], f"{path} [{split}]") for split in data}
    for split, sequences in splits.items():  # as a MIDI file without notes is refused: a model of silence learns nothing
        if not any(step for sequence in sequences for step in sequence):
            raise DataError(f"{path} [{split}]: no notes in any of its {len(sequences)} sequences (every step is silent)")
    return splits


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


def notes_beyond_voices(sequences: list[Sequence], voices: int) -> tuple[int, int, int]:
    """(notes, notes beyond ``voices`` in their step, steps with more than ``voices`` notes):
    what ``to_voice_tokens`` leaves out of ``sequences``."""
    counts = [len(step) for sequence in sequences for step in sequence]
    return sum(counts), sum(max(0, n - voices) for n in counts), sum(n > voices for n in counts)


def to_voice_tokens(sequence: Sequence, voices: int = 4) -> list[str]:
    """``voices`` tokens per step, highest pitch first, ``rest`` where fewer notes sound; the notes
    below the ``voices`` highest of a step are left out (``notes_beyond_voices`` counts them)."""
    tokens = []
    for step in sequence:
        pitches = sorted(step, reverse=True)[:voices]
        tokens += [f"p{p}" for p in pitches] + [REST] * (voices - len(pitches))
    return tokens


def from_voice_tokens(tokens: list[str], voices: int = 4) -> Sequence:
    steps = []
    for i in range(0, len(tokens) - len(tokens) % voices, voices):
        steps.append(sorted({int(t[1:]) for t in tokens[i : i + voices] if t.startswith("p") and t[1:].isdigit()}))
    return steps


def _pretty_midi():
    return require("pretty_midi", extra="music", purpose="rnnkit reads and writes MIDI")


END_MARK = "end"  # the text event write_midi puts at a piece's end, so that its trailing silent steps read back


def write_midi(sequence: Sequence, path: str | Path, *, step_seconds: float = 0.5, program: int = 0, velocity: int = 90) -> None:
    """A MIDI file with one instrument; a pitch held over consecutive steps is one note. A step is
    a beat, whose tempo MIDI stores as whole microseconds up to 2**24 - 1: ``step_seconds`` outside
    0.0001 to 16 is a one-line ``UsageError`` (a run trained at another step, before the range was checked)."""
    if not 1e-4 <= step_seconds <= 16:
        raise UsageError(f"a step of {step_seconds:g} s cannot be written as MIDI (a step is a beat: 0.0001 to 16 s); give --step-seconds")
    pretty_midi = _pretty_midi()
    from ..files import atomic_write

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
    midi.text_events.append(pretty_midi.Text(END_MARK, len(sequence) * step_seconds))
    import io

    buffer = io.BytesIO()
    midi.write(buffer)
    atomic_write(Path(path), buffer.getvalue())


MIDI_SUFFIXES = (".mid", ".midi", ".kar")  # compared in lower case: .MID files are MIDI files too; .kar: a MIDI file with karaoke lyrics
MAX_MIDI_STEPS = 200_000  # a piano roll of 128 x 200,000 float64 is 200 MB: 28 hours at 0.5 s a step


def read_midi(path: str | Path, step_seconds: float = 0.5) -> Sequence:
    """The piano roll of a MIDI file sampled every ``step_seconds`` (all instruments but drums).

    Notes off the piano (below 21 or above 108), notes that sound through no step's middle and
    notes never released (no note-off, or one at the note-on's own tick, which pretty_midi drops)
    are left out, and standard error says how many.
    Errors (``DataError``, one line naming the file): not a readable MIDI file; no pitched notes
    (a file of drums only is a file with no notes: drum notes are not pitches); no notes on the piano
    (21..108); longer than ``MAX_MIDI_STEPS`` steps (a corrupt time that would need gigabytes).
    """
    steps, left_out, notes = _midi_steps(path, step_seconds)
    for why, count in left_out.items():
        if count:
            print(f"rnnkit: note: {path}: {count} of {notes} notes {why}", file=sys.stderr, flush=True)  # as every note is said
    return steps


DRUM_CHANNEL = 9  # General MIDI's channel 10, counted from 0: pretty_midi's is_drum


def _overlaps_merged(path: str | Path) -> tuple[io.BytesIO | None, int]:
    """The MIDI file with the notes of one pitch that overlap on one track and channel merged into
    one that sounds while any of them does (None when it has none), and the number of pitched notes
    it then starts (note-ons off the drum channel), which pretty_midi's notes are counted against.

    pretty_midi ends every open note of a pitch at the first note-off and drops the later one: a
    unison of two voices on one staff (a half note against a quarter, as notation programs write
    soprano and alto) lost the longer note's rest, silently. Here a stretch of a pitch runs from a
    note-on while it is silent to the note-off that silences it; the note-ons and note-offs inside
    are taken out (their time passed on to the next event). A stretch that no note-off closes (a key
    struck again before its release: two note-ons, one note-off) keeps its last note-off, which
    ends the note as a player ends it."""
    import mido

    midi = mido.MidiFile(filename=str(path), charset="latin1")  # as pretty_midi reads it
    if midi.ticks_per_beat == 0:  # top bit clear, so ticks a beat, and none: no time at all, not SMPTE
        raise DataError(f"{path}: a ticks-per-beat of 0: not a valid MIDI file")
    if midi.ticks_per_beat < 0:  # the header's division with its top bit set: frames a second and ticks a frame
        raise DataError(f"{path}: SMPTE time (frames and ticks a second, not ticks a beat), which rnnkit does not read; "
                        "save it with a tempo in ticks per beat")  # fmt: skip
    if midi.type == 2:  # pretty_midi plays the patterns on top of each other, at once
        raise DataError(f"{path}: a type 2 MIDI file (patterns meant one after another), which rnnkit does not read; "
                        "save it as type 0 or 1")  # fmt: skip
    merged, started = _tempo_map_to_first_track(midi), 0
    merged = _pedal_to_every_track(midi) or merged
    for track in midi.tracks:
        sounding: dict[tuple[int, int], int] = {}  # (channel, pitch) -> notes on
        last_off: dict[tuple[int, int], int] = {}  # the last note-off taken out of a stretch still open
        dropped: set[int] = set()
        for i, message in enumerate(track):
            on = message.type == "note_on" and message.velocity > 0
            if on or message.type in ("note_on", "note_off"):
                key = (message.channel, message.note)
                count = sounding.get(key, 0)
                sounding[key] = count + 1 if on else max(0, count - 1)
                if on and count > 0:  # struck again inside its stretch
                    dropped.add(i)
                elif not on and count > 1:  # released while another of its notes sounds
                    dropped.add(i)
                    last_off[key] = i
                elif not on and count == 1:
                    last_off.pop(key, None)  # the stretch closed by this one
                started += on and count == 0 and message.channel != DRUM_CHANNEL
        dropped -= {i for key, i in last_off.items() if sounding.get(key, 0) > 0}  # stretches left open: their last release ends them
        if not dropped:
            continue
        merged = True
        _take_out(track, lambda i, message: i in dropped)
    if not merged:
        return None, started
    buffer = io.BytesIO()
    midi.save(file=buffer)
    buffer.seek(0)
    return buffer, started


def _take_out(track, picked) -> list[tuple[int, object]]:
    """Take the messages ``picked(index, message)`` chooses out of a mido ``track``, each one's delta
    time passed on to the next message kept (so every other message keeps its time); the messages
    taken out, each with its absolute tick."""
    tick, carried, kept, taken = 0, 0, [], []
    for i, message in enumerate(track):
        tick += message.time
        if picked(i, message):
            taken.append((tick, message))
            carried += message.time
            continue
        kept.append(message.copy(time=message.time + carried))
        carried = 0
    track[:] = kept
    return taken


TEMPO_MAP = ("set_tempo", "time_signature", "key_signature")  # meta events for every track, which pretty_midi reads from the first only


def _tempo_map_to_first_track(midi) -> bool:
    """Move the tempo, time and key signature events of a type 1 file's other tracks into its first
    track, at their own ticks; whether any moved. The standard asks for them in the first track, and
    pretty_midi ignores them elsewhere (with a bare warning): a file whose tempo of 30 bpm sat in
    the notes' track was read at 120 bpm, four times too fast."""
    moved = [event for track in midi.tracks[1:] for event in _take_out(track, lambda i, message: message.type in TEMPO_MAP)]
    if not moved:
        return False
    midi.tracks[0] = _with_events(midi.tracks[0], moved)
    return True


def _pedal_to_every_track(midi) -> bool:
    """Copy each channel's sustain pedal events into every other track that plays notes on that
    channel, at their own ticks; whether any were copied. A controller acts on its channel whatever
    the track, but pretty_midi keeps a track's controllers with that track's notes: a piano file with
    one track per hand and the pedal in one of them (or in a track of its own) held only that
    track's notes under it."""
    pedals: dict[int, list[tuple[int, int, object]]] = {}  # channel -> (tick, track, message)
    channels: list[set[int]] = []  # per track: the channels its notes play on
    for number, track in enumerate(midi.tracks):
        tick, played = 0, set()
        for message in track:
            tick += message.time
            if message.type == "control_change" and message.control == SUSTAIN_PEDAL:
                pedals.setdefault(message.channel, []).append((tick, number, message))
            elif message.type in ("note_on", "note_off"):
                played.add(message.channel)
        channels.append(played)
    copied = False
    for number, track in enumerate(midi.tracks):
        others = [(tick, message) for channel in channels[number] for tick, owner, message in pedals.get(channel, []) if owner != number]
        if others:
            midi.tracks[number] = _with_events(track, others)
            copied = True
    return copied


def _with_events(track, events: list[tuple[int, object]]):
    """A copy of the mido ``track`` with ``events`` (absolute tick, message) put in at their ticks,
    after the track's own messages of the same tick and before its end."""
    import mido

    own, tick = [], 0
    for message in track:
        tick += message.time
        own.append((tick, message))
    merged = sorted(own + events, key=lambda event: (event[0], event[1].type == "end_of_track"))  # stable: the track's own first
    out, last = mido.MidiTrack(), 0
    for tick, message in merged:
        out.append(message.copy(time=tick - last))
        last = tick
    return out


def _midi_steps(path: str | Path, step_seconds: float) -> tuple[Sequence, dict[str, int], int]:
    """``read_midi``'s steps, how many notes were left out for each reason (reason -> count), and
    the number of pitched notes the file starts."""
    if not (isinstance(step_seconds, (int, float)) and math.isfinite(step_seconds) and step_seconds > 0):
        raise ValueError(f"step_seconds must be a positive number of seconds, got {step_seconds!r}")
    pretty_midi = _pretty_midi()
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file" if not Path(path).exists() else f"{path}: not a MIDI file")
    try:
        merged, started = _overlaps_merged(path)
        midi = pretty_midi.PrettyMIDI(merged or str(path))
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 (a broken file, whatever the parser says)
        raise DataError(f"{path}: not a readable MIDI file ({type(error).__name__})") from None
    pitched = [note for instrument in midi.instruments if not instrument.is_drum for note in instrument.notes]
    # pretty_midi makes a note at its note-off: a note never released, or released at the tick it
    # began, it drops without a word (four held chord notes at a piece's end went missing)
    unreleased = max(0, started - len(pitched))
    if not pitched:
        drums = sum(len(instrument.notes) for instrument in midi.instruments if instrument.is_drum)
        if unreleased:
            raise DataError(f"{path}: none of its {unreleased} notes is ever released (a note-on with no note-off after it, "
                            "or one at the note-on's own time): no note has a length")
        raise DataError(f"{path}: no notes" + (f" but {drums} drum notes (drums have no pitch and are not read)" if drums else ""))
    if not any(LOWEST <= note.pitch < LOWEST + KEYS for note in pitched):
        raise DataError(f"{path}: no notes in the piano range {LOWEST}..{LOWEST + KEYS - 1}")
    try:
        end = midi.get_end_time()
        if not math.isfinite(end) or end / step_seconds > MAX_MIDI_STEPS:
            raise DataError(f"{path}: lasts {end:.0f} s, {end / step_seconds:,.0f} steps of {step_seconds} s: more than {MAX_MIDI_STEPS:,}")
        # pretty_midi samples a step at its start, int(time / step): a note written to start on a
        # step's boundary but stored a hair before it (a tempo rounded to whole microseconds, as
        # pretty_midi writes 85.714 bpm for 0.7 s steps) fell into the step before, and a note
        # ending a tick early (notation software) lost its last step, a one-step note all of it.
        # Every time moved half a step later makes that int(time / step + 1/2): each note's start and
        # end go to the nearest step boundary, so a note sounds in the steps it mostly covers
        half = step_seconds / 2
        for instrument in midi.instruments:
            instrument.pitch_bends = []  # pretty_midi sounds a bent note on two keys at once: a bend is no new note
            _hold_under_the_pedal(instrument)
            for note in instrument.notes:
                note.start, note.end = note.start + half, note.end + half
        roll = midi.get_piano_roll(fs=1.0 / step_seconds, pedal_threshold=None)  # (128, T); the pedal is held above
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 (times or tempi the parser accepted but cannot sample)
        raise DataError(f"{path}: not a readable MIDI file ({type(error).__name__})") from None
    steps = [[int(p) for p in range(LOWEST, LOWEST + KEYS) if roll[p, t] > 0] for t in range(roll.shape[1])]
    # the silent steps a piece ends with, to write_midi's own end mark (any other late event, a
    # controller reset or a drum track, is no silence of the music)
    marked = max((event.time for event in midi.text_events if event.text == END_MARK), default=0.0)
    on_piano = [note for note in pitched if LOWEST <= note.pitch < LOWEST + KEYS]
    # a grace note, a fast run at a coarse step: left out, and said, as the notes off the piano are
    lost = [_lost(note, roll, step_seconds) for note in on_piano]
    kept = [note for note, gone in zip(on_piano, lost) if not gone]  # a note left out makes no silence at the end either
    length = max(max((int(note.end / step_seconds) for note in kept), default=0), int(marked / step_seconds + 0.5))  # (ends moved half a step on)
    steps = steps[:length] + [[] for _ in range(length - len(steps))]
    if not any(steps):
        smaller = "; try a smaller --step-seconds" if step_seconds > SHORTEST_STEP_SECONDS else ", the shortest step rnnkit takes"
        raise DataError(f"{path}: none of its {len(pitched)} notes sounds through the middle of a step of {step_seconds} s "
                        f"(each is too short, or lies between two steps' middles){smaller}")
    off_piano = len(pitched) - len(on_piano)
    left_out = {_OFF_PIANO: off_piano, _SHORT.format(step_seconds=step_seconds): sum(lost), _UNRELEASED: unreleased}
    return steps, left_out, len(pitched) + unreleased


# why notes of a MIDI file are left out, as read_midi and read_midi_folder say it
_OFF_PIANO = f"lie off the piano range {LOWEST}..{LOWEST + KEYS - 1} and are left out"
_UNRELEASED = "are never released (no note-off after the note-on, or one at its own time) and are left out"
_SHORT = ("sound through no step's middle at steps of {step_seconds} s (too short, or between two middles) and are left out "
          "(a smaller --step-seconds keeps them)")


SUSTAIN_PEDAL = 64  # the MIDI controller number; down at a value of 64 or more


def _hold_under_the_pedal(instrument) -> None:
    """Each note released while the sustain pedal is down rings on until the pedal is lifted (its
    end moved there), as a piano sounds it: a short key press under the pedal is a long note."""
    changes = sorted((c for c in instrument.control_changes if c.number == SUSTAIN_PEDAL), key=lambda c: c.time)
    held, down_at = [], None  # (down, up) intervals
    for change in changes:
        if change.value >= 64 and down_at is None:
            down_at = change.time
        elif change.value < 64 and down_at is not None:
            held.append((down_at, change.time))
            down_at = None
    if down_at is not None:  # never lifted: held to the last note's end
        held.append((down_at, max((note.end for note in instrument.notes), default=down_at)))
    for note in instrument.notes:
        for down, up in held:
            if down <= note.end < up:
                note.end = up
                break


def _lost(note, roll, step_seconds: float) -> bool:
    """Whether ``note`` (its times moved half a step on) gives no step of the roll: it begins and ends
    within one step and the step it lies in is not sounded by anything else (a held pedal, a twin)."""
    first, last = int(note.start / step_seconds), int(note.end / step_seconds)
    return first == last and not (first < roll.shape[1] and roll[note.pitch, first] > 0)


def midi_files(folder: str | Path) -> list[Path]:
    """The MIDI files of a folder and its subfolders (``.mid``, ``.midi`` or ``.kar`` in any case; MAESTRO and
    the Lakh MIDI set keep their files a level or two down), sorted by path; hidden ones left out."""
    folder = Path(folder)
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in MIDI_SUFFIXES and f.is_file()
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))  # fmt: skip


def read_midi_folder(folder: str | Path, step_seconds: float = 0.5) -> list[Sequence]:
    """Every MIDI file of ``folder`` (see ``midi_files``) as a sequence; the first bad file is a
    ``DataError`` naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    files = midi_files(folder)
    if not files:
        raise DataError(f"{folder}: no .mid, .midi or .kar files, in it or its subfolders")
    read = [_midi_steps(f, step_seconds) for f in files]
    notes = sum(r[2] for r in read)
    for why in read[0][1]:  # one line for the folder per reason, not one per file
        cut = [str(f.relative_to(folder)) for f, (_, left_out, _) in zip(files, read) if left_out[why]]
        if cut:
            count = sum(r[1][why] for r in read)
            print(f"rnnkit: note: {folder}: {count} of {notes} notes, in {len(cut)} of {len(files)} files ({', '.join(cut[:3])}{', ...' if len(cut) > 3 else ''}), "
                  f"{why}", file=sys.stderr, flush=True)  # fmt: skip
    return [steps for steps, _, _ in read]
